//! Descriptor writes and update templates. Templates never reach the host (no
//! peer has them on the wire): the guest keeps their entries and expands each
//! template update into `vkUpdateDescriptorSets` / `vkCmdPushDescriptorSetKHR`.
//! Every write is sanitized first, as Mesa does: only the array the descriptor
//! type uses is sent, and handles the type ignores are zeroed, so the host never
//! sees stale ids the application was allowed to leave there. Two more members are
//! ignored in ways the write alone does not show: the samplers of a binding with
//! immutable samplers (the layouts are known from [`crate::descriptor_set`]) and
//! `dstSet` of push descriptors.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use ash::vk;
use ash::vk::Handle;
use venus_protocol::generated::guest_calls as gc;

use crate::descriptor_set;
use crate::dispatch::Rt;
use crate::guard;

struct Template {
    entries: Vec<vk::DescriptorUpdateTemplateEntry>,
    bind_point: vk::PipelineBindPoint,
}

fn templates() -> &'static Mutex<HashMap<u64, Template>> {
    static T: OnceLock<Mutex<HashMap<u64, Template>>> = OnceLock::new();
    T.get_or_init(|| Mutex::new(HashMap::new()))
}

fn is_image(t: vk::DescriptorType) -> bool {
    matches!(
        t,
        vk::DescriptorType::SAMPLER
            | vk::DescriptorType::COMBINED_IMAGE_SAMPLER
            | vk::DescriptorType::SAMPLED_IMAGE
            | vk::DescriptorType::STORAGE_IMAGE
            | vk::DescriptorType::INPUT_ATTACHMENT
    )
}

fn is_texel(t: vk::DescriptorType) -> bool {
    matches!(
        t,
        vk::DescriptorType::UNIFORM_TEXEL_BUFFER | vk::DescriptorType::STORAGE_TEXEL_BUFFER
    )
}

fn is_buffer(t: vk::DescriptorType) -> bool {
    matches!(
        t,
        vk::DescriptorType::UNIFORM_BUFFER
            | vk::DescriptorType::STORAGE_BUFFER
            | vk::DescriptorType::UNIFORM_BUFFER_DYNAMIC
            | vk::DescriptorType::STORAGE_BUFFER_DYNAMIC
    )
}

/// Sanitized copies of writes, with the storage their pointers point into.
struct Writes<'a> {
    writes: Vec<vk::WriteDescriptorSet<'a>>,
    _images: Vec<Vec<vk::DescriptorImageInfo>>,
}

/// Copies and sanitizes `writes`: of descriptor sets, or, with `push` (the pipeline
/// layout and set index), push descriptors.
///
/// # Safety
/// `writes` are valid per the Vulkan rules.
unsafe fn sanitize<'a>(
    writes: &[vk::WriteDescriptorSet<'a>],
    push: Option<(vk::PipelineLayout, u32)>,
) -> Writes<'a> {
    let mut out = Vec::with_capacity(writes.len());
    let mut images = Vec::new();
    for w in writes {
        let mut w = *w;
        let t = w.descriptor_type;
        let immutable = match push {
            Some((layout, set)) => descriptor_set::push_ignores_sampler(layout, set, w.dst_binding),
            None => descriptor_set::set_ignores_sampler(w.dst_set, w.dst_binding),
        };
        if push.is_some() {
            // Push descriptors have no destination set: dstSet is ignored.
            w.dst_set = vk::DescriptorSet::null();
        }
        if is_image(t) {
            w.p_buffer_info = std::ptr::null();
            w.p_texel_buffer_view = std::ptr::null();
            if !w.p_image_info.is_null() {
                // SAFETY: `descriptor_count` image infos (Vulkan rules).
                let src = unsafe {
                    std::slice::from_raw_parts(w.p_image_info, w.descriptor_count as usize)
                };
                let mut v = src.to_vec();
                for i in &mut v {
                    // A sampler the type ignores, or the binding's immutable samplers
                    // replace (then it may name no sampler at all).
                    if immutable
                        || !matches!(
                            t,
                            vk::DescriptorType::SAMPLER
                                | vk::DescriptorType::COMBINED_IMAGE_SAMPLER
                        )
                    {
                        i.sampler = vk::Sampler::null();
                    }
                    if t == vk::DescriptorType::SAMPLER {
                        i.image_view = vk::ImageView::null();
                    }
                }
                w.p_image_info = v.as_ptr();
                images.push(v);
            }
        } else if is_texel(t) {
            w.p_image_info = std::ptr::null();
            w.p_buffer_info = std::ptr::null();
        } else if is_buffer(t) {
            w.p_image_info = std::ptr::null();
            w.p_texel_buffer_view = std::ptr::null();
        } else {
            w.p_image_info = std::ptr::null();
            w.p_buffer_info = std::ptr::null();
            w.p_texel_buffer_view = std::ptr::null();
        }
        out.push(w);
    }
    Writes {
        writes: out,
        _images: images,
    }
}

