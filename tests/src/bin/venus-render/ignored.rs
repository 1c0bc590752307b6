//! Values in members Vulkan says are ignored. Drivers must not look at them, so the
//! program fills them with a handle that names no object (valid usage: an ignored
//! member may hold anything). A guest driver that forwards them to the host makes the
//! host see an unknown object.
//!
//! Where the program puts it:
//! - `VkCommandBufferBeginInfo::pInheritanceInfo` of primary command buffers (ignored
//!   entirely): render pass and framebuffer;
//! - `VkGraphicsPipelineCreateInfo::basePipelineHandle` without
//!   VK_PIPELINE_CREATE_DERIVATIVE_BIT;
//! - `VkDescriptorImageInfo::sampler` of combined image samplers whose binding has an
//!   immutable sampler;
//! - `VkWriteDescriptorSet::dstSet` of push descriptors.
//!
//! The validation layer, when active, replaces unknown handles with VK_NULL_HANDLE as it
//! unwraps them, so only runs without it send these values to the driver.

use ash::vk::Handle;

/// A handle value that no object has.
const IGNORED: u64 = 0x0bad_0bad_0bad_0bad;

/// The ignored-member filler as a handle of type `T`.
pub(crate) fn ignored<T: Handle>() -> T {
    T::from_raw(IGNORED)
}
