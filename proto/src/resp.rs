//! RESP2/RESP3 frames, decoders and the encoder.
//!
//! Two decoders live here. `RequestDecoder` is what a data node runs on each client connection:
//! it turns bytes into command argument lists, accepts both multibulk (`*2\r\n$4\r\nPING\r\n…`) and
//! inline (`PING\r\n`) requests, keeps its progress between reads so a large request is never
//! parsed twice, and answers malformed input with Redis' exact protocol error texts. `decode` is the
//! general frame decoder a client, a replica or a test runs on replies: every RESP3 type, with a
//! nesting limit.
//!
//! Invariant: every declared length (bulk, multibulk, aggregate) is checked against `Limits` before
//! anything is allocated for it, and no allocation is ever sized by a peer-declared count beyond a
//! small fixed cap; needing more bytes is `Ok(None)`, never an error.

use bytes::{Buf, Bytes, BytesMut};

/// Which protocol a connection speaks; RESP3 frames are downgraded for RESP2 connections.
#[derive(Clone, Copy, Debug, Default, Eq, PartialEq)]
pub enum Protocol {
    /// RESP2, the default of every new connection.
    #[default]
    Resp2,
    /// RESP3, after `HELLO 3`.
    Resp3,
}

/// One RESP value.
#[derive(Clone, Debug, PartialEq)]
pub enum Frame {
    /// `+OK`.
    Simple(Bytes),
    /// `-ERR …`; the text includes the error code prefix.
    Error(Bytes),
    /// `:42`.
    Integer(i64),
    /// `$3\r\nfoo`.
    Bulk(Bytes),
    /// The null bulk string (`$-1` in RESP2, `_` in RESP3).
    Null,
    /// The null array (`*-1` in RESP2, `_` in RESP3).
    NullArray,
    /// `*N` followed by N frames.
    Array(Vec<Frame>),
    /// RESP3 map; a flat array of keys and values in RESP2.
    Map(Vec<(Frame, Frame)>),
    /// RESP3 set; an array in RESP2.
    Set(Vec<Frame>),
    /// RESP3 double; a bulk string in RESP2.
    Double(f64),
    /// RESP3 boolean; the integer 1 or 0 in RESP2.
    Boolean(bool),
    /// RESP3 big number; a bulk string in RESP2.
    BigNumber(Bytes),
    /// RESP3 verbatim string with its three-letter format; a bulk string in RESP2.
    Verbatim {
        /// The format, such as `txt`.
        format: [u8; 3],
        /// The text.
        text: Bytes,
    },
    /// RESP3 push (pub/sub messages); an array in RESP2.
    Push(Vec<Frame>),
}

impl Frame {
    /// `+OK`.
    pub const fn ok() -> Frame {
        Frame::Simple(Bytes::from_static(b"OK"))
    }

    /// A simple string from static text.
    pub const fn simple(text: &'static str) -> Frame {
        Frame::Simple(Bytes::from_static(text.as_bytes()))
    }

    /// An error reply; `text` must include its code, as in `ERR syntax error`.
    pub fn error(text: impl Into<String>) -> Frame {
        Frame::Error(Bytes::from(text.into()))
    }

    /// A static error reply.
    pub const fn error_static(text: &'static str) -> Frame {
        Frame::Error(Bytes::from_static(text.as_bytes()))
    }

    /// A bulk string copied from `data`.
    pub fn bulk(data: &[u8]) -> Frame {
        Frame::Bulk(Bytes::copy_from_slice(data))
    }

    /// A bulk string from static text.
    pub const fn bulk_static(text: &'static str) -> Frame {
        Frame::Bulk(Bytes::from_static(text.as_bytes()))
    }

    /// A bulk string holding the decimal form of `n`.
    pub fn bulk_int(n: i64) -> Frame {
        let mut b = itoa::Buffer::new();
        Frame::bulk(b.format(n).as_bytes())
    }

