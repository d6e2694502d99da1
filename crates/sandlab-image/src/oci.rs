//! OCI documents: reading manifests, indexes and image configs, writing the ones the
//! store makes itself (Debian builds, `docker save` imports), and deriving image names.

use std::collections::HashMap;

use oci_spec::image::{
    Arch, ConfigBuilder, Descriptor, DescriptorBuilder, ImageConfigurationBuilder, ImageIndex,
    ImageManifest, ImageManifestBuilder, MediaType, Os, RootFsBuilder,
};
use serde::Deserialize;

use crate::error::{Error, Result};
use crate::{validate_name, ImageConfig};

/// The default `PATH` of images the store builds.
const DEFAULT_PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The OCI architecture name of this host (`amd64`, `arm64`, ...).
pub(crate) fn host_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "arm" => "arm",
        "powerpc64" => "ppc64le",
        "s390x" => "s390x",
        "riscv64" => "riscv64",
        other => other,
    }
}

/// A manifest, or an index of manifests (an image index or Docker manifest list).
pub(crate) enum Document {
    Manifest(Box<ImageManifest>),
    Index(Box<ImageIndex>),
}

/// Parses a manifest or index, telling them apart by `mediaType` or by their fields.
pub(crate) fn parse_document(digest: &str, bytes: &[u8]) -> Result<Document> {
    let invalid = |reason: String| Error::InvalidManifest {
        digest: digest.to_owned(),
        reason,
    };
    let value: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|e| invalid(e.to_string()))?;
    let media_type = value
        .get("mediaType")
        .and_then(|m| m.as_str())
        .unwrap_or_default();
    let is_index = media_type.contains("index")
        || media_type.contains("manifest.list")
        || value.get("manifests").is_some();
    if is_index {
        Ok(Document::Index(Box::new(
            serde_json::from_value(value).map_err(|e| invalid(e.to_string()))?,
        )))
    } else {
        let manifest: ImageManifest =
            serde_json::from_value(value).map_err(|e| invalid(e.to_string()))?;
        Ok(Document::Manifest(Box::new(manifest)))
    }
}

/// Picks the manifest for this host from an index: an exact `linux/<arch>` match, else
/// the only entry when there is one without a platform.
pub(crate) fn pick_platform(index: &ImageIndex) -> Option<&Descriptor> {
    let manifests = index.manifests();
    let wanted = host_arch();
    manifests
        .iter()
        .find(|d| {
            d.platform()
                .as_ref()
                .is_some_and(|p| *p.os() == Os::Linux && p.architecture().to_string() == wanted)
        })
        .or_else(|| match manifests.as_slice() {
            [only] if only.platform().is_none() => Some(only),
            _ => None,
        })
}

