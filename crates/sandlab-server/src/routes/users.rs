//! Accounts, for admins: create, list, change, and password reset links.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use sandlab_store::{NewUser, Role, UserUpdate};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::audit::AuditEvent;
use crate::auth::Admin;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{JsonBody, QueryParams};
use crate::routes::{ListOf, ListQuery, UserView};
use crate::state::AppState;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateUser {
    /// 1 to 64 of a-z, 0-9, `_`, `.` and `-` (upper case is folded).
    #[schema(example = "alice", pattern = "^[A-Za-z0-9_.-]{1,64}$")]
    pub username: String,
    /// At least 8 characters.
    #[schema(min_length = 8, max_length = 1024)]
    pub password: String,
    /// `learner` (default), `author` or `admin`.
    #[schema(example = "learner")]
    pub role: Option<String>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PatchUser {
    /// `learner`, `author` or `admin`.
    pub role: Option<String>,
    /// A disabled user cannot log in; their sessions end and their tokens stop working.
    pub disabled: Option<bool>,
    /// A new password; ends the user's sessions.
    pub password: Option<String>,
}

fn role(s: Option<&str>) -> ApiResult<Option<Role>> {
    s.map(|r| {
        r.parse::<Role>().map_err(|_| {
            ApiError::bad_request("invalid", "The role must be learner, author or admin.")
        })
    })
    .transpose()
}

/// Creates a user.
#[utoipa::path(post, path = "/api/v1/users", tag = "users", request_body = CreateUser,
    responses((status = 201, body = UserView), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn create_user(
    State(state): State<AppState>,
    Admin(admin): Admin,
    JsonBody(req): JsonBody<CreateUser>,
) -> ApiResult<(StatusCode, Json<UserView>)> {
    let role = role(req.role.as_deref())?.unwrap_or(Role::Learner);
    let user = state
        .store()
        .create_user(NewUser {
            username: req.username,
            password: req.password,
            role,
        })
        .await?;
    let event = AuditEvent::UserCreate {
        user: &user.id,
        username: &user.username,
        role,
    };
    state.audit(Some(&admin.user.id), event).await;
    Ok((StatusCode::CREATED, Json(user.into())))
}

/// Every user, oldest first.
#[utoipa::path(get, path = "/api/v1/users", tag = "users", params(ListQuery),
    responses((status = 200, body = ListOf<UserView>), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn list_users(
    State(state): State<AppState>,
    Admin(_): Admin,
    QueryParams(q): QueryParams<ListQuery>,
) -> ApiResult<Json<ListOf<UserView>>> {
    let page = state.store().list_users(q.page()?).await?;
    Ok(Json(ListOf {
        items: page.items.into_iter().map(Into::into).collect(),
        next: page.next,
    }))
}

/// Changes a user's role, password or disabled flag.
#[utoipa::path(patch, path = "/api/v1/users/{id}", tag = "users", request_body = PatchUser,
    params(("id" = String, Path, description = "User id")),
    responses((status = 200, body = UserView), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn update_user(
    State(state): State<AppState>,
    Admin(admin): Admin,
    Path(id): Path<String>,
    JsonBody(req): JsonBody<PatchUser>,
) -> ApiResult<Json<UserView>> {
    if id.len() > 64 {
        return Err(ApiError::not_found("user"));
    }
    if id == admin.user.id
        && (req.disabled == Some(true) || req.role.as_deref().is_some_and(|r| r != "admin"))
    {
        return Err(ApiError::conflict(
            "An admin cannot disable or demote their own account; ask another admin.",
        ));
    }
    let update = UserUpdate {
        role: role(req.role.as_deref())?,
        disabled: req.disabled,
        password: req.password,
    };
    let (role, disabled, password_changed) =
        (update.role, update.disabled, update.password.is_some());
    let user = state.store().update_user(&id, update).await?;
    let event = AuditEvent::UserUpdate {
        user: &user.id,
        role,
        disabled,
        password_changed,
    };
    state.audit(Some(&admin.user.id), event).await;
    Ok(Json(user.into()))
}

/// A new password reset link, shown once.
#[derive(Serialize, ToSchema)]
pub struct CreatedReset {
    /// The secret (stored only as a hash): the `token` of `POST /auth/reset`.
    #[schema(example = "rst_0123...")]
    pub token: String,
    /// The reset page's path with the secret, relative to the site.
    #[schema(example = "/reset?token=rst_0123...")]
    pub url: String,
    /// Unix time in milliseconds after which it no longer works (24 hours on).
    pub expires_at_ms: i64,
}

/// Makes a one-time link (valid 24 hours) with which the user sets a new password; an
/// older link of theirs stops working.
#[utoipa::path(post, path = "/api/v1/users/{id}/password-reset", tag = "users",
    params(("id" = String, Path, description = "User id")),
    responses((status = 201, body = CreatedReset), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn create_password_reset(
    State(state): State<AppState>,
    Admin(admin): Admin,
    Path(id): Path<String>,
) -> ApiResult<(StatusCode, Json<CreatedReset>)> {
    if id.len() > 64 {
        return Err(ApiError::not_found("user"));
    }
    let (reset, secret) = state
        .store()
        .create_password_reset(&id, Some(&admin.user.id))
        .await?;
    let event = AuditEvent::PasswordResetCreate {
        user: &reset.user_id,
        expires_at_ms: reset.expires_at_ms,
    };
    state.audit(Some(&admin.user.id), event).await;
    Ok((
        StatusCode::CREATED,
        Json(CreatedReset {
            url: reset_path(&secret),
            token: secret,
            expires_at_ms: reset.expires_at_ms,
        }),
    ))
}

/// The reset page's path for a reset secret (hex, so nothing to escape).
pub fn reset_path(secret: &str) -> String {
    format!("/reset?token={secret}")
}
