//! The port proxy: any TCP port a sandbox listens on, opened in a browser or by a program
//! over HTTP and WebSocket, through the control plane and the sandbox's agent (a `Connect`
//! stream), never by routing the host into the sandbox's network.
//!
//! # Where a port is reached
//!
//! - **Hosts** `{port}-{sandbox}.{base_domain}` (`server.base_domain`, wildcard DNS; the
//!   form E2B and Killercoda use), on the main listener and on the proxy listener alike.
//! - **Paths** `/{sandbox}/{port}/...` on the proxy listener (`server.proxy_listen`, by
//!   default the main port + 1), whose origin is `server.proxy_url`, or on a loopback
//!   setup the public URL's host swapped between `127.0.0.1` and `localhost`.
//!
//! Either way a sandbox's pages are **never on the UI's origin, nor on its host**:
//! cookies are per host, not per port, so a page on the UI's host (any port) could read
//! the CSRF cookie and plant cookies the UI would take. The settings are refused when the
//! proxy's host is the UI's.
//!
//! # Who may open a port
//!
//! Private by default: the sandbox's owner and admins. A program sends its API token as a
//! bearer token (stripped before the request goes on). A browser gets there from the UI:
//! `POST /api/v1/sandboxes/{id}/ports/{port}/open` makes a one-time code (60 s) whose URL
//! (`…/__sandlab/auth?code=…`) the proxy exchanges for an HttpOnly cookie scoped to that
//! port's origin (and path, on the path form). A share link (`…/__sandlab/share?token=…`)
//! makes one port public until it expires or is revoked. Grants live in the store
//! (`port_grants`); checks of grants and of bearer tokens are cached for [`GRANT_CACHE`]
//! (two store queries per request halved the requests a sandbox could serve).
//!
//! # Bounds
//!
//! Per sandbox: at most `per_sandbox` requests and WebSockets at once (503 past it) and a
//! request rate (429); request bodies up to `max_body` (413); the response's head within
//! `timeout` (504). Bodies stream both ways within the agent link's windows, so a 1 GiB
//! download or a client that reads slowly keeps the server's memory flat, and a sandbox
//! that never answers ties up one of its own places, nothing of anyone else's.

mod forward;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, Request, State};
use axum::http::header::{AUTHORIZATION, COOKIE, HOST, LOCATION, REFERER, SET_COOKIE};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sandlab_core::SandboxId;
use sandlab_store::{NewPortGrant, PortGrant, PortGrantKind, Role};
use sha2::{Digest, Sha256};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::error::ApiError;
use crate::ratelimit::RateLimiter;
use crate::state::AppState;

/// The proxy's cookie; its value is a session or share secret.
pub const PROXY_COOKIE: &str = "sandlab_proxy";
/// Paths under this prefix are the proxy's own, on every port's origin.
pub const RESERVED: &str = "/__sandlab/";
/// How long a one-time code from the UI is good for.
pub const CODE_TTL: Duration = Duration::from_secs(60);
/// How long a browser stays signed in to one port's origin.
pub const SESSION_TTL: Duration = Duration::from_secs(12 * 3600);
/// How long a grant checked against the store is trusted before it is checked again.
const GRANT_CACHE: Duration = Duration::from_secs(5);
/// Sign-ins and refused requests one client address may make per minute.
const REFUSALS_PER_MINUTE: u32 = 600;
/// Most `sandlab_proxy` cookies of one request that are checked.
const COOKIES_TRIED: usize = 4;
/// Most cached grant checks.
const GRANT_CACHE_KEYS: usize = 10_000;
/// Cookies of Sandlab's own that never reach a sandbox.
const OUR_COOKIES: [&str; 4] = [
    PROXY_COOKIE,
    "sandlab_session",
    "__Host-sandlab_session",
    crate::auth::CSRF_COOKIE,
];

/// `server.proxy_*` and `server.base_domain`, validated.
#[derive(Clone, Debug, PartialEq)]
pub struct ProxySettings {
    /// Where the path-form listener binds; `None`: no such listener.
    pub listen: Option<SocketAddr>,
    /// Whether `listen` was configured (a failed bind stops start-up) or derived from the
    /// main listener (a failed bind only leaves the path form off).
    pub listen_explicit: bool,
    /// The path-form listener's origin as browsers reach it; `None`: derived once bound.
    pub url: Option<String>,
    /// Hosts `{port}-{sandbox}.{base_domain}`; `None`: the host form is off.
    pub base_domain: Option<String>,
    /// Longest wait for the head of a sandbox's response.
    pub timeout: Duration,
    /// Largest request body passed to a sandbox.
    pub max_body: u64,
    /// Requests and WebSockets one sandbox may have in flight.
    pub per_sandbox: usize,
    /// Requests per minute to one sandbox.
    pub rate: u32,
}

