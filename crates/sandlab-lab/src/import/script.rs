//! A script file from the source to a task's `run` or `solve`.
//!
//! Sandlab runs commands with `sh -c`, stdin from `/dev/null`. A script that `sh` should
//! run (`#!/bin/sh`, or no `#!` line where the source platform runs `sh`) is kept as it
//! is. Any other is run by its interpreter: the `#!` line's, else the one the source names
//! for scripts without one (Killercoda runs its scripts with bash; an Instruqt host's
//! `shell`), else the one its extension says (`.py`: python3). Its text, unchanged, is
//! written to a temporary file that the interpreter runs with stdin from `/dev/null`, so a
//! command that reads stdin cannot swallow the rest of the script (as it would if the
//! script itself came on stdin). The file is removed when the command ends, unless the
//! task's timeout kills it first.
//!
//! Instruqt checks report failure with its `fail-message` command, which Sandlab nodes do
//! not have: a script that uses it is run by bash with a function of that name defined
//! first (print the message to stderr, exit 1).

const FAIL_MESSAGE: &str = "fail-message() { echo \"$*\" >&2; exit 1; }\n";

/// The command that runs `script` (file `name`) the way its source platform would;
/// `default`: the interpreter for a script without a `#!` line (`None`: `sh`).
pub(crate) fn command(script: &str, name: &str, default: Option<&str>) -> String {
    let first = script.lines().next().unwrap_or("");
    let named = first
        .strip_prefix("#!")
        .map(str::trim)
        .filter(|i| !i.is_empty());
    let uses_fail = script.contains("fail-message");
    let interpreter = match named.or_else(|| by_extension(name)).or(default) {
        // Odd interpreter lines are not put on a command line.
        Some(i) if !is_safe(i) => return script.to_owned(),
        Some(i) if is_sh(i) && !uses_fail => return script.to_owned(),
        None if !uses_fail => return script.to_owned(),
        Some(i) if !is_sh(i) => i,
        _ => "/bin/bash",
    };
    let prelude = if uses_fail && interpreter.contains("bash") {
        FAIL_MESSAGE
    } else {
        ""
    };
    let mut delimiter = String::from("SANDLAB_SCRIPT");
    while script.lines().any(|l| l == delimiter) {
        delimiter.push('_');
    }
    let newline = if script.ends_with('\n') { "" } else { "\n" };
    format!(
        "# The script runs from a file under {interpreter}, stdin from /dev/null.\n\
         f=$(mktemp) || exit 1\n\
         trap 'rm -f \"$f\"' EXIT\n\
         cat >\"$f\" <<'{delimiter}'\n\
         {prelude}{script}{newline}{delimiter}\n\
         {interpreter} \"$f\" </dev/null\n"
    )
}

/// What a script file's name says about its interpreter.
fn by_extension(name: &str) -> Option<&'static str> {
    let file = name.rsplit('/').next().unwrap_or(name);
    match file.rsplit_once('.')?.1 {
        "py" => Some("python3"),
        "bash" => Some("/bin/bash"),
        _ => None,
    }
}

/// Whether `interpreter` (a `#!` line or a configured shell) may be put on a command line
/// as it is: a path or name and plain arguments.
pub(crate) fn is_safe(interpreter: &str) -> bool {
    !interpreter.is_empty()
        && !interpreter.starts_with('-')
        && interpreter
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b" /._+-=".contains(&b))
}

fn is_sh(interpreter: &str) -> bool {
    matches!(
        interpreter,
        "/bin/sh" | "/usr/bin/sh" | "/bin/dash" | "/usr/bin/env sh" | "sh"
    )
}

/// Why `script` does nothing when run: it is empty, or holds only comments. `None`
/// when it has a command.
pub(crate) fn does_nothing(script: &str) -> Option<&'static str> {
    if script.trim().is_empty() {
        return Some("it is empty");
    }
    script
        .lines()
        .map(str::trim)
        .all(|l| l.is_empty() || l.starts_with('#'))
        .then_some("it holds only comments")
}

#[cfg(test)]
mod tests {
    use std::process::{Command, Stdio};

    use super::*;

