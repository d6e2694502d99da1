//! Sending one request on to a sandbox's port, and its answer back: HTTP/1.1 over a fresh
//! `Connect` stream of the sandbox's agent, bodies streamed both ways, WebSocket (and any
//! other `Upgrade`) joined end to end.
//!
//! The request the sandbox sees is rebuilt by hyper's client, never passed through byte
//! for byte: framing headers (`Content-Length`, `Transfer-Encoding`) and hop-by-hop
//! headers are dropped and set anew from the body, so a request that smuggles a second one
//! in conflicting framing reaches the sandbox as one request or not at all. A connection
//! inside the sandbox is reused only for the same caller (user or share grant) whose last
//! answer ended cleanly, so nothing one client sends can land on another's connection.

use std::pin::Pin;
use std::task::{Context, Poll};

use axum::body::Body;
use axum::extract::Request;
use axum::http::header::{
    self, HeaderName, AUTHORIZATION, CONNECTION, CONTENT_LENGTH, COOKIE, HOST, LOCATION,
    SET_COOKIE, TRANSFER_ENCODING, UPGRADE,
};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use hyper::body::{Body as HttpBody, Frame, Incoming, SizeHint};
use hyper_util::rt::TokioIo;
use sandlab_proto::ErrorCode;

use super::{foreign_cookies, Target, OUR_COOKIES};
use crate::error::ApiError;
use crate::metrics as m;
use crate::state::AppState;

/// Headers that describe one hop, not the message (RFC 9110 section 7.6.1), and framing.
const HOP_BY_HOP: [HeaderName; 8] = [
    CONNECTION,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    header::TE,
    header::TRAILER,
    TRANSFER_ENCODING,
];

fn refuse(status: StatusCode, code: &'static str, message: impl Into<String>) -> Response {
    metrics::counter!(m::PROXY_REQUESTS, "outcome" => code).increment(1);
    ApiError::new(status, code, message).into_response()
}

fn too_large(max: u64) -> Response {
    refuse(
        StatusCode::PAYLOAD_TOO_LARGE,
        "body_too_large",
        format!("The request body is larger than the proxy's limit of {max} bytes."),
    )
}

/// Whether the request asks to switch protocols (a WebSocket).
fn is_upgrade(headers: &HeaderMap) -> bool {
    headers.contains_key(UPGRADE)
        && headers
            .get_all(CONNECTION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|t| t.trim().eq_ignore_ascii_case("upgrade"))
}

/// Drops hop-by-hop headers, and those the `Connection` header names (except `Upgrade`,
/// which the caller keeps or drops depending on whether protocols switch).
fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let named: Vec<HeaderName> = headers
        .get_all(CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|t| HeaderName::from_bytes(t.trim().as_bytes()).ok())
        .filter(|name| *name != UPGRADE)
        .collect();
    for name in HOP_BY_HOP.iter().chain(&named) {
        headers.remove(name);
    }
}

