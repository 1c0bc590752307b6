//! The guest side of a Venus ring: commands are written into shared memory, the
//! tail is published, and the host's head tells when they have run.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use venus_protocol::mesa::RingCreateInfoMESA;
use venus_protocol::ring::{self, RingLayout, STATUS_FATAL, STATUS_IDLE};
use venus_protocol::Encoder;

use crate::transport::{MappedBlob, Transport};

/// A ring in a shared-memory blob.
pub struct Ring {
    /// The ring's id (any unique nonzero value).
    pub id: u64,
    blob: MappedBlob,
    layout: RingLayout,
    /// Bytes written so far (the tail, free-running).
    tail: u32,
}

/// Why the ring cannot be used.
#[derive(Debug)]
pub enum RingError {
    /// The host marked the ring fatal or stopped consuming it.
    Lost(String),
}

impl std::fmt::Display for RingError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RingError::Lost(m) => f.write_str(m),
        }
    }
}

impl Ring {
    /// Creates the ring's blob and sends `vkCreateRingMESA` out of ring.
    pub fn create(transport: &dyn Transport, id: u64, granularity: u64) -> Result<Ring, String> {
        let layout = RingLayout::instance_ring();
        let blob = transport
            .create_blob(
                0,
                crate::connection::round_up(layout.shmem_size, granularity),
            )
            .map_err(|e| format!("ring blob: {e}"))?;
        let ci = layout.create_info(0, blob.size);
        let info = RingCreateInfoMESA {
            resource_id: blob.res_id,
            offset: ci.offset as usize,
            size: ci.size as usize,
            idle_timeout: 1_000_000,
            head_offset: ci.head_offset as usize,
            tail_offset: ci.tail_offset as usize,
            status_offset: ci.status_offset as usize,
            buffer_offset: ci.buffer_offset as usize,
            buffer_size: ci.buffer_size as usize,
            extra_offset: ci.extra_offset as usize,
            extra_size: ci.extra_size as usize,
            ..Default::default()
        };
        let mut buf = vec![0u8; 256];
        let mut e = Encoder::with_all(&mut buf);
        // SAFETY: `info` is a valid local struct.
        unsafe { venus_protocol::generated::encode_vk_create_ring_mesa(&mut e, 0, id, &info) };
        let n = e
            .finish()
            .map_err(|e| format!("encoding vkCreateRingMESA: {e:?}"))?;
        transport
            .submit(&buf[..n])
            .map_err(|e| format!("vkCreateRingMESA: {e}"))?;
        Ok(Ring {
            id,
            blob,
            layout,
            tail: 0,
        })
    }

    fn word(&self, offset: u64) -> &AtomicU32 {
        // SAFETY: the offset is one of the layout's 4-aligned words inside the
        // mapping, which lives as long as `self`.
        unsafe { AtomicU32::from_ptr(self.blob.ptr.add(offset as usize).cast()) }
    }

    /// The buffer size in bytes.
    pub fn buffer_size(&self) -> u32 {
        self.layout.buffer_size as u32
    }

    /// Writes `data` (whole commands, at most the buffer size), publishes the tail and
    /// returns the seqno to wait for. `notify` is called when the host is idle.
    pub fn write(
        &mut self,
        data: &[u8],
        notify: &mut dyn FnMut(u32) -> Result<(), String>,
        alive: &dyn Fn() -> bool,
    ) -> Result<u32, RingError> {
        let size = self.buffer_size();
        let len =
            u32::try_from(data.len()).map_err(|_| RingError::Lost("command too large".into()))?;
        if len > size {
            return Err(RingError::Lost("command larger than the ring".into()));
        }
        // Wait for room.
        let head = self.wait_until(|head| ring::has_space(self.tail, head, len, size), alive)?;
        let _ = head;
        let spans = ring::spans_for_write(self.tail, len, size)
            .map_err(|e| RingError::Lost(e.to_string()))?;
        let mut off = 0usize;
        for s in spans.iter() {
            let n = s.len as usize;
            // SAFETY: the span is inside the ring buffer (spans_for_write keeps it
            // within `size`), which is inside the mapping.
            unsafe {
                std::ptr::copy_nonoverlapping(
                    data.as_ptr().add(off),
                    self.blob
                        .ptr
                        .add(self.layout.buffer_offset as usize + s.offset as usize),
                    n,
                )
            };
            off += n;
        }
        self.tail = self.tail.wrapping_add(len);
        self.word(self.layout.tail_offset)
            .store(self.tail, Ordering::Release);
        let status = self.word(self.layout.status_offset).load(Ordering::Acquire);
        if status & STATUS_FATAL != 0 {
            return Err(RingError::Lost("the host marked the ring fatal".into()));
        }
        if status & STATUS_IDLE != 0 {
            notify(self.tail).map_err(RingError::Lost)?;
        }
        Ok(self.tail)
    }

    /// Waits until the host has run everything up to `seqno`.
    pub fn wait(&self, seqno: u32, alive: &dyn Fn() -> bool) -> Result<(), RingError> {
        let t0 = Instant::now();
        let mut spins = 0u32;
        loop {
            let head = self.word(self.layout.head_offset).load(Ordering::Acquire);
            if ring::seqno_passed(head, seqno) {
                return Ok(());
            }
            let status = self.word(self.layout.status_offset).load(Ordering::Acquire);
            if status & STATUS_FATAL != 0 {
                return Err(RingError::Lost("the host marked the ring fatal".into()));
            }
            spins += 1;
            if spins < 2000 {
                std::hint::spin_loop();
                if spins.is_multiple_of(64) {
                    std::thread::yield_now();
                }
            } else {
                if !alive() {
                    return Err(RingError::Lost("the connection to the host is gone".into()));
                }
                // Long waits (the host is busy): back off gently, capped at 1 ms.
                let us = (t0.elapsed().as_micros() / 16).clamp(20, 1000) as u64;
                std::thread::sleep(Duration::from_micros(us));
            }
        }
    }

    fn wait_until(
        &self,
        ok: impl Fn(u32) -> bool,
        alive: &dyn Fn() -> bool,
    ) -> Result<u32, RingError> {
        let mut spins = 0u32;
        loop {
            let head = self.word(self.layout.head_offset).load(Ordering::Acquire);
            if ok(head) {
                return Ok(head);
            }
            let status = self.word(self.layout.status_offset).load(Ordering::Acquire);
            if status & STATUS_FATAL != 0 {
                return Err(RingError::Lost("the host marked the ring fatal".into()));
            }
            spins += 1;
            if spins.is_multiple_of(1024) && !alive() {
                return Err(RingError::Lost("the connection to the host is gone".into()));
            }
            if spins < 4096 {
                std::thread::yield_now();
            } else {
                std::thread::sleep(Duration::from_micros(100));
            }
        }
    }

    /// The current tail (the seqno of everything written so far).
    pub fn tail(&self) -> u32 {
        self.tail
    }

    /// Releases the ring's blob (after `vkDestroyRingMESA`).
    pub fn into_blob(self) -> MappedBlob {
        self.blob
    }
}
