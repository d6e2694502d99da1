//! The image store: refs, trees and blobs in `<data>/images`, and how an image is
//! installed (unpacked, then committed under the store lock) and removed.

use std::collections::HashSet;
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use nix::fcntl::{Flock, FlockArg};
use serde::{Deserialize, Serialize};

use crate::blobs::{digest_hex, remove_tree, BlobStore, Staging};
use crate::error::{Error, Result};
use crate::oci::{parse_config, parse_document, Document};
use crate::unpack::{UnpackLimits, Unpacker};
use crate::{mounts, validate_name, IdMap, Image, ImageInfo, Progress};

/// The largest ref file read.
const MAX_REF_FILE: u64 = 64 << 10;

/// The image store kept in `<data>/images`. Cheap to clone; every method is blocking
/// except [`ImageStore::pull`].
#[derive(Debug, Clone)]
pub struct ImageStore {
    root: PathBuf,
    blobs: BlobStore,
    idmap: IdMap,
    limits: UnpackLimits,
}

/// What the store remembers about an unpacked tree.
#[derive(Debug, Default, Serialize, Deserialize)]
struct TreeInfo {
    size: u64,
    entries: u64,
}

/// A manifest checked to be installable: its config and layers.
pub(crate) struct Parts {
    pub(crate) config: String,
    pub(crate) layers: Vec<String>,
}

impl ImageStore {
    /// Opens (creating it when missing) the store in `<data_dir>/images`, and removes
    /// what interrupted operations left behind.
    pub fn open(data_dir: &Path, idmap: IdMap) -> Result<Self> {
        if !idmap.is_valid() {
            return Err(Error::InvalidIdMap {
                host: idmap.host_uid,
                size: idmap.size,
            });
        }
        let root = data_dir.join("images");
        for sub in ["blobs/sha256", "trees", "refs", "tmp"] {
            let dir = root.join(sub);
            fs::create_dir_all(&dir).map_err(Error::io(format!("create {}", dir.display())))?;
        }
        let root = root
            .canonicalize()
            .map_err(Error::io(format!("open {}", root.display())))?;
        Staging::clean_stale(&root.join("tmp"));
        Ok(Self {
            blobs: BlobStore::new(root.join("blobs/sha256")),
            root,
            idmap,
            limits: UnpackLimits::default(),
        })
    }

    /// Replaces the default unpack limits (16 GiB, 2,000,000 entries per image).
    pub fn with_limits(mut self, limits: UnpackLimits) -> Self {
        self.limits = limits;
        self
    }

    /// The store's directory, `<data>/images`.
    pub fn path(&self) -> &Path {
        &self.root
    }

    /// The id map trees are unpacked with.
    pub fn idmap(&self) -> IdMap {
        self.idmap
    }

    /// Finds an image by name.
    pub fn resolve(&self, name: &str) -> Result<Image> {
        validate_name(name)?;
        let info = self
            .read_ref(name)?
            .ok_or_else(|| Error::NotFound(name.to_owned()))?;
        let damaged = |reason: String| Error::Damaged {
            name: name.to_owned(),
            reason,
        };
        let hex = digest_hex(&info.digest).map_err(|e| damaged(e.to_string()))?;
        let rootfs = self.root.join("trees").join(hex).join("rootfs");
        if !rootfs.is_dir() {
            return Err(damaged(
                "its unpacked tree is missing; remove it and import it again".into(),
            ));
        }
        let parts = self
            .manifest_parts(None, &info.digest)
            .map_err(|e| damaged(e.to_string()))?;
        let config_bytes = self
            .blobs
            .read_json_blob(None, &parts.config)
            .map_err(|e| damaged(e.to_string()))?;
        let config = parse_config(&parts.config, &config_bytes)?;
        Ok(Image {
            name: info.name,
            digest: info.digest,
            rootfs,
            config,
        })
    }

