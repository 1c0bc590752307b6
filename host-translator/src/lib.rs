//! Host side of Venus: decodes the commands a guest sends and calls the host's
//! Vulkan driver through ash.
//!
//! The front ends (the `venus-vtest-server` binary, later the QEMU C ABI) use
//! only this surface:
//!
//! * [`Renderer`] — process-wide: loads the host Vulkan library, builds the capset;
//! * [`Context`] — one per guest context: [`Context::submit_cmd`] runs a command
//!   stream, [`Context::create_blob`] hands out shared memory as an fd,
//!   [`Context::submit_fence`] retires a fence on a timeline through a
//!   [`FenceSink`].
//!
//! A guest that sends malformed or forbidden input makes its own context fatal
//! ([`Error::Fatal`]); nothing else is affected.

mod blob_log;
mod buffer;
mod chain_edit;
mod command_buffer;
mod context;
mod descriptor_layout;
mod descriptor_set;
mod device;
mod device_memory;
pub mod error;
mod executor;
mod image;
mod instance;
mod limits;
pub mod memory_strategy;
mod object_table;
mod physical_device;
mod queue;
mod renderer;
mod ring;
mod shmem;
mod teardown;
mod timeline;
mod transport;
pub mod vtest_server;

pub use context::CancelProbe;
pub use error::{Error, Result};
pub use renderer::{Blob, Context, FenceSink, Renderer, RendererConfig};

/// Installs the `tracing` subscriber once, filtered by the `VENUS_LOG` environment
/// variable (EnvFilter syntax, e.g. `VENUS_LOG=debug` or `VENUS_LOG=venus=trace`).
pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("VENUS_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
}
