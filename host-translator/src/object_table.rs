//! Per-context object tables: guest ids to host handles, by object type.

use std::collections::HashMap;

use ash::vk;
use venus_protocol::HandleResolver;

/// One live object.
#[derive(Clone, Copy, Debug)]
pub struct Entry {
    /// The host handle.
    pub host: u64,
    /// The host `VkDevice` it belongs to (0 for instance-level objects).
    pub device: u64,
    /// The host pool (command or descriptor pool) it was allocated from, or 0.
    pub pool: u64,
}

/// Why an object could not be added.
#[derive(Debug, PartialEq, Eq)]
pub enum InsertError {
    /// Id 0 is never valid.
    ZeroId,
    /// The id is already in use for this type.
    InUse,
}

/// The objects of one context.
#[derive(Default)]
pub struct ObjectTable {
    by_guest: HashMap<(i32, u64), Entry>,
    by_host: HashMap<(i32, u64), u64>,
}

impl ObjectTable {
    /// Adds guest id `id` of type `ty` for `entry`.
    pub fn insert(&mut self, ty: vk::ObjectType, id: u64, entry: Entry) -> Result<(), InsertError> {
        if id == 0 {
            return Err(InsertError::ZeroId);
        }
        let key = (ty.as_raw(), id);
        if self.by_guest.contains_key(&key) {
            return Err(InsertError::InUse);
        }
        self.by_guest.insert(key, entry);
        self.by_host.insert((ty.as_raw(), entry.host), id);
        Ok(())
    }

    /// How many objects are live.
    pub fn len(&self) -> usize {
        self.by_guest.len()
    }

    /// Whether guest id `id` of type `ty` is live.
    pub fn contains(&self, ty: vk::ObjectType, id: u64) -> bool {
        self.by_guest.contains_key(&(ty.as_raw(), id))
    }

    /// The entry of guest id `id`.
    pub fn get(&self, ty: vk::ObjectType, id: u64) -> Option<&Entry> {
        self.by_guest.get(&(ty.as_raw(), id))
    }

    /// The guest id of host handle `host`.
    pub fn guest_of(&self, ty: vk::ObjectType, host: u64) -> Option<u64> {
        self.by_host.get(&(ty.as_raw(), host)).copied()
    }

    /// Removes the object with host handle `host`; returns its guest id.
    pub fn remove_host(&mut self, ty: vk::ObjectType, host: u64) -> Option<u64> {
        let id = self.by_host.remove(&(ty.as_raw(), host))?;
        self.by_guest.remove(&(ty.as_raw(), id));
        Some(id)
    }

    /// Removes every object matching `pred`; returns (type, entry) of each.
    pub fn remove_where(
        &mut self,
        pred: impl Fn(vk::ObjectType, &Entry) -> bool,
    ) -> Vec<(vk::ObjectType, Entry)> {
        let keys: Vec<(i32, u64)> = self
            .by_guest
            .iter()
            .filter(|((t, _), e)| pred(vk::ObjectType::from_raw(*t), e))
            .map(|(k, _)| *k)
            .collect();
        let mut out = Vec::with_capacity(keys.len());
        for k in keys {
            if let Some(e) = self.by_guest.remove(&k) {
                self.by_host.remove(&(k.0, e.host));
                out.push((vk::ObjectType::from_raw(k.0), e));
            }
        }
        out
    }
}

impl HandleResolver for ObjectTable {
    fn resolve(&self, ty: vk::ObjectType, id: u64) -> Option<u64> {
        self.by_guest.get(&(ty.as_raw(), id)).map(|e| e.host)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_typed_and_unique() {
        let mut t = ObjectTable::default();
        let e = Entry {
            host: 0x1000,
            device: 0,
            pool: 0,
        };
        assert_eq!(
            t.insert(vk::ObjectType::BUFFER, 0, e),
            Err(InsertError::ZeroId)
        );
        t.insert(vk::ObjectType::BUFFER, 7, e).unwrap();
        assert_eq!(
            t.insert(vk::ObjectType::BUFFER, 7, e),
            Err(InsertError::InUse)
        );
        assert_eq!(t.resolve(vk::ObjectType::BUFFER, 7), Some(0x1000));
        // Same id, wrong type: unknown.
        assert_eq!(t.resolve(vk::ObjectType::IMAGE, 7), None);
        assert_eq!(t.remove_host(vk::ObjectType::BUFFER, 0x1000), Some(7));
        assert_eq!(t.resolve(vk::ObjectType::BUFFER, 7), None);
        assert_eq!(t.guest_of(vk::ObjectType::BUFFER, 0x1000), None);
    }
}
