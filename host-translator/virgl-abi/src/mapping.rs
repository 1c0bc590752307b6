//! This library's own mapping of a blob's shared memory, which the VMM maps into
//! the guest (QEMU: a RAM region in the host-visible BAR).
//!
//! The mapping belongs to the resource, not to the Venus context: a guest that
//! destroys its context (or frees the device memory) while the blob is still
//! mapped leaves the VMM pointing at memory that stays valid. If the resource
//! itself goes away while the VMM may still have it mapped (unref or reset
//! without an unmap first), the range is replaced by anonymous memory instead of
//! being unmapped, so a stale VMM mapping can never fault the VMM.

use std::os::fd::{AsRawFd, BorrowedFd};
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::error::{AbiError, AbiResult};

/// Most ranges left behind for a VMM that released mapped blobs without
/// unmapping them (each is a mapping of its own, never reused). Past it new maps
/// are refused: the process's mapping count (`vm.max_map_count`, 65,530 by
/// default) is shared with the driver, whose JIT aborts when it runs out.
pub const MAX_ABANDONED: usize = 4096;

/// Ranges left behind so far (see [`MAX_ABANDONED`]).
static ABANDONED: AtomicUsize = AtomicUsize::new(0);

/// Ranges left behind so far in this process.
pub fn abandoned() -> usize {
    ABANDONED.load(Ordering::Relaxed)
}

/// Refuses a new mapping once `left_behind` ranges were abandoned.
fn room_for_another(left_behind: usize) -> AbiResult<()> {
    if left_behind >= MAX_ABANDONED {
        return Err(AbiError::TooLarge(format!(
            "the VMM released {left_behind} mapped blobs without unmapping them; \
             their ranges are kept for it, and no more blobs are mapped"
        )));
    }
    Ok(())
}

/// A shared mapping of `len` bytes of a blob's fd at an address aligned to the
/// sharing granularity.
#[derive(Debug)]
pub struct HostMapping {
    ptr: *mut u8,
    len: usize,
}

// SAFETY: the mapping is plain shared memory owned by this value; the pointer is
// only handed to the VMM and unmapped by the owner.
unsafe impl Send for HostMapping {}

impl HostMapping {
    /// Maps `len` bytes of `fd` from offset 0, read-write and shared, at an address
    /// that is a multiple of `align` (a power of two, at least the page size).
    pub fn map(fd: BorrowedFd<'_>, len: u64, align: u64) -> AbiResult<HostMapping> {
        let too_large = || AbiError::TooLarge(format!("mapping of {len} bytes"));
        room_for_another(abandoned())?;
        if len == 0 || !align.is_power_of_two() || !len.is_multiple_of(align) {
            return Err(AbiError::Invalid(format!(
                "mapping of {len} bytes is not a multiple of the {align}-byte granularity"
            )));
        }
        let len = usize::try_from(len).map_err(|_| too_large())?;
        let align = usize::try_from(align).map_err(|_| too_large())?;
        let reserve = len.checked_add(align).ok_or_else(too_large)?;
        // SAFETY: an anonymous PROT_NONE reservation; the result is checked.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                reserve,
                libc::PROT_NONE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                -1,
                0,
            )
        };
        if base == libc::MAP_FAILED {
            return Err(AbiError::TooLarge(format!(
                "cannot reserve {reserve} bytes of address space: {}",
                std::io::Error::last_os_error()
            )));
        }
        let base_addr = base as usize;
        // Cannot overflow: the reservation itself ends at base + reserve.
        let aligned = (base_addr + align - 1) & !(align - 1);
        // SAFETY: maps the caller's fd over part of our own reservation (MAP_FIXED
        // replaces only pages reserved above); the result is checked.
        let ptr = unsafe {
            libc::mmap(
                aligned as *mut libc::c_void,
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_FIXED,
                fd.as_raw_fd(),
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            let err = std::io::Error::last_os_error();
            // SAFETY: releases our own reservation.
            unsafe { libc::munmap(base, reserve) };
            return Err(AbiError::Invalid(format!("cannot map the blob: {err}")));
        }
        let head = aligned - base_addr;
        if head > 0 {
            // SAFETY: the reserved pages before the mapping.
            unsafe { libc::munmap(base, head) };
        }
        let tail = reserve - head - len;
        if tail > 0 {
            // SAFETY: the reserved pages after the mapping.
            unsafe { libc::munmap((aligned + len) as *mut libc::c_void, tail) };
        }
        Ok(HostMapping {
            ptr: ptr.cast(),
            len,
        })
    }

    /// The base address.
    pub fn ptr(&self) -> *mut u8 {
        self.ptr
    }

    /// Mapped bytes.
    pub fn size(&self) -> u64 {
        self.len as u64
    }

    /// Unmaps: the VMM has said it no longer uses the range.
    pub fn unmap(self) {
        // SAFETY: exactly the mapping we created; the VMM no longer uses it.
        unsafe { libc::munmap(self.ptr.cast(), self.len) };
        std::mem::forget(self);
    }
}

