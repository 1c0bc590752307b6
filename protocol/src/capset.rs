//! The Venus capability set, `virgl_renderer_capset_venus`.
//!
//! The host renderer describes its side of the protocol in a 160-byte block of
//! 40 little-endian `u32` words: capset id [`CAPSET_ID_VENUS`] (4), version
//! [`CAPSET_VERSION`] (0). The guest fetches it with `DRM_IOCTL_VIRTGPU_GET_CAPS`
//! on virtio-gpu or `VCMD_GET_CAPSET` on vtest, and refuses to run when the
//! checks in [`VenusCapset::validate_like_mesa`] fail.
//!
//! | offset | field |
//! |---|---|
//! | 0 | `wire_format_version` |
//! | 4 | `vk_xml_version` |
//! | 8 | `vk_ext_command_serialization_spec_version` |
//! | 12 | `vk_mesa_venus_protocol_spec_version` |
//! | 16 | `supports_blob_id_0` |
//! | 20 | `vk_extension_mask1[32]` |
//! | 148 | `allow_vk_wait_syncs` |
//! | 152 | `supports_multiple_timelines` |
//! | 156 | `use_guest_vram` |
//!
//! Sources: Mesa 25.0.7 `src/virtio/virtio-gpu/venus_hw.h` (layout),
//! `src/virtio/vulkan/vn_instance.c` (`vn_instance_init_renderer`: the version
//! checks), `vn_renderer_vtest.c` / `vn_renderer_virtgpu.c` (how the bytes are
//! read, and the flags Mesa asserts).

use thiserror::Error;

/// The capset id of Venus (`VIRGL_RENDERER_CAPSET_VENUS`).
pub const CAPSET_ID_VENUS: u32 = 4;

/// The only capset version Mesa asks for.
pub const CAPSET_VERSION: u32 = 0;

/// Size in bytes of `virgl_renderer_capset_venus`.
pub const CAPSET_SIZE: usize = 160;

/// The wire format version both ends speak; Mesa refuses anything else.
pub const WIRE_FORMAT_VERSION: u32 = 1;

/// The vk.xml version of the protocol level (1.3.269), `VK_MAKE_API_VERSION(0, 1, 3, 269)`.
pub const VK_XML_VERSION: u32 = make_api_version(1, 3, 269);

/// The oldest renderer vk.xml version Mesa accepts (`VN_MIN_RENDERER_VERSION`, Vulkan 1.1).
pub const MIN_VK_XML_VERSION: u32 = make_api_version(1, 1, 0);

/// Spec version of `VK_EXT_command_serialization` at this protocol level.
pub const EXT_COMMAND_SERIALIZATION_SPEC_VERSION: u32 = 1;

/// Spec version of `VK_MESA_venus_protocol` at this protocol level.
pub const MESA_VENUS_PROTOCOL_SPEC_VERSION: u32 = 2;

/// Packs a Vulkan API version with variant 0, as `VK_MAKE_API_VERSION(0, major, minor, patch)`.
pub const fn make_api_version(major: u32, minor: u32, patch: u32) -> u32 {
    (major << 22) | ((minor & 0x3ff) << 12) | (patch & 0xfff)
}

/// Byte offsets of every field inside the 160-byte capset.
pub mod offsets {
    /// `wire_format_version`.
    pub const WIRE_FORMAT_VERSION: usize = 0;
    /// `vk_xml_version`.
    pub const VK_XML_VERSION: usize = 4;
    /// `vk_ext_command_serialization_spec_version`.
    pub const VK_EXT_COMMAND_SERIALIZATION_SPEC_VERSION: usize = 8;
    /// `vk_mesa_venus_protocol_spec_version`.
    pub const VK_MESA_VENUS_PROTOCOL_SPEC_VERSION: usize = 12;
    /// `supports_blob_id_0`.
    pub const SUPPORTS_BLOB_ID_0: usize = 16;
    /// `vk_extension_mask1[0]`; the 32 words follow contiguously.
    pub const VK_EXTENSION_MASK1: usize = 20;
    /// `allow_vk_wait_syncs`.
    pub const ALLOW_VK_WAIT_SYNCS: usize = 148;
    /// `supports_multiple_timelines`.
    pub const SUPPORTS_MULTIPLE_TIMELINES: usize = 152;
    /// `use_guest_vram`.
    pub const USE_GUEST_VRAM: usize = 156;
}

