//! `sandlab bench pool`: warm claims from the bench pool against cold creates.

use std::time::Duration;

use serde_json::json;

use super::api::metric;
use super::server::Server;
use super::{progress, ratio, verdict, POOL, POOL_SIZE, TTL};
use crate::bench::percentile;

/// What the server's metrics say about the bench: claims, their mean and the mean cold create.
struct ServerSide {
    claims: f64,
    claim_mean: f64,
    cold_mean: f64,
}

pub(super) async fn pool_bench(srv: &Server, n: usize) -> anyhow::Result<()> {
    srv.wait_pool_full().await?;
    let before = srv.metrics().await?;
    let (mut warm, mut cold) = alternate(srv, n).await?;
    let after = srv.metrics().await?;
    let side = server_side(&before, &after);
    warm.sort();
    cold.sort();
    report(n, &warm, &cold, &side);
    Ok(())
}

/// `n` warm claims and `n` cold creates, alternating, each deleted at once: their times.
async fn alternate(srv: &Server, n: usize) -> anyhow::Result<(Vec<Duration>, Vec<Duration>)> {
    let (mut warm, mut cold) = (Vec::with_capacity(n), Vec::with_capacity(n));
    let bar = progress(2 * n as u64, "create");
    for i in 0..2 * n {
        // Alternate which goes first; the pool is full before every request.
        let claim = (i % 2 == 0) == (i / 2 % 2 == 0);
        srv.wait_pool_full().await?;
        let body = if claim {
            json!({ "ttl": TTL })
        } else {
            json!({ "memory": "511M", "ttl": TTL })
        };
        let (id, took) = srv.create(&body).await?;
        if claim { &mut warm } else { &mut cold }.push(took);
        srv.delete(&id).await?;
        bar.inc(1);
    }
    bar.finish_and_clear();
    Ok((warm, cold))
}

/// The server's own figures, from the metrics before and after the bench.
fn server_side(before: &str, after: &str) -> ServerSide {
    let delta = |name: &str, label: &str| {
        metric(after, name, label).unwrap_or(0.0) - metric(before, name, label).unwrap_or(0.0)
    };
    let label = format!("profile=\"{POOL}\"");
    let claims = delta("sandlab_pool_claim_seconds_count", &label);
    let claim_mean = delta("sandlab_pool_claim_seconds_sum", &label) / claims.max(1.0);
    let colds = delta("sandlab_sandbox_create_seconds_count", "source=\"cold\"");
    let cold_mean = delta("sandlab_sandbox_create_seconds_sum", "source=\"cold\"") / colds.max(1.0);
    ServerSide {
        claims,
        claim_mean,
        cold_mean,
    }
}

fn report(n: usize, warm: &[Duration], cold: &[Duration], side: &ServerSide) {
    let claims = side.claims;
    println!("POST /api/v1/sandboxes to 201, {n} each, alternating; pool `{POOL}` of {POOL_SIZE}, refilled before each");
    println!("{:<34} {:>9} {:>9} {:>12}", "", "p50", "p99", "server mean");
    let row = |name: &str, s: &[Duration], mean: f64| {
        let mean = Duration::from_secs_f64(mean.max(0.0));
        println!(
            "{name:<34} {:>9.1?} {:>9.1?} {mean:>12.1?}",
            percentile(s, 0.5),
            percentile(s, 0.99)
        );
    };
    row("cold create (memory 511M)", cold, side.cold_mean);
    row("warm claim (pool profile)", warm, side.claim_mean);
    let (p50, p99) = (percentile(warm, 0.5), percentile(warm, 0.99));
    println!(
        "warm claim p50 {p50:.1?} (target <= 5ms) {}, p99 {p99:.1?} (target <= 25ms) {}; cold/warm p50 {:.1}x, p99 {:.1}x; {claims}/{n} were claims",
        verdict(p50 <= Duration::from_millis(5) && claims as usize == n),
        verdict(p99 <= Duration::from_millis(25) && claims as usize == n),
        ratio(percentile(cold, 0.5), p50),
        ratio(percentile(cold, 0.99), p99),
    );
}
