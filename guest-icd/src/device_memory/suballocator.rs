//! Carving small allocations out of large host allocations ("blocks"), as
//! gfxstream does: first fit over each block's sorted free list, neighbours merged
//! on free. Pure bookkeeping (no I/O), so it is unit-tested on its own.
//!
//! Every sub-allocation starts at a multiple of the pool's alignment and its
//! length is rounded up to it, so free ranges stay aligned and no two
//! sub-allocations share an alignment unit (which also keeps linear and optimal
//! resources of different sub-allocations `bufferImageGranularity` apart).

use std::collections::BTreeMap;

/// Where a sub-allocation lives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SubAllocation {
    /// Host id of the block's `VkDeviceMemory`.
    pub block: u64,
    /// Offset of the sub-allocation in the block.
    pub offset: u64,
    /// Bytes reserved in the block (the request rounded up to the alignment).
    pub len: u64,
}

/// One host allocation that sub-allocations are carved from.
#[derive(Debug)]
struct Block {
    memory_type: u32,
    size: u64,
    /// Free ranges (offset, len), sorted by offset, never adjacent.
    free: Vec<(u64, u64)>,
    /// Live sub-allocations.
    live: usize,
}

impl Block {
    fn is_empty(&self) -> bool {
        self.live == 0
    }

    /// First fit: the lowest free range holding `len` bytes.
    fn take(&mut self, len: u64) -> Option<u64> {
        let i = self.free.iter().position(|&(_, l)| l >= len)?;
        let (off, l) = self.free[i];
        if l == len {
            self.free.remove(i);
        } else {
            self.free[i] = (off + len, l - len);
        }
        self.live += 1;
        Some(off)
    }

    /// Returns `[offset, offset + len)`, merging it with its free neighbours.
    fn give_back(&mut self, offset: u64, len: u64) {
        let i = self.free.partition_point(|&(o, _)| o < offset);
        let mut start = offset;
        let mut end = offset + len;
        let mut lo = i;
        let mut hi = i;
        if i > 0 && self.free[i - 1].0 + self.free[i - 1].1 == offset {
            lo = i - 1;
            start = self.free[i - 1].0;
        }
        if i < self.free.len() && self.free[i].0 == end {
            end = self.free[i].0 + self.free[i].1;
            hi = i + 1;
        }
        self.free.splice(lo..hi, [(start, end - start)]);
        self.live = self.live.saturating_sub(1);
    }
}

/// The blocks of one device, all memory types.
#[derive(Debug)]
pub struct BlockPool {
    alignment: u64,
    block_size: u64,
    blocks: BTreeMap<u64, Block>,
}

impl BlockPool {
    /// A pool whose sub-allocations are aligned to `alignment` (a power of two)
    /// and whose blocks are at least `block_size` bytes.
    pub fn new(alignment: u64, block_size: u64) -> BlockPool {
        BlockPool {
            alignment: alignment.max(1).next_power_of_two(),
            block_size,
            blocks: BTreeMap::new(),
        }
    }

    /// Bytes reserved for a request of `size`.
    fn reserved(&self, size: u64) -> Option<u64> {
        size.max(1).checked_next_multiple_of(self.alignment)
    }

    /// The size of a new block able to hold a request of `size`: the pool's block
    /// size, or the rounded request if larger, as a multiple of `granularity`.
    pub fn block_size_for(&self, size: u64, granularity: u64) -> Option<u64> {
        self.reserved(size)?
            .max(self.block_size)
            .checked_next_multiple_of(granularity.max(1))
    }

    /// Carves `size` bytes of `memory_type` out of an existing block, if one has room.
    pub fn alloc(&mut self, memory_type: u32, size: u64) -> Option<SubAllocation> {
        let len = self.reserved(size)?;
        self.blocks
            .iter_mut()
            .filter(|(_, b)| b.memory_type == memory_type)
            .find_map(|(&id, b)| {
                b.take(len).map(|offset| SubAllocation {
                    block: id,
                    offset,
                    len,
                })
            })
    }

    /// Adds an (empty) block: host allocation `id` of `size` bytes of `memory_type`.
    pub fn add_block(&mut self, id: u64, memory_type: u32, size: u64) {
        let usable = size - size % self.alignment;
        self.blocks.insert(
            id,
            Block {
                memory_type,
                size,
                free: if usable > 0 {
                    vec![(0, usable)]
                } else {
                    vec![]
                },
                live: 0,
            },
        );
    }

    /// The size of block `id`.
    pub fn block_size(&self, id: u64) -> Option<u64> {
        self.blocks.get(&id).map(|b| b.size)
    }

