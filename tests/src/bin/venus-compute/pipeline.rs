//! Descriptor set layout and pool, pipeline layout, shader module, pipeline caches and
//! the compute pipelines.

use std::io::Cursor;

use ash::vk;

use crate::report::{Fail, Report, VkContext};
use crate::vulkan::{Obj, Vulkan};

/// The compute shader, built from `tests/shaders/compute.comp` by glslangValidator.
const SPIRV: &[u8] = include_bytes!("../../../shaders/compute.spv");
/// Workgroup width (specialization constant 0).
pub(crate) const LOCAL_SIZE: u32 = 64;
/// The `b` of `in[i] * a + b + i` (specialization constant 1).
pub(crate) const SPEC_B: u32 = 1_000_003;

/// The objects a dispatch binds: layouts, the descriptor pool and two pipelines (built
/// with a fresh cache and with a cache seeded from its data).
pub(crate) struct Pipelines {
    pub(crate) set_layout: vk::DescriptorSetLayout,
    pub(crate) descriptor_pool: vk::DescriptorPool,
    pub(crate) pipeline_layout: vk::PipelineLayout,
    pub(crate) pipelines: [vk::Pipeline; 2],
}

/// Creates the descriptor set layout and pool, the pipeline layout, the shader module,
/// two pipeline caches (the second seeded from the first one's data, then merged) and a
/// pipeline with each; every object is tracked in `vk_`.
pub(crate) fn create_pipelines(
    vk_: &mut Vulkan,
    device: &ash::Device,
    props: &vk::PhysicalDeviceProperties,
    report: &mut Report,
) -> Result<Pipelines, Fail> {
    // Descriptor set layout, pool, pipeline layout with a push-constant range.
    let bindings = [
        vk::DescriptorSetLayoutBinding::default()
            .binding(0)
            .descriptor_type(vk::DescriptorType::STORAGE_BUFFER)
            .descriptor_count(1)
            .stage_flags(vk::ShaderStageFlags::COMPUTE),
        vk::DescriptorSetLayoutBinding::default()
            .binding(1)
            .descriptor_type(vk::DescriptorType::STORAGE_BUFFER)
            .descriptor_count(1)
            .stage_flags(vk::ShaderStageFlags::COMPUTE),
    ];
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
    let pool_sizes = [vk::DescriptorPoolSize::default()
        .ty(vk::DescriptorType::STORAGE_BUFFER)
        .descriptor_count(2)];
    // SAFETY: see above.
    let descriptor_pool = unsafe {
        device.create_descriptor_pool(
            &vk::DescriptorPoolCreateInfo::default()
                .flags(vk::DescriptorPoolCreateFlags::FREE_DESCRIPTOR_SET)
                .max_sets(1)
                .pool_sizes(&pool_sizes),
            None,
        )
    }
    .ctx("vkCreateDescriptorPool")?;
    vk_.track(Obj::DescriptorPool(descriptor_pool));
    let push_ranges = [vk::PushConstantRange::default()
        .stage_flags(vk::ShaderStageFlags::COMPUTE)
        .offset(0)
        .size(12)];
    let set_layouts = [set_layout];
    // SAFETY: see above.
    let pipeline_layout = unsafe {
        device.create_pipeline_layout(
            &vk::PipelineLayoutCreateInfo::default()
                .set_layouts(&set_layouts)
                .push_constant_ranges(&push_ranges),
            None,
        )
    }
    .ctx("vkCreatePipelineLayout")?;
    vk_.track(Obj::PipelineLayout(pipeline_layout));
    report.check(
        true,
        "descriptor set layout (2 storage buffers), descriptor pool, pipeline layout with a 12-byte push-constant range",
    );

    // Shader module from the embedded SPIR-V.
    let code = ash::util::read_spv(&mut Cursor::new(SPIRV))
        .map_err(|e| format!("embedded SPIR-V is malformed: {e}"))?;
    // SAFETY: see above; `code` is SPIR-V validated by spirv-val at build time.
    let module = unsafe {
        device.create_shader_module(&vk::ShaderModuleCreateInfo::default().code(&code), None)
    }
    .ctx("vkCreateShaderModule")?;
    vk_.track(Obj::ShaderModule(module));

    // Pipeline cache, pipeline with specialization constants.
    // SAFETY: see above.
    let cache =
        unsafe { device.create_pipeline_cache(&vk::PipelineCacheCreateInfo::default(), None) }
            .ctx("vkCreatePipelineCache")?;
    vk_.track(Obj::PipelineCache(cache));
    let pipeline = create_pipeline(device, module, pipeline_layout, cache)?;
    vk_.track(Obj::Pipeline(pipeline));
    report.check(
        true,
        format!("compute pipeline from SPIR-V ({} bytes) with specialization constants local_size_x={LOCAL_SIZE} b={SPEC_B}", SPIRV.len()),
    );

    // SAFETY: valid device and cache.
    let data = unsafe { device.get_pipeline_cache_data(cache) }.ctx("vkGetPipelineCacheData")?;
    check_cache_header(&data, props, report);
    // SAFETY: see above; `data` came from vkGetPipelineCacheData of this device.
    let cache2 = unsafe {
        device.create_pipeline_cache(
            &vk::PipelineCacheCreateInfo::default().initial_data(&data),
            None,
        )
    }
    .ctx("vkCreatePipelineCache (with initial data)")?;
    vk_.track(Obj::PipelineCache(cache2));
    // SAFETY: both caches belong to this device and are not used concurrently.
    unsafe { device.merge_pipeline_caches(cache2, &[cache]) }.ctx("vkMergePipelineCaches")?;
    let pipeline2 = create_pipeline(device, module, pipeline_layout, cache2)?;
    vk_.track(Obj::Pipeline(pipeline2));
    report.check(
        true,
        "second pipeline cache seeded with the first one's data, merged, second pipeline created",
    );
    Ok(Pipelines {
        set_layout,
        descriptor_pool,
        pipeline_layout,
        pipelines: [pipeline, pipeline2],
    })
}

