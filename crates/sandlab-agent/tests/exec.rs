//! Exec through the real agent binary: output, exit statuses, timeouts, stdin,
//! identities, environment and what children inherit.

mod common;

use std::time::Duration;

use common::*;
use sandlab_proto::{ErrorCode, ExecEvent, ExecRequest};

#[tokio::test]
async fn echo_and_exit_codes() {
    let agent = TestAgent::start();
    let client = agent.client().await;
    client.ping().await.unwrap();

    let out = run(&client, ExecRequest::new(["echo", "hello", "world"])).await;
    assert_eq!(text(&out.stdout), "hello world\n");
    assert!(out.stderr.is_empty());
    assert!(out.exit.success());
    assert_eq!(out.exit.shell_code(), 0);

    let out = sh(&client, "echo out; echo err >&2; exit 3").await;
    assert_eq!(text(&out.stdout), "out\n");
    assert_eq!(text(&out.stderr), "err\n");
    assert_eq!(
        (out.exit.code, out.exit.signal, out.exit.timed_out),
        (Some(3), None, false)
    );
    assert_eq!(out.exit.shell_code(), 3);
}

#[tokio::test]
async fn killed_by_signal() {
    let agent = TestAgent::start();
    let client = agent.client().await;
    let out = sh(&client, "kill -9 $$").await;
    assert_eq!((out.exit.code, out.exit.signal), (None, Some(9)));
    assert_eq!(out.exit.shell_code(), 137);
}

#[tokio::test]
async fn timeout_kills_the_whole_group() {
    let agent = TestAgent::start();
    let client = agent.client().await;
    let mut req = ExecRequest::new(["sh", "-c", "sleep 10 & echo $!; sleep 10"]);
    req.timeout = Some(Duration::from_millis(200));
    let out = run(&client, req).await;
    assert!(out.exit.timed_out, "{:?}", out.exit);
    assert_eq!(out.exit.signal, Some(9));
    assert_eq!(out.exit.shell_code(), 124);
    assert!(out.duration < Duration::from_secs(5), "{:?}", out.duration);
    let grandchild: u32 = text(&out.stdout).trim().parse().unwrap();
    wait_until("the background sleep is gone", || async move {
        (!pid_alive(grandchild)).then_some(())
    })
    .await;
}

#[tokio::test]
async fn stdin_is_streamed_and_closed() {
    let agent = TestAgent::start();
    let client = agent.client().await;
    let input: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    let out = tokio::time::timeout(
        TIMEOUT,
        client.exec_collect(ExecRequest::new(["cat"]), Some(input.clone()), 1 << 20),
    )
    .await
    .unwrap()
    .unwrap();
    assert!(out.exit.success());
    assert_eq!(out.stdout, input);

    // Interactive use: write, read the echo, close, see the exit.
    let mut req = ExecRequest::new(["cat"]);
    req.stdin = true;
    let mut session = client.exec(req).await.unwrap();
    session.write_stdin(b"ping\n").await.unwrap();
    read_until(&mut session, "ping\n").await;
    session.close_stdin().await.unwrap();
    let exit = tokio::time::timeout(TIMEOUT, session.next()).await.unwrap();
    assert!(
        matches!(exit, Some(ExecEvent::Exit(st)) if st.success()),
        "{exit:?}"
    );
    assert_eq!(session.next().await, None);

    // Without stdin the child reads /dev/null.
    let out = run(&client, ExecRequest::new(["cat"])).await;
    assert!(out.exit.success() && out.stdout.is_empty());
}

#[tokio::test]
async fn stdin_to_a_process_that_exits_does_not_hang() {
    let agent = TestAgent::start();
    let client = agent.client().await;
    let out = tokio::time::timeout(
        TIMEOUT,
        client.exec_collect(ExecRequest::new(["true"]), Some(vec![b'x'; 2 << 20]), 1024),
    )
    .await
    .unwrap()
    .unwrap();
    assert!(out.exit.success());
}

