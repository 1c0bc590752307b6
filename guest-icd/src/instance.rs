//! Instances and physical devices: the connection is made at instance creation;
//! physical devices are enumerated once and cached with their extension list.

use std::ffi::{c_char, CStr};
use std::sync::{Arc, Mutex};

use ash::vk;
use ash::vk::Handle;
use venus_protocol::generated as g;

use crate::connection::Connection;
use crate::dispatch::{header, Header, ObjectKind};
use crate::{answer, guard};

/// A `VkInstance`.
#[repr(C)]
pub struct Instance {
    /// Dispatchable header (must be first).
    pub hdr: Header,
    physical: Mutex<Option<Vec<u64>>>,
}

/// A `VkPhysicalDevice`.
#[repr(C)]
pub struct PhysicalDevice {
    /// Dispatchable header (must be first).
    pub hdr: Header,
    /// Device extensions this ICD exposes for it.
    pub extensions: Vec<vk::ExtensionProperties>,
}

/// The instance extensions this ICD implements (all promoted to Vulkan 1.1).
const INSTANCE_EXTENSIONS: &[(&CStr, u32)] = &[
    (c"VK_KHR_get_physical_device_properties2", 2),
    (c"VK_KHR_external_memory_capabilities", 1),
    (c"VK_KHR_external_semaphore_capabilities", 1),
    (c"VK_KHR_external_fence_capabilities", 1),
    (c"VK_KHR_device_group_creation", 1),
];

/// Host device extensions that need guest-kernel objects (fds, dma-bufs) this ICD
/// does not provide.
const HIDDEN_DEVICE_EXTENSIONS: &[&str] = &[
    "VK_KHR_external_memory_fd",
    "VK_KHR_external_semaphore_fd",
    "VK_KHR_external_fence_fd",
    "VK_EXT_external_memory_dma_buf",
    "VK_EXT_image_drm_format_modifier",
    "VK_EXT_queue_family_foreign",
    "VK_EXT_external_memory_acquire_unmodified",
];

/// The API version this ICD implements.
pub const API_VERSION: u32 = vk::make_api_version(0, 1, 3, 269);

pub unsafe extern "system" fn enumerate_instance_version(p: *mut u32) -> vk::Result {
    guard(|| {
        // SAFETY: valid pointer per the Vulkan rules.
        if let Some(p) = unsafe { p.as_mut() } {
            *p = API_VERSION;
        }
        vk::Result::SUCCESS
    })
}

pub unsafe extern "system" fn enumerate_instance_extension_properties(
    layer: *const c_char,
    count: *mut u32,
    props: *mut vk::ExtensionProperties,
) -> vk::Result {
    guard(|| {
        if !layer.is_null() {
            return vk::Result::ERROR_LAYER_NOT_PRESENT;
        }
        let list: Vec<vk::ExtensionProperties> = INSTANCE_EXTENSIONS
            .iter()
            .filter_map(|(n, v)| {
                vk::ExtensionProperties {
                    spec_version: *v,
                    ..Default::default()
                }
                .extension_name(n)
                .ok()
            })
            .collect();
        // SAFETY: valid pointers per the Vulkan rules.
        unsafe { answer(&list, count, props) }
    })
}

pub unsafe extern "system" fn enumerate_instance_layer_properties(
    count: *mut u32,
    _p: *mut vk::LayerProperties,
) -> vk::Result {
    guard(|| {
        // SAFETY: valid pointer per the Vulkan rules.
        if let Some(c) = unsafe { count.as_mut() } {
            *c = 0;
        }
        vk::Result::SUCCESS
    })
}

