//! Device memory. Host-visible allocations are backed by shared memory that the
//! host maps and imports with `VK_EXT_external_memory_host`, so the same pages
//! can be handed to the guest as a blob (blob id = the memory's id). Resources
//! can be imported back as device memory (`VkImportMemoryResourceInfoMESA`).

use std::sync::Arc;

use ash::vk;
use ash::vk::Handle;
use venus_protocol::generated::host_calls::CallRet;
use venus_protocol::generated::{
    AllocateMemoryArgs, Command, FreeMemoryArgs, GetMemoryResourcePropertiesMESAArgs,
};
use venus_protocol::mesa::{
    ImportMemoryResourceInfoMESA, MemoryResourceAllocationSizePropertiesMESA,
};

use crate::chain_edit;
use crate::context::{DeviceInfo, State};
use crate::executor::{generic, Fatal};
use crate::object_table::Entry;
use crate::shmem::Shmem;

const IMPORT_MEMORY_RESOURCE_INFO_MESA: i32 = 1_000_384_002;
const MEMORY_RESOURCE_ALLOCATION_SIZE_PROPERTIES_MESA: i32 = 1_000_384_003;

/// Chain members the host keeps when it allocates (others are about the guest's
/// external-memory view, which the host provides itself).
fn keep_in_chain(s_type: vk::StructureType) -> bool {
    matches!(
        s_type,
        vk::StructureType::MEMORY_ALLOCATE_FLAGS_INFO
            | vk::StructureType::MEMORY_OPAQUE_CAPTURE_ADDRESS_ALLOCATE_INFO
            | vk::StructureType::MEMORY_PRIORITY_ALLOCATE_INFO_EXT
            | vk::StructureType::MEMORY_DEDICATED_ALLOCATE_INFO
    )
}

fn round_up(v: u64, align: u64) -> Option<u64> {
    let a = align.max(1);
    v.checked_add(a - 1).map(|x| x / a * a)
}

/// The memory types the driver can import `ptr` into.
fn host_pointer_types(dev: &DeviceInfo, ptr: *mut u8) -> u32 {
    let Some(f) = dev.host_pointer_properties else {
        return 0;
    };
    let mut props = vk::MemoryHostPointerPropertiesEXT::default();
    // SAFETY: `ptr` is a live mapping of ours; the device has the extension enabled.
    let r = unsafe {
        f(
            dev.ash.handle(),
            vk::ExternalMemoryHandleTypeFlags::HOST_ALLOCATION_EXT,
            ptr.cast(),
            &mut props,
        )
    };
    if r == vk::Result::SUCCESS {
        props.memory_type_bits
    } else {
        0
    }
}

