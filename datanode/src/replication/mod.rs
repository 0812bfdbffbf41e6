//! Replication with Redis' own protocol (PSYNC, psync2), master and replica side.
//!
//! `Replication` is the node's replication state, held in `Shared`:
//! - the stream (`Stream`, one mutex): replication ids and offset, the circular `Backlog`, the
//!   database the stream last selected, and the output buffers of the replicas being fed. Every
//!   write is encoded and appended here by `feed` while the command still holds its shard locks,
//!   so for every key the stream order is the apply order (lock order: shards, then the stream);
//! - the replicas attached to this node (`ReplicaLink`: address, state, acknowledged offset),
//!   read by INFO, ROLE, WAIT and `min-replicas-to-write`;
//! - the link to our own master when this node is a replica (`replica` runs it).
//!
//! Modules: `backlog` (pure ring buffer), `rewrite` (pure: writes into absolute, deterministic
//! commands), `master` (serves one attached replica: full or partial sync, then the stream),
//! `replica` (the link task: handshake, snapshot load, stream apply, acks, reconnects),
//! `snapshot` (point-in-time RDB of the keyspace, produced and loaded off the async threads).
//!
//! Invariants: a master feeds only once it has a backlog (created, as in Redis, when the first
//! replica attaches), so a node without replicas pays one atomic load per write; a replica never
//! feeds its own commands: its backlog and its sub-replicas receive the master's bytes verbatim,
//! so offsets agree along a chain; each replica's output buffer is bounded by
//! `client-output-buffer-limit replica` (at the limit the replica is cut and resyncs later).

pub mod backlog;
pub mod master;
pub mod replica;
pub mod rewrite;
pub mod snapshot;

use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use vigil_proto::resp::Frame;

use crate::config::{Config, OutputLimit};
pub use backlog::Backlog;

/// A position in the replication stream: the number of stream bytes produced (or applied).
#[derive(Clone, Copy, Debug, Default, Eq, Hash, Ord, PartialEq, PartialOrd)]
pub struct ReplOffset(pub u64);

