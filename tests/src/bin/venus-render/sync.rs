//! Barriers and submissions, with synchronization2 (vkCmdPipelineBarrier2,
//! vkQueueSubmit2) when the device has it, else the Vulkan 1.0 commands.
//!
//! Barriers are described with the synchronization2 flag types but use only the stage
//! and access bits that Vulkan 1.0 has (their values are the same), so the legacy path
//! converts them bit for bit.

use ash::vk;

use crate::report::{Fail, VkContext};

/// How barriers and submissions are recorded.
pub(crate) enum SyncApi {
    /// vkCmdPipelineBarrier and vkQueueSubmit.
    Legacy,
    /// Core Vulkan 1.3 vkCmdPipelineBarrier2 and vkQueueSubmit2.
    Core,
    /// VK_KHR_synchronization2 on a 1.2 device.
    Khr(ash::khr::synchronization2::Device),
}

/// Stages and accesses on each side of a dependency.
#[derive(Clone, Copy)]
pub(crate) struct Scope {
    pub(crate) stage: vk::PipelineStageFlags2,
    pub(crate) access: vk::AccessFlags2,
}

impl Scope {
    pub(crate) const fn new(stage: vk::PipelineStageFlags2, access: vk::AccessFlags2) -> Scope {
        Scope { stage, access }
    }
}

/// Commonly used scopes.
pub(crate) mod scopes {
    use super::Scope;
    use ash::vk::{AccessFlags2 as A, PipelineStageFlags2 as S};

    /// Nothing before (first use of a resource, layout UNDEFINED).
    pub(crate) const NONE: Scope = Scope::new(S::TOP_OF_PIPE, A::empty());
    pub(crate) const TRANSFER_WRITE: Scope = Scope::new(S::TRANSFER, A::TRANSFER_WRITE);
    pub(crate) const TRANSFER_READ: Scope = Scope::new(S::TRANSFER, A::TRANSFER_READ);
    pub(crate) const HOST_READ: Scope = Scope::new(S::HOST, A::HOST_READ);
    pub(crate) const FRAGMENT_READ: Scope = Scope::new(
        S::FRAGMENT_SHADER,
        A::from_raw(A::UNIFORM_READ.as_raw() | A::SHADER_READ.as_raw()),
    );
    pub(crate) const COLOR_WRITE: Scope = Scope::new(
        S::COLOR_ATTACHMENT_OUTPUT,
        A::from_raw(A::COLOR_ATTACHMENT_WRITE.as_raw() | A::COLOR_ATTACHMENT_READ.as_raw()),
    );
    pub(crate) const DEPTH_WRITE: Scope = Scope::new(
        S::from_raw(S::EARLY_FRAGMENT_TESTS.as_raw() | S::LATE_FRAGMENT_TESTS.as_raw()),
        A::from_raw(
            A::DEPTH_STENCIL_ATTACHMENT_WRITE.as_raw() | A::DEPTH_STENCIL_ATTACHMENT_READ.as_raw(),
        ),
    );
}

/// One image layout transition (whole image, one mip level, one layer).
pub(crate) struct ImageBarrier {
    pub(crate) image: vk::Image,
    pub(crate) aspect: vk::ImageAspectFlags,
    pub(crate) old: vk::ImageLayout,
    pub(crate) new: vk::ImageLayout,
    pub(crate) src: Scope,
    pub(crate) dst: Scope,
}

fn range(aspect: vk::ImageAspectFlags) -> vk::ImageSubresourceRange {
    vk::ImageSubresourceRange::default()
        .aspect_mask(aspect)
        .level_count(1)
        .layer_count(1)
}

fn stage1(s: vk::PipelineStageFlags2) -> vk::PipelineStageFlags {
    vk::PipelineStageFlags::from_raw(s.as_raw() as u32)
}

fn access1(a: vk::AccessFlags2) -> vk::AccessFlags {
    vk::AccessFlags::from_raw(a.as_raw() as u32)
}

impl SyncApi {
    /// Whether vkCmdPipelineBarrier2 / vkQueueSubmit2 are used.
    pub(crate) fn is_sync2(&self) -> bool {
        !matches!(self, SyncApi::Legacy)
    }

