//! `venus-bench compare`: every column, side by side (the driver behind
//! `tests/bench/run.sh`).
//!
//! Starts our `venus-vtest-server` (lavapipe underneath) and, where it is set up and
//! we are root, stock virglrenderer 1.1.0 in its chroot; then, `--rounds` times,
//! for every column in an order rotated each round: `venus-bench measure` in that
//! column's environment, and `vulkaninfo --summary` timed. The protocol figures
//! come from `bench-protocol --json`. Prints the table and the targets, and writes
//! `results.json` and `results.md` into `--out`.

use std::fs::{File, OpenOptions};
use std::io::Read;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::{json, Map, Value};
use venus_tests::server::{LOADER_VARS, LVP_ICD, VENUS_ICD};
use venus_tests::virgl::{self, StockVirgl};

use crate::rows::{Source, ROWS};
use crate::table::{
    Results, COLUMNS, MESA_OURS, MESA_VIRGL, NATIVE, NATIVE_BUSY, OURS_INPROC, OURS_VIRGL,
    OURS_VTEST,
};

/// More variables cleared for every child, besides the loader's.
const OUR_VARS: &[&str] = &[
    "VENUS_TRANSPORT",
    "VENUS_HOST_DRIVER",
    "VENUS_LOG",
    "VN_PERF",
    "LD_LIBRARY_PATH",
];
/// The rows that run against stock virglrenderer: those that map no memory (it cannot
/// export a mappable blob here).
const VIRGL_ROWS: &[&str] = &[
    "submit_wait",
    "fence_status",
    "device_address",
    "event_status",
    "host_query",
    "query_after_300us",
    "query_after_2ms",
];
/// Mesa venus needs mapped memory at vkCreateDevice for its fence, semaphore and event
/// feedback; without feedback it creates a device on stock virglrenderer.
const MESA_NO_FEEDBACK: &str =
    "no_event_feedback,no_fence_feedback,no_semaphore_feedback,no_query_feedback";
/// How long one `measure` may take before it is killed.
const MEASURE_TIMEOUT: Duration = Duration::from_secs(600);
/// How long one `vulkaninfo --summary` may take.
const VULKANINFO_TIMEOUT: Duration = Duration::from_secs(60);

/// Options of `compare`.
pub(crate) struct CompareOptions {
    rounds: u32,
    runs: u32,
    run_ms: u32,
    vulkaninfo_runs: u32,
    elements: u32,
    out: PathBuf,
    virgl: bool,
}

/// The repository (this crate is `<repo>/tests`).
fn repo_root() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().unwrap_or(manifest).to_path_buf()
}

pub(crate) fn parse(args: &[String]) -> Result<CompareOptions, String> {
    let mut o = CompareOptions {
        rounds: 5,
        runs: 7,
        run_ms: 25,
        vulkaninfo_runs: 3,
        elements: 1 << 20,
        out: repo_root().join("target").join("bench"),
        virgl: true,
    };
    let mut it = args.iter().cloned();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--rounds" => o.rounds = crate::number("--rounds", it.next(), 1, 100)?,
            "--runs" => o.runs = crate::number("--runs", it.next(), 1, 10_000)?,
            "--run-ms" => o.run_ms = crate::number("--run-ms", it.next(), 1, 60_000)?,
            "--vulkaninfo-runs" => {
                o.vulkaninfo_runs = crate::number("--vulkaninfo-runs", it.next(), 1, 1000)?;
            }
            "--elements" => {
                o.elements = crate::number("--elements", it.next(), 64, crate::MAX_ELEMENTS)?;
            }
            "--out" => o.out = PathBuf::from(it.next().ok_or("--out needs a value")?),
            "--no-virgl" => o.virgl = false,
            "--quick" => {
                o.rounds = 1;
                o.runs = 5;
                o.run_ms = 10;
                o.vulkaninfo_runs = 2;
            }
            "-h" | "--help" => return Err(String::new()),
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(o)
}

/// Output of a child that ran to its end.
struct Finished {
    status: ExitStatus,
    stdout: String,
    /// From spawn to exit.
    wall: Duration,
}

