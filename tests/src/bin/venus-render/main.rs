//! `venus-render`: an offscreen Vulkan renderer of our own that exercises the graphics
//! parts of Vulkan and checks every pixel it can on the CPU (no window system).
//!
//! Like `venus-compute`, it is run natively on lavapipe and through the venus guest
//! drivers (stock Mesa venus and our ICD) talking to our host translator; every run
//! must print `PASS`.
//!
//! What it covers (one `ok`/`FAIL` line per check, then `PASS` or `FAIL`):
//! - instance, debug-utils messenger counting validation warnings and errors, whether
//!   the validation layer is active (`--require-validation` makes it a check);
//! - device with a graphics queue; dynamic rendering and synchronization2 from core 1.3
//!   or their KHR extensions when the device offers them (stock Mesa venus reports 1.2);
//!   occlusionQueryPrecise when supported; a depth format (D32_SFLOAT preferred);
//! - buffers (vertex, index, uniform, indirect, read-back, query results), 256×256
//!   RGBA8 color images, a depth image, an 8×8 texture of four uniformly colored
//!   quadrants, blit and copy targets, image views, a NEAREST sampler, a descriptor set
//!   (uniform buffer + combined image sampler);
//! - uploads: the uniform buffer by vkCmdUpdateBuffer, the texture from a staging buffer
//!   by vkCmdCopyBufferToImage between layout transitions;
//! - graphics pipelines from the embedded SPIR-V (`tests/shaders/render.{vert,frag}`)
//!   with vertex input, push constants (both stages), all Vulkan 1.0 dynamic states and
//!   depth test LESS: two for the subpasses of a render pass and one for dynamic
//!   rendering, from one vkCreateGraphicsPipelines call;
//! - pass 1 (render pass, framebuffer): a vkCmdClearAttachments depth rectangle, the
//!   nearer textured triangle B by vkCmdDrawIndexed, then the farther triangle A by
//!   vkCmdDraw inside an occlusion query; subpass 1 from a secondary command buffer
//!   (vkCmdExecuteCommands): triangle C with its own viewport, scissor and push-constant
//!   offset, and a vkCmdClearAttachments color rectangle;
//! - pass 2 (vkCmdBeginRendering) of the same scene, moved, with indirect draws;
//! - pass 3 (when the device has what it takes: imageless framebuffers, depth resolve,
//!   4 samples, extended dynamic state, multi draw, push descriptors, conditional
//!   rendering, color write enable): the pass-1 scene with 4 samples through
//!   vkCreateRenderPass2 with color and depth resolve attachments, vkCmdBeginRenderPass2
//!   / vkCmdNextSubpass2 / vkCmdEndRenderPass2, an imageless framebuffer, push
//!   descriptors, extended dynamic state 1-3 (static pipeline values set wrong where the
//!   state is dynamic), vkCmdDrawMulti{,Indexed}EXT with padded strides, a sample mask
//!   (C covers half the samples), a draw skipped and a clear done by conditional
//!   rendering; resolved color and depth checked against the model, vkCmdResolveImage
//!   against the render pass resolve;
//! - after each pass, color and depth copied to a host-visible buffer and compared
//!   pixel by pixel with a CPU model of the scene (edges and texel boundaries accept
//!   each value the rasterization rules allow; drawn colors within 1 per channel), plus
//!   named pixels (background, each texture quadrant, A alone, the overlap showing B,
//!   the cleared rectangles, C and its scissor); the occlusion count against the model
//!   and the pixels showing A;
//! - pass 2 also draws C by vkCmdDrawIndirectCount and records a vkCmdDrawIndexedIndirectCount
//!   with a count of 0 (the commands past the count would show in the image);
//! - transfers: vkCmdBlitImage 256→128 NEAREST, vkCmdClearColorImage + vkCmdCopyImage,
//!   vkCmdClearDepthStencilImage, vkCmdFillBuffer + vkCmdUpdateBuffer, each checked; a
//!   split barrier through an event (vkCmdResetEvent / vkCmdSetEvent / vkCmdWaitEvents or
//!   their synchronization2 versions), timestamps (vkResetQueryPool from the host);
//! - copy commands 2 (core 1.3 or VK_KHR_copy_commands2) redoing the transfers, byte for
//!   byte the same; vkCmdResolveImage2 in pass 3;
//! - transform feedback (VK_EXT_transform_feedback) in dynamic rendering without
//!   attachments: positions captured and checked, a stream query, the counter buffer
//!   driving vkCmdDrawIndirectByteCountEXT, dynamic vertex input (vkCmdSetVertexInputEXT);
//! - queries and lifecycles: linear image subresource layout, sparse requirements,
//!   maintenance4 memory requirements against the objects', descriptor set layout
//!   support, a texel buffer view, private data, a Y′CbCr conversion, a buffer device
//!   address, external properties, a descriptor update template (it writes the texture
//!   binding the passes sample), command and descriptor pool resets;
//! - barriers and submissions by vkCmdPipelineBarrier2 and vkQueueSubmit2 when
//!   synchronization2 is enabled (`--legacy-sync` forces vkCmdPipelineBarrier and
//!   vkQueueSubmit), a fence per submission.
//!
//! Everything is destroyed at the end; the exit code is 0 only if every check passed.

