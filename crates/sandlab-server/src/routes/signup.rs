//! Making an account without an admin, and setting a password with a reset link: the routes
//! a browser calls before it is signed in.
//!
//! `server.signup` decides who may sign up: nobody (`closed`, the default), holders of an
//! invitation link (`invite`), or anyone (`open`, where an invitation still sets its role).
//! A sign-up signs the browser in as `POST /auth/login` does. Both routes count against the
//! login rate limit per client address.

use axum::extract::State;
use axum::http::header::SET_COOKIE;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use sandlab_store::{LinkRefusal, NewUser, Role, User};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::account::rate_limited;
use crate::audit::AuditEvent;
use crate::auth;
use crate::config::SignupMode;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{ClientAddr, JsonBody};
use crate::routes::UserView;
use crate::state::AppState;

/// Longest invitation or reset secret looked at; real ones are 68 characters.
const MAX_LINK_SECRET: usize = 256;

/// How a browser may sign in and sign up here.
#[derive(Serialize, ToSchema)]
pub struct AuthConfig {
    /// `closed`, `invite` (only with an invitation link) or `open`.
    pub signup: SignupMode,
    /// Single sign-on providers (`[[auth.oidc]]`), in the order configured.
    pub providers: Vec<AuthProvider>,
}

/// A single sign-on provider the login page offers.
#[derive(Serialize, ToSchema)]
pub struct AuthProvider {
    /// Its `[[auth.oidc]]` name.
    #[schema(example = "github")]
    pub name: String,
    /// The button's text.
    #[schema(example = "Sign in with GitHub")]
    pub title: String,
    /// Where the button goes (add `?next=/path` to land there).
    #[schema(example = "/api/v1/auth/oidc/github/start")]
    pub start_url: String,
}

/// Sign-in and sign-up options, for the login page.
#[utoipa::path(get, path = "/api/v1/auth/config", tag = "auth", security(()),
    responses((status = 200, body = AuthConfig)))]
pub async fn auth_config(State(state): State<AppState>) -> Json<AuthConfig> {
    Json(AuthConfig {
        signup: state.config().signup,
        providers: state
            .sso()
            .providers()
            .iter()
            .map(|p| AuthProvider {
                name: p.config.name.clone(),
                title: p.config.title.clone(),
                start_url: format!("/api/v1/auth/oidc/{}/start", p.config.name),
            })
            .collect(),
    })
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignupRequest {
    /// 1 to 64 of a-z, 0-9, `_`, `.` and `-` (upper case is folded).
    #[schema(example = "alice", pattern = "^[A-Za-z0-9_.-]{1,64}$")]
    pub username: String,
    /// At least 8 characters.
    #[schema(min_length = 8, max_length = 1024)]
    pub password: String,
    /// The `invite` of an invitation link: needed when sign-up is `invite`; when it is
    /// `open`, the account gets the invitation's role.
    pub invite: Option<String>,
}

/// Makes an account and signs the browser in (sets the session and CSRF cookies).
#[utoipa::path(post, path = "/api/v1/auth/signup", tag = "auth", security(()),
    request_body = SignupRequest,
    responses((status = 201, body = UserView), (status = 400, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 409, body = ErrorBody), (status = 429, body = ErrorBody)))]
pub async fn signup(
    State(state): State<AppState>,
    ClientAddr(addr): ClientAddr,
    headers: HeaderMap,
    JsonBody(req): JsonBody<SignupRequest>,
) -> Response {
    match signup_inner(&state, &addr, &headers, req).await {
        Ok(r) => r,
        Err(e) => e,
    }
}

