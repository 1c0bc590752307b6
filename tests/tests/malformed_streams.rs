//! Hostile Venus streams inside well-formed vtest sessions (issue 7), against our
//! `venus-vtest-server` with the host validation layer on, while stock Mesa venus
//! runs the compute program on the same server.
//!
//! Every hostile client does the vtest handshake (CREATE_RENDERER,
//! PROTOCOL_VERSION, CONTEXT_INIT with capset 4, a shared blob where the case
//! needs one) and then sends one kind of malformed Venus input: a truncated
//! command, an array size near 2^63, unknown command types, an object id of
//! another context, ring counters that pass each other, a reply stream outside
//! its blob. For each, the server must make that context fatal, log why and hang
//! up on that client within a few seconds, while the server, the other clients
//! and the compute program carry on. A second test bounds the server's memory
//! growth over hundreds of hostile sessions and 100,000 failing commands.

use std::io::{ErrorKind, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::process::Child;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::{Duration, Instant};

use ash::vk;
use ash::vk::Handle;
use venus_protocol::generated as g;
use venus_protocol::mesa::{CommandStreamDescriptionMESA, RingCreateInfoMESA};
use venus_protocol::ring::{RingLayout, STATUS_FATAL};
use venus_protocol::vtest::{
    Header, Request, Response, SubmitBatch, BLOB_FLAG_MAPPABLE, BLOB_TYPE_HOST3D, HEADER_SIZE,
    SUBMIT_CMD2_FLAG_RING_IDX,
};
use venus_protocol::Encoder;
use venus_tests::server::Server;

const COMPUTE: &str = env!("CARGO_BIN_EXE_venus-compute");

/// How long the server may take to hang up on a hostile client. Out-of-ring
/// faults end the session at once; ring faults within the session's 250 ms idle
/// check after the ring thread notices (at most its 1 ms idle timeout plus a nap).
const DISCONNECT: Duration = Duration::from_secs(5);
/// Longest wait for an answer the server owes a well-behaved request.
const IO_TIMEOUT: Duration = Duration::from_secs(30);
/// Size of the shared blob each case creates (reply streams, rings).
const BLOB_SIZE: u64 = 64 << 10;
/// `VK_COMMAND_GENERATE_REPLY_BIT_EXT`.
const REPLY: u32 = 1;
/// The ring id the ring cases create.
const RING_ID: u64 = 100;

// ---------------------------------------------------------------------------
// A vtest client that speaks the protocol correctly.

/// A shared read-write mapping of a blob's fd.
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

    /// The 32-bit word at `offset`, shared with the server's threads.
    fn word(&self, offset: usize) -> &AtomicU32 {
        assert!(
            offset.is_multiple_of(4) && offset + 4 <= self.len,
            "word {offset}"
        );
        // SAFETY: in bounds and 4-aligned (checked above; mmap is page-aligned);
        // the mapping lives as long as `self`.
        unsafe { &*self.ptr.add(offset).cast::<AtomicU32>() }
    }

    fn write(&self, offset: usize, bytes: &[u8]) {
        assert!(offset + bytes.len() <= self.len, "write past the blob");
        // SAFETY: in bounds (checked above); the server only reads this range.
        unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), self.ptr.add(offset), bytes.len()) };
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: unmapping exactly what `new` mapped.
        unsafe { libc::munmap(self.ptr.cast(), self.len) };
    }
}

/// A shared-memory blob of a session.
struct Blob {
    res_id: u32,
    map: Mapping,
}

/// One vtest session with a Venus context.
struct Session {
    stream: UnixStream,
    name: String,
}

impl Session {
    /// Connects and does the handshake up to CONTEXT_INIT (capset 4).
    fn open(server: &Server, name: &str) -> Session {
        let stream = UnixStream::connect(&server.socket).expect("connect");
        stream
            .set_read_timeout(Some(IO_TIMEOUT))
            .expect("read timeout");
        let mut s = Session {
            stream,
            name: name.to_owned(),
        };
        s.send(&Request::create_renderer(name));
        s.send(&Request::ProtocolVersion { version: 3 });
        assert_eq!(
            s.recv(),
            Some(Response::ProtocolVersion { version: 3 }),
            "{name}: handshake"
        );
        s.send(&Request::ContextInit { capset_id: 4 });
        s
    }

