//! Instances: creation with the host's layers, physical-device enumeration, and
//! the instance extensions the guest may see.

use std::ffi::{c_char, CStr, CString};
use std::sync::Arc;

use ash::vk;
use ash::vk::Handle;
use venus_protocol::generated::host_calls::{CallRet, DispatchTable};
use venus_protocol::generated::{
    Command, CreateInstanceArgs, DestroyInstanceArgs, EnumerateInstanceExtensionPropertiesArgs,
    EnumeratePhysicalDeviceGroupsArgs, EnumeratePhysicalDevicesArgs,
};

use crate::context::{InstanceInfo, PhysicalInfo, State};
use crate::executor::{call, Fatal};
use crate::object_table::Entry;

/// The protocol's spec version for extension `name`, if the protocol carries it.
pub fn protocol_spec_version(name: &CStr) -> Option<u32> {
    let name = name.to_str().ok()?;
    venus_protocol::generated::EXTENSIONS
        .iter()
        .find(|(n, _, _)| *n == name)
        .map(|(_, _, v)| *v)
}

/// Filters `host` to the extensions the protocol carries (spec versions clamped).
pub fn filter_extensions(host: &[vk::ExtensionProperties]) -> Vec<vk::ExtensionProperties> {
    host.iter()
        .filter_map(|e| {
            let name = e.extension_name_as_c_str().ok()?;
            let v = protocol_spec_version(name)?;
            let mut e = *e;
            e.spec_version = e.spec_version.min(v);
            Some(e)
        })
        .collect()
}

/// Answers a two-call enumeration from `list`.
///
/// # Safety
/// `count` must be valid; `out`, if non-null, must hold `*count` elements.
pub unsafe fn answer_enumeration<T: Copy>(
    list: &[T],
    count: *mut u32,
    out: *mut T,
) -> Result<CallRet, Fatal> {
    // SAFETY: caller contract.
    let Some(count) = (unsafe { count.as_mut() }) else {
        return Err("enumeration without a count".into());
    };
    if out.is_null() {
        *count = list.len() as u32;
        return Ok(CallRet::Result(vk::Result::SUCCESS));
    }
    let n = (*count as usize).min(list.len());
    for (i, v) in list.iter().take(n).enumerate() {
        // SAFETY: `out` holds `*count` ≥ n elements (caller contract).
        unsafe { *out.add(i) = *v };
    }
    *count = n as u32;
    Ok(CallRet::Result(if n < list.len() {
        vk::Result::INCOMPLETE
    } else {
        vk::Result::SUCCESS
    }))
}

