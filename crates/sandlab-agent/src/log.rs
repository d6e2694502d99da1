//! Diagnostics for debugging only: with `SANDLAB_AGENT_LOG=stderr` the agent writes one
//! line per event to stderr; otherwise it is silent (its stdio is `/dev/null` in
//! production and it reports through the protocol). A hand-rolled macro instead of
//! `tracing` keeps the static PID 1 small.

use std::sync::atomic::{AtomicBool, Ordering};

static ENABLED: AtomicBool = AtomicBool::new(false);

pub fn enable() {
    ENABLED.store(true, Ordering::Relaxed);
}

pub fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

/// Logs one line to stderr when logging is enabled; never fails or panics.
macro_rules! log {
    ($($arg:tt)*) => {
        if $crate::log::enabled() {
            use std::io::Write as _;
            let _ = writeln!(std::io::stderr(), "sandlab-agent[{}]: {}", std::process::id(), format_args!($($arg)*));
        }
    };
}
pub(crate) use log;

/// An error and its causes, on one line.
pub fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        text.push(' ');
        text.push_str(&c.to_string());
        cause = c.source();
    }
    text
}
