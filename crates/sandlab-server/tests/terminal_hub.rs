//! The terminal hub against the real agent binary (a plain process on a Unix socket),
//! with WebSockets replaced by an in-memory socket pair.

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::process::{Child, Command, Stdio};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::extract::ws::Message;
use futures::channel::mpsc;
use futures::{Sink, SinkExt, Stream, StreamExt};
use sandlab_core::SandboxId;
use sandlab_proto::{AgentClient, TtySize, DATA_CHUNK, INITIAL_WINDOW};
use sandlab_server::terminal::{
    run_socket, valid_terminal_name, Attachment, TerminalError, TerminalHub, TerminalOptions,
    MAX_INPUT_FRAME, OUTPUT_QUEUE,
};
use tempfile::TempDir;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

const TIMEOUT: Duration = Duration::from_secs(20);
/// Wide enough that no typed command line wraps.
const SIZE: TtySize = TtySize {
    cols: 200,
    rows: 50,
};

// --- The agent ---------------------------------------------------------------------

struct TestAgent {
    child: Child,
    sock: PathBuf,
    dir: TempDir,
}

impl TestAgent {
    fn start() -> TestAgent {
        let bin = std::env::var_os("SANDLAB_AGENT_BIN")
            .map(PathBuf::from)
            .unwrap_or_else(|| {
                PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/debug/sandlab-agent")
            });
        assert!(
            bin.is_file(),
            "the agent binary {} is missing: run `cargo build -p sandlab-agent` first or set \
             SANDLAB_AGENT_BIN",
            bin.display()
        );
        let dir = tempfile::tempdir().unwrap();
        let sock = dir.path().join("agent.sock");
        let child = Command::new(bin)
            .arg("--listen")
            .arg(&sock)
            .args(["--term-grace-ms", "500"])
            .env_clear()
            .env("SANDLAB_AGENT_LOG", "stderr")
            .stdin(Stdio::null())
            .spawn()
            .unwrap();
        TestAgent { child, sock, dir }
    }

    async fn client(&self) -> AgentClient {
        AgentClient::connect(&self.sock, TIMEOUT).await.unwrap()
    }

    /// A path in the test's temporary directory, for files the shell creates.
    fn path(&self, name: &str) -> String {
        self.dir.path().join(name).display().to_string()
    }
}

impl Drop for TestAgent {
    fn drop(&mut self) {
        // SIGTERM lets the agent kill its children first.
        // SAFETY: signalling our own child process.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let _ = self.child.wait();
    }
}

/// A predictable shell for most tests: no profile files, a fixed prompt.
fn plain_options() -> TerminalOptions {
    TerminalOptions {
        shell: ["bash", "--norc", "--noprofile", "-i"]
            .map(String::from)
            .to_vec(),
        env: vec!["PS1=$ ".into()],
        ..TerminalOptions::default()
    }
}

use sandlab_testkit::pid_alive;

/// Polls `cond` until it yields `Some`, failing the test after [`TIMEOUT`].
async fn wait_until<T, F, Fut>(what: &str, cond: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    sandlab_testkit::wait_until(what, TIMEOUT, cond).await
}

fn sandbox() -> SandboxId {
    SandboxId::generate()
}

async fn wait_dead(pid: u32) {
    wait_until("the shell is gone", || async move {
        (!pid_alive(pid)).then_some(())
    })
    .await;
}

// --- The in-memory WebSocket -------------------------------------------------------

/// The server's end: a `Sink` + `Stream` like axum's `WebSocket`.
struct TestSocket {
    tx: mpsc::Sender<Message>,
    rx: mpsc::Receiver<Result<Message, axum::Error>>,
}

impl Stream for TestSocket {
    type Item = Result<Message, axum::Error>;
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.rx.poll_next_unpin(cx)
    }
}

impl Sink<Message> for TestSocket {
    type Error = mpsc::SendError;
    fn poll_ready(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.tx.poll_ready_unpin(cx)
    }
    fn start_send(mut self: Pin<&mut Self>, item: Message) -> Result<(), Self::Error> {
        self.tx.start_send_unpin(item)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.tx.poll_flush_unpin(cx)
    }
    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.tx.poll_close_unpin(cx)
    }
}

