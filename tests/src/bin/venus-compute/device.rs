//! The logical device, its compute queue, command buffers and synchronization objects.

use ash::vk;

use crate::pipeline::{create_pipelines, Pipelines};
use crate::report::{Fail, Report, VkContext};
use crate::vulkan::{Obj, Vulkan};

/// Device-level state shared by every dispatch.
pub(crate) struct Setup {
    pub(crate) queue: vk::Queue,
    pub(crate) memory: vk::PhysicalDeviceMemoryProperties,
    pub(crate) limits: vk::PhysicalDeviceLimits,
    pub(crate) timestamp_bits: u32,
    pub(crate) set_layout: vk::DescriptorSetLayout,
    pub(crate) descriptor_pool: vk::DescriptorPool,
    pub(crate) pipeline_layout: vk::PipelineLayout,
    pub(crate) pipelines: [vk::Pipeline; 2],
    pub(crate) command_buffers: [vk::CommandBuffer; 2],
    pub(crate) fence: vk::Fence,
    pub(crate) binary: vk::Semaphore,
    pub(crate) timeline: vk::Semaphore,
    pub(crate) event: vk::Event,
    pub(crate) query_pool: vk::QueryPool,
    /// Rounds run so far (over all sizes); drives the timeline values and the data.
    pub(crate) round: u64,
}

