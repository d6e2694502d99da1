//! Health, readiness, Prometheus metrics and the OpenAPI document.

use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use utoipa::{OpenApi, ToSchema};

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

/// Readiness: the store and runtime are up and reconciliation has finished.
#[utoipa::path(get, path = "/readyz", tag = "operations",
    responses((status = 200, body = Health), (status = 503, body = ErrorBody)))]
pub async fn readyz(State(state): State<AppState>) -> Response {
    if state.is_ready() && !state.shutdown().is_cancelled() {
        Json(Health {
            status: "ready".into(),
        })
        .into_response()
    } else {
        ApiError::unavailable("The server is starting up or shutting down.").into_response()
    }
}

/// Prometheus metrics (text exposition format).
#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses((status = 200, content_type = "text/plain", body = String)))]
pub async fn metrics_text(State(state): State<AppState>) -> Response {
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
    Json(crate::openapi::ApiDoc::openapi()).into_response()
}
