//! Handles inside structs that the registry requires to be valid (neither
//! `optional` nor `noautovalidity`): with a resolver (the host), `VK_NULL_HANDLE`
//! there is a decode error, so the driver never sees it; optional members and
//! decoding without a resolver (the guest reading replies) are unchanged.

use ash::vk;
use ash::vk::Handle;
use bumpalo::Bump;
use venus_protocol::generated as g;
use venus_protocol::{DecodeError, Decoder, Encoder, HandleResolver};

/// Knows every nonzero id (maps it to id + 1000).
struct Everything;

impl HandleResolver for Everything {
    fn resolve(&self, _ty: vk::ObjectType, id: u64) -> Option<u64> {
        Some(id + 1000)
    }
}

fn bind2(buffer: u64, memory: u64) -> Vec<u8> {
    let info = vk::BindBufferMemoryInfo::default()
        .buffer(vk::Buffer::from_raw(buffer))
        .memory(vk::DeviceMemory::from_raw(memory));
    let mut buf = vec![0u8; 256];
    let mut e = Encoder::with_all(&mut buf);
    // SAFETY: `info` is a valid local; count 1 matches the one element.
    unsafe { g::encode_vk_bind_buffer_memory2(&mut e, 0, vk::Device::from_raw(7), 1, &info) };
    let n = e.finish().expect("fits");
    buf.truncate(n);
    buf
}

fn decode(bytes: &[u8], resolver: Option<&dyn HandleResolver>) -> (Option<DecodeError>, u64) {
    let mut d = match resolver {
        Some(r) => Decoder::with_resolver(bytes, r),
        None => Decoder::new(bytes),
    };
    let _ty = d.i32();
    let _flags = d.u32();
    let a = Bump::new();
    let args = g::decode_vk_bind_buffer_memory2(&mut d, &a);
    let buffer = if d.error().is_none() && !args.p_bind_infos.is_null() {
        // SAFETY: the decoder allocated one element in `a`, alive here.
        unsafe { (*args.p_bind_infos).buffer.as_raw() }
    } else {
        0
    };
    (d.error(), buffer)
}

#[test]
fn null_required_struct_handle_is_refused_on_the_host() {
    let (err, _) = decode(&bind2(0, 5), Some(&Everything));
    assert!(
        matches!(err, Some(DecodeError::NullHandle { ty }) if ty == vk::ObjectType::BUFFER.as_raw()),
        "got {err:?}"
    );
    let (err, _) = decode(&bind2(9, 0), Some(&Everything));
    assert!(
        matches!(err, Some(DecodeError::NullHandle { ty }) if ty == vk::ObjectType::DEVICE_MEMORY.as_raw()),
        "got {err:?}"
    );
}

#[test]
fn valid_struct_handles_are_translated() {
    let (err, buffer) = decode(&bind2(9, 5), Some(&Everything));
    assert_eq!(err, None);
    assert_eq!(buffer, 1009);
}

#[test]
fn without_a_resolver_null_is_left_alone() {
    let (err, buffer) = decode(&bind2(0, 0), None);
    assert_eq!(err, None);
    assert_eq!(buffer, 0);
}

#[test]
fn optional_struct_handles_may_be_null() {
    // VkDescriptorImageInfo: sampler and imageView are noautovalidity (ignored
    // for some descriptor types; Mesa zeroes them), so null must pass.
    let img = vk::DescriptorImageInfo::default().image_layout(vk::ImageLayout::GENERAL);
    let write = vk::WriteDescriptorSet::default()
        .dst_set(vk::DescriptorSet::from_raw(3))
        .descriptor_type(vk::DescriptorType::STORAGE_IMAGE)
        .image_info(std::slice::from_ref(&img));
    let mut buf = vec![0u8; 512];
    let mut e = Encoder::with_all(&mut buf);
    // SAFETY: valid locals, counts match.
    unsafe {
        g::encode_vk_update_descriptor_sets(
            &mut e,
            0,
            vk::Device::from_raw(7),
            1,
            &write,
            0,
            std::ptr::null(),
        )
    };
    let n = e.finish().expect("fits");
    let mut d = Decoder::with_resolver(&buf[..n], &Everything);
    let _ = (d.i32(), d.u32());
    let a = Bump::new();
    let _ = g::decode_vk_update_descriptor_sets(&mut d, &a);
    assert_eq!(d.error(), None);
}
