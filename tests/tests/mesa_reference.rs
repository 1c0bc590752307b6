//! Byte-exact against the reference encoder: for every command type, random valid
//! encodings are decoded by our host decoder, the decoded arguments are handed to
//! Mesa 25.0.7's generated C encoder (ash structs are ABI-identical to C's), and
//! Mesa's bytes must equal ours except where Mesa leaves pad bytes unwritten. Our
//! decoder thereby accepts Mesa's encoding of the same values, and our encoder
//! (the round-trip test) reproduces them.

use bumpalo::Bump;
use venus_protocol::generated::{decode_command, encode_command, synth_command, COMMAND_NAMES};
use venus_protocol::synth::Synth;
use venus_protocol::{Decoder, Encoder};
use venus_tests::mesa_ref::{MesaRef, ALL_EXTENSIONS, VK_XML_VERSION_1_3_269};

#[test]
fn every_command_matches_mesa_byte_for_byte() {
    let Some(mut mesa) = MesaRef::for_tests() else {
        return;
    };
    mesa.set_protocol(&ALL_EXTENSIONS, VK_XML_VERSION_1_3_269);
    let mut nums: Vec<u32> = COMMAND_NAMES.iter().map(|&(_, n)| n).collect();
    nums.dedup();
    let mesa_names = mesa.command_names();
    let mut covered = std::collections::BTreeSet::new();
    let mut failures = Vec::new();
    let mut compared = 0usize;
    let mut bytes_compared = 0usize;
    for &n in &nums {
        for seed in 0..25u64 {
            let mut s = Synth::new(seed.wrapping_mul(7919) + u64::from(n) * 31);
            assert!(synth_command(&mut s, n, (seed & 1) as u32));
            let ours = s.out;
            let arena = Bump::new();
            let mut d = Decoder::new(&ours);
            let (flags, cmd) =
                decode_command(&mut d, &arena).expect("our decoder accepts our synth");
            let name = cmd.name();
            assert!(
                mesa_names.iter().any(|m| m == name),
                "Mesa has no encoder named {name}"
            );
            covered.insert(name);
            if std::env::var_os("VENUS_TRACE_REF").is_some() {
                eprintln!("{name} seed {seed}");
            }
            let mut ptrs = cmd.param_ptrs();
            // C passes `T x[N]` parameters as a pointer: hand Mesa a pointer to one.
            let mut holders: Vec<Box<*const core::ffi::c_void>> = Vec::new();
            for (i, decl) in mesa.params(name).unwrap_or_default().iter().enumerate() {
                if decl.contains('[') {
                    holders.push(Box::new(ptrs[i]));
                    ptrs[i] = (&**holders.last().expect("just pushed")
                        as *const *const core::ffi::c_void)
                        .cast();
                }
            }
            // SAFETY: the pointers point at the decoded arguments, which live in `arena`/`cmd`.
            let Some((theirs, pad)) = (unsafe { mesa.encode(name, flags, &ptrs) }) else {
                panic!("Mesa refused {name}")
            };
            let same_len = theirs.len() == ours.len();
            let mismatch = same_len
                && theirs
                    .iter()
                    .zip(&ours)
                    .zip(&pad)
                    .any(|((a, b), p)| !p && a != b);
            if !same_len || mismatch {
                let first = (0..theirs.len().min(ours.len()))
                    .find(|&i| !pad[i] && theirs[i] != ours[i])
                    .unwrap_or(theirs.len().min(ours.len()));
                failures.push(format!(
                    "{name} seed {seed}: ours {} bytes, Mesa {} bytes, first difference at {first}",
                    ours.len(),
                    theirs.len()
                ));
            }
            // Our encoder, fed the same arguments, produces the same bytes too.
            let mut buf = vec![0u8; ours.len()];
            let mut e = Encoder::with_all(&mut buf);
            // SAFETY: as above.
            unsafe { encode_command(&mut e, flags, &cmd) };
            assert_eq!(e.finish().ok(), Some(ours.len()));
            compared += 1;
            bytes_compared += ours.len();
        }
    }
    println!(
        "compared {compared} encodings ({bytes_compared} bytes) of {} command types with Mesa",
        covered.len()
    );
    assert!(
        failures.is_empty(),
        "{} mismatches:\n{}",
        failures.len(),
        failures
            .iter()
            .take(40)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert_eq!(covered.len(), 271, "every command type with a wire form");
}