    /// True for an error reply.
    pub fn is_error(&self) -> bool {
        matches!(self, Frame::Error(_))
    }

    /// The bytes of a simple string, bulk string or verbatim string.
    pub fn as_bytes(&self) -> Option<&[u8]> {
        match self {
            Frame::Simple(b) | Frame::Bulk(b) | Frame::Error(b) | Frame::BigNumber(b) => Some(b),
            Frame::Verbatim { text, .. } => Some(text),
            _ => None,
        }
    }

    /// Encodes this frame for a connection speaking `proto`.
    pub fn encode(&self, proto: Protocol, out: &mut BytesMut) {
        encode(self, proto, out);
    }
}

/// Size limits a decoder enforces; each one is a Redis config option.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub struct Limits {
    /// Largest bulk string, in bytes (`proto-max-bulk-len`, 512 MiB).
    pub max_bulk: usize,
    /// Largest number of elements in one multibulk request or aggregate reply (1 M).
    pub max_multibulk: usize,
    /// Longest inline request line or length header, in bytes (64 KiB).
    pub max_inline: usize,
    /// Deepest nesting of aggregates in a reply (`decode` only).
    pub max_depth: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_bulk: 512 * 1024 * 1024,
            max_multibulk: 1024 * 1024,
            max_inline: 64 * 1024,
            max_depth: 64,
        }
    }
}

/// Malformed input; the connection that sent it is closed after the error is reported.
#[derive(Clone, Debug, Eq, PartialEq, thiserror::Error)]
pub enum ProtocolError {
    /// A multibulk count that is not a number or exceeds `max_multibulk`.
    #[error("Protocol error: invalid multibulk length")]
    InvalidMultibulkLength,
    /// A bulk length that is not a number, negative, or exceeds `max_bulk`.
    #[error("Protocol error: invalid bulk length")]
    InvalidBulkLength,
    /// An element of a multibulk request that does not start with `$`.
    #[error("Protocol error: expected '$', got '{0}'")]
    ExpectedBulk(char),
    /// An inline request longer than `max_inline` with no newline.
    #[error("Protocol error: too big inline request")]
    InlineTooBig,
    /// A multibulk count line longer than `max_inline`.
    #[error("Protocol error: too big mbulk count string")]
    MultibulkCountTooBig,
    /// A bulk length line longer than `max_inline`.
    #[error("Protocol error: too big bulk count string")]
    BulkCountTooBig,
    /// An inline request with an unterminated quote.
    #[error("Protocol error: unbalanced quotes in request")]
    UnbalancedQuotes,
    /// A reply frame with an unknown type byte.
    #[error("Protocol error: unknown frame type {0:#04x}")]
    UnknownType(u8),
    /// A reply frame whose header or body is not what its type requires.
    #[error("Protocol error: malformed {0}")]
    Malformed(&'static str),
    /// Aggregates nested deeper than `max_depth`.
    #[error("Protocol error: frame nested too deep")]
    TooDeep,
}

/// Incremental decoder of client requests.
///
/// Feed it the connection's read buffer; it consumes what it parsed and keeps the arguments of a
/// partially received multibulk request, so each byte is examined once.
#[derive(Debug)]
pub struct RequestDecoder {
    limits: Limits,
    /// Arguments of the multibulk request in progress.
    args: Vec<Bytes>,
    /// Arguments still to read for the request in progress; `None` between requests.
    pending: Option<usize>,
    /// Length of the bulk whose header was consumed but whose body has not fully arrived.
    bulk_len: Option<usize>,
}

impl RequestDecoder {
    /// A decoder enforcing `limits`.
    pub fn new(limits: Limits) -> Self {
        RequestDecoder {
            limits,
            args: Vec::new(),
            pending: None,
            bulk_len: None,
        }
    }

    /// Replaces the limits (after `CONFIG SET`).
    pub fn set_limits(&mut self, limits: Limits) {
        self.limits = limits;
    }

