//! `sandlab lab import`: Killercoda scenarios and Instruqt tracks to native labs.

use std::fs;
use std::path::{Path, PathBuf};

use proptest::prelude::*;
use sandlab_lab::import::{import, Format, ImportError, Imported, MAX_FILE_BYTES, NOTES_FILE};
use sandlab_lab::{load_lab, Lab, Task};
use tempfile::TempDir;

fn fixture(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(path)
}

/// Imports `src` into a fresh `DEST` named `lab`; returns the temporary root too.
fn run(format: Format, src: &Path) -> (TempDir, PathBuf, Result<Imported, ImportError>) {
    let root = TempDir::new().unwrap();
    let dest = root.path().join("lab");
    let result = import(format, src, &dest);
    (root, dest, result)
}

fn imported(format: Format, src: &Path) -> (TempDir, PathBuf, Imported) {
    let (root, dest, result) = run(format, src);
    let imported = result.unwrap_or_else(|e| panic!("import failed: {e}"));
    (root, dest, imported)
}

fn task<'a>(lab: &'a Lab, id: &str) -> &'a Task {
    lab.task(id)
        .unwrap_or_else(|| panic!("no task {id:?} in {:?}", ids(lab)))
}

fn ids(lab: &Lab) -> Vec<&str> {
    lab.tasks.iter().map(|t| t.id.as_str()).collect()
}

fn needs(lab: &Lab, id: &str) -> Vec<String> {
    task(lab, id).needs.iter().map(|n| n.to_string()).collect()
}

fn assert_noted(notes: &[String], needle: &str) {
    assert!(
        notes.iter().any(|n| n.contains(needle)),
        "no note mentions {needle:?}: {notes:#?}"
    );
}

/// Writes `files` (path, content) under a new directory `src` in `root`.
fn source(root: &Path, files: &[(&str, &str)]) -> PathBuf {
    let src = root.join("src");
    for (path, content) in files {
        let path = src.join(path);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, content).unwrap();
    }
    src
}

/// Every path under `dir`, relative to it, sorted.
fn tree(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            out.push(p.strip_prefix(dir).unwrap().display().to_string());
            if p.is_dir() && !p.is_symlink() {
                stack.push(p);
            }
        }
    }
    out.sort();
    out
}

/// Imports a Killercoda source made of `files` and returns the error's message; asserts
/// that nothing was written: the temporary root holds the source and nothing else.
fn killercoda_error(files: &[(&str, &str)]) -> String {
    let root = TempDir::new().unwrap();
    let src = source(root.path(), files);
    let before = tree(root.path());
    let err = import(Format::Killercoda, &src, &root.path().join("lab")).unwrap_err();
    assert!(!matches!(err, ImportError::Invalid(_)), "{err}");
    assert_eq!(tree(root.path()), before, "the failed import wrote files");
    err.to_string()
}

const KC_INDEX: &str =
    r#"{"title": "T", "details": {"steps": [{"title": "One", "text": "STEP"}]}}"#;

fn kc_with_step_text(text: &str) -> String {
    KC_INDEX.replace("STEP", text)
}

#[test]
fn killercoda_lab_loads_and_keeps_every_text() {
    let (_root, dest, imp) = imported(Format::Killercoda, &fixture("killercoda/basic"));
    let lab = load_lab(&dest, None).unwrap_or_else(|p| panic!("{p:?}"));
    assert_eq!(lab, imp.lab);
    assert_eq!(lab.slug, "lab");
    assert_eq!(lab.title, "Files, folders and permissions");
    assert_eq!(
        lab.description,
        "Make a project folder, write a config file and lock it down."
    );
    for text in [
        "In this scenario you organise a small project",
        "## Make a workspace",
        "Every project deserves its own folder.",
        "## Write a config file",
        "For reference, the file should look like this:",
        "## Lock it down",
        "## Finish",
        "You made a folder, wrote a file and protected it.",
    ] {
        assert!(
            lab.body.contains(text),
            "{text:?} missing from:\n{}",
            lab.body
        );
    }
    // The intro has no title: its text comes first, without a heading.
    assert!(lab.body.starts_with("# Welcome\n"), "{}", lab.body);
    assert!(!lab.body.contains("{{"), "a marker is left:\n{}", lab.body);
}

