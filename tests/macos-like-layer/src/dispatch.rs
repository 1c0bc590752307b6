//! Per-instance and per-device dispatch tables of the next layer, keyed by the
//! loader's dispatch pointer (`*(void **)handle`), which an instance shares
//! with its physical devices and a device with its queues and command buffers.

use std::collections::BTreeMap;
use std::sync::{Arc, PoisonError, RwLock};

use ash::vk;
use ash::vk::Handle;

/// Resolves `$name` through the next layer's `vkGet*ProcAddr` as `Option<$pfn>`.
macro_rules! load {
    ($gpa:expr, $handle:expr, $name:literal, $pfn:ty) => {{
        // SAFETY: `$gpa` is the next layer's GetProcAddr, `$handle` a handle
        // it created (or null for global commands) and `$name` NUL-terminated.
        let raw = unsafe { ($gpa)($handle, $name.as_ptr()) };
        raw.map(|f| {
            // SAFETY: the loader contract: the entry point named `$name` has
            // the signature `$pfn`.
            unsafe { std::mem::transmute::<unsafe extern "system" fn(), $pfn>(f) }
        })
    }};
}
pub(crate) use load;

/// The loader dispatch pointer of a dispatchable handle, 0 for null.
///
/// # Safety
/// `handle` must be null or a live dispatchable handle created through the
/// loader (its first word is the loader's dispatch pointer).
pub unsafe fn dispatch_key<H: Handle>(handle: H) -> usize {
    let p = handle.as_raw() as usize as *const usize;
    if p.is_null() {
        return 0;
    }
    // SAFETY: guaranteed by the caller.
    unsafe { p.read() }
}

/// A map from a key to shared data, safe to use from any thread.
pub struct Registry<T> {
    map: RwLock<BTreeMap<usize, T>>,
}

impl<T: Clone> Registry<T> {
    /// An empty registry.
    pub const fn new() -> Self {
        Self {
            map: RwLock::new(BTreeMap::new()),
        }
    }

    /// Inserts or replaces `key`.
    pub fn insert(&self, key: usize, value: T) {
        self.map
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(key, value);
    }

    /// The value of `key`.
    pub fn get(&self, key: usize) -> Option<T> {
        self.map
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&key)
            .cloned()
    }

    /// Removes `key`.
    pub fn remove(&self, key: usize) -> Option<T> {
        self.map
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&key)
    }

    /// Keeps only the entries `keep` accepts.
    pub fn retain(&self, mut keep: impl FnMut(usize, &T) -> bool) {
        self.map
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .retain(|k, v| keep(*k, v));
    }
}

/// Instances by dispatch key.
pub static INSTANCES: Registry<Arc<InstanceData>> = Registry::new();
/// Physical device handle -> instance dispatch key, a fallback for layers
/// below that give physical devices their own dispatch pointer.
pub static PHYSICAL_DEVICES: Registry<usize> = Registry::new();
/// Devices by dispatch key.
pub static DEVICES: Registry<Arc<DeviceData>> = Registry::new();

