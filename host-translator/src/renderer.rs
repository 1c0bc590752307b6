//! The front-end surface: the process-wide renderer and its contexts.

use std::sync::Arc;

use ash::vk;
use venus_protocol::capset::{ExtensionMask, VenusCapset, CAPSET_SIZE};
use venus_protocol::generated::host_calls::DispatchTable;
use venus_protocol::generated::EXTENSIONS;

pub use crate::context::{Blob, Context, FenceSink};
use crate::error::{Error, Result};

/// Process-wide settings.
#[derive(Clone, Debug, Default)]
pub struct RendererConfig {
    /// Extra instance layers to enable on the host (e.g. `VK_LAYER_KHRONOS_validation`).
    pub host_layers: Vec<String>,
    /// A Vulkan driver library (e.g. `libvulkan_lvp.so`) to load directly, without
    /// the Vulkan loader. For an in-process host inside a process whose loader
    /// serves the guest ICD; no layers can be used then.
    pub host_driver: Option<std::path::PathBuf>,
    /// Minimum sharing granularity in bytes (`VENUS_HOST_GRANULARITY`, e.g. 16384
    /// to reproduce Apple Silicon on a 4 KiB host); the page size at least.
    pub granularity: Option<u64>,
    /// How host-visible memory is shared (`VENUS_HOST_MEMORY`).
    pub memory: crate::memory_strategy::MemoryChoice,
    /// Shared memory each context may hold, in bytes (`VENUS_CONTEXT_MEMORY_QUOTA`;
    /// default [`crate::limits::DEFAULT_MEMORY_QUOTA`]).
    pub context_memory_quota: Option<u64>,
    /// Live Vulkan objects each context may hold (`VENUS_CONTEXT_OBJECT_QUOTA`;
    /// default [`crate::limits::MAX_OBJECTS`]).
    pub context_object_quota: Option<usize>,
}

impl RendererConfig {
    /// Settings from the environment: `VENUS_HOST_LAYERS` is a comma-separated list
    /// of instance layers the host enables for every guest instance.
    pub fn from_env() -> Self {
        let host_layers = std::env::var("VENUS_HOST_LAYERS")
            .map(|v| {
                v.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(String::from)
                    .collect()
            })
            .unwrap_or_default();
        let host_driver = std::env::var_os("VENUS_HOST_DRIVER").map(Into::into);
        let granularity = std::env::var("VENUS_HOST_GRANULARITY")
            .ok()
            .and_then(|v| v.trim().parse().ok());
        let memory = match std::env::var("VENUS_HOST_MEMORY") {
            Ok(v) => crate::memory_strategy::MemoryChoice::parse(v.trim()).unwrap_or_else(|| {
                tracing::warn!(
                    "VENUS_HOST_MEMORY={v} is not auto|fd|host-pointer|map-ptr; using auto"
                );
                Default::default()
            }),
            Err(_) => Default::default(),
        };
        RendererConfig {
            host_layers,
            host_driver,
            granularity,
            memory,
            context_memory_quota: env_number("VENUS_CONTEXT_MEMORY_QUOTA"),
            context_object_quota: env_number("VENUS_CONTEXT_OBJECT_QUOTA"),
        }
    }
}

/// A number from the environment; a value that does not parse is ignored with a warning.
fn env_number<T: std::str::FromStr>(name: &str) -> Option<T> {
    let v = std::env::var(name).ok()?;
    let n = v.trim().parse().ok();
    if n.is_none() {
        tracing::warn!("{name}={v} is not a number; using the default");
    }
    n
}

/// The process-wide renderer: the host Vulkan library and what every context shares.
pub struct Renderer {
    pub(crate) entry: ash::Entry,
    /// Keeps a directly loaded driver library alive.
    _driver: Option<libloading::Library>,
    /// Global commands (vkCreateInstance, instance enumeration).
    pub(crate) global: Arc<DispatchTable>,
    pub(crate) config: RendererConfig,
    /// The sharing granularity (a power of two, at least the page size).
    pub(crate) granularity: u64,
    capset: [u8; CAPSET_SIZE],
}

impl Renderer {
    /// Loads the host Vulkan library (through the Vulkan loader).
    pub fn new(config: RendererConfig) -> Result<Arc<Renderer>> {
        let (entry, driver) = match &config.host_driver {
            None => {
                // SAFETY: loading the system Vulkan loader runs its initializers, which
                // is what every Vulkan application does.
                let e = unsafe { ash::Entry::load() }.map_err(|e| Error::Loader(e.to_string()))?;
                (e, None)
            }
            Some(path) => load_driver(path)?,
        };
        let gipa = entry.static_fn().get_instance_proc_addr;
        let global = DispatchTable::load(|name| {
            // SAFETY: a global-level lookup with a NUL-terminated name.
            unsafe { gipa(vk::Instance::null(), name.as_ptr()) }
        });
        // The mask says which extensions our decoder understands: all of the protocol's.
        let mask = ExtensionMask::from_extension_numbers(EXTENSIONS.iter().map(|e| e.1))
            .map_err(|e| Error::Unsupported(e.to_string()))?;
        let capset = VenusCapset::new(mask, false).to_bytes();
        let granularity = config
            .granularity
            .unwrap_or(0)
            .max(crate::shmem::page_size())
            .max(probe_import_alignment(&entry, &config.host_layers))
            .checked_next_power_of_two()
            .ok_or_else(|| Error::Unsupported("VENUS_HOST_GRANULARITY too large".into()))?;
        tracing::info!(layers = ?config.host_layers, granularity, memory = ?config.memory, "renderer ready");
        Ok(Arc::new(Renderer {
            entry,
            _driver: driver,
            global: Arc::new(global),
            granularity,
            config,
            capset,
        }))
    }

