//! Long-lived streams per user: session event streams (SSE) and terminal WebSockets stay
//! open for as long as a page does and leave hyper's timers, so each user may hold at most
//! `server.max_streams_per_user` of them (issue 19, break 3: a learner once opened 20,000
//! event streams). A [`StreamGuard`] lives as long as its stream and gives its place back
//! when dropped.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Open streams per user id.
#[derive(Debug)]
pub struct StreamCaps {
    per_user: usize,
    open: Arc<Mutex<HashMap<String, usize>>>,
}

/// One open stream of one user.
#[derive(Debug)]
pub struct StreamGuard {
    open: Arc<Mutex<HashMap<String, usize>>>,
    user: String,
}

/// The user already holds `cap` streams.
#[derive(Debug, thiserror::Error, PartialEq)]
#[error("You already have {cap} open event streams and terminals; close some (in other tabs or windows) first.")]
pub struct TooManyStreams {
    pub cap: usize,
}

impl StreamCaps {
    pub fn new(per_user: usize) -> StreamCaps {
        StreamCaps {
            per_user: per_user.max(1),
            open: Arc::default(),
        }
    }

    /// A place for one more stream of `user`, or [`TooManyStreams`].
    pub fn open(&self, user: &str) -> Result<StreamGuard, TooManyStreams> {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        let n = open.entry(user.to_owned()).or_insert(0);
        if *n >= self.per_user {
            return Err(TooManyStreams { cap: self.per_user });
        }
        *n += 1;
        Ok(StreamGuard {
            open: self.open.clone(),
            user: user.to_owned(),
        })
    }

    /// Streams `user` holds now.
    pub fn count(&self, user: &str) -> usize {
        let open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        open.get(user).copied().unwrap_or(0)
    }
}

impl Drop for StreamGuard {
    fn drop(&mut self) {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = open.get_mut(&self.user) {
            *n -= 1;
            if *n == 0 {
                open.remove(&self.user);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_user_has_their_own_cap_and_places_come_back() {
        let caps = StreamCaps::new(2);
        let a1 = caps.open("alice").unwrap();
        let _a2 = caps.open("alice").unwrap();
        assert_eq!(caps.open("alice").unwrap_err(), TooManyStreams { cap: 2 });
        let _b = caps.open("bob").unwrap();
        drop(a1);
        assert_eq!(caps.count("alice"), 1);
        let _a3 = caps.open("alice").unwrap();
        assert_eq!(caps.count("alice"), 2);
    }
}
