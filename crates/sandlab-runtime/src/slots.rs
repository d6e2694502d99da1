//! Numbered slots allocated host-wide: egress addresses and host uid ranges.
//!
//! Each egress sandbox gets a /30 (and a /64) from slot `n` of the address pool, and each
//! sandbox its own range of host uids and gids (slot `n` of the id space above the image
//! range; see `userns`). Every Sandlab process on this host, whatever its data dir,
//! allocates from one directory per kind, `/run/sandlab/egress-slots/` and
//! `/run/sandlab/uid-ranges/`. A slot is taken by writing its owner (data dir and
//! sandbox id) to a private temp file and hard-linking that to the slot's number: the link
//! fails if the slot is taken, so two processes never get the same slot, and a slot file
//! is never seen half written. The slot's number is also noted in the sandbox's own
//! directory, so removal frees it without a scan.
//!
//! Crash windows and their repair, all by [`Slots::sweep`] (run with reconciliation):
//! a temp file left before its link; a slot taken but not yet noted (its sandbox's
//! directory goes with the sandbox); slots of a data dir that no longer exists and whose
//! sandbox has no network namespace or interface left on the host. The directory is on a
//! tmpfs: a reboot frees every slot along with the interfaces.

use std::io::Write;
use std::path::{Path, PathBuf};

use sandlab_core::SandboxId;

use crate::error::{Error, Result};
use crate::network::SLOTS;

const SLOTS_DIR: &str = "/run/sandlab/egress-slots";
/// In the sandbox directory: the egress slot it holds.
pub const SLOT_NOTE: &str = "egress-slot";
const UID_RANGES_DIR: &str = "/run/sandlab/uid-ranges";
/// In the sandbox directory: the uid range it holds.
pub const UID_RANGE_NOTE: &str = "uid-range";
/// A slot file being written, before its link: `.tmp-<sandbox id>`.
const TMP_PREFIX: &str = ".tmp-";

pub struct Slots {
    dir: PathBuf,
    /// This data dir, canonical: written into each slot file taken from here.
    data_dir: PathBuf,
    /// The file in a sandbox's directory that names its slot.
    note: &'static str,
    /// Slots are numbered `1..count`.
    count: u32,
}

/// Who holds a slot, as its file says.
#[derive(Debug, PartialEq, Eq)]
struct SlotOwner {
    data_dir: PathBuf,
    id: SandboxId,
}

impl Slots {
    /// Egress address slots.
    pub fn egress(data_dir: &Path) -> Slots {
        Slots::in_dir(Path::new(SLOTS_DIR), data_dir, SLOT_NOTE, SLOTS)
    }

    /// Host uid ranges, `count` of them.
    pub fn uid_ranges(data_dir: &Path, count: u32) -> Slots {
        Slots::in_dir(Path::new(UID_RANGES_DIR), data_dir, UID_RANGE_NOTE, count)
    }

    fn in_dir(dir: &Path, data_dir: &Path, note: &'static str, count: u32) -> Slots {
        Slots {
            dir: dir.to_owned(),
            data_dir: data_dir.to_owned(),
            note,
            count,
        }
    }

    /// The slot `sandbox_dir` notes, if any.
    pub fn noted(&self, sandbox_dir: &Path) -> Option<u32> {
        std::fs::read_to_string(sandbox_dir.join(self.note))
            .ok()
            .and_then(|s| s.trim().parse::<u32>().ok())
    }

    /// Takes a free slot for `id` and notes it in `sandbox_dir`.
    pub fn take(&self, id: &SandboxId, sandbox_dir: &Path) -> Result<u32> {
        std::fs::create_dir_all(&self.dir).map_err(Error::io(&self.dir))?;
        let used = self.used()?;
        let free = (1..self.count).filter(|s| !used.contains(s));
        self.claim_first(id, sandbox_dir, free)?
            .ok_or(Error::PoolExhausted)
    }

    /// Takes slot `slot` for `id` if it is free (a sandbox made before slots were
    /// host-wide, whose address is already in use); whether it is now `id`'s.
    pub fn adopt(&self, id: &SandboxId, sandbox_dir: &Path, slot: u32) -> Result<bool> {
        if self.claim_first(id, sandbox_dir, [slot])?.is_some() {
            return Ok(true);
        }
        let path = self.dir.join(slot.to_string());
        Ok(self
            .owner(&path)
            .is_some_and(|o| self.is_ours(&o) && &o.id == id))
    }