impl Default for ProxySettings {
    fn default() -> Self {
        ProxySettings {
            listen: None,
            listen_explicit: false,
            url: None,
            base_domain: None,
            timeout: Duration::from_secs(60),
            max_body: 64 << 20,
            per_sandbox: 64,
            rate: 60_000,
        }
    }
}

/// The scheme, host and explicit port of an origin like `https://host:8443`.
pub fn split_origin(origin: &str) -> Option<(&str, &str, Option<u16>)> {
    let (scheme, rest) = origin.split_once("://")?;
    if rest.is_empty() || rest.contains('/') {
        return None;
    }
    let (host, after) = match rest.strip_prefix('[') {
        // An IPv6 literal keeps its brackets.
        Some(v6) => rest.split_at(v6.find(']')? + 2),
        None => rest.split_at(rest.find(':').unwrap_or(rest.len())),
    };
    match after.strip_prefix(':') {
        Some(port) => Some((scheme, host, Some(port.parse().ok()?))),
        None if after.is_empty() => Some((scheme, host, None)),
        None => None,
    }
}

/// A host name fit for `base_domain`: dot-separated labels of `a-z0-9-`.
pub fn valid_domain(domain: &str) -> bool {
    !domain.is_empty()
        && domain.len() <= 200
        && domain.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        })
}

/// Results of store checks, trusted for [`GRANT_CACHE`]; at most [`GRANT_CACHE_KEYS`]
/// (past it, all are dropped and checked again).
struct Checked<K, V> {
    map: Mutex<HashMap<K, (V, Instant)>>,
}

impl<K, V> Default for Checked<K, V> {
    fn default() -> Self {
        Checked {
            map: Mutex::new(HashMap::new()),
        }
    }
}

impl<K: std::hash::Hash + Eq, V: Clone> Checked<K, V> {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<K, (V, Instant)>> {
        self.map.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn get(&self, key: &K) -> Option<V> {
        let map = self.lock();
        map.get(key)
            .filter(|(_, at)| at.elapsed() < GRANT_CACHE)
            .map(|(v, _)| v.clone())
    }

    fn put(&self, key: K, value: V) {
        let mut map = self.lock();
        if map.len() >= GRANT_CACHE_KEYS {
            map.clear();
        }
        map.insert(key, (value, Instant::now()));
    }

    fn clear(&self) {
        self.lock().clear();
    }
}

/// The loopback name a browser keeps cookies apart from: `127.0.0.1` ↔ `localhost`.
pub fn loopback_twin(host: &str) -> Option<&'static str> {
    match host {
        "127.0.0.1" | "[::1]" => Some("localhost"),
        "localhost" => Some("127.0.0.1"),
        _ => None,
    }
}

/// One port of one sandbox, as a request named it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    pub sandbox: SandboxId,
    pub port: u16,
    /// `""` on the host form, `/{sandbox}/{port}` on the path form.
    pub prefix: String,
    /// The rest of the path and the query, starting with `/`.
    pub rest: String,
}

/// Parses `{port}-{sandbox}` (the first label of a proxied host).
fn parse_label(label: &str) -> Option<(u16, SandboxId)> {
    let (port, id) = label.split_once('-')?;
    Some((parse_port(port)?, id.parse::<SandboxId>().ok()?))
}

/// A port as written in a URL: 1 to 65535 in decimal, no sign, no leading zero.
fn parse_port(port: &str) -> Option<u16> {
    if port.is_empty()
        || port.len() > 5
        || port.starts_with('0')
        || !port.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    port.parse().ok()
}

/// `/{sandbox}/{port}` and the rest of the path, from a path-form path.
fn parse_path(path_and_query: &str) -> Option<(SandboxId, u16, String)> {
    let rest = path_and_query.strip_prefix('/')?;
    let (id, rest) = rest.split_once('/')?;
    let id = id.parse::<SandboxId>().ok()?;
    let end = rest.find(['/', '?']).unwrap_or(rest.len());
    let port = parse_port(&rest[..end])?;
    let tail = &rest[end..];
    let tail = if tail.starts_with('/') {
        tail.to_owned()
    } else {
        format!("/{tail}")
    };
    Some((id, port, tail))
}

