//! `sandlab lab import`: a Killercoda scenario or an Instruqt track to one native lab.
//!
//! # What maps to what
//!
//! - Killercoda `title`, `description`; Instruqt `title`, `teaser` → `title`,
//!   `description` (Instruqt's `description` starts the text).
//! - the intro, each step and the finish; each `NN-slug/assignment.md` (in `track.yml`'s
//!   order, else by directory name) → the body, each text under `## <title>`.
//! - `verify`; `check-<host>` → a checked task on that host, its `::task` marker after
//!   the text; it `needs` the checks of the step before.
//! - `background`; `track_scripts/setup-<host>`, `setup-<host>` → init tasks (timeout
//!   5m), each `needs` the one before.
//! - `solve-<host>` → the `solve` of that host's check; Killercoda's `answer` → the
//!   `hint` of the step's check.
//! - `backend.imageid`; `config.yml` hosts → playground nodes, all running `debian`, with
//!   `network: egress` (the source's machines are online).
//! - Killercoda's `details.assets` → init tasks, before every other, that write the files
//!   into the machines (see `uploads`).
//! - Instruqt's hosts → an init task per node, before every other, that makes the
//!   bootstrap marker and the `set-workdir` and `agent variable` commands (see
//!   `instruqt::shims`).
//! - `{{exec}}` / `{{copy}}` (after a fence, or after inline code, which may go on over
//!   lines); Instruqt's ```` ```bash,run ```` → ```` ```bash {exec} ```` run buttons /
//!   plain code, also when the fence opens a list item (```` 2. ```bash ````).
//! - Killercoda's `{{TRAFFIC_HOSTn_PORT}}` and `{{TRAFFIC_SELECTOR}}` → `port:` links.
//! - Instruqt's challenge `tabs:` (terminal, service, code, website) → the lab's `tabs:`,
//!   the union over the challenges.
//! - `assets/`, and every other file of the source the text references (images) →
//!   copied to the lab's `assets/`, the text pointed there.
//!
//! Everything else (`foreground` scripts, `cleanup-*` scripts, scripts that are empty or
//! only comments, tabs Sandlab has no kind for and tab options, references to no file,
//! keys the importer does not know, the image mapping itself, set-up that runs at the
//! start instead of when its step opens) is listed per source file in [`Notes`], printed
//! by the CLI and written to `IMPORT_NOTES.md` next to `index.md`; a note that says
//! something of the source is not in the lab starts with [`DROPPED`], and the file's
//! first paragraph says whether any does. Scripts keep their text: see `script` for how
//! they run under Sandlab's `sh -c` (their interpreter, stdin from `/dev/null`).
//!
//! # Hostile input
//!
//! Sources come from strangers. Every file is read through `source`: names must stay
//! inside the source directory (no absolute paths, no `..`, no symbolic link leading
//! out), files are capped at [`MAX_FILE_BYTES`], directories at 1000 entries, steps and
//! challenges at [`MAX_STEPS`], assets at [`MAX_ASSET_BYTES`] each and
//! [`MAX_ASSETS`] / [`MAX_ASSETS_BYTES`] in all, files placed into machines at 64 KiB
//! each and 200 files / 256 KiB in all (`uploads`), so that `index.md` stays in bounds.
//! `DEST` must be new or empty (its missing parents are made); nothing is
//! written anywhere else, and nothing at all until the lab is built and has passed
//! [`crate::parse_index`] in memory. After writing, the lab is loaded back with
//! [`crate::load_lab`]; a problem at either point is a bug in the importer, reported as
//! [`ImportError::Invalid`].

mod assets;
mod base64;
mod draft;
mod emit;
mod inline;
mod instruqt;
mod killercoda;
mod links;
mod notes;
mod scan;
mod script;
mod source;
mod text;
mod traffic;
mod tree;
mod uploads;

use std::fmt;
use std::fs;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

pub use notes::{Notes, DROPPED};

use self::assets::Asset;
use self::draft::Draft;
use self::source::Source;
use crate::{Lab, Problem, MAX_INDEX_BYTES, MAX_TASKS};

/// Largest source file (index.json, track.yml, a step's text, a script) read.
pub const MAX_FILE_BYTES: u64 = 1 << 20;
/// Most steps (Killercoda) or challenges (Instruqt) one source may have.
pub const MAX_STEPS: usize = 200;
/// Largest asset file copied; bigger ones are left out with a note.
pub const MAX_ASSET_BYTES: u64 = 16 << 20;
/// Most asset files copied.
pub const MAX_ASSETS: usize = 1000;
/// Most bytes of assets copied in all.
pub const MAX_ASSETS_BYTES: u64 = 128 << 20;
/// The file in the lab directory that lists what could not be mapped.
pub const NOTES_FILE: &str = "IMPORT_NOTES.md";

/// The kind of content to import.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// A Killercoda scenario directory (`index.json`).
    Killercoda,
    /// An Instruqt track directory (`track.yml`).
    Instruqt,
}

impl Format {
    /// What a source of this format is called.
    pub fn source_kind(self) -> &'static str {
        match self {
            Format::Killercoda => "Killercoda scenario",
            Format::Instruqt => "Instruqt track",
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Format::Killercoda => "killercoda",
            Format::Instruqt => "instruqt",
        })
    }
}

/// Why an import failed.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// A file of the source (or the source or destination directory) is unusable.
    #[error("{}: {message}", file.display())]
    Input { file: PathBuf, message: String },
    #[error("{}: cannot be read", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{}: cannot be written", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// The lab the importer made does not validate: a bug in the importer.
    #[error(
        "the imported lab does not pass validation, a bug in the importer: {}",
        summary(.0)
    )]
    Invalid(Vec<Problem>),
}

