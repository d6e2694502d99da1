//! A TCP connection inside a sandbox, opened by the agent ([`Request::Connect`]) and
//! carried over the agent link: the port proxy's way in, without routing the host into
//! the sandbox's network.
//!
//! [`PortStream`] reads straight from the stream's inbound queue, giving the agent its
//! credit back as each chunk is consumed; its writes go through an in-memory pipe to a task
//! that sends them within the agent's credit. Each direction stays within the receiver's
//! window, so a side that stops reading stops the other (memory stays bounded by the
//! windows and the pipe).

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, DuplexStream, ReadBuf};
use tokio::task::JoinHandle;

use super::conn::{Expect, Inbound};
use super::{agent_error, Inner, Stream};
use crate::error::{Error, Result};
use crate::frame::{Frame, FrameKind};
use crate::messages::{Reply, Request};
use crate::DATA_CHUNK;

/// Bytes buffered in the pipe between the caller and the pump tasks, per direction.
const PIPE: usize = 64 * 1024;

/// A connection to a port inside a sandbox. Reads and writes go to the sandbox's
/// server; shutting down the write side sends it end of file; dropping it resets the
/// stream, and the agent closes the connection.
pub struct PortStream {
    stream: Stream,
    /// The chunk being read, and its length when it arrived (granted back once consumed).
    chunk: Bytes,
    chunk_len: usize,
    /// The server closed its side (the agent's `Ok`), or the stream failed.
    eof: bool,
    failed: Option<io::ErrorKind>,
    writes: tokio::io::WriteHalf<DuplexStream>,
    up: JoinHandle<()>,
}

impl Drop for PortStream {
    fn drop(&mut self) {
        self.up.abort();
    }
}

impl std::fmt::Debug for PortStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PortStream").finish_non_exhaustive()
    }
}

impl AsyncRead for PortStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let me = &mut *self;
        loop {
            if !me.chunk.is_empty() {
                let n = me.chunk.len().min(buf.remaining());
                buf.put_slice(&me.chunk.split_to(n));
                if me.chunk.is_empty() {
                    me.stream.grant(me.chunk_len);
                }
                return Poll::Ready(Ok(()));
            }
            if let Some(kind) = me.failed {
                return Poll::Ready(Err(io::Error::from(kind)));
            }
            if me.eof {
                return Poll::Ready(Ok(()));
            }
            match me.stream.rx.poll_recv(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Some(Inbound::Stdout(bytes))) => {
                    me.chunk_len = bytes.len();
                    me.chunk = bytes;
                }
                Poll::Ready(Some(Inbound::Reply(Reply::Ok))) => {
                    me.stream.done = true;
                    me.eof = true;
                }
                Poll::Ready(Some(_)) => {
                    me.stream.done = true;
                    me.failed = Some(io::ErrorKind::ConnectionReset);
                }
                Poll::Ready(None) => {
                    me.stream.done = true;
                    me.failed = Some(io::ErrorKind::ConnectionAborted);
                }
            }
        }
    }
}

impl AsyncWrite for PortStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.writes).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.writes).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.writes).poll_shutdown(cx)
    }
}

/// Opens the connection and waits for the agent to say it is made.
pub(super) async fn open(inner: Arc<Inner>, port: u16) -> Result<PortStream> {
    let req = Request::Connect { port };
    crate::validate::check_request(&req)?;
    let mut stream = Stream::open(
        inner.clone(),
        &req,
        Expect::Tunnel { connected: false },
        true,
    )?;
    match stream.recv().await? {
        Inbound::Reply(Reply::Connected) => {}
        Inbound::Reply(Reply::Error { code, message }) => return Err(agent_error(code, message)),
        _ => return Err(Error::StreamClosed),
    }
    let (ours, theirs) = tokio::io::duplex(PIPE);
    let (_, writes) = tokio::io::split(ours);
    let credit = stream.credit.clone().ok_or(Error::StreamClosed)?;
    let id = stream.id;
    let up = tokio::spawn(async move {
        let mut rd = theirs;
        let mut buf = vec![0u8; DATA_CHUNK];
        loop {
            let n = match rd.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            match credit.acquire_many(n as u32).await {
                Ok(permit) => permit.forget(),
                Err(_) => return, // The stream ended.
            }
            let frame = Frame::new(FrameKind::Data, id, Bytes::copy_from_slice(&buf[..n]));
            if inner.conn.send(frame).is_err() {
                return;
            }
        }
        let _ = inner.conn.send(Frame::empty(FrameKind::Eof, id));
    });
    Ok(PortStream {
        stream,
        chunk: Bytes::new(),
        chunk_len: 0,
        eof: false,
        failed: None,
        writes,
        up,
    })
}
