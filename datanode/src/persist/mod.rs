//! Persistence: RDB snapshots (`SAVE`, `BGSAVE`, `save` rules, on shutdown), the append-only
//! file (`appendonly`, `appendfsync`, `BGREWRITEAOF`) and loading them at start.
//!
//! - `config`: `PersistConfig` (the parameters, Redis' syntax); `rdbfile`: atomic RDB writes and
//!   loads; `aof`: the append-only file writer, its rewrite and its parser.
//! - `Persist` (held in `Shared`) is the run-time state: last save, background job, statuses.
//!
//! Snapshots: a point in time is the engine's copy taken while holding the server's gate
//! exclusively (no command or transaction is half done); serializing runs afterwards, on a
//! blocking thread for BGSAVE. One background job (BGSAVE or AOF rewrite) runs at a time, as
//! Redis runs one child; the other is scheduled and started by `cron` when the slot frees.
//!
//! Start-up (`load_at_start`, before the server accepts clients, so no `-LOADING` replies are
//! ever needed: connections wait in the listen queue): with `appendonly yes` the AOF is loaded if
//! it exists (it wins over the RDB, as in Redis), else the RDB is loaded and a base AOF written
//! from it; with `appendonly no` the RDB is loaded. A truncated or corrupt file stops the start
//! with its name and byte offset, unless `rdb-load-truncated` / `aof-load-truncated` allow loading
//! its valid prefix, which is then logged and, for an AOF, rewritten so the file holds exactly
//! what was loaded.
//!
//! Invariants: a file on disk is always a complete snapshot (temporary file, fsync, rename,
//! fsync of the directory); a failed background save is reported in INFO and the log and, with
//! `save` rules and `stop-writes-on-bgsave-error`, refuses writes with Redis' `-MISCONF` until a
//! save succeeds; nothing is committed to the keyspace from an RDB before its checksum verified.

pub mod aof;
pub mod config;
pub mod rdbfile;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use bytes::{Bytes, BytesMut};
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};
use vigil_proto::resp::Frame;

pub use aof::Aof;
pub use config::{AppendFsync, PersistConfig, SaveRule};

use crate::engine::Entry;
use crate::rdb::SnapshotInfo;
use crate::server::{Shared, unix_ms};

/// Why persistence failed at start.
#[derive(Debug, thiserror::Error)]
pub enum PersistError {
    /// The RDB file is truncated or corrupt.
    #[error("{}: bad RDB file at byte offset {offset}: {source} (start with --rdb-load-truncated to load the valid part)", .path.display())]
    Rdb {
        /// The file.
        path: PathBuf,
        /// Where it stops being valid.
        offset: u64,
        /// What is wrong.
        source: crate::rdb::RdbError,
    },
    /// The append-only file is truncated or corrupt.
    #[error("{}: bad append-only file at byte offset {offset}: {what} (start with --aof-load-truncated to load the valid part)", .path.display())]
    Aof {
        /// The file.
        path: PathBuf,
        /// Where it stops being valid.
        offset: u64,
        /// What is wrong.
        what: String,
    },
    /// A file could not be read or written.
    #[error("{}: {source}", .path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The loading task died.
    #[error("loading task failed: {0}")]
    Task(String),
}

/// The background job running, as Redis' child type.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
enum Job {
    Bgsave,
    Rewrite,
}

/// Persistence state shared by every connection; see the module docs.
pub struct Persist {
    /// Unix seconds of the last successful save (`LASTSAVE`).
    lastsave: AtomicU64,
    /// `stats.dirty` at the instant of the last successful save's snapshot.
    dirty_at_save: AtomicU64,
    job: Mutex<Option<(Job, Instant)>>,
    bgsave_scheduled: AtomicBool,
    rewrite_scheduled: AtomicBool,
    /// False after a failed background save, until a save succeeds.
    bgsave_ok: AtomicBool,
    /// Unix seconds of the last background save attempt (failed ones are retried after 5 s).
    bgsave_tried: AtomicU64,
    rewrite_ok: AtomicBool,
    rdb_saves: AtomicU64,
    aof_rewrites: AtomicU64,
    /// Set once the shutdown save ran (by `SHUTDOWN` or at exit), so it runs once.
    shutdown_done: AtomicBool,
    /// Keys loaded and dropped as expired at start.
    loaded: Mutex<(usize, usize)>,
    /// The append-only file.
    pub aof: Arc<Aof>,
}

