//! The library's global state: the renderer, the VMM's callbacks, the contexts
//! and the (global) resource table, and the operations on them that are not about
//! resources (those are in `resources.rs`).
//!
//! Locking: one mutex over [`Library`], taken by every entry point and never held
//! while calling into a Venus context that may block (command execution, fences,
//! blob creation, teardown) or while calling the VMM's callbacks. The fence queue
//! (`fences.rs`) has its own lock, taken after this one or alone.

use std::collections::HashMap;
use std::ffi::{c_int, c_void};
use std::sync::{Arc, LazyLock, Mutex, MutexGuard};

use venus_host::{Context, Renderer, RendererConfig};
use venus_protocol::capset::tail::EXTENDED_CAPSET_SIZE;

use crate::abi::{
    Callbacks, WriteContextFenceFn, WriteFenceFn, CAPSET_VENUS, CONTEXT_FLAG_CAPSET_ID_MASK,
    INERT_CAPSETS, MAX_RING_IDX, RENDERER_VENUS,
};
use crate::error::{invalid, AbiError, AbiResult};
use crate::fences::{self, ContextFences, Retired};
use crate::resources::Resource;

/// Most contexts alive at once.
pub const MAX_CONTEXTS: usize = 4096;
/// Longest command buffer one `submit_cmd` takes (QEMU itself caps at 4 MiB).
pub const MAX_SUBMIT_BYTES: usize = 64 << 20;
/// Longest debug name read (virtio-gpu's `debug_name` is 64 bytes).
const MAX_NAME: usize = 64;

/// What `virgl_renderer_init` was given.
#[derive(Clone, Copy, Debug)]
pub struct Client {
    cookie: usize,
    flags: c_int,
    callbacks: usize,
    write_fence: Option<WriteFenceFn>,
    write_context_fence: Option<WriteContextFenceFn>,
}

/// One context.
pub struct ContextEntry {
    /// Unique per context instance (ids can be reused after a destroy).
    pub serial: u64,
    /// The capset it was created with.
    pub capset: u32,
    /// The Venus context; `None` for an inert (non-Venus) context.
    pub venus: Option<Arc<Context>>,
}

/// Everything the library holds.
#[derive(Default)]
pub struct Library {
    pub(crate) renderer: Option<Arc<Renderer>>,
    pub(crate) client: Option<Client>,
    pub(crate) contexts: HashMap<u32, ContextEntry>,
    pub(crate) resources: HashMap<u32, Resource>,
    /// Host bytes held by plain resources.
    pub(crate) pixel_bytes: u64,
    next_serial: u64,
    /// Bumped by reset and cleanup: ctx-0 fences of an older generation are dropped.
    generation: u64,
}

static LIBRARY: LazyLock<Mutex<Library>> = LazyLock::new(|| Mutex::new(Library::default()));

/// Locks the library. A panic caught while it was held leaves the tables usable
/// (every update is a single insert or remove), so a poisoned lock is taken over.
pub fn lock() -> MutexGuard<'static, Library> {
    LIBRARY.lock().unwrap_or_else(|p| p.into_inner())
}

/// Things to drop after the lock is released (their teardown may block on
/// context threads).
#[derive(Default)]
pub struct Released {
    contexts: Vec<Arc<Context>>,
    resources: Vec<Resource>,
    renderer: Option<Arc<Renderer>>,
}

impl Released {
    /// Drops everything, in order: resources, contexts, then the renderer.
    pub fn finish(self) {
        for r in self.resources {
            r.release();
        }
        drop(self.contexts);
        drop(self.renderer);
    }
}

impl Library {
    fn next_serial(&mut self) -> u64 {
        self.next_serial = self.next_serial.wrapping_add(1);
        self.next_serial
    }

    /// The renderer, created on first need (capsets are queried before init).
    pub fn renderer(&mut self) -> AbiResult<Arc<Renderer>> {
        if let Some(r) = &self.renderer {
            return Ok(r.clone());
        }
        let r = Renderer::new(RendererConfig::from_env())
            .map_err(|e| AbiError::NoRenderer(e.to_string()))?;
        tracing::info!(granularity = r.granularity(), "Venus renderer created");
        self.renderer = Some(r.clone());
        Ok(r)
    }

    /// The Venus capset with our tail, or `None` if no renderer can be created.
    pub fn venus_capset(&mut self) -> Option<[u8; EXTENDED_CAPSET_SIZE]> {
        match self.renderer() {
            Ok(r) => Some(r.announced_capset()),
            Err(e) => {
                e.log("capset");
                None
            }
        }
    }

    /// The sharing granularity (the renderer must exist).
    pub fn granularity(&self) -> AbiResult<u64> {
        self.renderer
            .as_ref()
            .map(|r| r.granularity())
            .ok_or(AbiError::Uninitialized)
    }

    /// Fails unless `virgl_renderer_init` succeeded.
    pub fn require_init(&self) -> AbiResult<()> {
        self.client.map(|_| ()).ok_or(AbiError::Uninitialized)
    }

