//! One connection to the host per instance: the transport, the protocol level the
//! host speaks, the instance ring and a reply stream.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use ash::vk;
use venus_protocol::capset::VenusCapset;
use venus_protocol::generated as g;
use venus_protocol::mesa::CommandStreamDescriptionMESA;
use venus_protocol::{Decoder, Encoder, ProtocolInfo};

use crate::dispatch::dispatchable_id;
use crate::ring::Ring;
use crate::transport::{MappedBlob, Transport};

/// Size of the reply stream (replies of one command must fit).
const REPLY_SIZE: u64 = 4 << 20;

struct Inner {
    ring: Option<Ring>,
    reply: Option<MappedBlob>,
}

/// A connection: transport + ring + reply stream.
pub struct Connection {
    /// The transport.
    pub transport: Arc<dyn Transport>,
    /// What the host's protocol level lets us send.
    pub info: ProtocolInfo,
    /// The host's sharing granularity: every blob we ask for is a multiple of it.
    pub granularity: u64,
    inner: Mutex<Inner>,
    lost: AtomicBool,
    /// The next fence timeline (ring_idx) to bind a queue to.
    ring_idx: std::sync::atomic::AtomicU32,
    /// Replies to physical-device queries, by command bytes.
    cache: Mutex<std::collections::HashMap<Vec<u8>, Vec<u8>>>,
}

/// Set once any connection of the process is lost: the guest-side answers of
/// status queries look at their own device's connection only then (one load on
/// the fast path instead of three dependent ones).
static ANY_LOST: AtomicBool = AtomicBool::new(false);

/// Whether any connection of the process was lost (see [`Connection::is_lost`]).
pub fn any_lost() -> bool {
    ANY_LOST.load(Ordering::Relaxed)
}

fn lost<E: std::fmt::Display>(what: &str) -> impl FnOnce(E) -> vk::Result + '_ {
    move |e| {
        tracing::error!("{what}: {e}");
        vk::Result::ERROR_DEVICE_LOST
    }
}

impl Connection {
    /// Connects (per `VENUS_TRANSPORT`), checks the capset as Mesa would, and sets
    /// up the ring and the reply stream.
    pub fn open() -> Result<Arc<Connection>, vk::Result> {
        let transport = crate::transport::connect().map_err(|e| {
            tracing::error!("cannot reach a Venus host: {e}");
            vk::Result::ERROR_INITIALIZATION_FAILED
        })?;
        let caps = transport.capset().map_err(lost("reading the capset"))?;
        let caps = VenusCapset::from_bytes(&caps).map_err(lost("parsing the capset"))?;
        let eff = caps.validate_like_mesa().map_err(|e| {
            tracing::error!("the host's Venus capset is not usable: {e}");
            vk::Result::ERROR_INITIALIZATION_FAILED
        })?;
        let info = ProtocolInfo {
            extensions: eff.extension_mask.words(),
            vk_xml_version: eff.vk_xml_version,
        };
        // The host's sharing granularity: the transport knows it (DRM: the capset
        // tail or the guest page size; in a VM the guest kernel places even a probe
        // blob), or a one-page blob comes back rounded up to it (vtest, in-process).
        let granularity = match transport.granularity() {
            Some(g) => g,
            None => match transport.create_blob(0, 4096) {
                Ok(b) => {
                    let g = b.size.max(4096).next_power_of_two();
                    transport.destroy_blob(b);
                    g
                }
                Err(e) => return Err(lost("probing the blob granularity")(e)),
            },
        };
        tracing::debug!(granularity, "host sharing granularity");
        let ring_id = crate::dispatch::next_id();
        let ring =
            Ring::create(&*transport, ring_id, granularity).map_err(lost("creating the ring"))?;
        let reply = transport
            .create_blob(0, REPLY_SIZE)
            .map_err(lost("creating the reply stream"))?;
        Ok(Arc::new(Connection {
            transport,
            info,
            granularity,
            inner: Mutex::new(Inner {
                ring: Some(ring),
                reply: Some(reply),
            }),
            lost: AtomicBool::new(false),
            cache: Mutex::new(std::collections::HashMap::new()),
            ring_idx: std::sync::atomic::AtomicU32::new(1),
        }))
    }

