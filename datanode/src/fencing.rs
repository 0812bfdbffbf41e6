//! Write fencing: the node clock, write leases granted by sentinels, and the `-NOLEASE` refusal.
//!
//! A sentinel reads this node's monotonic clock (`VIGIL CLOCK`), then grants a lease starting at
//! that reading (`VIGIL LEASE`). Because the start is a time this node produced before the grant
//! was sent, a delayed or replayed grant can never make a lease last longer than `ttl` after
//! the sentinel decided to grant it. While fencing is active, a master accepts client writes only
//! while leases from at least the required majority of sentinels are unexpired.
//!
//! A leader about to promote another node revokes the leases (`VIGIL REVOKE`): the table drops
//! every lease and remembers the node time of the revocation, and from then on refuses any grant
//! whose start is not later. A grant sent before the revocation carries a clock reading this node
//! produced before it processed the revocation, so however late it arrives it never counts; only
//! grants built on a later clock reading do, and the sentinels that voted for the leader send
//! none until a new config settles the term.
//!
//! `LeaseTable` is pure (the caller passes the time), so its rules are unit tested without
//! sleeping; `Fencing` wraps it with the clock and the flags the command hot path reads.
//!
//! Invariants: a lease never gets shorter, except that a revocation ends them all; no grant
//! starting at or before the latest revocation is stored; the table holds at most
//! `MAX_SENTINELS` entries; a grant naming another run id (a previous incarnation of this node)
//! stores nothing; nothing here knows what a sentinel is beyond its number and its grants.

use std::collections::BTreeMap;
use std::num::NonZeroU8;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tracing::{debug, info, warn};
use vigil_proto::resp::Frame;

/// The exact refusal a fenced master gives to a write.
pub const NOLEASE: &str =
    "NOLEASE this master holds no valid write lease from a majority of its sentinels";

/// Most sentinels whose leases the table keeps; a grant from one more is refused unless an
/// expired entry can be evicted to make room.
pub const MAX_SENTINELS: usize = 64;

/// Longest lease a sentinel may grant.
pub const MAX_TTL: Duration = Duration::from_secs(60);

/// Length of the run-id prefix a grant must carry.
pub const RUN_ID_PREFIX_LEN: usize = 16;

/// When writes are fenced (`write-fencing`).
#[derive(Clone, Copy, Debug, Default, Eq, PartialEq)]
pub enum WriteFencing {
    /// Never fence.
    Off,
    /// Fence from the first accepted lease until the process exits.
    #[default]
    Auto,
    /// Fence from start: writes are refused until a lease majority is held.
    On,
}

impl WriteFencing {
    /// Parses `off`, `auto` or `on` (any case).
    pub fn parse(s: &str) -> Option<WriteFencing> {
        match s.to_ascii_lowercase().as_str() {
            "off" => Some(WriteFencing::Off),
            "auto" => Some(WriteFencing::Auto),
            "on" => Some(WriteFencing::On),
            _ => None,
        }
    }

    /// The configuration spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            WriteFencing::Off => "off",
            WriteFencing::Auto => "auto",
            WriteFencing::On => "on",
        }
    }

    fn from_u8(v: u8) -> WriteFencing {
        match v {
            0 => WriteFencing::Off,
            2 => WriteFencing::On,
            _ => WriteFencing::Auto,
        }
    }

    fn to_u8(self) -> u8 {
        match self {
            WriteFencing::Off => 0,
            WriteFencing::Auto => 1,
            WriteFencing::On => 2,
        }
    }
}

/// A reading of this node's monotonic clock: microseconds since the node started.
#[derive(Clone, Copy, Debug, Eq, Ord, PartialEq, PartialOrd)]
pub struct NodeTime(pub u64);

impl NodeTime {
    /// This time plus `d`, saturating (a lease ending past the clock's range never ends).
    pub fn saturating_add(self, d: Duration) -> NodeTime {
        let us = u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
        NodeTime(self.0.saturating_add(us))
    }

    /// How long from `earlier` to this time; zero if `earlier` is later.
    pub fn since(self, earlier: NodeTime) -> Duration {
        Duration::from_micros(self.0.saturating_sub(earlier.0))
    }
}

/// A sentinel's number, as it names itself in `VIGIL LEASE`.
#[derive(Clone, Copy, Debug, Eq, Hash, Ord, PartialEq, PartialOrd)]
pub struct SentinelId(pub u32);

