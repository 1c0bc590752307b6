//! Events: their status answered from guest-visible memory (event feedback).
//!
//! An event's status can change in two ways: on the host CPU, through
//! `vkSetEvent`/`vkResetEvent`, which pass through this ICD; and on the device,
//! through `vkCmdSetEvent[2]`/`vkCmdResetEvent[2]` in a command buffer. Each
//! event the application may query (not `VK_EVENT_CREATE_DEVICE_ONLY_BIT`) gets a
//! 4-byte slot in a small buffer of host-visible coherent memory that the guest
//! has mapped, holding `VK_EVENT_SET` or `VK_EVENT_RESET`:
//!
//! - the ICD writes the slot itself for `vkSetEvent`/`vkResetEvent` (the command
//!   still goes to the host, without waiting for its result);
//! - after every `vkCmdSetEvent[2]`/`vkCmdResetEvent[2]` it records into the same
//!   command buffer a barrier (from the event's source stages, host and transfer
//!   writes, to transfer), a `vkCmdFillBuffer` of the slot with the new status,
//!   and a barrier making that write visible to the host. The slot therefore
//!   changes a little after the event itself, never before it;
//! - `vkGetEventStatus` reads the slot: no round trip.
//!
//! This is the scheme Mesa venus uses (its "event feedback"). When the memory
//! cannot be had or mapped, when mapping it could cost the connection (a stock
//! virglrenderer vtest server, which drops a client whose blob it cannot export),
//! or with `VENUS_EVENT_FEEDBACK=0`, events go to the host as before.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, MutexGuard};

use ash::vk;
use ash::vk::Handle;
use venus_protocol::generated::guest_calls as gc;

use crate::device::device;
use crate::dispatch::Rt;
use crate::guard;
use crate::id_table::IdTable;
use crate::transport::Transport;

/// Bytes per feedback buffer (1,024 slots).
const CHUNK_BYTES: u64 = 4096;
/// Bytes per slot.
const SLOT_BYTES: u64 = 4;

/// One feedback buffer: a buffer bound to its own memory, mapped.
struct Chunk {
    buffer: vk::Buffer,
    memory: vk::DeviceMemory,
    /// Address of the mapping (CHUNK_BYTES long).
    base: usize,
}

/// Where an event's status lives.
#[derive(Clone, Copy)]
struct Slot {
    buffer: vk::Buffer,
    offset: u64,
    /// Address of the 4-byte word in the mapping.
    word: usize,
    /// The device whose pool owns it (raw handle).
    device: u64,
}

impl Slot {
    fn store(&self, status: vk::Result) {
        // SAFETY: `word` of a slot handed out by `Feedback::alloc`.
        unsafe { cell(self.word) }.store(status.as_raw() as u32, Ordering::Release);
    }
}

/// The status word at address `word`.
///
/// # Safety
/// `word` is a slot's [`Slot::word`] whose device has not released its feedback.
unsafe fn cell(word: usize) -> &'static AtomicU32 {
    // SAFETY: slot words are 4-aligned words inside a chunk's mapping, which stays
    // mapped until the device's feedback is released (after every event of the
    // device was destroyed, by Vulkan valid usage). The host writes the same word
    // through its own mapping, hence atomics.
    unsafe { &*(word as *const AtomicU32) }
}

/// The status a slot's word holds.
fn status(word: u32) -> vk::Result {
    if word == vk::Result::EVENT_SET.as_raw() as u32 {
        vk::Result::EVENT_SET
    } else {
        vk::Result::EVENT_RESET
    }
}

/// A device's feedback buffers.
enum State {
    /// Cannot work on this device (or turned off): events go to the host.
    Off,
    On {
        chunks: Vec<Chunk>,
        /// Free slots as (chunk, byte offset).
        free: Vec<(usize, u64)>,
    },
}

/// The event feedback of one device.
pub struct Feedback {
    state: Mutex<State>,
}

