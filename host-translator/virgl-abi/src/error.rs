//! Why an ABI call is refused, and the negative errno it returns.

use std::ffi::c_int;
use std::fmt;

/// Why an ABI call was refused. Every variant maps to one errno.
#[derive(Debug)]
pub enum AbiError {
    /// A pointer, flag, size or range the caller passed is invalid (`EINVAL`).
    Invalid(String),
    /// The id names no context or resource (`ENOENT`).
    Unknown(String),
    /// A size or count is beyond what this library serves, or memory ran out (`ENOMEM`).
    TooLarge(String),
    /// `virgl_renderer_init` again with other arguments while in use (`EBUSY`).
    Busy,
    /// A command buffer that is NULL or not 4-byte aligned (`EFAULT`).
    Fault(String),
    /// The call needs `virgl_renderer_init` first (`EINVAL`).
    Uninitialized,
    /// The host Vulkan library could not be loaded (`ENODEV`).
    NoRenderer(String),
    /// The host translator refused the request; for a Venus context that is now
    /// fatal, or another core failure (`EIO`).
    Core(venus_host::Error),
    /// A panic was caught at the C boundary (`EIO`).
    Panic,
}

impl AbiError {
    /// The (positive) errno value.
    pub fn errno(&self) -> c_int {
        match self {
            AbiError::Invalid(_) | AbiError::Uninitialized => libc::EINVAL,
            AbiError::Unknown(_) => libc::ENOENT,
            AbiError::TooLarge(_) => libc::ENOMEM,
            AbiError::Busy => libc::EBUSY,
            AbiError::Fault(_) => libc::EFAULT,
            AbiError::NoRenderer(_) => libc::ENODEV,
            AbiError::Core(_) | AbiError::Panic => libc::EIO,
        }
    }

    /// Logs the refusal of `call`: guest-caused refusals at debug level (a hostile
    /// guest must not be able to flood the VMM's log), host failures as warnings.
    pub fn log(&self, call: &str) {
        match self {
            AbiError::Invalid(_)
            | AbiError::Unknown(_)
            | AbiError::TooLarge(_)
            | AbiError::Fault(_)
            | AbiError::Uninitialized => tracing::debug!(call, "refused: {self}"),
            AbiError::Core(
                venus_host::Error::Fatal { .. }
                | venus_host::Error::Unsupported(_)
                | venus_host::Error::BadResource(_),
            ) => tracing::debug!(call, "refused: {self}"),
            _ => tracing::warn!(call, "failed: {self}"),
        }
    }
}

impl fmt::Display for AbiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AbiError::Invalid(s) => write!(f, "invalid argument: {s}"),
            AbiError::Unknown(s) => write!(f, "unknown id: {s}"),
            AbiError::TooLarge(s) => write!(f, "too large: {s}"),
            AbiError::Busy => write!(f, "already initialized with other arguments"),
            AbiError::Fault(s) => write!(f, "bad buffer: {s}"),
            AbiError::Uninitialized => write!(f, "virgl_renderer_init has not been called"),
            AbiError::NoRenderer(s) => write!(f, "no host renderer: {s}"),
            AbiError::Core(e) => write!(f, "{e}"),
            AbiError::Panic => write!(f, "internal error (panic)"),
        }
    }
}

impl From<venus_host::Error> for AbiError {
    fn from(e: venus_host::Error) -> Self {
        AbiError::Core(e)
    }
}

/// Result with [`AbiError`].
pub type AbiResult<T> = Result<T, AbiError>;

/// Builds an [`AbiError::Invalid`] from format arguments.
macro_rules! invalid {
    ($($t:tt)*) => { $crate::error::AbiError::Invalid(format!($($t)*)) };
}
pub(crate) use invalid;
