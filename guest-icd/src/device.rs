//! Devices and queues (dispatchable objects created by the guest, announced to the
//! host by id).

use std::collections::HashMap;
use std::sync::Mutex;

use ash::vk;
use ash::vk::Handle;
use venus_protocol::generated as g;

use crate::device_memory::MemoryState;
use crate::dispatch::{header, Header, ObjectKind};
use crate::guard;
use venus_protocol::mesa::DeviceQueueTimelineInfoMESA;

/// A `VkDevice`.
#[repr(C)]
pub struct Device {
    /// Dispatchable header (must be first).
    pub hdr: Header,
    queues: Mutex<HashMap<(u32, u32, u32), u64>>,
    /// Memory objects and the blocks they are carved from.
    pub memory: MemoryState,
    /// Command buffers (raw handles) by command pool id.
    pub pools: Mutex<HashMap<u64, Vec<u64>>>,
    /// Private data: (slot, object type, object handle) → value.
    pub private_data: Mutex<HashMap<(u64, i32, u64), u64>>,
    /// The physical device it was created from.
    pub physical_device: vk::PhysicalDevice,
    /// Event status slots in guest-visible memory.
    pub events: crate::event::Feedback,
}

/// A `VkQueue`.
#[repr(C)]
pub struct Queue {
    /// Dispatchable header (must be first).
    pub hdr: Header,
    /// The device it belongs to.
    device: vk::Device,
}

/// The `Device` behind a handle.
///
/// # Safety
/// `device` is a live device of this ICD.
pub unsafe fn device<'a>(device: vk::Device) -> Option<&'a Device> {
    // SAFETY: caller contract.
    unsafe { (device.as_raw() as usize as *const Device).as_ref() }
}

/// The `Device` a queue belongs to.
///
/// # Safety
/// `queue` is a live queue of this ICD, whose device is alive.
pub unsafe fn queue_device<'a>(queue: vk::Queue) -> Option<&'a Device> {
    // SAFETY: caller contract: queues are `Queue`s (header first).
    let q = unsafe { (queue.as_raw() as usize as *const Queue).as_ref() }?;
    // SAFETY: caller contract.
    unsafe { device(q.device) }
}

pub unsafe extern "system" fn create_device(
    pd: vk::PhysicalDevice,
    info: *const vk::DeviceCreateInfo<'_>,
    _alloc: *const vk::AllocationCallbacks<'_>,
    out: *mut vk::Device,
) -> vk::Result {
    guard(|| {
        // SAFETY: the application passes our physical device and valid pointers.
        let (Some(h), Some(out)) = (unsafe { header(pd.as_raw()) }, unsafe { out.as_mut() }) else {
            return vk::Result::ERROR_INITIALIZATION_FAILED;
        };
        let conn = h.conn.clone();
        let dev = Box::new(Device {
            hdr: Header::new(ObjectKind::Device, conn.clone()),
            queues: Mutex::new(HashMap::new()),
            memory: MemoryState::new(pd),
            pools: Mutex::new(HashMap::new()),
            private_data: Mutex::new(HashMap::new()),
            physical_device: pd,
            events: crate::event::Feedback::new(&*conn.transport),
        });
        let mut slot = vk::Device::from_raw(dev.hdr.id);
        let slot_p: *mut vk::Device = &mut slot;
        let mut ret = vk::Result::ERROR_DEVICE_LOST;
        let r = conn.call(
            // SAFETY: the application's create info, valid per the Vulkan rules.
            &mut |e, f| unsafe {
                g::encode_vk_create_device(e, f, pd, info, std::ptr::null(), slot_p)
            },
            &mut |d| {
                // SAFETY: as above.
                ret = unsafe {
                    g::decode_reply_vk_create_device(d, pd, info, std::ptr::null(), slot_p)
                }
            },
        );
        if let Err(e) = r {
            return e;
        }
        if ret != vk::Result::SUCCESS {
            return ret;
        }
        *out = vk::Device::from_raw(Box::into_raw(dev) as u64);
        vk::Result::SUCCESS
    })
}

