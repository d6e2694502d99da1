//! Helpers every crate's tests share, so that there is one way to wait for a condition
//! (polling with a deadline, never a bare sleep as synchronisation) and one way to ask
//! whether a process lives. A dev-dependency only: no production code links it.

use std::future::Future;
use std::time::{Duration, Instant};

/// Polls `check` every 10 ms until it yields a value; fails the test, naming `what`, once
/// `timeout` has passed.
pub async fn wait_until<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out after {timeout:?} waiting until {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Polls `cond` every 50 ms from a plain thread; whether it held before `timeout` passed.
pub fn wait_until_blocking(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Whether `pid` is a live process; a zombie (exited, not yet reaped) counts as gone.
pub fn pid_alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // `pid (comm) S ...`; comm may hold spaces and parentheses.
        Ok(stat) => stat
            .rsplit_once(") ")
            .is_some_and(|(_, rest)| !rest.starts_with('Z')),
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn wait_until_returns_the_first_value() {
        let mut n = 0;
        let v = wait_until("three polls", Duration::from_secs(5), || {
            n += 1;
            let done = n >= 3;
            async move { done.then_some(n) }
        })
        .await;
        assert_eq!(v, 3);
    }

    #[tokio::test]
    #[should_panic(expected = "waiting until never")]
    async fn wait_until_fails_the_test_at_its_deadline() {
        wait_until::<(), _, _>("never", Duration::from_millis(30), || async { None }).await;
    }

    #[test]
    fn blocking_wait_and_liveness() {
        assert!(pid_alive(std::process::id()));
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        assert!(wait_until_blocking(Duration::from_secs(5), || !pid_alive(
            pid
        )));
        child.wait().unwrap();
        assert!(!pid_alive(pid));
        assert!(!wait_until_blocking(Duration::from_millis(60), || false));
    }
}