#[test]
fn killercoda_checks_and_init_tasks() {
    let (_root, _dest, imp) = imported(Format::Killercoda, &fixture("killercoda/basic"));
    let lab = &imp.lab;
    let node = &lab.playground.nodes[0];
    assert_eq!(
        (lab.playground.nodes.len(), node.name.as_str()),
        (1, "ubuntu")
    );
    assert_eq!(node.image, "debian");

    let init: Vec<_> = lab.init_tasks().map(|t| t.id.as_str()).collect();
    // details.assets are placed first.
    assert_eq!(
        init,
        ["assets", "intro_setup", "step1_setup", "step3_setup"]
    );
    assert!(needs(lab, "assets").is_empty());
    assert_eq!(needs(lab, "intro_setup"), ["assets"]);
    assert_eq!(needs(lab, "step1_setup"), ["intro_setup"]);
    assert_eq!(needs(lab, "step3_setup"), ["step1_setup"]);
    assert!(task(lab, "step1_setup")
        .run
        .contains("echo \"step one prepared\""));
    // A `#!/bin/sh` script is kept exactly as written.
    assert_eq!(
        task(lab, "step3_setup").run,
        "#!/bin/sh\ntouch /opt/lab/step3\n"
    );

    let checks: Vec<_> = lab.checked_tasks().map(|t| t.id.as_str()).collect();
    assert_eq!(checks, ["step1_check", "step2_check", "step3_check"]);
    assert!(needs(lab, "step1_check").is_empty());
    assert_eq!(needs(lab, "step2_check"), ["step1_check"]);
    assert_eq!(needs(lab, "step3_check"), ["step2_check"]);
    for t in lab.checked_tasks() {
        assert_eq!(t.machine, "ubuntu");
        assert_eq!(t.solve, None);
    }
    // A bash script runs under bash from a file, its text unchanged.
    let step1 = &task(lab, "step1_check").run;
    assert!(
        step1.contains("<<'SANDLAB_SCRIPT'\n#!/bin/bash\n[[ -d /root/project ]]\nSANDLAB_SCRIPT\n"),
        "{step1}"
    );
    assert!(
        step1.ends_with("\n/bin/bash \"$f\" </dev/null\n"),
        "{step1}"
    );
    // Without #!, under bash too, as Killercoda runs it.
    let step2 = &task(lab, "step2_check").run;
    assert!(
        step2.contains(
            "<<'SANDLAB_SCRIPT'\ngrep -q 'port: 8080' /root/project/app.conf\nSANDLAB_SCRIPT\n\
             /bin/bash \"$f\" </dev/null\n"
        ),
        "{step2}"
    );
    let hint = task(lab, "step2_check").hint.as_deref().unwrap();
    assert!(hint.contains("echo 'port: 8080'"), "{hint}");

    let markers: Vec<_> = lab.task_refs.iter().map(|r| r.task.as_str()).collect();
    assert_eq!(markers, checks);
    // Each marker follows its step's text, before the next heading.
    let at = |s: &str| lab.body.find(s).unwrap();
    assert!(at("::task{id=step1_check}") < at("## Write a config file"));
    assert!(at("Every project deserves") < at("::task{id=step1_check}"));
}

#[test]
fn killercoda_markers_become_run_buttons() {
    let (_root, _dest, imp) = imported(Format::Killercoda, &fixture("killercoda/basic"));
    let lab = &imp.lab;
    let commands: Vec<_> = lab.exec_blocks.iter().map(|b| b.command.as_str()).collect();
    assert_eq!(
        commands,
        [
            "mkdir -p /root/project",
            "ls -ld /root/project",
            "cd /root/project\npwd",
            "cat > /root/project/app.conf <<'CONF'\nname: demo\nport: 8080\nCONF",
            "tail -f /root/project/app.conf",
            "chmod 600 /root/project/app.conf",
        ]
    );
    assert!(lab
        .exec_blocks
        .iter()
        .all(|b| b.language.as_deref() == Some("bash")));
    // `{{copy}}` leaves a plain code block and inline code, with no run button.
    assert!(lab.body.contains("```yaml\nname: demo\nport: 8080\n```\n"));
    assert!(lab
        .body
        .contains("inspect it with `ls -ld /root/project`, or"));
    assert_eq!(lab.html.matches("data-exec=").count(), 6);
}

#[test]
fn killercoda_notes_and_assets() {
    let (_root, dest, imp) = imported(Format::Killercoda, &fixture("killercoda/basic"));
    let index = imp.notes.of("index.json");
    assert_noted(
        index,
        "dropped: step 1: its foreground script \"step1/foreground.sh\"",
    );
    assert_noted(
        index,
        "backend.imageid \"ubuntu\": mapped to image \"debian\"",
    );
    assert_noted(index, "difficulty (\"beginner\"): not mapped");
    assert_noted(index, "interface: not mapped");
    assert_noted(imp.notes.of("step2/text.md"), "line 14: {{exec interrupt}}");

    let written = fs::read_to_string(dest.join(NOTES_FILE)).unwrap();
    assert!(written.contains("## `index.json`"), "{written}");
    assert!(
        written.contains("**Not everything is in the lab:** 1 note below starts with"),
        "{written}"
    );
    assert!(written.contains("foreground.sh"), "{written}");

    assert_eq!(imp.assets, 2);
    assert_eq!(
        fs::read_to_string(dest.join("assets/conf/app.conf")).unwrap(),
        "port = 8080\n"
    );
    assert_eq!(
        tree(&dest),
        [
            NOTES_FILE,
            "assets",
            "assets/conf",
            "assets/conf/app.conf",
            "assets/hello.txt",
            "index.md"
        ]
    );
}

