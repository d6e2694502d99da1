//! A sandbox's ports and downloads: the ports listening inside it, a one-time sign-in to
//! open one through the port proxy ([`crate::port_proxy`]), public share links, and a
//! directory as a `.tar.gz`.

use std::time::Duration;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::header::{
    CONTENT_DISPOSITION, CONTENT_SECURITY_POLICY, CONTENT_TYPE, X_CONTENT_TYPE_OPTIONS,
};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use bytes::Bytes;
use sandlab_core::parse_duration;
use sandlab_proto::{AgentClient, FileKind};
use sandlab_store::{NewPortGrant, PortGrant, PortGrantKind};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::audit::AuditEvent;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{JsonOrEmpty, QueryParams};
use crate::routes::sandbox_exec::{check_path, running, DirQuery};
use crate::routes::{load, ListOf};
use crate::state::AppState;

/// Default life of a share link.
const DEFAULT_SHARE_TTL: Duration = Duration::from_secs(3600);
/// Most bytes (before compression) one archive may hold.
const MAX_ARCHIVE_BYTES: u64 = 1 << 30;
/// Most files and directories one archive may hold.
const MAX_ARCHIVE_ENTRIES: usize = 100_000;
/// Archives made at once on this server.
const MAX_ARCHIVES: usize = 4;
static ARCHIVES: std::sync::LazyLock<std::sync::Arc<tokio::sync::Semaphore>> =
    std::sync::LazyLock::new(|| std::sync::Arc::new(tokio::sync::Semaphore::new(MAX_ARCHIVES)));

/// A TCP port listening inside a sandbox.
#[derive(Serialize, ToSchema)]
pub struct PortView {
    pub port: u16,
    /// The address it is bound to (`0.0.0.0`, `::`, `127.0.0.1`, ...).
    pub address: String,
    /// The port's address through the proxy (for a program with a bearer token; a browser
    /// opens it with `POST …/ports/{port}/open`); `null` when the proxy is off.
    pub url: Option<String>,
}

/// Lists the TCP ports listening inside the sandbox now.
#[utoipa::path(get, path = "/api/v1/sandboxes/{id}/ports", tag = "ports",
    params(("id" = String, Path, description = "Sandbox id")),
    responses((status = 200, body = ListOf<PortView>), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 502, body = ErrorBody)))]