    /// Decodes the next request from `buf`, consuming its bytes.
    ///
    /// Returns `Ok(Some(args))` for a whole request (possibly empty: an empty inline line or
    /// `*0`, which callers skip), `Ok(None)` when more bytes are needed. A bulk body that has not
    /// fully arrived is left in `buf`; `bytes_wanted` says how many bytes would complete it.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Vec<Bytes>>, ProtocolError> {
        if self.pending.is_none() {
            let Some(&first) = buf.first() else {
                return Ok(None);
            };
            if first != b'*' {
                return self.decode_inline(buf);
            }
            let Some(line_end) = find_crlf(buf, self.limits.max_inline) else {
                return if buf.len() > self.limits.max_inline {
                    Err(ProtocolError::MultibulkCountTooBig)
                } else {
                    Ok(None)
                };
            };
            let count =
                parse_i64(&buf[1..line_end]).ok_or(ProtocolError::InvalidMultibulkLength)?;
            if count > self.limits.max_multibulk as i64 {
                return Err(ProtocolError::InvalidMultibulkLength);
            }
            buf.advance(line_end + 2);
            if count <= 0 {
                return Ok(Some(Vec::new()));
            }
            // Never trust the declared count for the allocation size.
            self.args = Vec::with_capacity((count as usize).min(64));
            self.pending = Some(count as usize);
        }
        while let Some(left) = self.pending {
            if left == 0 {
                self.pending = None;
                return Ok(Some(std::mem::take(&mut self.args)));
            }
            let len = match self.bulk_len {
                Some(len) => len,
                None => {
                    let Some(&first) = buf.first() else {
                        return Ok(None);
                    };
                    if first != b'$' {
                        return Err(ProtocolError::ExpectedBulk(first as char));
                    }
                    let Some(line_end) = find_crlf(buf, self.limits.max_inline) else {
                        return if buf.len() > self.limits.max_inline {
                            Err(ProtocolError::BulkCountTooBig)
                        } else {
                            Ok(None)
                        };
                    };
                    let len = parse_i64(&buf[1..line_end])
                        .filter(|n| *n >= 0 && *n as u64 <= self.limits.max_bulk as u64)
                        .ok_or(ProtocolError::InvalidBulkLength)?
                        as usize;
                    buf.advance(line_end + 2);
                    self.bulk_len = Some(len);
                    len
                }
            };
            if buf.len() < len + 2 {
                return Ok(None);
            }
            // Copy rather than split: a stored value must not pin the whole read buffer.
            self.args.push(Bytes::copy_from_slice(&buf[..len]));
            buf.advance(len + 2);
            self.bulk_len = None;
            self.pending = Some(left - 1);
        }
        Ok(None)
    }

    /// Bytes the buffer must hold before `decode` can make progress on a large bulk body; zero
    /// when any new byte may help.
    pub fn bytes_wanted(&self) -> usize {
        self.bulk_len.map_or(0, |len| len + 2)
    }

    fn decode_inline(&mut self, buf: &mut BytesMut) -> Result<Option<Vec<Bytes>>, ProtocolError> {
        let scan = &buf[..buf.len().min(self.limits.max_inline + 1)];
        let Some(nl) = scan.iter().position(|&b| b == b'\n') else {
            return if buf.len() > self.limits.max_inline {
                Err(ProtocolError::InlineTooBig)
            } else {
                Ok(None)
            };
        };
        let mut line = &buf[..nl];
        if line.last() == Some(&b'\r') {
            line = &line[..line.len() - 1];
        }
        let args = split_args(line)?;
        buf.advance(nl + 1);
        Ok(Some(args))
    }
}

