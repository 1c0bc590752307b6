//! The dynamic-rendering pass (vkCmdBeginRendering, core 1.3 or VK_KHR_dynamic_rendering)
//! into the second color image and the depth image, with indirect draws; checked
//! against the CPU model like the render-pass pass.

use ash::vk;

use crate::check::{check_image, read_depth};
use crate::device::{Gpu, RenderingApi};
use crate::memory::copy_image_to_buffer;
use crate::model::expected;
use crate::model::{First, Op};
use crate::pipeline::Pipelines;
use crate::record::{bind, draw_count, record_op, vk_rect, DrawMode, IndirectSlots};
use crate::report::{Fail, Report};
use crate::resources::{readback, Resources};
use crate::scene::{
    pass2_ops, pass2_probes, unorm, BACKGROUND_2, B_FIRST_INDEX, C_FIRST_VERTEX, FULL_RECT, HEIGHT,
    WIDTH,
};
use crate::sync::{scopes, ImageBarrier, Scope};

/// Records, submits and checks the dynamic-rendering pass; reports a skip when the
/// device has no dynamic rendering.
pub(crate) fn run(
    gpu: &Gpu,
    pipelines: &Pipelines,
    res: &Resources,
    cb: vk::CommandBuffer,
    report: &mut Report,
) -> Result<(), Fail> {
    let (Some(rendering), Some(pipeline)) = (gpu.rendering.as_ref(), pipelines.dynamic) else {
        report.info("pass 2 (dynamic rendering) skipped: the device has no dynamic rendering");
        return Ok(());
    };
    let device = &gpu.device;
    let color = vk::ImageAspectFlags::COLOR;
    let depth = res.depth.aspect;
    gpu.begin(cb)?;
    // The depth image was last copied from (TRANSFER_SRC_OPTIMAL) by pass 1.
    let after_copy = Scope::new(vk::PipelineStageFlags2::TRANSFER, vk::AccessFlags2::empty());
    gpu.sync.barrier(
        device,
        cb,
        &[],
        &[
            ImageBarrier {
                image: res.color_2.image,
                aspect: color,
                old: vk::ImageLayout::UNDEFINED,
                new: vk::ImageLayout::COLOR_ATTACHMENT_OPTIMAL,
                src: scopes::NONE,
                dst: scopes::COLOR_WRITE,
            },
            ImageBarrier {
                image: res.depth.image,
                aspect: depth,
                old: vk::ImageLayout::TRANSFER_SRC_OPTIMAL,
                new: vk::ImageLayout::DEPTH_STENCIL_ATTACHMENT_OPTIMAL,
                src: after_copy,
                dst: scopes::DEPTH_WRITE,
            },
        ],
    );
    let color_attachments = [vk::RenderingAttachmentInfo::default()
        .image_view(res.color_2.view)
        .image_layout(vk::ImageLayout::COLOR_ATTACHMENT_OPTIMAL)
        .load_op(vk::AttachmentLoadOp::CLEAR)
        .store_op(vk::AttachmentStoreOp::STORE)
        .clear_value(vk::ClearValue {
            color: vk::ClearColorValue {
                float32: unorm(BACKGROUND_2),
            },
        })];
    let depth_attachment = vk::RenderingAttachmentInfo::default()
        .image_view(res.depth.view)
        .image_layout(vk::ImageLayout::DEPTH_STENCIL_ATTACHMENT_OPTIMAL)
        .load_op(vk::AttachmentLoadOp::CLEAR)
        .store_op(vk::AttachmentStoreOp::STORE)
        .clear_value(vk::ClearValue {
            depth_stencil: vk::ClearDepthStencilValue {
                depth: 1.0,
                stencil: 0,
            },
        });
    let info = vk::RenderingInfo::default()
        .render_area(vk_rect(FULL_RECT))
        .layer_count(1)
        .color_attachments(&color_attachments)
        .depth_attachment(&depth_attachment);
    // SAFETY: `cb` is recording outside any render pass; the views are of images in
    // the layouts given (transitioned above); dynamic rendering is enabled.
    unsafe {
        match rendering {
            RenderingApi::Core => device.cmd_begin_rendering(cb, &info),
            RenderingApi::Khr(khr) => khr.cmd_begin_rendering(cb, &info),
        }
    }
    bind(gpu, cb, pipeline, pipelines.layout, res);
    let ops = pass2_ops();
    let mut slots = IndirectSlots::new();
    let count = gpu.features.draw_indirect_count;
    for op in &ops {
        // C by vkCmdDrawIndirectCount when the device has it.
        let mode = match op {
            Op::Draw(d) if count && matches!(d.first, First::Vertex(v) if v == C_FIRST_VERTEX) => {
                DrawMode::IndirectCount
            }
            _ => DrawMode::Indirect,
        };
        record_op(gpu, cb, pipelines.layout, res, op, mode, &mut slots)?;
    }
    if count {
        // A count of 0: nothing drawn (else B and C where the checks see them).
        draw_count(gpu, cb, res, &mut slots, First::Index(B_FIRST_INDEX), 0)?;
    }
    // SAFETY: inside the rendering instance begun above.
    unsafe {
        match rendering {
            RenderingApi::Core => device.cmd_end_rendering(cb),
            RenderingApi::Khr(khr) => khr.cmd_end_rendering(cb),
        }
    }
    gpu.sync.barrier(
        device,
        cb,
        &[],
        &[
            ImageBarrier {
                image: res.color_2.image,
                aspect: color,
                old: vk::ImageLayout::COLOR_ATTACHMENT_OPTIMAL,
                new: vk::ImageLayout::TRANSFER_SRC_OPTIMAL,
                src: scopes::COLOR_WRITE,
                dst: scopes::TRANSFER_READ,
            },
            ImageBarrier {
                image: res.depth.image,
                aspect: depth,
                old: vk::ImageLayout::DEPTH_STENCIL_ATTACHMENT_OPTIMAL,
                new: vk::ImageLayout::TRANSFER_SRC_OPTIMAL,
                src: scopes::DEPTH_WRITE,
                dst: scopes::TRANSFER_READ,
            },
        ],
    );
    copy_image_to_buffer(
        gpu,
        cb,
        &res.color_2,
        res.readback.buffer,
        readback::COLOR_2,
    );
    copy_image_to_buffer(gpu, cb, &res.depth, res.readback.buffer, readback::DEPTH_2);
    gpu.sync.barrier(
        device,
        cb,
        &[(scopes::TRANSFER_WRITE, scopes::HOST_READ)],
        &[],
    );
    gpu.end_submit_wait(cb, "dynamic rendering")?;
    report.check(
        true,
        format!(
            "dynamic rendering submitted ({}): vkCmdBeginRendering, vkCmdDrawIndexedIndirect, \
             vkCmdDrawIndirect, {}vkCmdClearAttachments, vkCmdEndRendering",
            match rendering {
                RenderingApi::Core => "core 1.3",
                RenderingApi::Khr(_) => "VK_KHR_dynamic_rendering",
            },
            if count {
                "vkCmdDrawIndirectCount, vkCmdDrawIndexedIndirectCount (count 0), "
            } else {
                ""
            }
        ),
    );

    let want = expected(&ops, BACKGROUND_2, 1.0, 1);
    let color = res
        .readback
        .bytes(readback::COLOR_2 as usize, (WIDTH * HEIGHT * 4) as usize)?;
    let depth = read_depth(gpu, res, readback::DEPTH_2, report)?;
    check_image(
        report,
        "pass 2 (dynamic rendering)",
        &want,
        color,
        depth.as_deref(),
        &pass2_probes(),
    );
    Ok(())
}
