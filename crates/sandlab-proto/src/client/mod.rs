//! The host-side client: [`AgentClient`] and its operations.

mod conn;
mod exec;
mod transport;
mod tunnel;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::{mpsc, Semaphore};

use self::conn::{Conn, Expect, Inbound, Opened};
pub use self::exec::{ExecEvent, ExecEvents, ExecInput, ExecOutput, ExecRequest, ExecSession};
pub use self::transport::AgentStream;
use self::transport::{Dial, Tcp, UnixPath};
pub use self::tunnel::PortStream;
use crate::auth::AuthToken;
use crate::error::{CloseCause, Error, Result};
use crate::frame::{Frame, FrameKind};
use crate::messages::{AgentStats, DirEntry, ListeningPort, Reply, Request};
use crate::validate::check_request;
use crate::{DATA_CHUNK, HANDSHAKE_TIMEOUT, MAX_DIR_ENTRIES, MAX_FILE_SIZE};

/// A connection to one agent. Cheap to clone; every clone shares the connection,
/// which closes when the last clone and the last session are dropped.
#[derive(Clone)]
pub struct AgentClient {
    inner: Arc<Inner>,
}

/// Owns the connection; dropping it stops the reader and writer tasks.
struct Inner {
    conn: Arc<Conn>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.conn.close(CloseCause::Dropped);
    }
}

impl std::fmt::Debug for AgentClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AgentClient")
            .field("agent_version", &self.inner.conn.agent_version)
            .finish_non_exhaustive()
    }
}

impl AgentClient {
    /// Connects to the agent socket at `path`, retrying while the agent is still
    /// starting, and completes the handshake, all within `timeout`.
    pub async fn connect(path: &Path, timeout: Duration) -> Result<AgentClient> {
        AgentClient::dial(&UnixPath(path), None, timeout).await
    }

    /// Connects to an agent listening on TCP at `addr` and authenticates with its
    /// `token`, retrying while the agent is still starting, all within `timeout`.
    /// A missing or wrong token fails with [`Error::Unauthorized`].
    pub async fn connect_tcp(
        addr: SocketAddr,
        token: &str,
        timeout: Duration,
    ) -> Result<AgentClient> {
        AgentClient::dial(&Tcp(addr), Some(AuthToken::new(token)), timeout).await
    }

    async fn dial<D: Dial>(
        target: &D,
        token: Option<AuthToken>,
        timeout: Duration,
    ) -> Result<AgentClient> {
        let deadline = tokio::time::Instant::now() + timeout;
        let stream = transport::dial(target, deadline, timeout).await?;
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let conn = Conn::start(stream, token, left.max(Duration::from_millis(1)))
            .await
            .map_err(|e| match e {
                Error::Timeout(_) => Error::Timeout(timeout),
                e => e,
            })?;
        Ok(AgentClient::wrap(conn))
    }

    /// Runs the handshake on an already connected stream ([`HANDSHAKE_TIMEOUT`]),
    /// without a token.
    pub async fn from_stream<S: AgentStream>(stream: S) -> Result<AgentClient> {
        AgentClient::from_stream_timeout(stream, HANDSHAKE_TIMEOUT).await
    }

    /// Like [`AgentClient::from_stream`] with a chosen handshake timeout.
    pub async fn from_stream_timeout<S: AgentStream>(
        stream: S,
        timeout: Duration,
    ) -> Result<AgentClient> {
        AgentClient::handshake(stream, None, timeout).await
    }

    /// Runs the handshake on an already connected stream of any kind, presenting
    /// `token` when the agent requires one, within `timeout`.
    pub async fn handshake<S: AgentStream>(
        stream: S,
        token: Option<&str>,
        timeout: Duration,
    ) -> Result<AgentClient> {
        let token = token.map(AuthToken::new);
        Ok(AgentClient::wrap(
            Conn::start(stream, token, timeout).await?,
        ))
    }

    fn wrap(conn: Arc<Conn>) -> AgentClient {
        AgentClient {
            inner: Arc::new(Inner { conn }),
        }
    }

    /// Whether the connection has ended; a cached client that is closed must be replaced.
    pub fn is_closed(&self) -> bool {
        self.inner.conn.is_closed()
    }

    /// The software version the agent announced in its hello.
    pub fn agent_version(&self) -> &str {
        &self.inner.conn.agent_version
    }

    /// A round trip to the agent; returns its duration.
    pub async fn ping(&self) -> Result<Duration> {
        let start = Instant::now();
        match self.single(Request::Ping).await? {
            Reply::Pong => Ok(start.elapsed()),
            other => Err(self.unexpected(other)),
        }
    }

    /// The agent's counters (buffered output, open streams, RSS).
    pub async fn stats(&self) -> Result<AgentStats> {
        match self.single(Request::Stats).await? {
            Reply::Stats { stats } => Ok(stats),
            other => Err(self.unexpected(other)),
        }
    }

    /// Starts a process; see [`ExecSession`] for its input and events.
    pub async fn exec(&self, req: ExecRequest) -> Result<ExecSession> {
        exec::start(self.inner.clone(), req).await
    }

