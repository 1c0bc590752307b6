//! End-to-end tests of the graphics path with `venus-render` (offscreen rendering whose
//! every pixel is checked on the CPU):
//! - natively on lavapipe under the Khronos validation layer (with synchronization
//!   validation), which proves the program itself right;
//! - through stock Mesa 25.0.7 venus on our `venus-vtest-server` (lavapipe, validation
//!   layer on the host);
//! - through our guest ICD over vtest (validation in the guest and on the host) and
//!   in-process.
//!
//! The vtest runs record the Venus commands the host decoded (`VENUS_COMMAND_STATS`)
//! and check that the graphics commands the program is meant to send arrived.
//!
//! Needs the Debian packages `mesa-vulkan-drivers` (lavapipe, stock venus),
//! `libvulkan1` and `vulkan-validationlayers`; `glslang-tools` (and `spirv-tools`) for
//! the SPIR-V reproducibility check. A missing driver or layer is a failure.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use venus_tests::icd::{self, Ran, Transport};
use venus_tests::server::{Server, LOADER_VARS, LVP_ICD};

const RENDER: &str = env!("CARGO_BIN_EXE_venus-render");
/// Limit for one program run; a run that takes longer is a hang.
const RUN_LIMIT: Duration = Duration::from_secs(120);
const VALIDATION_MANIFEST: &str =
    "/usr/share/vulkan/explicit_layer.d/VkLayer_khronos_validation.json";
/// Loader notice the guest messenger sees when the layer is forced on by environment.
const FORCED_LAYER_NOTICE: &str =
    "Layer \"VK_LAYER_KHRONOS_validation\" forced enabled due to env var";

/// Graphics commands every run through a venus driver sends (whatever the sync path).
const GRAPHICS_COMMANDS: &[&str] = &[
    "vkCreateImage",
    "vkCreateImageView",
    "vkCreateSampler",
    "vkCreateRenderPass",
    "vkCreateFramebuffer",
    "vkCreateGraphicsPipelines",
    "vkGetRenderAreaGranularity",
    "vkCmdBeginRenderPass",
    "vkCmdNextSubpass",
    "vkCmdEndRenderPass",
    "vkCmdExecuteCommands",
    "vkCmdBeginRendering",
    "vkCmdEndRendering",
    "vkCmdBindVertexBuffers",
    "vkCmdBindIndexBuffer",
    "vkCmdDraw",
    "vkCmdDrawIndexed",
    "vkCmdDrawIndirect",
    "vkCmdDrawIndexedIndirect",
    "vkCmdSetViewport",
    "vkCmdSetScissor",
    "vkCmdSetLineWidth",
    "vkCmdSetDepthBias",
    "vkCmdSetBlendConstants",
    "vkCmdSetDepthBounds",
    "vkCmdSetStencilCompareMask",
    "vkCmdSetStencilWriteMask",
    "vkCmdSetStencilReference",
    "vkCmdClearAttachments",
    "vkCmdClearColorImage",
    "vkCmdClearDepthStencilImage",
    "vkCmdBlitImage",
    "vkCmdCopyImage",
    "vkCmdCopyBufferToImage",
    "vkCmdCopyImageToBuffer",
    "vkCmdUpdateBuffer",
    "vkCmdFillBuffer",
    "vkCmdBeginQuery",
    "vkCmdEndQuery",
    "vkCmdCopyQueryPoolResults",
    // Pass 3.
    "vkCreateRenderPass2",
    "vkCmdBeginRenderPass2",
    "vkCmdNextSubpass2",
    "vkCmdEndRenderPass2",
    "vkCmdResolveImage",
    "vkCmdPushDescriptorSetKHR",
    "vkCmdDrawMultiEXT",
    "vkCmdDrawMultiIndexedEXT",
    "vkCmdBeginConditionalRenderingEXT",
    "vkCmdEndConditionalRenderingEXT",
    "vkCmdSetColorWriteEnableEXT",
    "vkCmdSetCullMode",
    "vkCmdSetFrontFace",
    "vkCmdSetPrimitiveTopology",
    "vkCmdSetViewportWithCount",
    "vkCmdSetScissorWithCount",
    "vkCmdBindVertexBuffers2",
    "vkCmdSetDepthTestEnable",
    "vkCmdSetDepthWriteEnable",
    "vkCmdSetDepthCompareOp",
    "vkCmdSetDepthBoundsTestEnable",
    "vkCmdSetStencilTestEnable",
    "vkCmdSetStencilOp",
    "vkCmdSetRasterizerDiscardEnable",
    "vkCmdSetDepthBiasEnable",
    "vkCmdSetPrimitiveRestartEnable",
    "vkCmdSetLogicOpEXT",
    "vkCmdSetDepthClampEnableEXT",
    "vkCmdSetPolygonModeEXT",
    "vkCmdSetRasterizationSamplesEXT",
    "vkCmdSetSampleMaskEXT",
    "vkCmdSetAlphaToCoverageEnableEXT",
    "vkCmdSetAlphaToOneEnableEXT",
    "vkCmdSetLogicOpEnableEXT",
    "vkCmdSetColorBlendEnableEXT",
    "vkCmdSetColorBlendEquationEXT",
    "vkCmdSetColorWriteMaskEXT",
    "vkCmdResolveImage2",
    // Pass 2's count draws.
    "vkCmdDrawIndirectCount",
    "vkCmdDrawIndexedIndirectCount",
    // Copy commands 2.
    "vkCmdCopyBuffer2",
    "vkCmdCopyImage2",
    "vkCmdCopyBufferToImage2",
    "vkCmdCopyImageToBuffer2",
    "vkCmdBlitImage2",
    // Transform feedback.
    "vkCmdBindTransformFeedbackBuffersEXT",
    "vkCmdBeginTransformFeedbackEXT",
    "vkCmdEndTransformFeedbackEXT",
    "vkCmdBeginQueryIndexedEXT",
    "vkCmdEndQueryIndexedEXT",
    "vkCmdDrawIndirectByteCountEXT",
    "vkCmdSetVertexInputEXT",
    // Queries and object lifecycles.
    "vkGetImageSubresourceLayout",
    "vkCreateBufferView",
    "vkDestroyBufferView",
    "vkGetDescriptorSetLayoutSupport",
    "vkCreateSamplerYcbcrConversion",
    "vkDestroySamplerYcbcrConversion",
    "vkGetBufferDeviceAddress",
    "vkGetPhysicalDeviceExternalBufferProperties",
    "vkGetPhysicalDeviceCalibrateableTimeDomainsEXT",
    "vkGetCalibratedTimestampsEXT",
    "vkResetCommandPool",
    "vkTrimCommandPool",
    "vkResetDescriptorPool",
];