    /// Sends a request; a server that already hung up is not an error here.
    fn send(&mut self, r: &Request) {
        let mut b = Vec::new();
        r.encode(&mut b).expect("encode");
        let _ = self.stream.write_all(&b);
    }

    /// The next response, or `None` if the connection ended.
    fn recv(&mut self) -> Option<Response> {
        let mut header = [0u8; HEADER_SIZE];
        self.stream.read_exact(&mut header).ok()?;
        let header = Header::from_bytes(&header).ok()?;
        let mut body = vec![0u8; header.response_body_size().ok()?];
        self.stream.read_exact(&mut body).ok()?;
        Response::decode(header.cmd_id, &body).ok()
    }

    /// Whether the server answers a ping: everything sent before it was handled
    /// and the session is still up.
    fn ping(&mut self) -> bool {
        self.send(&Request::PingProtocolVersion);
        self.recv() == Some(Response::PingProtocolVersion)
    }

    /// Creates a mappable shared blob and maps it.
    fn blob(&mut self) -> Blob {
        self.send(&Request::ResourceCreateBlob {
            blob_type: BLOB_TYPE_HOST3D,
            flags: BLOB_FLAG_MAPPABLE,
            size: BLOB_SIZE,
            blob_id: 0,
        });
        let Some(Response::ResourceCreateBlob { res_id }) = self.recv() else {
            panic!("{}: no RESOURCE_CREATE_BLOB response", self.name);
        };
        let fd = self.recv_fd();
        Blob {
            res_id,
            map: Mapping::new(&fd, BLOB_SIZE as usize),
        }
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

    /// Submits a Venus stream out of ring (SUBMIT_CMD2, ring 0, no syncs).
    fn submit(&mut self, cmd: Vec<u8>) {
        self.send(&Request::SubmitCmd2 {
            batches: vec![SubmitBatch {
                flags: SUBMIT_CMD2_FLAG_RING_IDX,
                ring_idx: 0,
                cmd,
                syncs: vec![],
            }],
        });
    }

    /// Reads until the server closes the connection; true if it did within `limit`.
    fn closed_by_server(&mut self, limit: Duration) -> bool {
        self.stream
            .set_read_timeout(Some(Duration::from_millis(100)))
            .expect("timeout");
        let t0 = Instant::now();
        let mut buf = [0u8; 4096];
        while t0.elapsed() < limit {
            match self.stream.read(&mut buf) {
                Ok(0) => return true,
                Ok(_) => {}
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Err(_) => return true,
            }
        }
        false
    }
}

// ---------------------------------------------------------------------------
// Venus streams.

/// Encodes a Venus stream.
fn stream(f: impl FnOnce(&mut Encoder<'_>)) -> Vec<u8> {
    let mut buf = vec![0u8; 1 << 16];
    let mut e = Encoder::with_all(&mut buf);
    f(&mut e);
    let n = e.finish().expect("stream fits");
    buf.truncate(n);
    buf
}

/// `vkSetReplyCommandStreamMESA(resource, offset, size)`.
fn set_reply(e: &mut Encoder<'_>, resource_id: u32, offset: usize, size: usize) {
    let s = CommandStreamDescriptionMESA {
        resource_id,
        offset,
        size,
    };
    // SAFETY: a pointer to a live local.
    unsafe { g::encode_vk_set_reply_command_stream_mesa(e, 0, &s) };
}

/// `vkSeekReplyCommandStreamMESA(0)`.
fn seek_reply(e: &mut Encoder<'_>) {
    // SAFETY: no pointers.
    unsafe { g::encode_vk_seek_reply_command_stream_mesa(e, 0, 0) };
}

/// `vkCreateInstance` creating guest id `id`, with a reply.
fn create_instance(e: &mut Encoder<'_>, id: u64) {
    let app = vk::ApplicationInfo::default().api_version(vk::API_VERSION_1_1);
    let ci = vk::InstanceCreateInfo::default().application_info(&app);
    let mut inst = vk::Instance::from_raw(id);
    // SAFETY: pointers to live locals.
    unsafe { g::encode_vk_create_instance(e, REPLY, &ci, std::ptr::null(), &mut inst) };
}

/// `vkEnumeratePhysicalDevices(instance, &count, NULL)`, with a reply.
fn enumerate_physical_devices(e: &mut Encoder<'_>, instance: u64, out: Option<u64>) {
    let mut count = u32::from(out.is_some());
    let mut pd = [vk::PhysicalDevice::from_raw(out.unwrap_or(0))];
    let p = if out.is_some() {
        pd.as_mut_ptr()
    } else {
        std::ptr::null_mut()
    };
    // SAFETY: pointers to live locals (one element when non-null).
    unsafe {
        g::encode_vk_enumerate_physical_devices(
            e,
            REPLY,
            vk::Instance::from_raw(instance),
            &mut count,
            p,
        )
    };
}

/// The (command type, VkResult) at the start of a reply.
fn reply_head(blob: &Blob, offset: usize) -> (u32, i32) {
    let ty = blob.map.word(offset).load(Ordering::Acquire);
    let result = blob.map.word(offset + 4).load(Ordering::Acquire) as i32;
    (ty, result)
}

/// Mesa's per-thread ring (16 KiB buffer) at the start of `res_id`.
fn ring_create_info(res_id: u32) -> RingCreateInfoMESA {
    let l = RingLayout::tls_ring();
    RingCreateInfoMESA {
        resource_id: res_id,
        offset: 0,
        size: l.shmem_size as usize,
        idle_timeout: 1_000_000,
        head_offset: l.head_offset as usize,
        tail_offset: l.tail_offset as usize,
        status_offset: l.status_offset as usize,
        buffer_offset: l.buffer_offset as usize,
        buffer_size: l.buffer_size as usize,
        extra_offset: l.extra_offset as usize,
        extra_size: l.extra_size as usize,
        ..Default::default()
    }
}

// ---------------------------------------------------------------------------
// The hostile cases. Each opens its own session, misbehaves, and returns the
// session (expected to be hung up on) and what the server's log must say.

/// A hostile session and the words its fatal reason must contain.
struct Hostile {
    session: Session,
    /// What the server must log as the reason (any one of these).
    reason: &'static [&'static str],
    /// A mapping whose ring status word must show STATUS_FATAL (ring cases).
    ring: Option<Blob>,
}

/// (a) vkCreateInstance cut off inside its create info.
fn truncated_command(server: &Server, name: &str) -> Hostile {
    let mut s = Session::open(server, name);
    let mut cmd = stream(|e| create_instance(e, 1));
    cmd.truncate(24);
    s.submit(cmd);
    Hostile {
        session: s,
        reason: &["cannot decode command at byte 0: truncated input"],
        ring: None,
    }
}

/// (b) vkCreateInstance whose extension-name array claims 0x7fff_ffff_ffff_fff0
/// elements (enabledExtensionCount u32::MAX), then the same with a count and
/// array size that agree (2^32 - 1 pointers: 32 GiB if allocated naively).
fn huge_array(server: &Server, name: &str, agree: bool) -> Hostile {
    let mut s = Session::open(server, name);
    let blob = s.blob();
    s.submit(stream(|e| {
        set_reply(e, blob.res_id, 0, 4096);
        e.i32(0); // VK_COMMAND_TYPE_vkCreateInstance_EXT
        e.u32(REPLY);
        e.present(true); // pCreateInfo
        e.i32(vk::StructureType::INSTANCE_CREATE_INFO.as_raw());
        e.present(false); // pNext
        e.u32(0); // flags
        e.present(false); // pApplicationInfo
        e.u32(0); // enabledLayerCount
        e.size(0); // ppEnabledLayerNames
        e.u32(u32::MAX); // enabledExtensionCount
        e.size(if agree {
            u32::MAX as usize
        } else {
            0x7fff_ffff_ffff_fff0
        });
        for _ in 0..16 {
            e.u64(8); // a few plausible string lengths
        }
    }));
    Hostile {
        session: s,
        reason: if agree {
            &["cannot decode command at byte 36: truncated input"]
        } else {
            &["array size 9223372036854775792 does not match count 4294967295"]
        },
        ring: None,
    }
}

/// (c) A command type no protocol version has.
fn unknown_command(server: &Server, name: &str, ty: i32) -> Hostile {
    let mut s = Session::open(server, name);
    s.submit(stream(|e| {
        e.i32(ty);
        e.u32(0);
        e.u64(0);
    }));
    Hostile {
        session: s,
        reason: &["unknown command type"],
        ring: None,
    }
}

/// (e) A ring whose tail moves behind the head the host published (`backwards`),
/// or whose tail runs more than a buffer ahead of it while the guest also writes
/// a head beyond the tail (`!backwards`).
fn ring_counters(server: &Server, name: &str, backwards: bool) -> Hostile {
    let mut s = Session::open(server, name);
    let blob = s.blob();
    let l = RingLayout::tls_ring();
    let ci = ring_create_info(blob.res_id);
    // SAFETY: a pointer to a live local.
    s.submit(stream(|e| unsafe {
        g::encode_vk_create_ring_mesa(e, 0, RING_ID, &ci)
    }));
    // One well-formed command through the ring first, so the head moves: the
    // ring's own reply stream in the upper half of the blob.
    let cmd = stream(|e| set_reply(e, blob.res_id, 32 << 10, 16 << 10));
    let buffer = l.buffer_offset as usize;
    blob.map.write(buffer, &cmd);
    let tail = cmd.len() as u32;
    let (head_w, tail_w) = (l.head_offset as usize, l.tail_offset as usize);
    blob.map.word(tail_w).store(tail, Ordering::Release);
    // SAFETY: no pointers.
    s.submit(stream(|e| unsafe {
        g::encode_vk_notify_ring_mesa(e, 0, RING_ID, tail, 0)
    }));
    let t0 = Instant::now();
    while blob.map.word(head_w).load(Ordering::Acquire) != tail {
        assert!(
            t0.elapsed() < IO_TIMEOUT,
            "{name}: the ring never consumed a well-formed command"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
    assert!(
        s.ping(),
        "{name}: the session ended before the hostile part"
    );
    if backwards {
        blob.map.word(tail_w).store(tail - 4, Ordering::Release);
    } else {
        blob.map.word(head_w).store(tail + 4096, Ordering::Release);
        blob.map
            .word(tail_w)
            .store(tail + l.buffer_size as u32 + 8, Ordering::Release);
    }
    // SAFETY: no pointers.
    s.submit(stream(|e| unsafe {
        g::encode_vk_notify_ring_mesa(e, 0, RING_ID, tail, 0)
    }));
    Hostile {
        session: s,
        reason: &["pending bytes exceed the ring buffer"],
        ring: Some(blob),
    }
}

/// (e') vkWaitRingSeqnoMESA for a seqno the guest never submitted (past the
/// ring's tail): nothing will ever reach it, so the wait would block this
/// session's thread (and keep its context) for good, even after the client hangs up.
fn ring_wait_unsubmitted(server: &Server, name: &str) -> Hostile {
    let mut s = Session::open(server, name);
    let blob = s.blob();
    let ci = ring_create_info(blob.res_id);
    s.submit(stream(|e| {
        // SAFETY: a pointer to a live local; no pointers.
        unsafe {
            g::encode_vk_create_ring_mesa(e, 0, RING_ID, &ci);
            g::encode_vk_wait_ring_seqno_mesa(e, 0, RING_ID, 4096);
        }
    }));
    Hostile {
        session: s,
        reason: &["beyond the ring's tail"],
        ring: None,
    }
}

/// (g) vkGetPhysicalDeviceFragmentShadingRatesKHR on a physical device whose
/// driver lacks VK_KHR_fragment_shading_rate (lavapipe; the host does not offer
/// it to the guest). The driver's instance-level entry point exists anyway and
/// jumps through a NULL slot (or the loader aborts): it must never be called.
fn unsupported_extension_command(server: &Server, name: &str) -> Hostile {
    const INSTANCE: u64 = 0x2000;
    const PHYSICAL: u64 = 0x2001;
    let mut s = Session::open(server, name);
    let blob = s.blob();
    s.submit(stream(|e| {
        set_reply(e, blob.res_id, 0, 60 << 10);
        create_instance(e, INSTANCE);
        enumerate_physical_devices(e, INSTANCE, Some(PHYSICAL));
        let mut count = 0u32;
        // SAFETY: a pointer to a live local; no output array.
        unsafe {
            g::encode_vk_get_physical_device_fragment_shading_rates_khr(
                e,
                REPLY,
                vk::PhysicalDevice::from_raw(PHYSICAL),
                &mut count,
                std::ptr::null_mut(),
            )
        };
    }));
    Hostile {
        session: s,
        reason: &["lacks VK_KHR_fragment_shading_rate"],
        ring: None,
    }
}

/// (f) A reply stream outside its blob, then a command that needs a reply.
/// `variant` 0: offset inside, end outside; 1: offset + size overflows 64 bits;
/// 2: no reply stream at all; 3: a reply stream too small for the reply.
fn bad_reply_stream(server: &Server, name: &str, variant: u32) -> Hostile {
    let mut s = Session::open(server, name);
    let blob = s.blob();
    let size = BLOB_SIZE as usize;
    s.submit(stream(|e| {
        match variant {
            0 => set_reply(e, blob.res_id, size - 4096, 8192),
            1 => set_reply(e, blob.res_id, usize::MAX - 8, 4096),
            2 => {}
            _ => set_reply(e, blob.res_id, 0, 4),
        }
        create_instance(e, 1);
    }));
    Hostile {
        session: s,
        reason: match variant {
            0 | 1 => &["lies outside resource"],
            2 => &["no reply stream"],
            _ => &["overflows the reply stream"],
        },
        ring: None,
    }
}

/// Every out-of-ring case plus the ring cases, by index (the RSS test cycles
/// through them). Case (d) needs two sessions and runs separately.
const CASES: usize = 13;

fn hostile_case(server: &Server, i: usize, tag: &str) -> Hostile {
    let name = |what: &str| format!("hostile-{what}-{tag}");
    match i % CASES {
        0 => truncated_command(server, &name("truncated")),
        1 => huge_array(server, &name("huge-array"), false),
        2 => huge_array(server, &name("huge-array-agreeing"), true),
        3 => unknown_command(server, &name("unknown-type"), 0x7fff_0000),
        4 => unknown_command(server, &name("negative-type"), -5),
        5 => ring_counters(server, &name("ring-tail-behind-head"), true),
        6 => ring_counters(server, &name("ring-head-past-tail"), false),
        7 => ring_wait_unsubmitted(server, &name("ring-wait-unsubmitted")),
        8 => bad_reply_stream(server, &name("reply-past-end"), 0),
        9 => bad_reply_stream(server, &name("reply-overflow"), 1),
        10 => bad_reply_stream(server, &name("reply-missing"), 2),
        11 => bad_reply_stream(server, &name("reply-too-small"), 3),
        _ => unsupported_extension_command(server, &name("unsupported-extension")),
    }
}

/// The server's log lines about session `name`: its disconnect line and the
/// fatal-context line of its context. Empty if it was not disconnected.
fn fatal_lines(log: &str, name: &str) -> String {
    let tag = format!("name={name} ");
    let Some(disconnect) = log
        .lines()
        .find(|l| l.contains("disconnecting vtest client") && l.contains(&tag))
    else {
        return String::new();
    };
    let mut out = disconnect.to_owned();
    // `ctx_id=Some(N)` on the disconnect line; the context logs `ctx=N`.
    let ctx = disconnect
        .split("ctx_id=Some(")
        .nth(1)
        .and_then(|r| r.split(')').next())
        .map(|n| format!("ctx={n}"));
    if let Some(ctx) = ctx {
        for l in log.lines() {
            if l.contains("guest context is fatal")
                && l.split_whitespace().any(|w| w == ctx.as_str())
            {
                out.push('\n');
                out.push_str(l);
            }
        }
    }
    out
}

/// Waits for the hang-up and checks what the server logged.
fn expect_cut_off(server: &Server, mut h: Hostile) {
    let name = h.session.name.clone();
    assert!(
        h.session.closed_by_server(DISCONNECT),
        "{name}: not disconnected within {DISCONNECT:?}\nserver:\n{}",
        server.log_text()
    );
    let log = server.log_text();
    let lines = fatal_lines(&log, &name);
    assert!(
        !lines.is_empty(),
        "{name}: no disconnect logged\nserver:\n{log}"
    );
    eprintln!("{lines}");
    assert!(
        h.reason.iter().any(|r| lines.contains(r)),
        "{name}: the logged reason is not one of {:?}:\n{lines}",
        h.reason
    );
    if let Some(blob) = h.ring.take() {
        let status = blob
            .map
            .word(RingLayout::tls_ring().status_offset as usize)
            .load(Ordering::Acquire);
        assert!(
            status & STATUS_FATAL != 0,
            "{name}: ring status {status:#x} lacks STATUS_FATAL"
        );
    }
}

/// (d) Client X creates instance id N; client Y, in its own context, names N in
/// vkEnumeratePhysicalDevices. Y is cut off; X's instance keeps working.
fn foreign_id(server: &Server, tag: &str) {
    const N: u64 = 0x5eed_0001;
    let mut x = Session::open(server, &format!("owner-{tag}"));
    let xb = x.blob();
    x.submit(stream(|e| {
        set_reply(e, xb.res_id, 0, 4096);
        create_instance(e, N);
    }));
    assert!(x.ping(), "owner-{tag}: session ended");
    assert_eq!(reply_head(&xb, 0), (0, 0), "owner-{tag}: vkCreateInstance");

    let mut y = Session::open(server, &format!("intruder-{tag}"));
    let yb = y.blob();
    y.submit(stream(|e| {
        set_reply(e, yb.res_id, 0, 4096);
        enumerate_physical_devices(e, N, None);
    }));
    expect_cut_off(
        server,
        Hostile {
            session: y,
            reason: &["unknown object id 1592590337 of type 1"],
            ring: None,
        },
    );

    x.submit(stream(|e| {
        seek_reply(e);
        enumerate_physical_devices(e, N, None);
    }));
    assert!(x.ping(), "owner-{tag}: cut off after the intruder");
    assert_eq!(
        reply_head(&xb, 0),
        (2, 0),
        "owner-{tag}: vkEnumeratePhysicalDevices on its own instance"
    );
}

fn spawn_compute(server: &Server) -> Child {
    server
        .venus_command(COMPUTE)
        .arg("--quiet")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("venus-compute")
}

fn expect_pass(server: &Server, child: Child, what: &str) {
    let out = child.wait_with_output().expect("venus-compute");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.lines().any(|l| l.trim() == "PASS"),
        "{what}: venus-compute failed: {}\n{stdout}\n{}\nserver:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr),
        server.log_text()
    );
}

/// Runs the compute program through stock Mesa venus again and again until `stop`,
/// so it is running during every hostile case; returns how many runs passed.
fn compute_until(server: &Server, stop: &AtomicBool) -> usize {
    let mut runs = 0;
    loop {
        expect_pass(
            server,
            spawn_compute(server),
            "the client running alongside",
        );
        runs += 1;
        if stop.load(Ordering::SeqCst) {
            return runs;
        }
    }
}

/// Sets the flag when dropped.
struct StopOnDrop<'a>(&'a AtomicBool);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

#[test]
fn hostile_streams_are_cut_off_while_mesa_venus_computes() {
    let mut server = Server::start("malformed-streams", true);
    let stop = AtomicBool::new(false);
    let runs = std::thread::scope(|scope| {
        let computing = scope.spawn(|| compute_until(&server, &stop));
        // Stops the compute loop however this closure ends (a failed case panics).
        let stopper = StopOnDrop(&stop);
        for i in 0..CASES {
            expect_cut_off(&server, hostile_case(&server, i, "0"));
        }
        foreign_id(&server, "0");
        drop(stopper);
        computing.join()
    });
    // A failed compute run panics in its thread: report it here.
    let runs = runs.unwrap_or_else(|e| std::panic::resume_unwind(e));
    eprintln!("{runs} compute runs passed alongside the hostile clients");
    assert!(server.is_running(), "the server died");
    expect_pass(
        &server,
        spawn_compute(&server),
        "a client after the hostile ones",
    );
    assert!(server.is_running(), "the server died");
}

// ---------------------------------------------------------------------------
// Memory bound.

/// A field of /proc/PID/status (`VmRSS` in KiB, `Threads`).
fn proc_status(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("{field} in /proc/{pid}/status"))
}