    /// Links a file naming `id` to the first of `slots` that is free, and notes it.
    fn claim_first(
        &self,
        id: &SandboxId,
        sandbox_dir: &Path,
        slots: impl IntoIterator<Item = u32>,
    ) -> Result<Option<u32>> {
        std::fs::create_dir_all(&self.dir).map_err(Error::io(&self.dir))?;
        let tmp = self.dir.join(format!("{TMP_PREFIX}{id}"));
        let body = format!("{}\n{id}\n", self.data_dir.display());
        let mut f = std::fs::File::create(&tmp).map_err(Error::io(&tmp))?;
        f.write_all(body.as_bytes()).map_err(Error::io(&tmp))?;
        drop(f);
        let mut taken = None;
        for slot in slots {
            let path = self.dir.join(slot.to_string());
            match std::fs::hard_link(&tmp, &path) {
                Ok(()) => {
                    taken = Some(slot);
                    break;
                }
                // Another process took it since we listed: try the next.
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => {
                    let _ = std::fs::remove_file(&tmp);
                    return Err(Error::Io { path, source: e });
                }
            }
        }
        remove_file(&tmp)?;
        if let Some(slot) = taken {
            let note = sandbox_dir.join(self.note);
            std::fs::write(&note, slot.to_string()).map_err(Error::io(&note))?;
        }
        Ok(taken)
    }

    /// Frees the slot `sandbox_dir` notes, if its file still names `id` of this data dir.
    /// Without a usable note (a create killed between linking its slot and writing the
    /// note), every file in the slot directory that names `id` of this data dir goes: the
    /// sandbox directory is about to be removed, and `sweep` would then keep the slot
    /// only until the next start.
    pub fn free(&self, id: &SandboxId, sandbox_dir: &Path) -> Result<()> {
        let names_us = |path: &Path| {
            self.owner(path)
                .is_some_and(|o| self.is_ours(&o) && &o.id == id)
        };
        if let Some(slot) = self.noted(sandbox_dir) {
            let path = self.dir.join(slot.to_string());
            if names_us(&path) {
                remove_file(&path)?;
            }
            return Ok(());
        }
        let Ok(rd) = std::fs::read_dir(&self.dir) else {
            return Ok(());
        };
        for e in rd.flatten() {
            let path = e.path();
            if names_us(&path) {
                remove_file(&path)?;
            }
        }
        Ok(())
    }

    /// Frees slots of this data dir whose sandbox directory is gone, and slots of data
    /// dirs that no longer exist. `sandboxes_dir` holds this data dir's sandbox dirs.
    pub fn sweep(&self, sandboxes_dir: &Path) {
        let Ok(rd) = std::fs::read_dir(&self.dir) else {
            return;
        };
        for e in rd.flatten() {
            let path = e.path();
            let Some(owner) = self.owner(&path) else {
                continue;
            };
            let stale = if self.is_ours(&owner) {
                !sandboxes_dir.join(owner.id.as_str()).exists()
            } else {
                // Another data dir may be out of this process's sight (another mount
                // namespace): only a sandbox with no network left on the host is gone
                // (every sandbox has a network namespace until it is removed).
                !owner.data_dir.exists() && !has_host_network(&owner.id)
            };
            if stale {
                tracing::info!(sandbox.id = %owner.id, slot = %path.display(), "freeing a stale egress slot");
                if let Err(e) = remove_file(&path) {
                    tracing::warn!(error = %e, "could not free a stale egress slot");
                }
            }
        }
    }

    fn used(&self) -> Result<std::collections::HashSet<u32>> {
        let rd = std::fs::read_dir(&self.dir).map_err(Error::io(&self.dir))?;
        Ok(rd
            .flatten()
            .filter_map(|e| e.file_name().to_str()?.parse().ok())
            .collect())
    }

    fn owner(&self, path: &Path) -> Option<SlotOwner> {
        let text = std::fs::read_to_string(path).ok()?;
        let mut lines = text.lines();
        let data_dir = PathBuf::from(lines.next()?);
        let id = lines.next()?.parse().ok()?;
        Some(SlotOwner { data_dir, id })
    }

    fn is_ours(&self, owner: &SlotOwner) -> bool {
        owner.data_dir == self.data_dir
    }
}

/// Whether the host still holds `id`'s network namespace or egress interface.
fn has_host_network(id: &SandboxId) -> bool {
    Path::new("/run/netns").join(id.as_str()).exists()
        || Path::new("/sys/class/net").join(id.as_str()).exists()
}

