//! `sandlab`: the command line. Thin: parses flags, builds the runtime, prints results.
//! Errors are printed as one sentence on stderr; exit 2 for usage errors, 1 for failures,
//! and for `run`/`exec` the command's own exit code (137 killed for memory, 124 timeout).

mod bench;
mod bench_serve;
mod config;
mod drivers;
mod image_cmd;
mod lab_cmd;
mod lab_test;
mod org_cmd;
mod sandbox_cmd;
mod serve_cmd;
mod stdio;
mod store;
mod user_cmd;
mod watch;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(
    name = "sandlab",
    version,
    about = "Self-hostable hands-on labs and sandboxes"
)]
struct Cli {
    /// Data directory (images, sandboxes, volumes).
    #[arg(long, global = true, env = "SANDLAB_DATA_DIR", value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Configuration file (default: sandlab.toml if present).
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Build, import, pull, list and remove images.
    #[command(subcommand)]
    Image(image_cmd::ImageCommand),
    /// Create a sandbox, run one command in it, remove it; exits with the command's code.
    Run(sandbox_cmd::RunArgs),
    /// Long-lived sandboxes: create, exec, shell, ls, rm.
    #[command(subcommand)]
    Sandbox(sandbox_cmd::SandboxCommand),
    /// Author labs: validate and test.
    #[command(subcommand)]
    Lab(lab_cmd::LabCommand),
    /// Run the platform: HTTP API, terminals, warm pool, reaper (and the web UI).
    Serve(serve_cmd::ServeArgs),
    /// Manage user accounts in the database.
    #[command(subcommand)]
    User(user_cmd::UserCommand),
    /// Manage organisations, their caps and their members in the database.
    #[command(subcommand)]
    Org(org_cmd::OrgCommand),
    /// Benchmarks measured against a baseline in the same run.
    #[command(subcommand)]
    Bench(bench::BenchCommand),
}

/// A failure that maps to a specific exit code.
#[derive(Debug)]
pub struct Exit(pub u8);

impl std::fmt::Display for Exit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "exit {}", self.0)
    }
}

impl std::error::Error for Exit {}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            use clap::error::ErrorKind::*;
            if matches!(
                e.kind(),
                DisplayHelp | DisplayVersion | DisplayHelpOnMissingArgumentOrSubcommand
            ) {
                let _ = e.print();
                return ExitCode::from(if e.kind() == DisplayHelpOnMissingArgumentOrSubcommand {
                    2
                } else {
                    0
                });
            }
            let rendered = e.render().to_string();
            let first = rendered.lines().next().unwrap_or("error: invalid usage");
            eprintln!("{first} (see `sandlab --help`)");
            return ExitCode::from(2);
        }
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("SANDLAB_LOG")
                .unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    // Printing commands die quietly on a closed pipe (`sandlab sandbox ls | head`) like
    // other Unix tools, instead of panicking in `println!`; the server keeps ignoring
    // SIGPIPE, as its sockets report EPIPE as an error instead.
    if !matches!(cli.command, Command::Serve(_)) {
        // SAFETY: restoring the default disposition of one signal before any thread starts.
        unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    }
    // Sandbox init processes outlive the OCI runtime call that started them; as a child
    // subreaper this process inherits them and can reap them at once on removal.
    // SAFETY: prctl with integer arguments only changes this process's own attributes.
    unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1) };
    // The server spreads requests over every core; one-shot commands stay on one thread.
    let rt = if matches!(cli.command, Command::Serve(_)) {
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    };
    let rt = match rt {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let result = rt.block_on(dispatch(cli));
    // A blocked stdin reader must not keep the process alive after the command exited.
    rt.shutdown_timeout(std::time::Duration::from_millis(50));
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            if let Some(Exit(code)) = e.downcast_ref::<Exit>() {
                return ExitCode::from(*code);
            }
            eprintln!("error: {}", sentence(&e));
            ExitCode::from(1)
        }
    }
}

/// The error and its causes as one line: `A: B: C`.
fn sentence(e: &anyhow::Error) -> String {
    let parts: Vec<String> = e.chain().map(|c| c.to_string()).collect();
    let mut out: Vec<String> = Vec::new();
    for p in parts {
        if !out.iter().any(|o| o.contains(&p)) {
            out.push(p);
        }
    }
    out.join(": ")
}

async fn dispatch(cli: Cli) -> anyhow::Result<u8> {
    let cfg = config::Config::load(cli.config.as_deref(), cli.data_dir)?;
    match cli.command {
        Command::Image(cmd) => image_cmd::run(&cfg, cmd).await.map(|()| 0),
        Command::Run(args) => sandbox_cmd::run(&cfg, args).await,
        Command::Sandbox(cmd) => sandbox_cmd::sandbox(&cfg, cmd).await,
        Command::Lab(cmd) => lab_cmd::run(&cfg, cmd).await,
        Command::Serve(args) => serve_cmd::run(&cfg, args).await.map(|()| 0),
        Command::User(cmd) => user_cmd::run(&cfg, cmd).await.map(|()| 0),
        Command::Org(cmd) => org_cmd::run(&cfg, cmd).await.map(|()| 0),
        Command::Bench(cmd) => bench::run(&cfg, cmd).await.map(|()| 0),
    }
}
