//! vtest protocol version 3 message framing, as Mesa 25.0.7's Venus driver speaks it
//! (`src/virtio/vulkan/vn_renderer_vtest.c` over `src/virtio/vtest/vtest_protocol.h`),
//! and as virglrenderer 1.1.0's vtest server answers.
//!
//! # Framing
//!
//! Every message in either direction is an 8-byte [`Header`] — `u32 len`, `u32 cmd_id`,
//! little-endian — followed by a body of `len` **dwords**. The one exception is the
//! `CREATE_RENDERER` request, whose `len` counts **bytes**: Mesa sends
//! `strlen(name) + 1` bytes (the name and its NUL) with no padding, so the stream is
//! not 4-aligned after it.
//!
//! A response carries the id of the request it answers. Requests that get no response:
//! `CREATE_RENDERER`, `CONTEXT_INIT`, `RESOURCE_UNREF`, `SUBMIT_CMD2`, `SYNC_UNREF`,
//! `SYNC_WRITE` (see [`Request::expects_response`]).
//!
//! # File descriptors
//!
//! Two responses Mesa reads are followed by a file descriptor, sent by the server as a
//! separate `sendmsg` with `SCM_RIGHTS` and **one data byte** (0) that is part of the
//! stream and must be consumed with the fd (Mesa's `vtest_receive_fd` reads it):
//!
//! * `RESOURCE_CREATE_BLOB` response: the blob's mmap-able fd, after the `res_id`;
//! * `SYNC_WAIT` response: a poll-able fd (eventfd) that becomes readable when the
//!   wait is satisfied, after the empty body.
//!
//! (The pre-v3 `RESOURCE_CREATE2` response also carries one when its data size is
//! nonzero.) No request Mesa 25.0.7 sends carries an fd. This module only frames the
//! bytes; passing fds is the transport's job.
//!
//! # The handshake Mesa performs
//!
//! `CREATE_RENDERER(name)`; `PING_PROTOCOL_VERSION` immediately followed by
//! `RESOURCE_BUSY_WAIT{handle 0, flags 0}` (a server without ping support answers only
//! the busy-wait); `PROTOCOL_VERSION{3}`; `GET_PARAM{MAX_TIMELINE_COUNT}` (0 or
//! invalid means no Venus); `GET_CAPSET{4, 0}`; `CONTEXT_INIT{4}`.
//!
//! # SUBMIT_CMD2
//!
//! Body: `u32 batch_count`, then `batch_count` batch headers of six dwords each
//! (flags, cmd_offset, cmd_size, sync_offset, sync_count, ring_idx — Mesa writes
//! `sizeof(struct vcmd_submit_cmd2_batch)` = 24 bytes), then every batch's command
//! stream, then every batch's sync entries (`u32 sync_id, u32 value_lo, u32 value_hi`).
//! Offsets and sizes are in dwords from the start of the body. Mesa always sets
//! [`SUBMIT_CMD2_FLAG_RING_IDX`] and never sends an empty submit.
//!
//! virglrenderer's accessor macros (`VCMD_SUBMIT_CMD2_BATCH_*(n)`) step by **8** dwords
//! per batch, while Mesa's struct is 6 dwords; the two agree only for one batch, and
//! Mesa 25.0.7 only ever submits one batch. This module follows Mesa's 6-dword stride.

use thiserror::Error;

/// The protocol version Mesa asks for and requires (at least).
pub const PROTOCOL_VERSION: u32 = 3;

/// Socket path used when `VTEST_SOCKET_NAME` is unset.
pub const DEFAULT_SOCKET_NAME: &str = "/tmp/.virgl_test";

/// Size of a message header in bytes.
pub const HEADER_SIZE: usize = 8;

/// Largest message body accepted or produced (16 MiB). Every body Mesa 25.0.7 sends is
/// far smaller; Venus command buffers travel through the ring and shmems.
pub const MAX_BODY_SIZE: usize = 16 * 1024 * 1024;

/// Largest `CREATE_RENDERER` name accepted, in bytes (virglrenderer's limit, 1 MiB).
pub const MAX_RENDERER_NAME_SIZE: usize = 1024 * 1024;

/// Data bytes sent along with a passed fd (Mesa and virglrenderer use one dummy byte).
pub const FD_MESSAGE_DATA_LEN: usize = 1;

/// `GET_PARAM` parameter: number of fence timelines (ring indices) the server supports.
/// The only parameter in Mesa 25.0.7's header; servers answer unknown ones with
/// valid = 0, value = 0.
pub const PARAM_MAX_TIMELINE_COUNT: u32 = 1;

/// Blob type: guest memory.
pub const BLOB_TYPE_GUEST: u32 = 1;
/// Blob type: host memory (Mesa uses this for shmems and device memory).
pub const BLOB_TYPE_HOST3D: u32 = 2;
/// Blob type: host memory backed by guest memory.
pub const BLOB_TYPE_HOST3D_GUEST: u32 = 3;

/// Blob flag: the blob can be mapped.
pub const BLOB_FLAG_MAPPABLE: u32 = 1 << 0;
/// Blob flag: the blob can be shared (exported).
pub const BLOB_FLAG_SHAREABLE: u32 = 1 << 1;
/// Blob flag: the blob can be shared across devices (dma-buf).
pub const BLOB_FLAG_CROSS_DEVICE: u32 = 1 << 2;

/// `SYNC_WAIT` flag: wake when any sync reaches its value (default: all).
pub const SYNC_WAIT_FLAG_ANY: u32 = 1 << 0;
/// `SYNC_WAIT` timeout meaning "no timeout".
pub const SYNC_WAIT_TIMEOUT_INFINITE: u32 = u32::MAX;

