//! The raw `tabs:` section to the lab page's [`Tab`]s: kinds, the fields each kind takes,
//! and the defaults.
//!
//! Without `tabs:` a lab gets one terminal per node, in node order. With it, exactly the
//! tabs listed, in order. Every field a kind does not take is a problem rather than
//! ignored: a `port` on a terminal tab is a mistake the author wants to hear about.

use crate::de::Spanned;
use crate::model::{Playground, Tab, TabKind};
use crate::problem::{Diags, Pos};
use crate::raw::RawTab;
use crate::validate::field;

/// Most tabs one lab may have.
pub const MAX_TABS: usize = 20;
/// The directory an editor tab opens when it names none.
pub const DEFAULT_EDITOR_PATH: &str = "/root";
/// Longest tab title.
const MAX_TITLE: usize = 60;
/// Longest `path` or `url`.
const MAX_TARGET: usize = 2048;

/// Validates `raw`; the default tabs when it is absent.
pub(crate) fn tabs(
    raw: Option<Spanned<Vec<Spanned<RawTab>>>>,
    pg: &Playground,
    diags: &mut Diags,
) -> Vec<Tab> {
    let Some(raw) = raw else {
        return pg
            .nodes
            .iter()
            .map(|n| Tab {
                kind: TabKind::Terminal,
                node: Some(n.name.clone()),
                port: None,
                path: None,
                url: None,
                title: n.name.clone(),
            })
            .collect();
    };
    let Some(list) = raw.value else {
        return Vec::new();
    };
    if list.is_empty() {
        diags.push(
            raw.pos,
            "tabs is empty; list at least one tab, or leave tabs out for a terminal per node",
        );
    } else if list.len() > MAX_TABS {
        let n = list.len();
        diags.push(
            raw.pos,
            format!("the lab has {n} tabs; at most {MAX_TABS} are allowed"),
        );
    }
    list.into_iter().filter_map(|t| tab(t, pg, diags)).collect()
}

fn tab(raw: Spanned<RawTab>, pg: &Playground, diags: &mut Diags) -> Option<Tab> {
    let at = raw.pos;
    let raw = raw.value?;
    let kind = match raw.kind {
        None => {
            diags.push(
                at,
                "tab has no kind; write kind: terminal, service, editor or website",
            );
            None
        }
        Some(k) => k.value,
    };
    let title = field(raw.title).and_then(|(pos, t)| title(&t, pos, diags));
    // Without a kind (reported already) nothing else can be judged.
    let kind = kind?;
    let only = |what: &str| match what {
        "node" => "node is not allowed on website tabs: a website tab opens its url".to_owned(),
        "port" => format!("port is not allowed on {kind} tabs, only on service tabs"),
        "path" => format!(
            "path is not allowed on {kind} tabs, only on service tabs (a URL path) and \
             editor tabs (a directory)"
        ),
        _ => format!("url is not allowed on {kind} tabs, only on website tabs"),
    };
    let takes = |what: &str| match kind {
        TabKind::Terminal => what == "node",
        TabKind::Service => what != "url",
        TabKind::Editor => what == "node" || what == "path",
        TabKind::Website => what == "url",
    };
    let fields = [("node", &raw.node), ("path", &raw.path), ("url", &raw.url)];
    for (what, f) in fields {
        if let Some(f) = f.as_ref().filter(|_| !takes(what)) {
            diags.push(f.pos, only(what));
        }
    }
    if let Some(f) = raw.port.as_ref().filter(|_| !takes("port")) {
        diags.push(f.pos, only("port"));
    }

    let mut tab = Tab {
        kind,
        node: None,
        port: None,
        path: None,
        url: None,
        title: String::new(),
    };
    if kind != TabKind::Website {
        tab.node = Some(node(field(raw.node), pg, diags));
    }
    match kind {
        TabKind::Terminal => {}
        TabKind::Service => {
            tab.port = port(raw.port, at, diags);
            let path = field(raw.path).map_or_else(
                || "/".to_owned(),
                |(pos, p)| {
                    service_path(&p, pos, diags);
                    p
                },
            );
            tab.path = Some(path);
        }
        TabKind::Editor => {
            let path = field(raw.path).map_or_else(
                || DEFAULT_EDITOR_PATH.to_owned(),
                |(pos, p)| {
                    editor_path(&p, pos, diags);
                    p
                },
            );
            tab.path = Some(path);
        }
        TabKind::Website => match raw.url {
            None => diags.push(at, "a website tab needs a url (https://...)"),
            Some(Spanned { value: None, .. }) => {}
            Some(Spanned {
                value: Some(url),
                pos,
            }) => {
                website_url(&url, pos, diags);
                tab.url = Some(url.trim().to_owned());
            }
        },
    }
    tab.title = title.unwrap_or_else(|| default_title(&tab, pg));
    Some(tab)
}

fn title(text: &str, pos: Pos, diags: &mut Diags) -> Option<String> {
    let t = text.trim();
    if t.is_empty() || t.contains(['\n', '\r']) || t.chars().count() > MAX_TITLE {
        diags.push(
            pos,
            format!("a tab's title must be one line of 1 to {MAX_TITLE} characters"),
        );
        return None;
    }
    Some(t.to_owned())
}

