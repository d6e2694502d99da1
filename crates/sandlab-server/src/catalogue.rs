//! The lab catalogue from `--labs DIR`, reloaded when its files change.
//!
//! A poll every [`POLL`] compares a fingerprint of every file under the directory (path,
//! size, modification time); on a change the whole catalogue is parsed again and swapped
//! in at once. A lab that no longer parses is left out, its problems logged and kept for
//! authors and admins (`GET /api/v1/lab-problems`); running sessions keep the lab they
//! started with.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use sandlab_lab::{Lab, Problem};
use tokio_util::sync::CancellationToken;

use crate::state::AppState;

pub const POLL: Duration = Duration::from_secs(2);
/// Files looked at per fingerprint, so a huge tree cannot stall the poll.
const MAX_FILES: usize = 20_000;

/// Path, size and modification time of every file under `dir` (two levels: labs and the
/// files in them), sorted.
pub fn fingerprint(dir: &Path) -> Vec<(PathBuf, u64, Option<SystemTime>)> {
    let mut out = Vec::new();
    let mut stack = vec![(dir.to_owned(), 0)];
    while let Some((d, depth)) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            if out.len() >= MAX_FILES {
                break;
            }
            let Ok(meta) = e.metadata() else { continue };
            if meta.is_dir() {
                if depth < 2 {
                    stack.push((e.path(), depth + 1));
                }
                out.push((e.path(), 0, None));
            } else {
                out.push((e.path(), meta.len(), meta.modified().ok()));
            }
        }
    }
    out.sort();
    out
}

/// Loads the catalogue, checking images with `images`.
pub type Loader = Arc<dyn Fn(&Path) -> (Vec<Lab>, Vec<Problem>) + Send + Sync>;

/// Reloads `state`'s labs from `dir` whenever its fingerprint changes (compared with the
/// files as they are when this is called), until `stop`.
pub fn spawn_watcher(state: AppState, dir: PathBuf, load: Loader, stop: CancellationToken) {
    let mut seen = fingerprint(&dir);
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = tokio::time::sleep(POLL) => {}
                _ = stop.cancelled() => return,
            }
            let d = dir.clone();
            let Ok(now) = tokio::task::spawn_blocking(move || fingerprint(&d)).await else {
                continue;
            };
            if now == seen {
                continue;
            }
            seen = now;
            let (d, l) = (dir.clone(), load.clone());
            let Ok((labs, problems)) = tokio::task::spawn_blocking(move || l(&d)).await else {
                continue;
            };
            for p in &problems {
                tracing::warn!(problem = %p, "lab left out of the catalogue");
            }
            tracing::info!(labs = labs.len(), "lab catalogue reloaded");
            state.set_labs(labs);
            state.set_lab_problems(problems);
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fingerprint_changes_with_content_and_new_labs() {
        let dir = tempfile::tempdir().unwrap();
        let a = fingerprint(dir.path());
        std::fs::create_dir(dir.path().join("one")).unwrap();
        std::fs::write(dir.path().join("one/index.md"), "x").unwrap();
        let b = fingerprint(dir.path());
        assert_ne!(a, b);
        assert_eq!(b, fingerprint(dir.path()));
        std::fs::write(dir.path().join("one/index.md"), "xy").unwrap();
        assert_ne!(b, fingerprint(dir.path()));
    }
}