/// The browser's end, with `run_socket` running in a task.
struct Browser {
    tx: mpsc::Sender<Result<Message, axum::Error>>,
    rx: mpsc::Receiver<Message>,
    task: JoinHandle<()>,
    /// Terminal bytes received so far.
    seen: Vec<u8>,
}

impl Browser {
    fn connect(attachment: Attachment, shutdown: &CancellationToken) -> Browser {
        // A small buffer: a browser that stops reading pushes back at once.
        let (server_tx, rx) = mpsc::channel(2);
        let (tx, server_rx) = mpsc::channel(2);
        let socket = TestSocket {
            tx: server_tx,
            rx: server_rx,
        };
        let task = tokio::spawn(run_socket(socket, attachment, shutdown.clone()));
        Browser {
            tx,
            rx,
            task,
            seen: Vec::new(),
        }
    }

    async fn send(&mut self, message: Message) {
        tokio::time::timeout(TIMEOUT, self.tx.send(Ok(message)))
            .await
            .expect("the server takes input")
            .expect("the socket is open");
    }

    async fn type_text(&mut self, text: &str) {
        self.send(Message::Binary(text.as_bytes().to_vec().into()))
            .await;
    }

    async fn resize(&mut self, cols: u16, rows: u16) {
        let json = format!(r#"{{"type":"resize","cols":{cols},"rows":{rows}}}"#);
        self.send(Message::Text(json.into())).await;
    }

    async fn next(&mut self) -> Option<Message> {
        tokio::time::timeout(TIMEOUT, self.rx.next())
            .await
            .expect("timed out waiting for a message")
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.seen).into_owned()
    }

    /// Reads output until `needle` appears after what was seen so far; returns the
    /// bytes read in this call.
    async fn read_until(&mut self, needle: &str) -> String {
        let start = self.seen.len();
        loop {
            let fresh = String::from_utf8_lossy(&self.seen[start..]).into_owned();
            if fresh.contains(needle) {
                return fresh;
            }
            match self.next().await {
                Some(Message::Binary(bytes)) => self.seen.extend_from_slice(&bytes),
                other => panic!("got {other:?} before {needle:?}; output {fresh:?}"),
            }
        }
    }

    /// Reads until the server closes; returns the close code and reason.
    async fn closed(&mut self) -> (u16, String) {
        self.closed_paced(Duration::ZERO).await
    }

    /// Like [`Browser::closed`], pausing after every message like a slow client,
    /// so the server's queue towards it stays full.
    async fn closed_paced(&mut self, pause: Duration) -> (u16, String) {
        loop {
            match self.next().await {
                Some(Message::Binary(bytes)) => {
                    self.seen.extend_from_slice(&bytes);
                    tokio::time::sleep(pause).await;
                }
                Some(Message::Close(Some(frame))) => {
                    assert!(self.next().await.is_none(), "nothing follows the close");
                    return (frame.code, frame.reason.to_string());
                }
                other => panic!("expected a close frame, got {other:?}"),
            }
        }
    }

    /// Goes away without a close frame, like a dropped connection.
    async fn disconnect(self) {
        drop(self.tx);
        drop(self.rx);
        tokio::time::timeout(TIMEOUT, self.task)
            .await
            .expect("the socket loop ends")
            .unwrap();
    }
}

fn attached(hub: &TerminalHub, sandbox: &SandboxId, name: &str) -> bool {
    hub.terminals(sandbox)
        .iter()
        .any(|t| t.name == name && t.attached)
}

// --- Tests ---------------------------------------------------------------------------

#[tokio::test]
async fn typing_runs_commands_in_the_default_login_shell() {
    let agent = TestAgent::start();
    let client = agent.client().await;
    let hub = TerminalHub::new(TerminalOptions::default());
    let sb = sandbox();
    let shutdown = CancellationToken::new();
    let attachment = hub.attach(&sb, "main", &client, SIZE).await.unwrap();
    assert_eq!(attachment.name(), "main");
    assert_eq!(hub.open_terminals(), 1);
    let mut browser = Browser::connect(attachment, &shutdown);
    browser.type_text("echo hi-$((40+2)) $TERM\r").await;
    browser.read_until("hi-42 xterm-256color").await;
}

