//! What a vtest client session needs from the translator core, as two small traits:
//! implemented by [`Renderer`]/[`Context`] for the real server, and by a fake in the
//! unit tests (so the session logic can be tested without a host driver).

use std::sync::Arc;

use crate::{Blob, Context, FenceSink, Renderer, Result};

/// The process-wide part: capset and context creation.
pub(crate) trait Backend: Send + Sync + 'static {
    /// One context.
    type Context: BackendContext;

    /// The Venus capset (id 4, version 0) as GET_CAPSET answers it.
    fn capset_bytes(&self) -> Vec<u8>;

    /// Creates context `ctx_id`; its fence retirements go to `fences`.
    fn create_context(
        &self,
        ctx_id: u32,
        name: &str,
        fences: Arc<dyn FenceSink>,
    ) -> Result<Self::Context>;
}

/// One context: the calls [`Context`] offers.
pub(crate) trait BackendContext: Send + 'static {
    /// See [`Context::submit_cmd`].
    fn submit_cmd(&self, data: &[u8]) -> Result<()>;
    /// See [`Context::create_blob`].
    fn create_blob(&self, res_id: u32, blob_id: u64, size: u64, blob_flags: u32) -> Result<Blob>;
    /// See [`Context::destroy_resource`].
    fn destroy_resource(&self, res_id: u32);
    /// See [`Context::submit_fence`].
    fn submit_fence(&self, ring_idx: u32, fence_id: u64) -> Result<()>;
    /// See [`Context::is_fatal`].
    fn is_fatal(&self) -> bool;
    /// See [`Context::set_cancel_probe`] (test doubles may ignore it).
    fn set_cancel_probe(&self, _probe: crate::CancelProbe) {}
}

impl Backend for Arc<Renderer> {
    type Context = Context;

    fn capset_bytes(&self) -> Vec<u8> {
        Renderer::announced_capset(self).to_vec()
    }

    fn create_context(
        &self,
        ctx_id: u32,
        name: &str,
        fences: Arc<dyn FenceSink>,
    ) -> Result<Context> {
        Renderer::create_context(self, ctx_id, name, fences)
    }
}

impl BackendContext for Context {
    fn submit_cmd(&self, data: &[u8]) -> Result<()> {
        Context::submit_cmd(self, data)
    }

    fn create_blob(&self, res_id: u32, blob_id: u64, size: u64, blob_flags: u32) -> Result<Blob> {
        Context::create_blob(self, res_id, blob_id, size, blob_flags)
    }

    fn destroy_resource(&self, res_id: u32) {
        Context::destroy_resource(self, res_id)
    }

    fn submit_fence(&self, ring_idx: u32, fence_id: u64) -> Result<()> {
        Context::submit_fence(self, ring_idx, fence_id)
    }

    fn is_fatal(&self) -> bool {
        Context::is_fatal(self)
    }

    fn set_cancel_probe(&self, probe: crate::CancelProbe) {
        Context::set_cancel_probe(self, probe)
    }
}
