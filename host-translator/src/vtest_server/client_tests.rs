//! Session tests against a fake core: every request, the sync/fence plumbing of
//! `SUBMIT_CMD2`, and the reasons a client is disconnected.

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use venus_protocol::capset::CAPSET_SIZE;
use venus_protocol::vtest::{
    Request, Response, SubmitBatch, SyncPoint, BLOB_FLAG_MAPPABLE, BLOB_TYPE_GUEST,
    BLOB_TYPE_HOST3D, SUBMIT_CMD2_FLAG_RING_IDX, SYNC_WAIT_TIMEOUT_INFINITE,
};

use super::*;
use crate::vtest_server::sys::poll_readable;
use crate::{Blob, Error, FenceSink};

/// What the fake core saw, shared with the test.
#[derive(Default)]
struct Record {
    contexts: Mutex<Vec<(u32, String)>>,
    submits: Mutex<Vec<Vec<u8>>>,
    blobs: Mutex<Vec<(u32, u64, u64, u32)>>,
    destroyed: Mutex<Vec<u32>>,
    fences: Mutex<Vec<(u32, u64)>>,
    sink: Mutex<Option<Arc<dyn FenceSink>>>,
    fatal: AtomicBool,
    dropped: AtomicBool,
    /// Retire fences synchronously inside `submit_fence`.
    retire_at_once: bool,
}

struct FakeBackend(Arc<Record>);

struct FakeContext {
    ctx_id: u32,
    record: Arc<Record>,
    fences: Arc<dyn FenceSink>,
}

const CAPSET: [u8; CAPSET_SIZE] = {
    let mut c = [0u8; CAPSET_SIZE];
    let mut i = 0;
    while i < CAPSET_SIZE {
        c[i] = i as u8;
        i += 1;
    }
    c
};

impl Backend for FakeBackend {
    type Context = FakeContext;

    fn capset_bytes(&self) -> Vec<u8> {
        CAPSET.to_vec()
    }

    fn create_context(
        &self,
        ctx_id: u32,
        name: &str,
        fences: Arc<dyn FenceSink>,
    ) -> crate::Result<FakeContext> {
        self.0
            .contexts
            .lock()
            .unwrap()
            .push((ctx_id, name.to_owned()));
        *self.0.sink.lock().unwrap() = Some(Arc::clone(&fences));
        Ok(FakeContext {
            ctx_id,
            record: Arc::clone(&self.0),
            fences,
        })
    }
}

impl BackendContext for FakeContext {
    fn submit_cmd(&self, data: &[u8]) -> crate::Result<()> {
        if data.starts_with(b"FAIL") {
            return Err(Error::Fatal {
                ctx: self.ctx_id,
                reason: "bad stream".into(),
            });
        }
        self.record.submits.lock().unwrap().push(data.to_vec());
        Ok(())
    }

    fn create_blob(&self, res_id: u32, blob_id: u64, size: u64, flags: u32) -> crate::Result<Blob> {
        self.record
            .blobs
            .lock()
            .unwrap()
            .push((res_id, blob_id, size, flags));
        let path = std::env::temp_dir().join(format!("vtest-blob-{}-{res_id}", std::process::id()));
        let file = File::options()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
            .unwrap();
        std::fs::remove_file(&path).unwrap();
        file.set_len(size).unwrap();
        Ok(Blob {
            fd: file.into(),
            size,
        })
    }

    fn destroy_resource(&self, res_id: u32) {
        self.record.destroyed.lock().unwrap().push(res_id);
    }

    fn submit_fence(&self, ring_idx: u32, fence_id: u64) -> crate::Result<()> {
        self.record
            .fences
            .lock()
            .unwrap()
            .push((ring_idx, fence_id));
        if self.record.retire_at_once {
            self.fences.fence_retired(self.ctx_id, ring_idx, fence_id);
        }
        Ok(())
    }