/// The next layer's instance-level entry points this layer wraps.
pub struct InstanceData {
    /// The instance.
    pub handle: vk::Instance,
    /// Next layer's `vkGetInstanceProcAddr`.
    pub next_gipa: vk::PFN_vkGetInstanceProcAddr,
    pub destroy_instance: Option<vk::PFN_vkDestroyInstance>,
    pub enumerate_physical_devices: Option<vk::PFN_vkEnumeratePhysicalDevices>,
    pub enumerate_physical_device_groups: Option<vk::PFN_vkEnumeratePhysicalDeviceGroups>,
    pub enumerate_physical_device_groups_khr: Option<vk::PFN_vkEnumeratePhysicalDeviceGroups>,
    pub enumerate_device_extension_properties: Option<vk::PFN_vkEnumerateDeviceExtensionProperties>,
    pub get_physical_device_properties2: Option<vk::PFN_vkGetPhysicalDeviceProperties2>,
    pub get_physical_device_properties2_khr: Option<vk::PFN_vkGetPhysicalDeviceProperties2>,
    pub get_physical_device_external_buffer_properties:
        Option<vk::PFN_vkGetPhysicalDeviceExternalBufferProperties>,
    pub get_physical_device_external_buffer_properties_khr:
        Option<vk::PFN_vkGetPhysicalDeviceExternalBufferProperties>,
    pub get_physical_device_image_format_properties2:
        Option<vk::PFN_vkGetPhysicalDeviceImageFormatProperties2>,
    pub get_physical_device_image_format_properties2_khr:
        Option<vk::PFN_vkGetPhysicalDeviceImageFormatProperties2>,
    pub get_physical_device_external_semaphore_properties:
        Option<vk::PFN_vkGetPhysicalDeviceExternalSemaphoreProperties>,
    pub get_physical_device_external_semaphore_properties_khr:
        Option<vk::PFN_vkGetPhysicalDeviceExternalSemaphoreProperties>,
    pub get_physical_device_external_fence_properties:
        Option<vk::PFN_vkGetPhysicalDeviceExternalFenceProperties>,
    pub get_physical_device_external_fence_properties_khr:
        Option<vk::PFN_vkGetPhysicalDeviceExternalFenceProperties>,
}

impl InstanceData {
    /// Resolves the wrapped entry points of a just-created instance.
    ///
    /// # Safety
    /// `next_gipa` must be the next layer's `vkGetInstanceProcAddr` and
    /// `handle` an instance it created.
    pub unsafe fn load(handle: vk::Instance, next_gipa: vk::PFN_vkGetInstanceProcAddr) -> Self {
        use vk::*;
        let g = next_gipa;
        let h = handle;
        Self {
            handle,
            next_gipa,
            destroy_instance: load!(g, h, c"vkDestroyInstance", PFN_vkDestroyInstance),
            enumerate_physical_devices: load!(
                g,
                h,
                c"vkEnumeratePhysicalDevices",
                PFN_vkEnumeratePhysicalDevices
            ),
            enumerate_physical_device_groups: load!(
                g,
                h,
                c"vkEnumeratePhysicalDeviceGroups",
                PFN_vkEnumeratePhysicalDeviceGroups
            ),
            enumerate_physical_device_groups_khr: load!(
                g,
                h,
                c"vkEnumeratePhysicalDeviceGroupsKHR",
                PFN_vkEnumeratePhysicalDeviceGroups
            ),
            enumerate_device_extension_properties: load!(
                g,
                h,
                c"vkEnumerateDeviceExtensionProperties",
                PFN_vkEnumerateDeviceExtensionProperties
            ),
            get_physical_device_properties2: load!(
                g,
                h,
                c"vkGetPhysicalDeviceProperties2",
                PFN_vkGetPhysicalDeviceProperties2
            ),
            get_physical_device_properties2_khr: load!(
                g,
                h,
                c"vkGetPhysicalDeviceProperties2KHR",
                PFN_vkGetPhysicalDeviceProperties2
            ),
            get_physical_device_external_buffer_properties: load!(
                g,
                h,
                c"vkGetPhysicalDeviceExternalBufferProperties",
                PFN_vkGetPhysicalDeviceExternalBufferProperties
            ),
            get_physical_device_external_buffer_properties_khr: load!(
                g,
                h,
                c"vkGetPhysicalDeviceExternalBufferPropertiesKHR",
                PFN_vkGetPhysicalDeviceExternalBufferProperties
            ),
            get_physical_device_image_format_properties2: load!(
                g,
                h,
                c"vkGetPhysicalDeviceImageFormatProperties2",
                PFN_vkGetPhysicalDeviceImageFormatProperties2
            ),
            get_physical_device_image_format_properties2_khr: load!(
                g,
                h,
                c"vkGetPhysicalDeviceImageFormatProperties2KHR",
                PFN_vkGetPhysicalDeviceImageFormatProperties2
            ),
            get_physical_device_external_semaphore_properties: load!(
                g,
                h,
                c"vkGetPhysicalDeviceExternalSemaphoreProperties",
                PFN_vkGetPhysicalDeviceExternalSemaphoreProperties
            ),
            get_physical_device_external_semaphore_properties_khr: load!(
                g,
                h,
                c"vkGetPhysicalDeviceExternalSemaphorePropertiesKHR",
                PFN_vkGetPhysicalDeviceExternalSemaphoreProperties
            ),
            get_physical_device_external_fence_properties: load!(
                g,
                h,
                c"vkGetPhysicalDeviceExternalFenceProperties",
                PFN_vkGetPhysicalDeviceExternalFenceProperties
            ),
            get_physical_device_external_fence_properties_khr: load!(
                g,
                h,
                c"vkGetPhysicalDeviceExternalFencePropertiesKHR",
                PFN_vkGetPhysicalDeviceExternalFenceProperties
            ),
        }
    }
}

