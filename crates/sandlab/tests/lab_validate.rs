//! `sandlab lab validate`: every problem with file and line, exit 1; valid labs exit 0.

mod common;

use common::*;

fn write(dir: &std::path::Path, slug: &str, text: &str) {
    std::fs::create_dir_all(dir.join(slug)).unwrap();
    std::fs::write(dir.join(slug).join("index.md"), text).unwrap();
}

#[test]
fn problems_are_listed_with_file_and_line_and_exit_1() {
    let data = data_dir();
    let labs = tempfile::tempdir().unwrap();
    write(
        labs.path(),
        "good",
        "---\ntitle: Good\ntasks:\n  a:\n    run: 'true'\n    solve: 'true'\n---\nText\n",
    );
    write(
        labs.path(),
        "bad",
        "---\ntitle: Bad\ncolour: red\ntasks:\n  a:\n    run: 'true'\n    needs: [b]\n  b:\n    run: 'true'\n    needs: [a]\nplayground:\n  nodes:\n    - name: n1\n      image: nosuchimage\n---\n",
    );
    let out = sandlab(&data, &["lab", "validate", labs.path().to_str().unwrap()]);
    assert_eq!(out.code(), 1, "{}", out.stderr_text());
    let err = out.stderr_text();
    let bad = labs.path().join("bad/index.md").display().to_string();
    for want in [
        format!("{bad}:3: unknown front matter key \"colour\""),
        format!("{bad}:5: tasks form a cycle"),
        format!("{bad}:14: image \"nosuchimage\" does not exist"),
    ] {
        assert!(err.contains(&want), "missing {want:?} in:\n{err}");
    }
    assert!(
        out.stdout_text().contains("1 labs valid, 3 problems"),
        "{}",
        out.stdout_text()
    );

    let out = sandlab(
        &data,
        &[
            "lab",
            "validate",
            labs.path().join("good").to_str().unwrap(),
        ],
    );
    assert_eq!(out.code(), 0, "{}", out.stderr_text());
    let out = sandlab(&data, &["lab", "validate", "/nonexistent-labs"]);
    assert_eq!(out.code(), 1);
    assert!(
        out.stderr_text().contains("/nonexistent-labs"),
        "{}",
        out.stderr_text()
    );
}

#[test]
fn lab_test_runs_init_then_fail_solve_pass_per_task() {
    let data = data_dir();
    let labs = tempfile::tempdir().unwrap();
    write(
        labs.path(),
        "demo",
        "---\ntitle: Demo\ntasks:\n  prepare:\n    init: true\n    run: mkdir -p /srv/www\n  write_page:\n    run: grep -q hello /srv/www/index.html\n    solve: echo hello > /srv/www/index.html\n  serve_page:\n    needs: [write_page]\n    run: curl -fsS localhost:8000 | grep -q hello\n    solve: cd /srv/www && nohup python3 -m http.server 8000 >/dev/null 2>&1 &\n---\nText\n",
    );
    let out = sandlab(&data, &["lab", "test", labs.path().to_str().unwrap()]);
    let text = out.stdout_text();
    assert_eq!(out.code(), 0, "{text}\n{}", out.stderr_text());
    assert!(text.contains("PASS demo"), "{text}");
    for task in ["write_page", "serve_page"] {
        let line = text
            .lines()
            .find(|l| l.trim_start().starts_with(task))
            .unwrap();
        assert!(
            line.contains("fails (ok)") && line.contains("passes (ok)"),
            "{line}"
        );
    }
    // A check that passes before its solve is a broken lab.
    write(
        labs.path(),
        "demo",
        "---\ntitle: Demo\ntasks:\n  trivial:\n    run: 'true'\n    solve: 'true'\n---\nText\n",
    );
    let out = sandlab(&data, &["lab", "test", labs.path().to_str().unwrap()]);
    assert_eq!(out.code(), 1);
    assert!(
        out.stdout_text().contains("PASSES ALREADY"),
        "{}",
        out.stdout_text()
    );
    // A failing solve says how it ended and what it printed, without debug logs.
    write(
        labs.path(),
        "demo",
        "---\ntitle: Demo\ntasks:\n  broken:\n    run: test -f /root/never\n    solve: echo trying; echo no such thing >&2; exit 3\n---\nText\n",
    );
    let out = sandlab(&data, &["lab", "test", labs.path().to_str().unwrap()]);
    let text = out.stdout_text();
    assert_eq!(out.code(), 1, "{text}");
    for expected in [
        "solve: exit 3",
        "stdout: trying",
        "stderr: no such thing",
        "check after solve: exit 1",
    ] {
        assert!(
            text.contains(expected),
            "{expected:?} missing from:\n{text}"
        );
    }
    assert!(
        records(&data)
            .iter()
            .all(|r| r["hostname"] != "node01" || r["owner_pid"].is_null()),
        "playground left behind"
    );
}

#[test]
fn lab_import_writes_a_valid_lab_and_lists_what_it_could_not_map() {
    let data = data_dir();
    let fixtures =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../sandlab-lab/tests/fixtures");
    for (from, dir) in [
        ("killercoda", "killercoda/basic"),
        ("instruqt", "instruqt/basic"),
    ] {
        let out_dir = tempfile::tempdir().unwrap();
        let dest = out_dir.path().join("imported");
        let out = sandlab(
            &data,
            &[
                "lab",
                "import",
                "--from",
                from,
                fixtures.join(dir).to_str().unwrap(),
                dest.to_str().unwrap(),
            ],
        );
        assert_eq!(
            out.code(),
            0,
            "{from}: {}{}",
            out.stdout_text(),
            out.stderr_text()
        );
        assert!(dest.join("IMPORT_NOTES.md").is_file());
        let out = sandlab(&data, &["lab", "validate", dest.to_str().unwrap()]);
        assert_eq!(out.code(), 0, "{from}: {}", out.stderr_text());
        // Importing twice into the same place is refused.
        let again = sandlab(
            &data,
            &[
                "lab",
                "import",
                "--from",
                from,
                fixtures.join(dir).to_str().unwrap(),
                dest.to_str().unwrap(),
            ],
        );
        assert_eq!(again.code(), 1);
        assert!(
            again.stderr_text().contains("not empty"),
            "{}",
            again.stderr_text()
        );
    }
}

/// Issue 13 item 7: a checked task without `solve` is valid but warned about.
#[test]
fn a_checked_task_without_solve_is_a_warning() {
    let data = data_dir();
    let labs = tempfile::tempdir().unwrap();
    write(
        labs.path(),
        "nosolve",
        "---\ntitle: No solve\ntasks:\n  check_it:\n    run: test -f /x\n---\nText\n",
    );
    let out = sandlab(&data, &["lab", "validate", labs.path().to_str().unwrap()]);
    assert_eq!(out.code(), 0, "{}", out.stderr_text());
    assert!(
        out.stdout_text()
            .contains("1 labs valid, 0 problems, 1 warnings"),
        "{}",
        out.stdout_text()
    );
    assert!(
        out.stderr_text().contains(
            "warning: nosolve/index.md:4: task \"check_it\" has no solve, so `lab test` cannot show that it can pass"
        ),
        "{}",
        out.stderr_text()
    );
}