/// The parts of an image config the store uses; lenient about everything else
/// (Docker and OCI configs share these fields).
#[derive(Debug, Default, Deserialize)]
struct RawConfig {
    #[serde(default)]
    config: Option<RawProcess>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RawProcess {
    #[serde(default)]
    env: Option<Vec<String>>,
    #[serde(default)]
    working_dir: Option<String>,
    #[serde(default)]
    user: Option<String>,
    #[serde(default)]
    entrypoint: Option<Vec<String>>,
    #[serde(default)]
    cmd: Option<Vec<String>>,
}

/// Reads the process defaults from an image config blob.
pub(crate) fn parse_config(digest: &str, bytes: &[u8]) -> Result<ImageConfig> {
    let raw: RawConfig = serde_json::from_slice(bytes).map_err(|source| Error::InvalidConfig {
        digest: digest.to_owned(),
        source,
    })?;
    let p = raw.config.unwrap_or_default();
    Ok(ImageConfig {
        env: p.env.unwrap_or_default(),
        cwd: p.working_dir.filter(|s| !s.is_empty()),
        user: p.user.filter(|s| !s.is_empty()),
        entrypoint: p.entrypoint.unwrap_or_default(),
        cmd: p.cmd.unwrap_or_default(),
    })
}

/// An OCI config for a single-layer root file system whose uncompressed digest is `diff_id`.
pub(crate) fn rootfs_config(diff_id: &str, created: &str, comment: &str) -> Result<Vec<u8>> {
    let process = ConfigBuilder::default()
        .env(vec![DEFAULT_PATH.to_owned()])
        .cmd(vec!["/bin/bash".to_owned()])
        .build()
        .map_err(oci_err)?;
    let rootfs = RootFsBuilder::default()
        .typ("layers")
        .diff_ids(vec![diff_id.to_owned()])
        .build()
        .map_err(oci_err)?;
    let history = oci_spec::image::HistoryBuilder::default()
        .created(created.to_owned())
        .created_by(comment.to_owned())
        .build()
        .map_err(oci_err)?;
    let config = ImageConfigurationBuilder::default()
        .created(created.to_owned())
        .architecture(Arch::from(host_arch()))
        .os(Os::Linux)
        .config(process)
        .rootfs(rootfs)
        .history(vec![history])
        .build()
        .map_err(oci_err)?;
    serde_json::to_vec(&config).map_err(|e| oci_err(e.into()))
}

/// An OCI manifest for a config and layers, given as `(media type, digest, size)`.
pub(crate) fn manifest(
    config: (&str, u64),
    layers: &[(MediaType, String, u64)],
) -> Result<Vec<u8>> {
    let config = DescriptorBuilder::default()
        .media_type(MediaType::ImageConfig)
        .digest(parse_digest(config.0)?)
        .size(config.1)
        .build()
        .map_err(oci_err)?;
    let layers = layers
        .iter()
        .map(|(media_type, digest, size)| {
            DescriptorBuilder::default()
                .media_type(media_type.clone())
                .digest(parse_digest(digest)?)
                .size(*size)
                .build()
                .map_err(oci_err)
        })
        .collect::<Result<Vec<_>>>()?;
    let manifest = ImageManifestBuilder::default()
        .schema_version(2u32)
        .media_type(MediaType::ImageManifest)
        .config(config)
        .layers(layers)
        .build()
        .map_err(oci_err)?;
    serde_json::to_vec(&manifest).map_err(|e| oci_err(e.into()))
}

/// The layer media type for a blob, from its first bytes.
pub(crate) fn layer_media_type(head: &[u8]) -> MediaType {
    if head.starts_with(&[0x1f, 0x8b]) {
        MediaType::ImageLayerGzip
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        MediaType::ImageLayerZstd
    } else {
        MediaType::ImageLayer
    }
}

fn parse_digest(digest: &str) -> Result<oci_spec::image::Digest> {
    digest
        .parse()
        .map_err(|_| Error::InvalidDigest(digest.to_owned()))
}

fn oci_err(e: oci_spec::OciSpecError) -> Error {
    Error::Io {
        action: "write an OCI document".into(),
        source: std::io::Error::other(e),
    }
}

/// A store name for an image reference: the last part of its repository, with `-TAG`
/// unless the tag is `latest` (`docker.io/library/python:3.12-slim` -> `python-3.12-slim`).
pub(crate) fn name_from_reference(reference: &str) -> Option<String> {
    let without_digest = reference.split('@').next().unwrap_or_default();
    let last = without_digest.rsplit('/').next().unwrap_or_default();
    let (repo, tag) = match last.split_once(':') {
        Some((repo, tag)) => (repo, Some(tag)),
        None => (last, None),
    };
    let raw = match tag {
        Some(tag) if tag != "latest" && !tag.is_empty() => format!("{repo}-{tag}"),
        _ => repo.to_owned(),
    };
    sanitize_name(&raw)
}

/// Makes `raw` a valid image name: lower case, other characters replaced by `-`.
pub(crate) fn sanitize_name(raw: &str) -> Option<String> {
    let mapped: String = raw
        .to_lowercase()
        .chars()
        .map(|c| {
            if c.is_ascii_lowercase() || c.is_ascii_digit() || "._-".contains(c) {
                c
            } else {
                '-'
            }
        })
        .collect();
    let trimmed = mapped.trim_start_matches(['.', '_', '-']);
    let name: String = trimmed.chars().take(64).collect();
    validate_name(&name).ok().map(|()| name)
}

/// The name an OCI layout gives an image in its annotations, if it gives a full one.
/// A bare `org.opencontainers.image.ref.name` like `latest` is only a tag: no name.
pub(crate) fn name_from_annotations(
    annotations: Option<&HashMap<String, String>>,
) -> Option<String> {
    let annotations = annotations?;
    if let Some(full) = annotations.get("io.containerd.image.name") {
        return name_from_reference(full);
    }
    let ref_name = annotations.get("org.opencontainers.image.ref.name")?;
    if ref_name.contains('/') || ref_name.contains(':') {
        name_from_reference(ref_name)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_from_references() {
        assert_eq!(
            name_from_reference("docker.io/library/python:3.12-slim").as_deref(),
            Some("python-3.12-slim")
        );
        assert_eq!(
            name_from_reference("127.0.0.1:5000/test/img:latest").as_deref(),
            Some("img")
        );
        assert_eq!(name_from_reference("alpine").as_deref(), Some("alpine"));
        assert_eq!(
            name_from_reference("ghcr.io/X/Y_Z@sha256:00").as_deref(),
            Some("y_z")
        );
        assert_eq!(name_from_reference("").as_deref(), None);
        assert_eq!(sanitize_name("--My Image!").as_deref(), Some("my-image-"));
        let mut a = HashMap::new();
        a.insert(
            "org.opencontainers.image.ref.name".to_owned(),
            "latest".to_owned(),
        );
        assert_eq!(name_from_annotations(Some(&a)), None);
        a.insert(
            "io.containerd.image.name".to_owned(),
            "docker.io/library/busybox:1.36".to_owned(),
        );
        assert_eq!(
            name_from_annotations(Some(&a)).as_deref(),
            Some("busybox-1.36")
        );
    }

    #[test]
    fn configs_are_read_leniently() {
        let c = parse_config(
            "sha256:x",
            br#"{"config":{"Env":["A=1"],"Cmd":null,"WorkingDir":"","User":"1000"},"other":1}"#,
        )
        .unwrap();
        assert_eq!(
            c,
            ImageConfig {
                env: vec!["A=1".into()],
                user: Some("1000".into()),
                ..Default::default()
            }
        );
        assert_eq!(
            parse_config("sha256:x", b"{}").unwrap(),
            ImageConfig::default()
        );
        assert!(parse_config("sha256:x", b"[").is_err());
    }

    #[test]
    fn generated_documents_parse_back() {
        let diff = crate::blobs::sha256_digest(b"layer");
        let config = rootfs_config(&diff, "2024-01-01T00:00:00Z", "test").unwrap();
        assert_eq!(
            parse_config("sha256:x", &config).unwrap().cmd,
            vec!["/bin/bash"]
        );
        let cd = crate::blobs::sha256_digest(&config);
        let m = manifest(
            (&cd, config.len() as u64),
            &[(MediaType::ImageLayer, diff.clone(), 5)],
        )
        .unwrap();
        let Document::Manifest(m) = parse_document("sha256:m", &m).unwrap() else {
            panic!("not a manifest")
        };
        assert_eq!(m.layers()[0].digest().to_string(), diff);
        assert_eq!(m.config().digest().to_string(), cd);
    }
}
