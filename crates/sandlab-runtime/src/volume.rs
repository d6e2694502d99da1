//! Writable layers with an enforced size: one btrfs subvolume per sandbox with a qgroup
//! limit, inside a btrfs filesystem kept in a sparse file `<data>/volumes.img` and
//! loop-mounted at `<data>/volumes`.
//!
//! Why btrfs: a sandbox's disk limit must be enforced by the kernel, and overlayfs has no
//! quota of its own. XFS/ext4 project quotas need a kernel built with `CONFIG_QUOTA`,
//! which not every host has; btrfs qgroups do not. Creating a subvolume and setting its
//! limit are two ioctls, far cheaper than a loop device per sandbox.

use std::fs::File;
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use sandlab_core::SandboxId;

use crate::command;
use crate::error::{Error, Result};
use crate::mounts::MountInfo;

const BTRFS_IOCTL_MAGIC: u8 = 0x94;
const BTRFS_PATH_NAME_MAX: usize = 4087;
const BTRFS_QGROUP_LIMIT_MAX_RFER: u64 = 1;

#[repr(C)]
struct VolArgs {
    fd: i64,
    name: [u8; BTRFS_PATH_NAME_MAX + 1],
}

#[repr(C)]
#[derive(Default)]
struct QgroupLimit {
    flags: u64,
    max_rfer: u64,
    max_excl: u64,
    rsv_rfer: u64,
    rsv_excl: u64,
}

#[repr(C)]
#[derive(Default)]
struct QgroupLimitArgs {
    qgroupid: u64,
    lim: QgroupLimit,
}

nix::ioctl_write_ptr!(btrfs_subvol_create, BTRFS_IOCTL_MAGIC, 14, VolArgs);
nix::ioctl_write_ptr!(btrfs_snap_destroy, BTRFS_IOCTL_MAGIC, 15, VolArgs);
nix::ioctl_read!(btrfs_qgroup_limit, BTRFS_IOCTL_MAGIC, 43, QgroupLimitArgs);
nix::ioctl_read!(btrfs_fs_info, BTRFS_IOCTL_MAGIC, 31, FsInfoArgs);
nix::ioctl_write_ptr!(btrfs_quota_rescan, BTRFS_IOCTL_MAGIC, 44, RescanArgs);
nix::ioctl_none!(btrfs_quota_rescan_wait, BTRFS_IOCTL_MAGIC, 46);
nix::ioctl_write_ptr!(btrfs_subvol_setflags, BTRFS_IOCTL_MAGIC, 26, u64);

/// `struct btrfs_ioctl_fs_info_args`: only the filesystem's id is read.
#[repr(C)]
struct FsInfoArgs {
    max_id: u64,
    num_devices: u64,
    fsid: [u8; 16],
    rest: [u8; 992],
}

/// `struct btrfs_ioctl_quota_rescan_args`.
#[repr(C)]
#[derive(Default)]
struct RescanArgs {
    flags: u64,
    progress: u64,
    reserved: [u64; 6],
}

/// The deepest level a btrfs tree has (`BTRFS_MAX_LEVEL`): as the pool's
/// `qgroups/drop_subtree_threshold` it makes the kernel account every dropped subvolume
/// in full instead of marking the qgroups inconsistent.
const BTRFS_MAX_LEVEL: u8 = 8;

fn vol_args(name: &str) -> Result<Box<VolArgs>> {
    vol_args_of(name.as_bytes())
        .ok_or_else(|| Error::Host(format!("Subvolume name {name:?} is not a plain file name")))
}

/// `name` (any bytes but NUL and `/`) as the kernel's vol_args.
fn vol_args_of(bytes: &[u8]) -> Option<Box<VolArgs>> {
    if bytes.len() > BTRFS_PATH_NAME_MAX || bytes.contains(&0) || bytes.contains(&b'/') {
        return None;
    }
    let mut args = Box::new(VolArgs {
        fd: 0,
        name: [0; BTRFS_PATH_NAME_MAX + 1],
    });
    args.name[..bytes.len()].copy_from_slice(bytes);
    Some(args)
}

