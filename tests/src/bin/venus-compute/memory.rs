//! Buffers and their memory: memory type choice, allocation, binding and mapping.

use std::ffi::c_void;

use ash::vk;

use crate::device::Setup;
use crate::report::{Fail, VkContext};
use crate::vulkan::{Obj, Vulkan};

fn find_memory_type(
    memory: &vk::PhysicalDeviceMemoryProperties,
    type_bits: u32,
    required: vk::MemoryPropertyFlags,
    avoid: vk::MemoryPropertyFlags,
) -> Option<u32> {
    (0..memory.memory_type_count).find(|&i| {
        let flags = memory.memory_types[i as usize].property_flags;
        type_bits & (1 << i) != 0 && flags.contains(required) && !flags.intersects(avoid)
    })
}

/// Which memory a buffer goes in.
#[derive(Clone, Copy, PartialEq)]
pub(crate) enum Placement {
    /// HOST_VISIBLE | HOST_COHERENT.
    Coherent,
    /// HOST_VISIBLE without HOST_COHERENT if there is one, otherwise coherent.
    PreferNonCoherent,
    /// DEVICE_LOCAL if possible, otherwise anything.
    Device,
}

pub(crate) struct BufferMem {
    pub(crate) buffer: vk::Buffer,
    pub(crate) memory: vk::DeviceMemory,
    pub(crate) coherent: bool,
    pub(crate) mapped: *mut c_void,
}

pub(crate) fn create_buffer(
    vk_: &mut Vulkan,
    setup: &Setup,
    size: u64,
    usage: vk::BufferUsageFlags,
    placement: Placement,
) -> Result<BufferMem, Fail> {
    let device = vk_.device()?.clone();
    // SAFETY: valid device; the buffer is tracked for destruction.
    let buffer = unsafe {
        device.create_buffer(
            &vk::BufferCreateInfo::default()
                .size(size)
                .usage(usage)
                .sharing_mode(vk::SharingMode::EXCLUSIVE),
            None,
        )
    }
    .ctx("vkCreateBuffer")?;
    vk_.track(Obj::Buffer(buffer));
    // SAFETY: valid buffer.
    let req = unsafe { device.get_buffer_memory_requirements(buffer) };
    use vk::MemoryPropertyFlags as F;
    let none = F::empty();
    let index = match placement {
        Placement::Coherent => find_memory_type(
            &setup.memory,
            req.memory_type_bits,
            F::HOST_VISIBLE | F::HOST_COHERENT,
            none,
        ),
        Placement::PreferNonCoherent => find_memory_type(
            &setup.memory,
            req.memory_type_bits,
            F::HOST_VISIBLE,
            F::HOST_COHERENT,
        )
        .or_else(|| {
            find_memory_type(
                &setup.memory,
                req.memory_type_bits,
                F::HOST_VISIBLE | F::HOST_COHERENT,
                none,
            )
        }),
        Placement::Device => {
            find_memory_type(&setup.memory, req.memory_type_bits, F::DEVICE_LOCAL, none)
                .or_else(|| find_memory_type(&setup.memory, req.memory_type_bits, none, none))
        }
    }
    .ok_or_else(|| format!("no memory type for a buffer of usage {usage:?}"))?;
    let flags = setup.memory.memory_types[index as usize].property_flags;
    // SAFETY: valid device; the allocation is tracked (freed after the buffer).
    let memory = unsafe {
        device.allocate_memory(
            &vk::MemoryAllocateInfo::default()
                .allocation_size(req.size)
                .memory_type_index(index),
            None,
        )
    }
    .ctx("vkAllocateMemory")?;
    vk_.track(Obj::Memory(memory));
    // Destroy the buffer before freeing its memory: move the buffer after the memory.
    let len = vk_.objects.len();
    vk_.objects.swap(len - 1, len - 2);
    // SAFETY: unbound buffer, memory of a type allowed by its requirements, offset 0.
    unsafe { device.bind_buffer_memory(buffer, memory, 0) }.ctx("vkBindBufferMemory")?;
    let mut mapped = std::ptr::null_mut();
    if placement != Placement::Device {
        // SAFETY: host-visible memory, not mapped yet; unmapped before it is freed.
        mapped =
            unsafe { device.map_memory(memory, 0, vk::WHOLE_SIZE, vk::MemoryMapFlags::empty()) }
                .ctx("vkMapMemory")?;
        vk_.track(Obj::Mapped(memory));
        if mapped.is_null() {
            return Err("vkMapMemory returned a null pointer".into());
        }
        let align = setup.limits.min_memory_map_alignment.max(4);
        let aligned = align.is_power_of_two() && (mapped as usize) & (align - 1) == 0;
        if !aligned {
            return Err(format!(
                "vkMapMemory returned a misaligned pointer {mapped:p}"
            ));
        }
    }
    Ok(BufferMem {
        buffer,
        memory,
        coherent: flags.contains(F::HOST_COHERENT),
        mapped,
    })
}
