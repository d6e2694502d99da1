//! `sandlab bench execute`: Python and C hello world through `POST /api/v1/execute`,
//! sequential (p50, p99) and at concurrency 1, 4 and 16 (requests per second, CPU per
//! request), side by side in one run with `sandlab run` of the same program (a cold
//! sandbox per request, no server) and with the bare program on the host (the floor).

use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use serde_json::{json, Value};

use super::api::metric;
use super::server::Server;
use super::{bounded, progress, ratio, verdict, SELF};
use crate::bench::percentile;

/// Warm sandboxes the bench server keeps per language image.
const POOL: i64 = 6;

struct Program {
    name: &'static str,
    language: &'static str,
    file: &'static str,
    source: &'static str,
    image: &'static str,
    /// The same program with `sandlab run` and on the host, as `sh -c` text run in a
    /// directory holding `file` (the system's own interpreter, not a version manager's
    /// shim on the host's PATH).
    shell: &'static str,
}

const PROGRAMS: &[Program] = &[
    Program {
        name: "python",
        language: "python",
        file: "main.py",
        source: "print('hello, world')\n",
        image: "debian",
        shell: "/usr/bin/python3 main.py",
    },
    Program {
        name: "c",
        language: "c",
        file: "main.c",
        source: "#include <stdio.h>\nint main(void) { puts(\"hello, world\"); return 0; }\n",
        image: "lang-c",
        // A binary of its own per run, so runs side by side do not share one.
        shell: "gcc -O2 -o main$$ main.c && ./main$$; r=$?; rm -f main$$; exit $r",
    },
];

/// The whole machine's CPU time so far (all CPUs, user + system), from /proc/stat.
fn cpu_time() -> Duration {
    let text = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let ticks: u64 = text
        .lines()
        .next()
        .unwrap_or("")
        .split_whitespace()
        .skip(1)
        .take(8)
        .enumerate()
        // user nice system idle iowait irq softirq steal: everything but idle and iowait.
        .filter(|(i, _)| *i != 3 && *i != 4)
        .filter_map(|(_, v)| v.parse::<u64>().ok())
        .sum();
    // USER_HZ is 100 on Linux.
    Duration::from_millis(ticks * 10)
}

struct Rate {
    per_sec: f64,
    cpu_per_request: Duration,
}

/// `n` calls of `f` with `k` in flight: requests per second and machine CPU per request.
async fn rate<F, Fut>(n: usize, k: usize, what: &str, f: F) -> anyhow::Result<Rate>
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>>,
{
    let bar = progress(n as u64, what);
    let (cpu0, t0) = (cpu_time(), Instant::now());
    let bar2 = bar.clone();
    bounded(n, k, |i| {
        let fut = f(i);
        let bar = bar2.clone();
        async move {
            let r = fut.await;
            bar.inc(1);
            r
        }
    })
    .await?;
    let (cpu1, wall) = (cpu_time(), t0.elapsed());
    bar.finish_and_clear();
    Ok(Rate {
        per_sec: n as f64 / wall.as_secs_f64(),
        cpu_per_request: (cpu1.saturating_sub(cpu0)) / n as u32,
    })
}

/// One execution through the API; its time to the answer.
async fn execute(srv: &Server, p: &Program) -> anyhow::Result<Duration> {
    let body = json!({"language": p.language, "files": [{"name": p.file, "content": p.source}]});
    let start = Instant::now();
    let resp = srv.post("/execute", &body).await?;
    let took = start.elapsed();
    let status = resp.status();
    let v: Value = resp.json().await.unwrap_or(Value::Null);
    if status != 200 || v["run"]["stdout"] != "hello, world\n" {
        bail!("{} did not print hello: {status} {v}", p.name);
    }
    Ok(took)
}

