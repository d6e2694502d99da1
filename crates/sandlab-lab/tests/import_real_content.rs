//! `sandlab lab import` on what real Killercoda and Instruqt content does (issue 13 item
//! 10): fences in list items, inline code over several lines, scripts that read stdin or
//! have no `#!` line, files placed into the machines, Instruqt's bootstrap marker and
//! agent commands, and notes that say what was dropped.

use std::fs;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use sandlab_lab::import::{import, Format, Imported, DROPPED, NOTES_FILE};
use sandlab_lab::{Lab, Task};
use tempfile::TempDir;

/// Writes `files` (path, content) under `root/src`; imports them as `format` into
/// `root/lab`.
fn imported(format: Format, files: &[(&str, &[u8])]) -> (TempDir, Imported) {
    let root = TempDir::new().unwrap();
    let src = root.path().join("src");
    for (path, content) in files {
        let path = src.join(path);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, content).unwrap();
    }
    let imp = import(format, &src, &root.path().join("lab")).unwrap_or_else(|e| panic!("{e}"));
    (root, imp)
}

fn dest(root: &TempDir) -> PathBuf {
    root.path().join("lab")
}

fn task<'a>(lab: &'a Lab, id: &str) -> &'a Task {
    let ids: Vec<_> = lab.tasks.iter().map(|t| t.id.as_str()).collect();
    lab.task(id)
        .unwrap_or_else(|| panic!("no task {id:?} in {ids:?}"))
}

fn init_ids(lab: &Lab) -> Vec<&str> {
    lab.init_tasks().map(|t| t.id.as_str()).collect()
}

fn commands(lab: &Lab) -> Vec<&str> {
    lab.exec_blocks.iter().map(|b| b.command.as_str()).collect()
}

fn assert_noted(notes: &[String], needle: &str) {
    assert!(
        notes.iter().any(|n| n.contains(needle)),
        "no note mentions {needle:?}: {notes:#?}"
    );
}

