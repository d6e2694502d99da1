//! Commands to the replica running a session, over the store bus.
//!
//! A replica asked to change a session another replica runs (extend, end) publishes a
//! [`Command`] on [`COMMANDS`]; every replica listens there ([`LabSessions::serve_commands`])
//! and the one that has the session live carries the command out and answers on
//! `reply:<request id>`, where the asker subscribed before publishing. No answer within
//! [`ASK_TIMEOUT`] (the runner died and nobody has taken the session over yet) is
//! [`LabSessionError::NoAnswer`].

use std::sync::Arc;
use std::time::Duration;

use sandlab_store::{LabSession, Notice};
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use super::{LabSessionError, LabSessions, Live, Result};

/// The topic every replica listens on for commands.
pub const COMMANDS: &str = "lab-session-cmd";
/// How long an asker waits for the runner's answer.
const ASK_TIMEOUT: Duration = Duration::from_secs(10);

/// The topic a session's events are published on.
pub fn events_topic(session: &str) -> String {
    format!("lab-session:{session}")
}

fn reply_topic(request: &str) -> String {
    format!("reply:{request}")
}

/// What the runner is asked to do.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub(super) enum Op {
    /// Move the deadline to `ttl_ms` from now ([`LabSessions::extend`]).
    Extend { ttl_ms: u64 },
    /// End the session ([`LabSessions::end`]).
    End { reason: String },
}

#[derive(Debug, Serialize, Deserialize)]
struct Command {
    /// The request's id: the answer goes to `reply:<id>`.
    id: String,
    session: String,
    op: Op,
}

#[derive(Debug, Serialize, Deserialize)]
struct Reply {
    /// Why the runner refused, in a sentence for the caller; `None`: done.
    error: Option<String>,
}

impl LabSessions {
    /// Carries out the commands meant for sessions this replica runs, until `shutdown`.
    pub fn serve_commands(self: &Arc<Self>, shutdown: CancellationToken) {
        let me = self.clone();
        tokio::spawn(async move {
            loop {
                let mut sub = match me.store.subscribe(COMMANDS).await {
                    Ok(sub) => sub,
                    Err(e) => {
                        tracing::warn!(error = %sandlab_core::error_chain(&e), "cannot listen for session commands; trying again");
                        tokio::select! {
                            _ = tokio::time::sleep(Duration::from_secs(1)) => continue,
                            _ = shutdown.cancelled() => return,
                        }
                    }
                };
                loop {
                    let notice = tokio::select! {
                        n = sub.recv() => n,
                        _ = shutdown.cancelled() => return,
                    };
                    match notice {
                        Some(Notice::Message(text)) => me.command(&text),
                        // A command missed is one its asker times out on.
                        Some(Notice::Gap) => {}
                        None => break,
                    }
                }
            }
        });
    }

    /// Starts a command if it is for a session this replica runs.
    fn command(self: &Arc<Self>, text: &str) {
        let Ok(cmd) = serde_json::from_str::<Command>(text) else {
            tracing::warn!("ignoring a session command that does not parse");
            return;
        };
        let me = self.clone();
        let Some(live) = self.get(&cmd.session, None) else {
            // Not running here; if it names this replica as its runner it is an orphan
            // (a set-up that failed half way) nobody else would answer for.
            tokio::spawn(async move { me.answer_for_orphan(cmd).await });
            return;
        };
        tokio::spawn(async move {
            let error = me
                .carry_out(&live, cmd.op)
                .await
                .err()
                .map(|e| e.to_string());
            let reply = serde_json::to_string(&Reply { error }).unwrap_or_default();
            if let Err(e) = me.store.publish(&reply_topic(&cmd.id), &reply).await {
                tracing::warn!(session = %cmd.session, error = %sandlab_core::error_chain(&e), "cannot answer a session command");
            }
        });
    }

