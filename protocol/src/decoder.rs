//! The Venus decoder: reads a byte slice that may come from a hostile guest.
//!
//! It never panics, never reads past its input, and never allocates more than the
//! remaining input can justify (count × minimum wire size ≤ bytes left); output
//! buffers the host must provide come from a separate, bounded budget. The first
//! error is sticky: after it every read returns zero and nothing more is allocated.

use bumpalo::Bump;
use core::ffi::c_char;

use crate::DecodeError;

/// Default budget for host-side output buffers of one command stream (64 MiB).
pub const DEFAULT_OUTPUT_BUDGET: usize = 64 << 20;

/// Translates the guest's object ids into host handles while a command decodes.
///
/// The host installs one so that every input handle — parameters and handles
/// nested in structs — arrives as the host's own handle. Output handle slots (the
/// ids of objects being created) are never translated.
pub trait HandleResolver {
    /// The host handle of guest id `id` (nonzero) of type `ty`, or `None` if this
    /// context has no live object of that type with that id.
    fn resolve(&self, ty: ash::vk::ObjectType, id: u64) -> Option<u64>;
}

/// Reads Venus values from a byte slice.
pub struct Decoder<'d> {
    data: &'d [u8],
    pos: usize,
    fatal: Option<DecodeError>,
    output_budget: usize,
    resolver: Option<&'d dyn HandleResolver>,
}

