//! The server's settings: the `[server]`, `[[pool]]` and `[[lab_pool]]` sections of `sandlab.toml`, then
//! `SANDLAB_*` variables on top, then `sandlab serve`'s flags ([`ServerFlags`]) on top of
//! those: flag > variable > file > default, resolved here without touching the process
//! environment. Every key, its variable and its default are listed in the README
//! ("Configuration"); a bad value stops start-up with one sentence naming the key.
//!
//! Input structs ([`ServerSection`], [`PoolSection`]) are serde with `deny_unknown_fields`;
//! [`ServerConfig::resolve`] turns them into the validated [`ServerConfig`] the code uses.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use sandlab_core::{parse_duration, parse_size, ByteSize, Limits, NetworkMode};
use serde::Deserialize;

mod signup;
pub use signup::SignupMode;

/// `[server]` as written in `sandlab.toml`; every field optional.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSection {
    pub listen: Option<String>,
    /// Where the store is: `sqlite://<path>` or `postgres://…` (`SANDLAB_DATABASE_URL`).
    /// Read by the `sandlab` binary when it opens the store (every command, not only
    /// `serve`); unset is SQLite in the data dir.
    pub database_url: Option<String>,
    pub public_url: Option<String>,
    /// One directory of labs, or a list of them.
    pub labs: Option<OneOrMany>,
    /// How often lab directories that are Git work trees are pulled (`0s`: never).
    pub labs_sync_interval: Option<String>,
    /// The secret a forge's webhook gives `POST /api/v1/labs/sync`.
    pub labs_sync_secret: Option<String>,
    pub session_ttl: Option<String>,
    pub max_sandboxes_per_user: Option<u64>,
    pub login_rate: Option<u32>,
    /// `closed` (default), `invite` or `open` (`SANDLAB_SIGNUP`).
    pub signup: Option<String>,
    pub create_rate: Option<u32>,
    pub default_ttl: Option<String>,
    pub max_ttl: Option<String>,
    pub default_image: Option<String>,
    pub max_file_size: Option<String>,
    pub max_exec_output: Option<String>,
    pub max_body: Option<String>,
    pub scrollback: Option<String>,
    pub terminals_per_sandbox: Option<usize>,
    pub shutdown_grace: Option<String>,
    pub languages: Option<PathBuf>,
    pub execute_network: Option<bool>,
    pub execute_concurrency: Option<usize>,
    pub execute_queue: Option<usize>,
    pub execute_per_user: Option<usize>,
    pub execute_pool: Option<usize>,
    pub execute_anonymous: Option<bool>,
    pub execute_keep: Option<String>,
    pub web_dir: Option<PathBuf>,
    pub header_timeout: Option<String>,
    pub trusted_proxies: Option<Vec<String>>,
    pub metrics_token: Option<String>,
    /// PEM certificate chain and private key: `serve` speaks HTTPS itself.
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    pub proxy_listen: Option<String>,
    pub proxy_url: Option<String>,
    pub base_domain: Option<String>,
    pub proxy_timeout: Option<String>,
    pub proxy_max_body: Option<String>,
    pub proxy_per_sandbox: Option<usize>,
    pub proxy_rate: Option<u32>,
    pub max_connections: Option<usize>,
    pub max_connections_per_address: Option<usize>,
    pub max_streams_per_user: Option<usize>,
    /// `[server.role_limits.<role>]`: the most one sandbox of each role may have.
    pub role_limits: Option<crate::admission::RoleLimitsSections>,
}

/// One `[[pool]]` entry: keep `size` sandboxes of this shape started.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PoolSection {
    pub name: Option<String>,
    pub image: Option<String>,
    pub memory: Option<String>,
    pub cpus: Option<f64>,
    pub pids: Option<u32>,
    pub disk: Option<String>,
    pub network: Option<String>,
    pub size: usize,
}

/// One `[[lab_pool]]` entry: keep `size` sessions of lab `lab` set up ahead of time.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LabPoolSection {
    pub lab: String,
    pub size: usize,
}

/// A warm pool of lab sessions: `size` sessions of the lab `lab` (its slug) are kept set
/// up (nodes made, a cluster brought up, init run) on each replica, so that starting that
/// lab only has to hand one over ([`crate::lab_sessions`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabPool {
    pub lab: String,
    pub size: usize,
}

/// The most warm sessions one `[[lab_pool]]` may keep (each is a whole playground).
pub const MAX_LAB_POOL: usize = 16;

