//! JSON control messages carried by `Hello`, `Open`, `Reply` and `Control` frames.
//!
//! Unknown fields are ignored so a newer minor protocol version may add optional
//! fields; unknown enum tags are errors (the connection is closed) except for
//! [`ErrorCode`] and [`FileKind`], which map unknown values to `Other`.

use bytes::Bytes;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::auth::AuthToken;
use crate::frame::{Frame, FrameKind};
use crate::MAX_CONTROL_PAYLOAD;

/// First frame in each direction: the sender's protocol and software versions, and
/// from a host the agent's token when the agent requires one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hello {
    /// `major << 16 | minor`; peers must agree on the major half.
    pub protocol: u32,
    /// The sender's software version (the agent's crate version), for diagnostics.
    pub version: String,
    /// Host to agent only (since protocol 1.1): the token an agent started with one
    /// requires. Absent from the JSON when `None`, so older peers parse the hello.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<AuthToken>,
}

/// Opens a stream: the operation to run on it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Request {
    /// Replied with `Pong`.
    Ping,
    /// Replied with `Stats`.
    Stats,
    /// Replied with `Ok`, then the agent kills every process and exits.
    Shutdown,
    /// Replied with `Started` (or `Error`), then output frames, then `Exit`.
    Exec(ExecStart),
    /// Replied with `Data` frames holding the content, then `Ok`.
    ReadFile { path: String, max: u64 },
    /// The host sends `size` bytes as `Data` frames and an `Eof`; replied with `Ok`.
    WriteFile {
        path: String,
        mode: u32,
        create_parents: bool,
        size: u64,
    },
    /// Replied with zero or more `Entries` chunks, then `Ok`.
    ListDir { path: String },
    /// Replied with `Entry` (the entry is not followed when it is a symlink).
    Stat { path: String },
    /// Replied with `Ok`.
    Remove { path: String, recursive: bool },
    /// Replied with `Ok`.
    Mkdir { path: String, parents: bool },
    /// Opens a TCP connection to `port` on the sandbox's loopback (or on the address the
    /// port listens on, when it listens on one address only). Replied with `Connected`
    /// (or `Error`, `connection_refused` when nothing listens), then `Data` both ways,
    /// each within the receiver's window; the host's `Eof` shuts the connection's write
    /// side; the agent's `Ok` ends the stream once the peer closed its side. Since 1.2.
    Connect { port: u16 },
    /// Replied with `Ports`: the TCP ports listening in the sandbox's network namespace.
    /// Since 1.2.
    ListPorts,
}

/// The wire form of an exec request.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecStart {
    pub argv: Vec<String>,
    #[serde(default)]
    pub env: Vec<String>,
    #[serde(default)]
    pub cwd: Option<String>,
    #[serde(default)]
    pub user: Option<String>,
    #[serde(default)]
    pub timeout_ms: Option<u64>,
    #[serde(default)]
    pub tty: Option<TtySize>,
    #[serde(default)]
    pub stdin: bool,
}

/// Terminal size in character cells.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct TtySize {
    pub cols: u16,
    pub rows: u16,
}

/// Host to agent on a running exec stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Control {
    Resize { cols: u16, rows: u16 },
    Signal { signo: i32 },
}

/// Agent to host on a stream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Reply {
    Ok,
    Pong,
    Stats {
        stats: AgentStats,
    },
    Started {
        pid: u32,
    },
    Exit {
        status: ExitStatus,
    },
    Entries {
        entries: Vec<DirEntry>,
    },
    Entry {
        entry: DirEntry,
    },
    /// A `Connect` stream reached its port.
    Connected,
    Ports {
        ports: Vec<ListeningPort>,
    },
    Error {
        code: ErrorCode,
        message: String,
    },
}

/// A TCP socket in the LISTEN state.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ListeningPort {
    pub port: u16,
    /// The address it is bound to, as written by `std::net::IpAddr` (`0.0.0.0`, `::`,
    /// `127.0.0.1`, ...).
    pub address: String,
}