#[derive(Clone, Debug)]
pub struct VolumePool {
    dir: PathBuf,
    /// The pool's `qgroups` directory in sysfs (there only while quotas are on); `None`
    /// when sysfs has no btrfs here. Found once: the filesystem's id does not change.
    qgroups: Option<PathBuf>,
}

impl VolumePool {
    /// Mounts the pool, creating its backing file and filesystem on first use.
    pub fn open(
        mounts: &MountInfo,
        image: &Path,
        dir: &Path,
        size: Option<u64>,
    ) -> Result<VolumePool> {
        std::fs::create_dir_all(dir).map_err(Error::io(dir))?;
        let mounted = mounts
            .entries()
            .iter()
            .any(|e| e.mount_point == dir && e.fs_type == "btrfs");
        if mounted {
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o711))
                .map_err(Error::io(dir))?;
            return VolumePool::mounted_at(dir);
        }
        // Two processes starting on a fresh data dir must not both make (or mount) the
        // pool: the first does it under this lock, the second then finds it mounted.
        let lock_path = image.with_extension("lock");
        let lock = File::create(&lock_path).map_err(Error::io(&lock_path))?;
        let _lock = nix::fcntl::Flock::lock(lock, nix::fcntl::FlockArg::LockExclusive).map_err(
            |(_, e)| Error::Io {
                path: lock_path.clone(),
                source: e.into(),
            },
        )?;
        let mounted_now = nix::sys::statfs::statfs(dir)
            .map(|s| s.filesystem_type() == nix::sys::statfs::BTRFS_SUPER_MAGIC)
            .unwrap_or(false);
        if !mounted_now {
            if !image.exists() {
                create_image(image, size)?;
            }
            command::run_blocking(
                "mount",
                &["-o", "loop,noatime", path_str(image)?, path_str(dir)?],
            )?;
            command::run_blocking("btrfs", &["quota", "enable", path_str(dir)?])?;
        }
        // Traversable by the sandboxes' mapped root (overlay's upper dir is inside), not
        // listable: host users cannot browse learners' files.
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o711))
            .map_err(Error::io(dir))?;
        VolumePool::mounted_at(dir)
    }

    /// The pool mounted at `dir`, its drop threshold raised and its accounting checked.
    fn mounted_at(dir: &Path) -> Result<VolumePool> {
        let pool = VolumePool {
            dir: dir.to_owned(),
            qgroups: sysfs_qgroups(dir)?,
        };
        pool.account_every_drop();
        pool.report_accounting();
        Ok(pool)
    }

    /// Keeps the kernel enforcing the pool's limits. btrfs checks a write against a
    /// qgroup's limit with the bytes it has counted, and it counts only while its qgroups
    /// are consistent: once it marks them inconsistent (an error while accounting, a
    /// generation mismatch at mount, a deep subvolume dropped past
    /// `drop_subtree_threshold`, a qgroup relation it cannot update quickly) it may stop
    /// counting until a rescan, and a sandbox could write past its `disk` limit. With
    /// quotas switched off there are no limits at all. So this switches quotas back on
    /// when they are off and rescans (waiting for it) when they are inconsistent; it is
    /// called when the pool is opened and before each sandbox's volume is made, and costs
    /// two sysfs reads when all is well. An accounting that stays broken is an error: no
    /// sandbox is made without its limit.
    pub fn keep_accounting(&self) -> Result<()> {
        let state = self.quota_state()?;
        if state == QuotaState::Consistent {
            return Ok(());
        }
        let dir = path_str(&self.dir)?;
        if state == QuotaState::Off {
            tracing::warn!(pool = dir, "the sandbox volume pool's quotas were switched off: switching them on and limiting every volume again");
            command::run_blocking("btrfs", &["quota", "enable", dir])?;
            self.account_every_drop();
        } else {
            tracing::warn!(pool = dir, "the sandbox volume pool's qgroups are inconsistent (see the kernel log): rescanning");
        }
        self.rescan()?;
        if state == QuotaState::Off {
            // Switching quotas on made every qgroup anew, without a limit.
            for id in self.list() {
                let path = self.path(&id);
                match read_limit(&path) {
                    Some(bytes) => limit_subvolume(&path, bytes)?,
                    None => {
                        tracing::error!(sandbox.id = %id, "a volume without its limit note stays unlimited until it is removed")
                    }
                }
            }
        }
        match self.quota_state()? {
            QuotaState::Consistent => {
                tracing::info!(pool = dir, "the sandbox volume pool's qgroups are consistent again");
                Ok(())
            }
            QuotaState::Off => Err(Error::Host(format!(
                "The sandbox volume pool {dir} has its quotas switched off and they could not be switched on, so no disk limit can be enforced"
            ))),
            QuotaState::Inconsistent => Err(Error::Host(format!(
                "The sandbox volume pool {dir} keeps its qgroups inconsistent after a rescan, so no disk limit can be enforced (the kernel log says why)"
            ))),
        }
    }

    /// [`Self::keep_accounting`] when the pool is opened, where a failure is logged rather
    /// than returned: removing and inspecting sandboxes must still work, and each new
    /// volume checks again (and is refused while the accounting stays broken).
    fn report_accounting(&self) {
        if let Err(e) = self.keep_accounting() {
            tracing::error!(error = %e, "the sandbox volume pool's disk limits are not enforced; no sandbox is made until they are");
        }
    }

    /// Starts a quota rescan of the pool (or joins the one running) and waits for it.
    fn rescan(&self) -> Result<()> {
        let dir = File::open(&self.dir).map_err(Error::io(&self.dir))?;
        let args = RescanArgs::default();
        let ioctl_error = |e: nix::Error| Error::Io {
            path: self.dir.clone(),
            source: e.into(),
        };
        // SAFETY: `args` is a valid btrfs_ioctl_quota_rescan_args that outlives the call.
        match unsafe { btrfs_quota_rescan(dir.as_raw_fd(), &args) } {
            Ok(_) | Err(nix::Error::EINPROGRESS) => {}
            Err(e) => return Err(ioctl_error(e)),
        }
        loop {
            // SAFETY: an ioctl without an argument on an open directory.
            match unsafe { btrfs_quota_rescan_wait(dir.as_raw_fd()) } {
                Ok(_) => return Ok(()),
                Err(nix::Error::EINTR) => continue,
                Err(e) => return Err(ioctl_error(e)),
            }
        }
    }

    /// The pool's quota state, from `/sys/fs/btrfs/<fsid>/qgroups` (which exists only
    /// while quotas are on) or, where sysfs does not say, from `btrfs qgroup show`.
    fn quota_state(&self) -> Result<QuotaState> {
        if let Some(qgroups) = &self.qgroups {
            if !qgroups.exists() {
                return Ok(QuotaState::Off);
            }
            if let Ok(text) = std::fs::read_to_string(qgroups.join("inconsistent")) {
                return Ok(if text.trim() == "0" {
                    QuotaState::Consistent
                } else {
                    QuotaState::Inconsistent
                });
            }
        }
        let out = std::process::Command::new("btrfs")
            .args(["qgroup", "show", "--raw"])
            .arg(&self.dir)
            .stdin(std::process::Stdio::null())
            .output()
            .map_err(Error::io("run btrfs qgroup show"))?;
        let stderr = String::from_utf8_lossy(&out.stderr);
        quota_state_of_show(out.status.success(), &stderr).ok_or_else(|| {
            Error::Host(format!(
                "Cannot tell whether the sandbox volume pool's quotas hold: btrfs qgroup show said {:?}",
                stderr.trim()
            ))
        })
    }

    /// Makes the kernel account a dropped subvolume in full however deep its tree (the
    /// default threshold, 3 on recent kernels, marks the qgroups inconsistent instead).
    /// The setting lasts while the pool is mounted; kernels without it are left as they
    /// are.
    fn account_every_drop(&self) {
        let Some(qgroups) = &self.qgroups else {
            return;
        };
        let knob = qgroups.join("drop_subtree_threshold");
        if knob.exists() {
            if let Err(e) = std::fs::write(&knob, BTRFS_MAX_LEVEL.to_string()) {
                tracing::warn!(path = %knob.display(), error = %e, "cannot raise the pool's qgroup drop threshold");
            }
        }
    }

    /// The pool's mount point.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn path(&self, id: &SandboxId) -> PathBuf {
        self.dir.join(id.as_str())
    }

    /// Creates the sandbox's subvolume with `upper/` and `work/` and limits it to `bytes`.
    pub fn create(&self, id: &SandboxId, bytes: u64, owner: (u32, u32)) -> Result<PathBuf> {
        self.keep_accounting()?;
        let path = self.path(id);
        if !path.exists() {
            let parent = File::open(&self.dir).map_err(Error::io(&self.dir))?;
            let args = vol_args(id.as_str())?;
            // SAFETY: `args` is a valid, NUL-terminated btrfs_ioctl_vol_args that outlives the call.
            unsafe { btrfs_subvol_create(parent.as_raw_fd(), &*args) }.map_err(|e| Error::Io {
                path: path.clone(),
                source: e.into(),
            })?;
        }
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o711))
            .map_err(Error::io(&path))?;
        // The limit is noted in the volume first: quotas switched off and on again lose
        // every limit, and `keep_accounting` puts them back from these notes.
        let note = path.join(LIMIT_NOTE);
        std::fs::write(&note, bytes.to_string()).map_err(Error::io(&note))?;
        limit_subvolume(&path, bytes)?;
        for sub in ["upper", "work"] {
            let d = path.join(sub);
            match std::fs::create_dir(&d) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(Error::Io { path: d, source: e }),
            }
        }
        let upper = path.join("upper");
        std::os::unix::fs::chown(&upper, Some(owner.0), Some(owner.1))
            .map_err(Error::io(&upper))?;
        Ok(path)
    }

    /// Deletes the sandbox's subvolume and everything in it. Idempotent.
    pub fn remove(&self, id: &SandboxId) -> Result<()> {
        let path = self.path(id);
        if !path.exists() {
            return Ok(());
        }
        match destroy_subvolume(&self.dir, id.as_str()) {
            Ok(()) | Err(nix::Error::ENOENT) => Ok(()),
            // Not a subvolume (e.g. a plain dir left by an older layout): remove it as files.
            Err(nix::Error::ENOTTY) | Err(nix::Error::EINVAL) => {
                std::fs::remove_dir_all(&path).map_err(Error::io(&path))
            }
            // Subvolumes inside it (a sandbox could make them before seccomp refused the
            // ioctl, and a host tool still can): those first, then it.
            Err(nix::Error::ENOTEMPTY) => {
                // A full subvolume cannot even lose a directory entry (EDQUOT): its limit
                // goes first.
                limit_subvolume(&path, NO_LIMIT)?;
                let nested = nested_subvolumes(&path)?;
                // A read-only one cannot lose the subvolumes inside it either.
                for sub in &nested {
                    make_writable(sub);
                }
                for sub in nested.iter().rev() {
                    let (Some(parent), Some(name)) = (sub.parent(), sub.file_name()) else {
                        continue;
                    };
                    destroy_subvolume_named(parent, name.as_bytes()).map_err(|e| Error::Io {
                        path: sub.clone(),
                        source: e.into(),
                    })?;
                }
                destroy_subvolume(&self.dir, id.as_str()).map_err(|e| Error::Io {
                    path,
                    source: e.into(),
                })
            }
            Err(e) => Err(Error::Io {
                path,
                source: e.into(),
            }),
        }
    }

    /// Ids of every sandbox subvolume in the pool.
    pub fn list(&self) -> Vec<SandboxId> {
        std::fs::read_dir(&self.dir)
            .map(|rd| {
                rd.flatten()
                    .filter_map(|e| e.file_name().to_str().and_then(|n| n.parse().ok()))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Drops qgroups whose subvolumes are gone.
    pub fn clear_stale_qgroups(&self) {
        if let Ok(dir) = path_str(&self.dir) {
            let _ = command::run_blocking("btrfs", &["qgroup", "clear-stale", dir]);
        }
    }
}

/// The file in a volume (beside `upper/` and `work/`, out of the sandbox's sight) that
/// holds its limit in bytes.
const LIMIT_NOTE: &str = "limit";

/// The limit noted in the volume at `path`.
fn read_limit(path: &Path) -> Option<u64> {
    std::fs::read_to_string(path.join(LIMIT_NOTE))
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// The limit that lifts a qgroup's limit (the kernel's `CLEAR_VALUE`).
const NO_LIMIT: u64 = u64::MAX;

/// Limits the subvolume at `path` to `bytes` referenced ([`NO_LIMIT`]: none).
fn limit_subvolume(path: &Path, bytes: u64) -> Result<()> {
    let subvol = File::open(path).map_err(Error::io(path))?;
    let mut limit = QgroupLimitArgs {
        qgroupid: 0,
        lim: QgroupLimit {
            flags: BTRFS_QGROUP_LIMIT_MAX_RFER,
            max_rfer: bytes,
            ..Default::default()
        },
    };
    // SAFETY: qgroupid 0 means "the subvolume of this fd"; the struct outlives the call.
    unsafe { btrfs_qgroup_limit(subvol.as_raw_fd(), &mut limit) }.map_err(|e| Error::Io {
        path: path.to_owned(),
        source: e.into(),
    })?;
    Ok(())
}

/// The `qgroups` directory in sysfs of the btrfs filesystem mounted at `dir` (`None` when
/// sysfs has no btrfs here).
fn sysfs_qgroups(dir: &Path) -> Result<Option<PathBuf>> {
    let file = File::open(dir).map_err(Error::io(dir))?;
    let mut args = FsInfoArgs {
        max_id: 0,
        num_devices: 0,
        fsid: [0; 16],
        rest: [0; 992],
    };
    // SAFETY: `args` is a writable btrfs_ioctl_fs_info_args that outlives the call.
    unsafe { btrfs_fs_info(file.as_raw_fd(), &mut args) }.map_err(|e| Error::Io {
        path: dir.to_owned(),
        source: e.into(),
    })?;
    let fs = Path::new("/sys/fs/btrfs").join(fsid_text(&args.fsid));
    Ok(fs.is_dir().then(|| fs.join("qgroups")))
}

/// Deletes the subvolume `name` in the directory `parent`.
fn destroy_subvolume(parent: &Path, name: &str) -> std::result::Result<(), nix::Error> {
    destroy_subvolume_named(parent, name.as_bytes())
}

fn destroy_subvolume_named(parent: &Path, name: &[u8]) -> std::result::Result<(), nix::Error> {
    // Not a file name: nothing the kernel would find (EINVAL would mean "not a subvolume").
    let args = vol_args_of(name).ok_or(nix::Error::ENAMETOOLONG)?;
    let dir = File::open(parent)
        .map_err(|e| nix::Error::from_raw(e.raw_os_error().unwrap_or(nix::libc::EIO)))?;
    // SAFETY: `args` is a valid, NUL-terminated btrfs_ioctl_vol_args that outlives the call.
    unsafe { btrfs_snap_destroy(dir.as_raw_fd(), &*args) }.map(|_| ())
}

/// Clears a subvolume's read-only flag (best effort: the deletion that follows reports).
fn make_writable(subvolume: &Path) {
    let Ok(dir) = File::open(subvolume) else {
        return;
    };
    let flags: u64 = 0;
    // SAFETY: a pointer to a u64 that outlives the call, on an open subvolume root.
    let _ = unsafe { btrfs_subvol_setflags(dir.as_raw_fd(), &flags) };
}

/// The subvolumes below `root` (a subvolume's root directory is inode 256 on a device of
/// its own), each after the one it is in. Walked without recursion and without following
/// symlinks: the tree is a sandbox's and may be deep.
fn nested_subvolumes(root: &Path) -> Result<Vec<PathBuf>> {
    use std::os::unix::fs::MetadataExt;
    const SUBVOLUME_ROOT_INODE: u64 = 256;
    let meta = std::fs::symlink_metadata(root).map_err(Error::io(root))?;
    let mut found = Vec::new();
    let mut todo = vec![(root.to_owned(), meta.dev())];
    while let Some((dir, dev)) = todo.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let Ok(meta) = entry.metadata() else {
                continue;
            };
            if !meta.is_dir() {
                continue;
            }
            let path = entry.path();
            if meta.dev() != dev {
                // Another subvolume (its root is inode 256 on a device of its own), or
                // something mounted here, which is not walked.
                if meta.ino() != SUBVOLUME_ROOT_INODE {
                    continue;
                }
                found.push(path.clone());
            }
            todo.push((path, meta.dev()));
        }
    }
    Ok(found)
}

/// Whether the pool's quotas hold their limits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum QuotaState {
    Consistent,
    Inconsistent,
    Off,
}

