//! End-to-end tests of our guest ICD (`libvenus_icd.so`), loaded by the stock Vulkan
//! loader through `packaging/venus_icd.json`, talking vtest to our
//! `venus-vtest-server` (lavapipe, with the Khronos validation layer on the host) or
//! running the host in-process (lavapipe loaded directly).
//!
//! Needs the Debian packages `vulkan-tools` (vulkaninfo), `libvulkan1`,
//! `mesa-vulkan-drivers` (lavapipe, stock venus), `vulkan-validationlayers` and
//! `binutils` (nm); a missing one is a failure, not a skip. `--nocapture` shows the
//! vulkaninfo comparison reports.

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;
use venus_tests::icd::differences::{
    extension_mismatches, ours_against_mesa, OUR_EXPECTED_DIFFERENCES,
};
use venus_tests::icd::{self, KillableServer, Ran, Transport};
use venus_tests::server::Server;
use venus_tests::vkinfo;

const COMPUTE: &str = env!("CARGO_BIN_EXE_venus-compute");
const EDGE: &str = env!("CARGO_BIN_EXE_icd-edge");
/// Limit for one program run; a run that takes longer is a hang.
const RUN_LIMIT: Duration = Duration::from_secs(180);

/// Lines vulkaninfo prints on stderr through our ICD that are not errors of ours.
const EXPECTED_VULKANINFO_STDERR: &[(&str, &str)] = &[
    (
        "'DISPLAY' environment variable not set... skipping surface info",
        "no display in CI; vulkaninfo skips surfaces (natively too)",
    ),
    (
        "error: XDG_RUNTIME_DIR is invalid or not set in the environment.",
        "printed by the Wayland client library vulkaninfo tries (natively too)",
    ),
    (
        "ERROR: [Loader Message] Code 0 : loader_validate_device_extensions: Device \
         extension VK_KHR_swapchain not supported by selected physical device or enabled \
         layers.",
        "vulkaninfo 1.3.239 probes device-group present capabilities by creating a device \
         with VK_KHR_swapchain; our ICD has no WSI (VK_KHR_swapchain is not among the \
         protocol's extensions), the loader refuses, vulkaninfo prints \"Group does not \
         support VK_KHR_device_group\" and goes on",
    ),
    (
        "ERROR: [Loader Message] Code 0 : vkCreateDevice: Failed to validate extensions in \
         list",
        "the same refused VK_KHR_swapchain device",
    ),
];

fn scratch_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("venus-icd-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

fn assert_host_validation_clean(server: &Server) {
    let bad = server.unexpected_validation_messages();
    assert!(
        bad.is_empty(),
        "validation messages on the host:\n{}",
        bad.join("\n")
    );
}

// ---------------------------------------------------------------------------------------
// Exported symbols
// ---------------------------------------------------------------------------------------

/// The ICD exports the three loader-interface functions and nothing else: no Rust
/// symbols of its own or of its dependencies, no data. Nothing is ignored: every
/// defined dynamic symbol `nm -D --defined-only` lists is checked (the toolchain adds
/// none to this cdylib).
#[test]
fn exports_exactly_the_loader_interface() {
    let lib = icd::icd_library();
    let symbols = icd::defined_dynamic_symbols(&lib);
    let mut names: Vec<&str> = symbols.iter().map(|(_, n)| n.as_str()).collect();
    names.sort_unstable();
    assert_eq!(
        names,
        icd::LOADER_INTERFACE,
        "defined dynamic symbols of {}: {symbols:?}",
        lib.display()
    );
    for (ty, name) in &symbols {
        assert_eq!(*ty, 'T', "{name} is not a global function (nm type {ty})");
    }
}

// ---------------------------------------------------------------------------------------
// vulkaninfo
// ---------------------------------------------------------------------------------------

/// Runs the full `vulkaninfo --show-formats` through our ICD and checks it.
fn full_vulkaninfo(transport: Transport<'_>, name: &str) -> Ran {
    let dir = scratch_dir(name);
    let mut cmd = icd::icd_command("vulkaninfo", transport, &dir);
    cmd.arg("--show-formats");
    let ran = icd::run_with_timeout(cmd, RUN_LIMIT);
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        ran.success(),
        "vulkaninfo through our ICD ({}) failed: {}",
        transport.name(),
        ran.describe()
    );
    let out = &ran.stdout;
    let gpus = out.lines().filter(|l| l.starts_with("GPU")).count();
    assert_eq!(gpus, 1, "expected one GPU listed:\n{}", ran.describe());
    assert!(
        out.lines()
            .any(|l| l.trim().starts_with("deviceName") && l.contains("= llvmpipe (")),
        "lavapipe's own device name is not listed:\n{}",
        ran.describe()
    );
    let versions = icd::api_versions_in_text(out);
    assert!(
        !versions.is_empty() && versions.iter().all(|&(ma, mi, _)| (ma, mi) == (1, 3)),
        "apiVersion is not 1.3.x: {versions:?}"
    );
    for section in [
        "VkPhysicalDeviceLimits:",
        "VkPhysicalDeviceSparseProperties:",
        "VkPhysicalDeviceMemoryProperties:",
        "memoryTypes",
        "VkQueueFamilyProperties",
        "VkPhysicalDeviceFeatures:",
        "VkPhysicalDeviceVulkan13Features:",
        "Format Properties",
        "FORMAT_R8G8B8A8_UNORM",
        "FORMAT_D32_SFLOAT",
    ] {
        assert!(
            out.contains(section),
            "vulkaninfo output lacks {section:?}:\n{}",
            ran.describe()
        );
    }
    assert!(
        out.lines().any(|l| {
            let l = l.trim();
            l.starts_with("driverID") && l.ends_with("= DRIVER_ID_MESA_LLVMPIPE")
        }),
        "lavapipe's own driverID is not listed:\n{}",
        ran.describe()
    );
    let unexpected: Vec<&str> = ran
        .stderr
        .lines()
        .filter(|l| !l.trim().is_empty())
        .filter(|l| {
            !EXPECTED_VULKANINFO_STDERR
                .iter()
                .any(|(e, _)| l.trim() == *e)
        })
        .collect();
    assert!(
        unexpected.is_empty(),
        "unexpected stderr lines from vulkaninfo through our ICD:\n{}",
        unexpected.join("\n")
    );
    ran
}