/// Runs `command` as Sandlab runs a task: `sh -c`, stdin from /dev/null.
fn run_task(command: &str) -> (bool, String) {
    let out = Command::new("sh")
        .arg("-c")
        .arg(command)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

fn kc_one_step(text: &str) -> String {
    serde_json::json!({
        "title": "T",
        "details": {"steps": [{"title": "One", "text": "step1.md"}]}
    })
    .to_string()
    .replace("step1.md", text)
}

#[test]
fn killercoda_fences_in_list_items_become_run_buttons() {
    let text = "1. Make a folder:\n\n   ```\n   mkdir -p /root/x\n   ```{{exec}}\n\n\
        2. ```bash\n   ls /root/x\n   ```{{exec}}\n\
        3. `cat /etc/hostname`{{exec}}\n\
        4. ```\nsloppy | indented\n```{{exec}}\n\n\
        Then this stays text, and `pwd`{{exec}} is a button.\n\n\
        ```\necho last\n```{{exec}}\n";
    let index = kc_one_step("step1.md");
    let (_root, imp) = imported(
        Format::Killercoda,
        &[
            ("index.json", index.as_bytes()),
            ("step1.md", text.as_bytes()),
        ],
    );
    let lab = &imp.lab;
    assert_eq!(
        commands(lab),
        [
            "mkdir -p /root/x",
            "ls /root/x",
            "cat /etc/hostname",
            "sloppy | indented",
            "pwd",
            "echo last"
        ],
        "{}",
        lab.body
    );
    let body = &lab.body;
    for expected in [
        "2. ```bash {exec}\n   ls /root/x\n   ```\n",
        "3. ```bash {exec}\n   cat /etc/hostname\n   ```\n",
        "4. ```bash {exec}\n   sloppy | indented\n   ```\n",
    ] {
        assert!(body.contains(expected), "{expected:?} not in:\n{body}");
    }
    // The rest of the text is text, not one code block.
    assert!(
        lab.html
            .contains("<p>Then this stays text, and <code>pwd</code> is a button.</p>"),
        "{}",
        lab.html
    );
    assert_eq!(lab.html.matches("<ol").count(), 1, "{}", lab.html);
}

#[test]
fn instruqt_run_fences_in_list_items_become_run_buttons() {
    let assignment = "---\nslug: one\ntitle: One\n---\n\
        1. Look around:\n   ```bash,run\n   ls /srv\n   ```\n2. Then read on.\n\nDone.\n";
    let (_root, imp) = imported(
        Format::Instruqt,
        &[
            ("track.yml", b"title: T\n"),
            ("01-one/assignment.md", assignment.as_bytes()),
        ],
    );
    assert_eq!(commands(&imp.lab), ["ls /srv"]);
    assert!(imp.lab.html.contains("<p>Done.</p>"), "{}", imp.lab.html);
}

#[test]
fn killercoda_inline_code_over_several_lines_becomes_a_run_block() {
    let text = "Start it:\n`docker run -d \\\n  --name web nginx`{{execute}}\n\n\
        - `kubectl get pods \\\n  -A`{{exec}}\n\n\
        In a sentence, `echo one\necho two`{{exec}} runs both.\n\nAfter.\n";
    let index = kc_one_step("step1.md");
    let (_root, imp) = imported(
        Format::Killercoda,
        &[
            ("index.json", index.as_bytes()),
            ("step1.md", text.as_bytes()),
        ],
    );
    let lab = &imp.lab;
    assert_eq!(
        commands(lab),
        [
            "docker run -d \\\n  --name web nginx",
            "kubectl get pods \\\n-A",
            "echo one\necho two"
        ],
        "{}",
        lab.body
    );
    assert!(!lab.body.contains("{{"), "{}", lab.body);
    assert!(lab.html.contains("<p>After.</p>"), "{}", lab.html);
}

/// A command that reads stdin does not swallow the rest of its script; a script without
/// `#!` runs under bash, as on Killercoda.
#[test]
fn killercoda_scripts_run_under_bash_with_stdin_from_dev_null() {
    let index = serde_json::json!({
        "title": "T",
        "details": {"steps": [{"text": "s.md", "verify": "verify.sh", "background": "bg.sh"}]}
    })
    .to_string();
    let verify = "cat\n[[ -n \"$BASH_VERSION\" ]] && echo \"bash, after cat\"\n";
    let (_root, imp) = imported(
        Format::Killercoda,
        &[
            ("index.json", index.as_bytes()),
            ("s.md", b"Text."),
            ("verify.sh", verify.as_bytes()),
            (
                "bg.sh",
                b"#!/bin/bash\nread -r line || echo \"nothing to read\"\nexit 4\n",
            ),
        ],
    );
    let (ok, out) = run_task(&task(&imp.lab, "step1_check").run);
    assert!(ok);
    assert_eq!(out, "bash, after cat\n");
    let (ok, out) = run_task(&task(&imp.lab, "step1_setup").run);
    assert!(!ok, "the script's exit status is the task's");
    assert_eq!(out, "nothing to read\n");
}

#[test]
fn instruqt_scripts_without_a_shebang_use_the_host_shell() {
    let config = "version: \"3\"\ncontainers:\n- name: web\n  image: x\n  shell: /bin/bash\n\
        - name: db\n  image: y\n  shell: /bin/sh\n";
    let check = b"[[ -n \"$BASH_VERSION\" ]] && echo bash\n";
    let (_root, imp) = imported(
        Format::Instruqt,
        &[
            ("track.yml", b"title: T\n"),
            ("config.yml", config.as_bytes()),
            ("01-one/assignment.md", b"Text.\n"),
            ("01-one/check-web", check),
            ("01-one/check-db", b"test -f /x\n"),
        ],
    );
    let web = &task(&imp.lab, "one_check_web").run;
    assert!(web.ends_with("\n/bin/bash \"$f\" </dev/null\n"), "{web}");
    assert_eq!(run_task(web), (true, "bash\n".to_owned()));
    assert_eq!(task(&imp.lab, "one_check_db").run, "test -f /x\n");
}

#[test]
fn instruqt_hosts_get_the_bootstrap_marker_and_agent_shims_first() {
    let setup = b"#!/bin/bash\nuntil [ -f /opt/instruqt/bootstrap/host-bootstrap-completed ]; do sleep 1; done\n\
        agent variable set PORT 8080\nset-workdir /root/app\n";
    let (_root, imp) = imported(
        Format::Instruqt,
        &[
            ("track.yml", b"title: T\n"),
            (
                "config.yml",
                b"virtualmachines:\n- name: server\n  image: x\n- name: client\n  image: y\n",
            ),
            ("track_scripts/setup-server", setup),
            ("01-one/assignment.md", b"Text.\n"),
            (
                "01-one/check-client",
                b"#!/bin/bash\n[ \"$(agent variable get PORT)\" = 8080 ]\n",
            ),
        ],
    );
    let lab = &imp.lab;
    assert_eq!(
        init_ids(lab),
        [
            "instruqt_bootstrap_server",
            "instruqt_bootstrap_client",
            "track_setup_server"
        ]
    );
    for (id, node) in [
        ("instruqt_bootstrap_server", "server"),
        ("instruqt_bootstrap_client", "client"),
    ] {
        let t = task(lab, id);
        assert_eq!(t.machine, node);
        let touch = t
            .run
            .find("touch '/opt/instruqt/bootstrap/host-bootstrap-completed'")
            .unwrap_or_else(|| panic!("{}", t.run));
        assert!(
            touch < t.run.find("cat >").unwrap(),
            "the marker comes first"
        );
        for shim in ["'/usr/local/bin/agent'", "'/usr/local/bin/set-workdir'"] {
            assert!(t.run.contains(shim), "{shim} not in {}", t.run);
        }
    }
    let needs: Vec<_> = task(lab, "track_setup_server")
        .needs
        .iter()
        .map(|n| n.to_string())
        .collect();
    assert_eq!(needs, ["instruqt_bootstrap_client"]);
    assert_noted(
        imp.notes.of("track.yml"),
        "variables stay on the node that sets them",
    );
}

#[test]
fn instruqt_challenge_setup_runs_at_start_and_the_notes_say_so() {
    let (_root, imp) = imported(
        Format::Instruqt,
        &[
            ("track.yml", b"title: T\n"),
            ("01-one/assignment.md", b"One.\n"),
            ("01-one/setup-node01", b"touch /one\n"),
            ("02-two/assignment.md", b"Two.\n"),
            ("02-two/setup-node01", b"touch /two\n"),
        ],
    );
    assert_eq!(
        init_ids(&imp.lab),
        ["instruqt_bootstrap", "one_setup", "two_setup"]
    );
    assert!(imp.notes.of("01-one/setup-node01").is_empty());
    assert_noted(
        imp.notes.of("02-two/setup-node01"),
        "runs once when the session starts, after the set-up before it, not when challenge 2 \
         opens",
    );
}

#[test]
fn killercoda_details_assets_are_placed_into_the_machines() {
    let index = serde_json::json!({
        "title": "T",
        "backend": {"imageid": "kubernetes-kubeadm-2nodes"},
        "details": {
            "intro": {"text": "intro.md", "background": "bg.sh"},
            "assets": {
                "host01": [
                    {"file": "wait.sh", "target": "/usr/local/bin/", "chmod": "+x"},
                    {"file": "big.bin", "target": "/root"},
                    {"file": "missing.txt", "target": "/root"},
                    {"file": "wait.sh", "target": "relative/dir"}
                ],
                "host02": [{"file": "k8s/*.yaml", "target": "~/manifests", "owner": "x"}],
                "client": [{"file": "wait.sh", "target": "/opt"}]
            }
        }
    })
    .to_string();
    let big = vec![b'x'; 65 << 10];
    let (root, imp) = imported(
        Format::Killercoda,
        &[
            ("index.json", index.as_bytes()),
            ("intro.md", b"Hi."),
            ("bg.sh", b"#!/bin/sh\n/usr/local/bin/wait.sh\n"),
            ("assets/wait.sh", b"#!/bin/sh\necho ready\n"),
            ("assets/big.bin", &big),
            ("assets/k8s/a.yaml", b"kind: Pod\n"),
            ("assets/k8s/b.yaml", b"kind: Service\n"),
            ("assets/k8s/c.txt", b"not yaml\n"),
        ],
    );
    let lab = &imp.lab;
    assert_eq!(
        init_ids(lab),
        ["assets_controlplane", "assets_node01", "intro_setup"]
    );
    let first = task(lab, "assets_controlplane");
    assert_eq!(first.machine, "controlplane");
    for expected in [
        "mkdir -p '/usr/local/bin'\nbase64 -d >'/usr/local/bin/wait.sh' <<'SANDLAB_FILE'\n\
         IyEvYmluL3NoCmVjaG8gcmVhZHkK\nSANDLAB_FILE\nchmod -- '+x' '/usr/local/bin/wait.sh'\n",
        // "client" is not a host of the playground: the first node.
        "base64 -d >'/opt/wait.sh'",
    ] {
        assert!(
            first.run.contains(expected),
            "{expected:?} not in:\n{}",
            first.run
        );
    }
    let second = task(lab, "assets_node01");
    assert_eq!(second.machine, "node01");
    assert!(second.run.contains("base64 -d >'/root/manifests/a.yaml'"));
    assert!(second.run.contains("base64 -d >'/root/manifests/b.yaml'"));
    assert!(!second.run.contains("c.txt"));
    for t in lab.init_tasks() {
        assert!(
            t.run.len() < 128 << 10,
            "{} does not fit one argument",
            t.id
        );
    }

    let index_notes = imp.notes.of("index.json");
    assert_noted(
        index_notes,
        "dropped: details.assets.host01: file \"assets/missing.txt\"",
    );
    assert_noted(
        index_notes,
        "its target \"relative/dir\" is not an absolute path",
    );
    assert_noted(
        index_notes,
        "host \"client\" is not one of the playground's",
    );
    assert_noted(index_notes, "details.assets.host02: not mapped: owner");
    assert_noted(
        imp.notes.of("assets/big.bin"),
        "dropped: not placed on node controlplane: larger than the 64 KiB",
    );
    let written = fs::read_to_string(dest(&root).join(NOTES_FILE)).unwrap();
    assert!(
        written.contains("**Not everything is in the lab:**"),
        "{written}"
    );
}

#[test]
fn comment_only_checks_and_solves_are_flagged() {
    let comments = b"#!/bin/bash\n# This script checks the challenge.\n\n# TODO\n";
    let (root, imp) = imported(
        Format::Instruqt,
        &[
            ("track.yml", b"title: T\n"),
            ("01-one/assignment.md", b"One.\n"),
            ("01-one/check-node01", comments),
            ("01-one/solve-node01", b"touch /x\n"),
            ("02-two/assignment.md", b"Two.\n"),
            ("02-two/check-node01", b"test -f /y\n"),
            ("02-two/solve-node01", comments),
            ("03-three/assignment.md", b"Three.\n"),
            ("03-three/check-node01", b""),
        ],
    );
    let checks: Vec<_> = imp.lab.checked_tasks().map(|t| t.id.as_str()).collect();
    assert_eq!(checks, ["two_check"]);
    assert_eq!(task(&imp.lab, "two_check").solve, None);
    let notes = &imp.notes;
    assert_noted(
        notes.of("01-one/check-node01"),
        "dropped: it holds only comments, so the challenge gets no check task",
    );
    assert_noted(
        notes.of("01-one/solve-node01"),
        "dropped: its check is dropped",
    );
    assert_noted(
        notes.of("02-two/solve-node01"),
        "dropped: it holds only comments, so its check gets no solve",
    );
    assert_noted(notes.of("03-three/check-node01"), "dropped: it is empty");
    assert_eq!(notes.dropped_count(), 4);
    let written = fs::read_to_string(dest(&root).join(NOTES_FILE)).unwrap();
    assert!(
        written.contains("**Not everything is in the lab:** 4 notes below start with"),
        "{written}"
    );
    assert!(!written.contains("Nothing was dropped"), "{written}");
}

#[test]
fn killercoda_comment_only_verify_is_flagged() {
    let index = serde_json::json!({
        "title": "T",
        "details": {"steps": [{"text": "s.md", "verify": "v.sh", "answer": "a.md"}]}
    })
    .to_string();
    let (_root, imp) = imported(
        Format::Killercoda,
        &[
            ("index.json", index.as_bytes()),
            ("s.md", b"Text."),
            ("v.sh", b"# nothing to check yet\n"),
            ("a.md", b"The answer."),
        ],
    );
    assert_eq!(imp.lab.checked_tasks().count(), 0);
    assert_noted(
        imp.notes.of("v.sh"),
        "dropped: it holds only comments, so step 1 gets no verify task",
    );
    assert_noted(imp.notes.of("index.json"), "dropped: step 1: its answer");
}

#[test]
fn the_notes_say_when_nothing_was_dropped() {
    let (root, imp) = imported(
        Format::Killercoda,
        &[
            ("index.json", kc_one_step("s.md").as_bytes()),
            ("s.md", b"`ls`{{exec}}"),
        ],
    );
    assert_eq!(imp.notes.dropped_count(), 0);
    let written = fs::read_to_string(dest(&root).join(NOTES_FILE)).unwrap();
    assert!(written.contains("Nothing was dropped"), "{written}");
    assert!(
        imp.notes
            .files()
            .all(|(_, n)| n.iter().all(|n| !n.starts_with(DROPPED))),
        "{:?}",
        imp.notes
    );
}
