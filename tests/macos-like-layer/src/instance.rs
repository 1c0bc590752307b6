//! Instance- and physical-device-level interceptions: instance/device
//! creation, extension hiding and external-handle capability queries.

use std::ffi::{c_char, CStr};
use std::sync::Arc;

use ash::vk;
use ash::vk::Handle;

use crate::dispatch::{
    dispatch_key, instance_of_physical_device, load, DeviceData, InstanceData, DEVICES, INSTANCES,
    PHYSICAL_DEVICES,
};
use crate::guard;
use crate::loader::{find_device_link, find_instance_link};
use crate::policy::{
    is_hidden_extension, APPLE_PAGE_SIZE, HIDDEN_FENCE_HANDLE_TYPES, HIDDEN_MEMORY_HANDLE_TYPES,
    HIDDEN_SEMAPHORE_HANDLE_TYPES, LAYER_NAME,
};
use crate::refusal::{record, Refusal};

pub(crate) unsafe extern "system" fn create_instance(
    p_create_info: *const vk::InstanceCreateInfo<'_>,
    p_allocator: *const vk::AllocationCallbacks<'_>,
    p_instance: *mut vk::Instance,
) -> vk::Result {
    guard(vk::Result::ERROR_INITIALIZATION_FAILED, || {
        if p_create_info.is_null() || p_instance.is_null() {
            return vk::Result::ERROR_INITIALIZATION_FAILED;
        }
        // SAFETY: the loader passes a valid create info.
        let chain = unsafe { find_instance_link((*p_create_info).p_next) };
        if chain.is_null() {
            return vk::Result::ERROR_INITIALIZATION_FAILED;
        }
        // SAFETY: `chain` is the loader's link-info structure; its link is
        // valid, and advancing it for the next layer is the layer protocol.
        let next_gipa = unsafe {
            let link = (*chain).u.p_layer_info;
            if link.is_null() {
                return vk::Result::ERROR_INITIALIZATION_FAILED;
            }
            (*chain).u.p_layer_info = (*link).p_next;
            (*link).pfn_next_get_instance_proc_addr
        };
        let Some(next_gipa) = next_gipa else {
            return vk::Result::ERROR_INITIALIZATION_FAILED;
        };
        let Some(next_create) = load!(
            next_gipa,
            vk::Instance::null(),
            c"vkCreateInstance",
            vk::PFN_vkCreateInstance
        ) else {
            return vk::Result::ERROR_INITIALIZATION_FAILED;
        };
        // SAFETY: arguments forwarded unchanged from the caller.
        let result = unsafe { next_create(p_create_info, p_allocator, p_instance) };
        if result != vk::Result::SUCCESS {
            return result;
        }
        // SAFETY: the next layer succeeded, so `*p_instance` is a new instance.
        let instance = unsafe { *p_instance };
        // SAFETY: `next_gipa` created `instance`.
        let data = unsafe { InstanceData::load(instance, next_gipa) };
        // SAFETY: `instance` is live.
        let key = unsafe { dispatch_key(instance) };
        INSTANCES.insert(key, Arc::new(data));
        vk::Result::SUCCESS
    })
}

pub(crate) unsafe extern "system" fn destroy_instance(
    instance: vk::Instance,
    p_allocator: *const vk::AllocationCallbacks<'_>,
) {
    guard((), || {
        // SAFETY: the caller passes a live instance (or null).
        let key = unsafe { dispatch_key(instance) };
        let Some(data) = INSTANCES.remove(key) else {
            return;
        };
        PHYSICAL_DEVICES.retain(|_, instance_key| *instance_key != key);
        if let Some(next) = data.destroy_instance {
            // SAFETY: forwarded unchanged.
            unsafe { next(instance, p_allocator) };
        }
    })
}

/// Remembers which instance returned physical devices, for
/// [`instance_of_physical_device`].
fn remember_physical_devices(instance_key: usize, devices: &[vk::PhysicalDevice]) {
    for pd in devices {
        PHYSICAL_DEVICES.insert(pd.as_raw() as usize, instance_key);
    }
}

