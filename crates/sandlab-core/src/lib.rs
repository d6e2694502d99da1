//! Sandlab domain types shared by every crate: sandbox ids, byte sizes, durations,
//! resource limits, network modes, the sandbox state machine's states, sandbox records and
//! the traits of the stores that keep them (records and leases).
//!
//! This crate does no I/O. Everything here parses untrusted text (CLI flags, lab files,
//! request bodies) into validated values, so parsing never panics and every error is one
//! sentence naming what was wrong.

mod errors;
mod id;
mod limits;
mod record;
mod units;

pub use errors::error_chain;
pub use id::{random_id, IdError, SandboxId};
pub use limits::{
    Limits, LimitsError, NetworkMode, Profile, SandboxState, MAX_CPUS, MAX_DISK, MAX_MEMORY,
    MAX_PIDS,
};
pub use record::{
    Holder, HolderError, Lease, LeaseStore, NetworkInfo, RecordStore, SandboxRecord, StoreError,
    StoreResult, DEFAULT_TTL,
};
pub use units::{parse_duration, parse_size, rfc3339_millis, ByteSize, UnitError};