#[test]
fn vulkaninfo_full_over_vtest() {
    let mut server = Server::start("icd-vulkaninfo", true);
    full_vulkaninfo(Transport::Vtest(&server.socket), "vulkaninfo-vtest");
    assert!(server.is_running(), "the server died");
    assert_host_validation_clean(&server);
}

#[test]
fn vulkaninfo_full_in_process() {
    full_vulkaninfo(Transport::InProcess, "vulkaninfo-in-process");
}

/// Our ICD against native lavapipe (every difference explained by
/// `OUR_EXPECTED_DIFFERENCES`), stock Mesa venus against native lavapipe on the same
/// server (`vkinfo::EXPECTED_DIFFERENCES`), in-process against vtest (identical), and
/// the listing of every difference between ours and Mesa's, each explained.
#[test]
fn vulkaninfo_compared_with_native_lavapipe_and_mesa_venus() {
    let server = Server::start("icd-vkinfo-compare", true);
    let run = |env: &[(String, String)], what: &str| {
        vkinfo::run_vulkaninfo(env).unwrap_or_else(|e| {
            panic!(
                "vulkaninfo ({what}) could not run: {e}\nserver:\n{}",
                server.log_text()
            )
        })
    };
    let native = run(&vkinfo::native_lavapipe_env(), "native lavapipe");
    let ours = run(
        &icd::icd_env(Transport::Vtest(&server.socket)),
        "our ICD over vtest",
    );
    let in_process = run(&icd::icd_env(Transport::InProcess), "our ICD in-process");
    let mesa = run(&vkinfo::venus_vtest_env(&server.socket), "Mesa venus");

    // Ours is lavapipe itself, at Vulkan 1.3.
    assert_eq!(ours.device_name(), native.device_name(), "device name");
    let api = ours
        .device
        .pointer("/properties/VkPhysicalDeviceProperties/apiVersion")
        .and_then(Value::as_u64)
        .expect("apiVersion");
    assert_eq!(
        (api >> 22, (api >> 12) & 0x3ff),
        (1, 3),
        "our apiVersion {api:#x}"
    );

    // Exactly host ∩ protocol, minus what needs guest-kernel objects.
    let ext = extension_mismatches(&native.comparable(), &ours.comparable());
    assert!(
        ext.is_empty(),
        "our device extensions are not host ∩ protocol minus the hidden ones:\n{}",
        ext.join("\n")
    );

    let ours_cmp = vkinfo::compare(
        &native.comparable(),
        &ours.comparable(),
        OUR_EXPECTED_DIFFERENCES,
    );
    println!(
        "=== our ICD (vtest) vs native lavapipe\n{}",
        ours_cmp.report()
    );
    assert!(
        ours_cmp.is_clean(),
        "unexplained differences between our ICD and native lavapipe:\n{}",
        ours_cmp.report()
    );
    // The same host in-process gives the very same answers.
    let transport_diff = vkinfo::diff(&ours.comparable(), &in_process.comparable());
    assert!(
        transport_diff.is_empty(),
        "in-process differs from vtest:\n{}",
        transport_diff
            .iter()
            .map(|d| d.to_string())
            .collect::<Vec<_>>()
            .join("\n")
    );

    let mesa_cmp = vkinfo::compare(
        &native.comparable(),
        &mesa.comparable(),
        vkinfo::EXPECTED_DIFFERENCES,
    );
    assert!(
        mesa_cmp.is_clean(),
        "unexplained differences between Mesa venus and native lavapipe:\n{}",
        mesa_cmp.report()
    );

    let cross = ours_against_mesa(
        &native.comparable(),
        &mesa.comparable(),
        &ours.comparable(),
        &mesa_cmp,
        &ours_cmp,
    );
    println!("=== Mesa venus vs our ICD\n{}", cross.report());
    assert!(
        !cross.differences.is_empty(),
        "no difference at all between Mesa venus and ours: the runs did not use two drivers"
    );
    assert!(
        cross.unexplained().is_empty(),
        "differences between Mesa venus and our ICD that neither table explains:\n{}",
        cross.report()
    );
    assert_host_validation_clean(&server);
}