    /// Answers `cmd` for a session that names this replica as runner but does not run
    /// here: an end ends it, an extend is refused. Says nothing about other sessions.
    async fn answer_for_orphan(&self, cmd: Command) {
        let rec = match self.store.get_lab_session(&cmd.session, None).await {
            Ok(rec) if rec.runner.as_deref() == Some(self.me.as_str()) => rec,
            _ => return,
        };
        let error = match cmd.op {
            Op::End { reason } => match self.end_orphan(&rec, &reason).await {
                Ok(true) => None,
                // Being set up here still, or taken by another task meanwhile.
                Ok(false) => return,
                Err(e) => Some(e.to_string()),
            },
            Op::Extend { .. } => {
                if !self.orphaned(&rec).await {
                    return;
                }
                Some("The session is not running; start it again.".to_owned())
            }
        };
        let reply = serde_json::to_string(&Reply { error }).unwrap_or_default();
        if let Err(e) = self.store.publish(&reply_topic(&cmd.id), &reply).await {
            tracing::warn!(session = %cmd.session, error = %sandlab_core::error_chain(&e), "cannot answer a session command");
        }
    }

    async fn carry_out(&self, live: &Arc<Live>, op: Op) -> Result<()> {
        match op {
            Op::Extend { ttl_ms } => {
                self.extend(live, Duration::from_millis(ttl_ms)).await?;
            }
            Op::End { reason } => self.end(live, &reason).await,
        }
        Ok(())
    }

    /// Sends `op` for `session` to the replica running it and waits for its answer.
    pub(super) async fn ask(&self, session: &str, op: Op) -> Result<()> {
        let id = sandlab_core::random_id("rq", 16);
        let mut replies = self.store.subscribe(&reply_topic(&id)).await?;
        let cmd = Command {
            id,
            session: session.to_owned(),
            op,
        };
        let text = serde_json::to_string(&cmd).unwrap_or_default();
        self.store.publish(COMMANDS, &text).await?;
        let answer = tokio::time::timeout(ASK_TIMEOUT, async {
            loop {
                match replies.recv().await {
                    Some(Notice::Message(text)) => {
                        if let Ok(reply) = serde_json::from_str::<Reply>(&text) {
                            return Some(reply);
                        }
                    }
                    Some(Notice::Gap) => {}
                    None => return None,
                }
            }
        })
        .await;
        match answer {
            Ok(Some(Reply { error: None })) => Ok(()),
            Ok(Some(Reply { error: Some(why) })) => Err(LabSessionError::Refused(why)),
            Ok(None) | Err(_) => Err(LabSessionError::NoAnswer),
        }
    }

    /// Ends `rec` here if nobody runs it (its runner died, or its set-up here failed half
    /// way) and no other taker gets it first; whether it did.
    async fn end_orphan(&self, rec: &LabSession, reason: &str) -> Result<bool> {
        if !self.orphaned(rec).await {
            return Ok(false);
        }
        let Some(_taking) = super::Starting::try_new(&self.starting, &rec.id) else {
            return Ok(false);
        };
        if !self
            .store
            .take_lab_session(&rec.id, rec.runner.as_deref(), &self.me)
            .await?
        {
            return Ok(false);
        }
        let rec = self.store.get_lab_session(&rec.id, None).await?;
        if !rec.state.is_over() {
            self.end_record(rec, reason).await;
        }
        Ok(true)
    }

    /// Extends session `rec` wherever it runs; the record as stored afterwards.
    pub async fn extend_anywhere(&self, rec: &LabSession, ttl: Duration) -> Result<LabSession> {
        if let Some(live) = self.get(&rec.id, None) {
            return self.extend(&live, ttl).await;
        }
        let ttl_ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX);
        self.ask(&rec.id, Op::Extend { ttl_ms }).await?;
        Ok(self.store.get_lab_session(&rec.id, None).await?)
    }

    /// Ends session `rec` wherever it runs (nothing to do for one that is over).
    pub async fn end_anywhere(&self, rec: &LabSession, reason: &str) -> Result<()> {
        if let Some(live) = self.get(&rec.id, None) {
            self.end(&live, reason).await;
            return Ok(());
        }
        if rec.state.is_over() {
            return Ok(());
        }
        if self.end_orphan(rec, reason).await? {
            return Ok(());
        }
        self.ask(
            &rec.id,
            Op::End {
                reason: reason.to_owned(),
            },
        )
        .await
    }
}
