//! Descriptor sets: allocation from pools (recording which pool and which layout),
//! freeing, and pool reset/destruction (which free the pool's sets); set and pipeline
//! layouts, recorded so that descriptor writes, copies and push descriptors are
//! checked against them before the driver sees them ([`descriptor_layout`]).

use std::sync::Arc;

use ash::vk;
use ash::vk::Handle;
use venus_protocol::generated::host_calls::CallRet;
use venus_protocol::generated::{
    AllocateDescriptorSetsArgs, CmdPushDescriptorSetKHRArgs, Command,
    CreateDescriptorSetLayoutArgs, CreatePipelineLayoutArgs, FreeDescriptorSetsArgs,
    UpdateDescriptorSetsArgs,
};

use crate::context::State;
use crate::descriptor_layout::{self, Layout};
use crate::executor::{generic, generic_with, Fatal};

/// `vkAllocateDescriptorSets`.
pub fn allocate(
    st: &mut State,
    cmd: &Command<'_>,
    x: &AllocateDescriptorSetsArgs<'_>,
) -> Result<CallRet, Fatal> {
    // SAFETY: decoder-built pointer.
    let info = unsafe { x.p_allocate_info.as_ref() }.ok_or("no allocate info")?;
    let n = info.descriptor_set_count as usize;
    // Each set's layout, with the variable descriptor count the allocation gives.
    // SAFETY: decoder-built chain.
    let variable = unsafe { descriptor_layout_chain_counts(info.p_next) };
    let mut layouts = Vec::with_capacity(n);
    if !info.p_set_layouts.is_null() {
        // SAFETY: the decoder allocated `descriptor_set_count` translated handles.
        let handles = unsafe { std::slice::from_raw_parts(info.p_set_layouts, n) };
        for (i, l) in handles.iter().enumerate() {
            let layout = st.layouts.set_layouts.get(&l.as_raw()).ok_or_else(|| {
                format!(
                    "vkAllocateDescriptorSets: set layout {:#x} is unknown",
                    l.as_raw()
                )
            })?;
            let count = variable.and_then(|v| v.get(i).copied());
            layouts.push(
                descriptor_layout::with_variable_count(layout, count)
                    .map_err(|e| format!("vkAllocateDescriptorSets: {e}"))?,
            );
        }
    }
    let ret = generic_with(st, cmd, info.descriptor_pool.as_raw())?;
    if ret.result() == vk::Result::SUCCESS && !x.p_descriptor_sets.is_null() {
        for (i, layout) in layouts.into_iter().enumerate().take(n) {
            // SAFETY: the decoder allocated `descriptor_set_count` slots; they hold the
            // guest ids again.
            let guest = unsafe { *x.p_descriptor_sets.add(i) }.as_raw();
            if let Some(e) = st.objects.get(vk::ObjectType::DESCRIPTOR_SET, guest) {
                let host = e.host;
                st.layouts.sets.insert(host, layout);
            }
        }
    }
    Ok(ret)
}

/// The variable descriptor counts a `VkDescriptorSetVariableDescriptorCountAllocateInfo`
/// in `chain` gives, if any.
///
/// # Safety
/// `chain` is null or a decoder-built chain.
unsafe fn descriptor_layout_chain_counts<'a>(
    mut chain: *const core::ffi::c_void,
) -> Option<&'a [u32]> {
    while !chain.is_null() {
        // SAFETY: decoded chain structs start with sType and pNext.
        let s = unsafe { &*chain.cast::<vk::BaseInStructure<'_>>() };
        if s.s_type == vk::StructureType::DESCRIPTOR_SET_VARIABLE_DESCRIPTOR_COUNT_ALLOCATE_INFO {
            // SAFETY: a decoded struct of that type.
            let v = unsafe {
                &*chain.cast::<vk::DescriptorSetVariableDescriptorCountAllocateInfo<'_>>()
            };
            if v.p_descriptor_counts.is_null() {
                return Some(&[]);
            }
            // SAFETY: the decoder allocated `descriptor_set_count` counts.
            return Some(unsafe {
                std::slice::from_raw_parts(v.p_descriptor_counts, v.descriptor_set_count as usize)
            });
        }
        chain = s.p_next.cast();
    }
    None
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
            st.layouts.sets.remove(&h);
        }
    }
    Ok(ret)
}

