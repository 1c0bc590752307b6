//! The front-end surface: renderer, contexts, blobs, fences.
//! (Interface first; the core fills the bodies in.)

use std::os::fd::OwnedFd;
use std::sync::Arc;

use crate::error::{Error, Result};

/// Process-wide settings.
#[derive(Clone, Debug, Default)]
pub struct RendererConfig {
    /// Extra instance layers to enable on the host (e.g. the validation layer).
    pub host_layers: Vec<String>,
}

/// Receives fence retirements. Called from any thread, in order per (context, ring).
pub trait FenceSink: Send + Sync {
    /// Fence `fence_id` submitted on `ring_idx` of context `ctx_id` has retired.
    fn fence_retired(&self, ctx_id: u32, ring_idx: u32, fence_id: u64);
}

/// Shared memory handed to a client: an fd it can mmap at offset 0 for `size` bytes.
#[derive(Debug)]
pub struct Blob {
    /// The fd (a memfd on Linux).
    pub fd: OwnedFd,
    /// Bytes mappable from offset 0.
    pub size: u64,
}

/// The process-wide renderer.
pub struct Renderer {
    _config: RendererConfig,
}

impl Renderer {
    /// Loads the host Vulkan library and probes it.
    pub fn new(config: RendererConfig) -> Result<Arc<Renderer>> {
        Ok(Arc::new(Renderer { _config: config }))
    }

    /// The Venus capset (id 4, version 0) this host offers.
    pub fn capset_bytes(&self) -> [u8; venus_protocol::capset::CAPSET_SIZE] {
        [0; venus_protocol::capset::CAPSET_SIZE]
    }

    /// Creates context `ctx_id`; retirements of its fences go to `fences`.
    pub fn create_context(
        self: &Arc<Self>,
        ctx_id: u32,
        name: &str,
        fences: Arc<dyn FenceSink>,
    ) -> Result<Context> {
        let _ = (name, fences);
        Ok(Context { id: ctx_id })
    }
}

/// One guest context. Methods take `&self`; the context synchronizes internally.
/// Dropping it destroys every host object it owns.
pub struct Context {
    id: u32,
}

impl Context {
    /// The context id.
    pub fn id(&self) -> u32 {
        self.id
    }

    /// Executes a command stream sent out of ring (vtest SUBMIT_CMD2 batch data,
    /// virtio-gpu EXECBUFFER). An error means the context is now fatal.
    pub fn submit_cmd(&self, data: &[u8]) -> Result<()> {
        let _ = data;
        Err(Error::Unsupported("core not built yet".into()))
    }

    /// Creates resource `res_id` as a blob: `blob_id` 0 is plain shared memory,
    /// otherwise the id of a host-visible VkDeviceMemory of this context.
    pub fn create_blob(&self, res_id: u32, blob_id: u64, size: u64, blob_flags: u32) -> Result<Blob> {
        let _ = (res_id, blob_id, size, blob_flags);
        Err(Error::Unsupported("core not built yet".into()))
    }

    /// Forgets resource `res_id` (its memory lives on while mapped or in use).
    pub fn destroy_resource(&self, res_id: u32) {
        let _ = res_id;
    }

    /// Asks for `fence_id` on timeline `ring_idx` to be retired (through the
    /// [`FenceSink`]) once everything submitted on that timeline before it is done.
    pub fn submit_fence(&self, ring_idx: u32, fence_id: u64) -> Result<()> {
        let _ = (ring_idx, fence_id);
        Err(Error::Unsupported("core not built yet".into()))
    }

    /// Whether the guest has made this context fatal.
    pub fn is_fatal(&self) -> bool {
        false
    }
}
