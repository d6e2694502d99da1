//! One host connection, over any byte stream: handshake (with the token check when the
//! agent has one), frame dispatch to streams, and the writer.
//!
//! The reader validates every frame; anything malformed or against the protocol
//! closes this connection (its streams are stopped, their processes killed) and
//! nothing else.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::{Bytes, BytesMut};
use sandlab_proto::frame::{Frame, FrameDecoder, FrameKind};
use sandlab_proto::messages::{self, Control, ErrorCode, Hello, Reply, Request};
use sandlab_proto::validate::{check_control, check_request};
use sandlab_proto::{protocol_major, INITIAL_WINDOW, MAX_STREAMS, PROTOCOL_VERSION};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite};
use tokio::sync::mpsc;

use crate::agent::Agent;
use crate::log::{chain, log};
pub use crate::outbound::Outbound;
use crate::window::Window;
use crate::{exec, files, ports};

/// Host input for a running operation.
#[derive(Debug)]
pub enum Input {
    Data(Bytes),
    Eof,
    Control(Control),
}

struct Entry {
    gen: u64,
    /// Dropped on reset, which ends the operation's input channel.
    input: mpsc::UnboundedSender<Input>,
    window: Arc<Window>,
    /// Data bytes the host may still send on this stream.
    in_credit: u32,
}

#[derive(Default)]
struct Table {
    entries: HashMap<u32, Entry>,
    next_gen: u64,
}

type SharedTable = Arc<Mutex<Table>>;

fn lock(table: &Mutex<Table>) -> MutexGuard<'_, Table> {
    // The table holds plain handles; recovering from a poisoned lock is safe.
    table.lock().unwrap_or_else(|e| e.into_inner())
}

/// An operation's handle on its stream. Dropping it ends the stream.
pub struct StreamCtx {
    pub id: u32,
    gen: u64,
    pub out: Outbound,
    pub window: Arc<Window>,
    pub agent: Arc<Agent>,
    table: SharedTable,
}

impl StreamCtx {
    pub fn reply(&self, reply: &Reply) {
        self.out.reply(self.id, reply);
    }

    pub fn data(&self, kind: FrameKind, bytes: Bytes) {
        self.out.data(kind, self.id, bytes);
    }

    /// Gives the host back `n` bytes of credit after consuming its data.
    pub fn grant_input(&self, n: usize) {
        self.granter().grant(n);
    }

    /// A handle that returns input credit from another task.
    pub fn granter(&self) -> Granter {
        Granter {
            id: self.id,
            gen: self.gen,
            out: self.out.clone(),
            table: self.table.clone(),
        }
    }

    /// Sends the terminal reply and ends the stream.
    pub fn finish(self, reply: Reply) {
        self.reply(&reply);
    }
}

impl Drop for StreamCtx {
    fn drop(&mut self) {
        let mut table = lock(&self.table);
        if table
            .entries
            .get(&self.id)
            .is_some_and(|e| e.gen == self.gen)
        {
            table.entries.remove(&self.id);
            self.agent.stats.stream_closed();
        }
        self.window.close();
    }
}

/// Returns input credit to the host for one stream; a no-op once the stream ended.
#[derive(Clone)]
pub struct Granter {
    id: u32,
    gen: u64,
    out: Outbound,
    table: SharedTable,
}

impl Granter {
    pub fn grant(&self, n: usize) {
        if n == 0 {
            return;
        }
        let mut table = lock(&self.table);
        if let Some(entry) = table
            .entries
            .get_mut(&self.id)
            .filter(|e| e.gen == self.gen)
        {
            entry.in_credit = entry.in_credit.saturating_add(n as u32);
            self.out.window(self.id, n as u32);
        }
    }
}

/// Serves one connection until the host closes it or breaks the protocol.
pub async fn serve<S>(agent: Arc<Agent>, sock: S)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let Ok(pending) = agent.handshakes.try_acquire() else {
        return log!("closing a connection: too many are still in their handshake");
    };
    let (mut rd, wr) = tokio::io::split(sock);
    let out = Outbound::start(wr, agent.clone());
    let mut buf = BytesMut::with_capacity(4096);
    let mut dec = FrameDecoder::new();
    if let Err(why) = handshake(&agent, &out, &mut rd, &mut buf, &mut dec).await {
        if let Some(reply) = why.reply() {
            out.reply(0, &reply);
            out.flush().await;
        }
        return log!("closing connection: {}", chain(&why));
    }
    drop(pending);
    let mut conn = Connection {
        agent,
        out,
        table: SharedTable::default(),
    };
    loop {
        match next_frame(&mut rd, &mut buf, &mut dec).await {
            Ok(Some(frame)) => {
                if let Err(why) = conn.handle(frame) {
                    log!("closing connection: {why}");
                    break;
                }
            }
            Ok(None) => break,
            Err(e) => {
                log!("closing connection: {e}");
                break;
            }
        }
    }
    conn.close_all();
}

