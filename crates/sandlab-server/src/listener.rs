//! The HTTP accept loop. Every connection costs a file descriptor and a task, and nothing
//! needs to be said to open one, so the loop bounds them (issue 19, break 3: about 20,000
//! idle or half-sent connections once used up the server's descriptors):
//!
//! - a **header timeout** from the moment a connection is accepted or goes idle between
//!   requests until a request's headers are complete (hyper's HTTP/1 header read timer
//!   covers both), so idle and half-sent connections are closed;
//! - a **request-body timeout** between body frames, so a body sent byte by byte ends;
//! - at most `per_address` connections from one client address (more are closed at once)
//!   and `total` in all (past it the loop stops accepting until one ends, leaving the rest
//!   in the kernel's backlog).
//!
//! Upgraded connections (terminal WebSockets) and event streams leave hyper's timers; they
//! are capped per user where they are opened ([`crate::caps`]).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::Router;
use hyper::body::Incoming;
use hyper::server::conn::http1::Builder;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

use crate::metrics as m;

/// How connections are bounded; `server.header_timeout`, `server.max_connections` and
/// `server.max_connections_per_address`.
#[derive(Clone, Debug, PartialEq)]
pub struct ConnectionLimits {
    pub header_timeout: Duration,
    pub total: usize,
    pub per_address: usize,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        ConnectionLimits {
            header_timeout: Duration::from_secs(30),
            total: 8192,
            per_address: 512,
        }
    }
}

/// Open connections per client address; a [`Slot`] gives its place back when dropped.
#[derive(Default)]
struct Addresses {
    open: Mutex<HashMap<IpAddr, usize>>,
}

struct Slot {
    addresses: Arc<Addresses>,
    ip: IpAddr,
    _total: OwnedSemaphorePermit,
}

impl Addresses {
    fn take(self: &Arc<Self>, ip: IpAddr, cap: usize, total: OwnedSemaphorePermit) -> Option<Slot> {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        let n = open.entry(ip).or_insert(0);
        if *n >= cap {
            return None;
        }
        *n += 1;
        Some(Slot {
            addresses: self.clone(),
            ip,
            _total: total,
        })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut open = self
            .addresses
            .open
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if let Some(n) = open.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                open.remove(&self.ip);
            }
        }
        metrics::gauge!(m::HTTP_CONNECTIONS).decrement(1.0);
    }
}

/// Serves `app` on `listener` until `shutdown` is cancelled, then lets requests in flight
/// finish (the caller bounds how long with its grace period).
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: ConnectionLimits,
    shutdown: CancellationToken,
    tls: Option<Arc<crate::tls::TlsFiles>>,
) {
    let total = Arc::new(Semaphore::new(limits.total.max(1)));
    let addresses = Arc::new(Addresses::default());
    let connections = tokio_util::task::TaskTracker::new();
    // HTTP/1 only: hyper-util's auto builder reads the first bytes (to tell HTTP/2's
    // preface) before hyper's header timer starts, so a connection that says nothing would
    // be kept forever. With `server.tls_cert` the connection is TLS first (`tls.rs`; its
    // handshake bounded by the same timeout), still HTTP/1.1 (ALPN says so).
    let mut builder = Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout);
    let app = app.layer(tower_http::timeout::RequestBodyTimeoutLayer::new(
        limits.header_timeout,
    ));
    loop {
        let permit = tokio::select! {
            p = total.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
            () = shutdown.cancelled() => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // EMFILE and friends: wait for a descriptor to come back, never spin.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = shutdown.cancelled() => break,
        };
        let Some(slot) = addresses.take(peer.ip(), limits.per_address, permit) else {
            metrics::counter!(m::HTTP_CONNECTIONS_REFUSED, "reason" => "per_address").increment(1);
            drop(stream);
            continue;
        };
        metrics::gauge!(m::HTTP_CONNECTIONS).increment(1.0);
        let _ = stream.set_nodelay(true);
        let app = app.clone();
        let service = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
            req.extensions_mut().insert(ConnectInfo(peer));
            app.clone().oneshot(req)
        });
        let shutdown = shutdown.clone();
        let builder = builder.clone();
        let acceptor = tls.as_ref().map(|t| t.acceptor());
        let handshake_timeout = limits.header_timeout;
        connections.spawn(async move {
            let ended = match acceptor {
                None => drive(&builder, stream, service, &shutdown).await,
                // The handshake is bounded like the headers: a client that opens and says
                // nothing is closed.
                Some(acceptor) => {
                    match tokio::time::timeout(handshake_timeout, acceptor.accept(stream)).await {
                        Ok(Ok(tls)) => drive(&builder, tls, service, &shutdown).await,
                        Ok(Err(e)) => {
                            tracing::debug!(error = %e, "TLS handshake failed");
                            Ok(())
                        }
                        Err(_) => Ok(()),
                    }
                }
            };
            if let Err(e) = ended {
                tracing::debug!(error = %e, "connection ended with an error");
            }
            drop(slot);
        });
    }
    drop(listener);
    connections.close();
    connections.wait().await;
}

