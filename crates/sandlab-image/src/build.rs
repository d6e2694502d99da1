//! Building Debian root file system images with mmdebstrap, and importing plain root
//! file system tarballs as single-layer OCI images.

use std::collections::VecDeque;
use std::ffi::OsString;
use std::fs::{self, File};
use std::io::{self, BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::blobs::{digest_hex, HashingWriter, Staging};
use crate::error::{Error, Result};
use crate::oci;
use crate::store::ProgressReader;
use crate::{validate_name, ImageInfo, ImageStore, Progress};

/// The environment variable naming the Debian mirror to build from (default: mmdebstrap's,
/// the Debian archive).
pub const MIRROR_ENV: &str = "SANDLAB_DEBIAN_MIRROR";

/// dpkg's `force-unsafe-io` while the image is built, and not in the image: dpkg then
/// skips the fsync of every file it unpacks, which beside a compiler writing gigabytes
/// (ext4 commits everyone's dirty data on each fsync) made builds twice as slow. A build
/// that dies is thrown away whole, so nothing needs those syncs. (mmdebstrap's
/// `--dpkgopt` would leave the option in the image for good.)
const UNSAFE_IO_ON: &str = "--setup-hook=mkdir -p \"$1/etc/dpkg/dpkg.cfg.d\" && echo force-unsafe-io > \"$1/etc/dpkg/dpkg.cfg.d/zz-sandlab-build\"";
const UNSAFE_IO_OFF: &str = "--customize-hook=rm -f \"$1/etc/dpkg/dpkg.cfg.d/zz-sandlab-build\"";

/// How many of mmdebstrap's last output lines a failure reports.
const TAIL_LINES: usize = 5;

/// The arguments (after `mmdebstrap`) that build `suite` with `include` into the tarball
/// `output`, from `mirror` when given.
pub fn mmdebstrap_argv(
    suite: &str,
    include: &[String],
    mirror: Option<&str>,
    output: &Path,
) -> Result<Vec<OsString>> {
    check_suite(suite)?;
    check_packages(include)?;
    let mut argv: Vec<OsString> = vec!["--variant=minbase".into(), "--format=tar".into()];
    if !include.is_empty() {
        argv.push(format!("--include={}", include.join(",")).into());
    }
    argv.push(suite.into());
    argv.push(output.into());
    if let Some(mirror) = mirror.map(str::trim).filter(|m| !m.is_empty()) {
        // A positional argument: refuse anything mmdebstrap would read as an option.
        if mirror.starts_with('-') {
            return Err(Error::InvalidMirror(mirror.to_owned()));
        }
        argv.push(mirror.into());
    }
    Ok(argv)
}

/// Refuses a suite mmdebstrap could read as anything but a suite name.
pub(crate) fn check_suite(suite: &str) -> Result<()> {
    if valid_word(suite, |c| {
        c.is_ascii_lowercase() || c.is_ascii_digit() || "-.".contains(c)
    }) {
        Ok(())
    } else {
        Err(Error::InvalidSuite(suite.to_owned()))
    }
}

/// Refuses a package name that is not Debian's form (an option, a list).
pub(crate) fn check_packages(packages: &[String]) -> Result<()> {
    for package in packages {
        if !valid_word(package, |c| {
            c.is_ascii_lowercase() || c.is_ascii_digit() || "+-.".contains(c)
        }) {
            return Err(Error::InvalidPackage(package.clone()));
        }
    }
    Ok(())
}

/// `path` as text for a hook's command line, where it goes in single quotes, which keep it
/// whole for `sh` and for the split of mmdebstrap's special hooks (Perl's `shellwords`)
/// alike: plain UTF-8 without single quotes, backslashes or control characters.
pub(crate) fn hook_path(path: &Path) -> Result<&str> {
    path.to_str()
        .filter(|p| !p.chars().any(|c| c == '\'' || c == '\\' || c.is_control()))
        .ok_or_else(|| Error::Io {
            action: format!("use {} in a build hook", path.display()),
            source: io::Error::new(
                io::ErrorKind::InvalidInput,
                "the path is not plain UTF-8 without single quotes, backslashes or control characters",
            ),
        })
}

/// mmdebstrap `--customize-hook`s that run each of `steps` with `sh -e` inside the new
/// root: each is written to a file in `dir` (ours, under the data dir), copied into the
/// root's `/tmp`, run under chroot and removed. The step's text never passes through a
/// shell command line.
fn step_hooks(dir: &Path, steps: &[String]) -> Result<Vec<OsString>> {
    let dir_text = hook_path(dir)?;
    let mut hooks = Vec::new();
    for (i, step) in steps.iter().enumerate() {
        let file = format!("step-{}.sh", i + 1);
        fs::write(dir.join(&file), step)
            .map_err(Error::io(format!("write build step {}", i + 1)))?;
        hooks.push(format!(
            "--customize-hook=echo 'sandlab: step {n} of {total}' && cp '{dir_text}/{file}' \"$1/tmp/sandlab-step.sh\" && chroot \"$1\" /bin/sh -e /tmp/sandlab-step.sh && rm -f \"$1/tmp/sandlab-step.sh\"",
            n = i + 1,
            total = steps.len(),
        ).into());
    }
    Ok(hooks)
}

/// Starts with a letter or digit, then only `allowed` characters, at most 128.
fn valid_word(s: &str, allowed: impl Fn(char) -> bool) -> bool {
    s.len() <= 128
        && s.chars()
            .next()
            .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        && s.chars().all(allowed)
}

/// What one mmdebstrap build makes.
struct Plan<'a> {
    name: &'a str,
    suite: &'a str,
    include: &'a [String],
    /// `--customize-hook`s run after the packages, in order.
    hooks: Vec<OsString>,
    /// What the progress says the build holds ("10 packages").
    summary: String,
    source: String,
}

