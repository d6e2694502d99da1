//! Source Markdown to the body of a native lab, line by line, aware of fenced code.
//!
//! Killercoda's click markers:
//! - a fence closed by ```` ```{{exec}} ```` becomes a run-button block: its opening fence
//!   gets `{exec}` (and `bash` when it named no language or `plain`);
//! - `` `cmd`{{exec}} `` alone on its line becomes such a block; inside a sentence the
//!   inline code stays and the block follows the paragraph;
//! - `{{copy}}` is dropped (the code stays, as a plain code block or inline code); any
//!   other marker is dropped with a note.
//!
//! Instruqt's run blocks: a fence opened by ```` ```bash,run ```` becomes a run-button block
//! (```` ```bash {exec} ````); other options after the comma (`nocopy`) are dropped.
//!
//! For every source: a `{exec}` the source wrote itself is removed (only markers make run
//! buttons); a line that reads as a `::task` marker gets a zero-width space so it stays
//! text; a fence left open at the end of a file is closed there, so it cannot swallow
//! the steps after it. [`check`] then renders the result alone to catch what would still
//! break the lab (too deep nesting, an HTML block or comment left open).

use std::path::Path;

use super::links::{self, Refs};
use super::notes::Notes;
use super::source::Source;
use super::{ImportError, Result};
use crate::problem::Diags;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Flavor {
    Killercoda,
    Instruqt,
}

struct Open {
    indent: String,
    fence: String,
    lang: Option<String>,
    /// Index of the opening line in the output.
    at: usize,
    line: usize,
    has_content: bool,
    /// Instruqt's `,run`: a run button once the block has a command.
    run: bool,
}

/// One exec block waiting for the end of its paragraph.
struct Queued {
    indent: String,
    command: String,
}

/// Converts `source`, the text of `file`, noting there what could not be mapped.
pub(crate) fn convert(source: &str, flavor: Flavor, file: &str, notes: &mut Notes) -> String {
    let mut out: Vec<String> = Vec::new();
    let mut open: Option<Open> = None;
    let mut queued: Vec<Queued> = Vec::new();
    let mut note = |n: usize, text: String| notes.add(file, format!("line {n}: {text}"));
    for (i, line) in source.split('\n').enumerate() {
        let n = i + 1;
        if flavor == Flavor::Instruqt && line.contains("[[") && line.contains("Instruqt-") {
            note(
                n,
                "an Instruqt template (`[[ Instruqt-... ]]`) is kept as written; Sandlab does \
                 not fill it in"
                    .into(),
            );
        }
        if let Some(f) = open.as_mut() {
            match closing(line, f, flavor) {
                None => {
                    f.has_content |= !line.trim().is_empty();
                    out.push(line.to_owned());
                }
                Some(marker) => {
                    let marker = marker.to_owned();
                    if let Some(f) = open.take() {
                        close(&mut out, f, &marker, n, &mut note);
                    }
                }
            }
            continue;
        }
        if let Some((indent, fence, info)) = opening(line) {
            flush(&mut out, &mut queued);
            let words: Vec<&str> = info.split_whitespace().collect();
            let mut kept: Vec<&str> = words.iter().copied().filter(|w| *w != "{exec}").collect();
            let mut run = false;
            let options = kept.first().and_then(|w| w.split_once(','));
            if let (Flavor::Instruqt, Some((lang, options))) = (flavor, options) {
                run = options.split(',').any(|o| o == "run");
                kept[0] = lang;
            }
            let changed = kept.len() != words.len() || kept.first() != words.first();
            out.push(if changed {
                format!("{indent}{fence}{}", kept.join(" "))
            } else {
                line.to_owned()
            });
            open = Some(Open {
                indent: indent.to_owned(),
                fence: fence.to_owned(),
                lang: kept
                    .first()
                    .filter(|w| !w.starts_with('{'))
                    .map(|w| (*w).to_owned()),
                at: out.len() - 1,
                line: n,
                has_content: false,
                run,
            });
            continue;
        }
        if line.trim().is_empty() {
            flush(&mut out, &mut queued);
            out.push(line.to_owned());
            continue;
        }
        let mut line = line.to_owned();
        let rest = line.trim_start();
        if rest.starts_with("::task") {
            let at = line.len() - rest.len();
            line.insert(at, '\u{200b}');
            note(
                n,
                "this line reads like a Sandlab task marker; a zero-width space keeps it text"
                    .into(),
            );
        }
        if flavor == Flavor::Killercoda && line.contains("{{") {
            out.extend(inline(&line, n, &mut queued, &mut note));
        } else {
            out.push(line);
        }
    }
    if let Some(f) = open {
        let line = f.line;
        instruqt_run(&mut out, &f);
        out.push(format!("{}{}", f.indent, f.fence));
        note(
            line,
            "the code block opened here is never closed; it is closed at the end of the file"
                .into(),
        );
    }
    flush(&mut out, &mut queued);
    out.join("\n")
}