/// `SUBMIT_CMD2` batch flag: `ring_idx` is meaningful.
pub const SUBMIT_CMD2_FLAG_RING_IDX: u32 = 1 << 0;

/// `RESOURCE_BUSY_WAIT` flag: block until idle.
pub const BUSY_WAIT_FLAG_WAIT: u32 = 1;

/// Fixed body sizes in dwords (`VCMD_*_SIZE` in `vtest_protocol.h`).
pub mod sizes {
    /// `RESOURCE_CREATE` request (pre-v3 resource creation).
    pub const RES_CREATE: usize = 10;
    /// `RESOURCE_CREATE2` request.
    pub const RES_CREATE2: usize = 11;
    /// `RESOURCE_UNREF` request.
    pub const RES_UNREF: usize = 1;
    /// `TRANSFER_GET`/`TRANSFER_PUT` header.
    pub const TRANSFER_HDR: usize = 11;
    /// `TRANSFER_GET2`/`TRANSFER_PUT2` header.
    pub const TRANSFER2_HDR: usize = 10;
    /// `RESOURCE_BUSY_WAIT` request.
    pub const BUSY_WAIT: usize = 2;
    /// `PING_PROTOCOL_VERSION` request and response.
    pub const PING_PROTOCOL_VERSION: usize = 0;
    /// `PROTOCOL_VERSION` request and response.
    pub const PROTOCOL_VERSION: usize = 1;
    /// `GET_PARAM` request.
    pub const GET_PARAM: usize = 1;
    /// `GET_CAPSET` request.
    pub const GET_CAPSET: usize = 2;
    /// `CONTEXT_INIT` request.
    pub const CONTEXT_INIT: usize = 1;
    /// `RESOURCE_CREATE_BLOB` request.
    pub const RES_CREATE_BLOB: usize = 6;
    /// `SYNC_CREATE` request.
    pub const SYNC_CREATE: usize = 2;
    /// `SYNC_UNREF` request.
    pub const SYNC_UNREF: usize = 1;
    /// `SYNC_READ` request.
    pub const SYNC_READ: usize = 1;
    /// `SYNC_WRITE` request.
    pub const SYNC_WRITE: usize = 3;
    /// One `SUBMIT_CMD2` batch header as Mesa writes it.
    pub const SUBMIT_CMD2_BATCH: usize = 6;
    /// One sync entry (`id`, `value_lo`, `value_hi`) in `SYNC_WAIT` and `SUBMIT_CMD2`.
    pub const SYNC_ENTRY: usize = 3;
}

