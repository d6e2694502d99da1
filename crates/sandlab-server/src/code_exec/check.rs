//! The rules a code execution request must follow: file names, sizes, arguments and
//! limits, each broken rule a [`CodeExecError::Invalid`] sentence.

use std::time::Duration;

use sandlab_core::ByteSize;

use super::engine::{Job, StepLimits, DEFAULT_MEMORY, DEFAULT_PIDS};
use super::{CodeExecError, ExecuteLimits, ExecuteRequest, Language, Result};

/// Most files per request and bytes of them all, of stdin and of one argument.
const MAX_FILES: usize = 32;
const MAX_SOURCE_BYTES: usize = 1 << 20;
const MAX_ARGS: usize = 64;
const MAX_ARG_BYTES: usize = 4096;

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

/// The native request's limits, checked: (compile, run, memory, pids).
fn check_limits(
    l: &ExecuteLimits,
    lang: &Language,
) -> Result<(StepLimits, StepLimits, ByteSize, u32)> {
    let wall = l.wall_ms.unwrap_or(5000);
    let cpu_ms = l.cpu_ms.unwrap_or(3000);
    if !(1..=60_000).contains(&wall) || !(1..=60_000).contains(&cpu_ms) {
        return Err(invalid(
            "The limits `wall_ms` and `cpu_ms` must be between 1 and 60000.",
        ));
    }
    let compile_wall = l
        .compile_wall_ms
        .or(lang.compile_wall_ms)
        .unwrap_or(DEFAULT_COMPILE_MS);
    let compile_cpu = l
        .compile_cpu_ms
        .or(lang.compile_cpu_ms)
        .unwrap_or(DEFAULT_COMPILE_MS);
    if !(1..=120_000).contains(&compile_wall) || !(1..=120_000).contains(&compile_cpu) {
        return Err(invalid(
            "The limits `compile_wall_ms` and `compile_cpu_ms` must be between 1 and 120000.",
        ));
    }
    let memory = match &l.memory {
        Some(m) => ByteSize(
            sandlab_core::parse_size(m)
                .map_err(|e| invalid(format!("The limit `memory` is invalid: {e}.")))?,
        ),
        None => DEFAULT_MEMORY,
    };
    check_memory(memory, "memory")?;
    let pids = l.pids.unwrap_or(DEFAULT_PIDS);
    check_pids(pids, "pids")?;
    let output = l.output_bytes.unwrap_or(65536);
    let output = check_output(output, "output_bytes")?;
    Ok((
        StepLimits::new(Duration::from_millis(compile_wall), compile_cpu, output),
        StepLimits::new(Duration::from_millis(wall), cpu_ms, output),
        memory,
        pids,
    ))
}

/// The compile step's default wall and CPU time.
pub(super) const DEFAULT_COMPILE_MS: u64 = 10_000;

pub(super) fn check_memory(memory: ByteSize, key: &str) -> Result<()> {
    if memory < ByteSize::mib(16) || memory > ByteSize::gib(4) {
        return Err(invalid(format!(
            "The limit `{key}` must be between 16M and 4G."
        )));
    }
    Ok(())
}

pub(super) fn check_pids(pids: u32, key: &str) -> Result<()> {
    if !(8..=1024).contains(&pids) {
        return Err(invalid(format!(
            "The limit `{key}` must be between 8 and 1024."
        )));
    }
    Ok(())
}

pub(super) fn check_output(bytes: u64, key: &str) -> Result<usize> {
    if !(1..=1 << 20).contains(&bytes) {
        return Err(invalid(format!(
            "The limit `{key}` must be between 1 and 1048576."
        )));
    }
    Ok(bytes as usize)
}