/// Runs `cmd` (stdout captured, stdin closed), killing it after `timeout`.
fn run_timed(mut cmd: Command, timeout: Duration) -> Result<Finished, String> {
    let name = format!("{:?}", cmd.get_program());
    cmd.stdin(Stdio::null()).stdout(Stdio::piped());
    let t0 = Instant::now();
    let mut child = cmd.spawn().map_err(|e| format!("starting {name}: {e}"))?;
    let pid = child.id();
    let mut stdout = child.stdout.take().ok_or("no stdout pipe")?;
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stdout.read_to_string(&mut s);
        s
    });
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let status = child.wait();
        let _ = tx.send((status, t0.elapsed()));
    });
    match rx.recv_timeout(timeout) {
        Ok((Ok(status), wall)) => Ok(Finished {
            status,
            stdout: reader.join().unwrap_or_default(),
            wall,
        }),
        Ok((Err(e), _)) => Err(format!("waiting for {name}: {e}")),
        Err(_) => {
            // Our own child, by its pid (the waiting thread owns the handle).
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
            let _ = rx.recv_timeout(Duration::from_secs(10));
            Err(format!("{name} timed out after {timeout:?}"))
        }
    }
}

/// Our `venus-vtest-server` on a private socket; stopped (SIGTERM) on drop.
struct OurServer {
    child: Child,
    socket: PathBuf,
    dir: PathBuf,
}

