//! The render-pass pass: a render pass of two subpasses on one color and one depth
//! attachment, its framebuffer, an occlusion query around triangle A in subpass 0, and
//! a secondary command buffer (vkCmdExecuteCommands) for subpass 1. The attachments
//! are copied to the read-back buffer and checked against the CPU model.

use ash::vk;

use crate::check::{check_image, read_depth, Probe};
use crate::device::Gpu;
use crate::model::expected;
use crate::pipeline::Pipelines;
use crate::record::{bind, record_op, vk_rect, DrawMode, IndirectSlots};
use crate::report::{Fail, Report, VkContext};
use crate::resources::{readback, Resources};
use crate::scene::{
    pass1_ops, pass1_probes, shaded, unorm, BACKGROUND_1, COLOR_A, FULL_RECT, HEIGHT,
    PASS1_QUERIED_OP, WIDTH,
};
use crate::sync::scopes;
use crate::vulkan::{Obj, Vulkan};

/// Creates the render pass: color and depth cleared on load, stored, left in
/// TRANSFER_SRC_OPTIMAL; subpass 0 draws inline, subpass 1 from a secondary command
/// buffer, both on the same attachments.
pub(crate) fn create_render_pass(
    vk_: &mut Vulkan,
    gpu: &Gpu,
    report: &mut Report,
) -> Result<vk::RenderPass, Fail> {
    let attachments = [
        vk::AttachmentDescription::default()
            .format(vk::Format::R8G8B8A8_UNORM)
            .samples(vk::SampleCountFlags::TYPE_1)
            .load_op(vk::AttachmentLoadOp::CLEAR)
            .store_op(vk::AttachmentStoreOp::STORE)
            .stencil_load_op(vk::AttachmentLoadOp::DONT_CARE)
            .stencil_store_op(vk::AttachmentStoreOp::DONT_CARE)
            .initial_layout(vk::ImageLayout::UNDEFINED)
            .final_layout(vk::ImageLayout::TRANSFER_SRC_OPTIMAL),
        vk::AttachmentDescription::default()
            .format(gpu.depth_format)
            .samples(vk::SampleCountFlags::TYPE_1)
            .load_op(vk::AttachmentLoadOp::CLEAR)
            .store_op(vk::AttachmentStoreOp::STORE)
            .stencil_load_op(vk::AttachmentLoadOp::DONT_CARE)
            .stencil_store_op(vk::AttachmentStoreOp::DONT_CARE)
            .initial_layout(vk::ImageLayout::UNDEFINED)
            .final_layout(vk::ImageLayout::TRANSFER_SRC_OPTIMAL),
    ];
    let color_refs = [vk::AttachmentReference {
        attachment: 0,
        layout: vk::ImageLayout::COLOR_ATTACHMENT_OPTIMAL,
    }];
    let depth_ref = vk::AttachmentReference {
        attachment: 1,
        layout: vk::ImageLayout::DEPTH_STENCIL_ATTACHMENT_OPTIMAL,
    };
    let subpass = vk::SubpassDescription::default()
        .pipeline_bind_point(vk::PipelineBindPoint::GRAPHICS)
        .color_attachments(&color_refs)
        .depth_stencil_attachment(&depth_ref);
    let subpasses = [subpass, subpass];
    use vk::AccessFlags as A;
    use vk::PipelineStageFlags as S;
    let attachment_stages =
        S::COLOR_ATTACHMENT_OUTPUT | S::EARLY_FRAGMENT_TESTS | S::LATE_FRAGMENT_TESTS;
    let attachment_writes = A::COLOR_ATTACHMENT_WRITE | A::DEPTH_STENCIL_ATTACHMENT_WRITE;
    let attachment_access =
        attachment_writes | A::COLOR_ATTACHMENT_READ | A::DEPTH_STENCIL_ATTACHMENT_READ;
    let dependencies = [
        vk::SubpassDependency::default()
            .src_subpass(vk::SUBPASS_EXTERNAL)
            .dst_subpass(0)
            .src_stage_mask(attachment_stages | S::TRANSFER)
            .src_access_mask(A::empty())
            .dst_stage_mask(attachment_stages)
            .dst_access_mask(attachment_access),
        vk::SubpassDependency::default()
            .src_subpass(0)
            .dst_subpass(1)
            .src_stage_mask(attachment_stages)
            .src_access_mask(attachment_writes)
            .dst_stage_mask(attachment_stages)
            .dst_access_mask(attachment_access)
            .dependency_flags(vk::DependencyFlags::BY_REGION),
        vk::SubpassDependency::default()
            .src_subpass(1)
            .dst_subpass(vk::SUBPASS_EXTERNAL)
            .src_stage_mask(attachment_stages)
            .src_access_mask(attachment_writes)
            .dst_stage_mask(S::TRANSFER)
            .dst_access_mask(A::TRANSFER_READ),
    ];
    // SAFETY: valid device; the create info and its arrays live until the call
    // returns; the render pass is tracked for destruction.
    let render_pass = unsafe {
        gpu.device.create_render_pass(
            &vk::RenderPassCreateInfo::default()
                .attachments(&attachments)
                .subpasses(&subpasses)
                .dependencies(&dependencies),
            None,
        )
    }
    .ctx("vkCreateRenderPass")?;
    vk_.track(Obj::RenderPass(render_pass));
    // SAFETY: valid render pass of this device.
    let granularity = unsafe { gpu.device.get_render_area_granularity(render_pass) };
    report.check(
        granularity.width >= 1 && granularity.height >= 1,
        format!(
            "vkCreateRenderPass (2 subpasses, 3 dependencies); render area granularity {}x{}",
            granularity.width, granularity.height
        ),
    );
    Ok(render_pass)
}