impl Reply {
    pub fn error(code: ErrorCode, message: impl Into<String>) -> Reply {
        Reply::Error {
            code,
            message: message.into(),
        }
    }
}

/// How a process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub struct ExitStatus {
    /// The exit code when the process exited normally.
    pub code: Option<i32>,
    /// The signal that killed it.
    pub signal: Option<i32>,
    /// The agent killed it because its timeout passed.
    pub timed_out: bool,
}

impl ExitStatus {
    /// The status as a shell reports it: 124 on timeout, else the code, else
    /// 128 + signal (255 when neither is known).
    pub fn shell_code(&self) -> i32 {
        if self.timed_out {
            124
        } else if let Some(code) = self.code {
            code
        } else if let Some(signal) = self.signal {
            128 + signal
        } else {
            255
        }
    }

    /// How it ended, in a few words for a report: `timed out after 60s` (`timeout` is
    /// the one the command was given), `exit 1`, `killed by signal 9`.
    pub fn describe(&self, timeout: std::time::Duration) -> String {
        if self.timed_out {
            format!("timed out after {}s", timeout.as_secs())
        } else if let Some(code) = self.code {
            format!("exit {code}")
        } else if let Some(sig) = self.signal {
            format!("killed by signal {sig}")
        } else {
            "ended without a status".into()
        }
    }

    /// Exited normally with code 0 and no timeout.
    pub fn success(&self) -> bool {
        !self.timed_out && self.code == Some(0)
    }
}

/// What kind of file a [`DirEntry`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FileKind {
    File,
    Dir,
    Symlink,
    Fifo,
    Socket,
    CharDevice,
    BlockDevice,
    #[serde(other)]
    Other,
}

/// One file, as listed or stat'ed by the agent (symlinks are not followed).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct DirEntry {
    /// File name (not the full path); non-UTF-8 bytes are replaced by U+FFFD.
    pub name: String,
    pub kind: FileKind,
    pub size: u64,
    /// Permission bits (`st_mode & 0o7777`).
    pub mode: u32,
    /// Modification time, seconds since the Unix epoch.
    pub mtime: i64,
}

/// Counters an agent reports for diagnostics and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct AgentStats {
    /// Output bytes read from children and queued towards hosts, not yet written.
    pub buffered_bytes: u64,
    /// The highest `buffered_bytes` seen since the agent started.
    pub buffered_high_water: u64,
    /// Output bytes (stdout, stderr, PTY, file content) sent since the agent started.
    pub output_bytes_total: u64,
    /// Open streams over all connections.
    pub open_streams: u64,
    /// Exec children still running.
    pub running_children: u64,
    /// Resident set size of the agent, in bytes.
    pub rss_bytes: u64,
}

/// Why the agent refused or failed an operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    NotFound,
    PermissionDenied,
    AlreadyExists,
    IsADirectory,
    NotADirectory,
    DirectoryNotEmpty,
    TooLarge,
    InvalidRequest,
    UnknownUser,
    SpawnFailed,
    TooManyStreams,
    ProtocolMismatch,
    /// The connection did not present the token the agent requires.
    Unauthorized,
    /// A path component is longer than the filesystem allows (ENAMETOOLONG).
    NameTooLong,
    /// The file is in use: a running program's text, a mount point (ETXTBSY, EBUSY).
    Busy,
    /// The sandbox's disk is full (ENOSPC, EDQUOT).
    NoSpace,
    /// The arguments and environment of a program are over the kernel's limit (E2BIG).
    ArgumentsTooLong,
    /// Nothing listens on the port a `Connect` named (ECONNREFUSED), or it did not
    /// answer in time.
    ConnectionRefused,
    Io,
    #[serde(other)]
    Other,
}

