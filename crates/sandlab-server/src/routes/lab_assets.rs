//! A lab's assets (`<lab>/assets/...`): the images and files its text refers to, served
//! to whoever may see the lab. The files come from lab authors (and Git repositories), so
//! they are opened confined to the assets directory (a symlink cannot lead out of it), and
//! nothing is served in a form that runs on the UI's origin: images as images, text as
//! plain text, SVG under a sandboxing policy, anything else as a download.

use std::io::Read;
use std::os::fd::AsFd;
use std::path::PathBuf;

use axum::extract::{Path, State};
use axum::http::header::{
    CACHE_CONTROL, CONTENT_DISPOSITION, CONTENT_SECURITY_POLICY, CONTENT_TYPE,
    X_CONTENT_TYPE_OPTIONS,
};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::routes::labs::visible_to;
use crate::state::AppState;

/// Largest asset served.
const MAX_ASSET: u64 = 32 << 20;
/// Every asset: no script, no plugin, a unique origin if rendered as a document at all.
const ASSET_CSP: &str =
    "default-src 'none'; img-src 'self' data:; style-src 'unsafe-inline'; sandbox";

/// The content type for a file name, and whether it must be a download.
pub fn content_type(name: &str) -> (&'static str, bool) {
    let ext = name
        .rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase())
        .unwrap_or_default();
    match ext.as_str() {
        "png" => ("image/png", false),
        "jpg" | "jpeg" => ("image/jpeg", false),
        "gif" => ("image/gif", false),
        "webp" => ("image/webp", false),
        "avif" => ("image/avif", false),
        "ico" => ("image/x-icon", false),
        "bmp" => ("image/bmp", false),
        // Scripts in an SVG run only when it is opened as a document; the policy above
        // (sandbox, no script source) stops them then too.
        "svg" => ("image/svg+xml", false),
        "mp4" => ("video/mp4", false),
        "webm" => ("video/webm", false),
        "mp3" => ("audio/mpeg", false),
        "ogg" => ("audio/ogg", false),
        "wav" => ("audio/wav", false),
        "txt" | "md" | "log" | "csv" | "json" | "yaml" | "yml" | "toml" | "sh" | "py" | "go"
        | "rs" | "c" | "h" | "js" | "ts" | "conf" | "ini" | "sql" | "xml" => {
            ("text/plain; charset=utf-8", false)
        }
        _ => ("application/octet-stream", true),
    }
}

/// The lab directory (of the configured ones) a lab was loaded from: the first that has
/// it, as the catalogue takes the first lab of a slug. Only the configured directory is
/// trusted: everything below it is opened confined to it.
fn labs_root(state: &AppState, slug: &str) -> Option<PathBuf> {
    state
        .config()
        .lab_dirs()
        .into_iter()
        .find(|d| d.join(slug).join("index.md").is_file())
}

/// A file of a lab's `assets/` directory.
#[utoipa::path(get, path = "/api/v1/labs/{slug}/assets/{path}", tag = "labs",
    params(("slug" = String, Path, description = "Lab slug"), ("path" = String, Path, description = "Path below the lab's assets/ directory")),
    responses((status = 200, content_type = "application/octet-stream", body = Vec<u8>), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 413, body = ErrorBody)))]
pub async fn lab_asset(
    State(state): State<AppState>,
    caller: Caller,
    Path((slug, path)): Path<(String, String)>,
) -> ApiResult<Response> {
    let labs = state.labs();
    let orgs = crate::routes::caller_orgs(&state, &caller).await?;
    if !labs
        .iter()
        .any(|l| l.slug == slug && visible_to(l, &caller, &orgs))
    {
        return Err(ApiError::not_found("lab"));
    }
    let bad = || ApiError::not_found("asset");
    if path.is_empty()
        || path.len() > 1024
        || path.contains('\0')
        || path
            .split('/')
            .any(|c| c.is_empty() || c == "." || c == "..")
    {
        return Err(bad());
    }
    let root = labs_root(&state, &slug).ok_or_else(bad)?;
    // Opened below the configured labs directory, never through a symlinked lab or
    // `assets` (a Git-sourced lab may commit `assets -> /`), then confined to `assets/`.
    let rel = path.clone();
    let slug = slug.clone();
    let read = tokio::task::spawn_blocking(move || -> std::io::Result<Vec<u8>> {
        use sandlab_image::confined;
        let root = confined::open_root(&root)?;
        // The lab and its `assets` must be directories themselves, not symlinks (which,
        // resolved inside the labs directory, could name another lab's files).
        for dir in [slug.as_str(), &format!("{slug}/assets")] {
            let st = confined::lstat_in_root(root.as_fd(), std::path::Path::new(dir))?;
            if st.st_mode & libc::S_IFMT != libc::S_IFDIR {
                return Err(std::io::Error::from(std::io::ErrorKind::NotFound));
            }
        }
        let assets = confined::open_in_root(
            root.as_fd(),
            std::path::Path::new(&format!("{slug}/assets")),
            libc::O_PATH | libc::O_DIRECTORY,
            0,
        )?;
        let fd = confined::open_in_root(
            assets.as_fd(),
            std::path::Path::new(&rel),
            libc::O_RDONLY,
            0,
        )?;
        let mut file = std::fs::File::from(fd);
        let meta = file.metadata()?;
        if !meta.is_file() {
            return Err(std::io::Error::from(std::io::ErrorKind::NotFound));
        }
        if meta.len() > MAX_ASSET {
            return Err(std::io::Error::from(std::io::ErrorKind::FileTooLarge));
        }
        let mut data = Vec::with_capacity(meta.len() as usize);
        file.by_ref().take(MAX_ASSET + 1).read_to_end(&mut data)?;
        Ok(data)
    })
    .await
    .map_err(|_| bad())?;
    let data = match read {
        Ok(d) if d.len() as u64 <= MAX_ASSET => d,
        Ok(_) => return Err(too_large()),
        Err(e) if e.kind() == std::io::ErrorKind::FileTooLarge => return Err(too_large()),
        Err(_) => return Err(bad()),
    };
    let name = path.rsplit('/').next().unwrap_or("asset");
    let (ctype, download) = content_type(name);
    let mut resp = (
        [
            (CONTENT_TYPE, ctype.to_owned()),
            (X_CONTENT_TYPE_OPTIONS, "nosniff".to_owned()),
            (CONTENT_SECURITY_POLICY, ASSET_CSP.to_owned()),
            (CACHE_CONTROL, "private, max-age=300".to_owned()),
        ],
        data,
    )
        .into_response();
    if download {
        let safe: String = name
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
            .take(120)
            .collect();
        if let Ok(v) = format!("attachment; filename=\"{safe}\"").parse() {
            resp.headers_mut().insert(CONTENT_DISPOSITION, v);
        }
    }
    Ok(resp)
}

fn too_large() -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "too_large",
        "The asset is larger than 32 MiB, the most the server serves.",
    )
}

#[cfg(test)]
mod tests {
    use super::content_type;

    #[test]
    fn nothing_is_served_as_a_page() {
        assert_eq!(content_type("a.PNG"), ("image/png", false));
        assert_eq!(
            content_type("notes.md"),
            ("text/plain; charset=utf-8", false)
        );
        for page in ["x.html", "x.htm", "x.xhtml", "x.pdf", "x", "x.mjs.exe"] {
            assert_eq!(
                content_type(page),
                ("application/octet-stream", true),
                "{page}"
            );
        }
    }
}
