//! Transfer commands on the rendered image and on buffers: vkCmdBlitImage (256→128,
//! NEAREST), vkCmdClearColorImage, vkCmdCopyImage, vkCmdClearDepthStencilImage,
//! vkCmdFillBuffer and vkCmdUpdateBuffer, each checked against the CPU's expectation.

use ash::vk;

use crate::device::Gpu;
use crate::memory::copy_image_to_buffer;
use crate::report::{Fail, Report, VkContext};
use crate::resources::{readback, Resources, FILL_BUFFER_SIZE};
use crate::scene::{unorm, CLEAR_DEPTH_IMAGE, CLEAR_IMAGE, HEIGHT, SMALL, WIDTH};
use crate::sync::{scopes, ImageBarrier, Scope};
use crate::vulkan::{Obj, Vulkan};

/// The region of the rendered image copied by vkCmdCopyImage, and where it lands.
pub(crate) const COPY_SRC: (i32, i32) = (96, 96);
pub(crate) const COPY_DST: (i32, i32) = (16, 40);
pub(crate) const COPY_SIZE: u32 = 64;
/// vkCmdFillBuffer's word and vkCmdUpdateBuffer's range.
const FILL_WORD: u32 = 0xA5A5_5A5A;
const UPDATE_OFFSET: u64 = 64;
const UPDATE_LEN: usize = 128;

fn update_data() -> Vec<u8> {
    (0..UPDATE_LEN).map(|i| (i * 7 + 3) as u8).collect()
}

fn layers(aspect: vk::ImageAspectFlags) -> vk::ImageSubresourceLayers {
    vk::ImageSubresourceLayers::default()
        .aspect_mask(aspect)
        .layer_count(1)
}

fn whole(aspect: vk::ImageAspectFlags) -> vk::ImageSubresourceRange {
    vk::ImageSubresourceRange::default()
        .aspect_mask(aspect)
        .level_count(1)
        .layer_count(1)
}

fn transition(
    image: vk::Image,
    aspect: vk::ImageAspectFlags,
    (old, new): (vk::ImageLayout, vk::ImageLayout),
    (src, dst): (Scope, Scope),
) -> ImageBarrier {
    ImageBarrier {
        image,
        aspect,
        old,
        new,
        src,
        dst,
    }
}