/// Serves one connection until it ends, or until `shutdown`, after which the request in
/// flight finishes and the connection closes.
async fn drive<S, F>(
    builder: &Builder,
    io: S,
    service: F,
    shutdown: &CancellationToken,
) -> Result<(), hyper::Error>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    F: hyper::service::HttpService<Incoming> + Send + 'static,
    F::Future: Send + 'static,
    F::ResBody: Send + 'static,
    <F::ResBody as hyper::body::Body>::Data: Send,
    <F::ResBody as hyper::body::Body>::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    F::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let conn = builder
        .serve_connection(TokioIo::new(io), service)
        .with_upgrades();
    let mut conn = std::pin::pin!(conn);
    tokio::select! {
        r = conn.as_mut() => r,
        () = shutdown.cancelled() => {
            // Finish the request in flight, then close.
            conn.as_mut().graceful_shutdown();
            conn.await
        }
    }
}

/// Raises this process's soft `RLIMIT_NOFILE` to its hard limit (connections, agent links
/// and terminals all take descriptors) and returns the new soft limit.
pub fn raise_open_files_limit() -> u64 {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    match getrlimit(Resource::RLIMIT_NOFILE) {
        Ok((soft, hard)) if soft < hard => match setrlimit(Resource::RLIMIT_NOFILE, hard, hard) {
            Ok(()) => hard,
            Err(e) => {
                tracing::warn!(error = %e, "could not raise the open-files limit");
                soft
            }
        },
        Ok((soft, _)) => soft,
        Err(_) => 1024,
    }
}

/// The most connections a server with `open_files` descriptors should hold: a quarter of
/// them stays for agent links, terminals, the database and the runtime.
pub fn connections_for(open_files: u64) -> usize {
    usize::try_from(open_files / 4 * 3)
        .unwrap_or(usize::MAX)
        .clamp(64, 65536)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_address_cap_counts_and_gives_back() {
        let total = Arc::new(Semaphore::new(10));
        let a = Arc::new(Addresses::default());
        let ip: IpAddr = [192, 0, 2, 1].into();
        let permit = || total.clone().try_acquire_owned().unwrap();
        let s1 = a.take(ip, 2, permit()).unwrap();
        let s2 = a.take(ip, 2, permit()).unwrap();
        assert!(a.take(ip, 2, permit()).is_none());
        assert!(a.take([192, 0, 2, 2].into(), 2, permit()).is_some());
        drop(s1);
        assert!(a.take(ip, 2, permit()).is_some());
        drop(s2);
        assert_eq!(total.available_permits(), 10);
    }

    #[test]
    fn connections_leave_room_for_the_rest() {
        assert_eq!(connections_for(1024), 768);
        assert_eq!(connections_for(10), 64);
        assert_eq!(connections_for(1 << 30), 65536);
    }
}
