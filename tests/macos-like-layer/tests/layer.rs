//! `VK_LAYER_VENUS_macos_like` through the real Vulkan loader on lavapipe.
//!
//! Each test runs `venus-macos-like-probe` in a child process with a clean
//! loader environment, lavapipe as the only driver, and a layer manifest
//! (written here) naming the layer library this `cargo test` just built.
//! Every refusal case has a control run without the layer, so the refusal is
//! known to come from the layer and not from lavapipe.
//!
//! Needs the Debian packages `mesa-vulkan-drivers` (lavapipe), `libvulkan1`
//! and `vulkan-validationlayers`. Missing ones are failures, not skips.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;

const LVP_ICD: &str = "/usr/share/vulkan/icd.d/lvp_icd.json";
const VALIDATION_MANIFEST: &str =
    "/usr/share/vulkan/explicit_layer.d/VkLayer_khronos_validation.json";
const PROBE: &str = env!("CARGO_BIN_EXE_venus-macos-like-probe");
const LAYER: &str = "VK_LAYER_VENUS_macos_like";
const LAYER_LIBRARY: &str = "libVkLayer_venus_macos_like.so";
const HIDDEN: [&str; 4] = [
    "VK_KHR_external_memory_fd",
    "VK_EXT_external_memory_dma_buf",
    "VK_KHR_external_semaphore_fd",
    "VK_KHR_external_fence_fd",
];

/// Environment variables that would change which driver or layers load.
const LOADER_VARS: &[&str] = &[
    "VK_ICD_FILENAMES",
    "VK_DRIVER_FILES",
    "VK_ADD_DRIVER_FILES",
    "VK_LAYER_PATH",
    "VK_ADD_LAYER_PATH",
    "VK_INSTANCE_LAYERS",
    "VK_LOADER_LAYERS_ENABLE",
    "VK_LOADER_LAYERS_DISABLE",
    "VK_LAYER_ENABLES",
    "VK_LAYER_DISABLES",
    "VK_LOADER_DEBUG",
    "VK_LOADER_DRIVERS_SELECT",
    "VK_LOADER_DRIVERS_DISABLE",
    "VENUS_MACOS_LIKE_LOG",
];

/// Which layers a run enables.
#[derive(Clone, Copy, PartialEq)]
enum Layers {
    /// None: lavapipe as it is.
    None,
    /// `VK_INSTANCE_LAYERS=VK_LAYER_VENUS_macos_like`.
    MacosLike,
    /// `VK_LOADER_LAYERS_ENABLE=*macos_like`.
    MacosLikeByFilter,
    /// `VK_INSTANCE_LAYERS=VK_LAYER_KHRONOS_validation:VK_LAYER_VENUS_macos_like`.
    ValidationAndMacosLike,
}

/// The layer library cargo built for this test run: `cargo test` builds the
/// cdylib into `deps/`, where this test executable also lives.
fn layer_library() -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    let deps = exe.parent().expect("test directory");
    let candidates = [
        deps.join(LAYER_LIBRARY),
        deps.parent()
            .map(|d| d.join(LAYER_LIBRARY))
            .unwrap_or_default(),
    ];
    candidates
        .into_iter()
        .find(|p| p.exists())
        .unwrap_or_else(|| panic!("{LAYER_LIBRARY} not built next to {}", exe.display()))
}

/// A directory holding a manifest whose `library_path` is the absolute path of
/// [`layer_library`], written once per test process.
fn manifest_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        // Shared by concurrent test processes; they all write the same text,
        // each through its own temporary file and an atomic rename.
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("macos-like-layer-manifest");
        std::fs::create_dir_all(&dir).expect("manifest directory");
        let library = layer_library()
            .canonicalize()
            .expect("canonical library path");
        let json = format!(
            r#"{{
    "file_format_version": "1.2.0",
    "layer": {{
        "name": "{LAYER}",
        "type": "GLOBAL",
        "library_path": "{}",
        "api_version": "1.3.281",
        "implementation_version": "1",
        "description": "test manifest"
    }}
}}
"#,
            library.display()
        );
        let tmp = dir.join(format!("manifest.{}.tmp", std::process::id()));
        std::fs::write(&tmp, json).expect("manifest");
        std::fs::rename(&tmp, dir.join("VkLayer_venus_macos_like.json")).expect("manifest");
        dir
    })
}