    /// Lists the stored images, sorted by name.
    pub fn list(&self) -> Result<Vec<ImageInfo>> {
        let dir = self.root.join("refs");
        let entries = fs::read_dir(&dir).map_err(Error::io(format!("list {}", dir.display())))?;
        let mut out = Vec::new();
        for entry in entries {
            let entry = entry.map_err(Error::io(format!("list {}", dir.display())))?;
            let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
                continue;
            };
            if validate_name(&name).is_err() {
                continue; // temp files and strays
            }
            match self.read_ref(&name) {
                Ok(Some(info)) => out.push(info),
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!(image.name = %name, error = %e, "Skipping an unreadable image ref")
                }
            }
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// Removes an image: its ref, and its tree and blobs when no other name uses them.
    /// Refused while its tree is a lower layer of a mounted overlay.
    pub fn remove(&self, name: &str) -> Result<()> {
        validate_name(name)?;
        let _lock = self.lock()?;
        let info = self
            .read_ref(name)?
            .ok_or_else(|| Error::NotFound(name.to_owned()))?;
        let shared = self
            .list()?
            .iter()
            .any(|i| i.name != name && i.digest == info.digest);
        if !shared {
            if let Ok(hex) = digest_hex(&info.digest) {
                let busy = mounts::busy_paths().map_err(Error::io("read /proc/self/mountinfo"))?;
                if mounts::is_busy(&self.root.join("trees").join(hex), &busy) {
                    return Err(Error::InUse(name.to_owned()));
                }
            }
        }
        let path = self.root.join("refs").join(name);
        fs::remove_file(&path).map_err(Error::io(format!("remove {}", path.display())))?;
        tracing::info!(image.name = %name, image.digest = %info.digest, "Removed image");
        self.gc_locked();
        Ok(())
    }

    pub(crate) fn limits(&self) -> UnpackLimits {
        self.limits
    }

    pub(crate) fn blobs(&self) -> &BlobStore {
        &self.blobs
    }

    pub(crate) fn staging(&self) -> Result<Staging> {
        Staging::new(&self.root.join("tmp"))
    }

    /// Reads a manifest (staged or stored) and checks that it is an image manifest.
    pub(crate) fn manifest_parts(&self, staging: Option<&Staging>, digest: &str) -> Result<Parts> {
        let bytes = self.blobs.read_json_blob(staging, digest)?;
        let Document::Manifest(manifest) = parse_document(digest, &bytes)? else {
            return Err(Error::InvalidManifest {
                digest: digest.to_owned(),
                reason: "it is an index, not an image manifest".into(),
            });
        };
        let config = manifest.config().digest().to_string();
        digest_hex(&config)?;
        let layers: Vec<String> = manifest
            .layers()
            .iter()
            .map(|l| l.digest().to_string())
            .collect();
        for layer in &layers {
            digest_hex(layer)?;
        }
        Ok(Parts { config, layers })
    }

    /// Unpacks the staged image `manifest` (unless its tree exists) and commits it as `name`.
    pub(crate) fn install(
        &self,
        staging: Staging,
        manifest: &str,
        name: &str,
        source: &str,
        progress: &dyn Progress,
    ) -> Result<ImageInfo> {
        validate_name(name)?;
        let parts = self.manifest_parts(Some(&staging), manifest)?;
        let config_bytes = self.blobs.read_json_blob(Some(&staging), &parts.config)?;
        parse_config(&parts.config, &config_bytes)?;
        for layer in &parts.layers {
            if self.blobs.find(Some(&staging), layer)?.is_none() {
                return Err(Error::MissingBlob(layer.clone()));
            }
        }
        let tree = self.root.join("trees").join(digest_hex(manifest)?);
        let tree_info = if tree.join("rootfs").is_dir() {
            read_tree_info(&tree)
        } else {
            self.unpack(&staging, &parts.layers, progress)?
        };

        progress.stage(&format!("Storing image {name}"));
        let _lock = self.lock()?;
        for digest in [manifest, &parts.config]
            .into_iter()
            .chain(parts.layers.iter().map(String::as_str))
        {
            self.blobs.adopt(&staging, digest)?;
        }
        if !tree.join("rootfs").is_dir() {
            let staged = staging.path().join("tree");
            fs::rename(&staged, &tree).map_err(Error::io(format!(
                "move the unpacked tree to {}",
                tree.display()
            )))?;
        }
        let info = ImageInfo {
            name: name.to_owned(),
            digest: manifest.to_owned(),
            size: tree_info.size,
            created: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
            source: source.to_owned(),
        };
        self.write_ref(&info)?;
        tracing::info!(image.name = %name, image.digest = %manifest, image.size = info.size, "Stored image");
        self.gc_locked();
        Ok(info)
    }

