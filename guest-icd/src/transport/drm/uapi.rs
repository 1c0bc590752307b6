//! The slice of the Linux DRM / virtio-gpu uapi the DRM transport uses: argument
//! structs, parameter and flag values, and ioctl request numbers.
//!
//! Facts from the kernel uapi headers as shipped with Mesa 25.0.7
//! (`include/drm-uapi/virtgpu_drm.h`, `include/drm-uapi/drm.h`); the structs are
//! written out here field by field (`__u32` -> `u32`, `__u64` -> `u64`, pointers are
//! `__u64`) and the request numbers are computed with the kernel's `_IOC` encoding.

/// `DRM_IOCTL_BASE`, the ioctl "type" byte of every DRM request (`'d'`).
const DRM_IOCTL_BASE: u32 = b'd' as u32;
/// `DRM_COMMAND_BASE`: driver-private requests start here.
const DRM_COMMAND_BASE: u32 = 0x40;

/// `_IOC_WRITE | _IOC_READ` and the width of the size field, per architecture
/// (`include/uapi/asm-generic/ioctl.h`; powerpc, mips and sparc override them).
#[cfg(not(any(
    target_arch = "powerpc",
    target_arch = "powerpc64",
    target_arch = "mips",
    target_arch = "mips64",
    target_arch = "sparc",
    target_arch = "sparc64"
)))]
mod ioc {
    pub const WRITE: u32 = 1;
    pub const READ: u32 = 2;
    pub const SIZEBITS: u32 = 14;
}
#[cfg(any(
    target_arch = "powerpc",
    target_arch = "powerpc64",
    target_arch = "mips",
    target_arch = "mips64",
    target_arch = "sparc",
    target_arch = "sparc64"
))]
mod ioc {
    pub const WRITE: u32 = 4;
    pub const READ: u32 = 2;
    pub const SIZEBITS: u32 = 13;
}

/// `_IOC(dir, type, nr, size)`: `dir << 30 | size << 16 | type << 8 | nr`.
/// Panics at compile time (all uses are consts) if `size` does not fit.
const fn ioc(dir: u32, ty: u32, nr: u32, size: usize) -> libc::c_ulong {
    assert!(size < (1 << ioc::SIZEBITS));
    let v = (dir << 30) | ((size as u32) << 16) | (ty << 8) | nr;
    v as libc::c_ulong
}

/// `DRM_IOWR(nr, T)`.
const fn drm_iowr<T>(nr: u32) -> libc::c_ulong {
    ioc(
        ioc::READ | ioc::WRITE,
        DRM_IOCTL_BASE,
        nr,
        std::mem::size_of::<T>(),
    )
}

/// `DRM_IOW(nr, T)`.
const fn drm_iow<T>(nr: u32) -> libc::c_ulong {
    ioc(ioc::WRITE, DRM_IOCTL_BASE, nr, std::mem::size_of::<T>())
}

// ---- drm.h -------------------------------------------------------------------

/// `struct drm_version` (`__kernel_size_t` is the C `size_t`, so `usize`).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct DrmVersion {
    /// Major version.
    pub version_major: libc::c_int,
    /// Minor version.
    pub version_minor: libc::c_int,
    /// Patch level.
    pub version_patchlevel: libc::c_int,
    /// In: size of `name`; out: length of the driver name.
    pub name_len: usize,
    /// Buffer for the driver name (not NUL-terminated).
    pub name: *mut libc::c_char,
    /// In: size of `date`; out: its length.
    pub date_len: usize,
    /// Buffer for the date.
    pub date: *mut libc::c_char,
    /// In: size of `desc`; out: its length.
    pub desc_len: usize,
    /// Buffer for the description.
    pub desc: *mut libc::c_char,
}

/// `DRM_IOCTL_VERSION`: `DRM_IOWR(0x00, struct drm_version)`.
pub const DRM_IOCTL_VERSION: libc::c_ulong = drm_iowr::<DrmVersion>(0x00);

/// `struct drm_gem_close`.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
pub struct DrmGemClose {
    /// GEM handle to close.
    pub handle: u32,
    /// Must be zero.
    pub pad: u32,
}

/// `DRM_IOCTL_GEM_CLOSE`: `DRM_IOW(0x09, struct drm_gem_close)`.
pub const DRM_IOCTL_GEM_CLOSE: libc::c_ulong = drm_iow::<DrmGemClose>(0x09);

// ---- virtgpu_drm.h -----------------------------------------------------------

