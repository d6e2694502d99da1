//! The code execution APIs other products defined, at the paths their clients call:
//! Piston v2 (`/api/v2/runtimes`, `/api/v2/execute`, the `/api/v2/connect` WebSocket)
//! and Judge0 CE (`/submissions`, `/submissions/batch`, `/languages`, `/statuses`,
//! `/config_info`, `/about`, `/version`). Each answers in its own dialect, errors
//! included; the work is in [`crate::code_exec`]'s engine, shared with `/api/v1/execute`.
//!
//! Authentication is Sandlab's: a bearer token (or, for Judge0's clients, the token in
//! `X-Auth-Token`), or a login session. With `execute_anonymous` on, a request without
//! credentials runs as `anonymous`, as Piston and Judge0 do on a trusted network.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use crate::audit::AuditEvent;
use crate::auth;
use crate::code_exec::judge0::{self, View};
use crate::code_exec::{piston, submissions, Busy, CodeExecError};
use crate::state::AppState;

/// Who runs code through a compatible API.
#[derive(Debug, Clone)]
pub struct ExecCaller {
    /// The user id, or `anonymous`.
    pub owner: String,
    pub admin: bool,
    /// Signed in by the UI's cookie (a WebSocket then checks its Origin).
    pub via_cookie: bool,
    pub user_id: Option<String>,
}

/// The caller, or the sentence saying why there is none (each dialect words its 401).
pub struct ExecAuth(pub Result<ExecCaller, String>);

impl FromRequestParts<AppState> for ExecAuth {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<ExecAuth, Self::Rejection> {
        Ok(ExecAuth(exec_caller(parts, state).await))
    }
}

async fn exec_caller(parts: &mut Parts, state: &AppState) -> Result<ExecCaller, String> {
    // Programs send no Origin; a browser always does on a cross-site request. A page on
    // another site must not run code here through its visitors' browsers, which could
    // reach a server on their network (anonymous access) or carry its cookie.
    if parts.headers.contains_key(axum::http::header::ORIGIN)
        && !auth::origin_allowed(state, &parts.headers)
    {
        return Err("Requests from another site's pages are not accepted here.".into());
    }
    // Judge0's clients send their key in X-Auth-Token: read it as a bearer token.
    if !parts
        .headers
        .contains_key(axum::http::header::AUTHORIZATION)
    {
        if let Some(t) = parts.headers.get("x-auth-token").cloned() {
            let value = format!(
                "Bearer {}",
                t.to_str()
                    .map_err(|_| "The X-Auth-Token header is not valid text.")?
            );
            parts.headers.insert(
                axum::http::header::AUTHORIZATION,
                value
                    .parse()
                    .map_err(|_| "The X-Auth-Token header is not valid text.")?,
            );
        }
    }
    match auth::authenticate(state, parts).await {
        Ok(Some(c)) => Ok(ExecCaller {
            owner: c.user.id.clone(),
            admin: c.is_admin(),
            via_cookie: c.via_cookie(),
            user_id: Some(c.user.id),
        }),
        Ok(None) if state.config().execute.anonymous => Ok(ExecCaller {
            owner: "anonymous".into(),
            admin: false,
            via_cookie: false,
            user_id: None,
        }),
        Ok(None) => Err("This server needs an API token (Authorization: Bearer <token>, or X-Auth-Token: <token>).".into()),
        Err(e) => Err(e.message),
    }
}

// ----- Piston v2

/// Piston's error: `{"message": ...}`.
fn piston_error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(json!({ "message": message.into() }))).into_response()
}

fn piston_from(e: CodeExecError) -> Response {
    let api = crate::error::ApiError::from(e);
    piston_error(api.status, api.message)
}

/// Piston's `GET /api/v2/runtimes`.
pub async fn piston_runtimes(State(state): State<AppState>, auth: ExecAuth) -> Response {
    if let Err(m) = auth.0 {
        return piston_error(StatusCode::UNAUTHORIZED, m);
    }
    let list: Vec<piston::PistonRuntime> = state
        .execute()
        .available()
        .into_iter()
        .map(piston::PistonRuntime::from)
        .collect();
    Json(list).into_response()
}

