//! The client over TCP and with a token, against a scripted fake agent.

use std::time::Duration;

use bytes::BytesMut;
use sandlab_proto::frame::{Frame, FrameDecoder, FrameKind};
use sandlab_proto::messages::{self, ErrorCode, Hello, Reply, Request};
use sandlab_proto::{AgentClient, AuthToken, Error, PROTOCOL_VERSION};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const TIMEOUT: Duration = Duration::from_secs(10);
const TOKEN: &str = "fake-agent-token-0123456789";

async fn recv(sock: &mut (impl AsyncRead + Unpin), buf: &mut BytesMut) -> Option<Frame> {
    tokio::time::timeout(TIMEOUT, async {
        loop {
            if let Some(f) = FrameDecoder::new().decode(buf).unwrap() {
                return Some(f);
            }
            if sock.read_buf(buf).await.unwrap_or(0) == 0 {
                return None;
            }
        }
    })
    .await
    .expect("the client went silent")
}

async fn send(sock: &mut (impl AsyncWrite + Unpin), frame: &Frame) {
    sock.write_all(&frame.to_bytes().unwrap()).await.unwrap();
}

/// A fake agent that requires `TOKEN`, as the real one does: it waits for the host's
/// hello, then answers with its own or with `unauthorized`. Serves one ping.
async fn fake_agent(mut sock: TcpStream) -> Option<AuthToken> {
    let mut buf = BytesMut::new();
    let hello = recv(&mut sock, &mut buf).await.expect("a hello");
    let hello: Hello = messages::decode(&hello, FrameKind::Hello).unwrap();
    let expected = AuthToken::from_secret(TOKEN).unwrap();
    if !expected.verify(hello.token.as_ref()) {
        let no = Reply::error(ErrorCode::Unauthorized, "no");
        send(
            &mut sock,
            &messages::encode(FrameKind::Reply, 0, &no).unwrap(),
        )
        .await;
        return hello.token;
    }
    let ours = Hello {
        protocol: PROTOCOL_VERSION,
        version: "fake-tcp".into(),
        token: None,
    };
    send(
        &mut sock,
        &messages::encode(FrameKind::Hello, 0, &ours).unwrap(),
    )
    .await;
    let open = recv(&mut sock, &mut buf).await.expect("an open");
    let req: Request = messages::decode(&open, FrameKind::Open).unwrap();
    assert_eq!(req, Request::Ping);
    let pong = messages::encode(FrameKind::Reply, open.stream, &Reply::Pong).unwrap();
    send(&mut sock, &pong).await;
    // Wait for the client to hang up.
    while recv(&mut sock, &mut buf).await.is_some() {}
    hello.token
}

#[tokio::test]
async fn connect_tcp_presents_the_token() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let agent = tokio::spawn(async move {
        let (sock, _) = listener.accept().await.unwrap();
        fake_agent(sock).await
    });
    let client = AgentClient::connect_tcp(addr, TOKEN, TIMEOUT)
        .await
        .unwrap();
    assert_eq!(client.agent_version(), "fake-tcp");
    client.ping().await.unwrap();
    drop(client);
    let seen = agent.await.unwrap().expect("a token in the hello");
    assert_eq!(seen.expose(), TOKEN);
}

#[tokio::test]
async fn a_refused_token_is_unauthorized() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let agent = tokio::spawn(async move {
        let mut seen = Vec::new();
        for _ in 0..2 {
            let (sock, _) = listener.accept().await.unwrap();
            seen.push(fake_agent(sock).await);
        }
        seen
    });
    let err = AgentClient::connect_tcp(addr, "wrong-token-0123456789", TIMEOUT)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Unauthorized), "{err:?}");
    assert_eq!(
        err.to_string(),
        "The agent refused the connection: its token is missing or wrong."
    );
    let sock = TcpStream::connect(addr).await.unwrap();
    let err = AgentClient::handshake(sock, None, TIMEOUT)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Unauthorized), "{err:?}");
    let seen = agent.await.unwrap();
    assert_eq!(
        seen[0].as_ref().map(|t| t.expose()),
        Some("wrong-token-0123456789")
    );
    assert!(seen[1].is_none(), "no token is sent when none is given");
}

#[tokio::test]
async fn connect_tcp_retries_until_the_agent_listens() {
    // Reserve a port, free it, and only listen on it after the client started dialing.
    let addr = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap();
    let client = tokio::spawn(AgentClient::connect_tcp(addr, TOKEN, TIMEOUT));
    tokio::time::sleep(Duration::from_millis(100)).await;
    let listener = TcpListener::bind(addr).await.unwrap();
    let (sock, _) = listener.accept().await.unwrap();
    let agent = tokio::spawn(fake_agent(sock));
    let client = client.await.unwrap().unwrap();
    client.ping().await.unwrap();
    drop(client);
    agent.await.unwrap();
}

#[tokio::test]
async fn nothing_listening_is_a_connect_error_naming_the_address() {
    let addr = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap();
    let err = AgentClient::connect_tcp(addr, TOKEN, Duration::from_millis(200))
        .await
        .unwrap_err();
    match &err {
        Error::ConnectTcp { addr: a, .. } => assert_eq!(*a, addr),
        other => panic!("expected a connect error, got {other:?}"),
    }
    assert!(err.to_string().contains(&addr.to_string()), "{err}");
}

#[tokio::test]
async fn any_stream_works_with_from_stream() {
    let (host, mut agent) = tokio::io::duplex(64 * 1024);
    let client = tokio::spawn(AgentClient::from_stream(host));
    let mut buf = BytesMut::new();
    let theirs = recv(&mut agent, &mut buf).await.unwrap();
    let theirs: Hello = messages::decode(&theirs, FrameKind::Hello).unwrap();
    assert_eq!(theirs.token, None);
    let ours = Hello {
        protocol: PROTOCOL_VERSION,
        version: "duplex".into(),
        token: None,
    };
    send(
        &mut agent,
        &messages::encode(FrameKind::Hello, 0, &ours).unwrap(),
    )
    .await;
    let client = client.await.unwrap().unwrap();
    let ping = tokio::spawn({
        let client = client.clone();
        async move { client.ping().await }
    });
    let open = recv(&mut agent, &mut buf).await.unwrap();
    let pong = messages::encode(FrameKind::Reply, open.stream, &Reply::Pong).unwrap();
    send(&mut agent, &pong).await;
    ping.await.unwrap().unwrap();
}

/// Callers spawn these futures on a multi-threaded runtime: they must stay `Send`.
#[test]
fn connect_futures_are_send() {
    fn assert_send<T: Send>(_: &T) {}
    let path = std::path::Path::new("/nonexistent.sock");
    let addr: std::net::SocketAddr = "127.0.0.1:1".parse().unwrap();
    assert_send(&AgentClient::connect(path, TIMEOUT));
    assert_send(&AgentClient::connect_tcp(addr, TOKEN, TIMEOUT));
    let (a, _b) = tokio::io::duplex(64);
    assert_send(&AgentClient::handshake(a, Some(TOKEN), TIMEOUT));
}
