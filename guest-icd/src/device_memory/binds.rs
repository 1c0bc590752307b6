//! Commands that name a `VkDeviceMemory`: a sub-allocation is rewritten to its
//! block's host id, with its offset in the block added to the memory offset
//! (copies of the application's structs, which stay untouched).

use ash::vk;
use venus_protocol::generated::guest_calls as gc;

use crate::device::{device, Device};
use crate::dispatch::Rt;
use crate::guard;

/// `count` elements at `p` (empty when null).
///
/// # Safety
/// `p` is null or holds `count` elements.
unsafe fn slice<'a, T>(p: *const T, count: u32) -> &'a [T] {
    if p.is_null() || count == 0 {
        &[]
    } else {
        // SAFETY: caller contract.
        unsafe { std::slice::from_raw_parts(p, count as usize) }
    }
}

/// `memory` and `offset` as the host knows them.
fn host(dev: Option<&Device>, memory: vk::DeviceMemory, offset: u64) -> (vk::DeviceMemory, u64) {
    match dev {
        Some(d) => {
            let (m, base) = d.memory.resolve(memory);
            (m, base.saturating_add(offset))
        }
        None => (memory, offset),
    }
}

pub unsafe extern "system" fn bind_buffer_memory(
    device: vk::Device,
    buffer: vk::Buffer,
    memory: vk::DeviceMemory,
    offset: vk::DeviceSize,
) -> vk::Result {
    guard(|| {
        // SAFETY: the application passes a device of ours.
        let (m, o) = host(unsafe { self::device(device) }, memory, offset);
        // SAFETY: plain handles.
        unsafe { gc::vk_bind_buffer_memory::<Rt>(device, buffer, m, o) }
    })
}

pub unsafe extern "system" fn bind_image_memory(
    device: vk::Device,
    image: vk::Image,
    memory: vk::DeviceMemory,
    offset: vk::DeviceSize,
) -> vk::Result {
    guard(|| {
        // SAFETY: the application passes a device of ours.
        let (m, o) = host(unsafe { self::device(device) }, memory, offset);
        // SAFETY: plain handles.
        unsafe { gc::vk_bind_image_memory::<Rt>(device, image, m, o) }
    })
}

pub unsafe extern "system" fn bind_buffer_memory2(
    device: vk::Device,
    count: u32,
    infos: *const vk::BindBufferMemoryInfo<'_>,
) -> vk::Result {
    guard(|| {
        // SAFETY: the application passes a device of ours.
        let dev = unsafe { self::device(device) };
        // SAFETY: `count` infos (Vulkan rules).
        let mut v = unsafe { slice(infos, count) }.to_vec();
        for i in &mut v {
            (i.memory, i.memory_offset) = host(dev, i.memory, i.memory_offset);
        }
        // SAFETY: copies of valid infos (their chains are the application's).
        unsafe { gc::vk_bind_buffer_memory2::<Rt>(device, v.len() as u32, v.as_ptr()) }
    })
}

pub unsafe extern "system" fn bind_image_memory2(
    device: vk::Device,
    count: u32,
    infos: *const vk::BindImageMemoryInfo<'_>,
) -> vk::Result {
    guard(|| {
        // SAFETY: the application passes a device of ours.
        let dev = unsafe { self::device(device) };
        // SAFETY: `count` infos (Vulkan rules).
        let mut v = unsafe { slice(infos, count) }.to_vec();
        // No struct its chain may hold (plane, device group, swapchain) names memory.
        for i in &mut v {
            if i.memory != vk::DeviceMemory::null() {
                (i.memory, i.memory_offset) = host(dev, i.memory, i.memory_offset);
            }
        }
        // SAFETY: copies of valid infos (their chains are the application's).
        unsafe { gc::vk_bind_image_memory2::<Rt>(device, v.len() as u32, v.as_ptr()) }
    })
}

pub unsafe extern "system" fn get_device_memory_commitment(
    device: vk::Device,
    memory: vk::DeviceMemory,
    out: *mut vk::DeviceSize,
) {
    guard(|| {
        // SAFETY: the application passes a device of ours.
        let dev = unsafe { self::device(device) };
        if let Some(size) = dev.and_then(|d| d.memory.sub_size(memory)) {
            // A sub-allocation is host-visible, so never lazily allocated: all of
            // it is committed.
            // SAFETY: valid pointer per the Vulkan rules.
            if let Some(o) = unsafe { out.as_mut() } {
                *o = size;
            }
            return;
        }
        // SAFETY: forwarded Vulkan contract.
        unsafe { gc::vk_get_device_memory_commitment::<Rt>(device, memory, out) }
    })
}

