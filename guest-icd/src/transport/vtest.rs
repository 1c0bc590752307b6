//! The vtest transport: a vtest protocol v3 client speaking exactly what Mesa
//! 25.0.7's Venus driver sends (`src/virtio/vulkan/vn_renderer_vtest.c`), so it works
//! against our `venus-vtest-server` and against virglrenderer's `virgl_test_server`.
//!
//! * Handshake ([`VtestTransport::connect`]): `CREATE_RENDERER(process name)`;
//!   `PING_PROTOCOL_VERSION` followed at once by `RESOURCE_BUSY_WAIT{0, 0}` (a
//!   server without ping support answers only the busy-wait, and is too old);
//!   `PROTOCOL_VERSION{3}`; `GET_PARAM{MAX_TIMELINE_COUNT}` (0 means no Venus);
//!   `GET_CAPSET{4, 0}`; `CONTEXT_INIT{4}`.
//! * Blobs: `RESOURCE_CREATE_BLOB{HOST3D, MAPPABLE, size, blob_id}`, answered with a
//!   resource id and then the blob's fd (`SCM_RIGHTS` with one data byte), which is
//!   mapped shared read-write and closed. Mesa asks MAPPABLE alone both for its
//!   shmems (`vtest_shmem_create`) and for host-visible device memory that is not
//!   exported (`vtest_bo_blob_flags`: SHAREABLE only with export handle types);
//!   blobs here are never exported, so MAPPABLE it is.
//! * Submits: `SUBMIT_CMD2` with one batch, flags RING_IDX, ring_idx 0, no syncs.
//!
//! Framing comes from [`venus_protocol::vtest`]. One mutex serializes the socket, so a
//! request and its response (and fd) are never interleaved with another thread's. Any
//! failure on the socket — I/O error, EOF, or an answer the protocol does not allow —
//! leaves the stream in an unknown state: the transport shuts the socket down, reports
//! dead ([`Transport::is_alive`]) and fails every later call.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use venus_protocol::capset::{CAPSET_ID_VENUS, CAPSET_SIZE, CAPSET_VERSION};
use venus_protocol::vtest::{
    Header, Request, Response, SubmitBatch, BLOB_FLAG_MAPPABLE, BLOB_TYPE_HOST3D,
    DEFAULT_SOCKET_NAME, HEADER_SIZE, PARAM_MAX_TIMELINE_COUNT, PROTOCOL_VERSION,
    SUBMIT_CMD2_FLAG_RING_IDX,
};

use super::{MappedBlob, Result, Transport, TransportError};

/// Renderer name sent when the process name is unknown (Mesa's fallback).
const FALLBACK_RENDERER_NAME: &str = "venus";

/// A connection to a vtest server with one Venus context.
#[derive(Debug)]
pub struct VtestTransport {
    socket: Mutex<UnixStream>,
    alive: AtomicBool,
    capset: [u8; CAPSET_SIZE],
    protocol_version: u32,
    max_timeline_count: u32,
    /// The server's capset has our tail (see `venus_protocol::capset::tail`).
    our_host: bool,
}

impl VtestTransport {
    /// Connects to `VTEST_SOCKET_NAME`, or `/tmp/.virgl_test` when it is unset or
    /// empty, and performs the handshake.
    pub fn connect_default() -> Result<Self> {
        Self::connect(&socket_path_from_env())
    }

    /// Connects to the vtest server listening on `path` and performs the handshake.
    pub fn connect(path: &Path) -> Result<Self> {
        let stream = UnixStream::connect(path).map_err(|e| {
            TransportError::Io(io::Error::new(
                e.kind(),
                format!("connecting to vtest socket {}: {e}", path.display()),
            ))
        })?;
        Self::from_stream(stream)
    }

    /// Performs the handshake on an already connected stream (e.g. one end of a
    /// socketpair handed over by a launcher).
    pub fn from_stream(stream: UnixStream) -> Result<Self> {
        let handshake = Handshake::run(&stream, &process_name());
        if handshake.is_err() {
            let _ = stream.shutdown(std::net::Shutdown::Both);
        }
        let Handshake {
            protocol_version,
            max_timeline_count,
            capset,
            our_host,
        } = handshake?;
        tracing::debug!(
            protocol_version,
            max_timeline_count,
            "vtest transport ready"
        );
        Ok(VtestTransport {
            socket: Mutex::new(stream),
            alive: AtomicBool::new(true),
            capset,
            protocol_version,
            max_timeline_count,
            our_host,
        })
    }

    /// The protocol version the server settled on (at least 3).
    pub fn protocol_version(&self) -> u32 {
        self.protocol_version
    }

    /// The number of fence timelines (ring indices) the server supports (nonzero).
    pub fn max_timeline_count(&self) -> u32 {
        self.max_timeline_count
    }

