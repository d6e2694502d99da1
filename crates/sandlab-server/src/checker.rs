//! The task checker of a lab session (SPEC section 7).
//!
//! Init tasks run first, one at a time in DAG order, before the session is ready; one that
//! fails is `failed` and the session cannot start. Every checked task is `blocked` until
//! all of its `needs` are `done`, then `pending`: its check runs every `interval` (each run
//! bounded by its `timeout`) until it exits 0, and the task is `done` for good. Tasks
//! done in an earlier session (stored progress) start `done`. Every change is broadcast
//! as a [`TaskEvent`] (the session's Server-Sent Events).
//!
//! The checker runs commands through [`TaskRunner`], so its logic is tested with a fake
//! and the same code drives real sandboxes in `sandlab serve` and `sandlab lab test`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use sandlab_lab::{Lab, Task};
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

/// Why a task's script could not be run on its node (as opposed to running and failing).
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    #[error("The playground has no node {0:?}.")]
    NoNode(String),
    #[error("Cannot reach the node's sandbox")]
    Sandbox(#[from] crate::sandboxes::SandboxError),
    #[error("The node's agent could not run the script")]
    Agent(#[from] sandlab_proto::Error),
}

/// An init task failed (or could not run); the ones after it did not run.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("The init task {task:?} failed.")]
pub struct InitFailed {
    pub task: String,
}

/// A task's state as the API shows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum TaskState {
    Pending,
    Blocked,
    Running,
    Done,
    Failed,
}

impl TaskState {
    /// The word the API shows (and the store keeps).
    pub fn as_str(self) -> &'static str {
        match self {
            TaskState::Pending => "pending",
            TaskState::Blocked => "blocked",
            TaskState::Running => "running",
            TaskState::Done => "done",
            TaskState::Failed => "failed",
        }
    }

    /// The state a stored word names.
    pub fn parse(word: &str) -> Option<TaskState> {
        Some(match word {
            "pending" => TaskState::Pending,
            "blocked" => TaskState::Blocked,
            "running" => TaskState::Running,
            "done" => TaskState::Done,
            "failed" => TaskState::Failed,
            _ => return None,
        })
    }
}

/// One state change.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskEvent {
    pub task: String,
    pub state: TaskState,
}

/// Runs a task's script in the session's sandboxes.
#[async_trait]
pub trait TaskRunner: Send + Sync + 'static {
    /// Runs `script` with `sh -c` on node `machine` as `user`, killed after `timeout`;
    /// `Ok(true)` when it exited 0. `Err`: the node could not run it.
    async fn run(
        &self,
        machine: &str,
        user: &str,
        script: &str,
        timeout: Duration,
    ) -> Result<bool, CheckError>;
}

pub struct Checker {
    lab: Arc<Lab>,
    states: Mutex<HashMap<String, TaskState>>,
    events: broadcast::Sender<TaskEvent>,
}