impl Persist {
    /// Fresh state for `config`.
    pub fn new(config: &PersistConfig) -> Persist {
        Persist {
            lastsave: AtomicU64::new(unix_ms() / 1000),
            dirty_at_save: AtomicU64::new(0),
            job: Mutex::new(None),
            bgsave_scheduled: AtomicBool::new(false),
            rewrite_scheduled: AtomicBool::new(false),
            bgsave_ok: AtomicBool::new(true),
            bgsave_tried: AtomicU64::new(0),
            rewrite_ok: AtomicBool::new(true),
            rdb_saves: AtomicU64::new(0),
            aof_rewrites: AtomicU64::new(0),
            shutdown_done: AtomicBool::new(false),
            loaded: Mutex::new((0, 0)),
            aof: Arc::new(Aof::new(config.appendfsync)),
        }
    }

    fn job(&self) -> std::sync::MutexGuard<'_, Option<(Job, Instant)>> {
        self.job
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Claims the background slot for `job`; false when another job holds it.
    fn claim(&self, job: Job) -> bool {
        let mut j = self.job();
        if j.is_some() {
            return false;
        }
        *j = Some((job, Instant::now()));
        true
    }

    fn running(&self) -> Option<Job> {
        self.job().map(|(j, _)| j)
    }

    /// `-MISCONF` when writes must be refused: a failed background save while `save` rules exist
    /// and `stop-writes-on-bgsave-error` is on, or a failed append-only file write.
    fn refuse_write(&self, config: &PersistConfig) -> Option<Frame> {
        if config.stop_writes_on_bgsave_error
            && !config.save.is_empty()
            && !self.bgsave_ok.load(Ordering::Relaxed)
        {
            return Some(Frame::error_static(MISCONF_RDB));
        }
        if config.appendonly {
            if let Some(e) = self.aof.write_error() {
                return Some(Frame::error(format!(
                    "MISCONF Errors writing to the AOF file: {e}"
                )));
            }
        }
        None
    }

    /// Writes since the last successful save.
    fn changes(&self, shared: &Shared) -> u64 {
        shared
            .stats
            .dirty
            .load(Ordering::Relaxed)
            .saturating_sub(self.dirty_at_save.load(Ordering::Relaxed))
    }
}

/// `-MISCONF` when writes must be refused (see `Persist::refuse_write`). The common case, nothing
/// failed, costs two relaxed loads and no lock.
pub fn refuse_write(shared: &Shared) -> Option<Frame> {
    let p = &shared.persist;
    if p.bgsave_ok.load(Ordering::Relaxed) && p.aof.write_error().is_none() {
        return None;
    }
    p.refuse_write(&shared.config().persist)
}

/// Redis 7.0's refusal after a failed background save, word for word.
const MISCONF_RDB: &str = "MISCONF Redis is configured to save RDB snapshots, but it's currently unable to persist to disk. Commands that may modify the data set are disabled, because this instance is configured to report errors during writes if RDB snapshotting fails (stop-writes-on-bgsave-error option). Please check the Redis logs for details about the RDB error.";

/// A copy of the keyspace at an instant.
struct Snap {
    dbs: Vec<Vec<Entry>>,
    /// `stats.dirty` at the instant.
    dirty: u64,
}

/// Takes a point-in-time copy: holds the gate exclusively unless the caller already does (a
/// command inside `EXEC`); `at_instant` runs at that instant.
fn snapshot(shared: &Shared, gate_held: bool, at_instant: impl FnOnce()) -> Snap {
    let _gate = (!gate_held).then(|| shared.gate.write());
    let dirty = shared.stats.dirty.load(Ordering::Relaxed);
    let dbs = shared.engine.snapshot();
    at_instant();
    Snap { dbs, dirty }
}

fn rdb_path(shared: &Shared) -> PathBuf {
    let c = shared.config();
    c.dir.join(&c.persist.dbfilename)
}

fn aof_path(shared: &Shared) -> PathBuf {
    let c = shared.config();
    c.dir.join(&c.persist.appendfilename)
}

fn snapshot_info(shared: &Shared, aof_base: bool) -> SnapshotInfo {
    let mut info = SnapshotInfo::new(SystemTime::now());
    info.compress = shared.config().persist.rdbcompression;
    info.used_mem = shared.used_memory.load(Ordering::Relaxed) as u64;
    info.aof_base = aof_base;
    info
}

