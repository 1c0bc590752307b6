//! The virtio-gpu DRM transport: what the ICD uses inside a Linux VM whose
//! virtio-gpu device offers Venus (`/dev/dri/renderD*`, driver `virtio_gpu`).
//!
//! The sequence follows Mesa 25.0.7's `vn_renderer_virtgpu.c` (`virtgpu_init`):
//!
//! 1. open the render node `O_RDWR | O_CLOEXEC` and check with `VERSION` that its
//!    driver is `virtio_gpu` (as Mesa does);
//! 2. `GETPARAM`: 3D_FEATURES, CAPSET_QUERY_FIX, RESOURCE_BLOB, CONTEXT_INIT and
//!    HOST_VISIBLE must be nonzero (Mesa's required set, plus host-visible blobs,
//!    which are the only kind we map), and SUPPORTED_CAPSET_IDs must have bit 4
//!    (Venus); anything missing fails with [`TransportError::Unavailable`] naming it;
//! 3. `GET_CAPS` capset 4 version 0 into a zeroed buffer of
//!    [`tail::EXTENDED_CAPSET_SIZE`] bytes: the first 160 are the standard capset;
//!    our host appends a tail announcing its sharing granularity, stock hosts
//!    (virglrenderer) copy only 160 bytes and the guest page size is used instead
//!    ([`granularity_from_caps`]);
//! 4. `CONTEXT_INIT`: capset id 4, 64 rings (ring 0 for out-of-ring submits, 1..=63
//!    for the queue timelines `Connection::next_ring_idx` hands out), poll-rings
//!    mask 0 (no DRM events on fence signalling), as Mesa.
//!
//! Blobs: `RESOURCE_CREATE_BLOB{HOST3D, USE_MAPPABLE, size, blob_id}` (Mesa's
//! shmems and non-exported host-visible memory), size rounded up to the
//! granularity; then `MAP` and `mmap` of the DRM fd at the offset it returns. The
//! blob's resource id is the `res_handle` CREATE_BLOB answers; its GEM handle is
//! kept to `GEM_CLOSE` it after `munmap` on destroy. Submits: `EXECBUFFER` with
//! `VIRTGPU_EXECBUF_RING_IDX` and ring 0, no buffer objects, no fences (Mesa's
//! out-of-ring submits carry no syncs either).
//!
//! A failed `EXECBUFFER` loses commands, so it marks the transport dead (Mesa
//! reports `VK_ERROR_DEVICE_LOST` for it); so does any ioctl failing with `ENODEV`
//! or `EIO` (device gone). Other failures (e.g. out of host-visible space) fail
//! only that call.

use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use venus_protocol::capset::{tail, CAPSET_ID_VENUS, CAPSET_SIZE, CAPSET_VERSION};

use super::{MappedBlob, Result, Transport, TransportError};

mod device;
pub mod uapi;
#[cfg(test)]
mod uapi_c_check;

use device::Device;
use uapi::*;

/// Fence rings asked for at CONTEXT_INIT: the kernel's maximum, as Mesa asks
/// (ring 0 plus the 63 timelines `Connection::next_ring_idx` cycles through).
pub const NUM_RINGS: u64 = 64;

/// The kernel parameters that must be nonzero, with their names for errors.
const REQUIRED_PARAMS: [(u64, &str); 5] = [
    (VIRTGPU_PARAM_3D_FEATURES, "VIRTGPU_PARAM_3D_FEATURES"),
    (
        VIRTGPU_PARAM_CAPSET_QUERY_FIX,
        "VIRTGPU_PARAM_CAPSET_QUERY_FIX",
    ),
    (VIRTGPU_PARAM_RESOURCE_BLOB, "VIRTGPU_PARAM_RESOURCE_BLOB"),
    (VIRTGPU_PARAM_HOST_VISIBLE, "VIRTGPU_PARAM_HOST_VISIBLE"),
    (VIRTGPU_PARAM_CONTEXT_INIT, "VIRTGPU_PARAM_CONTEXT_INIT"),
];

/// A Venus context on a virtio_gpu render node.
#[derive(Debug)]
pub struct DrmTransport {
    dev: Device,
    path: PathBuf,
    capset: [u8; CAPSET_SIZE],
    granularity: u64,
    alive: AtomicBool,
    /// GEM handle of each live blob, by resource id.
    bos: Mutex<HashMap<u32, u32>>,
}

