//! The real agent over TCP with a per-sandbox token, as a Kubernetes pod or a microVM
//! runs it: exec, files and a PTY over the network link, refusal of a missing or
//! wrong token, and a silent peer that cannot hold the agent.

mod common;

use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use common::*;
use sandlab_proto::frame::{FrameDecoder, FrameKind};
use sandlab_proto::messages::{self, ErrorCode, Hello, Reply};
use sandlab_proto::{AgentClient, AuthToken, Error, ExecEvent, ExecRequest, TtySize};
use sandlab_proto::{INITIAL_WINDOW, PROTOCOL_VERSION};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

async fn client(addr: SocketAddr) -> AgentClient {
    AgentClient::connect_tcp(addr, TOKEN, TIMEOUT)
        .await
        .unwrap()
}

#[tokio::test]
async fn exec_and_files_over_tcp() {
    let (agent, addr) = TestAgent::start_tcp(&[]).await;
    let client = client(addr).await;
    client.ping().await.unwrap();

    let out = sh(&client, "echo hi; echo err >&2; exit 3").await;
    assert_eq!(text(&out.stdout), "hi\n");
    assert_eq!(text(&out.stderr), "err\n");
    assert_eq!(out.exit.code, Some(3));

    // More than one window each way, so flow control runs over the TCP link.
    let data: Vec<u8> = (0..3 * INITIAL_WINDOW)
        .map(|i| (i * 31 % 251) as u8)
        .collect();
    let file = agent.dir.path().join("over-tcp/data.bin");
    let file = file.to_str().unwrap();
    client.write_file(file, &data, 0o600, true).await.unwrap();
    assert_eq!(std::fs::read(file).unwrap(), data);
    assert_eq!(client.read_file(file, 1 << 20).await.unwrap(), data);
    assert_eq!(client.stat(file).await.unwrap().size, data.len() as u64);
}

#[tokio::test]
async fn the_token_reaches_no_child() {
    let (_agent, addr) = TestAgent::start_tcp(&[]).await;
    let client = client(addr).await;
    // The child's environment, its parent's (the agent's) command line, and the
    // environment the agent itself was started with (readable as root only).
    let out = sh(
        &client,
        "env; tr '\\0' ' ' < /proc/$PPID/cmdline; { tr '\\0' ' ' < /proc/$PPID/environ; } 2>/dev/null; true",
    )
    .await;
    assert!(out.exit.success(), "{}", text(&out.stderr));
    let seen = text(&out.stdout);
    assert!(seen.contains("IMAGE_LANG=C.UTF-8"), "{seen}");
    assert!(seen.contains("--token-file"), "{seen}");
    assert!(!seen.contains(TOKEN), "the token leaked: {seen}");
    // Neither in a session started with a PTY.
    let mut req = ExecRequest::new(["sh", "-c", "env"]);
    req.tty = Some(TtySize { cols: 80, rows: 24 });
    let out = run(&client, req).await;
    assert!(!text(&out.stdout).contains(TOKEN));
}

#[tokio::test]
async fn pty_shell_over_tcp() {
    let (_agent, addr) = TestAgent::start_tcp(&[]).await;
    let client = client(addr).await;
    let mut req = ExecRequest::new(["bash", "--norc", "--noprofile", "-i"]);
    req.tty = Some(TtySize { cols: 80, rows: 24 });
    req.stdin = true;
    req.env = vec!["PS1=$ ".into()];
    let mut session = client.exec(req).await.unwrap();
    session.write_stdin(b"echo tcp-$((6*7))\r").await.unwrap();
    read_until(&mut session, "tcp-42").await;
    session.write_stdin(b"stty size; exit 5\r").await.unwrap();
    read_until(&mut session, "24 80").await;
    let exit = tokio::time::timeout(TIMEOUT, async {
        loop {
            match session.next().await {
                Some(ExecEvent::Exit(st)) => return st,
                Some(_) => continue,
                None => panic!("no exit"),
            }
        }
    })
    .await
    .unwrap();
    assert_eq!(exit.code, Some(5));
}

#[tokio::test]
async fn a_missing_or_wrong_token_is_refused_and_the_right_one_still_works() {
    let (_agent, addr) = TestAgent::start_tcp(&[]).await;
    let good = client(addr).await;

    let wrong = [
        "sandlab-test-token-7f3a9c1e5b2d4681",
        "sandlab-test-token-7f3a9c1e5b2d468",
        "sandlab-test-token-7f3a9c1e5b2d46800",
        "",
    ];
    for token in wrong {
        let err = AgentClient::connect_tcp(addr, token, TIMEOUT)
            .await
            .unwrap_err();
        assert!(matches!(err, Error::Unauthorized), "{token:?}: {err:?}");
    }
    let sock = TcpStream::connect(addr).await.unwrap();
    let err = AgentClient::handshake(sock, None, TIMEOUT)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Unauthorized), "no token: {err:?}");

    // The refused connections left the agent serving, old and new connections alike.
    good.ping().await.unwrap();
    let again = client(addr).await;
    assert_eq!(text(&sh(&again, "echo still").await.stdout), "still\n");
    let sock = TcpStream::connect(addr).await.unwrap();
    let by_hand = AgentClient::handshake(sock, Some(TOKEN), TIMEOUT)
        .await
        .unwrap();
    by_hand.ping().await.unwrap();
}