pub unsafe extern "system" fn destroy_device(
    device: vk::Device,
    _alloc: *const vk::AllocationCallbacks<'_>,
) {
    guard(|| {
        if device.as_raw() == 0 {
            return;
        }
        // SAFETY: the application passes a device of ours, destroyed once.
        let dev = unsafe { Box::from_raw(device.as_raw() as usize as *mut Device) };
        let conn = dev.hdr.conn.clone();
        dev.events.release(device);
        dev.memory.free_blocks(&conn, device);
        let _ = conn.send(&mut |e, f| {
            // SAFETY: plain handle.
            unsafe { g::encode_vk_destroy_device(e, f, device, std::ptr::null()) }
        });
        for (_, q) in dev.queues.lock().unwrap_or_else(|p| p.into_inner()).drain() {
            // SAFETY: created by `queue` below, freed once.
            drop(unsafe { Box::from_raw(q as usize as *mut Queue) });
        }
        for (_, cbs) in dev.pools.lock().unwrap_or_else(|p| p.into_inner()).drain() {
            crate::command_buffer::free_objects(&cbs);
        }
        dev.memory.release_all(&*conn.transport);
    })
}

/// The queue object for (family, index, flags), created on first use.
fn queue(device: vk::Device, key: (u32, u32, u32), announce: &mut dyn FnMut(u64)) -> Option<u64> {
    // SAFETY: the application passes a device of ours.
    let dev = unsafe { self::device(device) }?;
    let mut queues = dev.queues.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(q) = queues.get(&key) {
        return Some(*q);
    }
    let q = Box::new(Queue {
        hdr: Header::new(ObjectKind::Queue, dev.hdr.conn.clone()),
        device,
    });
    announce(q.hdr.id);
    let raw = Box::into_raw(q) as u64;
    queues.insert(key, raw);
    Some(raw)
}

/// Announces queue `id` for (family, index, flags) with `vkGetDeviceQueue2`, bound to
/// a fresh fence timeline (virglrenderer requires the timeline struct and refuses
/// the v1 command).
fn announce_queue(
    dev: &Device,
    device: vk::Device,
    family: u32,
    index: u32,
    flags: vk::DeviceQueueCreateFlags,
    id: u64,
) {
    let ring_idx = dev.hdr.conn.next_ring_idx();
    let timeline = DeviceQueueTimelineInfoMESA {
        ring_idx,
        ..Default::default()
    };
    let mut info = vk::DeviceQueueInfo2::default()
        .queue_family_index(family)
        .queue_index(index)
        .flags(flags);
    info.p_next = (&timeline as *const DeviceQueueTimelineInfoMESA).cast();
    let mut slot = vk::Queue::from_raw(id);
    let _ = dev.hdr.conn.send(&mut |e, f| {
        // SAFETY: valid local pointers.
        unsafe { g::encode_vk_get_device_queue2(e, f, device, &info, &mut slot) }
    });
}

pub unsafe extern "system" fn get_device_queue(
    device: vk::Device,
    family: u32,
    index: u32,
    out: *mut vk::Queue,
) {
    guard(|| {
        // SAFETY: the application passes a device of ours.
        let Some(dev) = (unsafe { self::device(device) }) else {
            return;
        };
        let q = queue(device, (family, index, 0), &mut |id| {
            announce_queue(
                dev,
                device,
                family,
                index,
                vk::DeviceQueueCreateFlags::empty(),
                id,
            )
        });
        // SAFETY: valid pointer per the Vulkan rules.
        if let (Some(q), Some(out)) = (q, unsafe { out.as_mut() }) {
            *out = vk::Queue::from_raw(q);
        }
    })
}

pub unsafe extern "system" fn get_device_queue2(
    device: vk::Device,
    info: *const vk::DeviceQueueInfo2<'_>,
    out: *mut vk::Queue,
) {
    guard(|| {
        // SAFETY: the application passes a device of ours and valid pointers.
        let (Some(dev), Some(i)) = (unsafe { self::device(device) }, unsafe { info.as_ref() })
        else {
            return;
        };
        let q = queue(
            device,
            (i.queue_family_index, i.queue_index, i.flags.as_raw()),
            &mut |id| {
                announce_queue(
                    dev,
                    device,
                    i.queue_family_index,
                    i.queue_index,
                    i.flags,
                    id,
                )
            },
        );
        // SAFETY: valid pointer per the Vulkan rules.
        if let (Some(q), Some(out)) = (q, unsafe { out.as_mut() }) {
            *out = vk::Queue::from_raw(q);
        }
    })
}