    /// Records one barrier command: global memory dependencies and image transitions.
    pub(crate) fn barrier(
        &self,
        device: &ash::Device,
        cb: vk::CommandBuffer,
        memory: &[(Scope, Scope)],
        images: &[ImageBarrier],
    ) {
        if let SyncApi::Legacy = self {
            let mut src = vk::PipelineStageFlags::empty();
            let mut dst = vk::PipelineStageFlags::empty();
            let mems: Vec<vk::MemoryBarrier<'_>> = memory
                .iter()
                .map(|(s, d)| {
                    src |= stage1(s.stage);
                    dst |= stage1(d.stage);
                    vk::MemoryBarrier::default()
                        .src_access_mask(access1(s.access))
                        .dst_access_mask(access1(d.access))
                })
                .collect();
            let imgs: Vec<vk::ImageMemoryBarrier<'_>> = images
                .iter()
                .map(|b| {
                    src |= stage1(b.src.stage);
                    dst |= stage1(b.dst.stage);
                    vk::ImageMemoryBarrier::default()
                        .src_access_mask(access1(b.src.access))
                        .dst_access_mask(access1(b.dst.access))
                        .old_layout(b.old)
                        .new_layout(b.new)
                        .src_queue_family_index(vk::QUEUE_FAMILY_IGNORED)
                        .dst_queue_family_index(vk::QUEUE_FAMILY_IGNORED)
                        .image(b.image)
                        .subresource_range(range(b.aspect))
                })
                .collect();
            // SAFETY: `cb` is recording; the barriers describe images of this device.
            unsafe {
                device.cmd_pipeline_barrier(
                    cb,
                    src,
                    dst,
                    vk::DependencyFlags::empty(),
                    &mems,
                    &[],
                    &imgs,
                )
            };
            return;
        }
        let mems: Vec<vk::MemoryBarrier2<'_>> = memory
            .iter()
            .map(|(s, d)| {
                vk::MemoryBarrier2::default()
                    .src_stage_mask(s.stage)
                    .src_access_mask(s.access)
                    .dst_stage_mask(d.stage)
                    .dst_access_mask(d.access)
            })
            .collect();
        let imgs: Vec<vk::ImageMemoryBarrier2<'_>> = images
            .iter()
            .map(|b| {
                vk::ImageMemoryBarrier2::default()
                    .src_stage_mask(b.src.stage)
                    .src_access_mask(b.src.access)
                    .dst_stage_mask(b.dst.stage)
                    .dst_access_mask(b.dst.access)
                    .old_layout(b.old)
                    .new_layout(b.new)
                    .src_queue_family_index(vk::QUEUE_FAMILY_IGNORED)
                    .dst_queue_family_index(vk::QUEUE_FAMILY_IGNORED)
                    .image(b.image)
                    .subresource_range(range(b.aspect))
            })
            .collect();
        let info = vk::DependencyInfo::default()
            .memory_barriers(&mems)
            .image_memory_barriers(&imgs);
        // SAFETY: `cb` is recording on a device with synchronization2 enabled.
        unsafe {
            match self {
                SyncApi::Khr(s2) => s2.cmd_pipeline_barrier2(cb, &info),
                _ => device.cmd_pipeline_barrier2(cb, &info),
            }
        }
    }

    /// Records vkCmdResetEvent(2) at the transfer stage.
    pub(crate) fn reset_event(
        &self,
        device: &ash::Device,
        cb: vk::CommandBuffer,
        event: vk::Event,
    ) {
        let stage = vk::PipelineStageFlags2::TRANSFER;
        // SAFETY: `cb` is recording outside a render pass; no wait on `event` is pending.
        unsafe {
            match self {
                SyncApi::Legacy => device.cmd_reset_event(cb, event, stage1(stage)),
                SyncApi::Core => device.cmd_reset_event2(cb, event, stage),
                SyncApi::Khr(s2) => s2.cmd_reset_event2(cb, event, stage),
            }
        }
    }