/// Writes `snap` to the RDB file and records the outcome.
fn write_rdb(shared: &Shared, snap: &Snap, background: bool) -> std::io::Result<()> {
    let path = rdb_path(shared);
    let started = Instant::now();
    let r = rdbfile::write_atomic(&path, &snap.dbs, &snapshot_info(shared, false));
    let p = &shared.persist;
    match &r {
        Ok(bytes) => {
            p.lastsave.store(unix_ms() / 1000, Ordering::Relaxed);
            p.dirty_at_save.store(snap.dirty, Ordering::Relaxed);
            p.bgsave_ok.store(true, Ordering::Relaxed);
            p.rdb_saves.fetch_add(1, Ordering::Relaxed);
            info!(path = %path.display(), bytes, elapsed_ms = started.elapsed().as_millis() as u64, background, "DB saved on disk");
        }
        Err(e) => {
            // Like Redis, only a background save flips `rdb_last_bgsave_status` (and MISCONF).
            if background {
                p.bgsave_ok.store(false, Ordering::Relaxed);
            }
            error!(path = %path.display(), error = %e, background, "saving the DB failed; the previous snapshot is intact");
        }
    }
    r.map(|_| ())
}

/// `SAVE`: a snapshot written before the reply.
pub fn save(shared: &Shared, in_exec: bool) -> Frame {
    if shared.persist.running() == Some(Job::Bgsave) {
        return Frame::error_static("ERR Background save already in progress");
    }
    let snap = snapshot(shared, in_exec, || {});
    match write_rdb(shared, &snap, false) {
        Ok(()) => Frame::ok(),
        Err(_) => Frame::error_static("ERR"),
    }
}

/// `BGSAVE [SCHEDULE]`.
pub fn bgsave(shared: &Arc<Shared>, args: &[Bytes], in_exec: bool) -> Frame {
    let schedule = match args.get(1..) {
        Some([]) | None => false,
        Some([a]) if a.eq_ignore_ascii_case(b"SCHEDULE") => true,
        _ => return Frame::error_static("ERR syntax error"),
    };
    let p = &shared.persist;
    match p.running() {
        Some(Job::Bgsave) => Frame::error_static("ERR Background save already in progress"),
        Some(Job::Rewrite) if !schedule && !in_exec => Frame::error_static(
            "ERR Another child process is active (AOF?): can't BGSAVE right now. Use BGSAVE SCHEDULE in order to schedule a BGSAVE whenever possible.",
        ),
        Some(_) => {
            p.bgsave_scheduled.store(true, Ordering::Relaxed);
            Frame::simple("Background saving scheduled")
        }
        // Inside EXEC the gate is ours: the snapshot is taken by `cron` right after, as Redis does.
        None if in_exec => {
            p.bgsave_scheduled.store(true, Ordering::Relaxed);
            Frame::simple("Background saving scheduled")
        }
        None if start_bgsave(shared) => Frame::simple("Background saving started"),
        None => Frame::error_static("ERR Background save already in progress"),
    }
}

/// Takes a snapshot now and writes it in the background; false if the slot is taken.
fn start_bgsave(shared: &Arc<Shared>) -> bool {
    let p = &shared.persist;
    if !p.claim(Job::Bgsave) {
        return false;
    }
    p.bgsave_scheduled.store(false, Ordering::Relaxed);
    p.bgsave_tried.store(unix_ms() / 1000, Ordering::Relaxed);
    let snap = snapshot(shared, false, || {});
    info!("background saving started");
    let shared = shared.clone();
    tokio::task::spawn_blocking(move || {
        let _ = write_rdb(&shared, &snap, true);
        *shared.persist.job() = None;
    });
    true
}

/// `BGREWRITEAOF`.
pub fn bgrewriteaof(shared: &Arc<Shared>, in_exec: bool) -> Frame {
    let p = &shared.persist;
    match p.running() {
        Some(Job::Rewrite) => {
            Frame::error_static("ERR Background append only file rewriting already in progress")
        }
        Some(_) => {
            p.rewrite_scheduled.store(true, Ordering::Relaxed);
            Frame::simple("Background append only file rewriting scheduled")
        }
        None if in_exec => {
            p.rewrite_scheduled.store(true, Ordering::Relaxed);
            Frame::simple("Background append only file rewriting scheduled")
        }
        None if start_rewrite(shared) => {
            Frame::simple("Background append only file rewriting started")
        }
        None => Frame::error_static(
            "ERR Can't execute an AOF background rewriting. Please check the server logs for more information.",
        ),
    }
}

