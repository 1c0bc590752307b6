//! Transform feedback (VK_EXT_transform_feedback) inside dynamic rendering without
//! attachments: a vertex-only pipeline with rasterization discarded captures
//! (2 · position, 1) of the 9 vertices; a transform-feedback stream query counts the
//! primitives; the counter buffer written at the end drives vkCmdDrawIndirectByteCountEXT,
//! whose vertices are captured again. Vertex input is dynamic (vkCmdSetVertexInputEXT)
//! when the device has VK_EXT_vertex_input_dynamic_state. Null handles and null optional
//! arrays are passed where Vulkan allows them (pCounterBuffers = {VK_NULL_HANDLE},
//! pCounterBufferOffsets = NULL, pSizes = NULL).

use ash::vk;

use crate::device::{Gpu, RenderingApi};
use crate::ignored::ignored_struct;
use crate::memory::create_buffer;
use crate::pipeline::shader_module;
use crate::record::vk_rect;
use crate::report::{Fail, Report, VkContext};
use crate::resources::Resources;
use crate::scene::{vertices, FULL_RECT, VERTEX_STRIDE};
use crate::sync::Scope;
use crate::vulkan::{Obj, Vulkan};

const SPIRV: &[u8] = include_bytes!("../../../shaders/xfb.vert.spv");
/// Captured bytes per vertex (one vec4) and vertices per round.
const CAPTURE_STRIDE: u32 = 16;
const VERTICES: u32 = 9;
const ROUND_BYTES: u64 = (CAPTURE_STRIDE * VERTICES) as u64;

fn create_pipeline(vk_: &mut Vulkan, gpu: &Gpu) -> Result<vk::Pipeline, Fail> {
    let device = gpu.device.clone();
    let validation_active = vk_.validation_active;
    let module = shader_module(vk_, &device, SPIRV, "transform feedback vertex shader")?;
    // SAFETY: valid device; an empty layout; tracked for destruction.
    let layout =
        unsafe { device.create_pipeline_layout(&vk::PipelineLayoutCreateInfo::default(), None) }
            .ctx("vkCreatePipelineLayout (transform feedback)")?;
    vk_.track(Obj::PipelineLayout(layout));
    let stages = [vk::PipelineShaderStageCreateInfo::default()
        .stage(vk::ShaderStageFlags::VERTEX)
        .module(module)
        .name(c"main")];
    let bindings = [vk::VertexInputBindingDescription::default()
        .binding(0)
        .stride(VERTEX_STRIDE)
        .input_rate(vk::VertexInputRate::VERTEX)];
    let attributes = [vk::VertexInputAttributeDescription::default()
        .location(0)
        .binding(0)
        .format(vk::Format::R32G32B32_SFLOAT)
        .offset(0)];
    let vertex_input = vk::PipelineVertexInputStateCreateInfo::default()
        .vertex_binding_descriptions(&bindings)
        .vertex_attribute_descriptions(&attributes);
    let input_assembly = vk::PipelineInputAssemblyStateCreateInfo::default()
        .topology(vk::PrimitiveTopology::TRIANGLE_LIST);
    let raster = vk::PipelineRasterizationStateCreateInfo::default()
        .rasterizer_discard_enable(true)
        .line_width(1.0);
    let dynamic_states = [vk::DynamicState::VERTEX_INPUT_EXT];
    let dynamic = vk::PipelineDynamicStateCreateInfo::default().dynamic_states(&dynamic_states);
    let mut rendering = vk::PipelineRenderingCreateInfo::default();
    let mut info = vk::GraphicsPipelineCreateInfo::default()
        .stages(&stages)
        .input_assembly_state(&input_assembly)
        .rasterization_state(&raster)
        .layout(layout)
        .push_next(&mut rendering);
    info = if gpu.loaded.vertex_input.is_some() {
        info.dynamic_state(&dynamic)
    } else {
        info.vertex_input_state(&vertex_input)
    };
    // Ignored state (see `ignored`): no tessellation stages, rasterization discarded,
    // and the vertex input state when it is dynamic. Not with the validation layer
    // active: version 1.3.239 reads them (and crashes).
    if !validation_active {
        info.p_tessellation_state = ignored_struct();
        info.p_viewport_state = ignored_struct();
        info.p_multisample_state = ignored_struct();
        info.p_depth_stencil_state = ignored_struct();
        info.p_color_blend_state = ignored_struct();
        if gpu.loaded.vertex_input.is_some() {
            info.p_vertex_input_state = ignored_struct();
        }
    }
    // SAFETY: valid device with dynamic rendering and transform feedback enabled; the
    // create info and what it points to live until the call returns; tracked.
    let pipelines =
        unsafe { device.create_graphics_pipelines(vk::PipelineCache::null(), &[info], None) }
            .map_err(|(_, e)| {
                format!("vkCreateGraphicsPipelines (transform feedback) failed: {e}")
            })?;
    let Some(&pipeline) = pipelines.first() else {
        return Err("vkCreateGraphicsPipelines returned no pipeline".into());
    };
    vk_.track(Obj::Pipeline(pipeline));
    Ok(pipeline)
}

