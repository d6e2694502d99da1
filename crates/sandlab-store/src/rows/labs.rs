//! Rows of `lab_sessions`.

use crate::error::{Error, Result};
use crate::model::{LabSession, LabSessionState, SessionNode, SessionTask};

#[derive(sqlx::FromRow)]
pub(crate) struct Row {
    id: String,
    owner: String,
    lab: String,
    state: String,
    reason: Option<String>,
    nodes: String,
    created_at: i64,
    deadline: i64,
    runner: Option<String>,
    tasks: String,
}

pub(crate) const COLUMNS: &str =
    "id, owner, lab, state, reason, nodes, created_at, deadline, runner, tasks";

/// `session`'s nodes and tasks as the JSON texts stored.
pub(crate) fn json_columns(session: &LabSession) -> Result<(String, String)> {
    let nodes = serde_json::to_string(&session.nodes)
        .map_err(|e| Error::Corrupt(format!("lab session nodes: {e}")))?;
    let tasks = serde_json::to_string(&session.tasks)
        .map_err(|e| Error::Corrupt(format!("lab session tasks: {e}")))?;
    Ok((nodes, tasks))
}

impl TryFrom<Row> for LabSession {
    type Error = Error;
    fn try_from(r: Row) -> Result<LabSession> {
        let nodes: Vec<SessionNode> = serde_json::from_str(&r.nodes)
            .map_err(|_| Error::Corrupt(format!("lab session {} has invalid nodes", r.id)))?;
        let tasks: Vec<SessionTask> = serde_json::from_str(&r.tasks)
            .map_err(|_| Error::Corrupt(format!("lab session {} has invalid tasks", r.id)))?;
        let state: LabSessionState = r.state.parse().map_err(|_| {
            Error::Corrupt(format!(
                "lab session {} has the unknown state {:?}",
                r.id, r.state
            ))
        })?;
        Ok(LabSession {
            id: r.id,
            owner: r.owner,
            lab: r.lab,
            state,
            reason: r.reason,
            nodes,
            created_at_ms: r.created_at,
            deadline_ms: r.deadline,
            runner: r.runner,
            tasks,
        })
    }
}
