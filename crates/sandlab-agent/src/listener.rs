//! Where hosts connect: a Unix socket (inherited from the runtime or bound for tests)
//! or a TCP address. Everything past `accept` is the same for every kind of stream
//! (`conn::serve` is generic); another transport (vsock) is one more variant here.

use std::io;
use std::net::{SocketAddr, TcpListener as StdTcpListener};
use std::os::fd::{FromRawFd, RawFd};
use std::os::unix::fs::FileTypeExt;
use std::os::unix::net::UnixListener as StdUnixListener;
use std::path::Path;
use std::sync::Arc;

use tokio::net::{TcpListener, UnixListener};

use crate::agent::Agent;
use crate::conn;
use crate::log::log;

/// Where to listen, as the command line says.
#[derive(Debug, Clone, Copy)]
pub enum Listen<'a> {
    /// The listening Unix socket inherited as the fd named by `SANDLAB_AGENT_FD`.
    Inherited,
    /// A Unix socket bound at this path.
    Unix(&'a Path),
    /// A TCP address (port 0 picks a free port).
    Tcp(SocketAddr),
}

/// A bound socket, before the runtime exists.
pub enum Bound {
    Unix(StdUnixListener),
    Tcp(StdTcpListener),
}

/// A socket registered with the runtime, accepting connections.
pub enum Listener {
    Unix(UnixListener),
    Tcp(TcpListener),
}

impl Bound {
    /// Binds (or adopts) the socket; the error is one sentence for the log.
    pub fn open(listen: Listen<'_>) -> Result<Bound, String> {
        let bound = match listen {
            Listen::Unix(path) => {
                if std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_socket()) {
                    let _ = std::fs::remove_file(path);
                }
                let listener = StdUnixListener::bind(path)
                    .map_err(|e| format!("cannot listen on {}: {e}", path.display()))?;
                Bound::Unix(listener)
            }
            Listen::Tcp(addr) => {
                let listener = StdTcpListener::bind(addr)
                    .map_err(|e| format!("cannot listen on {addr}: {e}"))?;
                Bound::Tcp(listener)
            }
            Listen::Inherited => Bound::Unix(inherited()?),
        };
        let nonblocking = match &bound {
            Bound::Unix(l) => l.set_nonblocking(true),
            Bound::Tcp(l) => l.set_nonblocking(true),
        };
        nonblocking.map_err(|e| format!("cannot make the socket non-blocking: {e}"))?;
        Ok(bound)
    }

    /// The TCP address actually bound (the chosen port when asked for port 0).
    pub fn tcp_addr(&self) -> Option<io::Result<SocketAddr>> {
        match self {
            Bound::Tcp(l) => Some(l.local_addr()),
            Bound::Unix(_) => None,
        }
    }

    /// Registers the socket with the current runtime.
    pub fn register(self) -> io::Result<Listener> {
        Ok(match self {
            Bound::Unix(l) => Listener::Unix(UnixListener::from_std(l)?),
            Bound::Tcp(l) => Listener::Tcp(TcpListener::from_std(l)?),
        })
    }
}

impl Listener {
    /// Waits for the next connection and serves it on a task of its own.
    /// Cancel safe: nothing is lost when the future is dropped before it is ready.
    pub async fn accept(&self, agent: &Arc<Agent>) -> io::Result<()> {
        match self {
            Listener::Unix(l) => {
                let (sock, _) = l.accept().await?;
                drop(tokio::spawn(conn::serve(agent.clone(), sock)));
            }
            Listener::Tcp(l) => {
                let (sock, peer) = l.accept().await?;
                log!("connection from {peer}");
                // Frames are written whole and batched already; don't let Nagle delay
                // an interactive session's echo. Failing only costs latency.
                if let Err(e) = sock.set_nodelay(true) {
                    log!("TCP_NODELAY failed for {peer}: {e}");
                }
                drop(tokio::spawn(conn::serve(agent.clone(), sock)));
            }
        }
        Ok(())
    }
}

/// The listening socket the runtime handed over.
fn inherited() -> Result<StdUnixListener, String> {
    let var =
        std::env::var("SANDLAB_AGENT_FD").map_err(|_| format!("no socket: {}", crate::USAGE))?;
    let fd: RawFd = var
        .parse()
        .ok()
        .filter(|fd| *fd >= 3)
        .ok_or_else(|| format!("SANDLAB_AGENT_FD={var:?} is not an fd number of 3 or more"))?;
    if !is_listening_socket(fd) {
        return Err(format!("fd {fd} is not a listening socket"));
    }
    // SAFETY: the fd was inherited for us alone, is open (checked above) and nothing
    // else in this process owns it.
    Ok(unsafe { StdUnixListener::from_raw_fd(fd) })
}

fn is_listening_socket(fd: RawFd) -> bool {
    let mut value: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: getsockopt writes at most `len` bytes into `value`.
    let rc = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_ACCEPTCONN,
            (&mut value as *mut libc::c_int).cast(),
            &mut len,
        )
    };
    rc == 0 && value == 1
}
