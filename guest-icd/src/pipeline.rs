//! Pipelines. The create infos are copied with the members Vulkan ignores cleared
//! before they are encoded, as Mesa's `vn_pipeline.c` does: an application may leave
//! anything in them, such as a stale or made-up `basePipelineHandle` without
//! `VK_PIPELINE_CREATE_DERIVATIVE_BIT` (the host would see an unknown object and end
//! the context) or dangling pointers to state a pipeline does not use (the encoder
//! would read through them).
//!
//! Cleared for every pipeline: `basePipelineHandle` unless the pipeline derives from
//! it. Cleared only for complete graphics pipelines (not libraries, which Vulkan
//! judges by their library parts): `pTessellationState` without tessellation stages;
//! the viewport, multisample, depth/stencil and color blend states when rasterization
//! is statically discarded; `pVertexInputState` when vertex input is dynamic; the
//! viewports, scissors and sample mask arrays when those states are dynamic.

use ash::vk;
use venus_protocol::generated::guest_calls as gc;

use crate::dispatch::Rt;
use crate::guard;

/// `basePipelineHandle` is used only with `VK_PIPELINE_CREATE_DERIVATIVE_BIT` and a
/// `basePipelineIndex` of -1.
fn base_is_used(flags: vk::PipelineCreateFlags, index: i32) -> bool {
    flags.contains(vk::PipelineCreateFlags::DERIVATIVE) && index == -1
}

/// Whether `chain` (a pNext chain) holds a struct of type `ty`.
///
/// # Safety
/// `chain` is null or a valid pNext chain.
unsafe fn chain_has(mut chain: *const core::ffi::c_void, ty: vk::StructureType) -> bool {
    while !chain.is_null() {
        // SAFETY: every struct of a valid chain starts with sType and pNext.
        let s = unsafe { &*chain.cast::<vk::BaseInStructure<'_>>() };
        if s.s_type == ty {
            return true;
        }
        chain = s.p_next.cast();
    }
    false
}

/// Copies of the state structs whose arrays are cleared, kept alive for the call.
struct Storage<'a> {
    viewports: Vec<vk::PipelineViewportStateCreateInfo<'a>>,
    multisamples: Vec<vk::PipelineMultisampleStateCreateInfo<'a>>,
}

/// The copy of `info` to encode.
///
/// # Safety
/// `info` is valid per the Vulkan rules (members it does not use may hold anything).
/// `store`'s vectors have capacity for one more element each (they must not move).
unsafe fn sanitize_graphics<'a>(
    info: &vk::GraphicsPipelineCreateInfo<'a>,
    store: &mut Storage<'a>,
) -> vk::GraphicsPipelineCreateInfo<'a> {
    let mut out = *info;
    if !base_is_used(info.flags, info.base_pipeline_index) {
        out.base_pipeline_handle = vk::Pipeline::null();
    }
    // SAFETY: the chain of a valid create info.
    let library = info.flags.contains(vk::PipelineCreateFlags::LIBRARY_KHR)
        || unsafe {
            chain_has(
                info.p_next,
                vk::StructureType::PIPELINE_LIBRARY_CREATE_INFO_KHR,
            ) || chain_has(
                info.p_next,
                vk::StructureType::GRAPHICS_PIPELINE_LIBRARY_CREATE_INFO_EXT,
            )
        };
    if library {
        return out;
    }
    let stages: &[vk::PipelineShaderStageCreateInfo<'_>] = if info.p_stages.is_null() {
        &[]
    } else {
        // SAFETY: `stage_count` stages (Vulkan rules for complete pipelines).
        unsafe { std::slice::from_raw_parts(info.p_stages, info.stage_count as usize) }
    };
    let tessellation =
        vk::ShaderStageFlags::TESSELLATION_CONTROL | vk::ShaderStageFlags::TESSELLATION_EVALUATION;
    if !stages.iter().any(|s| s.stage.intersects(tessellation)) {
        out.p_tessellation_state = std::ptr::null();
    }
    // SAFETY: pDynamicState is null or valid (it is never ignored).
    let dynamic: &[vk::DynamicState] = match unsafe { info.p_dynamic_state.as_ref() } {
        Some(d) if !d.p_dynamic_states.is_null() => {
            // SAFETY: `dynamic_state_count` states.
            unsafe {
                std::slice::from_raw_parts(d.p_dynamic_states, d.dynamic_state_count as usize)
            }
        }
        _ => &[],
    };
    let is_dynamic = |s: vk::DynamicState| dynamic.contains(&s);
    if is_dynamic(vk::DynamicState::VERTEX_INPUT_EXT) {
        out.p_vertex_input_state = std::ptr::null();
    }
    // SAFETY: pRasterizationState is valid for a complete pipeline (or null).
    let discard = unsafe { info.p_rasterization_state.as_ref() }
        .is_some_and(|r| r.rasterizer_discard_enable == vk::TRUE)
        && !is_dynamic(vk::DynamicState::RASTERIZER_DISCARD_ENABLE);
    if discard {
        out.p_viewport_state = std::ptr::null();
        out.p_multisample_state = std::ptr::null();
        out.p_depth_stencil_state = std::ptr::null();
        out.p_color_blend_state = std::ptr::null();
        return out;
    }
    // SAFETY: used, so valid (or null).
    if let Some(v) = unsafe { out.p_viewport_state.as_ref() } {
        let mut v = *v;
        if is_dynamic(vk::DynamicState::VIEWPORT)
            || is_dynamic(vk::DynamicState::VIEWPORT_WITH_COUNT)
        {
            v.p_viewports = std::ptr::null();
        }
        if is_dynamic(vk::DynamicState::SCISSOR) || is_dynamic(vk::DynamicState::SCISSOR_WITH_COUNT)
        {
            v.p_scissors = std::ptr::null();
        }
        store.viewports.push(v);
        if let Some(last) = store.viewports.last() {
            out.p_viewport_state = last;
        }
    }
    // SAFETY: used, so valid (or null).
    if let Some(m) = unsafe { out.p_multisample_state.as_ref() } {
        if is_dynamic(vk::DynamicState::SAMPLE_MASK_EXT) {
            let mut m = *m;
            m.p_sample_mask = std::ptr::null();
            store.multisamples.push(m);
            if let Some(last) = store.multisamples.last() {
                out.p_multisample_state = last;
            }
        }
    }
    out
}