// The reporting module is shared with venus-compute.
#[path = "../venus-compute/report.rs"]
mod report;

mod check;
mod copy2;
mod device;
mod eds;
mod features;
mod ignored;
mod inject;
mod instance;
mod memory;
mod model;
mod pass1;
mod pass2;
mod pass3;
mod pass3_pipeline;
mod pipeline;
mod queries;
mod record;
mod resources;
mod scene;
mod sync;
mod transfer;
mod vulkan;
mod xfb;

use std::process::ExitCode;
use std::sync::atomic::Ordering;

use ash::vk;

use report::{Fail, Report, OTHER_MESSAGES, VALIDATION_MESSAGES};
use vulkan::Vulkan;

const USAGE: &str = "usage: venus-render [--quiet] [--require-validation] [--legacy-sync]\n\
  --quiet               print only FAIL lines and the final PASS/FAIL\n\
  --require-validation  FAIL unless the Khronos validation layer is active\n\
  --legacy-sync         use vkCmdPipelineBarrier and vkQueueSubmit even when the device\n\
                        has synchronization2\n\
  --inject-validation-error  (tests only) make one invalid call, caught by the validation\n\
                        layer, to prove that validation messages make the run FAIL";

pub(crate) struct Options {
    quiet: bool,
    pub(crate) require_validation: bool,
    pub(crate) legacy_sync: bool,
    inject_validation_error: bool,
    inject_null_sampler: bool,
}

fn parse_args() -> Result<Options, String> {
    let mut opts = Options {
        quiet: false,
        require_validation: false,
        legacy_sync: false,
        inject_validation_error: false,
        inject_null_sampler: false,
    };
    for arg in std::env::args().skip(1) {
        match arg.as_str() {
            "--quiet" => opts.quiet = true,
            "--require-validation" => opts.require_validation = true,
            "--legacy-sync" => opts.legacy_sync = true,
            "--inject-validation-error" => opts.inject_validation_error = true,
            "--inject-null-sampler" => opts.inject_null_sampler = true,
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
                eprintln!("venus-render: {msg}");
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
    let mut vulkan = Vulkan::new(entry);
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
    let (physical, api) = instance::create_instance(opts, vk_, report)?;
    let gpu = device::create_device(opts, vk_, physical, api, report)?;
    if opts.inject_validation_error {
        instance::inject_validation_error(vk_, report)?;
    }
    let render_pass = pass1::create_render_pass(vk_, &gpu, report)?;
    let sampler = resources::create_sampler(vk_, &gpu)?;
    let pipelines = pipeline::create_pipelines(vk_, &gpu, render_pass, sampler, report)?;
    let res = resources::create_resources(vk_, &gpu, pipelines.set_layout, sampler, report)?;
    if opts.inject_null_sampler {
        inject::null_sampler_write(vk_, &gpu, &res, report)?;
    }
    let framebuffer = pass1::create_framebuffer(vk_, &gpu, render_pass, &res)?;
    let primary = gpu.command_buffers(vk_, vk::CommandBufferLevel::PRIMARY, 8)?;
    let secondary = gpu.command_buffers(vk_, vk::CommandBufferLevel::SECONDARY, 1)?;

    resources::upload(vk_, &gpu, &res, primary[0], report)?;
    pass1::run(
        vk_,
        &gpu,
        render_pass,
        framebuffer,
        &pipelines,
        &res,
        (primary[1], secondary[0]),
        report,
    )?;
    pass2::run(&gpu, &pipelines, &res, primary[2], report)?;
    pass3::run(vk_, &gpu, &pipelines, &res, primary[3], report)?;
    transfer::run(vk_, &gpu, &res, (primary[4], primary[5]), report)?;
    copy2::run(vk_, &gpu, &res, primary[6], report)?;
    xfb::run(vk_, &gpu, &res, primary[7], report)?;
    queries::run(vk_, &gpu, &res, report)?;
    queries::reset_pools(&gpu, &res, report)
}