#[tokio::test]
async fn resize_changes_the_pty_size_and_bad_control_is_ignored() {
    let agent = TestAgent::start();
    let client = agent.client().await;
    let hub = TerminalHub::new(plain_options());
    let sb = sandbox();
    let shutdown = CancellationToken::new();
    let mut browser = Browser::connect(
        hub.attach(&sb, "main", &client, SIZE).await.unwrap(),
        &shutdown,
    );
    browser.type_text("stty size\r").await;
    browser.read_until("50 200").await;
    browser.resize(123, 45).await;
    browser.type_text("stty size\r").await;
    browser.read_until("45 123").await;

    // Out of range, malformed or unknown: ignored, the socket stays open.
    browser.resize(0, 10).await;
    browser.resize(1001, 10).await;
    browser.send(Message::Text("hello".into())).await;
    browser
        .send(Message::Text(r#"{"type":"paste","data":"x"}"#.into()))
        .await;
    browser
        .send(Message::Text(
            r#"{"type":"resize","cols":70000,"rows":5}"#.into(),
        ))
        .await;
    browser.type_text("stty size; echo ok-$((1+1))\r").await;
    let out = browser.read_until("ok-2").await;
    assert!(out.contains("45 123"), "{out:?}");

    // Joining a running terminal resizes it to the new client's size.
    let size = TtySize { cols: 90, rows: 33 };
    let mut again = Browser::connect(
        hub.attach(&sb, "main", &client, size).await.unwrap(),
        &shutdown,
    );
    again.type_text("stty size\r").await;
    again.read_until("33 90").await;
}

#[tokio::test]
async fn output_while_detached_is_replayed_from_a_bounded_scrollback() {
    const SCROLLBACK: usize = 8192;
    let agent = TestAgent::start();
    let client = agent.client().await;
    let hub = TerminalHub::new(TerminalOptions {
        scrollback_bytes: SCROLLBACK,
        ..plain_options()
    });
    let sb = sandbox();
    let shutdown = CancellationToken::new();
    let attachment = hub.attach(&sb, "main", &client, SIZE).await.unwrap();
    let pid = attachment.pid();
    let mut browser = Browser::connect(attachment, &shutdown);
    browser.type_text("echo before-$((1+1))\r").await;
    browser.read_until("before-2").await;

    // A short reconnect replays what the first client saw.
    browser.disconnect().await;
    assert!(!attached(&hub, &sb, "main"), "the client detached");
    let mut browser = Browser::connect(
        hub.attach(&sb, "main", &client, SIZE).await.unwrap(),
        &shutdown,
    );
    let replay = browser.read_until("before-2").await;
    assert!(replay.contains("echo before-$((1+1))"), "{replay:?}");

    // Much more output than a window and the ring, printed while nobody is attached:
    // the shell must not block, and only the tail is kept.
    let go = agent.path("go");
    browser
        .type_text(&format!(
            "while [ ! -e {go} ]; do sleep 0.02; done; seq 1 300000; echo after-$((6*7))\r"
        ))
        .await;
    browser.read_until("done; seq").await;
    browser.disconnect().await;
    std::fs::write(&go, "").unwrap();
    let scrollback = wait_until("the output is in the scrollback", || async {
        let bytes = hub.scrollback(&sb, "main")?;
        String::from_utf8_lossy(&bytes)
            .contains("after-42")
            .then_some(bytes)
    })
    .await;
    assert!(scrollback.len() <= SCROLLBACK, "{}", scrollback.len());
    assert!(
        hub.buffered_bytes() <= SCROLLBACK,
        "{}",
        hub.buffered_bytes()
    );

    let mut browser = Browser::connect(
        hub.attach(&sb, "main", &client, SIZE).await.unwrap(),
        &shutdown,
    );
    let replay = browser.read_until("after-42").await;
    assert!(
        replay.len() <= SCROLLBACK,
        "replayed {} bytes",
        replay.len()
    );
    assert!(replay.contains("299999\r\n300000\r\n"), "{replay:?}");
    assert!(!replay.contains("before-2"), "old output dropped off");
    assert_eq!(hub.terminals(&sb)[0].pid, pid, "the same shell throughout");
}

#[tokio::test]
async fn terminals_of_a_sandbox_are_independent() {
    let agent = TestAgent::start();
    let client = agent.client().await;
    let hub = TerminalHub::new(plain_options());
    let sb = sandbox();
    let shutdown = CancellationToken::new();
    let one = hub.attach(&sb, "one", &client, SIZE).await.unwrap();
    let two = hub.attach(&sb, "two", &client, SIZE).await.unwrap();
    assert_ne!(one.pid(), two.pid());
    let mut one = Browser::connect(one, &shutdown);
    let mut two = Browser::connect(two, &shutdown);
    assert_eq!(hub.open_terminals(), 2);

    one.type_text("export WHO=first; echo set-$((1+1))\r").await;
    one.read_until("set-2").await;
    two.type_text("echo who=[$WHO]-$((2+2))\r").await;
    two.read_until("who=[]-4").await;
    one.type_text("echo who=[$WHO]-$((3+3))\r").await;
    one.read_until("who=[first]-6").await;
    assert!(!one.text().contains("-4"), "{}", one.text());
    assert!(!two.text().contains("set-2"), "{}", two.text());

    let names: Vec<_> = hub.terminals(&sb).into_iter().map(|t| t.name).collect();
    assert_eq!(names, ["one", "two"]);
    assert!(attached(&hub, &sb, "one") && attached(&hub, &sb, "two"));

    // An attachment dropped before it got a socket leaves its terminal detached.
    let three = hub.attach(&sb, "three", &client, SIZE).await.unwrap();
    assert!(attached(&hub, &sb, "three"));
    drop(three);
    assert!(!attached(&hub, &sb, "three"));
    assert_eq!(hub.open_terminals(), 3);
}

#[test]
fn the_hub_can_live_in_shared_state() {
    fn shared<T: Send + Sync + 'static>() {}
    shared::<TerminalHub>();
    fn sendable<T: Send + 'static>() {}
    sendable::<Attachment>();
}

#[tokio::test]
async fn a_new_attach_displaces_the_old_client_with_4001() {
    let agent = TestAgent::start();
    let client = agent.client().await;
    let hub = TerminalHub::new(plain_options());
    let sb = sandbox();
    let shutdown = CancellationToken::new();
    let first = hub.attach(&sb, "main", &client, SIZE).await.unwrap();
    let pid = first.pid();
    let mut first = Browser::connect(first, &shutdown);
    first.type_text("echo mine-$((5+5))\r").await;
    first.read_until("mine-10").await;

    let second = hub.attach(&sb, "main", &client, SIZE).await.unwrap();
    assert_eq!(second.pid(), pid, "the same shell");
    let (code, reason) = first.closed().await;
    assert_eq!(code, 4001);
    assert_eq!(reason, "Another client attached to this terminal.");

    let mut second = Browser::connect(second, &shutdown);
    second.read_until("mine-10").await;
    second.type_text("echo yours-$((6+6))\r").await;
    second.read_until("yours-12").await;
    assert_eq!(hub.open_terminals(), 1);
}

#[tokio::test]
async fn a_client_that_stopped_reading_is_displaced_without_delay() {
    let agent = TestAgent::start();
    let client = agent.client().await;
    let hub = TerminalHub::new(plain_options());
    let sb = sandbox();
    let shutdown = CancellationToken::new();
    let mut stuck = Browser::connect(
        hub.attach(&sb, "main", &client, SIZE).await.unwrap(),
        &shutdown,
    );
    // `yes` fills everything up to the stuck browser; the reader waits on its queue.
    stuck.type_text("yes\r").await;
    stuck.read_until("y\r\ny\r\n").await;
    let mut fresh = Browser::connect(
        hub.attach(&sb, "main", &client, SIZE).await.unwrap(),
        &shutdown,
    );
    fresh.read_until("y\r\ny\r\n").await;
    fresh.type_text("\x03").await;
    fresh.type_text("echo free-$((9+9))\r").await;
    fresh.read_until("free-18").await;
    let (code, _) = stuck.closed().await;
    assert_eq!(code, 4001);
    assert!(!stuck.text().contains("free-18"));
}

#[tokio::test]
async fn shell_exit_closes_with_1000_and_forgets_the_terminal() {
    let agent = TestAgent::start();
    let client = agent.client().await;
    let hub = TerminalHub::new(plain_options());
    let sb = sandbox();
    let shutdown = CancellationToken::new();
    let attachment = hub.attach(&sb, "main", &client, SIZE).await.unwrap();
    let pid = attachment.pid();
    let mut browser = Browser::connect(attachment, &shutdown);
    // More output than fits between shell and browser, so the shell is still
    // printing (blocked) while the browser is not reading, and exits while the
    // browser catches up: the last output must still precede the close.
    browser.type_text("seq 1 100000; exit 3\r").await;
    wait_until("the shell is blocked on output", || async {
        let sent = client.stats().await.ok()?.output_bytes_total;
        (sent >= u64::from(INITIAL_WINDOW)).then_some(())
    })
    .await;
    assert!(pid_alive(pid));
    let (code, reason) = browser.closed_paced(Duration::from_millis(1)).await;
    assert_eq!((code, reason.as_str()), (1000, "The shell exited."));
    let text = browser.text();
    assert!(
        text.contains("\n99999\r\n100000\r\n"),
        "all output precedes the close"
    );
    assert!(text.contains("1\r\n2\r\n3\r\n4\r\n"), "{text:.200}");
    wait_until("the terminal is forgotten", || async {
        (hub.open_terminals() == 0).then_some(())
    })
    .await;
    assert!(hub.terminals(&sb).is_empty());

    // The same name starts a fresh shell.
    let again = hub.attach(&sb, "main", &client, SIZE).await.unwrap();
    assert_ne!(again.pid(), pid);
    assert_eq!(hub.open_terminals(), 1);
}

#[tokio::test]
async fn shutdown_closes_with_1001_and_keeps_the_shell() {
    let agent = TestAgent::start();
    let client = agent.client().await;
    let hub = TerminalHub::new(plain_options());
    let sb = sandbox();
    let shutdown = CancellationToken::new();
    let attachment = hub.attach(&sb, "main", &client, SIZE).await.unwrap();
    let pid = attachment.pid();
    let mut browser = Browser::connect(attachment, &shutdown);
    browser.type_text("echo up-$((2*2))\r").await;
    browser.read_until("up-4").await;
    shutdown.cancel();
    let (code, reason) = browser.closed().await;
    assert_eq!(
        (code, reason.as_str()),
        (1001, "The server is shutting down.")
    );
    assert!(pid_alive(pid));
    assert_eq!(hub.open_terminals(), 1);
    wait_until("the client detached", || async {
        (!attached(&hub, &sb, "main")).then_some(())
    })
    .await;
}

#[tokio::test]
async fn closing_the_client_leaves_the_terminal_running() {
    let agent = TestAgent::start();
    let client = agent.client().await;
    let hub = TerminalHub::new(plain_options());
    let sb = sandbox();
    let shutdown = CancellationToken::new();
    let attachment = hub.attach(&sb, "main", &client, SIZE).await.unwrap();
    let pid = attachment.pid();
    let mut browser = Browser::connect(attachment, &shutdown);
    browser.send(Message::Close(None)).await;
    tokio::time::timeout(TIMEOUT, browser.task)
        .await
        .expect("the socket loop ends on a close frame")
        .unwrap();
    assert!(!attached(&hub, &sb, "main"));
    assert!(pid_alive(pid));
    assert_eq!(hub.open_terminals(), 1);
}

#[tokio::test]
async fn oversized_input_closes_with_1009() {
    let agent = TestAgent::start();
    let client = agent.client().await;
    let hub = TerminalHub::new(plain_options());
    let sb = sandbox();
    let shutdown = CancellationToken::new();
    let mut browser = Browser::connect(
        hub.attach(&sb, "main", &client, SIZE).await.unwrap(),
        &shutdown,
    );
    browser
        .send(Message::Binary(vec![b'x'; MAX_INPUT_FRAME + 1].into()))
        .await;
    let (code, _) = browser.closed().await;
    assert_eq!(code, 1009);
    assert_eq!(hub.open_terminals(), 1, "the terminal stays");
}

#[tokio::test]
async fn names_sizes_and_the_per_sandbox_limit_are_enforced() {
    assert!(valid_terminal_name("main") && valid_terminal_name("a_b-9"));
    for bad in ["", "Main", "a b", "../x", &"x".repeat(33)] {
        assert!(!valid_terminal_name(bad), "{bad:?}");
    }
    let agent = TestAgent::start();
    let client = agent.client().await;
    let hub = TerminalHub::new(TerminalOptions {
        max_per_sandbox: 2,
        ..plain_options()
    });
    let sb = sandbox();
    let err = hub.attach(&sb, "No", &client, SIZE).await.err().unwrap();
    assert!(matches!(err, TerminalError::InvalidName), "{err}");
    let zero = TtySize { cols: 0, rows: 24 };
    let err = hub.attach(&sb, "main", &client, zero).await.err().unwrap();
    assert!(matches!(err, TerminalError::InvalidSize), "{err}");

    let a = hub.attach(&sb, "a", &client, SIZE).await.unwrap();
    let _b = hub.attach(&sb, "b", &client, SIZE).await.unwrap();
    let err = hub.attach(&sb, "c", &client, SIZE).await.err().unwrap();
    assert!(matches!(err, TerminalError::TooMany { max: 2 }), "{err}");
    assert_eq!(
        err.to_string(),
        "The sandbox already has the maximum of 2 terminals open."
    );
    // Existing terminals can still be joined, and other sandboxes have their own limit.
    let a_again = hub.attach(&sb, "a", &client, SIZE).await.unwrap();
    assert_eq!(a_again.pid(), a.pid());
    let other = sandbox();
    hub.attach(&other, "c", &client, SIZE).await.unwrap();
    assert_eq!(hub.open_terminals(), 3);

    // Once a shell exits its place is free.
    let shutdown = CancellationToken::new();
    let mut browser = Browser::connect(a_again, &shutdown);
    browser.type_text("exit\r").await;
    browser.closed().await;
    wait_until("the exited terminal is forgotten", || async {
        (hub.open_terminals() == 2).then_some(())
    })
    .await;
    hub.attach(&sb, "c", &client, SIZE).await.unwrap();
}

#[tokio::test]
async fn a_slow_client_slows_the_shell_instead_of_growing_memory() {
    // base64 of 24,000,000 zero bytes is exactly 32,000,000 'A's.
    const A_COUNT: usize = 32_000_000;
    let agent = TestAgent::start();
    let client = agent.client().await;
    let opts = plain_options();
    let scrollback = opts.scrollback_bytes;
    let hub = TerminalHub::new(opts);
    let sb = sandbox();
    let shutdown = CancellationToken::new();
    let mut browser = Browser::connect(
        hub.attach(&sb, "main", &client, SIZE).await.unwrap(),
        &shutdown,
    );
    // The hub holds its ring, the queue and the chunk in the reader's hand.
    let hub_bound = scrollback + (OUTPUT_QUEUE + 1) * DATA_CHUNK;
    // Sent by the agent but not yet read by the browser: the agent's window, the hub's
    // queue and hand, the socket's buffer (2 + 1 per sender) and one message in flight.
    let in_flight_bound = INITIAL_WINDOW as u64 + ((OUTPUT_QUEUE + 1 + 4) * DATA_CHUNK) as u64;

    browser
        .type_text("head -c 24000000 /dev/zero | base64 -w0; echo; echo flood-$((2+3))\r")
        .await;
    let mut tally = Tally::default();
    while tally.a_count < 1_000_000 {
        match browser.next().await {
            Some(Message::Binary(bytes)) => tally.take(&bytes),
            other => panic!("unexpected {other:?}"),
        }
    }

    // The browser stops reading: everything in between fills up, then stops.
    let sent = || async {
        client
            .stats()
            .await
            .expect("agent stats")
            .output_bytes_total
    };
    wait_until("the pipeline is full", || async {
        let in_flight = sent().await.saturating_sub(tally.received);
        (in_flight >= u64::from(INITIAL_WINDOW)).then_some(())
    })
    .await;
    for _ in 0..50 {
        let in_flight = sent().await.saturating_sub(tally.received);
        assert!(
            in_flight <= in_flight_bound,
            "{in_flight} bytes in flight, bound {in_flight_bound}"
        );
        assert!(
            hub.buffered_bytes() <= hub_bound,
            "{}",
            hub.buffered_bytes()
        );
    }

    // Reading again, slowly: everything arrives, nothing is dropped.
    let mut max_buffered = 0;
    loop {
        match browser.next().await {
            Some(Message::Binary(bytes)) => {
                tally.take(&bytes);
                max_buffered = max_buffered.max(hub.buffered_bytes());
                if String::from_utf8_lossy(&tally.tail).contains("flood-5") {
                    break;
                }
                tokio::task::yield_now().await;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(tally.a_count, A_COUNT, "every byte arrived exactly once");
    assert!(max_buffered <= hub_bound, "the hub buffered {max_buffered}");
}

/// What a browser received, without keeping it all.
#[derive(Default)]
struct Tally {
    received: u64,
    a_count: usize,
    /// The last few bytes, to spot the end marker.
    tail: Vec<u8>,
}

impl Tally {
    fn take(&mut self, bytes: &[u8]) {
        self.received += bytes.len() as u64;
        self.a_count += bytes.iter().filter(|&&b| b == b'A').count();
        self.tail
            .extend_from_slice(&bytes[bytes.len().saturating_sub(64)..]);
        let cut = self.tail.len().saturating_sub(64);
        self.tail.drain(..cut);
    }
}

#[tokio::test]
async fn close_sandbox_ends_its_terminals_and_only_its_own() {
    let agent = TestAgent::start();
    let client = agent.client().await;
    let hub = TerminalHub::new(plain_options());
    let (sb, other) = (sandbox(), sandbox());
    let shutdown = CancellationToken::new();
    let one = hub.attach(&sb, "one", &client, SIZE).await.unwrap();
    let detached = hub.attach(&sb, "two", &client, SIZE).await.unwrap();
    let keep = hub.attach(&other, "one", &client, SIZE).await.unwrap();
    let pids = [one.pid(), detached.pid()];
    let keep_pid = keep.pid();
    drop(detached);
    let mut one = Browser::connect(one, &shutdown);
    let mut keep = Browser::connect(keep, &shutdown);
    // A busy shell too: its reader is blocked on a full queue when the close comes.
    one.type_text("yes\r").await;
    one.read_until("y\r\ny\r\n").await;
    assert_eq!(hub.open_terminals(), 3);

    hub.close_sandbox(&sb);
    let (code, reason) = one.closed().await;
    assert_eq!((code, reason.as_str()), (1000, "The sandbox was closed."));
    assert_eq!(hub.open_terminals(), 1);
    assert!(hub.terminals(&sb).is_empty());
    for pid in pids {
        wait_dead(pid).await;
    }
    wait_until("the agent has no streams of the closed sandbox", || async {
        let stats = client.stats().await.ok()?;
        // The remaining terminal and this stats call.
        (stats.open_streams <= 2 && stats.running_children == 1).then_some(())
    })
    .await;
    assert!(hub.buffered_bytes() <= TerminalOptions::default().scrollback_bytes);

    keep.type_text("echo still-$((4+4))\r").await;
    keep.read_until("still-8").await;
    assert!(pid_alive(keep_pid));
    hub.close_sandbox(&other);
    keep.closed().await;
    assert_eq!(hub.open_terminals(), 0);
    wait_dead(keep_pid).await;
}

#[tokio::test]
async fn dropping_the_hub_ends_every_terminal() {
    let agent = TestAgent::start();
    let client = agent.client().await;
    let hub = TerminalHub::new(plain_options());
    let sb = sandbox();
    let shutdown = CancellationToken::new();
    let attachment = hub.attach(&sb, "main", &client, SIZE).await.unwrap();
    let detached = hub.attach(&sb, "other", &client, SIZE).await.unwrap();
    let pids = [attachment.pid(), detached.pid()];
    drop(detached);
    let mut browser = Browser::connect(attachment, &shutdown);
    browser.type_text("echo here-$((1+2))\r").await;
    browser.read_until("here-3").await;

    drop(hub);
    let (code, _) = browser.closed().await;
    assert_eq!(code, 1001);
    for pid in pids {
        wait_dead(pid).await;
    }
    wait_until("the agent runs nothing", || async {
        let stats = client.stats().await.ok()?;
        (stats.running_children == 0).then_some(())
    })
    .await;
}