/// Errors from building, parsing or checking a capset.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
pub enum CapsetError {
    /// The capset bytes were empty, so not even `wire_format_version` is present.
    #[error("capset is empty")]
    Empty,
    /// An extension number outside 1..=1023 was given to the extension mask.
    #[error("extension number {0} is outside the capset mask (1..=1023)")]
    ExtensionNumberOutOfRange(u32),
    /// `supports_blob_id_0` is 0; Mesa asserts it (shmems are blobs with id 0).
    #[error("renderer does not support blob id 0")]
    BlobId0Unsupported,
    /// `allow_vk_wait_syncs` is 0; Mesa asserts it.
    #[error("renderer does not allow vkWait* syncs")]
    WaitSyncsNotAllowed,
    /// `supports_multiple_timelines` is 0; Mesa asserts it.
    #[error("renderer does not support multiple timelines")]
    MultipleTimelinesUnsupported,
    /// `wire_format_version` differs from [`WIRE_FORMAT_VERSION`].
    #[error("wire format version {0} is not {WIRE_FORMAT_VERSION}")]
    WireFormatVersion(u32),
    /// `vk_xml_version` is older than [`MIN_VK_XML_VERSION`] (Vulkan 1.1).
    #[error("renderer vk.xml version {0:#x} is older than 1.1")]
    VkXmlVersionTooOld(u32),
}

/// The extension bitmask `vk_extension_mask1[32]`.
///
/// Extension number N (the `number` attribute in vk.xml) is bit `N % 32` of word
/// `N / 32`. Bit 0 of word 0 is not an extension: it says the mask is valid.
/// When it is clear, Mesa assumes the renderer supports every extension
/// (`vn_cs.c:vn_cs_renderer_protocol_info_init_once`), and so does
/// [`ExtensionMask::supports`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct ExtensionMask {
    words: [u32; 32],
}

impl ExtensionMask {
    /// The highest extension number the mask can hold.
    pub const MAX_EXTENSION_NUMBER: u32 = 32 * 32 - 1;

    /// A valid mask (bit 0 set) that lists no extension.
    pub const fn new_valid() -> Self {
        let mut words = [0u32; 32];
        words[0] = 1;
        Self { words }
    }

    /// Wraps raw mask words as they appear in the capset.
    pub const fn from_words(words: [u32; 32]) -> Self {
        Self { words }
    }

    /// The raw mask words.
    pub const fn words(&self) -> [u32; 32] {
        self.words
    }

    /// A valid mask listing exactly the given extension numbers.
    pub fn from_extension_numbers<I>(numbers: I) -> Result<Self, CapsetError>
    where
        I: IntoIterator<Item = u32>,
    {
        let mut mask = Self::new_valid();
        for number in numbers {
            mask.insert(number)?;
        }
        Ok(mask)
    }

    /// Whether bit 0 ("mask valid") is set.
    pub const fn is_valid(&self) -> bool {
        self.words[0] & 1 != 0
    }

    /// Sets or clears bit 0 ("mask valid").
    pub fn set_valid(&mut self, valid: bool) {
        if valid {
            self.words[0] |= 1;
        } else {
            self.words[0] &= !1;
        }
    }

    /// Marks extension `number` as present. Number 0 is the valid bit, not an extension.
    pub fn insert(&mut self, number: u32) -> Result<(), CapsetError> {
        let (word, bit) = Self::locate(number)?;
        if let Some(w) = self.words.get_mut(word) {
            *w |= bit;
        }
        Ok(())
    }

    /// Marks extension `number` as absent.
    pub fn remove(&mut self, number: u32) -> Result<(), CapsetError> {
        let (word, bit) = Self::locate(number)?;
        if let Some(w) = self.words.get_mut(word) {
            *w &= !bit;
        }
        Ok(())
    }

    /// The raw bit for `number`, ignoring the valid bit. Out-of-range numbers are absent.
    pub fn contains_bit(&self, number: u32) -> bool {
        let word = (number / 32) as usize;
        let bit = 1u32 << (number % 32);
        self.words.get(word).is_some_and(|w| w & bit != 0)
    }

    /// Whether the renderer supports extension `number`, as Mesa decides it:
    /// every number in 1..=1023 counts as present when the valid bit is clear.
    /// Number 0 and numbers above 1023 are never extensions.
    pub fn supports(&self, number: u32) -> bool {
        if number == 0 || number > Self::MAX_EXTENSION_NUMBER {
            return false;
        }
        !self.is_valid() || self.contains_bit(number)
    }

