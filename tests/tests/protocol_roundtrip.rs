//! Every command type: synthesized random valid bytes decode completely, and the
//! decoded arguments re-encode to the identical bytes.

use bumpalo::Bump;
use venus_protocol::generated::{decode_command, encode_command, synth_command, COMMAND_NAMES};
use venus_protocol::synth::Synth;
use venus_protocol::{Decoder, Encoder};

fn numbers() -> Vec<u32> {
    let mut v: Vec<u32> = COMMAND_NAMES.iter().map(|&(_, n)| n).collect();
    v.dedup();
    v
}

#[test]
fn every_command_round_trips() {
    let nums = numbers();
    assert_eq!(nums.len(), 271, "every command with a wire form");
    let mut checked = 0;
    for &n in &nums {
        for seed in 0..40u64 {
            let mut s = Synth::new(seed * 1000 + u64::from(n));
            assert!(
                synth_command(&mut s, n, (seed & 1) as u32),
                "no synth for {n}"
            );
            let bytes = s.out;
            let arena = Bump::new();
            let mut d = Decoder::new(&bytes);
            let (flags, cmd) = match decode_command(&mut d, &arena) {
                Some(x) => x,
                None => panic!("command {n} seed {seed}: decode failed: {:?}", d.error()),
            };
            assert_eq!(d.remaining(), 0, "command {n} seed {seed}: trailing bytes");
            assert_eq!(cmd.number(), n);
            let mut buf = vec![0u8; bytes.len() + 64];
            let mut e = Encoder::with_all(&mut buf);
            // SAFETY: the pointers in `cmd` point into `arena`, alive here.
            unsafe { encode_command(&mut e, flags, &cmd) };
            let len = e.finish().expect("fits");
            assert_eq!(
                &buf[..len],
                &bytes[..],
                "command {} seed {seed}: re-encoding differs",
                cmd.name()
            );
            checked += 1;
        }
    }
    println!(
        "round-tripped {checked} encodings of {} command types",
        nums.len()
    );
}