/// `vkAllocateMemory`.
pub fn allocate(
    st: &mut State,
    cmd: &Command<'_>,
    x: &AllocateMemoryArgs<'_>,
) -> Result<CallRet, Fatal> {
    // SAFETY: decoder-built pointers.
    let info = unsafe { x.p_allocate_info.as_ref() }.ok_or("vkAllocateMemory without info")?;
    // SAFETY: as above.
    let id = unsafe { x.p_memory.as_ref() }
        .ok_or("vkAllocateMemory without an output id")?
        .as_raw();
    if id == 0 || st.objects.contains(vk::ObjectType::DEVICE_MEMORY, id) {
        return Err(format!("memory id {id} is zero or in use"));
    }
    let device = x.device.as_raw();
    let dev = st.devices.get(&device).ok_or("unknown device")?;
    let type_flags = dev
        .memory_types
        .get(info.memory_type_index as usize)
        .copied()
        .unwrap_or_default();
    // Walk the chain: note a resource import, keep what the driver should see.
    let mut import_res: Option<u32> = None;
    // SAFETY: a decoder-built chain of this command.
    let mut kept = unsafe { chain_edit::members(info.p_next) };
    kept.retain(|p| {
        // SAFETY: chain members start with sType.
        let s_type = unsafe { (**p).s_type };
        if s_type.as_raw() == IMPORT_MEMORY_RESOURCE_INFO_MESA {
            // SAFETY: the decoder built this private struct for this sType.
            import_res =
                Some(unsafe { (*(*p as *const ImportMemoryResourceInfoMESA)).resource_id });
        }
        keep_in_chain(s_type)
    });
    let mut shm: Option<Arc<Shmem>> = None;
    let mut size = info.allocation_size;
    if let Some((align, _)) = dev.host_import {
        if let Some(res) = import_res {
            let s = st
                .resources
                .get(&res)
                .cloned()
                .ok_or_else(|| format!("import of unknown resource {res}"))?;
            size = round_up(size, align)
                .filter(|s2| *s2 <= s.size())
                .ok_or("import larger than its resource")?;
            shm = Some(s);
        } else if type_flags.contains(vk::MemoryPropertyFlags::HOST_VISIBLE) {
            size = round_up(size, align).ok_or("allocation size overflows")?;
            if size > crate::limits::MAX_BLOB_SIZE {
                return Ok(CallRet::Result(vk::Result::ERROR_OUT_OF_DEVICE_MEMORY));
            }
            match Shmem::new_charged(c"venus-memory", size, align, &st.memory_quota) {
                Ok(s) => shm = Some(Arc::new(s)),
                Err(e @ crate::error::Error::Quota(_)) => {
                    tracing::warn!("vkAllocateMemory of {size} bytes: {e}");
                    return Ok(CallRet::Result(vk::Result::ERROR_OUT_OF_DEVICE_MEMORY));
                }
                Err(e) => {
                    tracing::warn!("cannot back host-visible memory: {e}");
                    return Ok(CallRet::Result(vk::Result::ERROR_OUT_OF_HOST_MEMORY));
                }
            }
        }
    } else if import_res.is_some() {
        return Ok(CallRet::Result(vk::Result::ERROR_INVALID_EXTERNAL_HANDLE));
    }
    let mut import_info = vk::ImportMemoryHostPointerInfoEXT::default()
        .handle_type(vk::ExternalMemoryHandleTypeFlags::HOST_ALLOCATION_EXT);
    if let Some(s) = &shm {
        let bits = host_pointer_types(dev, s.ptr());
        if bits & (1u32 << (info.memory_type_index & 31)) == 0 {
            tracing::warn!(
                type_index = info.memory_type_index,
                bits,
                "driver cannot import host memory into this type"
            );
            return Ok(CallRet::Result(vk::Result::ERROR_INVALID_EXTERNAL_HANDLE));
        }
        import_info.p_host_pointer = s.ptr().cast();
        // A host-pointer import may not be a dedicated allocation.
        kept.retain(|p| {
            // SAFETY: as above.
            unsafe { (**p).s_type != vk::StructureType::MEMORY_DEDICATED_ALLOCATE_INFO }
        });
        kept.push((&mut import_info as *mut vk::ImportMemoryHostPointerInfoEXT<'_>).cast());
    }
    let mut host_info = *info;
    host_info.allocation_size = size;
    // SAFETY: arena structs of this command, or our local import struct.
    host_info.p_next = unsafe { chain_edit::relink(&kept) };
    // SAFETY: `host_info` and its chain live through the call; the device is live.
    let mem = match unsafe { dev.ash.allocate_memory(&host_info, None) } {
        Ok(m) => m,
        Err(r) => return Ok(CallRet::Result(r)),
    };
    if let (Some(s), Some((g, _))) = (&shm, dev.host_import) {
        crate::blob_log::record_import(size, s.ptr() as usize, g);
    }
    // map-ptr: keep the driver's mapping of host-visible memory for an in-process VMM.
    let mut mapped = None;
    if shm.is_none()
        && dev.strategy == crate::memory_strategy::MemoryStrategy::MapPtr
        && type_flags.contains(vk::MemoryPropertyFlags::HOST_VISIBLE)
    {
        // SAFETY: fresh host-visible memory of this device, mapped whole once.
        match unsafe {
            dev.ash
                .map_memory(mem, 0, vk::WHOLE_SIZE, vk::MemoryMapFlags::empty())
        } {
            Ok(p) => mapped = Some((p as usize, size)),
            Err(r) => tracing::warn!("map-ptr: vkMapMemory failed: {r:?}"),
        }
    }
    let host = mem.as_raw();
    st.objects
        .insert(
            vk::ObjectType::DEVICE_MEMORY,
            id,
            Entry {
                host,
                device,
                pool: 0,
            },
        )
        .map_err(|e| format!("{}: memory {id}: {e:?}", cmd.name()))?;
    if let Some(s) = shm {
        st.memories.insert(host, s);
    }
    if let Some(m) = mapped {
        st.mapped.insert(host, m);
    }
    Ok(CallRet::Result(vk::Result::SUCCESS))
}

/// `vkFreeMemory`: the shared memory goes once no blob still holds it.
pub fn free(st: &mut State, cmd: &Command<'_>, x: &FreeMemoryArgs<'_>) -> Result<CallRet, Fatal> {
    let ret = generic(st, cmd)?;
    st.memories.remove(&x.memory.as_raw());
    st.mapped.remove(&x.memory.as_raw());
    Ok(ret)
}

/// `vkGetMemoryResourcePropertiesMESA`: which memory types a resource can be imported as.
pub fn resource_properties(
    st: &mut State,
    x: &GetMemoryResourcePropertiesMESAArgs<'_>,
) -> Result<CallRet, Fatal> {
    // SAFETY: decoder-built output pointer.
    let Some(out) = (unsafe { x.p_memory_resource_properties.as_mut() }) else {
        return Err("no output struct".into());
    };
    let Some(shm) = st.resources.get(&x.resource_id).cloned() else {
        return Ok(CallRet::Result(vk::Result::ERROR_INVALID_EXTERNAL_HANDLE));
    };
    // The guest sees the size it asked for, never our granularity padding.
    let asked = st
        .requested
        .get(&x.resource_id)
        .copied()
        .unwrap_or(shm.size());
    let dev = st.devices.get(&x.device.as_raw()).ok_or("unknown device")?;
    if dev.host_import.is_none() {
        return Ok(CallRet::Result(vk::Result::ERROR_INVALID_EXTERNAL_HANDLE));
    }
    out.memory_type_bits = host_pointer_types(dev, shm.ptr());
    let sizes = MEMORY_RESOURCE_ALLOCATION_SIZE_PROPERTIES_MESA;
    // SAFETY: a decoder-built (partial) chain of this command.
    let found = unsafe { chain_edit::find(out.p_next, sizes) };
    if let Some(p) = found {
        // SAFETY: the decoder built this private struct for this sType.
        unsafe {
            (*(p as *mut MemoryResourceAllocationSizePropertiesMESA)).allocation_size = asked
        };
    }
    Ok(CallRet::Result(vk::Result::SUCCESS))
}
