//! The Venus ring: its shared-memory layout and the arithmetic on its counters.
//!
//! A ring lives in a shmem blob. Mesa 25.0.7 lays it out as (`vn_ring.c:vn_ring_get_layout`):
//!
//! | offset | size | field | written by |
//! |---|---|---|---|
//! | 0 | 4 | head: bytes the host has consumed | host (release store) |
//! | 64 | 4 | tail: bytes the guest has produced | guest (release store) |
//! | 128 | 4 | status bits ([`STATUS_IDLE`], [`STATUS_FATAL`], [`STATUS_ALIVE`]) | host sets, guest clears ALIVE |
//! | 192 | power of two | command buffer | guest |
//! | 192 + buffer | extra (4 in Mesa) | extra region | host (never used by Mesa 25.0.7) |
//!
//! Head and tail are free-running `u32` byte counters; the position in the buffer is
//! `counter & (buffer_size - 1)`, so data may wrap around the buffer end. A submission's
//! seqno is the tail after it; it is done once head has reached it.
//!
//! The host accepts a layout only if it passes the checks of virglrenderer 1.1.0's
//! `vkr_transport.c:vkr_ring_layout_init`, reproduced by [`RingLayout::validate`]. The
//! host additionally requires the head and status words to read 0 when the ring is
//! created (`vkr_ring.c`); the guest zeroes the whole shmem first.
//!
//! Nothing here touches memory: these are offsets, checks and index arithmetic.

use thiserror::Error;

/// Offset of the head word in Mesa's layout.
pub const HEAD_OFFSET: u64 = 0;
/// Offset of the tail word in Mesa's layout.
pub const TAIL_OFFSET: u64 = 64;
/// Offset of the status word in Mesa's layout.
pub const STATUS_OFFSET: u64 = 128;
/// Offset of the command buffer in Mesa's layout.
pub const BUFFER_OFFSET: u64 = 192;

/// Status bit: the host found no data for `idleTimeout` and sleeps until notified.
pub const STATUS_IDLE: u32 = 1;
/// Status bit: the host hit a fatal error on this context.
pub const STATUS_FATAL: u32 = 2;
/// Status bit: the host's monitor thread is alive (set every period, cleared by the guest).
pub const STATUS_ALIVE: u32 = 4;

/// Largest command buffer the host accepts (`VKR_RING_BUFFER_MAX_SIZE`).
pub const MAX_BUFFER_SIZE: u64 = 16 * 1024 * 1024;

/// Command buffer size of Mesa's instance ring.
pub const INSTANCE_RING_BUFFER_SIZE: u32 = 128 * 1024;
/// Command buffer size of Mesa's per-thread (TLS) rings.
pub const TLS_RING_BUFFER_SIZE: u32 = 16 * 1024;
/// Extra-region size Mesa uses on every ring (one `u32`).
pub const RING_EXTRA_SIZE: u32 = 4;
/// Commands up to this size go into the instance ring directly (buffer >> 4).
pub const INSTANCE_RING_DIRECT_SIZE: u32 = INSTANCE_RING_BUFFER_SIZE >> 4;
/// Commands up to this size go into a per-thread ring directly (buffer >> 0).
pub const TLS_RING_DIRECT_SIZE: u32 = TLS_RING_BUFFER_SIZE;
/// The `idleTimeout` Mesa requests, in nanoseconds (1 ms).
pub const IDLE_TIMEOUT_NS: u64 = 1_000_000;
/// The `maxReportingPeriodMicroseconds` Mesa requests in `VkRingMonitorInfoMESA` (3 s).
pub const MONITOR_PERIOD_US: u32 = 3_000_000;

