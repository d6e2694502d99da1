//! SPEC section 7's example lab, and loading labs and catalogues from disk.

mod common;

use std::fs;
use std::time::Duration;

use common::{lab, line_of};
use sandlab_core::{ByteSize, NetworkMode};
use sandlab_lab::{load_catalogue, load_lab, LabKind, Problem};

/// SPEC section 7, verbatim except the `solve: ...` placeholder.
const SPEC_EXAMPLE: &str = r#"---
title: Your first web server
description: Install nginx and serve a page.
kind: tutorial            # tutorial | challenge
tags: [linux, nginx]
playground:
  ttl: 30m
  nodes:
    - name: node01        # hostname; also a DNS name for the other nodes
      image: debian
      memory: 512M
      cpus: 1
      network: egress
tasks:
  prepare:
    init: true            # runs once at start, before the learner sees the terminal
    run: mkdir -p /srv/www
  write_page:
    run: grep -q hello /srv/www/index.html     # the check: done when it exits 0
    hint: Use `echo hello > /srv/www/index.html`.
    solve: echo hello > /srv/www/index.html    # used by `sandlab lab test`
  serve_page:
    needs: [write_page]   # DAG: checked only after its needs are done
    machine: node01       # default: the first node
    user: root
    timeout: 10s          # per check run (default 10s)
    interval: 1s          # re-check period while pending (default 1s)
    run: curl -fsS localhost | grep -q hello
    solve: apt-get install -y nginx && cp /srv/www/index.html /var/www/html/ && nginx
