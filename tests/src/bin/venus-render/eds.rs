//! Setting the extended dynamic state of pass 3: the Vulkan 1.3 / VK_EXT_extended_dynamic_state
//! {,2} states through core or extension entry points, VK_EXT_extended_dynamic_state3,
//! VK_EXT_color_write_enable and the Vulkan 1.0 dynamic states.

use ash::vk;

use crate::device::Gpu;
use crate::features::EdsApi;
use crate::report::Fail;

/// The sample mask of the draws that keep samples 0 and 2 of 4.
pub(crate) const HALF_SAMPLE_MASK: u32 = 0b0101;

/// The dynamic states of the pass 3 pipelines, given what the device has.
pub(crate) fn pass3_dynamic_states(gpu: &Gpu) -> Vec<vk::DynamicState> {
    use vk::DynamicState as D;
    let mut states = vec![
        D::LINE_WIDTH,
        D::DEPTH_BIAS,
        D::BLEND_CONSTANTS,
        D::DEPTH_BOUNDS,
        D::STENCIL_COMPARE_MASK,
        D::STENCIL_WRITE_MASK,
        D::STENCIL_REFERENCE,
        D::CULL_MODE,
        D::FRONT_FACE,
        D::PRIMITIVE_TOPOLOGY,
        D::VIEWPORT_WITH_COUNT,
        D::SCISSOR_WITH_COUNT,
        D::VERTEX_INPUT_BINDING_STRIDE,
        D::DEPTH_TEST_ENABLE,
        D::DEPTH_WRITE_ENABLE,
        D::DEPTH_COMPARE_OP,
        D::DEPTH_BOUNDS_TEST_ENABLE,
        D::STENCIL_TEST_ENABLE,
        D::STENCIL_OP,
        D::RASTERIZER_DISCARD_ENABLE,
        D::DEPTH_BIAS_ENABLE,
        D::PRIMITIVE_RESTART_ENABLE,
        D::COLOR_WRITE_ENABLE_EXT,
    ];
    if gpu.features.eds2_logic_op {
        states.push(D::LOGIC_OP_EXT);
    }
    if gpu.features.eds3 {
        states.extend([
            D::POLYGON_MODE_EXT,
            D::RASTERIZATION_SAMPLES_EXT,
            D::SAMPLE_MASK_EXT,
            D::ALPHA_TO_COVERAGE_ENABLE_EXT,
            D::ALPHA_TO_ONE_ENABLE_EXT,
            D::LOGIC_OP_ENABLE_EXT,
            D::COLOR_BLEND_ENABLE_EXT,
            D::COLOR_BLEND_EQUATION_EXT,
            D::COLOR_WRITE_MASK_EXT,
            D::DEPTH_CLAMP_ENABLE_EXT,
        ]);
    }
    states
}

