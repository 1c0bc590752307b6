//! The in-process transport: the host translator (`venus_host`) linked into this
//! process, for tests and benchmarks without a server.
//!
//! The host loads its Vulkan driver directly — `VENUS_HOST_DRIVER`, default
//! `libvulkan_lvp.so` — and never through the Vulkan loader: this code runs inside
//! an ICD that the loader itself loaded, and going back through the loader would
//! find this ICD again. One [`Renderer`] serves the whole process (a `OnceLock`);
//! each transport owns one [`Context`] with a process-wide unique context id.
//!
//! Blobs are the host's shared memory fds, mapped here shared read-write. A submit
//! runs the commands on the calling thread, so replies are in the reply stream when
//! [`Transport::submit`] returns. Fences are not used (a no-op [`FenceSink`]).

use std::io;
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, OnceLock};

use venus_host::{Context, FenceSink, Renderer, RendererConfig};
use venus_protocol::capset::CAPSET_SIZE;
use venus_protocol::vtest::BLOB_FLAG_MAPPABLE;

use super::{MappedBlob, Result, Transport, TransportError};

/// The driver loaded when `VENUS_HOST_DRIVER` is unset or empty.
pub const DEFAULT_HOST_DRIVER: &str = "libvulkan_lvp.so";

/// The process-wide renderer, or why it could not be created (not retried: the
/// driver will not appear later).
static RENDERER: OnceLock<std::result::Result<Arc<Renderer>, String>> = OnceLock::new();

/// The next context id; ids are unique across all transports of this process.
static NEXT_CONTEXT_ID: AtomicU32 = AtomicU32::new(1);

/// Fence retirements are not used by this transport yet.
struct NoFences;

impl FenceSink for NoFences {
    fn fence_retired(&self, _ctx_id: u32, _ring_idx: u32, _fence_id: u64) {}
}

/// One Venus context of the in-process host.
pub struct InProcessTransport {
    ctx: Context,
    capset: [u8; CAPSET_SIZE],
    next_res_id: AtomicU32,
    dead: AtomicBool,
}

impl std::fmt::Debug for InProcessTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InProcessTransport")
            .field("ctx_id", &self.ctx.id())
            .field("alive", &self.is_alive())
            .finish()
    }
}

impl InProcessTransport {
    /// Creates a context on the process-wide renderer (creating the renderer, and
    /// loading the host driver, on first use).
    pub fn new() -> Result<Self> {
        let renderer = renderer()?;
        let ctx_id = NEXT_CONTEXT_ID
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |id| id.checked_add(1))
            .map_err(|_| TransportError::Unavailable("context ids exhausted".into()))?;
        let ctx = renderer
            .create_context(ctx_id, "venus-in-process", Arc::new(NoFences))
            .map_err(|e| TransportError::Refused(format!("creating context {ctx_id}: {e}")))?;
        Ok(InProcessTransport {
            ctx,
            capset: renderer.capset_bytes(),
            next_res_id: AtomicU32::new(1),
            dead: AtomicBool::new(false),
        })
    }

    /// This transport's context id.
    pub fn ctx_id(&self) -> u32 {
        self.ctx.id()
    }

    fn check_alive(&self) -> Result<()> {
        if self.is_alive() {
            Ok(())
        } else {
            Err(TransportError::Refused(format!(
                "context {} is fatal",
                self.ctx.id()
            )))
        }
    }
}

/// The process-wide renderer, created on first use.
fn renderer() -> Result<Arc<Renderer>> {
    RENDERER
        .get_or_init(|| {
            let driver = std::env::var_os("VENUS_HOST_DRIVER")
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from(DEFAULT_HOST_DRIVER));
            let config = RendererConfig {
                host_layers: Vec::new(),
                host_driver: Some(driver.clone()),
                ..RendererConfig::from_env()
            };
            Renderer::new(config)
                .map_err(|e| format!("in-process host on {}: {e}", driver.display()))
        })
        .clone()
        .map_err(TransportError::Unavailable)
}

impl Transport for InProcessTransport {
    fn capset(&self) -> Result<[u8; CAPSET_SIZE]> {
        Ok(self.capset)
    }

