//! Every code execution language against a real `sandlab serve`, from its own sample
//! programs (`[samples]` in `languages/*.toml`): hello world, stdin, a runtime error, a
//! compile error (compiled languages), a timeout and a memory limit, each judged as the
//! API says. A language whose image is not built is skipped with a line saying so,
//! except under CI, where every language must be there and pass.

mod common;

use std::sync::Mutex;

use common::server::Server;
use common::*;
use reqwest::{Method, StatusCode};
use sandlab_server::code_exec::{Language, Languages};
use serde_json::{json, Value};

/// What one sample must give.
enum Want {
    /// Run ok with exactly this stdout.
    Stdout(&'static str),
    RuntimeError,
    CompileError,
    Timeout,
    /// Killed for memory, or the runtime refused to allocate (a JVM's heap limit) and
    /// said so.
    Memory,
}

fn run(server: &Server, lang: &Language, src: &str, stdin: &str, limits: Value) -> Value {
    let body = json!({"language": lang.name, "version": lang.version,
        "files": [{"content": src}], "stdin": stdin, "limits": limits});
    let r = server
        .admin
        .call(Method::POST, "/api/v1/execute", Some(&body));
    assert_eq!(r.status, StatusCode::OK, "{}: {}", lang.name, r.text());
    r.json()
}

/// Checks one sample; the problem in a sentence when it does not give what it must.
fn check(server: &Server, lang: &Language, what: &str, src: &str, want: &Want) -> Option<String> {
    let limits = match want {
        Want::Timeout => json!({"wall_ms": 3000, "cpu_ms": 2000}),
        _ => json!({"wall_ms": 20000, "cpu_ms": 15000}),
    };
    let stdin = if matches!(want, Want::Stdout(s) if s.starts_with("sandlab")) {
        "sandlab 42\n"
    } else {
        ""
    };
    let v = run(server, lang, src, stdin, limits);
    let compile = v["compile"]["status"].as_str().unwrap_or("ok");
    let status = v["run"]["status"].as_str().unwrap_or("");
    let stderr = format!("{} {}", v["compile"]["stderr"], v["run"]["stderr"]).to_lowercase();
    let ok = match want {
        Want::Stdout(s) => compile == "ok" && status == "ok" && v["run"]["stdout"] == *s,
        Want::RuntimeError => compile == "ok" && status == "runtime_error",
        Want::CompileError => compile != "ok",
        Want::Timeout => compile == "ok" && status == "timeout",
        Want::Memory => {
            compile == "ok"
                && (status == "memory_limit"
                    || (status == "runtime_error"
                        && ["memory", "alloc", "heap"]
                            .iter()
                            .any(|w| stderr.contains(w))))
        }
    };
    (!ok).then(|| format!("{} {what}: {}", lang.name, short(&v)))
}

fn short(v: &Value) -> String {
    let mut s = v.to_string();
    s.truncate(600);
    s
}

#[test]
fn every_language_passes_its_samples() {
    let data = data_dir();
    let server = Server::start(&data);
    let r = server.admin.call(Method::GET, "/api/v1/runtimes", None);
    assert_eq!(r.status, StatusCode::OK);
    let available: Vec<String> = r
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["language"].as_str().unwrap().to_owned())
        .collect();
    let (langs, problems) = Languages::load(None);
    assert!(problems.is_empty(), "{problems:?}");
    let all: Vec<&Language> = langs.all().collect();
    assert!(all.len() >= 30, "only {} languages", all.len());
    let missing: Vec<&str> = all
        .iter()
        .filter(|l| !available.contains(&l.name))
        .map(|l| l.name.as_str())
        .collect();
    if !missing.is_empty() {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI runs every language, but these have no image: {missing:?} (sandlab image build --languages all)"
        );
        eprintln!("skipped, their images are not built: {missing:?}");
    }
    let mut cases: Vec<(&Language, &'static str, String, Want)> = Vec::new();
    for lang in all.iter().filter(|l| available.contains(&l.name)) {
        let s = &lang.samples;
        let need = |what: &str, src: &Option<String>| -> String {
            src.clone()
                .unwrap_or_else(|| panic!("{} has no `{what}` sample", lang.name))
        };
        cases.push((
            lang,
            "hello",
            need("hello", &s.hello),
            Want::Stdout("hello, world\n"),
        ));
        cases.push((
            lang,
            "stdin",
            need("stdin", &s.stdin),
            Want::Stdout("sandlab 42\n"),
        ));
        cases.push((
            lang,
            "runtime_error",
            need("runtime_error", &s.runtime_error),
            Want::RuntimeError,
        ));
        if lang.compile.is_some() {
            cases.push((
                lang,
                "compile_error",
                need("compile_error", &s.compile_error),
                Want::CompileError,
            ));
        }
        cases.push((lang, "timeout", need("timeout", &s.timeout), Want::Timeout));
        cases.push((lang, "memory", need("memory", &s.memory), Want::Memory));
    }
    let failures = Mutex::new(Vec::new());
    let next = Mutex::new(cases.iter());
    // Two at a time: the machines have two cores.
    std::thread::scope(|scope| {
        for _ in 0..2 {
            scope.spawn(|| loop {
                let Some((lang, what, src, want)) = next.lock().unwrap().next() else {
                    return;
                };
                if let Some(problem) = check(&server, lang, what, src, want) {
                    failures.lock().unwrap().push(problem);
                }
            });
        }
    });
    let failures = failures.into_inner().unwrap();
    assert!(
        failures.is_empty(),
        "{} of {} samples failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
    eprintln!(
        "{} samples of {} languages passed",
        cases.len(),
        all.len() - missing.len()
    );
}
