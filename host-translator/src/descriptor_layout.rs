//! What the host knows of descriptor set layouts, and the checks of descriptor writes
//! and copies against them before any reaches the driver.
//!
//! Drivers trust the application here: lavapipe indexes its binding array with
//! `dstBinding`, writes `descriptorCount` descriptors from `dstArrayElement` on,
//! dereferences the sampler of a sampler binding without immutable samplers, and
//! reads the array the descriptor type names. A guest breaking those rules would make
//! the driver read or write out of bounds, or dereference NULL, in the host process.
//! So a write or copy is refused (the context becomes fatal) unless:
//! - its binding exists, and the descriptor type is the binding's (or the binding is
//!   `VK_DESCRIPTOR_TYPE_MUTABLE_EXT` and the write is of a type such a binding holds);
//! - `dstArrayElement + descriptorCount` fits, counting the consecutive bindings an
//!   update may continue into (same type and immutable-sampler use; bindings of no
//!   descriptors skipped); an inline uniform block update fits in its own binding and
//!   carries its data;
//! - the array the type uses is present, and a sampler binding without immutable
//!   samplers gets no NULL sampler.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use ash::vk;

/// One binding of a set layout.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Binding {
    pub ty: vk::DescriptorType,
    /// Descriptors (bytes for inline uniform blocks), after a variable count.
    pub count: u32,
    /// The layout gives immutable samplers for it.
    pub immutable: bool,
}

/// A layout's bindings by binding number, and which one has a variable count.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Layout {
    pub bindings: BTreeMap<u32, Binding>,
    /// The binding created with `VK_DESCRIPTOR_BINDING_VARIABLE_DESCRIPTOR_COUNT_BIT`.
    pub variable: Option<u32>,
}

/// The layouts, sets and pipeline layouts of a context, by host handle.
#[derive(Default)]
pub struct Layouts {
    pub set_layouts: HashMap<u64, Arc<Layout>>,
    /// A set's layout, with its variable count applied.
    pub sets: HashMap<u64, Arc<Layout>>,
    /// A pipeline layout's set layouts, by set index (None: unknown).
    pub pipeline_layouts: HashMap<u64, Vec<Option<Arc<Layout>>>>,
}