/// One `VIGIL LEASE` request, parsed.
#[derive(Clone, Debug, Eq, PartialEq)]
pub struct Grant {
    /// The granting sentinel.
    pub sentinel: SentinelId,
    /// Start of the lease, a reading of this node's clock.
    pub start: NodeTime,
    /// Length of the lease, 1 ms ..= `MAX_TTL`.
    pub ttl: Duration,
    /// How many unexpired leases the master needs to write.
    pub majority: NonZeroU8,
    /// The first `RUN_ID_PREFIX_LEN` characters of the run id the sentinel means, lower case.
    pub run_id_prefix: String,
    /// The epoch of the sentinel's voter set (0 when the grant named none): only the leases of
    /// the newest epoch among the unexpired ones count.
    pub members: u64,
}

impl Grant {
    /// Parses the arguments after `VIGIL LEASE`: `<sentinel-id> <start-us> <ttl-ms> <majority>
    /// <run-id-prefix> [<members-epoch>]`.
    pub fn parse(args: &[Bytes]) -> Result<Grant, LeaseError> {
        let (id, start, ttl, majority, prefix, members) = match args {
            [id, start, ttl, majority, prefix] => (id, start, ttl, majority, prefix, None),
            [id, start, ttl, majority, prefix, members] => {
                (id, start, ttl, majority, prefix, Some(members))
            }
            _ => return Err(LeaseError::Arity(args.len())),
        };
        let members = match members {
            None => 0,
            Some(m) => digits(m)
                .and_then(|s| s.parse::<u64>().ok())
                .ok_or_else(|| LeaseError::Members(shown(m)))?,
        };
        let sentinel = digits(id)
            .and_then(|s| s.parse::<u32>().ok())
            .map(SentinelId)
            .ok_or_else(|| LeaseError::SentinelId(shown(id)))?;
        let start = digits(start)
            .and_then(|s| s.parse::<u64>().ok())
            .map(NodeTime)
            .ok_or_else(|| LeaseError::Start(shown(start)))?;
        let ttl_ms = digits(ttl)
            .and_then(|s| s.parse::<u64>().ok())
            .filter(|ms| (1..=MAX_TTL.as_millis() as u64).contains(ms))
            .ok_or_else(|| LeaseError::Ttl(shown(ttl)))?;
        let majority = digits(majority)
            .and_then(|s| s.parse::<u8>().ok())
            .and_then(NonZeroU8::new)
            .ok_or_else(|| LeaseError::Majority(shown(majority)))?;
        if prefix.len() != RUN_ID_PREFIX_LEN || !prefix.iter().all(u8::is_ascii_hexdigit) {
            return Err(LeaseError::RunIdPrefix(shown(prefix)));
        }
        Ok(Grant {
            sentinel,
            start,
            ttl: Duration::from_millis(ttl_ms),
            majority,
            run_id_prefix: String::from_utf8_lossy(prefix).to_ascii_lowercase(),
            members,
        })
    }
}

/// Why a `VIGIL LEASE` was refused. Each refusal stores nothing.
#[derive(Clone, Debug, Eq, PartialEq, thiserror::Error)]
pub enum LeaseError {
    /// Not five or six arguments after `LEASE` (the count is what came).
    #[error("wrong number of arguments for 'vigil|lease' command: expected 5 or 6, got {0}")]
    Arity(usize),
    /// The members epoch is not a decimal u64.
    #[error("invalid members-epoch '{0}': expected an integer in 0..=18446744073709551615")]
    Members(String),
    /// The sentinel id is not a decimal u32.
    #[error("invalid sentinel-id '{0}': expected an integer in 0..=4294967295")]
    SentinelId(String),
    /// The start is not a decimal u64.
    #[error("invalid start-us '{0}': expected a reading of VIGIL CLOCK")]
    Start(String),
    /// The ttl is not a decimal in 1..=60000.
    #[error("invalid ttl-ms '{0}': expected an integer in 1..=60000")]
    Ttl(String),
    /// The majority is not a decimal in 1..=255.
    #[error("invalid majority '{0}': expected an integer in 1..=255")]
    Majority(String),
    /// The run-id prefix is not 16 hex characters.
    #[error("invalid run-id-prefix '{0}': expected the first 16 hex characters of run_id")]
    RunIdPrefix(String),
    /// The grant is for another run of this node (it restarted since the sentinel looked).
    #[error("lease for another run id")]
    OtherRunId,
    /// The start is later than this node's clock now: not a reading this node produced.
    #[error("invalid start-us {start}: ahead of this node's clock ({now})")]
    FutureStart {
        /// The start the grant named.
        start: u64,
        /// The node clock when the grant arrived.
        now: u64,
    },
    /// `MAX_SENTINELS` other sentinels hold unexpired leases.
    #[error("lease table full: {0} sentinels hold unexpired leases")]
    TableFull(usize),
    /// The start is not later than the latest `VIGIL REVOKE`: the grant may have been sent
    /// before the revocation, so it must never count.
    #[error("invalid start-us {start}: leases were revoked at {revoked_at}")]
    Revoked {
        /// The start the grant named.
        start: u64,
        /// The node clock when the leases were last revoked.
        revoked_at: u64,
    },
}

