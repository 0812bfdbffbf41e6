//! RDB files on disk: atomic writes of a snapshot and loading one at start.
//!
//! Writing: the snapshot goes to a temporary file in the target's directory, which is flushed,
//! fsynced, renamed over the target, and the directory fsynced, so at every instant the target
//! is either the previous complete snapshot or the new complete one. On any error the temporary
//! file is removed and the target is untouched.
//!
//! Loading: entries are collected in memory and handed back only after the reader returned
//! `Ok(None)` (EOF and checksum verified). With `allow_prefix` a failure yields the entries read
//! before it instead, with the error, so the caller can log what was dropped; never silently.
//!
//! Invariant: nothing here panics on file content; every load error names the file and the byte
//! offset at which it stopped making sense.

use std::collections::HashSet;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::engine::Entry;
use crate::rdb::{Item, RdbError, RdbReader, RdbWriter, ReadLimits, SnapshotInfo};
use crate::sds::Sds;

/// A snapshot read from a file.
#[derive(Debug)]
pub struct LoadedRdb {
    /// Entries per database (index = db).
    pub dbs: Vec<Vec<Entry>>,
    /// Keys loaded.
    pub keys: usize,
    /// Bytes of the file consumed (the whole snapshot, checksum included, when it loaded fully).
    pub len: u64,
    /// Keys dropped because their expiry time had passed.
    pub expired: usize,
}

/// Why a snapshot file did not load completely.
#[derive(Debug)]
pub struct RdbLoadError {
    /// Byte offset at which reading stopped.
    pub offset: u64,
    /// What went wrong there.
    pub source: RdbError,
}

/// Writes `dbs` as an RDB file at `path` atomically (see the module docs). Returns the bytes
/// written.
pub fn write_atomic(path: &Path, dbs: &[Vec<Entry>], info: &SnapshotInfo) -> io::Result<u64> {
    write_with(path, |out| {
        let mut w = RdbWriter::new(out, info)?;
        write_entries(&mut w, dbs)?;
        let n = w.bytes_written();
        w.finish()?;
        Ok(n)
    })
}

/// Writes every non-empty database of `dbs` into `w`.
pub fn write_entries<W: Write>(w: &mut RdbWriter<W>, dbs: &[Vec<Entry>]) -> io::Result<()> {
    for (db, entries) in dbs.iter().enumerate() {
        if entries.is_empty() {
            continue;
        }
        let expires = entries.iter().filter(|e| e.expire_at != 0).count();
        w.select_db(db, entries.len() as u64, expires as u64)?;
        for e in entries {
            w.entry(e)?;
        }
    }
    Ok(())
}

/// Creates a temporary file next to `path`, lets `fill` write it, then fsyncs it, renames it over
/// `path` and fsyncs the directory. On error the temporary file is removed.
pub fn write_with<T>(
    path: &Path,
    fill: impl FnOnce(&mut BufWriter<&File>) -> io::Result<T>,
) -> io::Result<T> {
    let tmp = temp_path(path);
    let r = (|| {
        let file = OpenOptions::new().write(true).create_new(true).open(&tmp)?;
        let mut out = BufWriter::with_capacity(256 * 1024, &file);
        let t = fill(&mut out)?;
        out.flush()?;
        drop(out);
        file.sync_all()?;
        fs::rename(&tmp, path)?;
        sync_dir(path)?;
        Ok(t)
    })();
    if r.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    r
}

/// fsyncs the directory holding `path`, so a rename in it is durable.
pub fn sync_dir(path: &Path) -> io::Result<()> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    File::open(dir)?.sync_all()
}

/// A fresh temporary name in `path`'s directory (`temp-<pid>-<n>.<name>`).
pub fn temp_path(path: &Path) -> PathBuf {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!("temp-{}-{n}.{name}", std::process::id()))
}

/// Reads the snapshot file at `path` (which must exist). With `allow_prefix`, a failure returns
/// the entries read before it along with the error; otherwise nothing is returned on failure.
/// Keys whose expiry passed before `now_ms` are dropped when `drop_expired` (a master's load).
pub fn load(
    path: &Path,
    databases: usize,
    now_ms: u64,
    drop_expired: bool,
    allow_prefix: bool,
) -> io::Result<Result<LoadedRdb, (RdbLoadError, Option<LoadedRdb>)>> {
    let file = File::open(path)?;
    let limits = ReadLimits {
        databases,
        ..ReadLimits::default()
    };
    let mut reader =
        match RdbReader::with_limits(BufReader::with_capacity(256 * 1024, file), limits) {
            Ok(r) => r,
            Err(source) => return Ok(Err((RdbLoadError { offset: 0, source }, None))),
        };
    let mut loaded = LoadedRdb {
        dbs: (0..databases).map(|_| Vec::new()).collect(),
        keys: 0,
        len: 0,
        expired: 0,
    };
    let r = read_into(&mut reader, &mut loaded, now_ms, drop_expired);
    loaded.len = reader.offset();
    Ok(match r {
        Ok(()) => Ok(loaded),
        Err(e) => Err((e, allow_prefix.then_some(loaded))),
    })
}

