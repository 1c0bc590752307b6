//! vtest sync objects of one client: 64-bit timeline values, the fence timelines that
//! signal them (`SUBMIT_CMD2`), and the pending `SYNC_WAIT`s they wake.
//!
//! The semantics are virglrenderer 1.1.0's (`vtest/vtest_renderer.c`):
//!
//! * signalling a sync stores the value, even a lower one (`SYNC_WRITE` is also Mesa's
//!   reset); only a raise can satisfy waits;
//! * `SYNC_UNREF` forgets the id, but submits and waits that hold the sync still signal
//!   and see it;
//! * a `SUBMIT_CMD2` batch with syncs and the ring flag queues them on the ring's
//!   timeline behind one fence; the fence retiring signals every queued submit of that
//!   ring up to and including its own, in order;
//! * a `SYNC_WAIT` skips syncs already at their value, is ready at once when none is
//!   left (ALL) or at least one was skipped (ANY), and is otherwise kept until the
//!   syncs get there. A wait that times out is dropped without ever making its fd
//!   readable: the client's own poll with the same timeout reports the timeout.

use std::collections::{HashMap, VecDeque};
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use thiserror::Error;
use venus_protocol::vtest::{SyncPoint, SYNC_WAIT_FLAG_ANY};

use super::sys::ReadyFd;
use crate::FenceSink;

/// Fence timelines (ring indices) per client; the `GET_PARAM` answer, as virglrenderer.
pub(crate) const MAX_TIMELINE_COUNT: u32 = 64;

/// Live sync objects one client may hold.
pub(crate) const MAX_SYNCS: usize = 1 << 20;

/// Pending (unsatisfied, unexpired) `SYNC_WAIT`s one client may have; each holds an
/// fd. Mesa has at most one per waiting thread.
pub(crate) const MAX_PENDING_WAITS: usize = 256;

