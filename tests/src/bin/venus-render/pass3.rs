//! Pass 3: the pass-1 scene rendered with 4 samples through a render pass made by
//! vkCreateRenderPass2 (color and depth resolve attachments, depth resolved with
//! SAMPLE_ZERO), an imageless framebuffer, vkCmdBeginRenderPass2 / vkCmdNextSubpass2 /
//! vkCmdEndRenderPass2, push descriptors, extended dynamic state, vkCmdDrawMultiEXT and
//! vkCmdDrawMultiIndexedEXT with strides larger than their structs, conditional
//! rendering (a draw skipped, a clear done under an inverted predicate) and a sample
//! mask. The resolved attachments are checked against the CPU model, and a
//! vkCmdResolveImage of the multisampled color against the render pass's resolve.

use ash::vk;

use crate::check::{check_image, read_depth};
use crate::copy2::{self, Copy2};
use crate::device::Gpu;
use crate::eds::{set_pass3_state, set_sample_mask, set_viewport_scissor, HALF_SAMPLE_MASK};
use crate::ignored::ignored;
use crate::memory::{copy_image_to_buffer, create_buffer, create_image_samples, ImageMem};
use crate::model::{expected, Op};
use crate::pass3_pipeline::{self, Pass3Pipelines};
use crate::pipeline::Pipelines;
use crate::record::{push_constants, record_clear, vk_rect, vk_viewport};
use crate::report::{Fail, Report, VkContext};
use crate::resources::{readback, Resources};
use crate::scene::{
    pass3_ops, pass3_probes, unorm, BACKGROUND_3, FULL_RECT, FULL_VIEWPORT, HEIGHT,
    PASS1_QUERIED_OP, SKIPPED_OFFSET, VERTEX_STRIDE, WIDTH,
};
use crate::sync::{scopes, ImageBarrier};
use crate::vulkan::{Obj, Vulkan};

const SAMPLES: vk::SampleCountFlags = vk::SampleCountFlags::TYPE_4;

/// Images of pass 3: multisampled color and depth, their resolve targets, and the
/// target of vkCmdResolveImage.
struct Targets {
    color_ms: ImageMem,
    depth_ms: ImageMem,
    color: ImageMem,
    depth: ImageMem,
    resolved: ImageMem,
    /// The target of vkCmdResolveImage2 (with copy commands 2).
    resolved_2: Option<ImageMem>,
}

/// (usage, format) of each attachment, in attachment order (the imageless framebuffer
/// repeats them).
fn attachment_images(gpu: &Gpu) -> [(vk::ImageUsageFlags, vk::Format); 4] {
    use vk::ImageUsageFlags as I;
    let color = vk::Format::R8G8B8A8_UNORM;
    [
        (I::COLOR_ATTACHMENT | I::TRANSFER_SRC, color),
        (I::DEPTH_STENCIL_ATTACHMENT, gpu.depth_format),
        (I::COLOR_ATTACHMENT | I::TRANSFER_SRC, color),
        (
            I::DEPTH_STENCIL_ATTACHMENT | I::TRANSFER_SRC,
            gpu.depth_format,
        ),
    ]
}

fn create_targets(vk_: &mut Vulkan, gpu: &Gpu) -> Result<Targets, Fail> {
    let size = (WIDTH, HEIGHT);
    let one = vk::SampleCountFlags::TYPE_1;
    let [a0, a1, a2, a3] = attachment_images(gpu);
    let color_ms = create_image_samples(vk_, gpu, size, a0.1, a0.0, true, SAMPLES)?;
    let depth_ms = create_image_samples(vk_, gpu, size, a1.1, a1.0, true, SAMPLES)?;
    let color = create_image_samples(vk_, gpu, size, a2.1, a2.0, true, one)?;
    let depth = create_image_samples(vk_, gpu, size, a3.1, a3.0, true, one)?;
    let usage = vk::ImageUsageFlags::TRANSFER_DST | vk::ImageUsageFlags::TRANSFER_SRC;
    let resolved = create_image_samples(vk_, gpu, size, a0.1, usage, false, one)?;
    let resolved_2 = if gpu.features.copy2 {
        Some(create_image_samples(
            vk_, gpu, size, a0.1, usage, false, one,
        )?)
    } else {
        None
    };
    Ok(Targets {
        resolved_2,
        color_ms,
        depth_ms,
        color,
        depth,
        resolved,
    })
}