/// Checks the `[[lab_pool]]` sections: a lab slug's form, a size of at most
/// [`MAX_LAB_POOL`], each lab once. Whether the lab exists is known once the catalogue
/// loads (the server logs a pool whose lab it does not have).
pub fn lab_pools(sections: &[LabPoolSection]) -> Result<Vec<LabPool>, ConfigError> {
    let mut pools: Vec<LabPool> = Vec::new();
    for (i, p) in sections.iter().enumerate() {
        let slug_ok = !p.lab.is_empty()
            && p.lab.len() <= 64
            && p.lab
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
        if !slug_ok {
            return Err(ConfigError(format!(
                "lab_pool[{i}].lab is invalid: {:?} is not a lab slug (1 to 64 of a-z, 0-9, '-' and '_')",
                p.lab
            )));
        }
        if p.size > MAX_LAB_POOL {
            return Err(ConfigError(format!(
                "lab_pool[{i}].size is invalid: it must be at most {MAX_LAB_POOL}"
            )));
        }
        if pools.iter().any(|q| q.lab == p.lab) {
            return Err(ConfigError(format!(
                "lab_pool[{i}].lab is invalid: lab {:?} has a pool already",
                p.lab
            )));
        }
        pools.push(LabPool {
            lab: p.lab.clone(),
            size: p.size,
        });
    }
    Ok(pools)
}

/// The command line's settings, which win over the variables and the file.
#[derive(Debug, Default, Clone)]
pub struct ServerFlags {
    /// `--listen`, over `SANDLAB_LISTEN` and `server.listen`.
    pub listen: Option<String>,
    /// `--labs` (repeatable), over `SANDLAB_LABS` and `server.labs`.
    pub labs: Vec<PathBuf>,
}

/// `server.labs`: a path or a list of paths.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum OneOrMany {
    One(PathBuf),
    Many(Vec<PathBuf>),
}

/// A warm-pool profile: sandboxes created ahead of time with this image and limits.
#[derive(Debug, Clone, PartialEq)]
pub struct PoolProfile {
    /// `[a-z0-9_-]{1,32}`; pool sandboxes are owned by `pool:<name>` until claimed.
    pub name: String,
    pub image: String,
    /// A claim gives the sandbox the claimer's ttl.
    pub limits: Limits,
    pub size: usize,
}

/// The validated settings.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    /// The origin browsers use (`http://127.0.0.1:8080` by default): WebSocket `Origin`
    /// checks and whether cookies are `Secure` (`__Host-` prefixed) follow it.
    pub public_url: String,
    pub labs: PathBuf,
    /// Further lab directories (`--labs` given again, a list in `server.labs`, or
    /// `SANDLAB_LABS=a,b`); a slug already taken by an earlier directory is left out.
    pub more_labs: Vec<PathBuf>,
    /// How often lab directories that are Git work trees are pulled; zero: never.
    pub labs_sync_interval: Duration,
    /// The webhook secret of `POST /api/v1/labs/sync`; `None`: webhooks are off.
    pub labs_sync_secret: Option<String>,
    pub session_ttl: Duration,
    pub max_sandboxes_per_user: u64,
    /// Login attempts per minute per client address and per username.
    pub login_rate: u32,
    /// Who may sign up without an admin (`POST /api/v1/auth/signup`).
    pub signup: SignupMode,
    /// Sandbox creations per minute per user.
    pub create_rate: u32,
    pub default_ttl: Duration,
    pub max_ttl: Duration,
    pub default_image: String,
    pub max_file_size: u64,
    pub max_exec_output: u64,
    /// Largest JSON request body.
    pub max_body: u64,
    pub scrollback: usize,
    pub terminals_per_sandbox: usize,
    pub shutdown_grace: Duration,
    pub pools: Vec<PoolProfile>,
    /// `[[lab_pool]]`: warm lab sessions, per replica.
    pub lab_pools: Vec<LabPool>,
    /// Extra language files for `/execute` (the built-in ones are always there).
    pub languages: PathBuf,
    pub execute: crate::code_exec::ExecuteOptions,
    /// Serve the web UI from this built `web/dist` instead of the copy in the binary.
    pub web_dir: Option<PathBuf>,
    /// The most one sandbox of each role may have; requests over it answer 400.
    pub role_limits: crate::admission::RoleLimits,
    /// Header/idle timeout and connection caps of the accept loop; `connections.total` 0
    /// means "from the open-files limit" (resolved when serving starts).
    pub connections: crate::listener::ConnectionLimits,
    /// Event streams and terminals one user may hold open.
    pub max_streams_per_user: usize,
    /// Proxies whose `X-Forwarded-For` names the client.
    pub trusted_proxies: crate::proxies::TrustedProxies,
    /// A bearer token that may read `/metrics` besides admins (for a Prometheus scraper).
    pub metrics_token: Option<String>,
    /// HTTPS: the PEM certificate chain and private key (both or neither).
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    /// The port proxy (`server.proxy_*`, `server.base_domain`).
    pub proxy: crate::port_proxy::ProxySettings,
    /// Single sign-on providers (`[[auth.oidc]]`, resolved by [`crate::oidc::config::resolve`]).
    pub oidc: Vec<crate::oidc::ProviderConfig>,
}

