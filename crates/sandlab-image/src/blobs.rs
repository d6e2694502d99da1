//! Content-addressed blobs: digests, verified writes, and per-operation staging dirs.
//!
//! A blob only ever reaches `blobs/sha256/<hex>` after its bytes were hashed and found
//! equal to `<hex>`: it is written to a temp file in a staging dir while hashed, renamed
//! to `<staging>/blobs/<hex>`, and moved into the store when the operation commits.

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};
use sha2::{Digest as _, Sha256};

use crate::confined;
use crate::error::{Error, Result};

/// The largest manifest, index or config read into memory.
pub(crate) const MAX_JSON_BLOB: u64 = 4 << 20;

/// Checks `sha256:<64 lowercase hex>` and returns the hex part.
pub(crate) fn digest_hex(digest: &str) -> Result<&str> {
    let hex = digest
        .strip_prefix("sha256:")
        .ok_or_else(|| Error::InvalidDigest(digest.to_owned()))?;
    if hex.len() == 64
        && hex
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        Ok(hex)
    } else {
        Err(Error::InvalidDigest(digest.to_owned()))
    }
}

/// `sha256:<hex>` of `bytes`.
pub(crate) fn sha256_digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// A writer that hashes and counts what passes through it.
pub(crate) struct HashingWriter<W> {
    inner: W,
    hasher: Sha256,
    size: u64,
}

impl<W: Write> HashingWriter<W> {
    pub(crate) fn new(inner: W) -> Self {
        Self {
            inner,
            hasher: Sha256::new(),
            size: 0,
        }
    }

    /// The `sha256:<hex>` digest and size of everything written.
    pub(crate) fn finish(self) -> (W, String, u64) {
        (
            self.inner,
            format!("sha256:{}", hex::encode(self.hasher.finalize())),
            self.size,
        )
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.size += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// The directory of one store operation: staged blobs and the tree being unpacked.
/// It is locked (flock) while the operation runs; a dir whose lock can be taken is
/// left over from a crash and is removed by [`Staging::clean_stale`].
pub(crate) struct Staging {
    dir: tempfile::TempDir,
    _lock: Flock<File>,
}

impl Staging {
    pub(crate) fn new(tmp_root: &Path) -> Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix("op-")
            .tempdir_in(tmp_root)
            .map_err(Error::io(format!(
                "create a staging dir in {}",
                tmp_root.display()
            )))?;
        let file = File::open(dir.path()).map_err(Error::io("open the staging dir"))?;
        let lock =
            Flock::lock(file, FlockArg::LockExclusiveNonblock).map_err(|(_, e)| Error::Io {
                action: "lock the staging dir".into(),
                source: e.into(),
            })?;
        fs::create_dir(dir.path().join("blobs"))
            .map_err(Error::io("create the staging blob dir"))?;
        Ok(Self { dir, _lock: lock })
    }

    pub(crate) fn path(&self) -> &Path {
        self.dir.path()
    }

    pub(crate) fn blob_dir(&self) -> PathBuf {
        self.dir.path().join("blobs")
    }

    /// Starts writing a blob into the staging dir.
    pub(crate) fn blob_writer(&self) -> Result<HashingWriter<tempfile::NamedTempFile>> {
        let file = tempfile::Builder::new()
            .prefix(".part-")
            .tempfile_in(self.blob_dir())
            .map_err(Error::io("create a blob file in the staging dir"))?;
        Ok(HashingWriter::new(file))
    }

    /// Finishes a blob: checks it against `expected` (when known) and stages it under its
    /// digest. Returns the digest and size.
    pub(crate) fn commit_blob(
        &self,
        writer: HashingWriter<tempfile::NamedTempFile>,
        expected: Option<&str>,
    ) -> Result<(String, u64)> {
        let (mut file, digest, size) = writer.finish();
        file.flush().map_err(Error::io("write a staged blob"))?;
        if let Some(expected) = expected {
            if expected != digest {
                return Err(Error::DigestMismatch {
                    expected: expected.to_owned(),
                    actual: digest,
                });
            }
        }
        let hex = digest_hex(&digest)?;
        file.persist(self.blob_dir().join(hex))
            .map_err(|e| Error::io(format!("stage blob {digest}"))(e.error))?;
        Ok((digest, size))
    }

    /// Stages `bytes` as a blob.
    pub(crate) fn put_blob(&self, bytes: &[u8]) -> Result<String> {
        let mut w = self.blob_writer()?;
        w.write_all(bytes)
            .map_err(Error::io("write a staged blob"))?;
        Ok(self.commit_blob(w, None)?.0)
    }

    /// Removes staging dirs under `tmp_root` that no live operation holds.
    pub(crate) fn clean_stale(tmp_root: &Path) {
        let Ok(entries) = fs::read_dir(tmp_root) else {
            return;
        };
        for entry in entries.flatten() {
            let Ok(file) = File::open(entry.path()) else {
                continue;
            };
            // Held by a running operation (this process or another): leave it.
            let Ok(lock) = Flock::lock(file, FlockArg::LockExclusiveNonblock) else {
                continue;
            };
            tracing::info!(path = %entry.path().display(), "Removing a staging dir left by an interrupted operation");
            if let Err(e) = remove_tree(&entry.path()) {
                tracing::warn!(path = %entry.path().display(), error = %e, "Cannot remove a stale staging dir");
            }
            drop(lock);
        }
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        // TempDir's own removal is not made for hostile trees of any depth; ours is.
        if let Err(e) = remove_tree(self.dir.path()) {
            tracing::warn!(path = %self.dir.path().display(), error = %e, "Cannot remove a staging dir");
        }
    }
}

/// Removes the directory `path` (a store-owned path) and everything below it without
/// following symlinks, however deep.
pub(crate) fn remove_tree(path: &Path) -> io::Result<()> {
    let (Some(parent), Some(name)) = (path.parent(), path.file_name()) else {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "cannot remove a root path",
        ));
    };
    let dir = File::open(parent)?;
    confined::remove_all_at(dir.as_fd(), name)
}