const DRM_VIRTGPU_MAP: u32 = 0x01;
const DRM_VIRTGPU_EXECBUFFER: u32 = 0x02;
const DRM_VIRTGPU_GETPARAM: u32 = 0x03;
const DRM_VIRTGPU_RESOURCE_INFO: u32 = 0x05;
const DRM_VIRTGPU_GET_CAPS: u32 = 0x09;
const DRM_VIRTGPU_RESOURCE_CREATE_BLOB: u32 = 0x0a;
const DRM_VIRTGPU_CONTEXT_INIT: u32 = 0x0b;

/// `VIRTGPU_EXECBUF_RING_IDX`: `ring_idx` is valid.
pub const VIRTGPU_EXECBUF_RING_IDX: u32 = 0x04;

/// `VIRTGPU_PARAM_3D_FEATURES`: the device has 3D (virgl) features.
pub const VIRTGPU_PARAM_3D_FEATURES: u64 = 1;
/// `VIRTGPU_PARAM_CAPSET_QUERY_FIX`: GET_CAPS honours capset versions and sizes.
pub const VIRTGPU_PARAM_CAPSET_QUERY_FIX: u64 = 2;
/// `VIRTGPU_PARAM_RESOURCE_BLOB`: RESOURCE_CREATE_BLOB exists.
pub const VIRTGPU_PARAM_RESOURCE_BLOB: u64 = 3;
/// `VIRTGPU_PARAM_HOST_VISIBLE`: host blob resources are mappable.
pub const VIRTGPU_PARAM_HOST_VISIBLE: u64 = 4;
/// `VIRTGPU_PARAM_CONTEXT_INIT`: CONTEXT_INIT exists.
pub const VIRTGPU_PARAM_CONTEXT_INIT: u64 = 6;
/// `VIRTGPU_PARAM_SUPPORTED_CAPSET_IDs`: bit mask of the capset ids the host offers.
pub const VIRTGPU_PARAM_SUPPORTED_CAPSET_IDS: u64 = 7;

/// `VIRTGPU_BLOB_MEM_HOST3D`: the host allocates the blob (by `blob_id`).
pub const VIRTGPU_BLOB_MEM_HOST3D: u32 = 0x0002;
/// `VIRTGPU_BLOB_FLAG_USE_MAPPABLE`: the guest maps the blob.
pub const VIRTGPU_BLOB_FLAG_USE_MAPPABLE: u32 = 0x0001;

/// `VIRTGPU_CONTEXT_PARAM_CAPSET_ID`.
pub const VIRTGPU_CONTEXT_PARAM_CAPSET_ID: u64 = 0x0001;
/// `VIRTGPU_CONTEXT_PARAM_NUM_RINGS`.
pub const VIRTGPU_CONTEXT_PARAM_NUM_RINGS: u64 = 0x0002;
/// `VIRTGPU_CONTEXT_PARAM_POLL_RINGS_MASK`.
pub const VIRTGPU_CONTEXT_PARAM_POLL_RINGS_MASK: u64 = 0x0003;

/// `struct drm_virtgpu_map`.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
pub struct DrmVirtgpuMap {
    /// Out: the offset to pass to mmap on the DRM fd.
    pub offset: u64,
    /// In: GEM handle.
    pub handle: u32,
    /// Padding.
    pub pad: u32,
}

/// `struct drm_virtgpu_execbuffer`.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
pub struct DrmVirtgpuExecbuffer {
    /// `VIRTGPU_EXECBUF_*`.
    pub flags: u32,
    /// Size of the command stream in bytes.
    pub size: u32,
    /// Pointer to the command stream.
    pub command: u64,
    /// Pointer to an array of GEM handles.
    pub bo_handles: u64,
    /// Number of GEM handles.
    pub num_bo_handles: u32,
    /// In/out fence fd.
    pub fence_fd: i32,
    /// Command ring index (with `VIRTGPU_EXECBUF_RING_IDX`).
    pub ring_idx: u32,
    /// Size of `struct drm_virtgpu_execbuffer_syncobj`.
    pub syncobj_stride: u32,
    /// Number of in syncobjs.
    pub num_in_syncobjs: u32,
    /// Number of out syncobjs.
    pub num_out_syncobjs: u32,
    /// Pointer to the in syncobjs.
    pub in_syncobjs: u64,
    /// Pointer to the out syncobjs.
    pub out_syncobjs: u64,
}

/// `struct drm_virtgpu_getparam`.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
pub struct DrmVirtgpuGetparam {
    /// `VIRTGPU_PARAM_*`.
    pub param: u64,
    /// Pointer to where the kernel writes the value (an `int`).
    pub value: u64,
}

