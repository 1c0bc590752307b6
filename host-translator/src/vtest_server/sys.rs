//! The OS-level pieces of the vtest server: passing an fd with `SCM_RIGHTS`, the
//! poll-able "ready" fd a `SYNC_WAIT` answers with, `poll`, and turning SIGTERM/SIGINT
//! into a readable fd. Every `unsafe` block of the server lives here.

use std::io::{self, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicI32, Ordering};

/// Sends `fd` over `stream` as `SCM_RIGHTS` attached to one data byte (0), the way
/// virglrenderer's `vtest_send_fd` does and Mesa's `vtest_receive_fd` expects.
pub(crate) fn send_fd(stream: &UnixStream, fd: BorrowedFd<'_>) -> io::Result<()> {
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
    // SAFETY: msghdr is a plain C struct for which all-zero is a valid (empty) value.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = space as _;
    // SAFETY: `msg` points at a control buffer of CMSG_SPACE(sizeof(int)) bytes, so
    // CMSG_FIRSTHDR returns a header inside it with room for one int of data.
    unsafe {
        let cmsg = libc::CMSG_FIRSTHDR(&msg);
        if cmsg.is_null() {
            return Err(io::Error::other("no room for the control message"));
        }
        (*cmsg).cmsg_level = libc::SOL_SOCKET;
        (*cmsg).cmsg_type = libc::SCM_RIGHTS;
        (*cmsg).cmsg_len = libc::CMSG_LEN(FD_SIZE) as _;
        std::ptr::write_unaligned(libc::CMSG_DATA(cmsg).cast::<libc::c_int>(), fd.as_raw_fd());
    }
    loop {
        // SAFETY: `msg` and everything it points to (iov, byte, control) outlive the
        // call; the socket fd is valid while `stream` is borrowed.
        let sent = unsafe { libc::sendmsg(stream.as_raw_fd(), &msg, SEND_FLAGS) };
        match sent {
            1 => return Ok(()),
            0 => return Err(io::ErrorKind::WriteZero.into()),
            n if n < 0 => {
                let err = io::Error::last_os_error();
                if err.kind() != io::ErrorKind::Interrupted {
                    return Err(err);
                }
            }
            _ => return Err(io::Error::other("sendmsg sent more than one byte")),
        }
    }
}

#[cfg(any(target_os = "linux", target_os = "android"))]
const SEND_FLAGS: libc::c_int = libc::MSG_NOSIGNAL;
#[cfg(not(any(target_os = "linux", target_os = "android")))]
const SEND_FLAGS: libc::c_int = 0;

/// The fd a `SYNC_WAIT` answers with: the client polls it for `POLLIN`, and the server
/// makes it readable once the wait is satisfied. An eventfd on Linux (as
/// virglrenderer), one end of a socket pair elsewhere.
#[derive(Debug)]
pub(crate) struct ReadyFd {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    fd: std::fs::File,
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    client: UnixStream,
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    server: UnixStream,
}

impl ReadyFd {
    /// A new, not yet readable fd.
    #[cfg(any(target_os = "linux", target_os = "android"))]
    pub(crate) fn new() -> io::Result<Self> {
        // SAFETY: eventfd takes no pointers; the result is checked below.
        let raw = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
        if raw < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `raw` is a freshly created fd that nothing else owns.
        let fd = unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(raw) };
        Ok(Self { fd: fd.into() })
    }

    /// A new, not yet readable fd.
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    pub(crate) fn new() -> io::Result<Self> {
        let (client, server) = UnixStream::pair()?;
        server.set_nonblocking(true)?;
        Ok(Self { client, server })
    }

    /// The fd to send to the client.
    pub(crate) fn client_fd(&self) -> BorrowedFd<'_> {
        #[cfg(any(target_os = "linux", target_os = "android"))]
        return self.fd.as_fd();
        #[cfg(not(any(target_os = "linux", target_os = "android")))]
        return self.client.as_fd();
    }

    /// Makes the fd readable (for good).
    pub(crate) fn signal(&self) {
        #[cfg(any(target_os = "linux", target_os = "android"))]
        let result = (&self.fd).write_all(&1u64.to_ne_bytes());
        #[cfg(not(any(target_os = "linux", target_os = "android")))]
        let result = (&self.server).write_all(&[1]);
        if let Err(err) = result {
            tracing::warn!("cannot signal a SYNC_WAIT fd: {err}");
        }
    }
}