pub unsafe extern "system" fn update_descriptor_sets(
    device: vk::Device,
    write_count: u32,
    writes: *const vk::WriteDescriptorSet<'_>,
    copy_count: u32,
    copies: *const vk::CopyDescriptorSet<'_>,
) {
    guard(|| {
        let list = if writes.is_null() {
            &[][..]
        } else {
            // SAFETY: `write_count` writes (Vulkan rules).
            unsafe { std::slice::from_raw_parts(writes, write_count as usize) }
        };
        // SAFETY: as above.
        let w = unsafe { sanitize(list, None) };
        // SAFETY: sanitized copies of valid writes.
        unsafe {
            gc::vk_update_descriptor_sets::<Rt>(
                device,
                w.writes.len() as u32,
                w.writes.as_ptr(),
                copy_count,
                copies,
            )
        }
    })
}

pub unsafe extern "system" fn cmd_push_descriptor_set(
    cb: vk::CommandBuffer,
    bind_point: vk::PipelineBindPoint,
    layout: vk::PipelineLayout,
    set: u32,
    write_count: u32,
    writes: *const vk::WriteDescriptorSet<'_>,
) {
    guard(|| {
        let list = if writes.is_null() {
            &[][..]
        } else {
            // SAFETY: `write_count` writes (Vulkan rules).
            unsafe { std::slice::from_raw_parts(writes, write_count as usize) }
        };
        // SAFETY: as above.
        let w = unsafe { sanitize(list, Some((layout, set))) };
        // SAFETY: sanitized copies of valid writes.
        unsafe {
            gc::vk_cmd_push_descriptor_set_khr::<Rt>(
                cb,
                bind_point,
                layout,
                set,
                w.writes.len() as u32,
                w.writes.as_ptr(),
            )
        }
    })
}

pub unsafe extern "system" fn create_template(
    _device: vk::Device,
    info: *const vk::DescriptorUpdateTemplateCreateInfo<'_>,
    _alloc: *const vk::AllocationCallbacks<'_>,
    out: *mut vk::DescriptorUpdateTemplate,
) -> vk::Result {
    guard(|| {
        // SAFETY: valid pointers per the Vulkan rules.
        let (Some(i), Some(out)) = (unsafe { info.as_ref() }, unsafe { out.as_mut() }) else {
            return vk::Result::ERROR_INITIALIZATION_FAILED;
        };
        let entries = if i.p_descriptor_update_entries.is_null() {
            Vec::new()
        } else {
            // SAFETY: `descriptor_update_entry_count` entries.
            unsafe {
                std::slice::from_raw_parts(
                    i.p_descriptor_update_entries,
                    i.descriptor_update_entry_count as usize,
                )
            }
            .to_vec()
        };
        let id = crate::dispatch::next_id();
        templates()
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(
                id,
                Template {
                    entries,
                    bind_point: i.pipeline_bind_point,
                },
            );
        *out = vk::DescriptorUpdateTemplate::from_raw(id);
        vk::Result::SUCCESS
    })
}

pub unsafe extern "system" fn destroy_template(
    _device: vk::Device,
    t: vk::DescriptorUpdateTemplate,
    _alloc: *const vk::AllocationCallbacks<'_>,
) {
    guard(|| {
        templates()
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&t.as_raw());
    })
}

/// Storage for the writes a template update expands into.
#[derive(Default)]
struct Expanded {
    images: Vec<Vec<vk::DescriptorImageInfo>>,
    buffers: Vec<Vec<vk::DescriptorBufferInfo>>,
    views: Vec<Vec<vk::BufferView>>,
    /// Boxed so each struct keeps its address while the vector grows: writes
    /// point at them through `p_next`.
    #[allow(clippy::vec_box)]
    inline: Vec<Box<vk::WriteDescriptorSetInlineUniformBlock<'static>>>,
    inline_data: Vec<Vec<u8>>,
}

