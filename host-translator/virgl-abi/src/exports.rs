//! The exported C functions: the 28 QEMU 10.0 imports from `libvirglrenderer.so.1`.
//!
//! Each one checks its pointers, catches any panic, logs a refusal and returns a
//! negative errno (functions without a result just return). All state is behind
//! `library::lock()`; Venus work and the VMM's callbacks run without it.

use std::ffi::{c_char, c_int, c_void};
use std::panic::{catch_unwind, AssertUnwindSafe};

use venus_protocol::capset::tail::EXTENDED_CAPSET_SIZE;

use crate::abi::{
    Callbacks, CreateBlobArgs, ResourceCreateArgs, ResourceInfo, ResourceInfoExt, VirglBox,
    CAPSET_VENUS, RESOURCE_INFO_EXT_VERSION,
};
use crate::error::{invalid, AbiError, AbiResult};
use crate::fences;
use crate::iov::IovList;
use crate::library::{self, check_submit_len, deliver, retire_failed_fence};
use crate::pixels::Transfer;
use crate::resources;

/// Runs `f` with panics caught; `fallback` if it panicked.
fn guarded<T>(call: &'static str, fallback: T, f: impl FnOnce() -> T) -> T {
    crate::init_logging_once();
    catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|_| {
        AbiError::Panic.log(call);
        fallback
    })
}

/// [`guarded`] for calls returning 0 or a negative errno.
fn status(call: &'static str, f: impl FnOnce() -> AbiResult<()>) -> c_int {
    guarded(call, -libc::EIO, || match f() {
        Ok(()) => 0,
        Err(e) => {
            e.log(call);
            -e.errno()
        }
    })
}

/// [`guarded`] for calls without a result.
fn quiet(call: &'static str, f: impl FnOnce() -> AbiResult<()>) {
    guarded(call, (), || {
        if let Err(e) = f() {
            e.log(call);
        }
    })
}

/// Writes `value` through `ptr` if it is not NULL.
///
/// # Safety
///
/// `ptr` is NULL or valid for a write of `T`.
unsafe fn store<T>(ptr: *mut T, value: T) {
    if !ptr.is_null() {
        // SAFETY: non-null and writable (the caller's contract).
        unsafe { ptr.write_unaligned(value) };
    }
}

/// Initializes the renderer for a VMM: `cookie` is passed back to every callback;
/// callbacks run only inside [`virgl_renderer_poll`].
///
/// # Safety
///
/// `cb` is NULL or points to callbacks of the version it states, valid until
/// [`virgl_renderer_cleanup`].
#[no_mangle]
pub unsafe extern "C" fn virgl_renderer_init(
    cookie: *mut c_void,
    flags: c_int,
    cb: *mut Callbacks,
) -> c_int {
    // SAFETY: forwarded caller contract.
    status("init", || unsafe {
        library::lock().init(cookie, flags, cb)
    })
}

/// Delivers fence retirements through the callbacks.
#[no_mangle]
pub extern "C" fn virgl_renderer_poll() {
    quiet("poll", || {
        let retired = fences::take();
        if retired.is_empty() {
            return Ok(());
        }
        let view = library::lock().poll_view();
        if let Some((client, generation, live)) = view {
            deliver(client, generation, &live, retired);
        }
        Ok(())
    })
}

/// Releases every context and resource, the callbacks and the host renderer.
#[no_mangle]
pub extern "C" fn virgl_renderer_cleanup(_cookie: *mut c_void) {
    quiet("cleanup", || {
        let released = library::lock().cleanup();
        released.finish();
        Ok(())
    })
}

/// Destroys every context and resource; `virgl_renderer_init` may follow.
#[no_mangle]
pub extern "C" fn virgl_renderer_reset() {
    quiet("reset", || {
        let released = library::lock().reset();
        released.finish();
        Ok(())
    })
}

/// Makes the GL context 0 current: nothing to do without GL.
#[no_mangle]
pub extern "C" fn virgl_renderer_force_ctx_0() {}