impl OurServer {
    fn start(bin_dir: &Path, log: &Path) -> Result<OurServer, String> {
        let dir = std::env::temp_dir().join(format!("venus-bench-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
        let socket = dir.join("vtest.sock");
        let out = File::create(log).map_err(|e| format!("creating {}: {e}", log.display()))?;
        let err = out.try_clone().map_err(|e| format!("log file: {e}"))?;
        let mut cmd = Command::new(bin_dir.join("venus-vtest-server"));
        for v in LOADER_VARS.iter().chain(OUR_VARS) {
            cmd.env_remove(v);
        }
        cmd.env("VK_DRIVER_FILES", LVP_ICD)
            .env("VENUS_LOG", "warn")
            .arg("--socket-path")
            .arg(&socket)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err);
        let child = cmd
            .spawn()
            .map_err(|e| format!("starting venus-vtest-server: {e}"))?;
        let mut server = OurServer { child, socket, dir };
        let t0 = Instant::now();
        loop {
            if let Ok(Some(st)) = server.child.try_wait() {
                return Err(format!(
                    "venus-vtest-server exited at start ({st}); see {}",
                    log.display()
                ));
            }
            if UnixStream::connect(&server.socket).is_ok() {
                return Ok(server);
            }
            if t0.elapsed() > Duration::from_secs(20) {
                return Err("venus-vtest-server did not accept within 20 s".into());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for OurServer {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let t0 = Instant::now();
        while t0.elapsed() < Duration::from_secs(10) {
            if let Ok(Some(_)) = self.child.try_wait() {
                let _ = std::fs::remove_dir_all(&self.dir);
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// What runs each column.
struct Setup {
    bin_dir: PathBuf,
    repo: PathBuf,
    ours: OurServer,
    /// Stock virglrenderer, or why it is not running.
    virgl: Result<StockVirgl, String>,
}

impl Setup {
    /// `program` in `column`'s environment, or why the column cannot run. `measure`:
    /// for `venus-bench measure` (Mesa venus on stock virglrenderer without feedback).
    fn command(&self, column: &str, program: &Path, measure: bool) -> Result<Command, String> {
        let mut cmd = Command::new(program);
        for v in LOADER_VARS.iter().chain(OUR_VARS) {
            cmd.env_remove(v);
        }
        let our_icd = self.repo.join("packaging").join("venus_icd.json");
        match column {
            NATIVE | NATIVE_BUSY => {
                cmd.env("VK_DRIVER_FILES", LVP_ICD);
            }
            OURS_INPROC | OURS_VTEST => {
                cmd.env("VK_DRIVER_FILES", &our_icd)
                    .env("LD_LIBRARY_PATH", &self.bin_dir);
                if column == OURS_INPROC {
                    cmd.env("VENUS_TRANSPORT", "in-process");
                } else {
                    cmd.env("VENUS_TRANSPORT", "vtest")
                        .env("VTEST_SOCKET_NAME", &self.ours.socket);
                }
            }
            MESA_OURS => {
                cmd.env("VK_DRIVER_FILES", VENUS_ICD)
                    .env("VN_DEBUG", "vtest")
                    .env("VTEST_SOCKET_NAME", &self.ours.socket);
            }
            OURS_VIRGL => {
                let server = self.virgl.as_ref().map_err(Clone::clone)?;
                cmd.env("VK_DRIVER_FILES", &our_icd)
                    .env("LD_LIBRARY_PATH", &self.bin_dir)
                    .env("VENUS_TRANSPORT", "vtest")
                    .env("VTEST_SOCKET_NAME", &server.socket);
            }
            MESA_VIRGL => {
                let server = self.virgl.as_ref().map_err(Clone::clone)?;
                cmd.env("VK_DRIVER_FILES", VENUS_ICD)
                    .env("VN_DEBUG", "vtest")
                    .env("VTEST_SOCKET_NAME", &server.socket);
                if measure {
                    cmd.env("VN_PERF", MESA_NO_FEEDBACK);
                }
            }
            other => return Err(format!("unknown column {other}")),
        }
        Ok(cmd)
    }

    /// The environment a column sets, for the record.
    fn env_text(&self, column: &str) -> String {
        match column {
            NATIVE => format!("VK_DRIVER_FILES={LVP_ICD}"),
            NATIVE_BUSY => format!(
                "VK_DRIVER_FILES={LVP_ICD}, while `sh -c 'while :; do :; done'` runs \
                 (a busy loop that keeps the other CPU out of its idle state)"
            ),
            OURS_INPROC => "LD_LIBRARY_PATH=target/release \
                 VK_DRIVER_FILES=packaging/venus_icd.json VENUS_TRANSPORT=in-process"
                .into(),
            OURS_VTEST => "LD_LIBRARY_PATH=target/release \
                 VK_DRIVER_FILES=packaging/venus_icd.json VENUS_TRANSPORT=vtest \
                 VTEST_SOCKET_NAME=<venus-vtest-server socket>"
                .into(),
            MESA_OURS => format!(
                "VK_DRIVER_FILES={VENUS_ICD} VN_DEBUG=vtest \
                 VTEST_SOCKET_NAME=<venus-vtest-server socket>"
            ),
            OURS_VIRGL => "LD_LIBRARY_PATH=target/release \
                 VK_DRIVER_FILES=packaging/venus_icd.json VENUS_TRANSPORT=vtest \
                 VTEST_SOCKET_NAME=<virgl_test_server --venus socket>"
                .into(),
            _ => format!(
                "VK_DRIVER_FILES={VENUS_ICD} VN_DEBUG=vtest \
                 VTEST_SOCKET_NAME=<virgl_test_server --venus socket> \
                 (venus-bench measure: VN_PERF={MESA_NO_FEEDBACK})"
            ),
        }
    }
}

/// A busy loop (`sh -c 'while :; do :; done'`) for the reference column: on this
/// virtual machine an idle CPU halts, and waking it costs tens of microseconds, which
/// native lavapipe pays on every fence wait and a spinning venus guest does not.
fn start_spinner() -> Option<Child> {
    Command::new("sh")
        .args(["-c", "while :; do :; done"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status").is_ok_and(|s| {
        s.lines()
            .find(|l| l.starts_with("Uid:"))
            .and_then(|l| l.split_whitespace().nth(2))
            == Some("0")
    })
}

fn command_output(program: &str, args: &[&str], dir: &Path) -> Option<String> {
    let out = Command::new(program)
        .args(args)
        .current_dir(dir)
        .stderr(Stdio::null())
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

/// Date, commit, machine.
fn meta(repo: &Path, o: &CompareOptions) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert(
        "date".into(),
        json!(command_output(
            "date",
            &["-u", "+%Y-%m-%d %H:%M:%S UTC"],
            repo
        )),
    );
    let commit = command_output("git", &["rev-parse", "HEAD"], repo);
    let dirty = command_output(
        "git",
        &["status", "--porcelain", "--untracked-files=no"],
        repo,
    )
    .map(|s| !s.is_empty());
    m.insert("commit".into(), json!(commit));
    m.insert("tree_modified".into(), json!(dirty));
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let cpu = cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, v)| v.trim().to_string());
    let mem_kib: Option<u64> = std::fs::read_to_string("/proc/meminfo").ok().and_then(|s| {
        s.lines()
            .find(|l| l.starts_with("MemTotal:"))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
    });
    m.insert(
        "machine".into(),
        json!({
            "cpu": cpu,
            "nproc": std::thread::available_parallelism().map(|n| n.get()).ok(),
            "memory_gib": mem_kib.map(|k| (k as f64 / 1048576.0 * 10.0).round() / 10.0),
            "kernel": std::fs::read_to_string("/proc/sys/kernel/osrelease")
                .ok()
                .map(|s| s.trim().to_string()),
            "mesa_vulkan_drivers": command_output(
                "dpkg-query", &["-W", "-f", "${Version}", "mesa-vulkan-drivers"], repo),
        }),
    );
    m.insert(
        "options".into(),
        json!({
            "rounds": o.rounds,
            "runs_per_round": o.runs,
            "run_ms": o.run_ms,
            "vulkaninfo_runs_per_round": o.vulkaninfo_runs,
            "elements": o.elements,
        }),
    );
    m.insert("load_average_before".into(), json!(load_average()));
    m
}

pub(crate) fn run(o: &CompareOptions) -> Result<(), String> {
    let exe = std::env::current_exe().map_err(|e| format!("current_exe: {e}"))?;
    let bin_dir = exe
        .parent()
        .ok_or("no directory for the executable")?
        .to_path_buf();
    for f in ["libvenus_icd.so", "venus-vtest-server", "bench-protocol"] {
        if !bin_dir.join(f).exists() {
            return Err(format!(
                "{} missing: build first with `cargo build --release -p venus-tests \
                 -p venus-host-translator -p venus-guest-icd` (tests/bench/run.sh does)",
                bin_dir.join(f).display()
            ));
        }
    }
    let repo = repo_root();
    std::fs::create_dir_all(&o.out).map_err(|e| format!("creating {}: {e}", o.out.display()))?;
    let mut results = Results {
        meta: meta(&repo, o),
        ..Results::default()
    };
    eprintln!(
        "venus-bench: load average before: {}",
        results.meta["load_average_before"]
    );

    let ours = OurServer::start(&bin_dir, &o.out.join("server-ours.log"))?;
    let virgl = if !o.virgl {
        Err("skipped (--no-virgl)".to_string())
    } else if !is_root() {
        Err("stock virglrenderer runs in a chroot, which needs root".to_string())
    } else if !virgl::is_set_up(&virgl::chroot_dir()) {
        Err(format!(
            "stock virglrenderer chroot not set up: run `bash tests/virgl/setup.sh` ({})",
            virgl::chroot_dir().display()
        ))
    } else {
        StockVirgl::start().map_err(|e| format!("stock virgl_test_server did not start: {e}"))
    };
    if let Err(e) = &virgl {
        eprintln!("venus-bench: {MESA_VIRGL}: {e}");
    }
    let setup = Setup {
        bin_dir,
        repo,
        ours,
        virgl,
    };

    protocol(&setup, &mut results);
    for row in ROWS
        .iter()
        .filter(|r| r.source == Source::Vulkan && !VIRGL_ROWS.contains(&r.id))
    {
        for c in [OURS_VIRGL, MESA_VIRGL] {
            results.na(
                row.id,
                c,
                "needs mapped memory: stock virglrenderer 1.1.0 cannot export a mappable \
                 blob here (virgl_renderer_resource_export_blob fails with -22)"
                    .into(),
            );
        }
    }
    for round in 0..o.rounds {
        let n = COLUMNS.len();
        for k in 0..n {
            let column = COLUMNS[(k + round as usize) % n].id;
            eprintln!("venus-bench: round {}/{}: {column}", round + 1, o.rounds);
            let mut log = OpenOptions::new()
                .create(true)
                .append(true)
                .open(o.out.join(format!("{column}.log")))
                .map_err(|e| format!("log file: {e}"))?;
            let spinner = (column == NATIVE_BUSY).then(start_spinner).flatten();
            measure_column(&setup, o, column, &log, &mut results);
            let _ = std::io::Write::flush(&mut log);
            vulkaninfo_column(&setup, o, column, &log, &mut results);
            if let Some(mut child) = spinner {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
    results
        .meta
        .insert("load_average_after".into(), json!(load_average()));
    for c in COLUMNS {
        results
            .column_info
            .entry(c.id)
            .or_default()
            .insert("env".into(), json!(setup.env_text(c.id)));
    }
    drop(setup);

    let md = header(&results) + &results.markdown();
    println!("{md}");
    let json_path = o.out.join("results.json");
    let text = serde_json::to_string_pretty(&results.json()).map_err(|e| e.to_string())?;
    std::fs::write(&json_path, text + "\n")
        .map_err(|e| format!("writing {}: {e}", json_path.display()))?;
    std::fs::write(o.out.join("results.md"), &md)
        .map_err(|e| format!("writing results.md: {e}"))?;
    eprintln!("venus-bench: wrote {}", json_path.display());
    Ok(())
}

/// The lines above the table: when, what, where.
fn header(r: &Results) -> String {
    let m = &r.meta;
    let s = |v: Option<&Value>| v.and_then(Value::as_str).unwrap_or("?").to_string();
    let machine = &m["machine"];
    let mut out = format!(
        "Run of {}, commit {}{}\nMachine: {}, {} CPUs, {} GiB, Linux {}, mesa-vulkan-drivers {}\n\
         Load average before / after: {} / {}\nOptions: {}\n",
        s(m.get("date")),
        s(m.get("commit")),
        if m.get("tree_modified").and_then(Value::as_bool) == Some(true) {
            " (work tree had uncommitted changes)"
        } else {
            ""
        },
        s(machine.get("cpu")),
        machine["nproc"],
        machine["memory_gib"],
        s(machine.get("kernel")),
        s(machine.get("mesa_vulkan_drivers")),
        s(m.get("load_average_before")),
        s(m.get("load_average_after")),
        m.get("options").cloned().unwrap_or_default(),
    );
    for c in COLUMNS {
        if let Some(info) = r.column_info.get(c.id) {
            if let Some(d) = info.get("device").and_then(Value::as_str) {
                out.push_str(&format!(
                    "- {}: {} — driver {}, Vulkan {}\n",
                    c.title,
                    d,
                    s(info.get("driver")),
                    s(info.get("api_version"))
                ));
            }
        }
    }
    out.push('\n');
    out
}

/// Protocol rows from `bench-protocol --json` (our crate, no driver: the same figure
/// for both of our columns).
fn protocol(setup: &Setup, results: &mut Results) {
    for c in [NATIVE, NATIVE_BUSY, MESA_OURS, OURS_VIRGL, MESA_VIRGL] {
        let reason = match c {
            NATIVE | NATIVE_BUSY => "no protocol: the application calls lavapipe directly",
            OURS_VIRGL => "the same encoder as the other columns of our ICD",
            _ => "Mesa's C encoder and virglrenderer's decoder are not measured here",
        };
        for r in ["encode", "decode"] {
            results.na(r, c, reason.into());
        }
    }
    let mut cmd = Command::new(setup.bin_dir.join("bench-protocol"));
    cmd.arg("--json").stderr(Stdio::inherit());
    eprintln!("venus-bench: bench-protocol --json");
    let parsed = run_timed(cmd, MEASURE_TIMEOUT).and_then(|f| {
        if !f.status.success() {
            return Err(format!("bench-protocol failed: {}", f.status));
        }
        serde_json::from_str::<Value>(f.stdout.trim()).map_err(|e| e.to_string())
    });
    match parsed {
        Ok(v) => {
            results.memcpy_mbps = v["memcpy_mbps"].as_f64();
            for (row, key) in [("encode", "encode_mbps"), ("decode", "decode_mbps")] {
                for c in [OURS_INPROC, OURS_VTEST] {
                    match v[key].as_f64() {
                        Some(x) => results.add(row, c, &[x]),
                        None => results.na(row, c, format!("bench-protocol gave no {key}")),
                    }
                }
            }
            results.meta.insert("protocol".into(), v);
        }
        Err(e) => {
            for r in ["encode", "decode"] {
                for c in [OURS_INPROC, OURS_VTEST] {
                    results.na(r, c, e.clone());
                }
            }
        }
    }
}

/// One `venus-bench measure` in `column`'s environment.
fn measure_column(
    setup: &Setup,
    o: &CompareOptions,
    column: &'static str,
    log: &File,
    results: &mut Results,
) {
    let exe = setup.bin_dir.join("venus-bench");
    let virgl = column == OURS_VIRGL || column == MESA_VIRGL;
    let measured = |id: &str| !virgl || VIRGL_ROWS.contains(&id);
    let outcome = setup.command(column, &exe, true).and_then(|mut cmd| {
        cmd.args([
            "measure",
            "--runs",
            &o.runs.to_string(),
            "--run-ms",
            &o.run_ms.to_string(),
            "--elements",
            &o.elements.to_string(),
            "--label",
            column,
        ]);
        if virgl {
            cmd.args(["--rows", &VIRGL_ROWS.join(",")]);
        }
        if let Ok(err) = log.try_clone() {
            cmd.stderr(err);
        }
        let f = run_timed(cmd, MEASURE_TIMEOUT)?;
        let v: Value = serde_json::from_str(f.stdout.trim())
            .map_err(|e| format!("venus-bench measure ({}) printed no JSON: {e}", f.status))?;
        Ok(v)
    });
    let v = match outcome {
        Ok(v) => v,
        Err(e) => {
            for r in ROWS
                .iter()
                .filter(|r| r.source == Source::Vulkan && measured(r.id))
            {
                results.na(r.id, column, e.clone());
            }
            return;
        }
    };
    if let Some(e) = v.get("error").and_then(Value::as_str) {
        for r in ROWS
            .iter()
            .filter(|r| r.source == Source::Vulkan && measured(r.id))
        {
            results.na(r.id, column, format!("setup failed: {e}"));
        }
        return;
    }
    let info = results.column_info.entry(column).or_default();
    for k in ["device", "driver", "api_version"] {
        if let Some(x) = v.get(k) {
            info.insert(k.into(), x.clone());
        }
    }
    for r in ROWS
        .iter()
        .filter(|r| r.source == Source::Vulkan && measured(r.id))
    {
        let cell = &v["rows"][r.id];
        if let Some(figs) = cell.get("figures").and_then(Value::as_array) {
            let figs: Vec<f64> = figs.iter().filter_map(Value::as_f64).collect();
            results.add(r.id, column, &figs);
        } else if let Some(e) = cell.get("error").and_then(Value::as_str) {
            results.na(r.id, column, format!("failed: {e}"));
        } else {
            results.na(r.id, column, "not measured".into());
        }
    }
}

/// `vulkaninfo --summary`: a warm-up, then `o.vulkaninfo_runs` timed runs.
fn vulkaninfo_column(
    setup: &Setup,
    o: &CompareOptions,
    column: &'static str,
    log: &File,
    results: &mut Results,
) {
    let row = ROWS.iter().find(|r| r.id == "vulkaninfo");
    let Some(row) = row else { return };
    let mut figures = Vec::new();
    for i in 0..=o.vulkaninfo_runs {
        let outcome = setup
            .command(column, Path::new("vulkaninfo"), false)
            .and_then(|mut cmd| {
                cmd.arg("--summary");
                if let Ok(err) = log.try_clone() {
                    cmd.stderr(err);
                }
                let f = run_timed(cmd, VULKANINFO_TIMEOUT)?;
                if !f.status.success() || !f.stdout.contains("deviceName") {
                    return Err(format!(
                        "vulkaninfo --summary failed ({}) or listed no device",
                        f.status
                    ));
                }
                Ok(f.wall)
            });
        match outcome {
            Ok(wall) if i > 0 => figures.push(row.figure(wall.as_secs_f64())),
            Ok(_) => {}
            Err(e) => {
                results.na(row.id, column, e);
                return;
            }
        }
    }
    results.add(row.id, column, &figures);
}