/// Starts a rewrite: a snapshot now (recording the tail from the same instant), the base and
/// the switch in the background. When the AOF is not yet recording (`appendonly` just turned on),
/// recording starts at the snapshot's instant and the file goes live at the switch.
fn start_rewrite(shared: &Arc<Shared>) -> bool {
    let p = &shared.persist;
    if !p.claim(Job::Rewrite) {
        return false;
    }
    p.rewrite_scheduled.store(false, Ordering::Relaxed);
    let aof = p.aof.clone();
    let record = shared.config().persist.appendonly;
    let snap = snapshot(shared, false, || {
        if record {
            aof.begin_rewrite();
            if !aof.recording() {
                aof.set_recording(true);
                shared.repl.set_sink(Some(aof.clone()));
            }
        }
    });
    info!(
        keys = snap.dbs.iter().map(Vec::len).sum::<usize>(),
        "background append only file rewriting started"
    );
    let shared = shared.clone();
    tokio::task::spawn_blocking(move || {
        let r = write_rewrite(&shared, &snap, record);
        let p = &shared.persist;
        match r {
            Ok(()) => {
                p.rewrite_ok.store(true, Ordering::Relaxed);
                p.aof_rewrites.fetch_add(1, Ordering::Relaxed);
                info!("background AOF rewrite finished successfully");
            }
            Err(e) => {
                p.aof.abort_rewrite();
                p.rewrite_ok.store(false, Ordering::Relaxed);
                error!(error = %e, "background AOF rewrite failed; the previous file is intact");
            }
        }
        *p.job() = None;
    });
    true
}

/// Writes the base of a rewrite and, when recording, appends the tail and switches files.
fn write_rewrite(shared: &Shared, snap: &Snap, record: bool) -> std::io::Result<()> {
    let path = aof_path(shared);
    let tmp = aof::rewrite_temp(&path);
    let info = snapshot_info(shared, true);
    let file = aof::write_base(&tmp, |out| {
        let mut w = crate::rdb::RdbWriter::new(out, &info)?;
        rdbfile::write_entries(&mut w, &snap.dbs)?;
        w.finish().map(|_| ())
    })?;
    let r = if record && shared.persist.aof.rewriting() {
        shared.persist.aof.finish_rewrite(file, &tmp, &path)
    } else if record {
        Err(std::io::Error::other("the rewrite was cancelled"))
    } else {
        // `appendonly no`: the file is written for the operator, nothing records into it.
        (|| {
            file.sync_all()?;
            std::fs::rename(&tmp, &path)?;
            rdbfile::sync_dir(&path)
        })()
    };
    if r.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    r
}

/// Applies persistence parameters after `CONFIG SET`: fsync policy, and `appendonly` turned on
/// (a rewrite writes the base first) or off (the file is flushed and closed).
pub fn apply_config(shared: &Arc<Shared>, config: &PersistConfig) {
    let p = &shared.persist;
    p.aof.set_fsync(config.appendfsync);
    if config.appendonly && !p.aof.recording() {
        // Started now if the slot is free, else by `cron` once it is.
        let _ = start_rewrite(shared);
    } else if !config.appendonly && p.aof.recording() {
        shared.repl.set_sink(None);
        p.aof.set_recording(false);
        p.aof.stop();
        info!("append only file turned off");
    }
}

/// `LASTSAVE`.
pub fn lastsave(shared: &Shared) -> Frame {
    Frame::Integer(shared.persist.lastsave.load(Ordering::Relaxed) as i64)
}

/// `SHUTDOWN [NOSAVE|SAVE] [NOW] [FORCE] [ABORT]`: `Ok(())` when the server may stop, else the
/// error reply (the server keeps running).
pub fn shutdown(shared: &Shared, args: &[Bytes], in_exec: bool) -> Result<(), Frame> {
    let (mut save, mut nosave, mut force, mut abort) = (false, false, false, false);
    for a in args.get(1..).unwrap_or(&[]) {
        match String::from_utf8_lossy(a).to_ascii_lowercase().as_str() {
            "save" => save = true,
            "nosave" => nosave = true,
            "now" => {}
            "force" => force = true,
            "abort" => abort = true,
            _ => return Err(Frame::error_static("ERR syntax error")),
        }
    }
    if (save && nosave) || (abort && args.len() > 2) {
        return Err(Frame::error_static("ERR syntax error"));
    }
    if abort {
        return Err(Frame::error_static("ERR No shutdown in progress."));
    }
    let want = if nosave {
        Some(false)
    } else if save {
        Some(true)
    } else {
        None
    };
    match final_save(shared, want, in_exec) {
        Err(()) if !force => Err(Frame::error_static(
            "ERR Errors trying to SHUTDOWN. Check logs.",
        )),
        _ => Ok(()),
    }
}