/// Declares `CommandId` and its raw-value lookup from one list.
macro_rules! command_ids {
    ($($(#[$doc:meta])* $name:ident = $value:literal,)*) => {
        /// Every command id in `vtest_protocol.h`.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        #[repr(u32)]
        pub enum CommandId {
            $($(#[$doc])* $name = $value,)*
        }

        impl CommandId {
            /// The id for a raw value, if it is one.
            pub fn from_raw(raw: u32) -> Option<Self> {
                match raw {
                    $($value => Some(Self::$name),)*
                    _ => None,
                }
            }

            /// The raw value.
            pub const fn raw(self) -> u32 {
                self as u32
            }
        }
    };
}

command_ids! {
    /// `VCMD_GET_CAPS` (virgl caps, pre-v3).
    GetCaps = 1,
    /// `VCMD_RESOURCE_CREATE` (virgl resource, pre-v3).
    ResourceCreate = 2,
    /// `VCMD_RESOURCE_UNREF`.
    ResourceUnref = 3,
    /// `VCMD_TRANSFER_GET` (pre-v2).
    TransferGet = 4,
    /// `VCMD_TRANSFER_PUT` (pre-v2).
    TransferPut = 5,
    /// `VCMD_SUBMIT_CMD` (virgl command stream, pre-v3).
    SubmitCmd = 6,
    /// `VCMD_RESOURCE_BUSY_WAIT`; Mesa sends it only as the ping probe.
    ResourceBusyWait = 7,
    /// `VCMD_CREATE_RENDERER`; body length in bytes.
    CreateRenderer = 8,
    /// `VCMD_GET_CAPS2` (virgl caps v2, pre-v3).
    GetCaps2 = 9,
    /// `VCMD_PING_PROTOCOL_VERSION`.
    PingProtocolVersion = 10,
    /// `VCMD_PROTOCOL_VERSION`.
    ProtocolVersion = 11,
    /// `VCMD_RESOURCE_CREATE2` (since v2).
    ResourceCreate2 = 12,
    /// `VCMD_TRANSFER_GET2` (since v2).
    TransferGet2 = 13,
    /// `VCMD_TRANSFER_PUT2` (since v2).
    TransferPut2 = 14,
    /// `VCMD_GET_PARAM` (since v3).
    GetParam = 15,
    /// `VCMD_GET_CAPSET` (since v3).
    GetCapset = 16,
    /// `VCMD_CONTEXT_INIT` (since v3).
    ContextInit = 17,
    /// `VCMD_RESOURCE_CREATE_BLOB` (since v3).
    ResourceCreateBlob = 18,
    /// `VCMD_SYNC_CREATE` (since v3).
    SyncCreate = 19,
    /// `VCMD_SYNC_UNREF` (since v3).
    SyncUnref = 20,
    /// `VCMD_SYNC_READ` (since v3).
    SyncRead = 21,
    /// `VCMD_SYNC_WRITE` (since v3).
    SyncWrite = 22,
    /// `VCMD_SYNC_WAIT` (since v3).
    SyncWait = 23,
    /// `VCMD_SUBMIT_CMD2` (since v3).
    SubmitCmd2 = 24,
}

/// Errors from framing or parsing vtest messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
pub enum VtestError {
    /// Fewer than [`HEADER_SIZE`] bytes were available for a header.
    #[error("truncated header: {available} of 8 bytes")]
    TruncatedHeader {
        /// Bytes available.
        available: usize,
    },
    /// Fewer body bytes were available than the header announces.
    #[error("truncated body of command {cmd_id}: {available} of {expected} bytes")]
    TruncatedBody {
        /// The command id.
        cmd_id: u32,
        /// Body size announced by the header.
        expected: usize,
        /// Bytes available.
        available: usize,
    },
    /// A body is larger than [`MAX_BODY_SIZE`] (or a name than [`MAX_RENDERER_NAME_SIZE`]).
    #[error("body of command {cmd_id} is {size} bytes, over the {max}-byte limit")]
    Oversized {
        /// The command id.
        cmd_id: u32,
        /// The body size.
        size: u64,
        /// The limit.
        max: usize,
    },
    /// The command id is not in `vtest_protocol.h`.
    #[error("unknown vtest command {0}")]
    UnknownCommand(u32),
    /// A known command id that has no message of this direction in protocol v3 framing
    /// here (pre-v3 commands, or a response to a request that gets none).
    #[error("vtest command {0} is not supported in this direction")]
    UnsupportedCommand(u32),
    /// A fixed-size body has the wrong length.
    #[error("body of command {cmd_id} is {actual} bytes, expected {expected}")]
    BodyLength {
        /// The command id.
        cmd_id: u32,
        /// Expected length in bytes.
        expected: usize,
        /// Actual length in bytes.
        actual: usize,
    },
    /// A dword-counted body's length is not a multiple of 4.
    #[error("body of command {cmd_id} is {len} bytes, not whole dwords")]
    UnalignedBody {
        /// The command id.
        cmd_id: u32,
        /// The body length in bytes.
        len: usize,
    },
    /// A body is shorter than the minimum its layout needs.
    #[error("body of command {cmd_id} is {actual} bytes, needs at least {min}")]
    BodyTooShort {
        /// The command id.
        cmd_id: u32,
        /// Minimum length in bytes.
        min: usize,
        /// Actual length in bytes.
        actual: usize,
    },
    /// A `SYNC_WAIT` body is not `2 + 3n` dwords.
    #[error("SYNC_WAIT body of {dwords} dwords is not 2 + 3n")]
    SyncWaitLength {
        /// The body length in dwords.
        dwords: usize,
    },
    /// A `SUBMIT_CMD2` has no batch (virglrenderer rejects it; Mesa never sends it).
    #[error("SUBMIT_CMD2 without batches")]
    EmptySubmit,
    /// The `SUBMIT_CMD2` batch headers extend past the body.
    #[error("SUBMIT_CMD2 with {batch_count} batches does not fit in {body_dwords} dwords")]
    BatchHeadersTruncated {
        /// The announced batch count.
        batch_count: u32,
        /// The body length in dwords.
        body_dwords: usize,
    },
    /// A batch's command or sync range lies outside the body.
    #[error("SUBMIT_CMD2 batch {batch} references data outside the body")]
    BatchOutOfBounds {
        /// Index of the batch.
        batch: u32,
    },
    /// The batches reference more data than the body holds after the headers
    /// (overlapping ranges), which Mesa never produces.
    #[error("SUBMIT_CMD2 batches reference more data than the body holds")]
    BatchDataOverlap,
    /// A `GET_CAPSET` response marked invalid still carries data.
    #[error("invalid GET_CAPSET response carries {len} bytes")]
    InvalidCapsetResponse {
        /// The body length in bytes.
        len: usize,
    },
}

/// A message header: body length (dwords; bytes for `CREATE_RENDERER` requests) and
/// command id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Header {
    /// `VTEST_CMD_LEN`.
    pub len: u32,
    /// `VTEST_CMD_ID`.
    pub cmd_id: u32,
}

impl Header {
    /// The 8 header bytes.
    pub fn to_bytes(&self) -> [u8; HEADER_SIZE] {
        let mut out = [0u8; HEADER_SIZE];
        let (len, id) = out.split_at_mut(4);
        len.copy_from_slice(&self.len.to_le_bytes());
        id.copy_from_slice(&self.cmd_id.to_le_bytes());
        out
    }

    /// Parses the first 8 bytes of `bytes`.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, VtestError> {
        let truncated = VtestError::TruncatedHeader {
            available: bytes.len(),
        };
        let len = dword_at(bytes, 0).ok_or(truncated)?;
        let cmd_id = dword_at(bytes, 1).ok_or(truncated)?;
        Ok(Self { len, cmd_id })
    }

    /// Body size in bytes of a client-to-server message with this header, after the
    /// size limits.
    pub fn request_body_size(&self) -> Result<usize, VtestError> {
        if self.cmd_id == CommandId::CreateRenderer.raw() {
            return check_size(self.cmd_id, u64::from(self.len), MAX_RENDERER_NAME_SIZE);
        }
        self.response_body_size()
    }

    /// Body size in bytes of a server-to-client message with this header, after the
    /// size limit.
    pub fn response_body_size(&self) -> Result<usize, VtestError> {
        check_size(self.cmd_id, u64::from(self.len) * 4, MAX_BODY_SIZE)
    }
}

fn check_size(cmd_id: u32, size: u64, max: usize) -> Result<usize, VtestError> {
    match usize::try_from(size) {
        Ok(s) if s <= max => Ok(s),
        _ => Err(VtestError::Oversized { cmd_id, size, max }),
    }
}

/// A `(sync id, value)` pair, as in `SYNC_WAIT` and `SUBMIT_CMD2`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct SyncPoint {
    /// The sync object id returned by `SYNC_CREATE`.
    pub sync_id: u32,
    /// The timeline value to wait for or signal.
    pub value: u64,
}

/// One `SUBMIT_CMD2` batch.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct SubmitBatch {
    /// Batch flags; Mesa always sets [`SUBMIT_CMD2_FLAG_RING_IDX`].
    pub flags: u32,
    /// Fence timeline; 0 is the CPU ring (signalled on consumption). virglrenderer
    /// refuses values at or above the count it answers to `GET_PARAM` (64).
    pub ring_idx: u32,
    /// Venus command stream. Encoded padded with zeros to whole dwords.
    pub cmd: Vec<u8>,
    /// Syncs to signal to their value once the batch has executed on `ring_idx`.
    pub syncs: Vec<SyncPoint>,
}

