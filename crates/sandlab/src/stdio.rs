//! Connects an exec session to this process's stdin/stdout/stderr, with a raw local
//! terminal and window-size forwarding for `-t`.

use std::io::IsTerminal;
use std::os::fd::AsFd;

use nix::sys::termios::{self, SetArg, Termios};
use sandlab_proto::{ExecEvent, ExecSession, ExitStatus, TtySize};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::signal::unix::{signal, SignalKind};

/// Puts the local terminal in raw mode until dropped.
pub struct RawMode {
    saved: Option<Termios>,
}

impl RawMode {
    pub fn enable() -> RawMode {
        let stdin = std::io::stdin();
        if !stdin.is_terminal() {
            return RawMode { saved: None };
        }
        let Ok(saved) = termios::tcgetattr(stdin.as_fd()) else {
            return RawMode { saved: None };
        };
        let mut raw = saved.clone();
        termios::cfmakeraw(&mut raw);
        if termios::tcsetattr(stdin.as_fd(), SetArg::TCSANOW, &raw).is_err() {
            return RawMode { saved: None };
        }
        RawMode { saved: Some(saved) }
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        if let Some(saved) = &self.saved {
            let _ = termios::tcsetattr(std::io::stdin().as_fd(), SetArg::TCSANOW, saved);
        }
    }
}

/// The size of the local terminal, or 80x24.
pub fn terminal_size() -> TtySize {
    // SAFETY: winsize is plain data; TIOCGWINSZ fills it in or fails.
    let mut ws: libc::winsize = unsafe { std::mem::zeroed() };
    // SAFETY: the pointer is to a live winsize on our stack.
    let ok = unsafe { libc::ioctl(libc::STDOUT_FILENO, libc::TIOCGWINSZ, &mut ws) } == 0;
    if ok && ws.ws_col > 0 && ws.ws_row > 0 {
        TtySize {
            cols: ws.ws_col,
            rows: ws.ws_row,
        }
    } else {
        TtySize { cols: 80, rows: 24 }
    }
}

/// Streams the session until the command exits; returns its exit status.
pub async fn attach(
    session: ExecSession,
    interactive: bool,
    tty: bool,
) -> anyhow::Result<ExitStatus> {
    let (input, mut events) = session.split();
    let _raw = if tty { Some(RawMode::enable()) } else { None };
    let mut tasks = Vec::new();
    if interactive {
        let input = input.clone();
        tasks.push(tokio::spawn(async move {
            let mut stdin = tokio::io::stdin();
            let mut buf = vec![0u8; 32 * 1024];
            loop {
                match stdin.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        if input.write_stdin(&buf[..n]).await.is_err() {
                            return;
                        }
                    }
                }
            }
            let _ = input.close_stdin().await;
        }));
    } else {
        input.close_stdin().await?;
    }
    if tty {
        if let Ok(mut winch) = signal(SignalKind::window_change()) {
            let input = input.clone();
            tasks.push(tokio::spawn(async move {
                while winch.recv().await.is_some() {
                    if input.resize(terminal_size()).await.is_err() {
                        break;
                    }
                }
            }));
        }
    }
    let mut stdout = tokio::io::stdout();
    let mut stderr = tokio::io::stderr();
    let status = loop {
        match events.next().await {
            Some(ExecEvent::Stdout(b)) => {
                stdout.write_all(&b).await?;
                stdout.flush().await?;
            }
            Some(ExecEvent::Stderr(b)) => {
                stderr.write_all(&b).await?;
                stderr.flush().await?;
            }
            Some(ExecEvent::Exit(status)) => break status,
            None => {
                anyhow::bail!("the sandbox's agent closed the connection before the command exited")
            }
        }
    };
    for t in tasks {
        t.abort();
    }
    Ok(status)
}