impl DrmTransport {
    /// Opens the first virtio_gpu render node ([`super::virtio_gpu_render_node`]).
    pub fn open_default() -> Result<Self> {
        let node = super::virtio_gpu_render_node().ok_or_else(|| {
            TransportError::Unavailable(
                "no virtio_gpu render node (no /sys/class/drm/renderD* with driver virtio_gpu)"
                    .into(),
            )
        })?;
        Self::open(&node)
    }

    /// Opens `path` and sets up a Venus context on it (steps 1-4 above).
    pub fn open(path: &Path) -> Result<Self> {
        let dev = Device::open(path)?;
        let driver = dev.driver_name().map_err(|e| {
            TransportError::Unavailable(format!("{}: not a DRM device: {e}", path.display()))
        })?;
        if driver != "virtio_gpu" {
            return Err(TransportError::Unavailable(format!(
                "{}: driver {driver:?}, not virtio_gpu",
                path.display()
            )));
        }
        check_params(path, |p| dev.getparam(p))?;
        let mut caps = [0u8; tail::EXTENDED_CAPSET_SIZE];
        dev.get_caps(CAPSET_ID_VENUS, CAPSET_VERSION, &mut caps)
            .map_err(|e| {
                TransportError::Unavailable(format!(
                    "{}: cannot read the Venus capset (id {CAPSET_ID_VENUS} v{CAPSET_VERSION}): {e}",
                    path.display()
                ))
            })?;
        let mut capset = [0u8; CAPSET_SIZE];
        capset.copy_from_slice(&caps[..CAPSET_SIZE]);
        let granularity = granularity_from_caps(&caps, device::page_size());
        let params = [
            DrmVirtgpuContextSetParam {
                param: VIRTGPU_CONTEXT_PARAM_CAPSET_ID,
                value: u64::from(CAPSET_ID_VENUS),
            },
            DrmVirtgpuContextSetParam {
                param: VIRTGPU_CONTEXT_PARAM_NUM_RINGS,
                value: NUM_RINGS,
            },
            DrmVirtgpuContextSetParam {
                param: VIRTGPU_CONTEXT_PARAM_POLL_RINGS_MASK,
                value: 0,
            },
        ];
        dev.context_init(&params).map_err(|e| {
            TransportError::Unavailable(format!(
                "{}: cannot create a Venus context: {e}",
                path.display()
            ))
        })?;
        tracing::debug!(
            node = %path.display(),
            granularity,
            announced = tail::granularity(&caps).is_some(),
            "virtio-gpu DRM transport ready"
        );
        Ok(DrmTransport {
            dev,
            path: path.to_path_buf(),
            capset,
            granularity,
            alive: AtomicBool::new(true),
            bos: Mutex::new(HashMap::new()),
        })
    }

