//! `sandlab bench start`: cold start of `sandlab run -- true` against the bare OCI
//! runtime running the same image with the same isolation (`runc run` of a bundle whose
//! init is `true`), side by side, alternating, in one run. Prints p50/p99 of both and
//! their ratio. The SPEC target is a ratio of at most 1.3.

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
    },
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

fn timed(cmd: &mut Command) -> anyhow::Result<Duration> {
    let start = Instant::now();
    let out = cmd.stdout(Stdio::null()).stderr(Stdio::piped()).output()?;
    let took = start.elapsed();
    if !out.status.success() {
        bail!("{:?} failed: {}", cmd.get_program(), String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(took)
}

pub async fn run(cfg: &Config, cmd: BenchCommand) -> anyhow::Result<()> {
    let BenchCommand::Start { n, image } = cmd;
    let driver = ContainerDriver::new(cfg.runtime.clone())?;
    let spec = SandboxSpec { id: SandboxId::generate(), image: image.clone(), limits: Limits::default(), hostname: None, env: Vec::new() };
    let dir = cfg.runtime.data_dir.join("bench").join(spec.id.as_str());
    driver.baseline_bundle(&spec, &dir, &["/bin/true"]).context("cannot prepare the baseline bundle")?;
    let (runc, root) = driver.oci_runtime();
    let result = measure(n, &cfg.runtime.data_dir, &image, runc, root, &dir);
    driver.remove_baseline_bundle(&dir)?;
    let (mut ours, mut base) = result?;
    ours.sort();
    base.sort();
    let (o50, o99, b50, b99) = (percentile(&ours, 0.5), percentile(&ours, 0.99), percentile(&base, 0.5), percentile(&base, 0.99));
    println!("cold start, {n} runs each, image {image}");
    println!("{:<34} {:>9} {:>9}", "", "p50", "p99");
    println!("{:<34} {:>9.1?} {:>9.1?}", format!("bare {} run (same bundle)", driver_name(runc)), b50, b99);
    println!("{:<34} {:>9.1?} {:>9.1?}", "sandlab run -- true", o50, o99);
    println!("ratio p50 {:.2}  p99 {:.2}  (target <= 1.30)", o50.as_secs_f64() / b50.as_secs_f64(), o99.as_secs_f64() / b99.as_secs_f64());
    Ok(())
}

fn driver_name(p: &Path) -> String {
    p.file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_default()
}

fn measure(n: usize, data_dir: &Path, image: &str, runc: &Path, root: &Path, bundle: &Path) -> anyhow::Result<(Vec<Duration>, Vec<Duration>)> {
    let mut ours = Vec::with_capacity(n);
    let mut base = Vec::with_capacity(n);
    for i in 0..n {
        let name = format!("bench-{}-{i}", std::process::id());
        base.push(timed(Command::new(runc).arg("--root").arg(root).args(["run", "--bundle"]).arg(bundle).arg(&name).stdin(Stdio::null()))?);
        ours.push(timed(Command::new(self_exe()).arg("--data-dir").arg(data_dir).args(["run", "--image", image, "--", "true"]).stdin(Stdio::null()))?);
    }
    Ok((ours, base))
}
