//! One connection to an agent: the handshake, the reader task that validates and
//! dispatches every frame to its stream, and the writer task.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{mpsc, Semaphore};
use tokio::task::AbortHandle;

use super::transport::AgentStream;
use crate::auth::AuthToken;
use crate::error::{CloseCause, Error, Result};
use crate::frame::{Frame, FrameDecoder, FrameKind};
use crate::messages::{self, ErrorCode, Hello, Reply, Request};
use crate::{protocol_major, INITIAL_WINDOW, MAX_WINDOW, PROTOCOL_VERSION};

/// What a stream's owner receives, in order.
#[derive(Debug)]
pub(crate) enum Inbound {
    Reply(Reply),
    Stdout(Bytes),
    Stderr(Bytes),
}

/// The replies a stream accepts, so a misbehaving agent is caught by the dispatcher.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Expect {
    /// `Started`, then output, then `Exit` (or `Error` at any time).
    Exec { started: bool },
    /// `Data` frames, then one terminal reply.
    Read,
    /// `Entries` chunks, then one terminal reply.
    List,
    /// One terminal reply and nothing else.
    Single,
    /// `Connected`, then data, then `Ok` (or `Error` at any time).
    Tunnel { connected: bool },
}

struct Slot {
    tx: mpsc::UnboundedSender<Inbound>,
    expect: Expect,
    /// Data bytes the agent may still send on this stream.
    recv_window: u32,
    /// Credit for data the host sends (stdin, file content), granted by the agent.
    send_credit: Option<Arc<Semaphore>>,
}

#[derive(Default)]
struct State {
    slots: HashMap<u32, Slot>,
    closed: Option<Arc<CloseCause>>,
}

/// Shared by the client handles and the two connection tasks.
pub(crate) struct Conn {
    out: mpsc::UnboundedSender<Frame>,
    state: Mutex<State>,
    next_id: AtomicU32,
    tasks: Mutex<Vec<AbortHandle>>,
    pub(crate) agent_version: String,
    /// The protocol version the agent's hello named.
    pub(crate) agent_protocol: u32,
}

/// A freshly opened stream.
pub(crate) struct Opened {
    pub id: u32,
    pub rx: mpsc::UnboundedReceiver<Inbound>,
    pub credit: Option<Arc<Semaphore>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A poisoned lock only means another thread panicked mid-update of plain data;
    // the state stays usable (worst case a stream is failed), so recover it.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Conn {
    /// Runs the handshake on `stream` (presenting `token`) within `timeout`, then
    /// starts the tasks.
    pub(crate) async fn start<S: AgentStream>(
        stream: S,
        token: Option<AuthToken>,
        timeout: Duration,
    ) -> Result<Arc<Conn>> {
        let (mut rd, mut wr) = tokio::io::split(stream);
        let mut buf = BytesMut::with_capacity(8 * 1024);
        let shake = handshake(&mut rd, &mut wr, &mut buf, token);
        let hello = tokio::time::timeout(timeout, shake)
            .await
            .map_err(|_| Error::Timeout(timeout))??;
        let (out, out_rx) = mpsc::unbounded_channel();
        let conn = Arc::new(Conn {
            out,
            state: Mutex::new(State::default()),
            next_id: AtomicU32::new(1),
            tasks: Mutex::new(Vec::new()),
            agent_version: hello.version.chars().take(128).collect(),
            agent_protocol: hello.protocol,
        });
        let reader = tokio::spawn(read_loop(conn.clone(), rd, buf));
        let writer = tokio::spawn(write_loop(conn.clone(), wr, out_rx));
        lock(&conn.tasks).extend([reader.abort_handle(), writer.abort_handle()]);
        if lock(&conn.state).closed.is_some() {
            // The connection failed before the handles were stored.
            reader.abort();
            writer.abort();
        }
        Ok(conn)
    }

    /// Whether the connection has ended (no new stream can open).
    pub(crate) fn is_closed(&self) -> bool {
        lock(&self.state).closed.is_some()
    }

    fn closed_error(&self, st: &State) -> Error {
        Error::closed(st.closed.clone())
    }

    /// The error for a call on a stream that is gone.
    pub(crate) fn stream_gone(&self) -> Error {
        let st = lock(&self.state);
        match st.closed {
            Some(_) => self.closed_error(&st),
            None => Error::StreamClosed,
        }
    }

    /// The error once the stream's channel ended.
    pub(crate) fn connection_error(&self) -> Error {
        Error::closed(lock(&self.state).closed.clone())
    }

