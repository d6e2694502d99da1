//! `sandlab bench proxy`: a small page and a 100 MiB download from a web server inside a
//! sandbox, through the port proxy and straight from inside the sandbox's network
//! namespace, side by side with the same client: latency p50/p99 of one request after
//! another, requests per second with several connections, MiB/s for the download.
//!
//! The direct client runs on threads that joined the sandbox's network namespace
//! (`/run/netns/<id>`) and keeps its connection alive, as a program next to the server
//! would. Through the proxy every request is a new connection inside the sandbox, made
//! by its agent; the difference is the proxy's cost. Targets (issue 12): added p50 at
//! most 1 ms, throughput at least half of direct.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::os::fd::AsFd;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use serde_json::json;

use super::server::Server;
use super::{verdict, MIB, TTL};
use crate::bench::percentile;

/// The web server the bench runs inside the sandbox (Python's, threaded, keep-alive).
const APP: &str = r#"
import http.server, socketserver, sys
PAGE = b"<!doctype html><title>bench</title><p>" + b"x" * 1024 + b"</p>\n"
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    def log_message(self, *a): pass
    def do_GET(self):
        if self.path.startswith("/big"):
            n = int(self.path.split("=", 1)[1])
            self.send_response(200); self.send_header("Content-Length", str(n)); self.end_headers()
            chunk = b"\0" * 262144; sent = 0
            while sent < n:
                k = min(len(chunk), n - sent); self.wfile.write(chunk[:k]); sent += k
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/html"); self.send_header("Content-Length", str(len(PAGE)))
        self.end_headers(); self.wfile.write(PAGE)
class S(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
S(("0.0.0.0", int(sys.argv[1])), H).serve_forever()
"#;
const PORT: u16 = 8000;
const CONNECTIONS: usize = 4;
const LOAD_FOR: Duration = Duration::from_secs(5);
const DOWNLOAD: u64 = 100 << 20;

/// Where one client sends its requests.
#[derive(Clone)]
struct Target {
    /// `host:port` to connect to.
    addr: String,
    /// The path prefix (`/{sandbox}/{port}` through the proxy, empty direct).
    prefix: String,
    /// Extra request headers.
    auth: Option<String>,
    /// The sandbox's network namespace, for the direct client.
    netns: Option<String>,
}

impl Target {
    fn connect(&self) -> anyhow::Result<BufReader<TcpStream>> {
        let s = TcpStream::connect(&self.addr)
            .with_context(|| format!("cannot connect to {}", self.addr))?;
        s.set_nodelay(true)?;
        s.set_read_timeout(Some(Duration::from_secs(60)))?;
        Ok(BufReader::with_capacity(256 << 10, s))
    }

    /// One GET on `conn`; the body's length. The connection stays usable.
    fn get(&self, conn: &mut BufReader<TcpStream>, path: &str) -> anyhow::Result<u64> {
        let auth = self
            .auth
            .as_deref()
            .map(|a| format!("Authorization: {a}\r\n"))
            .unwrap_or_default();
        let req = format!(
            "GET {}{path} HTTP/1.1\r\nHost: {}\r\n{auth}\r\n",
            self.prefix, self.addr
        );
        conn.get_mut().write_all(req.as_bytes())?;
        let mut line = String::new();
        conn.read_line(&mut line)?;
        if !line.starts_with("HTTP/1.1 200") {
            bail!("the server answered {:?}", line.trim_end());
        }
        let mut length = None;
        loop {
            line.clear();
            conn.read_line(&mut line)?;
            if line == "\r\n" || line.is_empty() {
                break;
            }
            if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                length = v.trim().parse::<u64>().ok();
            }
        }
        let length = length.context("the answer has no Content-Length")?;
        let copied = std::io::copy(&mut conn.by_ref().take(length), &mut std::io::sink())?;
        if copied != length {
            bail!("the body ended after {copied} of {length} bytes");
        }
        Ok(length)
    }

    /// Runs `f` on a thread in the target's network namespace.
    fn on_thread<T: Send + 'static>(
        &self,
        f: impl FnOnce(Target) -> anyhow::Result<T> + Send + 'static,
    ) -> std::thread::JoinHandle<anyhow::Result<T>> {
        let me = self.clone();
        std::thread::spawn(move || {
            if let Some(ns) = &me.netns {
                let fd = std::fs::File::open(ns).with_context(|| format!("cannot open {ns}"))?;
                nix::sched::setns(fd.as_fd(), nix::sched::CloneFlags::CLONE_NEWNET)
                    .with_context(|| format!("cannot enter {ns}"))?;
            }
            f(me)
        })
    }
}

/// Latencies of `n` requests one after another on one connection, sorted.
fn latencies(t: &Target, n: usize) -> anyhow::Result<Vec<Duration>> {
    t.on_thread(move |t| {
        let mut conn = t.connect()?;
        for _ in 0..20 {
            t.get(&mut conn, "/")?; // warm up
        }
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            let start = Instant::now();
            t.get(&mut conn, "/")?;
            out.push(start.elapsed());
        }
        out.sort();
        Ok(out)
    })
    .join()
    .map_err(|_| anyhow::anyhow!("the client thread panicked"))?
}