/// A JSON payload that could not be encoded or decoded.
#[derive(Debug, thiserror::Error)]
pub enum MessageError {
    #[error("The {kind:?} frame does not hold a valid message.")]
    Invalid {
        kind: FrameKind,
        #[source]
        source: serde_json::Error,
    },
    #[error("The encoded message is {len} bytes, over the limit of {max}.")]
    TooLarge { len: usize, max: usize },
    #[error("Expected a {expected:?} frame, got {got:?}.")]
    WrongKind { expected: FrameKind, got: FrameKind },
}

/// Parses the JSON payload of `frame`, which must be of kind `expected`.
pub fn decode<T: DeserializeOwned>(frame: &Frame, expected: FrameKind) -> Result<T, MessageError> {
    if frame.kind != expected {
        return Err(MessageError::WrongKind {
            expected,
            got: frame.kind,
        });
    }
    serde_json::from_slice(&frame.payload).map_err(|source| MessageError::Invalid {
        kind: frame.kind,
        source,
    })
}

/// Builds a JSON frame, refusing payloads over [`MAX_CONTROL_PAYLOAD`].
pub fn encode<T: Serialize>(kind: FrameKind, stream: u32, msg: &T) -> Result<Frame, MessageError> {
    let json = serde_json::to_vec(msg).map_err(|source| MessageError::Invalid { kind, source })?;
    if json.len() > MAX_CONTROL_PAYLOAD {
        return Err(MessageError::TooLarge {
            len: json.len(),
            max: MAX_CONTROL_PAYLOAD,
        });
    }
    Ok(Frame::new(kind, stream, Bytes::from(json)))
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn frame(kind: FrameKind, json: &str) -> Frame {
        Frame::new(kind, 1, json.as_bytes().to_vec())
    }

    #[test]
    fn requests_have_a_stable_shape() {
        let req = Request::ReadFile {
            path: "/etc/hostname".into(),
            max: 10,
        };
        let json = serde_json::to_string(&req).unwrap();
        assert_eq!(
            json,
            r#"{"op":"read_file","path":"/etc/hostname","max":10}"#
        );
        let exec: Request = decode(
            &frame(FrameKind::Open, r#"{"op":"exec","argv":["true"]}"#),
            FrameKind::Open,
        )
        .unwrap();
        assert_eq!(
            exec,
            Request::Exec(ExecStart {
                argv: vec!["true".into()],
                ..ExecStart::default()
            })
        );
    }

    #[test]
    fn hello_token_is_optional_and_omitted_when_absent() {
        let old: Hello = decode(
            &frame(FrameKind::Hello, r#"{"protocol":65536,"version":"0.1.0"}"#),
            FrameKind::Hello,
        )
        .unwrap();
        assert_eq!(old.token, None);
        let ours = Hello {
            protocol: crate::PROTOCOL_VERSION,
            version: "1".into(),
            token: None,
        };
        let json = serde_json::to_string(&ours).unwrap();
        assert!(!json.contains("token"), "{json}");

        let with: Hello = decode(
            &frame(
                FrameKind::Hello,
                r#"{"protocol":65537,"version":"x","token":"0123456789abcdef"}"#,
            ),
            FrameKind::Hello,
        )
        .unwrap();
        let expected = AuthToken::from_secret("0123456789abcdef").unwrap();
        assert!(expected.verify(with.token.as_ref()));
        assert!(!format!("{with:?}").contains("0123456789abcdef"));
        let json = serde_json::to_string(&with).unwrap();
        assert!(json.ends_with(r#""token":"0123456789abcdef"}"#), "{json}");
        // A token that is not a string is a malformed hello, not a missing token.
        let r: Result<Hello, _> = decode(
            &frame(
                FrameKind::Hello,
                r#"{"protocol":1,"version":"x","token":7}"#,
            ),
            FrameKind::Hello,
        );
        assert!(r.is_err());
        let code = serde_json::to_string(&ErrorCode::Unauthorized).unwrap();
        assert_eq!(code, r#""unauthorized""#);
    }

    #[test]
    fn bad_json_is_an_error() {
        for json in [
            "",
            "{",
            "null",
            r#"{"op":"nope"}"#,
            r#"{"op":"stat"}"#,
            "[1,2]",
        ] {
            let r: Result<Request, _> = decode(&frame(FrameKind::Open, json), FrameKind::Open);
            assert!(r.is_err(), "{json}");
        }
        let deep = "[".repeat(100_000);
        let r: Result<Reply, _> = decode(&frame(FrameKind::Reply, &deep), FrameKind::Reply);
        assert!(r.is_err());
        let r: Result<Reply, _> = decode(
            &frame(FrameKind::Open, r#"{"type":"ok"}"#),
            FrameKind::Reply,
        );
        assert!(matches!(r, Err(MessageError::WrongKind { .. })));
    }

    #[test]
    fn unknown_codes_and_kinds_map_to_other() {
        let r: Reply = decode(
            &frame(
                FrameKind::Reply,
                r#"{"type":"error","code":"brand_new","message":"x"}"#,
            ),
            FrameKind::Reply,
        )
        .unwrap();
        assert_eq!(r, Reply::error(ErrorCode::Other, "x"));
        let k: FileKind = serde_json::from_str(r#""whiteout""#).unwrap();
        assert_eq!(k, FileKind::Other);
    }

    #[test]
    fn shell_codes() {
        let st = |code, signal, timed_out| ExitStatus {
            code,
            signal,
            timed_out,
        };
        assert_eq!(st(Some(3), None, false).shell_code(), 3);
        assert_eq!(st(None, Some(9), false).shell_code(), 137);
        assert_eq!(st(None, Some(9), true).shell_code(), 124);
        assert!(st(Some(0), None, false).success());
        assert!(!st(Some(0), None, true).success());
    }

    #[test]
    fn oversized_messages_are_refused() {
        let req = Request::Stat {
            path: "x".repeat(MAX_CONTROL_PAYLOAD),
        };
        assert!(matches!(
            encode(FrameKind::Open, 1, &req),
            Err(MessageError::TooLarge { .. })
        ));
    }

    fn arb_entry() -> impl Strategy<Value = DirEntry> {
        (".*", 0u64.., 0u32..0o10000, any::<i64>()).prop_map(|(name, size, mode, mtime)| DirEntry {
            name,
            kind: FileKind::Symlink,
            size,
            mode,
            mtime,
        })
    }

    proptest! {
        #[test]
        fn prop_exec_round_trip(
            argv in proptest::collection::vec(".*", 1..8),
            env in proptest::collection::vec("[A-Z]{1,5}=.*", 0..4),
            cwd in proptest::option::of("/.*"),
            timeout_ms in proptest::option::of(any::<u64>()),
            cols in any::<u16>(), rows in any::<u16>(), stdin in any::<bool>(),
        ) {
            let req = Request::Exec(ExecStart {
                argv, env, cwd, user: Some("1000:1000".into()), timeout_ms,
                tty: Some(TtySize { cols, rows }), stdin,
            });
            let f = encode(FrameKind::Open, 5, &req).unwrap();
            let back: Request = decode(&f, FrameKind::Open).unwrap();
            prop_assert_eq!(back, req);
        }

        #[test]
        fn prop_reply_round_trip(entries in proptest::collection::vec(arb_entry(), 0..8), msg in ".*") {
            for reply in [Reply::Entries { entries: entries.clone() }, Reply::error(ErrorCode::TooLarge, msg.clone())] {
                let f = encode(FrameKind::Reply, 5, &reply).unwrap();
                let back: Reply = decode(&f, FrameKind::Reply).unwrap();
                prop_assert_eq!(back, reply);
            }
        }

        #[test]
        fn prop_arbitrary_json_payloads_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let f = Frame::new(FrameKind::Reply, 1, bytes);
            let _ = decode::<Reply>(&f, FrameKind::Reply);
            let _ = decode::<Request>(&Frame { kind: FrameKind::Open, ..f.clone() }, FrameKind::Open);
            let _ = decode::<Control>(&Frame { kind: FrameKind::Control, ..f }, FrameKind::Control);
        }
    }
}
