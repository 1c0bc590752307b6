//! The guest end of Venus: a Vulkan ICD (`libvenus_icd.so`) that the Vulkan loader
//! loads, turning every Vulkan call into Venus commands sent through a
//! [`transport`] to a host translator.
//!
//! * [`entry`]: the loader interface (the only exported symbols) and name lookup;
//! * generated entry points (`venus_protocol::generated::guest_calls`) run through
//!   [`dispatch::Rt`]: a command goes to its device's ring — waiting for a reply
//!   only when the caller needs data back — or into its command buffer's stream;
//! * hand-written entry points, one module per object type, where the guest keeps
//!   state: [`instance`], [`device`], [`device_memory`], [`command_buffer`]; or
//!   clears members Vulkan ignores before encoding them: [`pipeline`], command
//!   buffer begin, descriptor writes ([`descriptor_set`] knows the bindings with
//!   immutable samplers).

mod buffer;
mod command_buffer;
mod connection;
mod descriptor_set;
mod descriptor_update_template;
mod device;
mod device_memory;
mod dispatch;
mod entry;
mod event;
mod fence;
mod id_table;
mod instance;
mod pipeline;
mod ring;
pub mod transport;

use ash::vk;

/// `VK_COMMAND_GENERATE_REPLY_BIT_EXT`.
pub const GENERATE_REPLY: u32 = 1;

/// What an entry point returns when a panic is caught inside it.
pub trait OnPanic {
    /// The value reported instead of unwinding into the application.
    fn on_panic() -> Self;
}

impl OnPanic for vk::Result {
    fn on_panic() -> Self {
        vk::Result::ERROR_UNKNOWN
    }
}

impl OnPanic for u64 {
    fn on_panic() -> Self {
        0
    }
}

impl OnPanic for () {
    fn on_panic() -> Self {}
}

impl OnPanic for vk::PFN_vkVoidFunction {
    fn on_panic() -> Self {
        None
    }
}

/// Runs an entry point body; a panic becomes [`OnPanic::on_panic`] (never unwinds
/// into C).
pub fn guard<T: OnPanic>(f: impl FnOnce() -> T) -> T {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(v) => v,
        Err(_) => {
            tracing::error!("panic inside a Vulkan entry point");
            T::on_panic()
        }
    }
}

/// Answers a two-call enumeration from `list`.
///
/// # Safety
/// `count` is valid; `out`, if non-null, holds `*count` elements.
pub unsafe fn answer<T: Copy>(list: &[T], count: *mut u32, out: *mut T) -> vk::Result {
    // SAFETY: caller contract.
    let Some(c) = (unsafe { count.as_mut() }) else {
        return vk::Result::ERROR_INITIALIZATION_FAILED;
    };
    if out.is_null() {
        *c = list.len() as u32;
        return vk::Result::SUCCESS;
    }
    let n = (*c as usize).min(list.len());
    for (i, v) in list.iter().take(n).enumerate() {
        // SAFETY: `out` holds `*count` ≥ n elements.
        unsafe { *out.add(i) = *v };
    }
    *c = n as u32;
    if n < list.len() {
        vk::Result::INCOMPLETE
    } else {
        vk::Result::SUCCESS
    }
}

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
