//! Decodes an arbitrary byte stream as a sequence of Venus commands, the way the
//! host's executor does: one `Decoder` over the whole input, one arena reset per
//! command. The first input byte picks the mode:
//!
//! * bit 0: install a `HandleResolver` (even ids are known and map to a host
//!   handle, odd ids are unknown and must make the stream fatal);
//! * bit 1: a small output budget (64 KiB) instead of the default 64 MiB.
#![no_main]

use ash::vk;
use bumpalo::Bump;
use libfuzzer_sys::fuzz_target;
use venus_protocol::generated::decode_command;
use venus_protocol::{DecodeError, Decoder, HandleResolver};

/// Knows every even id; the host handle is the id with its top bit flipped.
struct EvenIds;

impl HandleResolver for EvenIds {
    fn resolve(&self, _ty: vk::ObjectType, id: u64) -> Option<u64> {
        (id % 2 == 0).then_some(id ^ (1 << 63))
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, stream)) = data.split_first() else {
        return;
    };
    let resolver = EvenIds;
    let mut d = if mode & 1 != 0 {
        Decoder::with_resolver(stream, &resolver)
    } else {
        Decoder::new(stream)
    };
    if mode & 2 != 0 {
        d.set_output_budget(64 << 10);
    }
    let mut arena = Bump::new();
    loop {
        arena.reset();
        let before = d.position();
        let Some((flags, cmd)) = decode_command(&mut d, &arena) else {
            break;
        };
        std::hint::black_box((flags, &cmd));
        // Every command has an 8-byte header: decoding always makes progress.
        assert!(d.position() > before || d.is_fatal(), "no progress");
        assert!(d.position() <= stream.len(), "read past the input");
    }
    if let Some(DecodeError::UnknownObject { id, .. }) = d.error() {
        assert!(mode & 1 != 0, "UnknownObject without a resolver");
        assert!(id % 2 == 1 && id != 0, "resolver refused a known id {id}");
    }
    if !d.is_fatal() {
        assert_eq!(d.remaining(), 0, "stopped before the end without an error");
    }
});