/// `vkCreateInstance`: the guest's extensions, the host's configured layers (the
/// guest's own layer requests are ignored: layers are host code).
pub fn create(st: &mut State, x: &CreateInstanceArgs<'_>) -> Result<CallRet, Fatal> {
    // SAFETY: decoder-built pointers.
    let info = unsafe { x.p_create_info.as_ref() }.ok_or("vkCreateInstance without create info")?;
    // SAFETY: as above.
    let slot = unsafe { x.p_instance.as_mut() }.ok_or("vkCreateInstance without an output id")?;
    let id = slot.as_raw();
    if id == 0 || st.objects.contains(vk::ObjectType::INSTANCE, id) {
        return Err(format!("instance id {id} is zero or in use"));
    }
    let layers: Vec<CString> = st
        .renderer
        .config
        .host_layers
        .iter()
        .filter_map(|l| CString::new(l.as_str()).ok())
        .collect();
    let layer_ptrs: Vec<*const c_char> = layers.iter().map(|l| l.as_ptr()).collect();
    let mut host_info = *info;
    // A nonzero apiVersion below 1.0 is invalid; a driver that accepts it hides
    // its 1.0 entry points. Ask for at least 1.1 (the protocol's minimum).
    let mut app = vk::ApplicationInfo::default();
    // SAFETY: a decoder-built pointer, or null.
    if let Some(a) = unsafe { info.p_application_info.as_ref() } {
        app = *a;
    }
    app.api_version = app.api_version.max(vk::API_VERSION_1_1);
    host_info.p_application_info = &app;
    host_info.enabled_layer_count = layer_ptrs.len() as u32;
    host_info.pp_enabled_layer_names = layer_ptrs.as_ptr();
    // SAFETY: `host_info` and everything it points to (decoded arena data, our
    // layer names) live through the call.
    let instance = match unsafe { st.renderer.entry.create_instance(&host_info, None) } {
        Ok(i) => i,
        Err(r) => return Ok(CallRet::Result(r)),
    };
    let host = instance.handle().as_raw();
    let gipa = st.renderer.entry.static_fn().get_instance_proc_addr;
    let table = Arc::new(DispatchTable::load(|name| {
        // SAFETY: an instance-level lookup on our live instance.
        unsafe { gipa(instance.handle(), name.as_ptr()) }
    }));
    st.objects
        .insert(
            vk::ObjectType::INSTANCE,
            id,
            Entry {
                host,
                device: 0,
                pool: 0,
            },
        )
        .map_err(|e| format!("instance {id}: {e:?}"))?;
    st.tables.insert(host, table.clone());
    st.instances.insert(
        host,
        InstanceInfo {
            table,
            ash: instance,
        },
    );
    tracing::debug!(id, "instance created");
    Ok(CallRet::Result(vk::Result::SUCCESS))
}

/// `vkDestroyInstance`: also forgets its physical devices.
pub fn destroy(st: &mut State, x: &DestroyInstanceArgs<'_>) -> Result<CallRet, Fatal> {
    let host = x.instance.as_raw();
    if host == 0 {
        return Ok(CallRet::Void);
    }
    let Some(info) = st.instances.remove(&host) else {
        return Err("vkDestroyInstance of an unknown instance".into());
    };
    // SAFETY: a live instance of this context, destroyed once.
    unsafe { info.ash.destroy_instance(None) };
    st.objects.remove_host(vk::ObjectType::INSTANCE, host);
    st.tables.remove(&host);
    let gone: Vec<u64> = st
        .physical
        .iter()
        .filter(|(_, p)| p.instance == host)
        .map(|(h, _)| *h)
        .collect();
    for pd in gone {
        st.physical.remove(&pd);
        st.tables.remove(&pd);
        st.objects.remove_host(vk::ObjectType::PHYSICAL_DEVICE, pd);
    }
    Ok(CallRet::Void)
}

/// Records host physical device `host` as guest id `id` of `instance`.
fn record_physical(st: &mut State, instance: u64, id: u64, host: u64) -> Result<(), Fatal> {
    if id == 0 {
        return Ok(());
    }
    if let Some(e) = st.objects.get(vk::ObjectType::PHYSICAL_DEVICE, id) {
        if e.host != host {
            return Err(format!(
                "physical device id {id} already names another device"
            ));
        }
        return Ok(());
    }
    if st
        .objects
        .guest_of(vk::ObjectType::PHYSICAL_DEVICE, host)
        .is_some()
    {
        // Already known under another id (a second enumeration); keep the first.
        return Ok(());
    }
    let info = st
        .instances
        .get(&instance)
        .ok_or("physical device of an unknown instance")?;
    let pd = vk::PhysicalDevice::from_raw(host);
    // SAFETY: `pd` was just enumerated from this live instance.
    let extensions =
        unsafe { info.ash.enumerate_device_extension_properties(pd) }.unwrap_or_default();
    let table = info.table.clone();
    st.objects
        .insert(
            vk::ObjectType::PHYSICAL_DEVICE,
            id,
            Entry {
                host,
                device: 0,
                pool: 0,
            },
        )
        .map_err(|e| format!("physical device {id}: {e:?}"))?;
    st.tables.insert(host, table);
    st.physical.insert(
        host,
        PhysicalInfo {
            instance,
            extensions,
        },
    );
    Ok(())
}