/// `vkQueueWaitIdle` as Mesa does it: virglrenderer refuses the blocking
/// `vkQueueWaitIdle` / `vkDeviceWaitIdle` commands (they make the context fatal),
/// so submit nothing with a fence and wait for that fence.
pub unsafe extern "system" fn queue_wait_idle(queue: vk::Queue) -> vk::Result {
    guard(|| {
        // SAFETY: the application passes a queue of ours (a `Queue`).
        let Some(q) = (unsafe { (queue.as_raw() as usize as *const Queue).as_ref() }) else {
            return vk::Result::ERROR_DEVICE_LOST;
        };
        // SAFETY: a live queue of a live device.
        unsafe { wait_idle(q.device, queue) }
    })
}

/// `vkDeviceWaitIdle`: every queue the application got, idled in turn (Mesa's way).
pub unsafe extern "system" fn device_wait_idle(device: vk::Device) -> vk::Result {
    guard(|| {
        // SAFETY: the application passes a device of ours.
        let Some(dev) = (unsafe { self::device(device) }) else {
            return vk::Result::ERROR_DEVICE_LOST;
        };
        let queues: Vec<u64> = dev
            .queues
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .copied()
            .collect();
        for q in queues {
            // SAFETY: queues live as long as their device.
            let r = unsafe { wait_idle(device, vk::Queue::from_raw(q)) };
            if r != vk::Result::SUCCESS {
                return r;
            }
        }
        vk::Result::SUCCESS
    })
}

/// An empty submit on `queue` with a new fence, a wait for it, the fence destroyed.
///
/// # Safety
/// `device` and `queue` are live objects of this ICD, `queue` of `device`.
unsafe fn wait_idle(device: vk::Device, queue: vk::Queue) -> vk::Result {
    use crate::dispatch::Rt;
    use g::guest_calls as c;
    let info = vk::FenceCreateInfo::default();
    let mut fence = vk::Fence::null();
    // SAFETY: valid local pointers; caller contract for `device`.
    let r = unsafe { c::vk_create_fence::<Rt>(device, &info, std::ptr::null(), &mut fence) };
    if r != vk::Result::SUCCESS {
        return r;
    }
    // SAFETY: no submits; a fence just created; caller contract for `queue`.
    let mut r = unsafe { c::vk_queue_submit::<Rt>(queue, 0, std::ptr::null(), fence) };
    if r == vk::Result::SUCCESS {
        // SAFETY: one valid local fence.
        r = unsafe { c::vk_wait_for_fences::<Rt>(device, 1, &fence, vk::TRUE, u64::MAX) };
    }
    // SAFETY: our fence, no longer in use (waited for, or never submitted).
    unsafe { c::vk_destroy_fence::<Rt>(device, fence, std::ptr::null()) };
    r
}

pub unsafe extern "system" fn create_private_data_slot(
    _device: vk::Device,
    _info: *const vk::PrivateDataSlotCreateInfo<'_>,
    _alloc: *const vk::AllocationCallbacks<'_>,
    out: *mut vk::PrivateDataSlot,
) -> vk::Result {
    guard(|| {
        // SAFETY: valid pointer per the Vulkan rules.
        match unsafe { out.as_mut() } {
            Some(o) => {
                *o = vk::PrivateDataSlot::from_raw(crate::dispatch::next_id());
                vk::Result::SUCCESS
            }
            None => vk::Result::ERROR_INITIALIZATION_FAILED,
        }
    })
}

pub unsafe extern "system" fn destroy_private_data_slot(
    device: vk::Device,
    slot: vk::PrivateDataSlot,
    _alloc: *const vk::AllocationCallbacks<'_>,
) {
    guard(|| {
        // SAFETY: the application passes a device of ours.
        if let Some(dev) = unsafe { self::device(device) } {
            dev.private_data
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .retain(|k, _| k.0 != slot.as_raw());
        }
    })
}

