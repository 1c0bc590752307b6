//! The pass 3 pipelines: a push-descriptor set layout (VK_KHR_push_descriptor), its
//! pipeline layout, and one pipeline per subpass of the multisampled render pass with
//! nearly every state dynamic. Static values differ from what the scene needs wherever
//! the state is dynamic, so a dynamic state lost on the way shows in the image.

use ash::vk;

use crate::device::Gpu;
use crate::eds::{pass3_dynamic_states, HALF_SAMPLE_MASK};
use crate::pipeline::{set_bindings, vertex_layout, Pipelines, PUSH_SIZE};
use crate::report::{Fail, Report, VkContext};
use crate::vulkan::{Obj, Vulkan};

pub(crate) struct Pass3Pipelines {
    pub(crate) layout: vk::PipelineLayout,
    /// For subpasses 0 and 1.
    pub(crate) subpass: [vk::Pipeline; 2],
}

pub(crate) fn create(
    vk_: &mut Vulkan,
    gpu: &Gpu,
    shaders: &Pipelines,
    render_pass: vk::RenderPass,
    sampler: vk::Sampler,
    report: &mut Report,
) -> Result<Pass3Pipelines, Fail> {
    let device = &gpu.device;
    let samplers = [sampler];
    let bindings = set_bindings(&samplers);
    // SAFETY: valid device; VK_KHR_push_descriptor is enabled; create infos live until
    // the calls return; every object is tracked for destruction.
    let set_layout = unsafe {
        device.create_descriptor_set_layout(
            &vk::DescriptorSetLayoutCreateInfo::default()
                .flags(vk::DescriptorSetLayoutCreateFlags::PUSH_DESCRIPTOR_KHR)
                .bindings(&bindings),
            None,
        )
    }
    .ctx("vkCreateDescriptorSetLayout (push descriptors)")?;
    vk_.track(Obj::SetLayout(set_layout));
    let push = [vk::PushConstantRange::default()
        .stage_flags(vk::ShaderStageFlags::VERTEX | vk::ShaderStageFlags::FRAGMENT)
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
    .ctx("vkCreatePipelineLayout (pass 3)")?;
    vk_.track(Obj::PipelineLayout(layout));

    let eds3 = gpu.features.eds3;
    let stages = [
        vk::PipelineShaderStageCreateInfo::default()
            .stage(vk::ShaderStageFlags::VERTEX)
            .module(shaders.vertex)
            .name(c"main"),
        vk::PipelineShaderStageCreateInfo::default()
            .stage(vk::ShaderStageFlags::FRAGMENT)
            .module(shaders.fragment)
            .name(c"main"),
    ];
    let (vertex_bindings, attributes) = vertex_layout();
    let vertex_input = vk::PipelineVertexInputStateCreateInfo::default()
        .vertex_binding_descriptions(&vertex_bindings)
        .vertex_attribute_descriptions(&attributes);
    // Same topology class as the dynamic TRIANGLE_LIST.
    let input_assembly = vk::PipelineInputAssemblyStateCreateInfo::default()
        .topology(vk::PrimitiveTopology::TRIANGLE_STRIP);
    // Viewport and scissor counts are dynamic too (counts 0 here).
    let viewport = vk::PipelineViewportStateCreateInfo::default();
    let raster = vk::PipelineRasterizationStateCreateInfo::default()
        .rasterizer_discard_enable(true)
        .polygon_mode(vk::PolygonMode::FILL)
        .cull_mode(vk::CullModeFlags::FRONT_AND_BACK)
        .front_face(vk::FrontFace::CLOCKWISE)
        .depth_bias_enable(true)
        .line_width(1.0);
    let full_mask = [!0u32];
    let half_mask = [HALF_SAMPLE_MASK];
    let multisample_full = vk::PipelineMultisampleStateCreateInfo::default()
        .rasterization_samples(vk::SampleCountFlags::TYPE_4)
        .sample_mask(&full_mask);
    let multisample_half = multisample_full.sample_mask(&half_mask);
    let depth = vk::PipelineDepthStencilStateCreateInfo::default()
        .depth_test_enable(false)
        .depth_write_enable(false)
        .depth_compare_op(vk::CompareOp::NEVER)
        .max_depth_bounds(1.0);
    let write_mask = if eds3 {
        vk::ColorComponentFlags::empty()
    } else {
        vk::ColorComponentFlags::RGBA
    };
    let blend_attachments = [vk::PipelineColorBlendAttachmentState::default()
        .blend_enable(false)
        .color_write_mask(write_mask)];
    let write_enables = [vk::FALSE];
    let mut color_write =
        vk::PipelineColorWriteCreateInfoEXT::default().color_write_enables(&write_enables);
    let mut color_write_1 = color_write;
    let blend = vk::PipelineColorBlendStateCreateInfo::default()
        .attachments(&blend_attachments)
        .push_next(&mut color_write);
    let blend_1 = vk::PipelineColorBlendStateCreateInfo::default()
        .attachments(&blend_attachments)
        .push_next(&mut color_write_1);
    let states = pass3_dynamic_states(gpu);
    let dynamic = vk::PipelineDynamicStateCreateInfo::default().dynamic_states(&states);
    let base = vk::GraphicsPipelineCreateInfo::default()
        .stages(&stages)
        .vertex_input_state(&vertex_input)
        .input_assembly_state(&input_assembly)
        .viewport_state(&viewport)
        .rasterization_state(&raster)
        .depth_stencil_state(&depth)
        .dynamic_state(&dynamic)
        .layout(layout)
        .render_pass(render_pass);
    // Subpass 1 draws C with half the samples: a static mask without extended dynamic
    // state 3 (where the mask is dynamic and set per draw).
    let infos = [
        base.subpass(0)
            .multisample_state(&multisample_full)
            .color_blend_state(&blend),
        base.subpass(1)
            .multisample_state(if eds3 {
                &multisample_full
            } else {
                &multisample_half
            })
            .color_blend_state(&blend_1),
    ];
    // SAFETY: valid device; the create infos and what they point to live until the call
    // returns; every dynamic state listed is enabled on the device.
    let pipelines =
        unsafe { device.create_graphics_pipelines(vk::PipelineCache::null(), &infos, None) }
            .map_err(|(made, e)| {
                for p in made.into_iter().filter(|p| *p != vk::Pipeline::null()) {
                    vk_.track(Obj::Pipeline(p));
                }
                format!("vkCreateGraphicsPipelines (pass 3) failed: {e}")
            })?;
    for &p in &pipelines {
        vk_.track(Obj::Pipeline(p));
    }
    let [Some(&sub0), Some(&sub1)] = [pipelines.first(), pipelines.get(1)] else {
        return Err("vkCreateGraphicsPipelines (pass 3) returned too few pipelines".into());
    };
    report.check(
        true,
        format!(
            "vkCreateGraphicsPipelines (pass 3): 2 pipelines, 4 samples, {} dynamic states, \
             push-descriptor set layout",
            states.len()
        ),
    );
    Ok(Pass3Pipelines {
        layout,
        subpass: [sub0, sub1],
    })
}
