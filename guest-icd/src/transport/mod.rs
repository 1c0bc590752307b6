//! Transports: how the guest ICD reaches a Venus host. One interface, several
//! implementations: a vtest client (any vtest server: ours or virglrenderer's),
//! in-process (links the host translator directly, for tests and benchmarks), and
//! the virtio-gpu DRM transport (inside a VM).
//!
//! Selection ([`connect`]): `VENUS_TRANSPORT=drm|vtest|in-process` wins; otherwise
//! DRM when a virtio_gpu render node exists, else vtest on `VTEST_SOCKET_NAME`
//! (default `/tmp/.virgl_test`, as Mesa). A render node whose device cannot do
//! Venus (e.g. a 2D-only virtio-gpu) falls back to vtest as well.

use std::sync::Arc;

use thiserror::Error;

pub mod drm;
pub mod in_process;
pub mod vtest;

/// Why the transport failed. Any of these means the device is lost.
#[derive(Debug, Error)]
pub enum TransportError {
    /// Connecting or talking to the host failed.
    #[error("transport I/O: {0}")]
    Io(#[from] std::io::Error),
    /// The host answered something the protocol does not allow.
    #[error("protocol: {0}")]
    Protocol(String),
    /// The host refused the request.
    #[error("host refused: {0}")]
    Refused(String),
    /// This transport is not available here.
    #[error("unavailable: {0}")]
    Unavailable(String),
}

/// Result with [`TransportError`].
pub type Result<T> = std::result::Result<T, TransportError>;

/// A blob the host created and this process mapped (read-write, shared).
#[derive(Debug)]
pub struct MappedBlob {
    /// The resource id naming it in Venus commands (`resourceId`).
    pub res_id: u32,
    /// Start of the mapping.
    pub ptr: *mut u8,
    /// Mapped size in bytes: at least what was asked for (vtest maps exactly that;
    /// in-process maps the host's whole blob, rounded up to its sharing granularity).
    pub size: u64,
}

// SAFETY: a MappedBlob is a plain description of a shared mapping; the owner
// (the transport) keeps the mapping alive until `destroy_blob`.
unsafe impl Send for MappedBlob {}
// SAFETY: see above.
unsafe impl Sync for MappedBlob {}

/// One connection to a Venus host with one Venus context.
pub trait Transport: Send + Sync {
    /// The host's Venus capset (id 4, version 0), 160 bytes.
    fn capset(&self) -> Result<[u8; venus_protocol::capset::CAPSET_SIZE]>;

    /// Creates and maps a blob of at least `size` bytes: `blob_id` 0 is plain
    /// shared memory; otherwise the id of a host-visible VkDeviceMemory (the host
    /// must already have executed its vkAllocateMemory). The blob is mappable and
    /// not exportable (vtest: `HOST3D` with `MAPPABLE` only, as Mesa asks for its
    /// shmems and for host-visible memory without export handle types).
    fn create_blob(&self, blob_id: u64, size: u64) -> Result<MappedBlob>;

    /// Unmaps and releases a blob this transport created (the mapping is gone
    /// afterwards; pointers into it must not be used).
    fn destroy_blob(&self, blob: MappedBlob);

    /// Executes a Venus command stream out of ring (ring_idx 0): vtest
    /// SUBMIT_CMD2, virtio-gpu EXECBUFFER, or a direct call. Returns once the host
    /// has consumed it (vtest: once written; the host executes in order).
    fn submit(&self, commands: &[u8]) -> Result<()>;

    /// Whether the host is still reachable (false after a failure).
    fn is_alive(&self) -> bool;

    /// The host's sharing granularity, when the transport knows it up front (DRM:
    /// the capset tail, or the guest page size). `None`: the connection learns it
    /// by creating a one-page probe blob and looking at the size it gets back.
    fn granularity(&self) -> Option<u64> {
        None
    }

