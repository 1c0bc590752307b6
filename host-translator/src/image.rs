//! Images. Like buffers, images are created importable from host allocations
//! when the device shares memory that way — but only where the driver says the
//! image's format, type, tiling and usage allow it.

use ash::vk;
use ash::vk::Handle;
use venus_protocol::generated::host_calls::CallRet;
use venus_protocol::generated::{Command, CreateImageArgs};

use crate::buffer::retarget_external;
use crate::context::State;
use crate::executor::{generic, Fatal};

/// Whether an image like `info` can be bound to imported host memory.
fn host_importable(st: &State, device: u64, info: &vk::ImageCreateInfo<'_>) -> bool {
    let Some(dev) = st.devices.get(&device) else {
        return false;
    };
    if dev.host_import.is_none() {
        return false;
    }
    let Some(pd) = st.objects_physical_of(device) else {
        return false;
    };
    let Some(inst) = st
        .physical
        .get(&pd)
        .and_then(|p| st.instances.get(&p.instance))
    else {
        return false;
    };
    let mut ext_info = vk::PhysicalDeviceExternalImageFormatInfo::default()
        .handle_type(vk::ExternalMemoryHandleTypeFlags::HOST_ALLOCATION_EXT);
    let fmt = vk::PhysicalDeviceImageFormatInfo2::default()
        .format(info.format)
        .ty(info.image_type)
        .tiling(info.tiling)
        .usage(info.usage)
        .flags(info.flags)
        .push_next(&mut ext_info);
    let mut ext_props = vk::ExternalImageFormatProperties::default();
    let mut props = vk::ImageFormatProperties2::default().push_next(&mut ext_props);
    // SAFETY: plain query on a live physical device with valid chains.
    let r = unsafe {
        inst.ash.get_physical_device_image_format_properties2(
            vk::PhysicalDevice::from_raw(pd),
            &fmt,
            &mut props,
        )
    };
    r.is_ok()
        && ext_props
            .external_memory_properties
            .external_memory_features
            .contains(vk::ExternalMemoryFeatureFlags::IMPORTABLE)
}

/// `vkCreateImage`.
pub fn create(
    st: &mut State,
    cmd: &Command<'_>,
    x: &CreateImageArgs<'_>,
) -> Result<CallRet, Fatal> {
    // SAFETY: decoder-built pointer.
    let Some(info) = (unsafe { x.p_create_info.as_ref() }) else {
        return generic(st, cmd);
    };
    if !host_importable(st, x.device.as_raw(), info) {
        return generic(st, cmd);
    }
    let types = vk::ExternalMemoryHandleTypeFlags::HOST_ALLOCATION_EXT;
    // SAFETY: the decoder built this chain for this command.
    if unsafe {
        retarget_external(
            info.p_next,
            vk::StructureType::EXTERNAL_MEMORY_IMAGE_CREATE_INFO,
            types,
        )
    } {
        return generic(st, cmd);
    }
    let mut ext = vk::ExternalMemoryImageCreateInfo::default().handle_types(types);
    ext.p_next = info.p_next;
    let mut host_info = *info;
    host_info.p_next = (&ext as *const vk::ExternalMemoryImageCreateInfo<'_>).cast();
    generic(
        st,
        &Command::CreateImage(CreateImageArgs {
            p_create_info: &host_info,
            ..*x
        }),
    )
}
