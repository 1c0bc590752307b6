//! Test only: compiles a small C program against the real uapi header
//! (`virtgpu_drm.h` from Mesa's `include/drm-uapi`, or libdrm's) with the system C
//! compiler and checks that every struct size and request number in [`super::uapi`]
//! matches what the header's own macros produce.
//!
//! The header is looked up in `VENUS_DRM_UAPI_DIR`, next to `VENUS_MESA_SRC`
//! (`<mesa>/src/virtio/venus-protocol` -> `<mesa>/include/drm-uapi`), in the
//! repository's `.cache/mesa` (where `tests/reference/fetch-mesa.sh` extracts Mesa),
//! and in `/usr/include/libdrm`. Without a header or a compiler the test says so
//! and passes; the hand-computed values in `uapi`'s own tests still run.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::uapi::*;

fn header_dir() -> Option<PathBuf> {
    let mut candidates = Vec::new();
    if let Some(d) = std::env::var_os("VENUS_DRM_UAPI_DIR") {
        candidates.push(PathBuf::from(d));
    }
    if let Some(d) = std::env::var_os("VENUS_MESA_SRC") {
        candidates.push(PathBuf::from(d).join("../../../include/drm-uapi"));
    }
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    candidates.push(repo.join(".cache/mesa/mesa-25.0.7/include/drm-uapi"));
    candidates.push(PathBuf::from("/usr/include/libdrm"));
    candidates
        .into_iter()
        .find(|d| d.join("virtgpu_drm.h").is_file())
}

const PROGRAM: &str = r#"
#include <stdio.h>
#include "virtgpu_drm.h"
#define P(name, v) printf("%s %llu\n", name, (unsigned long long)(v))
int main(void) {
    P("version_size", sizeof(struct drm_version));
    P("DRM_IOCTL_VERSION", DRM_IOCTL_VERSION);
    P("gem_close_size", sizeof(struct drm_gem_close));
    P("map_size", sizeof(struct drm_virtgpu_map));
    P("execbuffer_size", sizeof(struct drm_virtgpu_execbuffer));
    P("getparam_size", sizeof(struct drm_virtgpu_getparam));
    P("resource_info_size", sizeof(struct drm_virtgpu_resource_info));
    P("get_caps_size", sizeof(struct drm_virtgpu_get_caps));
    P("create_blob_size", sizeof(struct drm_virtgpu_resource_create_blob));
    P("set_param_size", sizeof(struct drm_virtgpu_context_set_param));
    P("context_init_size", sizeof(struct drm_virtgpu_context_init));
    P("DRM_IOCTL_GEM_CLOSE", DRM_IOCTL_GEM_CLOSE);
    P("DRM_IOCTL_VIRTGPU_MAP", DRM_IOCTL_VIRTGPU_MAP);
    P("DRM_IOCTL_VIRTGPU_EXECBUFFER", DRM_IOCTL_VIRTGPU_EXECBUFFER);
    P("DRM_IOCTL_VIRTGPU_GETPARAM", DRM_IOCTL_VIRTGPU_GETPARAM);
    P("DRM_IOCTL_VIRTGPU_RESOURCE_INFO", DRM_IOCTL_VIRTGPU_RESOURCE_INFO);
    P("DRM_IOCTL_VIRTGPU_GET_CAPS", DRM_IOCTL_VIRTGPU_GET_CAPS);
    P("DRM_IOCTL_VIRTGPU_RESOURCE_CREATE_BLOB", DRM_IOCTL_VIRTGPU_RESOURCE_CREATE_BLOB);
    P("DRM_IOCTL_VIRTGPU_CONTEXT_INIT", DRM_IOCTL_VIRTGPU_CONTEXT_INIT);
    P("VIRTGPU_EXECBUF_RING_IDX", VIRTGPU_EXECBUF_RING_IDX);
    P("VIRTGPU_PARAM_3D_FEATURES", VIRTGPU_PARAM_3D_FEATURES);
    P("VIRTGPU_PARAM_CAPSET_QUERY_FIX", VIRTGPU_PARAM_CAPSET_QUERY_FIX);
    P("VIRTGPU_PARAM_RESOURCE_BLOB", VIRTGPU_PARAM_RESOURCE_BLOB);
    P("VIRTGPU_PARAM_HOST_VISIBLE", VIRTGPU_PARAM_HOST_VISIBLE);
    P("VIRTGPU_PARAM_CONTEXT_INIT", VIRTGPU_PARAM_CONTEXT_INIT);
    P("VIRTGPU_PARAM_SUPPORTED_CAPSET_IDs", VIRTGPU_PARAM_SUPPORTED_CAPSET_IDs);
    P("VIRTGPU_BLOB_MEM_HOST3D", VIRTGPU_BLOB_MEM_HOST3D);
    P("VIRTGPU_BLOB_FLAG_USE_MAPPABLE", VIRTGPU_BLOB_FLAG_USE_MAPPABLE);
    P("VIRTGPU_CONTEXT_PARAM_CAPSET_ID", VIRTGPU_CONTEXT_PARAM_CAPSET_ID);
    P("VIRTGPU_CONTEXT_PARAM_NUM_RINGS", VIRTGPU_CONTEXT_PARAM_NUM_RINGS);
    P("VIRTGPU_CONTEXT_PARAM_POLL_RINGS_MASK", VIRTGPU_CONTEXT_PARAM_POLL_RINGS_MASK);
    return 0;
}
"#;

