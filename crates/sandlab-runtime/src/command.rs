//! Running host tools (`ip`, `nft`, `mount`, `btrfs`, the OCI runtime) and turning a
//! failure into one [`Error::Command`] naming the tool, its exit status and the last
//! thing it said.

use std::process::{Output, Stdio};

use tokio::io::AsyncWriteExt;

use crate::error::{Error, Result};

/// The last non-empty line of a tool's stderr, bounded.
pub fn last_line(stderr: &[u8]) -> String {
    let text = String::from_utf8_lossy(stderr);
    let line = text
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
        .trim();
    line.chars().take(500).collect()
}

/// `Ok(stdout)` when `out` is a success, else the error for `what`.
pub fn checked(what: impl FnOnce() -> String, out: Output) -> Result<Vec<u8>> {
    if out.status.success() {
        return Ok(out.stdout);
    }
    Err(Error::Command {
        what: what(),
        status: out.status.to_string(),
        stderr: last_line(&out.stderr),
    })
}

fn spawn_error(program: &str) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |source| Error::Spawn {
        what: program.into(),
        source,
    }
}

/// Runs `program args` to completion (blocking), feeding nothing on stdin.
pub fn run_blocking(program: &str, args: &[&str]) -> Result<Vec<u8>> {
    let out = std::process::Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(spawn_error(program))?;
    checked(|| format!("{program} {}", args.join(" ")), out)
}

/// Runs `program args` with `input` on stdin.
pub async fn run(program: &str, args: &[&str], input: &str) -> Result<Vec<u8>> {
    let mut child = tokio::process::Command::new(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(spawn_error(program))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(input.as_bytes())
            .await
            .map_err(spawn_error(program))?;
    }
    let out = child
        .wait_with_output()
        .await
        .map_err(spawn_error(program))?;
    checked(|| format!("{program} {}", args.join(" ")), out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn last_line_picks_the_message() {
        assert_eq!(last_line(b"a\nerror: boom\n\n"), "error: boom");
    }

    #[tokio::test]
    async fn failures_name_the_tool_and_its_words() {
        let err = run("sh", &["-c", "cat >/dev/null; echo nope >&2; exit 3"], "in")
            .await
            .unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("sh -c") && msg.contains("exit status: 3") && msg.contains("nope"),
            "{msg}"
        );
        assert!(run_blocking("/nonexistent-tool", &[]).is_err());
    }
}