impl ServerConfig {
    /// Every lab directory, the first one first.
    pub fn lab_dirs(&self) -> Vec<PathBuf> {
        std::iter::once(self.labs.clone())
            .chain(self.more_labs.iter().cloned())
            .collect()
    }
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            public_url: "http://127.0.0.1:8080".into(),
            labs: PathBuf::from("labs"),
            more_labs: Vec::new(),
            labs_sync_interval: Duration::from_secs(300),
            labs_sync_secret: None,
            session_ttl: Duration::from_secs(7 * 24 * 3600),
            max_sandboxes_per_user: 5,
            login_rate: 10,
            signup: SignupMode::Closed,
            create_rate: 30,
            default_ttl: Duration::from_secs(3600),
            max_ttl: Duration::from_secs(8 * 3600),
            default_image: "debian".into(),
            max_file_size: 16 << 20,
            max_exec_output: 1 << 20,
            max_body: 1 << 20,
            scrollback: 64 << 10,
            terminals_per_sandbox: 8,
            shutdown_grace: Duration::from_secs(10),
            pools: Vec::new(),
            lab_pools: Vec::new(),
            languages: PathBuf::from("languages"),
            execute: crate::code_exec::ExecuteOptions::default(),
            web_dir: None,
            role_limits: crate::admission::RoleLimits::default(),
            connections: crate::listener::ConnectionLimits {
                total: 0,
                ..crate::listener::ConnectionLimits::default()
            },
            max_streams_per_user: 32,
            trusted_proxies: crate::proxies::TrustedProxies::default(),
            metrics_token: None,
            tls_cert: None,
            tls_key: None,
            proxy: crate::port_proxy::ProxySettings {
                listen: Some(SocketAddr::from(([127, 0, 0, 1], 8081))),
                ..crate::port_proxy::ProxySettings::default()
            },
            oidc: Vec::new(),
        }
    }
}

/// A configuration error: one sentence naming the key.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

type Env<'a> = &'a dyn Fn(&str) -> Option<String>;

fn bad(key: &str, var: &str, detail: impl std::fmt::Display) -> ConfigError {
    ConfigError(format!("server.{key} (or {var}) is invalid: {detail}"))
}

/// The value of `key`: the variable when set, else the file's.
/// `execute_*`: the code execution engine's bounds, pool and anonymous access.
fn execute_settings(
    s: &ServerSection,
    env: Env,
    e: &mut crate::code_exec::ExecuteOptions,
) -> Result<(), ConfigError> {
    let x = |k: &str, v: &str| ConfigError(format!("{k} is invalid: {v}"));
    number(
        env,
        "execute_concurrency",
        "SANDLAB_EXECUTE_CONCURRENCY",
        &s.execute_concurrency,
        &mut e.concurrency,
    )?;
    if !(1..=1024).contains(&e.concurrency) {
        return Err(x("execute_concurrency", "it must be from 1 to 1024"));
    }
    number(
        env,
        "execute_queue",
        "SANDLAB_EXECUTE_QUEUE",
        &s.execute_queue,
        &mut e.queue,
    )?;
    if e.queue > 100_000 {
        return Err(x("execute_queue", "it must be at most 100000"));
    }
    number(
        env,
        "execute_per_user",
        "SANDLAB_EXECUTE_PER_USER",
        &s.execute_per_user,
        &mut e.per_user,
    )?;
    if e.per_user == 0 {
        return Err(x("execute_per_user", "it must be at least 1"));
    }
    number(
        env,
        "execute_pool",
        "SANDLAB_EXECUTE_POOL",
        &s.execute_pool,
        &mut e.pool,
    )?;
    if e.pool > 64 {
        return Err(x("execute_pool", "it must be at most 64"));
    }
    number(
        env,
        "execute_anonymous",
        "SANDLAB_EXECUTE_ANONYMOUS",
        &s.execute_anonymous,
        &mut e.anonymous,
    )?;
    duration(
        env,
        "execute_keep",
        "SANDLAB_EXECUTE_KEEP",
        &s.execute_keep,
        &mut e.keep,
    )?;
    Ok(())
}

