//! The committed protocol/src/generated/ is exactly what the generator produces now.

use std::path::{Path, PathBuf};
use std::process::Command;

fn files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut v: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
        .expect("read dir")
        .filter_map(|e| e.ok())
        .map(|e| {
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).expect("read"),
            )
        })
        .collect();
    v.sort();
    v
}

#[test]
fn generated_code_is_reproducible() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let vk_xml = std::env::var_os("VENUS_VK_XML")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("../shared/registry/vk.xml"));
    assert!(
        vk_xml.exists(),
        "vk.xml not found at {} (set VENUS_VK_XML)",
        vk_xml.display()
    );
    let out = std::env::temp_dir().join(format!("venus-regen-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&out);
    let status = Command::new(env!("CARGO_BIN_EXE_venus-codegen"))
        .arg("--registry")
        .arg(&vk_xml)
        .arg("--venus")
        .arg(root.join("codegen/venus"))
        .arg("--out")
        .arg(&out)
        .status()
        .expect("run venus-codegen");
    assert!(status.success());
    let fresh = files(&out);
    let committed = files(&root.join("protocol/src/generated"));
    let names = |v: &[(String, Vec<u8>)]| v.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>();
    assert_eq!(
        names(&fresh),
        names(&committed),
        "generated file set differs"
    );
    for ((n, a), (_, b)) in fresh.iter().zip(&committed) {
        assert!(
            a == b,
            "protocol/src/generated/{n} differs from the generator's output; regenerate"
        );
    }
    let _ = std::fs::remove_dir_all(&out);
}
