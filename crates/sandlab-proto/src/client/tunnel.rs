//! A TCP connection inside a sandbox, opened by the agent ([`Request::Connect`]) and
//! carried over the agent link: the port proxy's way in, without routing the host into
//! the sandbox's network.
//!
//! [`PortStream`] is one end of an in-memory pipe; two tasks move bytes between its other
//! end and the agent stream, each direction within the receiver's window, so a side that
//! stops reading stops the other (memory stays bounded by the windows and the pipe).

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, DuplexStream, ReadBuf};
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
    io: DuplexStream,
    tasks: [JoinHandle<()>; 2],
}

impl Drop for PortStream {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
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
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl AsyncWrite for PortStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
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
    let (rd, wr) = tokio::io::split(theirs);
    let credit = stream.credit.clone().ok_or(Error::StreamClosed)?;
    let id = stream.id;
    let up = tokio::spawn(async move {
        let mut rd = rd;
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
    let down = tokio::spawn(async move {
        let mut wr = wr;
        loop {
            match stream.recv().await {
                Ok(Inbound::Stdout(bytes)) => {
                    if wr.write_all(&bytes).await.is_err() {
                        break;
                    }
                    stream.grant(bytes.len());
                }
                Ok(Inbound::Reply(Reply::Ok)) => {
                    let _ = wr.shutdown().await;
                    // Keep the stream (and so the agent's connection) until the caller
                    // is done writing: the task is aborted when the PortStream drops.
                    std::future::pending::<()>().await;
                }
                _ => break,
            }
        }
    });
    Ok(PortStream {
        io: ours,
        tasks: [up, down],
    })
}