/// The node a tab names, else the first; an unknown one is reported.
fn node(named: Option<(Pos, String)>, pg: &Playground, diags: &mut Diags) -> String {
    let Some((pos, name)) = named else {
        return pg
            .nodes
            .first()
            .map_or_else(String::new, |n| n.name.clone());
    };
    if !pg.nodes.iter().any(|n| n.name == name) {
        let names: Vec<_> = pg.nodes.iter().map(|n| n.name.as_str()).collect();
        diags.push(
            pos,
            format!(
                "tab names node {name:?}, which is not a node of the playground (nodes: {})",
                names.join(", ")
            ),
        );
    }
    name
}

fn port(raw: Option<Spanned<String>>, at: Pos, diags: &mut Diags) -> Option<u16> {
    let (pos, text) = match raw {
        None => {
            diags.push(at, "a service tab needs a port (1 to 65535)");
            return None;
        }
        Some(Spanned { value: None, .. }) => return None,
        Some(Spanned {
            value: Some(text),
            pos,
        }) => (pos, text),
    };
    match parse_port(&text) {
        Some(p) => Some(p),
        None => {
            diags.push(
                pos,
                format!("port {text:?} is not a whole number from 1 to 65535"),
            );
            None
        }
    }
}

/// A TCP port, `1..=65535`, written in decimal digits only.
pub(crate) fn parse_port(text: &str) -> Option<u16> {
    let t = text.trim();
    if t.is_empty() || t.len() > 5 || !t.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    t.parse::<u16>().ok().filter(|&p| p != 0)
}

/// No white space or control characters, at most [`MAX_TARGET`] bytes.
fn plain(text: &str) -> bool {
    text.len() <= MAX_TARGET && !text.chars().any(|c| c.is_whitespace() || c.is_control())
}

/// A service tab's path: a URL path (and query) starting with a single `/`.
pub(crate) fn is_service_path(path: &str) -> bool {
    path.starts_with('/') && !path.starts_with("//") && plain(path) && !path.contains('\\')
}

/// An editor tab's path: an absolute directory without `..`.
pub(crate) fn is_editor_path(path: &str) -> bool {
    path.starts_with('/')
        && !path.split('/').any(|s| s == "..")
        && path.len() <= 4096
        && !path.chars().any(char::is_control)
}

/// A website tab's URL: `http(s)://`, a host, no white space.
pub(crate) fn is_website_url(url: &str) -> bool {
    (url.starts_with("http://") || url.starts_with("https://"))
        && plain(url)
        && !url_host(url).is_empty()
}

fn service_path(path: &str, pos: Pos, diags: &mut Diags) {
    if !is_service_path(path) {
        diags.push(
            pos,
            format!(
                "path {path:?} is not a URL path: it must start with a single / (e.g. /admin), \
                 without spaces"
            ),
        );
    }
}

fn editor_path(path: &str, pos: Pos, diags: &mut Diags) {
    if !is_editor_path(path) {
        diags.push(
            pos,
            format!(
                "path {path:?} is not an absolute directory: it must start with / (e.g. \
                 /root/app) and may not use .."
            ),
        );
    }
}

fn website_url(url: &str, pos: Pos, diags: &mut Diags) {
    let url = url.trim();
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        diags.push(
            pos,
            format!("url {url:?} must start with http:// or https://"),
        );
    } else if !is_website_url(url) {
        diags.push(
            pos,
            format!("url {url:?} is not a web address (a host, and no spaces)"),
        );
    }
}

/// The host of an `http(s)://` URL: after the scheme and any `user@`, before a port,
/// path, query or fragment. Empty when there is none.
pub(crate) fn url_host(url: &str) -> &str {
    let rest = url.split_once("://").map_or("", |(_, r)| r);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    if let Some(v6) = host.strip_prefix('[') {
        return v6.split_once(']').map_or(v6, |(h, _)| h);
    }
    host.split(':').next().unwrap_or("")
}

fn default_title(tab: &Tab, pg: &Playground) -> String {
    let node = tab.node.as_deref().unwrap_or_default();
    match tab.kind {
        TabKind::Terminal => node.to_owned(),
        TabKind::Service => {
            let port = tab.port.map_or_else(String::new, |p| p.to_string());
            if pg.nodes.len() == 1 {
                format!("Port {port}")
            } else {
                format!("{node}:{port}")
            }
        }
        TabKind::Editor => "Editor".to_owned(),
        TabKind::Website => url_host(tab.url.as_deref().unwrap_or_default()).to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports() {
        assert_eq!(parse_port("80"), Some(80));
        assert_eq!(parse_port(" 65535 "), Some(65535));
        for bad in ["0", "65536", "-1", "+80", "8o", "", "0x50", "100000"] {
            assert_eq!(parse_port(bad), None, "{bad}");
        }
    }

    #[test]
    fn hosts() {
        assert_eq!(url_host("https://example.com/docs"), "example.com");
        assert_eq!(url_host("http://user:pw@example.com:8080?x"), "example.com");
        assert_eq!(url_host("https://[::1]:8443/"), "::1");
        assert_eq!(url_host("https://"), "");
        assert_eq!(url_host("https:///path"), "");
    }
}
