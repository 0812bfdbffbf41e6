//! Differential test: the command sequences of `diff_corpus.txt` run on a vigil data node and on a
//! real `redis-server`, and every reply frame must be equal.
//!
//! The corpus format is documented at the top of `diff_corpus.txt`. Each sequence runs on fresh
//! connections after `FLUSHALL`, so sequences are independent; all mismatches are collected and
//! reported together, each with its corpus line, the command, and both replies.
//!
//! Normalizations (`~sorted`, `~len`, …) exist only for replies that Redis itself leaves
//! unspecified (set order, random picks, ids, clocks); each use is justified in the corpus.

use std::collections::{BTreeMap, HashSet};
use std::fmt::Write as _;
use std::io::{Read as _, Write as _};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use vigil_proto::resp::{self, Frame, Limits, split_args};

use crate::harness::{Conn, datanode, have_redis, redis_server, wait_until};

/// The corpus files, compiled in so a parse error fails the fast test.
const CORPUS: &[(&str, &str)] = &[
    ("diff_corpus.txt", include_str!("diff_corpus.txt")),
    ("corpus/strings.txt", include_str!("corpus/strings.txt")),
    ("corpus/keys.txt", include_str!("corpus/keys.txt")),
    ("corpus/hashes.txt", include_str!("corpus/hashes.txt")),
    ("corpus/lists.txt", include_str!("corpus/lists.txt")),
    ("corpus/sets.txt", include_str!("corpus/sets.txt")),
    ("corpus/zsets.txt", include_str!("corpus/zsets.txt")),
    ("corpus/resp3.txt", include_str!("corpus/resp3.txt")),
];

/// How long one reply may take before the connection counts as hung. Blocking commands in the
/// corpus time out within 0.1 s, or are woken by another connection right after `~blocked`.
const REPLY_TIMEOUT: Duration = Duration::from_secs(3);

/// Highest connection number a line may use (`@1` … `@4`).
const MAX_CONNS: usize = 4;

/// Upper bound on `~scanall` iterations, so a cursor that never returns to 0 cannot loop forever.
const MAX_SCAN_CALLS: usize = 1000;

/// Commands the corpus need not cover, each with the reason.
const NOT_COVERED: &[(&str, &str)] = &[
    ("shutdown", "stops the server under test"),
    (
        "vigil",
        "Vigil's own write leases, absent from Redis; covered by datanode::fencing",
    ),
    (
        "save",
        "writes files in the server's directory; covered by the persistence tests",
    ),
    (
        "bgsave",
        "writes files in the server's directory; covered by the persistence tests",
    ),
    (
        "bgrewriteaof",
        "writes files in the server's directory; covered by the persistence tests",
    ),
    (
        "monitor",
        "streams every later command; not a request/reply exchange",
    ),
    (
        "replicaof",
        "turns the server into a replica; covered by the replication tests",
    ),
    ("slaveof", "alias of REPLICAOF"),
    ("sync", "starts a replication stream"),
    ("psync", "starts a replication stream"),
    (
        "replconf",
        "only meaningful between a replica and its master",
    ),
    (
        "failover",
        "coordinates with replicas; covered by the failover tests",
    ),
];

/// How a reply is normalized before comparing (the same way on both servers).
#[derive(Clone, Debug, PartialEq)]
enum Norm {
    /// Compare exactly.
    Exact,
    /// Sort the elements of an aggregate (or the entries of a map).
    Sorted,
    /// Sort the (field, value) pairs of a flat array or the entries of a map.
    Pairs,
    /// Compare only the kind and length of an aggregate.
    Len,
    /// Compare only the frame kind (the text of errors stays exact).
    Type,
    /// An integer in `lo..=hi` compares equal to any other integer in that range.
    Range(i64, i64),
    /// Replace the value under this key of a map (or flat key/value array).
    Mask(Bytes),
    /// Run but compare only whether the reply is an error.
    Ignore,
    /// Iterate a SCAN-family command until its cursor is 0 and compare the sorted, deduplicated
    /// union of the elements (pairs for HSCAN and ZSCAN).
    ScanAll,
}