/// Errors from ring layouts and ring arithmetic.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
pub enum RingError {
    /// The command buffer size is zero or not a power of two.
    #[error("ring buffer size {0} is not a nonzero power of two")]
    BufferSizeNotPowerOfTwo(u64),
    /// The command buffer is larger than [`MAX_BUFFER_SIZE`].
    #[error("ring buffer size {0} exceeds 16 MiB")]
    BufferTooLarge(u64),
    /// An offset plus a size does not fit in 64 bits.
    #[error("ring region {region} overflows: offset {offset} + size {size}")]
    Overflow {
        /// Which region (`"ring"`, `"head"`, `"tail"`, `"status"`, `"buffer"` or `"extra"`).
        region: &'static str,
        /// The region's start.
        offset: u64,
        /// The region's size.
        size: u64,
    },
    /// The ring does not lie inside the resource.
    #[error("ring [{begin}, {end}) is outside the resource of {resource_size} bytes")]
    RingOutsideResource {
        /// Start of the ring in the resource.
        begin: u64,
        /// End of the ring in the resource.
        end: u64,
        /// Size of the resource.
        resource_size: u64,
    },
    /// A region does not lie inside the ring.
    #[error("ring region {region} [{begin}, {end}) is outside the ring")]
    RegionOutsideRing {
        /// The region's name.
        region: &'static str,
        /// Start of the region in the resource.
        begin: u64,
        /// End of the region in the resource.
        end: u64,
    },
    /// A region's start or end is not a multiple of 4.
    #[error("ring region {region} [{begin}, {end}) is not 4-byte aligned")]
    Unaligned {
        /// The region's name.
        region: &'static str,
        /// Start of the region in the resource.
        begin: u64,
        /// End of the region in the resource.
        end: u64,
    },
    /// Two regions overlap.
    #[error("ring regions {first} and {second} overlap")]
    Overlap {
        /// The earlier region in head, tail, status, buffer, extra order.
        first: &'static str,
        /// The later region.
        second: &'static str,
    },
    /// `tail - cursor` (wrapping) is larger than the buffer: the counters are corrupt.
    #[error("{pending} pending bytes exceed the ring buffer size {buffer_size}")]
    PendingExceedsBuffer {
        /// `tail.wrapping_sub(cursor)`.
        pending: u32,
        /// The buffer size.
        buffer_size: u32,
    },
}

/// A half-open byte range `[begin, end)` inside the ring's resource.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Region {
    /// First byte.
    pub begin: u64,
    /// One past the last byte.
    pub end: u64,
}

impl Region {
    /// `[offset, offset + size)`, or an error if the end overflows.
    fn new(region: &'static str, offset: u64, size: u64) -> Result<Self, RingError> {
        let end = offset.checked_add(size).ok_or(RingError::Overflow {
            region,
            offset,
            size,
        })?;
        Ok(Self { begin: offset, end })
    }

    /// The region's length in bytes.
    pub fn len(&self) -> u64 {
        self.end.saturating_sub(self.begin)
    }

    /// Whether the region is empty.
    pub fn is_empty(&self) -> bool {
        self.end <= self.begin
    }

    fn is_within(&self, other: &Region) -> bool {
        self.begin >= other.begin && self.end <= other.end
    }

    // Same rule as vkr_region_is_disjoint: an empty region strictly inside another
    // one counts as overlapping it.
    fn is_disjoint(&self, other: &Region) -> bool {
        self.begin >= other.end || self.end <= other.begin
    }

    fn is_aligned4(&self) -> bool {
        (self.begin | self.end) & 3 == 0
    }
}

/// The layout fields of `VkRingCreateInfoMESA`, plus the size of the resource it names.
///
/// All offsets except `offset` are relative to `offset`, the ring's start inside the
/// resource. `flags`, `resourceId` and `idleTimeout` do not affect the layout and are
/// not included.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct RingCreateInfo {
    /// Size in bytes of the resource (`resourceId`) holding the ring.
    pub resource_size: u64,
    /// Start of the ring inside the resource.
    pub offset: u64,
    /// Size of the ring.
    pub size: u64,
    /// Offset of the head word.
    pub head_offset: u64,
    /// Offset of the tail word.
    pub tail_offset: u64,
    /// Offset of the status word.
    pub status_offset: u64,
    /// Offset of the command buffer.
    pub buffer_offset: u64,
    /// Size of the command buffer.
    pub buffer_size: u64,
    /// Offset of the extra region.
    pub extra_offset: u64,
    /// Size of the extra region.
    pub extra_size: u64,
}

