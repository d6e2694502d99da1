//! Raw sandboxes: create (from the warm pool when a profile matches), list, get, extend,
//! delete. A user sees and touches only their own; another user's id answers 404.

use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use sandlab_core::SandboxRecord;
use sandlab_core::{parse_duration, parse_size, ByteSize, Limits, NetworkMode, Profile, SandboxId};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::admission::{self, Asked};
use crate::audit::AuditEvent;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{JsonBody, QueryParams};
use crate::routes::{ListOf, ListQuery};
use crate::sandboxes::NewSandbox;
use crate::state::AppState;

/// Body of `POST /sandboxes`; every field has a default.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateSandbox {
    /// Image name (default: the server's default image, `debian`).
    #[schema(example = "debian")]
    pub image: Option<String>,
    /// Memory limit with a K/M/G suffix, 16M..64G (default 512M); swap is off.
    #[schema(example = "512M")]
    pub memory: Option<String>,
    /// CPUs, 0.01..64 (default 1).
    #[schema(example = 1.0)]
    pub cpus: Option<f64>,
    /// Most processes, 8..1048576 (default 256).
    #[schema(example = 256)]
    pub pids: Option<u32>,
    /// Writable layer size, 16M..1024G (default 2G).
    #[schema(example = "2G")]
    pub disk: Option<String>,
    /// `none` (loopback only, default) or `egress` (NAT to the internet).
    #[schema(example = "none")]
    pub network: Option<String>,
    /// `standard` (default: a hardened shell) or `machine` (systemd as PID 1, Docker,
    /// containerd and podman inside; the operator may switch it off).
    #[schema(example = "standard")]
    pub profile: Option<String>,
    /// The hostname inside, a DNS label: 1 to 63 of `a-z`, `0-9` and `-`, not starting or
    /// ending with `-` (default `sandbox`).
    #[schema(example = "web01")]
    pub hostname: Option<String>,
    /// Time to live, e.g. `30m` (default and maximum set by the server).
    #[schema(example = "30m")]
    pub ttl: Option<String>,
    /// The organisation (id or slug) the sandbox counts against; the caller must belong to
    /// it. Default: the caller's only organisation, if they have exactly one. Its caps
    /// bound the limits and TTL.
    #[schema(example = "acme")]
    pub org: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct LimitsView {
    #[schema(example = "512M")]
    pub memory: String,
    pub cpus: f64,
    pub pids: u32,
    #[schema(example = "2G")]
    pub disk: String,
    #[schema(example = "none")]
    pub network: String,
    /// `standard` or `machine`.
    #[schema(example = "standard")]
    pub profile: String,
}

/// A sandbox as the API shows it.
#[derive(Serialize, ToSchema)]
pub struct SandboxView {
    #[schema(example = "sb-abcdefghijkl")]
    pub id: String,
    /// `creating`, `running`, `stopping`, `removed` or `failed`.
    #[schema(example = "running")]
    pub state: String,
    /// Why it failed, when it did.
    pub reason: Option<String>,
    pub image: String,
    /// The hostname inside.
    pub hostname: Option<String>,
    /// The owning user's id.
    pub owner: Option<String>,
    pub limits: LimitsView,
    /// Unix time in milliseconds.
    pub created_at_ms: u64,
    /// Unix time in milliseconds when the sandbox is removed.
    pub expires_at_ms: u64,
    /// Time left before removal, in milliseconds.
    pub ttl_left_ms: u64,
    pub ipv4: Option<String>,
    pub ipv6: Option<String>,
}

pub fn view(state: &AppState, r: SandboxRecord) -> SandboxView {
    let left = state.sandboxes().time_left(&r);
    SandboxView {
        id: r.id.to_string(),
        state: r.state.to_string(),
        reason: r.reason,
        image: r.image,
        hostname: r.hostname,
        owner: r.owner,
        limits: LimitsView {
            memory: r.limits.memory.to_string(),
            cpus: r.limits.cpus,
            pids: r.limits.pids,
            disk: r.limits.disk.to_string(),
            network: r.limits.network.to_string(),
            profile: r.limits.profile.to_string(),
        },
        created_at_ms: r.created_at_ms,
        expires_at_ms: r.deadline_ms,
        ttl_left_ms: u64::try_from(left.as_millis()).unwrap_or(u64::MAX),
        ipv4: r.network.ipv4,
        ipv6: r.network.ipv6,
    }
}

