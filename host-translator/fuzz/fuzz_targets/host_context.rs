//! Feeds arbitrary bytes to a fresh host context as one out-of-ring command stream
//! (virtio-gpu EXECBUFFER / vtest SUBMIT_CMD2), on lavapipe.
//!
//! One process-wide `Renderer` loads lavapipe directly (`libvulkan_lvp.so`, no
//! loader; set `VENUS_FUZZ_LOADER=1` to go through the loader with
//! `VK_DRIVER_FILES` pointing at lavapipe instead). Per input: a new context with
//! resource 1, a 64 KiB shared-memory blob (for reply streams and rings), then
//! `submit_cmd(input)`. Errors are expected; a panic anywhere (libfuzzer-sys aborts
//! on any panic, even one the context catches) or a crash is a bug.
#![no_main]

use std::sync::{Arc, OnceLock};

use libfuzzer_sys::fuzz_target;
use venus_host::{FenceSink, Renderer, RendererConfig};

struct NoFences;

impl FenceSink for NoFences {
    fn fence_retired(&self, _ctx_id: u32, _ring_idx: u32, _fence_id: u64) {}
}

fn renderer() -> &'static Arc<Renderer> {
    static R: OnceLock<Arc<Renderer>> = OnceLock::new();
    R.get_or_init(|| {
        let config = if std::env::var_os("VENUS_FUZZ_LOADER").is_some() {
            if std::env::var_os("VK_DRIVER_FILES").is_none() {
                std::env::set_var("VK_DRIVER_FILES", "/usr/share/vulkan/icd.d/lvp_icd.json");
            }
            RendererConfig::default()
        } else {
            RendererConfig {
                host_driver: Some("libvulkan_lvp.so".into()),
                ..RendererConfig::default()
            }
        };
        Renderer::new(config).expect("lavapipe must load")
    })
}

fuzz_target!(|data: &[u8]| {
    let r = renderer();
    let ctx = r
        .create_context(1, "fuzz", Arc::new(NoFences))
        .expect("context");
    ctx.create_blob(1, 0, 65536, 0).expect("64 KiB blob");
    if let Err(e) = ctx.submit_cmd(data) {
        assert!(ctx.is_fatal(), "an error must leave the context fatal: {e}");
    }
    drop(ctx);
});