    /// The render node this transport uses.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn check_alive(&self) -> Result<()> {
        if self.is_alive() {
            Ok(())
        } else {
            Err(TransportError::Io(io::Error::new(
                io::ErrorKind::NotConnected,
                format!(
                    "{}: the virtio-gpu device was lost earlier",
                    self.path.display()
                ),
            )))
        }
    }

    /// Turns an ioctl failure into a [`TransportError`], marking the transport dead
    /// when `fatal` or when the error says the device is gone.
    fn fail(&self, e: io::Error, fatal: bool) -> TransportError {
        if (fatal || is_device_gone(&e)) && self.alive.swap(false, Ordering::SeqCst) {
            tracing::error!("virtio-gpu device lost: {e}");
        }
        TransportError::Io(e)
    }

    fn bos(&self) -> std::sync::MutexGuard<'_, HashMap<u32, u32>> {
        self.bos.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Transport for DrmTransport {
    fn capset(&self) -> Result<[u8; CAPSET_SIZE]> {
        Ok(self.capset)
    }

    fn granularity(&self) -> Option<u64> {
        Some(self.granularity)
    }

    fn create_blob(&self, blob_id: u64, size: u64) -> Result<MappedBlob> {
        self.check_alive()?;
        let rounded = blob_size(size, self.granularity)?;
        let len = usize::try_from(rounded).map_err(|_| {
            TransportError::Protocol(format!("cannot map a blob of {rounded} bytes"))
        })?;
        let bo = self
            .dev
            .create_blob(
                VIRTGPU_BLOB_MEM_HOST3D,
                VIRTGPU_BLOB_FLAG_USE_MAPPABLE,
                rounded,
                blob_id,
            )
            .map_err(|e| {
                let msg = format!("blob {blob_id} of {rounded} bytes: {e}");
                self.fail(io::Error::new(e.kind(), msg), false)
            })?;
        if bo.res_handle == 0 {
            let _ = self.dev.gem_close(bo.bo_handle);
            return Err(TransportError::Protocol(format!(
                "RESOURCE_CREATE_BLOB for blob {blob_id} answered resource id 0"
            )));
        }
        let ptr = match self.dev.map(bo.bo_handle, len) {
            Ok(p) => p,
            Err(e) => {
                let _ = self.dev.gem_close(bo.bo_handle);
                let msg = format!("mapping blob {blob_id} (resource {}): {e}", bo.res_handle);
                return Err(self.fail(io::Error::new(e.kind(), msg), false));
            }
        };
        self.bos().insert(bo.res_handle, bo.bo_handle);
        tracing::trace!(
            res_id = bo.res_handle,
            bo = bo.bo_handle,
            blob_id,
            size = rounded,
            "blob mapped"
        );
        Ok(MappedBlob {
            res_id: bo.res_handle,
            ptr,
            size: rounded,
        })
    }

    fn destroy_blob(&self, blob: MappedBlob) {
        if let Ok(len) = usize::try_from(blob.size) {
            // SAFETY: `blob` came from our create_blob, which mapped exactly
            // `blob.size` bytes at `blob.ptr`; the caller gives it up here.
            unsafe { device::unmap(blob.ptr, len) };
        }
        let Some(bo) = self.bos().remove(&blob.res_id) else {
            tracing::warn!(
                res_id = blob.res_id,
                "destroying a blob this transport does not know"
            );
            return;
        };
        if let Err(e) = self.dev.gem_close(bo) {
            let e = self.fail(e, false);
            tracing::warn!(res_id = blob.res_id, "{e}");
        }
    }

    fn submit(&self, commands: &[u8]) -> Result<()> {
        self.check_alive()?;
        if commands.is_empty() {
            return Ok(());
        }
        self.dev
            .execbuffer(commands, 0)
            .map_err(|e| self.fail(e, true))
    }

    fn is_alive(&self) -> bool {
        self.alive.load(Ordering::SeqCst)
    }
}

/// Checks the kernel parameters the transport needs; `get` reads one (0 = absent).
fn check_params(path: &Path, get: impl Fn(u64) -> io::Result<u64>) -> Result<()> {
    let node = path.display();
    for (param, name) in REQUIRED_PARAMS {
        let v = get(param)
            .map_err(|e| TransportError::Unavailable(format!("{node}: cannot read {name}: {e}")))?;
        if v == 0 {
            return Err(TransportError::Unavailable(format!(
                "{node}: the virtio-gpu device or kernel lacks {name} \
                 (Venus needs a virtio-gpu with blob=on, hostmem and venus=on)"
            )));
        }
    }
    let ids = get(VIRTGPU_PARAM_SUPPORTED_CAPSET_IDS).map_err(|e| {
        TransportError::Unavailable(format!(
            "{node}: cannot read VIRTGPU_PARAM_SUPPORTED_CAPSET_IDs: {e}"
        ))
    })?;
    if ids & (1 << CAPSET_ID_VENUS) == 0 {
        return Err(TransportError::Unavailable(format!(
            "{node}: the host offers no Venus capset \
             (VIRTGPU_PARAM_SUPPORTED_CAPSET_IDs = {ids:#x}, bit {CAPSET_ID_VENUS} clear)"
        )));
    }
    Ok(())
}

/// The sharing granularity: what the capset tail announces, else the guest page
/// size (stock hosts); never below the page size, since mappings are made of pages.
pub fn granularity_from_caps(caps: &[u8], page_size: u64) -> u64 {
    let page = if page_size.is_power_of_two() {
        page_size
    } else {
        4096
    };
    tail::granularity(caps).map_or(page, |g| g.max(page))
}

/// `size` rounded up to `granularity`; zero and overflow are errors.
fn blob_size(size: u64, granularity: u64) -> Result<u64> {
    if size == 0 {
        return Err(TransportError::Protocol("a blob of 0 bytes".into()));
    }
    size.checked_next_multiple_of(granularity.max(1))
        .ok_or_else(|| TransportError::Protocol(format!("a blob of {size} bytes is too big")))
}