pub unsafe extern "system" fn create_graphics_pipelines(
    device: vk::Device,
    cache: vk::PipelineCache,
    count: u32,
    infos: *const vk::GraphicsPipelineCreateInfo<'_>,
    alloc: *const vk::AllocationCallbacks<'_>,
    out: *mut vk::Pipeline,
) -> vk::Result {
    guard(|| {
        if infos.is_null() {
            // SAFETY: forwarded as given (the generated entry point handles it).
            return unsafe {
                gc::vk_create_graphics_pipelines::<Rt>(device, cache, count, infos, alloc, out)
            };
        }
        // SAFETY: `count` create infos (Vulkan rules).
        let list = unsafe { std::slice::from_raw_parts(infos, count as usize) };
        // One slot per create info, reserved up front so the copies never move while
        // the sanitized infos point at them.
        let mut stores: Vec<Storage<'_>> = list
            .iter()
            .map(|_| Storage {
                viewports: Vec::with_capacity(1),
                multisamples: Vec::with_capacity(1),
            })
            .collect();
        let fixed: Vec<vk::GraphicsPipelineCreateInfo<'_>> = list
            .iter()
            .zip(stores.iter_mut())
            // SAFETY: valid create infos; each store has room for its copies.
            .map(|(i, s)| unsafe { sanitize_graphics(i, s) })
            .collect();
        // SAFETY: sanitized copies of valid create infos, alive across the call.
        unsafe {
            gc::vk_create_graphics_pipelines::<Rt>(
                device,
                cache,
                fixed.len() as u32,
                fixed.as_ptr(),
                alloc,
                out,
            )
        }
    })
}

pub unsafe extern "system" fn create_compute_pipelines(
    device: vk::Device,
    cache: vk::PipelineCache,
    count: u32,
    infos: *const vk::ComputePipelineCreateInfo<'_>,
    alloc: *const vk::AllocationCallbacks<'_>,
    out: *mut vk::Pipeline,
) -> vk::Result {
    guard(|| {
        if infos.is_null() {
            // SAFETY: forwarded as given.
            return unsafe {
                gc::vk_create_compute_pipelines::<Rt>(device, cache, count, infos, alloc, out)
            };
        }
        // SAFETY: `count` create infos (Vulkan rules).
        let list = unsafe { std::slice::from_raw_parts(infos, count as usize) };
        let fixed: Vec<vk::ComputePipelineCreateInfo<'_>> = list
            .iter()
            .map(|i| {
                let mut i = *i;
                if !base_is_used(i.flags, i.base_pipeline_index) {
                    i.base_pipeline_handle = vk::Pipeline::null();
                }
                i
            })
            .collect();
        // SAFETY: copies of valid create infos, alive across the call.
        unsafe {
            gc::vk_create_compute_pipelines::<Rt>(
                device,
                cache,
                fixed.len() as u32,
                fixed.as_ptr(),
                alloc,
                out,
            )
        }
    })
}
