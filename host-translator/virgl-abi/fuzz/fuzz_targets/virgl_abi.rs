//! The exported `virgl_renderer_*` functions of `libvirglrenderer.so.1` (the
//! QEMU C ABI crate, `host-translator/virgl-abi`) called in an input-chosen
//! order with hostile arguments, as a buggy or compromised VMM (or a guest whose
//! values the VMM passes on unchecked) would: unknown and reused context and
//! resource ids, capsets and flags that do not exist, huge and zero sizes, iovec
//! lists with NULL or empty entries, boxes, strides and offsets out of range,
//! Venus command streams of fuzz bytes (seeded with real ones), writes into
//! mapped host blobs. Venus runs on lavapipe, loaded directly
//! (`VENUS_HOST_DRIVER=libvulkan_lvp.so`).
//!
//! What the harness keeps to the ABI's contract (breaking it would be the
//! harness's bug, not the library's): every non-NULL pointer points to memory of
//! the size the function may access; iovecs describe memory of this process
//! (a 1 MiB arena that outlives every resource: each input ends with
//! `virgl_renderer_reset`); mapped blobs are written only while mapped.
//!
//! Oracles besides "no panic, no crash" (libfuzzer-sys aborts on any panic, even
//! one the library catches): every `int` result is 0 or a negative errno;
//! `resource_detach_iov` hands back exactly the array that was attached (and
//! leaves its outputs alone for unknown resources); fences are delivered only
//! inside `virgl_renderer_poll`, and context fences only for live contexts.
#![no_main]

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::ffi::{c_char, c_int, c_void};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use libfuzzer_sys::fuzz_target;
use virglrenderer::abi::{
    Callbacks, CreateBlobArgs, ResourceCreateArgs, ResourceInfo, ResourceInfoExt, VirglBox,
};
use virglrenderer::exports as x;

/// Size of the guest-memory arena iovecs point into.
const ARENA: usize = 1 << 20;
/// Longest Venus stream one submit carries.
const MAX_SUBMIT: usize = 1 << 16;

/// What the harness knows that the library must agree with.
#[derive(Default)]
struct Model {
    /// Whether `virgl_renderer_init` has succeeded (and no cleanup since).
    initialized: bool,
    /// Live context ids.
    contexts: HashSet<u32>,
    /// Live resource ids → the iovec array attached (pointer, count), if any.
    resources: HashMap<u32, Option<(usize, c_int)>>,
    /// Resource id → (address, length) while mapped through `resource_map`.
    mapped: HashMap<u32, (usize, u64)>,
}

static MODEL: Mutex<Option<Model>> = Mutex::new(None);
/// Set while the harness is inside `virgl_renderer_poll`.
static IN_POLL: AtomicBool = AtomicBool::new(false);

fn with_model<T>(f: impl FnOnce(&mut Model) -> T) -> T {
    let mut g = MODEL.lock().unwrap_or_else(|p| p.into_inner());
    f(g.get_or_insert_with(Model::default))
}

unsafe extern "C" fn write_fence(_cookie: *mut c_void, _fence: u32) {
    assert!(
        IN_POLL.load(Ordering::SeqCst),
        "write_fence outside virgl_renderer_poll"
    );
}

unsafe extern "C" fn write_context_fence(
    _cookie: *mut c_void,
    ctx_id: u32,
    ring_idx: u32,
    _fence_id: u64,
) {
    assert!(
        IN_POLL.load(Ordering::SeqCst),
        "write_context_fence outside virgl_renderer_poll"
    );
    assert!(ring_idx < 64, "fence on ring {ring_idx}");
    let live = with_model(|m| m.contexts.contains(&ctx_id));
    assert!(live, "context fence delivered for dead context {ctx_id}");
}

/// Callback tables of every version (static: they must outlive init).
static CALLBACKS: [Callbacks; 5] = [
    callbacks(0),
    callbacks(1),
    callbacks(2),
    callbacks(3),
    callbacks(4),
];