// ---------------------------------------------------------------------------------------
// venus-compute with the validation layer in the guest
// ---------------------------------------------------------------------------------------

/// Loader lines the guest debug messenger sees because the layer is forced on by
/// `VK_LOADER_LAYERS_ENABLE`; not validation messages.
const FORCED_LAYER_NOTICE: &str =
    "Layer \"VK_LAYER_KHRONOS_validation\" forced enabled due to env var";

fn compute_with_guest_validation(transport: Transport<'_>, name: &str, extra: &[&str]) -> Ran {
    let dir = scratch_dir(name);
    let mut cmd = icd::icd_command(COMPUTE, transport, &dir);
    cmd.env(icd::LAYERS_ENABLE, "*validation")
        .arg("--require-validation")
        .args(extra);
    let ran = icd::run_with_timeout(cmd, RUN_LIMIT);
    let _ = std::fs::remove_dir_all(&dir);
    ran
}

fn assert_compute_clean(ran: &Ran, transport: &str) {
    assert!(
        ran.success() && ran.stdout.lines().any(|l| l.trim() == "PASS"),
        "venus-compute through our ICD ({transport}) failed: {}",
        ran.describe()
    );
    let out = &ran.stdout;
    assert!(
        out.contains("ok validation layer active"),
        "the validation layer was not active in the guest: {}",
        ran.describe()
    );
    assert!(
        out.contains("ok validation warnings and errors: 0"),
        "{}",
        ran.describe()
    );
    let noise: Vec<&str> = out
        .lines()
        .chain(ran.stderr.lines())
        .filter(|l| {
            l.contains("validation message")
                || l.contains("Validation Error")
                || l.contains("Validation Warning")
                || (l.starts_with("debug message") && !l.contains(FORCED_LAYER_NOTICE))
        })
        .collect();
    assert!(
        noise.is_empty(),
        "validation or debug messages through our ICD ({transport}):\n{}",
        noise.join("\n")
    );
}

#[test]
fn compute_over_vtest_with_guest_and_host_validation() {
    let mut server = Server::start("icd-compute", true);
    let ran = compute_with_guest_validation(Transport::Vtest(&server.socket), "compute-vtest", &[]);
    assert_compute_clean(&ran, "vtest");
    // Command buffers whose venus stream is large (about 250 KB per round).
    let ran = compute_with_guest_validation(
        Transport::Vtest(&server.socket),
        "compute-vtest-large",
        &["--elements", "4096", "--record-extra", "5000"],
    );
    assert_compute_clean(&ran, "vtest, --record-extra 5000");
    assert!(server.is_running(), "the server died");
    assert_host_validation_clean(&server);
}

#[test]
fn compute_in_process_with_guest_validation() {
    let ran = compute_with_guest_validation(Transport::InProcess, "compute-in-process", &[]);
    assert_compute_clean(&ran, "in-process");
}

