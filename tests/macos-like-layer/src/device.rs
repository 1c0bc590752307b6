//! Device-level interceptions: memory import, export and mapping rules of
//! MoltenVK on a 16 KiB-page host under HVF.

use std::ffi::c_void;

use ash::vk;

use crate::dispatch::{device_data, dispatch_key, DEVICES};
use crate::guard;
use crate::policy::{
    is_page_aligned, APPLE_PAGE_SIZE, HIDDEN_MEMORY_HANDLE_TYPES, HOST_POINTER_HANDLE_TYPES,
};
use crate::refusal::{record, Refusal};

pub(crate) unsafe extern "system" fn destroy_device(
    device: vk::Device,
    p_allocator: *const vk::AllocationCallbacks<'_>,
) {
    guard((), || {
        let Some(data) = device_data(device) else {
            return;
        };
        // SAFETY: the caller passes a live device (null has no data).
        DEVICES.remove(unsafe { dispatch_key(device) });
        if let Some(next) = data.destroy_device {
            // SAFETY: forwarded unchanged.
            unsafe { next(device, p_allocator) };
        }
    })
}

/// Why an allocation must fail, if it must.
///
/// # Safety
/// `info` must head a valid `VkMemoryAllocateInfo` chain.
unsafe fn allocation_refusal(info: &vk::MemoryAllocateInfo<'_>) -> Option<vk::Result> {
    let mut p = info.p_next.cast::<vk::BaseInStructure<'_>>();
    while !p.is_null() {
        // SAFETY: every element starts with sType/pNext and has the
        // structure type its sType names.
        unsafe {
            match (*p).s_type {
                vk::StructureType::IMPORT_MEMORY_HOST_POINTER_INFO_EXT => {
                    let import = &*p.cast::<vk::ImportMemoryHostPointerInfoEXT<'_>>();
                    let pointer = import.p_host_pointer as usize as u64;
                    if HOST_POINTER_HANDLE_TYPES.contains(import.handle_type)
                        && !(is_page_aligned(pointer) && is_page_aligned(info.allocation_size))
                    {
                        record(
                            Refusal::HostPointerImport,
                            format_args!(
                                "pointer={pointer:#x} size={} alignment={APPLE_PAGE_SIZE}",
                                info.allocation_size
                            ),
                        );
                        return Some(vk::Result::ERROR_INVALID_EXTERNAL_HANDLE);
                    }
                }
                vk::StructureType::IMPORT_MEMORY_FD_INFO_KHR => {
                    let import = &*p.cast::<vk::ImportMemoryFdInfoKHR<'_>>();
                    if !import.handle_type.is_empty() {
                        record(
                            Refusal::FdMemoryImport,
                            format_args!("handle_type={:?} fd={}", import.handle_type, import.fd),
                        );
                        return Some(vk::Result::ERROR_INVALID_EXTERNAL_HANDLE);
                    }
                }
                vk::StructureType::EXPORT_MEMORY_ALLOCATE_INFO => {
                    let export = &*p.cast::<vk::ExportMemoryAllocateInfo<'_>>();
                    if export.handle_types.intersects(HIDDEN_MEMORY_HANDLE_TYPES) {
                        record(
                            Refusal::FdMemoryExport,
                            format_args!("handle_types={:?}", export.handle_types),
                        );
                        return Some(vk::Result::ERROR_INVALID_EXTERNAL_HANDLE);
                    }
                }
                _ => {}
            }
            p = (*p).p_next;
        }
    }
    None
}

pub(crate) unsafe extern "system" fn allocate_memory(
    device: vk::Device,
    p_allocate_info: *const vk::MemoryAllocateInfo<'_>,
    p_allocator: *const vk::AllocationCallbacks<'_>,
    p_memory: *mut vk::DeviceMemory,
) -> vk::Result {
    guard(vk::Result::ERROR_OUT_OF_HOST_MEMORY, || {
        if p_allocate_info.is_null() {
            return vk::Result::ERROR_INITIALIZATION_FAILED;
        }
        // SAFETY: the caller passes a valid allocate info chain.
        if let Some(refusal) = unsafe { allocation_refusal(&*p_allocate_info) } {
            return refusal;
        }
        let Some(next) = device_data(device).and_then(|d| d.allocate_memory) else {
            return vk::Result::ERROR_INITIALIZATION_FAILED;
        };
        // SAFETY: forwarded unchanged.
        unsafe { next(device, p_allocate_info, p_allocator, p_memory) }
    })
}