/// Walks a pNext chain for a struct of type `ty`.
///
/// # Safety
/// `chain` is null or a chain of structs the decoder built.
unsafe fn find_in_chain(
    mut chain: *const core::ffi::c_void,
    ty: vk::StructureType,
) -> *const core::ffi::c_void {
    while !chain.is_null() {
        // SAFETY: every decoded chain struct starts with sType and pNext.
        let s = unsafe { &*chain.cast::<vk::BaseInStructure<'_>>() };
        if s.s_type == ty {
            return chain;
        }
        chain = s.p_next.cast();
    }
    std::ptr::null()
}

/// A slice of `n` elements at `p` (empty when null).
///
/// # Safety
/// `p` is null or points at `n` decoded elements.
unsafe fn slice<'a, T>(p: *const T, n: u32) -> &'a [T] {
    if p.is_null() || n == 0 {
        &[]
    } else {
        // SAFETY: see the function's contract.
        unsafe { std::slice::from_raw_parts(p, n as usize) }
    }
}

/// The layout a create info describes.
///
/// # Safety
/// `info` was built by the decoder (arrays have the lengths their counts state).
pub unsafe fn layout_of(info: &vk::DescriptorSetLayoutCreateInfo<'_>) -> Result<Layout, String> {
    // SAFETY: decoded arrays and chain.
    let bindings = unsafe { slice(info.p_bindings, info.binding_count) };
    // SAFETY: decoded chain.
    let flags_info = unsafe {
        find_in_chain(
            info.p_next,
            vk::StructureType::DESCRIPTOR_SET_LAYOUT_BINDING_FLAGS_CREATE_INFO,
        )
    }
    .cast::<vk::DescriptorSetLayoutBindingFlagsCreateInfo<'_>>();
    // SAFETY: a decoded struct of that type, or null.
    let flags = match unsafe { flags_info.as_ref() } {
        // SAFETY: decoded array.
        Some(f) => unsafe { slice(f.p_binding_flags, f.binding_count) },
        None => &[],
    };
    let mut layout = Layout::default();
    for (i, b) in bindings.iter().enumerate() {
        let immutable = matches!(
            b.descriptor_type,
            vk::DescriptorType::SAMPLER | vk::DescriptorType::COMBINED_IMAGE_SAMPLER
        ) && !b.p_immutable_samplers.is_null();
        let binding = Binding {
            ty: b.descriptor_type,
            count: b.descriptor_count,
            immutable,
        };
        if layout.bindings.insert(b.binding, binding).is_some() {
            return Err(format!("binding {} appears twice", b.binding));
        }
        if flags
            .get(i)
            .is_some_and(|f| f.contains(vk::DescriptorBindingFlags::VARIABLE_DESCRIPTOR_COUNT))
        {
            layout.variable = Some(b.binding);
        }
    }
    Ok(layout)
}

/// `layout` as a set allocated with `variable_count` descriptors in its variable
/// binding (0 when the allocation gave none), which may not exceed the layout's.
pub fn with_variable_count(
    layout: &Arc<Layout>,
    variable_count: Option<u32>,
) -> Result<Arc<Layout>, String> {
    let Some(v) = layout.variable else {
        return Ok(layout.clone());
    };
    let n = variable_count.unwrap_or(0);
    let mut out = (**layout).clone();
    if let Some(b) = out.bindings.get_mut(&v) {
        if n > b.count {
            return Err(format!(
                "variable descriptor count {n} exceeds binding {v}'s {}",
                b.count
            ));
        }
        b.count = n;
    }
    Ok(Arc::new(out))
}

/// Whether a write of type `write` may go to a binding of type `binding`.
fn type_fits(binding: vk::DescriptorType, write: vk::DescriptorType) -> bool {
    if binding == vk::DescriptorType::MUTABLE_EXT {
        return !matches!(
            write,
            vk::DescriptorType::MUTABLE_EXT | vk::DescriptorType::INLINE_UNIFORM_BLOCK
        );
    }
    binding == write
}

/// Checks that `count` descriptors from element `first` of binding `number` lie in
/// the layout (continuing into the next bindings as Vulkan allows); returns the
/// first binding.
fn check_range(layout: &Layout, number: u32, first: u32, count: u32) -> Result<Binding, String> {
    let Some(&binding) = layout.bindings.get(&number) else {
        return Err(format!("binding {number} is not in the set layout"));
    };
    if binding.ty == vk::DescriptorType::INLINE_UNIFORM_BLOCK {
        let end = first
            .checked_add(count)
            .ok_or("inline uniform block range overflows")?;
        if end > binding.count {
            return Err(format!(
                "inline uniform block bytes {first}..{end} exceed binding {number}'s {}",
                binding.count
            ));
        }
        return Ok(binding);
    }
    let mut left = binding.count.checked_sub(first).ok_or_else(|| {
        format!(
            "array element {first} is past binding {number}'s {}",
            binding.count
        )
    })?;
    let mut need = count;
    let mut next = layout.bindings.range(number.saturating_add(1)..);
    while need > left {
        need -= left;
        // The update continues into the next binding with descriptors.
        let Some((n, b)) = next.find(|(_, b)| b.count != 0) else {
            return Err(format!(
                "{count} descriptors from element {first} of binding {number} run past the \
                 set layout"
            ));
        };
        if b.ty != binding.ty || b.immutable != binding.immutable {
            return Err(format!(
                "{count} descriptors from binding {number} continue into binding {n}, which \
                 differs"
            ));
        }
        left = b.count;
    }
    Ok(binding)
}

/// Checks one write against `layout` (of its set, or of the push-descriptor set).
///
/// # Safety
/// `w` was built by the decoder.
pub unsafe fn check_write(layout: &Layout, w: &vk::WriteDescriptorSet<'_>) -> Result<(), String> {
    let binding = check_range(
        layout,
        w.dst_binding,
        w.dst_array_element,
        w.descriptor_count,
    )?;
    let ty = w.descriptor_type;
    if !type_fits(binding.ty, ty) {
        return Err(format!(
            "a {ty:?} write to binding {} of type {:?}",
            w.dst_binding, binding.ty
        ));
    }
    let n = w.descriptor_count;
    use vk::DescriptorType as T;
    match ty {
        T::SAMPLER
        | T::COMBINED_IMAGE_SAMPLER
        | T::SAMPLED_IMAGE
        | T::STORAGE_IMAGE
        | T::INPUT_ATTACHMENT => {
            if n != 0 && w.p_image_info.is_null() {
                return Err(format!("a {ty:?} write without image infos"));
            }
            let sampled = matches!(ty, T::SAMPLER | T::COMBINED_IMAGE_SAMPLER);
            // SAFETY: decoded array of `n` image infos.
            let infos = unsafe { slice(w.p_image_info, n) };
            if sampled
                && !binding.immutable
                && infos.iter().any(|i| i.sampler == vk::Sampler::null())
            {
                return Err(format!(
                    "a {ty:?} write of a NULL sampler to binding {} (no immutable samplers)",
                    w.dst_binding
                ));
            }
        }
        T::UNIFORM_TEXEL_BUFFER | T::STORAGE_TEXEL_BUFFER => {
            if n != 0 && w.p_texel_buffer_view.is_null() {
                return Err(format!("a {ty:?} write without buffer views"));
            }
        }
        T::UNIFORM_BUFFER
        | T::STORAGE_BUFFER
        | T::UNIFORM_BUFFER_DYNAMIC
        | T::STORAGE_BUFFER_DYNAMIC => {
            if n != 0 && w.p_buffer_info.is_null() {
                return Err(format!("a {ty:?} write without buffer infos"));
            }
        }
        T::INLINE_UNIFORM_BLOCK => {
            // SAFETY: decoded chain.
            let block = unsafe {
                find_in_chain(
                    w.p_next,
                    vk::StructureType::WRITE_DESCRIPTOR_SET_INLINE_UNIFORM_BLOCK,
                )
            }
            .cast::<vk::WriteDescriptorSetInlineUniformBlock<'_>>();
            // SAFETY: a decoded struct of that type, or null.
            let ok = unsafe { block.as_ref() }
                .is_some_and(|b| b.data_size == n && (n == 0 || !b.p_data.is_null()));
            if !ok {
                return Err("an inline uniform block write without its data".into());
            }
        }
        other => return Err(format!("a write of descriptor type {other:?}")),
    }
    Ok(())
}

/// Checks one copy between sets of layouts `src` and `dst`.
pub fn check_copy(src: &Layout, dst: &Layout, c: &vk::CopyDescriptorSet<'_>) -> Result<(), String> {
    let from = check_range(src, c.src_binding, c.src_array_element, c.descriptor_count)?;
    let to = check_range(dst, c.dst_binding, c.dst_array_element, c.descriptor_count)?;
    let fits = from.ty == to.ty
        || (to.ty == vk::DescriptorType::MUTABLE_EXT
            && from.ty != vk::DescriptorType::INLINE_UNIFORM_BLOCK);
    if !fits {
        return Err(format!(
            "a copy from binding {} ({:?}) to binding {} ({:?})",
            c.src_binding, from.ty, c.dst_binding, to.ty
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use vk::DescriptorType as T;

    fn layout(bindings: &[(u32, T, u32, bool)]) -> Layout {
        Layout {
            bindings: bindings
                .iter()
                .map(|&(n, ty, count, immutable)| {
                    (
                        n,
                        Binding {
                            ty,
                            count,
                            immutable,
                        },
                    )
                })
                .collect(),
            variable: None,
        }
    }

    fn write<'a>(
        binding: u32,
        first: u32,
        ty: T,
        images: &'a [vk::DescriptorImageInfo],
    ) -> vk::WriteDescriptorSet<'a> {
        let mut w = vk::WriteDescriptorSet::default()
            .dst_binding(binding)
            .dst_array_element(first)
            .descriptor_type(ty)
            .image_info(images);
        w.descriptor_count = images.len() as u32;
        w
    }

    fn sampler(raw: u64) -> vk::DescriptorImageInfo {
        use ash::vk::Handle;
        vk::DescriptorImageInfo::default().sampler(vk::Sampler::from_raw(raw))
    }

    #[test]
    fn samplers_must_be_set_unless_immutable() {
        let l = layout(&[
            (0, T::COMBINED_IMAGE_SAMPLER, 1, false),
            (1, T::SAMPLER, 1, true),
        ]);
        let null = [sampler(0)];
        let some = [sampler(7)];
        // SAFETY: the writes point at live local arrays.
        unsafe {
            assert!(check_write(&l, &write(0, 0, T::COMBINED_IMAGE_SAMPLER, &null)).is_err());
            assert!(check_write(&l, &write(0, 0, T::COMBINED_IMAGE_SAMPLER, &some)).is_ok());
            assert!(check_write(&l, &write(1, 0, T::SAMPLER, &null)).is_ok());
        }
    }

    #[test]
    fn bindings_types_and_ranges_are_checked() {
        let l = layout(&[
            (0, T::SAMPLED_IMAGE, 2, false),
            (1, T::SAMPLED_IMAGE, 0, false),
            (2, T::SAMPLED_IMAGE, 3, false),
            (4, T::STORAGE_IMAGE, 1, false),
        ]);
        let two = [vk::DescriptorImageInfo::default(); 2];
        let five = [vk::DescriptorImageInfo::default(); 5];
        let six = [vk::DescriptorImageInfo::default(); 6];
        // SAFETY: as above.
        unsafe {
            assert!(check_write(&l, &write(3, 0, T::SAMPLED_IMAGE, &two)).is_err());
            assert!(check_write(&l, &write(0, 0, T::STORAGE_IMAGE, &two)).is_err());
            assert!(check_write(&l, &write(0, 0, T::SAMPLED_IMAGE, &two)).is_ok());
            assert!(check_write(&l, &write(0, 3, T::SAMPLED_IMAGE, &[])).is_err());
            // 5 from binding 0 continue over the empty binding 1 into binding 2.
            assert!(check_write(&l, &write(0, 0, T::SAMPLED_IMAGE, &five)).is_ok());
            // 6 would continue into binding 4, of another type.
            assert!(check_write(&l, &write(0, 0, T::SAMPLED_IMAGE, &six)).is_err());
            assert!(check_write(&l, &write(4, u32::MAX, T::STORAGE_IMAGE, &two)).is_err());
            // Image types need their array.
            let mut w = write(4, 0, T::STORAGE_IMAGE, &[]);
            w.descriptor_count = 1;
            w.p_image_info = std::ptr::null();
            assert!(check_write(&l, &w).is_err());
        }
    }

    #[test]
    fn copies_and_variable_counts_are_checked() {
        let mut l = layout(&[
            (0, T::UNIFORM_BUFFER, 4, false),
            (1, T::STORAGE_BUFFER, 8, false),
        ]);
        let copy = vk::CopyDescriptorSet::default()
            .src_binding(0)
            .dst_binding(0)
            .descriptor_count(4);
        assert!(check_copy(&l, &l, &copy).is_ok());
        assert!(check_copy(&l, &l, &copy.dst_array_element(1)).is_err());
        assert!(check_copy(&l, &l, &copy.dst_binding(1)).is_err());
        l.variable = Some(1);
        let l = Arc::new(l);
        assert!(with_variable_count(&l, Some(9)).is_err());
        let set = with_variable_count(&l, Some(2)).unwrap();
        assert_eq!(set.bindings[&1].count, 2);
        assert_eq!(with_variable_count(&l, None).unwrap().bindings[&1].count, 0);
    }
}
