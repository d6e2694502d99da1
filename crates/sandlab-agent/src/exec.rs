//! Exec: validating a request into an [`ExecSpec`], spawning the child (pipes or a
//! PTY, its own process group, the requested identity) and supervising it until its
//! exit is reported.

use std::ffi::CString;
use std::io;
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use sandlab_proto::frame::FrameKind;
use sandlab_proto::messages::{Control, ErrorCode, ExecStart, ExitStatus, Reply};
use sandlab_proto::validate::check_exec;
use sandlab_proto::TtySize;
use tokio::sync::{mpsc, oneshot, watch};

use crate::conn::{Input, StreamCtx};
use crate::fdio::Fd;
use crate::log::chain;
use crate::pump::{self, Output};
use crate::reaper::{decode_status, kill_group, RawStatus, Reaper};
use crate::user::{self, Identity};
use crate::{child, pty};

const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// A validated exec request, ready to spawn.
#[derive(Debug)]
pub struct ExecSpec {
    argv: Vec<String>,
    env: Vec<(String, String)>,
    cwd: CString,
    ident: Identity,
    timeout: Option<Duration>,
    tty: Option<TtySize>,
    stdin: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    #[error("The exec request is invalid.")]
    Invalid(#[source] sandlab_proto::validate::ValidationError),
    #[error("The user could not be resolved.")]
    User(#[source] user::UserError),
    #[error("The working directory {0} does not exist.")]
    NoCwd(String),
    #[error("The working directory {0} is not a directory.")]
    CwdNotDir(String),
    #[error("Could not open a pseudo-terminal.")]
    Pty(#[source] io::Error),
    #[error("Could not start {program:?}.")]
    Spawn {
        program: String,
        #[source]
        source: io::Error,
    },
}

impl ExecError {
    /// The reply telling the host, with the whole cause chain in the message.
    fn reply(&self) -> Reply {
        let code = match self {
            ExecError::Invalid(_) => ErrorCode::InvalidRequest,
            ExecError::User(_) => ErrorCode::UnknownUser,
            ExecError::NoCwd(_) => ErrorCode::NotFound,
            ExecError::CwdNotDir(_) => ErrorCode::NotADirectory,
            ExecError::Pty(_) => ErrorCode::Io,
            ExecError::Spawn { source, .. } => match source.raw_os_error() {
                Some(libc::E2BIG) => ErrorCode::ArgumentsTooLong,
                Some(libc::ENAMETOOLONG | libc::ETXTBSY | libc::ENOSPC) => {
                    crate::files::error_code(source)
                }
                _ => match source.kind() {
                    io::ErrorKind::NotFound => ErrorCode::NotFound,
                    io::ErrorKind::PermissionDenied => ErrorCode::PermissionDenied,
                    _ => ErrorCode::SpawnFailed,
                },
            },
        };
        Reply::error(code, chain(self))
    }
}

impl ExecSpec {
    /// Validates `start` and resolves its user against the sandbox's `/etc`.
    pub fn prepare(start: ExecStart, etc: &Path) -> Result<ExecSpec, ExecError> {
        check_exec(&start).map_err(ExecError::Invalid)?;
        let ident = user::resolve(start.user.as_deref(), etc).map_err(ExecError::User)?;
        let cwd = match start.cwd {
            Some(cwd) => match std::fs::metadata(&cwd) {
                Ok(m) if m.is_dir() => cwd,
                Ok(_) => return Err(ExecError::CwdNotDir(cwd)),
                Err(_) => return Err(ExecError::NoCwd(cwd)),
            },
            None if Path::new(&ident.home).is_dir() => ident.home.clone(),
            None => "/".to_string(),
        };
        let term = if start.tty.is_some() {
            "xterm-256color"
        } else {
            "dumb"
        };
        // The agent's own environment is the image's (`Env` of its config) plus the
        // sandbox's; children start from it, minus the agent's private variables.
        let mut env: Vec<(String, String)> = std::env::vars()
            .filter(|(k, _)| !k.starts_with("SANDLAB_"))
            .collect();
        if !env.iter().any(|(k, _)| k == "PATH") {
            env.push(("PATH".into(), DEFAULT_PATH.into()));
        }
        for (key, value) in [("HOME", ident.home.clone()), ("TERM", term.to_string())] {
            env.retain(|(k, _)| k != key);
            env.push((key.into(), value));
        }
        env.retain(|(k, _)| k != "USER");
        if let Some(name) = &ident.name {
            env.push(("USER".into(), name.clone()));
        }
        for entry in &start.env {
            // check_exec guarantees KEY=VALUE.
            if let Some((key, value)) = entry.split_once('=') {
                env.retain(|(k, _)| k != key);
                env.push((key.into(), value.into()));
            }
        }
        Ok(ExecSpec {
            argv: start.argv,
            env,
            // check_exec and the metadata lookup rule out NUL bytes.
            cwd: CString::new(Path::new(&cwd).as_os_str().as_bytes())
                .map_err(|_| ExecError::NoCwd(cwd))?,
            ident,
            timeout: start.timeout_ms.map(Duration::from_millis),
            tty: start.tty,
            stdin: start.stdin,
        })
    }
}

/// A spawned child and the agent's ends of its stdio.
struct Spawned {
    pid: libc::pid_t,
    status: oneshot::Receiver<RawStatus>,
    stdin: Option<Arc<Fd>>,
    outputs: Vec<(Arc<Fd>, FrameKind)>,
    /// The PTY master, for resize and the foreground group.
    master: Option<Arc<Fd>>,
}

fn spawn(spec: &ExecSpec, reaper: &Reaper) -> Result<Spawned, ExecError> {
    let program = spec.argv[0].clone();
    let spawn_err = |source| ExecError::Spawn {
        program: program.clone(),
        source,
    };
    let mut cmd = Command::new(&spec.argv[0]);
    cmd.args(&spec.argv[1..])
        .env_clear()
        .envs(spec.env.iter().map(|(k, v)| (k, v)));
    let pty = spec
        .tty
        .map(pty::open)
        .transpose()
        .map_err(ExecError::Pty)?;
    if let Some(pty) = &pty {
        let slave = || {
            pty.slave
                .try_clone()
                .map(Stdio::from)
                .map_err(ExecError::Pty)
        };
        cmd.stdin(slave()?).stdout(slave()?).stderr(slave()?);
    } else {
        cmd.stdin(if spec.stdin {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    }
    let setup = child::Setup::new(pty.is_some(), &spec.ident, spec.cwd.clone());
    // SAFETY: `Setup::apply` makes only async-signal-safe calls and does not
    // allocate, as required between fork and exec.
    unsafe { cmd.pre_exec(move || setup.apply()) };
    let (mut child, status) = reaper.spawn(&mut cmd).map_err(spawn_err)?;
    // The command holds copies of the PTY slave; the child has its own now.
    drop(cmd);
    // std::process::Child does not reap or kill on drop; the reaper owns the status.
    let pid = child.id() as libc::pid_t;
    let wrap = |fd: OwnedFd| Fd::new(fd).map(Arc::new).map_err(spawn_err);
    if let Some(pty) = pty {
        drop(pty.slave);
        let master = wrap(pty.master)?;
        return Ok(Spawned {
            pid,
            status,
            stdin: Some(master.clone()),
            outputs: vec![(master.clone(), FrameKind::Data)],
            master: Some(master),
        });
    }
    let stdin = child.stdin.take().map(|s| wrap(s.into())).transpose()?;
    let mut outputs = Vec::new();
    if let Some(out) = child.stdout.take() {
        outputs.push((wrap(out.into())?, FrameKind::Data));
    }
    if let Some(err) = child.stderr.take() {
        outputs.push((wrap(err.into())?, FrameKind::Stderr));
    }
    Ok(Spawned {
        pid,
        status,
        stdin,
        outputs,
        master: None,
    })
}

/// Runs one exec stream to its end.
pub async fn run(ctx: StreamCtx, start: ExecStart, input: mpsc::UnboundedReceiver<Input>) {
    let spec = match ExecSpec::prepare(start, Path::new("/etc")) {
        Ok(spec) => spec,
        Err(e) => return ctx.finish(e.reply()),
    };
    let spawned = match spawn(&spec, &ctx.agent.reaper) {
        Ok(spawned) => spawned,
        Err(e) => return ctx.finish(e.reply()),
    };
    crate::log::log!(
        "stream {}: started {:?} as pid {}",
        ctx.id,
        spec.argv[0],
        spawned.pid
    );
    // A pid from the kernel is positive.
    ctx.reply(&Reply::Started {
        pid: spawned.pid as u32,
    });
    supervise(ctx, spec, spawned, input).await;
}

async fn supervise(
    ctx: StreamCtx,
    spec: ExecSpec,
    sp: Spawned,
    mut input: mpsc::UnboundedReceiver<Input>,
) {
    let Spawned {
        pid,
        mut status,
        stdin,
        outputs,
        master,
    } = sp;
    let (exited_tx, exited_rx) = watch::channel(false);
    let mut drains = Vec::new();
    for (fd, kind) in outputs {
        let (tx, rx) = oneshot::channel();
        let output = Output {
            fd,
            kind,
            stream: ctx.id,
            out: ctx.out.clone(),
            window: ctx.window.clone(),
            exited: exited_rx.clone(),
            pty: master.is_some(),
        };
        tokio::spawn(output.run(tx));
        drains.push(rx);
    }
    let mut stdin_tx = stdin.map(|fd| {
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(pump::stdin(fd, rx, ctx.granter()));
        tx
    });
    let granter = ctx.granter();
    let deadline = spec
        .timeout
        .and_then(|t| tokio::time::Instant::now().checked_add(t));
    let far = tokio::time::Instant::now() + Duration::from_secs(86400 * 365);
    let sleep = tokio::time::sleep_until(deadline.unwrap_or(far));
    tokio::pin!(sleep);
    let (mut timed_out, mut reset) = (false, false);

    let raw = loop {
        tokio::select! {
            st = &mut status => break st.ok(),
            () = &mut sleep, if deadline.is_some() && !timed_out => {
                timed_out = true;
                if let Some(st) = kill_unless_exited(&mut status, pid) {
                    break Some(st);
                }
            }
            msg = input.recv(), if !reset => match msg {
                Some(Input::Data(bytes)) => {
                    let n = bytes.len();
                    // Without a live stdin the bytes are dropped but still credited.
                    if stdin_tx.as_ref().is_none_or(|tx| tx.send(bytes).is_err()) {
                        granter.grant(n);
                    }
                }
                // A PTY master carries output too: EOF on a terminal is ^D, not close.
                Some(Input::Eof) if master.is_none() => stdin_tx = None,
                Some(Input::Eof) => {}
                Some(Input::Control(ctl)) => control(ctl, pid, master.as_deref()),
                None => {
                    reset = true;
                    if let Some(st) = kill_unless_exited(&mut status, pid) {
                        break Some(st);
                    }
                }
            },
        }
    };
    let _ = exited_tx.send(true);
    if !reset {
        // Report the exit only after all output the child wrote went out.
        let all_drained = async {
            for drained in drains {
                let _ = drained.await;
            }
        };
        tokio::pin!(all_drained);
        loop {
            tokio::select! {
                () = &mut all_drained => break,
                msg = input.recv() => match msg {
                    Some(Input::Data(bytes)) => granter.grant(bytes.len()),
                    Some(_) => {}
                    None => {
                        reset = true;
                        break;
                    }
                },
            }
        }
    }
    drop(stdin_tx);
    let (code, signal) = raw.map(decode_status).unwrap_or((None, None));
    crate::log::log!(
        "stream {}: pid {pid} exited code={code:?} signal={signal:?} timed_out={timed_out}",
        ctx.id
    );
    if !reset {
        ctx.finish(Reply::Exit {
            status: ExitStatus {
                code,
                signal,
                timed_out,
            },
        });
    }
}

/// SIGKILLs the child's process group unless its status already arrived (then the
/// pid may be reused and must not be signalled).
fn kill_unless_exited(
    status: &mut oneshot::Receiver<RawStatus>,
    pid: libc::pid_t,
) -> Option<RawStatus> {
    match status.try_recv() {
        Ok(st) => Some(st),
        Err(_) => {
            kill_group(pid, libc::SIGKILL);
            None
        }
    }
}

fn control(ctl: Control, pid: libc::pid_t, master: Option<&Fd>) {
    match (ctl, master) {
        (Control::Resize { cols, rows }, Some(master)) => {
            if let Err(e) = pty::set_size(master.raw(), TtySize { cols, rows }) {
                crate::log::log!("resize failed: {e}");
            }
        }
        (Control::Resize { .. }, None) => {}
        (Control::Signal { signo }, master) => {
            let group = master
                .and_then(|m| pty::foreground_group(m.raw()))
                .unwrap_or(pid);
            // SAFETY: signalling a process group has no memory effects; group > 0.
            let rc = unsafe { libc::kill(-group, signo) };
            if rc < 0 {
                // SAFETY: as above, for the single process.
                unsafe { libc::kill(pid, signo) };
            }
        }
    }
}
