//! The host translator core driven directly with commands from our encoder, on
//! lavapipe: object tables (wrong-type, stale and foreign ids are fatal for that
//! context only), replies through a reply stream, and fence timelines.

use std::os::fd::AsRawFd;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use ash::vk;
use ash::vk::Handle;
use venus_host::{Context, FenceSink, Renderer, RendererConfig};
use venus_protocol::generated as g;
use venus_protocol::mesa::{CommandStreamDescriptionMESA, DeviceQueueTimelineInfoMESA};
use venus_protocol::{Decoder, Encoder};

const REPLY: u32 = 1;
const REPLY_RES: u32 = 1;
const REPLY_SIZE: u64 = 64 * 1024;

#[derive(Default)]
struct Sink {
    retired: Mutex<Vec<(u32, u32, u64)>>,
    cond: Condvar,
}

impl FenceSink for Sink {
    fn fence_retired(&self, ctx_id: u32, ring_idx: u32, fence_id: u64) {
        self.retired
            .lock()
            .unwrap()
            .push((ctx_id, ring_idx, fence_id));
        self.cond.notify_all();
    }
}

impl Sink {
    fn wait_for(&self, want: (u32, u32, u64)) -> bool {
        let mut v = self.retired.lock().unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while !v.contains(&want) {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                return false;
            }
            v = self.cond.wait_timeout(v, left).unwrap().0;
        }
        true
    }
}

fn renderer() -> Arc<Renderer> {
    std::env::set_var("VK_DRIVER_FILES", "/usr/share/vulkan/icd.d/lvp_icd.json");
    Renderer::new(RendererConfig::default()).expect("host Vulkan (lavapipe) must load")
}

/// A context with a reply stream in resource 1, mapped here.
struct Guest {
    ctx: Context,
    reply: *const u8,
}

