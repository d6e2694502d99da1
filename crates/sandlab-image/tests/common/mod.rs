//! Test helpers: layer tars built from raw headers (so hostile names survive), OCI
//! layouts and `docker save` archives, and canaries outside the unpack target.
#![allow(dead_code)]

use std::collections::BTreeSet;
use std::fs;
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use serde_json::json;
use sha2::{Digest, Sha256};
use tar::{EntryType, Header};

pub const MTIME: u64 = 1_600_000_000;

/// A layer tar written header by header, names copied raw into the header.
pub struct Layer {
    builder: tar::Builder<Vec<u8>>,
}

impl Default for Layer {
    fn default() -> Self {
        Self::new()
    }
}

impl Layer {
    pub fn new() -> Self {
        Self {
            builder: tar::Builder::new(Vec::new()),
        }
    }

    /// Appends an entry with `name` and `link` written verbatim (no validation).
    #[allow(clippy::too_many_arguments)] // mirrors the header fields one to one
    pub fn raw(
        &mut self,
        name: &[u8],
        kind: EntryType,
        link: &[u8],
        data: &[u8],
        mode: u32,
        uid: u64,
        gid: u64,
    ) -> &mut Self {
        let mut h = Header::new_gnu();
        {
            let old = h.as_old_mut();
            old.name[..name.len()].copy_from_slice(name);
            old.linkname[..link.len()].copy_from_slice(link);
        }
        h.set_entry_type(kind);
        h.set_size(data.len() as u64);
        h.set_mode(mode);
        h.set_uid(uid);
        h.set_gid(gid);
        h.set_mtime(MTIME);
        h.set_cksum();
        self.builder.append(&h, data).unwrap();
        self
    }

    pub fn file(&mut self, name: &str, data: &[u8]) -> &mut Self {
        self.raw(name.as_bytes(), EntryType::Regular, b"", data, 0o644, 0, 0)
    }

    pub fn file_owned(
        &mut self,
        name: &str,
        data: &[u8],
        mode: u32,
        uid: u64,
        gid: u64,
    ) -> &mut Self {
        self.raw(
            name.as_bytes(),
            EntryType::Regular,
            b"",
            data,
            mode,
            uid,
            gid,
        )
    }

    pub fn dir(&mut self, name: &str) -> &mut Self {
        self.raw(name.as_bytes(), EntryType::Directory, b"", b"", 0o755, 0, 0)
    }

    pub fn symlink(&mut self, name: &str, target: &str) -> &mut Self {
        self.raw(
            name.as_bytes(),
            EntryType::Symlink,
            target.as_bytes(),
            b"",
            0o777,
            0,
            0,
        )
    }

    pub fn hardlink(&mut self, name: &str, target: &str) -> &mut Self {
        self.raw(
            name.as_bytes(),
            EntryType::Link,
            target.as_bytes(),
            b"",
            0o644,
            0,
            0,
        )
    }

    pub fn device(&mut self, name: &str, kind: EntryType, major: u32, minor: u32) -> &mut Self {
        let mut h = Header::new_gnu();
        h.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
        h.set_entry_type(kind);
        h.set_size(0);
        h.set_mode(0o666);
        h.set_device_major(major).unwrap();
        h.set_device_minor(minor).unwrap();
        h.set_cksum();
        self.builder.append(&h, &b""[..]).unwrap();
        self
    }

    /// Appends a header whose declared size is `size`, followed by `data` (which may be
    /// shorter: the stream is then truncated).
    pub fn header_only(
        &mut self,
        name: &str,
        kind: EntryType,
        size: u64,
        data: &[u8],
    ) -> &mut Self {
        let mut h = Header::new_gnu();
        h.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
        h.set_entry_type(kind);
        h.set_size(size);
        h.set_mode(0o644);
        h.set_cksum();
        let inner = self.builder.get_mut();
        inner.extend_from_slice(h.as_bytes());
        inner.extend_from_slice(data);
        self
    }

    pub fn finish(self) -> Vec<u8> {
        self.builder.into_inner().unwrap()
    }
}

pub fn gzip(data: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(data).unwrap();
    gz.finish().unwrap()
}

pub fn sha256(data: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(data)))
}

/// A temp dir holding the unpack target `root/` and a canary file beside it; checks
/// that nothing outside `root/` changed.
pub struct Canary {
    pub outer: tempfile::TempDir,
    pub root: PathBuf,
    pub file: PathBuf,
    before: BTreeSet<PathBuf>,
    inode: (u64, u64, u64),
}

impl Canary {
    pub fn new() -> Self {
        let outer = tempfile::tempdir().unwrap();
        let root = outer.path().join("root");
        fs::create_dir(&root).unwrap();
        let file = outer.path().join("canary");
        fs::write(&file, b"original").unwrap();
        fs::create_dir(outer.path().join("canary-dir")).unwrap();
        fs::write(outer.path().join("canary-dir/keep"), b"keep").unwrap();
        let meta = fs::metadata(&file).unwrap();
        let mut canary = Self {
            root,
            file,
            before: BTreeSet::new(),
            outer,
            inode: (meta.ino(), meta.nlink(), meta.mtime() as u64),
        };
        canary.before = canary.outside();
        canary
    }

