//! Sandlab domain types shared by every crate: sandbox ids, byte sizes, durations,
//! resource limits, network modes and the sandbox state machine's states.
//!
//! This crate does no I/O. Everything here parses untrusted text (CLI flags, lab files,
//! request bodies) into validated values, so parsing never panics and every error is one
//! sentence naming what was wrong.

mod id;
mod limits;
mod units;

pub use id::{IdError, SandboxId};
pub use limits::{Limits, LimitsError, NetworkMode, SandboxState};
pub use units::{parse_duration, parse_size, ByteSize, UnitError};
