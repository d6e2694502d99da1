//! Rows of `submissions`.

use crate::error::{Error, Result};
use crate::model::{Submission, SubmissionState};

#[derive(sqlx::FromRow)]
pub(crate) struct Row {
    token: String,
    owner: String,
    state: String,
    request: String,
    result: Option<String>,
    created_at: i64,
    finished_at: Option<i64>,
    runner: Option<String>,
}

pub(crate) const COLUMNS: &str =
    "s.token, s.owner, s.state, s.request, s.result, s.created_at, s.finished_at, s.runner";

impl TryFrom<Row> for Submission {
    type Error = Error;

    fn try_from(r: Row) -> Result<Submission> {
        Ok(Submission {
            state: SubmissionState::parse(&r.state).ok_or_else(|| {
                Error::Corrupt(format!(
                    "submission {} has the unknown state {:?}",
                    r.token, r.state
                ))
            })?,
            token: r.token,
            owner: r.owner,
            runner: r.runner,
            request: r.request,
            result: r.result,
            created_at_ms: r.created_at,
            finished_at_ms: r.finished_at,
        })
    }
}