    fn is_fatal(&self) -> bool {
        self.record.fatal.load(Ordering::SeqCst)
    }
}

impl Drop for FakeContext {
    fn drop(&mut self) {
        self.record.dropped.store(true, Ordering::SeqCst);
    }
}

struct Harness {
    client: UnixStream,
    record: Arc<Record>,
    shutting_down: Arc<AtomicBool>,
    session: JoinHandle<Disconnect>,
}

fn start(retire_at_once: bool) -> Harness {
    let (server, client) = UnixStream::pair().unwrap();
    client
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let record = Arc::new(Record {
        retire_at_once,
        ..Record::default()
    });
    let shutting_down = Arc::new(AtomicBool::new(false));
    let mut session = Session::new(
        server,
        Arc::new(FakeBackend(Arc::clone(&record))),
        Arc::new(ServerIds::new()),
        Arc::clone(&shutting_down),
    );
    let session = std::thread::spawn(move || session.run());
    Harness {
        client,
        record,
        shutting_down,
        session,
    }
}

impl Harness {
    fn send(&mut self, request: &Request) {
        let mut out = Vec::new();
        request.encode(&mut out).unwrap();
        self.client.write_all(&out).unwrap();
    }

    fn send_raw(&mut self, bytes: &[u8]) {
        self.client.write_all(bytes).unwrap();
    }

    fn recv(&mut self) -> Response {
        let mut header = [0u8; HEADER_SIZE];
        self.client.read_exact(&mut header).unwrap();
        let header = Header::from_bytes(&header).unwrap();
        let mut body = vec![0u8; header.response_body_size().unwrap()];
        self.client.read_exact(&mut body).unwrap();
        Response::decode(header.cmd_id, &body).unwrap()
    }

    fn call(&mut self, request: &Request) -> Response {
        self.send(request);
        self.recv()
    }

    /// Receives a passed fd the way Mesa's `vtest_receive_fd` does.
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
        // SAFETY: msg points at live buffers for the duration of the call.
        let n = unsafe { libc::recvmsg(self.client.as_raw_fd(), &mut msg, 0) };
        assert_eq!(n, 1, "recvmsg: {}", std::io::Error::last_os_error());
        // SAFETY: msg was filled by recvmsg; CMSG_FIRSTHDR checks the length.
        let cmsg = unsafe { libc::CMSG_FIRSTHDR(&msg) };
        assert!(!cmsg.is_null(), "no control message with the fd");
        // SAFETY: cmsg is a valid header inside `control`.
        let (level, kind) = unsafe { ((*cmsg).cmsg_level, (*cmsg).cmsg_type) };
        assert_eq!((level, kind), (libc::SOL_SOCKET, libc::SCM_RIGHTS));
        // SAFETY: an SCM_RIGHTS message carries at least one int; we own the fd now.
        unsafe {
            let raw = std::ptr::read_unaligned(libc::CMSG_DATA(cmsg).cast::<libc::c_int>());
            OwnedFd::from_raw_fd(raw)
        }
    }

    /// Mesa's handshake up to and including CONTEXT_INIT.
    fn handshake(&mut self) {
        self.send(&Request::create_renderer("test-client"));
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
        self.send(&Request::ContextInit { capset_id: 4 });
    }

    fn sync_create(&mut self, initial_value: u64) -> u32 {
        match self.call(&Request::SyncCreate { initial_value }) {
            Response::SyncCreate { sync_id } => sync_id,
            other => panic!("{other:?}"),
        }
    }

    fn sync_read(&mut self, sync_id: u32) -> u64 {
        match self.call(&Request::SyncRead { sync_id }) {
            Response::SyncRead { value } => value,
            other => panic!("{other:?}"),
        }
    }

    fn sync_wait(&mut self, flags: u32, timeout_ms: u32, syncs: &[SyncPoint]) -> OwnedFd {
        self.send(&Request::SyncWait {
            flags,
            timeout_ms,
            syncs: syncs.to_vec(),
        });
        assert_eq!(self.recv(), Response::SyncWait);
        self.recv_fd()
    }

    /// Closes the client side and returns how the session ended.
    fn finish(self) -> (Disconnect, Arc<Record>) {
        drop(self.client);
        (self.session.join().unwrap(), self.record)
    }

    /// Waits for the session to end on its own (the server disconnecting us).
    fn ended(mut self) -> Disconnect {
        let mut buf = [0u8; 64];
        // The server closes its end: reads drain to EOF.
        while matches!(self.client.read(&mut buf), Ok(n) if n > 0) {}
        self.session.join().unwrap()
    }
}