/// What a corpus line does.
#[derive(Clone, Debug, PartialEq)]
enum Action {
    /// Send a command and read `frames` replies.
    Cmd { args: Vec<Bytes>, frames: usize },
    /// Read one frame without sending (a pushed pub/sub message, a delayed reply).
    Recv,
    /// Wait until the server reports this many blocked clients (`INFO clients`); the reply is
    /// the count reached, so a server that never blocks shows up as a mismatch.
    Blocked(i64),
}

/// One corpus line.
#[derive(Clone, Debug)]
struct Step {
    line: usize,
    conn: usize,
    norm: Norm,
    action: Action,
    /// A known divergence (`~fixme`, explained in the corpus): reported, not failed on, and a
    /// failure once it matches, so the marker is removed with the fix.
    fixme: bool,
}

/// Consecutive non-blank lines.
#[derive(Debug)]
struct Sequence {
    file: &'static str,
    line: usize,
    steps: Vec<Step>,
}

/// Every sequence of every corpus file.
fn corpus() -> Vec<Sequence> {
    let mut all = Vec::new();
    for (file, text) in CORPUS {
        let mut seqs = parse_corpus(text).unwrap_or_else(|e| panic!("{file}: {e}"));
        for s in &mut seqs {
            s.file = file;
        }
        all.extend(seqs);
    }
    all
}

fn parse_corpus(text: &str) -> Result<Vec<Sequence>, String> {
    let mut out = Vec::new();
    let mut cur: Option<Sequence> = None;
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let trimmed = raw.trim();
        if trimmed.is_empty() {
            if let Some(s) = cur.take() {
                out.push(s);
            }
            continue;
        }
        if trimmed.starts_with('#') {
            continue;
        }
        let step = parse_line(line, trimmed).map_err(|e| format!("line {line}: {e}: {trimmed}"))?;
        cur.get_or_insert(Sequence {
            file: "",
            line,
            steps: Vec::new(),
        })
        .steps
        .push(step);
    }
    if let Some(s) = cur.take() {
        out.push(s);
    }
    Ok(out)
}

fn parse_line(line: usize, text: &str) -> Result<Step, String> {
    let tokens = split_args(text.as_bytes()).map_err(|e| format!("bad quoting ({e:?})"))?;
    let mut conn = 1;
    let mut norm = Norm::Exact;
    let mut frames = None;
    let mut recv = false;
    let mut blocked = None;
    let mut fixme = false;
    let mut i = 0;
    let num = |i: usize| -> Result<i64, String> {
        tokens
            .get(i)
            .and_then(|t| std::str::from_utf8(t).ok())
            .and_then(|t| t.parse().ok())
            .ok_or_else(|| "directive needs a number".to_string())
    };
    while let Some(t) = tokens.get(i) {
        let t = String::from_utf8_lossy(t).into_owned();
        let mut set = |n: Norm| {
            if norm != Norm::Exact {
                return Err("only one normalization per line".to_string());
            }
            norm = n;
            Ok(())
        };
        match t.as_str() {
            s if s.starts_with('@') => {
                conn = s[1..].parse().map_err(|_| "bad connection number")?;
                if conn == 0 || conn > MAX_CONNS {
                    return Err(format!("connection must be 1..={MAX_CONNS}"));
                }
            }
            "~sorted" => set(Norm::Sorted)?,
            "~pairs" => set(Norm::Pairs)?,
            "~len" => set(Norm::Len)?,
            "~type" => set(Norm::Type)?,
            "~ignore" => set(Norm::Ignore)?,
            "~scanall" => set(Norm::ScanAll)?,
            "~range" => {
                set(Norm::Range(num(i + 1)?, num(i + 2)?))?;
                i += 2;
            }
            "~mask" => {
                let key = tokens.get(i + 1).ok_or("~mask needs a key")?.clone();
                set(Norm::Mask(key))?;
                i += 1;
            }
            "~frames" => {
                frames = Some(usize::try_from(num(i + 1)?).map_err(|_| "bad frame count")?);
                i += 1;
            }
            "~recv" => recv = true,
            "~fixme" => fixme = true,
            "~blocked" => {
                blocked = Some(num(i + 1)?);
                i += 1;
            }
            s if s.starts_with('~') => return Err(format!("unknown directive {s}")),
            _ => break,
        }
        i += 1;
    }
    let args: Vec<Bytes> = tokens[i..].to_vec();
    let action = if recv || blocked.is_some() {
        if !args.is_empty() || frames.is_some() || (recv && blocked.is_some()) {
            return Err("~recv and ~blocked take no command".into());
        }
        blocked.map_or(Action::Recv, Action::Blocked)
    } else {
        let Some(name) = args.first() else {
            return Err("no command".into());
        };
        let name = name.to_ascii_lowercase();
        let frames = frames.unwrap_or(match name.as_slice() {
            // One confirmation per channel or pattern named.
            b"subscribe" | b"psubscribe" | b"unsubscribe" | b"punsubscribe" => {
                (args.len() - 1).max(1)
            }
            _ => 1,
        });
        if norm == Norm::ScanAll && scan_cursor_index(&args).is_none() {
            return Err("~scanall needs SCAN, HSCAN, SSCAN or ZSCAN".into());
        }
        Action::Cmd { args, frames }
    };
    Ok(Step {
        line,
        conn,
        norm,
        action,
        fixme,
    })
}

