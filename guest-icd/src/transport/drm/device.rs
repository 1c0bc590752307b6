//! A virtio_gpu DRM render node and the ioctls the transport issues on it, each as
//! a safe method. All of the transport's `unsafe` lives here.
//!
//! Like libdrm's `drmIoctl`, every ioctl is retried while it fails with `EINTR` or
//! `EAGAIN`; any other failure comes back as an [`io::Error`] that names the ioctl.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use super::uapi::*;

/// An open render node.
#[derive(Debug)]
pub struct Device {
    fd: OwnedFd,
}

/// What RESOURCE_CREATE_BLOB handed back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Blob {
    /// The GEM handle (this file's name for the buffer object).
    pub bo_handle: u32,
    /// The host resource id (what Venus commands name).
    pub res_handle: u32,
}

/// An ioctl failure with the name of the ioctl in its message (the kind is kept,
/// so callers can still tell e.g. `ENODEV` apart).
fn named(what: &str, err: io::Error) -> io::Error {
    io::Error::new(err.kind(), format!("{what}: {err}"))
}

impl Device {
    /// Opens `path` read-write, close-on-exec (as Mesa opens its render node).
    pub fn open(path: &Path) -> io::Result<Device> {
        let c = CString::new(path.as_os_str().as_bytes())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path has a NUL byte"))?;
        // SAFETY: `c` is a valid NUL-terminated string that outlives the call.
        let fd = unsafe { libc::open(c.as_ptr(), libc::O_RDWR | libc::O_CLOEXEC) };
        if fd < 0 {
            let err = io::Error::last_os_error();
            return Err(named(&format!("opening {}", path.display()), err));
        }
        // SAFETY: `fd` was just returned by open and is owned by nobody else.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        Ok(Device { fd })
    }

    /// Issues `request` with `arg`, retrying on EINTR/EAGAIN.
    ///
    /// # Safety
    /// `request` must be an ioctl whose argument is a `T` (size and layout), and
    /// every pointer stored inside `arg` must be valid for what the kernel does with
    /// it during the call (reads or writes of the sizes given alongside).
    unsafe fn ioctl<T>(&self, request: libc::c_ulong, arg: &mut T) -> io::Result<()> {
        loop {
            // SAFETY: `arg` is a live, exclusive `T` for the duration of the call;
            // the caller vouches for `request` and for the pointers inside `arg`.
            let r = unsafe {
                libc::ioctl(
                    self.fd.as_raw_fd(),
                    request as _,
                    (arg as *mut T).cast::<libc::c_void>(),
                )
            };
            if r != -1 {
                return Ok(());
            }
            let err = io::Error::last_os_error();
            match err.raw_os_error() {
                Some(libc::EINTR) | Some(libc::EAGAIN) => continue,
                _ => return Err(err),
            }
        }
    }

    /// `VERSION`: the kernel driver's name (e.g. `virtio_gpu`).
    pub fn driver_name(&self) -> io::Result<String> {
        let mut name = [0u8; 64];
        let mut args = DrmVersion {
            version_major: 0,
            version_minor: 0,
            version_patchlevel: 0,
            name_len: name.len(),
            name: name.as_mut_ptr().cast(),
            date_len: 0,
            date: std::ptr::null_mut(),
            desc_len: 0,
            desc: std::ptr::null_mut(),
        };
        // SAFETY: VERSION takes a drm_version; `name` points at `name_len` writable
        // bytes, which the kernel writes at most; `date` and `desc` have length 0,
        // so the kernel writes nothing through their null pointers.
        unsafe { self.ioctl(DRM_IOCTL_VERSION, &mut args) }
            .map_err(|e| named("DRM_IOCTL_VERSION", e))?;
        // name_len comes back as the full length, which may exceed our buffer.
        let len = args.name_len.min(name.len());
        Ok(String::from_utf8_lossy(&name[..len]).into_owned())
    }

    /// `GETPARAM`: the parameter's value; 0 when the kernel does not know it
    /// (EINVAL) or reports it absent, as Mesa treats both.
    pub fn getparam(&self, param: u64) -> io::Result<u64> {
        // The kernel writes an `int` at `value`; a zeroed 8-byte buffer reads back
        // right whichever width it writes (on little-endian, the only kind of
        // machine virtio-gpu Venus runs on in practice; big-endian reads the int).
        let mut value = [0u8; 8];
        let mut args = DrmVirtgpuGetparam {
            param,
            value: value.as_mut_ptr() as u64,
        };
        // SAFETY: GETPARAM takes a drm_virtgpu_getparam; `value` points at 8
        // writable bytes and the kernel writes at most sizeof(int) there.
        match unsafe { self.ioctl(DRM_IOCTL_VIRTGPU_GETPARAM, &mut args) } {
            Ok(()) => {
                let [a, b, c, d, ..] = value;
                Ok(u64::from(u32::from_ne_bytes([a, b, c, d])))
            }
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => Ok(0),
            Err(e) => Err(named("DRM_IOCTL_VIRTGPU_GETPARAM", e)),
        }
    }

