//! What "looks like MoltenVK on Apple Silicon" means for memory sharing.

use std::ffi::CStr;

use ash::vk;

/// The layer's name, as in its manifest.
pub const LAYER_NAME: &CStr = c"VK_LAYER_VENUS_macos_like";

/// Host page size on Apple Silicon, and what MoltenVK reports as
/// `minImportedHostPointerAlignment`.
pub const APPLE_PAGE_SIZE: u64 = 16384;

/// Device extensions MoltenVK does not have and this layer hides.
pub const HIDDEN_DEVICE_EXTENSIONS: [&CStr; 4] = [
    c"VK_KHR_external_memory_fd",
    c"VK_EXT_external_memory_dma_buf",
    c"VK_KHR_external_semaphore_fd",
    c"VK_KHR_external_fence_fd",
];

/// Device-level entry points of the hidden extensions; `vkGet*ProcAddr`
/// returns null for them.
pub const HIDDEN_DEVICE_COMMANDS: [&CStr; 6] = [
    c"vkGetMemoryFdKHR",
    c"vkGetMemoryFdPropertiesKHR",
    c"vkImportSemaphoreFdKHR",
    c"vkGetSemaphoreFdKHR",
    c"vkImportFenceFdKHR",
    c"vkGetFenceFdKHR",
];

/// Memory handle types MoltenVK cannot export or import.
pub const HIDDEN_MEMORY_HANDLE_TYPES: vk::ExternalMemoryHandleTypeFlags =
    vk::ExternalMemoryHandleTypeFlags::from_raw(
        vk::ExternalMemoryHandleTypeFlags::OPAQUE_FD.as_raw()
            | vk::ExternalMemoryHandleTypeFlags::DMA_BUF_EXT.as_raw(),
    );

/// Semaphore handle types MoltenVK cannot export or import.
pub const HIDDEN_SEMAPHORE_HANDLE_TYPES: vk::ExternalSemaphoreHandleTypeFlags =
    vk::ExternalSemaphoreHandleTypeFlags::from_raw(
        vk::ExternalSemaphoreHandleTypeFlags::OPAQUE_FD.as_raw()
            | vk::ExternalSemaphoreHandleTypeFlags::SYNC_FD.as_raw(),
    );

/// Fence handle types MoltenVK cannot export or import.
pub const HIDDEN_FENCE_HANDLE_TYPES: vk::ExternalFenceHandleTypeFlags =
    vk::ExternalFenceHandleTypeFlags::from_raw(
        vk::ExternalFenceHandleTypeFlags::OPAQUE_FD.as_raw()
            | vk::ExternalFenceHandleTypeFlags::SYNC_FD.as_raw(),
    );

/// Handle types that import a host pointer.
pub const HOST_POINTER_HANDLE_TYPES: vk::ExternalMemoryHandleTypeFlags =
    vk::ExternalMemoryHandleTypeFlags::from_raw(
        vk::ExternalMemoryHandleTypeFlags::HOST_ALLOCATION_EXT.as_raw()
            | vk::ExternalMemoryHandleTypeFlags::HOST_MAPPED_FOREIGN_MEMORY_EXT.as_raw(),
    );

/// Whether a device extension is hidden.
pub fn is_hidden_extension(name: &CStr) -> bool {
    HIDDEN_DEVICE_EXTENSIONS.contains(&name)
}

/// Whether a device command belongs to a hidden extension.
pub fn is_hidden_command(name: &CStr) -> bool {
    HIDDEN_DEVICE_COMMANDS.contains(&name)
}

/// Whether `value` is a multiple of the Apple page size.
pub fn is_page_aligned(value: u64) -> bool {
    value % APPLE_PAGE_SIZE == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alignment() {
        assert!(is_page_aligned(0));
        assert!(is_page_aligned(16384));
        assert!(is_page_aligned(65536));
        assert!(!is_page_aligned(4096));
        assert!(!is_page_aligned(16384 + 4096));
    }

    #[test]
    fn hidden_sets() {
        assert!(is_hidden_extension(c"VK_KHR_external_memory_fd"));
        assert!(!is_hidden_extension(c"VK_EXT_external_memory_host"));
        assert!(is_hidden_command(c"vkGetMemoryFdKHR"));
        assert!(!is_hidden_command(c"vkGetMemoryHostPointerPropertiesEXT"));
        assert!(HIDDEN_MEMORY_HANDLE_TYPES.contains(vk::ExternalMemoryHandleTypeFlags::DMA_BUF_EXT));
        assert!(!HIDDEN_MEMORY_HANDLE_TYPES.intersects(HOST_POINTER_HANDLE_TYPES));
    }
}
