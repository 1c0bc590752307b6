//! Buffers and images with their memory: memory type choice, allocation, binding,
//! mapping, and image views.

use ash::vk;

use crate::device::Gpu;
use crate::report::{Fail, VkContext};
use crate::vulkan::{Obj, Vulkan};

fn find_memory_type(
    memory: &vk::PhysicalDeviceMemoryProperties,
    type_bits: u32,
    required: vk::MemoryPropertyFlags,
) -> Option<u32> {
    (0..memory.memory_type_count).find(|&i| {
        let flags = memory.memory_types[i as usize].property_flags;
        type_bits & (1 << i) != 0 && flags.contains(required)
    })
}

/// DEVICE_LOCAL if there is such a type, else any allowed one.
fn device_memory_type(gpu: &Gpu, type_bits: u32) -> Result<u32, Fail> {
    find_memory_type(
        &gpu.memory,
        type_bits,
        vk::MemoryPropertyFlags::DEVICE_LOCAL,
    )
    .or_else(|| find_memory_type(&gpu.memory, type_bits, vk::MemoryPropertyFlags::empty()))
    .ok_or_else(|| format!("no memory type in 0b{type_bits:b}"))
}

fn allocate(gpu: &Gpu, size: u64, type_index: u32) -> Result<vk::DeviceMemory, Fail> {
    // SAFETY: valid device; the caller tracks the allocation.
    unsafe {
        gpu.device.allocate_memory(
            &vk::MemoryAllocateInfo::default()
                .allocation_size(size)
                .memory_type_index(type_index),
            None,
        )
    }
    .ctx("vkAllocateMemory")
}

/// A buffer bound to its own memory; `mapped` is non-null for host-visible ones.
pub(crate) struct BufferMem {
    pub(crate) buffer: vk::Buffer,
    pub(crate) size: u64,
    pub(crate) mapped: *mut u8,
}

impl BufferMem {
    /// The mapped bytes `[offset, offset + len)` (host-visible, coherent buffers only).
    pub(crate) fn bytes(&self, offset: usize, len: usize) -> Result<&[u8], Fail> {
        let in_range = offset
            .checked_add(len)
            .is_some_and(|end| end as u64 <= self.size);
        if self.mapped.is_null() || !in_range {
            return Err(format!(
                "buffer range {offset}+{len} not mapped (size {})",
                self.size
            ));
        }
        // SAFETY: the whole buffer is mapped (coherent memory, mapped until the end of
        // the run) and the range is inside it; the device is not writing it (callers read
        // after waiting for the fence of the writing submission).
        Ok(unsafe { std::slice::from_raw_parts(self.mapped.add(offset), len) })
    }

    /// Copies `data` into the mapped buffer at `offset`.
    pub(crate) fn write(&self, offset: usize, data: &[u8]) -> Result<(), Fail> {
        let in_range = offset
            .checked_add(data.len())
            .is_some_and(|end| end as u64 <= self.size);
        if self.mapped.is_null() || !in_range {
            return Err(format!("buffer write {offset}+{} out of range", data.len()));
        }
        // SAFETY: as in `bytes`; no submission using the buffer is pending.
        unsafe {
            std::ptr::copy_nonoverlapping(data.as_ptr(), self.mapped.add(offset), data.len())
        };
        Ok(())
    }
}

/// Creates a buffer; `host` puts it in HOST_VISIBLE | HOST_COHERENT memory, mapped.
pub(crate) fn create_buffer(
    vk_: &mut Vulkan,
    gpu: &Gpu,
    size: u64,
    usage: vk::BufferUsageFlags,
    host: bool,
) -> Result<BufferMem, Fail> {
    let device = &gpu.device;
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
    let index = if host {
        find_memory_type(
            &gpu.memory,
            req.memory_type_bits,
            vk::MemoryPropertyFlags::HOST_VISIBLE | vk::MemoryPropertyFlags::HOST_COHERENT,
        )
        .ok_or_else(|| format!("no host-visible coherent memory for usage {usage:?}"))?
    } else {
        device_memory_type(gpu, req.memory_type_bits)?
    };
    let memory = allocate(gpu, req.size, index)?;
    vk_.track_memory_under_last(memory);
    // SAFETY: unbound buffer, memory of a type allowed by its requirements, offset 0.
    unsafe { device.bind_buffer_memory(buffer, memory, 0) }.ctx("vkBindBufferMemory")?;
    let mut mapped = std::ptr::null_mut();
    if host {
        // SAFETY: host-visible memory, not mapped yet; unmapped before it is freed (the
        // Mapped entry is newer than the Memory entry).
        let ptr =
            unsafe { device.map_memory(memory, 0, vk::WHOLE_SIZE, vk::MemoryMapFlags::empty()) }
                .ctx("vkMapMemory")?;
        vk_.track(Obj::Mapped(memory));
        if ptr.is_null() {
            return Err("vkMapMemory returned a null pointer".into());
        }
        mapped = ptr.cast::<u8>();
    }
    Ok(BufferMem {
        buffer,
        size,
        mapped,
    })
}