    /// `GET_CAPS` into `buf` (the kernel copies at most the host's capset size, so
    /// the rest of `buf` keeps what it held).
    pub fn get_caps(&self, id: u32, version: u32, buf: &mut [u8]) -> io::Result<()> {
        let size = u32::try_from(buf.len())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "capset buffer too big"))?;
        let mut args = DrmVirtgpuGetCaps {
            cap_set_id: id,
            cap_set_ver: version,
            addr: buf.as_mut_ptr() as u64,
            size,
            pad: 0,
        };
        // SAFETY: GET_CAPS takes a drm_virtgpu_get_caps; `addr` points at `size`
        // writable bytes (`buf`), which the kernel writes at most.
        unsafe { self.ioctl(DRM_IOCTL_VIRTGPU_GET_CAPS, &mut args) }
            .map_err(|e| named("DRM_IOCTL_VIRTGPU_GET_CAPS", e))
    }

    /// `CONTEXT_INIT` with `params` (`VIRTGPU_CONTEXT_PARAM_*`, value pairs).
    pub fn context_init(&self, params: &[DrmVirtgpuContextSetParam]) -> io::Result<()> {
        let num_params = u32::try_from(params.len())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "too many params"))?;
        let mut args = DrmVirtgpuContextInit {
            num_params,
            pad: 0,
            ctx_set_params: params.as_ptr() as u64,
        };
        // SAFETY: CONTEXT_INIT takes a drm_virtgpu_context_init; `ctx_set_params`
        // points at `num_params` readable entries (`params`), which the kernel reads.
        unsafe { self.ioctl(DRM_IOCTL_VIRTGPU_CONTEXT_INIT, &mut args) }
            .map_err(|e| named("DRM_IOCTL_VIRTGPU_CONTEXT_INIT", e))
    }

    /// `RESOURCE_CREATE_BLOB` without creation commands.
    pub fn create_blob(
        &self,
        blob_mem: u32,
        blob_flags: u32,
        size: u64,
        blob_id: u64,
    ) -> io::Result<Blob> {
        let mut args = DrmVirtgpuResourceCreateBlob {
            blob_mem,
            blob_flags,
            size,
            blob_id,
            ..Default::default()
        };
        // SAFETY: RESOURCE_CREATE_BLOB takes a drm_virtgpu_resource_create_blob;
        // `cmd` is null with `cmd_size` 0, so the kernel reads no user memory.
        unsafe { self.ioctl(DRM_IOCTL_VIRTGPU_RESOURCE_CREATE_BLOB, &mut args) }
            .map_err(|e| named("DRM_IOCTL_VIRTGPU_RESOURCE_CREATE_BLOB", e))?;
        Ok(Blob {
            bo_handle: args.bo_handle,
            res_handle: args.res_handle,
        })
    }

    /// `MAP` then `mmap`: maps `len` bytes of the buffer object shared read-write.
    pub fn map(&self, bo_handle: u32, len: usize) -> io::Result<*mut u8> {
        let mut args = DrmVirtgpuMap {
            handle: bo_handle,
            ..Default::default()
        };
        // SAFETY: MAP takes a drm_virtgpu_map (no pointers).
        unsafe { self.ioctl(DRM_IOCTL_VIRTGPU_MAP, &mut args) }
            .map_err(|e| named("DRM_IOCTL_VIRTGPU_MAP", e))?;
        let offset = libc::off_t::try_from(args.offset).map_err(|_| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "DRM_IOCTL_VIRTGPU_MAP offset {:#x} out of range",
                    args.offset
                ),
            )
        })?;
        // SAFETY: a fresh shared mapping at an address the kernel picks (no hint),
        // of our DRM fd at the offset the kernel just gave for this object; `len` is
        // checked nonzero by the caller; nothing aliases the new mapping.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                self.fd.as_raw_fd(),
                offset,
            )
        };
        if ptr == libc::MAP_FAILED {
            let err = io::Error::last_os_error();
            return Err(named(&format!("mmap of {len} bytes at {offset:#x}"), err));
        }
        Ok(ptr.cast())
    }

    /// `GEM_CLOSE`: drops this file's handle (the host resource goes with the last
    /// reference, i.e. once no mapping is left either).
    pub fn gem_close(&self, bo_handle: u32) -> io::Result<()> {
        let mut args = DrmGemClose {
            handle: bo_handle,
            pad: 0,
        };
        // SAFETY: GEM_CLOSE takes a drm_gem_close (no pointers).
        unsafe { self.ioctl(DRM_IOCTL_GEM_CLOSE, &mut args) }
            .map_err(|e| named("DRM_IOCTL_GEM_CLOSE", e))
    }

    /// `EXECBUFFER` of `commands` on fence ring `ring_idx`, no buffer objects, no
    /// fences.
    pub fn execbuffer(&self, commands: &[u8], ring_idx: u32) -> io::Result<()> {
        let size = u32::try_from(commands.len())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "command stream too big"))?;
        let mut args = DrmVirtgpuExecbuffer {
            flags: VIRTGPU_EXECBUF_RING_IDX,
            size,
            command: commands.as_ptr() as u64,
            ring_idx,
            ..Default::default()
        };
        // SAFETY: EXECBUFFER takes a drm_virtgpu_execbuffer; `command` points at
        // `size` readable bytes (`commands`), which the kernel copies; no buffer
        // objects or syncobjs are passed (null pointers with zero counts).
        unsafe { self.ioctl(DRM_IOCTL_VIRTGPU_EXECBUFFER, &mut args) }
            .map_err(|e| named("DRM_IOCTL_VIRTGPU_EXECBUFFER", e))
    }
}

/// Unmaps a mapping made by [`Device::map`].
///
/// # Safety
/// `ptr`/`len` must be exactly a mapping returned by [`Device::map`] that is not
/// unmapped yet, and nothing may use it afterwards.
pub unsafe fn unmap(ptr: *mut u8, len: usize) {
    // SAFETY: per the contract, a live mapping of `len` bytes at `ptr`.
    let r = unsafe { libc::munmap(ptr.cast(), len) };
    if r != 0 {
        tracing::warn!("munmap: {}", io::Error::last_os_error());
    }
}

/// The guest's page size (4096 if sysconf cannot say).
pub fn page_size() -> u64 {
    // SAFETY: sysconf only reads its argument.
    let v = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    u64::try_from(v)
        .ok()
        .filter(|p| p.is_power_of_two())
        .unwrap_or(4096)
}