/// Errors of a replication link or of serving a replica.
#[derive(Debug, thiserror::Error)]
pub enum ReplicationError {
    /// The peer closed the connection.
    #[error("connection closed by the peer")]
    Closed,
    /// Nothing arrived for `repl-timeout`.
    #[error("timeout: nothing received for {0:?}")]
    Timeout(Duration),
    /// The master answered the handshake with something unexpected.
    #[error("unexpected handshake reply to {step}: {reply}")]
    Handshake {
        /// The handshake step.
        step: &'static str,
        /// What came back.
        reply: String,
    },
    /// The master sent bytes that are not RESP or not a valid snapshot.
    #[error("protocol error from the master: {0}")]
    Protocol(String),
    /// The snapshot could not be loaded.
    #[error("snapshot: {0}")]
    Snapshot(String),
    /// The replica's output buffer passed `client-output-buffer-limit replica`.
    #[error("replica output buffer over its limit")]
    OutputLimit,
    /// The link was replaced or the node is shutting down.
    #[error("link cancelled")]
    Cancelled,
    /// A socket or file error.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// A second consumer of the write stream (persistence: the append-only file). `feed` calls it
/// for every command, with its database (`None` for MULTI/EXEC/PING and the like), while the
/// stream lock and the command's shards are held, so it must only buffer, never block on I/O.
pub trait StreamSink: Send + Sync {
    /// One command as fed.
    fn command(&self, db: Option<usize>, args: &[Bytes]);
}

/// The outcome of a `PSYNC` request, decided by `decide_psync`.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub enum PsyncDecision {
    /// Serve the stream from this byte on (`+CONTINUE`).
    Continue {
        /// First stream byte the replica lacks.
        from: ReplOffset,
    },
    /// A full resynchronization is needed, for this reason.
    Full(&'static str),
}

/// Redis' `masterTryPartialResynchronization` rule: the replica's id must be our current one, or
/// our previous one as long as it asks for no byte past the point where that history ended
/// (`second_offset`, psync2); and the bytes it lacks must still be in the backlog.
pub fn decide_psync(
    ids: &ReplIds,
    backlog: Option<&Backlog>,
    req_id: &str,
    req_offset: i64,
) -> PsyncDecision {
    if req_id == "?" || req_offset < 0 {
        return PsyncDecision::Full("replica asked for a full sync");
    }
    let from = req_offset as u64;
    let same = req_id.eq_ignore_ascii_case(&ids.replid);
    let previous = req_id.eq_ignore_ascii_case(&ids.replid2)
        && ids.second_offset >= 0
        && from <= ids.second_offset as u64;
    if !same && !previous {
        return PsyncDecision::Full("replication id mismatch");
    }
    let Some(b) = backlog else {
        return PsyncDecision::Full("no backlog");
    };
    if from < b.first_offset().0 || from > b.next_offset().0 {
        return PsyncDecision::Full("offset outside the backlog");
    }
    PsyncDecision::Continue {
        from: ReplOffset(from),
    }
}

/// The two replication ids of psync2.
#[derive(Clone, Debug, Eq, PartialEq)]
pub struct ReplIds {
    /// Current id (`master_replid`).
    pub replid: String,
    /// Previous id (`master_replid2`), all zeros when none.
    pub replid2: String,
    /// First byte not covered by `replid2` (`second_repl_offset`), -1 when none.
    pub second_offset: i64,
}

/// A fresh random 40-hex-digit replication id.
pub fn new_replid() -> String {
    use rand::Rng;
    let mut rng = rand::rng();
    (0..40)
        .map(|_| char::from_digit(rng.random_range(0..16), 16).unwrap_or('0'))
        .collect()
}

const NO_ID: &str = "0000000000000000000000000000000000000000";

/// The replication stream state; see the module docs.
pub struct Stream {
    /// Replication ids.
    pub ids: ReplIds,
    /// Bytes of stream produced (master) or applied (replica): `master_repl_offset`.
    pub offset: u64,
    /// The backlog, once created.
    pub backlog: Option<Backlog>,
    /// `repl-backlog-size`.
    backlog_size: usize,
    /// Database the stream last selected; `None` forces a `SELECT` before the next write.
    seldb: Option<usize>,
    /// Replicas receiving the stream.
    slots: Vec<Arc<ReplicaLink>>,
    /// Encoding scratch space, reused.
    scratch: BytesMut,
    /// `client-output-buffer-limit replica`.
    limit: OutputLimit,
    /// Persistence (added by the persistence work): the append-only file, handed every fed
    /// command in stream order (see `StreamSink`).
    sink: Option<Arc<dyn StreamSink>>,
}

impl Stream {
    /// Creates the backlog if there is none, starting at the current offset.
    pub fn ensure_backlog(&mut self) {
        if self.backlog.is_none() {
            self.backlog = Some(Backlog::new(self.backlog_size, ReplOffset(self.offset + 1)));
        }
    }

    /// Starts replicas from here with a `SELECT` (after a full sync they start in db 0).
    pub fn force_select(&mut self) {
        self.seldb = None;
    }

    /// Starts feeding `link`: its output buffer receives every byte after the current offset.
    pub fn attach(&mut self, link: &Arc<ReplicaLink>) {
        if !self.slots.iter().any(|l| Arc::ptr_eq(l, link)) {
            self.slots.push(link.clone());
        }
    }

