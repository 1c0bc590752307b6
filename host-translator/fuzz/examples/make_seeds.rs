//! Writes the seed corpus of the `host_context` target: real command streams from
//! the generated encoders, as Mesa's guest driver would send them out of ring.
//!
//! `cargo run --example make_seeds` (from host-translator/fuzz; a plain build, no
//! fuzzing flags). Seeds go to `corpus/host_context/seed-*`, and the
//! `ring_consumer` target's (ring shape, then operations whose payloads are the
//! same real streams, as Mesa's instance ring carries them) to
//! `corpus/ring_consumer/seed-*`.

use ash::vk;
use ash::vk::Handle;
use venus_protocol::generated as g;
use venus_protocol::mesa::{
    CommandStreamDescriptionMESA, DeviceQueueTimelineInfoMESA, RingCreateInfoMESA,
};
use venus_protocol::ring::RingLayout;
use venus_protocol::Encoder;

const REPLY: u32 = 1;
const RES: u32 = 1;

/// A stream that first points the reply stream at resource 1 (first 32 KiB), then
/// runs `f`.
fn stream(f: impl FnOnce(&mut Encoder<'_>)) -> Vec<u8> {
    let mut buf = vec![0u8; 1 << 16];
    let mut e = Encoder::with_all(&mut buf);
    let s = CommandStreamDescriptionMESA {
        resource_id: RES,
        offset: 0,
        size: 32 << 10,
    };
    // SAFETY: valid pointer to a local struct.
    unsafe { g::encode_vk_set_reply_command_stream_mesa(&mut e, 0, &s) };
    f(&mut e);
    let n = e.finish().expect("seed fits");
    buf.truncate(n);
    buf
}

// SAFETY (whole file): every encoder gets pointers to live locals with the counts
// they state.

fn create_instance(e: &mut Encoder<'_>) {
    let app = vk::ApplicationInfo::default().api_version(vk::API_VERSION_1_3);
    let ci = vk::InstanceCreateInfo::default().application_info(&app);
    let mut inst = vk::Instance::from_raw(1);
    // SAFETY: see above.
    unsafe { g::encode_vk_create_instance(e, REPLY, &ci, std::ptr::null(), &mut inst) };
}

fn enumerate_physical_devices(e: &mut Encoder<'_>) {
    let mut count = 1u32;
    let mut pds = [vk::PhysicalDevice::from_raw(2)];
    // SAFETY: see above.
    unsafe {
        g::encode_vk_enumerate_physical_devices(
            e,
            REPLY,
            vk::Instance::from_raw(1),
            &mut count,
            pds.as_mut_ptr(),
        )
    };
}

fn physical_device_queries(e: &mut Encoder<'_>) {
    let pd = vk::PhysicalDevice::from_raw(2);
    let mut props = vk::PhysicalDeviceProperties::default();
    let mut mem = vk::PhysicalDeviceMemoryProperties::default();
    // SAFETY: see above.
    unsafe {
        g::encode_vk_get_physical_device_properties(e, REPLY, pd, &mut props);
        g::encode_vk_get_physical_device_memory_properties(e, REPLY, pd, &mut mem);
    }
}

fn create_device(e: &mut Encoder<'_>) {
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
    // SAFETY: see above.
    unsafe {
        g::encode_vk_create_device(
            e,
            REPLY,
            vk::PhysicalDevice::from_raw(2),
            &dci,
            std::ptr::null(),
            &mut dev,
        );
        g::encode_vk_get_device_queue2(e, 0, dev, &qi, &mut queue);
    }
}

fn buffer_and_memory(e: &mut Encoder<'_>) {
    let dev = vk::Device::from_raw(3);
    let bci = vk::BufferCreateInfo::default()
        .size(4096)
        .usage(vk::BufferUsageFlags::STORAGE_BUFFER);
    let mut b = vk::Buffer::from_raw(10);
    let ai = vk::MemoryAllocateInfo::default()
        .allocation_size(4096)
        .memory_type_index(0);
    let mut m = vk::DeviceMemory::from_raw(11);
    // SAFETY: see above.
    unsafe {
        g::encode_vk_create_buffer(e, 0, dev, &bci, std::ptr::null(), &mut b);
        g::encode_vk_allocate_memory(e, REPLY, dev, &ai, std::ptr::null(), &mut m);
        g::encode_vk_bind_buffer_memory(e, REPLY, dev, b, m, 0);
        g::encode_vk_destroy_buffer(e, 0, dev, b, std::ptr::null());
        g::encode_vk_free_memory(e, 0, dev, m, std::ptr::null());
    }
}

fn create_ring(e: &mut Encoder<'_>) {
    // Mesa's per-thread ring in the upper half of resource 1.
    let layout = RingLayout::tls_ring();
    let ci = RingCreateInfoMESA {
        resource_id: RES,
        offset: 32 << 10,
        size: layout.shmem_size as usize,
        head_offset: layout.head_offset as usize,
        tail_offset: layout.tail_offset as usize,
        status_offset: layout.status_offset as usize,
        buffer_offset: layout.buffer_offset as usize,
        buffer_size: layout.buffer_size as usize,
        extra_offset: layout.extra_offset as usize,
        extra_size: layout.extra_size as usize,
        ..Default::default()
    };
    // SAFETY: see above.
    unsafe {
        g::encode_vk_create_ring_mesa(e, 0, 100, &ci);
        g::encode_vk_destroy_ring_mesa(e, 0, 100);
    }
}

/// A stream without the reply-stream prefix.
fn bare(f: impl FnOnce(&mut Encoder<'_>)) -> Vec<u8> {
    let mut buf = vec![0u8; 1 << 16];
    let mut e = Encoder::with_all(&mut buf);
    f(&mut e);
    let n = e.finish().expect("seed fits");
    buf.truncate(n);
    buf
}

/// The ring's own reply stream: the upper 16 KiB of resource 1.
fn ring_reply(e: &mut Encoder<'_>) {
    let s = CommandStreamDescriptionMESA {
        resource_id: RES,
        offset: 48 << 10,
        size: 16 << 10,
    };
    // SAFETY: see above.
    unsafe { g::encode_vk_set_reply_command_stream_mesa(e, 0, &s) };
}

/// Operation numbers of the ring_consumer target (`OPS` there).
mod op {
    pub const PUSH: u8 = 0;
    pub const PUSH_NOTIFY_WAIT: u8 = 1;
    pub const POKE: u8 = 2;
    pub const SET_TAIL: u8 = 3;
    pub const MOVE_TAIL: u8 = 4;
    pub const SET_HEAD: u8 = 5;
    pub const SET_STATUS: u8 = 6;
    pub const SET_EXTRA: u8 = 7;
    pub const NOTIFY: u8 = 8;
    pub const WAIT: u8 = 9;
    pub const WRITE_EXTRA: u8 = 10;
    pub const VIRTQUEUE_SEQNO: u8 = 11;
    pub const DESTROY: u8 = 12;
    pub const NAP: u8 = 13;
}

/// Builds a ring_consumer input: shape byte, timing byte, operations.
struct RingSeed(Vec<u8>);

impl RingSeed {
    /// `buffer_log`: buffer = 64 << buffer_log bytes; idle 1 ms; monitor on.
    fn new(buffer_log: u8) -> Self {
        RingSeed(vec![buffer_log, 2 | 4])
    }
    fn push(mut self, op: u8, bytes: &[u8]) -> Self {
        self.0.push(op);
        self.0
            .extend_from_slice(&(bytes.len() as u16).to_le_bytes());
        self.0.extend_from_slice(bytes);
        self
    }
    fn op(mut self, op: u8, args: &[u8]) -> Self {
        self.0.push(op);
        self.0.extend_from_slice(args);
        self
    }
}

fn ring_seeds() -> Vec<(&'static str, Vec<u8>)> {
    use op::*;
    let instance = bare(|e| {
        ring_reply(e);
        create_instance(e);
        enumerate_physical_devices(e);
        physical_device_queries(e);
    });
    let device = bare(|e| {
        ring_reply(e);
        create_instance(e);
        enumerate_physical_devices(e);
        create_device(e);
        buffer_and_memory(e);
    });
    // SAFETY: see above (no pointers).
    let seek = bare(|e| unsafe { g::encode_vk_seek_reply_command_stream_mesa(e, 0, 0) });
    // SAFETY: as above.
    let vq_wait = bare(|e| unsafe { g::encode_vk_wait_virtqueue_seqno_mesa(e, 0, 1) });
    let reply = bare(ring_reply);
    vec![
        (
            "instance-ring",
            RingSeed::new(8)
                .push(PUSH_NOTIFY_WAIT, &instance)
                .op(WAIT, &[])
                .0,
        ),
        (
            "device-ring",
            RingSeed::new(8)
                .push(PUSH_NOTIFY_WAIT, &device)
                .op(WAIT, &[])
                .0,
        ),
        (
            "wrap-64",
            RingSeed::new(0)
                .push(PUSH_NOTIFY_WAIT, &reply)
                .push(PUSH_NOTIFY_WAIT, &seek)
                .push(PUSH_NOTIFY_WAIT, &seek)
                .push(PUSH_NOTIFY_WAIT, &seek)
                .push(PUSH_NOTIFY_WAIT, &[seek.clone(), seek.clone()].concat())
                .push(PUSH, &seek)
                .op(NAP, &[31])
                .op(NOTIFY, &[0, 0, 0, 0, 0])
                .op(WAIT, &[])
                .0,
        ),
        (
            "virtqueue-wait",
            RingSeed::new(2)
                .push(PUSH_NOTIFY_WAIT, &vq_wait)
                .op(VIRTQUEUE_SEQNO, &[1])
                .op(WAIT, &[])
                .0,
        ),
        (
            "tail-behind-head",
            RingSeed::new(1)
                .push(PUSH_NOTIFY_WAIT, &reply)
                .op(MOVE_TAIL, &(-4i16).to_le_bytes())
                .op(NOTIFY, &[0, 0, 0, 0, 0])
                .op(WAIT, &[])
                .0,
        ),
        (
            "counters",
            RingSeed::new(3)
                .op(SET_HEAD, &100u32.to_le_bytes())
                .op(SET_STATUS, &7u32.to_le_bytes())
                .op(POKE, &[0, 0, 0])
                .op(SET_TAIL, &36u32.to_le_bytes())
                .op(NOTIFY, &[36, 0, 0, 0, 0])
                .op(WAIT, &[])
                .0,
        ),
        (
            "extra-and-destroy",
            RingSeed::new(0)
                .op(WRITE_EXTRA, &[0, 0, 1, 2, 3, 4])
                .op(SET_EXTRA, &[0, 5, 6, 7, 8])
                .op(DESTROY, &[])
                .op(NOTIFY, &[0, 0, 0, 0, 0])
                .0,
        ),
    ]
}

fn main() {
    let ring_dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus/ring_consumer");
    std::fs::create_dir_all(&ring_dir).expect("corpus dir");
    for (name, bytes) in ring_seeds() {
        let path = ring_dir.join(format!("seed-{name}"));
        std::fs::write(&path, &bytes).expect("write seed");
        println!("{} ({} bytes)", path.display(), bytes.len());
    }
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus/host_context");
    std::fs::create_dir_all(&dir).expect("corpus dir");
    let seeds: [(&str, Vec<u8>); 6] = [
        ("create-instance", stream(create_instance)),
        (
            "enumerate-physical-devices",
            stream(|e| {
                create_instance(e);
                enumerate_physical_devices(e);
            }),
        ),
        (
            "physical-device-queries",
            stream(|e| {
                create_instance(e);
                enumerate_physical_devices(e);
                physical_device_queries(e);
            }),
        ),
        (
            "create-device",
            stream(|e| {
                create_instance(e);
                enumerate_physical_devices(e);
                create_device(e);
            }),
        ),
        (
            "buffer-and-memory",
            stream(|e| {
                create_instance(e);
                enumerate_physical_devices(e);
                create_device(e);
                buffer_and_memory(e);
            }),
        ),
        ("ring", stream(create_ring)),
    ];
    for (name, bytes) in seeds {
        let path = dir.join(format!("seed-{name}"));
        std::fs::write(&path, &bytes).expect("write seed");
        println!("{} ({} bytes)", path.display(), bytes.len());
    }
}