/// Piston's `POST /api/v2/execute`; the body is JSON whatever its content type says
/// (Piston's Node.js client sends it as text).
pub async fn piston_execute(
    State(state): State<AppState>,
    auth: ExecAuth,
    body: Bytes,
) -> Response {
    let caller = match auth.0 {
        Ok(c) => c,
        Err(m) => return piston_error(StatusCode::UNAUTHORIZED, m),
    };
    let req: piston::PistonRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            return piston_error(
                StatusCode::BAD_REQUEST,
                format!("The body is not a valid execute request: {e}."),
            )
        }
    };
    let engine = state.execute();
    let (language, version) = match piston::language_of(&req) {
        Ok(x) => x,
        Err(e) => return piston_from(e),
    };
    let lang = match engine.resolve(language, Some(version)) {
        Ok(l) => l.clone(),
        Err(CodeExecError::UnknownLanguage { .. }) => {
            return piston_error(
                StatusCode::BAD_REQUEST,
                format!("{language}-{version} runtime is unknown"),
            )
        }
        Err(e) => return piston_from(e),
    };
    let files = req.files.as_ref().map_or(0, Vec::len);
    let job = match piston::job(req, lang, engine.options().network) {
        Ok(j) => j,
        Err(e) => return piston_from(e),
    };
    let ticket = match engine.admit(&caller.owner) {
        Ok(t) => t,
        Err(b) => return piston_from(b.into()),
    };
    state
        .audit(
            caller.user_id.as_deref(),
            AuditEvent::CodeExecute {
                language: &job.lang.name,
                files,
            },
        )
        .await;
    let lang = job.lang.clone();
    match engine.run(ticket, job, None).await {
        Ok(out) => Json(piston::response(&lang, &out)).into_response(),
        Err(e) => piston_from(e),
    }
}

// ----- Judge0 CE

/// Judge0's error: `{"error": ...}`.
fn judge0_error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(json!({ "error": message.into() }))).into_response()
}

fn judge0_busy(b: Busy) -> Response {
    let api = crate::error::ApiError::from(CodeExecError::Busy(b));
    judge0_error(api.status, api.message)
}

fn judge0_store(e: sandlab_store::Error) -> Response {
    let api = crate::error::ApiError::from(e);
    judge0_error(api.status, api.message)
}

fn flag(q: &HashMap<String, String>, key: &str) -> bool {
    q.get(key).is_some_and(|v| v == "true" || v == "1")
}

/// `GET /submissions/{token}` and friends: what a stored submission shows.
fn render(
    state: &AppState,
    sub: &sandlab_store::Submission,
    fields: &[&str],
    base64: bool,
) -> Value {
    let stored: Option<judge0::Stored> = serde_json::from_str(&sub.request).ok();
    let result: Option<judge0::StoredResult> = sub
        .result
        .as_deref()
        .and_then(|r| serde_json::from_str(r).ok());
    let Some(stored) = stored else {
        return json!({ "token": sub.token, "status": judge0::status_json(13), "message": "The stored submission is unreadable." });
    };
    View {
        token: &sub.token,
        stored: &stored,
        result: result.as_ref(),
        state_status: match sub.state {
            sandlab_store::SubmissionState::Queued => 1,
            sandlab_store::SubmissionState::Running => 2,
            sandlab_store::SubmissionState::Done => 13,
        },
        created_at_ms: sub.created_at_ms,
        finished_at_ms: sub.finished_at_ms,
        langs: state.execute().languages(),
    }
    .render(fields, base64)
}

/// A checked submission with its token and queue place.
type Admitted = (String, judge0::Stored, crate::code_exec::engine::Ticket);