fn pick<T: Clone>(env: Env, var: &str, file: &Option<T>) -> Option<Result<String, T>> {
    match env(var) {
        Some(v) => Some(Ok(v)),
        None => file.clone().map(Err),
    }
}

/// As [`pick`], with the flag over both; a flag's value is typed, so `Err` like the file's.
fn pick_flag<T: Clone>(
    flag: &Option<T>,
    env: Env,
    var: &str,
    file: &Option<T>,
) -> Option<Result<String, T>> {
    flag.clone().map(Err).or_else(|| pick(env, var, file))
}

fn string(env: Env, key: &str, var: &str, file: &Option<String>, out: &mut String) {
    let _ = key;
    if let Some(v) = pick(env, var, file) {
        *out = v.unwrap_or_else(|s| s);
    }
}

fn duration(
    env: Env,
    key: &str,
    var: &str,
    file: &Option<String>,
    out: &mut Duration,
) -> Result<(), ConfigError> {
    if let Some(v) = pick(env, var, file) {
        let s = v.unwrap_or_else(|s| s);
        *out = parse_duration(&s).map_err(|e| bad(key, var, e))?;
    }
    Ok(())
}

fn size(
    env: Env,
    key: &str,
    var: &str,
    file: &Option<String>,
    out: &mut u64,
) -> Result<(), ConfigError> {
    if let Some(v) = pick(env, var, file) {
        let s = v.unwrap_or_else(|s| s);
        *out = parse_size(&s).map_err(|e| bad(key, var, e))?;
    }
    Ok(())
}

fn number<T>(
    env: Env,
    key: &str,
    var: &str,
    file: &Option<T>,
    out: &mut T,
) -> Result<(), ConfigError>
where
    T: Clone + std::str::FromStr,
    T::Err: std::fmt::Display,
{
    match pick(env, var, file) {
        Some(Ok(s)) => *out = s.trim().parse().map_err(|e| bad(key, var, e))?,
        Some(Err(v)) => *out = v,
        None => {}
    }
    Ok(())
}