pub(crate) unsafe extern "system" fn enumerate_physical_devices(
    instance: vk::Instance,
    p_count: *mut u32,
    p_devices: *mut vk::PhysicalDevice,
) -> vk::Result {
    guard(vk::Result::ERROR_INITIALIZATION_FAILED, || {
        // SAFETY: the caller passes a live instance.
        let key = unsafe { dispatch_key(instance) };
        let Some(next) = INSTANCES
            .get(key)
            .and_then(|d| d.enumerate_physical_devices)
        else {
            return vk::Result::ERROR_INITIALIZATION_FAILED;
        };
        // SAFETY: forwarded unchanged.
        let result = unsafe { next(instance, p_count, p_devices) };
        if (result == vk::Result::SUCCESS || result == vk::Result::INCOMPLETE)
            && !p_devices.is_null()
        {
            // SAFETY: on success the next layer wrote `*p_count` handles.
            let devices = unsafe { std::slice::from_raw_parts(p_devices, *p_count as usize) };
            remember_physical_devices(key, devices);
        }
        result
    })
}

/// Shared body of `vkEnumeratePhysicalDeviceGroups{,KHR}`.
///
/// # Safety
/// Arguments as for `vkEnumeratePhysicalDeviceGroups`.
unsafe fn enumerate_groups(
    instance: vk::Instance,
    p_count: *mut u32,
    p_groups: *mut vk::PhysicalDeviceGroupProperties<'_>,
    khr: bool,
) -> vk::Result {
    // SAFETY: the caller passes a live instance.
    let key = unsafe { dispatch_key(instance) };
    let data = INSTANCES.get(key);
    let next = data.and_then(|d| {
        if khr {
            d.enumerate_physical_device_groups_khr
        } else {
            d.enumerate_physical_device_groups
        }
    });
    let Some(next) = next else {
        return vk::Result::ERROR_INITIALIZATION_FAILED;
    };
    // SAFETY: forwarded unchanged.
    let result = unsafe { next(instance, p_count, p_groups) };
    if (result == vk::Result::SUCCESS || result == vk::Result::INCOMPLETE) && !p_groups.is_null() {
        // SAFETY: on success the next layer wrote `*p_count` groups.
        let groups = unsafe { std::slice::from_raw_parts(p_groups, *p_count as usize) };
        for g in groups {
            let n = (g.physical_device_count as usize).min(g.physical_devices.len());
            remember_physical_devices(key, &g.physical_devices[..n]);
        }
    }
    result
}

pub(crate) unsafe extern "system" fn enumerate_physical_device_groups(
    instance: vk::Instance,
    p_count: *mut u32,
    p_groups: *mut vk::PhysicalDeviceGroupProperties<'_>,
) -> vk::Result {
    // SAFETY: forwarded from the caller.
    guard(vk::Result::ERROR_INITIALIZATION_FAILED, || unsafe {
        enumerate_groups(instance, p_count, p_groups, false)
    })
}

pub(crate) unsafe extern "system" fn enumerate_physical_device_groups_khr(
    instance: vk::Instance,
    p_count: *mut u32,
    p_groups: *mut vk::PhysicalDeviceGroupProperties<'_>,
) -> vk::Result {
    // SAFETY: forwarded from the caller.
    guard(vk::Result::ERROR_INITIALIZATION_FAILED, || unsafe {
        enumerate_groups(instance, p_count, p_groups, true)
    })
}

/// The name of an extension property.
fn extension_name(p: &vk::ExtensionProperties) -> &CStr {
    p.extension_name_as_c_str().unwrap_or(c"")
}