#[test]
fn instruqt_lab_loads_and_keeps_every_text() {
    let (_root, dest, imp) = imported(Format::Instruqt, &fixture("instruqt/basic"));
    let lab = load_lab(&dest, None).unwrap_or_else(|p| panic!("{p:?}"));
    assert_eq!(lab, imp.lab);
    assert_eq!(lab.title, "Serving and fetching a web page");
    assert_eq!(
        lab.description,
        "Start a tiny web server on one host and fetch from another."
    );
    assert_eq!(lab.tags, ["http", "networking"]);
    assert_eq!(lab.playground.ttl.as_secs(), 3600);
    let nodes: Vec<_> = lab
        .playground
        .nodes
        .iter()
        .map(|n| (n.name.as_str(), n.image.as_str()))
        .collect();
    assert_eq!(nodes, [("server", "debian"), ("client", "debian")]);
    for text in [
        "Two machines share a network",
        "## Serve a page",
        "Put a page in place and serve it.",
        "While the machines start: a web server answers HTTP requests.",
        "echo '<h1>hello</h1>' > /srv/www/index.html",
        "## Fetch it from the client",
        "wget -O /root/page.html http://server:8000/",
    ] {
        assert!(
            lab.body.contains(text),
            "{text:?} missing from:\n{}",
            lab.body
        );
    }
    assert!(lab.body.find("## Serve a page") < lab.body.find("## Fetch it from the client"));
}

#[test]
fn instruqt_checks_solves_and_init_tasks() {
    let (_root, _dest, imp) = imported(Format::Instruqt, &fixture("instruqt/basic"));
    let lab = &imp.lab;
    let init: Vec<_> = lab.init_tasks().map(|t| t.id.as_str()).collect();
    assert_eq!(
        init,
        [
            "instruqt_bootstrap_server",
            "instruqt_bootstrap_client",
            "track_setup_server",
            "first_setup_server",
            "second_setup_client"
        ]
    );
    assert_eq!(
        needs(lab, "track_setup_server"),
        ["instruqt_bootstrap_client"]
    );
    assert_eq!(needs(lab, "first_setup_server"), ["track_setup_server"]);
    assert_eq!(needs(lab, "second_setup_client"), ["first_setup_server"]);
    assert_eq!(task(lab, "second_setup_client").machine, "client");

    let first = task(lab, "first_check_server");
    assert_eq!(first.machine, "server");
    assert!(first.needs.is_empty());
    assert!(first.run.contains("grep -q hello /srv/www/index.html"));
    // Instruqt's fail-message exists for the script.
    assert!(first.run.contains("fail-message() {"), "{}", first.run);
    let solve = first.solve.as_deref().unwrap();
    assert!(
        solve.contains("echo '<h1>hello</h1>' > /srv/www/index.html"),
        "{solve}"
    );

    let second = task(lab, "second_check_client");
    assert_eq!(second.machine, "client");
    assert_eq!(needs(lab, "second_check_client"), ["first_check_server"]);
    assert_eq!(second.run, "#!/bin/sh\ngrep -q hello /root/page.html\n");
    assert_eq!(
        second.solve.as_deref(),
        Some("#!/bin/sh\nwget -qO /root/page.html http://server:8000/\n")
    );
    let markers: Vec<_> = lab.task_refs.iter().map(|r| r.task.as_str()).collect();
    assert_eq!(markers, ["first_check_server", "second_check_client"]);
    assert!(lab.exec_blocks.is_empty());
}

#[test]
fn instruqt_notes() {
    let (_root, dest, imp) = imported(Format::Instruqt, &fixture("instruqt/basic"));
    let notes = &imp.notes;
    assert_noted(
        notes.of("01-first/cleanup-server"),
        "dropped: Sandlab runs no script when a learner leaves a step",
    );
    assert_noted(notes.of("02-second/cleanup-client"), "dropped: ");
    let first = notes.of("01-first/assignment.md");
    assert!(
        !first.iter().any(|n| n.contains("tab")),
        "the tabs are mapped: {first:#?}"
    );
    assert_noted(first, "difficulty, timelimit");
    assert_noted(first, "video note");
    let config = notes.of("config.yml");
    assert_noted(
        config,
        "image \"ubuntu-2204-lts\" mapped to \"debian\" on node \"server\"",
    );
    assert_noted(
        config,
        "image \"alpine:3.19\" mapped to \"debian\" on node \"client\"",
    );
    assert_noted(notes.of("track.yml"), "owner, developers, idle_timeout");
    let written = fs::read_to_string(dest.join(NOTES_FILE)).unwrap();
    assert!(
        written.contains("## `01-first/cleanup-server`"),
        "{written}"
    );
}