/// Leases by sentinel with the membership epoch of each, and the majority the latest grant of
/// each epoch asked for. Pure: every method takes the current node time.
///
/// Only the unexpired leases of the newest epoch any grant named count: a sentinel removed from
/// the voter set may not know it yet, and its leases must not make a majority with the current
/// voters' (the sentinels commit a new set only once the leases granted under the old one by
/// the voters that decided it have expired); nor may a sentinel that lost its state and founded
/// a cluster of one anew.
#[derive(Clone, Debug)]
pub struct LeaseTable {
    /// The run-id prefix grants must carry (this incarnation's), lower case.
    run_id_prefix: String,
    /// End of each sentinel's lease and the newest epoch it granted under; a lease is valid
    /// while `now < end`.
    ends: BTreeMap<SentinelId, (NodeTime, u64)>,
    /// The majority of the latest accepted grant of each epoch (the newest `MAX_EPOCHS`).
    majorities: BTreeMap<u64, NonZeroU8>,
    /// The majority of the latest accepted grant of the newest epoch; `None` before the first.
    majority: Option<NonZeroU8>,
    /// The newest membership epoch any accepted grant named: leases of an older epoch never
    /// count again (a sentinel that lost its state and founded a cluster anew starts at 1).
    newest: u64,
    /// Node time of the latest revocation; grants starting at or before it are refused.
    revoked_at: Option<NodeTime>,
}

impl LeaseTable {
    /// An empty table for the node whose run id is `run_id`.
    pub fn new(run_id: &str) -> LeaseTable {
        let prefix: String = run_id.chars().take(RUN_ID_PREFIX_LEN).collect();
        LeaseTable {
            run_id_prefix: prefix.to_ascii_lowercase(),
            ends: BTreeMap::new(),
            majorities: BTreeMap::new(),
            majority: None,
            newest: 0,
            revoked_at: None,
        }
    }

    /// Records `g` at node time `now`. A lease from the same sentinel is replaced only if the
    /// new one ends later; the required majority becomes `g`'s either way.
    pub fn grant(&mut self, now: NodeTime, g: &Grant) -> Result<(), LeaseError> {
        if g.run_id_prefix != self.run_id_prefix {
            return Err(LeaseError::OtherRunId);
        }
        if g.start > now {
            return Err(LeaseError::FutureStart {
                start: g.start.0,
                now: now.0,
            });
        }
        // A start equal to the revocation may be a reading taken in the same microsecond,
        // before it: refused too.
        if let Some(at) = self.revoked_at.filter(|at| g.start <= *at) {
            return Err(LeaseError::Revoked {
                start: g.start.0,
                revoked_at: at.0,
            });
        }
        if !self.ends.contains_key(&g.sentinel) && self.ends.len() >= MAX_SENTINELS {
            // Room is made only from leases that can no longer count.
            self.ends.retain(|_, (end, _)| now < *end);
            if self.ends.len() >= MAX_SENTINELS {
                return Err(LeaseError::TableFull(self.ends.len()));
            }
        }
        let end = g.start.saturating_add(g.ttl);
        let slot = self.ends.entry(g.sentinel).or_insert((end, g.members));
        // Never shorten: a late or reordered grant must not cut a lease another one extended.
        slot.0 = slot.0.max(end);
        slot.1 = slot.1.max(g.members);
        self.newest = self.newest.max(g.members);
        self.majorities.insert(g.members, g.majority);
        while self.majorities.len() > MAX_EPOCHS {
            self.majorities.pop_first();
        }
        if self.majorities.last_key_value().map(|(e, _)| *e) == Some(g.members) {
            self.majority = Some(g.majority);
        }
        Ok(())
    }

    /// Drops every lease and refuses, from now on, every grant that starts at or before `now`.
    /// The required majority is kept: the next grants restore the same rule.
    pub fn revoke(&mut self, now: NodeTime) {
        self.ends.clear();
        // The clock never goes back, but a caller passing an older time must not undo a
        // later revocation.
        self.revoked_at = Some(self.revoked_at.map_or(now, |at| at.max(now)));
    }

    /// Number of sentinels whose lease is unexpired at `now`.
    pub fn valid(&self, now: NodeTime) -> usize {
        self.ends.values().filter(|(end, _)| now < *end).count()
    }