pub(crate) fn create_device(
    vk_: &mut Vulkan,
    physical: vk::PhysicalDevice,
    report: &mut Report,
) -> Result<Setup, Fail> {
    let Some(instance) = vk_.instance.as_ref() else {
        return Err("no instance".into());
    };
    // SAFETY: `physical` belongs to this instance.
    let (props, memory, families) = unsafe {
        (
            instance.get_physical_device_properties(physical),
            instance.get_physical_device_memory_properties(physical),
            instance.get_physical_device_queue_family_properties(physical),
        )
    };
    let Some(family) = families
        .iter()
        .position(|f| f.queue_flags.contains(vk::QueueFlags::COMPUTE))
    else {
        return Err("no queue family with VK_QUEUE_COMPUTE_BIT".into());
    };
    let timestamp_bits = families[family].timestamp_valid_bits;
    report.check(
        true,
        format!(
            "queue family {family} of {}: {:?}, timestampValidBits {timestamp_bits}",
            families.len(),
            families[family].queue_flags
        ),
    );
    report.check(
        props.limits.timestamp_period > 0.0,
        format!(
            "timestampPeriod {} ns is non-zero",
            props.limits.timestamp_period
        ),
    );
    report.check(
        timestamp_bits > 0,
        format!("queue family supports timestamps ({timestamp_bits} valid bits)"),
    );
    for (i, t) in memory.memory_types[..memory.memory_type_count as usize]
        .iter()
        .enumerate()
    {
        report.info(format!(
            "memory type {i}: heap {} {:?}",
            t.heap_index, t.property_flags
        ));
    }

    let mut v12 = vk::PhysicalDeviceVulkan12Features::default();
    let mut feats2 = vk::PhysicalDeviceFeatures2::default().push_next(&mut v12);
    // SAFETY: the device is 1.2+ (checked by the caller's report; the query itself is
    // core 1.1 and valid on a 1.2 instance); `feats2` chains a valid struct.
    unsafe { instance.get_physical_device_features2(physical, &mut feats2) };
    let timeline_supported = v12.timeline_semaphore == vk::TRUE;
    if !report.check(timeline_supported, "feature timelineSemaphore supported") {
        return Err("timeline semaphores are required".into());
    }

    let priorities = [1.0f32];
    let queue_info = [vk::DeviceQueueCreateInfo::default()
        .queue_family_index(family as u32)
        .queue_priorities(&priorities)];
    let mut enable12 = vk::PhysicalDeviceVulkan12Features::default().timeline_semaphore(true);
    let device_info = vk::DeviceCreateInfo::default()
        .queue_create_infos(&queue_info)
        .push_next(&mut enable12);
    // SAFETY: `device_info` and what it points to outlive the call; the enabled feature
    // is supported (checked above).
    let device =
        unsafe { instance.create_device(physical, &device_info, None) }.ctx("vkCreateDevice")?;
    report.check(true, "vkCreateDevice with timelineSemaphore");
    vk_.device = Some(device);
    let device = vk_.device()?.clone();

    // SAFETY: family `family` with one queue was requested at device creation.
    let queue = unsafe { device.get_device_queue(family as u32, 0) };

    let Pipelines {
        set_layout,
        descriptor_pool,
        pipeline_layout,
        pipelines,
    } = create_pipelines(vk_, &device, &props, report)?;

    // Command pool and two command buffers.
    // SAFETY: valid device, create infos that live until the call returns; every
    // object is tracked for destruction (the same holds for the creations below).
    let command_pool = unsafe {
        device.create_command_pool(
            &vk::CommandPoolCreateInfo::default()
                .flags(vk::CommandPoolCreateFlags::RESET_COMMAND_BUFFER)
                .queue_family_index(family as u32),
            None,
        )
    }
    .ctx("vkCreateCommandPool")?;
    vk_.track(Obj::CommandPool(command_pool));
    // SAFETY: see above.
    let cbs = unsafe {
        device.allocate_command_buffers(
            &vk::CommandBufferAllocateInfo::default()
                .command_pool(command_pool)
                .level(vk::CommandBufferLevel::PRIMARY)
                .command_buffer_count(2),
        )
    }
    .ctx("vkAllocateCommandBuffers")?;
    vk_.track(Obj::CommandBuffers(command_pool, cbs.clone()));
    let [cb_a, cb_b] = cbs[..] else {
        return Err(format!(
            "vkAllocateCommandBuffers returned {} buffers",
            cbs.len()
        ));
    };

    // Synchronization objects.
    // SAFETY: see above.
    let fence = unsafe { device.create_fence(&vk::FenceCreateInfo::default(), None) }
        .ctx("vkCreateFence")?;
    vk_.track(Obj::Fence(fence));
    // SAFETY: see above.
    let binary = unsafe { device.create_semaphore(&vk::SemaphoreCreateInfo::default(), None) }
        .ctx("vkCreateSemaphore (binary)")?;
    vk_.track(Obj::Semaphore(binary));
    let mut type_info = vk::SemaphoreTypeCreateInfo::default()
        .semaphore_type(vk::SemaphoreType::TIMELINE)
        .initial_value(0);
    // SAFETY: see above; timelineSemaphore is enabled.
    let timeline = unsafe {
        device.create_semaphore(
            &vk::SemaphoreCreateInfo::default().push_next(&mut type_info),
            None,
        )
    }
    .ctx("vkCreateSemaphore (timeline)")?;
    vk_.track(Obj::Semaphore(timeline));
    // SAFETY: see above.
    let event = unsafe { device.create_event(&vk::EventCreateInfo::default(), None) }
        .ctx("vkCreateEvent")?;
    vk_.track(Obj::Event(event));
    // SAFETY: see above.
    let query_pool = unsafe {
        device.create_query_pool(
            &vk::QueryPoolCreateInfo::default()
                .query_type(vk::QueryType::TIMESTAMP)
                .query_count(2),
            None,
        )
    }
    .ctx("vkCreateQueryPool")?;
    vk_.track(Obj::QueryPool(query_pool));
    report.check(
        true,
        "command pool, 2 command buffers, fence, binary and timeline semaphores, event, timestamp query pool",
    );

    // SAFETY: freshly created timeline semaphore.
    let initial = unsafe { device.get_semaphore_counter_value(timeline) };
    report.check(
        initial == Ok(0),
        format!("timeline semaphore initial value: {initial:?}"),
    );
    // SAFETY: freshly created event.
    let status = unsafe { device.get_event_status(event) };
    report.check(
        status == Ok(false),
        format!("new event is unsignaled: {status:?}"),
    );
    // SAFETY: freshly created fence.
    let status = unsafe { device.get_fence_status(fence) };
    report.check(
        status == Ok(false),
        format!("new fence is unsignaled: {status:?}"),
    );

    Ok(Setup {
        queue,
        memory,
        limits: props.limits,
        timestamp_bits,
        set_layout,
        descriptor_pool,
        pipeline_layout,
        pipelines,
        command_buffers: [cb_a, cb_b],
        fence,
        binary,
        timeline,
        event,
        query_pool,
        round: 0,
    })
}
