//! The lab catalogue (read-only here; lab sessions build on it).

use std::collections::{HashMap, HashSet};

use axum::extract::{Path, State};
use axum::Json;
use sandlab_lab::Lab;
use serde::Serialize;
use utoipa::ToSchema;

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::routes::ListOf;
use crate::state::AppState;

#[derive(Serialize, ToSchema)]
pub struct LabSummary {
    #[schema(example = "files-and-permissions")]
    pub slug: String,
    pub title: String,
    pub description: String,
    /// `tutorial` or `challenge`.
    pub kind: String,
    pub tags: Vec<String>,
    /// Not published: shown to authors and admins only, for a preview.
    pub draft: bool,
    /// Checked tasks (init tasks not counted).
    pub tasks: usize,
    pub nodes: usize,
    pub ttl_ms: u64,
    /// The caller's progress in this lab.
    pub progress: LabProgress,
}

#[derive(Serialize, ToSchema)]
pub struct LabProgress {
    /// Checked tasks the caller has done (in any session of this lab).
    pub done: usize,
    /// Checked tasks of the lab.
    pub total: usize,
    /// The caller's running session of this lab, if any.
    #[schema(example = "ls-abcdefghijkl")]
    pub session: Option<String>,
}

/// The caller's progress in every lab: done checked tasks and running sessions.
struct Progress {
    done: HashMap<String, HashSet<String>>,
    running: HashMap<String, String>,
}

impl Progress {
    async fn load(state: &AppState, caller: &Caller) -> ApiResult<Progress> {
        let mut done: HashMap<String, HashSet<String>> = HashMap::new();
        for (lab, task) in state.store().all_done_tasks(&caller.user.id).await? {
            done.entry(lab).or_default().insert(task);
        }
        Ok(Progress {
            done,
            running: state.lab_sessions().active_by_lab(&caller.user.id).await?,
        })
    }

