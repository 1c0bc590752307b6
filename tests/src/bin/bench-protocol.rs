//! Protocol encode/decode throughput on a realistic mix, beside a memcpy of the
//! same bytes measured in the same run. Medians over repeated runs.
//!
//! Mix: a command-buffer recording stream (binds, push constants, barriers,
//! dispatches, draws), vkQueueSubmit and vkUpdateDescriptorSets, synthesized with
//! the generated test encoders and decoded once into arguments for re-encoding.
//!
//! `--json` prints one JSON object instead of the table (used by `venus-bench
//! compare`): `commands`, `bytes`, `runs`, and the medians `memcpy_mbps`,
//! `encode_mbps`, `decode_mbps` (MB/s, 10^6 bytes per second).

use std::time::Instant;

use bumpalo::Bump;
use venus_protocol::generated::{
    decode_command, encode_command, synth_command, Command, COMMAND_NAMES,
};
use venus_protocol::synth::Synth;
use venus_protocol::{Decoder, Encoder};

fn number(name: &str) -> u32 {
    COMMAND_NAMES
        .iter()
        .find(|(n, _)| *n == name)
        .map(|x| x.1)
        .unwrap_or(0)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn main() {
    let json = match std::env::args().nth(1).as_deref() {
        None => false,
        Some("--json") => true,
        Some(other) => {
            eprintln!("bench-protocol: unknown argument {other}\nusage: bench-protocol [--json]");
            std::process::exit(2);
        }
    };
    let mix = [
        ("vkCmdBindPipeline", 20),
        ("vkCmdBindDescriptorSets", 20),
        ("vkCmdPushConstants", 20),
        ("vkCmdPipelineBarrier", 10),
        ("vkCmdDispatch", 20),
        ("vkCmdBindVertexBuffers", 10),
        ("vkCmdDraw", 20),
        ("vkCmdDrawIndexed", 20),
        ("vkQueueSubmit", 5),
        ("vkUpdateDescriptorSets", 5),
    ];
    let mut stream = Vec::new();
    let mut seed = 1u64;
    for _ in 0..40 {
        for (name, count) in mix {
            for _ in 0..count {
                let mut s = Synth::new(seed);
                seed += 1;
                synth_command(&mut s, number(name), 0);
                stream.extend_from_slice(&s.out);
            }
        }
    }
    let arena = Bump::new();
    let mut d = Decoder::new(&stream);
    let mut cmds: Vec<(u32, Command<'_>)> = Vec::new();
    while let Some(c) = decode_command(&mut d, &arena) {
        cmds.push(c);
    }
    assert!(!d.is_fatal() && d.remaining() == 0, "stream must decode");
    let bytes = stream.len();
    let reps = 31;
    let inner = 20;
    let mut out = vec![0u8; bytes];
    let (mut enc, mut dec, mut cpy) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..reps {
        let t = Instant::now();
        for _ in 0..inner {
            let mut e = Encoder::with_all(&mut out);
            for (f, c) in &cmds {
                // SAFETY: pointers in `c` point into `arena`, alive here.
                unsafe { encode_command(&mut e, *f, c) };
            }
            assert_eq!(e.finish().ok(), Some(bytes));
        }
        enc.push((bytes * inner) as f64 / t.elapsed().as_secs_f64());
        let t = Instant::now();
        for _ in 0..inner {
            let a = Bump::with_capacity(bytes * 4);
            let mut d = Decoder::new(&stream);
            let mut n = 0;
            while decode_command(&mut d, &a).is_some() {
                n += 1;
            }
            assert_eq!(n, cmds.len());
        }
        dec.push((bytes * inner) as f64 / t.elapsed().as_secs_f64());
        let t = Instant::now();
        for _ in 0..inner {
            out.copy_from_slice(std::hint::black_box(&stream));
            std::hint::black_box(&out);
        }
        cpy.push((bytes * inner) as f64 / t.elapsed().as_secs_f64());
    }
    assert_eq!(out, stream);
    let (e, dd, c) = (median(enc), median(dec), median(cpy));
    if json {
        let out = serde_json::json!({
            "commands": cmds.len(),
            "bytes": bytes,
            "runs": reps,
            "memcpy_mbps": c / 1e6,
            "encode_mbps": e / 1e6,
            "decode_mbps": dd / 1e6,
        });
        println!("{out}");
        return;
    }
    println!(
        "protocol throughput, {} commands, {} bytes per pass, median of {reps} runs",
        cmds.len(),
        bytes
    );
    println!("| operation | MB/s | vs memcpy |");
    println!("|---|---:|---:|");
    println!("| memcpy | {:.0} | 1.000 |", c / 1e6);
    println!("| encode | {:.0} | {:.3} |", e / 1e6, e / c);
    println!(
        "| decode (host, into arena) | {:.0} | {:.3} |",
        dd / 1e6,
        dd / c
    );
}
