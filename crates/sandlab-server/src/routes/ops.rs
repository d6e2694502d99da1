//! Health, readiness, Prometheus metrics and the OpenAPI document.

use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;

use crate::error::{ApiError, ErrorBody};
use crate::metrics as m;
use crate::state::AppState;

#[derive(Serialize, ToSchema)]
pub struct Health {
    #[schema(example = "ok")]
    pub status: String,
}

/// Liveness: the process answers.
#[utoipa::path(get, path = "/healthz", tag = "operations", responses((status = 200, body = Health)))]
pub async fn healthz() -> Json<Health> {
    Json(Health {
        status: "ok".into(),
    })
}

/// Readiness: the store and runtime are up, reconciliation has finished, the store can be written.
///
/// A full disk or a read-only database makes the server unready until it can write again.
#[utoipa::path(get, path = "/readyz", tag = "operations",
    responses((status = 200, body = Health), (status = 503, body = ErrorBody)))]
pub async fn readyz(State(state): State<AppState>) -> Response {
    if !state.is_ready() || state.shutdown().is_cancelled() {
        return ApiError::unavailable("The server is starting up or shutting down.")
            .into_response();
    }
    if let Err(e) = state.store_writable().await {
        tracing::warn!(error = %crate::error::chain(&e), "not ready: the store cannot be written");
        return ApiError::unavailable(match e {
            sandlab_store::Error::Full(_) => "The server's disk is full; it cannot save anything.",
            _ => "The server cannot write to its database.",
        })
        .into_response();
    }
    Json(Health {
        status: "ready".into(),
    })
    .into_response()
}

/// Prometheus metrics (text exposition format), for admins and `server.metrics_token`.
#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses((status = 200, content_type = "text/plain", body = String), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody)))]
pub async fn metrics_text(
    State(state): State<AppState>,
    headers: axum::http::HeaderMap,
    admin: Result<crate::auth::Admin, ApiError>,
) -> Response {
    // The counters name users' activity and the host's load: not for everyone.
    let scraper = state.config().metrics_token.as_deref().is_some_and(|want| {
        headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .is_some_and(|got| {
                subtle::ConstantTimeEq::ct_eq(got.as_bytes(), want.as_bytes()).into()
            })
    });
    if !scraper {
        if let Err(e) = admin {
            return e.into_response();
        }
    }
    metrics::gauge!(m::TERMINALS_OPEN).set(state.sandboxes().terminals().open_terminals() as f64);
    let body = crate::metrics::handle()
        .map(|h| h.render())
        .unwrap_or_default();
    (
        StatusCode::OK,
        [(CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
        body,
    )
        .into_response()
}

/// This API's OpenAPI 3.1 document.
#[utoipa::path(get, path = "/api/v1/openapi.json", tag = "operations",
    responses((status = 200, content_type = "application/json", description = "The OpenAPI document")))]
pub async fn openapi_json() -> Response {
    Json(crate::openapi::document()).into_response()
}