pub async fn list_ports(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<ListOf<PortView>>> {
    let rec = load(&state, &caller, &id).await?;
    running(&rec)?;
    let agent = state.sandboxes().agent(&rec.id).await?;
    let ports = agent.list_ports().await?;
    let proxy = state.proxy();
    let items = ports
        .into_iter()
        .map(|p| PortView {
            url: proxy.base_url(&rec.id, p.port).map(|u| format!("{u}/")),
            port: p.port,
            address: p.address,
        })
        .collect();
    Ok(Json(ListOf { items, next: None }))
}

#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct OpenPortBody {
    /// Where to land, an absolute path with an optional query (default `/`).
    #[schema(example = "/")]
    pub path: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct OpenPortView {
    /// A one-time URL on the proxy's origin: it signs the browser in to this port (a cookie
    /// of that origin only) and redirects to `path`.
    pub url: String,
    /// The URL works once, until then.
    pub expires_at_ms: i64,
}

fn port_param(port: &str) -> ApiResult<u16> {
    port.parse::<u16>().ok().filter(|p| *p > 0).ok_or_else(|| {
        ApiError::bad_request(
            "invalid_port",
            "The port must be a number between 1 and 65535.",
        )
    })
}

fn landing(path: Option<String>) -> ApiResult<String> {
    let path = path.unwrap_or_else(|| "/".into());
    if !crate::port_proxy::landing_path(&path) {
        return Err(ApiError::bad_request(
            "invalid_path",
            "The field `path` must be an absolute path like /admin, at most 2048 bytes.",
        ));
    }
    Ok(path)
}

/// Makes a one-time URL that opens a port of the sandbox in the browser.
#[utoipa::path(post, path = "/api/v1/sandboxes/{id}/ports/{port}/open", tag = "ports", request_body = OpenPortBody,
    params(("id" = String, Path, description = "Sandbox id"), ("port" = u16, Path, description = "TCP port inside the sandbox")),
    responses((status = 200, body = OpenPortView), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn open_port(
    State(state): State<AppState>,
    caller: Caller,
    Path((id, port)): Path<(String, String)>,
    JsonOrEmpty(body): JsonOrEmpty<OpenPortBody>,
) -> ApiResult<Json<OpenPortView>> {
    let port = port_param(&port)?;
    let path = landing(body.path)?;
    let rec = load(&state, &caller, &id).await?;
    running(&rec)?;
    let (url, expires_at_ms) =
        crate::port_proxy::open_url(&state, &caller.user.id, &rec.id, port, &path).await?;
    Ok(Json(OpenPortView { url, expires_at_ms }))
}

#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct ShareBody {
    /// How long the link works, e.g. `30m`, `1h` (default 1h, at most 30 days).
    #[schema(example = "1h")]
    pub ttl: Option<String>,
    /// Where the link opens (default `/`).
    pub path: Option<String>,
}

/// A public link to one port.
#[derive(Serialize, ToSchema)]
pub struct ShareView {
    pub id: String,
    pub port: u16,
    pub path: String,
    /// The link; only in the answer that made it (it holds the secret, which is not kept).
    pub url: Option<String>,
    pub created_at_ms: i64,
    pub expires_at_ms: i64,
}

fn share_view(g: PortGrant, url: Option<String>) -> ShareView {
    ShareView {
        id: g.id,
        port: g.port,
        path: g.path,
        url,
        created_at_ms: g.created_at_ms,
        expires_at_ms: g.expires_at_ms,
    }
}

/// Makes a link that opens one port of the sandbox to anyone who has it, until it expires.
#[utoipa::path(post, path = "/api/v1/sandboxes/{id}/ports/{port}/shares", tag = "ports", request_body = ShareBody,
    params(("id" = String, Path, description = "Sandbox id"), ("port" = u16, Path, description = "TCP port inside the sandbox")),
    responses((status = 201, body = ShareView), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn share_port(
    State(state): State<AppState>,
    caller: Caller,
    Path((id, port)): Path<(String, String)>,
    JsonOrEmpty(body): JsonOrEmpty<ShareBody>,
) -> ApiResult<(StatusCode, Json<ShareView>)> {
    let port = port_param(&port)?;
    let path = landing(body.path)?;
    let ttl = match &body.ttl {
        Some(t) => parse_duration(t).map_err(|e| {
            ApiError::bad_request("invalid", format!("The field `ttl` is invalid: {e}."))
        })?,
        None => DEFAULT_SHARE_TTL,
    };
    if ttl.is_zero() || ttl > sandlab_store::MAX_PORT_GRANT_TTL {
        return Err(ApiError::bad_request(
            "invalid",
            "The field `ttl` must be between 1s and 30 days.",
        ));
    }
    let rec = load(&state, &caller, &id).await?;
    running(&rec)?;
    let base = state
        .proxy()
        .base_url(&rec.id, port)
        .ok_or_else(crate::port_proxy::disabled)?;
    let (grant, secret) = state
        .store()
        .create_port_grant(NewPortGrant {
            kind: PortGrantKind::Share,
            sandbox: rec.id.to_string(),
            port,
            user_id: Some(caller.user.id.clone()),
            path,
            ttl,
        })
        .await?;
    let event = AuditEvent::PortShare {
        sandbox: &rec.id,
        port,
        share: &grant.id,
        expires_at_ms: grant.expires_at_ms,
    };
    state.audit(Some(&caller.user.id), event).await;
    let url = format!("{base}/__sandlab/share?token={secret}");
    Ok((StatusCode::CREATED, Json(share_view(grant, Some(url)))))
}

/// The sandbox's share links that have not expired.
#[utoipa::path(get, path = "/api/v1/sandboxes/{id}/shares", tag = "ports",
    params(("id" = String, Path, description = "Sandbox id")),
    responses((status = 200, body = ListOf<ShareView>), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn list_shares(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<ListOf<ShareView>>> {
    let rec = load(&state, &caller, &id).await?;
    let shares = state.store().list_port_shares(rec.id.as_str()).await?;
    let items = shares.into_iter().map(|g| share_view(g, None)).collect();
    Ok(Json(ListOf { items, next: None }))
}

/// Revokes a share link at once.
#[utoipa::path(delete, path = "/api/v1/sandboxes/{id}/shares/{share}", tag = "ports",
    params(("id" = String, Path, description = "Sandbox id"), ("share" = String, Path, description = "Share id")),
    responses((status = 204), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn delete_share(
    State(state): State<AppState>,
    caller: Caller,
    Path((id, share)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let rec = load(&state, &caller, &id).await?;
    state
        .store()
        .delete_port_share(rec.id.as_str(), &share)
        .await?;
    state.proxy().forget_grants();
    let event = AuditEvent::PortUnshare {
        sandbox: &rec.id,
        share: &share,
    };
    state.audit(Some(&caller.user.id), event).await;
    Ok(StatusCode::NO_CONTENT)
}

/// One file or directory of an archive, found before the download starts.
struct Entry {
    /// Relative to the archive's root, `/`-separated.
    name: String,
    path: String,
    dir: bool,
    mode: u32,
    mtime: i64,
}

/// Walks `root` through the agent: every directory and regular file below it (symlinks
/// and special files are left out), within the archive's limits.
async fn walk(agent: &AgentClient, root: &str, max_file: u64) -> ApiResult<Vec<Entry>> {
    let mut out = Vec::new();
    let mut total = 0u64;
    let mut dirs = vec![(root.trim_end_matches('/').to_owned(), String::new())];
    while let Some((dir, rel)) = dirs.pop() {
        let path = if dir.is_empty() {
            "/".into()
        } else {
            dir.clone()
        };
        let mut entries = agent.list_dir(&path).await?;
        entries.sort_by(|a, b| a.name.cmp(&b.name));
        for e in entries {
            let full = format!("{dir}/{}", e.name);
            let name = if rel.is_empty() {
                e.name.clone()
            } else {
                format!("{rel}/{}", e.name)
            };
            match e.kind {
                FileKind::Dir => dirs.push((full.clone(), name.clone())),
                FileKind::File => {
                    if e.size > max_file {
                        return Err(ApiError::new(
                            StatusCode::PAYLOAD_TOO_LARGE,
                            "too_large",
                            format!("{full} is larger than the server's file limit of {max_file} bytes."),
                        ));
                    }
                    total += e.size;
                }
                _ => continue,
            }
            out.push(Entry {
                dir: e.kind == FileKind::Dir,
                name,
                path: full,
                mode: e.mode,
                mtime: e.mtime,
            });
            if out.len() > MAX_ARCHIVE_ENTRIES || total > MAX_ARCHIVE_BYTES {
                return Err(ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "too_large",
                    format!("The directory holds more than {MAX_ARCHIVE_ENTRIES} entries or 1 GiB; download a smaller one."),
                ));
            }
        }
    }
    Ok(out)
}

/// Downloads a directory of the sandbox as a `.tar.gz`.
#[utoipa::path(get, path = "/api/v1/sandboxes/{id}/archive", tag = "files", params(("id" = String, Path, description = "Sandbox id"), DirQuery),
    responses((status = 200, content_type = "application/gzip", body = Vec<u8>), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 413, body = ErrorBody), (status = 502, body = ErrorBody)))]
pub async fn download_archive(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    QueryParams(q): QueryParams<DirQuery>,
) -> ApiResult<Response> {
    check_path(&q.path)?;
    let rec = load(&state, &caller, &id).await?;
    running(&rec)?;
    // Each archive holds a file of up to `max_file_size` and a compressor at a time.
    let place = ARCHIVES.clone().try_acquire_owned().map_err(|_| {
        ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "busy",
            format!("{MAX_ARCHIVES} archives are being made already; try again in a moment."),
        )
    })?;
    let agent = state.sandboxes().agent(&rec.id).await?;
    let root = agent.stat(&q.path).await?;
    if root.kind != FileKind::Dir {
        return Err(ApiError::bad_request(
            "not_a_directory",
            format!(
                "{} is not a directory; download a file with GET /files.",
                q.path
            ),
        ));
    }
    let max_file = state.config().max_file_size;
    let entries = walk(&agent, &q.path, max_file).await?;
    let base: String = match q.path.trim_end_matches('/').rsplit('/').next() {
        Some(n) if !n.is_empty() => n.to_owned(),
        _ => "root".to_owned(),
    };
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(4);
    let prefix = base.clone();
    tokio::spawn(async move {
        let _place = place;
        if let Err(e) = write_archive(&agent, &prefix, entries, max_file, &tx).await {
            let _ = tx.send(Err(e)).await;
        }
    });
    let name: String = base
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
        .take(120)
        .collect();
    let name = if name.is_empty() {
        "archive".into()
    } else {
        name
    };
    let stream = tokio_stream_from(rx);
    Ok((
        [
            (CONTENT_TYPE, "application/gzip".to_owned()),
            (X_CONTENT_TYPE_OPTIONS, "nosniff".to_owned()),
            (
                CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}.tar.gz\""),
            ),
            (
                CONTENT_SECURITY_POLICY,
                "sandbox; default-src 'none'".to_owned(),
            ),
        ],
        Body::from_stream(stream),
    )
        .into_response())
}