/// The framebuffer of the color image 1 and the depth image.
pub(crate) fn create_framebuffer(
    vk_: &mut Vulkan,
    gpu: &Gpu,
    render_pass: vk::RenderPass,
    res: &Resources,
) -> Result<vk::Framebuffer, Fail> {
    let views = [res.color_1.view, res.depth.view];
    // SAFETY: valid device; the views match the render pass's attachments; tracked.
    let framebuffer = unsafe {
        gpu.device.create_framebuffer(
            &vk::FramebufferCreateInfo::default()
                .render_pass(render_pass)
                .attachments(&views)
                .width(WIDTH)
                .height(HEIGHT)
                .layers(1),
            None,
        )
    }
    .ctx("vkCreateFramebuffer")?;
    vk_.track(Obj::Framebuffer(framebuffer));
    Ok(framebuffer)
}

/// Records subpass 1 into the secondary command buffer `secondary`.
fn record_secondary(
    gpu: &Gpu,
    secondary: vk::CommandBuffer,
    render_pass: vk::RenderPass,
    framebuffer: vk::Framebuffer,
    pipelines: &Pipelines,
    res: &Resources,
    ops: &[crate::model::Op],
) -> Result<(), Fail> {
    let inheritance = vk::CommandBufferInheritanceInfo::default()
        .render_pass(render_pass)
        .subpass(1)
        .framebuffer(framebuffer);
    // SAFETY: a secondary command buffer in the initial state; the inheritance info
    // names a subpass of a live render pass and a compatible framebuffer.
    unsafe {
        gpu.device.begin_command_buffer(
            secondary,
            &vk::CommandBufferBeginInfo::default()
                .flags(
                    vk::CommandBufferUsageFlags::RENDER_PASS_CONTINUE
                        | vk::CommandBufferUsageFlags::ONE_TIME_SUBMIT,
                )
                .inheritance_info(&inheritance),
        )
    }
    .ctx("vkBeginCommandBuffer (secondary)")?;
    bind(gpu, secondary, pipelines.subpass[1], pipelines.layout, res);
    let mut slots = IndirectSlots::new();
    for op in ops {
        record_op(
            gpu,
            secondary,
            pipelines.layout,
            res,
            op,
            DrawMode::Direct,
            &mut slots,
        )?;
    }
    // SAFETY: `secondary` is recording.
    unsafe { gpu.device.end_command_buffer(secondary) }.ctx("vkEndCommandBuffer (secondary)")
}

