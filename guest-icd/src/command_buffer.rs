//! Command buffers: vkCmd* are encoded into a local stream, which is sent to the
//! host (through the ring, or a blob when large) at vkEndCommandBuffer.

use std::sync::Mutex;

use ash::vk;
use ash::vk::Handle;
use venus_protocol::generated as g;
use venus_protocol::generated::guest_calls as gc;
use venus_protocol::generated::guest_calls::CallInfo;
use venus_protocol::Encoder;

use crate::device::device;
use crate::dispatch::{Header, ObjectKind, Rt};
use crate::guard;

/// A `VkCommandBuffer`.
#[repr(C)]
pub struct CommandBuffer {
    /// Dispatchable header (must be first).
    pub hdr: Header,
    pool: u64,
    level: vk::CommandBufferLevel,
    stream: Mutex<Vec<u8>>,
}

/// Records (or, for begin/end/reset, sends) a command of command buffer `raw`.
pub fn record(
    raw: u64,
    info: &CallInfo,
    encode: &mut dyn FnMut(&mut Encoder<'_>, u32),
) -> Result<(), vk::Result> {
    // SAFETY: `raw` is a command buffer of ours (the runtime checked the header kind).
    let cb = unsafe { &*(raw as usize as *const CommandBuffer) };
    let mut stream = cb.stream.lock().unwrap_or_else(|p| p.into_inner());
    match info.name {
        "vkResetCommandBuffer" => {
            stream.clear();
            cb.hdr.conn.send(encode)
        }
        "vkBeginCommandBuffer" => {
            stream.clear();
            cb.hdr.conn.encode(&mut stream, encode, 0)
        }
        "vkEndCommandBuffer" => {
            cb.hdr.conn.encode(&mut stream, encode, 0)?;
            let r = cb.hdr.conn.send_bytes(&stream);
            stream.clear();
            r
        }
        _ => cb.hdr.conn.encode(&mut stream, encode, 0),
    }
}

/// Frees command buffer objects (raw handles).
pub fn free_objects(cbs: &[u64]) {
    for cb in cbs {
        if *cb != 0 {
            // SAFETY: created by `allocate_command_buffers`, freed once.
            drop(unsafe { Box::from_raw(*cb as usize as *mut CommandBuffer) });
        }
    }
}

pub unsafe extern "system" fn allocate_command_buffers(
    device: vk::Device,
    info: *const vk::CommandBufferAllocateInfo<'_>,
    out: *mut vk::CommandBuffer,
) -> vk::Result {
    guard(|| {
        // SAFETY: the application passes a device of ours and valid pointers.
        let (Some(dev), Some(i)) = (unsafe { self::device(device) }, unsafe { info.as_ref() })
        else {
            return vk::Result::ERROR_INITIALIZATION_FAILED;
        };
        if out.is_null() {
            return vk::Result::ERROR_INITIALIZATION_FAILED;
        }
        let n = i.command_buffer_count as usize;
        let pool = i.command_pool.as_raw();
        let objs: Vec<Box<CommandBuffer>> = (0..n)
            .map(|_| {
                Box::new(CommandBuffer {
                    hdr: Header::new(ObjectKind::CommandBuffer, dev.hdr.conn.clone()),
                    pool,
                    level: i.level,
                    stream: Mutex::new(Vec::new()),
                })
            })
            .collect();
        let mut ids: Vec<vk::CommandBuffer> = objs
            .iter()
            .map(|o| vk::CommandBuffer::from_raw(o.hdr.id))
            .collect();
        // Output handle arrays carry ids: encode the device by id too.
        let dev_id = vk::Device::from_raw(dev.hdr.id);
        if let Err(e) = dev.hdr.conn.send(&mut |e, f| {
            e.set_dispatchable_id(|v| v);
            // SAFETY: `ids` holds command_buffer_count slots.
            unsafe { g::encode_vk_allocate_command_buffers(e, f, dev_id, info, ids.as_mut_ptr()) }
        }) {
            return e;
        }
        let raws: Vec<u64> = objs.into_iter().map(|o| Box::into_raw(o) as u64).collect();
        for (k, r) in raws.iter().enumerate() {
            // SAFETY: `out` holds command_buffer_count slots (Vulkan rules).
            unsafe { *out.add(k) = vk::CommandBuffer::from_raw(*r) };
        }
        dev.pools
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(pool)
            .or_default()
            .extend(raws);
        vk::Result::SUCCESS
    })
}

/// vkBeginCommandBuffer with the members Vulkan ignores cleared, as Mesa does: a
/// primary command buffer ignores `pInheritanceInfo` entirely, a secondary one without
/// `VK_COMMAND_BUFFER_USAGE_RENDER_PASS_CONTINUE_BIT` ignores the inherited render
/// pass, subpass and framebuffer. Whatever the application left there (stale or
/// made-up handles) would otherwise reach the host as unknown objects.
pub unsafe extern "system" fn begin_command_buffer(
    command_buffer: vk::CommandBuffer,
    info: *const vk::CommandBufferBeginInfo<'_>,
) -> vk::Result {
    guard(|| {
        // SAFETY: the application passes a valid begin info (or null, forwarded).
        let Some(begin) = (unsafe { info.as_ref() }) else {
            // SAFETY: forwarded as given.
            return unsafe { gc::vk_begin_command_buffer::<Rt>(command_buffer, info) };
        };
        let raw = command_buffer.as_raw();
        if raw == 0 {
            return vk::Result::ERROR_INITIALIZATION_FAILED;
        }
        // SAFETY: a command buffer of ours: its handle is the address of our object.
        let level = unsafe { &*(raw as usize as *const CommandBuffer) }.level;
        let mut fixed = *begin;
        let inheritance;
        if level == vk::CommandBufferLevel::PRIMARY {
            fixed.p_inheritance_info = std::ptr::null();
        } else if !begin
            .flags
            .contains(vk::CommandBufferUsageFlags::RENDER_PASS_CONTINUE)
        {
            // SAFETY: a secondary command buffer's inheritance info is valid.
            if let Some(i) = unsafe { begin.p_inheritance_info.as_ref() } {
                inheritance = vk::CommandBufferInheritanceInfo {
                    render_pass: vk::RenderPass::null(),
                    subpass: 0,
                    framebuffer: vk::Framebuffer::null(),
                    ..*i
                };
                fixed.p_inheritance_info = &inheritance;
            }
        }
        // SAFETY: a sanitized copy of a valid begin info; `inheritance` outlives the call.
        unsafe { gc::vk_begin_command_buffer::<Rt>(command_buffer, &fixed) }
    })
}

pub unsafe extern "system" fn free_command_buffers(
    device: vk::Device,
    pool: vk::CommandPool,
    count: u32,
    cbs: *const vk::CommandBuffer,
) {
    guard(|| {
        // SAFETY: the application passes a device of ours.
        let Some(dev) = (unsafe { self::device(device) }) else {
            return;
        };
        if cbs.is_null() {
            return;
        }
        let _ = dev.hdr.conn.send(&mut |e, f| {
            // SAFETY: `cbs` holds `count` handles of ours.
            unsafe { g::encode_vk_free_command_buffers(e, f, device, pool, count, cbs) }
        });
        // SAFETY: as above.
        let list: Vec<u64> = (0..count as usize)
            .map(|k| unsafe { *cbs.add(k) }.as_raw())
            .collect();
        if let Some(v) = dev
            .pools
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get_mut(&pool.as_raw())
        {
            v.retain(|c| !list.contains(c));
        }
        free_objects(&list);
    })
}

pub unsafe extern "system" fn destroy_command_pool(
    device: vk::Device,
    pool: vk::CommandPool,
    _alloc: *const vk::AllocationCallbacks<'_>,
) {
    guard(|| {
        // SAFETY: the application passes a device of ours.
        let Some(dev) = (unsafe { self::device(device) }) else {
            return;
        };
        let _ = dev.hdr.conn.send(&mut |e, f| {
            // SAFETY: plain handles.
            unsafe { g::encode_vk_destroy_command_pool(e, f, device, pool, std::ptr::null()) }
        });
        let gone = dev
            .pools
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&pool.as_raw());
        free_objects(&gone.unwrap_or_default());
    })
}

pub unsafe extern "system" fn reset_command_pool(
    device: vk::Device,
    pool: vk::CommandPool,
    flags: vk::CommandPoolResetFlags,
) -> vk::Result {
    guard(|| {
        // SAFETY: the application passes a device of ours.
        let Some(dev) = (unsafe { self::device(device) }) else {
            return vk::Result::ERROR_INITIALIZATION_FAILED;
        };
        if let Some(v) = dev
            .pools
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&pool.as_raw())
        {
            for cb in v {
                // SAFETY: live command buffers of this pool.
                let c = unsafe { &*(*cb as usize as *const CommandBuffer) };
                debug_assert_eq!(c.pool, pool.as_raw());
                c.stream.lock().unwrap_or_else(|p| p.into_inner()).clear();
            }
        }
        match dev.hdr.conn.send(&mut |e, f| {
            // SAFETY: plain values.
            unsafe { g::encode_vk_reset_command_pool(e, f, device, pool, flags) }
        }) {
            Ok(()) => vk::Result::SUCCESS,
            Err(e) => e,
        }
    })
}