#[tokio::test]
async fn users_and_groups() {
    let agent = TestAgent::start();
    let client = agent.client().await;
    let id = |user: Option<&str>| {
        let mut req = ExecRequest::new(["sh", "-c", "id -u; id -g; id -G; echo $HOME; pwd"]);
        req.user = user.map(String::from);
        req
    };
    let root = run(&client, id(None)).await;
    let lines: Vec<String> = text(&root.stdout).lines().map(String::from).collect();
    assert_eq!(&lines[..2], ["0", "0"]);
    assert_eq!(lines[3], "/root");

    let nobody = run(&client, id(Some("nobody"))).await;
    let lines: Vec<String> = text(&nobody.stdout).lines().map(String::from).collect();
    assert_eq!(&lines[..3], ["65534", "65534", "65534"], "{lines:?}");
    assert_eq!(lines[3], "/nonexistent");
    assert_eq!(lines[4], "/", "a missing home falls back to /");

    let numeric = run(&client, id(Some("1234:4321"))).await;
    let lines: Vec<String> = text(&numeric.stdout).lines().map(String::from).collect();
    assert_eq!(&lines[..3], ["1234", "4321", "4321"], "{lines:?}");

    let err = client
        .exec(id(Some("no-such-user-here")))
        .await
        .err()
        .unwrap();
    assert_eq!(err.agent_code(), Some(ErrorCode::UnknownUser), "{err}");
}

#[tokio::test]
async fn env_and_cwd() {
    let agent = TestAgent::start();
    let client = agent.client().await;
    let mut req = ExecRequest::new([
        "sh",
        "-c",
        "echo \"$FOO|$TERM|$PATH|$HOME\"; pwd; env | wc -l",
    ]);
    req.env = vec!["FOO=bar=baz".into(), "HOME=/tmp".into()];
    req.cwd = Some("/usr".into());
    let out = run(&client, req).await;
    let lines: Vec<String> = text(&out.stdout).lines().map(String::from).collect();
    assert_eq!(
        lines[0],
        "bar=baz|dumb|/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin|/tmp"
    );
    assert_eq!(lines[1], "/usr");
    // The image's environment is passed on; the agent's private variables are not
    // (SANDLAB_AGENT_LOG is set there).
    let out = sh(&client, "env").await;
    assert!(
        !text(&out.stdout).contains("SANDLAB"),
        "{}",
        text(&out.stdout)
    );
    assert!(
        text(&out.stdout).contains("IMAGE_LANG=C.UTF-8"),
        "{}",
        text(&out.stdout)
    );

    let mut req = ExecRequest::new(["true"]);
    req.cwd = Some("/definitely/not/here".into());
    let err = client.exec(req).await.err().unwrap();
    assert_eq!(err.agent_code(), Some(ErrorCode::NotFound), "{err}");

    let err = client
        .exec(ExecRequest::new(["/no/such/program"]))
        .await
        .err()
        .unwrap();
    assert_eq!(err.agent_code(), Some(ErrorCode::NotFound), "{err}");

    let err = client
        .exec(ExecRequest::new(Vec::<String>::new()))
        .await
        .err()
        .unwrap();
    assert!(
        matches!(err, sandlab_proto::Error::InvalidRequest(_)),
        "{err}"
    );
}

