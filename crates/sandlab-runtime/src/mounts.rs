//! Mount table reading and the sandbox rootfs overlay.

use std::path::{Path, PathBuf};

use nix::mount::{mount, umount2, MntFlags, MsFlags};

use crate::error::{Error, Result};

#[derive(Clone, Debug)]
pub struct MountEntry {
    pub mount_point: PathBuf,
    pub fs_type: String,
    pub super_options: String,
}

pub struct MountInfo {
    entries: Vec<MountEntry>,
}

impl MountInfo {
    pub fn read() -> Result<MountInfo> {
        let text = std::fs::read_to_string("/proc/self/mountinfo")
            .map_err(Error::io("/proc/self/mountinfo"))?;
        Ok(MountInfo {
            entries: text.lines().filter_map(parse_line).collect(),
        })
    }

    pub fn entries(&self) -> &[MountEntry] {
        &self.entries
    }

    /// Mount points at or below `dir`.
    pub fn under(&self, dir: &Path) -> Vec<PathBuf> {
        self.entries
            .iter()
            .filter(|e| e.mount_point.starts_with(dir))
            .map(|e| e.mount_point.clone())
            .collect()
    }

    pub fn is_mount_point(&self, path: &Path) -> bool {
        self.entries.iter().any(|e| e.mount_point == path)
    }
}

/// Parses one `/proc/self/mountinfo` line; fields after ` - ` are fs type, source, options.
fn parse_line(line: &str) -> Option<MountEntry> {
    let (pre, post) = line.split_once(" - ")?;
    let mount_point = unescape(pre.split(' ').nth(4)?);
    let mut post = post.split(' ');
    let fs_type = post.next()?.to_owned();
    let _source = post.next()?;
    let super_options = post.next().unwrap_or("").to_owned();
    Some(MountEntry {
        mount_point: PathBuf::from(mount_point),
        fs_type,
        super_options,
    })
}

/// Undoes the kernel's octal escaping of space, tab, newline and backslash.
fn unescape(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' && i + 4 <= bytes.len() {
            if let Some(v) = std::str::from_utf8(&bytes[i + 1..i + 4])
                .ok()
                .and_then(|o| u8::from_str_radix(o, 8).ok())
            {
                out.push(v);
                i += 4;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Characters that would break overlayfs's comma/colon separated option string.
pub fn check_option_safe(path: &Path) -> Result<()> {
    let s = path
        .to_str()
        .ok_or_else(|| Error::Host(format!("Path {} is not UTF-8", path.display())))?;
    if s.contains([',', ':', '\n', '\\']) {
        return Err(Error::Host(format!(
            "Path {s} contains a comma, colon or backslash, which overlayfs cannot take"
        )));
    }
    Ok(())
}

/// Mounts the sandbox root: the read-only image tree below, the writable layer above.
pub fn mount_overlay(lower: &Path, upper: &Path, work: &Path, target: &Path) -> Result<()> {
    for p in [lower, upper, work, target] {
        check_option_safe(p)?;
    }
    // `volatile`: no write to the sandbox's root reaches the host's disk by force (its
    // `sync` and `fsync` return at once, and unmounting does not flush it), so one
    // sandbox cannot stall the disk of the others, and removal costs no btrfs commit. A
    // sandbox does not outlive the host, so nothing it wrote is needed after a crash;
    // the marker a crash leaves in the work directory would refuse a new mount of it.
    // Kernels before 5.10 do not know the option (EINVAL): mounted without it there.
    let _ = std::fs::remove_dir_all(work.join("work").join("incompat"));
    let opts = format!(
        "lowerdir={},upperdir={},workdir={}",
        lower.display(),
        upper.display(),
        work.display()
    );
    let overlay = |opts: &str| {
        mount(
            Some("overlay"),
            target,
            Some("overlay"),
            MsFlags::MS_NODEV,
            Some(opts),
        )
    };
    match overlay(&format!("{opts},volatile")) {
        Err(nix::Error::EINVAL) => overlay(&opts),
        other => other,
    }
    .map_err(|e| Error::Io {
        path: target.to_owned(),
        source: e.into(),
    })
}

/// Unmounts `target` if it is mounted; a busy mount is detached lazily.
pub fn unmount(target: &Path) -> Result<()> {
    match umount2(target, MntFlags::empty()) {
        Ok(()) => Ok(()),
        Err(nix::Error::EINVAL) | Err(nix::Error::ENOENT) => Ok(()),
        Err(nix::Error::EBUSY) => umount2(target, MntFlags::MNT_DETACH).map_err(|e| Error::Io {
            path: target.to_owned(),
            source: e.into(),
        }),
        Err(e) => Err(Error::Io {
            path: target.to_owned(),
            source: e.into(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_mountinfo_lines() {
        let l = "36 35 98:0 / /var/lib/sandlab/sandboxes/sb-x/root\\040fs rw,noatime master:1 - overlay overlay rw,lowerdir=/a,upperdir=/b";
        let e = parse_line(l).unwrap();
        assert_eq!(
            e.mount_point,
            PathBuf::from("/var/lib/sandlab/sandboxes/sb-x/root fs")
        );
        assert_eq!(e.fs_type, "overlay");
        assert!(e.super_options.starts_with("rw,lowerdir=/a"));
        assert!(parse_line("garbage").is_none());
    }

    #[test]
    fn unsafe_overlay_paths_are_refused() {
        assert!(check_option_safe(Path::new("/var/lib/sandlab")).is_ok());
        assert!(check_option_safe(Path::new("/tmp/a,upperdir=/etc")).is_err());
        assert!(check_option_safe(Path::new("/tmp/a:b")).is_err());
    }

    #[test]
    fn reads_this_host() {
        let mi = MountInfo::read().unwrap();
        assert!(mi.is_mount_point(Path::new("/")));
    }
}
