//! Building Debian root file system images with mmdebstrap, and importing plain root
//! file system tarballs as single-layer OCI images.

use std::collections::VecDeque;
use std::ffi::OsString;
use std::fs::{self, File};
use std::io::{self, BufRead, BufReader, BufWriter, Read};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{SystemTime, UNIX_EPOCH};

use sha2::{Digest, Sha256};

use crate::blobs::{digest_hex, HashingWriter, Staging};
use crate::error::{Error, Result};
use crate::oci;
use crate::recipe::{hash_part, FileCopy};
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
fn hook_path(path: &Path) -> Result<&str> {
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

/// One `[[copy]]` packed for a build: a tar in the staging dir, and the directory in the
/// image it is unpacked into (`to` for a directory, `to`'s parent for a file).
#[derive(Debug, PartialEq)]
pub(crate) struct Packed {
    pub(crate) tar: PathBuf,
    pub(crate) into: PathBuf,
}

/// mmdebstrap `--customize-hook`s that put each packed copy into the new root: the
/// directory it goes into is made from inside the root (so the image's own symbolic
/// links resolve there, never on the host), then mmdebstrap's special hook `tar-in`
/// unpacks the tar into it, resolving that directory inside the root too.
fn copy_hooks(packed: &[Packed]) -> Result<Vec<OsString>> {
    let mut hooks = Vec::new();
    for (i, p) in packed.iter().enumerate() {
        let (tar, into) = (hook_path(&p.tar)?, hook_path(&p.into)?);
        hooks.push(
            format!(
                "--customize-hook=echo 'sandlab: copy {n} of {total}' && chroot \"$1\" mkdir -p '{into}'",
                n = i + 1,
                total = packed.len(),
            )
            .into(),
        );
        hooks.push(format!("--customize-hook=tar-in '{tar}' '{into}'").into());
    }
    Ok(hooks)
}

/// Walks each of `copies` in `context` and feeds every entry (its path under the directory
/// it is unpacked into, its mode, and its bytes or link target) to `hash`; with `out`,
/// also writes each copy there as a tar of entries owned by root, for `copy_hooks`.
/// A copy's `from` may be a symbolic link that stays in the context; links inside a
/// directory are packed as links, never followed.
pub(crate) fn pack_copies(
    context: &Path,
    copies: &[FileCopy],
    out: Option<&Path>,
    hash: &mut Sha256,
) -> Result<Vec<Packed>> {
    let root = context.canonicalize().map_err(Error::io(format!(
        "open the build context {}",
        context.display()
    )))?;
    let mut packed = Vec::new();
    for (i, copy) in copies.iter().enumerate() {
        let source = in_context(&root, &copy.from)?;
        let meta =
            fs::metadata(&source).map_err(Error::io(format!("read {}", source.display())))?;
        let into = match copy.to.parent() {
            Some(parent) if !meta.is_dir() => parent.to_owned(),
            _ => copy.to.clone(),
        };
        let tar = match out {
            Some(dir) => {
                let path = dir.join(format!("copy-{}.tar", i + 1));
                let file =
                    File::create(&path).map_err(Error::io(format!("create {}", path.display())))?;
                packed.push(Packed { tar: path, into });
                Some(tar::Builder::new(BufWriter::new(file)))
            }
            None => None,
        };
        hash_part(hash, b"\0copy");
        let mut packer = Packer { hash, tar };
        if meta.is_dir() {
            packer.dir_contents(&source, Path::new(""))?;
        } else if meta.is_file() {
            // Parsing made `to` a normal absolute path other than `/`: it has a name.
            let name = copy.to.file_name().unwrap_or_default();
            packer.file(&source, Path::new(name))?;
        } else {
            return Err(Error::ContextFile {
                path: source,
                reason: NOT_PACKABLE,
            });
        }
        if let Some(tar) = packer.tar {
            tar.into_inner()
                .and_then(|w| w.into_inner().map_err(|e| e.into_error()))
                .map_err(Error::io(format!("write copy {} of the build", i + 1)))?;
        }
    }
    Ok(packed)
}

const NOT_PACKABLE: &str = "is neither a file, a directory nor a symbolic link";

/// `from` in the canonical context `root`, with symbolic links resolved; refused when it
/// is missing or resolves outside the context.
fn in_context(root: &Path, from: &Path) -> Result<PathBuf> {
    let path = root.join(from);
    let real = path.canonicalize().map_err(|e| match e.kind() {
        io::ErrorKind::NotFound => Error::NotInContext(path.clone()),
        _ => Error::io(format!("read {}", path.display()))(e),
    })?;
    if real.starts_with(root) {
        Ok(real)
    } else {
        Err(Error::OutsideContext {
            path,
            context: root.to_owned(),
        })
    }
}

/// Feeds entries to the hash and, when packing, to the tar.
struct Packer<'a> {
    hash: &'a mut Sha256,
    tar: Option<tar::Builder<BufWriter<File>>>,
}