/// A client-to-server message.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Request {
    /// `CREATE_RENDERER`: the name bytes verbatim (Mesa: process name plus NUL).
    CreateRenderer {
        /// The body bytes.
        name: Vec<u8>,
    },
    /// `PING_PROTOCOL_VERSION`, empty body.
    PingProtocolVersion,
    /// `RESOURCE_BUSY_WAIT`; Mesa sends `{0, 0}` right after the ping.
    ResourceBusyWait {
        /// Resource handle (unused by servers).
        handle: u32,
        /// [`BUSY_WAIT_FLAG_WAIT`] or 0.
        flags: u32,
    },
    /// `PROTOCOL_VERSION`: the highest version the client speaks.
    ProtocolVersion {
        /// Mesa sends [`PROTOCOL_VERSION`].
        version: u32,
    },
    /// `GET_PARAM`.
    GetParam {
        /// e.g. [`PARAM_MAX_TIMELINE_COUNT`].
        param: u32,
    },
    /// `GET_CAPSET`.
    GetCapset {
        /// Capset id (Venus: 4).
        id: u32,
        /// Capset version (0).
        version: u32,
    },
    /// `CONTEXT_INIT`: create the context for a capset.
    ContextInit {
        /// Capset id (Venus: 4).
        capset_id: u32,
    },
    /// `RESOURCE_CREATE_BLOB`; answered with a resource id and an fd.
    ResourceCreateBlob {
        /// One of the `BLOB_TYPE_*` values.
        blob_type: u32,
        /// `BLOB_FLAG_*` bits.
        flags: u32,
        /// Size in bytes.
        size: u64,
        /// Blob id: a VkDeviceMemory object id, or 0 for a shmem.
        blob_id: u64,
    },
    /// `RESOURCE_UNREF`.
    ResourceUnref {
        /// The resource id.
        res_id: u32,
    },
    /// `SUBMIT_CMD2`.
    SubmitCmd2 {
        /// The batches, at least one.
        batches: Vec<SubmitBatch>,
    },
    /// `SYNC_CREATE`; answered with a sync id.
    SyncCreate {
        /// Initial timeline value.
        initial_value: u64,
    },
    /// `SYNC_UNREF`.
    SyncUnref {
        /// The sync id.
        sync_id: u32,
    },
    /// `SYNC_READ`; answered with the current value.
    SyncRead {
        /// The sync id.
        sync_id: u32,
    },
    /// `SYNC_WRITE`: signal a sync to a value from the CPU.
    SyncWrite {
        /// The sync id.
        sync_id: u32,
        /// The new value.
        value: u64,
    },
    /// `SYNC_WAIT`; answered with an empty body and a poll-able fd.
    SyncWait {
        /// 0 (all) or [`SYNC_WAIT_FLAG_ANY`].
        flags: u32,
        /// Milliseconds; [`SYNC_WAIT_TIMEOUT_INFINITE`] for none (see [`sync_wait_timeout`]).
        timeout_ms: u32,
        /// The syncs and the values to wait for.
        syncs: Vec<SyncPoint>,
    },
}

/// A server-to-client message.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Response {
    /// `PING_PROTOCOL_VERSION`, empty body.
    PingProtocolVersion,
    /// `RESOURCE_BUSY_WAIT`: one dword, 1 if busy.
    ResourceBusyWait {
        /// Whether the resource is still busy.
        busy: bool,
    },
    /// `PROTOCOL_VERSION`: the version the server settled on.
    ProtocolVersion {
        /// `min(client's, server's)`, or 0 when the server falls back.
        version: u32,
    },
    /// `GET_PARAM`: validity and value (value is 0 when invalid).
    GetParam {
        /// Whether the server knows the parameter (any nonzero dword decodes as true).
        valid: bool,
        /// The value.
        value: u32,
    },
    /// `GET_CAPSET`: `None` when the id/version is unsupported, otherwise the capset
    /// bytes (encoded padded with zeros to whole dwords).
    GetCapset {
        /// The capset bytes, if valid.
        data: Option<Vec<u8>>,
    },
    /// `RESOURCE_CREATE_BLOB`: the new resource id; an fd follows.
    ResourceCreateBlob {
        /// The resource id.
        res_id: u32,
    },
    /// `SYNC_CREATE`: the new sync id.
    SyncCreate {
        /// The sync id.
        sync_id: u32,
    },
    /// `SYNC_READ`: the sync's current value.
    SyncRead {
        /// The value.
        value: u64,
    },
    /// `SYNC_WAIT`, empty body; a poll-able fd follows.
    SyncWait,
}

impl Request {
    /// `CREATE_RENDERER` as Mesa builds it: the name followed by a NUL byte.
    pub fn create_renderer(name: &str) -> Self {
        let mut bytes = Vec::with_capacity(name.len().saturating_add(1));
        bytes.extend_from_slice(name.as_bytes());
        bytes.push(0);
        Request::CreateRenderer { name: bytes }
    }