    /// The extension numbers whose bit is set (the valid bit excluded), ascending.
    pub fn extension_numbers(&self) -> impl Iterator<Item = u32> + '_ {
        (1..=Self::MAX_EXTENSION_NUMBER).filter(move |&n| self.contains_bit(n))
    }

    fn locate(number: u32) -> Result<(usize, u32), CapsetError> {
        if number == 0 || number > Self::MAX_EXTENSION_NUMBER {
            return Err(CapsetError::ExtensionNumberOutOfRange(number));
        }
        Ok(((number / 32) as usize, 1u32 << (number % 32)))
    }
}

/// `struct virgl_renderer_capset_venus`, field for field.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VenusCapset {
    /// Wire format version; must be 1.
    pub wire_format_version: u32,
    /// The renderer's vk.xml version (`VK_MAKE_API_VERSION` packing).
    pub vk_xml_version: u32,
    /// Spec version of `VK_EXT_command_serialization` the renderer speaks.
    pub vk_ext_command_serialization_spec_version: u32,
    /// Spec version of `VK_MESA_venus_protocol` the renderer speaks.
    pub vk_mesa_venus_protocol_spec_version: u32,
    /// Nonzero when blobs may be created with blob id 0 (used for shmems).
    pub supports_blob_id_0: u32,
    /// Extension mask words; see [`ExtensionMask`].
    pub vk_extension_mask1: [u32; 32],
    /// Nonzero when the guest may pass vkWait* calls through to the renderer.
    pub allow_vk_wait_syncs: u32,
    /// Nonzero when each VkQueue may be bound to its own fence timeline (ring_idx).
    pub supports_multiple_timelines: u32,
    /// Nonzero when blobs must be allocated by the guest from its dedicated VRAM heap.
    pub use_guest_vram: u32,
}

/// The values Mesa runs with after accepting a capset (clamped to its own level).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EffectiveCapset {
    /// Always [`WIRE_FORMAT_VERSION`].
    pub wire_format_version: u32,
    /// `min(vk_xml_version, 1.3.269)`, at least 1.1.
    pub vk_xml_version: u32,
    /// `min(renderer's, EXT_COMMAND_SERIALIZATION_SPEC_VERSION)`.
    pub vk_ext_command_serialization_spec_version: u32,
    /// `min(renderer's, MESA_VENUS_PROTOCOL_SPEC_VERSION)`.
    pub vk_mesa_venus_protocol_spec_version: u32,
    /// The extension mask as sent.
    pub extension_mask: ExtensionMask,
    /// Whether the guest must allocate blobs from guest VRAM.
    pub use_guest_vram: bool,
}

impl VenusCapset {
    /// The capset a renderer at this crate's protocol level advertises (the values
    /// virglrenderer 1.1.0 sets), with the given extension mask.
    pub fn new(extension_mask: ExtensionMask, use_guest_vram: bool) -> Self {
        Self {
            wire_format_version: WIRE_FORMAT_VERSION,
            vk_xml_version: VK_XML_VERSION,
            vk_ext_command_serialization_spec_version: EXT_COMMAND_SERIALIZATION_SPEC_VERSION,
            vk_mesa_venus_protocol_spec_version: MESA_VENUS_PROTOCOL_SPEC_VERSION,
            supports_blob_id_0: 1,
            vk_extension_mask1: extension_mask.words(),
            allow_vk_wait_syncs: 1,
            supports_multiple_timelines: 1,
            use_guest_vram: u32::from(use_guest_vram),
        }
    }

    /// The extension mask as an [`ExtensionMask`].
    pub fn extension_mask(&self) -> ExtensionMask {
        ExtensionMask::from_words(self.vk_extension_mask1)
    }

    /// The 160 little-endian bytes of the capset.
    pub fn to_bytes(&self) -> [u8; CAPSET_SIZE] {
        let mut words = [0u32; CAPSET_SIZE / 4];
        let head = [
            self.wire_format_version,
            self.vk_xml_version,
            self.vk_ext_command_serialization_spec_version,
            self.vk_mesa_venus_protocol_spec_version,
            self.supports_blob_id_0,
        ];
        let tail = [
            self.allow_vk_wait_syncs,
            self.supports_multiple_timelines,
            self.use_guest_vram,
        ];
        for (dst, src) in words.iter_mut().zip(
            head.iter()
                .chain(self.vk_extension_mask1.iter())
                .chain(tail.iter()),
        ) {
            *dst = *src;
        }
        let mut out = [0u8; CAPSET_SIZE];
        for (chunk, word) in out.chunks_exact_mut(4).zip(words.iter()) {
            chunk.copy_from_slice(&word.to_le_bytes());
        }
        out
    }

