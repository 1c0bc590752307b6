//! Tests of the Venus capset layout, extension mask and Mesa's acceptance checks.

use venus_protocol::capset::{
    offsets, CapsetError, ExtensionMask, VenusCapset, CAPSET_ID_VENUS, CAPSET_SIZE, CAPSET_VERSION,
    MIN_VK_XML_VERSION, VK_XML_VERSION,
};

/// The 118 extension numbers of the protocol level (VENUS-WIRE.md §12, from
/// `venus-protocol/vn_protocol_driver_info.h`).
const PROTOCOL_EXTENSIONS: [u32; 118] = [
    15, 29, 45, 54, 60, 61, 64, 65, 67, 70, 71, 72, 73, 75, 77, 78, 80, 81, 82, 83, 84, 86, 102,
    103, 109, 110, 113, 114, 116, 118, 121, 126, 127, 128, 131, 132, 139, 141, 145, 147, 148, 157,
    158, 159, 162, 163, 169, 170, 176, 178, 181, 182, 185, 191, 193, 197, 198, 200, 208, 212, 213,
    216, 222, 226, 227, 237, 238, 242, 246, 247, 252, 254, 255, 258, 260, 262, 266, 268, 277, 281,
    282, 287, 288, 291, 294, 296, 298, 315, 321, 326, 331, 336, 338, 340, 341, 352, 353, 356, 357,
    361, 378, 382, 383, 384, 385, 392, 393, 394, 401, 412, 414, 423, 454, 456, 464, 471, 495, 500,
];

/// The mask words virglrenderer 1.1.0 puts in the capset (VENUS-WIRE.md §11).
const VKR_1_1_0_MASK: [u32; 32] = [
    0x20008001, 0x30402000, 0x005f6bcb, 0xc25660c0, 0xe01a2819, 0x8265060c, 0x41310162, 0xd0c4600c,
    0x86201454, 0x08000549, 0x00350842, 0xc4000233, 0x50020703, 0x00000080, 0x00810140, 0x00108000,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
];

fn vkr_capset() -> VenusCapset {
    VenusCapset {
        wire_format_version: 1,
        vk_xml_version: 0x0040_310D,
        vk_ext_command_serialization_spec_version: 1,
        vk_mesa_venus_protocol_spec_version: 2,
        supports_blob_id_0: 1,
        vk_extension_mask1: VKR_1_1_0_MASK,
        allow_vk_wait_syncs: 1,
        supports_multiple_timelines: 1,
        use_guest_vram: 0,
    }
}

fn word_at(bytes: &[u8], offset: usize) -> u32 {
    let mut le = [0u8; 4];
    le.copy_from_slice(&bytes[offset..offset + 4]);
    u32::from_le_bytes(le)
}

#[test]
fn constants() {
    assert_eq!(CAPSET_ID_VENUS, 4);
    assert_eq!(CAPSET_VERSION, 0);
    assert_eq!(CAPSET_SIZE, 160);
    assert_eq!(VK_XML_VERSION, 0x0040_310D);
    assert_eq!(MIN_VK_XML_VERSION, 0x0040_1000);
}

#[test]
fn protocol_extension_list_is_sorted_and_unique() {
    assert!(PROTOCOL_EXTENSIONS.windows(2).all(|w| w[0] < w[1]));
}

#[test]
fn vkr_mask_equals_mask_built_from_protocol_extensions() {
    let built = ExtensionMask::from_extension_numbers(PROTOCOL_EXTENSIONS).unwrap();
    assert!(built.is_valid());
    assert_eq!(built.words(), VKR_1_1_0_MASK);
    let listed: Vec<u32> = ExtensionMask::from_words(VKR_1_1_0_MASK)
        .extension_numbers()
        .collect();
    assert_eq!(listed, PROTOCOL_EXTENSIONS.to_vec());
}

