//! Frame layout and the byte-level codec shared by the host and the agent.
//!
//! Every frame is a 9-byte header followed by its payload:
//!
//! ```text
//! 0        4      5          9
//! +--------+------+----------+------------------+
//! | length | kind | stream   | payload ...      |
//! | u32 BE | u8   | u32 BE   | `length` bytes   |
//! +--------+------+----------+------------------+
//! ```
//!
//! `length` counts the payload only. The decoder checks the length against
//! [`MAX_PAYLOAD`] (and [`MAX_CONTROL_PAYLOAD`] for JSON kinds) and the kind against the
//! known kinds *before* it reserves any memory, so a hostile peer cannot make the other
//! side allocate more than one maximum frame. Structural rules that need no parsing
//! (a window frame carries exactly four bytes, `Eof`/`Reset` carry none, `Hello` travels
//! on stream 0, where only connection-level error replies may join it) are checked here too; JSON payloads are parsed by
//! [`crate::messages`].
//!
//! [`FrameDecoder::decode`] is a pure function over a `BytesMut`, used by both sides and
//! by the fuzz target.

use bytes::{Buf, BufMut, Bytes, BytesMut};

use crate::{MAX_CONTROL_PAYLOAD, MAX_PAYLOAD};

/// Size of the fixed frame header in bytes.
pub const HEADER_LEN: usize = 9;

/// What a frame carries. The numeric values are part of the wire format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum FrameKind {
    /// Both directions, stream 0, JSON [`crate::messages::Hello`]. First frame each way.
    Hello = 1,
    /// Host to agent, JSON [`crate::messages::Request`]: opens a stream.
    Open = 2,
    /// Agent to host, JSON [`crate::messages::Reply`]: a result, an exit or an error.
    Reply = 3,
    /// Raw bytes: stdin or file content (host to agent), stdout, PTY output or file
    /// content (agent to host). Counted against the receiver's window.
    Data = 4,
    /// Agent to host, raw stderr bytes. Counted against the same window as `Data`.
    Stderr = 5,
    /// Host to agent, empty: the end of stdin or of a file being written.
    Eof = 6,
    /// Both directions, a u32 BE credit increment for the stream's data.
    Window = 7,
    /// Host to agent, JSON [`crate::messages::Control`]: resize or signal.
    Control = 8,
    /// Host to agent, empty: the host abandons the stream; the agent stops the operation.
    Reset = 9,
}

impl FrameKind {
    /// Parses a kind byte; `None` for bytes no kind uses.
    pub fn from_u8(byte: u8) -> Option<FrameKind> {
        Some(match byte {
            1 => FrameKind::Hello,
            2 => FrameKind::Open,
            3 => FrameKind::Reply,
            4 => FrameKind::Data,
            5 => FrameKind::Stderr,
            6 => FrameKind::Eof,
            7 => FrameKind::Window,
            8 => FrameKind::Control,
            9 => FrameKind::Reset,
            _ => return None,
        })
    }

    /// Whether the payload of this kind is a JSON document.
    pub fn is_json(self) -> bool {
        matches!(
            self,
            FrameKind::Hello | FrameKind::Open | FrameKind::Reply | FrameKind::Control
        )
    }

    fn max_payload(self) -> usize {
        match self {
            FrameKind::Eof | FrameKind::Reset => 0,
            FrameKind::Window => 4,
            FrameKind::Data | FrameKind::Stderr => MAX_PAYLOAD,
            _ => MAX_CONTROL_PAYLOAD,
        }
    }
}

/// One decoded frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    pub kind: FrameKind,
    pub stream: u32,
    pub payload: Bytes,
}

impl Frame {
    pub fn new(kind: FrameKind, stream: u32, payload: impl Into<Bytes>) -> Frame {
        Frame {
            kind,
            stream,
            payload: payload.into(),
        }
    }

    /// A frame with no payload (`Eof`, `Reset`).
    pub fn empty(kind: FrameKind, stream: u32) -> Frame {
        Frame::new(kind, stream, Bytes::new())
    }

    /// A window update granting `credit` more bytes on `stream`.
    pub fn window(stream: u32, credit: u32) -> Frame {
        Frame::new(
            FrameKind::Window,
            stream,
            Bytes::copy_from_slice(&credit.to_be_bytes()),
        )
    }

    /// The credit of a `Window` frame (the decoder guarantees the payload is 4 bytes).
    pub fn window_credit(&self) -> Option<u32> {
        let bytes: [u8; 4] = self.payload.as_ref().try_into().ok()?;
        (self.kind == FrameKind::Window).then(|| u32::from_be_bytes(bytes))
    }

    /// Total encoded length, header included.
    pub fn encoded_len(&self) -> usize {
        HEADER_LEN + self.payload.len()
    }

