//! The loader interface: the three exported functions and name lookup.

use std::ffi::{c_char, CStr};

use ash::vk;
use venus_protocol::generated::guest_calls::entry_point;

use crate::dispatch::Rt;
use crate::{
    buffer, command_buffer as cb, descriptor_set as ds, descriptor_update_template as dut,
    device as dev, device_memory as mem, event, fence, guard, instance as inst, pipeline,
};

/// The loader-ICD interface version we implement.
const ICD_INTERFACE_VERSION: u32 = 7;

macro_rules! pfn {
    ($f:expr, $t:ty) => {
        // SAFETY: `$f` has exactly the signature of `$t`; the loader calls it as such.
        Some(unsafe { std::mem::transmute::<$t, unsafe extern "system" fn()>($f) })
    };
}

/// Entry points this ICD implements by hand (guest-side state).
fn overridden(name: &[u8]) -> vk::PFN_vkVoidFunction {
    match name {
        b"vkGetInstanceProcAddr" => pfn!(get_instance_proc_addr, vk::PFN_vkGetInstanceProcAddr),
        b"vkGetDeviceProcAddr" => pfn!(get_device_proc_addr, vk::PFN_vkGetDeviceProcAddr),
        b"vkCreateInstance" => pfn!(inst::create_instance, vk::PFN_vkCreateInstance),
        b"vkDestroyInstance" => pfn!(inst::destroy_instance, vk::PFN_vkDestroyInstance),
        b"vkEnumerateInstanceVersion" => pfn!(
            inst::enumerate_instance_version,
            vk::PFN_vkEnumerateInstanceVersion
        ),
        b"vkEnumerateInstanceExtensionProperties" => {
            pfn!(
                inst::enumerate_instance_extension_properties,
                vk::PFN_vkEnumerateInstanceExtensionProperties
            )
        }
        b"vkEnumerateInstanceLayerProperties" => {
            pfn!(
                inst::enumerate_instance_layer_properties,
                vk::PFN_vkEnumerateInstanceLayerProperties
            )
        }
        b"vkEnumeratePhysicalDevices" => pfn!(
            inst::enumerate_physical_devices,
            vk::PFN_vkEnumeratePhysicalDevices
        ),
        b"vkEnumeratePhysicalDeviceGroups" | b"vkEnumeratePhysicalDeviceGroupsKHR" => {
            pfn!(
                inst::enumerate_physical_device_groups,
                vk::PFN_vkEnumeratePhysicalDeviceGroups
            )
        }
        b"vkEnumerateDeviceExtensionProperties" => {
            pfn!(
                inst::enumerate_device_extension_properties,
                vk::PFN_vkEnumerateDeviceExtensionProperties
            )
        }
        b"vkEnumerateDeviceLayerProperties" => {
            pfn!(
                inst::enumerate_device_layer_properties,
                vk::PFN_vkEnumerateDeviceLayerProperties
            )
        }
        b"vkGetPhysicalDeviceToolProperties" | b"vkGetPhysicalDeviceToolPropertiesEXT" => {
            pfn!(
                inst::get_physical_device_tool_properties,
                vk::PFN_vkGetPhysicalDeviceToolProperties
            )
        }
        b"vkGetPhysicalDeviceProperties" => {
            pfn!(
                inst::get_physical_device_properties,
                vk::PFN_vkGetPhysicalDeviceProperties
            )
        }
        b"vkGetPhysicalDeviceProperties2" | b"vkGetPhysicalDeviceProperties2KHR" => {
            pfn!(
                inst::get_physical_device_properties2,
                vk::PFN_vkGetPhysicalDeviceProperties2
            )
        }
        b"vkCreateDevice" => pfn!(dev::create_device, vk::PFN_vkCreateDevice),
        b"vkDestroyDevice" => pfn!(dev::destroy_device, vk::PFN_vkDestroyDevice),
        b"vkGetDeviceQueue" => pfn!(dev::get_device_queue, vk::PFN_vkGetDeviceQueue),
        b"vkGetDeviceQueue2" => pfn!(dev::get_device_queue2, vk::PFN_vkGetDeviceQueue2),
        b"vkQueueWaitIdle" => pfn!(dev::queue_wait_idle, vk::PFN_vkQueueWaitIdle),
        b"vkDeviceWaitIdle" => pfn!(dev::device_wait_idle, vk::PFN_vkDeviceWaitIdle),
        b"vkCreatePrivateDataSlot" | b"vkCreatePrivateDataSlotEXT" => {
            pfn!(
                dev::create_private_data_slot,
                vk::PFN_vkCreatePrivateDataSlot
            )
        }
        b"vkDestroyPrivateDataSlot" | b"vkDestroyPrivateDataSlotEXT" => {
            pfn!(
                dev::destroy_private_data_slot,
                vk::PFN_vkDestroyPrivateDataSlot
            )
        }
        b"vkSetPrivateData" | b"vkSetPrivateDataEXT" => {
            pfn!(dev::set_private_data, vk::PFN_vkSetPrivateData)
        }
        b"vkGetPrivateData" | b"vkGetPrivateDataEXT" => {
            pfn!(dev::get_private_data, vk::PFN_vkGetPrivateData)
        }
        b"vkCreateFence" => pfn!(fence::create_fence, vk::PFN_vkCreateFence),
        b"vkDestroyFence" => pfn!(fence::destroy_fence, vk::PFN_vkDestroyFence),
        b"vkResetFences" => pfn!(fence::reset_fences, vk::PFN_vkResetFences),
        b"vkGetFenceStatus" => pfn!(fence::get_fence_status, vk::PFN_vkGetFenceStatus),
        b"vkWaitForFences" => pfn!(fence::wait_for_fences, vk::PFN_vkWaitForFences),
        b"vkQueueSubmit" => pfn!(fence::queue_submit, vk::PFN_vkQueueSubmit),
        b"vkQueueSubmit2" | b"vkQueueSubmit2KHR" => {
            pfn!(fence::queue_submit2, vk::PFN_vkQueueSubmit2)
        }
        b"vkCreateEvent" => pfn!(event::create_event, vk::PFN_vkCreateEvent),
        b"vkDestroyEvent" => pfn!(event::destroy_event, vk::PFN_vkDestroyEvent),
        b"vkGetEventStatus" => pfn!(event::get_event_status, vk::PFN_vkGetEventStatus),
        b"vkSetEvent" => pfn!(event::set_event, vk::PFN_vkSetEvent),
        b"vkResetEvent" => pfn!(event::reset_event, vk::PFN_vkResetEvent),
        b"vkCmdSetEvent" => pfn!(event::cmd_set_event, vk::PFN_vkCmdSetEvent),
        b"vkCmdResetEvent" => pfn!(event::cmd_reset_event, vk::PFN_vkCmdResetEvent),
        b"vkCmdSetEvent2" | b"vkCmdSetEvent2KHR" => {
            pfn!(event::cmd_set_event2, vk::PFN_vkCmdSetEvent2)
        }
        b"vkCmdResetEvent2" | b"vkCmdResetEvent2KHR" => {
            pfn!(event::cmd_reset_event2, vk::PFN_vkCmdResetEvent2)
        }
        b"vkGetBufferDeviceAddress"
        | b"vkGetBufferDeviceAddressKHR"
        | b"vkGetBufferDeviceAddressEXT" => pfn!(
            buffer::get_buffer_device_address,
            vk::PFN_vkGetBufferDeviceAddress
        ),
        b"vkGetBufferOpaqueCaptureAddress" | b"vkGetBufferOpaqueCaptureAddressKHR" => pfn!(
            buffer::get_buffer_opaque_capture_address,
            vk::PFN_vkGetBufferOpaqueCaptureAddress
        ),
        b"vkDestroyBuffer" => pfn!(buffer::destroy_buffer, vk::PFN_vkDestroyBuffer),
        b"vkAllocateMemory" => pfn!(mem::allocate_memory, vk::PFN_vkAllocateMemory),
        b"vkFreeMemory" => pfn!(mem::free_memory, vk::PFN_vkFreeMemory),
        b"vkMapMemory" => pfn!(mem::map_memory, vk::PFN_vkMapMemory),
        b"vkUnmapMemory" => pfn!(mem::unmap_memory, vk::PFN_vkUnmapMemory),
        b"vkFlushMappedMemoryRanges" => {
            pfn!(mem::flush_or_invalidate, vk::PFN_vkFlushMappedMemoryRanges)
        }
        b"vkInvalidateMappedMemoryRanges" => pfn!(
            mem::flush_or_invalidate,
            vk::PFN_vkInvalidateMappedMemoryRanges
        ),
        b"vkBindBufferMemory" => pfn!(mem::bind_buffer_memory, vk::PFN_vkBindBufferMemory),
        b"vkBindImageMemory" => pfn!(mem::bind_image_memory, vk::PFN_vkBindImageMemory),
        b"vkBindBufferMemory2" | b"vkBindBufferMemory2KHR" => {
            pfn!(mem::bind_buffer_memory2, vk::PFN_vkBindBufferMemory2)
        }
        b"vkBindImageMemory2" | b"vkBindImageMemory2KHR" => {
            pfn!(mem::bind_image_memory2, vk::PFN_vkBindImageMemory2)
        }
        b"vkGetDeviceMemoryCommitment" => pfn!(
            mem::get_device_memory_commitment,
            vk::PFN_vkGetDeviceMemoryCommitment
        ),
        b"vkGetDeviceMemoryOpaqueCaptureAddress" | b"vkGetDeviceMemoryOpaqueCaptureAddressKHR" => {
            pfn!(
                mem::get_device_memory_opaque_capture_address,
                vk::PFN_vkGetDeviceMemoryOpaqueCaptureAddress
            )
        }
        b"vkQueueBindSparse" => pfn!(mem::queue_bind_sparse, vk::PFN_vkQueueBindSparse),
        b"vkAllocateCommandBuffers" => pfn!(
            cb::allocate_command_buffers,
            vk::PFN_vkAllocateCommandBuffers
        ),
        b"vkFreeCommandBuffers" => pfn!(cb::free_command_buffers, vk::PFN_vkFreeCommandBuffers),
        b"vkBeginCommandBuffer" => pfn!(cb::begin_command_buffer, vk::PFN_vkBeginCommandBuffer),
        b"vkGetCalibratedTimestampsEXT" => pfn!(
            dev::get_calibrated_timestamps,
            vk::PFN_vkGetCalibratedTimestampsKHR
        ),
        b"vkCreateGraphicsPipelines" => pfn!(
            pipeline::create_graphics_pipelines,
            vk::PFN_vkCreateGraphicsPipelines
        ),
        b"vkCreateComputePipelines" => pfn!(
            pipeline::create_compute_pipelines,
            vk::PFN_vkCreateComputePipelines
        ),
        b"vkCreateDescriptorSetLayout" => pfn!(
            ds::create_descriptor_set_layout,
            vk::PFN_vkCreateDescriptorSetLayout
        ),
        b"vkDestroyDescriptorSetLayout" => pfn!(
            ds::destroy_descriptor_set_layout,
            vk::PFN_vkDestroyDescriptorSetLayout
        ),
        b"vkAllocateDescriptorSets" => pfn!(
            ds::allocate_descriptor_sets,
            vk::PFN_vkAllocateDescriptorSets
        ),
        b"vkFreeDescriptorSets" => pfn!(ds::free_descriptor_sets, vk::PFN_vkFreeDescriptorSets),
        b"vkResetDescriptorPool" => pfn!(ds::reset_descriptor_pool, vk::PFN_vkResetDescriptorPool),
        b"vkDestroyDescriptorPool" => {
            pfn!(ds::destroy_descriptor_pool, vk::PFN_vkDestroyDescriptorPool)
        }
        b"vkCreatePipelineLayout" => {
            pfn!(ds::create_pipeline_layout, vk::PFN_vkCreatePipelineLayout)
        }
        b"vkDestroyPipelineLayout" => {
            pfn!(ds::destroy_pipeline_layout, vk::PFN_vkDestroyPipelineLayout)
        }
        b"vkDestroyCommandPool" => pfn!(cb::destroy_command_pool, vk::PFN_vkDestroyCommandPool),
        b"vkResetCommandPool" => pfn!(cb::reset_command_pool, vk::PFN_vkResetCommandPool),
        b"vkUpdateDescriptorSets" => {
            pfn!(dut::update_descriptor_sets, vk::PFN_vkUpdateDescriptorSets)
        }
        b"vkCmdPushDescriptorSetKHR" => pfn!(
            dut::cmd_push_descriptor_set,
            vk::PFN_vkCmdPushDescriptorSetKHR
        ),
        b"vkCreateDescriptorUpdateTemplate" | b"vkCreateDescriptorUpdateTemplateKHR" => {
            pfn!(
                dut::create_template,
                vk::PFN_vkCreateDescriptorUpdateTemplate
            )
        }
        b"vkDestroyDescriptorUpdateTemplate" | b"vkDestroyDescriptorUpdateTemplateKHR" => {
            pfn!(
                dut::destroy_template,
                vk::PFN_vkDestroyDescriptorUpdateTemplate
            )
        }
        b"vkUpdateDescriptorSetWithTemplate" | b"vkUpdateDescriptorSetWithTemplateKHR" => {
            pfn!(
                dut::update_with_template,
                vk::PFN_vkUpdateDescriptorSetWithTemplate
            )
        }
        b"vkCmdPushDescriptorSetWithTemplateKHR" => {
            pfn!(
                dut::cmd_push_with_template,
                vk::PFN_vkCmdPushDescriptorSetWithTemplateKHR
            )
        }
        _ => None,
    }
}

