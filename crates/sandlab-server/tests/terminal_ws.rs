//! The terminal route over a real socket: auth, the Origin check, bytes both ways, resize,
//! reconnect with scrollback, and close 1001 on shutdown.

mod common;

use std::time::Duration;

use common::*;
use futures::{SinkExt, StreamExt};
use sandlab_store::Role;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::Message;

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn serve(h: &Harness) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = h.app();
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("127.0.0.1:{}", addr.port())
}

async fn connect(
    addr: &str,
    id: &str,
    query: &str,
    headers: &[(&'static str, String)],
) -> Result<Ws, u16> {
    let url = format!("ws://{addr}/api/v1/sandboxes/{id}/terminal?{query}");
    let mut req = url.into_client_request().unwrap();
    for (k, v) in headers {
        req.headers_mut().insert(*k, v.parse().unwrap());
    }
    match tokio_tungstenite::connect_async(req).await {
        Ok((ws, _)) => Ok(ws),
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => Err(resp.status().as_u16()),
        Err(e) => panic!("connect: {e}"),
    }
}

/// Reads binary frames until their text contains `needle`; returns everything read.
async fn read_until(ws: &mut Ws, needle: &str) -> String {
    let mut seen = String::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    while !seen.contains(needle) {
        let msg = tokio::time::timeout_at(deadline, ws.next())
            .await
            .unwrap_or_else(|_| panic!("no {needle:?} in {seen:?}"));
        match msg {
            Some(Ok(Message::Binary(b))) => seen.push_str(&String::from_utf8_lossy(&b)),
            Some(Ok(_)) => {}
            other => panic!("socket ended before {needle:?}: {other:?}; seen {seen:?}"),
        }
    }
    seen
}

#[tokio::test]
async fn typing_resize_reconnect_and_shutdown() {
    let h = Harness::new().await;
    let addr = serve(&h).await;
    let alice = h.user("alice", Role::Learner).await;
    let id = h.sandbox(&alice).await;
    let auth = ("authorization", format!("Bearer {alice}"));

    let mut ws = connect(
        &addr,
        &id,
        "name=main&cols=80&rows=24",
        std::slice::from_ref(&auth),
    )
    .await
    .unwrap();
    ws.send(Message::Binary("echo h''i\r".into()))
        .await
        .unwrap();
    read_until(&mut ws, "hi\r\n").await;
    ws.send(Message::Text(
        r#"{"type":"resize","cols":100,"rows":30}"#.into(),
    ))
    .await
    .unwrap();
    ws.send(Message::Binary("stty size\r".into()))
        .await
        .unwrap();
    read_until(&mut ws, "30 100").await;
    ws.send(Message::Binary("echo mark''er-$((6*7))\r".into()))
        .await
        .unwrap();
    read_until(&mut ws, "marker-42").await;
    drop(ws);

    // A reconnect to the same terminal replays the scrollback.
    let mut ws = connect(&addr, &id, "name=main", std::slice::from_ref(&auth))
        .await
        .unwrap();
    read_until(&mut ws, "marker-42").await;

    // A second, independent terminal.
    let mut other = connect(&addr, &id, "name=second", std::slice::from_ref(&auth))
        .await
        .unwrap();
    other
        .send(Message::Binary("echo tw''o\r".into()))
        .await
        .unwrap();
    read_until(&mut other, "two").await;
    drop(other);

    h.state.shutdown().cancel();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        match tokio::time::timeout_at(deadline, ws.next())
            .await
            .expect("no close on shutdown")
        {
            Some(Ok(Message::Close(Some(frame)))) => {
                assert_eq!(frame.code, CloseCode::Away);
                break;
            }
            Some(Ok(_)) => {}
            other => panic!("expected a close frame, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn origin_and_ownership_are_checked() {
    let h = Harness::with(|c| c.public_url = "http://labs.test".into()).await;
    let addr = serve(&h).await;
    let alice = h.user("alice", Role::Learner).await;
    let mallory = h.user("mallory", Role::Learner).await;
    let id = h.sandbox(&alice).await;
    let auth = |t: &str| ("authorization", format!("Bearer {t}"));

    assert_eq!(connect(&addr, &id, "", &[]).await.err(), Some(401));
    assert_eq!(
        connect(&addr, &id, "", &[auth(&mallory)]).await.err(),
        Some(404)
    );
    let evil = ("origin", "https://evil.example".to_owned());
    assert_eq!(
        connect(&addr, &id, "", &[auth(&alice), evil]).await.err(),
        Some(403)
    );
    assert_eq!(
        connect(&addr, &id, "name=Bad%20Name", &[auth(&alice)])
            .await
            .err(),
        Some(400)
    );
    let good = ("origin", "http://labs.test".to_owned());
    assert!(connect(&addr, &id, "", &[auth(&alice), good]).await.is_ok());
}