impl ImageStore {
    /// Builds a Debian image: `mmdebstrap --variant=minbase --include=... SUITE` into a
    /// tarball (mirror from `$SANDLAB_DEBIAN_MIRROR` when set), streaming its output
    /// lines to `progress`, then stores the tarball as a single-layer OCI image.
    pub fn build_debian(
        &self,
        name: &str,
        suite: &str,
        include: &[String],
        progress: &dyn Progress,
    ) -> Result<ImageInfo> {
        let plan = Plan {
            name,
            suite,
            include,
            hooks: Vec::new(),
            summary: format!("{} packages", include.len()),
            source: format!("mmdebstrap {suite}"),
        };
        self.build_rootfs(self.staging()?, plan, progress)
    }

    /// Builds the image a recipe describes (see `recipe`), named after it, with the build
    /// context from `$SANDLAB_IMAGE_CONTEXT` (see [`ImageStore::build_recipe_in`]).
    pub fn build_recipe(
        &self,
        recipe: &crate::Recipe,
        progress: &dyn Progress,
    ) -> Result<ImageInfo> {
        let context = crate::recipe::context_from_env();
        self.build_recipe_in(recipe, context.as_deref(), progress)
    }

    /// Builds the image a recipe describes, named after it; its `[[copy]]` files come
    /// from the directory `context`, which a recipe with copies needs. The image's source
    /// holds [`crate::Recipe::digest_with_context`] of what was copied in.
    pub fn build_recipe_in(
        &self,
        recipe: &crate::Recipe,
        context: Option<&Path>,
        progress: &dyn Progress,
    ) -> Result<ImageInfo> {
        if !recipe.copies.is_empty() {
            let Some(context) = context else {
                return Err(Error::NoContext(recipe.name.clone()));
            };
            progress.stage(&format!(
                "Packing {} copies from {}",
                recipe.copies.len(),
                context.display()
            ));
        }
        let staging = self.staging()?;
        // Hashed while packed: the source names exactly what went into the image.
        let (digest, packed) = recipe.digest_and_pack(context, Some(staging.path()))?;
        let mut hooks = crate::context::copy_hooks(&packed)?;
        hooks.extend(step_hooks(staging.path(), &recipe.steps)?);
        let plan = Plan {
            name: &recipe.name,
            suite: &recipe.suite,
            include: &recipe.packages,
            hooks,
            summary: format!(
                "{} packages, {} copies, {} steps",
                recipe.packages.len(),
                recipe.copies.len(),
                recipe.steps.len()
            ),
            source: recipe.source(&digest),
        };
        self.build_rootfs(staging, plan, progress)
    }

    fn build_rootfs(
        &self,
        staging: Staging,
        plan: Plan<'_>,
        progress: &dyn Progress,
    ) -> Result<ImageInfo> {
        let Plan {
            name,
            suite,
            include,
            hooks,
            summary,
            source,
        } = plan;
        validate_name(name)?;
        let output = staging.path().join("rootfs.tar");
        let mirror = std::env::var(MIRROR_ENV).ok();
        let mut argv = mmdebstrap_argv(suite, include, mirror.as_deref(), &output)?;
        let mut all_hooks = vec![OsString::from(UNSAFE_IO_ON)];
        all_hooks.extend(hooks);
        all_hooks.push(UNSAFE_IO_OFF.into());
        // Options go before the positional suite.
        argv.splice(2..2, all_hooks);
        progress.stage(&format!(
            "Building {name} from Debian {suite} with mmdebstrap ({summary})"
        ));
        tracing::info!(image.name = %name, suite, ?argv, "Running mmdebstrap");
        run_mmdebstrap(&argv, suite, progress)?;

        progress.stage(&format!("Hashing the {suite} root file system"));
        let file = File::open(&output).map_err(Error::io("read the mmdebstrap tarball"))?;
        let total = file.metadata().map(|m| m.len()).ok();
        let mut reader = ProgressReader::new(file, progress, total);
        let mut hasher = HashingWriter::new(io::sink());
        io::copy(&mut reader, &mut hasher).map_err(Error::io("read the mmdebstrap tarball"))?;
        let (_, digest, size) = hasher.finish();
        let staged = staging.blob_dir().join(digest_hex(&digest)?);
        fs::rename(&output, &staged).map_err(Error::io("stage the mmdebstrap tarball"))?;
        self.install_rootfs_blob(staging, &digest, size, name, &source, progress)
    }