pub(super) async fn forward(
    state: AppState,
    target: Target,
    mut req: Request,
    principal: super::Principal,
    client: Option<String>,
) -> Response {
    let proxy = state.proxy();
    let settings = proxy.settings();
    if proxy.rate.check(target.sandbox.as_str()).is_err() {
        return refuse(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            format!("The sandbox gets more than {} requests a minute through the proxy; try again shortly.", settings.rate),
        );
    }
    let Some(place) = proxy.place(&target.sandbox) else {
        let mut resp = refuse(
            StatusCode::SERVICE_UNAVAILABLE,
            "proxy_busy",
            format!("The sandbox already has {} requests in flight through the proxy; try again shortly.", settings.per_sandbox),
        );
        resp.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        return resp;
    };
    let declared = req
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > settings.max_body) {
        return too_large(settings.max_body);
    }
    let upgrade = is_upgrade(req.headers());
    let on_client_upgrade = upgrade.then(|| hyper::upgrade::on(&mut req));

    // The sandbox's side: an idle connection of this caller to the port, or a new one made
    // by the sandbox's agent. A switch of protocols takes its connection for good.
    let key = (target.sandbox.clone(), target.port, principal.key.clone());
    let reused = if upgrade { None } else { proxy.idle.take(&key) };
    let mut sender = match reused {
        Some(s) => s,
        None => match connect(&state, &target, settings.timeout).await {
            Ok(s) => s,
            Err(resp) => return resp,
        },
    };

    // The request as the sandbox sees it.
    let (mut parts, body) = req.into_parts();
    let original_host = parts.headers.get(HOST).cloned();
    // A length the client declared (and nothing else framed) goes on, so servers that do
    // not read chunked bodies get the body; hyper's client checks the body matches it.
    let length = match parts.headers.contains_key(TRANSFER_ENCODING) {
        true => None,
        false => declared,
    };
    strip_hop_by_hop(&mut parts.headers);
    parts.headers.remove(CONTENT_LENGTH);
    if let Some(n) = length {
        parts.headers.insert(CONTENT_LENGTH, HeaderValue::from(n));
    }
    let kept = foreign_cookies(&parts.headers);
    parts.headers.remove(COOKIE);
    if let Some(kept) = kept {
        parts.headers.insert(COOKIE, kept);
    }
    if principal.strip_authorization {
        parts.headers.remove(AUTHORIZATION);
    }
    if upgrade {
        parts
            .headers
            .insert(CONNECTION, HeaderValue::from_static("upgrade"));
    } else {
        parts.headers.remove(UPGRADE);
    }
    if let Some(host) = &original_host {
        parts
            .headers
            .insert(HeaderName::from_static("x-forwarded-host"), host.clone());
    }
    if let Some(ip) = client
        .as_deref()
        .and_then(|c| HeaderValue::from_str(c).ok())
    {
        parts
            .headers
            .insert(HeaderName::from_static("x-forwarded-for"), ip);
    }
    parts.headers.insert(
        HeaderName::from_static("x-forwarded-proto"),
        HeaderValue::from_static(if proxy.scheme == "https" {
            "https"
        } else {
            "http"
        }),
    );
    if !target.prefix.is_empty() {
        if let Ok(v) = HeaderValue::from_str(&target.prefix) {
            parts
                .headers
                .insert(HeaderName::from_static("x-forwarded-prefix"), v);
        }
    }
    parts.uri = match target.rest.parse() {
        Ok(uri) => uri,
        Err(_) => {
            return refuse(
                StatusCode::BAD_REQUEST,
                "invalid_path",
                "The request path is not valid.",
            )
        }
    };
    parts.version = axum::http::Version::HTTP_11;
    let max = usize::try_from(settings.max_body).unwrap_or(usize::MAX);
    let body = if declared == Some(0) {
        Body::empty()
    } else {
        Body::new(http_body_util::Limited::new(body, max))
    };
    let upstream = Request::from_parts(parts, body);

    let sent = tokio::time::timeout(settings.timeout, sender.send_request(upstream)).await;
    let mut resp = match sent {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => {
            if std::error::Error::source(&e)
                .is_some_and(|s| s.is::<http_body_util::LengthLimitError>())
            {
                return too_large(settings.max_body);
            }
            tracing::debug!(error = %e, sandbox = %target.sandbox, "proxied request failed");
            return refuse(
                StatusCode::BAD_GATEWAY,
                "bad_gateway",
                format!(
                    "The server on port {} closed the connection without a valid answer.",
                    target.port
                ),
            );
        }
        Err(_) => {
            return refuse(
                StatusCode::GATEWAY_TIMEOUT,
                "port_timeout",
                format!(
                    "The server on port {} did not answer within {:?}.",
                    target.port, settings.timeout
                ),
            )
        }
    };
    metrics::counter!(m::PROXY_REQUESTS, "outcome" => "forwarded").increment(1);

    // The answer as the browser sees it.
    let status = resp.status();
    let switching = status == StatusCode::SWITCHING_PROTOCOLS;
    let mut headers = std::mem::take(resp.headers_mut());
    strip_hop_by_hop(&mut headers);
    if switching && upgrade {
        headers.insert(CONNECTION, HeaderValue::from_static("upgrade"));
    } else {
        headers.remove(UPGRADE);
    }
    keep_foreign_set_cookies(&mut headers);
    // The tab in the UI frames the page; the sandbox's own framing rule would blank it.
    headers.remove(header::X_FRAME_OPTIONS);
    rewrite_location(
        &mut headers,
        &target,
        proxy.path_origin.get().map(String::as_str),
    );

    if switching {
        let Some(on_client) = on_client_upgrade else {
            return refuse(
                StatusCode::BAD_GATEWAY,
                "bad_gateway",
                "The sandbox switched protocols unasked.",
            );
        };
        let on_upstream = hyper::upgrade::on(&mut resp);
        let proof = principal.proof;
        tokio::spawn(async move {
            let _place = place;
            let (Ok(client), Ok(upstream)) = tokio::join!(on_client, on_upstream) else {
                return;
            };
            let (mut a, mut b) = (TokioIo::new(client), TokioIo::new(upstream));
            // The right to the port is checked again while the socket stays open: a share
            // revoked or expired, a token deleted, a user disabled end it.
            let copy = tokio::io::copy_bidirectional(&mut a, &mut b);
            tokio::pin!(copy);
            let mut every = tokio::time::interval(RECHECK);
            every.tick().await;
            loop {
                tokio::select! {
                    _ = &mut copy => break,
                    _ = every.tick() => {
                        if !proof.still_opens(&state, &target).await {
                            break;
                        }
                    }
                }
            }
        });
        let mut out = Response::new(Body::empty());
        *out.status_mut() = status;
        *out.headers_mut() = headers;
        return out;
    }
    let body = Held {
        inner: resp.into_body(),
        ended: false,
        back: Some((proxy.idle.clone(), key, sender)),
        _place: place,
    };
    let mut out = Response::new(Body::new(body));
    *out.status_mut() = status;
    *out.headers_mut() = headers;
    out
}

