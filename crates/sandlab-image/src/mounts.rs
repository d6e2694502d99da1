//! Whether an image tree is in use: a lower layer of a mounted overlay, or under a mount.

use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;
use std::path::{Path, PathBuf};

/// The paths that mounts in this mount namespace use: overlay lower (and data) dirs,
/// and mount points.
pub(crate) fn busy_paths() -> std::io::Result<Vec<PathBuf>> {
    let text = std::fs::read("/proc/self/mountinfo")?;
    Ok(parse_mountinfo(&text))
}

/// Whether `tree` (or anything below it) is one of `busy`.
pub(crate) fn is_busy(tree: &Path, busy: &[PathBuf]) -> bool {
    busy.iter().any(|p| p.starts_with(tree))
}

/// Parses mountinfo(5) lines: field 3 is the device, field 4 the mount's root within its
/// filesystem, field 5 the mount point; after ` - ` come the fs type, the source and the
/// super options, where overlay lists `lowerdir=a:b`. A bind mount of a subtree (an
/// idmapped view of an image for a sandbox, say) counts its source, found through a mount
/// of the whole filesystem, as in use.
fn parse_mountinfo(text: &[u8]) -> Vec<PathBuf> {
    let mut out = Vec::new();
    // (device, root within the filesystem, mount point)
    let mut mounts: Vec<(&[u8], PathBuf, PathBuf)> = Vec::new();
    for line in text.split(|b| *b == b'\n') {
        let fields: Vec<&[u8]> = line.split(|b| *b == b' ').collect();
        if let Some(mount_point) = fields.get(4) {
            let mount_point = PathBuf::from(OsString::from_vec(unescape(mount_point)));
            out.push(mount_point.clone());
            if let (Some(dev), Some(root)) = (fields.get(2), fields.get(3)) {
                let root = PathBuf::from(OsString::from_vec(unescape(root)));
                mounts.push((dev, root, mount_point));
            }
        }
        let Some(sep) = fields.iter().position(|f| *f == b"-") else {
            continue;
        };
        let (Some(fstype), Some(options)) = (fields.get(sep + 1), fields.get(sep + 3)) else {
            continue;
        };
        if *fstype != b"overlay" {
            continue;
        }
        for opt in options.split(|b| *b == b',') {
            let value = ["lowerdir=", "lowerdir+=", "datadir+="]
                .iter()
                .find_map(|key| opt.strip_prefix(key.as_bytes()));
            let Some(value) = value else { continue };
            for dir in value.split(|b| *b == b':').filter(|d| !d.is_empty()) {
                out.push(PathBuf::from(OsString::from_vec(unescape(dir))));
            }
        }
    }
    for (dev, root, _) in mounts.iter().filter(|(_, root, _)| root != Path::new("/")) {
        let whole = mounts
            .iter()
            .find(|(d, r, _)| d == dev && r == Path::new("/"));
        if let (Some((_, _, at)), Ok(rel)) = (whole, root.strip_prefix("/")) {
            out.push(at.join(rel));
        }
    }
    out
}

/// Undoes the kernel's octal escapes (`\040` for a space, `\072` for `:`...).
fn unescape(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        if raw[i] == b'\\'
            && i + 3 < raw.len()
            && raw[i + 1..i + 4].iter().all(|b| (b'0'..=b'7').contains(b))
        {
            let v = raw[i + 1..i + 4]
                .iter()
                .fold(0u32, |acc, b| acc * 8 + u32::from(b - b'0'));
            out.push(u8::try_from(v).unwrap_or(b'?'));
            i += 4;
        } else {
            out.push(raw[i]);
            i += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_overlay_lowerdirs() {
        let text = b"22 27 0:21 / /proc rw,relatime - proc proc rw\n\
            99 27 0:50 / /run/sb/root rw,relatime - overlay overlay rw,lowerdir=/data/images/trees/ab/rootfs:/x\\072y,upperdir=/u,workdir=/w\n\
            100 27 0:51 / /mnt/a\\040b rw - ext4 /dev/vda rw\n";
        let busy = parse_mountinfo(text);
        assert!(busy.contains(&PathBuf::from("/data/images/trees/ab/rootfs")));
        assert!(busy.contains(&PathBuf::from("/x:y")));
        assert!(busy.contains(&PathBuf::from("/mnt/a b")));
        assert!(!busy.contains(&PathBuf::from("/u")));
        assert!(is_busy(Path::new("/data/images/trees/ab"), &busy));
        assert!(!is_busy(Path::new("/data/images/trees/abc"), &busy));
        assert!(!is_busy(Path::new("/data/images/trees/cd"), &busy));
        // A bind (idmapped) mount of an image tree, seen through the whole filesystem's
        // mount at /data.
        let text = b"30 1 254:1 / /data rw - ext4 /dev/vdb rw\n\
            31 30 254:1 /images/trees/cd/rootfs /data/sandboxes/sb-1/lower rw - ext4 /dev/vdb rw\n";
        let busy = parse_mountinfo(text);
        assert!(is_busy(Path::new("/data/images/trees/cd"), &busy));
        assert!(!is_busy(Path::new("/data/images/trees/ef"), &busy));
    }
}
