//! Reading and editing decoded pNext chains before they go to the driver: finding
//! a member by sType, and relinking the members the driver should see.
//!
//! Decoded chains are arena structs of the current command, each starting with
//! sType and pNext, at most `venus_protocol::chain::MAX_CHAIN` long.

use core::ffi::c_void;

use ash::vk;

/// A chain member.
pub type Member = *mut vk::BaseOutStructure<'static>;

/// The members of the chain starting at `head`, in order.
///
/// # Safety
/// `head` is null or a chain of structs starting with sType/pNext (as the decoder
/// builds them).
pub unsafe fn members(head: *const c_void) -> Vec<Member> {
    let mut out = Vec::new();
    let mut p = head as Member;
    while !p.is_null() && out.len() < venus_protocol::chain::MAX_CHAIN {
        out.push(p);
        // SAFETY: caller contract.
        p = unsafe { (*p).p_next };
    }
    out
}

/// The first member of type `s_type`.
///
/// # Safety
/// As for [`members`].
pub unsafe fn find(head: *const c_void, s_type: i32) -> Option<Member> {
    // SAFETY: forwarded caller contract; each member starts with sType.
    unsafe { members(head) }
        .into_iter()
        .find(|p| unsafe { (**p).s_type.as_raw() } == s_type)
}

/// Links `kept` in order (the last one ends the chain) and returns the new head.
///
/// # Safety
/// Every pointer in `kept` is a live, writable struct starting with sType/pNext
/// (arena structs of this command, or the caller's locals).
pub unsafe fn relink(kept: &[Member]) -> *const c_void {
    for w in kept.windows(2) {
        // SAFETY: caller contract.
        unsafe { (*w[0]).p_next = w[1] };
    }
    if let Some(last) = kept.last() {
        // SAFETY: caller contract.
        unsafe { (**last).p_next = std::ptr::null_mut() };
    }
    kept.first()
        .map_or(std::ptr::null(), |p| p.cast_const().cast())
}
