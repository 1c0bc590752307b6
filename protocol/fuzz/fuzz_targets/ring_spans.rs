//! Ring layout validation and ring span arithmetic on arbitrary values.
//!
//! Input: a mode byte, then little-endian fields (missing bytes read as 0).
//! * mode bit 0 clear: ten u64 fields form a `RingCreateInfo` verbatim;
//!   set: ten u32 fields (small values, so valid layouts are easy to reach).
//! * mode bit 1: also build Mesa's layout with `RingLayout::for_buffer_size`.
//! * then three u32: cursor, tail, buffer size for `spans_between`, and one more
//!   u32 as a write length for `spans_for_write` / `has_space`.
//!
//! A layout that validates must hold regions inside the ring inside the resource,
//! 4-byte aligned and pairwise disjoint; spans must lie inside the buffer and add
//! up to `tail - cursor`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use venus_protocol::ring::{
    has_space, spans_between, spans_for_write, Region, RingCreateInfo, RingLayout, RingSpans,
};

struct Input<'a>(&'a [u8]);

impl Input<'_> {
    fn take<const N: usize>(&mut self) -> [u8; N] {
        let mut out = [0u8; N];
        let n = N.min(self.0.len());
        out[..n].copy_from_slice(&self.0[..n]);
        self.0 = &self.0[n..];
        out
    }
    fn u32(&mut self) -> u32 {
        u32::from_le_bytes(self.take())
    }
    fn u64(&mut self) -> u64 {
        u64::from_le_bytes(self.take())
    }
}

fn check_validated(info: &RingCreateInfo) {
    let Ok(v) = RingLayout::validate(info) else {
        return;
    };
    assert!(v.ring.begin == info.offset && v.ring.end <= info.resource_size);
    let regions = [v.head, v.tail, v.status, v.buffer, v.extra];
    for r in &regions {
        assert!(
            r.begin >= v.ring.begin && r.end <= v.ring.end,
            "{r:?} outside {v:?}"
        );
        assert_eq!((r.begin | r.end) & 3, 0, "{r:?} unaligned");
        assert!(r.begin <= r.end);
    }
    for (i, a) in regions.iter().enumerate() {
        for b in &regions[i + 1..] {
            assert!(disjoint(a, b), "{a:?} overlaps {b:?}");
        }
    }
    for word in [v.head, v.tail, v.status] {
        assert_eq!(word.len(), 4);
    }
    assert_eq!(v.buffer.len(), u64::from(v.buffer_size));
    assert!(v.buffer_size.is_power_of_two() && v.buffer_size <= 16 << 20);
}

fn disjoint(a: &Region, b: &Region) -> bool {
    a.begin >= b.end || a.end <= b.begin
}

fn check_spans(s: &RingSpans, cursor: u32, tail: u32, buffer_size: u32) {
    let pending = tail.wrapping_sub(cursor);
    assert_eq!(s.total_len(), pending);
    assert!(pending <= buffer_size);
    let mut sum = 0u64;
    for span in s.iter() {
        assert!(span.len > 0);
        assert!(u64::from(span.offset) + u64::from(span.len) <= u64::from(buffer_size));
        sum += u64::from(span.len);
    }
    assert_eq!(sum, u64::from(pending));
    assert_eq!(s.first.offset, cursor & buffer_size.wrapping_sub(1));
    if let Some(second) = s.second {
        assert_eq!(second.offset, 0);
        assert_eq!(
            u64::from(s.first.offset) + u64::from(s.first.len),
            u64::from(buffer_size)
        );
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let mut input = Input(rest);
    let mut f = [0u64; 10];
    for v in &mut f {
        *v = if mode & 1 == 0 {
            input.u64()
        } else {
            u64::from(input.u32())
        };
    }
    let info = RingCreateInfo {
        resource_size: f[0],
        offset: f[1],
        size: f[2],
        head_offset: f[3],
        tail_offset: f[4],
        status_offset: f[5],
        buffer_offset: f[6],
        buffer_size: f[7],
        extra_offset: f[8],
        extra_size: f[9],
    };
    check_validated(&info);

    if mode & 2 != 0 {
        if let Ok(layout) = RingLayout::for_buffer_size(f[7] as u32, f[9] as u32) {
            let end = f[1].checked_add(layout.shmem_size);
            let ci = layout.create_info(f[1], end.unwrap_or(u64::MAX));
            // Placed at any 4-aligned offset whose end fits 64 bits, Mesa's layout passes.
            if f[1] % 4 == 0 && end.is_some() {
                assert!(
                    RingLayout::validate(&ci).is_ok(),
                    "Mesa layout refused: {layout:?} at {}",
                    f[1]
                );
            }
            check_validated(&ci);
        }
    }

    let (cursor, tail, buffer_size, len) = (input.u32(), input.u32(), input.u32(), input.u32());
    if let Ok(s) = spans_between(cursor, tail, buffer_size) {
        check_spans(&s, cursor, tail, buffer_size);
    }
    if let Ok(s) = spans_for_write(cursor, len, buffer_size) {
        check_spans(&s, cursor, cursor.wrapping_add(len), buffer_size);
    }
    let _ = has_space(cursor, tail, len, buffer_size);
});
