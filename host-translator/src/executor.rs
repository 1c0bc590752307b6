//! Runs a command stream: decode one command (handles translated through the
//! context's object table), dispatch it, write its reply.

use std::sync::Arc;

use ash::vk;
use bumpalo::Bump;
use venus_protocol::generated::host_calls::{
    call_command, encode_reply_command, CallRet, DispatchTable,
};
use venus_protocol::generated::{decode_command, Command};
use venus_protocol::{Decoder, Encoder};

use crate::context::{Shared, State};
use crate::object_table::Entry;

/// `VK_COMMAND_GENERATE_REPLY_BIT_EXT`.
pub const GENERATE_REPLY: u32 = 1;

/// Where a stream came from; some commands are only legal in some places.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin {
    /// Out of ring: vtest SUBMIT_CMD2 / virtio-gpu EXECBUFFER.
    Submit,
    /// Read from ring `id`.
    Ring(u64),
    /// A stream named by `vkExecuteCommandStreamsMESA` from the source with this
    /// reply key.
    Stream(u64),
}

impl Origin {
    /// Which reply stream this source writes to: each ring has its own, as do
    /// out-of-ring submissions (key 0); streams reply like their caller.
    pub fn reply_key(self) -> u64 {
        match self {
            Origin::Submit => 0,
            Origin::Ring(id) => id,
            Origin::Stream(key) => key,
        }
    }
}

/// A failure that makes the context fatal.
pub type Fatal = String;