pub(crate) unsafe extern "system" fn enumerate_device_extension_properties(
    physical_device: vk::PhysicalDevice,
    p_layer_name: *const c_char,
    p_count: *mut u32,
    p_properties: *mut vk::ExtensionProperties,
) -> vk::Result {
    guard(vk::Result::ERROR_INITIALIZATION_FAILED, || {
        if p_count.is_null() {
            return vk::Result::ERROR_INITIALIZATION_FAILED;
        }
        if !p_layer_name.is_null() {
            // SAFETY: the caller passes a NUL-terminated layer name.
            if unsafe { CStr::from_ptr(p_layer_name) } == LAYER_NAME {
                // This layer implements no device extensions.
                // SAFETY: checked non-null above.
                unsafe { *p_count = 0 };
                return vk::Result::SUCCESS;
            }
        }
        let Some(next) = instance_of_physical_device(physical_device)
            .and_then(|d| d.enumerate_device_extension_properties)
        else {
            return vk::Result::ERROR_INITIALIZATION_FAILED;
        };
        if !p_layer_name.is_null() {
            // Another layer's extensions: not ours to filter.
            // SAFETY: forwarded unchanged.
            return unsafe { next(physical_device, p_layer_name, p_count, p_properties) };
        }
        let mut all = Vec::<vk::ExtensionProperties>::new();
        loop {
            let mut n = 0u32;
            // SAFETY: a count query.
            let r = unsafe { next(physical_device, p_layer_name, &mut n, std::ptr::null_mut()) };
            if r != vk::Result::SUCCESS {
                return r;
            }
            all.resize(n as usize, vk::ExtensionProperties::default());
            // SAFETY: `all` holds `n` elements.
            let r = unsafe { next(physical_device, p_layer_name, &mut n, all.as_mut_ptr()) };
            if r == vk::Result::INCOMPLETE {
                continue;
            }
            if r != vk::Result::SUCCESS {
                return r;
            }
            all.truncate(n as usize);
            break;
        }
        let before = all.len();
        let mut hidden = Vec::new();
        all.retain(|p| {
            let keep = !is_hidden_extension(extension_name(p));
            if !keep {
                hidden.push(extension_name(p).to_string_lossy().into_owned());
            }
            keep
        });
        if all.len() != before {
            record(
                Refusal::HiddenDeviceExtension,
                format_args!("names={}", hidden.join(",")),
            );
        }
        if p_properties.is_null() {
            // SAFETY: checked non-null above.
            unsafe { *p_count = all.len() as u32 };
            return vk::Result::SUCCESS;
        }
        // SAFETY: checked non-null above.
        let capacity = unsafe { *p_count } as usize;
        let n = capacity.min(all.len());
        // SAFETY: the caller's array holds `capacity >= n` elements.
        unsafe {
            std::ptr::copy_nonoverlapping(all.as_ptr(), p_properties, n);
            *p_count = n as u32;
        }
        if n < all.len() {
            vk::Result::INCOMPLETE
        } else {
            vk::Result::SUCCESS
        }
    })
}

pub(crate) unsafe extern "system" fn create_device(
    physical_device: vk::PhysicalDevice,
    p_create_info: *const vk::DeviceCreateInfo<'_>,
    p_allocator: *const vk::AllocationCallbacks<'_>,
    p_device: *mut vk::Device,
) -> vk::Result {
    guard(vk::Result::ERROR_INITIALIZATION_FAILED, || {
        if p_create_info.is_null() || p_device.is_null() {
            return vk::Result::ERROR_INITIALIZATION_FAILED;
        }
        let Some(instance) = instance_of_physical_device(physical_device) else {
            return vk::Result::ERROR_INITIALIZATION_FAILED;
        };
        // SAFETY: the loader passes a valid create info.
        let info = unsafe { &*p_create_info };
        if info.enabled_extension_count > 0 && !info.pp_enabled_extension_names.is_null() {
            // SAFETY: the create info holds `enabled_extension_count` names.
            let names = unsafe {
                std::slice::from_raw_parts(
                    info.pp_enabled_extension_names,
                    info.enabled_extension_count as usize,
                )
            };
            for &name in names {
                if name.is_null() {
                    continue;
                }
                // SAFETY: extension names are NUL-terminated strings.
                let name = unsafe { CStr::from_ptr(name) };
                if is_hidden_extension(name) {
                    record(
                        Refusal::CreateDeviceExtension,
                        format_args!("name={}", name.to_string_lossy()),
                    );
                    return vk::Result::ERROR_EXTENSION_NOT_PRESENT;
                }
            }
        }
        // SAFETY: as above.
        let chain = unsafe { find_device_link(info.p_next) };
        if chain.is_null() {
            return vk::Result::ERROR_INITIALIZATION_FAILED;
        }
        // SAFETY: `chain` is the loader's link-info structure; advancing its
        // link for the next layer is the layer protocol.
        let (next_gipa, next_gdpa) = unsafe {
            let link = (*chain).u.p_layer_info;
            if link.is_null() {
                return vk::Result::ERROR_INITIALIZATION_FAILED;
            }
            (*chain).u.p_layer_info = (*link).p_next;
            (
                (*link).pfn_next_get_instance_proc_addr,
                (*link).pfn_next_get_device_proc_addr,
            )
        };
        let (Some(next_gipa), Some(next_gdpa)) = (next_gipa, next_gdpa) else {
            return vk::Result::ERROR_INITIALIZATION_FAILED;
        };
        let Some(next_create) = load!(
            next_gipa,
            instance.handle,
            c"vkCreateDevice",
            vk::PFN_vkCreateDevice
        ) else {
            return vk::Result::ERROR_INITIALIZATION_FAILED;
        };
        // SAFETY: arguments forwarded unchanged.
        let result = unsafe { next_create(physical_device, p_create_info, p_allocator, p_device) };
        if result != vk::Result::SUCCESS {
            return result;
        }
        // SAFETY: the next layer succeeded, so `*p_device` is a new device.
        let device = unsafe { *p_device };
        // SAFETY: `next_gdpa` belongs to the chain that created `device`.
        let data = unsafe { DeviceData::load(device, next_gdpa) };
        // SAFETY: `device` is live.
        DEVICES.insert(unsafe { dispatch_key(device) }, Arc::new(data));
        vk::Result::SUCCESS
    })
}