    /// Appends `bytes` to the backlog and to every attached replica's buffer.
    fn push(&mut self, bytes: &[u8]) {
        self.offset += bytes.len() as u64;
        if let Some(b) = &mut self.backlog {
            b.append(bytes);
        }
        let limit = self.limit;
        for link in &self.slots {
            link.out.push(bytes, limit);
        }
    }
}

/// The output buffer of one replica: filled by writers under the stream lock, drained by the
/// replica's task.
#[derive(Default)]
pub struct ReplicaOut {
    buf: Mutex<OutBuf>,
    /// Fired when bytes arrive or the buffer is cut.
    pub notify: Notify,
    /// Cancelled when the buffer passed its limit.
    pub cut: CancellationToken,
}

#[derive(Default)]
struct OutBuf {
    data: BytesMut,
    soft_since: Option<Instant>,
}

impl ReplicaOut {
    fn lock(&self) -> MutexGuard<'_, OutBuf> {
        self.buf
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Queues `bytes`; past the hard limit, or the soft limit for too long, the buffer is dropped
    /// and `cut` fires (the replica resyncs when it comes back).
    fn push(&self, bytes: &[u8], limit: OutputLimit) {
        if self.cut.is_cancelled() {
            return;
        }
        let mut b = self.lock();
        let was_empty = b.data.is_empty();
        b.data.extend_from_slice(bytes);
        let len = b.data.len();
        let over_soft = limit.soft != 0 && len > limit.soft;
        if !over_soft {
            b.soft_since = None;
        }
        let since = if over_soft {
            *b.soft_since.get_or_insert_with(Instant::now)
        } else {
            Instant::now()
        };
        if (limit.hard != 0 && len > limit.hard)
            || (over_soft && since.elapsed() > limit.soft_seconds)
        {
            b.data = BytesMut::new();
            drop(b);
            self.cut.cancel();
            self.notify.notify_one();
            return;
        }
        drop(b);
        if was_empty {
            self.notify.notify_one();
        }
    }

    /// Replaces the buffer's content (the backlog tail of a partial resync).
    pub fn set(&self, data: BytesMut) {
        self.lock().data = data;
    }

    /// Takes everything queued.
    pub fn take(&self) -> BytesMut {
        std::mem::take(&mut self.lock().data)
    }

    /// Bytes queued.
    pub fn len(&self) -> usize {
        self.lock().data.len()
    }

    /// True when nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Where an attached replica is in its synchronization.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
#[repr(u8)]
pub enum ReplicaState {
    /// Waiting for its snapshot to start.
    WaitBgsave = 0,
    /// Receiving its snapshot.
    SendBulk = 1,
    /// Receiving the stream.
    Online = 2,
}

/// One replica attached to this node.
pub struct ReplicaLink {
    /// Its client id.
    pub client_id: u64,
    /// Its address as announced (`REPLCONF ip-address`) or seen.
    pub ip: String,
    /// Its listening port (`REPLCONF listening-port`).
    pub port: u16,
    state: AtomicU8,
    /// Offset it acknowledged last (`REPLCONF ACK`).
    pub ack_offset: AtomicU64,
    /// Milliseconds since `epoch` of its last ACK.
    last_ack_ms: AtomicU64,
    epoch: Instant,
    /// Its output buffer.
    pub out: ReplicaOut,
}

impl ReplicaLink {
    /// A replica in `WaitBgsave`.
    pub fn new(client_id: u64, ip: String, port: u16) -> ReplicaLink {
        ReplicaLink {
            client_id,
            ip,
            port,
            state: AtomicU8::new(ReplicaState::WaitBgsave as u8),
            ack_offset: AtomicU64::new(0),
            last_ack_ms: AtomicU64::new(0),
            epoch: Instant::now(),
            out: ReplicaOut::default(),
        }
    }

    /// Its state.
    pub fn state(&self) -> ReplicaState {
        match self.state.load(Ordering::Acquire) {
            0 => ReplicaState::WaitBgsave,
            1 => ReplicaState::SendBulk,
            _ => ReplicaState::Online,
        }
    }

    /// Moves it to `state`.
    pub fn set_state(&self, state: ReplicaState) {
        self.state.store(state as u8, Ordering::Release);
        if state == ReplicaState::Online {
            self.touch();
        }
    }

    /// Records that it was heard from now.
    pub fn touch(&self) {
        self.last_ack_ms
            .store(self.epoch.elapsed().as_millis() as u64, Ordering::Release);
    }

