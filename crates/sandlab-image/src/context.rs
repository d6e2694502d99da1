//! Build contexts: the host files a recipe copies into the image with `[[copy]]`.
//!
//! Each copy is packed into a tar of root-owned entries in the build's staging dir, and
//! mmdebstrap `tar-in` hooks unpack those tars into the new root before the recipe's steps
//! run. The files are hashed as they are read, so their content is part of the image's
//! source digest ([`crate::Recipe::digest_with_context`]).

use std::ffi::OsString;
use std::fs::{self, File};
use std::io::{self, BufWriter, Read};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::build::hook_path;
use crate::error::{Error, Result};
use crate::recipe::{hash_part, FileCopy};

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
pub(crate) fn copy_hooks(packed: &[Packed]) -> Result<Vec<OsString>> {
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

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

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
}