    /// The newest membership epoch any grant named, and how many unexpired leases are of it:
    /// the leases that count.
    pub fn counted(&self, now: NodeTime) -> Option<(u64, usize)> {
        let valid = self
            .ends
            .values()
            .filter(|(end, e)| now < *end && *e == self.newest)
            .count();
        self.majority.map(|_| (self.newest, valid))
    }

    /// The majority of the latest accepted grant of the newest epoch, if any.
    pub fn majority(&self) -> Option<NonZeroU8> {
        self.majority
    }

    /// True when the unexpired leases of the newest epoch among them reach the majority its
    /// latest grant asked for. Before any grant there is no majority to hold.
    pub fn holds_majority(&self, now: NodeTime) -> bool {
        let Some((epoch, count)) = self.counted(now) else {
            return false;
        };
        self.majorities
            .get(&epoch)
            .is_some_and(|m| count >= usize::from(m.get()))
    }

    /// Unexpired leases at `now` with the time each has left, by sentinel id.
    pub fn leases(&self, now: NodeTime) -> Vec<(SentinelId, Duration)> {
        self.ends
            .iter()
            .filter(|(_, (end, _))| now < *end)
            .map(|(id, (end, _))| (*id, end.since(now)))
            .collect()
    }
}

/// What `INFO replication` shows about fencing.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub struct FencingStatus {
    /// The configured mode.
    pub mode: WriteFencing,
    /// Whether writes are fenced now (on a master).
    pub active: bool,
    /// Unexpired leases that count (of the newest membership epoch among them).
    pub valid: usize,
    /// Required majority; 0 before the first grant.
    pub majority: u8,
}

/// The node's fencing state, shared by every connection.
pub struct Fencing {
    /// Origin of the node clock.
    origin: Instant,
    /// `WriteFencing` as a number, so INFO and the hot path read it without a lock.
    mode: AtomicU8,
    /// Fencing is in force: checked first on every write, so an unfenced node never locks.
    active: AtomicBool,
    /// A lease majority was held at least once (what turns `auto` on, for the process lifetime).
    leased: AtomicBool,
    /// The leases. A std `Mutex`: held for a few comparisons and never across `.await`.
    table: Mutex<LeaseTable>,
}

impl Fencing {
    /// Fencing for the node run `run_id`, in `mode`, with the node clock starting at `origin`.
    pub fn new(mode: WriteFencing, run_id: &str, origin: Instant) -> Fencing {
        Fencing {
            origin,
            mode: AtomicU8::new(mode.to_u8()),
            active: AtomicBool::new(mode == WriteFencing::On),
            leased: AtomicBool::new(false),
            table: Mutex::new(LeaseTable::new(run_id)),
        }
    }

    /// The node clock now (`VIGIL CLOCK`).
    pub fn now(&self) -> NodeTime {
        NodeTime(u64::try_from(self.origin.elapsed().as_micros()).unwrap_or(u64::MAX))
    }

    /// Applies a new `write-fencing` mode (start-up and `CONFIG SET`).
    pub fn configure(&self, mode: WriteFencing) {
        // Under the table lock, so a concurrent first grant cannot recompute `active` from the
        // old mode after this.
        let _table = self.table();
        self.mode.store(mode.to_u8(), Ordering::Relaxed);
        self.recompute();
    }

    /// Records a `VIGIL LEASE` grant.
    pub fn grant(&self, g: &Grant) -> Result<(), LeaseError> {
        let mut table = self.table();
        let now = self.now();
        if let Err(e) = table.grant(now, g) {
            if matches!(e, LeaseError::TableFull(_)) {
                warn!(
                    sentinel = g.sentinel.0,
                    "write lease refused: lease table full"
                );
            }
            return Err(e);
        }
        debug!(
            sentinel = g.sentinel.0,
            start = g.start.0,
            ttl_ms = g.ttl.as_millis() as u64,
            majority = g.majority.get(),
            "write lease granted"
        );
        // `auto` turns on once the node first holds a majority, not at the first grant: the
        // grants of a group's sentinels arrive one by one, and a master that just got its
        // first lease would otherwise refuse writes until the others arrive.
        if !self.leased.load(Ordering::Relaxed) && table.holds_majority(now) {
            self.leased.store(true, Ordering::Relaxed);
            self.recompute();
        }
        Ok(())
    }

    /// Revokes every lease (`VIGIL REVOKE`): once this returns, no write is accepted under
    /// fencing until grants that start after now arrive from a majority. Returns the
    /// revocation time.
    pub fn revoke(&self) -> NodeTime {
        let mut table = self.table();
        // Read under the lock: a grant checked after this sees the revocation, and one
        // checked before it is dropped with the rest.
        let now = self.now();
        let dropped = table.valid(now);
        table.revoke(now);
        info!(revoked_at = now.0, dropped, "write leases revoked");
        now
    }

