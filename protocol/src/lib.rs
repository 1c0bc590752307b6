//! The Venus wire format, shared by the guest ICD and the host translator.
//!
//! * [`encoder`] / [`decoder`]: the primitives (little-endian 4-byte units, u64 sizes and
//!   pointer presence, padded blobs and strings) and [`chain`] for pNext chains.
//! * [`generated`]: per-command and per-struct encoders and decoders produced by
//!   `venus-codegen` from vk.xml and `codegen/venus/*.toml`. Never edit by hand.
//! * [`capset`], [`ring`], [`vtest`]: hand-written, I/O-free layouts and framing.
//!
//! Nothing here performs I/O.

pub mod capset;
pub mod chain;
pub mod decoder;
pub mod encoder;
pub mod generated;
pub mod ring;
#[cfg(feature = "synth")]
pub mod synth;
pub mod vtest;

pub use decoder::{Decoder, HandleResolver};
pub use encoder::{EncodeError, Encoder, ProtocolInfo};
pub use generated::mesa_types as mesa;

/// Why a stream could not be decoded. The first error makes the stream fatal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The input ended inside a value, or an array claims more than the input holds.
    #[error("truncated input")]
    Truncated,
    /// A size does not fit this machine's address space.
    #[error("size out of range")]
    BadSize,
    /// Pointer presence other than 0 or 1, or a non-NULL pAllocator.
    #[error("bad pointer presence")]
    BadPresence,
    /// A struct's sType is not the one its position requires.
    #[error("wrong sType: expected {expected}, found {found}")]
    WrongStructType {
        /// Required sType.
        expected: i32,
        /// sType on the wire.
        found: i32,
    },
    /// A chain member that the parent does not accept, or a duplicate.
    #[error("sType {0} not allowed here")]
    UnknownStructType(i32),
    /// An array size that does not match its count member.
    #[error("array size {found} does not match count {expected}")]
    ArraySizeMismatch {
        /// The count member.
        expected: u64,
        /// The size on the wire.
        found: u64,
    },
    /// A union tag other than the one Mesa sends.
    #[error("unsupported union tag")]
    BadUnionTag,
    /// A handle id this context has no live object of that type for.
    #[error("unknown object id {id} of type {ty}")]
    UnknownObject {
        /// The `VkObjectType` expected.
        ty: i32,
        /// The guest's id.
        id: u64,
    },
    /// `VK_NULL_HANDLE` in a struct member the registry requires to be a valid
    /// handle (neither `optional` nor `noautovalidity`); checked only on the host,
    /// where drivers may dereference it.
    #[error("null handle of type {ty} where a valid one is required")]
    NullHandle {
        /// The `VkObjectType` expected.
        ty: i32,
    },
    /// A command type with no wire form.
    #[error("unknown command type {0}")]
    UnknownCommand(i32),
    /// A reply for another command.
    #[error("reply type {found} for command {expected}")]
    WrongReply {
        /// Expected command type.
        expected: u32,
        /// Type in the reply.
        found: i32,
    },
    /// A reply array larger than the caller's buffer.
    #[error("reply larger than the caller's buffer")]
    ReplyOverflow,
    /// Output buffers beyond the decoder's budget.
    #[error("output buffers exceed the budget")]
    OutputTooLarge,
}

/// `p[..n]`, or an empty slice for NULL.
///
/// # Safety
/// A non-NULL `p` must be valid for `n` reads for `'x`.
pub unsafe fn slice<'x, T>(p: *const T, n: usize) -> &'x [T] {
    if p.is_null() || n == 0 {
        &[]
    } else {
        // SAFETY: per the caller's contract.
        unsafe { core::slice::from_raw_parts(p, n) }
    }
}

/// `p[..n]` mutably, or an empty slice for NULL.
///
/// # Safety
/// A non-NULL `p` must be valid for `n` writes for `'x`, with no other reference.
pub unsafe fn slice_mut<'x, T>(p: *mut T, n: usize) -> &'x mut [T] {
    if p.is_null() || n == 0 {
        &mut []
    } else {
        // SAFETY: per the caller's contract.
        unsafe { core::slice::from_raw_parts_mut(p, n) }
    }
}