/// `server.proxy_listen` (an address, or `off`; by default the main listener's port + 1),
/// `server.proxy_url`, `server.base_domain` and the proxy's bounds. The proxy's host may
/// never be the UI's: cookies are per host, not per port.
fn proxy_settings(s: &ServerSection, env: Env, c: &mut ServerConfig) -> Result<(), ConfigError> {
    use crate::port_proxy::{split_origin, valid_domain};
    let p = &mut c.proxy;
    let (_, ui_host, _) = split_origin(&c.public_url).unwrap_or(("http", "", None));
    let ui_host = ui_host.to_ascii_lowercase();
    p.listen = match pick(env, "SANDLAB_PROXY_LISTEN", &s.proxy_listen) {
        Some(v) => {
            let v = v.unwrap_or_else(|s| s);
            p.listen_explicit = true;
            if v.trim() == "off" {
                None
            } else {
                Some(v.trim().parse().map_err(|_| {
                    bad(
                        "proxy_listen",
                        "SANDLAB_PROXY_LISTEN",
                        format!("\"{v}\" is not an address like 127.0.0.1:8081, nor off"),
                    )
                })?)
            }
        }
        None => {
            p.listen_explicit = false;
            let port = match c.listen.port() {
                0 => 0,
                n => n.checked_add(1).unwrap_or(0),
            };
            Some(SocketAddr::new(c.listen.ip(), port))
        }
    };
    if let Some(v) = pick(env, "SANDLAB_PROXY_URL", &s.proxy_url) {
        let url = v.unwrap_or_else(|s| s).trim_end_matches('/').to_owned();
        let Some((scheme, host, _)) =
            split_origin(&url).filter(|(s, _, _)| matches!(*s, "http" | "https"))
        else {
            return Err(bad(
                "proxy_url",
                "SANDLAB_PROXY_URL",
                format!("\"{url}\" is not an origin like https://ports.example.com"),
            ));
        };
        let _ = scheme;
        if related_hosts(host, &ui_host) {
            return Err(bad(
                "proxy_url",
                "SANDLAB_PROXY_URL",
                format!("its host {host} is the UI's ({ui_host}), or one of them is under the other: cookies reach between them, so a sandbox's pages would reach the UI's; use another host name, best under another domain"),
            ));
        }
        p.url = Some(url);
    }
    if let Some(v) = pick(env, "SANDLAB_BASE_DOMAIN", &s.base_domain) {
        let domain = v
            .unwrap_or_else(|s| s)
            .trim()
            .trim_matches('.')
            .to_ascii_lowercase();
        if !valid_domain(&domain) {
            return Err(bad(
                "base_domain",
                "SANDLAB_BASE_DOMAIN",
                format!("\"{domain}\" is not a domain like ports.example.com"),
            ));
        }
        if related_hosts(&domain, &ui_host) {
            return Err(bad(
                "base_domain",
                "SANDLAB_BASE_DOMAIN",
                format!("\"{domain}\" is the UI's host ({ui_host}) or one of them is under the other: a sandbox's pages could set cookies the UI takes; use a domain of its own, best another registrable domain"),
            ));
        }
        p.base_domain = Some(domain);
    }
    duration(
        env,
        "proxy_timeout",
        "SANDLAB_PROXY_TIMEOUT",
        &s.proxy_timeout,
        &mut p.timeout,
    )?;
    size(
        env,
        "proxy_max_body",
        "SANDLAB_PROXY_MAX_BODY",
        &s.proxy_max_body,
        &mut p.max_body,
    )?;
    number(
        env,
        "proxy_per_sandbox",
        "SANDLAB_PROXY_PER_SANDBOX",
        &s.proxy_per_sandbox,
        &mut p.per_sandbox,
    )?;
    number(
        env,
        "proxy_rate",
        "SANDLAB_PROXY_RATE",
        &s.proxy_rate,
        &mut p.rate,
    )?;
    if p.timeout < Duration::from_secs(1) {
        return Err(bad(
            "proxy_timeout",
            "SANDLAB_PROXY_TIMEOUT",
            "it must be at least 1s",
        ));
    }
    if p.per_sandbox == 0 {
        return Err(bad(
            "proxy_per_sandbox",
            "SANDLAB_PROXY_PER_SANDBOX",
            "it must be at least 1",
        ));
    }
    if p.rate == 0 {
        return Err(bad(
            "proxy_rate",
            "SANDLAB_PROXY_RATE",
            "it must be at least 1 per minute",
        ));
    }
    Ok(())
}

/// Whether two host names are the same or one is under the other (cookies set by one may
/// then reach the other).
fn related_hosts(a: &str, b: &str) -> bool {
    let (a, b) = (a.to_ascii_lowercase(), b.to_ascii_lowercase());
    a == b || a.ends_with(&format!(".{b}")) || b.ends_with(&format!(".{a}"))
}

impl ServerConfig {
    /// The settings from the file's sections, the process environment and the flags.
    pub fn from_env(
        server: &ServerSection,
        pools: &[PoolSection],
        flags: &ServerFlags,
    ) -> Result<Self, ConfigError> {
        Self::resolve(server, pools, flags, &|k| std::env::var(k).ok())
    }

