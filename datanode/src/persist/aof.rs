//! The append-only file: recording, writing, rewriting and parsing it.
//!
//! Format (a single file, `dir/appendfilename`): an RDB snapshot (the base, with the `aof-base`
//! AUX field, as Redis' `aof-use-rdb-preamble`) followed by the write stream as RESP arrays, with
//! `SELECT` injected whenever the database changes, in the absolute forms replication uses
//! (`PEXPIREAT`, `SET … PXAT`, `DEL` for expiries and evictions, `MULTI`/`EXEC` blocks). Redis 7.0
//! loads such a file when it has no manifest; Vigil does not write Redis 7's multi-part layout.
//!
//! Recording: `Aof` is a `StreamSink` of the replication stream, so it receives every write in
//! stream order, while the write's shards are still locked; it only encodes into `pending`.
//! A dedicated thread writes `pending` to the file and fsyncs it by `appendfsync`; `durable`
//! publishes how many accepted bytes are on disk and `written` how many reached the kernel;
//! replies to writes wait for the first under `appendfsync always` and for the second otherwise
//! (as Redis writes before replying), one write and fsync covering every batch accepted before
//! it: group commit.
//!
//! Rewrite (`BGREWRITEAOF`, and turning `appendonly` on at run time): at the instant of the
//! snapshot (taken with the gate held exclusively) `begin_rewrite` starts a second encoding of
//! every later write into `tail`; the base is written to a temporary file in the background, then
//! `finish_rewrite` appends the tail, fsyncs, renames the file over the live one, fsyncs the
//! directory and switches the writer to it. Until the rename the old file keeps receiving every
//! write, so a crash during a rewrite loses nothing.
//!
//! Invariants: `pending` holds only bytes not yet in the live file, and is cut down to nothing at
//! a switch (all of it is in the tail); a write error truncates the file back to its last good
//! length and retries, so the file never holds a partial command we wrote; `tail` is bounded by
//! `MAX_TAIL` (past it the rewrite fails, the live file is unaffected).

use std::fs::{File, OpenOptions};
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use bytes::{Buf, Bytes, BytesMut};
use tokio::sync::watch;
use tracing::{error, info, warn};

use super::config::AppendFsync;
use crate::replication::StreamSink;

/// Largest rewrite tail, in bytes; a rewrite that would buffer more fails.
const MAX_TAIL: usize = 1 << 30;
/// Tail bytes left to append while holding the lock at the end of a rewrite.
const TAIL_UNDER_LOCK: usize = 1 << 20;
/// Largest bulk string accepted when parsing (Redis' `proto-max-bulk-len` default).
const MAX_BULK: usize = 512 * 1024 * 1024;
/// Largest argument count accepted when parsing.
const MAX_ARGS: usize = 1024 * 1024;

/// The append-only file writer; see the module docs.
pub struct Aof {
    inner: Mutex<Inner>,
    wake: Condvar,
    durable: watch::Sender<u64>,
    /// Accepted bytes handed to the kernel (`write(2)` done, maybe not fsynced).
    written: watch::Sender<u64>,
    /// Bytes accepted so far (monotonic), mirrored out of the lock for `mark`.
    accepted: AtomicU64,
    fsync: AtomicU8,
    /// True while writes are recorded (the sink is installed).
    recording: AtomicBool,
    /// False after a failed write or fsync, until one succeeds (`aof_last_write_status`).
    write_ok: AtomicBool,
    /// The last write error, as `strerror` would print it.
    write_error: Mutex<String>,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
}

#[derive(Default)]
struct Inner {
    /// The live file; `None` while the first base is being written.
    file: Option<Arc<File>>,
    /// Length of the live file made of complete writes.
    len: u64,
    /// Encoded commands not yet written to `file`.
    pending: BytesMut,
    /// Database the live file last selected.
    seldb: Option<usize>,
    /// The rewrite in progress.
    tail: Option<Tail>,
    /// True when a rewrite failed because its tail passed `MAX_TAIL`.
    tail_overflow: bool,
    accepted: u64,
    /// Incremented at each switch of live file.
    generation: u64,
    unsynced: bool,
    stop: bool,
}

struct Tail {
    buf: BytesMut,
    seldb: Option<usize>,
}