/// A client's sync request that cannot be carried out; it ends the client.
#[derive(Debug, Error)]
pub(crate) enum SyncError {
    /// The id names no live sync of this client.
    #[error("unknown sync id {0}")]
    UnknownSync(u32),
    /// The client holds [`MAX_SYNCS`] syncs.
    #[error("more than {MAX_SYNCS} sync objects")]
    TooManySyncs,
    /// Every sync id has been handed out.
    #[error("sync ids exhausted")]
    IdsExhausted,
    /// The client has [`MAX_PENDING_WAITS`] pending waits.
    #[error("more than {MAX_PENDING_WAITS} pending SYNC_WAITs")]
    TooManyWaits,
    /// A ring index at or above [`MAX_TIMELINE_COUNT`].
    #[error("ring index {0} is not below {MAX_TIMELINE_COUNT}")]
    BadRing(u32),
    /// The wait fd could not be created.
    #[error("cannot create a SYNC_WAIT fd: {0}")]
    Os(#[from] io::Error),
}

/// One sync object. Its value changes only under the state lock.
#[derive(Debug)]
struct SyncObject {
    value: AtomicU64,
}

/// A sync and a value: to signal it to, or to wait for.
#[derive(Debug)]
pub(crate) struct Signal {
    sync: Arc<SyncObject>,
    value: u64,
}

/// Syncs to signal when fence `fence_id` retires.
#[derive(Debug)]
struct TimelineSubmit {
    fence_id: u64,
    signals: Vec<Signal>,
}

/// A `SYNC_WAIT` not satisfied yet.
#[derive(Debug)]
struct PendingWait {
    any: bool,
    /// `None`: no timeout.
    deadline: Option<Instant>,
    /// The syncs still below their value.
    remaining: Vec<Signal>,
    fd: Arc<ReadyFd>,
}

impl PendingWait {
    fn expired(&self, now: Instant) -> bool {
        self.deadline.is_some_and(|d| d < now)
    }
}

#[derive(Debug)]
struct SyncState {
    objects: HashMap<u32, Arc<SyncObject>>,
    next_id: u32,
    next_fence_id: u64,
    timelines: Vec<VecDeque<TimelineSubmit>>,
    waits: Vec<PendingWait>,
}

/// The syncs, timelines and waits of one client's context. `Arc<Syncs>` is the
/// context's [`FenceSink`].
#[derive(Debug)]
pub(crate) struct Syncs {
    ctx_id: u32,
    state: Mutex<SyncState>,
}

impl Syncs {
    /// Empty state for context `ctx_id`.
    pub(crate) fn new(ctx_id: u32) -> Self {
        Self {
            ctx_id,
            state: Mutex::new(SyncState {
                objects: HashMap::new(),
                next_id: 1,
                next_fence_id: 1,
                timelines: (0..MAX_TIMELINE_COUNT).map(|_| VecDeque::new()).collect(),
                waits: Vec::new(),
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, SyncState> {
        // Nothing panics while holding the lock; if something did, the state is still
        // consistent enough to keep serving (and the client is going away).
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// `SYNC_CREATE`: a new sync at `initial_value`; returns its id.
    pub(crate) fn create(&self, initial_value: u64) -> Result<u32, SyncError> {
        let mut st = self.lock();
        if st.objects.len() >= MAX_SYNCS {
            return Err(SyncError::TooManySyncs);
        }
        let id = st.next_id;
        st.next_id = id.checked_add(1).ok_or(SyncError::IdsExhausted)?;
        let sync = Arc::new(SyncObject {
            value: AtomicU64::new(initial_value),
        });
        st.objects.insert(id, sync);
        Ok(id)
    }

    /// `SYNC_UNREF`: forgets `sync_id`; whether it was known (unknown ids are
    /// ignored, as virglrenderer does).
    pub(crate) fn unref(&self, sync_id: u32) -> bool {
        self.lock().objects.remove(&sync_id).is_some()
    }

    /// `SYNC_READ`: the current value.
    pub(crate) fn read(&self, sync_id: u32) -> Result<u64, SyncError> {
        let st = self.lock();
        let sync = st
            .objects
            .get(&sync_id)
            .ok_or(SyncError::UnknownSync(sync_id))?;
        Ok(sync.value.load(Ordering::Relaxed))
    }

    /// `SYNC_WRITE`: sets the value (lower values too) and wakes what it satisfies.
    pub(crate) fn write(&self, sync_id: u32, value: u64) -> Result<(), SyncError> {
        let mut st = self.lock();
        let sync = Arc::clone(
            st.objects
                .get(&sync_id)
                .ok_or(SyncError::UnknownSync(sync_id))?,
        );
        signal_locked(&mut st, &sync, value, Instant::now());
        Ok(())
    }

    /// Looks up the syncs a `SUBMIT_CMD2` batch names.
    pub(crate) fn resolve(&self, points: &[SyncPoint]) -> Result<Vec<Signal>, SyncError> {
        let st = self.lock();
        points
            .iter()
            .map(|p| {
                let sync = st
                    .objects
                    .get(&p.sync_id)
                    .ok_or(SyncError::UnknownSync(p.sync_id))?;
                Ok(Signal {
                    sync: Arc::clone(sync),
                    value: p.value,
                })
            })
            .collect()
    }

    /// Signals now (a batch without the ring flag).
    pub(crate) fn signal_now(&self, signals: Vec<Signal>) {
        let mut st = self.lock();
        let now = Instant::now();
        for s in &signals {
            signal_locked(&mut st, &s.sync, s.value, now);
        }
    }

    /// Queues `signals` on timeline `ring_idx` and returns the fence id to submit on
    /// that ring; its retirement (through [`FenceSink`]) signals them.
    pub(crate) fn queue_on_timeline(
        &self,
        ring_idx: u32,
        signals: Vec<Signal>,
    ) -> Result<u64, SyncError> {
        let mut st = self.lock();
        let fence_id = st.next_fence_id;
        st.next_fence_id = fence_id.wrapping_add(1);
        let timeline = st
            .timelines
            .get_mut(ring_idx as usize)
            .ok_or(SyncError::BadRing(ring_idx))?;
        timeline.push_back(TimelineSubmit { fence_id, signals });
        Ok(fence_id)
    }

    /// `SYNC_WAIT`: the fd to hand to the client. `timeout_ms` above `i32::MAX` means
    /// no timeout (Mesa sends `u32::MAX`); 0 means poll.
    pub(crate) fn wait(
        &self,
        flags: u32,
        timeout_ms: u32,
        points: &[SyncPoint],
    ) -> Result<Arc<ReadyFd>, SyncError> {
        let fd = Arc::new(ReadyFd::new()?);
        let mut st = self.lock();
        let mut remaining = Vec::new();
        for p in points {
            let sync = st
                .objects
                .get(&p.sync_id)
                .ok_or(SyncError::UnknownSync(p.sync_id))?;
            if sync.value.load(Ordering::Relaxed) < p.value {
                remaining.push(Signal {
                    sync: Arc::clone(sync),
                    value: p.value,
                });
            }
        }
        let any = flags & SYNC_WAIT_FLAG_ANY != 0;
        if remaining.is_empty() || (any && remaining.len() < points.len()) {
            fd.signal();
            return Ok(fd);
        }
        if timeout_ms == 0 {
            // Already timed out: never readable.
            return Ok(fd);
        }
        let now = Instant::now();
        st.waits.retain(|w| !w.expired(now));
        if st.waits.len() >= MAX_PENDING_WAITS {
            return Err(SyncError::TooManyWaits);
        }
        let deadline = if i32::try_from(timeout_ms).is_ok() {
            now.checked_add(Duration::from_millis(u64::from(timeout_ms)))
        } else {
            None
        };
        st.waits.push(PendingWait {
            any,
            deadline,
            remaining,
            fd: Arc::clone(&fd),
        });
        Ok(fd)
    }

    /// Number of waits kept (pending or expired but not yet collected).
    #[cfg(test)]
    pub(crate) fn waits_kept(&self) -> usize {
        self.lock().waits.len()
    }
}

impl FenceSink for Syncs {
    fn fence_retired(&self, ctx_id: u32, ring_idx: u32, fence_id: u64) {
        if ctx_id != self.ctx_id {
            tracing::warn!(
                ctx_id,
                expected = self.ctx_id,
                "fence retired on the wrong context; ignored"
            );
            return;
        }
        let mut st = self.lock();
        let Some(timeline) = st.timelines.get_mut(ring_idx as usize) else {
            tracing::warn!(
                ctx_id,
                ring_idx,
                fence_id,
                "fence retired on an unknown ring; ignored"
            );
            return;
        };
        let mut retired = Vec::new();
        while timeline.front().is_some_and(|s| s.fence_id <= fence_id) {
            retired.extend(timeline.pop_front());
        }
        tracing::trace!(
            ctx_id,
            ring_idx,
            fence_id,
            submits = retired.len(),
            "fence retired"
        );
        let now = Instant::now();
        for submit in retired {
            for s in &submit.signals {
                signal_locked(&mut st, &s.sync, s.value, now);
            }
        }
    }
}

/// Sets `sync` to `value`; on a raise, wakes the waits it completes and drops expired
/// ones (virglrenderer's `vtest_signal_sync`).
fn signal_locked(st: &mut SyncState, sync: &Arc<SyncObject>, value: u64, now: Instant) {
    let old = sync.value.swap(value, Ordering::Relaxed);
    if old >= value {
        return;
    }
    st.waits.retain_mut(|wait| {
        if wait.expired(now) {
            return false;
        }
        let before = wait.remaining.len();
        wait.remaining
            .retain(|w| !(Arc::ptr_eq(&w.sync, sync) && w.value <= value));
        if wait.remaining.len() == before {
            return true;
        }
        if wait.remaining.is_empty() || wait.any {
            wait.fd.signal();
            return false;
        }
        true
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vtest_server::sys::poll_readable;

    const INFINITE: u32 = u32::MAX;

    fn readable(fd: &ReadyFd) -> bool {
        poll_readable(&[fd.client_fd()], 0).expect("poll") == vec![true]
    }

    fn point(sync_id: u32, value: u64) -> SyncPoint {
        SyncPoint { sync_id, value }
    }

    #[test]
    fn create_read_write_and_lowering() {
        let syncs = Syncs::new(1);
        let a = syncs.create(5).unwrap();
        let b = syncs.create(0).unwrap();
        assert_ne!(a, b);
        assert_eq!(syncs.read(a).unwrap(), 5);
        syncs.write(a, 9).unwrap();
        assert_eq!(syncs.read(a).unwrap(), 9);
        // A write is absolute: Mesa resets syncs by writing a lower value.
        syncs.write(a, 2).unwrap();
        assert_eq!(syncs.read(a).unwrap(), 2);
        assert_eq!(syncs.read(b).unwrap(), 0);
        assert!(matches!(syncs.read(99), Err(SyncError::UnknownSync(99))));
        assert!(matches!(
            syncs.write(99, 1),
            Err(SyncError::UnknownSync(99))
        ));
        assert!(syncs.unref(a));
        assert!(!syncs.unref(a));
        assert!(matches!(syncs.read(a), Err(SyncError::UnknownSync(_))));
    }

    #[test]
    fn wait_all_needs_every_sync() {
        let syncs = Syncs::new(1);
        let a = syncs.create(0).unwrap();
        let b = syncs.create(0).unwrap();
        let fd = syncs
            .wait(0, INFINITE, &[point(a, 3), point(b, 1)])
            .unwrap();
        assert!(!readable(&fd));
        syncs.write(a, 2).unwrap();
        assert!(!readable(&fd));
        syncs.write(a, 3).unwrap();
        assert!(!readable(&fd));
        syncs.write(b, 1).unwrap();
        assert!(readable(&fd));
        assert_eq!(syncs.waits_kept(), 0);
    }

    #[test]
    fn wait_any_is_ready_on_the_first_sync() {
        let syncs = Syncs::new(1);
        let a = syncs.create(0).unwrap();
        let b = syncs.create(4).unwrap();
        // One already reached: ready at once.
        let fd = syncs
            .wait(SYNC_WAIT_FLAG_ANY, INFINITE, &[point(a, 1), point(b, 4)])
            .unwrap();
        assert!(readable(&fd));
        // None reached yet: ready when one gets there.
        let fd = syncs
            .wait(SYNC_WAIT_FLAG_ANY, INFINITE, &[point(a, 1), point(b, 5)])
            .unwrap();
        assert!(!readable(&fd));
        syncs.write(b, 7).unwrap();
        assert!(readable(&fd));
        // ALL with one reached still waits.
        let fd = syncs
            .wait(0, INFINITE, &[point(a, 1), point(b, 5)])
            .unwrap();
        assert!(!readable(&fd));
    }

    #[test]
    fn wait_on_reached_values_and_empty_waits_are_ready() {
        let syncs = Syncs::new(1);
        let a = syncs.create(10).unwrap();
        assert!(readable(&syncs.wait(0, 0, &[point(a, 10)]).unwrap()));
        assert!(readable(&syncs.wait(0, 0, &[]).unwrap()));
        assert!(matches!(
            syncs.wait(0, 0, &[point(a, 1), point(42, 1)]),
            Err(SyncError::UnknownSync(42))
        ));
    }

    #[test]
    fn timed_out_waits_never_become_readable() {
        let syncs = Syncs::new(1);
        let a = syncs.create(0).unwrap();
        // Timeout 0: not kept at all.
        let polled = syncs.wait(0, 0, &[point(a, 1)]).unwrap();
        assert_eq!(syncs.waits_kept(), 0);
        // A short timeout: kept, then dropped unsignalled once expired.
        let short = syncs.wait(0, 1, &[point(a, 1)]).unwrap();
        assert_eq!(syncs.waits_kept(), 1);
        std::thread::sleep(Duration::from_millis(20));
        syncs.write(a, 1).unwrap();
        assert!(!readable(&polled));
        assert!(!readable(&short));
        assert_eq!(syncs.waits_kept(), 0);
    }

    #[test]
    fn lowering_does_not_wake_and_raising_again_does() {
        let syncs = Syncs::new(1);
        let a = syncs.create(5).unwrap();
        let fd = syncs.wait(0, INFINITE, &[point(a, 6)]).unwrap();
        syncs.write(a, 1).unwrap();
        assert!(!readable(&fd));
        syncs.write(a, 6).unwrap();
        assert!(readable(&fd));
    }

    #[test]
    fn unreffed_syncs_still_signal_their_waits() {
        let syncs = Syncs::new(1);
        let a = syncs.create(0).unwrap();
        let signals = syncs.resolve(&[point(a, 2)]).unwrap();
        let fence = syncs.queue_on_timeline(3, signals).unwrap();
        let fd = syncs.wait(0, INFINITE, &[point(a, 2)]).unwrap();
        assert!(syncs.unref(a));
        syncs.fence_retired(1, 3, fence);
        assert!(readable(&fd));
    }

    #[test]
    fn fences_retire_their_timeline_in_order() {
        let syncs = Syncs::new(7);
        let a = syncs.create(0).unwrap();
        let b = syncs.create(0).unwrap();
        let f1 = syncs
            .queue_on_timeline(1, syncs.resolve(&[point(a, 1)]).unwrap())
            .unwrap();
        let f2 = syncs
            .queue_on_timeline(1, syncs.resolve(&[point(a, 2)]).unwrap())
            .unwrap();
        let f3 = syncs
            .queue_on_timeline(2, syncs.resolve(&[point(b, 5)]).unwrap())
            .unwrap();
        assert!(f1 < f2 && f2 < f3);

        // Wrong context or ring: ignored.
        syncs.fence_retired(8, 1, f2);
        syncs.fence_retired(7, MAX_TIMELINE_COUNT, f2);
        assert_eq!(syncs.read(a).unwrap(), 0);

        // Retiring f2 retires f1 too, in order; ring 2 is untouched.
        syncs.fence_retired(7, 1, f2);
        assert_eq!(syncs.read(a).unwrap(), 2);
        assert_eq!(syncs.read(b).unwrap(), 0);
        // A repeated retirement changes nothing.
        syncs.write(a, 0).unwrap();
        syncs.fence_retired(7, 1, f2);
        assert_eq!(syncs.read(a).unwrap(), 0);

        syncs.fence_retired(7, 2, f3);
        assert_eq!(syncs.read(b).unwrap(), 5);
    }

    #[test]
    fn signal_now_and_bad_rings() {
        let syncs = Syncs::new(1);
        let a = syncs.create(0).unwrap();
        let fd = syncs.wait(0, INFINITE, &[point(a, 4)]).unwrap();
        syncs.signal_now(syncs.resolve(&[point(a, 4)]).unwrap());
        assert!(readable(&fd));
        assert!(matches!(
            syncs.resolve(&[point(a, 1), point(5, 1)]),
            Err(SyncError::UnknownSync(5))
        ));
        assert!(matches!(
            syncs.queue_on_timeline(MAX_TIMELINE_COUNT, Vec::new()),
            Err(SyncError::BadRing(64))
        ));
    }

    #[test]
    fn pending_waits_are_bounded() {
        let syncs = Syncs::new(1);
        let a = syncs.create(0).unwrap();
        for _ in 0..MAX_PENDING_WAITS {
            syncs.wait(0, INFINITE, &[point(a, 1)]).unwrap();
        }
        assert!(matches!(
            syncs.wait(0, INFINITE, &[point(a, 1)]),
            Err(SyncError::TooManyWaits)
        ));
        // Satisfying them frees the room.
        syncs.write(a, 1).unwrap();
        assert_eq!(syncs.waits_kept(), 0);
        syncs.wait(0, INFINITE, &[point(a, 2)]).unwrap();
    }
}
