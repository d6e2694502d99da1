//! Organisations: admins create them; owners (and admins) change their name and caps and
//! their members; instructors list the members and see their progress; every member sees
//! the organisations they belong to. Anyone else gets 404 for an organisation, as if it
//! did not exist.

use std::collections::{BTreeMap, HashSet};

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use sandlab_core::{parse_duration, parse_size, ByteSize};
use sandlab_store::{NewOrg, Org, OrgLimits, OrgMember, OrgRole, OrgUpdate};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::json;
use utoipa::{IntoParams, ToSchema};

use crate::audit::AuditEvent;
use crate::auth::{Admin, Caller};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{JsonBody, QueryParams};
use crate::routes::ListOf;
use crate::state::AppState;

/// An organisation's caps as the API shows and takes them; `null` is no cap.
#[derive(Serialize, ToSchema)]
pub struct OrgLimitsView {
    /// Most sandboxes the members may have at once, all together.
    pub max_sandboxes: Option<u64>,
    /// Most memory of one sandbox.
    #[schema(example = "2G")]
    pub max_memory: Option<String>,
    /// Most CPUs of one sandbox.
    pub max_cpus: Option<f64>,
    /// Longest time to live of one sandbox.
    #[schema(example = "4h")]
    pub max_ttl: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct OrgView {
    #[schema(example = "org-abcdefghijklmnop")]
    pub id: String,
    #[schema(example = "acme")]
    pub slug: String,
    pub name: String,
    pub created_at_ms: i64,
    pub limits: OrgLimitsView,
    /// The caller's role in it (`member`, `instructor`, `owner`); `null` for an admin who
    /// is not a member.
    pub role: Option<String>,
    /// Its sandboxes that hold resources now.
    pub sandboxes: u64,
}

#[derive(Serialize, ToSchema)]
pub struct MemberView {
    pub user_id: String,
    pub username: String,
    /// `member`, `instructor` or `owner`.
    pub role: String,
    pub added_at_ms: i64,
}

impl From<OrgMember> for MemberView {
    fn from(m: OrgMember) -> MemberView {
        MemberView {
            user_id: m.user_id,
            username: m.username,
            role: m.role.as_str().to_owned(),
            added_at_ms: m.added_at_ms,
        }
    }
}

fn ttl_text(secs: u64) -> String {
    match secs {
        s if s % 3600 == 0 => format!("{}h", s / 3600),
        s if s % 60 == 0 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}

async fn view(state: &AppState, org: Org, role: Option<OrgRole>) -> ApiResult<OrgView> {
    let sandboxes = state.store().count_org_sandboxes(&org.id).await?;
    let l = org.limits;
    Ok(OrgView {
        id: org.id,
        slug: org.slug,
        name: org.name,
        created_at_ms: org.created_at_ms,
        limits: OrgLimitsView {
            max_sandboxes: l.max_sandboxes,
            max_memory: l.max_memory.map(|m| ByteSize(m).to_string()),
            max_cpus: l.max_cpus,
            max_ttl: l.max_ttl_secs.map(ttl_text),
        },
        role: role.map(|r| r.as_str().to_owned()),
        sandboxes,
    })
}

/// The slugs of the organisations `caller` belongs to (what decides which organisation
/// labs they see).
pub async fn caller_orgs(state: &AppState, caller: &Caller) -> ApiResult<Vec<String>> {
    Ok(state
        .store()
        .user_orgs(&caller.user.id)
        .await?
        .into_iter()
        .map(|m| m.org.slug)
        .collect())
}

/// Organisation `key` (id or slug) and the caller's role in it, if the caller may act on
/// it with `least` (admins always): 404 for anyone not a member, 403 for a member whose
/// role is below `least`.
async fn load(
    state: &AppState,
    caller: &Caller,
    key: &str,
    least: OrgRole,
) -> ApiResult<(Org, Option<OrgRole>)> {
    let memberships = state.store().user_orgs(&caller.user.id).await?;
    let mine = memberships
        .into_iter()
        .find(|m| m.org.id == key || m.org.slug == key);
    match mine {
        Some(m) if m.role >= least || caller.is_admin() => Ok((m.org, Some(m.role))),
        Some(m) => Err(ApiError::forbidden(
            "forbidden",
            format!(
                "Only the {} of organisation {} may do this.",
                match least {
                    OrgRole::Owner => "owners",
                    _ => "instructors and owners",
                },
                m.org.slug
            ),
        )),
        None if caller.is_admin() => Ok((state.store().get_org(key).await?, None)),
        None => Err(ApiError::not_found("organisation")),
    }
}

/// The organisation a sandbox or lab session of `caller` counts against: `asked` (an id
/// or slug; the caller must belong to it, admins to any), else the lab's own (`lab_org`),
/// else none (the caller's own quota only: an owner who adds someone to an organisation
/// must not thereby cap what that person runs outside it).
pub async fn charge(
    state: &AppState,
    caller: &Caller,
    asked: Option<&str>,
    lab_org: Option<&str>,
) -> ApiResult<Option<Org>> {
    let mine = state.store().user_orgs(&caller.user.id).await?;
    let org = match asked.or(lab_org) {
        Some(key) => match mine.iter().find(|m| m.org.id == key || m.org.slug == key) {
            Some(m) => Some(m.org.clone()),
            None if caller.is_admin() => match state.store().get_org(key).await {
                Ok(org) => Some(org),
                // A lab naming an organisation that does not exist: counted against none.
                Err(sandlab_store::Error::NotFound(_)) if asked.is_none() => None,
                Err(e) => return Err(e.into()),
            },
            None => return Err(ApiError::not_found("organisation")),
        },
        None => None,
    };
    if let (Some(lab_org), Some(org)) = (lab_org, &org) {
        if org.slug != lab_org {
            return Err(ApiError::bad_request(
                "invalid_org",
                format!("This lab belongs to organisation {lab_org}; start it under that one."),
            ));
        }
    }
    Ok(org)
}

/// `Some(v)` for a present field (`null` included): a PATCH tells "remove" from "keep".
fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateOrg {
    /// 1 to 40 of a-z, 0-9 and `-`, starting with a letter or digit, not with `org-`.
    #[schema(example = "acme")]
    pub slug: String,
    /// Default: the slug.
    #[schema(example = "Acme Corp")]
    pub name: Option<String>,
    pub max_sandboxes: Option<u64>,
    /// With a K/M/G suffix.
    #[schema(example = "2G")]
    pub max_memory: Option<String>,
    pub max_cpus: Option<f64>,
    #[schema(example = "4h")]
    pub max_ttl: Option<String>,
}

/// Body of `PATCH /orgs/{id}`: the fields given are set; a cap given as `null` is removed.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PatchOrg {
    pub name: Option<String>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<u64>)]
    pub max_sandboxes: Option<Option<u64>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, example = "2G")]
    pub max_memory: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<f64>)]
    pub max_cpus: Option<Option<f64>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, example = "4h")]
    pub max_ttl: Option<Option<String>>,
}

