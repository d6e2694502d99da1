//! `server.signup` (`SANDLAB_SIGNUP`): who may make an account without an admin.

use std::fmt;
use std::str::FromStr;

use serde::Serialize;
use utoipa::ToSchema;

/// Whether `POST /api/v1/auth/signup` is open to anyone, only to holders of an invitation
/// link, or closed (the default: only admins make accounts).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum SignupMode {
    #[default]
    Closed,
    Invite,
    Open,
}

impl SignupMode {
    pub fn as_str(self) -> &'static str {
        match self {
            SignupMode::Closed => "closed",
            SignupMode::Invite => "invite",
            SignupMode::Open => "open",
        }
    }
}

impl FromStr for SignupMode {
    type Err = String;

    fn from_str(s: &str) -> Result<SignupMode, String> {
        match s.trim() {
            "closed" => Ok(SignupMode::Closed),
            "invite" => Ok(SignupMode::Invite),
            "open" => Ok(SignupMode::Open),
            other => Err(format!(
                "it must be closed, invite or open, not {:?}",
                other.chars().take(32).collect::<String>()
            )),
        }
    }
}

impl fmt::Display for SignupMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::super::{ServerConfig, ServerFlags, ServerSection};
    use super::*;

    fn resolve(file: Option<&str>, var: Option<&str>) -> Result<SignupMode, String> {
        let s = ServerSection {
            signup: file.map(str::to_owned),
            ..ServerSection::default()
        };
        let var = var.map(str::to_owned);
        let env = move |k: &str| (k == "SANDLAB_SIGNUP").then(|| var.clone()).flatten();
        ServerConfig::resolve(&s, &[], &ServerFlags::default(), &env)
            .map(|c| c.signup)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn closed_by_default_the_variable_over_the_file() {
        assert_eq!(resolve(None, None), Ok(SignupMode::Closed));
        assert_eq!(resolve(Some("open"), None), Ok(SignupMode::Open));
        assert_eq!(
            resolve(Some("open"), Some("invite")),
            Ok(SignupMode::Invite)
        );
        assert_eq!(resolve(None, Some("closed")), Ok(SignupMode::Closed));
    }

    #[test]
    fn a_bad_value_names_the_key() {
        let e = resolve(Some("yes"), None).unwrap_err();
        assert_eq!(
            e,
            "server.signup (or SANDLAB_SIGNUP) is invalid: it must be closed, invite or open, not \"yes\""
        );
        assert!(resolve(None, Some("Open")).is_err());
    }
}
