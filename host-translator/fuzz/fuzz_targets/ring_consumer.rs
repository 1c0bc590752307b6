//! A guest that controls a real Venus ring: its head, tail and status words, the
//! command buffer (with wrap-around) and the extra region, driven through
//! vkNotifyRingMESA and bounded waits, on lavapipe.
//!
//! Per input: a fresh context with resource 1 (a 64 KiB shared-memory blob,
//! mapped here through the fd the host hands out, as a guest would), then
//! vkCreateRingMESA out of ring, created the way Mesa does, with a buffer size,
//! placement, idle timeout and optional monitor chosen by the input. The rest of
//! the input is a list of operations (see [`Op`]): append commands at the guest's
//! cursor as a producer would, write raw bytes anywhere in the buffer, set or move
//! the tail, scribble over the host-owned head and status words and the extra
//! region, notify, wait (every wait is capped: a few milliseconds), send a few
//! out-of-ring commands (vkWriteRingExtraMESA, vkSubmitVirtqueueSeqnoMESA,
//! vkDestroyRingMESA). Blocking out-of-ring waits (vkWaitRingSeqnoMESA) are
//! never sent: by protocol they wait for as long as the guest's ring lets them.
//!
//! `RING_FUZZ_DEBUG=1` prints the ring's final state per input.
//!
//! Errors are expected (the context goes fatal); a panic anywhere, a crash, a
//! hang or an error that leaves the context usable is a bug.
#![no_main]

use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use venus_host::{Context, FenceSink, Renderer, RendererConfig};
use venus_protocol::generated as g;
use venus_protocol::mesa::{RingCreateInfoMESA, RingMonitorInfoMESA};
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
        .expect("lavapipe must load")
    })
}

/// The blob holding the ring.
const BLOB_SIZE: usize = 64 << 10;
/// The ring's id.
const RING: u64 = 7;
/// The longest a wait operation polls for the host.
const WAIT_CAP: Duration = Duration::from_millis(2);
/// How long a wait lets the ring's head stand still before giving up.
const STILL_GRACE: Duration = Duration::from_micros(100);
/// The total time one input may spend waiting or napping; later waits only
/// look once.
const WAIT_BUDGET: Duration = Duration::from_millis(3);

/// Waits that hit [`WAIT_CAP`] (for `RING_FUZZ_DEBUG`).
static CAPPED: AtomicU32 = AtomicU32::new(0);

/// The client's view of the blob: a shared mapping of the fd the host returned.
struct Mapping {
    ptr: *mut u8,
    len: usize,
}

impl Mapping {
    fn new(fd: &std::os::fd::OwnedFd, len: usize) -> Mapping {
        // SAFETY: a fresh shared mapping of a valid memfd; the result is checked.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                fd.as_raw_fd(),
                0,
            )
        };
        assert_ne!(ptr, libc::MAP_FAILED, "mmap of the blob");
        Mapping {
            ptr: ptr.cast(),
            len,
        }
    }

    /// The 32-bit word at `offset` (4-aligned, inside the mapping).
    fn word(&self, offset: usize) -> &AtomicU32 {
        assert!(offset % 4 == 0 && offset + 4 <= self.len);
        // SAFETY: in bounds and aligned (checked; the mapping is page-aligned),
        // shared with the host's threads, which use atomics on it too.
        unsafe { &*self.ptr.add(offset).cast::<AtomicU32>() }
    }

    /// Copies `bytes` to `offset` (inside the mapping), like a guest's plain stores.
    fn write(&self, offset: usize, bytes: &[u8]) {
        assert!(offset + bytes.len() <= self.len);
        // Byte by byte through atomics: the host reads the same bytes concurrently.
        for (i, b) in bytes.iter().enumerate() {
            // SAFETY: in bounds (checked); AtomicU8 has the alignment of u8.
            let cell = unsafe {
                &*self
                    .ptr
                    .add(offset + i)
                    .cast::<std::sync::atomic::AtomicU8>()
            };
            cell.store(*b, Ordering::Relaxed);
        }
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: unmapping exactly what `new` mapped.
        unsafe { libc::munmap(self.ptr.cast(), self.len) };
    }
}

