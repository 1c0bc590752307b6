//! The buffers, images, sampler and descriptor set of the run, and the upload
//! submission: the uniform buffer written by vkCmdUpdateBuffer, the texture copied from
//! a staging buffer (vkCmdCopyBufferToImage between two layout transitions), the query
//! result buffer filled with a sentinel by vkCmdFillBuffer.

use ash::vk;

use crate::device::Gpu;
use crate::ignored::ignored;
use crate::memory::{create_buffer, create_image, BufferMem, ImageMem};
use crate::report::{Fail, Report, VkContext};
use crate::scene::{
    texture_bytes, uniform_bytes, vertices, Vertex, HEIGHT, INDICES, SMALL, TEXTURE_SIZE, WIDTH,
};
use crate::sync::{scopes, ImageBarrier};
use crate::vulkan::{Obj, Vulkan};

/// Byte offsets of the read-back buffer's regions.
pub(crate) mod readback {
    use crate::scene::{HEIGHT, SMALL, WIDTH};
    const FULL: u64 = (WIDTH * HEIGHT * 4) as u64;
    const HALF: u64 = (SMALL * SMALL * 4) as u64;
    pub(crate) const COLOR_1: u64 = 0;
    pub(crate) const DEPTH_1: u64 = COLOR_1 + FULL;
    pub(crate) const COLOR_2: u64 = DEPTH_1 + FULL;
    pub(crate) const DEPTH_2: u64 = COLOR_2 + FULL;
    pub(crate) const BLIT: u64 = DEPTH_2 + FULL;
    pub(crate) const COPY: u64 = BLIT + HALF;
    pub(crate) const DEPTH_CLEARED: u64 = COPY + HALF;
    pub(crate) const COLOR_3: u64 = DEPTH_CLEARED + FULL;
    pub(crate) const DEPTH_3: u64 = COLOR_3 + FULL;
    pub(crate) const COLOR_3_RESOLVED: u64 = DEPTH_3 + FULL;
    pub(crate) const COLOR_3_RESOLVED_2: u64 = COLOR_3_RESOLVED + FULL;
    pub(crate) const BLIT_2: u64 = COLOR_3_RESOLVED_2 + FULL;
    pub(crate) const COPY_2: u64 = BLIT_2 + HALF;
    pub(crate) const TEXTURE_2: u64 = COPY_2 + HALF;
    pub(crate) const SIZE: u64 = TEXTURE_2 + 4096;
}

/// Size of the buffer written by vkCmdFillBuffer and vkCmdUpdateBuffer (and checked).
pub(crate) const FILL_BUFFER_SIZE: u64 = 1024;
/// Sentinel the query result buffer is filled with before the query results land.
pub(crate) const QUERY_SENTINEL: u32 = 0xDEAD_BEEF;

pub(crate) struct Resources {
    pub(crate) vertex: BufferMem,
    pub(crate) index: BufferMem,
    pub(crate) uniform: BufferMem,
    pub(crate) indirect: BufferMem,
    pub(crate) readback: BufferMem,
    /// vkCmdCopyQueryPoolResults lands here (u64 result + u64 availability).
    pub(crate) query_results: BufferMem,
    /// Written by vkCmdFillBuffer and vkCmdUpdateBuffer in the transfer step.
    pub(crate) fill: BufferMem,
    pub(crate) color_1: ImageMem,
    pub(crate) color_2: ImageMem,
    pub(crate) depth: ImageMem,
    pub(crate) texture: ImageMem,
    pub(crate) blit: ImageMem,
    pub(crate) copy: ImageMem,
    pub(crate) sampler: vk::Sampler,
    pub(crate) descriptor_pool: vk::DescriptorPool,
    pub(crate) set: vk::DescriptorSet,
}

