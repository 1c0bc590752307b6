//! Dispatchable objects, object ids, and the runtime behind the generated entry
//! points: where each command goes (the connection's ring, or a command buffer's
//! local stream) and whether it waits for a reply.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use ash::vk;
use venus_protocol::generated::guest_calls::{CallInfo, GuestRuntime, ReplyKind};
use venus_protocol::{Decoder, Encoder};

use crate::connection::Connection;

/// `ICD_LOADER_MAGIC`: the loader checks it in the first word of a dispatchable object.
pub const ICD_LOADER_MAGIC: usize = 0x01CD_C0DE;

/// What kind of dispatchable object a header belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum ObjectKind {
    /// `VkInstance`.
    Instance,
    /// `VkPhysicalDevice`.
    PhysicalDevice,
    /// `VkDevice`.
    Device,
    /// `VkQueue`.
    Queue,
    /// `VkCommandBuffer`.
    CommandBuffer,
}

/// The common prefix of every dispatchable object. The loader owns the first word
/// (it overwrites the magic with its dispatch table pointer).
#[repr(C)]
pub struct Header {
    loader_data: usize,
    /// The object's Venus id.
    pub id: u64,
    /// Its kind.
    pub kind: ObjectKind,
    /// The connection its commands go through.
    pub conn: Arc<Connection>,
}

impl Header {
    /// A header for a new object of `kind` with a fresh id.
    pub fn new(kind: ObjectKind, conn: Arc<Connection>) -> Header {
        Header {
            loader_data: ICD_LOADER_MAGIC,
            id: next_id(),
            kind,
            conn,
        }
    }
}

/// The header of the dispatchable object at `raw`, if `raw` is non-null.
///
/// # Safety
/// `raw` is null or a handle this ICD created and has not freed.
pub unsafe fn header<'a>(raw: u64) -> Option<&'a Header> {
    if raw == 0 {
        return None;
    }
    // SAFETY: caller contract: every dispatchable object starts with a Header.
    Some(unsafe { &*(raw as usize as *const Header) })
}

/// The Venus id of dispatchable handle `raw` (for the encoder).
pub fn dispatchable_id(raw: u64) -> u64 {
    // SAFETY: the encoder only sees dispatchable handles the application got from
    // this ICD (Vulkan valid usage).
    unsafe { header(raw) }.map_or(0, |h| h.id)
}

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// A fresh object id.
pub fn next_id() -> u64 {
    NEXT_ID.fetch_add(1, Ordering::Relaxed)
}

/// Commands returning only a `VkResult` whose result the caller needs now; others
/// of that kind are sent without waiting and report success (as Mesa does).
const WAIT_FOR_RESULT: &[&str] = &[
    "vkGetFenceStatus",
    "vkGetEventStatus",
    "vkWaitForFences",
    "vkWaitSemaphores",
    "vkQueueWaitIdle",
    "vkDeviceWaitIdle",
    "vkAllocateDescriptorSets",
    "vkCreateGraphicsPipelines",
    "vkCreateComputePipelines",
    "vkCreateDevice",
    "vkAllocateMemory",
];

/// Physical-device queries whose answer can change (memory budgets).
const UNCACHED: &[&str] = &[
    "vkGetPhysicalDeviceMemoryProperties2",
    "vkGetPhysicalDeviceMemoryProperties",
];

/// The runtime of the generated entry points.
pub struct Rt;

impl GuestRuntime for Rt {
    fn next_id() -> u64 {
        next_id()
    }

    fn submit(
        info: &CallInfo,
        first: u64,
        encode: &mut dyn FnMut(&mut Encoder<'_>, u32),
        decode: &mut dyn FnMut(&mut Decoder<'_>),
    ) -> Result<bool, vk::Result> {
        // No panic may unwind into the application: report it as an error.
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            submit(info, first, encode, decode)
        })) {
            Ok(r) => r,
            Err(_) => {
                tracing::error!("panic while sending {}", info.name);
                Err(vk::Result::ERROR_UNKNOWN)
            }
        }
    }
}

fn submit(
    info: &CallInfo,
    first: u64,
    encode: &mut dyn FnMut(&mut Encoder<'_>, u32),
    decode: &mut dyn FnMut(&mut Decoder<'_>),
) -> Result<bool, vk::Result> {
    // SAFETY: `first` is the dispatchable first parameter the application passed.
    let Some(h) = (unsafe { header(first) }) else {
        tracing::warn!("{} has no dispatchable handle to route it", info.name);
        return Err(vk::Result::ERROR_INITIALIZATION_FAILED);
    };
    if h.kind == ObjectKind::CommandBuffer {
        crate::command_buffer::record(first, info, encode)?;
        return Ok(false);
    }
    let wait = match info.kind {
        ReplyKind::Outputs => true,
        ReplyKind::Result => WAIT_FOR_RESULT.contains(&info.name),
        ReplyKind::None => false,
    };
    if wait && h.kind == ObjectKind::PhysicalDevice && !UNCACHED.contains(&info.name) {
        h.conn.call_cached(encode, decode)?;
        Ok(true)
    } else if wait {
        h.conn.call(encode, decode)?;
        Ok(true)
    } else {
        h.conn.send(encode)?;
        Ok(false)
    }
}