/// Splits an inline command line like Redis' `sdssplitargs`: whitespace separates arguments,
/// double quotes allow `\n`, `\t`, `\xHH` and friends, single quotes allow `\'`.
pub fn split_args(line: &[u8]) -> Result<Vec<Bytes>, ProtocolError> {
    let mut args = Vec::new();
    let mut i = 0;
    loop {
        while i < line.len() && line[i].is_ascii_whitespace() {
            i += 1;
        }
        if i >= line.len() {
            return Ok(args);
        }
        let mut cur = Vec::new();
        let mut in_dq = false;
        let mut in_sq = false;
        loop {
            if in_dq {
                let Some(&c) = line.get(i) else {
                    return Err(ProtocolError::UnbalancedQuotes);
                };
                if c == b'\\'
                    && i + 3 < line.len()
                    && line[i + 1] == b'x'
                    && let (Some(h), Some(l)) = (hex(line[i + 2]), hex(line[i + 3]))
                {
                    cur.push(h * 16 + l);
                    i += 4;
                    continue;
                }
                if c == b'\\' && i + 1 < line.len() {
                    cur.push(match line[i + 1] {
                        b'n' => b'\n',
                        b'r' => b'\r',
                        b't' => b'\t',
                        b'b' => 8,
                        b'a' => 7,
                        other => other,
                    });
                    i += 2;
                    continue;
                }
                if c == b'"' {
                    // A closing quote must be followed by a space or the end.
                    if i + 1 < line.len() && !line[i + 1].is_ascii_whitespace() {
                        return Err(ProtocolError::UnbalancedQuotes);
                    }
                    i += 1;
                    break;
                }
                cur.push(c);
                i += 1;
            } else if in_sq {
                let Some(&c) = line.get(i) else {
                    return Err(ProtocolError::UnbalancedQuotes);
                };
                if c == b'\\' && line.get(i + 1) == Some(&b'\'') {
                    cur.push(b'\'');
                    i += 2;
                    continue;
                }
                if c == b'\'' {
                    if i + 1 < line.len() && !line[i + 1].is_ascii_whitespace() {
                        return Err(ProtocolError::UnbalancedQuotes);
                    }
                    i += 1;
                    break;
                }
                cur.push(c);
                i += 1;
            } else {
                match line.get(i) {
                    None => break,
                    Some(c) if c.is_ascii_whitespace() => break,
                    Some(b'"') => in_dq = true,
                    Some(b'\'') => in_sq = true,
                    Some(&c) => cur.push(c),
                }
                i += 1;
            }
        }
        args.push(Bytes::from(cur));
    }
}

/// Decodes one reply frame from the start of `buf`, returning it and the bytes it used.
pub fn decode(buf: &[u8], limits: &Limits) -> Result<Option<(Frame, usize)>, ProtocolError> {
    let mut pos = 0;
    match decode_at(buf, &mut pos, limits, 0)? {
        Some(frame) => Ok(Some((frame, pos))),
        None => Ok(None),
    }
}