    /// A fence timeline index for a new queue: 1..=63, wrapping (timelines are
    /// only used for ordering; the guest waits through Venus commands).
    pub fn next_ring_idx(&self) -> u32 {
        let n = self.ring_idx.fetch_add(1, Ordering::Relaxed);
        (n - 1) % 63 + 1
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether the host is gone.
    /// (Cheap: the transport's hang-up probe runs only inside long ring waits.)
    pub fn is_lost(&self) -> bool {
        self.lost.load(Ordering::Relaxed)
    }

    fn mark_lost(&self, why: &str) -> vk::Result {
        ANY_LOST.store(true, Ordering::Relaxed);
        if !self.lost.swap(true, Ordering::Relaxed) {
            tracing::error!("device lost: {why}");
        }
        vk::Result::ERROR_DEVICE_LOST
    }

    /// Encodes with this connection's protocol level and dispatchable-id mapping.
    pub fn encode(
        &self,
        out: &mut Vec<u8>,
        f: &mut dyn FnMut(&mut Encoder<'_>, u32),
        flags: u32,
    ) -> Result<(), vk::Result> {
        let start = out.len();
        loop {
            let cap = out.capacity().max(start + 256);
            out.resize(cap, 0);
            let mut e = Encoder::new(&mut out[start..], &self.info);
            e.set_dispatchable_id(dispatchable_id);
            f(&mut e, flags);
            let need = e.position();
            if !e.overflowed() {
                out.truncate(start + need);
                return Ok(());
            }
            if need > (256 << 20) {
                out.truncate(start);
                return Err(vk::Result::ERROR_OUT_OF_HOST_MEMORY);
            }
            out.reserve(start + need - out.len() + 64);
        }
    }

    /// Sends commands without waiting.
    pub fn send(&self, f: &mut dyn FnMut(&mut Encoder<'_>, u32)) -> Result<(), vk::Result> {
        let mut buf = Vec::with_capacity(1024);
        self.encode(&mut buf, f, 0)?;
        let mut inner = self.lock();
        self.write(&mut inner, &buf).map(|_| ())
    }

    /// Sends already-encoded commands without waiting.
    pub fn send_bytes(&self, bytes: &[u8]) -> Result<(), vk::Result> {
        let mut inner = self.lock();
        self.write(&mut inner, bytes).map(|_| ())
    }

    /// Sends a command with the reply bit, waits for it and decodes it.
    pub fn call(
        &self,
        f: &mut dyn FnMut(&mut Encoder<'_>, u32),
        decode: &mut dyn FnMut(&mut Decoder<'_>),
    ) -> Result<(), vk::Result> {
        let mut cmd = Vec::with_capacity(1024);
        self.encode(&mut cmd, f, crate::GENERATE_REPLY)?;
        self.call_encoded(&cmd, decode).map(|_| ())
    }

    /// Like [`Connection::call`], for queries whose answer cannot change: the reply
    /// to identical command bytes is remembered and decoded again next time.
    pub fn call_cached(
        &self,
        f: &mut dyn FnMut(&mut Encoder<'_>, u32),
        decode: &mut dyn FnMut(&mut Decoder<'_>),
    ) -> Result<(), vk::Result> {
        let mut cmd = Vec::with_capacity(1024);
        self.encode(&mut cmd, f, crate::GENERATE_REPLY)?;
        let hit = self
            .cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&cmd)
            .cloned();
        if let Some(reply) = hit {
            let mut d = Decoder::new(&reply);
            decode(&mut d);
            if !d.is_fatal() {
                return Ok(());
            }
        }
        let reply = self.call_encoded(&cmd, decode)?;
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        if cache.len() < 4096 {
            cache.insert(cmd, reply);
        }
        Ok(())
    }

    /// Sends encoded command bytes (reply bit set) after pointing the reply stream
    /// at our blob, waits, decodes; returns the reply bytes the decoder consumed.
    fn call_encoded(
        &self,
        cmd: &[u8],
        decode: &mut dyn FnMut(&mut Decoder<'_>),
    ) -> Result<Vec<u8>, vk::Result> {
        if self.is_lost() {
            return Err(vk::Result::ERROR_DEVICE_LOST);
        }
        let mut inner = self.lock();
        let Some(reply) = inner.reply.as_ref() else {
            return Err(vk::Result::ERROR_DEVICE_LOST);
        };
        let (res_id, ptr) = (reply.res_id, reply.ptr);
        let stream = CommandStreamDescriptionMESA {
            resource_id: res_id,
            offset: 0,
            size: REPLY_SIZE as usize,
        };
        let mut buf = Vec::with_capacity(cmd.len() + 64);
        self.encode(
            &mut buf,
            &mut |e, _| {
                // SAFETY: a valid local struct.
                unsafe { g::encode_vk_set_reply_command_stream_mesa(e, 0, &stream) }
            },
            0,
        )?;
        buf.extend_from_slice(cmd);
        let seqno = self.write(&mut inner, &buf)?;
        self.wait(&inner, seqno)?;
        // SAFETY: the reply blob is REPLY_SIZE bytes, mapped while `inner` holds it;
        // the host has finished writing (head passed the command).
        let bytes = unsafe { std::slice::from_raw_parts(ptr as *const u8, REPLY_SIZE as usize) };
        let mut d = Decoder::new(bytes);
        decode(&mut d);
        if d.is_fatal() {
            return Err(self.mark_lost(&format!("malformed reply: {:?}", d.error())));
        }
        Ok(bytes[..d.position()].to_vec())
    }

    fn wait(&self, inner: &Inner, seqno: u32) -> Result<(), vk::Result> {
        let ring = inner.ring.as_ref().ok_or(vk::Result::ERROR_DEVICE_LOST)?;
        let alive = || self.transport.is_alive();
        ring.wait(seqno, &alive)
            .map_err(|e| self.mark_lost(&e.to_string()))
    }

    fn write(&self, inner: &mut Inner, bytes: &[u8]) -> Result<u32, vk::Result> {
        if self.is_lost() {
            return Err(vk::Result::ERROR_DEVICE_LOST);
        }
        let transport = self.transport.clone();
        let ring = inner.ring.as_mut().ok_or(vk::Result::ERROR_DEVICE_LOST)?;
        let ring_id = ring.id;
        let mut notify = |seqno: u32| -> Result<(), String> {
            let mut b = vec![0u8; 64];
            let mut e = Encoder::with_all(&mut b);
            // SAFETY: plain values.
            unsafe { g::encode_vk_notify_ring_mesa(&mut e, 0, ring_id, seqno, 0) };
            let n = e.finish().map_err(|e| format!("{e:?}"))?;
            transport.submit(&b[..n]).map_err(|e| e.to_string())
        };
        let alive_t = self.transport.clone();
        let alive = move || alive_t.is_alive();
        if bytes.len() as u64 <= u64::from(ring.buffer_size() / 2) {
            return ring
                .write(bytes, &mut notify, &alive)
                .map_err(|e| self.mark_lost(&e.to_string()));
        }
        // Too big for the ring: put it in a blob and run it with vkExecuteCommandStreamsMESA.
        let blob = self
            .transport
            .create_blob(0, round_up(bytes.len() as u64, self.granularity))
            .map_err(|e| self.mark_lost(&format!("command stream blob: {e}")))?;
        // SAFETY: the blob holds at least `bytes.len()` bytes.
        unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), blob.ptr, bytes.len()) };
        let desc = CommandStreamDescriptionMESA {
            resource_id: blob.res_id,
            offset: 0,
            size: bytes.len(),
        };
        let mut cmd = vec![0u8; 128];
        let mut e = Encoder::with_all(&mut cmd);
        // SAFETY: valid local struct; one stream, no reply positions or dependencies.
        unsafe {
            g::encode_vk_execute_command_streams_mesa(
                &mut e,
                0,
                1,
                &desc,
                std::ptr::null(),
                0,
                std::ptr::null(),
                0,
            )
        };
        let n = e
            .finish()
            .map_err(|_| vk::Result::ERROR_OUT_OF_HOST_MEMORY)?;
        let r = ring
            .write(&cmd[..n], &mut notify, &alive)
            .map_err(|e| self.mark_lost(&e.to_string()));
        let r = r.and_then(|seqno| {
            let alive = || self.transport.is_alive();
            ring.wait(seqno, &alive)
                .map_err(|e| self.mark_lost(&e.to_string()))
                .map(|_| seqno)
        });
        self.transport.destroy_blob(blob);
        r
    }

    /// Sends `vkDestroyRingMESA` and releases the ring and reply blobs.
    pub fn close(&self) {
        let mut inner = self.lock();
        if let Some(ring) = inner.ring.take() {
            if !self.is_lost() {
                let alive = || self.transport.is_alive();
                let _ = ring.wait(ring.tail(), &alive);
                let mut b = vec![0u8; 64];
                let mut e = Encoder::with_all(&mut b);
                // SAFETY: plain values.
                unsafe { g::encode_vk_destroy_ring_mesa(&mut e, 0, ring.id) };
                if let Ok(n) = e.finish() {
                    let _ = self.transport.submit(&b[..n]);
                }
            }
            self.transport.destroy_blob(ring.into_blob());
        }
        if let Some(reply) = inner.reply.take() {
            self.transport.destroy_blob(reply);
        }
    }
}

/// `v` rounded up to a multiple of `g` (a power of two).
pub fn round_up(v: u64, g: u64) -> u64 {
    let g = g.max(1);
    v.div_ceil(g).saturating_mul(g)
}