/// A 2D image (one mip level, one layer, optimal tiling) bound to device memory, and a
/// view of it when asked for.
pub(crate) struct ImageMem {
    pub(crate) image: vk::Image,
    pub(crate) view: vk::ImageView,
    pub(crate) aspect: vk::ImageAspectFlags,
    pub(crate) width: u32,
    pub(crate) height: u32,
}

pub(crate) fn create_image(
    vk_: &mut Vulkan,
    gpu: &Gpu,
    size: (u32, u32),
    format: vk::Format,
    usage: vk::ImageUsageFlags,
    with_view: bool,
) -> Result<ImageMem, Fail> {
    let one = vk::SampleCountFlags::TYPE_1;
    create_image_samples(vk_, gpu, size, format, usage, with_view, one)
}

/// [`create_image`] with `samples` samples per pixel.
pub(crate) fn create_image_samples(
    vk_: &mut Vulkan,
    gpu: &Gpu,
    (width, height): (u32, u32),
    format: vk::Format,
    usage: vk::ImageUsageFlags,
    with_view: bool,
    samples: vk::SampleCountFlags,
) -> Result<ImageMem, Fail> {
    let device = &gpu.device;
    let aspect = if usage.contains(vk::ImageUsageFlags::DEPTH_STENCIL_ATTACHMENT) {
        vk::ImageAspectFlags::DEPTH
    } else {
        vk::ImageAspectFlags::COLOR
    };
    // SAFETY: valid device; supported format and usage (checked at device creation);
    // the image is tracked for destruction.
    let image = unsafe {
        device.create_image(
            &vk::ImageCreateInfo::default()
                .image_type(vk::ImageType::TYPE_2D)
                .format(format)
                .extent(vk::Extent3D {
                    width,
                    height,
                    depth: 1,
                })
                .mip_levels(1)
                .array_layers(1)
                .samples(samples)
                .tiling(vk::ImageTiling::OPTIMAL)
                .usage(usage)
                .sharing_mode(vk::SharingMode::EXCLUSIVE)
                .initial_layout(vk::ImageLayout::UNDEFINED),
            None,
        )
    }
    .ctx("vkCreateImage")?;
    vk_.track(Obj::Image(image));
    // SAFETY: valid image.
    let req = unsafe { device.get_image_memory_requirements(image) };
    let memory = allocate(
        gpu,
        req.size,
        device_memory_type(gpu, req.memory_type_bits)?,
    )?;
    vk_.track_memory_under_last(memory);
    // SAFETY: unbound image, memory of an allowed type and size, offset 0.
    unsafe { device.bind_image_memory(image, memory, 0) }.ctx("vkBindImageMemory")?;
    let mut view = vk::ImageView::null();
    if with_view {
        // SAFETY: a view of the whole bound image; tracked (destroyed before the image).
        view = unsafe {
            device.create_image_view(
                &vk::ImageViewCreateInfo::default()
                    .image(image)
                    .view_type(vk::ImageViewType::TYPE_2D)
                    .format(format)
                    .subresource_range(
                        vk::ImageSubresourceRange::default()
                            .aspect_mask(aspect)
                            .level_count(1)
                            .layer_count(1),
                    ),
                None,
            )
        }
        .ctx("vkCreateImageView")?;
        vk_.track(Obj::ImageView(view));
    }
    Ok(ImageMem {
        image,
        view,
        aspect,
        width,
        height,
    })
}

/// Records a copy of the whole `image` (in TRANSFER_SRC_OPTIMAL) into `buffer` at
/// `offset`, tightly packed.
pub(crate) fn copy_image_to_buffer(
    gpu: &Gpu,
    cb: vk::CommandBuffer,
    image: &ImageMem,
    buffer: vk::Buffer,
    offset: u64,
) {
    let region = vk::BufferImageCopy::default()
        .buffer_offset(offset)
        .image_subresource(
            vk::ImageSubresourceLayers::default()
                .aspect_mask(image.aspect)
                .layer_count(1),
        )
        .image_extent(vk::Extent3D {
            width: image.width,
            height: image.height,
            depth: 1,
        });
    // SAFETY: `cb` is recording; the image is in TRANSFER_SRC_OPTIMAL with TRANSFER_SRC
    // usage, the buffer has TRANSFER_DST usage and room for the copy (callers size it).
    unsafe {
        gpu.device.cmd_copy_image_to_buffer(
            cb,
            image.image,
            vk::ImageLayout::TRANSFER_SRC_OPTIMAL,
            buffer,
            &[region],
        )
    };
}