/// The caller's sandbox `id` (any sandbox for an admin); 404 otherwise.
pub async fn load(state: &AppState, caller: &Caller, id: &str) -> ApiResult<SandboxRecord> {
    let id: SandboxId = id.parse().map_err(|_| ApiError::not_found("sandbox"))?;
    Ok(state
        .store()
        .get_sandbox(&id, caller.owner_filter())
        .await?)
}

/// An RFC 1123 label in lowercase.
fn is_label(h: &str) -> bool {
    (1..=63).contains(&h.len())
        && h.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !h.starts_with('-')
        && !h.ends_with('-')
}

fn invalid(field: &str, detail: impl std::fmt::Display) -> ApiError {
    ApiError::bad_request(
        "invalid_limits",
        format!("The field `{field}` is invalid: {detail}."),
    )
}

/// A TTL from the request, bounded by the server's maximum.
pub fn ttl(state: &AppState, value: Option<&str>) -> ApiResult<Duration> {
    let cfg = state.config();
    let ttl = match value {
        Some(s) => parse_duration(s).map_err(|e| invalid("ttl", e))?,
        None => cfg.default_ttl,
    };
    if ttl < Duration::from_secs(1) || ttl > cfg.max_ttl {
        return Err(invalid(
            "ttl",
            format!(
                "it must be between 1s and the server's maximum of {}s",
                cfg.max_ttl.as_secs()
            ),
        ));
    }
    Ok(ttl)
}

/// The request's limits and ttl, defaulted and checked (the first problem in the order
/// the fields are listed): each value's syntax and bounds (400 `invalid_limits`), then the
/// caller's role maxima (400 `over_limit`); defaults are cut to the role and the host.
async fn limits_and_ttl(
    state: &AppState,
    caller: &Caller,
    req: &CreateSandbox,
    org: Option<&sandlab_store::Org>,
) -> ApiResult<(Limits, Duration)> {
    let size = |field, v: &Option<String>| -> ApiResult<Option<ByteSize>> {
        v.as_deref()
            .map(|s| parse_size(s).map(ByteSize).map_err(|e| invalid(field, e)))
            .transpose()
    };
    let asked = Asked {
        memory: size("memory", &req.memory)?,
        disk: size("disk", &req.disk)?,
        cpus: req.cpus,
        pids: req.pids,
        ttl: req
            .ttl
            .as_deref()
            .map(|t| ttl(state, Some(t)))
            .transpose()?,
    };
    let mut named = Limits::default();
    named.memory = asked.memory.unwrap_or(named.memory);
    named.disk = asked.disk.unwrap_or(named.disk);
    named.cpus = asked.cpus.unwrap_or(named.cpus);
    named.pids = asked.pids.unwrap_or(named.pids);
    if let Some(n) = &req.network {
        named.network = n
            .parse::<NetworkMode>()
            .map_err(|e| invalid("network", e))?;
    }
    if let Some(p) = &req.profile {
        named.profile = p.parse::<Profile>().map_err(|e| invalid("profile", e))?;
    }
    let bounds = |l: &Limits| {
        l.validate().map_err(|e| {
            ApiError::bad_request("invalid_limits", crate::error::sentence(e.to_string()))
        })
    };
    bounds(&named)?;
    if let Some(org) = org {
        crate::orgs::check_asked(&asked, org)
            .map_err(|e| ApiError::bad_request("over_limit", e.to_string()))?;
    }
    let role = caller.user.role;
    let share = state.sandboxes().share().await?;
    let cfg = state.config();
    let (limits, ttl) = admission::limits_for(
        role,
        &crate::orgs::cap_role_limit(cfg.role_limits.of(role), org),
        &share,
        named,
        cfg.default_ttl,
        &asked,
    )?;
    bounds(&limits)?;
    Ok((limits, ttl))
}