impl Feedback {
    /// The feedback of a new device whose connection goes through `transport`:
    /// off with `VENUS_EVENT_FEEDBACK=0`, or where mapping memory for the ICD's
    /// own use could cost the connection (a stock vtest server drops a client
    /// whose blob it cannot export).
    pub fn new(transport: &dyn Transport) -> Feedback {
        let wanted = std::env::var("VENUS_EVENT_FEEDBACK").map_or(true, |v| v != "0");
        let safe = transport.internal_mappings();
        if wanted && !safe {
            tracing::info!(
                "event feedback off: the host may drop the connection on a failed mapping"
            );
        }
        Feedback {
            state: Mutex::new(if wanted && safe {
                State::On {
                    chunks: Vec::new(),
                    free: Vec::new(),
                }
            } else {
                State::Off
            }),
        }
    }
}

impl Feedback {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A free slot of device `dev`, adding a chunk when none is left; `None` when
    /// feedback is off or its memory cannot be had.
    fn alloc(&self, dev: vk::Device, pd: vk::PhysicalDevice) -> Option<Slot> {
        let mut st = self.lock();
        let State::On { chunks, free } = &mut *st else {
            return None;
        };
        if free.is_empty() {
            match new_chunk(dev, pd) {
                Ok(c) => {
                    let k = chunks.len();
                    tracing::debug!(
                        "event feedback: buffer {k} ({} slots)",
                        CHUNK_BYTES / SLOT_BYTES
                    );
                    chunks.push(c);
                    free.extend(
                        (0..CHUNK_BYTES / SLOT_BYTES)
                            .rev()
                            .map(|i| (k, i * SLOT_BYTES)),
                    );
                }
                Err(why) => {
                    tracing::info!("event feedback off on this device: {why}");
                    if chunks.is_empty() {
                        *st = State::Off;
                    }
                    return None;
                }
            }
        }
        let (k, offset) = free.pop()?;
        let c = chunks.get(k)?;
        Some(Slot {
            buffer: c.buffer,
            offset,
            word: c.base + offset as usize,
            device: dev.as_raw(),
        })
    }

    fn release_slot(&self, slot: &Slot) {
        if let State::On { chunks, free } = &mut *self.lock() {
            if let Some(k) = chunks.iter().position(|c| c.buffer == slot.buffer) {
                free.push((k, slot.offset));
            }
        }
    }

    /// Destroys the feedback buffers and frees their memory (at vkDestroyDevice,
    /// before the device's memory blocks go).
    pub fn release(&self, dev: vk::Device) {
        let mut st = self.lock();
        if let State::On { chunks, .. } = &mut *st {
            for c in chunks.drain(..) {
                destroy_chunk(dev, &c);
            }
        }
        *st = State::Off;
        drop(st);
        events().forget_device(dev.as_raw());
    }
}

fn destroy_chunk(dev: vk::Device, c: &Chunk) {
    // SAFETY: objects this module created on `dev`, destroyed once; no command
    // buffer using them is pending (the device is idle or being destroyed).
    unsafe {
        if c.buffer != vk::Buffer::null() {
            gc::vk_destroy_buffer::<Rt>(dev, c.buffer, std::ptr::null());
        }
        if c.memory != vk::DeviceMemory::null() {
            crate::device_memory::free_memory(dev, c.memory, std::ptr::null());
        }
    }
}

/// A new mapped feedback buffer on `dev` (through this ICD's own entry points).
fn new_chunk(dev: vk::Device, pd: vk::PhysicalDevice) -> Result<Chunk, String> {
    let mut c = Chunk {
        buffer: vk::Buffer::null(),
        memory: vk::DeviceMemory::null(),
        base: 0,
    };
    let r = fill_chunk(dev, pd, &mut c);
    if r.is_err() {
        destroy_chunk(dev, &c);
    }
    r.map(|()| c)
}