/// The proxy: its settings, its origin once known, and its per-sandbox bounds.
pub struct PortProxy {
    settings: ProxySettings,
    scheme: String,
    /// The public URL's host and explicit port (host-form URLs use both).
    public_host: String,
    public_port: Option<u16>,
    /// The path-form origin, once the proxy listener is bound (or from `url`).
    path_origin: OnceLock<String>,
    inflight: Mutex<HashMap<SandboxId, Arc<Semaphore>>>,
    rate: RateLimiter,
    /// Grant checks by the secret's hash (a miss is cached too).
    grants: Checked<String, Option<PortGrant>>,
    /// Bearer tokens found to open a sandbox: (token hash, sandbox) → user.
    bearers: Checked<(String, SandboxId), String>,
    /// Sign-ins and refused requests per client address.
    refusals: RateLimiter,
    idle: Arc<forward::Idle>,
}

impl PortProxy {
    pub fn new(settings: ProxySettings, public_url: &str) -> PortProxy {
        let (scheme, host, port) = split_origin(public_url).unwrap_or(("http", "127.0.0.1", None));
        let proxy = PortProxy {
            scheme: scheme.to_owned(),
            public_host: host.to_owned(),
            public_port: port,
            path_origin: OnceLock::new(),
            inflight: Mutex::new(HashMap::new()),
            rate: RateLimiter::new(settings.rate),
            grants: Checked::default(),
            bearers: Checked::default(),
            refusals: RateLimiter::new(REFUSALS_PER_MINUTE),
            idle: Arc::default(),
            settings,
        };
        if let Some(url) = &proxy.settings.url {
            let _ = proxy.path_origin.set(url.clone());
        }
        proxy
    }

    pub fn settings(&self) -> &ProxySettings {
        &self.settings
    }

    /// Records where the proxy listener is reachable once it is bound: `server.proxy_url`
    /// when set, else the public URL's loopback twin with the bound port. `None` when
    /// neither fits (a public host that is not loopback needs `server.proxy_url`).
    pub fn bound(&self, addr: SocketAddr) -> Option<&str> {
        if self.path_origin.get().is_none() {
            let twin = loopback_twin(&self.public_host)?;
            let _ = self
                .path_origin
                .set(format!("{}://{twin}:{}", self.scheme, addr.port()));
        }
        self.path_origin.get().map(String::as_str)
    }

    /// Whether ports can be opened at all.
    pub fn enabled(&self) -> bool {
        self.settings.base_domain.is_some() || self.path_origin.get().is_some()
    }

    /// The URL of a port's root (no trailing slash): the host form when there is a base
    /// domain, else the path form; `None` when the proxy is off.
    pub fn base_url(&self, sandbox: &SandboxId, port: u16) -> Option<String> {
        if let Some(domain) = &self.settings.base_domain {
            let port_part = self
                .public_port
                .map(|p| format!(":{p}"))
                .unwrap_or_default();
            return Some(format!(
                "{}://{port}-{sandbox}.{domain}{port_part}",
                self.scheme
            ));
        }
        self.path_origin
            .get()
            .map(|origin| format!("{origin}/{sandbox}/{port}"))
    }

    /// The port a request's `Host` names on the host form.
    pub fn target_from_host(&self, headers: &HeaderMap, uri: &Uri) -> Option<Target> {
        let domain = self.settings.base_domain.as_deref()?;
        let host = headers.get(HOST)?.to_str().ok()?;
        let host = host.rsplit_once(':').map_or(host, |(h, p)| {
            if p.bytes().all(|b| b.is_ascii_digit()) {
                h
            } else {
                host
            }
        });
        let label = host.strip_suffix(domain)?.strip_suffix('.')?;
        if label.contains('.') {
            return None;
        }
        let (port, sandbox) = parse_label(&label.to_ascii_lowercase())?;
        Some(Target {
            sandbox,
            port,
            prefix: String::new(),
            rest: uri.path_and_query().map_or("/", |p| p.as_str()).to_owned(),
        })
    }

    /// Whether the request's `Host` is the base domain or a name under it.
    fn under_base_domain(&self, headers: &HeaderMap) -> bool {
        let (Some(domain), Some(host)) = (
            self.settings.base_domain.as_deref(),
            headers.get(HOST).and_then(|h| h.to_str().ok()),
        ) else {
            return false;
        };
        let host = host
            .rsplit_once(':')
            .map_or(host, |(h, _)| h)
            .to_ascii_lowercase();
        host == domain || host.ends_with(&format!(".{domain}"))
    }