pub unsafe extern "system" fn get_device_memory_opaque_capture_address(
    device: vk::Device,
    info: *const vk::DeviceMemoryOpaqueCaptureAddressInfo<'_>,
) -> u64 {
    guard(|| {
        // SAFETY: the application passes a device of ours and a valid pointer.
        let (dev, Some(i)) = (unsafe { self::device(device) }, unsafe { info.as_ref() }) else {
            return 0;
        };
        // Memory allocated for capture replay is never sub-allocated; rewrite anyway
        // so the host never sees a guest-only id.
        let mut copy = *i;
        copy.memory = host(dev, i.memory, 0).0;
        // SAFETY: a copy of a valid info.
        unsafe { gc::vk_get_device_memory_opaque_capture_address::<Rt>(device, &copy) }
    })
}

/// Rewritten copies of sparse binds, with the storage their pointers point into
/// (inner vectors never move once pushed).
#[derive(Default)]
struct SparseCopies<'a> {
    infos: Vec<vk::BindSparseInfo<'a>>,
    buffer_infos: Vec<Vec<vk::SparseBufferMemoryBindInfo<'a>>>,
    opaque_infos: Vec<Vec<vk::SparseImageOpaqueMemoryBindInfo<'a>>>,
    image_infos: Vec<Vec<vk::SparseImageMemoryBindInfo<'a>>>,
    binds: Vec<Vec<vk::SparseMemoryBind>>,
    image_binds: Vec<Vec<vk::SparseImageMemoryBind>>,
}

/// Copies `n` binds at `p` into `store`, rewritten; returns where the copy is.
///
/// # Safety
/// `p` is null or holds `n` binds.
unsafe fn copy_binds(
    dev: &Device,
    store: &mut Vec<Vec<vk::SparseMemoryBind>>,
    p: *const vk::SparseMemoryBind,
    n: u32,
) -> *const vk::SparseMemoryBind {
    // SAFETY: caller contract.
    let mut v = unsafe { slice(p, n) }.to_vec();
    for b in &mut v {
        if b.memory != vk::DeviceMemory::null() {
            (b.memory, b.memory_offset) = host(Some(dev), b.memory, b.memory_offset);
        }
    }
    let ptr = v.as_ptr();
    store.push(v);
    ptr
}

/// Copies `infos`, rewriting every bind's memory and offset.
///
/// # Safety
/// `infos` are valid per the Vulkan rules.
unsafe fn rewrite_sparse<'a>(dev: &Device, infos: &[vk::BindSparseInfo<'a>]) -> SparseCopies<'a> {
    let mut c = SparseCopies::default();
    for info in infos {
        let mut info = *info;
        // SAFETY: counts and pointers per the Vulkan rules.
        let mut bufs = unsafe { slice(info.p_buffer_binds, info.buffer_bind_count) }.to_vec();
        for b in &mut bufs {
            // SAFETY: as above.
            b.p_binds = unsafe { copy_binds(dev, &mut c.binds, b.p_binds, b.bind_count) };
        }
        info.p_buffer_binds = bufs.as_ptr();
        c.buffer_infos.push(bufs);
        // SAFETY: as above.
        let mut opaque =
            unsafe { slice(info.p_image_opaque_binds, info.image_opaque_bind_count) }.to_vec();
        for b in &mut opaque {
            // SAFETY: as above.
            b.p_binds = unsafe { copy_binds(dev, &mut c.binds, b.p_binds, b.bind_count) };
        }
        info.p_image_opaque_binds = opaque.as_ptr();
        c.opaque_infos.push(opaque);
        // SAFETY: as above.
        let mut images = unsafe { slice(info.p_image_binds, info.image_bind_count) }.to_vec();
        for b in &mut images {
            // SAFETY: as above.
            let mut v = unsafe { slice(b.p_binds, b.bind_count) }.to_vec();
            for ib in &mut v {
                if ib.memory != vk::DeviceMemory::null() {
                    (ib.memory, ib.memory_offset) = host(Some(dev), ib.memory, ib.memory_offset);
                }
            }
            b.p_binds = v.as_ptr();
            c.image_binds.push(v);
        }
        info.p_image_binds = images.as_ptr();
        c.image_infos.push(images);
        c.infos.push(info);
    }
    c
}

pub unsafe extern "system" fn queue_bind_sparse(
    queue: vk::Queue,
    count: u32,
    infos: *const vk::BindSparseInfo<'_>,
    fence: vk::Fence,
) -> vk::Result {
    guard(|| {
        crate::fence::submitted(fence);
        // SAFETY: the application passes a queue of ours, whose device is alive.
        let dev = unsafe { crate::device::queue_device(queue) };
        // SAFETY: `count` infos (Vulkan rules).
        let list = unsafe { slice(infos, count) };
        match dev {
            Some(dev) if dev.memory.any_sub() => {
                // SAFETY: valid infos.
                let c = unsafe { rewrite_sparse(dev, list) };
                // SAFETY: rewritten copies of valid infos.
                unsafe {
                    gc::vk_queue_bind_sparse::<Rt>(
                        queue,
                        c.infos.len() as u32,
                        c.infos.as_ptr(),
                        fence,
                    )
                }
            }
            // SAFETY: forwarded Vulkan contract.
            _ => unsafe { gc::vk_queue_bind_sparse::<Rt>(queue, count, infos, fence) },
        }
    })
}
