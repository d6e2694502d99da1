//! Applying one tar entry to the tree, confined to it.

use std::collections::HashSet;
use std::ffi::OsStr;
use std::fs::File;
use std::hash::BuildHasher;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag};
use nix::sys::stat::{fstatat, FileStat, Mode, SFlag, UtimensatFlags};
use nix::sys::time::TimeSpec;
use nix::unistd::{Gid, Uid};
use tar::{EntryType, Header};

use super::path::{normalize, show, split_last, BadPath};
use super::whiteout::WHITEOUT_PREFIX;
use super::{UnpackError, Unpacker};
use crate::confined;

/// Directory times are set when a layer ends (children change them); past this many
/// pending ones they are set at once instead, to keep memory bounded.
const MAX_PENDING_DIR_TIMES: usize = 65_536;

/// Per-layer bookkeeping.
pub(super) struct LayerState {
    pub(super) layer: String,
    /// Hashes of every path (and parent path) this layer put in the tree, so whiteouts
    /// only remove what the layers below left.
    pub(super) created: HashSet<u64>,
    dir_times: Vec<(Vec<u8>, i64)>,
}

impl LayerState {
    pub(super) fn new(layer: &str) -> Self {
        Self {
            layer: layer.to_owned(),
            created: HashSet::new(),
            dir_times: Vec::new(),
        }
    }
}

/// The parent directory of an entry and its final name.
struct Target {
    dir: OwnedFd,
    name: Vec<u8>,
}

impl Target {
    fn name(&self) -> &OsStr {
        OsStr::from_bytes(&self.name)
    }
}

/// The metadata of an entry, ids already mapped.
struct Meta {
    uid: u32,
    gid: u32,
    mode: u32,
    mtime: i64,
}

impl Unpacker {
    pub(super) fn apply<R: Read>(
        &mut self,
        st: &mut LayerState,
        entry: &mut tar::Entry<'_, R>,
    ) -> Result<(), UnpackError> {
        let raw = entry.path_bytes().into_owned();
        let err_path = || show(&raw);
        self.stats.entries += 1;
        if self.stats.entries > self.limits.max_entries {
            return Err(UnpackError::TooManyEntries {
                layer: st.layer.clone(),
                max: self.limits.max_entries,
            });
        }
        self.declared = self.declared.saturating_add(entry.size());
        if self.declared > self.limits.max_bytes {
            return Err(UnpackError::TooLarge {
                layer: st.layer.clone(),
                max: self.limits.max_bytes,
            });
        }
        let path = normalize(&raw).map_err(|bad| match bad {
            BadPath::DotDot => UnpackError::Escapes {
                layer: st.layer.clone(),
                path: err_path(),
            },
            BadPath::Invalid => UnpackError::InvalidName {
                layer: st.layer.clone(),
                path: err_path(),
            },
        })?;
        let (parent, name) = split_last(&path);
        if name.starts_with(WHITEOUT_PREFIX) {
            return self.whiteout(st, &raw, parent, name);
        }
        self.record_created(st, &path);

        let mut kind = entry.header().entry_type();
        if kind == EntryType::Regular && raw.ends_with(b"/") {
            kind = EntryType::Directory; // old (v7) tars mark directories with a slash only
        }
        if path.is_empty() {
            return match kind {
                EntryType::Directory => self.root_dir(st, entry.header(), &raw),
                _ => Err(UnpackError::InvalidName {
                    layer: st.layer.clone(),
                    path: err_path(),
                }),
            };
        }
        let write_err = |source: io::Error| UnpackError::Write {
            layer: st.layer.clone(),
            path: show(&raw),
            source,
        };
        match kind {
            EntryType::Directory => {
                let meta = self.meta(st, entry.header(), &raw)?;
                let t = self.target(parent, name).map_err(write_err)?;
                self.make_dir(&t, &meta).map_err(write_err)?;
                self.push_dir_time(st, &path, meta.mtime)
                    .map_err(|source| UnpackError::Write {
                        layer: st.layer.clone(),
                        path: show(&raw),
                        source,
                    })?;
                self.stats.dirs += 1;
            }
            EntryType::Regular | EntryType::Continuous | EntryType::GNUSparse => {
                let meta = self.meta(st, entry.header(), &raw)?;
                let t = self.target(parent, name).map_err(write_err)?;
                self.make_file(st, &t, &meta, entry, &raw)?;
                self.stats.files += 1;
            }
            EntryType::Symlink => {
                let meta = self.meta(st, entry.header(), &raw)?;
                let link = entry
                    .link_name_bytes()
                    .filter(|l| !l.is_empty() && !l.contains(&0));
                let Some(link) = link else {
                    return Err(UnpackError::InvalidName {
                        layer: st.layer.clone(),
                        path: err_path(),
                    });
                };
                let t = self.target(parent, name).map_err(write_err)?;
                clear(&t, false).map_err(write_err)?;
                nix::unistd::symlinkat(OsStr::from_bytes(&link), &t.dir, t.name())
                    .map_err(|e| write_err(e.into()))?;
                set_link_meta(&t, &meta).map_err(write_err)?;
                self.stats.symlinks += 1;
            }
            EntryType::Link => {
                let link = entry
                    .link_name_bytes()
                    .map(|l| l.into_owned())
                    .unwrap_or_default();
                let t = self.target(parent, name).map_err(write_err)?;
                self.make_hardlink(st, &t, &raw, &link)?;
            }
            EntryType::Fifo => {
                let meta = self.meta(st, entry.header(), &raw)?;
                let t = self.target(parent, name).map_err(write_err)?;
                clear(&t, false).map_err(write_err)?;
                nix::sys::stat::mknodat(
                    &t.dir,
                    t.name(),
                    SFlag::S_IFIFO,
                    Mode::from_bits_truncate(0o600),
                    0,
                )
                .map_err(|e| write_err(e.into()))?;
                confined::chown_at(t.dir.as_fd(), t.name(), meta.uid, meta.gid)
                    .map_err(write_err)?;
                // The tree is private to the unpacker and the fifo was just made, so
                // following is not a risk here (fchmodat cannot refuse symlinks portably).
                nix::sys::stat::fchmodat(
                    &t.dir,
                    t.name(),
                    Mode::from_bits_truncate(meta.mode),
                    nix::sys::stat::FchmodatFlags::FollowSymlink,
                )
                .map_err(|e| write_err(e.into()))?;
                set_link_meta(&t, &meta).map_err(write_err)?;
                self.stats.fifos += 1;
            }
            EntryType::Char | EntryType::Block => {
                tracing::debug!(layer = %st.layer, path = %show(&raw), "Skipping a device node");
                // Not created, but it still hides whatever the layers below had there.
                let t = self.target(parent, name).map_err(write_err)?;
                clear(&t, false).map_err(write_err)?;
                let hash = self.hasher.hash_one(&path);
                self.skipped_devices.insert(hash);
                self.stats.skipped_devices += 1;
            }
            other => {
                tracing::debug!(layer = %st.layer, path = %show(&raw), kind = ?other, "Skipping a tar entry of an unsupported type");
                self.stats.skipped_other += 1;
            }
        }
        Ok(())
    }

