//! Source Markdown to the body of a native lab, line by line, aware of fenced code.
//!
//! Killercoda's click markers:
//! - a fence closed by ```` ```{{exec}} ```` becomes a run-button block: its opening fence
//!   gets `{exec}` (and `bash` when it named no language or `plain`);
//! - inline code followed by `{{exec}}` becomes a run-button block too (see
//!   [`super::inline`]);
//! - `{{copy}}` is dropped (the code stays, as a plain code block or inline code); any
//!   other marker is dropped with a note.
//!
//! Instruqt's run blocks: a fence opened by ```` ```bash,run ```` becomes a run-button block
//! (```` ```bash {exec} ````); other options after the comma (`nocopy`) are dropped.
//!
//! A fence may open a list item (```` 2. ```bash ````): the block belongs to the item, its
//! other lines indented as the item's content. A line of the block that is indented less
//! (which would end the item, and leave the rest of the text to a stray fence) is indented
//! to the item's content.
//!
//! For every source: a `{exec}` the source wrote itself is removed (only markers make run
//! buttons); a line that reads as a `::task` marker gets a zero-width space so it stays
//! text; a fence left open at the end of a file is closed there, so it cannot swallow
//! the steps after it. [`check`] then renders the result alone to catch what would still
//! break the lab (too deep nesting, an HTML block or comment left open).

use std::path::Path;

use super::inline::{self, Queued};
use super::links::{self, Refs};
use super::notes::Notes;
use super::scan::item_prefix;
use super::source::Source;
use super::{ImportError, Result};
use crate::problem::Diags;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Flavor {
    Killercoda,
    Instruqt,
}

