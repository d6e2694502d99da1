//! `POST /api/v1/execute` in process: languages from data files, files, stdin, args, the
//! compile step, statuses, limits and validation. (Memory and CPU accounting need real
//! cgroups: `crates/sandlab/tests/serve.rs` covers them against the container driver.)

mod common;

use axum::http::StatusCode;
use common::*;
use serde_json::json;

async fn harness() -> (Harness, tempfile::TempDir) {
    let work = tempfile::tempdir().unwrap();
    let langs = tempfile::tempdir().unwrap();
    // A compiled language whose image the test driver accepts, using the host's gcc.
    std::fs::write(
        langs.path().join("hostc.toml"),
        "name = 'hostc'\nversion = '1'\nimage = 'debian'\nfile = 'main.c'\ncompile = ['gcc', '-o', 'main', '{file}']\nrun = ['./main', '{args}']\n",
    )
    .unwrap();
    let workdir = work.path().join("code").display().to_string();
    let dir = langs.path().to_owned();
    let h = Harness::with(move |c| {
        c.execute.workdir = workdir;
        c.languages = dir;
    })
    .await;
    drop(langs);
    (h, work)
}

#[tokio::test]
async fn python_runs_with_stdin_and_args() {
    let (h, _work) = harness().await;
    let body = json!({
        "language": "python", "version": "3",
        "files": [{"name": "main.py", "content": "import sys\nprint(input().upper(), sys.argv[1:])"}],
        "stdin": "hello\n", "args": ["a", "b c"],
    });
    let r = h.post("/api/v1/execute", &h.admin_token, body).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let v = r.json();
    assert_eq!(
        (v["language"].as_str(), v["version"].as_str()),
        (Some("python"), Some("3.11.2"))
    );
    assert!(v["compile"].is_null());
    assert_eq!(v["run"]["status"], "ok", "{v}");
    assert_eq!(v["run"]["stdout"], "HELLO ['a', 'b c']\n");
    assert_eq!(v["run"]["exit_code"], 0);
    assert!(h.all_removed().await, "the sandbox was not removed");
}

#[tokio::test]
async fn statuses() {
    let (h, _work) = harness().await;
    let run = |src: &str, limits: serde_json::Value| json!({"language": "bash", "files": [{"content": src}], "limits": limits});
    let cases = [
        (run("echo oops >&2; exit 3", json!({})), "runtime_error"),
        (run("sleep 5", json!({"wall_ms": 300})), "timeout"),
        (
            run(
                "head -c 100000 /dev/zero | tr '\\0' x",
                json!({"output_bytes": 1000}),
            ),
            "output_limit",
        ),
        (run("kill -9 $$", json!({})), "runtime_error"),
    ];
    for (body, want) in cases {
        let v = h
            .post("/api/v1/execute", &h.admin_token, body.clone())
            .await
            .json();
        assert_eq!(v["run"]["status"], want, "{body}: {v}");
    }
    let v = h
        .post(
            "/api/v1/execute",
            &h.admin_token,
            run("echo oops >&2; exit 3", json!({})),
        )
        .await
        .json();
    assert_eq!(
        (v["run"]["exit_code"].as_i64(), v["run"]["stderr"].as_str()),
        (Some(3), Some("oops\n"))
    );
    assert!(h.all_removed().await);
}

#[tokio::test]
async fn a_compile_step_runs_first_and_its_failure_stops_the_run() {
    let (h, _work) = harness().await;
    let ok = json!({"language": "hostc", "files": [{"content": "#include <stdio.h>\nint main(int c, char **v){printf(\"%d %s\\n\", c, v[1]);}"}], "args": ["x"]});
    let v = h.post("/api/v1/execute", &h.admin_token, ok).await.json();
    assert_eq!(v["compile"]["status"], "ok", "{v}");
    assert_eq!(v["run"]["stdout"], "2 x\n", "{v}");
    let bad = json!({"language": "hostc", "files": [{"content": "int main( {"}]});
    let v = h.post("/api/v1/execute", &h.admin_token, bad).await.json();
    assert_eq!(v["compile"]["status"], "runtime_error", "{v}");
    assert!(
        v["compile"]["stderr"].as_str().unwrap().contains("error"),
        "{v}"
    );
    assert_eq!(v["run"]["status"], "runtime_error");
    assert!(v["run"]["stderr"].as_str().unwrap().contains("Not run"));
}

#[tokio::test]
async fn bad_requests_are_400() {
    let (h, _work) = harness().await;
    let cases = [
        (
            json!({"language": "no-such-language", "files": [{"content": ""}]}),
            "unknown_language",
        ),
        (
            json!({"language": "cobol", "files": [{"content": ""}]}),
            "language_not_built",
        ),
        (
            json!({"language": "python", "version": "2", "files": [{"content": ""}]}),
            "unknown_language",
        ),
        (json!({"language": "python", "files": []}), "invalid"),
        (
            json!({"language": "python", "files": [{"name": "../evil.py", "content": ""}]}),
            "invalid",
        ),
        (
            json!({"language": "python", "files": [{"name": "a.py", "content": ""}, {"name": "a.py", "content": ""}]}),
            "invalid",
        ),
        (
            json!({"language": "python", "files": [{"content": ""}], "limits": {"wall_ms": 0}}),
            "invalid",
        ),
        (
            json!({"language": "python", "files": [{"content": ""}], "limits": {"memory": "100G"}}),
            "invalid",
        ),
        (
            json!({"language": "c", "files": [{"content": ""}]}),
            "language_not_built",
        ),
    ];
    for (body, code) in cases {
        let r = h
            .post("/api/v1/execute", &h.admin_token, body.clone())
            .await;
        assert_eq!(
            (r.status, r.error_code()),
            (StatusCode::BAD_REQUEST, code.to_owned()),
            "{body}"
        );
    }
    assert!(h.all_removed().await);
}