const fn callbacks(version: c_int) -> Callbacks {
    Callbacks {
        version,
        write_fence: Some(write_fence),
        create_gl_context: None,
        destroy_gl_context: None,
        make_current: None,
        get_drm_fd: None,
        write_context_fence: Some(write_context_fence),
        get_server_fd: None,
        get_egl_display: None,
    }
}

/// Reads the input front to back; missing bytes read as zero.
struct Input<'a>(&'a [u8]);

impl Input<'_> {
    fn u8(&mut self) -> u8 {
        let (b, rest) = self.0.split_first().map_or((0, &[][..]), |(b, r)| (*b, r));
        self.0 = rest;
        b
    }
    fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.u8(), self.u8()])
    }
    fn u32(&mut self) -> u32 {
        u32::from_le_bytes([self.u8(), self.u8(), self.u8(), self.u8()])
    }
    fn u64(&mut self) -> u64 {
        u64::from(self.u32()) | u64::from(self.u32()) << 32
    }
    fn bool(&mut self) -> bool {
        self.u8() & 1 != 0
    }
    fn bytes(&mut self, n: usize) -> &[u8] {
        let n = n.min(self.0.len());
        let (b, rest) = self.0.split_at(n);
        self.0 = rest;
        b
    }
    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// A context id: mostly 1..=4, sometimes 0 or an arbitrary value.
    fn ctx_id(&mut self) -> u32 {
        match self.u8() {
            b @ 0..=239 => u32::from(b % 5),
            240..=247 => self.u32(),
            _ => u32::MAX,
        }
    }

    /// A resource id: mostly 1..=8, sometimes 0 or an arbitrary value.
    fn res_id(&mut self) -> u32 {
        match self.u8() {
            b @ 0..=239 => u32::from(b % 9),
            240..=247 => self.u32(),
            _ => u32::MAX,
        }
    }

    /// A size: small, page-ish, huge or arbitrary.
    fn size(&mut self) -> u64 {
        match self.u8() % 8 {
            0 => 0,
            1 => u64::from(self.u16()),
            2 => 4096 << (self.u8() % 12),
            3 => u64::MAX - u64::from(self.u8()),
            4 => 1 << (self.u8() % 64),
            5 => 65536,
            6 => u64::from(self.u32()),
            _ => self.u64(),
        }
    }
}

/// Per-input memory the harness hands to the library.
struct Memory {
    /// Guest memory for iovecs (outlives every resource of the input).
    arena: Vec<u8>,
    /// Iovec arrays passed so far (kept so their addresses stay unique).
    iov_arrays: Vec<Vec<libc::iovec>>,
    /// Command buffers for submit (u32 for alignment).
    submit: Vec<u32>,
}

thread_local! {
    static MEMORY: RefCell<Memory> = RefCell::new(Memory {
        arena: vec![0u8; ARENA],
        iov_arrays: Vec::new(),
        submit: vec![0u32; MAX_SUBMIT / 4 + 1],
    });
}

/// An iovec list from the input: (array pointer, count). Entries are pieces of
/// the arena, empty, or NULL with a length (which the library must refuse); the
/// array itself may be NULL with a nonzero count.
fn iov_list(input: &mut Input<'_>, mem: &mut Memory) -> (*mut libc::iovec, usize) {
    let kind = input.u8();
    let count = usize::from(kind % 17);
    if kind >= 0xf0 {
        // NULL array with a (possibly huge) count.
        let n = if kind == 0xff {
            usize::MAX
        } else {
            usize::from(input.u16())
        };
        return (std::ptr::null_mut(), n);
    }
    let base = mem.arena.as_mut_ptr();
    let mut v = Vec::with_capacity(count);
    for _ in 0..count {
        let e = match input.u8() % 8 {
            0 => libc::iovec {
                iov_base: std::ptr::null_mut(),
                iov_len: 0,
            },
            1 => libc::iovec {
                iov_base: std::ptr::null_mut(),
                iov_len: usize::from(input.u16()) + 1,
            },
            2 => libc::iovec {
                // SAFETY: inside the arena.
                iov_base: unsafe { base.add(usize::from(input.u16())) }.cast(),
                iov_len: 0,
            },
            3 => libc::iovec {
                // The whole arena.
                iov_base: base.cast(),
                iov_len: ARENA,
            },
            _ => {
                let off = (usize::from(input.u16()) * 16) % ARENA;
                let len = usize::from(input.u16()).min(ARENA - off);
                libc::iovec {
                    // SAFETY: `off` < ARENA.
                    iov_base: unsafe { base.add(off) }.cast(),
                    iov_len: len,
                }
            }
        };
        v.push(e);
    }
    let ptr = v.as_mut_ptr();
    mem.iov_arrays.push(v);
    (ptr, count)
}

