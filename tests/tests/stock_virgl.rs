//! Stock Mesa 25.0.7 venus (bookworm-backports, outside the chroot) against stock
//! virglrenderer 1.1.0's vtest server (trixie chroot, lavapipe underneath): proves
//! the reference host runs here, for comparisons with ours.
//!
//! Needs `tests/virgl/setup.sh` to have been run (CI does it from `.ci/run`); the
//! tests fail with that instruction otherwise. Only queries are tested: stock virgl
//! cannot hand out a mappable fd here, so venus hangs in `vkCreateDevice` for
//! compute against it.

use venus_tests::virgl::StockVirgl;

fn start() -> StockVirgl {
    StockVirgl::start().unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn vulkaninfo_summary_through_stock_virgl() {
    let mut server = start();
    let out = server
        .venus_command("vulkaninfo")
        .arg("--summary")
        .output()
        .expect("running vulkaninfo");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "vulkaninfo failed: {}\n{stdout}\n{stderr}\nserver:\n{}",
        out.status,
        server.log_text()
    );
    let device = stdout
        .lines()
        .find(|l| l.trim_start().starts_with("deviceName"))
        .unwrap_or_else(|| panic!("no device in vulkaninfo output:\n{stdout}\n{stderr}"));
    assert!(
        device.contains("Virtio-GPU Venus (llvmpipe"),
        "not a venus-on-lavapipe device: {device}"
    );
    assert!(
        stdout.contains("DRIVER_ID_MESA_VENUS"),
        "driver is not venus:\n{stdout}"
    );
    // The stock server, not something else on the socket, served the context
    // (its output is line-buffered; give it a moment to land in the log).
    let mut log = server.log_text();
    for _ in 0..50 {
        if log.contains("client context created") {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
        log = server.log_text();
    }
    assert!(
        log.contains("client context created"),
        "stock server log shows no venus context:\n{log}"
    );
    assert!(server.is_running(), "stock server died:\n{log}");
}

#[test]
fn stock_virgl_serves_consecutive_clients() {
    let server = start();
    for i in 0..2 {
        let out = server
            .venus_command("vulkaninfo")
            .arg("--summary")
            .output()
            .expect("running vulkaninfo");
        assert!(
            out.status.success()
                && String::from_utf8_lossy(&out.stdout).contains("Virtio-GPU Venus (llvmpipe"),
            "run {i} failed: {}\n{}\nserver:\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr),
            server.log_text()
        );
    }
}

#[test]
fn dropping_stock_virgl_stops_it_and_cleans_up() {
    let server = start();
    let dir = server.socket.parent().expect("socket dir").to_path_buf();
    let procs = server.processes();
    assert!(
        procs.iter().any(|p| p.comm.starts_with("virgl_test_serv")),
        "no virgl_test_server among the server's processes: {procs:?}"
    );
    drop(server);
    assert!(!dir.exists(), "{} left behind", dir.display());
    let alive: Vec<_> = procs.iter().filter(|p| p.is_alive()).collect();
    assert!(alive.is_empty(), "processes left running: {alive:?}");
    // Nothing stays mounted on the host under the chroot.
    let chroot = venus_tests::virgl::chroot_dir();
    let chroot = chroot.canonicalize().unwrap_or(chroot);
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").expect("mountinfo");
    let leaked: Vec<&str> = mounts
        .lines()
        .filter(|l| {
            l.split(' ')
                .nth(4)
                .is_some_and(|m| m.starts_with(chroot.to_str().unwrap()))
        })
        .collect();
    assert!(
        leaked.is_empty(),
        "mounts left under the chroot:\n{}",
        leaked.join("\n")
    );
}

/// Our guest ICD (`libvenus_icd.so`) against the stock server: instance,
/// physical-device enumeration and queries (full vulkaninfo), and device creation.
/// (Memory mapping cannot work against stock virgl here — it cannot hand out a
/// mappable fd — so the compute program is expected to stop at vkMapMemory, with an
/// error and not a hang.)
#[test]
fn our_icd_against_stock_virgl() {
    let server = start();
    let target = std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().and_then(|d| d.parent()).map(|d| d.to_path_buf()))
        .expect("target dir");
    assert!(
        target.join("libvenus_icd.so").exists(),
        "build the ICD first: cargo build -p venus-guest-icd"
    );
    let manifest =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../packaging/venus_icd.json");
    let ours = |program: &str| {
        let mut c = std::process::Command::new(program);
        for v in venus_tests::server::LOADER_VARS {
            c.env_remove(v);
        }
        c.env("LD_LIBRARY_PATH", &target)
            .env("VK_DRIVER_FILES", &manifest)
            .env("VENUS_TRANSPORT", "vtest")
            .env("VTEST_SOCKET_NAME", &server.socket);
        c
    };
    let out = ours("vulkaninfo").output().expect("vulkaninfo");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "vulkaninfo through our ICD failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("llvmpipe"), "no lavapipe device:\n{stdout}");
    assert!(
        stdout.contains("apiVersion        = 1.3") || stdout.contains("apiVersion = 1.3"),
        "not Vulkan 1.3:\n{stdout}"
    );
    assert!(
        stdout.contains("VkPhysicalDeviceVulkan13Features"),
        "1.3 features missing"
    );

    let t0 = std::time::Instant::now();
    let out = ours(env!("CARGO_BIN_EXE_venus-compute"))
        .args(["--elements", "64"])
        .output()
        .expect("venus-compute");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(t0.elapsed() < std::time::Duration::from_secs(60), "hung");
    assert!(
        stdout.contains("ok vkCreateDevice"),
        "device creation failed:\n{stdout}"
    );
    assert!(
        stdout.contains("ok descriptor set layout"),
        "device-level objects failed:\n{stdout}"
    );
    assert!(
        stdout.contains("FAIL vkMapMemory"),
        "expected the known mapping limit of stock virgl:\n{stdout}"
    );
}