/// Raises `minImportedHostPointerAlignment` in a properties chain.
///
/// # Safety
/// `p_properties` must be a valid `VkPhysicalDeviceProperties2` chain.
unsafe fn patch_properties2(p_properties: *mut vk::PhysicalDeviceProperties2<'_>) {
    // SAFETY: guaranteed by the caller.
    let mut p = unsafe { (*p_properties).p_next }.cast::<vk::BaseOutStructure<'_>>();
    while !p.is_null() {
        // SAFETY: every chain element starts with sType/pNext; an element of
        // this sType is the host-memory properties structure.
        unsafe {
            if (*p).s_type == vk::StructureType::PHYSICAL_DEVICE_EXTERNAL_MEMORY_HOST_PROPERTIES_EXT
            {
                let host = p.cast::<vk::PhysicalDeviceExternalMemoryHostPropertiesEXT<'_>>();
                let a = &mut (*host).min_imported_host_pointer_alignment;
                *a = (*a).max(APPLE_PAGE_SIZE);
            }
            p = (*p).p_next;
        }
    }
}

/// Shared body of `vkGetPhysicalDeviceProperties2{,KHR}`.
///
/// # Safety
/// Arguments as for `vkGetPhysicalDeviceProperties2`.
unsafe fn properties2(
    physical_device: vk::PhysicalDevice,
    p_properties: *mut vk::PhysicalDeviceProperties2<'_>,
    khr: bool,
) {
    let Some(data) = instance_of_physical_device(physical_device) else {
        return;
    };
    let next = if khr {
        data.get_physical_device_properties2_khr
    } else {
        data.get_physical_device_properties2
    };
    let Some(next) = next else {
        return;
    };
    // SAFETY: forwarded unchanged; then the filled chain is patched.
    unsafe {
        next(physical_device, p_properties);
        patch_properties2(p_properties);
    }
}

pub(crate) unsafe extern "system" fn get_physical_device_properties2(
    physical_device: vk::PhysicalDevice,
    p_properties: *mut vk::PhysicalDeviceProperties2<'_>,
) {
    // SAFETY: forwarded from the caller.
    guard((), || unsafe {
        properties2(physical_device, p_properties, false)
    })
}

pub(crate) unsafe extern "system" fn get_physical_device_properties2_khr(
    physical_device: vk::PhysicalDevice,
    p_properties: *mut vk::PhysicalDeviceProperties2<'_>,
) {
    // SAFETY: forwarded from the caller.
    guard((), || unsafe {
        properties2(physical_device, p_properties, true)
    })
}

/// Removes the hidden handle types from memory properties.
fn strip_memory_properties(p: &mut vk::ExternalMemoryProperties) {
    p.export_from_imported_handle_types &= !HIDDEN_MEMORY_HANDLE_TYPES;
    p.compatible_handle_types &= !HIDDEN_MEMORY_HANDLE_TYPES;
}