/// A ring layout relative to the ring's start, as Mesa computes and sends it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RingLayout {
    /// Offset of the head word.
    pub head_offset: u64,
    /// Offset of the tail word.
    pub tail_offset: u64,
    /// Offset of the status word.
    pub status_offset: u64,
    /// Offset of the command buffer.
    pub buffer_offset: u64,
    /// Size of the command buffer (a power of two).
    pub buffer_size: u64,
    /// Offset of the extra region (right after the buffer).
    pub extra_offset: u64,
    /// Size of the extra region.
    pub extra_size: u64,
    /// Size of the whole shmem (`extra_offset + extra_size`).
    pub shmem_size: u64,
}

/// Absolute regions of a ring that passed the host's checks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ValidatedRing {
    /// The ring inside the resource.
    pub ring: Region,
    /// The head word (4 bytes).
    pub head: Region,
    /// The tail word (4 bytes).
    pub tail: Region,
    /// The status word (4 bytes).
    pub status: Region,
    /// The command buffer.
    pub buffer: Region,
    /// The extra region.
    pub extra: Region,
    /// The command buffer size (a power of two, at most 16 MiB).
    pub buffer_size: u32,
}

impl RingLayout {
    /// Mesa's layout for a ring with the given buffer and extra sizes: head at 0, tail
    /// at 64, status at 128, buffer at 192, extra right after the buffer.
    ///
    /// Fails for layouts the host would refuse (buffer not a power of two or above
    /// 16 MiB, extra size not a multiple of 4). The instance ring (128 KiB + 4) is
    /// 131268 bytes; a per-thread ring (16 KiB + 4) is 16580.
    pub fn for_buffer_size(buffer_size: u32, extra_size: u32) -> Result<Self, RingError> {
        let buffer_size = u64::from(buffer_size);
        let extra_size = u64::from(extra_size);
        let extra_offset = BUFFER_OFFSET + buffer_size;
        let layout = Self {
            head_offset: HEAD_OFFSET,
            tail_offset: TAIL_OFFSET,
            status_offset: STATUS_OFFSET,
            buffer_offset: BUFFER_OFFSET,
            buffer_size,
            extra_offset,
            extra_size,
            shmem_size: extra_offset + extra_size,
        };
        Self::validate(&layout.create_info(0, layout.shmem_size))?;
        Ok(layout)
    }

    /// Mesa's instance ring: 128 KiB buffer, 4-byte extra.
    pub fn instance_ring() -> Self {
        let buffer = u64::from(INSTANCE_RING_BUFFER_SIZE);
        Self::mesa_constant(buffer)
    }

    /// Mesa's per-thread ring: 16 KiB buffer, 4-byte extra.
    pub fn tls_ring() -> Self {
        let buffer = u64::from(TLS_RING_BUFFER_SIZE);
        Self::mesa_constant(buffer)
    }

    fn mesa_constant(buffer_size: u64) -> Self {
        let extra_size = u64::from(RING_EXTRA_SIZE);
        Self {
            head_offset: HEAD_OFFSET,
            tail_offset: TAIL_OFFSET,
            status_offset: STATUS_OFFSET,
            buffer_offset: BUFFER_OFFSET,
            buffer_size,
            extra_offset: BUFFER_OFFSET + buffer_size,
            extra_size,
            shmem_size: BUFFER_OFFSET + buffer_size + extra_size,
        }
    }

