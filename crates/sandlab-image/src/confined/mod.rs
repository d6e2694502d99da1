//! File-system operations confined to a directory tree whose contents someone else
//! controls: an image being unpacked, a sandbox's root.
//!
//! Paths are always resolved relative to a *root* directory fd with
//! `openat2(2)` and `RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS`: absolute symlinks and
//! `..` are clamped at the root exactly as if the process had `chroot`ed into it, and
//! `/proc` magic links are refused. The last component of a path is never followed when
//! something is created, replaced or removed: that is done with the `*at` calls on the
//! resolved parent directory (`O_NOFOLLOW`, `AT_SYMLINK_NOFOLLOW`, `renameat`, `unlinkat`),
//! so a symlink planted at the target is replaced, not written through.
//!
//! Nothing here joins paths and hands them to `std::fs`: a tree that swaps a directory
//! for a symlink cannot redirect an operation outside the root.
//!
//! ```no_run
//! # fn main() -> std::io::Result<()> {
//! use std::os::fd::AsFd;
//! use std::path::Path;
//! use sandlab_image::confined;
//!
//! let root = confined::open_root(Path::new("/var/lib/sandlab/sandboxes/sb-x/rootfs"))?;
//! confined::mkdir_all_in_root(root.as_fd(), Path::new("/etc"), 0o755, None)?;
//! // Replaces /etc/resolv.conf even when the sandbox made it a symlink to /etc/shadow.
//! confined::write_file_in_root(root.as_fd(), Path::new("/etc/resolv.conf"), b"nameserver 10.0.0.1\n", 0o644, None)?;
//! # Ok(()) }
//! ```
//!
//! Needs Linux 5.6 or newer (`openat2`).

use std::ffi::{CString, OsStr, OsString};
use std::fs::File;
use std::io::{self, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

mod remove;
pub use remove::remove_all_at;

use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag};
use nix::sys::stat::{fstat, fstatat, FileStat, Mode};
use nix::unistd::{Gid, Uid, UnlinkatFlags};

/// How every path is resolved: inside the root, no magic links.
const RESOLVE: u64 = libc::RESOLVE_IN_ROOT | libc::RESOLVE_NO_MAGICLINKS;

/// How often `openat2` is retried when the kernel reports a concurrent rename (`EAGAIN`).
const EAGAIN_RETRIES: u32 = 32;

/// A resolved parent directory and the final component of a path inside it.
#[derive(Debug)]
pub struct Parent {
    /// The parent directory (an `O_PATH` fd, usable as `dirfd` for the `*at` calls).
    pub dir: OwnedFd,
    /// The final component: one name, never empty, `.` or `..`.
    pub name: OsString,
}

/// Opens `path` (a trusted host path) as the root of a confined tree: an `O_PATH`
/// directory fd to pass to the other functions.
pub fn open_root(path: &Path) -> io::Result<OwnedFd> {
    Ok(nix::fcntl::open(
        path,
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )?)
}

/// Opens `path` inside the tree rooted at `root`, with `openat2(2)` flags `flags`
/// (`libc::O_*`; `O_CLOEXEC` is always added) and creation mode `mode`.
///
/// Every component, symlinks included, is resolved as if `root` were `/`. Note that
/// with `O_CREAT` and without `O_NOFOLLOW` a symlink at the final component is followed
/// (inside the root); use [`create_file_in_root`] to never follow it.
pub fn open_in_root(
    root: BorrowedFd<'_>,
    path: &Path,
    flags: i32,
    mode: u32,
) -> io::Result<OwnedFd> {
    let rel = relative(path)?;
    openat2(root, &rel, flags, mode)
}

/// Resolves the parent directory of `path` inside `root` and returns it with the final
/// component. `path` must name something below the root (not `/`, not ending in `..`).
pub fn open_parent_in_root(root: BorrowedFd<'_>, path: &Path) -> io::Result<Parent> {
    let comps = components(path);
    let Some((last, parents)) = comps.split_last() else {
        return Err(invalid("the path names the root itself"));
    };
    if last.as_bytes() == b".." {
        return Err(invalid("the path ends in \"..\""));
    }
    let dir = openat2(root, &join(parents)?, libc::O_PATH | libc::O_DIRECTORY, 0)?;
    Ok(Parent {
        dir,
        name: (*last).to_owned(),
    })
}

