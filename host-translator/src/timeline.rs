//! Fence timelines. Timeline 0 is the CPU: commands run as they arrive, so its
//! fences retire at once. Timeline N > 0 is the queue the guest bound to ring_idx
//! N (`VkDeviceQueueTimelineInfoMESA`): a fence there retires when everything
//! submitted to that queue before it is done. Retirements are in order per timeline.

use std::sync::mpsc;
use std::sync::Arc;
use std::thread::JoinHandle;

use ash::vk;
use ash::vk::Handle;

use crate::context::{FenceSink, Shared};

/// One queue timeline and its waiter thread.
pub(crate) struct Timeline {
    device: u64,
    tx: Option<mpsc::Sender<(vk::Fence, u64)>>,
    thread: Option<JoinHandle<()>>,
}

impl Timeline {
    /// The host device of the queue.
    pub fn device(&self) -> u64 {
        self.device
    }
}

impl Drop for Timeline {
    fn drop(&mut self) {
        self.tx = None; // the waiter drains what is queued, then exits
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Queues fence `fence_id` on timeline `ring_idx`.
pub fn submit_fence(shared: &Arc<Shared>, ring_idx: u32, fence_id: u64) -> Result<(), String> {
    if shared.is_fatal() {
        return Err("context is fatal".into());
    }
    if ring_idx == 0 {
        shared.fences.fence_retired(shared.id, 0, fence_id);
        return Ok(());
    }
    let mut st = shared.lock();
    let (device, queue) = *st
        .queue_of_ring
        .get(&ring_idx)
        .ok_or_else(|| format!("fence on ring_idx {ring_idx}, which no queue is bound to"))?;
    let dev = st
        .devices
        .get(&device)
        .ok_or("timeline of an unknown device")?;
    let ash_dev = dev.ash.clone();
    // SAFETY: live device; the queue is externally synchronized by the context lock.
    let fence = unsafe { ash_dev.create_fence(&vk::FenceCreateInfo::default(), None) }
        .map_err(|r| format!("host vkCreateFence failed: {r:?}"))?;
    // SAFETY: as above; an empty submit that only signals `fence`.
    if let Err(r) = unsafe { ash_dev.queue_submit(vk::Queue::from_raw(queue), &[], fence) } {
        // SAFETY: the fence is ours and unused.
        unsafe { ash_dev.destroy_fence(fence, None) };
        return Err(format!("host fence submit failed: {r:?}"));
    }
    if let std::collections::hash_map::Entry::Vacant(slot) = st.timelines.entry(ring_idx) {
        let (tx, rx) = mpsc::channel::<(vk::Fence, u64)>();
        let sink: Arc<dyn FenceSink> = shared.fences.clone();
        let ctx = shared.id;
        let dev2 = ash_dev.clone();
        let thread = std::thread::Builder::new()
            .name(format!("venus-timeline-{ctx}-{ring_idx}"))
            .spawn(move || {
                let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    for (fence, id) in rx {
                        // SAFETY: the fence is ours, submitted above; the device outlives
                        // this thread (timelines are dropped before their device).
                        unsafe {
                            let _ = dev2.wait_for_fences(&[fence], true, u64::MAX);
                            dev2.destroy_fence(fence, None);
                        }
                        sink.fence_retired(ctx, ring_idx, id);
                    }
                }));
                if r.is_err() {
                    tracing::error!(
                        ctx,
                        ring_idx,
                        "panic in a fence timeline thread; its later fences will not retire"
                    );
                }
            })
            .map_err(|e| format!("cannot start a timeline thread: {e}"))?;
        slot.insert(Timeline {
            device,
            tx: Some(tx),
            thread: Some(thread),
        });
    }
    if let Some(tx) = st.timelines.get(&ring_idx).and_then(|t| t.tx.as_ref()) {
        tx.send((fence, fence_id))
            .map_err(|_| "timeline thread gone".to_string())?;
    }
    Ok(())
}