#[test]
fn step_text_outside_the_source_is_refused() {
    for (name, why) in [
        ("../../etc/passwd", "leads outside the source directory"),
        ("/etc/passwd", "is an absolute path"),
        (
            "step1/../../outside.md",
            "leads outside the source directory",
        ),
        ("missing.md", "does not exist"),
        ("step1", "is not a regular file"),
    ] {
        let index = kc_with_step_text(name);
        let msg = killercoda_error(&[("index.json", &index), ("step1/text.md", "x")]);
        assert!(msg.contains("/src/index.json: step 1's text"), "{msg}");
        assert!(msg.contains(why), "{name}: {msg}");
    }
}

#[test]
fn symlinks_out_of_the_source_are_refused() {
    let root = TempDir::new().unwrap();
    fs::write(root.path().join("secret.md"), "secret").unwrap();
    let src = source(
        root.path(),
        &[("index.json", &kc_with_step_text("link.md"))],
    );
    std::os::unix::fs::symlink(root.path().join("secret.md"), src.join("link.md")).unwrap();
    let err = import(Format::Killercoda, &src, &root.path().join("lab")).unwrap_err();
    assert!(
        err.to_string()
            .contains("leads outside the source directory through a symbolic link"),
        "{err}"
    );
    assert!(!root.path().join("lab").exists());
}