/// Where the cursor argument of a SCAN-family command is.
fn scan_cursor_index(args: &[Bytes]) -> Option<usize> {
    let name = args.first()?.to_ascii_lowercase();
    match name.as_slice() {
        b"scan" => Some(1),
        b"hscan" | b"sscan" | b"zscan" => Some(2),
        _ => None,
    }
    .filter(|&i| i < args.len())
}

/// A connection that reads replies itself, so that a malformed reply is reported as a mismatch
/// (with the bytes received) instead of aborting the whole run.
struct Wire {
    conn: Conn,
    buf: BytesMut,
}

impl Wire {
    fn new(addr: std::net::SocketAddr) -> Wire {
        let mut conn = Conn::new(addr);
        conn.stream()
            .set_read_timeout(Some(REPLY_TIMEOUT))
            .expect("read timeout");
        Wire {
            conn,
            buf: BytesMut::new(),
        }
    }

    fn send(&mut self, args: &[Bytes]) {
        let raw: Vec<&[u8]> = args.iter().map(|a| &a[..]).collect();
        self.conn.send(&raw);
    }

    /// One reply frame; `None` if the connection closed or nothing came within the timeout.
    fn read(&mut self) -> Option<Frame> {
        for _ in 0..100_000 {
            match resp::decode(&self.buf, &Limits::default()) {
                Ok(Some((f, n))) => {
                    let _ = self.buf.split_to(n);
                    return Some(f);
                }
                Ok(None) => {}
                Err(e) => {
                    let bad = self.buf.split().freeze();
                    return Some(Frame::error(format!(
                        "<malformed reply {e:?}: {}>",
                        bad.escape_ascii()
                    )));
                }
            }
            let mut chunk = [0u8; 65536];
            match self.conn.stream().read(&mut chunk) {
                Ok(0) | Err(_) => return None,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
            }
        }
        None
    }
}

/// The reply to one step: frames, or `None` for each frame that never came (closed or hung).
type Reply = Vec<Option<Frame>>;

/// One server's connections for the current sequence.
struct Side<'a> {
    addr: std::net::SocketAddr,
    ctl: &'a mut Conn,
    conns: Vec<Option<Wire>>,
    dead: Vec<bool>,
}

