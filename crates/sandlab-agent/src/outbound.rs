//! The queue of frames towards one host connection and the task writing it out.
//!
//! Data frames are counted as buffered from the moment they are queued until they
//! were written to the socket; that counter (and its high-water mark) is what shows
//! the windows bound the agent's memory.

use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use sandlab_proto::frame::{Frame, FrameKind};
use sandlab_proto::messages::{self, ErrorCode, Reply};
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::sync::{mpsc, oneshot};

use crate::agent::Agent;
use crate::log::log;

enum Out {
    Frame(Frame),
    Flush(oneshot::Sender<()>),
}

/// The queue towards the host's socket. Cheap to clone.
#[derive(Clone)]
pub struct Outbound {
    tx: mpsc::UnboundedSender<Out>,
    agent: Arc<Agent>,
}

impl Outbound {
    /// A queue and the task that writes it to `wr`.
    pub fn start(wr: impl AsyncWrite + Unpin + Send + 'static, agent: Arc<Agent>) -> Outbound {
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(write_loop(wr, rx, agent.clone()));
        Outbound { tx, agent }
    }

    /// Queues any frame as is.
    pub fn frame(&self, frame: Frame) {
        let _ = self.tx.send(Out::Frame(frame));
    }

    pub fn reply(&self, stream: u32, reply: &Reply) {
        let frame = messages::encode(FrameKind::Reply, stream, reply).unwrap_or_else(|e| {
            let err = Reply::error(
                ErrorCode::Other,
                format!("The reply could not be encoded: {e}"),
            );
            // A short error reply always encodes.
            messages::encode(FrameKind::Reply, stream, &err)
                .unwrap_or_else(|_| Frame::empty(FrameKind::Reply, stream))
        });
        let _ = self.tx.send(Out::Frame(frame));
    }

    /// Queues output; counted as buffered until the writer has written it.
    pub fn data(&self, kind: FrameKind, stream: u32, bytes: Bytes) {
        let n = bytes.len();
        self.agent.stats.queued(n);
        if self
            .tx
            .send(Out::Frame(Frame::new(kind, stream, bytes)))
            .is_err()
        {
            self.agent.stats.unqueued(n);
        }
    }

    pub fn window(&self, stream: u32, credit: u32) {
        let _ = self.tx.send(Out::Frame(Frame::window(stream, credit)));
    }

    /// Waits until everything queued before this call was written (or the
    /// connection is gone).
    pub async fn flush(&self) {
        let (tx, rx) = oneshot::channel();
        if self.tx.send(Out::Flush(tx)).is_ok() {
            let _ = rx.await;
        }
    }
}

async fn write_loop(
    mut wr: impl AsyncWrite + Unpin,
    mut rx: mpsc::UnboundedReceiver<Out>,
    agent: Arc<Agent>,
) {
    let mut buf = BytesMut::with_capacity(16 * 1024);
    let mut flushes = Vec::new();
    while let Some(first) = rx.recv().await {
        let mut data_bytes = 0;
        let mut next = Some(first);
        while let Some(item) = next.take() {
            match item {
                Out::Frame(frame) => {
                    if matches!(frame.kind, FrameKind::Data | FrameKind::Stderr) {
                        data_bytes += frame.payload.len();
                    }
                    if let Err(e) = frame.encode(&mut buf) {
                        log!("dropping an unencodable frame: {e}");
                    }
                }
                Out::Flush(done) => flushes.push(done),
            }
            if buf.len() < 256 * 1024 {
                next = rx.try_recv().ok();
            }
        }
        // Flushing is a no-op on sockets; a buffered or encrypting stream needs it.
        let result = async {
            wr.write_all(&buf).await?;
            wr.flush().await
        }
        .await;
        agent.stats.written(data_bytes);
        buf.clear();
        if buf.capacity() > 1024 * 1024 {
            buf = BytesMut::with_capacity(16 * 1024);
        }
        for done in flushes.drain(..) {
            let _ = done.send(());
        }
        if let Err(e) = result {
            log!("writing to the host failed: {e}");
            break;
        }
    }
    rx.close();
    while let Ok(item) = rx.try_recv() {
        if let Out::Frame(frame) = item {
            if matches!(frame.kind, FrameKind::Data | FrameKind::Stderr) {
                agent.stats.written(frame.payload.len());
            }
        }
    }
}