fn fill_chunk(dev: vk::Device, pd: vk::PhysicalDevice, c: &mut Chunk) -> Result<(), String> {
    let info = vk::BufferCreateInfo::default()
        .size(CHUNK_BYTES)
        .usage(vk::BufferUsageFlags::TRANSFER_DST)
        .sharing_mode(vk::SharingMode::EXCLUSIVE);
    // SAFETY: a device of ours; valid create info and output.
    let r = unsafe { gc::vk_create_buffer::<Rt>(dev, &info, std::ptr::null(), &mut c.buffer) };
    if r != vk::Result::SUCCESS {
        c.buffer = vk::Buffer::null();
        return Err(format!("vkCreateBuffer: {r}"));
    }
    let mut req = vk::MemoryRequirements::default();
    // SAFETY: the buffer just created; valid output.
    unsafe { gc::vk_get_buffer_memory_requirements::<Rt>(dev, c.buffer, &mut req) };
    let mut props = vk::PhysicalDeviceMemoryProperties::default();
    // SAFETY: the device's physical device; valid output.
    unsafe { gc::vk_get_physical_device_memory_properties::<Rt>(pd, &mut props) };
    let want = vk::MemoryPropertyFlags::HOST_VISIBLE | vk::MemoryPropertyFlags::HOST_COHERENT;
    let n = (props.memory_type_count as usize).min(vk::MAX_MEMORY_TYPES);
    let Some(ty) = (0..n).find(|&i| {
        req.memory_type_bits & (1 << i) != 0
            && props.memory_types[i].property_flags.contains(want)
            && !props.memory_types[i]
                .property_flags
                .contains(vk::MemoryPropertyFlags::PROTECTED)
    }) else {
        return Err("no host-visible coherent memory type for a transfer buffer".into());
    };
    let alloc = vk::MemoryAllocateInfo::default()
        .allocation_size(req.size.max(CHUNK_BYTES))
        .memory_type_index(ty as u32);
    // SAFETY: valid allocate info and output.
    let r = unsafe {
        crate::device_memory::allocate_memory(dev, &alloc, std::ptr::null(), &mut c.memory)
    };
    if r != vk::Result::SUCCESS {
        c.memory = vk::DeviceMemory::null();
        return Err(format!("vkAllocateMemory: {r}"));
    }
    // SAFETY: buffer and memory of this device, memory large enough, offset 0.
    let r = unsafe { crate::device_memory::bind_buffer_memory(dev, c.buffer, c.memory, 0) };
    if r != vk::Result::SUCCESS {
        return Err(format!("vkBindBufferMemory: {r}"));
    }
    let mut p: *mut core::ffi::c_void = std::ptr::null_mut();
    // SAFETY: host-visible memory of this device; valid output.
    let r = unsafe {
        crate::device_memory::map_memory(
            dev,
            c.memory,
            0,
            vk::WHOLE_SIZE,
            vk::MemoryMapFlags::empty(),
            &mut p,
        )
    };
    if r != vk::Result::SUCCESS || p.is_null() || !(p as usize).is_multiple_of(4) {
        return Err(format!("vkMapMemory: {r}"));
    }
    c.base = p as usize;
    Ok(())
}

/// Event id → its slot. Event ids are unique in the process (never reused).
static EVENTS: Mutex<Option<HashMap<u64, Slot>>> = Mutex::new(None);
/// Event id → the address of its slot's word, for lookups without a lock
/// (`vkGetEventStatus`, `vkSetEvent`, `vkResetEvent`). Kept in step with `EVENTS`.
static WORDS: IdTable = IdTable::new();

struct Events(MutexGuard<'static, Option<HashMap<u64, Slot>>>);

impl Events {
    fn get(&self, event: vk::Event) -> Option<Slot> {
        self.0.as_ref()?.get(&event.as_raw()).copied()
    }
    fn insert(&mut self, event: vk::Event, slot: Slot) {
        WORDS.insert(event.as_raw(), slot.word as u64);
        self.0
            .get_or_insert_with(HashMap::new)
            .insert(event.as_raw(), slot);
    }
    fn remove(&mut self, event: vk::Event) -> Option<Slot> {
        WORDS.remove(event.as_raw());
        self.0.as_mut()?.remove(&event.as_raw())
    }
    /// Forgets the events of device `dev` (raw handle).
    fn forget_device(&mut self, dev: u64) {
        if let Some(m) = self.0.as_mut() {
            m.retain(|id, s| {
                let keep = s.device != dev;
                if !keep {
                    WORDS.remove(*id);
                }
                keep
            });
        }
    }
}

fn events() -> Events {
    Events(EVENTS.lock().unwrap_or_else(|p| p.into_inner()))
}

/// The status word of `event`, without a lock.
fn word(event: vk::Event) -> Option<&'static AtomicU32> {
    // SAFETY: `WORDS` holds the words of live slots only (entries go when their
    // event is destroyed or their device releases its feedback).
    WORDS
        .get(event.as_raw())
        .map(|w| unsafe { cell(w as usize) })
}