/// Capset `set`'s version and size: Venus (4) is version 0 and 176 bytes (160
/// standard + our tail); every other capset has size 0. May precede init.
///
/// # Safety
///
/// `max_ver` and `max_size` are NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn virgl_renderer_get_cap_set(
    set: u32,
    max_ver: *mut u32,
    max_size: *mut u32,
) {
    quiet("get_cap_set", || {
        let size = if set == CAPSET_VENUS && library::lock().venus_capset().is_some() {
            EXTENDED_CAPSET_SIZE as u32
        } else {
            0
        };
        // SAFETY: NULL or writable (the caller's contract).
        unsafe {
            store(max_ver, 0);
            store(max_size, size);
        }
        Ok(())
    })
}

/// Writes capset `set` (176 bytes for Venus, nothing for others) to `caps`.
///
/// # Safety
///
/// `caps` is NULL or writable for the size [`virgl_renderer_get_cap_set`] reported.
#[no_mangle]
pub unsafe extern "C" fn virgl_renderer_fill_caps(set: u32, _version: u32, caps: *mut c_void) {
    quiet("fill_caps", || {
        if caps.is_null() {
            return Err(invalid!("NULL caps"));
        }
        if set != CAPSET_VENUS {
            return Err(invalid!("capset {set}"));
        }
        let bytes = library::lock()
            .venus_capset()
            .ok_or_else(|| AbiError::NoRenderer("no Venus capset".into()))?;
        // SAFETY: writable for EXTENDED_CAPSET_SIZE bytes (the caller's contract,
        // the size get_cap_set reported).
        unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), caps.cast::<u8>(), bytes.len()) };
        Ok(())
    })
}

/// Creates a context without flags (capset 0: inert, takes no commands).
///
/// # Safety
///
/// `name` is NULL or readable for `min(nlen, 64)` bytes.
#[no_mangle]
pub unsafe extern "C" fn virgl_renderer_context_create(
    handle: u32,
    nlen: u32,
    name: *const c_char,
) -> c_int {
    // SAFETY: forwarded caller contract.
    status("context_create", || unsafe {
        library::lock().create_context(handle, 0, nlen, name)
    })
}

/// Creates context `ctx_id` for the capset in the low byte of `ctx_flags`.
///
/// # Safety
///
/// `name` is NULL or readable for `min(nlen, 64)` bytes.
#[no_mangle]
pub unsafe extern "C" fn virgl_renderer_context_create_with_flags(
    ctx_id: u32,
    ctx_flags: u32,
    nlen: u32,
    name: *const c_char,
) -> c_int {
    // SAFETY: forwarded caller contract.
    status("context_create_with_flags", || unsafe {
        library::lock().create_context(ctx_id, ctx_flags, nlen, name)
    })
}

/// Destroys a context (its resources stay until unreferenced).
#[no_mangle]
pub extern "C" fn virgl_renderer_context_destroy(handle: u32) {
    quiet("context_destroy", || {
        let ctx = library::lock().destroy_context(handle)?;
        drop(ctx); // joins the context's threads, without the lock
        Ok(())
    })
}

/// Queues fence `fence_id` on timeline `ring_idx` of a context; it is delivered
/// through `write_context_fence` once retired.
#[no_mangle]
pub extern "C" fn virgl_renderer_context_create_fence(
    ctx_id: u32,
    _flags: u32,
    ring_idx: u32,
    fence_id: u64,
) -> c_int {
    status("context_create_fence", || {
        let target = library::lock().context_fence_target(ctx_id, ring_idx, fence_id)?;
        let Some((ctx, serial)) = target else {
            return Ok(());
        };
        ctx.submit_fence(ring_idx, fence_id).map_err(|e| {
            retire_failed_fence(serial, ctx_id, ring_idx, fence_id);
            AbiError::Core(e)
        })
    })
}

/// A ctx-0 fence: retires at the next poll through `write_fence`.
#[no_mangle]
pub extern "C" fn virgl_renderer_create_fence(client_fence_id: c_int, _ctx_id: u32) -> c_int {
    status("create_fence", || {
        library::lock().create_ctx0_fence(client_fence_id as u32)
    })
}