    /// The create-info fields for this layout placed at `offset` in a resource of
    /// `resource_size` bytes (Mesa: offset 0, resource size = shmem size).
    pub fn create_info(&self, offset: u64, resource_size: u64) -> RingCreateInfo {
        RingCreateInfo {
            resource_size,
            offset,
            size: self.shmem_size,
            head_offset: self.head_offset,
            tail_offset: self.tail_offset,
            status_offset: self.status_offset,
            buffer_offset: self.buffer_offset,
            buffer_size: self.buffer_size,
            extra_offset: self.extra_offset,
            extra_size: self.extra_size,
        }
    }

    /// The host's checks on `VkRingCreateInfoMESA` (virglrenderer 1.1.0
    /// `vkr_ring_layout_init`), in its order:
    ///
    /// 1. the ring `[offset, offset + size)` lies inside the resource;
    /// 2. each of head, tail, status (4 bytes each), buffer and extra, placed at
    ///    `offset + regionOffset`, lies inside the ring, and starts and ends on a
    ///    multiple of 4;
    /// 3. the five regions are pairwise disjoint (an empty region strictly inside
    ///    another counts as overlapping, as in `vkr_region_is_disjoint`);
    /// 4. the buffer size is a nonzero power of two of at most 16 MiB.
    ///
    /// Any sum that overflows 64 bits is an error (the host's wrapped sums are
    /// refused too). On success returns the regions relative to the resource start.
    pub fn validate(info: &RingCreateInfo) -> Result<ValidatedRing, RingError> {
        let ring = Region::new("ring", info.offset, info.size)?;
        let resource = Region {
            begin: 0,
            end: info.resource_size,
        };
        if !ring.is_within(&resource) {
            return Err(RingError::RingOutsideResource {
                begin: ring.begin,
                end: ring.end,
                resource_size: info.resource_size,
            });
        }

        let place = |name: &'static str, rel: u64, size: u64| -> Result<Region, RingError> {
            let begin = info.offset.checked_add(rel).ok_or(RingError::Overflow {
                region: name,
                offset: info.offset,
                size: rel,
            })?;
            Region::new(name, begin, size)
        };
        let regions = [
            ("head", place("head", info.head_offset, 4)?),
            ("tail", place("tail", info.tail_offset, 4)?),
            ("status", place("status", info.status_offset, 4)?),
            (
                "buffer",
                place("buffer", info.buffer_offset, info.buffer_size)?,
            ),
            ("extra", place("extra", info.extra_offset, info.extra_size)?),
        ];

        for (name, region) in &regions {
            if !region.is_within(&ring) {
                return Err(RingError::RegionOutsideRing {
                    region: name,
                    begin: region.begin,
                    end: region.end,
                });
            }
            if !region.is_aligned4() {
                return Err(RingError::Unaligned {
                    region: name,
                    begin: region.begin,
                    end: region.end,
                });
            }
        }

        for (i, (first, a)) in regions.iter().enumerate() {
            for (second, b) in regions.iter().skip(i + 1) {
                if !a.is_disjoint(b) {
                    return Err(RingError::Overlap { first, second });
                }
            }
        }

        let buffer_size = info.buffer_size;
        if buffer_size > MAX_BUFFER_SIZE {
            return Err(RingError::BufferTooLarge(buffer_size));
        }
        if !buffer_size.is_power_of_two() {
            return Err(RingError::BufferSizeNotPowerOfTwo(buffer_size));
        }
        let buffer_size_u32 =
            u32::try_from(buffer_size).map_err(|_| RingError::BufferTooLarge(buffer_size))?;

        let [(_, head), (_, tail), (_, status), (_, buffer), (_, extra)] = regions;
        Ok(ValidatedRing {
            ring,
            head,
            tail,
            status,
            buffer,
            extra,
            buffer_size: buffer_size_u32,
        })
    }
}

