//! Shared memory: a memfd mapped into this process, whose fd a client can map too.

use std::ffi::CStr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::AtomicU32;

use crate::error::{Error, Result};

/// The page size of this host.
pub fn page_size() -> u64 {
    // SAFETY: sysconf has no memory-safety preconditions.
    let v = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if v > 0 {
        v as u64
    } else {
        4096
    }
}

/// A memfd of `size` bytes (a multiple of the page size) mapped read-write and shared.
#[derive(Debug)]
pub struct Shmem {
    fd: OwnedFd,
    ptr: *mut u8,
    size: u64,
    /// The context quota this memory counts against, if any.
    charge: Option<crate::limits::Charge>,
}

// SAFETY: the mapping is plain shared memory; every access goes through raw
// pointers or atomics and the owner synchronizes as the protocol requires.
unsafe impl Send for Shmem {}
// SAFETY: see above.
unsafe impl Sync for Shmem {}

impl Shmem {
    /// Creates and maps `size` bytes (rounded up to `align`, a power of two ≥ the page size), zero-filled.
    pub fn new(name: &CStr, size: u64, align: u64) -> Result<Shmem> {
        let align = align.max(page_size());
        let size = size
            .max(1)
            .checked_add(align - 1)
            .map(|v| v & !(align - 1))
            .ok_or_else(|| Error::Unsupported(format!("shared memory size {size} too large")))?;
        let len = usize::try_from(size)
            .map_err(|_| Error::Unsupported(format!("shared memory size {size} too large")))?;
        // SAFETY: `name` is NUL-terminated; memfd_create has no other preconditions.
        let raw = unsafe { libc::memfd_create(name.as_ptr(), libc::MFD_CLOEXEC) };
        if raw < 0 {
            return Err(Error::last_os("memfd_create"));
        }
        // SAFETY: `raw` is a fresh fd we own.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        // SAFETY: plain syscall on our fd.
        if unsafe { libc::ftruncate(fd.as_raw_fd(), size as libc::off_t) } != 0 {
            return Err(Error::last_os("ftruncate"));
        }
        // Place the mapping at an address aligned to `align` (the host-pointer
        // import alignment, 16 KiB on Apple Silicon): reserve `len + align`,
        // map the memfd over the aligned part, release the rest.
        let reserve = len
            .checked_add(align as usize)
            .ok_or_else(|| Error::Unsupported(format!("shared memory size {size} too large")))?;
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
            return Err(Error::last_os("mmap (reserve)"));
        }
        let base_addr = base as usize;
        let aligned = (base_addr + align as usize - 1) & !(align as usize - 1);
        // SAFETY: mapping our own fd over part of our own reservation (MAP_FIXED
        // only replaces pages we reserved above); the result is checked.
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
            // SAFETY: releasing our own reservation.
            unsafe { libc::munmap(base, reserve) };
            return Err(Error::last_os("mmap"));
        }
        // Release the unused head and tail of the reservation.
        let head = aligned - base_addr;
        if head > 0 {
            // SAFETY: the part of our reservation before the mapping.
            unsafe { libc::munmap(base, head) };
        }
        let tail = reserve - head - len;
        if tail > 0 {
            // SAFETY: the part of our reservation after the mapping.
            unsafe { libc::munmap((aligned + len) as *mut libc::c_void, tail) };
        }
        Ok(Shmem {
            fd,
            ptr: ptr.cast(),
            size,
            charge: None,
        })
    }

    /// [`Shmem::new`], counted against `quota` (its rounded size) for as long as
    /// it lives; [`Error::Quota`] if the quota has no room for it.
    pub fn new_charged(
        name: &CStr,
        size: u64,
        align: u64,
        quota: &std::sync::Arc<crate::limits::MemoryQuota>,
    ) -> Result<Shmem> {
        let align = align.max(page_size());
        let rounded = size
            .max(1)
            .checked_add(align - 1)
            .map(|v| v & !(align - 1))
            .ok_or_else(|| Error::Unsupported(format!("shared memory size {size} too large")))?;
        let charge = quota.try_charge(rounded).ok_or_else(|| {
            Error::Quota(format!(
                "{rounded} more bytes of shared memory would pass the context's {} (in use {})",
                quota.limit(),
                quota.used()
            ))
        })?;
        let mut shm = Shmem::new(name, size, align)?;
        shm.charge = Some(charge);
        Ok(shm)
    }

    /// Mapped size in bytes.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The base address of the mapping.
    pub fn ptr(&self) -> *mut u8 {
        self.ptr
    }

    /// A duplicate of the fd, for a client.
    pub fn dup_fd(&self) -> Result<OwnedFd> {
        self.fd.try_clone().map_err(|source| Error::Os {
            what: "dup",
            source,
        })
    }

    /// Whether `[offset, offset + len)` lies inside the mapping.
    pub fn contains(&self, offset: u64, len: u64) -> bool {
        offset.checked_add(len).is_some_and(|end| end <= self.size)
    }

    /// Copies `len` bytes at `offset` out (the guest may be writing concurrently;
    /// we work on the copy). `None` if out of bounds.
    pub fn read(&self, offset: u64, len: u64) -> Option<Vec<u8>> {
        if !self.contains(offset, len) {
            return None;
        }
        let mut out = vec![0u8; usize::try_from(len).ok()?];
        // SAFETY: the range is inside the mapping (checked above) and `out` has `len` bytes.
        unsafe {
            std::ptr::copy_nonoverlapping(
                self.ptr.add(offset as usize),
                out.as_mut_ptr(),
                out.len(),
            )
        };
        Some(out)
    }

    /// Copies `data` in at `offset`; false if out of bounds.
    pub fn write(&self, offset: u64, data: &[u8]) -> bool {
        if !self.contains(offset, data.len() as u64) {
            return false;
        }
        // SAFETY: the range is inside the mapping (checked above).
        unsafe {
            std::ptr::copy_nonoverlapping(data.as_ptr(), self.ptr.add(offset as usize), data.len())
        };
        true
    }

    /// The u32 at `offset` as an atomic; `None` unless 4-aligned and inside.
    pub fn atomic_u32(&self, offset: u64) -> Option<&AtomicU32> {
        if !offset.is_multiple_of(4) || !self.contains(offset, 4) {
            return None;
        }
        // SAFETY: in bounds and 4-aligned (the mapping is page aligned); the memory
        // lives as long as `self`, and shared memory is only accessed atomically here.
        Some(unsafe { AtomicU32::from_ptr(self.ptr.add(offset as usize).cast()) })
    }
}

impl Drop for Shmem {
    fn drop(&mut self) {
        // SAFETY: unmapping exactly the mapping we created.
        unsafe { libc::munmap(self.ptr.cast(), self.size as usize) };
    }
}