    /// Parses capset bytes the way Mesa reads them.
    ///
    /// Mesa copies whatever the renderer sends into a zeroed struct: on vtest,
    /// `vtest_vcmd_get_capset` reads a shorter payload and zero-fills the rest, or
    /// reads 160 bytes and discards a longer payload's tail; on virtio-gpu the
    /// kernel copies `min(requested, host size)` bytes into the zero-allocated
    /// struct. This function does the same: missing trailing bytes read as zero and
    /// bytes past 160 are ignored, at byte granularity.
    ///
    /// The one deviation: an empty slice is [`CapsetError::Empty`]. Mesa would go on
    /// with an all-zero capset and then refuse wire format version 0, so nothing that
    /// Mesa accepts is rejected here.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, CapsetError> {
        if bytes.is_empty() {
            return Err(CapsetError::Empty);
        }
        let mut padded = [0u8; CAPSET_SIZE];
        for (dst, src) in padded.iter_mut().zip(bytes.iter()) {
            *dst = *src;
        }
        let mut words = [0u32; CAPSET_SIZE / 4];
        for (word, chunk) in words.iter_mut().zip(padded.chunks_exact(4)) {
            let mut le = [0u8; 4];
            le.copy_from_slice(chunk);
            *word = u32::from_le_bytes(le);
        }
        let mut mask = [0u32; 32];
        for (dst, src) in mask.iter_mut().zip(words.iter().skip(5)) {
            *dst = *src;
        }
        let [w0, w1, w2, w3, w4] = first_words(&words);
        let [t0, t1, t2] = last_words(&words);
        Ok(Self {
            wire_format_version: w0,
            vk_xml_version: w1,
            vk_ext_command_serialization_spec_version: w2,
            vk_mesa_venus_protocol_spec_version: w3,
            supports_blob_id_0: w4,
            vk_extension_mask1: mask,
            allow_vk_wait_syncs: t0,
            supports_multiple_timelines: t1,
            use_guest_vram: t2,
        })
    }

    /// The checks Mesa 25.0.7 makes before it uses a renderer, in Mesa's order, and
    /// the effective values it then runs with.
    ///
    /// 1. `supports_blob_id_0`, `allow_vk_wait_syncs` and `supports_multiple_timelines`
    ///    must be nonzero. Mesa `assert`s these while creating the renderer
    ///    (`vtest_init_renderer_info` / `virtgpu_init_renderer_info`), so a debug
    ///    build aborts and a release build goes on to fail later; here they are errors.
    /// 2. `wire_format_version` must equal 1.
    /// 3. `vk_xml_version` is clamped down to 1.3.269 and must then be at least 1.1.
    /// 4. The two spec versions are clamped down to Mesa's (1 and 2).
    pub fn validate_like_mesa(&self) -> Result<EffectiveCapset, CapsetError> {
        if self.supports_blob_id_0 == 0 {
            return Err(CapsetError::BlobId0Unsupported);
        }
        if self.allow_vk_wait_syncs == 0 {
            return Err(CapsetError::WaitSyncsNotAllowed);
        }
        if self.supports_multiple_timelines == 0 {
            return Err(CapsetError::MultipleTimelinesUnsupported);
        }
        if self.wire_format_version != WIRE_FORMAT_VERSION {
            return Err(CapsetError::WireFormatVersion(self.wire_format_version));
        }
        let vk_xml_version = self.vk_xml_version.min(VK_XML_VERSION);
        if vk_xml_version < MIN_VK_XML_VERSION {
            return Err(CapsetError::VkXmlVersionTooOld(self.vk_xml_version));
        }
        Ok(EffectiveCapset {
            wire_format_version: self.wire_format_version,
            vk_xml_version,
            vk_ext_command_serialization_spec_version: self
                .vk_ext_command_serialization_spec_version
                .min(EXT_COMMAND_SERIALIZATION_SPEC_VERSION),
            vk_mesa_venus_protocol_spec_version: self
                .vk_mesa_venus_protocol_spec_version
                .min(MESA_VENUS_PROTOCOL_SPEC_VERSION),
            extension_mask: self.extension_mask(),
            use_guest_vram: self.use_guest_vram != 0,
        })
    }
}

fn first_words(words: &[u32; CAPSET_SIZE / 4]) -> [u32; 5] {
    let mut out = [0u32; 5];
    for (dst, src) in out.iter_mut().zip(words.iter()) {
        *dst = *src;
    }
    out
}