fn create_render_pass(vk_: &mut Vulkan, gpu: &Gpu) -> Result<vk::RenderPass, Fail> {
    use vk::AttachmentLoadOp as Load;
    use vk::AttachmentStoreOp as Store;
    use vk::ImageLayout as L;
    let attachment = |format, samples, load, store, final_layout| {
        vk::AttachmentDescription2::default()
            .format(format)
            .samples(samples)
            .load_op(load)
            .store_op(store)
            .stencil_load_op(Load::DONT_CARE)
            .stencil_store_op(Store::DONT_CARE)
            .initial_layout(L::UNDEFINED)
            .final_layout(final_layout)
    };
    let one = vk::SampleCountFlags::TYPE_1;
    let color = vk::Format::R8G8B8A8_UNORM;
    let depth = gpu.depth_format;
    let attachments = [
        attachment(
            color,
            SAMPLES,
            Load::CLEAR,
            Store::STORE,
            L::TRANSFER_SRC_OPTIMAL,
        ),
        attachment(
            depth,
            SAMPLES,
            Load::CLEAR,
            Store::DONT_CARE,
            L::DEPTH_STENCIL_ATTACHMENT_OPTIMAL,
        ),
        attachment(
            color,
            one,
            Load::DONT_CARE,
            Store::STORE,
            L::TRANSFER_SRC_OPTIMAL,
        ),
        attachment(
            depth,
            one,
            Load::DONT_CARE,
            Store::STORE,
            L::TRANSFER_SRC_OPTIMAL,
        ),
    ];
    let reference = |attachment, layout| {
        vk::AttachmentReference2::default()
            .attachment(attachment)
            .layout(layout)
    };
    let color_refs = [reference(0, L::COLOR_ATTACHMENT_OPTIMAL)];
    let depth_ref = reference(1, L::DEPTH_STENCIL_ATTACHMENT_OPTIMAL);
    let resolve_refs = [reference(2, L::COLOR_ATTACHMENT_OPTIMAL)];
    let depth_resolve_ref = reference(3, L::DEPTH_STENCIL_ATTACHMENT_OPTIMAL);
    let mut depth_resolve = vk::SubpassDescriptionDepthStencilResolve::default()
        .depth_resolve_mode(vk::ResolveModeFlags::SAMPLE_ZERO)
        .stencil_resolve_mode(vk::ResolveModeFlags::NONE)
        .depth_stencil_resolve_attachment(&depth_resolve_ref);
    let subpasses = [
        vk::SubpassDescription2::default()
            .pipeline_bind_point(vk::PipelineBindPoint::GRAPHICS)
            .color_attachments(&color_refs)
            .depth_stencil_attachment(&depth_ref),
        vk::SubpassDescription2::default()
            .pipeline_bind_point(vk::PipelineBindPoint::GRAPHICS)
            .color_attachments(&color_refs)
            .resolve_attachments(&resolve_refs)
            .depth_stencil_attachment(&depth_ref)
            .push_next(&mut depth_resolve),
    ];
    use vk::AccessFlags as A;
    use vk::PipelineStageFlags as S;
    let stages = S::COLOR_ATTACHMENT_OUTPUT | S::EARLY_FRAGMENT_TESTS | S::LATE_FRAGMENT_TESTS;
    let writes = A::COLOR_ATTACHMENT_WRITE | A::DEPTH_STENCIL_ATTACHMENT_WRITE;
    let access = writes | A::COLOR_ATTACHMENT_READ | A::DEPTH_STENCIL_ATTACHMENT_READ;
    let dependency = |src, dst| {
        vk::SubpassDependency2::default()
            .src_subpass(src)
            .dst_subpass(dst)
    };
    let dependencies = [
        dependency(vk::SUBPASS_EXTERNAL, 0)
            .src_stage_mask(stages)
            .dst_stage_mask(stages)
            .dst_access_mask(access),
        dependency(0, 1)
            .src_stage_mask(stages)
            .src_access_mask(writes)
            .dst_stage_mask(stages)
            .dst_access_mask(access)
            .dependency_flags(vk::DependencyFlags::BY_REGION),
        dependency(1, vk::SUBPASS_EXTERNAL)
            .src_stage_mask(stages)
            .src_access_mask(writes)
            .dst_stage_mask(S::TRANSFER)
            .dst_access_mask(A::TRANSFER_READ),
    ];
    // SAFETY: valid device (1.2: render pass 2, depth/stencil resolve with SAMPLE_ZERO
    // checked); the create info and its arrays live until the call returns; tracked.
    let render_pass = unsafe {
        gpu.device.create_render_pass2(
            &vk::RenderPassCreateInfo2::default()
                .attachments(&attachments)
                .subpasses(&subpasses)
                .dependencies(&dependencies),
            None,
        )
    }
    .ctx("vkCreateRenderPass2")?;
    vk_.track(Obj::RenderPass(render_pass));
    Ok(render_pass)
}