fn invalid(field: &str, e: impl std::fmt::Display) -> ApiError {
    ApiError::bad_request("invalid", format!("The field `{field}` is invalid: {e}."))
}

fn memory(v: Option<&str>) -> ApiResult<Option<u64>> {
    v.map(|m| parse_size(m).map_err(|e| invalid("max_memory", e)))
        .transpose()
}

fn ttl(v: Option<&str>) -> ApiResult<Option<u64>> {
    v.map(|t| {
        parse_duration(t)
            .map(|d| d.as_secs().max(1))
            .map_err(|e| invalid("max_ttl", e))
    })
    .transpose()
}

/// The organisations the caller belongs to, by slug (every one for an admin).
#[utoipa::path(get, path = "/api/v1/orgs", tag = "orgs",
    responses((status = 200, body = ListOf<OrgView>), (status = 401, body = ErrorBody)))]
pub async fn list_orgs(
    State(state): State<AppState>,
    caller: Caller,
) -> ApiResult<Json<ListOf<OrgView>>> {
    let mine = state.store().user_orgs(&caller.user.id).await?;
    let mut items = Vec::new();
    if caller.is_admin() {
        for org in state.store().list_orgs().await? {
            let role = mine.iter().find(|m| m.org.id == org.id).map(|m| m.role);
            items.push(view(&state, org, role).await?);
        }
    } else {
        for m in mine {
            items.push(view(&state, m.org, Some(m.role)).await?);
        }
    }
    Ok(Json(ListOf { items, next: None }))
}

