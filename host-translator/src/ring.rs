//! Rings: shared-memory command queues the guest fills and a host thread drains.
//!
//! Protocol (see ../shared/VENUS-WIRE.md §10): the guest writes commands then the
//! tail (release); this thread copies `[head, tail)` out, runs it, and stores the
//! new head (release). With nothing to do for the ring's idle timeout it sets
//! STATUS_IDLE and sleeps until `vkNotifyRingMESA`. With a ring monitor it sets
//! STATUS_ALIVE at least once per reporting period.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use venus_protocol::generated::host_calls::CallRet;
use venus_protocol::generated::CreateRingMESAArgs;
use venus_protocol::mesa::{RingCreateInfoMESA, RingMonitorInfoMESA};
use venus_protocol::ring::{
    self, RingCreateInfo, ValidatedRing, STATUS_ALIVE, STATUS_FATAL, STATUS_IDLE,
};

use crate::context::{Shared, State};
use crate::executor::{execute, Fatal, Origin};
use crate::shmem::Shmem;

/// How long the thread polls (yielding) after work before it sleeps in short naps.
const SPIN: Duration = Duration::from_micros(50);
/// The first nap between polls after spinning; naps double up to [`NAP_MAX`]
/// until the idle timeout passes (a command arriving shortly after the last one
/// waits little; a quiet ring costs little CPU).
const NAP_MIN: Duration = Duration::from_micros(10);
/// The longest nap before going idle.
const NAP_MAX: Duration = Duration::from_micros(200);

/// State a ring shares with its thread and with `vkWaitRingSeqnoMESA` waiters.
pub(crate) struct RingShared {
    id: u64,
    shm: Arc<Shmem>,
    layout: ValidatedRing,
    /// The head as processed, for waiters.
    progress: Mutex<u32>,
    progress_cond: Condvar,
    /// Set by `vkNotifyRingMESA`.
    woken: Mutex<bool>,
    wake_cond: Condvar,
    stop: AtomicBool,
    idle_timeout: Duration,
    monitor_period: Option<Duration>,
}

/// A ring and its thread.
pub(crate) struct Ring {
    shared: Arc<RingShared>,
    thread: Option<JoinHandle<()>>,
}

impl Ring {
    /// Stops the thread and waits for it.
    pub fn stop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        self.shared.wake();
        self.shared.progress_cond.notify_all();
        if let Some(t) = self.thread.take() {
            if t.thread().id() != std::thread::current().id() {
                let _ = t.join();
            }
        }
    }
}

impl Drop for Ring {
    fn drop(&mut self) {
        self.stop();
    }
}

impl RingShared {
    fn status(&self) -> Option<&std::sync::atomic::AtomicU32> {
        self.shm.atomic_u32(self.layout.status.begin)
    }
    fn set_status(&self, bits: u32) {
        if let Some(s) = self.status() {
            s.fetch_or(bits, Ordering::SeqCst);
        }
    }
    fn clear_status(&self, bits: u32) {
        if let Some(s) = self.status() {
            s.fetch_and(!bits, Ordering::SeqCst);
        }
    }
    fn wake(&self) {
        *self.woken.lock().unwrap_or_else(|p| p.into_inner()) = true;
        self.wake_cond.notify_all();
    }
    fn tail(&self) -> u32 {
        self.shm
            .atomic_u32(self.layout.tail.begin)
            .map(|t| t.load(Ordering::Acquire))
            .unwrap_or(0)
    }
    fn publish_head(&self, head: u32) {
        if let Some(h) = self.shm.atomic_u32(self.layout.head.begin) {
            h.store(head, Ordering::Release);
        }
        *self.progress.lock().unwrap_or_else(|p| p.into_inner()) = head;
        self.progress_cond.notify_all();
    }
    /// Copies `[cur, tail)` out of the buffer.
    fn copy_out(&self, cur: u32, tail: u32) -> Result<Vec<u8>, String> {
        let spans =
            ring::spans_between(cur, tail, self.layout.buffer_size).map_err(|e| e.to_string())?;
        let mut data = Vec::with_capacity(spans.total_len() as usize);
        for s in spans.iter() {
            let bytes = self
                .shm
                .read(
                    self.layout.buffer.begin + u64::from(s.offset),
                    u64::from(s.len),
                )
                .ok_or("ring span outside its buffer")?;
            data.extend_from_slice(&bytes);
        }
        Ok(data)
    }
}

fn monitor_period(info: &RingCreateInfoMESA) -> Option<Duration> {
    // SAFETY: a decoder-built chain of this command.
    let p = unsafe { crate::chain_edit::find(info.p_next, 1_000_384_006) }?;
    // SAFETY: this sType is RingMonitorInfoMESA, which the decoder built.
    let m = unsafe { &*(p as *const RingMonitorInfoMESA) };
    Some(Duration::from_micros(
        u64::from(m.max_reporting_period_microseconds).max(1000),
    ))
}