/// Records, submits and checks the transfer step. The rendered image 1 and the depth
/// image are in TRANSFER_SRC_OPTIMAL (left there by the passes).
pub(crate) fn run(
    vk_: &mut Vulkan,
    gpu: &Gpu,
    res: &Resources,
    (reset_cb, cb): (vk::CommandBuffer, vk::CommandBuffer),
    report: &mut Report,
) -> Result<(), Fail> {
    use vk::ImageLayout as L;
    let device = &gpu.device;
    let color = vk::ImageAspectFlags::COLOR;
    let depth = res.depth.aspect;
    let after_copy = Scope::new(vk::PipelineStageFlags2::TRANSFER, vk::AccessFlags2::empty());
    // SAFETY: valid device; tracked for destruction.
    let event = unsafe { device.create_event(&vk::EventCreateInfo::default(), None) }
        .ctx("vkCreateEvent")?;
    vk_.track(Obj::Event(event));
    // SAFETY: as above.
    let timestamps = unsafe {
        device.create_query_pool(
            &vk::QueryPoolCreateInfo::default()
                .query_type(vk::QueryType::TIMESTAMP)
                .query_count(2),
            None,
        )
    }
    .ctx("vkCreateQueryPool (timestamps)")?;
    vk_.track(Obj::QueryPool(timestamps));
    if gpu.features.host_query_reset {
        // SAFETY: hostQueryReset is enabled; the pool is not in use.
        unsafe { device.reset_query_pool(timestamps, 0, 2) };
    }
    // A reset of the new (unsignaled) event by a command buffer of its own (a set must
    // not follow a reset without an execution barrier).
    gpu.begin(reset_cb)?;
    gpu.sync.reset_event(device, reset_cb, event);
    gpu.end_submit_wait(reset_cb, "event reset")?;
    gpu.begin(cb)?;
    if !gpu.features.host_query_reset {
        // SAFETY: `cb` is recording outside a render pass.
        unsafe { device.cmd_reset_query_pool(cb, timestamps, 0, 2) };
    }
    gpu.sync.write_timestamp(device, cb, timestamps, 0);
    gpu.sync.barrier(
        device,
        cb,
        &[],
        &[
            transition(
                res.blit.image,
                color,
                (L::UNDEFINED, L::TRANSFER_DST_OPTIMAL),
                (scopes::NONE, scopes::TRANSFER_WRITE),
            ),
            transition(
                res.copy.image,
                color,
                (L::UNDEFINED, L::TRANSFER_DST_OPTIMAL),
                (scopes::NONE, scopes::TRANSFER_WRITE),
            ),
            transition(
                res.depth.image,
                depth,
                (L::TRANSFER_SRC_OPTIMAL, L::TRANSFER_DST_OPTIMAL),
                (after_copy, scopes::TRANSFER_WRITE),
            ),
        ],
    );
    let blit = vk::ImageBlit::default()
        .src_subresource(layers(color))
        .src_offsets([
            vk::Offset3D::default(),
            vk::Offset3D {
                x: WIDTH as i32,
                y: HEIGHT as i32,
                z: 1,
            },
        ])
        .dst_subresource(layers(color))
        .dst_offsets([
            vk::Offset3D::default(),
            vk::Offset3D {
                x: SMALL as i32,
                y: SMALL as i32,
                z: 1,
            },
        ]);
    let clear_color = vk::ClearColorValue {
        float32: unorm(CLEAR_IMAGE),
    };
    let clear_depth = vk::ClearDepthStencilValue {
        depth: CLEAR_DEPTH_IMAGE,
        stencil: 0,
    };
    // SAFETY: `cb` is recording outside a render pass; every image is in the layout
    // named and has the usage the command needs (BLIT_SRC/BLIT_DST format features
    // were checked at device creation); the regions lie inside the images.
    unsafe {
        device.cmd_blit_image(
            cb,
            res.color_1.image,
            L::TRANSFER_SRC_OPTIMAL,
            res.blit.image,
            L::TRANSFER_DST_OPTIMAL,
            &[blit],
            vk::Filter::NEAREST,
        );
        device.cmd_clear_color_image(
            cb,
            res.copy.image,
            L::TRANSFER_DST_OPTIMAL,
            &clear_color,
            &[whole(color)],
        );
        device.cmd_clear_depth_stencil_image(
            cb,
            res.depth.image,
            L::TRANSFER_DST_OPTIMAL,
            &clear_depth,
            &[whole(depth)],
        );
        device.cmd_fill_buffer(cb, res.fill.buffer, 0, vk::WHOLE_SIZE, FILL_WORD);
    }
    // The copy and the update overwrite what the clear and the fill wrote: a split
    // barrier (vkCmdSetEvent / vkCmdWaitEvents, or their synchronization2 versions).
    gpu.sync.set_and_wait_event(
        device,
        cb,
        event,
        &[(scopes::TRANSFER_WRITE, scopes::TRANSFER_WRITE)],
        &[transition(
            res.copy.image,
            color,
            (L::TRANSFER_DST_OPTIMAL, L::TRANSFER_DST_OPTIMAL),
            (scopes::TRANSFER_WRITE, scopes::TRANSFER_WRITE),
        )],
    );
    let copy = vk::ImageCopy::default()
        .src_subresource(layers(color))
        .src_offset(vk::Offset3D {
            x: COPY_SRC.0,
            y: COPY_SRC.1,
            z: 0,
        })
        .dst_subresource(layers(color))
        .dst_offset(vk::Offset3D {
            x: COPY_DST.0,
            y: COPY_DST.1,
            z: 0,
        })
        .extent(vk::Extent3D {
            width: COPY_SIZE,
            height: COPY_SIZE,
            depth: 1,
        });
    // SAFETY: as above; the update is 128 bytes (a multiple of 4, at most 65536) at a
    // 4-byte-aligned offset inside the buffer.
    unsafe {
        device.cmd_copy_image(
            cb,
            res.color_1.image,
            L::TRANSFER_SRC_OPTIMAL,
            res.copy.image,
            L::TRANSFER_DST_OPTIMAL,
            &[copy],
        );
        device.cmd_update_buffer(cb, res.fill.buffer, UPDATE_OFFSET, &update_data());
    }
    let to_src = (L::TRANSFER_DST_OPTIMAL, L::TRANSFER_SRC_OPTIMAL);
    let write_read = (scopes::TRANSFER_WRITE, scopes::TRANSFER_READ);
    gpu.sync.barrier(
        device,
        cb,
        &[],
        &[
            transition(res.blit.image, color, to_src, write_read),
            transition(res.copy.image, color, to_src, write_read),
            transition(res.depth.image, depth, to_src, write_read),
        ],
    );
    let rb = res.readback.buffer;
    copy_image_to_buffer(gpu, cb, &res.blit, rb, readback::BLIT);
    copy_image_to_buffer(gpu, cb, &res.copy, rb, readback::COPY);
    copy_image_to_buffer(gpu, cb, &res.depth, rb, readback::DEPTH_CLEARED);
    gpu.sync.write_timestamp(device, cb, timestamps, 1);
    gpu.sync.barrier(
        device,
        cb,
        &[(scopes::TRANSFER_WRITE, scopes::HOST_READ)],
        &[],
    );
    gpu.end_submit_wait(cb, "transfers")?;
    report.check(
        true,
        format!(
            "transfers submitted: vkCmdBlitImage, vkCmdClearColorImage, \
             vkCmdClearDepthStencilImage, vkCmdCopyImage, vkCmdFillBuffer, vkCmdUpdateBuffer, \
             vkCmdCopyImageToBuffer; {}",
            if gpu.sync.is_sync2() {
                "vkCmdResetEvent2, vkCmdSetEvent2, vkCmdWaitEvents2, vkCmdWriteTimestamp2"
            } else {
                "vkCmdResetEvent, vkCmdSetEvent, vkCmdWaitEvents, vkCmdWriteTimestamp"
            }
        ),
    );
    // SAFETY: the event's last command ran (the fence was waited for).
    let status = unsafe { device.get_event_status(event) };
    report.check(
        status == Ok(true),
        format!("event set by the command buffer: vkGetEventStatus {status:?}"),
    );
    let mut stamps = [0u64; 2];
    // SAFETY: both queries were written and waited for; 64-bit results.
    let got = unsafe {
        device.get_query_pool_results(
            timestamps,
            0,
            &mut stamps,
            vk::QueryResultFlags::TYPE_64 | vk::QueryResultFlags::WAIT,
        )
    };
    report.check(
        got.is_ok() && (gpu.timestamp_bits == 0 || stamps[1] >= stamps[0]),
        format!(
            "timestamps around the transfers ({} reset): {got:?}, {} ticks apart",
            if gpu.features.host_query_reset {
                "vkResetQueryPool"
            } else {
                "vkCmdResetQueryPool"
            },
            stamps[1].wrapping_sub(stamps[0])
        ),
    );
    check_blit(res, report)?;
    check_copy(res, report)?;
    check_depth_clear(gpu, res, report)?;
    check_fill(res, report)
}

