//! The one gate between a lab's text and the browser: ammonia, told about Sandlab's own
//! elements.
//!
//! Beyond ammonia's defaults it keeps only these attributes, each in its exact form:
//! `data-exec` on `<pre>`, `class="language-…"` on `<code>`, `class="sandlab-task"` with
//! `data-task` (a task id) on `<div>`, and a port link's `class="sandlab-port"`,
//! `data-node`, `data-port`, `data-path` and `data-select` on `<a>`. `data-exec` and the
//! port link attributes survive only on the elements the renderer made: they carry the
//! render's random nonce, which is checked and stripped here, so raw HTML in a lab can
//! neither fake a run button whose command differs from the text it shows nor dress up a
//! link as a port link.
//!
//! Relative `src` and `href` values that raw HTML writes go through
//! [`crate::links::asset_url`] like Markdown's: rewritten when they name an asset,
//! dropped (and reported) otherwise. Schemes ammonia does not know, `port:` among them,
//! are dropped by ammonia.

use std::borrow::Cow;
use std::cell::RefCell;
use std::path::PathBuf;
use std::sync::LazyLock;

use crate::links::{asset_url, is_relative, LinkContext};
use crate::model::TaskId;
use crate::playground::is_hostname;
use crate::tabs::parse_port;

/// One sanitising pass on this thread: what the attribute filter and the URL rewriter
/// need, and what they found.
struct Pass {
    nonce: String,
    slug: String,
    dir: Option<PathBuf>,
    /// `(value as written, problem)` for each raw HTML reference refused.
    refused: Vec<(String, String)>,
}

thread_local! {
    /// The pass in progress on this thread; `None` outside [`clean`].
    static PASS: RefCell<Option<Pass>> = const { RefCell::new(None) };
}

/// Sanitises `html`, whose own elements carry `nonce`. Returns the safe HTML and, for each
/// relative reference in raw HTML that names no asset, `(value, problem)`.
pub(crate) fn clean(
    html: &str,
    nonce: &str,
    ctx: &LinkContext<'_>,
) -> (String, Vec<(String, String)>) {
    let pass = Pass {
        nonce: nonce.to_owned(),
        slug: ctx.slug.to_owned(),
        dir: ctx.dir.map(PathBuf::from),
        refused: Vec::new(),
    };
    PASS.with(|p| *p.borrow_mut() = Some(pass));
    let safe = SANITIZER.clean(html).to_string();
    let refused = PASS
        .with(|p| p.borrow_mut().take())
        .map(|p| p.refused)
        .unwrap_or_default();
    (safe, refused)
}

/// `value` without the pass's nonce; `None` when it does not start with it.
fn ours(value: &str) -> Option<&str> {
    PASS.with(|p| {
        let pass = p.borrow();
        let nonce = pass.as_ref()?.nonce.as_str();
        // An empty nonce would let anything through.
        if nonce.is_empty() {
            return None;
        }
        value.strip_prefix(nonce)
    })
}

/// The value our attribute `attribute` of `element` keeps, or `None` to drop it.
fn our_attribute<'v>(element: &str, attribute: &str, value: &'v str) -> Option<Option<&'v str>> {
    let checked = match (element, attribute) {
        ("pre", "data-exec") => {
            ours(value).filter(|id| !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit()))
        }
        ("a", "class") => ours(value).filter(|v| *v == "sandlab-port"),
        ("a", "data-node") => ours(value).filter(|v| is_hostname(v)),
        ("a", "data-port") => ours(value).filter(|v| parse_port(v).is_some()),
        ("a", "data-path") => ours(value).filter(|v| v.starts_with('/')),
        ("a", "data-select") => ours(value).filter(|v| v.is_empty()),
        _ => return None,
    };
    Some(checked)
}