/// Checks one body and takes a queue place for it: `Ok` with what to submit, or the
/// 422 field errors as JSON.
async fn admit_one(
    state: &AppState,
    caller: &ExecCaller,
    body: Value,
    base64: bool,
) -> Result<Result<Admitted, Value>, Box<Response>> {
    let engine = state.execute();
    let body: judge0::SubmissionBody = match serde_json::from_value(body) {
        Ok(b) => b,
        Err(e) => {
            return Ok(Err(
                json!({ "error": format!("The submission is not valid: {e}.") }),
            ))
        }
    };
    let stored = match judge0::check(body, base64, engine.languages(), engine.options().network) {
        Ok(s) => s,
        Err(errors) => return Ok(Err(json!(errors))),
    };
    let lang = engine
        .languages()
        .by_judge0(stored.language_id)
        .expect("checked");
    if !engine.is_available(lang) {
        return Ok(Err(json!({ "language_id": [format!(
            "language with id {} needs the image {}, which is not built on this server",
            stored.language_id, lang.image
        )] })));
    }
    let (count, bytes) = state
        .store()
        .submission_usage(&caller.owner)
        .await
        .map_err(|e| Box::new(judge0_store(e)))?;
    if count >= judge0::MAX_STORED || bytes >= judge0::MAX_STORED_BYTES {
        return Err(Box::new(judge0_error(
            StatusCode::TOO_MANY_REQUESTS,
            "You have as many submissions stored as one caller may; delete some (DELETE /submissions/{token}) or wait for them to expire.",
        )));
    }
    let ticket = engine
        .admit(&caller.owner)
        .map_err(|b| Box::new(judge0_busy(b)))?;
    Ok(Ok((judge0::new_token(), stored, ticket)))
}

/// Judge0's `POST /submissions` (`base64_encoded`, `wait`, `fields`).
pub async fn judge0_create(
    State(state): State<AppState>,
    auth: ExecAuth,
    Query(q): Query<HashMap<String, String>>,
    body: Bytes,
) -> Response {
    let caller = match auth.0 {
        Ok(c) => c,
        Err(m) => return judge0_error(StatusCode::UNAUTHORIZED, m),
    };
    let fields = match judge0::fields(q.get("fields").map(String::as_str)) {
        Ok(f) => f,
        Err(m) => return judge0_error(StatusCode::BAD_REQUEST, m),
    };
    let base64 = flag(&q, "base64_encoded");
    let body: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => {
            return judge0_error(
                StatusCode::BAD_REQUEST,
                format!("The body is not JSON: {e}."),
            )
        }
    };
    let (token, stored, ticket) = match admit_one(&state, &caller, body, base64).await {
        Ok(Ok(x)) => x,
        Ok(Err(errors)) => return (StatusCode::UNPROCESSABLE_ENTITY, Json(errors)).into_response(),
        Err(resp) => return *resp,
    };
    let lang_name = state
        .execute()
        .languages()
        .by_judge0(stored.language_id)
        .map(|l| l.name.clone())
        .unwrap_or_default();
    state
        .audit(
            caller.user_id.as_deref(),
            AuditEvent::CodeExecute {
                language: &lang_name,
                files: 1,
            },
        )
        .await;
    let handles = match submissions::submit(
        state.execute(),
        &caller.owner,
        vec![(token.clone(), stored, ticket)],
    )
    .await
    {
        Ok(h) => h,
        Err(e) => return judge0_store(e),
    };
    if !flag(&q, "wait") {
        return (StatusCode::CREATED, Json(json!({ "token": token }))).into_response();
    }
    for h in handles {
        let _ = h.await;
    }
    match state
        .store()
        .get_submissions(std::slice::from_ref(&token))
        .await
    {
        Ok(subs) => match subs.first() {
            Some(sub) => (
                StatusCode::CREATED,
                Json(render(&state, sub, &fields, base64)),
            )
                .into_response(),
            None => judge0_error(StatusCode::NOT_FOUND, "The submission is gone."),
        },
        Err(e) => judge0_store(e),
    }
}

