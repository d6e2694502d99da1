//! Lab sessions and per-user lab progress.

use super::SqliteStore;
use crate::error::{Error, Result};
use crate::model::{HandOver, LabSession};
use crate::rows::labs::{json_columns, Row, COLUMNS};

pub(super) async fn put(s: &SqliteStore, session: &LabSession) -> Result<()> {
    let (nodes, tasks) = json_columns(session)?;
    sqlx::query(&format!(
        "INSERT INTO lab_sessions ({COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) \
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
    .execute(&s.writer)
    .await?;
    Ok(())
}

pub(super) async fn take(s: &SqliteStore, id: &str, from: Option<&str>, to: &str) -> Result<bool> {
    let done = sqlx::query("UPDATE lab_sessions SET runner = ? WHERE id = ? AND runner IS ?")
        .bind(to)
        .bind(id)
        .bind(from)
        .execute(&s.writer)
        .await?;
    Ok(done.rows_affected() > 0)
}

pub(super) async fn hand_over(s: &SqliteStore, id: &str, hand: &HandOver<'_>) -> Result<bool> {
    let done = sqlx::query(
        "UPDATE lab_sessions SET owner = ?, created_at = ?, deadline = ? \
         WHERE id = ? AND owner = ? AND runner = ? AND state = 'ready'",
    )
    .bind(hand.to)
    .bind(hand.created_at_ms)
    .bind(hand.deadline_ms)
    .bind(id)
    .bind(hand.from)
    .bind(hand.runner)
    .execute(&s.writer)
    .await?;
    Ok(done.rows_affected() > 0)
}

pub(super) async fn get(s: &SqliteStore, id: &str, owner: Option<&str>) -> Result<LabSession> {
    let row: Option<Row> = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM lab_sessions WHERE id = ? AND (? IS NULL OR owner = ?)"
    ))
    .bind(id)
    .bind(owner)
    .bind(owner)
    .fetch_optional(&s.reader)
    .await?;
    row.ok_or(Error::NotFound("lab session"))?.try_into()
}

pub(super) async fn list(s: &SqliteStore, owner: Option<&str>) -> Result<Vec<LabSession>> {
    let rows: Vec<Row> = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM lab_sessions WHERE (? IS NULL OR owner = ?) \
         ORDER BY created_at, id LIMIT 10000"
    ))
    .bind(owner)
    .bind(owner)
    .fetch_all(&s.reader)
    .await?;
    rows.into_iter().map(TryInto::try_into).collect()
}

pub(super) async fn open(s: &SqliteStore, owner: Option<&str>) -> Result<Vec<LabSession>> {
    let rows: Vec<Row> = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM lab_sessions WHERE state IN ('starting', 'ready') \
         AND (? IS NULL OR owner = ?) ORDER BY created_at, id"
    ))
    .bind(owner)
    .bind(owner)
    .fetch_all(&s.reader)
    .await?;
    rows.into_iter().map(TryInto::try_into).collect()
}

pub(super) async fn delete(s: &SqliteStore, id: &str) -> Result<()> {
    sqlx::query("DELETE FROM lab_sessions WHERE id = ?")
        .bind(id)
        .execute(&s.writer)
        .await?;
    Ok(())
}

pub(super) async fn mark_done(s: &SqliteStore, user: &str, lab: &str, task: &str) -> Result<()> {
    sqlx::query(
        "INSERT INTO lab_progress (user_id, lab, task, done_at) VALUES (?, ?, ?, ?) \
         ON CONFLICT DO NOTHING",
    )
    .bind(user)
    .bind(lab)
    .bind(task)
    .bind(s.now())
    .execute(&s.writer)
    .await?;
    Ok(())
}

pub(super) async fn done(s: &SqliteStore, user: &str, lab: &str) -> Result<Vec<String>> {
    let rows: Vec<(String,)> = sqlx::query_as(
        "SELECT task FROM lab_progress WHERE user_id = ? AND lab = ? ORDER BY done_at, task",
    )
    .bind(user)
    .bind(lab)
    .fetch_all(&s.reader)
    .await?;
    Ok(rows.into_iter().map(|(t,)| t).collect())
}

pub(super) async fn all_done(s: &SqliteStore, user: &str) -> Result<Vec<(String, String)>> {
    Ok(sqlx::query_as(
        "SELECT lab, task FROM lab_progress WHERE user_id = ? ORDER BY lab, done_at, task",
    )
    .bind(user)
    .fetch_all(&s.reader)
    .await?)
}

pub(super) async fn reveal_hint(s: &SqliteStore, user: &str, lab: &str, task: &str) -> Result<()> {
    sqlx::query(
        "INSERT INTO lab_hints (user_id, lab, task, revealed_at) VALUES (?, ?, ?, ?) \
         ON CONFLICT DO NOTHING",
    )
    .bind(user)
    .bind(lab)
    .bind(task)
    .bind(s.now())
    .execute(&s.writer)
    .await?;
    Ok(())
}

pub(super) async fn hints(s: &SqliteStore, user: &str, lab: &str) -> Result<Vec<String>> {
    let rows: Vec<(String,)> = sqlx::query_as(
        "SELECT task FROM lab_hints WHERE user_id = ? AND lab = ? ORDER BY revealed_at, task",
    )
    .bind(user)
    .bind(lab)
    .fetch_all(&s.reader)
    .await?;
    Ok(rows.into_iter().map(|(t,)| t).collect())
}