    /// The settings from the file's sections with `env` looked up for `SANDLAB_*` and
    /// `flags` over both.
    pub fn resolve(
        s: &ServerSection,
        pools: &[PoolSection],
        flags: &ServerFlags,
        env: Env,
    ) -> Result<Self, ConfigError> {
        let mut c = ServerConfig {
            role_limits: crate::admission::RoleLimits::resolve(s.role_limits.as_ref())?,
            ..ServerConfig::default()
        };
        if let Some(v) = pick_flag(&flags.listen, env, "SANDLAB_LISTEN", &s.listen) {
            let v = v.unwrap_or_else(|s| s);
            c.listen = v.parse().map_err(|_| {
                bad(
                    "listen",
                    "SANDLAB_LISTEN",
                    format!("\"{v}\" is not an address like 127.0.0.1:8080"),
                )
            })?;
            c.public_url = format!("http://{}", c.listen);
        }
        string(
            env,
            "public_url",
            "SANDLAB_PUBLIC_URL",
            &s.public_url,
            &mut c.public_url,
        );
        c.public_url = c.public_url.trim_end_matches('/').to_owned();
        if !(c.public_url.starts_with("http://") || c.public_url.starts_with("https://"))
            || c.public_url.len() > 512
            || c.public_url[c.public_url.find("//").map_or(0, |i| i + 2)..].contains('/')
        {
            return Err(bad(
                "public_url",
                "SANDLAB_PUBLIC_URL",
                format!(
                    "\"{}\" is not an origin like https://labs.example.com",
                    c.public_url
                ),
            ));
        }
        let dirs: Option<Vec<PathBuf>> = if !flags.labs.is_empty() {
            Some(flags.labs.clone())
        } else if let Some(v) = env("SANDLAB_LABS") {
            // Commas, not colons: an entry may be a repository URL.
            Some(
                v.split(',')
                    .map(str::trim)
                    .filter(|d| !d.is_empty())
                    .map(PathBuf::from)
                    .collect(),
            )
        } else {
            s.labs.clone().map(|l| match l {
                OneOrMany::One(p) => vec![p],
                OneOrMany::Many(list) => list,
            })
        };
        if let Some(dirs) = dirs {
            let mut dirs = dirs.into_iter();
            let Some(first) = dirs.next() else {
                return Err(bad("labs", "SANDLAB_LABS", "it names no directory"));
            };
            c.labs = first;
            c.more_labs = dirs.collect();
        }
        duration(
            env,
            "labs_sync_interval",
            "SANDLAB_LABS_SYNC_INTERVAL",
            &s.labs_sync_interval,
            &mut c.labs_sync_interval,
        )?;
        if let Some(v) = pick(env, "SANDLAB_LABS_SYNC_SECRET", &s.labs_sync_secret) {
            let secret = v.unwrap_or_else(|t| t);
            if secret.len() < 16 {
                return Err(bad(
                    "labs_sync_secret",
                    "SANDLAB_LABS_SYNC_SECRET",
                    "it must be at least 16 characters",
                ));
            }
            c.labs_sync_secret = Some(secret);
        }
        duration(
            env,
            "session_ttl",
            "SANDLAB_SESSION_TTL",
            &s.session_ttl,
            &mut c.session_ttl,
        )?;
        number(
            env,
            "max_sandboxes_per_user",
            "SANDLAB_MAX_SANDBOXES_PER_USER",
            &s.max_sandboxes_per_user,
            &mut c.max_sandboxes_per_user,
        )?;
        number(
            env,
            "login_rate",
            "SANDLAB_LOGIN_RATE",
            &s.login_rate,
            &mut c.login_rate,
        )?;
        if let Some(v) = pick(env, "SANDLAB_SIGNUP", &s.signup) {
            let v = v.unwrap_or_else(|s| s);
            c.signup = v.parse().map_err(|e| bad("signup", "SANDLAB_SIGNUP", e))?;
        }
        number(
            env,
            "create_rate",
            "SANDLAB_CREATE_RATE",
            &s.create_rate,
            &mut c.create_rate,
        )?;
        duration(
            env,
            "header_timeout",
            "SANDLAB_HEADER_TIMEOUT",
            &s.header_timeout,
            &mut c.connections.header_timeout,
        )?;
        if c.connections.header_timeout < Duration::from_secs(1) {
            return Err(bad(
                "header_timeout",
                "SANDLAB_HEADER_TIMEOUT",
                "it must be at least 1s",
            ));
        }
        if let Some(v) = pick(env, "SANDLAB_TRUSTED_PROXIES", &s.trusted_proxies) {
            let items = match v {
                Ok(csv) => csv.split(',').map(str::to_owned).collect(),
                Err(list) => list,
            };
            let items: Vec<String> = items.into_iter().filter(|i| !i.trim().is_empty()).collect();
            c.trusted_proxies = crate::proxies::TrustedProxies::parse(&items)
                .map_err(|e| bad("trusted_proxies", "SANDLAB_TRUSTED_PROXIES", e))?;
        }
        if let Some(v) = pick(env, "SANDLAB_METRICS_TOKEN", &s.metrics_token) {
            let token = v.unwrap_or_else(|t| t);
            if token.len() < 16 {
                return Err(bad(
                    "metrics_token",
                    "SANDLAB_METRICS_TOKEN",
                    "it must be at least 16 characters",
                ));
            }
            c.metrics_token = Some(token);
        }
        let path = |v: Option<Result<String, PathBuf>>| {
            v.map(|v| v.map(PathBuf::from).unwrap_or_else(|p| p))
        };
        c.tls_cert = path(pick(env, "SANDLAB_TLS_CERT", &s.tls_cert));
        c.tls_key = path(pick(env, "SANDLAB_TLS_KEY", &s.tls_key));
        match (&c.tls_cert, &c.tls_key) {
            (Some(_), None) => {
                return Err(bad(
                    "tls_key",
                    "SANDLAB_TLS_KEY",
                    "tls_cert is set, so the key must be too",
                ))
            }
            (None, Some(_)) => {
                return Err(bad(
                    "tls_cert",
                    "SANDLAB_TLS_CERT",
                    "tls_key is set, so the certificate must be too",
                ))
            }
            (Some(_), Some(_)) if env("SANDLAB_PUBLIC_URL").is_none() && s.public_url.is_none() => {
                // Served over TLS: the derived origin is https.
                if let Some(rest) = c.public_url.strip_prefix("http://") {
                    c.public_url = format!("https://{rest}");
                }
            }
            _ => {}
        }
        number(
            env,
            "max_connections",
            "SANDLAB_MAX_CONNECTIONS",
            &s.max_connections,
            &mut c.connections.total,
        )?;
        number(
            env,
            "max_connections_per_address",
            "SANDLAB_MAX_CONNECTIONS_PER_ADDRESS",
            &s.max_connections_per_address,
            &mut c.connections.per_address,
        )?;
        number(
            env,
            "max_streams_per_user",
            "SANDLAB_MAX_STREAMS_PER_USER",
            &s.max_streams_per_user,
            &mut c.max_streams_per_user,
        )?;
        if c.connections.per_address == 0 || c.max_streams_per_user == 0 {
            return Err(ConfigError(
                "server.max_connections_per_address and server.max_streams_per_user must be at least 1".into(),
            ));
        }
        duration(
            env,
            "default_ttl",
            "SANDLAB_DEFAULT_TTL",
            &s.default_ttl,
            &mut c.default_ttl,
        )?;
        duration(
            env,
            "max_ttl",
            "SANDLAB_MAX_TTL",
            &s.max_ttl,
            &mut c.max_ttl,
        )?;
        string(
            env,
            "default_image",
            "SANDLAB_DEFAULT_IMAGE",
            &s.default_image,
            &mut c.default_image,
        );
        size(
            env,
            "max_file_size",
            "SANDLAB_MAX_FILE_SIZE",
            &s.max_file_size,
            &mut c.max_file_size,
        )?;
        size(
            env,
            "max_exec_output",
            "SANDLAB_MAX_EXEC_OUTPUT",
            &s.max_exec_output,
            &mut c.max_exec_output,
        )?;
        size(
            env,
            "max_body",
            "SANDLAB_MAX_BODY",
            &s.max_body,
            &mut c.max_body,
        )?;
        let mut scrollback = c.scrollback as u64;
        size(
            env,
            "scrollback",
            "SANDLAB_SCROLLBACK",
            &s.scrollback,
            &mut scrollback,
        )?;
        c.scrollback = scrollback as usize;
        number(
            env,
            "terminals_per_sandbox",
            "SANDLAB_TERMINALS_PER_SANDBOX",
            &s.terminals_per_sandbox,
            &mut c.terminals_per_sandbox,
        )?;
        duration(
            env,
            "shutdown_grace",
            "SANDLAB_SHUTDOWN_GRACE",
            &s.shutdown_grace,
            &mut c.shutdown_grace,
        )?;
        if let Some(v) = pick(env, "SANDLAB_LANGUAGES", &s.languages) {
            c.languages = v.map(PathBuf::from).unwrap_or_else(|p| p);
        }
        if let Some(v) = pick(env, "SANDLAB_WEB_DIR", &s.web_dir) {
            let dir = v.map(PathBuf::from).unwrap_or_else(|p| p);
            c.web_dir = Some(
                crate::web::check_dir(&dir).map_err(|e| bad("web_dir", "SANDLAB_WEB_DIR", e))?,
            );
        }
        number(
            env,
            "execute_network",
            "SANDLAB_EXECUTE_NETWORK",
            &s.execute_network,
            &mut c.execute.network,
        )?;
        execute_settings(s, env, &mut c.execute)?;
        proxy_settings(s, env, &mut c)?;
        c.check()?;
        for (i, p) in pools.iter().enumerate() {
            c.pools.push(pool_profile(i, p, &c)?);
        }
        let mut names: Vec<&str> = c.pools.iter().map(|p| p.name.as_str()).collect();
        names.sort_unstable();
        if let Some(w) = names.windows(2).find(|w| w[0] == w[1]) {
            return Err(ConfigError(format!("pool name \"{}\" is used twice", w[0])));
        }
        Ok(c)
    }

