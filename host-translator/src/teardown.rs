//! Releasing everything a context owns when it goes away (normally, or after the
//! guest made it fatal): rings stop, then every host object is destroyed,
//! children before parents.

use ash::vk;
use ash::vk::Handle;

use crate::context::Shared;
use crate::object_table::Entry;

/// The order object types are destroyed in (pools free their command buffers and
/// descriptor sets; memory goes after everything bound to it).
const ORDER: &[vk::ObjectType] = &[
    vk::ObjectType::COMMAND_POOL,
    vk::ObjectType::DESCRIPTOR_POOL,
    vk::ObjectType::FRAMEBUFFER,
    vk::ObjectType::PIPELINE,
    vk::ObjectType::PIPELINE_CACHE,
    vk::ObjectType::PIPELINE_LAYOUT,
    vk::ObjectType::DESCRIPTOR_SET_LAYOUT,
    vk::ObjectType::DESCRIPTOR_UPDATE_TEMPLATE,
    vk::ObjectType::RENDER_PASS,
    vk::ObjectType::SHADER_MODULE,
    vk::ObjectType::IMAGE_VIEW,
    vk::ObjectType::BUFFER_VIEW,
    vk::ObjectType::SAMPLER,
    vk::ObjectType::SAMPLER_YCBCR_CONVERSION,
    vk::ObjectType::IMAGE,
    vk::ObjectType::BUFFER,
    vk::ObjectType::QUERY_POOL,
    vk::ObjectType::EVENT,
    vk::ObjectType::FENCE,
    vk::ObjectType::SEMAPHORE,
    vk::ObjectType::PRIVATE_DATA_SLOT,
    vk::ObjectType::DEVICE_MEMORY,
];

/// Destroys one object of `dev`.
///
/// # Safety
/// `e.host` must be a live object of type `ty` of `dev`, not in use by the device.
unsafe fn destroy_one(dev: &ash::Device, ty: vk::ObjectType, e: &Entry) {
    let h = e.host;
    // SAFETY: caller contract.
    unsafe {
        match ty {
            vk::ObjectType::COMMAND_POOL => {
                dev.destroy_command_pool(vk::CommandPool::from_raw(h), None)
            }
            vk::ObjectType::DESCRIPTOR_POOL => {
                dev.destroy_descriptor_pool(vk::DescriptorPool::from_raw(h), None)
            }
            vk::ObjectType::FRAMEBUFFER => {
                dev.destroy_framebuffer(vk::Framebuffer::from_raw(h), None)
            }
            vk::ObjectType::PIPELINE => dev.destroy_pipeline(vk::Pipeline::from_raw(h), None),
            vk::ObjectType::PIPELINE_CACHE => {
                dev.destroy_pipeline_cache(vk::PipelineCache::from_raw(h), None)
            }
            vk::ObjectType::PIPELINE_LAYOUT => {
                dev.destroy_pipeline_layout(vk::PipelineLayout::from_raw(h), None)
            }
            vk::ObjectType::DESCRIPTOR_SET_LAYOUT => {
                dev.destroy_descriptor_set_layout(vk::DescriptorSetLayout::from_raw(h), None)
            }
            vk::ObjectType::DESCRIPTOR_UPDATE_TEMPLATE => dev.destroy_descriptor_update_template(
                vk::DescriptorUpdateTemplate::from_raw(h),
                None,
            ),
            vk::ObjectType::RENDER_PASS => {
                dev.destroy_render_pass(vk::RenderPass::from_raw(h), None)
            }
            vk::ObjectType::SHADER_MODULE => {
                dev.destroy_shader_module(vk::ShaderModule::from_raw(h), None)
            }
            vk::ObjectType::IMAGE_VIEW => dev.destroy_image_view(vk::ImageView::from_raw(h), None),
            vk::ObjectType::BUFFER_VIEW => {
                dev.destroy_buffer_view(vk::BufferView::from_raw(h), None)
            }
            vk::ObjectType::SAMPLER => dev.destroy_sampler(vk::Sampler::from_raw(h), None),
            vk::ObjectType::SAMPLER_YCBCR_CONVERSION => {
                dev.destroy_sampler_ycbcr_conversion(vk::SamplerYcbcrConversion::from_raw(h), None)
            }
            vk::ObjectType::IMAGE => dev.destroy_image(vk::Image::from_raw(h), None),
            vk::ObjectType::BUFFER => dev.destroy_buffer(vk::Buffer::from_raw(h), None),
            vk::ObjectType::QUERY_POOL => dev.destroy_query_pool(vk::QueryPool::from_raw(h), None),
            vk::ObjectType::EVENT => dev.destroy_event(vk::Event::from_raw(h), None),
            vk::ObjectType::FENCE => dev.destroy_fence(vk::Fence::from_raw(h), None),
            vk::ObjectType::SEMAPHORE => dev.destroy_semaphore(vk::Semaphore::from_raw(h), None),
            vk::ObjectType::PRIVATE_DATA_SLOT => {
                dev.destroy_private_data_slot(vk::PrivateDataSlot::from_raw(h), None)
            }
            vk::ObjectType::DEVICE_MEMORY => dev.free_memory(vk::DeviceMemory::from_raw(h), None),
            _ => {}
        }
    }
}

/// Stops the context's threads and destroys every host object it still owns.
pub fn destroy_all(shared: &Shared) {
    shared.shutdown();
    // Threads first, without the lock (they may be waiting for it).
    let (rings, timelines) = {
        let mut st = shared.lock();
        (
            std::mem::take(&mut st.rings),
            std::mem::take(&mut st.timelines),
        )
    };
    drop(rings);
    // Rings the guest destroyed may still be finishing a host wait.
    crate::ring::join_destroyed(shared);
    let mut st = shared.lock();
    let devices: Vec<u64> = st.devices.keys().copied().collect();
    for d in devices {
        if let Some(info) = st.devices.get(&d) {
            let dev = info.ash.clone();
            // SAFETY: a live device of this context.
            unsafe {
                let _ = dev.device_wait_idle();
            }
            let mut leaked = 0usize;
            for ty in ORDER {
                let gone = st.objects.remove_where(|t, e| t == *ty && e.device == d);
                for (_, e) in &gone {
                    // SAFETY: the guest left this object alive; the device is idle.
                    unsafe { destroy_one(&dev, *ty, e) };
                }
                leaked += gone.len();
            }
            if leaked > 0 {
                tracing::debug!(
                    ctx = shared.id,
                    leaked,
                    "destroyed objects the guest left behind"
                );
            }
            // SAFETY: all children are gone.
            unsafe { dev.destroy_device(None) };
        }
        crate::device::forget(&mut st, d);
    }
    drop(timelines);
    let instances: Vec<u64> = st.instances.keys().copied().collect();
    for i in instances {
        if let Some(info) = st.instances.remove(&i) {
            // SAFETY: a live instance whose devices are gone.
            unsafe { info.ash.destroy_instance(None) };
        }
    }
    st.objects.remove_where(|_, _| true);
    st.tables.clear();
    st.physical.clear();
    st.resources.clear();
    st.memories.clear();
    st.replies.clear();
}
