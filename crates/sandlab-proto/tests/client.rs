//! The client against a scripted fake agent: handshake, untrusted input, windows.

use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use sandlab_proto::frame::{Frame, FrameDecoder, FrameKind};
use sandlab_proto::messages::{self, ExitStatus, Hello, Reply, Request};
use sandlab_proto::{
    AgentClient, CloseCause, Error, ErrorCode, ExecEvent, ExecRequest, INITIAL_WINDOW,
    PROTOCOL_VERSION,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;
use tokio::task::JoinHandle;

const TIMEOUT: Duration = Duration::from_secs(10);

struct Fake {
    sock: UnixStream,
    buf: BytesMut,
}

impl Fake {
    async fn send(&mut self, frame: &Frame) {
        self.send_bytes(&frame.to_bytes().unwrap()).await;
    }

    async fn send_bytes(&mut self, bytes: &[u8]) {
        self.sock.write_all(bytes).await.unwrap();
    }

    async fn reply(&mut self, stream: u32, reply: &Reply) {
        self.send(&messages::encode(FrameKind::Reply, stream, reply).unwrap())
            .await;
    }

    /// The next frame from the client; `None` once it closed the connection.
    async fn recv(&mut self) -> Option<Frame> {
        tokio::time::timeout(TIMEOUT, async {
            loop {
                if let Some(f) = FrameDecoder::new().decode(&mut self.buf).unwrap() {
                    return Some(f);
                }
                if self.sock.read_buf(&mut self.buf).await.unwrap_or(0) == 0 {
                    return None;
                }
            }
        })
        .await
        .expect("the client went silent")
    }

    async fn expect_open(&mut self) -> (u32, Request) {
        let f = self.recv().await.expect("an open frame");
        (f.stream, messages::decode(&f, FrameKind::Open).unwrap())
    }
}

/// A fake agent that completed the handshake, and the client connecting to it.
async fn connect_with(protocol: u32) -> (Fake, JoinHandle<sandlab_proto::Result<AgentClient>>) {
    let (host, agent) = UnixStream::pair().unwrap();
    let client = tokio::spawn(AgentClient::from_stream(host));
    let mut fake = Fake {
        sock: agent,
        buf: BytesMut::new(),
    };
    let hello = Hello {
        protocol,
        version: "fake-1.0".into(),
        token: None,
    };
    fake.send(&messages::encode(FrameKind::Hello, 0, &hello).unwrap())
        .await;
    let theirs = fake.recv().await.unwrap();
    let theirs: Hello = messages::decode(&theirs, FrameKind::Hello).unwrap();
    assert_eq!(theirs.protocol, PROTOCOL_VERSION);
    (fake, client)
}

async fn connect() -> (Fake, AgentClient) {
    let (fake, client) = connect_with(PROTOCOL_VERSION).await;
    (fake, client.await.unwrap().unwrap())
}

fn closed_cause(err: &Error) -> &CloseCause {
    match err {
        Error::ConnectionClosed { cause: Some(cause) } => cause,
        other => panic!("expected a closed connection with a cause, got {other:?}"),
    }
}

#[tokio::test]
async fn handshake_and_ping() {
    let (mut fake, client) = connect().await;
    assert_eq!(client.agent_version(), "fake-1.0");
    let ping = tokio::spawn({
        let client = client.clone();
        async move { client.ping().await }
    });
    let (id, req) = fake.expect_open().await;
    assert_eq!(req, Request::Ping);
    fake.reply(id, &Reply::Pong).await;
    ping.await.unwrap().unwrap();
}

#[tokio::test]
async fn major_mismatch_fails_and_minor_is_fine() {
    let (_fake, client) = connect_with(2 << 16).await;
    let err = client.await.unwrap().unwrap_err();
    assert!(
        matches!(err, Error::ProtocolMismatch { agent: 0x20000, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("0x20000"), "{err}");
    let (_fake, client) = connect_with(PROTOCOL_VERSION + 9).await;
    client.await.unwrap().unwrap();
}

#[tokio::test]
async fn agent_refusing_the_handshake_is_an_error() {
    let (host, mut agent) = UnixStream::pair().unwrap();
    let client = tokio::spawn(AgentClient::from_stream(host));
    let refusal = Reply::error(ErrorCode::ProtocolMismatch, "no thanks");
    let frame = messages::encode(FrameKind::Reply, 0, &refusal).unwrap();
    agent.write_all(&frame.to_bytes().unwrap()).await.unwrap();
    let err = client.await.unwrap().unwrap_err();
    assert_eq!(err.agent_code(), Some(ErrorCode::ProtocolMismatch), "{err}");
}

#[tokio::test(start_paused = true)]
async fn silent_agent_times_out() {
    let (host, _agent) = UnixStream::pair().unwrap();
    let err = AgentClient::from_stream_timeout(host, Duration::from_secs(3))
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::Timeout(d) if d == Duration::from_secs(3)),
        "{err}"
    );
}

#[tokio::test]
async fn garbage_fails_pending_and_later_calls() {
    for garbage in [
        vec![0, 0, 0, 1, 0xEE, 0, 0, 0, 1, 0],
        vec![0xFF, 0xFF, 0xFF, 0xFF, FrameKind::Data as u8, 0, 0, 0, 1],
        Frame::new(FrameKind::Reply, 1, &b"{\"type\":"[..])
            .to_bytes()
            .unwrap()
            .to_vec(),
        Frame::new(FrameKind::Open, 1, &b"{}"[..])
            .to_bytes()
            .unwrap()
            .to_vec(),
    ] {
        let (mut fake, client) = connect().await;
        let ping = tokio::spawn({
            let client = client.clone();
            async move { client.ping().await }
        });
        fake.expect_open().await;
        fake.send_bytes(&garbage).await;
        let err = ping.await.unwrap().unwrap_err();
        let cause = closed_cause(&err);
        assert!(
            matches!(
                cause,
                CloseCause::Frame(_) | CloseCause::Message(_) | CloseCause::Violation(_)
            ),
            "{cause:?}"
        );
        let again = client.ping().await.unwrap_err();
        assert!(matches!(again, Error::ConnectionClosed { .. }), "{again}");
        // The client hung up.
        while fake.recv().await.is_some() {}
    }
}

#[tokio::test]
async fn replies_of_the_wrong_type_close_the_connection() {
    let (mut fake, client) = connect().await;
    let stat = tokio::spawn({
        let client = client.clone();
        async move { client.stat("/x").await }
    });
    let (id, _) = fake.expect_open().await;
    fake.reply(id, &Reply::Entries { entries: vec![] }).await;
    let err = stat.await.unwrap().unwrap_err();
    assert!(
        matches!(closed_cause(&err), CloseCause::Violation(_)),
        "{err}"
    );
}

#[tokio::test]
async fn frames_for_unknown_streams_are_ignored() {
    let (mut fake, client) = connect().await;
    fake.send(&Frame::new(FrameKind::Data, 999, &b"stray"[..]))
        .await;
    fake.reply(998, &Reply::Ok).await;
    fake.send(&Frame::window(997, 5)).await;
    let ping = tokio::spawn({
        let client = client.clone();
        async move { client.ping().await }
    });
    let (id, _) = fake.expect_open().await;
    fake.reply(id, &Reply::Pong).await;
    ping.await.unwrap().unwrap();
}

#[tokio::test]
async fn output_beyond_the_window_closes_the_connection() {
    let (mut fake, client) = connect().await;
    let exec = tokio::spawn({
        let client = client.clone();
        async move { client.exec(ExecRequest::new(["yes"])).await }
    });
    let (id, _) = fake.expect_open().await;
    fake.reply(id, &Reply::Started { pid: 42 }).await;
    let mut session = exec.await.unwrap().unwrap();
    assert_eq!(session.pid(), 42);
    let chunk = Frame::new(FrameKind::Data, id, vec![b'y'; 64 * 1024]);
    for _ in 0..INITIAL_WINDOW / (64 * 1024) {
        fake.send(&chunk).await;
    }
    fake.send(&Frame::new(FrameKind::Stderr, id, &b"!"[..]))
        .await;
    // Nothing was consumed, so no credit came back: the client hangs up.
    assert!(fake.recv().await.is_none());
    // What arrived within the window is still delivered, then the error.
    let mut received = 0;
    let err = loop {
        match session.try_next().await {
            Ok(Some(ExecEvent::Stdout(b))) => received += b.len(),
            Ok(other) => panic!("{other:?}"),
            Err(e) => break e,
        }
    };
    assert_eq!(received, INITIAL_WINDOW as usize);
    assert!(
        matches!(closed_cause(&err), CloseCause::Violation(_)),
        "{err}"
    );
}

#[tokio::test]
async fn credit_is_granted_as_events_are_consumed() {
    let (mut fake, client) = connect().await;
    let exec = tokio::spawn({
        let client = client.clone();
        async move {
            let mut req = ExecRequest::new(["cat"]);
            req.stdin = true;
            client.exec(req).await
        }
    });
    let (id, _) = fake.expect_open().await;
    fake.reply(id, &Reply::Started { pid: 7 }).await;
    let mut session = exec.await.unwrap().unwrap();
    for _ in 0..4 {
        fake.send(&Frame::new(FrameKind::Data, id, vec![0; 64 * 1024]))
            .await;
    }
    for _ in 0..2 {
        assert!(matches!(session.next().await, Some(ExecEvent::Stdout(b)) if b.len() == 64 * 1024));
    }
    session.close_stdin().await.unwrap();
    // Two grants for the two consumed events, then the EOF: nothing granted early.
    for _ in 0..2 {
        let f = fake.recv().await.unwrap();
        assert_eq!(
            (f.kind, f.stream, f.window_credit()),
            (FrameKind::Window, id, Some(64 * 1024))
        );
    }
    assert_eq!(fake.recv().await.unwrap().kind, FrameKind::Eof);

    let exit = ExitStatus {
        code: None,
        signal: Some(9),
        timed_out: true,
    };
    fake.reply(id, &Reply::Exit { status: exit }).await;
    let mut last = None;
    while let Some(ev) = session.next().await {
        last = Some(ev);
    }
    assert_eq!(last, Some(ExecEvent::Exit(exit)));
    assert_eq!(exit.shell_code(), 124);
    assert!(matches!(
        session.write_stdin(b"late").await,
        Err(Error::StreamClosed)
    ));
}

#[tokio::test]
async fn stdin_waits_for_credit() {
    let (mut fake, client) = connect().await;
    let exec = tokio::spawn({
        let client = client.clone();
        async move {
            let mut req = ExecRequest::new(["cat"]);
            req.stdin = true;
            client.exec(req).await
        }
    });
    let (id, _) = fake.expect_open().await;
    fake.reply(id, &Reply::Started { pid: 7 }).await;
    let session = Arc::new(exec.await.unwrap().unwrap());
    let total = INITIAL_WINDOW as usize + 100_000;
    let writer = tokio::spawn({
        let session = session.clone();
        async move { session.write_stdin(&vec![1u8; total]).await }
    });
    let mut got = 0;
    while got < INITIAL_WINDOW as usize {
        let f = fake.recv().await.unwrap();
        assert_eq!(f.kind, FrameKind::Data);
        got += f.payload.len();
    }
    assert_eq!(
        got, INITIAL_WINDOW as usize,
        "the client sent beyond its credit"
    );
    assert!(!writer.is_finished(), "the writer must wait for credit");
    fake.send(&Frame::window(id, 100_000)).await;
    while got < total {
        got += fake.recv().await.unwrap().payload.len();
    }
    assert_eq!(got, total);
    writer.await.unwrap().unwrap();
}

#[tokio::test]
async fn dropping_the_events_resets_the_stream_and_dropping_the_client_hangs_up() {
    let (mut fake, client) = connect().await;
    let exec = tokio::spawn({
        let client = client.clone();
        async move { client.exec(ExecRequest::new(["sleep", "9"])).await }
    });
    let (id, _) = fake.expect_open().await;
    fake.reply(id, &Reply::Started { pid: 7 }).await;
    let (input, events) = exec.await.unwrap().unwrap().split();
    drop(events);
    let f = fake.recv().await.unwrap();
    assert_eq!((f.kind, f.stream), (FrameKind::Reset, id));
    assert!(matches!(input.signal(2).await, Err(Error::StreamClosed)));
    drop(input);
    drop(client);
    assert!(fake.recv().await.is_none(), "the socket is closed");
}

#[tokio::test]
async fn read_file_is_bounded_and_write_file_stops_on_early_errors() {
    let (mut fake, client) = connect().await;
    let read = tokio::spawn({
        let client = client.clone();
        async move { client.read_file("/etc/hosts", 10).await }
    });
    let (id, req) = fake.expect_open().await;
    assert_eq!(
        req,
        Request::ReadFile {
            path: "/etc/hosts".into(),
            max: 10
        }
    );
    fake.send(&Frame::new(FrameKind::Data, id, &b"0123456789abc"[..]))
        .await;
    let err = read.await.unwrap().unwrap_err();
    assert!(
        matches!(closed_cause(&err), CloseCause::Violation(_)),
        "{err}"
    );

    let (mut fake, client) = connect().await;
    let write = tokio::spawn({
        let client = client.clone();
        async move {
            client
                .write_file("/ro/file", &vec![0u8; 4 << 20], 0o644, false)
                .await
        }
    });
    let (id, req) = fake.expect_open().await;
    assert!(matches!(req, Request::WriteFile { size, .. } if size == 4 << 20));
    // Refuse at once and never grant credit: the client must not hang.
    fake.reply(
        id,
        &Reply::error(ErrorCode::PermissionDenied, "read-only\u{1b}[31m"),
    )
    .await;
    let err = tokio::time::timeout(TIMEOUT, write)
        .await
        .unwrap()
        .unwrap()
        .unwrap_err();
    assert_eq!(err.agent_code(), Some(ErrorCode::PermissionDenied));
    assert!(
        !err.to_string().contains('\u{1b}'),
        "control characters are stripped: {err}"
    );
}
