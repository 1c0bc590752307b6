//! `venus-compute`: a Vulkan compute program of our own that exercises the parts of
//! Vulkan a compute workload needs and checks every result on the CPU.
//!
//! It is built to be run twice: natively on lavapipe, and through the venus guest
//! driver talking to our host translator; both runs must print `PASS`.
//!
//! What it covers (one `ok`/`FAIL` line per check, then `PASS` or `FAIL`):
//! - instance (API 1.3 when the loader has it, 1.2 at least), a debug-utils messenger
//!   that counts validation warnings and errors, the first physical device (its name is
//!   printed), whether the Khronos validation layer is active (tool properties);
//! - device with one compute queue and the `timelineSemaphore` feature;
//! - storage buffers in HOST_VISIBLE|HOST_COHERENT memory, mapped, written and read by
//!   the CPU; a readback buffer in host-visible non-coherent memory when the device has
//!   such a type (flush/invalidate are called on every mapped range either way);
//! - descriptor set layout, pool (free-able sets), set allocation, vkUpdateDescriptorSets,
//!   vkFreeDescriptorSets;
//! - compute pipeline from the embedded SPIR-V (`tests/shaders/compute.spv`) with a
//!   push-constant range and two specialization constants (workgroup width and `b`),
//!   a pipeline cache (its data header is checked, it seeds a second cache, merged);
//! - command pool and buffers (reset and re-recorded every round), vkCmdBindPipeline,
//!   vkCmdBindDescriptorSets, vkCmdPushConstants, vkCmdDispatch (1D and 2D grids),
//!   pipeline barriers, vkCmdCopyBuffer, vkCmdFillBuffer, vkCmdSetEvent,
//!   vkCmdResetQueryPool and vkCmdWriteTimestamp;
//! - two submits per round joined by a binary semaphore; a timeline semaphore signalled
//!   by the host (vkSignalSemaphore) and waited on by the first submit, signalled by both
//!   submits and waited on by the host (vkWaitSemaphores, vkGetSemaphoreCounterValue);
//!   a fence (vkWaitForFences, vkGetFenceStatus, vkResetFences); an event
//!   (vkGetEventStatus, vkSetEvent, vkResetEvent); timestamp queries
//!   (vkGetQueryPoolResults, monotonic, non-zero period);
//! - results `out[i] = in[i] * a + b + i` (wrapping u32) verified element by element for
//!   64 elements and for `--elements N` (default 1M), `--iterations K` rounds each;
//! - with `--record-extra N`, N more commands in the main command buffer of every round
//!   (alternately vkCmdPushConstants with the same values and vkCmdFillBuffer of distinct
//!   words of a scratch buffer nothing reads): they change no result, only make the
//!   command buffer's encoded venus stream large (about 50 bytes per command), so that
//!   Mesa venus sends it through shared memory (vkExecuteCommandStreamsMESA) instead of
//!   copying it into its ring (which it does up to 8 KiB on the instance ring).
//!
//! Everything is destroyed at the end; the exit code is 0 only if every check passed.

mod commands;
mod device;
mod instance;
mod memory;
mod pipeline;
mod report;
mod rounds;
mod vulkan;

use std::process::ExitCode;
use std::sync::atomic::Ordering;

use commands::{extra_command_split, extra_venus_bytes};
use device::create_device;
use instance::{create_instance, inject_validation_error};
use report::{Fail, Report, OTHER_MESSAGES, VALIDATION_MESSAGES};
use rounds::run_size;
use vulkan::Vulkan;

/// Upper bound of `--record-extra` (about 50 MB of venus commands per command buffer).
const MAX_RECORD_EXTRA: u32 = 1_000_000;

const USAGE: &str = "usage: venus-compute [--elements N] [--iterations K] [--quiet] \
[--require-validation] [--record-extra N]\n\
  --elements N          size of the large dispatch (default 1048576; 64 always runs too)\n\
  --iterations K        rounds of the whole dispatch for each size (default 2)\n\
  --quiet               print only FAIL lines and the final PASS/FAIL\n\
  --require-validation  FAIL unless the Khronos validation layer is active\n\
  --record-extra N      record N extra commands that change nothing into the main command\n\
                        buffer of every round (default 0, at most 1000000), to make its\n\
                        venus stream larger than Mesa venus's direct ring submission\n\
  --inject-validation-error  (tests only) make one invalid call, caught by the validation\n\
                        layer, to prove that validation messages make the run FAIL";

struct Options {
    elements: u32,
    iterations: u32,
    quiet: bool,
    require_validation: bool,
    inject_validation_error: bool,
    /// `--record-extra`: extra commands in the main command buffer of every round.
    record_extra: u32,
}

