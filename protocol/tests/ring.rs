//! Tests of the Venus ring layout, the host's layout checks and the counter arithmetic.

use proptest::prelude::*;
use venus_protocol::ring::{
    has_space, seqno_passed, seqno_passed_at, spans_between, spans_for_write, Region,
    RingCreateInfo, RingError, RingLayout, RingSpan, BUFFER_OFFSET, HEAD_OFFSET,
    INSTANCE_RING_BUFFER_SIZE, INSTANCE_RING_DIRECT_SIZE, MAX_BUFFER_SIZE, RING_EXTRA_SIZE,
    STATUS_ALIVE, STATUS_FATAL, STATUS_IDLE, STATUS_OFFSET, TAIL_OFFSET, TLS_RING_BUFFER_SIZE,
};

fn mesa_instance_info() -> RingCreateInfo {
    let layout = RingLayout::instance_ring();
    layout.create_info(0, layout.shmem_size)
}

#[test]
fn constants() {
    assert_eq!(
        (HEAD_OFFSET, TAIL_OFFSET, STATUS_OFFSET, BUFFER_OFFSET),
        (0, 64, 128, 192)
    );
    assert_eq!((STATUS_IDLE, STATUS_FATAL, STATUS_ALIVE), (1, 2, 4));
    assert_eq!(INSTANCE_RING_DIRECT_SIZE, 8 * 1024);
    assert_eq!(MAX_BUFFER_SIZE, 16 << 20);
}

#[test]
fn mesa_shmem_sizes() {
    let instance = RingLayout::for_buffer_size(INSTANCE_RING_BUFFER_SIZE, RING_EXTRA_SIZE).unwrap();
    assert_eq!(instance.shmem_size, 131_268);
    assert_eq!(instance.extra_offset, 192 + 131_072);
    assert_eq!(instance, RingLayout::instance_ring());

    let tls = RingLayout::for_buffer_size(TLS_RING_BUFFER_SIZE, RING_EXTRA_SIZE).unwrap();
    assert_eq!(tls.shmem_size, 16_580);
    assert_eq!(tls, RingLayout::tls_ring());

    let no_extra = RingLayout::for_buffer_size(4096, 0).unwrap();
    assert_eq!(no_extra.shmem_size, 192 + 4096);
}

#[test]
fn for_buffer_size_rejects_what_the_host_rejects() {
    assert_eq!(
        RingLayout::for_buffer_size(0, 4),
        Err(RingError::BufferSizeNotPowerOfTwo(0))
    );
    assert_eq!(
        RingLayout::for_buffer_size(3000, 4),
        Err(RingError::BufferSizeNotPowerOfTwo(3000))
    );
    assert_eq!(
        RingLayout::for_buffer_size(32 << 20, 4),
        Err(RingError::BufferTooLarge(32 << 20))
    );
    assert!(RingLayout::for_buffer_size(16 << 20, 4).is_ok());
    assert!(matches!(
        RingLayout::for_buffer_size(4096, 6),
        Err(RingError::Unaligned {
            region: "extra",
            ..
        })
    ));
}

#[test]
fn validate_mesa_layout() {
    let v = RingLayout::validate(&mesa_instance_info()).unwrap();
    assert_eq!(v.head, Region { begin: 0, end: 4 });
    assert_eq!(v.tail, Region { begin: 64, end: 68 });
    assert_eq!(
        v.status,
        Region {
            begin: 128,
            end: 132
        }
    );
    assert_eq!(
        v.buffer,
        Region {
            begin: 192,
            end: 192 + 131_072
        }
    );
    assert_eq!(
        v.extra,
        Region {
            begin: 131_264,
            end: 131_268
        }
    );
    assert_eq!(v.buffer_size, 131_072);
    assert_eq!(v.ring.len(), 131_268);
}

#[test]
fn validate_at_offset_in_larger_resource() {
    let layout = RingLayout::tls_ring();
    let info = layout.create_info(4096, 65_536);
    let v = RingLayout::validate(&info).unwrap();
    assert_eq!(v.head.begin, 4096);
    assert_eq!(v.buffer.begin, 4096 + 192);
    // Same ring does not fit at the end of the resource.
    let info = layout.create_info(65_536 - 16_000, 65_536);
    assert!(matches!(
        RingLayout::validate(&info),
        Err(RingError::RingOutsideResource { .. })
    ));
}

