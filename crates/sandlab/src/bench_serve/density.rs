//! `sandlab bench density`: the host memory that idle sandboxes take beyond their processes.

use std::time::{Duration, Instant};

use serde_json::json;

use super::memory::{host_used, kernel_used, private_bytes, status_bytes};
use super::server::Server;
use super::{bounded, progress, verdict, MIB, TTL};

/// What the bench measured; memory in bytes, against before the sandboxes were created.
struct Figures {
    running: usize,
    /// Host memory in use, grown while they ran.
    grew: i64,
    /// Their processes' private memory.
    own: u64,
    kernel: i64,
    /// The server's RSS growth.
    server: i64,
    /// Host memory in use after deleting them.
    left: i64,
    created: Duration,
    deleted: Duration,
}

pub(super) async fn density_bench(srv: &Server, n: usize) -> anyhow::Result<()> {
    let (used0, kernel0) = (host_used()?, kernel_used()?);
    let rss0 = status_bytes(srv.pid, "VmRSS")?;
    let start = Instant::now();
    let ids = create_all(srv, n).await?;
    let created = start.elapsed();
    let running = bounded(n, 16, |i| srv.is_running(&ids[i])).await?;
    let running = running.into_iter().filter(|r| *r).count();
    let (grew, kernel) = (host_used()? - used0, kernel_used()? - kernel0);
    let own = ids
        .iter()
        .map(|id| private_bytes(id))
        .sum::<anyhow::Result<u64>>()?;
    let server = status_bytes(srv.pid, "VmRSS")? as i64 - rss0 as i64;
    let start = Instant::now();
    bounded(n, 16, |i| srv.delete(&ids[i])).await?;
    let deleted = start.elapsed();
    let left = host_used()? - used0;
    report(
        n,
        &Figures {
            running,
            grew,
            own,
            kernel,
            server,
            left,
            created,
            deleted,
        },
    );
    Ok(())
}

/// `n` idle sandboxes, created 4 at a time: their ids.
async fn create_all(srv: &Server, n: usize) -> anyhow::Result<Vec<String>> {
    let bar = progress(n as u64, "create");
    let ids = bounded(n, 4, |_| async {
        let id = srv.create(&json!({ "ttl": TTL })).await?.0;
        bar.inc(1);
        Ok(id)
    })
    .await?;
    bar.finish_and_clear();
    Ok(ids)
}

fn report(n: usize, f: &Figures) {
    let per = |b: i64| b as f64 / MIB / n.max(1) as f64;
    let rest = f.grew - f.own as i64;
    // Unrelated processes move the host total; kernel + server is the steadier estimate.
    let overhead = per(rest.max(f.kernel + f.server));
    println!("{n} idle sandboxes of the default shape, created 4 at a time; host memory from /proc/meminfo");
    println!("{:<50} {:>9} {:>12}", "", "MiB", "per sandbox");
    for (what, bytes) in [
        ("host memory in use grew (without file cache)", f.grew),
        (
            "  their processes (anon + shmem of their cgroups)",
            f.own as i64,
        ),
        ("  the rest, beyond their processes", rest),
        ("kernel: slab, page tables, stacks, per-CPU", f.kernel),
        ("server RSS", f.server),
        ("in use after deleting them, against before", f.left),
    ] {
        println!(
            "{what:<50} {:>9.1} {:>12.2}",
            bytes as f64 / MIB,
            per(bytes)
        );
    }
    let (running, created, deleted) = (f.running, f.created, f.deleted);
    println!(
        "{running}/{n} running {}; per sandbox {overhead:.2} MiB beyond its processes (larger of rest and kernel + server; target <= 5) {}; created in {created:.1?}, deleted in {deleted:.1?} (16 at a time)",
        verdict(running == n),
        verdict(overhead <= 5.0),
    );
}