    /// The command id of this request.
    pub fn cmd_id(&self) -> CommandId {
        match self {
            Request::CreateRenderer { .. } => CommandId::CreateRenderer,
            Request::PingProtocolVersion => CommandId::PingProtocolVersion,
            Request::ResourceBusyWait { .. } => CommandId::ResourceBusyWait,
            Request::ProtocolVersion { .. } => CommandId::ProtocolVersion,
            Request::GetParam { .. } => CommandId::GetParam,
            Request::GetCapset { .. } => CommandId::GetCapset,
            Request::ContextInit { .. } => CommandId::ContextInit,
            Request::ResourceCreateBlob { .. } => CommandId::ResourceCreateBlob,
            Request::ResourceUnref { .. } => CommandId::ResourceUnref,
            Request::SubmitCmd2 { .. } => CommandId::SubmitCmd2,
            Request::SyncCreate { .. } => CommandId::SyncCreate,
            Request::SyncUnref { .. } => CommandId::SyncUnref,
            Request::SyncRead { .. } => CommandId::SyncRead,
            Request::SyncWrite { .. } => CommandId::SyncWrite,
            Request::SyncWait { .. } => CommandId::SyncWait,
        }
    }

    /// Whether the server answers this request.
    pub fn expects_response(&self) -> bool {
        !matches!(
            self,
            Request::CreateRenderer { .. }
                | Request::ContextInit { .. }
                | Request::ResourceUnref { .. }
                | Request::SubmitCmd2 { .. }
                | Request::SyncUnref { .. }
                | Request::SyncWrite { .. }
        )
    }

    /// Appends the header and body to `out`. On error `out` is unchanged.
    pub fn encode(&self, out: &mut Vec<u8>) -> Result<(), VtestError> {
        let cmd = self.cmd_id().raw();
        let mut body = Vec::new();
        match self {
            Request::CreateRenderer { name } => {
                let size = check_size(cmd, name.len() as u64, MAX_RENDERER_NAME_SIZE)?;
                let len = u32::try_from(size).map_err(|_| oversized(cmd, size))?;
                out.reserve(HEADER_SIZE.saturating_add(size));
                out.extend_from_slice(&Header { len, cmd_id: cmd }.to_bytes());
                out.extend_from_slice(name);
                return Ok(());
            }
            Request::PingProtocolVersion => {}
            Request::ResourceBusyWait { handle, flags } => put_all(&mut body, &[*handle, *flags]),
            Request::ProtocolVersion { version } => put(&mut body, *version),
            Request::GetParam { param } => put(&mut body, *param),
            Request::GetCapset { id, version } => put_all(&mut body, &[*id, *version]),
            Request::ContextInit { capset_id } => put(&mut body, *capset_id),
            Request::ResourceCreateBlob {
                blob_type,
                flags,
                size,
                blob_id,
            } => {
                put_all(&mut body, &[*blob_type, *flags]);
                put_u64(&mut body, *size);
                put_u64(&mut body, *blob_id);
            }
            Request::ResourceUnref { res_id } => put(&mut body, *res_id),
            Request::SubmitCmd2 { batches } => encode_submit_cmd2(batches, &mut body)?,
            Request::SyncCreate { initial_value } => put_u64(&mut body, *initial_value),
            Request::SyncUnref { sync_id } => put(&mut body, *sync_id),
            Request::SyncRead { sync_id } => put(&mut body, *sync_id),
            Request::SyncWrite { sync_id, value } => {
                put(&mut body, *sync_id);
                put_u64(&mut body, *value);
            }
            Request::SyncWait {
                flags,
                timeout_ms,
                syncs,
            } => {
                check_size(cmd, (syncs.len() as u64).saturating_mul(12), MAX_BODY_SIZE)?;
                put_all(&mut body, &[*flags, *timeout_ms]);
                put_syncs(&mut body, syncs);
            }
        }
        append_dword_message(cmd, &body, out)
    }

    /// Parses a request body (`body` is exactly the bytes after the header).
    pub fn decode(cmd_id: u32, body: &[u8]) -> Result<Self, VtestError> {
        let id = CommandId::from_raw(cmd_id).ok_or(VtestError::UnknownCommand(cmd_id))?;
        if id == CommandId::CreateRenderer {
            check_size(cmd_id, body.len() as u64, MAX_RENDERER_NAME_SIZE)?;
            return Ok(Request::CreateRenderer {
                name: body.to_vec(),
            });
        }
        check_size(cmd_id, body.len() as u64, MAX_BODY_SIZE)?;
        Ok(match id {
            CommandId::PingProtocolVersion => {
                fixed::<0>(cmd_id, body)?;
                Request::PingProtocolVersion
            }
            CommandId::ResourceBusyWait => {
                let [handle, flags] = fixed(cmd_id, body)?;
                Request::ResourceBusyWait { handle, flags }
            }
            CommandId::ProtocolVersion => {
                let [version] = fixed(cmd_id, body)?;
                Request::ProtocolVersion { version }
            }
            CommandId::GetParam => {
                let [param] = fixed(cmd_id, body)?;
                Request::GetParam { param }
            }
            CommandId::GetCapset => {
                let [id, version] = fixed(cmd_id, body)?;
                Request::GetCapset { id, version }
            }
            CommandId::ContextInit => {
                let [capset_id] = fixed(cmd_id, body)?;
                Request::ContextInit { capset_id }
            }
            CommandId::ResourceCreateBlob => {
                let [blob_type, flags, size_lo, size_hi, id_lo, id_hi] = fixed(cmd_id, body)?;
                Request::ResourceCreateBlob {
                    blob_type,
                    flags,
                    size: join(size_lo, size_hi),
                    blob_id: join(id_lo, id_hi),
                }
            }
            CommandId::ResourceUnref => {
                let [res_id] = fixed(cmd_id, body)?;
                Request::ResourceUnref { res_id }
            }
            CommandId::SubmitCmd2 => Request::SubmitCmd2 {
                batches: decode_submit_cmd2(body)?,
            },
            CommandId::SyncCreate => {
                let [lo, hi] = fixed(cmd_id, body)?;
                Request::SyncCreate {
                    initial_value: join(lo, hi),
                }
            }
            CommandId::SyncUnref => {
                let [sync_id] = fixed(cmd_id, body)?;
                Request::SyncUnref { sync_id }
            }
            CommandId::SyncRead => {
                let [sync_id] = fixed(cmd_id, body)?;
                Request::SyncRead { sync_id }
            }
            CommandId::SyncWrite => {
                let [sync_id, lo, hi] = fixed(cmd_id, body)?;
                Request::SyncWrite {
                    sync_id,
                    value: join(lo, hi),
                }
            }
            CommandId::SyncWait => decode_sync_wait(body)?,
            _ => return Err(VtestError::UnsupportedCommand(cmd_id)),
        })
    }

