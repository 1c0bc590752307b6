//! One guest context: its objects, resources, rings, reply stream and timelines.

use std::collections::HashMap;
use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use ash::vk;
use venus_protocol::generated::host_calls::DispatchTable;

use crate::error::{Error, Result};
use crate::object_table::ObjectTable;
use crate::renderer::Renderer;
use crate::ring::Ring;
use crate::shmem::Shmem;
use crate::timeline::Timeline;

/// Receives fence retirements. Called from any thread, in order per (context, ring).
pub trait FenceSink: Send + Sync {
    /// Fence `fence_id` submitted on `ring_idx` of context `ctx_id` has retired.
    fn fence_retired(&self, ctx_id: u32, ring_idx: u32, fence_id: u64);
}

/// Asked during long host waits whether the guest has gone away (e.g. its vtest
/// socket hung up); `true` ends the wait and makes the context fatal.
pub type CancelProbe = Box<dyn Fn() -> bool + Send + Sync>;

/// Shared memory handed to a client: an fd it can mmap at offset 0 for `size` bytes.
#[derive(Debug)]
pub struct Blob {
    /// The fd (a memfd on Linux).
    pub fd: OwnedFd,
    /// Bytes mappable from offset 0.
    pub size: u64,
}

/// Where the host writes replies (`vkSetReplyCommandStreamMESA`).
pub(crate) struct ReplyStream {
    pub shm: Arc<Shmem>,
    pub offset: u64,
    pub size: u64,
    pub pos: u64,
}

/// What the host knows about an instance.
pub(crate) struct InstanceInfo {
    pub table: Arc<DispatchTable>,
    pub ash: ash::Instance,
}

/// What the host knows about a physical device.
pub(crate) struct PhysicalInfo {
    /// The host instance it was enumerated from.
    pub instance: u64,
    /// Host device extensions.
    pub extensions: Vec<vk::ExtensionProperties>,
}

/// What the host knows about a device.
pub(crate) struct DeviceInfo {
    /// The host physical device it was created on.
    pub physical: u64,
    pub table: Arc<DispatchTable>,
    pub ash: ash::Device,
    /// Host-pointer import: (alignment, memory types the driver can import into),
    /// when the device was created with `VK_EXT_external_memory_host`.
    pub host_import: Option<(u64, u32)>,
    /// How this device shares host-visible memory.
    pub strategy: crate::memory_strategy::MemoryStrategy,
    /// `vkGetMemoryHostPointerPropertiesEXT`, when the device has host-pointer import.
    pub host_pointer_properties: Option<vk::PFN_vkGetMemoryHostPointerPropertiesEXT>,
    /// Memory type property flags, by index.
    pub memory_types: Vec<vk::MemoryPropertyFlags>,
}

/// Everything a context owns, behind its lock.
pub(crate) struct State {
    pub renderer: Arc<Renderer>,
    pub objects: ObjectTable,
    /// Dispatch table by host dispatchable handle (instance, physical device, device,
    /// queue, command buffer).
    pub tables: HashMap<u64, Arc<DispatchTable>>,
    pub instances: HashMap<u64, InstanceInfo>,
    pub physical: HashMap<u64, PhysicalInfo>,
    pub devices: HashMap<u64, DeviceInfo>,
    pub resources: HashMap<u32, Arc<Shmem>>,
    /// Host VkDeviceMemory → its driver mapping (map-ptr strategy): (address, size).
    pub mapped: HashMap<u64, (usize, u64)>,
    /// Resource id → the size the guest asked for (what it may see).
    pub requested: HashMap<u32, u64>,
    /// Host VkDeviceMemory → the shared memory backing it (host-visible allocations).
    pub memories: HashMap<u64, Arc<Shmem>>,
    /// Reply streams, one per command source (ring id, or 0 for out-of-ring).
    pub replies: HashMap<u64, ReplyStream>,
    pub rings: HashMap<u64, Ring>,
    pub timelines: HashMap<u32, Timeline>,
    /// ring_idx bound by vkGetDeviceQueue2 → (host device, host queue).
    pub queue_of_ring: HashMap<u32, (u64, u64)>,
    /// Shared memory this context may still allocate (`crate::limits`).
    pub memory_quota: Arc<crate::limits::MemoryQuota>,
    /// Descriptor set layouts, sets and pipeline layouts, for checking descriptor
    /// writes (`crate::descriptor_layout`).
    pub layouts: crate::descriptor_layout::Layouts,
}

impl State {
    /// The host physical device of host device `device`.
    pub fn objects_physical_of(&self, device: u64) -> Option<u64> {
        self.devices.get(&device).map(|d| d.physical)
    }
}

