//! Devices: creation (with the host extensions our memory sharing needs) and
//! destruction (which forgets everything the device owned).

use std::ffi::{c_char, CStr};
use std::sync::Arc;

use ash::vk;
use ash::vk::Handle;
use venus_protocol::generated::host_calls::{CallRet, DispatchTable};
use venus_protocol::generated::{CreateDeviceArgs, DestroyDeviceArgs};

use crate::context::{DeviceInfo, State};
use crate::executor::Fatal;
use crate::object_table::Entry;
use crate::physical_device::host_has;

const EXTERNAL_MEMORY_HOST: &CStr = c"VK_EXT_external_memory_host";
const EXTERNAL_MEMORY_FD: &CStr = c"VK_KHR_external_memory_fd";

/// `vkCreateDevice`.
pub fn create(st: &mut State, x: &CreateDeviceArgs<'_>) -> Result<CallRet, Fatal> {
    // SAFETY: decoder-built pointers.
    let info = unsafe { x.p_create_info.as_ref() }.ok_or("vkCreateDevice without create info")?;
    // SAFETY: as above.
    let slot = unsafe { x.p_device.as_mut() }.ok_or("vkCreateDevice without an output id")?;
    let id = slot.as_raw();
    if id == 0 || st.objects.contains(vk::ObjectType::DEVICE, id) {
        return Err(format!("device id {id} is zero or in use"));
    }
    let pd = x.physical_device.as_raw();
    let instance = st
        .physical
        .get(&pd)
        .map(|p| p.instance)
        .ok_or("vkCreateDevice on an unknown physical device")?;
    // Extensions: drop the ones we emulate, add host-pointer import when available.
    let mut exts: Vec<*const c_char> = Vec::new();
    if !info.pp_enabled_extension_names.is_null() {
        for i in 0..info.enabled_extension_count as usize {
            // SAFETY: the decoder allocated `enabled_extension_count` NUL-terminated strings.
            let p = unsafe { *info.pp_enabled_extension_names.add(i) };
            if p.is_null() {
                continue;
            }
            // SAFETY: as above.
            let name = unsafe { CStr::from_ptr(p) };
            if name == EXTERNAL_MEMORY_FD && !host_has(st, pd, EXTERNAL_MEMORY_FD) {
                continue;
            }
            if name == EXTERNAL_MEMORY_HOST {
                continue;
            }
            exts.push(p);
        }
    }
    let host_import = host_has(st, pd, EXTERNAL_MEMORY_HOST);
    if host_import {
        exts.push(EXTERNAL_MEMORY_HOST.as_ptr());
    }
    let mut host_info = *info;
    host_info.enabled_extension_count = exts.len() as u32;
    host_info.pp_enabled_extension_names = exts.as_ptr();
    #[allow(deprecated)]
    {
        host_info.enabled_layer_count = 0;
        host_info.pp_enabled_layer_names = std::ptr::null();
    }
    let inst = st.instances.get(&instance).ok_or("unknown instance")?;
    let pdh = vk::PhysicalDevice::from_raw(pd);
    check_queue_create_infos(inst, pdh, info)?;
    // SAFETY: `host_info` and what it points to (arena data, `exts`) live through the call.
    let device = match unsafe { inst.ash.create_device(pdh, &host_info, None) } {
        Ok(d) => d,
        Err(r) => {
            tracing::warn!("host vkCreateDevice failed: {r:?}");
            return Ok(CallRet::Result(r));
        }
    };
    let gdpa = inst.ash.fp_v1_0().get_device_proc_addr;
    let dev_handle = device.handle();
    let table = Arc::new(DispatchTable::load(|name| {
        // SAFETY: a device-level lookup on our live device.
        unsafe { gdpa(dev_handle, name.as_ptr()) }
    }));
    // SAFETY: plain queries on a live physical device.
    let mem = unsafe { inst.ash.get_physical_device_memory_properties(pdh) };
    let memory_types = mem.memory_types[..mem.memory_type_count.min(32) as usize]
        .iter()
        .map(|t| t.property_flags)
        .collect();
    // SAFETY: a device-level lookup on our live device.
    let host_pointer_properties =
        unsafe { gdpa(dev_handle, c"vkGetMemoryHostPointerPropertiesEXT".as_ptr()) }
            // SAFETY: the driver returns this entry point under this name.
            .map(|f| unsafe {
                std::mem::transmute::<
                    unsafe extern "system" fn(),
                    vk::PFN_vkGetMemoryHostPointerPropertiesEXT,
                >(f)
            });
    let host_import = if host_import && host_pointer_properties.is_some() {
        let mut hp = vk::PhysicalDeviceExternalMemoryHostPropertiesEXT::default();
        let mut p2 = vk::PhysicalDeviceProperties2::default().push_next(&mut hp);
        // SAFETY: as above, with a valid chain.
        unsafe { inst.ash.get_physical_device_properties2(pdh, &mut p2) };
        Some(hp.min_imported_host_pointer_alignment)
    } else {
        None
    };
    use crate::memory_strategy::{choose, DriverMemoryCaps, MemoryStrategy};
    let caps = DriverMemoryCaps {
        host_pointer_alignment: host_import,
        dma_buf_export: false,
    };
    let (strategy, why) = choose(st.renderer.config.memory, caps, st.renderer.granularity);
    tracing::info!(id, "device memory sharing: {why}");
    let host_import = match strategy {
        MemoryStrategy::HostPointer { granularity } => Some((granularity, u32::MAX)),
        _ => None,
    };
    let host = dev_handle.as_raw();
    st.objects
        .insert(
            vk::ObjectType::DEVICE,
            id,
            Entry {
                host,
                device: host,
                pool: 0,
            },
        )
        .map_err(|e| format!("device {id}: {e:?}"))?;
    st.tables.insert(host, table.clone());
    st.devices.insert(
        host,
        DeviceInfo {
            physical: pd,
            table,
            ash: device,
            host_import,
            strategy,
            host_pointer_properties,
            memory_types,
        },
    );
    tracing::debug!(id, ?host_import, "device created");
    Ok(CallRet::Result(vk::Result::SUCCESS))
}

