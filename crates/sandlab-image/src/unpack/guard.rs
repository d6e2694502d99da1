//! The layer stream below the tar parser: decompression and a byte budget.
//!
//! The tar parser reads long names and PAX records into memory before it yields the
//! entry they describe, and skips entry data it is not asked for by reading it. The
//! [`Guarded`] reader bounds both: after each yielded entry it allows exactly that
//! entry's padded data plus [`MAX_ENTRY_METADATA`] bytes of headers for the next one,
//! and never more than the layer's total cap. Reading past the allowance fails.

use std::cell::Cell;
use std::io::{self, Cursor, Read};
use std::rc::Rc;

use flate2::read::MultiGzDecoder;

use super::MAX_ENTRY_METADATA;

/// The largest zstd window accepted (2^27 = 128 MiB, zstd's own default limit).
const ZSTD_WINDOW_LOG_MAX: u32 = 27;

/// Wraps `reader` in the decompressor its first bytes call for (gzip, zstd or none).
pub(super) fn decompress<'a, R: Read + 'a>(mut reader: R) -> io::Result<Box<dyn Read + 'a>> {
    let mut head = [0u8; 4];
    let mut got = 0;
    while got < head.len() {
        match reader.read(&mut head[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    let head = &head[..got];
    let stream = Cursor::new(head.to_vec()).chain(reader);
    if head.starts_with(&[0x1f, 0x8b]) {
        Ok(Box::new(MultiGzDecoder::new(stream)))
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        let mut decoder = zstd::stream::read::Decoder::new(stream)?;
        decoder.window_log_max(ZSTD_WINDOW_LOG_MAX)?;
        Ok(Box::new(decoder))
    } else {
        Ok(Box::new(stream))
    }
}

/// How far into the tar stream reading may go.
pub(super) struct Budget {
    pos: Cell<u64>,
    limit: Cell<u64>,
    cap: u64,
    tripped: Cell<bool>,
}

impl Budget {
    pub(super) fn new(cap: u64) -> Self {
        Self {
            pos: Cell::new(0),
            limit: Cell::new(MAX_ENTRY_METADATA.min(cap)),
            cap,
            tripped: Cell::new(false),
        }
    }

    /// An entry of `size` data bytes was just yielded: allow its data and the headers
    /// of the next entry.
    pub(super) fn allow_entry(&self, size: u64) {
        let padded = size.saturating_add(511) & !511;
        let limit = self
            .pos
            .get()
            .saturating_add(padded)
            .saturating_add(MAX_ENTRY_METADATA);
        self.limit.set(limit.min(self.cap));
    }

    /// Whether reading failed because the budget ran out.
    pub(super) fn tripped(&self) -> bool {
        self.tripped.get()
    }

    /// Whether it was the layer's total cap (rather than one entry's headers) that ran out.
    pub(super) fn total_tripped(&self) -> bool {
        self.tripped.get() && self.limit.get() >= self.cap
    }
}

/// A reader that fails once it has read up to its [`Budget`]'s limit.
pub(super) struct Guarded<R> {
    inner: R,
    budget: Rc<Budget>,
}

impl<R> Guarded<R> {
    pub(super) fn new(inner: R, budget: Rc<Budget>) -> Self {
        Self { inner, budget }
    }
}

impl<R: Read> Read for Guarded<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let pos = self.budget.pos.get();
        let left = self.budget.limit.get().saturating_sub(pos);
        if left == 0 {
            self.budget.tripped.set(true);
            return Err(io::Error::other("the layer exceeds its size budget"));
        }
        let max = usize::try_from(left).unwrap_or(usize::MAX).min(buf.len());
        let n = self.inner.read(&mut buf[..max])?;
        self.budget.pos.set(pos + n as u64);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    #[test]
    fn detects_compression() {
        let data = b"hello tar".to_vec();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&data).unwrap();
        let gz = gz.finish().unwrap();
        let zst = zstd::encode_all(&data[..], 1).unwrap();
        for input in [data.clone(), gz, zst] {
            let mut out = Vec::new();
            decompress(&input[..])
                .unwrap()
                .read_to_end(&mut out)
                .unwrap();
            assert_eq!(out, data);
        }
        let mut out = Vec::new();
        decompress(&b"ab"[..])
            .unwrap()
            .read_to_end(&mut out)
            .unwrap();
        assert_eq!(out, b"ab");
    }

    #[test]
    fn budget_stops_reading() {
        let budget = Rc::new(Budget::new(10_000_000));
        let data = vec![0u8; 3 * MAX_ENTRY_METADATA as usize];
        let mut r = Guarded::new(&data[..], Rc::clone(&budget));
        let mut out = Vec::new();
        assert!(r.read_to_end(&mut out).is_err());
        assert_eq!(out.len() as u64, MAX_ENTRY_METADATA);
        assert!(budget.tripped() && !budget.total_tripped());
    }
}
