//! Each sandbox's own host ids: a uid/gid range, a user namespace owned by that range's
//! root, and the image seen through an idmapped mount.
//!
//! Images are unpacked once, owned by the image range (`RuntimeConfig::idmap`, by default
//! host uid 0x7000_0000 + the owner inside). Sandbox `n` gets range `n` above it
//! (0x7000_0000 + n × 65536): its user namespace maps 0 → that range, and its overlay's
//! lower layer is the image through an idmapped mount that shows the image range as the
//! sandbox's range (the kernel translates ids on access; nothing is copied or chowned).
//!
//! Why: the kernel charges per-user budgets (keys and their quota, inotify instances and
//! watches, POSIX message queues, user namespaces) to a process's uid and to the *owner*
//! of each user namespace up the chain. With one range for all and namespaces made by
//! root, every sandbox spent host root's budgets: one sandbox took all 128 inotify
//! instances, and runc's session keyrings stopped creates near 185 sandboxes (the per-uid
//! key quota). With a range and an owner each, a sandbox spends only its own, and an
//! escaped process is a uid no other sandbox shares.

use std::ffi::CString;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use sandlab_image::IdMap;

use crate::error::{Error, Result};

/// The idmap of the sandbox that holds range slot `slot` (≥ 1) above `image`.
pub fn range(image: &IdMap, slot: u32) -> IdMap {
    let shift = slot * image.size;
    IdMap {
        host_uid: image.host_uid + shift,
        host_gid: image.host_gid + shift,
        size: image.size,
    }
}

/// How many range slots fit above `image` in the 32-bit id space (slot 0 is the image's
/// own range), at most 16384; the top id (-1) is never handed out.
pub fn range_count(image: &IdMap) -> u32 {
    if image.size == 0 || image.size > 1 << 24 {
        return 0;
    }
    let top = u64::from(image.host_uid.max(image.host_gid));
    let room = (u64::from(u32::MAX) - top) / u64::from(image.size);
    room.min(16384) as u32
}

/// A user namespace whose owner is host uid/gid `owner` (so the kernel charges the
/// namespace's per-user budgets to it), with the given `uid_map`/`gid_map` lines.
///
/// A forked child takes `owner` as its ids, unshares a user namespace and waits; this
/// process (root) writes the maps and opens the namespace; then the child exits.
pub fn make_userns(owner: (u32, u32), uid_map: &str, gid_map: &str) -> Result<OwnedFd> {
    // SAFETY (the closure): raw system calls on our own ids only.
    let child = fork_into(|| unsafe {
        libc::syscall(libc::SYS_setgroups, 0, std::ptr::null::<libc::gid_t>()) == 0
            && libc::syscall(libc::SYS_setresgid, owner.1, owner.1, owner.1) == 0
            && libc::syscall(libc::SYS_setresuid, owner.0, owner.0, owner.0) == 0
            && libc::syscall(libc::SYS_unshare, libc::CLONE_NEWUSER) == 0
    })?
    .ok_or_else(|| {
        Error::Host(format!(
            "Cannot make a user namespace owned by host uid {}: the kernel refused (user.max_user_namespaces, or user namespaces disabled)",
            owner.0
        ))
    })?;
    for (file, map) in [("uid_map", uid_map), ("gid_map", gid_map)] {
        let path = format!("/proc/{}/{file}", child.pid);
        std::fs::write(&path, map).map_err(Error::io(&path))?;
    }
    child.namespace("user")
}

/// A network namespace owned by the user namespace `userns` (a machine's: root inside
/// then holds CAP_NET_ADMIN over it, for Docker's bridges and iptables). A forked child
/// joins `userns` and unshares the netns; this process opens it; then the child exits.
pub fn make_netns_in(userns: BorrowedFd<'_>) -> Result<OwnedFd> {
    let userns = userns.as_raw_fd();
    // SAFETY (the closure): setns and unshare on a descriptor the parent holds open.
    let child = fork_into(|| unsafe {
        libc::setns(userns, libc::CLONE_NEWUSER) == 0
            && libc::syscall(libc::SYS_unshare, libc::CLONE_NEWNET) == 0
    })?
    .ok_or_else(|| {
        Error::Host(
            "Cannot make a network namespace inside a sandbox's user namespace: the kernel refused"
                .into(),
        )
    })?;
    child.namespace("net")
}

