//! The files an import copies into the lab's `assets/`, which the server serves.
//!
//! The source's own `assets/` directory is copied as it is. A file the text references
//! from elsewhere in the source (an image next to a step's text) is copied too, under
//! `assets/` at its path in the source, and the text made to reference it there: a lab's
//! text may only reference files in its `assets/`. Every file counts against the asset
//! limits; what does not fit is noted and left out.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};

use super::notes::Notes;
use super::source::Source;
use super::{MAX_ASSETS, MAX_ASSETS_BYTES, MAX_ASSET_BYTES};
use crate::ASSETS_DIR;

/// One file to copy: from the source, to a path relative to the lab.
#[derive(Debug)]
pub(crate) struct Asset {
    pub from: PathBuf,
    pub to: PathBuf,
}

#[derive(Debug, Default)]
pub(crate) struct AssetPlan {
    out: Vec<Asset>,
    bytes: u64,
    /// The limits were reached (noted once).
    full: bool,
    /// Source path → lab path, `/`-separated, of every file planned.
    by_source: HashMap<String, String>,
}

impl AssetPlan {
    /// Plans the source's `assets/` directory.
    pub fn new(src: &Source, notes: &mut Notes) -> super::Result<AssetPlan> {
        let mut plan = AssetPlan::default();
        src.plan_assets(ASSETS_DIR, &mut plan, notes)?;
        Ok(plan)
    }

    /// Plans copying `from` (source path `shown`, `len` bytes) to `to` in the lab, within
    /// the limits; whether it fits (when not, a note says so).
    pub fn add(
        &mut self,
        from: PathBuf,
        to: PathBuf,
        len: u64,
        shown: &str,
        notes: &mut Notes,
    ) -> bool {
        if len > MAX_ASSET_BYTES {
            let mib = MAX_ASSET_BYTES >> 20;
            notes.dropped(shown, format!("not copied: larger than {mib} MiB"));
            return false;
        }
        if self.out.len() == MAX_ASSETS || self.bytes + len > MAX_ASSETS_BYTES {
            if !self.full {
                let mib = MAX_ASSETS_BYTES >> 20;
                notes.dropped(
                    shown,
                    format!(
                        "not copied, nor any asset after it: the assets exceed {MAX_ASSETS} \
                         files or {mib} MiB"
                    ),
                );
                self.full = true;
            }
            return false;
        }
        self.bytes += len;
        let to_text = to.to_string_lossy().replace('\\', "/");
        self.by_source.insert(shown.to_owned(), to_text);
        self.out.push(Asset { from, to });
        true
    }

    /// The lab path (`assets/...`) of the file `target` names, written in source file
    /// `by`: a file planned already under that lab path, else looked up next to `by`,
    /// then from the source's top (Killercoda's texts reference `./assets/x.png` from
    /// there), and planned for copying. `Err` says why the reference cannot be kept.
    pub fn reference(
        &mut self,
        src: &Source,
        by: &str,
        target: &str,
        notes: &mut Notes,
    ) -> Result<String, String> {
        if let Some(planned) = normalise("", target).filter(|t| self.has(t)) {
            return Ok(planned);
        }
        let base = by.rsplit_once('/').map_or("", |(dir, _)| dir);
        let mut found = None;
        for candidate in [normalise(base, target), normalise("", target)]
            .into_iter()
            .flatten()
        {
            if let Some(to) = self.by_source.get(&candidate) {
                return Ok(to.clone());
            }
            if let Ok(rel) = src.resolve(&candidate, by, "reference") {
                found = Some(rel);
                break;
            }
        }
        let Some(rel) = found else {
            return Err("it names no file in the source directory".to_owned());
        };
        let mut to = if rel.starts_with(&format!("{ASSETS_DIR}/")) {
            rel.clone()
        } else {
            format!("{ASSETS_DIR}/{rel}")
        };
        let mut n = 2;
        while self.has(&to) {
            to = numbered(&rel, n);
            n += 1;
        }
        let len = fs::metadata(src.show(&rel)).map_or(0, |m| m.len());
        if self.add(src.show(&rel), PathBuf::from(&to), len, &rel, notes) {
            Ok(to)
        } else {
            Err(format!("{rel} is not copied (see its note)"))
        }
    }

    /// Whether a file is planned at lab path `to`.
    fn has(&self, to: &str) -> bool {
        self.out.iter().any(|a| a.to == Path::new(to))
    }

    pub fn into_assets(self) -> Vec<Asset> {
        self.out
    }
}

/// `target` joined to directory `base` (both `/`-separated and relative), `.` and `..`
/// resolved; `None` when it leads above the source's top.
fn normalise(base: &str, target: &str) -> Option<String> {
    let mut parts: Vec<&str> = base.split('/').filter(|p| !p.is_empty()).collect();
    for part in target.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            p => parts.push(p),
        }
    }
    (!parts.is_empty()).then(|| parts.join("/"))
}

/// `assets/<rel>` with `-N` before the extension of its file name.
fn numbered(rel: &str, n: usize) -> String {
    let (dir, name) = rel.rsplit_once('/').map_or(("", rel), |(d, f)| (d, f));
    let name = match name.rsplit_once('.') {
        Some((stem, ext)) if !stem.is_empty() => format!("{stem}-{n}.{ext}"),
        _ => format!("{name}-{n}"),
    };
    if dir.is_empty() {
        format!("{ASSETS_DIR}/{name}")
    } else {
        format!("{ASSETS_DIR}/{dir}/{name}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalising() {
        assert_eq!(
            normalise("01-a", "../assets/x.png").as_deref(),
            Some("assets/x.png")
        );
        assert_eq!(
            normalise("step1", "./img/a.png").as_deref(),
            Some("step1/img/a.png")
        );
        assert_eq!(normalise("", "../x"), None);
        assert_eq!(normalise("a", "../../x"), None);
        assert_eq!(normalise("", "."), None);
    }

    #[test]
    fn numbering() {
        assert_eq!(numbered("step1/a.png", 2), "assets/step1/a-2.png");
        assert_eq!(numbered("README", 3), "assets/README-3");
        assert_eq!(numbered(".hidden", 2), "assets/.hidden-2");
    }
}
