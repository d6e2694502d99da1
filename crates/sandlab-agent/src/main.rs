//! `sandlab-agent`: the PID 1 of every Sandlab sandbox.
//!
//! It accepts host connections on a Unix socket (inherited as the fd named by
//! `SANDLAB_AGENT_FD`, or bound with `--listen PATH` for tests and debugging) or on a
//! TCP address (`--listen-tcp ADDR`, for a sandbox the host reaches over a network:
//! a Kubernetes pod, a microVM), and serves the protocol of `sandlab-proto` on each
//! connection: exec with pipes or a PTY, file operations, ping and shutdown. As PID 1
//! it reaps every orphan and on SIGTERM terminates every process before exiting; when
//! not PID 1 it makes itself a child subreaper so it behaves the same for its own
//! descendants.
//!
//! # Authentication
//! With `--token-file PATH` every connection must present the token held in that
//! file in its hello (see "# Handshake" in `sandlab-proto`); a missing or wrong token
//! is answered with `unauthorized` and the connection closed. Over TCP a token is
//! mandatory: the agent refuses to start without one. The token is read from a file
//! rather than the command line or the environment, so it never shows in
//! `/proc/*/cmdline` and children (whose environment starts from the agent's) never
//! inherit it; the file itself should be readable only by the agent's user. Every
//! connection must finish its handshake within `--handshake-timeout-ms` (10 s by
//! default), so a peer that connects and stays silent is dropped.
//!
//! With port 0, `--addr-file PATH` receives the bound address (`IP:PORT` and a
//! newline, written atomically) once the agent listens.
//!
//! The agent is silent (stdio is `/dev/null`) unless `SANDLAB_AGENT_LOG=stderr`.

mod agent;
mod child;
mod conn;
mod exec;
mod fdio;
mod files;
mod launch;
mod listener;
mod log;
mod outbound;
mod ports;
mod pty;
mod pump;
mod reaper;
mod user;
mod window;

use std::ffi::OsString;
use std::io::Read;
use std::net::SocketAddr;
use std::os::fd::RawFd;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use sandlab_proto::{AuthToken, HANDSHAKE_TIMEOUT};
use tokio::signal::unix::{signal, SignalKind};

use crate::agent::{Admission, Agent};
use crate::listener::{Bound, Listen};
use crate::log::log;
use crate::reaper::Reaper;

const USAGE: &str = "Usage: sandlab-agent [--listen PATH | --listen-tcp ADDR [--addr-file PATH]]
                     [--token-file PATH] [--handshake-timeout-ms MS] [--term-grace-ms MS]
       sandlab-agent --copy-to PATH
Without --listen or --listen-tcp, the listening socket is the inherited fd named by
SANDLAB_AGENT_FD. With --token-file, every connection must present the token in that
file; --listen-tcp requires it. --addr-file receives the bound TCP address.";

#[derive(Debug, PartialEq, Eq)]
struct Args {
    listen: Option<PathBuf>,
    listen_tcp: Option<SocketAddr>,
    token_file: Option<PathBuf>,
    addr_file: Option<PathBuf>,
    handshake_timeout: Duration,
    grace: Duration,
    version: bool,
}

impl Args {
    fn listen(&self) -> Listen<'_> {
        match (&self.listen, self.listen_tcp) {
            (Some(path), _) => Listen::Unix(path),
            (None, Some(addr)) => Listen::Tcp(addr),
            (None, None) => Listen::Inherited,
        }
    }
}