pub unsafe extern "system" fn create_instance(
    info: *const vk::InstanceCreateInfo<'_>,
    _alloc: *const vk::AllocationCallbacks<'_>,
    out: *mut vk::Instance,
) -> vk::Result {
    guard(|| {
        crate::init_logging();
        // SAFETY: valid pointers per the Vulkan rules.
        let (Some(_info), Some(out)) = (unsafe { info.as_ref() }, unsafe { out.as_mut() }) else {
            return vk::Result::ERROR_INITIALIZATION_FAILED;
        };
        let conn = match Connection::open() {
            Ok(c) => c,
            Err(e) => return e,
        };
        let inst = Box::new(Instance {
            hdr: Header::new(ObjectKind::Instance, conn.clone()),
            physical: Mutex::new(None),
        });
        // The host instance: our API version, no layers or extensions (those are
        // the loader's and the application's business on the guest side).
        let app = vk::ApplicationInfo::default().api_version(API_VERSION);
        let host_info = vk::InstanceCreateInfo::default().application_info(&app);
        let mut slot = vk::Instance::from_raw(inst.hdr.id);
        let slot_p: *mut vk::Instance = &mut slot;
        let mut ret = vk::Result::ERROR_DEVICE_LOST;
        let r = conn.call(
            // SAFETY: valid local pointers.
            &mut |e, f| unsafe {
                g::encode_vk_create_instance(e, f, &host_info, std::ptr::null(), slot_p)
            },
            &mut |d| {
                // SAFETY: as above.
                ret = unsafe {
                    g::decode_reply_vk_create_instance(d, &host_info, std::ptr::null(), slot_p)
                }
            },
        );
        if let Err(e) = r {
            conn.close();
            return e;
        }
        if ret != vk::Result::SUCCESS {
            conn.close();
            return ret;
        }
        *out = vk::Instance::from_raw(Box::into_raw(inst) as u64);
        vk::Result::SUCCESS
    })
}

pub unsafe extern "system" fn destroy_instance(
    instance: vk::Instance,
    _alloc: *const vk::AllocationCallbacks<'_>,
) {
    guard(|| {
        let raw = instance.as_raw();
        if raw == 0 {
            return;
        }
        // SAFETY: the application passes an instance of ours, destroyed once.
        let inst = unsafe { Box::from_raw(raw as usize as *mut Instance) };
        let _ = inst.hdr.conn.send(&mut |e, f| {
            // SAFETY: plain handle.
            unsafe { g::encode_vk_destroy_instance(e, f, instance, std::ptr::null()) }
        });
        let pds = inst
            .physical
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
            .unwrap_or_default();
        for pd in pds {
            // SAFETY: created by `physical_devices` below, freed once here.
            drop(unsafe { Box::from_raw(pd as usize as *mut PhysicalDevice) });
        }
        inst.hdr.conn.close();
    })
}

/// The host's extension list for `pd` (by id), filtered to what we implement.
fn device_extensions(conn: &Arc<Connection>, pd: u64) -> Vec<vk::ExtensionProperties> {
    // The physical device object does not exist yet: encode its id directly.
    let handle = vk::PhysicalDevice::from_raw(pd);
    let mut count = 0u32;
    let count_p: *mut u32 = &mut count;
    let mut ret = vk::Result::SUCCESS;
    let raw_id = |e: &mut venus_protocol::Encoder<'_>| e.set_dispatchable_id(|v| v);
    let ok = conn.call(
        &mut |e, f| {
            raw_id(e);
            // SAFETY: valid local pointers.
            unsafe {
                g::encode_vk_enumerate_device_extension_properties(
                    e,
                    f,
                    handle,
                    std::ptr::null(),
                    count_p,
                    std::ptr::null_mut(),
                )
            }
        },
        &mut |d| {
            // SAFETY: as above.
            ret = unsafe {
                g::decode_reply_vk_enumerate_device_extension_properties(
                    d,
                    handle,
                    std::ptr::null(),
                    count_p,
                    std::ptr::null_mut(),
                )
            }
        },
    );
    if ok.is_err() || ret != vk::Result::SUCCESS {
        return Vec::new();
    }
    let mut list = vec![vk::ExtensionProperties::default(); count as usize];
    let list_p = list.as_mut_ptr();
    let ok = conn.call(
        &mut |e, f| {
            raw_id(e);
            // SAFETY: `list` holds `count` elements.
            unsafe {
                g::encode_vk_enumerate_device_extension_properties(
                    e,
                    f,
                    handle,
                    std::ptr::null(),
                    count_p,
                    list_p,
                )
            }
        },
        &mut |d| {
            // SAFETY: as above.
            ret = unsafe {
                g::decode_reply_vk_enumerate_device_extension_properties(
                    d,
                    handle,
                    std::ptr::null(),
                    count_p,
                    list_p,
                )
            }
        },
    );
    if ok.is_err() || ret.as_raw() < 0 {
        return Vec::new();
    }
    list.truncate(count as usize);
    list.retain(|e| {
        let name = e
            .extension_name_as_c_str()
            .ok()
            .and_then(|n| n.to_str().ok())
            .unwrap_or("");
        !HIDDEN_DEVICE_EXTENSIONS.contains(&name)
    });
    list
}

