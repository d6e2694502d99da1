//! Sandlab's image store: OCI images kept in the data dir and unpacked once into
//! read-only trees that sandbox overlays use as their lower layer.
//!
//! # Layout
//! ```text
//! <data>/images/
//!   blobs/sha256/<hex>        content-addressed blobs (layers, configs, manifests), verified
//!   trees/<manifest-hex>/rootfs  the unpacked, read-only tree of one image
//!   refs/<name>               JSON: name -> manifest digest, source, created, size
//!   tmp/                      per-operation staging dirs (removed when stale)
//!   .lock                     flock taken while refs, trees and blobs change
//! ```
//!
//! Every way an image arrives (an archive import, a registry pull, a Debian build) ends in
//! the same place: blobs are verified and staged, the layers are unpacked one after the
//! other into a staging tree by the hardened [`unpack`] module, and the result is moved
//! into the store under the lock with renames, so a crash never leaves a half tree or a
//! ref pointing at nothing.
//!
//! Layers are hostile input: see [`unpack`] for what unpacking refuses and [`confined`]
//! for the file-system primitives it is built on.

mod blobs;
mod build;
pub mod confined;
mod context;
mod error;
mod import;
mod mounts;
mod oci;
#[cfg(feature = "registry")]
mod pull;
pub mod recipe;
mod store;
pub mod unpack;

pub use build::{mmdebstrap_argv, MIRROR_ENV};
pub use error::{Error, Result};
pub use recipe::Recipe;
pub use store::ImageStore;
pub use unpack::{unpack_layer, UnpackError, UnpackLimits, UnpackStats, Unpacker};

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// The packages of the default image `debian` (SPEC section 4).
pub const DEFAULT_PACKAGES: &[&str] = &[
    "bash",
    "coreutils",
    "procps",
    "iproute2",
    "iputils-ping",
    "curl",
    "ca-certificates",
    "less",
    "vim-tiny",
    "python3",
];

/// The name of the default image.
pub const DEFAULT_IMAGE: &str = "debian";

/// The uid/gid shift applied to every owner while unpacking.
///
/// An owner `u` inside the image becomes `host_uid + u` on disk, so the tree is owned by
/// the unprivileged host range that root inside a sandbox's user namespace maps to. Ids
/// at or above `size` are clamped to `nobody` (65534) when that id is inside the range,
/// and are an error otherwise.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdMap {
    pub host_uid: u32,
    pub host_gid: u32,
    pub size: u32,
}

impl Default for IdMap {
    fn default() -> Self {
        Self {
            host_uid: 0x7000_0000,
            host_gid: 0x7000_0000,
            size: 65536,
        }
    }
}

impl IdMap {
    /// The id that out-of-range owners are clamped to (inside the image).
    pub const NOBODY: u32 = 65534;

    /// No shift at all: owners are kept as they are in the image.
    pub fn identity() -> Self {
        Self {
            host_uid: 0,
            host_gid: 0,
            size: u32::MAX,
        }
    }

    /// Whether the range fits in the 32-bit id space and is not empty.
    pub fn is_valid(&self) -> bool {
        self.size > 0
            && u64::from(self.host_uid) + u64::from(self.size) <= 1 << 32
            && u64::from(self.host_gid) + u64::from(self.size) <= 1 << 32
    }

    /// Maps an owner uid from the image to the host; `None` when it cannot be mapped.
    /// The flag tells whether the id was clamped to `nobody`.
    pub fn map_uid(&self, id: u64) -> Option<(u32, bool)> {
        map_id(self.host_uid, self.size, id)
    }

    /// Maps an owner gid from the image to the host, like [`IdMap::map_uid`].
    pub fn map_gid(&self, id: u64) -> Option<(u32, bool)> {
        map_id(self.host_gid, self.size, id)
    }
}

fn map_id(base: u32, size: u32, id: u64) -> Option<(u32, bool)> {
    let (inner, clamped) = if id < u64::from(size) {
        (id, false)
    } else if IdMap::NOBODY < size {
        (u64::from(IdMap::NOBODY), true)
    } else {
        return None;
    };
    let host = u64::from(base).checked_add(inner)?;
    u32::try_from(host).ok().map(|h| (h, clamped))
}

/// A resolved image, ready to be used as the lower layer of a sandbox root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Image {
    pub name: String,
    /// The manifest digest, `sha256:<hex>`.
    pub digest: String,
    /// The read-only unpacked tree.
    pub rootfs: PathBuf,
    pub config: ImageConfig,
}

/// The process defaults of an image, from its OCI image config.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageConfig {
    pub env: Vec<String>,
    pub cwd: Option<String>,
    pub user: Option<String>,
    pub entrypoint: Vec<String>,
    pub cmd: Vec<String>,
}

/// One stored image, as `sandlab image ls` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageInfo {
    pub name: String,
    /// The manifest digest, `sha256:<hex>`.
    pub digest: String,
    /// Bytes of regular files in the unpacked tree (hard links counted once).
    pub size: u64,
    /// When the image was stored, in seconds since the Unix epoch.
    pub created: u64,
    /// Where it came from: `mmdebstrap bookworm`, `import`, `pull REF`.
    pub source: String,
}

/// Receives progress from long operations (builds, pulls, imports).
pub trait Progress: Send + Sync {
    /// A new stage began (one short sentence).
    fn stage(&self, msg: &str);
    /// Bytes done of the current stage, out of `total` when known.
    fn bytes(&self, done: u64, total: Option<u64>);
    /// One line of output from a tool the stage runs (mmdebstrap).
    fn line(&self, line: &str);
}

/// A [`Progress`] that ignores everything.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoProgress;

impl Progress for NoProgress {
    fn stage(&self, _msg: &str) {}
    fn bytes(&self, _done: u64, _total: Option<u64>) {}
    fn line(&self, _line: &str) {}
}

/// Checks an image name: `[a-z0-9][a-z0-9._-]{0,63}`.
pub fn validate_name(name: &str) -> Result<()> {
    let bytes = name.as_bytes();
    let ok = !bytes.is_empty()
        && bytes.len() <= 64
        && (bytes[0].is_ascii_lowercase() || bytes[0].is_ascii_digit())
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(b));
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidName(name.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        for good in ["debian", "a", "0", "py-3.12_slim", &"a".repeat(64)] {
            assert!(validate_name(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "-x",
            ".x",
            "_x",
            "A",
            "a/b",
            "..",
            "a b",
            &"a".repeat(65),
            "é",
        ] {
            assert!(validate_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn idmap_shift_and_clamp() {
        let m = IdMap::default();
        assert!(m.is_valid());
        assert_eq!(m.map_uid(0), Some((0x7000_0000, false)));
        assert_eq!(m.map_gid(1000), Some((0x7000_0000 + 1000, false)));
        assert_eq!(m.map_uid(70000), Some((0x7000_0000 + 65534, true)));
        let small = IdMap {
            host_uid: 100_000,
            host_gid: 100_000,
            size: 1000,
        };
        assert_eq!(small.map_uid(999), Some((100_999, false)));
        assert_eq!(small.map_uid(1000), None);
        assert_eq!(
            IdMap::identity().map_uid(u64::from(u32::MAX) + 5),
            Some((65534, true))
        );
        assert!(!IdMap {
            host_uid: u32::MAX,
            host_gid: 0,
            size: 2
        }
        .is_valid());
        assert!(!IdMap {
            host_uid: 0,
            host_gid: 0,
            size: 0
        }
        .is_valid());
    }
}
