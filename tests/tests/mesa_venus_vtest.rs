//! Stock Mesa 25.0.7 venus (the guest driver from Debian's `mesa-vulkan-drivers`)
//! running on our host translator over vtest, with lavapipe as the host driver and
//! the Khronos validation layer enabled on the host side.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use venus_protocol::vtest::{Request, SubmitBatch, SUBMIT_CMD2_FLAG_RING_IDX};
use venus_tests::server::Server;

const COMPUTE: &str = env!("CARGO_BIN_EXE_venus-compute");

fn assert_validation_clean(server: &Server) {
    let bad = server.unexpected_validation_messages();
    assert!(
        bad.is_empty(),
        "validation messages on the host:\n{}",
        bad.join("\n")
    );
}

#[test]
fn vulkaninfo_full_runs_on_our_host() {
    let server = Server::start("vulkaninfo", true);
    let out = server
        .venus_command("vulkaninfo")
        .args(["--show-formats", "--show-tool-props"])
        .output()
        .expect("running vulkaninfo");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "vulkaninfo failed: {}\n{}\nserver:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr),
        server.log_text()
    );
    assert!(
        stdout.contains("deviceName") && stdout.contains("Virtio-GPU Venus (llvmpipe"),
        "no venus device in vulkaninfo output"
    );
    for section in [
        "VkPhysicalDeviceLimits:",
        "FORMAT_R8G8B8A8_UNORM",
        "memoryTypes",
        "VkQueueFamilyProperties",
    ] {
        assert!(
            stdout.contains(section),
            "vulkaninfo output lacks {section}"
        );
    }
    assert_validation_clean(&server);
}

#[test]
fn compute_program_passes_through_mesa_venus() {
    let server = Server::start("compute", true);
    let out = server
        .venus_command(COMPUTE)
        .arg("--quiet")
        .output()
        .expect("running venus-compute");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.lines().any(|l| l.trim() == "PASS"),
        "venus-compute failed: {}\n{stdout}\n{}\nserver:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr),
        server.log_text()
    );
    assert_validation_clean(&server);
}

/// Reads until the server closes the connection; true if it did within `limit`.
fn closed_by_server(s: &mut UnixStream, limit: Duration) -> bool {
    s.set_read_timeout(Some(Duration::from_millis(200)))
        .expect("timeout");
    let t0 = Instant::now();
    let mut buf = [0u8; 4096];
    while t0.elapsed() < limit {
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.kind() == std::io::ErrorKind::TimedOut => {}
            Err(_) => return true,
        }
    }
    false
}

fn send(s: &mut UnixStream, r: &Request) {
    let mut b = Vec::new();
    r.encode(&mut b).expect("encode");
    // The server may already have hung up; that is what some tests expect.
    let _ = s.write_all(&b);
}

/// A client that handshakes, creates a Venus context, then submits a Venus
/// command cut off in the middle.
fn truncated_stream_client(server: &Server) -> UnixStream {
    let mut s = UnixStream::connect(&server.socket).expect("connect");
    send(&mut s, &Request::create_renderer("truncated"));
    send(&mut s, &Request::ContextInit { capset_id: 4 });
    // vkCreateInstance (type 0), reply flag, then a pCreateInfo that says "present"
    // and ends.
    let cmd = [
        0u32.to_le_bytes(),
        1u32.to_le_bytes(),
        1u32.to_le_bytes(),
        0u32.to_le_bytes(),
    ]
    .concat();
    send(
        &mut s,
        &Request::SubmitCmd2 {
            batches: vec![SubmitBatch {
                flags: SUBMIT_CMD2_FLAG_RING_IDX,
                ring_idx: 0,
                cmd,
                syncs: vec![],
            }],
        },
    );
    s
}

#[test]
fn hostile_clients_are_cut_off_while_another_finishes() {
    let mut server = Server::start("two-clients", true);
    let good = server
        .venus_command(COMPUTE)
        .arg("--quiet")
        .spawn()
        .expect("venus-compute");

    // Random bytes.
    let mut garbage = UnixStream::connect(&server.socket).expect("connect");
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let bytes: Vec<u8> = (0..4096)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    let _ = garbage.write_all(&bytes);
    assert!(
        closed_by_server(&mut garbage, Duration::from_secs(10)),
        "garbage client not disconnected"
    );

    // A well-formed vtest session carrying a truncated Venus stream.
    let mut truncated = truncated_stream_client(&server);
    assert!(
        closed_by_server(&mut truncated, Duration::from_secs(10)),
        "truncated-stream client not disconnected"
    );

    let out = good.wait_with_output().expect("venus-compute");
    assert!(
        out.status.success(),
        "the well-behaved client failed: {}\nserver:\n{}",
        out.status,
        server.log_text()
    );
    assert!(server.is_running(), "the server died");
    let log = server.log_text();
    assert!(
        log.contains("disconnecting vtest client"),
        "no disconnect log line:\n{log}"
    );
    assert!(
        log.contains("truncated"),
        "the truncated client's disconnect is not logged:\n{log}"
    );

    // The server still serves new clients.
    let again = server
        .venus_command(COMPUTE)
        .args(["--quiet", "--elements", "256"])
        .output()
        .expect("rerun");
    assert!(
        again.status.success(),
        "a client after the hostile ones failed"
    );
    assert_validation_clean(&server);
}

/// What stock venus reports on our host against what lavapipe reports natively:
/// features, properties, formats, memory types and heaps, queue families and
/// extensions. Every difference must be one `venus_tests::vkinfo` explains.
#[test]
fn vulkaninfo_matches_native_lavapipe_up_to_explained_differences() {
    let server = Server::start("vkinfo-compare", true);
    let env = venus_tests::vkinfo::venus_vtest_env(&server.socket);
    let cmp = venus_tests::vkinfo::compare_venus_against_native(&env).unwrap_or_else(|e| {
        panic!(
            "vulkaninfo comparison could not run: {e}\nserver:\n{}",
            server.log_text()
        )
    });
    println!("{}", cmp.report());
    assert!(cmp.is_clean(), "{}", cmp.report());
    assert_validation_clean(&server);
}
