//! `sandlab-agent`: the PID 1 of every Sandlab sandbox.
//!
//! It accepts host connections on a Unix socket (inherited as the fd named by
//! `SANDLAB_AGENT_FD`, or bound with `--listen PATH` for tests and debugging) and
//! serves the protocol of `sandlab-proto` on each: exec with pipes or a PTY, file
//! operations, ping and shutdown. As PID 1 it reaps every orphan and on SIGTERM
//! terminates every process before exiting; when not PID 1 it makes itself a child
//! subreaper so it behaves the same for its own descendants.
//!
//! The agent is silent (stdio is `/dev/null`) unless `SANDLAB_AGENT_LOG=stderr`.

mod agent;
mod child;
mod conn;
mod exec;
mod fdio;
mod files;
mod log;
mod outbound;
mod pty;
mod pump;
mod reaper;
mod user;
mod window;

use std::ffi::OsString;
use std::os::fd::{FromRawFd, RawFd};
use std::os::unix::fs::FileTypeExt;
use std::os::unix::net::UnixListener as StdListener;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use tokio::signal::unix::{signal, SignalKind};

use crate::agent::Agent;
use crate::log::log;
use crate::reaper::Reaper;

const USAGE: &str = "Usage: sandlab-agent [--listen PATH] [--term-grace-ms MS]
Without --listen, the listening socket is the inherited fd named by SANDLAB_AGENT_FD.";

#[derive(Debug, PartialEq, Eq)]
struct Args {
    listen: Option<PathBuf>,
    grace: Duration,
    version: bool,
}

fn parse_args(args: impl IntoIterator<Item = OsString>) -> Result<Args, String> {
    let mut parsed = Args {
        listen: None,
        grace: Duration::from_secs(5),
        version: false,
    };
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        match arg.to_str() {
            Some("--listen") => {
                let path = args.next().ok_or("--listen needs a path.")?;
                parsed.listen = Some(PathBuf::from(path));
            }
            Some("--term-grace-ms") => {
                let ms = args.next().and_then(|v| v.to_str()?.parse().ok());
                parsed.grace = Duration::from_millis(
                    ms.ok_or("--term-grace-ms needs a number of milliseconds.")?,
                );
            }
            Some("--version") => parsed.version = true,
            _ => return Err(format!("Unexpected argument {arg:?}.")),
        }
    }
    Ok(parsed)
}