/// Forks a child that runs `enter` (raw system calls only: it runs between fork and
/// exit, where no lock or allocator state another thread held may be touched), tells us
/// whether it succeeded, and waits until the returned [`Child`] is dropped, so this
/// process can open the namespaces it made. `None` when `enter` failed.
fn fork_into(enter: impl Fn() -> bool) -> Result<Option<Child>> {
    let (ready_r, ready_w) = pipe()?;
    let (go_r, go_w) = pipe()?;
    // SAFETY: the child runs only `enter` and raw system calls (async-signal-safe) and
    // `_exit`s.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(os_error("fork", "a namespace"));
    }
    if pid == 0 {
        // SAFETY: raw system calls on our own descriptors; see above.
        unsafe {
            // Our copies of the parent's ends: holding the write end of `go` would keep us
            // waiting for ever, with every descriptor of the parent (its listening socket
            // among them), should the parent die before it writes.
            libc::close(ready_r.as_raw_fd());
            libc::close(go_w.as_raw_fd());
            let byte: u8 = enter().into();
            libc::write(ready_w.as_raw_fd(), (&raw const byte).cast(), 1);
            // Wait for the parent's byte, or the end of file its death brings (a sibling
            // forked meanwhile may hold a copy of the write end, but exits the same way).
            let mut buf = 0u8;
            while libc::read(go_r.as_raw_fd(), (&raw mut buf).cast(), 1) < 0
                && *libc::__errno_location() == libc::EINTR
            {}
            libc::_exit(0);
        }
    }
    drop(ready_w);
    drop(go_r);
    let child = Child {
        pid,
        go: Some(go_w),
    };
    let mut byte = 0u8;
    // SAFETY: reading one byte into a local.
    let n = unsafe { libc::read(ready_r.as_raw_fd(), (&raw mut byte).cast(), 1) };
    Ok((n == 1 && byte == 1).then_some(child))
}

/// The forked helper: dropping it tells it to exit and reaps it.
struct Child {
    pid: libc::pid_t,
    go: Option<OwnedFd>,
}

impl Child {
    /// Opens the child's namespace of `kind` (`user`, `net`), then lets it exit.
    fn namespace(self, kind: &str) -> Result<OwnedFd> {
        let path = format!("/proc/{}/ns/{kind}", self.pid);
        let ns = std::fs::File::open(&path).map_err(Error::io(&path))?;
        drop(self);
        Ok(ns.into())
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        if let Some(go) = self.go.take() {
            let byte = 1u8;
            // SAFETY: writing one byte from a local to our own pipe.
            unsafe { libc::write(go.as_raw_fd(), (&raw const byte).cast(), 1) };
        }
        let mut status = 0;
        // SAFETY: waiting on our own child, which exits once `go` is closed.
        unsafe { libc::waitpid(self.pid, &mut status, 0) };
    }
}

fn pipe() -> Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for the two descriptors pipe2 writes.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(os_error("pipe2", "a user namespace"));
    }
    // SAFETY: both descriptors are fresh and ours alone.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

fn os_error(call: &str, what: &str) -> Error {
    Error::Host(format!(
        "Cannot make {what}: {call} failed: {}",
        std::io::Error::last_os_error()
    ))
}

/// The user namespace a sandbox runs in: owned by the root of its range, which it maps
/// to 0 inside.
pub fn sandbox_userns(ids: &IdMap) -> Result<OwnedFd> {
    make_userns(
        (ids.host_uid, ids.host_gid),
        &format!("0 {} {}\n", ids.host_uid, ids.size),
        &format!("0 {} {}\n", ids.host_gid, ids.size),
    )
}

/// The namespace an idmapped mount uses to show files owned by the `image` range as
/// owned by the `ids` range: it maps the image's host ids (taken as ids inside) to the
/// sandbox's.
fn image_to_sandbox(image: &IdMap, ids: &IdMap) -> Result<OwnedFd> {
    make_userns(
        (0, 0),
        &format!("{} {} {}\n", image.host_uid, ids.host_uid, ids.size),
        &format!("{} {} {}\n", image.host_gid, ids.host_gid, ids.size),
    )
}