/// The cached physical devices of `instance` (enumerated on first use).
fn physical_devices(instance: vk::Instance) -> Result<Vec<u64>, vk::Result> {
    // SAFETY: the application passes an instance of ours.
    let Some(h) = (unsafe { header(instance.as_raw()) }) else {
        return Err(vk::Result::ERROR_INITIALIZATION_FAILED);
    };
    // SAFETY: instance handles point at `Instance`.
    let inst = unsafe { &*(instance.as_raw() as usize as *const Instance) };
    let mut cache = inst.physical.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(list) = cache.as_ref() {
        return Ok(list.clone());
    }
    let conn = h.conn.clone();
    // Output handle arrays carry ids: encode the instance by id too.
    let inst_id = vk::Instance::from_raw(h.id);
    let mut count = 0u32;
    let count_p: *mut u32 = &mut count;
    let mut ret = vk::Result::SUCCESS;
    conn.call(
        // SAFETY: valid local pointers.
        &mut |e, f| {
            e.set_dispatchable_id(|v| v);
            // SAFETY: valid local pointers.
            unsafe {
                g::encode_vk_enumerate_physical_devices(
                    e,
                    f,
                    inst_id,
                    count_p,
                    std::ptr::null_mut(),
                )
            }
        },
        &mut |d| {
            // SAFETY: as above.
            ret = unsafe {
                g::decode_reply_vk_enumerate_physical_devices(
                    d,
                    instance,
                    count_p,
                    std::ptr::null_mut(),
                )
            }
        },
    )?;
    if ret != vk::Result::SUCCESS {
        return Err(ret);
    }
    let mut ids: Vec<vk::PhysicalDevice> = (0..count)
        .map(|_| vk::PhysicalDevice::from_raw(crate::dispatch::next_id()))
        .collect();
    let mut got = count;
    let got_p: *mut u32 = &mut got;
    let ids_p = ids.as_mut_ptr();
    conn.call(
        // SAFETY: `ids` holds `count` slots.
        &mut |e, f| {
            e.set_dispatchable_id(|v| v);
            // SAFETY: `ids` holds `count` slots.
            unsafe { g::encode_vk_enumerate_physical_devices(e, f, inst_id, got_p, ids_p) }
        },
        &mut |d| {
            let mut c = count;
            let mut scratch = vec![vk::PhysicalDevice::null(); count as usize];
            // SAFETY: as above; the ids we sent are what the host echoes.
            ret = unsafe {
                g::decode_reply_vk_enumerate_physical_devices(
                    d,
                    instance,
                    &mut c,
                    scratch.as_mut_ptr(),
                )
            };
            // SAFETY: `got_p` points at the local `got`.
            unsafe { *got_p = c };
        },
    )?;
    if ret.as_raw() < 0 {
        return Err(ret);
    }
    let mut out = Vec::new();
    for id in ids.iter().take(got as usize) {
        let extensions = device_extensions(&conn, id.as_raw());
        let mut hdr = Header::new(ObjectKind::PhysicalDevice, conn.clone());
        hdr.id = id.as_raw();
        let pd = Box::new(PhysicalDevice { hdr, extensions });
        out.push(Box::into_raw(pd) as u64);
    }
    *cache = Some(out.clone());
    Ok(out)
}

pub unsafe extern "system" fn enumerate_physical_devices(
    instance: vk::Instance,
    count: *mut u32,
    out: *mut vk::PhysicalDevice,
) -> vk::Result {
    guard(|| {
        let list = match physical_devices(instance) {
            Ok(l) => l,
            Err(e) => return e,
        };
        let handles: Vec<vk::PhysicalDevice> = list
            .iter()
            .map(|p| vk::PhysicalDevice::from_raw(*p))
            .collect();
        // SAFETY: valid pointers per the Vulkan rules.
        unsafe { answer(&handles, count, out) }
    })
}