/// Whether a submission with seqno `seqno` is done when the host's head reads `head`.
///
/// Wrap-aware by signed distance: true when `head` is at or less than 2^31 bytes past
/// `seqno`. That holds for any seqno still pending, since at most one buffer (≤ 16 MiB)
/// separates head from tail. For seqnos that may be older than 2^31 bytes, use
/// [`seqno_passed_at`], which is Mesa's rule.
pub fn seqno_passed(head: u32, seqno: u32) -> bool {
    head.wrapping_sub(seqno) < 0x8000_0000
}

/// Mesa's `vn_ring_ge_seqno(ring, head, seqno)`: with `cur` the guest's current tail,
/// `head` has reached `seqno` when it is no farther behind `cur` than `seqno` is.
/// Correct for any seqno issued within the last 2^32 bytes.
pub fn seqno_passed_at(head: u32, seqno: u32, cur: u32) -> bool {
    cur.wrapping_sub(head) <= cur.wrapping_sub(seqno)
}

/// Whether `size` more bytes fit when the guest's cursor is `cur` and the host's head is
/// `head` (Mesa's `vn_ring_has_space`). The sum is taken in 64 bits, so unlike Mesa's
/// `u32` expression an absurd `size` cannot wrap around into "fits".
pub fn has_space(cur: u32, head: u32, size: u32, buffer_size: u32) -> bool {
    let pending = cur.wrapping_sub(head);
    u64::from(pending) + u64::from(size) <= u64::from(buffer_size)
}

/// A contiguous run of bytes inside the ring buffer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct RingSpan {
    /// Offset from the start of the buffer.
    pub offset: u32,
    /// Length in bytes.
    pub len: u32,
}

/// The one or two runs that make up a range of the free-running byte stream.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct RingSpans {
    /// The run starting at the cursor (empty if the range is empty).
    pub first: RingSpan,
    /// The run from offset 0, present when the range wraps past the buffer end.
    pub second: Option<RingSpan>,
}

impl RingSpans {
    /// Total bytes in both runs.
    pub fn total_len(&self) -> u32 {
        let second = self.second.map_or(0, |s| s.len);
        self.first.len.saturating_add(second)
    }

    /// The non-empty runs, in stream order.
    pub fn iter(&self) -> impl Iterator<Item = RingSpan> {
        let first = (self.first.len != 0).then_some(self.first);
        first.into_iter().chain(self.second)
    }
}

/// The buffer runs holding stream bytes `[cursor, tail)`: what the host copies out for
/// one batch, or where the guest writes `tail - cursor` new bytes.
///
/// `buffer_size` must be a nonzero power of two, and `tail - cursor` (wrapping) may not
/// exceed it (the host treats that as fatal).
pub fn spans_between(cursor: u32, tail: u32, buffer_size: u32) -> Result<RingSpans, RingError> {
    if !buffer_size.is_power_of_two() {
        return Err(RingError::BufferSizeNotPowerOfTwo(u64::from(buffer_size)));
    }
    let pending = tail.wrapping_sub(cursor);
    if pending > buffer_size {
        return Err(RingError::PendingExceedsBuffer {
            pending,
            buffer_size,
        });
    }
    let offset = cursor & (buffer_size - 1);
    // offset < buffer_size, so this cannot underflow.
    let room = buffer_size - offset;
    if pending <= room {
        return Ok(RingSpans {
            first: RingSpan {
                offset,
                len: pending,
            },
            second: None,
        });
    }
    Ok(RingSpans {
        first: RingSpan { offset, len: room },
        second: Some(RingSpan {
            offset: 0,
            len: pending - room,
        }),
    })
}

/// The buffer runs to write `len` bytes at cursor `cur` (same as
/// `spans_between(cur, cur + len, buffer_size)`).
pub fn spans_for_write(cur: u32, len: u32, buffer_size: u32) -> Result<RingSpans, RingError> {
    spans_between(cur, cur.wrapping_add(len), buffer_size)
}