/// Records, submits and checks the render-pass pass.
#[allow(clippy::too_many_arguments)]
pub(crate) fn run(
    vk_: &mut Vulkan,
    gpu: &Gpu,
    render_pass: vk::RenderPass,
    framebuffer: vk::Framebuffer,
    pipelines: &Pipelines,
    res: &Resources,
    (cb, secondary): (vk::CommandBuffer, vk::CommandBuffer),
    report: &mut Report,
) -> Result<(), Fail> {
    let device = &gpu.device;
    // SAFETY: valid device; tracked for destruction.
    let query_pool = unsafe {
        device.create_query_pool(
            &vk::QueryPoolCreateInfo::default()
                .query_type(vk::QueryType::OCCLUSION)
                .query_count(1),
            None,
        )
    }
    .ctx("vkCreateQueryPool")?;
    vk_.track(Obj::QueryPool(query_pool));

    let ops = pass1_ops();
    let (subpass0, subpass1) = ops.split_at(PASS1_QUERIED_OP + 1);
    record_secondary(
        gpu,
        secondary,
        render_pass,
        framebuffer,
        pipelines,
        res,
        subpass1,
    )?;

    gpu.begin(cb)?;
    let clear_values = [
        vk::ClearValue {
            color: vk::ClearColorValue {
                float32: unorm(BACKGROUND_1),
            },
        },
        vk::ClearValue {
            depth_stencil: vk::ClearDepthStencilValue {
                depth: 1.0,
                stencil: 0,
            },
        },
    ];
    let query_flags = if gpu.precise_occlusion {
        vk::QueryControlFlags::PRECISE
    } else {
        vk::QueryControlFlags::empty()
    };
    // SAFETY: `cb` is recording outside a render pass; the pool has one query.
    unsafe { device.cmd_reset_query_pool(cb, query_pool, 0, 1) };
    // SAFETY: the render pass and framebuffer are compatible; two clear values for the
    // two attachments; the render area is the whole framebuffer.
    unsafe {
        device.cmd_begin_render_pass(
            cb,
            &vk::RenderPassBeginInfo::default()
                .render_pass(render_pass)
                .framebuffer(framebuffer)
                .render_area(vk_rect(FULL_RECT))
                .clear_values(&clear_values),
            vk::SubpassContents::INLINE,
        )
    };
    bind(gpu, cb, pipelines.subpass[0], pipelines.layout, res);
    let mut slots = IndirectSlots::new();
    for (i, op) in subpass0.iter().enumerate() {
        if i == PASS1_QUERIED_OP {
            // SAFETY: the query was reset above; no query of the pool is active.
            unsafe { device.cmd_begin_query(cb, query_pool, 0, query_flags) };
        }
        record_op(
            gpu,
            cb,
            pipelines.layout,
            res,
            op,
            DrawMode::Direct,
            &mut slots,
        )?;
    }
    // SAFETY: the query is active in this subpass; then subpass 1, whose contents
    // come from `secondary` (recorded for subpass 1 of this render pass), and the end of
    // the render pass.
    unsafe {
        device.cmd_end_query(cb, query_pool, 0);
        device.cmd_next_subpass(cb, vk::SubpassContents::SECONDARY_COMMAND_BUFFERS);
        device.cmd_execute_commands(cb, &[secondary]);
        device.cmd_end_render_pass(cb);
    }
    crate::memory::copy_image_to_buffer(
        gpu,
        cb,
        &res.color_1,
        res.readback.buffer,
        readback::COLOR_1,
    );
    crate::memory::copy_image_to_buffer(
        gpu,
        cb,
        &res.depth,
        res.readback.buffer,
        readback::DEPTH_1,
    );
    // SAFETY: the query ended above; the buffer has room for one 64-bit result and its
    // availability (16 bytes) and TRANSFER_DST usage.
    unsafe {
        device.cmd_copy_query_pool_results(
            cb,
            query_pool,
            0,
            1,
            res.query_results.buffer,
            0,
            16,
            vk::QueryResultFlags::TYPE_64
                | vk::QueryResultFlags::WAIT
                | vk::QueryResultFlags::WITH_AVAILABILITY,
        )
    };
    gpu.sync.barrier(
        device,
        cb,
        &[(scopes::TRANSFER_WRITE, scopes::HOST_READ)],
        &[],
    );
    gpu.end_submit_wait(cb, "render pass")?;
    report.check(
        true,
        "render pass submitted: vkCmdBeginRenderPass, draws, vkCmdNextSubpass, \
         vkCmdExecuteCommands, vkCmdEndRenderPass, vkCmdCopyImageToBuffer, \
         vkCmdCopyQueryPoolResults",
    );

    let want = expected(&ops, BACKGROUND_1, 1.0, 1);
    let color = res
        .readback
        .bytes(readback::COLOR_1 as usize, (WIDTH * HEIGHT * 4) as usize)?;
    let depth = read_depth(gpu, res, readback::DEPTH_1, report)?;
    let probes: Vec<Probe> = pass1_probes();
    check_image(
        report,
        "pass 1 (render pass)",
        &want,
        color,
        depth.as_deref(),
        &probes,
    );

    // The occlusion query counted the samples of triangle A that passed the depth test.
    let mut results = [0u64; 1];
    // SAFETY: one query, ended and waited for; 64-bit results into a 1-element slice.
    let got = unsafe {
        device.get_query_pool_results(
            query_pool,
            0,
            &mut results,
            vk::QueryResultFlags::TYPE_64 | vk::QueryResultFlags::WAIT,
        )
    };
    let copied = res.query_results.bytes(0, 16)?;
    let word = |i: usize| {
        let mut b = [0u8; 8];
        b.copy_from_slice(&copied[i * 8..i * 8 + 8]);
        u64::from_le_bytes(b)
    };
    let (copied_count, available) = (word(0), word(1));
    let count = results[0];
    report.check(
        got.is_ok() && copied_count == count && available != 0,
        format!(
            "occlusion query: vkGetQueryPoolResults {got:?} count {count}; \
             vkCmdCopyQueryPoolResults count {copied_count}, availability {available}"
        ),
    );
    let (min, max) = want.samples_passed[PASS1_QUERIED_OP];
    if gpu.precise_occlusion {
        let a = shaded(COLOR_A);
        let a_pixels = color
            .chunks_exact(4)
            .filter(|p| p.iter().zip(a).all(|(&x, y)| x.abs_diff(y) <= 1))
            .count() as u64;
        report.check(
            (min..=max).contains(&count) && count == a_pixels,
            format!(
                "precise occlusion count of triangle A: {count} samples (model: {min}..={max}; \
                 pixels showing A: {a_pixels})"
            ),
        );
    } else {
        report.check(
            count > 0,
            format!("occlusion count of triangle A is non-zero: {count}"),
        );
    }
    Ok(())
}