/// The one submission a GET or DELETE names, if the caller may see it, with the fields
/// asked for; else the Judge0 error to answer.
async fn one_submission(
    state: &AppState,
    auth: ExecAuth,
    token: &str,
    q: &HashMap<String, String>,
) -> Result<(sandlab_store::Submission, Vec<&'static str>), Response> {
    let caller = auth
        .0
        .map_err(|m| judge0_error(StatusCode::UNAUTHORIZED, m))?;
    let fields = judge0::fields(q.get("fields").map(String::as_str))
        .map_err(|m| judge0_error(StatusCode::BAD_REQUEST, m))?;
    let missing = || {
        judge0_error(
            StatusCode::NOT_FOUND,
            "There is no submission with this token.",
        )
    };
    if !judge0::valid_token(token) {
        return Err(missing());
    }
    let owner = (!caller.admin).then_some(caller.owner.as_str());
    let token = token.to_owned();
    match submissions::visible(state.store(), std::slice::from_ref(&token), owner).await {
        Ok(mut v) => v
            .pop()
            .flatten()
            .map(|sub| (sub, fields))
            .ok_or_else(missing),
        Err(e) => Err(judge0_store(e)),
    }
}

/// Judge0's `GET /submissions/{token}`.
pub async fn judge0_get(
    State(state): State<AppState>,
    auth: ExecAuth,
    Path(token): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    match one_submission(&state, auth, &token, &q).await {
        Ok((sub, fields)) => {
            Json(render(&state, &sub, &fields, flag(&q, "base64_encoded"))).into_response()
        }
        Err(resp) => resp,
    }
}

/// Judge0's `DELETE /submissions/{token}`: a finished submission of the caller's.
pub async fn judge0_delete(
    State(state): State<AppState>,
    auth: ExecAuth,
    Path(token): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let (sub, fields) = match one_submission(&state, auth, &token, &q).await {
        Ok(x) => x,
        Err(resp) => return resp,
    };
    if sub.state != sandlab_store::SubmissionState::Done {
        return judge0_error(
            StatusCode::BAD_REQUEST,
            format!(
                "submission cannot be deleted because its status is {}",
                if sub.state == sandlab_store::SubmissionState::Queued {
                    "In Queue"
                } else {
                    "Processing"
                }
            ),
        );
    }
    let shown = render(&state, &sub, &fields, flag(&q, "base64_encoded"));
    match state
        .store()
        .delete_submission(&token, Some(&sub.owner))
        .await
    {
        Ok(_) => Json(shown).into_response(),
        Err(e) => judge0_store(e),
    }
}

/// Judge0's `POST /submissions/batch`: `{"submissions": [...]}` → a token or the field
/// errors for each, in order.
pub async fn judge0_create_batch(
    State(state): State<AppState>,
    auth: ExecAuth,
    Query(q): Query<HashMap<String, String>>,
    body: Bytes,
) -> Response {
    let caller = match auth.0 {
        Ok(c) => c,
        Err(m) => return judge0_error(StatusCode::UNAUTHORIZED, m),
    };
    let base64 = flag(&q, "base64_encoded");
    let items = match serde_json::from_slice::<Value>(&body) {
        Ok(Value::Object(mut o)) => match o.remove("submissions") {
            Some(Value::Array(a)) => a,
            _ => {
                return judge0_error(
                    StatusCode::BAD_REQUEST,
                    "The body must be {\"submissions\": [...]}.",
                )
            }
        },
        Ok(_) => {
            return judge0_error(
                StatusCode::BAD_REQUEST,
                "The body must be {\"submissions\": [...]}.",
            )
        }
        Err(e) => {
            return judge0_error(
                StatusCode::BAD_REQUEST,
                format!("The body is not JSON: {e}."),
            )
        }
    };
    if items.is_empty() || items.len() > judge0::MAX_BATCH {
        return judge0_error(
            StatusCode::BAD_REQUEST,
            format!(
                "number of submissions in a batch should be between 1 and {}",
                judge0::MAX_BATCH
            ),
        );
    }
    let mut answers: Vec<Value> = Vec::new();
    let mut accepted = Vec::new();
    for item in items {
        match admit_one(&state, &caller, item, base64).await {
            Ok(Ok((token, stored, ticket))) => {
                answers.push(json!({ "token": token }));
                accepted.push((token, stored, ticket));
            }
            Ok(Err(errors)) => answers.push(errors),
            // Places taken so far go back when `accepted` drops.
            Err(resp) => return *resp,
        }
    }
    if !accepted.is_empty() {
        state
            .audit(
                caller.user_id.as_deref(),
                AuditEvent::CodeExecute {
                    language: "judge0-batch",
                    files: accepted.len(),
                },
            )
            .await;
        if let Err(e) = submissions::submit(state.execute(), &caller.owner, accepted).await {
            return judge0_store(e);
        }
    }
    (StatusCode::CREATED, Json(answers)).into_response()
}

