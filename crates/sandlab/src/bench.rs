//! `sandlab bench start`: cold start of `sandlab run -- echo ready` against the bare OCI
//! runtime running the same image with the same isolation (`runc run` of a bundle whose
//! init is `echo ready`), side by side, alternating, in one run. Measures the time to the
//! first byte of output (SPEC section 9: request → first command output, target ratio
//! <= 1.3) and to exit (teardown included), p50/p99 of both, and their ratios.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::Subcommand;
use sandlab_core::{Limits, SandboxId};
use sandlab_runtime::{ContainerDriver, SandboxSpec};

use crate::config::Config;
use crate::sandbox_cmd::self_exe;

#[derive(Subcommand, Debug)]
pub enum BenchCommand {
    /// Cold start: `sandlab run -- true` vs the bare OCI runtime on the same bundle.
    Start {
        /// Iterations of each.
        #[arg(short, long, default_value_t = 30)]
        n: usize,
        #[arg(long, default_value = "debian")]
        image: String,
        /// `machine`: time to a running systemd and to a working `docker info` in a
        /// machine (image `machine`), beside the standard profile's first output.
        #[arg(long, default_value = "standard")]
        profile: String,
    },
    /// Warm pool claim vs cold create through `sandlab serve`'s `POST /sandboxes`.
    Pool(crate::bench_serve::PoolArgs),
    /// Terminal WebSocket: keystroke echo round trip, `cat` throughput, server memory.
    Terminal(crate::bench_serve::TerminalArgs),
    /// Code execution: Python and C hello world through `POST /api/v1/execute`, one at a
    /// time and at concurrency 1, 4 and 16, beside `sandlab run` and the bare host.
    Execute(crate::bench_serve::ExecuteArgs),
    /// Many idle sandboxes: host memory per sandbox beyond its processes; parallel delete.
    Density(crate::bench_serve::DensityArgs),
    /// Port proxy: a small page and a 100 MiB download through the proxy vs straight from
    /// inside the sandbox's network namespace.
    Proxy(crate::bench_serve::ProxyArgs),
    /// Kubernetes cluster playgrounds: "Start lab" to every node Ready, one and two nodes,
    /// beside a lab of one machine of the same image (`kubernetes`) without a cluster.
    Cluster(crate::bench_serve::ClusterArgs),
    /// Sandboxes and lab sessions in a loop while the server is SIGKILLed every few
    /// minutes; then nothing may leak and nothing acknowledged may be lost.
    Soak(crate::bench_serve::SoakArgs),
}

pub(crate) fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