/// Creates the directory `path` and any missing parents inside `root` with `mode`
/// (and `owner` as `(uid, gid)` when given, for the directories it creates), and
/// returns an `O_PATH` fd of it. Existing directories, and symlinks to directories
/// inside the root, are used as they are.
pub fn mkdir_all_in_root(
    root: BorrowedFd<'_>,
    path: &Path,
    mode: u32,
    owner: Option<(u32, u32)>,
) -> io::Result<OwnedFd> {
    let comps = components(path);
    let dir_flags = libc::O_PATH | libc::O_DIRECTORY;
    let mut cur = openat2(root, &CString::from(c"."), dir_flags, 0)?;
    for i in 0..comps.len() {
        let prefix = join(&comps[..=i])?;
        match openat2(root, &prefix, dir_flags, 0) {
            Ok(fd) => cur = fd,
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {
                let name = comps[i];
                match nix::sys::stat::mkdirat(&cur, name, Mode::from_bits_truncate(mode)) {
                    Ok(()) => {
                        // Through an fd of the new directory, never its name again: the
                        // tree may swap it for a symlink in between.
                        let dir = nix::fcntl::openat(
                            &cur,
                            name,
                            OFlag::O_RDONLY
                                | OFlag::O_DIRECTORY
                                | OFlag::O_NOFOLLOW
                                | OFlag::O_CLOEXEC,
                            Mode::empty(),
                        )?;
                        if let Some((uid, gid)) = owner {
                            nix::unistd::fchown(
                                &dir,
                                Some(Uid::from_raw(uid)),
                                Some(Gid::from_raw(gid)),
                            )?;
                        }
                        // mkdir applied the umask: set the mode the caller asked for.
                        nix::sys::stat::fchmod(&dir, Mode::from_bits_truncate(mode))?;
                    }
                    Err(Errno::EEXIST) => {}
                    Err(e) => return Err(e.into()),
                }
                cur = openat2(root, &prefix, dir_flags, 0)?;
            }
            Err(e) => return Err(e),
        }
    }
    Ok(cur)
}

/// Creates (or truncates) the regular file `path` inside `root` for writing. Its parent
/// must exist. A symlink at `path` is never followed: the call fails with `ELOOP`.
pub fn create_file_in_root(root: BorrowedFd<'_>, path: &Path, mode: u32) -> io::Result<File> {
    let parent = open_parent_in_root(root, path)?;
    let flags =
        OFlag::O_CREAT | OFlag::O_WRONLY | OFlag::O_TRUNC | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    let fd = nix::fcntl::openat(
        &parent.dir,
        parent.name.as_os_str(),
        flags,
        Mode::from_bits_truncate(mode),
    )?;
    Ok(File::from(fd))
}

/// Atomically replaces `path` inside `root` with a regular file holding `contents`,
/// mode `mode` and owner `owner` (`(uid, gid)`). Whatever was at `path` (a file, a
/// symlink, anything but a directory) is replaced, never followed. The parent must exist.
pub fn write_file_in_root(
    root: BorrowedFd<'_>,
    path: &Path,
    contents: &[u8],
    mode: u32,
    owner: Option<(u32, u32)>,
) -> io::Result<()> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let parent = open_parent_in_root(root, path)?;
    let tmp = format!(
        ".sandlab-tmp-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    );
    let flags =
        OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_WRONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    let fd = nix::fcntl::openat(
        &parent.dir,
        tmp.as_str(),
        flags,
        Mode::from_bits_truncate(0o600),
    )?;
    let result = (|| {
        let mut file = File::from(fd);
        file.write_all(contents)?;
        if let Some((uid, gid)) = owner {
            nix::unistd::fchown(&file, Some(Uid::from_raw(uid)), Some(Gid::from_raw(gid)))?;
        }
        nix::sys::stat::fchmod(&file, Mode::from_bits_truncate(mode))?;
        nix::fcntl::renameat(
            &parent.dir,
            tmp.as_str(),
            &parent.dir,
            parent.name.as_os_str(),
        )?;
        Ok(())
    })();
    if result.is_err() {
        let _ = nix::unistd::unlinkat(&parent.dir, tmp.as_str(), UnlinkatFlags::NoRemoveDir);
    }
    result
}

/// Removes `path` inside `root`: a file, symlink (not its target) or empty directory.
pub fn remove_in_root(root: BorrowedFd<'_>, path: &Path) -> io::Result<()> {
    let parent = open_parent_in_root(root, path)?;
    match nix::unistd::unlinkat(
        &parent.dir,
        parent.name.as_os_str(),
        UnlinkatFlags::NoRemoveDir,
    ) {
        Err(Errno::EISDIR) => Ok(nix::unistd::unlinkat(
            &parent.dir,
            parent.name.as_os_str(),
            UnlinkatFlags::RemoveDir,
        )?),
        other => Ok(other?),
    }
}