/// Drops `Set-Cookie` headers that would set one of Sandlab's cookie names: on a
/// loopback setup the proxy and the UI differ only in host, and no sandbox may plant or
/// clear the proxy's own cookie either.
fn keep_foreign_set_cookies(headers: &mut HeaderMap) {
    let kept: Vec<HeaderValue> = headers
        .get_all(SET_COOKIE)
        .iter()
        .filter(|v| {
            // The name is the bytes before `=`, whatever else the value holds (a non-ASCII
            // byte later must not hide it); a cookie without `=` is dropped.
            let bytes = v.as_bytes();
            let Some(eq) = bytes.iter().position(|b| *b == b'=') else {
                return false;
            };
            let name = bytes[..eq].trim_ascii();
            !OUR_COOKIES
                .iter()
                .any(|ours| ours.as_bytes().eq_ignore_ascii_case(name))
        })
        .cloned()
        .collect();
    headers.remove(SET_COOKIE);
    for v in kept {
        headers.append(SET_COOKIE, v);
    }
    // `Clear-Site-Data: "cookies"` clears the whole registrable domain, which may be the
    // UI's.
    headers.remove(HeaderName::from_static("clear-site-data"));
}

/// On the path form, a redirect to `/x` (or to the proxy's origin) means `/x` of the
/// same port: put the prefix in front.
fn rewrite_location(headers: &mut HeaderMap, target: &Target, origin: Option<&str>) {
    if target.prefix.is_empty() {
        return;
    }
    let Some(loc) = headers.get(LOCATION).and_then(|v| v.to_str().ok()) else {
        return;
    };
    let local = match origin.and_then(|o| loc.strip_prefix(o)) {
        Some(rest) if rest.starts_with('/') => rest,
        _ if loc.starts_with('/') && !loc.starts_with("//") => loc,
        _ => return,
    };
    if local.starts_with(&format!("{}/", target.prefix)) {
        return;
    }
    if let Ok(v) = HeaderValue::from_str(&format!("{}{local}", target.prefix)) {
        headers.insert(LOCATION, v);
    }
}

