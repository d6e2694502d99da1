//! Pulling images from an OCI registry (anonymously) with `oci-client`.
//!
//! The manifest is fetched raw and hashed by us, an index is resolved to this host's
//! platform, and every blob is hashed while it is written to the staging dir (and checked
//! by `oci-client` as well). Layers already in the store are not downloaded again. The
//! unpack runs on a blocking thread; its progress is forwarded to the caller's
//! [`Progress`] from the async side.

use std::io::{self, Write};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::manifest::{
    IMAGE_MANIFEST_LIST_MEDIA_TYPE, IMAGE_MANIFEST_MEDIA_TYPE, OCI_IMAGE_INDEX_MEDIA_TYPE,
    OCI_IMAGE_MEDIA_TYPE,
};
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference};
use tokio::sync::mpsc;

use crate::blobs::{sha256_digest, HashingWriter, Staging, MAX_JSON_BLOB};
use crate::error::{Error, Result};
use crate::oci::{name_from_reference, parse_document, pick_platform, Document};
use crate::store::short;
use crate::{validate_name, ImageInfo, ImageStore, Progress};

const ACCEPTED: &[&str] = &[
    OCI_IMAGE_MEDIA_TYPE,
    IMAGE_MANIFEST_MEDIA_TYPE,
    OCI_IMAGE_INDEX_MEDIA_TYPE,
    IMAGE_MANIFEST_LIST_MEDIA_TYPE,
];
const MAX_INDEX_DEPTH: usize = 4;

impl ImageStore {
    /// Pulls `reference` (`[registry/]repo[:tag|@digest]`) anonymously and stores it as
    /// `name` (default: the repository's last part, `-TAG` unless the tag is `latest`).
    /// `insecure` talks plain HTTP to the registry.
    pub async fn pull(
        &self,
        reference: &str,
        name: Option<&str>,
        insecure: bool,
        progress: &dyn Progress,
    ) -> Result<ImageInfo> {
        let parsed: Reference = reference
            .parse()
            .map_err(|source| Error::InvalidReference {
                reference: reference.to_owned(),
                source,
            })?;
        let name = match name {
            Some(n) => n.to_owned(),
            None => {
                let tag = parsed.tag().unwrap_or("latest");
                name_from_reference(&format!("{}:{tag}", parsed.repository()))
                    .ok_or_else(|| Error::InvalidName(parsed.repository().to_owned()))?
            }
        };
        validate_name(&name)?;
        let config = ClientConfig {
            protocol: if insecure {
                ClientProtocol::Http
            } else {
                ClientProtocol::Https
            },
            connect_timeout: Some(Duration::from_secs(30)),
            read_timeout: Some(Duration::from_secs(120)),
            ..Default::default()
        };
        let client = Client::new(config);
        let registry_err = |source| Error::Registry {
            reference: reference.to_owned(),
            source,
        };

        progress.stage(&format!("Resolving {reference}"));
        let staging = self.staging()?;
        let manifest = resolve_manifest(&client, &parsed, &staging, reference).await?;
        let parts = self.manifest_parts(Some(&staging), &manifest)?;
        fetch_blob(&client, &parsed, &staging, &parts.config, None)
            .await
            .map_err(|e| e.or_registry(registry_err))?;

        let mut missing = Vec::new();
        for layer in &parts.layers {
            if self.blobs().find(Some(&staging), layer)?.is_none() {
                missing.push(layer.clone());
            }
        }
        let sizes = layer_sizes(&staging, self, &manifest)?;
        let total: u64 = missing
            .iter()
            .filter_map(|d| sizes.iter().find(|(l, _)| l == d).map(|(_, s)| *s))
            .sum();
        let mut done = 0;
        for (i, layer) in missing.iter().enumerate() {
            progress.stage(&format!(
                "Downloading layer {}/{} {}",
                i + 1,
                missing.len(),
                short(layer)
            ));
            let counter = Counter {
                progress,
                done: &mut done,
                total,
            };
            fetch_blob(&client, &parsed, &staging, layer, Some(counter))
                .await
                .map_err(|e| e.or_registry(registry_err))?;
        }

        let store = self.clone();
        let source = format!("pull {reference}");
        let (tx, mut rx) = mpsc::unbounded_channel();
        let task = tokio::task::spawn_blocking(move || {
            store.install(staging, &manifest, &name, &source, &ChannelProgress(tx))
        });
        while let Some(event) = rx.recv().await {
            match event {
                Event::Stage(s) => progress.stage(&s),
                Event::Bytes(d, t) => progress.bytes(d, t),
                Event::Line(l) => progress.line(&l),
            }
        }
        task.await.map_err(|e| Error::Io {
            action: "unpack the pulled image".into(),
            source: io::Error::other(e),
        })?
    }
}