/// Executes every command in `data`.
pub fn execute(shared: &Arc<Shared>, data: &[u8], origin: Origin) -> Result<(), Fatal> {
    let mut arena = Bump::new();
    let mut pos = 0usize;
    while pos < data.len() {
        if shared.is_fatal() {
            return Err("context is fatal".into());
        }
        arena.reset();
        let rest = data.get(pos..).unwrap_or_default();
        let mut st = shared.lock();
        let decoded = {
            let mut d = Decoder::with_resolver(rest, &st.objects);
            match decode_command(&mut d, &arena) {
                Some((flags, cmd)) => Ok((flags, cmd, d.position())),
                None => Err(d.error()),
            }
        };
        let (flags, cmd, used) = match decoded {
            Ok(v) => v,
            Err(e) => {
                let what = e
                    .map(|e| e.to_string())
                    .unwrap_or_else(|| "empty command".into());
                return Err(format!("cannot decode command at byte {pos}: {what}"));
            }
        };
        pos = pos.saturating_add(used.max(1));
        tracing::trace!(ctx = shared.id, cmd = cmd.name(), flags, "command");
        if let Some(c) = shared.command_counts.get(cmd.number() as usize) {
            c.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        // A NULL where the driver would dereference unconditionally is the guest's
        // error, never a host crash.
        if let Some(p) = cmd.missing_required_pointer() {
            return Err(format!("{}: required pointer {p} is NULL", cmd.name()));
        }
        // Commands that block or recurse run without the lock.
        match &cmd {
            Command::WaitVirtqueueSeqnoMESA(x) => {
                drop(st);
                if !matches!(origin, Origin::Ring(_)) {
                    return Err("vkWaitVirtqueueSeqnoMESA outside a ring".into());
                }
                crate::transport::wait_virtqueue_seqno(shared, x.seqno)?;
                continue;
            }
            Command::WaitRingSeqnoMESA(x) => {
                drop(st);
                if origin != Origin::Submit {
                    return Err("vkWaitRingSeqnoMESA inside a ring".into());
                }
                crate::ring::wait_ring_seqno(shared, x.ring, x.seqno)?;
                continue;
            }
            Command::ExecuteCommandStreamsMESA(x) => {
                drop(st);
                if matches!(origin, Origin::Stream(_)) {
                    return Err("nested vkExecuteCommandStreamsMESA".into());
                }
                crate::transport::execute_command_streams(shared, x, origin.reply_key())?;
                continue;
            }
            // Host waits can take long (and may wait for work another ring of
            // this context submits): they run without the context lock.
            Command::WaitForFences(_)
            | Command::WaitSemaphores(_)
            | Command::QueueWaitIdle(_)
            | Command::DeviceWaitIdle(_) => {
                let table = table_for(&st, &cmd)?;
                drop(st);
                let ret = host_wait(shared, &table, &cmd)?;
                if flags & GENERATE_REPLY != 0 {
                    crate::transport::write_reply(
                        &mut shared.lock(),
                        origin.reply_key(),
                        &cmd,
                        ret,
                    )?;
                }
                continue;
            }
            _ => {}
        }
        dispatch(shared, &mut st, flags, &cmd, origin)?;
    }
    Ok(())
}

/// Longest single driver wait; longer guest timeouts are waited in slices so a
/// context being torn down is never stuck behind a guest's infinite wait.
const WAIT_SLICE_NS: u64 = 50_000_000;

/// Runs a host wait command without the context lock, in slices.
fn host_wait(shared: &Shared, table: &DispatchTable, cmd: &Command<'_>) -> Result<CallRet, Fatal> {
    use venus_protocol::generated::{WaitForFencesArgs, WaitSemaphoresArgs};
    let total = match cmd {
        Command::WaitForFences(x) => x.timeout,
        Command::WaitSemaphores(x) => x.timeout,
        _ => 0,
    };
    let start = std::time::Instant::now();
    loop {
        let elapsed = u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX);
        let left = total.saturating_sub(elapsed);
        let slice = left.min(WAIT_SLICE_NS);
        let sliced = match cmd {
            Command::WaitForFences(x) => Command::WaitForFences(WaitForFencesArgs {
                timeout: slice,
                ..*x
            }),
            Command::WaitSemaphores(x) => Command::WaitSemaphores(WaitSemaphoresArgs {
                timeout: slice,
                ..*x
            }),
            other => *other,
        };
        // SAFETY: as in `call`: translated handles, arena pointers.
        let ret = unsafe { call_command(table, &sliced) }
            .ok_or_else(|| format!("{} is not available on this host", cmd.name()))?;
        let timed_out = ret == CallRet::Result(vk::Result::TIMEOUT);
        if !timed_out || slice == left {
            return Ok(ret);
        }
        if shared.is_fatal() {
            return Err("context stopped during a host wait".into());
        }
        if shared.guest_gone() {
            return Err("the guest went away during a host wait".into());
        }
    }
}

