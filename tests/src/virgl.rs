//! Stock virglrenderer 1.1.0's vtest server (`virgl_test_server --venus
//! --no-virgl`, lavapipe underneath) for tests that compare against the reference
//! host. It runs in a Debian trixie chroot (it needs glibc 2.38) made by
//! `tests/virgl/setup.sh` and is started through `tests/virgl/run-server.sh`.
//!
//! Known limit of stock virgl on this machine: it cannot hand out a mappable fd,
//! so Mesa venus hangs in `vkCreateDevice` for compute against it. Instance and
//! physical-device queries (vulkaninfo) work.

use std::fs::File;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::server::{LOADER_VARS, VENUS_ICD};

/// Stamp file that `setup.sh` writes into a finished chroot.
const READY_STAMP: &str = ".venus-virgl-ready";
/// How long the server may take to accept its first connection.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// The repository root (this crate lives in `<repo>/tests`).
fn repo_root() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().unwrap_or(manifest).to_path_buf()
}

/// The tooling directory, `<repo>/tests/virgl`.
pub fn tooling_dir() -> PathBuf {
    repo_root().join("tests").join("virgl")
}

/// The chroot: `$VIRGL_CHROOT` if set, else `<repo>/.cache/virgl-chroot` (the
/// same default as the scripts).
pub fn chroot_dir() -> PathBuf {
    match std::env::var_os("VIRGL_CHROOT") {
        Some(d) if !d.is_empty() => PathBuf::from(d),
        _ => repo_root().join(".cache").join("virgl-chroot"),
    }
}

/// Whether `setup.sh` has finished in `chroot`.
pub fn is_set_up(chroot: &Path) -> bool {
    chroot.join(READY_STAMP).is_file() && chroot.join("usr/bin/virgl_test_server").is_file()
}

/// A running stock `virgl_test_server` on a private socket. Dropping it kills the
/// server (and everything it forked) and removes the socket's directory.
///
/// No mount is ever made on the host: `run-server.sh` mounts /proc, /dev and the
/// socket directory inside a private mount + pid namespace, which the kernel tears
/// down when the server dies.
pub struct StockVirgl {
    child: Option<Child>,
    /// The socket path outside the chroot (pass as `VTEST_SOCKET_NAME`).
    pub socket: PathBuf,
    /// Everything the server printed (stdout and stderr), in this file.
    pub log: PathBuf,
    dir: PathBuf,
}

impl StockVirgl {
    /// Starts the server in the default chroot ([`chroot_dir`]). The chroot must
    /// have been set up with `tests/virgl/setup.sh`; if not, the error says how.
    pub fn start() -> Result<StockVirgl, String> {
        Self::start_in(&chroot_dir())
    }

    /// Starts the server in `chroot`.
    pub fn start_in(chroot: &Path) -> Result<StockVirgl, String> {
        let setup = tooling_dir().join("setup.sh");
        if !is_set_up(chroot) {
            return Err(format!(
                "stock virglrenderer chroot not set up at {}: run `sudo bash {} {}` first \
                 (Debian trixie debootstrap + virgl-server + lavapipe; needs root and \
                 network, about a minute; CI runs it from .ci/run)",
                chroot.display(),
                setup.display(),
                chroot.display()
            ));
        }
        static SEQ: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "venus-stock-virgl-{}-{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
        let socket = dir.join("vtest.sock");
        let log = dir.join("server.log");
        let out = File::create(&log).map_err(|e| format!("creating {}: {e}", log.display()))?;
        let err = out
            .try_clone()
            .map_err(|e| format!("duplicating log file handle: {e}"))?;
        let script = tooling_dir().join("run-server.sh");
        let child = Command::new("bash")
            .arg(&script)
            .arg(&socket)
            .arg(chroot)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .map_err(|e| format!("starting {}: {e}", script.display()))?;
        let mut server = StockVirgl {
            child: Some(child),
            socket,
            log,
            dir,
        };
        server.wait_ready()?;
        Ok(server)
    }

