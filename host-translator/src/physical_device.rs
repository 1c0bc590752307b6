//! Physical devices: the extensions and properties the guest sees.

use std::ffi::CStr;

use ash::vk;
use ash::vk::Handle;
use venus_protocol::generated::host_calls::CallRet;
use venus_protocol::generated::{Command, EnumerateDeviceExtensionPropertiesArgs};

use crate::context::State;
use crate::executor::Fatal;
use crate::instance::{answer_enumeration, filter_extensions};

/// Extensions the host provides itself even when the driver lacks them.
const EMULATED: &[&CStr] = &[
    // Memory sharing is done by the host translator (shared memory + host-pointer
    // import), so guests that insist on it (stock Mesa) accept the device.
    c"VK_KHR_external_memory_fd",
];

/// The device extensions the guest sees for host physical device `pd`.
pub fn guest_extensions(st: &State, pd: u64) -> Vec<vk::ExtensionProperties> {
    let host = st
        .physical
        .get(&pd)
        .map(|p| p.extensions.as_slice())
        .unwrap_or(&[]);
    let mut list = filter_extensions(host);
    for name in EMULATED {
        if !list
            .iter()
            .any(|e| e.extension_name_as_c_str().ok() == Some(*name))
        {
            if let Ok(e) = (vk::ExtensionProperties {
                spec_version: 1,
                ..Default::default()
            })
            .extension_name(name)
            {
                list.push(e);
            }
        }
    }
    list
}

/// Whether the host driver itself has device extension `name`.
pub fn host_has(st: &State, pd: u64, name: &CStr) -> bool {
    st.physical.get(&pd).is_some_and(|p| {
        p.extensions
            .iter()
            .any(|e| e.extension_name_as_c_str().ok() == Some(name))
    })
}

/// Physical-device commands of device extensions (command type number, the
/// extensions that provide it). The driver's instance-level entry point for such
/// a command exists whether or not the physical device has the extension: Mesa's
/// trampolines then jump through a NULL slot, and the Vulkan loader's terminator
/// aborts the process. Found by fuzzing (vkGetPhysicalDeviceFragmentShadingRatesKHR
/// on lavapipe killed the server).
const EXTENSION_COMMANDS: &[(u32, &[&CStr])] = &[
    (
        235, // vkGetPhysicalDeviceCalibrateableTimeDomainsEXT / KHR
        &[
            c"VK_EXT_calibrated_timestamps",
            c"VK_KHR_calibrated_timestamps",
        ],
    ),
    (
        277, // vkGetPhysicalDeviceFragmentShadingRatesKHR
        &[c"VK_KHR_fragment_shading_rate"],
    ),
];

/// Refuses (fatal) a physical-device command of a device extension the host
/// physical device lacks: the guest was never offered it, and the driver must
/// not be called for it.
pub fn check_extension_command(st: &State, cmd: &Command<'_>) -> Result<(), Fatal> {
    let Some((vk::ObjectType::PHYSICAL_DEVICE, pd)) = cmd.dispatch_handle() else {
        return Ok(());
    };
    let number = cmd.number();
    let Some((_, extensions)) = EXTENSION_COMMANDS.iter().find(|(n, _)| *n == number) else {
        return Ok(());
    };
    if extensions.iter().any(|e| host_has(st, pd, e)) {
        return Ok(());
    }
    let names: Vec<_> = extensions.iter().map(|e| e.to_string_lossy()).collect();
    Err(format!(
        "{}: the host physical device lacks {}",
        cmd.name(),
        names.join(" and ")
    ))
}

/// `vkEnumerateDeviceExtensionProperties`.
pub fn enumerate_extensions(
    st: &mut State,
    x: &EnumerateDeviceExtensionPropertiesArgs<'_>,
) -> Result<CallRet, Fatal> {
    if !x.p_layer_name.is_null() {
        return Ok(CallRet::Result(vk::Result::ERROR_LAYER_NOT_PRESENT));
    }
    let list = guest_extensions(st, x.physical_device.as_raw());
    // SAFETY: decoder-built count and output array of `*count` elements.
    unsafe { answer_enumeration(&list, x.p_property_count, x.p_properties) }
}

/// Caps the reported API version at the protocol's level (Vulkan 1.3.269).
pub fn cap_api_version(v: u32) -> u32 {
    v.min(venus_protocol::generated::VK_XML_VERSION)
}

/// Patches what the driver reported in vkGetPhysicalDeviceProperties(2).
pub fn fix_properties(cmd: &Command<'_>) {
    match cmd {
        Command::GetPhysicalDeviceProperties(x) => {
            // SAFETY: decoder-built output pointer, filled by the driver.
            if let Some(p) = unsafe { x.p_properties.as_mut() } {
                p.api_version = cap_api_version(p.api_version);
            }
        }
        Command::GetPhysicalDeviceProperties2(x) => {
            // SAFETY: as above.
            if let Some(p) = unsafe { x.p_properties.as_mut() } {
                p.properties.api_version = cap_api_version(p.properties.api_version);
            }
        }
        _ => {}
    }
}