    /// Time since it was last heard from.
    pub fn since_ack(&self) -> Duration {
        let last = Duration::from_millis(self.last_ack_ms.load(Ordering::Acquire));
        self.epoch.elapsed().saturating_sub(last)
    }
}

/// Counters for INFO stats.
#[derive(Debug, Default)]
pub struct ReplStats {
    /// Full resynchronizations served (`sync_full`).
    pub sync_full: AtomicU64,
    /// Partial resynchronizations accepted (`sync_partial_ok`).
    pub sync_partial_ok: AtomicU64,
    /// Partial resynchronizations refused (`sync_partial_err`).
    pub sync_partial_err: AtomicU64,
}

/// The replica side: who our master is and how the link is doing.
#[derive(Clone, Debug, Default)]
pub struct MasterLink {
    /// Master host.
    pub host: String,
    /// Master port.
    pub port: u16,
    /// `connect`, `connecting`, `handshake`, `sync` or `connected` (ROLE's words).
    pub state: &'static str,
    /// When the link went down (or was configured); `None` while up.
    pub down_since: Option<Instant>,
    /// Last time anything arrived from the master.
    pub last_io: Option<Instant>,
    /// Cancels the link task.
    pub cancel: CancellationToken,
}

/// The node's replication state; see the module docs.
pub struct Replication {
    /// True when writes must be fed: this node is a master and has a backlog.
    feeding: AtomicBool,
    /// True while a `StreamSink` is installed (persistence: the append-only file).
    sink_on: AtomicBool,
    /// True while this node is a replica.
    replica: AtomicBool,
    stream: Mutex<Stream>,
    /// Every attached replica, whatever its state.
    replicas: Mutex<Vec<Arc<ReplicaLink>>>,
    /// The link to our master, when a replica.
    link: Mutex<Option<MasterLink>>,
    /// Counters.
    pub stats: ReplStats,
    /// WAIT callers to wake on each ACK.
    ack_waiters: Mutex<Vec<Arc<Notify>>>,
    /// `min-replicas-to-write`, mirrored for the write path.
    min_replicas: AtomicUsize,
    /// `min-replicas-max-lag` in seconds.
    min_lag: AtomicU64,
    /// Replica-side links created, so a stale link task knows it was replaced.
    pub link_epoch: AtomicU64,
    /// Held by a replica while it applies a batch from its master and feeds it on, and by
    /// `snapshot::take`, so a snapshot never holds a write whose bytes are not yet counted in
    /// the offset. Lock order: this, the gate, shards, the stream.
    apply: Mutex<()>,
}

impl Replication {
    /// A master with a fresh replication id and no backlog.
    pub fn new(config: &Config) -> Replication {
        let r = Replication {
            feeding: AtomicBool::new(false),
            sink_on: AtomicBool::new(false),
            replica: AtomicBool::new(false),
            stream: Mutex::new(Stream {
                ids: ReplIds {
                    replid: new_replid(),
                    replid2: NO_ID.into(),
                    second_offset: -1,
                },
                offset: 0,
                backlog: None,
                backlog_size: config.repl_backlog_size,
                seldb: None,
                slots: Vec::new(),
                scratch: BytesMut::new(),
                limit: config.output_replica,
                sink: None,
            }),
            replicas: Mutex::new(Vec::new()),
            link: Mutex::new(None),
            stats: ReplStats::default(),
            ack_waiters: Mutex::new(Vec::new()),
            min_replicas: AtomicUsize::new(0),
            min_lag: AtomicU64::new(10),
            link_epoch: AtomicU64::new(0),
            apply: Mutex::new(()),
        };
        r.configure(config);
        r
    }

    /// Applies the replication parameters of `config` (start-up and `CONFIG SET`).
    pub fn configure(&self, config: &Config) {
        self.min_replicas
            .store(config.min_replicas_to_write, Ordering::Relaxed);
        self.min_lag
            .store(config.min_replicas_max_lag.as_secs(), Ordering::Relaxed);
        let mut st = self.stream();
        st.backlog_size = config.repl_backlog_size;
        st.limit = config.output_replica;
        if let Some(b) = &mut st.backlog {
            b.resize(config.repl_backlog_size);
        }
    }

