//! Sub-allocation in our ICD: 10,000 allocate/map/free cycles of small
//! host-visible memory (venus-memchurn) are carved out of a handful of 16 MiB
//! host blocks, so the host hands out a handful of device-memory blobs instead of
//! one per allocation, and RSS stays flat. With `VENUS_SUBALLOC=0` (the old
//! behaviour, for comparison) every allocation gets its own blob. The figures are
//! printed (`--nocapture`).

use venus_tests::server::Server;

const CHURN: &str = env!("CARGO_BIN_EXE_venus-memchurn");
const CYCLES: u32 = 10_000;
/// What venus-memchurn allocates: a warm-up of a tenth, then the cycles.
const ALLOCATIONS: usize = (CYCLES / 10 + 1 + CYCLES) as usize;

/// Runs venus-memchurn through our ICD against a fresh server recording blobs
/// (with `env` for the client); returns the number of device-memory blobs (those
/// with a nonzero blob id) and the program's output.
fn churn(name: &str, granularity: &str, env: &[(&str, &str)]) -> (usize, String) {
    venus_tests::icd::ensure_built();
    let dir = std::env::temp_dir().join(format!("venus-suballoc-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let log = dir.join("blobs.log");
    let _ = std::fs::remove_file(&log);
    let log_s = log.to_string_lossy().to_string();
    let mut server = Server::start_with(
        &format!("suballoc-{name}"),
        false,
        &[
            ("VENUS_HOST_GRANULARITY", granularity),
            ("VENUS_BLOB_LOG", log_s.as_str()),
        ],
    );
    let pid = server.pid().to_string();
    let mut cmd = server.our_icd_command(CHURN);
    cmd.args(["--cycles", &CYCLES.to_string(), "--server-pid", &pid]);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("venus-memchurn");
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success() && stdout.lines().any(|l| l == "PASS"),
        "venus-memchurn ({name}) failed (RSS not flat or an error):\n{stdout}\n{}\nserver:\n{}",
        String::from_utf8_lossy(&out.stderr),
        server.log_text()
    );
    assert!(
        stdout.contains("host_rss_kib"),
        "host RSS not measured:\n{stdout}"
    );
    assert!(server.is_running());
    let text = std::fs::read_to_string(&log).expect("the host wrote a blob log");
    let blobs = text
        .lines()
        .filter(|l| l.starts_with("blob "))
        .filter(|l| {
            l.split_whitespace()
                .find_map(|kv| kv.strip_prefix("blob_id="))
                .is_some_and(|v| v != "0")
        })
        .count();
    let _ = std::fs::remove_dir_all(&dir);
    (blobs, stdout)
}

fn cell(granularity: &str) {
    let (sub, out) = churn(&format!("on-{granularity}"), granularity, &[]);
    println!(
        "sub-allocation on, granularity {granularity}: {sub} device-memory blobs for {ALLOCATIONS} allocations\n{out}"
    );
    let (own, out) = churn(
        &format!("off-{granularity}"),
        granularity,
        &[("VENUS_SUBALLOC", "0")],
    );
    println!(
        "sub-allocation off, granularity {granularity}: {own} device-memory blobs for {ALLOCATIONS} allocations\n{out}"
    );
    assert!(
        own >= ALLOCATIONS,
        "without sub-allocation every allocation should have its own blob: {own} < {ALLOCATIONS}"
    );
    // One allocation at a time: one block (plus at most a spare) serves them all.
    assert!(
        sub <= 4 && sub * 1000 < ALLOCATIONS,
        "sub-allocation did not cut the blobs: {sub} blobs for {ALLOCATIONS} allocations"
    );
}

#[test]
fn churn_is_carved_out_of_few_blocks_4k() {
    cell("4096");
}

#[test]
fn churn_is_carved_out_of_few_blocks_16k() {
    cell("16384");
}
