//! The loader–layer interface (interface version 2), as `vulkan/vk_layer.h`
//! of loader 1.3.239 defines it. ash has the structure type numbers
//! (`LOADER_INSTANCE_CREATE_INFO`, `LOADER_DEVICE_CREATE_INFO`) but not the
//! structures, so they are declared here with the same layout.

use std::ffi::{c_char, c_void};

use ash::vk;

/// `PFN_GetPhysicalDeviceProcAddr`.
pub type PfnGetPhysicalDeviceProcAddr =
    Option<unsafe extern "system" fn(vk::Instance, *const c_char) -> vk::PFN_vkVoidFunction>;

/// `LAYER_NEGOTIATE_INTERFACE_STRUCT` of `VkNegotiateLayerStructType`.
pub const LAYER_NEGOTIATE_INTERFACE_STRUCT: u32 = 1;

/// The interface version this layer implements.
pub const LAYER_INTERFACE_VERSION: u32 = 2;

/// `VK_LAYER_LINK_INFO` of `VkLayerFunction`.
pub const LAYER_LINK_INFO: u32 = 0;

/// `VkNegotiateLayerInterface`.
#[repr(C)]
pub struct NegotiateLayerInterface {
    /// `VkNegotiateLayerStructType`.
    pub s_type: u32,
    /// Unused, null.
    pub p_next: *mut c_void,
    /// In: the loader's version; out: the version the layer speaks.
    pub loader_layer_interface_version: u32,
    /// Out (version >= 2): the layer's `vkGetInstanceProcAddr`.
    pub pfn_get_instance_proc_addr: Option<vk::PFN_vkGetInstanceProcAddr>,
    /// Out (version >= 2): the layer's `vkGetDeviceProcAddr`.
    pub pfn_get_device_proc_addr: Option<vk::PFN_vkGetDeviceProcAddr>,
    /// Out (version >= 2): optional physical-device proc addr; null here.
    pub pfn_get_physical_device_proc_addr: PfnGetPhysicalDeviceProcAddr,
}

/// `VkLayerInstanceLink`.
#[repr(C)]
pub struct LayerInstanceLink {
    /// The link of the layer below the next one.
    pub p_next: *mut LayerInstanceLink,
    /// `vkGetInstanceProcAddr` of the next layer (or the loader terminator).
    pub pfn_next_get_instance_proc_addr: Option<vk::PFN_vkGetInstanceProcAddr>,
    /// `GetPhysicalDeviceProcAddr` of the next layer.
    pub pfn_next_get_physical_device_proc_addr: PfnGetPhysicalDeviceProcAddr,
}

/// The union of `VkLayerInstanceCreateInfo`; only the link is used here.
#[repr(C)]
pub union LayerInstanceCreateInfoUnion {
    /// `function == VK_LAYER_LINK_INFO`.
    pub p_layer_info: *mut LayerInstanceLink,
    /// The largest member (`layerDevice`: two function pointers), for size.
    pub layer_device: [*const c_void; 2],
}

/// `VkLayerInstanceCreateInfo` (`sType == VK_STRUCTURE_TYPE_LOADER_INSTANCE_CREATE_INFO`).
#[repr(C)]
pub struct LayerInstanceCreateInfo {
    /// `LOADER_INSTANCE_CREATE_INFO`.
    pub s_type: vk::StructureType,
    /// Next structure.
    pub p_next: *const c_void,
    /// `VkLayerFunction`.
    pub function: u32,
    /// Payload selected by `function`.
    pub u: LayerInstanceCreateInfoUnion,
}

/// `VkLayerDeviceLink`.
#[repr(C)]
pub struct LayerDeviceLink {
    /// The link of the layer below the next one.
    pub p_next: *mut LayerDeviceLink,
    /// `vkGetInstanceProcAddr` of the next layer.
    pub pfn_next_get_instance_proc_addr: Option<vk::PFN_vkGetInstanceProcAddr>,
    /// `vkGetDeviceProcAddr` of the next layer.
    pub pfn_next_get_device_proc_addr: Option<vk::PFN_vkGetDeviceProcAddr>,
}

/// The union of `VkLayerDeviceCreateInfo`; only the link is used here.
#[repr(C)]
pub union LayerDeviceCreateInfoUnion {
    /// `function == VK_LAYER_LINK_INFO`.
    pub p_layer_info: *mut LayerDeviceLink,
    /// `function == VK_LOADER_DATA_CALLBACK`.
    pub pfn_set_device_loader_data: *const c_void,
}

