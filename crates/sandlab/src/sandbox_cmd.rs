//! `sandlab run` and `sandlab sandbox create|exec|shell|ls|rm`.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Subcommand};
use sandlab_core::{parse_duration, ByteSize, Limits, NetworkMode, Profile, SandboxId};
use sandlab_proto::ExecRequest;
use sandlab_runtime::manager::{CreateRequest, SandboxManager};

use crate::config::Config;
use crate::stdio;
use crate::watch;

const AGENT_TIMEOUT: Duration = Duration::from_secs(10);

fn duration(s: &str) -> Result<Duration, String> {
    parse_duration(s).map_err(|e| e.to_string())
}

fn size(s: &str) -> Result<ByteSize, String> {
    s.parse::<ByteSize>().map_err(|e| e.to_string())
}

fn network(s: &str) -> Result<NetworkMode, String> {
    s.parse::<NetworkMode>().map_err(|e| e.to_string())
}

fn profile(s: &str) -> Result<Profile, String> {
    s.parse::<Profile>().map_err(|e| e.to_string())
}

#[derive(Args, Debug, Clone)]
pub struct LimitArgs {
    /// Image to start from.
    #[arg(long, default_value = "debian")]
    image: String,
    /// Memory limit (swap off), e.g. 512M.
    #[arg(long, value_parser = size, default_value = "512M")]
    memory: ByteSize,
    /// CPU limit in cores, e.g. 0.5.
    #[arg(long, default_value_t = 1.0)]
    cpus: f64,
    /// Maximum number of processes.
    #[arg(long, default_value_t = 256)]
    pids: u32,
    /// Size of the writable layer, e.g. 2G.
    #[arg(long, value_parser = size, default_value = "2G")]
    disk: ByteSize,
    /// `none` (loopback only) or `egress` (NAT to the internet, private ranges dropped).
    #[arg(long, value_parser = network, default_value = "none")]
    network: NetworkMode,
    /// `standard` (a hardened shell) or `machine` (systemd as PID 1, Docker inside).
    #[arg(long, value_parser = profile, default_value = "standard")]
    profile: Profile,
}

impl LimitArgs {
    fn limits(&self) -> Limits {
        Limits {
            memory: self.memory,
            cpus: self.cpus,
            pids: self.pids,
            disk: self.disk,
            network: self.network,
            profile: self.profile,
        }
    }
}

#[derive(Args, Debug)]
pub struct RunArgs {
    #[command(flatten)]
    limits: LimitArgs,
    /// Kill the command after this long and exit 124, e.g. 30s.
    #[arg(long, value_parser = duration)]
    timeout: Option<Duration>,
    /// Keep stdin open and forward it.
    #[arg(short, long)]
    interactive: bool,
    /// Allocate a terminal.
    #[arg(short, long)]
    tty: bool,
    /// The command and its arguments.
    #[arg(last = true, required = true, value_name = "CMD")]
    cmd: Vec<String>,
}

#[derive(Subcommand, Debug)]
pub enum SandboxCommand {
    /// Create and start a sandbox; prints its id.
    Create {
        #[command(flatten)]
        limits: LimitArgs,
        /// Remove the sandbox after this long.
        #[arg(long, value_parser = duration, default_value = "1h")]
        ttl: Duration,
        /// Hostname inside the sandbox (default: the id).
        #[arg(long)]
        hostname: Option<String>,
    },
    /// Run a command in a sandbox; exits with its code.
    Exec {
        id: SandboxId,
        #[arg(short, long)]
        interactive: bool,
        #[arg(short, long)]
        tty: bool,
        #[arg(long, value_parser = duration)]
        timeout: Option<Duration>,
        /// User to run as (name or uid[:gid]).
        #[arg(short, long)]
        user: Option<String>,
        /// Working directory.
        #[arg(short, long)]
        workdir: Option<String>,
        #[arg(last = true, required = true, value_name = "CMD")]
        cmd: Vec<String>,
    },
    /// Open an interactive shell in a sandbox.
    Shell { id: SandboxId },
    /// List sandboxes.
    Ls,
    /// Print sandbox records as JSON (all of them when no id is given).
    Inspect { ids: Vec<SandboxId> },
    /// Kill every process in a sandbox but its init (a fork bomb, a runaway program); the
    /// sandbox keeps running and accepts exec again.
    KillProcesses { id: SandboxId },
    /// Remove sandboxes.
    Rm {
        #[arg(required = true)]
        ids: Vec<SandboxId>,
    },
    /// Enforce a sandbox's deadline (started in the background by `create` and `run`).
    #[command(hide = true)]
    Watch {
        id: SandboxId,
        #[arg(long)]
        parent: Option<u32>,
    },
}

