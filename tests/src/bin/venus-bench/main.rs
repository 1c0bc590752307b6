//! `venus-bench`: benchmarks side by side (issue 8). Two modes:
//!
//! - `venus-bench measure` (the default) runs the Vulkan rows once, in the single
//!   configuration its environment selects (`VK_DRIVER_FILES`, `VENUS_TRANSPORT`,
//!   `VTEST_SOCKET_NAME`, ...), and prints one JSON object on stdout: per row the
//!   figure of every timed run and their median. Each row is warmed up first (at
//!   least three iterations and about half a run), which also picks how many
//!   iterations one run holds (about `--run-ms` each), then timed `--runs` times.
//! - `venus-bench compare` is the driver behind `tests/bench/run.sh`: it starts our
//!   `venus-vtest-server` (and stock virglrenderer, where it is set up), runs
//!   `measure` once per column and round, times `vulkaninfo --summary` per column,
//!   takes the protocol figures from `bench-protocol --json`, prints the table with
//!   ratios to native lavapipe, marks the targets met or missed, and writes
//!   `results.json` and `results.md` into `--out` (default `target/bench`).
//!
//! Vulkan rows (figures are per iteration):
//! - `submit_wait`: vkQueueSubmit of one batch without command buffers signalling a
//!   fence, vkWaitForFences, vkResetFences;
//! - `fence_status`: vkGetFenceStatus of a fence never submitted;
//! - `device_address`: vkGetBufferDeviceAddress of one buffer, again and again (Mesa
//!   venus asks the host each time; our ICD caches a buffer's address);
//! - `event_status`: vkGetEventStatus of an event nothing sets (our ICD and Mesa
//!   venus read their event feedback memory where they can map it);
//! - `host_query`: vkGetSemaphoreCounterValue of a timeline semaphore nothing
//!   signals (our ICD asks the host each time; Mesa venus reads its semaphore
//!   feedback memory where it can map it);
//! - `query_after_300us`, `query_after_2ms`: `host_query` after the thread spun
//!   (computed) for 0.3 ms (resp. 2 ms), only the call timed: what a call costs when the host's
//!   ring thread has stopped spinning (resp. gone idle) since the last command;
//! - `dispatch64`, `dispatch1m`: record a dispatch of the `venus-compute` shader over
//!   64 (resp. `--elements`, default 1M) elements into a reset command buffer,
//!   submit with a fence, wait, reset the fence; the output is checked afterwards;
//! - `submit_batch`: a 64-element dispatch recorded once (simultaneous use) submitted
//!   1000 times in separate vkQueueSubmit calls, the fence on the last, one wait;
//!   the figure is per submit;
//! - `map_write`, `map_read`: memcpy of 64 MiB into / out of a persistently mapped
//!   HOST_VISIBLE | HOST_COHERENT allocation.
//!
//! Not a test: nothing here runs under `cargo test` (except the unit tests of the
//! statistics and table helpers, which time nothing).

mod compare;
mod gpu;
mod rows;
mod stats;
mod table;

use std::process::ExitCode;
use std::time::Duration;

use serde_json::{json, Map, Value};

use gpu::{Fail, Gpu};
use rows::{Source, ROWS};
use stats::{median, Plan};

const USAGE: &str = "usage: venus-bench [measure] [--runs N] [--run-ms MS] [--elements N] \
[--rows ID,ID...] [--label NAME]\n\
       venus-bench compare [--rounds R] [--runs N] [--run-ms MS] [--vulkaninfo-runs N] \
[--elements N] [--out DIR] [--no-virgl] [--quick]\n\
measure: the Vulkan rows in the configuration the environment selects; JSON on stdout\n\
  --runs N         timed runs per row after the warm-up (default 21)\n\
  --run-ms MS      aim for runs of about MS milliseconds (default 25)\n\
  --elements N     elements of the large dispatch (default 1048576, at most 4194304)\n\
  --rows LIST      only these rows (ids: submit_wait, fence_status, device_address, event_status, host_query,\n\
                   query_after_300us, query_after_2ms, dispatch64, submit_batch,\n\
                   dispatch1m, map_write, map_read)\n\
  --label NAME     recorded in the JSON\n\
compare: every column (see tests/bench/run.sh); prints the table, writes DIR/results.json\n\
  --rounds R       rounds over all columns, in rotated order (default 5)\n\
  --runs N         timed runs per row, column and round (default 7)\n\
  --vulkaninfo-runs N  vulkaninfo --summary runs per column and round (default 3)\n\
  --out DIR        where results.json and results.md go (default <repo>/target/bench)\n\
  --no-virgl       skip stock virglrenderer\n\
  --quick          1 round, 5 runs, 10 ms runs, 2 vulkaninfo runs (a smoke test)";

/// Largest `--elements` (workgroup count within maxComputeWorkGroupCount[0] >= 65535).
const MAX_ELEMENTS: u32 = 4 << 20;