fn parse_args() -> Result<Options, String> {
    let mut opts = Options {
        elements: 1 << 20,
        iterations: 2,
        quiet: false,
        require_validation: false,
        inject_validation_error: false,
        record_extra: 0,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let (name, inline) = match arg.split_once('=') {
            Some((n, v)) => (n.to_string(), Some(v.to_string())),
            None => (arg.clone(), None),
        };
        let mut value = |name: &str, min: u32, max: u32| -> Result<u32, String> {
            let v = inline
                .clone()
                .or_else(|| args.next())
                .ok_or_else(|| format!("{name} needs a value"))?;
            v.parse::<u32>()
                .map_err(|e| format!("{name} {v}: {e}"))
                .and_then(|n| {
                    if n < min {
                        Err(format!("{name} must be at least {min}"))
                    } else if n > max {
                        Err(format!("{name} must be at most {max}"))
                    } else {
                        Ok(n)
                    }
                })
        };
        match name.as_str() {
            "--elements" => opts.elements = value("--elements", 1, u32::MAX)?,
            "--iterations" => opts.iterations = value("--iterations", 1, u32::MAX)?,
            "--record-extra" => {
                opts.record_extra = value("--record-extra", 0, MAX_RECORD_EXTRA)?;
            }
            "--quiet" => opts.quiet = true,
            "--require-validation" => opts.require_validation = true,
            "--inject-validation-error" => opts.inject_validation_error = true,
            "-h" | "--help" => return Err(String::new()),
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(opts)
}

fn main() -> ExitCode {
    let opts = match parse_args() {
        Ok(o) => o,
        Err(msg) => {
            if !msg.is_empty() {
                eprintln!("venus-compute: {msg}");
            }
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    let mut report = Report {
        quiet: opts.quiet,
        checks: 0,
        failed: 0,
    };

    // SAFETY: loads libvulkan.so.1 (the system Vulkan loader) and runs its
    // initialisers; nothing else in this process is loading it concurrently.
    let entry = match unsafe { ash::Entry::load() } {
        Ok(e) => e,
        Err(e) => {
            report.fail(format!("load the Vulkan loader (libvulkan.so.1): {e}"));
            println!("FAIL");
            return ExitCode::FAILURE;
        }
    };
    let mut vulkan = Vulkan {
        entry,
        instance: None,
        debug: None,
        device: None,
        objects: Vec::new(),
        validation_active: false,
    };
    if let Err(e) = run(&opts, &mut vulkan, &mut report) {
        report.fail(e);
    }
    vulkan.destroy_all(&mut report);

    let validation = VALIDATION_MESSAGES.load(Ordering::SeqCst);
    report.check(
        validation == 0,
        format!("validation warnings and errors: {validation}"),
    );
    let other = OTHER_MESSAGES.load(Ordering::SeqCst);
    if other != 0 {
        report.info(format!("other debug warnings and errors: {other}"));
    }
    if !opts.quiet {
        println!(
            "summary: {} checks, {} failed",
            report.checks, report.failed
        );
    }
    if report.failed == 0 {
        println!("PASS");
        ExitCode::SUCCESS
    } else {
        println!("FAIL");
        ExitCode::FAILURE
    }
}

fn run(opts: &Options, vk_: &mut Vulkan, report: &mut Report) -> Result<(), Fail> {
    let physical = create_instance(opts, vk_, report)?;
    let mut setup = create_device(vk_, physical, report)?;
    if opts.inject_validation_error {
        inject_validation_error(vk_, report)?;
    }

    let mut sizes = vec![64u32];
    if opts.elements != 64 {
        sizes.push(opts.elements);
    }
    let mut extra_recorded = 0u64;
    for (index, &n) in sizes.iter().enumerate() {
        // The first size uses the pipeline built with the fresh cache, the second the
        // one built with the cache seeded from its data.
        let pipeline = setup.pipelines[index % 2];
        extra_recorded += run_size(vk_, &mut setup, pipeline, n, opts, report)?;
    }
    if opts.record_extra > 0 {
        let per_round = opts.record_extra;
        let rounds = setup.round;
        let (pushes, fills) = extra_command_split(per_round);
        report.check(
            extra_recorded == u64::from(per_round) * rounds,
            format!(
                "--record-extra: {per_round} extra commands ({pushes} vkCmdPushConstants, \
                 {fills} vkCmdFillBuffer of an unread scratch buffer) recorded into the main \
                 command buffer of each of the {rounds} rounds ({extra_recorded} in all, \
                 about {} KiB of venus commands per command buffer)",
                extra_venus_bytes(per_round).div_ceil(1024)
            ),
        );
    }
    Ok(())
}