impl Drop for HostMapping {
    /// Dropped without [`HostMapping::unmap`]: the VMM may still map the range into
    /// the guest. Put anonymous memory in its place (the blob's pages are released,
    /// the addresses stay valid); this address range is then never reused.
    fn drop(&mut self) {
        tracing::warn!(
            len = self.len,
            "blob released while still mapped by the VMM; its range now holds anonymous memory"
        );
        // SAFETY: replaces exactly our own mapping with fresh anonymous pages.
        let r = unsafe {
            libc::mmap(
                self.ptr.cast(),
                self.len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED | libc::MAP_NORESERVE,
                -1,
                0,
            )
        };
        if r == libc::MAP_FAILED {
            tracing::error!("cannot replace a released blob mapping; leaving it mapped");
        }
        if ABANDONED.fetch_add(1, Ordering::Relaxed) + 1 == MAX_ABANDONED {
            tracing::error!(
                "{MAX_ABANDONED} blob ranges kept for a VMM that did not unmap them: \
                 no more blobs will be mapped in this process"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::{AsFd, FromRawFd, OwnedFd};

    fn memfd(len: u64) -> OwnedFd {
        // SAFETY: plain syscalls with valid arguments; the fd is checked and owned.
        unsafe {
            let fd = libc::memfd_create(c"virgl-abi-test".as_ptr(), libc::MFD_CLOEXEC);
            assert!(fd >= 0);
            assert_eq!(libc::ftruncate(fd, len as libc::off_t), 0);
            OwnedFd::from_raw_fd(fd)
        }
    }

    #[test]
    fn mappings_are_aligned_shared_and_survive_a_drop() {
        let fd = memfd(65536);
        let a = HostMapping::map(fd.as_fd(), 65536, 65536).unwrap();
        assert_eq!(a.ptr() as usize % 65536, 0);
        let b = HostMapping::map(fd.as_fd(), 16384, 16384).unwrap();
        // SAFETY: both mappings are at least 4 bytes long and live here.
        unsafe {
            a.ptr().write(0x5a);
            assert_eq!(b.ptr().read(), 0x5a, "two mappings of one fd share pages");
        }
        b.unmap();
        let p = a.ptr();
        drop(a);
        // SAFETY: the dropped mapping's range was replaced with anonymous memory.
        unsafe {
            assert_eq!(p.read(), 0, "anonymous memory in place");
            p.write(1);
        }
        assert!(HostMapping::map(fd.as_fd(), 4096 + 1, 4096).is_err());
        assert!(HostMapping::map(fd.as_fd(), 4096, 3).is_err());
    }

    #[test]
    fn abandoned_ranges_are_counted_and_bounded() {
        let fd = memfd(4096);
        let before = abandoned();
        let m = HostMapping::map(fd.as_fd(), 4096, 4096).unwrap();
        drop(m);
        assert!(abandoned() > before, "a dropped mapping is counted");
        let m = HostMapping::map(fd.as_fd(), 4096, 4096).unwrap();
        m.unmap();
        assert!(room_for_another(MAX_ABANDONED - 1).is_ok());
        let refused = room_for_another(MAX_ABANDONED);
        assert!(
            matches!(refused, Err(AbiError::TooLarge(_))),
            "past the bound new maps are refused: {refused:?}"
        );
    }
}
