//! Where things are in a line of Markdown, as CommonMark reads it closely enough for
//! the importer: fences, HTML blocks, code spans, link targets, reference definitions and
//! HTML attributes. Pure functions over text; [`super::links`] decides what to change.

use super::inline::{backticks, find_run};
use super::text::Flavor;

/// How an HTML block ends: at a line holding a marker (`</pre>`, `-->`), or before a
/// blank line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum HtmlEnd {
    Marker(&'static str),
    Blank,
}

impl HtmlEnd {
    /// `Some(self)` when the block goes on after `line`.
    pub(super) fn open_after(self, line: &str) -> Option<HtmlEnd> {
        match self {
            HtmlEnd::Marker(m) if line.to_ascii_lowercase().contains(m) => None,
            end => Some(end),
        }
    }
}

/// CommonMark's block-level tag names (an HTML block of type 6 starts with one).
#[rustfmt::skip]
const BLOCK_TAGS: [&str; 62] = [
    "address", "article", "aside", "base", "basefont", "blockquote", "body", "caption",
    "center", "col", "colgroup", "dd", "details", "dialog", "dir", "div", "dl", "dt",
    "fieldset", "figcaption", "figure", "footer", "form", "frame", "frameset", "h1", "h2",
    "h3", "h4", "h5", "h6", "head", "header", "hr", "html", "iframe", "legend", "li",
    "link", "main", "menu", "menuitem", "nav", "noframes", "ol", "optgroup", "option", "p",
    "param", "search", "section", "summary", "table", "tbody", "td", "tfoot", "th", "thead",
    "title", "tr", "track", "ul",
];

/// The HTML block `line` starts (CommonMark's types 1, 2 and 6), if any: Markdown is not
/// read inside one, so neither are fences.
pub(super) fn html_block(line: &str) -> Option<HtmlEnd> {
    let indent = line.len() - line.trim_start_matches(' ').len();
    if indent > 3 {
        return None;
    }
    let t = line[indent..].to_ascii_lowercase();
    if t.starts_with("<!--") {
        return Some(HtmlEnd::Marker("-->"));
    }
    let closing = t.starts_with("</");
    let rest = t.strip_prefix("</").or_else(|| t.strip_prefix('<'))?;
    let len = rest
        .find(|c: char| !c.is_ascii_alphanumeric())
        .unwrap_or(rest.len());
    let (name, after) = rest.split_at(len);
    let ends = after.is_empty() || after.starts_with([' ', '\t', '>']) || after.starts_with("/>");
    if !ends {
        return None;
    }
    let raw = [
        ("pre", "</pre>"),
        ("script", "</script>"),
        ("style", "</style>"),
        ("textarea", "</textarea>"),
    ];
    match raw.iter().find(|(n, _)| *n == name) {
        Some((_, end)) if !closing => Some(HtmlEnd::Marker(end)),
        _ => BLOCK_TAGS.contains(&name).then_some(HtmlEnd::Blank),
    }
}

/// The length of what starts `line` before a list item's content: indentation, then any
/// list markers (`-`, `*`, `+`, `1.`, `1)`), each with the spaces after it
/// (`"2. ```bash"` → 3, `"  - 1. x"` → 7); the indentation alone when there is no marker.
pub(super) fn item_prefix(line: &str) -> usize {
    let mut at = line.len() - line.trim_start_matches([' ', '\t']).len();
    loop {
        let rest = &line[at..];
        let digits = rest.len() - rest.trim_start_matches(|c: char| c.is_ascii_digit()).len();
        let marker = if rest.starts_with(['-', '*', '+']) {
            1
        } else if (1..=9).contains(&digits) && rest[digits..].starts_with(['.', ')']) {
            digits + 1
        } else {
            return at;
        };
        let after = &rest[marker..];
        let spaces = after.len() - after.trim_start_matches(' ').len();
        if !(1..=4).contains(&spaces) || after.len() == spaces {
            return at;
        }
        at += marker + spaces;
    }
}

/// Whether `line` closes a fence of `len` `ch`s (as `text::convert` reads it).
pub(super) fn closes(line: &str, ch: char, len: usize, flavor: Flavor) -> bool {
    let t = line.trim_start_matches([' ', '\t']);
    let rest = t.trim_start_matches(ch);
    let marker = flavor == Flavor::Killercoda
        && rest.trim().starts_with("{{")
        && rest.trim().ends_with("}}");
    t.len() - rest.len() >= len && (rest.trim().is_empty() || marker)
}

