//! `VK_LAYER_VENUS_macos_like`: a test fixture Vulkan layer that makes a Linux
//! driver (lavapipe here) look like MoltenVK on an Apple Silicon host for
//! memory sharing, so the host translator's macOS path runs on Linux.
//!
//! What it changes (everything else passes through):
//!
//! * hides `VK_KHR_external_memory_fd`, `VK_EXT_external_memory_dma_buf`,
//!   `VK_KHR_external_semaphore_fd` and `VK_KHR_external_fence_fd` from
//!   `vkEnumerateDeviceExtensionProperties`, refuses them in `vkCreateDevice`
//!   (`VK_ERROR_EXTENSION_NOT_PRESENT`) and returns null for their commands;
//! * external buffer / image format / semaphore / fence capability queries
//!   report no support for opaque-fd, dma-buf and sync-fd handle types
//!   (image queries fail with `VK_ERROR_FORMAT_NOT_SUPPORTED`), and those
//!   types are removed from the compatible/export-from-imported masks of
//!   the other handle types;
//! * `VkPhysicalDeviceExternalMemoryHostPropertiesEXT::
//!   minImportedHostPointerAlignment` reads 16384 (at least);
//! * a host-pointer import (`VkImportMemoryHostPointerInfoEXT`) whose pointer
//!   or `allocationSize` is not 16 KiB aligned fails with
//!   `VK_ERROR_INVALID_EXTERNAL_HANDLE`, as does
//!   `vkGetMemoryHostPointerPropertiesEXT` on a pointer not 16 KiB aligned;
//!   fd imports and fd/dma-buf exportable allocations fail the same way;
//! * `vkMapMemory`, `vkMapMemory2KHR` and `vkMapMemory2` with an offset that
//!   is not a multiple of 16384 fail with `VK_ERROR_MEMORY_MAP_FAILED`. This
//!   is stricter than Vulkan (and MoltenVK) require; it mimics what HVF can
//!   map into a guest, which only takes 16 KiB-aligned host ranges.
//!
//! Every refusal is counted and, with `VENUS_MACOS_LIKE_LOG=<file>`, logged
//! as one line (see [`refusal`]).
//!
//! Loader interface version 2: the library exports
//! `vkNegotiateLoaderLayerInterfaceVersion`, `vkGetInstanceProcAddr` and
//! `vkGetDeviceProcAddr`. The pointers handed to the loader are this
//! library's private functions, never the exported symbols, so a global
//! `vkGetInstanceProcAddr` (the loader's own) cannot interpose on them.
//! Enabling it: see `README.md` next to `Cargo.toml`.

#![allow(non_snake_case)] // the library (crate) name is the Vulkan layer file name

mod device;
mod dispatch;
mod instance;
mod loader;
pub mod policy;
pub mod refusal;

use std::ffi::{c_char, CStr};
use std::panic::{catch_unwind, AssertUnwindSafe};

use ash::vk;
use ash::vk::Handle;

use crate::dispatch::{device_data, dispatch_key, INSTANCES};
use crate::loader::{
    NegotiateLayerInterface, LAYER_INTERFACE_VERSION, LAYER_NEGOTIATE_INTERFACE_STRUCT,
};

/// Runs `f`, turning a panic into `on_panic` so none crosses the C ABI.
pub(crate) fn guard<R>(on_panic: R, f: impl FnOnce() -> R) -> R {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or(on_panic)
}

/// A typed entry point as the `PFN_vkVoidFunction` that GetProcAddr returns.
macro_rules! entry {
    ($f:expr, $pfn:ty) => {{
        let f: $pfn = $f;
        // SAFETY: function pointers have one size; the caller casts it back
        // to `$pfn` by the name it asked for.
        Some(unsafe { std::mem::transmute::<$pfn, unsafe extern "system" fn()>(f) })
    }};
}

/// This layer's global entry points.
fn global_entry(name: &[u8]) -> vk::PFN_vkVoidFunction {
    match name {
        b"vkGetInstanceProcAddr" => entry!(get_instance_proc_addr, vk::PFN_vkGetInstanceProcAddr),
        b"vkGetDeviceProcAddr" => entry!(get_device_proc_addr, vk::PFN_vkGetDeviceProcAddr),
        b"vkCreateInstance" => entry!(instance::create_instance, vk::PFN_vkCreateInstance),
        _ => None,
    }
}