#[test]
fn asset_symlinks_are_not_followed() {
    let root = TempDir::new().unwrap();
    fs::write(root.path().join("secret"), "secret").unwrap();
    let src = source(
        root.path(),
        &[("index.json", r#"{"title": "T"}"#), ("assets/ok.txt", "ok")],
    );
    std::os::unix::fs::symlink(root.path().join("secret"), src.join("assets/leak")).unwrap();
    std::os::unix::fs::symlink(root.path(), src.join("assets/up")).unwrap();
    let dest = root.path().join("lab");
    let imp = import(Format::Killercoda, &src, &dest).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(imp.assets, 1);
    assert_eq!(tree(&dest.join("assets")), ["ok.txt"]);
    assert_noted(imp.notes.of("assets/leak"), "not copied");
    assert_noted(imp.notes.of("assets/up"), "not copied");
}

#[test]
fn instruqt_symlinks_out_of_the_track_are_refused() {
    let root = TempDir::new().unwrap();
    fs::write(root.path().join("secret.md"), "secret").unwrap();
    let src = source(
        root.path(),
        &[(
            "track.yml",
            "title: T
",
        )],
    );
    fs::create_dir(src.join("01-x")).unwrap();
    let link = src.join("01-x/assignment.md");
    std::os::unix::fs::symlink(root.path().join("secret.md"), link).unwrap();
    let err = import(Format::Instruqt, &src, &root.path().join("lab")).unwrap_err();
    assert!(err.to_string().contains("through a symbolic link"), "{err}");
    assert!(!root.path().join("lab").exists());
}

#[test]
fn oversized_files_are_refused() {
    let big = "a".repeat(MAX_FILE_BYTES as usize + 1);
    let msg = killercoda_error(&[
        ("index.json", &kc_with_step_text("big.md")),
        ("big.md", &big),
    ]);
    assert!(
        msg.ends_with("/src/big.md: is larger than 1 MiB, the most an imported file may be"),
        "{msg}"
    );
}

#[test]
fn invalid_json_names_file_and_line() {
    let msg = killercoda_error(&[(
        "index.json",
        "{\n  \"title\": \"x\",\n  \"details\": [,]\n}\n",
    )]);
    assert!(
        msg.contains("/src/index.json: not valid JSON at line 3: "),
        "{msg}"
    );
    let msg = killercoda_error(&[(
        "index.json",
        "{\n  \"title\": \"x\",\n  \"details\": {\"steps\": 5}\n}",
    )]);
    assert!(
        msg.contains("/src/index.json: unexpected value at line 3: "),
        "{msg}"
    );
}

#[test]
fn missing_index_json_is_explained() {
    let msg = killercoda_error(&[("intro.md", "hi")]);
    assert!(
        msg.ends_with(
            "/src/index.json: not found; a Killercoda scenario directory holds index.json"
        ),
        "{msg}"
    );
    let msg = killercoda_error(&[("structure.json", "{}")]);
    assert!(
        msg.contains("import each scenario directory on its own"),
        "{msg}"
    );
}

#[test]
fn too_many_steps_are_refused() {
    let steps = vec![r#"{"text": "s.md"}"#; 201].join(",");
    let index = format!(r#"{{"title": "T", "details": {{"steps": [{steps}]}}}}"#);
    let msg = killercoda_error(&[("index.json", &index), ("s.md", "x")]);
    assert!(
        msg.contains("has 201 steps, more than the 200 an import takes"),
        "{msg}"
    );
}

#[test]
fn dest_must_be_new_or_empty_with_a_slug_name() {
    let root = TempDir::new().unwrap();
    let src = fixture("killercoda/basic");
    let dest = root.path().join("lab");
    fs::create_dir(&dest).unwrap();
    fs::write(dest.join("keep.txt"), "mine").unwrap();
    let err = import(Format::Killercoda, &src, &dest).unwrap_err();
    assert!(
        err.to_string()
            .ends_with("/lab: is not empty; import into a new or empty directory"),
        "{err}"
    );
    assert_eq!(tree(&dest), ["keep.txt"]);

    let err = import(Format::Killercoda, &src, &root.path().join("My Lab")).unwrap_err();
    assert!(
        err.to_string()
            .contains("\"My Lab\" is not a valid lab slug"),
        "{err}"
    );

    // An empty directory is fine.
    let empty = root.path().join("empty");
    fs::create_dir(&empty).unwrap();
    import(Format::Killercoda, &src, &empty).unwrap();

    // Missing parents are made (issue 13 item 10: "cannot be written: No such file or directory").
    let nested = root.path().join("labs/imported/basic");
    import(Format::Killercoda, &src, &nested).unwrap();
    assert!(nested.join("index.md").is_file());
}

#[test]
fn hostile_text_still_makes_a_valid_lab() {
    let root = TempDir::new().unwrap();
    let index = r#"{
        "title": "  Quotes \" and: colons # and\nnewlines  ",
        "details": {"steps": [
            {"title": "A\nB", "text": "a.md", "verify": "a.sh"},
            {"title": "::task{id=x}", "text": "b.md", "verify": "b.sh"}
        ]}
    }"#;
    let script = "  leading\n---\n...\n\n\"quoted\": 'x' # y\n\n\n";
    let src = source(
        root.path(),
        &[
            ("index.json", index),
            (
                "a.md",
                "::task{id=a}\n```bash {exec}\n```\n```\nnever closed {{exec}}",
            ),
            ("a.sh", script),
            ("b.md", "`true`{{exec}}"),
            ("b.sh", "true"),
        ],
    );
    let dest = root.path().join("lab");
    let imp = import(Format::Killercoda, &src, &dest).unwrap_or_else(|e| panic!("{e}"));
    let lab = imp.lab;
    assert_eq!(lab.title, "Quotes \" and: colons # and newlines");
    // Killercoda runs scripts without #! under bash: the text is kept, in a here-document.
    let run = &task(&lab, "step1_check").run;
    assert!(
        run.contains(&format!("<<'SANDLAB_SCRIPT'\n{script}SANDLAB_SCRIPT\n")),
        "{run}"
    );
    assert!(lab.body.contains("## A B\n"));
    assert!(lab.body.contains("\u{200b}::task{id=a}"));
    assert_eq!(lab.task_refs.len(), 2);
    assert_eq!(lab.exec_blocks.len(), 1, "{}", lab.body);
    assert_noted(imp.notes.of("a.md"), "never closed");
}

#[test]
fn instruqt_errors_name_the_file() {
    let root = TempDir::new().unwrap();
    let src = source(
        root.path(),
        &[("track.yml", "title: [unclosed\nteaser: x\n")],
    );
    let err = import(Format::Instruqt, &src, &root.path().join("lab")).unwrap_err();
    assert!(
        err.to_string()
            .contains("/src/track.yml: not valid YAML at line "),
        "{err}"
    );

    let src = root.path().join("empty");
    fs::create_dir(&src).unwrap();
    let err = import(Format::Instruqt, &src, &root.path().join("lab")).unwrap_err();
    assert!(
        err.to_string()
            .ends_with("/empty/track.yml: not found; an Instruqt track directory holds track.yml"),
        "{err}"
    );
    assert!(!root.path().join("lab").exists());
}

#[test]
fn instruqt_without_config_uses_the_script_hosts() {
    let root = TempDir::new().unwrap();
    let src = source(
        root.path(),
        &[
            ("track.yml", "title: T\n"),
            ("01-only/assignment.md", "No front matter here.\n"),
            ("01-only/check-Web_1", "true\n"),
            ("01-only/notes.txt", "stray\n"),
        ],
    );
    let imp =
        import(Format::Instruqt, &src, &root.path().join("lab")).unwrap_or_else(|e| panic!("{e}"));
    let lab = imp.lab;
    assert_eq!(lab.playground.nodes[0].name, "web-1");
    assert_eq!(ids(&lab), ["instruqt_bootstrap", "only_check"]);
    assert_eq!(task(&lab, "only_check").machine, "web-1");
    assert!(
        lab.body.contains("## only\n\nNo front matter here."),
        "{}",
        lab.body
    );
    assert_noted(imp.notes.of("01-only/notes.txt"), "not mapped");
    assert_noted(imp.notes.of("track.yml"), "there is no config.yml");
}

/// Pieces that stress the converter: fences, markers, HTML openers, quotes.
fn fragments() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just("```"),
        Just("~~~~"),
        Just("```{{exec}}"),
        Just("`ls`{{exec}}"),
        Just("`cat`{{copy}}"),
        Just("{{exec interrupt}}"),
        Just("{exec}"),
        Just("::task{id=a}"),
        Just("<!--"),
        Just("<pre>"),
        Just("> "),
        Just("- "),
        Just("2. ```bash"),
        Just("   ```{{exec}}"),
        Just("`docker run \\\n  nginx`{{execute}}"),
        Just("#!/bin/bash"),
        Just("SANDLAB_SCRIPT"),
        Just("---"),
        Just("\"'\\: #"),
        Just("\u{0}\r\u{85}é"),
        Just("`"),
        Just(" "),
        Just("\n"),
        Just("\n\n"),
        Just("text"),
        Just("![i](x.png)"),
        Just("](assets/a.png)"),
        Just("[r]: y.png"),
        Just("[r]"),
        Just("<img src=a>"),
        Just("{{TRAFFIC_HOST1_80}}"),
        Just("{{TRAFFIC_SELECTOR}}"),
        Just("[t]("),
        Just(")"),
        Just("port:7"),
    ];
    prop::collection::vec(piece, 0..40).prop_map(|p| p.concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    /// Whatever the texts and scripts, the importer either makes a lab that validates or
    /// refuses the input with a message; its own output never fails validation.
    #[test]
    fn any_source_makes_a_valid_lab_or_a_clear_error(
        title in fragments(),
        text in fragments(),
        script in fragments(),
    ) {
        let root = TempDir::new().unwrap();
        let index = serde_json::json!({
            "title": title,
            "details": {"steps": [
                {"title": title, "text": "a.md", "verify": "a.sh", "background": "a.sh"},
                {"text": "a.md", "verify": "a.sh"}
            ]}
        });
        let src = source(
            root.path(),
            &[("index.json", &index.to_string()), ("a.md", &text), ("a.sh", &script)],
        );
        match import(Format::Killercoda, &src, &root.path().join("lab")) {
            Ok(imp) => {
                // A script of comments and blank lines checks nothing and is dropped.
                let runs = script
                    .lines()
                    .map(str::trim)
                    .any(|l| !l.is_empty() && !l.starts_with('#'));
                prop_assert_eq!(imp.lab.checked_tasks().count(), if runs { 2 } else { 0 });
            }
            Err(ImportError::Invalid(problems)) => {
                prop_assert!(false, "invalid output: {problems:?}");
            }
            Err(e) => prop_assert!(e.to_string().contains("/src/"), "{e}"),
        }
    }
}

/// Issue 13 item 10: imported machines are online, as on Killercoda and Instruqt.
#[test]
fn imported_nodes_have_egress() {
    for (format, src) in [
        (Format::Killercoda, fixture("killercoda/basic")),
        (Format::Instruqt, fixture("instruqt/basic")),
    ] {
        let (_root, _dest, imported) = imported(format, &src);
        for node in &imported.lab.playground.nodes {
            assert_eq!(
                node.limits.network,
                sandlab_core::NetworkMode::Egress,
                "{}",
                node.name
            );
        }
    }
}

/// Issue 17: Killercoda's kubeadm backends become cluster playgrounds of `kubernetes`
/// nodes named as Killercoda names them; other backends stay plain.
#[test]
fn killercoda_kubeadm_backends_become_cluster_playgrounds() {
    for (imageid, nodes, cluster) in [
        (
            "kubernetes-kubeadm-2nodes",
            &["controlplane", "node01"][..],
            true,
        ),
        ("kubernetes-kubeadm-1node", &["controlplane"][..], true),
        ("ubuntu", &["ubuntu"][..], false),
    ] {
        let root = TempDir::new().unwrap();
        let index = format!(
            r#"{{"title": "T", "backend": {{"imageid": "{imageid}"}},
            "details": {{"steps": [{{"title": "One", "text": "step1.md"}}]}}}}"#
        );
        let src = source(root.path(), &[("index.json", &index), ("step1.md", "Go.")]);
        let imp = import(Format::Killercoda, &src, &root.path().join("lab"))
            .unwrap_or_else(|e| panic!("{imageid}: {e}"));
        let pg = &imp.lab.playground;
        let names: Vec<&str> = pg.nodes.iter().map(|n| n.name.as_str()).collect();
        assert_eq!(names, nodes, "{imageid}");
        assert_eq!(
            pg.cluster,
            cluster.then_some(sandlab_lab::Cluster::Kubernetes),
            "{imageid}"
        );
        for n in &pg.nodes {
            let image = if cluster { "kubernetes" } else { "debian" };
            assert_eq!(n.image, image, "{imageid}");
            if cluster {
                assert_eq!(
                    n.limits.profile,
                    sandlab_core::Profile::Machine,
                    "{imageid}"
                );
            }
        }
    }
}

