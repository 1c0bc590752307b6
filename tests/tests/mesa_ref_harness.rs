//! Checks of the Mesa reference-encoder harness itself, against the worked
//! examples of VENUS-WIRE.md (§3, §5, §6, §7) and the stub's gating.
//!
//! Each test fails if the harness cannot be built, unless
//! `VENUS_SKIP_MESA_REF=1` is set.

use std::ffi::c_void;

use ash::vk::{self, Handle};
use venus_tests::mesa_ref::{
    arg, arg_mut, DecodedReply, MesaRef, GENERATE_REPLY, VK_XML_VERSION_1_3_269,
};

/// Parses the VENUS-WIRE.md notation: 8-hex-digit little-endian words as
/// they appear in memory, `??` for a pad byte, `|` ignored.
fn wire(text: &str) -> (Vec<u8>, Vec<bool>) {
    let mut bytes = Vec::new();
    let mut pad = Vec::new();
    for word in text.split_whitespace().filter(|w| *w != "|") {
        assert_eq!(word.len() % 2, 0, "odd token {word:?}");
        for i in (0..word.len()).step_by(2) {
            let pair = &word[i..i + 2];
            if pair == "??" {
                bytes.push(0);
                pad.push(true);
            } else {
                bytes.push(u8::from_str_radix(pair, 16).expect("hex byte"));
                pad.push(false);
            }
        }
    }
    (bytes, pad)
}