impl Guest {
    fn new(r: &Arc<Renderer>, id: u32, sink: Arc<Sink>) -> Guest {
        let ctx = r.create_context(id, "core-test", sink).unwrap();
        let blob = ctx.create_blob(REPLY_RES, 0, REPLY_SIZE, 0).unwrap();
        // SAFETY: mapping the fd we were handed, read-only, its full size.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                blob.size as usize,
                libc::PROT_READ,
                libc::MAP_SHARED,
                blob.fd.as_raw_fd(),
                0,
            )
        };
        assert_ne!(p, libc::MAP_FAILED);
        Guest {
            ctx,
            reply: p.cast(),
        }
    }

    /// Sends `f`'s commands after resetting the reply stream; returns the reply bytes area.
    fn send(&self, f: impl FnOnce(&mut Encoder<'_>)) -> Result<&[u8], venus_host::Error> {
        let mut buf = vec![0u8; 1 << 16];
        let mut e = Encoder::with_all(&mut buf);
        let s = CommandStreamDescriptionMESA {
            resource_id: REPLY_RES,
            offset: 0,
            size: REPLY_SIZE as usize,
        };
        // SAFETY: valid pointer to a local struct.
        unsafe { g::encode_vk_set_reply_command_stream_mesa(&mut e, 0, &s) };
        f(&mut e);
        let n = e.finish().unwrap();
        self.ctx.submit_cmd(&buf[..n])?;
        // SAFETY: the mapping is REPLY_SIZE bytes and lives as long as the test.
        Ok(unsafe { std::slice::from_raw_parts(self.reply, REPLY_SIZE as usize) })
    }

    /// Creates instance 1, physical device 2, device 3 (queue family 0) and queue 4
    /// bound to ring_idx 1.
    fn setup_device(&self) {
        let app = vk::ApplicationInfo::default().api_version(vk::API_VERSION_1_3);
        let ci = vk::InstanceCreateInfo::default().application_info(&app);
        let mut inst = vk::Instance::from_raw(1);
        let reply = self
            .send(|e| {
                // SAFETY: valid pointers to locals.
                unsafe { g::encode_vk_create_instance(e, REPLY, &ci, std::ptr::null(), &mut inst) }
            })
            .unwrap();
        let mut d = Decoder::new(reply);
        let mut out = vk::Instance::null();
        // SAFETY: valid output pointers.
        let r =
            unsafe { g::decode_reply_vk_create_instance(&mut d, &ci, std::ptr::null(), &mut out) };
        assert_eq!(r, vk::Result::SUCCESS);
        let _ = out; // the guest decoder skips echoed ids: it knows them
                     // Reply bytes: type 0, VkResult, u64 1 (present), u64 id: the guest's id echoed.
        let id = u64::from_le_bytes(reply[16..24].try_into().unwrap());
        assert_eq!(
            (u64::from_le_bytes(reply[8..16].try_into().unwrap()), id),
            (1, 1)
        );

        let mut count = 1u32;
        let mut pds = [vk::PhysicalDevice::from_raw(2)];
        let reply = self
            .send(|e| {
                // SAFETY: as above.
                unsafe {
                    g::encode_vk_enumerate_physical_devices(
                        e,
                        REPLY,
                        inst,
                        &mut count,
                        pds.as_mut_ptr(),
                    )
                }
            })
            .unwrap();
        let mut d = Decoder::new(reply);
        let (mut c2, mut p2) = (1u32, [vk::PhysicalDevice::null()]);
        // SAFETY: as above.
        let r = unsafe {
            g::decode_reply_vk_enumerate_physical_devices(&mut d, inst, &mut c2, p2.as_mut_ptr())
        };
        assert!(r.as_raw() >= 0, "{r:?}");
        assert_eq!(c2, 1);

        let prio = [1.0f32];
        let q = [vk::DeviceQueueCreateInfo::default()
            .queue_family_index(0)
            .queue_priorities(&prio)];
        let dci = vk::DeviceCreateInfo::default().queue_create_infos(&q);
        let mut dev = vk::Device::from_raw(3);
        let timeline = DeviceQueueTimelineInfoMESA {
            ring_idx: 1,
            ..Default::default()
        };
        let mut qi = vk::DeviceQueueInfo2::default()
            .queue_family_index(0)
            .queue_index(0);
        qi.p_next = (&timeline as *const DeviceQueueTimelineInfoMESA).cast();
        let mut queue = vk::Queue::from_raw(4);
        let reply = self
            .send(|e| {
                // SAFETY: as above.
                unsafe {
                    g::encode_vk_create_device(e, REPLY, pds[0], &dci, std::ptr::null(), &mut dev);
                    g::encode_vk_get_device_queue2(e, 0, dev, &qi, &mut queue);
                }
            })
            .unwrap();
        let mut d = Decoder::new(reply);
        let mut out = vk::Device::null();
        // SAFETY: as above.
        let r = unsafe {
            g::decode_reply_vk_create_device(&mut d, pds[0], &dci, std::ptr::null(), &mut out)
        };
        assert_eq!(r, vk::Result::SUCCESS);
    }

    fn create_buffer(&self, id: u64) -> Result<(), venus_host::Error> {
        let bci = vk::BufferCreateInfo::default()
            .size(4096)
            .usage(vk::BufferUsageFlags::STORAGE_BUFFER);
        let mut b = vk::Buffer::from_raw(id);
        self.send(|e| {
            // SAFETY: as above.
            unsafe {
                g::encode_vk_create_buffer(
                    e,
                    0,
                    vk::Device::from_raw(3),
                    &bci,
                    std::ptr::null(),
                    &mut b,
                )
            }
        })
        .map(|_| ())
    }

    fn destroy_buffer(&self, device: u64, id: u64) -> Result<(), venus_host::Error> {
        self.send(|e| {
            // SAFETY: as above.
            unsafe {
                g::encode_vk_destroy_buffer(
                    e,
                    0,
                    vk::Device::from_raw(device),
                    vk::Buffer::from_raw(id),
                    std::ptr::null(),
                )
            }
        })
        .map(|_| ())
    }
}

#[test]
fn objects_replies_and_timelines() {
    let r = renderer();
    let sink = Arc::new(Sink::default());
    let guest = Guest::new(&r, 1, sink.clone());
    guest.setup_device();
    guest.create_buffer(10).unwrap();
    guest.destroy_buffer(3, 10).unwrap();
    // Fences: the CPU timeline retires at once, the queue timeline once the queue is done.
    guest.ctx.submit_fence(0, 7).unwrap();
    guest.ctx.submit_fence(1, 42).unwrap();
    guest.ctx.submit_fence(1, 43).unwrap();
    assert!(sink.wait_for((1, 0, 7)));
    assert!(sink.wait_for((1, 1, 43)));
    let order: Vec<u64> = sink
        .retired
        .lock()
        .unwrap()
        .iter()
        .filter(|f| f.1 == 1)
        .map(|f| f.2)
        .collect();
    assert_eq!(order, vec![42, 43], "a timeline retires in order");
    // A ring_idx no queue is bound to is an error.
    assert!(guest.ctx.submit_fence(5, 1).is_err());
    assert!(
        !guest.ctx.is_fatal(),
        "a bad fence request is refused, the context lives on"
    );
}

