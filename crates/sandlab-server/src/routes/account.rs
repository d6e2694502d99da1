//! Login sessions, the caller's own account, and API tokens.

use axum::extract::{Path, State};
use axum::http::header::{RETRY_AFTER, SET_COOKIE};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use sandlab_store::{ApiToken, Role, User};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::audit::AuditEvent;
use crate::auth::{self, Caller, Via};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{ClientAddr, JsonBody};
use crate::routes::ListOf;
use crate::state::AppState;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    #[schema(example = "alice")]
    pub username: String,
    pub password: String,
}

/// A user as the API shows it.
#[derive(Serialize, ToSchema)]
pub struct UserView {
    #[schema(example = "usr-3kq7x2m4p9ab")]
    pub id: String,
    pub username: String,
    /// `learner`, `author` or `admin`.
    #[schema(example = "learner")]
    pub role: String,
    pub disabled: bool,
    /// Unix time in milliseconds.
    pub created_at_ms: i64,
}

impl From<User> for UserView {
    fn from(u: User) -> UserView {
        UserView {
            id: u.id,
            username: u.username,
            role: u.role.as_str().to_owned(),
            disabled: u.disabled,
            created_at_ms: u.created_at_ms,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct LoginResponse {
    pub user: UserView,
    /// Echo this in `X-CSRF-Token` on unsafe requests (it is also the `sandlab_csrf` cookie).
    pub csrf_token: String,
    /// Unix time in milliseconds when the session ends.
    pub expires_at_ms: i64,
}

pub(crate) fn rate_limited(wait: std::time::Duration) -> Response {
    let secs = wait.as_secs().max(1);
    let mut resp = ApiError::too_many(
        "rate_limited",
        format!("Too many attempts; try again in {secs} seconds."),
    )
    .into_response();
    if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
        resp.headers_mut().insert(RETRY_AFTER, v);
    }
    resp
}

/// How much longer each login takes while its username has many recent failures.
const LOGIN_SLOWDOWN: std::time::Duration = std::time::Duration::from_secs(1);

/// Starts a browser session: sets the session and CSRF cookies.
#[utoipa::path(post, path = "/api/v1/auth/login", tag = "auth", request_body = LoginRequest,
    responses((status = 200, body = LoginResponse), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 429, body = ErrorBody)))]
pub async fn login(
    State(state): State<AppState>,
    ClientAddr(addr): ClientAddr,
    headers: HeaderMap,
    JsonBody(req): JsonBody<LoginRequest>,
) -> Response {
    match login_inner(&state, addr, &headers, req).await {
        Ok(r) => r,
        Err(e) => e,
    }
}

async fn login_inner(
    state: &AppState,
    addr: String,
    headers: &HeaderMap,
    req: LoginRequest,
) -> Result<Response, Response> {
    // A page on another site must not log the browser into an account of its choosing.
    if !auth::origin_allowed(state, headers) {
        return Err(ApiError::forbidden(
            "bad_origin",
            "Logins from another site's pages are refused.",
        )
        .into_response());
    }
    state.login_by_addr().check(&addr).map_err(rate_limited)?;
    let name_key = req
        .username
        .to_ascii_lowercase()
        .chars()
        .take(64)
        .collect::<String>();
    // Failures are counted per (username, address): an attacker guessing from one address
    // is stopped there, and the owner signing in from another is never locked out. Past as
    // many failures on the username from all addresses, every attempt is slowed instead.
    let pair = format!("{name_key}\n{addr}");
    state.login_failures().peek(&pair).map_err(rate_limited)?;
    if state.login_by_name().peek(&name_key).is_err() {
        tokio::time::sleep(LOGIN_SLOWDOWN).await;
    }
    let user = if req.username.len() > 256 || req.password.len() > 1024 {
        None
    } else {
        state
            .store()
            .verify_login(&req.username, &req.password)
            .await
            .map_err(|e| ApiError::from(e).into_response())?
    };
    let Some(user) = user else {
        let _ = state.login_failures().check(&pair);
        let _ = state.login_by_name().check(&name_key);
        let event = AuditEvent::LoginFailed {
            username: &name_key,
            addr: &addr,
        };
        state.audit(None, event).await;
        return Err(ApiError::unauthorized("The username or password is wrong.").into_response());
    };
    state.login_failures().forget(&pair);
    let store = state.store();
    let (session, secret) = store
        .create_session(&user.id, state.config().session_ttl)
        .await
        .map_err(|e| ApiError::from(e).into_response())?;
    let event = AuditEvent::Login {
        user: &user.id,
        addr: &addr,
    };
    state.audit(Some(&user.id), event).await;
    let mut resp = Json(LoginResponse {
        csrf_token: session.csrf_token.clone(),
        expires_at_ms: session.expires_at_ms,
        user: user.into(),
    })
    .into_response();
    for c in auth::login_cookies(state, &secret, &session.csrf_token) {
        if let Ok(v) = HeaderValue::from_str(&c) {
            resp.headers_mut().append(SET_COOKIE, v);
        }
    }
    Ok(resp)
}

