//! What Instruqt's hosts have and the tracks' scripts rely on, made on Sandlab's nodes by
//! an init task per node that runs before every other set-up:
//!
//! - the bootstrap marker `/opt/instruqt/bootstrap/host-bootstrap-completed`, made first
//!   (set-up scripts wait for it, up to minutes);
//! - `set-workdir DIR` (`/usr/local/bin`): terminals opened afterwards start in DIR.
//!   Sandlab's terminals are login shells, which read `/etc/profile.d/`; a terminal that is
//!   open already stays where it is;
//! - `agent variable set NAME VALUE` and `agent variable get NAME` (`/usr/local/bin/agent`):
//!   each variable is a file in `/opt/instruqt/variables/`, so a later script on the same
//!   node reads it. Instruqt's variables belong to the track; these stay on the node that
//!   sets them, are not put into the scripts' environment, and the text's
//!   `[[ Instruqt-Var ]]` is not filled in (noted).
//!
//! The commands are short `sh` scripts, written out by the init task.

use super::super::notes::Notes;
use super::TRACK;

/// Where Instruqt's host bootstrap leaves its marker.
pub(super) const MARKER: &str = "/opt/instruqt/bootstrap/host-bootstrap-completed";
const VARIABLES: &str = "/opt/instruqt/variables";
const WORKDIR: &str = "/opt/instruqt/workdir";
const DELIMITER: &str = "SANDLAB_SHIM";

/// The init task's command, every path under `root` ("" on a node; a directory in tests).
pub(super) fn bootstrap(root: &str) -> String {
    let at = |path: &str| quote(&format!("{root}{path}"));
    let file = |path: &str, body: String| {
        format!("cat >{} <<'{DELIMITER}'\n{body}{DELIMITER}\n", at(path))
    };
    let mut out = String::from(
        "# Instruqt's host set-up, which the track's scripts expect: the bootstrap marker,\n\
         # set-workdir and agent variable (see IMPORT_NOTES.md).\nset -e\n",
    );
    out.push_str(&format!(
        "mkdir -p {} {} {}\n",
        at("/opt/instruqt/bootstrap"),
        at("/usr/local/bin"),
        at("/etc/profile.d")
    ));
    out.push_str(&format!("touch {}\n", at(MARKER)));
    out.push_str(&file("/usr/local/bin/agent", agent(&at(VARIABLES))));
    out.push_str(&file(
        "/usr/local/bin/set-workdir",
        set_workdir(&at(WORKDIR)),
    ));
    out.push_str(&file(
        "/etc/profile.d/instruqt-workdir.sh",
        format!(
            "# Instruqt's set-workdir (made by sandlab lab import): login shells start there.\n\
             if [ -r {w} ]; then cd \"$(cat {w})\" 2>/dev/null || true; fi\n",
            w = at(WORKDIR)
        ),
    ));
    out.push_str(&format!(
        "chmod 755 {} {}\n",
        at("/usr/local/bin/agent"),
        at("/usr/local/bin/set-workdir")
    ));
    out
}

fn agent(variables: &str) -> String {
    format!(
        r#"#!/bin/sh
# Instruqt's agent command, as far as tracks' scripts use it (made by sandlab lab import):
#   agent variable set NAME [VALUE]    agent variable get NAME
# Each variable is a file in {variables}, on this node only.
vars={variables}
usage() {{ echo "usage: agent variable set NAME [VALUE] | agent variable get NAME" >&2; exit 2; }}
if [ "$1" != variable ]; then
  echo "agent: only 'agent variable set|get' is here (a shim made by sandlab lab import)" >&2
  exit 1
fi
case "$3" in ''|.*|*[!A-Za-z0-9_.-]*) usage ;; esac
case "$2" in
set)
  [ $# -le 4 ] || usage
  mkdir -p "$vars" && printf '%s' "${{4-}}" >"$vars/.$3.$$" && mv -f "$vars/.$3.$$" "$vars/$3" ;;
get)
  [ $# -eq 3 ] || usage
  if [ -f "$vars/$3" ]; then cat "$vars/$3"; echo; fi ;;
*) usage ;;
esac
"#
    )
}

fn set_workdir(workdir: &str) -> String {
    format!(
        r#"#!/bin/sh
# Instruqt's set-workdir DIR (made by sandlab lab import): terminals opened from now on
# start in DIR.
[ $# -eq 1 ] || {{ echo "usage: set-workdir DIR" >&2; exit 2; }}
printf '%s\n' "$1" >{workdir}
"#
    )
}

/// Notes what the shims do not do.
pub(super) fn note(notes: &mut Notes) {
    notes.add(
        TRACK,
        format!(
            "each node first gets an init task that makes Instruqt's bootstrap marker \
             ({MARKER}) and the commands set-workdir and agent variable (set, get); variables \
             stay on the node that sets them and are not put into the scripts' environment"
        ),
    );
}

/// `text` single-quoted for `sh`.
fn quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', "'\\''"))
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::process::{Command, Output, Stdio};

    use super::*;

    fn sh(script: &str, cwd: &Path) -> Output {
        Command::new("sh")
            .arg("-c")
            .arg(script)
            .current_dir(cwd)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }

    fn text(bytes: &[u8]) -> &str {
        std::str::from_utf8(bytes).unwrap()
    }

    /// Issue 13 item 10: after the init task, the marker exists and the shims work.
    #[test]
    fn the_bootstrap_makes_the_marker_and_working_shims() {
        let dir = tempfile::TempDir::new().unwrap();
        let root = dir.path().join("it's a root");
        let root_text = root.display().to_string();
        let script = bootstrap(&root_text);
        // The marker comes before anything else the task writes.
        assert!(script.find("touch").unwrap() < script.find("cat >").unwrap());
        let out = sh(&script, dir.path());
        assert!(out.status.success(), "{}\n{script}", text(&out.stderr));
        assert!(root.join(&MARKER[1..]).is_file());

        let agent = quote(&format!("{root_text}/usr/local/bin/agent"));
        let run = |cmd: &str| sh(&format!("{agent} {cmd}"), dir.path());
        assert!(run("variable set GREETING 'hello world'").status.success());
        let got = run("variable get GREETING");
        assert!(got.status.success());
        assert_eq!(text(&got.stdout), "hello world\n");
        // A later script (another process) reads it back; an unset one is empty.
        assert_eq!(text(&run("variable get MISSING").stdout), "");
        assert_eq!(run("variable set ../escape x").status.code(), Some(2));
        assert_eq!(run("variable get").status.code(), Some(2));
        assert_eq!(run("login").status.code(), Some(1));

        let work = dir.path().join("work dir");
        std::fs::create_dir(&work).unwrap();
        let set = quote(&format!("{root_text}/usr/local/bin/set-workdir"));
        let out = sh(
            &format!("{set} {}", quote(&work.display().to_string())),
            dir.path(),
        );
        assert!(out.status.success(), "{}", text(&out.stderr));
        let profile = quote(&format!("{root_text}/etc/profile.d/instruqt-workdir.sh"));
        let out = sh(&format!(". {profile}; pwd"), dir.path());
        assert_eq!(text(&out.stdout).trim_end(), work.display().to_string());
    }

    #[test]
    fn on_a_node_the_paths_are_plain() {
        let script = bootstrap("");
        assert!(script.contains("touch '/opt/instruqt/bootstrap/host-bootstrap-completed'\n"));
        assert!(script.contains("vars='/opt/instruqt/variables'\n"));
        assert!(script.contains("cat >'/usr/local/bin/set-workdir' <<'SANDLAB_SHIM'\n"));
    }
}
