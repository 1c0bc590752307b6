//! Starts our `venus-vtest-server` for end-to-end tests and runs Vulkan programs
//! against it through stock Mesa venus (`libvulkan_virtio.so` over vtest).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Mesa's venus ICD manifest (Debian `mesa-vulkan-drivers`).
pub const VENUS_ICD: &str = "/usr/share/vulkan/icd.d/virtio_icd.json";
/// Lavapipe's ICD manifest.
pub const LVP_ICD: &str = "/usr/share/vulkan/icd.d/lvp_icd.json";
/// The validation layer's name.
pub const VALIDATION_LAYER: &str = "VK_LAYER_KHRONOS_validation";

/// Loader variables cleared for every child so only what a test sets applies.
pub const LOADER_VARS: &[&str] = &[
    "VK_ICD_FILENAMES",
    "VK_DRIVER_FILES",
    "VK_ADD_DRIVER_FILES",
    "VK_INSTANCE_LAYERS",
    "VK_LOADER_LAYERS_ENABLE",
    "VK_LOADER_LAYERS_DISABLE",
    "VK_LOADER_DEBUG",
    "VN_DEBUG",
    "VTEST_SOCKET_NAME",
];

/// The workspace's target directory for the profile this test was built with.
fn target_profile_dir() -> PathBuf {
    // .../target/<profile>/deps/<test-binary>
    let exe = std::env::current_exe().expect("test executable path");
    exe.parent()
        .and_then(Path::parent)
        .map(Path::to_path_buf)
        .expect("target/<profile> directory")
}

/// Path of the `venus-vtest-server` binary, building it if needed.
pub fn server_binary() -> PathBuf {
    let dir = target_profile_dir();
    let bin = dir.join("venus-vtest-server");
    if !bin.exists() {
        let release = dir.file_name().is_some_and(|n| n == "release");
        let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
        cmd.args([
            "build",
            "-p",
            "venus-host-translator",
            "--bin",
            "venus-vtest-server",
        ]);
        if release {
            cmd.arg("--release");
        }
        let st = cmd.status().expect("running cargo build");
        assert!(st.success(), "building venus-vtest-server failed");
    }
    bin
}

/// A running server on a private socket; SIGTERM and reaped on drop.
pub struct Server {
    child: Option<Child>,
    /// The socket path (pass as `VTEST_SOCKET_NAME`).
    pub socket: PathBuf,
    /// Everything the server printed (stdout and stderr), in this file.
    pub log: PathBuf,
    dir: PathBuf,
}

impl Server {
    /// Starts the server; `validation` enables the Khronos validation layer on the
    /// host (and the loader's layer log, so the test can prove it was loaded).
    pub fn start(name: &str, validation: bool) -> Server {
        Server::start_with(name, validation, &[])
    }

    /// [`Server::start`] with extra environment variables for the server.
    pub fn start_with(name: &str, validation: bool, env: &[(&str, &str)]) -> Server {
        Server::start_full(name, validation, env, &[])
    }

    /// [`Server::start_with`] plus host layers enabled after the validation layer
    /// (e.g. `VK_LAYER_VENUS_macos_like`, found through `env`'s `VK_ADD_LAYER_PATH`).
    pub fn start_full(
        name: &str,
        validation: bool,
        env: &[(&str, &str)],
        layers: &[&str],
    ) -> Server {
        Server::start_prefixed(name, validation, env, layers, &[])
    }

    /// [`Server::start_full`] with the server run through `prefix` (a command and its
    /// arguments that execute the rest, e.g. `unshare ... --`), which must pass SIGTERM
    /// on to it.
    pub fn start_prefixed(
        name: &str,
        validation: bool,
        env: &[(&str, &str)],
        layers: &[&str],
        prefix: &[&str],
    ) -> Server {
        let dir = std::env::temp_dir().join(format!("venus-e2e-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir");
        let socket = dir.join("vtest.sock");
        let log = dir.join("server.log");
        let out = std::fs::File::create(&log).expect("log file");
        let err = out.try_clone().expect("log file");
        let mut cmd = match prefix.split_first() {
            Some((program, args)) => {
                let mut c = Command::new(program);
                c.args(args).arg(server_binary());
                c
            }
            None => Command::new(server_binary()),
        };
        for v in LOADER_VARS {
            cmd.env_remove(v);
        }
        cmd.env("VK_DRIVER_FILES", LVP_ICD)
            .env("VENUS_LOG", "info")
            .arg("--socket-path")
            .arg(&socket)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err);
        for (k, v) in env {
            cmd.env(k, v);
        }
        if validation {
            cmd.args(["--host-layer", VALIDATION_LAYER])
                .env("VK_LOADER_DEBUG", "layer");
        }
        for l in layers {
            cmd.args(["--host-layer", l]);
        }
        let child = cmd.spawn().expect("starting venus-vtest-server");
        let t0 = Instant::now();
        while !socket.exists() {
            assert!(
                t0.elapsed() < Duration::from_secs(20),
                "server socket never appeared"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Server {
            child: Some(child),
            socket,
            log,
            dir,
        }
    }

    /// A command for `program` that uses our guest ICD against this server.
    pub fn our_icd_command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let target = target_profile_dir();
        let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("../packaging/venus_icd.json");
        let mut cmd = Command::new(program);
        for v in LOADER_VARS {
            cmd.env_remove(v);
        }
        cmd.env("LD_LIBRARY_PATH", &target)
            .env("VK_DRIVER_FILES", manifest)
            .env("VENUS_TRANSPORT", "vtest")
            .env("VTEST_SOCKET_NAME", &self.socket)
            .current_dir(&self.dir);
        cmd
    }

    /// The directory holding the socket and the log (removed on drop).
    pub fn dir(&self) -> &Path {
        &self.dir
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

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, |c| c.id())
    }

    /// Whether the server process is still running.
    pub fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    /// Validation messages in the server output that are not explained by
    /// [`EXPECTED_VALIDATION`]. Panics if the layer was not loaded.
    pub fn unexpected_validation_messages(&self) -> Vec<String> {
        let log = self.log_text();
        assert!(
            log.contains("Insert instance layer \"VK_LAYER_KHRONOS_validation\""),
            "the validation layer was not loaded on the host:\n{log}"
        );
        log.lines()
            .filter(|l| l.contains("Validation Error") || l.contains("Validation Warning"))
            .filter(|l| !EXPECTED_VALIDATION.iter().any(|(pat, _)| l.contains(pat)))
            .map(String::from)
            .collect()
    }
}

/// Validation messages that are not our bugs, each with the reason.
pub const EXPECTED_VALIDATION: &[(&str, &str)] = &[(
    "unknown VkStructureType (1000470001)",
    "VkPhysicalDeviceMaintenance5PropertiesKHR: Debian bookworm's validation layer \
     (1.3.239) predates VK_KHR_maintenance5, which lavapipe and the protocol support; \
     stock Mesa chains the struct in vkGetPhysicalDeviceProperties2",
)];

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            // SAFETY: kill(2) on our own child's pid.
            unsafe { libc_kill(c.id() as i32, 15) };
            let t0 = Instant::now();
            while t0.elapsed() < Duration::from_secs(10) {
                if let Ok(Some(_)) = c.try_wait() {
                    let _ = std::fs::remove_dir_all(&self.dir);
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

extern "C" {
    #[link_name = "kill"]
    fn libc_kill(pid: i32, sig: i32) -> i32;
}