    /// Imports a plain root file system tarball (uncompressed, gzip or zstd) as a
    /// single-layer image named `name`, with `source` shown by `list`.
    pub fn import_rootfs_tar(
        &self,
        tar: &Path,
        name: &str,
        source: &str,
        progress: &dyn Progress,
    ) -> Result<ImageInfo> {
        validate_name(name)?;
        let staging = self.staging()?;
        progress.stage(&format!("Reading {}", tar.display()));
        let file = File::open(tar).map_err(Error::io(format!("open {}", tar.display())))?;
        let total = file.metadata().map(|m| m.len()).ok();
        let mut reader = ProgressReader::new(file, progress, total);
        let mut writer = staging.blob_writer()?;
        io::copy(&mut reader, &mut writer).map_err(Error::io(format!("read {}", tar.display())))?;
        let (digest, size) = staging.commit_blob(writer, None)?;
        self.install_rootfs_blob(staging, &digest, size, name, source, progress)
    }

    /// Wraps a staged layer blob in a config and manifest and installs it.
    fn install_rootfs_blob(
        &self,
        staging: Staging,
        layer: &str,
        size: u64,
        name: &str,
        source: &str,
        progress: &dyn Progress,
    ) -> Result<ImageInfo> {
        let path = staging.blob_dir().join(digest_hex(layer)?);
        let mut head = [0u8; 4];
        let n = File::open(&path)
            .and_then(|mut f| f.read(&mut head))
            .map_err(Error::io(format!("read blob {layer}")))?;
        let media_type = oci::layer_media_type(&head[..n]);
        // The diff id is the digest of the uncompressed tar; only known without hashing
        // again when the layer is uncompressed (builds always are).
        let diff_id = if media_type == oci_spec::image::MediaType::ImageLayer {
            layer.to_owned()
        } else {
            diff_id(&path)?
        };
        let config = oci::rootfs_config(&diff_id, &rfc3339_now(), source)?;
        let config_digest = staging.put_blob(&config)?;
        let manifest = oci::manifest(
            (&config_digest, config.len() as u64),
            &[(media_type, layer.to_owned(), size)],
        )?;
        let manifest_digest = staging.put_blob(&manifest)?;
        self.install(staging, &manifest_digest, name, source, progress)
    }
}

/// The sha256 of a compressed layer's uncompressed bytes.
fn diff_id(path: &Path) -> Result<String> {
    let file = BufReader::new(File::open(path).map_err(Error::io("read a layer blob"))?);
    let mut head = Vec::new();
    let mut reader: Box<dyn Read> = {
        let mut file = file;
        head.extend_from_slice(file.fill_buf().map_err(Error::io("read a layer blob"))?);
        match oci::layer_media_type(&head) {
            oci_spec::image::MediaType::ImageLayerGzip => {
                Box::new(flate2::read::MultiGzDecoder::new(file))
            }
            _ => Box::new(
                zstd::stream::read::Decoder::with_buffer(file)
                    .map_err(Error::io("read a layer blob"))?,
            ),
        }
    };
    let mut hasher = HashingWriter::new(io::sink());
    io::copy(&mut reader, &mut hasher).map_err(Error::io("decompress a layer blob"))?;
    Ok(hasher.finish().1)
}

