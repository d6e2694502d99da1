//! Rows of `sandboxes`: the runtime's [`SandboxRecord`]s.

use sandlab_core::{Holder, Limits, NetworkInfo, SandboxId, SandboxRecord, SandboxState};

use crate::error::{Error, Result};
use crate::page::{encode_keyset, Page, PageRequest};

pub(crate) const COLUMNS: &str =
    "id, state, reason, owner, image, limits, hostname, driver, ipv4, ipv6, \
     created_at, deadline, creator, owner_process";
const CURSOR_KIND: &str = "sandboxes";
/// The states in which a sandbox holds host resources, for quotas.
pub(crate) const LIVE_STATES: &str = "('creating', 'running', 'stopping')";

#[derive(sqlx::FromRow)]
pub(crate) struct SandboxRow {
    id: String,
    state: String,
    reason: Option<String>,
    owner: Option<String>,
    image: String,
    limits: String,
    hostname: Option<String>,
    driver: String,
    ipv4: Option<String>,
    ipv6: Option<String>,
    created_at: i64,
    deadline: i64,
    creator: Option<String>,
    owner_process: Option<String>,
}

fn corrupt(id: &str, what: &str) -> Error {
    Error::Corrupt(format!("sandbox {id} has an invalid {what}"))
}

/// An optional holder column as a [`Holder`].
fn opt_holder(v: Option<String>, id: &str, what: &str) -> Result<Option<Holder>> {
    v.map(|s| s.parse().map_err(|_| corrupt(id, what)))
        .transpose()
}

fn parse_state(s: &str, id: &str) -> Result<SandboxState> {
    serde_json::from_value(serde_json::Value::String(s.to_owned()))
        .map_err(|_| corrupt(id, "state"))
}

/// Unix milliseconds as stored: the column is a signed 64-bit integer, and a time past
/// `i64::MAX` (year 292 million) is stored as `i64::MAX`.
pub(crate) fn ms_to_db(ms: u64) -> i64 {
    i64::try_from(ms).unwrap_or(i64::MAX)
}

impl TryFrom<SandboxRow> for SandboxRecord {
    type Error = Error;
    fn try_from(r: SandboxRow) -> Result<SandboxRecord> {
        let id: SandboxId = r.id.parse().map_err(|_| corrupt(&r.id, "id"))?;
        let limits: Limits =
            serde_json::from_str(&r.limits).map_err(|_| corrupt(&r.id, "limits"))?;
        Ok(SandboxRecord {
            state: parse_state(&r.state, &r.id)?,
            limits,
            reason: r.reason,
            owner: r.owner,
            image: r.image,
            hostname: r.hostname,
            driver: r.driver,
            network: NetworkInfo {
                ipv4: r.ipv4,
                ipv6: r.ipv6,
            },
            created_at_ms: u64::try_from(r.created_at).map_err(|_| corrupt(&r.id, "time"))?,
            deadline_ms: u64::try_from(r.deadline).map_err(|_| corrupt(&r.id, "deadline"))?,
            creator: opt_holder(r.creator, &r.id, "creator")?,
            owner_process: opt_holder(r.owner_process, &r.id, "owner process")?,
            id,
        })
    }
}

/// The records of `rows`, in their order. A record that cannot be read is skipped with a
/// warning rather than hiding all the others from reconciliation.
pub(crate) fn readable_records(rows: Vec<SandboxRow>) -> Vec<SandboxRecord> {
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        match SandboxRecord::try_from(row) {
            Ok(rec) => out.push(rec),
            Err(e) => tracing::warn!(error = %e, "skipping unreadable sandbox record"),
        }
    }
    out
}

/// The `(created_at, id)` a page of records starts after: its cursor's, or before the
/// first.
pub(crate) fn page_after(page: &PageRequest) -> Result<(i64, String)> {
    super::keyset_after(CURSOR_KIND, page)
}

/// A page of the records read for `limit` (one more row than `limit` means a next page).
pub(crate) fn page_of(rows: Vec<SandboxRow>, limit: u32) -> Result<Page<SandboxRecord>> {
    super::page_of(rows, limit, |r: &SandboxRecord| {
        encode_keyset(CURSOR_KIND, ms_to_db(r.created_at_ms), r.id.as_str())
    })
}
