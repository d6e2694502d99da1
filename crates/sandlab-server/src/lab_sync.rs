//! Labs published from Git: a `--labs` entry that is a repository URL is cloned into the
//! data dir, and every lab directory that is a Git work tree (those clones, or a local
//! clone an operator names) is brought up to date on an interval
//! (`server.labs_sync_interval`) and when a forge's webhook calls
//! `POST /api/v1/labs/sync`. The catalogue watcher then sees the changed files and
//! reloads; a lab that no longer validates is shown to authors and admins with its
//! problems, and the others stay served.
//!
//! Repositories are operator configuration, their content is not: it goes through lab
//! validation like any lab, and git runs with hooks off, no submodules and no prompts. A
//! sync resets Sandlab's own (shallow) clones to the remote's branch, and only
//! fast-forwards an operator's clone (local commits or edits fail the sync instead).

use std::path::{Path, PathBuf};
use std::time::Duration;

use sha2::{Digest, Sha256};
use tokio::process::Command;

/// Longest one git command may take.
const GIT_TIMEOUT: Duration = Duration::from_secs(120);

/// Whether a `--labs` entry names a Git repository rather than a directory.
pub fn is_git_url(entry: &str) -> bool {
    ["https://", "http://", "ssh://", "git://", "file://", "git@"]
        .iter()
        .any(|p| entry.starts_with(p))
}

/// Where the clone of `url` lives under `data_dir`.
pub fn clone_dir(data_dir: &Path, url: &str) -> PathBuf {
    let digest = Sha256::digest(url.as_bytes());
    data_dir.join("labs-git").join(hex::encode(&digest[..8]))
}

fn git(dir: Option<&Path>) -> Command {
    let mut cmd = Command::new("git");
    if let Some(d) = dir {
        cmd.arg("-C").arg(d);
    }
    // No hooks from anywhere, no credential prompts, no pager.
    cmd.args([
        "-c",
        "core.hooksPath=/dev/null",
        "-c",
        "advice.detachedHead=false",
    ])
    .env("GIT_TERMINAL_PROMPT", "0")
    .env("GIT_ASKPASS", "/bin/false")
    .env("GIT_PAGER", "cat")
    .stdin(std::process::Stdio::null())
    .kill_on_drop(true);
    cmd
}

async fn run(what: &str, mut cmd: Command) -> Result<(), String> {
    let out = tokio::time::timeout(GIT_TIMEOUT, cmd.output())
        .await
        .map_err(|_| format!("{what} took longer than {}s", GIT_TIMEOUT.as_secs()))?
        .map_err(|e| format!("cannot run git for {what}: {e}"))?;
    if out.status.success() {
        return Ok(());
    }
    let err = String::from_utf8_lossy(&out.stderr);
    let last = err
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("");
    Err(format!("{what} failed: {}", last.trim()))
}

/// Makes sure `url` is cloned at `dir` (a shallow clone of its default branch).
pub async fn ensure_clone(url: &str, dir: &Path) -> Result<(), String> {
    if dir.join(".git").exists() {
        return Ok(());
    }
    if let Some(parent) = dir.parent() {
        std::fs::create_dir_all(parent)
            .map_err(|e| format!("cannot make {}: {e}", parent.display()))?;
    }
    // Clone next to it, then move into place: a half clone is never taken for a clone.
    let partial = dir.with_extension("partial");
    let _ = std::fs::remove_dir_all(&partial);
    let mut cmd = git(None);
    cmd.args([
        "clone",
        "--depth",
        "1",
        "--no-recurse-submodules",
        "--",
        url,
    ])
    .arg(&partial);
    run(&format!("cloning {url}"), cmd).await?;
    std::fs::rename(&partial, dir)
        .map_err(|e| format!("cannot move the clone of {url} into place: {e}"))
}

/// Whether `dir` is a clone Sandlab made (under `<data>/labs-git`), which it may reset.
fn ours(dir: &Path) -> bool {
    dir.parent()
        .and_then(|p| p.file_name())
        .is_some_and(|n| n == "labs-git")
}