impl Packer<'_> {
    /// Everything in `dir`, by name, as `rel/NAME`.
    fn dir_contents(&mut self, dir: &Path, rel: &Path) -> Result<()> {
        let read = Error::io(format!("read {}", dir.display()));
        let mut names = fs::read_dir(dir)
            .and_then(|rd| {
                rd.map(|e| e.map(|e| e.file_name()))
                    .collect::<io::Result<Vec<_>>>()
            })
            .map_err(read)?;
        names.sort();
        for name in names {
            let (path, rel) = (dir.join(&name), rel.join(&name));
            let meta = fs::symlink_metadata(&path)
                .map_err(Error::io(format!("read {}", path.display())))?;
            let kind = meta.file_type();
            if kind.is_symlink() {
                self.link(&path, &rel)?;
            } else if kind.is_dir() {
                self.dir(&path, &rel, &meta)?;
            } else if kind.is_file() {
                self.file(&path, &rel)?;
            } else {
                return Err(Error::ContextFile {
                    path,
                    reason: NOT_PACKABLE,
                });
            }
        }
        Ok(())
    }

    /// The regular file `path` as `rel`, its bytes streamed through the hash.
    fn file(&mut self, path: &Path, rel: &Path) -> Result<()> {
        let read = || Error::io(format!("read {}", path.display()));
        // Opened without following a link that replaced the file since it was listed.
        let file = fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW)
            .open(path)
            .map_err(read())?;
        let meta = file.metadata().map_err(read())?;
        if !meta.is_file() {
            return Err(Error::ContextFile {
                path: path.to_owned(),
                reason: NOT_PACKABLE,
            });
        }
        let (mode, len) = (meta.mode() & 0o7777, meta.len());
        self.entry(b"f", rel, mode);
        self.hash.update(len.to_le_bytes());
        let mut reader = HashingReader {
            inner: file.take(len),
            hash: self.hash,
            read: 0,
        };
        let copied = match &mut self.tar {
            Some(tar) => {
                let mut h = header(tar::EntryType::Regular, mode, len, mtime(&meta));
                tar.append_data(&mut h, rel, &mut reader)
            }
            None => io::copy(&mut reader, &mut io::sink()).map(drop),
        };
        copied.map_err(Error::io(format!("pack {}", path.display())))?;
        if reader.read != len {
            return Err(Error::ContextFile {
                path: path.to_owned(),
                reason: "changed while it was read",
            });
        }
        Ok(())
    }

    /// Feeds an entry's kind, path and mode to the hash.
    fn entry(&mut self, kind: &[u8], rel: &Path, mode: u32) {
        hash_part(self.hash, kind);
        hash_part(self.hash, rel.as_os_str().as_bytes());
        self.hash.update(mode.to_le_bytes());
    }

    /// The symbolic link `path` as `rel`, as a link.
    fn link(&mut self, path: &Path, rel: &Path) -> Result<()> {
        let pack = Error::io(format!("pack {}", path.display()));
        let target = fs::read_link(path).map_err(Error::io(format!("read {}", path.display())))?;
        self.entry(b"l", rel, 0o777);
        hash_part(self.hash, target.as_os_str().as_bytes());
        match &mut self.tar {
            Some(tar) => tar
                .append_link(
                    &mut header(tar::EntryType::Symlink, 0o777, 0, 0),
                    rel,
                    &target,
                )
                .map_err(pack),
            None => Ok(()),
        }
    }

    /// The directory `path` as `rel`, then what it holds.
    fn dir(&mut self, path: &Path, rel: &Path, meta: &fs::Metadata) -> Result<()> {
        let mode = meta.mode() & 0o7777;
        self.entry(b"d", rel, mode);
        if let Some(tar) = &mut self.tar {
            let mut h = header(tar::EntryType::Directory, mode, 0, mtime(meta));
            tar.append_data(&mut h, rel, io::empty())
                .map_err(Error::io(format!("pack {}", path.display())))?;
        }
        self.dir_contents(path, rel)
    }
}

