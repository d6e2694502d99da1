//! `POST /execute`: run code in a fresh sandbox (SPEC section 8); the work is in
//! [`crate::code_exec`].

use axum::extract::State;
use axum::Json;

use crate::audit::AuditEvent;
use crate::auth::Caller;
use crate::code_exec::{self, ExecuteRequest, ExecuteResponse};
use crate::error::{ApiResult, ErrorBody};
use crate::extract::JsonBody;
use crate::routes::admit_create;
use crate::state::AppState;

/// Compiles (when the language has a step for it) and runs the files, then removes the
/// sandbox. Counts against the caller's sandbox quota and creation rate while it runs.
#[utoipa::path(post, path = "/api/v1/execute", tag = "execute", request_body = ExecuteRequest,
    responses((status = 200, body = ExecuteResponse), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 413, body = ErrorBody), (status = 429, body = ErrorBody),
        (status = 502, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn execute_code(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(req): JsonBody<ExecuteRequest>,
) -> ApiResult<Json<ExecuteResponse>> {
    let quota = admit_create(&state, &caller)?;
    let event = AuditEvent::CodeExecute {
        language: &req.language,
        files: req.files.len(),
    };
    state.audit(Some(&caller.user.id), event).await;
    let out = code_exec::execute(
        state.sandboxes(),
        state.languages(),
        &caller.user.id,
        quota,
        &state.config().execute,
        req,
    )
    .await?;
    Ok(Json(out))
}