/// What one probe run printed, plus the layer's refusal log.
struct Run {
    stdout: String,
    log: String,
}

impl Run {
    /// The value of `key=` on the first line starting with `prefix`.
    fn value(&self, prefix: &str, key: &str) -> Option<&str> {
        let line = self.stdout.lines().find(|l| l.starts_with(prefix))?;
        line.split_whitespace()
            .find_map(|w| w.strip_prefix(key)?.strip_prefix('='))
    }

    /// The value of a line `key=value`.
    fn get(&self, key: &str) -> &str {
        self.value(&format!("{key}="), key)
            .unwrap_or_else(|| panic!("no {key}= in probe output:\n{}", self.stdout))
    }

    fn extensions(&self) -> Vec<&str> {
        self.stdout
            .lines()
            .filter_map(|l| l.strip_prefix("extension="))
            .collect()
    }

    /// Refusals of one kind in the layer log.
    fn refusals(&self, kind: &str) -> usize {
        let needle = format!(" kind={kind} ");
        self.log.lines().filter(|l| l.contains(&needle)).count()
    }
}

fn run(layers: Layers, args: &[&str]) -> Run {
    assert!(
        Path::new(LVP_ICD).exists(),
        "{LVP_ICD} is missing: install the Debian package mesa-vulkan-drivers"
    );
    let mut cmd = Command::new(PROBE);
    for var in LOADER_VARS {
        cmd.env_remove(var);
    }
    // Tests run in parallel: one log per run.
    static RUNS: AtomicU32 = AtomicU32::new(0);
    let log = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!(
        "macos-like-layer-{}-{}-{}.log",
        std::process::id(),
        RUNS.fetch_add(1, Ordering::Relaxed),
        args.join("-")
    ));
    let _ = std::fs::remove_file(&log);
    cmd.env("VK_DRIVER_FILES", LVP_ICD)
        .env("VK_ADD_LAYER_PATH", manifest_dir())
        .env("VENUS_MACOS_LIKE_LOG", &log)
        .args(args);
    match layers {
        Layers::None => {}
        Layers::MacosLike => {
            cmd.env("VK_INSTANCE_LAYERS", LAYER);
        }
        Layers::MacosLikeByFilter => {
            cmd.env("VK_LOADER_LAYERS_ENABLE", "*macos_like");
        }
        Layers::ValidationAndMacosLike => {
            assert!(
                Path::new(VALIDATION_MANIFEST).exists(),
                "install the Debian package vulkan-validationlayers"
            );
            cmd.env(
                "VK_INSTANCE_LAYERS",
                format!("VK_LAYER_KHRONOS_validation:{LAYER}"),
            )
            .env("VK_LOADER_DEBUG", "layer");
        }
    }
    let out = cmd.output().expect("run venus-macos-like-probe");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        out.status.success(),
        "probe {args:?} failed ({}):\n{stdout}\n{stderr}",
        out.status
    );
    if layers == Layers::ValidationAndMacosLike {
        for layer in ["VK_LAYER_KHRONOS_validation", LAYER] {
            assert!(
                stderr.contains(&format!("Insert instance layer \"{layer}\"")),
                "{layer} was not loaded:\n{stderr}"
            );
        }
    }
    let log_text = std::fs::read_to_string(&log).unwrap_or_default();
    let _ = std::fs::remove_file(&log);
    Run {
        stdout,
        log: log_text,
    }
}