/// Why a connection was not admitted.
#[derive(Debug, thiserror::Error)]
enum HandshakeError {
    #[error("The host closed the connection during the handshake.")]
    Closed,
    #[error("No hello within {0:?}.")]
    Timeout(std::time::Duration),
    #[error("Reading the hello failed.")]
    Read(#[source] ReadError),
    #[error("The host's hello is malformed.")]
    BadHello(#[source] messages::MessageError),
    #[error("Our hello could not be encoded.")]
    Encode(#[source] messages::MessageError),
    #[error("The host presented {}.", if *.presented { "a wrong token" } else { "no token" })]
    Unauthorized { presented: bool },
    #[error("The host speaks protocol {host:#x}, which is incompatible with this agent's {PROTOCOL_VERSION:#x}.")]
    ProtocolMismatch { host: u32 },
}

impl HandshakeError {
    /// What the host is told before the connection closes, if anything.
    fn reply(&self) -> Option<Reply> {
        match self {
            HandshakeError::Unauthorized { .. } => Some(Reply::error(
                ErrorCode::Unauthorized,
                "The connection did not present the agent's token.",
            )),
            HandshakeError::ProtocolMismatch { .. } => {
                Some(Reply::error(ErrorCode::ProtocolMismatch, self.to_string()))
            }
            _ => None,
        }
    }
}

/// Exchanges hellos. Without a token the agent's hello goes out at once; with one,
/// only after the host's hello presented it, so an unauthenticated peer learns
/// nothing. The whole exchange is bounded by the handshake timeout.
async fn handshake(
    agent: &Agent,
    out: &Outbound,
    rd: &mut (impl AsyncRead + Unpin),
    buf: &mut BytesMut,
    dec: &mut FrameDecoder,
) -> Result<(), HandshakeError> {
    let ours = Hello {
        protocol: PROTOCOL_VERSION,
        version: env!("CARGO_PKG_VERSION").to_string(),
        token: None,
    };
    let ours = messages::encode(FrameKind::Hello, 0, &ours).map_err(HandshakeError::Encode)?;
    let token = agent.admission.token.as_ref();
    if token.is_none() {
        out.frame(ours.clone());
    }
    let limit = agent.admission.handshake_timeout;
    let first = tokio::time::timeout(limit, next_frame(rd, buf, dec))
        .await
        .map_err(|_| HandshakeError::Timeout(limit))?
        .map_err(HandshakeError::Read)?
        .ok_or(HandshakeError::Closed)?;
    let host: Hello =
        messages::decode(&first, FrameKind::Hello).map_err(HandshakeError::BadHello)?;
    if let Some(token) = token {
        if !token.verify(host.token.as_ref()) {
            let presented = host.token.is_some();
            return Err(HandshakeError::Unauthorized { presented });
        }
    }
    if protocol_major(host.protocol) != protocol_major(PROTOCOL_VERSION) {
        return Err(HandshakeError::ProtocolMismatch {
            host: host.protocol,
        });
    }
    if token.is_some() {
        out.frame(ours);
    }
    Ok(())
}

#[derive(Debug, thiserror::Error)]
enum ReadError {
    #[error("Reading the socket failed.")]
    Io(#[source] std::io::Error),
    #[error("The host sent a malformed frame.")]
    Frame(#[source] sandlab_proto::frame::FrameError),
}

/// The next frame; `None` at a clean end of stream.
async fn next_frame(
    rd: &mut (impl AsyncRead + Unpin),
    buf: &mut BytesMut,
    dec: &mut FrameDecoder,
) -> Result<Option<Frame>, ReadError> {
    loop {
        if let Some(frame) = dec.decode(buf).map_err(ReadError::Frame)? {
            return Ok(Some(frame));
        }
        if rd.read_buf(buf).await.map_err(ReadError::Io)? == 0 {
            return Ok(None);
        }
    }
}

struct Connection {
    agent: Arc<Agent>,
    out: Outbound,
    table: SharedTable,
}

impl Connection {
    fn handle(&mut self, frame: Frame) -> Result<(), &'static str> {
        let id = frame.stream;
        match frame.kind {
            FrameKind::Open => {
                let req =
                    messages::decode(&frame, FrameKind::Open).map_err(|_| "malformed request")?;
                self.open(id, req)
            }
            FrameKind::Data => {
                let mut table = lock(&self.table);
                let Some(entry) = table.entries.get_mut(&id) else {
                    return Ok(()); // The stream ended; the data was in flight.
                };
                let len = frame.payload.len();
                if len as u64 > u64::from(entry.in_credit) {
                    return Err("data beyond the granted window");
                }
                entry.in_credit -= len as u32;
                // An operation that takes no input has dropped its receiver.
                let _ = entry.input.send(Input::Data(frame.payload));
                Ok(())
            }
            FrameKind::Eof => {
                self.send_input(id, Input::Eof);
                Ok(())
            }
            FrameKind::Window => {
                let credit = frame.window_credit().ok_or("malformed window")?;
                let window = lock(&self.table).entries.get(&id).map(|e| e.window.clone());
                match window {
                    Some(window) => window.grant(credit).map_err(|_| "window overflow"),
                    None => Ok(()),
                }
            }
            FrameKind::Control => {
                let ctl: Control = messages::decode(&frame, FrameKind::Control)
                    .map_err(|_| "malformed control")?;
                match check_control(&ctl) {
                    Ok(()) => self.send_input(id, Input::Control(ctl)),
                    Err(e) => log!("stream {id}: ignoring control: {e}"),
                }
                Ok(())
            }
            FrameKind::Reset => {
                let entry = lock(&self.table).entries.remove(&id);
                if let Some(entry) = entry {
                    entry.window.close();
                    self.agent.stats.stream_closed();
                }
                Ok(())
            }
            FrameKind::Hello | FrameKind::Reply | FrameKind::Stderr => {
                Err("a frame kind only agents send")
            }
        }
    }

    fn send_input(&self, id: u32, input: Input) {
        if let Some(entry) = lock(&self.table).entries.get(&id) {
            let _ = entry.input.send(input);
        }
    }

    fn open(&mut self, id: u32, req: Request) -> Result<(), &'static str> {
        if let Err(e) = check_request(&req) {
            self.out
                .reply(id, &Reply::error(ErrorCode::InvalidRequest, e.to_string()));
            return Ok(());
        }
        match req {
            Request::Ping => self.out.reply(id, &Reply::Pong),
            Request::Stats => self.out.reply(
                id,
                &Reply::Stats {
                    stats: self.agent.snapshot(),
                },
            ),
            Request::Shutdown => {
                log!("shutdown requested");
                self.out.reply(id, &Reply::Ok);
                let (out, agent) = (self.out.clone(), self.agent.clone());
                tokio::spawn(async move {
                    out.flush().await;
                    agent.shutdown.notify_one();
                });
            }
            req => {
                let Some((ctx, input)) = self.register(id)? else {
                    return Ok(());
                };
                tokio::spawn(async move {
                    match req {
                        Request::Exec(start) => exec::run(ctx, start, input).await,
                        Request::ReadFile { path, max } => files::read(ctx, path, max).await,
                        Request::WriteFile {
                            path,
                            mode,
                            create_parents,
                            size,
                        } => files::write(ctx, path, mode, create_parents, size, input).await,
                        Request::ListDir { path } => files::list(ctx, path).await,
                        Request::Stat { path } => files::stat(ctx, path).await,
                        Request::Remove { path, recursive } => {
                            files::remove(ctx, path, recursive).await
                        }
                        Request::Mkdir { path, parents } => files::mkdir(ctx, path, parents).await,
                        Request::Connect { port } => ports::connect(ctx, port, input).await,
                        Request::ListPorts => ports::list(ctx).await,
                        Request::Ping | Request::Stats | Request::Shutdown => {}
                    }
                });
            }
        }
        Ok(())
    }

    /// Creates the stream's entry; `None` (after an error reply) when at the limit.
    #[allow(clippy::type_complexity)]
    fn register(
        &mut self,
        id: u32,
    ) -> Result<Option<(StreamCtx, mpsc::UnboundedReceiver<Input>)>, &'static str> {
        let mut table = lock(&self.table);
        if table.entries.contains_key(&id) {
            return Err("a stream id that is in use");
        }
        if table.entries.len() >= MAX_STREAMS {
            let msg = format!("The connection already has {MAX_STREAMS} open streams.");
            self.out
                .reply(id, &Reply::error(ErrorCode::TooManyStreams, msg));
            return Ok(None);
        }
        let (tx, rx) = mpsc::unbounded_channel();
        let window = Arc::new(Window::new(INITIAL_WINDOW));
        table.next_gen += 1;
        let gen = table.next_gen;
        table.entries.insert(
            id,
            Entry {
                gen,
                input: tx,
                window: window.clone(),
                in_credit: INITIAL_WINDOW,
            },
        );
        self.agent.stats.stream_opened();
        let ctx = StreamCtx {
            id,
            gen,
            out: self.out.clone(),
            window,
            agent: self.agent.clone(),
            table: self.table.clone(),
        };
        Ok(Some((ctx, rx)))
    }

    /// The host is gone: stop every stream (exec tasks kill their process groups).
    fn close_all(&mut self) {
        let entries = std::mem::take(&mut lock(&self.table).entries);
        for entry in entries.into_values() {
            entry.window.close();
            self.agent.stats.stream_closed();
        }
    }
}