// `c_ulong` is `u64` on 64-bit targets only.
#[allow(clippy::useless_conversion)]
fn ours() -> Vec<(&'static str, u64)> {
    use std::mem::size_of;
    let sz = |n: usize| n as u64;
    vec![
        ("version_size", sz(size_of::<DrmVersion>())),
        ("DRM_IOCTL_VERSION", u64::from(DRM_IOCTL_VERSION)),
        ("gem_close_size", sz(size_of::<DrmGemClose>())),
        ("map_size", sz(size_of::<DrmVirtgpuMap>())),
        ("execbuffer_size", sz(size_of::<DrmVirtgpuExecbuffer>())),
        ("getparam_size", sz(size_of::<DrmVirtgpuGetparam>())),
        (
            "resource_info_size",
            sz(size_of::<DrmVirtgpuResourceInfo>()),
        ),
        ("get_caps_size", sz(size_of::<DrmVirtgpuGetCaps>())),
        (
            "create_blob_size",
            sz(size_of::<DrmVirtgpuResourceCreateBlob>()),
        ),
        ("set_param_size", sz(size_of::<DrmVirtgpuContextSetParam>())),
        ("context_init_size", sz(size_of::<DrmVirtgpuContextInit>())),
        ("DRM_IOCTL_GEM_CLOSE", u64::from(DRM_IOCTL_GEM_CLOSE)),
        ("DRM_IOCTL_VIRTGPU_MAP", u64::from(DRM_IOCTL_VIRTGPU_MAP)),
        (
            "DRM_IOCTL_VIRTGPU_EXECBUFFER",
            u64::from(DRM_IOCTL_VIRTGPU_EXECBUFFER),
        ),
        (
            "DRM_IOCTL_VIRTGPU_GETPARAM",
            u64::from(DRM_IOCTL_VIRTGPU_GETPARAM),
        ),
        (
            "DRM_IOCTL_VIRTGPU_RESOURCE_INFO",
            u64::from(DRM_IOCTL_VIRTGPU_RESOURCE_INFO),
        ),
        (
            "DRM_IOCTL_VIRTGPU_GET_CAPS",
            u64::from(DRM_IOCTL_VIRTGPU_GET_CAPS),
        ),
        (
            "DRM_IOCTL_VIRTGPU_RESOURCE_CREATE_BLOB",
            u64::from(DRM_IOCTL_VIRTGPU_RESOURCE_CREATE_BLOB),
        ),
        (
            "DRM_IOCTL_VIRTGPU_CONTEXT_INIT",
            u64::from(DRM_IOCTL_VIRTGPU_CONTEXT_INIT),
        ),
        (
            "VIRTGPU_EXECBUF_RING_IDX",
            u64::from(VIRTGPU_EXECBUF_RING_IDX),
        ),
        ("VIRTGPU_PARAM_3D_FEATURES", VIRTGPU_PARAM_3D_FEATURES),
        (
            "VIRTGPU_PARAM_CAPSET_QUERY_FIX",
            VIRTGPU_PARAM_CAPSET_QUERY_FIX,
        ),
        ("VIRTGPU_PARAM_RESOURCE_BLOB", VIRTGPU_PARAM_RESOURCE_BLOB),
        ("VIRTGPU_PARAM_HOST_VISIBLE", VIRTGPU_PARAM_HOST_VISIBLE),
        ("VIRTGPU_PARAM_CONTEXT_INIT", VIRTGPU_PARAM_CONTEXT_INIT),
        (
            "VIRTGPU_PARAM_SUPPORTED_CAPSET_IDs",
            VIRTGPU_PARAM_SUPPORTED_CAPSET_IDS,
        ),
        (
            "VIRTGPU_BLOB_MEM_HOST3D",
            u64::from(VIRTGPU_BLOB_MEM_HOST3D),
        ),
        (
            "VIRTGPU_BLOB_FLAG_USE_MAPPABLE",
            u64::from(VIRTGPU_BLOB_FLAG_USE_MAPPABLE),
        ),
        (
            "VIRTGPU_CONTEXT_PARAM_CAPSET_ID",
            VIRTGPU_CONTEXT_PARAM_CAPSET_ID,
        ),
        (
            "VIRTGPU_CONTEXT_PARAM_NUM_RINGS",
            VIRTGPU_CONTEXT_PARAM_NUM_RINGS,
        ),
        (
            "VIRTGPU_CONTEXT_PARAM_POLL_RINGS_MASK",
            VIRTGPU_CONTEXT_PARAM_POLL_RINGS_MASK,
        ),
    ]
}

