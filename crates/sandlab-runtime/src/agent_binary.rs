//! Finding the static `sandlab-agent` binary that is bind-mounted into every sandbox.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// Looks, in order, at `configured`, `$SANDLAB_AGENT`, next to the running executable (and
/// its parent, for test binaries in `target/*/deps`), the static cross-build output of
/// `scripts/build-agent.sh`, and `/usr/local/lib/sandlab/sandlab-agent`.
pub fn locate(configured: Option<&Path>) -> Result<PathBuf> {
    let mut candidates: Vec<PathBuf> = Vec::new();
    if let Some(p) = configured {
        candidates.push(p.to_owned());
    }
    if let Some(p) = std::env::var_os("SANDLAB_AGENT") {
        candidates.push(PathBuf::from(p));
    }
    if let Ok(exe) = std::env::current_exe() {
        let mut dir = exe.parent();
        for _ in 0..3 {
            let Some(d) = dir else { break };
            candidates.push(d.join("x86_64-unknown-linux-gnu/release/sandlab-agent"));
            candidates.push(d.join("sandlab-agent"));
            dir = d.parent();
        }
    }
    candidates.push(PathBuf::from("/usr/local/lib/sandlab/sandlab-agent"));
    candidates
        .into_iter()
        .find(|p| is_static_elf(p))
        .ok_or(Error::NoAgent)
}

/// True for an ELF executable without a program interpreter (statically linked).
fn is_static_elf(path: &Path) -> bool {
    use std::io::Read;
    // Program headers sit right after the ELF header; 64 KiB covers them for any sane binary.
    let Ok(file) = std::fs::File::open(path) else {
        return false;
    };
    let mut bytes = Vec::with_capacity(64 * 1024);
    if file.take(64 * 1024).read_to_end(&mut bytes).is_err() {
        return false;
    }
    if bytes.len() < 64 || &bytes[..4] != b"\x7fELF" || bytes[4] != 2 {
        return false;
    }
    let u16_at = |o: usize| u16::from_le_bytes([bytes[o], bytes[o + 1]]) as usize;
    let u64_at = |o: usize| {
        let mut b = [0u8; 8];
        b.copy_from_slice(&bytes[o..o + 8]);
        u64::from_le_bytes(b) as usize
    };
    let phoff = u64_at(32);
    let phentsize = u16_at(54);
    let phnum = u16_at(56);
    for i in 0..phnum {
        let off = phoff.saturating_add(i.saturating_mul(phentsize));
        if off.saturating_add(4) > bytes.len() {
            return false;
        }
        let p_type =
            u32::from_le_bytes([bytes[off], bytes[off + 1], bytes[off + 2], bytes[off + 3]]);
        if p_type == 3 {
            return false; // PT_INTERP: dynamically linked
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dynamic_binaries_are_not_agents() {
        assert!(!is_static_elf(Path::new("/bin/sh")));
        assert!(!is_static_elf(Path::new("/etc/passwd")));
        if Path::new("/bin/busybox").exists() {
            assert!(is_static_elf(Path::new("/bin/busybox")));
        }
    }
}