    /// Frees `sub`. When its block becomes empty and another empty block of the
    /// same memory type is kept already, the block is dropped and its id returned
    /// for the caller to free on the host (one empty block per memory type stays,
    /// so an allocate/free loop does not allocate a block every time).
    pub fn free(&mut self, sub: &SubAllocation) -> Option<u64> {
        let b = self.blocks.get_mut(&sub.block)?;
        b.give_back(sub.offset, sub.len);
        if !b.is_empty() {
            return None;
        }
        let ty = b.memory_type;
        let other_empty = self
            .blocks
            .iter()
            .any(|(&id, o)| id != sub.block && o.memory_type == ty && o.is_empty());
        if other_empty {
            self.blocks.remove(&sub.block);
            Some(sub.block)
        } else {
            None
        }
    }

    /// Forgets every block, returning their ids (the device is going away).
    pub fn drain(&mut self) -> Vec<u64> {
        std::mem::take(&mut self.blocks).into_keys().collect()
    }

    /// Number of blocks held.
    pub fn block_count(&self) -> usize {
        self.blocks.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: u64 = 65536;
    const B: u64 = 16 << 20;

    #[test]
    fn aligned_first_fit() {
        let mut p = BlockPool::new(A, B);
        assert_eq!(p.alloc(0, 100), None, "no block yet");
        p.add_block(7, 0, B);
        let a = p.alloc(0, 100).expect("a");
        let b = p.alloc(0, A + 1).expect("b");
        let c = p.alloc(0, 4096).expect("c");
        assert_eq!((a.block, a.offset, a.len), (7, 0, A));
        assert_eq!((b.offset, b.len), (A, 2 * A));
        assert_eq!(c.offset, 3 * A);
        for s in [a, b, c] {
            assert_eq!(s.offset % A, 0);
        }
        // Another memory type never shares a block.
        assert_eq!(p.alloc(1, 100), None);
        // A block holds exactly B / A minimal sub-allocations.
        let mut q = BlockPool::new(A, B);
        q.add_block(1, 0, B);
        for _ in 0..B / A {
            assert!(q.alloc(0, 1).is_some());
        }
        assert_eq!(q.alloc(0, 1), None, "block full");
    }

    #[test]
    fn free_merges_neighbours_and_reuses_holes() {
        let mut p = BlockPool::new(A, B);
        p.add_block(1, 0, B);
        let a = p.alloc(0, A).expect("a");
        let b = p.alloc(0, A).expect("b");
        let c = p.alloc(0, A).expect("c");
        let _d = p.alloc(0, A).expect("d");
        assert_eq!(p.free(&b), None);
        // A one-unit hole is reused first (first fit)…
        let e = p.alloc(0, 10).expect("e");
        assert_eq!(e.offset, b.offset);
        assert_eq!(p.free(&e), None);
        // …and freeing a and c around it merges [0, 3A) into one range.
        assert_eq!(p.free(&a), None);
        assert_eq!(p.free(&c), None);
        let big = p.alloc(0, 3 * A).expect("merged");
        assert_eq!(big.offset, 0);
        let blk = &p.blocks[&1];
        assert_eq!(blk.free, vec![(4 * A, B - 4 * A)]);
    }

    #[test]
    fn whole_block_merges_back() {
        let mut p = BlockPool::new(A, B);
        p.add_block(1, 0, B);
        let subs: Vec<_> = (0..10)
            .map(|i| p.alloc(0, (i + 1) * 1000).expect("s"))
            .collect();
        // Free in an interleaved order.
        for s in subs.iter().step_by(2).chain(subs.iter().skip(1).step_by(2)) {
            assert_eq!(p.free(s), None, "the only block is kept");
        }
        assert_eq!(p.blocks[&1].free, vec![(0, B)]);
        assert!(p.blocks[&1].is_empty());
    }

    #[test]
    fn empty_block_released_when_another_is_spare() {
        let mut p = BlockPool::new(A, B);
        p.add_block(1, 0, B);
        let a = p.alloc(0, B).expect("fills block 1");
        assert_eq!(p.alloc(0, 1), None);
        p.add_block(2, 0, B);
        let b = p.alloc(0, 1).expect("b");
        assert_eq!(b.block, 2);
        // Block 1 empties while block 2 is in use: kept as the spare.
        assert_eq!(p.free(&a), None);
        // Block 2 empties while block 1 is spare: released.
        assert_eq!(p.free(&b), Some(2));
        assert_eq!(p.block_count(), 1);
        // A spare of another memory type does not count.
        p.add_block(3, 1, B);
        let c = p.alloc(1, 1).expect("c");
        assert_eq!(p.free(&c), None);
        assert_eq!(p.block_count(), 2);
        let mut ids = p.drain();
        ids.sort();
        assert_eq!(ids, vec![1, 3]);
    }

    #[test]
    fn block_sizes() {
        let p = BlockPool::new(A, B);
        assert_eq!(p.block_size_for(100, 16384), Some(B));
        assert_eq!(p.block_size_for(B + 1, 16384), Some(B + A));
        assert_eq!(p.block_size_for(u64::MAX, 16384), None);
        // Non-power-of-two alignment requests are rounded up.
        assert_eq!(BlockPool::new(3000, B).alignment, 4096);
    }
}