/// Lets a context use a resource (host blobs are not imported across contexts).
#[no_mangle]
pub extern "C" fn virgl_renderer_ctx_attach_resource(ctx_id: c_int, res_handle: c_int) {
    quiet("ctx_attach_resource", || {
        library::lock().attach_to_context(ctx_id as u32, res_handle as u32)
    })
}

/// The counterpart of attach: checks the ids only.
#[no_mangle]
pub extern "C" fn virgl_renderer_ctx_detach_resource(ctx_id: c_int, res_handle: c_int) {
    quiet("ctx_detach_resource", || {
        library::lock().detach_from_context(ctx_id as u32, res_handle as u32)
    })
}

/// Executes `ndw` dwords of Venus commands in a context. A malformed stream makes
/// that context fatal (every later submit fails); other contexts are unaffected.
///
/// # Safety
///
/// `buffer` is NULL or readable for `ndw * 4` bytes, unchanged during the call.
#[no_mangle]
pub unsafe extern "C" fn virgl_renderer_submit_cmd(
    buffer: *mut c_void,
    ctx_id: c_int,
    ndw: c_int,
) -> c_int {
    status("submit_cmd", || {
        let ctx = library::lock().venus_context(ctx_id as u32)?;
        let len = check_submit_len(ndw)?;
        if len == 0 {
            return Ok(());
        }
        if buffer.is_null() || !(buffer as usize).is_multiple_of(4) {
            return Err(AbiError::Fault(format!(
                "buffer {buffer:p} for {len} bytes"
            )));
        }
        // SAFETY: non-null, readable for `len` bytes (the caller's contract).
        let data = unsafe { std::slice::from_raw_parts(buffer.cast::<u8>(), len) };
        ctx.submit_cmd(data).map_err(AbiError::Core)
    })
}

/// Creates a plain resource in host memory, optionally with its backing.
///
/// # Safety
///
/// `args` is NULL or readable; `iov` is NULL or `num_iovs` iovecs describing
/// memory valid until detached.
#[no_mangle]
pub unsafe extern "C" fn virgl_renderer_resource_create(
    args: *mut ResourceCreateArgs,
    iov: *mut libc::iovec,
    num_iovs: u32,
) -> c_int {
    status("resource_create", || {
        if args.is_null() {
            return Err(invalid!("NULL args"));
        }
        // SAFETY: non-null and readable (the caller's contract).
        let args = unsafe { args.read_unaligned() };
        // SAFETY: forwarded caller contract.
        unsafe { library::lock().create_pixels(&args, iov, num_iovs) }
    })
}

/// Creates a blob: GUEST (iovecs only) or HOST3D (a Venus context's memory).
///
/// # Safety
///
/// `args` is NULL or readable; its iovecs as for [`virgl_renderer_resource_create`].
#[no_mangle]
pub unsafe extern "C" fn virgl_renderer_resource_create_blob(args: *const CreateBlobArgs) -> c_int {
    status("resource_create_blob", || {
        if args.is_null() {
            return Err(invalid!("NULL args"));
        }
        // SAFETY: non-null and readable (the caller's contract).
        let args = unsafe { args.read_unaligned() };
        // SAFETY: forwarded caller contract.
        unsafe { resources::create_blob(&args) }
    })
}

/// Attaches guest memory to a resource.
///
/// # Safety
///
/// `iov` is NULL or `num_iovs` iovecs describing memory valid until detached.
#[no_mangle]
pub unsafe extern "C" fn virgl_renderer_resource_attach_iov(
    res_handle: c_int,
    iov: *mut libc::iovec,
    num_iovs: c_int,
) -> c_int {
    // SAFETY: forwarded caller contract.
    status("resource_attach_iov", || unsafe {
        library::lock().attach_iov(res_handle as u32, iov, num_iovs)
    })
}