    /// Locks the stream (short sections only; never across `.await`).
    pub fn stream(&self) -> MutexGuard<'_, Stream> {
        self.stream
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Takes the apply lock (see the field).
    pub fn apply_lock(&self) -> MutexGuard<'_, ()> {
        self.apply
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Locks the list of attached replicas.
    pub fn replicas(&self) -> MutexGuard<'_, Vec<Arc<ReplicaLink>>> {
        self.replicas
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Locks the master link description.
    pub fn link(&self) -> MutexGuard<'_, Option<MasterLink>> {
        self.link
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// True when writes must be fed to the stream (one relaxed load: the no-replica hot path).
    #[inline]
    pub fn feeding(&self) -> bool {
        // Persistence: an installed sink (the append-only file) needs every write too.
        self.feeding.load(Ordering::Relaxed) || self.sink_on.load(Ordering::Relaxed)
    }

    /// Persistence hook: installs (or removes, with `None`) the consumer that `feed` hands every
    /// command to, under the stream lock and in stream order, whether or not replicas are fed.
    pub fn set_sink(&self, sink: Option<Arc<dyn StreamSink>>) {
        let mut st = self.stream();
        self.sink_on.store(sink.is_some(), Ordering::Relaxed);
        st.sink = sink;
    }

    /// True when a sink (the append-only file) is installed.
    pub fn sink_on(&self) -> bool {
        self.sink_on.load(Ordering::Relaxed)
    }

    /// Hands one command applied from our master's stream to the sink, if any (a replica's
    /// append-only file). The stream itself is not fed: the master's bytes are, verbatim.
    pub fn sink_command(&self, db: usize, args: &[Bytes]) {
        let st = self.stream();
        if let Some(sink) = &st.sink {
            sink.command(Some(db), args);
        }
    }

    /// True while this node replicates from a master.
    #[inline]
    pub fn is_replica(&self) -> bool {
        self.replica.load(Ordering::Relaxed)
    }

    /// Marks the node a master (feeding once it has a backlog) or a replica (never feeding).
    pub fn set_replica(&self, replica: bool) {
        self.replica.store(replica, Ordering::Relaxed);
        let st = self.stream();
        self.feeding
            .store(!replica && st.backlog.is_some(), Ordering::Relaxed);
    }

    /// Creates the backlog if needed and, on a master, starts feeding. Call with the stream lock
    /// held through `st`.
    pub fn start_backlog(&self, st: &mut Stream) {
        st.ensure_backlog();
        if !self.is_replica() {
            self.feeding.store(true, Ordering::Relaxed);
        }
    }

    /// Appends commands to the stream, each preceded by a `SELECT` when its database differs
    /// from the stream's; `None` as database means "any" (PING, MULTI, EXEC). Returns the offset
    /// after them. Call while the commands' shards are still locked.
    pub fn feed<'a>(
        &self,
        cmds: impl IntoIterator<Item = (Option<usize>, &'a [Bytes])>,
    ) -> ReplOffset {
        let mut st = self.stream();
        let mut scratch = std::mem::take(&mut st.scratch);
        scratch.clear();
        // Persistence: with only a sink installed, replicas are not fed and the offset stays.
        let repl = self.feeding.load(Ordering::Relaxed);
        for (db, args) in cmds {
            if let Some(sink) = &st.sink {
                sink.command(db, args);
            }
            if !repl {
                continue;
            }
            if let Some(db) = db {
                if st.seldb != Some(db) {
                    let n = itoa::Buffer::new().format(db).as_bytes().to_vec();
                    vigil_proto::resp::encode_command(&[&b"SELECT"[..], &n], &mut scratch);
                    st.seldb = Some(db);
                }
            }
            vigil_proto::resp::encode_command(args, &mut scratch);
        }
        if repl {
            st.push(&scratch);
        } else {
            // Nothing went out: the next fed write must select its database again.
            st.seldb = None;
        }
        st.scratch = scratch;
        ReplOffset(st.offset)
    }

    /// Appends bytes received from our master, verbatim (replica side).
    pub fn feed_raw(&self, bytes: &[u8]) -> ReplOffset {
        let mut st = self.stream();
        st.push(bytes);
        ReplOffset(st.offset)
    }

    /// The current offset.
    pub fn offset(&self) -> ReplOffset {
        ReplOffset(self.stream().offset)
    }