/// Issue 12: the fixture's challenge tabs become the lab's, in order, repeats dropped.
#[test]
fn instruqt_fixture_tabs() {
    let (_root, _dest, imp) = imported(Format::Instruqt, &fixture("instruqt/basic"));
    let tabs: Vec<_> = imp
        .lab
        .tabs
        .iter()
        .map(|t| {
            (
                t.kind.to_string(),
                t.node.clone().unwrap_or_default(),
                t.path.clone().unwrap_or_default(),
                t.title.clone(),
            )
        })
        .collect();
    let tab = |k: &str, n: &str, p: &str, t: &str| (k.into(), n.into(), p.into(), t.into());
    assert_eq!(
        tabs,
        [
            tab("terminal", "server", "", "Server shell"),
            tab("editor", "server", "/srv/www", "Editor"),
            tab("terminal", "client", "", "Client shell"),
        ]
    );
}

/// Issue 12: Killercoda's traffic placeholders open ports; host N is the N-th node.
#[test]
fn killercoda_traffic_placeholders_become_port_links() {
    let root = TempDir::new().unwrap();
    let index = r#"{"title": "T", "backend": {"imageid": "kubernetes-kubeadm-2nodes"},
        "details": {"steps": [{"title": "One", "text": "step1.md"}]}}"#;
    let text = "[Welcome to NGINX]({{TRAFFIC_HOST1_80}})\n\n\
        [Cat Pics]({{TRAFFIC_HOST2_8080}}/slideshow)\n\n\
        Go to {{TRAFFIC_HOST1_80}}/carbon.\n\n\
        Ready: [{{TRAFFIC_HOST1_3101}}/ready](http://localhost:3101/ready) soon.\n\n\
        [ACCESS PORTS]({{TRAFFIC_SELECTOR}}) or {{TRAFFIC_SELECTOR}}\n\n\
        Run `curl {{TRAFFIC_HOST1_80}}` and\n\n\
        ```\ncurl {{TRAFFIC_HOST2_80}}\n```\n\n\
        [Far]({{TRAFFIC_HOST3_80}}) and {{TRAFFIC_HOST1_99999}} and \
        <a href=\"{{TRAFFIC_HOST1_80}}\">raw</a>\n";
    let src = source(root.path(), &[("index.json", index), ("step1.md", text)]);
    let imp = import(Format::Killercoda, &src, &root.path().join("lab"))
        .unwrap_or_else(|e| panic!("{e}"));
    let body = &imp.lab.body;
    for expected in [
        "[Welcome to NGINX](port:controlplane:80)",
        "[Cat Pics](port:node01:8080/slideshow)",
        "Go to [Open port 80](port:controlplane:80/carbon).",
        "Ready: [port 3101/ready](port:controlplane:3101/ready) soon.",
        "[ACCESS PORTS](port:select) or [Open a port](port:select)",
        "Run `curl {{TRAFFIC_HOST1_80}}` and",
        "curl {{TRAFFIC_HOST2_80}}\n",
        "[Far]() and {{TRAFFIC_HOST1_99999}} and <a href=\"\">raw</a>",
    ] {
        assert!(body.contains(expected), "{expected:?} not in:\n{body}");
    }
    let html = &imp.lab.html;
    assert!(
        html.contains(
            "<a class=\"sandlab-port\" data-node=\"node01\" data-port=\"8080\" \
             data-path=\"/slideshow\" href=\"#\""
        ),
        "{html}"
    );
    assert_eq!(html.matches("data-select=\"\"").count(), 2, "{html}");
    let notes = imp.notes.of("step1.md");
    assert_noted(
        notes,
        "line 14: a {{TRAFFIC_...}} placeholder in code is kept as written",
    );
    assert_noted(
        notes,
        "{{TRAFFIC_HOST3_80}} is not mapped: it names host 3, but the playground has 2 node(s)",
    );
    assert_noted(
        notes,
        "{{TRAFFIC_HOST1_99999}} is not mapped: port 99999 is not from 1 to 65535",
    );
    assert_noted(notes, "in an HTML attribute is not mapped");
}