/// `VkLayerDeviceCreateInfo` (`sType == VK_STRUCTURE_TYPE_LOADER_DEVICE_CREATE_INFO`).
#[repr(C)]
pub struct LayerDeviceCreateInfo {
    /// `LOADER_DEVICE_CREATE_INFO`.
    pub s_type: vk::StructureType,
    /// Next structure.
    pub p_next: *const c_void,
    /// `VkLayerFunction`.
    pub function: u32,
    /// Payload selected by `function`.
    pub u: LayerDeviceCreateInfoUnion,
}

/// Finds the structure of type `s_type` whose `function` is `VK_LAYER_LINK_INFO`
/// in a `pNext` chain.
///
/// # Safety
/// `p_next` must be null or the head of a valid Vulkan `pNext` chain, and every
/// structure of type `s_type` in it must start like [`LayerInstanceCreateInfo`]
/// (which [`LayerDeviceCreateInfo`] also does).
unsafe fn find_link_info(mut p_next: *const c_void, s_type: vk::StructureType) -> *mut c_void {
    while !p_next.is_null() {
        let header = p_next.cast::<vk::BaseInStructure>();
        // SAFETY: the caller guarantees a valid chain; every element starts
        // with sType/pNext.
        let (ty, next) = unsafe { ((*header).s_type, (*header).p_next) };
        if ty == s_type {
            // SAFETY: the caller guarantees the layout of `s_type` structures.
            let function = unsafe { (*p_next.cast::<LayerInstanceCreateInfo>()).function };
            if function == LAYER_LINK_INFO {
                // The loader allocated the chain mutable; advancing the link
                // through it is how the layer chain is meant to be walked.
                return p_next.cast_mut();
            }
        }
        p_next = next.cast();
    }
    std::ptr::null_mut()
}

/// The instance link this layer must use and advance, or null.
///
/// # Safety
/// `p_next` must be null or the head of a valid `VkInstanceCreateInfo` chain.
pub unsafe fn find_instance_link(p_next: *const c_void) -> *mut LayerInstanceCreateInfo {
    // SAFETY: forwarded from the caller; LOADER_INSTANCE_CREATE_INFO
    // structures are `VkLayerInstanceCreateInfo`.
    unsafe { find_link_info(p_next, vk::StructureType::LOADER_INSTANCE_CREATE_INFO).cast() }
}

/// The device link this layer must use and advance, or null.
///
/// # Safety
/// `p_next` must be null or the head of a valid `VkDeviceCreateInfo` chain.
pub unsafe fn find_device_link(p_next: *const c_void) -> *mut LayerDeviceCreateInfo {
    // SAFETY: forwarded from the caller; LOADER_DEVICE_CREATE_INFO
    // structures are `VkLayerDeviceCreateInfo`.
    unsafe { find_link_info(p_next, vk::StructureType::LOADER_DEVICE_CREATE_INFO).cast() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layouts_match_vk_layer_h_on_lp64() {
        // Sizes of the C structures on x86_64/aarch64 Linux and macOS.
        assert_eq!(std::mem::size_of::<NegotiateLayerInterface>(), 48);
        assert_eq!(std::mem::size_of::<LayerInstanceLink>(), 24);
        assert_eq!(std::mem::size_of::<LayerInstanceCreateInfo>(), 40);
        assert_eq!(std::mem::size_of::<LayerDeviceLink>(), 24);
        assert_eq!(std::mem::size_of::<LayerDeviceCreateInfo>(), 32);
        assert_eq!(std::mem::offset_of!(LayerInstanceCreateInfo, u), 24);
        assert_eq!(std::mem::offset_of!(LayerDeviceCreateInfo, u), 24);
    }

    #[test]
    fn finds_link_info_and_skips_other_functions() {
        let mut link = LayerDeviceLink {
            p_next: std::ptr::null_mut(),
            pfn_next_get_instance_proc_addr: None,
            pfn_next_get_device_proc_addr: None,
        };
        let link_info = LayerDeviceCreateInfo {
            s_type: vk::StructureType::LOADER_DEVICE_CREATE_INFO,
            p_next: std::ptr::null(),
            function: LAYER_LINK_INFO,
            u: LayerDeviceCreateInfoUnion {
                p_layer_info: &mut link,
            },
        };
        let callback = LayerDeviceCreateInfo {
            s_type: vk::StructureType::LOADER_DEVICE_CREATE_INFO,
            p_next: (&link_info as *const LayerDeviceCreateInfo).cast(),
            function: 1,
            u: LayerDeviceCreateInfoUnion {
                pfn_set_device_loader_data: std::ptr::null(),
            },
        };
        // SAFETY: a two-element chain built above.
        let found = unsafe { find_device_link((&callback as *const LayerDeviceCreateInfo).cast()) };
        assert_eq!(found.cast_const(), &link_info as *const _);
        // SAFETY: an empty chain.
        assert!(unsafe { find_instance_link(std::ptr::null()) }.is_null());
    }
}