/// Runs one decoded command with the context locked.
fn dispatch(
    shared: &Arc<Shared>,
    st: &mut State,
    flags: u32,
    cmd: &Command<'_>,
    origin: Origin,
) -> Result<(), Fatal> {
    use crate::{
        command_buffer, descriptor_set, device, device_memory, instance, physical_device, queue,
        ring, transport,
    };
    let out_of_ring = origin == Origin::Submit;
    let ret = match cmd {
        // Venus transport.
        Command::SetReplyCommandStreamMESA(x) => {
            transport::set_reply_stream(st, origin.reply_key(), x)?
        }
        Command::SeekReplyCommandStreamMESA(x) => {
            transport::seek_reply_stream(st, origin.reply_key(), x.position)?
        }
        Command::CreateRingMESA(x) if out_of_ring => ring::create(shared, st, x)?,
        Command::DestroyRingMESA(x) if out_of_ring => ring::destroy(shared, st, x.ring)?,
        Command::NotifyRingMESA(x) if out_of_ring => ring::notify(st, x.ring)?,
        Command::WriteRingExtraMESA(x) => ring::write_extra(st, x.ring, x.offset, x.value)?,
        Command::SubmitVirtqueueSeqnoMESA(x) if out_of_ring => {
            transport::submit_virtqueue_seqno(shared, x.seqno)
        }
        Command::CreateRingMESA(_)
        | Command::DestroyRingMESA(_)
        | Command::NotifyRingMESA(_)
        | Command::SubmitVirtqueueSeqnoMESA(_) => {
            return Err(format!("{} must be sent out of ring", cmd.name()))
        }
        Command::GetMemoryResourcePropertiesMESA(x) => device_memory::resource_properties(st, x)?,
        Command::ResetFenceResourceMESA(x) => queue::reset_fence_resource(st, x.device, x.fence)?,
        Command::WaitSemaphoreResourceMESA(_) => CallRet::Void,
        Command::ImportSemaphoreResourceMESA(_) => CallRet::Void,
        // Instances and physical devices.
        Command::CreateInstance(x) => instance::create(st, x)?,
        Command::DestroyInstance(x) => instance::destroy(st, x)?,
        Command::EnumeratePhysicalDevices(x) => instance::enumerate_physical_devices(st, x)?,
        Command::EnumeratePhysicalDeviceGroups(x) => instance::enumerate_groups(st, x)?,
        Command::EnumerateInstanceExtensionProperties(x) => instance::enumerate_extensions(st, x)?,
        Command::EnumerateDeviceExtensionProperties(x) => {
            physical_device::enumerate_extensions(st, x)?
        }
        Command::GetPhysicalDeviceProperties(_) | Command::GetPhysicalDeviceProperties2(_) => {
            let r = generic(st, cmd)?;
            physical_device::fix_properties(cmd);
            r
        }
        // Devices and queues.
        Command::CreateDevice(x) => device::create(st, x)?,
        Command::DestroyDevice(x) => device::destroy(st, x)?,
        Command::GetDeviceQueue(_) | Command::GetDeviceQueue2(_) => queue::get(st, cmd)?,
        Command::CreateBuffer(x) => crate::buffer::create(st, cmd, x)?,
        Command::CreateImage(x) => crate::image::create(st, cmd, x)?,
        // Memory.
        Command::AllocateMemory(x) => device_memory::allocate(st, cmd, x)?,
        Command::FreeMemory(x) => device_memory::free(st, cmd, x)?,
        // Pools.
        Command::AllocateCommandBuffers(x) => command_buffer::allocate(st, cmd, x)?,
        Command::FreeCommandBuffers(x) => command_buffer::free(st, cmd, x)?,
        Command::DestroyCommandPool(x) => command_buffer::destroy_pool(st, cmd, x)?,
        Command::AllocateDescriptorSets(x) => descriptor_set::allocate(st, cmd, x)?,
        Command::FreeDescriptorSets(x) => descriptor_set::free(st, cmd, x)?,
        Command::DestroyDescriptorPool(x) => {
            descriptor_set::destroy_pool(st, cmd, x.descriptor_pool)?
        }
        Command::ResetDescriptorPool(x) => descriptor_set::reset_pool(st, cmd, x.descriptor_pool)?,
        // Layouts, and the descriptor updates checked against them.
        Command::CreateDescriptorSetLayout(x) => descriptor_set::create_layout(st, cmd, x)?,
        Command::DestroyDescriptorSetLayout(x) => {
            descriptor_set::destroy_layout(st, cmd, x.descriptor_set_layout)?
        }
        Command::CreatePipelineLayout(x) => descriptor_set::create_pipeline_layout(st, cmd, x)?,
        Command::DestroyPipelineLayout(x) => {
            descriptor_set::destroy_pipeline_layout(st, cmd, x.pipeline_layout)?
        }
        Command::UpdateDescriptorSets(x) => descriptor_set::update(st, cmd, x)?,
        Command::CmdPushDescriptorSetKHR(x) => descriptor_set::push(st, cmd, x)?,
        _ => {
            physical_device::check_extension_command(st, cmd)?;
            generic(st, cmd)?
        }
    };
    if flags & GENERATE_REPLY != 0 {
        transport::write_reply(st, origin.reply_key(), cmd, ret)?;
    }
    Ok(())
}