    /// The absolute path of the temp dir, as a string (for symlink targets).
    pub fn outer_str(&self) -> String {
        self.outer.path().to_str().unwrap().to_owned()
    }

    fn outside(&self) -> BTreeSet<PathBuf> {
        let mut out = BTreeSet::new();
        let mut stack = vec![self.outer.path().to_owned()];
        while let Some(dir) = stack.pop() {
            for entry in fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                if path == self.root {
                    continue;
                }
                if fs::symlink_metadata(&path).unwrap().is_dir() {
                    stack.push(path.clone());
                }
                out.insert(path);
            }
        }
        out
    }

    pub fn assert_untouched(&self) {
        assert_eq!(
            fs::read(&self.file).unwrap(),
            b"original",
            "canary content changed"
        );
        assert_eq!(
            fs::read(self.outer.path().join("canary-dir/keep")).unwrap(),
            b"keep"
        );
        let meta = fs::metadata(&self.file).unwrap();
        assert_eq!(
            (meta.ino(), meta.nlink(), meta.mtime() as u64),
            self.inode,
            "canary inode, link count or mtime changed"
        );
        assert_eq!(
            self.outside(),
            self.before,
            "files appeared or vanished outside the target"
        );
    }
}

/// Writes an OCI image layout (as a directory) for `layers` (already encoded blobs)
/// with a config carrying `env` and `cmd`; returns the manifest digest.
pub fn oci_layout(
    dir: &Path,
    layers: &[Vec<u8>],
    ref_name: &str,
    env: &[&str],
    cmd: &[&str],
) -> String {
    fs::create_dir_all(dir.join("blobs/sha256")).unwrap();
    let put = |data: &[u8]| {
        let d = sha256(data);
        fs::write(dir.join("blobs/sha256").join(&d[7..]), data).unwrap();
        d
    };
    let diff_ids: Vec<String> = layers.iter().map(|l| sha256(&decompressed(l))).collect();
    let config = serde_json::to_vec(&json!({
        "architecture": "amd64", "os": "linux",
        "config": {"Env": env, "Cmd": cmd, "WorkingDir": "/srv"},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    }))
    .unwrap();
    let config_digest = put(&config);
    let layer_descs: Vec<_> = layers
        .iter()
        .map(|l| {
            let media = if l.starts_with(&[0x1f, 0x8b]) {
                "application/vnd.oci.image.layer.v1.tar+gzip"
            } else {
                "application/vnd.oci.image.layer.v1.tar"
            };
            json!({"mediaType": media, "digest": put(l), "size": l.len()})
        })
        .collect();
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest, "size": config.len()},
        "layers": layer_descs,
    }))
    .unwrap();
    let manifest_digest = put(&manifest);
    let index = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": manifest_digest, "size": manifest.len(),
            "platform": {"architecture": "amd64", "os": "linux"},
            "annotations": {"org.opencontainers.image.ref.name": ref_name},
        }],
    });
    fs::write(dir.join("index.json"), serde_json::to_vec(&index).unwrap()).unwrap();
    fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    manifest_digest
}

fn decompressed(data: &[u8]) -> Vec<u8> {
    if data.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(data), &mut out).unwrap();
        out
    } else {
        data.to_vec()
    }
}

/// Tars up a directory (paths relative to it).
pub fn tar_dir(dir: &Path, out: &Path) {
    let mut b = tar::Builder::new(fs::File::create(out).unwrap());
    b.append_dir_all(".", dir).unwrap();
    b.finish().unwrap();
}

/// Writes a `docker save` archive: `manifest.json`, `<hex>.json` config, `<id>/layer.tar`.
pub fn docker_save(out: &Path, layers: &[Vec<u8>], repo_tag: &str, cmd: &[&str]) {
    let config = serde_json::to_vec(&json!({
        "architecture": "amd64", "os": "linux",
        "config": {"Env": ["PATH=/bin"], "Cmd": cmd, "User": "1000"},
        "rootfs": {"type": "layers", "diff_ids": layers.iter().map(|l| sha256(l)).collect::<Vec<_>>()},
    }))
    .unwrap();
    let config_name = format!("{}.json", &sha256(&config)[7..]);
    let mut b = tar::Builder::new(fs::File::create(out).unwrap());
    let mut add = |name: &str, data: &[u8]| {
        let mut h = Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        b.append_data(&mut h, name, data).unwrap();
    };
    let mut layer_names = Vec::new();
    for (i, layer) in layers.iter().enumerate() {
        let name = format!("{:064x}/layer.tar", i + 1);
        add(&name, layer);
        layer_names.push(name);
    }
    add(&config_name, &config);
    let manifest = json!([{"Config": config_name, "RepoTags": [repo_tag], "Layers": layer_names}]);
    add("manifest.json", &serde_json::to_vec(&manifest).unwrap());
    b.finish().unwrap();
}