/// A connection to a port, ready for a request.
type Sender = hyper::client::conn::http1::SendRequest<Body>;
/// Whose idle connection: sandbox, port, principal.
type IdleKey = (sandlab_core::SandboxId, u16, String);

/// Most idle connections kept per key, and in all.
const IDLE_PER_KEY: usize = 4;
/// Most idle connections kept for one sandbox (its agent serves 1024 streams at most).
const IDLE_PER_SANDBOX: usize = 16;
/// How often an open WebSocket's right to its port is checked again.
const RECHECK: std::time::Duration = std::time::Duration::from_secs(5);
const IDLE_TOTAL: usize = 1024;
/// An idle connection older than this is closed rather than reused.
const IDLE_FOR: std::time::Duration = std::time::Duration::from_secs(30);

/// Upstream connections whose last answer ended cleanly, for the next request of the same
/// caller to the same port (each new one costs a stream, a connection inside the sandbox
/// and, for many servers, a thread).
#[derive(Default)]
pub(super) struct Idle {
    map: std::sync::Mutex<std::collections::HashMap<IdleKey, Vec<(Sender, std::time::Instant)>>>,
}

impl Idle {
    fn take(&self, key: &IdleKey) -> Option<Sender> {
        use futures::FutureExt;
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        let list = map.get_mut(key)?;
        while let Some((mut s, at)) = list.pop() {
            if at.elapsed() < IDLE_FOR
                && !s.is_closed()
                && matches!(s.ready().now_or_never(), Some(Ok(())))
            {
                return Some(s);
            }
        }
        map.remove(key);
        None
    }

    fn put(&self, key: IdleKey, sender: Sender) {
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        // Old connections go first, wherever they are: each holds a stream of its
        // sandbox's agent and a connection inside it.
        for list in map.values_mut() {
            list.retain(|(_, at)| at.elapsed() < IDLE_FOR);
        }
        map.retain(|_, l| !l.is_empty());
        let of_sandbox: usize = map
            .iter()
            .filter(|(k, _)| k.0 == key.0)
            .map(|(_, l)| l.len())
            .sum();
        if map.len() >= IDLE_TOTAL || of_sandbox >= IDLE_PER_SANDBOX {
            return;
        }
        let list = map.entry(key).or_default();
        if list.len() < IDLE_PER_KEY {
            list.push((sender, std::time::Instant::now()));
        }
    }
}

/// A new connection to `target`'s port through the sandbox's agent, HTTP/1.1 on it.
async fn connect(
    state: &AppState,
    target: &Target,
    timeout: std::time::Duration,
) -> Result<Sender, Response> {
    let agent = match state.sandboxes().agent(&target.sandbox).await {
        Ok(a) => a,
        Err(_) => {
            return Err(refuse(
                StatusCode::NOT_FOUND,
                "sandbox_unavailable",
                "The sandbox is not running (it ended, or is still starting).",
            ))
        }
    };
    let stream = match tokio::time::timeout(timeout, agent.connect_port(target.port)).await {
        Ok(Ok(s)) => s,
        Ok(Err(sandlab_proto::Error::Agent {
            code: ErrorCode::ConnectionRefused,
            ..
        })) => {
            return Err(refuse(
                StatusCode::BAD_GATEWAY,
                "port_closed",
                format!(
                    "Nothing listens on port {} in the sandbox (yet).",
                    target.port
                ),
            ))
        }
        Ok(Err(e)) => {
            tracing::debug!(error = %e, sandbox = %target.sandbox, "proxy connect failed");
            return Err(refuse(
                StatusCode::BAD_GATEWAY,
                "port_unreachable",
                format!("Port {} of the sandbox could not be reached.", target.port),
            ));
        }
        Err(_) => {
            return Err(refuse(
                StatusCode::GATEWAY_TIMEOUT,
                "port_timeout",
                format!(
                    "Port {} of the sandbox did not accept a connection in time.",
                    target.port
                ),
            ))
        }
    };
    let (sender, conn) = hyper::client::conn::http1::Builder::new()
        .handshake::<_, Body>(TokioIo::new(stream))
        .await
        .map_err(|_| {
            refuse(
                StatusCode::BAD_GATEWAY,
                "port_unreachable",
                "The sandbox's connection failed.",
            )
        })?;
    tokio::spawn(async move {
        let _ = conn.with_upgrades().await;
    });
    Ok(sender)
}

