//! The C types and constants of the virglrenderer ABI that QEMU uses. Layouts and
//! values are those of virglrenderer 1.1.0's public interface (the facts a VMM
//! compiled against it relies on); `packaging/virglrenderer/virglrenderer.h`
//! declares the same for C.

use std::ffi::{c_int, c_void};

/// Capset id of Venus (`VIRTIO_GPU_CAPSET_VENUS`), the only capset offered.
pub const CAPSET_VENUS: u32 = 4;
/// Capset ids a VMM may create contexts with that carry no Venus work: the
/// default context (0) and the two virgl capsets. They are accepted as inert
/// contexts (the guest kernel creates one for every DRM client), but take no commands.
pub const INERT_CAPSETS: [u32; 3] = [0, 1, 2];

/// `virgl_renderer_init` flag: serve Venus contexts.
pub const RENDERER_VENUS: c_int = 1 << 6;

/// The capset id is the low byte of the context flags; nothing else is defined.
pub const CONTEXT_FLAG_CAPSET_ID_MASK: u32 = 0xff;

/// Blob backed by guest memory only (iovecs).
pub const BLOB_MEM_GUEST: u32 = 0x0001;
/// Blob backed by host memory only.
pub const BLOB_MEM_HOST3D: u32 = 0x0002;
/// Blob flag: the guest may map it (through the VMM's host-visible window).
pub const BLOB_FLAG_USE_MAPPABLE: u32 = 0x0001;

/// Map info: cached (ordinary write-back) host memory.
pub const MAP_CACHE_CACHED: u32 = 0x01;

/// The `virgl_renderer_resource_info_ext` version we fill in.
pub const RESOURCE_INFO_EXT_VERSION: c_int = 0;

/// Ring indices per context (virtio-gpu: `ring_idx` is below 64).
pub const MAX_RING_IDX: u32 = 64;

/// `write_fence(cookie, fence)`: a ctx-0 fence retired.
pub type WriteFenceFn = unsafe extern "C" fn(cookie: *mut c_void, fence: u32);
/// `write_context_fence(cookie, ctx_id, ring_idx, fence_id)`: a context fence retired.
pub type WriteContextFenceFn =
    unsafe extern "C" fn(cookie: *mut c_void, ctx_id: u32, ring_idx: u32, fence_id: u64);
/// A callback slot we never call (GL winsys, DRM fd, render server, EGL display).
pub type UnusedFn = unsafe extern "C" fn();

/// `struct virgl_renderer_callbacks`, up to version 4. Which fields exist depends
/// on `version`: 1 has the first five, 2 adds `get_drm_fd`, 3 adds
/// `write_context_fence` and `get_server_fd`, 4 adds `get_egl_display`.
#[repr(C)]
pub struct Callbacks {
    /// The caller's struct version.
    pub version: c_int,
    /// v1: ctx-0 fence retired.
    pub write_fence: Option<WriteFenceFn>,
    /// v1: GL context creation (unused: no GL here).
    pub create_gl_context: Option<UnusedFn>,
    /// v1: GL context destruction (unused).
    pub destroy_gl_context: Option<UnusedFn>,
    /// v1: GL make-current (unused).
    pub make_current: Option<UnusedFn>,
    /// v2: DRM fd for the winsys (unused).
    pub get_drm_fd: Option<UnusedFn>,
    /// v3: per-context fence retired.
    pub write_context_fence: Option<WriteContextFenceFn>,
    /// v3: external render server socket (unused: we render in process).
    pub get_server_fd: Option<UnusedFn>,
    /// v4: the caller's EGLDisplay (unused).
    pub get_egl_display: Option<UnusedFn>,
}

/// `struct virgl_renderer_resource_create_args`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct ResourceCreateArgs {
    /// Resource id (global, nonzero).
    pub handle: u32,
    /// Gallium texture target (0 buffer, 1 1D, 2 2D, 3 3D, 5 rect, ...).
    pub target: u32,
    /// virgl format number.
    pub format: u32,
    /// Bind flags.
    pub bind: u32,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Depth (3D textures).
    pub depth: u32,
    /// Array layers.
    pub array_size: u32,
    /// Highest mip level.
    pub last_level: u32,
    /// Sample count.
    pub nr_samples: u32,
    /// Resource flags (e.g. `VIRTIO_GPU_RESOURCE_FLAG_Y_0_TOP`).
    pub flags: u32,
}

/// `struct virgl_renderer_resource_create_blob_args`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct CreateBlobArgs {
    /// Resource id (global, nonzero).
    pub res_handle: u32,
    /// The context creating it (HOST3D blobs).
    pub ctx_id: u32,
    /// `BLOB_MEM_*`.
    pub blob_mem: u32,
    /// `BLOB_FLAG_*`.
    pub blob_flags: u32,
    /// 0: new shared memory; otherwise the id of a Venus VkDeviceMemory.
    pub blob_id: u64,
    /// Size in bytes.
    pub size: u64,
    /// Guest memory backing (GUEST blobs).
    pub iovecs: *const libc::iovec,
    /// Number of `iovecs`.
    pub num_iovs: u32,
}

/// `struct virgl_renderer_resource_info`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct ResourceInfo {
    /// Resource id.
    pub handle: u32,
    /// virgl format number.
    pub virgl_format: u32,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Depth.
    pub depth: u32,
    /// Resource flags.
    pub flags: u32,
    /// GL texture name: always 0 (no GL here).
    pub tex_id: u32,
    /// Bytes per row.
    pub stride: u32,
    /// DRM fourcc (0: none).
    pub drm_fourcc: c_int,
    /// A dma-buf fd (-1: none; we never hand one out here).
    pub fd: c_int,
}

/// `struct virgl_renderer_resource_info_ext`, version 0.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct ResourceInfoExt {
    /// Struct version.
    pub version: c_int,
    /// The plain info.
    pub base: ResourceInfo,
    /// Whether a dma-buf can be exported.
    pub has_dmabuf_export: bool,
    /// Plane count.
    pub planes: c_int,
    /// DRM format modifier.
    pub modifiers: u64,
    /// D3D11 texture (Windows hosts).
    pub d3d_tex2d: *mut c_void,
}

/// `struct virgl_box`: a region in pixels (x, y, z origin; w, h, d extent).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VirglBox {
    /// Origin column.
    pub x: u32,
    /// Origin row.
    pub y: u32,
    /// Origin layer.
    pub z: u32,
    /// Width.
    pub w: u32,
    /// Height.
    pub h: u32,
    /// Depth (layers).
    pub d: u32,
}

// The layouts a C caller compiled against virglrenderer 1.1.0 uses (LP64).
#[cfg(target_pointer_width = "64")]
const _: () = {
    assert!(std::mem::size_of::<Callbacks>() == 72);
    assert!(std::mem::size_of::<ResourceCreateArgs>() == 44);
    assert!(std::mem::size_of::<CreateBlobArgs>() == 48);
    assert!(std::mem::size_of::<ResourceInfo>() == 40);
    assert!(std::mem::size_of::<ResourceInfoExt>() == 72);
    assert!(std::mem::offset_of!(ResourceInfoExt, modifiers) == 56);
    assert!(std::mem::size_of::<VirglBox>() == 24);
};