    /// Unpacks `layers` into `<staging>/tree/rootfs`.
    fn unpack(
        &self,
        staging: &Staging,
        layers: &[String],
        progress: &dyn Progress,
    ) -> Result<TreeInfo> {
        let tree = staging.path().join("tree");
        let rootfs = tree.join("rootfs");
        fs::create_dir_all(&rootfs).map_err(Error::io("create the staging tree"))?;
        let (uid, gid) = (self.idmap.map_uid(0), self.idmap.map_gid(0));
        if let (Some((uid, _)), Some((gid, _))) = (uid, gid) {
            std::os::unix::fs::chown(&rootfs, Some(uid), Some(gid))
                .map_err(Error::io("chown the staging tree"))?;
        }
        let mut unpacker = Unpacker::new(&rootfs, self.idmap, self.limits)?;
        for (i, layer) in layers.iter().enumerate() {
            progress.stage(&format!(
                "Unpacking layer {}/{} {}",
                i + 1,
                layers.len(),
                short(layer)
            ));
            let path = self
                .blobs
                .find(Some(staging), layer)?
                .ok_or_else(|| Error::MissingBlob(layer.clone()))?;
            let file = File::open(&path).map_err(Error::io(format!("read blob {layer}")))?;
            let total = file.metadata().map(|m| m.len()).ok();
            unpacker.unpack_layer(layer, ProgressReader::new(file, progress, total))?;
        }
        let stats = unpacker.stats();
        tracing::debug!(?stats, "Unpacked image layers");
        // What whiteouts removed is not in the tree any more: measure what is.
        let size = tree_size(&rootfs).unwrap_or_else(|e| {
            tracing::warn!(error = %e, "Cannot measure the unpacked tree; using the bytes written");
            stats.bytes
        });
        let info = TreeInfo {
            size,
            entries: stats.entries,
        };
        let json = serde_json::to_vec(&info).map_err(|e| Error::io("write tree.json")(e.into()))?;
        fs::write(tree.join("tree.json"), json).map_err(Error::io("write tree.json"))?;
        Ok(info)
    }

