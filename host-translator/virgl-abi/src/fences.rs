//! Fence retirements on their way to the VMM. The host translator retires
//! context fences on its own threads; virglrenderer's contract is that the VMM's
//! callbacks run only inside `virgl_renderer_poll`, so retirements are queued
//! here and delivered there.

use std::sync::Mutex;

use venus_host::FenceSink;

/// A retirement waiting for `virgl_renderer_poll`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Retired {
    /// A ctx-0 fence (`virgl_renderer_create_fence`), from library generation
    /// `generation` (a reset or cleanup starts a new one; older ones are dropped).
    Ctx0 {
        /// Library generation it was created in.
        generation: u64,
        /// The VMM's fence id.
        fence: u32,
    },
    /// A context fence, from the context instance `serial` (a destroyed context's
    /// fences are dropped even if its id is reused).
    Context {
        /// Which context instance.
        serial: u64,
        /// Context id.
        ctx_id: u32,
        /// Ring index (timeline).
        ring_idx: u32,
        /// The VMM's fence id.
        fence_id: u64,
    },
}

/// Retirements not yet delivered. Never held while calling out of this module.
static QUEUE: Mutex<Vec<Retired>> = Mutex::new(Vec::new());

fn queue() -> std::sync::MutexGuard<'static, Vec<Retired>> {
    // Only pushes and swaps happen under the lock; a poisoned queue is still intact.
    QUEUE.lock().unwrap_or_else(|p| p.into_inner())
}

/// Queues a retirement.
pub fn push(r: Retired) {
    queue().push(r);
}

/// Takes every queued retirement, oldest first.
pub fn take() -> Vec<Retired> {
    std::mem::take(&mut *queue())
}

/// Drops everything queued (reset, cleanup).
pub fn clear() {
    queue().clear();
}

/// The fence sink of one Venus context instance.
#[derive(Debug)]
pub struct ContextFences {
    /// The context instance's serial.
    pub serial: u64,
}

impl FenceSink for ContextFences {
    fn fence_retired(&self, ctx_id: u32, ring_idx: u32, fence_id: u64) {
        push(Retired::Context {
            serial: self.serial,
            ctx_id,
            ring_idx,
            fence_id,
        });
    }
}
