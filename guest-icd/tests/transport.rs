//! The guest ICD's transports against real hosts: [`VtestTransport`] against our
//! `venus-vtest-server` (a separate process, lavapipe behind it), and
//! [`InProcessTransport`] with the host translator linked in (lavapipe loaded
//! directly). Both: the capset passes Mesa's checks, a 128 KiB blob is shared memory,
//! and a real Venus command stream (vkSetReplyCommandStreamMESA + vkCreateInstance
//! with a reply) gets its reply written into that blob by the host.
//!
//! The server binary is taken from `VENUS_VTEST_SERVER`, else from this profile's
//! target directory, built there first if missing
//! (`cargo build -p venus-host-translator --bin venus-vtest-server`).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use ash::vk;
use ash::vk::Handle;
use venus_icd::transport::in_process::InProcessTransport;
use venus_icd::transport::vtest::VtestTransport;
use venus_icd::transport::{MappedBlob, Transport, TransportError};
use venus_protocol::capset::{VenusCapset, CAPSET_SIZE};
use venus_protocol::generated as g;
use venus_protocol::mesa::CommandStreamDescriptionMESA;
use venus_protocol::{Decoder, Encoder};

const BLOB_SIZE: u64 = 128 * 1024;
const REPLY: u32 = 1;
/// Lavapipe's ICD manifest, for the server (which goes through the Vulkan loader).
const LVP_ICD: &str = "/usr/share/vulkan/icd.d/lvp_icd.json";
/// Loader variables cleared for the server so only what this test sets applies.
const LOADER_VARS: &[&str] = &[
    "VK_ICD_FILENAMES",
    "VK_DRIVER_FILES",
    "VK_ADD_DRIVER_FILES",
    "VK_INSTANCE_LAYERS",
    "VK_LOADER_LAYERS_ENABLE",
    "VK_LOADER_LAYERS_DISABLE",
    "VK_LOADER_DEBUG",
    "VTEST_SOCKET_NAME",
];

/// `target/<profile>` of this test executable (`target/<profile>/deps/<test>`).
fn target_profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    exe.parent()
        .and_then(Path::parent)
        .map(Path::to_path_buf)
        .expect("target/<profile> directory")
}

/// The `venus-vtest-server` binary, built if missing.
fn server_binary() -> PathBuf {
    if let Some(p) = std::env::var_os("VENUS_VTEST_SERVER") {
        return p.into();
    }
    let dir = target_profile_dir();
    let bin = dir.join("venus-vtest-server");
    if !bin.exists() {
        let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
        cmd.args([
            "build",
            "-p",
            "venus-host-translator",
            "--bin",
            "venus-vtest-server",
        ]);
        if dir.file_name().is_some_and(|n| n == "release") {
            cmd.arg("--release");
        }
        let st = cmd.status().expect("running cargo build");
        assert!(st.success(), "building venus-vtest-server failed");
    }
    bin
}

/// A running server on a private socket; SIGTERM and reaped on drop.
struct Server {
    child: Child,
    socket: PathBuf,
    log: PathBuf,
    dir: PathBuf,
}