/// Judge0's `GET /submissions/batch?tokens=a,b,c`: `{"submissions": [...]}`, `null` for a
/// token that names nothing of the caller's.
pub async fn judge0_get_batch(
    State(state): State<AppState>,
    auth: ExecAuth,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let caller = match auth.0 {
        Ok(c) => c,
        Err(m) => return judge0_error(StatusCode::UNAUTHORIZED, m),
    };
    let fields = match judge0::fields(q.get("fields").map(String::as_str)) {
        Ok(f) => f,
        Err(m) => return judge0_error(StatusCode::BAD_REQUEST, m),
    };
    let tokens: Vec<String> = q
        .get("tokens")
        .map(|t| {
            t.split(',')
                .map(|s| s.trim().to_owned())
                .filter(|s| !s.is_empty())
                .collect()
        })
        .unwrap_or_default();
    let mut unique = tokens.clone();
    unique.sort();
    unique.dedup();
    if unique.len() != tokens.len() {
        return judge0_error(StatusCode::BAD_REQUEST, "tokens names a submission twice");
    }
    if tokens.is_empty() || tokens.len() > judge0::MAX_BATCH {
        return judge0_error(
            StatusCode::BAD_REQUEST,
            format!(
                "tokens must name between 1 and {} submissions",
                judge0::MAX_BATCH
            ),
        );
    }
    let known: Vec<String> = tokens
        .iter()
        .filter(|t| judge0::valid_token(t))
        .cloned()
        .collect();
    let owner = (!caller.admin).then_some(caller.owner.as_str());
    let found = match submissions::visible(state.store(), &known, owner).await {
        Ok(f) => f,
        Err(e) => return judge0_store(e),
    };
    let base64 = flag(&q, "base64_encoded");
    let list: Vec<Value> = tokens
        .iter()
        .map(|t| {
            known
                .iter()
                .position(|k| k == t)
                .and_then(|i| found[i].as_ref())
                .map_or(Value::Null, |s| render(&state, s, &fields, base64))
        })
        .collect();
    Json(json!({ "submissions": list })).into_response()
}

/// The Judge0 languages this server runs now, under every id each answers to (Judge0
/// CE lists C as 48, 49 and 50; clients check the list before they submit).
fn judge0_languages_of(state: &AppState) -> Vec<(u32, &crate::code_exec::Language)> {
    let mut list: Vec<(u32, &crate::code_exec::Language)> = state
        .execute()
        .available()
        .into_iter()
        .flat_map(|l| l.judge0.iter().map(move |id| (*id, l)))
        .collect();
    list.sort_by_key(|(id, l)| (judge0::language_name(l), *id));
    list
}

/// Judge0's `GET /languages` (and `/languages/all`: nothing here is archived).
pub async fn judge0_languages(State(state): State<AppState>, auth: ExecAuth) -> Response {
    if let Err(m) = auth.0 {
        return judge0_error(StatusCode::UNAUTHORIZED, m);
    }
    let list: Vec<Value> = judge0_languages_of(&state)
        .into_iter()
        .map(|(id, l)| json!({ "id": id, "name": judge0::language_name(l) }))
        .collect();
    Json(list).into_response()
}