    fn read_ref(&self, name: &str) -> Result<Option<ImageInfo>> {
        let path = self.root.join("refs").join(name);
        let file = match File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::io(format!("read {}", path.display()))(e)),
        };
        let mut bytes = Vec::new();
        file.take(MAX_REF_FILE)
            .read_to_end(&mut bytes)
            .map_err(Error::io(format!("read {}", path.display())))?;
        let info: ImageInfo = serde_json::from_slice(&bytes).map_err(|e| Error::Damaged {
            name: name.to_owned(),
            reason: format!("its ref is not valid JSON ({e})"),
        })?;
        if info.name != name {
            return Err(Error::Damaged {
                name: name.to_owned(),
                reason: format!("its ref names \"{}\"", info.name),
            });
        }
        Ok(Some(info))
    }

    fn write_ref(&self, info: &ImageInfo) -> Result<()> {
        let dir = self.root.join("refs");
        let action = || format!("write the ref of image {}", info.name);
        let mut tmp = tempfile::Builder::new()
            .prefix(".ref-")
            .tempfile_in(&dir)
            .map_err(Error::io(action()))?;
        let json = serde_json::to_vec_pretty(info).map_err(|e| Error::io(action())(e.into()))?;
        tmp.write_all(&json).map_err(Error::io(action()))?;
        tmp.as_file().sync_all().map_err(Error::io(action()))?;
        tmp.persist(dir.join(&info.name))
            .map_err(|e| Error::io(action())(e.error))?;
        Ok(())
    }

    fn lock(&self) -> Result<Flock<File>> {
        let path = self.root.join(".lock");
        let file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(Error::io(format!("open {}", path.display())))?;
        Flock::lock(file, FlockArg::LockExclusive)
            .map_err(|(_, e)| Error::io(format!("lock {}", path.display()))(e.into()))
    }

    /// Removes trees that no ref uses (unless mounted) and blobs that no ref's manifest
    /// names. Needs the store lock. Failures are logged: they only leave garbage.
    fn gc_locked(&self) {
        let refs = match self.list() {
            Ok(refs) => refs,
            Err(e) => return tracing::warn!(error = %e, "Cannot list images to collect garbage"),
        };
        let live: HashSet<&str> = refs
            .iter()
            .filter_map(|i| digest_hex(&i.digest).ok())
            .collect();
        match mounts::busy_paths() {
            Ok(busy) => self.gc_trees(&live, &busy),
            Err(e) => tracing::warn!(error = %e, "Cannot read mountinfo; keeping unused trees"),
        }
        let mut keep = HashSet::new();
        for info in &refs {
            match self.manifest_parts(None, &info.digest) {
                Ok(parts) => {
                    keep.insert(info.digest.clone());
                    keep.insert(parts.config);
                    keep.extend(parts.layers);
                }
                Err(e) => {
                    return tracing::warn!(image.name = %info.name, error = %e, "Cannot read a manifest; keeping all blobs");
                }
            }
        }
        let Ok(entries) = fs::read_dir(self.blobs.dir()) else {
            return;
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if !keep.contains(&format!("sha256:{name}")) {
                if let Err(e) = fs::remove_file(entry.path()) {
                    tracing::warn!(blob = %name, error = %e, "Cannot remove an unused blob");
                }
            }
        }
    }

    fn gc_trees(&self, live: &HashSet<&str>, busy: &[PathBuf]) {
        let Ok(entries) = fs::read_dir(self.root.join("trees")) else {
            return;
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if live.contains(name.as_str()) {
                continue;
            }
            if mounts::is_busy(&entry.path(), busy) {
                tracing::info!(tree = %name, "Keeping an unused tree that is still mounted");
                continue;
            }
            // Move it out of trees/ first so a crash mid-removal leaves no half tree there.
            let nanos = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.subsec_nanos());
            let trash = self
                .root
                .join("tmp")
                .join(format!("trash-{name}-{}-{nanos}", std::process::id()));
            let result = fs::rename(entry.path(), &trash).and_then(|()| remove_tree(&trash));
            if let Err(e) = result {
                tracing::warn!(tree = %name, error = %e, "Cannot remove an unused tree");
            }
        }
    }
}

/// Bytes of regular files in a (private, just unpacked) tree, hard links counted once.
/// Never follows symlinks; an explicit stack, so depth costs no recursion.
fn tree_size(root: &Path) -> io::Result<u64> {
    use std::os::unix::fs::MetadataExt;
    let mut seen = HashSet::new();
    let mut total = 0u64;
    let mut stack = vec![root.to_owned()];
    while let Some(dir) = stack.pop() {
        for entry in fs::read_dir(&dir)? {
            let entry = entry?;
            let meta = entry.metadata()?; // lstat: does not follow symlinks
            if meta.is_dir() {
                stack.push(entry.path());
            } else if meta.is_file() && (meta.nlink() == 1 || seen.insert((meta.dev(), meta.ino())))
            {
                total += meta.len();
            }
        }
    }
    Ok(total)
}

fn read_tree_info(tree: &Path) -> TreeInfo {
    fs::read(tree.join("tree.json"))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default()
}

/// `sha256:0123456789ab`.
pub(crate) fn short(digest: &str) -> &str {
    digest.get(..19).unwrap_or(digest)
}

/// Reports bytes read to a [`Progress`], at most once per MiB.
pub(crate) struct ProgressReader<'a, R> {
    pub(crate) inner: R,
    pub(crate) progress: &'a dyn Progress,
    pub(crate) done: u64,
    pub(crate) reported: u64,
    pub(crate) total: Option<u64>,
}

impl<'a, R> ProgressReader<'a, R> {
    /// Reports reading `inner` (of `total` bytes, when known) to `progress`.
    pub(crate) fn new(inner: R, progress: &'a dyn Progress, total: Option<u64>) -> Self {
        ProgressReader {
            inner,
            progress,
            done: 0,
            reported: 0,
            total,
        }
    }
}

impl<R: Read> Read for ProgressReader<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.done += n as u64;
        if n == 0 || self.done - self.reported >= 1 << 20 {
            self.reported = self.done;
            self.progress.bytes(self.done, self.total);
        }
        Ok(n)
    }
}