/// `vkCreateRingMESA`.
pub fn create(
    shared: &Arc<Shared>,
    st: &mut State,
    x: &CreateRingMESAArgs<'_>,
) -> Result<CallRet, Fatal> {
    // SAFETY: a non-null pointer from the decoder points at a decoded arena struct.
    let info = unsafe { x.p_create_info.as_ref() }.ok_or("vkCreateRingMESA without create info")?;
    if st.rings.contains_key(&x.ring) || x.ring == 0 {
        return Err(format!("ring id {:#x} is zero or in use", x.ring));
    }
    if st.rings.len() >= crate::limits::MAX_RINGS {
        return Err("too many rings".into());
    }
    let shm = st
        .resources
        .get(&info.resource_id)
        .cloned()
        .ok_or_else(|| format!("ring names unknown resource {}", info.resource_id))?;
    let layout = RingCreateInfo {
        resource_size: shm.size(),
        offset: info.offset as u64,
        size: info.size as u64,
        head_offset: info.head_offset as u64,
        tail_offset: info.tail_offset as u64,
        status_offset: info.status_offset as u64,
        buffer_offset: info.buffer_offset as u64,
        buffer_size: info.buffer_size as u64,
        extra_offset: info.extra_offset as u64,
        extra_size: info.extra_size as u64,
    };
    let layout =
        ring::RingLayout::validate(&layout).map_err(|e| format!("bad ring layout: {e}"))?;
    let head = shm
        .atomic_u32(layout.head.begin)
        .map(|a| a.load(Ordering::Acquire));
    let status = shm
        .atomic_u32(layout.status.begin)
        .map(|a| a.load(Ordering::Acquire));
    if head != Some(0) || status != Some(0) {
        return Err("a new ring must start with head = status = 0".into());
    }
    let rs = Arc::new(RingShared {
        id: x.ring,
        shm,
        layout,
        progress: Mutex::new(0),
        progress_cond: Condvar::new(),
        woken: Mutex::new(false),
        wake_cond: Condvar::new(),
        stop: AtomicBool::new(false),
        idle_timeout: Duration::from_nanos(info.idle_timeout.clamp(10_000, 1_000_000_000)),
        monitor_period: monitor_period(info),
    });
    let ctx = shared.clone();
    let thread_rs = rs.clone();
    let thread = std::thread::Builder::new()
        .name(format!("venus-ring-{}", shared.id))
        .spawn(move || {
            let r =
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run(&ctx, &thread_rs)));
            if r.is_err() {
                thread_rs.set_status(STATUS_FATAL);
                ctx.set_fatal("panic in a ring thread");
            }
        })
        .map_err(|e| format!("cannot start a ring thread: {e}"))?;
    tracing::debug!(ctx = shared.id, ring = x.ring, "ring created");
    st.rings.insert(
        x.ring,
        Ring {
            shared: rs,
            thread: Some(thread),
        },
    );
    Ok(CallRet::Void)
}

/// Threads of rings the guest destroyed, with the address of their context's
/// [`Shared`]: they exit at their next check, but may still be inside a host
/// wait that runs without the context lock (vkWaitForFences, vkQueueWaitIdle...),
/// so the context's teardown joins them ([`join_destroyed`]) before it destroys
/// the device objects under such a wait.
static DESTROYED: Mutex<Vec<(usize, JoinHandle<()>)>> = Mutex::new(Vec::new());

/// `vkDestroyRingMESA`.
pub fn destroy(shared: &Arc<Shared>, st: &mut State, id: u64) -> Result<CallRet, Fatal> {
    let mut ring = st
        .rings
        .remove(&id)
        .ok_or_else(|| format!("destroy of unknown ring {id:#x}"))?;
    st.replies.remove(&id);
    // The ring thread may be waiting for this very lock: flag it and let it go
    // (it is joined at teardown).
    ring.shared.stop.store(true, Ordering::SeqCst);
    ring.shared.wake();
    if let Some(t) = ring.thread.take() {
        let mut destroyed = DESTROYED.lock().unwrap_or_else(|p| p.into_inner());
        destroyed.retain(|(_, t)| !t.is_finished());
        destroyed.push((Arc::as_ptr(shared) as usize, t));
    }
    Ok(CallRet::Void)
}

/// Joins the threads of the rings context `shared` destroyed (teardown; called
/// without the context lock, which they may be waiting for).
pub fn join_destroyed(shared: &Shared) {
    let key = shared as *const Shared as usize;
    let mine: Vec<JoinHandle<()>> = {
        let mut destroyed = DESTROYED.lock().unwrap_or_else(|p| p.into_inner());
        let (mine, rest) = std::mem::take(&mut *destroyed)
            .into_iter()
            .partition(|(k, _)| *k == key);
        *destroyed = rest;
        mine.into_iter().map(|(_, t)| t).collect()
    };
    for t in mine {
        if t.thread().id() != std::thread::current().id() {
            let _ = t.join();
        }
    }
}

