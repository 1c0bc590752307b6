//! The vtest front end: a Unix-socket server speaking vtest protocol version 3 to
//! Venus clients, a drop-in for virglrenderer's `virgl_test_server --venus` that stock
//! Mesa (`VN_DEBUG=vtest`) talks to.
//!
//! One thread per client. Each client is isolated: its own [`Context`](crate::Context)
//! (context ids are unique server-wide), resources (ids allocated by the server) and
//! sync objects. A client that sends anything malformed or out of order, or whose
//! context becomes fatal, is disconnected with one `warn` line; the others carry on.
//!
//! Message semantics follow virglrenderer 1.1.0 (`vtest/vtest_renderer.c`) as far as
//! Venus uses them; see [`client`] for the requests and [`sync`] for sync objects,
//! fence timelines and `SYNC_WAIT`.
//!
//! SIGTERM or SIGINT stops accepting, ends every session (dropping its context),
//! removes the socket file and returns from [`run`].

mod backend;
mod client;
mod options;
mod sync;
mod sys;

use std::collections::HashMap;
use std::fs;
use std::io;
use std::os::fd::AsFd;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

pub use options::{parse_args, Command, USAGE};

use backend::Backend;
use client::{ServerIds, Session};
use sys::{poll_readable, TerminationSignals};

use crate::{Error, Renderer, RendererConfig, Result};

/// How the server is set up.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// The Unix socket to listen on (default `/tmp/.virgl_test`).
    pub socket_path: PathBuf,
    /// Settings for the process-wide [`Renderer`].
    pub renderer: RendererConfig,
}

/// How long a shutdown waits for the client sessions to end.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Pause after a failed `accept` (e.g. out of fds), so a listener that stays readable
/// does not spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// Serves until SIGTERM or SIGINT, then shuts down cleanly and returns `Ok`.
pub fn run(config: &ServerConfig) -> Result<()> {
    let signals = TerminationSignals::install().map_err(|source| Error::Os {
        what: "installing the SIGTERM/SIGINT handlers",
        source,
    })?;
    let renderer = Renderer::new(config.renderer.clone())?;
    let server = Server::bind(&config.socket_path, Arc::new(renderer))?;
    tracing::info!(socket = %config.socket_path.display(), "vtest server listening");
    server.serve(&signals)
}

/// The socket file this server created; removed on drop if it is still ours.
struct SocketFile {
    path: PathBuf,
    dev: u64,
    ino: u64,
}

impl SocketFile {
    fn remove(&self) {
        match fs::symlink_metadata(&self.path) {
            Ok(meta) if meta.dev() == self.dev && meta.ino() == self.ino => {
                if let Err(err) = fs::remove_file(&self.path) {
                    tracing::warn!(socket = %self.path.display(), "cannot remove the socket file: {err}");
                }
            }
            Ok(_) => tracing::warn!(
                socket = %self.path.display(),
                "the socket file was replaced by someone else; left alone"
            ),
            Err(_) => {}
        }
    }
}

impl Drop for SocketFile {
    fn drop(&mut self) {
        self.remove();
    }
}

/// The live sessions: a handle on each socket, to shut them down.
#[derive(Default)]
struct Clients {
    live: Mutex<HashMap<u64, UnixStream>>,
    changed: Condvar,
}

impl Clients {
    fn lock(&self) -> MutexGuard<'_, HashMap<u64, UnixStream>> {
        self.live
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Removes a session from [`Clients`] when its thread ends (also by a panic).
struct ClientGuard {
    clients: Arc<Clients>,
    conn_id: u64,
}

impl Drop for ClientGuard {
    fn drop(&mut self) {
        self.clients.lock().remove(&self.conn_id);
        self.clients.changed.notify_all();
    }
}

struct Server<B: Backend> {
    listener: UnixListener,
    socket_file: SocketFile,
    backend: Arc<B>,
    ids: Arc<ServerIds>,
    shutting_down: Arc<AtomicBool>,
    clients: Arc<Clients>,
    next_conn_id: u64,
}

fn os_error(what: &'static str) -> impl FnOnce(io::Error) -> Error {
    move |source| Error::Os { what, source }
}

impl<B: Backend> Server<B> {
    /// Binds `path`, replacing a stale socket file (but nothing else) found there.
    fn bind(path: &Path, backend: Arc<B>) -> Result<Self> {
        match fs::symlink_metadata(path) {
            Ok(meta) if meta.file_type().is_socket() => {
                tracing::info!(socket = %path.display(), "replacing a stale socket file");
                fs::remove_file(path).map_err(os_error("removing the stale socket file"))?;
            }
            Ok(_) => {
                return Err(Error::Os {
                    what: "socket path",
                    source: io::Error::new(
                        io::ErrorKind::AlreadyExists,
                        format!("{} exists and is not a socket", path.display()),
                    ),
                })
            }
            Err(err) if err.kind() == io::ErrorKind::NotFound => {}
            Err(err) => return Err(os_error("checking the socket path")(err)),
        }
        let listener = UnixListener::bind(path).map_err(os_error("binding the socket"))?;
        let meta = fs::symlink_metadata(path).map_err(os_error("checking the bound socket"))?;
        let socket_file = SocketFile {
            path: path.to_owned(),
            dev: meta.dev(),
            ino: meta.ino(),
        };
        listener
            .set_nonblocking(true)
            .map_err(os_error("making the listener non-blocking"))?;
        Ok(Self {
            listener,
            socket_file,
            backend,
            ids: Arc::new(ServerIds::new()),
            shutting_down: Arc::new(AtomicBool::new(false)),
            clients: Arc::new(Clients::default()),
            next_conn_id: 1,
        })
    }