#[tokio::test]
async fn an_unauthenticated_peer_learns_nothing_but_the_refusal() {
    let (_agent, addr) = TestAgent::start_tcp(&[]).await;
    let mut sock = TcpStream::connect(addr).await.unwrap();
    let hello = Hello {
        protocol: PROTOCOL_VERSION,
        version: "raw".into(),
        token: Some(AuthToken::new("not-the-token-0123456789")),
    };
    let frame = messages::encode(FrameKind::Hello, 0, &hello).unwrap();
    sock.write_all(&frame.to_bytes().unwrap()).await.unwrap();
    // Everything the agent sends until it closes: one error reply, no hello.
    let mut buf = BytesMut::new();
    tokio::time::timeout(TIMEOUT, async {
        while sock.read_buf(&mut buf).await.unwrap() > 0 {}
    })
    .await
    .expect("the agent closes the connection");
    let reply = FrameDecoder::new().decode(&mut buf).unwrap().unwrap();
    assert!(buf.is_empty(), "more than one frame");
    assert_eq!((reply.kind, reply.stream), (FrameKind::Reply, 0));
    match messages::decode(&reply, FrameKind::Reply).unwrap() {
        Reply::Error { code, message } => {
            assert_eq!(code, ErrorCode::Unauthorized);
            assert!(message.contains("token"), "{message}");
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_silent_peer_is_dropped_after_the_handshake_timeout() {
    let (_agent, addr) = TestAgent::start_tcp(&["--handshake-timeout-ms", "300"]).await;
    let connected = Instant::now();
    let mut silent = TcpStream::connect(addr).await.unwrap();

    // While the silent peer holds its connection, others are served.
    let client = client(addr).await;
    assert_eq!(text(&sh(&client, "echo busy").await.stdout), "busy\n");

    // The agent closes it without a word (and not before the timeout).
    let mut buf = Vec::new();
    let read = tokio::time::timeout(TIMEOUT, silent.read_to_end(&mut buf))
        .await
        .expect("the agent keeps a silent peer");
    assert_eq!(read.unwrap(), 0, "the agent sent {buf:?}");
    assert!(connected.elapsed() >= Duration::from_millis(300));
    client.ping().await.unwrap();
}

#[tokio::test]
async fn a_flood_of_silent_peers_is_capped_and_then_served_again() {
    let (_agent, addr) = TestAgent::start_tcp(&["--handshake-timeout-ms", "60000"]).await;
    // 32 may wait in their handshake (the agent's cap); the ones past that are closed at
    // once, long before the handshake timeout.
    let mut held = Vec::new();
    for _ in 0..32 {
        held.push(TcpStream::connect(addr).await.unwrap());
    }
    for _ in 0..8 {
        let mut extra = TcpStream::connect(addr).await.unwrap();
        let mut buf = Vec::new();
        let read = tokio::time::timeout(Duration::from_secs(10), extra.read_to_end(&mut buf))
            .await
            .expect("an extra silent peer was kept waiting");
        assert_eq!(read.unwrap(), 0, "the agent sent {buf:?}");
    }
    // Once the flood ends, the host is served again.
    drop(held);
    let c = sandlab_testkit::wait_until("the agent admits again", TIMEOUT, || async {
        AgentClient::connect_tcp(addr, TOKEN, Duration::from_millis(500))
            .await
            .ok()
    })
    .await;
    assert_eq!(text(&sh(&c, "echo back").await.stdout), "back\n");
}

#[tokio::test]
async fn a_token_guards_the_unix_socket_too() {
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("token");
    write_private(&token_file, TOKEN);
    let agent = TestAgent::start_with(&["--token-file", token_file.to_str().unwrap()]);
    let err = AgentClient::connect(&agent.sock, TIMEOUT)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Unauthorized), "{err:?}");
    let sock = tokio::net::UnixStream::connect(&agent.sock).await.unwrap();
    let client = AgentClient::handshake(sock, Some(TOKEN), TIMEOUT)
        .await
        .unwrap();
    client.ping().await.unwrap();
}

#[test]
fn tcp_without_a_usable_token_does_not_start() {
    let dir = tempfile::tempdir().unwrap();
    let short = dir.path().join("short");
    write_private(&short, "too-short\n");
    let cases: [&[&str]; 3] = [
        &["--listen-tcp", "127.0.0.1:0"],
        &[
            "--listen-tcp",
            "127.0.0.1:0",
            "--token-file",
            short.to_str().unwrap(),
        ],
        &[
            "--listen-tcp",
            "127.0.0.1:0",
            "--token-file",
            "/nonexistent/token",
        ],
    ];
    for args in cases {
        let out = Command::new(TestAgent::bin())
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        let first = stderr.lines().next().unwrap_or_default();
        assert!(
            first.starts_with("sandlab-agent: ") && first.ends_with('.'),
            "{stderr}"
        );
        assert!(first.contains("token"), "{stderr}");
    }
}