fn slot(event: vk::Event) -> Option<Slot> {
    if event == vk::Event::null() {
        return None;
    }
    events().get(event)
}

/// `vkCreateEvent`: created on the host as before (without waiting); an event
/// the host may query gets a feedback slot holding `VK_EVENT_RESET`.
pub unsafe extern "system" fn create_event(
    dev: vk::Device,
    info: *const vk::EventCreateInfo<'_>,
    allocator: *const vk::AllocationCallbacks<'_>,
    event: *mut vk::Event,
) -> vk::Result {
    guard(|| {
        // SAFETY: forwarded as the application passed them.
        let r = unsafe { gc::vk_create_event::<Rt>(dev, info, allocator, event) };
        if r != vk::Result::SUCCESS {
            return r;
        }
        // SAFETY: valid pointers on success (Vulkan valid usage).
        let (device_only, handle) = unsafe {
            (
                info.as_ref()
                    .is_some_and(|i| i.flags.contains(vk::EventCreateFlags::DEVICE_ONLY)),
                event.as_ref().copied(),
            )
        };
        // SAFETY: a device of ours (valid usage).
        let (false, Some(handle), Some(d)) = (device_only, handle, unsafe { device(dev) }) else {
            return r;
        };
        if let Some(s) = d.events.alloc(dev, d.physical_device) {
            s.store(vk::Result::EVENT_RESET);
            events().insert(handle, s);
        }
        r
    })
}

/// `vkDestroyEvent`: its slot returns to the device's pool.
pub unsafe extern "system" fn destroy_event(
    dev: vk::Device,
    event: vk::Event,
    allocator: *const vk::AllocationCallbacks<'_>,
) {
    guard(|| {
        // SAFETY: forwarded.
        unsafe { gc::vk_destroy_event::<Rt>(dev, event, allocator) };
        let removed = if event == vk::Event::null() {
            None
        } else {
            events().remove(event)
        };
        // SAFETY: a device of ours (valid usage).
        if let (Some(s), Some(d)) = (removed, unsafe { device(dev) }) {
            d.events.release_slot(&s);
        }
    })
}

fn lost(dev: vk::Device) -> bool {
    if !crate::connection::any_lost() {
        return false;
    }
    // SAFETY: `dev` is a live device of this ICD (Vulkan valid usage).
    unsafe { device(dev) }.is_some_and(|d| d.hdr.conn.is_lost())
}

/// `vkGetEventStatus`: from the slot when the event has one.
pub unsafe extern "system" fn get_event_status(dev: vk::Device, event: vk::Event) -> vk::Result {
    guard(|| match word(event) {
        Some(_) if lost(dev) => vk::Result::ERROR_DEVICE_LOST,
        Some(w) => status(w.load(Ordering::Acquire)),
        // SAFETY: forwarded.
        None => unsafe { gc::vk_get_event_status::<Rt>(dev, event) },
    })
}

/// `vkSetEvent`/`vkResetEvent`: the slot first, then the host (without waiting,
/// as every result-only command the caller does not need at once).
fn host_set(dev: vk::Device, event: vk::Event, status: vk::Result) -> vk::Result {
    if let Some(w) = word(event) {
        w.store(status.as_raw() as u32, Ordering::Release);
    }
    if status == vk::Result::EVENT_SET {
        // SAFETY: forwarded.
        unsafe { gc::vk_set_event::<Rt>(dev, event) }
    } else {
        // SAFETY: forwarded.
        unsafe { gc::vk_reset_event::<Rt>(dev, event) }
    }
}