/// Removes `path` inside `root` and everything below it. A missing path is not an error.
pub fn remove_all_in_root(root: BorrowedFd<'_>, path: &Path) -> io::Result<()> {
    match open_parent_in_root(root, path) {
        Ok(parent) => remove_all_at(parent.dir.as_fd(), &parent.name),
        Err(e) if matches!(e.raw_os_error(), Some(libc::ENOENT | libc::ENOTDIR)) => Ok(()),
        Err(e) => Err(e),
    }
}

/// `lstat` of `path` inside `root` (the final component is not followed).
pub fn lstat_in_root(root: BorrowedFd<'_>, path: &Path) -> io::Result<FileStat> {
    match open_parent_in_root(root, path) {
        Ok(parent) => Ok(fstatat(
            &parent.dir,
            parent.name.as_os_str(),
            AtFlags::AT_SYMLINK_NOFOLLOW,
        )?),
        Err(e) if e.kind() == io::ErrorKind::InvalidInput => Ok(fstat(root)?),
        Err(e) => Err(e),
    }
}

/// `fchownat(dir, name, uid, gid, AT_SYMLINK_NOFOLLOW)`.
pub(crate) fn chown_at(dir: BorrowedFd<'_>, name: &OsStr, uid: u32, gid: u32) -> io::Result<()> {
    Ok(nix::unistd::fchownat(
        dir,
        name,
        Some(Uid::from_raw(uid)),
        Some(Gid::from_raw(gid)),
        AtFlags::AT_SYMLINK_NOFOLLOW,
    )?)
}

/// The normal components of `path`: empty and `.` components dropped, `..` kept (the
/// kernel clamps it at the root).
pub(crate) fn components(path: &Path) -> Vec<&OsStr> {
    path.as_os_str()
        .as_bytes()
        .split(|b| *b == b'/')
        .filter(|c| !c.is_empty() && *c != b".")
        .map(OsStr::from_bytes)
        .collect()
}

fn join(comps: &[&OsStr]) -> io::Result<CString> {
    if comps.is_empty() {
        return Ok(CString::from(c"."));
    }
    let mut out = Vec::new();
    for (i, c) in comps.iter().enumerate() {
        if i > 0 {
            out.push(b'/');
        }
        out.extend_from_slice(c.as_bytes());
    }
    CString::new(out).map_err(|_| invalid("the path contains a NUL byte"))
}

fn relative(path: &Path) -> io::Result<CString> {
    join(&components(path))
}

fn invalid(msg: &'static str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, msg)
}