/// The server's open file descriptors.
fn open_fds(pid: u32) -> u64 {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .expect("proc fd")
        .count() as u64
}

/// Waits (up to `IO_TIMEOUT`) until the server's thread and fd counts are back
/// to at most `threads` and `fds`: every session, context, ring thread and blob
/// of the hostile clients is gone. Returns the last counts.
fn settle(pid: u32, threads: u64, fds: u64) -> (u64, u64) {
    let t0 = Instant::now();
    loop {
        let now = (proc_status(pid, "Threads"), open_fds(pid));
        if (now.0 <= threads && now.1 <= fds) || t0.elapsed() > IO_TIMEOUT {
            return now;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The server's (threads, fds) once they stop changing (the warm-up sessions'
/// threads have exited).
fn stable_counts(pid: u32) -> (u64, u64) {
    let sample = || (proc_status(pid, "Threads"), open_fds(pid));
    let mut last = sample();
    let t0 = Instant::now();
    loop {
        std::thread::sleep(Duration::from_millis(300));
        let now = sample();
        if now == last || t0.elapsed() > IO_TIMEOUT {
            return now;
        }
        last = now;
    }
}

/// One session sending `total` commands that fail without being fatal:
/// vkGetPhysicalDeviceImageFormatProperties for a block-compressed format with
/// linear tiling and storage usage, which lavapipe answers with
/// VK_ERROR_FORMAT_NOT_SUPPORTED. Each batch of 1,000 rewinds the reply stream.
fn failing_commands(server: &Server, total: usize) {
    const INSTANCE: u64 = 0x1000;
    const PHYSICAL: u64 = 0x1001;
    const BATCH: usize = 1000;
    let mut s = Session::open(server, "failing-commands");
    let blob = s.blob();
    s.submit(stream(|e| {
        set_reply(e, blob.res_id, 0, 60 << 10);
        create_instance(e, INSTANCE);
        enumerate_physical_devices(e, INSTANCE, Some(PHYSICAL));
    }));
    assert!(s.ping(), "failing-commands: session ended during setup");
    let query = stream(|e| {
        seek_reply(e);
        let mut props = vk::ImageFormatProperties::default();
        // SAFETY: a pointer to a live local.
        unsafe {
            g::encode_vk_get_physical_device_image_format_properties(
                e,
                REPLY,
                vk::PhysicalDevice::from_raw(PHYSICAL),
                vk::Format::BC1_RGB_UNORM_BLOCK,
                vk::ImageType::TYPE_2D,
                vk::ImageTiling::LINEAR,
                vk::ImageUsageFlags::STORAGE,
                vk::ImageCreateFlags::empty(),
                &mut props,
            )
        };
    });
    let batch: Vec<u8> = query.repeat(BATCH);
    for _ in 0..total / BATCH {
        s.submit(batch.clone());
        assert!(s.ping(), "failing-commands: cut off");
    }
    assert_eq!(
        reply_head(&blob, 0),
        (5, vk::Result::ERROR_FORMAT_NOT_SUPPORTED.as_raw()),
        "vkGetPhysicalDeviceImageFormatProperties did not fail as expected"
    );
}

/// Memory, threads and fds of the server over 300 hostile sessions (every case
/// in turn, the two-client case every 14th) and 100,000 failing commands.
///
/// The server runs with `MALLOC_ARENA_MAX=1`: with glibc's default per-thread
/// arenas (every session and ring is a thread) VmRSS wanders by 10-20 MiB with
/// the thread mix, which would hide a leak; with one arena it measures what
/// stays allocated. Measured (debug build, lavapipe, validation layer): a
/// one-off rise of about 10.5 MiB (the same after 100, 300 and 900 sessions),
/// nothing per session or per command. The bound, 32 MiB, is 3x that; a leak of
/// 75 KiB per hostile session or 220 bytes per failing command exceeds it. A
/// leaked session, context, ring thread or blob is caught exactly by the thread
/// and fd counts, which must return to where they were.
#[test]
fn server_memory_stays_bounded_under_hostile_load() {
    const BOUND_KIB: u64 = 32 << 10;
    const SESSIONS: usize = 300;
    const COMMANDS: usize = 100_000;
    let stats = std::env::temp_dir().join(format!("malformed-stats-{}", std::process::id()));
    let _ = std::fs::remove_file(&stats);
    let stats_env = stats.to_string_lossy().into_owned();
    let server = Server::start_with(
        "malformed-rss",
        true,
        &[
            ("VENUS_COMMAND_STATS", stats_env.as_str()),
            ("MALLOC_ARENA_MAX", "1"),
        ],
    );
    let pid = server.pid();
    // Warm up: driver, layer and every code path loaded once (a compute run,
    // one round of every case) before the baseline.
    expect_pass(&server, spawn_compute(&server), "warm-up");
    for i in 0..CASES {
        expect_cut_off(&server, hostile_case(&server, i, "warm"));
    }
    foreign_id(&server, "warm");
    let (threads, fds) = stable_counts(pid);
    let before = proc_status(pid, "VmRSS");
    let mut peak = before;
    let t0 = Instant::now();
    for i in 0..SESSIONS {
        let tag = format!("r{i}");
        if i % (CASES + 1) == CASES {
            foreign_id(&server, &tag);
        } else {
            expect_cut_off(&server, hostile_case(&server, i, &tag));
        }
        if i % 25 == 0 {
            peak = peak.max(proc_status(pid, "VmRSS"));
        }
    }
    let sessions_took = t0.elapsed();
    let after_sessions = proc_status(pid, "VmRSS");
    let (threads_after, fds_after) = settle(pid, threads, fds);
    let t1 = Instant::now();
    failing_commands(&server, COMMANDS);
    let commands_took = t1.elapsed();
    let after = proc_status(pid, "VmRSS");
    peak = peak.max(after_sessions).max(after);
    eprintln!(
        "server VmRSS {before} KiB at the start, {after_sessions} KiB after {SESSIONS} hostile \
         sessions ({sessions_took:?}), {after} KiB after {COMMANDS} failing commands \
         ({commands_took:?}), peak {peak} KiB; threads {threads} -> {threads_after}, \
         fds {fds} -> {fds_after}"
    );
    assert!(
        peak.saturating_sub(before) < BOUND_KIB,
        "server RSS grew by {} KiB (bound {BOUND_KIB} KiB)",
        peak.saturating_sub(before)
    );
    assert!(
        threads_after <= threads && fds_after <= fds,
        "the hostile sessions left threads ({threads} -> {threads_after}) or fds \
         ({fds} -> {fds_after}) behind"
    );
    // Every failing command really ran (the context appends its counts when the
    // session ends).
    let t0 = Instant::now();
    let want = format!("vkGetPhysicalDeviceImageFormatProperties {COMMANDS}");
    while !std::fs::read_to_string(&stats).is_ok_and(|t| t.lines().any(|l| l == want)) {
        assert!(
            t0.elapsed() < IO_TIMEOUT,
            "no \"{want}\" in the command statistics:\n{}",
            std::fs::read_to_string(&stats).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = std::fs::remove_file(&stats);
    expect_pass(&server, spawn_compute(&server), "a client after the load");
}

/// A host wait with an infinite timeout on a fence nothing will signal
/// (out-of-ring vkWaitForFences) blocks the session thread, which is then not
/// reading the socket; when the client hangs up, the context's cancel probe
/// (installed by the vtest session) sees it between wait slices, the wait ends,
/// the context turns fatal and the session, its context and threads go.
#[test]
fn a_client_blocked_in_a_host_wait_is_released_when_it_hangs_up() {
    const INSTANCE: u64 = 0x3000;
    const PHYSICAL: u64 = 0x3001;
    const DEVICE: u64 = 0x3002;
    const FENCE: u64 = 0x3003;
    let server = Server::start("malformed-blocked-wait", false);
    let pid = server.pid();
    expect_cut_off(&server, hostile_case(&server, 0, "warm"));
    let (threads, fds) = stable_counts(pid);
    let mut s = Session::open(&server, "blocked-wait");
    let blob = s.blob();
    s.submit(stream(|e| {
        set_reply(e, blob.res_id, 0, 60 << 10);
        create_instance(e, INSTANCE);
        enumerate_physical_devices(e, INSTANCE, Some(PHYSICAL));
        let prio = [1.0f32];
        let q = [vk::DeviceQueueCreateInfo::default()
            .queue_family_index(0)
            .queue_priorities(&prio)];
        let dci = vk::DeviceCreateInfo::default().queue_create_infos(&q);
        let mut dev = vk::Device::from_raw(DEVICE);
        let fci = vk::FenceCreateInfo::default();
        let mut fence = vk::Fence::from_raw(FENCE);
        // SAFETY: pointers to live locals with the counts they state.
        unsafe {
            g::encode_vk_create_device(
                e,
                REPLY,
                vk::PhysicalDevice::from_raw(PHYSICAL),
                &dci,
                std::ptr::null(),
                &mut dev,
            );
            g::encode_vk_create_fence(e, REPLY, dev, &fci, std::ptr::null(), &mut fence);
            g::encode_vk_wait_for_fences(e, REPLY, dev, 1, &fence, vk::TRUE, u64::MAX);
        }
    }));
    std::thread::sleep(Duration::from_millis(500));
    drop(s);
    drop(blob);
    let (threads_after, fds_after) = settle(pid, threads, fds);
    assert!(
        threads_after <= threads && fds_after <= fds,
        "the blocked session stayed: threads {threads} -> {threads_after}, fds {fds} -> {fds_after}"
    );
}