fn main() -> ExitCode {
    // First of all: nothing inherited may leak into user processes.
    fdio::cloexec_from_3();
    let args = match parse_args(std::env::args_os().skip(1)) {
        Ok(args) => args,
        Err(msg) => {
            eprintln!("sandlab-agent: {msg}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    if args.version {
        println!("sandlab-agent {}", env!("CARGO_PKG_VERSION"));
        return ExitCode::SUCCESS;
    }
    setup_stdio();
    harden();
    let listener = match open_listener(&args) {
        Ok(listener) => listener,
        Err(msg) => {
            log!("{msg}");
            return ExitCode::FAILURE;
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            log!("could not start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let code = runtime.block_on(run(listener, args.grace));
    if let Some(path) = &args.listen {
        let _ = std::fs::remove_file(path);
    }
    code
}

/// Logging to stderr when asked, otherwise stdio on `/dev/null`.
fn setup_stdio() {
    let log_to_stderr = std::env::var_os("SANDLAB_AGENT_LOG").is_some_and(|v| v == "stderr");
    if log_to_stderr {
        log::enable();
    }
    // SAFETY: open returns a new fd or -1; dup2 onto 0..=2 replaces our own stdio.
    unsafe {
        let null = libc::open(c"/dev/null".as_ptr(), libc::O_RDWR | libc::O_CLOEXEC);
        if null < 0 {
            return;
        }
        let targets: &[RawFd] = if log_to_stderr { &[0] } else { &[0, 1, 2] };
        for &fd in targets {
            libc::dup2(null, fd);
        }
        if null > 2 {
            libc::close(null);
        }
    }
}

fn harden() {
    // Not dumpable: sandbox processes cannot ptrace the agent or read its memory.
    if let Err(e) = nix::sys::prctl::set_dumpable(false) {
        log!("PR_SET_DUMPABLE failed: {e}");
    }
    if std::process::id() != 1 {
        // Orphans of our children come to us, as they would to PID 1.
        if let Err(e) = nix::sys::prctl::set_child_subreaper(true) {
            log!("PR_SET_CHILD_SUBREAPER failed: {e}");
        }
    }
    // One malloc arena: the agent is mostly one thread and should stay small.
    // SAFETY: mallopt only tunes the allocator.
    unsafe { libc::mallopt(libc::M_ARENA_MAX, 1) };
}

fn open_listener(args: &Args) -> Result<StdListener, String> {
    let listener = match &args.listen {
        Some(path) => {
            if std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_socket()) {
                let _ = std::fs::remove_file(path);
            }
            StdListener::bind(path)
                .map_err(|e| format!("cannot listen on {}: {e}", path.display()))?
        }
        None => {
            let var =
                std::env::var("SANDLAB_AGENT_FD").map_err(|_| format!("no socket: {USAGE}"))?;
            let fd: RawFd = var.parse().ok().filter(|fd| *fd >= 3).ok_or_else(|| {
                format!("SANDLAB_AGENT_FD={var:?} is not an fd number of 3 or more")
            })?;
            if !is_listening_socket(fd) {
                return Err(format!("fd {fd} is not a listening socket"));
            }
            // SAFETY: the fd was inherited for us alone, is open (checked above) and
            // nothing else in this process owns it.
            unsafe { StdListener::from_raw_fd(fd) }
        }
    };
    listener
        .set_nonblocking(true)
        .map_err(|e| format!("cannot make the socket non-blocking: {e}"))?;
    Ok(listener)
}

fn is_listening_socket(fd: RawFd) -> bool {
    let mut value: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: getsockopt writes at most `len` bytes into `value`.
    let rc = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_ACCEPTCONN,
            (&mut value as *mut libc::c_int).cast(),
            &mut len,
        )
    };
    rc == 0 && value == 1
}

async fn run(listener: StdListener, grace: Duration) -> ExitCode {
    let reaper = Reaper::new();
    // Register every signal before the first child exists.
    let signals = (
        signal(SignalKind::child()),
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    );
    let (Ok(sigchld), Ok(mut sigterm), Ok(mut sigint)) = signals else {
        log!("cannot install signal handlers");
        return ExitCode::FAILURE;
    };
    tokio::spawn(reaper.clone().run(sigchld));
    let listener = match tokio::net::UnixListener::from_std(listener) {
        Ok(listener) => listener,
        Err(e) => {
            log!("cannot register the socket: {e}");
            return ExitCode::FAILURE;
        }
    };
    let agent = Arc::new(Agent::new(reaper.clone()));
    log!("ready (pid {})", std::process::id());
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((sock, _)) => drop(tokio::spawn(conn::serve(agent.clone(), sock))),
                Err(e) => {
                    log!("accept failed: {e}");
                    // Out of fds or similar: back off instead of spinning.
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            _ = sigterm.recv() => { log!("SIGTERM"); break }
            _ = sigint.recv() => { log!("SIGINT"); break }
            () = agent.shutdown.notified() => break,
        }
    }
    drop(listener);
    reaper.terminate_all(grace).await;
    log!("exiting");
    ExitCode::SUCCESS
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Args, String> {
        parse_args(args.iter().map(OsString::from))
    }

    #[test]
    fn arguments() {
        let a = parse(&["--listen", "/tmp/s", "--term-grace-ms", "100"]).unwrap();
        assert_eq!(a.listen, Some(PathBuf::from("/tmp/s")));
        assert_eq!(a.grace, Duration::from_millis(100));
        assert!(parse(&["--listen"]).is_err());
        assert!(parse(&["--term-grace-ms", "x"]).is_err());
        assert!(parse(&["--bogus"]).is_err());
        assert_eq!(parse(&[]).unwrap().listen, None);
    }
}
