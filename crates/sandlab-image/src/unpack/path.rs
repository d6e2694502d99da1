//! Entry names: normalised (never leaving the tree), split, and shown in messages.

use super::MAX_PATH_LEN;

pub(super) enum BadPath {
    DotDot,
    Invalid,
}

/// `a//./b/` -> `a/b`, `/abs` -> `abs`; any `..` component is refused.
pub(super) fn normalize(raw: &[u8]) -> Result<Vec<u8>, BadPath> {
    if raw.contains(&0) {
        return Err(BadPath::Invalid);
    }
    let mut out = Vec::with_capacity(raw.len());
    for comp in raw.split(|b| *b == b'/') {
        match comp {
            b"" | b"." => {}
            b".." => return Err(BadPath::DotDot),
            c => {
                if !out.is_empty() {
                    out.push(b'/');
                }
                out.extend_from_slice(c);
            }
        }
    }
    if out.len() > MAX_PATH_LEN {
        return Err(BadPath::Invalid);
    }
    Ok(out)
}

/// `a/b/c` -> (`a/b`, `c`); `` -> (``, ``).
pub(super) fn split_last(path: &[u8]) -> (&[u8], &[u8]) {
    match path.iter().rposition(|b| *b == b'/') {
        Some(i) => (&path[..i], &path[i + 1..]),
        None => (b"", path),
    }
}

pub(super) fn join(parent: &[u8], name: &[u8]) -> Vec<u8> {
    if parent.is_empty() {
        return name.to_vec();
    }
    let mut out = parent.to_vec();
    out.push(b'/');
    out.extend_from_slice(name);
    out
}

/// An entry name for messages: lossy UTF-8, at most 200 characters.
pub(super) fn show(raw: &[u8]) -> String {
    let s = String::from_utf8_lossy(raw);
    if s.chars().count() > 200 {
        s.chars().take(200).chain("…".chars()).collect()
    } else {
        s.into_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes_paths() {
        assert_eq!(normalize(b"/abs/./x//y/").ok(), Some(b"abs/x/y".to_vec()));
        assert_eq!(normalize(b"./").ok(), Some(Vec::new()));
        assert!(matches!(normalize(b"a/../b"), Err(BadPath::DotDot)));
        assert!(matches!(normalize(b".."), Err(BadPath::DotDot)));
        assert!(matches!(normalize(b"a\0b"), Err(BadPath::Invalid)));
        assert!(matches!(
            normalize(&vec![b'a'; MAX_PATH_LEN + 1]),
            Err(BadPath::Invalid)
        ));
        assert_eq!(normalize(b"...").ok(), Some(b"...".to_vec()));
        assert_eq!(split_last(b"a/b/c"), (&b"a/b"[..], &b"c"[..]));
        assert_eq!(split_last(b"c"), (&b""[..], &b"c"[..]));
    }
}