fn as_bytes<T: Copy>(items: &[T]) -> Vec<u8> {
    let len = std::mem::size_of_val(items);
    // SAFETY: `items` is a slice of plain `repr(C)` data (f32 arrays, u16) without
    // padding, `len` bytes long, read as bytes while borrowed.
    unsafe { std::slice::from_raw_parts(items.as_ptr().cast::<u8>(), len) }.to_vec()
}

/// The NEAREST, clamp-to-edge sampler (immutable in the set layouts).
pub(crate) fn create_sampler(vk_: &mut Vulkan, gpu: &Gpu) -> Result<vk::Sampler, Fail> {
    let device = &gpu.device;
    // SAFETY: valid device, create info living until the call returns; tracked.
    let sampler = unsafe {
        device.create_sampler(
            &vk::SamplerCreateInfo::default()
                .mag_filter(vk::Filter::NEAREST)
                .min_filter(vk::Filter::NEAREST)
                .mipmap_mode(vk::SamplerMipmapMode::NEAREST)
                .address_mode_u(vk::SamplerAddressMode::CLAMP_TO_EDGE)
                .address_mode_v(vk::SamplerAddressMode::CLAMP_TO_EDGE)
                .address_mode_w(vk::SamplerAddressMode::CLAMP_TO_EDGE)
                .max_lod(0.0),
            None,
        )
    }
    .ctx("vkCreateSampler")?;
    vk_.track(Obj::Sampler(sampler));
    Ok(sampler)
}