/// The byte ranges of the code spans of `line`, backticks included.
pub(super) fn code_spans(line: &str) -> Vec<(usize, usize)> {
    scan_code(line).0
}

/// Where the first run of backticks that `line` does not close starts.
pub(super) fn unclosed_code(line: &str) -> Option<usize> {
    scan_code(line).1
}

/// One pass over `line`'s backtick runs: the code spans they close, and where the first
/// run that nothing closes starts.
fn scan_code(line: &str) -> (Vec<(usize, usize)>, Option<usize>) {
    let bytes = line.as_bytes();
    let mut spans = Vec::new();
    let mut open = None;
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'`' {
            i += 1;
            continue;
        }
        let run = backticks(&bytes[i..]);
        match find_run(bytes, i + run, run) {
            Some(close) => {
                spans.push((i, close + run));
                i = close + run;
            }
            None => {
                open.get_or_insert(i);
                i += run;
            }
        }
    }
    (spans, open)
}

/// Whether `prefix` ends inside an HTML tag (`<img src="` ...).
pub(super) fn in_tag(prefix: &str) -> bool {
    match (prefix.rfind('<'), prefix.rfind('>')) {
        (Some(lt), gt) if gt.is_none_or(|gt| gt < lt) => prefix[lt + 1..]
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic()),
        _ => false,
    }
}

/// When `line` starts a link reference definition (`[label]: `, maybe quoted by `>`),
/// where its destination starts.
pub(super) fn definition_at(line: &str) -> Option<usize> {
    let mut start = 0;
    loop {
        let rest = &line[start..];
        let trimmed = rest.trim_start_matches([' ', '\t', '>']);
        let digits = trimmed.len()
            - trimmed
                .trim_start_matches(|c: char| c.is_ascii_digit())
                .len();
        let marker = if trimmed.starts_with(['-', '*', '+']) {
            1
        } else if digits > 0 && trimmed[digits..].starts_with(['.', ')']) {
            digits + 1
        } else {
            0
        };
        let after = &trimmed[marker..];
        let is_item = marker > 0 && after.starts_with([' ', '\t']);
        start += rest.len() - trimmed.len() + if is_item { marker } else { 0 };
        if !is_item {
            break;
        }
    }
    let rest = line[start..].strip_prefix('[')?;
    let close = rest.find("]:")?;
    if close == 0 || rest[..close].contains(['[', ']']) {
        return None;
    }
    let dest = start + 1 + close + 2;
    Some(dest + (line[dest..].len() - line[dest..].trim_start().len()))
}

/// The destinations in the line `text`: `(start, end, is_html)`.
pub(super) fn find_destinations(text: &str) -> Vec<(usize, usize, bool)> {
    let spans = code_spans(text);
    let in_code = |i: usize| spans.iter().any(|&(s, e)| s <= i && i < e);
    let mut found = Vec::new();
    let mut from = 0;
    while let Some(off) = text[from..].find("](") {
        let k = from + off + 2;
        if let Some((s, e)) = markdown_destination(text, k).filter(|_| !in_code(k - 2)) {
            found.push((s, e, false));
        }
        from = k;
    }
    if let Some(k) = definition_at(text).filter(|&k| !in_code(k)) {
        if let Some((s, e)) = markdown_destination(text, k) {
            let after = text[e..].trim_start_matches('>').trim();
            if after.is_empty() || after.starts_with(['"', '\'', '(']) {
                found.push((s, e, false));
            }
        }
    }
    let lower = text.to_ascii_lowercase();
    for attr in ["src=", "href="] {
        let mut from = 0;
        while let Some(off) = lower[from..].find(attr) {
            let at = from + off;
            from = at + attr.len();
            if in_code(at) {
                continue;
            }
            let before = &text[..at];
            let spaced = before.ends_with([' ', '\t', '\n']);
            if !spaced || !(in_tag(before) || before.trim().is_empty()) {
                continue;
            }
            if let Some(span) = attribute_value(text, from) {
                found.push((span.0, span.1, true));
            }
        }
    }
    found.sort_unstable();
    found
}

