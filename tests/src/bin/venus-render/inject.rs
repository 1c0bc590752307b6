//! `--inject-null-sampler` (tests only): one invalid descriptor write, a NULL sampler in
//! a combined-image-sampler binding without immutable samplers. Drivers dereference
//! that sampler (lavapipe does), so it is never run on a native driver: through a
//! venus driver, the host must refuse the write and end this context only, and the
//! rest of the run reports the lost device.

use ash::vk;

use crate::device::Gpu;
use crate::report::{Fail, Report, VkContext};
use crate::resources::Resources;
use crate::vulkan::{Obj, Vulkan};

pub(crate) fn null_sampler_write(
    vk_: &mut Vulkan,
    gpu: &Gpu,
    res: &Resources,
    report: &mut Report,
) -> Result<(), Fail> {
    if vk_.validation_active {
        report.fail("--inject-null-sampler needs the validation layer inactive");
        return Ok(());
    }
    let device = &gpu.device;
    let bindings = [vk::DescriptorSetLayoutBinding::default()
        .binding(0)
        .descriptor_type(vk::DescriptorType::COMBINED_IMAGE_SAMPLER)
        .descriptor_count(1)
        .stage_flags(vk::ShaderStageFlags::FRAGMENT)];
    // SAFETY: valid device and create infos; the objects are tracked.
    let layout = unsafe {
        device.create_descriptor_set_layout(
            &vk::DescriptorSetLayoutCreateInfo::default().bindings(&bindings),
            None,
        )
    }
    .ctx("vkCreateDescriptorSetLayout")?;
    vk_.track(Obj::SetLayout(layout));
    let sizes = [vk::DescriptorPoolSize::default()
        .ty(vk::DescriptorType::COMBINED_IMAGE_SAMPLER)
        .descriptor_count(1)];
    // SAFETY: as above.
    let pool = unsafe {
        device.create_descriptor_pool(
            &vk::DescriptorPoolCreateInfo::default()
                .max_sets(1)
                .pool_sizes(&sizes),
            None,
        )
    }
    .ctx("vkCreateDescriptorPool")?;
    vk_.track(Obj::DescriptorPool(pool));
    let layouts = [layout];
    // SAFETY: the pool has room for the set.
    let sets = unsafe {
        device.allocate_descriptor_sets(
            &vk::DescriptorSetAllocateInfo::default()
                .descriptor_pool(pool)
                .set_layouts(&layouts),
        )
    }
    .ctx("vkAllocateDescriptorSets")?;
    let Some(&set) = sets.first() else {
        return Err("no descriptor set".into());
    };
    let image_info = [vk::DescriptorImageInfo::default()
        .sampler(vk::Sampler::null())
        .image_view(res.texture.view)
        .image_layout(vk::ImageLayout::SHADER_READ_ONLY_OPTIMAL)];
    let write = vk::WriteDescriptorSet::default()
        .dst_set(set)
        .dst_binding(0)
        .descriptor_type(vk::DescriptorType::COMBINED_IMAGE_SAMPLER)
        .image_info(&image_info);
    // SAFETY: deliberately invalid (a NULL sampler the binding needs); only run
    // through a venus driver, whose host refuses it (see the module comment).
    unsafe { device.update_descriptor_sets(&[write], &[]) };
    // A round trip: the host has seen the write by the time this answers.
    // SAFETY: valid device.
    let idle = unsafe { device.device_wait_idle() };
    report.info(format!(
        "injected vkUpdateDescriptorSets with a NULL sampler; then vkDeviceWaitIdle: {idle:?}"
    ));
    Ok(())
}