fn rgba(bytes: &[u8], width: u32, x: u32, y: u32) -> [u8; 4] {
    let i = ((y * width + x) * 4) as usize;
    match bytes.get(i..i + 4) {
        Some(p) => [p[0], p[1], p[2], p[3]],
        None => [0; 4],
    }
}

/// Every destination pixel of a 2:1 NEAREST blit is one pixel of its 2×2 source block,
/// the same one (offset) for the whole image.
fn check_blit(res: &Resources, report: &mut Report) -> Result<(), Fail> {
    let src = res
        .readback
        .bytes(readback::COLOR_1 as usize, (WIDTH * HEIGHT * 4) as usize)?;
    let dst = res
        .readback
        .bytes(readback::BLIT as usize, (SMALL * SMALL * 4) as usize)?;
    // Offsets within the block that agree with every pixel so far.
    let mut offsets = vec![(0, 0), (1, 0), (0, 1), (1, 1)];
    let mut uniform_blocks = 0;
    let mut bad = Vec::new();
    for y in 0..SMALL {
        for x in 0..SMALL {
            let got = rgba(dst, SMALL, x, y);
            let source = |(dx, dy): (u32, u32)| rgba(src, WIDTH, 2 * x + dx, 2 * y + dy);
            if [(0, 0), (1, 0), (0, 1)]
                .iter()
                .all(|&o| source(o) == source((1, 1)))
            {
                uniform_blocks += 1;
            }
            offsets.retain(|&o| source(o) == got);
            if offsets.is_empty() && bad.is_empty() {
                bad.push(format!("({x},{y}) = {got:?}"));
            }
        }
    }
    report.check(
        !offsets.is_empty(),
        format!(
            "vkCmdBlitImage 256x256 -> 128x128 NEAREST: every pixel is source pixel \
             (2x+dx, 2y+dy) with (dx, dy) in {offsets:?} ({uniform_blocks} uniform blocks){}",
            bad.first()
                .map(|b| format!("; first mismatch {b}"))
                .unwrap_or_default()
        ),
    );
    Ok(())
}

