//! Rows of `orgs` and `org_members`.

use crate::error::{Error, Result};
use crate::orgs::{Membership, Org, OrgLimits, OrgMember, OrgRole};

/// The columns [`OrgRow`] reads, for queries on `orgs` (aliased `o`).
pub(crate) const ORG_COLUMNS: &str = "o.id, o.slug, o.name, o.created_at, o.max_sandboxes, \
     o.max_memory, o.max_cpus, o.max_ttl";
/// The columns [`MemberRow`] reads: `org_members` (aliased `m`) joined with `users` (`u`).
pub(crate) const MEMBER_COLUMNS: &str = "m.org_id, m.user_id, u.username, m.role, m.added_at";

#[derive(sqlx::FromRow)]
pub(crate) struct OrgRow {
    id: String,
    slug: String,
    name: String,
    created_at: i64,
    max_sandboxes: Option<i64>,
    max_memory: Option<i64>,
    max_cpus: Option<f64>,
    max_ttl: Option<i64>,
}

/// An [`OrgRow`] with the caller's role in it.
#[derive(sqlx::FromRow)]
pub(crate) struct MembershipRow {
    #[sqlx(flatten)]
    org: OrgRow,
    role: String,
}

#[derive(sqlx::FromRow)]
pub(crate) struct MemberRow {
    org_id: String,
    user_id: String,
    username: String,
    role: String,
    added_at: i64,
}

fn role(s: &str, whose: &str) -> Result<OrgRole> {
    s.parse()
        .map_err(|_| Error::Corrupt(format!("{whose} has the organisation role {s:?}")))
}

/// A cap as stored: `u64` beyond `i64::MAX` is stored as `i64::MAX`.
pub(crate) fn cap_to_db(v: Option<u64>) -> Option<i64> {
    v.map(|v| i64::try_from(v).unwrap_or(i64::MAX))
}

impl TryFrom<OrgRow> for Org {
    type Error = Error;
    fn try_from(r: OrgRow) -> Result<Org> {
        let cap = |v: Option<i64>| {
            v.map(|v| {
                u64::try_from(v).map_err(|_| {
                    Error::Corrupt(format!("organisation {} has a negative cap", r.id))
                })
            })
            .transpose()
        };
        Ok(Org {
            limits: OrgLimits {
                max_sandboxes: cap(r.max_sandboxes)?,
                max_memory: cap(r.max_memory)?,
                max_cpus: r.max_cpus,
                max_ttl_secs: cap(r.max_ttl)?,
            },
            id: r.id,
            slug: r.slug,
            name: r.name,
            created_at_ms: r.created_at,
        })
    }
}

impl TryFrom<MembershipRow> for Membership {
    type Error = Error;
    fn try_from(r: MembershipRow) -> Result<Membership> {
        let role = role(&r.role, &format!("a member of {}", r.org.id))?;
        Ok(Membership {
            org: Org::try_from(r.org)?,
            role,
        })
    }
}

impl TryFrom<MemberRow> for OrgMember {
    type Error = Error;
    fn try_from(r: MemberRow) -> Result<OrgMember> {
        Ok(OrgMember {
            role: role(&r.role, &format!("member {} of {}", r.user_id, r.org_id))?,
            org_id: r.org_id,
            user_id: r.user_id,
            username: r.username,
            added_at_ms: r.added_at,
        })
    }
}

/// A unique violation on `orgs` as `Conflict` naming the slug; a foreign key violation
/// on `org_members` as `NotFound`.
pub(crate) fn org_write_error(e: sqlx::Error, slug: &str) -> Error {
    match &e {
        sqlx::Error::Database(db) if db.is_unique_violation() => {
            Error::Conflict(format!("The organisation slug {slug:?} is taken"))
        }
        sqlx::Error::Database(db) if db.is_foreign_key_violation() => Error::NotFound("user"),
        _ => Error::from(e),
    }
}
