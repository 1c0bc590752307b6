//! Shader modules, the descriptor set layout, the pipeline layout (one set, one push
//! constant range for both stages) and the graphics pipelines: one per subpass of the
//! render pass and one for dynamic rendering, all made by one vkCreateGraphicsPipelines.

use std::io::Cursor;

use ash::vk;

use crate::device::Gpu;
use crate::ignored::ignored;
use crate::report::{Fail, Report, VkContext};
use crate::scene::VERTEX_STRIDE;
use crate::vulkan::{Obj, Vulkan};

/// The shaders, built from `tests/shaders/render.{vert,frag}` by glslangValidator.
const VERTEX_SPIRV: &[u8] = include_bytes!("../../../shaders/render.vert.spv");
const FRAGMENT_SPIRV: &[u8] = include_bytes!("../../../shaders/render.frag.spv");

/// Size of the push constants: `vec4 offset; uint textured;`.
pub(crate) const PUSH_SIZE: u32 = 20;

/// The states every pipeline leaves dynamic (all of Vulkan 1.0's).
pub(crate) const DYNAMIC_STATES: [vk::DynamicState; 9] = [
    vk::DynamicState::VIEWPORT,
    vk::DynamicState::SCISSOR,
    vk::DynamicState::LINE_WIDTH,
    vk::DynamicState::DEPTH_BIAS,
    vk::DynamicState::BLEND_CONSTANTS,
    vk::DynamicState::DEPTH_BOUNDS,
    vk::DynamicState::STENCIL_COMPARE_MASK,
    vk::DynamicState::STENCIL_WRITE_MASK,
    vk::DynamicState::STENCIL_REFERENCE,
];

/// The layouts and pipelines.
pub(crate) struct Pipelines {
    pub(crate) set_layout: vk::DescriptorSetLayout,
    pub(crate) layout: vk::PipelineLayout,
    /// For subpasses 0 and 1 of the render pass.
    pub(crate) subpass: [vk::Pipeline; 2],
    /// For dynamic rendering, when the device has it.
    pub(crate) dynamic: Option<vk::Pipeline>,
    /// The shader modules (pass 3 builds its pipelines from them too).
    pub(crate) vertex: vk::ShaderModule,
    pub(crate) fragment: vk::ShaderModule,
}

pub(crate) fn shader_module(
    vk_: &mut Vulkan,
    device: &ash::Device,
    spirv: &[u8],
    what: &str,
) -> Result<vk::ShaderModule, Fail> {
    let words =
        ash::util::read_spv(&mut Cursor::new(spirv)).map_err(|e| format!("{what} SPIR-V: {e}"))?;
    // SAFETY: valid device; `words` is SPIR-V validated by spirv-val (see
    // tests/tests/render.rs); the module is tracked for destruction.
    let module = unsafe {
        device.create_shader_module(&vk::ShaderModuleCreateInfo::default().code(&words), None)
    }
    .ctx("vkCreateShaderModule")?;
    vk_.track(Obj::ShaderModule(module));
    Ok(module)
}

/// The vertex buffer binding (36-byte stride) and the three attributes.
pub(crate) fn vertex_layout() -> (
    [vk::VertexInputBindingDescription; 1],
    [vk::VertexInputAttributeDescription; 3],
) {
    let vertex_bindings = [vk::VertexInputBindingDescription::default()
        .binding(0)
        .stride(VERTEX_STRIDE)
        .input_rate(vk::VertexInputRate::VERTEX)];
    let attributes = [
        vk::VertexInputAttributeDescription::default()
            .location(0)
            .binding(0)
            .format(vk::Format::R32G32B32_SFLOAT)
            .offset(0),
        vk::VertexInputAttributeDescription::default()
            .location(1)
            .binding(0)
            .format(vk::Format::R32G32B32A32_SFLOAT)
            .offset(12),
        vk::VertexInputAttributeDescription::default()
            .location(2)
            .binding(0)
            .format(vk::Format::R32G32_SFLOAT)
            .offset(28),
    ];
    (vertex_bindings, attributes)
}

/// The set's bindings: uniform buffer at 0, combined image sampler at 1 (with `sampler`
/// immutable), fragment stage.
pub(crate) fn set_bindings(sampler: &[vk::Sampler; 1]) -> [vk::DescriptorSetLayoutBinding<'_>; 2] {
    [
        vk::DescriptorSetLayoutBinding::default()
            .binding(0)
            .descriptor_type(vk::DescriptorType::UNIFORM_BUFFER)
            .descriptor_count(1)
            .stage_flags(vk::ShaderStageFlags::FRAGMENT),
        vk::DescriptorSetLayoutBinding::default()
            .binding(1)
            .descriptor_type(vk::DescriptorType::COMBINED_IMAGE_SAMPLER)
            .descriptor_count(1)
            .stage_flags(vk::ShaderStageFlags::FRAGMENT)
            .immutable_samplers(sampler),
    ]
}

