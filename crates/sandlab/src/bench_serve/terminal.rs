//! `sandlab bench terminal`: keystroke echo round trips and `cat` throughput through the
//! terminal WebSocket, with the server's memory while the `cat` runs.

use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use futures::{SinkExt, StreamExt};
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;

use super::memory::status_bytes;
use super::server::Server;
use super::{mb, verdict, MIB, TTL};
use crate::bench::percentile;

/// Server memory growth during the `cat` still counted as flat.
const FLAT_BYTES: u64 = 32 << 20;

pub(super) type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A `cat` of the big file: bytes printed, time taken and the server's memory around it.
struct Cat {
    got: u64,
    took: Duration,
    rss0: u64,
    hwm0: u64,
    peak: u64,
    rss1: u64,
    hwm1: u64,
}

pub(super) async fn terminal_bench(srv: &Server, n: usize, mib: u64) -> anyhow::Result<()> {
    let (id, _) = srv.create(&json!({ "ttl": TTL })).await?;
    let size = mib << 20;
    let script = format!(
        "head -c {} /dev/urandom | base64 | head -c {size} > /tmp/bench-big",
        size / 4 * 3 + 3
    );
    srv.exec(&id, &["sh", "-c", &script]).await?;
    let rtt = echo_round_trips(srv, &id, n).await?;
    let cat = cat_big(srv, &id, size).await?;
    report(&id, n, mib, &rtt, &cat);
    Ok(())
}

/// `n` keystroke round trips through the `echo` terminal, sorted.
async fn echo_round_trips(srv: &Server, id: &str, n: usize) -> anyhow::Result<Vec<Duration>> {
    let mut echo = srv.terminal(id, "echo").await?;
    // Raw mode without kernel echo: `cat` itself writes back each byte it reads, as a
    // shell's line editor does for every keystroke.
    send(&mut echo, b"stty raw -echo; echo BENCH''READY; exec cat\n").await?;
    read_until(&mut echo, b"BENCHREADY").await?;
    let mut rtt = keystrokes(&mut echo, n).await?;
    rtt.sort();
    drop(echo);
    Ok(rtt)
}

/// `cat` of the `size`-byte file in the `main` terminal, sampling the server's RSS meanwhile.
async fn cat_big(srv: &Server, id: &str, size: u64) -> anyhow::Result<Cat> {
    let mut main = srv.terminal(id, "main").await?;
    send(&mut main, b"stty -echo; echo BENCH''READY\n").await?;
    read_until(&mut main, b"BENCHREADY").await?;
    let rss = || status_bytes(srv.pid, "VmRSS");
    let (rss0, hwm0) = (rss()?, status_bytes(srv.pid, "VmHWM")?);
    let (mut peak, mut tick) = (rss0, tokio::time::interval(Duration::from_millis(20)));
    let start = Instant::now();
    send(&mut main, b"cat /tmp/bench-big; echo BENCH''DONE\n").await?;
    let read = read_until(&mut main, b"BENCHDONE");
    tokio::pin!(read);
    let got = loop {
        tokio::select! {
            got = &mut read => break got?,
            _ = tick.tick() => peak = peak.max(rss()?),
        }
    };
    let took = start.elapsed();
    if got < size {
        bail!("`cat` of {size} bytes printed only {got}");
    }
    let (rss1, hwm1) = (rss()?, status_bytes(srv.pid, "VmHWM")?);
    Ok(Cat {
        got,
        took,
        rss0,
        hwm0,
        peak,
        rss1,
        hwm1,
    })
}

fn report(id: &str, n: usize, mib: u64, rtt: &[Duration], cat: &Cat) {
    let (got, took) = (cat.got, cat.took);
    let rate = got as f64 / MIB / took.as_secs_f64().max(1e-9);
    let (p50, p99) = (percentile(rtt, 0.5), percentile(rtt, 0.99));
    let growth = cat.peak.max(cat.rss1).saturating_sub(cat.rss0);
    println!("terminal WebSocket of {id}: {n} keystrokes to a raw `cat`, then `cat` of {mib} MiB of base64");
    println!("{:<28} {:>9} {:>9}", "", "p50", "p99");
    println!(
        "{:<28} {p50:>9.1?} {p99:>9.1?}",
        "keystroke echo round trip"
    );
    println!(
        "{:<28} {:.1} MiB in {took:.2?}: {rate:.1} MiB/s",
        "cat",
        mb(got)
    );
    println!(
        "{:<28} RSS {:.1} MiB before, {:.1} peak during, {:.1} after; VmHWM +{:.1} MiB",
        "server memory during cat",
        mb(cat.rss0),
        mb(cat.peak),
        mb(cat.rss1),
        mb(cat.hwm1.saturating_sub(cat.hwm0))
    );
    println!(
        "echo p50 {p50:.1?} (target <= 2ms) {}; cat {rate:.1} MiB/s (target >= 50) {}; server RSS +{:.1} MiB (flat: <= {} MiB) {}",
        verdict(p50 <= Duration::from_millis(2)),
        verdict(rate >= 50.0),
        mb(growth),
        FLAT_BYTES >> 20,
        verdict(growth <= FLAT_BYTES),
    );
}

pub(super) async fn send(ws: &mut Socket, bytes: &[u8]) -> anyhow::Result<()> {
    ws.send(Message::binary(bytes.to_vec()))
        .await
        .context("cannot write to the terminal")
}

/// The next binary frame, within 60 s.
async fn frame(ws: &mut Socket) -> anyhow::Result<bytes::Bytes> {
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(60), ws.next())
            .await
            .context("no terminal output for 60 s")?
            .context("the server closed the terminal")?
            .context("cannot read the terminal")?;
        match msg {
            Message::Binary(b) => return Ok(b),
            Message::Close(c) => bail!("the server closed the terminal: {c:?}"),
            _ => {}
        }
    }
}

/// Reads until `needle` has been seen, also across frames; returns the bytes read.
pub(super) async fn read_until(ws: &mut Socket, needle: &[u8]) -> anyhow::Result<u64> {
    let k = needle.len().saturating_sub(1);
    let mut carry: Vec<u8> = Vec::new();
    let mut total = 0u64;
    loop {
        let b = frame(ws).await?;
        total += b.len() as u64;
        let mut edge = std::mem::take(&mut carry);
        edge.extend_from_slice(&b[..b.len().min(k)]);
        if memchr::memmem::find(&b, needle).is_some()
            || memchr::memmem::find(&edge, needle).is_some()
        {
            return Ok(total);
        }
        carry = match b.len().checked_sub(k) {
            Some(from) => b[from..].to_vec(),
            None => edge[edge.len().saturating_sub(k)..].to_vec(),
        };
    }
}

/// Round trips of single keystrokes, after a few untimed ones.
async fn keystrokes(ws: &mut Socket, n: usize) -> anyhow::Result<Vec<Duration>> {
    let mut out = Vec::with_capacity(n);
    for i in 0..n + 5 {
        let key = b'a' + (i % 26) as u8;
        let start = Instant::now();
        send(ws, &[key]).await?;
        while !frame(ws).await?.contains(&key) {}
        if i >= 5 {
            out.push(start.elapsed());
        }
    }
    Ok(out)
}