/// Sets every dynamic state of the pass 3 pipelines but viewport, scissor and (with
/// VK_EXT_extended_dynamic_state3) the sample mask, to what the scene needs: depth test
/// LESS with writes, no culling, triangle lists, color writes on, no blending. The
/// pipelines' static values are different where they can be, so a state that did not
/// arrive shows in the image.
pub(crate) fn set_pass3_state(
    gpu: &Gpu,
    cb: vk::CommandBuffer,
    vertex_buffer: vk::Buffer,
    vertex_buffer_size: u64,
    stride: u64,
) -> Result<(), Fail> {
    let d = &gpu.device;
    let Some(eds) = gpu.loaded.eds.as_ref() else {
        return Err("extended dynamic state is not loaded".into());
    };
    let keep = vk::StencilOp::KEEP;
    let buffers = [vertex_buffer];
    let offsets = [0];
    let sizes = [vertex_buffer_size];
    let strides = [stride];
    // SAFETY: `cb` is recording inside a render pass instance with a pass 3 pipeline
    // bound, which has every one of these states dynamic; the arrays have one element
    // for binding 0, the size covers the whole buffer.
    unsafe {
        d.cmd_set_line_width(cb, 1.0);
        d.cmd_set_depth_bias(cb, 0.0, 0.0, 0.0);
        d.cmd_set_blend_constants(cb, &[1.0, 0.5, 0.25, 0.0]);
        d.cmd_set_depth_bounds(cb, 0.0, 1.0);
        d.cmd_set_stencil_compare_mask(cb, vk::StencilFaceFlags::FRONT_AND_BACK, 0x0f);
        d.cmd_set_stencil_write_mask(cb, vk::StencilFaceFlags::FRONT_AND_BACK, 0xf0);
        d.cmd_set_stencil_reference(cb, vk::StencilFaceFlags::FRONT_AND_BACK, 7);
        match eds {
            EdsApi::Core => {
                d.cmd_set_cull_mode(cb, vk::CullModeFlags::NONE);
                d.cmd_set_front_face(cb, vk::FrontFace::COUNTER_CLOCKWISE);
                d.cmd_set_primitive_topology(cb, vk::PrimitiveTopology::TRIANGLE_LIST);
                d.cmd_bind_vertex_buffers2(cb, 0, &buffers, &offsets, Some(&sizes), Some(&strides));
                d.cmd_set_depth_test_enable(cb, true);
                d.cmd_set_depth_write_enable(cb, true);
                d.cmd_set_depth_compare_op(cb, vk::CompareOp::LESS);
                d.cmd_set_depth_bounds_test_enable(cb, false);
                d.cmd_set_stencil_test_enable(cb, false);
                d.cmd_set_stencil_op(
                    cb,
                    vk::StencilFaceFlags::FRONT_AND_BACK,
                    keep,
                    keep,
                    keep,
                    vk::CompareOp::ALWAYS,
                );
                d.cmd_set_rasterizer_discard_enable(cb, false);
                d.cmd_set_depth_bias_enable(cb, false);
                d.cmd_set_primitive_restart_enable(cb, false);
            }
            EdsApi::Ext(e1, e2) => {
                e1.cmd_set_cull_mode(cb, vk::CullModeFlags::NONE);
                e1.cmd_set_front_face(cb, vk::FrontFace::COUNTER_CLOCKWISE);
                e1.cmd_set_primitive_topology(cb, vk::PrimitiveTopology::TRIANGLE_LIST);
                e1.cmd_bind_vertex_buffers2(
                    cb,
                    0,
                    &buffers,
                    &offsets,
                    Some(&sizes),
                    Some(&strides),
                );
                e1.cmd_set_depth_test_enable(cb, true);
                e1.cmd_set_depth_write_enable(cb, true);
                e1.cmd_set_depth_compare_op(cb, vk::CompareOp::LESS);
                e1.cmd_set_depth_bounds_test_enable(cb, false);
                e1.cmd_set_stencil_test_enable(cb, false);
                e1.cmd_set_stencil_op(
                    cb,
                    vk::StencilFaceFlags::FRONT_AND_BACK,
                    keep,
                    keep,
                    keep,
                    vk::CompareOp::ALWAYS,
                );
                e2.cmd_set_rasterizer_discard_enable(cb, false);
                e2.cmd_set_depth_bias_enable(cb, false);
                e2.cmd_set_primitive_restart_enable(cb, false);
            }
        }
        if let Some(e2) = gpu
            .loaded
            .eds2
            .as_ref()
            .filter(|_| gpu.features.eds2_logic_op)
        {
            e2.cmd_set_logic_op(cb, vk::LogicOp::COPY);
        }
        if let Some(cw) = gpu.loaded.color_write.as_ref() {
            let enables = [vk::TRUE];
            (cw.fp().cmd_set_color_write_enable_ext)(cb, 1, enables.as_ptr());
        }
        if let Some(e3) = gpu.loaded.eds3.as_ref() {
            e3.cmd_set_polygon_mode(cb, vk::PolygonMode::FILL);
            e3.cmd_set_rasterization_samples(cb, vk::SampleCountFlags::TYPE_4);
            e3.cmd_set_alpha_to_coverage_enable(cb, false);
            e3.cmd_set_alpha_to_one_enable(cb, false);
            e3.cmd_set_logic_op_enable(cb, false);
            e3.cmd_set_color_blend_enable(cb, 0, &[vk::FALSE]);
            e3.cmd_set_color_blend_equation(
                cb,
                0,
                &[vk::ColorBlendEquationEXT::default()
                    .src_color_blend_factor(vk::BlendFactor::ONE)
                    .dst_color_blend_factor(vk::BlendFactor::ZERO)
                    .color_blend_op(vk::BlendOp::ADD)
                    .src_alpha_blend_factor(vk::BlendFactor::ONE)
                    .dst_alpha_blend_factor(vk::BlendFactor::ZERO)
                    .alpha_blend_op(vk::BlendOp::ADD)],
            );
            e3.cmd_set_color_write_mask(cb, 0, &[vk::ColorComponentFlags::RGBA]);
            e3.cmd_set_depth_clamp_enable(cb, false);
        }
    }
    set_sample_mask(gpu, cb, !0);
    Ok(())
}

/// Sets the sample mask (VK_EXT_extended_dynamic_state3) when it is dynamic.
pub(crate) fn set_sample_mask(gpu: &Gpu, cb: vk::CommandBuffer, mask: u32) {
    if let Some(e3) = gpu.loaded.eds3.as_ref() {
        // SAFETY: `cb` is recording with a pipeline whose sample mask is dynamic; one
        // word covers 4 samples.
        unsafe { e3.cmd_set_sample_mask(cb, vk::SampleCountFlags::TYPE_4, &[mask]) };
    }
}

/// Sets viewport and scissor with vkCmdSetViewportWithCount / vkCmdSetScissorWithCount.
pub(crate) fn set_viewport_scissor(
    gpu: &Gpu,
    cb: vk::CommandBuffer,
    viewport: vk::Viewport,
    scissor: vk::Rect2D,
) {
    let d = &gpu.device;
    // SAFETY: `cb` is recording with a pass 3 pipeline (both states dynamic with count);
    // one viewport and one scissor.
    unsafe {
        match gpu.loaded.eds.as_ref() {
            Some(EdsApi::Ext(e1, _)) => {
                e1.cmd_set_viewport_with_count(cb, &[viewport]);
                e1.cmd_set_scissor_with_count(cb, &[scissor]);
            }
            _ => {
                d.cmd_set_viewport_with_count(cb, &[viewport]);
                d.cmd_set_scissor_with_count(cb, &[scissor]);
            }
        }
    }
}
