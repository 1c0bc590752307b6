//! Guest memory the VMM hands over as an iovec array (a resource's backing).

use crate::error::{invalid, AbiError, AbiResult};

/// Most iovecs one list may have (QEMU caps a backing at 16,384 entries).
pub const MAX_IOVS: usize = 1 << 16;

/// A copy of an iovec array: segment addresses, lengths and where each starts.
#[derive(Debug)]
pub struct IovList {
    /// (address, length) per non-empty segment.
    segments: Vec<(usize, usize)>,
    /// Byte offset of each segment in the list.
    starts: Vec<u64>,
    total: u64,
}

impl IovList {
    /// Copies `count` iovecs from `iov`.
    ///
    /// # Safety
    ///
    /// `iov` points to `count` readable iovecs, and the memory they describe stays
    /// mapped and writable for as long as the list is used (the VMM's promise for
    /// a backing until it is detached, or for the duration of a call).
    pub unsafe fn from_raw(iov: *const libc::iovec, count: usize) -> AbiResult<IovList> {
        if count > MAX_IOVS {
            return Err(AbiError::TooLarge(format!(
                "{count} iovecs (at most {MAX_IOVS})"
            )));
        }
        if count > 0 && iov.is_null() {
            return Err(invalid!("NULL iovec array with {count} entries"));
        }
        let raw: &[libc::iovec] = if count == 0 {
            &[]
        } else {
            // SAFETY: non-null and `count` entries long, as the caller promises.
            unsafe { std::slice::from_raw_parts(iov, count) }
        };
        let mut segments = Vec::with_capacity(count);
        let mut starts = Vec::with_capacity(count);
        let mut total = 0u64;
        for v in raw {
            if v.iov_len == 0 {
                continue;
            }
            if v.iov_base.is_null() {
                return Err(invalid!("iovec with a NULL base and {} bytes", v.iov_len));
            }
            let base = v.iov_base as usize;
            if base.checked_add(v.iov_len).is_none() {
                return Err(invalid!("iovec wraps the address space"));
            }
            starts.push(total);
            segments.push((base, v.iov_len));
            total = total
                .checked_add(v.iov_len as u64)
                .ok_or_else(|| invalid!("iovec lengths overflow"))?;
        }
        Ok(IovList {
            segments,
            starts,
            total,
        })
    }

    /// Total bytes.
    pub fn total(&self) -> u64 {
        self.total
    }

    /// Calls `f(address, segment_offset, chunk_len, done)` for every piece of
    /// `[offset, offset + len)`; false (and nothing done) if it is out of range.
    fn for_each_piece(
        &self,
        offset: u64,
        len: usize,
        mut f: impl FnMut(usize, usize, usize),
    ) -> bool {
        let Some(end) = offset.checked_add(len as u64) else {
            return false;
        };
        if end > self.total {
            return false;
        }
        if len == 0 {
            return true;
        }
        // The last segment starting at or before `offset`.
        let mut idx = match self.starts.binary_search(&offset) {
            Ok(i) => i,
            Err(i) => i.saturating_sub(1),
        };
        let mut pos = offset;
        let mut done = 0usize;
        while done < len {
            let (Some(&(base, seg_len)), Some(&start)) =
                (self.segments.get(idx), self.starts.get(idx))
            else {
                return false;
            };
            // In range: `pos` lies in this segment (pos < start + seg_len).
            let inner = (pos - start) as usize;
            let n = (seg_len - inner).min(len - done);
            f(base + inner, done, n);
            done += n;
            pos += n as u64;
            idx += 1;
        }
        true
    }

    /// Copies `out.len()` bytes at `offset` out of guest memory; false if out of range.
    pub fn read(&self, offset: u64, out: &mut [u8]) -> bool {
        let dst = out.as_mut_ptr();
        self.for_each_piece(offset, out.len(), |addr, done, n| {
            // SAFETY: `addr..addr+n` lies inside one segment (checked by
            // `for_each_piece`), which the VMM keeps mapped (the `from_raw`
            // contract); `done + n <= out.len()`.
            unsafe { std::ptr::copy_nonoverlapping(addr as *const u8, dst.add(done), n) }
        })
    }

    /// Copies `data` into guest memory at `offset`; false if out of range.
    pub fn write(&self, offset: u64, data: &[u8]) -> bool {
        let src = data.as_ptr();
        self.for_each_piece(offset, data.len(), |addr, done, n| {
            // SAFETY: as in `read`, with the segment writable (the `from_raw` contract).
            unsafe { std::ptr::copy_nonoverlapping(src.add(done), addr as *mut u8, n) }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pieces_cross_segments_and_bounds_are_checked() {
        let mut a = [0u8; 5];
        let mut b = [0u8; 0];
        let mut c = [0u8; 7];
        let iov = [
            libc::iovec {
                iov_base: a.as_mut_ptr().cast(),
                iov_len: a.len(),
            },
            libc::iovec {
                iov_base: b.as_mut_ptr().cast(),
                iov_len: b.len(),
            },
            libc::iovec {
                iov_base: c.as_mut_ptr().cast(),
                iov_len: c.len(),
            },
        ];
        // SAFETY: the arrays outlive the list.
        let list = unsafe { IovList::from_raw(iov.as_ptr(), iov.len()) }.unwrap();
        assert_eq!(list.total(), 12);
        assert!(list.write(3, &[1, 2, 3, 4]));
        let mut out = [0u8; 6];
        assert!(list.read(2, &mut out));
        assert_eq!(out, [0, 1, 2, 3, 4, 0]);
        assert!(list.write(11, &[9]));
        assert!(!list.write(11, &[9, 9]), "past the end");
        assert!(!list.read(u64::MAX, &mut [0u8; 2]), "offset overflow");
        assert!(list.read(12, &mut []), "empty read at the end");
        drop(list);
        assert_eq!((a, c), ([0, 0, 0, 1, 2], [3, 4, 0, 0, 0, 0, 9]));
        // SAFETY: a NULL array is refused before it is read.
        assert!(unsafe { IovList::from_raw(std::ptr::null(), 3) }.is_err());
        // SAFETY: the count is refused before the pointer is read.
        assert!(unsafe { IovList::from_raw(iov.as_ptr(), MAX_IOVS + 1) }.is_err());
    }
}