    /// Whether the port's origin is one a browser keeps `Secure` cookies for: https, or
    /// loopback (http://localhost and 127.0.0.1 count as secure contexts).
    fn secure_origin(&self, target: &Target) -> bool {
        let origin = if target.prefix.is_empty() {
            None
        } else {
            self.path_origin.get()
        };
        match origin.and_then(|o| split_origin(o)) {
            Some((scheme, host, _)) => scheme == "https" || loopback_twin(host).is_some(),
            None => self.scheme == "https",
        }
    }

    /// The port a path-form request names.
    pub fn target_from_path(&self, uri: &Uri) -> Option<Target> {
        let pq = uri.path_and_query().map_or("/", |p| p.as_str());
        let (sandbox, port, rest) = parse_path(pq)?;
        Some(Target {
            prefix: format!("/{sandbox}/{port}"),
            sandbox,
            port,
            rest,
        })
    }

    /// A place for one request to `sandbox`; `None` when it has `per_sandbox` in flight.
    fn place(&self, sandbox: &SandboxId) -> Option<OwnedSemaphorePermit> {
        let sem = {
            let mut map = self.inflight.lock().unwrap_or_else(|p| p.into_inner());
            if map.len() > 4096 {
                let max = self.settings.per_sandbox;
                map.retain(|_, s| s.available_permits() < max);
            }
            map.entry(sandbox.clone())
                .or_insert_with(|| Arc::new(Semaphore::new(self.settings.per_sandbox)))
                .clone()
        };
        sem.try_acquire_owned().ok()
    }

    /// The grant behind a presented secret, from the cache or the store.
    async fn grant(&self, state: &AppState, secret: &str) -> Option<PortGrant> {
        let key = hex::encode(Sha256::digest(secret.as_bytes()));
        let grant = match self.grants.get(&key) {
            Some(g) => g,
            None => {
                let g = state
                    .store()
                    .authenticate_port_grant(secret)
                    .await
                    .ok()
                    .flatten();
                self.grants.put(key, g.clone());
                g
            }
        };
        grant.filter(|g| g.expires_at_ms > sandlab_runtime::manager::now_ms() as i64)
    }

    /// Forgets cached checks (a share was revoked).
    pub fn forget_grants(&self) {
        self.grants.clear();
    }

    /// The cookie that signs a browser in to `target`'s origin.
    fn cookie(&self, target: &Target, secret: &str, max_age: Duration) -> String {
        let path = if target.prefix.is_empty() {
            "/".to_owned()
        } else {
            format!("{}/", target.prefix)
        };
        // In a tab of the UI the port's page is a frame of another site: only a
        // `SameSite=None` cookie (which must be `Secure`; browsers allow that on https and
        // on loopback) is sent with its requests. Partitioned: kept per embedding site.
        let same_site = if self.secure_origin(target) {
            "Secure; SameSite=None; Partitioned"
        } else {
            "SameSite=Lax"
        };
        format!(
            "{PROXY_COOKIE}={secret}; Path={path}; HttpOnly; {same_site}; Max-Age={}",
            max_age.as_secs()
        )
    }
}

/// Whether a path is fit to land on after a sign-in: absolute, not `//host` (which a
/// browser would take for another origin), no backslash or control characters.
pub fn landing_path(path: &str) -> bool {
    path.starts_with('/')
        && !path.starts_with("//")
        && !path.contains('\\')
        && path.len() <= 2048
        && !path.chars().any(char::is_control)
}

/// On the main listener: a request for a proxied host goes to the proxy, anything else
/// to the app.
pub async fn by_host(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let proxy = state.proxy();
    match proxy.target_from_host(req.headers(), req.uri()) {
        Some(target) => handle(state, target, req).await,
        // Another name under the proxy's domain is not the UI: never serve it there.
        None if proxy.under_base_domain(req.headers()) => not_a_port(),
        None => next.run(req).await,
    }
}

fn not_a_port() -> Response {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "not_found",
        "This is Sandlab's port proxy: hosts look like {port}-{sandbox}.<domain>.",
    )
    .into_response()
}