fn last_words(words: &[u32; CAPSET_SIZE / 4]) -> [u32; 3] {
    let mut out = [0u32; 3];
    for (dst, src) in out.iter_mut().zip(words.iter().skip(5 + 32)) {
        *dst = *src;
    }
    out
}

/// Our hosts' extension of the capset: bytes past the 160 Mesa knows.
///
/// `virgl_renderer_capset_venus` fills its 160 bytes exactly, and neither the
/// virtio-gpu capset query nor vtest has another place where a host can say how
/// coarse its memory sharing is (16 KiB pages on Apple Silicon). Our hosts
/// therefore report a capset size of [`EXTENDED_CAPSET_SIZE`] and put a tail
/// after the standard block. Readers that ask for 160 bytes (Mesa: the kernel
/// copies `min(asked, host size)`; vtest reads 160 and drops the rest) never
/// see it; a host without it (stock virglrenderer) reports 160, so a reader that
/// asks for more gets no tail and falls back to its own page size.
///
/// | offset | field |
/// |---|---|
/// | 160 | magic [`TAIL_MAGIC`] (`"VNSG"` little-endian) |
/// | 164 | tail version, 1 |
/// | 168 | `u64` sharing granularity in bytes (power of two, ≥ 4096) |
pub mod tail {
    /// Capset size our hosts report: the 160 standard bytes plus the tail.
    pub const EXTENDED_CAPSET_SIZE: usize = super::CAPSET_SIZE + 16;
    /// `b"VNSG"` read as a little-endian `u32`.
    pub const TAIL_MAGIC: u32 = u32::from_le_bytes(*b"VNSG");
    /// The only tail version.
    pub const TAIL_VERSION: u32 = 1;

    /// The extended capset: `standard` followed by a tail announcing `granularity`.
    pub fn extend(
        standard: &[u8; super::CAPSET_SIZE],
        granularity: u64,
    ) -> [u8; EXTENDED_CAPSET_SIZE] {
        let mut out = [0u8; EXTENDED_CAPSET_SIZE];
        out[..super::CAPSET_SIZE].copy_from_slice(standard);
        out[160..164].copy_from_slice(&TAIL_MAGIC.to_le_bytes());
        out[164..168].copy_from_slice(&TAIL_VERSION.to_le_bytes());
        out[168..176].copy_from_slice(&granularity.to_le_bytes());
        out
    }

    /// The granularity a capset of `bytes` announces, if it carries a valid tail
    /// (magic, version 1, a power of two between 4 KiB and 1 GiB).
    pub fn granularity(bytes: &[u8]) -> Option<u64> {
        let tail = bytes.get(super::CAPSET_SIZE..EXTENDED_CAPSET_SIZE)?;
        let word = |r: std::ops::Range<usize>| -> Option<u32> {
            Some(u32::from_le_bytes(tail.get(r)?.try_into().ok()?))
        };
        if word(0..4)? != TAIL_MAGIC || word(4..8)? != TAIL_VERSION {
            return None;
        }
        let g = u64::from_le_bytes(tail.get(8..16)?.try_into().ok()?);
        (g.is_power_of_two() && (4096..=1 << 30).contains(&g)).then_some(g)
    }

    #[cfg(test)]
    mod tests {
        use super::super::VenusCapset;
        use super::*;

        #[test]
        fn tail_round_trips_and_rejects_garbage() {
            let std = [7u8; super::super::CAPSET_SIZE];
            let ext = extend(&std, 16384);
            assert_eq!(&ext[..160], &std[..]);
            assert_eq!(granularity(&ext), Some(16384));
            assert_eq!(granularity(&ext[..160]), None, "stock hosts send 160 bytes");
            assert_eq!(granularity(&ext[..170]), None, "a cut tail is ignored");
            let mut bad = ext;
            bad[160] ^= 1;
            assert_eq!(granularity(&bad), None, "wrong magic");
            let odd = extend(&std, 12288);
            assert_eq!(granularity(&odd), None, "not a power of two");
            let tiny = extend(&std, 2048);
            assert_eq!(granularity(&tiny), None, "below 4 KiB");
            // Mesa's reader ignores the tail.
            assert_eq!(
                VenusCapset::from_bytes(&ext).ok().map(|c| c.to_bytes()),
                VenusCapset::from_bytes(&std).ok().map(|c| c.to_bytes())
            );
        }
    }
}