pub(crate) unsafe extern "system" fn get_memory_host_pointer_properties(
    device: vk::Device,
    handle_type: vk::ExternalMemoryHandleTypeFlags,
    p_host_pointer: *const c_void,
    p_properties: *mut vk::MemoryHostPointerPropertiesEXT<'_>,
) -> vk::Result {
    guard(vk::Result::ERROR_OUT_OF_HOST_MEMORY, || {
        let pointer = p_host_pointer as usize as u64;
        if HOST_POINTER_HANDLE_TYPES.contains(handle_type) && !is_page_aligned(pointer) {
            record(
                Refusal::HostPointerProperties,
                format_args!("pointer={pointer:#x} alignment={APPLE_PAGE_SIZE}"),
            );
            return vk::Result::ERROR_INVALID_EXTERNAL_HANDLE;
        }
        let Some(next) = device_data(device).and_then(|d| d.get_memory_host_pointer_properties)
        else {
            return vk::Result::ERROR_INITIALIZATION_FAILED;
        };
        // SAFETY: forwarded unchanged.
        unsafe { next(device, handle_type, p_host_pointer, p_properties) }
    })
}

/// Records and refuses a mapping whose offset HVF could not map into a guest.
fn map_offset_refused(entry: &str, offset: vk::DeviceSize) -> bool {
    if is_page_aligned(offset) {
        return false;
    }
    record(
        Refusal::MapMemoryOffset,
        format_args!("entry={entry} offset={offset} alignment={APPLE_PAGE_SIZE}"),
    );
    true
}

pub(crate) unsafe extern "system" fn map_memory(
    device: vk::Device,
    memory: vk::DeviceMemory,
    offset: vk::DeviceSize,
    size: vk::DeviceSize,
    flags: vk::MemoryMapFlags,
    pp_data: *mut *mut c_void,
) -> vk::Result {
    guard(vk::Result::ERROR_MEMORY_MAP_FAILED, || {
        if map_offset_refused("vkMapMemory", offset) {
            return vk::Result::ERROR_MEMORY_MAP_FAILED;
        }
        let Some(next) = device_data(device).and_then(|d| d.map_memory) else {
            return vk::Result::ERROR_INITIALIZATION_FAILED;
        };
        // SAFETY: forwarded unchanged.
        unsafe { next(device, memory, offset, size, flags, pp_data) }
    })
}

/// Shared body of `vkMapMemory2{,KHR}`.
///
/// # Safety
/// Arguments as for `vkMapMemory2KHR`.
unsafe fn map2(
    device: vk::Device,
    p_info: *const vk::MemoryMapInfoKHR<'_>,
    pp_data: *mut *mut c_void,
    khr: bool,
) -> vk::Result {
    if p_info.is_null() {
        return vk::Result::ERROR_INITIALIZATION_FAILED;
    }
    let entry = if khr {
        "vkMapMemory2KHR"
    } else {
        "vkMapMemory2"
    };
    // SAFETY: valid per the caller.
    if map_offset_refused(entry, unsafe { (*p_info).offset }) {
        return vk::Result::ERROR_MEMORY_MAP_FAILED;
    }
    let next = device_data(device).and_then(|d| {
        if khr {
            d.map_memory2_khr
        } else {
            d.map_memory2
        }
    });
    let Some(next) = next else {
        return vk::Result::ERROR_INITIALIZATION_FAILED;
    };
    // SAFETY: forwarded unchanged.
    unsafe { next(device, p_info, pp_data) }
}

pub(crate) unsafe extern "system" fn map_memory2_khr(
    device: vk::Device,
    p_info: *const vk::MemoryMapInfoKHR<'_>,
    pp_data: *mut *mut c_void,
) -> vk::Result {
    // SAFETY: forwarded from the caller.
    guard(vk::Result::ERROR_MEMORY_MAP_FAILED, || unsafe {
        map2(device, p_info, pp_data, true)
    })
}