#[test]
fn validate_rejections() {
    let base = mesa_instance_info();

    let mut i = base;
    i.resource_size = base.size - 1;
    assert!(matches!(
        RingLayout::validate(&i),
        Err(RingError::RingOutsideResource { .. })
    ));

    let mut i = base;
    i.extra_offset = base.size - 2;
    assert!(matches!(
        RingLayout::validate(&i),
        Err(RingError::RegionOutsideRing {
            region: "extra",
            ..
        })
    ));

    let mut i = base;
    i.tail_offset = 66;
    assert!(matches!(
        RingLayout::validate(&i),
        Err(RingError::Unaligned { region: "tail", .. })
    ));

    let mut i = base;
    i.status_offset = 192; // inside the buffer
    assert_eq!(
        RingLayout::validate(&i),
        Err(RingError::Overlap {
            first: "status",
            second: "buffer"
        })
    );

    let mut i = base;
    i.tail_offset = 0;
    assert_eq!(
        RingLayout::validate(&i),
        Err(RingError::Overlap {
            first: "head",
            second: "tail"
        })
    );

    // Empty extra region strictly inside the buffer overlaps it (vkr_region_is_disjoint).
    let mut i = base;
    i.extra_offset = 1024;
    i.extra_size = 0;
    assert_eq!(
        RingLayout::validate(&i),
        Err(RingError::Overlap {
            first: "buffer",
            second: "extra"
        })
    );
    // ...but an empty extra at the buffer's end is fine.
    i.extra_offset = 192 + 131_072;
    assert!(RingLayout::validate(&i).is_ok());

    let mut i = base;
    i.buffer_size = 65_536 + 4096;
    assert_eq!(
        RingLayout::validate(&i),
        Err(RingError::BufferSizeNotPowerOfTwo(65_536 + 4096))
    );

    let mut i = base;
    i.buffer_size = 0;
    i.extra_offset = 192; // keep regions disjoint
    assert_eq!(
        RingLayout::validate(&i),
        Err(RingError::BufferSizeNotPowerOfTwo(0))
    );

    let mut i = base;
    i.buffer_size = 32 << 20;
    i.extra_offset = 192 + (32 << 20);
    i.size = i.extra_offset + 4;
    i.resource_size = i.size;
    assert_eq!(
        RingLayout::validate(&i),
        Err(RingError::BufferTooLarge(32 << 20))
    );
}

#[test]
fn validate_overflow_is_an_error() {
    let mut i = mesa_instance_info();
    i.offset = u64::MAX - 8;
    i.resource_size = u64::MAX;
    assert!(matches!(
        RingLayout::validate(&i),
        Err(RingError::Overflow { region: "ring", .. })
    ));

    let mut i = mesa_instance_info();
    i.buffer_size = u64::MAX;
    assert!(matches!(
        RingLayout::validate(&i),
        Err(RingError::Overflow {
            region: "buffer",
            ..
        })
    ));

    let mut i = mesa_instance_info();
    i.head_offset = u64::MAX;
    assert!(matches!(
        RingLayout::validate(&i),
        Err(RingError::Overflow { region: "head", .. })
    ));
}

#[test]
fn seqno_wraps() {
    assert!(seqno_passed(100, 100));
    assert!(seqno_passed(101, 100));
    assert!(!seqno_passed(99, 100));
    // Head has wrapped past 0 while the seqno was issued before the wrap.
    assert!(seqno_passed(8, u32::MAX - 8));
    assert!(!seqno_passed(u32::MAX - 8, 8));

    // Mesa's three-argument form with the cursor.
    assert!(seqno_passed_at(8, u32::MAX - 8, 16));
    assert!(!seqno_passed_at(u32::MAX - 16, u32::MAX - 8, 16));
    assert!(seqno_passed_at(5, 5, 5));
}

/// Mesa's vn_ring_ge_seqno, transcribed as a reference for the property test.
fn mesa_ge_seqno(cur: u32, a: u32, b: u32) -> bool {
    if a >= b {
        cur >= a || cur < b
    } else {
        cur >= a && cur < b
    }
}