    /// Sets the directory times recorded during the layer.
    pub(super) fn finish_layer(&mut self, st: &LayerState) -> Result<(), UnpackError> {
        for (path, mtime) in st.dir_times.iter().rev() {
            set_dir_time(self.root.as_fd(), path, *mtime).map_err(|source| UnpackError::Write {
                layer: st.layer.clone(),
                path: show(path),
                source,
            })?;
        }
        Ok(())
    }

    fn record_created(&self, st: &mut LayerState, path: &[u8]) {
        for (i, b) in path.iter().enumerate() {
            if *b == b'/' {
                st.created.insert(self.hasher.hash_one(&path[..i]));
            }
        }
        st.created.insert(self.hasher.hash_one(path));
    }

    fn meta(&mut self, st: &LayerState, h: &Header, raw: &[u8]) -> Result<Meta, UnpackError> {
        let tar_err = |source: io::Error| UnpackError::Tar {
            layer: st.layer.clone(),
            source,
        };
        let (uid, gid) = (h.uid().map_err(tar_err)?, h.gid().map_err(tar_err)?);
        let out_of_range = |id| UnpackError::IdOutOfRange {
            layer: st.layer.clone(),
            path: show(raw),
            id,
            size: self.idmap.size,
        };
        let (uid, c1) = self.idmap.map_uid(uid).ok_or_else(|| out_of_range(uid))?;
        let (gid, c2) = self.idmap.map_gid(gid).ok_or_else(|| out_of_range(gid))?;
        if c1 || c2 {
            self.stats.clamped_ids += 1;
        }
        let mode = h.mode().map_err(tar_err)? & 0o7777;
        let mtime = i64::try_from(h.mtime().map_err(tar_err)?).unwrap_or(i64::MAX);
        Ok(Meta {
            uid,
            gid,
            mode,
            mtime,
        })
    }

