//! Hardened unpacking of image layers: every layer is hostile.
//!
//! A layer is a tar stream (plain, gzip or zstd, detected from its first bytes) applied
//! onto one tree, in order, with the OCI/overlay semantics: later entries replace earlier
//! ones, `.wh.NAME` deletes `NAME` from the layers below, `.wh..wh..opq` empties its
//! directory of what the layers below put there. On top of that:
//!
//! - **No path leaves the tree.** Names with a `..` component are refused (the image is
//!   rejected); absolute names are made relative. Parents are resolved with
//!   [`crate::confined`] (`openat2` + `RESOLVE_IN_ROOT`), so a layer that makes
//!   `a -> /etc` and then writes `a/passwd` writes `<tree>/etc/passwd`, never the host's.
//!   The final component is created with `O_EXCL | O_NOFOLLOW` after removing whatever
//!   was there, so a planted symlink is replaced, not written through.
//! - **Hard links** point only at entries already in the tree, resolved the same way;
//!   a link to a missing entry rejects the image, a link to a directory too.
//! - **Device nodes** (char and block) are not created; they are counted in
//!   [`UnpackStats::skipped_devices`]. FIFOs are created.
//! - **Whiteouts** are resolved inside the tree like any other path; one naming `.` or
//!   `..` rejects the image, one whose parent does not exist does nothing.
//! - **Limits** ([`UnpackLimits`]): total bytes (declared sizes of all entries and bytes
//!   actually written, sparse files counted at their full size) and entry count, across
//!   all the layers of one [`Unpacker`]; each entry's headers (long names, PAX records,
//!   sparse maps) are capped at [`MAX_ENTRY_METADATA`] bytes so no header is ever held in
//!   memory unbounded. Hitting a limit is an error; the caller removes the partial tree
//!   (the store unpacks into a staging directory that it deletes on any error).
//! - **Ownership** is shifted by the [`IdMap`] with `fchown`/`fchownat(AT_SYMLINK_NOFOLLOW)`;
//!   modes (setuid/setgid/sticky included, they only matter inside the user namespace)
//!   and modification times are kept; directory times are set when the layer ends.
//! - **Extended attributes are not unpacked**, `security.capability` included: file
//!   capabilities written by host root would be v2 capabilities, which the kernel does
//!   not honour inside a user namespace anyway, and every other xattr is either
//!   meaningless in a sandbox or a way to confuse the host (`trusted.overlay.*`).

mod apply;
mod guard;
mod path;
mod whiteout;

use std::collections::HashSet;
use std::hash::RandomState;
use std::io::{self, Read};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use nix::fcntl::OFlag;
use nix::sys::stat::Mode;

use crate::IdMap;

/// The most bytes of headers (long names, PAX records, sparse maps) one entry may have.
pub const MAX_ENTRY_METADATA: u64 = 1 << 20;

/// The longest path (after normalisation) an entry may have.
pub const MAX_PATH_LEN: usize = 4096;

/// Caps on what one image may unpack to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnpackLimits {
    /// Total bytes of file data (and declared entry sizes) across all layers.
    pub max_bytes: u64,
    /// Total number of tar entries across all layers.
    pub max_entries: u64,
}

impl Default for UnpackLimits {
    fn default() -> Self {
        Self {
            max_bytes: 16 << 30,
            max_entries: 2_000_000,
        }
    }
}

/// What unpacking did, summed over the layers applied so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UnpackStats {
    /// Tar entries seen (whiteouts and skipped entries included).
    pub entries: u64,
    /// Bytes of file data written.
    pub bytes: u64,
    pub files: u64,
    pub dirs: u64,
    pub symlinks: u64,
    pub hardlinks: u64,
    pub fifos: u64,
    /// Whiteout and opaque-directory markers applied.
    pub whiteouts: u64,
    /// Char and block devices (and hard links to them) not created.
    pub skipped_devices: u64,
    /// Entries of other types (volume labels, global PAX headers, ...) ignored.
    pub skipped_other: u64,
    /// Entries whose owner was outside the id map and became `nobody`.
    pub clamped_ids: u64,
}

/// Why a layer could not be unpacked.
#[derive(Debug, thiserror::Error)]
pub enum UnpackError {
    #[error("Layer {layer} entry \"{path}\" escapes the image root")]
    Escapes { layer: String, path: String },

    #[error("Layer {layer} entry \"{path}\" has an invalid name")]
    InvalidName { layer: String, path: String },

    #[error("Layer {layer} entry \"{path}\" is a hard link to \"{target}\", which is not a file in the image")]
    BadHardLink {
        layer: String,
        path: String,
        target: String,
    },

    #[error("Layer {layer} entry \"{path}\" is a whiteout of an invalid name")]
    BadWhiteout { layer: String, path: String },