/// An imageless framebuffer (Vulkan 1.2) describing the four attachments.
fn create_framebuffer(
    vk_: &mut Vulkan,
    gpu: &Gpu,
    render_pass: vk::RenderPass,
) -> Result<vk::Framebuffer, Fail> {
    let images = attachment_images(gpu);
    let formats: Vec<[vk::Format; 1]> = images.iter().map(|&(_, f)| [f]).collect();
    let infos: Vec<vk::FramebufferAttachmentImageInfo<'_>> = images
        .iter()
        .zip(&formats)
        .map(|(&(usage, _), format)| {
            vk::FramebufferAttachmentImageInfo::default()
                .usage(usage)
                .width(WIDTH)
                .height(HEIGHT)
                .layer_count(1)
                .view_formats(format)
        })
        .collect();
    let mut attachments =
        vk::FramebufferAttachmentsCreateInfo::default().attachment_image_infos(&infos);
    let mut info = vk::FramebufferCreateInfo::default()
        .flags(vk::FramebufferCreateFlags::IMAGELESS)
        .render_pass(render_pass)
        .width(WIDTH)
        .height(HEIGHT)
        .layers(1)
        .push_next(&mut attachments);
    info.attachment_count = 4;
    // SAFETY: valid device with imagelessFramebuffer enabled; four attachment image
    // infos for the render pass's four attachments; tracked.
    let framebuffer = unsafe { gpu.device.create_framebuffer(&info, None) }
        .ctx("vkCreateFramebuffer (imageless)")?;
    vk_.track(Obj::Framebuffer(framebuffer));
    Ok(framebuffer)
}

/// Pushes the uniform buffer and the texture as descriptors of set 0.
fn push_descriptors(
    gpu: &Gpu,
    cb: vk::CommandBuffer,
    layout: vk::PipelineLayout,
    res: &Resources,
) -> Result<(), Fail> {
    let Some(push) = gpu.loaded.push_descriptor.as_ref() else {
        return Err("VK_KHR_push_descriptor is not loaded".into());
    };
    let buffer_info = [vk::DescriptorBufferInfo::default()
        .buffer(res.uniform.buffer)
        .range(vk::WHOLE_SIZE)];
    // The binding's sampler is immutable: the sampler member is ignored, and so is
    // dstSet for push descriptors (see `ignored`).
    let image_info = [vk::DescriptorImageInfo::default()
        .sampler(ignored())
        .image_view(res.texture.view)
        .image_layout(vk::ImageLayout::SHADER_READ_ONLY_OPTIMAL)];
    let writes = [
        vk::WriteDescriptorSet::default()
            .dst_set(ignored())
            .dst_binding(0)
            .descriptor_type(vk::DescriptorType::UNIFORM_BUFFER)
            .buffer_info(&buffer_info),
        vk::WriteDescriptorSet::default()
            .dst_set(ignored())
            .dst_binding(1)
            .descriptor_type(vk::DescriptorType::COMBINED_IMAGE_SAMPLER)
            .image_info(&image_info),
    ];
    // SAFETY: `cb` is recording; `layout`'s set 0 is a push-descriptor layout with
    // these two bindings; the buffer, view and sampler are live.
    unsafe {
        push.cmd_push_descriptor_set(cb, vk::PipelineBindPoint::GRAPHICS, layout, 0, &writes)
    };
    Ok(())
}

/// Binds a pass 3 pipeline with its descriptors, index buffer and dynamic state.
fn bind(
    gpu: &Gpu,
    cb: vk::CommandBuffer,
    pipeline: vk::Pipeline,
    layout: vk::PipelineLayout,
    res: &Resources,
) -> Result<(), Fail> {
    // SAFETY: `cb` is recording inside the pass 3 render pass, in the pipeline's subpass.
    unsafe {
        gpu.device
            .cmd_bind_pipeline(cb, vk::PipelineBindPoint::GRAPHICS, pipeline);
        gpu.device
            .cmd_bind_index_buffer(cb, res.index.buffer, 0, vk::IndexType::UINT16);
    }
    push_descriptors(gpu, cb, layout, res)?;
    set_pass3_state(
        gpu,
        cb,
        res.vertex.buffer,
        res.vertex.size,
        u64::from(VERTEX_STRIDE),
    )
}