fn forget_sets(st: &mut State, pool: vk::DescriptorPool) {
    let pool = pool.as_raw();
    if pool != 0 {
        let gone = st
            .objects
            .remove_where(|ty, e| ty == vk::ObjectType::DESCRIPTOR_SET && e.pool == pool);
        for (_, e) in gone {
            st.layouts.sets.remove(&e.host);
        }
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

/// The host handle of the object whose guest id the driver call left in `slot`.
fn created(st: &State, ty: vk::ObjectType, guest: u64) -> Option<u64> {
    st.objects.get(ty, guest).map(|e| e.host)
}

/// `vkCreateDescriptorSetLayout`: the layout is recorded for the checks of writes.
pub fn create_layout(
    st: &mut State,
    cmd: &Command<'_>,
    x: &CreateDescriptorSetLayoutArgs<'_>,
) -> Result<CallRet, Fatal> {
    // SAFETY: decoder-built pointer.
    let info = unsafe { x.p_create_info.as_ref() }.ok_or("no create info")?;
    // SAFETY: decoder-built struct.
    let layout = unsafe { descriptor_layout::layout_of(info) }
        .map_err(|e| format!("vkCreateDescriptorSetLayout: {e}"))?;
    let ret = generic(st, cmd)?;
    if ret.result() == vk::Result::SUCCESS {
        // SAFETY: decoder-built output slot, holding the guest id again.
        let guest = unsafe { x.p_set_layout.as_ref() }.map_or(0, |h| h.as_raw());
        if let Some(host) = created(st, vk::ObjectType::DESCRIPTOR_SET_LAYOUT, guest) {
            st.layouts.set_layouts.insert(host, Arc::new(layout));
        }
    }
    Ok(ret)
}

/// `vkDestroyDescriptorSetLayout` (its sets keep their copy).
pub fn destroy_layout(
    st: &mut State,
    cmd: &Command<'_>,
    layout: vk::DescriptorSetLayout,
) -> Result<CallRet, Fatal> {
    let ret = generic(st, cmd)?;
    st.layouts.set_layouts.remove(&layout.as_raw());
    Ok(ret)
}

/// `vkCreatePipelineLayout`: its set layouts are recorded for push descriptors.
pub fn create_pipeline_layout(
    st: &mut State,
    cmd: &Command<'_>,
    x: &CreatePipelineLayoutArgs<'_>,
) -> Result<CallRet, Fatal> {
    // SAFETY: decoder-built pointer.
    let info = unsafe { x.p_create_info.as_ref() }.ok_or("no create info")?;
    let sets: Vec<Option<Arc<Layout>>> = if info.p_set_layouts.is_null() {
        Vec::new()
    } else {
        // SAFETY: the decoder allocated `set_layout_count` translated handles.
        unsafe { std::slice::from_raw_parts(info.p_set_layouts, info.set_layout_count as usize) }
            .iter()
            .map(|l| st.layouts.set_layouts.get(&l.as_raw()).cloned())
            .collect()
    };
    let ret = generic(st, cmd)?;
    if ret.result() == vk::Result::SUCCESS {
        // SAFETY: decoder-built output slot, holding the guest id again.
        let guest = unsafe { x.p_pipeline_layout.as_ref() }.map_or(0, |h| h.as_raw());
        if let Some(host) = created(st, vk::ObjectType::PIPELINE_LAYOUT, guest) {
            st.layouts.pipeline_layouts.insert(host, sets);
        }
    }
    Ok(ret)
}

/// `vkDestroyPipelineLayout`.
pub fn destroy_pipeline_layout(
    st: &mut State,
    cmd: &Command<'_>,
    layout: vk::PipelineLayout,
) -> Result<CallRet, Fatal> {
    let ret = generic(st, cmd)?;
    st.layouts.pipeline_layouts.remove(&layout.as_raw());
    Ok(ret)
}

/// `vkUpdateDescriptorSets`: every write and copy is checked against its set's layout
/// first (see [`descriptor_layout`]).
pub fn update(
    st: &mut State,
    cmd: &Command<'_>,
    x: &UpdateDescriptorSetsArgs<'_>,
) -> Result<CallRet, Fatal> {
    let set_layout = |st: &State, set: vk::DescriptorSet| {
        st.layouts.sets.get(&set.as_raw()).cloned().ok_or_else(|| {
            format!(
                "vkUpdateDescriptorSets: set {:#x} has no known layout",
                set.as_raw()
            )
        })
    };
    if !x.p_descriptor_writes.is_null() {
        // SAFETY: the decoder allocated `descriptor_write_count` writes.
        let writes = unsafe {
            std::slice::from_raw_parts(x.p_descriptor_writes, x.descriptor_write_count as usize)
        };
        for w in writes {
            let layout = set_layout(st, w.dst_set)?;
            // SAFETY: decoder-built write.
            unsafe { descriptor_layout::check_write(&layout, w) }
                .map_err(|e| format!("vkUpdateDescriptorSets: {e}"))?;
        }
    }
    if !x.p_descriptor_copies.is_null() {
        // SAFETY: the decoder allocated `descriptor_copy_count` copies.
        let copies = unsafe {
            std::slice::from_raw_parts(x.p_descriptor_copies, x.descriptor_copy_count as usize)
        };
        for c in copies {
            let (src, dst) = (set_layout(st, c.src_set)?, set_layout(st, c.dst_set)?);
            descriptor_layout::check_copy(&src, &dst, c)
                .map_err(|e| format!("vkUpdateDescriptorSets: {e}"))?;
        }
    }
    generic(st, cmd)
}

/// `vkCmdPushDescriptorSetKHR`: the writes are checked against set `set` of the
/// pipeline layout.
pub fn push(
    st: &mut State,
    cmd: &Command<'_>,
    x: &CmdPushDescriptorSetKHRArgs<'_>,
) -> Result<CallRet, Fatal> {
    let layout = st
        .layouts
        .pipeline_layouts
        .get(&x.layout.as_raw())
        .and_then(|sets| sets.get(x.set as usize).cloned().flatten())
        .ok_or_else(|| {
            format!(
                "vkCmdPushDescriptorSetKHR: set {} of the pipeline layout is unknown",
                x.set
            )
        })?;
    if !x.p_descriptor_writes.is_null() {
        // SAFETY: the decoder allocated `descriptor_write_count` writes.
        let writes = unsafe {
            std::slice::from_raw_parts(x.p_descriptor_writes, x.descriptor_write_count as usize)
        };
        for w in writes {
            // SAFETY: decoder-built write.
            unsafe { descriptor_layout::check_write(&layout, w) }
                .map_err(|e| format!("vkCmdPushDescriptorSetKHR: {e}"))?;
        }
    }
    generic(st, cmd)
}
