//! The router: every route of SPEC section 6 under `/api/v1`, and the operations routes.
//!
//! One file per group: `account` (login, logout, me, tokens), `signup` (sign-up and
//! password reset links, before signing in), `users` and `invites` (admin),
//! `labs` (the catalogue), `lab_sessions` (a lab's playground, tasks, events),
//! `sandboxes` (create, list, get, extend, delete), `sandbox_exec` (exec and files inside
//! a sandbox), `terminal` (its WebSocket), `code_exec` (`POST /execute`), `images`, `ops`
//! (health, readiness, metrics, the OpenAPI document). Handlers map the domain errors
//! with `?` through the `From` impls in [`crate::error`].

mod account;
mod code_exec;
mod compat;
mod images;
mod invites;
mod lab_assets;
mod lab_sessions;
mod labs;
mod oidc;
mod ops;
mod orgs;
mod ports;
mod sandbox_exec;
mod sandboxes;
mod signup;
mod terminal;
mod users;

use axum::extract::{DefaultBodyLimit, Request};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use serde::Deserialize;
use utoipa::IntoParams;

pub use self::account::*;
pub use self::code_exec::*;
pub use self::compat::*;
pub use self::images::*;
pub use self::invites::*;
pub use self::lab_assets::*;
pub use self::lab_sessions::*;
pub use self::labs::*;
pub use self::oidc::*;
pub use self::ops::*;
pub use self::orgs::*;
pub use self::ports::*;
pub use self::sandbox_exec::*;
pub use self::sandboxes::*;
pub use self::signup::*;
pub use self::terminal::*;
pub use self::users::*;
use crate::error::ApiError;
use crate::metrics as m;
use crate::state::AppState;

/// The whole HTTP surface of `sandlab serve`.
pub fn app(state: AppState) -> Router {
    let max_body = usize::try_from(state.config().max_body).unwrap_or(usize::MAX);
    let max_file = usize::try_from(state.config().max_file_size).unwrap_or(usize::MAX);
    let files = Router::new()
        .route("/sandboxes/{id}/files", get(read_file).put(write_file))
        .route("/sandboxes/{id}/dir", get(list_dir))
        .layer(DefaultBodyLimit::max(max_file));
    let api = Router::new()
        .route("/auth/login", post(login))
        .route("/auth/logout", post(logout))
        .route("/auth/config", get(auth_config))
        .route("/auth/signup", post(signup))
        .route("/auth/reset", post(reset_password))
        .route("/auth/oidc/{name}/start", get(oidc_start))
        .route("/auth/oidc/{name}/callback", get(oidc_callback))
        .route("/me", get(me))
        .route("/me/password", post(change_password))
        .route("/tokens", post(create_token).get(list_tokens))
        .route("/tokens/{id}", axum::routing::delete(delete_token))
        .route("/users", post(create_user).get(list_users))
        .route("/users/{id}", axum::routing::patch(update_user))
        .route("/users/{id}/password-reset", post(create_password_reset))
        .route("/invites", post(create_invite).get(list_invites))
        .route("/invites/{id}", axum::routing::delete(delete_invite))
        .route("/orgs", post(create_org).get(list_orgs))
        .route(
            "/orgs/{id}",
            get(get_org).patch(update_org).delete(delete_org),
        )
        .route(
            "/orgs/{id}/members",
            post(add_org_member).get(list_org_members),
        )
        .route(
            "/orgs/{id}/members/{user_id}",
            axum::routing::patch(update_org_member).delete(remove_org_member),
        )
        .route("/orgs/{id}/progress", get(org_progress))
        .route("/images", get(list_images))
        .route("/labs", get(list_labs))
        .route("/labs/sync", post(sync_labs))
        .route("/lab-problems", get(list_lab_problems))
        .route("/labs/{slug}", get(get_lab))
        .route("/labs/{slug}/assets/{*path}", get(lab_asset))
        .route("/labs/{slug}/sessions", post(start_session))
        .route("/sessions", get(list_sessions))
        .route("/sessions/{id}", get(get_session).delete(delete_session))
        .route("/sessions/{id}/extend", post(extend_session))
        .route("/sessions/{id}/tasks", get(session_tasks))
        .route("/sessions/{id}/tasks/{task}/hint", post(reveal_hint))
        .route("/sessions/{id}/events", get(session_events))
        .route("/sandboxes", post(create_sandbox).get(list_sandboxes))
        .route("/sandboxes/{id}", get(get_sandbox).delete(delete_sandbox))
        .route("/sandboxes/{id}/extend", post(extend_sandbox))
        .route("/sandboxes/{id}/exec", post(exec_sandbox))
        .route("/sandboxes/{id}/processes/kill", post(kill_processes))
        .route("/sandboxes/{id}/terminal", get(terminal))
        .route("/sandboxes/{id}/ports", get(list_ports))
        .route("/sandboxes/{id}/ports/{port}/open", post(open_port))
        .route("/sandboxes/{id}/ports/{port}/shares", post(share_port))
        .route("/sandboxes/{id}/shares", get(list_shares))
        .route(
            "/sandboxes/{id}/shares/{share}",
            axum::routing::delete(delete_share),
        )
        .route("/sandboxes/{id}/archive", get(download_archive))
        .route("/execute", post(execute_code))
        .route("/runtimes", get(list_runtimes))
        .route("/execute/connect", get(execute_connect))
        .route("/openapi.json", get(openapi_json))
        .layer(DefaultBodyLimit::max(max_body))
        .merge(files)
        .fallback(api_not_found);
    // The code execution APIs of Piston and Judge0, at the paths their clients call.
    let compat = Router::new()
        .route("/api/v2/runtimes", get(piston_runtimes))
        .route("/api/v2/execute", post(piston_execute))
        .route("/api/v2/connect", get(piston_connect))
        .route("/submissions", post(judge0_create))
        .route(
            "/submissions/batch",
            post(judge0_create_batch).get(judge0_get_batch),
        )
        .route(
            "/submissions/{token}",
            get(judge0_get).delete(judge0_delete),
        )
        .route("/languages", get(judge0_languages))
        .route("/languages/all", get(judge0_languages_all))
        .route("/languages/{id}", get(judge0_language))
        .route("/statuses", get(judge0_statuses))
        .route("/config_info", get(judge0_config_info))
        .route("/about", get(judge0_about))
        .route("/version", get(judge0_version))
        .layer(DefaultBodyLimit::max(max_body));
    Router::new()
        .nest("/api/v1", api)
        .merge(compat)
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_text))
        .fallback(web_ui)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn_with_state(
            state.clone(),
            crate::port_proxy::by_host,
        ))
        .layer(middleware::from_fn(count_requests))
        .with_state(state)
}

