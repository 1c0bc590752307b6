//! Runs Vulkan programs through our guest ICD (`libvenus_icd.so` of `guest-icd`), over
//! vtest to a [`Server`](crate::server::Server) or with the host linked in-process.
//!
//! The loader finds the ICD through the packaging manifest
//! (`packaging/venus_icd.json`, whose `library_path` is the bare file name), so the
//! child gets `VK_DRIVER_FILES=<that manifest>` and `LD_LIBRARY_PATH=target/<profile>`.
//! Every loader variable (and every `VENUS_*` / venus variable) is cleared first, so a
//! developer's environment cannot change what a test runs.
//!
//! [`ensure_built`] (called by everything here) builds the ICD and the vtest server
//! when they are missing *or older than their sources*: `cargo test -p venus-tests`
//! does not build them, and a stale library would test old code.
//!
//! [`differences`] holds the table of every way our ICD's `vulkaninfo` differs from
//! native lavapipe's, and the ours-against-Mesa-venus listing built from both tables.

pub mod differences;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant, SystemTime};

/// File name of the ICD library (what the manifest's `library_path` names).
pub const ICD_LIBRARY: &str = "libvenus_icd.so";
/// The functions the ICD exports: the loader-ICD interface, nothing else.
pub const LOADER_INTERFACE: &[&str] = &[
    "vk_icdGetInstanceProcAddr",
    "vk_icdGetPhysicalDeviceProcAddr",
    "vk_icdNegotiateLoaderICDInterfaceVersion",
];
/// The driver the in-process host loads (`VENUS_HOST_DRIVER`), lavapipe.
pub const IN_PROCESS_HOST_DRIVER: &str = "libvulkan_lvp.so";
/// The environment variable that enables layers by name pattern in the guest loader.
pub const LAYERS_ENABLE: &str = "VK_LOADER_LAYERS_ENABLE";

/// Variables cleared for every child: the loader's, Mesa venus's, ours.
pub const CLEARED_VARS: &[&str] = &[
    "VK_ICD_FILENAMES",
    "VK_DRIVER_FILES",
    "VK_ADD_DRIVER_FILES",
    "VK_INSTANCE_LAYERS",
    "VK_LOADER_LAYERS_ENABLE",
    "VK_LOADER_LAYERS_DISABLE",
    "VK_LOADER_DRIVERS_SELECT",
    "VK_LOADER_DRIVERS_DISABLE",
    "VK_LOADER_DEBUG",
    "MESA_VK_DEVICE_SELECT",
    "VN_DEBUG",
    "VTEST_SOCKET_NAME",
    "VENUS_TRANSPORT",
    "VENUS_HOST_DRIVER",
    "VENUS_LOG",
    "DISPLAY",
    "WAYLAND_DISPLAY",
];

/// How the ICD reaches a host.
#[derive(Clone, Copy, Debug)]
pub enum Transport<'a> {
    /// vtest over the Unix socket at this path (a running `venus-vtest-server`).
    Vtest(&'a Path),
    /// The host translator linked into the process, on lavapipe.
    InProcess,
}

impl Transport<'_> {
    /// A short name for messages.
    pub fn name(&self) -> &'static str {
        match self {
            Transport::Vtest(_) => "vtest",
            Transport::InProcess => "in-process",
        }
    }
}

/// `target/<profile>` of the running test executable (`.../target/<profile>/deps/x`).
pub fn target_profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    exe.parent()
        .and_then(Path::parent)
        .map(Path::to_path_buf)
        .expect("target/<profile> directory")
}

/// The workspace root (the parent of this crate's directory).
pub fn workspace_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .expect("workspace directory")
}

/// The absolute path of the packaging manifest the loader is pointed at.
pub fn icd_manifest() -> PathBuf {
    let path = workspace_dir().join("packaging").join("venus_icd.json");
    assert!(path.exists(), "{} is missing", path.display());
    path
}

/// The built ICD library (built first if missing or stale, see [`ensure_built`]).
pub fn icd_library() -> PathBuf {
    ensure_built();
    target_profile_dir().join(ICD_LIBRARY)
}

/// Newest modification time of the `.rs`/`.toml` files under `dir` (recursively).
fn newest_source(dir: &Path) -> Option<SystemTime> {
    let mut newest = None;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let path = e.path();
            let Ok(meta) = e.metadata() else {
                continue;
            };
            if meta.is_dir() {
                if path.file_name().is_some_and(|n| n != "target") {
                    stack.push(path);
                }
            } else if path
                .extension()
                .is_some_and(|x| x == "rs" || x == "toml" || x == "json")
            {
                if let Ok(m) = meta.modified() {
                    newest = newest.max(Some(m));
                }
            }
        }
    }
    newest
}