fn begin_rendering(gpu: &Gpu, rendering: &RenderingApi, cb: vk::CommandBuffer) {
    let info = vk::RenderingInfo::default()
        .render_area(vk_rect(FULL_RECT))
        .layer_count(1);
    // SAFETY: `cb` is recording outside a render pass; no attachments.
    unsafe {
        match rendering {
            RenderingApi::Core => gpu.device.cmd_begin_rendering(cb, &info),
            RenderingApi::Khr(khr) => khr.cmd_begin_rendering(cb, &info),
        }
    }
}

fn end_rendering(gpu: &Gpu, rendering: &RenderingApi, cb: vk::CommandBuffer) {
    // SAFETY: inside the rendering begun by `begin_rendering`.
    unsafe {
        match rendering {
            RenderingApi::Core => gpu.device.cmd_end_rendering(cb),
            RenderingApi::Khr(khr) => khr.cmd_end_rendering(cb),
        }
    }
}

/// Binds the pipeline, the vertex buffer and (when dynamic) the vertex input.
fn bind(gpu: &Gpu, cb: vk::CommandBuffer, pipeline: vk::Pipeline, res: &Resources) {
    let d = &gpu.device;
    // SAFETY: `cb` is recording inside a rendering instance compatible with the
    // pipeline; the vertex buffer is live.
    unsafe {
        d.cmd_bind_pipeline(cb, vk::PipelineBindPoint::GRAPHICS, pipeline);
        d.cmd_bind_vertex_buffers(cb, 0, &[res.vertex.buffer], &[0]);
    }
    if let Some(vi) = gpu.loaded.vertex_input.as_ref() {
        let bindings = [vk::VertexInputBindingDescription2EXT::default()
            .binding(0)
            .stride(VERTEX_STRIDE)
            .input_rate(vk::VertexInputRate::VERTEX)
            .divisor(1)];
        let attributes = [vk::VertexInputAttributeDescription2EXT::default()
            .location(0)
            .binding(0)
            .format(vk::Format::R32G32B32_SFLOAT)
            .offset(0)];
        // SAFETY: the bound pipeline has dynamic vertex input.
        unsafe { vi.cmd_set_vertex_input(cb, &bindings, &attributes) };
    }
}