#[test]
fn uapi_matches_the_c_header() {
    let Some(dir) = header_dir() else {
        eprintln!("skipped: no virtgpu_drm.h found (set VENUS_DRM_UAPI_DIR)");
        return;
    };
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    let work = std::env::temp_dir().join(format!("venus-drm-uapi-{}", std::process::id()));
    std::fs::create_dir_all(&work).expect("temp dir");
    let src = work.join("check.c");
    let exe = work.join("check");
    std::fs::write(&src, PROGRAM).expect("write C source");
    let built = Command::new(&cc)
        .arg("-I")
        .arg(&dir)
        .arg("-o")
        .arg(&exe)
        .arg(&src)
        .output();
    let built = match built {
        Ok(o) => o,
        Err(e) => {
            eprintln!("skipped: cannot run {cc}: {e}");
            let _ = std::fs::remove_dir_all(&work);
            return;
        }
    };
    assert!(
        built.status.success(),
        "compiling against {}: {}",
        dir.display(),
        String::from_utf8_lossy(&built.stderr)
    );
    let out = Command::new(&exe).output().expect("run the C check");
    let _ = std::fs::remove_dir_all(&work);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    let theirs: std::collections::HashMap<&str, u64> = text
        .lines()
        .filter_map(|l| {
            let (k, v) = l.split_once(' ')?;
            Some((k, v.parse().ok()?))
        })
        .collect();
    let ours = ours();
    assert_eq!(theirs.len(), ours.len(), "C output: {text}");
    for (name, value) in ours {
        assert_eq!(
            theirs.get(name),
            Some(&value),
            "{name}: ours {value:#x}, header {:?} ({})",
            theirs.get(name).map(|v| format!("{v:#x}")),
            dir.display()
        );
    }
}