/// An opening fence: its indentation, fence and info string.
pub(super) fn opening(line: &str) -> Option<(&str, &str, &str)> {
    let t = line.trim_start_matches([' ', '\t']);
    let indent = &line[..line.len() - t.len()];
    let ch = t.chars().next().filter(|c| matches!(c, '`' | '~'))?;
    let len = t.len() - t.trim_start_matches(ch).len();
    if len < 3 {
        return None;
    }
    let info = t[len..].trim();
    if ch == '`' && info.contains('`') {
        return None;
    }
    Some((indent, &t[..len], info))
}

/// `Some(marker)` when `line` closes `f` (`marker` empty, or Killercoda's `{{...}}`).
fn closing<'l>(line: &'l str, f: &Open, flavor: Flavor) -> Option<&'l str> {
    let t = line.trim_start_matches([' ', '\t']);
    let ch = f.fence.chars().next()?;
    let len = t.len() - t.trim_start_matches(ch).len();
    if len < f.fence.len() {
        return None;
    }
    let rest = t[len..].trim();
    let marker = flavor == Flavor::Killercoda && rest.starts_with("{{") && rest.ends_with("}}");
    (rest.is_empty() || marker).then_some(rest)
}

fn close(
    out: &mut Vec<String>,
    f: Open,
    marker: &str,
    n: usize,
    note: &mut impl FnMut(usize, String),
) {
    instruqt_run(out, &f);
    if !marker.is_empty() {
        let (kind, options) = split_marker(marker);
        match kind.as_str() {
            "exec" | "execute" if f.has_content => {
                let lang = exec_language(f.lang.as_deref());
                out[f.at] = format!("{}{}{lang} {{exec}}", f.indent, f.fence);
            }
            "exec" | "execute" => note(n, format!("{marker} on an empty code block is dropped")),
            "copy" => {}
            _ => note(
                n,
                format!("the marker {marker} is not mapped and was dropped"),
            ),
        }
        if matches!(kind.as_str(), "exec" | "execute") && !options.is_empty() {
            note(n, unmapped_options(marker, &options));
        }
    }
    out.push(format!("{}{}", f.indent, f.fence));
}

/// Gives a closed Instruqt `,run` block with a command its run button.
fn instruqt_run(out: &mut [String], f: &Open) {
    if f.run && f.has_content {
        let lang = exec_language(f.lang.as_deref());
        out[f.at] = format!("{}{}{lang} {{exec}}", f.indent, f.fence);
    }
}

/// `{{exec interrupt}}` → ("exec", "interrupt").
fn split_marker(marker: &str) -> (String, String) {
    let inner = marker.trim_start_matches('{').trim_end_matches('}').trim();
    let (kind, options) = inner.split_once(char::is_whitespace).unwrap_or((inner, ""));
    (kind.to_ascii_lowercase(), options.trim().to_owned())
}