    /// Appends the encoded frame to `dst`.
    ///
    /// Fails (writing nothing) when the frame breaks the same rules the decoder
    /// enforces, so a sender cannot produce what its peer would reject.
    pub fn encode(&self, dst: &mut BytesMut) -> Result<(), FrameError> {
        check(self.kind, self.stream, self.payload.len())?;
        dst.reserve(self.encoded_len());
        // The cast cannot truncate: `check` bounded the length by MAX_PAYLOAD.
        dst.put_u32(self.payload.len() as u32);
        dst.put_u8(self.kind as u8);
        dst.put_u32(self.stream);
        dst.put_slice(&self.payload);
        Ok(())
    }

    /// Encodes into a fresh buffer.
    pub fn to_bytes(&self) -> Result<Bytes, FrameError> {
        let mut buf = BytesMut::with_capacity(self.encoded_len());
        self.encode(&mut buf)?;
        Ok(buf.freeze())
    }
}

/// A frame that breaks the wire format. The connection it came on must be closed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("Frame kind {0:#04x} is unknown.")]
    UnknownKind(u8),
    #[error("A {kind:?} frame of {len} bytes exceeds the limit of {max} bytes.")]
    TooLarge {
        kind: FrameKind,
        len: usize,
        max: usize,
    },
    #[error("A window frame must carry exactly four bytes, not {0}.")]
    BadWindow(usize),
    #[error("A {kind:?} frame may not use stream {stream}.")]
    BadStream { kind: FrameKind, stream: u32 },
}

fn check(kind: FrameKind, stream: u32, len: usize) -> Result<(), FrameError> {
    if kind == FrameKind::Window && len != 4 {
        return Err(FrameError::BadWindow(len));
    }
    let max = kind.max_payload();
    if len > max {
        return Err(FrameError::TooLarge { kind, len, max });
    }
    // Stream 0 is the connection itself: it carries the hellos and connection-level
    // error replies, and nothing else.
    let on_zero_ok = matches!(kind, FrameKind::Hello | FrameKind::Reply);
    let off_zero_ok = kind != FrameKind::Hello;
    if (stream == 0 && !on_zero_ok) || (stream != 0 && !off_zero_ok) {
        return Err(FrameError::BadStream { kind, stream });
    }
    Ok(())
}

/// Incremental frame decoder.
///
/// Feed it whatever bytes arrived; it returns complete frames one at a time and leaves
/// partial ones in the buffer. After an error the stream is out of sync and the
/// connection must be dropped.
#[derive(Debug, Default, Clone)]
pub struct FrameDecoder {
    _private: (),
}

impl FrameDecoder {
    pub fn new() -> FrameDecoder {
        FrameDecoder::default()
    }