    /// Resolves (creating missing parents, owned by the image's root) the parent of an entry.
    fn target(&self, parent: &[u8], name: &[u8]) -> io::Result<Target> {
        let parent_path = Path::new(OsStr::from_bytes(parent));
        let dir = match confined::open_in_root(
            self.root.as_fd(),
            parent_path,
            libc::O_PATH | libc::O_DIRECTORY,
            0,
        ) {
            Ok(fd) => fd,
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {
                let owner = self.root_owner();
                confined::mkdir_all_in_root(self.root.as_fd(), parent_path, 0o755, Some(owner))?
            }
            Err(e) => return Err(e),
        };
        Ok(Target {
            dir,
            name: name.to_vec(),
        })
    }

    fn root_owner(&self) -> (u32, u32) {
        // id 0 is always inside a valid map (size > 0), so this never falls back.
        let uid = self.idmap.map_uid(0).map_or(self.idmap.host_uid, |m| m.0);
        let gid = self.idmap.map_gid(0).map_or(self.idmap.host_gid, |m| m.0);
        (uid, gid)
    }

    fn root_dir(&mut self, st: &mut LayerState, h: &Header, raw: &[u8]) -> Result<(), UnpackError> {
        let meta = self.meta(st, h, raw)?;
        let write_err = |e: nix::Error| UnpackError::Write {
            layer: st.layer.clone(),
            path: show(raw),
            source: e.into(),
        };
        nix::unistd::fchown(
            &self.root,
            Some(Uid::from_raw(meta.uid)),
            Some(Gid::from_raw(meta.gid)),
        )
        .map_err(write_err)?;
        nix::sys::stat::fchmod(&self.root, Mode::from_bits_truncate(meta.mode))
            .map_err(write_err)?;
        self.push_dir_time(st, b"", meta.mtime)
            .map_err(|e| UnpackError::Write {
                layer: st.layer.clone(),
                path: show(raw),
                source: e,
            })?;
        self.stats.dirs += 1;
        Ok(())
    }

    fn push_dir_time(&self, st: &mut LayerState, path: &[u8], mtime: i64) -> io::Result<()> {
        if st.dir_times.len() < MAX_PENDING_DIR_TIMES {
            st.dir_times.push((path.to_vec(), mtime));
            Ok(())
        } else {
            set_dir_time(self.root.as_fd(), path, mtime)
        }
    }

    fn make_dir(&self, t: &Target, meta: &Meta) -> io::Result<()> {
        if !clear(t, true)? {
            nix::sys::stat::mkdirat(&t.dir, t.name(), Mode::from_bits_truncate(0o700))?;
        }
        let fd = nix::fcntl::openat(
            &t.dir,
            t.name(),
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::empty(),
        )?;
        // chown before chmod: chown clears the setuid/setgid bits.
        nix::unistd::fchown(
            &fd,
            Some(Uid::from_raw(meta.uid)),
            Some(Gid::from_raw(meta.gid)),
        )?;
        nix::sys::stat::fchmod(&fd, Mode::from_bits_truncate(meta.mode))?;
        Ok(())
    }

    fn make_file<R: Read>(
        &mut self,
        st: &LayerState,
        t: &Target,
        meta: &Meta,
        entry: &mut tar::Entry<'_, R>,
        raw: &[u8],
    ) -> Result<(), UnpackError> {
        let write_err = |source: io::Error| UnpackError::Write {
            layer: st.layer.clone(),
            path: show(raw),
            source,
        };
        clear(t, false).map_err(write_err)?;
        let flags =
            OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_WRONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
        let fd = nix::fcntl::openat(&t.dir, t.name(), flags, Mode::from_bits_truncate(0o600))
            .map_err(|e| write_err(e.into()))?;
        let mut file = File::from(fd);
        let expected = entry.size();
        let mut written: u64 = 0;
        loop {
            let n = match entry.read(&mut self.buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(source) => {
                    return Err(UnpackError::Tar {
                        layer: st.layer.clone(),
                        source,
                    })
                }
            };
            written += n as u64;
            self.stats.bytes += n as u64;
            if self.stats.bytes > self.limits.max_bytes {
                return Err(UnpackError::TooLarge {
                    layer: st.layer.clone(),
                    max: self.limits.max_bytes,
                });
            }
            file.write_all(&self.buf[..n]).map_err(write_err)?;
        }
        if written != expected {
            return Err(UnpackError::Truncated {
                layer: st.layer.clone(),
                path: show(raw),
            });
        }
        let errno = |e: nix::Error| write_err(e.into());
        nix::unistd::fchown(
            &file,
            Some(Uid::from_raw(meta.uid)),
            Some(Gid::from_raw(meta.gid)),
        )
        .map_err(errno)?;
        nix::sys::stat::fchmod(&file, Mode::from_bits_truncate(meta.mode)).map_err(errno)?;
        let time = TimeSpec::new(meta.mtime, 0);
        nix::sys::stat::futimens(&file, &time, &time).map_err(errno)?;
        Ok(())
    }