proptest! {
    #[test]
    fn seqno_passed_at_matches_mesa(cur: u32, a: u32, b: u32) {
        prop_assert_eq!(seqno_passed_at(a, b, cur), mesa_ge_seqno(cur, a, b));
    }

    #[test]
    fn seqno_passed_agrees_within_a_buffer(
        tail: u32,
        head_back in 0u32..(16 << 20),
        seq_back in 0u32..(16 << 20),
    ) {
        let head = tail.wrapping_sub(head_back);
        let seqno = tail.wrapping_sub(seq_back);
        prop_assert_eq!(seqno_passed(head, seqno), seqno_passed_at(head, seqno, tail));
    }

    #[test]
    fn spans_cover_the_range(cursor: u32, len in 0u32..=4096, order in 2u32..13) {
        let size = 1u32 << order;
        let spans = spans_between(cursor, cursor.wrapping_add(len), size);
        if len > size {
            prop_assert!(spans.is_err());
        } else {
            let spans = spans.unwrap();
            prop_assert_eq!(spans.total_len(), len);
            let mut pos = cursor;
            for s in spans.iter() {
                prop_assert_eq!(s.offset, pos & (size - 1));
                prop_assert!(u64::from(s.offset) + u64::from(s.len) <= u64::from(size));
                pos = pos.wrapping_add(s.len);
            }
        }
    }
}

#[test]
fn spans_without_wrap() {
    let s = spans_between(100, 200, 1024).unwrap();
    assert_eq!(
        s.first,
        RingSpan {
            offset: 100,
            len: 100
        }
    );
    assert_eq!(s.second, None);
    assert_eq!(s.iter().count(), 1);

    // Exactly up to the buffer end is still one run.
    let s = spans_between(1000, 1024, 1024).unwrap();
    assert_eq!(
        s.first,
        RingSpan {
            offset: 1000,
            len: 24
        }
    );
    assert_eq!(s.second, None);

    // Empty range.
    let s = spans_between(77, 77, 1024).unwrap();
    assert_eq!(s.total_len(), 0);
    assert_eq!(s.iter().count(), 0);
}

#[test]
fn spans_with_wrap() {
    let s = spans_between(1000, 1100, 1024).unwrap();
    assert_eq!(
        s.first,
        RingSpan {
            offset: 1000,
            len: 24
        }
    );
    assert_eq!(s.second, Some(RingSpan { offset: 0, len: 76 }));

    // Counter wrap at 2^32 (also a buffer wrap).
    let s = spans_between(u32::MAX - 9, 10, 1024).unwrap();
    assert_eq!(
        s.first,
        RingSpan {
            offset: 1014,
            len: 10
        }
    );
    assert_eq!(s.second, Some(RingSpan { offset: 0, len: 10 }));

    // A full buffer from a non-zero offset.
    let s = spans_between(512, 512 + 1024, 1024).unwrap();
    assert_eq!(
        s.first,
        RingSpan {
            offset: 512,
            len: 512
        }
    );
    assert_eq!(
        s.second,
        Some(RingSpan {
            offset: 0,
            len: 512
        })
    );

    let w = spans_for_write(u32::MAX - 9, 20, 1024).unwrap();
    assert_eq!(w, spans_between(u32::MAX - 9, 10, 1024).unwrap());
}

#[test]
fn spans_errors() {
    assert_eq!(
        spans_between(0, 1025, 1024),
        Err(RingError::PendingExceedsBuffer {
            pending: 1025,
            buffer_size: 1024
        })
    );
    // tail behind cursor reads as a huge pending count.
    assert!(matches!(
        spans_between(10, 5, 1024),
        Err(RingError::PendingExceedsBuffer { .. })
    ));
    assert_eq!(
        spans_between(0, 1, 1000),
        Err(RingError::BufferSizeNotPowerOfTwo(1000))
    );
    assert_eq!(
        spans_between(0, 0, 0),
        Err(RingError::BufferSizeNotPowerOfTwo(0))
    );
}

#[test]
fn space() {
    assert!(has_space(0, 0, 1024, 1024));
    assert!(!has_space(0, 0, 1025, 1024));
    assert!(has_space(1000, 500, 524, 1024));
    assert!(!has_space(1000, 500, 525, 1024));
    // Across the counter wrap.
    assert!(has_space(5, u32::MAX - 4, 1014, 1024));
    assert!(!has_space(5, u32::MAX - 4, 1015, 1024));
    // The sum is computed without wrapping (Mesa's u32 sum would wrap here).
    assert!(has_space(0, 0, u32::MAX, u32::MAX));
    assert!(!has_space(1, 0, u32::MAX, u32::MAX));
}