/// Options of `measure`.
pub(crate) struct MeasureOptions {
    pub(crate) runs: u32,
    pub(crate) run_ms: u32,
    pub(crate) elements: u32,
    pub(crate) rows: Option<Vec<String>>,
    pub(crate) label: String,
}

fn number(name: &str, v: Option<String>, min: u32, max: u32) -> Result<u32, String> {
    let v = v.ok_or_else(|| format!("{name} needs a value"))?;
    let n: u32 = v.parse().map_err(|e| format!("{name} {v}: {e}"))?;
    if n < min || n > max {
        return Err(format!("{name} must be between {min} and {max}"));
    }
    Ok(n)
}

fn parse_measure(args: &[String]) -> Result<MeasureOptions, String> {
    let mut o = MeasureOptions {
        runs: 21,
        run_ms: 25,
        elements: 1 << 20,
        rows: None,
        label: String::new(),
    };
    let mut it = args.iter().cloned();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--runs" => o.runs = number("--runs", it.next(), 1, 10_000)?,
            "--run-ms" => o.run_ms = number("--run-ms", it.next(), 1, 60_000)?,
            "--elements" => o.elements = number("--elements", it.next(), 64, MAX_ELEMENTS)?,
            "--rows" => {
                let list = it.next().ok_or("--rows needs a value")?;
                let ids: Vec<String> = list.split(',').map(str::to_string).collect();
                for id in &ids {
                    if !ROWS
                        .iter()
                        .any(|r| r.id == id && r.source == Source::Vulkan)
                    {
                        return Err(format!("unknown Vulkan row {id}"));
                    }
                }
                o.rows = Some(ids);
            }
            "--label" => o.label = it.next().ok_or("--label needs a value")?,
            "-h" | "--help" => return Err(String::new()),
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(o)
}

fn main() -> ExitCode {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let mode = match args.first().map(String::as_str) {
        Some("compare") | Some("measure") => args.remove(0),
        _ => "measure".to_string(),
    };
    let result = if mode == "compare" {
        compare::parse(&args).and_then(|o| compare::run(&o).map_err(|e| format!("error: {e}")))
    } else {
        parse_measure(&args).and_then(|o| measure(&o).map_err(|e| format!("error: {e}")))
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(msg) if msg.starts_with("error: ") => {
            eprintln!("venus-bench: {msg}");
            ExitCode::FAILURE
        }
        Err(msg) => {
            if !msg.is_empty() {
                eprintln!("venus-bench: {msg}");
            }
            eprintln!("{USAGE}");
            ExitCode::from(2)
        }
    }
}

/// `measure`: the Vulkan rows in this process's configuration, JSON on stdout. A row
/// that fails is recorded with its error; the exit code is then non-zero.
fn measure(o: &MeasureOptions) -> Result<(), Fail> {
    let mut out = Map::new();
    out.insert("label".into(), json!(o.label));
    out.insert("runs".into(), json!(o.runs));
    out.insert("elements".into(), json!(o.elements));
    let mut gpu = match Gpu::new(o.elements) {
        Ok(g) => g,
        Err(e) => {
            out.insert("error".into(), json!(e));
            println!("{}", Value::Object(out));
            return Err(e);
        }
    };
    let v = gpu.api_version;
    out.insert("device".into(), json!(gpu.device_name));
    out.insert("driver".into(), json!(gpu.driver_info));
    out.insert(
        "api_version".into(),
        json!(format!(
            "{}.{}.{}",
            ash::vk::api_version_major(v),
            ash::vk::api_version_minor(v),
            ash::vk::api_version_patch(v)
        )),
    );
    let plan = Plan {
        runs: o.runs,
        run_time: Duration::from_millis(u64::from(o.run_ms)),
        max_iterations: 1_000_000,
    };
    let mut rows = Map::new();
    let mut failed = Vec::new();
    for row in ROWS.iter().filter(|r| r.source == Source::Vulkan) {
        if o.rows
            .as_ref()
            .is_some_and(|l| !l.iter().any(|id| id == row.id))
        {
            continue;
        }
        eprintln!("venus-bench[{}]: {}", o.label, row.title);
        let value = match rows::measure(&mut gpu, row, &plan) {
            Ok(m) => json!({
                "unit": row.unit,
                "median": median(&m.figures),
                "figures": m.figures,
                "iterations_per_run": m.iterations_per_run,
            }),
            Err(e) => {
                failed.push(format!("{}: {e}", row.id));
                json!({ "error": e })
            }
        };
        rows.insert(row.id.into(), value);
    }
    out.insert("rows".into(), Value::Object(rows));
    drop(gpu);
    println!("{}", Value::Object(out));
    if failed.is_empty() {
        Ok(())
    } else {
        Err(failed.join("; "))
    }
}
