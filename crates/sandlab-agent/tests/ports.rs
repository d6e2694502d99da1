//! The real agent's port operations: `Connect` carries a TCP connection to a port on the
//! agent's loopback both ways (more than a window each way, half-close, a refused port) and
//! `ListPorts` sees the listeners of the agent's network namespace.

mod common;

use common::*;
use sandlab_proto::{Error, ErrorCode, INITIAL_WINDOW};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

#[tokio::test]
async fn a_port_is_reached_both_ways_and_listed() {
    let agent = TestAgent::start_with(&[]);
    let client = agent.client().await;
    let server = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = server.local_addr().unwrap().port();
    // The server reads everything, answers with it reversed, then closes.
    let serving = tokio::spawn(async move {
        let (mut sock, _) = server.accept().await.unwrap();
        let mut got = Vec::new();
        sock.read_to_end(&mut got).await.unwrap();
        got.reverse();
        sock.write_all(&got).await.unwrap();
        sock.shutdown().await.unwrap();
        got.len()
    });
    let listed = client.list_ports().await.unwrap();
    assert!(
        listed
            .iter()
            .any(|p| p.port == port && p.address == "127.0.0.1"),
        "{listed:?}"
    );

    let mut stream = client.connect_port(port).await.unwrap();
    let data: Vec<u8> = (0..3 * INITIAL_WINDOW as usize)
        .map(|i| (i * 7 % 251) as u8)
        .collect();
    stream.write_all(&data).await.unwrap();
    // Half-close: the server sees the end of the request and still answers.
    stream.shutdown().await.unwrap();
    let mut back = Vec::new();
    stream.read_to_end(&mut back).await.unwrap();
    let mut expected = data.clone();
    expected.reverse();
    assert_eq!(back.len(), expected.len());
    assert!(back == expected);
    assert_eq!(serving.await.unwrap(), data.len());
    // The connection keeps working for other streams.
    client.ping().await.unwrap();
}

#[tokio::test]
async fn a_closed_port_is_refused_clearly() {
    let agent = TestAgent::start_with(&[]);
    let client = agent.client().await;
    let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = free.local_addr().unwrap().port();
    drop(free);
    match client.connect_port(port).await {
        Err(Error::Agent {
            code: ErrorCode::ConnectionRefused,
            message,
        }) => {
            assert!(message.contains(&port.to_string()), "{message}")
        }
        other => panic!("expected ConnectionRefused, got {other:?}"),
    }
    match client.connect_port(0).await {
        Err(Error::InvalidRequest(_)) => {}
        other => panic!("port 0 was not refused: {other:?}"),
    }
    client.ping().await.unwrap();
}