pub(crate) fn run(
    vk_: &mut Vulkan,
    gpu: &Gpu,
    res: &Resources,
    cb: vk::CommandBuffer,
    report: &mut Report,
) -> Result<(), Fail> {
    let (Some(tf), Some(rendering)) = (
        gpu.loaded.transform_feedback.as_ref(),
        gpu.rendering.as_ref(),
    ) else {
        report.info(
            "transform feedback skipped: needs VK_EXT_transform_feedback and dynamic rendering",
        );
        return Ok(());
    };
    let tf = tf.fp();
    let pipeline = create_pipeline(vk_, gpu)?;
    use vk::BufferUsageFlags as B;
    let capture = create_buffer(
        vk_,
        gpu,
        2 * ROUND_BYTES,
        B::TRANSFORM_FEEDBACK_BUFFER_EXT,
        true,
    )?;
    let counter = create_buffer(
        vk_,
        gpu,
        16,
        B::TRANSFORM_FEEDBACK_COUNTER_BUFFER_EXT | B::INDIRECT_BUFFER,
        true,
    )?;
    let device = &gpu.device;
    // SAFETY: valid device with transform feedback; tracked for destruction.
    let pool = unsafe {
        device.create_query_pool(
            &vk::QueryPoolCreateInfo::default()
                .query_type(vk::QueryType::TRANSFORM_FEEDBACK_STREAM_EXT)
                .query_count(1),
            None,
        )
    }
    .ctx("vkCreateQueryPool (transform feedback stream)")?;
    vk_.track(Obj::QueryPool(pool));

    use vk::AccessFlags2 as A;
    use vk::PipelineStageFlags2 as S;
    let xfb_write = Scope::new(
        S::TRANSFORM_FEEDBACK_EXT,
        A::from_raw(
            A::TRANSFORM_FEEDBACK_WRITE_EXT.as_raw()
                | A::TRANSFORM_FEEDBACK_COUNTER_WRITE_EXT.as_raw(),
        ),
    );
    let counter_read = Scope::new(S::DRAW_INDIRECT, A::TRANSFORM_FEEDBACK_COUNTER_READ_EXT);
    let host_read = Scope::new(S::HOST, A::HOST_READ);

    gpu.begin(cb)?;
    // SAFETY: `cb` is recording outside a render pass.
    unsafe { device.cmd_reset_query_pool(cb, pool, 0, 1) };
    // Round 1: 9 vertices captured from offset 0 (whole buffer: pSizes NULL), counters
    // started from zero (one VK_NULL_HANDLE counter buffer, offsets NULL), the byte
    // count written to `counter` at the end.
    begin_rendering(gpu, rendering, cb);
    bind(gpu, cb, pipeline, res);
    let null_counter = [vk::Buffer::null()];
    let counters = [counter.buffer];
    let zero = [0u64];
    // SAFETY: `cb` is recording inside a rendering instance with a transform-feedback
    // pipeline bound; the arrays have the counts given (or are null where allowed); the
    // capture buffer holds 2 rounds of 9 vec4.
    unsafe {
        (tf.cmd_bind_transform_feedback_buffers_ext)(
            cb,
            0,
            1,
            &capture.buffer,
            zero.as_ptr(),
            std::ptr::null(),
        );
        (tf.cmd_begin_query_indexed_ext)(cb, pool, 0, vk::QueryControlFlags::empty(), 0);
        (tf.cmd_begin_transform_feedback_ext)(cb, 0, 1, null_counter.as_ptr(), std::ptr::null());
        device.cmd_draw(cb, VERTICES, 1, 0, 0);
        (tf.cmd_end_transform_feedback_ext)(cb, 0, 1, counters.as_ptr(), zero.as_ptr());
        (tf.cmd_end_query_indexed_ext)(cb, pool, 0, 0);
    }
    end_rendering(gpu, rendering, cb);
    gpu.sync
        .barrier(device, cb, &[(xfb_write, counter_read)], &[]);
    // Round 2: vkCmdDrawIndirectByteCountEXT draws byte count / 16 = 9 vertices, captured
    // at offset 144.
    begin_rendering(gpu, rendering, cb);
    bind(gpu, cb, pipeline, res);
    let second = [ROUND_BYTES];
    // SAFETY: as above; the counter buffer was written by round 1 (barrier above).
    unsafe {
        (tf.cmd_bind_transform_feedback_buffers_ext)(
            cb,
            0,
            1,
            &capture.buffer,
            second.as_ptr(),
            second.as_ptr(),
        );
        (tf.cmd_begin_transform_feedback_ext)(cb, 0, 0, std::ptr::null(), std::ptr::null());
        (tf.cmd_draw_indirect_byte_count_ext)(cb, 1, 0, counter.buffer, 0, 0, CAPTURE_STRIDE);
        (tf.cmd_end_transform_feedback_ext)(cb, 0, 0, std::ptr::null(), std::ptr::null());
    }
    end_rendering(gpu, rendering, cb);
    gpu.sync.barrier(device, cb, &[(xfb_write, host_read)], &[]);
    gpu.end_submit_wait(cb, "transform feedback")?;
    report.check(
        true,
        format!(
            "transform feedback submitted: vkCmdBindTransformFeedbackBuffersEXT, \
             vkCmdBeginTransformFeedbackEXT, vkCmdEndTransformFeedbackEXT, \
             vkCmdBeginQueryIndexedEXT, vkCmdEndQueryIndexedEXT, \
             vkCmdDrawIndirectByteCountEXT{}",
            if gpu.loaded.vertex_input.is_some() {
                ", vkCmdSetVertexInputEXT"
            } else {
                ""
            }
        ),
    );

    let floats: Vec<f32> = capture
        .bytes(0, (2 * ROUND_BYTES) as usize)?
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    let want: Vec<f32> = vertices()
        .iter()
        .flat_map(|v| {
            [
                v.position[0] * 2.0,
                v.position[1] * 2.0,
                v.position[2] * 2.0,
                1.0,
            ]
        })
        .collect();
    let (first, second) = floats.split_at(want.len());
    report.check(
        first == want.as_slice(),
        format!("transform feedback captured (2 * position, 1) of the {VERTICES} vertices exactly"),
    );
    report.check(
        second == want.as_slice(),
        "vkCmdDrawIndirectByteCountEXT drew the same 9 vertices again (captured at offset 144)",
    );
    let count = counter.bytes(0, 4)?;
    let count = u32::from_le_bytes([count[0], count[1], count[2], count[3]]);
    report.check(
        u64::from(count) == ROUND_BYTES,
        format!("transform feedback counter: {count} bytes (want {ROUND_BYTES})"),
    );
    let mut results = [[0u64; 2]; 1];
    // SAFETY: one query (two 64-bit values: primitives written and needed), waited for.
    let got = unsafe {
        device.get_query_pool_results(
            pool,
            0,
            &mut results,
            vk::QueryResultFlags::TYPE_64 | vk::QueryResultFlags::WAIT,
        )
    };
    report.check(
        got.is_ok() && results[0] == [3, 3],
        format!("transform feedback stream query: {got:?}, primitives written / needed {:?} (want [3, 3])",
            results[0]
        ),
    );
    Ok(())
}
