//! Buffers. On devices whose host-visible memory is imported host memory, every
//! buffer is created as importable from host allocations
//! (`VkExternalMemoryBufferCreateInfo`), as binding imported memory requires.

use ash::vk;
use ash::vk::Handle;
use venus_protocol::generated::host_calls::CallRet;
use venus_protocol::generated::{Command, CreateBufferArgs};

use crate::context::State;
use crate::executor::{generic, Fatal};

/// Points an existing external-memory struct of type `s_type` in the chain of
/// `head` at `types`; returns false if the chain has none.
///
/// # Safety
/// `head` is null or a decoder-built chain (arena structs, mutable for this command).
pub(crate) unsafe fn retarget_external(
    head: *const core::ffi::c_void,
    s_type: vk::StructureType,
    types: vk::ExternalMemoryHandleTypeFlags,
) -> bool {
    // SAFETY: caller contract.
    let Some(p) = (unsafe { crate::chain_edit::find(head, s_type.as_raw()) }) else {
        return false;
    };
    // Both external-memory create infos are {sType, pNext, handleTypes}.
    // SAFETY: this sType is one of those structs, built by the decoder.
    unsafe { (*(p as *mut vk::ExternalMemoryBufferCreateInfo<'_>)).handle_types = types };
    true
}

/// `vkCreateBuffer`.
pub fn create(
    st: &mut State,
    cmd: &Command<'_>,
    x: &CreateBufferArgs<'_>,
) -> Result<CallRet, Fatal> {
    let import = st
        .devices
        .get(&x.device.as_raw())
        .is_some_and(|d| d.host_import.is_some());
    // SAFETY: decoder-built pointer.
    let Some(info) = (unsafe { x.p_create_info.as_ref() }) else {
        return generic(st, cmd);
    };
    if !import {
        return generic(st, cmd);
    }
    let types = vk::ExternalMemoryHandleTypeFlags::HOST_ALLOCATION_EXT;
    // SAFETY: the decoder built this chain for this command.
    if unsafe {
        retarget_external(
            info.p_next,
            vk::StructureType::EXTERNAL_MEMORY_BUFFER_CREATE_INFO,
            types,
        )
    } {
        return generic(st, cmd);
    }
    let mut ext = vk::ExternalMemoryBufferCreateInfo::default().handle_types(types);
    ext.p_next = info.p_next;
    let mut host_info = *info;
    host_info.p_next = (&ext as *const vk::ExternalMemoryBufferCreateInfo<'_>).cast();
    generic(
        st,
        &Command::CreateBuffer(CreateBufferArgs {
            p_create_info: &host_info,
            ..*x
        }),
    )
}