/// The runtime over the shared store: the CLI and `sandlab serve` keep sandbox records in
/// the same database, so each sees (and reconciles) the other's sandboxes correctly.
pub async fn manager(cfg: &Config, usage: crate::drivers::Use) -> anyhow::Result<SandboxManager> {
    let (drivers, store) = tokio::join!(
        crate::drivers::from_config(cfg, usage),
        crate::store::open(cfg)
    );
    let (drivers, store) = (drivers?, store?);
    Ok(SandboxManager::new(
        drivers,
        store.clone().records(),
        store.leases(),
    )?)
}

pub async fn run(cfg: &Config, args: RunArgs) -> anyhow::Result<u8> {
    let mgr = manager(cfg, crate::drivers::Use::Create).await?;
    tracing::debug!("runtime ready");
    let ttl = args
        .timeout
        .map(|t| t + Duration::from_secs(60))
        .unwrap_or(Duration::from_secs(24 * 3600));
    let rec = crate::image_cmd::create_building_image(
        cfg,
        &mgr,
        CreateRequest {
            image: args.limits.image.clone(),
            limits: args.limits.limits(),
            ttl,
            // This process removes the sandbox when the command ends; if it is killed,
            // the next reconciliation (any `sandbox ls`/`create`, or the server) does.
            owner_process: Some(mgr.holder().clone()),
            ..CreateRequest::default()
        },
    )
    .await?;
    let req = ExecRequest {
        argv: args.cmd,
        timeout: args.timeout,
        tty: args.tty.then(stdio::terminal_size),
        stdin: args.interactive,
        ..ExecRequest::default()
    };
    let result = exec_attached(&mgr, &rec.id, req, args.interactive, args.tty).await;
    if let Err(e) = mgr.remove(&rec.id).await {
        tracing::warn!(sandbox.id = %rec.id, error = %e, "could not remove sandbox");
    }
    result
}

async fn exec_attached(
    mgr: &SandboxManager,
    id: &SandboxId,
    req: ExecRequest,
    interactive: bool,
    tty: bool,
) -> anyhow::Result<u8> {
    tracing::debug!(sandbox.id = %id, "sandbox running");
    let agent = mgr
        .agent(id, AGENT_TIMEOUT)
        .await
        .with_context(|| format!("cannot reach the agent of {id}"))?;
    tracing::debug!(sandbox.id = %id, "agent connected");
    let session = agent.exec(req).await?;
    tracing::debug!(sandbox.id = %id, "exec started");
    let status = stdio::attach(session, interactive, tty).await?;
    Ok(status.shell_code().clamp(0, 255) as u8)
}