/// Ends the browser session and clears its cookies.
#[utoipa::path(post, path = "/api/v1/auth/logout", tag = "auth",
    responses((status = 204), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn logout(
    State(state): State<AppState>,
    headers: HeaderMap,
    caller: Caller,
) -> ApiResult<Response> {
    if let Via::Session(_) = caller.via {
        if let Some(secret) = auth::cookie(&headers, auth::session_cookie_name(&state)) {
            state.store().delete_session(secret).await?;
        }
    }
    let event = AuditEvent::Logout {
        user: &caller.user.id,
    };
    state.audit(Some(&caller.user.id), event).await;
    let mut resp = StatusCode::NO_CONTENT.into_response();
    for c in auth::logout_cookies(&state) {
        if let Ok(v) = HeaderValue::from_str(&c) {
            resp.headers_mut().append(SET_COOKIE, v);
        }
    }
    Ok(resp)
}

/// The calling user.
#[utoipa::path(get, path = "/api/v1/me", tag = "auth",
    responses((status = 200, body = UserView), (status = 401, body = ErrorBody)))]
pub async fn me(caller: Caller) -> Json<UserView> {
    Json(caller.user.into())
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewToken {
    /// 1 to 64 characters, to recognise the token by.
    #[schema(example = "ci")]
    pub name: String,
}

#[derive(Serialize, ToSchema)]
pub struct TokenView {
    #[schema(example = "tok-5m2k9q3x7w1a")]
    pub id: String,
    pub name: String,
    pub created_at_ms: i64,
    pub last_used_at_ms: Option<i64>,
}

impl From<ApiToken> for TokenView {
    fn from(t: ApiToken) -> TokenView {
        TokenView {
            id: t.id,
            name: t.name,
            created_at_ms: t.created_at_ms,
            last_used_at_ms: t.last_used_at_ms,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct CreatedToken {
    pub id: String,
    pub name: String,
    /// The secret: shown this once, stored only as a hash. Send it as `Authorization: Bearer`.
    #[schema(example = "sl_0123...")]
    pub token: String,
}

/// Creates an API token for the caller.
#[utoipa::path(post, path = "/api/v1/tokens", tag = "tokens", request_body = NewToken,
    responses((status = 201, body = CreatedToken), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn create_token(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(req): JsonBody<NewToken>,
) -> ApiResult<(StatusCode, Json<CreatedToken>)> {
    let (token, secret) = state
        .store()
        .create_token(&caller.user.id, &req.name)
        .await?;
    let event = AuditEvent::TokenCreate {
        token: &token.id,
        name: &token.name,
    };
    state.audit(Some(&caller.user.id), event).await;
    Ok((
        StatusCode::CREATED,
        Json(CreatedToken {
            id: token.id,
            name: token.name,
            token: secret,
        }),
    ))
}

/// The caller's API tokens (never their secrets).
#[utoipa::path(get, path = "/api/v1/tokens", tag = "tokens",
    responses((status = 200, body = ListOf<TokenView>), (status = 401, body = ErrorBody)))]
pub async fn list_tokens(
    State(state): State<AppState>,
    caller: Caller,
) -> ApiResult<Json<ListOf<TokenView>>> {
    let items = state.store().list_tokens(&caller.user.id).await?;
    Ok(Json(ListOf {
        items: items.into_iter().map(Into::into).collect(),
        next: None,
    }))
}

/// Revokes one of the caller's API tokens.
#[utoipa::path(delete, path = "/api/v1/tokens/{id}", tag = "tokens",
    params(("id" = String, Path, description = "Token id")),
    responses((status = 204), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn delete_token(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    if id.len() > 64 {
        return Err(ApiError::not_found("API token"));
    }
    state.store().delete_token(&caller.user.id, &id).await?;
    let event = AuditEvent::TokenDelete { token: &id };
    state.audit(Some(&caller.user.id), event).await;
    Ok(StatusCode::NO_CONTENT)
}

/// Roles in the order the API documents them.
pub const ROLES: [Role; 3] = [Role::Learner, Role::Author, Role::Admin];

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangePassword {
    /// The password now.
    pub current: String,
    /// The new password: at least 8 characters.
    #[schema(min_length = 8, max_length = 1024)]
    pub new: String,
}

/// Changes the caller's password; ends their other login sessions (this one stays).
#[utoipa::path(post, path = "/api/v1/me/password", tag = "auth", request_body = ChangePassword,
    responses((status = 204), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 429, body = ErrorBody)))]
pub async fn change_password(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(req): JsonBody<ChangePassword>,
) -> Response {
    match change_password_inner(&state, &caller, req).await {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(r) => r,
    }
}

async fn change_password_inner(
    state: &AppState,
    caller: &Caller,
    req: ChangePassword,
) -> Result<(), Response> {
    let user = &caller.user;
    sandlab_store::password::validate_password(&req.new)
        .map_err(|e| ApiError::from(e).into_response())?;
    // Wrong guesses at the current password count like failed logins, per user.
    let key = format!("{}\npassword", user.id);
    state.login_failures().peek(&key).map_err(rate_limited)?;
    let right = req.current.len() <= 1024
        && state
            .store()
            .verify_login(&user.username, &req.current)
            .await
            .map_err(|e| ApiError::from(e).into_response())?
            .is_some();
    if !right {
        let _ = state.login_failures().check(&key);
        return Err(
            ApiError::forbidden("wrong_password", "The current password is wrong.").into_response(),
        );
    }
    state.login_failures().forget(&key);
    let keep = match &caller.via {
        Via::Session(s) => Some(s.id.as_str()),
        Via::Token { .. } => None,
    };
    state
        .store()
        .change_password(&user.id, req.new, keep)
        .await
        .map_err(|e| ApiError::from(e).into_response())?;
    let event = AuditEvent::PasswordChange { user: &user.id };
    state.audit(Some(&user.id), event).await;
    Ok(())
}