#[test]
fn mask_bit_positions() {
    let mut mask = ExtensionMask::new_valid();
    assert_eq!(mask.words()[0], 1);
    mask.insert(385).unwrap(); // VK_MESA_venus_protocol
    assert_eq!(mask.words()[12], 1 << 1);
    mask.insert(31).unwrap();
    assert_eq!(mask.words()[0], 0x8000_0001);
    mask.insert(1023).unwrap();
    assert_eq!(mask.words()[31], 0x8000_0000);
    assert!(mask.supports(385) && mask.supports(31) && mask.supports(1023));
    assert!(!mask.supports(384));
    mask.remove(385).unwrap();
    assert!(!mask.supports(385));
    assert_eq!(
        mask.insert(0),
        Err(CapsetError::ExtensionNumberOutOfRange(0))
    );
    assert_eq!(
        mask.insert(1024),
        Err(CapsetError::ExtensionNumberOutOfRange(1024))
    );
    assert!(!mask.supports(0));
    assert!(!mask.supports(1024));
}

#[test]
fn invalid_mask_means_every_extension() {
    let mut mask = ExtensionMask::default();
    assert!(!mask.is_valid());
    assert!(mask.supports(1) && mask.supports(500) && mask.supports(1023));
    assert!(!mask.supports(0));
    assert!(!mask.contains_bit(500));
    mask.set_valid(true);
    assert!(!mask.supports(500));
    mask.set_valid(false);
    assert_eq!(mask, ExtensionMask::default());
}

#[test]
fn field_offsets_match_venus_hw_h() {
    let mut capset = VenusCapset {
        wire_format_version: 0x1000_0001,
        vk_xml_version: 0x1000_0002,
        vk_ext_command_serialization_spec_version: 0x1000_0003,
        vk_mesa_venus_protocol_spec_version: 0x1000_0004,
        supports_blob_id_0: 0x1000_0005,
        vk_extension_mask1: [0; 32],
        allow_vk_wait_syncs: 0x1000_0006,
        supports_multiple_timelines: 0x1000_0007,
        use_guest_vram: 0x1000_0008,
    };
    for (i, w) in capset.vk_extension_mask1.iter_mut().enumerate() {
        *w = 0x2000_0000 + i as u32;
    }
    let bytes = capset.to_bytes();
    assert_eq!(bytes.len(), 160);
    // Offsets from the VENUS-WIRE.md §11 table.
    let table = [
        (0, 0x1000_0001, offsets::WIRE_FORMAT_VERSION),
        (4, 0x1000_0002, offsets::VK_XML_VERSION),
        (
            8,
            0x1000_0003,
            offsets::VK_EXT_COMMAND_SERIALIZATION_SPEC_VERSION,
        ),
        (
            12,
            0x1000_0004,
            offsets::VK_MESA_VENUS_PROTOCOL_SPEC_VERSION,
        ),
        (16, 0x1000_0005, offsets::SUPPORTS_BLOB_ID_0),
        (20, 0x2000_0000, offsets::VK_EXTENSION_MASK1),
        (148, 0x1000_0006, offsets::ALLOW_VK_WAIT_SYNCS),
        (152, 0x1000_0007, offsets::SUPPORTS_MULTIPLE_TIMELINES),
        (156, 0x1000_0008, offsets::USE_GUEST_VRAM),
    ];
    for (offset, value, constant) in table {
        assert_eq!(constant, offset);
        assert_eq!(word_at(&bytes, offset), value, "offset {offset}");
    }
    for i in 0..32 {
        assert_eq!(word_at(&bytes, 20 + 4 * i), 0x2000_0000 + i as u32);
    }
}

#[test]
fn byte_round_trip() {
    let capset = vkr_capset();
    let bytes = capset.to_bytes();
    assert_eq!(VenusCapset::from_bytes(&bytes).unwrap(), capset);
    assert_eq!(word_at(&bytes, 0), 1);
    assert_eq!(&bytes[4..8], &[0x0d, 0x31, 0x40, 0x00]);
    assert_eq!(word_at(&bytes, 20), 0x2000_8001);
}

#[test]
fn new_matches_vkr_defaults() {
    let mask = ExtensionMask::from_extension_numbers(PROTOCOL_EXTENSIONS).unwrap();
    assert_eq!(VenusCapset::new(mask, false), vkr_capset());
    assert_eq!(VenusCapset::new(mask, true).use_guest_vram, 1);
}