/// Queries our ICD sends to the host and stock Mesa venus answers itself (sparse
/// queries on a device without sparse binding, external fence and semaphore
/// properties) or does not have (maintenance4 on its 1.2 device goes through the KHR
/// extension, which it answers from cached requirements).
const OUR_ICD_COMMANDS: &[&str] = &[
    "vkGetDeviceBufferMemoryRequirements",
    "vkGetDeviceImageMemoryRequirements",
    "vkGetDeviceImageSparseMemoryRequirements",
    "vkGetImageSparseMemoryRequirements",
    "vkGetImageSparseMemoryRequirements2",
    "vkGetPhysicalDeviceSparseImageFormatProperties",
    "vkGetPhysicalDeviceSparseImageFormatProperties2",
    "vkGetPhysicalDeviceExternalFenceProperties",
    "vkGetPhysicalDeviceExternalSemaphoreProperties",
];

/// Commands of the synchronization2 path and of the Vulkan 1.0 path.
const SYNC2_COMMANDS: &[&str] = &[
    "vkQueueSubmit2",
    "vkCmdPipelineBarrier2",
    "vkCmdSetEvent2",
    "vkCmdWaitEvents2",
    "vkCmdResetEvent2",
    "vkCmdWriteTimestamp2",
    "vkResetQueryPool",
];
const LEGACY_SYNC_COMMANDS: &[&str] = &[
    "vkQueueSubmit",
    "vkCmdPipelineBarrier",
    "vkCmdSetEvent",
    "vkCmdWaitEvents",
    "vkCmdResetEvent",
    "vkCmdWriteTimestamp",
    "vkResetQueryPool",
];

