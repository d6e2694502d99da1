//! Exec sessions: stdin, resize and signals going in, output and the exit coming out.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::Semaphore;

use super::conn::{Expect, Inbound};
use super::{agent_error, AgentClient, Inner, Stream};
use crate::error::{CloseCause, Error, Result};
use crate::frame::{Frame, FrameKind};
use crate::messages::{self, Control, ExecStart, ExitStatus, Reply, Request, TtySize};
use crate::validate::{check_control, check_exec};
use crate::DATA_CHUNK;

/// What to run. `Default` gives an empty request: set at least `argv`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExecRequest {
    /// The program and its arguments; the program is looked up in the `PATH` of `env`.
    pub argv: Vec<String>,
    /// `KEY=VALUE` entries, on top of the defaults `PATH`, `HOME`, `USER` and `TERM`
    /// (`xterm-256color` with a TTY, else `dumb`).
    pub env: Vec<String>,
    /// Working directory; default the user's home if it exists, else `/`.
    pub cwd: Option<String>,
    /// `name`, `uid`, `name:group` or `uid:gid`, resolved in the sandbox's
    /// `/etc/passwd` and `/etc/group`; default root.
    pub user: Option<String>,
    /// The agent kills the process group with SIGKILL at the deadline.
    pub timeout: Option<Duration>,
    /// Run on a pseudo-terminal of this size (stdout and stderr merge into `Stdout`).
    pub tty: Option<TtySize>,
    /// Whether the host will stream stdin; otherwise stdin is `/dev/null`.
    pub stdin: bool,
}

impl ExecRequest {
    /// A request running `argv` with every other setting at its default.
    pub fn new<I, S>(argv: I) -> ExecRequest
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        ExecRequest {
            argv: argv.into_iter().map(Into::into).collect(),
            ..ExecRequest::default()
        }
    }

    fn to_wire(&self) -> ExecStart {
        ExecStart {
            argv: self.argv.clone(),
            env: self.env.clone(),
            cwd: self.cwd.clone(),
            user: self.user.clone(),
            timeout_ms: self
                .timeout
                .map(|t| u64::try_from(t.as_millis()).unwrap_or(u64::MAX)),
            tty: self.tty,
            stdin: self.stdin,
        }
    }
}

/// Something that happened to a running process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExecEvent {
    Stdout(Bytes),
    Stderr(Bytes),
    /// Always the last event; all output precedes it.
    Exit(ExitStatus),
}

/// The result of [`AgentClient::exec_collect`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecOutput {
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    pub exit: ExitStatus,
    /// Output went past `max_output` and the rest was discarded.
    pub truncated: bool,
    pub duration: Duration,
}

/// A running process. Use it directly, or [`ExecSession::split`] it to feed input
/// and read events from two tasks. Dropping the event half before the exit kills the
/// process group.
pub struct ExecSession {
    input: ExecInput,
    events: ExecEvents,
}

/// The sending half of an exec session. Clones share the same stream.
#[derive(Clone)]
pub struct ExecInput {
    inner: Arc<Inner>,
    id: u32,
    credit: Option<Arc<Semaphore>>,
    pid: u32,
}

/// The receiving half of an exec session.
pub struct ExecEvents {
    stream: Stream,
    finished: bool,
}

pub(super) async fn start(inner: Arc<Inner>, req: ExecRequest) -> Result<ExecSession> {
    let wire = req.to_wire();
    check_exec(&wire)?;
    let request = Request::Exec(wire);
    let mut stream = Stream::open(
        inner.clone(),
        &request,
        Expect::Exec { started: false },
        req.stdin,
    )?;
    let pid = match stream.recv().await? {
        Inbound::Reply(Reply::Started { pid }) => pid,
        Inbound::Reply(Reply::Error { code, message }) => return Err(agent_error(code, message)),
        // The dispatcher admits only `Started` or `Error` before the start.
        _ => {
            inner.conn.close(CloseCause::Violation(
                "The agent did not start the exec properly.",
            ));
            return Err(inner.conn.connection_error());
        }
    };
    let input = ExecInput {
        inner,
        id: stream.id,
        credit: stream.credit.clone(),
        pid,
    };
    Ok(ExecSession {
        input,
        events: ExecEvents {
            stream,
            finished: false,
        },
    })
}

impl ExecSession {
    /// The process id inside the sandbox's PID namespace.
    pub fn pid(&self) -> u32 {
        self.input.pid
    }

    /// Sends stdin bytes, waiting for window credit as needed.
    pub async fn write_stdin(&self, bytes: &[u8]) -> Result<()> {
        self.input.write_stdin(bytes).await
    }

    /// Ends stdin (the process reads EOF once it drained what was sent).
    pub async fn close_stdin(&self) -> Result<()> {
        self.input.close_stdin().await
    }

    /// Resizes the pseudo-terminal (the foreground job gets SIGWINCH).
    pub async fn resize(&self, size: TtySize) -> Result<()> {
        self.input.resize(size).await
    }

    /// Sends a signal (see [`ExecInput::signal`]).
    pub async fn signal(&self, signo: i32) -> Result<()> {
        self.input.signal(signo).await
    }

    /// The next event; `None` after the exit or when the connection is lost.
    pub async fn next(&mut self) -> Option<ExecEvent> {
        self.events.next().await
    }