    /// Records vkCmdSetEvent(2) then vkCmdWaitEvents(2) on `event` carrying the
    /// dependencies (a split barrier with nothing in between).
    pub(crate) fn set_and_wait_event(
        &self,
        device: &ash::Device,
        cb: vk::CommandBuffer,
        event: vk::Event,
        memory: &[(Scope, Scope)],
        images: &[ImageBarrier],
    ) {
        if let SyncApi::Legacy = self {
            let mut src = vk::PipelineStageFlags::empty();
            let mut dst = vk::PipelineStageFlags::empty();
            let mems: Vec<vk::MemoryBarrier<'_>> = memory
                .iter()
                .map(|(s, d)| {
                    src |= stage1(s.stage);
                    dst |= stage1(d.stage);
                    vk::MemoryBarrier::default()
                        .src_access_mask(access1(s.access))
                        .dst_access_mask(access1(d.access))
                })
                .collect();
            let imgs: Vec<vk::ImageMemoryBarrier<'_>> = images
                .iter()
                .map(|b| {
                    src |= stage1(b.src.stage);
                    dst |= stage1(b.dst.stage);
                    vk::ImageMemoryBarrier::default()
                        .src_access_mask(access1(b.src.access))
                        .dst_access_mask(access1(b.dst.access))
                        .old_layout(b.old)
                        .new_layout(b.new)
                        .src_queue_family_index(vk::QUEUE_FAMILY_IGNORED)
                        .dst_queue_family_index(vk::QUEUE_FAMILY_IGNORED)
                        .image(b.image)
                        .subresource_range(range(b.aspect))
                })
                .collect();
            // SAFETY: `cb` is recording outside a render pass; the event is set with the
            // source stages the wait names; the barriers describe images of this device
            // without layout changes (vkCmdWaitEvents cannot transition from a later
            // layout than it was set with).
            unsafe {
                device.cmd_set_event(cb, event, src);
                device.cmd_wait_events(cb, &[event], src, dst, &mems, &[], &imgs);
            }
            return;
        }
        let mems: Vec<vk::MemoryBarrier2<'_>> = memory
            .iter()
            .map(|(s, d)| {
                vk::MemoryBarrier2::default()
                    .src_stage_mask(s.stage)
                    .src_access_mask(s.access)
                    .dst_stage_mask(d.stage)
                    .dst_access_mask(d.access)
            })
            .collect();
        let imgs: Vec<vk::ImageMemoryBarrier2<'_>> = images
            .iter()
            .map(|b| {
                vk::ImageMemoryBarrier2::default()
                    .src_stage_mask(b.src.stage)
                    .src_access_mask(b.src.access)
                    .dst_stage_mask(b.dst.stage)
                    .dst_access_mask(b.dst.access)
                    .old_layout(b.old)
                    .new_layout(b.new)
                    .src_queue_family_index(vk::QUEUE_FAMILY_IGNORED)
                    .dst_queue_family_index(vk::QUEUE_FAMILY_IGNORED)
                    .image(b.image)
                    .subresource_range(range(b.aspect))
            })
            .collect();
        let info = vk::DependencyInfo::default()
            .memory_barriers(&mems)
            .image_memory_barriers(&imgs);
        let infos = [info];
        // SAFETY: `cb` is recording outside a render pass on a device with
        // synchronization2; the wait names the same dependency info as the set.
        unsafe {
            match self {
                SyncApi::Khr(s2) => {
                    s2.cmd_set_event2(cb, event, &info);
                    s2.cmd_wait_events2(cb, &[event], &infos);
                }
                _ => {
                    device.cmd_set_event2(cb, event, &info);
                    device.cmd_wait_events2(cb, &[event], &infos);
                }
            }
        }
    }

    /// Records vkCmdWriteTimestamp(2) of query `query` after the transfer stage.
    pub(crate) fn write_timestamp(
        &self,
        device: &ash::Device,
        cb: vk::CommandBuffer,
        pool: vk::QueryPool,
        query: u32,
    ) {
        let stage = vk::PipelineStageFlags2::TRANSFER;
        // SAFETY: `cb` is recording; the query was reset and is written once.
        unsafe {
            match self {
                SyncApi::Legacy => device.cmd_write_timestamp(cb, stage1(stage), pool, query),
                SyncApi::Core => device.cmd_write_timestamp2(cb, stage, pool, query),
                SyncApi::Khr(s2) => s2.cmd_write_timestamp2(cb, stage, pool, query),
            }
        }
    }

    /// Submits one command buffer that signals `fence`.
    pub(crate) fn submit(
        &self,
        device: &ash::Device,
        queue: vk::Queue,
        cb: vk::CommandBuffer,
        fence: vk::Fence,
    ) -> Result<(), Fail> {
        if let SyncApi::Legacy = self {
            let cbs = [cb];
            let submit = [vk::SubmitInfo::default().command_buffers(&cbs)];
            // SAFETY: `cb` is executable, `fence` unsignaled and not in use.
            return unsafe { device.queue_submit(queue, &submit, fence) }.ctx("vkQueueSubmit");
        }
        let cbs = [vk::CommandBufferSubmitInfo::default().command_buffer(cb)];
        let submit = [vk::SubmitInfo2::default().command_buffer_infos(&cbs)];
        // SAFETY: as above; synchronization2 is enabled.
        unsafe {
            match self {
                SyncApi::Khr(s2) => s2.queue_submit2(queue, &submit, fence),
                _ => device.queue_submit2(queue, &submit, fence),
            }
        }
        .ctx("vkQueueSubmit2")
    }
}
