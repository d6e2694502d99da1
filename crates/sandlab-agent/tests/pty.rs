//! Interactive PTY sessions: a real shell with job control, resize and ^C.

mod common;

use common::*;
use sandlab_proto::{ExecEvent, ExecRequest, TtySize};

fn shell() -> ExecRequest {
    let mut req = ExecRequest::new(["bash", "--norc", "--noprofile", "-i"]);
    req.tty = Some(TtySize { cols: 80, rows: 24 });
    req.stdin = true;
    req.env = vec!["PS1=$ ".into()];
    req
}

#[tokio::test]
async fn shell_echo_resize_and_exit() {
    let agent = TestAgent::start();
    let client = agent.client().await;
    let mut session = client.exec(shell()).await.unwrap();
    session
        .write_stdin(b"echo hi-$((40+2)) $TERM\r")
        .await
        .unwrap();
    let seen = read_until(&mut session, "hi-42 xterm-256color").await;
    assert!(!seen.contains("no job control"), "{seen}");

    session
        .resize(TtySize {
            cols: 123,
            rows: 45,
        })
        .await
        .unwrap();
    session.write_stdin(b"stty size\r").await.unwrap();
    read_until(&mut session, "45 123").await;

    session.write_stdin(b"exit 7\r").await.unwrap();
    let exit = tokio::time::timeout(TIMEOUT, async {
        loop {
            match session.next().await {
                Some(ExecEvent::Exit(st)) => return st,
                Some(_) => continue,
                None => panic!("no exit"),
            }
        }
    })
    .await
    .unwrap();
    assert_eq!(exit.code, Some(7));
}

#[tokio::test]
async fn ctrl_c_interrupts_the_foreground_job_only() {
    let agent = TestAgent::start();
    let client = agent.client().await;
    let mut session = client.exec(shell()).await.unwrap();
    session.write_stdin(b"echo ready\r").await.unwrap();
    read_until(&mut session, "ready\r\n").await;

    session.write_stdin(b"sleep 123.456\r").await.unwrap();
    let sleep = wait_until("sleep runs", || async {
        process_with_cmdline(&["sleep", "123.456"])
    })
    .await;
    // The job runs in its own foreground process group, not the shell's.
    let pgid = |pid: u32| -> String {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
        stat.rsplit(')')
            .next()
            .unwrap()
            .split_whitespace()
            .nth(2)
            .unwrap()
            .to_string()
    };
    assert_ne!(pgid(sleep), pgid(session.pid()));

    session.write_stdin(b"\x03").await.unwrap();
    wait_until("sleep is interrupted", || async move {
        (!pid_alive(sleep)).then_some(())
    })
    .await;
    session.write_stdin(b"echo alive-$((2+3))\r").await.unwrap();
    read_until(&mut session, "alive-5").await;

    // The signal API targets the foreground job too.
    session.write_stdin(b"sleep 124.5\r").await.unwrap();
    let sleep = wait_until("sleep runs", || async {
        process_with_cmdline(&["sleep", "124.5"])
    })
    .await;
    session.signal(libc::SIGINT).await.unwrap();
    wait_until("sleep is interrupted", || async move {
        (!pid_alive(sleep)).then_some(())
    })
    .await;
    session.write_stdin(b"echo still-$((3+4))\r").await.unwrap();
    read_until(&mut session, "still-7").await;
}

#[tokio::test]
async fn full_screen_programs_get_a_terminal() {
    let agent = TestAgent::start();
    let client = agent.client().await;
    let mut req = ExecRequest::new([
        "sh",
        "-c",
        "test -t 0 && test -t 1 && tty && tput cols && tput lines",
    ]);
    req.tty = Some(TtySize {
        cols: 100,
        rows: 30,
    });
    let out = run(&client, req).await;
    let s = text(&out.stdout);
    assert!(s.contains("/dev/pts/"), "{s}");
    assert!(s.contains("100\r\n30"), "{s}");
    assert!(out.exit.success(), "{s}");
}