/// Shared body of `vkGetPhysicalDeviceExternalBufferProperties{,KHR}`.
///
/// # Safety
/// Arguments as for `vkGetPhysicalDeviceExternalBufferProperties`.
unsafe fn external_buffer_properties(
    physical_device: vk::PhysicalDevice,
    p_info: *const vk::PhysicalDeviceExternalBufferInfo<'_>,
    p_properties: *mut vk::ExternalBufferProperties<'_>,
    khr: bool,
) {
    if p_info.is_null() || p_properties.is_null() {
        return;
    }
    // SAFETY: valid per the caller.
    let (info, props) = unsafe { (&*p_info, &mut *p_properties) };
    if HIDDEN_MEMORY_HANDLE_TYPES.contains(info.handle_type) && !info.handle_type.is_empty() {
        record(
            Refusal::ExternalBufferHandle,
            format_args!("handle_type={:?}", info.handle_type),
        );
        props.external_memory_properties = vk::ExternalMemoryProperties::default();
        return;
    }
    let Some(data) = instance_of_physical_device(physical_device) else {
        return;
    };
    let next = if khr {
        data.get_physical_device_external_buffer_properties_khr
    } else {
        data.get_physical_device_external_buffer_properties
    };
    if let Some(next) = next {
        // SAFETY: forwarded unchanged.
        unsafe { next(physical_device, p_info, p_properties) };
        strip_memory_properties(&mut props.external_memory_properties);
    }
}

pub(crate) unsafe extern "system" fn get_physical_device_external_buffer_properties(
    physical_device: vk::PhysicalDevice,
    p_info: *const vk::PhysicalDeviceExternalBufferInfo<'_>,
    p_properties: *mut vk::ExternalBufferProperties<'_>,
) {
    // SAFETY: forwarded from the caller.
    guard((), || unsafe {
        external_buffer_properties(physical_device, p_info, p_properties, false)
    })
}

pub(crate) unsafe extern "system" fn get_physical_device_external_buffer_properties_khr(
    physical_device: vk::PhysicalDevice,
    p_info: *const vk::PhysicalDeviceExternalBufferInfo<'_>,
    p_properties: *mut vk::ExternalBufferProperties<'_>,
) {
    // SAFETY: forwarded from the caller.
    guard((), || unsafe {
        external_buffer_properties(physical_device, p_info, p_properties, true)
    })
}

/// Shared body of `vkGetPhysicalDeviceImageFormatProperties2{,KHR}`.
///
/// # Safety
/// Arguments as for `vkGetPhysicalDeviceImageFormatProperties2`.
unsafe fn image_format_properties2(
    physical_device: vk::PhysicalDevice,
    p_info: *const vk::PhysicalDeviceImageFormatInfo2<'_>,
    p_properties: *mut vk::ImageFormatProperties2<'_>,
    khr: bool,
) -> vk::Result {
    if p_info.is_null() || p_properties.is_null() {
        return vk::Result::ERROR_INITIALIZATION_FAILED;
    }
    // SAFETY: valid chain per the caller.
    let mut p = unsafe { (*p_info).p_next }.cast::<vk::BaseInStructure<'_>>();
    while !p.is_null() {
        // SAFETY: every chain element starts with sType/pNext; an element of
        // this sType is the external image format info.
        unsafe {
            if (*p).s_type == vk::StructureType::PHYSICAL_DEVICE_EXTERNAL_IMAGE_FORMAT_INFO {
                let ext = p.cast::<vk::PhysicalDeviceExternalImageFormatInfo<'_>>();
                let handle_type = (*ext).handle_type;
                if !handle_type.is_empty() && HIDDEN_MEMORY_HANDLE_TYPES.contains(handle_type) {
                    record(
                        Refusal::ExternalImageHandle,
                        format_args!("handle_type={handle_type:?}"),
                    );
                    return vk::Result::ERROR_FORMAT_NOT_SUPPORTED;
                }
            }
            p = (*p).p_next;
        }
    }
    let Some(data) = instance_of_physical_device(physical_device) else {
        return vk::Result::ERROR_INITIALIZATION_FAILED;
    };
    let next = if khr {
        data.get_physical_device_image_format_properties2_khr
    } else {
        data.get_physical_device_image_format_properties2
    };
    let Some(next) = next else {
        return vk::Result::ERROR_INITIALIZATION_FAILED;
    };
    // SAFETY: forwarded unchanged.
    let result = unsafe { next(physical_device, p_info, p_properties) };
    if result == vk::Result::SUCCESS {
        // SAFETY: valid output chain per the caller.
        let mut p = unsafe { (*p_properties).p_next }.cast::<vk::BaseOutStructure<'_>>();
        while !p.is_null() {
            // SAFETY: as above, for the external image format properties.
            unsafe {
                if (*p).s_type == vk::StructureType::EXTERNAL_IMAGE_FORMAT_PROPERTIES {
                    let ext = p.cast::<vk::ExternalImageFormatProperties<'_>>();
                    strip_memory_properties(&mut (*ext).external_memory_properties);
                }
                p = (*p).p_next;
            }
        }
    }
    result
}