fn decode_at(
    buf: &[u8],
    pos: &mut usize,
    limits: &Limits,
    depth: usize,
) -> Result<Option<Frame>, ProtocolError> {
    if depth > limits.max_depth {
        return Err(ProtocolError::TooDeep);
    }
    let Some(&kind) = buf.get(*pos) else {
        return Ok(None);
    };
    let start = *pos + 1;
    let Some(rel) = find_crlf(&buf[start..], limits.max_inline.max(limits.max_bulk)) else {
        return Ok(None);
    };
    let line = &buf[start..start + rel];
    let after = start + rel + 2;
    macro_rules! aggregate {
        ($n:expr, $per:expr) => {{
            let n = parse_i64(line).ok_or(ProtocolError::Malformed("aggregate length"))?;
            if n < 0 {
                *pos = after;
                return Ok(Some(Frame::NullArray));
            }
            if n as u64 > limits.max_multibulk as u64 {
                return Err(ProtocolError::InvalidMultibulkLength);
            }
            let _ = $n;
            let mut p = after;
            let mut items = Vec::with_capacity((n as usize * $per).min(64));
            for _ in 0..(n as usize * $per) {
                match decode_at(buf, &mut p, limits, depth + 1)? {
                    Some(f) => items.push(f),
                    None => return Ok(None),
                }
            }
            *pos = p;
            items
        }};
    }
    let frame = match kind {
        b'+' => {
            *pos = after;
            Frame::Simple(Bytes::copy_from_slice(line))
        }
        b'-' => {
            *pos = after;
            Frame::Error(Bytes::copy_from_slice(line))
        }
        b':' => {
            *pos = after;
            Frame::Integer(parse_i64(line).ok_or(ProtocolError::Malformed("integer"))?)
        }
        b'(' => {
            *pos = after;
            Frame::BigNumber(Bytes::copy_from_slice(line))
        }
        b'#' => {
            *pos = after;
            match line {
                b"t" => Frame::Boolean(true),
                b"f" => Frame::Boolean(false),
                _ => return Err(ProtocolError::Malformed("boolean")),
            }
        }
        b',' => {
            *pos = after;
            let text = std::str::from_utf8(line).map_err(|_| ProtocolError::Malformed("double"))?;
            Frame::Double(crate::float::parse(text).ok_or(ProtocolError::Malformed("double"))?)
        }
        b'_' => {
            *pos = after;
            Frame::Null
        }
        b'$' | b'=' | b'!' => {
            let n = parse_i64(line).ok_or(ProtocolError::InvalidBulkLength)?;
            if n < 0 {
                *pos = after;
                return Ok(Some(Frame::Null));
            }
            if n as u64 > limits.max_bulk as u64 {
                return Err(ProtocolError::InvalidBulkLength);
            }
            let n = n as usize;
            if buf.len() < after + n + 2 {
                return Ok(None);
            }
            let body = &buf[after..after + n];
            *pos = after + n + 2;
            match kind {
                b'$' => Frame::Bulk(Bytes::copy_from_slice(body)),
                b'!' => Frame::Error(Bytes::copy_from_slice(body)),
                _ => {
                    if n < 4 || body[3] != b':' {
                        return Err(ProtocolError::Malformed("verbatim string"));
                    }
                    Frame::Verbatim {
                        format: [body[0], body[1], body[2]],
                        text: Bytes::copy_from_slice(&body[4..]),
                    }
                }
            }
        }
        b'*' => Frame::Array(aggregate!(0, 1)),
        b'~' => Frame::Set(aggregate!(0, 1)),
        b'>' => Frame::Push(aggregate!(0, 1)),
        b'%' | b'|' => {
            let flat = aggregate!(0, 2);
            let mut pairs = Vec::with_capacity(flat.len() / 2);
            let mut it = flat.into_iter();
            while let (Some(k), Some(v)) = (it.next(), it.next()) {
                pairs.push((k, v));
            }
            if kind == b'|' {
                // An attribute annotates the frame that follows it; return that frame.
                return decode_at(buf, pos, limits, depth + 1);
            }
            Frame::Map(pairs)
        }
        other => return Err(ProtocolError::UnknownType(other)),
    };
    Ok(Some(frame))
}