/// Detaches a resource's guest memory, handing back the array that was attached.
///
/// # Safety
///
/// `iov` and `num_iovs` are NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn virgl_renderer_resource_detach_iov(
    res_handle: c_int,
    iov: *mut *mut libc::iovec,
    num_iovs: *mut c_int,
) {
    quiet("resource_detach_iov", || {
        let (raw, count) = library::lock()
            .detach_iov(res_handle as u32)?
            .unwrap_or((std::ptr::null_mut(), 0));
        // SAFETY: NULL or writable (the caller's contract).
        unsafe {
            store(iov, raw);
            store(num_iovs, count);
        }
        Ok(())
    })
}

/// Destroys a resource.
#[no_mangle]
pub extern "C" fn virgl_renderer_resource_unref(res_handle: u32) {
    quiet("resource_unref", || {
        let (res, owner) = library::lock().take_resource(res_handle)?;
        if let Some(ctx) = owner {
            ctx.destroy_resource(res_handle);
        }
        res.release();
        Ok(())
    })
}

/// Describes a resource (no GL texture: `tex_id` is 0; `fd` is -1).
///
/// # Safety
///
/// `info` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn virgl_renderer_resource_get_info(
    res_handle: c_int,
    info: *mut ResourceInfo,
) -> c_int {
    status("resource_get_info", || {
        if info.is_null() {
            return Err(invalid!("NULL info"));
        }
        let value = library::lock().info(res_handle as u32)?;
        // SAFETY: non-null and writable (the caller's contract).
        unsafe { store(info, value) };
        Ok(())
    })
}

/// [`virgl_renderer_resource_get_info`] with the version-0 extension (no dma-buf).
///
/// # Safety
///
/// `info` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn virgl_renderer_resource_get_info_ext(
    res_handle: c_int,
    info: *mut ResourceInfoExt,
) -> c_int {
    status("resource_get_info_ext", || {
        if info.is_null() {
            return Err(invalid!("NULL info"));
        }
        let base = library::lock().info(res_handle as u32)?;
        let value = ResourceInfoExt {
            version: RESOURCE_INFO_EXT_VERSION,
            base,
            has_dmabuf_export: false,
            planes: 0,
            modifiers: 0,
            d3d_tex2d: std::ptr::null_mut(),
        };
        // SAFETY: non-null and writable (the caller's contract).
        unsafe { store(info, value) };
        Ok(())
    })
}

/// The caching of a mappable host blob (always cached).
///
/// # Safety
///
/// `map_info` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn virgl_renderer_resource_get_map_info(
    res_handle: u32,
    map_info: *mut u32,
) -> c_int {
    status("resource_get_map_info", || {
        if map_info.is_null() {
            return Err(invalid!("NULL map_info"));
        }
        let value = library::lock().map_info(res_handle)?;
        // SAFETY: non-null and writable (the caller's contract).
        unsafe { store(map_info, value) };
        Ok(())
    })
}

/// The host address and size of a mappable host blob, both multiples of the
/// sharing granularity; valid until [`virgl_renderer_resource_unmap`].
///
/// # Safety
///
/// `map` and `out_size` are NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn virgl_renderer_resource_map(
    res_handle: u32,
    map: *mut *mut c_void,
    out_size: *mut u64,
) -> c_int {
    status("resource_map", || {
        if map.is_null() || out_size.is_null() {
            return Err(invalid!("NULL output pointer"));
        }
        let (ptr, len) = library::lock().map(res_handle)?;
        // SAFETY: non-null and writable (the caller's contract).
        unsafe {
            store(map, ptr.cast::<c_void>());
            store(out_size, len);
        }
        Ok(())
    })
}

/// Ends the VMM's use of a mapping.
#[no_mangle]
pub extern "C" fn virgl_renderer_resource_unmap(res_handle: u32) -> c_int {
    status("resource_unmap", || library::lock().unmap(res_handle))
}

/// Reads a transfer's box.
///
/// # Safety
///
/// `bx` is NULL or readable.
unsafe fn read_box(bx: *const VirglBox) -> AbiResult<VirglBox> {
    if bx.is_null() {
        return Err(invalid!("NULL box"));
    }
    // SAFETY: non-null and readable (the caller's contract).
    Ok(unsafe { bx.read_unaligned() })
}

