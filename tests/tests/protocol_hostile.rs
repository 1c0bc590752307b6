//! Hostile input: the host decoder returns an error, never panics, never reads
//! past its input and never allocates more than the input justifies.

use bumpalo::Bump;
use proptest::prelude::*;
use venus_protocol::generated::{decode_command, synth_command, COMMAND_NAMES};
use venus_protocol::synth::Synth;
use venus_protocol::{DecodeError, Decoder};

fn decode_all(bytes: &[u8]) -> (usize, Option<DecodeError>, usize) {
    let arena = Bump::new();
    let mut d = Decoder::new(bytes);
    let mut n = 0;
    while decode_command(&mut d, &arena).is_some() {
        n += 1;
    }
    (n, d.error(), arena.allocated_bytes())
}

fn sample(n: u32, seed: u64) -> Vec<u8> {
    let mut s = Synth::new(seed);
    assert!(synth_command(&mut s, n, 1));
    s.out
}

fn numbers() -> Vec<u32> {
    let mut v: Vec<u32> = COMMAND_NAMES.iter().map(|&(_, n)| n).collect();
    v.dedup();
    v
}

#[test]
fn truncation_at_every_offset_is_an_error() {
    let mut cases = 0;
    for n in numbers() {
        let full = sample(n, 7);
        for cut in 0..full.len() {
            let (_, err, _) = decode_all(&full[..cut]);
            if cut > 0 {
                assert!(
                    err.is_some(),
                    "command {n} truncated at {cut} of {} decoded",
                    full.len()
                );
            }
            cases += 1;
        }
    }
    println!("{cases} truncated streams rejected");
}

#[test]
fn counts_near_2_pow_63_are_rejected_without_allocating() {
    // vkCmdBindVertexBuffers(cb, first, count, pBuffers[count], pOffsets[count])
    let mut b = Vec::new();
    let cmd_number = COMMAND_NAMES
        .iter()
        .find(|(n, _)| *n == "vkCmdBindVertexBuffers")
        .map(|x| x.1);
    let cmd_number = cmd_number.expect("known command");
    b.clear();
    b.extend_from_slice(&(cmd_number as i32).to_le_bytes());
    b.extend_from_slice(&0u32.to_le_bytes());
    b.extend_from_slice(&5u64.to_le_bytes()); // command buffer id
    b.extend_from_slice(&0u32.to_le_bytes()); // firstBinding
    b.extend_from_slice(&u32::MAX.to_le_bytes()); // bindingCount
    b.extend_from_slice(&(u64::from(u32::MAX)).to_le_bytes()); // pBuffers size = count
    b.extend_from_slice(&[0u8; 64]);
    let (_, err, alloc) = decode_all(&b);
    assert_eq!(err, Some(DecodeError::Truncated));
    assert!(
        alloc < 4096,
        "allocated {alloc} bytes for a 100-byte stream"
    );
    // A size near 2^63 that does not match its count.
    let mut c = b[..20].to_vec();
    c.extend_from_slice(&3u32.to_le_bytes());
    c.extend_from_slice(&(1u64 << 63).to_le_bytes());
    let (_, err, _) = decode_all(&c);
    assert!(
        matches!(err, Some(DecodeError::ArraySizeMismatch { .. })),
        "{err:?}"
    );
}

#[test]
fn wrong_stype_and_unknown_chain_members_are_fatal() {
    let n = COMMAND_NAMES
        .iter()
        .find(|(n, _)| *n == "vkCreateBuffer")
        .map(|x| x.1)
        .expect("known");
    let mut b = Vec::new();
    b.extend_from_slice(&(n as i32).to_le_bytes());
    b.extend_from_slice(&1u32.to_le_bytes());
    b.extend_from_slice(&2u64.to_le_bytes()); // device
    b.extend_from_slice(&1u64.to_le_bytes()); // pCreateInfo present
    b.extend_from_slice(&13i32.to_le_bytes()); // wrong sType (BufferCreateInfo is 12)
    b.extend_from_slice(&[0u8; 80]);
    assert!(matches!(
        decode_all(&b).1,
        Some(DecodeError::WrongStructType {
            expected: 12,
            found: 13
        })
    ));
    let mut c = b[..24].to_vec();
    c.extend_from_slice(&12i32.to_le_bytes());
    c.extend_from_slice(&1u64.to_le_bytes()); // chain present
    c.extend_from_slice(&1_000_001_000i32.to_le_bytes()); // a swapchain sType: not allowed
    c.extend_from_slice(&[0u8; 80]);
    assert_eq!(
        decode_all(&c).1,
        Some(DecodeError::UnknownStructType(1_000_001_000))
    );
}

#[test]
fn unknown_command_types_are_fatal() {
    for t in [-1i32, 9, 23, 195, 283, i32::MAX] {
        let mut b = t.to_le_bytes().to_vec();
        b.extend_from_slice(&[0u8; 12]);
        assert_eq!(decode_all(&b).1, Some(DecodeError::UnknownCommand(t)));
    }
}

#[test]
fn strings_are_terminated_even_when_the_guest_does_not_terminate_them() {
    // vkCreateInstance with an application name whose NUL was replaced.
    let mut s = Synth::new(3);
    assert!(synth_command(&mut s, 0, 1));
    let mut bytes = s.out;
    // Replace every zero byte by 'x': strings lose their NUL, pads become non-zero.
    for b in bytes.iter_mut().skip(8) {
        if *b == 0 {
            *b = b'x';
        }
    }
    let _ = decode_all(&bytes); // must not panic or read out of bounds
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 4000, ..ProptestConfig::default() })]
    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let (_, _, alloc) = decode_all(&bytes);
        // arena chunk overhead aside, allocation is bounded by a constant factor of the input
        prop_assert!(alloc <= 64 * 1024 + bytes.len() * 64);
    }

    #[test]
    fn mutated_valid_commands_never_panic(n in 0usize..271, seed in any::<u64>(), pos in any::<usize>(), val in any::<u32>()) {
        let nums = numbers();
        let mut b = sample(nums[n], seed);
        if b.len() >= 4 {
            let p = (pos % (b.len() / 4)) * 4;
            b[p..p + 4].copy_from_slice(&val.to_le_bytes());
        }
        let (_, _, alloc) = decode_all(&b);
        prop_assert!(alloc <= 64 * 1024 + b.len() * 64);
    }
}