/// Brings one work tree up to its remote branch. A clone of ours (shallow) is reset to
/// what was fetched; an operator's clone is only fast-forwarded, so their local commits
/// or edits make the sync fail rather than vanish.
pub async fn sync_one(dir: &Path) -> Result<(), String> {
    let shallow = ours(dir);
    let mut fetch = git(Some(dir));
    fetch.args(["fetch", "--no-recurse-submodules"]);
    if shallow {
        fetch.args(["--depth", "1"]);
    }
    fetch.arg("origin");
    run(&format!("fetching {}", dir.display()), fetch).await?;
    let mut update = git(Some(dir));
    if shallow {
        update.args(["reset", "--hard", "-q", "FETCH_HEAD"]);
    } else {
        update.args(["merge", "--ff-only", "-q", "FETCH_HEAD"]);
    }
    run(&format!("updating {}", dir.display()), update).await
}

/// The lab directories that are Git work trees.
pub fn repos(dirs: &[PathBuf]) -> Vec<PathBuf> {
    dirs.iter()
        .filter(|d| d.join(".git").exists())
        .cloned()
        .collect()
}

/// Syncs every work tree among `dirs`; each directory with its outcome.
pub async fn sync_all(dirs: &[PathBuf]) -> Vec<(PathBuf, Result<(), String>)> {
    let mut out = Vec::new();
    for dir in repos(dirs) {
        let r = sync_one(&dir).await;
        if let Err(e) = &r {
            tracing::warn!(dir = %dir.display(), "lab sync: {e}");
        }
        out.push((dir, r));
    }
    out
}

/// Syncs every `interval` until `stop` (nothing to do when no lab dir is a repository).
pub fn spawn(dirs: Vec<PathBuf>, interval: Duration, stop: tokio_util::sync::CancellationToken) {
    if interval.is_zero() || repos(&dirs).is_empty() {
        return;
    }
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = tokio::time::sleep(interval) => {}
                _ = stop.cancelled() => return,
            }
            sync_all(&dirs).await;
        }
    });
}

/// Whether a webhook request carries `secret`: GitHub's `X-Hub-Signature-256` (an
/// HMAC-SHA256 of the body), GitLab's `X-Gitlab-Token`, or our own
/// `X-Sandlab-Sync-Secret`; compared in constant time.
pub fn webhook_authorised(headers: &axum::http::HeaderMap, body: &[u8], secret: &str) -> bool {
    use subtle::ConstantTimeEq;
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    for name in ["x-gitlab-token", "x-sandlab-sync-secret"] {
        if let Some(given) = header(name) {
            return bool::from(given.as_bytes().ct_eq(secret.as_bytes()));
        }
    }
    if let Some(sig) = header("x-hub-signature-256").and_then(|s| s.strip_prefix("sha256=")) {
        let want = hex::encode(hmac_sha256(secret.as_bytes(), body));
        return bool::from(sig.as_bytes().ct_eq(want.as_bytes()));
    }
    false
}

/// HMAC-SHA256 (RFC 2104) over `msg` with `key`.
fn hmac_sha256(key: &[u8], msg: &[u8]) -> [u8; 32] {
    use hmac::Mac;
    // HMAC takes a key of any length.
    let mut mac = hmac::Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(msg);
    mac.finalize().into_bytes().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_matches_rfc_4231_case_2() {
        let mac = hmac_sha256(b"Jefe", b"what do ya want for nothing?");
        assert_eq!(
            hex::encode(mac),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn a_webhook_needs_the_secret_in_one_of_the_forges_forms() {
        let mut h = axum::http::HeaderMap::new();
        assert!(!webhook_authorised(&h, b"{}", "s3cret"));
        h.insert("x-gitlab-token", "s3cret".parse().unwrap());
        assert!(webhook_authorised(&h, b"{}", "s3cret"));
        h.insert("x-gitlab-token", "wrong".parse().unwrap());
        assert!(!webhook_authorised(&h, b"{}", "s3cret"));
        let mut gh = axum::http::HeaderMap::new();
        let sig = format!(
            "sha256={}",
            hex::encode(hmac_sha256(b"s3cret", b"{\"ref\":1}"))
        );
        gh.insert("x-hub-signature-256", sig.parse().unwrap());
        assert!(webhook_authorised(&gh, b"{\"ref\":1}", "s3cret"));
        assert!(!webhook_authorised(&gh, b"{\"ref\":2}", "s3cret"));
    }

    #[test]
    fn urls_and_paths_are_told_apart() {
        assert!(is_git_url("https://git.example.com/labs.git"));
        assert!(is_git_url("git@github.com:org/labs.git"));
        assert!(is_git_url("file:///srv/labs.git"));
        assert!(!is_git_url("/srv/labs"));
        assert!(!is_git_url("labs"));
    }
}
