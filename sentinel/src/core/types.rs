//! Newtypes for every number and name with a meaning in the core.
//!
//! Owns: `Term`, `ConfigEpoch`, `MembersEpoch`, `Ballot`, `ReplOffset`, `NodeId`, `SentinelId`,
//! `GroupName`, `RunId`, `Priority`, `Quorum`, `NodeClock`, `PersistVersion` and `InfoSeq`.
//! Invariant: no bare integer crosses a module boundary where one of these types applies.

use std::fmt;
use std::num::NonZeroU8;
use std::sync::Arc;
use std::time::Duration;

/// An election term, counted per group; it only grows.
#[derive(Clone, Copy, Debug, Default, Eq, Hash, Ord, PartialEq, PartialOrd)]
pub struct Term(pub u64);

/// The epoch of a group's configuration; a failover that promotes in term `t` sets it to `t`.
#[derive(Clone, Copy, Debug, Default, Eq, Hash, Ord, PartialEq, PartialOrd)]
pub struct ConfigEpoch(pub u64);

/// A replication offset in bytes (or, in the simulator, in writes).
#[derive(Clone, Copy, Debug, Default, Eq, Hash, Ord, PartialEq, PartialOrd)]
pub struct ReplOffset(pub u64);

/// An opaque data-node identifier; the shell keeps the table from ids to addresses.
#[derive(Clone, Copy, Debug, Eq, Hash, Ord, PartialEq, PartialOrd)]
pub struct NodeId(pub u32);

/// The identity of a sentinel (in production, derived from its certificate).
#[derive(Clone, Copy, Debug, Eq, Hash, Ord, PartialEq, PartialOrd)]
pub struct SentinelId(pub u32);

/// The name of a monitored group (a master and its replicas).
#[derive(Clone, Debug, Eq, Hash, Ord, PartialEq, PartialOrd)]
pub struct GroupName(Arc<str>);

/// The epoch of the voter set: 1 when a cluster is founded, one more for every agreed change;
/// 0 on a sentinel that has not joined a cluster yet.
#[derive(Clone, Copy, Debug, Default, Eq, Hash, Ord, PartialEq, PartialOrd)]
pub struct MembersEpoch(pub u64);

/// A Paxos ballot of a voter-set change: ordered by round, then by proposer. The default
/// (round 0) is below every ballot a proposer uses.
#[derive(Clone, Copy, Debug, Default, Eq, Hash, Ord, PartialEq, PartialOrd)]
pub struct Ballot {
    /// The round.
    pub round: u64,
    /// The proposer.
    pub by: u32,
}

/// A data node's run id, which changes on every restart (the shell hashes Redis' 40 hex digits).
#[derive(Clone, Copy, Debug, Default, Eq, Hash, Ord, PartialEq, PartialOrd)]
pub struct RunId(pub u64);

/// `master_replid`: the id of the replication history a node's data belongs to (a master's
/// own, or the one a replica last synchronised with); the shell hashes Redis' 40 hex digits.
#[derive(Clone, Copy, Debug, Default, Eq, Hash, Ord, PartialEq, PartialOrd)]
pub struct ReplId(pub u64);

/// `replica-priority`: lower is preferred, zero means "never promote".
#[derive(Clone, Copy, Debug, Eq, Hash, Ord, PartialEq, PartialOrd)]
pub struct Priority(pub u32);

/// How many sentinels must see a master down before it is objectively down, and the minimum
/// number of votes a leader needs. Never zero, by construction.
#[derive(Clone, Copy, Debug, Eq, Hash, Ord, PartialEq, PartialOrd)]
pub struct Quorum(pub NonZeroU8);

/// A data-centre label, on sentinels, data nodes and group preferences.
#[derive(Clone, Debug, Eq, Hash, Ord, PartialEq, PartialOrd)]
pub struct Dc(pub Arc<str>);

/// A reading of a data node's own monotonic clock, as it reported it; leases start at one.
#[derive(Clone, Copy, Debug, Default, Eq, Hash, Ord, PartialEq, PartialOrd)]
pub struct NodeClock(pub Duration);

/// The version of a `DurableState`; `Input::Persisted` confirms every version up to it.
#[derive(Clone, Copy, Debug, Default, Eq, Hash, Ord, PartialEq, PartialOrd)]
pub struct PersistVersion(pub u64);

/// The sequence number of an INFO request, echoed by the shell so that the core can tell a
/// fresh reply from a stale one.
#[derive(Clone, Copy, Debug, Default, Eq, Hash, Ord, PartialEq, PartialOrd)]
pub struct InfoSeq(pub u64);

impl Term {
    /// The term after this one.
    pub fn next(self) -> Term {
        Term(self.0 + 1)
    }
}

impl MembersEpoch {
    /// The epoch after this one.
    pub fn next(self) -> MembersEpoch {
        MembersEpoch(self.0.saturating_add(1))
    }
}

impl fmt::Display for MembersEpoch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "m{}", self.0)
    }
}

impl ConfigEpoch {
    /// The config epoch a failover won in `term` installs.
    pub fn of_term(term: Term) -> ConfigEpoch {
        ConfigEpoch(term.0)
    }
}

impl GroupName {
    /// Makes a group name.
    pub fn new(name: &str) -> GroupName {
        GroupName(Arc::from(name))
    }

    /// The name as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Quorum {
    /// The quorum as a count.
    pub fn get(self) -> usize {
        usize::from(self.0.get())
    }
}

impl fmt::Display for Term {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl fmt::Display for ConfigEpoch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "n{}", self.0)
    }
}

impl fmt::Display for SentinelId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "s{}", self.0)
    }
}

impl fmt::Display for GroupName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<&str> for GroupName {
    fn from(name: &str) -> GroupName {
        GroupName::new(name)
    }
}
