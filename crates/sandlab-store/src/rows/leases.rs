//! Rows of `leases`.

use std::time::Duration;

use sandlab_core::Lease;

use crate::error::{Error, Result};
use crate::model::MAX_LEASE_FIELD_BYTES;

#[derive(sqlx::FromRow)]
pub(crate) struct LeaseRow {
    name: String,
    holder: String,
    expires_at: i64,
}

impl From<LeaseRow> for Lease {
    fn from(r: LeaseRow) -> Lease {
        Lease {
            name: r.name,
            holder: r.holder,
            // Negative only on a clock set before 1970; such a lease is long expired.
            expires_at_ms: u64::try_from(r.expires_at).unwrap_or(0),
        }
    }
}

pub(crate) fn validate(name: &str, holder: &str) -> Result<()> {
    let ok = |s: &str| !s.is_empty() && s.len() <= MAX_LEASE_FIELD_BYTES;
    if ok(name) && ok(holder) {
        Ok(())
    } else {
        Err(Error::Invalid(format!(
            "A lease name and holder are 1 to {MAX_LEASE_FIELD_BYTES} bytes"
        )))
    }
}

/// `ttl` in whole milliseconds, rounded up (a non-zero ttl holds for at least a moment)
/// and saturated at `i64::MAX`.
pub(crate) fn ttl_ms(ttl: Duration) -> i64 {
    i64::try_from(ttl.as_nanos().div_ceil(1_000_000)).unwrap_or(i64::MAX)
}
