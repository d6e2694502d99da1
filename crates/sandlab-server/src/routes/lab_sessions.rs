//! Lab sessions: start one from a lab, watch its tasks (JSON or Server-Sent Events),
//! reveal hints, extend, end. A user sees only their own; another's id answers 404.

use std::convert::Infallible;
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, KeepAliveStream, Sse};
use axum::Json;
use futures::{Stream, StreamExt};
use sandlab_store::{LabSession, LabSessionState};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::audit::AuditEvent;
use crate::auth::Caller;
use crate::checker::TaskState;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{JsonBody, QueryParams};
use crate::lab_sessions::{Live, SessionEvent};
use crate::routes::{admit_create, quota_error, ttl, ListOf};
use crate::state::AppState;

#[derive(Serialize, ToSchema)]
pub struct NodeRef {
    #[schema(example = "node01")]
    pub name: String,
    /// The sandbox running this node (exec, files and terminal go through it).
    #[schema(example = "sb-abcdefghijkl")]
    pub sandbox: String,
}

#[derive(Serialize, ToSchema)]
pub struct TaskStatus {
    pub id: String,
    /// `pending`, `blocked`, `running`, `done` or `failed`.
    #[schema(value_type = String, example = "pending")]
    pub state: TaskState,
    pub init: bool,
    /// Whether the user revealed this task's hint.
    pub hint_revealed: bool,
}

#[derive(Serialize, ToSchema)]
pub struct SessionView {
    #[schema(example = "ls-abcdefghijkl")]
    pub id: String,
    pub lab: String,
    pub owner: String,
    /// `starting` (init tasks running), `ready`, `failed` or `ended`.
    #[schema(value_type = String, example = "ready")]
    pub state: LabSessionState,
    pub reason: Option<String>,
    pub nodes: Vec<NodeRef>,
    pub tasks: Vec<TaskStatus>,
    pub created_at_ms: i64,
    pub expires_at_ms: i64,
    pub ttl_left_ms: u64,
}

async fn view(
    state: &AppState,
    rec: LabSession,
    live: Option<&Arc<Live>>,
) -> ApiResult<SessionView> {
    let hints = state.store().revealed_hints(&rec.owner, &rec.lab).await?;
    let tasks = match live {
        Some(l) => l
            .checker
            .states()
            .into_iter()
            .map(|(id, s)| TaskStatus {
                init: l.lab.task(&id).is_some_and(|t| t.init),
                hint_revealed: hints.contains(&id),
                id,
                state: s,
            })
            .collect(),
        // Run by another replica: the task states it stored.
        None if !rec.state.is_over() => {
            let labs = state.labs();
            let lab = labs.iter().find(|l| l.slug == rec.lab);
            rec.tasks
                .iter()
                .filter_map(|t| {
                    Some(TaskStatus {
                        init: lab.and_then(|l| l.task(&t.id)).is_some_and(|t| t.init),
                        hint_revealed: hints.contains(&t.id),
                        state: TaskState::parse(&t.state)?,
                        id: t.id.clone(),
                    })
                })
                .collect()
        }
        None => Vec::new(),
    };
    let stored_left = || {
        let deadline = u64::try_from(rec.deadline_ms).unwrap_or(0);
        deadline.saturating_sub(sandlab_runtime::manager::now_ms())
    };
    Ok(SessionView {
        ttl_left_ms: match live {
            Some(l) => u64::try_from(l.time_left().as_millis()).unwrap_or(u64::MAX),
            None if !rec.state.is_over() => stored_left(),
            None => 0,
        },
        id: rec.id,
        lab: rec.lab,
        owner: rec.owner,
        state: rec.state,
        reason: rec.reason,
        nodes: rec
            .nodes
            .into_iter()
            .map(|n| NodeRef {
                name: n.name,
                sandbox: n.sandbox,
            })
            .collect(),
        tasks,
        created_at_ms: rec.created_at_ms,
        expires_at_ms: rec.deadline_ms,
    })
}