impl<'d> Decoder<'d> {
    /// A decoder over `data`.
    pub fn new(data: &'d [u8]) -> Self {
        Decoder {
            data,
            pos: 0,
            fatal: None,
            output_budget: DEFAULT_OUTPUT_BUDGET,
            resolver: None,
        }
    }
    /// A decoder over `data` that translates input handles with `resolver`.
    pub fn with_resolver(data: &'d [u8], resolver: &'d dyn HandleResolver) -> Self {
        let mut d = Decoder::new(data);
        d.resolver = Some(resolver);
        d
    }
    /// An input handle of type `ty`: the raw id, or with a resolver installed the
    /// host handle (an unknown nonzero id is fatal; 0 stays `VK_NULL_HANDLE`).
    #[inline]
    pub fn handle(&mut self, ty: ash::vk::ObjectType) -> u64 {
        let id = self.u64();
        match self.resolver {
            Some(r) if id != 0 => match r.resolve(ty, id) {
                Some(h) => h,
                None => {
                    self.fail(DecodeError::UnknownObject {
                        ty: ty.as_raw(),
                        id,
                    });
                    0
                }
            },
            _ => id,
        }
    }
    /// A struct member handle the registry requires to be valid: as [`Self::handle`],
    /// and with a resolver installed (the host) `VK_NULL_HANDLE` is fatal too.
    #[inline]
    pub fn required_handle(&mut self, ty: ash::vk::ObjectType) -> u64 {
        let h = self.handle(ty);
        if h == 0 && self.resolver.is_some() && self.fatal.is_none() {
            self.fail(DecodeError::NullHandle { ty: ty.as_raw() });
        }
        h
    }
    /// Sets the budget for host-side output allocations.
    pub fn set_output_budget(&mut self, bytes: usize) {
        self.output_budget = bytes;
    }
    /// Bytes consumed.
    pub fn position(&self) -> usize {
        self.pos
    }
    /// Bytes left.
    pub fn remaining(&self) -> usize {
        self.data.len().saturating_sub(self.pos)
    }
    /// Whether a fatal error happened.
    pub fn is_fatal(&self) -> bool {
        self.fatal.is_some()
    }
    /// The first error, if any.
    pub fn error(&self) -> Option<DecodeError> {
        self.fatal
    }
    /// Marks the stream fatal (the first error is kept).
    pub fn fail(&mut self, e: DecodeError) {
        if self.fatal.is_none() {
            self.fatal = Some(e);
        }
        self.pos = self.data.len();
    }
    #[inline]
    fn take<const N: usize>(&mut self) -> [u8; N] {
        let mut out = [0u8; N];
        match self.data.get(self.pos..self.pos.saturating_add(N)) {
            Some(b) if self.fatal.is_none() => {
                out.copy_from_slice(b);
                self.pos += N;
            }
            _ => self.fail(DecodeError::Truncated),
        }
        out
    }
    /// A u32.
    #[inline]
    pub fn u32(&mut self) -> u32 {
        u32::from_le_bytes(self.take())
    }
    /// An i32.
    #[inline]
    pub fn i32(&mut self) -> i32 {
        i32::from_le_bytes(self.take())
    }
    /// A float.
    #[inline]
    pub fn f32(&mut self) -> f32 {
        f32::from_bits(self.u32())
    }
    /// A u64.
    #[inline]
    pub fn u64(&mut self) -> u64 {
        u64::from_le_bytes(self.take())
    }
    /// A size_t (u64 on the wire); values above `usize::MAX` are fatal.
    #[inline]
    pub fn usize(&mut self) -> usize {
        let v = self.u64();
        usize::try_from(v).unwrap_or_else(|_| {
            self.fail(DecodeError::BadSize);
            0
        })
    }
    /// The next u64 without consuming it (0 at the end).
    pub fn peek_u64(&self) -> u64 {
        match self.data.get(self.pos..self.pos.saturating_add(8)) {
            Some(b) if self.fatal.is_none() => {
                let mut a = [0u8; 8];
                a.copy_from_slice(b);
                u64::from_le_bytes(a)
            }
            _ => 0,
        }
    }
    /// Pointer presence; anything but 0 or 1 is fatal.
    #[inline]
    pub fn present(&mut self) -> bool {
        match self.u64() {
            0 => false,
            1 => true,
            _ => {
                self.fail(DecodeError::BadPresence);
                false
            }
        }
    }
    /// `pAllocator`: must be NULL.
    pub fn expect_null(&mut self) {
        if self.u64() != 0 {
            self.fail(DecodeError::BadPresence);
        }
    }
    /// Checks a struct's sType.
    #[inline]
    pub fn stype(&mut self, expected: i64) {
        let v = self.i32();
        if i64::from(v) != expected && !self.is_fatal() {
            self.fail(DecodeError::WrongStructType {
                expected: expected as i32,
                found: v,
            });
        }
    }
    /// Checks a reply's command type.
    pub fn reply_header(&mut self, number: u32) {
        let v = self.i32();
        if v as u32 != number && !self.is_fatal() {
            self.fail(DecodeError::WrongReply {
                expected: number,
                found: v,
            });
        }
    }
    /// An array size: nonzero must equal `expected`; zero means NULL, which a
    /// required array only allows when `expected` is 0.
    pub fn array_len(&mut self, expected: u64, required: bool) -> usize {
        let n = self.u64();
        if n != 0 && n != expected || n == 0 && required && expected != 0 {
            self.fail(DecodeError::ArraySizeMismatch { expected, found: n });
            return 0;
        }
        usize::try_from(n).unwrap_or_else(|_| {
            self.fail(DecodeError::BadSize);
            0
        })
    }
    /// A fixed array's size, which must be exactly `n`.
    pub fn fixed_size(&mut self, n: usize) {
        let v = self.u64();
        if v != n as u64 && !self.is_fatal() {
            self.fail(DecodeError::ArraySizeMismatch {
                expected: n as u64,
                found: v,
            });
        }
    }
    fn skip_pad(&mut self, n: usize) {
        let p = (4 - n % 4) % 4;
        if self.remaining() < p {
            self.fail(DecodeError::Truncated);
        } else {
            self.pos += p;
        }
    }
    /// Reads exactly `out.len()` bytes plus padding.
    pub fn read_bytes(&mut self, out: &mut [u8]) {
        match self.data.get(self.pos..self.pos.saturating_add(out.len())) {
            Some(b) if self.fatal.is_none() => {
                out.copy_from_slice(b);
                self.pos += out.len();
                self.skip_pad(out.len());
            }
            _ => self.fail(DecodeError::Truncated),
        }
    }
    /// A fixed `char`/`uint8_t` array (after its size).
    pub fn fixed_bytes<T: Copy + FromByte>(&mut self, out: &mut [T]) {
        match self.data.get(self.pos..self.pos.saturating_add(out.len())) {
            Some(b) if self.fatal.is_none() => {
                for (o, i) in out.iter_mut().zip(b) {
                    *o = T::from_byte(*i);
                }
                self.pos += out.len();
                self.skip_pad(out.len());
            }
            _ => self.fail(DecodeError::Truncated),
        }
    }
    /// Allocates `n` elements in the arena if the input can justify them.
    pub fn alloc_slice<'a, T: Copy>(
        &mut self,
        a: &'a Bump,
        n: usize,
        min_wire: usize,
        init: T,
    ) -> &'a mut [T] {
        let ok = n
            .checked_mul(min_wire.max(1))
            .is_some_and(|need| need <= self.remaining());
        if !ok || self.is_fatal() {
            self.fail(DecodeError::Truncated);
            return &mut [];
        }
        a.alloc_slice_fill_copy(n, init)
    }
    /// Allocates `n` host-side output elements from the output budget.
    pub fn alloc_output<'a, T: Copy>(&mut self, a: &'a Bump, n: usize, init: T) -> &'a mut [T] {
        let bytes = n.checked_mul(core::mem::size_of::<T>().max(1));
        match bytes {
            Some(b) if b <= self.output_budget && !self.is_fatal() => {
                self.output_budget -= b;
                a.alloc_slice_fill_copy(n, init)
            }
            _ => {
                self.fail(DecodeError::OutputTooLarge);
                &mut []
            }
        }
    }
    /// An input blob of `n` bytes (plus padding) copied into the arena; NULL if empty.
    pub fn blob(&mut self, a: &Bump, n: usize) -> *const core::ffi::c_void {
        if n == 0 {
            return core::ptr::null();
        }
        let dst = self.alloc_slice(a, n, 1, 0u8);
        if dst.is_empty() {
            return core::ptr::null();
        }
        self.read_bytes(dst);
        dst.as_ptr().cast()
    }
    /// A string: `u64 len` (NUL included) and the bytes; the last byte is forced to NUL.
    pub fn string(&mut self, a: &Bump) -> *const c_char {
        let n = self.usize();
        if n == 0 {
            return core::ptr::null();
        }
        let dst = self.alloc_slice(a, n, 1, 0u8);
        if dst.is_empty() {
            return core::ptr::null();
        }
        self.read_bytes(dst);
        if let Some(last) = dst.last_mut() {
            *last = 0;
        }
        dst.as_ptr().cast()
    }
}

/// Element types of fixed byte arrays (`char`, `uint8_t`).
pub trait FromByte {
    /// Converts one wire byte.
    fn from_byte(b: u8) -> Self;
}
impl FromByte for u8 {
    fn from_byte(b: u8) -> Self {
        b
    }
}
impl FromByte for i8 {
    fn from_byte(b: u8) -> Self {
        b as i8
    }
}