/// `vkSetEvent`.
pub unsafe extern "system" fn set_event(dev: vk::Device, event: vk::Event) -> vk::Result {
    guard(|| host_set(dev, event, vk::Result::EVENT_SET))
}

/// `vkResetEvent`.
pub unsafe extern "system" fn reset_event(dev: vk::Device, event: vk::Event) -> vk::Result {
    guard(|| host_set(dev, event, vk::Result::EVENT_RESET))
}

/// Records the slot update after a device-side set or reset of `event` whose
/// first synchronization scope is `stages` (see the module comment).
fn record_feedback(
    cb: vk::CommandBuffer,
    event: vk::Event,
    stages: vk::PipelineStageFlags2,
    status: vk::Result,
    sync2: bool,
) {
    let Some(s) = slot(event) else {
        return;
    };
    let before = vk::BufferMemoryBarrier2::default()
        .src_stage_mask(stages | vk::PipelineStageFlags2::HOST | vk::PipelineStageFlags2::TRANSFER)
        .src_access_mask(vk::AccessFlags2::HOST_WRITE | vk::AccessFlags2::TRANSFER_WRITE)
        .dst_stage_mask(vk::PipelineStageFlags2::TRANSFER)
        .dst_access_mask(vk::AccessFlags2::TRANSFER_WRITE)
        .src_queue_family_index(vk::QUEUE_FAMILY_IGNORED)
        .dst_queue_family_index(vk::QUEUE_FAMILY_IGNORED)
        .buffer(s.buffer)
        .offset(s.offset)
        .size(SLOT_BYTES);
    let after = vk::BufferMemoryBarrier2::default()
        .src_stage_mask(vk::PipelineStageFlags2::TRANSFER)
        .src_access_mask(vk::AccessFlags2::TRANSFER_WRITE)
        .dst_stage_mask(vk::PipelineStageFlags2::HOST)
        .dst_access_mask(vk::AccessFlags2::HOST_READ | vk::AccessFlags2::HOST_WRITE)
        .src_queue_family_index(vk::QUEUE_FAMILY_IGNORED)
        .dst_queue_family_index(vk::QUEUE_FAMILY_IGNORED)
        .buffer(s.buffer)
        .offset(s.offset)
        .size(SLOT_BYTES);
    barrier(cb, &before, sync2);
    // SAFETY: a command buffer of ours in the recording state (the application
    // just recorded the event command into it); the slot's buffer lives while
    // the device does.
    unsafe {
        gc::vk_cmd_fill_buffer::<Rt>(cb, s.buffer, s.offset, SLOT_BYTES, status.as_raw() as u32)
    };
    barrier(cb, &after, sync2);
}

/// Records one buffer barrier, with synchronization2 when the application used it
/// (so the feature is enabled), else the Vulkan 1.0 form (every mask here fits
/// in 32 bits then: the application's stages came from a 1.0 command).
fn barrier(cb: vk::CommandBuffer, b: &vk::BufferMemoryBarrier2<'_>, sync2: bool) {
    if sync2 {
        let bs = [*b];
        let dep = vk::DependencyInfo::default().buffer_memory_barriers(&bs);
        // SAFETY: as in `record_feedback`; `dep` lives across the call.
        unsafe { gc::vk_cmd_pipeline_barrier2::<Rt>(cb, &dep) };
    } else {
        let b1 = vk::BufferMemoryBarrier::default()
            .src_access_mask(vk::AccessFlags::from_raw(b.src_access_mask.as_raw() as u32))
            .dst_access_mask(vk::AccessFlags::from_raw(b.dst_access_mask.as_raw() as u32))
            .src_queue_family_index(b.src_queue_family_index)
            .dst_queue_family_index(b.dst_queue_family_index)
            .buffer(b.buffer)
            .offset(b.offset)
            .size(b.size);
        // SAFETY: as in `record_feedback`; `b1` lives across the call.
        unsafe {
            gc::vk_cmd_pipeline_barrier::<Rt>(
                cb,
                vk::PipelineStageFlags::from_raw(b.src_stage_mask.as_raw() as u32),
                vk::PipelineStageFlags::from_raw(b.dst_stage_mask.as_raw() as u32),
                vk::DependencyFlags::empty(),
                0,
                std::ptr::null(),
                1,
                &b1,
                0,
                std::ptr::null(),
            )
        };
    }
}

