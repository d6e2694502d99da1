//! Base64 for files an init task writes into a machine (see [`super::uploads`]).

/// `bytes` in base64 (RFC 4648, padded), in lines of 76 characters, each ended by a
/// newline (what `base64 -d` reads).
pub(crate) fn base64_lines(bytes: &[u8]) -> String {
    let encoded = data_encoding::BASE64.encode(bytes);
    let mut out = String::with_capacity(encoded.len() + encoded.len() / 76 + 1);
    for line in encoded.as_bytes().chunks(76) {
        // BASE64 output is ASCII.
        out.push_str(std::str::from_utf8(line).unwrap_or_default());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc_4648() {
        for (raw, encoded) in [
            ("", ""),
            ("f", "Zg==\n"),
            ("fo", "Zm8=\n"),
            ("foo", "Zm9v\n"),
            ("foob", "Zm9vYg==\n"),
            ("fooba", "Zm9vYmE=\n"),
            ("foobar", "Zm9vYmFy\n"),
        ] {
            assert_eq!(base64_lines(raw.as_bytes()), encoded, "{raw:?}");
        }
        let long = base64_lines(&[0u8; 100]);
        let lines: Vec<_> = long.lines().map(str::len).collect();
        assert_eq!(lines, [76, 60]);
    }
}
