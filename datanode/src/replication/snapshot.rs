//! Point-in-time snapshots of the keyspace, as RDB, for full syncs (and for SAVE/BGSAVE later).
//!
//! `take` makes a snapshot consistent with the replication stream: it holds the replica-apply
//! lock and the server's gate exclusively (so no command, transaction or stream apply is half
//! done), copies every shard's entries, and records the stream offset at that instant, all
//! before letting clients go on; serializing the copy (`write_rdb`) then runs on a blocking
//! thread while clients are served. The bytes written after the instant reach the replica
//! through its output buffer, which `take` attaches under the same locks.
//!
//! `load_rdb` is the inverse for a replica: it reads a snapshot from any `Read` (the socket,
//! through `ChannelReader`) into memory; nothing is committed to the keyspace until the whole
//! snapshot, checksum included, was read.
//!
//! The channel adapters bridge the blocking codec and the async socket tasks with bounded
//! channels: at the limit the producer waits (the writer) or the socket is not read (the reader).

use std::io::{self, Read, Write};
use std::time::SystemTime;

use bytes::Bytes;
use tokio::sync::mpsc;
use tracing::warn;

use super::{ReplOffset, Stream};
use crate::engine::Entry;
use crate::rdb::{Item, RdbError, RdbReader, RdbWriter, ReadLimits, ReplInfo, SnapshotInfo};
use crate::server::Shared;

/// A copy of the keyspace at a stream position.
pub struct Snapshot {
    /// Entries per database (index = db).
    pub dbs: Vec<Vec<Entry>>,
    /// The replication id at the instant.
    pub replid: String,
    /// The stream offset at the instant: the snapshot holds every write up to it, none after.
    pub offset: ReplOffset,
}

/// Takes a consistent snapshot; `at_instant` runs with the stream locked at that instant (to
/// attach the replica that will receive the stream from there). Blocks: call it from a blocking
/// thread.
pub fn take(shared: &Shared, at_instant: impl FnOnce(&mut Stream)) -> Snapshot {
    // Lock order: apply lock, gate, then the stream (see `Replication`).
    let _apply = shared.repl.apply_lock();
    let _gate = shared.gate.write();
    let dbs = shared.engine.snapshot();
    let mut st = shared.repl.stream();
    shared.repl.start_backlog(&mut st);
    st.force_select();
    at_instant(&mut st);
    Snapshot {
        dbs,
        replid: st.ids.replid.clone(),
        offset: ReplOffset(st.offset),
    }
}

/// Writes `snap` as an RDB version 10 file into `out`.
pub fn write_rdb<W: Write>(snap: &Snapshot, out: W) -> io::Result<W> {
    let mut info = SnapshotInfo::new(SystemTime::now());
    info.repl = Some(ReplInfo {
        stream_db: 0,
        replid: snap.replid.clone(),
        offset: snap.offset.0,
    });
    // Full syncs go over fast links; compression would cost more time than it saves.
    info.compress = false;
    let mut w = RdbWriter::new(out, &info)?;
    for (db, entries) in snap.dbs.iter().enumerate() {
        if entries.is_empty() {
            continue;
        }
        let expires = entries.iter().filter(|e| e.expire_at != 0).count();
        w.select_db(db, entries.len() as u64, expires as u64)?;
        for e in entries {
            w.entry(e)?;
        }
    }
    w.finish()
}

/// A snapshot read back.
pub struct Loaded {
    /// Entries per database.
    pub dbs: Vec<Vec<Entry>>,
    /// Keys read.
    pub keys: usize,
}

/// Reads a whole snapshot for a node with `databases` databases.
pub fn load_rdb<R: Read>(input: R, databases: usize) -> Result<Loaded, RdbError> {
    let limits = ReadLimits {
        databases,
        ..ReadLimits::default()
    };
    let mut reader = RdbReader::with_limits(input, limits)?;
    let mut dbs: Vec<Vec<Entry>> = (0..databases).map(|_| Vec::new()).collect();
    let mut keys = 0;
    while let Some(item) = reader.next_item()? {
        match item {
            Item::Entry { db, entry, .. } => {
                if let Some(d) = dbs.get_mut(db) {
                    d.push(entry);
                    keys += 1;
                }
            }
            Item::ResizeDb { db, keys, .. } => {
                if let Some(d) = dbs.get_mut(db) {
                    // A hint from the peer: capped so a lie cannot make us allocate.
                    d.reserve((keys as usize).min(1 << 20));
                }
            }
            Item::Function { .. } => warn!("snapshot holds a function library; ignored"),
            Item::Aux { .. } => {}
        }
    }
    Ok(Loaded { dbs, keys })
}

/// A `Write` that hands chunks to an async task through a bounded channel; when the channel is
/// full the writer blocks, and when the task is gone writes fail with `BrokenPipe`.
pub struct ChannelWriter {
    tx: mpsc::Sender<Bytes>,
    buf: Vec<u8>,
}

/// Bytes per chunk handed over.
const CHUNK: usize = 256 * 1024;

impl ChannelWriter {
    /// A writer feeding `tx`.
    pub fn new(tx: mpsc::Sender<Bytes>) -> ChannelWriter {
        ChannelWriter {
            tx,
            buf: Vec::with_capacity(CHUNK),
        }
    }

    fn send(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK)));
        self.tx
            .blocking_send(chunk)
            .map_err(|_| io::Error::from(io::ErrorKind::BrokenPipe))
    }
}

impl Write for ChannelWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= CHUNK {
            self.send()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.send()
    }
}

/// A `Read` over chunks an async task receives; end of input when the task drops its sender.
pub struct ChannelReader {
    rx: mpsc::Receiver<Bytes>,
    cur: Bytes,
}

impl ChannelReader {
    /// A reader draining `rx`.
    pub fn new(rx: mpsc::Receiver<Bytes>) -> ChannelReader {
        ChannelReader {
            rx,
            cur: Bytes::new(),
        }
    }
}

impl Read for ChannelReader {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        while self.cur.is_empty() {
            match self.rx.blocking_recv() {
                Some(b) => self.cur = b,
                None => return Ok(0),
            }
        }
        let n = out.len().min(self.cur.len());
        out[..n].copy_from_slice(&self.cur[..n]);
        let _ = self.cur.split_to(n);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::Value;
    use crate::sds::Sds;

    #[test]
    fn snapshot_round_trips_through_rdb() {
        let mut e = Entry::new(b"k", Value::Str(Sds::new(b"v")));
        e.expire_at = 1_900_000_000_000;
        let snap = Snapshot {
            dbs: vec![
                vec![e],
                vec![],
                vec![Entry::new(b"n", Value::Str(Sds::new(b"12345")))],
            ],
            replid: "a".repeat(40),
            offset: ReplOffset(77),
        };
        let bytes = write_rdb(&snap, Vec::new()).unwrap();
        let loaded = load_rdb(&bytes[..], 3).unwrap();
        assert_eq!(loaded.keys, 2);
        assert_eq!(&*loaded.dbs[0][0].key, b"k");
        assert_eq!(loaded.dbs[0][0].expire_at, 1_900_000_000_000);
        assert_eq!(&*loaded.dbs[2][0].key, b"n");
        assert!(load_rdb(&bytes[..bytes.len() - 3], 3).is_err(), "truncated");
    }
}