/// The proxy listener: the host form, else the path form, else (a page's absolute link
/// like `/static/app.js`) back under the prefix its `Referer` names.
pub async fn listener_app(State(state): State<AppState>, req: Request) -> Response {
    let proxy = state.proxy();
    if let Some(target) = proxy.target_from_host(req.headers(), req.uri()) {
        return handle(state, target, req).await;
    }
    if let Some(target) = proxy.target_from_path(req.uri()) {
        if target.rest.starts_with('?') || req.uri().path() == target.prefix {
            // `/{sandbox}/{port}` without its slash: relative links would miss the port.
            let q = req
                .uri()
                .query()
                .map(|q| format!("?{q}"))
                .unwrap_or_default();
            return redirect(
                StatusCode::PERMANENT_REDIRECT,
                &format!("{}/{q}", target.prefix),
            );
        }
        return handle(state, target, req).await;
    }
    let from_referer = req
        .headers()
        .get(REFERER)
        .and_then(|r| r.to_str().ok())
        .and_then(|r| r.parse::<Uri>().ok())
        .and_then(|r| proxy.target_from_path(&r));
    if let Some(page) = from_referer {
        let pq = req.uri().path_and_query().map_or("/", |p| p.as_str());
        return redirect(
            StatusCode::TEMPORARY_REDIRECT,
            &format!("{}{pq}", page.prefix),
        );
    }
    ApiError::new(
        StatusCode::NOT_FOUND,
        "not_found",
        "This is Sandlab's port proxy: addresses look like /{sandbox}/{port}/.",
    )
    .into_response()
}

fn redirect(status: StatusCode, location: &str) -> Response {
    let mut resp = status.into_response();
    if let Ok(v) = HeaderValue::from_str(location) {
        resp.headers_mut().insert(LOCATION, v);
    }
    resp
}

/// One request for one port: the proxy's own paths, then the caller's right, then on.
async fn handle(state: AppState, target: Target, req: Request) -> Response {
    let client = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip().to_string());
    let addr = client.clone().unwrap_or_default();
    // Sign-ins and refusals cost store queries: bounded per client address.
    let limited = || {
        ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            "Too many sign-ins or refused requests to the port proxy from this address; wait a minute.",
        )
        .into_response()
    };
    if target.rest.starts_with(RESERVED) {
        if state.proxy().refusals.check(&addr).is_err() {
            return limited();
        }
        let query = req.uri().query().unwrap_or("").to_owned();
        drop(req);
        return own_path(&state, &target, &query).await;
    }
    let principal = match authorize(&state, &target, req.headers()).await {
        Ok(p) => p,
        Err(e) => {
            if state.proxy().refusals.check(&addr).is_err() {
                return limited();
            }
            return e.into_response();
        }
    };
    forward::forward(state, target, req, principal, client).await
}

/// `…/__sandlab/auth?code=` and `…/__sandlab/share?token=`.
async fn own_path(state: &AppState, target: &Target, query: &str) -> Response {
    let proxy = state.proxy();
    let param = |name: &str| {
        query
            .split('&')
            .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('=').map(str::to_owned))
    };
    let rest = target.rest.split('?').next().unwrap_or("");
    let refused =
        |msg: &str| ApiError::forbidden("proxy_forbidden", msg.to_owned()).into_response();
    match rest {
        "/__sandlab/auth" => {
            let Some(code) = param("code") else {
                return refused("The sign-in link has no code; open the port again from Sandlab.");
            };
            let grant = match state
                .store()
                .redeem_port_code(&code, target.sandbox.as_str(), target.port)
                .await
            {
                Ok(Some(g)) => g,
                Ok(None) => {
                    return refused("This sign-in link was used already, has expired or is for another port; open the port again from Sandlab.")
                }
                Err(e) => return ApiError::from(e).into_response(),
            };
            if grant.sandbox != target.sandbox.as_str() || grant.port != target.port {
                return refused("This sign-in link is for another port.");
            }
            let session = NewPortGrant {
                kind: PortGrantKind::Session,
                sandbox: grant.sandbox.clone(),
                port: grant.port,
                user_id: grant.user_id.clone(),
                path: "/".into(),
                ttl: SESSION_TTL,
            };
            let secret = match state.store().create_port_grant(session).await {
                Ok((_, secret)) => secret,
                Err(e) => return ApiError::from(e).into_response(),
            };
            let mut resp = redirect(
                StatusCode::SEE_OTHER,
                &format!("{}{}", target.prefix, grant.path),
            );
            set_cookie(&mut resp, &proxy.cookie(target, &secret, SESSION_TTL));
            resp
        }
        "/__sandlab/share" => {
            let Some(token) = param("token") else {
                return refused("The share link has no token.");
            };
            let share = proxy.grant(state, &token).await;
            let Some(share) = share.filter(|g| {
                g.kind == PortGrantKind::Share
                    && g.sandbox == target.sandbox.as_str()
                    && g.port == target.port
            }) else {
                return refused("This share link has expired or was revoked.");
            };
            let left_ms = share.expires_at_ms - sandlab_runtime::manager::now_ms() as i64;
            let left = Duration::from_millis(left_ms.max(1) as u64);
            let mut resp = redirect(
                StatusCode::SEE_OTHER,
                &format!("{}{}", target.prefix, share.path),
            );
            set_cookie(&mut resp, &proxy.cookie(target, &token, left));
            resp
        }
        _ => ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            "Paths under /__sandlab/ are the proxy's own.",
        )
        .into_response(),
    }
}