    fn serve(mut self, signals: &TerminationSignals) -> Result<()> {
        loop {
            let ready = poll_readable(&[self.listener.as_fd(), signals.fd()], -1)
                .map_err(os_error("waiting for clients"))?;
            if ready.get(1) == Some(&true) {
                if let Some(signal) = signals.take() {
                    tracing::info!(signal, "termination signal: shutting down");
                    break;
                }
            }
            if ready.first() == Some(&true) {
                self.accept_all();
            }
        }
        self.shutdown();
        Ok(())
    }

    fn accept_all(&mut self) {
        loop {
            match self.listener.accept() {
                Ok((stream, _)) => self.spawn_session(stream),
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => return,
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(err) => {
                    tracing::warn!("cannot accept a client: {err}");
                    thread::sleep(ACCEPT_BACKOFF);
                    return;
                }
            }
        }
    }

    fn spawn_session(&mut self, stream: UnixStream) {
        let conn_id = self.next_conn_id;
        self.next_conn_id = self.next_conn_id.wrapping_add(1);
        // Accepted sockets may inherit the listener's O_NONBLOCK (BSDs do).
        let handle = stream
            .set_nonblocking(false)
            .and_then(|()| stream.try_clone());
        let handle = match handle {
            Ok(handle) => handle,
            Err(err) => {
                tracing::warn!(client = conn_id, "cannot set up a client socket: {err}");
                return;
            }
        };
        self.clients.lock().insert(conn_id, handle);
        let guard = ClientGuard {
            clients: Arc::clone(&self.clients),
            conn_id,
        };
        let session = Session::new(
            stream,
            Arc::clone(&self.backend),
            Arc::clone(&self.ids),
            Arc::clone(&self.shutting_down),
        );
        let spawned = thread::Builder::new()
            .name(format!("vtest-client-{conn_id}"))
            .spawn(move || {
                let _guard = guard;
                serve_session(conn_id, session);
            });
        if let Err(err) = spawned {
            tracing::warn!(client = conn_id, "cannot start a client thread: {err}");
        }
    }

    fn shutdown(self) {
        self.shutting_down.store(true, Ordering::SeqCst);
        let Self {
            listener,
            socket_file,
            clients,
            ..
        } = self;
        drop(listener);
        // Removes the socket file (if it is still ours).
        drop(socket_file);

        let mut live = clients.lock();
        for stream in live.values() {
            let _ = stream.shutdown(std::net::Shutdown::Both);
        }
        let deadline = Instant::now() + SHUTDOWN_GRACE;
        while !live.is_empty() {
            let Some(left) = deadline.checked_duration_since(Instant::now()) else {
                tracing::warn!(sessions = live.len(), "client sessions did not end in time");
                break;
            };
            live = clients
                .changed
                .wait_timeout(live, left)
                .map(|(guard, _)| guard)
                .unwrap_or_else(|poisoned| poisoned.into_inner().0);
        }
        tracing::info!("vtest server stopped");
    }
}

fn serve_session<B: Backend>(conn_id: u64, mut session: Session<B>) {
    let span = tracing::info_span!("vtest_client", client = conn_id);
    let _entered = span.enter();
    tracing::info!("client connected");
    let end = match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| session.run())) {
        Ok(end) => end,
        Err(_) => {
            tracing::error!(
                client = conn_id,
                "panic while serving the client; disconnecting it"
            );
            return;
        }
    };
    let name = session.name().unwrap_or("(unnamed)").to_owned();
    let ctx_id = session.ctx_id();
    if end.is_orderly() {
        tracing::info!(client = conn_id, name = %name, ctx_id = ?ctx_id, "client session ended: {end}");
    } else {
        tracing::warn!(client = conn_id, name = %name, ctx_id = ?ctx_id, "disconnecting vtest client: {end}");
    }
    // The context and everything else of the client goes here.
    drop(session);
}