    /// Runs a process to completion, feeding `stdin` and keeping at most `max_output`
    /// bytes of stdout and stderr together; output past that is read and discarded
    /// (the process is not killed) and `truncated` is set.
    pub async fn exec_collect(
        &self,
        req: ExecRequest,
        stdin: Option<Vec<u8>>,
        max_output: usize,
    ) -> Result<ExecOutput> {
        exec::collect(self, req, stdin, max_output).await
    }

    /// Reads a whole file of at most `max` bytes; a bigger file is an error
    /// (`ErrorCode::TooLarge`), not a truncation.
    pub async fn read_file(&self, path: &str, max: u64) -> Result<Vec<u8>> {
        let max = max.min(MAX_FILE_SIZE);
        let mut stream = self.open(
            Request::ReadFile {
                path: path.into(),
                max,
            },
            Expect::Read,
            false,
        )?;
        let mut content = Vec::new();
        loop {
            match stream.recv().await? {
                Inbound::Stdout(bytes) => {
                    if content.len() as u64 + bytes.len() as u64 > max {
                        let e = CloseCause::Violation(
                            "The agent sent more file content than requested.",
                        );
                        return Err(self.fail(e));
                    }
                    content.extend_from_slice(&bytes);
                    stream.grant(bytes.len());
                }
                Inbound::Reply(Reply::Ok) => return Ok(content),
                Inbound::Reply(reply) => return Err(self.reply_error(reply)),
                Inbound::Stderr(_) => {
                    return Err(self.fail(CloseCause::Violation(
                        "The agent sent stderr on a file stream.",
                    )))
                }
            }
        }
    }

    /// Writes `data` to `path` (through a temporary file renamed into place) with
    /// permission bits `mode`, creating missing parent directories if asked.
    pub async fn write_file(
        &self,
        path: &str,
        data: &[u8],
        mode: u32,
        create_parents: bool,
    ) -> Result<()> {
        let req = Request::WriteFile {
            path: path.into(),
            mode,
            create_parents,
            size: data.len() as u64,
        };
        let mut stream = self.open(req, Expect::Single, true)?;
        let credit = stream.credit.clone().ok_or(Error::StreamClosed)?;
        for chunk in data.chunks(DATA_CHUNK) {
            tokio::select! {
                permit = credit.acquire_many(chunk.len() as u32) => match permit {
                    Ok(permit) => permit.forget(),
                    // The agent ended the stream early: its reply says why.
                    Err(_) => break,
                },
                inbound = stream.recv() => return Err(self.reply_error_inbound(inbound?)),
            }
            stream.send(Frame::new(
                FrameKind::Data,
                stream.id,
                Bytes::copy_from_slice(chunk),
            ))?;
        }
        // Ignore a failed send: the reply below explains the ended stream.
        let _ = stream.send(Frame::empty(FrameKind::Eof, stream.id));
        match stream.recv().await? {
            Inbound::Reply(Reply::Ok) => Ok(()),
            other => Err(self.reply_error_inbound(other)),
        }
    }

    /// Opens a TCP connection to `port` inside the sandbox (the agent connects on the
    /// sandbox's loopback); `Error::Agent` with `ConnectionRefused` when nothing listens.
    pub async fn connect_port(&self, port: u16) -> Result<PortStream> {
        self.needs_minor(2)?;
        tunnel::open(self.inner.clone(), port).await
    }

    /// Refuses, without asking, an operation an agent of an older minor version lacks (it
    /// would close the connection on a request it cannot parse).
    fn needs_minor(&self, minor: u32) -> Result<()> {
        if self.inner.conn.agent_protocol & 0xffff >= minor {
            return Ok(());
        }
        Err(agent_error(
            crate::ErrorCode::InvalidRequest,
            format!(
                "The sandbox's agent speaks protocol {:#x}, older than this operation needs; a sandbox started since the upgrade has it.",
                self.inner.conn.agent_protocol
            ),
        ))
    }

    /// The TCP ports listening inside the sandbox, sorted.
    pub async fn list_ports(&self) -> Result<Vec<ListeningPort>> {
        self.needs_minor(2)?;
        match self.single(Request::ListPorts).await? {
            Reply::Ports { ports } => Ok(ports),
            other => Err(self.unexpected(other)),
        }
    }

    /// Lists a directory (entries are not followed when they are symlinks).
    pub async fn list_dir(&self, path: &str) -> Result<Vec<DirEntry>> {
        let mut stream = self.open(Request::ListDir { path: path.into() }, Expect::List, false)?;
        let mut all = Vec::new();
        loop {
            match stream.recv().await? {
                Inbound::Reply(Reply::Entries { entries }) => {
                    if all.len() + entries.len() > MAX_DIR_ENTRIES {
                        return Err(Error::ResponseTooLarge {
                            limit: MAX_DIR_ENTRIES as u64,
                        });
                    }
                    all.extend(entries);
                }
                Inbound::Reply(Reply::Ok) => return Ok(all),
                other => return Err(self.reply_error_inbound(other)),
            }
        }
    }