pub(crate) unsafe extern "system" fn get_physical_device_image_format_properties2(
    physical_device: vk::PhysicalDevice,
    p_info: *const vk::PhysicalDeviceImageFormatInfo2<'_>,
    p_properties: *mut vk::ImageFormatProperties2<'_>,
) -> vk::Result {
    // SAFETY: forwarded from the caller.
    guard(vk::Result::ERROR_INITIALIZATION_FAILED, || unsafe {
        image_format_properties2(physical_device, p_info, p_properties, false)
    })
}

pub(crate) unsafe extern "system" fn get_physical_device_image_format_properties2_khr(
    physical_device: vk::PhysicalDevice,
    p_info: *const vk::PhysicalDeviceImageFormatInfo2<'_>,
    p_properties: *mut vk::ImageFormatProperties2<'_>,
) -> vk::Result {
    // SAFETY: forwarded from the caller.
    guard(vk::Result::ERROR_INITIALIZATION_FAILED, || unsafe {
        image_format_properties2(physical_device, p_info, p_properties, true)
    })
}

/// Shared body of `vkGetPhysicalDeviceExternalSemaphoreProperties{,KHR}`.
///
/// # Safety
/// Arguments as for `vkGetPhysicalDeviceExternalSemaphoreProperties`.
unsafe fn external_semaphore_properties(
    physical_device: vk::PhysicalDevice,
    p_info: *const vk::PhysicalDeviceExternalSemaphoreInfo<'_>,
    p_properties: *mut vk::ExternalSemaphoreProperties<'_>,
    khr: bool,
) {
    if p_info.is_null() || p_properties.is_null() {
        return;
    }
    // SAFETY: valid per the caller.
    let (info, props) = unsafe { (&*p_info, &mut *p_properties) };
    if !info.handle_type.is_empty() && HIDDEN_SEMAPHORE_HANDLE_TYPES.contains(info.handle_type) {
        record(
            Refusal::ExternalSemaphoreHandle,
            format_args!("handle_type={:?}", info.handle_type),
        );
        props.export_from_imported_handle_types = vk::ExternalSemaphoreHandleTypeFlags::empty();
        props.compatible_handle_types = vk::ExternalSemaphoreHandleTypeFlags::empty();
        props.external_semaphore_features = vk::ExternalSemaphoreFeatureFlags::empty();
        return;
    }
    let Some(data) = instance_of_physical_device(physical_device) else {
        return;
    };
    let next = if khr {
        data.get_physical_device_external_semaphore_properties_khr
    } else {
        data.get_physical_device_external_semaphore_properties
    };
    if let Some(next) = next {
        // SAFETY: forwarded unchanged.
        unsafe { next(physical_device, p_info, p_properties) };
        props.export_from_imported_handle_types &= !HIDDEN_SEMAPHORE_HANDLE_TYPES;
        props.compatible_handle_types &= !HIDDEN_SEMAPHORE_HANDLE_TYPES;
    }
}

pub(crate) unsafe extern "system" fn get_physical_device_external_semaphore_properties(
    physical_device: vk::PhysicalDevice,
    p_info: *const vk::PhysicalDeviceExternalSemaphoreInfo<'_>,
    p_properties: *mut vk::ExternalSemaphoreProperties<'_>,
) {
    // SAFETY: forwarded from the caller.
    guard((), || unsafe {
        external_semaphore_properties(physical_device, p_info, p_properties, false)
    })
}

pub(crate) unsafe extern "system" fn get_physical_device_external_semaphore_properties_khr(
    physical_device: vk::PhysicalDevice,
    p_info: *const vk::PhysicalDeviceExternalSemaphoreInfo<'_>,
    p_properties: *mut vk::ExternalSemaphoreProperties<'_>,
) {
    // SAFETY: forwarded from the caller.
    guard((), || unsafe {
        external_semaphore_properties(physical_device, p_info, p_properties, true)
    })
}

