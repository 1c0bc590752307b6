//! The copy commands 2 (core 1.3 or VK_KHR_copy_commands2): vkCmdCopyBufferToImage2,
//! vkCmdBlitImage2, vkCmdCopyImage2, vkCmdCopyBuffer2 and vkCmdCopyImageToBuffer2 redo
//! what the Vulkan 1.0 commands did, into images and buffers of their own, and the
//! results must be the same bytes (vkCmdResolveImage2 is in pass 3).

use ash::vk;

use crate::device::Gpu;
use crate::memory::{create_buffer, create_image, ImageMem};
use crate::report::{Fail, Report};
use crate::resources::{readback, Resources, FILL_BUFFER_SIZE};
use crate::scene::{texture_bytes, unorm, CLEAR_IMAGE, HEIGHT, SMALL, TEXTURE_SIZE, WIDTH};
use crate::sync::{scopes, ImageBarrier};
use crate::transfer::{COPY_DST, COPY_SIZE, COPY_SRC};
use crate::vulkan::Vulkan;

/// Records one of the copy commands 2 through core 1.3 or the KHR extension.
pub(crate) enum Copy2<'a> {
    Buffer(&'a vk::CopyBufferInfo2<'a>),
    Image(&'a vk::CopyImageInfo2<'a>),
    BufferToImage(&'a vk::CopyBufferToImageInfo2<'a>),
    ImageToBuffer(&'a vk::CopyImageToBufferInfo2<'a>),
    Blit(&'a vk::BlitImageInfo2<'a>),
    Resolve(&'a vk::ResolveImageInfo2<'a>),
}

/// Records `op` into `cb`; the device has copy commands 2 (`Features::copy2`).
pub(crate) fn record(gpu: &Gpu, cb: vk::CommandBuffer, op: Copy2<'_>) {
    let d = &gpu.device;
    // SAFETY: `cb` is recording outside a render pass; the infos name live images and
    // buffers in the layouts given with the usages the commands need (callers' duty).
    unsafe {
        match (gpu.loaded.copy2_khr.as_ref(), op) {
            (Some(k), Copy2::Buffer(i)) => k.cmd_copy_buffer2(cb, i),
            (Some(k), Copy2::Image(i)) => k.cmd_copy_image2(cb, i),
            (Some(k), Copy2::BufferToImage(i)) => k.cmd_copy_buffer_to_image2(cb, i),
            (Some(k), Copy2::ImageToBuffer(i)) => k.cmd_copy_image_to_buffer2(cb, i),
            (Some(k), Copy2::Blit(i)) => k.cmd_blit_image2(cb, i),
            (Some(k), Copy2::Resolve(i)) => k.cmd_resolve_image2(cb, i),
            (None, Copy2::Buffer(i)) => d.cmd_copy_buffer2(cb, i),
            (None, Copy2::Image(i)) => d.cmd_copy_image2(cb, i),
            (None, Copy2::BufferToImage(i)) => d.cmd_copy_buffer_to_image2(cb, i),
            (None, Copy2::ImageToBuffer(i)) => d.cmd_copy_image_to_buffer2(cb, i),
            (None, Copy2::Blit(i)) => d.cmd_blit_image2(cb, i),
            (None, Copy2::Resolve(i)) => d.cmd_resolve_image2(cb, i),
        }
    }
}

fn layers() -> vk::ImageSubresourceLayers {
    vk::ImageSubresourceLayers::default()
        .aspect_mask(vk::ImageAspectFlags::COLOR)
        .layer_count(1)
}

fn extent(w: u32, h: u32) -> vk::Extent3D {
    vk::Extent3D {
        width: w,
        height: h,
        depth: 1,
    }
}

/// vkCmdCopyImageToBuffer2 of a whole color image.
fn to_buffer(gpu: &Gpu, cb: vk::CommandBuffer, image: &ImageMem, buffer: vk::Buffer, offset: u64) {
    let regions = [vk::BufferImageCopy2::default()
        .buffer_offset(offset)
        .image_subresource(layers())
        .image_extent(extent(image.width, image.height))];
    let info = vk::CopyImageToBufferInfo2::default()
        .src_image(image.image)
        .src_image_layout(vk::ImageLayout::TRANSFER_SRC_OPTIMAL)
        .dst_buffer(buffer)
        .regions(&regions);
    record(gpu, cb, Copy2::ImageToBuffer(&info));
}

