//! Descriptor set layouts, descriptor sets and pipeline layouts, as far as the guest
//! must know them: which bindings have immutable samplers. A write to such a binding
//! ignores its samplers, so whatever the application left there is cleared before it
//! is sent ([`crate::descriptor_update_template`]), as Mesa does; otherwise the host
//! would see an unknown sampler and end the context.
//!
//! Only layouts with such bindings are recorded. A set copies its layout's list when
//! it is allocated (a layout may be destroyed while its sets live), a pipeline layout
//! its set layouts' lists (for push descriptors).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use ash::vk;
use ash::vk::Handle;
use venus_protocol::generated::guest_calls as gc;

use crate::dispatch::Rt;
use crate::guard;

/// Binding numbers of a set layout whose samplers are immutable.
type Immutable = Arc<Vec<u32>>;

#[derive(Default)]
struct Tables {
    /// Set layout id → its immutable-sampler bindings.
    layouts: HashMap<u64, Immutable>,
    /// Set id → (its pool, its layout's immutable-sampler bindings).
    sets: HashMap<u64, (u64, Immutable)>,
    /// Pipeline layout id → per set index, the immutable-sampler bindings.
    pipeline_layouts: HashMap<u64, Vec<Option<Immutable>>>,
}

fn tables() -> std::sync::MutexGuard<'static, Tables> {
    static T: OnceLock<Mutex<Tables>> = OnceLock::new();
    T.get_or_init(|| Mutex::new(Tables::default()))
        .lock()
        .unwrap_or_else(|p| p.into_inner())
}

/// Whether writes to `binding` of set `set` ignore their samplers.
pub fn set_ignores_sampler(set: vk::DescriptorSet, binding: u32) -> bool {
    tables()
        .sets
        .get(&set.as_raw())
        .is_some_and(|(_, b)| b.contains(&binding))
}

/// Whether push-descriptor writes to `binding` of set `index` of `layout` ignore
/// their samplers.
pub fn push_ignores_sampler(layout: vk::PipelineLayout, index: u32, binding: u32) -> bool {
    tables()
        .pipeline_layouts
        .get(&layout.as_raw())
        .and_then(|sets| sets.get(index as usize))
        .is_some_and(|b| b.as_ref().is_some_and(|b| b.contains(&binding)))
}

pub unsafe extern "system" fn create_descriptor_set_layout(
    device: vk::Device,
    info: *const vk::DescriptorSetLayoutCreateInfo<'_>,
    alloc: *const vk::AllocationCallbacks<'_>,
    out: *mut vk::DescriptorSetLayout,
) -> vk::Result {
    guard(|| {
        // SAFETY: forwarded as the application gave them.
        let r = unsafe { gc::vk_create_descriptor_set_layout::<Rt>(device, info, alloc, out) };
        // SAFETY: valid pointers (Vulkan rules); `out` was written on success.
        let (Some(i), Some(layout)) = (unsafe { info.as_ref() }, unsafe { out.as_ref() }) else {
            return r;
        };
        if r != vk::Result::SUCCESS || i.p_bindings.is_null() {
            return r;
        }
        // SAFETY: `binding_count` bindings.
        let bindings =
            unsafe { std::slice::from_raw_parts(i.p_bindings, i.binding_count as usize) };
        let immutable: Vec<u32> = bindings
            .iter()
            .filter(|b| {
                matches!(
                    b.descriptor_type,
                    vk::DescriptorType::SAMPLER | vk::DescriptorType::COMBINED_IMAGE_SAMPLER
                ) && !b.p_immutable_samplers.is_null()
            })
            .map(|b| b.binding)
            .collect();
        if !immutable.is_empty() {
            tables()
                .layouts
                .insert(layout.as_raw(), Arc::new(immutable));
        }
        r
    })
}

pub unsafe extern "system" fn destroy_descriptor_set_layout(
    device: vk::Device,
    layout: vk::DescriptorSetLayout,
    alloc: *const vk::AllocationCallbacks<'_>,
) {
    guard(|| {
        tables().layouts.remove(&layout.as_raw());
        // SAFETY: forwarded as the application gave them.
        unsafe { gc::vk_destroy_descriptor_set_layout::<Rt>(device, layout, alloc) }
    })
}

