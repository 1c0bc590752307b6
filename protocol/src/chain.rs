//! pNext chains on the wire.
//!
//! For each element that is allowed (and enabled): `u64 1`, its sType, the rest of
//! the chain, then its members; the chain ends with `u64 0`. Every level uses the
//! top-level parent's allowed set. Both directions work iteratively, so a hostile
//! chain cannot exhaust the stack.

use core::ffi::c_void;

use ash::vk;
use bumpalo::Bump;

use crate::decoder::Decoder;
use crate::encoder::Encoder;
use crate::generated::chain_tables;
use crate::DecodeError;

/// The longest chain we encode or accept.
pub const MAX_CHAIN: usize = 128;

/// Encodes the chain starting at `p`, skipping members not in `allowed` or gated off.
///
/// # Safety
/// `p` is NULL or the head of a valid chain of Vulkan structs.
pub unsafe fn encode(e: &mut Encoder<'_>, mut p: *const c_void, allowed: &[i32], partial: bool) {
    let mut stack: [(i32, *const c_void); MAX_CHAIN] = [(0, core::ptr::null()); MAX_CHAIN];
    let mut n = 0;
    while !p.is_null() && n < MAX_CHAIN {
        // SAFETY: every Vulkan struct in a chain starts with sType and pNext.
        let base = unsafe { &*(p as *const vk::BaseInStructure<'_>) };
        let st = base.s_type.as_raw();
        if allowed.contains(&st) && chain_tables::gate_ok(e.info(), st) {
            stack[n] = (st, p);
            n += 1;
        }
        p = base.p_next.cast();
    }
    for &(st, _) in &stack[..n] {
        e.present(true);
        e.i32(st);
    }
    e.present(false);
    for &(st, q) in stack[..n].iter().rev() {
        // SAFETY: `q` is a valid struct of type `st` (walked above).
        unsafe { chain_tables::encode_body(e, st, q, partial) };
    }
}

fn read_headers(d: &mut Decoder<'_>, allowed: Option<&[i32]>, out: &mut [i32; MAX_CHAIN]) -> usize {
    let mut n = 0;
    while d.present() {
        let st = d.i32();
        let ok = allowed.is_none_or(|a| a.contains(&st));
        if !ok || n == MAX_CHAIN || out[..n].contains(&st) {
            d.fail(DecodeError::UnknownStructType(st));
            return 0;
        }
        out[n] = st;
        n += 1;
    }
    if d.is_fatal() {
        0
    } else {
        n
    }
}

/// Decodes a chain into arena structs; returns its head (NULL if empty or on error).
pub fn decode(d: &mut Decoder<'_>, a: &Bump, allowed: &[i32], partial: bool) -> *mut c_void {
    let mut st = [0i32; MAX_CHAIN];
    let n = read_headers(d, Some(allowed), &mut st);
    let mut next: *mut c_void = core::ptr::null_mut();
    for &s in st[..n].iter().rev() {
        let p = chain_tables::decode_body(d, a, s, partial);
        if p.is_null() || d.is_fatal() {
            return core::ptr::null_mut();
        }
        // SAFETY: `p` is a freshly allocated arena struct that starts with sType, pNext.
        unsafe { (*(p as *mut vk::BaseOutStructure<'_>)).p_next = next.cast() };
        next = p;
    }
    next
}

/// Decodes a reply chain into the caller's chain starting at `caller`, matching by sType in order.
///
/// # Safety
/// `caller` is NULL or the head of a valid chain of Vulkan structs.
pub unsafe fn decode_into(d: &mut Decoder<'_>, caller: *mut c_void) {
    let mut st = [0i32; MAX_CHAIN];
    let n = read_headers(d, None, &mut st);
    let mut targets: [*mut c_void; MAX_CHAIN] = [core::ptr::null_mut(); MAX_CHAIN];
    let mut cursor = caller;
    for (i, &s) in st[..n].iter().enumerate() {
        while !cursor.is_null() {
            // SAFETY: caller chain structs start with sType and pNext.
            let base = unsafe { &*(cursor as *const vk::BaseOutStructure<'_>) };
            if base.s_type.as_raw() == s {
                break;
            }
            cursor = base.p_next.cast();
        }
        if cursor.is_null() {
            d.fail(DecodeError::UnknownStructType(s));
            return;
        }
        targets[i] = cursor;
        // SAFETY: as above.
        cursor = unsafe { (*(cursor as *const vk::BaseOutStructure<'_>)).p_next.cast() };
    }
    for i in (0..n).rev() {
        // SAFETY: targets[i] is a caller struct of type st[i].
        unsafe { chain_tables::decode_into_body(d, st[i], targets[i]) };
    }
}

/// Writes a random valid chain (tests).
#[cfg(feature = "synth")]
pub fn synth(s: &mut crate::synth::Synth, allowed: &[i32], partial: bool) {
    let mut picked: Vec<i32> = Vec::new();
    let want = s.below(4);
    for _ in 0..want {
        if allowed.is_empty() {
            break;
        }
        let c = allowed[s.below(allowed.len() as u64) as usize];
        if !picked.contains(&c) {
            picked.push(c);
        }
    }
    for &p in &picked {
        s.present(true);
        s.i32(p);
    }
    s.present(false);
    for &p in picked.iter().rev() {
        chain_tables::synth_body(s, p, partial);
    }
}