    /// Runs `f` on the socket under the lock. A failure marks the transport dead and
    /// shuts the socket down: after a partial exchange the stream cannot be trusted.
    fn exchange<T>(&self, f: impl FnOnce(&UnixStream) -> Result<T>) -> Result<T> {
        if !self.is_alive() {
            return Err(connection_lost());
        }
        let socket = self.socket.lock().unwrap_or_else(|p| p.into_inner());
        // Another thread may have failed while this one waited for the lock.
        if !self.is_alive() {
            return Err(connection_lost());
        }
        let r = f(&socket);
        if let Err(e) = &r {
            tracing::error!("vtest connection lost: {e}");
            self.alive.store(false, Ordering::SeqCst);
            let _ = socket.shutdown(std::net::Shutdown::Both);
        }
        r
    }

    /// Sends `RESOURCE_UNREF`; failures only mark the transport dead.
    fn unref(&self, res_id: u32) {
        let request = encode(&Request::ResourceUnref { res_id });
        let r = request.and_then(|bytes| self.exchange(|s| Ok(send_all(s.as_raw_fd(), &bytes)?)));
        if let Err(e) = r {
            tracing::warn!(res_id, "RESOURCE_UNREF not sent: {e}");
        }
    }
}

impl Transport for VtestTransport {
    fn capset(&self) -> Result<[u8; CAPSET_SIZE]> {
        Ok(self.capset)
    }

    fn internal_mappings(&self) -> bool {
        self.our_host
    }

    fn create_blob(&self, blob_id: u64, size: u64) -> Result<MappedBlob> {
        let len = usize::try_from(size)
            .ok()
            .filter(|l| *l > 0)
            .ok_or_else(|| {
                TransportError::Protocol(format!("cannot map a blob of {size} bytes"))
            })?;
        let request = encode(&Request::ResourceCreateBlob {
            blob_type: BLOB_TYPE_HOST3D,
            flags: BLOB_FLAG_MAPPABLE,
            size,
            blob_id,
        })?;
        let (res_id, fd) = self.exchange(|s| {
            send_all(s.as_raw_fd(), &request)?;
            let res_id = match recv_response(s.as_raw_fd())? {
                Response::ResourceCreateBlob { res_id } => res_id,
                other => return Err(unexpected("RESOURCE_CREATE_BLOB", &other)),
            };
            let fd = recv_fd(s.as_raw_fd())?;
            if res_id == 0 {
                return Err(TransportError::Protocol(
                    "RESOURCE_CREATE_BLOB answered resource id 0".into(),
                ));
            }
            Ok((res_id, fd))
        })?;
        // The fd's own size, when it has one (memfd, shm file): mapping past it would
        // turn the first access into SIGBUS. dma-bufs are not regular files; trust them.
        let mut len = len;
        let mut size = size;
        if let Some(file_size) = regular_file_size(&fd) {
            if file_size < size {
                self.unref(res_id);
                return Err(TransportError::Protocol(format!(
                    "blob {res_id} for {size} bytes is backed by only {file_size} bytes"
                )));
            }
            // The host rounds blobs up to its sharing granularity: map (and report)
            // all of it, so the ICD can learn the granularity.
            if let Ok(l) = usize::try_from(file_size) {
                len = l;
                size = file_size;
            }
        }
        // SAFETY: a fresh shared mapping chosen by the kernel (no address hint), of a
        // file descriptor we own, for `len` (> 0) bytes; nothing aliases it yet.
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
        // The mapping (if any) keeps the memory; the fd is not needed any more.
        drop(fd);
        if ptr == libc::MAP_FAILED {
            let err = io::Error::last_os_error();
            self.unref(res_id);
            return Err(TransportError::Io(io::Error::new(
                err.kind(),
                format!("mapping blob {res_id} of {size} bytes: {err}"),
            )));
        }
        tracing::trace!(res_id, blob_id, size, "blob mapped");
        Ok(MappedBlob {
            res_id,
            ptr: ptr.cast(),
            size,
        })
    }

    fn destroy_blob(&self, blob: MappedBlob) {
        unmap(&blob);
        self.unref(blob.res_id);
    }

    fn submit(&self, commands: &[u8]) -> Result<()> {
        if commands.is_empty() {
            // Mesa never sends an empty submit, and servers reject one.
            return Ok(());
        }
        let request = encode(&Request::SubmitCmd2 {
            batches: vec![SubmitBatch {
                flags: SUBMIT_CMD2_FLAG_RING_IDX,
                ring_idx: 0,
                cmd: commands.to_vec(),
                syncs: Vec::new(),
            }],
        })?;
        self.exchange(|s| Ok(send_all(s.as_raw_fd(), &request)?))
    }

    fn is_alive(&self) -> bool {
        if !self.alive.load(Ordering::SeqCst) {
            return false;
        }
        // Probe for a hang-up without consuming anything: the server never sends
        // unsolicited data, so EOF here means it is gone (a ring waiter would
        // otherwise wait forever on a head that no longer moves).
        let Ok(socket) = self.socket.try_lock() else {
            return true;
        };
        let mut byte = 0u8;
        // SAFETY: a 1-byte peek into a local buffer on our socket.
        let n = unsafe {
            libc::recv(
                socket.as_raw_fd(),
                (&mut byte as *mut u8).cast(),
                1,
                libc::MSG_PEEK | libc::MSG_DONTWAIT,
            )
        };
        if n == 0 {
            tracing::error!("vtest connection lost: the server hung up");
            self.alive.store(false, Ordering::SeqCst);
            return false;
        }
        true
    }
}