/// The part of a context its ring threads share.
pub(crate) struct Shared {
    pub id: u32,
    pub state: Mutex<State>,
    fatal: AtomicBool,
    pub fences: Arc<dyn FenceSink>,
    /// The virtqueue seqno (`vkSubmitVirtqueueSeqnoMESA`), and a condvar for waiters.
    pub vq_seqno: Mutex<u64>,
    pub vq_cond: Condvar,
    /// How many commands of each type this context executed.
    pub command_counts: Vec<std::sync::atomic::AtomicU64>,
    /// Whether the guest went away (asked between slices of long host waits).
    cancel: Mutex<Option<CancelProbe>>,
}

impl Shared {
    /// Locks the state (a poisoned lock — a panic in a worker — is still usable:
    /// the context is marked fatal by whoever caught the panic).
    pub fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Marks the context fatal (first reason logged).
    pub fn set_fatal(&self, reason: &str) {
        if !self.fatal.swap(true, Ordering::SeqCst) {
            tracing::warn!(ctx = self.id, "guest context is fatal: {reason}");
        }
        // Wake anyone waiting on this context.
        self.vq_cond.notify_all();
    }

    pub fn is_fatal(&self) -> bool {
        self.fatal.load(Ordering::SeqCst)
    }

    /// Whether the front end says the guest has gone away.
    pub fn guest_gone(&self) -> bool {
        let probe = self.cancel.lock().unwrap_or_else(|p| p.into_inner());
        probe.as_ref().is_some_and(|p| p())
    }

    /// Stops everything (context teardown): like fatal, without the warning.
    pub fn shutdown(&self) {
        self.fatal.store(true, Ordering::SeqCst);
        self.vq_cond.notify_all();
    }
}

/// One guest context. Methods take `&self`; the context synchronizes internally.
/// Dropping it stops its rings and destroys every host object it owns.
pub struct Context {
    shared: Arc<Shared>,
}

impl Context {
    pub(crate) fn new(renderer: Arc<Renderer>, id: u32, fences: Arc<dyn FenceSink>) -> Context {
        let memory_quota = crate::limits::MemoryQuota::new(renderer.context_memory_quota());
        let state = State {
            renderer,
            objects: ObjectTable::default(),
            tables: HashMap::new(),
            instances: HashMap::new(),
            physical: HashMap::new(),
            devices: HashMap::new(),
            resources: HashMap::new(),
            memories: HashMap::new(),
            mapped: HashMap::new(),
            requested: HashMap::new(),
            replies: HashMap::new(),
            rings: HashMap::new(),
            timelines: HashMap::new(),
            queue_of_ring: HashMap::new(),
            memory_quota,
            layouts: Default::default(),
        };
        Context {
            shared: Arc::new(Shared {
                id,
                state: Mutex::new(state),
                fatal: AtomicBool::new(false),
                fences,
                vq_seqno: Mutex::new(0),
                vq_cond: Condvar::new(),
                command_counts: (0..venus_protocol::generated::host_calls::COMMAND_TYPE_COUNT)
                    .map(|_| std::sync::atomic::AtomicU64::new(0))
                    .collect(),
                cancel: Mutex::new(None),
            }),
        }
    }

    /// The context id.
    pub fn id(&self) -> u32 {
        self.shared.id
    }

    fn fatal_error(&self, reason: String) -> Error {
        Error::Fatal {
            ctx: self.shared.id,
            reason,
        }
    }