pub(crate) fn create_resources(
    vk_: &mut Vulkan,
    gpu: &Gpu,
    set_layout: vk::DescriptorSetLayout,
    sampler: vk::Sampler,
    report: &mut Report,
) -> Result<Resources, Fail> {
    use vk::BufferUsageFlags as B;
    use vk::ImageUsageFlags as I;
    let verts: [Vertex; 9] = vertices();
    let vertex_bytes = as_bytes(&verts);
    let vertex = create_buffer(vk_, gpu, vertex_bytes.len() as u64, B::VERTEX_BUFFER, true)?;
    vertex.write(0, &vertex_bytes)?;
    let index_bytes = as_bytes(&INDICES);
    let index = create_buffer(vk_, gpu, index_bytes.len() as u64, B::INDEX_BUFFER, true)?;
    index.write(0, &index_bytes)?;
    let uniform = create_buffer(
        vk_,
        gpu,
        uniform_bytes().len() as u64,
        B::UNIFORM_BUFFER | B::TRANSFER_DST,
        false,
    )?;
    let indirect = create_buffer(vk_, gpu, 512, B::INDIRECT_BUFFER, true)?;
    let readback = create_buffer(vk_, gpu, readback::SIZE, B::TRANSFER_DST, true)?;
    let query_results = create_buffer(vk_, gpu, 16, B::TRANSFER_DST, true)?;
    let fill = create_buffer(
        vk_,
        gpu,
        FILL_BUFFER_SIZE,
        B::TRANSFER_DST | B::TRANSFER_SRC,
        true,
    )?;

    let size = (WIDTH, HEIGHT);
    let color = vk::Format::R8G8B8A8_UNORM;
    let color_1 = create_image(
        vk_,
        gpu,
        size,
        color,
        I::COLOR_ATTACHMENT | I::TRANSFER_SRC,
        true,
    )?;
    let color_2 = create_image(
        vk_,
        gpu,
        size,
        color,
        I::COLOR_ATTACHMENT | I::TRANSFER_SRC,
        true,
    )?;
    let depth = create_image(
        vk_,
        gpu,
        size,
        gpu.depth_format,
        I::DEPTH_STENCIL_ATTACHMENT | I::TRANSFER_SRC | I::TRANSFER_DST,
        true,
    )?;
    let texture = create_image(
        vk_,
        gpu,
        (TEXTURE_SIZE, TEXTURE_SIZE),
        color,
        I::SAMPLED | I::TRANSFER_DST,
        true,
    )?;
    let small = (SMALL, SMALL);
    let blit = create_image(
        vk_,
        gpu,
        small,
        color,
        I::TRANSFER_DST | I::TRANSFER_SRC,
        false,
    )?;
    let copy = create_image(
        vk_,
        gpu,
        small,
        color,
        I::TRANSFER_DST | I::TRANSFER_SRC,
        false,
    )?;

    let device = &gpu.device;

    let pool_sizes = [
        vk::DescriptorPoolSize::default()
            .ty(vk::DescriptorType::UNIFORM_BUFFER)
            .descriptor_count(1),
        vk::DescriptorPoolSize::default()
            .ty(vk::DescriptorType::COMBINED_IMAGE_SAMPLER)
            .descriptor_count(1),
    ];
    // SAFETY: as above.
    let pool = unsafe {
        device.create_descriptor_pool(
            &vk::DescriptorPoolCreateInfo::default()
                .max_sets(1)
                .pool_sizes(&pool_sizes),
            None,
        )
    }
    .ctx("vkCreateDescriptorPool")?;
    vk_.track(Obj::DescriptorPool(pool));
    let layouts = [set_layout];
    // SAFETY: the pool has room for one set of this layout; freed with the pool.
    let sets = unsafe {
        device.allocate_descriptor_sets(
            &vk::DescriptorSetAllocateInfo::default()
                .descriptor_pool(pool)
                .set_layouts(&layouts),
        )
    }
    .ctx("vkAllocateDescriptorSets")?;
    let Some(&set) = sets.first() else {
        return Err("vkAllocateDescriptorSets returned no set".into());
    };
    let buffer_info = [vk::DescriptorBufferInfo::default()
        .buffer(uniform.buffer)
        .range(vk::WHOLE_SIZE)];
    // The binding's sampler is immutable: the sampler member is ignored (see `ignored`).
    let image_info = [vk::DescriptorImageInfo::default()
        .sampler(ignored())
        .image_view(texture.view)
        .image_layout(vk::ImageLayout::SHADER_READ_ONLY_OPTIMAL)];
    // Binding 0 by vkUpdateDescriptorSets, binding 1 by a descriptor update template:
    // the passes sample the texture through what the template wrote.
    let writes = [vk::WriteDescriptorSet::default()
        .dst_set(set)
        .dst_binding(0)
        .descriptor_type(vk::DescriptorType::UNIFORM_BUFFER)
        .buffer_info(&buffer_info)];
    // SAFETY: the set and the buffer are valid and live.
    unsafe { device.update_descriptor_sets(&writes, &[]) };
    let entries = [vk::DescriptorUpdateTemplateEntry {
        dst_binding: 1,
        dst_array_element: 0,
        descriptor_count: 1,
        descriptor_type: vk::DescriptorType::COMBINED_IMAGE_SAMPLER,
        offset: 0,
        stride: std::mem::size_of::<vk::DescriptorImageInfo>(),
    }];
    // SAFETY: valid device and set layout; tracked for destruction.
    let template = unsafe {
        device.create_descriptor_update_template(
            &vk::DescriptorUpdateTemplateCreateInfo::default()
                .descriptor_update_entries(&entries)
                .template_type(vk::DescriptorUpdateTemplateType::DESCRIPTOR_SET)
                .descriptor_set_layout(set_layout),
            None,
        )
    }
    .ctx("vkCreateDescriptorUpdateTemplate")?;
    vk_.track(Obj::UpdateTemplate(template));
    // SAFETY: the template's one entry reads one VkDescriptorImageInfo at offset 0 of
    // `image_info`, which names a live view and sampler.
    unsafe {
        device.update_descriptor_set_with_template(set, template, image_info.as_ptr().cast())
    };
    report.check(
        true,
        format!(
            "buffers, images ({}x{} color x2, {:?} depth, {}x{} texture, {}x{} blit and copy \
             targets), image views, sampler, descriptor set (vkUpdateDescriptorSets and a descriptor update \
             template)",
            WIDTH, HEIGHT, gpu.depth_format, TEXTURE_SIZE, TEXTURE_SIZE, SMALL, SMALL
        ),
    );
    Ok(Resources {
        vertex,
        index,
        uniform,
        indirect,
        readback,
        query_results,
        fill,
        color_1,
        color_2,
        depth,
        texture,
        blit,
        copy,
        sampler,
        descriptor_pool: pool,
        set,
    })
}

