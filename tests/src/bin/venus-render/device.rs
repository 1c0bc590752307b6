//! The logical device: what the device supports (API version, dynamic rendering,
//! synchronization2, precise occlusion queries, a depth format), the graphics queue,
//! the command pool and the fence every submission waits on.

use ash::vk;

use crate::features::{Features, Loaded};
use crate::ignored::ignored;
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
    pub(crate) physical: vk::PhysicalDevice,
    pub(crate) device: ash::Device,
    pub(crate) queue: vk::Queue,
    pub(crate) memory: vk::PhysicalDeviceMemoryProperties,
    pub(crate) depth_format: vk::Format,
    pub(crate) sync: SyncApi,
    pub(crate) rendering: Option<RenderingApi>,
    /// occlusionQueryPrecise is enabled: occlusion queries count samples exactly.
    pub(crate) precise_occlusion: bool,
    pub(crate) features: Features,
    /// timestampValidBits of the queue family.
    pub(crate) timestamp_bits: u32,
    pub(crate) loaded: Loaded,
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

    /// Begins a primary command buffer for one submission. Its inheritance info, which
    /// Vulkan ignores for primary command buffers, names no render pass or framebuffer
    /// (see `ignored`).
    pub(crate) fn begin(&self, cb: vk::CommandBuffer) -> Result<(), Fail> {
        let inheritance = vk::CommandBufferInheritanceInfo::default()
            .render_pass(ignored())
            .framebuffer(ignored());
        // SAFETY: `cb` is a primary command buffer of this device in the initial state;
        // the inheritance info is valid memory, ignored for primaries.
        unsafe {
            self.device.begin_command_buffer(
                cb,
                &vk::CommandBufferBeginInfo::default()
                    .flags(vk::CommandBufferUsageFlags::ONE_TIME_SUBMIT)
                    .inheritance_info(&inheritance),
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

    // What the device offers: core 1.3, or extensions on 1.2.
    let core13 = api_at_least(instance_api, props.api_version, vk::API_VERSION_1_3);
    let mut features = crate::features::query(&instance, physical, &exts, core13, &props);
    if opts.legacy_sync {
        features.sync2 = false;
    }
    let via = if core13 { "core 1.3" } else { "KHR extension" };
    report.info(format!(
        "dynamic rendering: {}; synchronization2: {}{}",
        if features.dynamic_rendering {
            via
        } else {
            "no"
        },
        if features.sync2 { via } else { "no" },
        if opts.legacy_sync {
            " (--legacy-sync)"
        } else {
            ""
        }
    ));
    report.info(format!("features: {features:?}"));
    let (sync2, dynamic_rendering) = (features.sync2, features.dynamic_rendering);

    let priorities = [1.0f32];
    let queue_info = [vk::DeviceQueueCreateInfo::default()
        .queue_family_index(family as u32)
        .queue_priorities(&priorities)];
    let mut enable = crate::features::Enable::new(&features);
    let extension_count = enable.extensions.len();
    let device_info = enable.chain(
        &features,
        vk::DeviceCreateInfo::default().queue_create_infos(&queue_info),
    );
    // SAFETY: `device_info` and what it points to outlive the call; every enabled
    // feature and extension is supported (checked above).
    let device =
        unsafe { instance.create_device(physical, &device_info, None) }.ctx("vkCreateDevice")?;
    report.check(
        true,
        format!("vkCreateDevice (graphics queue, {extension_count} extension(s))"),
    );
    vk_.device = Some(device.clone());
    let loaded = crate::features::Loaded::new(&features, &instance, &device);

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
        physical,
        device,
        queue,
        memory,
        depth_format,
        sync,
        rendering,
        precise_occlusion: features.occlusion_precise,
        features,
        timestamp_bits: families[family].timestamp_valid_bits,
        loaded,
        command_pool,
        fence,
    })
}