/// The save on the way out: an RDB when `save` is forced or rules exist (`want` = `None`), and
/// the append-only file flushed and fsynced. Runs once.
fn final_save(shared: &Shared, want: Option<bool>, in_exec: bool) -> Result<(), ()> {
    let p = &shared.persist;
    let (rules, appendonly) = {
        let c = shared.config();
        (!c.persist.save.is_empty(), c.persist.appendonly)
    };
    let mut ok = true;
    if appendonly && p.aof.recording() {
        if let Err(e) = p.aof.flush_now() {
            error!(error = %e, "flushing the append only file at shutdown failed");
            ok = false;
        }
    }
    if want.unwrap_or(rules) {
        info!("saving the final RDB snapshot before exiting");
        let snap = snapshot(shared, in_exec, || {});
        if write_rdb(shared, &snap, false).is_err() {
            error!("error trying to save the DB, can't exit");
            ok = false;
        }
    }
    if ok {
        p.shutdown_done.store(true, Ordering::Relaxed);
        Ok(())
    } else {
        Err(())
    }
}

/// Called when the server stops (after connections drained): the shutdown save if `SHUTDOWN`
/// did not run it (SIGTERM), then the append-only file is flushed, fsynced and closed.
pub fn on_exit(shared: &Shared) {
    if !shared.persist.shutdown_done.load(Ordering::Relaxed)
        && final_save(shared, None, false).is_err()
    {
        error!("the final save failed; exiting anyway (the previous snapshot is intact)");
    }
    shared.persist.aof.stop();
}

/// Ten times a second: scheduled jobs, `save` rules, and `appendonly` waiting for its rewrite.
pub async fn cron(shared: Arc<Shared>, stop: CancellationToken) {
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        let p = &shared.persist;
        if p.running().is_some() {
            continue;
        }
        let (rules, appendonly) = {
            let c = shared.config();
            (c.persist.save.clone(), c.persist.appendonly)
        };
        if p.rewrite_scheduled.load(Ordering::Relaxed) || (appendonly && !p.aof.recording()) {
            start_rewrite(&shared);
            continue;
        }
        if p.bgsave_scheduled.load(Ordering::Relaxed) {
            start_bgsave(&shared);
            continue;
        }
        let now = unix_ms() / 1000;
        let since = now.saturating_sub(p.lastsave.load(Ordering::Relaxed));
        let changes = p.changes(&shared);
        // A failed save is retried after 5 s, not on every tick (Redis' CONFIG_BGSAVE_RETRY_DELAY).
        let may = p.bgsave_ok.load(Ordering::Relaxed)
            || now.saturating_sub(p.bgsave_tried.load(Ordering::Relaxed)) >= 5;
        if let Some(rule) = rules
            .iter()
            .find(|r| changes >= r.changes && since >= r.after.as_secs())
        {
            if may {
                info!(
                    changes = rule.changes,
                    seconds = rule.after.as_secs(),
                    "save rule met; saving"
                );
                start_bgsave(&shared);
            }
        }
    }
}

/// Loads the dataset at start (see the module docs) and starts the append-only file. Blocking.
pub fn load_at_start(shared: &Arc<Shared>) -> Result<(), PersistError> {
    let (cfg, databases, drop_expired) = {
        let c = shared.config();
        (c.persist.clone(), c.databases, c.replicaof.is_none())
    };
    let rdb = rdb_path(shared);
    let aof_file = aof_path(shared);
    let started = Instant::now();
    let mut rewrite_aof = false;
    if cfg.appendonly && aof_file.exists() {
        rewrite_aof = load_aof(shared, &aof_file, &cfg, databases, drop_expired)?;
    } else if rdb.exists() {
        load_rdb(shared, &rdb, &cfg, databases, drop_expired)?;
        rewrite_aof = cfg.appendonly;
    } else if cfg.appendonly {
        rewrite_aof = true;
    }
    // What was loaded is what is on disk.
    let dirty = shared.stats.dirty.load(Ordering::Relaxed);
    shared.persist.dirty_at_save.store(dirty, Ordering::Relaxed);
    if !cfg.appendonly {
        return Ok(());
    }
    let aof = &shared.persist.aof;
    if rewrite_aof {
        // A base written synchronously from what was loaded (no client is connected yet).
        let snap = snapshot(shared, false, || aof.begin_rewrite());
        write_rewrite_at_start(shared, &snap, &aof_file)?;
    } else {
        aof.open(&aof_file).map_err(|source| PersistError::Io {
            path: aof_file.clone(),
            source,
        })?;
    }
    aof.set_recording(true);
    shared.repl.set_sink(Some(aof.clone()));
    info!(path = %aof_file.display(), elapsed_ms = started.elapsed().as_millis() as u64, "append only file ready");
    Ok(())
}

