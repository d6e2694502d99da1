//! Exec and files inside a sandbox, through its agent. File paths are resolved by the
//! agent inside the sandbox, never on the host; a path with `..` is refused outright.

use std::time::Duration;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::header::{
    HeaderName, CONTENT_DISPOSITION, CONTENT_SECURITY_POLICY, CONTENT_TYPE, X_CONTENT_TYPE_OPTIONS,
};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use sandlab_core::SandboxRecord;
use sandlab_core::{parse_duration, SandboxState};
use sandlab_proto::{ExecRequest, FileKind};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::audit::AuditEvent;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{JsonBody, QueryParams};
use crate::metrics as m;
use crate::routes::{load, ListOf};
use crate::run_status::{HostView, RunStatus};
use crate::state::AppState;

/// Default and longest exec timeout.
const DEFAULT_EXEC_TIMEOUT: Duration = Duration::from_secs(60);
const MAX_EXEC_TIMEOUT: Duration = Duration::from_secs(3600);
const MAX_STDIN: usize = 1 << 20;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExecBody {
    /// The program and its arguments (looked up in `PATH`).
    #[schema(example = json!(["sh", "-c", "echo hi"]))]
    pub cmd: Vec<String>,
    /// Text fed to the program's stdin (at most 1 MiB); stdin is empty otherwise.
    pub stdin: Option<String>,
    /// Kill the program after this long, e.g. `10s` (default 60s, at most 1h).
    #[schema(example = "10s")]
    pub timeout: Option<String>,
    /// Extra `KEY=VALUE` environment entries.
    pub env: Option<Vec<String>>,
    /// Working directory inside the sandbox.
    pub cwd: Option<String>,
    /// User to run as (`name`, `uid` or `uid:gid`; default root).
    pub user: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct ExecResult {
    /// As a shell reports it: the code, or 128 + signal, or 124 on timeout.
    pub exit_code: i32,
    /// The signal that killed the program, if one did.
    pub signal: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    pub duration_ms: u64,
    /// `ok` (exit 0), `runtime_error` (other exit or signal), `timeout`, `memory_limit`
    /// (killed for memory) or `output_limit` (output past the server's cap was dropped).
    #[schema(example = "ok")]
    pub status: String,
}

pub(crate) fn running(rec: &SandboxRecord) -> ApiResult<()> {
    if rec.state != SandboxState::Running {
        return Err(ApiError::conflict(format!(
            "The sandbox is {}, not running.",
            rec.state
        )));
    }
    Ok(())
}

/// Runs a command to completion and returns its output.
#[utoipa::path(post, path = "/api/v1/sandboxes/{id}/exec", tag = "sandboxes", request_body = ExecBody,
    params(("id" = String, Path, description = "Sandbox id")),
    responses((status = 200, body = ExecResult), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 413, body = ErrorBody), (status = 502, body = ErrorBody), (status = 507, body = ErrorBody)))]