/// Creates the set layout (uniform buffer at binding 0, combined image sampler at
/// binding 1, fragment stage), the pipeline layout and the pipelines.
pub(crate) fn create_pipelines(
    vk_: &mut Vulkan,
    gpu: &Gpu,
    render_pass: vk::RenderPass,
    sampler: vk::Sampler,
    report: &mut Report,
) -> Result<Pipelines, Fail> {
    let device = gpu.device.clone();
    let samplers = [sampler];
    let bindings = set_bindings(&samplers);
    // SAFETY: valid device, create infos that live until the call returns; every
    // object is tracked for destruction (the same holds for the creations below).
    let set_layout = unsafe {
        device.create_descriptor_set_layout(
            &vk::DescriptorSetLayoutCreateInfo::default().bindings(&bindings),
            None,
        )
    }
    .ctx("vkCreateDescriptorSetLayout")?;
    vk_.track(Obj::SetLayout(set_layout));
    let push = [vk::PushConstantRange::default()
        .stage_flags(vk::ShaderStageFlags::VERTEX | vk::ShaderStageFlags::FRAGMENT)
        .offset(0)
        .size(PUSH_SIZE)];
    let set_layouts = [set_layout];
    // SAFETY: see above.
    let layout = unsafe {
        device.create_pipeline_layout(
            &vk::PipelineLayoutCreateInfo::default()
                .set_layouts(&set_layouts)
                .push_constant_ranges(&push),
            None,
        )
    }
    .ctx("vkCreatePipelineLayout")?;
    vk_.track(Obj::PipelineLayout(layout));

    let vertex = shader_module(vk_, &device, VERTEX_SPIRV, "vertex shader")?;
    let fragment = shader_module(vk_, &device, FRAGMENT_SPIRV, "fragment shader")?;
    let stages = [
        vk::PipelineShaderStageCreateInfo::default()
            .stage(vk::ShaderStageFlags::VERTEX)
            .module(vertex)
            .name(c"main"),
        vk::PipelineShaderStageCreateInfo::default()
            .stage(vk::ShaderStageFlags::FRAGMENT)
            .module(fragment)
            .name(c"main"),
    ];
    let (vertex_bindings, attributes) = vertex_layout();
    let vertex_input = vk::PipelineVertexInputStateCreateInfo::default()
        .vertex_binding_descriptions(&vertex_bindings)
        .vertex_attribute_descriptions(&attributes);
    let input_assembly = vk::PipelineInputAssemblyStateCreateInfo::default()
        .topology(vk::PrimitiveTopology::TRIANGLE_LIST);
    let viewport = vk::PipelineViewportStateCreateInfo::default()
        .viewport_count(1)
        .scissor_count(1);
    // Depth bias is on with dynamic factors (set to zero when drawing).
    let raster = vk::PipelineRasterizationStateCreateInfo::default()
        .polygon_mode(vk::PolygonMode::FILL)
        .cull_mode(vk::CullModeFlags::NONE)
        .front_face(vk::FrontFace::COUNTER_CLOCKWISE)
        .depth_bias_enable(true)
        .line_width(1.0);
    let multisample = vk::PipelineMultisampleStateCreateInfo::default()
        .rasterization_samples(vk::SampleCountFlags::TYPE_1);
    let depth = vk::PipelineDepthStencilStateCreateInfo::default()
        .depth_test_enable(true)
        .depth_write_enable(true)
        .depth_compare_op(vk::CompareOp::LESS)
        .max_depth_bounds(1.0);
    let blend_attachments = [vk::PipelineColorBlendAttachmentState::default()
        .blend_enable(false)
        .color_write_mask(vk::ColorComponentFlags::RGBA)];
    let blend = vk::PipelineColorBlendStateCreateInfo::default().attachments(&blend_attachments);
    let dynamic = vk::PipelineDynamicStateCreateInfo::default().dynamic_states(&DYNAMIC_STATES);
    let base = vk::GraphicsPipelineCreateInfo::default()
        .stages(&stages)
        .vertex_input_state(&vertex_input)
        .input_assembly_state(&input_assembly)
        .viewport_state(&viewport)
        .rasterization_state(&raster)
        .multisample_state(&multisample)
        .depth_stencil_state(&depth)
        .color_blend_state(&blend)
        .dynamic_state(&dynamic)
        .layout(layout)
        .base_pipeline_handle(ignored())
        .base_pipeline_index(-1);
    let color_formats = [vk::Format::R8G8B8A8_UNORM];
    let mut rendering = vk::PipelineRenderingCreateInfo::default()
        .color_attachment_formats(&color_formats)
        .depth_attachment_format(gpu.depth_format);
    let mut infos = vec![
        base.render_pass(render_pass).subpass(0),
        base.render_pass(render_pass).subpass(1),
    ];
    if gpu.rendering.is_some() {
        infos.push(base.push_next(&mut rendering));
    }
    // SAFETY: valid device; the create infos and everything they point to live until
    // the call returns; the render pass has subpasses 0 and 1; the third pipeline is
    // only made when dynamic rendering is enabled.
    let pipelines =
        unsafe { device.create_graphics_pipelines(vk::PipelineCache::null(), &infos, None) }
            .map_err(|(made, e)| {
                for p in made.into_iter().filter(|p| *p != vk::Pipeline::null()) {
                    vk_.track(Obj::Pipeline(p));
                }
                format!("vkCreateGraphicsPipelines failed: {e}")
            })?;
    for &p in &pipelines {
        vk_.track(Obj::Pipeline(p));
    }
    report.check(
        pipelines.len() == infos.len() && !pipelines.contains(&vk::Pipeline::null()),
        format!(
            "vkCreateGraphicsPipelines: {} pipelines (render pass subpasses 0 and 1{})",
            pipelines.len(),
            if infos.len() == 3 {
                ", dynamic rendering"
            } else {
                ""
            }
        ),
    );
    let [sub0, sub1] =
        [pipelines.first(), pipelines.get(1)].map(|p| p.copied().unwrap_or(vk::Pipeline::null()));
    Ok(Pipelines {
        set_layout,
        layout,
        subpass: [sub0, sub1],
        dynamic: pipelines.get(2).copied(),
        vertex,
        fragment,
    })
}