impl<'a> Side<'a> {
    fn new(addr: std::net::SocketAddr, ctl: &'a mut Conn) -> Side<'a> {
        Side {
            addr,
            ctl,
            conns: (0..MAX_CONNS).map(|_| None).collect(),
            dead: vec![false; MAX_CONNS],
        }
    }

    /// Polls `INFO clients` on the control connection until `blocked_clients` is `want`, for at
    /// most `REPLY_TIMEOUT`; returns the last count seen.
    fn wait_blocked(&mut self, want: i64) -> Frame {
        let end = Instant::now() + REPLY_TIMEOUT;
        loop {
            let info = self.ctl.cmd(&["INFO", "clients"]);
            let text = info
                .as_bytes()
                .map(String::from_utf8_lossy)
                .unwrap_or_default();
            let n = text
                .lines()
                .find_map(|l| l.strip_prefix("blocked_clients:"))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(-1);
            if n == want || Instant::now() >= end {
                return Frame::Integer(n);
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    fn conn(&mut self, n: usize) -> &mut Wire {
        let addr = self.addr;
        self.conns[n - 1].get_or_insert_with(|| Wire::new(addr))
    }

    /// Runs one step; a connection that closed or hung answers nothing for the rest of the
    /// sequence.
    fn run(&mut self, step: &Step) -> Reply {
        let n = step.conn;
        if self.dead[n - 1] {
            return vec![None];
        }
        let (args, frames) = match &step.action {
            Action::Blocked(n) => return vec![Some(self.wait_blocked(*n))],
            Action::Recv => (None, 1),
            Action::Cmd { args, frames } => (Some(args), *frames),
        };
        if step.norm == Norm::ScanAll {
            let args = args.expect("~scanall is a command");
            return vec![self.scan_all(n, args)];
        }
        let c = self.conn(n);
        if let Some(args) = args {
            c.send(args);
        }
        let mut out = Vec::with_capacity(frames);
        for _ in 0..frames {
            let f = c.read();
            if f.is_none() {
                self.dead[n - 1] = true;
                out.push(None);
                break;
            }
            out.push(f);
        }
        out
    }

    fn scan_all(&mut self, n: usize, args: &[Bytes]) -> Option<Frame> {
        let at = scan_cursor_index(args).expect("checked when parsing");
        let pairs = matches!(args[0].to_ascii_lowercase().as_slice(), b"hscan" | b"zscan");
        let mut args = args.to_vec();
        let mut seen: BTreeMap<String, Frame> = BTreeMap::new();
        for _ in 0..MAX_SCAN_CALLS {
            let c = self.conn(n);
            c.send(&args);
            let reply = c.read()?;
            let Frame::Array(parts) = &reply else {
                return Some(reply);
            };
            let [Frame::Bulk(cursor), Frame::Array(items)] = parts.as_slice() else {
                return Some(reply);
            };
            if pairs {
                for p in items.chunks(2) {
                    seen.insert(format!("{p:?}"), Frame::Array(p.to_vec()));
                }
            } else {
                seen.extend(items.iter().map(|f| (sort_key(f), f.clone())));
            }
            if &cursor[..] == b"0" {
                return Some(Frame::Array(seen.into_values().collect()));
            }
            args[at] = cursor.clone();
        }
        Some(Frame::error("<cursor did not return to 0>"))
    }

    /// Ends the sequence: leaves pub/sub and transactions (so the next sequence starts clean
    /// even before the server notices the close), then drops the connections.
    fn finish(&mut self) {
        for (i, c) in self.conns.iter_mut().enumerate() {
            if let Some(conn) = c {
                if !self.dead[i] {
                    // The server may have closed it (QUIT); a failed write changes nothing.
                    let _ = conn.conn.stream().write_all(b"RESET\r\n");
                }
            }
            *c = None;
        }
        self.dead.fill(false);
    }
}

fn sort_key(f: &Frame) -> String {
    format!("{f:?}")
}

fn normalize(norm: &Norm, f: Frame) -> Frame {
    let note = |s: String| Frame::Simple(Bytes::from(s));
    match (norm, f) {
        (Norm::Exact | Norm::ScanAll, f) => f,
        (Norm::Sorted, Frame::Array(mut v)) => {
            v.sort_by_cached_key(sort_key);
            Frame::Array(v)
        }
        (Norm::Sorted, Frame::Set(mut v)) => {
            v.sort_by_cached_key(sort_key);
            Frame::Set(v)
        }
        (Norm::Sorted | Norm::Pairs, Frame::Map(mut v)) => {
            v.sort_by_cached_key(|(k, _)| sort_key(k));
            Frame::Map(v)
        }
        (Norm::Pairs, Frame::Array(v)) if v.len() % 2 == 0 => {
            let mut pairs: Vec<Vec<Frame>> = v.chunks(2).map(<[Frame]>::to_vec).collect();
            pairs.sort_by_cached_key(|p| sort_key(&p[0]));
            Frame::Array(pairs.into_iter().flatten().collect())
        }
        (Norm::Len, Frame::Array(v)) => note(format!("<array of {}>", v.len())),
        (Norm::Len, Frame::Set(v)) => note(format!("<set of {}>", v.len())),
        (Norm::Len, Frame::Map(v)) => note(format!("<map of {}>", v.len())),
        (Norm::Type, f) if !f.is_error() => note(format!("<{}>", kind(&f))),
        (Norm::Range(lo, hi), Frame::Integer(n)) if (*lo..=*hi).contains(&n) => {
            note(format!("<integer in {lo}..={hi}>"))
        }
        (Norm::Mask(key), Frame::Map(v)) => Frame::Map(
            v.into_iter()
                .map(|(k, val)| {
                    if k.as_bytes() == Some(&key[..]) {
                        (k, note("<masked>".into()))
                    } else {
                        (k, val)
                    }
                })
                .collect(),
        ),
        (Norm::Mask(key), Frame::Array(mut v)) if v.len() % 2 == 0 => {
            for p in v.chunks_mut(2) {
                if p[0].as_bytes() == Some(&key[..]) {
                    p[1] = note("<masked>".into());
                }
            }
            Frame::Array(v)
        }
        (Norm::Ignore, f) if !f.is_error() => note("<ignored>".into()),
        (Norm::Ignore, _) => note("<ignored error>".into()),
        (_, f) => f,
    }
}

fn kind(f: &Frame) -> &'static str {
    match f {
        Frame::Simple(_) => "simple",
        Frame::Error(_) => "error",
        Frame::Integer(_) => "integer",
        Frame::Bulk(_) => "bulk",
        Frame::Null => "null",
        Frame::NullArray => "null array",
        Frame::Array(_) => "array",
        Frame::Map(_) => "map",
        Frame::Set(_) => "set",
        Frame::Double(_) => "double",
        Frame::Boolean(_) => "boolean",
        Frame::BigNumber(_) => "big number",
        Frame::Verbatim { .. } => "verbatim",
        Frame::Push(_) => "push",
    }
}

/// A compact, single-line rendering of a frame, close to redis-cli's.
fn show(f: &Frame) -> String {
    let mut s = String::new();
    show_into(f, &mut s);
    s
}

fn show_into(f: &Frame, s: &mut String) {
    let list = |s: &mut String, open: &str, items: &[Frame]| {
        s.push_str(open);
        for (i, x) in items.iter().enumerate() {
            if i > 0 {
                s.push_str(", ");
            }
            show_into(x, s);
        }
        s.push(']');
    };
    match f {
        Frame::Simple(b) => {
            let _ = write!(s, "+{}", b.escape_ascii());
        }
        Frame::Error(b) => {
            let _ = write!(s, "-{}", b.escape_ascii());
        }
        Frame::Integer(n) => {
            let _ = write!(s, ":{n}");
        }
        Frame::Bulk(b) => {
            let _ = write!(s, "\"{}\"", b.escape_ascii());
        }
        Frame::Null => s.push_str("(nil)"),
        Frame::NullArray => s.push_str("(nil array)"),
        Frame::Array(v) => list(s, "[", v),
        Frame::Set(v) => list(s, "set[", v),
        Frame::Push(v) => list(s, "push[", v),
        Frame::Map(v) => {
            s.push('{');
            for (i, (k, x)) in v.iter().enumerate() {
                if i > 0 {
                    s.push_str(", ");
                }
                show_into(k, s);
                s.push_str(": ");
                show_into(x, s);
            }
            s.push('}');
        }
        Frame::Double(d) => {
            let _ = write!(s, ",{d}");
        }
        Frame::Boolean(b) => {
            let _ = write!(s, "#{b}");
        }
        Frame::BigNumber(b) => {
            let _ = write!(s, "({}", b.escape_ascii());
        }
        Frame::Verbatim { format, text } => {
            let _ = write!(s, "={}:\"{}\"", format.escape_ascii(), text.escape_ascii());
        }
    }
}

fn show_reply(r: &Reply) -> String {
    r.iter()
        .map(|f| f.as_ref().map_or_else(|| "<no reply>".to_string(), show))
        .collect::<Vec<_>>()
        .join(" ; ")
}

fn show_step(step: &Step) -> String {
    let cmd = match &step.action {
        Action::Recv => "~recv".to_string(),
        Action::Blocked(n) => format!("~blocked {n}"),
        Action::Cmd { args, .. } => args
            .iter()
            .map(|a| {
                let t = a.escape_ascii().to_string();
                if t.is_empty() || t.contains(' ') || t != String::from_utf8_lossy(a) {
                    format!("\"{t}\"")
                } else {
                    t
                }
            })
            .collect::<Vec<_>>()
            .join(" "),
    };
    if step.conn == 1 {
        cmd
    } else {
        format!("@{} {cmd}", step.conn)
    }
}

/// Empties both servers and waits until no subscription of an earlier sequence is left.
fn clean(ctl: &mut Conn) {
    assert_eq!(ctl.cmd(&["FLUSHALL"]), Frame::ok());
    wait_until(Duration::from_secs(5), || {
        ctl.cmd(&["PUBSUB", "NUMPAT"]) == Frame::Integer(0)
            && ctl.cmd(&["PUBSUB", "CHANNELS"]) == Frame::Array(vec![])
    });
}

#[test]
#[ignore = "needs redis-server (apt-get install redis-server); run by .ci/run with --ignored"]
fn replies_match_redis_server() {
    assert!(have_redis(), "redis-server is not installed");
    let sequences = corpus();
    let started = Instant::now();
    let redis = redis_server(&["--enable-debug-command", "yes"]);
    let vigil = datanode(&[]);
    let mut redis_ctl = Conn::new(redis.addr);
    let mut vigil_ctl = Conn::new(vigil.addr);
    let mut mismatches = Vec::new();
    let mut known = Vec::new();
    let mut steps = 0;
    for seq in &sequences {
        let seq_started = Instant::now();
        clean(&mut redis_ctl);
        clean(&mut vigil_ctl);
        let mut r = Side::new(redis.addr, &mut redis_ctl);
        let mut v = Side::new(vigil.addr, &mut vigil_ctl);
        for step in &seq.steps {
            steps += 1;
            let asked = Instant::now();
            let want = r.run(step);
            if want.iter().any(Option::is_none) && asked.elapsed() >= REPLY_TIMEOUT {
                mismatches.push(format!(
                    "{}:{}: {}: redis-server gave no reply within {REPLY_TIMEOUT:?}; the corpus \
                     line blocks or reads too many frames",
                    seq.file,
                    step.line,
                    show_step(step)
                ));
            }
            if let Action::Blocked(n) = step.action {
                if want != [Some(Frame::Integer(n))] {
                    mismatches.push(format!(
                        "{}:{}: redis-server never had {n} blocked clients; fix the corpus",
                        seq.file, step.line
                    ));
                }
            }
            let got = v.run(step);
            let norm = |reply: &Reply| -> Reply {
                reply
                    .iter()
                    .map(|f| f.clone().map(|f| normalize(&step.norm, f)))
                    .collect()
            };
            let same = norm(&want) == norm(&got);
            if step.fixme && same {
                mismatches.push(format!(
                    "{}:{}: {} now matches redis-server: remove its ~fixme\n    both: {}",
                    seq.file,
                    step.line,
                    show_step(step),
                    show_reply(&got)
                ));
            } else if !same {
                let list = if step.fixme {
                    &mut known
                } else {
                    &mut mismatches
                };
                list.push(format!(
                    "{}:{} (sequence at line {}): {}\n    redis: {}\n    vigil: {}",
                    seq.file,
                    step.line,
                    seq.line,
                    show_step(step),
                    show_reply(&want),
                    show_reply(&got)
                ));
            }
        }
        r.finish();
        v.finish();
        if seq_started.elapsed() > Duration::from_secs(1) {
            eprintln!(
                "slow sequence {}:{} took {:.1?} (a missing reply waits {REPLY_TIMEOUT:?})",
                seq.file,
                seq.line,
                seq_started.elapsed()
            );
        }
    }
    if !known.is_empty() {
        eprintln!("known divergences (~fixme):\n{}", known.join("\n"));
    }
    eprintln!(
        "diff: {} sequences, {steps} steps, {} mismatches, {} known, {:.1?}",
        sequences.len(),
        mismatches.len(),
        known.len(),
        started.elapsed()
    );
    assert!(
        mismatches.is_empty(),
        "{} replies differ from redis-server:\n{}",
        mismatches.len(),
        mismatches.join("\n")
    );
}

#[test]
fn corpus_covers_every_command() {
    let sequences = corpus();
    assert!(
        sequences.len() >= 300,
        "the corpus has {} sequences, want at least 300",
        sequences.len()
    );
    let used: HashSet<String> = sequences
        .iter()
        .flat_map(|s| &s.steps)
        .filter_map(|s| match &s.action {
            Action::Cmd { args, .. } => {
                Some(String::from_utf8_lossy(&args[0]).to_ascii_lowercase())
            }
            Action::Recv | Action::Blocked(_) => None,
        })
        .collect();
    let node = datanode(&[]);
    let mut c = Conn::new(node.addr);
    let Frame::Array(names) = c.cmd(&["COMMAND", "LIST"]) else {
        panic!("COMMAND LIST is not an array");
    };
    let allowed: HashSet<&str> = NOT_COVERED.iter().map(|(n, _)| *n).collect();
    let mut missing: Vec<String> = names
        .iter()
        .filter_map(|f| f.as_bytes())
        .map(|n| String::from_utf8_lossy(n).to_ascii_lowercase())
        .filter(|n| !used.contains(n) && !allowed.contains(n.as_str()))
        .collect();
    missing.sort();
    assert!(
        missing.is_empty(),
        "commands not covered by the diff corpus: {missing:?}"
    );
}

#[test]
fn corpus_directives_parse() {
    let text = "# c\n@2 ~frames 2 SUBSCRIBE a b\n~range 1 2 TTL k\n\n~recv\n~mask id HELLO 3\n";
    let seqs = parse_corpus(text).expect("parses");
    assert_eq!(seqs.len(), 2);
    assert_eq!(seqs[0].line, 2);
    let s = &seqs[0].steps[0];
    assert_eq!((s.conn, s.norm.clone()), (2, Norm::Exact));
    assert!(matches!(&s.action, Action::Cmd { frames: 2, args } if args.len() == 3));
    assert_eq!(seqs[0].steps[1].norm, Norm::Range(1, 2));
    assert_eq!(seqs[1].steps[0].action, Action::Recv);
    assert_eq!(seqs[1].steps[1].norm, Norm::Mask(Bytes::from_static(b"id")));
    for bad in [
        "~bogus GET k",
        "@9 GET k",
        "~sorted ~len KEYS *",
        "~recv GET k",
        "~scanall GET k",
        "~range 1 TTL k",
    ] {
        assert!(parse_corpus(bad).is_err(), "{bad} should not parse");
    }
}

#[test]
fn normalizations_are_narrow() {
    let arr = |v: Vec<Frame>| Frame::Array(v);
    let b = |s: &str| Frame::bulk(s.as_bytes());
    assert_eq!(
        normalize(&Norm::Sorted, arr(vec![b("b"), b("a")])),
        arr(vec![b("a"), b("b")])
    );
    assert_eq!(
        normalize(&Norm::Pairs, arr(vec![b("f2"), b("2"), b("f1"), b("1")])),
        arr(vec![b("f1"), b("1"), b("f2"), b("2")])
    );
    // Errors are never normalized away.
    let err = Frame::error("ERR x");
    for n in [Norm::Sorted, Norm::Len, Norm::Type, Norm::Range(0, 1)] {
        assert_eq!(normalize(&n, err.clone()), err);
    }
    assert_ne!(
        normalize(&Norm::Range(99, 100), Frame::Integer(98)),
        normalize(&Norm::Range(99, 100), Frame::Integer(99))
    );
    assert_ne!(
        normalize(&Norm::Len, arr(vec![b("a")])),
        normalize(&Norm::Len, arr(vec![]))
    );
    assert_ne!(
        normalize(&Norm::Type, Frame::Integer(1)),
        normalize(&Norm::Type, b("1"))
    );
}
