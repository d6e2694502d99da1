//! A challenge's `tabs:` to the lab's tabs.
//!
//! ```text
//! type: terminal  hostname                 → kind: terminal, node
//! type: service   hostname, port, path     → kind: service, node, port, path
//! type: code      hostname, path           → kind: editor, node, path
//! type: website   url                      → kind: website, url; an Instruqt sandbox
//!                                            URL https://HOST-PORT-${_SANDBOX_ID}.env.
//!                                            play.instruqt.com/PATH → kind: service
//! ```
//!
//! A lab has one set of tabs: the union of the challenges' tabs, in the order first seen,
//! repeats dropped. What a tab cannot take along (a terminal's `workdir` or `cmd`, a
//! service's `protocol` or headers, `new_window`), and tabs Sandlab has no kind for, are
//! noted.

use super::super::draft::{one_line, truncate, Draft, DraftTab};
use super::super::notes::Notes;
use super::super::tree::{self, get, items, text};
use super::config::Hosts;
use crate::tabs::{is_editor_path, is_service_path, is_website_url, parse_port};
use crate::yaml::Node;
use crate::{TabKind, MAX_TABS};

/// Keys of a tab the import maps (or that carry nothing to map).
const TAB_KEYS: [&str; 7] = ["id", "title", "type", "hostname", "port", "path", "url"];
/// Longest tab title a lab may have.
const MAX_TITLE: usize = 60;
/// How Instruqt writes a sandbox's host in a URL.
const SANDBOX_HOST: &str = "-${_SANDBOX_ID}.env.play.instruqt.com";

/// Adds the tabs of the challenge front matter `meta` (in file `rel`) to `draft`.
pub(super) fn tabs(
    meta: Option<&Node>,
    rel: &str,
    hosts: &Hosts,
    draft: &mut Draft,
    notes: &mut Notes,
) {
    for tab in items(get(meta, "tabs")) {
        let line = tree::line(tab);
        let kind = text(get(Some(tab), "type")).unwrap_or("(no type)");
        let shown = match text(get(Some(tab), "title")) {
            Some(t) => format!("line {line}: tab {t:?} ({kind})"),
            None => format!("line {line}: a {kind} tab"),
        };
        let mapped = match map(tab, kind, hosts) {
            Ok(mapped) => mapped,
            Err(why) => {
                notes.dropped(rel, format!("{shown} is not mapped: {why}"));
                continue;
            }
        };
        if let Some(note) = mapped.1 {
            notes.add(rel, format!("{shown}: {note}"));
        }
        let unknown = tree::unknown_keys(Some(tab), &TAB_KEYS);
        if !unknown.is_empty() {
            notes.add(rel, format!("{shown}: not mapped: {}", unknown.join(", ")));
        }
        if !draft.add_tab(mapped.0) {
            notes.dropped(
                rel,
                format!("{shown} is left out: a lab has at most {MAX_TABS} tabs"),
            );
        }
    }
}

/// The tab, and a note on how it was mapped; `Err` says why it cannot be.
fn map(tab: &Node, kind: &str, hosts: &Hosts) -> Result<(DraftTab, Option<String>), String> {
    let field = |k| text(get(Some(tab), k));
    let mut note = None;
    let mut node = || {
        field("hostname").map(|host| match hosts.get(host) {
            Some(node) => node.to_owned(),
            None => {
                let first = hosts.nodes.first().map_or("", |n| n.name.as_str());
                note = Some(format!(
                    "its host {host:?} is not one of the track's; it opens on node {first:?}"
                ));
                first.to_owned()
            }
        })
    };
    let mut out = DraftTab {
        kind: TabKind::Terminal,
        node: None,
        port: None,
        path: None,
        url: None,
        title: field("title")
            .map(one_line)
            .filter(|t| !t.is_empty())
            .map(|t| truncate(&t, MAX_TITLE)),
    };
    match kind {
        "terminal" => out.node = node(),
        "service" => {
            out.kind = TabKind::Service;
            out.node = node();
            out.port = Some(port(field("port"))?);
            out.path = field("path").map(service_path).transpose()?;
        }
        "code" => {
            out.kind = TabKind::Editor;
            out.node = node();
            if let Some(path) = field("path") {
                if !is_editor_path(path) {
                    return Err(format!("its path {path:?} is not an absolute directory"));
                }
                out.path = Some(path.to_owned());
            }
        }
        "website" => {
            let url = field("url").ok_or("it has no url")?.trim();
            if let Some(service) = sandbox_service(url, hosts)? {
                out.kind = TabKind::Service;
                out.node = Some(service.0);
                out.port = Some(service.1);
                out.path = Some(service.2);
            } else if url.contains("${") {
                return Err(format!(
                    "its url {url:?} uses an Instruqt variable, which Sandlab does not fill in"
                ));
            } else if !is_website_url(url) {
                return Err(format!("its url {url:?} is not an http(s) address"));
            } else {
                out.kind = TabKind::Website;
                out.url = Some(url.to_owned());
            }
        }
        other => return Err(format!("Sandlab has no {other} tab")),
    }
    Ok((out, note))
}

fn port(text: Option<&str>) -> Result<u16, String> {
    let text = text.ok_or("it has no port")?;
    parse_port(text).ok_or_else(|| format!("its port {text:?} is not from 1 to 65535"))
}

/// Instruqt's path, with the `/` it may leave out.
fn service_path(path: &str) -> Result<String, String> {
    let path = path.trim();
    let path = if path.starts_with('/') {
        path.to_owned()
    } else {
        format!("/{path}")
    };
    if is_service_path(&path) {
        Ok(path)
    } else {
        Err(format!("its path {path:?} is not a URL path"))
    }
}

/// A URL to a port of the sandbox (`https://HOST-PORT-${_SANDBOX_ID}.env.play.instruqt.com/x`)
/// as (node, port, path); `None` for any other URL.
fn sandbox_service(url: &str, hosts: &Hosts) -> Result<Option<(String, u16, String)>, String> {
    let Some(rest) = url.split_once("://").map(|(_, r)| r) else {
        return Ok(None);
    };
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let Some(host_port) = authority.strip_suffix(SANDBOX_HOST) else {
        return Ok(None);
    };
    let Some((host, port_text)) = host_port.rsplit_once('-') else {
        return Ok(None);
    };
    let node = hosts
        .get(host)
        .ok_or_else(|| format!("its url names host {host:?}, which is not one of the track's"))?;
    let port = port(Some(port_text))?;
    let path = if path.is_empty() {
        "/".to_owned()
    } else {
        service_path(path)?
    };
    Ok(Some((node.to_owned(), port, path)))
}
