//! Cursor pagination: a list answers a [`Page`] whose `next` cursor, passed back in a
//! [`PageRequest`], continues after the last item. Cursors are opaque to callers
//! (base64url of a small key) and name the list they belong to, so a cursor from one list
//! is refused by another.

use data_encoding::BASE64URL_NOPAD;
use serde::Serialize;

use crate::error::{Error, Result};

/// Which page of a list to answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PageRequest {
    /// The `next` of the previous page; `None` for the first.
    pub cursor: Option<String>,
    /// At most this many items; clamped to `1..=MAX_LIMIT`.
    pub limit: u32,
}

impl PageRequest {
    pub const DEFAULT_LIMIT: u32 = 50;
    pub const MAX_LIMIT: u32 = 500;

    pub fn first(limit: u32) -> PageRequest {
        PageRequest {
            cursor: None,
            limit,
        }
    }

    pub fn after(cursor: impl Into<String>, limit: u32) -> PageRequest {
        PageRequest {
            cursor: Some(cursor.into()),
            limit,
        }
    }

    pub(crate) fn clamped_limit(&self) -> u32 {
        self.limit.clamp(1, Self::MAX_LIMIT)
    }
}

impl Default for PageRequest {
    fn default() -> Self {
        PageRequest::first(Self::DEFAULT_LIMIT)
    }
}

/// One page of a list: `{"items": [...], "next": "<cursor>" | null}` (SPEC section 6).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// Present when more items follow.
    pub next: Option<String>,
}

impl<T> Page<T> {
    /// A page from `rows` fetched with `limit + 1`: the extra row, if any, says that more
    /// follow; `key` makes the cursor from the last item kept.
    pub(crate) fn from_rows(mut rows: Vec<T>, limit: u32, key: impl Fn(&T) -> String) -> Self {
        let limit = limit as usize;
        let next = if rows.len() > limit {
            rows.truncate(limit);
            rows.last().map(key)
        } else {
            None
        };
        Page { items: rows, next }
    }
}

/// Longest cursor accepted, in bytes.
const MAX_CURSOR_LEN: usize = 512;

fn malformed() -> Error {
    Error::Invalid("The page cursor is malformed".into())
}

/// A cursor after the item with sort key `(at, id)` in list `kind`.
pub(crate) fn encode_keyset(kind: &str, at: i64, id: &str) -> String {
    BASE64URL_NOPAD.encode(format!("{kind}:{at}:{id}").as_bytes())
}

/// The `(at, id)` in a cursor of list `kind`.
pub(crate) fn decode_keyset(kind: &str, cursor: &str) -> Result<(i64, String)> {
    let text = decode(cursor)?;
    let mut parts = text.splitn(3, ':');
    match (parts.next(), parts.next(), parts.next()) {
        (Some(k), Some(at), Some(id)) if k == kind => {
            let at = at.parse().map_err(|_| malformed())?;
            Ok((at, id.to_owned()))
        }
        _ => Err(malformed()),
    }
}

/// A cursor after sequence number `n` in list `kind`.
pub(crate) fn encode_seq(kind: &str, n: i64) -> String {
    BASE64URL_NOPAD.encode(format!("{kind}:{n}").as_bytes())
}

pub(crate) fn decode_seq(kind: &str, cursor: &str) -> Result<i64> {
    let text = decode(cursor)?;
    match text.split_once(':') {
        Some((k, n)) if k == kind => n.parse().map_err(|_| malformed()),
        _ => Err(malformed()),
    }
}

fn decode(cursor: &str) -> Result<String> {
    if cursor.len() > MAX_CURSOR_LEN {
        return Err(malformed());
    }
    let bytes = BASE64URL_NOPAD
        .decode(cursor.as_bytes())
        .map_err(|_| malformed())?;
    String::from_utf8(bytes).map_err(|_| malformed())
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn cursors_round_trip_and_name_their_list() {
        let c = encode_keyset("users", 42, "usr-abc:def");
        assert_eq!(
            decode_keyset("users", &c).unwrap(),
            (42, "usr-abc:def".into())
        );
        assert!(decode_keyset("sandboxes", &c).is_err());
        let s = encode_seq("audit", -7);
        assert_eq!(decode_seq("audit", &s).unwrap(), -7);
        assert!(decode_seq("users", &s).is_err());
        for bad in ["", "!!", "dXNlcnM", &"A".repeat(600)] {
            assert!(decode_keyset("users", bad).is_err(), "{bad:?}");
            assert!(decode_seq("audit", bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn limits_are_clamped() {
        assert_eq!(PageRequest::first(0).clamped_limit(), 1);
        assert_eq!(PageRequest::first(10_000).clamped_limit(), 500);
        assert_eq!(PageRequest::default().clamped_limit(), 50);
    }

    #[test]
    fn from_rows_sets_next_only_when_more_follow() {
        let p = Page::from_rows(vec![1, 2, 3], 2, |n| n.to_string());
        assert_eq!(p.items, vec![1, 2]);
        assert_eq!(p.next.as_deref(), Some("2"));
        let p = Page::from_rows(vec![1, 2], 2, |n| n.to_string());
        assert_eq!(p.next, None);
    }

    proptest! {
        #[test]
        fn cursor_decoding_never_panics(s in any::<String>()) {
            let _ = decode_keyset("users", &s);
            let _ = decode_seq("audit", &s);
        }
    }
}