#[test]
fn a_destroyed_id_is_fatal() {
    let r = renderer();
    let guest = Guest::new(&r, 1, Arc::new(Sink::default()));
    guest.setup_device();
    guest.create_buffer(10).unwrap();
    guest.destroy_buffer(3, 10).unwrap();
    let e = guest.destroy_buffer(3, 10).unwrap_err();
    assert!(e.to_string().contains("unknown object id 10"), "{e}");
    assert!(guest.ctx.is_fatal());
    // Fatal stays fatal.
    assert!(guest.create_buffer(11).is_err());
}

#[test]
fn a_wrong_type_id_is_fatal() {
    let r = renderer();
    let guest = Guest::new(&r, 1, Arc::new(Sink::default()));
    guest.setup_device();
    // Id 3 is the device, passed as a buffer.
    let e = guest.destroy_buffer(3, 3).unwrap_err();
    assert!(e.to_string().contains("unknown object id 3"), "{e}");
    assert!(guest.ctx.is_fatal());
}

#[test]
fn a_reused_id_is_fatal() {
    let r = renderer();
    let guest = Guest::new(&r, 1, Arc::new(Sink::default()));
    guest.setup_device();
    guest.create_buffer(10).unwrap();
    let e = guest.create_buffer(10).unwrap_err();
    assert!(e.to_string().contains("already in use"), "{e}");
}

#[test]
fn another_contexts_id_is_fatal_for_that_context_only() {
    let r = renderer();
    let a = Guest::new(&r, 1, Arc::new(Sink::default()));
    a.setup_device();
    a.create_buffer(10).unwrap();
    let b = Guest::new(&r, 2, Arc::new(Sink::default()));
    // Context 2 never created device 3 or buffer 10: both are unknown there.
    let e = b.destroy_buffer(3, 10).unwrap_err();
    assert!(e.to_string().contains("unknown object id"), "{e}");
    assert!(b.ctx.is_fatal());
    // Context 1 is unaffected and its objects still work.
    assert!(!a.ctx.is_fatal());
    a.destroy_buffer(3, 10).unwrap();
    a.create_buffer(11).unwrap();
}

#[test]
fn garbage_and_truncation_are_fatal_not_panics() {
    let r = renderer();
    let guest = Guest::new(&r, 1, Arc::new(Sink::default()));
    // Unknown command type.
    let e = guest
        .ctx
        .submit_cmd(&[0xff, 0xff, 0, 0, 0, 0, 0, 0])
        .unwrap_err();
    assert!(e.to_string().contains("unknown command"), "{e}");
    let guest = Guest::new(&r, 2, Arc::new(Sink::default()));
    // vkCreateInstance cut off after its pointer marker.
    let e = guest
        .ctx
        .submit_cmd(&[0, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0])
        .unwrap_err();
    assert!(e.to_string().contains("truncated"), "{e}");
    // A reply request with no reply stream.
    let guest = Guest::new(&r, 3, Arc::new(Sink::default()));
    let mut buf = vec![0u8; 256];
    let mut e = Encoder::with_all(&mut buf);
    let mut v = 0u32;
    // SAFETY: valid pointer.
    unsafe { g::encode_vk_enumerate_instance_version(&mut e, REPLY, &mut v) };
    let n = e.finish().unwrap();
    let err = guest.ctx.submit_cmd(&buf[..n]).unwrap_err();
    assert!(err.to_string().contains("no reply stream"), "{err}");
}

#[test]
fn a_driver_loaded_without_the_loader_serves_a_context() {
    let r = Renderer::new(RendererConfig {
        host_layers: vec![],
        host_driver: Some("libvulkan_lvp.so".into()),
        ..RendererConfig::default()
    })
    .expect("lavapipe loads directly");
    let guest = Guest::new(&r, 1, Arc::new(Sink::default()));
    guest.setup_device();
    guest.create_buffer(10).unwrap();
    guest.destroy_buffer(3, 10).unwrap();
    assert!(!guest.ctx.is_fatal());
}