/// Runs the copy commands 2 and compares their results with the Vulkan 1.0 ones; the
/// rendered image 1 is in TRANSFER_SRC_OPTIMAL, the transfer step's results are in
/// the read-back buffer.
pub(crate) fn run(
    vk_: &mut Vulkan,
    gpu: &Gpu,
    res: &Resources,
    cb: vk::CommandBuffer,
    report: &mut Report,
) -> Result<(), Fail> {
    if !gpu.features.copy2 {
        report.info("copy commands 2 skipped: neither Vulkan 1.3 nor VK_KHR_copy_commands2");
        return Ok(());
    }
    use vk::BufferUsageFlags as B;
    use vk::ImageLayout as L;
    use vk::ImageUsageFlags as I;
    let color = vk::Format::R8G8B8A8_UNORM;
    let usage = I::TRANSFER_DST | I::TRANSFER_SRC;
    let texture = create_image(vk_, gpu, (TEXTURE_SIZE, TEXTURE_SIZE), color, usage, false)?;
    let blit = create_image(vk_, gpu, (SMALL, SMALL), color, usage, false)?;
    let copy = create_image(vk_, gpu, (SMALL, SMALL), color, usage, false)?;
    let pixels = texture_bytes();
    let staging = create_buffer(vk_, gpu, pixels.len() as u64, B::TRANSFER_SRC, true)?;
    staging.write(0, &pixels)?;
    let fill = create_buffer(vk_, gpu, FILL_BUFFER_SIZE, B::TRANSFER_DST, true)?;
    let device = &gpu.device;
    let aspect = vk::ImageAspectFlags::COLOR;
    let transition = |image: &ImageMem, old, new, src, dst| ImageBarrier {
        image: image.image,
        aspect,
        old,
        new,
        src,
        dst,
    };

    gpu.begin(cb)?;
    let to_dst = |i: &ImageMem| {
        transition(
            i,
            L::UNDEFINED,
            L::TRANSFER_DST_OPTIMAL,
            scopes::NONE,
            scopes::TRANSFER_WRITE,
        )
    };
    gpu.sync.barrier(
        device,
        cb,
        &[(scopes::TRANSFER_WRITE, scopes::TRANSFER_READ)],
        &[to_dst(&texture), to_dst(&blit), to_dst(&copy)],
    );
    let upload = [vk::BufferImageCopy2::default()
        .image_subresource(layers())
        .image_extent(extent(TEXTURE_SIZE, TEXTURE_SIZE))];
    record(
        gpu,
        cb,
        Copy2::BufferToImage(
            &vk::CopyBufferToImageInfo2::default()
                .src_buffer(staging.buffer)
                .dst_image(texture.image)
                .dst_image_layout(L::TRANSFER_DST_OPTIMAL)
                .regions(&upload),
        ),
    );
    let blits = [vk::ImageBlit2::default()
        .src_subresource(layers())
        .src_offsets([
            vk::Offset3D::default(),
            vk::Offset3D {
                x: WIDTH as i32,
                y: HEIGHT as i32,
                z: 1,
            },
        ])
        .dst_subresource(layers())
        .dst_offsets([
            vk::Offset3D::default(),
            vk::Offset3D {
                x: SMALL as i32,
                y: SMALL as i32,
                z: 1,
            },
        ])];
    record(
        gpu,
        cb,
        Copy2::Blit(
            &vk::BlitImageInfo2::default()
                .src_image(res.color_1.image)
                .src_image_layout(L::TRANSFER_SRC_OPTIMAL)
                .dst_image(blit.image)
                .dst_image_layout(L::TRANSFER_DST_OPTIMAL)
                .regions(&blits)
                .filter(vk::Filter::NEAREST),
        ),
    );
    let range = vk::ImageSubresourceRange::default()
        .aspect_mask(aspect)
        .level_count(1)
        .layer_count(1);
    // SAFETY: `cb` is recording outside a render pass; `copy` is in
    // TRANSFER_DST_OPTIMAL with TRANSFER_DST usage.
    unsafe {
        device.cmd_clear_color_image(
            cb,
            copy.image,
            L::TRANSFER_DST_OPTIMAL,
            &vk::ClearColorValue {
                float32: unorm(CLEAR_IMAGE),
            },
            &[range],
        )
    };
    let buffer_regions = [vk::BufferCopy2::default().size(FILL_BUFFER_SIZE)];
    record(
        gpu,
        cb,
        Copy2::Buffer(
            &vk::CopyBufferInfo2::default()
                .src_buffer(res.fill.buffer)
                .dst_buffer(fill.buffer)
                .regions(&buffer_regions),
        ),
    );
    gpu.sync.barrier(
        device,
        cb,
        &[],
        &[transition(
            &copy,
            L::TRANSFER_DST_OPTIMAL,
            L::TRANSFER_DST_OPTIMAL,
            scopes::TRANSFER_WRITE,
            scopes::TRANSFER_WRITE,
        )],
    );
    let copies = [vk::ImageCopy2::default()
        .src_subresource(layers())
        .src_offset(vk::Offset3D {
            x: COPY_SRC.0,
            y: COPY_SRC.1,
            z: 0,
        })
        .dst_subresource(layers())
        .dst_offset(vk::Offset3D {
            x: COPY_DST.0,
            y: COPY_DST.1,
            z: 0,
        })
        .extent(extent(COPY_SIZE, COPY_SIZE))];
    record(
        gpu,
        cb,
        Copy2::Image(
            &vk::CopyImageInfo2::default()
                .src_image(res.color_1.image)
                .src_image_layout(L::TRANSFER_SRC_OPTIMAL)
                .dst_image(copy.image)
                .dst_image_layout(L::TRANSFER_DST_OPTIMAL)
                .regions(&copies),
        ),
    );
    let to_src = |i: &ImageMem| {
        transition(
            i,
            L::TRANSFER_DST_OPTIMAL,
            L::TRANSFER_SRC_OPTIMAL,
            scopes::TRANSFER_WRITE,
            scopes::TRANSFER_READ,
        )
    };
    gpu.sync.barrier(
        device,
        cb,
        &[],
        &[to_src(&texture), to_src(&blit), to_src(&copy)],
    );
    let rb = res.readback.buffer;
    to_buffer(gpu, cb, &texture, rb, readback::TEXTURE_2);
    to_buffer(gpu, cb, &blit, rb, readback::BLIT_2);
    to_buffer(gpu, cb, &copy, rb, readback::COPY_2);
    gpu.sync.barrier(
        device,
        cb,
        &[(scopes::TRANSFER_WRITE, scopes::HOST_READ)],
        &[],
    );
    gpu.end_submit_wait(cb, "copy commands 2")?;
    report.check(
        true,
        format!(
            "copy commands 2 submitted ({}): vkCmdCopyBufferToImage2, vkCmdBlitImage2, \
             vkCmdCopyBuffer2, vkCmdCopyImage2, vkCmdCopyImageToBuffer2",
            if gpu.loaded.copy2_khr.is_some() {
                "VK_KHR_copy_commands2"
            } else {
                "core 1.3"
            }
        ),
    );

    let half = (SMALL * SMALL * 4) as usize;
    let got = res
        .readback
        .bytes(readback::TEXTURE_2 as usize, pixels.len())?;
    report.check(
        got == pixels.as_slice(),
        "vkCmdCopyBufferToImage2 then vkCmdCopyImageToBuffer2: the texture round-trips",
    );
    for (what, ours, theirs) in [
        ("vkCmdBlitImage2", readback::BLIT_2, readback::BLIT),
        ("vkCmdCopyImage2", readback::COPY_2, readback::COPY),
    ] {
        let a = res.readback.bytes(ours as usize, half)?;
        let b = res.readback.bytes(theirs as usize, half)?;
        let differ = a.iter().zip(b).filter(|(x, y)| x != y).count();
        report.check(
            differ == 0,
            format!("{what}: the same bytes as its Vulkan 1.0 version ({differ} differ)"),
        );
    }
    let a = fill.bytes(0, FILL_BUFFER_SIZE as usize)?;
    let b = res.fill.bytes(0, FILL_BUFFER_SIZE as usize)?;
    report.check(
        a == b,
        "vkCmdCopyBuffer2: the filled and updated buffer copied byte for byte",
    );
    Ok(())
}
