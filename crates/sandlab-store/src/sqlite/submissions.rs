//! Code-execution submissions of the Judge0-compatible API: queued, running, done. The
//! request and the result are JSON text the store does not read.

use super::SqliteStore;
use crate::error::{Error, Result};
use crate::model::{validate_new_submission, NewSubmission, Submission, SubmissionState};
use crate::rows::submissions::{Row, COLUMNS};

pub(super) async fn create(s: &SqliteStore, new: &[NewSubmission]) -> Result<Vec<Submission>> {
    for n in new {
        validate_new_submission(n)?;
    }
    if new.is_empty() {
        return Ok(Vec::new());
    }
    let now = s.now();
    let mut tx = s.begin_write().await?;
    let mut created = Vec::with_capacity(new.len());
    for n in new {
        sqlx::query(
            "INSERT INTO submissions (token, owner, state, request, result, bytes, created_at, \
             finished_at, runner) VALUES (?, ?, 'queued', ?, NULL, ?, ?, NULL, ?)",
        )
        .bind(&n.token)
        .bind(&n.owner)
        .bind(&n.request)
        .bind(n.request.len() as i64)
        .bind(now)
        .bind(&n.runner)
        .execute(&mut *tx)
        .await
        .map_err(|e| {
            Error::unique(
                e,
                &format!("A submission with the token {} exists", n.token),
            )
        })?;
        created.push(Submission {
            token: n.token.clone(),
            owner: n.owner.clone(),
            runner: n.runner.clone(),
            state: SubmissionState::Queued,
            request: n.request.clone(),
            result: None,
            created_at_ms: now,
            finished_at_ms: None,
        });
    }
    // An error above drops `tx`, which rolls every insert back.
    tx.commit().await?;
    Ok(created)
}

pub(super) async fn get(s: &SqliteStore, tokens: &[String]) -> Result<Vec<Submission>> {
    if tokens.is_empty() {
        return Ok(Vec::new());
    }
    // One parameter for any number of tokens: a JSON array, kept in its order by `key`.
    let list = serde_json::to_string(tokens)
        .map_err(|e| Error::Invalid(format!("The submission tokens: {e}")))?;
    let rows: Vec<Row> = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM json_each(?) AS j JOIN submissions AS s ON s.token = j.value \
         ORDER BY j.key"
    ))
    .bind(list)
    .fetch_all(&s.reader)
    .await?;
    rows.into_iter().map(Submission::try_from).collect()
}

pub(super) async fn start(s: &SqliteStore, token: &str) -> Result<bool> {
    // One statement: of two workers racing, one changes the row and the other finds none.
    let done = sqlx::query(
        "UPDATE submissions SET state = 'running' WHERE token = ? AND state = 'queued'",
    )
    .bind(token)
    .execute(&s.writer)
    .await?;
    Ok(done.rows_affected() > 0)
}

pub(super) async fn take(
    s: &SqliteStore,
    token: &str,
    from: Option<&str>,
    to: &str,
) -> Result<bool> {
    let done = sqlx::query(
        "UPDATE submissions SET runner = ? WHERE token = ? AND runner IS ? AND state <> 'done'",
    )
    .bind(to)
    .bind(token)
    .bind(from)
    .execute(&s.writer)
    .await?;
    Ok(done.rows_affected() > 0)
}

pub(super) async fn finish(s: &SqliteStore, token: &str, result: &str) -> Result<bool> {
    let done = sqlx::query(
        "UPDATE submissions SET state = 'done', result = ?, bytes = bytes + ?, finished_at = ? \
         WHERE token = ? AND state IN ('queued', 'running')",
    )
    .bind(result)
    .bind(result.len() as i64)
    .bind(s.now())
    .bind(token)
    .execute(&s.writer)
    .await?;
    Ok(done.rows_affected() > 0)
}

pub(super) async fn unfinished(s: &SqliteStore) -> Result<Vec<Submission>> {
    // `state <> 'done'` is the partial index's own condition, so the index serves it.
    let rows: Vec<Row> = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM submissions AS s WHERE s.state <> 'done' \
         ORDER BY s.created_at, s.rowid"
    ))
    .fetch_all(&s.reader)
    .await?;
    rows.into_iter().map(Submission::try_from).collect()
}

pub(super) async fn delete(s: &SqliteStore, token: &str, owner: Option<&str>) -> Result<bool> {
    let done = sqlx::query("DELETE FROM submissions WHERE token = ? AND (? IS NULL OR owner = ?)")
        .bind(token)
        .bind(owner)
        .bind(owner)
        .execute(&s.writer)
        .await?;
    Ok(done.rows_affected() > 0)
}

pub(super) async fn expire(s: &SqliteStore, before_ms: i64) -> Result<u64> {
    let done = sqlx::query("DELETE FROM submissions WHERE state = 'done' AND finished_at < ?")
        .bind(before_ms)
        .execute(&s.writer)
        .await?;
    Ok(done.rows_affected())
}

pub(super) async fn usage(s: &SqliteStore, owner: &str) -> Result<(u64, u64)> {
    let (n, bytes): (i64, i64) =
        sqlx::query_as("SELECT COUNT(*), COALESCE(SUM(bytes), 0) FROM submissions WHERE owner = ?")
            .bind(owner)
            .fetch_one(&s.reader)
            .await?;
    Ok((n.max(0) as u64, bytes.max(0) as u64))
}
