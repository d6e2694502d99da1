//! Killercoda's markers after inline code: `` `cmd`{{exec}} `` alone on its line (or
//! alone after a list marker) becomes a run-button block in its place; inside a sentence
//! the inline code stays and the block follows the paragraph, indented as the line.
//! Inline code may go on over several lines of its paragraph (`` `docker run \ ``, then
//! `` nginx`{{execute}} ``): the command keeps the lines, and the indentation of the
//! paragraph is taken off the lines after the first. `{{copy}}` is dropped; any other
//! marker is dropped with a note.

use super::scan::{code_spans, item_prefix, unclosed_code};
use super::text::{opening, white};

/// Most lines one piece of inline code may go on over.
const MAX_SPAN_LINES: usize = 20;

/// One exec block waiting for the end of its paragraph.
pub(super) struct Queued {
    pub indent: String,
    pub command: String,
}

/// A line (or lines, see [`span_end`]) outside code with Killercoda's inline markers: the
/// lines to write instead.
pub(super) fn markers(
    line: &str,
    n: usize,
    queued: &mut Vec<Queued>,
    note: &mut impl FnMut(usize, String, bool),
) -> Vec<String> {
    let bytes = line.as_bytes();
    let lead_len = item_prefix(line);
    let (lead, indent) = (&line[..lead_len], white(&line[..lead_len]));
    let (mut out, mut last, mut i) = (String::new(), 0, 0);
    let mut alone = None;
    while i < bytes.len() {
        if bytes[i] != b'`' {
            i += 1;
            continue;
        }
        let run = backticks(&bytes[i..]);
        let Some(close) = find_run(bytes, i + run, run) else {
            i += run;
            continue;
        };
        let end = close + run;
        let Some(marker_len) = line[end..]
            .strip_prefix("{{")
            .and_then(|a| a.find("}}"))
            .map(|k| k + 4)
        else {
            i = end;
            continue;
        };
        let marker = &line[end..end + marker_len];
        let code = command(code_text(&line[i + run..close]), indent.len());
        out.push_str(&line[last..end]);
        let (kind, options) = split_marker(marker);
        match kind.as_str() {
            "exec" | "execute" if code.trim().is_empty() => note(
                n,
                format!("{marker} on empty inline code is dropped"),
                false,
            ),
            "exec" | "execute"
                if i >= lead_len && line[lead_len..].trim() == &line[i..end + marker_len] =>
            {
                alone = Some(code)
            }
            "exec" | "execute" => queued.push(Queued {
                indent: indent.clone(),
                command: code,
            }),
            "copy" => {}
            _ => note(
                n,
                format!("the marker {marker} is not mapped and was dropped"),
                true,
            ),
        }
        if matches!(kind.as_str(), "exec" | "execute") && !options.is_empty() {
            note(n, unmapped_options(marker, &options), false);
        }
        i = end + marker_len;
        last = i;
    }
    out.push_str(&line[last..]);
    match alone {
        Some(command) => exec_block(lead, &indent, &command),
        None => out.split('\n').map(str::to_owned).collect(),
    }
}

/// When line `at` of `lines` opens inline code that a later line of the same paragraph
/// closes, right before a marker (`{{...}}`): the index of that later line.
pub(super) fn span_end(lines: &[&str], at: usize) -> Option<usize> {
    let start = unclosed_code(lines[at])?;
    let mut text = lines[at].to_owned();
    for (j, line) in lines.iter().enumerate().skip(at + 1).take(MAX_SPAN_LINES) {
        let new_item = line[..item_prefix(line)].trim() != "";
        if line.trim().is_empty() || opening(line).is_some() || new_item {
            return None;
        }
        text.push('\n');
        text.push_str(line);
        if let Some(&(_, end)) = code_spans(&text).iter().find(|(s, _)| *s == start) {
            return text[end..].starts_with("{{").then_some(j);
        }
    }
    None
}

/// `code`, its lines after the first without the paragraph's `indent` (up to that many
/// spaces).
fn command(code: &str, indent: usize) -> String {
    let mut lines = code.split('\n');
    let mut out = lines.next().unwrap_or_default().to_owned();
    for line in lines {
        let spaces = line.len() - line.trim_start_matches(' ').len();
        out.push('\n');
        out.push_str(&line[spaces.min(indent)..]);
    }
    out
}

/// `{{exec interrupt}}` → ("exec", "interrupt").
pub(super) fn split_marker(marker: &str) -> (String, String) {
    let inner = marker.trim_start_matches('{').trim_end_matches('}').trim();
    let (kind, options) = inner.split_once(char::is_whitespace).unwrap_or((inner, ""));
    (kind.to_ascii_lowercase(), options.trim().to_owned())
}

pub(super) fn unmapped_options(marker: &str, options: &str) -> String {
    format!(
        "{marker}: the option {options:?} is not mapped; the run button only types the \
         command into the terminal"
    )
}

pub(super) fn backticks(bytes: &[u8]) -> usize {
    bytes.iter().take_while(|&&b| b == b'`').count()
}

/// The start of the next run of exactly `len` backticks at or after `from`.
pub(super) fn find_run(bytes: &[u8], mut from: usize, len: usize) -> Option<usize> {
    while from < bytes.len() {
        if bytes[from] == b'`' {
            let run = backticks(&bytes[from..]);
            if run == len {
                return Some(from);
            }
            from += run;
        } else {
            from += 1;
        }
    }
    None
}

/// An inline code span's text: one space stripped from each end when both have one.
fn code_text(inner: &str) -> &str {
    match inner.strip_prefix(' ').and_then(|s| s.strip_suffix(' ')) {
        Some(s) if !s.trim().is_empty() => s,
        _ => inner,
    }
}

/// A run-button block: its opening fence after `lead`, its other lines after `indent`.
pub(super) fn exec_block(lead: &str, indent: &str, command: &str) -> Vec<String> {
    let longest = command.split(|c| c != '`').map(str::len).max().unwrap_or(0);
    let fence = "`".repeat((longest + 1).max(3));
    let mut out = vec![format!("{lead}{fence}bash {{exec}}")];
    out.extend(command.split('\n').map(|l| format!("{indent}{l}")));
    out.push(format!("{indent}{fence}"));
    out
}
