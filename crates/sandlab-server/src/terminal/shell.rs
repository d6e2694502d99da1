//! A running shell: its state, the reader task that moves its output into the
//! scrollback and the attached client's queue, and how that client learns why its
//! attachment ended.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};

use bytes::Bytes;
use sandlab_core::SandboxId;
use sandlab_proto::{ExecEvent, ExecEvents, ExecInput};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::ring::Ring;
use super::{lock, Shared};

/// A running shell. Lock order: the hub's map, then a terminal's state.
pub(super) struct Terminal {
    pub(super) sandbox: SandboxId,
    pub(super) name: String,
    pub(super) input: ExecInput,
    /// Cancelled to stop the reader task, which resets the exec stream.
    pub(super) stop: CancellationToken,
    pub(super) state: Mutex<TermState>,
}

pub(super) struct TermState {
    pub(super) ring: Ring,
    pub(super) client: Option<Client>,
    pub(super) ended: bool,
}

pub(super) struct Client {
    pub(super) id: u64,
    pub(super) tx: mpsc::Sender<Chunk>,
    pub(super) link: Arc<Link>,
}

/// How the hub tells a socket loop that its attachment ended, and why.
#[derive(Default)]
pub(super) struct Link {
    pub(super) token: CancellationToken,
    pub(super) end: OnceLock<End>,
}

impl Link {
    pub(super) fn end(&self, end: End) {
        // The first reason wins; later ones describe the same ending.
        let _ = self.end.set(end);
        self.token.cancel();
    }
}

/// Why an attachment ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum End {
    Displaced,
    ShellExited,
    SandboxClosed,
    ShuttingDown,
    AgentLost,
}

/// Output bytes counted in the hub's queued total for as long as they live.
pub(super) struct Chunk {
    pub(super) bytes: Bytes,
    queued: Arc<AtomicUsize>,
}

impl Chunk {
    fn new(bytes: Bytes, queued: &Arc<AtomicUsize>) -> Chunk {
        queued.fetch_add(bytes.len(), Ordering::Relaxed);
        Chunk {
            bytes,
            queued: queued.clone(),
        }
    }
}

impl Drop for Chunk {
    fn drop(&mut self) {
        self.queued.fetch_sub(self.bytes.len(), Ordering::Relaxed);
    }
}

impl Terminal {
    /// Marks the terminal ended, tells its client why and stops the reader.
    pub(super) fn finish(&self, end: End) {
        let client = {
            let mut st = lock(&self.state);
            st.ended = true;
            st.client.take()
        };
        if let Some(client) = client {
            client.link.end(end);
        }
        self.stop.cancel();
    }

    /// Puts output into the ring and, with a client attached, into its queue, waiting
    /// for room there. False when the terminal was stopped meanwhile.
    async fn deliver(&self, bytes: Bytes, queued: &Arc<AtomicUsize>) -> bool {
        let target = {
            let mut st = lock(&self.state);
            st.ring.push(&bytes);
            st.client.as_ref().map(|c| (c.tx.clone(), c.link.clone()))
        };
        let Some((tx, link)) = target else {
            return true;
        };
        let chunk = Chunk::new(bytes, queued);
        tokio::select! {
            biased;
            () = self.stop.cancelled() => false,
            // Displaced or gone: the chunk is in the ring for whoever attaches next.
            () = link.token.cancelled() => true,
            permit = tx.reserve() => {
                if let Ok(permit) = permit {
                    permit.send(chunk);
                }
                true
            }
        }
    }
}

/// The reader task of one terminal: output into ring and client until the shell
/// exits, the agent connection fails or the terminal is stopped. Returning drops
/// `events`, which resets the exec stream and so kills a still running shell.
pub(super) async fn read_output(
    shared: Weak<Shared>,
    term: Arc<Terminal>,
    mut events: ExecEvents,
    queued: Arc<AtomicUsize>,
) {
    let end = loop {
        let event = tokio::select! {
            biased;
            () = term.stop.cancelled() => return,
            event = events.try_next() => event,
        };
        match event {
            Ok(Some(ExecEvent::Stdout(bytes) | ExecEvent::Stderr(bytes))) => {
                if !term.deliver(bytes, &queued).await {
                    return;
                }
            }
            Ok(Some(ExecEvent::Exit(status))) => {
                info!(sandbox.id = %term.sandbox, terminal = %term.name, code = status.shell_code(), "The terminal's shell exited");
                break End::ShellExited;
            }
            // `try_next` returns `None` only after the exit.
            Ok(None) => break End::ShellExited,
            Err(error) => {
                warn!(sandbox.id = %term.sandbox, terminal = %term.name, %error, "Lost the terminal's shell");
                break End::AgentLost;
            }
        }
    };
    term.finish(end);
    if let Some(shared) = shared.upgrade() {
        shared.forget(&term);
    }
}