/// Judge0's `GET /languages/all`.
pub async fn judge0_languages_all(State(state): State<AppState>, auth: ExecAuth) -> Response {
    if let Err(m) = auth.0 {
        return judge0_error(StatusCode::UNAUTHORIZED, m);
    }
    let list: Vec<Value> = judge0_languages_of(&state)
        .into_iter()
        .map(|(id, l)| json!({ "id": id, "name": judge0::language_name(l), "is_archived": false }))
        .collect();
    Json(list).into_response()
}

/// Judge0's `GET /languages/{id}` (any id a language answers to).
pub async fn judge0_language(
    State(state): State<AppState>,
    auth: ExecAuth,
    Path(id): Path<String>,
) -> Response {
    if let Err(m) = auth.0 {
        return judge0_error(StatusCode::UNAUTHORIZED, m);
    }
    let engine = state.execute();
    match id
        .parse::<u32>()
        .ok()
        .and_then(|id| engine.languages().by_judge0(id).map(|l| (id, l)))
    {
        Some((id, l)) if engine.is_available(l) => {
            Json(judge0::language_json(id, l)).into_response()
        }
        _ => judge0_error(StatusCode::NOT_FOUND, "There is no language with this id."),
    }
}

/// Judge0's `GET /statuses`.
pub async fn judge0_statuses(auth: ExecAuth) -> Response {
    if let Err(m) = auth.0 {
        return judge0_error(StatusCode::UNAUTHORIZED, m);
    }
    let list: Vec<Value> = judge0::STATUSES
        .iter()
        .map(|(id, _)| judge0::status_json(*id))
        .collect();
    Json(list).into_response()
}

/// Judge0's `GET /config_info`: this server's limits in Judge0's terms.
pub async fn judge0_config_info(State(state): State<AppState>, auth: ExecAuth) -> Response {
    if let Err(m) = auth.0 {
        return judge0_error(StatusCode::UNAUTHORIZED, m);
    }
    let o = state.execute().options();
    Json(json!({
        "maintenance_mode": false,
        "enable_wait_result": true,
        "enable_compiler_options": true,
        "allowed_languages_for_compile_options": [],
        "enable_command_line_arguments": true,
        "enable_submission_delete": true,
        "enable_callbacks": false,
        "callbacks_max_tries": 0,
        "callbacks_timeout": 0.0,
        "enable_additional_files": false,
        "max_queue_size": o.queue + o.concurrency,
        "cpu_time_limit": judge0::CPU_TIME_LIMIT,
        "max_cpu_time_limit": judge0::MAX_CPU_TIME_LIMIT,
        "cpu_extra_time": judge0::CPU_EXTRA_TIME,
        "max_cpu_extra_time": judge0::MAX_CPU_EXTRA_TIME,
        "wall_time_limit": judge0::WALL_TIME_LIMIT,
        "max_wall_time_limit": judge0::MAX_WALL_TIME_LIMIT,
        "memory_limit": crate::code_exec::engine::DEFAULT_MEMORY.0 >> 10,
        "max_memory_limit": 4_194_304,
        "stack_limit": judge0::STACK_LIMIT,
        "max_stack_limit": judge0::MAX_STACK_LIMIT,
        "max_processes_and_or_threads": crate::code_exec::engine::DEFAULT_PIDS,
        "max_max_processes_and_or_threads": 1024,
        "enable_per_process_and_thread_time_limit": false,
        "allow_enable_per_process_and_thread_time_limit": false,
        "enable_per_process_and_thread_memory_limit": false,
        "allow_enable_per_process_and_thread_memory_limit": false,
        "max_file_size": judge0::MAX_FILE_SIZE,
        "max_max_file_size": judge0::MAX_MAX_FILE_SIZE,
        "number_of_runs": 1,
        "max_number_of_runs": judge0::MAX_NUMBER_OF_RUNS,
        "redirect_stderr_to_stdout": false,
        "max_extract_size": 0,
        "enable_batched_submissions": true,
        "max_submission_batch_size": judge0::MAX_BATCH,
        "submission_cache_duration": o.keep.as_secs_f64(),
        "use_docs_as_homepage": false,
        "allow_enable_network": o.network,
        "enable_network": o.network,
    }))
    .into_response()
}