/// `struct drm_virtgpu_resource_info`.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
pub struct DrmVirtgpuResourceInfo {
    /// In: GEM handle.
    pub bo_handle: u32,
    /// Out: host resource id.
    pub res_handle: u32,
    /// Out: size.
    pub size: u32,
    /// Out: blob memory type (0 for non-blob resources).
    pub blob_mem: u32,
}

/// `struct drm_virtgpu_get_caps`.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
pub struct DrmVirtgpuGetCaps {
    /// Capset id.
    pub cap_set_id: u32,
    /// Capset version.
    pub cap_set_ver: u32,
    /// Pointer to the destination buffer.
    pub addr: u64,
    /// Size of the destination buffer; the kernel copies at most the host's size.
    pub size: u32,
    /// Padding.
    pub pad: u32,
}

/// `struct drm_virtgpu_resource_create_blob`.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
pub struct DrmVirtgpuResourceCreateBlob {
    /// `VIRTGPU_BLOB_MEM_*` (zero is invalid).
    pub blob_mem: u32,
    /// `VIRTGPU_BLOB_FLAG_*`.
    pub blob_flags: u32,
    /// Out: GEM handle.
    pub bo_handle: u32,
    /// Out: host resource id.
    pub res_handle: u32,
    /// Size in bytes.
    pub size: u64,
    /// Padding.
    pub pad: u32,
    /// Size of `cmd` (commands run at creation); zero here.
    pub cmd_size: u32,
    /// Pointer to `cmd`.
    pub cmd: u64,
    /// The host-side object the blob exposes (0: plain shared memory).
    pub blob_id: u64,
}

/// `struct drm_virtgpu_context_set_param`.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
pub struct DrmVirtgpuContextSetParam {
    /// `VIRTGPU_CONTEXT_PARAM_*`.
    pub param: u64,
    /// Its value.
    pub value: u64,
}

/// `struct drm_virtgpu_context_init`.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
pub struct DrmVirtgpuContextInit {
    /// Number of entries at `ctx_set_params`.
    pub num_params: u32,
    /// Padding.
    pub pad: u32,
    /// Pointer to an array of [`DrmVirtgpuContextSetParam`].
    pub ctx_set_params: u64,
}

/// `DRM_IOCTL_VIRTGPU_MAP`.
pub const DRM_IOCTL_VIRTGPU_MAP: libc::c_ulong =
    drm_iowr::<DrmVirtgpuMap>(DRM_COMMAND_BASE + DRM_VIRTGPU_MAP);
/// `DRM_IOCTL_VIRTGPU_EXECBUFFER`.
pub const DRM_IOCTL_VIRTGPU_EXECBUFFER: libc::c_ulong =
    drm_iowr::<DrmVirtgpuExecbuffer>(DRM_COMMAND_BASE + DRM_VIRTGPU_EXECBUFFER);
/// `DRM_IOCTL_VIRTGPU_GETPARAM`.
pub const DRM_IOCTL_VIRTGPU_GETPARAM: libc::c_ulong =
    drm_iowr::<DrmVirtgpuGetparam>(DRM_COMMAND_BASE + DRM_VIRTGPU_GETPARAM);
/// `DRM_IOCTL_VIRTGPU_RESOURCE_INFO`.
pub const DRM_IOCTL_VIRTGPU_RESOURCE_INFO: libc::c_ulong =
    drm_iowr::<DrmVirtgpuResourceInfo>(DRM_COMMAND_BASE + DRM_VIRTGPU_RESOURCE_INFO);
/// `DRM_IOCTL_VIRTGPU_GET_CAPS`.
pub const DRM_IOCTL_VIRTGPU_GET_CAPS: libc::c_ulong =
    drm_iowr::<DrmVirtgpuGetCaps>(DRM_COMMAND_BASE + DRM_VIRTGPU_GET_CAPS);
/// `DRM_IOCTL_VIRTGPU_RESOURCE_CREATE_BLOB`.
pub const DRM_IOCTL_VIRTGPU_RESOURCE_CREATE_BLOB: libc::c_ulong =
    drm_iowr::<DrmVirtgpuResourceCreateBlob>(DRM_COMMAND_BASE + DRM_VIRTGPU_RESOURCE_CREATE_BLOB);