fn write_rewrite_at_start(shared: &Shared, snap: &Snap, path: &Path) -> Result<(), PersistError> {
    let tmp = aof::rewrite_temp(path);
    let info = snapshot_info(shared, true);
    let io = |source| PersistError::Io {
        path: path.to_path_buf(),
        source,
    };
    let file = aof::write_base(&tmp, |out| {
        let mut w = crate::rdb::RdbWriter::new(out, &info)?;
        rdbfile::write_entries(&mut w, &snap.dbs)?;
        w.finish().map(|_| ())
    })
    .map_err(io)?;
    shared
        .persist
        .aof
        .finish_rewrite(file, &tmp, path)
        .map_err(io)
}

fn load_rdb(
    shared: &Shared,
    path: &Path,
    cfg: &PersistConfig,
    databases: usize,
    drop_expired: bool,
) -> Result<(), PersistError> {
    let r = rdbfile::load(
        path,
        databases,
        unix_ms(),
        drop_expired,
        cfg.rdb_load_truncated,
    )
    .map_err(|source| PersistError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let loaded = match r {
        Ok(l) => l,
        Err((e, Some(prefix))) => {
            warn!(path = %path.display(), offset = e.offset, error = %e.source, keys = prefix.keys,
                "RDB file is damaged; loading the keys before the damage only (rdb-load-truncated)");
            prefix
        }
        Err((e, None)) => {
            return Err(PersistError::Rdb {
                path: path.to_path_buf(),
                offset: e.offset,
                source: e.source,
            });
        }
    };
    info!(path = %path.display(), keys = loaded.keys, expired = loaded.expired, "DB loaded from disk");
    *shared
        .persist
        .loaded
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner) = (loaded.keys, loaded.expired);
    shared.engine.replace_all(loaded.dbs);
    Ok(())
}

/// Loads an append-only file; true when it was damaged and must be rewritten from memory.
fn load_aof(
    shared: &Arc<Shared>,
    path: &Path,
    cfg: &PersistConfig,
    databases: usize,
    drop_expired: bool,
) -> Result<bool, PersistError> {
    let io = |source| PersistError::Io {
        path: path.to_path_buf(),
        source,
    };
    let (mut reader, has_base) = aof::open_for_load(path).map_err(io)?;
    let mut rest = BytesMut::new();
    let mut offset = 0;
    let mut damaged = false;
    if has_base {
        let limits = crate::rdb::ReadLimits {
            databases,
            ..crate::rdb::ReadLimits::default()
        };
        let mut rdb = crate::rdb::RdbReader::with_limits(reader, limits).map_err(|source| {
            PersistError::Rdb {
                path: path.to_path_buf(),
                offset: 0,
                source,
            }
        })?;
        let mut loaded = rdbfile::LoadedRdb {
            dbs: (0..databases).map(|_| Vec::new()).collect(),
            keys: 0,
            len: 0,
            expired: 0,
        };
        let r = rdbfile::read_into(&mut rdb, &mut loaded, unix_ms(), drop_expired);
        if let Err(e) = r {
            if !cfg.aof_load_truncated {
                return Err(PersistError::Aof {
                    path: path.to_path_buf(),
                    offset: e.offset,
                    what: format!("in its RDB base: {}", e.source),
                });
            }
            warn!(path = %path.display(), offset = e.offset, error = %e.source, keys = loaded.keys,
                "append only file base is damaged; loading the keys before the damage only (aof-load-truncated)");
            shared.engine.replace_all(loaded.dbs);
            return Ok(true);
        }
        offset = rdb.offset();
        let (r, buffered) = rdb.into_parts();
        reader = r;
        rest.extend_from_slice(&buffered);
        shared.engine.replace_all(loaded.dbs);
    }
    let (session_handle, _push_rx) = replay_client(shared);
    let mut session = session_handle;
    let mut commands = 0u64;
    let damage = aof::replay(
        reader,
        rest,
        offset,
        &|n| crate::cmd::lookup(n).is_some(),
        &mut |args| {
            commands += 1;
            let _ = session.execute(args);
        },
    )
    .map_err(io)?;
    drop(session);
    if let Some(d) = damage {
        if !cfg.aof_load_truncated {
            return Err(PersistError::Aof {
                path: path.to_path_buf(),
                offset: d.offset,
                what: d.what,
            });
        }
        warn!(path = %path.display(), offset = d.offset, error = %d.what, commands,
            "append only file is damaged; loaded what precedes the damage and rewriting the file from it (aof-load-truncated)");
        damaged = true;
    }
    info!(path = %path.display(), commands, base = has_base, "DB loaded from append only file");
    Ok(damaged)
}