fn create_pipeline(
    device: &ash::Device,
    module: vk::ShaderModule,
    layout: vk::PipelineLayout,
    cache: vk::PipelineCache,
) -> Result<vk::Pipeline, Fail> {
    let map = [
        vk::SpecializationMapEntry::default()
            .constant_id(0)
            .offset(0)
            .size(4),
        vk::SpecializationMapEntry::default()
            .constant_id(1)
            .offset(4)
            .size(4),
    ];
    let mut spec_data = Vec::with_capacity(8);
    spec_data.extend_from_slice(&LOCAL_SIZE.to_ne_bytes());
    spec_data.extend_from_slice(&SPEC_B.to_ne_bytes());
    let spec = vk::SpecializationInfo::default()
        .map_entries(&map)
        .data(&spec_data);
    let stage = vk::PipelineShaderStageCreateInfo::default()
        .stage(vk::ShaderStageFlags::COMPUTE)
        .module(module)
        .name(c"main")
        .specialization_info(&spec);
    let info = [vk::ComputePipelineCreateInfo::default()
        .stage(stage)
        .layout(layout)];
    // SAFETY: valid device, module, layout and cache; `info` lives until the call returns.
    match unsafe { device.create_compute_pipelines(cache, &info, None) } {
        Ok(p) if p.len() == 1 => Ok(p[0]),
        Ok(p) => Err(format!(
            "vkCreateComputePipelines returned {} pipelines",
            p.len()
        )),
        Err((_, e)) => Err(format!("vkCreateComputePipelines failed: {e}")),
    }
}

/// Checks the header of vkGetPipelineCacheData (VK_PIPELINE_CACHE_HEADER_VERSION_ONE).
fn check_cache_header(data: &[u8], props: &vk::PhysicalDeviceProperties, report: &mut Report) {
    let word = |i: usize| -> Option<u32> {
        data.get(i * 4..i * 4 + 4)
            .and_then(|b| b.try_into().ok())
            .map(u32::from_le_bytes)
    };
    let (Some(size), Some(version), Some(vendor), Some(device)) =
        (word(0), word(1), word(2), word(3))
    else {
        report.fail(format!(
            "pipeline cache data too short for a header: {} bytes",
            data.len()
        ));
        return;
    };
    let uuid = data.get(16..32);
    let ok = size >= 32
        && data.len() >= size as usize
        && version == vk::PipelineCacheHeaderVersion::ONE.as_raw() as u32
        && vendor == props.vendor_id
        && device == props.device_id
        && uuid == Some(&props.pipeline_cache_uuid[..]);
    report.check(
        ok,
        format!(
            "pipeline cache data ({} bytes): header size {size}, version {version}, vendor 0x{vendor:x}, device 0x{device:x}, uuid {} the device's pipelineCacheUUID",
            data.len(),
            if uuid == Some(&props.pipeline_cache_uuid[..]) { "matches" } else { "DOES NOT match" }
        ),
    );
}