/// Appends `frame` to `out` as `proto` requires.
pub fn encode(frame: &Frame, proto: Protocol, out: &mut BytesMut) {
    let resp3 = proto == Protocol::Resp3;
    match frame {
        Frame::Simple(s) => status_line(out, b'+', s),
        Frame::Error(s) => status_line(out, b'-', s),
        Frame::Integer(n) => {
            let mut b = itoa::Buffer::new();
            line(out, b':', b.format(*n).as_bytes());
        }
        Frame::Bulk(b) => bulk(out, b'$', b),
        Frame::Null if resp3 => out.extend_from_slice(b"_\r\n"),
        Frame::Null => out.extend_from_slice(b"$-1\r\n"),
        Frame::NullArray if resp3 => out.extend_from_slice(b"_\r\n"),
        Frame::NullArray => out.extend_from_slice(b"*-1\r\n"),
        Frame::Array(items) => {
            header(out, b'*', items.len());
            items.iter().for_each(|f| encode(f, proto, out));
        }
        Frame::Set(items) => {
            header(out, if resp3 { b'~' } else { b'*' }, items.len());
            items.iter().for_each(|f| encode(f, proto, out));
        }
        Frame::Push(items) => {
            header(out, if resp3 { b'>' } else { b'*' }, items.len());
            items.iter().for_each(|f| encode(f, proto, out));
        }
        Frame::Map(pairs) => {
            if resp3 {
                header(out, b'%', pairs.len());
            } else {
                header(out, b'*', pairs.len() * 2);
            }
            for (k, v) in pairs {
                encode(k, proto, out);
                encode(v, proto, out);
            }
        }
        Frame::Double(d) => {
            let text = crate::float::fmt_g17(*d);
            if resp3 {
                line(out, b',', text.as_bytes());
            } else {
                bulk(out, b'$', text.as_bytes());
            }
        }
        Frame::Boolean(b) if resp3 => out.extend_from_slice(if *b { b"#t\r\n" } else { b"#f\r\n" }),
        Frame::Boolean(b) => out.extend_from_slice(if *b { b":1\r\n" } else { b":0\r\n" }),
        Frame::BigNumber(n) if resp3 => line(out, b'(', n),
        Frame::BigNumber(n) => bulk(out, b'$', n),
        Frame::Verbatim { format, text } if resp3 => {
            header(out, b'=', text.len() + 4);
            out.extend_from_slice(format);
            out.extend_from_slice(b":");
            out.extend_from_slice(text);
            out.extend_from_slice(b"\r\n");
        }
        Frame::Verbatim { text, .. } => bulk(out, b'$', text),
    }
}

/// Appends a command (an array of bulk strings) to `out`, as clients send it.
pub fn encode_command<A: AsRef<[u8]>>(args: &[A], out: &mut BytesMut) {
    header(out, b'*', args.len());
    for a in args {
        bulk(out, b'$', a.as_ref());
    }
}

fn line(out: &mut BytesMut, kind: u8, text: &[u8]) {
    out.reserve(text.len() + 3);
    out.extend_from_slice(&[kind]);
    out.extend_from_slice(text);
    out.extend_from_slice(b"\r\n");
}

/// A simple string or error line: a CR or LF inside would end the line early and desynchronise
/// the peer, so each becomes a space (as Redis does for error texts).
fn status_line(out: &mut BytesMut, kind: u8, text: &[u8]) {
    if !text.iter().any(|&c| c == b'\r' || c == b'\n') {
        return line(out, kind, text);
    }
    let clean: Vec<u8> = text
        .iter()
        .map(|&c| if c == b'\r' || c == b'\n' { b' ' } else { c })
        .collect();
    line(out, kind, &clean);
}

fn header(out: &mut BytesMut, kind: u8, n: usize) {
    let mut b = itoa::Buffer::new();
    line(out, kind, b.format(n).as_bytes());
}

fn bulk(out: &mut BytesMut, kind: u8, data: &[u8]) {
    header(out, kind, data.len());
    out.extend_from_slice(data);
    out.extend_from_slice(b"\r\n");
}

/// Position of the first `\r\n` within the first `max + 2` bytes of `buf`.
fn find_crlf(buf: &[u8], max: usize) -> Option<usize> {
    let scan = &buf[..buf.len().min(max.saturating_add(2))];
    let mut from = 0;
    while let Some(i) = scan[from..].iter().position(|&b| b == b'\r') {
        let at = from + i;
        match scan.get(at + 1) {
            Some(b'\n') => return Some(at),
            Some(_) => from = at + 1,
            None => return None,
        }
    }
    None
}