async fn signup_inner(
    state: &AppState,
    addr: &str,
    headers: &HeaderMap,
    req: SignupRequest,
) -> Result<Response, Response> {
    let refuse = |e: ApiError| e.into_response();
    // A page on another site must not sign the browser into an account of its choosing.
    if !auth::origin_allowed(state, headers) {
        return Err(refuse(ApiError::forbidden(
            "bad_origin",
            "Sign-ups from another site's pages are refused.",
        )));
    }
    let invite = req.invite.filter(|i| !i.is_empty());
    match (state.config().signup, &invite) {
        (SignupMode::Closed, _) => {
            return Err(refuse(ApiError::forbidden(
                "signup_closed",
                "Sign-up is closed on this server; ask an admin for an account.",
            )))
        }
        (SignupMode::Invite, None) => {
            return Err(refuse(ApiError::forbidden(
                "invite_required",
                "Sign-up on this server needs an invitation link from an admin.",
            )))
        }
        _ => {}
    }
    state.login_by_addr().check(addr).map_err(rate_limited)?;
    let store = state.store();
    let (user, invite_id) = match invite {
        Some(secret) => {
            let secret = if secret.len() > MAX_LINK_SECRET {
                ""
            } else {
                &secret
            };
            match store
                .redeem_invite(secret, &req.username, req.password)
                .await
                .map_err(|e| refuse(ApiError::from(e)))?
            {
                Ok((user, invite)) => (user, Some(invite.id)),
                Err(why) => return Err(refuse(invite_refused(why))),
            }
        }
        None => {
            let new = NewUser {
                username: req.username,
                password: req.password,
                role: Role::Learner,
            };
            let user = store
                .create_user(new)
                .await
                .map_err(|e| refuse(ApiError::from(e)))?;
            (user, None)
        }
    };
    let event = AuditEvent::Signup {
        user: &user.id,
        username: &user.username,
        role: user.role,
        invite: invite_id.as_deref(),
        addr,
    };
    state.audit(Some(&user.id), event).await;
    signed_in(state, user, StatusCode::CREATED)
        .await
        .map_err(refuse)
}

/// `status` with `user` as the body and the cookies of a new login session for them.
async fn signed_in(state: &AppState, user: User, status: StatusCode) -> ApiResult<Response> {
    let (session, secret) = state
        .store()
        .create_session(&user.id, state.config().session_ttl)
        .await?;
    let mut resp = (status, Json(UserView::from(user))).into_response();
    for c in auth::login_cookies(state, &secret, &session.csrf_token) {
        if let Ok(v) = HeaderValue::from_str(&c) {
            resp.headers_mut().append(SET_COOKIE, v);
        }
    }
    Ok(resp)
}

fn invite_refused(why: LinkRefusal) -> ApiError {
    let message = match why {
        LinkRefusal::Expired => "The invitation link has expired; ask for a new one.",
        LinkRefusal::UsedUp => {
            "The invitation link has been used as often as it allows; ask for a new one."
        }
        LinkRefusal::Unknown | LinkRefusal::Disabled => {
            "The invitation link is not valid: it was mistyped or has been deleted."
        }
    };
    ApiError::bad_request("invalid_invite", message)
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResetRequest {
    /// The `token` of the reset link.
    pub token: String,
    /// The new password: at least 8 characters.
    #[schema(min_length = 8, max_length = 1024)]
    pub password: String,
}

/// Sets a password with a reset link (once); ends every login session of the user.
#[utoipa::path(post, path = "/api/v1/auth/reset", tag = "auth", security(()),
    request_body = ResetRequest,
    responses((status = 204), (status = 400, body = ErrorBody), (status = 429, body = ErrorBody)))]
pub async fn reset_password(
    State(state): State<AppState>,
    ClientAddr(addr): ClientAddr,
    JsonBody(req): JsonBody<ResetRequest>,
) -> Response {
    if let Err(wait) = state.login_by_addr().check(&addr) {
        return rate_limited(wait);
    }
    let token = if req.token.len() > MAX_LINK_SECRET {
        ""
    } else {
        &req.token
    };
    match state
        .store()
        .redeem_password_reset(token, req.password)
        .await
    {
        Ok(Ok(user)) => {
            let event = AuditEvent::PasswordReset {
                user: &user.id,
                addr: &addr,
            };
            state.audit(Some(&user.id), event).await;
            StatusCode::NO_CONTENT.into_response()
        }
        Ok(Err(why)) => reset_refused(why).into_response(),
        Err(e) => ApiError::from(e).into_response(),
    }
}

fn reset_refused(why: LinkRefusal) -> ApiError {
    let message = match why {
        LinkRefusal::Unknown => {
            "The reset link is not valid: it was mistyped or a newer one replaced it."
        }
        LinkRefusal::Expired => "The reset link has expired; ask an admin for a new one.",
        LinkRefusal::UsedUp => "The reset link has been used already; ask an admin for a new one.",
        LinkRefusal::Disabled => "The account is disabled; ask an admin.",
    };
    ApiError::bad_request("invalid_reset", message)
}
