//! The real `venus-vtest-server` binary, spoken to over its socket: the handshake Mesa
//! performs, capsets, blobs (fd passing, shared mappings), sync objects and
//! `SYNC_WAIT` semantics, fences through `SUBMIT_CMD2`, isolation of a misbehaving
//! client, SIGTERM shutdown, and stock Mesa venus (`vulkaninfo`) against it.
//!
//! The server runs its host side on lavapipe (Debian `mesa-vulkan-drivers`); the Mesa
//! test needs `vulkan-tools` too. CI installs both.

use std::fs::File;
use std::io::{ErrorKind, Read, Write};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use venus_protocol::capset::{self, CAPSET_SIZE};
use venus_protocol::vtest::{
    Header, Request, Response, SubmitBatch, SyncPoint, BLOB_FLAG_MAPPABLE, BLOB_TYPE_HOST3D,
    HEADER_SIZE, PARAM_MAX_TIMELINE_COUNT, SUBMIT_CMD2_FLAG_RING_IDX, SYNC_WAIT_FLAG_ANY,
    SYNC_WAIT_TIMEOUT_INFINITE,
};

const LVP_ICD: &str = "/usr/share/vulkan/icd.d/lvp_icd.json";
const VENUS_ICD: &str = "/usr/share/vulkan/icd.d/virtio_icd.json";

/// Loader and driver variables cleared for every child process.
const CLEARED_VARS: &[&str] = &[
    "VK_ICD_FILENAMES",
    "VK_DRIVER_FILES",
    "VK_ADD_DRIVER_FILES",
    "VK_INSTANCE_LAYERS",
    "VK_LOADER_LAYERS_ENABLE",
    "VK_LOADER_LAYERS_DISABLE",
    "VK_LOADER_DEBUG",
    "VN_DEBUG",
    "VTEST_SOCKET_NAME",
    "VENUS_LOG",
];

const TIMEOUT: Duration = Duration::from_secs(30);

/// `target/<profile>` of this test binary (`target/<profile>/deps/vtest_server-…`).
fn target_profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    exe.parent()
        .and_then(Path::parent)
        .map(Path::to_path_buf)
        .expect("target/<profile> directory")
}

/// The server binary, built once per test run so it is never stale. `cargo test`
/// holds no lock on the target directory while tests run, so the nested build is
/// safe (and a no-op when it is up to date).
fn server_binary() -> PathBuf {
    static BUILT: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BUILT
        .get_or_init(|| {
            let dir = target_profile_dir();
            let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
            cmd.args([
                "build",
                "--quiet",
                "-p",
                "venus-host-translator",
                "--bin",
                "venus-vtest-server",
            ]);
            if dir.file_name().is_some_and(|n| n == "release") {
                cmd.arg("--release");
            }
            if let Some(target) = dir.parent() {
                cmd.env("CARGO_TARGET_DIR", target);
            }
            let status = cmd.status().expect("running cargo build");
            assert!(status.success(), "building venus-vtest-server failed");
            let bin = dir.join("venus-vtest-server");
            assert!(bin.exists(), "{} missing after the build", bin.display());
            bin
        })
        .clone()
}

