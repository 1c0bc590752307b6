//! Instance creation, the debug messenger, the physical device, and whether the
//! validation layer is active.

use ash::vk;

use crate::report::{messenger_info, Fail, Report, VkContext};
use crate::vulkan::{Obj, Vulkan};
use crate::Options;

/// Name of the Khronos validation layer.
const VALIDATION_LAYER: &str = "VK_LAYER_KHRONOS_validation";

fn api_version_string(v: u32) -> String {
    format!(
        "{}.{}.{}",
        vk::api_version_major(v),
        vk::api_version_minor(v),
        vk::api_version_patch(v)
    )
}

pub(crate) fn create_instance(
    opts: &Options,
    vk_: &mut Vulkan,
    report: &mut Report,
) -> Result<(vk::PhysicalDevice, u32), Fail> {
    let entry = &vk_.entry;
    // SAFETY: plain global query on a loaded entry.
    let loader_version = unsafe { entry.try_enumerate_instance_version() }
        .ctx("vkEnumerateInstanceVersion")?
        .unwrap_or(vk::API_VERSION_1_0);
    report.check(
        loader_version >= vk::API_VERSION_1_2,
        format!(
            "loader instance version {} (1.2 needed)",
            api_version_string(loader_version)
        ),
    );
    let api = if loader_version >= vk::API_VERSION_1_3 {
        vk::API_VERSION_1_3
    } else {
        vk::API_VERSION_1_2
    };

    // SAFETY: plain global queries on a loaded entry.
    let layers = unsafe { entry.enumerate_instance_layer_properties() }
        .ctx("vkEnumerateInstanceLayerProperties")?;
    let validation_installed = layers.iter().any(|l| {
        l.layer_name_as_c_str()
            .is_ok_and(|n| n.to_bytes() == VALIDATION_LAYER.as_bytes())
    });
    report.info(format!(
        "{VALIDATION_LAYER} installed: {}",
        if validation_installed { "yes" } else { "no" }
    ));
    // SAFETY: as above.
    let extensions = unsafe { entry.enumerate_instance_extension_properties(None) }
        .ctx("vkEnumerateInstanceExtensionProperties")?;
    let has_debug_utils = extensions.iter().any(|e| {
        e.extension_name_as_c_str()
            .is_ok_and(|n| n == ash::ext::debug_utils::NAME)
    });
    report.check(
        has_debug_utils,
        "instance extension VK_EXT_debug_utils available",
    );

    let app = vk::ApplicationInfo::default()
        .application_name(c"venus-render")
        .application_version(1)
        .engine_name(c"venus-tests")
        .api_version(api);
    let ext_names: Vec<*const std::ffi::c_char> = if has_debug_utils {
        vec![ash::ext::debug_utils::NAME.as_ptr()]
    } else {
        Vec::new()
    };
    let mut instance_messenger = messenger_info();
    let mut info = vk::InstanceCreateInfo::default()
        .application_info(&app)
        .enabled_extension_names(&ext_names);
    if has_debug_utils {
        // Catches messages of vkCreateInstance / vkDestroyInstance themselves.
        info = info.push_next(&mut instance_messenger);
    }
    // SAFETY: `info` and everything it points to live until the call returns.
    let instance = unsafe { entry.create_instance(&info, None) }.ctx("vkCreateInstance")?;
    report.check(
        true,
        format!("vkCreateInstance (API {})", api_version_string(api)),
    );

    if has_debug_utils {
        let debug_utils = ash::ext::debug_utils::Instance::new(entry, &instance);
        // SAFETY: the instance was created with VK_EXT_debug_utils enabled.
        match unsafe { debug_utils.create_debug_utils_messenger(&messenger_info(), None) } {
            Ok(m) => vk_.debug = Some((debug_utils, m)),
            Err(e) => report.fail(format!("vkCreateDebugUtilsMessengerEXT failed: {e}")),
        }
    }
    vk_.instance = Some(instance);
    let Some(instance) = vk_.instance.as_ref() else {
        return Err("no instance".into());
    };

    // SAFETY: valid instance.
    let physicals =
        unsafe { instance.enumerate_physical_devices() }.ctx("vkEnumeratePhysicalDevices")?;
    let Some(&physical) = physicals.first() else {
        return Err("no physical device".into());
    };
    // SAFETY: `physical` comes from this instance.
    let props = unsafe { instance.get_physical_device_properties(physical) };
    let name = props
        .device_name_as_c_str()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|_| "<unterminated name>".into());
    report.check(
        true,
        format!(
            "physical device 0 of {}: {name} (API {}, vendor 0x{:x}, device 0x{:x})",
            physicals.len(),
            api_version_string(props.api_version),
            props.vendor_id,
            props.device_id
        ),
    );
    report.check(
        props.api_version >= vk::API_VERSION_1_2,
        format!(
            "device API version {} (1.2 needed)",
            api_version_string(props.api_version)
        ),
    );

    // Is the validation layer active? It reports itself as a tool (VK_EXT_tooling_info,
    // core in 1.3), which enumerating installed layers cannot tell.
    let tools = tool_names(vk_, physical, props.api_version, api, validation_installed)?;
    report.info(format!("active tools: {tools:?}"));
    let active = tools.iter().any(|t| t.contains("Validation"));
    if opts.require_validation {
        report.check(
            active,
            "validation layer active (reported by vkGetPhysicalDeviceToolProperties[EXT])",
        );
    } else {
        report.info(format!(
            "validation layer active: {}",
            if active { "yes" } else { "no" }
        ));
    }
    vk_.validation_active = active;
    Ok((physical, api))
}

