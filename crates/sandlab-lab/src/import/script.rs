//! A script file from the source to a task's `run` or `solve`.
//!
//! Sandlab runs commands with `sh -c`. A script whose `#!` line names another interpreter
//! (Killercoda's and Instruqt's are mostly `#!/bin/bash`) is fed to that interpreter as a
//! quoted here-document, its text unchanged, so bash-only syntax keeps working. Instruqt
//! checks report failure with its `fail-message` command, which Sandlab nodes do not
//! have: a script that uses it is run by bash with a function of that name defined first
//! (print the message to stderr, exit 1).

const FAIL_MESSAGE: &str = "fail-message() { echo \"$*\" >&2; exit 1; }\n";

/// The command that runs `script` the way its source platform would.
pub(crate) fn command(script: &str) -> String {
    let first = script.lines().next().unwrap_or("");
    let named = first
        .strip_prefix("#!")
        .map(str::trim)
        .filter(|i| !i.is_empty());
    let uses_fail = script.contains("fail-message");
    let interpreter = match named {
        Some(i) if is_sh(i) && !uses_fail => return script.to_owned(),
        Some(i) if !is_sh(i) => i,
        _ if uses_fail => "/bin/bash",
        _ => return script.to_owned(),
    };
    if !interpreter
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b" /._+-=".contains(&b))
    {
        return script.to_owned();
    }
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
    format!("{interpreter} <<'{delimiter}'\n{prelude}{script}{newline}{delimiter}\n")
}

fn is_sh(interpreter: &str) -> bool {
    matches!(
        interpreter,
        "/bin/sh" | "/usr/bin/sh" | "/bin/dash" | "/usr/bin/env sh" | "sh"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_sh_scripts_stay_as_they_are() {
        assert_eq!(command("test -f /x\n"), "test -f /x\n");
        assert_eq!(command("#!/bin/sh\ntest -f /x"), "#!/bin/sh\ntest -f /x");
    }

    #[test]
    fn other_interpreters_get_the_script_on_stdin() {
        assert_eq!(
            command("#!/usr/bin/env bash\n[[ -f /x ]]"),
            "/usr/bin/env bash <<'SANDLAB_SCRIPT'\n#!/usr/bin/env bash\n[[ -f /x ]]\nSANDLAB_SCRIPT\n"
        );
        let tricky = "#!/bin/bash\ncat <<'SANDLAB_SCRIPT'\nSANDLAB_SCRIPT\n";
        assert!(command(tricky).ends_with("SANDLAB_SCRIPT\nSANDLAB_SCRIPT_\n"));
        // Odd interpreter lines are not put on a command line.
        assert_eq!(
            command("#!/bin/bash; rm -rf /\nx"),
            "#!/bin/bash; rm -rf /\nx"
        );
    }

    #[test]
    fn fail_message_is_defined() {
        let got = command("#!/bin/bash\ntest -f /x || fail-message \"no /x\"\n");
        assert!(
            got.starts_with("/bin/bash <<'SANDLAB_SCRIPT'\nfail-message() {"),
            "{got}"
        );
        assert!(command("test -f /x || fail-message no").starts_with("/bin/bash <<"));
    }
}
