//! Importing image archives: an OCI image layout in a tar (`oci-layout`, `index.json`,
//! `blobs/sha256/...`) or a `docker save` tar (`manifest.json`, config JSON, layer tars),
//! optionally gzip or zstd compressed as a whole.
//!
//! The archive is read once: every regular file in it is hashed while it is staged as a
//! blob (files under `blobs/sha256/` must match their name), the small metadata files are
//! kept in memory. Paths in the archive are only ever used as keys, never as file names.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, BufReader, Read, Write};
use std::path::Path;

use serde::Deserialize;

use crate::blobs::{digest_hex, Staging, MAX_JSON_BLOB};
use crate::error::{Error, Result};
use crate::oci::{
    self, name_from_annotations, name_from_reference, parse_document, sanitize_name, Document,
};
use crate::store::ProgressReader;
use crate::{validate_name, ImageInfo, ImageStore, Progress};

/// How deep nested indexes are followed.
const MAX_INDEX_DEPTH: usize = 4;
/// The most files an archive may have.
const MAX_ARCHIVE_FILES: usize = 100_000;

/// One `docker save` manifest entry.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DockerManifest {
    config: String,
    #[serde(default)]
    repo_tags: Option<Vec<String>>,
    layers: Vec<String>,
}

/// What the archive holds, by path.
#[derive(Default)]
struct Contents {
    /// Small metadata files kept in memory.
    meta: HashMap<String, Vec<u8>>,
    /// Every other regular file, staged as a blob: path -> (digest, size).
    files: HashMap<String, (String, u64)>,
    /// Symlinks (legacy `docker save` links duplicate layers): path -> target path.
    links: HashMap<String, String>,
}

impl Contents {
    /// The staged blob at `path`, following up to 8 symlinks.
    fn file(&self, path: &str) -> Option<&(String, u64)> {
        let mut path = normalize(path);
        for _ in 0..8 {
            if let Some(f) = self.files.get(&path) {
                return Some(f);
            }
            path = self.links.get(&path)?.clone();
        }
        None
    }
}

impl ImageStore {
    /// Imports an OCI image layout tar or a `docker save` tar. The name defaults to the
    /// archive's repo tag (or its `io.containerd.image.name` / full
    /// `org.opencontainers.image.ref.name` annotation), else the file name.
    pub fn import_archive(
        &self,
        file: &Path,
        name: Option<&str>,
        progress: &dyn Progress,
    ) -> Result<ImageInfo> {
        if let Some(name) = name {
            validate_name(name)?;
        }
        let invalid = |reason: &str| Error::InvalidArchive {
            file: file.to_owned(),
            reason: reason.to_owned(),
        };
        progress.stage(&format!("Reading {}", file.display()));
        let staging = self.staging()?;
        let contents = read_archive(file, &staging, self.limits().max_bytes, progress)?;

        let (manifest, found_name) = if let Some(index) = contents.meta.get("index.json") {
            let (manifest, annotated) = self.pick_from_layout(&staging, index, file)?;
            (manifest, annotated)
        } else if let Some(docker) = contents.meta.get("manifest.json") {
            docker_manifest(&staging, &contents, docker, file)?
        } else {
            return Err(invalid("it has neither index.json nor manifest.json"));
        };
        let name = match name {
            Some(n) => n.to_owned(),
            None => found_name
                .or_else(|| name_from_file(file))
                .ok_or_else(|| invalid("no image name could be derived; pass --name"))?,
        };
        self.install(staging, &manifest, &name, "import", progress)
    }

    /// Follows `index.json` (and nested indexes) to the manifest for this host.
    fn pick_from_layout(
        &self,
        staging: &Staging,
        index: &[u8],
        file: &Path,
    ) -> Result<(String, Option<String>)> {
        let mut doc = parse_document("index.json", index)?;
        let mut name = None;
        for _ in 0..MAX_INDEX_DEPTH {
            let Document::Index(index) = doc else { break };
            let chosen = oci::pick_platform(&index)
                .ok_or_else(|| Error::NoMatchingPlatform(file.display().to_string()))?;
            name = name.or_else(|| name_from_annotations(chosen.annotations().as_ref()));
            let digest = chosen.digest().to_string();
            let bytes = self.blobs().read_json_blob(Some(staging), &digest)?;
            match parse_document(&digest, &bytes)? {
                Document::Manifest(_) => return Ok((digest, name)),
                nested => doc = nested,
            }
        }
        Err(Error::InvalidArchive {
            file: file.to_owned(),
            reason: "its index does not lead to an image manifest".into(),
        })
    }
}

/// Builds and stages an OCI manifest for a `docker save` archive.
fn docker_manifest(
    staging: &Staging,
    contents: &Contents,
    json: &[u8],
    file: &Path,
) -> Result<(String, Option<String>)> {
    let invalid = |reason: String| Error::InvalidArchive {
        file: file.to_owned(),
        reason,
    };
    let entries: Vec<DockerManifest> = serde_json::from_slice(json)
        .map_err(|e| invalid(format!("its manifest.json is invalid ({e})")))?;
    let Some(entry) = entries.first() else {
        return Err(invalid("its manifest.json lists no image".into()));
    };
    let missing = |path: &str| invalid(format!("it has no file \"{path}\""));
    let (config_digest, config_size) = contents
        .file(&entry.config)
        .ok_or_else(|| missing(&entry.config))?;
    let mut layers = Vec::new();
    for layer in &entry.layers {
        let (digest, size) = contents.file(layer).ok_or_else(|| missing(layer))?;
        let path = staging.blob_dir().join(digest_hex(digest)?);
        let mut head = [0u8; 4];
        let n = File::open(&path)
            .and_then(|mut f| f.read(&mut head))
            .map_err(Error::io(format!("read blob {digest}")))?;
        layers.push((oci::layer_media_type(&head[..n]), digest.clone(), *size));
    }
    let manifest = oci::manifest((config_digest, *config_size), &layers)?;
    let digest = staging.put_blob(&manifest)?;
    let name = entry
        .repo_tags
        .as_ref()
        .and_then(|t| t.first())
        .and_then(|t| name_from_reference(t));
    Ok((digest, name))
}