    /// Stops feeding `link` and forgets it.
    pub fn detach(&self, link: &Arc<ReplicaLink>) {
        self.stream().slots.retain(|l| !Arc::ptr_eq(l, link));
        self.replicas().retain(|l| !Arc::ptr_eq(l, link));
        self.wake_waiters();
    }

    /// Cuts every attached replica (after this node loaded a new dataset, their history is void).
    pub fn cut_replicas(&self) {
        for l in self.replicas().iter() {
            l.out.cut.cancel();
            l.out.notify.notify_one();
        }
    }

    /// Records an ACK from `link` and wakes WAIT callers.
    pub fn ack(&self, link: &ReplicaLink, offset: u64) {
        link.ack_offset.fetch_max(offset, Ordering::AcqRel);
        link.touch();
        self.wake_waiters();
    }

    fn wake_waiters(&self) {
        let waiters = self
            .ack_waiters
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for w in waiters.iter() {
            w.notify_one();
        }
    }

    /// Registers a WAIT caller to be woken on every ACK until `unwait`.
    pub fn wait_acks(&self, n: &Arc<Notify>) {
        let mut w = self
            .ack_waiters
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if !w.iter().any(|x| Arc::ptr_eq(x, n)) {
            w.push(n.clone());
        }
    }

    /// Forgets a WAIT caller.
    pub fn unwait(&self, n: &Arc<Notify>) {
        self.ack_waiters
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .retain(|x| !Arc::ptr_eq(x, n));
    }

    /// Online replicas that acknowledged `offset` or more.
    pub fn acked(&self, offset: u64) -> usize {
        self.replicas()
            .iter()
            .filter(|l| {
                l.state() == ReplicaState::Online && l.ack_offset.load(Ordering::Acquire) >= offset
            })
            .count()
    }

    /// Asks every replica for an ACK (`REPLCONF GETACK *` in the stream).
    pub fn request_acks(&self) {
        if self.feeding() {
            let args = [
                Bytes::from_static(b"REPLCONF"),
                Bytes::from_static(b"GETACK"),
                Bytes::from_static(b"*"),
            ];
            self.feed([(None, &args[..])]);
        }
    }

    /// Online replicas heard from within `min-replicas-max-lag` (`min_slaves_good_slaves`).
    pub fn good_replicas(&self) -> usize {
        let lag = Duration::from_secs(self.min_lag.load(Ordering::Relaxed));
        self.replicas()
            .iter()
            .filter(|l| l.state() == ReplicaState::Online && l.since_ack() <= lag)
            .count()
    }

    /// The `-NOREPLICAS` refusal, when `min-replicas-to-write` is not met on a master.
    pub fn refuse_write(&self) -> Option<Frame> {
        let min = self.min_replicas.load(Ordering::Relaxed);
        if min == 0 || self.is_replica() || self.good_replicas() >= min {
            return None;
        }
        Some(Frame::error_static(
            "NOREPLICAS Not enough good replicas to write.",
        ))
    }

    /// Once a second: pings replicas (into the stream, as Redis does every
    /// `repl-ping-replica-period`) so they can tell a live master from a dead one.
    pub fn cron(&self, tick: u64, ping_period: Duration) {
        let every = ping_period.as_secs().max(1);
        if tick % every == 0 && self.feeding() && !self.replicas().is_empty() {
            let args = [Bytes::from_static(b"PING")];
            self.feed([(None, &args[..])]);
        }
    }

    /// Promotion (`REPLICAOF NO ONE`) and psync2: the current id becomes the previous one, valid
    /// up to the current offset, and a new id starts. Replicas of ours that follow still
    /// resynchronize partially.
    pub fn shift_ids(&self) {
        let mut st = self.stream();
        st.ids.replid2 = std::mem::replace(&mut st.ids.replid, new_replid());
        st.ids.second_offset = st.offset as i64 + 1;
        st.seldb = None;
    }

