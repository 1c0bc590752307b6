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
//! - `VkWriteDescriptorSet::dstSet` of push descriptors;
//! - the state pointers of the transform-feedback pipeline that Vulkan ignores (its
//!   rasterization is statically discarded, it has no tessellation stages, its vertex
//!   input is dynamic when the device can): they point at bytes that are no struct
//!   ([`ignored_struct`]), whose pNext would send a reader off into unmapped memory;
//!   only without the validation layer (1.3.239 reads them).
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

/// Bytes that are no Vulkan struct (sType, pNext and members all 0xa5...).
static NOT_A_STRUCT: [u64; 32] = [0xa5a5_a5a5_a5a5_a5a5; 32];

/// A pointer for an ignored pointer member: readable memory that holds no struct.
pub(crate) fn ignored_struct<T>() -> *const T {
    NOT_A_STRUCT.as_ptr().cast()
}