/// The quota state `btrfs qgroup show` tells by its exit status and warnings (`None`: it
/// failed for another reason). A rescan in progress counts as inconsistent: joining it
/// waits for it.
fn quota_state_of_show(success: bool, stderr: &str) -> Option<QuotaState> {
    if !success {
        stderr.contains("not enabled").then_some(QuotaState::Off)
    } else if stderr.contains("inconsistent") || stderr.contains("rescan") {
        Some(QuotaState::Inconsistent)
    } else {
        Some(QuotaState::Consistent)
    }
}

/// A filesystem id as sysfs names it (`0123abcd-...`).
fn fsid_text(fsid: &[u8; 16]) -> String {
    let hex: String = fsid.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

fn create_image(image: &Path, size: Option<u64>) -> Result<()> {
    let size = match size {
        Some(s) => s,
        None => {
            let parent = image.parent().unwrap_or(Path::new("/"));
            let st = nix::sys::statvfs::statvfs(parent).map_err(|e| Error::Io {
                path: parent.to_owned(),
                source: e.into(),
            })?;
            let free = st.blocks_available() as u64 * st.fragment_size() as u64;
            (free / 10 * 8).min(1 << 40)
        }
    };
    if size < (1 << 30) {
        return Err(Error::Host(format!(
            "Only {size} bytes free for the sandbox volume pool; at least 1G is needed"
        )));
    }
    let tmp = image.with_extension("img.tmp");
    let f = File::create(&tmp).map_err(Error::io(&tmp))?;
    f.set_len(size).map_err(Error::io(&tmp))?;
    drop(f);
    command::run_blocking(
        "mkfs.btrfs",
        &[
            "-q",
            "-f",
            "-L",
            "sandlab-volumes",
            "-m",
            "single",
            path_str(&tmp)?,
        ],
    )?;
    std::fs::rename(&tmp, image).map_err(Error::io(image))
}

fn path_str(p: &Path) -> Result<&str> {
    p.to_str()
        .ok_or_else(|| Error::Host(format!("Path {} is not UTF-8", p.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subvolume_names_are_plain() {
        assert!(vol_args("sb-abcdefgh2345").is_ok());
        assert!(vol_args("../x").is_err());
        assert!(vol_args("a\0b").is_err());
    }

    #[test]
    fn struct_sizes_match_the_kernel() {
        assert_eq!(std::mem::size_of::<VolArgs>(), 4096);
        assert_eq!(std::mem::size_of::<QgroupLimitArgs>(), 48);
        assert_eq!(std::mem::size_of::<FsInfoArgs>(), 1024);
        assert_eq!(std::mem::size_of::<RescanArgs>(), 64);
    }

    #[test]
    fn fsids_are_named_as_sysfs_names_them() {
        let id = [
            0x11, 0x6c, 0xe9, 0x80, 0x6a, 0xdc, 0x49, 0x78, 0xaf, 0x74, 0x2b, 0x2e, 0x09, 0x00,
            0x45, 0xf3,
        ];
        assert_eq!(fsid_text(&id), "116ce980-6adc-4978-af74-2b2e090045f3");
    }

    #[test]
    fn btrfs_qgroup_show_tells_the_quota_state() {
        assert_eq!(quota_state_of_show(true, ""), Some(QuotaState::Consistent));
        assert_eq!(
            quota_state_of_show(
                true,
                "WARNING: qgroup data inconsistent, rescan recommended\n"
            ),
            Some(QuotaState::Inconsistent)
        );
        assert_eq!(
            quota_state_of_show(
                true,
                "WARNING: rescan is running, qgroup data may be incorrect\n"
            ),
            Some(QuotaState::Inconsistent)
        );
        assert_eq!(
            quota_state_of_show(false, "ERROR: can't list qgroups: quotas not enabled\n"),
            Some(QuotaState::Off)
        );
        assert_eq!(
            quota_state_of_show(false, "ERROR: cannot access '/x'\n"),
            None
        );
    }
}