fn set_cookie(resp: &mut Response, cookie: &str) {
    if let Ok(v) = HeaderValue::from_str(cookie) {
        resp.headers_mut().append(SET_COOKIE, v);
    }
}

/// Who a proxied request is from, once authorized.
pub(crate) struct Principal {
    /// `user:<id>` or `grant:<id>`: upstream connections are reused for one principal only.
    pub key: String,
    /// The `Authorization` header was our bearer token and must not go on.
    pub strip_authorization: bool,
    /// What to check again while a WebSocket stays open.
    pub proof: Proof,
}

/// What let a request in.
pub(crate) enum Proof {
    Bearer(String),
    Grant(String),
}

impl Proof {
    /// Whether it still opens `target` (a share revoked or expired, a token deleted, a
    /// user disabled: no longer), within the caches' few seconds.
    pub(crate) async fn still_opens(&self, state: &AppState, target: &Target) -> bool {
        match self {
            Proof::Grant(secret) => state
                .proxy()
                .grant(state, secret)
                .await
                .is_some_and(|g| g.sandbox == target.sandbox.as_str() && g.port == target.port),
            Proof::Bearer(token) => {
                let Ok(Some((user, _))) = state.store().authenticate_token(token).await else {
                    return false;
                };
                let owner = (user.role != Role::Admin).then_some(user.id.as_str());
                state
                    .store()
                    .get_sandbox(&target.sandbox, owner)
                    .await
                    .is_ok()
            }
        }
    }
}

/// A browser request another site's page made (not a navigation): on the host form every
/// port is its own origin but all are one site, so without this a page of one sandbox
/// could use the visitor's sign-in to another. Fetch metadata says which; a WebSocket must
/// come from the port's own origin.
fn from_another_page(headers: &HeaderMap) -> bool {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let cross = matches!(header("sec-fetch-site"), Some("cross-site" | "same-site"))
        && header("sec-fetch-mode") != Some("navigate");
    let foreign_socket = headers.contains_key(axum::http::header::UPGRADE)
        && match (header("origin"), header("host")) {
            (Some(origin), Some(host)) => origin.split_once("://").map(|(_, h)| h) != Some(host),
            _ => false,
        };
    cross || foreign_socket
}

/// Whether the caller may reach `target`: a proxy cookie granting that port, or the API
/// token of the sandbox's owner or an admin.
async fn authorize(
    state: &AppState,
    target: &Target,
    headers: &HeaderMap,
) -> Result<Principal, ApiError> {
    let proxy = state.proxy();
    if let Some(token) = headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|t| t.starts_with(sandlab_store::TOKEN_PREFIX))
    {
        let key = (
            hex::encode(Sha256::digest(token.as_bytes())),
            target.sandbox.clone(),
        );
        if let Some(user) = proxy.bearers.get(&key) {
            return Ok(Principal {
                key: format!("user:{user}"),
                strip_authorization: true,
                proof: Proof::Bearer(token.to_owned()),
            });
        }
        let Ok(Some((user, _))) = state.store().authenticate_token(token).await else {
            return Err(ApiError::unauthorized("The API token is not valid."));
        };
        let owner = (user.role != Role::Admin).then_some(user.id.as_str());
        return match state.store().get_sandbox(&target.sandbox, owner).await {
            Ok(_) => {
                proxy.bearers.put(key, user.id.clone());
                Ok(Principal {
                    key: format!("user:{}", user.id),
                    strip_authorization: true,
                    proof: Proof::Bearer(token.to_owned()),
                })
            }
            Err(_) => Err(ApiError::not_found("sandbox")),
        };
    }
    if from_another_page(headers) {
        return Err(ApiError::forbidden(
            "proxy_forbidden",
            "A page of another site may not use this port's sign-in; open the port itself.",
        ));
    }
    for secret in cookies(headers, PROXY_COOKIE).take(COOKIES_TRIED) {
        if let Some(g) = proxy.grant(state, secret).await {
            if g.sandbox == target.sandbox.as_str() && g.port == target.port {
                // A signed-in user's connections are theirs whichever tab made them; a
                // share link's are the link's.
                let key = match (&g.kind, &g.user_id) {
                    (PortGrantKind::Session, Some(user)) => format!("user:{user}"),
                    _ => format!("grant:{}", g.id),
                };
                return Ok(Principal {
                    key,
                    strip_authorization: false,
                    proof: Proof::Grant(secret.to_owned()),
                });
            }
        }
    }
    Err(ApiError::forbidden(
        "proxy_forbidden",
        "This port is private to its sandbox's owner: open it from Sandlab, or send an API token as a bearer token.",
    ))
}

