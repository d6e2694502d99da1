//! Judge0 submissions over time: stored as queued before anything runs, run on the
//! engine in a task of their own (a client that hangs up does not cancel one), their
//! result stored when they end, and finished ones deleted after `execute_keep`.
//!
//! A submission names the replica running it (`runner`, this process's holder). One whose
//! runner died (a restart, a `kill -9`, a replica gone) is taken over by the leader
//! ([`adopt`], run by [`crate::control`]): one compare-and-swap of the runner, so of
//! several replicas one runs it again.

use std::sync::Arc;
use std::time::Duration;

use sandlab_store::{NewSubmission, Store, Submission, SubmissionState};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::engine::{Engine, Ticket};
use super::judge0::{self, Stored, StoredResult};

/// How often finished submissions past their keep are deleted.
const EXPIRY_EVERY: Duration = Duration::from_secs(600);

/// Stores `items` (token, checked submission, queue place) for `owner` in one write, then
/// starts each; returns the tasks, in order, that end when each result is stored.
pub async fn submit(
    engine: &Arc<Engine>,
    owner: &str,
    items: Vec<(String, Stored, Ticket)>,
) -> Result<Vec<JoinHandle<()>>, sandlab_store::Error> {
    let store = engine.store();
    let runner = engine.runner();
    let new: Vec<NewSubmission> = items
        .iter()
        .map(|(token, stored, _)| NewSubmission {
            token: token.clone(),
            owner: owner.to_owned(),
            request: serde_json::to_string(stored).expect("plain data serializes"),
            runner: Some(runner.clone()),
        })
        .collect();
    store.create_submissions(&new).await?;
    Ok(items
        .into_iter()
        .map(|(token, stored, ticket)| {
            let engine = engine.clone();
            tokio::spawn(async move {
                match engine.store().start_submission(&token).await {
                    Ok(false) => {}
                    // Marked or not, it was acknowledged: it runs.
                    Ok(true) | Err(_) => run(&engine, &token, &stored, ticket).await,
                }
            })
        })
        .collect())
}

/// Runs one started submission and stores its result.
async fn run(engine: &Arc<Engine>, token: &str, stored: &Stored, ticket: Ticket) {
    let result: StoredResult = match judge0::job(stored, engine.languages()) {
        Err(message) => judge0::internal_error(&message),
        Ok(job) => match engine.run(ticket, job, None).await {
            Ok(out) => judge0::result(stored, &out),
            Err(e) => judge0::internal_error(&e.to_string()),
        },
    };
    let text = serde_json::to_string(&result).expect("plain data serializes");
    // A result that cannot be stored now is tried again a few times; past that the
    // submission stays unfinished and runs again after a restart.
    for attempt in 0..5u32 {
        match engine.store().finish_submission(token, &text).await {
            Ok(_) => return,
            Err(e) => {
                tracing::warn!(attempt, error = %e, "could not store a submission's result");
                tokio::time::sleep(Duration::from_millis(200 << attempt)).await;
            }
        }
    }
}

/// Whether the replica `runner` names still runs (a name that is no holder: no).
async fn runner_alive(engine: &Engine, runner: &str) -> Result<bool, sandlab_runtime::Error> {
    match runner.parse::<sandlab_core::Holder>() {
        Ok(h) => sandlab_runtime::process::alive(&h, engine.store().as_ref()).await,
        Err(_) => Ok(false),
    }
}

/// Takes over, as `me`, every unfinished submission whose runner is gone (or that has
/// none) and runs it again (they were acknowledged with a token, so they may not be lost),
/// whatever the queue's length; returns how many. Each is taken with one compare-and-swap
/// of its runner, so of several replicas adopting at once one runs it.
pub async fn adopt(engine: &Arc<Engine>, me: &str) -> Result<usize, sandlab_store::Error> {
    let mut taken = Vec::new();
    for sub in engine.store().unfinished_submissions().await? {
        if let Some(runner) = sub.runner.as_deref() {
            // A runner that cannot be looked at now is taken as alive: next round.
            if runner == me || runner_alive(engine, runner).await.unwrap_or(true) {
                continue;
            }
        }
        if engine
            .store()
            .take_submission(&sub.token, sub.runner.as_deref(), me)
            .await?
        {
            taken.push(sub);
        }
    }
    let n = taken.len();
    for sub in taken {
        let engine = engine.clone();
        tokio::spawn(async move {
            let Submission {
                token,
                owner,
                state,
                request,
                ..
            } = sub;
            let stored: Stored = match serde_json::from_str(&request) {
                Ok(s) => s,
                Err(e) => {
                    let r = judge0::internal_error(&format!(
                        "The stored submission is unreadable: {e}."
                    ));
                    let text = serde_json::to_string(&r).expect("plain data serializes");
                    let _ = engine.store().finish_submission(&token, &text).await;
                    return;
                }
            };
            if state == SubmissionState::Queued {
                let _ = engine.store().start_submission(&token).await;
            }
            let ticket = engine.admit_always(&owner);
            run(&engine, &token, &stored, ticket).await;
        });
    }
    Ok(n)
}

/// Deletes finished submissions older than the keep, every ten minutes until shutdown.
pub fn spawn_expiry(engine: Arc<Engine>, shutdown: CancellationToken) {
    tokio::spawn(async move {
        loop {
            let keep = i64::try_from(engine.options().keep.as_millis()).unwrap_or(i64::MAX);
            let before = sandlab_runtime::manager::now_ms() as i64 - keep;
            if let Err(e) = engine.store().expire_submissions(before).await {
                tracing::warn!(error = %e, "could not delete old submissions");
            }
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(EXPIRY_EVERY) => {}
            }
        }
    });
}

/// The submissions these tokens name that `owner` may see (`None`: an admin, all).
pub async fn visible(
    store: &Arc<dyn Store>,
    tokens: &[String],
    owner: Option<&str>,
) -> Result<Vec<Option<Submission>>, sandlab_store::Error> {
    let found = store.get_submissions(tokens).await?;
    Ok(tokens
        .iter()
        .map(|t| {
            found
                .iter()
                .find(|s| s.token == *t && owner.is_none_or(|o| s.owner == o))
                .cloned()
        })
        .collect())
}