/// What the handshake learned.
struct Handshake {
    protocol_version: u32,
    max_timeline_count: u32,
    capset: [u8; CAPSET_SIZE],
    our_host: bool,
}

impl Handshake {
    fn run(stream: &UnixStream, name: &str) -> Result<Handshake> {
        let fd = stream.as_raw_fd();
        let mut out = Vec::new();
        for r in [
            Request::create_renderer(name),
            Request::PingProtocolVersion,
            // Answered even by servers that do not know the ping, so the read below
            // cannot block forever on an old server.
            Request::ResourceBusyWait {
                handle: 0,
                flags: 0,
            },
        ] {
            r.encode(&mut out).map_err(framing)?;
        }
        send_all(fd, &out)?;
        match recv_response(fd)? {
            Response::PingProtocolVersion => match recv_response(fd)? {
                Response::ResourceBusyWait { .. } => {}
                other => return Err(unexpected("RESOURCE_BUSY_WAIT", &other)),
            },
            Response::ResourceBusyWait { .. } => {
                return Err(TransportError::Unavailable(
                    "the vtest server does not know PING_PROTOCOL_VERSION (protocol < 3)".into(),
                ))
            }
            other => return Err(unexpected("PING_PROTOCOL_VERSION", &other)),
        }

        send_all(
            fd,
            &encode(&Request::ProtocolVersion {
                version: PROTOCOL_VERSION,
            })?,
        )?;
        let protocol_version = match recv_response(fd)? {
            Response::ProtocolVersion { version } => version,
            other => return Err(unexpected("PROTOCOL_VERSION", &other)),
        };
        if protocol_version < PROTOCOL_VERSION {
            return Err(TransportError::Unavailable(format!(
                "vtest protocol version {protocol_version} is too old (need {PROTOCOL_VERSION})"
            )));
        }

        let request = Request::GetParam {
            param: PARAM_MAX_TIMELINE_COUNT,
        };
        send_all(fd, &encode(&request)?)?;
        let max_timeline_count = match recv_response(fd)? {
            Response::GetParam { valid, value } => {
                if valid {
                    value
                } else {
                    0
                }
            }
            other => return Err(unexpected("GET_PARAM", &other)),
        };
        if max_timeline_count == 0 {
            return Err(TransportError::Unavailable(
                "the vtest server has no timeline support (no Venus)".into(),
            ));
        }

        let request = Request::GetCapset {
            id: CAPSET_ID_VENUS,
            version: CAPSET_VERSION,
        };
        send_all(fd, &encode(&request)?)?;
        let data = match recv_response(fd)? {
            Response::GetCapset { data: Some(data) } => data,
            Response::GetCapset { data: None } => {
                return Err(TransportError::Unavailable(
                    "the vtest server has no Venus capset".into(),
                ))
            }
            other => return Err(unexpected("GET_CAPSET", &other)),
        };
        let our_host = venus_protocol::capset::tail::granularity(&data).is_some();
        // As Mesa: a shorter capset is zero-filled, a longer one truncated.
        let mut capset = [0u8; CAPSET_SIZE];
        let n = data.len().min(CAPSET_SIZE);
        if let (Some(dst), Some(src)) = (capset.get_mut(..n), data.get(..n)) {
            dst.copy_from_slice(src);
        }

        send_all(
            fd,
            &encode(&Request::ContextInit {
                capset_id: CAPSET_ID_VENUS,
            })?,
        )?;
        Ok(Handshake {
            protocol_version,
            max_timeline_count,
            capset,
            our_host,
        })
    }
}

/// `VTEST_SOCKET_NAME`, or Mesa's default when it is unset or empty.
pub fn socket_path_from_env() -> PathBuf {
    std::env::var_os("VTEST_SOCKET_NAME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(DEFAULT_SOCKET_NAME))
}

/// The renderer name Mesa sends: the process name without its directory.
fn process_name() -> String {
    std::env::args_os()
        .next()
        .as_deref()
        .map(Path::new)
        .and_then(Path::file_name)
        .map(|n| n.to_string_lossy().into_owned())
        .filter(|n| !n.is_empty() && !n.contains('\0'))
        .unwrap_or_else(|| FALLBACK_RENDERER_NAME.to_string())
}

fn connection_lost() -> TransportError {
    TransportError::Io(io::Error::new(
        io::ErrorKind::NotConnected,
        "the vtest connection was lost earlier",
    ))
}

fn framing(e: venus_protocol::vtest::VtestError) -> TransportError {
    TransportError::Protocol(e.to_string())
}

fn unexpected(awaited: &str, got: &Response) -> TransportError {
    TransportError::Protocol(format!(
        "expected a {awaited} response, got {:?}",
        got.cmd_id()
    ))
}

/// One whole request as bytes.
fn encode(request: &Request) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    request.encode(&mut out).map_err(framing)?;
    Ok(out)
}

