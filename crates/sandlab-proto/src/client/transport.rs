//! The kinds of stream a client reaches an agent over. The protocol itself only needs
//! an [`AgentStream`]; what differs per kind is how to dial it and how a failed dial
//! is reported. Another transport (vsock) is one more [`Dial`] implementation.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpStream, UnixStream};
use tokio::time::Instant;

use crate::error::{Error, Result};

/// A byte stream to an agent: a Unix or TCP socket, or anything else that reads and
/// writes in order and reliably.
pub trait AgentStream: AsyncRead + AsyncWrite + Unpin + Send + 'static {}

impl<S: AsyncRead + AsyncWrite + Unpin + Send + 'static> AgentStream for S {}

/// Where an agent listens, and how to open one connection to it.
pub(crate) trait Dial: Sync {
    type Stream: AgentStream;

    /// One connection attempt.
    fn dial(&self) -> impl Future<Output = io::Result<Self::Stream>> + Send;

    /// The error once attempts stopped, from the last attempt's failure.
    fn failed(&self, source: io::Error) -> Error;
}

/// An agent's Unix socket.
pub(crate) struct UnixPath<'a>(pub &'a Path);

impl Dial for UnixPath<'_> {
    type Stream = UnixStream;

    async fn dial(&self) -> io::Result<UnixStream> {
        UnixStream::connect(self.0).await
    }

    fn failed(&self, source: io::Error) -> Error {
        Error::Connect {
            path: self.0.to_path_buf(),
            source,
        }
    }
}

/// An agent's TCP address.
pub(crate) struct Tcp(pub SocketAddr);

impl Dial for Tcp {
    type Stream = TcpStream;

    async fn dial(&self) -> io::Result<TcpStream> {
        let stream = TcpStream::connect(self.0).await?;
        // Frames are written whole and batched already; don't let Nagle delay
        // keystrokes of an interactive session.
        stream.set_nodelay(true)?;
        Ok(stream)
    }

    fn failed(&self, source: io::Error) -> Error {
        Error::ConnectTcp {
            addr: self.0,
            source,
        }
    }
}

/// Dials `target` until it answers, retrying while the agent is still starting, up to
/// `deadline`; `timeout` is what the caller asked for, reported in [`Error::Timeout`]
/// when one attempt hangs past the deadline.
pub(crate) async fn dial<D: Dial>(
    target: &D,
    deadline: Instant,
    timeout: Duration,
) -> Result<D::Stream> {
    let mut backoff = Duration::from_millis(5);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let attempt = tokio::time::timeout(left, target.dial())
            .await
            .map_err(|_| Error::Timeout(timeout))?;
        match attempt {
            Ok(stream) => return Ok(stream),
            Err(source) => {
                if Instant::now() + backoff >= deadline {
                    return Err(target.failed(source));
                }
                // Retry pacing while the agent starts, not synchronisation.
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_millis(100));
            }
        }
    }
}