/// The caller's session `id`: live when running, else its stored record.
async fn load(
    state: &AppState,
    caller: &Caller,
    id: &str,
) -> ApiResult<(LabSession, Option<Arc<Live>>)> {
    if id.len() > 64 {
        return Err(ApiError::not_found("lab session"));
    }
    match state.lab_sessions().get(id, caller.owner_filter()) {
        Some(live) => Ok((live.record(), Some(live))),
        None => Ok((
            state
                .store()
                .get_lab_session(id, caller.owner_filter())
                .await?,
            None,
        )),
    }
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct StartQuery {
    /// Check every task again, even those the caller has done before (their progress stays
    /// as history); a fresh start never resumes a running session.
    pub fresh: Option<bool>,
    /// The organisation (id or slug) the session's sandboxes count against; the caller
    /// must belong to it. Default: the lab's own (`org:`), else the caller's only
    /// organisation. Its caps cut the nodes' limits and the session's lifetime.
    pub org: Option<String>,
}

/// Starts the lab's playground: its sandboxes run when this answers; init tasks go on
/// (the session turns `ready`, or `failed`, on the event stream). When the caller already
/// has a session of this lab that is starting or ready, that session is answered (200),
/// unless `fresh`.
#[utoipa::path(post, path = "/api/v1/labs/{slug}/sessions", tag = "labs",
    params(("slug" = String, Path, description = "Lab slug"), StartQuery),
    responses((status = 201, body = SessionView), (status = 200, body = SessionView), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 429, body = ErrorBody), (status = 502, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn start_session(
    State(state): State<AppState>,
    caller: Caller,
    Path(slug): Path<String>,
    QueryParams(q): QueryParams<StartQuery>,
) -> ApiResult<(StatusCode, Json<SessionView>)> {
    let fresh = q.fresh.unwrap_or(false);
    let orgs = super::orgs::caller_orgs(&state, &caller).await?;
    let lab = state
        .labs()
        .iter()
        .find(|l| l.slug == slug && super::labs::visible_to(l, &caller, &orgs))
        .cloned()
        .ok_or_else(|| ApiError::not_found("lab"))?;
    // Starting a lab that is already running resumes it (a second tab, a double click),
    // on whichever replica it runs.
    let running = state
        .lab_sessions()
        .active(Some(&caller.user.id))
        .await?
        .into_iter()
        .rev()
        .find(|r| !fresh && r.lab == slug);
    if let Some(rec) = running {
        let live = state.lab_sessions().get(&rec.id, None);
        return Ok((
            StatusCode::OK,
            Json(view(&state, rec, live.as_ref()).await?),
        ));
    }
    let org = super::orgs::charge(&state, &caller, q.org.as_deref(), lab.org.as_deref()).await?;
    let quota = admit_create(&state, &caller)?;
    let started = state
        .lab_sessions()
        .start_in(Arc::new(lab), &caller.user.id, quota, fresh, org)
        .await;
    let live = match started {
        Err(e) if e.is_quota() => return Err(quota_error(&state, &caller, quota).await),
        other => other?,
    };
    let event = AuditEvent::LabSessionStart {
        session: &live.record().id,
        lab: &slug,
    };
    state.audit(Some(&caller.user.id), event).await;
    Ok((
        StatusCode::CREATED,
        Json(view(&state, live.record(), Some(&live)).await?),
    ))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct SessionsQuery {
    /// Only the sessions running now (starting or ready), not the ended ones.
    pub active: Option<bool>,
}

/// The caller's lab sessions (every session for an admin), oldest first.
#[utoipa::path(get, path = "/api/v1/sessions", tag = "labs", params(SessionsQuery),
    responses((status = 200, body = ListOf<SessionView>), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)))]
pub async fn list_sessions(
    State(state): State<AppState>,
    caller: Caller,
    QueryParams(q): QueryParams<SessionsQuery>,
) -> ApiResult<Json<ListOf<SessionView>>> {
    let mut items = Vec::new();
    if q.active == Some(true) {
        for rec in state.lab_sessions().active(caller.owner_filter()).await? {
            let live = state.lab_sessions().get(&rec.id, None);
            items.push(view(&state, rec, live.as_ref()).await?);
        }
        return Ok(Json(ListOf { items, next: None }));
    }
    for rec in state
        .store()
        .list_lab_sessions(caller.owner_filter())
        .await?
    {
        let live = state.lab_sessions().get(&rec.id, None);
        let rec = live.as_ref().map_or(rec, |l| l.record());
        items.push(view(&state, rec, live.as_ref()).await?);
    }
    Ok(Json(ListOf { items, next: None }))
}

