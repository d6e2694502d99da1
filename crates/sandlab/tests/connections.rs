//! Issue 19, break 3, against a real `sandlab serve`: about 20,000 idle or half-sent
//! connections (no account needed) once used up the server's descriptors, and a learner
//! could do the same with event streams. Here one address opens many idle connections and
//! half-sent requests; the server closes them (header timeout), refuses more than its
//! per-address cap, and keeps answering everyone else. A user's terminals stop at their cap.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use common::server::Server;
use common::*;
use reqwest::{Method, StatusCode};
use serde_json::json;

const CONFIG: &str = "[server]\nheader_timeout = \"2s\"\nmax_connections_per_address = 20\nmax_streams_per_user = 3\n";

/// A TCP connection to `port` from the loopback address `from` (any 127.x.y.z).
fn connect_from(from: [u8; 4], port: u16) -> TcpStream {
    let socket =
        socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).expect("socket");
    socket
        .bind(&SocketAddr::from((from, 0)).into())
        .expect("bind the client address");
    socket
        .connect(&SocketAddr::from(([127, 0, 0, 1], port)).into())
        .expect("connect");
    let stream: TcpStream = socket.into();
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .expect("read timeout");
    stream
}

/// Whether the server closed `stream`: a read that ends (EOF or reset) rather than timing out.
fn closed_by_server(stream: &mut TcpStream) -> bool {
    let mut buf = [0u8; 1024];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return true,
            Err(_) => return false,
        }
    }
}

fn port_of(server: &Server) -> u16 {
    server.base().rsplit(':').next().unwrap().parse().unwrap()
}

#[test]
fn idle_and_half_sent_connections_are_closed_and_capped_per_address() {
    let data = data_dir();
    let server = Server::start_alone(&data, CONFIG);
    let port = port_of(&server);
    let attacker = [127, 0, 0, 66];
    // Idle connections that never say anything, and requests sent half way: past the
    // per-address cap, the server closes new ones at once.
    let mut held: Vec<TcpStream> = (0..20).map(|_| connect_from(attacker, port)).collect();
    for (i, s) in held.iter_mut().enumerate().skip(10) {
        write!(s, "GET /api/v1/me HTTP/1.1\r\nHost: x{i}\r\n").unwrap();
    }
    let mut extra = connect_from(attacker, port);
    assert!(
        closed_by_server(&mut extra),
        "the 21st connection from one address was kept"
    );
    // Everyone else is served meanwhile.
    let r = server.admin.call(Method::GET, "/api/v1/me", None);
    assert_eq!(r.status, StatusCode::OK);
    // The header timeout closes every held connection, idle or half sent.
    for (i, s) in held.iter_mut().enumerate() {
        assert!(closed_by_server(s), "connection {i} was never closed");
    }
    // Places come back: the same address is served again.
    let mut again = connect_from(attacker, port);
    write!(
        again,
        "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    again.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    // A kept-alive connection that goes idle after a request is closed too.
    let mut idle = connect_from(attacker, port);
    write!(idle, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let mut buf = [0u8; 512];
    let n = idle.read(&mut buf).unwrap();
    assert!(buf[..n].starts_with(b"HTTP/1.1 200"));
    assert!(
        closed_by_server(&mut idle),
        "an idle kept-alive connection was kept"
    );
    assert!(
        server.metric(
            "sandlab_http_connections_refused_total",
            "reason=\"per_address\""
        ) >= Some(1.0),
        "{}",
        server.metrics()
    );
    // The open-files limit was raised to the hard limit at start.
    let limits = std::fs::read_to_string(format!("/proc/{}/limits", server.pid())).unwrap();
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .unwrap();
    let v: Vec<&str> = line["Max open files".len()..].split_whitespace().collect();
    assert_eq!(v[0], v[1], "soft and hard open-files limits: {line}");
}

#[test]
fn a_user_holds_at_most_their_cap_of_terminals() {
    let data = data_dir();
    let server = Server::start_alone(&data, CONFIG);
    let api = server.add_user("learner");
    let sb = api.create(json!({}));
    let id = sb["id"].as_str().unwrap().to_owned();
    let open: Vec<_> = ["a", "b", "c"]
        .iter()
        .map(|n| api.terminal(&id, &format!("name={n}")).expect("terminal"))
        .collect();
    assert_eq!(
        api.terminal(&id, "name=d").err(),
        Some(StatusCode::TOO_MANY_REQUESTS)
    );
    // Another user is not affected.
    let other = server.add_user("learner");
    let sb2 = other.create(json!({}));
    let id2 = sb2["id"].as_str().unwrap().to_owned();
    let t = other
        .terminal(&id2, "name=a")
        .expect("another user's terminal");
    // Closing one gives its place back.
    let mut open = open.into_iter();
    open.next().unwrap().close();
    assert!(
        wait_until(Duration::from_secs(10), || {
            api.terminal(&id, "name=d").map(|t| t.close()).is_ok()
        }),
        "a closed terminal's place never came back"
    );
    t.close();
    drop(open);
    assert_eq!(api.delete(&id), StatusCode::NO_CONTENT);
    assert_eq!(other.delete(&id2), StatusCode::NO_CONTENT);
}