fn run_mmdebstrap(argv: &[OsString], suite: &str, progress: &dyn Progress) -> Result<()> {
    let mut child = Command::new("mmdebstrap")
        .args(argv)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(Error::MmdebstrapSpawn)?;
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    let mut readers = Vec::new();
    for stream in [
        child
            .stdout
            .take()
            .map(|s| Box::new(s) as Box<dyn Read + Send>),
        child.stderr.take().map(|s| Box::new(s) as _),
    ]
    .into_iter()
    .flatten()
    {
        let tx = tx.clone();
        readers.push(std::thread::spawn(move || {
            for line in BufReader::new(stream).split(b'\n').map_while(|l| l.ok()) {
                let line = String::from_utf8_lossy(&line).trim_end().to_owned();
                if tx.send(line).is_err() {
                    break;
                }
            }
        }));
    }
    drop(tx);
    let mut tail = VecDeque::with_capacity(TAIL_LINES);
    for line in rx {
        progress.line(&line);
        if tail.len() == TAIL_LINES {
            tail.pop_front();
        }
        tail.push_back(line);
    }
    for reader in readers {
        let _ = reader.join();
    }
    let status = child.wait().map_err(Error::MmdebstrapSpawn)?;
    if status.success() {
        Ok(())
    } else {
        Err(Error::MmdebstrapFailed {
            suite: suite.to_owned(),
            status: status.to_string(),
            tail: Vec::from(tail).join(" | "),
        })
    }
}

/// Now as RFC 3339 UTC (`2024-05-01T12:00:00Z`).
fn rfc3339_now() -> String {
    let ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
    let mut s = sandlab_core::rfc3339_millis(ms);
    // Whole seconds, as the OCI config has always said.
    s.replace_range(19..23, "");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argv_for_the_default_image() {
        let include: Vec<String> = crate::DEFAULT_PACKAGES
            .iter()
            .map(|s| s.to_string())
            .collect();
        let argv =
            mmdebstrap_argv("bookworm", &include, None, Path::new("/tmp/x/rootfs.tar")).unwrap();
        let argv: Vec<&str> = argv.iter().map(|a| a.to_str().unwrap()).collect();
        assert_eq!(
            argv,
            [
                "--variant=minbase",
                "--format=tar",
                "--include=bash,coreutils,procps,iproute2,iputils-ping,curl,ca-certificates,less,vim-tiny,python3",
                "bookworm",
                "/tmp/x/rootfs.tar",
            ]
        );
    }

    #[test]
    fn argv_with_mirror_and_no_packages() {
        let argv = mmdebstrap_argv(
            "trixie",
            &[],
            Some("http://mirror.local/debian"),
            Path::new("o.tar"),
        )
        .unwrap();
        let argv: Vec<&str> = argv.iter().map(|a| a.to_str().unwrap()).collect();
        assert_eq!(
            argv,
            [
                "--variant=minbase",
                "--format=tar",
                "trixie",
                "o.tar",
                "http://mirror.local/debian"
            ]
        );
        let blank = mmdebstrap_argv("trixie", &[], Some("  "), Path::new("o.tar")).unwrap();
        assert_eq!(blank.len(), 4);
    }

    #[test]
    fn argv_refuses_option_injection() {
        let out = Path::new("o.tar");
        assert!(matches!(
            mmdebstrap_argv("--hook-dir=/x", &[], None, out),
            Err(Error::InvalidSuite(_))
        ));
        assert!(matches!(
            mmdebstrap_argv("bookworm bad", &[], None, out),
            Err(Error::InvalidSuite(_))
        ));
        let bad = vec!["curl".to_owned(), "x,y".to_owned()];
        assert!(matches!(
            mmdebstrap_argv("bookworm", &bad, None, out),
            Err(Error::InvalidPackage(_))
        ));
        let opt = vec!["--essential-hook=sh".to_owned()];
        assert!(matches!(
            mmdebstrap_argv("bookworm", &opt, None, out),
            Err(Error::InvalidPackage(_))
        ));
        assert!(mmdebstrap_argv("bookworm", &[], Some("--x"), out).is_err());
        assert!(mmdebstrap_argv("bookworm", &["libstdc++6".to_owned()], None, out).is_ok());
    }

    #[test]
    fn a_recipe_with_copies_needs_a_context_before_anything_runs() {
        let data = tempfile::tempdir().unwrap();
        let store = ImageStore::open(data.path(), crate::IdMap::default()).unwrap();
        let recipe = crate::Recipe {
            name: "kube".into(),
            description: String::new(),
            suite: "bookworm".into(),
            extends: None,
            packages: Vec::new(),
            copies: vec![crate::recipe::FileCopy {
                from: "bin".into(),
                to: "/opt/bin".into(),
            }],
            steps: Vec::new(),
        };
        let err = store
            .build_recipe_in(&recipe, None, &crate::NoProgress)
            .unwrap_err();
        assert!(matches!(&err, Error::NoContext(n) if n == "kube"), "{err}");
        let empty = tempfile::tempdir().unwrap();
        let err = store
            .build_recipe_in(&recipe, Some(empty.path()), &crate::NoProgress)
            .unwrap_err();
        assert!(matches!(err, Error::NotInContext(_)), "{err}");
    }

    #[test]
    fn timestamps() {
        let now = rfc3339_now();
        assert_eq!(now.len(), 20, "{now}");
        assert!(now.starts_with("20") && now.ends_with('Z'));
    }
}