/// One lab session with its nodes and task states.
#[utoipa::path(get, path = "/api/v1/sessions/{id}", tag = "labs",
    params(("id" = String, Path, description = "Session id")),
    responses((status = 200, body = SessionView), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn get_session(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<SessionView>> {
    let (rec, live) = load(&state, &caller, &id).await?;
    Ok(Json(view(&state, rec, live.as_ref()).await?))
}

/// Ends a session (its sandboxes are removed) and forgets it.
#[utoipa::path(delete, path = "/api/v1/sessions/{id}", tag = "labs",
    params(("id" = String, Path, description = "Session id")),
    responses((status = 204), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn delete_session(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let (rec, _) = load(&state, &caller, &id).await?;
    state
        .lab_sessions()
        .end_anywhere(&rec, "The session was stopped.")
        .await?;
    state.store().delete_lab_session(&rec.id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExtendSession {
    /// New time to live from now (default: the server's default TTL).
    #[schema(example = "30m")]
    pub ttl: Option<String>,
}

/// Moves a running session's deadline (and its sandboxes') to `ttl` from now.
#[utoipa::path(post, path = "/api/v1/sessions/{id}/extend", tag = "labs", request_body = ExtendSession,
    params(("id" = String, Path, description = "Session id")),
    responses((status = 200, body = SessionView), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn extend_session(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    JsonBody(req): JsonBody<ExtendSession>,
) -> ApiResult<Json<SessionView>> {
    let (rec, live) = load(&state, &caller, &id).await?;
    if live.is_none() && rec.state.is_over() {
        return Err(ApiError::conflict("The session has ended."));
    }
    let ttl = ttl(&state, req.ttl.as_deref())?;
    // The organisation the session's nodes count against caps its lifetime, as it did
    // at the start.
    if let Some(org) = state.lab_sessions().org_of(&rec).await? {
        let asked = crate::admission::Asked {
            ttl: Some(ttl),
            ..crate::admission::Asked::default()
        };
        crate::orgs::check_asked(&asked, &org)
            .map_err(|e| ApiError::bad_request("over_limit", e.to_string()))?;
    }
    let rec = state.lab_sessions().extend_anywhere(&rec, ttl).await?;
    let live = state.lab_sessions().get(&rec.id, None);
    Ok(Json(view(&state, rec, live.as_ref()).await?))
}

/// Task states of a session.
#[utoipa::path(get, path = "/api/v1/sessions/{id}/tasks", tag = "labs",
    params(("id" = String, Path, description = "Session id")),
    responses((status = 200, body = ListOf<TaskStatus>), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn session_tasks(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<ListOf<TaskStatus>>> {
    let (rec, live) = load(&state, &caller, &id).await?;
    let v = view(&state, rec, live.as_ref()).await?;
    Ok(Json(ListOf {
        items: v.tasks,
        next: None,
    }))
}

#[derive(Serialize, ToSchema)]
pub struct Hint {
    pub task: String,
    /// The hint, rendered and sanitised.
    pub html: String,
}

/// Reveals a task's hint (recorded per user and lab).
#[utoipa::path(post, path = "/api/v1/sessions/{id}/tasks/{task}/hint", tag = "labs",
    params(("id" = String, Path, description = "Session id"), ("task" = String, Path, description = "Task id")),
    responses((status = 200, body = Hint), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn reveal_hint(
    State(state): State<AppState>,
    caller: Caller,
    Path((id, task)): Path<(String, String)>,
) -> ApiResult<Json<Hint>> {
    let (rec, _) = load(&state, &caller, &id).await?;
    let labs = state.labs();
    let html = labs
        .iter()
        .find(|l| l.slug == rec.lab)
        .and_then(|l| l.task(&task))
        .and_then(|t| t.hint_html.clone())
        .ok_or_else(|| ApiError::not_found("hint"))?;
    state
        .store()
        .reveal_hint(&rec.owner, &rec.lab, &task)
        .await?;
    Ok(Json(Hint { task, html }))
}

/// A session's event stream, from this replica's checker or from the store bus.
type EventStream = futures::stream::BoxStream<'static, Result<Event, Infallible>>;

/// One Server-Sent Event of a session's stream.
#[derive(Serialize, ToSchema)]
pub struct SessionStreamEvent {
    /// `task` or `session`.
    #[schema(example = "task")]
    pub event: String,
    /// JSON text: `{"task","state"}` for `task`, `{"state","reason"}` for `session`.
    #[schema(example = "{\"task\":\"write_page\",\"state\":\"done\"}")]
    pub data: String,
}

/// Server-Sent Events: first the session's state and every task's, then each change
/// (`event: task` with `{"task","state"}`, `event: session` with `{"state","reason"}`);
/// the stream ends when the session does.
#[utoipa::path(get, path = "/api/v1/sessions/{id}/events", tag = "labs",
    params(("id" = String, Path, description = "Session id")),
    responses((status = 200, content_type = "text/event-stream", body = SessionStreamEvent), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn session_events(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Sse<KeepAliveStream<EventStream>>> {
    let (rec, live) = load(&state, &caller, &id).await?;
    let place = state.streams().open(&caller.user.id).inspect_err(|_| {
        metrics::counter!(crate::metrics::STREAMS_REFUSED, "kind" => "events").increment(1);
    })?;
    if live.is_none() && !rec.state.is_over() {
        let stream = remote_events(state.clone(), rec.id.clone()).await?;
        // The place is given back when the stream is dropped.
        let stream = stream.map(move |ev| {
            let _ = &place;
            ev
        });
        return Ok(Sse::new(stream.boxed()).keep_alive(KeepAlive::default()));
    }
    let mut first = vec![SessionEvent::Session {
        state: rec.state,
        reason: rec.reason.clone(),
    }];
    let rx =
        live.as_ref().map(|l| {
            let rx = l.subscribe();
            first.extend(l.checker.states().into_iter().map(|(task, state)| {
                SessionEvent::Task(crate::checker::TaskEvent { task, state })
            }));
            rx
        });
    let shutdown = state.shutdown().clone();
    let stream = futures::stream::unfold(
        (first.into_iter(), rx, shutdown, false),
        |(mut first, mut rx, shutdown, done)| async move {
            if done {
                return None;
            }
            if let Some(ev) = first.next() {
                return Some((Ok(to_event(&ev)), (first, rx, shutdown, false)));
            }
            let r = rx.as_mut()?;
            loop {
                tokio::select! {
                    got = r.recv() => match got {
                        Ok(ev) => {
                            let end = matches!(&ev, SessionEvent::Session { state: LabSessionState::Ended, .. });
                            return Some((Ok(to_event(&ev)), (first, rx, shutdown, end)));
                        }
                        Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                        Err(tokio::sync::broadcast::error::RecvError::Closed) => return None,
                    },
                    _ = shutdown.cancelled() => return None,
                }
            }
        },
    );
    // The place is given back when the stream is dropped (ended, or the client gone).
    let stream = stream.map(move |ev| {
        let _ = &place;
        ev
    });
    Ok(Sse::new(stream.boxed()).keep_alive(KeepAlive::default()))
}

/// The events of a session another replica runs: its stored state and tasks, then what
/// its runner publishes on the session's bus topic (subscribed before the read, so nothing
/// falls between); after a gap, the stored state and tasks again.
async fn remote_events(
    state: AppState,
    id: String,
) -> ApiResult<impl Stream<Item = Result<Event, Infallible>>> {
    let sub = state
        .store()
        .subscribe(&crate::lab_sessions::events_topic(&id))
        .await?;
    let first = stored_events(&state, &id).await?;
    let shutdown = state.shutdown().clone();
    Ok(futures::stream::unfold(
        (first.into_iter(), sub, state, id, shutdown, false),
        |(mut first, mut sub, state, id, shutdown, done)| async move {
            if done {
                return None;
            }
            loop {
                if let Some(ev) = first.next() {
                    let end = ends(&ev);
                    return Some((Ok(to_event(&ev)), (first, sub, state, id, shutdown, end)));
                }
                let notice = tokio::select! {
                    n = sub.recv() => n?,
                    _ = shutdown.cancelled() => return None,
                };
                match notice {
                    sandlab_store::Notice::Message(text) => {
                        let Ok(ev) = serde_json::from_str::<SessionEvent>(&text) else {
                            continue;
                        };
                        let end = ends(&ev);
                        return Some((Ok(to_event(&ev)), (first, sub, state, id, shutdown, end)));
                    }
                    sandlab_store::Notice::Gap => {
                        let again = stored_events(&state, &id).await.ok()?;
                        first = again.into_iter();
                    }
                }
            }
        },
    ))
}

/// Whether `ev` is the last of a stream: the session ended or failed.
fn ends(ev: &SessionEvent) -> bool {
    matches!(ev, SessionEvent::Session { state, .. } if state.is_over())
}

/// The stored session as events: its state, then each task's.
async fn stored_events(state: &AppState, id: &str) -> ApiResult<Vec<SessionEvent>> {
    let rec = state.store().get_lab_session(id, None).await?;
    let mut events = vec![SessionEvent::Session {
        state: rec.state,
        reason: rec.reason.clone(),
    }];
    events.extend(rec.tasks.iter().filter_map(|t| {
        Some(SessionEvent::Task(crate::checker::TaskEvent {
            task: t.id.clone(),
            state: TaskState::parse(&t.state)?,
        }))
    }));
    Ok(events)
}

fn to_event(ev: &SessionEvent) -> Event {
    let (name, data) = match ev {
        SessionEvent::Task(t) => (
            "task",
            serde_json::json!({"task": t.task, "state": t.state}),
        ),
        SessionEvent::Session { state, reason } => (
            "session",
            serde_json::json!({"state": state, "reason": reason}),
        ),
    };
    Event::default().event(name).data(data.to_string())
}