fn parse_args(args: impl IntoIterator<Item = OsString>) -> Result<Args, String> {
    let mut parsed = Args {
        listen: None,
        listen_tcp: None,
        token_file: None,
        addr_file: None,
        handshake_timeout: HANDSHAKE_TIMEOUT,
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
            Some("--listen-tcp") => {
                let addr = args.next().and_then(|v| v.to_str()?.parse().ok());
                parsed.listen_tcp =
                    Some(addr.ok_or("--listen-tcp needs an address such as 0.0.0.0:7070.")?);
            }
            Some("--token-file") => {
                let path = args.next().ok_or("--token-file needs a path.")?;
                parsed.token_file = Some(PathBuf::from(path));
            }
            Some("--addr-file") => {
                let path = args.next().ok_or("--addr-file needs a path.")?;
                parsed.addr_file = Some(PathBuf::from(path));
            }
            Some("--handshake-timeout-ms") => {
                parsed.handshake_timeout = millis(args.next(), "--handshake-timeout-ms")?;
                if parsed.handshake_timeout.is_zero() {
                    return Err("--handshake-timeout-ms must be more than 0.".into());
                }
            }
            Some("--term-grace-ms") => parsed.grace = millis(args.next(), "--term-grace-ms")?,
            Some("--version") => parsed.version = true,
            _ => return Err(format!("Unexpected argument {arg:?}.")),
        }
    }
    if parsed.listen.is_some() && parsed.listen_tcp.is_some() {
        return Err("--listen and --listen-tcp exclude each other.".into());
    }
    if parsed.listen_tcp.is_some() && parsed.token_file.is_none() {
        return Err(
            "--listen-tcp needs --token-file: over TCP the agent only serves hosts that present its token."
                .into(),
        );
    }
    if parsed.addr_file.is_some() && parsed.listen_tcp.is_none() {
        return Err("--addr-file only applies to --listen-tcp.".into());
    }
    Ok(parsed)
}

fn millis(value: Option<OsString>, flag: &str) -> Result<Duration, String> {
    let ms = value.and_then(|v| v.to_str()?.parse().ok());
    ms.map(Duration::from_millis)
        .ok_or_else(|| format!("{flag} needs a number of milliseconds."))
}

/// Reads the token from the file named by `--token-file`; the error is one sentence.
fn load_token(path: &Path) -> Result<AuthToken, String> {
    let mut text = String::new();
    let limit = AuthToken::MAX_LEN as u64 + 3;
    std::fs::File::open(path)
        .and_then(|f| f.take(limit).read_to_string(&mut text))
        .map_err(|e| format!("Cannot read the token file {}: {e}.", path.display()))?;
    AuthToken::from_secret(&text)
        .map_err(|e| format!("The token file {} is unusable: {e}", path.display()))
}

/// Writes the bound address for whoever started the agent with port 0: to a temporary
/// file renamed into place, so a reader never sees half an address.
fn write_addr_file(path: &Path, addr: SocketAddr) -> std::io::Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    std::fs::write(&tmp, format!("{addr}\n"))?;
    std::fs::rename(&tmp, path)
}

/// `--copy-to PATH`: copies this executable to `PATH` (mode 0555), written aside and
/// renamed into place. A Kubernetes Pod's init container runs it from the agent image to
/// put the agent into a volume the sandbox's own image then starts it from.
fn copy_to(path: &std::ffi::OsStr) -> ExitCode {
    use std::os::unix::fs::PermissionsExt;
    let path = std::path::Path::new(path);
    let tmp = path.with_extension("tmp");
    let done = std::fs::copy("/proc/self/exe", &tmp)
        .and_then(|_| std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o555)))
        .and_then(|()| std::fs::rename(&tmp, path));
    match done {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!(
                "sandlab-agent: cannot copy the agent to {}: {e}",
                path.display()
            );
            ExitCode::FAILURE
        }
    }
}