/// `vkEnumeratePhysicalDevices`: output slots carry the guest's ids.
pub fn enumerate_physical_devices(
    st: &mut State,
    x: &EnumeratePhysicalDevicesArgs<'_>,
) -> Result<CallRet, Fatal> {
    // SAFETY: decoder-built pointer.
    let cap = unsafe { x.p_physical_device_count.as_ref() }
        .copied()
        .ok_or("no count")? as usize;
    if x.p_physical_devices.is_null() {
        return call(st, &Command::EnumeratePhysicalDevices(*x));
    }
    let mut host = vec![vk::PhysicalDevice::null(); cap];
    let host_cmd = Command::EnumeratePhysicalDevices(EnumeratePhysicalDevicesArgs {
        p_physical_devices: host.as_mut_ptr(),
        ..*x
    });
    let ret = call(st, &host_cmd)?;
    if ret.result().as_raw() >= 0 {
        // SAFETY: as above; the driver wrote the count.
        let n = (unsafe { *x.p_physical_device_count } as usize).min(cap);
        for (i, h) in host.iter().take(n).enumerate() {
            // SAFETY: the decoder allocated `cap` ≥ n slots.
            let id = unsafe { *x.p_physical_devices.add(i) }.as_raw();
            record_physical(st, x.instance.as_raw(), id, h.as_raw())?;
        }
    }
    Ok(ret)
}

/// `vkEnumeratePhysicalDeviceGroups`: each group's handle array carries guest ids.
pub fn enumerate_groups(
    st: &mut State,
    x: &EnumeratePhysicalDeviceGroupsArgs<'_>,
) -> Result<CallRet, Fatal> {
    // SAFETY: decoder-built pointer.
    let cap = unsafe { x.p_physical_device_group_count.as_ref() }
        .copied()
        .ok_or("no count")? as usize;
    let props = x.p_physical_device_group_properties;
    let mut ids: Vec<[vk::PhysicalDevice; vk::MAX_DEVICE_GROUP_SIZE]> = Vec::new();
    if !props.is_null() {
        for i in 0..cap {
            // SAFETY: the decoder allocated `cap` elements.
            ids.push(unsafe { (*props.add(i)).physical_devices });
        }
    }
    let ret = call(st, &Command::EnumeratePhysicalDeviceGroups(*x))?;
    if ret.result().as_raw() >= 0 && !props.is_null() {
        // SAFETY: the driver wrote the count.
        let n = (unsafe { *x.p_physical_device_group_count } as usize).min(cap);
        for (i, gids) in ids.iter().enumerate().take(n) {
            // SAFETY: within the `cap` elements.
            let g = unsafe { &mut *props.add(i) };
            let m = (g.physical_device_count as usize).min(vk::MAX_DEVICE_GROUP_SIZE);
            for (slot, gid) in g.physical_devices.iter_mut().zip(gids.iter()).take(m) {
                let host = slot.as_raw();
                record_physical(st, x.instance.as_raw(), gid.as_raw(), host)?;
                *slot = *gid;
            }
        }
    }
    Ok(ret)
}

/// `vkEnumerateInstanceExtensionProperties`: the host's, filtered to the protocol's.
pub fn enumerate_extensions(
    st: &mut State,
    x: &EnumerateInstanceExtensionPropertiesArgs<'_>,
) -> Result<CallRet, Fatal> {
    if !x.p_layer_name.is_null() {
        return Ok(CallRet::Result(vk::Result::ERROR_LAYER_NOT_PRESENT));
    }
    // SAFETY: a plain global query.
    let host = unsafe {
        st.renderer
            .entry
            .enumerate_instance_extension_properties(None)
    }
    .unwrap_or_default();
    let list = filter_extensions(&host);
    // SAFETY: decoder-built count and output array of `*count` elements.
    unsafe { answer_enumeration(&list, x.p_property_count, x.p_properties) }
}
