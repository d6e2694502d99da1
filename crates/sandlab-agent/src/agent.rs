//! State shared by every connection: the reaper, counters, the shutdown trigger and
//! how connections are admitted.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use sandlab_proto::{AgentStats, AuthToken};
use tokio::sync::Notify;

use crate::reaper::Reaper;

pub struct Agent {
    pub reaper: Arc<Reaper>,
    pub stats: Stats,
    /// Notified (with a stored permit) when a host asks the agent to shut down.
    pub shutdown: Notify,
    pub admission: Admission,
    /// Connections still in their handshake: a peer that opens many and says nothing
    /// cannot exhaust PID 1's descriptors.
    pub handshakes: tokio::sync::Semaphore,
}

/// The most connections that may be in their handshake at once; more are closed at once.
pub const MAX_PENDING_HANDSHAKES: usize = 32;

/// What a connection must do before it is served.
#[derive(Debug)]
pub struct Admission {
    /// The token every host must present in its hello; `None` admits any host (the
    /// Unix socket, where file permissions decide who connects).
    pub token: Option<AuthToken>,
    /// How long a new connection may take to complete the handshake.
    pub handshake_timeout: Duration,
}

impl Agent {
    pub fn new(reaper: Arc<Reaper>, admission: Admission) -> Agent {
        Agent {
            reaper,
            stats: Stats::default(),
            shutdown: Notify::new(),
            admission,
            handshakes: tokio::sync::Semaphore::new(MAX_PENDING_HANDSHAKES),
        }
    }

    pub fn snapshot(&self) -> AgentStats {
        let s = &self.stats;
        AgentStats {
            buffered_bytes: s.buffered.load(Ordering::Relaxed),
            buffered_high_water: s.high_water.load(Ordering::Relaxed),
            output_bytes_total: s.output_total.load(Ordering::Relaxed),
            open_streams: s.open_streams.load(Ordering::Relaxed),
            running_children: self.reaper.running() as u64,
            rss_bytes: rss_bytes(),
        }
    }
}

/// Counters behind [`AgentStats`].
#[derive(Debug, Default)]
pub struct Stats {
    buffered: AtomicU64,
    high_water: AtomicU64,
    output_total: AtomicU64,
    open_streams: AtomicU64,
}

impl Stats {
    /// Output bytes were queued towards a host.
    pub fn queued(&self, n: usize) {
        let n = n as u64;
        let now = self.buffered.fetch_add(n, Ordering::Relaxed) + n;
        self.high_water.fetch_max(now, Ordering::Relaxed);
        self.output_total.fetch_add(n, Ordering::Relaxed);
    }

    /// Queued output bytes were written to the socket (or dropped with it).
    pub fn written(&self, n: usize) {
        self.buffered.fetch_sub(n as u64, Ordering::Relaxed);
    }

    /// A queued frame never made it into the queue after all.
    pub fn unqueued(&self, n: usize) {
        self.buffered.fetch_sub(n as u64, Ordering::Relaxed);
        self.output_total.fetch_sub(n as u64, Ordering::Relaxed);
    }

    pub fn stream_opened(&self) {
        self.open_streams.fetch_add(1, Ordering::Relaxed);
    }

    pub fn stream_closed(&self) {
        self.open_streams.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Resident set size from `/proc/self/statm` (0 when unavailable).
pub fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    pages * u64::try_from(page).unwrap_or(4096)
}
