//! The port proxy's two operations: connecting to a port inside the sandbox for the host
//! (`Connect`), and listing the ports that listen (`ListPorts`).
//!
//! The agent lives in the sandbox's network namespace, so the host reaches a sandbox's
//! servers through the agent link only: nothing routes the host into the sandbox's
//! network, and the sandbox's servers see a connection from its own loopback.

use std::collections::BTreeSet;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use bytes::Bytes;
use sandlab_proto::frame::FrameKind;
use sandlab_proto::messages::{ErrorCode, ListeningPort, Reply};
use sandlab_proto::DATA_CHUNK;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;

use crate::conn::{Input, StreamCtx};

/// How long a connect may take before the port counts as not answering.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// `/proc/net/tcp` state of a listening socket.
const TCP_LISTEN: &str = "0A";

/// Connects to `port` and moves bytes both ways until either side is done.
pub async fn connect(ctx: StreamCtx, port: u16, mut input: mpsc::UnboundedReceiver<Input>) {
    let sock = match tokio::time::timeout(CONNECT_TIMEOUT, dial(port)).await {
        Ok(Ok(sock)) => sock,
        Ok(Err(e)) => {
            let code = match e.kind() {
                io::ErrorKind::ConnectionRefused => ErrorCode::ConnectionRefused,
                _ => crate::files::error_code(&e),
            };
            let message = format!("Nothing accepts connections on port {port}: {e}.");
            return ctx.finish(Reply::error(code, message));
        }
        Err(_) => {
            let message =
                format!("Port {port} did not accept a connection within {CONNECT_TIMEOUT:?}.");
            return ctx.finish(Reply::error(ErrorCode::ConnectionRefused, message));
        }
    };
    let _ = sock.set_nodelay(true);
    ctx.reply(&Reply::Connected);
    let (mut rd, mut wr) = sock.into_split();
    let granter = ctx.granter();
    // Host to server: write what arrives, give the credit back once written.
    let writer = tokio::spawn(async move {
        while let Some(item) = input.recv().await {
            match item {
                Input::Data(bytes) => {
                    let n = bytes.len();
                    if wr.write_all(&bytes).await.is_err() {
                        // The server stopped reading: keep crediting, so the host
                        // never blocks on a dead direction; its reads end the stream.
                        granter.grant(n);
                        continue;
                    }
                    granter.grant(n);
                }
                Input::Eof => {
                    let _ = wr.shutdown().await;
                }
                Input::Control(_) => {}
            }
        }
    });
    // Server to host: read no more than the host granted.
    let mut buf = vec![0u8; DATA_CHUNK];
    loop {
        let Some(allowed) = ctx.window.reserve(DATA_CHUNK).await else {
            break; // Reset, or the connection to the host closed.
        };
        match rd.read(&mut buf[..allowed]).await {
            Ok(n) if n > 0 => {
                ctx.window.release(allowed - n);
                ctx.data(FrameKind::Data, Bytes::copy_from_slice(&buf[..n]));
            }
            _ => {
                ctx.window.release(allowed);
                ctx.reply(&Reply::Ok);
                break;
            }
        }
    }
    writer.abort();
}

/// Loopback first (a server bound to `0.0.0.0`, `::` or `127.0.0.1`), then `::1`, then
/// the one address the port listens on, if it listens on one only (read from the socket
/// table only when loopback refused).
async fn dial(port: u16) -> io::Result<TcpStream> {
    let loopback = [
        SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port),
        SocketAddr::new(IpAddr::V6(Ipv6Addr::LOCALHOST), port),
    ];
    let mut last = None;
    for target in loopback {
        match TcpStream::connect(target).await {
            Ok(sock) => return Ok(sock),
            Err(e) => last = Some(e),
        }
    }
    let ports = tokio::task::spawn_blocking(listening)
        .await
        .unwrap_or_else(|_| Ok(Vec::new()))
        .unwrap_or_default();
    for p in ports.into_iter().filter(|p| p.port == port) {
        let Ok(ip) = p.address.parse::<IpAddr>() else {
            continue;
        };
        if ip.is_unspecified() || ip.is_loopback() {
            continue;
        }
        match TcpStream::connect(SocketAddr::new(ip, port)).await {
            Ok(sock) => return Ok(sock),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| io::Error::from(io::ErrorKind::ConnectionRefused)))
}

/// Replies with the listening ports.
pub async fn list(ctx: StreamCtx) {
    let reply = match tokio::task::spawn_blocking(listening).await {
        Ok(Ok(ports)) => Reply::Ports { ports },
        Ok(Err(e)) => Reply::error(
            crate::files::error_code(&e),
            format!("Could not read the sandbox's sockets: {e}."),
        ),
        Err(e) => Reply::error(ErrorCode::Other, format!("Listing the ports failed: {e}.")),
    };
    ctx.finish(reply);
}

