//! Organisations as the sandbox service and the catalogue see them: which labs a caller
//! may see, and an organisation's caps applied to a sandbox's limits and lifetime.
//!
//! The caps work with the role limits (`admission.rs`), never instead of them: a value
//! asked for over the organisation's cap is refused naming the organisation
//! ([`OverOrgLimit`]); a default is cut to the lesser of the two. How many sandboxes the
//! organisation has at once is counted in the store ([`sandlab_store::Store::take_org_place`],
//! taken by `Sandboxes::create`), so every replica on one database keeps to it.

use std::time::Duration;

use sandlab_core::{ByteSize, Limits};
use sandlab_lab::Lab;
use sandlab_store::{Org, Role, Store};

use crate::admission::{Asked, RoleLimit};
use crate::sandboxes::SandboxError;

/// A value asked for over an organisation's cap.
#[derive(Debug, thiserror::Error, PartialEq)]
#[error("The {what} asked for ({asked}) is over the {max} organisation {org} allows per sandbox.")]
pub struct OverOrgLimit {
    pub what: &'static str,
    pub asked: String,
    pub max: String,
    pub org: String,
}

/// [`OverOrgLimit`] for the first value of `asked` over a cap of `org`.
pub fn check_asked(asked: &Asked, org: &Org) -> Result<(), OverOrgLimit> {
    let over = |what, asked: String, max: String| {
        Err(OverOrgLimit {
            what,
            asked,
            max,
            org: org.slug.clone(),
        })
    };
    let caps = &org.limits;
    if let (Some(a), Some(m)) = (asked.memory, caps.max_memory) {
        if a.0 > m {
            return over("memory", a.to_string(), ByteSize(m).to_string());
        }
    }
    if let (Some(a), Some(m)) = (asked.cpus, caps.max_cpus) {
        if a > m {
            return over("CPU count", a.to_string(), m.to_string());
        }
    }
    if let (Some(a), Some(m)) = (asked.ttl, caps.max_ttl_secs) {
        if a.as_secs() > m || (a.as_secs() == m && a.subsec_nanos() > 0) {
            return over("ttl", format!("{}s", a.as_secs()), format!("{m}s"));
        }
    }
    Ok(())
}

/// `limit` (a role's maxima) lowered to `org`'s caps, so defaults are cut to both.
pub fn cap_role_limit(limit: &RoleLimit, org: Option<&Org>) -> RoleLimit {
    let mut limit = limit.clone();
    if let Some(org) = org {
        if let Some(m) = org.limits.max_memory {
            limit.memory = limit.memory.min(ByteSize(m));
        }
        if let Some(c) = org.limits.max_cpus {
            limit.cpus = limit.cpus.min(c);
        }
        limit.ttl = cap_ttl(limit.ttl, Some(org));
    }
    limit
}

/// `limits` (a lab node's, written by its author) cut to `org`'s caps.
pub fn cut(mut limits: Limits, org: Option<&Org>) -> Limits {
    if let Some(org) = org {
        if let Some(m) = org.limits.max_memory {
            limits.memory = limits.memory.min(ByteSize(m));
        }
        if let Some(c) = org.limits.max_cpus {
            limits.cpus = limits.cpus.min(c);
        }
    }
    limits
}

/// `ttl` cut to `org`'s TTL cap.
pub fn cap_ttl(ttl: Duration, org: Option<&Org>) -> Duration {
    match org.and_then(|o| o.limits.max_ttl_secs) {
        Some(m) => ttl.min(Duration::from_secs(m)),
        None => ttl,
    }
}

/// [`SandboxError::OrgFull`] unless `org` has room for `n` more sandboxes now (a lab's
/// whole playground is checked before its first node is made). Each node still takes its
/// own place, so a race is settled there.
pub async fn check_room(store: &dyn Store, org: &Org, n: u64) -> Result<(), SandboxError> {
    let Some(cap) = org.limits.max_sandboxes else {
        return Ok(());
    };
    let live = store.count_org_sandboxes(&org.id).await?;
    if live.saturating_add(n) > cap {
        return Err(SandboxError::OrgFull {
            org: org.slug.clone(),
            live,
            cap,
        });
    }
    Ok(())
}

/// Whether a caller with `role`, member of the organisations with slugs `orgs`, may see
/// and start `lab`: a draft is for authors and admins; an organisation's lab is for its
/// members and site admins (an `org:` no organisation has is for admins only).
pub fn lab_visible(lab: &Lab, role: Role, orgs: &[String]) -> bool {
    let published = !lab.draft || role != Role::Learner;
    let in_org = match &lab.org {
        None => true,
        Some(slug) => role == Role::Admin || orgs.iter().any(|o| o == slug),
    };
    published && in_org
}