    /// Takes one complete frame off the front of `src`, `Ok(None)` if more bytes are
    /// needed. Never reserves more than one maximal frame.
    pub fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Frame>, FrameError> {
        if src.len() < HEADER_LEN {
            return Ok(None);
        }
        let len = u32::from_be_bytes([src[0], src[1], src[2], src[3]]) as usize;
        let kind = FrameKind::from_u8(src[4]).ok_or(FrameError::UnknownKind(src[4]))?;
        let stream = u32::from_be_bytes([src[5], src[6], src[7], src[8]]);
        check(kind, stream, len)?;
        let total = HEADER_LEN + len;
        if src.len() < total {
            src.reserve(total - src.len());
            return Ok(None);
        }
        src.advance(HEADER_LEN);
        let payload = src.split_to(len).freeze();
        Ok(Some(Frame {
            kind,
            stream,
            payload,
        }))
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn header(len: u32, kind: u8, stream: u32) -> BytesMut {
        let mut b = BytesMut::new();
        b.put_u32(len);
        b.put_u8(kind);
        b.put_u32(stream);
        b
    }

    #[test]
    fn round_trip_simple() {
        let frame = Frame::new(FrameKind::Data, 7, &b"hello"[..]);
        let mut buf = BytesMut::new();
        frame.encode(&mut buf).unwrap();
        assert_eq!(&buf[..HEADER_LEN], &[0, 0, 0, 5, 4, 0, 0, 0, 7]);
        let got = FrameDecoder::new().decode(&mut buf).unwrap().unwrap();
        assert_eq!(got, frame);
        assert!(buf.is_empty());
    }

    #[test]
    fn partial_header_and_payload_wait_for_more() {
        let bytes = Frame::new(FrameKind::Stderr, 3, &b"abcdef"[..])
            .to_bytes()
            .unwrap();
        let mut dec = FrameDecoder::new();
        let mut buf = BytesMut::new();
        for (i, b) in bytes.iter().enumerate() {
            assert_eq!(dec.decode(&mut buf).unwrap(), None, "at byte {i}");
            buf.put_u8(*b);
        }
        assert_eq!(
            dec.decode(&mut buf).unwrap().unwrap().payload,
            &b"abcdef"[..]
        );
    }

    #[test]
    fn unknown_kind_is_rejected() {
        for kind in [0u8, 10, 0x7f, 0xff] {
            let mut buf = header(0, kind, 1);
            assert_eq!(
                FrameDecoder::new().decode(&mut buf),
                Err(FrameError::UnknownKind(kind))
            );
        }
    }

    #[test]
    fn oversized_length_is_rejected_without_allocating() {
        let mut buf = header(0xFFFF_FFFF, FrameKind::Data as u8, 1);
        let before = buf.capacity();
        let err = FrameDecoder::new().decode(&mut buf).unwrap_err();
        assert!(
            matches!(
                err,
                FrameError::TooLarge {
                    len: 0xFFFF_FFFF,
                    ..
                }
            ),
            "{err}"
        );
        assert_eq!(buf.capacity(), before);

        let mut buf = header(MAX_PAYLOAD as u32 + 1, FrameKind::Data as u8, 1);
        assert!(FrameDecoder::new().decode(&mut buf).is_err());
        let mut buf = header(MAX_CONTROL_PAYLOAD as u32 + 1, FrameKind::Reply as u8, 1);
        assert!(FrameDecoder::new().decode(&mut buf).is_err());
    }

    #[test]
    fn maximal_frame_reserves_at_most_one_frame() {
        let mut buf = header(MAX_PAYLOAD as u32, FrameKind::Data as u8, 1);
        assert_eq!(FrameDecoder::new().decode(&mut buf).unwrap(), None);
        assert!(buf.capacity() <= 2 * (HEADER_LEN + MAX_PAYLOAD));
    }

    #[test]
    fn structural_rules() {
        let cases: Vec<(BytesMut, &str)> = vec![
            (header(3, FrameKind::Window as u8, 1), "short window"),
            (header(5, FrameKind::Window as u8, 1), "long window"),
            (header(1, FrameKind::Eof as u8, 1), "eof with payload"),
            (header(1, FrameKind::Reset as u8, 1), "reset with payload"),
            (header(2, FrameKind::Hello as u8, 1), "hello off stream 0"),
            (header(2, FrameKind::Open as u8, 0), "open on stream 0"),
            (header(2, FrameKind::Data as u8, 0), "data on stream 0"),
            (header(4, FrameKind::Window as u8, 0), "window on stream 0"),
        ];
        let mut buf = header(2, FrameKind::Reply as u8, 0);
        buf.put_slice(b"{}");
        assert!(
            FrameDecoder::new().decode(&mut buf).unwrap().is_some(),
            "reply on stream 0"
        );
        for (mut buf, what) in cases {
            assert!(FrameDecoder::new().decode(&mut buf).is_err(), "{what}");
        }
        let bad = Frame::new(FrameKind::Window, 1, &b"abc"[..]);
        assert!(bad.encode(&mut BytesMut::new()).is_err());
    }

    #[test]
    fn window_frames() {
        let f = Frame::window(9, 123_456);
        let mut buf = BytesMut::from(&f.to_bytes().unwrap()[..]);
        let got = FrameDecoder::new().decode(&mut buf).unwrap().unwrap();
        assert_eq!(got.window_credit(), Some(123_456));
        assert_eq!(
            Frame::new(FrameKind::Data, 1, vec![0; 4]).window_credit(),
            None
        );
    }

    fn arb_frame() -> impl Strategy<Value = Frame> {
        (
            1u8..=9,
            1u32..,
            proptest::collection::vec(any::<u8>(), 0..512),
            any::<u32>(),
        )
            .prop_map(|(k, stream, payload, credit)| {
                let kind = FrameKind::from_u8(k).unwrap();
                match kind {
                    FrameKind::Hello => Frame::new(kind, 0, payload),
                    FrameKind::Window => Frame::window(stream, credit),
                    FrameKind::Eof | FrameKind::Reset => Frame::empty(kind, stream),
                    _ => Frame::new(kind, stream, payload),
                }
            })
    }

    proptest! {
        #[test]
        fn prop_round_trip_any_chunking(
            frames in proptest::collection::vec(arb_frame(), 0..16),
            cuts in proptest::collection::vec(1usize..64, 0..64),
        ) {
            let mut wire = BytesMut::new();
            for f in &frames {
                f.encode(&mut wire).unwrap();
            }
            let wire = wire.freeze();
            let mut dec = FrameDecoder::new();
            let mut buf = BytesMut::new();
            let mut got = Vec::new();
            let mut pos = 0;
            let mut cuts = cuts.into_iter().cycle();
            while pos < wire.len() {
                let n = cuts.next().unwrap_or(wire.len()).min(wire.len() - pos);
                buf.extend_from_slice(&wire[pos..pos + n]);
                pos += n;
                while let Some(f) = dec.decode(&mut buf).unwrap() {
                    got.push(f);
                }
            }
            prop_assert_eq!(got, frames);
            prop_assert!(buf.is_empty());
        }

        #[test]
        fn prop_garbage_never_panics_or_overallocates(
            bytes in proptest::collection::vec(any::<u8>(), 0..2048),
        ) {
            let mut buf = BytesMut::from(&bytes[..]);
            let mut dec = FrameDecoder::new();
            while let Ok(Some(_)) = dec.decode(&mut buf) {}
            prop_assert!(buf.capacity() <= 2 * (HEADER_LEN + MAX_PAYLOAD) + bytes.len());
        }
    }
}