/// Draw infos laid out with strides larger than the structs; a reader that ignored the
/// stride would draw triangle C at the full viewport, which the checks would see.
/// Indexed (VkMultiDrawIndexedInfoEXT, 12 bytes, stride 20): B from index 3, then B from
/// index 6. Non-indexed (VkMultiDrawInfoEXT, 8 bytes, stride 16): A twice.
const MULTI_INDEXED: [u32; 10] = [3, 3, 0, 3, 3, 6, 3, 0, 0, 0];
const MULTI_INDEXED_STRIDE: u32 = 20;
const MULTI: [u32; 8] = [3, 3, 6, 3, 3, 3, 6, 3];
const MULTI_STRIDE: u32 = 16;

/// Begins conditional rendering on the predicate word at `offset`.
fn begin_conditional(
    gpu: &Gpu,
    cb: vk::CommandBuffer,
    buffer: vk::Buffer,
    offset: u64,
    inverted: bool,
) -> Result<(), Fail> {
    let Some(cond) = gpu.loaded.conditional.as_ref() else {
        return Err("VK_EXT_conditional_rendering is not loaded".into());
    };
    let info = vk::ConditionalRenderingBeginInfoEXT::default()
        .buffer(buffer)
        .offset(offset)
        .flags(if inverted {
            vk::ConditionalRenderingFlagsEXT::INVERTED
        } else {
            vk::ConditionalRenderingFlagsEXT::empty()
        });
    // SAFETY: `cb` is recording inside a subpass; the buffer has CONDITIONAL_RENDERING
    // usage and a 4-byte predicate at `offset`; ended in the same subpass.
    unsafe { (cond.fp().cmd_begin_conditional_rendering_ext)(cb, &info) };
    Ok(())
}

fn end_conditional(gpu: &Gpu, cb: vk::CommandBuffer) {
    if let Some(cond) = gpu.loaded.conditional.as_ref() {
        // SAFETY: conditional rendering is active in this subpass.
        unsafe { (cond.fp().cmd_end_conditional_rendering_ext)(cb) };
    }
}