/// A response body that holds the request's place until it ends, and gives its connection
/// back for reuse when it ended cleanly.
struct Held {
    inner: Incoming,
    ended: bool,
    back: Option<(std::sync::Arc<Idle>, IdleKey, Sender)>,
    _place: tokio::sync::OwnedSemaphorePermit,
}

impl Drop for Held {
    fn drop(&mut self) {
        // hyper stops polling a body that says it ended, so that counts too.
        let ended = self.ended || self.inner.is_end_stream();
        if let (true, Some((idle, key, sender))) = (ended, self.back.take()) {
            idle.put(key, sender);
        }
    }
}

impl HttpBody for Held {
    type Data = bytes::Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if let Poll::Ready(None) = polled {
            self.ended = true;
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sandlab_core::SandboxId;

    #[test]
    fn redirects_stay_under_the_ports_prefix() {
        let id = SandboxId::generate();
        let t = Target {
            sandbox: id.clone(),
            port: 80,
            prefix: format!("/{id}/80"),
            rest: "/".into(),
        };
        let cases = [
            ("/login", format!("/{id}/80/login")),
            (&*format!("/{id}/80/x"), format!("/{id}/80/x")),
            ("http://localhost:9001/a", format!("/{id}/80/a")),
            (
                "https://elsewhere.example/a",
                "https://elsewhere.example/a".to_owned(),
            ),
            ("//evil.example/a", "//evil.example/a".to_owned()),
        ];
        for (from, to) in cases {
            let mut h = HeaderMap::new();
            h.insert(LOCATION, from.parse().unwrap());
            rewrite_location(&mut h, &t, Some("http://localhost:9001"));
            assert_eq!(h[LOCATION], to.as_str(), "{from}");
        }
    }

    #[test]
    fn a_sandbox_cannot_set_our_cookies() {
        let mut h = HeaderMap::new();
        for c in [
            "a=1; Path=/",
            "sandlab_session=x; Domain=127.0.0.1",
            "SANDLAB_CSRF=y",
            "sandlab_proxy=z",
            "b=2",
        ] {
            h.append(SET_COOKIE, c.parse().unwrap());
        }
        // A byte that is not ASCII later in the value must not hide the name.
        h.append(
            SET_COOKIE,
            HeaderValue::from_bytes(b"sandlab_proxy=; Max-Age=0; Path=/sb-x/80/; x=\xe9").unwrap(),
        );
        h.append(SET_COOKIE, "no-equals-sign".parse().unwrap());
        h.insert("clear-site-data", "\"cookies\"".parse().unwrap());
        keep_foreign_set_cookies(&mut h);
        assert!(!h.contains_key("clear-site-data"));
        let left: Vec<_> = h
            .get_all(SET_COOKIE)
            .iter()
            .map(|v| v.to_str().unwrap())
            .collect();
        assert_eq!(left, ["a=1; Path=/", "b=2"]);
    }

    #[test]
    fn hop_by_hop_headers_and_those_connection_names_go() {
        let mut h = HeaderMap::new();
        h.insert(CONNECTION, "keep-alive, x-secret".parse().unwrap());
        h.insert("x-secret", "1".parse().unwrap());
        h.insert(TRANSFER_ENCODING, "chunked".parse().unwrap());
        h.insert("x-kept", "1".parse().unwrap());
        strip_hop_by_hop(&mut h);
        assert_eq!(h.keys().map(|k| k.as_str()).collect::<Vec<_>>(), ["x-kept"]);
    }
}