    /// Only tasks the lab still has count: an edited lab may have dropped some.
    fn of(&self, lab: &Lab) -> LabProgress {
        let done = self.done.get(&lab.slug);
        LabProgress {
            done: lab
                .checked_tasks()
                .filter(|t| done.is_some_and(|d| d.contains(t.id.as_str())))
                .count(),
            total: lab.checked_tasks().count(),
            session: self.running.get(&lab.slug).cloned(),
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct NodeView {
    pub name: String,
    pub image: String,
    pub memory: String,
    pub cpus: f64,
    pub network: String,
    /// `standard` or `machine`.
    pub profile: String,
}

#[derive(Serialize, ToSchema)]
pub struct TaskView {
    pub id: String,
    /// The author's title, if the lab gives one (else the UI spells the id as words).
    pub title: Option<String>,
    pub init: bool,
    pub needs: Vec<String>,
    pub machine: String,
    pub has_hint: bool,
}

#[derive(Serialize, ToSchema)]
pub struct ExecBlockView {
    pub id: usize,
    pub language: Option<String>,
    pub command: String,
    /// The node whose terminal Run types into.
    pub node: String,
}

#[derive(Serialize, ToSchema)]
pub struct LabDetail {
    #[serde(flatten)]
    pub summary: LabSummary,
    /// The rendered, sanitised text.
    pub html: String,
    pub playground: Vec<NodeView>,
    /// `kubernetes` when the playground's nodes become a cluster before the tasks run
    /// (the session stays `starting` until every node is Ready).
    #[schema(example = "kubernetes")]
    pub cluster: Option<String>,
    pub task_list: Vec<TaskView>,
    pub exec_blocks: Vec<ExecBlockView>,
    /// The lab page's tabs in order (one terminal per node when the lab declares none).
    pub tabs: Vec<TabView>,
}

/// One tab of the lab page (`tabs:` in the lab's front matter).
#[derive(Serialize, ToSchema)]
pub struct TabView {
    /// `terminal`, `service` (a port of a node through the proxy), `editor` (files of a
    /// node from `path`) or `website` (`url`).
    #[schema(example = "service")]
    pub kind: String,
    pub node: Option<String>,
    pub port: Option<u16>,
    pub path: Option<String>,
    pub url: Option<String>,
    pub title: String,
}

fn summary(l: &Lab, progress: &Progress) -> LabSummary {
    LabSummary {
        slug: l.slug.clone(),
        title: l.title.clone(),
        description: l.description.clone(),
        kind: serde_json::to_value(l.kind)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default(),
        tags: l.tags.clone(),
        draft: l.draft,
        tasks: l.checked_tasks().count(),
        nodes: l.playground.nodes.len(),
        ttl_ms: u64::try_from(l.playground.ttl.as_millis()).unwrap_or(u64::MAX),
        progress: progress.of(l),
    }
}

/// Whether `caller`, a member of the organisations with slugs `orgs`
/// ([`super::orgs::caller_orgs`]), may see and start `lab`: a draft is for authors and
/// admins only, an organisation's lab for its members and admins (anyone else gets 404,
/// as for a lab that does not exist).
pub fn visible_to(lab: &Lab, caller: &Caller, orgs: &[String]) -> bool {
    crate::orgs::lab_visible(lab, caller.user.role, orgs)
}

/// The lab catalogue.
#[utoipa::path(get, path = "/api/v1/labs", tag = "labs",
    responses((status = 200, body = ListOf<LabSummary>), (status = 401, body = ErrorBody)))]
pub async fn list_labs(
    State(state): State<AppState>,
    caller: Caller,
) -> ApiResult<Json<ListOf<LabSummary>>> {
    let labs = state.labs();
    let progress = Progress::load(&state, &caller).await?;
    let orgs = super::orgs::caller_orgs(&state, &caller).await?;
    Ok(Json(ListOf {
        items: labs
            .iter()
            .filter(|l| visible_to(l, &caller, &orgs))
            .map(|l| summary(l, &progress))
            .collect(),
        next: None,
    }))
}

/// One problem that keeps a lab out of the catalogue.
#[derive(Serialize, ToSchema)]
pub struct LabProblemView {
    /// The file, relative to its labs directory.
    #[schema(example = "nginx-first-page/index.md")]
    pub file: String,
    /// 1-based; 0 when the problem is about the whole file or directory.
    pub line: usize,
    pub column: Option<usize>,
    pub message: String,
}

/// Why labs are missing from the catalogue (authors and admins): every problem of its
/// last load, each with its file and line. Learners get 403.
#[utoipa::path(get, path = "/api/v1/lab-problems", tag = "labs",
    responses((status = 200, body = ListOf<LabProblemView>), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn list_lab_problems(
    State(state): State<AppState>,
    caller: Caller,
) -> ApiResult<Json<ListOf<LabProblemView>>> {
    if caller.user.role == sandlab_store::Role::Learner {
        return Err(ApiError::forbidden(
            "forbidden",
            "Only authors and admins see why labs are left out of the catalogue.",
        ));
    }
    let dirs = state.config().lab_dirs();
    let items = state
        .lab_problems()
        .iter()
        .map(|p| LabProblemView {
            file: dirs
                .iter()
                .find_map(|d| p.file.strip_prefix(d).ok())
                .unwrap_or(&p.file)
                .display()
                .to_string(),
            line: p.line,
            column: p.column,
            message: p.message.clone(),
        })
        .collect();
    Ok(Json(ListOf { items, next: None }))
}

/// One lab: rendered text, tasks (without their checks and solutions) and playground.
#[utoipa::path(get, path = "/api/v1/labs/{slug}", tag = "labs",
    params(("slug" = String, Path, description = "Lab slug")),
    responses((status = 200, body = LabDetail), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn get_lab(
    State(state): State<AppState>,
    caller: Caller,
    Path(slug): Path<String>,
) -> ApiResult<Json<LabDetail>> {
    let labs = state.labs();
    let orgs = super::orgs::caller_orgs(&state, &caller).await?;
    let lab = labs
        .iter()
        .find(|l| l.slug == slug && visible_to(l, &caller, &orgs))
        .ok_or_else(|| ApiError::not_found("lab"))?;
    let progress = Progress::load(&state, &caller).await?;
    Ok(Json(LabDetail {
        summary: summary(lab, &progress),
        html: lab.html.clone(),
        playground: lab
            .playground
            .nodes
            .iter()
            .map(|n| NodeView {
                name: n.name.clone(),
                image: n.image.clone(),
                memory: n.limits.memory.to_string(),
                cpus: n.limits.cpus,
                network: n.limits.network.to_string(),
                profile: n.limits.profile.to_string(),
            })
            .collect(),
        cluster: lab.playground.cluster.map(|c| match c {
            sandlab_lab::Cluster::Kubernetes => "kubernetes".to_owned(),
        }),
        task_list: lab
            .tasks
            .iter()
            .map(|t| TaskView {
                id: t.id.as_str().to_owned(),
                title: t.title.clone(),
                init: t.init,
                needs: t.needs.iter().map(|n| n.as_str().to_owned()).collect(),
                machine: t.machine.clone(),
                has_hint: t.hint.is_some(),
            })
            .collect(),
        exec_blocks: lab
            .exec_blocks
            .iter()
            .map(|b| ExecBlockView {
                id: b.id,
                language: b.language.clone(),
                command: b.command.clone(),
                node: b.node.clone(),
            })
            .collect(),
        tabs: lab
            .tabs
            .iter()
            .map(|t| TabView {
                kind: t.kind.to_string(),
                node: t.node.clone(),
                port: t.port,
                path: t.path.clone(),
                url: t.url.clone(),
                title: t.title.clone(),
            })
            .collect(),
    }))
}

/// What a sync did.
#[derive(Serialize, ToSchema)]
pub struct SyncResult {
    /// Lab directories that are Git work trees and were brought up to date.
    pub synced: usize,
    /// Those that could not be, with git's last words.
    pub failed: Vec<SyncFailure>,
}

#[derive(Serialize, ToSchema)]
pub struct SyncFailure {
    pub dir: String,
    pub error: String,
}

/// The webhook a forge calls on a push (GitHub: `X-Hub-Signature-256`; GitLab:
/// `X-Gitlab-Token`; or `X-Sandlab-Sync-Secret`, all with `server.labs_sync_secret`):
/// pulls every lab directory that is a Git work tree; the catalogue reloads by itself.
#[utoipa::path(post, path = "/api/v1/labs/sync", tag = "labs", security(()),
    responses((status = 200, body = SyncResult), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn sync_labs(
    State(state): State<AppState>,
    headers: axum::http::HeaderMap,
    body: axum::body::Bytes,
) -> ApiResult<Json<SyncResult>> {
    let config = state.config();
    let Some(secret) = config.labs_sync_secret.as_deref() else {
        return Err(ApiError::forbidden(
            "sync_off",
            "Lab sync webhooks are off on this server (set server.labs_sync_secret).",
        ));
    };
    if !crate::lab_sync::webhook_authorised(&headers, &body, secret) {
        return Err(ApiError::unauthorized(
            "The webhook did not carry the lab sync secret.",
        ));
    }
    let results = crate::lab_sync::sync_all(&config.lab_dirs()).await;
    let synced = results.iter().filter(|(_, r)| r.is_ok()).count();
    let failed = results
        .into_iter()
        .filter_map(|(dir, r)| {
            r.err().map(|error| SyncFailure {
                dir: dir.display().to_string(),
                error,
            })
        })
        .collect();
    Ok(Json(SyncResult { synced, failed }))
}