pub async fn exec_sandbox(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<ExecBody>,
) -> ApiResult<Json<ExecResult>> {
    let rec = load(&state, &caller, &id).await?;
    running(&rec)?;
    if body.cmd.is_empty() || body.cmd[0].is_empty() {
        return Err(ApiError::bad_request(
            "invalid",
            "The field `cmd` must name a program.",
        ));
    }
    let timeout = match &body.timeout {
        Some(t) => parse_duration(t).map_err(|e| {
            ApiError::bad_request("invalid", format!("The field `timeout` is invalid: {e}."))
        })?,
        None => DEFAULT_EXEC_TIMEOUT,
    };
    if timeout.is_zero() || timeout > MAX_EXEC_TIMEOUT {
        return Err(ApiError::bad_request(
            "invalid",
            "The field `timeout` must be between 1ms and 1h.",
        ));
    }
    let stdin = body.stdin.map(String::into_bytes);
    if stdin.as_ref().is_some_and(|s| s.len() > MAX_STDIN) {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            "The field `stdin` is larger than 1 MiB.",
        ));
    }
    let req = ExecRequest {
        argv: body.cmd.clone(),
        env: body.env.unwrap_or_default(),
        cwd: body.cwd,
        user: body.user,
        timeout: Some(timeout),
        tty: None,
        stdin: stdin.is_some(),
    };
    let event = AuditEvent::SandboxExec {
        sandbox: &rec.id,
        cmd: &body.cmd,
    };
    state.audit(Some(&caller.user.id), event).await;
    let manager = state.sandboxes().manager().clone();
    let ooms_before = manager
        .stats(&rec.id)
        .await
        .map(|s| s.oom_kills)
        .unwrap_or(0);
    let agent = state.sandboxes().agent(&rec.id).await?;
    let max = usize::try_from(state.config().max_exec_output).unwrap_or(usize::MAX);
    let out = agent.exec_collect(req, stdin, max).await?;
    let ooms_after = if out.exit.signal == Some(libc::SIGKILL) {
        manager
            .stats(&rec.id)
            .await
            .map(|s| s.oom_kills)
            .unwrap_or(0)
    } else {
        ooms_before
    };
    let status = RunStatus::of(
        &out.exit,
        out.truncated,
        HostView {
            oom_killed: ooms_after > ooms_before,
            cpu_exceeded: false,
        },
    )
    .as_str();
    metrics::counter!(m::EXEC, "status" => status).increment(1);
    Ok(Json(ExecResult {
        exit_code: out.exit.shell_code(),
        signal: out.exit.signal,
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        duration_ms: u64::try_from(out.duration.as_millis()).unwrap_or(u64::MAX),
        status: status.to_owned(),
    }))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct FileQuery {
    /// Absolute path inside the sandbox, without `..` components.
    pub path: String,
    /// Permission bits in octal for a written file (default `644`).
    pub mode: Option<String>,
}

/// Checks a sandbox path: absolute, at most 4096 bytes, no NUL, no `..` component.
pub fn check_path(path: &str) -> ApiResult<()> {
    let ok = path.starts_with('/')
        && path.len() <= 4096
        && !path.contains('\0')
        && !path.split('/').any(|c| c == "..");
    if ok {
        Ok(())
    } else {
        Err(ApiError::bad_request(
            "invalid_path",
            "The path must be absolute, at most 4096 bytes, and must not contain `..` or NUL.",
        ))
    }
}

/// Reads one file (raw bytes).
#[utoipa::path(get, path = "/api/v1/sandboxes/{id}/files", tag = "files", params(("id" = String, Path, description = "Sandbox id"), FileQuery),
    responses((status = 200, content_type = "application/octet-stream", body = Vec<u8>), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 413, body = ErrorBody), (status = 502, body = ErrorBody)))]
pub async fn read_file(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    QueryParams(q): QueryParams<FileQuery>,
) -> ApiResult<Response> {
    check_path(&q.path)?;
    let rec = load(&state, &caller, &id).await?;
    running(&rec)?;
    let agent = state.sandboxes().agent(&rec.id).await?;
    let data = agent
        .read_file(&q.path, state.config().max_file_size)
        .await?;
    Ok((attachment(&q.path), data).into_response())
}

/// Headers that make a browser save a sandbox's file, never render or run it: the bytes
/// are a learner's (hostile to an admin who opens the link), so no sniffing into HTML, a
/// download instead of a page, and a sandboxed, script-less document if one is shown anyway.
fn attachment(path: &str) -> [(HeaderName, String); 4] {
    let name: String = path
        .rsplit('/')
        .next()
        .unwrap_or_default()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
        .take(128)
        .collect();
    let name = if name.is_empty() { "file".into() } else { name };
    [
        (CONTENT_TYPE, "application/octet-stream".into()),
        (X_CONTENT_TYPE_OPTIONS, "nosniff".into()),
        (
            CONTENT_DISPOSITION,
            format!("attachment; filename=\"{name}\""),
        ),
        (
            CONTENT_SECURITY_POLICY,
            "sandbox; default-src 'none'".into(),
        ),
    ]
}

