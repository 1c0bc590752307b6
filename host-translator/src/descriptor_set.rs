//! Descriptor sets: allocation from pools (recording which pool), freeing, and
//! pool reset/destruction (which free the pool's sets).

use ash::vk;
use ash::vk::Handle;
use venus_protocol::generated::host_calls::CallRet;
use venus_protocol::generated::{AllocateDescriptorSetsArgs, Command, FreeDescriptorSetsArgs};

use crate::context::State;
use crate::executor::{generic, generic_with, Fatal};

/// `vkAllocateDescriptorSets`.
pub fn allocate(
    st: &mut State,
    cmd: &Command<'_>,
    x: &AllocateDescriptorSetsArgs<'_>,
) -> Result<CallRet, Fatal> {
    // SAFETY: decoder-built pointer.
    let info = unsafe { x.p_allocate_info.as_ref() }.ok_or("no allocate info")?;
    generic_with(st, cmd, info.descriptor_pool.as_raw())
}

/// `vkFreeDescriptorSets`.
pub fn free(
    st: &mut State,
    cmd: &Command<'_>,
    x: &FreeDescriptorSetsArgs<'_>,
) -> Result<CallRet, Fatal> {
    let ret = generic(st, cmd)?;
    if !x.p_descriptor_sets.is_null() {
        for i in 0..x.descriptor_set_count as usize {
            // SAFETY: the decoder allocated `descriptor_set_count` elements.
            let h = unsafe { *x.p_descriptor_sets.add(i) }.as_raw();
            st.objects.remove_host(vk::ObjectType::DESCRIPTOR_SET, h);
        }
    }
    Ok(ret)
}

fn forget_sets(st: &mut State, pool: vk::DescriptorPool) {
    let pool = pool.as_raw();
    if pool != 0 {
        st.objects
            .remove_where(|ty, e| ty == vk::ObjectType::DESCRIPTOR_SET && e.pool == pool);
    }
}

/// `vkDestroyDescriptorPool`.
pub fn destroy_pool(
    st: &mut State,
    cmd: &Command<'_>,
    pool: vk::DescriptorPool,
) -> Result<CallRet, Fatal> {
    let ret = generic(st, cmd)?;
    forget_sets(st, pool);
    Ok(ret)
}

/// `vkResetDescriptorPool`.
pub fn reset_pool(
    st: &mut State,
    cmd: &Command<'_>,
    pool: vk::DescriptorPool,
) -> Result<CallRet, Fatal> {
    let ret = generic(st, cmd)?;
    forget_sets(st, pool);
    Ok(ret)
}