impl Server {
    fn start(name: &str) -> Server {
        let dir = std::env::temp_dir().join(format!("venus-icd-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir");
        let socket = dir.join("vtest.sock");
        let log = dir.join("server.log");
        let out = std::fs::File::create(&log).expect("log file");
        let err = out.try_clone().expect("log file");
        let mut cmd = Command::new(server_binary());
        for v in LOADER_VARS {
            cmd.env_remove(v);
        }
        let mut child = cmd
            .env("VK_DRIVER_FILES", LVP_ICD)
            .env("VENUS_LOG", "info")
            .arg("--socket-path")
            .arg(&socket)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .expect("starting venus-vtest-server");
        let t0 = Instant::now();
        while !socket.exists() {
            if let Ok(Some(st)) = child.try_wait() {
                panic!(
                    "the server exited ({st}):\n{}",
                    std::fs::read_to_string(&log).unwrap_or_default()
                );
            }
            assert!(t0.elapsed() < Duration::from_secs(20), "no server socket");
            std::thread::sleep(Duration::from_millis(20));
        }
        Server {
            child,
            socket,
            log,
            dir,
        }
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // SAFETY: kill(2) on our own child's pid.
        unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM) };
        let t0 = Instant::now();
        while t0.elapsed() < Duration::from_secs(10) {
            if let Ok(Some(_)) = self.child.try_wait() {
                let _ = std::fs::remove_dir_all(&self.dir);
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A copy of `len` bytes of the blob at `offset` (volatile reads: the host writes it).
fn read_blob(blob: &MappedBlob, offset: usize, len: usize) -> Vec<u8> {
    assert!(offset + len <= blob.size as usize);
    (0..len)
        // SAFETY: inside the mapping, which lives until destroy_blob.
        .map(|i| unsafe { blob.ptr.add(offset + i).read_volatile() })
        .collect()
}

fn fill_blob(blob: &MappedBlob, byte: u8) {
    for i in 0..blob.size as usize {
        // SAFETY: inside the mapping.
        unsafe { blob.ptr.add(i).write_volatile(byte) };
    }
}

/// The capset passes Mesa's checks (wire format 1, vk.xml ≥ 1.1, blob id 0, …).
fn check_capset(bytes: [u8; CAPSET_SIZE]) {
    assert_eq!(u32::from_le_bytes(bytes[0..4].try_into().unwrap()), 1);
    let capset = VenusCapset::from_bytes(&bytes).expect("capset parses");
    capset
        .validate_like_mesa()
        .expect("capset passes Mesa's checks");
}

/// The blob is ordinary read-write memory across its whole size.
fn check_blob_memory(blob: &MappedBlob) {
    assert!(blob.size >= BLOB_SIZE);
    assert_ne!(blob.res_id, 0);
    for i in (0..blob.size as usize).step_by(4093) {
        // SAFETY: inside the mapping.
        unsafe { blob.ptr.add(i).write_volatile((i % 251) as u8) };
    }
    for i in (0..blob.size as usize).step_by(4093) {
        // SAFETY: inside the mapping.
        assert_eq!(unsafe { blob.ptr.add(i).read_volatile() }, (i % 251) as u8);
    }
}

/// Encodes vkSetReplyCommandStreamMESA(blob) followed by `f`'s commands.
fn stream(blob: &MappedBlob, f: impl FnOnce(&mut Encoder<'_>)) -> Vec<u8> {
    let mut buf = vec![0u8; 4096];
    let mut e = Encoder::with_all(&mut buf);
    let s = CommandStreamDescriptionMESA {
        resource_id: blob.res_id,
        offset: 0,
        size: blob.size as usize,
    };
    // SAFETY: a valid pointer to a local struct.
    unsafe { g::encode_vk_set_reply_command_stream_mesa(&mut e, 0, &s) };
    f(&mut e);
    let n = e.finish().expect("the commands fit");
    buf.truncate(n);
    buf
}

/// Sends vkCreateInstance(id) with a reply into `blob` (after `before`), waits for the
/// reply and checks it: command type 0, VK_SUCCESS, the guest's id echoed.
fn create_instance(t: &dyn Transport, blob: &MappedBlob, id: u64, before: &[u8]) {
    let app = vk::ApplicationInfo::default().api_version(vk::API_VERSION_1_1);
    let ci = vk::InstanceCreateInfo::default().application_info(&app);
    let mut inst = vk::Instance::from_raw(id);
    // Nothing in the blob looks like a reply until the host writes one.
    fill_blob(blob, 0xa5);
    let mut cmds = before.to_vec();
    cmds.extend(stream(blob, |e| {
        // SAFETY: valid pointers to locals.
        unsafe { g::encode_vk_create_instance(e, REPLY, &ci, std::ptr::null(), &mut inst) }
    }));
    t.submit(&cmds).expect("submit");

    // The reply: i32 type 0, i32 VkResult, u64 1 (present), u64 id.
    let mut want = Vec::new();
    want.extend_from_slice(&0i32.to_le_bytes());
    want.extend_from_slice(&vk::Result::SUCCESS.as_raw().to_le_bytes());
    want.extend_from_slice(&1u64.to_le_bytes());
    want.extend_from_slice(&id.to_le_bytes());
    let t0 = Instant::now();
    let reply = loop {
        let reply = read_blob(blob, 0, want.len());
        if reply == want {
            break reply;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "no vkCreateInstance reply; the blob holds {reply:02x?}"
        );
        assert!(t.is_alive(), "the transport died");
        std::thread::sleep(Duration::from_millis(2));
    };
    // The generated reply decoder agrees.
    let mut d = Decoder::new(&reply);
    let mut out = vk::Instance::null();
    // SAFETY: valid pointers to locals.
    let r = unsafe { g::decode_reply_vk_create_instance(&mut d, &ci, std::ptr::null(), &mut out) };
    assert_eq!(r, vk::Result::SUCCESS);
}

/// vkDestroyInstance(id), no reply.
fn destroy_instance(id: u64) -> Vec<u8> {
    let mut buf = vec![0u8; 256];
    let mut e = Encoder::with_all(&mut buf);
    // SAFETY: a NULL allocator.
    unsafe {
        g::encode_vk_destroy_instance(&mut e, 0, vk::Instance::from_raw(id), std::ptr::null())
    };
    let n = e.finish().expect("fits");
    buf.truncate(n);
    buf
}

/// Everything both transports must do.
fn exercise(t: &dyn Transport) {
    assert!(t.is_alive());
    check_capset(t.capset().expect("capset"));
    let blob = t.create_blob(0, BLOB_SIZE).expect("128 KiB blob");
    check_blob_memory(&blob);
    create_instance(t, &blob, 1, &[]);
    // Again, in one submit with the destruction of the first instance: the reply
    // stream is reset by vkSetReplyCommandStreamMESA, so the reply lands at 0 again.
    create_instance(t, &blob, 2, &destroy_instance(1));
    t.submit(&destroy_instance(2)).expect("submit");
    t.destroy_blob(blob);
    // A second blob after the first one is gone.
    let blob = t.create_blob(0, 4096).expect("4 KiB blob");
    assert!(blob.size >= 4096);
    t.destroy_blob(blob);
    assert!(t.is_alive());
}

/// A stream the host cannot decode: command type 9999.
fn garbage() -> Vec<u8> {
    [9999i32.to_le_bytes(), 0i32.to_le_bytes()].concat()
}

#[test]
fn vtest_transport_against_our_server() {
    let server = Server::start("vtest");
    let t = VtestTransport::connect(&server.socket).expect("connect and handshake");
    assert!(t.protocol_version() >= 3);
    assert!(t.max_timeline_count() > 0);
    exercise(&t);
    drop(t);

    // A malformed stream makes the server drop the connection; the transport notices
    // on its next exchange and stays dead.
    let t = VtestTransport::connect(&server.socket).expect("second connection");
    exercise(&t);
    let _ = t.submit(&garbage());
    let t0 = Instant::now();
    loop {
        match t.create_blob(0, 4096) {
            Err(TransportError::Io(_)) => break,
            Err(e) => panic!("expected an I/O error, got {e:?}"),
            Ok(b) => {
                t.destroy_blob(b);
                assert!(t0.elapsed() < Duration::from_secs(20), "never disconnected");
            }
        }
    }
    assert!(!t.is_alive());
    assert!(t.submit(&[0; 8]).is_err());
    drop(t);

    // The server itself lives on for other clients.
    let t = VtestTransport::connect(&server.socket).expect("third connection");
    exercise(&t);
    drop(t);
    let log = server.log_text();
    assert!(!log.contains("panicked"), "{log}");
    // Three connections, three Venus contexts; the second one ended fatal.
    assert_eq!(log.matches("Venus context created").count(), 3, "{log}");
    assert!(log.contains("fatal"), "{log}");
}

#[test]
fn vtest_transport_connect_default_uses_vtest_socket_name() {
    let server = Server::start("default");
    // In a child process: setting the variable here would race with other threads.
    let out = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "connect_default_child", "--nocapture"])
        .env("VENUS_CONNECT_DEFAULT_CHILD", "1")
        .env("VTEST_SOCKET_NAME", &server.socket)
        .output()
        .expect("running the child");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("connected through VTEST_SOCKET_NAME"),
        "{text}"
    );
}

/// The child of the test above; does nothing when run directly.
#[test]
fn connect_default_child() {
    if std::env::var_os("VENUS_CONNECT_DEFAULT_CHILD").is_none() {
        return;
    }
    let t = VtestTransport::connect_default().expect("connect through VTEST_SOCKET_NAME");
    check_capset(t.capset().unwrap());
    println!("connected through VTEST_SOCKET_NAME");
}

/// Against stock virglrenderer's `virgl_test_server --venus` listening on
/// `VENUS_STOCK_VTEST_SOCKET` (e.g. started by `tests/virgl/run-server.sh`); skipped
/// when the variable is unset.
#[test]
fn vtest_transport_against_stock_virgl() {
    let Some(socket) = std::env::var_os("VENUS_STOCK_VTEST_SOCKET") else {
        eprintln!("VENUS_STOCK_VTEST_SOCKET unset: skipped");
        return;
    };
    let t = VtestTransport::connect(Path::new(&socket)).expect("connect and handshake");
    eprintln!(
        "stock virgl: protocol {}, {} timelines",
        t.protocol_version(),
        t.max_timeline_count()
    );
    exercise(&t);
}

#[test]
fn in_process_transport_on_lavapipe() {
    let t = InProcessTransport::new().expect("in-process host on lavapipe");
    exercise(&t);
    // A second context next to the first, on the same renderer.
    let u = InProcessTransport::new().expect("second context");
    assert_ne!(t.ctx_id(), u.ctx_id());
    exercise(&u);
    // Fatal input kills that context only.
    assert!(u.submit(&garbage()).is_err());
    assert!(!u.is_alive());
    exercise(&t);
}