const OPEN_TREE_CLONE: libc::c_uint = 1;
const MOUNT_ATTR_IDMAP: u64 = 0x0010_0000;
const MOVE_MOUNT_F_EMPTY_PATH: libc::c_uint = 0x4;

/// `struct mount_attr` (MOUNT_ATTR_SIZE_VER0).
#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

/// Mounts `src` at `target` (a directory) with its owners shifted from the `image` range
/// to the `ids` range. Fails with the kernel's error when `src`'s filesystem does not
/// support idmapped mounts.
pub fn mount_idmapped(src: &Path, target: &Path, image: &IdMap, ids: &IdMap) -> Result<()> {
    let ns = image_to_sandbox(image, ids)?;
    let c_src = cstring(src)?;
    let c_target = cstring(target)?;
    let empty = c"";
    // SAFETY: a valid path string; the result is checked before use.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_open_tree,
            libc::AT_FDCWD,
            c_src.as_ptr(),
            OPEN_TREE_CLONE | libc::O_CLOEXEC as libc::c_uint,
        )
    };
    if fd < 0 {
        return Err(Error::io(src)(std::io::Error::last_os_error()));
    }
    // SAFETY: open_tree returned a fresh descriptor that we own.
    let tree = unsafe { OwnedFd::from_raw_fd(fd as libc::c_int) };
    let attr = MountAttr {
        attr_set: MOUNT_ATTR_IDMAP,
        attr_clr: 0,
        propagation: 0,
        userns_fd: ns.as_raw_fd() as u64,
    };
    // SAFETY: `attr` is a valid mount_attr of the size passed and outlives the call.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            tree.as_raw_fd(),
            empty.as_ptr(),
            libc::AT_EMPTY_PATH,
            &raw const attr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    if rc != 0 {
        return Err(Error::io(src)(std::io::Error::last_os_error()));
    }
    // SAFETY: valid descriptors and path strings.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            tree.as_raw_fd(),
            empty.as_ptr(),
            libc::AT_FDCWD,
            c_target.as_ptr(),
            MOVE_MOUNT_F_EMPTY_PATH,
        )
    };
    if rc != 0 {
        return Err(Error::io(target)(std::io::Error::last_os_error()));
    }
    Ok(())
}

/// Keeps the namespace `ns` alive as long as `file` (created here) has it bind-mounted,
/// so the OCI runtime can join it by path.
pub fn hold(ns: BorrowedFd<'_>, file: &Path) -> Result<()> {
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .open(file)
        .map_err(Error::io(file))?;
    let source = format!("/proc/self/fd/{}", ns.as_fd().as_raw_fd());
    nix::mount::mount(
        Some(source.as_str()),
        file,
        None::<&str>,
        nix::mount::MsFlags::MS_BIND,
        None::<&str>,
    )
    .map_err(|e| Error::Io {
        path: file.to_owned(),
        source: e.into(),
    })
}

fn cstring(path: &Path) -> Result<CString> {
    CString::new(path.as_os_str().as_bytes())
        .map_err(|_| Error::Host(format!("The path {} has a NUL byte", path.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_sit_above_the_image_range_and_fit_in_32_bits() {
        let image = IdMap::default();
        let r1 = range(&image, 1);
        assert_eq!(r1.host_uid, 0x7001_0000);
        assert_eq!(r1.size, 65536);
        let n = range_count(&image);
        assert_eq!(n, 16384);
        let last = range(&image, n - 1);
        assert!(u64::from(last.host_uid) + u64::from(last.size) < u64::from(u32::MAX));
        let high = IdMap {
            host_uid: u32::MAX - 3 * 65536,
            host_gid: 0,
            size: 65536,
        };
        assert_eq!(range_count(&high), 3, "slots 1 and 2");
        let last = range(&high, 2);
        assert!(u64::from(last.host_uid) + u64::from(last.size) <= u64::from(u32::MAX));
        assert_eq!(range_count(&IdMap::identity()), 0);
    }
}
