//! Browser terminals into sandboxes.
//!
//! # Model
//! A terminal is a login shell on a PTY inside a sandbox, started through the agent
//! ([`AgentClient::exec`]) and named per sandbox (`main`, `2`, ...). It belongs to the
//! [`TerminalHub`], not to a WebSocket: when the browser goes away the shell keeps
//! running and its output keeps filling a bounded scrollback ring, so a reconnecting
//! browser sees the last screenful. At most one client is attached to a terminal; a
//! new attach displaces the old one. A terminal ends when its shell exits, when its
//! sandbox is closed ([`TerminalHub::close_sandbox`]) or when the hub is dropped;
//! ending it resets the exec stream, so the agent kills the shell's process group.
//!
//! # Output and backpressure
//! One reader task per terminal takes output events from the agent. Every chunk goes
//! into the ring and, while a client is attached, into that client's queue of
//! [`OUTPUT_QUEUE`] chunks. While the queue is full the reader waits, so it takes no
//! more events, the agent's window for the stream runs out and the shell blocks in
//! `write`: a slow browser slows the shell down instead of growing memory. With no
//! client the reader only fills the ring. [`TerminalHub::buffered_bytes`] reports
//! what the hub holds.
//!
//! # WebSocket protocol ([`run_socket`])
//! Binary frames carry terminal bytes both ways: first the scrollback, then live
//! output; input goes to the shell's stdin, at most [`MAX_INPUT_FRAME`] bytes a frame.
//! Text frames carry JSON control messages, only `{"type":"resize","cols":C,"rows":R}`
//! (1 to 1000 each) so far; anything else is ignored. The server closes with
//! 1000 when the shell exits or the sandbox is closed, 1001 when the server shuts
//! down, 1009 for an oversized frame, 1011 when the agent connection is lost and 4001
//! when another client attached to the same terminal.

mod ring;
mod shell;
mod socket;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use sandlab_core::SandboxId;
use sandlab_proto::{AgentClient, ExecEvents, ExecInput, ExecRequest, TtySize};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info};

use self::ring::Ring;
use self::shell::{read_output, Chunk, Client, End, Link, TermState, Terminal};
pub use self::socket::run_socket;

/// Output chunks queued towards one client before the reader waits.
pub const OUTPUT_QUEUE: usize = 4;
/// Largest input frame a client may send.
pub const MAX_INPUT_FRAME: usize = 64 * 1024;
/// Largest terminal width and height accepted.
pub const MAX_TTY_CELLS: u16 = 1000;

const DEFAULT_SHELL: &str =
    "if command -v bash >/dev/null 2>&1; then exec bash -l; else exec sh -l; fi";

/// How terminals are started and bounded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TerminalOptions {
    /// Output kept per terminal for a reconnecting client.
    pub scrollback_bytes: usize,
    /// Terminals one sandbox may have open at once.
    pub max_per_sandbox: usize,
    /// The shell's argv.
    pub shell: Vec<String>,
    /// `KEY=VALUE` entries added to the shell's environment.
    pub env: Vec<String>,
}

impl Default for TerminalOptions {
    fn default() -> TerminalOptions {
        TerminalOptions {
            scrollback_bytes: 64 * 1024,
            max_per_sandbox: 8,
            shell: ["sh", "-c", DEFAULT_SHELL].map(String::from).to_vec(),
            env: Vec::new(),
        }
    }
}

/// Whether `name` may name a terminal: 1 to 32 of `a-z`, `0-9`, `_` and `-`.
pub fn valid_terminal_name(name: &str) -> bool {
    (1..=32).contains(&name.len())
        && name
            .bytes()
            .all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'_' | b'-'))
}

/// Whether both sides of `size` are within 1 and [`MAX_TTY_CELLS`].
pub fn valid_tty_size(size: TtySize) -> bool {
    let range = 1..=MAX_TTY_CELLS;
    range.contains(&size.cols) && range.contains(&size.rows)
}

pub type Result<T, E = TerminalError> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum TerminalError {
    #[error("A terminal name is 1 to 32 characters from a-z, 0-9, '_' and '-'.")]
    InvalidName,
    #[error("A terminal is 1 to 1000 columns wide and 1 to 1000 rows high.")]
    InvalidSize,
    #[error("The sandbox already has the maximum of {max} terminals open.")]
    TooMany { max: usize },
    #[error("Could not start a shell in the sandbox.")]
    Agent(#[source] sandlab_proto::Error),
}

/// One terminal as listed by [`TerminalHub::terminals`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TerminalInfo {
    pub name: String,
    /// The shell's process id inside the sandbox.
    pub pid: u32,
    pub attached: bool,
    /// Bytes in the scrollback ring.
    pub scrollback_bytes: usize,
}

/// Every open terminal of every sandbox. Lives in an `Arc` in the app state; dropping
/// it ends all terminals.
pub struct TerminalHub {
    shared: Arc<Shared>,
}

