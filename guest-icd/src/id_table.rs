//! A map from object ids to a 64-bit value whose reads and in-place updates take
//! no lock: the guest-side answers of `vkGetFenceStatus` and `vkGetEventStatus`
//! are a few nanoseconds natively, and a mutex plus a hashed lookup would cost
//! several times that.
//!
//! Ids are unique in the process and handed out by one counter, so the low bits of
//! live ids spread evenly: the table is direct-mapped (`id % SLOTS`). An id whose
//! entry is taken by another live id goes to a mutex-protected overflow map, which
//! lookups consult only while it is not empty. Inserts and removals (object
//! creation and destruction) take the lock; by Vulkan's rules they never race with
//! a use of the same object.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};

/// Entries of the direct-mapped part.
const SLOTS: usize = 4096;

struct Entry {
    /// The id stored here; 0 when free (0 is never an object id).
    key: AtomicU64,
    value: AtomicU64,
}

impl Entry {
    const fn new() -> Entry {
        Entry {
            key: AtomicU64::new(0),
            value: AtomicU64::new(0),
        }
    }
}

/// Id → value.
pub struct IdTable {
    entries: [Entry; SLOTS],
    overflow: Mutex<Option<HashMap<u64, u64>>>,
    overflow_len: AtomicUsize,
}

impl IdTable {
    /// An empty table (usable in a `static`).
    pub const fn new() -> IdTable {
        IdTable {
            entries: [const { Entry::new() }; SLOTS],
            overflow: Mutex::new(None),
            overflow_len: AtomicUsize::new(0),
        }
    }

    fn entry(&self, id: u64) -> &Entry {
        &self.entries[(id % SLOTS as u64) as usize]
    }

    fn overflow(&self) -> MutexGuard<'_, Option<HashMap<u64, u64>>> {
        self.overflow.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Sets `id` to `value` (inserting it if absent). Id 0 is ignored.
    pub fn insert(&self, id: u64, value: u64) {
        if id == 0 {
            return;
        }
        let mut o = self.overflow();
        let e = self.entry(id);
        let key = e.key.load(Ordering::Acquire);
        if key == id || key == 0 {
            e.value.store(value, Ordering::Release);
            e.key.store(id, Ordering::Release);
        } else {
            let m = o.get_or_insert_with(HashMap::new);
            m.insert(id, value);
            self.overflow_len.store(m.len(), Ordering::Release);
        }
    }

    /// The value of `id`, if present.
    pub fn get(&self, id: u64) -> Option<u64> {
        if id == 0 {
            return None;
        }
        let e = self.entry(id);
        if e.key.load(Ordering::Acquire) == id {
            let v = e.value.load(Ordering::Acquire);
            // Still ours (an insert for another id publishes its value first).
            if e.key.load(Ordering::Acquire) == id {
                return Some(v);
            }
        }
        if self.overflow_len.load(Ordering::Acquire) == 0 {
            return None;
        }
        self.overflow().as_ref()?.get(&id).copied()
    }

    /// Sets the value of `id` if it is present; whether it was.
    pub fn update(&self, id: u64, value: u64) -> bool {
        if id == 0 {
            return false;
        }
        let e = self.entry(id);
        if e.key.load(Ordering::Acquire) == id {
            e.value.store(value, Ordering::Release);
            return true;
        }
        if self.overflow_len.load(Ordering::Acquire) == 0 {
            return false;
        }
        match self.overflow().as_mut().and_then(|m| m.get_mut(&id)) {
            Some(v) => {
                *v = value;
                true
            }
            None => false,
        }
    }

    /// Removes `id`, returning its value if it was present.
    pub fn remove(&self, id: u64) -> Option<u64> {
        if id == 0 {
            return None;
        }
        let mut o = self.overflow();
        let e = self.entry(id);
        if e.key.load(Ordering::Acquire) == id {
            let v = e.value.load(Ordering::Acquire);
            e.key.store(0, Ordering::Release);
            return Some(v);
        }
        let m = o.as_mut()?;
        let v = m.remove(&id);
        self.overflow_len.store(m.len(), Ordering::Release);
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn direct_and_overflowing_ids() {
        let t = IdTable::new();
        let a = 7u64;
        let b = a + SLOTS as u64; // same entry as `a`
        let c = a + 2 * SLOTS as u64;
        t.insert(a, 1);
        t.insert(b, 2);
        t.insert(c, 3);
        assert_eq!((t.get(a), t.get(b), t.get(c)), (Some(1), Some(2), Some(3)));
        assert!(t.update(b, 20));
        assert!(t.update(a, 10));
        assert!(!t.update(a + 3 * SLOTS as u64, 5));
        assert_eq!((t.get(a), t.get(b)), (Some(10), Some(20)));
        // Removing the direct one frees its entry; the overflowing ones stay found.
        assert_eq!(t.remove(a), Some(10));
        assert_eq!(t.get(a), None);
        assert_eq!((t.get(b), t.get(c)), (Some(20), Some(3)));
        assert_eq!(t.remove(b), Some(20));
        assert_eq!(t.remove(b), None);
        assert_eq!(t.get(b), None);
        assert_eq!(t.get(c), Some(3));
        // A new id takes the free entry.
        let d = a + 4 * SLOTS as u64;
        t.insert(d, 4);
        assert_eq!((t.get(c), t.get(d)), (Some(3), Some(4)));
        assert_eq!(t.remove(c), Some(3));
        assert_eq!(t.overflow_len.load(Ordering::Relaxed), 0);
        assert_eq!(t.get(d), Some(4));
        // Id 0 is never stored.
        t.insert(0, 9);
        assert_eq!(t.get(0), None);
        assert!(!t.update(0, 1));
    }

    #[test]
    fn readers_see_only_whole_entries() {
        use std::sync::Arc;
        let t = Arc::new(IdTable::new());
        // The id being worked on; ids are never reused, as object ids.
        let current = Arc::new(AtomicU64::new(5));
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let reader = {
            let (t, current, stop) = (t.clone(), current.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut seen = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let cur = current.load(Ordering::Acquire);
                    for id in [cur, cur.saturating_sub(SLOTS as u64)] {
                        if let Some(v) = t.get(id) {
                            // Every value written for an id is id * 10 + a digit.
                            assert_eq!(v / 10, id, "id {id} read value {v}");
                            seen += 1;
                        }
                    }
                }
                seen
            })
        };
        for round in 0..20_000u64 {
            // All in one entry of the direct-mapped part.
            let id = 5 + round * SLOTS as u64;
            current.store(id, Ordering::Release);
            t.insert(id, id * 10 + round % 10);
            t.update(id, id * 10 + (round + 1) % 10);
            t.remove(id);
        }
        stop.store(true, Ordering::Relaxed);
        let seen = reader.join().expect("reader");
        eprintln!("reader saw {seen} entries");
    }
}