/// Writes one file (raw bytes), creating missing parent directories.
#[utoipa::path(put, path = "/api/v1/sandboxes/{id}/files", tag = "files", params(("id" = String, Path, description = "Sandbox id"), FileQuery),
    request_body(content = Vec<u8>, content_type = "application/octet-stream"),
    responses((status = 204), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 413, body = ErrorBody), (status = 502, body = ErrorBody),
        (status = 507, body = ErrorBody)))]
pub async fn write_file(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    QueryParams(q): QueryParams<FileQuery>,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<StatusCode> {
    check_path(&q.path)?;
    let mode = match &q.mode {
        Some(m) => u32::from_str_radix(m, 8)
            .ok()
            .filter(|m| *m <= 0o7777)
            .ok_or_else(|| {
                ApiError::bad_request(
                    "invalid_query",
                    "The mode must be octal permission bits like 644.",
                )
            })?,
        None => 0o644,
    };
    let rec = load(&state, &caller, &id).await?;
    running(&rec)?;
    let data = body.map_err(|r| {
        if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "body_too_large",
                format!(
                    "The file is larger than the server's limit of {} bytes.",
                    state.config().max_file_size
                ),
            )
        } else {
            ApiError::bad_request("invalid_body", "The request body could not be read.")
        }
    })?;
    let agent = state.sandboxes().agent(&rec.id).await?;
    agent.write_file(&q.path, &data, mode, true).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths() {
        for ok in ["/", "/etc/hosts", "/a/b c/ä", "/x/.../y", "/x/..y"] {
            assert!(check_path(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "etc/hosts",
            "/..",
            "/a/../../etc",
            "/a/..",
            "/a\0b",
            &format!("/{}", "a".repeat(4096)),
        ] {
            assert!(check_path(bad).is_err(), "{bad:?}");
        }
    }
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct DirQuery {
    /// Absolute path of a directory inside the sandbox, without `..` components.
    pub path: String,
}

/// One entry of a directory listing.
#[derive(Serialize, ToSchema)]
pub struct DirEntryView {
    /// The file name (non-UTF-8 bytes shown as U+FFFD).
    pub name: String,
    /// `file`, `dir`, `symlink`, `fifo`, `socket`, `char_device`, `block_device` or `other`.
    #[schema(example = "file")]
    pub kind: String,
    pub size: u64,
    /// Permission bits (`mode & 0o7777`).
    pub mode: u32,
    /// Modification time, Unix milliseconds.
    pub mtime_ms: i64,
}

/// Lists a directory (symlinks are not followed): directories first, then by name.
#[utoipa::path(get, path = "/api/v1/sandboxes/{id}/dir", tag = "files", params(("id" = String, Path, description = "Sandbox id"), DirQuery),
    responses((status = 200, body = ListOf<DirEntryView>), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 413, body = ErrorBody), (status = 502, body = ErrorBody)))]
pub async fn list_dir(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    QueryParams(q): QueryParams<DirQuery>,
) -> ApiResult<Json<ListOf<DirEntryView>>> {
    check_path(&q.path)?;
    let rec = load(&state, &caller, &id).await?;
    running(&rec)?;
    let agent = state.sandboxes().agent(&rec.id).await?;
    let mut entries = agent.list_dir(&q.path).await?;
    entries.sort_by(|a, b| {
        (a.kind != FileKind::Dir)
            .cmp(&(b.kind != FileKind::Dir))
            .then_with(|| a.name.cmp(&b.name))
    });
    let items = entries
        .into_iter()
        .map(|e| DirEntryView {
            kind: serde_json::to_value(e.kind)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_else(|| "other".into()),
            name: e.name,
            size: e.size,
            mode: e.mode,
            mtime_ms: e.mtime.saturating_mul(1000),
        })
        .collect();
    Ok(Json(ListOf { items, next: None }))
}
