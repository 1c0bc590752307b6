//! Inputs the `host_context` fuzz target (host-translator/fuzz) found to crash the
//! host, replayed against a fresh context on lavapipe. Each must be refused or
//! answered, never panic, including when the context is dropped afterwards.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

use ash::vk;
use ash::vk::Handle;
use venus_host::{FenceSink, Renderer, RendererConfig};
use venus_protocol::generated as g;
use venus_protocol::mesa::CommandStreamDescriptionMESA;
use venus_protocol::Encoder;

struct NoFences;

impl FenceSink for NoFences {
    fn fence_retired(&self, _ctx_id: u32, _ring_idx: u32, _fence_id: u64) {}
}

/// Runs `stream` in a fresh context the way the fuzz target does (lavapipe loaded
/// directly, resource 1 a 64 KiB blob), then drops the context; returns whether
/// the submit succeeded. Panics (in submit or in teardown) fail the test.
fn replay(stream: &[u8]) -> bool {
    let r = Renderer::new(RendererConfig {
        host_driver: Some("libvulkan_lvp.so".into()),
        ..RendererConfig::default()
    })
    .expect("lavapipe loads directly");
    let ctx = r
        .create_context(1, "fuzz-regression", Arc::new(NoFences))
        .unwrap();
    ctx.create_blob(1, 0, 65536, 0).unwrap();
    let ok = ctx.submit_cmd(stream).is_ok();
    let dropped = catch_unwind(AssertUnwindSafe(move || drop(ctx)));
    assert!(dropped.is_ok(), "dropping the context panicked");
    ok
}

/// vkCreateInstance with `VkApplicationInfo::apiVersion` 0.723.0 (nonzero, below
/// 1.0; invalid per VUID-VkApplicationInfo-apiVersion-04010). The host passed it to
/// lavapipe, which accepted it and then exposes no 1.0 entry point for that
/// instance, so `vkGetInstanceProcAddr(instance, "vkDestroyInstance")` is NULL and
/// ash's `destroy_instance` panics ("Unable to load destroy_instance") in
/// `teardown::destroy_all` (and in `instance::destroy`).
#[test]
fn instance_api_version_below_1_0() {
    let app = vk::ApplicationInfo::default().api_version(vk::make_api_version(0, 0, 723, 0));
    let ci = vk::InstanceCreateInfo::default().application_info(&app);
    let mut inst = vk::Instance::from_raw(1);
    let mut buf = vec![0u8; 4096];
    let mut e = Encoder::with_all(&mut buf);
    let s = CommandStreamDescriptionMESA {
        resource_id: 1,
        offset: 0,
        size: 32 << 10,
    };
    // SAFETY: valid pointers to locals.
    unsafe {
        g::encode_vk_set_reply_command_stream_mesa(&mut e, 0, &s);
        g::encode_vk_create_instance(&mut e, 1, &ci, std::ptr::null(), &mut inst);
        g::encode_vk_destroy_instance(&mut e, 0, inst, std::ptr::null());
    }
    let n = e.finish().unwrap();
    // Create + destroy in the stream: the destroy path.
    let _ = replay(&buf[..n]);
    // Create only: the teardown path (the fuzzer's minimized input, 173 bytes).
    let _ = replay(&CRASH_API_VERSION);
}

/// The minimized fuzz input: SetReplyCommandStreamMESA(resource 1, 32 KiB), then
/// vkCreateInstance (reply requested) whose apiVersion is 0x002d3000.
const CRASH_API_VERSION: [u8; 173] = [
    0xb2, 0, 0, 0, 0, 0, 0, 0, 0x1, 0, 0, 0, 0, 0, 0, 0, 0x1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x1, 0, 0, 0, 0x1, 0, 0, 0, 0, 0, 0, 0, 0x1, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x30, 0x2d, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x1, 0,
    0, 0, 0, 0, 0, 0, 0x1, 0, 0, 0, 0, 0, 0, 0, 0x4, 0x5b, 0, 0, 0, 0, 0, 0, 0,
];

/// NULL output pointers the guest sent (pointer presence 0 where the command needs
/// one) are passed straight to the driver, which dereferences them: SIGSEGV in
/// lavapipe under `host_calls::call_command`. The host must refuse such a command
/// (fatal) before calling. Ignored: a segfault cannot be caught by the test harness.
fn assert_refused(stream: &[u8]) {
    assert!(
        !replay(stream),
        "a command with a NULL required pointer must be refused"
    );
}

/// vkEnumerateInstanceVersion with pApiVersion NULL (host_calls.rs, `fp(x.p_api_version)`).
#[test]
fn enumerate_instance_version_null_output() {
    assert_refused(include_bytes!(
        "fuzz_inputs/enumerate-instance-version-null.bin"
    ));
}

/// vkEnumerateInstanceLayerProperties with pPropertyCount NULL.
#[test]
fn enumerate_instance_layer_properties_null_count() {
    assert_refused(include_bytes!(
        "fuzz_inputs/enumerate-instance-layers-null-count.bin"
    ));
}

/// vkGetDeviceQueue2 after a device is created, with a NULL pQueueInfo or pQueue.
#[test]
fn get_device_queue2_null_pointer() {
    assert_refused(include_bytes!("fuzz_inputs/get-device-queue2-null.bin"));
}

/// vkBindBufferMemory with a VK_NULL_HANDLE buffer after creating a device: a
/// required handle parameter that is null must not reach the driver (SIGSEGV in
/// lavapipe before the fix).
#[test]
fn bind_buffer_memory_null_handle() {
    assert_refused(include_bytes!(
        "fuzz_inputs/bind-buffer-memory-null-handle.bin"
    ));
}
