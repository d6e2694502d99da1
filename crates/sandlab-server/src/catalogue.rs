//! The lab catalogue from `--labs DIR` (one or several), reloaded when its files change.
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
/// A slug no lab may have: `/api/v1/labs/sync` is the sync webhook.
pub const RESERVED_SLUG: &str = "sync";
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

/// Loads the catalogue of one directory, checking images with `images`.
pub type Loader = Arc<dyn Fn(&Path) -> (Vec<Lab>, Vec<Problem>) + Send + Sync>;

/// The catalogue of every directory in `dirs`, in order: a slug already taken by an
/// earlier directory's lab leaves the later lab out, with a problem saying so.
pub fn load_all(load: &Loader, dirs: &[PathBuf]) -> (Vec<Lab>, Vec<Problem>) {
    let (mut labs, mut problems): (Vec<Lab>, Vec<Problem>) = (Vec::new(), Vec::new());
    let mut from: std::collections::HashMap<String, PathBuf> = Default::default();
    for dir in dirs {
        let (l, p) = load(dir);
        problems.extend(p);
        for lab in l {
            if lab.slug == RESERVED_SLUG {
                problems.push(Problem::whole_file(
                    dir.join(&lab.slug),
                    format!("the slug \"{RESERVED_SLUG}\" is taken by POST /api/v1/labs/sync; rename the directory"),
                ));
                continue;
            }
            if let Some(first) = from.get(&lab.slug) {
                problems.push(Problem::whole_file(
                    dir.join(&lab.slug),
                    format!(
                        "the slug \"{}\" is already a lab of {}; this one is left out",
                        lab.slug,
                        first.display()
                    ),
                ));
                continue;
            }
            from.insert(lab.slug.clone(), dir.clone());
            labs.push(lab);
        }
    }
    (labs, problems)
}

fn fingerprint_all(dirs: &[PathBuf]) -> Vec<(PathBuf, u64, Option<SystemTime>)> {
    dirs.iter().flat_map(|d| fingerprint(d)).collect()
}

/// Reloads `state`'s labs from `dirs` whenever their fingerprint changes (compared with
/// the files as they are when this is called), until `stop`.
pub fn spawn_watcher(state: AppState, dirs: Vec<PathBuf>, load: Loader, stop: CancellationToken) {
    let mut seen = fingerprint_all(&dirs);
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = tokio::time::sleep(POLL) => {}
                _ = stop.cancelled() => return,
            }
            let d = dirs.clone();
            let Ok(now) = tokio::task::spawn_blocking(move || fingerprint_all(&d)).await else {
                continue;
            };
            if now == seen {
                continue;
            }
            seen = now;
            let (d, l) = (dirs.clone(), load.clone());
            let Ok((labs, problems)) = tokio::task::spawn_blocking(move || load_all(&l, &d)).await
            else {
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