/// Counts and hashes what is read through it.
struct HashingReader<'a, R> {
    inner: R,
    hash: &'a mut Sha256,
    read: u64,
}

impl<R: Read> Read for HashingReader<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hash.update(&buf[..n]);
        self.read += n as u64;
        Ok(n)
    }
}

/// A tar header for an entry owned by root.
fn header(kind: tar::EntryType, mode: u32, size: u64, mtime: u64) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_mode(mode);
    h.set_size(size);
    h.set_mtime(mtime);
    h.set_uid(0);
    h.set_gid(0);
    h
}

fn mtime(meta: &fs::Metadata) -> u64 {
    u64::try_from(meta.mtime()).unwrap_or(0)
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
        let mut hooks = copy_hooks(&packed)?;
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
    use std::os::unix::fs::PermissionsExt;

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
    fn copies_become_a_mkdir_and_a_tar_in_hook_each() {
        let packed = [
            Packed {
                tar: "/data/images/tmp/s1/copy-1.tar".into(),
                into: "/opt/kube/bin".into(),
            },
            Packed {
                tar: "/data/images/tmp/s1/copy-2.tar".into(),
                into: "/usr/local/bin".into(),
            },
        ];
        let hooks = copy_hooks(&packed).unwrap();
        let hooks: Vec<&str> = hooks.iter().map(|h| h.to_str().unwrap()).collect();
        assert_eq!(
            hooks,
            [
                "--customize-hook=echo 'sandlab: copy 1 of 2' && chroot \"$1\" mkdir -p '/opt/kube/bin'",
                "--customize-hook=tar-in '/data/images/tmp/s1/copy-1.tar' '/opt/kube/bin'",
                "--customize-hook=echo 'sandlab: copy 2 of 2' && chroot \"$1\" mkdir -p '/usr/local/bin'",
                "--customize-hook=tar-in '/data/images/tmp/s1/copy-2.tar' '/usr/local/bin'",
            ]
        );
        for bad in ["/data/it's", "/data/a\\b", "/data/a\nb"] {
            let packed = [Packed {
                tar: bad.into(),
                into: "/opt".into(),
            }];
            assert!(copy_hooks(&packed).is_err(), "{bad:?}");
        }
    }

    /// A context: `bin/` (a tool, a link to it, a private `sub/`), `versions`, and a
    /// link that leads out of the context.
    fn context() -> tempfile::TempDir {
        let ctx = tempfile::tempdir().unwrap();
        let bin = ctx.path().join("bin");
        fs::create_dir_all(bin.join("sub")).unwrap();
        fs::write(bin.join("tool"), "#!/bin/sh\necho hi\n").unwrap();
        fs::set_permissions(&bin, fs::Permissions::from_mode(0o755)).unwrap();
        fs::set_permissions(bin.join("tool"), fs::Permissions::from_mode(0o4750)).unwrap();
        fs::set_permissions(bin.join("sub"), fs::Permissions::from_mode(0o700)).unwrap();
        fs::write(bin.join("sub/data"), vec![7u8; 70_000]).unwrap();
        fs::set_permissions(bin.join("sub/data"), fs::Permissions::from_mode(0o640)).unwrap();
        std::os::unix::fs::symlink("tool", bin.join("alias")).unwrap();
        fs::write(ctx.path().join("versions"), "KUBE_VERSION=v1\n").unwrap();
        fs::set_permissions(
            ctx.path().join("versions"),
            fs::Permissions::from_mode(0o644),
        )
        .unwrap();
        std::os::unix::fs::symlink("/etc", ctx.path().join("escape")).unwrap();
        std::os::unix::fs::symlink("versions", ctx.path().join("current")).unwrap();
        ctx
    }

    fn copy(from: &str, to: &str) -> FileCopy {
        FileCopy {
            from: from.into(),
            to: to.into(),
        }
    }

    /// Each entry of a tar: path, kind, mode, link target or content length; every one
    /// must be owned by root.
    fn entries(tar: &Path) -> Vec<(String, char, u32, String)> {
        let mut archive = tar::Archive::new(File::open(tar).unwrap());
        let mut out = Vec::new();
        for e in archive.entries().unwrap() {
            let mut e = e.unwrap();
            let h = e.header().clone();
            let path = e.path().unwrap().display().to_string();
            let kind = match h.entry_type() {
                tar::EntryType::Regular => 'f',
                tar::EntryType::Directory => 'd',
                tar::EntryType::Symlink => 'l',
                other => panic!("{other:?}"),
            };
            let what = match kind {
                'l' => e.link_name().unwrap().unwrap().display().to_string(),
                _ => {
                    let mut bytes = Vec::new();
                    e.read_to_end(&mut bytes).unwrap();
                    bytes.len().to_string()
                }
            };
            let owner = (h.uid().unwrap(), h.gid().unwrap());
            assert_eq!(owner, (0, 0), "{path} is owned by root");
            out.push((path, kind, h.mode().unwrap(), what));
        }
        out
    }

    #[test]
    fn copies_are_packed_as_root_owned_tars_and_hashed_the_same_as_read() {
        let ctx = context();
        let out = tempfile::tempdir().unwrap();
        let copies = [
            copy("bin", "/opt/kube/bin"),
            copy("current", "/opt/kube/versions"),
        ];
        let mut packing = Sha256::new();
        let packed = pack_copies(ctx.path(), &copies, Some(out.path()), &mut packing).unwrap();
        assert_eq!(
            packed,
            [
                Packed {
                    tar: out.path().join("copy-1.tar"),
                    into: "/opt/kube/bin".into()
                },
                Packed {
                    tar: out.path().join("copy-2.tar"),
                    into: "/opt/kube".into()
                },
            ]
        );
        assert_eq!(
            entries(&packed[0].tar),
            [
                ("alias".into(), 'l', 0o777, "tool".into()),
                ("sub".into(), 'd', 0o700, "0".into()),
                ("sub/data".into(), 'f', 0o640, "70000".into()),
                ("tool".into(), 'f', 0o4750, "18".into()),
            ]
        );
        // `from` itself may be a link within the context: what it leads to is copied.
        assert_eq!(
            entries(&packed[1].tar),
            [("versions".into(), 'f', 0o644, "16".into())]
        );
        let mut reading = Sha256::new();
        assert!(pack_copies(ctx.path(), &copies, None, &mut reading)
            .unwrap()
            .is_empty());
        assert_eq!(packing.finalize(), reading.finalize());
    }

    #[test]
    fn copies_from_outside_the_context_or_of_odd_files_are_refused() {
        let ctx = context();
        let root = ctx.path().canonicalize().unwrap();
        let pack =
            |from: &str| pack_copies(ctx.path(), &[copy(from, "/x")], None, &mut Sha256::new());
        match pack("nope") {
            Err(e @ Error::NotInContext(_)) => assert_eq!(
                e.to_string(),
                format!("{}/nope is missing from the build context", root.display())
            ),
            other => panic!("{other:?}"),
        }
        match pack("escape") {
            Err(Error::OutsideContext { path, context }) => {
                assert_eq!((path, context), (root.join("escape"), root.clone()));
            }
            other => panic!("{other:?}"),
        }
        nix::unistd::mkfifo(
            &ctx.path().join("bin/pipe"),
            nix::sys::stat::Mode::from_bits_truncate(0o600),
        )
        .unwrap();
        assert!(matches!(
            pack("bin"),
            Err(Error::ContextFile { path, .. }) if path == root.join("bin/pipe")
        ));
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
            copies: vec![copy("bin", "/opt/bin")],
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
