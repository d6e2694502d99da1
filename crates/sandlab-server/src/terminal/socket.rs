//! One WebSocket attached to a terminal: output and input pumped concurrently, so a
//! shell that stops reading its input never stalls its output (or the other way).

use std::time::Duration;

use axum::extract::ws::{close_code, CloseFrame, Message, Utf8Bytes};
use bytes::Bytes;
use futures::{Sink, SinkExt, Stream, StreamExt};
use sandlab_proto::{ExecInput, TtySize};
use serde::Deserialize;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{debug, Instrument};

use super::shell::{Chunk, End, Link};
use super::{valid_tty_size, Attachment, MAX_INPUT_FRAME};

/// How long the last frames (queued output, the close frame) may take to send.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(5);
/// Largest binary frame the scrollback is sent in.
const SCROLLBACK_FRAME: usize = 64 * 1024;
/// Close code for a client displaced by a newer attach.
const DISPLACED: u16 = 4001;

/// How the socket loop ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    /// The client closed or vanished: nothing more to send.
    Gone,
    Close(u16, &'static str),
}

impl End {
    fn outcome(self) -> Outcome {
        match self {
            End::Displaced => {
                Outcome::Close(DISPLACED, "Another client attached to this terminal.")
            }
            End::ShellExited => Outcome::Close(close_code::NORMAL, "The shell exited."),
            End::SandboxClosed => Outcome::Close(close_code::NORMAL, "The sandbox was closed."),
            End::ShuttingDown => Outcome::Close(close_code::AWAY, "The server is shutting down."),
            End::AgentLost => {
                Outcome::Close(close_code::ERROR, "The connection to the sandbox was lost.")
            }
        }
    }
}

/// A control message in a text frame. Unknown fields are allowed so newer browsers
/// can add some; unknown types are ignored.
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum ControlMessage {
    Resize { cols: u16, rows: u16 },
}

/// Runs one WebSocket until either side ends: the scrollback and live output go out
/// as binary frames, binary input goes to the shell, text frames are control
/// messages. When `shutdown` is cancelled the socket closes with 1001; the terminal
/// outlives the socket in every case but an ended shell or sandbox.
pub async fn run_socket<S>(socket: S, attachment: Attachment, shutdown: CancellationToken)
where
    S: Sink<Message> + Stream<Item = Result<Message, axum::Error>> + Send + Unpin + 'static,
{
    let span = tracing::debug_span!(
        "terminal_socket",
        sandbox.id = %attachment.sandbox,
        terminal = %attachment.name,
    );
    serve(socket, attachment, shutdown).instrument(span).await;
}

async fn serve<S>(socket: S, attachment: Attachment, shutdown: CancellationToken)
where
    S: Sink<Message> + Stream<Item = Result<Message, axum::Error>> + Unpin,
{
    let Attachment {
        scrollback,
        mut output,
        link,
        slot,
        ..
    } = attachment;
    let (mut sink, mut stream) = socket.split();
    let outcome = tokio::select! {
        biased;
        () = shutdown.cancelled() => End::ShuttingDown.outcome(),
        outcome = send_output(&mut sink, scrollback, &mut output, &link) => outcome,
        outcome = take_input(&mut stream, &slot.term.input) => outcome,
    };
    // Detach before the close frame goes out, and drop the queue so a reader waiting
    // for room in it moves on at once.
    drop(slot);
    drop(output);
    if let Outcome::Close(code, reason) = outcome {
        debug!(code, reason, "Closing the terminal socket");
        let frame = CloseFrame {
            code,
            reason: Utf8Bytes::from_static(reason),
        };
        // A client that does not take the close frame in time is gone anyway.
        let _ = tokio::time::timeout(CLOSE_TIMEOUT, sink.send(Message::Close(Some(frame)))).await;
    } else {
        debug!("The terminal socket ended");
    }
}

/// Sends the scrollback, then live output until the attachment ends, and returns the
/// reason to close with. Whoever ends an attachment also drops the queue's sender, so
/// the queue runs dry after the last output (the shell's last words are delivered);
/// a client that stopped reading gets [`CLOSE_TIMEOUT`] to take them.
async fn send_output<K>(
    sink: &mut K,
    scrollback: Bytes,
    output: &mut mpsc::Receiver<Chunk>,
    link: &Link,
) -> Outcome
where
    K: Sink<Message> + Unpin,
{
    let live = async {
        let mut rest = scrollback;
        while !rest.is_empty() {
            let frame = rest.split_to(rest.len().min(SCROLLBACK_FRAME));
            if sink.send(Message::Binary(frame)).await.is_err() {
                return false;
            }
        }
        while let Some(chunk) = output.recv().await {
            if sink
                .send(Message::Binary(chunk.bytes.clone()))
                .await
                .is_err()
            {
                return false;
            }
        }
        true
    };
    tokio::pin!(live);
    let delivered = tokio::select! {
        biased;
        delivered = &mut live => delivered,
        () = link.token.cancelled() => {
            tokio::time::timeout(CLOSE_TIMEOUT, &mut live).await.unwrap_or(false)
        }
    };
    if !delivered {
        return Outcome::Gone;
    }
    match link.end.get() {
        Some(end) => end.outcome(),
        // Every path that drops the queue's sender ends the link first.
        None => Outcome::Close(close_code::ERROR, "The terminal ended unexpectedly."),
    }
}

/// Feeds binary frames to the shell and applies control messages until the client
/// closes, fails or sends an oversized frame.
async fn take_input<T>(stream: &mut T, input: &ExecInput) -> Outcome
where
    T: Stream<Item = Result<Message, axum::Error>> + Unpin,
{
    const TOO_BIG: Outcome = Outcome::Close(close_code::SIZE, "The message is too large.");
    while let Some(message) = stream.next().await {
        match message {
            Ok(Message::Binary(bytes)) => {
                if bytes.len() > MAX_INPUT_FRAME {
                    return TOO_BIG;
                }
                // An ended shell's socket is closed by the output side with the reason.
                if let Err(error) = input.write_stdin(&bytes).await {
                    debug!(%error, "Dropped input for the shell");
                }
            }
            Ok(Message::Text(text)) => {
                if text.len() > MAX_INPUT_FRAME {
                    return TOO_BIG;
                }
                control(text.as_str(), input).await;
            }
            Ok(Message::Close(_)) => return Outcome::Gone,
            Ok(Message::Ping(_) | Message::Pong(_)) => {}
            Err(error) => {
                debug!(%error, "Reading the terminal socket failed");
                return Outcome::Gone;
            }
        }
    }
    Outcome::Gone
}

async fn control(text: &str, input: &ExecInput) {
    match serde_json::from_str::<ControlMessage>(text) {
        Ok(ControlMessage::Resize { cols, rows }) => {
            let size = TtySize { cols, rows };
            if !valid_tty_size(size) {
                debug!(cols, rows, "Ignored a resize to an invalid size");
            } else if let Err(error) = input.resize(size).await {
                debug!(%error, "Could not resize the terminal");
            }
        }
        Err(error) => debug!(%error, "Ignored a text frame that is not a control message"),
    }
}