/// The control for the two tests above: a validation error in the guest, above our
/// ICD, is seen and fails the run, so "zero messages" means something.
#[test]
fn guest_validation_messages_are_seen_through_our_icd() {
    let ran = compute_with_guest_validation(
        Transport::InProcess,
        "compute-injected",
        &["--elements", "256", "--inject-validation-error"],
    );
    assert!(
        !ran.success() && ran.stdout.lines().any(|l| l.trim() == "FAIL"),
        "an injected validation error did not fail the run: {}",
        ran.describe()
    );
    assert!(
        ran.stdout.contains("validation message")
            && ran.stdout.contains("VUID-VkBufferCreateInfo-size-00912"),
        "the injected validation error was not reported: {}",
        ran.describe()
    );
}

// ---------------------------------------------------------------------------------------
// Loader and lifetime edge cases (the `icd-edge` program)
// ---------------------------------------------------------------------------------------

fn edge(scenario: &str, transport: Transport<'_>) -> Ran {
    let dir = scratch_dir(&format!("edge-{scenario}-{}", transport.name()));
    let mut cmd = icd::icd_command(EDGE, transport, &dir);
    cmd.args([scenario, "--validation"]);
    let ran = icd::run_with_timeout(cmd, RUN_LIMIT);
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        ran.success() && ran.stdout.lines().any(|l| l.trim() == "PASS"),
        "icd-edge {scenario} through our ICD ({}) failed: {}",
        transport.name(),
        ran.describe()
    );
    assert!(
        !ran.stdout.contains("FAIL") && !ran.stdout.contains("validation message"),
        "{}",
        ran.describe()
    );
    ran
}

fn edge_both_transports(scenario: &str) {
    let mut server = Server::start(&format!("icd-edge-{scenario}"), true);
    edge(scenario, Transport::Vtest(&server.socket));
    assert!(server.is_running(), "the server died");
    assert_host_validation_clean(&server);
    edge(scenario, Transport::InProcess);
}

#[test]
fn two_instances_at_once() {
    edge_both_transports("two-instances");
}

#[test]
fn two_devices_from_one_instance() {
    edge_both_transports("two-devices");
}

#[test]
fn destroy_everything_and_recreate() {
    edge_both_transports("recreate");
}

/// Fence states answered locally by our ICD agree with the host's answers.
#[test]
fn fence_states_match_the_host() {
    edge_both_transports("fence-states");
}

/// Event states answered by our ICD from its event feedback memory agree with the
/// driver's: the same scenario passes natively on lavapipe, and through our ICD on
/// both transports with feedback on (its debug log shows the feedback buffers were
/// made, so the answers did not come from the host) and with it turned off.
#[test]
fn event_states_match_the_driver() {
    let dir = scratch_dir("edge-event-states-native");
    let mut native = Command::new(EDGE);
    native
        .args(["event-states", "--validation"])
        .envs(vkinfo::native_lavapipe_env())
        .current_dir(&dir)
        .stdin(Stdio::null());
    let ran = icd::run_with_timeout(native, RUN_LIMIT);
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        ran.success() && ran.stdout.lines().any(|l| l.trim() == "PASS"),
        "icd-edge event-states natively: {}",
        ran.describe()
    );

    let mut server = Server::start("icd-edge-event-states", true);
    for transport in [Transport::Vtest(&server.socket), Transport::InProcess] {
        for feedback in ["1", "0"] {
            let dir = scratch_dir(&format!(
                "edge-event-states-{}-{feedback}",
                transport.name()
            ));
            let mut cmd = icd::icd_command(EDGE, transport, &dir);
            cmd.args(["event-states", "--validation"])
                .env("VENUS_EVENT_FEEDBACK", feedback)
                .env("VENUS_LOG", "venus_icd::event=debug");
            let ran = icd::run_with_timeout(cmd, RUN_LIMIT);
            let _ = std::fs::remove_dir_all(&dir);
            let what = format!("{} with VENUS_EVENT_FEEDBACK={feedback}", transport.name());
            assert!(
                ran.success()
                    && ran.stdout.lines().any(|l| l.trim() == "PASS")
                    && !ran.stdout.contains("FAIL"),
                "icd-edge event-states through our ICD ({what}): {}",
                ran.describe()
            );
            // Two buffers of 1,024 slots: the scenario holds 1,500 events at once.
            let buffers = ran.stderr.matches("event feedback: buffer").count();
            let want = if feedback == "1" { 2 } else { 0 };
            assert_eq!(
                buffers,
                want,
                "feedback buffers made ({what}): {}",
                ran.describe()
            );
        }
    }
    assert!(server.is_running(), "the server died");
    assert_host_validation_clean(&server);
}

/// A running `icd-edge` whose stdout lines arrive on a channel.
struct Edge {
    child: std::process::Child,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
    stderr: std::thread::JoinHandle<String>,
}