/// A Markdown destination at `k` (after `](` or `]: `): `<...>` or a run without white
/// space whose parentheses balance. The span of the value, without the brackets.
pub(super) fn markdown_destination(text: &str, k: usize) -> Option<(usize, usize)> {
    let k = k + (text[k..].len() - text[k..].trim_start_matches([' ', '\t']).len());
    if let Some(inner) = text[k..].strip_prefix('<') {
        let end = inner.find(['>', '<'])?;
        return (inner.as_bytes()[end] == b'>').then_some((k + 1, k + 1 + end));
    }
    let mut depth = 0usize;
    let mut escaped = false;
    let mut end = text.len();
    for (i, c) in text[k..].char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            c if c.is_whitespace() || c.is_control() => {
                end = k + i;
                break;
            }
            '(' => depth += 1,
            ')' if depth == 0 => {
                end = k + i;
                break;
            }
            ')' => depth -= 1,
            _ => {}
        }
    }
    (end > k).then_some((k, end))
}

/// The value of an HTML attribute whose `=` is just before `k`.
pub(super) fn attribute_value(text: &str, k: usize) -> Option<(usize, usize)> {
    let rest = &text[k..];
    match rest.chars().next()? {
        q @ ('"' | '\'') => rest[1..].find(q).map(|e| (k + 1, k + 1 + e)),
        _ => {
            let e = rest
                .find(|c: char| c.is_whitespace() || c == '>')
                .unwrap_or(rest.len());
            (e > 0).then_some((k, k + e))
        }
    }
}

/// Markdown's backslash escapes of ASCII punctuation removed.
pub(super) fn unescape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match chars.peek() {
            Some(&n) if c == '\\' && n.is_ascii_punctuation() => {
                out.push(n);
                chars.next();
            }
            _ => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spans(text: &str) -> Vec<&str> {
        find_destinations(text)
            .into_iter()
            .map(|(s, e, _)| &text[s..e])
            .collect()
    }

    #[test]
    fn destinations_are_found() {
        assert_eq!(
            spans("![a](x.png) [b](<my file.txt> \"t\") [c](f(1).png)"),
            ["x.png", "my file.txt", "f(1).png"]
        );
        assert_eq!(
            spans("> [logo]: ./img/logo.png \"Logo\""),
            ["./img/logo.png"]
        );
        assert_eq!(spans("[1]: see below"), Vec::<&str>::new());
        assert_eq!(
            spans("<img SRC=\"a.png\" alt=x> <a href='b.html'>b</a> src=prose"),
            ["a.png", "b.html"]
        );
        assert_eq!(spans("  src=\"next-line.png\">"), ["next-line.png"]);
        // A link read before the code span it runs into; none inside code.
        assert_eq!(spans("[t](a`b`c) `[u](d.png)` `<img src=e>`"), ["a`b`c"]);
    }

    #[test]
    fn html_blocks() {
        assert_eq!(html_block("<pre>"), Some(HtmlEnd::Marker("</pre>")));
        assert_eq!(html_block("  <DIV class=x>"), Some(HtmlEnd::Blank));
        assert_eq!(html_block("</details>"), Some(HtmlEnd::Blank));
        assert_eq!(html_block("<!-- x"), Some(HtmlEnd::Marker("-->")));
        for not in [
            "<b>bold</b>",
            "<img src=x>",
            "    <div>",
            "<divx>",
            "text <div>",
        ] {
            assert_eq!(html_block(not), None, "{not}");
        }
        assert_eq!(HtmlEnd::Marker("</pre>").open_after("x</PRE>"), None);
    }

    #[test]
    fn item_prefixes() {
        assert_eq!(item_prefix("2. ```bash"), 3);
        assert_eq!(item_prefix("  - 1) ```"), 7);
        assert_eq!(item_prefix("   ```"), 3);
        assert_eq!(item_prefix("-     ```"), 0, "five spaces: indented code");
        for not in ["**bold**", "-x", "1.5 litres", "- ", "1234567890. x"] {
            assert_eq!(item_prefix(not), 0, "{not}");
        }
    }

    #[test]
    fn helpers() {
        assert_eq!(unescape(r"a\_b\\c\d"), r"a_b\c\d");
        assert!(in_tag("x <img alt=\"a\" ") && !in_tag("a < b") && !in_tag("<b>x"));
        assert_eq!(definition_at("[a]:   x"), Some(7));
        assert_eq!(definition_at("> - 1. [a]: x"), Some(12));
        assert_eq!(definition_at("-[a]: x"), None);
    }
}