fn remove_file(path: &Path) -> Result<()> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::Io {
            path: path.to_owned(),
            source: e,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn setup() -> (tempfile::TempDir, Slots, Slots, PathBuf, PathBuf) {
        let t = tempfile::tempdir().unwrap();
        let slots = t.path().join("slots");
        let (a, b) = (t.path().join("a"), t.path().join("b"));
        for d in [&a, &b] {
            std::fs::create_dir_all(d.join("sandboxes")).unwrap();
        }
        let sa = Slots::in_dir(&slots, &a, SLOT_NOTE, SLOTS);
        let sb = Slots::in_dir(&slots, &b, SLOT_NOTE, SLOTS);
        (t, sa, sb, a, b)
    }

    fn sandbox(data: &Path) -> (SandboxId, PathBuf) {
        let id = SandboxId::generate();
        let dir = data.join("sandboxes").join(id.as_str());
        std::fs::create_dir_all(&dir).unwrap();
        (id, dir)
    }

    #[test]
    fn two_data_dirs_never_share_a_slot() {
        let (_t, sa, sb, a, b) = setup();
        let mut seen = std::collections::HashSet::new();
        for i in 0..20 {
            let (slots, data) = if i % 2 == 0 { (&sa, &a) } else { (&sb, &b) };
            let (id, dir) = sandbox(data);
            assert!(seen.insert(slots.take(&id, &dir).unwrap()));
        }
    }

    #[test]
    fn adopt_keeps_a_legacy_sandbox_on_its_address_and_never_steals() {
        let (_t, sa, sb, a, b) = setup();
        let (old, old_dir) = sandbox(&a);
        assert!(sa.adopt(&old, &old_dir, 1).unwrap());
        assert!(
            sa.adopt(&old, &old_dir, 1).unwrap(),
            "adopting twice is fine"
        );
        let (other, other_dir) = sandbox(&b);
        assert!(
            !sb.adopt(&other, &other_dir, 1).unwrap(),
            "took a slot in use"
        );
        let (new, new_dir) = sandbox(&a);
        assert_ne!(sa.take(&new, &new_dir).unwrap(), 1);
        assert!(sa.used().unwrap().contains(&1));
        // No temp file is left behind.
        let names: Vec<_> = std::fs::read_dir(&sa.dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert!(
            names.iter().all(|n| !n.starts_with(TMP_PREFIX)),
            "{names:?}"
        );
    }

    #[test]
    fn free_releases_only_its_own_slot_and_sweep_frees_stale_ones() {
        let (_t, sa, sb, a, b) = setup();
        let (id1, dir1) = sandbox(&a);
        let s1 = sa.take(&id1, &dir1).unwrap();
        let (id2, dir2) = sandbox(&b);
        let s2 = sb.take(&id2, &dir2).unwrap();
        // A note that points at another data dir's slot frees nothing.
        std::fs::write(dir1.join(SLOT_NOTE), s2.to_string()).unwrap();
        sa.free(&id1, &dir1).unwrap();
        assert_eq!(sa.used().unwrap().len(), 2);
        std::fs::write(dir1.join(SLOT_NOTE), s1.to_string()).unwrap();
        sa.free(&id1, &dir1).unwrap();
        assert_eq!(sa.used().unwrap(), [s2].into());
        // A crash after taking a slot: the sandbox dir goes, the slot file stays.
        let (id3, dir3) = sandbox(&a);
        let s3 = sa.take(&id3, &dir3).unwrap();
        std::fs::remove_dir_all(&dir3).unwrap();
        sb.sweep(&b.join("sandboxes"));
        assert!(sa.used().unwrap().contains(&s3), "b swept a's slot");
        sa.sweep(&a.join("sandboxes"));
        assert_eq!(sa.used().unwrap(), [s2].into());
        // A create killed after linking its slot, before its note: free finds the slot
        // (and a half-done take's temp file) by scanning, and leaves others' slots alone.
        let (id4, dir4) = sandbox(&a);
        let s4 = sa.take(&id4, &dir4).unwrap();
        std::fs::remove_file(dir4.join(SLOT_NOTE)).unwrap();
        let tmp = sa.dir.join(format!("{TMP_PREFIX}{id4}"));
        std::fs::write(&tmp, format!("{}\n{id4}\n", a.display())).unwrap();
        assert!(sa.used().unwrap().contains(&s4));
        sa.free(&id4, &dir4).unwrap();
        assert_eq!(sa.used().unwrap(), [s2].into());
        assert!(!tmp.exists(), "the temp file of a half-done take stays");
        // A data dir that no longer exists frees its slots on anyone's sweep.
        std::fs::remove_dir_all(&b).unwrap();
        sa.sweep(&a.join("sandboxes"));
        assert!(sa.used().unwrap().is_empty());
    }
}