/// The TCP sockets in LISTEN state, from `/proc/net/tcp` and `/proc/net/tcp6` (this
/// thread's network namespace), deduplicated and sorted.
pub fn listening() -> io::Result<Vec<ListeningPort>> {
    let mut found = BTreeSet::new();
    let mut any = false;
    for (file, v6) in [("/proc/net/tcp", false), ("/proc/net/tcp6", true)] {
        match std::fs::read_to_string(file) {
            Ok(text) => {
                any = true;
                found.extend(parse_proc_net_tcp(&text, v6));
            }
            // No IPv6 in this kernel: tcp6 is absent.
            Err(e) if e.kind() == io::ErrorKind::NotFound && v6 => {}
            Err(e) => return Err(e),
        }
    }
    if !any {
        return Err(io::Error::from(io::ErrorKind::NotFound));
    }
    Ok(found.into_iter().collect())
}

/// The listening sockets of one `/proc/net/tcp*` table; lines that do not parse are
/// skipped.
fn parse_proc_net_tcp(text: &str, v6: bool) -> Vec<ListeningPort> {
    let mut out = Vec::new();
    for line in text.lines().skip(1) {
        let mut fields = line.split_whitespace();
        let (Some(_slot), Some(local), Some(_remote), Some(state)) =
            (fields.next(), fields.next(), fields.next(), fields.next())
        else {
            continue;
        };
        if state != TCP_LISTEN {
            continue;
        }
        let Some((addr, port)) = local.split_once(':') else {
            continue;
        };
        let Ok(port) = u16::from_str_radix(port, 16) else {
            continue;
        };
        let Some(ip) = parse_hex_addr(addr, v6) else {
            continue;
        };
        if port != 0 {
            out.push(ListeningPort {
                port,
                address: ip.to_string(),
            });
        }
    }
    out
}

/// `/proc/net/tcp` writes addresses as 32-bit words in host byte order, in hex.
fn parse_hex_addr(hex: &str, v6: bool) -> Option<IpAddr> {
    let words: Vec<u32> = (0..hex.len())
        .step_by(8)
        .map(|i| {
            hex.get(i..i + 8)
                .and_then(|w| u32::from_str_radix(w, 16).ok())
        })
        .collect::<Option<_>>()?;
    match (v6, words.as_slice()) {
        (false, [w]) => Some(IpAddr::V4(Ipv4Addr::from(w.to_ne_bytes()))),
        (true, [a, b, c, d]) => {
            let mut bytes = [0u8; 16];
            for (i, w) in [a, b, c, d].into_iter().enumerate() {
                bytes[i * 4..i * 4 + 4].copy_from_slice(&w.to_ne_bytes());
            }
            let ip = Ipv6Addr::from(bytes);
            // A v4-mapped listener is the v4 address.
            Some(match ip.to_ipv4_mapped() {
                Some(v4) => IpAddr::V4(v4),
                None => IpAddr::V6(ip),
            })
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TCP: &str = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000:0050 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1 0 100 0 0 10 0
   1: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 2 1 0 100 0 0 10 0
   2: 0100007F:1F90 0100007F:D2F0 01 00000000:00000000 00:00000000 00000000     0        0 3 1 0 100 0 0 10 0
   3: garbage
";
    const TCP6: &str = "  sl  local_address                         remote_address                        st
   0: 00000000000000000000000000000000:0BB8 00000000000000000000000000000000:0000 0A 00000000:00000000
   1: 00000000000000000000000001000000:0016 00000000000000000000000000000000:0000 0A 00000000:00000000
";

    #[test]
    fn listening_sockets_are_read_from_proc_net_tcp() {
        let v4 = parse_proc_net_tcp(TCP, false);
        assert_eq!(
            v4,
            vec![
                ListeningPort {
                    port: 80,
                    address: "0.0.0.0".into()
                },
                ListeningPort {
                    port: 8080,
                    address: "127.0.0.1".into()
                },
            ]
        );
        let v6 = parse_proc_net_tcp(TCP6, true);
        assert_eq!(
            v6,
            vec![
                ListeningPort {
                    port: 3000,
                    address: "::".into()
                },
                ListeningPort {
                    port: 22,
                    address: "::1".into()
                },
            ]
        );
    }

    #[test]
    fn this_hosts_listeners_parse() {
        // Whatever this machine listens on, the parser accepts its real tables.
        let ports = listening().unwrap();
        assert!(ports.windows(2).all(|w| w[0] < w[1]));
    }
}
