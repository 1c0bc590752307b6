//! One vtest client connection: reads requests, answers them, owns the client's
//! context, resources and syncs. Everything the client sends is untrusted; any
//! misbehaviour ends this session (and nothing else) with a [`Disconnect`] reason.

use std::collections::HashSet;
use std::io::{self, Read, Write};
use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;

use thiserror::Error;
use venus_protocol::capset::{CAPSET_ID_VENUS, CAPSET_VERSION};
use venus_protocol::vtest::{
    CommandId, Header, Request, Response, SubmitBatch, SyncPoint, VtestError, BLOB_TYPE_HOST3D,
    HEADER_SIZE, PARAM_MAX_TIMELINE_COUNT, PROTOCOL_VERSION, SUBMIT_CMD2_FLAG_RING_IDX,
};

use super::backend::{Backend, BackendContext};
use super::sync::{SyncError, Syncs, MAX_TIMELINE_COUNT};
use super::sys::{poll_readable, send_fd};

/// How often an idle session checks whether its context went fatal or the server is
/// shutting down.
const IDLE_CHECK_MS: i32 = 250;

/// Live resources one client may hold.
pub(crate) const MAX_RESOURCES: usize = 1 << 20;

/// Longest renderer name kept for logs and the context name.
const MAX_NAME_CHARS: usize = 128;

/// Ids shared by all sessions of a server: context ids and resource ids are unique
/// server-wide (the core may keep resources in one table), sync ids per client.
#[derive(Debug)]
pub(crate) struct ServerIds {
    next_ctx_id: AtomicU32,
    next_res_id: AtomicU32,
}

impl ServerIds {
    pub(crate) fn new() -> Self {
        Self {
            next_ctx_id: AtomicU32::new(1),
            next_res_id: AtomicU32::new(1),
        }
    }

    fn take(counter: &AtomicU32) -> Option<u32> {
        counter
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |id| id.checked_add(1))
            .ok()
    }

    fn ctx_id(&self) -> Option<u32> {
        Self::take(&self.next_ctx_id)
    }

    fn res_id(&self) -> Option<u32> {
        Self::take(&self.next_res_id)
    }
}

