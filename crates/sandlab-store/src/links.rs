//! One-time links: sign-up invitations and password resets. Each carries a secret of 256
//! random bits, returned once when the link is made; the store keeps only its SHA-256
//! (as for API tokens, see [`crate::secret`]).
//!
//! - An [`Invite`] lets up to `uses` people sign up, with its role, until it expires.
//!   [`crate::Store::redeem_invite`] spends one use and creates the user in one
//!   transaction, so a one-use invitation makes exactly one account however many sign-ups
//!   race for it; a sign-up that fails (a taken username) spends nothing.
//! - A [`PasswordReset`] sets one user's password once, within
//!   [`PASSWORD_RESET_TTL`]. A user has at most one: a newer reset voids the older.

use std::fmt;
use std::time::Duration;

use serde::Serialize;

use crate::error::{Error, Result};
use crate::model::Role;

/// Most sign-ups one invitation allows.
pub const MAX_INVITE_USES: u32 = 1000;
/// Longest an invitation stays valid.
pub const MAX_INVITE_TTL: Duration = Duration::from_secs(90 * 24 * 3600);
/// How long an invitation stays valid unless told otherwise.
pub const DEFAULT_INVITE_TTL: Duration = Duration::from_secs(7 * 24 * 3600);
/// How long a password reset link stays valid.
pub const PASSWORD_RESET_TTL: Duration = Duration::from_secs(24 * 3600);

/// Every invitation secret starts with this.
pub const INVITE_PREFIX: &str = "inv_";
/// Every password reset secret starts with this.
pub const RESET_PREFIX: &str = "rst_";

/// An invitation to sign up. Its secret is returned once by
/// [`crate::Store::create_invite`] and never stored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Invite {
    /// `inv-` + 16 base32 characters; safe to show and log.
    pub id: String,
    /// The role a user who signs up with it gets.
    pub role: Role,
    /// Sign-ups it allows, 1 to [`MAX_INVITE_USES`].
    pub uses: u32,
    /// Sign-ups it has had.
    pub used: u32,
    /// The admin who made it; `None` when made by the CLI or the admin is gone.
    pub created_by: Option<String>,
    pub created_at_ms: i64,
    pub expires_at_ms: i64,
}

/// What [`crate::Store::create_invite`] needs.
#[derive(Clone, Debug)]
pub struct NewInvite {
    pub role: Role,
    /// More than zero and at most [`MAX_INVITE_TTL`].
    pub ttl: Duration,
    /// 1 to [`MAX_INVITE_USES`].
    pub uses: u32,
    /// The admin making it (`None` for the CLI).
    pub created_by: Option<String>,
}

/// A user's pending password reset. Its secret is returned once by
/// [`crate::Store::create_password_reset`] and never stored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PasswordReset {
    pub user_id: String,
    /// The admin who made it; `None` when made by the CLI or the admin is gone.
    pub created_by: Option<String>,
    pub created_at_ms: i64,
    pub expires_at_ms: i64,
}

/// Why a link's secret was refused. Said to the person holding it, so a link that is
/// merely out of date is told apart from one that never worked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LinkRefusal {
    /// No such link: a mistyped secret, a deleted invitation, or a reset voided by a newer
    /// one.
    Unknown,
    Expired,
    /// An invitation used as often as it allows, or a reset already used.
    UsedUp,
    /// The reset's user is disabled.
    Disabled,
}

impl fmt::Display for LinkRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LinkRefusal::Unknown => "unknown",
            LinkRefusal::Expired => "expired",
            LinkRefusal::UsedUp => "used up",
            LinkRefusal::Disabled => "for a disabled user",
        })
    }
}

/// An invitation's lifetime as written by people: a [`sandlab_core::parse_duration`]
/// duration (`30m`, `12h`) or whole days (`7d`), more than zero and at most 90 days.
pub fn parse_invite_ttl(s: &str) -> Result<Duration> {
    let t = s.trim();
    let ttl = match t.strip_suffix('d') {
        Some(days)
            if !days.is_empty() && days.len() <= 6 && days.bytes().all(|b| b.is_ascii_digit()) =>
        {
            days.parse::<u64>()
                .ok()
                .and_then(|d| d.checked_mul(24 * 3600))
                .map(Duration::from_secs)
        }
        _ => sandlab_core::parse_duration(t).ok(),
    };
    let ttl = ttl.ok_or_else(|| {
        Error::Invalid(format!(
            "The expiry {:?} is not a duration such as 7d, 12h or 30m",
            t.chars().take(32).collect::<String>()
        ))
    })?;
    check_invite_ttl(ttl)?;
    Ok(ttl)
}

pub(crate) fn check_invite_ttl(ttl: Duration) -> Result<()> {
    if ttl.is_zero() || ttl > MAX_INVITE_TTL {
        return Err(Error::Invalid(
            "An invitation expires after more than zero and at most 90 days".into(),
        ));
    }
    Ok(())
}

pub(crate) fn check_invite_uses(uses: u32) -> Result<()> {
    if !(1..=MAX_INVITE_USES).contains(&uses) {
        return Err(Error::Invalid(format!(
            "An invitation allows 1 to {MAX_INVITE_USES} sign-ups"
        )));
    }
    Ok(())
}

/// A duration in milliseconds, saturated at `i64::MAX`.
pub(crate) fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invite_ttls_take_days_and_the_usual_units() {
        let day = Duration::from_secs(24 * 3600);
        assert_eq!(parse_invite_ttl("7d").unwrap(), 7 * day);
        assert_eq!(parse_invite_ttl(" 90d ").unwrap(), 90 * day);
        assert_eq!(parse_invite_ttl("12h").unwrap(), day / 2);
        assert_eq!(parse_invite_ttl("30m").unwrap(), Duration::from_secs(1800));
        for bad in [
            "", "d", "0d", "0s", "91d", "2161h", "-1d", "1.5d", "7 d", "7w", "9999999d",
        ] {
            let e = parse_invite_ttl(bad).unwrap_err().to_string();
            assert!(
                e.starts_with("The expiry") || e.starts_with("An invitation"),
                "{bad:?}: {e}"
            );
        }
    }

    #[test]
    fn uses_are_bounded() {
        assert!(check_invite_uses(1).is_ok() && check_invite_uses(1000).is_ok());
        assert!(check_invite_uses(0).is_err() && check_invite_uses(1001).is_err());
    }
}
