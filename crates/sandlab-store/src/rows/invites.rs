//! Rows of `invites`.

use crate::error::{Error, Result};
use crate::links::{Invite, LinkRefusal};
use crate::model::Role;
use crate::page::{encode_keyset, Page, PageRequest};

/// The columns [`InviteRow`] reads, for queries on `invites`.
pub(crate) const INVITE_COLUMNS: &str = "id, role, uses, used, created_by, created_at, expires_at";
const CURSOR_KIND: &str = "invites";

#[derive(sqlx::FromRow)]
pub(crate) struct InviteRow {
    id: String,
    role: String,
    uses: i64,
    used: i64,
    created_by: Option<String>,
    created_at: i64,
    expires_at: i64,
}

impl TryFrom<InviteRow> for Invite {
    type Error = Error;
    fn try_from(r: InviteRow) -> Result<Invite> {
        let corrupt = |what: &str| Error::Corrupt(format!("invitation {} has {what}", r.id));
        let role = r
            .role
            .parse::<Role>()
            .map_err(|_| corrupt(&format!("role {:?}", r.role)))?;
        let uses = u32::try_from(r.uses).map_err(|_| corrupt("a bad use count"))?;
        let used = u32::try_from(r.used).map_err(|_| corrupt("a bad use count"))?;
        Ok(Invite {
            id: r.id,
            role,
            uses,
            used,
            created_by: r.created_by,
            created_at_ms: r.created_at,
            expires_at_ms: r.expires_at,
        })
    }
}

/// Why `invite` (the row its secret names, if any) cannot be redeemed at `now`, if it
/// cannot.
pub(crate) fn refusal(invite: Option<&Invite>, now: i64) -> Option<LinkRefusal> {
    match invite {
        None => Some(LinkRefusal::Unknown),
        Some(i) if i.used >= i.uses => Some(LinkRefusal::UsedUp),
        Some(i) if i.expires_at_ms <= now => Some(LinkRefusal::Expired),
        Some(_) => None,
    }
}

/// The `(created_at, id)` a page of invitations starts after.
pub(crate) fn page_after(page: &PageRequest) -> Result<(i64, String)> {
    super::keyset_after(CURSOR_KIND, page)
}

/// A page of the invitations read for `limit` (one more row means a next page).
pub(crate) fn page_of(rows: Vec<InviteRow>, limit: u32) -> Result<Page<Invite>> {
    super::page_of(rows, limit, |i: &Invite| {
        encode_keyset(CURSOR_KIND, i.created_at_ms, &i.id)
    })
}

/// A foreign-key violation on `created_by` is an unknown creator.
pub(crate) fn unknown_creator(e: sqlx::Error) -> Error {
    match &e {
        sqlx::Error::Database(db) if db.is_foreign_key_violation() => Error::NotFound("user"),
        _ => Error::from(e),
    }
}
