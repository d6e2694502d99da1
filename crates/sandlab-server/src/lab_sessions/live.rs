//! A running session ([`Live`]): its record, deadline and event stream, and the
//! [`TaskRunner`] that runs its task scripts on its nodes.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use sandlab_core::SandboxId;
use sandlab_lab::Lab;
use sandlab_proto::ExecRequest;
use sandlab_store::{LabSession, LabSessionState, SessionTask};
use serde::{Deserialize, Serialize};
use tokio::sync::{broadcast, Notify};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::checker::{CheckError, Checker, TaskEvent, TaskRunner};
use crate::sandboxes::Sandboxes;

/// Output kept from one check run (only the exit status matters).
const CHECK_OUTPUT: usize = 4096;

/// Something a session's event stream reports.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum SessionEvent {
    Task(TaskEvent),
    Session {
        state: LabSessionState,
        reason: Option<String>,
    },
}

/// A session the server is running.
pub struct Live {
    pub lab: Arc<Lab>,
    pub checker: Arc<Checker>,
    pub(super) record: Mutex<LabSession>,
    pub(super) deadline: Mutex<Instant>,
    pub(super) moved: Notify,
    pub(super) cancel: CancellationToken,
    pub(super) events: broadcast::Sender<SessionEvent>,
}

impl Live {
    pub fn record(&self) -> LabSession {
        self.record
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The record with the checker's task states, as the store keeps it for every replica.
    pub fn stored(&self) -> LabSession {
        let mut rec = self.record();
        rec.tasks = self
            .checker
            .states()
            .into_iter()
            .map(|(id, state)| SessionTask {
                id,
                state: state.as_str().to_owned(),
            })
            .collect();
        rec
    }

    pub fn subscribe(&self) -> broadcast::Receiver<SessionEvent> {
        self.events.subscribe()
    }

    pub fn time_left(&self) -> Duration {
        self.deadline
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .saturating_duration_since(Instant::now())
    }

    /// Moves the session to `state`, unless it is over already (an end is final).
    pub(super) fn set_state(&self, state: LabSessionState, reason: Option<String>) -> LabSession {
        let rec = {
            let mut r = self.record.lock().unwrap_or_else(|p| p.into_inner());
            if r.state.is_over() {
                return r.clone();
            }
            r.state = state;
            r.reason = reason.clone();
            r.clone()
        };
        let _ = self.events.send(SessionEvent::Session { state, reason });
        rec
    }
}

/// Runs task scripts on the session's nodes through their agents.
pub(super) struct NodeRunner {
    pub(super) sandboxes: Arc<Sandboxes>,
    pub(super) nodes: HashMap<String, SandboxId>,
}

#[async_trait]
impl TaskRunner for NodeRunner {
    async fn run(
        &self,
        machine: &str,
        user: &str,
        script: &str,
        timeout: Duration,
    ) -> std::result::Result<bool, CheckError> {
        let id = self
            .nodes
            .get(machine)
            .ok_or_else(|| CheckError::NoNode(machine.to_owned()))?;
        let agent = self.sandboxes.agent(id).await?;
        let req = ExecRequest {
            argv: vec!["/bin/sh".into(), "-c".into(), script.into()],
            user: Some(user.to_owned()),
            timeout: Some(timeout),
            ..ExecRequest::default()
        };
        let out = agent.exec_collect(req, None, CHECK_OUTPUT).await?;
        Ok(out.exit.code == Some(0))
    }
}