impl Aof {
    /// A writer with no file, recording nothing.
    pub fn new(fsync: AppendFsync) -> Aof {
        Aof {
            inner: Mutex::new(Inner::default()),
            wake: Condvar::new(),
            durable: watch::channel(0).0,
            written: watch::channel(0).0,
            accepted: AtomicU64::new(0),
            fsync: AtomicU8::new(fsync as u8),
            recording: AtomicBool::new(false),
            write_ok: AtomicBool::new(true),
            write_error: Mutex::new(String::new()),
            thread: Mutex::new(None),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Sets the fsync policy.
    pub fn set_fsync(&self, fsync: AppendFsync) {
        self.fsync.store(fsync as u8, Ordering::Relaxed);
    }

    fn policy(&self) -> AppendFsync {
        match self.fsync.load(Ordering::Relaxed) {
            0 => AppendFsync::Always,
            1 => AppendFsync::EverySec,
            _ => AppendFsync::No,
        }
    }

    /// True while writes are recorded.
    pub fn recording(&self) -> bool {
        self.recording.load(Ordering::Relaxed)
    }

    /// Marks writes as recorded or not (the caller installs or removes the sink).
    pub fn set_recording(&self, on: bool) {
        self.recording.store(on, Ordering::Relaxed);
    }

    /// `aof_last_write_status`: `None` when fine, else the error text.
    pub fn write_error(&self) -> Option<String> {
        if self.write_ok.load(Ordering::Relaxed) {
            return None;
        }
        Some(
            self.write_error
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .clone(),
        )
    }

    /// True while a rewrite records a tail.
    pub fn rewriting(&self) -> bool {
        self.lock().tail.is_some()
    }

    /// Bytes accepted so far: a batch that starts at `mark` and wrote something waits for
    /// `durable_after(mark)`.
    pub fn mark(&self) -> u64 {
        self.accepted.load(Ordering::Acquire)
    }

    /// When writes were accepted since `mark`, a future that resolves once every byte accepted
    /// so far is fsynced (`appendfsync always`) or at least written to the kernel (`everysec`,
    /// `no`: as Redis writes before replying, a crash of the process alone loses nothing);
    /// `None` when there is nothing to wait for. While writes fail, only `always` waits.
    pub fn durable_after(
        &self,
        mark: u64,
    ) -> Option<impl std::future::Future<Output = ()> + use<>> {
        if !self.recording() {
            return None;
        }
        let target = self.accepted.load(Ordering::Acquire);
        if target <= mark {
            return None;
        }
        let always = self.policy() == AppendFsync::Always;
        if !always && !self.write_ok.load(Ordering::Relaxed) {
            return None;
        }
        let mut rx = if always {
            self.durable.subscribe()
        } else {
            self.written.subscribe()
        };
        Some(async move {
            // An error means the writer is gone (shutdown); nothing more will become durable.
            let _ = rx.wait_for(|d| *d >= target).await;
        })
    }

    /// Opens `path` for appending as the live file, `len` bytes long, and starts the writer
    /// thread if it is not running.
    pub fn open(self: &Arc<Self>, path: &Path) -> io::Result<()> {
        let file = OpenOptions::new().append(true).create(true).open(path)?;
        let len = file.metadata()?.len();
        {
            let mut g = self.lock();
            g.file = Some(Arc::new(file));
            g.len = len;
            g.pending.clear();
            g.seldb = None;
            g.generation += 1;
            g.stop = false;
        }
        self.start_thread();
        Ok(())
    }

    /// Starts the writer thread if it is not running.
    pub fn start_thread(self: &Arc<Self>) {
        let mut t = self
            .thread
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if t.as_ref().is_some_and(|h| !h.is_finished()) {
            return;
        }
        self.lock().stop = false;
        let me = self.clone();
        match std::thread::Builder::new()
            .name("aof-writer".into())
            .spawn(move || me.run())
        {
            Ok(h) => *t = Some(h),
            Err(e) => error!(error = %e, "cannot start the append-only file writer"),
        }
    }

    /// Writes and fsyncs everything pending, stops the writer thread and closes the file.
    pub fn stop(&self) {
        self.lock().stop = true;
        self.wake.notify_all();
        let handle = self
            .thread
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        if let Some(h) = handle {
            let _ = h.join();
        }
        let mut g = self.lock();
        g.file = None;
        g.tail = None;
    }

    /// Starts recording a rewrite tail: call at the instant of the snapshot the rewrite writes.
    pub fn begin_rewrite(&self) {
        let mut g = self.lock();
        g.tail = Some(Tail {
            buf: BytesMut::new(),
            seldb: None,
        });
        g.tail_overflow = false;
    }

    /// Drops the tail of a failed rewrite.
    pub fn abort_rewrite(&self) {
        self.lock().tail = None;
    }

    /// Ends a rewrite: appends the tail to `tmp` (which holds the base, opened for appending),
    /// fsyncs it, renames it to `path`, fsyncs the directory and makes it the live file.
    pub fn finish_rewrite(
        self: &Arc<Self>,
        mut tmp: File,
        tmp_path: &Path,
        path: &Path,
    ) -> io::Result<()> {
        // Drain most of the tail without the lock, so writers are held up only for the rest.
        loop {
            let chunk = {
                let mut g = self.lock();
                match &mut g.tail {
                    Some(t) if t.buf.len() > TAIL_UNDER_LOCK => t.buf.split().freeze(),
                    Some(_) => break,
                    None => return Err(tail_lost(g.tail_overflow)),
                }
            };
            tmp.write_all(&chunk)?;
        }
        let mut g = self.lock();
        let Some(tail) = g.tail.take() else {
            return Err(tail_lost(g.tail_overflow));
        };
        let r = (|| {
            tmp.write_all(&tail.buf)?;
            tmp.sync_all()?;
            std::fs::rename(tmp_path, path)?;
            super::rdbfile::sync_dir(path)?;
            tmp.metadata().map(|m| m.len())
        })();
        let len = r?;
        g.file = Some(Arc::new(tmp));
        g.len = len;
        g.pending.clear();
        g.seldb = tail.seldb;
        g.generation += 1;
        g.unsynced = false;
        let accepted = g.accepted;
        drop(g);
        self.written.send_replace(accepted);
        self.durable.send_replace(accepted);
        self.start_thread();
        Ok(())
    }

    /// Writes and fsyncs everything pending now, from the caller's thread (SHUTDOWN).
    pub fn flush_now(&self) -> io::Result<()> {
        let (file, data, generation, accepted) = {
            let mut g = self.lock();
            let Some(f) = g.file.clone() else {
                return Ok(());
            };
            (f, g.pending.split().freeze(), g.generation, g.accepted)
        };
        (&*file).write_all(&data)?;
        file.sync_data()?;
        let mut g = self.lock();
        if g.generation == generation {
            g.len += data.len() as u64;
            g.unsynced = false;
        }
        drop(g);
        self.written.send_replace(accepted);
        self.durable.send_replace(accepted);
        Ok(())
    }

    /// The writer thread: writes `pending`, fsyncs by policy, retries after errors.
    fn run(self: Arc<Self>) {
        let mut last_sync = Instant::now();
        let mut failing = false;
        loop {
            let mut g = self.lock();
            if (g.pending.is_empty() || failing || g.file.is_none()) && !g.stop {
                let wait = if failing {
                    Duration::from_secs(1)
                } else {
                    Duration::from_secs(1)
                        .saturating_sub(last_sync.elapsed())
                        .max(Duration::from_millis(10))
                };
                g = self
                    .wake
                    .wait_timeout(g, wait)
                    .map_or_else(|e| e.into_inner().0, |r| r.0);
            }
            let stop = g.stop;
            let Some(file) = g.file.clone() else {
                if stop {
                    return;
                }
                continue;
            };
            let data = g.pending.split().freeze();
            let (generation, upto, len, mut unsynced) =
                (g.generation, g.accepted, g.len, g.unsynced);
            drop(g);
            if !data.is_empty() {
                if let Err(e) = (&*file).write_all(&data) {
                    self.failed(&e, "write");
                    // Never leave a partial command: cut the file back to its last good length.
                    let _ = file.set_len(len);
                    let mut g = self.lock();
                    if g.generation == generation {
                        let rest = g.pending.split();
                        g.pending.extend_from_slice(&data);
                        g.pending.unsplit(rest);
                    }
                    failing = true;
                    if stop {
                        return;
                    }
                    continue;
                }
                unsynced = true;
                if self.policy() != AppendFsync::Always {
                    self.written.send_replace(upto);
                }
            }
            let policy = self.policy();
            let due = policy == AppendFsync::Always
                || stop
                || (policy == AppendFsync::EverySec
                    && last_sync.elapsed() >= Duration::from_secs(1));
            if unsynced && due {
                if let Err(e) = file.sync_data() {
                    self.failed(&e, "fsync");
                    failing = true;
                    let mut g = self.lock();
                    if g.generation == generation {
                        g.len += data.len() as u64;
                        g.unsynced = true;
                    }
                    continue;
                }
                last_sync = Instant::now();
                unsynced = false;
            }
            if failing {
                info!("append-only file writes work again");
                failing = false;
            }
            self.write_ok.store(true, Ordering::Relaxed);
            let mut g = self.lock();
            if g.generation == generation {
                g.len += data.len() as u64;
                g.unsynced = unsynced;
            }
            let done = stop && g.pending.is_empty();
            drop(g);
            self.written.send_replace(upto);
            if !unsynced || policy != AppendFsync::Always {
                self.durable.send_replace(upto);
            }
            if done {
                return;
            }
        }
    }

    fn failed(&self, e: &io::Error, what: &str) {
        let text = strerror(e);
        if self.write_ok.swap(false, Ordering::Relaxed) {
            error!(error = %text, op = what, "append-only file write failed; retrying every second");
        }
        *self
            .write_error
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = text;
    }
}

impl StreamSink for Aof {
    fn command(&self, db: Option<usize>, args: &[Bytes]) {
        // Replication-only traffic is not part of the dataset's history.
        let Some(name) = args.first() else { return };
        if [&b"PING"[..], b"REPLCONF", b"PUBLISH"]
            .iter()
            .any(|n| name.eq_ignore_ascii_case(n))
        {
            return;
        }
        let mut g = self.lock();
        let g = &mut *g;
        let before = g.pending.len();
        if g.file.is_some() {
            encode(&mut g.pending, &mut g.seldb, db, args);
        }
        let mut added = g.pending.len() - before;
        if let Some(t) = &mut g.tail {
            let before = t.buf.len();
            encode(&mut t.buf, &mut t.seldb, db, args);
            added = added.max(t.buf.len() - before);
            if t.buf.len() > MAX_TAIL {
                warn!(
                    limit = MAX_TAIL,
                    "append-only rewrite buffer over its limit; the rewrite fails"
                );
                g.tail = None;
                g.tail_overflow = true;
            }
        }
        g.accepted += added as u64;
        self.accepted.store(g.accepted, Ordering::Release);
        if before == 0 {
            self.wake.notify_one();
        }
    }
}

fn tail_lost(overflow: bool) -> io::Error {
    io::Error::other(if overflow {
        "the rewrite buffer passed its limit"
    } else {
        "the rewrite was cancelled"
    })
}

/// Appends `args` to `out` as a RESP array, preceded by a `SELECT` when `db` differs from
/// `seldb`.
pub fn encode(out: &mut BytesMut, seldb: &mut Option<usize>, db: Option<usize>, args: &[Bytes]) {
    if let Some(db) = db {
        if *seldb != Some(db) {
            let n = itoa::Buffer::new().format(db).as_bytes().to_vec();
            vigil_proto::resp::encode_command(&[&b"SELECT"[..], &n], out);
            *seldb = Some(db);
        }
    }
    vigil_proto::resp::encode_command(args, out);
}

/// `strerror`'s text of an I/O error (Rust's display minus the ` (os error N)` suffix).
pub fn strerror(e: &io::Error) -> String {
    let s = e.to_string();
    match s.find(" (os error") {
        Some(i) => s[..i].to_string(),
        None => s,
    }
}

/// Parses one command (a RESP array of bulk strings) at the start of `buf`: `Ok(None)` when
/// more bytes are needed, else the arguments and the bytes used. Errors give the position inside
/// `buf` and what is wrong.
pub fn parse_command(buf: &[u8]) -> Result<Option<Parsed>, (usize, String)> {
    let mut pos = 0;
    let Some(n) = header(buf, &mut pos, b'*')? else {
        return Ok(None);
    };
    if n == 0 || n > MAX_ARGS {
        return Err((0, format!("bad argument count {n}")));
    }
    let mut args = Vec::with_capacity(n.min(64));
    for _ in 0..n {
        let at = pos;
        let Some(len) = header(buf, &mut pos, b'$')? else {
            return Ok(None);
        };
        if len > MAX_BULK {
            return Err((at, format!("bulk length {len} over the limit")));
        }
        if buf.len() < pos + len + 2 {
            return Ok(None);
        }
        if &buf[pos + len..pos + len + 2] != b"\r\n" {
            return Err((pos + len, "bulk string not followed by CRLF".into()));
        }
        args.push(Bytes::copy_from_slice(&buf[pos..pos + len]));
        pos += len + 2;
    }
    Ok(Some((args, pos)))
}

/// A parsed command and the bytes it used.
pub type Parsed = (Vec<Bytes>, usize);

/// Reads `<kind><decimal>\r\n` at `*pos`.
fn header(buf: &[u8], pos: &mut usize, kind: u8) -> Result<Option<usize>, (usize, String)> {
    let start = *pos;
    let Some(&first) = buf.get(start) else {
        return Ok(None);
    };
    if first != kind {
        return Err((
            start,
            format!("expected '{}', found byte {first:#04x}", kind as char),
        ));
    }
    let Some(nl) = buf[start..].iter().take(24).position(|&b| b == b'\n') else {
        return if buf.len() - start >= 24 {
            Err((start, "header line too long".into()))
        } else {
            Ok(None)
        };
    };
    let line = &buf[start + 1..start + nl];
    let digits = line
        .strip_suffix(b"\r")
        .ok_or_else(|| (start, "header not ended by CRLF".to_string()))?;
    let n = std::str::from_utf8(digits)
        .ok()
        .and_then(|s| s.parse::<usize>().ok())
        .ok_or_else(|| {
            (
                start,
                format!("bad length {:?}", String::from_utf8_lossy(digits)),
            )
        })?;
    *pos = start + nl + 1;
    Ok(Some(n))
}

/// Where a loaded file stopped being valid, when it did.
#[derive(Debug)]
pub struct Damage {
    /// Byte offset of the first byte not loaded.
    pub offset: u64,
    /// What is wrong there.
    pub what: String,
}

/// Streams the commands of an append-only file, from `offset` on (after its RDB base), into
/// `apply`. `Ok(None)` when every command was read; `Ok(Some(damage))` when the file stops
/// being valid at some point (truncated, corrupt, an unfinished `MULTI`): the commands before it
/// were applied, except a transaction it interrupts.
pub fn replay<R: Read>(
    mut input: R,
    mut buf: BytesMut,
    mut offset: u64,
    known: &dyn Fn(&[u8]) -> bool,
    apply: &mut dyn FnMut(Vec<Bytes>),
) -> io::Result<Option<Damage>> {
    let mut chunk = vec![0u8; 64 * 1024];
    let mut multi_at: Option<u64> = None;
    let mut eof = false;
    loop {
        match parse_command(&buf) {
            Ok(Some((args, used))) => {
                if !known(&args[0]) {
                    return Ok(Some(Damage {
                        offset,
                        what: format!("unknown command '{}'", String::from_utf8_lossy(&args[0])),
                    }));
                }
                if args[0].eq_ignore_ascii_case(b"MULTI") {
                    multi_at = Some(offset);
                } else if args[0].eq_ignore_ascii_case(b"EXEC") {
                    multi_at = None;
                }
                apply(args);
                buf.advance(used);
                offset += used as u64;
            }
            Ok(None) if eof => {
                if let Some(at) = multi_at {
                    return Ok(Some(Damage {
                        offset: at,
                        what: "truncated: a MULTI without its EXEC".into(),
                    }));
                }
                if buf.is_empty() {
                    return Ok(None);
                }
                return Ok(Some(Damage {
                    offset,
                    what: "truncated: the file ends inside a command".into(),
                }));
            }
            Ok(None) => {
                let n = input.read(&mut chunk)?;
                if n == 0 {
                    eof = true;
                }
                buf.extend_from_slice(&chunk[..n]);
            }
            Err((at, what)) => {
                return Ok(Some(Damage {
                    offset: multi_at.unwrap_or(offset + at as u64),
                    what: format!("corrupt command at offset {}: {what}", offset + at as u64),
                }));
            }
        }
    }
}

/// The path of the temporary file a rewrite writes next to `path`.
pub fn rewrite_temp(path: &Path) -> PathBuf {
    path.with_file_name(format!("temp-rewriteaof-bg-{}.aof", std::process::id()))
}

/// Creates the temporary file of a rewrite and writes the base into it with `fill`; returns it
/// opened for appending.
pub fn write_base(
    tmp: &Path,
    fill: impl FnOnce(&mut BufWriter<&File>) -> io::Result<()>,
) -> io::Result<File> {
    let _ = std::fs::remove_file(tmp);
    let file = OpenOptions::new().append(true).create_new(true).open(tmp)?;
    let r = (|| {
        let mut out = BufWriter::with_capacity(256 * 1024, &file);
        fill(&mut out)?;
        out.flush()
    })();
    if let Err(e) = r {
        let _ = std::fs::remove_file(tmp);
        return Err(e);
    }
    Ok(file)
}

/// Opens an AOF for loading: the reader and whether it starts with an RDB base.
pub fn open_for_load(path: &Path) -> io::Result<(BufReader<File>, bool)> {
    let mut r = BufReader::with_capacity(256 * 1024, File::open(path)?);
    let head = std::io::BufRead::fill_buf(&mut r)?;
    let rdb = head.starts_with(b"REDIS");
    Ok((r, rdb))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmds(parts: &[&[&str]]) -> Vec<u8> {
        let mut out = BytesMut::new();
        let mut sel = None;
        for p in parts {
            let args: Vec<Bytes> = p
                .iter()
                .map(|s| Bytes::copy_from_slice(s.as_bytes()))
                .collect();
            encode(&mut out, &mut sel, Some(0), &args);
        }
        out.to_vec()
    }

    fn run(bytes: &[u8]) -> (Vec<String>, Option<Damage>) {
        let mut seen = Vec::new();
        let d = replay(
            bytes,
            BytesMut::new(),
            0,
            &|n| !n.eq_ignore_ascii_case(b"BOGUS"),
            &mut |a| seen.push(String::from_utf8_lossy(&a[0]).into_owned()),
        )
        .unwrap();
        (seen, d)
    }

    #[test]
    fn encode_injects_select_only_on_change() {
        let mut out = BytesMut::new();
        let mut sel = None;
        let set = [
            Bytes::from_static(b"SET"),
            Bytes::from_static(b"k"),
            Bytes::from_static(b"v"),
        ];
        encode(&mut out, &mut sel, Some(2), &set);
        encode(&mut out, &mut sel, Some(2), &set);
        encode(&mut out, &mut sel, None, &[Bytes::from_static(b"EXEC")]);
        let want = "*2\r\n$6\r\nSELECT\r\n$1\r\n2\r\n*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n*1\r\n$4\r\nEXEC\r\n";
        assert_eq!(String::from_utf8_lossy(&out), want);
    }

    #[test]
    fn replay_reports_where_a_file_stops_being_valid() {
        let good = cmds(&[
            &["SET", "a", "1"],
            &["MULTI"],
            &["SET", "b", "2"],
            &["EXEC"],
        ]);
        assert!(run(&good).1.is_none());
        assert_eq!(run(&good).0, ["SELECT", "SET", "MULTI", "SET", "EXEC"]);
        // Cut inside the last command: the MULTI is unfinished, so the damage starts at it.
        let multi_at = cmds(&[&["SET", "a", "1"]]).len() as u64;
        let (_, d) = run(&good[..good.len() - 3]);
        assert_eq!(d.map(|d| d.offset), Some(multi_at));
        // Cut inside a plain command.
        let one = cmds(&[&["SET", "a", "1"], &["SET", "b", "2"]]);
        let (seen, d) = run(&one[..one.len() - 1]);
        assert_eq!(seen, ["SELECT", "SET"]);
        assert_eq!(d.map(|d| d.offset), Some(multi_at));
        // Garbage and unknown commands.
        let mut bad = cmds(&[&["SET", "a", "1"]]);
        bad.extend_from_slice(b"xyz\r\n");
        assert_eq!(run(&bad).1.map(|d| d.offset), Some(bad.len() as u64 - 5));
        let unknown = cmds(&[&["BOGUS"]]);
        assert!(
            run(&unknown)
                .1
                .is_some_and(|d| d.what.contains("unknown command"))
        );
    }

    #[test]
    fn parse_rejects_lies_before_allocating() {
        assert!(parse_command(b"*99999999999\r\n").is_err());
        assert!(parse_command(b"*1\r\n$99999999999\r\n").is_err());
        assert!(matches!(parse_command(b"*1\r\n$3\r\nab"), Ok(None)));
        assert!(parse_command(b"*1\r\n$2\r\nabc\r\n").is_err());
        assert_eq!(parse_command(b"*1\r\n$2\r\nab\r\n").unwrap().unwrap().1, 12);
    }

    #[test]
    fn strerror_drops_the_os_error_suffix() {
        let e = io::Error::from_raw_os_error(28);
        assert_eq!(strerror(&e), "No space left on device");
    }
}
