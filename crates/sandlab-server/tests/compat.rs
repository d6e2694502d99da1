//! The Piston v2 and Judge0 CE routes in process: their shapes, errors and statuses,
//! authentication (tokens, `X-Auth-Token`, the anonymous switch), owners, the bounded
//! queue and a restart that runs unfinished submissions again. The real client libraries
//! run against a live server in `scripts/compat.sh`.

mod common;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use common::*;
use sandlab_store::Store;
use serde_json::{json, Value};

/// Languages the test driver runs on the host: bash (as Judge0 id 1046) and C with the
/// host's gcc (as 1050), both in the test image.
fn languages() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("hostbash.toml"),
        "name = 'hostbash'\nversion = '5.2.15'\naliases = ['hb']\nimage = 'debian'\nfile = 'main.sh'\nrun = ['bash', '{file}', '{args}']\njudge0 = [1046]\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("hostc.toml"),
        "name = 'hostc'\nversion = '12.2.0'\nimage = 'debian'\nfile = 'main.c'\ncompile = ['gcc', '-o', 'main', '{file}']\nrun = ['./main', '{args}']\njudge0 = [1050]\n",
    )
    .unwrap();
    dir
}

async fn harness(
    anonymous: bool,
    db: Option<&std::path::Path>,
) -> (Harness, tempfile::TempDir, tempfile::TempDir) {
    let work = tempfile::tempdir().unwrap();
    let langs = languages();
    let workdir = work.path().join("code").display().to_string();
    let dir = langs.path().to_owned();
    let h = Harness::with_db(db, move |c| {
        c.execute.workdir = workdir;
        c.languages = dir;
        c.execute.anonymous = anonymous;
        // The test driver runs every job in one host directory: one at a time.
        c.execute.concurrency = 1;
    })
    .await;
    (h, work, langs)
}