fn unmapped_options(marker: &str, options: &str) -> String {
    format!(
        "{marker}: the option {options:?} is not mapped; the run button only types the \
         command into the terminal"
    )
}

fn exec_language(lang: Option<&str>) -> &str {
    match lang {
        None | Some("plain" | "plaintext" | "text" | "txt" | "shell" | "sh" | "console") => "bash",
        Some(l) => l,
    }
}

/// A line outside code with Killercoda's inline markers: the lines to write instead.
fn inline(
    line: &str,
    n: usize,
    queued: &mut Vec<Queued>,
    note: &mut impl FnMut(usize, String),
) -> Vec<String> {
    let bytes = line.as_bytes();
    let indent = &line[..line.len() - line.trim_start_matches([' ', '\t']).len()];
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
        let code = code_text(&line[i + run..close]);
        out.push_str(&line[last..end]);
        let (kind, options) = split_marker(marker);
        match kind.as_str() {
            "exec" | "execute" if code.trim().is_empty() => {
                note(n, format!("{marker} on empty inline code is dropped"))
            }
            "exec" | "execute" if line.trim() == &line[i..end + marker_len] => {
                alone = Some(code.to_owned())
            }
            "exec" | "execute" => queued.push(Queued {
                indent: indent.to_owned(),
                command: code.to_owned(),
            }),
            "copy" => {}
            _ => note(
                n,
                format!("the marker {marker} is not mapped and was dropped"),
            ),
        }
        if matches!(kind.as_str(), "exec" | "execute") && !options.is_empty() {
            note(n, unmapped_options(marker, &options));
        }
        i = end + marker_len;
        last = i;
    }
    out.push_str(&line[last..]);
    match alone {
        Some(command) => exec_block(indent, &command),
        None => vec![out],
    }
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

fn exec_block(indent: &str, command: &str) -> Vec<String> {
    let longest = command.split(|c| c != '`').map(str::len).max().unwrap_or(0);
    let fence = "`".repeat((longest + 1).max(3));
    vec![
        format!("{indent}{fence}bash {{exec}}"),
        format!("{indent}{command}"),
        format!("{indent}{fence}"),
    ]
}

fn flush(out: &mut Vec<String>, queued: &mut Vec<Queued>) {
    for q in queued.drain(..) {
        out.push(String::new());
        out.extend(exec_block(&q.indent, &q.command));
    }
}

/// Converts `source`, the text of (or in) source file `rel`, its links resolved with
/// `refs`, and checks the result. Links are rewritten before the conversion, so that
/// notes have the source's lines, and once more after it, in case taking out a marker
/// made a link of what was code.
pub(crate) fn body(
    src: &Source,
    source: &str,
    flavor: Flavor,
    rel: &str,
    refs: &mut Refs,
    notes: &mut Notes,
) -> Result<String> {
    let linked = links::rewrite(src, source, (flavor, true), rel, refs, notes);
    let md = convert(&linked, flavor, rel, notes);
    let md = links::rewrite(src, &md, (flavor, false), rel, refs, &mut Notes::default());
    check(&md, Some(&refs.nodes)).map_err(|m| ImportError::at(src.show(rel), m))?;
    Ok(md)
}