/// A session that replays commands as our own master would: no refusals, no feeding.
fn replay_client(
    shared: &Arc<Shared>,
) -> (
    crate::session::Session,
    tokio::sync::mpsc::UnboundedReceiver<crate::pubsub::Push>,
) {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let handle = Arc::new(crate::server::ClientHandle {
        id: 0,
        addr: shared.addr,
        laddr: shared.addr,
        since: Instant::now(),
        info: Mutex::new(crate::server::ClientInfo::default()),
        kill: CancellationToken::new(),
        pending_push: std::sync::atomic::AtomicUsize::new(0),
    });
    let mut s = crate::session::Session::new(shared.clone(), handle, tx);
    s.set_master_client(0);
    (s, rx)
}

/// `INFO persistence`, with Redis 7.0's field names.
pub fn render_info(s: &Shared, o: &mut String) -> std::fmt::Result {
    let p = &s.persist;
    let job = *p.job();
    let appendonly = s.config().persist.appendonly;
    let (keys, expired) = *p
        .loaded
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let since = |j: Job| {
        job.filter(|(k, _)| *k == j)
            .map_or(-1, |(_, t)| t.elapsed().as_secs() as i64)
    };
    let ok = |b: &AtomicBool| {
        if b.load(Ordering::Relaxed) {
            "ok"
        } else {
            "err"
        }
    };
    writeln!(o, "# Persistence\r")?;
    writeln!(o, "loading:0\r")?;
    writeln!(o, "async_loading:0\r")?;
    writeln!(o, "rdb_changes_since_last_save:{}\r", p.changes(s))?;
    writeln!(
        o,
        "rdb_bgsave_in_progress:{}\r",
        u8::from(job.is_some_and(|(j, _)| j == Job::Bgsave))
    )?;
    writeln!(
        o,
        "rdb_last_save_time:{}\r",
        p.lastsave.load(Ordering::Relaxed)
    )?;
    writeln!(o, "rdb_last_bgsave_status:{}\r", ok(&p.bgsave_ok))?;
    writeln!(o, "rdb_current_bgsave_time_sec:{}\r", since(Job::Bgsave))?;
    writeln!(o, "rdb_saves:{}\r", p.rdb_saves.load(Ordering::Relaxed))?;
    writeln!(o, "rdb_last_load_keys_expired:{expired}\r")?;
    writeln!(o, "rdb_last_load_keys_loaded:{keys}\r")?;
    writeln!(o, "aof_enabled:{}\r", u8::from(appendonly))?;
    writeln!(
        o,
        "aof_rewrite_in_progress:{}\r",
        u8::from(job.is_some_and(|(j, _)| j == Job::Rewrite))
    )?;
    writeln!(
        o,
        "aof_rewrite_scheduled:{}\r",
        u8::from(p.rewrite_scheduled.load(Ordering::Relaxed))
    )?;
    writeln!(o, "aof_current_rewrite_time_sec:{}\r", since(Job::Rewrite))?;
    writeln!(o, "aof_last_bgrewrite_status:{}\r", ok(&p.rewrite_ok))?;
    writeln!(
        o,
        "aof_rewrites:{}\r",
        p.aof_rewrites.load(Ordering::Relaxed)
    )?;
    let write = if p.aof.write_error().is_some() {
        "err"
    } else {
        "ok"
    };
    writeln!(o, "aof_last_write_status:{write}\r")
}