/// The source stages of a dependency (every barrier's `srcStageMask`).
///
/// # Safety
/// `dep` is null or a valid `VkDependencyInfo` (Vulkan valid usage).
unsafe fn src_stages(dep: *const vk::DependencyInfo<'_>) -> vk::PipelineStageFlags2 {
    // SAFETY: caller contract.
    let Some(d) = (unsafe { dep.as_ref() }) else {
        return vk::PipelineStageFlags2::empty();
    };
    /// The elements of a (count, pointer) array, empty when null.
    ///
    /// # Safety
    /// `p` is null or points at `n` elements.
    unsafe fn list<'a, T>(p: *const T, n: u32) -> &'a [T] {
        if p.is_null() || n == 0 {
            &[]
        } else {
            // SAFETY: caller contract.
            unsafe { std::slice::from_raw_parts(p, n as usize) }
        }
    }
    let mut mask = vk::PipelineStageFlags2::empty();
    // SAFETY: arrays of a valid dependency info.
    unsafe {
        for b in list(d.p_memory_barriers, d.memory_barrier_count) {
            mask |= b.src_stage_mask;
        }
        for b in list(d.p_buffer_memory_barriers, d.buffer_memory_barrier_count) {
            mask |= b.src_stage_mask;
        }
        for b in list(d.p_image_memory_barriers, d.image_memory_barrier_count) {
            mask |= b.src_stage_mask;
        }
    }
    mask
}

/// `vkCmdSetEvent`.
pub unsafe extern "system" fn cmd_set_event(
    cb: vk::CommandBuffer,
    event: vk::Event,
    stages: vk::PipelineStageFlags,
) {
    guard(|| {
        // SAFETY: forwarded.
        unsafe { gc::vk_cmd_set_event::<Rt>(cb, event, stages) };
        let stages = vk::PipelineStageFlags2::from_raw(u64::from(stages.as_raw()));
        record_feedback(cb, event, stages, vk::Result::EVENT_SET, false);
    })
}

/// `vkCmdResetEvent`.
pub unsafe extern "system" fn cmd_reset_event(
    cb: vk::CommandBuffer,
    event: vk::Event,
    stages: vk::PipelineStageFlags,
) {
    guard(|| {
        // SAFETY: forwarded.
        unsafe { gc::vk_cmd_reset_event::<Rt>(cb, event, stages) };
        let stages = vk::PipelineStageFlags2::from_raw(u64::from(stages.as_raw()));
        record_feedback(cb, event, stages, vk::Result::EVENT_RESET, false);
    })
}

/// `vkCmdSetEvent2`.
pub unsafe extern "system" fn cmd_set_event2(
    cb: vk::CommandBuffer,
    event: vk::Event,
    dep: *const vk::DependencyInfo<'_>,
) {
    guard(|| {
        // SAFETY: forwarded.
        unsafe { gc::vk_cmd_set_event2::<Rt>(cb, event, dep) };
        // SAFETY: the application's dependency info (valid usage).
        let stages = unsafe { src_stages(dep) };
        record_feedback(cb, event, stages, vk::Result::EVENT_SET, true);
    })
}

/// `vkCmdResetEvent2`.
pub unsafe extern "system" fn cmd_reset_event2(
    cb: vk::CommandBuffer,
    event: vk::Event,
    stages: vk::PipelineStageFlags2,
) {
    guard(|| {
        // SAFETY: forwarded.
        unsafe { gc::vk_cmd_reset_event2::<Rt>(cb, event, stages) };
        record_feedback(cb, event, stages, vk::Result::EVENT_RESET, true);
    })
}