/// Fetches the manifest (resolving indexes to this host's platform) and stages it.
async fn resolve_manifest(
    client: &Client,
    parsed: &Reference,
    staging: &Staging,
    reference: &str,
) -> Result<String> {
    let mut target = parsed.clone();
    for _ in 0..MAX_INDEX_DEPTH {
        let (bytes, registry_digest) = client
            .pull_manifest_raw(&target, &RegistryAuth::Anonymous, ACCEPTED)
            .await
            .map_err(|source| Error::Registry {
                reference: reference.to_owned(),
                source,
            })?;
        let digest = sha256_digest(&bytes);
        if bytes.len() as u64 > MAX_JSON_BLOB {
            return Err(Error::BlobTooLarge {
                digest,
                size: bytes.len() as u64,
                max: MAX_JSON_BLOB,
            });
        }
        let expected = target.digest().map(str::to_owned).or(Some(registry_digest));
        if let Some(expected) = expected.filter(|d| d.starts_with("sha256:")) {
            if expected != digest {
                return Err(Error::DigestMismatch {
                    expected,
                    actual: digest,
                });
            }
        }
        match parse_document(&digest, &bytes)? {
            Document::Manifest(_) => {
                staging.put_blob(&bytes)?;
                return Ok(digest);
            }
            Document::Index(index) => {
                let chosen = pick_platform(&index)
                    .ok_or_else(|| Error::NoMatchingPlatform(reference.to_owned()))?;
                target = parsed.clone_with_digest(chosen.digest().to_string());
            }
        }
    }
    Err(Error::InvalidManifest {
        digest: reference.to_owned(),
        reason: "its indexes nest too deep".into(),
    })
}

fn layer_sizes(
    staging: &Staging,
    store: &ImageStore,
    manifest: &str,
) -> Result<Vec<(String, u64)>> {
    let bytes = store.blobs().read_json_blob(Some(staging), manifest)?;
    let Document::Manifest(m) = parse_document(manifest, &bytes)? else {
        return Ok(Vec::new());
    };
    Ok(m.layers()
        .iter()
        .map(|l| (l.digest().to_string(), l.size()))
        .collect())
}

/// A fetch failure: from the registry, or from the store.
enum FetchError {
    Registry(oci_client::errors::OciDistributionError),
    Store(Error),
}

impl FetchError {
    fn or_registry(
        self,
        f: impl FnOnce(oci_client::errors::OciDistributionError) -> Error,
    ) -> Error {
        match self {
            FetchError::Registry(e) => f(e),
            FetchError::Store(e) => e,
        }
    }
}

/// Progress over all layers of a pull.
struct Counter<'a> {
    progress: &'a dyn Progress,
    done: &'a mut u64,
    total: u64,
}

async fn fetch_blob(
    client: &Client,
    image: &Reference,
    staging: &Staging,
    digest: &str,
    counter: Option<Counter<'_>>,
) -> std::result::Result<(), FetchError> {
    let writer = staging.blob_writer().map_err(FetchError::Store)?;
    let mut sink = BlobSink {
        writer,
        counter,
        reported: 0,
    };
    client
        .pull_blob(image, digest, &mut sink)
        .await
        .map_err(FetchError::Registry)?;
    if let Some(c) = &sink.counter {
        c.progress.bytes(*c.done, Some(c.total));
    }
    staging
        .commit_blob(sink.writer, Some(digest))
        .map_err(FetchError::Store)?;
    Ok(())
}

/// Writes a downloaded blob to its staging file (small synchronous writes to local
/// disk), hashing it and reporting progress at most once per MiB.
struct BlobSink<'a> {
    writer: HashingWriter<tempfile::NamedTempFile>,
    counter: Option<Counter<'a>>,
    reported: u64,
}

impl tokio::io::AsyncWrite for BlobSink<'_> {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let n = match this.writer.write(buf) {
            Ok(n) => n,
            Err(e) => return Poll::Ready(Err(e)),
        };
        if let Some(c) = this.counter.as_mut() {
            *c.done += n as u64;
            if *c.done - this.reported >= 1 << 20 {
                this.reported = *c.done;
                c.progress.bytes(*c.done, Some(c.total));
            }
        }
        Poll::Ready(Ok(n))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(self.get_mut().writer.flush())
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.poll_flush(cx)
    }
}

enum Event {
    Stage(String),
    Bytes(u64, Option<u64>),
    Line(String),
}

/// Carries progress from the blocking unpack thread to the async caller.
struct ChannelProgress(mpsc::UnboundedSender<Event>);

impl Progress for ChannelProgress {
    fn stage(&self, msg: &str) {
        let _ = self.0.send(Event::Stage(msg.to_owned()));
    }
    fn bytes(&self, done: u64, total: Option<u64>) {
        let _ = self.0.send(Event::Bytes(done, total));
    }
    fn line(&self, line: &str) {
        let _ = self.0.send(Event::Line(line.to_owned()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The server spawns pulls on its runtime: the future must be `Send`.
    #[allow(dead_code)]
    fn pull_future_is_send(store: &ImageStore) {
        fn is_send<T: Send>(_: &T) {}
        let future = store.pull("x", None, false, &crate::NoProgress);
        is_send(&future);
    }
}