/// Unmaps a blob this transport mapped.
pub(super) fn unmap(blob: &MappedBlob) {
    let Ok(len) = usize::try_from(blob.size) else {
        return;
    };
    if blob.ptr.is_null() || len == 0 {
        return;
    }
    // SAFETY: the transport contract: `blob` came from this transport's
    // `create_blob`, which mapped exactly `len` bytes at `ptr`, and it is handed back
    // (by value) once, so the range is still that mapping.
    let r = unsafe { libc::munmap(blob.ptr.cast(), len) };
    if r != 0 {
        tracing::warn!(
            res_id = blob.res_id,
            "munmap failed: {}",
            io::Error::last_os_error()
        );
    }
}

/// The size of `fd` when it is a regular file (memfd, shm file), else `None`.
fn regular_file_size(fd: &OwnedFd) -> Option<u64> {
    // SAFETY: `stat` is plain data; all-zero is a valid value for fstat to overwrite.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: a valid fd and a valid out-pointer.
    if unsafe { libc::fstat(fd.as_raw_fd(), &mut st) } != 0 {
        return None;
    }
    if st.st_mode & libc::S_IFMT != libc::S_IFREG {
        return None;
    }
    u64::try_from(st.st_size).ok()
}

#[cfg(any(target_os = "linux", target_os = "android"))]
const SEND_FLAGS: libc::c_int = libc::MSG_NOSIGNAL;
#[cfg(not(any(target_os = "linux", target_os = "android")))]
const SEND_FLAGS: libc::c_int = 0;

#[cfg(any(target_os = "linux", target_os = "android"))]
const RECVMSG_FLAGS: libc::c_int = libc::MSG_CMSG_CLOEXEC;
#[cfg(not(any(target_os = "linux", target_os = "android")))]
const RECVMSG_FLAGS: libc::c_int = 0;

/// Writes all of `buf`. `send` with MSG_NOSIGNAL, not `write`: inside an application
/// that keeps SIGPIPE's default action, a server that went away must be an error,
/// not the end of the process.
fn send_all(fd: RawFd, mut buf: &[u8]) -> io::Result<()> {
    while !buf.is_empty() {
        // SAFETY: `buf` is valid for reads of `buf.len()` bytes.
        let n = unsafe { libc::send(fd, buf.as_ptr().cast(), buf.len(), SEND_FLAGS) };
        if n < 0 {
            let err = io::Error::last_os_error();
            if err.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(err);
        }
        let n = usize::try_from(n).unwrap_or(0);
        if n == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        buf = buf.get(n..).unwrap_or(&[]);
    }
    Ok(())
}

/// Reads exactly `buf.len()` bytes. Never more: an fd that follows a response rides on
/// the next byte, and a plain read that consumed that byte would drop the fd.
fn recv_exact(fd: RawFd, mut buf: &mut [u8]) -> io::Result<()> {
    while !buf.is_empty() {
        // SAFETY: `buf` is valid for writes of `buf.len()` bytes.
        let n = unsafe { libc::recv(fd, buf.as_mut_ptr().cast(), buf.len(), 0) };
        if n < 0 {
            let err = io::Error::last_os_error();
            if err.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(err);
        }
        let n = usize::try_from(n).unwrap_or(0);
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the vtest server closed the connection",
            ));
        }
        buf = std::mem::take(&mut buf).get_mut(n..).unwrap_or(&mut []);
    }
    Ok(())
}

/// Reads one response: the header, then a body of the announced size (bounded by the
/// framing's limit before anything is allocated).
fn recv_response(fd: RawFd) -> Result<Response> {
    let mut header = [0u8; HEADER_SIZE];
    recv_exact(fd, &mut header)?;
    let header = Header::from_bytes(&header).map_err(framing)?;
    let size = header.response_body_size().map_err(framing)?;
    let mut body = vec![0u8; size];
    recv_exact(fd, &mut body)?;
    Response::decode(header.cmd_id, &body).map_err(framing)
}