impl Checker {
    /// A checker for `lab` where the checked tasks in `done` are already done.
    pub fn new(lab: Arc<Lab>, done: &[String]) -> Checker {
        let mut states = HashMap::new();
        for t in &lab.tasks {
            let s = if !t.init && done.iter().any(|d| d == t.id.as_str()) {
                TaskState::Done
            } else {
                TaskState::Pending
            };
            states.insert(t.id.as_str().to_owned(), s);
        }
        let (events, _) = broadcast::channel(256);
        let checker = Checker {
            lab,
            states: Mutex::new(states),
            events,
        };
        for t in checker.lab.tasks.clone() {
            if !t.init
                && checker.state(t.id.as_str()) != Some(TaskState::Done)
                && !checker.needs_done(&t)
            {
                checker.set(t.id.as_str(), TaskState::Blocked);
            }
        }
        checker
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, TaskState>> {
        // Poisoning only means a panic elsewhere between two map operations.
        self.states.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn state(&self, task: &str) -> Option<TaskState> {
        self.lock().get(task).copied()
    }

    /// Every task with its state, in the lab's order.
    pub fn states(&self) -> Vec<(String, TaskState)> {
        let map = self.lock();
        self.lab
            .tasks
            .iter()
            .filter_map(|t| {
                map.get(t.id.as_str())
                    .map(|s| (t.id.as_str().to_owned(), *s))
            })
            .collect()
    }

    /// Checked tasks that are done.
    pub fn done(&self) -> Vec<String> {
        self.states()
            .into_iter()
            .filter(|(id, s)| *s == TaskState::Done && self.lab.task(id).is_some_and(|t| !t.init))
            .map(|(id, _)| id)
            .collect()
    }

    /// Marks every init task done: a session taken over ready had them pass before.
    pub fn init_passed(&self) {
        for t in self.lab.init_tasks() {
            self.set(t.id.as_str(), TaskState::Done);
        }
    }

    /// Marks the checked tasks in `done` done (a learner's progress, given to a session
    /// set up before it was theirs); the tasks whose needs that completes are pending.
    pub fn grant(&self, done: &[String]) {
        for t in self.lab.checked_tasks() {
            if done.iter().any(|d| d == t.id.as_str()) {
                self.set(t.id.as_str(), TaskState::Done);
            }
        }
        for t in self.lab.checked_tasks() {
            if self.state(t.id.as_str()) == Some(TaskState::Blocked) && self.needs_done(t) {
                self.set(t.id.as_str(), TaskState::Pending);
            }
        }
    }

    pub fn subscribe(&self) -> broadcast::Receiver<TaskEvent> {
        self.events.subscribe()
    }

    fn set(&self, task: &str, state: TaskState) {
        let changed = self.lock().insert(task.to_owned(), state) != Some(state);
        if changed {
            // No subscriber is fine: the state is still readable.
            let _ = self.events.send(TaskEvent {
                task: task.to_owned(),
                state,
            });
        }
    }

    fn needs_done(&self, task: &Task) -> bool {
        let map = self.lock();
        task.needs
            .iter()
            .all(|n| map.get(n.as_str()) == Some(&TaskState::Done))
    }

    /// Runs the init tasks in order. `Err` names the first that failed (it is `failed`;
    /// the ones after it do not run).
    pub async fn run_init(&self, runner: &dyn TaskRunner) -> Result<(), InitFailed> {
        for t in self.lab.init_tasks() {
            self.set(t.id.as_str(), TaskState::Running);
            match runner.run(&t.machine, &t.user, &t.run, t.timeout).await {
                Ok(true) => self.set(t.id.as_str(), TaskState::Done),
                Ok(false) | Err(_) => {
                    self.set(t.id.as_str(), TaskState::Failed);
                    return Err(InitFailed {
                        task: t.id.as_str().to_owned(),
                    });
                }
            }
        }
        Ok(())
    }

    /// Checks every checked task until all are done or `cancel` fires. Each task is
    /// checked on its own interval once its needs are done.
    pub async fn watch(self: &Arc<Self>, runner: Arc<dyn TaskRunner>, cancel: CancellationToken) {
        let mut workers = tokio::task::JoinSet::new();
        for t in self.lab.checked_tasks().cloned().collect::<Vec<_>>() {
            let me = self.clone();
            let runner = runner.clone();
            let cancel = cancel.clone();
            workers.spawn(async move { me.watch_task(&t, runner.as_ref(), &cancel).await });
        }
        tokio::select! {
            _ = async { while workers.join_next().await.is_some() {} } => {}
            _ = cancel.cancelled() => workers.abort_all(),
        }
    }

    async fn watch_task(&self, t: &Task, runner: &dyn TaskRunner, cancel: &CancellationToken) {
        let id = t.id.as_str();
        let mut events = self.subscribe();
        while self.state(id) != Some(TaskState::Done) {
            if !self.needs_done(t) {
                self.set(id, TaskState::Blocked);
                // Wake on any change (a need may have become done); lagging is harmless
                // since the loop re-reads the states.
                tokio::select! {
                    _ = events.recv() => {}
                    _ = cancel.cancelled() => return,
                }
                continue;
            }
            self.set(id, TaskState::Pending);
            match runner.run(&t.machine, &t.user, &t.run, t.timeout).await {
                Ok(true) => {
                    self.set(id, TaskState::Done);
                    return;
                }
                Ok(false) => {}
                Err(e) => {
                    tracing::debug!(task = id, error = %sandlab_core::error_chain(&e), "a check could not run");
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(t.interval) => {}
                _ = cancel.cancelled() => return,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};

    use super::*;

    /// Scripts "ok", "fail", or "flag:NAME" (passes once the flag is set).
    #[derive(Default)]
    struct Fake {
        flags: Mutex<HashMap<String, Arc<AtomicBool>>>,
        ran: Mutex<Vec<String>>,
    }

    impl Fake {
        fn flag(&self, name: &str) -> Arc<AtomicBool> {
            self.flags
                .lock()
                .unwrap()
                .entry(name.into())
                .or_default()
                .clone()
        }
    }

    #[async_trait]
    impl TaskRunner for Fake {
        async fn run(
            &self,
            _m: &str,
            _u: &str,
            script: &str,
            _t: Duration,
        ) -> Result<bool, CheckError> {
            self.ran.lock().unwrap().push(script.to_owned());
            Ok(match script {
                "ok" => true,
                "fail" => false,
                s => self
                    .flag(s.trim_start_matches("flag:"))
                    .load(Ordering::SeqCst),
            })
        }
    }

    fn lab(tasks: &str) -> Arc<Lab> {
        let text = format!("---\ntitle: T\ntasks:\n{tasks}---\nBody\n");
        Arc::new(
            sandlab_lab::parse_index("t", &text, std::path::Path::new("t/index.md"), None).unwrap(),
        )
    }

    #[tokio::test(start_paused = true)]
    async fn init_runs_in_order_and_a_failure_stops_it() {
        let l = lab("  a:\n    init: true\n    run: ok\n  b:\n    init: true\n    needs: [a]\n    run: fail\n  c:\n    init: true\n    needs: [b]\n    run: ok\n");
        let c = Checker::new(l, &[]);
        let fake = Fake::default();
        assert_eq!(
            c.run_init(&fake).await,
            Err(InitFailed { task: "b".into() })
        );
        assert_eq!(c.state("a"), Some(TaskState::Done));
        assert_eq!(c.state("b"), Some(TaskState::Failed));
        assert_eq!(c.state("c"), Some(TaskState::Pending));
        assert_eq!(*fake.ran.lock().unwrap(), ["ok", "fail"]);
    }

    #[tokio::test(start_paused = true)]
    async fn checks_follow_the_dag_and_report_changes() {
        let l = lab("  first:\n    run: flag:first\n  second:\n    needs: [first]\n    run: flag:second\n    interval: 2s\n");
        let c = Arc::new(Checker::new(l, &[]));
        assert_eq!(c.state("second"), Some(TaskState::Blocked));
        let fake = Arc::new(Fake::default());
        let mut events = c.subscribe();
        let cancel = CancellationToken::new();
        let watch = tokio::spawn({
            let (c, f, cancel) = (c.clone(), fake.clone(), cancel.clone());
            async move { c.watch(f, cancel).await }
        });
        tokio::time::sleep(Duration::from_secs(5)).await;
        assert_eq!(c.state("first"), Some(TaskState::Pending));
        assert!(
            !fake.ran.lock().unwrap().iter().any(|s| s == "flag:second"),
            "a blocked task was checked"
        );
        fake.flag("first").store(true, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(1100)).await;
        assert_eq!(c.state("first"), Some(TaskState::Done));
        assert_eq!(c.state("second"), Some(TaskState::Pending));
        fake.flag("second").store(true, Ordering::SeqCst);
        watch.await.unwrap();
        assert_eq!(c.done(), ["first", "second"]);
        let mut seen = Vec::new();
        while let Ok(e) = events.try_recv() {
            seen.push((e.task, e.state));
        }
        assert!(
            seen.contains(&("first".into(), TaskState::Done)),
            "{seen:?}"
        );
        assert_eq!(
            seen.last(),
            Some(&("second".into(), TaskState::Done)),
            "{seen:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn stored_progress_starts_done_and_cancel_stops() {
        let l = lab("  a:\n    run: fail\n  b:\n    needs: [a]\n    run: fail\n");
        let c = Arc::new(Checker::new(l, &["a".into()]));
        assert_eq!(c.state("a"), Some(TaskState::Done));
        assert_eq!(c.state("b"), Some(TaskState::Pending));
        let cancel = CancellationToken::new();
        let fake: Arc<dyn TaskRunner> = Arc::new(Fake::default());
        let watch = tokio::spawn({
            let (c, cancel) = (c.clone(), cancel.clone());
            async move { c.watch(fake, cancel).await }
        });
        tokio::time::sleep(Duration::from_secs(3)).await;
        cancel.cancel();
        watch.await.unwrap();
        assert_eq!(c.state("b"), Some(TaskState::Pending));
    }

    #[test]
    fn progress_granted_later_counts_as_stored_progress() {
        let l = lab("  i:\n    init: true\n    run: ok\n  a:\n    run: fail\n  b:\n    needs: [a]\n    run: fail\n  c:\n    run: fail\n");
        let c = Checker::new(l, &[]);
        assert_eq!(c.state("b"), Some(TaskState::Blocked));
        let mut events = c.subscribe();
        // An init task is never progress; an unknown id is ignored.
        c.grant(&["a".into(), "i".into(), "nope".into()]);
        assert_eq!(c.state("a"), Some(TaskState::Done));
        assert_eq!(c.state("b"), Some(TaskState::Pending));
        assert_eq!(c.state("c"), Some(TaskState::Pending));
        assert_eq!(c.state("i"), Some(TaskState::Pending));
        assert_eq!(c.done(), ["a"]);
        let first = events.try_recv().unwrap();
        assert_eq!((first.task.as_str(), first.state), ("a", TaskState::Done));
        // A session taken over ready: its init passed.
        c.init_passed();
        assert_eq!(c.state("i"), Some(TaskState::Done));
        assert_eq!(c.done(), ["a"]);
    }
}
