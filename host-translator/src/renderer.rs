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
        RendererConfig { host_layers }
    }
}

/// The process-wide renderer: the host Vulkan library and what every context shares.
pub struct Renderer {
    pub(crate) entry: ash::Entry,
    /// Global commands (vkCreateInstance, instance enumeration).
    pub(crate) global: Arc<DispatchTable>,
    pub(crate) config: RendererConfig,
    capset: [u8; CAPSET_SIZE],
}

impl Renderer {
    /// Loads the host Vulkan library (through the Vulkan loader).
    pub fn new(config: RendererConfig) -> Result<Arc<Renderer>> {
        // SAFETY: loading the system Vulkan loader runs its initializers, which is
        // what every Vulkan application does.
        let entry = unsafe { ash::Entry::load() }.map_err(|e| Error::Loader(e.to_string()))?;
        let gipa = entry.static_fn().get_instance_proc_addr;
        let global = DispatchTable::load(|name| {
            // SAFETY: a global-level lookup with a NUL-terminated name.
            unsafe { gipa(vk::Instance::null(), name.as_ptr()) }
        });
        // The mask says which extensions our decoder understands: all of the protocol's.
        let mask = ExtensionMask::from_extension_numbers(EXTENSIONS.iter().map(|e| e.1))
            .map_err(|e| Error::Unsupported(e.to_string()))?;
        let capset = VenusCapset::new(mask, false).to_bytes();
        tracing::info!(layers = ?config.host_layers, "renderer ready");
        Ok(Arc::new(Renderer {
            entry,
            global: Arc::new(global),
            config,
            capset,
        }))
    }

    /// The Venus capset (id 4, version 0) this host offers.
    pub fn capset_bytes(&self) -> [u8; CAPSET_SIZE] {
        self.capset
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