/// 429 `quota_exceeded` saying what holds the caller's sandboxes, so they know what to
/// stop: their running lab sessions by title, and how many other sandboxes (playgrounds,
/// API sandboxes) they have.
pub async fn quota_error(state: &AppState, caller: &Caller, quota: u64) -> ApiError {
    let sessions = state
        .lab_sessions()
        .active(Some(&caller.user.id))
        .await
        .unwrap_or_default();
    let labs = state.labs();
    let mut in_sessions = 0;
    let mut titles = Vec::new();
    for r in &sessions {
        in_sessions += r.nodes.len();
        let title = labs
            .iter()
            .find(|l| l.slug == r.lab)
            .map_or_else(|| r.lab.clone(), |l| l.title.clone());
        titles.push(format!("\"{title}\""));
    }
    let live = state
        .store()
        .count_live_sandboxes(&caller.user.id)
        .await
        .unwrap_or(0);
    let others = usize::try_from(live)
        .unwrap_or(usize::MAX)
        .saturating_sub(in_sessions);
    let mut held = Vec::new();
    if !titles.is_empty() {
        held.push(format!(
            "{in_sessions} in the lab session(s) {}",
            titles.join(", ")
        ));
    }
    if others > 0 {
        held.push(format!("{others} playground or API sandbox(es)"));
    }
    let held = if held.is_empty() {
        String::new()
    } else {
        format!(": {}", held.join(" and "))
    };
    ApiError::too_many(
        "quota_exceeded",
        format!(
            "You already have {live} of your {quota} sandboxes{held}. End a lab session or stop a playground to start another."
        ),
    )
}

/// Admits one more sandbox creation by `caller` under the per-user rate limit (429
/// `rate_limited`) and returns their quota of live sandboxes (admins have none).
pub fn admit_create(state: &AppState, caller: &Caller) -> ApiResult<u64> {
    if let Err(wait) = state.creates().check(&caller.user.id) {
        return Err(ApiError::too_many(
            "rate_limited",
            format!(
                "Too many sandboxes created recently; try again in {} seconds.",
                wait.as_secs().max(1)
            ),
        ));
    }
    Ok(if caller.is_admin() {
        u64::MAX
    } else {
        state.config().max_sandboxes_per_user
    })
}

/// Creates a sandbox and returns it running.
#[utoipa::path(post, path = "/api/v1/sandboxes", tag = "sandboxes", request_body = CreateSandbox,
    responses((status = 201, body = SandboxView), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 413, body = ErrorBody), (status = 429, body = ErrorBody),
        (status = 502, body = ErrorBody), (status = 503, body = ErrorBody), (status = 507, body = ErrorBody)))]
pub async fn create_sandbox(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(req): JsonBody<CreateSandbox>,
) -> ApiResult<(StatusCode, Json<SandboxView>)> {
    let org = super::orgs::charge(&state, &caller, req.org.as_deref(), None).await?;
    let (limits, ttl) = limits_and_ttl(&state, &caller, &req, org.as_ref()).await?;
    let image = req
        .image
        .clone()
        .unwrap_or_else(|| state.config().default_image.clone());
    let hostname = match req.hostname.as_deref() {
        None => crate::sandboxes::API_HOSTNAME.to_owned(),
        Some(h) if is_label(h) => h.to_owned(),
        Some(h) => {
            return Err(ApiError::bad_request(
                "invalid_hostname",
                format!(
                    "The hostname {:?} is not 1 to 63 of a-z, 0-9 and -, starting and ending with a letter or digit.",
                    h.chars().take(70).collect::<String>()
                ),
            ))
        }
    };
    let quota = admit_create(&state, &caller)?;
    let created = state
        .sandboxes()
        .create(NewSandbox {
            image,
            limits,
            ttl,
            owner: caller.user.id.clone(),
            quota,
            hostname: Some(hostname),
            playground: None,
            org,
        })
        .await;
    let rec = match created {
        Err(crate::sandboxes::SandboxError::QuotaExceeded { .. }) => {
            return Err(quota_error(&state, &caller, quota).await)
        }
        other => other?,
    };
    let event = AuditEvent::SandboxCreate {
        sandbox: &rec.id,
        image: &rec.image,
    };
    state.audit(Some(&caller.user.id), event).await;
    Ok((StatusCode::CREATED, Json(view(&state, rec))))
}

/// The caller's sandboxes (every sandbox for an admin), oldest first.
#[utoipa::path(get, path = "/api/v1/sandboxes", tag = "sandboxes", params(ListQuery),
    responses((status = 200, body = ListOf<SandboxView>), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)))]