    /// `INFO replication`.
    pub fn render_info(&self, config: &Config, o: &mut String) -> std::fmt::Result {
        writeln!(o, "# Replication\r")?;
        let link = self.link().clone();
        let st_offset = self.offset().0;
        match &link {
            Some(l) if self.is_replica() => {
                writeln!(o, "role:slave\r")?;
                writeln!(o, "master_host:{}\r", l.host)?;
                writeln!(o, "master_port:{}\r", l.port)?;
                let up = l.state == "connected";
                writeln!(o, "master_link_status:{}\r", if up { "up" } else { "down" })?;
                let io = l.last_io.map_or(-1, |t| t.elapsed().as_secs() as i64);
                writeln!(o, "master_last_io_seconds_ago:{io}\r")?;
                writeln!(
                    o,
                    "master_sync_in_progress:{}\r",
                    u8::from(l.state == "sync")
                )?;
                writeln!(o, "slave_read_repl_offset:{st_offset}\r")?;
                writeln!(o, "slave_repl_offset:{st_offset}\r")?;
                if let (false, Some(t)) = (up, l.down_since) {
                    writeln!(
                        o,
                        "master_link_down_since_seconds:{}\r",
                        t.elapsed().as_secs()
                    )?;
                }
                writeln!(o, "slave_priority:{}\r", config.replica_priority)?;
                writeln!(
                    o,
                    "slave_read_only:{}\r",
                    u8::from(config.replica_read_only)
                )?;
                writeln!(o, "replica_announced:1\r")?;
            }
            _ => writeln!(o, "role:master\r")?,
        }
        let replicas = self.replicas().clone();
        writeln!(o, "connected_slaves:{}\r", replicas.len())?;
        if config.min_replicas_to_write > 0 && !self.is_replica() {
            writeln!(o, "min_slaves_good_slaves:{}\r", self.good_replicas())?;
        }
        for (i, l) in replicas.iter().enumerate() {
            let state = match l.state() {
                ReplicaState::WaitBgsave => "wait_bgsave",
                ReplicaState::SendBulk => "send_bulk",
                ReplicaState::Online => "online",
            };
            writeln!(
                o,
                "slave{i}:ip={},port={},state={state},offset={},lag={}\r",
                l.ip,
                l.port,
                l.ack_offset.load(Ordering::Acquire),
                l.since_ack().as_secs()
            )?;
        }
        writeln!(o, "master_failover_state:no-failover\r")?;
        let st = self.stream();
        writeln!(o, "master_replid:{}\r", st.ids.replid)?;
        writeln!(o, "master_replid2:{}\r", st.ids.replid2)?;
        writeln!(o, "master_repl_offset:{}\r", st.offset)?;
        writeln!(o, "second_repl_offset:{}\r", st.ids.second_offset)?;
        let (active, first, hist) = st
            .backlog
            .as_ref()
            .map_or((0, 0, 0), |b| (1, b.first_offset().0, b.histlen()));
        writeln!(o, "repl_backlog_active:{active}\r")?;
        writeln!(o, "repl_backlog_size:{}\r", st.backlog_size)?;
        writeln!(o, "repl_backlog_first_byte_offset:{first}\r")?;
        writeln!(o, "repl_backlog_histlen:{hist}\r")
    }

    /// `ROLE`, in Redis' exact shapes.
    pub fn role(&self) -> Frame {
        let offset = self.offset().0 as i64;
        if self.is_replica() {
            if let Some(l) = self.link().clone() {
                let off = if l.state == "connected" { offset } else { -1 };
                return Frame::Array(vec![
                    Frame::bulk_static("slave"),
                    Frame::bulk(l.host.as_bytes()),
                    Frame::Integer(i64::from(l.port)),
                    Frame::bulk(l.state.as_bytes()),
                    Frame::Integer(off),
                ]);
            }
        }
        let replicas = self
            .replicas()
            .iter()
            .filter(|l| l.state() == ReplicaState::Online)
            .map(|l| {
                Frame::Array(vec![
                    Frame::bulk(l.ip.as_bytes()),
                    Frame::bulk(l.port.to_string().as_bytes()),
                    Frame::bulk(l.ack_offset.load(Ordering::Acquire).to_string().as_bytes()),
                ])
            })
            .collect();
        Frame::Array(vec![
            Frame::bulk_static("master"),
            Frame::Integer(offset),
            Frame::Array(replicas),
        ])
    }
}

/// What a replica asked for when it sent `PSYNC` or `SYNC`, plus what it said in `REPLCONF`.
#[derive(Clone, Debug, Default)]
pub struct SyncRequest {
    /// `PSYNC replid offset`; `None` for the old `SYNC`.
    pub psync: Option<(String, i64)>,
    /// `REPLCONF listening-port`.
    pub port: u16,
    /// `REPLCONF ip-address`.
    pub ip: Option<String>,
    /// `REPLCONF capa eof`: it takes a diskless `$EOF:` snapshot.
    pub capa_eof: bool,
    /// `REPLCONF capa psync2`: it understands `+CONTINUE <new id>`.
    pub capa_psync2: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids() -> ReplIds {
        ReplIds {
            replid: "a".repeat(40),
            replid2: "b".repeat(40),
            second_offset: 101,
        }
    }

