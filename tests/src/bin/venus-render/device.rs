//! The logical device: what the device supports (API version, dynamic rendering,
//! synchronization2, precise occlusion queries, a depth format), the graphics queue,
//! the command pool and the fence every submission waits on.

use ash::vk;

use crate::report::{Fail, Report, VkContext};
use crate::sync::SyncApi;
use crate::vulkan::{Obj, Vulkan};
use crate::Options;

/// Timeout of every fence wait: 60 s.
pub(crate) const WAIT_TIMEOUT_NS: u64 = 60_000_000_000;

/// Depth formats tried in order; only D32_SFLOAT has its depth values checked exactly.
const DEPTH_FORMATS: [vk::Format; 3] = [
    vk::Format::D32_SFLOAT,
    vk::Format::X8_D24_UNORM_PACK32,
    vk::Format::D16_UNORM,
];

/// How vkCmdBeginRendering is reached, if at all.
pub(crate) enum RenderingApi {
    /// Core Vulkan 1.3.
    Core,
    /// VK_KHR_dynamic_rendering on a 1.2 device.
    Khr(ash::khr::dynamic_rendering::Device),
}

/// Device-level state shared by every step.
pub(crate) struct Gpu {
    pub(crate) device: ash::Device,
    pub(crate) queue: vk::Queue,
    pub(crate) memory: vk::PhysicalDeviceMemoryProperties,
    pub(crate) depth_format: vk::Format,
    pub(crate) sync: SyncApi,
    pub(crate) rendering: Option<RenderingApi>,
    /// occlusionQueryPrecise is enabled: occlusion queries count samples exactly.
    pub(crate) precise_occlusion: bool,
    pub(crate) command_pool: vk::CommandPool,
    pub(crate) fence: vk::Fence,
}

impl Gpu {
    /// Allocates `count` command buffers of `level` from the command pool.
    pub(crate) fn command_buffers(
        &self,
        vk_: &mut Vulkan,
        level: vk::CommandBufferLevel,
        count: u32,
    ) -> Result<Vec<vk::CommandBuffer>, Fail> {
        // SAFETY: valid device and pool; the buffers are tracked (freed before the pool).
        let cbs = unsafe {
            self.device.allocate_command_buffers(
                &vk::CommandBufferAllocateInfo::default()
                    .command_pool(self.command_pool)
                    .level(level)
                    .command_buffer_count(count),
            )
        }
        .ctx("vkAllocateCommandBuffers")?;
        vk_.track(Obj::CommandBuffers(self.command_pool, cbs.clone()));
        if cbs.len() != count as usize {
            return Err(format!(
                "vkAllocateCommandBuffers returned {} buffers, not {count}",
                cbs.len()
            ));
        }
        Ok(cbs)
    }

    /// Begins a primary command buffer for one submission.
    pub(crate) fn begin(&self, cb: vk::CommandBuffer) -> Result<(), Fail> {
        // SAFETY: `cb` is a primary command buffer of this device in the initial state.
        unsafe {
            self.device.begin_command_buffer(
                cb,
                &vk::CommandBufferBeginInfo::default()
                    .flags(vk::CommandBufferUsageFlags::ONE_TIME_SUBMIT),
            )
        }
        .ctx("vkBeginCommandBuffer")
    }

    /// Ends `cb`, submits it alone, waits for the fence and resets it.
    pub(crate) fn end_submit_wait(&self, cb: vk::CommandBuffer, what: &str) -> Result<(), Fail> {
        // SAFETY: `cb` is recording.
        unsafe { self.device.end_command_buffer(cb) }.ctx("vkEndCommandBuffer")?;
        self.sync.submit(&self.device, self.queue, cb, self.fence)?;
        // SAFETY: the fence was just submitted; it is reset after the wait, when no
        // submission uses it.
        unsafe {
            self.device
                .wait_for_fences(&[self.fence], true, WAIT_TIMEOUT_NS)
                .ctx(&format!("vkWaitForFences ({what})"))?;
            self.device.reset_fences(&[self.fence]).ctx("vkResetFences")
        }
    }
}

/// The effective API version: what both the instance and the device offer.
fn api_at_least(instance_api: u32, device_api: u32, want: u32) -> bool {
    instance_api >= want && device_api >= want
}