/// Reads the input front to back; missing bytes read as zero.
struct Input<'a>(&'a [u8]);

impl Input<'_> {
    fn u8(&mut self) -> u8 {
        let (b, rest) = self.0.split_first().map_or((0, &[][..]), |(b, r)| (*b, r));
        self.0 = rest;
        b
    }
    fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.u8(), self.u8()])
    }
    fn u32(&mut self) -> u32 {
        u32::from_le_bytes([self.u8(), self.u8(), self.u8(), self.u8()])
    }
    fn bytes(&mut self, n: usize) -> &[u8] {
        let n = n.min(self.0.len());
        let (b, rest) = self.0.split_at(n);
        self.0 = rest;
        b
    }
    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// One out-of-ring command stream.
fn encode(f: impl FnOnce(&mut Encoder<'_>)) -> Vec<u8> {
    let mut buf = vec![0u8; 512];
    let mut e = Encoder::with_all(&mut buf);
    f(&mut e);
    let n = e.finish().expect("out-of-ring command fits");
    buf.truncate(n);
    buf
}

/// The guest side of one ring.
struct Guest {
    ctx: Context,
    map: Mapping,
    head: usize,
    tail: usize,
    status: usize,
    buffer: usize,
    buffer_size: u32,
    extra: usize,
    extra_size: usize,
    /// The guest's producer cursor (what it last stored as the tail).
    cursor: u32,
    /// Time spent in waits so far.
    waited: Duration,
}

impl Guest {
    /// Runs an out-of-ring stream; an error must leave the context fatal.
    fn submit(&self, cmd: &[u8]) {
        if let Err(e) = self.ctx.submit_cmd(cmd) {
            assert!(
                self.ctx.is_fatal(),
                "an error must leave the context fatal: {e}"
            );
        }
    }

    /// Writes `bytes` into the buffer at stream position `pos`, wrapping.
    fn write_at(&self, pos: u32, bytes: &[u8]) {
        let size = self.buffer_size as usize;
        let mut off = (pos & (self.buffer_size - 1)) as usize;
        for chunk in bytes.chunks(size) {
            let first = chunk.len().min(size - off);
            self.map.write(self.buffer + off, &chunk[..first]);
            self.map.write(self.buffer, &chunk[first..]);
            off = (off + chunk.len()) % size;
        }
    }

    fn store_tail(&mut self, tail: u32) {
        self.cursor = tail;
        self.map.word(self.tail).store(tail, Ordering::Release);
    }

    /// Polls (at most [`WAIT_CAP`]) until the host's head reaches the tail, the
    /// context is fatal, or the head has not moved for [`STILL_GRACE`] (the ring
    /// sleeps until notified, or is blocked in a command such as an in-ring
    /// virtqueue wait, or busy in a long driver call: the next operations then
    /// race with it, which is fine).
    fn wait(&mut self) {
        let t0 = Instant::now();
        let cap = WAIT_CAP.min(WAIT_BUDGET.saturating_sub(self.waited));
        self.wait_until(t0, cap);
        self.waited += t0.elapsed();
    }

    fn wait_until(&self, t0: Instant, cap: Duration) {
        let mut last_head = self.map.word(self.head).load(Ordering::Acquire);
        let mut still_since = t0;
        loop {
            let head = self.map.word(self.head).load(Ordering::Acquire);
            if head == self.map.word(self.tail).load(Ordering::Acquire) || self.ctx.is_fatal() {
                return;
            }
            if head != last_head {
                last_head = head;
                still_since = Instant::now();
            } else if still_since.elapsed() >= STILL_GRACE {
                return;
            }
            if t0.elapsed() >= cap {
                CAPPED.fetch_add(1, Ordering::Relaxed);
                return;
            }
            std::thread::sleep(Duration::from_micros(20));
        }
    }

    fn notify(&self, seqno: u32, flags: u32) {
        // SAFETY: no pointers.
        let cmd = encode(|e| unsafe { g::encode_vk_notify_ring_mesa(e, 0, RING, seqno, flags) });
        self.submit(&cmd);
    }
}

/// What each operation byte selects (`op % COUNT`).
#[derive(Clone, Copy)]
enum Op {
    /// u16 length, then that many bytes appended at the cursor; tail moves past them.
    Push,
    /// Same, then notify with the new tail as seqno, then wait.
    PushNotifyWait,
    /// u16 position, u8 length, bytes: written into the buffer (wrapping), tail unchanged.
    Poke,
    /// u32: the tail word.
    SetTail,
    /// i16: the tail moves by it.
    MoveTail,
    /// u32: the head word (owned by the host).
    SetHead,
    /// u32: the status word (the host sets bits; the guest clears ALIVE).
    SetStatus,
    /// u8 offset, u32 value: a word of the extra region (if there is one).
    SetExtra,
    /// u32 seqno, u8 flags: vkNotifyRingMESA.
    Notify,
    /// A bounded wait.
    Wait,
    /// u16 offset, u32 value: vkWriteRingExtraMESA out of ring.
    WriteExtra,
    /// u8: vkSubmitVirtqueueSeqnoMESA out of ring (unblocks in-ring virtqueue waits).
    VirtqueueSeqno,
    /// vkDestroyRingMESA; later notifies of it are fatal.
    Destroy,
    /// u8: sleep that many times 10 us (lets the ring go idle).
    Nap,
}

const OPS: [Op; 14] = [
    Op::Push,
    Op::PushNotifyWait,
    Op::Poke,
    Op::SetTail,
    Op::MoveTail,
    Op::SetHead,
    Op::SetStatus,
    Op::SetExtra,
    Op::Notify,
    Op::Wait,
    Op::WriteExtra,
    Op::VirtqueueSeqno,
    Op::Destroy,
    Op::Nap,
];

fuzz_target!(|data: &[u8]| {
    let r = renderer();
    let started = Instant::now();
    CAPPED.store(0, Ordering::Relaxed);
    let mut input = Input(data);
    // Header: buffer size, placement and extra size, idle timeout, monitor.
    let shape = input.u8();
    let timing = input.u8();
    let buffer_size = 64u32 << (shape % 9); // 64 B .. 16 KiB
    let ring_offset = if shape & 0x10 != 0 { 4096 } else { 0 };
    let extra_size = [4u32, 0, 64, 256][usize::from(shape >> 5 & 3)];
    let idle_timeout = [10_000u64, 100_000, 1_000_000, 50_000][usize::from(timing & 3)];
    let monitor = timing & 4 != 0;

    let ctx = r
        .create_context(1, "fuzz-ring", Arc::new(NoFences))
        .expect("context");
    let blob = ctx
        .create_blob(1, 0, BLOB_SIZE as u64, 0)
        .expect("64 KiB blob");
    let map = Mapping::new(&blob.fd, BLOB_SIZE);
    drop(blob);

    let layout = RingLayout::for_buffer_size(buffer_size, extra_size).expect("Mesa layout");
    let mon = RingMonitorInfoMESA {
        max_reporting_period_microseconds: 1000,
        ..Default::default()
    };
    let mut ci = RingCreateInfoMESA {
        resource_id: 1,
        offset: ring_offset,
        size: layout.shmem_size as usize,
        idle_timeout,
        head_offset: layout.head_offset as usize,
        tail_offset: layout.tail_offset as usize,
        status_offset: layout.status_offset as usize,
        buffer_offset: layout.buffer_offset as usize,
        buffer_size: layout.buffer_size as usize,
        extra_offset: layout.extra_offset as usize,
        extra_size: layout.extra_size as usize,
        ..Default::default()
    };
    if monitor {
        ci.p_next = (&mon as *const RingMonitorInfoMESA).cast();
    }
    // SAFETY: pointers to live locals (the monitor chain included).
    let create = encode(|e| unsafe { g::encode_vk_create_ring_mesa(e, 0, RING, &ci) });
    ctx.submit_cmd(&create).expect("a valid ring is accepted");

    let at = |rel: u64| ring_offset + rel as usize;
    let mut guest = Guest {
        ctx,
        map,
        head: at(layout.head_offset),
        tail: at(layout.tail_offset),
        status: at(layout.status_offset),
        buffer: at(layout.buffer_offset),
        buffer_size,
        extra: at(layout.extra_offset),
        extra_size: extra_size as usize,
        cursor: 0,
        waited: Duration::ZERO,
    };

    let mut ops = 0;
    while !input.is_empty() && ops < 64 {
        ops += 1;
        match OPS[usize::from(input.u8()) % OPS.len()] {
            op @ (Op::Push | Op::PushNotifyWait) => {
                // At most one buffer ahead of what the host consumed, as a
                // producer that waits for room would do.
                let len = usize::from(input.u16()) % (buffer_size as usize + 1);
                let bytes = input.bytes(len).to_vec();
                let cur = guest.cursor;
                guest.write_at(cur, &bytes);
                guest.store_tail(cur.wrapping_add(bytes.len() as u32));
                if matches!(op, Op::PushNotifyWait) {
                    guest.notify(guest.cursor, 0);
                    guest.wait();
                }
            }
            Op::Poke => {
                let pos = u32::from(input.u16());
                let len = usize::from(input.u8());
                let bytes = input.bytes(len).to_vec();
                guest.write_at(pos, &bytes);
            }
            Op::SetTail => {
                let t = input.u32();
                guest.store_tail(t);
            }
            Op::MoveTail => {
                let d = input.u16() as i16;
                let t = guest.cursor.wrapping_add(d as i32 as u32);
                guest.store_tail(t);
            }
            Op::SetHead => {
                let h = input.u32();
                guest.map.word(guest.head).store(h, Ordering::Release);
            }
            Op::SetStatus => {
                let s = input.u32();
                guest.map.word(guest.status).store(s, Ordering::Release);
            }
            Op::SetExtra => {
                let off = usize::from(input.u8()) * 4;
                let v = input.u32();
                if off + 4 <= guest.extra_size {
                    guest
                        .map
                        .word(guest.extra + off)
                        .store(v, Ordering::Release);
                }
            }
            Op::Notify => {
                let seqno = input.u32();
                let flags = u32::from(input.u8());
                guest.notify(seqno, flags);
            }
            Op::Wait => guest.wait(),
            Op::WriteExtra => {
                let off = usize::from(input.u16());
                let v = input.u32();
                // SAFETY: no pointers.
                let cmd =
                    encode(|e| unsafe { g::encode_vk_write_ring_extra_mesa(e, 0, RING, off, v) });
                guest.submit(&cmd);
            }
            Op::VirtqueueSeqno => {
                let s = u64::from(input.u8());
                // SAFETY: no pointers.
                let cmd =
                    encode(|e| unsafe { g::encode_vk_submit_virtqueue_seqno_mesa(e, 0, RING, s) });
                guest.submit(&cmd);
            }
            Op::Destroy => {
                // SAFETY: no pointers.
                let cmd = encode(|e| unsafe { g::encode_vk_destroy_ring_mesa(e, 0, RING) });
                guest.submit(&cmd);
            }
            Op::Nap => {
                // Counts against the input's wait budget.
                let want = Duration::from_micros(10 * u64::from(input.u8() % 32));
                let nap = want.min(WAIT_BUDGET.saturating_sub(guest.waited));
                if !nap.is_zero() {
                    let t0 = Instant::now();
                    std::thread::sleep(nap);
                    guest.waited += t0.elapsed();
                }
            }
        }
        if guest.ctx.is_fatal() {
            break;
        }
    }
    guest.wait();
    if std::env::var_os("RING_FUZZ_DEBUG").is_some() {
        eprintln!(
            "ring_consumer: {ops} ops, head {} tail {} status {:#x}, fatal {}, {} capped waits, {:?}",
            guest.map.word(guest.head).load(Ordering::Acquire),
            guest.map.word(guest.tail).load(Ordering::Acquire),
            guest.map.word(guest.status).load(Ordering::Acquire),
            guest.ctx.is_fatal(),
            CAPPED.load(Ordering::Relaxed),
            started.elapsed()
        );
    }
    // Dropping the context stops and joins the ring thread, even one blocked in
    // a virtqueue wait (teardown makes the context fatal first).
    let Guest { ctx, map, .. } = guest;
    drop(ctx);
    drop(map);
});