/// The queue requests of `vkCreateDevice` the driver may assume valid
/// (VUID-VkDeviceCreateInfo-queueCreateInfoCount-arraylength,
/// VUID-VkDeviceQueueCreateInfo-queueFamilyIndex-00381, -queueCount-00382,
/// VUID-VkDeviceCreateInfo-queueFamilyIndex-02802): drivers do not check them
/// (fuzz finding: lavapipe crashes on `queueCreateInfoCount` 0). A guest that
/// breaks them is fatal, as for other input the driver would crash on.
fn check_queue_create_infos(
    inst: &crate::context::InstanceInfo,
    pd: vk::PhysicalDevice,
    info: &vk::DeviceCreateInfo<'_>,
) -> Result<(), Fatal> {
    let n = info.queue_create_info_count as usize;
    if n == 0 || info.p_queue_create_infos.is_null() {
        return Err("vkCreateDevice without queue create infos".into());
    }
    // SAFETY: a plain query on a live physical device of this instance.
    let families = unsafe { inst.ash.get_physical_device_queue_family_properties(pd) };
    // SAFETY: the decoder allocated `queueCreateInfoCount` elements for a non-null array.
    let queues = unsafe { std::slice::from_raw_parts(info.p_queue_create_infos, n) };
    let mut seen: Vec<(u32, vk::DeviceQueueCreateFlags)> = Vec::with_capacity(n);
    for q in queues {
        let family = families
            .get(q.queue_family_index as usize)
            .ok_or_else(|| format!("vkCreateDevice: no queue family {}", q.queue_family_index))?;
        if q.queue_count == 0
            || q.queue_count > family.queue_count
            || q.p_queue_priorities.is_null()
        {
            return Err(format!(
                "vkCreateDevice: {} queues of family {} (it has {})",
                q.queue_count, q.queue_family_index, family.queue_count
            ));
        }
        let key = (
            q.queue_family_index,
            q.flags & vk::DeviceQueueCreateFlags::PROTECTED,
        );
        if seen.contains(&key) {
            return Err(format!(
                "vkCreateDevice: queue family {} requested twice",
                q.queue_family_index
            ));
        }
        seen.push(key);
    }
    Ok(())
}

/// Forgets everything a device owned (the objects themselves must already be
/// destroyed, or are being destroyed by the caller).
pub fn forget(st: &mut State, host: u64) {
    let gone = st.objects.remove_where(|_, e| e.device == host);
    for (ty, e) in gone {
        if ty == vk::ObjectType::QUEUE
            || ty == vk::ObjectType::COMMAND_BUFFER
            || ty == vk::ObjectType::DEVICE
        {
            st.tables.remove(&e.host);
        }
        if ty == vk::ObjectType::DEVICE_MEMORY {
            st.memories.remove(&e.host);
        }
    }
    st.queue_of_ring.retain(|_, (d, _)| *d != host);
    st.timelines.retain(|_, t| t.device() != host);
    st.devices.remove(&host);
}

/// `vkDestroyDevice`.
pub fn destroy(st: &mut State, x: &DestroyDeviceArgs<'_>) -> Result<CallRet, Fatal> {
    let host = x.device.as_raw();
    if host == 0 {
        return Ok(CallRet::Void);
    }
    // Timelines wait on this device's fences: stop them first.
    st.timelines.retain(|_, t| t.device() != host);
    let info = st
        .devices
        .get(&host)
        .ok_or("vkDestroyDevice of an unknown device")?;
    // SAFETY: a live device of this context, destroyed once.
    unsafe { info.ash.destroy_device(None) };
    forget(st, host);
    Ok(CallRet::Void)
}