impl Edge {
    fn spawn(scenario: &str, server: &KillableServer, dir: &std::path::Path) -> Edge {
        let mut cmd: Command = icd::icd_command(EDGE, Transport::Vtest(&server.socket), dir);
        cmd.arg(scenario)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawning icd-edge");
        let stdout = child.stdout.take().expect("stdout");
        let mut stderr = child.stderr.take().expect("stderr");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let stderr = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = stderr.read_to_string(&mut s);
            s
        });
        Edge {
            child,
            lines,
            seen: Vec::new(),
            stderr,
        }
    }

    /// Waits (at most `limit`) for a stdout line equal to `want`.
    fn wait_for_line(&mut self, want: &str, limit: Duration) -> bool {
        let t0 = Instant::now();
        while let Some(left) = limit.checked_sub(t0.elapsed()) {
            match self.lines.recv_timeout(left) {
                Ok(l) => {
                    let hit = l.trim() == want;
                    self.seen.push(l);
                    if hit {
                        return true;
                    }
                }
                Err(_) => return false,
            }
        }
        false
    }

    /// Waits (at most `limit`) for the exit; kills it if it does not come (a hang).
    fn finish(mut self, limit: Duration) -> (Option<std::process::ExitStatus>, String) {
        let t0 = Instant::now();
        let status = loop {
            match self.child.try_wait() {
                Ok(Some(s)) => break Some(s),
                Ok(None) if t0.elapsed() < limit => std::thread::sleep(Duration::from_millis(5)),
                _ => {
                    let _ = self.child.kill();
                    let _ = self.child.wait();
                    break None;
                }
            }
        };
        // The reader ends at EOF once the process is gone.
        while let Ok(l) = self.lines.recv_timeout(Duration::from_secs(2)) {
            self.seen.push(l);
        }
        let stderr = self.stderr.join().unwrap_or_default();
        (
            status,
            format!(
                "--- stdout\n{}\n--- stderr\n{}",
                self.seen.join("\n"),
                icd::tail(&stderr, 4000)
            ),
        )
    }

    fn output_so_far(&self) -> String {
        self.seen.join("\n")
    }
}

/// How long the ICD may take, after the server died, to report the loss and exit.
const LOST_LIMIT: Duration = Duration::from_secs(5);

/// Kills the server at the point `marker` is printed, then expects the program to
/// finish quickly and PASS (it checks every call returned VK_ERROR_DEVICE_LOST).
fn server_killed(scenario: &str, marker: &str, then_write: bool) {
    let dir = scratch_dir(&format!("edge-{scenario}"));
    let mut server = KillableServer::start(scenario);
    let mut edge = Edge::spawn(scenario, &server, &dir);
    assert!(
        edge.wait_for_line(marker, Duration::from_secs(60)),
        "icd-edge {scenario} never printed {marker}:\n{}\nserver:\n{}",
        edge.output_so_far(),
        server.log_text()
    );
    if !then_write {
        // Let the program enter its blocking vkWaitForFences.
        std::thread::sleep(Duration::from_millis(300));
        assert!(
            matches!(edge.child.try_wait(), Ok(None)),
            "icd-edge {scenario} did not block in vkWaitForFences:\n{}",
            edge.output_so_far()
        );
    }
    let pid = server.pid();
    let status = server.kill();
    assert!(
        status.is_some_and(|s| !s.success()),
        "the server (pid {pid:?}) was not killed: {status:?}"
    );
    let killed_at = Instant::now();
    if then_write {
        let mut stdin = edge.child.stdin.take().expect("stdin");
        stdin.write_all(b"go\n").expect("writing to icd-edge");
    }
    // Generous for the hang check; the time the calls took is checked separately.
    let (status, output) = edge.finish(Duration::from_secs(30));
    let took = killed_at.elapsed();
    assert!(
        status.is_some(),
        "icd-edge {scenario} hung after the server was killed (killed after 30 s):\n{output}"
    );
    assert!(
        status.is_some_and(|s| s.success()) && output.lines().any(|l| l.trim() == "PASS"),
        "icd-edge {scenario} failed after the server was killed ({status:?}):\n{output}"
    );
    assert!(
        took < LOST_LIMIT,
        "icd-edge {scenario} took {took:?} after the server was killed:\n{output}"
    );
    println!("icd-edge {scenario}: finished {took:?} after the server was killed\n{output}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn server_killed_then_submit_and_wait_report_device_lost() {
    server_killed("server-killed", "READY", true);
}

#[test]
fn server_killed_during_a_blocking_fence_wait_reports_device_lost() {
    server_killed("killed-while-waiting", "WAITING", false);
}