/// `openat2(dir, path, {flags | O_CLOEXEC, mode, RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS})`.
fn openat2(dir: BorrowedFd<'_>, path: &CString, flags: i32, mode: u32) -> io::Result<OwnedFd> {
    // SAFETY: `open_how` is a plain C struct of integers; all-zero is a valid value and
    // the kernel requires unused (future) fields to be zero.
    let mut how: libc::open_how = unsafe { std::mem::zeroed() };
    // O_* flags are non-negative bit sets; the cast only widens them.
    how.flags = (flags | libc::O_CLOEXEC) as u32 as u64;
    how.mode = u64::from(mode);
    how.resolve = RESOLVE;
    let mut retries = 0;
    loop {
        // SAFETY: `path` is a valid NUL-terminated string and `how` a valid `open_how`,
        // both alive for the call; the size passed is the size of the struct passed.
        // `dir` is a valid fd borrowed for the call.
        let ret = unsafe {
            libc::syscall(
                libc::SYS_openat2,
                dir.as_raw_fd(),
                path.as_ptr(),
                &how as *const libc::open_how,
                std::mem::size_of::<libc::open_how>(),
            )
        };
        if ret >= 0 {
            let fd = RawFd::try_from(ret)
                .map_err(|_| io::Error::other("openat2 returned an invalid fd"))?;
            // SAFETY: openat2 succeeded, so `fd` is a new fd that nothing else owns.
            return Ok(unsafe { OwnedFd::from_raw_fd(fd) });
        }
        let err = io::Error::last_os_error();
        match err.raw_os_error() {
            Some(libc::EINTR) => {}
            Some(libc::EAGAIN) if retries < EAGAIN_RETRIES => retries += 1,
            Some(libc::ENOSYS) => {
                return Err(io::Error::new(
                    io::ErrorKind::Unsupported,
                    "openat2 is not available; Linux 5.6 or newer is needed",
                ))
            }
            _ => return Err(err),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::symlink;

    use super::*;

    #[test]
    fn symlinks_resolve_inside_the_root() {
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("secret"), b"host").unwrap();
        let tree = tempfile::tempdir().unwrap();
        symlink(outside.path(), tree.path().join("evil")).unwrap();
        symlink("../../../../..", tree.path().join("up")).unwrap();
        let root = open_root(tree.path()).unwrap();

        // The absolute symlink is resolved inside the tree, where it does not exist.
        let err = open_in_root(
            root.as_fd(),
            &Path::new("evil").join("secret"),
            libc::O_RDONLY,
            0,
        )
        .unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::ENOENT));
        // `..` is clamped at the root.
        mkdir_all_in_root(root.as_fd(), Path::new("up/../../x/y"), 0o750, None).unwrap();
        assert!(tree.path().join("x/y").is_dir());
        let mode = std::fs::metadata(tree.path().join("x/y"))
            .unwrap()
            .permissions();
        assert_eq!(
            std::os::unix::fs::PermissionsExt::mode(&mode) & 0o7777,
            0o750
        );
        // A symlink dangling inside the tree is not created through (like `mkdir -p`)...
        let err =
            mkdir_all_in_root(root.as_fd(), &Path::new("evil").join("d"), 0o755, None).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::ENOENT));
        // ...and once its target exists inside the tree, creating through it lands there.
        std::fs::create_dir_all(tree.path().join(outside.path().strip_prefix("/").unwrap()))
            .unwrap();
        mkdir_all_in_root(root.as_fd(), &Path::new("evil").join("d"), 0o755, None).unwrap();
        assert!(tree
            .path()
            .join(outside.path().strip_prefix("/").unwrap())
            .join("d")
            .is_dir());
        assert_eq!(std::fs::read_dir(outside.path()).unwrap().count(), 1);
    }

    #[test]
    fn write_replaces_a_symlink_instead_of_following_it() {
        let outside = tempfile::tempdir().unwrap();
        let victim = outside.path().join("victim");
        std::fs::write(&victim, b"keep").unwrap();
        let tree = tempfile::tempdir().unwrap();
        std::fs::create_dir(tree.path().join("etc")).unwrap();
        symlink(&victim, tree.path().join("etc/resolv.conf")).unwrap();
        let root = open_root(tree.path()).unwrap();

        let err =
            create_file_in_root(root.as_fd(), Path::new("/etc/resolv.conf"), 0o644).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::ELOOP));
        write_file_in_root(
            root.as_fd(),
            Path::new("/etc/resolv.conf"),
            b"nameserver 1.1.1.1\n",
            0o644,
            Some((1, 2)),
        )
        .unwrap();
        assert_eq!(std::fs::read(&victim).unwrap(), b"keep");
        let meta = std::fs::symlink_metadata(tree.path().join("etc/resolv.conf")).unwrap();
        assert!(meta.file_type().is_file());
        assert_eq!(std::os::unix::fs::MetadataExt::uid(&meta), 1);
        assert_eq!(std::os::unix::fs::MetadataExt::mode(&meta) & 0o777, 0o644);
        assert_eq!(
            std::fs::read(tree.path().join("etc/resolv.conf")).unwrap(),
            b"nameserver 1.1.1.1\n"
        );
        let st = lstat_in_root(root.as_fd(), Path::new("etc/resolv.conf")).unwrap();
        assert_eq!(st.st_gid, 2);
    }

    #[test]
    fn remove_all_is_deep_and_never_follows_symlinks() {
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("keep"), b"x").unwrap();
        let tree = tempfile::tempdir().unwrap();
        let mut deep = tree.path().join("a");
        for _ in 0..1500 {
            deep.push("d");
        }
        // Deeper than PATH_MAX allows through one path: build it step by step.
        let root = open_root(tree.path()).unwrap();
        let mut fd = mkdir_all_in_root(root.as_fd(), Path::new("a"), 0o755, None).unwrap();
        for _ in 0..1500 {
            let _ = nix::sys::stat::mkdirat(&fd, "d", Mode::from_bits_truncate(0o755));
            nix::unistd::symlinkat(outside.path(), &fd, "link").unwrap();
            fd = nix::fcntl::openat(&fd, "d", OFlag::O_PATH | OFlag::O_DIRECTORY, Mode::empty())
                .unwrap();
        }
        std::fs::write(tree.path().join("a/d/file"), b"x").unwrap();
        remove_all_in_root(root.as_fd(), Path::new("a")).unwrap();
        assert!(!tree.path().join("a").exists());
        assert!(outside.path().join("keep").exists());
        remove_all_in_root(root.as_fd(), Path::new("a")).unwrap();
        remove_in_root(root.as_fd(), Path::new("missing")).unwrap_err();
    }

    #[test]
    fn parent_of_root_is_refused() {
        let tree = tempfile::tempdir().unwrap();
        let root = open_root(tree.path()).unwrap();
        for p in ["", "/", ".", "a/.."] {
            let err = open_parent_in_root(root.as_fd(), Path::new(p)).unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{p}");
        }
    }
}
