//! Host bugs issue 7's fuzz runs (targets in host-translator/fuzz, see
//! docs/FUZZING.md) and malformed-stream suite (tests/tests/malformed_streams.rs)
//! found, replayed against fresh contexts on lavapipe. Each input must be refused
//! (the context goes fatal) or answered, never crash, hang or panic, including
//! when the context is dropped afterwards.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, OnceLock};

use ash::vk;
use ash::vk::Handle;
use venus_host::{FenceSink, Renderer, RendererConfig};
use venus_protocol::generated as g;
use venus_protocol::mesa::{CommandStreamDescriptionMESA, RingCreateInfoMESA};
use venus_protocol::ring::RingLayout;
use venus_protocol::Encoder;

struct NoFences;

impl FenceSink for NoFences {
    fn fence_retired(&self, _ctx_id: u32, _ring_idx: u32, _fence_id: u64) {}
}

fn renderer() -> &'static Arc<Renderer> {
    static R: OnceLock<Arc<Renderer>> = OnceLock::new();
    R.get_or_init(|| {
        Renderer::new(RendererConfig {
            host_driver: Some("libvulkan_lvp.so".into()),
            ..RendererConfig::default()
        })
        .expect("lavapipe loads directly")
    })
}

/// Runs `stream` as the `host_context` target does (resource 1 a 64 KiB blob),
/// drops the context; returns whether the submit succeeded.
fn replay(stream: &[u8]) -> bool {
    let ctx = renderer()
        .create_context(1, "fuzz-finding", Arc::new(NoFences))
        .expect("context");
    ctx.create_blob(1, 0, 65536, 0).expect("blob");
    let ok = ctx.submit_cmd(stream).is_ok();
    assert_eq!(ok, !ctx.is_fatal(), "an error must leave the context fatal");
    let dropped = catch_unwind(AssertUnwindSafe(move || drop(ctx)));
    assert!(dropped.is_ok(), "dropping the context panicked");
    ok
}

/// Reply stream, instance 1, physical device 2, then vkCreateDevice(3) with
/// `queues` (priorities 1.0).
fn create_device_with(queues: &[(u32, u32)]) -> Vec<u8> {
    let mut buf = vec![0u8; 8192];
    let mut e = Encoder::with_all(&mut buf);
    let s = CommandStreamDescriptionMESA {
        resource_id: 1,
        offset: 0,
        size: 32 << 10,
    };
    let app = vk::ApplicationInfo::default().api_version(vk::API_VERSION_1_1);
    let ici = vk::InstanceCreateInfo::default().application_info(&app);
    let mut inst = vk::Instance::from_raw(1);
    let mut count = 1u32;
    let mut pd = [vk::PhysicalDevice::from_raw(2)];
    let prios = [1.0f32; 64];
    let qcis: Vec<vk::DeviceQueueCreateInfo<'_>> = queues
        .iter()
        .map(|&(family, n)| {
            let mut q = vk::DeviceQueueCreateInfo::default().queue_family_index(family);
            q.queue_count = n;
            q.p_queue_priorities = prios.as_ptr();
            q
        })
        .collect();
    let dci = vk::DeviceCreateInfo::default().queue_create_infos(&qcis);
    let mut dev = vk::Device::from_raw(3);
    // SAFETY: pointers to live locals with the counts they state (at most 64
    // priorities per queue, which the callers keep to).
    unsafe {
        g::encode_vk_set_reply_command_stream_mesa(&mut e, 0, &s);
        g::encode_vk_create_instance(&mut e, 1, &ici, std::ptr::null(), &mut inst);
        g::encode_vk_enumerate_physical_devices(&mut e, 1, inst, &mut count, pd.as_mut_ptr());
        g::encode_vk_create_device(&mut e, 1, pd[0], &dci, std::ptr::null(), &mut dev);
    }
    let n = e.finish().expect("fits");
    buf.truncate(n);
    buf
}

/// vkCreateDevice with `queueCreateInfoCount` 0 went to lavapipe, which crashed
/// (SIGSEGV in `lvp_CreateDevice`). The `host_context` fuzzer's input, cut after
/// the vkCreateDevice.
#[test]
fn create_device_without_queues_is_refused() {
    assert!(!replay(include_bytes!(
        "fuzz_inputs/create-device-no-queues.bin"
    )));
    assert!(!replay(&create_device_with(&[])));
}

/// The other queue-request rules drivers assume: an existing family, 1 to the
/// family's count of queues, each family once.
#[test]
fn create_device_with_invalid_queue_requests_is_refused() {
    assert!(replay(&create_device_with(&[(0, 1)])), "a valid device");
    for queues in [
        &[(7, 1)][..],
        &[(u32::MAX, 1)],
        &[(0, 0)],
        &[(0, 64)],
        &[(0, 1), (0, 1)],
    ] {
        assert!(
            !replay(&create_device_with(queues)),
            "queue requests {queues:?} were accepted"
        );
    }
}

/// vkWaitRingSeqnoMESA for a seqno past the ring's tail (nothing submitted): the
/// wait blocked the submitting thread until the context died, which over vtest
/// is never (the session thread is the one blocked, so a client that hangs up
/// leaves its thread and context behind). Now fatal at once.
#[test]
fn wait_for_an_unsubmitted_ring_seqno_is_refused() {
    let l = RingLayout::tls_ring();
    let ci = RingCreateInfoMESA {
        resource_id: 1,
        size: l.shmem_size as usize,
        idle_timeout: 1_000_000,
        head_offset: l.head_offset as usize,
        tail_offset: l.tail_offset as usize,
        status_offset: l.status_offset as usize,
        buffer_offset: l.buffer_offset as usize,
        buffer_size: l.buffer_size as usize,
        extra_offset: l.extra_offset as usize,
        extra_size: l.extra_size as usize,
        ..Default::default()
    };
    let mut buf = vec![0u8; 1024];
    let mut e = Encoder::with_all(&mut buf);
    // SAFETY: a pointer to a live local; no pointers.
    unsafe {
        g::encode_vk_create_ring_mesa(&mut e, 0, 5, &ci);
        g::encode_vk_wait_ring_seqno_mesa(&mut e, 0, 5, 64);
    }
    let n = e.finish().expect("fits");
    buf.truncate(n);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(replay(&buf));
    });
    let ok = rx
        .recv_timeout(std::time::Duration::from_secs(10))
        .expect("the wait for an unsubmitted seqno still blocks");
    assert!(!ok, "the wait was accepted");
}

/// vkGetPhysicalDeviceFragmentShadingRatesKHR on lavapipe, which lacks
/// VK_KHR_fragment_shading_rate: Mesa's instance-level trampoline exists and
/// jumped through a NULL slot (SIGSEGV; through the Vulkan loader, whose
/// terminator aborts, it killed the vtest server). The `host_context` fuzzer's
/// input, cut after that command.
#[test]
fn physical_device_command_of_a_missing_extension_is_refused() {
    assert!(!replay(include_bytes!(
        "fuzz_inputs/fragment-shading-rates-unsupported.bin"
    )));
}