/// Whether an ioctl error means the device itself is gone.
fn is_device_gone(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::ENODEV) | Some(libc::EIO))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caps_with(granularity: Option<u64>) -> Vec<u8> {
        let std = [0u8; CAPSET_SIZE];
        match granularity {
            Some(g) => tail::extend(&std, g).to_vec(),
            // What GET_CAPS leaves in our zeroed buffer with a stock host.
            None => vec![0u8; tail::EXTENDED_CAPSET_SIZE],
        }
    }

    #[test]
    fn granularity_comes_from_the_tail_or_the_page_size() {
        assert_eq!(granularity_from_caps(&caps_with(Some(16384)), 4096), 16384);
        assert_eq!(granularity_from_caps(&caps_with(Some(4096)), 4096), 4096);
        // Stock virglrenderer: no tail, the guest page size.
        assert_eq!(granularity_from_caps(&caps_with(None), 4096), 4096);
        assert_eq!(granularity_from_caps(&caps_with(None), 16384), 16384);
        // A 16 KiB-page guest never maps less than a page.
        assert_eq!(granularity_from_caps(&caps_with(Some(4096)), 16384), 16384);
        // A bad tail (not a power of two) is ignored.
        assert_eq!(granularity_from_caps(&caps_with(Some(12288)), 4096), 4096);
        // A nonsense page size falls back to 4 KiB.
        assert_eq!(granularity_from_caps(&caps_with(None), 0), 4096);
        let page = device::page_size();
        assert!(page.is_power_of_two() && page >= 4096);
    }

    #[test]
    fn blob_sizes_round_up_and_refuse_zero_and_overflow() {
        assert_eq!(blob_size(1, 4096).ok(), Some(4096));
        assert_eq!(blob_size(4096, 4096).ok(), Some(4096));
        assert_eq!(blob_size(131_268, 16384).ok(), Some(147_456));
        assert!(matches!(
            blob_size(0, 4096),
            Err(TransportError::Protocol(_))
        ));
        assert!(matches!(
            blob_size(u64::MAX - 10, 4096),
            Err(TransportError::Protocol(_))
        ));
    }

    fn params(missing: Option<u64>, capset_ids: u64) -> impl Fn(u64) -> io::Result<u64> {
        move |p| {
            Ok(if Some(p) == missing {
                0
            } else if p == VIRTGPU_PARAM_SUPPORTED_CAPSET_IDS {
                capset_ids
            } else {
                1
            })
        }
    }

    #[test]
    fn missing_params_are_named() {
        let node = Path::new("/dev/dri/renderD128");
        assert!(check_params(node, params(None, 1 << 4 | 1 << 2)).is_ok());
        for (p, name) in REQUIRED_PARAMS {
            match check_params(node, params(Some(p), 1 << 4)) {
                Err(TransportError::Unavailable(m)) => {
                    assert!(m.contains(name) && m.contains("renderD128"), "{m}")
                }
                other => panic!("{name}: {other:?}"),
            }
        }
        // virgl only (capset ids 1 and 2), no Venus.
        match check_params(node, params(None, 0b110)) {
            Err(TransportError::Unavailable(m)) => {
                assert!(
                    m.contains("SUPPORTED_CAPSET_IDs") && m.contains("0x6"),
                    "{m}"
                )
            }
            other => panic!("{other:?}"),
        }
        // An ioctl that fails outright is reported too.
        let failing = |_| Err(io::Error::from_raw_os_error(libc::ENOTTY));
        assert!(matches!(
            check_params(node, failing),
            Err(TransportError::Unavailable(_))
        ));
    }

    #[test]
    fn opening_a_node_that_does_not_exist_fails_cleanly() {
        let r = DrmTransport::open(Path::new("/nonexistent/renderD128"));
        match r {
            Err(TransportError::Io(e)) => {
                assert!(e.to_string().contains("/nonexistent/renderD128"), "{e}")
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_file_that_is_no_drm_node_is_refused() {
        // /dev/null takes no DRM ioctls: VERSION fails with ENOTTY.
        match DrmTransport::open(Path::new("/dev/null")) {
            Err(TransportError::Unavailable(m)) => {
                assert!(m.contains("not a DRM device"), "{m}")
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn device_gone_errors() {
        assert!(is_device_gone(&io::Error::from_raw_os_error(libc::ENODEV)));
        assert!(is_device_gone(&io::Error::from_raw_os_error(libc::EIO)));
        assert!(!is_device_gone(&io::Error::from_raw_os_error(libc::ENOMEM)));
    }
}