/// One `sandlab run` of the program, a cold sandbox and no server.
fn sandlab_run(data_dir: &std::path::Path, p: &Program) -> anyhow::Result<Duration> {
    let script = format!(
        "mkdir -p /tmp/b && cd /tmp/b && cat > {} <<'SANDLAB_EOF'\n{}SANDLAB_EOF\n{}",
        p.file, p.source, p.shell
    );
    let start = Instant::now();
    let out = Command::new(SELF)
        .arg("--data-dir")
        .arg(data_dir)
        .args(["run", "--image", p.image, "--", "sh", "-c", &script])
        .output()?;
    let took = start.elapsed();
    if !out.status.success() || out.stdout != b"hello, world\n" {
        bail!(
            "sandlab run of {} failed: {} {}",
            p.name,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(took)
}

/// The program on the host itself, in `dir`.
fn host_run(dir: &std::path::Path, p: &Program) -> anyhow::Result<Duration> {
    let start = Instant::now();
    let out = Command::new("sh")
        .args(["-c", p.shell])
        .current_dir(dir)
        .output()?;
    let took = start.elapsed();
    if !out.status.success() || out.stdout != b"hello, world\n" {
        bail!(
            "{} on the host failed: {}",
            p.name,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(took)
}

async fn wait_pools(srv: &Server) -> anyhow::Result<()> {
    let start = Instant::now();
    loop {
        let m = srv.metrics().await?;
        let full = PROGRAMS.iter().all(|p| {
            metric(
                &m,
                "sandlab_pool_ready",
                &format!("profile=\"exec-{}\"", p.image),
            )
            .is_some_and(|v| v >= POOL as f64)
        });
        if full {
            return Ok(());
        }
        if start.elapsed() > Duration::from_secs(300) {
            bail!("the execution pools did not fill within 5 minutes; are the images debian and lang-c built (`sandlab image build --languages python,c`)?");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

pub(super) async fn execute_bench(cfg: &crate::config::Config, n: usize) -> anyhow::Result<()> {
    let mut server = toml::Table::new();
    server.insert("execute_pool".into(), POOL.into());
    server.insert("execute_per_user".into(), 64.into());
    let srv = Arc::new(Server::start_with(cfg, false, server).await?);
    let result = run_all(&srv, cfg, n).await;
    match Arc::try_unwrap(srv) {
        Ok(srv) => srv.stop().await,
        Err(_) => {
            eprintln!("sandlab: the bench server is still in use; it stops with this process")
        }
    }
    result
}

async fn run_all(srv: &Arc<Server>, cfg: &crate::config::Config, n: usize) -> anyhow::Result<()> {
    let host_dir = tempfile::tempdir()?;
    for p in PROGRAMS {
        std::fs::write(host_dir.path().join(p.file), p.source)?;
    }
    wait_pools(srv)
        .await
        .context("waiting for the warm pools")?;
    println!(
        "code execution, {n} requests per row, hello world; pools of {POOL} per language image"
    );
    println!(
        "{:<38} {:>9} {:>9} {:>10} {:>12}",
        "", "p50", "p99", "req/s", "CPU/request"
    );
    let mut python_p50 = Duration::MAX;
    let mut python_c16 = 0.0;
    for p in PROGRAMS {
        // Sequential latency: the API (pool refilled between requests), sandlab run, host.
        let mut api = Vec::with_capacity(n);
        let mut cold = Vec::with_capacity(n);
        let mut host = Vec::with_capacity(n);
        let bar = progress(3 * n as u64, &format!("{} sequential", p.name));
        for _ in 0..n {
            wait_pools(srv).await?;
            api.push(execute(srv, p).await?);
            cold.push(sandlab_run(&cfg.runtime.data_dir, p)?);
            host.push(host_run(host_dir.path(), p)?);
            bar.inc(3);
        }
        bar.finish_and_clear();
        for s in [&mut api, &mut cold, &mut host] {
            s.sort();
        }
        let row = |name: String, s: &[Duration]| {
            println!(
                "{name:<38} {:>9.1?} {:>9.1?}",
                percentile(s, 0.5),
                percentile(s, 0.99)
            );
        };
        row(format!("{} POST /execute, one at a time", p.name), &api);
        row(format!("{} sandlab run (cold, no server)", p.name), &cold);
        row(format!("{} on the host (floor)", p.name), &host);
        if p.name == "python" {
            python_p50 = percentile(&api, 0.5);
        }
        for k in [1usize, 4, 16] {
            wait_pools(srv).await?;
            let srv2 = srv.clone();
            let r = rate(n.max(k * 4), k, &format!("{} c={k}", p.name), move |_| {
                let srv = srv2.clone();
                async move { execute(&srv, p).await.map(drop) }
            })
            .await?;
            println!(
                "{:<38} {:>9} {:>9} {:>10.1} {:>12.1?}",
                format!("{} POST /execute, concurrency {k}", p.name),
                "",
                "",
                r.per_sec,
                r.cpu_per_request
            );
            if p.name == "python" && k == 16 {
                python_c16 = r.per_sec;
            }
        }
        let data_dir = cfg.runtime.data_dir.clone();
        let r = rate(n, 4, &format!("{} sandlab run c=4", p.name), move |_| {
            let data_dir = data_dir.clone();
            async move {
                tokio::task::spawn_blocking(move || sandlab_run(&data_dir, p).map(drop)).await?
            }
        })
        .await?;
        println!(
            "{:<38} {:>9} {:>9} {:>10.1} {:>12.1?}",
            format!("{} sandlab run, concurrency 4", p.name),
            "",
            "",
            r.per_sec,
            r.cpu_per_request
        );
        let dir = host_dir.path().to_owned();
        let r = rate(n, 4, &format!("{} host c=4", p.name), move |_| {
            let dir = dir.clone();
            async move { tokio::task::spawn_blocking(move || host_run(&dir, p).map(drop)).await? }
        })
        .await?;
        println!(
            "{:<38} {:>9} {:>9} {:>10.1} {:>12.1?}",
            format!("{} on the host, concurrency 4", p.name),
            "",
            "",
            r.per_sec,
            r.cpu_per_request
        );
        if p.name == "python" {
            println!(
                "python: sandlab run / API p50 {:.1}x; API / host p50 {:.1}x",
                ratio(percentile(&cold, 0.5), python_p50),
                ratio(python_p50, percentile(&host, 0.5)),
            );
        }
    }
    println!(
        "python hello p50 {python_p50:.1?} (target <= 30ms) {}; {python_c16:.1} requests/s at concurrency 16 (target >= 60) {}",
        verdict(python_p50 <= Duration::from_millis(30)),
        verdict(python_c16 >= 60.0),
    );
    Ok(())
}