/// Receives the fd that follows a `RESOURCE_CREATE_BLOB` (or `SYNC_WAIT`) response,
/// with its one data byte.
fn recv_fd(fd: RawFd) -> Result<OwnedFd> {
    const FD_SIZE: libc::c_uint = std::mem::size_of::<libc::c_int>() as libc::c_uint;
    // SAFETY: CMSG_SPACE only computes a size from its argument.
    let space = unsafe { libc::CMSG_SPACE(FD_SIZE) } as usize;
    // u64 elements keep the control buffer aligned for `cmsghdr`.
    let mut control = vec![0u64; space.div_ceil(8)];
    let mut byte = [0u8; 1];
    let mut iov = libc::iovec {
        iov_base: byte.as_mut_ptr().cast(),
        iov_len: byte.len(),
    };
    // SAFETY: msghdr is a plain C struct for which all-zero is a valid (empty) value;
    // zeroing also covers the private padding fields some libcs (musl) have.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = space as _;
    let n = loop {
        // SAFETY: `msg` and what it points to (iov, byte, control) outlive the call.
        let n = unsafe { libc::recvmsg(fd, &mut msg, RECVMSG_FLAGS) };
        if n >= 0 {
            break n;
        }
        let err = io::Error::last_os_error();
        if err.kind() != io::ErrorKind::Interrupted {
            return Err(err.into());
        }
    };
    // Take ownership of whatever fds arrived first, so they are closed on any error.
    let mut fds = Vec::new();
    // SAFETY: `msg` was filled by recvmsg; CMSG_FIRSTHDR/NXTHDR walk only within
    // `msg_controllen` bytes of `control`, and CMSG_DATA of a header of type
    // SCM_RIGHTS with `cmsg_len` bytes holds (cmsg_len - CMSG_LEN(0)) / 4 fds that
    // the kernel installed in this process for us.
    unsafe {
        let mut cmsg = libc::CMSG_FIRSTHDR(&msg);
        while !cmsg.is_null() {
            let c = &*cmsg;
            if c.cmsg_level == libc::SOL_SOCKET && c.cmsg_type == libc::SCM_RIGHTS {
                let data_len = (c.cmsg_len as usize).saturating_sub(libc::CMSG_LEN(0) as usize);
                let data = libc::CMSG_DATA(cmsg).cast::<libc::c_int>();
                for i in 0..data_len / FD_SIZE as usize {
                    let raw = std::ptr::read_unaligned(data.add(i));
                    if raw >= 0 {
                        fds.push(OwnedFd::from_raw_fd(raw));
                    }
                }
            }
            cmsg = libc::CMSG_NXTHDR(&msg, cmsg);
        }
    }
    if n == 0 {
        return Err(TransportError::Io(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "the vtest server closed the connection before sending an fd",
        )));
    }
    if msg.msg_flags & libc::MSG_CTRUNC != 0 {
        return Err(TransportError::Protocol(
            "the vtest server sent more than one fd".into(),
        ));
    }
    let mut fds = fds.into_iter();
    match (fds.next(), fds.next()) {
        (Some(fd), None) => Ok(fd),
        (None, _) => Err(TransportError::Protocol(
            "the vtest server sent no fd where one was due".into(),
        )),
        (Some(_), Some(_)) => Err(TransportError::Protocol(
            "the vtest server sent more than one fd".into(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};
    use std::os::fd::AsFd;
    use std::sync::Arc;
    use std::thread::JoinHandle;

    use venus_protocol::vtest::{CommandId, SyncPoint, BLOB_TYPE_HOST3D};

    use super::*;

    /// How the fake server answers the handshake.
    #[derive(Clone)]
    struct Fake {
        ping: bool,
        version: u32,
        timelines: (bool, u32),
        capset: Option<Vec<u8>>,
    }

    impl Default for Fake {
        fn default() -> Self {
            let mut capset = vec![0u8; CAPSET_SIZE];
            capset[0] = 1;
            capset[CAPSET_SIZE - 1] = 0xcd;
            Fake {
                ping: true,
                version: 3,
                timelines: (true, 64),
                capset: Some(capset),
            }
        }
    }

    fn read_request(s: &mut UnixStream) -> Option<Request> {
        let mut h = [0u8; HEADER_SIZE];
        s.read_exact(&mut h).ok()?;
        let header = Header::from_bytes(&h).unwrap();
        let mut body = vec![0u8; header.request_body_size().unwrap()];
        s.read_exact(&mut body).ok()?;
        Some(Request::decode(header.cmd_id, &body).unwrap())
    }

    fn respond(s: &mut UnixStream, r: &Response) {
        let mut out = Vec::new();
        r.encode(&mut out).unwrap();
        s.write_all(&out).unwrap();
    }

    /// Sends `fd` with one data byte, as the servers do.
    fn send_fd(s: &UnixStream, fd: RawFd) {
        let space = unsafe_cmsg_space();
        let mut control = vec![0u64; space.div_ceil(8)];
        let mut byte = [0u8; 1];
        let mut iov = libc::iovec {
            iov_base: byte.as_mut_ptr().cast(),
            iov_len: 1,
        };
        // SAFETY: all-zero is a valid msghdr.
        let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control.as_mut_ptr().cast();
        msg.msg_controllen = space as _;
        // SAFETY: the control buffer has room for one header with one int; the
        // buffers outlive sendmsg.
        unsafe {
            let cmsg = libc::CMSG_FIRSTHDR(&msg);
            (*cmsg).cmsg_level = libc::SOL_SOCKET;
            (*cmsg).cmsg_type = libc::SCM_RIGHTS;
            (*cmsg).cmsg_len = libc::CMSG_LEN(4) as _;
            std::ptr::write_unaligned(libc::CMSG_DATA(cmsg).cast::<libc::c_int>(), fd);
            assert_eq!(libc::sendmsg(s.as_raw_fd(), &msg, 0), 1);
        }
    }

    fn unsafe_cmsg_space() -> usize {
        // SAFETY: computes a size.
        unsafe { libc::CMSG_SPACE(4) as usize }
    }

    fn memfd(size: u64) -> OwnedFd {
        // SAFETY: a NUL-terminated name; the returned fd is checked and owned.
        let fd = unsafe { libc::memfd_create(c"vtest-test".as_ptr(), libc::MFD_CLOEXEC) };
        assert!(fd >= 0);
        // SAFETY: a fresh fd we own.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        // SAFETY: a valid fd.
        let r = unsafe { libc::ftruncate(fd.as_raw_fd(), size as libc::off_t) };
        assert_eq!(r, 0);
        fd
    }

    /// Plays the handshake per `fake`, then runs `rest`; returns every request read.
    fn serve(
        mut s: UnixStream,
        fake: Fake,
        rest: impl FnOnce(&mut UnixStream, &mut Vec<Request>) + Send + 'static,
    ) -> JoinHandle<Vec<Request>> {
        std::thread::spawn(move || {
            let mut seen = Vec::new();
            for _ in 0..3 {
                seen.push(read_request(&mut s).unwrap());
            }
            if fake.ping {
                respond(&mut s, &Response::PingProtocolVersion);
            }
            respond(&mut s, &Response::ResourceBusyWait { busy: false });
            if !fake.ping {
                return seen;
            }
            seen.push(read_request(&mut s).unwrap());
            respond(
                &mut s,
                &Response::ProtocolVersion {
                    version: fake.version,
                },
            );
            if fake.version < 3 {
                return seen;
            }
            seen.push(read_request(&mut s).unwrap());
            respond(
                &mut s,
                &Response::GetParam {
                    valid: fake.timelines.0,
                    value: fake.timelines.1,
                },
            );
            if !fake.timelines.0 || fake.timelines.1 == 0 {
                return seen;
            }
            seen.push(read_request(&mut s).unwrap());
            let ok = fake.capset.is_some();
            respond(&mut s, &Response::GetCapset { data: fake.capset });
            if !ok {
                return seen;
            }
            seen.push(read_request(&mut s).unwrap());
            rest(&mut s, &mut seen);
            seen
        })
    }

    fn connect(
        fake: Fake,
        rest: impl FnOnce(&mut UnixStream, &mut Vec<Request>) + Send + 'static,
    ) -> (Result<VtestTransport>, JoinHandle<Vec<Request>>) {
        let (client, server) = UnixStream::pair().unwrap();
        let h = serve(server, fake, rest);
        (VtestTransport::from_stream(client), h)
    }

    /// Answers blob requests with a memfd of the asked size until EOF.
    fn blob_server(s: &mut UnixStream, seen: &mut Vec<Request>) {
        let mut next = 7;
        while let Some(r) = read_request(s) {
            if let Request::ResourceCreateBlob { size, .. } = r {
                respond(s, &Response::ResourceCreateBlob { res_id: next });
                next += 1;
                send_fd(s, memfd(size).as_raw_fd());
            }
            seen.push(r);
        }
    }

    #[test]
    fn handshake_blob_and_submit_are_what_mesa_sends() {
        let (t, h) = connect(Fake::default(), blob_server);
        let t = t.unwrap();
        assert!(t.is_alive());
        assert_eq!((t.protocol_version(), t.max_timeline_count()), (3, 64));
        let capset = t.capset().unwrap();
        assert_eq!((capset[0], capset[CAPSET_SIZE - 1]), (1, 0xcd));

        let blob = t.create_blob(0, 65536).unwrap();
        assert_eq!((blob.res_id, blob.size), (7, 65536));
        // SAFETY: the mapping is 65536 bytes, read-write.
        unsafe {
            blob.ptr.write(0x5a);
            blob.ptr.add(65535).write(0xa5);
            assert_eq!((blob.ptr.read(), blob.ptr.add(65535).read()), (0x5a, 0xa5));
        }
        t.destroy_blob(blob);
        let dm = t.create_blob(42, 4096).unwrap();
        assert_eq!(dm.res_id, 8);
        t.destroy_blob(dm);
        t.submit(&[1, 2, 3, 4, 5, 6, 7, 8]).unwrap();
        t.submit(&[]).unwrap();
        t.submit(&[9, 9]).unwrap();
        drop(t);

        let seen = h.join().unwrap();
        let name = match &seen[0] {
            Request::CreateRenderer { name } => name.clone(),
            other => panic!("{other:?}"),
        };
        assert_eq!(name.last(), Some(&0));
        assert!(name.len() > 1 && !name[..name.len() - 1].contains(&0));
        let batch = |cmd: &[u8]| Request::SubmitCmd2 {
            batches: vec![SubmitBatch {
                flags: SUBMIT_CMD2_FLAG_RING_IDX,
                ring_idx: 0,
                cmd: cmd.to_vec(),
                syncs: Vec::<SyncPoint>::new(),
            }],
        };
        let blob = |size, blob_id| Request::ResourceCreateBlob {
            blob_type: BLOB_TYPE_HOST3D,
            flags: BLOB_FLAG_MAPPABLE,
            size,
            blob_id,
        };
        assert_eq!(
            seen[1..],
            [
                Request::PingProtocolVersion,
                Request::ResourceBusyWait {
                    handle: 0,
                    flags: 0
                },
                Request::ProtocolVersion { version: 3 },
                Request::GetParam { param: 1 },
                Request::GetCapset { id: 4, version: 0 },
                Request::ContextInit { capset_id: 4 },
                blob(65536, 0),
                Request::ResourceUnref { res_id: 7 },
                blob(4096, 42),
                Request::ResourceUnref { res_id: 8 },
                batch(&[1, 2, 3, 4, 5, 6, 7, 8]),
                // Padded with zeros to whole dwords by the framing.
                batch(&[9, 9, 0, 0]),
            ]
        );
    }

    #[test]
    fn the_blob_is_the_servers_memory() {
        let (t, h) = connect(Fake::default(), |s, seen| {
            let r = read_request(s).unwrap();
            let fd = memfd(8192);
            respond(s, &Response::ResourceCreateBlob { res_id: 1 });
            send_fd(s, fd.as_raw_fd());
            seen.push(r);
            // Wait for the client's signal (a submit), then check what it wrote.
            seen.push(read_request(s).unwrap());
            let mut buf = [0u8; 4];
            // SAFETY: a valid fd and buffer.
            let n = unsafe { libc::pread(fd.as_raw_fd(), buf.as_mut_ptr().cast(), 4, 4096) };
            assert_eq!(n, 4);
            assert_eq!(buf, [1, 2, 3, 4]);
            // Write for the client, then tell it.
            // SAFETY: a valid fd and buffer.
            let n = unsafe { libc::pwrite(fd.as_raw_fd(), [9u8, 8].as_ptr().cast(), 2, 8190) };
            assert_eq!(n, 2);
            respond(s, &Response::PingProtocolVersion);
        });
        let t = t.unwrap();
        let blob = t.create_blob(0, 8192).unwrap();
        // SAFETY: inside the 8192-byte mapping.
        unsafe { std::ptr::copy_nonoverlapping([1u8, 2, 3, 4].as_ptr(), blob.ptr.add(4096), 4) };
        t.submit(&[0; 4]).unwrap();
        let mut ack = [0u8; HEADER_SIZE];
        recv_exact(t.socket.lock().unwrap().as_raw_fd(), &mut ack).unwrap();
        // SAFETY: inside the mapping.
        let tail = unsafe { (blob.ptr.add(8190).read(), blob.ptr.add(8191).read()) };
        assert_eq!(tail, (9, 8));
        drop(h.join().unwrap());
    }

    fn unavailable(fake: Fake) -> String {
        let (t, h) = connect(fake, |_, _| {});
        let err = t.unwrap_err();
        h.join().unwrap();
        assert!(matches!(err, TransportError::Unavailable(_)), "{err:?}");
        err.to_string()
    }

    #[test]
    fn a_server_without_ping_is_too_old() {
        let e = unavailable(Fake {
            ping: false,
            ..Fake::default()
        });
        assert!(e.contains("PING_PROTOCOL_VERSION"), "{e}");
    }

    #[test]
    fn protocol_version_2_is_too_old() {
        let e = unavailable(Fake {
            version: 2,
            ..Fake::default()
        });
        assert!(e.contains("version 2"), "{e}");
    }

    #[test]
    fn no_timelines_or_no_capset_means_no_venus() {
        unavailable(Fake {
            timelines: (false, 64),
            ..Fake::default()
        });
        unavailable(Fake {
            timelines: (true, 0),
            ..Fake::default()
        });
        let e = unavailable(Fake {
            capset: None,
            ..Fake::default()
        });
        assert!(e.contains("capset"), "{e}");
    }

    #[test]
    fn a_short_capset_is_zero_filled_and_a_long_one_truncated() {
        let (t, h) = connect(
            Fake {
                capset: Some(vec![0xff; 100]),
                ..Fake::default()
            },
            |_, _| {},
        );
        let c = t.unwrap().capset().unwrap();
        assert!(c[..100].iter().all(|b| *b == 0xff) && c[100..].iter().all(|b| *b == 0));
        h.join().unwrap();

        let long: Vec<u8> = (0..200u8).collect();
        let (t, h) = connect(
            Fake {
                capset: Some(long.clone()),
                ..Fake::default()
            },
            |_, _| {},
        );
        assert_eq!(t.unwrap().capset().unwrap()[..], long[..CAPSET_SIZE]);
        h.join().unwrap();
    }

    #[test]
    fn a_vanished_server_makes_the_transport_dead() {
        let (t, h) = connect(Fake::default(), |_, _| {});
        let t = t.unwrap();
        // The server thread returns and drops its end.
        h.join().unwrap();
        let err = t.submit(&[0; 8]).unwrap_err();
        assert!(matches!(err, TransportError::Io(_)), "{err:?}");
        assert!(!t.is_alive());
        let err = t.create_blob(0, 4096).unwrap_err();
        assert!(
            matches!(err, TransportError::Io(ref e) if e.kind() == io::ErrorKind::NotConnected)
        );
    }

    #[test]
    fn eof_while_waiting_for_a_blob_makes_the_transport_dead() {
        let (t, h) = connect(Fake::default(), |s, seen| {
            seen.push(read_request(s).unwrap());
        });
        let t = t.unwrap();
        let err = t.create_blob(0, 4096).unwrap_err();
        assert!(
            matches!(err, TransportError::Io(ref e) if e.kind() == io::ErrorKind::UnexpectedEof)
        );
        assert!(!t.is_alive());
        h.join().unwrap();
    }

    #[test]
    fn a_wrong_answer_makes_the_transport_dead() {
        let (t, h) = connect(Fake::default(), |s, _| {
            read_request(s).unwrap();
            respond(s, &Response::SyncCreate { sync_id: 1 });
            // Keep the socket open until the client gives up.
            let _ = read_request(s);
        });
        let t = t.unwrap();
        let err = t.create_blob(0, 4096).unwrap_err();
        assert!(matches!(err, TransportError::Protocol(_)), "{err:?}");
        assert!(!t.is_alive());
        assert!(t.submit(&[0; 4]).is_err());
        h.join().unwrap();
    }

    #[test]
    fn a_huge_length_is_refused_before_allocating() {
        let (t, h) = connect(Fake::default(), |s, _| {
            read_request(s).unwrap();
            let header = Header {
                len: u32::MAX,
                cmd_id: CommandId::ResourceCreateBlob.raw(),
            };
            s.write_all(&header.to_bytes()).unwrap();
            let _ = read_request(s);
        });
        let t = t.unwrap();
        let err = t.create_blob(0, 4096).unwrap_err();
        assert!(matches!(err, TransportError::Protocol(_)), "{err:?}");
        assert!(!t.is_alive());
        h.join().unwrap();
    }

    #[test]
    fn a_blob_answer_without_an_fd_is_refused() {
        let (t, h) = connect(Fake::default(), |s, _| {
            read_request(s).unwrap();
            respond(s, &Response::ResourceCreateBlob { res_id: 3 });
            s.write_all(&[0]).unwrap();
            let _ = read_request(s);
        });
        let t = t.unwrap();
        let err = t.create_blob(0, 4096).unwrap_err();
        assert!(err.to_string().contains("no fd"), "{err}");
        assert!(!t.is_alive());
        h.join().unwrap();
    }

    #[test]
    fn a_blob_smaller_than_asked_is_not_mapped() {
        let (t, h) = connect(Fake::default(), |s, seen| {
            read_request(s).unwrap();
            respond(s, &Response::ResourceCreateBlob { res_id: 5 });
            send_fd(s, memfd(4096).as_fd().as_raw_fd());
            seen.push(read_request(s).unwrap());
            // Keep the socket open until the client hangs up: `is_alive` below
            // must not see this fake server's exit.
            let _ = read_request(s);
        });
        let t = t.unwrap();
        let err = t.create_blob(0, 65536).unwrap_err();
        assert!(matches!(err, TransportError::Protocol(_)), "{err:?}");
        // Refused locally: the stream is intact and the resource was released.
        assert!(t.is_alive());
        drop(t);
        let seen = h.join().unwrap();
        assert_eq!(seen.last(), Some(&Request::ResourceUnref { res_id: 5 }));
    }

    #[test]
    fn zero_sized_blobs_are_refused_without_asking() {
        let (t, h) = connect(Fake::default(), blob_server);
        let t = t.unwrap();
        assert!(t.create_blob(0, 0).is_err());
        assert!(t.is_alive());
        drop(t);
        assert_eq!(h.join().unwrap().len(), 7);
    }

    #[test]
    fn threads_share_the_socket_without_interleaving() {
        let (t, h) = connect(Fake::default(), blob_server);
        let t = Arc::new(t.unwrap());
        let workers: Vec<_> = (0..4)
            .map(|i| {
                let t = Arc::clone(&t);
                std::thread::spawn(move || {
                    for j in 0..25u64 {
                        let size = 4096 * (1 + (i + j) % 4);
                        let b = t.create_blob(0, size).unwrap();
                        assert_eq!(b.size, size);
                        t.submit(&[i as u8; 12]).unwrap();
                        t.destroy_blob(b);
                    }
                })
            })
            .collect();
        for w in workers {
            w.join().unwrap();
        }
        assert!(t.is_alive());
        drop(t);
        let seen = h.join().unwrap();
        let count = |id: CommandId| seen.iter().filter(|r| r.cmd_id() == id).count();
        assert_eq!(count(CommandId::ResourceCreateBlob), 100);
        assert_eq!(count(CommandId::ResourceUnref), 100);
        assert_eq!(count(CommandId::SubmitCmd2), 100);
    }

    #[test]
    fn the_socket_path_comes_from_the_environment() {
        // Only reads: other tests do not set the variable.
        if std::env::var_os("VTEST_SOCKET_NAME").is_none() {
            assert_eq!(socket_path_from_env(), PathBuf::from("/tmp/.virgl_test"));
        }
    }

    #[test]
    fn connecting_to_nothing_is_an_io_error() {
        let err = VtestTransport::connect(Path::new("/nonexistent/vtest.sock")).unwrap_err();
        assert!(matches!(err, TransportError::Io(_)), "{err:?}");
    }
}
