//! `libvirglrenderer.so.1` for QEMU: the part of virglrenderer's C ABI a VMM
//! uses to run Venus, implemented over the host translator (`venus_host`).
//!
//! QEMU 10.0's `virtio-gpu-gl` device (`hw-display-virtio-gpu-gl.so`) imports 28
//! functions; this library exports exactly those (see `exports.rs` and
//! `packaging/virglrenderer/virglrenderer.h`). Point `LD_LIBRARY_PATH` at it and
//! run QEMU with `-device virtio-gpu-gl-pci,venus=on,blob=on,hostmem=...`.
//!
//! What it serves:
//!
//! * Venus (capset 4) only: the capset is the host translator's, extended with
//!   our 16-byte tail announcing the sharing granularity (176 bytes). Other
//!   capsets report size 0; contexts of capset 0-2 are accepted but inert.
//! * Host blobs (Venus shared memory, host-visible device memory) mapped at
//!   granularity-aligned addresses for the VMM's host-visible window.
//! * Plain 2D resources in host memory, so the guest console and cursor have
//!   somewhere to live. There is no GL: resources have no texture (`tex_id` 0),
//!   so a GL display shows no scanout contents.
//! * Fences: ctx-0 fences retire at once, context fences on their timeline;
//!   both are delivered only inside `virgl_renderer_poll`.
//!
//! Every entry point catches panics and returns a negative errno on bad input.
//! Logs go to stderr through `tracing`, filtered by `VENUS_LOG`.

pub mod abi;
pub mod error;
pub mod exports;
mod fences;
pub mod iov;
mod library;
pub mod mapping;
pub mod pixels;
mod resources;

/// Installs the log subscriber on the first call into the library.
fn init_logging_once() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(venus_host::init_logging);
}
