//! Non-blocking file descriptors (pipes, PTY masters) driven by tokio's reactor.

use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};

use tokio::io::unix::{AsyncFd, AsyncFdReadyGuard};

/// A non-blocking fd registered with the reactor. Reads and writes may run
/// concurrently from different tasks (readiness is tracked per direction).
#[derive(Debug)]
pub struct Fd(AsyncFd<OwnedFd>);

impl Fd {
    pub fn new(fd: OwnedFd) -> io::Result<Fd> {
        set_nonblocking(fd.as_raw_fd())?;
        // SAFETY: the OwnedFd keeps the fd open and returns the same number from
        // as_raw_fd for as long as the AsyncFd that owns it lives.
        let registered = unsafe { AsyncFd::register(fd) }?;
        Ok(Fd(registered))
    }

    pub fn raw(&self) -> RawFd {
        self.0.as_raw_fd()
    }

    /// Reads once data is available; `Ok(0)` at end of file.
    pub async fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            let mut guard = self.0.readable().await?;
            match guard.try_io(|fd| retry_eintr(|| sys_read(fd.as_raw_fd(), buf))) {
                Ok(result) => return result,
                Err(_would_block) => continue,
            }
        }
    }

    /// Waits until the fd is readable. Read through the guard with
    /// [`read_guarded`] so a spurious wake-up clears the readiness.
    pub async fn readable(&self) -> io::Result<AsyncFdReadyGuard<'_, OwnedFd>> {
        self.0.readable().await
    }

    /// Reads what is available right now; `WouldBlock` when nothing is.
    pub fn try_read(&self, buf: &mut [u8]) -> io::Result<usize> {
        retry_eintr(|| sys_read(self.raw(), buf))
    }

    /// Writes once the fd is writable; returns how much was written.
    pub async fn write(&self, buf: &[u8]) -> io::Result<usize> {
        loop {
            let mut guard = self.0.writable().await?;
            match guard.try_io(|fd| retry_eintr(|| sys_write(fd.as_raw_fd(), buf))) {
                Ok(result) => return result,
                Err(_would_block) => continue,
            }
        }
    }

    /// Writes all of `buf`.
    pub async fn write_all(&self, mut buf: &[u8]) -> io::Result<()> {
        while !buf.is_empty() {
            let n = self.write(buf).await?;
            buf = &buf[n..];
        }
        Ok(())
    }
}

/// Reads through a readiness guard; `None` when the readiness was spurious (it is
/// cleared, so the next [`Fd::readable`] waits for real).
pub fn read_guarded(
    guard: &mut AsyncFdReadyGuard<'_, OwnedFd>,
    buf: &mut [u8],
) -> Option<io::Result<usize>> {
    guard
        .try_io(|fd| retry_eintr(|| sys_read(fd.as_raw_fd(), buf)))
        .ok()
}

fn retry_eintr(mut f: impl FnMut() -> io::Result<usize>) -> io::Result<usize> {
    loop {
        match f() {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            other => return other,
        }
    }
}

fn sys_read(fd: RawFd, buf: &mut [u8]) -> io::Result<usize> {
    // SAFETY: `buf` is valid for writes of `buf.len()` bytes for the whole call.
    let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
    usize::try_from(n).map_err(|_| io::Error::last_os_error())
}

fn sys_write(fd: RawFd, buf: &[u8]) -> io::Result<usize> {
    // SAFETY: `buf` is valid for reads of `buf.len()` bytes for the whole call.
    let n = unsafe { libc::write(fd, buf.as_ptr().cast(), buf.len()) };
    usize::try_from(n).map_err(|_| io::Error::last_os_error())
}

/// Sets `O_NONBLOCK` on `fd`.
pub fn set_nonblocking(fd: RawFd) -> io::Result<()> {
    // SAFETY: F_GETFL/F_SETFL only read and set status flags of an fd we own.
    unsafe {
        let flags = libc::fcntl(fd, libc::F_GETFL);
        if flags < 0 || libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK) < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// Marks every fd from 3 up close-on-exec, so nothing the agent inherited or opens
/// leaks into user processes (everything it opens later is `O_CLOEXEC` already).
pub fn cloexec_from_3() {
    // SAFETY: close_range with CLOSE_RANGE_CLOEXEC only sets flags, closes nothing.
    let rc = unsafe {
        libc::close_range(
            3,
            libc::c_uint::MAX,
            libc::CLOSE_RANGE_CLOEXEC as libc::c_int,
        )
    };
    if rc == 0 {
        return;
    }
    // Kernels before 5.11: walk /proc/self/fd. Collect first so the directory fd
    // itself is not being iterated while flags change.
    let fds: Vec<RawFd> = match std::fs::read_dir("/proc/self/fd") {
        Ok(dir) => dir
            .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
            .filter(|fd| *fd >= 3)
            .collect(),
        Err(_) => return,
    };
    for fd in fds {
        // SAFETY: setting FD_CLOEXEC on a possibly stale fd number is harmless.
        unsafe {
            let flags = libc::fcntl(fd, libc::F_GETFD);
            if flags >= 0 {
                libc::fcntl(fd, libc::F_SETFD, flags | libc::FD_CLOEXEC);
            }
        }
    }
}
