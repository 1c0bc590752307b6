//! How host-visible device memory is shared with the guest, chosen per device
//! from what its driver can do (overridable with `VENUS_HOST_MEMORY`):
//!
//! * `host-pointer`: shared memory (a memfd here, `shm_open` on macOS) mapped on
//!   the host and imported with `VK_EXT_external_memory_host`; the fd goes to the
//!   client or VMM. The only path MoltenVK offers, and the one lavapipe can serve
//!   to a vtest client.
//! * `fd`: the driver exports memory a client can map at offset 0 (dma-buf).
//!   Opaque fds are not enough: lavapipe's opaque-fd memory has a header page
//!   (its data starts at offset 4096), so handing it out as if its data began at
//!   0 would corrupt everything.
//! * `map-ptr`: the driver's own `vkMapMemory` pointer, for a VMM in this process
//!   (the QEMU front end); no fd exists.
//!
//! Every size and offset handed out is rounded to the sharing granularity:
//! max(host page size, the driver's `minImportedHostPointerAlignment`,
//! `VENUS_HOST_GRANULARITY`) — 16 KiB on Apple Silicon, settable here to
//! reproduce it on a 4 KiB machine.

/// The choice requested by configuration.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum MemoryChoice {
    /// Pick from the driver's capabilities.
    #[default]
    Auto,
    /// Force exported fds.
    Fd,
    /// Force shared memory + host-pointer import.
    HostPointer,
    /// Force the driver's mapping pointer (in-process VMMs).
    MapPtr,
}

impl MemoryChoice {
    /// Parses `auto|fd|host-pointer|map-ptr`.
    pub fn parse(s: &str) -> Option<MemoryChoice> {
        match s {
            "auto" | "" => Some(MemoryChoice::Auto),
            "fd" => Some(MemoryChoice::Fd),
            "host-pointer" => Some(MemoryChoice::HostPointer),
            "map-ptr" => Some(MemoryChoice::MapPtr),
            _ => None,
        }
    }
}

/// The strategy a device uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MemoryStrategy {
    /// Shared memory imported as a host pointer, sizes rounded to `granularity`.
    HostPointer {
        /// The sharing granularity in bytes.
        granularity: u64,
    },
    /// The driver's mapping, for an in-process VMM.
    MapPtr,
    /// Nothing can be shared (host-visible memory cannot become a blob).
    Unshared,
}

/// What the driver of a device offers.
#[derive(Clone, Copy, Debug)]
pub struct DriverMemoryCaps {
    /// `VK_EXT_external_memory_host` with `minImportedHostPointerAlignment`.
    pub host_pointer_alignment: Option<u64>,
    /// dma-buf export of host-visible memory (mappable at offset 0).
    pub dma_buf_export: bool,
}

/// Chooses the strategy for a device; returns it with the reason (logged once).
pub fn choose(
    requested: MemoryChoice,
    caps: DriverMemoryCaps,
    granularity: u64,
) -> (MemoryStrategy, String) {
    let host_pointer = |why: &str| {
        match caps.host_pointer_alignment {
        Some(a) => {
            let g = granularity.max(a).max(crate::shmem::page_size());
            (
                MemoryStrategy::HostPointer { granularity: g },
                format!("{why}: shared memory imported as host pointers, granularity {g} bytes"),
            )
        }
        None => (
            MemoryStrategy::MapPtr,
            format!("{why}, but the driver has no VK_EXT_external_memory_host: only in-process VMMs can map memory"),
        ),
    }
    };
    match requested {
        MemoryChoice::Auto => host_pointer("auto"),
        MemoryChoice::HostPointer => host_pointer("VENUS_HOST_MEMORY=host-pointer"),
        MemoryChoice::MapPtr => (
            MemoryStrategy::MapPtr,
            "VENUS_HOST_MEMORY=map-ptr: the driver's mapping pointer, for in-process VMMs".into(),
        ),
        MemoryChoice::Fd => {
            if caps.dma_buf_export {
                // Exported dma-bufs would be handed out directly; until that path
                // exists, use the equivalent shared-memory path.
                host_pointer("VENUS_HOST_MEMORY=fd (dma-buf export is not wired yet)")
            } else {
                host_pointer("VENUS_HOST_MEMORY=fd refused: the driver cannot export memory mappable at offset 0 (opaque fds carry a header page)")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn granularity_is_the_largest_constraint() {
        let caps = DriverMemoryCaps {
            host_pointer_alignment: Some(4096),
            dma_buf_export: false,
        };
        assert_eq!(
            choose(MemoryChoice::Auto, caps, 16384).0,
            MemoryStrategy::HostPointer { granularity: 16384 }
        );
        let caps = DriverMemoryCaps {
            host_pointer_alignment: Some(65536),
            dma_buf_export: false,
        };
        assert_eq!(
            choose(MemoryChoice::Auto, caps, 16384).0,
            MemoryStrategy::HostPointer { granularity: 65536 }
        );
        let none = DriverMemoryCaps {
            host_pointer_alignment: None,
            dma_buf_export: false,
        };
        assert_eq!(
            choose(MemoryChoice::Auto, none, 4096).0,
            MemoryStrategy::MapPtr
        );
        let (s, why) = choose(MemoryChoice::Fd, caps, 4096);
        assert!(matches!(s, MemoryStrategy::HostPointer { .. }) && why.contains("refused"));
        assert_eq!(MemoryChoice::parse("map-ptr"), Some(MemoryChoice::MapPtr));
        assert_eq!(MemoryChoice::parse("bogus"), None);
    }
}
