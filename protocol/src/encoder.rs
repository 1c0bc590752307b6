//! The Venus encoder: little-endian 4-byte units written into a caller-provided buffer.
//!
//! Writing past the end of the buffer never happens: the encoder keeps counting so
//! that [`Encoder::position`] tells how many bytes the whole encoding needs, and
//! [`Encoder::finish`] reports the overflow. An encoder over an empty buffer is
//! therefore a sizer.

use core::ffi::c_char;

/// What the renderer understands, for gating pNext chain members.
#[derive(Clone, Debug)]
pub struct ProtocolInfo {
    /// Extension mask: extension number N is bit N%32 of word N/32.
    pub extensions: [u32; 32],
    /// The renderer's vk.xml version (`VK_MAKE_API_VERSION`).
    pub vk_xml_version: u32,
}

impl ProtocolInfo {
    /// Every extension of the protocol level and Vulkan 1.3.
    pub fn all() -> Self {
        ProtocolInfo {
            extensions: [u32::MAX; 32],
            vk_xml_version: crate::generated::VK_XML_VERSION,
        }
    }
    /// Whether extension `number` may be used.
    pub fn has_extension(&self, number: u32) -> bool {
        let w = (number / 32) as usize;
        self.extensions
            .get(w)
            .is_some_and(|m| m & (1 << (number % 32)) != 0)
    }
    /// Whether Vulkan 1.3 structs may be used.
    pub fn api_1_3(&self) -> bool {
        self.vk_xml_version >= ash::vk::API_VERSION_1_3
    }
}

impl Default for ProtocolInfo {
    fn default() -> Self {
        Self::all()
    }
}

/// Maps a dispatchable handle to its object id (the guest ICD stores ids in its objects).
pub type DispatchableId = fn(u64) -> u64;

fn raw_id(raw: u64) -> u64 {
    raw
}

/// Encoding failed: the buffer was too small.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("encoding needs {needed} bytes but the buffer holds {capacity}")]
pub struct EncodeError {
    /// Bytes the whole encoding needs.
    pub needed: usize,
    /// Bytes available.
    pub capacity: usize,
}

/// Writes Venus values into a byte buffer.
pub struct Encoder<'b> {
    buf: &'b mut [u8],
    pos: usize,
    info: &'b ProtocolInfo,
    dispatchable: DispatchableId,
}

static ALL: std::sync::OnceLock<ProtocolInfo> = std::sync::OnceLock::new();

impl<'b> Encoder<'b> {
    /// An encoder over `buf` with the given protocol info.
    pub fn new(buf: &'b mut [u8], info: &'b ProtocolInfo) -> Self {
        Encoder {
            buf,
            pos: 0,
            info,
            dispatchable: raw_id,
        }
    }
    /// An encoder with every extension enabled (host replies, tests).
    pub fn with_all(buf: &'b mut [u8]) -> Self {
        Encoder {
            buf,
            pos: 0,
            info: ALL.get_or_init(ProtocolInfo::all),
            dispatchable: raw_id,
        }
    }
    /// Sets how dispatchable handles become object ids (default: the raw value).
    pub fn set_dispatchable_id(&mut self, f: DispatchableId) {
        self.dispatchable = f;
    }
    /// The protocol info chain gating uses.
    pub fn info(&self) -> &ProtocolInfo {
        self.info
    }
    /// Bytes written (or needed) so far.
    pub fn position(&self) -> usize {
        self.pos
    }
    /// Whether the buffer was too small.
    pub fn overflowed(&self) -> bool {
        self.pos > self.buf.len()
    }
    /// The encoded length, or the size needed if the buffer was too small.
    pub fn finish(&self) -> Result<usize, EncodeError> {
        if self.overflowed() {
            Err(EncodeError {
                needed: self.pos,
                capacity: self.buf.len(),
            })
        } else {
            Ok(self.pos)
        }
    }
    #[inline]
    fn put(&mut self, bytes: &[u8]) {
        let end = self.pos.saturating_add(bytes.len());
        if let Some(dst) = self.buf.get_mut(self.pos..end) {
            dst.copy_from_slice(bytes);
        }
        self.pos = end;
    }
    #[inline]
    fn pad(&mut self, n: usize) {
        const Z: [u8; 4] = [0; 4];
        self.put(&Z[..(4 - n % 4) % 4]);
    }
    /// A u32.
    #[inline]
    pub fn u32(&mut self, v: u32) {
        self.put(&v.to_le_bytes());
    }
    /// An i32 (enums, sTypes, VkResult).
    #[inline]
    pub fn i32(&mut self, v: i32) {
        self.put(&v.to_le_bytes());
    }
    /// A float, bit for bit.
    #[inline]
    pub fn f32(&mut self, v: f32) {
        self.put(&v.to_bits().to_le_bytes());
    }
    /// A u64 (never 8-aligned on the wire).
    #[inline]
    pub fn u64(&mut self, v: u64) {
        self.put(&v.to_le_bytes());
    }
    /// An array size (u64).
    #[inline]
    pub fn size(&mut self, n: usize) {
        self.u64(n as u64);
    }
    /// Pointer presence: `u64 1` or `u64 0`.
    #[inline]
    pub fn present(&mut self, p: bool) {
        self.u64(p as u64);
    }
    /// A dispatchable handle, as its object id.
    #[inline]
    pub fn dispatchable(&mut self, raw: u64) {
        let id = (self.dispatchable)(raw);
        self.u64(id);
    }
    /// Bytes padded to 4.
    #[inline]
    pub fn bytes(&mut self, b: &[u8]) {
        self.put(b);
        self.pad(b.len());
    }
    /// A fixed `char`/`uint8_t` array (its size was written before).
    pub fn fixed_bytes<T: Copy + Into<i16>>(&mut self, b: &[T]) {
        for c in b {
            let v: i16 = (*c).into();
            self.put(&[v as u8]);
        }
        self.pad(b.len());
    }
    /// A NUL-terminated string: `u64 strlen+1`, bytes, NUL, pad. NULL is `u64 0`.
    ///
    /// # Safety
    /// `s` is NULL or a valid NUL-terminated string.
    pub unsafe fn string(&mut self, s: *const c_char) {
        if s.is_null() {
            self.size(0);
            return;
        }
        // SAFETY: non-null and NUL-terminated per the caller's contract.
        let b = unsafe { core::ffi::CStr::from_ptr(s) }.to_bytes_with_nul();
        self.size(b.len());
        self.bytes(b);
    }
}