/// Looks an entry point up: ours first, then the generated ones.
pub fn lookup(name: *const c_char) -> vk::PFN_vkVoidFunction {
    if name.is_null() {
        return None;
    }
    // SAFETY: the loader passes a NUL-terminated name.
    let name = unsafe { CStr::from_ptr(name) };
    overridden(name.to_bytes()).or_else(|| entry_point::<Rt>(name))
}

unsafe extern "system" fn get_instance_proc_addr(
    _instance: vk::Instance,
    name: *const c_char,
) -> vk::PFN_vkVoidFunction {
    guard(|| lookup(name))
}

unsafe extern "system" fn get_device_proc_addr(
    _device: vk::Device,
    name: *const c_char,
) -> vk::PFN_vkVoidFunction {
    guard(|| lookup(name))
}

/// Negotiates the loader-ICD interface: ours is 7; we go down to the loader's.
///
/// # Safety
/// `version` is null or points at the loader's version.
#[no_mangle]
pub unsafe extern "system" fn vk_icdNegotiateLoaderICDInterfaceVersion(
    version: *mut u32,
) -> vk::Result {
    guard(|| {
        // SAFETY: caller contract.
        match unsafe { version.as_mut() } {
            Some(v) => {
                if *v < 5 {
                    // We rely on the loader calling vk_icdGetPhysicalDeviceProcAddr and
                    // negotiating (interface 5+).
                    return vk::Result::ERROR_INCOMPATIBLE_DRIVER;
                }
                *v = (*v).min(ICD_INTERFACE_VERSION);
                vk::Result::SUCCESS
            }
            None => vk::Result::ERROR_INITIALIZATION_FAILED,
        }
    })
}

/// The loader's entry point for every command.
///
/// # Safety
/// `name` is null or a NUL-terminated string.
#[no_mangle]
pub unsafe extern "system" fn vk_icdGetInstanceProcAddr(
    instance: vk::Instance,
    name: *const c_char,
) -> vk::PFN_vkVoidFunction {
    // SAFETY: forwarded contract.
    unsafe { get_instance_proc_addr(instance, name) }
}

/// Physical-device-level commands the loader does not know (same lookup).
///
/// # Safety
/// `name` is null or a NUL-terminated string.
#[no_mangle]
pub unsafe extern "system" fn vk_icdGetPhysicalDeviceProcAddr(
    _instance: vk::Instance,
    name: *const c_char,
) -> vk::PFN_vkVoidFunction {
    guard(|| lookup(name))
}