/// Every value of cookie `name` (a browser may send several, from different paths).
fn cookies<'a>(headers: &'a HeaderMap, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(move |kv| {
            let (k, v) = kv.trim().split_once('=')?;
            (k == name).then_some(v)
        })
}

/// The `Cookie` header without Sandlab's own cookies; `None` when nothing is left.
fn foreign_cookies(headers: &HeaderMap) -> Option<HeaderValue> {
    let kept: Vec<&str> = headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .map(str::trim)
        .filter(|kv| {
            let name = kv.split('=').next().unwrap_or("");
            !kv.is_empty() && !OUR_COOKIES.contains(&name)
        })
        .collect();
    if kept.is_empty() {
        return None;
    }
    HeaderValue::from_str(&kept.join("; ")).ok()
}

/// Makes a one-time code for `user` to open `port` of `sandbox` at `path`; the URL that
/// signs in and lands there.
pub async fn open_url(
    state: &AppState,
    user: &str,
    sandbox: &SandboxId,
    port: u16,
    path: &str,
) -> Result<(String, i64), ApiError> {
    let base = state.proxy().base_url(sandbox, port).ok_or_else(disabled)?;
    let (grant, secret) = state
        .store()
        .create_port_grant(NewPortGrant {
            kind: PortGrantKind::Code,
            sandbox: sandbox.to_string(),
            port,
            user_id: Some(user.to_owned()),
            path: path.to_owned(),
            ttl: CODE_TTL,
        })
        .await?;
    Ok((
        format!("{base}/__sandlab/auth?code={secret}"),
        grant.expires_at_ms,
    ))
}

