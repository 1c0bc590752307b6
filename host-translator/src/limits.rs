//! Per-context limits on what a guest may ask for.
//!
//! A guest is untrusted: without bounds one context could make the host
//! allocate until the VMM dies. Each context has quotas on live objects, live
//! resources (blobs), shared memory, rings and reply sizes. Exceeding one is a
//! clear error: allocations answer `VK_ERROR_OUT_OF_DEVICE_MEMORY` (or the blob
//! request fails) with a warning naming the quota; object creation beyond the
//! object quota makes the context fatal (Venus creates never wait for a result,
//! so the guest could not see an error code anyway).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Largest blob a guest may create (4 GiB).
pub const MAX_BLOB_SIZE: u64 = 4 << 30;
/// Largest reply a single command may produce (64 MiB).
pub const MAX_REPLY_SIZE: usize = 64 << 20;
/// Most rings per context.
pub const MAX_RINGS: usize = 64;
/// Most live Vulkan objects per context, by default (`VENUS_CONTEXT_OBJECT_QUOTA`).
pub const MAX_OBJECTS: usize = 1 << 20;
/// Most live resources (blobs) per context.
pub const MAX_RESOURCES: usize = 1 << 16;
/// Default shared memory per context (blobs and host-visible device memory):
/// 16 GiB. `VENUS_CONTEXT_MEMORY_QUOTA` (bytes) overrides it.
pub const DEFAULT_MEMORY_QUOTA: u64 = 16 << 30;

/// A byte budget shared by everything one context allocates.
#[derive(Debug)]
pub struct MemoryQuota {
    used: AtomicU64,
    limit: u64,
}

/// Bytes charged to a [`MemoryQuota`], given back when dropped.
#[derive(Debug)]
pub struct Charge {
    quota: Arc<MemoryQuota>,
    bytes: u64,
}

impl MemoryQuota {
    /// A budget of `limit` bytes.
    pub fn new(limit: u64) -> Arc<MemoryQuota> {
        Arc::new(MemoryQuota {
            used: AtomicU64::new(0),
            limit,
        })
    }

    /// Charges `bytes`, or `None` if that would pass the limit.
    pub fn try_charge(self: &Arc<Self>, bytes: u64) -> Option<Charge> {
        let mut cur = self.used.load(Ordering::Relaxed);
        loop {
            let next = cur.checked_add(bytes).filter(|n| *n <= self.limit)?;
            match self
                .used
                .compare_exchange_weak(cur, next, Ordering::Relaxed, Ordering::Relaxed)
            {
                Ok(_) => {
                    return Some(Charge {
                        quota: Arc::clone(self),
                        bytes,
                    })
                }
                Err(now) => cur = now,
            }
        }
    }

    /// Bytes charged now.
    pub fn used(&self) -> u64 {
        self.used.load(Ordering::Relaxed)
    }

    /// The limit.
    pub fn limit(&self) -> u64 {
        self.limit
    }
}

impl Drop for Charge {
    fn drop(&mut self) {
        self.quota.used.fetch_sub(self.bytes, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charges_are_bounded_and_given_back() {
        let q = MemoryQuota::new(100);
        let a = q.try_charge(60).expect("fits");
        assert!(q.try_charge(41).is_none(), "over the limit");
        assert!(q.try_charge(u64::MAX).is_none(), "overflow is refused");
        let b = q.try_charge(40).expect("fits exactly");
        assert_eq!(q.used(), 100);
        drop(a);
        assert_eq!(q.used(), 40);
        drop(b);
        assert_eq!(q.used(), 0);
    }
}