/// Checks names and sizes of `(name, content)` files (a missing first name is the
/// language's), stdin and arguments.
pub(super) fn check_files(
    files: Vec<(Option<String>, Vec<u8>)>,
    stdin: &[u8],
    args: &[String],
    lang: &Language,
) -> Result<Vec<(String, Vec<u8>)>> {
    if files.is_empty() || files.len() > MAX_FILES {
        return Err(invalid(format!("Send 1 to {MAX_FILES} files.")));
    }
    let total: usize = files.iter().map(|f| f.1.len()).sum();
    if total > MAX_SOURCE_BYTES || stdin.len() > MAX_SOURCE_BYTES {
        return Err(invalid(
            "The files together, and stdin, must each be at most 1 MiB.",
        ));
    }
    if args.len() > MAX_ARGS
        || args
            .iter()
            .any(|a| a.len() > MAX_ARG_BYTES || a.contains('\0'))
    {
        return Err(invalid(
            "At most 64 args of at most 4096 bytes each, without NUL.",
        ));
    }
    let mut out: Vec<(String, Vec<u8>)> = Vec::new();
    for (i, (name, content)) in files.into_iter().enumerate() {
        let name = match (name, i) {
            (Some(n), _) => n,
            (None, 0) => lang.file.clone(),
            (None, _) => format!("file{i}"),
        };
        if !valid_file_name(&name) {
            return Err(invalid(format!(
                "The file name {name:?} is not a plain file name."
            )));
        }
        if out.iter().any(|(n, _)| *n == name) {
            return Err(invalid(format!("The file name {name:?} is used twice.")));
        }
        out.push((name, content));
    }
    Ok(out)
}

/// Checks a native request into a job for `lang`.
pub(super) fn check(req: &ExecuteRequest, lang: Language, network: bool) -> Result<Job> {
    let files = req
        .files
        .iter()
        .map(|f| (f.name.clone(), f.content.clone().into_bytes()))
        .collect();
    let files = check_files(files, req.stdin.as_bytes(), &req.args, &lang)?;
    let (compile, run, memory, pids) = check_limits(&req.limits, &lang)?;
    Ok(Job {
        lang,
        files,
        stdin: req.stdin.clone().into_bytes(),
        args: req.args.clone(),
        compile_options: Vec::new(),
        compile,
        run,
        memory,
        pids,
        network,
        runs: 1,
    })
}

/// Splits a command line as a shell would into words: blanks separate, single quotes
/// keep everything, double quotes keep all but `\"` and `\\`, a backslash outside quotes
/// keeps the next character. No expansion of any kind. `None` on an unclosed quote.
pub fn split_words(s: &str) -> Option<Vec<String>> {
    let mut words = Vec::new();
    let mut word: Option<String> = None;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            ' ' | '\t' | '\n' => {
                if let Some(w) = word.take() {
                    words.push(w);
                }
            }
            '\'' => {
                let w = word.get_or_insert_with(String::new);
                loop {
                    match chars.next()? {
                        '\'' => break,
                        c => w.push(c),
                    }
                }
            }
            '"' => {
                let w = word.get_or_insert_with(String::new);
                loop {
                    match chars.next()? {
                        '"' => break,
                        '\\' => match chars.next()? {
                            c @ ('"' | '\\') => w.push(c),
                            c => {
                                w.push('\\');
                                w.push(c);
                            }
                        },
                        c => w.push(c),
                    }
                }
            }
            '\\' => {
                let next = chars.next().unwrap_or('\\');
                word.get_or_insert_with(String::new).push(next);
            }
            c => word.get_or_insert_with(String::new).push(c),
        }
    }
    words.extend(word);
    Some(words)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lang() -> Language {
        toml::from_str(
            "name='x'\nversion='1'\nimage='i'\nfile='main.x'\nrun=['x']\ncompile_wall_ms=30000\n",
        )
        .unwrap()
    }

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
        let (compile, run, memory, pids) =
            check_limits(&ExecuteLimits::default(), &lang()).unwrap();
        assert_eq!(
            compile.wall,
            Duration::from_secs(30),
            "the language's compile default"
        );
        assert_eq!(run.cpu_ms, 3000);
        assert_eq!((memory, pids), (DEFAULT_MEMORY, DEFAULT_PIDS));
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
                compile_wall_ms: Some(120_001),
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
            assert!(check_limits(&bad, &lang()).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn words_split_like_a_shell() {
        assert_eq!(split_words("a  b\tc").unwrap(), ["a", "b", "c"]);
        assert_eq!(
            split_words("'a b' \"c \\\" d\" e\\ f").unwrap(),
            ["a b", "c \" d", "e f"]
        );
        assert_eq!(split_words("$HOME `x` ''").unwrap(), ["$HOME", "`x`", ""]);
        assert!(split_words("'open").is_none());
        assert!(split_words("").unwrap().is_empty());
    }
}