/// The cleared image shows the clear color, except the copied 64×64 region, which is
/// byte for byte the rendered image's.
fn check_copy(res: &Resources, report: &mut Report) -> Result<(), Fail> {
    let src = res
        .readback
        .bytes(readback::COLOR_1 as usize, (WIDTH * HEIGHT * 4) as usize)?;
    let dst = res
        .readback
        .bytes(readback::COPY as usize, (SMALL * SMALL * 4) as usize)?;
    let (mut copied, mut cleared, mut bad) = (0, 0, Vec::new());
    for y in 0..SMALL as i32 {
        for x in 0..SMALL as i32 {
            let got = rgba(dst, SMALL, x as u32, y as u32);
            let (rx, ry) = (x - COPY_DST.0, y - COPY_DST.1);
            let inside = (0..COPY_SIZE as i32).contains(&rx) && (0..COPY_SIZE as i32).contains(&ry);
            let want = if inside {
                copied += 1;
                rgba(
                    src,
                    WIDTH,
                    (COPY_SRC.0 + rx) as u32,
                    (COPY_SRC.1 + ry) as u32,
                )
            } else {
                cleared += 1;
                CLEAR_IMAGE
            };
            if got != want && bad.len() < 4 {
                bad.push(format!("({x},{y}) = {got:?}, want {want:?}"));
            }
        }
    }
    report.check(
        bad.is_empty(),
        format!(
            "vkCmdClearColorImage then vkCmdCopyImage: {copied} copied pixels equal the \
             rendered ones, {cleared} show the clear color {CLEAR_IMAGE:?}{}",
            if bad.is_empty() {
                String::new()
            } else {
                format!("; mismatches {}", bad.join(", "))
            }
        ),
    );
    Ok(())
}

/// Every depth texel reads back as the cleared value (in the format's encoding).
fn check_depth_clear(gpu: &Gpu, res: &Resources, report: &mut Report) -> Result<(), Fail> {
    let (texel_size, want): (usize, u32) = match gpu.depth_format {
        vk::Format::D32_SFLOAT => (4, CLEAR_DEPTH_IMAGE.to_bits()),
        vk::Format::X8_D24_UNORM_PACK32 => (4, (CLEAR_DEPTH_IMAGE * 16_777_215.0).round() as u32),
        vk::Format::D16_UNORM => (2, (CLEAR_DEPTH_IMAGE * 65_535.0).round() as u32),
        other => return Err(format!("unexpected depth format {other:?}")),
    };
    let bytes = res.readback.bytes(
        readback::DEPTH_CLEARED as usize,
        (WIDTH * HEIGHT) as usize * texel_size,
    )?;
    let bad = bytes
        .chunks_exact(texel_size)
        .filter(|t| {
            let mut w = [0u8; 4];
            w[..texel_size].copy_from_slice(t);
            let v = u32::from_le_bytes(w);
            let v = if texel_size == 4 && gpu.depth_format != vk::Format::D32_SFLOAT {
                v & 0x00ff_ffff
            } else {
                v
            };
            v != want
        })
        .count();
    report.check(
        bad == 0,
        format!(
            "vkCmdClearDepthStencilImage to {CLEAR_DEPTH_IMAGE}: {bad} of {} depth texels differ",
            WIDTH * HEIGHT
        ),
    );
    Ok(())
}

/// vkCmdFillBuffer wrote its word everywhere but where vkCmdUpdateBuffer wrote after it.
fn check_fill(res: &Resources, report: &mut Report) -> Result<(), Fail> {
    let bytes = res.fill.bytes(0, FILL_BUFFER_SIZE as usize)?;
    let update = update_data();
    let start = UPDATE_OFFSET as usize;
    let fill = FILL_WORD.to_le_bytes();
    let bad = bytes
        .iter()
        .enumerate()
        .filter(|&(i, &b)| {
            let want = if (start..start + UPDATE_LEN).contains(&i) {
                update[i - start]
            } else {
                fill[i % 4]
            };
            b != want
        })
        .count();
    report.check(
        bad == 0,
        format!(
            "vkCmdFillBuffer (0x{FILL_WORD:08x}) then vkCmdUpdateBuffer ({UPDATE_LEN} bytes at \
             {UPDATE_OFFSET}): {bad} of {FILL_BUFFER_SIZE} bytes differ"
        ),
    );
    Ok(())
}