pub(crate) unsafe extern "system" fn map_memory2(
    device: vk::Device,
    p_info: *const vk::MemoryMapInfoKHR<'_>,
    pp_data: *mut *mut c_void,
) -> vk::Result {
    // SAFETY: forwarded from the caller.
    guard(vk::Result::ERROR_MEMORY_MAP_FAILED, || unsafe {
        map2(device, p_info, pp_data, false)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refusal_of(info: &vk::MemoryAllocateInfo<'_>) -> Option<vk::Result> {
        // SAFETY: `info` heads a chain built by the test.
        unsafe { allocation_refusal(info) }
    }

    #[test]
    fn host_pointer_imports_need_16k_pointer_and_size() {
        let cases = [
            (0x10000usize, 65536u64, None),
            (
                0x11000,
                65536,
                Some(vk::Result::ERROR_INVALID_EXTERNAL_HANDLE),
            ),
            (
                0x10000,
                4096,
                Some(vk::Result::ERROR_INVALID_EXTERNAL_HANDLE),
            ),
        ];
        for (pointer, size, want) in cases {
            let mut import = vk::ImportMemoryHostPointerInfoEXT::default()
                .handle_type(vk::ExternalMemoryHandleTypeFlags::HOST_ALLOCATION_EXT)
                .host_pointer(pointer as *mut c_void);
            let info = vk::MemoryAllocateInfo::default()
                .allocation_size(size)
                .push_next(&mut import);
            assert_eq!(refusal_of(&info), want, "pointer {pointer:#x} size {size}");
        }
        // A plain allocation of any size is not an import.
        assert_eq!(
            refusal_of(&vk::MemoryAllocateInfo::default().allocation_size(100)),
            None
        );
    }

    #[test]
    fn fd_imports_and_exports_are_refused() {
        let mut import = vk::ImportMemoryFdInfoKHR::default()
            .handle_type(vk::ExternalMemoryHandleTypeFlags::OPAQUE_FD)
            .fd(3);
        let info = vk::MemoryAllocateInfo::default()
            .allocation_size(16384)
            .push_next(&mut import);
        assert_eq!(
            refusal_of(&info),
            Some(vk::Result::ERROR_INVALID_EXTERNAL_HANDLE)
        );
        let mut export = vk::ExportMemoryAllocateInfo::default()
            .handle_types(vk::ExternalMemoryHandleTypeFlags::DMA_BUF_EXT);
        let info = vk::MemoryAllocateInfo::default()
            .allocation_size(16384)
            .push_next(&mut export);
        assert_eq!(
            refusal_of(&info),
            Some(vk::Result::ERROR_INVALID_EXTERNAL_HANDLE)
        );
        let mut export = vk::ExportMemoryAllocateInfo::default()
            .handle_types(vk::ExternalMemoryHandleTypeFlags::HOST_ALLOCATION_EXT);
        let info = vk::MemoryAllocateInfo::default()
            .allocation_size(16384)
            .push_next(&mut export);
        assert_eq!(refusal_of(&info), None);
    }

    #[test]
    fn map_offsets_are_judged_before_dispatch() {
        let mut data = std::ptr::null_mut();
        // SAFETY: the refusal happens before the (null, unknown) device is used.
        let r = unsafe {
            map_memory(
                vk::Device::null(),
                vk::DeviceMemory::null(),
                4096,
                vk::WHOLE_SIZE,
                vk::MemoryMapFlags::empty(),
                &mut data,
            )
        };
        assert_eq!(r, vk::Result::ERROR_MEMORY_MAP_FAILED);
        // An aligned offset goes on to the device, which is unknown here.
        // SAFETY: a null device has no dispatch data and is never dereferenced.
        let r = unsafe {
            map_memory(
                vk::Device::null(),
                vk::DeviceMemory::null(),
                16384,
                vk::WHOLE_SIZE,
                vk::MemoryMapFlags::empty(),
                &mut data,
            )
        };
        assert_eq!(r, vk::Result::ERROR_INITIALIZATION_FAILED);
    }
}