    fn create_blob(&self, blob_id: u64, size: u64) -> Result<MappedBlob> {
        self.check_alive()?;
        let res_id = self
            .next_res_id
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |id| id.checked_add(1))
            .map_err(|_| TransportError::Refused("resource ids exhausted".into()))?;
        let blob = self
            .ctx
            .create_blob(res_id, blob_id, size, BLOB_FLAG_MAPPABLE)
            .map_err(|e| TransportError::Refused(format!("blob {blob_id} of {size} bytes: {e}")))?;
        let len = match usize::try_from(blob.size) {
            Ok(len) if len > 0 && blob.size >= size => len,
            _ => {
                self.ctx.destroy_resource(res_id);
                return Err(TransportError::Protocol(format!(
                    "the host's blob for {size} bytes has {} bytes",
                    blob.size
                )));
            }
        };
        // SAFETY: a fresh shared mapping chosen by the kernel (no address hint) of the
        // fd the host just handed us, for `len` (> 0) bytes, which the host says the fd
        // holds; nothing aliases it yet.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                blob.fd.as_raw_fd(),
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            let err = io::Error::last_os_error();
            self.ctx.destroy_resource(res_id);
            return Err(TransportError::Io(io::Error::new(
                err.kind(),
                format!("mapping blob {res_id} of {len} bytes: {err}"),
            )));
        }
        // `blob.fd` closes here; the mapping keeps the memory.
        Ok(MappedBlob {
            res_id,
            ptr: ptr.cast(),
            size: blob.size,
        })
    }

    fn destroy_blob(&self, blob: MappedBlob) {
        super::vtest::unmap(&blob);
        self.ctx.destroy_resource(blob.res_id);
    }

    fn submit(&self, commands: &[u8]) -> Result<()> {
        self.check_alive()?;
        self.ctx.submit_cmd(commands).map_err(|e| {
            self.dead.store(true, Ordering::SeqCst);
            TransportError::Refused(e.to_string())
        })
    }

    fn is_alive(&self) -> bool {
        !self.dead.load(Ordering::SeqCst) && !self.ctx.is_fatal()
    }
}

#[cfg(test)]
mod tests {
    use venus_protocol::capset::VenusCapset;

    use super::*;

    #[test]
    fn contexts_share_one_renderer_and_have_their_own_ids() {
        let a = InProcessTransport::new().unwrap();
        let b = InProcessTransport::new().unwrap();
        assert_ne!(a.ctx_id(), b.ctx_id());
        assert!(Arc::ptr_eq(&renderer().unwrap(), &renderer().unwrap()));
        let capset = a.capset().unwrap();
        assert_eq!(capset, b.capset().unwrap());
        VenusCapset::from_bytes(&capset)
            .unwrap()
            .validate_like_mesa()
            .unwrap();
    }

    #[test]
    fn blobs_map_read_write_and_ids_are_per_context() {
        let t = InProcessTransport::new().unwrap();
        let a = t.create_blob(0, 10_000).unwrap();
        let b = t.create_blob(0, 4096).unwrap();
        assert_eq!((a.res_id, b.res_id), (1, 2));
        assert!(a.size >= 10_000 && b.size >= 4096);
        // SAFETY: both mappings are at least as large as asked.
        unsafe {
            a.ptr.add(9_999).write(7);
            b.ptr.write(9);
            assert_eq!((a.ptr.add(9_999).read(), b.ptr.read()), (7, 9));
        }
        t.destroy_blob(a);
        t.destroy_blob(b);
        // A blob id naming no device memory is refused, and nothing else breaks.
        assert!(matches!(
            t.create_blob(12345, 4096),
            Err(TransportError::Refused(_))
        ));
        assert!(t.is_alive());
    }

    #[test]
    fn a_malformed_stream_kills_only_its_context() {
        let bad = InProcessTransport::new().unwrap();
        let good = InProcessTransport::new().unwrap();
        // Command type 9999 does not exist: fatal for that context.
        let mut cmd = Vec::new();
        cmd.extend_from_slice(&9999i32.to_le_bytes());
        cmd.extend_from_slice(&0u32.to_le_bytes());
        assert!(bad.submit(&cmd).is_err());
        assert!(!bad.is_alive());
        assert!(bad.submit(&cmd).is_err());
        assert!(bad.create_blob(0, 4096).is_err());
        assert!(good.is_alive());
        let blob = good.create_blob(0, 4096).unwrap();
        good.destroy_blob(blob);
    }
}