    /// `virgl_renderer_init`.
    ///
    /// # Safety
    ///
    /// `cb` is NULL or points to callbacks of the version it states, which stay
    /// valid until cleanup.
    pub unsafe fn init(
        &mut self,
        cookie: *mut c_void,
        flags: c_int,
        cb: *const Callbacks,
    ) -> AbiResult<()> {
        if cb.is_null() {
            return Err(invalid!("NULL callbacks"));
        }
        // SAFETY: non-null; every version has `version` first.
        let version = unsafe { std::ptr::addr_of!((*cb).version).read() };
        if version < 1 {
            return Err(invalid!("callbacks version {version}"));
        }
        // SAFETY: `write_fence` exists from version 1.
        let write_fence = unsafe { std::ptr::addr_of!((*cb).write_fence).read() };
        let write_context_fence = if version >= 3 {
            // SAFETY: `write_context_fence` exists from version 3.
            unsafe { std::ptr::addr_of!((*cb).write_context_fence).read() }
        } else {
            None
        };
        let client = Client {
            cookie: cookie as usize,
            flags,
            callbacks: cb as usize,
            write_fence,
            write_context_fence,
        };
        if let Some(old) = self.client {
            let same = (old.cookie, old.flags, old.callbacks)
                == (client.cookie, client.flags, client.callbacks);
            if same {
                return Ok(());
            }
            if !self.contexts.is_empty() || !self.resources.is_empty() {
                return Err(AbiError::Busy);
            }
        }
        self.renderer()?;
        if flags & RENDERER_VENUS == 0 {
            tracing::warn!(
                flags,
                "init without VIRGL_RENDERER_VENUS; serving Venus anyway"
            );
        }
        if write_context_fence.is_none() {
            tracing::warn!(
                version,
                "callbacks have no write_context_fence: context fences cannot be signalled"
            );
        }
        tracing::info!(flags, version, "virgl_renderer_init");
        self.client = Some(client);
        Ok(())
    }

    /// `virgl_renderer_reset`: destroys every context and resource; the client
    /// and renderer stay.
    pub fn reset(&mut self) -> Released {
        let released = self.take_all();
        self.generation = self.generation.wrapping_add(1);
        fences::clear();
        released
    }

    /// `virgl_renderer_cleanup`: releases everything, the renderer included.
    pub fn cleanup(&mut self) -> Released {
        let mut released = self.reset();
        released.renderer = self.renderer.take();
        self.client = None;
        released
    }

    fn take_all(&mut self) -> Released {
        self.pixel_bytes = 0;
        Released {
            contexts: self.contexts.drain().filter_map(|(_, c)| c.venus).collect(),
            resources: self.resources.drain().map(|(_, r)| r).collect(),
            renderer: None,
        }
    }

    /// `virgl_renderer_context_create_with_flags`.
    ///
    /// # Safety
    ///
    /// `name` is NULL or readable for `min(nlen, 64)` bytes.
    pub unsafe fn create_context(
        &mut self,
        ctx_id: u32,
        ctx_flags: u32,
        nlen: u32,
        name: *const std::ffi::c_char,
    ) -> AbiResult<()> {
        self.require_init()?;
        if ctx_id == 0 {
            return Err(invalid!("context id 0"));
        }
        if ctx_flags & !CONTEXT_FLAG_CAPSET_ID_MASK != 0 {
            return Err(invalid!("context flags {ctx_flags:#x}"));
        }
        let capset = ctx_flags & CONTEXT_FLAG_CAPSET_ID_MASK;
        if let Some(existing) = self.contexts.get(&ctx_id) {
            return if existing.capset == capset {
                Ok(())
            } else {
                Err(invalid!(
                    "context {ctx_id} exists with capset {}",
                    existing.capset
                ))
            };
        }
        if self.contexts.len() >= MAX_CONTEXTS {
            return Err(AbiError::TooLarge(format!(
                "more than {MAX_CONTEXTS} contexts"
            )));
        }
        // The VMM passes the guest's length with a fixed-size name buffer: read at
        // most 64 bytes, up to the first NUL.
        let len = (nlen as usize).min(MAX_NAME);
        let mut bytes = Vec::with_capacity(len);
        if !name.is_null() {
            for i in 0..len {
                // SAFETY: non-null and readable for `len` bytes (the caller's
                // contract); reading stops at the first NUL.
                let b = unsafe { name.cast::<u8>().add(i).read() };
                if b == 0 {
                    break;
                }
                bytes.push(b);
            }
        }
        let name = String::from_utf8_lossy(&bytes).into_owned();
        let serial = self.next_serial();
        let venus = if capset == CAPSET_VENUS {
            let renderer = self.renderer()?;
            let sink = Arc::new(ContextFences { serial });
            Some(Arc::new(renderer.create_context(ctx_id, &name, sink)?))
        } else if INERT_CAPSETS.contains(&capset) {
            tracing::info!(
                ctx_id,
                capset,
                name,
                "non-Venus context accepted; it takes no commands"
            );
            None
        } else {
            return Err(invalid!("capset {capset} is not supported (only Venus, 4)"));
        };
        tracing::debug!(ctx_id, capset, name, "context created");
        self.contexts.insert(
            ctx_id,
            ContextEntry {
                serial,
                capset,
                venus,
            },
        );
        Ok(())
    }