    /// The `-NOLEASE` refusal, when fencing is active and the lease majority is not held. The
    /// caller checks that this node is a master and the command a client write.
    pub fn refuse_write(&self) -> Option<Frame> {
        if !self.active.load(Ordering::Relaxed) {
            return None;
        }
        let held = self.table().holds_majority(self.now());
        (!held).then(|| Frame::error_static(NOLEASE))
    }

    /// Mode, activity and lease counts for INFO.
    pub fn status(&self) -> FencingStatus {
        let table = self.table();
        FencingStatus {
            mode: WriteFencing::from_u8(self.mode.load(Ordering::Relaxed)),
            active: self.active.load(Ordering::Relaxed),
            valid: table.counted(self.now()).map_or(0, |(_, n)| n),
            majority: table.majority().map_or(0, NonZeroU8::get),
        }
    }

    /// Unexpired leases with their remaining time (`VIGIL LEASES`).
    pub fn leases(&self) -> Vec<(SentinelId, Duration)> {
        self.table().leases(self.now())
    }

    fn table(&self) -> MutexGuard<'_, LeaseTable> {
        // The table is consistent after every statement, so a poisoned lock is still usable.
        self.table.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Derives `active` from the mode and whether a lease was ever accepted. Called with the
    /// table lock held, which orders it against other recomputations.
    fn recompute(&self) {
        let active = match WriteFencing::from_u8(self.mode.load(Ordering::Relaxed)) {
            WriteFencing::Off => false,
            WriteFencing::Auto => self.leased.load(Ordering::Relaxed),
            WriteFencing::On => true,
        };
        if self.active.swap(active, Ordering::Relaxed) != active {
            info!(active, "write fencing changed");
        }
    }
}

/// The most membership epochs whose majority a table remembers.
const MAX_EPOCHS: usize = 8;

/// `arg` as text if it is a non-empty run of ASCII digits (no sign, no spaces).
fn digits(arg: &[u8]) -> Option<&str> {
    if arg.is_empty() || !arg.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(arg).ok()
}