/// This layer's instance- and physical-device-level entry points.
fn instance_entry(name: &[u8]) -> vk::PFN_vkVoidFunction {
    use instance::*;
    use vk::*;
    match name {
        b"vkDestroyInstance" => entry!(destroy_instance, PFN_vkDestroyInstance),
        b"vkEnumeratePhysicalDevices" => {
            entry!(enumerate_physical_devices, PFN_vkEnumeratePhysicalDevices)
        }
        b"vkEnumeratePhysicalDeviceGroups" => entry!(
            enumerate_physical_device_groups,
            PFN_vkEnumeratePhysicalDeviceGroups
        ),
        b"vkEnumeratePhysicalDeviceGroupsKHR" => entry!(
            enumerate_physical_device_groups_khr,
            PFN_vkEnumeratePhysicalDeviceGroups
        ),
        b"vkEnumerateDeviceExtensionProperties" => entry!(
            enumerate_device_extension_properties,
            PFN_vkEnumerateDeviceExtensionProperties
        ),
        b"vkCreateDevice" => entry!(create_device, PFN_vkCreateDevice),
        b"vkGetPhysicalDeviceProperties2" => entry!(
            get_physical_device_properties2,
            PFN_vkGetPhysicalDeviceProperties2
        ),
        b"vkGetPhysicalDeviceProperties2KHR" => entry!(
            get_physical_device_properties2_khr,
            PFN_vkGetPhysicalDeviceProperties2
        ),
        b"vkGetPhysicalDeviceExternalBufferProperties" => entry!(
            get_physical_device_external_buffer_properties,
            PFN_vkGetPhysicalDeviceExternalBufferProperties
        ),
        b"vkGetPhysicalDeviceExternalBufferPropertiesKHR" => entry!(
            get_physical_device_external_buffer_properties_khr,
            PFN_vkGetPhysicalDeviceExternalBufferProperties
        ),
        b"vkGetPhysicalDeviceImageFormatProperties2" => entry!(
            get_physical_device_image_format_properties2,
            PFN_vkGetPhysicalDeviceImageFormatProperties2
        ),
        b"vkGetPhysicalDeviceImageFormatProperties2KHR" => entry!(
            get_physical_device_image_format_properties2_khr,
            PFN_vkGetPhysicalDeviceImageFormatProperties2
        ),
        b"vkGetPhysicalDeviceExternalSemaphoreProperties" => entry!(
            get_physical_device_external_semaphore_properties,
            PFN_vkGetPhysicalDeviceExternalSemaphoreProperties
        ),
        b"vkGetPhysicalDeviceExternalSemaphorePropertiesKHR" => entry!(
            get_physical_device_external_semaphore_properties_khr,
            PFN_vkGetPhysicalDeviceExternalSemaphoreProperties
        ),
        b"vkGetPhysicalDeviceExternalFenceProperties" => entry!(
            get_physical_device_external_fence_properties,
            PFN_vkGetPhysicalDeviceExternalFenceProperties
        ),
        b"vkGetPhysicalDeviceExternalFencePropertiesKHR" => entry!(
            get_physical_device_external_fence_properties_khr,
            PFN_vkGetPhysicalDeviceExternalFenceProperties
        ),
        _ => None,
    }
}

/// This layer's device-level entry points.
fn device_entry(name: &[u8]) -> vk::PFN_vkVoidFunction {
    use device::*;
    use vk::*;
    match name {
        b"vkDestroyDevice" => entry!(destroy_device, PFN_vkDestroyDevice),
        b"vkAllocateMemory" => entry!(allocate_memory, PFN_vkAllocateMemory),
        b"vkMapMemory" => entry!(map_memory, PFN_vkMapMemory),
        b"vkMapMemory2KHR" => entry!(map_memory2_khr, PFN_vkMapMemory2KHR),
        b"vkMapMemory2" => entry!(map_memory2, PFN_vkMapMemory2KHR),
        b"vkGetMemoryHostPointerPropertiesEXT" => entry!(
            get_memory_host_pointer_properties,
            PFN_vkGetMemoryHostPointerPropertiesEXT
        ),
        _ => None,
    }
}

