//! The agent started the way the runtime starts it: the listening socket inherited
//! as fd 3 with `SANDLAB_AGENT_FD=3`, and as PID 1 of a fresh PID namespace
//! (`unshare --pid`, as root) where orphans are reaped and SIGTERM ends everything.

mod common;

use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};

use common::*;
use sandlab_proto::{AgentClient, ExecRequest};

/// Pid (in our namespace) of the agent started under `unshare`.
fn agent_pid(unshare_pid: u32) -> Option<u32> {
    let children =
        std::fs::read_to_string(format!("/proc/{unshare_pid}/task/{unshare_pid}/children")).ok()?;
    children.split_whitespace().next()?.parse().ok()
}

#[tokio::test]
async fn as_pid1_it_reaps_orphans_and_terminates_everything() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 || Command::new("unshare").arg("--version").output().is_err()
    {
        eprintln!("skipped: needs root and unshare(1)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("pid1.sock");
    let bin = std::env::var_os("SANDLAB_AGENT_BIN")
        .unwrap_or_else(|| env!("CARGO_BIN_EXE_sandlab-agent").into());
    let mut unshare = Command::new("unshare")
        .args(["--pid", "--fork", "--mount-proc", "--kill-child"])
        .arg(bin)
        .arg("--listen")
        .arg(&sock)
        .args(["--term-grace-ms", "300"])
        .env("SANDLAB_AGENT_LOG", "stderr")
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    let client = AgentClient::connect(&sock, TIMEOUT).await.unwrap();

    let out = sh(&client, "echo $PPID; cat /proc/1/cmdline | tr '\\0' ' '").await;
    let s = text(&out.stdout);
    assert!(s.starts_with("1\n") && s.contains("sandlab-agent"), "{s}");

    // Orphans that exit become zombies unless PID 1 reaps them.
    let out = sh(
        &client,
        "for i in 1 2 3 4 5; do (sleep 0.01 &); done; (exit 3 &); echo made",
    )
    .await;
    assert!(out.exit.success());
    let zombies =
        "grep -l '^State:.Z' /proc/[0-9]*/status 2>/dev/null | wc -l; ls -d /proc/[0-9]* | wc -l";
    wait_until("orphans are reaped", || {
        let client = client.clone();
        async move {
            let out = sh(&client, zombies).await;
            let counts: Vec<u32> = text(&out.stdout)
                .lines()
                .map(|l| l.trim().parse().unwrap())
                .collect();
            // Left: the agent, the sh running this check and its children.
            (counts[0] == 0 && counts[1] <= 5).then_some(())
        }
    })
    .await;

    // Work that must die with the agent: an exec, and a TERM-ignoring orphan that
    // needs the SIGKILL round. (The kernel also kills a namespace's processes when
    // its PID 1 exits; what can fail here is the agent's clean, bounded exit 0 from
    // SIGTERM with kill(-1) as PID 1. The kill logic itself is checked without a
    // namespace in robustness.rs.)
    let session = client
        .exec(ExecRequest::new(["sleep", "400.5"]))
        .await
        .unwrap();
    let out = sh(
        &client,
        "(trap '' TERM; exec sleep 401.5) >/dev/null 2>&1 & echo ok",
    )
    .await;
    assert!(out.exit.success());
    let host_pids = [
        wait_until("sleep runs", || async {
            process_with_cmdline(&["sleep", "400.5"])
        })
        .await,
        wait_until("orphan runs", || async {
            process_with_cmdline(&["sleep", "401.5"])
        })
        .await,
    ];
    let agent = wait_until("the agent pid is known", || async {
        agent_pid(unshare.id())
    })
    .await;
    // SAFETY: signalling the agent we started.
    unsafe { libc::kill(agent as i32, libc::SIGTERM) };
    let status = wait_until("unshare exits", || {
        let done = unshare.try_wait().unwrap();
        async move { done }
    })
    .await;
    assert!(status.success(), "{status:?}");
    for pid in host_pids {
        assert!(!pid_alive(pid), "pid {pid} survived the agent");
    }
    drop(session);
}

#[tokio::test]
async fn inherited_socket_on_fd_3() {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("inherited.sock");
    let listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
    let fd = listener.as_raw_fd();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_sandlab-agent"));
    cmd.env("SANDLAB_AGENT_FD", "3").stdin(Stdio::null());
    // SAFETY: dup2 is async-signal-safe; it puts the listener on fd 3 (without
    // close-on-exec) in the child only.
    unsafe {
        cmd.pre_exec(move || {
            if libc::dup2(fd, 3) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut agent = cmd.spawn().unwrap();
    drop(listener);
    let client = AgentClient::connect(&sock, TIMEOUT).await.unwrap();
    // The inherited socket does not leak into user processes.
    let session = client
        .exec(ExecRequest::new(["sleep", "402.5"]))
        .await
        .unwrap();
    assert_eq!(settled_fds(session.pid(), &[0, 1, 2]).await, [0, 1, 2]);
    // Production stdio is /dev/null.
    let stdout = std::fs::read_link(format!("/proc/{}/fd/1", agent.id())).unwrap();
    assert_eq!(stdout, std::path::Path::new("/dev/null"));
    // A second connection on the same socket.
    let second = AgentClient::connect(&sock, TIMEOUT).await.unwrap();
    second.ping().await.unwrap();
    client.shutdown().await.unwrap();
    let status = wait_until("the agent exits", || {
        let done = agent.try_wait().unwrap();
        async move { done }
    })
    .await;
    assert!(status.success());
    assert!(!pid_alive(session.pid()));

    // Without a socket the agent refuses to start.
    let status = Command::new(env!("CARGO_BIN_EXE_sandlab-agent"))
        .env_remove("SANDLAB_AGENT_FD")
        .status()
        .unwrap();
    assert_eq!(status.code(), Some(1));
    let status = Command::new(env!("CARGO_BIN_EXE_sandlab-agent"))
        .arg("--bogus")
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert_eq!(status.code(), Some(2));
}