/// `vkNotifyRingMESA`.
pub fn notify(st: &mut State, id: u64) -> Result<CallRet, Fatal> {
    let ring = st
        .rings
        .get(&id)
        .ok_or_else(|| format!("notify of unknown ring {id:#x}"))?;
    ring.shared.wake();
    Ok(CallRet::Void)
}

/// `vkWriteRingExtraMESA`.
pub fn write_extra(st: &mut State, id: u64, offset: usize, value: u32) -> Result<CallRet, Fatal> {
    let ring = st
        .rings
        .get(&id)
        .ok_or_else(|| format!("write to unknown ring {id:#x}"))?;
    let extra = ring.shared.layout.extra;
    let at = extra
        .begin
        .checked_add(offset as u64)
        .filter(|a| a.checked_add(4).is_some_and(|e| e <= extra.end))
        .ok_or_else(|| format!("ring extra offset {offset} out of range"))?;
    if !ring.shared.shm.write(at, &value.to_le_bytes()) {
        return Err("ring extra outside its resource".into());
    }
    Ok(CallRet::Void)
}

/// `vkWaitRingSeqnoMESA` (out of ring): waits until ring `id` has processed `seqno`.
pub fn wait_ring_seqno(shared: &Shared, id: u64, seqno: u64) -> Result<(), Fatal> {
    let rs = {
        let st = shared.lock();
        st.rings
            .get(&id)
            .map(|r| r.shared.clone())
            .ok_or_else(|| format!("wait on unknown ring {id:#x}"))?
    };
    let seqno = seqno as u32;
    // The guest writes the tail before it asks to wait (Mesa waits only for
    // seqnos it submitted). A seqno past the tail may never be reached: the wait
    // would hold this context's submitting thread for good.
    let tail = rs.tail();
    if !ring::seqno_passed(tail, seqno) {
        return Err(format!(
            "vkWaitRingSeqnoMESA for seqno {seqno} beyond the ring's tail {tail}"
        ));
    }
    let mut head = rs.progress.lock().unwrap_or_else(|p| p.into_inner());
    while !ring::seqno_passed(*head, seqno) {
        if shared.is_fatal() || rs.stop.load(Ordering::SeqCst) {
            return Err("ring stopped while waited on".into());
        }
        let (g, _) = rs
            .progress_cond
            .wait_timeout(head, Duration::from_millis(100))
            .unwrap_or_else(|p| p.into_inner());
        head = g;
    }
    Ok(())
}

/// The ring thread.
fn run(ctx: &Arc<Shared>, rs: &RingShared) {
    let mut cur: u32 = 0;
    let mut last_work = Instant::now();
    let mut last_alive = Instant::now();
    let mut nap = NAP_MIN;
    rs.set_status(STATUS_ALIVE);
    while !rs.stop.load(Ordering::SeqCst) {
        if ctx.is_fatal() {
            rs.set_status(STATUS_FATAL);
            break;
        }
        if let Some(period) = rs.monitor_period {
            if last_alive.elapsed() >= period / 2 {
                rs.set_status(STATUS_ALIVE);
                last_alive = Instant::now();
            }
        }
        let tail = rs.tail();
        if tail != cur {
            let r = rs
                .copy_out(cur, tail)
                .and_then(|data| execute(ctx, &data, Origin::Ring(rs.id)));
            if let Err(e) = r {
                rs.set_status(STATUS_FATAL);
                ctx.set_fatal(&format!("ring {:#x}: {e}", rs.id));
                break;
            }
            cur = tail;
            rs.publish_head(cur);
            last_work = Instant::now();
            nap = NAP_MIN;
            continue;
        }
        let idle_for = last_work.elapsed();
        if idle_for < SPIN {
            std::thread::yield_now();
            continue;
        }
        if idle_for < rs.idle_timeout {
            std::thread::sleep(nap);
            nap = (nap * 2).min(NAP_MAX);
            continue;
        }
        // Go idle: announce it, then re-check the tail so no notify can be missed.
        rs.set_status(STATUS_IDLE);
        if rs.tail() != cur {
            rs.clear_status(STATUS_IDLE);
            continue;
        }
        let sleep = rs
            .monitor_period
            .map(|p| p / 2)
            .unwrap_or(Duration::from_secs(1));
        let mut woken = rs.woken.lock().unwrap_or_else(|p| p.into_inner());
        if !*woken {
            let (g, _) = rs
                .wake_cond
                .wait_timeout(woken, sleep)
                .unwrap_or_else(|p| p.into_inner());
            woken = g;
        }
        let was_woken = *woken;
        *woken = false;
        drop(woken);
        if was_woken || rs.tail() != cur {
            rs.clear_status(STATUS_IDLE);
            last_work = Instant::now();
            nap = NAP_MIN;
        }
    }
    tracing::debug!(ctx = ctx.id, ring = rs.id, "ring thread exits");
}
