//! Queues: retrieval (binding a queue to a fence timeline), and the Venus fence
//! resource command.

use ash::vk;
use ash::vk::Handle;
use venus_protocol::generated::host_calls::CallRet;
use venus_protocol::generated::{Command, GetDeviceQueue2Args};
use venus_protocol::mesa::DeviceQueueTimelineInfoMESA;

use crate::chain_edit;
use crate::context::State;
use crate::executor::{generic, Fatal};

/// sType of `VkDeviceQueueTimelineInfoMESA`.
const DEVICE_QUEUE_TIMELINE_INFO_MESA: i32 = 1_000_384_005;

/// `vkGetDeviceQueue` / `vkGetDeviceQueue2`. The private timeline struct is taken
/// out of the chain and binds the queue to its ring_idx.
pub fn get(st: &mut State, cmd: &Command<'_>) -> Result<CallRet, Fatal> {
    let (device, ring_idx, ret) = match cmd {
        Command::GetDeviceQueue2(x) => {
            // SAFETY: decoder-built pointer.
            let info =
                unsafe { x.p_queue_info.as_ref() }.ok_or("vkGetDeviceQueue2 without info")?;
            let mut host_info = *info;
            let mut ring_idx = None;
            // Rebuild the chain without our private struct.
            // SAFETY: a decoder-built chain of this command.
            let mut kept = unsafe { chain_edit::members(info.p_next) };
            kept.retain(|p| {
                // SAFETY: chain members start with sType.
                if unsafe { (**p).s_type.as_raw() } != DEVICE_QUEUE_TIMELINE_INFO_MESA {
                    return true;
                }
                // SAFETY: this sType is the private struct the decoder built.
                ring_idx = Some(unsafe { (*(*p as *const DeviceQueueTimelineInfoMESA)).ring_idx });
                false
            });
            // SAFETY: arena structs of this command.
            host_info.p_next = unsafe { chain_edit::relink(&kept) };
            let host_cmd = Command::GetDeviceQueue2(GetDeviceQueue2Args {
                p_queue_info: &host_info,
                ..*x
            });
            let ret = generic(st, &host_cmd)?;
            (x.device.as_raw(), ring_idx, (ret, x.p_queue))
        }
        Command::GetDeviceQueue(x) => {
            let ret = generic(st, cmd)?;
            (x.device.as_raw(), None, (ret, x.p_queue))
        }
        _ => return Err("not a queue command".into()),
    };
    let (ret, slot) = ret;
    // SAFETY: decoder-built output slot, now holding the guest id again.
    let Some(id) = (unsafe { slot.as_ref() }).map(|q| q.as_raw()) else {
        return Ok(ret);
    };
    let Some(host) = st.objects.get(vk::ObjectType::QUEUE, id).map(|e| e.host) else {
        return Ok(ret);
    };
    if let Some(t) = st.devices.get(&device).map(|d| d.table.clone()) {
        st.tables.insert(host, t);
    }
    if let Some(idx) = ring_idx {
        if idx == 0 || idx >= 64 {
            return Err(format!("queue bound to invalid ring_idx {idx}"));
        }
        st.queue_of_ring.insert(idx, (device, host));
    }
    Ok(ret)
}

/// `vkResetFenceResourceMESA`: resets the fence on the host.
pub fn reset_fence_resource(
    st: &mut State,
    device: vk::Device,
    fence: vk::Fence,
) -> Result<CallRet, Fatal> {
    let dev = st.devices.get(&device.as_raw()).ok_or("unknown device")?;
    // SAFETY: live device and fence of this context (resolved by the decoder).
    let r = unsafe { dev.ash.reset_fences(&[fence]) };
    Ok(CallRet::Result(r.err().unwrap_or(vk::Result::SUCCESS)))
}
