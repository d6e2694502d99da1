//! The protocol between the Sandlab host and `sandlab-agent`, the PID 1 of every
//! sandbox, plus the host-side client ([`AgentClient`]).
//!
//! # Transport
//! The protocol runs over any reliable byte stream ([`AgentStream`]). Two are built in:
//! - **Unix socket**: the host listens on it and hands it to the sandbox (runc passes it
//!   as fd 3, `SANDLAB_AGENT_FD=3`); [`AgentClient::connect`]. The socket's file
//!   permissions are the access control, so no token is needed.
//! - **TCP**, for a sandbox on another machine (a Kubernetes pod, a microVM): the
//!   agent listens on an address and requires a per-sandbox token;
//!   [`AgentClient::connect_tcp`]. TCP is not encrypted and the agent does not prove
//!   who it is: use it on a network that only the host and the sandbox can reach
//!   (a pod network behind a NetworkPolicy, a microVM's private link), or tunnel it.
//!
//! Any other stream is handed to [`AgentClient::handshake`]. The agent accepts any
//! number of connections. Each connection is one byte stream of [frames](frame),
//! multiplexing any number of streams identified by a `u32` the host picks (0 is the
//! connection itself).
//!
//! # Frames
//! `u32 BE payload length | u8 kind | u32 BE stream id | payload`. Payloads are at most
//! [`MAX_PAYLOAD`] bytes for data and [`MAX_CONTROL_PAYLOAD`] for JSON control
//! messages; the decoder rejects a bigger length, an unknown kind or a malformed header
//! before allocating, and the receiver then closes that connection (and only that one).
//!
//! # Handshake
//! The host sends a [`messages::Hello`] on stream 0 as its first frame without waiting
//! for the agent. `protocol` is `major << 16 | minor` ([`PROTOCOL_VERSION`]); a
//! different major is an error on both sides: the host fails the connect with
//! [`Error::ProtocolMismatch`], the agent answers a `Reply::Error` with code
//! `protocol_mismatch` on stream 0 and closes. Both sides bound the handshake with a
//! timeout ([`HANDSHAKE_TIMEOUT`] unless configured), so a silent peer is dropped.
//!
//! An agent started without a token sends its own `Hello` at once, without waiting
//! for the host's, and ignores a token the host may send.
//!
//! An agent started with a token (always the case over TCP) sends nothing until it
//! has the host's `Hello`, which must carry the token in its `token` field (protocol
//! 1.1; the field is omitted when there is none, so 1.0 peers parse every hello). The agent
//! compares it in constant time ([`AuthToken::verify`]). On a match it answers with
//! its `Hello` and the connection proceeds as usual; on a missing or wrong token it
//! answers a `Reply::Error` with code `unauthorized` on stream 0 and closes, and the
//! host fails the connect with [`Error::Unauthorized`]. A host therefore learns
//! nothing about the agent, not even its version, before it has authenticated.
//!
//! # Streams
//! The host opens a stream by sending an `Open` frame with a [`messages::Request`] on a
//! fresh stream id. The agent answers with `Reply` frames (JSON), `Data` / `Stderr`
//! frames (raw bytes) and for exec a final `Reply::Exit`. A stream ends with its
//! terminal reply (`Ok`, `Pong`, `Stats`, `Entry`, `Exit` or `Error`); the host may end
//! it early with `Reset`, after which the agent stops the operation (an exec's process
//! group is killed) and frames still in flight for it are ignored by both sides.
//!
//! # Windows (flow control)
//! Data is credit based per stream, like SSH channels or HTTP/2 windows. Each side
//! starts every stream with [`INITIAL_WINDOW`] bytes of credit for the data it
//! *receives*, and only ever sends as many `Data`/`Stderr` payload bytes as the peer
//! granted. A `Window` frame (u32 BE increment) grants more once the receiver has
//! consumed bytes: the host client grants when the application takes an event out of
//! an [`ExecSession`], the agent when it has written stdin to the child's pipe or file
//! bytes to disk. While a stream's window is exhausted the agent does not read the
//! child's pipe, so the child blocks in `write` and memory stays flat on both sides;
//! bytes beyond the granted credit are a protocol violation that closes the
//! connection. Outstanding credit is capped at [`MAX_WINDOW`].
//!
//! Everything the agent sends is untrusted: sizes, JSON, stream ids, windows and the
//! order of replies are validated, and a violation fails the connection with an error
//! returned to every pending call, never a panic.

pub mod auth;
mod client;
mod error;
pub mod frame;
pub mod launch;
pub mod messages;
pub mod validate;

use std::time::Duration;

pub use auth::{AuthToken, TokenError};
/// Re-exported: [`frame::FrameDecoder`] and [`ExecEvent`] use its types.
pub use bytes;
pub use client::{
    AgentClient, AgentStream, ExecEvent, ExecEvents, ExecInput, ExecOutput, ExecRequest,
    ExecSession, PortStream,
};
pub use error::{CloseCause, Error, Result};
pub use messages::{AgentStats, DirEntry, ErrorCode, ExitStatus, FileKind, ListeningPort, TtySize};

/// `major << 16 | minor`. Peers with a different major refuse each other.
/// 1.1 added the host's token to [`messages::Hello`]; 1.2 the `Connect` and `ListPorts`
/// requests (the port proxy).
pub const PROTOCOL_VERSION: u32 = 1 << 16 | 2;

/// The major half of a protocol version.
pub const fn protocol_major(version: u32) -> u32 {
    version >> 16
}

/// Largest payload of a data frame.
pub const MAX_PAYLOAD: usize = 256 * 1024;
/// Largest payload of a JSON frame.
pub const MAX_CONTROL_PAYLOAD: usize = 128 * 1024;
/// Largest data chunk either side puts in one frame.
pub const DATA_CHUNK: usize = 64 * 1024;
/// Credit each side starts a stream with, per direction.
pub const INITIAL_WINDOW: u32 = 256 * 1024;
/// Most credit a receiver may have outstanding on one stream.
pub const MAX_WINDOW: u32 = 16 * 1024 * 1024;
/// Largest file the agent reads or writes in one operation.
pub const MAX_FILE_SIZE: u64 = 1 << 30;
/// Longest path accepted by file operations.
pub const MAX_PATH_LEN: usize = 4096;
/// Most argv entries of an exec.
pub const MAX_ARGS: usize = 4096;
/// Most environment entries of an exec.
pub const MAX_ENV: usize = 1024;
/// Most streams open at once on one connection.
pub const MAX_STREAMS: usize = 1024;
/// Most entries the client accepts from one directory listing.
pub const MAX_DIR_ENTRIES: usize = 100_000;
/// Handshake timeout used by [`AgentClient::from_stream`], and by the agent unless
/// configured otherwise.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