/// Reads every item of `reader` into `loaded`; used for RDB files and AOF preambles alike.
pub fn read_into<R: io::Read>(
    reader: &mut RdbReader<R>,
    loaded: &mut LoadedRdb,
    now_ms: u64,
    drop_expired: bool,
) -> Result<(), RdbLoadError> {
    let mut seen: Vec<HashSet<Sds>> = (0..loaded.dbs.len()).map(|_| HashSet::new()).collect();
    loop {
        let at = reader.offset();
        let item = reader.next_item().map_err(|source| RdbLoadError {
            offset: error_offset(&source, reader.offset()),
            source,
        })?;
        match item {
            None => return Ok(()),
            Some(Item::Entry { db, entry, .. }) => {
                let (Some(d), Some(keys)) = (loaded.dbs.get_mut(db), seen.get_mut(db)) else {
                    continue;
                };
                // The reader keeps no index: a repeated key is corruption, as Redis says.
                if !keys.insert(entry.key.clone()) {
                    return Err(RdbLoadError {
                        offset: at,
                        source: RdbError::Corrupt {
                            offset: at,
                            what: format!(
                                "duplicate key '{}' in db {db}",
                                String::from_utf8_lossy(&entry.key)
                            ),
                        },
                    });
                }
                if drop_expired && entry.is_expired(now_ms) {
                    loaded.expired += 1;
                    continue;
                }
                d.push(entry);
                loaded.keys += 1;
            }
            Some(Item::ResizeDb { db, keys, .. }) => {
                if let Some(d) = loaded.dbs.get_mut(db) {
                    // A hint from the file: capped so a lie cannot make us allocate.
                    d.reserve((keys as usize).min(1 << 20));
                }
            }
            Some(Item::Function { .. }) => {
                tracing::warn!(
                    "snapshot holds a function library; Vigil has no functions, ignored"
                );
            }
            Some(Item::Aux { .. }) => {}
        }
    }
}

/// The offset an error names when it carries one, else where the reader stood.
fn error_offset(e: &RdbError, at: u64) -> u64 {
    match e {
        RdbError::Truncated { offset, .. }
        | RdbError::UnknownType { offset, .. }
        | RdbError::Unsupported { offset, .. }
        | RdbError::Corrupt { offset, .. }
        | RdbError::TooLarge { offset, .. }
        | RdbError::Io { offset, .. } => *offset,
        _ => at,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::Value;
    use std::time::SystemTime;

    fn dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("vigil-rdbfile-{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(&d).unwrap();
        d
    }

    fn dataset() -> Vec<Vec<Entry>> {
        let mut e = Entry::new(b"k", Value::Str(Sds::new(b"v")));
        e.expire_at = 4_000_000_000_000;
        let mut gone = Entry::new(b"old", Value::Str(Sds::new(b"x")));
        gone.expire_at = 1;
        vec![
            vec![e, gone],
            vec![Entry::new(b"n", Value::Str(Sds::new(b"1")))],
        ]
    }

    #[test]
    fn write_is_atomic_and_loads_back_without_expired_keys() {
        let d = dir("atomic");
        let path = d.join("dump.rdb");
        write_atomic(&path, &dataset(), &SnapshotInfo::new(SystemTime::now())).unwrap();
        let loaded = load(&path, 2, 1000, true, false).unwrap().unwrap();
        assert_eq!((loaded.keys, loaded.expired), (2, 1));
        assert_eq!(loaded.dbs[0][0].expire_at, 4_000_000_000_000);
        assert_eq!(loaded.len, fs::metadata(&path).unwrap().len());
        let leftovers: Vec<_> = fs::read_dir(&d).unwrap().filter_map(Result::ok).collect();
        assert_eq!(leftovers.len(), 1, "no temporary file left behind");
        let _ = fs::remove_dir_all(&d);
    }

    #[test]
    fn a_failed_write_leaves_the_previous_file_intact() {
        let d = dir("fail");
        let path = d.join("dump.rdb");
        write_atomic(&path, &dataset(), &SnapshotInfo::new(SystemTime::now())).unwrap();
        let before = fs::read(&path).unwrap();
        let r: io::Result<()> = write_with(&path, |out| {
            out.write_all(b"REDIS0010partial")?;
            Err(io::Error::other("disk full"))
        });
        assert!(r.is_err());
        assert_eq!(fs::read(&path).unwrap(), before);
        assert_eq!(
            fs::read_dir(&d).unwrap().count(),
            1,
            "temporary file removed"
        );
        let _ = fs::remove_dir_all(&d);
    }

    #[test]
    fn truncated_file_fails_with_an_offset_or_yields_its_prefix() {
        let d = dir("trunc");
        let path = d.join("dump.rdb");
        write_atomic(&path, &dataset(), &SnapshotInfo::new(SystemTime::now())).unwrap();
        let bytes = fs::read(&path).unwrap();
        fs::write(&path, &bytes[..bytes.len() - 12]).unwrap();
        let Err((e, None)) = load(&path, 2, 0, false, false).unwrap() else {
            panic!("a truncated file must not load")
        };
        assert_eq!(e.offset, bytes.len() as u64 - 12);
        let Err((_, Some(prefix))) = load(&path, 2, 0, false, true).unwrap() else {
            panic!("the prefix must be offered")
        };
        assert_eq!(prefix.keys, 2, "db 0 was complete");
        let _ = fs::remove_dir_all(&d);
    }
}