    /// Parses one whole request (header and body) from the start of `bytes`; returns it
    /// and the number of bytes it took.
    pub fn decode_message(bytes: &[u8]) -> Result<(Self, usize), VtestError> {
        let header = Header::from_bytes(bytes)?;
        let size = header.request_body_size()?;
        let body = message_body(&header, size, bytes)?;
        Ok((Self::decode(header.cmd_id, body)?, HEADER_SIZE + size))
    }
}

impl Response {
    /// The command id of this response (that of the request it answers).
    pub fn cmd_id(&self) -> CommandId {
        match self {
            Response::PingProtocolVersion => CommandId::PingProtocolVersion,
            Response::ResourceBusyWait { .. } => CommandId::ResourceBusyWait,
            Response::ProtocolVersion { .. } => CommandId::ProtocolVersion,
            Response::GetParam { .. } => CommandId::GetParam,
            Response::GetCapset { .. } => CommandId::GetCapset,
            Response::ResourceCreateBlob { .. } => CommandId::ResourceCreateBlob,
            Response::SyncCreate { .. } => CommandId::SyncCreate,
            Response::SyncRead { .. } => CommandId::SyncRead,
            Response::SyncWait => CommandId::SyncWait,
        }
    }

    /// Whether an fd (with [`FD_MESSAGE_DATA_LEN`] data byte) follows this response.
    pub fn carries_fd(&self) -> bool {
        matches!(
            self,
            Response::ResourceCreateBlob { .. } | Response::SyncWait
        )
    }

    /// Appends the header and body to `out`. On error `out` is unchanged.
    pub fn encode(&self, out: &mut Vec<u8>) -> Result<(), VtestError> {
        let cmd = self.cmd_id().raw();
        let mut body = Vec::new();
        match self {
            Response::PingProtocolVersion | Response::SyncWait => {}
            Response::ResourceBusyWait { busy } => put(&mut body, u32::from(*busy)),
            Response::ProtocolVersion { version } => put(&mut body, *version),
            Response::GetParam { valid, value } => put_all(&mut body, &[u32::from(*valid), *value]),
            Response::GetCapset { data: None } => put(&mut body, 0),
            Response::GetCapset { data: Some(data) } => {
                check_size(cmd, (data.len() as u64).saturating_add(4), MAX_BODY_SIZE)?;
                put(&mut body, 1);
                put_padded(&mut body, data);
            }
            Response::ResourceCreateBlob { res_id } => put(&mut body, *res_id),
            Response::SyncCreate { sync_id } => put(&mut body, *sync_id),
            Response::SyncRead { value } => put_u64(&mut body, *value),
        }
        append_dword_message(cmd, &body, out)
    }

    /// Parses a response body (`body` is exactly the bytes after the header).
    pub fn decode(cmd_id: u32, body: &[u8]) -> Result<Self, VtestError> {
        let id = CommandId::from_raw(cmd_id).ok_or(VtestError::UnknownCommand(cmd_id))?;
        check_size(cmd_id, body.len() as u64, MAX_BODY_SIZE)?;
        Ok(match id {
            CommandId::PingProtocolVersion => {
                fixed::<0>(cmd_id, body)?;
                Response::PingProtocolVersion
            }
            CommandId::ResourceBusyWait => {
                let [busy] = fixed(cmd_id, body)?;
                Response::ResourceBusyWait { busy: busy != 0 }
            }
            CommandId::ProtocolVersion => {
                let [version] = fixed(cmd_id, body)?;
                Response::ProtocolVersion { version }
            }
            CommandId::GetParam => {
                let [valid, value] = fixed(cmd_id, body)?;
                Response::GetParam {
                    valid: valid != 0,
                    value,
                }
            }
            CommandId::GetCapset => decode_get_capset(body)?,
            CommandId::ResourceCreateBlob => {
                let [res_id] = fixed(cmd_id, body)?;
                Response::ResourceCreateBlob { res_id }
            }
            CommandId::SyncCreate => {
                let [sync_id] = fixed(cmd_id, body)?;
                Response::SyncCreate { sync_id }
            }
            CommandId::SyncRead => {
                let [lo, hi] = fixed(cmd_id, body)?;
                Response::SyncRead {
                    value: join(lo, hi),
                }
            }
            CommandId::SyncWait => {
                fixed::<0>(cmd_id, body)?;
                Response::SyncWait
            }
            _ => return Err(VtestError::UnsupportedCommand(cmd_id)),
        })
    }

