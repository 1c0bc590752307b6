//! Fences: what the guest can know about a fence's state without asking the host.
//!
//! A fence changes state only through commands that pass through this ICD: it is
//! created signaled or not, becomes pending when a queue submission names it, is
//! signaled by the host some time after that, and becomes unsignaled again only
//! with `vkResetFences`. So the ICD tracks, per fence, one of:
//!
//! - **unsignaled**: created without `VK_FENCE_CREATE_SIGNALED_BIT` or reset, and
//!   not submitted since: nothing can signal it, `vkGetFenceStatus` is `NOT_READY`
//!   without a round trip;
//! - **signaled**: created signaled, or the host said so (a `vkGetFenceStatus` or a
//!   wait-all `vkWaitForFences` that succeeded): it stays signaled until reset, so
//!   `vkGetFenceStatus` and waits on it answer `SUCCESS` locally;
//! - **pending**: submitted since the last reset: only the host knows; every query
//!   and wait goes to the host, as before.
//!
//! Fences the ICD did not see created (its own internal ones) are not tracked and
//! always go to the host. A lost connection answers `VK_ERROR_DEVICE_LOST` in
//! every case. Mesa venus reaches the same local answers differently: it appends a
//! command that writes each fence's status into shared memory (fence feedback),
//! which also answers polls of pending fences locally; here a pending fence still
//! costs one round trip per query.

use ash::vk;
use ash::vk::Handle;
use venus_protocol::generated::guest_calls as gc;

use crate::device::device;
use crate::dispatch::Rt;
use crate::guard;
use crate::id_table::IdTable;

/// What the guest knows about a fence.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Unsignaled,
    Signaled,
    Pending,
}

/// Fence id → state. Fence ids are unique in the process (never reused).
static FENCES: IdTable = IdTable::new();

impl State {
    fn code(self) -> u64 {
        match self {
            State::Unsignaled => 0,
            State::Signaled => 1,
            State::Pending => 2,
        }
    }
    fn from_code(c: u64) -> State {
        match c {
            0 => State::Unsignaled,
            1 => State::Signaled,
            _ => State::Pending,
        }
    }
}

fn set(fence: vk::Fence, state: State) {
    FENCES.insert(fence.as_raw(), state.code());
}

/// Changes the state of `fence` if it is tracked.
fn update(fence: vk::Fence, state: State) {
    FENCES.update(fence.as_raw(), state.code());
}

/// Marks `fence` pending if it is tracked (a queue submission names it).
pub fn submitted(fence: vk::Fence) {
    update(fence, State::Pending);
}

fn state(fence: vk::Fence) -> Option<State> {
    FENCES.get(fence.as_raw()).map(State::from_code)
}

fn is_lost(dev: vk::Device) -> bool {
    if !crate::connection::any_lost() {
        return false;
    }
    // SAFETY: `dev` is a live device of this ICD (Vulkan valid usage).
    unsafe { device(dev) }.is_some_and(|d| d.hdr.conn.is_lost())
}

/// `vkCreateFence`: created on the host as before; tracked from its flags.
pub unsafe extern "system" fn create_fence(
    dev: vk::Device,
    info: *const vk::FenceCreateInfo<'_>,
    allocator: *const vk::AllocationCallbacks<'_>,
    fence: *mut vk::Fence,
) -> vk::Result {
    guard(|| {
        // SAFETY: forwarded as the application passed them.
        let r = unsafe { gc::vk_create_fence::<Rt>(dev, info, allocator, fence) };
        if r == vk::Result::SUCCESS {
            // SAFETY: valid pointers on success (Vulkan valid usage).
            let (signaled, handle) = unsafe {
                (
                    info.as_ref()
                        .is_some_and(|i| i.flags.contains(vk::FenceCreateFlags::SIGNALED)),
                    fence.as_ref().copied(),
                )
            };
            // A fence exported or imported through a pNext chain could change state
            // outside this ICD: only plain fences are tracked.
            // SAFETY: as above.
            let plain = unsafe { info.as_ref() }.is_some_and(|i| i.p_next.is_null());
            if let (true, Some(h)) = (plain, handle) {
                set(
                    h,
                    if signaled {
                        State::Signaled
                    } else {
                        State::Unsignaled
                    },
                );
            }
        }
        r
    })
}

/// `vkDestroyFence`.
pub unsafe extern "system" fn destroy_fence(
    dev: vk::Device,
    fence: vk::Fence,
    allocator: *const vk::AllocationCallbacks<'_>,
) {
    guard(|| {
        FENCES.remove(fence.as_raw());
        // SAFETY: forwarded.
        unsafe { gc::vk_destroy_fence::<Rt>(dev, fence, allocator) }
    })
}

/// `vkResetFences`: the fences become unsignaled.
pub unsafe extern "system" fn reset_fences(
    dev: vk::Device,
    count: u32,
    fences_ptr: *const vk::Fence,
) -> vk::Result {
    guard(|| {
        // SAFETY: forwarded.
        let r = unsafe { gc::vk_reset_fences::<Rt>(dev, count, fences_ptr) };
        if r == vk::Result::SUCCESS && !fences_ptr.is_null() {
            // SAFETY: `count` fences (Vulkan valid usage).
            let list = unsafe { std::slice::from_raw_parts(fences_ptr, count as usize) };
            for &f in list {
                update(f, State::Unsignaled);
            }
        }
        r
    })
}