fn scratch_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("vtest-server-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

fn server_command() -> Command {
    assert!(
        Path::new(LVP_ICD).exists(),
        "{LVP_ICD} missing: install mesa-vulkan-drivers"
    );
    let mut cmd = Command::new(server_binary());
    for var in CLEARED_VARS {
        cmd.env_remove(var);
    }
    // The server's own host Vulkan is lavapipe (never the venus ICD itself).
    cmd.env("VK_DRIVER_FILES", LVP_ICD).env("NO_COLOR", "1");
    cmd
}

/// A running server on a private socket; SIGTERMed and reaped on drop.
struct Server {
    child: Option<Child>,
    socket: PathBuf,
    log: PathBuf,
}

impl Server {
    fn start(name: &str) -> Server {
        Self::start_at(&scratch_dir(name))
    }

    fn start_at(dir: &Path) -> Server {
        let socket = dir.join("vtest.sock");
        let log = dir.join("server.log");
        let out = File::create(&log).expect("log file");
        let err = out.try_clone().expect("log file");
        let child = server_command()
            .env("VENUS_LOG", "debug")
            .arg("--socket-path")
            .arg(&socket)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .expect("starting venus-vtest-server");
        let mut server = Server {
            child: Some(child),
            socket,
            log,
        };
        server.wait_until_listening();
        server
    }

    fn wait_until_listening(&mut self) {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            if UnixStream::connect(&self.socket).is_ok() {
                return;
            }
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                panic!(
                    "server exited with {status} before listening:\n{}",
                    self.log_text()
                );
            }
            assert!(
                Instant::now() < deadline,
                "server not listening:\n{}",
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn connect(&self) -> Client {
        Client::connect(&self.socket)
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits until the log has a line containing every one of `parts`; returns it.
    fn wait_for_log_line(&self, parts: &[&str]) -> String {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            let text = self.log_text();
            if let Some(line) = text.lines().find(|l| parts.iter().all(|p| l.contains(p))) {
                return line.to_owned();
            }
            assert!(
                Instant::now() < deadline,
                "no log line with {parts:?}:\n{text}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn terminate(&mut self) -> ExitStatus {
        let mut child = self.child.take().expect("server running");
        // SAFETY: kill(2) on our own child's pid, which has not been reaped yet.
        let rc = unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
        assert_eq!(rc, 0, "kill: {}", std::io::Error::last_os_error());
        let deadline = Instant::now() + TIMEOUT;
        loop {
            if let Some(status) = child.try_wait().expect("waiting for the server") {
                return status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("server did not exit after SIGTERM:\n{}", self.log_text());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if self.child.is_some() {
            self.terminate();
        }
    }
}

/// A vtest client speaking the protocol the way Mesa's `vn_renderer_vtest.c` does.
struct Client {
    stream: UnixStream,
}

impl Client {
    fn connect(socket: &Path) -> Client {
        let stream = UnixStream::connect(socket).expect("connecting to the server");
        stream
            .set_read_timeout(Some(TIMEOUT))
            .expect("read timeout");
        Client { stream }
    }

    fn send(&mut self, request: &Request) {
        let mut out = Vec::new();
        request.encode(&mut out).expect("encoding a request");
        self.stream.write_all(&out).expect("sending a request");
    }

    fn recv(&mut self) -> Response {
        let mut header = [0u8; HEADER_SIZE];
        self.stream
            .read_exact(&mut header)
            .expect("reading a response header");
        let header = Header::from_bytes(&header).expect("header");
        let mut body = vec![0u8; header.response_body_size().expect("response size")];
        self.stream
            .read_exact(&mut body)
            .expect("reading a response body");
        Response::decode(header.cmd_id, &body).expect("decoding a response")
    }

    fn call(&mut self, request: &Request) -> Response {
        self.send(request);
        self.recv()
    }

    /// Mesa's `vtest_receive_fd`: one data byte with an `SCM_RIGHTS` fd.
    fn recv_fd(&mut self) -> OwnedFd {
        let mut byte = [0u8; 1];
        let mut iov = libc::iovec {
            iov_base: byte.as_mut_ptr().cast(),
            iov_len: 1,
        };
        let mut control = [0u64; 8];
        // SAFETY: all-zero is a valid msghdr.
        let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control.as_mut_ptr().cast();
        msg.msg_controllen = std::mem::size_of_val(&control) as _;
        // SAFETY: msg points at live buffers (iov, byte, control) during the call.
        let n = unsafe { libc::recvmsg(self.stream.as_raw_fd(), &mut msg, 0) };
        assert_eq!(n, 1, "recvmsg: {}", std::io::Error::last_os_error());
        // SAFETY: msg was filled in by recvmsg; CMSG_FIRSTHDR checks msg_controllen.
        let cmsg = unsafe { libc::CMSG_FIRSTHDR(&msg) };
        assert!(!cmsg.is_null(), "no control message carried an fd");
        // SAFETY: cmsg points at a complete header inside `control`.
        let (level, kind) = unsafe { ((*cmsg).cmsg_level, (*cmsg).cmsg_type) };
        assert_eq!((level, kind), (libc::SOL_SOCKET, libc::SCM_RIGHTS));
        // SAFETY: an SCM_RIGHTS message carries at least one fd, now owned by us.
        unsafe {
            let raw = std::ptr::read_unaligned(libc::CMSG_DATA(cmsg).cast::<libc::c_int>());
            OwnedFd::from_raw_fd(raw)
        }
    }

    /// CREATE_RENDERER, the ping probe, PROTOCOL_VERSION, GET_PARAM, GET_CAPSET and
    /// CONTEXT_INIT, in Mesa's order. Returns the capset.
    fn handshake(&mut self, name: &str) -> Vec<u8> {
        self.send(&Request::create_renderer(name));
        self.send(&Request::PingProtocolVersion);
        self.send(&Request::ResourceBusyWait {
            handle: 0,
            flags: 0,
        });
        assert_eq!(self.recv(), Response::PingProtocolVersion);
        assert_eq!(self.recv(), Response::ResourceBusyWait { busy: false });
        assert_eq!(
            self.call(&Request::ProtocolVersion { version: 3 }),
            Response::ProtocolVersion { version: 3 }
        );
        assert_eq!(
            self.call(&Request::GetParam {
                param: PARAM_MAX_TIMELINE_COUNT
            }),
            Response::GetParam {
                valid: true,
                value: 64
            }
        );
        let Response::GetCapset { data: Some(capset) } = self.call(&Request::GetCapset {
            id: capset::CAPSET_ID_VENUS,
            version: 0,
        }) else {
            panic!("no Venus capset");
        };
        self.send(&Request::ContextInit {
            capset_id: capset::CAPSET_ID_VENUS,
        });
        capset
    }

    fn ping(&mut self) {
        assert_eq!(
            self.call(&Request::PingProtocolVersion),
            Response::PingProtocolVersion
        );
    }

    fn create_blob(&mut self, size: u64) -> (u32, OwnedFd) {
        let Response::ResourceCreateBlob { res_id } = self.call(&Request::ResourceCreateBlob {
            blob_type: BLOB_TYPE_HOST3D,
            flags: BLOB_FLAG_MAPPABLE,
            size,
            blob_id: 0,
        }) else {
            panic!("no RESOURCE_CREATE_BLOB response");
        };
        (res_id, self.recv_fd())
    }

    fn sync_create(&mut self, initial_value: u64) -> u32 {
        match self.call(&Request::SyncCreate { initial_value }) {
            Response::SyncCreate { sync_id } => sync_id,
            other => panic!("SYNC_CREATE answered {other:?}"),
        }
    }

    fn sync_read(&mut self, sync_id: u32) -> u64 {
        match self.call(&Request::SyncRead { sync_id }) {
            Response::SyncRead { value } => value,
            other => panic!("SYNC_READ answered {other:?}"),
        }
    }

    fn sync_write(&mut self, sync_id: u32, value: u64) {
        self.send(&Request::SyncWrite { sync_id, value });
    }

    fn sync_wait(&mut self, flags: u32, timeout_ms: u32, syncs: &[(u32, u64)]) -> OwnedFd {
        let syncs = syncs
            .iter()
            .map(|&(sync_id, value)| SyncPoint { sync_id, value })
            .collect();
        self.send(&Request::SyncWait {
            flags,
            timeout_ms,
            syncs,
        });
        assert_eq!(self.recv(), Response::SyncWait);
        self.recv_fd()
    }

    /// Reads until the server closes the connection; panics if it answers instead.
    fn expect_disconnect(&mut self) {
        let mut buf = [0u8; 256];
        match self.stream.read(&mut buf) {
            Ok(0) => {}
            Err(e) if e.kind() == ErrorKind::ConnectionReset => {}
            Ok(n) => panic!("server answered {n} bytes instead of disconnecting"),
            Err(e) => panic!("no disconnect: {e}"),
        }
    }
}

/// Whether `fd` polls readable within `timeout_ms`.
fn readable(fd: &OwnedFd, timeout_ms: i32) -> bool {
    let mut pfd = libc::pollfd {
        fd: fd.as_fd().as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one live pollfd for the duration of the call.
    let n = unsafe { libc::poll(&mut pfd, 1, timeout_ms) };
    assert!(n >= 0, "poll: {}", std::io::Error::last_os_error());
    n == 1 && pfd.revents & libc::POLLIN != 0
}

/// A shared read-write mapping of a whole fd.
struct Mapping {
    ptr: *mut u8,
    len: usize,
}

impl Mapping {
    fn new(fd: &OwnedFd, len: usize) -> Mapping {
        // SAFETY: a fresh shared mapping of a valid fd; the result is checked.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                fd.as_raw_fd(),
                0,
            )
        };
        assert_ne!(
            ptr,
            libc::MAP_FAILED,
            "mmap: {}",
            std::io::Error::last_os_error()
        );
        Mapping {
            ptr: ptr.cast(),
            len,
        }
    }

    fn bytes(&mut self) -> &mut [u8] {
        // SAFETY: the mapping is `len` bytes, readable and writable, alive as long as self.
        unsafe { std::slice::from_raw_parts_mut(self.ptr, self.len) }
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: unmapping exactly what mmap returned.
        unsafe { libc::munmap(self.ptr.cast(), self.len) };
    }
}

fn submit(ring_idx: u32, cmd: &[u8], syncs: &[(u32, u64)]) -> Request {
    Request::SubmitCmd2 {
        batches: vec![SubmitBatch {
            flags: SUBMIT_CMD2_FLAG_RING_IDX,
            ring_idx,
            cmd: cmd.to_vec(),
            syncs: syncs
                .iter()
                .map(|&(sync_id, value)| SyncPoint { sync_id, value })
                .collect(),
        }],
    }
}

fn u32_at(bytes: &[u8], offset: usize) -> u32 {
    let mut le = [0u8; 4];
    le.copy_from_slice(&bytes[offset..offset + 4]);
    u32::from_le_bytes(le)
}

#[test]
fn handshake_capsets_and_params() {
    let server = Server::start("handshake");
    let mut client = server.connect();
    let caps = client.handshake("handshake-test");
    // The standard 160 bytes, then our tail announcing the sharing granularity
    // (Mesa reads the first 160 and skips the rest).
    assert_eq!(caps.len(), capset::tail::EXTENDED_CAPSET_SIZE);
    let granularity = capset::tail::granularity(&caps);
    assert!(
        granularity.is_some_and(|g| g.is_power_of_two() && g >= 4096),
        "capset tail granularity {granularity:?}"
    );
    assert!(caps.len() > CAPSET_SIZE);
    let off = capset::offsets::WIRE_FORMAT_VERSION;
    assert_eq!(u32_at(&caps, off), capset::WIRE_FORMAT_VERSION);
    assert_eq!(u32_at(&caps, capset::offsets::SUPPORTS_BLOB_ID_0), 1);
    assert_eq!(
        u32_at(&caps, capset::offsets::SUPPORTS_MULTIPLE_TIMELINES),
        1
    );
    for (id, version) in [(4, 1), (1, 0), (2, 0), (0, 0), (5, 0)] {
        assert_eq!(
            client.call(&Request::GetCapset { id, version }),
            Response::GetCapset { data: None },
            "capset {id} version {version}"
        );
    }
    assert_eq!(
        client.call(&Request::GetParam { param: 77 }),
        Response::GetParam {
            valid: false,
            value: 0
        }
    );
    client.ping();
    server.wait_for_log_line(&["Venus context created", "handshake-test"]);
}

#[test]
fn blob_fd_maps_shared_memory() {
    let server = Server::start("blob");
    let mut client = server.connect();
    client.handshake("blob-test");
    const SIZE: usize = 64 * 1024;
    let (res_a, fd_a) = client.create_blob(SIZE as u64);
    let (res_b, fd_b) = client.create_blob(SIZE as u64);
    assert_ne!(res_a, 0);
    assert_ne!(res_a, res_b);
    let len = File::from(fd_a.try_clone().unwrap())
        .metadata()
        .unwrap()
        .len();
    assert!(len >= SIZE as u64, "blob fd is {len} bytes");

    // Two mappings of the same fd see the same memory.
    let mut first = Mapping::new(&fd_a, SIZE);
    let mut second = Mapping::new(&fd_a, SIZE);
    for (i, b) in first.bytes().iter_mut().enumerate() {
        *b = (i * 7 % 251) as u8;
    }
    assert!(second
        .bytes()
        .iter()
        .enumerate()
        .all(|(i, b)| *b == (i * 7 % 251) as u8));
    second.bytes()[SIZE - 1] = 0x5a;
    assert_eq!(first.bytes()[SIZE - 1], 0x5a);
    // Another blob is other memory.
    let mut other = Mapping::new(&fd_b, SIZE);
    assert!(other.bytes().iter().all(|b| *b == 0));

    client.send(&Request::ResourceUnref { res_id: res_a });
    client.send(&Request::ResourceUnref { res_id: res_b });
    client.ping();
    // The client's mappings outlive the resources.
    assert_eq!(first.bytes()[SIZE - 1], 0x5a);
}

#[test]
fn sync_objects_and_waits() {
    let server = Server::start("sync");
    let mut client = server.connect();
    client.handshake("sync-test");
    let a = client.sync_create(0);
    let b = client.sync_create(1 << 40);
    assert_ne!(a, b);
    assert_eq!(client.sync_read(b), 1 << 40);

    // ALL: readable only once every sync has reached its value.
    let all = client.sync_wait(0, SYNC_WAIT_TIMEOUT_INFINITE, &[(a, 2), (b, (1 << 40) + 1)]);
    assert!(!readable(&all, 0));
    client.sync_write(a, 2);
    assert_eq!(client.sync_read(a), 2);
    assert!(!readable(&all, 50));
    client.sync_write(b, (1 << 40) + 1);
    assert!(readable(&all, 5000));

    // ANY: one sync already there is enough, at once.
    let any = client.sync_wait(SYNC_WAIT_FLAG_ANY, 0, &[(a, 2), (b, u64::MAX)]);
    assert!(readable(&any, 0));
    let any = client.sync_wait(SYNC_WAIT_FLAG_ANY, 10_000, &[(a, 3), (b, u64::MAX)]);
    assert!(!readable(&any, 0));
    client.sync_write(a, 3);
    assert!(readable(&any, 5000));

    // A write is absolute: lowering works (Mesa resets syncs that way) and wakes no one.
    client.sync_write(a, 1);
    assert_eq!(client.sync_read(a), 1);

    // A timed-out wait never becomes readable, even when the value comes later:
    // the client's own poll reports the timeout (virglrenderer's semantics).
    let timed = client.sync_wait(0, 20, &[(a, 5)]);
    std::thread::sleep(Duration::from_millis(60));
    client.sync_write(a, 5);
    assert_eq!(client.sync_read(a), 5);
    assert!(!readable(&timed, 100));

    // Unknown sync ids end the client.
    client.send(&Request::SyncUnref { sync_id: a });
    client.send(&Request::SyncRead { sync_id: a });
    client.expect_disconnect();
    server.wait_for_log_line(&["WARN", "disconnecting vtest client", "unknown sync id"]);
}

#[test]
fn fences_on_the_cpu_ring_signal_syncs() {
    let server = Server::start("fence");
    let mut client = server.connect();
    client.handshake("fence-test");
    let s = client.sync_create(0);
    let wait = client.sync_wait(0, SYNC_WAIT_TIMEOUT_INFINITE, &[(s, 9)]);
    assert!(!readable(&wait, 0));
    // A sync-only batch on ring 0: the fence retires once the batch is consumed.
    client.send(&submit(0, &[], &[(s, 9)]));
    assert!(readable(&wait, 5000));
    assert_eq!(client.sync_read(s), 9);
    // A fence on a ring no queue is bound to is a fatal context error.
    client.send(&submit(5, &[], &[(s, 10)]));
    client.expect_disconnect();
    server.wait_for_log_line(&["WARN", "disconnecting vtest client", "submit_fence"]);
}

#[test]
fn misbehaving_clients_are_disconnected_alone() {
    let server = Server::start("garbage");
    let mut good = server.connect();
    good.handshake("good-client");
    let sync = good.sync_create(3);

    // An unknown command id.
    let mut bad = server.connect();
    bad.send(&Request::create_renderer("bad-client"));
    bad.stream.write_all(&[0, 0, 0, 0, 99, 0, 0, 0]).unwrap();
    bad.expect_disconnect();
    let line = server.wait_for_log_line(&["WARN", "bad-client", "unknown command id 99"]);
    assert!(line.contains("disconnecting vtest client"), "{line}");

    // A submit before CONTEXT_INIT.
    let mut early = server.connect();
    early.send(&Request::create_renderer("early-client"));
    early.send(&submit(0, &[0; 8], &[]));
    early.expect_disconnect();
    server.wait_for_log_line(&["WARN", "early-client", "CONTEXT_INIT"]);

    // A body length beyond any limit.
    let mut huge = server.connect();
    huge.send(&Request::create_renderer("huge-client"));
    huge.stream
        .write_all(&[0xff, 0xff, 0xff, 0x7f, 24, 0, 0, 0])
        .unwrap();
    huge.expect_disconnect();
    server.wait_for_log_line(&["WARN", "huge-client", "over the"]);

    // A message cut short by the client going away.
    let mut short = server.connect();
    short.send(&Request::create_renderer("short-client"));
    short
        .stream
        .write_all(&[3, 0, 0, 0, 22, 0, 0, 0, 1, 0])
        .unwrap();
    short.stream.shutdown(std::net::Shutdown::Write).unwrap();
    short.expect_disconnect();
    server.wait_for_log_line(&["WARN", "short-client"]);

    // A Venus command stream the context rejects (unknown command type) makes the
    // context fatal.
    let mut fatal = server.connect();
    fatal.handshake("fatal-client");
    let mut stream = Vec::new();
    stream.extend_from_slice(&0x7fff_fff0u32.to_le_bytes());
    stream.extend_from_slice(&0u32.to_le_bytes());
    fatal.send(&submit(0, &stream, &[]));
    fatal.expect_disconnect();
    server.wait_for_log_line(&["WARN", "fatal-client", "submit_cmd"]);

    // The first client is unaffected.
    good.ping();
    assert_eq!(good.sync_read(sync), 3);
    good.sync_write(sync, 4);
    assert_eq!(good.sync_read(sync), 4);
    let (res_id, _fd) = good.create_blob(4096);
    assert_ne!(res_id, 0);
}

#[test]
fn clients_are_isolated() {
    let server = Server::start("isolation");
    let mut one = server.connect();
    let mut two = server.connect();
    one.handshake("client-one");
    two.handshake("client-two");
    let s1 = one.sync_create(11);
    let s2 = two.sync_create(22);
    // Sync ids are per client: the same id names each client's own sync.
    assert_eq!(s1, s2);
    assert_eq!(one.sync_read(s1), 11);
    assert_eq!(two.sync_read(s2), 22);
    let (r1, _) = one.create_blob(4096);
    let (r2, _) = two.create_blob(4096);
    assert_ne!(r1, r2);
    // Unreffing another client's resource id is a no-op for the other client.
    one.send(&Request::ResourceUnref { res_id: r2 });
    one.ping();
    let a = server.wait_for_log_line(&["Venus context created", "client-one"]);
    let b = server.wait_for_log_line(&["Venus context created", "client-two"]);
    assert_ne!(
        a.split("ctx_id=")
            .nth(1)
            .map(|s| s.split_whitespace().next()),
        b.split("ctx_id=")
            .nth(1)
            .map(|s| s.split_whitespace().next()),
        "contexts share an id: {a} / {b}"
    );
}

#[test]
fn sigterm_stops_the_server_and_removes_the_socket() {
    let dir = scratch_dir("sigterm");
    // A stale socket file left by a dead server is replaced.
    let stale = dir.join("vtest.sock");
    drop(UnixListener::bind(&stale).expect("stale socket"));
    assert!(stale.exists());
    let mut server = Server::start_at(&dir);
    let mut client = server.connect();
    client.handshake("sigterm-test");
    client.ping();
    let status = server.terminate();
    assert!(status.success(), "server exited with {status}");
    assert!(!server.socket.exists(), "socket file left behind");
    client.expect_disconnect();
    let log = server.log_text();
    assert!(log.contains("termination signal"), "{log}");
    assert!(log.contains("vtest server stopped"), "{log}");
}

#[test]
fn refuses_to_replace_a_file_that_is_not_a_socket() {
    let dir = scratch_dir("not-socket");
    let path = dir.join("vtest.sock");
    std::fs::write(&path, b"precious").unwrap();
    let output = server_command()
        .arg("--socket-path")
        .arg(&path)
        .output()
        .expect("running the server");
    assert!(!output.status.success());
    assert_eq!(std::fs::read(&path).unwrap(), b"precious");
}

#[test]
fn command_line() {
    let help = server_command()
        .arg("--help")
        .output()
        .expect("running the server");
    assert!(help.status.success());
    assert!(String::from_utf8_lossy(&help.stdout).contains("--socket-path"));
    let bad = server_command()
        .arg("--frobnicate")
        .output()
        .expect("running the server");
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("--frobnicate"));
}

/// Stock Mesa venus (`vulkaninfo --summary`) through the server: the handshake in
/// Mesa's order, then a device enumerated on the host's lavapipe.
#[test]
fn mesa_venus_vulkaninfo() {
    assert!(
        Path::new(VENUS_ICD).exists(),
        "{VENUS_ICD} missing: install mesa-vulkan-drivers"
    );
    let server = Server::start("mesa");
    let mut cmd = Command::new("vulkaninfo");
    for var in CLEARED_VARS {
        cmd.env_remove(var);
    }
    let output = cmd
        .arg("--summary")
        .env("VK_DRIVER_FILES", VENUS_ICD)
        .env("VN_DEBUG", "vtest")
        .env("VTEST_SOCKET_NAME", &server.socket)
        .output()
        .expect("running vulkaninfo (install vulkan-tools)");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "vulkaninfo failed: {stdout}\n{}\nserver log:\n{}",
        String::from_utf8_lossy(&output.stderr),
        server.log_text()
    );
    assert!(stdout.contains("Virtio-GPU Venus"), "{stdout}");
    assert!(stdout.contains("DRIVER_ID_MESA_VENUS"), "{stdout}");

    server.wait_for_log_line(&["client session ended", "vulkaninfo"]);
    let log = server.log_text();
    let requests: Vec<&str> = log
        .lines()
        .filter(|l| l.contains(" request "))
        .filter_map(|l| l.split("cmd=").nth(1))
        .filter_map(|s| s.split_whitespace().next())
        .collect();
    let handshake = [
        "CreateRenderer",
        "PingProtocolVersion",
        "ResourceBusyWait",
        "ProtocolVersion",
        "GetParam",
        "GetCapset",
        "ContextInit",
    ];
    assert!(requests.len() > handshake.len(), "{requests:?}");
    assert_eq!(requests[..handshake.len()], handshake, "{requests:?}");
    // Then shmems (ring, reply streams) and command submission.
    assert!(requests.contains(&"ResourceCreateBlob"), "{requests:?}");
    assert!(requests.contains(&"SubmitCmd2"), "{requests:?}");
    assert!(!log.contains("WARN"), "{log}");
}
