//! Lab sessions: a learner's playground of one lab with its live task checker.
//!
//! Starting one writes the session (`starting`), creates one sandbox per node (hostname =
//! node name, the playground's TTL), answers, and in the background runs the init tasks
//! (`ready` when they pass, `failed` with the task's name when one does not), then checks
//! the other tasks until the session ends. Done tasks are stored as the user's progress,
//! so a new session (or a server restart) starts with them done. Every change is
//! broadcast as a [`SessionEvent`] for `GET /sessions/{id}/events`.
//!
//! A session's state is a [`LabSessionState`]; methods return [`LabSessionError`], which
//! `routes/` turns into HTTP.
//!
//! The session's deadline is on the monotonic clock while the server runs; at the
//! deadline (or on delete) the checker stops, the sandboxes are removed and the session is
//! `ended`.
//!
//! # Several replicas
//!
//! A session runs on one replica, its `runner` (stored with it): the checker, the deadline
//! and the event stream live there. The runner keeps the stored record current (state and
//! every task's state) and publishes each event on the store bus topic
//! `lab-session:<id>`, so any replica shows the session and streams its events. What
//! changes a running session (extend, end) is sent to the runner on the topic
//! `lab-session-cmd` and answered on `reply:<request>` (`remote.rs`). When a runner dies,
//! the leader takes its sessions over ([`LabSessions::adopt`], one compare-and-swap of
//! the runner) and resumes them as a restart would.

mod live;
mod remote;
mod warm;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::stream::{FuturesUnordered, StreamExt};
use sandlab_core::{SandboxId, SandboxState};
use sandlab_lab::Lab;
use sandlab_runtime::manager::now_ms;
use sandlab_store::{LabSession, LabSessionState, SessionNode, Store};
use tokio::sync::{broadcast, Notify};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use self::live::NodeRunner;
pub use self::live::{Live, SessionEvent};
pub use self::remote::events_topic;
pub use self::warm::{warm_lab, warm_owner};
use crate::checker::{Checker, TaskState};
use crate::sandboxes::{NewSandbox, SandboxError, Sandboxes};

/// Why a lab session could not be started, extended or resumed.
#[derive(Debug, thiserror::Error)]
pub enum LabSessionError {
    /// A node's sandbox could not be created; the session is stored as failed.
    #[error("Node {node} could not start")]
    NodeStart {
        node: String,
        #[source]
        source: SandboxError,
    },
    #[error("A sandbox of the session failed")]
    Sandbox(#[from] SandboxError),
    /// The session names a sandbox id that is not one.
    #[error("The session's node sandbox {0:?} is not a sandbox id")]
    UnknownSandbox(String),
    /// The replica running the session did not answer a command in time.
    #[error("The server running this session did not answer; try again in a few seconds.")]
    NoAnswer,
    /// The replica running the session refused a command; its reason.
    #[error("{0}")]
    Refused(String),
    #[error("The store failed")]
    Store(#[from] sandlab_store::Error),
}

pub type Result<T> = std::result::Result<T, LabSessionError>;

impl LabSessionError {
    /// Whether the owner's quota of sandboxes stopped it.
    pub fn is_quota(&self) -> bool {
        matches!(
            self,
            LabSessionError::Sandbox(SandboxError::QuotaExceeded { .. })
                | LabSessionError::NodeStart {
                    source: SandboxError::QuotaExceeded { .. },
                    ..
                }
        )
    }
}

pub struct LabSessions {
    sandboxes: Arc<Sandboxes>,
    store: Arc<dyn Store>,
    live: Mutex<HashMap<String, Arc<Live>>>,
    /// Sessions this replica is setting up (stored, not yet live): not orphans.
    starting: Arc<Mutex<HashSet<String>>>,
    /// This replica, as sessions name their runner.
    me: String,
    /// The warm sessions kept here (`[[lab_pool]]`).
    warm: warm::WarmSessions,
}

/// A session being set up here, from before its record is stored until it is live (or
/// the set-up failed or was dropped: then the session is an orphan [`LabSessions::adopt`]
/// takes over).
struct Starting {
    set: Arc<Mutex<HashSet<String>>>,
    id: String,
}

impl Starting {
    /// Marks `id` as being set up here; `None` when it is already (by another task of
    /// this replica: only one may take a session over).
    fn try_new(set: &Arc<Mutex<HashSet<String>>>, id: &str) -> Option<Starting> {
        let fresh = set
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id.to_owned());
        fresh.then(|| Starting {
            set: set.clone(),
            id: id.to_owned(),
        })
    }
}

impl Drop for Starting {
    fn drop(&mut self) {
        self.set
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&self.id);
    }
}