/// Whether `artifact` is missing or older than any source it is built from.
fn stale(artifact: &Path, sources: &[&str]) -> bool {
    let Ok(built) = std::fs::metadata(artifact).and_then(|m| m.modified()) else {
        return true;
    };
    let ws = workspace_dir();
    let newest = sources
        .iter()
        .filter_map(|s| newest_source(&ws.join(s)))
        .chain(std::fs::metadata(ws.join("Cargo.lock")).and_then(|m| m.modified()))
        .max();
    newest.is_some_and(|n| n > built)
}

/// `cargo build` with the profile and target directory of the running test.
fn cargo_build(args: &[&str]) {
    let dir = target_profile_dir();
    let profile = match dir.file_name().and_then(|n| n.to_str()) {
        Some("debug") | None => "dev".to_string(),
        Some(other) => other.to_string(),
    };
    let target_dir = dir.parent().expect("target directory");
    let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cmd.arg("build")
        .args(args)
        .arg("--profile")
        .arg(&profile)
        .arg("--target-dir")
        .arg(target_dir)
        .current_dir(workspace_dir());
    let st = cmd.status().expect("running cargo build");
    assert!(st.success(), "cargo build {args:?} failed");
}

/// Builds the ICD library and the vtest server when missing or older than their
/// sources (once per test process).
pub fn ensure_built() {
    static DONE: OnceLock<()> = OnceLock::new();
    DONE.get_or_init(|| {
        let dir = target_profile_dir();
        let deps = ["guest-icd", "host-translator", "protocol"];
        if stale(&dir.join(ICD_LIBRARY), &deps) {
            cargo_build(&["-p", "venus-guest-icd", "--lib"]);
        }
        if stale(
            &dir.join("venus-vtest-server"),
            &["host-translator", "protocol"],
        ) {
            cargo_build(&["-p", "venus-host-translator", "--bin", "venus-vtest-server"]);
        }
    });
}

/// The variables that run a program through our ICD over `transport` (set on top of
/// an environment cleared of [`CLEARED_VARS`]).
pub fn icd_env(transport: Transport<'_>) -> Vec<(String, String)> {
    ensure_built();
    let lib_dir = target_profile_dir();
    let ld_path = match std::env::var("LD_LIBRARY_PATH") {
        Ok(old) if !old.is_empty() => format!("{}:{old}", lib_dir.display()),
        _ => lib_dir.display().to_string(),
    };
    let mut env = vec![
        ("LD_LIBRARY_PATH".to_string(), ld_path),
        (
            "VK_DRIVER_FILES".to_string(),
            icd_manifest().display().to_string(),
        ),
        (
            "VENUS_TRANSPORT".to_string(),
            match transport {
                Transport::Vtest(_) => "vtest",
                Transport::InProcess => "in-process",
            }
            .to_string(),
        ),
    ];
    match transport {
        Transport::Vtest(socket) => {
            env.push(("VTEST_SOCKET_NAME".into(), socket.display().to_string()))
        }
        Transport::InProcess => {
            env.push(("VENUS_HOST_DRIVER".into(), IN_PROCESS_HOST_DRIVER.into()))
        }
    }
    env
}

/// A command running `program` through our ICD over `transport`, in `dir`.
pub fn icd_command(
    program: impl AsRef<std::ffi::OsStr>,
    transport: Transport<'_>,
    dir: &Path,
) -> Command {
    let mut cmd = Command::new(program);
    for v in CLEARED_VARS {
        cmd.env_remove(v);
    }
    cmd.envs(icd_env(transport))
        .current_dir(dir)
        .stdin(Stdio::null());
    cmd
}

/// What a program run with [`run_with_timeout`] did.
#[derive(Debug)]
pub struct Ran {
    /// The exit status; `None` when it was killed for taking too long.
    pub status: Option<ExitStatus>,
    pub stdout: String,
    pub stderr: String,
    pub elapsed: Duration,
}

impl Ran {
    /// Exited with status 0 in time.
    pub fn success(&self) -> bool {
        self.status.is_some_and(|s| s.success())
    }

    /// Everything about the run, for assertion messages.
    pub fn describe(&self) -> String {
        format!(
            "status {} after {:?}\n--- stdout\n{}\n--- stderr\n{}",
            match self.status {
                Some(s) => s.to_string(),
                None => "none: killed, it did not finish in time (hang)".into(),
            },
            self.elapsed,
            tail(&self.stdout, 6000),
            tail(&self.stderr, 6000)
        )
    }
}

/// The last `max` bytes of `s` (on a character boundary).
pub fn tail(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut start = s.len() - max;
    while !s.is_char_boundary(start) {
        start += 1;
    }
    &s[start..]
}

