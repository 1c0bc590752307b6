//! Command buffers: allocation from pools (recording which pool), freeing, and
//! pool destruction (which frees the pool's buffers).

use ash::vk;
use ash::vk::Handle;
use venus_protocol::generated::host_calls::CallRet;
use venus_protocol::generated::{
    AllocateCommandBuffersArgs, Command, DestroyCommandPoolArgs, FreeCommandBuffersArgs,
};

use crate::context::State;
use crate::executor::{generic, generic_with, Fatal};

/// `vkAllocateCommandBuffers`.
pub fn allocate(
    st: &mut State,
    cmd: &Command<'_>,
    x: &AllocateCommandBuffersArgs<'_>,
) -> Result<CallRet, Fatal> {
    // SAFETY: decoder-built pointer.
    let info = unsafe { x.p_allocate_info.as_ref() }.ok_or("no allocate info")?;
    let ret = generic_with(st, cmd, info.command_pool.as_raw())?;
    if ret.result() == vk::Result::SUCCESS && !x.p_command_buffers.is_null() {
        let table = st
            .devices
            .get(&x.device.as_raw())
            .map(|d| d.table.clone())
            .ok_or("unknown device")?;
        for i in 0..info.command_buffer_count as usize {
            // SAFETY: the decoder allocated `command_buffer_count` slots.
            let id = unsafe { *x.p_command_buffers.add(i) }.as_raw();
            if let Some(e) = st.objects.get(vk::ObjectType::COMMAND_BUFFER, id) {
                st.tables.insert(e.host, table.clone());
            }
        }
    }
    Ok(ret)
}

fn forget(st: &mut State, host: u64) {
    st.objects.remove_host(vk::ObjectType::COMMAND_BUFFER, host);
    st.tables.remove(&host);
}

/// `vkFreeCommandBuffers`.
pub fn free(
    st: &mut State,
    cmd: &Command<'_>,
    x: &FreeCommandBuffersArgs<'_>,
) -> Result<CallRet, Fatal> {
    let ret = generic(st, cmd)?;
    if !x.p_command_buffers.is_null() {
        for i in 0..x.command_buffer_count as usize {
            // SAFETY: the decoder allocated `command_buffer_count` elements.
            let h = unsafe { *x.p_command_buffers.add(i) }.as_raw();
            forget(st, h);
        }
    }
    Ok(ret)
}

/// `vkDestroyCommandPool`.
pub fn destroy_pool(
    st: &mut State,
    cmd: &Command<'_>,
    x: &DestroyCommandPoolArgs<'_>,
) -> Result<CallRet, Fatal> {
    let ret = generic(st, cmd)?;
    let pool = x.command_pool.as_raw();
    if pool != 0 {
        let gone = st
            .objects
            .remove_where(|ty, e| ty == vk::ObjectType::COMMAND_BUFFER && e.pool == pool);
        for (_, e) in gone {
            st.tables.remove(&e.host);
        }
    }
    Ok(ret)
}
