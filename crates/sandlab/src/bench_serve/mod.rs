//! `sandlab bench pool|terminal|density`: `sandlab serve` measured from outside, through its
//! HTTP API and terminal WebSocket, against the targets of SPEC section 9.
//!
//! Each bench starts its own server (this same executable, so the same build is measured)
//! on a free loopback port over the configured data directory (where the images are), with
//! a bench config: the user's file without its pools, plus the bench's own pool for
//! `bench pool`. It signs in as a fresh admin `bench-<random>` (created with `sandlab user
//! add`, disabled afterwards; users cannot be deleted). On the way out, also after an
//! error, Ctrl-C or SIGTERM, [`Server::stop`] deletes every sandbox the bench made and the
//! bench pool's warm sandboxes, then stops the server. Bench sandboxes carry a 30-minute TTL
//! so that even a killed bench leaves nothing for longer; the server gets SIGTERM when the
//! bench dies. Don't run a bench while another `sandlab serve` uses the same data directory:
//! both reconcile the host at start-up.
//!
//! Layout: [`server`] starts, signs in to and stops the bench server; [`api`] holds its HTTP
//! and WebSocket calls; [`memory`] reads memory figures from /proc and the cgroups; [`pool`],
//! [`terminal`] and [`density`] are the benches themselves.

mod api;
mod cluster;
mod density;
mod execute;
mod memory;
mod pool;
mod proxy;
mod server;
mod soak;
mod terminal;

use std::time::Duration;

use anyhow::{bail, Context};
use clap::Args;
use futures::StreamExt;

use crate::config::Config;
use server::Server;

#[derive(Args, Debug)]
pub struct PoolArgs {
    /// Warm claims and cold creates, each.
    #[arg(short, long, default_value_t = 50)]
    n: usize,
}

#[derive(Args, Debug)]
pub struct TerminalArgs {
    /// Keystrokes to time.
    #[arg(short, long, default_value_t = 200)]
    n: usize,
    /// Size of the file `cat` prints, in MiB.
    #[arg(long, default_value_t = 100)]
    mib: u64,
}

pub use soak::SoakArgs;

#[derive(Args, Debug)]
pub struct ProxyArgs {
    /// Requests timed one after another, each way.
    #[arg(short, long, default_value_t = 2000)]
    n: usize,
}

#[derive(Args, Debug)]
pub struct ExecuteArgs {
    /// Requests per row (sequential rows and each concurrency).
    #[arg(short, long, default_value_t = 100)]
    n: usize,
}

#[derive(Args, Debug)]
pub struct ClusterArgs {
    /// Rounds (each starts the baseline lab and the one- and two-node cluster labs; then
    /// as many starts of the warm two-node lab).
    #[arg(short, long, default_value_t = 5)]
    n: usize,
}

#[derive(Args, Debug)]
pub struct DensityArgs {
    /// Idle sandboxes to start.
    #[arg(short, long, default_value_t = 200)]
    n: usize,
}

const POOL: &str = "bench";
const POOL_SIZE: usize = 2;
const TTL: &str = "30m";
const MIB: f64 = 1024.0 * 1024.0;
/// This very executable, also when `target/` was rebuilt meanwhile.
const SELF: &str = "/proc/self/exe";

pub async fn pool(cfg: &Config, args: PoolArgs) -> anyhow::Result<()> {
    let srv = Server::start(cfg, true).await?;
    let result = interruptible(pool::pool_bench(&srv, args.n)).await;
    srv.stop().await;
    result
}

pub async fn terminal(cfg: &Config, args: TerminalArgs) -> anyhow::Result<()> {
    let srv = Server::start(cfg, false).await?;
    let result = interruptible(terminal::terminal_bench(&srv, args.n, args.mib)).await;
    srv.stop().await;
    result
}

pub async fn proxy(cfg: &Config, args: ProxyArgs) -> anyhow::Result<()> {
    let srv = Server::start(cfg, false).await?;
    let result = interruptible(proxy::proxy_bench(&srv, args.n)).await;
    srv.stop().await;
    result
}

pub async fn density(cfg: &Config, args: DensityArgs) -> anyhow::Result<()> {
    let srv = Server::start(cfg, false).await?;
    let result = interruptible(density::density_bench(&srv, args.n)).await;
    srv.stop().await;
    result
}

pub async fn cluster(cfg: &Config, args: ClusterArgs) -> anyhow::Result<()> {
    let srv = Server::start_with_lab_pools(cfg, cluster::lab_pools()).await?;
    let result = interruptible(cluster::cluster_bench(&srv, args.n)).await;
    srv.stop().await;
    result
}

pub async fn execute(cfg: &Config, args: ExecuteArgs) -> anyhow::Result<()> {
    interruptible(execute::execute_bench(cfg, args.n)).await
}

/// Runs `fut` unless SIGINT or SIGTERM comes first, so the caller still cleans up.
pub async fn soak(cfg: &Config, args: SoakArgs) -> anyhow::Result<()> {
    interruptible(soak::run(cfg, args)).await
}

async fn interruptible<T>(
    fut: impl std::future::Future<Output = anyhow::Result<T>>,
) -> anyhow::Result<T> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).context("cannot watch SIGTERM")?;
    tokio::select! {
        r = fut => r,
        _ = tokio::signal::ctrl_c() => bail!("interrupted"),
        _ = term.recv() => bail!("terminated"),
    }
}

fn mb(bytes: u64) -> f64 {
    bytes as f64 / MIB
}

fn verdict(ok: bool) -> &'static str {
    if ok {
        "PASS"
    } else {
        "MISS"
    }
}

fn ratio(a: Duration, b: Duration) -> f64 {
    a.as_secs_f64() / b.as_secs_f64().max(1e-9)
}

fn progress(len: u64, what: &str) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::new(len);
    if let Ok(style) =
        indicatif::ProgressStyle::with_template("{msg} {bar:40} {pos}/{len} {elapsed}")
    {
        bar.set_style(style);
    }
    bar.set_message(what.to_owned());
    bar
}

/// `f(0..n)` with at most `k` in flight; the results in order, or the first error.
async fn bounded<T, F, Fut>(n: usize, k: usize, f: F) -> anyhow::Result<Vec<T>>
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<T>>,
{
    futures::stream::iter((0..n).map(f))
        .buffered(k)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect()
}
