//! Runs `venus-compute` natively on lavapipe under the Khronos validation layer, so the
//! program is known to be correct (results and Vulkan usage) before it is pointed at
//! the venus driver and our host translator.
//!
//! Needs the Debian packages `mesa-vulkan-drivers` (lavapipe), `libvulkan1` and
//! `vulkan-validationlayers`; `glslang-tools` for the SPIR-V reproducibility check.
//! Missing driver or layer is a test failure, not a skip: CI installs them.

use std::path::Path;
use std::process::{Command, Output};

const LVP_ICD: &str = "/usr/share/vulkan/icd.d/lvp_icd.json";
const VALIDATION_MANIFEST: &str =
    "/usr/share/vulkan/explicit_layer.d/VkLayer_khronos_validation.json";
const PROGRAM: &str = env!("CARGO_BIN_EXE_venus-compute");

/// Environment variables that would change which driver or layers load.
const LOADER_VARS: &[&str] = &[
    "VK_ICD_FILENAMES",
    "VK_DRIVER_FILES",
    "VK_ADD_DRIVER_FILES",
    "VK_INSTANCE_LAYERS",
    "VK_LOADER_LAYERS_ENABLE",
    "VK_LOADER_LAYERS_DISABLE",
    "VK_LAYER_ENABLES",
    "VK_LAYER_DISABLES",
    "VK_LOADER_DEBUG",
    "VK_LOADER_DRIVERS_SELECT",
    "VK_LOADER_DRIVERS_DISABLE",
];

fn require_file(path: &str, package: &str) {
    assert!(
        Path::new(path).exists(),
        "{path} is missing: install the Debian package {package}"
    );
}

/// `venus-compute` on lavapipe only, with a clean loader environment.
fn lavapipe_command(args: &[&str]) -> Command {
    require_file(LVP_ICD, "mesa-vulkan-drivers");
    let mut cmd = Command::new(PROGRAM);
    for var in LOADER_VARS {
        cmd.env_remove(var);
    }
    cmd.env("VK_DRIVER_FILES", LVP_ICD).args(args);
    cmd
}

/// Same, with the validation layer forced on (core checks plus synchronization
/// validation) and the loader's layer log on stderr.
fn validated_command(args: &[&str]) -> Command {
    require_file(VALIDATION_MANIFEST, "vulkan-validationlayers");
    let mut cmd = lavapipe_command(args);
    cmd.env("VK_LOADER_LAYERS_ENABLE", "*validation")
        .env(
            "VK_LAYER_ENABLES",
            "VK_VALIDATION_FEATURE_ENABLE_SYNCHRONIZATION_VALIDATION_EXT",
        )
        .env("VK_LOADER_DEBUG", "layer");
    cmd
}

fn run(mut cmd: Command) -> (Output, String, String) {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {PROGRAM}: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    (out, stdout, stderr)
}

/// Asserts a validated run passed: exit 0, final PASS, no FAIL line, the validation layer
/// loaded (loader log) and active (the program's tool-properties check), no message.
fn assert_validated_pass(args: &[&str]) -> String {
    let (out, stdout, stderr) = run(validated_command(args));
    let context = format!("args {args:?}\n--- stdout\n{stdout}\n--- stderr\n{stderr}");
    assert!(
        out.status.success(),
        "exit status {}: {context}",
        out.status
    );
    assert_eq!(stdout.lines().last(), Some("PASS"), "{context}");
    assert!(
        !stdout.lines().any(|l| l.starts_with("FAIL")),
        "a check failed: {context}"
    );
    // The loader inserted the layer into the instance and device call chains.
    assert!(
        stderr.contains("Insert instance layer \"VK_LAYER_KHRONOS_validation\"")
            && stderr.contains("Inserted device layer \"VK_LAYER_KHRONOS_validation\""),
        "the loader did not load the validation layer: {context}"
    );
    // The layer reports itself active, and the program counted no message.
    assert!(
        stdout.contains("ok validation layer active"),
        "validation layer not reported active: {context}"
    );
    assert!(
        stdout.contains("ok validation warnings and errors: 0"),
        "{context}"
    );
    for needle in [
        "Validation Error",
        "Validation Warning",
        "validation message",
    ] {
        assert!(
            !stdout.contains(needle) && !stderr.contains(needle),
            "validation output ({needle}): {context}"
        );
    }
    stdout
}