/// Judge0's `GET /about`.
pub async fn judge0_about() -> Response {
    Json(json!({
        "version": judge0::VERSION,
        "homepage": "https://github.com/sandlab",
        "source_code": "https://github.com/sandlab",
        "maintainer": "Sandlab (a Judge0 CE compatible API)",
    }))
    .into_response()
}

/// Judge0's `GET /version`.
pub async fn judge0_version() -> Response {
    judge0::VERSION.into_response()
}

/// Whether a cookie-signed WebSocket comes from our own pages.
pub fn websocket_origin_ok(state: &AppState, caller: &ExecCaller, headers: &HeaderMap) -> bool {
    let has_origin = headers.contains_key(axum::http::header::ORIGIN);
    (has_origin || !caller.via_cookie) && auth::origin_allowed(state, headers)
}

// ----- Interactive runs: Piston's `/api/v2/connect` protocol

/// Piston's WebSocket (also at `/api/v1/execute/connect`): the client sends
/// `{"type":"init", ...an execute request...}` within 5 s, then
/// `{"type":"data","stream":"stdin","data":"..."}`, `{"type":"signal","signal":"SIGINT"}`
/// or (Sandlab's addition) `{"type":"eof"}` while the program runs; the server sends
/// `{"type":"runtime",...}`, `{"type":"stage","stage":"compile"|"run"}`,
/// `{"type":"data","stream":"stdout"|"stderr","data":"..."}` as output comes,
/// `{"type":"exit","stage",...}` after each stage, `{"type":"error","message"}` on a
/// problem, and closes with 4999 when the job is done.
pub async fn piston_connect(
    State(state): State<AppState>,
    auth: ExecAuth,
    headers: HeaderMap,
    ws: Result<
        axum::extract::ws::WebSocketUpgrade,
        axum::extract::ws::rejection::WebSocketUpgradeRejection,
    >,
) -> Response {
    let caller = match auth.0 {
        Ok(c) => c,
        Err(m) => return piston_error(StatusCode::UNAUTHORIZED, m),
    };
    match upgrade(state, caller, &headers, ws.ok()) {
        Ok(r) => r,
        Err(e) => piston_error(e.status, e.message),
    }
}

/// Opens an interactive run: the checks both WebSocket routes make, then the upgrade.
pub fn upgrade(
    state: AppState,
    caller: ExecCaller,
    headers: &HeaderMap,
    ws: Option<axum::extract::ws::WebSocketUpgrade>,
) -> Result<Response, crate::error::ApiError> {
    use crate::error::ApiError;
    if !websocket_origin_ok(&state, &caller, headers) {
        return Err(ApiError::forbidden(
            "bad_origin",
            "The WebSocket's Origin is not this server's public URL.",
        ));
    }
    let Some(ws) = ws else {
        return Err(ApiError::new(
            StatusCode::UPGRADE_REQUIRED,
            "websocket_required",
            "This route only speaks WebSocket.",
        ));
    };
    let place = state
        .streams()
        .open(&caller.owner)
        .map_err(|e| ApiError::too_many("too_many_streams", e.to_string()))?;
    let sockets = state.sockets().clone();
    Ok(ws
        .max_message_size(crate::code_exec::socket::MAX_MESSAGE)
        .on_upgrade(move |socket| {
            sockets.track_future(async move {
                crate::code_exec::socket::serve(socket, state, caller).await;
                drop(place);
            })
        }))
}