fn check(call: &str, rc: c_int) -> c_int {
    if debug() {
        eprintln!("virgl_abi: {call} -> {rc}");
    }
    assert!(rc <= 0, "{call} returned {rc}, not 0 or a negative errno");
    rc
}

/// `VIRGL_FUZZ_DEBUG=1`: print every checked call and its result.
fn debug() -> bool {
    static D: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *D.get_or_init(|| std::env::var_os("VIRGL_FUZZ_DEBUG").is_some())
}

fn reset_model(m: &mut Model) {
    m.contexts.clear();
    m.resources.clear();
    m.mapped.clear();
}

/// One call.
fn step(input: &mut Input<'_>, mem: &mut Memory) {
    match input.u8() % 28 {
        0 => {
            let version = usize::from(input.u8() % 5);
            let flags = c_int::from(input.u8()) << 2 | c_int::from(input.u8() & 3);
            let cookie = usize::from(input.u8() % 3) as *mut c_void;
            let cb = if input.u8() == 0xff {
                std::ptr::null_mut()
            } else {
                std::ptr::addr_of!(CALLBACKS[version]).cast_mut()
            };
            // SAFETY: NULL or a static callback table of the version it states.
            let rc = check("init", unsafe { x::virgl_renderer_init(cookie, flags, cb) });
            if rc == 0 {
                with_model(|m| m.initialized = true);
            }
        }
        1 => {
            IN_POLL.store(true, Ordering::SeqCst);
            x::virgl_renderer_poll();
            IN_POLL.store(false, Ordering::SeqCst);
        }
        2 => {
            x::virgl_renderer_reset();
            with_model(reset_model);
        }
        3 => {
            // Releases the renderer too; the next init loads lavapipe again.
            x::virgl_renderer_cleanup(std::ptr::null_mut());
            with_model(|m| {
                reset_model(m);
                m.initialized = false;
            });
        }
        4 => {
            let set = input.u32() % 8;
            let (mut ver, mut size) = (0xdead_u32, 0xdead_u32);
            let null = input.u8();
            let pv = if null & 1 != 0 {
                std::ptr::null_mut()
            } else {
                &mut ver as *mut u32
            };
            let ps = if null & 2 != 0 {
                std::ptr::null_mut()
            } else {
                &mut size as *mut u32
            };
            // SAFETY: NULL or writable locals.
            unsafe { x::virgl_renderer_get_cap_set(set, pv, ps) };
            if null & 2 == 0 {
                assert!(size <= 4096, "capset {set} of {size} bytes");
            }
        }
        5 => {
            let set = input.u32() % 8;
            let mut caps = [0u8; 4096];
            let p = if input.bool() {
                std::ptr::null_mut()
            } else {
                caps.as_mut_ptr().cast()
            };
            // SAFETY: NULL or 4 KiB, more than any capset get_cap_set reports.
            unsafe { x::virgl_renderer_fill_caps(set, input.u32(), p) };
        }
        6 | 7 => {
            let ctx = input.ctx_id();
            let flags = match input.u8() % 6 {
                0..=2 => 4,
                3 => u32::from(input.u8()),
                4 => input.u32(),
                _ => 0,
            };
            let name_len = usize::from(input.u8() % 80);
            let name = input.bytes(name_len).to_vec();
            let nlen = if input.bool() {
                name.len() as u32
            } else {
                // A length longer than the name: the library reads at most 64
                // bytes, so pass a 64-byte buffer then.
                u32::MAX
            };
            let mut buf = [0u8; 64];
            let n = name.len().min(64);
            buf[..n].copy_from_slice(&name[..n]);
            let p: *const c_char = if input.u8() == 0xff {
                std::ptr::null()
            } else if nlen == u32::MAX {
                buf.as_ptr().cast()
            } else {
                name.as_ptr().cast()
            };
            // SAFETY: NULL, or readable for min(nlen, 64) bytes.
            let rc = if input.bool() {
                unsafe { x::virgl_renderer_context_create(ctx, nlen, p) }
            } else {
                unsafe { x::virgl_renderer_context_create_with_flags(ctx, flags, nlen, p) }
            };
            if check("context_create", rc) == 0 {
                with_model(|m| m.contexts.insert(ctx));
            }
        }
        8 => {
            let ctx = input.ctx_id();
            x::virgl_renderer_context_destroy(ctx);
            with_model(|m| m.contexts.remove(&ctx));
        }
        9 | 10 | 11 => {
            // Venus commands: fuzz bytes (the seeds carry real streams).
            let ctx = input.ctx_id() as c_int;
            let len = usize::from(input.u16()) % (MAX_SUBMIT + 1);
            let bytes = input.bytes(len);
            let words = bytes.len().div_ceil(4);
            let buf = &mut mem.submit[..words.max(1)];
            buf.fill(0);
            for (i, b) in bytes.iter().enumerate() {
                buf[i / 4] |= u32::from(*b) << (8 * (i % 4));
            }
            let (ptr, ndw): (*mut c_void, c_int) = match input.u8() {
                0xff => (std::ptr::null_mut(), words as c_int),
                0xfe => (buf.as_mut_ptr().cast::<u8>().wrapping_add(1).cast(), 0),
                0xfd => (buf.as_mut_ptr().cast(), -1),
                // Over the library's 64 MiB limit: refused before any read.
                0xfc => (buf.as_mut_ptr().cast(), c_int::MAX),
                _ => (buf.as_mut_ptr().cast(), words as c_int),
            };
            let rc = if ptr as usize % 4 != 0 {
                // Unaligned with a length: one word fewer so every byte read is ours.
                // SAFETY: readable for `words - 1` words from the unaligned pointer.
                unsafe { x::virgl_renderer_submit_cmd(ptr, ctx, (words as c_int - 1).max(0)) }
            } else {
                // SAFETY: NULL, or readable for `ndw` words (or a length the
                // library refuses before reading: negative, over 64 MiB).
                unsafe { x::virgl_renderer_submit_cmd(ptr, ctx, ndw) }
            };
            check("submit_cmd", rc);
        }
        12 => {
            let mut args = ResourceCreateArgs {
                handle: input.res_id(),
                target: u32::from(input.u8() % 9),
                format: [1, 2, 7, 64, 67, 121, 0, 999][usize::from(input.u8() % 8)],
                bind: input.u32(),
                width: 0,
                height: 0,
                depth: u32::from(input.u8() % 4),
                array_size: u32::from(input.u8() % 4),
                last_level: u32::from(input.u8() % 3),
                nr_samples: u32::from(input.u8() % 3),
                flags: input.u32(),
            };
            (args.width, args.height) = match input.u8() % 4 {
                0 => (u32::from(input.u8()), u32::from(input.u8())),
                1 => (u32::from(input.u16()), u32::from(input.u8())),
                2 => (input.u32(), input.u32()),
                _ => (64, 64),
            };
            let (iov, n) = if input.bool() {
                iov_list(input, mem)
            } else {
                (std::ptr::null_mut(), 0)
            };
            let n32 = u32::try_from(n).unwrap_or(u32::MAX);
            let p = if input.u8() == 0xff {
                std::ptr::null_mut()
            } else {
                &mut args as *mut ResourceCreateArgs
            };
            // SAFETY: NULL or a live args struct; the iovec array is NULL or `n`
            // entries describing arena memory.
            let rc = check("resource_create", unsafe {
                x::virgl_renderer_resource_create(p, iov, n32)
            });
            if rc == 0 {
                let attached = (n32 > 0).then_some((iov as usize, n32 as c_int));
                with_model(|m| m.resources.insert(args.handle, attached));
            }
        }
        13 | 14 => {
            let (iov, n) = if input.bool() {
                iov_list(input, mem)
            } else {
                (std::ptr::null_mut(), 0)
            };
            let args = CreateBlobArgs {
                res_handle: input.res_id(),
                ctx_id: input.ctx_id(),
                blob_mem: u32::from(input.u8() % 5),
                blob_flags: u32::from(input.u8() % 8),
                blob_id: match input.u8() % 4 {
                    0..=1 => 0,
                    2 => u64::from(input.u8()),
                    _ => input.u64(),
                },
                size: input.size(),
                iovecs: iov,
                num_iovs: u32::try_from(n).unwrap_or(u32::MAX),
            };
            // SAFETY: a live args struct whose iovecs are as in `iov_list`.
            let rc = check("resource_create_blob", unsafe {
                x::virgl_renderer_resource_create_blob(&args)
            });
            if rc == 0 {
                let attached = (args.blob_mem == virglrenderer::abi::BLOB_MEM_GUEST)
                    .then_some((iov as usize, args.num_iovs as c_int));
                with_model(|m| m.resources.insert(args.res_handle, attached));
            }
        }
        15 => {
            let res = input.res_id();
            let (iov, n) = iov_list(input, mem);
            let n = c_int::try_from(n).unwrap_or(if input.bool() { c_int::MAX } else { -1 });
            // SAFETY: NULL or `n` iovecs describing arena memory (a count that
            // does not fit is negative or huge with a NULL array).
            let rc = unsafe { x::virgl_renderer_resource_attach_iov(res as c_int, iov, n) };
            if check("resource_attach_iov", rc) == 0 {
                with_model(|m| {
                    let slot = m.resources.get_mut(&res);
                    let slot = slot.expect("attach succeeded on a resource the model lacks");
                    assert!(slot.is_none(), "attach succeeded over a backing");
                    *slot = Some((iov as usize, n));
                });
            }
        }
        16 => {
            let res = input.res_id();
            let sentinel = 0x5a5a as *mut libc::iovec;
            let (mut ptr, mut count) = (sentinel, -7 as c_int);
            let null = input.u8();
            let pp = if null & 1 != 0 {
                std::ptr::null_mut()
            } else {
                &mut ptr as *mut *mut libc::iovec
            };
            let pc = if null & 2 != 0 {
                std::ptr::null_mut()
            } else {
                &mut count as *mut c_int
            };
            // SAFETY: NULL or writable locals.
            unsafe { x::virgl_renderer_resource_detach_iov(res as c_int, pp, pc) };
            let known = with_model(|m| m.resources.get_mut(&res).map(Option::take));
            if null == 0 {
                let (want_ptr, want_count) = match known {
                    None => (sentinel as usize, -7),
                    Some(None) => (0, 0),
                    Some(Some((p, c))) => (p, c),
                };
                assert_eq!(
                    (ptr as usize, count),
                    (want_ptr, want_count),
                    "detach_iov of resource {res}"
                );
            }
        }
        17 => {
            let res = input.res_id();
            // QEMU unmaps a mapped blob before it unrefs it. (Reset and cleanup
            // below may still drop mapped blobs: the library keeps their ranges.)
            if with_model(|m| m.mapped.contains_key(&res)) {
                check("resource_unmap", x::virgl_renderer_resource_unmap(res));
            }
            x::virgl_renderer_resource_unref(res);
            with_model(|m| {
                m.resources.remove(&res);
                m.mapped.remove(&res);
            });
        }
        18 => {
            let res = input.res_id() as c_int;
            let mut info = ResourceInfo::default();
            let p = if input.bool() {
                std::ptr::null_mut()
            } else {
                &mut info as *mut ResourceInfo
            };
            // SAFETY: NULL or a writable local.
            let rc = check("resource_get_info", unsafe {
                x::virgl_renderer_resource_get_info(res, p)
            });
            if rc == 0 && !p.is_null() {
                assert_eq!(info.handle, res as u32, "get_info handle");
            }
        }
        19 => {
            let res = input.res_id() as c_int;
            let mut info = std::mem::MaybeUninit::<ResourceInfoExt>::zeroed();
            let p = if input.bool() {
                std::ptr::null_mut()
            } else {
                info.as_mut_ptr()
            };
            // SAFETY: NULL or a writable local.
            check("resource_get_info_ext", unsafe {
                x::virgl_renderer_resource_get_info_ext(res, p)
            });
        }
        20 => {
            let res = input.res_id();
            let mut v = 0u32;
            let p = if input.bool() {
                std::ptr::null_mut()
            } else {
                &mut v as *mut u32
            };
            // SAFETY: NULL or a writable local.
            check("resource_get_map_info", unsafe {
                x::virgl_renderer_resource_get_map_info(res, p)
            });
        }
        21 => {
            let res = input.res_id();
            let (mut ptr, mut size) = (std::ptr::null_mut::<c_void>(), 0u64);
            let null = input.u8();
            let pp = if null == 0xff {
                std::ptr::null_mut()
            } else {
                &mut ptr as *mut *mut c_void
            };
            // SAFETY: NULL or writable locals.
            let rc = check("resource_map", unsafe {
                x::virgl_renderer_resource_map(res, pp, &mut size)
            });
            if rc == 0 {
                assert!(!ptr.is_null() && size > 0, "map of {res}: {ptr:p} {size}");
                with_model(|m| m.mapped.insert(res, (ptr as usize, size)));
            }
        }
        22 => {
            let res = input.res_id();
            let rc = check("resource_unmap", x::virgl_renderer_resource_unmap(res));
            if rc == 0 {
                with_model(|m| m.mapped.remove(&res));
            }
        }
        23 | 24 => {
            let write = input.bool();
            let handle = input.res_id();
            let ctx = input.ctx_id();
            let level = u32::from(input.u8() % 3);
            let stride = match input.u8() % 4 {
                0 => 0,
                1 => u32::from(input.u16()),
                _ => input.u32(),
            };
            let layer_stride = if input.bool() { 0 } else { input.u32() };
            let mut bx = VirglBox {
                x: u32::from(input.u8()),
                y: u32::from(input.u8()),
                z: u32::from(input.u8() % 4),
                w: u32::from(input.u8()),
                h: u32::from(input.u8()),
                d: u32::from(input.u8() % 4),
            };
            if input.u8() % 4 == 0 {
                bx = VirglBox {
                    x: input.u32(),
                    y: input.u32(),
                    z: input.u32(),
                    w: input.u32(),
                    h: input.u32(),
                    d: input.u32(),
                };
            }
            let offset = match input.u8() % 4 {
                0 => 0,
                1 => u64::from(input.u16()),
                _ => input.u64(),
            };
            let (iov, n) = if input.bool() {
                iov_list(input, mem)
            } else {
                (std::ptr::null_mut(), 0)
            };
            let pb = if input.u8() == 0xff {
                std::ptr::null_mut()
            } else {
                &mut bx as *mut VirglBox
            };
            // SAFETY: NULL or a live box; iovecs as in `iov_list` (a NULL array
            // with a count means "use the backing").
            let rc = unsafe {
                if write {
                    x::virgl_renderer_transfer_write_iov(
                        handle,
                        ctx,
                        level as c_int,
                        stride,
                        layer_stride,
                        pb,
                        offset,
                        iov,
                        u32::try_from(n).unwrap_or(u32::MAX),
                    )
                } else {
                    x::virgl_renderer_transfer_read_iov(
                        handle,
                        ctx,
                        level,
                        stride,
                        layer_stride,
                        pb,
                        offset,
                        iov,
                        c_int::try_from(n).unwrap_or(-1),
                    )
                }
            };
            check("transfer", rc);
        }
        25 => {
            let res = input.res_id();
            let (mut w, mut h) = (0u32, 0u32);
            let null = input.u8() == 0xff;
            let pw = if null {
                std::ptr::null_mut()
            } else {
                &mut w as *mut u32
            };
            // SAFETY: NULL or writable locals.
            let p = unsafe { x::virgl_renderer_get_cursor_data(res, pw, &mut h) };
            if !p.is_null() {
                // SAFETY: the library returns malloc'ed memory the caller frees.
                unsafe { libc::free(p) };
            }
        }
        26 => match input.u8() % 6 {
            0 => {
                check(
                    "create_fence",
                    x::virgl_renderer_create_fence(input.u32() as c_int, input.ctx_id()),
                );
            }
            1 | 2 => {
                let ctx = input.ctx_id();
                let ring = if input.u8() == 0xff {
                    input.u32()
                } else {
                    u32::from(input.u8() % 4)
                };
                check(
                    "context_create_fence",
                    x::virgl_renderer_context_create_fence(ctx, input.u32(), ring, input.u64()),
                );
            }
            3 => x::virgl_renderer_ctx_attach_resource(
                input.ctx_id() as c_int,
                input.res_id() as c_int,
            ),
            4 => x::virgl_renderer_ctx_detach_resource(
                input.ctx_id() as c_int,
                input.res_id() as c_int,
            ),
            _ => x::virgl_renderer_force_ctx_0(),
        },
        _ => {
            // A guest writing into a mapped host blob (e.g. over a ring's words).
            let res = input.res_id();
            let off = u64::from(input.u32());
            let n = usize::from(input.u8());
            let bytes = input.bytes(n).to_vec();
            if let Some((addr, len)) = with_model(|m| m.mapped.get(&res).copied()) {
                let off = off % len;
                let n = (bytes.len() as u64).min(len - off) as usize;
                // SAFETY: inside a live mapping the library handed out (the model
                // forgets it on unmap, unref, reset and cleanup).
                unsafe {
                    std::ptr::copy_nonoverlapping(
                        bytes.as_ptr(),
                        (addr as *mut u8).add(off as usize),
                        n,
                    )
                };
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // Lavapipe directly, no loader; quiet logs unless asked for.
        if std::env::var_os("VENUS_HOST_DRIVER").is_none() {
            std::env::set_var("VENUS_HOST_DRIVER", "libvulkan_lvp.so");
        }
        if std::env::var_os("VENUS_LOG").is_none() {
            std::env::set_var("VENUS_LOG", "off");
        }
    });
    let mut input = Input(data);
    MEMORY.with(|m| {
        let mut mem = m.borrow_mut();
        let mut calls = 0;
        while !input.is_empty() && calls < 128 {
            calls += 1;
            step(&mut input, &mut mem);
        }
        // Everything the input created goes before its memory is reused; mapped
        // blobs are unmapped first, as QEMU does (each blob dropped while mapped
        // leaves a range behind for the life of the process, and the library
        // stops mapping after 4,096 of them).
        let mapped: Vec<u32> = with_model(|m| m.mapped.keys().copied().collect());
        for res in mapped {
            check("resource_unmap", x::virgl_renderer_resource_unmap(res));
        }
        x::virgl_renderer_reset();
        with_model(reset_model);
        mem.iov_arrays.clear();
    });
});
