//! Moving bytes between a child's pipes (or PTY master) and its stream, within the
//! stream's window.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use sandlab_proto::frame::FrameKind;
use sandlab_proto::DATA_CHUNK;
use tokio::sync::{mpsc, oneshot, watch};

use crate::conn::{Granter, Outbound};
use crate::fdio::{read_guarded, Fd};
use crate::window::Window;

/// After a PTY session leader exits, its last output may still be in the kernel's
/// line discipline; read until EIO or until the terminal was quiet this long.
const PTY_DRAIN_IDLE: Duration = Duration::from_millis(250);

/// One output of a child: stdout, stderr or a PTY master.
pub struct Output {
    pub fd: Arc<Fd>,
    pub kind: FrameKind,
    pub stream: u32,
    pub out: Outbound,
    pub window: Arc<Window>,
    /// Becomes true once the child has been reaped.
    pub exited: watch::Receiver<bool>,
    pub pty: bool,
}

enum Read {
    Bytes(usize),
    /// End of file, an error, or nothing left to drain.
    Done,
    /// Nothing read, try again (spurious readiness).
    Again,
}

impl Output {
    /// Forwards output until the child has exited and its output is drained, then
    /// signals `drained` and keeps discarding until end of file, so that background
    /// processes still holding the pipe do not get SIGPIPE or block.
    pub async fn run(mut self, drained: oneshot::Sender<()>) {
        let mut exited = *self.exited.borrow();
        // One reusable buffer; each frame gets an exact-size copy, so tiny PTY reads
        // do not pin a whole chunk each while queued.
        let mut buf = vec![0u8; DATA_CHUNK];
        loop {
            let (allowed, read) = if exited {
                let Some(allowed) = self.window.reserve(DATA_CHUNK).await else {
                    break; // The stream was reset or the connection closed.
                };
                (allowed, self.drain_read(&mut buf[..allowed]).await)
            } else {
                // Wait for data first and only then for credit, so an idle output
                // (stderr) never sits on credit another output (stdout) needs.
                let ready = tokio::select! {
                    ready = self.fd.readable() => ready,
                    _ = self.exited.changed() => {
                        // A dropped sender also means the child is gone.
                        exited = true;
                        continue;
                    }
                };
                let Ok(mut guard) = ready else { break };
                // Never read more than the host granted: with no credit the child
                // blocks on its full pipe.
                let Some(allowed) = self.window.reserve(DATA_CHUNK).await else {
                    break;
                };
                let read = match read_guarded(&mut guard, &mut buf[..allowed]) {
                    Some(r) => result(r),
                    None => Read::Again,
                };
                (allowed, read)
            };
            match read {
                Read::Bytes(n) => {
                    self.window.release(allowed - n);
                    self.out
                        .data(self.kind, self.stream, Bytes::copy_from_slice(&buf[..n]));
                }
                Read::Again => self.window.release(allowed),
                Read::Done => {
                    self.window.release(allowed);
                    break;
                }
            }
        }
        let _ = drained.send(());
        // Keep only the fd: a background process may hold the pipe for a long time,
        // and the connection's writer must not be kept alive by this task.
        let Output {
            fd, out, window, ..
        } = self;
        drop((out, window));
        discard(&fd).await;
    }

    async fn drain_read(&self, buf: &mut [u8]) -> Read {
        if self.pty {
            match tokio::time::timeout(PTY_DRAIN_IDLE, self.fd.read(buf)).await {
                Ok(r) => result(r),
                Err(_) => Read::Done,
            }
        } else {
            // A pipe holds everything the child wrote before it exited.
            result(self.fd.try_read(buf))
        }
    }
}

fn result(r: io::Result<usize>) -> Read {
    match r {
        Ok(n) if n > 0 => Read::Bytes(n),
        // 0 is end of file; WouldBlock ends a drain; EIO is a PTY whose slave side
        // is closed everywhere.
        _ => Read::Done,
    }
}

async fn discard(fd: &Fd) {
    let mut buf = vec![0u8; 16 * 1024];
    while let Ok(n) = fd.read(&mut buf).await {
        if n == 0 {
            break;
        }
    }
}

/// Writes host stdin to the child, granting credit back as bytes are consumed. When
/// the child stops reading (closed pipe), further stdin is discarded but still
/// credited so the host never blocks on a dead stream. Dropping the sender closes
/// the child's stdin (for a pipe; a PTY master stays open for output).
pub async fn stdin(fd: Arc<Fd>, mut rx: mpsc::UnboundedReceiver<Bytes>, granter: Granter) {
    let mut broken = false;
    while let Some(bytes) = rx.recv().await {
        if !broken && fd.write_all(&bytes).await.is_err() {
            broken = true;
        }
        granter.grant(bytes.len());
    }
}