/// Shared body of `vkGetPhysicalDeviceExternalFenceProperties{,KHR}`.
///
/// # Safety
/// Arguments as for `vkGetPhysicalDeviceExternalFenceProperties`.
unsafe fn external_fence_properties(
    physical_device: vk::PhysicalDevice,
    p_info: *const vk::PhysicalDeviceExternalFenceInfo<'_>,
    p_properties: *mut vk::ExternalFenceProperties<'_>,
    khr: bool,
) {
    if p_info.is_null() || p_properties.is_null() {
        return;
    }
    // SAFETY: valid per the caller.
    let (info, props) = unsafe { (&*p_info, &mut *p_properties) };
    if !info.handle_type.is_empty() && HIDDEN_FENCE_HANDLE_TYPES.contains(info.handle_type) {
        record(
            Refusal::ExternalFenceHandle,
            format_args!("handle_type={:?}", info.handle_type),
        );
        props.export_from_imported_handle_types = vk::ExternalFenceHandleTypeFlags::empty();
        props.compatible_handle_types = vk::ExternalFenceHandleTypeFlags::empty();
        props.external_fence_features = vk::ExternalFenceFeatureFlags::empty();
        return;
    }
    let Some(data) = instance_of_physical_device(physical_device) else {
        return;
    };
    let next = if khr {
        data.get_physical_device_external_fence_properties_khr
    } else {
        data.get_physical_device_external_fence_properties
    };
    if let Some(next) = next {
        // SAFETY: forwarded unchanged.
        unsafe { next(physical_device, p_info, p_properties) };
        props.export_from_imported_handle_types &= !HIDDEN_FENCE_HANDLE_TYPES;
        props.compatible_handle_types &= !HIDDEN_FENCE_HANDLE_TYPES;
    }
}

pub(crate) unsafe extern "system" fn get_physical_device_external_fence_properties(
    physical_device: vk::PhysicalDevice,
    p_info: *const vk::PhysicalDeviceExternalFenceInfo<'_>,
    p_properties: *mut vk::ExternalFenceProperties<'_>,
) {
    // SAFETY: forwarded from the caller.
    guard((), || unsafe {
        external_fence_properties(physical_device, p_info, p_properties, false)
    })
}

pub(crate) unsafe extern "system" fn get_physical_device_external_fence_properties_khr(
    physical_device: vk::PhysicalDevice,
    p_info: *const vk::PhysicalDeviceExternalFenceInfo<'_>,
    p_properties: *mut vk::ExternalFenceProperties<'_>,
) {
    // SAFETY: forwarded from the caller.
    guard((), || unsafe {
        external_fence_properties(physical_device, p_info, p_properties, true)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    unsafe extern "system" fn no_commands(
        _: vk::Instance,
        _: *const c_char,
    ) -> vk::PFN_vkVoidFunction {
        None
    }

    #[test]
    fn create_device_refuses_hidden_extensions_before_calling_down() {
        // A fake physical device whose first word is a fake dispatch pointer.
        let dispatch = Box::new(0u64);
        let dispatch_ptr = &*dispatch as *const u64 as usize;
        let object = Box::new(dispatch_ptr);
        let physical_device = vk::PhysicalDevice::from_raw(&*object as *const usize as u64);
        // SAFETY: `no_commands` resolves nothing; the handle is never used.
        let data = unsafe { InstanceData::load(vk::Instance::null(), no_commands) };
        INSTANCES.insert(dispatch_ptr, Arc::new(data));

        for (extension, want) in [
            (
                c"VK_KHR_external_memory_fd",
                vk::Result::ERROR_EXTENSION_NOT_PRESENT,
            ),
            (
                c"VK_KHR_external_fence_fd",
                vk::Result::ERROR_EXTENSION_NOT_PRESENT,
            ),
            // Allowed, then fails for want of a loader chain in this test.
            (
                c"VK_EXT_external_memory_host",
                vk::Result::ERROR_INITIALIZATION_FAILED,
            ),
        ] {
            let names = [extension.as_ptr()];
            let info = vk::DeviceCreateInfo::default().enabled_extension_names(&names);
            let mut device = vk::Device::null();
            // SAFETY: valid create info; the fake physical device has data.
            let r = unsafe { create_device(physical_device, &info, std::ptr::null(), &mut device) };
            assert_eq!(r, want, "{extension:?}");
        }
        INSTANCES.remove(dispatch_ptr);
    }
}
