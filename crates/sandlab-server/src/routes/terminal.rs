//! `GET /sandboxes/{id}/terminal`: a WebSocket to a terminal in the sandbox. Binary frames
//! carry terminal bytes both ways; text frames carry JSON control messages
//! (`{"type":"resize","cols":..,"rows":..}`). The socket logic is in [`crate::terminal`].

use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use sandlab_proto::TtySize;
use serde::Deserialize;
use utoipa::IntoParams;

use crate::auth::{self, Caller};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::QueryParams;
use crate::routes::load;
use crate::state::AppState;
use crate::terminal::{run_socket, valid_terminal_name, TerminalError};

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct TerminalQuery {
    /// Which terminal of the sandbox, `[a-z0-9_-]{1,32}` (default `main`); reconnecting
    /// to the same name shows its scrollback.
    pub name: Option<String>,
    /// Initial width (default 80).
    pub cols: Option<u16>,
    /// Initial height (default 24).
    pub rows: Option<u16>,
}

/// Opens a terminal WebSocket (binary frames = terminal bytes; text frames = JSON control).
#[utoipa::path(get, path = "/api/v1/sandboxes/{id}/terminal", tag = "sandboxes",
    params(("id" = String, Path, description = "Sandbox id"), TerminalQuery),
    responses((status = 101, description = "Switching to the WebSocket protocol"), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 426, body = ErrorBody), (status = 429, body = ErrorBody)))]
pub async fn terminal(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    QueryParams(q): QueryParams<TerminalQuery>,
    headers: HeaderMap,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> ApiResult<Response> {
    // A page on another site may open a WebSocket with the browser's cookies; only our
    // own origin may. A cookie request without any Origin is not from a page we served.
    let has_origin = headers.contains_key(axum::http::header::ORIGIN);
    if !auth::origin_allowed(&state, &headers) || (caller.via_cookie() && !has_origin) {
        return Err(ApiError::forbidden(
            "bad_origin",
            "The WebSocket's Origin is not this server's public URL.",
        ));
    }
    let name = q.name.as_deref().unwrap_or("main");
    if !valid_terminal_name(name) {
        return Err(ApiError::bad_request(
            "invalid_query",
            "The terminal name must be 1 to 32 of a-z, 0-9, '_' and '-'.",
        ));
    }
    let size = TtySize {
        cols: q.cols.unwrap_or(80).clamp(1, 1000),
        rows: q.rows.unwrap_or(24).clamp(1, 1000),
    };
    let rec = load(&state, &caller, &id).await?;
    if rec.state != sandlab_core::SandboxState::Running {
        return Err(ApiError::conflict(format!(
            "The sandbox is {}, not running.",
            rec.state
        )));
    }
    let ws = ws.map_err(|_| {
        ApiError::new(
            StatusCode::UPGRADE_REQUIRED,
            "websocket_required",
            "This route only speaks WebSocket.",
        )
    })?;
    let place = state.streams().open(&caller.user.id).inspect_err(|_| {
        metrics::counter!(crate::metrics::STREAMS_REFUSED, "kind" => "terminal").increment(1);
    })?;
    let agent = state.sandboxes().agent(&rec.id).await?;
    let attachment = state
        .sandboxes()
        .terminals()
        .attach(&rec.id, name, &agent, size)
        .await
        .map_err(|e| match e {
            TerminalError::TooMany { .. } => {
                ApiError::too_many("too_many_terminals", e.to_string())
            }
            TerminalError::Agent(a) => ApiError::from(a),
            other => ApiError::bad_request("invalid_query", other.to_string()),
        })?;
    let shutdown = state.shutdown().clone();
    let sockets = state.sockets().clone();
    Ok(ws
        .max_message_size(crate::terminal::MAX_INPUT_FRAME + 1024)
        .on_upgrade(move |socket| {
            sockets.track_future(async move {
                run_socket(socket, attachment, shutdown).await;
                drop(place);
            })
        }))
}