/// Spawns `cmd` with stdout piped; returns (time to its first stdout byte, time to exit).
fn timed(cmd: &mut Command) -> anyhow::Result<(Duration, Duration)> {
    use std::io::Read;
    let start = Instant::now();
    let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn()?;
    let mut stdout = child.stdout.take().context("no stdout")?;
    let mut byte = [0u8; 1];
    let got = stdout.read(&mut byte)?;
    let first = start.elapsed();
    let mut rest = Vec::new();
    stdout.read_to_end(&mut rest)?;
    let out = child.wait_with_output()?;
    let total = start.elapsed();
    if got == 0 || !out.status.success() {
        bail!(
            "{:?} failed: {}",
            cmd.get_program(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok((first, total))
}

struct Series {
    first: Vec<Duration>,
    total: Vec<Duration>,
}

impl Series {
    fn new(n: usize) -> Series {
        Series {
            first: Vec::with_capacity(n),
            total: Vec::with_capacity(n),
        }
    }
    fn push(&mut self, (first, total): (Duration, Duration)) {
        self.first.push(first);
        self.total.push(total);
    }
    fn sort(&mut self) {
        self.first.sort();
        self.total.sort();
    }
}

pub async fn run(cfg: &Config, cmd: BenchCommand) -> anyhow::Result<()> {
    let (n, image) = match cmd {
        BenchCommand::Start { n, image, profile } => match profile.as_str() {
            "standard" => (n, image),
            "machine" => return machine_start(cfg, n, &image),
            other => bail!("--profile {other:?} is not `standard` or `machine`"),
        },
        BenchCommand::Pool(args) => return crate::bench_serve::pool(cfg, args).await,
        BenchCommand::Terminal(args) => return crate::bench_serve::terminal(cfg, args).await,
        BenchCommand::Density(args) => return crate::bench_serve::density(cfg, args).await,
        BenchCommand::Execute(args) => return crate::bench_serve::execute(cfg, args).await,
        BenchCommand::Proxy(args) => return crate::bench_serve::proxy(cfg, args).await,
        BenchCommand::Soak(args) => return crate::bench_serve::soak(cfg, args).await,
        BenchCommand::Cluster(args) => return crate::bench_serve::cluster(cfg, args).await,
    };
    let driver = ContainerDriver::new(cfg.runtime.clone())?;
    let spec = SandboxSpec {
        id: SandboxId::generate(),
        image: image.clone(),
        limits: Limits::default(),
        hostname: None,
        env: Vec::new(),
        playground: None,
        pool: None,
    };
    let dir = cfg.runtime.data_dir.join("bench").join(spec.id.as_str());
    let baseline = sandlab_runtime::baseline::Baseline::new(&driver);
    baseline
        .prepare(&spec, &dir, &["/bin/echo", "ready"])
        .context("cannot prepare the baseline bundle")?;
    let (runc, root) = baseline.oci_runtime();
    let result = measure(n, &cfg.runtime.data_dir, &image, runc, root, &dir);
    baseline.remove(&dir)?;
    let mut columns = result?;
    for c in &mut columns {
        c.series.sort();
        c.cpu.sort();
    }
    println!("cold start, {n} runs each, alternating, image {image}; command `echo ready`");
    println!(
        "{:<44} {:>9} {:>9} {:>11} {:>9} {:>11}",
        "", "first p50", "p99", "exit p50", "p99", "CPU p50"
    );
    for c in &columns {
        println!(
            "{:<44} {:>9.1?} {:>9.1?} {:>11.1?} {:>9.1?} {:>11.1?}",
            c.name,
            percentile(&c.series.first, 0.5),
            percentile(&c.series.first, 0.99),
            percentile(&c.series.total, 0.5),
            percentile(&c.series.total, 0.99),
            percentile(&c.cpu, 0.5),
        );
    }
    let ratio = |a: Duration, b: Duration| a.as_secs_f64() / b.as_secs_f64().max(1e-9);
    let p50 = |i: usize| percentile(&columns[i].series.first, 0.5);
    let verdict = |ok: bool| if ok { "PASS" } else { "MISS" };
    // Columns: 0 bare OCI runtime, 1 sandlab on it, 2 sandlab native, 3 the unshare floor.
    println!(
        "sandlab on {} / bare {}: first output p50 {:.2}, p99 {:.2} (SPEC target <= 1.30)",
        driver_name(runc),
        driver_name(runc),
        ratio(p50(1), p50(0)),
        ratio(
            percentile(&columns[1].series.first, 0.99),
            percentile(&columns[0].series.first, 0.99)
        ),
    );
    let native = p50(2);
    println!(
        "native: first output p50 {:.1?} (target <= 15 ms: {}), {:.2}x the floor (target <= 3: {}), {:.2}x bare {}; CPU per start p50 {:.1?} (target <= 8 ms: {})",
        native,
        verdict(native <= Duration::from_millis(15)),
        ratio(native, p50(3)),
        verdict(ratio(native, p50(3)) <= 3.0),
        ratio(native, p50(0)),
        driver_name(runc),
        percentile(&columns[2].cpu, 0.5),
        verdict(percentile(&columns[2].cpu, 0.5) <= Duration::from_millis(8)),
    );
    Ok(())
}

/// `bench start --profile machine`: alternating runs of the standard profile's
/// `echo ready` (image `standard_image`), a machine's booted systemd
/// (`systemctl is-system-running` answers once create has waited for the boot) and a
/// machine's working `docker info`.
fn machine_start(cfg: &Config, n: usize, standard_image: &str) -> anyhow::Result<()> {
    let data = &cfg.runtime.data_dir;
    let run = |args: &[&str]| -> anyhow::Result<(Duration, Duration)> {
        timed(
            Command::new(self_exe())
                .arg("--data-dir")
                .arg(data)
                .arg("run")
                .args(args)
                .stdin(Stdio::null()),
        )
    };
    let machine = [
        "--image",
        "machine",
        "--profile",
        "machine",
        "--memory",
        "1G",
        "--pids",
        "2048",
        "--",
    ];
    let mut standard = Series::new(n);
    let mut systemd = Series::new(n);
    let mut docker = Series::new(n);
    for _ in 0..n {
        standard.push(run(&["--image", standard_image, "--", "echo", "ready"])?);
        systemd.push(run(
            &[&machine[..], &["systemctl", "is-system-running"]].concat()
        )?);
        docker.push(run(&[
            &machine[..],
            &[
                "sh",
                "-c",
                "until docker info >/dev/null 2>&1; do sleep 0.02; done; echo ready",
            ],
        ]
        .concat())?);
    }
    for s in [&mut standard, &mut systemd, &mut docker] {
        s.sort();
    }
    println!("machine start, {n} runs each, alternating");
    println!(
        "{:<44} {:>9} {:>9} {:>11}",
        "", "ready p50", "p99", "exit p50"
    );
    for (name, s) in [
        (
            format!("standard ({standard_image}): echo ready"),
            &standard,
        ),
        (
            "machine: systemd running (target <= 1.5s)".to_string(),
            &systemd,
        ),
        (
            "machine: docker info works (target <= 3s)".to_string(),
            &docker,
        ),
    ] {
        println!(
            "{:<44} {:>9.1?} {:>9.1?} {:>11.1?}",
            name,
            percentile(&s.first, 0.5),
            percentile(&s.first, 0.99),
            percentile(&s.total, 0.5)
        );
    }
    let ratio = |a: &Series| {
        percentile(&a.first, 0.5).as_secs_f64()
            / percentile(&standard.first, 0.5).as_secs_f64().max(1e-9)
    };
    println!(
        "ratio to the standard profile's first output, p50: systemd {:.1}, docker {:.1}",
        ratio(&systemd),
        ratio(&docker)
    );
    Ok(())
}

fn driver_name(p: &Path) -> String {
    p.file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// One column of `bench start`: a way to run `echo ready`, and what it took.
struct Column {
    name: String,
    series: Series,
    /// CPU time of the command and everything it waited for, per run.
    cpu: Vec<Duration>,
}

/// CPU time (user + system) of this process's waited-for children so far.
fn children_cpu() -> Duration {
    let usage = nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_CHILDREN);
    usage.map_or(Duration::ZERO, |u| {
        let t = |tv: nix::sys::time::TimeVal| {
            Duration::from_secs(tv.tv_sec().max(0) as u64)
                + Duration::from_micros(tv.tv_usec().max(0) as u64)
        };
        t(u.user_time()) + t(u.system_time())
    })
}

/// Runs the four columns one after another, `n` rounds: the bare OCI runtime on the
/// baseline bundle, `sandlab run` on that runtime, `sandlab run` on the native runtime,
/// and the floor: `unshare` of the same namespaces into the same root.
fn measure(
    n: usize,
    data_dir: &Path,
    image: &str,
    runc: &Path,
    root: &Path,
    bundle: &Path,
) -> anyhow::Result<Vec<Column>> {
    let oci = driver_name(runc);
    let mut columns: Vec<Column> = [
        format!("bare {oci} run (same bundle)"),
        format!("sandlab run on {oci}"),
        "sandlab run on native".to_owned(),
        "floor: unshare -Urpfmiun --cgroup, chroot".to_owned(),
    ]
    .into_iter()
    .map(|name| Column {
        name,
        series: Series::new(n),
        cpu: Vec::with_capacity(n),
    })
    .collect();
    let sandlab = |runtime: &str| {
        let mut cmd = Command::new(self_exe());
        cmd.env("SANDLAB_RUNTIME", runtime)
            .arg("--data-dir")
            .arg(data_dir)
            .args(["run", "--image", image, "--", "echo", "ready"])
            .stdin(Stdio::null());
        cmd
    };
    for i in 0..n {
        for (c, column) in columns.iter_mut().enumerate() {
            let mut cmd = match c {
                0 => {
                    let mut cmd = Command::new(runc);
                    cmd.arg("--root")
                        .arg(root)
                        .args(["run", "--bundle"])
                        .arg(bundle)
                        .arg(format!("bench-{}-{i}", std::process::id()))
                        .stdin(Stdio::null());
                    cmd
                }
                1 => sandlab(&oci),
                2 => sandlab("native"),
                _ => {
                    let mut cmd = Command::new("unshare");
                    cmd.args(["--user", "--map-root-user", "--pid", "--fork", "--mount"])
                        .args(["--ipc", "--uts", "--net", "--cgroup", "--root"])
                        .arg(bundle.join("rootfs"))
                        .args(["/bin/echo", "ready"])
                        .stdin(Stdio::null());
                    cmd
                }
            };
            let before = children_cpu();
            column.series.push(timed(&mut cmd)?);
            column.cpu.push(children_cpu().saturating_sub(before));
        }
    }
    Ok(columns)
}