    /// Shared memory each context may hold, in bytes.
    pub fn context_memory_quota(&self) -> u64 {
        self.config
            .context_memory_quota
            .unwrap_or(crate::limits::DEFAULT_MEMORY_QUOTA)
    }

    /// Live Vulkan objects each context may hold.
    pub fn context_object_quota(&self) -> usize {
        self.config
            .context_object_quota
            .unwrap_or(crate::limits::MAX_OBJECTS)
    }

    /// The Venus capset (id 4, version 0) this host offers.
    pub fn capset_bytes(&self) -> [u8; CAPSET_SIZE] {
        self.capset
    }

    /// The capset this host announces (to vtest clients and through the virgl
    /// ABI): the standard bytes followed by our tail carrying the sharing
    /// granularity (`venus_protocol::capset::tail`; Mesa reads the 160 bytes it
    /// knows and skips the rest).
    pub fn announced_capset(&self) -> [u8; venus_protocol::capset::tail::EXTENDED_CAPSET_SIZE] {
        venus_protocol::capset::tail::extend(&self.capset, self.granularity)
    }

    /// The sharing granularity in bytes: every blob size and host address handed
    /// out is a multiple of it (a power of two, at least the page size).
    pub fn granularity(&self) -> u64 {
        self.granularity
    }

    /// Creates context `ctx_id`; retirements of its fences go to `fences`.
    pub fn create_context(
        self: &Arc<Self>,
        ctx_id: u32,
        name: &str,
        fences: Arc<dyn FenceSink>,
    ) -> Result<Context> {
        tracing::debug!(ctx_id, name, "context created");
        Ok(Context::new(self.clone(), ctx_id, fences))
    }
}

/// Loads an ICD library directly: negotiates the loader-ICD interface and uses its
/// `vk_icdGetInstanceProcAddr` as the entry point.
fn load_driver(path: &std::path::Path) -> Result<(ash::Entry, Option<libloading::Library>)> {
    type Negotiate = unsafe extern "system" fn(*mut u32) -> vk::Result;
    let err = |e: libloading::Error| Error::Loader(format!("{}: {e}", path.display()));
    // SAFETY: loading a Vulkan driver library runs its initializers, as the loader would.
    let lib = unsafe { libloading::Library::new(path) }.map_err(err)?;
    // SAFETY: the ICD ABI: these symbols have these signatures.
    let gipa: vk::PFN_vkGetInstanceProcAddr =
        unsafe { *lib.get(b"vk_icdGetInstanceProcAddr\0").map_err(err)? };
    // SAFETY: as above.
    if let Ok(neg) = unsafe { lib.get::<Negotiate>(b"vk_icdNegotiateLoaderICDInterfaceVersion\0") }
    {
        let mut v = 5u32;
        // SAFETY: a valid pointer to our version.
        let r = unsafe { neg(&mut v) };
        if r != vk::Result::SUCCESS {
            return Err(Error::Loader(format!(
                "{}: interface negotiation failed: {r:?}",
                path.display()
            )));
        }
    }
    // SAFETY: `gipa` stays valid while `lib` (returned with the entry) is loaded.
    let entry = unsafe {
        ash::Entry::from_static_fn(ash::StaticFn {
            get_instance_proc_addr: gipa,
        })
    };
    Ok((entry, Some(lib)))
}

/// The largest `minImportedHostPointerAlignment` of the host's devices (0 if none
/// imports host pointers). Shared-memory blobs (rings, reply streams) are created
/// before any guest device exists, yet must already honour it — on MoltenVK it is
/// 16 KiB.
fn probe_import_alignment(entry: &ash::Entry, layers: &[String]) -> u64 {
    let names: Vec<std::ffi::CString> = layers
        .iter()
        .filter_map(|l| std::ffi::CString::new(l.as_str()).ok())
        .collect();
    let ptrs: Vec<*const std::ffi::c_char> = names.iter().map(|n| n.as_ptr()).collect();
    let app = vk::ApplicationInfo::default().api_version(vk::API_VERSION_1_1);
    let info = vk::InstanceCreateInfo::default()
        .application_info(&app)
        .enabled_layer_names(&ptrs);
    // SAFETY: a short-lived probe instance with valid create info.
    let Ok(instance) = (unsafe { entry.create_instance(&info, None) }) else {
        return 0;
    };
    let mut best = 0u64;
    // SAFETY: queries on the live probe instance, destroyed below.
    unsafe {
        for pd in instance.enumerate_physical_devices().unwrap_or_default() {
            let has_ext = instance
                .enumerate_device_extension_properties(pd)
                .unwrap_or_default()
                .iter()
                .any(|e| e.extension_name_as_c_str().ok() == Some(c"VK_EXT_external_memory_host"));
            if !has_ext {
                continue;
            }
            let mut hp = vk::PhysicalDeviceExternalMemoryHostPropertiesEXT::default();
            let mut p2 = vk::PhysicalDeviceProperties2::default().push_next(&mut hp);
            instance.get_physical_device_properties2(pd, &mut p2);
            best = best.max(hp.min_imported_host_pointer_alignment);
        }
        instance.destroy_instance(None);
    }
    best
}