pub async fn sandbox(cfg: &Config, cmd: SandboxCommand) -> anyhow::Result<u8> {
    let usage = match cmd {
        SandboxCommand::Create { .. } => crate::drivers::Use::Create,
        _ => crate::drivers::Use::Manage,
    };
    let mgr = manager(cfg, usage).await?;
    match cmd {
        SandboxCommand::Create {
            limits,
            ttl,
            hostname,
        } => {
            mgr.reconcile().await?;
            let rec = crate::image_cmd::create_building_image(
                cfg,
                &mgr,
                CreateRequest {
                    image: limits.image.clone(),
                    limits: limits.limits(),
                    ttl,
                    hostname,
                    ..CreateRequest::default()
                },
            )
            .await?;
            watch::spawn(cfg, &rec.id, None);
            println!("{}", rec.id);
        }
        SandboxCommand::Exec {
            id,
            interactive,
            tty,
            timeout,
            user,
            workdir,
            cmd,
        } => {
            mgr.get(&id).await?;
            let req = ExecRequest {
                argv: cmd,
                timeout,
                user,
                cwd: workdir,
                tty: tty.then(stdio::terminal_size),
                stdin: interactive,
                ..ExecRequest::default()
            };
            return exec_attached(&mgr, &id, req, interactive, tty).await;
        }
        SandboxCommand::Shell { id } => {
            mgr.get(&id).await?;
            let tty = std::io::stdin().is_terminal();
            let script =
                "if command -v bash >/dev/null 2>&1; then exec bash -l; else exec sh -l; fi";
            let req = ExecRequest {
                argv: vec!["/bin/sh".into(), "-c".into(), script.into()],
                tty: tty.then(stdio::terminal_size),
                stdin: true,
                ..ExecRequest::default()
            };
            return exec_attached(&mgr, &id, req, true, tty).await;
        }
        SandboxCommand::Ls => {
            mgr.reconcile().await?;
            println!(
                "{:<16} {:<9} {:<12} {:<7} {:>6} {:>8} {:>13} {:>5}  REASON",
                "ID", "STATE", "IMAGE", "NETWORK", "AGE", "TTL LEFT", "MEMORY", "PIDS"
            );
            for r in mgr.list().await? {
                let age = Duration::from_millis(
                    sandlab_runtime::manager::now_ms().saturating_sub(r.created_at_ms),
                );
                let left = SandboxManager::remaining(&r);
                let usage = match r.state {
                    sandlab_core::SandboxState::Running => mgr.stats(&r.id).await.ok(),
                    _ => None,
                };
                let (memory, pids) = match usage {
                    Some(st) => (
                        format!("{}M/{}", st.memory_bytes >> 20, r.limits.memory),
                        st.pids.to_string(),
                    ),
                    None => ("-".into(), "-".into()),
                };
                println!(
                    "{:<16} {:<9} {:<12} {:<7} {:>6} {:>8} {:>13} {:>5}  {}",
                    r.id,
                    r.state,
                    r.image,
                    r.limits.network,
                    human(age),
                    human(left),
                    memory,
                    pids,
                    r.reason.as_deref().unwrap_or("")
                );
            }
        }
        SandboxCommand::Inspect { ids } => {
            let all = mgr.list().await?;
            let picked: Vec<_> = if ids.is_empty() {
                all
            } else {
                for id in &ids {
                    if !all.iter().any(|r| &r.id == id) {
                        anyhow::bail!("sandbox {id} does not exist");
                    }
                }
                all.into_iter().filter(|r| ids.contains(&r.id)).collect()
            };
            println!("{}", serde_json::to_string_pretty(&picked)?);
        }
        SandboxCommand::KillProcesses { id } => {
            mgr.get(&id).await?;
            let killed = mgr.kill_processes(&id).await?;
            println!("killed {killed} processes in {id}");
        }
        SandboxCommand::Rm { ids } => {
            for id in ids {
                mgr.get(&id).await?;
                mgr.remove(&id).await?;
                println!("removed {id}");
            }
        }
        SandboxCommand::Watch { id, parent } => watch::watch(&mgr, &id, parent).await?,
    }
    Ok(0)
}

fn human(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0..=119 => format!("{s}s"),
        120..=7199 => format!("{}m", s / 60),
        _ => format!("{}h", s / 3600),
    }
}

/// The path of this executable, for starting watchers.
pub fn self_exe() -> PathBuf {
    std::env::current_exe().unwrap_or_else(|_| PathBuf::from("sandlab"))
}