/// Issue 12: images the text references end up under assets/ and are served from there.
#[test]
fn killercoda_images_are_copied_to_assets() {
    let root = TempDir::new().unwrap();
    let index = r#"{"title": "T", "details": {"intro": {"text": "intro.md"},
        "steps": [{"title": "One", "text": "step1/text.md"}]}}"#;
    let src = source(
        root.path(),
        &[
            ("index.json", index),
            (
                "intro.md",
                "![logo](./assets/logo.png) <img src=\"assets/logo.png\" width=\"100\">\n",
            ),
            (
                "step1/text.md",
                "![diagram](diagram.png \"D\") and ![logo][l] and [next](../step2/text.md).\n\n\
                 ![gone](missing.png) ![out](../../../etc/passwd) ![web](https://x.org/a.png)\n\n\
                 [l]: ./assets/logo.png\n",
            ),
            ("step1/diagram.png", "png"),
            ("assets/logo.png", "png"),
        ],
    );
    let dest = root.path().join("lab");
    let imp = import(Format::Killercoda, &src, &dest).unwrap_or_else(|e| panic!("{e}"));
    let body = &imp.lab.body;
    for expected in [
        "![logo](assets/logo.png) <img src=\"assets/logo.png\" width=\"100\">",
        "![diagram](assets/step1/diagram.png \"D\") and ![logo][l] and [next]().",
        "![gone]() ![out]() ![web](https://x.org/a.png)",
        "[l]: assets/logo.png",
    ] {
        assert!(body.contains(expected), "{expected:?} not in:\n{body}");
    }
    assert_eq!(imp.assets, 2);
    assert_eq!(
        tree(&dest.join("assets")),
        ["logo.png", "step1", "step1/diagram.png"]
    );
    let html = &imp.lab.html;
    assert!(
        html.contains("<img src=\"/api/v1/labs/lab/assets/step1/diagram.png\" alt=\"diagram\""),
        "{html}"
    );
    assert_eq!(
        html.matches("/api/v1/labs/lab/assets/logo.png").count(),
        3,
        "{html}"
    );
    let notes = imp.notes.of("step1/text.md");
    assert_noted(notes, "line 1: the link to \"../step2/text.md\" is dropped");
    assert_noted(notes, "line 3: the reference \"missing.png\" is dropped");
    assert_noted(notes, "the reference \"../../../etc/passwd\" is dropped");
}