/// A request with a raw body and headers of our choosing.
async fn raw(
    h: &Harness,
    method: Method,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Resp {
    let mut b = Request::builder().method(method).uri(path);
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    h.send(b.body(Body::from(body.to_owned())).unwrap()).await
}

#[tokio::test]
async fn piston_execute_answers_in_pistons_shape() {
    let (h, _w, _l) = harness(true, None).await;
    let rt = raw(&h, Method::GET, "/api/v2/runtimes", &[], "").await;
    assert_eq!(rt.status, StatusCode::OK);
    let list = rt.json();
    assert!(
        list.as_array()
            .unwrap()
            .iter()
            .any(|r| r["language"] == "hostbash"
                && r["version"] == "5.2.15"
                && r["aliases"][0] == "hb"),
        "{list}"
    );
    // piston-client posts its JSON as text/plain: the body is read as JSON anyway.
    let body = json!({"language": "hb", "version": "5.x", "files": [{"content": "read x; echo \"out $x $1\"; echo err >&2; exit 3"}],
        "stdin": "in\n", "args": ["a"], "run_memory_limit": -1, "compile_memory_limit": -1});
    let r = raw(
        &h,
        Method::POST,
        "/api/v2/execute",
        &[("content-type", "text/plain;charset=UTF-8")],
        &body.to_string(),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let v = r.json();
    assert_eq!(v["language"], "hostbash");
    assert!(
        v.get("compile").is_none(),
        "no compile stage for an interpreted language: {v}"
    );
    assert_eq!(v["run"]["stdout"], "out in a\n");
    assert_eq!(v["run"]["stderr"], "err\n");
    assert_eq!(v["run"]["code"], 3);
    assert_eq!(v["run"]["status"], "RE");
    assert!(v["run"]["output"].as_str().unwrap().contains("out in a\n"));

    let c = json!({"language": "hostc", "version": "*", "files": [{"name": "main.c", "content": "int main( {"}]});
    let v = raw(&h, Method::POST, "/api/v2/execute", &[], &c.to_string())
        .await
        .json();
    assert_ne!(v["compile"]["code"], 0, "{v}");
    assert!(
        v["compile"]["stderr"].as_str().unwrap().contains("error"),
        "{v}"
    );
    assert!(v["run"]["code"].is_null(), "{v}");

    let t = json!({"language": "hostbash", "version": "*", "files": [{"content": "while :; do :; done"}], "run_timeout": 300});
    let v = raw(&h, Method::POST, "/api/v2/execute", &[], &t.to_string())
        .await
        .json();
    assert_eq!(v["run"]["status"], "TO", "{v}");
    assert_eq!(v["run"]["signal"], "SIGKILL", "{v}");
    assert!(h.all_removed().await, "a sandbox was left behind");
}

#[tokio::test]
async fn piston_errors_are_pistons() {
    let (h, _w, _l) = harness(true, None).await;
    for (body, want) in [
        (json!({"version": "*", "files": []}).to_string(), "language is required as a string"),
        (json!({"language": "cobolt", "version": "*", "files": [{"content": ""}]}).to_string(), "cobolt-* runtime is unknown"),
        (json!({"language": "hostbash", "version": "9", "files": [{"content": ""}]}).to_string(), "hostbash-9 runtime is unknown"),
        (json!({"language": "hostbash", "version": "*"}).to_string(), "files is required as an array"),
        ("{not json".to_owned(), "not a valid execute request"),
        (json!({"language": "hostbash", "version": "*", "files": [{"content": "", "encoding": "rot13"}]}).to_string(), "rot13"),
        (json!({"language": "hostbash", "version": "*", "files": [{"content": ""}], "run_timeout": 1_000_000}).to_string(), "run_timeout"),
    ] {
        let r = raw(&h, Method::POST, "/api/v2/execute", &[], &body).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{body}");
        let msg = r.json()["message"].as_str().unwrap().to_owned();
        assert!(msg.contains(want), "{body}: {msg}");
    }
}

#[tokio::test]
async fn without_the_anonymous_switch_a_token_is_needed() {
    let (h, _w, _l) = harness(false, None).await;
    let r = raw(&h, Method::GET, "/api/v2/runtimes", &[], "").await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(r.json()["message"].is_string());
    let r = raw(&h, Method::GET, "/languages", &[], "").await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(r.json()["error"].is_string());
    let r = raw(
        &h,
        Method::GET,
        "/languages",
        &[("x-auth-token", "wrong")],
        "",
    )
    .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    // Judge0's clients send their key as X-Auth-Token; a bearer works too.
    let r = raw(
        &h,
        Method::GET,
        "/languages",
        &[("x-auth-token", &h.admin_token)],
        "",
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let r = h.get("/api/v2/runtimes", &h.admin_token).await;
    assert_eq!(r.status, StatusCode::OK);
    // A wrong token is refused even with anonymous access on.
    let (h, _w, _l) = harness(true, None).await;
    let r = raw(
        &h,
        Method::GET,
        "/api/v2/runtimes",
        &[("authorization", "Bearer nope")],
        "",
    )
    .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
}

fn b64(s: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(s)
}

#[tokio::test]
async fn judge0_submissions_wait_poll_and_verdicts() {
    let (h, _w, _l) = harness(false, None).await;
    let tok = h.admin_token.clone();
    let auth = [
        ("x-auth-token", tok.as_str()),
        ("content-type", "application/json"),
    ];
    let langs = raw(&h, Method::GET, "/languages", &auth, "").await.json();
    assert!(
        langs
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l["id"] == 1046 && l["name"] == "hostbash (5.2.15)"),
        "{langs}"
    );
    let one = raw(&h, Method::GET, "/languages/1050", &auth, "")
        .await
        .json();
    assert_eq!(one["source_file"], "main.c");
    assert!(one["compile_cmd"].as_str().unwrap().starts_with("gcc"));
    let statuses = raw(&h, Method::GET, "/statuses", &auth, "").await.json();
    assert_eq!(statuses[2], json!({"id": 3, "description": "Accepted"}));
    let about = raw(&h, Method::GET, "/about", &[], "").await.json();
    assert_eq!(about["version"], "1.13.1");
    let config = raw(&h, Method::GET, "/config_info", &auth, "").await.json();
    assert_eq!(config["enable_wait_result"], true);
    assert_eq!(config["enable_callbacks"], false);

    let verdict = |src: &str, extra: Value| {
        let mut body = json!({"language_id": 1046, "source_code": b64(src), "stdin": b64("hi\n")});
        body.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        body.to_string()
    };
    let cases = [
        ("read x; echo $x", json!({"expected_output": b64("hi")}), 3),
        ("read x; echo no", json!({"expected_output": b64("hi")}), 4),
        ("exit 3", json!({}), 11),
        ("kill -SEGV $$", json!({}), 7),
        (
            "while :; do :; done",
            json!({"cpu_time_limit": 0.5, "cpu_extra_time": 0}),
            5,
        ),
    ];
    for (src, extra, want) in cases {
        let r = raw(
            &h,
            Method::POST,
            "/submissions?base64_encoded=true&wait=true&fields=*",
            &auth,
            &verdict(src, extra),
        )
        .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
        let v = r.json();
        assert_eq!(v["status"]["id"], want, "{src}: {v}");
        assert_eq!(v["status_id"], want);
        assert_eq!(v["language"]["id"], 1046);
        assert!(v["created_at"].as_str().unwrap().ends_with('Z'));
    }
    // Compile errors come back in compile_output.
    let body = json!({"language_id": 1050, "source_code": "int main( {"}).to_string();
    let v = raw(&h, Method::POST, "/submissions?wait=true", &auth, &body)
        .await
        .json();
    assert_eq!(v["status"]["id"], 6, "{v}");
    assert!(
        v["compile_output"].as_str().unwrap().contains("error"),
        "{v}"
    );

    // Without wait: a token now, the result by polling.
    let body = json!({"language_id": 1046, "source_code": "echo polled; echo e >&2", "redirect_stderr_to_stdout": true}).to_string();
    let r = raw(&h, Method::POST, "/submissions", &auth, &body).await;
    assert_eq!(r.status, StatusCode::CREATED);
    let token = r.json()["token"].as_str().unwrap().to_owned();
    let mut v = Value::Null;
    for _ in 0..200 {
        v = raw(
            &h,
            Method::GET,
            &format!("/submissions/{token}?fields=stdout,stderr,status_id,time,memory"),
            &auth,
            "",
        )
        .await
        .json();
        if v["status_id"].as_u64().unwrap() > 2 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(v["status_id"], 3, "{v}");
    assert_eq!(v["stdout"], "polled\ne\n");
    assert!(v["stderr"].is_null());
    assert!(v.get("token").is_none(), "only the fields asked for: {v}");

    // Another user sees nothing of it; bad fields and tokens are refused.
    let other = h.user("mallory", sandlab_store::Role::Learner).await;
    let r = raw(
        &h,
        Method::GET,
        &format!("/submissions/{token}"),
        &[("x-auth-token", &other)],
        "",
    )
    .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = raw(
        &h,
        Method::DELETE,
        &format!("/submissions/{token}"),
        &[("x-auth-token", &other)],
        "",
    )
    .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = raw(
        &h,
        Method::GET,
        &format!("/submissions/{token}?fields=stdout,password"),
        &auth,
        "",
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let r = raw(&h, Method::GET, "/submissions/..%2F..%2Fetc", &auth, "").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = raw(
        &h,
        Method::DELETE,
        &format!("/submissions/{token}"),
        &auth,
        "",
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    let r = raw(&h, Method::GET, &format!("/submissions/{token}"), &auth, "").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);

    // Field errors are 422, field by field.
    let r = raw(
        &h,
        Method::POST,
        "/submissions",
        &auth,
        &json!({"language_id": 424242, "cpu_time_limit": 999}).to_string(),
    )
    .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    let e = r.json();
    for key in ["language_id", "source_code", "cpu_time_limit"] {
        assert!(e[key].is_array(), "{key}: {e}");
    }
    assert!(h.all_removed().await, "a sandbox was left behind");
}

#[tokio::test]
async fn judge0_batches() {
    let (h, _w, _l) = harness(true, None).await;
    let body = json!({"submissions": [
        {"language_id": 1046, "source_code": "echo one"},
        {"language_id": 99999, "source_code": "echo two"},
        {"language_id": 1046, "source_code": "echo three"},
    ]});
    let r = raw(
        &h,
        Method::POST,
        "/submissions/batch",
        &[("content-type", "application/json")],
        &body.to_string(),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let answers = r.json();
    assert!(answers[0]["token"].is_string());
    assert!(answers[1]["language_id"].is_array(), "{answers}");
    let tokens = format!(
        "{},{},{}",
        answers[0]["token"].as_str().unwrap(),
        "00000000-0000-4000-8000-000000000000",
        answers[2]["token"].as_str().unwrap()
    );
    let mut v = Value::Null;
    for _ in 0..200 {
        v = raw(
            &h,
            Method::GET,
            &format!("/submissions/batch?tokens={tokens}&fields=stdout,status_id"),
            &[],
            "",
        )
        .await
        .json();
        let done = |i: usize| v["submissions"][i]["status_id"].as_u64().unwrap_or(0) > 2;
        if done(0) && done(2) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(v["submissions"][0]["stdout"], "one\n", "{v}");
    assert!(v["submissions"][1].is_null(), "{v}");
    assert_eq!(v["submissions"][2]["stdout"], "three\n", "{v}");
    let too_many =
        json!({"submissions": vec![json!({"language_id": 1046, "source_code": "true"}); 21]});
    let r = raw(
        &h,
        Method::POST,
        "/submissions/batch",
        &[],
        &too_many.to_string(),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn the_queue_is_bounded_per_caller_and_in_all() {
    let work = tempfile::tempdir().unwrap();
    let langs = languages();
    let workdir = work.path().join("code").display().to_string();
    let dir = langs.path().to_owned();
    let h = Harness::with(move |c| {
        c.execute.workdir = workdir;
        c.languages = dir;
        c.execute.concurrency = 1;
        c.execute.queue = 1;
        c.execute.per_user = 1;
    })
    .await;
    let slow = json!({"language_id": 1046, "source_code": "sleep 2"}).to_string();
    let auth = [("x-auth-token", h.admin_token.as_str())];
    let r = raw(&h, Method::POST, "/submissions", &auth, &slow).await;
    assert_eq!(r.status, StatusCode::CREATED);
    // The same caller again: over its own share.
    let r = raw(&h, Method::POST, "/submissions", &auth, &slow).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{}", r.text());
    // Another caller waits in the one queue place; a third finds the queue full.
    let u1 = h.user("u1", sandlab_store::Role::Learner).await;
    let u2 = h.user("u2", sandlab_store::Role::Learner).await;
    let r = raw(
        &h,
        Method::POST,
        "/submissions",
        &[("x-auth-token", &u1)],
        &slow,
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED);
    let r = raw(
        &h,
        Method::POST,
        "/submissions",
        &[("x-auth-token", &u2)],
        &slow,
    )
    .await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{}", r.text());
    assert!(r.json()["error"]
        .as_str()
        .unwrap()
        .contains("queue is full"));
    let p = json!({"language": "hostbash", "version": "*", "files": [{"content": "true"}]});
    let r = h
        .call(Method::POST, "/api/v2/execute", Some(&u2), Some(p))
        .await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{}", r.text());
    assert!(r.json()["message"].is_string());
}

#[tokio::test]
async fn a_restart_runs_unfinished_submissions_again() {
    let db_dir = tempfile::tempdir().unwrap();
    let db = db_dir.path().join("sandlab.db");
    let token = {
        let (h, _w, _l) = harness(true, Some(&db)).await;
        // Stored as queued, as a crash right after the acknowledgement leaves it.
        let stored = json!({"language_id": 1046, "source_code": b64("echo again"), "stdin": b64(""),
            "expected_output": null, "compiler_options": null, "command_line_arguments": null,
            "cpu_time_limit": 5.0, "cpu_extra_time": 1.0, "wall_time_limit": 10.0, "memory_limit": 262144,
            "stack_limit": 64000, "max_processes_and_or_threads": 64, "max_file_size": 1024,
            "redirect_stderr_to_stdout": false, "enable_network": false, "number_of_runs": 1});
        let token = "3b9e6c1a-5d2f-4a8e-9c7b-1f2e3d4c5b6a".to_owned();
        h.store
            .create_submissions(&[sandlab_store::NewSubmission {
                token: token.clone(),
                owner: "anonymous".into(),
                request: stored.to_string(),
                runner: None,
            }])
            .await
            .unwrap();
        token
    };
    let (h, _w, _l) = harness(true, Some(&db)).await;
    let mut v = Value::Null;
    for _ in 0..200 {
        v = raw(
            &h,
            Method::GET,
            &format!("/submissions/{token}?fields=stdout,status_id"),
            &[],
            "",
        )
        .await
        .json();
        if v["status_id"].as_u64().unwrap_or(0) > 2 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(v["status_id"], 3, "{v}");
    assert_eq!(v["stdout"], "again\n");
}

mod interactive {
    use std::time::Duration;

    use futures::{SinkExt, StreamExt};
    use serde_json::{json, Value};
    use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
    use tokio_tungstenite::tungstenite::Message;

    use super::*;

    type Ws = tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >;

    async fn serve(h: &Harness) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = h.app();
        tokio::spawn(async move { axum::serve(listener, app).await });
        format!("127.0.0.1:{}", addr.port())
    }

    async fn next_json(ws: &mut Ws) -> Value {
        loop {
            let msg = tokio::time::timeout(Duration::from_secs(15), ws.next())
                .await
                .expect("a message within 15 s");
            match msg {
                Some(Ok(Message::Text(t))) => return serde_json::from_str(t.as_str()).unwrap(),
                Some(Ok(Message::Close(f))) => {
                    return json!({"closed": f.map(|f| u16::from(f.code))})
                }
                Some(Ok(_)) => {}
                other => panic!("the socket ended: {other:?}"),
            }
        }
    }

    /// Reads until a message of `kind`; returns it and the stdout seen before it.
    async fn until(ws: &mut Ws, kind: &str) -> (Value, String) {
        let mut out = String::new();
        loop {
            let v = next_json(ws).await;
            if v["type"] == kind || (kind == "closed" && v.get("closed").is_some()) {
                return (v, out);
            }
            if v["type"] == "data" && v["stream"] == "stdout" {
                out.push_str(v["data"].as_str().unwrap());
            }
            assert!(v.get("closed").is_none(), "closed before {kind}: {v}");
        }
    }

    #[tokio::test]
    async fn output_streams_while_stdin_is_written() {
        let (h, _w, _l) = harness(true, None).await;
        let addr = serve(&h).await;
        let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/api/v2/connect"))
            .await
            .unwrap();
        let init = json!({"type": "init", "language": "hostbash", "version": "*",
            "files": [{"content": "while read -r line; do echo \"got $line\"; done; echo bye >&2"}]});
        ws.send(Message::Text(init.to_string().into()))
            .await
            .unwrap();
        let (rt, _) = until(&mut ws, "runtime").await;
        assert_eq!(rt["language"], "hostbash");
        let (stage, _) = until(&mut ws, "stage").await;
        assert_eq!(stage["stage"], "run");
        // Each answer comes back before the next line is sent: the program runs live.
        for word in ["one", "two"] {
            let line = json!({"type": "data", "stream": "stdin", "data": format!("{word}\n")});
            ws.send(Message::Text(line.to_string().into()))
                .await
                .unwrap();
            let mut seen = String::new();
            while !seen.contains(&format!("got {word}\n")) {
                let v = next_json(&mut ws).await;
                assert_eq!(v["type"], "data", "{v}");
                seen.push_str(v["data"].as_str().unwrap());
            }
        }
        ws.send(Message::Text(json!({"type": "eof"}).to_string().into()))
            .await
            .unwrap();
        let (exit, _) = until(&mut ws, "exit").await;
        assert_eq!(
            (exit["stage"].as_str(), exit["code"].as_i64()),
            (Some("run"), Some(0)),
            "{exit}"
        );
        let (closed, _) = until(&mut ws, "closed").await;
        assert_eq!(closed["closed"], u16::from(CloseCode::from(4999)));
        assert!(h.all_removed().await);
    }

    #[tokio::test]
    async fn a_signal_stops_it_and_bad_starts_are_errors() {
        let (h, _w, _l) = harness(true, None).await;
        let addr = serve(&h).await;
        let url = format!("ws://{addr}/api/v2/connect");
        let (mut ws, _) = tokio_tungstenite::connect_async(&url).await.unwrap();
        let init = json!({"type": "init", "language": "hostbash", "version": "*", "run_timeout": 30000,
            "files": [{"content": "echo started; sleep 25"}]});
        ws.send(Message::Text(init.to_string().into()))
            .await
            .unwrap();
        let (_, out) = until(&mut ws, "data").await;
        let _ = out;
        ws.send(Message::Text(
            json!({"type": "signal", "signal": "SIGKILL"})
                .to_string()
                .into(),
        ))
        .await
        .unwrap();
        let (exit, _) = until(&mut ws, "exit").await;
        assert_eq!(exit["signal"], "SIGKILL", "{exit}");

        // Something other than init first; an unknown language.
        let (mut ws, _) = tokio_tungstenite::connect_async(&url).await.unwrap();
        ws.send(Message::Text(
            json!({"type": "data", "stream": "stdin", "data": "x"})
                .to_string()
                .into(),
        ))
        .await
        .unwrap();
        let (err, _) = until(&mut ws, "error").await;
        assert_eq!(err["message"], "Not yet Initialized");
        let (mut ws, _) = tokio_tungstenite::connect_async(&url).await.unwrap();
        ws.send(Message::Text(
            json!({"type": "init", "language": "nope", "version": "*", "files": []})
                .to_string()
                .into(),
        ))
        .await
        .unwrap();
        let (err, _) = until(&mut ws, "error").await;
        assert!(err["message"].as_str().unwrap().contains("nope"), "{err}");
        // A page on another site may not open one with a visitor's cookie: the native
        // route answers 403 for a foreign Origin.
        let mut req =
            tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(
                format!("ws://{addr}/api/v1/execute/connect"),
            )
            .unwrap();
        req.headers_mut()
            .insert("origin", "http://evil.example".parse().unwrap());
        req.headers_mut().insert(
            "authorization",
            format!("Bearer {}", h.admin_token).parse().unwrap(),
        );
        match tokio_tungstenite::connect_async(req).await {
            Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => {
                assert_eq!(resp.status().as_u16(), 403)
            }
            other => panic!("a foreign Origin was let in: {:?}", other.map(|_| ())),
        }
        assert!(h.all_removed().await);
    }
}

#[tokio::test]
async fn another_sites_pages_cannot_run_code_here() {
    // With anonymous access on (a trusted network), a page on another site must not use
    // its visitors' browsers to run code: a "simple" cross-site POST carries an Origin.
    let (h, _w, _l) = harness(true, None).await;
    let evil = [
        ("origin", "https://evil.example"),
        ("content-type", "text/plain"),
    ];
    let body = json!({"language_id": 1046, "source_code": "echo pwned"}).to_string();
    let r = raw(&h, Method::POST, "/submissions?wait=true", &evil, &body).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.text());
    let p = json!({"language": "hostbash", "version": "*", "files": [{"content": "echo pwned"}]});
    let r = raw(&h, Method::POST, "/api/v2/execute", &evil, &p.to_string()).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.text());
    // Our own pages may.
    let own = [("origin", "http://127.0.0.1:8080")];
    let r = raw(&h, Method::POST, "/api/v2/execute", &own, &p.to_string()).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
}

#[tokio::test]
async fn judge0_bounds() {
    let (h, _w, _l) = harness(true, None).await;
    let r = raw(
        &h,
        Method::POST,
        "/submissions",
        &[],
        &json!({"language_id": 1046.5, "source_code": "true"}).to_string(),
    )
    .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.json()["language_id"].is_array());
    let r = raw(&h, Method::POST, "/submissions", &[], &json!({"language_id": 1046, "source_code": "true", "number_of_runs": 20, "wall_time_limit": 60}).to_string()).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.json()["number_of_runs"].is_array());
    let r = raw(
        &h,
        Method::POST,
        "/submissions?wait=true",
        &[],
        &json!({"language_id": 1046, "source_code": "echo x"}).to_string(),
    )
    .await;
    let t = r.json()["token"].as_str().unwrap().to_owned();
    let r = raw(
        &h,
        Method::GET,
        &format!("/submissions/batch?tokens={t},{t}"),
        &[],
        "",
    )
    .await;
    assert_eq!(
        r.status,
        StatusCode::BAD_REQUEST,
        "a token named twice is refused"
    );
}