type Sandboxes = HashMap<SandboxId, HashMap<String, Arc<Terminal>>>;

struct Shared {
    opts: TerminalOptions,
    sandboxes: Mutex<Sandboxes>,
    /// Output bytes sitting in client queues, over all terminals.
    queued: Arc<AtomicUsize>,
    next_client: AtomicU64,
}

/// A client's hold on a terminal, handed to [`run_socket`]. Dropping it detaches the
/// client; the shell keeps running.
pub struct Attachment {
    sandbox: SandboxId,
    name: String,
    scrollback: Bytes,
    output: mpsc::Receiver<Chunk>,
    link: Arc<Link>,
    slot: Slot,
}

impl Attachment {
    pub fn sandbox(&self) -> &SandboxId {
        &self.sandbox
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The shell's process id inside the sandbox.
    pub fn pid(&self) -> u32 {
        self.slot.term.input.pid()
    }
}

/// Frees the terminal's client slot if this client still holds it.
struct Slot {
    term: Arc<Terminal>,
    id: u64,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut st = lock(&self.term.state);
        if st.client.as_ref().is_some_and(|c| c.id == self.id) {
            st.client = None;
            debug!(sandbox.id = %self.term.sandbox, terminal = %self.term.name, "Client detached");
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A poisoned lock only means a thread panicked between plain updates (a ring
    // push, a slot swap); the data stays consistent enough to keep serving.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl TerminalHub {
    pub fn new(opts: TerminalOptions) -> TerminalHub {
        TerminalHub {
            shared: Arc::new(Shared {
                opts,
                sandboxes: Mutex::new(HashMap::new()),
                queued: Arc::new(AtomicUsize::new(0)),
                next_client: AtomicU64::new(1),
            }),
        }
    }

    /// Attaches to terminal `name` of `sandbox`, starting it (a login shell on a PTY
    /// of `size` through `agent.exec`) when it does not exist or its shell has exited.
    /// A new attach to a terminal that already has a client displaces the old client
    /// (its socket closes with 4001); joining a running shell resizes it to `size`.
    ///
    /// An attach racing with [`TerminalHub::close_sandbox`] may start a terminal just
    /// after the close; it ends when the sandbox's agent goes away.
    pub async fn attach(
        &self,
        sandbox: &SandboxId,
        name: &str,
        agent: &AgentClient,
        size: TtySize,
    ) -> Result<Attachment> {
        if !valid_terminal_name(name) {
            return Err(TerminalError::InvalidName);
        }
        if !valid_tty_size(size) {
            return Err(TerminalError::InvalidSize);
        }
        if let Some(attachment) = self.shared.join_existing(sandbox, name)? {
            if let Err(error) = attachment.slot.term.input.resize(size).await {
                debug!(sandbox.id = %sandbox, terminal = name, %error, "Could not resize the terminal");
            }
            return Ok(attachment);
        }
        let opts = &self.shared.opts;
        let mut req = ExecRequest::new(opts.shell.iter().cloned());
        req.env = opts.env.clone();
        req.tty = Some(size);
        req.stdin = true;
        let session = agent.exec(req).await.map_err(TerminalError::Agent)?;
        let (input, events) = session.split();
        Shared::install(&self.shared, sandbox, name, input, events)
    }

    /// Ends every terminal of a sandbox (when it is deleted); attached sockets close
    /// with 1000 and the shells are killed.
    pub fn close_sandbox(&self, sandbox: &SandboxId) {
        let removed = lock(&self.shared.sandboxes).remove(sandbox);
        let Some(terminals) = removed else { return };
        for term in terminals.values() {
            term.finish(End::SandboxClosed);
        }
        info!(sandbox.id = %sandbox, count = terminals.len(), "Closed the sandbox's terminals");
    }

    /// Terminals currently open.
    pub fn open_terminals(&self) -> usize {
        let map = lock(&self.shared.sandboxes);
        map.values()
            .flat_map(HashMap::values)
            .filter(|t| !lock(&t.state).ended)
            .count()
    }

    /// The open terminals of `sandbox`, sorted by name.
    pub fn terminals(&self, sandbox: &SandboxId) -> Vec<TerminalInfo> {
        let map = lock(&self.shared.sandboxes);
        let mut list: Vec<TerminalInfo> = map
            .get(sandbox)
            .into_iter()
            .flat_map(HashMap::values)
            .filter_map(|t| {
                let st = lock(&t.state);
                (!st.ended).then(|| TerminalInfo {
                    name: t.name.clone(),
                    pid: t.input.pid(),
                    attached: st.client.is_some(),
                    scrollback_bytes: st.ring.len(),
                })
            })
            .collect();
        list.sort_by(|a, b| a.name.cmp(&b.name));
        list
    }

    /// A copy of a terminal's scrollback, as a reconnecting client would get it.
    pub fn scrollback(&self, sandbox: &SandboxId, name: &str) -> Option<Bytes> {
        let term = self.shared.find(sandbox, name)?;
        let st = lock(&term.state);
        (!st.ended).then(|| st.ring.snapshot())
    }

    /// Output bytes the hub holds: every scrollback ring plus the client queues.
    pub fn buffered_bytes(&self) -> usize {
        let rings: usize = {
            let map = lock(&self.shared.sandboxes);
            map.values()
                .flat_map(HashMap::values)
                .map(|t| lock(&t.state).ring.len())
                .sum()
        };
        rings + self.shared.queued.load(Ordering::Relaxed)
    }
}

impl Drop for TerminalHub {
    fn drop(&mut self) {
        let all = std::mem::take(&mut *lock(&self.shared.sandboxes));
        for term in all.values().flat_map(HashMap::values) {
            term.finish(End::ShuttingDown);
        }
    }
}

impl Shared {
    fn find(&self, sandbox: &SandboxId, name: &str) -> Option<Arc<Terminal>> {
        lock(&self.sandboxes).get(sandbox)?.get(name).cloned()
    }

    /// Joins the running terminal `name`; `None` when there is none and one more
    /// may start.
    fn join_existing(&self, sandbox: &SandboxId, name: &str) -> Result<Option<Attachment>> {
        self.join_in(&mut lock(&self.sandboxes), sandbox, name)
    }

    fn join_in(
        &self,
        map: &mut Sandboxes,
        sandbox: &SandboxId,
        name: &str,
    ) -> Result<Option<Attachment>> {
        let terminals = map.entry(sandbox.clone()).or_default();
        terminals.retain(|_, t| !lock(&t.state).ended);
        if let Some(attachment) = terminals.get(name).and_then(|t| self.join(t)) {
            return Ok(Some(attachment));
        }
        let full = terminals.len() >= self.opts.max_per_sandbox;
        if terminals.is_empty() {
            map.remove(sandbox);
        }
        if full {
            return Err(TerminalError::TooMany {
                max: self.opts.max_per_sandbox,
            });
        }
        Ok(None)
    }

    /// Registers a freshly started shell and attaches to it, unless another attach
    /// started the same terminal meanwhile: then this shell is dropped (which kills
    /// it) and the client joins the other one.
    fn install(
        this: &Arc<Shared>,
        sandbox: &SandboxId,
        name: &str,
        input: ExecInput,
        events: ExecEvents,
    ) -> Result<Attachment> {
        let mut map = lock(&this.sandboxes);
        if let Some(attachment) = this.join_in(&mut map, sandbox, name)? {
            debug!(sandbox.id = %sandbox, terminal = name, "Another attach started the terminal first");
            return Ok(attachment);
        }
        let term = Arc::new(Terminal {
            sandbox: sandbox.clone(),
            name: name.to_owned(),
            input,
            stop: CancellationToken::new(),
            state: Mutex::new(TermState {
                ring: Ring::new(this.opts.scrollback_bytes),
                client: None,
                ended: false,
            }),
        });
        // Attach before the reader runs, so the client sees every byte live.
        let attachment = this
            .join(&term)
            .expect("nothing else has seen the new terminal, so it has not ended");
        map.entry(sandbox.clone())
            .or_default()
            .insert(name.to_owned(), term.clone());
        drop(map);
        info!(sandbox.id = %sandbox, terminal = name, pid = term.input.pid(), "Started a terminal");
        let reader = read_output(Arc::downgrade(this), term, events, this.queued.clone());
        tokio::spawn(reader);
        Ok(attachment)
    }

    /// Attaches a new client, displacing the current one; `None` if the shell ended.
    fn join(&self, term: &Arc<Terminal>) -> Option<Attachment> {
        let id = self.next_client.fetch_add(1, Ordering::Relaxed);
        let (tx, output) = mpsc::channel(OUTPUT_QUEUE);
        let link = Arc::new(Link::default());
        let scrollback = {
            let mut st = lock(&term.state);
            if st.ended {
                return None;
            }
            let new = Client {
                id,
                tx,
                link: link.clone(),
            };
            if let Some(old) = st.client.replace(new) {
                old.link.end(End::Displaced);
                info!(sandbox.id = %term.sandbox, terminal = %term.name, "A new client displaced the attached one");
            }
            st.ring.snapshot()
        };
        Some(Attachment {
            sandbox: term.sandbox.clone(),
            name: term.name.clone(),
            scrollback,
            output,
            link,
            slot: Slot {
                term: term.clone(),
                id,
            },
        })
    }

    /// Forgets `term` if the map still holds this very terminal.
    fn forget(&self, term: &Arc<Terminal>) {
        let mut map = lock(&self.sandboxes);
        let Some(terminals) = map.get_mut(&term.sandbox) else {
            return;
        };
        if terminals
            .get(&term.name)
            .is_some_and(|t| Arc::ptr_eq(t, term))
        {
            terminals.remove(&term.name);
        }
        if terminals.is_empty() {
            map.remove(&term.sandbox);
        }
    }
}