/// Runs pass 3 when the device has what it needs; reports a skip otherwise.
pub(crate) fn run(
    vk_: &mut Vulkan,
    gpu: &Gpu,
    shaders: &Pipelines,
    res: &Resources,
    cb: vk::CommandBuffer,
    report: &mut Report,
) -> Result<(), Fail> {
    if !gpu.features.pass3() {
        report.info(format!(
            "pass 3 skipped: the device lacks some of {:?}",
            gpu.features
        ));
        return Ok(());
    }
    let Some(multi) = gpu.loaded.multi_draw.as_ref() else {
        return Err("VK_EXT_multi_draw is not loaded".into());
    };
    let targets = create_targets(vk_, gpu)?;
    let render_pass = create_render_pass(vk_, gpu)?;
    let framebuffer = create_framebuffer(vk_, gpu, render_pass)?;
    let Pass3Pipelines { layout, subpass } =
        pass3_pipeline::create(vk_, gpu, shaders, render_pass, res.sampler, report)?;
    let predicates = create_buffer(
        vk_,
        gpu,
        8,
        vk::BufferUsageFlags::CONDITIONAL_RENDERING_EXT,
        true,
    )?;
    predicates.write(0, &[1, 0, 0, 0, 0, 0, 0, 0])?;
    let device = &gpu.device;

    gpu.begin(cb)?;
    let clear_values = [
        vk::ClearValue {
            color: vk::ClearColorValue {
                float32: unorm(BACKGROUND_3),
            },
        },
        vk::ClearValue {
            depth_stencil: vk::ClearDepthStencilValue {
                depth: 1.0,
                stencil: 0,
            },
        },
        vk::ClearValue::default(),
        vk::ClearValue::default(),
    ];
    let views = [
        targets.color_ms.view,
        targets.depth_ms.view,
        targets.color.view,
        targets.depth.view,
    ];
    let mut attachments = vk::RenderPassAttachmentBeginInfo::default().attachments(&views);
    let begin = vk::RenderPassBeginInfo::default()
        .render_pass(render_pass)
        .framebuffer(framebuffer)
        .render_area(vk_rect(FULL_RECT))
        .clear_values(&clear_values)
        .push_next(&mut attachments);
    let inline = vk::SubpassBeginInfo::default().contents(vk::SubpassContents::INLINE);
    let end = vk::SubpassEndInfo::default();
    // SAFETY: `cb` is recording outside a render pass; the views match the imageless
    // framebuffer's attachment infos; four clear values.
    unsafe { device.cmd_begin_render_pass2(cb, &begin, &inline) };
    bind(gpu, cb, subpass[0], layout, res)?;
    let ops = pass3_ops();
    let (first, second) = ops.split_at(PASS1_QUERIED_OP + 1);
    for op in first {
        let Op::Draw(draw) = op else {
            record_clear(gpu, cb, op);
            continue;
        };
        set_viewport_scissor(gpu, cb, vk_viewport(draw.viewport), vk_rect(draw.scissor));
        push_constants(gpu, cb, layout, draw);
        // SAFETY: the draw infos hold 2 draws each at the strides given (the slices
        // are long enough); indices and vertices are in the bound buffers.
        unsafe {
            match draw.first {
                crate::model::First::Index(_) => (multi.fp().cmd_draw_multi_indexed_ext)(
                    cb,
                    2,
                    MULTI_INDEXED.as_ptr().cast(),
                    1,
                    0,
                    MULTI_INDEXED_STRIDE,
                    std::ptr::null(),
                ),
                crate::model::First::Vertex(_) => (multi.fp().cmd_draw_multi_ext)(
                    cb,
                    2,
                    MULTI.as_ptr().cast(),
                    1,
                    0,
                    MULTI_STRIDE,
                ),
            }
        }
    }
    // SAFETY: in subpass 0 of the render pass begun above.
    unsafe { device.cmd_next_subpass2(cb, &inline, &end) };
    bind(gpu, cb, subpass[1], layout, res)?;
    let pred = predicates.buffer;
    for op in second {
        let Op::Draw(draw) = op else {
            // Cleared under an inverted predicate of 0: done.
            begin_conditional(gpu, cb, pred, 4, true)?;
            record_clear(gpu, cb, op);
            end_conditional(gpu, cb);
            continue;
        };
        // C, with half the samples, under a predicate of 1: drawn.
        begin_conditional(gpu, cb, pred, 0, false)?;
        set_viewport_scissor(gpu, cb, vk_viewport(draw.viewport), vk_rect(draw.scissor));
        push_constants(gpu, cb, layout, draw);
        set_sample_mask(gpu, cb, HALF_SAMPLE_MASK);
        let crate::model::First::Vertex(v) = draw.first else {
            return Err("pass 3 draws C by vertex".into());
        };
        // SAFETY: vertices in the bound buffer.
        unsafe { device.cmd_draw(cb, 3, 1, v, 0) };
        set_sample_mask(gpu, cb, !0);
        end_conditional(gpu, cb);
        // A moved in front of everything, under a predicate of 0: skipped.
        begin_conditional(gpu, cb, pred, 4, false)?;
        let mut skipped = *draw;
        skipped.offset = SKIPPED_OFFSET;
        set_viewport_scissor(gpu, cb, vk_viewport(FULL_VIEWPORT), vk_rect(FULL_RECT));
        push_constants(gpu, cb, layout, &skipped);
        // SAFETY: as above.
        unsafe { device.cmd_draw(cb, 3, 1, crate::scene::A_FIRST_VERTEX, 0) };
        end_conditional(gpu, cb);
    }
    // SAFETY: in the last subpass of the render pass.
    unsafe { device.cmd_end_render_pass2(cb, &end) };

    let rb = res.readback.buffer;
    copy_image_to_buffer(gpu, cb, &targets.color, rb, readback::COLOR_3);
    copy_image_to_buffer(gpu, cb, &targets.depth, rb, readback::DEPTH_3);
    let color = vk::ImageAspectFlags::COLOR;
    let resolve_targets: Vec<&ImageMem> = std::iter::once(&targets.resolved)
        .chain(targets.resolved_2.as_ref())
        .collect();
    let to_dst: Vec<ImageBarrier> = resolve_targets
        .iter()
        .map(|t| ImageBarrier {
            image: t.image,
            aspect: color,
            old: vk::ImageLayout::UNDEFINED,
            new: vk::ImageLayout::TRANSFER_DST_OPTIMAL,
            src: scopes::NONE,
            dst: scopes::TRANSFER_WRITE,
        })
        .collect();
    gpu.sync.barrier(device, cb, &[], &to_dst);
    let layers = vk::ImageSubresourceLayers::default()
        .aspect_mask(color)
        .layer_count(1);
    let whole = vk::Extent3D {
        width: WIDTH,
        height: HEIGHT,
        depth: 1,
    };
    let region = vk::ImageResolve::default()
        .src_subresource(layers)
        .dst_subresource(layers)
        .extent(whole);
    // SAFETY: the multisampled color is in TRANSFER_SRC_OPTIMAL (its final layout), the
    // target single-sampled with the same format in TRANSFER_DST_OPTIMAL.
    unsafe {
        device.cmd_resolve_image(
            cb,
            targets.color_ms.image,
            vk::ImageLayout::TRANSFER_SRC_OPTIMAL,
            targets.resolved.image,
            vk::ImageLayout::TRANSFER_DST_OPTIMAL,
            &[region],
        )
    };
    if let Some(resolved_2) = targets.resolved_2.as_ref() {
        let regions = [vk::ImageResolve2::default()
            .src_subresource(layers)
            .dst_subresource(layers)
            .extent(whole)];
        let info = vk::ResolveImageInfo2::default()
            .src_image(targets.color_ms.image)
            .src_image_layout(vk::ImageLayout::TRANSFER_SRC_OPTIMAL)
            .dst_image(resolved_2.image)
            .dst_image_layout(vk::ImageLayout::TRANSFER_DST_OPTIMAL)
            .regions(&regions);
        copy2::record(gpu, cb, Copy2::Resolve(&info));
    }
    let to_src: Vec<ImageBarrier> = resolve_targets
        .iter()
        .map(|t| ImageBarrier {
            image: t.image,
            aspect: color,
            old: vk::ImageLayout::TRANSFER_DST_OPTIMAL,
            new: vk::ImageLayout::TRANSFER_SRC_OPTIMAL,
            src: scopes::TRANSFER_WRITE,
            dst: scopes::TRANSFER_READ,
        })
        .collect();
    gpu.sync.barrier(device, cb, &[], &to_src);
    copy_image_to_buffer(gpu, cb, &targets.resolved, rb, readback::COLOR_3_RESOLVED);
    if let Some(resolved_2) = targets.resolved_2.as_ref() {
        copy_image_to_buffer(gpu, cb, resolved_2, rb, readback::COLOR_3_RESOLVED_2);
    }
    gpu.sync.barrier(
        device,
        cb,
        &[(scopes::TRANSFER_WRITE, scopes::HOST_READ)],
        &[],
    );
    gpu.end_submit_wait(cb, "pass 3")?;
    report.check(
        true,
        "pass 3 submitted: vkCmdBeginRenderPass2 (imageless framebuffer), push descriptors, \
         extended dynamic state, vkCmdDrawMultiIndexedEXT, vkCmdDrawMultiEXT, \
         vkCmdNextSubpass2, conditional rendering, vkCmdEndRenderPass2, vkCmdResolveImage",
    );

    let want = expected(&ops, BACKGROUND_3, 1.0, 4);
    let size = (WIDTH * HEIGHT * 4) as usize;
    let color = res.readback.bytes(readback::COLOR_3 as usize, size)?;
    let depth = read_depth(gpu, res, readback::DEPTH_3, report)?;
    check_image(
        report,
        "pass 3 (4 samples, resolved)",
        &want,
        color,
        depth.as_deref(),
        &pass3_probes(),
    );
    let resolved = res
        .readback
        .bytes(readback::COLOR_3_RESOLVED as usize, size)?;
    let differing = color
        .iter()
        .zip(resolved)
        .filter(|(a, b)| a.abs_diff(**b) > 1)
        .count();
    let exact = color
        .chunks_exact(4)
        .zip(resolved.chunks_exact(4))
        .filter(|(a, b)| a == b)
        .count();
    report.check(
        differing == 0,
        format!(
            "vkCmdResolveImage of the multisampled color equals the render pass resolve \
             within 1 ({exact} of {} pixels exactly, {differing} channels off)",
            WIDTH * HEIGHT
        ),
    );
    if targets.resolved_2.is_some() {
        let resolved_2 = res
            .readback
            .bytes(readback::COLOR_3_RESOLVED_2 as usize, size)?;
        let differ = resolved
            .iter()
            .zip(resolved_2)
            .filter(|(a, b)| a != b)
            .count();
        report.check(
            differ == 0,
            format!("vkCmdResolveImage2: the same bytes as vkCmdResolveImage ({differ} differ)"),
        );
    }
    Ok(())
}
