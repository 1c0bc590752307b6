//! The host translator's error type.

use thiserror::Error;

/// Everything that can go wrong on the host side.
#[derive(Debug, Error)]
pub enum Error {
    /// The host Vulkan library could not be loaded.
    #[error("cannot load the host Vulkan library: {0}")]
    Loader(String),
    /// A host Vulkan call failed where the failure cannot be forwarded to the guest.
    #[error("host Vulkan call {call} failed: {result:?}")]
    Vulkan {
        /// The Vulkan command.
        call: &'static str,
        /// What it returned.
        result: ash::vk::Result,
    },
    /// The guest sent something malformed or forbidden; its context is now fatal.
    #[error("guest context {ctx} is fatal: {reason}")]
    Fatal {
        /// The context id.
        ctx: u32,
        /// What the guest did.
        reason: String,
    },
    /// A resource id the front end named does not exist (or already exists).
    #[error("bad resource id {0}")]
    BadResource(u32),
    /// An OS call failed.
    #[error("{what}: {source}")]
    Os {
        /// The operation.
        what: &'static str,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The request is valid but not supported by this host.
    #[error("unsupported: {0}")]
    Unsupported(String),
    /// The context has used up one of its quotas (`crate::limits`).
    #[error("quota exceeded: {0}")]
    Quota(String),
}

impl Error {
    /// An OS error from `errno`.
    pub fn last_os(what: &'static str) -> Self {
        Error::Os {
            what,
            source: std::io::Error::last_os_error(),
        }
    }
}

/// Result with [`Error`].
pub type Result<T> = std::result::Result<T, Error>;
