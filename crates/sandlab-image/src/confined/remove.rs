//! Removing a directory tree that its contents control, however deep.

use std::ffi::{OsStr, OsString};
use std::io;
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::ffi::OsStrExt;

use nix::dir::{Dir, Type};
use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag};
use nix::sys::stat::{fstat, fstatat, Mode, SFlag};
use nix::unistd::UnlinkatFlags;

/// Removes the entry `name` of directory `dir` and, when it is a directory, everything
/// below it, never following a symlink. A missing entry is not an error.
///
/// The walk holds one directory fd at a time and no recursion, so a tree of any depth
/// is removed without running out of fds or stack. It climbs back with `..` and checks
/// that each parent is still the directory it descended from.
pub fn remove_all_at(dir: BorrowedFd<'_>, name: &OsStr) -> io::Result<()> {
    match nix::unistd::unlinkat(dir, name, UnlinkatFlags::NoRemoveDir) {
        Ok(()) | Err(Errno::ENOENT) => return Ok(()),
        Err(Errno::EISDIR) => {}
        Err(e) => return Err(e.into()),
    }
    struct Level {
        name: OsString,
        dev: u64,
        ino: u64,
    }
    let open_dir = |parent: BorrowedFd<'_>, name: &OsStr| {
        nix::fcntl::openat(
            parent,
            name,
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
    };
    let mut cur = open_dir(dir, name)?;
    let st = fstat(&cur)?;
    let mut stack = vec![Level {
        name: name.to_owned(),
        dev: st.st_dev,
        ino: st.st_ino,
    }];
    loop {
        if let Some(sub) = clear_files(cur.as_fd())? {
            let fd = open_dir(cur.as_fd(), &sub)?;
            let st = fstat(&fd)?;
            stack.push(Level {
                name: sub,
                dev: st.st_dev,
                ino: st.st_ino,
            });
            cur = fd;
            continue;
        }
        // `cur` is empty: remove it from its parent, then go on with the parent.
        let Some(done) = stack.pop() else {
            return Ok(());
        };
        let Some(up) = stack.last() else {
            nix::unistd::unlinkat(dir, done.name.as_os_str(), UnlinkatFlags::RemoveDir)?;
            return Ok(());
        };
        let parent = open_dir(cur.as_fd(), OsStr::new(".."))?;
        let st = fstat(&parent)?;
        if (st.st_dev, st.st_ino) != (up.dev, up.ino) {
            return Err(io::Error::other(
                "a directory was moved while it was being removed",
            ));
        }
        nix::unistd::unlinkat(&parent, done.name.as_os_str(), UnlinkatFlags::RemoveDir)?;
        cur = parent;
    }
}

/// Unlinks every non-directory in `dir` and returns the name of one subdirectory, if any.
fn clear_files(dir: BorrowedFd<'_>) -> io::Result<Option<OsString>> {
    let mut listing = Dir::from_fd(dir.try_clone_to_owned()?)?;
    let mut subdir = None;
    for entry in listing.iter() {
        let entry = entry?;
        let name = OsStr::from_bytes(entry.file_name().to_bytes());
        if name == "." || name == ".." {
            continue;
        }
        let is_dir = match entry.file_type() {
            Some(t) => t == Type::Directory,
            None => match fstatat(dir, name, AtFlags::AT_SYMLINK_NOFOLLOW) {
                Ok(st) => SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFDIR,
                Err(Errno::ENOENT) => continue,
                Err(e) => return Err(e.into()),
            },
        };
        if is_dir {
            if subdir.is_none() {
                subdir = Some(name.to_owned());
            }
            continue;
        }
        match nix::unistd::unlinkat(dir, name, UnlinkatFlags::NoRemoveDir) {
            Ok(()) | Err(Errno::ENOENT) => {}
            Err(Errno::EISDIR) => {
                if subdir.is_none() {
                    subdir = Some(name.to_owned());
                }
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(subdir)
}
