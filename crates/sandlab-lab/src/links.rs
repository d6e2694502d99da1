//! Links in the text: `port:` links, and references to the lab's own files.
//!
//! # Port links
//!
//! A link whose target is `port:PORT`, `port:NODE:PORT`, either followed by a `/path`, or
//! `port:select`, opens a port of a sandbox in a service tab (`port:select`: the list of
//! ports the sandbox listens on). It becomes
//! `<a class="sandlab-port" data-node="NODE" data-port="PORT" data-path="/PATH" href="#">`
//! (the node resolved to the first one when the link names none, the path `/` by default)
//! or `<a class="sandlab-port" data-select="" href="#">`. Like run buttons, these
//! attributes carry the render's nonce until the sanitiser checks and strips it, so raw
//! HTML cannot forge them (see `sanitize`).
//!
//! # Assets
//!
//! A relative `src` or `href` (`assets/x.png`, `./assets/x.png`) must name a file under
//! the lab's `assets/` directory, which the server serves: it is rewritten to
//! `/api/v1/labs/{slug}/assets/x.png`, each path segment percent-encoded. A relative
//! reference anywhere else, or leading out with `..`, is a problem; so is one naming a
//! file that does not exist, when the lab is loaded from its directory. Absolute URLs
//! (`https:`, `mailto:`, `/...`, `#...`, `?...`) are left alone.

use std::fs;
use std::path::Path;

use comrak::nodes::{AstNode, NodeValue};
use comrak::Arena;

use crate::markdown::{escape, file_line};
use crate::playground::is_hostname;
use crate::problem::{Diags, Pos};
use crate::tabs::parse_port;

/// The directory, under a lab's, whose files the text may reference and the server serves.
pub const ASSETS_DIR: &str = "assets";

/// What the links of a text are checked against.
#[derive(Clone, Copy, Debug)]
pub(crate) struct LinkContext<'a> {
    pub slug: &'a str,
    /// The lab's directory, when it is loaded from one: asset references must then name
    /// files that exist.
    pub dir: Option<&'a Path>,
    /// The playground's nodes in order; `None` when the front matter could not be read
    /// (port links are then not checked against them).
    pub nodes: Option<&'a [String]>,
}

impl LinkContext<'_> {
    fn first_node(&self) -> &str {
        self.nodes
            .and_then(|n| n.first())
            .map_or("", String::as_str)
    }
}

/// Where a `port:` link leads.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum PortTarget {
    /// The list of ports the sandbox listens on.
    Select,
    /// `node` is `None` when the link names none (the first node).
    Port {
        node: Option<String>,
        port: u16,
        path: String,
    },
}

/// Whether `url` is a `port:` link (the scheme in any case).
pub(crate) fn is_port_link(url: &str) -> bool {
    url.get(..5)
        .is_some_and(|s| s.eq_ignore_ascii_case("port:"))
}

/// Parses a `port:` link; `Err` says what is wrong with it.
pub(crate) fn parse_port_link(url: &str) -> Result<PortTarget, String> {
    let rest = url.get(5..).unwrap_or("");
    if rest == "select" {
        return Ok(PortTarget::Select);
    }
    let malformed = || {
        format!(
            "the port link {url:?} is not port:PORT, port:NODE:PORT or port:select (the first \
             two may end in a /path)"
        )
    };
    let (head, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let (node, port) = match head.split_once(':') {
        Some((node, port)) => (Some(node), port),
        None => (None, head),
    };
    if port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()) {
        return Err(malformed());
    }
    let Some(port) = parse_port(port) else {
        return Err(format!(
            "the port link {url:?} names port {port}, which is not from 1 to 65535"
        ));
    };
    if let Some(node) = node.filter(|n| !is_hostname(n)) {
        return Err(format!(
            "the port link {url:?} names node {node:?}, which is not a valid node name"
        ));
    }
    if path.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!(
            "the port link {url:?} has a path with spaces or control characters"
        ));
    }
    Ok(PortTarget::Port {
        node: node.map(str::to_owned),
        port,
        path: path.to_owned(),
    })
}

/// Whether `url` is a relative reference to a file: not empty, no scheme, not starting
/// with `/`, `\`, `#` or `?`.
pub(crate) fn is_relative(url: &str) -> bool {
    !url.is_empty() && !url.starts_with(['/', '\\', '#', '?']) && !has_scheme(url)
}

/// `scheme:` at the start, as URLs spell it (`https:`, `mailto:`, `port:`).
fn has_scheme(url: &str) -> bool {
    let Some((scheme, _)) = url.split_once(':') else {
        return false;
    };
    let mut bytes = scheme.bytes();
    bytes.next().is_some_and(|b| b.is_ascii_alphabetic())
        && bytes.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'))
}