fn readable(fd: &OwnedFd) -> bool {
    use std::os::fd::AsFd;
    poll_readable(&[fd.as_fd()], 0).unwrap() == vec![true]
}

fn point(sync_id: u32, value: u64) -> SyncPoint {
    SyncPoint { sync_id, value }
}

fn batch(cmd: &[u8], ring_idx: u32, flags: u32, syncs: &[SyncPoint]) -> Request {
    Request::SubmitCmd2 {
        batches: vec![SubmitBatch {
            flags,
            ring_idx,
            cmd: cmd.to_vec(),
            syncs: syncs.to_vec(),
        }],
    }
}

#[test]
fn handshake_params_and_capsets() {
    let mut h = start(false);
    h.handshake();
    assert_eq!(
        h.call(&Request::GetParam { param: 1 }),
        Response::GetParam {
            valid: true,
            value: 64
        }
    );
    assert_eq!(
        h.call(&Request::GetParam { param: 2 }),
        Response::GetParam {
            valid: false,
            value: 0
        }
    );
    assert_eq!(
        h.call(&Request::GetCapset { id: 4, version: 0 }),
        Response::GetCapset {
            data: Some(CAPSET.to_vec())
        }
    );
    for (id, version) in [(4, 1), (1, 0), (2, 0), (0, 0)] {
        assert_eq!(
            h.call(&Request::GetCapset { id, version }),
            Response::GetCapset { data: None },
            "capset {id} version {version}"
        );
    }
    // A repeated CONTEXT_INIT with the same capset is accepted (as virglrenderer).
    h.send(&Request::ContextInit { capset_id: 4 });
    assert_eq!(
        h.call(&Request::PingProtocolVersion),
        Response::PingProtocolVersion
    );
    let (end, record) = h.finish();
    assert!(matches!(end, Disconnect::Closed), "{end}");
    assert_eq!(
        *record.contexts.lock().unwrap(),
        vec![(1, "test-client".to_owned())]
    );
    assert!(record.dropped.load(Ordering::SeqCst), "context not dropped");
}

#[test]
fn blobs_are_created_passed_and_unreffed() {
    let mut h = start(false);
    h.handshake();
    let sizes = [4096u64, 65536];
    let mut ids = Vec::new();
    for (i, size) in sizes.into_iter().enumerate() {
        let Response::ResourceCreateBlob { res_id } = h.call(&Request::ResourceCreateBlob {
            blob_type: BLOB_TYPE_HOST3D,
            flags: BLOB_FLAG_MAPPABLE,
            size,
            blob_id: i as u64,
        }) else {
            panic!("no blob response");
        };
        let fd = File::from(h.recv_fd());
        assert_eq!(fd.metadata().unwrap().len(), size);
        assert_ne!(res_id, 0);
        ids.push(res_id);
    }
    assert_ne!(ids[0], ids[1]);
    h.send(&Request::ResourceUnref { res_id: ids[0] });
    h.send(&Request::ResourceUnref { res_id: 999 }); // unknown: ignored
    h.send(&Request::ResourceUnref { res_id: ids[0] }); // twice: ignored
    assert_eq!(
        h.call(&Request::PingProtocolVersion),
        Response::PingProtocolVersion
    );
    let (end, record) = h.finish();
    assert!(matches!(end, Disconnect::Closed), "{end}");
    assert_eq!(
        *record.blobs.lock().unwrap(),
        vec![
            (ids[0], 0, 4096, BLOB_FLAG_MAPPABLE),
            (ids[1], 1, 65536, BLOB_FLAG_MAPPABLE)
        ]
    );
    assert_eq!(*record.destroyed.lock().unwrap(), vec![ids[0]]);
}

