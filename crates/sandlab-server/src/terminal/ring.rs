//! The scrollback ring: the last N bytes a terminal printed.

use std::collections::VecDeque;

use bytes::Bytes;

/// How far into a wrapped ring a snapshot looks for a line start to begin at.
const LINE_SEARCH: usize = 4096;

/// Keeps the most recent `limit` bytes of output; older bytes drop off the front.
#[derive(Debug)]
pub(super) struct Ring {
    buf: VecDeque<u8>,
    limit: usize,
    /// Output was dropped, so the front may be in the middle of a line.
    wrapped: bool,
}

impl Ring {
    pub(super) fn new(limit: usize) -> Ring {
        Ring {
            buf: VecDeque::new(),
            limit,
            wrapped: false,
        }
    }

    pub(super) fn len(&self) -> usize {
        self.buf.len()
    }

    pub(super) fn push(&mut self, bytes: &[u8]) {
        let tail = &bytes[bytes.len() - bytes.len().min(self.limit)..];
        let over = (self.buf.len() + tail.len()).saturating_sub(self.limit);
        if over > 0 || tail.len() < bytes.len() {
            self.wrapped = true;
        }
        self.buf.drain(..over);
        self.buf.extend(tail);
    }

    /// The kept bytes. Once output has been dropped the copy starts after the first
    /// newline near the front, so a replayed screen does not begin inside a line (or
    /// an escape sequence) that lost its start.
    pub(super) fn snapshot(&self) -> Bytes {
        let mut out = Vec::with_capacity(self.buf.len());
        let (front, back) = self.buf.as_slices();
        out.extend_from_slice(front);
        out.extend_from_slice(back);
        if self.wrapped {
            let search = &out[..out.len().min(LINE_SEARCH)];
            if let Some(newline) = search.iter().position(|&b| b == b'\n') {
                out.drain(..=newline);
            }
        }
        Bytes::from(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_everything_below_the_limit() {
        let mut ring = Ring::new(16);
        ring.push(b"abc");
        ring.push(b"def\n");
        assert_eq!(ring.snapshot(), Bytes::from_static(b"abcdef\n"));
        assert_eq!(ring.len(), 7);
    }

    #[test]
    fn drops_the_oldest_bytes() {
        let mut ring = Ring::new(8);
        ring.push(b"0123456");
        ring.push(b"789");
        assert_eq!(ring.len(), 8);
        // No newline to start at: the raw tail.
        assert_eq!(ring.snapshot(), Bytes::from_static(b"23456789"));
    }

    #[test]
    fn a_huge_chunk_keeps_its_tail() {
        let mut ring = Ring::new(4);
        ring.push(b"x");
        ring.push(b"abcdefgh");
        assert_eq!(ring.snapshot(), Bytes::from_static(b"efgh"));
    }

    #[test]
    fn a_wrapped_snapshot_starts_at_a_line() {
        let mut ring = Ring::new(10);
        ring.push(b"line one\nline two\nend");
        assert_eq!(ring.len(), 10);
        assert_eq!(ring.snapshot(), Bytes::from_static(b"end"));
    }

    #[test]
    fn zero_limit_keeps_nothing() {
        let mut ring = Ring::new(0);
        ring.push(b"abc");
        assert_eq!(ring.len(), 0);
        assert!(ring.snapshot().is_empty());
    }
}