/// `DRM_IOCTL_VIRTGPU_CONTEXT_INIT`.
pub const DRM_IOCTL_VIRTGPU_CONTEXT_INIT: libc::c_ulong =
    drm_iowr::<DrmVirtgpuContextInit>(DRM_COMMAND_BASE + DRM_VIRTGPU_CONTEXT_INIT);

#[cfg(test)]
mod tests {
    use super::*;
    use std::mem::size_of;

    /// Sizes from the header, field by field (`__u64` fields are 8-aligned, so no
    /// hidden padding in any of these).
    #[test]
    fn struct_sizes_match_the_uapi_header() {
        assert_eq!(size_of::<DrmGemClose>(), 8); // u32 handle, u32 pad
                                                 // 3 x int, then 3 x (size_t, pointer): 12 + 4 (padding) + 48 on 64-bit.
        #[cfg(target_pointer_width = "64")]
        assert_eq!(size_of::<DrmVersion>(), 64);
        assert_eq!(size_of::<DrmVirtgpuMap>(), 16); // u64 + 2 x u32
                                                    // u32 flags, size; u64 command, bo_handles; u32 num_bo_handles, s32
                                                    // fence_fd, u32 ring_idx, syncobj_stride, num_in, num_out; u64 in, out
        assert_eq!(
            size_of::<DrmVirtgpuExecbuffer>(),
            4 + 4 + 8 + 8 + 6 * 4 + 8 + 8
        );
        assert_eq!(size_of::<DrmVirtgpuGetparam>(), 16);
        assert_eq!(size_of::<DrmVirtgpuResourceInfo>(), 16);
        assert_eq!(size_of::<DrmVirtgpuGetCaps>(), 24); // 2 x u32, u64, 2 x u32
                                                        // 4 x u32, u64 size, u32 pad, u32 cmd_size, u64 cmd, u64 blob_id
        assert_eq!(size_of::<DrmVirtgpuResourceCreateBlob>(), 48);
        assert_eq!(size_of::<DrmVirtgpuContextSetParam>(), 16);
        assert_eq!(size_of::<DrmVirtgpuContextInit>(), 16);
    }

    /// The request numbers, worked out by hand with the generic `_IOC` layout
    /// (x86_64, aarch64, riscv64, ...): `_IOWR` = `(READ 2 | WRITE 1) << 30` =
    /// `0xC000_0000`, `_IOW` = `0x4000_0000`; then `size << 16 | 'd' (0x64) << 8 | nr`
    /// with `nr = DRM_COMMAND_BASE (0x40) + DRM_VIRTGPU_*` for the driver's ioctls.
    #[cfg(any(
        target_arch = "x86_64",
        target_arch = "aarch64",
        target_arch = "riscv64"
    ))]
    #[test]
    fn ioctl_numbers_match_hand_computed_values() {
        // DRM_IOWR(0x00, 64 bytes = 0x40): 0xC000_0000 | 0x40 << 16 | 0x6400 | 0x00
        assert_eq!(DRM_IOCTL_VERSION, 0xC040_6400);
        // DRM_IOW(0x09, 8 bytes): 0x4000_0000 | 0x08 << 16 | 0x6400 | 0x09
        assert_eq!(DRM_IOCTL_GEM_CLOSE, 0x4008_6409);
        // DRM_IOWR(0x40 + 0x01, 16 bytes): 0xC000_0000 | 0x10 << 16 | 0x6400 | 0x41
        assert_eq!(DRM_IOCTL_VIRTGPU_MAP, 0xC010_6441);
        // DRM_IOWR(0x42, 64 bytes = 0x40)
        assert_eq!(DRM_IOCTL_VIRTGPU_EXECBUFFER, 0xC040_6442);
        // DRM_IOWR(0x43, 16 bytes)
        assert_eq!(DRM_IOCTL_VIRTGPU_GETPARAM, 0xC010_6443);
        // DRM_IOWR(0x45, 16 bytes)
        assert_eq!(DRM_IOCTL_VIRTGPU_RESOURCE_INFO, 0xC010_6445);
        // DRM_IOWR(0x49, 24 bytes = 0x18)
        assert_eq!(DRM_IOCTL_VIRTGPU_GET_CAPS, 0xC018_6449);
        // DRM_IOWR(0x4a, 48 bytes = 0x30)
        assert_eq!(DRM_IOCTL_VIRTGPU_RESOURCE_CREATE_BLOB, 0xC030_644A);
        // DRM_IOWR(0x4b, 16 bytes)
        assert_eq!(DRM_IOCTL_VIRTGPU_CONTEXT_INIT, 0xC010_644B);
    }
}