/// Expands template `t` applied to `data` into writes of set `set`.
///
/// # Safety
/// `data` is laid out as the template's entries say (Vulkan rules).
unsafe fn expand(
    t: &Template,
    set: vk::DescriptorSet,
    data: *const u8,
    store: &mut Expanded,
) -> Vec<vk::WriteDescriptorSet<'static>> {
    let mut writes = Vec::new();
    for e in &t.entries {
        let n = e.descriptor_count as usize;
        // SAFETY: element i of the entry lies at data + offset + i * stride.
        let at = |i: usize| unsafe { data.add(e.offset + i * e.stride) };
        let mut w = vk::WriteDescriptorSet::default()
            .dst_set(set)
            .dst_binding(e.dst_binding)
            .dst_array_element(e.dst_array_element)
            .descriptor_type(e.descriptor_type);
        w.descriptor_count = e.descriptor_count;
        let ty = e.descriptor_type;
        if is_image(ty) {
            // SAFETY: image infos at each element.
            let v: Vec<vk::DescriptorImageInfo> = (0..n)
                .map(|i| unsafe { at(i).cast::<vk::DescriptorImageInfo>().read_unaligned() })
                .collect();
            w.p_image_info = v.as_ptr();
            store.images.push(v);
        } else if is_texel(ty) {
            // SAFETY: buffer views at each element.
            let v: Vec<vk::BufferView> = (0..n)
                .map(|i| unsafe { at(i).cast::<vk::BufferView>().read_unaligned() })
                .collect();
            w.p_texel_buffer_view = v.as_ptr();
            store.views.push(v);
        } else if is_buffer(ty) {
            // SAFETY: buffer infos at each element.
            let v: Vec<vk::DescriptorBufferInfo> = (0..n)
                .map(|i| unsafe { at(i).cast::<vk::DescriptorBufferInfo>().read_unaligned() })
                .collect();
            w.p_buffer_info = v.as_ptr();
            store.buffers.push(v);
        } else if ty == vk::DescriptorType::INLINE_UNIFORM_BLOCK {
            // descriptorCount is a byte count; the bytes are at `offset`.
            // SAFETY: `n` bytes at the entry's offset.
            let bytes = unsafe { std::slice::from_raw_parts(at(0), n) }.to_vec();
            let mut ib = Box::new(vk::WriteDescriptorSetInlineUniformBlock::default());
            ib.data_size = n as u32;
            ib.p_data = bytes.as_ptr().cast();
            w.p_next = (&*ib as *const vk::WriteDescriptorSetInlineUniformBlock<'_>).cast();
            store.inline_data.push(bytes);
            store.inline.push(ib);
        } else {
            continue;
        }
        writes.push(w);
    }
    writes
}

pub unsafe extern "system" fn update_with_template(
    device: vk::Device,
    set: vk::DescriptorSet,
    t: vk::DescriptorUpdateTemplate,
    data: *const core::ffi::c_void,
) {
    guard(|| {
        let map = templates().lock().unwrap_or_else(|p| p.into_inner());
        let Some(tp) = map.get(&t.as_raw()) else {
            return;
        };
        let mut store = Expanded::default();
        // SAFETY: the application's data matches the template (Vulkan rules).
        let writes = unsafe { expand(tp, set, data.cast(), &mut store) };
        drop(map);
        // SAFETY: writes point into `store`, alive across the call.
        unsafe {
            update_descriptor_sets(
                device,
                writes.len() as u32,
                writes.as_ptr(),
                0,
                std::ptr::null(),
            )
        }
    })
}

pub unsafe extern "system" fn cmd_push_with_template(
    cb: vk::CommandBuffer,
    t: vk::DescriptorUpdateTemplate,
    layout: vk::PipelineLayout,
    set: u32,
    data: *const core::ffi::c_void,
) {
    guard(|| {
        let map = templates().lock().unwrap_or_else(|p| p.into_inner());
        let Some(tp) = map.get(&t.as_raw()) else {
            return;
        };
        let bind_point = tp.bind_point;
        let mut store = Expanded::default();
        // SAFETY: as above; push descriptors have no destination set.
        let writes = unsafe { expand(tp, vk::DescriptorSet::null(), data.cast(), &mut store) };
        drop(map);
        // SAFETY: writes point into `store`, alive across the call.
        unsafe {
            cmd_push_descriptor_set(
                cb,
                bind_point,
                layout,
                set,
                writes.len() as u32,
                writes.as_ptr(),
            )
        }
    })
}
