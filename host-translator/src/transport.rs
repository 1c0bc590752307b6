//! The Venus transport commands: reply streams, command streams in shared memory,
//! and the virtqueue seqno.

use std::time::Duration;

use venus_protocol::generated::host_calls::CallRet;
use venus_protocol::generated::{
    Command, ExecuteCommandStreamsMESAArgs, SetReplyCommandStreamMESAArgs,
};

use crate::context::{ReplyStream, Shared, State};
use crate::executor::{encode_reply, execute, Fatal, Origin};

/// `vkSetReplyCommandStreamMESA`: replies go to `resource[offset..offset+size]`, from position 0.
pub fn set_reply_stream(
    st: &mut State,
    key: u64,
    x: &SetReplyCommandStreamMESAArgs<'_>,
) -> Result<CallRet, Fatal> {
    // SAFETY: a non-null pointer from the decoder points at a decoded struct in the arena.
    let Some(s) = (unsafe { x.p_stream.as_ref() }) else {
        return Err("vkSetReplyCommandStreamMESA without a stream".into());
    };
    let shm = st
        .resources
        .get(&s.resource_id)
        .cloned()
        .ok_or_else(|| format!("reply stream names unknown resource {}", s.resource_id))?;
    let (offset, size) = (s.offset as u64, s.size as u64);
    if !shm.contains(offset, size) {
        return Err(format!(
            "reply stream [{offset}, +{size}) lies outside resource {} ({} bytes)",
            s.resource_id,
            shm.size()
        ));
    }
    st.replies.insert(
        key,
        ReplyStream {
            shm,
            offset,
            size,
            pos: 0,
        },
    );
    Ok(CallRet::Void)
}

/// `vkSeekReplyCommandStreamMESA`.
pub fn seek_reply_stream(st: &mut State, key: u64, position: usize) -> Result<CallRet, Fatal> {
    let rs = st
        .replies
        .get_mut(&key)
        .ok_or("seek with no reply stream")?;
    if position as u64 > rs.size {
        return Err(format!(
            "reply seek to {position} past the stream end {}",
            rs.size
        ));
    }
    rs.pos = position as u64;
    Ok(CallRet::Void)
}

/// Writes `cmd`'s reply at the reply stream's position and advances it.
pub fn write_reply(st: &mut State, key: u64, cmd: &Command<'_>, ret: CallRet) -> Result<(), Fatal> {
    let bytes = encode_reply(cmd, ret)?;
    let rs = st
        .replies
        .get_mut(&key)
        .ok_or_else(|| format!("{} asks for a reply but no reply stream is set", cmd.name()))?;
    let end = rs
        .pos
        .checked_add(bytes.len() as u64)
        .filter(|e| *e <= rs.size)
        .ok_or_else(|| {
            format!(
                "{}: reply of {} bytes overflows the reply stream ({} of {} used)",
                cmd.name(),
                bytes.len(),
                rs.pos,
                rs.size
            )
        })?;
    if !rs.shm.write(rs.offset + rs.pos, &bytes) {
        return Err("reply stream outside its resource".into());
    }
    rs.pos = end;
    Ok(())
}

/// `vkExecuteCommandStreamsMESA`: runs each stream (copied out of its resource),
/// with the reply position set first when given.
pub fn execute_command_streams(
    shared: &std::sync::Arc<Shared>,
    x: &ExecuteCommandStreamsMESAArgs<'_>,
    key: u64,
) -> Result<(), Fatal> {
    let n = x.stream_count as usize;
    if n == 0 {
        return Ok(());
    }
    if x.p_streams.is_null() {
        return Err("vkExecuteCommandStreamsMESA without streams".into());
    }
    for i in 0..n {
        // SAFETY: the decoder allocated `stream_count` elements for a non-null array.
        let s = unsafe { &*x.p_streams.add(i) };
        let data = {
            let mut st = shared.lock();
            if !x.p_reply_positions.is_null() {
                // SAFETY: same count as p_streams (checked by the decoder).
                let pos = unsafe { *x.p_reply_positions.add(i) };
                seek_reply_stream(&mut st, key, pos)?;
            }
            let shm = st.resources.get(&s.resource_id).ok_or_else(|| {
                format!("command stream names unknown resource {}", s.resource_id)
            })?;
            shm.read(s.offset as u64, s.size as u64).ok_or_else(|| {
                format!(
                    "command stream [{}, +{}) lies outside resource {}",
                    s.offset, s.size, s.resource_id
                )
            })?
        };
        execute(shared, &data, Origin::Stream(key))?;
    }
    Ok(())
}

/// `vkSubmitVirtqueueSeqnoMESA`: the virtqueue has reached `seqno`.
pub fn submit_virtqueue_seqno(shared: &Shared, seqno: u64) -> CallRet {
    let mut v = shared.vq_seqno.lock().unwrap_or_else(|p| p.into_inner());
    if seqno > *v {
        *v = seqno;
    }
    shared.vq_cond.notify_all();
    CallRet::Void
}

/// `vkWaitVirtqueueSeqnoMESA` (on a ring): waits until the virtqueue reaches `seqno`.
pub fn wait_virtqueue_seqno(shared: &Shared, seqno: u64) -> Result<(), Fatal> {
    let mut v = shared.vq_seqno.lock().unwrap_or_else(|p| p.into_inner());
    while *v < seqno {
        if shared.is_fatal() {
            return Err("context is fatal".into());
        }
        let (g, _) = shared
            .vq_cond
            .wait_timeout(v, Duration::from_millis(100))
            .unwrap_or_else(|p| p.into_inner());
        v = g;
    }
    Ok(())
}