    /// Parses one whole response (header and body) from the start of `bytes`; returns
    /// it and the number of bytes it took (not counting a following fd's data byte).
    pub fn decode_message(bytes: &[u8]) -> Result<(Self, usize), VtestError> {
        let header = Header::from_bytes(bytes)?;
        let size = header.response_body_size()?;
        let body = message_body(&header, size, bytes)?;
        Ok((Self::decode(header.cmd_id, body)?, HEADER_SIZE + size))
    }
}

/// Mesa's `timeout_to_poll_timeout`: nanoseconds to milliseconds rounded up, with -1
/// ("forever") when the result does not fit an `i32` or rounds a nonzero wait to 0.
pub fn poll_timeout_from_ns(timeout_ns: u64) -> i32 {
    const NS_PER_MS: u64 = 1_000_000;
    let ms = match timeout_ns.checked_add(NS_PER_MS - 1) {
        Some(t) => t / NS_PER_MS,
        None => return -1,
    };
    if ms == 0 && timeout_ns != 0 {
        return -1;
    }
    i32::try_from(ms).unwrap_or(-1)
}

/// The `SYNC_WAIT` timeout field Mesa sends for a poll timeout: the value itself when
/// non-negative, [`SYNC_WAIT_TIMEOUT_INFINITE`] otherwise.
pub fn sync_wait_timeout(poll_timeout: i32) -> u32 {
    u32::try_from(poll_timeout).unwrap_or(SYNC_WAIT_TIMEOUT_INFINITE)
}

fn oversized(cmd_id: u32, size: usize) -> VtestError {
    VtestError::Oversized {
        cmd_id,
        size: size as u64,
        max: MAX_BODY_SIZE,
    }
}

fn append_dword_message(cmd: u32, body: &[u8], out: &mut Vec<u8>) -> Result<(), VtestError> {
    let size = check_size(cmd, body.len() as u64, MAX_BODY_SIZE)?;
    let len = u32::try_from(size / 4).map_err(|_| oversized(cmd, size))?;
    out.reserve(HEADER_SIZE.saturating_add(size));
    out.extend_from_slice(&Header { len, cmd_id: cmd }.to_bytes());
    out.extend_from_slice(body);
    Ok(())
}

fn message_body<'a>(header: &Header, size: usize, bytes: &'a [u8]) -> Result<&'a [u8], VtestError> {
    let available = bytes.len().saturating_sub(HEADER_SIZE);
    HEADER_SIZE
        .checked_add(size)
        .and_then(|end| bytes.get(HEADER_SIZE..end))
        .ok_or(VtestError::TruncatedBody {
            cmd_id: header.cmd_id,
            expected: size,
            available,
        })
}

fn put(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_le_bytes());
}

fn put_all(out: &mut Vec<u8>, vs: &[u32]) {
    for v in vs {
        put(out, *v);
    }
}

/// Low dword then high dword, as Mesa splits 64-bit values.
fn put_u64(out: &mut Vec<u8>, v: u64) {
    put(out, v as u32);
    put(out, (v >> 32) as u32);
}

fn put_padded(out: &mut Vec<u8>, data: &[u8]) {
    out.extend_from_slice(data);
    let pad = (4 - data.len() % 4) % 4;
    out.resize(out.len().saturating_add(pad), 0);
}

fn put_syncs(out: &mut Vec<u8>, syncs: &[SyncPoint]) {
    for s in syncs {
        put(out, s.sync_id);
        put_u64(out, s.value);
    }
}

fn join(lo: u32, hi: u32) -> u64 {
    u64::from(lo) | (u64::from(hi) << 32)
}

fn dword_at(bytes: &[u8], index: usize) -> Option<u32> {
    let start = index.checked_mul(4)?;
    let chunk = bytes.get(start..start.checked_add(4)?)?;
    let mut le = [0u8; 4];
    le.copy_from_slice(chunk);
    Some(u32::from_le_bytes(le))
}

fn require_dwords(cmd_id: u32, body: &[u8]) -> Result<usize, VtestError> {
    if body.len() & 3 != 0 {
        return Err(VtestError::UnalignedBody {
            cmd_id,
            len: body.len(),
        });
    }
    Ok(body.len() / 4)
}

/// A body of exactly `N` dwords.
fn fixed<const N: usize>(cmd_id: u32, body: &[u8]) -> Result<[u32; N], VtestError> {
    if body.len() != N * 4 {
        return Err(VtestError::BodyLength {
            cmd_id,
            expected: N * 4,
            actual: body.len(),
        });
    }
    let mut out = [0u32; N];
    for (i, slot) in out.iter_mut().enumerate() {
        *slot = dword_at(body, i).unwrap_or(0);
    }
    Ok(out)
}

fn decode_syncs(bytes: &[u8]) -> Vec<SyncPoint> {
    bytes
        .chunks_exact(sizes::SYNC_ENTRY * 4)
        .map(|entry| SyncPoint {
            sync_id: dword_at(entry, 0).unwrap_or(0),
            value: join(
                dword_at(entry, 1).unwrap_or(0),
                dword_at(entry, 2).unwrap_or(0),
            ),
        })
        .collect()
}

fn decode_sync_wait(body: &[u8]) -> Result<Request, VtestError> {
    let cmd_id = CommandId::SyncWait.raw();
    let dwords = require_dwords(cmd_id, body)?;
    if dwords < 2 || (dwords - 2) % sizes::SYNC_ENTRY != 0 {
        return Err(VtestError::SyncWaitLength { dwords });
    }
    let flags = dword_at(body, 0).unwrap_or(0);
    let timeout_ms = dword_at(body, 1).unwrap_or(0);
    let syncs = decode_syncs(body.get(8..).unwrap_or(&[]));
    Ok(Request::SyncWait {
        flags,
        timeout_ms,
        syncs,
    })
}