/// The URL the server serves the relative reference `url` at, or why it cannot be
/// served (to follow "the image \"x\" ...").
pub(crate) fn asset_url(url: &str, ctx: &LinkContext<'_>) -> Result<String, String> {
    let split = url.find(['?', '#']).unwrap_or(url.len());
    let (path, suffix) = url.split_at(split);
    let mut segments = Vec::new();
    for raw in path.split('/') {
        match raw {
            "" | "." => {}
            ".." => {
                return Err(format!(
                    "leads out of the lab's {ASSETS_DIR}/ directory (\"..\" is not allowed)"
                ))
            }
            raw => {
                let segment = percent_decode(raw)
                    .filter(|s| !s.is_empty() && s != "." && s != "..")
                    .filter(|s| !s.contains(['/', '\\']) && !s.chars().any(char::is_control));
                match segment {
                    Some(s) => segments.push(s),
                    None => {
                        return Err(
                            "is not a valid file name (a bad %-escape, a slash or a control \
                             character)"
                                .to_owned(),
                        )
                    }
                }
            }
        }
    }
    if segments.first().map(String::as_str) != Some(ASSETS_DIR) {
        return Err(format!(
            "is a relative reference outside the lab's {ASSETS_DIR}/ directory; put the file \
             in {ASSETS_DIR}/ and write {ASSETS_DIR}/NAME, or use an absolute URL"
        ));
    }
    if segments.len() == 1 {
        return Err(format!(
            "names the {ASSETS_DIR}/ directory itself, not a file in it"
        ));
    }
    if let Some(dir) = ctx.dir {
        check_file(dir, &segments)?;
    }
    let mut out = format!("/api/v1/labs/{}", ctx.slug);
    for s in &segments {
        out.push('/');
        out.push_str(&percent_encode(s));
    }
    out.push_str(suffix);
    Ok(out)
}

/// Checks that `segments` (starting with `assets`) name a file inside `dir/assets`.
fn check_file(dir: &Path, segments: &[String]) -> Result<(), String> {
    let root = dir.join(ASSETS_DIR);
    let file = segments.iter().fold(dir.to_path_buf(), |p, s| p.join(s));
    let missing =
        || format!("names a file that does not exist in the lab's {ASSETS_DIR}/ directory");
    let meta = fs::metadata(&file).map_err(|_| missing())?;
    if !meta.is_file() {
        return Err("names a directory or a special file, not a regular file".to_owned());
    }
    let (Ok(real), Ok(real_root)) = (file.canonicalize(), root.canonicalize()) else {
        return Err(missing());
    };
    if !real.starts_with(real_root) {
        return Err(format!(
            "leads out of the lab's {ASSETS_DIR}/ directory through a symbolic link"
        ));
    }
    Ok(())
}

/// `%XX` escapes decoded; `None` for a malformed escape or bytes that are not UTF-8.
pub(crate) fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// Every byte but RFC 3986's unreserved characters as `%XX`.
pub(crate) fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Turns port links into their `<a>` elements and rewrites asset references, reporting
/// each bad one on its line (its URL is then emptied).
pub(crate) fn mark_links<'a>(
    arena: &'a Arena<'a>,
    root: &'a AstNode<'a>,
    first_line: usize,
    ctx: &LinkContext<'_>,
    nonce: &str,
    diags: &mut Diags,
) {
    let links: Vec<_> = root
        .descendants()
        .filter(|n| matches!(n.data().value, NodeValue::Link(_) | NodeValue::Image(_)))
        .collect();
    for node in links {
        let line = file_line(first_line, node.data().sourcepos.start.line);
        let mut ast = node.data_mut();
        let (is_image, link) = match &mut ast.value {
            NodeValue::Link(link) => (false, link),
            NodeValue::Image(link) => (true, link),
            _ => continue,
        };
        let kind = if is_image { "image" } else { "link" };
        if is_port_link(&link.url) {
            if is_image {
                let message = format!("the image {:?} cannot show a port; use a link", link.url);
                diags.push(Pos::line(line), message);
                link.url.clear();
                continue;
            }
            let open = match parse_port_link(&link.url) {
                Ok(target) => port_tag(&target, &link.title, ctx, nonce)
                    .map_err(|message| format!("the port link {:?} {message}", link.url)),
                Err(message) => Err(message),
            };
            match open {
                Ok(open) => {
                    drop(ast);
                    replace_with_tag(arena, node, open);
                }
                Err(message) => {
                    diags.push(Pos::line(line), message);
                    link.url.clear();
                }
            }
        } else if is_relative(&link.url) {
            match asset_url(&link.url, ctx) {
                Ok(url) => link.url = url,
                Err(reason) => {
                    diags.push(
                        Pos::line(line),
                        format!("the {kind} {:?} {reason}", link.url),
                    );
                    link.url.clear();
                }
            }
        }
    }
}