#[test]
fn submit_signals_syncs_when_the_fence_retires() {
    let mut h = start(false);
    h.handshake();
    let a = h.sync_create(0);
    let b = h.sync_create(10);
    h.send(&batch(
        b"\x01\x02\x03\x04\x05",
        2,
        SUBMIT_CMD2_FLAG_RING_IDX,
        &[point(a, 5), point(b, 11)],
    ));
    let wait = h.sync_wait(0, SYNC_WAIT_TIMEOUT_INFINITE, &[point(a, 5), point(b, 11)]);
    assert!(!readable(&wait));
    assert_eq!(h.sync_read(a), 0);
    // The command stream reached the core padded to dwords, then the fence.
    assert_eq!(
        *h.record.submits.lock().unwrap(),
        vec![vec![1, 2, 3, 4, 5, 0, 0, 0]]
    );
    let fences = h.record.fences.lock().unwrap().clone();
    assert_eq!(fences.len(), 1);
    let (ring, fence_id) = fences[0];
    assert_eq!(ring, 2);
    // The core retires the fence from another thread.
    let sink = h.record.sink.lock().unwrap().clone().unwrap();
    std::thread::spawn(move || sink.fence_retired(1, ring, fence_id))
        .join()
        .unwrap();
    assert!(readable(&wait));
    assert_eq!(h.sync_read(a), 5);
    assert_eq!(h.sync_read(b), 11);
    let (end, _) = h.finish();
    assert!(matches!(end, Disconnect::Closed), "{end}");
}

#[test]
fn fences_retired_inside_submit_fence_do_not_deadlock() {
    let mut h = start(true);
    h.handshake();
    let a = h.sync_create(0);
    // Sync-only batch: no command stream goes to the core.
    h.send(&batch(b"", 0, SUBMIT_CMD2_FLAG_RING_IDX, &[point(a, 3)]));
    assert_eq!(h.sync_read(a), 3);
    assert!(h.record.submits.lock().unwrap().is_empty());
    assert_eq!(h.record.fences.lock().unwrap().len(), 1);
    // Without the ring flag the syncs are signalled right after the batch runs.
    h.send(&batch(b"abcd", 5, 0, &[point(a, 7)]));
    assert_eq!(h.sync_read(a), 7);
    assert_eq!(h.record.fences.lock().unwrap().len(), 1);
    // No syncs: no fence.
    h.send(&batch(b"efgh", 1, SUBMIT_CMD2_FLAG_RING_IDX, &[]));
    assert_eq!(h.sync_read(a), 7);
    assert_eq!(h.record.fences.lock().unwrap().len(), 1);
    assert_eq!(h.record.submits.lock().unwrap().len(), 2);
    let (end, _) = h.finish();
    assert!(matches!(end, Disconnect::Closed), "{end}");
}

#[test]
fn sync_requests() {
    let mut h = start(false);
    h.handshake();
    let a = h.sync_create(u64::MAX - 1);
    assert_eq!(h.sync_read(a), u64::MAX - 1);
    h.send(&Request::SyncWrite {
        sync_id: a,
        value: 1 << 40,
    });
    assert_eq!(h.sync_read(a), 1 << 40);
    let ready = h.sync_wait(0, 0, &[point(a, 1 << 40)]);
    assert!(readable(&ready));
    let pending = h.sync_wait(0, 1000, &[point(a, (1 << 40) + 1)]);
    assert!(!readable(&pending));
    h.send(&Request::SyncWrite {
        sync_id: a,
        value: (1 << 40) + 1,
    });
    assert_eq!(h.sync_read(a), (1 << 40) + 1);
    assert!(readable(&pending));
    h.send(&Request::SyncUnref { sync_id: a });
    h.send(&Request::SyncUnref { sync_id: a }); // unknown: ignored
    h.send(&Request::SyncRead { sync_id: a });
    let end = h.ended();
    assert!(
        matches!(
            end,
            Disconnect::Sync(CommandId::SyncRead, SyncError::UnknownSync(_))
        ),
        "{end}"
    );
}

