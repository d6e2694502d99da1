//! The audit log: append-only (the table's triggers refuse UPDATE and DELETE).

use super::SqliteStore;
use crate::error::Result;
use crate::model::{
    bounded_detail, truncate_chars, validate_action, AuditEntry, MAX_AUDIT_TARGET_CHARS,
};
use crate::page::{Page, PageRequest};
use crate::rows::audit::{page_after, page_of, AuditRow};

pub(super) async fn append(
    s: &SqliteStore,
    actor: Option<&str>,
    action: &str,
    target: Option<&str>,
    detail: &serde_json::Value,
) -> Result<i64> {
    validate_action(action)?;
    let done = sqlx::query(
        "INSERT INTO audit_log (at, actor, action, target, detail) VALUES (?, ?, ?, ?, ?)",
    )
    .bind(s.now())
    .bind(actor.map(|a| truncate_chars(a, MAX_AUDIT_TARGET_CHARS)))
    .bind(action)
    .bind(target.map(|t| truncate_chars(t, MAX_AUDIT_TARGET_CHARS)))
    .bind(bounded_detail(detail))
    .execute(&s.writer)
    .await?;
    Ok(done.last_insert_rowid())
}

pub(super) async fn list(s: &SqliteStore, page: PageRequest) -> Result<Page<AuditEntry>> {
    let limit = page.clamped_limit();
    let after = page_after(&page)?;
    let rows: Vec<AuditRow> = sqlx::query_as(
        "SELECT id, at, actor, action, target, detail FROM audit_log \
         WHERE id > ? ORDER BY id LIMIT ?",
    )
    .bind(after)
    .bind(i64::from(limit) + 1)
    .fetch_all(&s.reader)
    .await?;
    page_of(rows, limit)
}