/// `vkGetFenceStatus`: local unless the fence is pending (or untracked).
pub unsafe extern "system" fn get_fence_status(dev: vk::Device, fence: vk::Fence) -> vk::Result {
    guard(|| {
        if is_lost(dev) {
            return vk::Result::ERROR_DEVICE_LOST;
        }
        match state(fence) {
            Some(State::Signaled) => vk::Result::SUCCESS,
            Some(State::Unsignaled) => vk::Result::NOT_READY,
            tracked => {
                // SAFETY: forwarded.
                let r = unsafe { gc::vk_get_fence_status::<Rt>(dev, fence) };
                if r == vk::Result::SUCCESS && tracked.is_some() {
                    set(fence, State::Signaled);
                }
                r
            }
        }
    })
}

/// `vkWaitForFences`: answered locally when the states already decide it.
pub unsafe extern "system" fn wait_for_fences(
    dev: vk::Device,
    count: u32,
    fences_ptr: *const vk::Fence,
    wait_all: vk::Bool32,
    timeout: u64,
) -> vk::Result {
    guard(|| {
        if is_lost(dev) {
            return vk::Result::ERROR_DEVICE_LOST;
        }
        let list: &[vk::Fence] = if fences_ptr.is_null() || count == 0 {
            &[]
        } else {
            // SAFETY: `count` fences (Vulkan valid usage).
            unsafe { std::slice::from_raw_parts(fences_ptr, count as usize) }
        };
        let all = wait_all != vk::FALSE;
        if let Some(r) = local_wait(list, all, timeout) {
            return r;
        }
        // SAFETY: forwarded.
        let r = unsafe { gc::vk_wait_for_fences::<Rt>(dev, count, fences_ptr, wait_all, timeout) };
        if r == vk::Result::SUCCESS && (all || list.len() == 1) {
            for &f in list {
                update(f, State::Signaled);
            }
        }
        r
    })
}

/// The answer of a wait decided by local states alone, if it is.
fn local_wait(list: &[vk::Fence], all: bool, timeout: u64) -> Option<vk::Result> {
    if list.is_empty() {
        return None;
    }
    let states: Option<Vec<State>> = list.iter().map(|&f| state(f)).collect();
    let states = states?;
    let signaled = |s: &State| *s == State::Signaled;
    if all && states.iter().all(signaled) || !all && states.iter().any(signaled) {
        return Some(vk::Result::SUCCESS);
    }
    // Without waiting, a fence nobody submitted cannot become signaled.
    let unsignaled = |s: &State| *s == State::Unsignaled;
    if timeout == 0
        && (all && states.iter().any(unsignaled) || !all && states.iter().all(unsignaled))
    {
        return Some(vk::Result::TIMEOUT);
    }
    None
}

/// `vkQueueSubmit`: the fence becomes pending.
pub unsafe extern "system" fn queue_submit(
    queue: vk::Queue,
    count: u32,
    submits: *const vk::SubmitInfo<'_>,
    fence: vk::Fence,
) -> vk::Result {
    guard(|| {
        submitted(fence);
        // SAFETY: forwarded.
        unsafe { gc::vk_queue_submit::<Rt>(queue, count, submits, fence) }
    })
}

/// `vkQueueSubmit2`: the fence becomes pending.
pub unsafe extern "system" fn queue_submit2(
    queue: vk::Queue,
    count: u32,
    submits: *const vk::SubmitInfo2<'_>,
    fence: vk::Fence,
) -> vk::Result {
    guard(|| {
        submitted(fence);
        // SAFETY: forwarded.
        unsafe { gc::vk_queue_submit2::<Rt>(queue, count, submits, fence) }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(id: u64) -> vk::Fence {
        vk::Fence::from_raw(id)
    }

    #[test]
    fn states_decide_waits_only_when_they_can() {
        set(f(1_000_001), State::Signaled);
        set(f(1_000_002), State::Unsignaled);
        set(f(1_000_003), State::Pending);
        let sig = f(1_000_001);
        let uns = f(1_000_002);
        let pen = f(1_000_003);
        let unknown = f(1_000_004);
        assert_eq!(
            local_wait(&[sig], true, u64::MAX),
            Some(vk::Result::SUCCESS)
        );
        assert_eq!(
            local_wait(&[sig, pen], false, u64::MAX),
            Some(vk::Result::SUCCESS)
        );
        assert_eq!(local_wait(&[sig, pen], true, u64::MAX), None);
        assert_eq!(local_wait(&[uns], true, 0), Some(vk::Result::TIMEOUT));
        assert_eq!(
            local_wait(&[uns], true, 1),
            None,
            "another thread may submit it"
        );
        assert_eq!(local_wait(&[uns, pen], false, 0), None);
        assert_eq!(local_wait(&[uns, pen], true, 0), Some(vk::Result::TIMEOUT));
        assert_eq!(
            local_wait(&[unknown], true, 0),
            None,
            "untracked: ask the host"
        );
        submitted(uns);
        assert_eq!(state(uns), Some(State::Pending));
        submitted(unknown);
        assert_eq!(state(unknown), None, "submitting does not start tracking");
    }
}