#[test]
fn default_sizes_pass_under_validation() {
    let stdout = assert_validated_pass(&["--require-validation"]);
    // Both sizes ran, element by element, twice each, with the 2D grid for 1M.
    for line in [
        "ok n=64 iteration 1: 64 elements",
        "ok n=1048576 iteration 1: 1048576 elements",
        "(dispatch 4096x4,",
        "ok n=1048576 iteration 1: second submit (after the binary semaphore) copied the same results",
        "ok n=1048576 iteration 1: timeline counter after both submits: Ok(12) (want 12)",
        "ok pipeline cache data",
        "ok vkDeviceWaitIdle",
    ] {
        assert!(stdout.contains(line), "missing {line:?} in:\n{stdout}");
    }
    assert!(
        stdout.contains("physical device 0 of 1: llvmpipe"),
        "not lavapipe:\n{stdout}"
    );
}

#[test]
fn odd_size_and_more_iterations_pass_under_validation() {
    // 300001 is not a multiple of 64 and needs 4688 workgroups: a 4096x2 grid whose
    // last row is partly out of range (the shader's bounds check).
    let stdout = assert_validated_pass(&[
        "--require-validation",
        "--elements",
        "300001",
        "--iterations",
        "3",
    ]);
    assert!(
        stdout.contains("ok n=300001 iteration 2: 300001 elements")
            && stdout.contains("(dispatch 4096x2,"),
        "{stdout}"
    );
}

#[test]
fn quiet_prints_only_the_verdict() {
    let (out, stdout, stderr) = run(lavapipe_command(&["--quiet", "--elements", "1000"]));
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert_eq!(stdout.trim(), "PASS", "stderr: {stderr}");
}

#[test]
fn injected_validation_error_fails_the_run() {
    // Proves that a validation message turns into a FAIL line and a non-zero exit.
    let (out, stdout, stderr) = run(validated_command(&[
        "--require-validation",
        "--elements",
        "64",
        "--iterations",
        "1",
        "--inject-validation-error",
    ]));
    assert!(!out.status.success(), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("VUID-VkBufferCreateInfo-size-00912"),
        "the injected error was not reported: {stdout}\n{stderr}"
    );
    assert!(
        stdout.contains("FAIL validation warnings and errors: 1"),
        "{stdout}"
    );
    assert_eq!(stdout.lines().last(), Some("FAIL"), "{stdout}");
}

#[test]
fn missing_validation_layer_is_detected() {
    // Without the layer, --require-validation must fail: the check is not vacuous.
    let (out, stdout, stderr) = run(lavapipe_command(&[
        "--require-validation",
        "--elements",
        "64",
        "--iterations",
        "1",
    ]));
    assert!(!out.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("FAIL validation layer active"), "{stdout}");
}

#[test]
fn bad_arguments_are_rejected() {
    for args in [&["--elements", "0"][..], &["--iterations"], &["--bogus"]] {
        let (out, stdout, stderr) = run(lavapipe_command(args));
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stdout}\n{stderr}");
        assert!(stderr.contains("usage:"), "{args:?}: {stderr}");
    }
}

#[test]
fn committed_spirv_matches_glsl_source() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("shaders");
    let source = dir.join("compute.comp");
    let committed = std::fs::read(dir.join("compute.spv")).expect("read compute.spv");
    let version = Command::new("glslangValidator").arg("--version").output();
    let Ok(version) = version else {
        println!(
            "SKIPPED: glslangValidator not found (Debian package glslang-tools); \
             cannot check that compute.spv is built from compute.comp"
        );
        return;
    };
    let version = String::from_utf8_lossy(&version.stdout).into_owned();
    let out_path = std::env::temp_dir().join(format!("venus-compute-{}.spv", std::process::id()));
    let status = Command::new("glslangValidator")
        .args(["-V", "--quiet"])
        .arg(&source)
        .arg("-o")
        .arg(&out_path)
        .status()
        .expect("run glslangValidator");
    assert!(
        status.success(),
        "glslangValidator failed on {}",
        source.display()
    );
    let rebuilt = std::fs::read(&out_path).expect("read rebuilt SPIR-V");
    let _ = std::fs::remove_file(&out_path);
    assert!(
        rebuilt == committed,
        "tests/shaders/compute.spv is not what `glslangValidator -V --quiet compute.comp -o \
         compute.spv` builds ({} vs {} bytes; glslang {})",
        committed.len(),
        rebuilt.len(),
        version.lines().next().unwrap_or("?")
    );
    // spirv-val (spirv-tools) validates the committed binary when present.
    if let Ok(out) = Command::new("spirv-val")
        .args(["--target-env", "vulkan1.2"])
        .arg(dir.join("compute.spv"))
        .output()
    {
        assert!(
            out.status.success(),
            "spirv-val rejects compute.spv: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    } else {
        println!("spirv-val not found (Debian package spirv-tools): SPIR-V not validated");
    }
}