/// Reads the whole archive into `staging`.
fn read_archive(
    file: &Path,
    staging: &Staging,
    max_bytes: u64,
    progress: &dyn Progress,
) -> Result<Contents> {
    let invalid = |reason: String| Error::InvalidArchive {
        file: file.to_owned(),
        reason,
    };
    let f = File::open(file).map_err(Error::io(format!("open {}", file.display())))?;
    let total = f.metadata().map(|m| m.len()).ok();
    let reader = ProgressReader::new(BufReader::new(f), progress, total);
    let stream = decompress(reader).map_err(|e| invalid(e.to_string()))?;
    let mut archive = tar::Archive::new(stream);
    let mut contents = Contents::default();
    let mut staged_bytes: u64 = 0;
    let entries = archive.entries().map_err(|e| invalid(e.to_string()))?;
    for (count, entry) in entries.enumerate() {
        if count >= MAX_ARCHIVE_FILES {
            return Err(invalid(format!(
                "it has more than {MAX_ARCHIVE_FILES} files"
            )));
        }
        let mut entry = entry.map_err(|e| invalid(format!("its tar stream is invalid ({e})")))?;
        staged_bytes = staged_bytes.saturating_add(entry.size());
        if staged_bytes > max_bytes {
            return Err(invalid(format!("it holds more than {max_bytes} bytes")));
        }
        let path = normalize(&String::from_utf8_lossy(&entry.path_bytes()));
        match entry.header().entry_type() {
            tar::EntryType::Regular | tar::EntryType::Continuous => {}
            tar::EntryType::Symlink => {
                if let Some(target) = entry.link_name_bytes() {
                    let target = String::from_utf8_lossy(&target).into_owned();
                    let base = path.rsplit_once('/').map_or("", |(dir, _)| dir);
                    contents
                        .links
                        .insert(path.clone(), normalize(&format!("{base}/{target}")));
                }
                continue;
            }
            _ => continue,
        }
        if matches!(
            path.as_str(),
            "index.json" | "oci-layout" | "manifest.json" | "repositories"
        ) {
            if entry.size() > MAX_JSON_BLOB {
                return Err(invalid(format!(
                    "its {path} is larger than {MAX_JSON_BLOB} bytes"
                )));
            }
            let mut bytes = Vec::new();
            entry
                .read_to_end(&mut bytes)
                .map_err(|e| invalid(e.to_string()))?;
            contents.meta.insert(path, bytes);
            continue;
        }
        let expected = path
            .strip_prefix("blobs/sha256/")
            .map(|hex| format!("sha256:{hex}"))
            .filter(|d| digest_hex(d).is_ok());
        let mut writer = staging.blob_writer()?;
        copy(&mut entry, &mut writer)
            .map_err(|e| invalid(format!("{path} cannot be read ({e})")))?;
        let staged = staging.commit_blob(writer, expected.as_deref())?;
        contents.files.insert(path, staged);
    }
    Ok(contents)
}

fn copy(from: &mut impl Read, to: &mut impl Write) -> io::Result<u64> {
    io::copy(from, to)
}

/// A whole-archive decompressor (the archive itself may be `docker save | gzip`).
fn decompress<'a, R: Read + 'a>(reader: R) -> io::Result<Box<dyn Read + 'a>> {
    let mut reader = BufReader::new(reader);
    let head = io::BufRead::fill_buf(&mut reader)?.to_vec();
    Ok(match oci::layer_media_type(&head) {
        oci_spec::image::MediaType::ImageLayerGzip => {
            Box::new(flate2::read::MultiGzDecoder::new(reader))
        }
        oci_spec::image::MediaType::ImageLayerZstd => {
            Box::new(zstd::stream::read::Decoder::with_buffer(reader)?)
        }
        _ => Box::new(reader),
    })
}

/// `./a//b/../c` -> `a/c` (archive paths are only keys; `..` pops like a shell would).
fn normalize(path: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    for comp in path.split('/') {
        match comp {
            "" | "." => {}
            ".." => {
                out.pop();
            }
            c => out.push(c),
        }
    }
    out.join("/")
}

/// `images/alpine.tar.gz` -> `alpine`.
fn name_from_file(file: &Path) -> Option<String> {
    let mut stem = file.file_name()?.to_str()?;
    for ext in [".gz", ".zst", ".tgz", ".tar"] {
        stem = stem.strip_suffix(ext).unwrap_or(stem);
    }
    sanitize_name(stem)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn archive_paths_and_names() {
        assert_eq!(normalize("./blobs//sha256/ab"), "blobs/sha256/ab");
        assert_eq!(normalize("x/../../y"), "y");
        assert_eq!(
            name_from_file(Path::new("/tmp/Alpine.tar.gz")).as_deref(),
            Some("alpine")
        );
        assert_eq!(name_from_file(Path::new("img.tar")).as_deref(), Some("img"));
        assert_eq!(name_from_file(Path::new(".tar")), None);
    }
}