    /// `virgl_renderer_context_destroy`: the context, to drop after unlocking.
    /// Its resources stay (they are global until unref).
    pub fn destroy_context(&mut self, ctx_id: u32) -> AbiResult<Option<Arc<Context>>> {
        self.require_init()?;
        let entry = self
            .contexts
            .remove(&ctx_id)
            .ok_or_else(|| AbiError::Unknown(format!("context {ctx_id}")))?;
        tracing::debug!(ctx_id, "context destroyed");
        Ok(entry.venus)
    }

    /// The Venus context `ctx_id` (errors for unknown and inert contexts).
    pub fn venus_context(&self, ctx_id: u32) -> AbiResult<Arc<Context>> {
        self.require_init()?;
        let entry = self
            .contexts
            .get(&ctx_id)
            .ok_or_else(|| AbiError::Unknown(format!("context {ctx_id}")))?;
        entry.venus.clone().ok_or_else(|| {
            invalid!(
                "context {ctx_id} (capset {}) takes no commands",
                entry.capset
            )
        })
    }

    /// `virgl_renderer_create_fence`: a ctx-0 fence. Nothing runs on ctx 0 here,
    /// so it retires at the next poll.
    pub fn create_ctx0_fence(&mut self, fence: u32) -> AbiResult<()> {
        self.require_init()?;
        fences::push(Retired::Ctx0 {
            generation: self.generation,
            fence,
        });
        Ok(())
    }

    /// `virgl_renderer_context_create_fence`, first half: validates and returns the
    /// Venus context to submit the fence to (after unlocking), or `None` when the
    /// fence was retired at once (inert or fatal context).
    pub fn context_fence_target(
        &mut self,
        ctx_id: u32,
        ring_idx: u32,
        fence_id: u64,
    ) -> AbiResult<Option<(Arc<Context>, u64)>> {
        self.require_init()?;
        if ring_idx >= MAX_RING_IDX {
            return Err(invalid!("ring index {ring_idx} (below {MAX_RING_IDX})"));
        }
        let entry = self
            .contexts
            .get(&ctx_id)
            .ok_or_else(|| AbiError::Unknown(format!("context {ctx_id}")))?;
        let retire_now = Retired::Context {
            serial: entry.serial,
            ctx_id,
            ring_idx,
            fence_id,
        };
        match &entry.venus {
            Some(ctx) if !ctx.is_fatal() => Ok(Some((ctx.clone(), entry.serial))),
            _ => {
                // No work can be pending: retire it so the guest is not left waiting.
                fences::push(retire_now);
                Ok(None)
            }
        }
    }

    /// What `poll` needs: the client's callbacks, the generation and the live
    /// context instances.
    pub fn poll_view(&self) -> Option<(Client, u64, HashMap<u32, u64>)> {
        let client = self.client?;
        let live = self
            .contexts
            .iter()
            .map(|(&id, e)| (id, e.serial))
            .collect();
        Some((client, self.generation, live))
    }
}

/// A context fence that could not be queued on its timeline: retired at once
/// so the guest is not left waiting (the error is still returned).
pub fn retire_failed_fence(serial: u64, ctx_id: u32, ring_idx: u32, fence_id: u64) {
    fences::push(Retired::Context {
        serial,
        ctx_id,
        ring_idx,
        fence_id,
    });
}

/// `virgl_renderer_poll`: delivers `retired` (taken from the queue, oldest
/// first) through the callbacks, dropping those of destroyed contexts and older
/// generations. Called without the library lock held.
pub fn deliver(client: Client, generation: u64, live: &HashMap<u32, u64>, retired: Vec<Retired>) {
    let cookie = client.cookie as *mut c_void;
    for r in retired {
        match r {
            Retired::Ctx0 {
                generation: g,
                fence,
            } if g == generation => {
                if let Some(f) = client.write_fence {
                    // SAFETY: the VMM's callback with its own cookie, as registered
                    // at init; no lock is held, so it may call back into us.
                    unsafe { f(cookie, fence) };
                }
            }
            Retired::Context {
                serial,
                ctx_id,
                ring_idx,
                fence_id,
            } if live.get(&ctx_id) == Some(&serial) => {
                if let Some(f) = client.write_context_fence {
                    // SAFETY: as above.
                    unsafe { f(cookie, ctx_id, ring_idx, fence_id) };
                }
            }
            stale => tracing::trace!(
                ?stale,
                "retirement of a destroyed context or generation dropped"
            ),
        }
    }
}

/// The byte length of a command buffer of `ndw` dwords, within [`MAX_SUBMIT_BYTES`].
pub fn check_submit_len(ndw: c_int) -> AbiResult<usize> {
    let words = usize::try_from(ndw).map_err(|_| invalid!("negative length {ndw}"))?;
    let bytes = words
        .checked_mul(4)
        .filter(|&b| b <= MAX_SUBMIT_BYTES)
        .ok_or_else(|| {
            AbiError::TooLarge(format!("{words} dwords (at most {MAX_SUBMIT_BYTES} bytes)"))
        })?;
    Ok(bytes)
}
