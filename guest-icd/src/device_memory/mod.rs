//! Device memory. An allocation either has its own host `VkDeviceMemory` (same id
//! on both ends; allocated with a round trip so failures are reported) or, when it
//! is small and host-visible, is carved out of a large host allocation, a
//! "block" ([`suballocator`]), as gfxstream does: no round trip unless a new block
//! is needed, and one blob (one placement in a VM's host-visible window) per
//! block instead of one per allocation. The guest's handle is then an id the host
//! never sees: every command naming memory is rewritten to the block's id with
//! the sub-allocation's offset added ([`binds`]). Host-visible memory is mapped
//! through a blob named by the host memory's id.
//!
//! `VENUS_SUBALLOC=0` turns sub-allocation off.

mod binds;
mod suballocator;

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

use ash::vk;
use ash::vk::Handle;
use venus_protocol::generated as g;

pub use binds::{
    bind_buffer_memory, bind_buffer_memory2, bind_image_memory, bind_image_memory2,
    get_device_memory_commitment, get_device_memory_opaque_capture_address, queue_bind_sparse,
};
use suballocator::{BlockPool, SubAllocation};

use crate::connection::{round_up, Connection};
use crate::device::device;
use crate::guard;
use crate::transport::{MappedBlob, Transport};

/// Allocations up to this size are sub-allocated.
const SUBALLOC_MAX: u64 = 1 << 20;
/// Size of a block.
const BLOCK_SIZE: u64 = 16 << 20;
/// Minimum alignment of a sub-allocation. The guest binds resources at offsets
/// relative to its own memory object, aligned to the resource's requirement, which
/// the allocation does not know; a block offset that is a multiple of any
/// requirement keeps every such bind aligned on the host. 64 KiB is the largest
/// alignment drivers report in practice (sparse pages; lavapipe reports 64 bytes
/// for buffers and images, MoltenVK at most 16 KiB), and covers
/// `nonCoherentAtomSize`, `minMemoryMapAlignment` and `bufferImageGranularity`.
const SUBALLOC_ALIGNMENT: u64 = 64 << 10;

/// Guest-side state of a `VkDeviceMemory`.
pub enum Memory {
    /// Its own host allocation (same id), mapped through its own blob.
    Own {
        /// Size asked for.
        size: u64,
        /// The blob, once mapped.
        blob: Option<MappedBlob>,
    },
    /// Carved out of a block.
    Sub {
        /// Size asked for.
        size: u64,
        /// Where in which block.
        at: SubAllocation,
    },
}

/// What a device's memory objects need: the objects, the blocks and their blobs.
pub struct MemoryState {
    /// Memory types sub-allocated from (HOST_VISIBLE), as a bit mask; 0 when off.
    suballoc_types: u32,
    inner: Mutex<Inner>,
}

struct Inner {
    memories: HashMap<u64, Memory>,
    pool: BlockPool,
    /// Blobs of blocks (`None` until one of their sub-allocations is mapped).
    block_blobs: HashMap<u64, Option<MappedBlob>>,
}

