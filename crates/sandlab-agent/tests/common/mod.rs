//! Shared helpers: start the real agent binary on a temporary socket (or a TCP port
//! of 127.0.0.1) and talk to it through `AgentClient`.
#![allow(dead_code)]

use std::ffi::OsStr;
use std::future::Future;
use std::net::SocketAddr;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use sandlab_proto::{AgentClient, ExecEvent, ExecOutput, ExecRequest, ExecSession};
use tempfile::TempDir;

pub const TIMEOUT: Duration = Duration::from_secs(20);
/// The token of agents started with [`TestAgent::start_tcp`].
pub const TOKEN: &str = "sandlab-test-token-7f3a9c1e5b2d4680";

pub struct TestAgent {
    pub child: Child,
    pub sock: PathBuf,
    pub dir: TempDir,
}

impl TestAgent {
    pub fn start() -> TestAgent {
        TestAgent::start_with(&[])
    }

    pub fn start_with(extra: &[&str]) -> TestAgent {
        let dir = tempfile::tempdir().unwrap();
        let sock = dir.path().join("agent.sock");
        let listen = [OsStr::new("--listen"), sock.as_os_str()];
        TestAgent::spawn(dir, sock.clone(), &listen, extra)
    }

    /// The agent on a free TCP port of 127.0.0.1, requiring [`TOKEN`] (from a token
    /// file); returns once it listens, with its address.
    pub async fn start_tcp(extra: &[&str]) -> (TestAgent, SocketAddr) {
        let dir = tempfile::tempdir().unwrap();
        let token_file = dir.path().join("token");
        write_private(&token_file, &format!("{TOKEN}\n"));
        let addr_file = dir.path().join("addr");
        let listen = [
            OsStr::new("--listen-tcp"),
            OsStr::new("127.0.0.1:0"),
            OsStr::new("--token-file"),
            token_file.as_os_str(),
            OsStr::new("--addr-file"),
            addr_file.as_os_str(),
        ];
        let unused = dir.path().join("agent.sock");
        let mut agent = TestAgent::spawn(dir, unused, &listen, extra);
        let child = &mut agent.child;
        let addr = wait_until("the agent listens on TCP", || {
            if let Some(status) = child.try_wait().unwrap() {
                panic!("the agent exited with {status} before listening");
            }
            let addr = std::fs::read_to_string(&addr_file)
                .ok()
                .and_then(|a| a.trim_end().parse().ok());
            async move { addr }
        })
        .await;
        (agent, addr)
    }

    /// The agent binary under test: SANDLAB_AGENT_BIN runs the suite against another
    /// build (the static one).
    pub fn bin() -> std::ffi::OsString {
        std::env::var_os("SANDLAB_AGENT_BIN")
            .unwrap_or_else(|| env!("CARGO_BIN_EXE_sandlab-agent").into())
    }

    fn spawn(dir: TempDir, sock: PathBuf, listen: &[&OsStr], extra: &[&str]) -> TestAgent {
        let child = Command::new(TestAgent::bin())
            .args(listen)
            .args(["--term-grace-ms", "500"])
            .args(extra)
            // As in a sandbox: the agent's environment is the image's (the OCI process env).
            .env_clear()
            .env("IMAGE_LANG", "C.UTF-8")
            .env("SANDLAB_AGENT_LOG", "stderr")
            .stdin(Stdio::null())
            .spawn()
            .unwrap();
        TestAgent { child, sock, dir }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub async fn client(&self) -> AgentClient {
        AgentClient::connect(&self.sock, TIMEOUT).await.unwrap()
    }

    /// Waits (bounded) for the agent process to exit and returns its status.
    pub async fn wait_exit(&mut self) -> std::process::ExitStatus {
        let child = &mut self.child;
        wait_until("the agent exits", || {
            let done = child.try_wait().unwrap();
            async move { done }
        })
        .await
    }
}

impl Drop for TestAgent {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_some() {
            return;
        }
        // SIGTERM lets the agent kill what it started; SIGKILL if that hangs.
        // SAFETY: signalling our own child process.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while std::time::Instant::now() < deadline {
            if self.child.try_wait().ok().flatten().is_some() {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Writes a file only its owner may read, as a token file should be.
pub fn write_private(path: &Path, content: &str) {
    use std::io::Write as _;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .unwrap();
    f.write_all(content.as_bytes()).unwrap();
}

/// Runs to completion with a bounded wait.
pub async fn run(client: &AgentClient, req: ExecRequest) -> ExecOutput {
    tokio::time::timeout(TIMEOUT, client.exec_collect(req, None, 1 << 20))
        .await
        .expect("exec timed out")
        .unwrap()
}

pub async fn sh(client: &AgentClient, script: &str) -> ExecOutput {
    run(client, ExecRequest::new(["sh", "-c", script])).await
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Reads session output until `needle` appears; returns everything read.
pub async fn read_until(session: &mut ExecSession, needle: &str) -> String {
    let mut seen = String::new();
    let fut = async {
        while let Some(ev) = session.next().await {
            match ev {
                ExecEvent::Stdout(b) | ExecEvent::Stderr(b) => {
                    seen.push_str(&String::from_utf8_lossy(&b));
                    if seen.contains(needle) {
                        return;
                    }
                }
                ExecEvent::Exit(st) => {
                    panic!("exited with {st:?} before {needle:?}; output {seen:?}")
                }
            }
        }
        panic!("stream ended before {needle:?}; output {seen:?}");
    };
    if tokio::time::timeout(TIMEOUT, fut).await.is_err() {
        panic!("timed out waiting for {needle:?}; output so far {seen:?}");
    }
    seen
}

/// Whether a process with exactly this command line exists.
pub fn process_with_cmdline(cmdline: &[&str]) -> Option<u32> {
    let want: Vec<u8> = cmdline.iter().flat_map(|a| a.bytes().chain([0])).collect();
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        if std::fs::read(entry.path().join("cmdline")).is_ok_and(|c| c == want) {
            return Some(pid);
        }
    }
    None
}

pub fn vm_value_kib(pid: u32, key: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| {
            l.strip_prefix(key)?
                .trim()
                .strip_suffix("kB")?
                .trim()
                .parse()
                .ok()
        })
        .unwrap()
}

/// The fds open in `pid` once they settle: before execve a child still holds CLOEXEC
/// fds, and a program like `sleep` briefly opens its own files (locale data) at start,
/// so an inherited fd is one that is still there after a short wait.
pub async fn settled_fds(pid: u32, expected: &[u32]) -> Vec<u32> {
    let dir = format!("/proc/{pid}/fd");
    let list = || {
        let mut fds: Vec<u32> = std::fs::read_dir(&dir)
            .map(|rd| {
                rd.flatten()
                    .filter_map(|e| e.file_name().to_string_lossy().parse().ok())
                    .collect()
            })
            .unwrap_or_default();
        fds.sort();
        fds
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(3);
    let mut fds = list();
    while fds != expected && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        fds = list();
    }
    fds
}

#[allow(unused_imports)] // not every test binary uses it
pub use sandlab_testkit::pid_alive;

/// Polls `cond` until it yields `Some`, failing the test after [`TIMEOUT`].
pub async fn wait_until<T, F, Fut>(what: &str, cond: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    sandlab_testkit::wait_until(what, TIMEOUT, cond).await
}