/// The iovecs a transfer names for itself (`None`: use the backing).
///
/// # Safety
///
/// `iov` is NULL or `count` iovecs valid for the call.
unsafe fn call_iov(iov: *const libc::iovec, count: usize) -> AbiResult<Option<IovList>> {
    if iov.is_null() || count == 0 {
        return Ok(None);
    }
    // SAFETY: forwarded caller contract (valid for this call).
    Ok(Some(unsafe { IovList::from_raw(iov, count) }?))
}

/// Copies a box of a plain resource to guest memory (`iov`, or its backing).
///
/// # Safety
///
/// `box_` is NULL or readable; `iov` is NULL or `iovec_cnt` iovecs valid for the call.
#[no_mangle]
pub unsafe extern "C" fn virgl_renderer_transfer_read_iov(
    handle: u32,
    _ctx_id: u32,
    level: u32,
    stride: u32,
    layer_stride: u32,
    box_: *mut VirglBox,
    offset: u64,
    iov: *mut libc::iovec,
    iovec_cnt: c_int,
) -> c_int {
    status("transfer_read_iov", || {
        let count = usize::try_from(iovec_cnt).map_err(|_| invalid!("{iovec_cnt} iovecs"))?;
        // SAFETY: forwarded caller contract.
        let (bx, list) = unsafe { (read_box(box_)?, call_iov(iov, count)?) };
        let t = Transfer {
            level,
            stride,
            layer_stride,
            bx,
            offset,
        };
        library::lock().transfer(handle, false, &t, list.as_ref())
    })
}

/// Copies a box of guest memory (`iovec`, or the backing) into a plain resource.
///
/// # Safety
///
/// `box_` is NULL or readable; `iovec` is NULL or `iovec_cnt` iovecs valid for the call.
#[no_mangle]
pub unsafe extern "C" fn virgl_renderer_transfer_write_iov(
    handle: u32,
    _ctx_id: u32,
    level: c_int,
    stride: u32,
    layer_stride: u32,
    box_: *mut VirglBox,
    offset: u64,
    iovec: *mut libc::iovec,
    iovec_cnt: u32,
) -> c_int {
    status("transfer_write_iov", || {
        let level = u32::try_from(level).map_err(|_| invalid!("mip level {level}"))?;
        // SAFETY: forwarded caller contract.
        let (bx, list) = unsafe { (read_box(box_)?, call_iov(iovec, iovec_cnt as usize)?) };
        let t = Transfer {
            level,
            stride,
            layer_stride,
            bx,
            offset,
        };
        library::lock().transfer(handle, true, &t, list.as_ref())
    })
}

/// A malloc'ed copy of a 32-bit image (the caller frees it), with its size;
/// NULL for anything else.
///
/// # Safety
///
/// `width` and `height` are NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn virgl_renderer_get_cursor_data(
    resource_id: u32,
    width: *mut u32,
    height: *mut u32,
) -> *mut c_void {
    guarded("get_cursor_data", std::ptr::null_mut(), || {
        if width.is_null() || height.is_null() {
            AbiError::Invalid("NULL width or height".into()).log("get_cursor_data");
            return std::ptr::null_mut();
        }
        let image = library::lock().cursor(resource_id);
        let (bytes, w, h) = match image {
            Ok(v) => v,
            Err(e) => {
                e.log("get_cursor_data");
                return std::ptr::null_mut();
            }
        };
        // SAFETY: plain allocation; the result is checked.
        let out = unsafe { libc::malloc(bytes.len().max(1)) };
        if out.is_null() {
            return std::ptr::null_mut();
        }
        // SAFETY: `out` has room for `bytes.len()` bytes; the outputs are writable.
        unsafe {
            std::ptr::copy_nonoverlapping(bytes.as_ptr(), out.cast::<u8>(), bytes.len());
            store(width, w);
            store(height, h);
        }
        out
    })
}
