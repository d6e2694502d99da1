//! Sandbox ids: `sb-` followed by 12 lowercase base32 characters (60 random bits).
//!
//! The id names every host resource of a sandbox (cgroup, netns, veth, overlay dir), so it
//! must be safe as a path component and as a 15-byte network interface name.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

const PREFIX: &str = "sb-";
const BODY_LEN: usize = 12;
const ALPHABET: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";

/// A validated sandbox id such as `sb-k3j5x2m9abcd`.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct SandboxId(String);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum IdError {
    #[error("Sandbox id {0:?} is not `sb-` followed by 12 lowercase base32 characters")]
    Malformed(String),
}

/// `prefix-` and `len` random lowercase base32 characters (5 random bits each): the one
/// way every kind of id in Sandlab is made (`sb-…` sandboxes, `ls-…` lab sessions,
/// `usr-…` users, `tok-…` tokens).
pub fn random_id(prefix: &str, len: usize) -> String {
    let mut id = String::with_capacity(prefix.len() + 1 + len);
    id.push_str(prefix);
    id.push('-');
    id.extend((0..len).map(|_| ALPHABET[(rand::random::<u8>() & 31) as usize] as char));
    id
}

impl SandboxId {
    /// A fresh random id.
    pub fn generate() -> Self {
        SandboxId(random_id(PREFIX.trim_end_matches('-'), BODY_LEN))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// True when `s` has the exact shape of an id; used to recognise host resources that
    /// belong to Sandlab during reconciliation.
    pub fn is_valid(s: &str) -> bool {
        s.len() == PREFIX.len() + BODY_LEN
            && s.starts_with(PREFIX)
            && s[PREFIX.len()..].bytes().all(|b| ALPHABET.contains(&b))
    }
}

impl FromStr for SandboxId {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, IdError> {
        if Self::is_valid(s) {
            Ok(SandboxId(s.to_owned()))
        } else {
            Err(IdError::Malformed(s.chars().take(64).collect()))
        }
    }
}

impl TryFrom<String> for SandboxId {
    type Error = IdError;
    fn try_from(s: String) -> Result<Self, IdError> {
        s.parse()
    }
}

impl From<SandboxId> for String {
    fn from(id: SandboxId) -> String {
        id.0
    }
}

impl fmt::Display for SandboxId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(&self.0)
    }
}

impl fmt::Debug for SandboxId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ids_are_valid_and_distinct() {
        let a = SandboxId::generate();
        let b = SandboxId::generate();
        assert!(SandboxId::is_valid(a.as_str()), "{a}");
        assert_eq!(a.as_str().len(), 15, "fits an interface name");
        assert_ne!(a, b);
    }

    #[test]
    fn rejects_wrong_shapes() {
        for bad in [
            "",
            "sb-",
            "sb-ABCDEFGHIJKL",
            "sb-abcdefghijk",
            "sb-abcdefghijklm",
            "xx-abcdefghijkl",
            "sb-abcdefghij1l",
            "sb-../../etc/pa",
        ] {
            assert!(bad.parse::<SandboxId>().is_err(), "{bad:?} accepted");
        }
        assert!("sb-abcdefgh2345".parse::<SandboxId>().is_ok());
    }

    #[test]
    fn serde_validates() {
        let err = serde_json::from_str::<SandboxId>("\"sb-nope\"");
        assert!(err.is_err());
        let ok: SandboxId = serde_json::from_str("\"sb-abcdefgh2345\"").unwrap();
        assert_eq!(serde_json::to_string(&ok).unwrap(), "\"sb-abcdefgh2345\"");
    }
}