    /// Executes a command stream sent out of ring (vtest SUBMIT_CMD2 batch data,
    /// virtio-gpu EXECBUFFER). An error means the context is now fatal.
    pub fn submit_cmd(&self, data: &[u8]) -> Result<()> {
        if self.shared.is_fatal() {
            return Err(self.fatal_error("context already fatal".into()));
        }
        let shared = &self.shared;
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            crate::executor::execute(shared, data, crate::executor::Origin::Submit)
        }));
        let r = match r {
            Ok(r) => r,
            Err(_) => Err("panic while executing commands".to_string()),
        };
        r.map_err(|reason| {
            self.shared.set_fatal(&reason);
            self.fatal_error(reason)
        })
    }

    /// Creates resource `res_id` as a blob: `blob_id` 0 is plain shared memory,
    /// otherwise the id of a host-visible VkDeviceMemory of this context.
    pub fn create_blob(
        &self,
        res_id: u32,
        blob_id: u64,
        size: u64,
        blob_flags: u32,
    ) -> Result<Blob> {
        let _ = blob_flags;
        let size_asked = size;
        let mut st = self.shared.lock();
        if st.resources.contains_key(&res_id) {
            return Err(Error::BadResource(res_id));
        }
        if st.resources.len() >= crate::limits::MAX_RESOURCES {
            tracing::warn!(
                ctx = self.shared.id,
                "resource quota ({}) reached; refusing blob {res_id}",
                crate::limits::MAX_RESOURCES
            );
            return Err(Error::Quota(format!(
                "context {} already has {} resources",
                self.shared.id,
                crate::limits::MAX_RESOURCES
            )));
        }
        let shm = if blob_id == 0 {
            if size == 0 || size > crate::limits::MAX_BLOB_SIZE {
                return Err(Error::Unsupported(format!("blob size {size}")));
            }
            let shm = Shmem::new_charged(
                c"venus-blob",
                size,
                st.renderer.granularity,
                &st.memory_quota,
            )
            .inspect_err(|e| tracing::warn!(ctx = self.shared.id, "blob {res_id}: {e}"))?;
            Arc::new(shm)
        } else {
            let mem = st
                .objects
                .get(vk::ObjectType::DEVICE_MEMORY, blob_id)
                .map(|e| e.host)
                .ok_or_else(|| {
                    Error::Unsupported(format!("blob id {blob_id} names no device memory"))
                })?;
            let shm = st.memories.get(&mem).cloned().ok_or_else(|| {
                Error::Unsupported(format!("device memory {blob_id} is not host visible"))
            })?;
            if size > shm.size() {
                return Err(Error::Unsupported(format!(
                    "blob size {size} exceeds memory size {}",
                    shm.size()
                )));
            }
            shm
        };
        let fd = shm.dup_fd()?;
        let size = shm.size();
        crate::blob_log::record(
            self.shared.id,
            res_id,
            blob_id,
            size_asked,
            size,
            shm.ptr() as usize,
            st.renderer.granularity,
        );
        st.resources.insert(res_id, shm);
        st.requested.insert(res_id, size_asked);
        Ok(Blob { fd, size })
    }

    /// Forgets resource `res_id` (its memory lives on while a ring, reply stream or
    /// device memory still uses it).
    pub fn destroy_resource(&self, res_id: u32) {
        let mut st = self.shared.lock();
        st.resources.remove(&res_id);
        st.requested.remove(&res_id);
    }

    /// The host address and size of device memory `blob_id` for an in-process VMM:
    /// the shared memory (host-pointer strategy) or the driver's mapping (map-ptr).
    /// The address stays valid while the memory lives.
    pub fn map_blob(&self, blob_id: u64) -> Result<(usize, u64)> {
        let st = self.shared.lock();
        let mem = st
            .objects
            .get(vk::ObjectType::DEVICE_MEMORY, blob_id)
            .map(|e| e.host)
            .ok_or_else(|| {
                Error::Unsupported(format!("blob id {blob_id} names no device memory"))
            })?;
        if let Some(shm) = st.memories.get(&mem) {
            return Ok((shm.ptr() as usize, shm.size()));
        }
        st.mapped.get(&mem).copied().ok_or_else(|| {
            Error::Unsupported(format!("device memory {blob_id} is not host visible"))
        })
    }

    /// Asks for `fence_id` on timeline `ring_idx` to be retired (through the
    /// [`FenceSink`]) once everything submitted on that timeline before it is done.
    pub fn submit_fence(&self, ring_idx: u32, fence_id: u64) -> Result<()> {
        crate::timeline::submit_fence(&self.shared, ring_idx, fence_id)
            .map_err(|reason| self.fatal_error(reason))
    }

    /// Whether the guest has made this context fatal.
    pub fn is_fatal(&self) -> bool {
        self.shared.is_fatal()
    }

    /// Installs `probe`, asked between the slices of long host waits (a guest's
    /// `vkWaitForFences` with no timeout): when it says the guest has gone away,
    /// the wait ends and the context becomes fatal, so a front end can release a
    /// client that hung up while its context was blocked in such a wait.
    pub fn set_cancel_probe(&self, probe: CancelProbe) {
        *self.shared.cancel.lock().unwrap_or_else(|p| p.into_inner()) = Some(probe);
    }
}

impl Drop for Context {
    fn drop(&mut self) {
        let shared = &self.shared;
        if std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            crate::teardown::destroy_all(shared)
        }))
        .is_err()
        {
            tracing::error!(
                ctx = shared.id,
                "panic while releasing the context's host objects"
            );
        }
        if let Some(path) = std::env::var_os("VENUS_COMMAND_STATS") {
            append_command_stats(&self.shared, std::path::Path::new(&path));
        }
    }
}

/// Appends `name count` lines for every command type this context executed
/// (`VENUS_COMMAND_STATS=FILE`: used to find commands no test exercises).
fn append_command_stats(shared: &Shared, path: &std::path::Path) {
    use std::io::Write;
    let mut text = String::new();
    for (n, c) in shared.command_counts.iter().enumerate() {
        let c = c.load(Ordering::Relaxed);
        if c == 0 {
            continue;
        }
        if let Some((name, _)) = venus_protocol::generated::COMMAND_NAMES
            .iter()
            .find(|(_, num)| *num as usize == n)
        {
            text.push_str(&format!("{name} {c}\n"));
        }
    }
    let r = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .and_then(|mut f| f.write_all(text.as_bytes()));
    if let Err(e) = r {
        tracing::warn!("cannot write command statistics to {}: {e}", path.display());
    }
}