impl MemoryState {
    /// The state for a new device on `pd` (asks the host for the memory types and
    /// limits; `VENUS_SUBALLOC=0` turns sub-allocation off).
    pub fn new(pd: vk::PhysicalDevice) -> MemoryState {
        let enabled = std::env::var("VENUS_SUBALLOC").map_or(true, |v| v != "0");
        let mut types = 0u32;
        let mut alignment = SUBALLOC_ALIGNMENT;
        if enabled {
            let mut mp = vk::PhysicalDeviceMemoryProperties::default();
            // SAFETY: `pd` is the application's physical device of ours; valid output.
            unsafe {
                g::guest_calls::vk_get_physical_device_memory_properties::<crate::dispatch::Rt>(
                    pd, &mut mp,
                )
            };
            let n = (mp.memory_type_count as usize).min(vk::MAX_MEMORY_TYPES);
            for (i, t) in mp.memory_types[..n].iter().enumerate() {
                if t.property_flags
                    .contains(vk::MemoryPropertyFlags::HOST_VISIBLE)
                    && !t
                        .property_flags
                        .contains(vk::MemoryPropertyFlags::PROTECTED)
                {
                    types |= 1 << i;
                }
            }
            let mut p = vk::PhysicalDeviceProperties::default();
            // SAFETY: as above.
            unsafe { crate::instance::get_physical_device_properties(pd, &mut p) };
            let l = &p.limits;
            alignment = alignment
                .max(l.non_coherent_atom_size)
                .max(l.buffer_image_granularity)
                .max(l.min_memory_map_alignment as u64)
                .max(256);
        }
        tracing::debug!(types, alignment, "memory sub-allocation");
        MemoryState {
            suballoc_types: types,
            inner: Mutex::new(Inner {
                memories: HashMap::new(),
                pool: BlockPool::new(alignment, BLOCK_SIZE),
                block_blobs: HashMap::new(),
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The host memory and offset behind guest memory `memory` (itself, 0 when it
    /// has its own allocation or is unknown).
    pub fn resolve(&self, memory: vk::DeviceMemory) -> (vk::DeviceMemory, u64) {
        match self.lock().memories.get(&memory.as_raw()) {
            Some(Memory::Sub { at, .. }) => (vk::DeviceMemory::from_raw(at.block), at.offset),
            _ => (memory, 0),
        }
    }

    /// The size of `memory` if it is a sub-allocation.
    pub fn sub_size(&self, memory: vk::DeviceMemory) -> Option<u64> {
        match self.lock().memories.get(&memory.as_raw()) {
            Some(Memory::Sub { size, .. }) => Some(*size),
            _ => None,
        }
    }

    /// Whether some memory is sub-allocated (binds need rewriting).
    pub fn any_sub(&self) -> bool {
        self.lock().pool.block_count() > 0
    }

    /// Whether `info` may be carved out of a block: a HOST_VISIBLE type, at most
    /// [`SUBALLOC_MAX`] bytes, and nothing chained but a `VkMemoryAllocateFlagsInfo`
    /// without device-address flags (dedicated, exported, imported, prioritized or
    /// capture-replay allocations keep their own host allocation).
    ///
    /// # Safety
    /// `info`'s chain is valid per the Vulkan rules.
    unsafe fn suballocatable(&self, info: &vk::MemoryAllocateInfo<'_>) -> bool {
        if info.memory_type_index >= 32
            || self.suballoc_types & (1 << info.memory_type_index) == 0
            || info.allocation_size == 0
            || info.allocation_size > SUBALLOC_MAX
        {
            return false;
        }
        let mut p = info.p_next.cast::<vk::BaseInStructure<'_>>();
        // SAFETY: caller contract: a valid chain.
        while let Some(s) = unsafe { p.as_ref() } {
            if s.s_type != vk::StructureType::MEMORY_ALLOCATE_FLAGS_INFO {
                return false;
            }
            // SAFETY: the sType says what it is.
            let f = unsafe { &*(p.cast::<vk::MemoryAllocateFlagsInfo<'_>>()) };
            if f.flags.intersects(
                vk::MemoryAllocateFlags::DEVICE_ADDRESS
                    | vk::MemoryAllocateFlags::DEVICE_ADDRESS_CAPTURE_REPLAY,
            ) {
                return false;
            }
            p = s.p_next;
        }
        true
    }

    /// Carves `info` out of a block (allocating a new block on the host when none
    /// has room). `None`: the new block could not be allocated.
    fn suballocate(
        &self,
        conn: &Connection,
        device: vk::Device,
        info: &vk::MemoryAllocateInfo<'_>,
    ) -> Option<u64> {
        let (ty, size) = (info.memory_type_index, info.allocation_size);
        let id = crate::dispatch::next_id();
        {
            let mut inner = self.lock();
            if let Some(at) = inner.pool.alloc(ty, size) {
                inner.memories.insert(id, Memory::Sub { size, at });
                return Some(id);
            }
        }
        // A new block, allocated without holding the lock (a round trip).
        let block_size = self.lock().pool.block_size_for(size, conn.granularity)?;
        let block_info = vk::MemoryAllocateInfo::default()
            .allocation_size(block_size)
            .memory_type_index(ty);
        let block = match host_allocate(conn, device, &block_info) {
            Ok(b) => b,
            Err(e) => {
                tracing::debug!("cannot allocate a {block_size}-byte block: {e}");
                return None;
            }
        };
        let mut inner = self.lock();
        inner.pool.add_block(block, ty, block_size);
        let at = inner.pool.alloc(ty, size)?;
        inner.memories.insert(id, Memory::Sub { size, at });
        Some(id)
    }

    /// Frees every block on the host and releases their blobs: called before the
    /// device is destroyed (the application has freed its memory, so what is left
    /// are the spare blocks, which the host must not see outlive the device).
    pub fn free_blocks(&self, conn: &Connection, device: vk::Device) {
        let mut inner = self.lock();
        let blocks = inner.pool.drain();
        let blobs: Vec<MappedBlob> = inner.block_blobs.drain().filter_map(|(_, b)| b).collect();
        inner
            .memories
            .retain(|_, m| matches!(m, Memory::Own { .. }));
        drop(inner);
        for b in blocks {
            host_free(conn, device, b);
        }
        for b in blobs {
            conn.transport.destroy_blob(b);
        }
    }

    /// Releases the blobs of memory with its own host allocation and forgets it
    /// (the device has been destroyed, which freed that memory on the host).
    pub fn release_all(&self, transport: &dyn Transport) {
        for (_, m) in self.lock().memories.drain() {
            if let Memory::Own { blob: Some(b), .. } = m {
                transport.destroy_blob(b);
            }
        }
    }
}

/// Allocates `info` on the host with a fresh id (a round trip).
fn host_allocate(
    conn: &Connection,
    device: vk::Device,
    info: *const vk::MemoryAllocateInfo<'_>,
) -> Result<u64, vk::Result> {
    let mut slot = vk::DeviceMemory::from_raw(crate::dispatch::next_id());
    let slot_p: *mut vk::DeviceMemory = &mut slot;
    let mut ret = vk::Result::ERROR_DEVICE_LOST;
    conn.call(
        // SAFETY: `info` is valid (the application's, or ours).
        &mut |e, f| unsafe {
            g::encode_vk_allocate_memory(e, f, device, info, std::ptr::null(), slot_p)
        },
        &mut |d| {
            // SAFETY: as above.
            ret = unsafe {
                g::decode_reply_vk_allocate_memory(d, device, info, std::ptr::null(), slot_p)
            }
        },
    )?;
    if ret != vk::Result::SUCCESS {
        return Err(ret);
    }
    Ok(slot.as_raw())
}

/// Frees host memory `memory` (not waited on).
fn host_free(conn: &Connection, device: vk::Device, memory: u64) {
    let memory = vk::DeviceMemory::from_raw(memory);
    let _ = conn.send(&mut |e, f| {
        // SAFETY: plain handles.
        unsafe { g::encode_vk_free_memory(e, f, device, memory, std::ptr::null()) }
    });
}

pub unsafe extern "system" fn allocate_memory(
    device: vk::Device,
    info: *const vk::MemoryAllocateInfo<'_>,
    _alloc: *const vk::AllocationCallbacks<'_>,
    out: *mut vk::DeviceMemory,
) -> vk::Result {
    guard(|| {
        // SAFETY: the application passes a device of ours and valid pointers.
        let (Some(dev), Some(i), Some(out)) = (
            unsafe { self::device(device) },
            unsafe { info.as_ref() },
            unsafe { out.as_mut() },
        ) else {
            return vk::Result::ERROR_INITIALIZATION_FAILED;
        };
        let conn = &*dev.hdr.conn;
        // SAFETY: the application's chain is valid per the Vulkan rules.
        if unsafe { dev.memory.suballocatable(i) } {
            if let Some(id) = dev.memory.suballocate(conn, device, i) {
                *out = vk::DeviceMemory::from_raw(id);
                return vk::Result::SUCCESS;
            }
        }
        let id = match host_allocate(conn, device, info) {
            Ok(id) => id,
            Err(e) => return e,
        };
        dev.memory.lock().memories.insert(
            id,
            Memory::Own {
                size: i.allocation_size,
                blob: None,
            },
        );
        *out = vk::DeviceMemory::from_raw(id);
        vk::Result::SUCCESS
    })
}

pub unsafe extern "system" fn free_memory(
    device: vk::Device,
    memory: vk::DeviceMemory,
    _alloc: *const vk::AllocationCallbacks<'_>,
) {
    guard(|| {
        // SAFETY: the application passes a device of ours.
        let Some(dev) = (unsafe { self::device(device) }) else {
            return;
        };
        if memory.as_raw() == 0 {
            return;
        }
        let conn = &*dev.hdr.conn;
        let mut inner = dev.memory.lock();
        match inner.memories.remove(&memory.as_raw()) {
            Some(Memory::Sub { at, .. }) => {
                if let Some(block) = inner.pool.free(&at) {
                    let blob = inner.block_blobs.remove(&block).flatten();
                    drop(inner);
                    host_free(conn, device, block);
                    if let Some(b) = blob {
                        conn.transport.destroy_blob(b);
                    }
                }
            }
            m => {
                drop(inner);
                host_free(conn, device, memory.as_raw());
                if let Some(Memory::Own { blob: Some(b), .. }) = m {
                    conn.transport.destroy_blob(b);
                }
            }
        }
    })
}

/// The blob of host memory `id` of `size` bytes, created on first use.
fn blob<'a>(
    slot: &'a mut Option<MappedBlob>,
    conn: &Connection,
    id: u64,
    size: u64,
) -> Option<&'a MappedBlob> {
    if slot.is_none() {
        match conn
            .transport
            .create_blob(id, round_up(size, conn.granularity))
        {
            Ok(b) => *slot = Some(b),
            Err(e) => {
                tracing::warn!("cannot map memory {id}: {e}");
                return None;
            }
        }
    }
    slot.as_ref()
}

pub unsafe extern "system" fn map_memory(
    device: vk::Device,
    memory: vk::DeviceMemory,
    offset: vk::DeviceSize,
    _size: vk::DeviceSize,
    _flags: vk::MemoryMapFlags,
    pp: *mut *mut core::ffi::c_void,
) -> vk::Result {
    guard(|| {
        // SAFETY: the application passes a device of ours and a valid pointer.
        let (Some(dev), Some(pp)) = (unsafe { self::device(device) }, unsafe { pp.as_mut() })
        else {
            return vk::Result::ERROR_MEMORY_MAP_FAILED;
        };
        let conn = &*dev.hdr.conn;
        let mut guard = dev.memory.lock();
        let inner = &mut *guard;
        let (b, start) = match inner.memories.get_mut(&memory.as_raw()) {
            Some(Memory::Own { size, blob: slot }) if offset <= *size => {
                let size = *size;
                (blob(slot, conn, memory.as_raw(), size), offset)
            }
            Some(Memory::Sub { size, at }) if offset <= *size => {
                let (block, start) = (at.block, at.offset + offset);
                let Some(block_size) = inner.pool.block_size(block) else {
                    return vk::Result::ERROR_MEMORY_MAP_FAILED;
                };
                let slot = inner.block_blobs.entry(block).or_insert(None);
                (blob(slot, conn, block, block_size), start)
            }
            _ => return vk::Result::ERROR_MEMORY_MAP_FAILED,
        };
        match b {
            Some(b) if start <= b.size => {
                // SAFETY: start ≤ the blob's mapped size.
                *pp = unsafe { b.ptr.add(start as usize) }.cast();
                vk::Result::SUCCESS
            }
            _ => vk::Result::ERROR_MEMORY_MAP_FAILED,
        }
    })
}

pub unsafe extern "system" fn unmap_memory(_device: vk::Device, _memory: vk::DeviceMemory) {
    // The mapping stays until the memory (or its block) is freed (mapping again is
    // then free).
}

pub unsafe extern "system" fn flush_or_invalidate(
    _device: vk::Device,
    _count: u32,
    _ranges: *const vk::MappedMemoryRange<'_>,
) -> vk::Result {
    // Blobs are the host's own pages: there is nothing to copy.
    vk::Result::SUCCESS
}
