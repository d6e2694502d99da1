//! The source directory: every file the importer reads comes through here.
//!
//! Names come from the source's own files (`"text": "step1/text.md"`), so they are
//! hostile: a name must be relative, without `..`, and must still lead inside the source
//! directory once symbolic links are resolved; it must name a regular file (never a FIFO
//! or a device, which could block or never end). Files are read up to
//! [`MAX_FILE_BYTES`](super::MAX_FILE_BYTES), must be UTF-8, and lose a leading BOM and
//! their `\r\n` line ends.

use std::fs;
use std::io::Read;
use std::path::{Component, Path, PathBuf};

use super::assets::AssetPlan;
use super::notes::Notes;
use super::{ImportError, Result, MAX_ASSETS, MAX_FILE_BYTES};

/// Most entries read from one directory of the source.
pub(crate) const MAX_DIR_ENTRIES: usize = 1000;
/// Deepest directory nesting copied from `assets/`.
const MAX_ASSET_DEPTH: usize = 16;

/// The source directory, as given (for messages) and resolved (for containment checks).
pub(crate) struct Source {
    root: PathBuf,
    canonical: PathBuf,
}

impl Source {
    pub fn open(root: &Path) -> Result<Source> {
        let meta = match fs::metadata(root) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(ImportError::at(root, "does not exist"))
            }
            other => other.map_err(|e| ImportError::read(root, e))?,
        };
        if !meta.is_dir() {
            return Err(ImportError::at(root, "is not a directory"));
        }
        let canonical = root
            .canonicalize()
            .map_err(|e| ImportError::read(root, e))?;
        Ok(Source {
            root: root.to_path_buf(),
            canonical,
        })
    }

    /// `rel` as shown in messages: joined to the source directory as given.
    pub fn show(&self, rel: &str) -> PathBuf {
        self.root.join(rel)
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Checks a file name written in source file `by` (`what` says which field, for
    /// messages) and returns it, normalised, relative to the source directory.
    pub fn resolve(&self, name: &str, by: &str, what: &str) -> Result<String> {
        let refuse = |why: &str| ImportError::at(self.show(by), format!("{what} {name:?} {why}"));
        let path = Path::new(name);
        if name.trim().is_empty() {
            return Err(refuse("is empty"));
        }
        let mut parts = Vec::new();
        for c in path.components() {
            match c {
                Component::Normal(p) => parts.push(p.to_string_lossy().into_owned()),
                Component::CurDir => {}
                Component::ParentDir => {
                    return Err(refuse(
                        "leads outside the source directory (\"..\" is refused)",
                    ))
                }
                Component::RootDir | Component::Prefix(_) => {
                    return Err(refuse(
                        "is an absolute path; only files inside the source directory are read",
                    ))
                }
            }
        }
        if parts.is_empty() {
            return Err(refuse("names no file"));
        }
        let rel = parts.join("/");
        let full = self.root.join(&rel);
        let real = match full.canonicalize() {
            Ok(real) => real,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(refuse("does not exist"))
            }
            Err(e) => return Err(ImportError::read(&full, e)),
        };
        if !real.starts_with(&self.canonical) {
            return Err(refuse(
                "leads outside the source directory through a symbolic link",
            ));
        }
        if !real.is_file() {
            return Err(refuse("is not a regular file"));
        }
        Ok(rel)
    }

    /// Reads `rel` (already checked by [`Source::resolve`] or listed from a directory).
    pub fn read(&self, rel: &str) -> Result<String> {
        let path = self.show(rel);
        let Some(bytes) = self.read_bytes(rel, MAX_FILE_BYTES)? else {
            let mib = MAX_FILE_BYTES >> 20;
            return Err(ImportError::at(
                &path,
                format!("is larger than {mib} MiB, the most an imported file may be"),
            ));
        };
        let text = String::from_utf8(bytes).map_err(|e| {
            let at = e.utf8_error().valid_up_to();
            ImportError::at(
                &path,
                format!("is not UTF-8 text (invalid byte at offset {at})"),
            )
        })?;
        let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
        Ok(text.replace("\r\n", "\n"))
    }

    /// The bytes of regular file `rel` (already checked), or `None` when it has more than
    /// `max`.
    pub fn read_bytes(&self, rel: &str, max: u64) -> Result<Option<Vec<u8>>> {
        let path = self.show(rel);
        let meta = fs::metadata(&path).map_err(|e| ImportError::read(&path, e))?;
        if !meta.is_file() {
            return Err(ImportError::at(&path, "is not a regular file"));
        }
        let file = fs::File::open(&path).map_err(|e| ImportError::read(&path, e))?;
        let mut bytes = Vec::new();
        file.take(max + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| ImportError::read(&path, e))?;
        Ok((bytes.len() as u64 <= max).then_some(bytes))
    }

    /// Reads `rel` when the source has it as a regular file inside the source directory.
    pub fn read_optional(&self, rel: &str) -> Result<Option<String>> {
        let path = self.show(rel);
        match fs::symlink_metadata(&path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(ImportError::read(&path, e)),
            Ok(_) => self
                .resolve(rel, rel, "file")
                .and_then(|rel| self.read(&rel).map(Some)),
        }
    }

    /// Whether `rel` exists (as anything).
    pub fn has(&self, rel: &str) -> bool {
        fs::symlink_metadata(self.show(rel)).is_ok()
    }

    /// The names in directory `rel` ("" for the source directory), sorted, with whether
    /// each is a real directory (symbolic links are never directories here). `rel` must be
    /// a real directory itself. At most [`MAX_DIR_ENTRIES`]; more is an error.
    pub fn list(&self, rel: &str) -> Result<Vec<(String, bool)>> {
        let dir = if rel.is_empty() {
            self.root.clone()
        } else {
            let dir = self.show(rel);
            let meta = fs::symlink_metadata(&dir).map_err(|e| ImportError::read(&dir, e))?;
            if !meta.is_dir() {
                return Err(ImportError::at(
                    &dir,
                    "is not a directory (a symbolic link is not followed)",
                ));
            }
            dir
        };
        let entries = fs::read_dir(&dir).map_err(|e| ImportError::read(&dir, e))?;
        let mut out = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| ImportError::read(&dir, e))?;
            if out.len() == MAX_DIR_ENTRIES {
                return Err(ImportError::at(
                    &dir,
                    format!("holds more than {MAX_DIR_ENTRIES} entries"),
                ));
            }
            let is_dir = entry.file_type().is_ok_and(|t| t.is_dir());
            out.push((entry.file_name().to_string_lossy().into_owned(), is_dir));
        }
        out.sort();
        Ok(out)
    }

    /// Plans copying directory `rel` (when present) to the same place in the lab: regular
    /// files only, within the asset limits; what is left out is noted.
    pub fn plan_assets(&self, rel: &str, plan: &mut AssetPlan, notes: &mut Notes) -> Result<()> {
        let top = self.show(rel);
        match fs::symlink_metadata(&top) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(ImportError::read(&top, e)),
            Ok(m) if !m.is_dir() => {
                notes.dropped(rel, "not copied: it is not a directory (a symbolic link?)");
                return Ok(());
            }
            Ok(_) => {}
        }
        let mut stack = vec![(PathBuf::from(rel), 0)];
        while let Some((dir, depth)) = stack.pop() {
            let shown = dir.to_string_lossy().into_owned();
            if depth > MAX_ASSET_DEPTH {
                notes.dropped(
                    &shown,
                    format!("not copied: nested deeper than {MAX_ASSET_DEPTH} directories"),
                );
                continue;
            }
            let path = self.root.join(&dir);
            let mut entries: Vec<_> = fs::read_dir(&path)
                .map_err(|e| ImportError::read(&path, e))?
                .take(MAX_ASSETS + 1)
                .collect::<std::io::Result<_>>()
                .map_err(|e| ImportError::read(&path, e))?;
            entries.sort_by_key(|e| e.file_name());
            for entry in entries {
                let to = dir.join(entry.file_name());
                let meta = entry.metadata().map_err(|e| ImportError::read(&to, e))?;
                let shown = to.to_string_lossy().into_owned();
                if meta.is_dir() {
                    stack.push((to, depth + 1));
                } else if !meta.is_file() {
                    notes.dropped(&shown, "not copied: not a regular file (a symbolic link?)");
                } else {
                    plan.add(self.root.join(&to), to, meta.len(), &shown, notes);
                }
            }
        }
        Ok(())
    }
}