#[tokio::test]
async fn children_inherit_nothing_from_the_agent() {
    let agent = TestAgent::start();
    let client = agent.client().await;
    // Only 0, 1 and 2 are open in the child, with pipes, with stdin and with a TTY.
    for (stdin, tty) in [(false, false), (true, false), (true, true)] {
        let mut req = ExecRequest::new(["sleep", "100"]);
        req.stdin = stdin;
        req.tty = tty.then_some(sandlab_proto::TtySize { cols: 80, rows: 24 });
        let session = client.exec(req).await.unwrap();
        let fds = settled_fds(session.pid(), &[0, 1, 2]).await;
        let fd_dir = format!("/proc/{}/fd", session.pid());
        let targets: Vec<String> = fds
            .iter()
            .map(|fd| format!("{fd} -> {:?}", std::fs::read_link(format!("{fd_dir}/{fd}"))))
            .collect();
        assert_eq!(fds, [0, 1, 2], "stdin={stdin} tty={tty}: {targets:?}");
        drop(session); // Resets the stream: the agent kills the sleep.
    }

    // Default signal dispositions, empty mask, own process group.
    let out = sh(&client, "grep -E '^(SigBlk|SigIgn)' /proc/self/status; ps -o pid=,pgid= -p $$ 2>/dev/null || cat /proc/$$/stat").await;
    let status = text(&out.stdout);
    assert!(status.contains("SigBlk:\t0000000000000000"), "{status}");
    assert!(status.contains("SigIgn:\t0000000000000000"), "{status}");

    let out = sh(&client, "cut -d' ' -f1,5 /proc/$$/stat").await;
    let fields: Vec<String> = text(&out.stdout)
        .split_whitespace()
        .map(String::from)
        .collect();
    assert_eq!(fields[0], fields[1], "the exec leads its own process group");
}

#[tokio::test]
async fn signal_reaches_the_process_group() {
    let agent = TestAgent::start();
    let client = agent.client().await;
    let mut session = client
        .exec(ExecRequest::new([
            "sh",
            "-c",
            "trap 'echo got-term; exit 7' TERM; echo ready; while :; do sleep 0.05; done",
        ]))
        .await
        .unwrap();
    read_until(&mut session, "ready").await;
    session.signal(15).await.unwrap();
    read_until(&mut session, "got-term").await;
    let exit = tokio::time::timeout(TIMEOUT, session.next()).await.unwrap();
    assert!(
        matches!(exit, Some(ExecEvent::Exit(st)) if st.code == Some(7)),
        "{exit:?}"
    );
    assert!(matches!(
        session.signal(15).await,
        Err(sandlab_proto::Error::StreamClosed)
    ));
}

#[tokio::test]
async fn many_concurrent_execs_on_one_connection() {
    let agent = TestAgent::start();
    let client = agent.client().await;
    let tasks: Vec<_> = (0..64)
        .map(|i| {
            let client = client.clone();
            tokio::spawn(async move {
                let script = format!(
                    "echo start-{i}; head -c {} /dev/zero | wc -c; exit {}",
                    i * 10_000,
                    i % 7
                );
                let out = sh(&client, &script).await;
                assert_eq!(text(&out.stdout), format!("start-{i}\n{}\n", i * 10_000));
                assert_eq!(out.exit.code, Some(i % 7));
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let stats = client.stats().await.unwrap();
    assert_eq!(stats.open_streams, 0, "{stats:?}");
    assert_eq!(stats.running_children, 0, "{stats:?}");
}

#[tokio::test]
async fn exec_collect_truncates_without_killing() {
    let agent = TestAgent::start();
    let client = agent.client().await;
    let out = client
        .exec_collect(
            ExecRequest::new(["sh", "-c", "head -c 100000 /dev/zero; echo done >&2"]),
            None,
            1000,
        )
        .await
        .unwrap();
    assert!(out.truncated);
    assert_eq!(out.stdout.len() + out.stderr.len(), 1000);
    assert!(out.exit.success());
}

#[tokio::test]
async fn background_processes_survive_the_exec() {
    let agent = TestAgent::start();
    let client = agent.client().await;
    // The exit is reported although the background job keeps stdout open.
    let out = sh(&client, "(sleep 30; echo late) & echo $!").await;
    assert!(out.exit.success());
    let pid: u32 = text(&out.stdout).trim().parse().unwrap();
    assert!(
        pid_alive(pid),
        "the background job is not killed by the exit"
    );
    // SAFETY: signalling a test-owned process.
    unsafe { libc::kill(pid as i32, libc::SIGKILL) };
}