/// Renders `markdown` alone, followed by a probe marker: `Err` says what in it would break
/// the lab (too deep, an unclosed HTML block swallowing the probe, a stray task marker, a
/// reference outside `assets/`, a port link to a node not in `nodes`).
pub(crate) fn check(markdown: &str, nodes: Option<&[String]>) -> Result<(), String> {
    const PROBE: &str = "sandlab_import_probe";
    let text = format!("{markdown}\n\n::task{{id={PROBE}}}\n");
    let mut diags = Diags::default();
    let links = crate::links::LinkContext {
        slug: "lab",
        dir: None,
        nodes,
    };
    let rendered = crate::markdown::render(&text, 1, &links, &mut diags);
    if let Some(p) = diags.into_problems(Path::new("")).into_iter().next() {
        return Err(p.message);
    }
    if let Some(r) = rendered.task_refs.iter().find(|r| r.task != PROBE) {
        return Err(format!(
            "it has a line that reads as a Sandlab task marker (::task{{id={}}})",
            r.task
        ));
    }
    if !rendered.task_refs.iter().any(|r| r.task == PROBE) {
        return Err(
            "it leaves an HTML block or comment open, which would hide the rest of \
                    the lab"
                .into(),
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kc(text: &str) -> (String, Notes) {
        let mut notes = Notes::default();
        let out = convert(text, Flavor::Killercoda, "f.md", &mut notes);
        (out, notes)
    }

    #[test]
    fn fenced_markers() {
        let (out, notes) = kc("a\n```\nls -la\n```{{exec}}\n\n```yaml\nk: v\n```{{copy}}\n");
        assert_eq!(
            out,
            "a\n```bash {exec}\nls -la\n```\n\n```yaml\nk: v\n```\n"
        );
        assert!(notes.is_empty());
        let (out, notes) = kc("  ~~~~plain\n  top\n  ~~~~ {{exec interrupt}}\n");
        assert_eq!(out, "  ~~~~bash {exec}\n  top\n  ~~~~\n");
        assert_eq!(notes.len(), 1, "{notes:?}");
        let (out, notes) = kc("```\n```{{exec}}\n```go {exec}\nx\n```{{open}}\n");
        assert_eq!(out, "```\n```\n```go\nx\n```\n");
        assert_eq!(notes.len(), 2, "{notes:?}");
    }

    #[test]
    fn inline_markers() {
        let (out, _) = kc("`ls`{{exec}}\nnext");
        assert_eq!(out, "```bash {exec}\nls\n```\nnext");
        let (out, _) = kc("Run `` echo `hi` ``{{execute}} now, `cat`{{copy}} too.\nmore\n\nafter");
        assert_eq!(
            out,
            "Run `` echo `hi` `` now, `cat` too.\nmore\n\n```bash {exec}\necho `hi`\n```\n\nafter"
        );
        let (out, _) = kc("`a` {{exec}} and `` ` `` and ``unclosed");
        assert_eq!(out, "`a` {{exec}} and `` ` `` and ``unclosed");
    }

    #[test]
    fn instruqt_run_blocks() {
        let mut notes = Notes::default();
        let text = "```bash,run\nls\n```\n```sh,nocopy,run\npwd\n```\n```bash,run\n```\n```yaml,nocopy\nk: v\n```";
        let out = convert(text, Flavor::Instruqt, "a.md", &mut notes);
        assert_eq!(
            out,
            "```bash {exec}\nls\n```\n```bash {exec}\npwd\n```\n```bash\n```\n```yaml\nk: v\n```"
        );
        // Killercoda has no such option: the info string stays.
        let out = convert(
            "```bash,run\nls\n```",
            Flavor::Killercoda,
            "a.md",
            &mut notes,
        );
        assert_eq!(out, "```bash,run\nls\n```");
    }

    #[test]
    fn guards() {
        let (out, notes) = kc("::task{id=x}\n```sh\nopen");
        assert_eq!(out, "\u{200b}::task{id=x}\n```sh\nopen\n```");
        assert_eq!(notes.len(), 2);
        assert!(check(&out, None).is_ok());
        assert!(check("<!-- never closed\n\ntext", None).is_err());
        assert!(check(&"> ".repeat(200), None).is_err());
        assert!(check("&#32;::task{id=y}", None).is_err());
        assert!(check("![x](img.png)", None).is_err());
        let nodes = ["web".to_owned()];
        assert!(check("[x](port:web:80)", Some(&nodes)).is_ok());
        assert!(check("[x](port:db:80)", Some(&nodes)).is_err());
    }
}