    #[test]
    fn psync_continues_only_with_a_known_id_and_a_servable_offset() {
        let mut backlog = Backlog::new(100, ReplOffset(51));
        backlog.append(&[0; 100]);
        // The backlog holds bytes 51..=150; offset 151 is "nothing missing".
        let a = "a".repeat(40);
        let b = "b".repeat(40);
        let cont = |n| PsyncDecision::Continue {
            from: ReplOffset(n),
        };
        let table: &[(&str, i64, bool, PsyncDecision)] = &[
            (
                "?",
                -1,
                true,
                PsyncDecision::Full("replica asked for a full sync"),
            ),
            (&a, 51, true, cont(51)),
            (&a, 151, true, cont(151)),
            (
                &a,
                152,
                true,
                PsyncDecision::Full("offset outside the backlog"),
            ),
            (
                &a,
                50,
                true,
                PsyncDecision::Full("offset outside the backlog"),
            ),
            (&a, 100, false, PsyncDecision::Full("no backlog")),
            (&b, 101, true, cont(101)),
            (
                &b,
                102,
                true,
                PsyncDecision::Full("replication id mismatch"),
            ),
            (
                &"c".repeat(40),
                100,
                true,
                PsyncDecision::Full("replication id mismatch"),
            ),
        ];
        for (id, off, with_backlog, want) in table {
            let got = decide_psync(&ids(), with_backlog.then_some(&backlog), id, *off);
            assert_eq!(got, *want, "{id} {off} {with_backlog}");
        }
    }

    #[test]
    fn feed_selects_databases_and_cuts_a_replica_at_its_hard_limit() {
        let cfg = Config {
            output_replica: OutputLimit {
                hard: 64,
                soft: 0,
                soft_seconds: Duration::ZERO,
            },
            ..Config::default()
        };
        let r = Replication::new(&cfg);
        let link = Arc::new(ReplicaLink::new(1, "127.0.0.1".into(), 1));
        {
            let mut st = r.stream();
            r.start_backlog(&mut st);
            st.attach(&link);
        }
        assert!(r.feeding());
        let set = [
            Bytes::from_static(b"SET"),
            Bytes::from_static(b"k"),
            Bytes::from_static(b"v"),
        ];
        let off = r.feed([(Some(0), &set[..])]);
        let want = b"*2\r\n$6\r\nSELECT\r\n$1\r\n0\r\n*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n";
        assert_eq!(off, ReplOffset(want.len() as u64));
        assert_eq!(&link.out.take()[..], &want[..]);
        r.feed([(Some(0), &set[..])]);
        assert_eq!(link.out.len(), 27, "same database: no SELECT");
        assert!(!link.out.cut.is_cancelled());
        r.feed([(Some(0), &set[..]), (Some(0), &set[..])]);
        assert!(link.out.cut.is_cancelled(), "81 bytes queued > 64");
        assert!(link.out.is_empty());
        let mut tail = BytesMut::new();
        assert!(
            r.stream()
                .backlog
                .as_ref()
                .expect("backlog")
                .copy_from(ReplOffset(1), &mut tail)
        );
        assert_eq!(
            tail.len() as u64,
            r.offset().0,
            "the backlog keeps everything"
        );
    }
}