    /// Waits until the server accepts a connection (the probe connection is
    /// closed at once; the server handles that as a client that went away).
    fn wait_ready(&mut self) -> Result<(), String> {
        let t0 = Instant::now();
        loop {
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    return Err(format!(
                        "stock virgl_test_server exited before accepting ({status}):\n{}",
                        self.log_text()
                    ));
                }
            }
            if self.socket.exists() && UnixStream::connect(&self.socket).is_ok() {
                return Ok(());
            }
            if t0.elapsed() > START_TIMEOUT {
                return Err(format!(
                    "stock virgl_test_server did not accept on {} within {:?}:\n{}",
                    self.socket.display(),
                    START_TIMEOUT,
                    self.log_text()
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// A command for `program` that uses stock Mesa venus against this server.
    pub fn venus_command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut cmd = Command::new(program);
        for v in LOADER_VARS {
            cmd.env_remove(v);
        }
        cmd.env("VK_DRIVER_FILES", VENUS_ICD)
            .env("VN_DEBUG", "vtest")
            .env("VTEST_SOCKET_NAME", &self.socket)
            .current_dir(&self.dir);
        cmd
    }

    /// The server's output so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Whether the server process is still running.
    pub fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    /// Every live process started for this server (the `unshare` wrapper, the
    /// namespace's init shell, `virgl_test_server`, its per-client forks and
    /// `virgl_render_server`s).
    pub fn processes(&self) -> Vec<Proc> {
        match &self.child {
            Some(c) => descendants(c.id()),
            None => Vec::new(),
        }
    }
}

/// A process, as `/proc/<pid>/stat` describes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Proc {
    /// Process id.
    pub pid: u32,
    /// Parent's process id.
    pub ppid: u32,
    /// Command name (at most 15 bytes, as the kernel keeps it).
    pub comm: String,
    /// State letter (`R`, `S`, `Z` for a zombie, ...).
    pub state: char,
    /// Start time in clock ticks since boot; tells a reused pid apart.
    pub start: u64,
}

impl Proc {
    /// Reads `/proc/<pid>/stat`; `None` if the process is gone.
    pub fn read(pid: u32) -> Option<Proc> {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        // "pid (comm) state ppid ..."; comm may contain spaces and parentheses.
        let open = stat.find('(')?;
        let close = stat.rfind(')')?;
        let comm = stat.get(open + 1..close)?.to_string();
        let rest: Vec<&str> = stat.get(close + 1..)?.split_whitespace().collect();
        // rest[0] is field 3 (state); ppid is field 4, starttime field 22.
        let state = rest.first()?.chars().next()?;
        let ppid = rest.get(1)?.parse().ok()?;
        let start = rest.get(19)?.parse().ok()?;
        Some(Proc {
            pid,
            ppid,
            comm,
            state,
            start,
        })
    }

    /// Whether this very process (same pid and start time) is still alive and not
    /// a zombie.
    pub fn is_alive(&self) -> bool {
        Proc::read(self.pid).is_some_and(|now| now.start == self.start && now.state != 'Z')
    }
}

/// `root` and all its live descendants.
fn descendants(root: u32) -> Vec<Proc> {
    let all: Vec<Proc> = std::fs::read_dir("/proc")
        .map(|rd| {
            rd.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
                .filter_map(Proc::read)
                .collect()
        })
        .unwrap_or_default();
    let mut out: Vec<Proc> = all.iter().filter(|p| p.pid == root).cloned().collect();
    let mut i = 0;
    while i < out.len() {
        let parent = out[i].pid;
        out.extend(all.iter().filter(|p| p.ppid == parent).cloned());
        i += 1;
    }
    out
}

impl Drop for StockVirgl {
    fn drop(&mut self) {
        let procs = self.processes();
        if let Some(mut c) = self.child.take() {
            // The child is `unshare --kill-child` (the script execs it); SIGKILL
            // to it kills the namespace's init and with it every process inside.
            // `unshare` blocks SIGTERM, so a gentler signal would not work.
            let _ = c.kill();
            let _ = c.wait();
        }
        // The kernel kills the namespace's processes asynchronously; wait for them
        // so a dropped server is really gone.
        let t0 = Instant::now();
        while procs.iter().any(Proc::is_alive) && t0.elapsed() < Duration::from_secs(10) {
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