unsafe extern "system" fn get_instance_proc_addr(
    instance: vk::Instance,
    p_name: *const c_char,
) -> vk::PFN_vkVoidFunction {
    guard(None, || {
        if p_name.is_null() {
            return None;
        }
        // SAFETY: the caller passes a NUL-terminated command name.
        let name = unsafe { CStr::from_ptr(p_name) };
        if let Some(f) = global_entry(name.to_bytes()) {
            return Some(f);
        }
        if instance.is_null() || policy::is_hidden_command(name) {
            return None;
        }
        // SAFETY: the caller passes a live instance.
        let data = INSTANCES.get(unsafe { dispatch_key(instance) })?;
        // SAFETY: the next layer's GetInstanceProcAddr on its own instance.
        let next = unsafe { (data.next_gipa)(instance, p_name) };
        // What the layers below do not have, this layer does not offer.
        next?;
        instance_entry(name.to_bytes())
            .or_else(|| device_entry(name.to_bytes()))
            .or(next)
    })
}

unsafe extern "system" fn get_device_proc_addr(
    device: vk::Device,
    p_name: *const c_char,
) -> vk::PFN_vkVoidFunction {
    guard(None, || {
        if p_name.is_null() {
            return None;
        }
        // SAFETY: the caller passes a NUL-terminated command name.
        let name = unsafe { CStr::from_ptr(p_name) };
        if name.to_bytes() == b"vkGetDeviceProcAddr" {
            return global_entry(name.to_bytes());
        }
        if policy::is_hidden_command(name) {
            return None;
        }
        let data = device_data(device)?;
        // SAFETY: the next layer's GetDeviceProcAddr on its own device.
        let next = unsafe { (data.next_gdpa)(device, p_name) };
        next?;
        device_entry(name.to_bytes()).or(next)
    })
}

/// Loader–layer interface negotiation (interface version 2).
///
/// # Safety
/// `p_version_struct` must be null or point to a valid
/// `VkNegotiateLayerInterface`.
#[no_mangle]
pub unsafe extern "system" fn vkNegotiateLoaderLayerInterfaceVersion(
    p_version_struct: *mut NegotiateLayerInterface,
) -> vk::Result {
    guard(vk::Result::ERROR_INITIALIZATION_FAILED, || {
        if p_version_struct.is_null() {
            return vk::Result::ERROR_INITIALIZATION_FAILED;
        }
        // SAFETY: checked non-null; the loader passes a valid structure.
        let negotiate = unsafe { &mut *p_version_struct };
        if negotiate.s_type != LAYER_NEGOTIATE_INTERFACE_STRUCT {
            return vk::Result::ERROR_INITIALIZATION_FAILED;
        }
        if negotiate.loader_layer_interface_version >= LAYER_INTERFACE_VERSION {
            negotiate.loader_layer_interface_version = LAYER_INTERFACE_VERSION;
            negotiate.pfn_get_instance_proc_addr = Some(get_instance_proc_addr);
            negotiate.pfn_get_device_proc_addr = Some(get_device_proc_addr);
            negotiate.pfn_get_physical_device_proc_addr = None;
        }
        // An older loader uses the exported symbols below.
        vk::Result::SUCCESS
    })
}

/// The layer's `vkGetInstanceProcAddr`.
///
/// # Safety
/// As `vkGetInstanceProcAddr`: `p_name` NUL-terminated, `instance` null or live.
#[no_mangle]
pub unsafe extern "system" fn vkGetInstanceProcAddr(
    instance: vk::Instance,
    p_name: *const c_char,
) -> vk::PFN_vkVoidFunction {
    // SAFETY: forwarded from the caller.
    guard(None, || unsafe { get_instance_proc_addr(instance, p_name) })
}

/// The layer's `vkGetDeviceProcAddr`.
///
/// # Safety
/// As `vkGetDeviceProcAddr`: `p_name` NUL-terminated, `device` live.
#[no_mangle]
pub unsafe extern "system" fn vkGetDeviceProcAddr(
    device: vk::Device,
    p_name: *const c_char,
) -> vk::PFN_vkVoidFunction {
    // SAFETY: forwarded from the caller.
    guard(None, || unsafe { get_device_proc_addr(device, p_name) })
}

/// Refusals so far in this process (all kinds), for in-process callers that
/// `dlsym` it from the loaded layer.
#[no_mangle]
pub extern "C" fn venus_macos_like_refusal_count() -> u64 {
    guard(0, refusal::total)
}
