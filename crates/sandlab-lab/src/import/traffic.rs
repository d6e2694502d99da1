//! Killercoda's traffic placeholders: `{{TRAFFIC_HOSTn_PORT}}` (port PORT of the n-th
//! host, which is the playground's n-th node) and `{{TRAFFIC_SELECTOR}}` (the list of
//! ports), to `port:` links. See [`super::links`] for the forms.

use super::links::At;
use super::scan::{definition_at, in_tag};
use crate::tabs::parse_port;

/// A Killercoda traffic placeholder.
enum Traffic {
    Selector,
    Host { host: usize, port: String },
}

/// The placeholder `text` starts with, and its length.
fn placeholder(text: &str) -> Option<(Traffic, usize)> {
    let end = text.get(..64.min(text.len())).unwrap_or(text).find("}}")?;
    let inner = text[2..end].trim();
    let found = if inner == "TRAFFIC_SELECTOR" {
        Traffic::Selector
    } else {
        let (host, port) = inner.strip_prefix("TRAFFIC_HOST")?.split_once('_')?;
        let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        if !digits(host) || !digits(port) {
            return None;
        }
        Traffic::Host {
            host: host.parse().ok()?,
            port: port.to_owned(),
        }
    };
    Some((found, end + 2))
}

impl Traffic {
    /// The `port:` link for this placeholder followed by `path`.
    fn url(&self, path: &str, nodes: &[String]) -> Result<String, String> {
        let Traffic::Host { host, port } = self else {
            return Ok("port:select".to_owned());
        };
        let node = host
            .checked_sub(1)
            .and_then(|i| nodes.get(i))
            .ok_or_else(|| {
                format!(
                    "it names host {host}, but the playground has {} node(s)",
                    nodes.len()
                )
            })?;
        let port = parse_port(port).ok_or_else(|| format!("port {port} is not from 1 to 65535"))?;
        let slash = if path.is_empty() || path.starts_with('/') {
            ""
        } else {
            "/"
        };
        Ok(format!("port:{node}:{port}{slash}{path}"))
    }

    fn label(&self, path: &str, bare: bool) -> String {
        match (self, bare) {
            (Traffic::Selector, _) => "Open a port".to_owned(),
            (Traffic::Host { port, .. }, true) => format!("Open port {port}"),
            (Traffic::Host { port, .. }, false) => format!("port {port}{path}"),
        }
    }
}

/// Killercoda's traffic placeholders in `line[from..to]` (no code in it) to `port:`
/// links; `dests` are the line's link targets.
pub(super) fn traffic(
    line: &str,
    (from, to): (usize, usize),
    dests: &[(usize, usize, bool)],
    at: &mut At<'_>,
) -> String {
    let text = &line[from..to];
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while let Some(off) = text[i..].find("{{") {
        let start = i + off;
        out.push_str(&text[i..start]);
        let Some((found, len)) = placeholder(&text[start..]) else {
            out.push_str("{{");
            i = start + 2;
            continue;
        };
        let written = &text[start..start + len];
        let after = start + len;
        let path_len = text[after..]
            .find(|c: char| {
                c.is_whitespace() || matches!(c, ')' | ']' | '<' | '>' | '"' | '\'' | '`')
            })
            .unwrap_or(text.len() - after);
        let path = &text[after..after + path_len];
        let prefix = &text[..start];
        let url = found.url(path, &at.refs.nodes);
        let unmapped = |why: &str| format!("{written} is not mapped: {why}");
        if dests
            .iter()
            .any(|&(s, e, _)| s < from + start && from + start < e)
        {
            // Inside a target after something else: no port link can come of it.
            at.note(unmapped("it is in the middle of a link's target"));
            out.push_str(written);
            i = after;
        } else if prefix.ends_with("](")
            || prefix.ends_with("](<")
            || definition_at(prefix).is_some()
        {
            match url {
                Ok(url) => out.push_str(&url),
                Err(why) => at.dropped(format!("{}; the link goes nowhere", unmapped(&why))),
            }
            i = after + path_len;
        } else if in_tag(prefix) {
            at.dropped(format!(
                "{written} in an HTML attribute is not mapped (write a Markdown link); it is removed"
            ));
            i = after + path_len;
        } else if let (true, Some(end), Ok(url)) = (
            prefix.ends_with('['),
            link_end(&text[after + path_len..]),
            &url,
        ) {
            // `[{{TRAFFIC_HOST1_80}}/x](...)`: the whole link goes to the port.
            out.pop();
            out.push_str(&format!("[{}]({url})", found.label(path, false)));
            i = after + path_len + end;
        } else {
            let path = path.trim_end_matches(['.', ',', ';', ':', '!', '?']);
            match found.url(path, &at.refs.nodes) {
                Ok(url) => out.push_str(&format!("[{}]({url})", found.label(path, true))),
                Err(why) => {
                    at.note(format!("{}; it is kept as text", unmapped(&why)));
                    out.push_str(written);
                    out.push_str(path);
                }
            }
            i = after + path.len();
        }
    }
    out.push_str(&text[i..]);
    out
}

/// The length of `](dest ...)` at the start of `rest`, when it is one.
fn link_end(rest: &str) -> Option<usize> {
    let inner = rest.strip_prefix("](")?;
    let mut depth = 0usize;
    let mut escaped = false;
    for (i, c) in inner.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            '(' => depth += 1,
            ')' if depth == 0 => return Some(2 + i + 1),
            ')' => depth -= 1,
            _ => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders() {
        let (p, len) = placeholder("{{TRAFFIC_HOST2_8080}}/x").unwrap();
        assert_eq!(len, 22);
        let nodes = vec!["controlplane".to_owned(), "node01".to_owned()];
        assert_eq!(p.url("/x", &nodes).unwrap(), "port:node01:8080/x");
        assert_eq!(p.url("?q", &nodes).unwrap(), "port:node01:8080/?q");
        let (p, _) = placeholder("{{ TRAFFIC_HOST3_80 }}").unwrap();
        assert!(p.url("", &nodes).unwrap_err().contains("host 3"));
        let (p, _) = placeholder("{{TRAFFIC_HOST1_99999}}").unwrap();
        assert!(p.url("", &nodes).is_err());
        assert!(matches!(
            placeholder("{{TRAFFIC_SELECTOR}}"),
            Some((Traffic::Selector, 20))
        ));
        assert!(placeholder("{{TRAFFIC_HOSTX_Y}}").is_none());
        assert!(placeholder("{{exec}}").is_none());
    }

    #[test]
    fn link_ends() {
        assert_eq!(link_end("](http://x/(a)) y"), Some(15));
        assert_eq!(link_end("] (x)"), None);
    }
}