fn scratch_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("venus-render-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

/// `venus-render` on lavapipe, under the validation layer with synchronization
/// validation, with a clean loader environment.
fn native_command(args: &[&str], validation: bool) -> Command {
    assert!(
        Path::new(LVP_ICD).exists(),
        "{LVP_ICD} is missing: install mesa-vulkan-drivers"
    );
    let mut cmd = Command::new(RENDER);
    for var in LOADER_VARS {
        cmd.env_remove(var);
    }
    cmd.env_remove("VK_LAYER_ENABLES")
        .env("VK_DRIVER_FILES", LVP_ICD)
        .args(args);
    if validation {
        assert!(
            Path::new(VALIDATION_MANIFEST).exists(),
            "{VALIDATION_MANIFEST} is missing: install vulkan-validationlayers"
        );
        cmd.env("VK_LOADER_LAYERS_ENABLE", "*validation").env(
            "VK_LAYER_ENABLES",
            "VK_VALIDATION_FEATURE_ENABLE_SYNCHRONIZATION_VALIDATION_EXT",
        );
    }
    cmd
}

/// Asserts a run with the validation layer forced on passed cleanly: PASS, no FAIL line,
/// the layer active, no validation message, no debug message but the loader's notice.
fn assert_clean_pass(ran: &Ran, what: &str) {
    assert_pass(ran, what);
    assert!(
        ran.stdout.contains("ok validation layer active"),
        "{what}: the validation layer was not active: {}",
        ran.describe()
    );
}

/// Asserts a run passed every check (with or without the validation layer), and that
/// no validation or debug message was printed but the loader's notice.
fn assert_pass(ran: &Ran, what: &str) {
    assert!(
        ran.success() && ran.stdout.lines().last() == Some("PASS"),
        "venus-render {what} failed: {}",
        ran.describe()
    );
    let out = &ran.stdout;
    assert!(
        !out.lines().any(|l| l.starts_with("FAIL")),
        "{what}: {}",
        ran.describe()
    );
    for line in [
        "ok validation warnings and errors: 0",
        "ok pass 1 (render pass): every pixel matches the CPU model",
        "ok precise occlusion count of triangle A",
        "ok pass 2 (dynamic rendering): every pixel matches the CPU model",
        "ok pass 3 (4 samples, resolved): every pixel matches the CPU model",
        "ok vkCmdResolveImage of the multisampled color equals the render pass resolve",
        "ok vkCmdBlitImage 256x256 -> 128x128 NEAREST",
        "ok vkCmdClearColorImage then vkCmdCopyImage",
        "ok vkCmdClearDepthStencilImage to 0.75: 0 of 65536",
        "ok vkCmdFillBuffer (0xa5a55a5a) then vkCmdUpdateBuffer",
        "ok event set by the command buffer: vkGetEventStatus Ok(true)",
        "ok timestamps around the transfers (vkResetQueryPool reset): Ok(())",
        "ok vkCmdBlitImage2: the same bytes as its Vulkan 1.0 version (0 differ)",
        "ok vkCmdCopyImage2: the same bytes as its Vulkan 1.0 version (0 differ)",
        "ok vkCmdCopyBuffer2: the filled and updated buffer copied byte for byte",
        "ok vkCmdCopyBufferToImage2 then vkCmdCopyImageToBuffer2: the texture round-trips",
        "ok vkCmdResolveImage2: the same bytes as vkCmdResolveImage (0 differ)",
        "ok transform feedback captured (2 * position, 1) of the 9 vertices exactly",
        "ok vkCmdDrawIndirectByteCountEXT drew the same 9 vertices again",
        "ok transform feedback counter: 144 bytes",
        "ok transform feedback stream query: Ok(()), primitives written / needed [3, 3]",
        "vkCmdDrawIndirectCount, vkCmdDrawIndexedIndirectCount (count 0)",
        "ok private data on the sampler: vkSetPrivateData Ok(()), vkGetPrivateData 0x123456789abcdef",
        "ok vkResetCommandPool, vkTrimCommandPool, vkResetDescriptorPool",
    ] {
        assert!(
            out.contains(line),
            "{what}: missing {line:?}: {}",
            ran.describe()
        );
    }
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
        "{what}: validation or debug messages:\n{}",
        noise.join("\n")
    );
}

fn assert_host_validation_clean(server: &Server) {
    let bad = server.unexpected_validation_messages();
    assert!(
        bad.is_empty(),
        "validation messages on the host:\n{}",
        bad.join("\n")
    );
}