    /// The next event, telling a lost connection apart from the end.
    pub async fn try_next(&mut self) -> Result<Option<ExecEvent>> {
        self.events.try_next().await
    }

    /// Splits into a cloneable input half and the event half.
    pub fn split(self) -> (ExecInput, ExecEvents) {
        (self.input, self.events)
    }
}

impl ExecInput {
    /// The process id inside the sandbox's PID namespace.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Sends stdin bytes in chunks, each waiting for window credit from the agent.
    /// Fails with [`Error::StreamClosed`] once the process has exited.
    pub async fn write_stdin(&self, bytes: &[u8]) -> Result<()> {
        let credit = self.credit.as_ref().ok_or(Error::NoStdin)?;
        for chunk in bytes.chunks(DATA_CHUNK) {
            match credit.acquire_many(chunk.len() as u32).await {
                Ok(permit) => permit.forget(),
                Err(_) => return Err(self.inner.conn.stream_gone()),
            }
            let frame = Frame::new(FrameKind::Data, self.id, Bytes::copy_from_slice(chunk));
            self.inner.conn.send(frame)?;
        }
        Ok(())
    }

    /// Ends stdin. A no-op for a process started without stdin; with a TTY the agent
    /// ignores it (type `\x04` to send an end-of-file character instead).
    pub async fn close_stdin(&self) -> Result<()> {
        if self.credit.is_none() {
            return Ok(());
        }
        self.inner.conn.send(Frame::empty(FrameKind::Eof, self.id))
    }

    /// Resizes the pseudo-terminal; ignored by the agent without one.
    pub async fn resize(&self, size: TtySize) -> Result<()> {
        self.control(Control::Resize {
            cols: size.cols,
            rows: size.rows,
        })
    }

    /// Sends `signo` to the process group of the exec, or with a TTY to the
    /// terminal's foreground process group.
    pub async fn signal(&self, signo: i32) -> Result<()> {
        self.control(Control::Signal { signo })
    }

    fn control(&self, ctl: Control) -> Result<()> {
        check_control(&ctl)?;
        let frame =
            messages::encode(FrameKind::Control, self.id, &ctl).map_err(Error::RequestTooLarge)?;
        self.inner.conn.send(frame)
    }
}

impl ExecEvents {
    /// The next event; `None` after the exit or when the connection is lost.
    pub async fn next(&mut self) -> Option<ExecEvent> {
        self.try_next().await.ok().flatten()
    }

    /// The next event: `Ok(None)` after the exit, an error when the connection was
    /// lost or the agent failed the exec. Taking output grants its size back to the
    /// agent's window.
    pub async fn try_next(&mut self) -> Result<Option<ExecEvent>> {
        if self.finished {
            return Ok(None);
        }
        let inbound = self.stream.recv().await;
        let event = match inbound {
            Ok(Inbound::Stdout(bytes)) => {
                self.stream.grant(bytes.len());
                ExecEvent::Stdout(bytes)
            }
            Ok(Inbound::Stderr(bytes)) => {
                self.stream.grant(bytes.len());
                ExecEvent::Stderr(bytes)
            }
            Ok(Inbound::Reply(Reply::Exit { status })) => {
                self.finished = true;
                ExecEvent::Exit(status)
            }
            Ok(Inbound::Reply(Reply::Error { code, message })) => {
                self.finished = true;
                return Err(agent_error(code, message));
            }
            Ok(Inbound::Reply(_)) => {
                self.finished = true;
                let conn = &self.stream.inner.conn;
                conn.close(CloseCause::Violation(
                    "The agent sent an unexpected reply on an exec stream.",
                ));
                return Err(conn.connection_error());
            }
            Err(e) => {
                self.finished = true;
                return Err(e);
            }
        };
        Ok(Some(event))
    }
}

pub(super) async fn collect(
    client: &AgentClient,
    mut req: ExecRequest,
    stdin: Option<Vec<u8>>,
    max_output: usize,
) -> Result<ExecOutput> {
    let start = Instant::now();
    req.stdin = stdin.is_some();
    let (input, mut events) = client.exec(req).await?.split();
    let feed = async move {
        if let Some(data) = stdin {
            // A process may exit without reading its stdin; that is not an error
            // here, and a lost connection surfaces through the events.
            if input.write_stdin(&data).await.is_ok() {
                let _ = input.close_stdin().await;
            }
        }
    };
    let read = async {
        let (mut stdout, mut stderr, mut truncated) = (Vec::new(), Vec::new(), false);
        let mut kept = 0usize;
        loop {
            let (buf, bytes) = match events.try_next().await? {
                Some(ExecEvent::Stdout(b)) => (&mut stdout, b),
                Some(ExecEvent::Stderr(b)) => (&mut stderr, b),
                Some(ExecEvent::Exit(exit)) => return Ok((stdout, stderr, truncated, exit)),
                None => return Err(client.inner.conn.connection_error()),
            };
            let take = bytes.len().min(max_output - kept);
            truncated |= take < bytes.len();
            buf.extend_from_slice(&bytes[..take]);
            kept += take;
        }
    };
    let ((), result) = tokio::join!(feed, read);
    let (stdout, stderr, truncated, exit) = result?;
    Ok(ExecOutput {
        stdout,
        stderr,
        exit,
        truncated,
        duration: start.elapsed(),
    })
}