    /// Registers a stream and sends its `Open` frame.
    pub(crate) fn open(&self, req: &Request, expect: Expect, sends_data: bool) -> Result<Opened> {
        let mut st = lock(&self.state);
        if st.closed.is_some() {
            return Err(self.closed_error(&st));
        }
        let id = loop {
            let id = self.next_id.fetch_add(1, Ordering::Relaxed);
            if id != 0 && !st.slots.contains_key(&id) {
                break id;
            }
        };
        let frame = messages::encode(FrameKind::Open, id, req).map_err(Error::RequestTooLarge)?;
        let (tx, rx) = mpsc::unbounded_channel();
        let credit = sends_data.then(|| Arc::new(Semaphore::new(INITIAL_WINDOW as usize)));
        st.slots.insert(
            id,
            Slot {
                tx,
                expect,
                recv_window: INITIAL_WINDOW,
                send_credit: credit.clone(),
            },
        );
        // The writer only stops after `close`, which also set `closed` above.
        let _ = self.out.send(frame);
        Ok(Opened { id, rx, credit })
    }

    /// Sends a frame on a stream that must still be open.
    pub(crate) fn send(&self, frame: Frame) -> Result<()> {
        let st = lock(&self.state);
        if st.closed.is_some() {
            return Err(self.closed_error(&st));
        }
        if !st.slots.contains_key(&frame.stream) {
            return Err(Error::StreamClosed);
        }
        let _ = self.out.send(frame);
        Ok(())
    }

    /// Gives the agent back `n` bytes of credit after the owner consumed them.
    pub(crate) fn grant(&self, id: u32, n: usize) {
        let mut st = lock(&self.state);
        if let Some(slot) = st.slots.get_mut(&id) {
            // `n` is at most what the agent was allowed to send, so this stays
            // within INITIAL_WINDOW.
            slot.recv_window = slot.recv_window.saturating_add(n as u32);
            let _ = self.out.send(Frame::window(id, n as u32));
        }
    }

    /// Abandons a stream: forget it locally and tell the agent to stop it.
    pub(crate) fn reset(&self, id: u32) {
        let mut st = lock(&self.state);
        if let Some(slot) = st.slots.remove(&id) {
            if let Some(credit) = slot.send_credit {
                credit.close();
            }
            if st.closed.is_none() {
                let _ = self.out.send(Frame::empty(FrameKind::Reset, id));
            }
        }
    }

    /// Fails the connection: every stream ends, every pending call gets the cause.
    pub(crate) fn close(&self, cause: CloseCause) {
        let slots = {
            let mut st = lock(&self.state);
            if st.closed.is_some() {
                return;
            }
            st.closed = Some(Arc::new(cause));
            std::mem::take(&mut st.slots)
        };
        for slot in slots.into_values() {
            if let Some(credit) = slot.send_credit {
                credit.close();
            }
        }
        for task in lock(&self.tasks).drain(..) {
            task.abort();
        }
    }

    /// Validates one frame from the agent and routes it to its stream.
    fn dispatch(&self, frame: Frame) -> Result<(), CloseCause> {
        let kind = frame.kind;
        let reply = match kind {
            FrameKind::Reply => Some(
                messages::decode::<Reply>(&frame, FrameKind::Reply).map_err(CloseCause::Message)?,
            ),
            FrameKind::Data | FrameKind::Stderr | FrameKind::Window => None,
            _ => {
                return Err(CloseCause::Violation(
                    "The agent sent a frame kind only hosts send.",
                ))
            }
        };
        let mut st = lock(&self.state);
        // Frames for streams the host already ended (reset, or after their terminal
        // reply) are in flight legitimately: ignore them.
        let Some(slot) = st.slots.get_mut(&frame.stream) else {
            return Ok(());
        };
        let inbound = match (kind, reply) {
            (FrameKind::Window, _) => {
                let credit = frame.window_credit().unwrap_or(0) as usize;
                if let Some(sem) = &slot.send_credit {
                    if sem.available_permits().saturating_add(credit) > MAX_WINDOW as usize {
                        return Err(CloseCause::Violation(
                            "The agent granted more than the maximum window.",
                        ));
                    }
                    sem.add_permits(credit);
                }
                return Ok(());
            }
            (FrameKind::Data | FrameKind::Stderr, _) => {
                let len = frame.payload.len();
                if len as u64 > u64::from(slot.recv_window) {
                    return Err(CloseCause::Violation(
                        "The agent sent data beyond the granted window.",
                    ));
                }
                let ok = match slot.expect {
                    Expect::Exec { started } => started,
                    Expect::Read => kind == FrameKind::Data,
                    Expect::Tunnel { connected } => connected && kind == FrameKind::Data,
                    _ => false,
                };
                if !ok {
                    return Err(CloseCause::Violation(
                        "The agent sent data on a stream that takes none.",
                    ));
                }
                slot.recv_window -= len as u32;
                if kind == FrameKind::Data {
                    Inbound::Stdout(frame.payload)
                } else {
                    Inbound::Stderr(frame.payload)
                }
            }
            (_, Some(reply)) => {
                let terminal = match (&reply, slot.expect) {
                    (Reply::Error { .. }, _) => true,
                    (Reply::Started { .. }, Expect::Exec { started: false }) => {
                        slot.expect = Expect::Exec { started: true };
                        false
                    }
                    (Reply::Exit { .. }, Expect::Exec { started: true }) => true,
                    (Reply::Connected, Expect::Tunnel { connected: false }) => {
                        slot.expect = Expect::Tunnel { connected: true };
                        false
                    }
                    (Reply::Ok, Expect::Tunnel { connected: true }) => true,
                    (Reply::Entries { .. }, Expect::List) => false,
                    (Reply::Ok, Expect::Read | Expect::List) => true,
                    (
                        Reply::Ok
                        | Reply::Pong
                        | Reply::Stats { .. }
                        | Reply::Entry { .. }
                        | Reply::Ports { .. },
                        Expect::Single,
                    ) => true,
                    _ => {
                        return Err(CloseCause::Violation(
                            "The agent sent a reply the stream does not expect.",
                        ))
                    }
                };
                let _ = slot.tx.send(Inbound::Reply(reply));
                if terminal {
                    if let Some(slot) = st.slots.remove(&frame.stream) {
                        if let Some(credit) = slot.send_credit {
                            credit.close();
                        }
                    }
                }
                return Ok(());
            }
            (_, None) => return Err(CloseCause::Violation("The agent sent an unexpected frame.")),
        };
        // The owner may have dropped its receiver; the Reset it sent is in flight.
        let _ = slot.tx.send(inbound);
        Ok(())
    }
}

