//! The rules a code execution request must follow: file names, sizes, arguments and
//! limits, each broken rule a [`CodeExecError::Invalid`] sentence.

use std::time::Duration;

use sandlab_core::ByteSize;

use super::{CodeExecError, ExecuteLimits, ExecuteRequest, Language, Result};

/// Most files per request and bytes of them all, of stdin and of one argument.
const MAX_FILES: usize = 32;
const MAX_SOURCE_BYTES: usize = 1 << 20;
const MAX_ARGS: usize = 64;
const MAX_ARG_BYTES: usize = 4096;

/// A request's limits, checked.
#[derive(Debug, Clone, Copy)]
pub(super) struct Checked {
    pub(super) wall: Duration,
    pub(super) cpu_ms: u64,
    pub(super) memory: ByteSize,
    pub(super) pids: u32,
    pub(super) output: usize,
}

fn invalid(msg: impl Into<String>) -> CodeExecError {
    CodeExecError::Invalid(msg.into())
}

/// A plain file name: 1 to 64 of `[A-Za-z0-9._-]`, not starting with `.`.
pub fn valid_file_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
}

fn check_limits(l: &ExecuteLimits) -> Result<Checked> {
    let wall = l.wall_ms.unwrap_or(5000);
    let cpu_ms = l.cpu_ms.unwrap_or(3000);
    if !(1..=60_000).contains(&wall) || !(1..=60_000).contains(&cpu_ms) {
        return Err(invalid(
            "The limits `wall_ms` and `cpu_ms` must be between 1 and 60000.",
        ));
    }
    let memory = match &l.memory {
        Some(m) => ByteSize(
            sandlab_core::parse_size(m)
                .map_err(|e| invalid(format!("The limit `memory` is invalid: {e}.")))?,
        ),
        None => ByteSize::mib(256),
    };
    if memory < ByteSize::mib(16) || memory > ByteSize::gib(4) {
        return Err(invalid("The limit `memory` must be between 16M and 4G."));
    }
    let pids = l.pids.unwrap_or(64);
    if !(8..=1024).contains(&pids) {
        return Err(invalid("The limit `pids` must be between 8 and 1024."));
    }
    let output = l.output_bytes.unwrap_or(65536);
    if !(1..=1 << 20).contains(&output) {
        return Err(invalid(
            "The limit `output_bytes` must be between 1 and 1048576.",
        ));
    }
    Ok(Checked {
        wall: Duration::from_millis(wall),
        cpu_ms,
        memory,
        pids,
        output: output as usize,
    })
}

/// Files to write, `(name, content)`, the entry first.
pub(super) type Files = Vec<(String, Vec<u8>)>;

/// Checks the request and returns the files to write and the limits.
pub(super) fn check(req: &ExecuteRequest, lang: &Language) -> Result<(Files, Checked)> {
    if req.files.is_empty() || req.files.len() > MAX_FILES {
        return Err(invalid(format!("Send 1 to {MAX_FILES} files.")));
    }
    let total: usize = req.files.iter().map(|f| f.content.len()).sum();
    if total > MAX_SOURCE_BYTES || req.stdin.len() > MAX_SOURCE_BYTES {
        return Err(invalid(
            "The files together, and stdin, must each be at most 1 MiB.",
        ));
    }
    if req.args.len() > MAX_ARGS
        || req
            .args
            .iter()
            .any(|a| a.len() > MAX_ARG_BYTES || a.contains('\0'))
    {
        return Err(invalid(
            "At most 64 args of at most 4096 bytes each, without NUL.",
        ));
    }
    let mut files = Vec::new();
    for (i, f) in req.files.iter().enumerate() {
        let name = match (&f.name, i) {
            (Some(n), _) => n.clone(),
            (None, 0) => lang.file.clone(),
            (None, _) => format!("file{i}"),
        };
        if !valid_file_name(&name) {
            return Err(invalid(format!(
                "The file name {name:?} is not a plain file name."
            )));
        }
        if files.iter().any(|(n, _)| *n == name) {
            return Err(invalid(format!("The file name {name:?} is used twice.")));
        }
        files.push((name, f.content.clone().into_bytes()));
    }
    Ok((files, check_limits(&req.limits)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names() {
        for ok in ["main.py", "a-b_c.1"] {
            assert!(valid_file_name(ok), "{ok}");
        }
        for bad in ["", ".env", "../x", "a/b", "a b", &"x".repeat(65)] {
            assert!(!valid_file_name(bad), "{bad:?}");
        }
    }

    #[test]
    fn limits_are_bounded() {
        assert!(check_limits(&ExecuteLimits::default()).is_ok());
        for bad in [
            ExecuteLimits {
                wall_ms: Some(0),
                ..Default::default()
            },
            ExecuteLimits {
                cpu_ms: Some(60_001),
                ..Default::default()
            },
            ExecuteLimits {
                memory: Some("1G0".into()),
                ..Default::default()
            },
            ExecuteLimits {
                memory: Some("8M".into()),
                ..Default::default()
            },
            ExecuteLimits {
                pids: Some(2),
                ..Default::default()
            },
            ExecuteLimits {
                output_bytes: Some(0),
                ..Default::default()
            },
        ] {
            assert!(check_limits(&bad).is_err(), "{bad:?}");
        }
    }
}