/// Records and submits the uploads: uniform buffer (vkCmdUpdateBuffer), texture (staging
/// buffer, vkCmdCopyBufferToImage), query result sentinel (vkCmdFillBuffer).
pub(crate) fn upload(
    vk_: &mut Vulkan,
    gpu: &Gpu,
    res: &Resources,
    cb: vk::CommandBuffer,
    report: &mut Report,
) -> Result<(), Fail> {
    let pixels = texture_bytes();
    let staging = create_buffer(
        vk_,
        gpu,
        pixels.len() as u64,
        vk::BufferUsageFlags::TRANSFER_SRC,
        true,
    )?;
    staging.write(0, &pixels)?;
    let device = &gpu.device;
    gpu.begin(cb)?;
    let texture = res.texture.image;
    gpu.sync.barrier(
        device,
        cb,
        &[],
        &[ImageBarrier {
            image: texture,
            aspect: vk::ImageAspectFlags::COLOR,
            old: vk::ImageLayout::UNDEFINED,
            new: vk::ImageLayout::TRANSFER_DST_OPTIMAL,
            src: scopes::NONE,
            dst: scopes::TRANSFER_WRITE,
        }],
    );
    let region = vk::BufferImageCopy::default()
        .image_subresource(
            vk::ImageSubresourceLayers::default()
                .aspect_mask(vk::ImageAspectFlags::COLOR)
                .layer_count(1),
        )
        .image_extent(vk::Extent3D {
            width: TEXTURE_SIZE,
            height: TEXTURE_SIZE,
            depth: 1,
        });
    let uniform = uniform_bytes();
    // SAFETY: `cb` is recording; the staging buffer holds the whole texture, the image is
    // in TRANSFER_DST_OPTIMAL; the uniform buffer has TRANSFER_DST usage and the update
    // is a multiple of 4 bytes at offset 0; the query buffer likewise.
    unsafe {
        device.cmd_copy_buffer_to_image(
            cb,
            staging.buffer,
            texture,
            vk::ImageLayout::TRANSFER_DST_OPTIMAL,
            &[region],
        );
        device.cmd_update_buffer(cb, res.uniform.buffer, 0, &uniform);
        device.cmd_fill_buffer(
            cb,
            res.query_results.buffer,
            0,
            vk::WHOLE_SIZE,
            QUERY_SENTINEL,
        );
    }
    gpu.sync.barrier(
        device,
        cb,
        &[
            (scopes::TRANSFER_WRITE, scopes::FRAGMENT_READ),
            (scopes::TRANSFER_WRITE, scopes::TRANSFER_WRITE),
        ],
        &[ImageBarrier {
            image: texture,
            aspect: vk::ImageAspectFlags::COLOR,
            old: vk::ImageLayout::TRANSFER_DST_OPTIMAL,
            new: vk::ImageLayout::SHADER_READ_ONLY_OPTIMAL,
            src: scopes::TRANSFER_WRITE,
            dst: scopes::FRAGMENT_READ,
        }],
    );
    gpu.end_submit_wait(cb, "upload")?;
    report.check(
        true,
        format!(
            "upload submitted ({}): uniform buffer by vkCmdUpdateBuffer, {}x{} texture by \
             vkCmdCopyBufferToImage, query buffer by vkCmdFillBuffer",
            if gpu.sync.is_sync2() {
                "vkQueueSubmit2, vkCmdPipelineBarrier2"
            } else {
                "vkQueueSubmit, vkCmdPipelineBarrier"
            },
            TEXTURE_SIZE,
            TEXTURE_SIZE
        ),
    );
    Ok(())
}