async fn handshake(
    rd: &mut (impl AsyncRead + Unpin),
    wr: &mut (impl AsyncWrite + Unpin),
    buf: &mut BytesMut,
    token: Option<AuthToken>,
) -> Result<Hello> {
    let ours = Hello {
        protocol: PROTOCOL_VERSION,
        version: env!("CARGO_PKG_VERSION").to_string(),
        token,
    };
    let frame = messages::encode(FrameKind::Hello, 0, &ours).map_err(Error::RequestTooLarge)?;
    let bytes = frame
        .to_bytes()
        .map_err(|e| Error::closed(Some(Arc::new(CloseCause::Frame(e)))))?;
    let fail = |cause| Error::closed(Some(Arc::new(cause)));
    let sent = async {
        wr.write_all(&bytes).await?;
        wr.flush().await
    };
    sent.await.map_err(|e| fail(CloseCause::Write(e)))?;
    let mut dec = FrameDecoder::new();
    let frame = loop {
        if let Some(frame) = dec.decode(buf).map_err(|e| fail(CloseCause::Frame(e)))? {
            break frame;
        }
        if rd
            .read_buf(buf)
            .await
            .map_err(|e| fail(CloseCause::Read(e)))?
            == 0
        {
            return Err(fail(CloseCause::Eof));
        }
    };
    if frame.kind == FrameKind::Reply && frame.stream == 0 {
        if let Ok(Reply::Error { code, message }) = messages::decode(&frame, FrameKind::Reply) {
            if code == ErrorCode::Unauthorized {
                return Err(Error::Unauthorized);
            }
            return Err(Error::Agent {
                code,
                message: message.chars().take(1024).collect(),
            });
        }
    }
    let hello: Hello =
        messages::decode(&frame, FrameKind::Hello).map_err(|e| fail(CloseCause::Message(e)))?;
    if protocol_major(hello.protocol) != protocol_major(PROTOCOL_VERSION) {
        return Err(Error::ProtocolMismatch {
            agent: hello.protocol,
            host: PROTOCOL_VERSION,
        });
    }
    Ok(hello)
}

async fn read_loop(conn: Arc<Conn>, mut rd: impl AsyncRead + Unpin, mut buf: BytesMut) {
    let mut dec = FrameDecoder::new();
    let cause = loop {
        match dec.decode(&mut buf) {
            Ok(Some(frame)) => {
                if let Err(cause) = conn.dispatch(frame) {
                    break cause;
                }
                continue;
            }
            Ok(None) => {}
            Err(e) => break CloseCause::Frame(e),
        }
        match rd.read_buf(&mut buf).await {
            Ok(0) => break CloseCause::Eof,
            Ok(_) => {}
            Err(e) => break CloseCause::Read(e),
        }
    };
    conn.close(cause);
}

async fn write_loop(
    conn: Arc<Conn>,
    mut wr: impl AsyncWrite + Unpin,
    mut rx: mpsc::UnboundedReceiver<Frame>,
) {
    let mut buf = BytesMut::with_capacity(16 * 1024);
    while let Some(frame) = rx.recv().await {
        let mut next = Some(frame);
        while let Some(frame) = next.take() {
            if let Err(e) = frame.encode(&mut buf) {
                conn.close(CloseCause::Frame(e));
                return;
            }
            if buf.len() < 256 * 1024 {
                next = rx.try_recv().ok();
            }
        }
        // Flushing is a no-op on sockets; a buffered or encrypting stream needs it.
        let written = async {
            wr.write_all(&buf).await?;
            wr.flush().await
        };
        if let Err(e) = written.await {
            conn.close(CloseCause::Write(e));
            return;
        }
        buf.clear();
        if buf.capacity() > 1024 * 1024 {
            buf = BytesMut::with_capacity(16 * 1024);
        }
    }
}
