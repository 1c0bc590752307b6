//! The Venus wire format, shared by the guest ICD and the host translator.
//!
//! * [`encoder`] / [`decoder`]: the primitives (little-endian 4-byte units, u64 sizes and
//!   pointer presence, padded blobs and strings, pNext chains).
//! * [`generated`]: per-command and per-struct encoders and decoders produced by
//!   `venus-codegen` from vk.xml and `codegen/venus/*.toml`. Never edit by hand.
//! * [`capset`], [`ring`], [`vtest`]: hand-written, I/O-free layouts and framing.
//!
//! Nothing here performs I/O.

pub mod capset;
pub mod ring;
pub mod vtest;