    /// Whether the ICD may map host-visible memory for its own use (event
    /// feedback) without risking the connection. A blob the host cannot export
    /// ends a stock virglrenderer vtest connection (on lavapipe it always fails
    /// there), so that is tried only for an application's own vkMapMemory.
    fn internal_mappings(&self) -> bool {
        true
    }
}

/// Which transport `VENUS_TRANSPORT` and the machine select.
pub fn connect() -> Result<Arc<dyn Transport>> {
    connect_to(&std::env::var("VENUS_TRANSPORT").unwrap_or_default())
}

/// [`connect`] for a given `VENUS_TRANSPORT` value (empty: autodetect).
fn connect_to(choice: &str) -> Result<Arc<dyn Transport>> {
    match choice {
        "vtest" => Ok(Arc::new(vtest::VtestTransport::connect_default()?)),
        "in-process" => Ok(Arc::new(in_process::InProcessTransport::new()?)),
        "drm" => Ok(Arc::new(drm::DrmTransport::open_default().map_err(
            |e| match e {
                TransportError::Unavailable(m) => {
                    TransportError::Unavailable(format!("VENUS_TRANSPORT=drm: {m}"))
                }
                e => e,
            },
        )?)),
        "" => match virtio_gpu_render_node() {
            Some(node) => match drm::DrmTransport::open(&node) {
                Ok(t) => Ok(Arc::new(t)),
                Err(TransportError::Unavailable(why)) => {
                    tracing::debug!("{why}; trying vtest");
                    match vtest::VtestTransport::connect_default() {
                        Ok(t) => Ok(Arc::new(t)),
                        Err(e) => Err(TransportError::Unavailable(format!(
                            "{why}; and vtest: {e}"
                        ))),
                    }
                }
                Err(e) => Err(e),
            },
            None => Ok(Arc::new(vtest::VtestTransport::connect_default()?)),
        },
        other => Err(TransportError::Unavailable(format!(
            "unknown VENUS_TRANSPORT={other}"
        ))),
    }
}

/// The first `/dev/dri/renderD*` whose driver is virtio_gpu. On PCI the DRM
/// device's `device` is the PCI function (driver `virtio-pci`) and virtio_gpu is
/// bound to its `virtio<N>` child; elsewhere (MMIO) `device` may be the virtio
/// device itself.
pub fn virtio_gpu_render_node() -> Option<std::path::PathBuf> {
    virtio_gpu_render_node_in(std::path::Path::new("/sys/class/drm"))
}

fn virtio_gpu_render_node_in(class_drm: &std::path::Path) -> Option<std::path::PathBuf> {
    let is_virtio_gpu = |dev: &std::path::Path| {
        std::fs::read_link(dev.join("driver"))
            .is_ok_and(|d| d.file_name().is_some_and(|n| n == "virtio_gpu"))
    };
    let mut names: Vec<String> = std::fs::read_dir(class_drm)
        .ok()?
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("renderD"))
        .collect();
    names.sort();
    names.into_iter().find_map(|name| {
        let dev = class_drm.join(&name).join("device");
        let children = std::fs::read_dir(&dev).ok()?;
        let found = is_virtio_gpu(&dev)
            || children.flatten().any(|c| {
                c.file_name().to_string_lossy().starts_with("virtio") && is_virtio_gpu(&c.path())
            });
        found.then(|| std::path::Path::new("/dev/dri").join(&name))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drm_without_a_render_node_is_unavailable() {
        if virtio_gpu_render_node().is_some() {
            eprintln!("skipped: this machine has a virtio_gpu render node");
            return;
        }
        match connect_to("drm") {
            Err(TransportError::Unavailable(m)) => {
                assert!(
                    m.contains("VENUS_TRANSPORT=drm") && m.contains("virtio_gpu"),
                    "{m}"
                )
            }
            Err(e) => panic!("{e}"),
            Ok(_) => panic!("connected without a render node"),
        }
    }

    #[test]
    fn render_nodes_are_found_through_pci_and_virtio_devices() {
        use std::os::unix::fs::symlink;
        let root = std::env::temp_dir().join(format!("venus-sysfs-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let mk = |p: &str| std::fs::create_dir_all(root.join(p)).unwrap();
        mk("bus/pci/drivers/virtio-pci");
        mk("bus/virtio/drivers/virtio_gpu");
        mk("bus/pci/drivers/i915");
        // renderD128: Intel; renderD129: virtio-gpu on PCI (driver on the child).
        mk("devices/pci0/0000:00:02.0");
        mk("devices/pci0/0000:00:03.0/virtio1");
        mk("class/drm/renderD128");
        mk("class/drm/renderD129");
        mk("class/drm/card0");
        let l = |target: &str, link: &str| symlink(root.join(target), root.join(link)).unwrap();
        l("bus/pci/drivers/i915", "devices/pci0/0000:00:02.0/driver");
        l(
            "bus/pci/drivers/virtio-pci",
            "devices/pci0/0000:00:03.0/driver",
        );
        l(
            "bus/virtio/drivers/virtio_gpu",
            "devices/pci0/0000:00:03.0/virtio1/driver",
        );
        l("devices/pci0/0000:00:02.0", "class/drm/renderD128/device");
        l("devices/pci0/0000:00:03.0", "class/drm/renderD129/device");
        let class = root.join("class/drm");
        assert_eq!(
            virtio_gpu_render_node_in(&class),
            Some(std::path::PathBuf::from("/dev/dri/renderD129"))
        );
        // virtio-mmio style: the DRM device is the virtio device itself.
        mk("devices/mmio/virtio0");
        l(
            "bus/virtio/drivers/virtio_gpu",
            "devices/mmio/virtio0/driver",
        );
        std::fs::remove_file(root.join("class/drm/renderD129/device")).unwrap();
        l("devices/mmio/virtio0", "class/drm/renderD129/device");
        assert_eq!(
            virtio_gpu_render_node_in(&class),
            Some(std::path::PathBuf::from("/dev/dri/renderD129"))
        );
        // No virtio-gpu at all.
        std::fs::remove_dir_all(root.join("class/drm/renderD129")).unwrap();
        assert_eq!(virtio_gpu_render_node_in(&class), None);
        let _ = std::fs::remove_dir_all(&root);
    }

    #[test]
    fn unknown_transports_are_refused() {
        assert!(matches!(
            connect_to("carrier-pigeon"),
            Err(TransportError::Unavailable(_))
        ));
    }
}
