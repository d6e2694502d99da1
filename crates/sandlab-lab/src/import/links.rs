//! Links in an imported text, made to fit the native format. Runs on the source text,
//! before [`super::text::convert`], so notes carry the source's line numbers, and again
//! after it (see [`super::text::body`]).
//!
//! - Killercoda's `{{TRAFFIC_HOSTn_PORT}}` (port PORT of the n-th host, which is the
//!   playground's n-th node) becomes a `port:` link ([`super::traffic`]). As a link's target,
//!   `[text]({{TRAFFIC_HOST1_80}}/path)` → `[text](port:node01:80/path)`; as a link's text,
//!   `[{{TRAFFIC_HOST1_80}}/x](http://localhost/x)` → `[port 80/x](port:node01:80/x)`; on
//!   its own, `{{TRAFFIC_HOST1_80}}/path` → `[Open port 80](port:node01:80/path)`.
//!   `{{TRAFFIC_SELECTOR}}` becomes `port:select` the same ways.
//! - A relative reference (the target of a link, an image or a reference definition; an
//!   HTML `src` or `href`) to a file of the source points at its copy under the lab's
//!   `assets/` (see [`super::assets`]). One to a Markdown file (another step, whose text
//!   is in the lab already) or to no file is emptied, with a note.
//!
//! Fenced code and code spans are left as they are; in an HTML block only the
//! attributes are looked at.

use super::assets::AssetPlan;
use super::notes::Notes;
use super::scan::{closes, code_spans, find_destinations, html_block, unescape, HtmlEnd};
use super::source::Source;
use super::text::{opening, Flavor};
use super::traffic::traffic;
use crate::links::{
    is_port_link, is_relative, parse_port_link, percent_decode, percent_encode, PortTarget,
};

/// What references are resolved against.
pub(crate) struct Refs {
    pub assets: AssetPlan,
    /// The playground's nodes, in order: Killercoda's host N is the N-th.
    pub nodes: Vec<String>,
}

/// The line being rewritten, and where to resolve and note.
pub(super) struct At<'a> {
    src: &'a Source,
    file: &'a str,
    line: usize,
    /// Whether Killercoda's placeholders are mapped (not on a second pass).
    placeholders: bool,
    pub refs: &'a mut Refs,
    notes: &'a mut Notes,
}

impl At<'_> {
    pub(super) fn note(&mut self, text: String) {
        let line = self.line;
        self.notes.add(self.file, format!("line {line}: {text}"));
    }

    /// Notes that something of the line is left out.
    pub(super) fn dropped(&mut self, text: String) {
        let line = self.line;
        self.notes
            .dropped(self.file, format!("line {line}: {text}"));
    }
}

/// Rewrites the links of `text`, source file `file`; `placeholders`: Killercoda's
/// traffic placeholders too.
pub(crate) fn rewrite(
    src: &Source,
    text: &str,
    (flavor, placeholders): (Flavor, bool),
    file: &str,
    refs: &mut Refs,
    notes: &mut Notes,
) -> String {
    let mut out = Vec::new();
    let mut fence: Option<(char, usize)> = None;
    let mut html: Option<HtmlEnd> = None;
    for (i, line) in text.split('\n').enumerate() {
        let mut at = At {
            src,
            file,
            line: i + 1,
            placeholders: placeholders && flavor == Flavor::Killercoda,
            refs: &mut *refs,
            notes: &mut *notes,
        };
        if let Some((ch, len)) = fence {
            if closes(line, ch, len, flavor) {
                fence = None;
            } else if at.placeholders && line.contains("{{TRAFFIC_") {
                at.note("a {{TRAFFIC_...}} placeholder in code is kept as written".to_owned());
            }
            out.push(line.to_owned());
            continue;
        }
        if let Some(end) = html.take() {
            if end == HtmlEnd::Blank && line.trim().is_empty() {
                out.push(line.to_owned());
                continue;
            }
            html = end.open_after(line);
            out.push(destinations(line, true, &mut at));
            continue;
        }
        if let Some((_, f, _)) = opening(line) {
            fence = f.chars().next().map(|c| (c, f.len()));
            out.push(line.to_owned());
            continue;
        }
        if let Some(end) = html_block(line) {
            html = end.open_after(line);
            out.push(destinations(line, true, &mut at));
            continue;
        }
        out.push(rewrite_line(line, &mut at));
    }
    out.join("\n")
}

/// One line outside fenced code: placeholders outside code spans, then destinations.
/// A destination may run into a code span (`[a](b`c`)`: the link is read first), but
/// a link or tag that starts inside one is code.
fn rewrite_line(line: &str, at: &mut At<'_>) -> String {
    let line = if at.placeholders && line.contains("{{") {
        let dests = find_destinations(line);
        let mut out = String::with_capacity(line.len());
        let mut last = 0;
        for (start, end) in code_spans(line) {
            out.push_str(&traffic(line, (last, start), &dests, at));
            out.push_str(&line[start..end]);
            last = end;
        }
        out.push_str(&traffic(line, (last, line.len()), &dests, at));
        out
    } else {
        line.to_owned()
    };
    destinations(&line, false, at)
}

/// `text` with each relative destination pointed at the lab's assets (or emptied);
/// `html_only`: only HTML attributes (in an HTML block).
fn destinations(text: &str, html_only: bool, at: &mut At<'_>) -> String {
    let mut out = String::with_capacity(text.len());
    let mut last = 0;
    for (start, end, html) in find_destinations(text) {
        if start < last || (html_only && !html) {
            continue;
        }
        if let Some(new) = target(&text[start..end], html, at) {
            out.push_str(&text[last..start]);
            out.push_str(&new);
            last = end;
        }
    }
    out.push_str(&text[last..]);
    out
}

/// The new value of destination `value`, or `None` to keep it.
fn target(value: &str, html: bool, at: &mut At<'_>) -> Option<String> {
    let v = value.trim();
    if is_port_link(v) {
        let ok = match parse_port_link(v) {
            Ok(PortTarget::Port { node: Some(n), .. }) => at.refs.nodes.contains(&n),
            Ok(_) => true,
            Err(_) => false,
        };
        if !ok {
            at.dropped(format!(
                "the port link {v:?} is not valid here and is dropped"
            ));
        }
        return (!ok).then(String::new);
    }
    if !is_relative(v) {
        return None;
    }
    let plain = if html {
        v.replace("&amp;", "&")
    } else {
        unescape(v)
    };
    let split = plain.find(['?', '#']).unwrap_or(plain.len());
    let (path, suffix) = plain.split_at(split);
    let path = percent_decode(path).unwrap_or_else(|| path.to_owned());
    if path.to_ascii_lowercase().ends_with(".md") {
        at.note(format!(
            "the link to {v:?} is dropped: it leads to another page of the source, whose text \
             is in the lab"
        ));
        return Some(String::new());
    }
    let (src, file) = (at.src, at.file);
    match at.refs.assets.reference(src, file, &path, at.notes) {
        Ok(lab) => {
            let encoded: Vec<String> = lab.split('/').map(percent_encode).collect();
            Some(format!("{}{suffix}", encoded.join("/")))
        }
        Err(why) => {
            at.note(format!("the reference {v:?} is dropped: {why}"));
            Some(String::new())
        }
    }
}