/// The opening `<a>` of a port link, its attributes prefixed by `nonce`; `Err` when it
/// names a node the playground does not have.
fn port_tag(
    target: &PortTarget,
    title: &str,
    ctx: &LinkContext<'_>,
    nonce: &str,
) -> Result<String, String> {
    let title = if title.is_empty() {
        String::new()
    } else {
        format!(" title=\"{}\"", escape(title))
    };
    let (node, port, path) = match target {
        PortTarget::Select => {
            return Ok(format!(
                "<a class=\"{nonce}sandlab-port\" data-select=\"{nonce}\" href=\"#\"{title}>"
            ))
        }
        PortTarget::Port { node, port, path } => (node.as_deref(), port, path),
    };
    let node = match (node, ctx.nodes) {
        (None, _) => ctx.first_node(),
        (Some(n), Some(nodes)) if !nodes.iter().any(|m| m == n) => {
            return Err(format!(
                "names node {n:?}, which is not a node of the playground (nodes: {})",
                nodes.join(", ")
            ))
        }
        (Some(n), _) => n,
    };
    Ok(format!(
        "<a class=\"{nonce}sandlab-port\" data-node=\"{nonce}{node}\" data-port=\"{nonce}{port}\" \
         data-path=\"{nonce}{}\" href=\"#\"{title}>",
        escape(path)
    ))
}

/// Replaces link `node` by raw `open`, its children, and `</a>`.
fn replace_with_tag<'a>(arena: &'a Arena<'a>, node: &'a AstNode<'a>, open: String) {
    let html = |s: String| arena.alloc(AstNode::from(NodeValue::HtmlInline(s)));
    node.insert_before(html(open));
    let children: Vec<_> = node.children().collect();
    for child in children {
        child.detach();
        node.insert_before(child);
    }
    node.insert_before(html("</a>".to_owned()));
    node.detach();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn port(node: Option<&str>, port: u16, path: &str) -> PortTarget {
        PortTarget::Port {
            node: node.map(str::to_owned),
            port,
            path: path.to_owned(),
        }
    }

    #[test]
    fn port_links() {
        assert_eq!(parse_port_link("port:80"), Ok(port(None, 80, "/")));
        assert_eq!(
            parse_port_link("port:node02:8080/admin?x=1"),
            Ok(port(Some("node02"), 8080, "/admin?x=1"))
        );
        assert_eq!(parse_port_link("PORT:443/"), Ok(port(None, 443, "/")));
        assert_eq!(parse_port_link("port:select"), Ok(PortTarget::Select));
        assert!(parse_port_link("port:0")
            .unwrap_err()
            .contains("not from 1 to 65535"));
        assert!(parse_port_link("port:70000")
            .unwrap_err()
            .contains("not from 1"));
        for bad in [
            "port:",
            "port:http",
            "port:a:b",
            "port:80:node01",
            "port:selected",
        ] {
            let e = parse_port_link(bad).unwrap_err();
            assert!(e.contains("is not port:PORT"), "{bad}: {e}");
        }
        assert!(parse_port_link("port:Node_1:80")
            .unwrap_err()
            .contains("not a valid node name"));
        assert!(is_port_link("Port:80") && !is_port_link("portal") && !is_port_link("po"));
    }

    #[test]
    fn relative_or_not() {
        for rel in ["assets/x.png", "./x", "x.png", "../x", "a:b/c", "a b"] {
            assert_eq!(is_relative(rel), !rel.starts_with("a:"), "{rel}");
        }
        for abs in [
            "",
            "/x",
            "//h/x",
            "\\\\h",
            "#top",
            "?q",
            "https://h",
            "mailto:a@b",
        ] {
            assert!(!is_relative(abs), "{abs}");
        }
    }

    #[test]
    fn asset_urls() {
        let ctx = LinkContext {
            slug: "web-lab",
            dir: None,
            nodes: None,
        };
        assert_eq!(
            asset_url("assets/x.png", &ctx).unwrap(),
            "/api/v1/labs/web-lab/assets/x.png"
        );
        assert_eq!(
            asset_url("./assets/my%20pics/ä b.png?v=2#top", &ctx).unwrap(),
            "/api/v1/labs/web-lab/assets/my%20pics/%C3%A4%20b.png?v=2#top"
        );
        for (bad, why) in [
            ("../assets/x.png", "leads out"),
            ("assets/../index.md", "leads out"),
            ("x.png", "outside the lab's assets/"),
            ("img/assets/x.png", "outside the lab's assets/"),
            ("assets/", "directory itself"),
            ("assets/%zz", "not a valid file name"),
            ("assets/a%2Fb", "not a valid file name"),
            ("assets/%2e%2e/x", "not a valid file name"),
        ] {
            let e = asset_url(bad, &ctx).unwrap_err();
            assert!(e.contains(why), "{bad}: {e}");
        }
    }

    #[test]
    fn asset_files_must_exist_inside_assets() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir_all(dir.path().join("assets/sub")).unwrap();
        fs::write(dir.path().join("assets/sub/a.png"), "png").unwrap();
        fs::write(dir.path().join("secret"), "no").unwrap();
        std::os::unix::fs::symlink(dir.path().join("secret"), dir.path().join("assets/out"))
            .unwrap();
        let ctx = LinkContext {
            slug: "l",
            dir: Some(dir.path()),
            nodes: None,
        };
        assert!(asset_url("assets/sub/a.png", &ctx).is_ok());
        let err = |u| asset_url(u, &ctx).unwrap_err();
        assert!(err("assets/sub/b.png").contains("does not exist"));
        assert!(err("assets/sub").contains("not a regular file"));
        assert!(err("assets/out").contains("symbolic link"));
    }
}