    /// Describes one file without following a final symlink.
    pub async fn stat(&self, path: &str) -> Result<DirEntry> {
        match self.single(Request::Stat { path: path.into() }).await? {
            Reply::Entry { entry } => Ok(entry),
            other => Err(self.unexpected(other)),
        }
    }

    /// Removes a file, an empty directory, or with `recursive` a whole tree.
    pub async fn remove(&self, path: &str, recursive: bool) -> Result<()> {
        self.single_ok(Request::Remove {
            path: path.into(),
            recursive,
        })
        .await
    }

    /// Creates a directory, with `parents` also its missing parents (and no error if
    /// it exists).
    pub async fn mkdir(&self, path: &str, parents: bool) -> Result<()> {
        self.single_ok(Request::Mkdir {
            path: path.into(),
            parents,
        })
        .await
    }

    /// Asks the agent to kill every process and exit. The connection closing before
    /// the acknowledgement arrives counts as success.
    pub async fn shutdown(&self) -> Result<()> {
        match self.single(Request::Shutdown).await {
            Ok(Reply::Ok) | Err(Error::ConnectionClosed { .. }) => Ok(()),
            Ok(other) => Err(self.unexpected(other)),
            Err(e) => Err(e),
        }
    }

    fn open(&self, req: Request, expect: Expect, sends_data: bool) -> Result<Stream> {
        check_request(&req)?;
        Stream::open(self.inner.clone(), &req, expect, sends_data)
    }

    async fn single(&self, req: Request) -> Result<Reply> {
        let mut stream = self.open(req, Expect::Single, false)?;
        match stream.recv().await? {
            Inbound::Reply(Reply::Error { code, message }) => Err(agent_error(code, message)),
            Inbound::Reply(reply) => Ok(reply),
            // The dispatcher lets only replies through on a single-reply stream.
            _ => Err(self.fail(CloseCause::Violation(
                "The agent sent data on a single-reply stream.",
            ))),
        }
    }

    async fn single_ok(&self, req: Request) -> Result<()> {
        match self.single(req).await? {
            Reply::Ok => Ok(()),
            other => Err(self.unexpected(other)),
        }
    }

    fn reply_error(&self, reply: Reply) -> Error {
        match reply {
            Reply::Error { code, message } => agent_error(code, message),
            other => self.unexpected(other),
        }
    }

    fn reply_error_inbound(&self, inbound: Inbound) -> Error {
        match inbound {
            Inbound::Reply(reply) => self.reply_error(reply),
            _ => self.fail(CloseCause::Violation(
                "The agent sent data where a reply was due.",
            )),
        }
    }

    /// A reply of the wrong type for the request breaks the protocol.
    fn unexpected(&self, _reply: Reply) -> Error {
        self.fail(CloseCause::Violation(
            "The agent answered with the wrong reply type.",
        ))
    }

    fn fail(&self, cause: CloseCause) -> Error {
        self.inner.conn.close(cause);
        self.inner.conn.connection_error()
    }
}

pub(crate) fn agent_error(code: crate::ErrorCode, message: String) -> Error {
    // The message is untrusted text that ends up in logs and UIs: bound it.
    let message = message
        .chars()
        .filter(|c| !c.is_control())
        .take(1024)
        .collect();
    Error::Agent { code, message }
}

/// An open stream from the owner's side; dropping it before its terminal reply
/// resets it on the agent.
pub(crate) struct Stream {
    inner: Arc<Inner>,
    id: u32,
    rx: mpsc::UnboundedReceiver<Inbound>,
    credit: Option<Arc<Semaphore>>,
    done: bool,
}

impl Stream {
    fn open(inner: Arc<Inner>, req: &Request, expect: Expect, sends_data: bool) -> Result<Stream> {
        let Opened { id, rx, credit } = inner.conn.open(req, expect, sends_data)?;
        Ok(Stream {
            inner,
            id,
            rx,
            credit,
            done: false,
        })
    }

    /// The next inbound item; the connection's error once it is closed.
    async fn recv(&mut self) -> Result<Inbound> {
        match self.rx.recv().await {
            Some(inbound) => {
                if let Inbound::Reply(reply) = &inbound {
                    self.done |= is_terminal(reply);
                }
                Ok(inbound)
            }
            None => {
                self.done = true;
                Err(self.inner.conn.connection_error())
            }
        }
    }

    fn grant(&self, n: usize) {
        self.inner.conn.grant(self.id, n);
    }

    fn send(&self, frame: Frame) -> Result<()> {
        self.inner.conn.send(frame)
    }
}

impl Drop for Stream {
    fn drop(&mut self) {
        if !self.done {
            self.inner.conn.reset(self.id);
        }
    }
}

fn is_terminal(reply: &Reply) -> bool {
    !matches!(
        reply,
        Reply::Started { .. } | Reply::Entries { .. } | Reply::Connected
    )
}
