//! Splits `index.md` into its YAML front matter and its Markdown body.
//!
//! The file must start with a line `---`; the front matter runs up to the next line that is
//! exactly `---` (trailing spaces and `\r` allowed), and the body is everything after it.

use crate::problem::Pos;

/// The two halves of `index.md`, with the file line each starts on.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Split<'a> {
    pub yaml: &'a str,
    /// File line of the first line of `yaml`.
    pub yaml_line: usize,
    pub body: &'a str,
    /// File line of the first line of `body`.
    pub body_line: usize,
}

fn is_fence(line: &str) -> bool {
    line.trim_end_matches(['\n', '\r', ' ', '\t']) == "---"
}

/// Finds the front matter, or says (with a line) why there is none.
pub(crate) fn split(text: &str) -> Result<Split<'_>, (Pos, String)> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut lines = text.split_inclusive('\n');
    match lines.next() {
        Some(first) if is_fence(first) => {}
        _ => {
            return Err((
                Pos::line(1),
                "index.md must start with a \"---\" line that opens the YAML front matter".into(),
            ))
        }
    }
    let yaml_start = text.split_inclusive('\n').next().map_or(0, str::len);
    let mut offset = yaml_start;
    for (i, line) in lines.enumerate() {
        if is_fence(line) {
            // Line 1 is the opening fence, so the i-th line after it is file line i + 2.
            let fence_line = i + 2;
            return Ok(Split {
                yaml: &text[yaml_start..offset],
                yaml_line: 2,
                body: &text[offset + line.len()..],
                body_line: fence_line + 1,
            });
        }
        offset += line.len();
    }
    Err((
        Pos::line(1),
        "the front matter opened on line 1 is never closed by a \"---\" line".into(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_front_matter_and_body() {
        let s = split("---\ntitle: x\n---\n# Hi\n").unwrap();
        assert_eq!(
            s,
            Split {
                yaml: "title: x\n",
                yaml_line: 2,
                body: "# Hi\n",
                body_line: 4
            }
        );
    }

    #[test]
    fn crlf_bom_and_empty_parts() {
        let s = split("\u{feff}---\r\n---\r\n").unwrap();
        assert_eq!((s.yaml, s.body, s.body_line), ("", "", 3));
        let s = split("---  \na: 1\nb: 2\n---").unwrap();
        assert_eq!((s.yaml, s.body, s.body_line), ("a: 1\nb: 2\n", "", 5));
    }

    #[test]
    fn missing_or_unterminated() {
        assert_eq!(split("").unwrap_err().0, Pos::line(1));
        assert!(split("# Title\n---\n")
            .unwrap_err()
            .1
            .contains("must start"));
        assert!(split("---\ntitle: x\n")
            .unwrap_err()
            .1
            .contains("never closed"));
        // "----" and "--- x" do not close it.
        assert!(split("---\n----\n--- x\n").is_err());
    }
}
