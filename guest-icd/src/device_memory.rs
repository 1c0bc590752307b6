//! Device memory: allocated on the host (round trip, so failures are reported);
//! host-visible memory is mapped through a blob named by the memory's id.

use ash::vk;
use ash::vk::Handle;
use venus_protocol::generated as g;

use crate::device::device;
use crate::guard;
use crate::transport::{MappedBlob, Transport};

/// Guest-side state of a `VkDeviceMemory`.
pub struct Memory {
    size: u64,
    blob: Option<MappedBlob>,
}

impl Memory {
    /// Unmaps and releases the blob, if any.
    pub fn release(self, transport: &dyn Transport) {
        if let Some(b) = self.blob {
            transport.destroy_blob(b);
        }
    }
}

pub unsafe extern "system" fn allocate_memory(
    device: vk::Device,
    info: *const vk::MemoryAllocateInfo<'_>,
    _alloc: *const vk::AllocationCallbacks<'_>,
    out: *mut vk::DeviceMemory,
) -> vk::Result {
    guard(|| {
        // SAFETY: the application passes a device of ours and valid pointers.
        let (Some(dev), Some(i), Some(out)) = (
            unsafe { self::device(device) },
            unsafe { info.as_ref() },
            unsafe { out.as_mut() },
        ) else {
            return vk::Result::ERROR_INITIALIZATION_FAILED;
        };
        let mut slot = vk::DeviceMemory::from_raw(crate::dispatch::next_id());
        let slot_p: *mut vk::DeviceMemory = &mut slot;
        let mut ret = vk::Result::ERROR_DEVICE_LOST;
        if let Err(e) = dev.hdr.conn.call(
            // SAFETY: valid pointers.
            &mut |e, f| unsafe {
                g::encode_vk_allocate_memory(e, f, device, info, std::ptr::null(), slot_p)
            },
            &mut |d| {
                // SAFETY: as above.
                ret = unsafe {
                    g::decode_reply_vk_allocate_memory(d, device, info, std::ptr::null(), slot_p)
                }
            },
        ) {
            return e;
        }
        if ret != vk::Result::SUCCESS {
            return ret;
        }
        dev.memories
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(
                slot.as_raw(),
                Memory {
                    size: i.allocation_size,
                    blob: None,
                },
            );
        *out = slot;
        vk::Result::SUCCESS
    })
}

pub unsafe extern "system" fn free_memory(
    device: vk::Device,
    memory: vk::DeviceMemory,
    _alloc: *const vk::AllocationCallbacks<'_>,
) {
    guard(|| {
        // SAFETY: the application passes a device of ours.
        let Some(dev) = (unsafe { self::device(device) }) else {
            return;
        };
        if memory.as_raw() == 0 {
            return;
        }
        let m = dev
            .memories
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&memory.as_raw());
        let _ = dev.hdr.conn.send(&mut |e, f| {
            // SAFETY: plain handles.
            unsafe { g::encode_vk_free_memory(e, f, device, memory, std::ptr::null()) }
        });
        if let Some(m) = m {
            m.release(&*dev.hdr.conn.transport);
        }
    })
}

pub unsafe extern "system" fn map_memory(
    device: vk::Device,
    memory: vk::DeviceMemory,
    offset: vk::DeviceSize,
    _size: vk::DeviceSize,
    _flags: vk::MemoryMapFlags,
    pp: *mut *mut core::ffi::c_void,
) -> vk::Result {
    guard(|| {
        // SAFETY: the application passes a device of ours and a valid pointer.
        let (Some(dev), Some(pp)) = (unsafe { self::device(device) }, unsafe { pp.as_mut() })
        else {
            return vk::Result::ERROR_MEMORY_MAP_FAILED;
        };
        let mut mems = dev.memories.lock().unwrap_or_else(|p| p.into_inner());
        let Some(m) = mems.get_mut(&memory.as_raw()) else {
            return vk::Result::ERROR_MEMORY_MAP_FAILED;
        };
        if offset > m.size {
            return vk::Result::ERROR_MEMORY_MAP_FAILED;
        }
        if m.blob.is_none() {
            let size = crate::connection::round_up(m.size, dev.hdr.conn.granularity);
            match dev.hdr.conn.transport.create_blob(memory.as_raw(), size) {
                Ok(b) => m.blob = Some(b),
                Err(e) => {
                    tracing::warn!("cannot map memory {}: {e}", memory.as_raw());
                    return vk::Result::ERROR_MEMORY_MAP_FAILED;
                }
            }
        }
        let Some(b) = m.blob.as_ref() else {
            return vk::Result::ERROR_MEMORY_MAP_FAILED;
        };
        // SAFETY: offset ≤ size ≤ the blob's mapped size.
        *pp = unsafe { b.ptr.add(offset as usize) }.cast();
        vk::Result::SUCCESS
    })
}

pub unsafe extern "system" fn unmap_memory(_device: vk::Device, _memory: vk::DeviceMemory) {
    // The mapping stays until the memory is freed (mapping again is then free).
}

pub unsafe extern "system" fn flush_or_invalidate(
    _device: vk::Device,
    _count: u32,
    _ranges: *const vk::MappedMemoryRange<'_>,
) -> vk::Result {
    // Blobs are the host's own pages: there is nothing to copy.
    vk::Result::SUCCESS
}