/// Waits up to `timeout_ms` (-1: forever) for any of `fds` to become readable (or hung
/// up, or in error: a read will then tell). Returns one flag per fd; all false on a
/// timeout or an interrupted wait.
pub(crate) fn poll_readable(fds: &[BorrowedFd<'_>], timeout_ms: i32) -> io::Result<Vec<bool>> {
    let mut pollfds: Vec<libc::pollfd> = fds
        .iter()
        .map(|fd| libc::pollfd {
            fd: fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        })
        .collect();
    // SAFETY: `pollfds` is a live array of `pollfds.len()` entries whose fds are
    // borrowed for the duration of the call.
    let ret = unsafe {
        libc::poll(
            pollfds.as_mut_ptr(),
            pollfds.len() as libc::nfds_t,
            timeout_ms,
        )
    };
    if ret < 0 {
        let err = io::Error::last_os_error();
        if err.kind() == io::ErrorKind::Interrupted {
            return Ok(vec![false; fds.len()]);
        }
        return Err(err);
    }
    Ok(pollfds
        .iter()
        .map(|p| p.revents & (libc::POLLIN | libc::POLLHUP | libc::POLLERR | libc::POLLNVAL) != 0)
        .collect())
}

/// Write end of the signal self-pipe, for the handler (-1 when none is installed).
static SIGNAL_WRITE_FD: AtomicI32 = AtomicI32::new(-1);
/// The last signal received.
static LAST_SIGNAL: AtomicI32 = AtomicI32::new(0);

extern "C" fn on_termination_signal(signal: libc::c_int) {
    LAST_SIGNAL.store(signal, Ordering::SeqCst);
    let fd: RawFd = SIGNAL_WRITE_FD.load(Ordering::SeqCst);
    if fd >= 0 {
        let byte = 1u8;
        // SAFETY: write(2) is async-signal-safe; `byte` is a live local and `fd` is the
        // write end of the self-pipe, kept open while the handler is installed. A full
        // pipe (EAGAIN) is fine: the reader is already woken.
        let _ = unsafe { libc::write(fd, (&byte as *const u8).cast(), 1) };
    }
}

/// SIGTERM and SIGINT delivered as readability of an fd. Dropping it restores the
/// default dispositions.
pub(crate) struct TerminationSignals {
    read: UnixStream,
    _write: UnixStream,
}

const TERMINATION_SIGNALS: [libc::c_int; 2] = [libc::SIGTERM, libc::SIGINT];

impl TerminationSignals {
    /// Installs the handlers.
    pub(crate) fn install() -> io::Result<Self> {
        let (read, write) = UnixStream::pair()?;
        read.set_nonblocking(true)?;
        write.set_nonblocking(true)?;
        SIGNAL_WRITE_FD.store(write.as_raw_fd(), Ordering::SeqCst);
        for signal in TERMINATION_SIGNALS {
            set_disposition(
                signal,
                on_termination_signal as *const () as libc::sighandler_t,
            )?;
        }
        Ok(Self {
            read,
            _write: write,
        })
    }

    /// The fd that becomes readable when a signal arrives.
    pub(crate) fn fd(&self) -> BorrowedFd<'_> {
        self.read.as_fd()
    }

    /// The signal that arrived, if any (drains the pipe).
    pub(crate) fn take(&self) -> Option<libc::c_int> {
        let mut buf = [0u8; 64];
        while matches!(io::Read::read(&mut &self.read, &mut buf), Ok(n) if n > 0) {}
        match LAST_SIGNAL.swap(0, Ordering::SeqCst) {
            0 => None,
            s => Some(s),
        }
    }
}

impl Drop for TerminationSignals {
    fn drop(&mut self) {
        for signal in TERMINATION_SIGNALS {
            let _ = set_disposition(signal, libc::SIG_DFL);
        }
        SIGNAL_WRITE_FD.store(-1, Ordering::SeqCst);
    }
}

fn set_disposition(signal: libc::c_int, handler: libc::sighandler_t) -> io::Result<()> {
    // SAFETY: sigaction is a plain C struct for which all-zero is valid (empty mask).
    let mut action: libc::sigaction = unsafe { std::mem::zeroed() };
    action.sa_sigaction = handler;
    action.sa_flags = libc::SA_RESTART;
    // SAFETY: `action` is fully initialized; the handler (if not SIG_DFL) only does
    // async-signal-safe work (atomics and write(2)).
    let ret = unsafe { libc::sigaction(signal, &action, std::ptr::null_mut()) };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_fd_becomes_readable_only_when_signalled() {
        let ready = ReadyFd::new().expect("ready fd");
        let before = poll_readable(&[ready.client_fd()], 0).expect("poll");
        assert_eq!(before, vec![false]);
        ready.signal();
        let after = poll_readable(&[ready.client_fd()], 0).expect("poll");
        assert_eq!(after, vec![true]);
    }
}