/// Why a session ended.
#[derive(Debug, Error)]
pub(crate) enum Disconnect {
    /// The client closed the connection between messages.
    #[error("client closed the connection")]
    Closed,
    /// The server is shutting down.
    #[error("server shutting down")]
    Shutdown,
    /// Reading or writing the socket failed, or it closed in the middle of a message.
    #[error("connection error: {0}")]
    Io(#[from] io::Error),
    /// The message framing or a body is malformed.
    #[error("malformed message: {0}")]
    Malformed(#[from] VtestError),
    /// A command id that is not in `vtest_protocol.h`.
    #[error("unknown command id {0}")]
    UnknownCommand(u32),
    /// A known command this server does not implement (virgl-only, pre-v3).
    #[error("unsupported command {0:?} (this server speaks vtest v3 for Venus only)")]
    UnsupportedCommand(CommandId),
    /// A message in the wrong place (e.g. before `CREATE_RENDERER` or `CONTEXT_INIT`).
    #[error("{0:?} out of order: {1}")]
    OutOfOrder(CommandId, &'static str),
    /// A request with a value the server refuses.
    #[error("{0:?} refused: {1}")]
    Refused(CommandId, String),
    /// A sync request that cannot be carried out.
    #[error("{0:?}: {1}")]
    Sync(CommandId, SyncError),
    /// The core failed a call for this client's context.
    #[error("context {ctx_id}: {call} failed: {error}")]
    Core {
        /// The context.
        ctx_id: u32,
        /// The context method.
        call: &'static str,
        /// Its error.
        error: crate::Error,
    },
    /// The context became fatal.
    #[error("context {0} became fatal")]
    Fatal(u32),
}

impl Disconnect {
    /// Whether this is an orderly end rather than a client or context fault.
    pub(crate) fn is_orderly(&self) -> bool {
        matches!(self, Disconnect::Closed | Disconnect::Shutdown)
    }
}

/// The Venus context of a session, after `CONTEXT_INIT`.
struct Venus<C> {
    ctx_id: u32,
    ctx: C,
    syncs: Arc<Syncs>,
    resources: HashSet<u32>,
}

/// One client connection.
pub(crate) struct Session<B: Backend> {
    stream: UnixStream,
    backend: Arc<B>,
    ids: Arc<ServerIds>,
    shutting_down: Arc<AtomicBool>,
    /// From `CREATE_RENDERER`.
    name: Option<String>,
    /// From `PROTOCOL_VERSION`.
    protocol_version: Option<u32>,
    venus: Option<Venus<B::Context>>,
}

impl<B: Backend> Session<B> {
    pub(crate) fn new(
        stream: UnixStream,
        backend: Arc<B>,
        ids: Arc<ServerIds>,
        shutting_down: Arc<AtomicBool>,
    ) -> Self {
        Self {
            stream,
            backend,
            ids,
            shutting_down,
            name: None,
            protocol_version: None,
            venus: None,
        }
    }

    /// The renderer name the client gave, if any.
    pub(crate) fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }

    /// The context id, once there is a context.
    pub(crate) fn ctx_id(&self) -> Option<u32> {
        self.venus.as_ref().map(|v| v.ctx_id)
    }

    /// Serves requests until the client goes away or misbehaves. The context and
    /// everything else the session owns is dropped with the session.
    pub(crate) fn run(&mut self) -> Disconnect {
        loop {
            if let Err(end) = self.serve_one() {
                if self.shutting_down.load(Ordering::SeqCst)
                    && matches!(end, Disconnect::Closed | Disconnect::Io(_))
                {
                    return Disconnect::Shutdown;
                }
                return end;
            }
        }
    }

    fn check_fatal(&self) -> Result<(), Disconnect> {
        match &self.venus {
            Some(v) if v.ctx.is_fatal() => Err(Disconnect::Fatal(v.ctx_id)),
            _ => Ok(()),
        }
    }

    /// Waits for the next message, checking the context and the server meanwhile.
    fn wait_for_input(&self) -> Result<(), Disconnect> {
        loop {
            self.check_fatal()?;
            if self.shutting_down.load(Ordering::SeqCst) {
                return Err(Disconnect::Shutdown);
            }
            if poll_readable(&[self.stream.as_fd()], IDLE_CHECK_MS)?[0] {
                return Ok(());
            }
        }
    }

    fn serve_one(&mut self) -> Result<(), Disconnect> {
        self.wait_for_input()?;
        let mut raw = [0u8; HEADER_SIZE];
        read_header(&mut self.stream, &mut raw)?;
        let header = Header::from_bytes(&raw)?;
        let cmd =
            CommandId::from_raw(header.cmd_id).ok_or(Disconnect::UnknownCommand(header.cmd_id))?;
        if self.name.is_none() && cmd != CommandId::CreateRenderer {
            return Err(Disconnect::OutOfOrder(
                cmd,
                "the first message must be CREATE_RENDERER",
            ));
        }
        let size = header.request_body_size()?;
        let mut body = vec![0u8; size];
        self.stream.read_exact(&mut body)?;
        tracing::debug!(?cmd, len = header.len, "request");
        let request = match Request::decode(header.cmd_id, &body) {
            Err(VtestError::UnsupportedCommand(_)) => {
                return Err(Disconnect::UnsupportedCommand(cmd))
            }
            other => other?,
        };
        drop(body);
        self.dispatch(request)?;
        self.check_fatal()
    }

    fn respond(&mut self, response: Response) -> Result<(), Disconnect> {
        let mut out = Vec::new();
        response.encode(&mut out)?;
        self.stream.write_all(&out)?;
        Ok(())
    }

    fn venus(&mut self, cmd: CommandId) -> Result<&mut Venus<B::Context>, Disconnect> {
        self.venus.as_mut().ok_or(Disconnect::OutOfOrder(
            cmd,
            "needs a context (CONTEXT_INIT) first",
        ))
    }

    fn dispatch(&mut self, request: Request) -> Result<(), Disconnect> {
        let cmd = request.cmd_id();
        match request {
            Request::CreateRenderer { name } => self.create_renderer(&name),
            Request::PingProtocolVersion => self.respond(Response::PingProtocolVersion),
            Request::ResourceBusyWait { handle, flags: _ } => {
                // Mesa probes PING_PROTOCOL_VERSION support with a busy-wait on handle
                // 0. Venus has no implicit fences: nothing is ever busy.
                if self.venus.is_none() && handle != 0 {
                    return Err(Disconnect::OutOfOrder(
                        cmd,
                        "busy-wait on a resource before CONTEXT_INIT",
                    ));
                }
                self.respond(Response::ResourceBusyWait { busy: false })
            }
            Request::ProtocolVersion { version } => self.protocol_version(version),
            Request::GetParam { param } => {
                let response = if param == PARAM_MAX_TIMELINE_COUNT {
                    Response::GetParam {
                        valid: true,
                        value: MAX_TIMELINE_COUNT,
                    }
                } else {
                    Response::GetParam {
                        valid: false,
                        value: 0,
                    }
                };
                self.respond(response)
            }
            Request::GetCapset { id, version } => {
                // virglrenderer: valid up to the highest version, which for Venus is 0.
                let data = (id == CAPSET_ID_VENUS && version == CAPSET_VERSION)
                    .then(|| self.backend.capset_bytes());
                self.respond(Response::GetCapset { data })
            }
            Request::ContextInit { capset_id } => self.context_init(capset_id),
            Request::ResourceCreateBlob {
                blob_type,
                flags,
                size,
                blob_id,
            } => self.create_blob(blob_type, flags, size, blob_id),
            Request::ResourceUnref { res_id } => {
                let venus = self.venus(cmd)?;
                if venus.resources.remove(&res_id) {
                    venus.ctx.destroy_resource(res_id);
                } else {
                    tracing::debug!(res_id, "RESOURCE_UNREF of an unknown resource ignored");
                }
                Ok(())
            }
            Request::SubmitCmd2 { batches } => self.submit_cmd2(&batches),
            Request::SyncCreate { initial_value } => {
                let sync_id = self
                    .venus(cmd)?
                    .syncs
                    .create(initial_value)
                    .map_err(|e| Disconnect::Sync(cmd, e))?;
                self.respond(Response::SyncCreate { sync_id })
            }
            Request::SyncUnref { sync_id } => {
                if !self.venus(cmd)?.syncs.unref(sync_id) {
                    tracing::debug!(sync_id, "SYNC_UNREF of an unknown sync ignored");
                }
                Ok(())
            }
            Request::SyncRead { sync_id } => {
                let value = self
                    .venus(cmd)?
                    .syncs
                    .read(sync_id)
                    .map_err(|e| Disconnect::Sync(cmd, e))?;
                self.respond(Response::SyncRead { value })
            }
            Request::SyncWrite { sync_id, value } => self
                .venus(cmd)?
                .syncs
                .write(sync_id, value)
                .map_err(|e| Disconnect::Sync(cmd, e)),
            Request::SyncWait {
                flags,
                timeout_ms,
                syncs,
            } => self.sync_wait(flags, timeout_ms, &syncs),
        }
    }

    fn create_renderer(&mut self, name: &[u8]) -> Result<(), Disconnect> {
        if self.name.is_some() {
            return Err(Disconnect::OutOfOrder(
                CommandId::CreateRenderer,
                "sent twice",
            ));
        }
        let end = name.iter().position(|&b| b == 0).unwrap_or(name.len());
        let name: String = String::from_utf8_lossy(name.get(..end).unwrap_or_default())
            .chars()
            .filter(|c| !c.is_control())
            .take(MAX_NAME_CHARS)
            .collect();
        tracing::info!(name = %name, "vtest client identified");
        self.name = Some(name);
        Ok(())
    }

    fn protocol_version(&mut self, requested: u32) -> Result<(), Disconnect> {
        let cmd = CommandId::ProtocolVersion;
        // virglrenderer: min(client, server), version 1 falls back to 0; with several
        // clients (always, here) anything below 3 is refused.
        let mut version = requested.min(PROTOCOL_VERSION);
        if version == 1 {
            version = 0;
        }
        if version < PROTOCOL_VERSION {
            return Err(Disconnect::Refused(
                cmd,
                format!("protocol version {requested} is too low (Venus needs {PROTOCOL_VERSION})"),
            ));
        }
        self.protocol_version = Some(version);
        self.respond(Response::ProtocolVersion { version })
    }

    fn context_init(&mut self, capset_id: u32) -> Result<(), Disconnect> {
        let cmd = CommandId::ContextInit;
        if let Some(venus) = &self.venus {
            // virglrenderer accepts a repeat with the same capset.
            return if capset_id == CAPSET_ID_VENUS {
                tracing::debug!(ctx_id = venus.ctx_id, "repeated CONTEXT_INIT ignored");
                Ok(())
            } else {
                Err(Disconnect::Refused(
                    cmd,
                    format!("capset {capset_id} after a Venus context"),
                ))
            };
        }
        if capset_id != CAPSET_ID_VENUS {
            return Err(Disconnect::Refused(
                cmd,
                format!("capset {capset_id} is not supported (only Venus, {CAPSET_ID_VENUS})"),
            ));
        }
        if self.protocol_version.is_none() {
            return Err(Disconnect::OutOfOrder(cmd, "needs PROTOCOL_VERSION first"));
        }
        let ctx_id = self
            .ids
            .ctx_id()
            .ok_or(Disconnect::Refused(cmd, "context ids exhausted".into()))?;
        let syncs = Arc::new(Syncs::new(ctx_id));
        let name = self.name.as_deref().unwrap_or_default();
        let ctx = self
            .backend
            .create_context(ctx_id, name, syncs.clone())
            .map_err(|error| Disconnect::Core {
                ctx_id,
                call: "create_context",
                error,
            })?;
        // A client that hangs up while its context is blocked in a long host wait
        // (the session thread is then not reading the socket) must still be let go.
        match self.stream.as_fd().try_clone_to_owned() {
            Ok(fd) => ctx.set_cancel_probe(Box::new(move || peer_hung_up(&fd))),
            Err(e) => tracing::warn!(ctx_id, "cannot watch the client for hang-ups: {e}"),
        }
        tracing::info!(ctx_id, name, "Venus context created");
        self.venus = Some(Venus {
            ctx_id,
            ctx,
            syncs,
            resources: HashSet::new(),
        });
        Ok(())
    }

    fn create_blob(
        &mut self,
        blob_type: u32,
        flags: u32,
        size: u64,
        blob_id: u64,
    ) -> Result<(), Disconnect> {
        let cmd = CommandId::ResourceCreateBlob;
        let ids = Arc::clone(&self.ids);
        let venus = self.venus(cmd)?;
        if blob_type != BLOB_TYPE_HOST3D {
            // GUEST and HOST3D_GUEST blobs are backed by guest memory iovecs, which
            // Venus over vtest (Mesa: always HOST3D) does not use.
            return Err(Disconnect::Refused(
                cmd,
                format!("blob type {blob_type} is not supported"),
            ));
        }
        if venus.resources.len() >= MAX_RESOURCES {
            return Err(Disconnect::Refused(
                cmd,
                format!("more than {MAX_RESOURCES} resources"),
            ));
        }
        let res_id = ids
            .res_id()
            .ok_or(Disconnect::Refused(cmd, "resource ids exhausted".into()))?;
        let blob = venus
            .ctx
            .create_blob(res_id, blob_id, size, flags)
            .map_err(|error| Disconnect::Core {
                ctx_id: venus.ctx_id,
                call: "create_blob",
                error,
            })?;
        venus.resources.insert(res_id);
        if blob.size < size {
            return Err(Disconnect::Refused(
                cmd,
                format!("the blob for {size} bytes maps only {} bytes", blob.size),
            ));
        }
        tracing::debug!(res_id, blob_id, size, flags, "blob created");
        self.respond(Response::ResourceCreateBlob { res_id })?;
        send_fd(&self.stream, blob.fd.as_fd())?;
        // Our copy of the fd closes here; the client and the core keep theirs.
        Ok(())
    }

    fn submit_cmd2(&mut self, batches: &[SubmitBatch]) -> Result<(), Disconnect> {
        let cmd = CommandId::SubmitCmd2;
        let venus = self.venus(cmd)?;
        let ctx_id = venus.ctx_id;
        let core = |call: &'static str| {
            move |error| Disconnect::Core {
                ctx_id,
                call,
                error,
            }
        };
        for batch in batches {
            if batch.ring_idx >= MAX_TIMELINE_COUNT {
                return Err(Disconnect::Sync(cmd, SyncError::BadRing(batch.ring_idx)));
            }
            if !batch.cmd.is_empty() {
                venus
                    .ctx
                    .submit_cmd(&batch.cmd)
                    .map_err(core("submit_cmd"))?;
            }
            if batch.syncs.is_empty() {
                continue;
            }
            let signals = venus
                .syncs
                .resolve(&batch.syncs)
                .map_err(|e| Disconnect::Sync(cmd, e))?;
            if batch.flags & SUBMIT_CMD2_FLAG_RING_IDX != 0 {
                let fence_id = venus
                    .syncs
                    .queue_on_timeline(batch.ring_idx, signals)
                    .map_err(|e| Disconnect::Sync(cmd, e))?;
                // Not under the sync lock: the core may retire the fence right here.
                venus
                    .ctx
                    .submit_fence(batch.ring_idx, fence_id)
                    .map_err(core("submit_fence"))?;
            } else {
                venus.syncs.signal_now(signals);
            }
        }
        Ok(())
    }

    fn sync_wait(
        &mut self,
        flags: u32,
        timeout_ms: u32,
        points: &[SyncPoint],
    ) -> Result<(), Disconnect> {
        let cmd = CommandId::SyncWait;
        let fd = self
            .venus(cmd)?
            .syncs
            .wait(flags, timeout_ms, points)
            .map_err(|e| Disconnect::Sync(cmd, e))?;
        self.respond(Response::SyncWait)?;
        send_fd(&self.stream, fd.client_fd())?;
        Ok(())
    }
}

/// Whether the peer of socket `fd` has hung up (without reading from it).
fn peer_hung_up(fd: &std::os::fd::OwnedFd) -> bool {
    use std::os::fd::AsRawFd;
    let mut p = libc::pollfd {
        fd: fd.as_raw_fd(),
        events: libc::POLLRDHUP,
        revents: 0,
    };
    // SAFETY: one valid pollfd on an fd we own; zero timeout.
    let n = unsafe { libc::poll(&mut p, 1, 0) };
    n > 0 && p.revents & (libc::POLLRDHUP | libc::POLLHUP | libc::POLLERR) != 0
}

/// Reads a header; a clean end of stream before its first byte is [`Disconnect::Closed`].
fn read_header(stream: &mut UnixStream, buf: &mut [u8; HEADER_SIZE]) -> Result<(), Disconnect> {
    let mut filled = 0;
    while filled < buf.len() {
        let Some(rest) = buf.get_mut(filled..) else {
            break;
        };
        match stream.read(rest) {
            Ok(0) if filled == 0 => return Err(Disconnect::Closed),
            Ok(0) => {
                return Err(Disconnect::Malformed(VtestError::TruncatedHeader {
                    available: filled,
                }))
            }
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

#[cfg(test)]
#[path = "client_tests.rs"]
mod tests;