/// The port proxy's own listener (`server.proxy_listen`): every request is a sandbox's.
pub fn proxy_app(state: AppState) -> Router {
    Router::new()
        .fallback(crate::port_proxy::listener_app)
        .layer(middleware::from_fn(count_requests))
        .with_state(state)
}

async fn count_requests(req: Request, next: Next) -> Response {
    let method = req.method().as_str().to_owned();
    let resp = next.run(req).await;
    metrics::counter!(m::HTTP_REQUESTS, "method" => method, "status" => resp.status().as_u16().to_string())
        .increment(1);
    resp
}

async fn api_not_found() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "not_found",
        "There is no such API route; the routes are listed in /api/v1/openapi.json.",
    )
}

/// Everything outside the API: the web UI's files and pages (see [`crate::web`]).
async fn web_ui(
    axum::extract::State(state): axum::extract::State<AppState>,
    method: axum::http::Method,
    uri: axum::http::Uri,
    headers: axum::http::HeaderMap,
) -> Response {
    crate::web::serve(state.config().web_dir.as_deref(), &method, &uri, &headers).await
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "This route does not accept that method.",
    )
}

/// `?cursor=&limit=` of every list.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// The `next` of the previous page.
    pub cursor: Option<String>,
    /// Items per page, 1 to 500 (default 50).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<u32>,
}

impl ListQuery {
    pub fn page(&self) -> crate::error::ApiResult<sandlab_store::PageRequest> {
        let limit = self
            .limit
            .unwrap_or(sandlab_store::PageRequest::DEFAULT_LIMIT);
        if !(1..=sandlab_store::PageRequest::MAX_LIMIT).contains(&limit) {
            return Err(ApiError::bad_request(
                "invalid_query",
                "The limit must be between 1 and 500.",
            ));
        }
        Ok(sandlab_store::PageRequest {
            cursor: self.cursor.clone(),
            limit,
        })
    }
}

/// `{"items": [...], "next": "<cursor>" | null}`.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct ListOf<T> {
    pub items: Vec<T>,
    /// Pass as `cursor` for the next page; `null` on the last.
    pub next: Option<String>,
}