    fn check(&self) -> Result<(), ConfigError> {
        let rules: [(bool, &str, &str, &str); 10] = [
            (
                self.session_ttl >= Duration::from_secs(60),
                "session_ttl",
                "SANDLAB_SESSION_TTL",
                "must be at least 1m",
            ),
            (
                self.max_sandboxes_per_user >= 1,
                "max_sandboxes_per_user",
                "SANDLAB_MAX_SANDBOXES_PER_USER",
                "must be at least 1",
            ),
            (
                self.login_rate >= 1,
                "login_rate",
                "SANDLAB_LOGIN_RATE",
                "must be at least 1 per minute",
            ),
            (
                self.create_rate >= 1,
                "create_rate",
                "SANDLAB_CREATE_RATE",
                "must be at least 1 per minute",
            ),
            (
                self.default_ttl >= Duration::from_secs(10),
                "default_ttl",
                "SANDLAB_DEFAULT_TTL",
                "must be at least 10s",
            ),
            (
                self.max_ttl >= self.default_ttl,
                "max_ttl",
                "SANDLAB_MAX_TTL",
                "must not be below default_ttl",
            ),
            (
                self.max_file_size >= 1024 && self.max_file_size <= 1 << 30,
                "max_file_size",
                "SANDLAB_MAX_FILE_SIZE",
                "must be between 1K and 1G",
            ),
            (
                self.max_exec_output >= 1024 && self.max_exec_output <= 64 << 20,
                "max_exec_output",
                "SANDLAB_MAX_EXEC_OUTPUT",
                "must be between 1K and 64M",
            ),
            (
                self.max_body >= 1024 && self.max_body <= 64 << 20,
                "max_body",
                "SANDLAB_MAX_BODY",
                "must be between 1K and 64M",
            ),
            (
                self.scrollback >= 1024
                    && self.scrollback <= 16 << 20
                    && self.terminals_per_sandbox >= 1
                    && self.terminals_per_sandbox <= 64,
                "scrollback",
                "SANDLAB_SCROLLBACK",
                "must be between 1K and 16M (and terminals_per_sandbox between 1 and 64)",
            ),
        ];
        for (ok, key, var, rule) in rules {
            if !ok {
                return Err(bad(key, var, rule));
            }
        }
        Ok(())
    }