#[test]
fn short_input_is_zero_filled_like_mesa() {
    let full = vkr_capset().to_bytes();
    // 148 bytes: everything up to the mask, no trailing flags.
    let short = VenusCapset::from_bytes(&full[..148]).unwrap();
    assert_eq!(short.vk_extension_mask1, VKR_1_1_0_MASK);
    assert_eq!(short.allow_vk_wait_syncs, 0);
    assert_eq!(short.supports_multiple_timelines, 0);
    // A partial word keeps its low bytes.
    let partial = VenusCapset::from_bytes(&full[..6]).unwrap();
    assert_eq!(partial.vk_xml_version, 0x310d);
    assert_eq!(VenusCapset::from_bytes(&[]), Err(CapsetError::Empty));
}

#[test]
fn long_input_tail_is_ignored_like_mesa() {
    let mut long = vkr_capset().to_bytes().to_vec();
    long.extend_from_slice(&[0xff; 100]);
    assert_eq!(VenusCapset::from_bytes(&long).unwrap(), vkr_capset());
}

#[test]
fn validate_accepts_vkr_capset() {
    let eff = vkr_capset().validate_like_mesa().unwrap();
    assert_eq!(eff.wire_format_version, 1);
    assert_eq!(eff.vk_xml_version, VK_XML_VERSION);
    assert_eq!(eff.vk_ext_command_serialization_spec_version, 1);
    assert_eq!(eff.vk_mesa_venus_protocol_spec_version, 2);
    assert_eq!(eff.extension_mask.words(), VKR_1_1_0_MASK);
    assert!(!eff.use_guest_vram);
}

#[test]
fn validate_clamps_newer_renderer() {
    let mut capset = vkr_capset();
    capset.vk_xml_version = 0x0040_4000; // 1.4.0
    capset.vk_ext_command_serialization_spec_version = 7;
    capset.vk_mesa_venus_protocol_spec_version = 9;
    let eff = capset.validate_like_mesa().unwrap();
    assert_eq!(eff.vk_xml_version, VK_XML_VERSION);
    assert_eq!(eff.vk_ext_command_serialization_spec_version, 1);
    assert_eq!(eff.vk_mesa_venus_protocol_spec_version, 2);

    // Older values are kept.
    capset.vk_xml_version = MIN_VK_XML_VERSION;
    capset.vk_mesa_venus_protocol_spec_version = 1;
    let eff = capset.validate_like_mesa().unwrap();
    assert_eq!(eff.vk_xml_version, MIN_VK_XML_VERSION);
    assert_eq!(eff.vk_mesa_venus_protocol_spec_version, 1);
}

#[test]
fn validate_rejections() {
    let mut c = vkr_capset();
    c.wire_format_version = 2;
    assert_eq!(
        c.validate_like_mesa(),
        Err(CapsetError::WireFormatVersion(2))
    );
    c.wire_format_version = 0;
    assert_eq!(
        c.validate_like_mesa(),
        Err(CapsetError::WireFormatVersion(0))
    );

    let mut c = vkr_capset();
    c.vk_xml_version = 0x0040_0000 + 290; // 1.0.290
    assert_eq!(
        c.validate_like_mesa(),
        Err(CapsetError::VkXmlVersionTooOld(0x0040_0000 + 290))
    );

    let mut c = vkr_capset();
    c.supports_blob_id_0 = 0;
    assert_eq!(c.validate_like_mesa(), Err(CapsetError::BlobId0Unsupported));
    let mut c = vkr_capset();
    c.allow_vk_wait_syncs = 0;
    assert_eq!(
        c.validate_like_mesa(),
        Err(CapsetError::WaitSyncsNotAllowed)
    );
    let mut c = vkr_capset();
    c.supports_multiple_timelines = 0;
    assert_eq!(
        c.validate_like_mesa(),
        Err(CapsetError::MultipleTimelinesUnsupported)
    );

    // An all-zero capset (what Mesa holds after an empty reply) is refused.
    assert!(VenusCapset::default().validate_like_mesa().is_err());
}