    /// Runs `command` as Sandlab runs a task: `sh -c`, stdin from /dev/null.
    fn run(command: &str) -> (bool, String, String) {
        let out = Command::new("sh")
            .arg("-c")
            .arg(command)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    #[test]
    fn plain_sh_scripts_stay_as_they_are() {
        assert_eq!(command("test -f /x\n", "check", None), "test -f /x\n");
        assert_eq!(
            command("#!/bin/sh\ntest -f /x", "check", Some("/bin/bash")),
            "#!/bin/sh\ntest -f /x"
        );
        assert_eq!(
            command("test -f /x\n", "check", Some("/bin/sh")),
            "test -f /x\n"
        );
    }

    #[test]
    fn other_interpreters_run_the_script_from_a_file() {
        let got = command("#!/usr/bin/env bash\n[[ -f /x ]]", "verify.sh", None);
        assert!(
            got.contains(
                "cat >\"$f\" <<'SANDLAB_SCRIPT'\n#!/usr/bin/env bash\n[[ -f /x ]]\n\
                 SANDLAB_SCRIPT\n/usr/bin/env bash \"$f\" </dev/null\n"
            ),
            "{got}"
        );
        let tricky = "#!/bin/bash\ncat <<'SANDLAB_SCRIPT'\nSANDLAB_SCRIPT\n";
        let got = command(tricky, "s", None);
        assert!(got.contains("SANDLAB_SCRIPT\nSANDLAB_SCRIPT_\n"), "{got}");
        assert_eq!(
            command("#!/bin/bash; rm -rf /\nx", "s", None),
            "#!/bin/bash; rm -rf /\nx"
        );
        assert_eq!(command("x", "s", Some("-c evil")), "x");
    }

    /// Issue 13 item 10: a command that reads stdin does not swallow the rest of its own
    /// script, and the script's exit status is the task's.
    #[test]
    fn scripts_run_with_stdin_from_dev_null() {
        let script =
            "#!/bin/bash\ncat\nread -r line || echo \"stdin is empty\"\necho after\nexit 3\n";
        let (ok, out, _) = run(&command(script, "setup-server", None));
        assert!(!ok);
        assert_eq!(out, "stdin is empty\nafter\n");
        let (ok, out, _) = run(&command("#!/bin/bash\necho fine\n", "s", None));
        assert!(ok);
        assert_eq!(out, "fine\n");
    }

    /// Issue 13 item 10: a script without `#!` runs under the interpreter the source names
    /// (bash-only syntax works), or the one its extension says.
    #[test]
    fn scripts_without_a_shebang_get_the_named_interpreter() {
        let bashism = "[[ -n \"${BASH_VERSION}\" ]] && echo bash\n";
        let got = command(bashism, "verify.sh", Some("/bin/bash"));
        assert!(got.ends_with("\n/bin/bash \"$f\" </dev/null\n"), "{got}");
        assert_eq!(run(&got).1, "bash\n");
        // With no interpreter named, the script stays as it is, for sh.
        assert_eq!(command(bashism, "setup-host", None), bashism);
        let got = command("print('py')\n", "steps/check.py", Some("/bin/bash"));
        assert!(got.ends_with("\npython3 \"$f\" </dev/null\n"), "{got}");
    }

    #[test]
    fn fail_message_is_defined() {
        let got = command(
            "#!/bin/bash\ntest -f /nonexistent || fail-message \"no /x\"\necho unreachable\n",
            "check-server",
            None,
        );
        assert!(
            got.contains("<<'SANDLAB_SCRIPT'\nfail-message() {"),
            "{got}"
        );
        let (ok, out, err) = run(&got);
        assert!(!ok);
        assert_eq!((out.as_str(), err.as_str()), ("", "no /x\n"));
        let got = command("test -f /x || fail-message no", "check-server", None);
        assert!(got.ends_with("/bin/bash \"$f\" </dev/null\n"), "{got}");
    }

    #[test]
    fn scripts_that_do_nothing() {
        assert_eq!(does_nothing("  \n\n"), Some("it is empty"));
        assert_eq!(
            does_nothing("#!/bin/bash\n# TODO: check\n  # more\n\n"),
            Some("it holds only comments")
        );
        assert_eq!(does_nothing("#!/bin/bash\nexit 0\n"), None);
    }
}
