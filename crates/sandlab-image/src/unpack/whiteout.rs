//! Whiteouts: `.wh.NAME` removes `NAME` from the layers below, `.wh..wh..opq` empties
//! its directory of what the layers below put there. Both are resolved inside the tree
//! like any other path; a parent that does not exist makes them do nothing.

use std::ffi::OsStr;
use std::hash::BuildHasher;
use std::io;
use std::os::fd::AsFd;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use nix::dir::Dir;

use super::apply::LayerState;
use super::path::{join, show};
use super::{UnpackError, Unpacker};
use crate::confined;

pub(super) const WHITEOUT_PREFIX: &[u8] = b".wh.";
const OPAQUE_MARKER: &[u8] = b".wh..wh..opq";
/// Other `.wh..wh.` names are aufs bookkeeping (`.wh..wh.plnk`, ...) and are ignored.
const AUFS_META_PREFIX: &[u8] = b".wh..wh.";

impl Unpacker {
    pub(super) fn whiteout(
        &mut self,
        st: &mut LayerState,
        raw: &[u8],
        parent: &[u8],
        name: &[u8],
    ) -> Result<(), UnpackError> {
        let write_err = |source: io::Error| UnpackError::Write {
            layer: st.layer.clone(),
            path: show(raw),
            source,
        };
        let open_parent = |flags| match confined::open_in_root(
            self.root.as_fd(),
            Path::new(OsStr::from_bytes(parent)),
            flags,
            0,
        ) {
            Ok(fd) => Ok(Some(fd)),
            Err(e) if matches!(e.raw_os_error(), Some(libc::ENOENT | libc::ENOTDIR)) => Ok(None),
            Err(e) => Err(e),
        };
        if name == OPAQUE_MARKER {
            self.stats.whiteouts += 1;
            let Some(dir) = open_parent(libc::O_RDONLY | libc::O_DIRECTORY).map_err(write_err)?
            else {
                return Ok(());
            };
            let mut names: Vec<Vec<u8>> = Vec::new();
            let mut listing = Dir::from_fd(dir.try_clone().map_err(write_err)?)
                .map_err(|e| write_err(e.into()))?;
            for ent in listing.iter() {
                let ent = ent.map_err(|e| write_err(e.into()))?;
                let child = ent.file_name().to_bytes();
                if child != b"."
                    && child != b".."
                    && !st
                        .created
                        .contains(&self.hasher.hash_one(join(parent, child)))
                {
                    names.push(child.to_vec());
                }
            }
            for child in names {
                confined::remove_all_at(dir.as_fd(), OsStr::from_bytes(&child))
                    .map_err(write_err)?;
            }
            return Ok(());
        }
        if name.starts_with(AUFS_META_PREFIX) {
            self.stats.skipped_other += 1;
            return Ok(());
        }
        let victim = &name[WHITEOUT_PREFIX.len()..];
        if victim.is_empty() || victim == b"." || victim == b".." {
            return Err(UnpackError::BadWhiteout {
                layer: st.layer.clone(),
                path: show(raw),
            });
        }
        self.stats.whiteouts += 1;
        if st
            .created
            .contains(&self.hasher.hash_one(join(parent, victim)))
        {
            return Ok(()); // this layer's own entry, not one from below
        }
        if let Some(dir) = open_parent(libc::O_PATH | libc::O_DIRECTORY).map_err(write_err)? {
            confined::remove_all_at(dir.as_fd(), OsStr::from_bytes(victim)).map_err(write_err)?;
        }
        Ok(())
    }
}