/// An argument as shown in an error: lossy text, at most 64 bytes of it.
fn shown(arg: &[u8]) -> String {
    String::from_utf8_lossy(&arg[..arg.len().min(64)]).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    const RUN_ID: &str = "0123456789abcdef0123456789abcdef01234567";

    fn grant(sentinel: u32, start: u64, ttl_ms: u64, majority: u8) -> Grant {
        Grant {
            sentinel: SentinelId(sentinel),
            start: NodeTime(start),
            ttl: Duration::from_millis(ttl_ms),
            majority: NonZeroU8::new(majority).expect("test majority is non-zero"),
            run_id_prefix: RUN_ID[..RUN_ID_PREFIX_LEN].to_string(),
            members: 0,
        }
    }

    fn grant_at(sentinel: u32, start: u64, majority: u8, members: u64) -> Grant {
        Grant {
            members,
            ..grant(sentinel, start, 100, majority)
        }
    }

    #[test]
    fn only_the_leases_of_the_newest_membership_epoch_count() {
        let mut t = LeaseTable::new(RUN_ID);
        // Five voters at epoch 1: three leases make a majority.
        for id in [1, 2, 3] {
            t.grant(NodeTime(0), &grant_at(id, 0, 3, 1)).unwrap();
        }
        assert!(t.holds_majority(NodeTime(1)));
        // Sentinel 3 adopted epoch 3 (voters {3, 4, 5}, majority 2): 1 and 2, removed without
        // knowing it, no longer count, and 3 alone is no majority of its set.
        t.grant(NodeTime(1), &grant_at(3, 1, 2, 3)).unwrap();
        assert_eq!(t.counted(NodeTime(2)), Some((3, 1)));
        assert!(!t.holds_majority(NodeTime(2)));
        // 1 and 2 keep granting under epoch 1: still not counted.
        for id in [1, 2] {
            t.grant(NodeTime(2), &grant_at(id, 2, 3, 1)).unwrap();
        }
        assert!(!t.holds_majority(NodeTime(3)));
        // A second voter of epoch 3: a majority again.
        t.grant(NodeTime(3), &grant_at(4, 3, 2, 3)).unwrap();
        assert!(t.holds_majority(NodeTime(4)));
        assert_eq!(t.majority().map(NonZeroU8::get), Some(2));
        // Epoch 1 never counts again, even once every epoch-3 lease has ended: a sentinel
        // that lost its state and founded a cluster of one grants at epoch 1, majority 1.
        t.grant(NodeTime(90_000), &grant_at(1, 90_000, 1, 1))
            .unwrap();
        t.grant(NodeTime(90_000), &grant_at(9, 90_000, 1, 1))
            .unwrap();
        assert!(!t.holds_majority(NodeTime(100_500)));
        assert_eq!(t.counted(NodeTime(100_500)), Some((3, 0)));
    }

    fn args(words: &[&str]) -> Vec<Bytes> {
        words
            .iter()
            .map(|w| Bytes::copy_from_slice(w.as_bytes()))
            .collect()
    }

    #[test]
    fn lease_is_valid_until_start_plus_ttl() {
        let mut t = LeaseTable::new(RUN_ID);
        t.grant(NodeTime(2_000), &grant(1, 1_000, 5, 1)).unwrap();
        assert_eq!(t.valid(NodeTime(5_999)), 1);
        assert!(t.holds_majority(NodeTime(5_999)));
        assert_eq!(t.valid(NodeTime(6_000)), 0);
        assert!(!t.holds_majority(NodeTime(6_000)));
        assert_eq!(
            t.leases(NodeTime(3_000)),
            vec![(SentinelId(1), Duration::from_millis(3))]
        );
        assert_eq!(t.leases(NodeTime(6_000)), vec![]);
    }

    #[test]
    fn a_grant_never_shortens_a_lease() {
        let mut t = LeaseTable::new(RUN_ID);
        t.grant(NodeTime(1_000), &grant(7, 1_000, 10, 1)).unwrap();
        // A delayed grant that would end earlier is accepted but keeps the later end.
        t.grant(NodeTime(2_000), &grant(7, 0, 1, 1)).unwrap();
        assert_eq!(t.valid(NodeTime(10_999)), 1);
        assert_eq!(t.valid(NodeTime(11_000)), 0);
        // A later grant extends it.
        t.grant(NodeTime(3_000), &grant(7, 3_000, 20, 1)).unwrap();
        assert_eq!(t.valid(NodeTime(22_999)), 1);
        assert_eq!(t.valid(NodeTime(23_000)), 0);
    }

    #[test]
    fn majority_counts_distinct_unexpired_sentinels_and_follows_the_latest_grant() {
        let mut t = LeaseTable::new(RUN_ID);
        assert!(
            !t.holds_majority(NodeTime(0)),
            "no majority before any grant"
        );
        assert_eq!(t.majority(), None);
        t.grant(NodeTime(0), &grant(1, 0, 100, 2)).unwrap();
        assert!(!t.holds_majority(NodeTime(1)));
        // The same sentinel twice is still one lease.
        t.grant(NodeTime(1), &grant(1, 1, 100, 2)).unwrap();
        assert!(!t.holds_majority(NodeTime(2)));
        t.grant(NodeTime(2), &grant(2, 2, 50, 2)).unwrap();
        assert!(t.holds_majority(NodeTime(3)));
        assert!(
            !t.holds_majority(NodeTime(50_002)),
            "sentinel 2's lease ended"
        );
        // The latest grant sets the majority, higher or lower.
        t.grant(NodeTime(4), &grant(3, 4, 100, 3)).unwrap();
        assert_eq!(t.majority().map(NonZeroU8::get), Some(3));
        assert!(t.holds_majority(NodeTime(5)));
        assert!(!t.holds_majority(NodeTime(50_002)));
        t.grant(NodeTime(6), &grant(3, 6, 100, 1)).unwrap();
        assert!(t.holds_majority(NodeTime(50_002)));
    }

    #[test]
    fn table_is_bounded_and_evicts_only_expired_leases() {
        let mut t = LeaseTable::new(RUN_ID);
        for id in 0..MAX_SENTINELS as u32 {
            // Even ids expire at 1 ms, odd ids at 100 ms.
            let ttl = if id % 2 == 0 { 1 } else { 100 };
            t.grant(NodeTime(0), &grant(id, 0, ttl, 1)).unwrap();
        }
        let newcomer = grant(1_000, 0, 100, 1);
        // All unexpired: refused, nothing stored.
        assert_eq!(
            t.grant(NodeTime(500), &newcomer),
            Err(LeaseError::TableFull(MAX_SENTINELS))
        );
        assert_eq!(t.valid(NodeTime(500)), MAX_SENTINELS);
        // A sentinel already in the table can always renew.
        t.grant(NodeTime(500), &grant(0, 500, 100, 1)).unwrap();
        // Once the even ids expired, the newcomer fits.
        t.grant(NodeTime(2_000), &newcomer).unwrap();
        assert_eq!(t.valid(NodeTime(2_000)), MAX_SENTINELS / 2 + 2);
        assert!(t.ends.len() <= MAX_SENTINELS);
    }

    #[test]
    fn grant_for_another_run_id_stores_nothing() {
        let mut t = LeaseTable::new(RUN_ID);
        let mut g = grant(1, 0, 100, 1);
        g.run_id_prefix = "ffffffffffffffff".into();
        assert_eq!(t.grant(NodeTime(0), &g), Err(LeaseError::OtherRunId));
        assert_eq!(t.valid(NodeTime(0)), 0);
        assert_eq!(t.majority(), None);
    }

    #[test]
    fn start_ahead_of_the_node_clock_is_refused() {
        let mut t = LeaseTable::new(RUN_ID);
        assert_eq!(
            t.grant(NodeTime(999), &grant(1, 1_000, 100, 1)),
            Err(LeaseError::FutureStart {
                start: 1_000,
                now: 999
            })
        );
        assert_eq!(t.valid(NodeTime(1_000)), 0);
        t.grant(NodeTime(1_000), &grant(1, 1_000, 100, 1)).unwrap();
    }

    #[test]
    fn revocation_drops_every_lease_and_refuses_older_grants() {
        let mut t = LeaseTable::new(RUN_ID);
        t.grant(NodeTime(1_000), &grant(1, 1_000, 100, 2)).unwrap();
        t.grant(NodeTime(1_000), &grant(2, 1_000, 100, 2)).unwrap();
        assert!(t.holds_majority(NodeTime(2_000)));
        t.revoke(NodeTime(2_000));
        assert_eq!(t.valid(NodeTime(2_000)), 0);
        assert!(!t.holds_majority(NodeTime(2_000)));
        // Grants built on clock readings up to the revocation, however late they arrive,
        // store nothing; the majority they would need is unchanged.
        for start in [1_500, 2_000] {
            assert_eq!(
                t.grant(NodeTime(3_000), &grant(1, start, 100, 2)),
                Err(LeaseError::Revoked {
                    start,
                    revoked_at: 2_000
                })
            );
        }
        assert_eq!(t.valid(NodeTime(3_000)), 0);
        assert_eq!(t.majority().map(NonZeroU8::get), Some(2));
        // Readings taken after the revocation count again.
        t.grant(NodeTime(3_000), &grant(1, 2_001, 100, 2)).unwrap();
        t.grant(NodeTime(3_000), &grant(2, 3_000, 100, 2)).unwrap();
        assert!(t.holds_majority(NodeTime(3_000)));
        // An older time never moves the revocation back.
        t.revoke(NodeTime(5_000));
        t.revoke(NodeTime(4_000));
        assert!(matches!(
            t.grant(NodeTime(6_000), &grant(1, 4_500, 100, 2)),
            Err(LeaseError::Revoked {
                revoked_at: 5_000,
                ..
            })
        ));
    }

    #[test]
    fn a_revoked_fenced_master_refuses_writes_until_newer_grants() {
        let on = Fencing::new(WriteFencing::On, RUN_ID, Instant::now());
        let before = on.now();
        on.grant(&grant(1, before.0, 60_000, 1)).unwrap();
        assert!(on.refuse_write().is_none());
        let at = on.revoke();
        assert!(at >= before);
        assert_eq!(on.refuse_write(), Some(Frame::error_static(NOLEASE)));
        assert!(on.grant(&grant(1, before.0, 60_000, 1)).is_err());
        assert_eq!(on.refuse_write(), Some(Frame::error_static(NOLEASE)));
        // A reading taken after the revocation (the clock counts microseconds).
        std::thread::sleep(Duration::from_millis(2));
        let later = on.now();
        assert!(later > at);
        on.grant(&grant(1, later.0, 60_000, 1)).unwrap();
        assert!(on.refuse_write().is_none());
        assert_eq!(on.status().valid, 1);
    }

    #[test]
    fn grant_arguments_parse_strictly() {
        let prefix = &RUN_ID[..16];
        let ok = Grant::parse(&args(&["3", "12", "300", "2", prefix])).unwrap();
        assert_eq!(ok, {
            let mut g = grant(3, 12, 300, 2);
            g.run_id_prefix = prefix.into();
            g
        });
        let upper = prefix.to_ascii_uppercase();
        assert_eq!(
            Grant::parse(&args(&["3", "12", "300", "2", &upper])).map(|g| g.run_id_prefix),
            Ok(prefix.to_string())
        );
        let bad: &[(&[&str], LeaseError)] = &[
            (
                &["x", "1", "1", "1", prefix],
                LeaseError::SentinelId("x".into()),
            ),
            (
                &["-1", "1", "1", "1", prefix],
                LeaseError::SentinelId("-1".into()),
            ),
            (
                &["4294967296", "1", "1", "1", prefix],
                LeaseError::SentinelId("4294967296".into()),
            ),
            (
                &["1", "+1", "1", "1", prefix],
                LeaseError::Start("+1".into()),
            ),
            (
                &["1", "", "1", "1", prefix],
                LeaseError::Start(String::new()),
            ),
            (&["1", "1", "0", "1", prefix], LeaseError::Ttl("0".into())),
            (
                &["1", "1", "60001", "1", prefix],
                LeaseError::Ttl("60001".into()),
            ),
            (
                &["1", "1", "1", "0", prefix],
                LeaseError::Majority("0".into()),
            ),
            (
                &["1", "1", "1", "256", prefix],
                LeaseError::Majority("256".into()),
            ),
            (
                &["1", "1", "1", "1", "0123"],
                LeaseError::RunIdPrefix("0123".into()),
            ),
            (
                &["1", "1", "1", "1", "0123456789abcdeg"],
                LeaseError::RunIdPrefix("0123456789abcdeg".into()),
            ),
            (&["1", "1", "1", "1"], LeaseError::Arity(4)),
            (
                &["1", "1", "1", "1", prefix, "-2"],
                LeaseError::Members("-2".into()),
            ),
            (
                &["1", "1", "1", "1", prefix, "2", "3"],
                LeaseError::Arity(7),
            ),
        ];
        for (words, want) in bad {
            assert_eq!(Grant::parse(&args(words)).as_ref(), Err(want), "{words:?}");
        }
        assert!(Grant::parse(&args(&["1", "1", "60000", "255", prefix])).is_ok());
        let with_epoch = Grant::parse(&args(&["3", "12", "300", "2", prefix, "7"])).unwrap();
        assert_eq!(with_epoch.members, 7);
        assert_eq!(
            Grant::parse(&args(&["3", "12", "300", "2", prefix]))
                .unwrap()
                .members,
            0
        );
    }

    #[test]
    fn modes_decide_when_fencing_is_active() {
        let origin = Instant::now();
        let off = Fencing::new(WriteFencing::Off, RUN_ID, origin);
        let auto = Fencing::new(WriteFencing::Auto, RUN_ID, origin);
        let on = Fencing::new(WriteFencing::On, RUN_ID, origin);
        assert!(off.refuse_write().is_none());
        assert!(auto.refuse_write().is_none());
        assert_eq!(on.refuse_write(), Some(Frame::error_static(NOLEASE)));

        // A refused grant does not turn `auto` on; neither does a grant short of the majority
        // (sentinels' grants arrive one by one); holding a majority does, for good.
        let mut g = grant(1, 0, 1, 1);
        g.run_id_prefix = "ffffffffffffffff".into();
        assert!(auto.grant(&g).is_err());
        assert!(!auto.status().active);
        let now = auto.now();
        auto.grant(&grant(1, now.0, 50, 2)).unwrap();
        assert!(!auto.status().active, "one lease of two turned fencing on");
        assert!(auto.refuse_write().is_none());
        auto.grant(&grant(2, now.0, 50, 2)).unwrap();
        assert!(auto.status().active);
        assert!(auto.refuse_write().is_none());
        // The 50 ms leases are soon over; writes are then refused.
        std::thread::sleep(Duration::from_millis(80));
        assert!(auto.refuse_write().is_some());
        auto.configure(WriteFencing::Off);
        assert!(auto.refuse_write().is_none());
        auto.configure(WriteFencing::Auto);
        assert!(
            auto.status().active,
            "auto stays active after a lease was seen"
        );

        // A lease majority lets writes through while fencing is on.
        let now = on.now();
        on.grant(&grant(9, now.0, 60_000, 1)).unwrap();
        assert!(on.refuse_write().is_none());
        let st = on.status();
        assert_eq!(
            (st.mode, st.active, st.valid, st.majority),
            (WriteFencing::On, true, 1, 1)
        );
    }

    #[test]
    fn write_fencing_modes_parse() {
        for m in [WriteFencing::Off, WriteFencing::Auto, WriteFencing::On] {
            assert_eq!(WriteFencing::parse(m.as_str()), Some(m));
            assert_eq!(WriteFencing::from_u8(m.to_u8()), m);
        }
        assert_eq!(WriteFencing::parse("ON"), Some(WriteFencing::On));
        assert_eq!(WriteFencing::parse("yes"), None);
        assert_eq!(WriteFencing::default(), WriteFencing::Auto);
    }
}