pub unsafe extern "system" fn enumerate_physical_device_groups(
    instance: vk::Instance,
    count: *mut u32,
    out: *mut vk::PhysicalDeviceGroupProperties<'_>,
) -> vk::Result {
    guard(|| {
        let list = match physical_devices(instance) {
            Ok(l) => l,
            Err(e) => return e,
        };
        // SAFETY: valid pointer per the Vulkan rules.
        let Some(c) = (unsafe { count.as_mut() }) else {
            return vk::Result::ERROR_INITIALIZATION_FAILED;
        };
        if out.is_null() {
            *c = list.len() as u32;
            return vk::Result::SUCCESS;
        }
        let n = (*c as usize).min(list.len());
        for (i, pd) in list.iter().take(n).enumerate() {
            // SAFETY: `out` holds `*count` caller structs.
            let g = unsafe { &mut *out.add(i) };
            g.physical_device_count = 1;
            g.physical_devices[0] = vk::PhysicalDevice::from_raw(*pd);
            g.subset_allocation = vk::FALSE;
        }
        *c = n as u32;
        if n < list.len() {
            vk::Result::INCOMPLETE
        } else {
            vk::Result::SUCCESS
        }
    })
}

pub unsafe extern "system" fn enumerate_device_extension_properties(
    pd: vk::PhysicalDevice,
    layer: *const c_char,
    count: *mut u32,
    props: *mut vk::ExtensionProperties,
) -> vk::Result {
    guard(|| {
        if !layer.is_null() {
            return vk::Result::ERROR_LAYER_NOT_PRESENT;
        }
        // SAFETY: physical device handles point at `PhysicalDevice`.
        let Some(p) = (unsafe { (pd.as_raw() as usize as *const PhysicalDevice).as_ref() }) else {
            return vk::Result::ERROR_INITIALIZATION_FAILED;
        };
        // SAFETY: valid pointers per the Vulkan rules.
        unsafe { answer(&p.extensions, count, props) }
    })
}

pub unsafe extern "system" fn enumerate_device_layer_properties(
    _pd: vk::PhysicalDevice,
    count: *mut u32,
    _p: *mut vk::LayerProperties,
) -> vk::Result {
    guard(|| {
        // SAFETY: valid pointer per the Vulkan rules.
        if let Some(c) = unsafe { count.as_mut() } {
            *c = 0;
        }
        vk::Result::SUCCESS
    })
}

pub unsafe extern "system" fn get_physical_device_tool_properties(
    _pd: vk::PhysicalDevice,
    count: *mut u32,
    _p: *mut vk::PhysicalDeviceToolProperties<'_>,
) -> vk::Result {
    guard(|| {
        // SAFETY: valid pointer per the Vulkan rules.
        if let Some(c) = unsafe { count.as_mut() } {
            *c = 0;
        }
        vk::Result::SUCCESS
    })
}

/// Caps a reported API version at what this ICD implements: the protocol's
/// Vulkan 1.3.269 (newer structs cannot cross the wire).
fn cap_api(v: u32) -> u32 {
    v.min(API_VERSION)
}

pub unsafe extern "system" fn get_physical_device_properties(
    pd: vk::PhysicalDevice,
    out: *mut vk::PhysicalDeviceProperties,
) {
    guard(|| {
        // SAFETY: forwarded Vulkan contract.
        unsafe {
            g::guest_calls::vk_get_physical_device_properties::<crate::dispatch::Rt>(pd, out)
        };
        // SAFETY: valid pointer per the Vulkan rules.
        if let Some(p) = unsafe { out.as_mut() } {
            p.api_version = cap_api(p.api_version);
        }
    })
}

pub unsafe extern "system" fn get_physical_device_properties2(
    pd: vk::PhysicalDevice,
    out: *mut vk::PhysicalDeviceProperties2<'_>,
) {
    guard(|| {
        // SAFETY: forwarded Vulkan contract.
        unsafe {
            g::guest_calls::vk_get_physical_device_properties2::<crate::dispatch::Rt>(pd, out)
        };
        // SAFETY: valid pointer per the Vulkan rules.
        if let Some(p) = unsafe { out.as_mut() } {
            p.properties.api_version = cap_api(p.properties.api_version);
        }
    })
}