/// The next layer's device-level entry points this layer wraps.
pub struct DeviceData {
    /// Next layer's `vkGetDeviceProcAddr`.
    pub next_gdpa: vk::PFN_vkGetDeviceProcAddr,
    pub destroy_device: Option<vk::PFN_vkDestroyDevice>,
    pub allocate_memory: Option<vk::PFN_vkAllocateMemory>,
    pub map_memory: Option<vk::PFN_vkMapMemory>,
    pub map_memory2_khr: Option<vk::PFN_vkMapMemory2KHR>,
    /// Core `vkMapMemory2` (Vulkan 1.4; same signature as the KHR alias).
    pub map_memory2: Option<vk::PFN_vkMapMemory2KHR>,
    pub get_memory_host_pointer_properties: Option<vk::PFN_vkGetMemoryHostPointerPropertiesEXT>,
}

impl DeviceData {
    /// Resolves the wrapped entry points of a just-created device.
    ///
    /// # Safety
    /// `next_gdpa` must be the next layer's `vkGetDeviceProcAddr` and
    /// `handle` a device it created.
    pub unsafe fn load(handle: vk::Device, next_gdpa: vk::PFN_vkGetDeviceProcAddr) -> Self {
        use vk::*;
        let g = next_gdpa;
        let h = handle;
        Self {
            next_gdpa,
            destroy_device: load!(g, h, c"vkDestroyDevice", PFN_vkDestroyDevice),
            allocate_memory: load!(g, h, c"vkAllocateMemory", PFN_vkAllocateMemory),
            map_memory: load!(g, h, c"vkMapMemory", PFN_vkMapMemory),
            map_memory2_khr: load!(g, h, c"vkMapMemory2KHR", PFN_vkMapMemory2KHR),
            map_memory2: load!(g, h, c"vkMapMemory2", PFN_vkMapMemory2KHR),
            get_memory_host_pointer_properties: load!(
                g,
                h,
                c"vkGetMemoryHostPointerPropertiesEXT",
                PFN_vkGetMemoryHostPointerPropertiesEXT
            ),
        }
    }
}

/// The instance a physical device belongs to.
pub fn instance_of_physical_device(
    physical_device: vk::PhysicalDevice,
) -> Option<Arc<InstanceData>> {
    // SAFETY: the loader only hands this layer live physical devices, whose
    // first word is the instance's dispatch pointer.
    let key = unsafe { dispatch_key(physical_device) };
    INSTANCES.get(key).or_else(|| {
        PHYSICAL_DEVICES
            .get(physical_device.as_raw() as usize)
            .and_then(|k| INSTANCES.get(k))
    })
}

/// The data of a device.
pub fn device_data(device: vk::Device) -> Option<Arc<DeviceData>> {
    // SAFETY: the loader only hands this layer live devices.
    DEVICES.get(unsafe { dispatch_key(device) })
}