/// The dispatch table for `cmd` (by its first, dispatchable parameter).
pub fn table_for(st: &State, cmd: &Command<'_>) -> Result<Arc<DispatchTable>, Fatal> {
    match cmd.dispatch_handle() {
        None => Ok(st.renderer.global.clone()),
        Some((_, host)) => st
            .tables
            .get(&host)
            .cloned()
            .ok_or_else(|| format!("{}: no dispatch table for its handle", cmd.name())),
    }
}

/// Calls the driver for `cmd`.
pub fn call(st: &State, cmd: &Command<'_>) -> Result<CallRet, Fatal> {
    let table = table_for(st, cmd)?;
    // SAFETY: the decoder translated every handle in `cmd` to a live host handle of
    // this context and every pointer points into the decode arena.
    unsafe { call_command(&table, cmd) }
        .ok_or_else(|| format!("{} is not available on this host", cmd.name()))
}

/// The generic path: check the ids of objects being created, call the driver,
/// record what it created and forget what it destroyed.
pub fn generic(st: &mut State, cmd: &Command<'_>) -> Result<CallRet, Fatal> {
    generic_with(st, cmd, 0)
}

/// [`generic`], recording `pool` as the pool of created objects.
pub fn generic_with(st: &mut State, cmd: &Command<'_>, pool: u64) -> Result<CallRet, Fatal> {
    let mut outs: Vec<(vk::ObjectType, *mut u64, u64)> = Vec::new();
    // SAFETY: output slots point into the decode arena, sized by the decoder.
    unsafe {
        cmd.output_handles(&mut |ty, p| {
            // `p` is a valid slot (see above).
            let id = *p;
            outs.push((ty, p, id));
        })
    };
    let quota = st.renderer.context_object_quota();
    if st.objects.len().saturating_add(outs.len()) > quota {
        return Err(format!(
            "{}: object quota exceeded ({} live objects, limit {quota})",
            cmd.name(),
            st.objects.len(),
        ));
    }
    for (ty, _, id) in &outs {
        if *id == 0 || st.objects.contains(*ty, *id) {
            return Err(format!(
                "{}: object id {id} is zero or already in use",
                cmd.name()
            ));
        }
    }
    let ret = call(st, cmd)?;
    let device = match cmd.dispatch_handle() {
        Some((vk::ObjectType::DEVICE, h)) => h,
        _ => 0,
    };
    let ok = ret.result().as_raw() >= 0;
    for (ty, p, id) in outs {
        // SAFETY: as above.
        let host = unsafe { *p };
        if ok && host != 0 {
            st.objects
                .insert(ty, id, Entry { host, device, pool })
                .map_err(|e| format!("{}: cannot record object {id}: {e:?}", cmd.name()))?;
        }
        // The reply echoes the guest's id.
        // SAFETY: as above.
        unsafe { *p = id };
    }
    if let Some((ty, host)) = cmd.destroyed_handle() {
        if host != 0 {
            st.objects.remove_host(ty, host);
        }
    }
    Ok(ret)
}

/// Encodes `cmd`'s reply into a fresh buffer.
pub fn encode_reply(cmd: &Command<'_>, ret: CallRet) -> Result<Vec<u8>, Fatal> {
    let mut buf = vec![0u8; 256];
    loop {
        let mut e = Encoder::with_all(&mut buf);
        // SAFETY: output pointers in `cmd` are valid (decode arena, driver-filled).
        unsafe { encode_reply_command(&mut e, cmd, ret) };
        let need = e.position();
        if !e.overflowed() {
            buf.truncate(need);
            return Ok(buf);
        }
        if need > crate::limits::MAX_REPLY_SIZE {
            return Err(format!(
                "{}: reply of {need} bytes is too large",
                cmd.name()
            ));
        }
        buf = vec![0u8; need];
    }
}