pub unsafe extern "system" fn set_private_data(
    device: vk::Device,
    ty: vk::ObjectType,
    handle: u64,
    slot: vk::PrivateDataSlot,
    data: u64,
) -> vk::Result {
    guard(|| {
        // SAFETY: the application passes a device of ours.
        let Some(dev) = (unsafe { self::device(device) }) else {
            return vk::Result::ERROR_INITIALIZATION_FAILED;
        };
        dev.private_data
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert((slot.as_raw(), ty.as_raw(), handle), data);
        vk::Result::SUCCESS
    })
}

pub unsafe extern "system" fn get_private_data(
    device: vk::Device,
    ty: vk::ObjectType,
    handle: u64,
    slot: vk::PrivateDataSlot,
    out: *mut u64,
) {
    guard(|| {
        // SAFETY: the application passes a device of ours and a valid pointer.
        let (Some(dev), Some(out)) = (unsafe { self::device(device) }, unsafe { out.as_mut() })
        else {
            return;
        };
        *out = dev
            .private_data
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&(slot.as_raw(), ty.as_raw(), handle))
            .copied()
            .unwrap_or(0);
    })
}

/// A clock of the guest, in nanoseconds.
fn clock_ns(clock: libc::clockid_t) -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid timespec to write.
    if unsafe { libc::clock_gettime(clock, &mut ts) } != 0 {
        return 0;
    }
    u64::try_from(ts.tv_sec)
        .unwrap_or(0)
        .saturating_mul(1_000_000_000)
        .saturating_add(u64::try_from(ts.tv_nsec).unwrap_or(0))
}

/// vkGetCalibratedTimestampsEXT as Mesa does it: the device domain comes from the
/// host, the CPU clocks are the guest's own (the host's CLOCK_MONOTONIC means nothing
/// to a guest in a VM), and the deviation covers the whole sampling interval.
pub unsafe extern "system" fn get_calibrated_timestamps(
    device: vk::Device,
    count: u32,
    infos: *const vk::CalibratedTimestampInfoEXT<'_>,
    timestamps: *mut u64,
    max_deviation: *mut u64,
) -> vk::Result {
    guard(|| {
        if infos.is_null() || timestamps.is_null() || max_deviation.is_null() {
            return vk::Result::ERROR_INITIALIZATION_FAILED;
        }
        // SAFETY: `count` infos and timestamp slots (Vulkan rules).
        let (infos, out) = unsafe {
            (
                std::slice::from_raw_parts(infos, count as usize),
                std::slice::from_raw_parts_mut(timestamps, count as usize),
            )
        };
        let begin = clock_ns(libc::CLOCK_MONOTONIC_RAW);
        let mut max_period = 0u64;
        for (info, slot) in infos.iter().zip(out.iter_mut()) {
            *slot = match info.time_domain {
                vk::TimeDomainEXT::DEVICE => {
                    let mut deviation = 0u64;
                    let one = *info;
                    // SAFETY: one info, one timestamp slot, a deviation slot.
                    let r = unsafe {
                        g::guest_calls::vk_get_calibrated_timestamps_ext::<crate::dispatch::Rt>(
                            device,
                            1,
                            &one,
                            slot,
                            &mut deviation,
                        )
                    };
                    if r != vk::Result::SUCCESS {
                        return r;
                    }
                    max_period = max_period.max(deviation);
                    *slot
                }
                vk::TimeDomainEXT::CLOCK_MONOTONIC => {
                    max_period = max_period.max(1);
                    clock_ns(libc::CLOCK_MONOTONIC)
                }
                vk::TimeDomainEXT::CLOCK_MONOTONIC_RAW => begin,
                _ => 0,
            };
        }
        let end = clock_ns(libc::CLOCK_MONOTONIC_RAW);
        // The sampling interval plus the longest period of any sampled clock.
        let deviation = end
            .saturating_sub(begin)
            .saturating_add(1)
            .saturating_add(max_period);
        // SAFETY: checked non-null above.
        unsafe { *max_deviation = deviation };
        vk::Result::SUCCESS
    })
}