fn collect(pipe: Option<impl Read + Send + 'static>) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        if let Some(mut p) = pipe {
            let _ = p.read_to_end(&mut buf);
        }
        String::from_utf8_lossy(&buf).into_owned()
    })
}

/// Waits for `child` at most `limit`, killing it (SIGKILL) if it runs longer.
pub fn wait_with_timeout(mut child: Child, limit: Duration) -> Ran {
    let t0 = Instant::now();
    let out = collect(child.stdout.take());
    let err = collect(child.stderr.take());
    let status = loop {
        match child.try_wait() {
            Ok(Some(s)) => break Some(s),
            Ok(None) if t0.elapsed() >= limit => {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(10)),
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
        }
    };
    let elapsed = t0.elapsed();
    Ran {
        status,
        stdout: out.join().unwrap_or_default(),
        stderr: err.join().unwrap_or_default(),
        elapsed,
    }
}

/// Runs `cmd` (stdout and stderr captured) for at most `limit`.
pub fn run_with_timeout(mut cmd: Command, limit: Duration) -> Ran {
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let child = cmd.spawn().expect("spawning the program");
    wait_with_timeout(child, limit)
}

/// A `venus-vtest-server` of our own on a private socket, which a test may SIGKILL
/// ([`KillableServer::kill`]); [`Server`](crate::server::Server) only stops its server
/// gracefully. Killed (if still running) and reaped on drop.
pub struct KillableServer {
    child: Option<Child>,
    /// The socket path.
    pub socket: PathBuf,
    /// The server's output (stdout and stderr).
    pub log: PathBuf,
    dir: PathBuf,
}

impl KillableServer {
    /// Starts the server (on lavapipe, no host layers) and waits for its socket.
    pub fn start(name: &str) -> KillableServer {
        ensure_built();
        let dir = std::env::temp_dir().join(format!("venus-icd-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir");
        let socket = dir.join("vtest.sock");
        let log = dir.join("server.log");
        let out = std::fs::File::create(&log).expect("log file");
        let err = out.try_clone().expect("log file");
        let mut cmd = Command::new(crate::server::server_binary());
        for v in CLEARED_VARS {
            cmd.env_remove(v);
        }
        cmd.env("VK_DRIVER_FILES", crate::server::LVP_ICD)
            .env("VENUS_LOG", "info")
            .arg("--socket-path")
            .arg(&socket)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err);
        let mut child = cmd.spawn().expect("starting venus-vtest-server");
        let t0 = Instant::now();
        while !socket.exists() {
            if let Ok(Some(st)) = child.try_wait() {
                panic!(
                    "the server exited ({st}) before its socket appeared:\n{}",
                    std::fs::read_to_string(&log).unwrap_or_default()
                );
            }
            assert!(
                t0.elapsed() < Duration::from_secs(20),
                "server socket never appeared"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        KillableServer {
            child: Some(child),
            socket,
            log,
            dir,
        }
    }

    /// The server's process id.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// SIGKILLs the server and reaps it; returns how it ended.
    pub fn kill(&mut self) -> Option<ExitStatus> {
        let mut c = self.child.take()?;
        let _ = c.kill();
        c.wait().ok()
    }

    /// The server's output so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for KillableServer {
    fn drop(&mut self) {
        let _ = self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Defined dynamic symbols of a shared library: `(type letter, name)` from
/// `nm -D --defined-only` (binutils).
pub fn defined_dynamic_symbols(library: &Path) -> Vec<(char, String)> {
    let out = Command::new("nm")
        .args(["-D", "--defined-only"])
        .arg(library)
        .output()
        .expect("running nm (binutils)");
    assert!(
        out.status.success(),
        "nm failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            // "<address> <type> <name>" (the address is absent for absolute symbols
            // printed without one).
            let mut parts = l.split_whitespace().rev();
            let name = parts.next()?;
            let ty = parts.next()?.chars().next()?;
            Some((ty, name.to_string()))
        })
        .collect()
}

/// `apiVersion = 1.3.305 (4206897)` lines of `vulkaninfo` text output, as
/// (major, minor, patch), one per GPU.
pub fn api_versions_in_text(text: &str) -> Vec<(u32, u32, u32)> {
    text.lines()
        .filter_map(|l| l.trim().strip_prefix("apiVersion"))
        .filter_map(|rest| rest.trim_start().strip_prefix('='))
        .filter_map(|v| {
            let v = v.split_whitespace().next()?;
            let mut p = v.split('.').map(|x| x.parse::<u32>().ok());
            Some((p.next()??, p.next()??, p.next()??))
        })
        .collect()
}