fn new_id() -> String {
    sandlab_core::random_id("ls", 12)
}

impl LabSessions {
    pub fn new(
        sandboxes: Arc<Sandboxes>,
        store: Arc<dyn Store>,
        pools: Vec<crate::config::LabPool>,
    ) -> LabSessions {
        LabSessions {
            warm: warm::WarmSessions::new(pools),
            me: sandboxes.manager().holder().to_string(),
            sandboxes,
            store,
            live: Mutex::new(HashMap::new()),
            starting: Arc::new(Mutex::new(HashSet::new())),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<Live>>> {
        self.live.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The running session `id` if `owner` (None: anyone) may see it.
    pub fn get(&self, id: &str, owner: Option<&str>) -> Option<Arc<Live>> {
        self.lock()
            .get(id)
            .filter(|l| owner.is_none_or(|o| l.record().owner == o))
            .cloned()
    }

    /// The sessions running now, oldest first; only `owner`'s when given.
    pub fn running(&self, owner: Option<&str>) -> Vec<Arc<Live>> {
        let mut live: Vec<Arc<Live>> = self
            .lock()
            .values()
            .filter(|l| owner.is_none_or(|o| l.record().owner == o))
            .cloned()
            .collect();
        live.sort_by_key(|l| {
            let r = l.record();
            (r.created_at_ms, r.id)
        });
        live
    }

    /// The sessions not over (starting or ready) on any replica, oldest first; only
    /// `owner`'s when given. Those this replica runs as they are now, the others as their
    /// runners last stored them.
    pub async fn active(&self, owner: Option<&str>) -> Result<Vec<LabSession>> {
        let mut active = Vec::new();
        for rec in self.store.open_lab_sessions(owner).await? {
            let rec = self.get(&rec.id, None).map_or(rec, |l| l.stored());
            if !rec.state.is_over() {
                active.push(rec);
            }
        }
        Ok(active)
    }

    /// `owner`'s active sessions by lab slug (the newest when there are several).
    pub async fn active_by_lab(&self, owner: &str) -> Result<HashMap<String, String>> {
        // Oldest first, so a newer session of the same lab replaces an older one.
        Ok(self
            .active(Some(owner))
            .await?
            .into_iter()
            .map(|r| (r.lab, r.id))
            .collect())
    }

    /// Starts a session of `lab` for `owner`; returns once its sandboxes run (init tasks
    /// go on in the background). The owner's done tasks start done, unless `fresh`: then
    /// every task is checked again (the progress stays, as history).
    pub async fn start(
        self: &Arc<Self>,
        lab: Arc<Lab>,
        owner: &str,
        quota: u64,
        fresh: bool,
    ) -> Result<Arc<Live>> {
        self.start_in(lab, owner, quota, fresh, None).await
    }

    /// [`Self::start`] with the nodes counted against organisation `org` and cut to its
    /// caps (the session's lifetime too). Runs in a task of its own, so a client that
    /// goes away cannot cut a set-up short half way (its nodes being made, unrecorded).
    pub async fn start_in(
        self: &Arc<Self>,
        lab: Arc<Lab>,
        owner: &str,
        quota: u64,
        fresh: bool,
        org: Option<sandlab_store::Org>,
    ) -> Result<Arc<Live>> {
        let me = self.clone();
        let owner = owner.to_owned();
        tokio::spawn(async move { me.start_here(lab, &owner, quota, fresh, org).await })
            .await
            .map_err(|e| LabSessionError::Sandbox(SandboxError::Task("start a lab session", e)))?
    }

    async fn start_here(
        self: &Arc<Self>,
        lab: Arc<Lab>,
        owner: &str,
        quota: u64,
        fresh: bool,
        org: Option<sandlab_store::Org>,
    ) -> Result<Arc<Live>> {
        let ttl = crate::orgs::cap_ttl(lab.playground.ttl, org.as_ref());
        // The whole playground must fit before the first node is made: a start that runs
        // out of quota half way leaves a failed session behind.
        let nodes = u64::try_from(lab.playground.nodes.len()).unwrap_or(u64::MAX);
        self.sandboxes.check_quota(owner, quota, nodes).await?;
        if let Some(org) = &org {
            crate::orgs::check_room(self.store.as_ref(), org, nodes).await?;
        }
        // A warm session of the lab, when one is parked, is handed over ready. (Not to a
        // start counted against an organisation: its nodes would have to take the
        // organisation's places.)
        if org.is_none() {
            if let Some(live) = self.claim_warm(&lab, owner, quota, ttl, fresh).await? {
                return Ok(live);
            }
        }
        let done = if fresh {
            Vec::new()
        } else {
            self.store.done_tasks(owner, &lab.slug).await?
        };
        self.set_up(lab, owner.to_owned(), quota, ttl, org, &done)
            .await
    }

    /// Sets a session of `lab` up for `owner` with `ttl` left: stores it, makes its nodes
    /// (counted against `quota` and `org`), and runs its cluster and init tasks in the
    /// background, `done` done; returns once the nodes run.
    async fn set_up(
        self: &Arc<Self>,
        lab: Arc<Lab>,
        owner: String,
        quota: u64,
        ttl: Duration,
        org: Option<sandlab_store::Org>,
        done: &[String],
    ) -> Result<Arc<Live>> {
        let now = i64::try_from(now_ms()).unwrap_or(i64::MAX);
        let id = new_id();
        // Held until the session is live: dropped earlier (an error half way), it leaves
        // an orphan to adopt.
        let _starting = Starting::try_new(&self.starting, &id);
        let mut record = LabSession {
            id,
            owner,
            lab: lab.slug.clone(),
            state: LabSessionState::Starting,
            reason: None,
            nodes: Vec::new(),
            created_at_ms: now,
            deadline_ms: now.saturating_add(i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX)),
            runner: Some(self.me.clone()),
            tasks: Vec::new(),
        };
        self.store.put_lab_session(&record).await?;
        let nodes = self
            .make_nodes(&lab, &mut record, quota, ttl, org.as_ref())
            .await?;
        let live = self.install(lab, record, done, ttl);
        let runner = Arc::new(NodeRunner {
            sandboxes: self.sandboxes.clone(),
            nodes,
        });
        let me = self.clone();
        let l = live.clone();
        tokio::spawn(async move { me.run(l, runner, true).await });
        Ok(live)
    }

    /// Makes every node of `lab` for `record`, side by side, storing the record as each
    /// comes up, with `ttl` left. On a failure the nodes made so far are removed and the record is stored as
    /// failed with the reason.
    async fn make_nodes(
        &self,
        lab: &Lab,
        record: &mut LabSession,
        quota: u64,
        ttl: Duration,
        org: Option<&sandlab_store::Org>,
    ) -> Result<HashMap<String, SandboxId>> {
        // A lab's limits are its author's, written for any host: on a host whose share for
        // one sandbox is smaller, the nodes get that share instead of not starting.
        let share = self.sandboxes.share().await?;
        let mut nodes = HashMap::new();
        // The session id's random part names the playground's network.
        let playground =
            sandlab_runtime::Playground::named_after(&record.id, lab.playground.node_names());
        // The nodes start side by side (a three-node lab takes about as long as one);
        // the record is stored as each one comes up.
        let mut starting: FuturesUnordered<_> = lab
            .playground
            .nodes
            .iter()
            .map(|node| {
                let new = NewSandbox {
                    image: node.image.clone(),
                    limits: crate::orgs::cut(share.cut(node.limits.clone()), org),
                    ttl,
                    owner: record.owner.clone(),
                    quota,
                    hostname: Some(node.name.clone()),
                    playground: Some(playground.clone()),
                    org: org.cloned(),
                };
                async move { (node, self.sandboxes.create(new).await) }
            })
            .collect();
        let mut failed = None;
        while let Some((node, created)) = starting.next().await {
            match created {
                Ok(rec) => {
                    record.nodes.push(SessionNode {
                        name: node.name.clone(),
                        sandbox: rec.id.to_string(),
                    });
                    nodes.insert(node.name.clone(), rec.id);
                    self.store.put_lab_session(record).await?;
                }
                Err(e) => {
                    failed.get_or_insert((node, e));
                }
            }
        }
        if let Some((node, e)) = failed {
            // Undo the nodes made; the session is kept as failed.
            for id in nodes.values() {
                let _ = self.sandboxes.remove_detached(id).await;
            }
            record.state = LabSessionState::Failed;
            record.reason = Some(format!(
                "Node {} could not start: {}",
                node.name,
                e.public_message()
            ));
            self.store.put_lab_session(record).await?;
            return Err(LabSessionError::NodeStart {
                node: node.name.clone(),
                source: e,
            });
        }
        // In the lab's order, whatever order they came up in.
        record
            .nodes
            .sort_by_key(|n| lab.playground.nodes.iter().position(|p| p.name == n.name));
        self.store.put_lab_session(record).await?;
        Ok(nodes)
    }

    /// After a restart, a session acknowledged but not yet set up (its nodes being made or
    /// its init running when the server died) is set up again under its id: the nodes it
    /// had are removed (an init cut short cannot be trusted to run twice), fresh ones made,
    /// then init runs, in the background.
    /// `starting` marks it as being set up here until it is live.
    fn resume_setup(
        self: &Arc<Self>,
        lab: Arc<Lab>,
        mut record: LabSession,
        left: Duration,
        starting: Starting,
    ) {
        let me = self.clone();
        tokio::spawn(async move {
            let _starting = starting;
            // The organisation its nodes counted against counts the new ones too.
            let org = match me.org_of(&record).await {
                Ok(org) => org,
                Err(e) => {
                    tracing::warn!(session = %record.id, error = %sandlab_core::error_chain(&e), "could not read a session's organisation");
                    None
                }
            };
            for n in std::mem::take(&mut record.nodes) {
                if let Ok(id) = n.sandbox.parse::<SandboxId>() {
                    let _ = me.sandboxes.remove_detached(&id).await;
                }
            }
            me.store_quietly(&record).await;
            // The session was admitted before the restart; its owner's quota held then.
            let nodes = match me
                .make_nodes(&lab, &mut record, u64::MAX, left, org.as_ref())
                .await
            {
                Ok(nodes) => nodes,
                Err(e) => {
                    tracing::warn!(session = %record.id, error = %sandlab_core::error_chain(&e), "could not set a session up again");
                    return;
                }
            };
            let done = match me.store.done_tasks(&record.owner, &record.lab).await {
                Ok(done) => done,
                Err(e) => {
                    tracing::warn!(session = %record.id, error = %sandlab_core::error_chain(&e), "could not read progress");
                    Vec::new()
                }
            };
            tracing::info!(session = %record.id, "set up again after a restart");
            let live = me.install(lab, record, &done, left);
            let runner = Arc::new(NodeRunner {
                sandboxes: me.sandboxes.clone(),
                nodes,
            });
            me.run(live, runner, true).await;
        });
    }

    fn install(
        &self,
        lab: Arc<Lab>,
        record: LabSession,
        done: &[String],
        left: Duration,
    ) -> Arc<Live> {
        let (events, _) = broadcast::channel(256);
        let live = Arc::new(Live {
            checker: Arc::new(Checker::new(lab.clone(), done)),
            lab,
            deadline: Mutex::new(Instant::now() + left),
            moved: Notify::new(),
            cancel: CancellationToken::new(),
            events,
            record: Mutex::new(record.clone()),
        });
        self.lock().insert(record.id, live.clone());
        live
    }

    /// Makes the playground's nodes the cluster its lab asks for; the error is the session's
    /// reason.
    async fn bring_up_cluster(lab: &Lab, runner: &NodeRunner) -> std::result::Result<(), String> {
        let mut agents = HashMap::new();
        for (name, id) in &runner.nodes {
            let agent = runner.sandboxes.agent(id).await.map_err(|e| {
                format!(
                    "The Kubernetes cluster did not come up: node {name} cannot be reached: {}",
                    e.public_message()
                )
            })?;
            agents.insert(name.clone(), agent);
        }
        crate::cluster::bring_up(lab, &agents)
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    /// Init (when asked), then checks, progress and the deadline, until the session ends.
    async fn run(self: Arc<Self>, live: Arc<Live>, runner: Arc<NodeRunner>, init: bool) {
        let forward = self.clone().forward_events(live.clone());
        tokio::spawn(forward);
        if init {
            // A cluster playground's nodes become the cluster first (the session stays
            // `starting` meanwhile); its init tasks may then use it.
            if live.lab.playground.cluster.is_some() {
                let up = tokio::select! {
                    up = Self::bring_up_cluster(&live.lab, &runner) => up,
                    _ = live.cancel.cancelled() => return,
                };
                if let Err(e) = up {
                    tracing::warn!(session = %live.record().id, error = %e, "cluster did not come up");
                    live.set_state(LabSessionState::Failed, Some(e));
                    self.save(&live).await;
                    self.publish_state(&live.record()).await;
                    return;
                }
            }
            let init = live.checker.run_init(runner.as_ref()).await;
            if live.cancel.is_cancelled() {
                // Ended while init ran (its nodes may be why init failed).
                return;
            }
            if let Err(failed) = init {
                live.set_state(LabSessionState::Failed, Some(failed.to_string()));
                self.save(&live).await;
                self.publish_state(&live.record()).await;
                return;
            }
            live.set_state(LabSessionState::Ready, None);
            self.save(&live).await;
            self.publish_state(&live.record()).await;
        }
        // A warm session waits, ready and unchecked, until a start of its lab claims it.
        if !self.park(&live).await {
            return;
        }
        let watcher = {
            let (checker, cancel) = (live.checker.clone(), live.cancel.clone());
            tokio::spawn(async move { checker.watch(runner, cancel).await })
        };
        loop {
            let at = *live.deadline.lock().unwrap_or_else(|p| p.into_inner());
            tokio::select! {
                _ = tokio::time::sleep_until(at) => {
                    if Instant::now() >= *live.deadline.lock().unwrap_or_else(|p| p.into_inner()) {
                        self.end(&live, "The session's time ran out.").await;
                        break;
                    }
                }
                _ = live.moved.notified() => {}
                _ = live.cancel.cancelled() => break,
            }
        }
        watcher.abort();
    }

    /// Copies checker events to the session's stream and stores done tasks as progress.
    async fn forward_events(self: Arc<Self>, live: Arc<Live>) {
        let mut rx = live.checker.subscribe();
        loop {
            tokio::select! {
                ev = rx.recv() => match ev {
                    Ok(ev) => {
                        let rec = live.record();
                        let checked = live.lab.task(&ev.task).is_some_and(|t| !t.init);
                        if ev.state == TaskState::Done && checked {
                            if let Err(e) = self.store.mark_task_done(&rec.owner, &rec.lab, &ev.task).await {
                                tracing::warn!(session = %rec.id, error = %e, "could not store progress");
                            }
                        }
                        let ev = SessionEvent::Task(ev);
                        let _ = live.events.send(ev.clone());
                        // Stored first: a replica that missed the notice reads it there.
                        self.save(&live).await;
                        self.publish(&rec.id, &ev).await;
                    }
                    Err(broadcast::error::RecvError::Lagged(_)) => {}
                    Err(broadcast::error::RecvError::Closed) => return,
                },
                _ = live.cancel.cancelled() => return,
            }
        }
    }

    /// Ends a session: checks stop, sandboxes go, the record says `ended`.
    pub async fn end(&self, live: &Arc<Live>, reason: &str) {
        live.cancel.cancel();
        live.set_state(LabSessionState::Ended, Some(reason.to_owned()));
        // Live here until the record says ended: gone from here before that, it would
        // look like an orphan of this replica to adopt.
        self.end_record(live.stored(), reason).await;
        self.lock().remove(&live.record().id);
    }

    async fn end_record(&self, mut rec: LabSession, reason: &str) {
        for n in &rec.nodes {
            if let Ok(id) = n.sandbox.parse::<SandboxId>() {
                if let Err(e) = self.sandboxes.remove_detached(&id).await {
                    tracing::warn!(session = %rec.id, sandbox.id = %id, error = %sandlab_core::error_chain(&e), "could not remove a session's sandbox");
                }
            }
        }
        rec.state = LabSessionState::Ended;
        rec.reason = Some(reason.to_owned());
        self.store_quietly(&rec).await;
        self.publish_state(&rec).await;
    }

    /// Stores `live`'s record with its task states, unless it ended (its end stores
    /// the last record; a later save would bring back one that was deleted).
    async fn save(&self, live: &Live) {
        if live.cancel.is_cancelled() {
            return;
        }
        self.store_quietly(&live.stored()).await;
    }

    /// Publishes `ev` on the session's topic for the other replicas' event streams.
    async fn publish(&self, session: &str, ev: &SessionEvent) {
        let Ok(payload) = serde_json::to_string(ev) else {
            return;
        };
        if let Err(e) = self.store.publish(&events_topic(session), &payload).await {
            tracing::warn!(session = %session, error = %sandlab_core::error_chain(&e), "could not publish a session event");
        }
    }

    /// Publishes `rec`'s state as a session event.
    async fn publish_state(&self, rec: &LabSession) {
        let ev = SessionEvent::Session {
            state: rec.state,
            reason: rec.reason.clone(),
        };
        self.publish(&rec.id, &ev).await;
    }

    /// Stores `rec` from a background task, where a failure can only be logged.
    async fn store_quietly(&self, rec: &LabSession) {
        if let Err(e) = self.store.put_lab_session(rec).await {
            tracing::warn!(session = %rec.id, state = %rec.state, error = %sandlab_core::error_chain(&e), "could not store the session");
        }
    }

    /// Moves the deadline to `ttl` from now, for the session and its sandboxes.
    pub async fn extend(&self, live: &Arc<Live>, ttl: Duration) -> Result<LabSession> {
        let mut rec = live.record();
        for n in &rec.nodes {
            let id: SandboxId = n
                .sandbox
                .parse()
                .map_err(|_| LabSessionError::UnknownSandbox(n.sandbox.clone()))?;
            let sb = self.store.get_sandbox(&id, None).await?;
            self.sandboxes.extend(sb, ttl).await?;
        }
        *live.deadline.lock().unwrap_or_else(|p| p.into_inner()) = Instant::now() + ttl;
        live.moved.notify_one();
        let now = i64::try_from(now_ms()).unwrap_or(i64::MAX);
        rec.deadline_ms = now.saturating_add(i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX));
        live.record
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .deadline_ms = rec.deadline_ms;
        let rec = live.stored();
        self.store.put_lab_session(&rec).await?;
        Ok(rec)
    }

    /// At start-up: takes over the sessions whose runner is gone (see [`Self::adopt`]).
    pub async fn recover(self: &Arc<Self>, labs: &[Lab]) -> Result<()> {
        self.adopt(labs, true).await.map(|_| ())
    }

    /// The organisation session `rec`'s nodes count against (that of its first node that
    /// has one), if any.
    pub async fn org_of(&self, rec: &LabSession) -> Result<Option<sandlab_store::Org>> {
        for n in &rec.nodes {
            let Ok(id) = n.sandbox.parse::<SandboxId>() else {
                continue;
            };
            if let Some(org) = self.store.sandbox_org(&id).await? {
                return match self.store.get_org(&org).await {
                    Ok(org) => Ok(Some(org)),
                    Err(sandlab_store::Error::NotFound(_)) => Ok(None),
                    Err(e) => Err(e.into()),
                };
            }
        }
        Ok(None)
    }

    /// Whether nobody runs `rec` (not over, not live here): its runner died, or it has
    /// none, or it is this replica, which is not setting it up (a set-up that failed or
    /// was dropped half way).
    async fn orphaned(&self, rec: &LabSession) -> bool {
        match rec.runner.as_deref() {
            Some(runner) if runner == self.me => !self
                .starting
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .contains(&rec.id),
            Some(runner) => !self.runner_alive(runner).await,
            None => true,
        }
    }

    /// Whether the replica `runner` names still runs (a name that is no holder: no).
    async fn runner_alive(&self, runner: &str) -> bool {
        match runner.parse::<sandlab_core::Holder>() {
            Ok(h) => sandlab_runtime::process::alive(&h, self.store.as_ref())
                .await
                .unwrap_or(true),
            Err(_) => false,
        }
    }

    /// Takes over every session that is not over and whose runner died (or that has
    /// none), each with one compare-and-swap of its runner, so of several replicas one
    /// gets it; returns how many. Like a restart: sessions whose sandboxes all run resume
    /// checking (init is not run again); sessions still being set up are set up again
    /// ([`Self::resume_setup`]); the others end. A session of a lab this replica does not
    /// have is left to one that has it, until its time is up.
    ///
    /// With `all` false only this replica's own orphans (every replica sweeps those; only
    /// it can tell them from sessions it runs); the leader takes the others too.
    pub async fn adopt(self: &Arc<Self>, labs: &[Lab], all: bool) -> Result<usize> {
        let adopted = self.adopt_sessions(labs, all).await?;
        if all && self.warm.sweep_due() {
            self.sweep_warm_nodes().await?;
        }
        Ok(adopted)
    }

    async fn adopt_sessions(self: &Arc<Self>, labs: &[Lab], all: bool) -> Result<usize> {
        let mut adopted = 0;
        for rec in self.store.open_lab_sessions(None).await? {
            let mine = rec.runner.as_deref() == Some(self.me.as_str());
            if (!all && !mine) || self.get(&rec.id, None).is_some() || !self.orphaned(&rec).await {
                continue;
            }
            // One taker per session in this replica (an end of the same orphan, or the
            // next round while this one still runs); the CAS below settles it between
            // replicas.
            let Some(starting) = Starting::try_new(&self.starting, &rec.id) else {
                continue;
            };
            let lab = labs
                .iter()
                .find(|l| l.slug == rec.lab)
                .cloned()
                .map(Arc::new);
            let time_left = u64::try_from(rec.deadline_ms).unwrap_or(0) > now_ms();
            // (A warm session of a lab that is gone is ended below instead.)
            if lab.is_none() && time_left && warm_lab(&rec.owner).is_none() {
                continue;
            }
            let from = rec.runner.clone();
            if !self
                .store
                .take_lab_session(&rec.id, from.as_deref(), &self.me)
                .await?
            {
                continue;
            }
            // As it is now it is this replica's: it may have ended since it was listed.
            let mut rec = self.store.get_lab_session(&rec.id, None).await?;
            if rec.state.is_over() {
                continue;
            }
            // A warm session goes back into its pool when its pool wants it and it is ready
            // (below, like any session); one half set up, or not wanted, goes.
            // One whose nodes are not all the pool's (a claim cut short) goes too.
            if let Some(slug) = warm_lab(&rec.owner) {
                let mut whole = rec.state == LabSessionState::Ready && self.warm_wanted(&slug);
                for n in &rec.nodes {
                    if !whole {
                        break;
                    }
                    let owned = match n.sandbox.parse::<SandboxId>() {
                        Ok(id) => self
                            .store
                            .get_sandbox(&id, None)
                            .await
                            .is_ok_and(|sb| sb.owner.as_deref() == Some(rec.owner.as_str())),
                        Err(_) => false,
                    };
                    whole &= owned;
                }
                if !whole {
                    let id = rec.id.clone();
                    self.end_record(rec, "A warm session was not wanted after a restart.")
                        .await;
                    self.store.delete_lab_session(&id).await?;
                    continue;
                }
            }
            tracing::info!(session = %rec.id, runner = ?from, "taking over a lab session whose server is gone");
            rec.runner = Some(self.me.clone());
            adopted += 1;
            let mut nodes = HashMap::new();
            for n in &rec.nodes {
                let Ok(id) = n.sandbox.parse::<SandboxId>() else {
                    continue;
                };
                if let Ok(sb) = self.store.get_sandbox(&id, None).await {
                    if sb.state == SandboxState::Running {
                        nodes.insert(n.name.clone(), id);
                    }
                }
            }
            let left = Duration::from_millis(
                u64::try_from(rec.deadline_ms)
                    .unwrap_or(0)
                    .saturating_sub(now_ms()),
            );
            if rec.state == LabSessionState::Starting {
                match lab.filter(|_| !left.is_zero()) {
                    Some(lab) => self.resume_setup(lab, rec, left, starting),
                    None => {
                        let reason = "The server restarted while the session was being set up, and its lab or time is gone.";
                        self.end_record(rec, reason).await;
                    }
                }
                continue;
            }
            let whole = nodes.len() == rec.nodes.len()
                && rec.state == LabSessionState::Ready
                && !left.is_zero();
            let Some(lab) = lab.filter(|_| whole) else {
                self.end_record(rec, "The session's machines are gone.")
                    .await;
                continue;
            };
            let done = self.store.done_tasks(&rec.owner, &rec.lab).await?;
            let live = self.install(lab, rec, &done, left);
            // It was ready: its init passed (and is not run again).
            live.checker.init_passed();
            self.save(&live).await;
            let runner = Arc::new(NodeRunner {
                sandboxes: self.sandboxes.clone(),
                nodes,
            });
            let me = self.clone();
            tokio::spawn(async move { me.run(live, runner, false).await });
        }
        Ok(adopted)
    }
}
