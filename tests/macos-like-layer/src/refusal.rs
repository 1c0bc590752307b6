//! Counting and logging what the layer refused.
//!
//! Every interception that changes an answer or fails a call counts it here.
//! With `VENUS_MACOS_LIKE_LOG=<file>` set, each refusal also appends one line
//! to that file:
//!
//! ```text
//! VK_LAYER_VENUS_macos_like pid=1234 kind=host-pointer-import n=1 pointer=0x7f.. size=65536
//! ```
//!
//! `n` counts refusals of that kind in this process. Tests grep for `kind=`.

use std::fmt;
use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

/// The environment variable naming the log file.
pub const LOG_ENV: &str = "VENUS_MACOS_LIKE_LOG";

/// One kind of refusal.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// `vkEnumerateDeviceExtensionProperties` hid fd/dma-buf extensions.
    HiddenDeviceExtension,
    /// `vkCreateDevice` asked for a hidden extension.
    CreateDeviceExtension,
    /// External buffer properties asked about an fd/dma-buf handle type.
    ExternalBufferHandle,
    /// Image format properties asked about an fd/dma-buf handle type.
    ExternalImageHandle,
    /// External semaphore properties asked about an fd handle type.
    ExternalSemaphoreHandle,
    /// External fence properties asked about an fd handle type.
    ExternalFenceHandle,
    /// `vkAllocateMemory` imported a host pointer or size not 16 KiB aligned.
    HostPointerImport,
    /// `vkGetMemoryHostPointerPropertiesEXT` got a pointer not 16 KiB aligned.
    HostPointerProperties,
    /// `vkAllocateMemory` imported an fd.
    FdMemoryImport,
    /// `vkAllocateMemory` asked for fd/dma-buf exportable memory.
    FdMemoryExport,
    /// `vkMapMemory`/`vkMapMemory2*` with an offset not 16 KiB aligned.
    MapMemoryOffset,
}

impl Refusal {
    /// Every kind, in counter order.
    pub const ALL: [Refusal; 11] = [
        Refusal::HiddenDeviceExtension,
        Refusal::CreateDeviceExtension,
        Refusal::ExternalBufferHandle,
        Refusal::ExternalImageHandle,
        Refusal::ExternalSemaphoreHandle,
        Refusal::ExternalFenceHandle,
        Refusal::HostPointerImport,
        Refusal::HostPointerProperties,
        Refusal::FdMemoryImport,
        Refusal::FdMemoryExport,
        Refusal::MapMemoryOffset,
    ];

    /// The `kind=` word in the log.
    pub fn name(self) -> &'static str {
        match self {
            Refusal::HiddenDeviceExtension => "hidden-device-extension",
            Refusal::CreateDeviceExtension => "create-device-extension",
            Refusal::ExternalBufferHandle => "external-buffer-handle",
            Refusal::ExternalImageHandle => "external-image-handle",
            Refusal::ExternalSemaphoreHandle => "external-semaphore-handle",
            Refusal::ExternalFenceHandle => "external-fence-handle",
            Refusal::HostPointerImport => "host-pointer-import",
            Refusal::HostPointerProperties => "host-pointer-properties",
            Refusal::FdMemoryImport => "fd-memory-import",
            Refusal::FdMemoryExport => "fd-memory-export",
            Refusal::MapMemoryOffset => "map-memory-offset",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

static COUNTS: [AtomicU64; Refusal::ALL.len()] = [const { AtomicU64::new(0) }; Refusal::ALL.len()];

/// Counts a refusal and logs it if `VENUS_MACOS_LIKE_LOG` is set.
pub fn record(kind: Refusal, detail: fmt::Arguments<'_>) {
    let n = COUNTS[kind.index()].fetch_add(1, Ordering::Relaxed) + 1;
    static LOG_PATH: OnceLock<Option<std::ffi::OsString>> = OnceLock::new();
    let Some(path) = LOG_PATH.get_or_init(|| std::env::var_os(LOG_ENV)) else {
        return;
    };
    let line = format!(
        "VK_LAYER_VENUS_macos_like pid={} kind={} n={n} {detail}\n",
        std::process::id(),
        kind.name()
    );
    // One write of one short line to an O_APPEND file: lines from several
    // processes sharing the log do not interleave.
    if let Ok(mut file) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
    {
        let _ = file.write_all(line.as_bytes());
    }
}

/// Refusals of `kind` so far in this process.
pub fn count(kind: Refusal) -> u64 {
    COUNTS[kind.index()].load(Ordering::Relaxed)
}

/// All refusals so far in this process.
pub fn total() -> u64 {
    Refusal::ALL.iter().map(|&k| count(k)).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_distinct_and_indices_match() {
        for (i, k) in Refusal::ALL.iter().enumerate() {
            assert_eq!(k.index(), i);
            assert!(Refusal::ALL[i + 1..].iter().all(|o| o.name() != k.name()));
        }
    }

    #[test]
    fn counts() {
        let before = count(Refusal::MapMemoryOffset);
        record(Refusal::MapMemoryOffset, format_args!("offset=4096"));
        assert_eq!(count(Refusal::MapMemoryOffset), before + 1);
        assert!(total() >= 1);
    }
}
