//! Code-execution submissions of the Judge0-compatible API: queued, running, done. The
//! request and the result are JSON text the store does not read.

use super::PostgresStore;
use crate::error::{Error, Result};
use crate::model::{validate_new_submission, NewSubmission, Submission, SubmissionState};
use crate::rows::submissions::{Row, COLUMNS};

/// A text's length in bytes as stored.
fn bytes(text: &str) -> i64 {
    i64::try_from(text.len()).unwrap_or(i64::MAX)
}

pub(super) async fn create(s: &PostgresStore, new: &[NewSubmission]) -> Result<Vec<Submission>> {
    for n in new {
        validate_new_submission(n)?;
    }
    if new.is_empty() {
        return Ok(Vec::new());
    }
    let mut tx = s.begin().await?;
    let now = s.now(&mut *tx).await?;
    let mut created = Vec::with_capacity(new.len());
    for n in new {
        sqlx::query(
            "INSERT INTO submissions (token, owner, state, request, result, bytes, created_at, \
             finished_at, runner) VALUES ($1, $2, 'queued', $3, NULL, $4, $5, NULL, $6)",
        )
        .bind(&n.token)
        .bind(&n.owner)
        .bind(&n.request)
        .bind(bytes(&n.request))
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

pub(super) async fn get(s: &PostgresStore, tokens: &[String]) -> Result<Vec<Submission>> {
    if tokens.is_empty() {
        return Ok(Vec::new());
    }
    // One parameter for any number of tokens: an array, kept in its order by ORDINALITY.
    let rows: Vec<Row> = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM unnest($1::text[]) WITH ORDINALITY AS j (token, n) \
         JOIN submissions AS s ON s.token = j.token ORDER BY j.n"
    ))
    .bind(tokens)
    .fetch_all(&s.pool)
    .await?;
    rows.into_iter().map(Submission::try_from).collect()
}

pub(super) async fn start(s: &PostgresStore, token: &str) -> Result<bool> {
    // One statement: of two workers racing, one changes the row; the other waits for its
    // commit, re-checks `state` on the new row and changes nothing.
    let done = sqlx::query(
        "UPDATE submissions SET state = 'running' WHERE token = $1 AND state = 'queued'",
    )
    .bind(token)
    .execute(&s.pool)
    .await?;
    Ok(done.rows_affected() > 0)
}

pub(super) async fn take(
    s: &PostgresStore,
    token: &str,
    from: Option<&str>,
    to: &str,
) -> Result<bool> {
    // One statement, re-checked on the new row by a concurrent taker (as `start`).
    let done = sqlx::query(
        "UPDATE submissions SET runner = $1 \
         WHERE token = $2 AND runner IS NOT DISTINCT FROM $3 AND state <> 'done'",
    )
    .bind(to)
    .bind(token)
    .bind(from)
    .execute(&s.pool)
    .await?;
    Ok(done.rows_affected() > 0)
}

pub(super) async fn finish(s: &PostgresStore, token: &str, result: &str) -> Result<bool> {
    let now = s.now(&s.pool).await?;
    let done = sqlx::query(
        "UPDATE submissions SET state = 'done', result = $1, bytes = bytes + $2, \
         finished_at = $3 WHERE token = $4 AND state IN ('queued', 'running')",
    )
    .bind(result)
    .bind(bytes(result))
    .bind(now)
    .bind(token)
    .execute(&s.pool)
    .await?;
    Ok(done.rows_affected() > 0)
}

pub(super) async fn unfinished(s: &PostgresStore) -> Result<Vec<Submission>> {
    // `state <> 'done'` is the partial index's own condition, so the index serves it.
    let rows: Vec<Row> = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM submissions AS s WHERE s.state <> 'done' \
         ORDER BY s.created_at, s.seq"
    ))
    .fetch_all(&s.pool)
    .await?;
    rows.into_iter().map(Submission::try_from).collect()
}

pub(super) async fn delete(s: &PostgresStore, token: &str, owner: Option<&str>) -> Result<bool> {
    let done = sqlx::query(
        "DELETE FROM submissions WHERE token = $1 AND ($2::text IS NULL OR owner = $2)",
    )
    .bind(token)
    .bind(owner)
    .execute(&s.pool)
    .await?;
    Ok(done.rows_affected() > 0)
}

pub(super) async fn expire(s: &PostgresStore, before_ms: i64) -> Result<u64> {
    let done = sqlx::query("DELETE FROM submissions WHERE state = 'done' AND finished_at < $1")
        .bind(before_ms)
        .execute(&s.pool)
        .await?;
    Ok(done.rows_affected())
}

pub(super) async fn usage(s: &PostgresStore, owner: &str) -> Result<(u64, u64)> {
    let (n, bytes): (i64, i64) = sqlx::query_as(
        "SELECT COUNT(*), COALESCE(SUM(bytes), 0)::bigint FROM submissions WHERE owner = $1",
    )
    .bind(owner)
    .fetch_one(&s.pool)
    .await?;
    Ok((n.max(0) as u64, bytes.max(0) as u64))
}