/// Where the blobs of the store live, and how they are read back (always verified).
#[derive(Debug, Clone)]
pub(crate) struct BlobStore {
    dir: PathBuf,
}

impl BlobStore {
    pub(crate) fn new(dir: PathBuf) -> Self {
        Self { dir }
    }

    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    /// The path of a blob: staged in `staging` or already stored; `None` when neither.
    pub(crate) fn find(&self, staging: Option<&Staging>, digest: &str) -> Result<Option<PathBuf>> {
        let hex = digest_hex(digest)?;
        if let Some(staging) = staging {
            let staged = staging.blob_dir().join(hex);
            if staged.exists() {
                return Ok(Some(staged));
            }
        }
        let stored = self.dir.join(hex);
        Ok(stored.exists().then_some(stored))
    }

    /// Reads a small (JSON) blob and checks its digest.
    pub(crate) fn read_json_blob(
        &self,
        staging: Option<&Staging>,
        digest: &str,
    ) -> Result<Vec<u8>> {
        let path = self
            .find(staging, digest)?
            .ok_or_else(|| Error::MissingBlob(digest.to_owned()))?;
        let file = File::open(&path).map_err(Error::io(format!("read blob {digest}")))?;
        let mut bytes = Vec::new();
        file.take(MAX_JSON_BLOB + 1)
            .read_to_end(&mut bytes)
            .map_err(Error::io(format!("read blob {digest}")))?;
        if bytes.len() as u64 > MAX_JSON_BLOB {
            return Err(Error::BlobTooLarge {
                digest: digest.to_owned(),
                size: bytes.len() as u64,
                max: MAX_JSON_BLOB,
            });
        }
        let actual = sha256_digest(&bytes);
        if actual != digest {
            return Err(Error::DigestMismatch {
                expected: digest.to_owned(),
                actual,
            });
        }
        Ok(bytes)
    }

    /// Moves a staged blob into the store (a no-op when it is already there).
    pub(crate) fn adopt(&self, staging: &Staging, digest: &str) -> Result<()> {
        let hex = digest_hex(digest)?;
        let staged = staging.blob_dir().join(hex);
        let stored = self.dir.join(hex);
        if stored.exists() || !staged.exists() {
            return Ok(());
        }
        fs::rename(&staged, &stored).map_err(Error::io(format!("store blob {digest}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests() {
        let d = sha256_digest(b"");
        assert_eq!(
            d,
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert!(digest_hex(&d).is_ok());
        for bad in [
            "sha256:../../etc",
            "sha512:00",
            "e3b0",
            &d.to_uppercase(),
            &format!("{d}0"),
        ] {
            assert!(digest_hex(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn staged_blobs_are_verified() {
        let tmp = tempfile::tempdir().unwrap();
        let staging = Staging::new(tmp.path()).unwrap();
        let mut w = staging.blob_writer().unwrap();
        w.write_all(b"hello").unwrap();
        let err = staging
            .commit_blob(w, Some(&sha256_digest(b"other")))
            .unwrap_err();
        assert!(matches!(err, Error::DigestMismatch { .. }), "{err}");
        let d = staging.put_blob(b"hello").unwrap();
        let store = BlobStore::new(tmp.path().join("store"));
        fs::create_dir(store.dir()).unwrap();
        assert_eq!(store.read_json_blob(Some(&staging), &d).unwrap(), b"hello");
        store.adopt(&staging, &d).unwrap();
        assert_eq!(store.read_json_blob(None, &d).unwrap(), b"hello");
        // A stored blob whose bytes changed is refused.
        fs::write(store.dir().join(digest_hex(&d).unwrap()), b"tampered").unwrap();
        assert!(matches!(
            store.read_json_blob(None, &d),
            Err(Error::DigestMismatch { .. })
        ));
        let path = staging.path().to_owned();
        drop(staging);
        assert!(!path.exists());
    }
}