#[test]
fn fd_and_dma_buf_extensions_are_hidden() {
    let plain = run(Layers::None, &["info"]);
    let plain_exts = plain.extensions();
    // The control: lavapipe itself has the fd memory extensions.
    assert!(plain_exts.contains(&"VK_KHR_external_memory_fd"));
    assert!(plain_exts.contains(&"VK_EXT_external_memory_dma_buf"));
    assert_eq!(plain.refusals("hidden-device-extension"), 0);

    let layered = run(Layers::MacosLike, &["info"]);
    let exts = layered.extensions();
    for hidden in HIDDEN {
        assert!(!exts.contains(&hidden), "{hidden} still listed");
    }
    // Everything else passes through.
    let expected: Vec<_> = plain_exts.iter().filter(|e| !HIDDEN.contains(e)).collect();
    assert_eq!(exts.iter().collect::<Vec<_>>(), expected);
    assert!(exts.contains(&"VK_EXT_external_memory_host"));
    // Enabling a hidden extension fails.
    for ext in [
        "VK_KHR_external_memory_fd",
        "VK_EXT_external_memory_dma_buf",
    ] {
        assert_eq!(
            layered.value(&format!("create-device extension={ext} "), "result"),
            Some("ERROR_EXTENSION_NOT_PRESENT")
        );
    }
    assert!(
        layered.refusals("hidden-device-extension") > 0,
        "{}",
        layered.log
    );
}

#[test]
fn external_fd_handle_types_report_no_support() {
    let plain = run(Layers::None, &["info"]);
    // The control: lavapipe exports and imports opaque fds and dma-bufs.
    assert_ne!(
        plain.value("external-buffer handle=OPAQUE_FD ", "features"),
        Some("0x0")
    );
    assert_ne!(
        plain.value("external-buffer handle=DMA_BUF ", "features"),
        Some("0x0")
    );
    assert_eq!(
        plain.value("external-image handle=DMA_BUF ", "result"),
        Some("SUCCESS")
    );

    let layered = run(Layers::MacosLike, &["info"]);
    for handle in ["OPAQUE_FD", "DMA_BUF"] {
        let prefix = format!("external-buffer handle={handle} ");
        assert_eq!(layered.value(&prefix, "features"), Some("0x0"));
        assert_eq!(layered.value(&prefix, "compatible"), Some("0x0"));
        assert_eq!(
            layered.value(&format!("external-image handle={handle} "), "result"),
            Some("ERROR_FORMAT_NOT_SUPPORTED")
        );
    }
    for kind in ["semaphore", "fence"] {
        for handle in ["OPAQUE_FD", "SYNC_FD"] {
            let prefix = format!("external-{kind} handle={handle} ");
            assert_eq!(layered.value(&prefix, "features"), Some("0x0"));
            assert_eq!(layered.value(&prefix, "compatible"), Some("0x0"));
        }
    }
    // Host allocations, MoltenVK's way, still work.
    assert_eq!(
        layered.value("external-buffer handle=HOST_ALLOCATION ", "features"),
        plain.value("external-buffer handle=HOST_ALLOCATION ", "features")
    );
    assert_eq!(
        layered.value("external-image handle=HOST_ALLOCATION ", "result"),
        Some("SUCCESS")
    );
    assert_eq!(layered.refusals("external-buffer-handle"), 2);
    assert_eq!(layered.refusals("external-image-handle"), 2);
    assert_eq!(layered.refusals("external-semaphore-handle"), 2);
    assert_eq!(layered.refusals("external-fence-handle"), 2);
}

#[test]
fn min_imported_host_pointer_alignment_is_16k() {
    let plain = run(Layers::None, &["info"]);
    assert_eq!(plain.get("min-imported-host-pointer-alignment"), "4096");
    let layered = run(Layers::MacosLike, &["info"]);
    assert_eq!(layered.get("min-imported-host-pointer-alignment"), "16384");
    // The other way to enable it.
    let filtered = run(Layers::MacosLikeByFilter, &["info"]);
    assert_eq!(filtered.get("min-imported-host-pointer-alignment"), "16384");
}

#[test]
fn aligned_host_pointer_import_succeeds() {
    let layered = run(Layers::MacosLike, &["import", "0", "65536"]);
    assert_eq!(layered.get("host-pointer-properties"), "SUCCESS");
    assert_eq!(layered.get("import"), "SUCCESS");
    // Writes through the Vulkan mapping land in the imported host memory.
    assert_eq!(layered.get("aliased"), "true");
    assert_eq!(
        layered.refusals("host-pointer-import"),
        0,
        "{}",
        layered.log
    );
    assert_eq!(
        layered.refusals("host-pointer-properties"),
        0,
        "{}",
        layered.log
    );
}