/// Requests per second over `LOAD_FOR` with `CONNECTIONS` connections.
fn throughput(t: &Target) -> anyhow::Result<f64> {
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let threads: Vec<_> = (0..CONNECTIONS)
        .map(|_| {
            let (stop, done) = (stop.clone(), done.clone());
            t.on_thread(move |t| {
                let mut conn = t.connect()?;
                while !stop.load(Ordering::Relaxed) {
                    t.get(&mut conn, "/")?;
                    done.fetch_add(1, Ordering::Relaxed);
                }
                Ok(())
            })
        })
        .collect();
    let start = Instant::now();
    std::thread::sleep(LOAD_FOR);
    stop.store(true, Ordering::Relaxed);
    for th in threads {
        th.join()
            .map_err(|_| anyhow::anyhow!("a client thread panicked"))??;
    }
    Ok(done.load(Ordering::Relaxed) as f64 / start.elapsed().as_secs_f64())
}

/// MiB/s of one `DOWNLOAD`-byte answer.
fn download(t: &Target) -> anyhow::Result<f64> {
    t.on_thread(|t| {
        let mut conn = t.connect()?;
        let start = Instant::now();
        let got = t.get(&mut conn, &format!("/big?n={DOWNLOAD}"))?;
        Ok(got as f64 / MIB / start.elapsed().as_secs_f64())
    })
    .join()
    .map_err(|_| anyhow::anyhow!("the client thread panicked"))?
}

pub(super) async fn proxy_bench(srv: &Server, n: usize) -> anyhow::Result<()> {
    let (id, _) = srv
        .create(&json!({ "ttl": TTL, "network": "none" }))
        .await?;
    srv.put_file(&id, "/srv/bench_app.py", APP.as_bytes())
        .await?;
    srv.exec(
        &id,
        &[
            "sh",
            "-c",
            &format!("setsid python3 /srv/bench_app.py {PORT} >/tmp/app.log 2>&1 </dev/null &"),
        ],
    )
    .await?;
    let base_url = srv.port_url(&id, PORT).await?;
    let rest = base_url
        .strip_prefix("http://")
        .context("the proxy's URL is not http://")?;
    let (addr, prefix) = rest
        .split_once('/')
        .context("the proxy's URL has no path")?;
    let proxied = Target {
        addr: addr.to_owned(),
        prefix: format!("/{}", prefix.trim_end_matches('/')),
        auth: Some(format!("Bearer {}", srv.token)),
        netns: None,
    };
    let direct = Target {
        addr: format!("127.0.0.1:{PORT}"),
        prefix: String::new(),
        auth: None,
        netns: Some(format!("/run/netns/{id}")),
    };
    if !std::path::Path::new(direct.netns.as_deref().unwrap_or_default()).exists() {
        bail!("the sandbox has no network namespace at /run/netns/{id} to measure from");
    }
    let measure = move |t: Target| -> anyhow::Result<(Vec<Duration>, f64, f64)> {
        Ok((latencies(&t, n)?, throughput(&t)?, download(&t)?))
    };
    let (d, p) = tokio::task::spawn_blocking(move || -> anyhow::Result<_> {
        // Alternate, so both see the same machine.
        let d = measure(direct)?;
        let p = measure(proxied)?;
        Ok((d, p))
    })
    .await??;
    report(&id, n, &d, &p);
    Ok(())
}

fn report(id: &str, n: usize, d: &(Vec<Duration>, f64, f64), p: &(Vec<Duration>, f64, f64)) {
    let ms = |x: Duration| x.as_secs_f64() * 1000.0;
    let (d50, d99) = (percentile(&d.0, 0.5), percentile(&d.0, 0.99));
    let (p50, p99) = (percentile(&p.0, 0.5), percentile(&p.0, 0.99));
    println!("port proxy bench: sandbox {id}, a 1 KiB page, {n} requests one after another,");
    println!(
        "{CONNECTIONS} connections for {LOAD_FOR:?}, then one {} MiB download",
        DOWNLOAD >> 20
    );
    println!(
        "{:<28} {:>10} {:>10} {:>10} {:>10}",
        "", "p50 ms", "p99 ms", "req/s", "MiB/s"
    );
    println!(
        "{:<28} {:>10.3} {:>10.3} {:>10.0} {:>10.1}",
        "direct (in the netns)",
        ms(d50),
        ms(d99),
        d.1,
        d.2
    );
    println!(
        "{:<28} {:>10.3} {:>10.3} {:>10.0} {:>10.1}",
        "through the proxy",
        ms(p50),
        ms(p99),
        p.1,
        p.2
    );
    let added = ms(p50) - ms(d50);
    println!(
        "added p50 latency: {added:.3} ms (target <= 1 ms): {}",
        verdict(added <= 1.0)
    );
    println!(
        "requests/s through the proxy: {:.0} % of direct (target >= 50 %): {}",
        p.1 / d.1 * 100.0,
        verdict(p.1 >= d.1 * 0.5)
    );
    println!(
        "download through the proxy: {:.0} % of direct (target >= 50 %): {}",
        p.2 / d.2 * 100.0,
        verdict(p.2 >= d.2 * 0.5)
    );
}