/// Parses a decimal `i64` the way Redis' `string2ll` does: optional minus, no plus, no leading
/// zeros, no spaces.
pub fn parse_i64(s: &[u8]) -> Option<i64> {
    if s.is_empty() || s.len() > 20 {
        return None;
    }
    if s == b"0" {
        return Some(0);
    }
    let (neg, digits) = match s[0] {
        b'-' => (true, &s[1..]),
        _ => (false, s),
    };
    if digits.is_empty() || digits[0] == b'0' {
        return None;
    }
    let mut v: u64 = 0;
    for &c in digits {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_add(u64::from(c - b'0'))?;
    }
    if neg {
        if v > i64::MAX as u64 + 1 {
            return None;
        }
        Some((v as i64).wrapping_neg())
    } else {
        i64::try_from(v).ok()
    }
}

fn hex(c: u8) -> Option<u8> {
    (c as char).to_digit(16).map(|d| d as u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(input: &[u8]) -> Result<Option<Vec<Bytes>>, ProtocolError> {
        let mut buf = BytesMut::from(input);
        RequestDecoder::new(Limits::default()).decode(&mut buf)
    }

    fn args(v: &[&str]) -> Vec<Bytes> {
        v.iter()
            .map(|s| Bytes::copy_from_slice(s.as_bytes()))
            .collect()
    }

    #[test]
    fn multibulk_and_inline_requests_decode() {
        let table: &[(&[u8], &[&str])] = &[
            (b"*1\r\n$4\r\nPING\r\n", &["PING"]),
            (
                b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$0\r\n\r\n",
                &["SET", "k", ""],
            ),
            (b"PING\r\n", &["PING"]),
            (b"set k \"a b\\n\"\n", &["set", "k", "a b\n"]),
            (b"set k 'it\\'s'\r\n", &["set", "k", "it's"]),
            (b"echo \"\\x41\\x42\"\r\n", &["echo", "AB"]),
            (b"\r\n", &[]),
            (b"*0\r\n", &[]),
        ];
        for (input, want) in table {
            assert_eq!(req(input).unwrap(), Some(args(want)), "{input:?}");
        }
    }

    #[test]
    fn every_prefix_of_a_request_needs_more_bytes() {
        let whole = b"*3\r\n$3\r\nSET\r\n$3\r\nkey\r\n$5\r\nvalue\r\n";
        for cut in 0..whole.len() {
            // Feed the request in two parts; the decoder keeps its progress in between.
            let mut dec = RequestDecoder::new(Limits::default());
            let mut buf = BytesMut::from(&whole[..cut]);
            assert_eq!(dec.decode(&mut buf).unwrap(), None, "cut at {cut}");
            buf.extend_from_slice(&whole[cut..]);
            assert_eq!(
                dec.decode(&mut buf).unwrap(),
                Some(args(&["SET", "key", "value"]))
            );
            assert!(buf.is_empty());
        }
    }

    #[test]
    fn malformed_requests_get_redis_errors() {
        let table: &[(&[u8], &str)] = &[
            (b"*x\r\n", "Protocol error: invalid multibulk length"),
            (b"*1048577\r\n", "Protocol error: invalid multibulk length"),
            (b"*1\r\n+PING\r\n", "Protocol error: expected '$', got '+'"),
            (b"*1\r\n$-5\r\n", "Protocol error: invalid bulk length"),
            (
                b"*1\r\n$536870913\r\n",
                "Protocol error: invalid bulk length",
            ),
            (
                b"set k \"abc\r\n",
                "Protocol error: unbalanced quotes in request",
            ),
            (
                b"set k \"a\"b\r\n",
                "Protocol error: unbalanced quotes in request",
            ),
        ];
        for (input, want) in table {
            assert_eq!(req(input).unwrap_err().to_string(), *want, "{input:?}");
        }
    }

    #[test]
    fn oversized_lines_are_refused_before_buffering_more() {
        let long = vec![b'a'; 64 * 1024 + 1];
        assert_eq!(req(&long), Err(ProtocolError::InlineTooBig));
        let mut mb = b"*".to_vec();
        mb.extend(std::iter::repeat_n(b'1', 64 * 1024 + 1));
        assert_eq!(req(&mb), Err(ProtocolError::MultibulkCountTooBig));
        let mut bl = b"*1\r\n$".to_vec();
        bl.extend(std::iter::repeat_n(b'1', 64 * 1024 + 1));
        assert_eq!(req(&bl), Err(ProtocolError::BulkCountTooBig));
    }

    #[test]
    fn large_bulk_reports_bytes_wanted() {
        let mut dec = RequestDecoder::new(Limits::default());
        let mut buf = BytesMut::from(&b"*1\r\n$100000\r\nabc"[..]);
        assert_eq!(dec.decode(&mut buf).unwrap(), None);
        assert_eq!(dec.bytes_wanted(), 100_002);
    }

    #[test]
    fn frames_round_trip_in_resp3() {
        let frames = vec![
            Frame::ok(),
            Frame::error("ERR x"),
            Frame::Integer(-7),
            Frame::bulk(b"a\r\nb"),
            Frame::Null,
            Frame::Array(vec![Frame::Integer(1), Frame::Array(vec![])]),
            Frame::Map(vec![(Frame::bulk(b"k"), Frame::Double(1.5))]),
            Frame::Set(vec![Frame::bulk(b"m")]),
            Frame::Boolean(true),
            Frame::Push(vec![Frame::bulk(b"message")]),
            Frame::Verbatim {
                format: *b"txt",
                text: Bytes::from_static(b"hello"),
            },
            Frame::BigNumber(Bytes::from_static(b"123456789012345678901234567890")),
        ];
        for f in frames {
            let mut out = BytesMut::new();
            f.encode(Protocol::Resp3, &mut out);
            let (back, used) = decode(&out, &Limits::default()).unwrap().unwrap();
            assert_eq!(back, f);
            assert_eq!(used, out.len());
            for cut in 0..out.len() {
                assert_eq!(decode(&out[..cut], &Limits::default()).unwrap(), None);
            }
        }
    }

    #[test]
    fn line_breaks_in_status_and_error_lines_become_spaces() {
        let mut out = BytesMut::new();
        Frame::error("ERR bad\r\narg").encode(Protocol::Resp2, &mut out);
        assert_eq!(&out[..], b"-ERR bad  arg\r\n");
    }

    #[test]
    fn resp3_types_downgrade_for_resp2() {
        let table: &[(Frame, &[u8])] = &[
            (Frame::Null, b"$-1\r\n"),
            (Frame::NullArray, b"*-1\r\n"),
            (Frame::Boolean(true), b":1\r\n"),
            (Frame::Double(1.5), b"$3\r\n1.5\r\n"),
            (
                Frame::Map(vec![(Frame::bulk(b"a"), Frame::Integer(1))]),
                b"*2\r\n$1\r\na\r\n:1\r\n",
            ),
        ];
        for (f, want) in table {
            let mut out = BytesMut::new();
            f.encode(Protocol::Resp2, &mut out);
            assert_eq!(&out[..], *want);
        }
    }

    #[test]
    fn integers_parse_like_string2ll() {
        for (s, want) in [
            ("0", Some(0)),
            ("-1", Some(-1)),
            ("9223372036854775807", Some(i64::MAX)),
            ("-9223372036854775808", Some(i64::MIN)),
            ("9223372036854775808", None),
            ("01", None),
            ("+1", None),
            (" 1", None),
            ("", None),
            ("-", None),
            ("-0", None),
        ] {
            assert_eq!(parse_i64(s.as_bytes()), want, "{s}");
        }
    }

    #[test]
    fn reply_decoder_rejects_garbage_and_deep_nesting() {
        assert!(decode(b"?x\r\n", &Limits::default()).is_err());
        assert!(decode(b":abc\r\n", &Limits::default()).is_err());
        let deep = "*1\r\n".repeat(100);
        assert_eq!(
            decode(deep.as_bytes(), &Limits::default()),
            Err(ProtocolError::TooDeep)
        );
    }
}