/// The command counts the server appends when a context ends (waits for `contexts`
/// sessions to have been written).
fn command_stats(path: &Path, contexts: usize) -> String {
    let t0 = Instant::now();
    loop {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let ended = text
            .lines()
            .filter(|l| l.starts_with("vkCreateInstance "))
            .count();
        if ended >= contexts {
            return text;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(20),
            "the server wrote no command statistics for {contexts} context(s) to {}:\n{text}",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn assert_commands_seen(stats: &str, extra: &[&str]) {
    let seen: Vec<&str> = stats
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    let missing: Vec<&&str> = GRAPHICS_COMMANDS
        .iter()
        .chain(extra)
        .filter(|c| !seen.contains(c))
        .collect();
    assert!(
        missing.is_empty(),
        "commands the host never decoded: {missing:?}\nstatistics:\n{stats}"
    );
}

// ---------------------------------------------------------------------------------------
// Native
// ---------------------------------------------------------------------------------------

#[test]
fn native_passes_under_validation() {
    for args in [
        &["--require-validation"][..],
        &["--require-validation", "--legacy-sync"],
    ] {
        let ran = icd::run_with_timeout(native_command(args, true), RUN_LIMIT);
        assert_clean_pass(&ran, &format!("natively {args:?}"));
        assert!(
            ran.stdout.contains("physical device 0 of 1: llvmpipe"),
            "not lavapipe: {}",
            ran.describe()
        );
        let sync2 = !args.contains(&"--legacy-sync");
        assert_eq!(
            ran.stdout
                .contains("(vkQueueSubmit2, vkCmdPipelineBarrier2)"),
            sync2,
            "{args:?}: {}",
            ran.describe()
        );
    }
}

#[test]
fn injected_validation_error_fails_the_run() {
    let ran = icd::run_with_timeout(
        native_command(&["--require-validation", "--inject-validation-error"], true),
        RUN_LIMIT,
    );
    assert!(!ran.success(), "{}", ran.describe());
    assert!(
        ran.stdout.contains("VUID-VkBufferCreateInfo-size-00912")
            && ran
                .stdout
                .contains("FAIL validation warnings and errors: 1")
            && ran.stdout.lines().last() == Some("FAIL"),
        "{}",
        ran.describe()
    );
}

#[test]
fn quiet_prints_only_the_verdict_and_bad_arguments_are_rejected() {
    let ran = icd::run_with_timeout(native_command(&["--quiet"], false), RUN_LIMIT);
    assert!(ran.success(), "{}", ran.describe());
    assert_eq!(ran.stdout.trim(), "PASS", "{}", ran.describe());
    let ran = icd::run_with_timeout(native_command(&["--bogus"], false), RUN_LIMIT);
    assert_eq!(
        ran.status.and_then(|s| s.code()),
        Some(2),
        "{}",
        ran.describe()
    );
    assert!(ran.stderr.contains("usage:"), "{}", ran.describe());
}

#[test]
fn committed_spirv_matches_glsl_sources() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("shaders");
    let Ok(version) = Command::new("glslangValidator").arg("--version").output() else {
        println!(
            "SKIPPED: glslangValidator not found (Debian package glslang-tools); cannot \
             check that the render and xfb shaders' .spv files are built from their sources"
        );
        return;
    };
    let version = String::from_utf8_lossy(&version.stdout).into_owned();
    for name in ["render.vert", "render.frag", "xfb.vert"] {
        let source = dir.join(name);
        let spv = dir.join(format!("{name}.spv"));
        let committed = std::fs::read(&spv).expect("read committed SPIR-V");
        let out =
            std::env::temp_dir().join(format!("venus-render-{}-{name}.spv", std::process::id()));
        let status = Command::new("glslangValidator")
            .args(["-V", "--quiet"])
            .arg(&source)
            .arg("-o")
            .arg(&out)
            .status()
            .expect("run glslangValidator");
        assert!(
            status.success(),
            "glslangValidator failed on {}",
            source.display()
        );
        let rebuilt = std::fs::read(&out).expect("read rebuilt SPIR-V");
        let _ = std::fs::remove_file(&out);
        assert!(
            rebuilt == committed,
            "tests/shaders/{name}.spv is not what `glslangValidator -V --quiet {name} -o \
             {name}.spv` builds ({} vs {} bytes; glslang {})",
            committed.len(),
            rebuilt.len(),
            version.lines().next().unwrap_or("?")
        );
        match Command::new("spirv-val")
            .args(["--target-env", "vulkan1.2"])
            .arg(&spv)
            .output()
        {
            Ok(o) => assert!(
                o.status.success(),
                "spirv-val rejects {name}.spv: {}",
                String::from_utf8_lossy(&o.stderr)
            ),
            Err(_) => println!("spirv-val not found (spirv-tools): SPIR-V not validated"),
        }
    }
}

// ---------------------------------------------------------------------------------------
// Stock Mesa venus on our host
// ---------------------------------------------------------------------------------------

#[test]
fn mesa_venus_on_our_host_with_host_validation() {
    let dir = scratch_dir("mesa-stats");
    let stats = dir.join("commands.txt");
    let stats_env = stats.display().to_string();
    let server = Server::start_with(
        "render-mesa",
        true,
        &[("VENUS_COMMAND_STATS", stats_env.as_str())],
    );
    let mut cmd = server.venus_command(RENDER);
    cmd.env(icd::LAYERS_ENABLE, "*validation")
        .arg("--require-validation");
    let ran = icd::run_with_timeout(cmd, RUN_LIMIT);
    assert_clean_pass(&ran, "through Mesa venus");
    // Mesa venus on this host: Vulkan 1.2, VK_KHR_dynamic_rendering, no synchronization2.
    assert!(
        ran.stdout
            .contains("dynamic rendering: KHR extension; synchronization2: no"),
        "{}",
        ran.describe()
    );
    // Without the validation layer in the guest, which replaces the handles Vulkan
    // ignores (that the program fills with made-up values) by VK_NULL_HANDLE: Mesa
    // clears them itself.
    let ran = icd::run_with_timeout(server.venus_command(RENDER), RUN_LIMIT);
    assert_pass(&ran, "through Mesa venus, no guest validation layer");
    assert_host_validation_clean(&server);
    let text = command_stats(&stats, 2);
    assert_commands_seen(&text, LEGACY_SYNC_COMMANDS);
    let _ = std::fs::remove_dir_all(&dir);
}

// ---------------------------------------------------------------------------------------
// Our guest ICD
// ---------------------------------------------------------------------------------------

/// A run through our ICD with the validation layer in the guest.
fn icd_run(transport: Transport<'_>, name: &str, args: &[&str]) -> Ran {
    icd_run_layer(transport, name, args, true)
}

fn icd_run_layer(transport: Transport<'_>, name: &str, args: &[&str], layer: bool) -> Ran {
    let dir = scratch_dir(name);
    let mut cmd = icd::icd_command(RENDER, transport, &dir);
    if layer {
        cmd.env(icd::LAYERS_ENABLE, "*validation")
            .arg("--require-validation");
    }
    cmd.args(args);
    let ran = icd::run_with_timeout(cmd, RUN_LIMIT);
    let _ = std::fs::remove_dir_all(&dir);
    ran
}

#[test]
fn our_icd_over_vtest_with_guest_and_host_validation() {
    let dir = scratch_dir("icd-stats");
    let stats = dir.join("commands.txt");
    let stats_env = stats.display().to_string();
    icd::ensure_built();
    let mut server = Server::start_with(
        "render-icd",
        true,
        &[("VENUS_COMMAND_STATS", stats_env.as_str())],
    );
    let ran = icd_run(Transport::Vtest(&server.socket), "icd-vtest", &[]);
    assert_clean_pass(&ran, "through our ICD over vtest");
    assert!(
        ran.stdout
            .contains("dynamic rendering: core 1.3; synchronization2: core 1.3")
            && ran
                .stdout
                .contains("(vkQueueSubmit2, vkCmdPipelineBarrier2)"),
        "{}",
        ran.describe()
    );
    let text = command_stats(&stats, 1);
    assert_commands_seen(&text, SYNC2_COMMANDS);
    assert_commands_seen(&text, OUR_ICD_COMMANDS);

    let ran = icd_run(
        Transport::Vtest(&server.socket),
        "icd-vtest-legacy",
        &["--legacy-sync"],
    );
    assert_clean_pass(&ran, "through our ICD over vtest, --legacy-sync");
    let text = command_stats(&stats, 2);
    assert_commands_seen(&text, LEGACY_SYNC_COMMANDS);

    // Without the guest validation layer, the handles Vulkan ignores reach our ICD as
    // the program made them up (regression: they used to reach the host, which ended
    // the context on the unknown objects).
    let ran = icd_run_layer(
        Transport::Vtest(&server.socket),
        "icd-vtest-no-layer",
        &[],
        false,
    );
    assert_pass(
        &ran,
        "through our ICD over vtest, no guest validation layer",
    );
    assert!(server.is_running(), "the server died");
    assert_host_validation_clean(&server);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn our_icd_in_process_with_and_without_guest_validation() {
    let ran = icd_run(Transport::InProcess, "icd-in-process", &[]);
    assert_clean_pass(&ran, "through our ICD in-process");
    let ran = icd_run_layer(
        Transport::InProcess,
        "icd-in-process-no-layer",
        &["--legacy-sync"],
        false,
    );
    assert_pass(
        &ran,
        "through our ICD in-process, --legacy-sync, no guest validation layer",
    );
}

/// Regression (host hardening): a descriptor write with a NULL sampler in a binding
/// that uses its sampler made lavapipe dereference NULL in the vtest server, taking
/// every client down. The host now checks descriptor writes against their layouts:
/// only the offending context ends, and the server keeps serving.
#[test]
fn null_sampler_write_ends_only_its_context() {
    icd::ensure_built();
    let mut server = Server::start("render-null-sampler", false);
    let ran = icd_run_layer(
        Transport::Vtest(&server.socket),
        "icd-null-sampler",
        &["--inject-null-sampler"],
        false,
    );
    assert!(!ran.success(), "{}", ran.describe());
    assert!(
        ran.stdout.contains(
            "injected vkUpdateDescriptorSets with a NULL sampler; then vkDeviceWaitIdle: \
             Err(ERROR_DEVICE_LOST)"
        ),
        "{}",
        ran.describe()
    );
    assert!(
        server.is_running(),
        "the server died: {}",
        server.log_text()
    );
    assert!(
        server
            .log_text()
            .contains("a COMBINED_IMAGE_SAMPLER write of a NULL sampler to binding 0"),
        "{}",
        server.log_text()
    );
    let ran = icd_run_layer(Transport::Vtest(&server.socket), "icd-after", &[], false);
    assert_pass(&ran, "through our ICD after another context's bad write");
}

/// Regression (guest ICD): vkGetCalibratedTimestampsEXT passed the host's
/// CLOCK_MONOTONIC on, which in a VM is another clock than the guest's. The server
/// runs here in a time namespace whose CLOCK_MONOTONIC is 10^6 s ahead (as a VM host's
/// would be), so the program's check that the CLOCK_MONOTONIC readings lie between its
/// own fails if the driver hands out the host's. Stock Mesa venus is run the same way
/// as the reference. Needs `unshare --time` (util-linux, root); skipped otherwise.
#[test]
fn calibrated_timestamps_use_the_guest_clock() {
    const PREFIX: &[&str] = &[
        "unshare",
        "--time",
        "--fork",
        "--kill-child=SIGTERM",
        "--monotonic",
        "1000000",
        "--",
    ];
    let probe = Command::new(PREFIX[0])
        .args(&PREFIX[1..])
        .arg("true")
        .output();
    if !probe.is_ok_and(|o| o.status.success()) {
        println!("SKIPPED: `unshare --time` is not available (util-linux, needs root)");
        return;
    }
    icd::ensure_built();
    let server = Server::start_prefixed("render-time-namespace", false, &[], &[], PREFIX);
    let clock_line = "lie in this program's";
    let ran = icd::run_with_timeout(server.venus_command(RENDER), RUN_LIMIT);
    assert_pass(&ran, "through Mesa venus, host in a time namespace");
    assert!(ran.stdout.contains(clock_line), "{}", ran.describe());
    let ran = icd_run_layer(Transport::Vtest(&server.socket), "icd-time-ns", &[], false);
    assert_pass(&ran, "through our ICD, host in a time namespace");
    assert!(ran.stdout.contains(clock_line), "{}", ran.describe());
    // `unshare --fork` waits for its child and ignores SIGTERM: stop the server itself
    // (its child), then dropping `server` reaps unshare.
    let children = format!("/proc/{0}/task/{0}/children", server.pid());
    for pid in std::fs::read_to_string(children)
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|p| p.parse::<i32>().ok())
    {
        // SAFETY: kill(2) on the server process this test started.
        unsafe { libc::kill(pid, libc::SIGTERM) };
    }
}