    fn make_hardlink(
        &mut self,
        st: &LayerState,
        t: &Target,
        raw: &[u8],
        link: &[u8],
    ) -> Result<(), UnpackError> {
        let bad = || UnpackError::BadHardLink {
            layer: st.layer.clone(),
            path: show(raw),
            target: show(link),
        };
        let write_err = |source: io::Error| UnpackError::Write {
            layer: st.layer.clone(),
            path: show(raw),
            source,
        };
        let target = match normalize(link) {
            Ok(p) if !p.is_empty() => p,
            Ok(_) | Err(BadPath::Invalid) => return Err(bad()),
            Err(BadPath::DotDot) => {
                return Err(UnpackError::Escapes {
                    layer: st.layer.clone(),
                    path: format!("{} -> {}", show(raw), show(link)),
                })
            }
        };
        let src = match confined::open_parent_in_root(
            self.root.as_fd(),
            Path::new(OsStr::from_bytes(&target)),
        ) {
            Ok(p) => p,
            Err(e) if matches!(e.raw_os_error(), Some(libc::ENOENT | libc::ENOTDIR)) => {
                return Err(bad())
            }
            Err(e) => return Err(write_err(e)),
        };
        let src_stat = match fstatat(&src.dir, src.name.as_os_str(), AtFlags::AT_SYMLINK_NOFOLLOW) {
            Ok(s) => s,
            Err(Errno::ENOENT)
                if self
                    .skipped_devices
                    .contains(&self.hasher.hash_one(&target)) =>
            {
                self.stats.skipped_devices += 1;
                return Ok(());
            }
            Err(Errno::ENOENT | Errno::ENOTDIR) => return Err(bad()),
            Err(e) => return Err(write_err(e.into())),
        };
        if is_dir(&src_stat) {
            return Err(bad());
        }
        if let Ok(dst) = fstatat(&t.dir, t.name(), AtFlags::AT_SYMLINK_NOFOLLOW) {
            if (dst.st_dev, dst.st_ino) == (src_stat.st_dev, src_stat.st_ino) {
                return Ok(()); // already the same file
            }
        }
        clear(t, false).map_err(write_err)?;
        nix::unistd::linkat(
            &src.dir,
            src.name.as_os_str(),
            &t.dir,
            t.name(),
            AtFlags::empty(),
        )
        .map_err(|e| write_err(e.into()))?;
        self.stats.hardlinks += 1;
        Ok(())
    }
}

/// Makes room for an entry: keeps an existing directory when `keep_dir` (returns true),
/// removes anything else that is there.
fn clear(t: &Target, keep_dir: bool) -> io::Result<bool> {
    match fstatat(&t.dir, t.name(), AtFlags::AT_SYMLINK_NOFOLLOW) {
        Err(Errno::ENOENT) => Ok(false),
        Err(e) => Err(e.into()),
        Ok(st) if keep_dir && is_dir(&st) => Ok(true),
        Ok(_) => confined::remove_all_at(t.dir.as_fd(), t.name()).map(|()| false),
    }
}

/// Owner and times of a symlink or fifo, without following it.
fn set_link_meta(t: &Target, meta: &Meta) -> io::Result<()> {
    confined::chown_at(t.dir.as_fd(), t.name(), meta.uid, meta.gid)?;
    let time = TimeSpec::new(meta.mtime, 0);
    nix::sys::stat::utimensat(
        &t.dir,
        t.name(),
        &time,
        &time,
        UtimensatFlags::NoFollowSymlink,
    )?;
    Ok(())
}

fn set_dir_time(root: std::os::fd::BorrowedFd<'_>, path: &[u8], mtime: i64) -> io::Result<()> {
    let time = TimeSpec::new(mtime, 0);
    if path.is_empty() {
        return Ok(nix::sys::stat::futimens(root, &time, &time)?);
    }
    let parent = match confined::open_parent_in_root(root, Path::new(OsStr::from_bytes(path))) {
        Ok(p) => p,
        // A later entry of the layer may have replaced the directory; nothing to date.
        Err(e) if matches!(e.raw_os_error(), Some(libc::ENOENT | libc::ENOTDIR)) => return Ok(()),
        Err(e) => return Err(e),
    };
    match nix::sys::stat::utimensat(
        &parent.dir,
        parent.name.as_os_str(),
        &time,
        &time,
        UtimensatFlags::NoFollowSymlink,
    ) {
        Ok(()) | Err(Errno::ENOENT) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

fn is_dir(st: &FileStat) -> bool {
    SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFDIR
}
