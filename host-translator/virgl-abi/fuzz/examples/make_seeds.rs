//! Writes the seed corpus of the `virgl_abi` target: the call sequences QEMU's
//! virtio-gpu-gl device makes for a Venus guest (init, capset, context, host
//! blob, map, submit, fences, poll; a console's 2D resource with transfers),
//! carrying the real Venus streams of the `host_context` seeds
//! (`host-translator/fuzz/corpus/host_context/seed-*`) and a ring driven
//! through a mapped blob.
//!
//! `cargo run --example make_seeds` (from host-translator/virgl-abi/fuzz; a plain
//! build). Seeds go to `corpus/virgl_abi/seed-*`.

use std::path::Path;

use venus_protocol::generated as g;
use venus_protocol::mesa::{CommandStreamDescriptionMESA, RingCreateInfoMESA};
use venus_protocol::ring::RingLayout;
use venus_protocol::Encoder;

/// Operation numbers of the target (`step`'s match, `op % 28`).
mod op {
    pub const INIT: u8 = 0;
    pub const POLL: u8 = 1;
    pub const GET_CAP_SET: u8 = 4;
    pub const FILL_CAPS: u8 = 5;
    pub const CONTEXT_CREATE: u8 = 6;
    pub const CONTEXT_DESTROY: u8 = 8;
    pub const SUBMIT: u8 = 9;
    pub const RESOURCE_CREATE: u8 = 12;
    pub const CREATE_BLOB: u8 = 13;
    pub const ATTACH_IOV: u8 = 15;
    pub const DETACH_IOV: u8 = 16;
    pub const UNREF: u8 = 17;
    pub const GET_INFO: u8 = 18;
    pub const MAP: u8 = 21;
    pub const UNMAP: u8 = 22;
    pub const TRANSFER: u8 = 23;
    pub const CURSOR: u8 = 25;
    pub const FENCES: u8 = 26;
    pub const WRITE_MAPPED: u8 = 27;
}

/// Builds one input.
#[derive(Default)]
struct Seed(Vec<u8>);

impl Seed {
    fn raw(mut self, bytes: &[u8]) -> Self {
        self.0.extend_from_slice(bytes);
        self
    }
    /// init(callbacks v3, VIRGL_RENDERER_VENUS, cookie 1).
    fn init(self) -> Self {
        self.raw(&[op::INIT, 3, 16, 0, 1, 0])
    }
    /// A Venus context `ctx` named "qemu".
    fn context(self, ctx: u8) -> Self {
        self.raw(&[op::CONTEXT_CREATE, ctx, 0, 4])
            .raw(b"qemu")
            .raw(&[1, 0, 0])
    }
    /// A mappable 64 KiB host blob `res` of context `ctx`.
    fn host_blob(self, res: u8, ctx: u8) -> Self {
        self.raw(&[op::CREATE_BLOB, 0, res, ctx, 2, 1, 0, 5])
    }
    fn submit(self, ctx: u8, stream: &[u8]) -> Self {
        self.raw(&[op::SUBMIT, ctx])
            .raw(&(stream.len() as u16).to_le_bytes())
            .raw(stream)
            .raw(&[0])
    }
    fn map(self, res: u8) -> Self {
        self.raw(&[op::MAP, res, 0])
    }
    fn write_mapped(self, res: u8, offset: u32, bytes: &[u8]) -> Self {
        self.raw(&[op::WRITE_MAPPED, res])
            .raw(&offset.to_le_bytes())
            .raw(&[bytes.len() as u8])
            .raw(bytes)
    }
    /// A fence on ring `ring` of context `ctx`, then a poll.
    fn fence_and_poll(self, ctx: u8, ring: u8, id: u8) -> Self {
        self.raw(&[
            op::FENCES,
            1,
            ctx,
            0,
            ring,
            0,
            0,
            0,
            0,
            id,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
        ])
        .raw(&[op::POLL])
    }
}