/// A relative URL in raw HTML: an asset's URL, kept as it is when it is not a reference
/// to a file, or `None` (recorded) when it names no asset.
fn relative_url(url: &str) -> Option<Cow<'_, str>> {
    // As a browser reads it: surrounding spaces and controls, and tabs and newlines
    // anywhere, do not count.
    let trimmed: String = url
        .trim_matches(|c: char| c <= ' ')
        .chars()
        .filter(|c| !matches!(c, '\t' | '\n' | '\r'))
        .collect();
    if !is_relative(&trimmed) {
        return Some(Cow::Borrowed(url));
    }
    PASS.with(|p| {
        let mut pass = p.borrow_mut();
        let pass = pass.as_mut()?;
        let ctx = LinkContext {
            slug: &pass.slug,
            dir: pass.dir.as_deref(),
            nodes: None,
        };
        match asset_url(&trimmed, &ctx) {
            Ok(rewritten) => Some(Cow::Owned(rewritten)),
            Err(reason) => {
                let problem = format!("the HTML reference {trimmed:?} {reason}");
                pass.refused.push((url.to_owned(), problem));
                None
            }
        }
    })
}

static SANITIZER: LazyLock<ammonia::Builder<'static>> = LazyLock::new(|| {
    let mut b = ammonia::Builder::default();
    b.add_tag_attributes("pre", &["data-exec"])
        .add_tag_attributes("code", &["class"])
        .add_tag_attributes("div", &["class", "data-task"])
        .add_tag_attributes(
            "a",
            &[
                "class",
                "data-node",
                "data-port",
                "data-path",
                "data-select",
            ],
        )
        .url_relative(ammonia::UrlRelative::Custom(Box::new(relative_url)))
        .attribute_filter(|element, attribute, value| {
            if let Some(kept) = our_attribute(element, attribute, value) {
                return kept.map(Cow::Borrowed);
            }
            let keep = match (element, attribute) {
                ("code", "class") => value.strip_prefix("language-").is_some_and(is_language),
                ("div", "class") => value == "sandlab-task",
                ("div", "data-task") => TaskId::new(value).is_ok(),
                _ => true,
            };
            keep.then_some(Cow::Borrowed(value))
        });
    b
});

/// A fenced block's language as a class name may hold it.
pub(crate) fn is_language(lang: &str) -> bool {
    (1..=32).contains(&lang.len())
        && lang
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'+' | b'.' | b'#' | b'-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> LinkContext<'static> {
        LinkContext {
            slug: "lab",
            dir: None,
            nodes: None,
        }
    }

    #[test]
    fn only_nonced_port_attributes_survive() {
        let html = "<a class=\"N-sandlab-port\" data-node=\"N-web\" data-port=\"N-80\" \
                    data-path=\"N-/x\" href=\"#\">ok</a>\
                    <a class=\"sandlab-port\" data-node=\"web\" data-port=\"80\" href=\"#\">forged</a>\
                    <a class=\"N-sandlab-port\" data-port=\"N-0\" data-select=\"N-x\">bad</a>";
        let (safe, refused) = clean(html, "N-", &ctx());
        assert!(refused.is_empty());
        let links: Vec<&str> = safe.split_inclusive("</a>").collect();
        assert_eq!(
            links[0],
            "<a class=\"sandlab-port\" data-node=\"web\" data-port=\"80\" data-path=\"/x\" \
             href=\"#\" rel=\"noopener noreferrer\">ok</a>"
        );
        // Without the nonce, or with bad values, the attributes go (ammonia may reorder
        // the ones that stay).
        assert!(!links[1].contains("sandlab-port") && !links[1].contains("data-"));
        assert_eq!(
            links[2],
            "<a class=\"sandlab-port\" rel=\"noopener noreferrer\">bad</a>"
        );
        // Outside a pass (no nonce) nothing of ours is kept.
        let (safe, _) = clean("<pre data-exec=\"0\">x</pre>", "", &ctx());
        assert_eq!(safe, "<pre>x</pre>");
    }

    #[test]
    fn raw_html_references() {
        let html = "<img src=\"assets/a b.png\"><img src=\" ./x.png\"><a href=\"port:80\">p</a>\
                    <a href=\"#top\">t</a><img src=\"/logo.png\">";
        let (safe, refused) = clean(html, "N-", &ctx());
        assert_eq!(
            safe,
            "<img src=\"/api/v1/labs/lab/assets/a%20b.png\"><img>\
             <a rel=\"noopener noreferrer\">p</a>\
             <a href=\"#top\" rel=\"noopener noreferrer\">t</a><img src=\"/logo.png\">"
        );
        assert_eq!(refused.len(), 1);
        assert_eq!(refused[0].0, " ./x.png");
        assert!(refused[0]
            .1
            .starts_with("the HTML reference \"./x.png\" is a relative"));
    }
}
