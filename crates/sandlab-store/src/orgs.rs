//! Organisations: a slug and a name, members with a role each, and caps on what their
//! members' sandboxes may have.
//!
//! - A user may belong to several organisations, with one [`OrgRole`] in each.
//! - [`OrgLimits`] caps each sandbox that counts against the organisation (memory, CPUs,
//!   time to live: the server refuses a request over a cap and cuts its defaults to it)
//!   and how many of them may hold resources at once (`max_sandboxes`).
//! - The count is the store's, so it holds across every server on one database: a
//!   sandbox takes a *place* ([`crate::Store::take_org_place`]) under its id before it is
//!   created, in one transaction that locks the organisation's row (PostgreSQL) or holds
//!   SQLite's write lock, and counts the organisation's places whose sandbox is live
//!   (`creating`, `running`, `stopping`) or not recorded yet (a create in flight, for
//!   [`PLACE_PENDING_MS`]). A place goes with its sandbox's record (a trigger), or when the
//!   create fails ([`crate::Store::release_org_place`]).

use std::fmt;
use std::str::FromStr;

use serde::Serialize;

use crate::error::{Error, Result};

/// How long a place whose sandbox has no record yet counts: a create in flight. A create
/// writes its record within moments of taking its place; one that died before doing so
/// frees the place after this.
pub const PLACE_PENDING_MS: i64 = 10 * 60 * 1000;
/// The longest organisation name.
pub const MAX_ORG_NAME_CHARS: usize = 100;
/// The longest slug.
pub const MAX_ORG_SLUG_LEN: usize = 40;

/// What a member may do in their organisation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum OrgRole {
    /// Uses the organisation's labs and limits.
    Member,
    /// Also lists the members and sees their progress.
    Instructor,
    /// Also changes the name, the limits and the members.
    Owner,
}

impl OrgRole {
    pub fn as_str(self) -> &'static str {
        match self {
            OrgRole::Member => "member",
            OrgRole::Instructor => "instructor",
            OrgRole::Owner => "owner",
        }
    }
}

impl FromStr for OrgRole {
    type Err = Error;
    fn from_str(s: &str) -> Result<OrgRole> {
        match s {
            "member" => Ok(OrgRole::Member),
            "instructor" => Ok(OrgRole::Instructor),
            "owner" => Ok(OrgRole::Owner),
            _ => Err(Error::Invalid(
                "An organisation role is one of member, instructor and owner".into(),
            )),
        }
    }
}

impl fmt::Display for OrgRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An organisation's caps; `None` is no cap of its own (the server's role limits still
/// apply).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct OrgLimits {
    /// Most sandboxes its members may have at once, all together.
    pub max_sandboxes: Option<u64>,
    /// Most memory of one sandbox, in bytes.
    pub max_memory: Option<u64>,
    /// Most CPUs of one sandbox.
    pub max_cpus: Option<f64>,
    /// Longest time to live of one sandbox, in seconds.
    pub max_ttl_secs: Option<u64>,
}

impl OrgLimits {
    /// `Invalid` for a zero or negative memory, CPU or TTL cap, or a non-finite CPU cap.
    pub fn validate(&self) -> Result<()> {
        let bad = |what: &str| {
            Err(Error::Invalid(format!(
                "The organisation's {what} must be above zero"
            )))
        };
        if self.max_memory == Some(0) {
            return bad("memory cap");
        }
        if self.max_cpus.is_some_and(|c| !c.is_finite() || c <= 0.0) {
            return bad("CPU cap");
        }
        if self.max_ttl_secs == Some(0) {
            return bad("TTL cap");
        }
        Ok(())
    }
}

/// An organisation.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Org {
    /// `org-` + 16 random characters.
    pub id: String,
    pub slug: String,
    pub name: String,
    pub created_at_ms: i64,
    pub limits: OrgLimits,
}

/// What [`crate::Store::create_org`] needs.
#[derive(Clone, Debug, Default)]
pub struct NewOrg {
    pub slug: String,
    /// Default: the slug.
    pub name: Option<String>,
    pub limits: OrgLimits,
}

/// A change to an organisation: each `Some` field is set (`Some(None)` removes a cap).
#[derive(Clone, Debug, Default)]
pub struct OrgUpdate {
    pub name: Option<String>,
    pub max_sandboxes: Option<Option<u64>>,
    pub max_memory: Option<Option<u64>>,
    pub max_cpus: Option<Option<f64>>,
    pub max_ttl_secs: Option<Option<u64>>,
}

impl OrgUpdate {
    /// `limits` with this update applied.
    pub fn apply(&self, mut limits: OrgLimits) -> OrgLimits {
        if let Some(v) = self.max_sandboxes {
            limits.max_sandboxes = v;
        }
        if let Some(v) = self.max_memory {
            limits.max_memory = v;
        }
        if let Some(v) = self.max_cpus {
            limits.max_cpus = v;
        }
        if let Some(v) = self.max_ttl_secs {
            limits.max_ttl_secs = v;
        }
        limits
    }
}

/// One member of an organisation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct OrgMember {
    pub org_id: String,
    pub user_id: String,
    pub username: String,
    pub role: OrgRole,
    pub added_at_ms: i64,
}

/// An organisation a user belongs to, with their role in it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Membership {
    pub org: Org,
    pub role: OrgRole,
}

/// Why [`crate::Store::take_org_place`] refused: the organisation already has `live` of
/// its `cap` sandboxes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OrgFull {
    pub live: u64,
    pub cap: u64,
}

/// Whether `slug` is an organisation's slug: 1 to [`MAX_ORG_SLUG_LEN`] of `a-z`, `0-9` and
/// `-`, starting with a letter or digit, and not starting with `org-` (the ids' prefix, so
/// an id and a slug never look alike). The same rule as a lab's `org:`.
pub fn validate_org_slug(slug: &str) -> Result<()> {
    let ok = (1..=MAX_ORG_SLUG_LEN).contains(&slug.len())
        && slug
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !slug.starts_with('-')
        && !slug.starts_with("org-");
    if ok {
        Ok(())
    } else {
        Err(Error::Invalid(format!(
            "An organisation slug is 1 to {MAX_ORG_SLUG_LEN} of a-z, 0-9 and -, starting with a letter or digit and not with \"org-\""
        )))
    }
}

/// `Invalid` for an empty, multi-line or over-long name; the trimmed name.
pub(crate) fn check_org_name(name: &str) -> Result<String> {
    let name = name.trim();
    if name.is_empty() || name.contains(['\n', '\r']) || name.chars().count() > MAX_ORG_NAME_CHARS {
        return Err(Error::Invalid(format!(
            "An organisation name is one line of 1 to {MAX_ORG_NAME_CHARS} characters"
        )));
    }
    Ok(name.to_owned())
}

/// Whether `key` is an organisation id rather than a slug.
pub(crate) fn is_org_id(key: &str) -> bool {
    key.starts_with("org-")
}