pub async fn list_sandboxes(
    State(state): State<AppState>,
    caller: Caller,
    QueryParams(q): QueryParams<ListQuery>,
) -> ApiResult<Json<ListOf<SandboxView>>> {
    let page = state
        .store()
        .list_sandboxes(caller.owner_filter(), q.page()?)
        .await?;
    Ok(Json(ListOf {
        items: page.items.into_iter().map(|r| view(&state, r)).collect(),
        next: page.next,
    }))
}

/// One sandbox.
#[utoipa::path(get, path = "/api/v1/sandboxes/{id}", tag = "sandboxes",
    params(("id" = String, Path, description = "Sandbox id")),
    responses((status = 200, body = SandboxView), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn get_sandbox(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<SandboxView>> {
    let rec = load(&state, &caller, &id).await?;
    Ok(Json(view(&state, rec)))
}

/// Stops and removes a sandbox.
#[utoipa::path(delete, path = "/api/v1/sandboxes/{id}", tag = "sandboxes",
    params(("id" = String, Path, description = "Sandbox id")),
    responses((status = 204), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn delete_sandbox(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let rec = load(&state, &caller, &id).await?;
    state.sandboxes().remove_detached(&rec.id).await?;
    let event = AuditEvent::SandboxDelete { sandbox: &rec.id };
    state.audit(Some(&caller.user.id), event).await;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExtendSandbox {
    /// New time to live from now (default: the server's default TTL).
    #[schema(example = "30m")]
    pub ttl: Option<String>,
}

/// What `POST /sandboxes/{id}/processes/kill` did.
#[derive(Debug, Serialize, ToSchema)]
pub struct KilledView {
    /// Processes killed (everything but the sandbox's init).
    pub killed: usize,
}

/// Kills every process in a running sandbox but its init: a fork bomb or a runaway
/// program that holds all its pids stops, and exec and terminals work again.
#[utoipa::path(post, path = "/api/v1/sandboxes/{id}/processes/kill", tag = "sandboxes",
    params(("id" = String, Path, description = "Sandbox id")),
    responses((status = 200, body = KilledView), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn kill_processes(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<KilledView>> {
    let rec = load(&state, &caller, &id).await?;
    if rec.state != sandlab_core::SandboxState::Running {
        return Err(ApiError::conflict(format!(
            "The sandbox is {}, not running.",
            rec.state
        )));
    }
    let killed = state.sandboxes().kill_processes(&rec.id).await?;
    Ok(Json(KilledView { killed }))
}

/// Moves a running sandbox's deadline to `ttl` from now.
#[utoipa::path(post, path = "/api/v1/sandboxes/{id}/extend", tag = "sandboxes", request_body = ExtendSandbox,
    params(("id" = String, Path, description = "Sandbox id")),
    responses((status = 200, body = SandboxView), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn extend_sandbox(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    JsonBody(req): JsonBody<ExtendSandbox>,
) -> ApiResult<Json<SandboxView>> {
    let rec = load(&state, &caller, &id).await?;
    let role = caller.user.role;
    let asked = Asked {
        ttl: Some(ttl(&state, req.ttl.as_deref())?),
        ..Asked::default()
    };
    // The organisation the sandbox counts against caps its lifetime too.
    let org = match state.store().sandbox_org(&rec.id).await? {
        Some(id) => match state.store().get_org(&id).await {
            Ok(org) => Some(org),
            Err(sandlab_store::Error::NotFound(_)) => None,
            Err(e) => return Err(e.into()),
        },
        None => None,
    };
    if let Some(org) = &org {
        crate::orgs::check_asked(&asked, org)
            .map_err(|e| ApiError::bad_request("over_limit", e.to_string()))?;
    }
    let cfg = state.config();
    let share = sandlab_runtime::capacity::Capacity::default().share();
    let (_, ttl) = admission::limits_for(
        role,
        &crate::orgs::cap_role_limit(cfg.role_limits.of(role), org.as_ref()),
        &share,
        Limits::default(),
        cfg.default_ttl,
        &asked,
    )?;
    let rec = state.sandboxes().extend(rec, ttl).await?;
    Ok(Json(view(&state, rec)))
}