/// Runs `steps` after the handshake (or without it) and returns how the session ended.
fn misbehave(handshake: bool, steps: impl FnOnce(&mut Harness)) -> Disconnect {
    let mut h = start(false);
    if handshake {
        h.handshake();
    }
    steps(&mut h);
    h.ended()
}

#[test]
fn misbehaving_clients_are_disconnected() {
    let end = misbehave(false, |h| h.send(&Request::PingProtocolVersion));
    assert!(
        matches!(
            end,
            Disconnect::OutOfOrder(CommandId::PingProtocolVersion, _)
        ),
        "{end}"
    );

    let end = misbehave(false, |h| {
        h.send(&Request::create_renderer("x"));
        h.send(&Request::create_renderer("x"));
    });
    assert!(
        matches!(end, Disconnect::OutOfOrder(CommandId::CreateRenderer, _)),
        "{end}"
    );

    let end = misbehave(false, |h| {
        h.send(&Request::create_renderer("x"));
        h.send(&batch(b"abcd", 0, SUBMIT_CMD2_FLAG_RING_IDX, &[]));
    });
    assert!(
        matches!(end, Disconnect::OutOfOrder(CommandId::SubmitCmd2, _)),
        "{end}"
    );

    let end = misbehave(false, |h| {
        h.send(&Request::create_renderer("x"));
        h.send(&Request::ContextInit { capset_id: 4 });
    });
    assert!(
        matches!(end, Disconnect::OutOfOrder(CommandId::ContextInit, _)),
        "{end}"
    );

    let end = misbehave(false, |h| {
        h.send(&Request::create_renderer("x"));
        h.send(&Request::ProtocolVersion { version: 2 });
    });
    assert!(
        matches!(end, Disconnect::Refused(CommandId::ProtocolVersion, _)),
        "{end}"
    );

    let end = misbehave(false, |h| {
        h.send(&Request::create_renderer("x"));
        h.send(&Request::ResourceBusyWait {
            handle: 3,
            flags: 1,
        });
    });
    assert!(
        matches!(end, Disconnect::OutOfOrder(CommandId::ResourceBusyWait, _)),
        "{end}"
    );

    let end = misbehave(true, |h| h.send_raw(&[0, 0, 0, 0, 99, 0, 0, 0]));
    assert!(matches!(end, Disconnect::UnknownCommand(99)), "{end}");

    let end = misbehave(true, |h| h.send_raw(&[0, 0, 0, 0, 0, 0, 0, 0]));
    assert!(matches!(end, Disconnect::UnknownCommand(0)), "{end}");

    // Pre-v3 virgl command.
    let end = misbehave(true, |h| h.send_raw(&[0, 0, 0, 0, 6, 0, 0, 0]));
    assert!(
        matches!(end, Disconnect::UnsupportedCommand(CommandId::SubmitCmd)),
        "{end}"
    );

    // 4 GiB body announced.
    let end = misbehave(true, |h| h.send_raw(&[0xff, 0xff, 0xff, 0xff, 24, 0, 0, 0]));
    assert!(
        matches!(end, Disconnect::Malformed(VtestError::Oversized { .. })),
        "{end}"
    );

    // Wrong fixed body length.
    let end = misbehave(true, |h| {
        h.send_raw(&[2, 0, 0, 0, 21, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0])
    });
    assert!(
        matches!(end, Disconnect::Malformed(VtestError::BodyLength { .. })),
        "{end}"
    );

    // Body cut short by the client going away.
    let mut h = start(false);
    h.handshake();
    h.send_raw(&[3, 0, 0, 0, 22, 0, 0, 0, 1, 0]);
    let (end, _) = h.finish();
    assert!(matches!(end, Disconnect::Io(_)), "{end}");

    // Header cut short.
    let mut h = start(false);
    h.handshake();
    h.send_raw(&[3, 0, 0]);
    let (end, _) = h.finish();
    assert!(
        matches!(
            end,
            Disconnect::Malformed(VtestError::TruncatedHeader { .. })
        ),
        "{end}"
    );

    let end = misbehave(true, |h| h.send(&Request::ContextInit { capset_id: 1 }));
    assert!(
        matches!(end, Disconnect::Refused(CommandId::ContextInit, _)),
        "{end}"
    );

    let end = misbehave(false, |h| {
        h.send(&Request::create_renderer("x"));
        assert_eq!(
            h.call(&Request::ProtocolVersion { version: 7 }),
            Response::ProtocolVersion { version: 3 }
        );
        h.send(&Request::ContextInit { capset_id: 2 });
    });
    assert!(
        matches!(end, Disconnect::Refused(CommandId::ContextInit, _)),
        "{end}"
    );

    let end = misbehave(true, |h| {
        h.send(&Request::ResourceCreateBlob {
            blob_type: BLOB_TYPE_GUEST,
            flags: 0,
            size: 4096,
            blob_id: 0,
        })
    });
    assert!(
        matches!(end, Disconnect::Refused(CommandId::ResourceCreateBlob, _)),
        "{end}"
    );

    let end = misbehave(true, |h| {
        h.send(&batch(b"abcd", 64, SUBMIT_CMD2_FLAG_RING_IDX, &[]))
    });
    assert!(
        matches!(end, Disconnect::Sync(_, SyncError::BadRing(64))),
        "{end}"
    );

    let end = misbehave(true, |h| {
        h.send(&batch(
            b"abcd",
            1,
            SUBMIT_CMD2_FLAG_RING_IDX,
            &[point(77, 1)],
        ))
    });
    assert!(
        matches!(end, Disconnect::Sync(_, SyncError::UnknownSync(77))),
        "{end}"
    );

    let end = misbehave(true, |h| {
        h.send(&batch(b"FAIL", 1, SUBMIT_CMD2_FLAG_RING_IDX, &[]))
    });
    assert!(
        matches!(
            end,
            Disconnect::Core {
                call: "submit_cmd",
                ..
            }
        ),
        "{end}"
    );

    let end = misbehave(true, |h| {
        h.send(&Request::SyncWait {
            flags: 0,
            timeout_ms: 0,
            syncs: vec![point(5, 1)],
        })
    });
    assert!(
        matches!(
            end,
            Disconnect::Sync(CommandId::SyncWait, SyncError::UnknownSync(5))
        ),
        "{end}"
    );
}

#[test]
fn idle_session_notices_a_fatal_context_and_shutdown() {
    let mut h = start(false);
    h.handshake();
    assert_eq!(
        h.call(&Request::PingProtocolVersion),
        Response::PingProtocolVersion
    );
    h.record.fatal.store(true, Ordering::SeqCst);
    // No message needed: the idle check ends the session.
    let end = h.ended();
    assert!(matches!(end, Disconnect::Fatal(1)), "{end}");

    let mut h = start(false);
    h.handshake();
    assert_eq!(
        h.call(&Request::PingProtocolVersion),
        Response::PingProtocolVersion
    );
    h.shutting_down.store(true, Ordering::SeqCst);
    let record = Arc::clone(&h.record);
    let end = h.ended();
    assert!(matches!(end, Disconnect::Shutdown), "{end}");
    assert!(record.dropped.load(Ordering::SeqCst));
}
