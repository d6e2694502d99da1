//! Rows of `audit_log`.

use crate::error::{Error, Result};
use crate::model::AuditEntry;
use crate::page::{decode_seq, encode_seq, Page, PageRequest};

const CURSOR_KIND: &str = "audit";

#[derive(sqlx::FromRow)]
pub(crate) struct AuditRow {
    id: i64,
    at: i64,
    actor: Option<String>,
    action: String,
    target: Option<String>,
    detail: String,
}

impl TryFrom<AuditRow> for AuditEntry {
    type Error = Error;
    fn try_from(r: AuditRow) -> Result<AuditEntry> {
        let detail = serde_json::from_str(&r.detail)
            .map_err(|_| Error::Corrupt(format!("audit entry {} has invalid JSON", r.id)))?;
        Ok(AuditEntry {
            id: r.id,
            at_ms: r.at,
            actor: r.actor,
            action: r.action,
            target: r.target,
            detail,
        })
    }
}

/// The id a page of entries starts after: its cursor's, or 0 for the first page.
pub(crate) fn page_after(page: &PageRequest) -> Result<i64> {
    match &page.cursor {
        Some(c) => decode_seq(CURSOR_KIND, c),
        None => Ok(0),
    }
}

/// A page of the entries read for `limit` (one more row than `limit` means a next page).
pub(crate) fn page_of(rows: Vec<AuditRow>, limit: u32) -> Result<Page<AuditEntry>> {
    super::page_of(rows, limit, |e: &AuditEntry| encode_seq(CURSOR_KIND, e.id))
}