struct Open {
    /// What precedes the fence on its opening line: indentation and any list markers.
    prefix: String,
    /// The indentation of the block's other lines: `prefix` as white space.
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

/// Converts `source`, the text of `file`, noting there what could not be mapped.
pub(crate) fn convert(source: &str, flavor: Flavor, file: &str, notes: &mut Notes) -> String {
    let lines: Vec<&str> = source.split('\n').collect();
    let mut out: Vec<String> = Vec::new();
    let mut open: Option<Open> = None;
    let mut queued: Vec<Queued> = Vec::new();
    let mut note = |n: usize, text: String, dropped: bool| {
        let text = format!("line {n}: {text}");
        if dropped {
            notes.dropped(file, text);
        } else {
            notes.add(file, text);
        }
    };
    let mut i = 0;
    while i < lines.len() {
        let (n, line) = (i + 1, lines[i]);
        i += 1;
        if flavor == Flavor::Instruqt && line.contains("[[") && line.contains("Instruqt-") {
            note(
                n,
                "an Instruqt template (`[[ Instruqt-... ]]`) is kept as written; Sandlab does \
                 not fill it in"
                    .into(),
                false,
            );
        }
        if let Some(f) = open.as_mut() {
            match closing(line, f, flavor) {
                None => {
                    f.has_content |= !line.trim().is_empty();
                    out.push(in_item(line, f));
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
        if let Some((prefix, fence, info)) = opening(line) {
            flush(&mut out, &mut queued);
            open = Some(open_fence(&mut out, line, (prefix, fence, info), n, flavor));
            continue;
        }
        if line.trim().is_empty() {
            flush(&mut out, &mut queued);
            out.push(line.to_owned());
            continue;
        }
        if starts_item(line) {
            flush(&mut out, &mut queued);
        }
        let mut line = guard(line, n, &mut note);
        if flavor == Flavor::Killercoda {
            // Inline code that goes on over lines, then a marker: one piece.
            if let Some(end) = inline::span_end(&lines, i - 1) {
                for (k, next) in lines.iter().enumerate().take(end + 1).skip(i) {
                    line.push('\n');
                    line.push_str(&guard(next, k + 1, &mut note));
                }
                i = end + 1;
            }
        }
        if flavor == Flavor::Killercoda && line.contains("{{") {
            out.extend(inline::markers(&line, n, &mut queued, &mut note));
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
            false,
        );
    }
    flush(&mut out, &mut queued);
    out.join("\n")
}

/// Writes the opening fence `line` (its parts given), without a `{exec}` of its own and
/// with Instruqt's options taken out; the block it opens.
fn open_fence(
    out: &mut Vec<String>,
    line: &str,
    (prefix, fence, info): (&str, &str, &str),
    n: usize,
    flavor: Flavor,
) -> Open {
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
        format!("{prefix}{fence}{}", kept.join(" "))
    } else {
        line.to_owned()
    });
    Open {
        prefix: prefix.to_owned(),
        indent: white(prefix),
        fence: fence.to_owned(),
        lang: kept
            .first()
            .filter(|w| !w.starts_with('{'))
            .map(|w| (*w).to_owned()),
        at: out.len() - 1,
        line: n,
        has_content: false,
        run,
    }
}

/// `prefix` as white space: tabs kept, every other character a space.
pub(super) fn white(prefix: &str) -> String {
    prefix
        .chars()
        .map(|c| if c == '\t' { '\t' } else { ' ' })
        .collect()
}

/// Whether `line` starts a list item.
fn starts_item(line: &str) -> bool {
    line[..item_prefix(line)].trim() != ""
}

/// A line of block `f`: when `f` opened a list item, indented at least as its content.
fn in_item(line: &str, f: &Open) -> String {
    let have = line.len() - line.trim_start_matches(' ').len();
    if f.prefix == f.indent || line.trim().is_empty() || have >= f.indent.len() {
        return line.to_owned();
    }
    format!("{}{line}", " ".repeat(f.indent.len() - have))
}

/// `line` with a zero-width space before a `::task` it starts with (noted).
fn guard(line: &str, n: usize, note: &mut impl FnMut(usize, String, bool)) -> String {
    let mut line = line.to_owned();
    let rest = line.trim_start();
    if rest.starts_with("::task") {
        let at = line.len() - rest.len();
        line.insert(at, '\u{200b}');
        note(
            n,
            "this line reads like a Sandlab task marker; a zero-width space keeps it text".into(),
            false,
        );
    }
    line
}

/// An opening fence: what precedes it (indentation and any list markers), the fence and
/// its info string.
pub(super) fn opening(line: &str) -> Option<(&str, &str, &str)> {
    let (prefix, t) = line.split_at(item_prefix(line));
    let ch = t.chars().next().filter(|c| matches!(c, '`' | '~'))?;
    let len = t.len() - t.trim_start_matches(ch).len();
    if len < 3 {
        return None;
    }
    let info = t[len..].trim();
    if ch == '`' && info.contains('`') {
        return None;
    }
    Some((prefix, &t[..len], info))
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
    note: &mut impl FnMut(usize, String, bool),
) {
    instruqt_run(out, &f);
    if !marker.is_empty() {
        let (kind, options) = inline::split_marker(marker);
        match kind.as_str() {
            "exec" | "execute" if f.has_content => {
                let lang = exec_language(f.lang.as_deref());
                out[f.at] = format!("{}{}{lang} {{exec}}", f.prefix, f.fence);
            }
            "exec" | "execute" => note(
                n,
                format!("{marker} on an empty code block is dropped"),
                false,
            ),
            "copy" => {}
            _ => note(
                n,
                format!("the marker {marker} is not mapped and was dropped"),
                true,
            ),
        }
        if matches!(kind.as_str(), "exec" | "execute") && !options.is_empty() {
            note(n, inline::unmapped_options(marker, &options), false);
        }
    }
    out.push(format!("{}{}", f.indent, f.fence));
}

/// Gives a closed Instruqt `,run` block with a command its run button.
fn instruqt_run(out: &mut [String], f: &Open) {
    if f.run && f.has_content {
        let lang = exec_language(f.lang.as_deref());
        out[f.at] = format!("{}{}{lang} {{exec}}", f.prefix, f.fence);
    }
}

fn exec_language(lang: Option<&str>) -> &str {
    match lang {
        None | Some("plain" | "plaintext" | "text" | "txt" | "shell" | "sh" | "console") => "bash",
        Some(l) => l,
    }
}

fn flush(out: &mut Vec<String>, queued: &mut Vec<Queued>) {
    for q in queued.drain(..) {
        out.push(String::new());
        out.extend(inline::exec_block(&q.indent, &q.indent, &q.command));
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
    fn fences_in_list_items() {
        let (out, notes) = kc("2. ```bash\n   ls\n   ```{{exec}}\nafter");
        assert_eq!(out, "2. ```bash {exec}\n   ls\n   ```\nafter");
        assert!(notes.is_empty());
        // Lines indented less than the item's content are indented to it; a block never
        // closed is closed at the item's indentation.
        let (out, _) = kc("- ```\nx\n  y");
        assert_eq!(out, "- ```\n  x\n  y\n  ```");
        let (out, _) = kc("1. `ls`{{exec}}\n2. Run `pwd`{{exec}} now\n3. next");
        assert_eq!(
            out,
            "1. ```bash {exec}\n   ls\n   ```\n2. Run `pwd` now\n\n   ```bash {exec}\n   pwd\n   ```\n3. next"
        );
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
