//! The web UI's files: `web/dist` embedded at build time (`build.rs`), or read from
//! `server.web_dir` (`SANDLAB_WEB_DIR`) when set, so a UI rebuild needs no new binary.
//!
//! Routing: `/assets/<file>` is a file (hashed names, cached for a year); every other
//! `GET` that a browser sends for a page (`Accept: text/html`) answers `index.html`, and
//! the client-side router draws the page; anything else is the JSON 404. Pages carry a
//! Content-Security-Policy that allows only this origin's scripts and connections.

use std::path::{Path, PathBuf};

use axum::body::Body;
use axum::http::header::{
    ACCEPT, ACCEPT_ENCODING, CACHE_CONTROL, CONTENT_ENCODING, CONTENT_SECURITY_POLICY,
    CONTENT_TYPE, REFERRER_POLICY, VARY, X_CONTENT_TYPE_OPTIONS, X_FRAME_OPTIONS,
};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;

/// One embedded file of `web/dist`.
pub struct Asset {
    /// Relative to `web/dist`, with `/` separators.
    pub path: &'static str,
    pub body: &'static [u8],
    /// The same bytes gzipped, for text files.
    pub gzip: Option<&'static [u8]>,
}

include!(concat!(env!("OUT_DIR"), "/web_assets.rs"));

/// Frames: a lab's service tabs show a sandbox's port from the proxy's origin, website tabs
/// any page; both are other origins, isolated from this one by the browser.
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
    img-src 'self' data: https:; font-src 'self' data:; connect-src 'self'; object-src 'none'; \
    frame-src http: https:; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";
const IMMUTABLE: &str = "public, max-age=31536000, immutable";
/// Longest path below the web root that is looked up at all.
const MAX_PATH: usize = 256;

/// Whether this binary carries the web UI.
pub fn embedded() -> bool {
    ASSETS.iter().any(|a| a.path == "index.html")
}

/// Answers a request no API route took: a UI file, the UI's page, or the JSON 404.
pub async fn serve(
    dir: Option<&Path>,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
) -> Response {
    if method != Method::GET && method != Method::HEAD {
        return not_found();
    }
    let path = uri.path();
    if let Some(rel) = path.strip_prefix("/assets/") {
        return match file(dir, &format!("assets/{rel}"), headers).await {
            Some(r) => r,
            None => not_found(),
        };
    }
    if !wants_html(headers) {
        return not_found();
    }
    match file(dir, "index.html", headers).await {
        Some(r) => r,
        None => not_built(),
    }
}

async fn file(dir: Option<&Path>, rel: &str, headers: &HeaderMap) -> Option<Response> {
    if !safe_relative(rel) {
        return None;
    }
    let (body, gzip): (Body, bool) = match dir {
        Some(dir) => (
            Body::from(tokio::fs::read(dir.join(rel)).await.ok()?),
            false,
        ),
        None => {
            let a = ASSETS.iter().find(|a| a.path == rel)?;
            match a.gzip {
                Some(gz) if accepts_gzip(headers) => (Body::from(gz), true),
                _ => (Body::from(a.body), false),
            }
        }
    };
    let mut resp = (StatusCode::OK, body).into_response();
    let h = resp.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static(content_type(rel)));
    h.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(VARY, HeaderValue::from_static("accept-encoding"));
    if gzip {
        h.insert(CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    }
    if rel == "index.html" {
        h.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        h.insert(CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
        h.insert(X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
        h.insert(REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    } else if dir.is_none() {
        h.insert(CACHE_CONTROL, HeaderValue::from_static(IMMUTABLE));
    } else {
        h.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    }
    Some(resp)
}

/// `assets/app-X1.js`: plain names only, so a request can never name a path outside the
/// web root, whatever the root holds.
fn safe_relative(rel: &str) -> bool {
    rel.len() <= MAX_PATH
        && rel.split('/').all(|seg| {
            !seg.is_empty()
                && !seg.starts_with('.')
                && seg
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
        })
}

fn wants_html(headers: &HeaderMap) -> bool {
    headers
        .get(ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/html"))
}

fn accepts_gzip(headers: &HeaderMap) -> bool {
    headers
        .get_all(ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|e| {
            let mut parts = e.split(';');
            let name = parts.next().unwrap_or("").trim();
            let refused = parts.any(|p| matches!(p.trim(), "q=0" | "q=0.0" | "q=0.00" | "q=0.000"));
            (name == "gzip" || name == "*") && !refused
        })
}

fn content_type(rel: &str) -> &'static str {
    match rel.rsplit('.').next().unwrap_or("") {
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "json" | "map" => "application/json",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "woff2" => "font/woff2",
        "txt" => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

fn not_found() -> Response {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "not_found",
        "There is nothing at this address.",
    )
    .into_response()
}

fn not_built() -> Response {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        [(CONTENT_TYPE, "text/plain; charset=utf-8")],
        "This sandlab binary was built without its web UI: run `npm ci && npm run build` in \
         web/ and build again (scripts/setup.sh does both), or point SANDLAB_WEB_DIR at a \
         built web/dist.\n",
    )
        .into_response()
}

/// The configured web root, when it looks like a built UI.
pub fn check_dir(dir: &Path) -> Result<PathBuf, String> {
    let index = dir.join("index.html");
    if index.is_file() {
        Ok(dir.to_path_buf())
    } else {
        Err(format!(
            "{} has no index.html; build the UI with `npm run build` in web/",
            dir.display()
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_relative_names_are_looked_up() {
        assert!(safe_relative("assets/app-X1.js"));
        assert!(safe_relative("index.html"));
        for bad in [
            "../etc/passwd",
            "assets/../../x",
            "assets//x",
            "/etc/passwd",
            "assets/.hidden",
            "assets/a%2f..",
            "assets/a\\b",
            "assets/\0",
        ] {
            assert!(!safe_relative(bad), "{bad:?} was accepted");
        }
        assert!(!safe_relative(&"a".repeat(MAX_PATH + 1)));
    }

    #[test]
    fn gzip_is_sent_only_when_accepted() {
        let mut h = HeaderMap::new();
        assert!(!accepts_gzip(&h));
        h.insert(
            ACCEPT_ENCODING,
            HeaderValue::from_static("deflate, gzip;q=0.8, br"),
        );
        assert!(accepts_gzip(&h));
        h.insert(
            ACCEPT_ENCODING,
            HeaderValue::from_static("gzip;q=0, identity"),
        );
        assert!(!accepts_gzip(&h));
        h.insert(ACCEPT_ENCODING, HeaderValue::from_static("gzipx"));
        assert!(!accepts_gzip(&h));
    }

    #[test]
    fn content_types_by_extension() {
        assert_eq!(
            content_type("assets/app-1.js"),
            "text/javascript; charset=utf-8"
        );
        assert_eq!(content_type("index.html"), "text/html; charset=utf-8");
        assert_eq!(content_type("assets/x"), "application/octet-stream");
    }
}