fn renderer_with_quotas(memory: u64, objects: usize) -> Arc<Renderer> {
    std::env::set_var("VK_DRIVER_FILES", "/usr/share/vulkan/icd.d/lvp_icd.json");
    Renderer::new(RendererConfig {
        context_memory_quota: Some(memory),
        context_object_quota: Some(objects),
        ..RendererConfig::default()
    })
    .expect("host Vulkan (lavapipe) must load")
}

#[test]
fn blob_memory_quota_is_enforced_and_given_back() {
    let r = renderer_with_quotas(1 << 20, 1000);
    let ctx = r
        .create_context(1, "quota", Arc::new(Sink::default()))
        .unwrap();
    ctx.create_blob(1, 0, 512 << 10, 0).unwrap();
    ctx.create_blob(2, 0, 512 << 10, 0).unwrap();
    let err = ctx.create_blob(3, 0, 4096, 0).unwrap_err();
    assert!(
        matches!(err, venus_host::Error::Quota(_)),
        "a blob past the quota is refused as a quota error: {err}"
    );
    assert!(!ctx.is_fatal(), "a refused blob does not kill the context");
    ctx.destroy_resource(1);
    ctx.create_blob(3, 0, 4096, 0)
        .expect("released memory is given back to the quota");
    // Another context has its own quota.
    let other = r
        .create_context(2, "quota-2", Arc::new(Sink::default()))
        .unwrap();
    other.create_blob(1, 0, 1 << 20, 0).unwrap();
}

#[test]
fn device_memory_quota_answers_out_of_device_memory() {
    let r = renderer_with_quotas(REPLY_SIZE + (1 << 20), 1000);
    let guest = Guest::new(&r, 1, Arc::new(Sink::default()));
    guest.setup_device();
    let allocate = |id: u64, size: u64| -> vk::Result {
        let info = vk::MemoryAllocateInfo::default()
            .allocation_size(size)
            .memory_type_index(0);
        let mut mem = vk::DeviceMemory::from_raw(id);
        let reply = guest
            .send(|e| {
                // SAFETY: valid pointers to locals.
                unsafe {
                    g::encode_vk_allocate_memory(
                        e,
                        REPLY,
                        vk::Device::from_raw(3),
                        &info,
                        std::ptr::null(),
                        &mut mem,
                    )
                }
            })
            .expect("an allocation is answered, not fatal");
        let mut d = Decoder::new(reply);
        let mut out = vk::DeviceMemory::null();
        // SAFETY: valid pointers to locals.
        unsafe {
            g::decode_reply_vk_allocate_memory(
                &mut d,
                vk::Device::from_raw(3),
                &info,
                std::ptr::null(),
                &mut out,
            )
        }
    };
    // lavapipe's memory type 0 is host visible: backed by shared memory.
    assert_eq!(
        allocate(20, 2 << 20),
        vk::Result::ERROR_OUT_OF_DEVICE_MEMORY,
        "2 MiB does not fit a 1 MiB quota"
    );
    assert_eq!(allocate(21, 512 << 10), vk::Result::SUCCESS);
    assert_eq!(
        allocate(22, 768 << 10),
        vk::Result::ERROR_OUT_OF_DEVICE_MEMORY,
        "512 + 768 KiB does not fit"
    );
    assert!(!guest.ctx.is_fatal());
}

#[test]
fn object_quota_makes_the_context_fatal() {
    let quota = 40;
    let r = renderer_with_quotas(1 << 30, quota);
    let guest = Guest::new(&r, 1, Arc::new(Sink::default()));
    guest.setup_device();
    let mut created = 0;
    let mut err = None;
    for id in 100..100 + quota as u64 + 5 {
        match guest.create_buffer(id) {
            Ok(()) => created += 1,
            Err(e) => {
                err = Some(e);
                break;
            }
        }
    }
    let err = err.expect("creating past the object quota must fail");
    assert!(err.to_string().contains("object quota"), "{err}");
    assert!(guest.ctx.is_fatal());
    assert!(
        created < quota && created > quota - 10,
        "{created} buffers before the quota of {quota} (setup made a few objects)"
    );
    // Other contexts are unaffected.
    let other = Guest::new(&r, 2, Arc::new(Sink::default()));
    other.setup_device();
    other.create_buffer(10).unwrap();
}