fn main() -> ExitCode {
    let mut argv = std::env::args_os().skip(1);
    match argv.next() {
        Some(a) if a == "--launch" => return launch::main(),
        Some(a) if a == "--copy-to" => {
            return match (argv.next(), argv.next()) {
                (Some(path), None) => copy_to(&path),
                _ => {
                    eprintln!("sandlab-agent: --copy-to takes one path and nothing else.");
                    ExitCode::from(2)
                }
            };
        }
        _ => {}
    }
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
    // Before stdio goes to /dev/null, so whoever starts the agent sees why it refused.
    let token = match args.token_file.as_deref().map(load_token).transpose() {
        Ok(token) => token,
        Err(msg) => {
            eprintln!("sandlab-agent: {msg}");
            return ExitCode::from(2);
        }
    };
    setup_stdio();
    harden();
    let listener = match open_listener(&args) {
        Ok(listener) => listener,
        Err(msg) => {
            log!("{msg}");
            return ExitCode::FAILURE;
        }
    };
    let admission = Admission {
        token,
        handshake_timeout: args.handshake_timeout,
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
    let code = runtime.block_on(run(listener, admission, args.grace));
    for path in [&args.listen, &args.addr_file].into_iter().flatten() {
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

/// Binds the socket and, with `--addr-file`, publishes its address.
fn open_listener(args: &Args) -> Result<Bound, String> {
    let bound = Bound::open(args.listen())?;
    if let Some(addr) = bound.tcp_addr() {
        let addr = addr.map_err(|e| format!("cannot read the bound address: {e}"))?;
        log!("listening on {addr}");
        if let Some(path) = &args.addr_file {
            write_addr_file(path, addr)
                .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        }
    }
    Ok(bound)
}

async fn run(listener: Bound, admission: Admission, grace: Duration) -> ExitCode {
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
    let listener = match listener.register() {
        Ok(listener) => listener,
        Err(e) => {
            log!("cannot register the socket: {e}");
            return ExitCode::FAILURE;
        }
    };
    let agent = Arc::new(Agent::new(reaper.clone(), admission));
    log!("ready (pid {})", std::process::id());
    loop {
        tokio::select! {
            accepted = listener.accept(&agent) => match accepted {
                Ok(()) => {}
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

    #[test]
    fn tcp_arguments() {
        let a = parse(&[
            "--listen-tcp",
            "127.0.0.1:0",
            "--token-file",
            "/run/token",
            "--addr-file",
            "/tmp/addr",
            "--handshake-timeout-ms",
            "250",
        ])
        .unwrap();
        assert_eq!(a.listen_tcp, Some("127.0.0.1:0".parse().unwrap()));
        assert_eq!(a.token_file, Some(PathBuf::from("/run/token")));
        assert_eq!(a.addr_file, Some(PathBuf::from("/tmp/addr")));
        assert_eq!(a.handshake_timeout, Duration::from_millis(250));
        assert!(matches!(a.listen(), Listen::Tcp(_)));
        assert_eq!(parse(&[]).unwrap().handshake_timeout, HANDSHAKE_TIMEOUT);

        let no_token = parse(&["--listen-tcp", "0.0.0.0:7070"]).unwrap_err();
        assert!(no_token.contains("--token-file"), "{no_token}");
        assert!(parse(&["--listen-tcp", "nowhere"]).is_err());
        assert!(parse(&["--listen-tcp"]).is_err());
        let both = [
            "--listen",
            "/s",
            "--listen-tcp",
            "[::1]:1",
            "--token-file",
            "t",
        ];
        assert!(parse(&both).is_err());
        assert!(parse(&["--listen", "/s", "--addr-file", "/a"]).is_err());
        assert!(parse(&["--handshake-timeout-ms", "0"]).is_err());
        // A token is allowed on the Unix socket too.
        let a = parse(&["--listen", "/s", "--token-file", "t"]).unwrap();
        assert!(matches!(a.listen(), Listen::Unix(_)));
    }

    #[test]
    fn token_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        std::fs::write(&path, "0123456789abcdef0123\n").unwrap();
        assert_eq!(
            load_token(&path).unwrap(),
            AuthToken::new("0123456789abcdef0123")
        );
        std::fs::write(&path, "short\n").unwrap();
        let err = load_token(&path).unwrap_err();
        assert!(
            err.contains("unusable") && err.contains("at least 16"),
            "{err}"
        );
        std::fs::write(&path, "x".repeat(5000)).unwrap();
        assert!(load_token(&path).unwrap_err().contains("longer"));
        let err = load_token(&dir.path().join("missing")).unwrap_err();
        assert!(err.starts_with("Cannot read the token file"), "{err}");
    }
}
