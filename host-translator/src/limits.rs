//! Per-context limits on what a guest may ask for.

/// Largest blob a guest may create (4 GiB).
pub const MAX_BLOB_SIZE: u64 = 4 << 30;
/// Largest reply a single command may produce (64 MiB).
pub const MAX_REPLY_SIZE: usize = 64 << 20;
/// Most rings per context.
pub const MAX_RINGS: usize = 64;