fn decode_get_capset(body: &[u8]) -> Result<Response, VtestError> {
    let cmd_id = CommandId::GetCapset.raw();
    require_dwords(cmd_id, body)?;
    let valid = dword_at(body, 0).ok_or(VtestError::BodyTooShort {
        cmd_id,
        min: 4,
        actual: body.len(),
    })?;
    let rest = body.get(4..).unwrap_or(&[]);
    if valid == 0 {
        if !rest.is_empty() {
            return Err(VtestError::InvalidCapsetResponse { len: body.len() });
        }
        return Ok(Response::GetCapset { data: None });
    }
    Ok(Response::GetCapset {
        data: Some(rest.to_vec()),
    })
}

/// Lays out a submit exactly as `vtest_vcmd_submit_cmd2` does.
fn encode_submit_cmd2(batches: &[SubmitBatch], body: &mut Vec<u8>) -> Result<(), VtestError> {
    let cmd = CommandId::SubmitCmd2.raw();
    if batches.is_empty() {
        return Err(VtestError::EmptySubmit);
    }
    let too_big = |size: u64| VtestError::Oversized {
        cmd_id: cmd,
        size,
        max: MAX_BODY_SIZE,
    };
    let max_dwords = (MAX_BODY_SIZE / 4) as u64;
    let count = batches.len() as u64;
    let header_dwords = count
        .checked_mul(sizes::SUBMIT_CMD2_BATCH as u64)
        .and_then(|d| d.checked_add(1))
        .filter(|d| *d <= max_dwords)
        .ok_or(too_big(u64::MAX))?;
    let mut cs_dwords: u64 = 0;
    let mut sync_dwords: u64 = 0;
    for b in batches {
        cs_dwords = cs_dwords.saturating_add((b.cmd.len() as u64).div_ceil(4));
        sync_dwords = sync_dwords
            .saturating_add((b.syncs.len() as u64).saturating_mul(sizes::SYNC_ENTRY as u64));
    }
    let total = header_dwords
        .saturating_add(cs_dwords)
        .saturating_add(sync_dwords);
    if total > max_dwords {
        return Err(too_big(total.saturating_mul(4)));
    }
    // Every value below is at most `total`, which fits in u32.
    let narrow = |v: u64| u32::try_from(v).map_err(|_| too_big(v));

    body.reserve((total * 4) as usize);
    put(body, narrow(count)?);
    let mut cs_offset = header_dwords;
    let mut sync_offset = header_dwords + cs_dwords;
    for b in batches {
        let cmd_size = (b.cmd.len() as u64).div_ceil(4);
        let sync_count = b.syncs.len() as u64;
        put_all(
            body,
            &[
                b.flags,
                narrow(cs_offset)?,
                narrow(cmd_size)?,
                narrow(sync_offset)?,
                narrow(sync_count)?,
                b.ring_idx,
            ],
        );
        cs_offset += cmd_size;
        sync_offset += sync_count * sizes::SYNC_ENTRY as u64;
    }
    for b in batches {
        put_padded(body, &b.cmd);
    }
    for b in batches {
        put_syncs(body, &b.syncs);
    }
    Ok(())
}

fn decode_submit_cmd2(body: &[u8]) -> Result<Vec<SubmitBatch>, VtestError> {
    let cmd_id = CommandId::SubmitCmd2.raw();
    let len_dw = require_dwords(cmd_id, body)?;
    let batch_count = dword_at(body, 0).ok_or(VtestError::BodyTooShort {
        cmd_id,
        min: 4,
        actual: body.len(),
    })?;
    if batch_count == 0 {
        return Err(VtestError::EmptySubmit);
    }
    let len = len_dw as u64;
    let header_dwords = u64::from(batch_count) * sizes::SUBMIT_CMD2_BATCH as u64 + 1;
    if header_dwords > len {
        return Err(VtestError::BatchHeadersTruncated {
            batch_count,
            body_dwords: len_dw,
        });
    }
    // Bounds the data copied out below by the body size, whatever the offsets say.
    let data_budget = len - header_dwords;
    let mut referenced: u64 = 0;
    // header_dwords <= len_dw, so batch_count is small enough to allocate for.
    let mut batches = Vec::with_capacity(batch_count as usize);
    for i in 0..batch_count {
        let base = 1 + i as usize * sizes::SUBMIT_CMD2_BATCH;
        let word = |k: usize| dword_at(body, base + k).unwrap_or(0);
        let (flags, cmd_offset, cmd_size) = (word(0), word(1), word(2));
        let (sync_offset, sync_count, ring_idx) = (word(3), word(4), word(5));

        let out_of_bounds = VtestError::BatchOutOfBounds { batch: i };
        let cmd_end = u64::from(cmd_offset) + u64::from(cmd_size);
        let sync_dwords = u64::from(sync_count) * sizes::SYNC_ENTRY as u64;
        let sync_end = u64::from(sync_offset) + sync_dwords;
        if cmd_end > len || sync_end > len {
            return Err(out_of_bounds);
        }
        referenced = referenced
            .saturating_add(u64::from(cmd_size))
            .saturating_add(sync_dwords);
        if referenced > data_budget {
            return Err(VtestError::BatchDataOverlap);
        }
        // Both ranges were checked against the body length above.
        let cmd = body
            .get(cmd_offset as usize * 4..cmd_end as usize * 4)
            .ok_or(out_of_bounds)?;
        let syncs = body
            .get(sync_offset as usize * 4..sync_end as usize * 4)
            .ok_or(out_of_bounds)?;
        batches.push(SubmitBatch {
            flags,
            ring_idx,
            cmd: cmd.to_vec(),
            syncs: decode_syncs(syncs),
        });
    }
    Ok(batches)
}