    #[error(
        "Layer {layer} entry \"{path}\" is owned by id {id}, outside the id map of {size} ids"
    )]
    IdOutOfRange {
        layer: String,
        path: String,
        id: u64,
        size: u32,
    },

    #[error("Layer {layer} takes the image past its limit of {max} bytes")]
    TooLarge { layer: String, max: u64 },

    #[error("Layer {layer} takes the image past its limit of {max} entries")]
    TooManyEntries { layer: String, max: u64 },

    #[error("Layer {layer} has an entry whose headers exceed {MAX_ENTRY_METADATA} bytes")]
    MetadataTooLarge { layer: String },

    #[error("Layer {layer} entry \"{path}\" is truncated")]
    Truncated { layer: String, path: String },

    #[error("Layer {layer} is not a valid tar stream")]
    Tar {
        layer: String,
        #[source]
        source: io::Error,
    },

    #[error("Layer {layer} entry \"{path}\" cannot be written to the image tree")]
    Write {
        layer: String,
        path: String,
        #[source]
        source: io::Error,
    },

    #[error("Image tree {path} cannot be opened")]
    Root {
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    #[error("Id map {host}+{size} does not fit in the 32-bit id space")]
    InvalidIdMap { host: u32, size: u32 },
}

/// Applies layers, in order, onto one tree.
pub struct Unpacker {
    root: OwnedFd,
    idmap: IdMap,
    limits: UnpackLimits,
    stats: UnpackStats,
    /// Sum of the declared sizes of all entries seen.
    declared: u64,
    /// Paths (hashed) of device nodes that were skipped, so links to them are skipped too.
    skipped_devices: HashSet<u64>,
    hasher: RandomState,
    buf: Vec<u8>,
}

impl Unpacker {
    /// Prepares to unpack into the existing directory `root`.
    pub fn new(root: &Path, idmap: IdMap, limits: UnpackLimits) -> Result<Self, UnpackError> {
        if !idmap.is_valid() {
            return Err(UnpackError::InvalidIdMap {
                host: idmap.host_uid,
                size: idmap.size,
            });
        }
        let root_fd = nix::fcntl::open(
            root,
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| UnpackError::Root {
            path: root.to_owned(),
            source: e.into(),
        })?;
        Ok(Self {
            root: root_fd,
            idmap,
            limits,
            stats: UnpackStats::default(),
            declared: 0,
            skipped_devices: HashSet::new(),
            hasher: RandomState::new(),
            buf: vec![0; 128 * 1024],
        })
    }

    /// What has been unpacked so far.
    pub fn stats(&self) -> UnpackStats {
        self.stats
    }

    /// Applies one layer. `layer` names it in errors (its digest). The stream may be a
    /// plain, gzip or zstd tar.
    pub fn unpack_layer<R: Read>(&mut self, layer: &str, reader: R) -> Result<(), UnpackError> {
        let tar_err = |source: io::Error| UnpackError::Tar {
            layer: layer.to_owned(),
            source,
        };
        let stream = guard::decompress(reader).map_err(tar_err)?;
        let budget = Rc::new(guard::Budget::new(self.stream_cap()));
        let mut archive = tar::Archive::new(guard::Guarded::new(stream, Rc::clone(&budget)));
        let mut layer_state = apply::LayerState::new(layer);
        let entries = archive
            .entries()
            .map_err(|e| self.stream_error(layer, &budget, e))?;
        for entry in entries {
            let mut entry = entry.map_err(|e| self.stream_error(layer, &budget, e))?;
            budget.allow_entry(entry.size());
            self.apply(&mut layer_state, &mut entry)
                .map_err(|e| self.entry_error(layer, &budget, e))?;
        }
        self.finish_layer(&layer_state)
    }

    /// The most tar bytes one layer may have: data, padding and a few headers per entry.
    fn stream_cap(&self) -> u64 {
        self.limits
            .max_bytes
            .saturating_add(self.limits.max_entries.saturating_mul(4096))
            .saturating_add(MAX_ENTRY_METADATA)
    }

    fn stream_error(&self, layer: &str, budget: &guard::Budget, source: io::Error) -> UnpackError {
        if budget.tripped() {
            if budget.total_tripped() {
                UnpackError::TooLarge {
                    layer: layer.to_owned(),
                    max: self.limits.max_bytes,
                }
            } else {
                UnpackError::MetadataTooLarge {
                    layer: layer.to_owned(),
                }
            }
        } else {
            UnpackError::Tar {
                layer: layer.to_owned(),
                source,
            }
        }
    }

    /// Reading an entry's data can trip the stream budget too; report it as such.
    fn entry_error(&self, layer: &str, budget: &guard::Budget, err: UnpackError) -> UnpackError {
        match err {
            UnpackError::Tar { source, .. } => self.stream_error(layer, budget, source),
            other => other,
        }
    }
}

/// Unpacks one layer into the existing directory `root` (which may hold the layers
/// below it) with the given id map and limits. This is [`Unpacker`] for a single layer.
pub fn unpack_layer<R: Read>(
    reader: R,
    root: &Path,
    idmap: IdMap,
    limits: UnpackLimits,
) -> Result<UnpackStats, UnpackError> {
    let mut unpacker = Unpacker::new(root, idmap, limits)?;
    unpacker.unpack_layer("layer", reader)?;
    Ok(unpacker.stats())
}