fn hex(bytes: &[u8], pad: &[bool]) -> String {
    bytes
        .chunks(4)
        .zip(pad.chunks(4))
        .map(|(b, p)| {
            b.iter()
                .zip(p)
                .map(|(b, p)| {
                    if *p {
                        "??".to_string()
                    } else {
                        format!("{b:02x}")
                    }
                })
                .collect::<String>()
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Encodes with Mesa and compares with the expected wire text.
fn assert_encodes(mesa: &MesaRef, name: &str, flags: u32, args: &[*const c_void], expected: &str) {
    let (want, want_pad) = wire(expected);
    // SAFETY: the callers build args from live values of the parameter types.
    let (got, pad) = unsafe { mesa.encode(name, flags, args) }.expect("command has an encoder");
    assert_eq!(
        (hex(&got, &pad), got.len()),
        (hex(&want, &want_pad), want.len()),
        "{name}"
    );
    assert_eq!(pad, want_pad, "{name}: pad mask");
    // SAFETY: as above.
    let size = unsafe { mesa.sizeof(name, flags, args) };
    assert_eq!(size, Some(want.len()), "{name}: vn_sizeof");
}

#[test]
fn covers_every_mesa_encoder() {
    let Some(mesa) = MesaRef::for_tests() else {
        return;
    };
    let names = mesa.command_names();
    assert_eq!(
        names.len(),
        271,
        "commands with a vn_encode_vk* in Mesa 25.0.7"
    );
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(names, sorted);
    for present in [
        "vkCreateBuffer",
        "vkCmdDraw",
        "vkCreateRingMESA",
        "vkWaitRingSeqnoMESA",
    ] {
        assert!(names.iter().any(|n| n == present), "{present} missing");
    }
    // VENUS-WIRE.md §9: no encoder in Mesa.
    for absent in ["vkGetInstanceProcAddr", "vkMapMemory", "vkGetMemoryFdKHR"] {
        assert!(!names.iter().any(|n| n == absent), "{absent} present");
    }
    assert_eq!(
        mesa.params("vkCreateBuffer").expect("known"),
        [
            "VkDevice device",
            "const VkBufferCreateInfo* pCreateInfo",
            "const VkAllocationCallbacks* pAllocator",
            "VkBuffer* pBuffer",
        ]
    );
    assert_eq!(mesa.params("vkNoSuchCommand"), None);
}

#[test]
fn create_buffer_example() {
    let Some(mesa) = MesaRef::for_tests() else {
        return;
    };
    let device = vk::Device::from_raw(2);
    let mut external = vk::ExternalMemoryBufferCreateInfo::default()
        .handle_types(vk::ExternalMemoryHandleTypeFlags::DMA_BUF_EXT);
    let info = vk::BufferCreateInfo::default()
        .size(0x10000)
        .usage(vk::BufferUsageFlags::STORAGE_BUFFER)
        .sharing_mode(vk::SharingMode::EXCLUSIVE)
        .push_next(&mut external);
    let p_info: *const vk::BufferCreateInfo = &info;
    let p_allocator: *const vk::AllocationCallbacks = std::ptr::null();
    let mut buffer = vk::Buffer::from_raw(7);
    let p_buffer: *mut vk::Buffer = &mut buffer;
    let args = [
        arg(&device),
        arg(&p_info),
        arg(&p_allocator),
        arg(&p_buffer),
    ];
    assert_encodes(
        &mesa,
        "vkCreateBuffer",
        GENERATE_REPLY,
        &args,
        "32000000 01000000
         02000000 00000000
         01000000 00000000 | 0c000000
         01000000 00000000 | 40e39b3b
         00000000 00000000 | 00020000
         00000000 | 00000100 00000000
         20000000 00000000 00000000
         00000000 00000000 00000000 00000000
         01000000 00000000 07000000 00000000",
    );

    // The reply (VENUS-WIRE.md §2): type, VkResult, u64 1, u64 id.
    // SAFETY: args point at live values of the parameter types.
    let reply_size = unsafe { mesa.sizeof_reply("vkCreateBuffer", &args) };
    assert_eq!(reply_size, Some(24));
    let (reply, _) = wire("32000000 00000000 01000000 00000000 2a000000 00000000");
    let mut out = vk::Buffer::null();
    let mut p_out: *mut vk::Buffer = &mut out;
    let mut device_arg = device;
    let dec_args = [
        arg_mut(&mut device_arg),
        std::ptr::null_mut(),
        std::ptr::null_mut(),
        arg_mut(&mut p_out),
    ];
    // SAFETY: dec_args point at live values; p_out points at a writable VkBuffer.
    let decoded = unsafe { mesa.decode_reply("vkCreateBuffer", &reply, &dec_args) };
    assert_eq!(
        decoded,
        Ok(DecodedReply {
            consumed: 24,
            ret: Some(0)
        })
    );
    assert_eq!(out.as_raw(), 42);
    // A wrong command type trips Mesa's assert, reported as an error.
    let (bad, _) = wire("33000000 00000000 01000000 00000000 2a000000 00000000");
    // SAFETY: as above.
    let err = unsafe { mesa.decode_reply("vkCreateBuffer", &bad, &dec_args) };
    assert!(err.is_err(), "{err:?}");
}

#[test]
fn extension_gating_drops_chain_members() {
    let Some(mut mesa) = MesaRef::for_tests() else {
        return;
    };
    let device = vk::Device::from_raw(2);
    // VkBufferUsageFlags2CreateInfoKHR needs VK_KHR_maintenance5 (471).
    let mut usage2 = vk::BufferUsageFlags2CreateInfoKHR::default()
        .usage(vk::BufferUsageFlags2KHR::STORAGE_BUFFER);
    let info = vk::BufferCreateInfo::default()
        .size(16)
        .push_next(&mut usage2);
    let p_info: *const vk::BufferCreateInfo = &info;
    let p_allocator: *const vk::AllocationCallbacks = std::ptr::null();
    let mut buffer = vk::Buffer::from_raw(7);
    let p_buffer: *mut vk::Buffer = &mut buffer;
    let args = [
        arg(&device),
        arg(&p_info),
        arg(&p_allocator),
        arg(&p_buffer),
    ];

    // SAFETY: args point at live values of the parameter types.
    let (all, _) = unsafe { mesa.encode("vkCreateBuffer", 0, &args) }.expect("encoder");
    // chain: u64 1, sType, u64 0 (end), u64 usage
    assert_eq!(all.len(), 92 + 8 + 4 + 8);
    assert_eq!(
        &all[28..40],
        &[1, 0, 0, 0, 0, 0, 0, 0, 0xf6, 0xf5, 0xa1, 0x3b]
    );

    // A valid mask (bit 0) without bit 471: the member is skipped silently.
    let mut only_valid = [0u32; 32];
    only_valid[0] = 1;
    mesa.set_protocol(&only_valid, VK_XML_VERSION_1_3_269);
    // SAFETY: as above.
    let (none, _) = unsafe { mesa.encode("vkCreateBuffer", 0, &args) }.expect("encoder");
    assert_eq!(none.len(), 92);
    assert_eq!(&none[28..36], &[0; 8]);

    let mut with_471 = only_valid;
    with_471[471 / 32] |= 1 << (471 % 32);
    mesa.set_protocol(&with_471, VK_XML_VERSION_1_3_269);
    // SAFETY: as above.
    let (again, _) = unsafe { mesa.encode("vkCreateBuffer", 0, &args) }.expect("encoder");
    assert_eq!(again, all);
}

#[test]
fn unaligned_u64_example() {
    let Some(mesa) = MesaRef::for_tests() else {
        return;
    };
    /// VkCommandStreamDescriptionMESA (not in ash).
    #[repr(C)]
    struct CommandStreamDescription {
        resource_id: u32,
        offset: u64,
        size: u64,
    }
    let stream = CommandStreamDescription {
        resource_id: 5,
        offset: 0x40,
        size: 0x100,
    };
    let p_stream: *const CommandStreamDescription = &stream;
    assert_encodes(
        &mesa,
        "vkSetReplyCommandStreamMESA",
        0,
        &[arg(&p_stream)],
        "b2000000 00000000 | 01000000 00000000 | 05000000 | 40000000 00000000 | 00010000 00000000",
    );
}

#[test]
fn queue_family_count_query_example() {
    let Some(mesa) = MesaRef::for_tests() else {
        return;
    };
    let physical_device = vk::PhysicalDevice::from_raw(3);
    let mut count = 0u32;
    let p_count: *mut u32 = &mut count;
    let p_props: *mut vk::QueueFamilyProperties2 = std::ptr::null_mut();
    assert_encodes(
        &mesa,
        "vkGetPhysicalDeviceQueueFamilyProperties2",
        GENERATE_REPLY,
        &[arg(&physical_device), arg(&p_count), arg(&p_props)],
        "97000000 01000000 | 03000000 00000000 | 01000000 00000000 | 00000000 | 00000000 00000000",
    );
}

#[test]
fn clear_value_example() {
    let Some(mesa) = MesaRef::for_tests() else {
        return;
    };
    let command_buffer = vk::CommandBuffer::from_raw(9);
    let attachment = vk::ClearAttachment {
        aspect_mask: vk::ImageAspectFlags::COLOR,
        color_attachment: 0,
        clear_value: vk::ClearValue {
            color: vk::ClearColorValue {
                float32: [1.0, 0.0, 0.0, 1.0],
            },
        },
    };
    let rect = vk::ClearRect {
        rect: vk::Rect2D {
            offset: vk::Offset2D { x: 0, y: 0 },
            extent: vk::Extent2D {
                width: 4,
                height: 4,
            },
        },
        base_array_layer: 0,
        layer_count: 1,
    };
    let one = 1u32;
    let p_attachments: *const vk::ClearAttachment = &attachment;
    let p_rects: *const vk::ClearRect = &rect;
    let type_cmd_clear_attachments = "79000000"; // 121
    assert_encodes(
        &mesa,
        "vkCmdClearAttachments",
        0,
        &[
            arg(&command_buffer),
            arg(&one),
            arg(&p_attachments),
            arg(&one),
            arg(&p_rects),
        ],
        &format!(
            "{type_cmd_clear_attachments} 00000000 | 09000000 00000000
             01000000 | 01000000 00000000
             01000000 00000000
             00000000 02000000 04000000 00000000 0000803f 00000000 00000000 0000803f
             01000000 | 01000000 00000000
             00000000 00000000 04000000 04000000 00000000 01000000"
        ),
    );
}

#[test]
fn pad_bytes_are_reported() {
    let Some(mesa) = MesaRef::for_tests() else {
        return;
    };
    // A lone uint16_t takes 4 bytes, 2 of them pad (VENUS-WIRE.md §1).
    let command_buffer = vk::CommandBuffer::from_raw(9);
    let factor = 3u32;
    let pattern = 0xabcdu16;
    let (bytes, pad) = {
        let args = [arg(&command_buffer), arg(&factor), arg(&pattern)];
        // SAFETY: args point at live values of the parameter types.
        unsafe { mesa.encode("vkCmdSetLineStippleEXT", 0, &args) }.expect("encoder")
    };
    assert_eq!(bytes.len(), 24);
    assert_eq!(&bytes[20..24], &[0xcd, 0xab, 0, 0]);
    assert_eq!(&pad[20..24], &[false, false, true, true]);
    assert!(!pad[..20].iter().any(|p| *p));

    // A string is padded to 4 (VENUS-WIRE.md §3).
    let physical_device = vk::PhysicalDevice::from_raw(3);
    let layer = c"vkcube";
    let p_layer = layer.as_ptr();
    let mut count = 0u32;
    let p_count: *mut u32 = &mut count;
    let p_props: *mut vk::ExtensionProperties = std::ptr::null_mut();
    assert_encodes(
        &mesa,
        "vkEnumerateDeviceExtensionProperties",
        GENERATE_REPLY,
        &[
            arg(&physical_device),
            arg(&p_layer),
            arg(&p_count),
            arg(&p_props),
        ],
        "0e000000 01000000 | 03000000 00000000
         07000000 00000000 766b6375 626500??
         01000000 00000000 00000000
         00000000 00000000",
    );
}

#[test]
fn mesa_asserts_are_reported() {
    let Some(mesa) = MesaRef::for_tests() else {
        return;
    };
    // pAllocator must be NULL: Mesa's encoder asserts.
    let device = vk::Device::from_raw(2);
    let buffer = vk::Buffer::from_raw(7);
    let callbacks = vk::AllocationCallbacks::default();
    let p_allocator: *const vk::AllocationCallbacks = &callbacks;
    let args = [arg(&device), arg(&buffer), arg(&p_allocator)];
    let result = std::panic::catch_unwind(|| {
        // SAFETY: args point at live values of the parameter types.
        unsafe { mesa.encode("vkDestroyBuffer", 0, &args) }
    });
    let message = result.expect_err("assert must be reported");
    let message = message
        .downcast_ref::<String>()
        .cloned()
        .unwrap_or_default();
    assert!(message.contains("assert"), "{message}");
    // The harness stays usable afterwards.
    let p_allocator: *const vk::AllocationCallbacks = std::ptr::null();
    let args = [arg(&device), arg(&buffer), arg(&p_allocator)];
    // SAFETY: as above.
    let size = unsafe { mesa.sizeof("vkDestroyBuffer", 0, &args) };
    assert_eq!(size, Some(32));
}