/// The error when no form of the proxy is configured.
pub fn disabled() -> ApiError {
    ApiError::new(
        StatusCode::CONFLICT,
        "proxy_disabled",
        "The port proxy is off on this server: the operator sets server.proxy_url or server.base_domain (see the operators' guide).",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn proxy(base_domain: Option<&str>) -> PortProxy {
        PortProxy::new(
            ProxySettings {
                base_domain: base_domain.map(str::to_owned),
                ..ProxySettings::default()
            },
            "http://127.0.0.1:8080",
        )
    }

    #[test]
    fn hosts_name_a_port_and_a_sandbox() {
        let p = proxy(Some("ports.example.com"));
        let id = SandboxId::generate();
        let mut h = HeaderMap::new();
        h.insert(
            HOST,
            format!("8080-{id}.ports.example.com:8443").parse().unwrap(),
        );
        let t = p.target_from_host(&h, &"/a?b=1".parse().unwrap()).unwrap();
        assert_eq!(
            (t.port, &t.sandbox, t.rest.as_str(), t.prefix.as_str()),
            (8080, &id, "/a?b=1", "")
        );
        for bad in [
            format!("0-{id}.ports.example.com"),
            format!("080-{id}.ports.example.com"),
            format!("99999-{id}.ports.example.com"),
            format!("80-{id}.other.example.com"),
            format!("x.80-{id}.ports.example.com"),
            "80-sb-nope.ports.example.com".to_owned(),
            "ports.example.com".to_owned(),
            "127.0.0.1:8080".to_owned(),
        ] {
            let mut h = HeaderMap::new();
            h.insert(HOST, bad.parse().unwrap());
            assert!(
                p.target_from_host(&h, &"/".parse().unwrap()).is_none(),
                "{bad}"
            );
        }
        assert_eq!(
            p.base_url(&id, 80).unwrap(),
            format!("http://80-{id}.ports.example.com:8080")
        );
    }

    #[test]
    fn paths_name_a_sandbox_and_a_port() {
        let p = proxy(None);
        let id = SandboxId::generate();
        let t = p
            .target_from_path(&format!("/{id}/3000/x/y?z").parse().unwrap())
            .unwrap();
        assert_eq!((t.port, t.rest.as_str()), (3000, "/x/y?z"));
        assert_eq!(t.prefix, format!("/{id}/3000"));
        let t = p
            .target_from_path(&format!("/{id}/3000").parse().unwrap())
            .unwrap();
        assert_eq!(t.rest, "/");
        assert!(p
            .target_from_path(&"/api/v1/sandboxes".parse().unwrap())
            .is_none());
        assert!(p
            .target_from_path(&format!("/{id}/0/").parse().unwrap())
            .is_none());
        assert!(p
            .target_from_path(&format!("/{id}/70000/").parse().unwrap())
            .is_none());
        // Not bound yet, and no proxy_url: off.
        assert!(p.base_url(&id, 80).is_none());
        assert_eq!(
            p.bound("127.0.0.1:9001".parse().unwrap()),
            Some("http://localhost:9001")
        );
        assert_eq!(
            p.base_url(&id, 80).unwrap(),
            format!("http://localhost:9001/{id}/80")
        );
    }

    #[test]
    fn a_public_host_that_is_not_loopback_needs_a_proxy_url() {
        let p = PortProxy::new(ProxySettings::default(), "https://labs.example.com");
        assert_eq!(p.bound("0.0.0.0:8081".parse().unwrap()), None);
        assert!(!p.enabled());
    }

    #[test]
    fn our_cookies_never_reach_the_sandbox() {
        let mut h = HeaderMap::new();
        h.append(
            COOKIE,
            "a=1; sandlab_session=s; sandlab_proxy=p".parse().unwrap(),
        );
        h.append(
            COOKIE,
            "sandlab_csrf=c; b=2; __Host-sandlab_session=x"
                .parse()
                .unwrap(),
        );
        assert_eq!(foreign_cookies(&h).unwrap(), "a=1; b=2");
        assert_eq!(cookies(&h, PROXY_COOKIE).collect::<Vec<_>>(), ["p"]);
        let mut only_ours = HeaderMap::new();
        only_ours.insert(COOKIE, "sandlab_proxy=p".parse().unwrap());
        assert!(foreign_cookies(&only_ours).is_none());
    }

    #[test]
    fn pages_of_other_sites_cannot_ride_a_sign_in() {
        let h = |pairs: &[(&'static str, &str)]| {
            let mut m = HeaderMap::new();
            for (k, v) in pairs {
                m.insert(*k, v.parse().unwrap());
            }
            m
        };
        // Another port's page fetching this one (same site, not a navigation): refused.
        assert!(from_another_page(&h(&[
            ("sec-fetch-site", "same-site"),
            ("sec-fetch-mode", "cors")
        ])));
        assert!(from_another_page(&h(&[
            ("sec-fetch-site", "cross-site"),
            ("sec-fetch-mode", "no-cors")
        ])));
        // A navigation (the UI's frame, a link) and the page's own requests: allowed.
        assert!(!from_another_page(&h(&[
            ("sec-fetch-site", "cross-site"),
            ("sec-fetch-mode", "navigate")
        ])));
        assert!(!from_another_page(&h(&[
            ("sec-fetch-site", "same-origin"),
            ("sec-fetch-mode", "cors")
        ])));
        assert!(!from_another_page(&h(&[])));
        // A WebSocket from another origin: refused; from its own: allowed.
        let ws = |origin: &str| {
            h(&[
                ("upgrade", "websocket"),
                ("host", "80-sb-aaaaaaaaaaaa.p.example"),
                ("origin", origin),
            ])
        };
        assert!(from_another_page(&ws(
            "https://81-sb-aaaaaaaaaaaa.p.example"
        )));
        assert!(!from_another_page(&ws(
            "https://80-sb-aaaaaaaaaaaa.p.example"
        )));
    }

    #[test]
    fn landing_paths_stay_on_the_origin() {
        for ok in ["/", "/a/b?c=d", "/%2F%2Fx"] {
            assert!(landing_path(ok), "{ok}");
        }
        for bad in ["", "a", "//evil.example", "/\\evil", "/a\nb", "https://x"] {
            assert!(!landing_path(bad), "{bad}");
        }
    }

    #[test]
    fn origins_split_into_scheme_host_and_port() {
        assert_eq!(
            split_origin("http://127.0.0.1:8080"),
            Some(("http", "127.0.0.1", Some(8080)))
        );
        assert_eq!(
            split_origin("https://labs.example.com"),
            Some(("https", "labs.example.com", None))
        );
        assert_eq!(
            split_origin("http://[::1]:80"),
            Some(("http", "[::1]", Some(80)))
        );
        assert_eq!(split_origin("http://a/b"), None);
        assert!(valid_domain("ports.example.com"));
        assert!(
            !valid_domain("Ports.example.com") && !valid_domain("a..b") && !valid_domain("-a.b")
        );
    }
}
