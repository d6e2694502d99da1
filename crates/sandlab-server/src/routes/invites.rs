//! Invitation links to sign up, for admins: each allows a number of sign-ups with a role
//! until it expires. The secret is shown once, in the answer to its creation.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use sandlab_store::links::{parse_invite_ttl, DEFAULT_INVITE_TTL, MAX_INVITE_USES};
use sandlab_store::{Invite, NewInvite, Role};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::audit::AuditEvent;
use crate::auth::Admin;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{JsonOrEmpty, QueryParams};
use crate::routes::{ListOf, ListQuery};
use crate::state::AppState;

#[derive(Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateInvite {
    /// `learner` (default), `author` or `admin`: the role of those who sign up with it.
    #[schema(example = "learner")]
    pub role: Option<String>,
    /// How long it stays valid: `7d` (default) up to `90d`, or `12h`, `30m`.
    #[schema(example = "7d")]
    pub expires_in: Option<String>,
    /// How many sign-ups it allows, 1 (default) to 1000.
    #[schema(example = 1, minimum = 1, maximum = 1000)]
    pub uses: Option<i64>,
}

/// An invitation as listed (its secret is never shown again).
#[derive(Serialize, ToSchema)]
pub struct InviteView {
    #[schema(example = "inv-3kq7x2m4p9abcdef")]
    pub id: String,
    /// `learner`, `author` or `admin`.
    #[schema(example = "learner")]
    pub role: String,
    /// Unix time in milliseconds after which it no longer works.
    pub expires_at_ms: i64,
    /// Sign-ups it allows.
    pub uses: u32,
    /// Sign-ups it has had.
    pub used: u32,
    /// The admin who made it; `null` when made with `sandlab user invite`.
    pub created_by: Option<String>,
    /// Unix time in milliseconds.
    pub created_at_ms: i64,
}

impl From<Invite> for InviteView {
    fn from(i: Invite) -> InviteView {
        InviteView {
            id: i.id,
            role: i.role.as_str().to_owned(),
            expires_at_ms: i.expires_at_ms,
            uses: i.uses,
            used: i.used,
            created_by: i.created_by,
            created_at_ms: i.created_at_ms,
        }
    }
}

/// A new invitation with its secret, shown this once.
#[derive(Serialize, ToSchema)]
pub struct CreatedInvite {
    #[serde(flatten)]
    pub invite: InviteView,
    /// The secret (stored only as a hash): the `invite` of `POST /auth/signup`.
    #[schema(example = "inv_0123...")]
    pub token: String,
    /// The sign-up page's path with the secret, relative to the site.
    #[schema(example = "/signup?invite=inv_0123...")]
    pub url: String,
}

/// The sign-up page's path for an invitation secret (hex, so nothing to escape).
pub fn invite_path(secret: &str) -> String {
    format!("/signup?invite={secret}")
}

fn new_invite(req: CreateInvite, admin: &str) -> ApiResult<NewInvite> {
    let role = match req.role.as_deref() {
        None => Role::Learner,
        Some(r) => r.parse::<Role>().map_err(|_| {
            ApiError::bad_request("invalid", "The role must be learner, author or admin.")
        })?,
    };
    let ttl = match req.expires_in.as_deref() {
        None => DEFAULT_INVITE_TTL,
        Some(s) => parse_invite_ttl(s)
            .map_err(|e| ApiError::bad_request("invalid", crate::error::sentence(e.to_string())))?,
    };
    let uses = match req.uses {
        None => 1,
        Some(n) => u32::try_from(n)
            .ok()
            .filter(|n| (1..=MAX_INVITE_USES).contains(n))
            .ok_or_else(|| {
                ApiError::bad_request(
                    "invalid",
                    format!("uses must be between 1 and {MAX_INVITE_USES}."),
                )
            })?,
    };
    Ok(NewInvite {
        role,
        ttl,
        uses,
        created_by: Some(admin.to_owned()),
    })
}

/// Creates an invitation link to sign up.
#[utoipa::path(post, path = "/api/v1/invites", tag = "users", request_body = CreateInvite,
    responses((status = 201, body = CreatedInvite), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn create_invite(
    State(state): State<AppState>,
    Admin(admin): Admin,
    JsonOrEmpty(req): JsonOrEmpty<CreateInvite>,
) -> ApiResult<(StatusCode, Json<CreatedInvite>)> {
    let new = new_invite(req, &admin.user.id)?;
    let (invite, secret) = state.store().create_invite(new).await?;
    let event = AuditEvent::InviteCreate {
        invite: &invite.id,
        role: invite.role,
        uses: invite.uses,
        expires_at_ms: invite.expires_at_ms,
    };
    state.audit(Some(&admin.user.id), event).await;
    Ok((
        StatusCode::CREATED,
        Json(CreatedInvite {
            invite: invite.into(),
            url: invite_path(&secret),
            token: secret,
        }),
    ))
}

/// Every invitation, oldest first (used-up and expired ones too; never their secrets).
#[utoipa::path(get, path = "/api/v1/invites", tag = "users", params(ListQuery),
    responses((status = 200, body = ListOf<InviteView>), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn list_invites(
    State(state): State<AppState>,
    Admin(_): Admin,
    QueryParams(q): QueryParams<ListQuery>,
) -> ApiResult<Json<ListOf<InviteView>>> {
    let page = state.store().list_invites(q.page()?).await?;
    Ok(Json(ListOf {
        items: page.items.into_iter().map(Into::into).collect(),
        next: page.next,
    }))
}

/// Deletes an invitation: its link stops working.
#[utoipa::path(delete, path = "/api/v1/invites/{id}", tag = "users",
    params(("id" = String, Path, description = "Invitation id")),
    responses((status = 204), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub async fn delete_invite(
    State(state): State<AppState>,
    Admin(admin): Admin,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    if id.len() > 64 {
        return Err(ApiError::not_found("invitation"));
    }
    state.store().delete_invite(&id).await?;
    let event = AuditEvent::InviteDelete { invite: &id };
    state.audit(Some(&admin.user.id), event).await;
    Ok(StatusCode::NO_CONTENT)
}
