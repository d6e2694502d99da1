//! Lab sessions and per-user lab progress.

use super::PostgresStore;
use crate::error::{Error, Result};
use crate::model::{HandOver, LabSession};
use crate::rows::labs::{json_columns, Row, COLUMNS};

pub(super) async fn put(s: &PostgresStore, session: &LabSession) -> Result<()> {
    let (nodes, tasks) = json_columns(session)?;
    sqlx::query(&format!(
        "INSERT INTO lab_sessions ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
         ON CONFLICT (id) DO UPDATE SET state = excluded.state, reason = excluded.reason, \
         nodes = excluded.nodes, deadline = excluded.deadline, runner = excluded.runner, \
         tasks = excluded.tasks"
    ))
    .bind(&session.id)
    .bind(&session.owner)
    .bind(&session.lab)
    .bind(session.state.as_str())
    .bind(&session.reason)
    .bind(nodes)
    .bind(session.created_at_ms)
    .bind(session.deadline_ms)
    .bind(&session.runner)
    .bind(tasks)
    .execute(&s.pool)
    .await?;
    Ok(())
}

pub(super) async fn take(
    s: &PostgresStore,
    id: &str,
    from: Option<&str>,
    to: &str,
) -> Result<bool> {
    // One statement: of two takers, the second waits for the first's commit, re-checks
    // `runner` on the new row and changes nothing.
    let done = sqlx::query(
        "UPDATE lab_sessions SET runner = $1 WHERE id = $2 AND runner IS NOT DISTINCT FROM $3",
    )
    .bind(to)
    .bind(id)
    .bind(from)
    .execute(&s.pool)
    .await?;
    Ok(done.rows_affected() > 0)
}

pub(super) async fn hand_over(s: &PostgresStore, id: &str, hand: &HandOver<'_>) -> Result<bool> {
    let done = sqlx::query(
        "UPDATE lab_sessions SET owner = $1, created_at = $2, deadline = $3 \
         WHERE id = $4 AND owner = $5 AND runner = $6 AND state = 'ready'",
    )
    .bind(hand.to)
    .bind(hand.created_at_ms)
    .bind(hand.deadline_ms)
    .bind(id)
    .bind(hand.from)
    .bind(hand.runner)
    .execute(&s.pool)
    .await?;
    Ok(done.rows_affected() > 0)
}

pub(super) async fn get(s: &PostgresStore, id: &str, owner: Option<&str>) -> Result<LabSession> {
    let row: Option<Row> = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM lab_sessions WHERE id = $1 AND ($2::text IS NULL OR owner = $2)"
    ))
    .bind(id)
    .bind(owner)
    .fetch_optional(&s.pool)
    .await?;
    row.ok_or(Error::NotFound("lab session"))?.try_into()
}

pub(super) async fn list(s: &PostgresStore, owner: Option<&str>) -> Result<Vec<LabSession>> {
    let rows: Vec<Row> = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM lab_sessions WHERE ($1::text IS NULL OR owner = $1) \
         ORDER BY created_at, id COLLATE \"C\" LIMIT 10000"
    ))
    .bind(owner)
    .fetch_all(&s.pool)
    .await?;
    rows.into_iter().map(TryInto::try_into).collect()
}

pub(super) async fn open(s: &PostgresStore, owner: Option<&str>) -> Result<Vec<LabSession>> {
    let rows: Vec<Row> = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM lab_sessions WHERE state IN ('starting', 'ready') \
         AND ($1::text IS NULL OR owner = $1) ORDER BY created_at, id COLLATE \"C\""
    ))
    .bind(owner)
    .fetch_all(&s.pool)
    .await?;
    rows.into_iter().map(TryInto::try_into).collect()
}

pub(super) async fn delete(s: &PostgresStore, id: &str) -> Result<()> {
    sqlx::query("DELETE FROM lab_sessions WHERE id = $1")
        .bind(id)
        .execute(&s.pool)
        .await?;
    Ok(())
}

pub(super) async fn mark_done(s: &PostgresStore, user: &str, lab: &str, task: &str) -> Result<()> {
    let now = s.now(&s.pool).await?;
    sqlx::query(
        "INSERT INTO lab_progress (user_id, lab, task, done_at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT DO NOTHING",
    )
    .bind(user)
    .bind(lab)
    .bind(task)
    .bind(now)
    .execute(&s.pool)
    .await?;
    Ok(())
}

pub(super) async fn done(s: &PostgresStore, user: &str, lab: &str) -> Result<Vec<String>> {
    let rows: Vec<(String,)> = sqlx::query_as(
        "SELECT task FROM lab_progress WHERE user_id = $1 AND lab = $2 \
         ORDER BY done_at, task COLLATE \"C\"",
    )
    .bind(user)
    .bind(lab)
    .fetch_all(&s.pool)
    .await?;
    Ok(rows.into_iter().map(|(t,)| t).collect())
}

pub(super) async fn all_done(s: &PostgresStore, user: &str) -> Result<Vec<(String, String)>> {
    Ok(sqlx::query_as(
        "SELECT lab, task FROM lab_progress WHERE user_id = $1 \
         ORDER BY lab COLLATE \"C\", done_at, task COLLATE \"C\"",
    )
    .bind(user)
    .fetch_all(&s.pool)
    .await?)
}

pub(super) async fn reveal_hint(
    s: &PostgresStore,
    user: &str,
    lab: &str,
    task: &str,
) -> Result<()> {
    let now = s.now(&s.pool).await?;
    sqlx::query(
        "INSERT INTO lab_hints (user_id, lab, task, revealed_at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT DO NOTHING",
    )
    .bind(user)
    .bind(lab)
    .bind(task)
    .bind(now)
    .execute(&s.pool)
    .await?;
    Ok(())
}

pub(super) async fn hints(s: &PostgresStore, user: &str, lab: &str) -> Result<Vec<String>> {
    let rows: Vec<(String,)> = sqlx::query_as(
        "SELECT task FROM lab_hints WHERE user_id = $1 AND lab = $2 \
         ORDER BY revealed_at, task COLLATE \"C\"",
    )
    .bind(user)
    .bind(lab)
    .fetch_all(&s.pool)
    .await?;
    Ok(rows.into_iter().map(|(t,)| t).collect())
}
