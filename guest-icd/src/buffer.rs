//! Buffers: device addresses answered from a cache.
//!
//! A buffer's device address (`vkGetBufferDeviceAddress`) and opaque capture
//! address never change while the buffer lives (it is bound once; sparse buffers
//! have theirs from creation). The first query goes to the host; later ones for
//! the same buffer are answered from the cache, which forgets a buffer when it is
//! destroyed. Buffer ids are unique in the process, so a stale entry can never
//! answer for another buffer.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

use ash::vk;
use ash::vk::Handle;
use venus_protocol::generated::guest_calls as gc;

use crate::dispatch::Rt;
use crate::guard;

/// (buffer id, 0 = device address / 1 = opaque capture address) → value.
static ADDRESSES: Mutex<Option<HashMap<(u64, u8), u64>>> = Mutex::new(None);

fn cache() -> MutexGuard<'static, Option<HashMap<(u64, u8), u64>>> {
    ADDRESSES.lock().unwrap_or_else(|p| p.into_inner())
}

fn cached(
    info: *const vk::BufferDeviceAddressInfo<'_>,
    kind: u8,
    ask: impl FnOnce() -> u64,
) -> u64 {
    // SAFETY: the application passes a valid info (Vulkan valid usage).
    let Some(i) = (unsafe { info.as_ref() }) else {
        return ask();
    };
    // Only the plain query is cached (no extension structs are defined for it at
    // this protocol level, but a chain would make the answer ours to not assume).
    if !i.p_next.is_null() {
        return ask();
    }
    let key = (i.buffer.as_raw(), kind);
    if let Some(v) = cache().as_ref().and_then(|m| m.get(&key).copied()) {
        return v;
    }
    let v = ask();
    if v != 0 {
        cache().get_or_insert_with(HashMap::new).insert(key, v);
    }
    v
}

/// `vkGetBufferDeviceAddress` (and its KHR/EXT aliases).
pub unsafe extern "system" fn get_buffer_device_address(
    device: vk::Device,
    info: *const vk::BufferDeviceAddressInfo<'_>,
) -> vk::DeviceAddress {
    guard(|| {
        cached(info, 0, || {
            // SAFETY: forwarded as the application passed them.
            unsafe { gc::vk_get_buffer_device_address::<Rt>(device, info) }
        })
    })
}

/// `vkGetBufferOpaqueCaptureAddress` (and its KHR alias).
pub unsafe extern "system" fn get_buffer_opaque_capture_address(
    device: vk::Device,
    info: *const vk::BufferDeviceAddressInfo<'_>,
) -> u64 {
    guard(|| {
        cached(info, 1, || {
            // SAFETY: forwarded.
            unsafe { gc::vk_get_buffer_opaque_capture_address::<Rt>(device, info) }
        })
    })
}

/// `vkDestroyBuffer`: forgets the buffer's addresses.
pub unsafe extern "system" fn destroy_buffer(
    device: vk::Device,
    buffer: vk::Buffer,
    allocator: *const vk::AllocationCallbacks<'_>,
) {
    guard(|| {
        if let Some(m) = cache().as_mut() {
            m.remove(&(buffer.as_raw(), 0));
            m.remove(&(buffer.as_raw(), 1));
        }
        // SAFETY: forwarded.
        unsafe { gc::vk_destroy_buffer::<Rt>(device, buffer, allocator) }
    })
}