#[test]
fn pointer_not_16k_aligned_is_refused() {
    // 4 KiB aligned but not 16 KiB: lavapipe alone accepts it.
    let plain = run(Layers::None, &["import", "4096", "65536"]);
    assert_eq!(plain.get("host-pointer-properties"), "SUCCESS");
    assert_eq!(plain.get("import"), "SUCCESS");

    let layered = run(Layers::MacosLike, &["import", "4096", "65536"]);
    assert_eq!(
        layered.get("host-pointer-properties"),
        "ERROR_INVALID_EXTERNAL_HANDLE"
    );
    assert_eq!(layered.get("import"), "ERROR_INVALID_EXTERNAL_HANDLE");
    assert_eq!(
        layered.refusals("host-pointer-properties"),
        1,
        "{}",
        layered.log
    );
    assert_eq!(
        layered.refusals("host-pointer-import"),
        1,
        "{}",
        layered.log
    );
}

#[test]
fn size_not_16k_multiple_is_refused() {
    let plain = run(Layers::None, &["import", "0", "4096"]);
    assert_eq!(plain.get("import"), "SUCCESS");

    let layered = run(Layers::MacosLike, &["import", "0", "4096"]);
    // The pointer itself is aligned: only the allocation size is wrong.
    assert_eq!(layered.get("host-pointer-properties"), "SUCCESS");
    assert_eq!(layered.get("import"), "ERROR_INVALID_EXTERNAL_HANDLE");
    assert_eq!(
        layered.refusals("host-pointer-properties"),
        0,
        "{}",
        layered.log
    );
    assert_eq!(
        layered.refusals("host-pointer-import"),
        1,
        "{}",
        layered.log
    );
    assert!(layered.log.contains("size=4096"), "{}", layered.log);
}

#[test]
fn map_offset_not_16k_aligned_is_refused() {
    let plain = run(Layers::None, &["map", "4096"]);
    assert_eq!(plain.get("map"), "SUCCESS");
    let plain2 = run(Layers::None, &["map2", "4096"]);
    assert_eq!(plain2.get("map2"), "SUCCESS");

    let refused = run(Layers::MacosLike, &["map", "4096"]);
    assert_eq!(refused.get("map"), "ERROR_MEMORY_MAP_FAILED");
    assert_eq!(refused.refusals("map-memory-offset"), 1, "{}", refused.log);
    let refused2 = run(Layers::MacosLike, &["map2", "4096"]);
    assert_eq!(refused2.get("map2"), "ERROR_MEMORY_MAP_FAILED");
    assert!(
        refused2.log.contains("entry=vkMapMemory2KHR"),
        "{}",
        refused2.log
    );

    for offset in ["0", "16384"] {
        let ok = run(Layers::MacosLike, &["map", offset]);
        assert_eq!(ok.get("map"), "SUCCESS");
        assert_eq!(ok.refusals("map-memory-offset"), 0, "{}", ok.log);
    }
}

#[test]
fn validation_reports_nothing_on_the_aligned_path() {
    let import = run(Layers::ValidationAndMacosLike, &["import", "0", "65536"]);
    assert_eq!(import.get("import"), "SUCCESS");
    assert_eq!(import.get("aliased"), "true");
    assert_eq!(import.get("validation-messages"), "0", "{}", import.stdout);

    let map = run(Layers::ValidationAndMacosLike, &["map", "16384"]);
    assert_eq!(map.get("map"), "SUCCESS");
    assert_eq!(map.get("validation-messages"), "0", "{}", map.stdout);

    let info = run(Layers::ValidationAndMacosLike, &["info"]);
    // The validation layer sits above: it sees what the layer reports.
    assert_eq!(info.get("min-imported-host-pointer-alignment"), "16384");
    assert_eq!(info.get("validation-messages"), "0", "{}", info.stdout);
}

#[test]
fn committed_manifest_names_the_layer_library() {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("VkLayer_venus_macos_like.json");
    let text = std::fs::read_to_string(&manifest).expect("committed manifest");
    assert!(text.contains(&format!("\"name\": \"{LAYER}\"")));
    assert!(text.contains(&format!(
        "\"library_path\": \"../../target/debug/{LAYER_LIBRARY}\""
    )));
}