    /// Whether cookies must be `Secure` (and the session cookie `__Host-` prefixed).
    pub fn secure_cookies(&self) -> bool {
        self.public_url.starts_with("https://")
    }
}

fn pool_profile(i: usize, p: &PoolSection, c: &ServerConfig) -> Result<PoolProfile, ConfigError> {
    let key = |k: &str| format!("pool[{i}].{k}");
    let err =
        |k: &str, d: &dyn std::fmt::Display| ConfigError(format!("{} is invalid: {d}", key(k)));
    let name = p.name.clone().unwrap_or_else(|| format!("pool{i}"));
    if name.is_empty()
        || name.len() > 32
        || !name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
    {
        return Err(err("name", &"use 1 to 32 of a-z, 0-9, '_' and '-'"));
    }
    let mut limits = Limits::default();
    if let Some(m) = &p.memory {
        limits.memory = ByteSize(parse_size(m).map_err(|e| err("memory", &e))?);
    }
    if let Some(d) = &p.disk {
        limits.disk = ByteSize(parse_size(d).map_err(|e| err("disk", &e))?);
    }
    if let Some(n) = p.cpus {
        limits.cpus = n;
    }
    if let Some(n) = p.pids {
        limits.pids = n;
    }
    if let Some(n) = &p.network {
        limits.network = n.parse::<NetworkMode>().map_err(|e| err("network", &e))?;
    }
    limits.validate().map_err(|e| err("limits", &e))?;
    if p.size > 256 {
        return Err(err("size", &"must be at most 256"));
    }
    Ok(PoolProfile {
        name,
        image: p.image.clone().unwrap_or_else(|| c.default_image.clone()),
        limits,
        size: p.size,
    })
}

#[cfg(test)]
mod tests;