---
Markdown text. A fenced block with `{exec}` after the language (```` ```bash {exec} ````)
renders a "run" button that types it into the terminal. `::task{id=write_page}` renders
that task's live status inline.
"#;

#[test]
fn spec_example_parses_with_its_values_and_defaults() {
    let lab = lab(SPEC_EXAMPLE);
    assert_eq!(lab.slug, "lab");
    assert_eq!(lab.title, "Your first web server");
    assert_eq!(lab.description, "Install nginx and serve a page.");
    assert_eq!(lab.kind, LabKind::Tutorial);
    assert_eq!(lab.tags, ["linux", "nginx"]);

    assert_eq!(lab.playground.ttl, Duration::from_secs(30 * 60));
    let [node] = &lab.playground.nodes[..] else {
        panic!("one node expected")
    };
    assert_eq!(
        (node.name.as_str(), node.image.as_str()),
        ("node01", "debian")
    );
    assert_eq!(node.limits.memory, ByteSize::mib(512));
    assert_eq!(node.limits.cpus, 1.0);
    assert_eq!(node.limits.network, NetworkMode::Egress);
    // Not written: sandlab-core's defaults.
    assert_eq!(node.limits.pids, 256);
    assert_eq!(node.limits.disk, ByteSize::gib(2));

    let ids: Vec<_> = lab.tasks.iter().map(|t| t.id.as_str()).collect();
    assert_eq!(ids, ["prepare", "write_page", "serve_page"]);

    let prepare = lab.task("prepare").unwrap();
    assert!(prepare.init);
    assert_eq!(prepare.run, "mkdir -p /srv/www");
    assert_eq!(prepare.line, line_of(SPEC_EXAMPLE, "prepare:"));

    let write = lab.task("write_page").unwrap();
    assert!(!write.init);
    assert_eq!(
        write.hint.as_deref(),
        Some("Use `echo hello > /srv/www/index.html`.")
    );
    assert_eq!(
        write.hint_html.as_deref(),
        Some("<p>Use <code>echo hello &gt; /srv/www/index.html</code>.</p>\n")
    );
    assert_eq!(
        write.solve.as_deref(),
        Some("echo hello > /srv/www/index.html")
    );
    // Defaults.
    assert_eq!(write.machine, "node01");
    assert_eq!(write.user, "root");
    assert_eq!(write.timeout, Duration::from_secs(10));
    assert_eq!(write.interval, Duration::from_secs(1));
    assert!(write.needs.is_empty());

    let serve = lab.task("serve_page").unwrap();
    assert_eq!(serve.needs, ["write_page"]);
    assert_eq!(serve.run, "curl -fsS localhost | grep -q hello");

    let init: Vec<_> = lab.init_tasks().map(|t| t.id.as_str()).collect();
    let checked: Vec<_> = lab.checked_tasks().map(|t| t.id.as_str()).collect();
    assert_eq!(
        (init, checked),
        (vec!["prepare"], vec!["write_page", "serve_page"])
    );

    // The body's `::task{...}` is inline code in a sentence, not a marker line.
    assert!(lab.task_refs.is_empty());
    assert!(lab.exec_blocks.is_empty());
    assert!(lab.body.starts_with("Markdown text."));
    assert!(lab.html.starts_with("<p>Markdown text."), "{}", lab.html);
}

#[test]
fn minimal_lab_gets_every_default() {
    let lab = lab("---\ntitle: Minimal\ntasks:\n  a:\n    run: \"true\"\n---\n");
    assert_eq!(lab.kind, LabKind::Tutorial);
    assert_eq!(lab.description, "");
    assert!(lab.tags.is_empty());
    assert_eq!(lab.playground.ttl, Duration::from_secs(3600));
    let node = &lab.playground.nodes[0];
    assert_eq!(
        (node.name.as_str(), node.image.as_str()),
        ("node01", "debian")
    );
    assert_eq!(node.limits.network, NetworkMode::None);
    assert_eq!(lab.tasks[0].run, "true");
    assert_eq!(lab.tasks[0].machine, "node01");
}

#[test]
fn serialises_for_the_api() {
    let lab = lab(SPEC_EXAMPLE);
    let json = serde_json::to_value(&lab).unwrap();
    assert_eq!(json["playground"]["ttl_ms"], 1_800_000);
    assert_eq!(json["tasks"][2]["id"], "serve_page");
    assert_eq!(json["tasks"][2]["needs"][0], "write_page");
    assert_eq!(json["tasks"][2]["timeout_ms"], 10_000);
    assert_eq!(json["kind"], "tutorial");
}

#[test]
fn load_lab_reads_the_directory() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("nginx");
    fs::create_dir(&dir).unwrap();
    fs::write(dir.join("index.md"), SPEC_EXAMPLE).unwrap();
    let lab = load_lab(&dir, None).unwrap();
    assert_eq!(lab.slug, "nginx");

    // Problems carry the real path.
    fs::write(dir.join("index.md"), "---\ntitle: T\nkind: quiz\n---\n").unwrap();
    let err = load_lab(&dir, None).unwrap_err();
    assert_eq!(err[0].file, dir.join("index.md"));
    assert_eq!(err[0].line, 3);

    // Not UTF-8, missing.
    fs::write(dir.join("index.md"), b"---\ntitle: \xff\n---\n").unwrap();
    let err = load_lab(&dir, None).unwrap_err();
    assert_eq!(
        err[0].message,
        "is not UTF-8 text (invalid byte at offset 11)"
    );
    let err = load_lab(&root.path().join("missing"), None).unwrap_err();
    assert_eq!(err[0].line, 0);
    assert!(err[0].message.starts_with("cannot be read: "), "{}", err[0]);
}

#[test]
fn load_lab_refuses_oversize_files_without_reading_them_whole() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("big");
    fs::create_dir(&dir).unwrap();
    let file = fs::File::create(dir.join("index.md")).unwrap();
    file.set_len(64 << 20).unwrap();
    let err = load_lab(&dir, None).unwrap_err();
    assert_eq!(err.len(), 1);
    assert_eq!(err[0].message, "is larger than 1 MiB");
}

#[test]
fn catalogue_keeps_good_labs_when_one_is_bad() {
    let root = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| {
        let dir = root.path().join(name);
        fs::create_dir(&dir).unwrap();
        fs::write(dir.join("index.md"), text).unwrap();
    };
    write("b-nginx", SPEC_EXAMPLE);
    write(
        "a-bad",
        "---\ntitle: Bad\ntasks:\n  x:\n    needs: [y]\n    run: z\n---\n",
    );
    write("c-basics", "---\ntitle: Basics\n---\n");
    write(".hidden", "not a lab");
    fs::create_dir(root.path().join("assets")).unwrap(); // no index.md: not a lab
    fs::write(root.path().join("README.md"), "not a lab").unwrap();

    let (labs, problems) = load_catalogue(root.path(), Some(&common::images));
    let slugs: Vec<_> = labs.iter().map(|l| l.slug.as_str()).collect();
    assert_eq!(slugs, ["b-nginx", "c-basics"]);
    assert_eq!(
        problems,
        [Problem {
            file: root.path().join("a-bad/index.md"),
            line: 5,
            column: Some(13),
            message: "task \"x\" needs \"y\", which is not a task".into(),
        }]
    );

    let (labs, problems) = load_catalogue(&root.path().join("nope"), None);
    assert!(labs.is_empty());
    assert_eq!(problems.len(), 1);
}
