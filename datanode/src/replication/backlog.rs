//! `Backlog`: the circular buffer of the most recent replication stream bytes (pure, no I/O).
//!
//! The stream is numbered from byte 1: after `n` bytes were produced the master's offset
//! (`master_repl_offset`) is `n`, and a replica that has applied everything up to offset `n` asks
//! for byte `n + 1` in `PSYNC`. The backlog keeps the last `size` bytes, so it can serve any
//! request offset in `first_offset ..= first_offset + histlen` (the upper end means "nothing
//! missing"). At the limit the oldest bytes are overwritten; a replica that needs them gets a full
//! resynchronization instead.
//!
//! Invariants: `histlen <= buf.len()`; `first_offset + histlen` is the number of the next byte to
//! be appended (the owner's offset plus one); the bytes held are exactly the last `histlen` bytes
//! appended, in order.

use bytes::BytesMut;

use super::ReplOffset;

/// The circular backlog.
#[derive(Debug)]
pub struct Backlog {
    /// Ring storage; its length is the configured size.
    buf: Vec<u8>,
    /// Ring position where the next byte goes.
    head: usize,
    /// Bytes held (at most `buf.len()`).
    histlen: usize,
    /// Stream number of the oldest byte held.
    first_offset: u64,
}

impl Backlog {
    /// An empty backlog of `size` bytes (at least 1) whose next byte is `next`.
    pub fn new(size: usize, next: ReplOffset) -> Backlog {
        Backlog {
            buf: vec![0; size.max(1)],
            head: 0,
            histlen: 0,
            first_offset: next.0,
        }
    }

    /// Capacity in bytes (`repl-backlog-size`).
    pub fn size(&self) -> usize {
        self.buf.len()
    }

    /// Bytes held (`repl_backlog_histlen`).
    pub fn histlen(&self) -> usize {
        self.histlen
    }

    /// Stream number of the oldest byte held (`repl_backlog_first_byte_offset`).
    pub fn first_offset(&self) -> ReplOffset {
        ReplOffset(self.first_offset)
    }

    /// Stream number of the next byte to be appended.
    pub fn next_offset(&self) -> ReplOffset {
        ReplOffset(self.first_offset + self.histlen as u64)
    }

    /// Appends `data`, dropping the oldest bytes when full.
    pub fn append(&mut self, mut data: &[u8]) {
        let size = self.buf.len();
        let next = self.first_offset + self.histlen as u64 + data.len() as u64;
        // Only the last `size` bytes of a huge append can survive; skip the rest.
        if data.len() > size {
            data = &data[data.len() - size..];
        }
        let first = (size - self.head).min(data.len());
        self.buf[self.head..self.head + first].copy_from_slice(&data[..first]);
        self.buf[..data.len() - first].copy_from_slice(&data[first..]);
        self.head = (self.head + data.len()) % size;
        self.histlen = (self.histlen + data.len()).min(size);
        self.first_offset = next - self.histlen as u64;
    }

    /// Copies the bytes from stream number `from` to the end into `out`; false (and nothing
    /// copied) when `from` is outside `first_offset ..= next_offset`.
    pub fn copy_from(&self, from: ReplOffset, out: &mut BytesMut) -> bool {
        let next = self.first_offset + self.histlen as u64;
        if from.0 < self.first_offset || from.0 > next {
            return false;
        }
        let skip = (from.0 - self.first_offset) as usize;
        let len = self.histlen - skip;
        let size = self.buf.len();
        // The oldest byte sits `histlen` positions behind `head`.
        let start = (self.head + size - self.histlen + skip) % size;
        let first = (size - start).min(len);
        out.extend_from_slice(&self.buf[start..start + first]);
        out.extend_from_slice(&self.buf[..len - first]);
        true
    }

    /// Changes the capacity to `size` (at least 1), keeping the newest bytes that fit.
    pub fn resize(&mut self, size: usize) {
        let size = size.max(1);
        if size == self.buf.len() {
            return;
        }
        let mut tail = BytesMut::with_capacity(self.histlen);
        let from = self.first_offset();
        self.copy_from(from, &mut tail);
        let next = self.next_offset();
        let keep = tail.len().min(size);
        *self = Backlog::new(size, ReplOffset(next.0 - keep as u64));
        self.append(&tail[tail.len() - keep..]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tail(b: &Backlog, from: u64) -> Option<Vec<u8>> {
        let mut out = BytesMut::new();
        b.copy_from(ReplOffset(from), &mut out)
            .then(|| out.to_vec())
    }

    #[test]
    fn serves_any_offset_it_still_holds_across_wraparound() {
        let mut b = Backlog::new(8, ReplOffset(1));
        b.append(b"abcde");
        assert_eq!(tail(&b, 1).as_deref(), Some(&b"abcde"[..]));
        assert_eq!(
            tail(&b, 6).as_deref(),
            Some(&b""[..]),
            "nothing missing is servable"
        );
        assert_eq!(tail(&b, 7), None, "the future is not");
        b.append(b"fghij");
        // Ten bytes through an eight-byte ring: bytes 3..=10 remain.
        assert_eq!(b.first_offset(), ReplOffset(3));
        assert_eq!(b.histlen(), 8);
        assert_eq!(tail(&b, 2), None, "overwritten");
        assert_eq!(tail(&b, 3).as_deref(), Some(&b"cdefghij"[..]));
        assert_eq!(tail(&b, 9).as_deref(), Some(&b"ij"[..]));
        b.append(b"0123456789xyz");
        assert_eq!(b.next_offset(), ReplOffset(24));
        assert_eq!(tail(&b, 16).as_deref(), Some(&b"456789xyz"[1..]));
        assert_eq!(tail(&b, 16).map(|v| v.len()), Some(8));
    }

    #[test]
    fn every_split_of_the_stream_reads_back_the_same() {
        let data: Vec<u8> = (0..200u8).collect();
        for size in [1, 7, 64, 300] {
            for chunk in [1, 3, 50] {
                let mut b = Backlog::new(size, ReplOffset(101));
                for c in data.chunks(chunk) {
                    b.append(c);
                }
                let held = size.min(data.len());
                assert_eq!(b.histlen(), held);
                let got = tail(&b, 301 - held as u64).expect("oldest held byte");
                assert_eq!(got, data[data.len() - held..], "size {size} chunk {chunk}");
            }
        }
    }

    #[test]
    fn resize_keeps_the_newest_bytes() {
        let mut b = Backlog::new(8, ReplOffset(1));
        b.append(b"abcdefgh");
        b.resize(4);
        assert_eq!(b.first_offset(), ReplOffset(5));
        assert_eq!(tail(&b, 5).as_deref(), Some(&b"efgh"[..]));
        b.resize(16);
        b.append(b"ij");
        assert_eq!(tail(&b, 5).as_deref(), Some(&b"efghij"[..]));
        assert_eq!(b.next_offset(), ReplOffset(11));
    }
}
