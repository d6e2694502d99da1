//! `POST /execute` (SPEC section 8) and `GET /runtimes`; the work is in
//! [`crate::code_exec`].

use axum::extract::State;
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;

use crate::audit::AuditEvent;
use crate::auth::Caller;
use crate::code_exec::{self, ExecuteRequest, ExecuteResponse};
use crate::error::{ApiResult, ErrorBody};
use crate::extract::JsonBody;
use crate::state::AppState;

/// Compiles (when the language has a step for it) and runs the files in a sandbox of
/// their own, then removes it. Jobs wait in a bounded queue: 429 when the caller has too
/// many, 503 when it is full.
#[utoipa::path(post, path = "/api/v1/execute", tag = "execute", request_body = ExecuteRequest,
    responses((status = 200, body = ExecuteResponse), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 413, body = ErrorBody), (status = 429, body = ErrorBody),
        (status = 502, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn execute_code(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(req): JsonBody<ExecuteRequest>,
) -> ApiResult<Json<ExecuteResponse>> {
    let event = AuditEvent::CodeExecute {
        language: &req.language,
        files: req.files.len(),
    };
    state.audit(Some(&caller.user.id), event).await;
    let out = code_exec::execute(state.execute(), &caller.user.id, req).await?;
    Ok(Json(out))
}

/// A language this server can run.
#[derive(Debug, Serialize, ToSchema)]
pub struct RuntimeView {
    #[schema(example = "python")]
    pub language: String,
    #[schema(example = "Python")]
    pub display: String,
    #[schema(example = "3.11.2")]
    pub version: String,
    pub aliases: Vec<String>,
    /// Whether a compile step runs before the program.
    pub compiled: bool,
    /// The file a request's first file is called when it names none.
    #[schema(example = "main.py")]
    pub file: String,
    /// The image it runs in.
    pub image: String,
    /// Judge0 CE ids it answers to.
    pub judge0: Vec<u32>,
}

/// The languages this server can run now (their image is built), by name.
#[utoipa::path(get, path = "/api/v1/runtimes", tag = "execute",
    responses((status = 200, body = [RuntimeView]), (status = 401, body = ErrorBody)))]
pub async fn list_runtimes(
    State(state): State<AppState>,
    _caller: Caller,
) -> ApiResult<Json<Vec<RuntimeView>>> {
    let langs = state.execute().available();
    Ok(Json(
        langs
            .into_iter()
            .map(|l| RuntimeView {
                language: l.name.clone(),
                display: l.display_name().to_owned(),
                version: l.version.clone(),
                aliases: l.aliases.clone(),
                compiled: l.compile.is_some(),
                file: l.file.clone(),
                image: l.image.clone(),
                judge0: l.judge0.clone(),
            })
            .collect(),
    ))
}

/// An interactive run over a WebSocket, in Piston's `/api/v2/connect` protocol: send
/// `{"type":"init", ...an execute request in Piston's form...}`, then
/// `{"type":"data","stream":"stdin","data":"..."}`, `{"type":"signal","signal":"SIGINT"}`
/// or `{"type":"eof"}`; output arrives as `{"type":"data","stream":"stdout",...}` while
/// the program runs, each stage ends with `{"type":"exit",...}`, and the socket closes
/// with 4999 when the job is done (docs/guide/code-execution.md).
#[utoipa::path(get, path = "/api/v1/execute/connect", tag = "execute",
    responses((status = 101, description = "Switching to the WebSocket protocol"), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 426, body = ErrorBody), (status = 429, body = ErrorBody)))]
pub async fn execute_connect(
    State(state): State<AppState>,
    caller: Caller,
    headers: axum::http::HeaderMap,
    ws: Result<
        axum::extract::ws::WebSocketUpgrade,
        axum::extract::ws::rejection::WebSocketUpgradeRejection,
    >,
) -> ApiResult<axum::response::Response> {
    let exec = crate::routes::ExecCaller {
        owner: caller.user.id.clone(),
        admin: caller.is_admin(),
        via_cookie: caller.via_cookie(),
        user_id: Some(caller.user.id.clone()),
    };
    crate::routes::upgrade(state, exec, &headers, ws.ok())
}