fn has_extension(exts: &[vk::ExtensionProperties], name: &std::ffi::CStr) -> bool {
    exts.iter()
        .any(|e| e.extension_name_as_c_str().is_ok_and(|n| n == name))
}

/// Picks the first depth format usable as an optimal-tiling depth attachment that can
/// be copied from and cleared.
fn pick_depth_format(instance: &ash::Instance, physical: vk::PhysicalDevice) -> Option<vk::Format> {
    let need = vk::FormatFeatureFlags::DEPTH_STENCIL_ATTACHMENT
        | vk::FormatFeatureFlags::TRANSFER_SRC
        | vk::FormatFeatureFlags::TRANSFER_DST;
    DEPTH_FORMATS.into_iter().find(|&f| {
        // SAFETY: `physical` belongs to `instance`.
        let props = unsafe { instance.get_physical_device_format_properties(physical, f) };
        props.optimal_tiling_features.contains(need)
    })
}

pub(crate) fn create_device(
    opts: &Options,
    vk_: &mut Vulkan,
    physical: vk::PhysicalDevice,
    instance_api: u32,
    report: &mut Report,
) -> Result<Gpu, Fail> {
    let instance = vk_.instance()?.clone();
    // SAFETY: `physical` belongs to this instance.
    let (props, memory, families, exts) = unsafe {
        (
            instance.get_physical_device_properties(physical),
            instance.get_physical_device_memory_properties(physical),
            instance.get_physical_device_queue_family_properties(physical),
            instance
                .enumerate_device_extension_properties(physical)
                .ctx("vkEnumerateDeviceExtensionProperties")?,
        )
    };
    let Some(family) = families
        .iter()
        .position(|f| f.queue_flags.contains(vk::QueueFlags::GRAPHICS))
    else {
        return Err("no queue family with VK_QUEUE_GRAPHICS_BIT".into());
    };
    report.check(
        true,
        format!(
            "queue family {family} of {}: {:?}",
            families.len(),
            families[family].queue_flags
        ),
    );

    let Some(depth_format) = pick_depth_format(&instance, physical) else {
        return Err(format!(
            "none of the depth formats {DEPTH_FORMATS:?} is usable"
        ));
    };
    report.check(true, format!("depth attachment format {depth_format:?}"));
    // SAFETY: `physical` belongs to this instance.
    let color = unsafe {
        instance.get_physical_device_format_properties(physical, vk::Format::R8G8B8A8_UNORM)
    };
    use vk::FormatFeatureFlags as FF;
    let color_needs = FF::COLOR_ATTACHMENT
        | FF::SAMPLED_IMAGE
        | FF::BLIT_SRC
        | FF::BLIT_DST
        | FF::TRANSFER_SRC
        | FF::TRANSFER_DST;
    if !report.check(
        color.optimal_tiling_features.contains(color_needs),
        format!(
            "R8G8B8A8_UNORM optimal tiling features include {color_needs:?}: {:?}",
            color.optimal_tiling_features
        ),
    ) {
        return Err("R8G8B8A8_UNORM lacks mandatory features".into());
    }

    // What the device offers: core 1.3, or the KHR extensions on 1.2.
    let core13 = api_at_least(instance_api, props.api_version, vk::API_VERSION_1_3);
    let mut f13 = vk::PhysicalDeviceVulkan13Features::default();
    let mut dr = vk::PhysicalDeviceDynamicRenderingFeatures::default();
    let mut s2 = vk::PhysicalDeviceSynchronization2Features::default();
    let has_dr_ext = has_extension(&exts, ash::khr::dynamic_rendering::NAME);
    let has_s2_ext = has_extension(&exts, ash::khr::synchronization2::NAME);
    let mut feats2 = vk::PhysicalDeviceFeatures2::default();
    if core13 {
        feats2 = feats2.push_next(&mut f13);
    } else {
        if has_dr_ext {
            feats2 = feats2.push_next(&mut dr);
        }
        if has_s2_ext {
            feats2 = feats2.push_next(&mut s2);
        }
    }
    // SAFETY: the device is 1.2+ (checked when the instance was made); the chain holds
    // structs of core 1.3 only on a 1.3 device, of the extensions only when listed.
    unsafe { instance.get_physical_device_features2(physical, &mut feats2) };
    let base = feats2.features;
    let (dynamic_rendering, sync2) = if core13 {
        (
            f13.dynamic_rendering == vk::TRUE,
            f13.synchronization2 == vk::TRUE,
        )
    } else {
        (
            has_dr_ext && dr.dynamic_rendering == vk::TRUE,
            has_s2_ext && s2.synchronization2 == vk::TRUE,
        )
    };
    let sync2 = sync2 && !opts.legacy_sync;
    let via = if core13 { "core 1.3" } else { "KHR extension" };
    report.info(format!(
        "dynamic rendering: {}; synchronization2: {}{}",
        if dynamic_rendering { via } else { "no" },
        if sync2 { via } else { "no" },
        if opts.legacy_sync {
            " (--legacy-sync)"
        } else {
            ""
        }
    ));
    let precise_occlusion = base.occlusion_query_precise == vk::TRUE;
    report.info(format!(
        "occlusionQueryPrecise: {precise_occlusion}, wideLines: {}, depthBiasClamp: {}",
        base.wide_lines == vk::TRUE,
        base.depth_bias_clamp == vk::TRUE
    ));

    let priorities = [1.0f32];
    let queue_info = [vk::DeviceQueueCreateInfo::default()
        .queue_family_index(family as u32)
        .queue_priorities(&priorities)];
    let enabled = vk::PhysicalDeviceFeatures::default().occlusion_query_precise(precise_occlusion);
    let mut ext_names = Vec::new();
    let mut enable13 = vk::PhysicalDeviceVulkan13Features::default()
        .dynamic_rendering(dynamic_rendering)
        .synchronization2(sync2);
    let mut enable_dr =
        vk::PhysicalDeviceDynamicRenderingFeatures::default().dynamic_rendering(true);
    let mut enable_s2 =
        vk::PhysicalDeviceSynchronization2Features::default().synchronization2(true);
    let mut device_info = vk::DeviceCreateInfo::default()
        .queue_create_infos(&queue_info)
        .enabled_features(&enabled);
    if core13 {
        device_info = device_info.push_next(&mut enable13);
    } else {
        if dynamic_rendering {
            ext_names.push(ash::khr::dynamic_rendering::NAME.as_ptr());
            device_info = device_info.push_next(&mut enable_dr);
        }
        if sync2 {
            ext_names.push(ash::khr::synchronization2::NAME.as_ptr());
            device_info = device_info.push_next(&mut enable_s2);
        }
    }
    device_info = device_info.enabled_extension_names(&ext_names);
    // SAFETY: `device_info` and what it points to outlive the call; every enabled
    // feature and extension is supported (checked above).
    let device =
        unsafe { instance.create_device(physical, &device_info, None) }.ctx("vkCreateDevice")?;
    report.check(
        true,
        format!(
            "vkCreateDevice (graphics queue, {} extension(s))",
            ext_names.len()
        ),
    );
    vk_.device = Some(device.clone());

    let sync = match (sync2, core13) {
        (false, _) => SyncApi::Legacy,
        (true, true) => SyncApi::Core,
        (true, false) => SyncApi::Khr(ash::khr::synchronization2::Device::new(&instance, &device)),
    };
    let rendering = match (dynamic_rendering, core13) {
        (false, _) => None,
        (true, true) => Some(RenderingApi::Core),
        (true, false) => Some(RenderingApi::Khr(ash::khr::dynamic_rendering::Device::new(
            &instance, &device,
        ))),
    };

    // SAFETY: family `family` with one queue was requested at device creation.
    let queue = unsafe { device.get_device_queue(family as u32, 0) };
    // SAFETY: valid device, create infos that live until the call returns; the objects
    // are tracked for destruction.
    let command_pool = unsafe {
        device.create_command_pool(
            &vk::CommandPoolCreateInfo::default()
                .flags(vk::CommandPoolCreateFlags::TRANSIENT)
                .queue_family_index(family as u32),
            None,
        )
    }
    .ctx("vkCreateCommandPool")?;
    vk_.track(Obj::CommandPool(command_pool));
    // SAFETY: see above.
    let fence = unsafe { device.create_fence(&vk::FenceCreateInfo::default(), None) }
        .ctx("vkCreateFence")?;
    vk_.track(Obj::Fence(fence));

    Ok(Gpu {
        device,
        queue,
        memory,
        depth_format,
        sync,
        rendering,
        precise_occlusion,
        command_pool,
        fence,
    })
}