/// Makes one invalid call (vkCreateBuffer with size 0, VUID-VkBufferCreateInfo-size-00912)
/// so that a test can prove the validation messages are seen and fail the run. Only done
/// when the validation layer is active: it stops the call before it reaches the driver
/// (VK_ERROR_VALIDATION_FAILED_EXT), so the driver never sees invalid usage.
pub(crate) fn inject_validation_error(vk_: &mut Vulkan, report: &mut Report) -> Result<(), Fail> {
    if !vk_.validation_active {
        report.fail("--inject-validation-error needs the validation layer active");
        return Ok(());
    }
    let device = vk_.device()?.clone();
    let info = vk::BufferCreateInfo::default()
        .size(0)
        .usage(vk::BufferUsageFlags::STORAGE_BUFFER)
        .sharing_mode(vk::SharingMode::EXCLUSIVE);
    // SAFETY: deliberately invalid (size 0), but the active validation layer rejects it
    // before the driver; a buffer it might still return is tracked and destroyed.
    let result = unsafe { device.create_buffer(&info, None) };
    report.info(format!(
        "injected invalid vkCreateBuffer(size 0): {result:?}"
    ));
    if let Ok(buffer) = result {
        vk_.track(Obj::Buffer(buffer));
    }
    Ok(())
}

/// Names of the active tools (layers that report themselves through tooling info).
///
/// Core vkGetPhysicalDeviceToolProperties (1.3) is asked first. The validation layer
/// 1.3.239 reports itself only through the VK_EXT_tooling_info entry point (which it
/// implements itself, and advertises as a layer device extension that
/// vkEnumerateDeviceExtensionProperties(NULL) does not list), so that one is asked too
/// when the device has the extension or the validation layer is installed.
fn tool_names(
    vk_: &Vulkan,
    physical: vk::PhysicalDevice,
    device_api: u32,
    instance_api: u32,
    validation_installed: bool,
) -> Result<Vec<String>, Fail> {
    let Some(instance) = vk_.instance.as_ref() else {
        return Err("no instance".into());
    };
    let name = |t: &vk::PhysicalDeviceToolProperties<'_>| {
        t.name_as_c_str()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default()
    };
    let mut names = Vec::new();
    if device_api >= vk::API_VERSION_1_3 && instance_api >= vk::API_VERSION_1_3 {
        // SAFETY: core 1.3 query on a 1.3 instance and device; `out` has `len` elements.
        unsafe {
            let len = instance
                .get_physical_device_tool_properties_len(physical)
                .ctx("vkGetPhysicalDeviceToolProperties")?;
            let mut out = vec![vk::PhysicalDeviceToolProperties::default(); len];
            instance
                .get_physical_device_tool_properties(physical, &mut out)
                .ctx("vkGetPhysicalDeviceToolProperties")?;
            names.extend(out.iter().map(name));
        }
    }
    // SAFETY: `physical` belongs to this instance.
    let exts = unsafe { instance.enumerate_device_extension_properties(physical) }
        .ctx("vkEnumerateDeviceExtensionProperties")?;
    let device_has_ext = exts.iter().any(|e| {
        e.extension_name_as_c_str()
            .is_ok_and(|n| n == ash::ext::tooling_info::NAME)
    });
    if device_has_ext || validation_installed {
        let tooling = ash::ext::tooling_info::Instance::new(&vk_.entry, instance);
        // SAFETY: a physical-device query; the entry point is the loader's trampoline,
        // which answers with no tools when neither a layer nor the driver implements it.
        let tools = unsafe { tooling.get_physical_device_tool_properties(physical) }
            .ctx("vkGetPhysicalDeviceToolPropertiesEXT")?;
        for t in tools.iter().map(name) {
            if !names.contains(&t) {
                names.push(t);
            }
        }
    }
    Ok(names)
}