/// Creates an organisation (admins).
#[utoipa::path(post, path = "/api/v1/orgs", tag = "orgs", request_body = CreateOrg,
    responses((status = 201, body = OrgView), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn create_org(
    State(state): State<AppState>,
    Admin(admin): Admin,
    JsonBody(req): JsonBody<CreateOrg>,
) -> ApiResult<(StatusCode, Json<OrgView>)> {
    let org = state
        .store()
        .create_org(NewOrg {
            slug: req.slug,
            name: req.name,
            limits: OrgLimits {
                max_sandboxes: req.max_sandboxes,
                max_memory: memory(req.max_memory.as_deref())?,
                max_cpus: req.max_cpus,
                max_ttl_secs: ttl(req.max_ttl.as_deref())?,
            },
        })
        .await?;
    let event = AuditEvent::OrgCreate {
        org: &org.id,
        slug: &org.slug,
    };
    state.audit(Some(&admin.user.id), event).await;
    Ok((StatusCode::CREATED, Json(view(&state, org, None).await?)))
}

/// One organisation (its members and admins).
#[utoipa::path(get, path = "/api/v1/orgs/{id}", tag = "orgs",
    params(("id" = String, Path, description = "Organisation id or slug")),
    responses((status = 200, body = OrgView), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn get_org(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<OrgView>> {
    let (org, role) = load(&state, &caller, &id, OrgRole::Member).await?;
    Ok(Json(view(&state, org, role).await?))
}

/// Changes an organisation's name and caps (its owners and admins).
#[utoipa::path(patch, path = "/api/v1/orgs/{id}", tag = "orgs", request_body = PatchOrg,
    params(("id" = String, Path, description = "Organisation id or slug")),
    responses((status = 200, body = OrgView), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn update_org(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    JsonBody(req): JsonBody<PatchOrg>,
) -> ApiResult<Json<OrgView>> {
    let (org, role) = load(&state, &caller, &id, OrgRole::Owner).await?;
    let update = OrgUpdate {
        name: req.name.clone(),
        max_sandboxes: req.max_sandboxes,
        max_memory: req
            .max_memory
            .as_ref()
            .map(|m| memory(m.as_deref()))
            .transpose()?,
        max_cpus: req.max_cpus,
        max_ttl_secs: req
            .max_ttl
            .as_ref()
            .map(|t| ttl(t.as_deref()))
            .transpose()?,
    };
    let org = state.store().update_org(&org.id, update).await?;
    let detail = json!({
        "name": req.name,
        "max_sandboxes": req.max_sandboxes,
        "max_memory": req.max_memory,
        "max_cpus": req.max_cpus,
        "max_ttl": req.max_ttl,
    });
    let event = AuditEvent::OrgUpdate {
        org: &org.id,
        detail: &detail,
    };
    state.audit(Some(&caller.user.id), event).await;
    Ok(Json(view(&state, org, role).await?))
}

/// Deletes an organisation with its memberships (its owners and admins). Its sandboxes
/// run on until they end; its labs are then seen by admins only.
#[utoipa::path(delete, path = "/api/v1/orgs/{id}", tag = "orgs",
    params(("id" = String, Path, description = "Organisation id or slug")),
    responses((status = 204), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn delete_org(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let (org, _) = load(&state, &caller, &id, OrgRole::Owner).await?;
    state.store().delete_org(&org.id).await?;
    let event = AuditEvent::OrgDelete {
        org: &org.id,
        slug: &org.slug,
    };
    state.audit(Some(&caller.user.id), event).await;
    Ok(StatusCode::NO_CONTENT)
}

/// The members, by username (instructors, owners and admins).
#[utoipa::path(get, path = "/api/v1/orgs/{id}/members", tag = "orgs",
    params(("id" = String, Path, description = "Organisation id or slug")),
    responses((status = 200, body = ListOf<MemberView>), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn list_org_members(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<ListOf<MemberView>>> {
    let (org, _) = load(&state, &caller, &id, OrgRole::Instructor).await?;
    let items = state.store().list_org_members(&org.id).await?;
    Ok(Json(ListOf {
        items: items.into_iter().map(MemberView::from).collect(),
        next: None,
    }))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddMember {
    /// The user's username or id.
    #[schema(example = "alice")]
    pub user: String,
    /// `member` (default), `instructor` or `owner`.
    #[schema(example = "member")]
    pub role: Option<String>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PatchMember {
    /// `member`, `instructor` or `owner`.
    #[schema(example = "instructor")]
    pub role: String,
}

fn org_role(s: &str) -> ApiResult<OrgRole> {
    s.parse().map_err(|_| {
        ApiError::bad_request("invalid", "The role must be member, instructor or owner.")
    })
}

/// The user a username or id names; 404 when there is none.
async fn user_id(state: &AppState, user: &str) -> ApiResult<String> {
    let found = match state.store().get_user(user).await {
        Ok(u) => u,
        Err(sandlab_store::Error::NotFound(_)) => state.store().get_user_by_name(user).await?,
        Err(e) => return Err(e.into()),
    };
    Ok(found.id)
}

async fn set_member(
    state: &AppState,
    caller: &Caller,
    org: &Org,
    user: &str,
    role: OrgRole,
) -> ApiResult<MemberView> {
    let member = state.store().set_org_member(&org.id, user, role).await?;
    let event = AuditEvent::OrgMemberSet {
        org: &org.id,
        user: &member.user_id,
        role: role.as_str(),
    };
    state.audit(Some(&caller.user.id), event).await;
    Ok(member.into())
}

/// Adds a user, or changes their role (owners and admins).
#[utoipa::path(post, path = "/api/v1/orgs/{id}/members", tag = "orgs", request_body = AddMember,
    params(("id" = String, Path, description = "Organisation id or slug")),
    responses((status = 201, body = MemberView), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn add_org_member(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    JsonBody(req): JsonBody<AddMember>,
) -> ApiResult<(StatusCode, Json<MemberView>)> {
    let (org, _) = load(&state, &caller, &id, OrgRole::Owner).await?;
    let role = org_role(req.role.as_deref().unwrap_or("member"))?;
    let user = user_id(&state, &req.user).await?;
    let member = set_member(&state, &caller, &org, &user, role).await?;
    Ok((StatusCode::CREATED, Json(member)))
}

/// Changes a member's role (owners and admins).
#[utoipa::path(patch, path = "/api/v1/orgs/{id}/members/{user_id}", tag = "orgs", request_body = PatchMember,
    params(("id" = String, Path, description = "Organisation id or slug"), ("user_id" = String, Path, description = "User id or username")),
    responses((status = 200, body = MemberView), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn update_org_member(
    State(state): State<AppState>,
    caller: Caller,
    Path((id, user)): Path<(String, String)>,
    JsonBody(req): JsonBody<PatchMember>,
) -> ApiResult<Json<MemberView>> {
    let (org, _) = load(&state, &caller, &id, OrgRole::Owner).await?;
    let role = org_role(&req.role)?;
    let user = user_id(&state, &user).await?;
    let members = state.store().list_org_members(&org.id).await?;
    if !members.iter().any(|m| m.user_id == user) {
        return Err(ApiError::not_found("organisation member"));
    }
    Ok(Json(set_member(&state, &caller, &org, &user, role).await?))
}

/// Removes a member (owners and admins).
#[utoipa::path(delete, path = "/api/v1/orgs/{id}/members/{user_id}", tag = "orgs",
    params(("id" = String, Path, description = "Organisation id or slug"), ("user_id" = String, Path, description = "User id or username")),
    responses((status = 204), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn remove_org_member(
    State(state): State<AppState>,
    caller: Caller,
    Path((id, user)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let (org, _) = load(&state, &caller, &id, OrgRole::Owner).await?;
    let user = user_id(&state, &user).await?;
    state.store().remove_org_member(&org.id, &user).await?;
    let event = AuditEvent::OrgMemberRemove {
        org: &org.id,
        user: &user,
    };
    state.audit(Some(&caller.user.id), event).await;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ProgressQuery {
    /// Only this lab (its slug); default every lab the organisation's members see.
    pub lab: Option<String>,
}

/// One member's progress in one lab.
#[derive(Serialize, ToSchema)]
pub struct LabDone {
    pub lab: String,
    pub title: String,
    /// Checked tasks done, in the order they were done.
    pub tasks: Vec<String>,
    pub done: usize,
    /// Checked tasks of the lab.
    pub total: usize,
}

#[derive(Serialize, ToSchema)]
pub struct MemberProgress {
    pub user_id: String,
    pub username: String,
    pub role: String,
    /// One entry per lab (the lab asked for, or every lab), in catalogue order.
    pub labs: Vec<LabDone>,
}

/// Each member's done tasks, for one lab or every lab (instructors, owners and admins).
#[utoipa::path(get, path = "/api/v1/orgs/{id}/progress", tag = "orgs",
    params(("id" = String, Path, description = "Organisation id or slug"), ProgressQuery),
    responses((status = 200, body = ListOf<MemberProgress>), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn org_progress(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    QueryParams(q): QueryParams<ProgressQuery>,
) -> ApiResult<Json<ListOf<MemberProgress>>> {
    let (org, _) = load(&state, &caller, &id, OrgRole::Instructor).await?;
    // The labs a member of this organisation sees (drafts aside): a bootcamp teaches with
    // the public catalogue as much as with its own labs. Organisations are made by admins
    // and their owners appointed by admins or owners, who are trusted with this.
    let slugs = [org.slug.clone()];
    let all = state.labs();
    let labs: Vec<_> = all
        .iter()
        .filter(|l| !l.draft && crate::orgs::lab_visible(l, sandlab_store::Role::Learner, &slugs))
        .filter(|l| q.lab.as_deref().is_none_or(|s| s == l.slug))
        .collect();
    if q.lab.is_some() && labs.is_empty() {
        return Err(ApiError::not_found("lab"));
    }
    let mut items = Vec::new();
    for m in state.store().list_org_members(&org.id).await? {
        let mut done: BTreeMap<String, Vec<String>> = BTreeMap::new();
        match &q.lab {
            Some(slug) => {
                done.insert(
                    slug.clone(),
                    state.store().done_tasks(&m.user_id, slug).await?,
                );
            }
            None => {
                for (lab, task) in state.store().all_done_tasks(&m.user_id).await? {
                    done.entry(lab).or_default().push(task);
                }
            }
        }
        let labs = labs
            .iter()
            .map(|l| {
                let checked: HashSet<&str> = l.checked_tasks().map(|t| t.id.as_str()).collect();
                let tasks: Vec<String> = done
                    .get(&l.slug)
                    .map(|d| {
                        d.iter()
                            .filter(|t| checked.contains(t.as_str()))
                            .cloned()
                            .collect()
                    })
                    .unwrap_or_default();
                LabDone {
                    lab: l.slug.clone(),
                    title: l.title.clone(),
                    done: tasks.len(),
                    total: checked.len(),
                    tasks,
                }
            })
            .collect();
        items.push(MemberProgress {
            user_id: m.user_id,
            username: m.username,
            role: m.role.as_str().to_owned(),
            labs,
        });
    }
    Ok(Json(ListOf { items, next: None }))
}