fn encode(f: impl FnOnce(&mut Encoder<'_>)) -> Vec<u8> {
    let mut buf = vec![0u8; 4096];
    let mut e = Encoder::with_all(&mut buf);
    f(&mut e);
    let n = e.finish().expect("fits");
    buf.truncate(n);
    buf
}

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = root.join("corpus/virgl_abi");
    std::fs::create_dir_all(&out).expect("corpus dir");
    let mut seeds: Vec<(String, Vec<u8>)> = Vec::new();

    // QEMU's start-up: capsets, init, a Venus context with its shmem blob.
    let start = || {
        Seed::default()
            .raw(&[op::GET_CAP_SET, 4, 0, 0, 0, 0])
            .init()
            .raw(&[op::FILL_CAPS, 4, 0, 0, 0, 0, 0, 0, 0, 0])
            .context(1)
            .host_blob(1, 1)
            .map(1)
    };

    // Every host_context seed as the context's first submit.
    let streams = root.join("../../fuzz/corpus/host_context");
    let mut names: Vec<_> = std::fs::read_dir(&streams)
        .expect("host_context seeds")
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("seed-"))
        })
        .collect();
    names.sort();
    for path in names {
        let stream = std::fs::read(&path).expect("seed");
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        let name = name.trim_start_matches("seed-");
        let bytes = start()
            .submit(1, &stream)
            .fence_and_poll(1, 0, 1)
            .raw(&[op::UNMAP, 1, op::UNREF, 1, op::CONTEXT_DESTROY, 1, op::POLL])
            .0;
        seeds.push((format!("venus-{name}"), bytes));
    }

    // A ring in the mapped blob: created by a submit, fed through the mapping.
    let layout = RingLayout::tls_ring();
    let ci = RingCreateInfoMESA {
        resource_id: 1,
        offset: 0,
        size: layout.shmem_size as usize,
        idle_timeout: 1_000_000,
        head_offset: layout.head_offset as usize,
        tail_offset: layout.tail_offset as usize,
        status_offset: layout.status_offset as usize,
        buffer_offset: layout.buffer_offset as usize,
        buffer_size: layout.buffer_size as usize,
        extra_offset: layout.extra_offset as usize,
        extra_size: layout.extra_size as usize,
        ..Default::default()
    };
    // SAFETY: a pointer to a live local.
    let create_ring = encode(|e| unsafe { g::encode_vk_create_ring_mesa(e, 0, 9, &ci) });
    // The ring's first command: its reply stream, the blob's upper half.
    let reply = CommandStreamDescriptionMESA {
        resource_id: 1,
        offset: 32 << 10,
        size: 32 << 10,
    };
    // SAFETY: a pointer to a live local.
    let seek = encode(|e| unsafe { g::encode_vk_set_reply_command_stream_mesa(e, 0, &reply) });
    // SAFETY: no pointers.
    let notify = encode(|e| unsafe { g::encode_vk_notify_ring_mesa(e, 0, 9, 0, 0) });
    let buffer = layout.buffer_offset as u32;
    let tail = layout.tail_offset as u32;
    seeds.push((
        "ring-through-mapping".into(),
        start()
            .submit(1, &create_ring)
            .write_mapped(1, buffer, &seek)
            .write_mapped(1, tail, &(seek.len() as u32).to_le_bytes())
            .submit(1, &notify)
            .fence_and_poll(1, 0, 2)
            .0,
    ));

    // A console: a 64x64 BGRA resource backed by guest memory, written and read
    // back through transfers, its cursor image, detached and unreferenced.
    let console = Seed::default()
        .init()
        .raw(&[
            // handle 2, 2D, B8G8R8A8, bind 0, depth 1, 1 layer, level 0,
            // 0 samples, flags 0, then 64x64.
            op::RESOURCE_CREATE,
            2,
            2,
            0,
            0,
            0,
            0,
            0,
            1,
            1,
            0,
            0,
            0,
            0,
            0,
            0,
            3,
        ])
        .raw(&[1, 1, 4, 0, 0, 0, 0x40, 0])
        .raw(&[op::GET_INFO, 2, 0])
        .raw(&[
            op::TRANSFER,
            1,
            2,
            0,
            0,
            0,
            1,
            0,
            0,
            0,
            64,
            64,
            1,
            1,
            0,
            0,
            0,
        ])
        .raw(&[
            op::TRANSFER,
            0,
            2,
            0,
            0,
            0,
            1,
            0,
            0,
            0,
            64,
            64,
            1,
            1,
            0,
            0,
            0,
        ])
        .raw(&[op::CURSOR, 2, 0])
        .raw(&[op::DETACH_IOV, 2, 0])
        .raw(&[op::ATTACH_IOV, 2, 1, 4, 0, 0, 0, 0x10])
        .raw(&[op::UNREF, 2])
        .0;
    seeds.push(("console".into(), console));

    for (name, bytes) in seeds {
        let path = out.join(format!("seed-{name}"));
        std::fs::write(&path, &bytes).expect("write seed");
        println!("{} ({} bytes)", path.display(), bytes.len());
    }
}