pub unsafe extern "system" fn allocate_descriptor_sets(
    device: vk::Device,
    info: *const vk::DescriptorSetAllocateInfo<'_>,
    out: *mut vk::DescriptorSet,
) -> vk::Result {
    guard(|| {
        // SAFETY: forwarded as the application gave them.
        let r = unsafe { gc::vk_allocate_descriptor_sets::<Rt>(device, info, out) };
        // SAFETY: a valid allocate info (Vulkan rules).
        let Some(i) = (unsafe { info.as_ref() }) else {
            return r;
        };
        if r != vk::Result::SUCCESS || i.p_set_layouts.is_null() || out.is_null() {
            return r;
        }
        let n = i.descriptor_set_count as usize;
        // SAFETY: `descriptor_set_count` layouts, and as many sets written on success.
        let (layouts, sets) = unsafe {
            (
                std::slice::from_raw_parts(i.p_set_layouts, n),
                std::slice::from_raw_parts(out, n),
            )
        };
        let mut t = tables();
        let pool = i.descriptor_pool.as_raw();
        for (layout, set) in layouts.iter().zip(sets) {
            if let Some(b) = t.layouts.get(&layout.as_raw()).cloned() {
                t.sets.insert(set.as_raw(), (pool, b));
            }
        }
        r
    })
}

pub unsafe extern "system" fn free_descriptor_sets(
    device: vk::Device,
    pool: vk::DescriptorPool,
    count: u32,
    sets: *const vk::DescriptorSet,
) -> vk::Result {
    guard(|| {
        if !sets.is_null() {
            // SAFETY: `count` sets (Vulkan rules).
            let list = unsafe { std::slice::from_raw_parts(sets, count as usize) };
            let mut t = tables();
            for s in list {
                t.sets.remove(&s.as_raw());
            }
        }
        // SAFETY: forwarded as the application gave them.
        unsafe { gc::vk_free_descriptor_sets::<Rt>(device, pool, count, sets) }
    })
}

fn forget_pool(pool: vk::DescriptorPool) {
    let pool = pool.as_raw();
    tables().sets.retain(|_, (p, _)| *p != pool);
}

pub unsafe extern "system" fn reset_descriptor_pool(
    device: vk::Device,
    pool: vk::DescriptorPool,
    flags: vk::DescriptorPoolResetFlags,
) -> vk::Result {
    guard(|| {
        forget_pool(pool);
        // SAFETY: forwarded as the application gave them.
        unsafe { gc::vk_reset_descriptor_pool::<Rt>(device, pool, flags) }
    })
}

pub unsafe extern "system" fn destroy_descriptor_pool(
    device: vk::Device,
    pool: vk::DescriptorPool,
    alloc: *const vk::AllocationCallbacks<'_>,
) {
    guard(|| {
        forget_pool(pool);
        // SAFETY: forwarded as the application gave them.
        unsafe { gc::vk_destroy_descriptor_pool::<Rt>(device, pool, alloc) }
    })
}

pub unsafe extern "system" fn create_pipeline_layout(
    device: vk::Device,
    info: *const vk::PipelineLayoutCreateInfo<'_>,
    alloc: *const vk::AllocationCallbacks<'_>,
    out: *mut vk::PipelineLayout,
) -> vk::Result {
    guard(|| {
        // SAFETY: forwarded as the application gave them.
        let r = unsafe { gc::vk_create_pipeline_layout::<Rt>(device, info, alloc, out) };
        // SAFETY: valid pointers (Vulkan rules); `out` was written on success.
        let (Some(i), Some(layout)) = (unsafe { info.as_ref() }, unsafe { out.as_ref() }) else {
            return r;
        };
        if r != vk::Result::SUCCESS || i.p_set_layouts.is_null() {
            return r;
        }
        // SAFETY: `set_layout_count` set layouts.
        let set_layouts =
            unsafe { std::slice::from_raw_parts(i.p_set_layouts, i.set_layout_count as usize) };
        let mut t = tables();
        let per_set: Vec<Option<Immutable>> = set_layouts
            .iter()
            .map(|l| t.layouts.get(&l.as_raw()).cloned())
            .collect();
        if per_set.iter().any(Option::is_some) {
            t.pipeline_layouts.insert(layout.as_raw(), per_set);
        }
        r
    })
}

pub unsafe extern "system" fn destroy_pipeline_layout(
    device: vk::Device,
    layout: vk::PipelineLayout,
    alloc: *const vk::AllocationCallbacks<'_>,
) {
    guard(|| {
        tables().pipeline_layouts.remove(&layout.as_raw());
        // SAFETY: forwarded as the application gave them.
        unsafe { gc::vk_destroy_pipeline_layout::<Rt>(device, layout, alloc) }
    })
}