/// Issue 12: Instruqt's tabs become the lab's tabs; images in ../assets display.
#[test]
fn instruqt_tabs_images_and_run_blocks() {
    let root = TempDir::new().unwrap();
    let first = "---\nslug: one\ntitle: One\nnotes:\n- type: text\n  contents: |-\n    ![Scenario](../assets/scenario.png)\n\
        tabs:\n\
        - title: Shell\n  type: terminal\n  hostname: server\n  workdir: /root\n\
        - title: Site\n  type: service\n  hostname: server\n  port: 8000\n  path: app?x=1\n  new_window: true\n\
        - title: Code\n  type: code\n  hostname: client\n  path: /srv/www\n\
        - title: Docs\n  type: website\n  url: https://docs.example.com/guide\n\
        - title: Dashboard\n  type: website\n  url: https://server-8080-${_SANDBOX_ID}.env.play.instruqt.com/dash\n\
        - title: Other\n  type: website\n  url: https://server.${_SANDBOX_ID}.instruqt.io/\n\
        - title: Browser\n  type: browser\n  hostname: server\n\
        - title: Broken\n  type: service\n  hostname: server\n\
        ---\nSee ![arch](../assets/scenario.png).\n\n```bash,run\nls /srv\n```\n\n```bash,nocopy\necho plain\n```\n";
    let second = "---\nslug: two\ntitle: Two\ntabs:\n\
        - title: Shell\n  type: terminal\n  hostname: server\n\
        - title: Client\n  type: terminal\n  hostname: ghost\n---\nText.\n";
    let src = source(
        root.path(),
        &[
            ("track.yml", "title: T\n"),
            (
                "config.yml",
                "virtualmachines:\n- name: server\n  image: x\n- name: client\n  image: y\n",
            ),
            ("01-one/assignment.md", first),
            ("02-two/assignment.md", second),
            ("assets/scenario.png", "png"),
        ],
    );
    let imp =
        import(Format::Instruqt, &src, &root.path().join("lab")).unwrap_or_else(|e| panic!("{e}"));
    let lab = &imp.lab;
    let tabs: Vec<String> = lab
        .tabs
        .iter()
        .map(|t| {
            format!(
                "{} {} {} {} {} {}",
                t.kind,
                t.node.as_deref().unwrap_or("-"),
                t.port.map_or("-".into(), |p| p.to_string()),
                t.path.as_deref().unwrap_or("-"),
                t.url.as_deref().unwrap_or("-"),
                t.title
            )
        })
        .collect();
    assert_eq!(
        tabs,
        [
            "terminal server - - - Shell",
            "service server 8000 /app?x=1 - Site",
            "editor client - /srv/www - Code",
            "website - - - https://docs.example.com/guide Docs",
            "service server 8080 /dash - Dashboard",
            "terminal server - - - Client",
        ]
    );
    let notes = imp.notes.of("01-one/assignment.md");
    assert_noted(notes, "tab \"Shell\" (terminal): not mapped: workdir");
    assert_noted(notes, "tab \"Site\" (service): not mapped: new_window");
    assert_noted(notes, "tab \"Other\" (website) is not mapped: its url");
    assert_noted(
        notes,
        "tab \"Browser\" (browser) is not mapped: Sandlab has no browser tab",
    );
    assert_noted(
        notes,
        "tab \"Broken\" (service) is not mapped: it has no port",
    );
    assert_noted(
        imp.notes.of("02-two/assignment.md"),
        "its host \"ghost\" is not one of the track's; it opens on node \"server\"",
    );
    assert!(
        lab.body.contains("![Scenario](assets/scenario.png)")
            && lab.body.contains("See ![arch](assets/scenario.png)."),
        "{}",
        lab.body
    );
    assert!(lab.html.contains("/api/v1/labs/lab/assets/scenario.png"));
    let commands: Vec<_> = lab.exec_blocks.iter().map(|b| b.command.as_str()).collect();
    assert_eq!(commands, ["ls /srv"]);
    assert!(
        lab.body.contains("```bash\necho plain\n```"),
        "{}",
        lab.body
    );
}