fn summary(problems: &[Problem]) -> String {
    match problems {
        [] => "no problem given".into(),
        [one] => one.to_string(),
        [first, rest @ ..] => format!("{first} (and {} more)", rest.len()),
    }
}

impl ImportError {
    pub(crate) fn at(file: impl Into<PathBuf>, message: impl Into<String>) -> ImportError {
        ImportError::Input {
            file: file.into(),
            message: message.into(),
        }
    }

    pub(crate) fn read(path: impl Into<PathBuf>, source: io::Error) -> ImportError {
        ImportError::Read {
            path: path.into(),
            source,
        }
    }

    fn write(path: impl Into<PathBuf>, source: io::Error) -> ImportError {
        ImportError::Write {
            path: path.into(),
            source,
        }
    }
}

pub type Result<T, E = ImportError> = std::result::Result<T, E>;

/// A finished import.
#[derive(Debug)]
pub struct Imported {
    /// The lab as loaded back from `DEST`.
    pub lab: Lab,
    pub notes: Notes,
    /// Asset files copied.
    pub assets: usize,
}

/// What a converter hands back: the lab, its notes and the assets to copy.
pub(crate) struct Converted {
    pub draft: Draft,
    pub notes: Notes,
    pub assets: Vec<Asset>,
}

/// Imports the `format` content in `src` as a new lab in `dest` (which must not exist or
/// be empty, and whose name becomes the lab's slug).
pub fn import(format: Format, src: &Path, dest: &Path) -> Result<Imported> {
    let slug = dest_slug(dest)?;
    let dest_exists = check_dest(dest)?;
    let source = Source::open(src)?;
    let Converted {
        draft,
        notes,
        assets,
    } = match format {
        Format::Killercoda => killercoda::convert(&source)?,
        Format::Instruqt => instruqt::convert(&source)?,
    };
    if draft.tasks.len() > MAX_TASKS {
        return Err(ImportError::at(
            src,
            format!(
                "makes {} tasks, more than the {MAX_TASKS} a lab may have",
                draft.tasks.len()
            ),
        ));
    }
    let index = emit::index_md(&draft);
    if index.len() > MAX_INDEX_BYTES {
        return Err(ImportError::at(
            src,
            format!(
                "makes an index.md of {} KiB, more than the {} MiB a lab may have",
                index.len() >> 10,
                MAX_INDEX_BYTES >> 20
            ),
        ));
    }
    let index_path = dest.join("index.md");
    // Checked in memory first, so that a bug here leaves DEST untouched.
    let lab = crate::parse_index(&slug, &index, &index_path, None).map_err(ImportError::Invalid)?;
    if lab.task_refs.len() != draft.markers {
        return Err(ImportError::Invalid(vec![Problem::whole_file(
            &index_path,
            format!(
                "{} task markers were written but {} were found",
                draft.markers,
                lab.task_refs.len()
            ),
        )]));
    }
    let what = format!("the {} `{}`", format.source_kind(), src.display());
    if !dest_exists {
        fs::create_dir_all(dest).map_err(|e| ImportError::write(dest, e))?;
    }
    write_new(&index_path, index.as_bytes())?;
    write_new(&dest.join(NOTES_FILE), notes.to_markdown(&what).as_bytes())?;
    for asset in &assets {
        copy_asset(asset, dest)?;
    }
    let lab = crate::load_lab(dest, None).map_err(ImportError::Invalid)?;
    Ok(Imported {
        lab,
        notes,
        assets: assets.len(),
    })
}

/// The lab's slug: `dest`'s name, which must be a valid one.
fn dest_slug(dest: &Path) -> Result<String> {
    let name = dest
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    if !crate::validate::is_slug(&name) {
        return Err(ImportError::at(
            dest,
            format!(
                "the directory name {name:?} is not a valid lab slug (a-z and 0-9, then also \
                 _ and -, at most 64)"
            ),
        ));
    }
    Ok(name)
}

/// Whether `dest` exists; an error when it is not an empty directory.
fn check_dest(dest: &Path) -> Result<bool> {
    match fs::metadata(dest) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(ImportError::read(dest, e)),
        Ok(m) if !m.is_dir() => Err(ImportError::at(dest, "is not a directory")),
        Ok(_) => {
            let mut entries = fs::read_dir(dest).map_err(|e| ImportError::read(dest, e))?;
            if entries.next().is_some() {
                return Err(ImportError::at(
                    dest,
                    "is not empty; import into a new or empty directory",
                ));
            }
            Ok(true)
        }
    }
}

/// Writes a file that must not exist yet.
fn write_new(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write as _;
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(|e| ImportError::write(path, e))?;
    file.write_all(bytes)
        .map_err(|e| ImportError::write(path, e))
}

/// Copies one asset into `dest`, creating its directories (all new: `dest` was empty).
fn copy_asset(asset: &Asset, dest: &Path) -> Result<()> {
    let to = dest.join(&asset.to);
    if let Some(dir) = to.parent() {
        fs::create_dir_all(dir).map_err(|e| ImportError::write(dir, e))?;
    }
    let from = fs::File::open(&asset.from).map_err(|e| ImportError::read(&asset.from, e))?;
    let mut bytes = Vec::new();
    from.take(MAX_ASSET_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| ImportError::read(&asset.from, e))?;
    if bytes.len() as u64 > MAX_ASSET_BYTES {
        return Err(ImportError::at(
            &asset.from,
            "grew past the asset size limit while being copied",
        ));
    }
    write_new(&to, &bytes)
}
