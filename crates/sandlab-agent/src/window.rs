//! Send windows: how many output bytes the host still accepts on a stream.

use std::sync::{Mutex, MutexGuard};

use sandlab_proto::MAX_WINDOW;
use tokio::sync::Notify;

/// Credit for one stream's agent-to-host data, shared by its output pumps.
#[derive(Debug)]
pub struct Window {
    state: Mutex<State>,
    changed: Notify,
}

#[derive(Debug)]
struct State {
    available: u32,
    closed: bool,
}

/// The host granted more than [`MAX_WINDOW`] outstanding.
#[derive(Debug, thiserror::Error)]
#[error("The host granted more than the maximum window.")]
pub struct Overflow;

impl Window {
    pub fn new(initial: u32) -> Window {
        Window {
            state: Mutex::new(State {
                available: initial,
                closed: false,
            }),
            changed: Notify::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Plain counters: a panic elsewhere cannot leave them inconsistent.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Waits for credit and takes up to `max` bytes of it; `None` once the stream is
    /// closed. Unused credit goes back with [`Window::release`].
    pub async fn reserve(&self, max: usize) -> Option<usize> {
        loop {
            let notified = self.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            {
                let mut st = self.lock();
                if st.closed {
                    return None;
                }
                if st.available > 0 {
                    let take = (st.available as usize).min(max);
                    st.available -= take as u32;
                    return Some(take);
                }
            }
            notified.await;
        }
    }

    /// Returns credit reserved but not used.
    pub fn release(&self, n: usize) {
        if n > 0 {
            let mut st = self.lock();
            st.available = st.available.saturating_add(n as u32);
            drop(st);
            self.changed.notify_waiters();
        }
    }

    /// Adds credit granted by the host.
    pub fn grant(&self, n: u32) -> Result<(), Overflow> {
        let mut st = self.lock();
        match st.available.checked_add(n) {
            Some(total) if total <= MAX_WINDOW => st.available = total,
            _ => return Err(Overflow),
        }
        drop(st);
        self.changed.notify_waiters();
        Ok(())
    }

    /// Ends the stream: pending and future reservations return `None`.
    pub fn close(&self) {
        self.lock().closed = true;
        self.changed.notify_waiters();
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn reserve_waits_for_grant() {
        let w = Arc::new(Window::new(10));
        assert_eq!(w.reserve(4).await, Some(4));
        assert_eq!(w.reserve(100).await, Some(6));
        let w2 = w.clone();
        let waiter = tokio::spawn(async move { w2.reserve(100).await });
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished());
        w.grant(7).unwrap();
        let got = tokio::time::timeout(Duration::from_secs(5), waiter)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(got, Some(7));
        w.release(3);
        assert_eq!(w.reserve(100).await, Some(3));
    }

    #[tokio::test]
    async fn close_wakes_waiters_and_overflow_is_refused() {
        let w = Arc::new(Window::new(0));
        let w2 = w.clone();
        let waiter = tokio::spawn(async move { w2.reserve(1).await });
        tokio::task::yield_now().await;
        w.close();
        assert_eq!(
            tokio::time::timeout(Duration::from_secs(5), waiter)
                .await
                .unwrap()
                .unwrap(),
            None
        );
        let w = Window::new(MAX_WINDOW);
        assert!(w.grant(1).is_err());
        assert!(w.grant(0).is_ok());
    }
}