fn tokio_stream_from(
    mut rx: tokio::sync::mpsc::Receiver<Result<Bytes, std::io::Error>>,
) -> impl futures::Stream<Item = Result<Bytes, std::io::Error>> {
    futures::stream::poll_fn(move |cx| rx.poll_recv(cx))
}

/// Reads each file through the agent and sends the archive in compressed chunks; an error
/// ends the download early (the client sees a truncated file, never a wrong one).
async fn write_archive(
    agent: &AgentClient,
    prefix: &str,
    entries: Vec<Entry>,
    max_file: u64,
    tx: &tokio::sync::mpsc::Sender<Result<Bytes, std::io::Error>>,
) -> std::io::Result<()> {
    use flate2::write::GzEncoder;
    let gz = GzEncoder::new(Vec::with_capacity(64 * 1024), flate2::Compression::fast());
    let mut tar = tar::Builder::new(gz);
    tar.mode(tar::HeaderMode::Deterministic);
    let mut root = tar::Header::new_gnu();
    root.set_entry_type(tar::EntryType::Directory);
    root.set_mode(0o755);
    root.set_size(0);
    tar.append_data(&mut root, format!("{prefix}/"), std::io::empty())?;
    for e in entries {
        let mut h = tar::Header::new_gnu();
        h.set_mode(e.mode & 0o7777);
        h.set_mtime(u64::try_from(e.mtime).unwrap_or(0));
        let name = format!("{prefix}/{}", e.name);
        if e.dir {
            h.set_entry_type(tar::EntryType::Directory);
            h.set_size(0);
            tar.append_data(&mut h, format!("{name}/"), std::io::empty())?;
        } else {
            let data = agent
                .read_file(&e.path, max_file)
                .await
                .map_err(|err| std::io::Error::other(format!("{}: {err}", e.path)))?;
            h.set_entry_type(tar::EntryType::Regular);
            h.set_size(data.len() as u64);
            // Compressing up to a whole file is CPU work: off the runtime's threads.
            tar = tokio::task::spawn_blocking(move || -> std::io::Result<_> {
                tar.append_data(&mut h, &name, data.as_slice())?;
                Ok(tar)
            })
            .await
            .map_err(std::io::Error::other)??;
        }
        let chunk = std::mem::take(tar.get_mut().get_mut());
        if !chunk.is_empty() && tx.send(Ok(Bytes::from(chunk))).await.is_err() {
            return Ok(()); // The client went away.
        }
    }
    let rest = tar.into_inner()?.finish()?;
    let _ = tx.send(Ok(Bytes::from(rest))).await;
    Ok(())
}
