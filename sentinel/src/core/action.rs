//! `Action`: the closed set of commands the core gives the shell, named in the imperative.
//!
//! Owns `Action`, `Event` (what subscribers see), `DurableState` (what `Persist` writes),
//! `Lease` and the reasons carried by elections and aborts.
//! Invariant: an action never needs a reply to be correct; every reply the core needs comes back
//! as an `Input`.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use super::config::GroupOptions;
use super::input::Gossip;
use super::types::{
    Ballot, ConfigEpoch, GroupName, InfoSeq, MembersEpoch, NodeClock, NodeId, PersistVersion,
    ReplId, ReplOffset, RunId, SentinelId, Term,
};

/// A command for the shell. Drained with `Sentinel::poll_action` in order.
#[derive(Clone, Debug, PartialEq)]
pub enum Action {
    /// Write `DurableState` atomically and fsync it, then report `Input::Persisted`. The core
    /// holds back every later action until then, so a vote is never sent before it is durable.
    Persist(DurableState),
    /// PING the node; answer with `NodeReplied` or `ProbeFailed`.
    Probe {
        /// The node.
        node: NodeId,
    },
    /// Read INFO; answer with `InfoReceived` echoing `seq` (no answer on failure).
    Info {
        /// The node.
        node: NodeId,
        /// Echoed in the answer.
        seq: InfoSeq,
    },
    /// Send a message to a peer; best effort, no answer.
    SendGossip {
        /// The peer.
        to: SentinelId,
        /// The message.
        msg: Gossip,
    },
    /// Grant a write lease to a master (`VIGIL LEASE`).
    GrantLease {
        /// The master.
        node: NodeId,
        /// The lease.
        lease: Lease,
    },
    /// `REPLICAOF NO ONE`.
    Promote {
        /// The node.
        node: NodeId,
    },
    /// `REPLICAOF <master>`.
    Reconfigure {
        /// The node to turn into a replica.
        node: NodeId,
        /// Its new master.
        master: NodeId,
    },
    /// `CLIENT PAUSE <timeout> WRITE` (switchover).
    PauseWrites {
        /// The node.
        node: NodeId,
        /// The pause ends by itself after this long, so a lost unpause cannot stall writes.
        timeout: Duration,
    },
    /// `VIGIL REVOKE` on the master of a planned failover of `term`, after the `PauseWrites`
    /// emitted before it if any; answer with `LeasesRevoked` echoing `term` once the node
    /// replied `+OK` (no answer on failure, or from a node without leases).
    RevokeLeases {
        /// The master.
        node: NodeId,
        /// The leader's term, echoed in the answer.
        term: Term,
    },
    /// `CLIENT UNPAUSE`.
    UnpauseWrites {
        /// The node.
        node: NodeId,
    },
    /// Tell subscribers (control API, RESP sentinel port).
    Publish(Event),
}

/// A write lease: the node accepts writes while a majority of sentinels' leases are valid.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub struct Lease {
    /// The granting sentinel.
    pub from: SentinelId,
    /// A reading of the node's own clock taken before the grant, so a delayed grant cannot
    /// extend the lease past `start + ttl`.
    pub start: NodeClock,
    /// How long the lease lasts, on the node's clock.
    pub ttl: Duration,
    /// How many distinct sentinels' valid leases the node needs (a majority of the voters).
    pub majority: u8,
    /// The epoch of the granter's voter set: the node counts only the valid leases of the
    /// newest epoch among them, so that sentinels that do not know they were removed cannot
    /// make up a majority with the current voters.
    pub members: MembersEpoch,
    /// The incarnation the lease is for: a node that restarted since refuses it, so a master
    /// that restarted empty gets no lease before a sentinel has seen its new run id.
    pub run_id: RunId,
}

/// What a sentinel must remember across restarts; written by `Action::Persist`.
#[derive(Clone, Debug, Eq, PartialEq)]
pub struct DurableState {
    /// Increases with every write.
    pub version: PersistVersion,
    /// This sentinel.
    pub id: SentinelId,
    /// The explicit voter set; a dead member stays until an operator forgets it.
    pub voters: BTreeSet<SentinelId>,
    /// The voter set's epoch and this sentinel's part in agreeing on the next one.
    pub members: DurableMembers,
    /// Per group.
    pub groups: BTreeMap<GroupName, DurableGroup>,
}

/// The durable part of the voter-set agreement (docs/MEMBERSHIP.md).
#[derive(Clone, Debug, Default, Eq, PartialEq)]
pub struct DurableMembers {
    /// The cluster this sentinel belongs to, fixed when the cluster was founded; 0 before it
    /// joined one (or in a state file older than membership epochs).
    pub cluster: u64,
    /// The epoch of `DurableState::voters`; 0 before this sentinel joined a cluster.
    pub epoch: MembersEpoch,
    /// Group elections use terms above it: every term a leader may have won in an older
    /// epoch is at or below it.
    pub floor: Term,
    /// Per group, the config epoch a sentinel must hold before it grants leases: what the
    /// deciding acceptors knew (their config, or a term they voted in that no config or
    /// abandonment settled yet), so that a sentinel with a stale config (a new one, say) never
    /// helps an old master keep a lease majority. Bounded by `MAX_GROUPS`.
    pub fences: BTreeMap<GroupName, ConfigEpoch>,
    /// The highest ballot promised in instance `epoch` (the change from `epoch`); the default
    /// when none. While one is promised, this sentinel grants no group vote of `epoch`.
    pub promised: Ballot,
    /// The set accepted in instance `epoch`, with its ballot.
    pub accepted: Option<(Ballot, BTreeSet<SentinelId>)>,
    /// The joiners' incarnations that came with the accepted set.
    pub accepted_incarnations: BTreeMap<SentinelId, u64>,
    /// A random id of this state file, drawn when it is created: a sentinel that lost its
    /// state comes back with another.
    pub incarnation: u64,
    /// The incarnation each admitted voter asked to join with, where known (carried by every
    /// commit; entries leave with their sentinel).
    pub admitted: BTreeMap<SentinelId, u64>,
}

/// The durable part of one group's state.
#[derive(Clone, Debug, Eq, PartialEq)]
pub struct DurableGroup {
    /// The highest term this sentinel knows of.
    pub term: Term,
    /// The last vote cast: `(term, candidate)`. At most one per term, by construction.
    pub vote: Option<(Term, SentinelId)>,
    /// The highest term whose candidate announced it abandoned it (lifts the lease fence).
    pub abandoned: Term,
    /// The first term voted in since the config epoch: an abandonment lifts the fence only
    /// when it settles every vote cast since then.
    pub fence_from: Term,
    /// The config epoch of `master`.
    pub epoch: ConfigEpoch,
    /// The master of the winning config.
    pub master: NodeId,
    /// Known replicas.
    pub replicas: BTreeSet<NodeId>,
    /// The histories the configured master's data is made of, as it reported them in this
    /// config epoch (or as voters of this epoch reported them): each replication id with the
    /// offset up to which it is the master's data (`ReplOffset(u64::MAX)` for an id the master
    /// wrote under). Durable, and written before any lease is granted to a master under a new
    /// id, so that every id a master accepted writes under is known to every sentinel of its
    /// lease majority even after a restart; a leader learns it from its voters.
    pub lineage: BTreeMap<ReplId, ReplOffset>,
    /// The term of the operator's last change of the group (`Term(0)`: none): options,
    /// removal and reset have this epoch of their own, apart from the master's config epoch,
    /// so that a change never competes with a failover; the highest wins everywhere.
    pub agreed: Term,
    /// The options an operator last agreed for the group (`Monitor`, `SetOption`); `None`
    /// while the config file's apply.
    pub options: Option<GroupOptions>,
    /// The group was removed by an operator, or is known only through a vote for its
    /// `Monitor`: not watched, but kept, so that its term, vote and epochs still rule out a
    /// second vote in a term or an older change bringing it back.
    pub removed: bool,
    /// The term of the last `Reset` (discovered replicas forgotten).
    pub reset: Term,
}

impl DurableGroup {
    /// The state of a group nobody voted in or changed yet: its configured master at epoch 0.
    pub fn fresh(cfg: &super::config::GroupConfig) -> DurableGroup {
        DurableGroup {
            term: Term(0),
            vote: None,
            abandoned: Term(0),
            fence_from: Term(0),
            epoch: ConfigEpoch(0),
            master: cfg.master,
            replicas: cfg.replicas.iter().copied().collect(),
            lineage: BTreeMap::new(),
            agreed: Term(0),
            options: None,
            removed: false,
            reset: Term(0),
        }
    }
}

/// Why a sentinel runs for leader.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub enum ElectionReason {
    /// The master is objectively down.
    MasterDown,
    /// An operator asked for a failover.
    Manual,
    /// An operator asked for a zero-loss switchover.
    Switchover,
    /// Voters stopped granting leases in a term that never produced a config; settle it.
    Fenced,
    /// An operator changed the group (`Monitor`, `SetOption`, `Remove`, `Reset`): the leader
    /// installs the change as the config of its term; nothing is promoted.
    Admin,
}

/// Why a failover stopped before promotion.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub enum AbortReason {
    /// The master answers again and nothing was promoted yet.
    MasterBack,
    /// No replica is eligible for promotion.
    NoGoodReplica,
    /// Not enough fresh offsets to prove which replica holds every acknowledged write.
    NoFreshOffsets,
    /// The promoted replica never confirmed its new role.
    PromotionTimeout,
    /// A newer config epoch arrived.
    NewerConfig,
    /// This sentinel voted for a candidate of a newer term.
    NewerTerm,
    /// The master's offset never caught up in a switchover.
    SwitchoverTimeout,
    /// The group was put into maintenance.
    Maintenance,
    /// The replica an operator chose for a switchover was never eligible (down, priority 0,
    /// unproven or behind the master).
    TargetNotEligible,
}

/// Something subscribers care about; one per failover step.
#[derive(Clone, Debug, Eq, PartialEq)]
pub enum Event {
    /// `+sdown`.
    SubjectivelyDown {
        /// The node.
        node: NodeId,
    },
    /// `-sdown`.
    SubjectivelyUp {
        /// The node.
        node: NodeId,
    },
    /// `+odown`.
    ObjectivelyDown {
        /// The group.
        group: GroupName,
    },
    /// `-odown`.
    ObjectivelyUp {
        /// The group.
        group: GroupName,
    },
    /// A master restarted with an empty dataset; it is treated as down.
    RestartedEmpty {
        /// The node.
        node: NodeId,
    },
    /// `+try-failover`: this sentinel became candidate.
    TryFailover {
        /// The group.
        group: GroupName,
        /// The new term.
        term: Term,
        /// Why.
        reason: ElectionReason,
    },
    /// `+vote-for-leader`: this sentinel voted.
    VoteGranted {
        /// The group.
        group: GroupName,
        /// The term.
        term: Term,
        /// The candidate.
        candidate: SentinelId,
    },
    /// This sentinel stopped granting leases in `group` because it voted in `term`.
    LeaseRevoked {
        /// The group.
        group: GroupName,
        /// The term voted in.
        term: Term,
    },
    /// `+elected-leader`.
    Elected {
        /// The group.
        group: GroupName,
        /// The term.
        term: Term,
    },
    /// A candidate's term ended without a winner.
    SplitVote {
        /// The group.
        group: GroupName,
        /// The term.
        term: Term,
    },
    /// `+selected-slave`.
    SelectedReplica {
        /// The group.
        group: GroupName,
        /// The replica.
        node: NodeId,
    },
    /// `+promoted-slave`: the replica confirmed `role:master`.
    Promoted {
        /// The group.
        group: GroupName,
        /// The new master.
        node: NodeId,
        /// The new config epoch.
        epoch: ConfigEpoch,
    },
    /// A fenced term was settled by keeping the healthy master under a new epoch.
    Reaffirmed {
        /// The group.
        group: GroupName,
        /// The master.
        node: NodeId,
        /// The new config epoch.
        epoch: ConfigEpoch,
    },
    /// `+switch-master`: this sentinel's config for `group` changed.
    SwitchMaster {
        /// The group.
        group: GroupName,
        /// The old master.
        old: NodeId,
        /// The new master.
        new: NodeId,
        /// The new config epoch.
        epoch: ConfigEpoch,
    },
    /// `+slave-reconf-done`: a replica follows the new master.
    ReplicaReconfigured {
        /// The group.
        group: GroupName,
        /// The replica.
        node: NodeId,
    },
    /// `+convert-to-slave`: a node disagreeing with the config was told to follow the master.
    ConvertedToReplica {
        /// The group.
        group: GroupName,
        /// The node.
        node: NodeId,
        /// Its master.
        master: NodeId,
    },
    /// `+failover-end`.
    FailoverEnded {
        /// The group.
        group: GroupName,
        /// The new epoch.
        epoch: ConfigEpoch,
    },
    /// `-failover-abort-*`.
    FailoverAborted {
        /// The group.
        group: GroupName,
        /// The term.
        term: Term,
        /// Why.
        reason: AbortReason,
    },
    /// Maintenance mode entered or left.
    Maintenance {
        /// The group.
        group: GroupName,
        /// Paused or not.
        paused: bool,
    },
    /// `+sentinel`: a new voter joined.
    SentinelAdded {
        /// The sentinel.
        id: SentinelId,
    },
    /// A voter was removed by an operator.
    SentinelRemoved {
        /// The sentinel.
        id: SentinelId,
    },
    /// The voter set of `epoch` was decided; published by every sentinel that adopts it.
    MembersChanged {
        /// Its epoch.
        epoch: MembersEpoch,
        /// The voters.
        voters: Vec<SentinelId>,
    },
    /// An operator's voter-set change (`Input::ForgetRequested`) holds: decided, and in force
    /// here.
    MembershipConfirmed {
        /// The request's id.
        id: u64,
        /// The epoch of the voter set that holds it.
        epoch: MembersEpoch,
    },
    /// An operator's voter-set change failed.
    MembershipFailed {
        /// The request's id.
        id: u64,
        /// Why.
        reason: AdminError,
    },
    /// An operator's change of the group took effect here under `epoch` (on the leader that
    /// installed it and on every sentinel that adopts its config).
    AdminApplied {
        /// The group.
        group: GroupName,
        /// The term of the change (`DurableGroup::agreed`).
        agreed: Term,
        /// The group's master.
        master: NodeId,
        /// What changed.
        change: AdminKind,
    },
    /// The leader's change `id` is held by a majority of voters: no later config can undo it.
    AdminConfirmed {
        /// The group.
        group: GroupName,
        /// The request, as the shell numbered it.
        id: u64,
        /// The term of the change (`DurableGroup::agreed`).
        agreed: Term,
    },
    /// The change `id` was refused or could not be agreed.
    AdminFailed {
        /// The group.
        group: GroupName,
        /// The request, as the shell numbered it.
        id: u64,
        /// Why.
        reason: AdminError,
    },
}

/// The kinds of operator change of a group.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub enum AdminKind {
    /// A group was added.
    Monitor,
    /// Options changed.
    Set,
    /// The group was removed.
    Remove,
    /// Discovered replicas were forgotten.
    Reset,
}

impl AdminKind {
    /// The lower-case name, as in `SENTINEL <name>`.
    pub fn as_str(self) -> &'static str {
        match self {
            AdminKind::Monitor => "monitor",
            AdminKind::Set => "set",
            AdminKind::Remove => "remove",
            AdminKind::Reset => "reset",
        }
    }
}

/// Why an operator's change of a group did not happen.
#[derive(Clone, Debug, Eq, PartialEq, thiserror::Error)]
pub enum AdminError {
    /// `Monitor` of a name already monitored.
    #[error("group {0} is already monitored")]
    Exists(GroupName),
    /// Any other change of a group nobody monitors.
    #[error("no such group {0}")]
    Unknown(GroupName),
    /// A failover, an election or another change of the group is under way.
    #[error("a failover or another change of group {0} is under way; retry when it ends")]
    Busy(GroupName),
    /// The options break a rule.
    #[error("{0}")]
    Invalid(String),
    /// Too many groups (removed ones included) to add another.
    #[error("too many groups (at most {0}, removed ones included)")]
    TooMany(usize),
    /// No majority of voters granted a term for the change in time.
    #[error("no majority of sentinels agreed to the change of group {0} in time")]
    NoMajority(GroupName),
    /// Another change of the voter set is under way.
    #[error("another change of the voter set is under way; retry when it ends")]
    MembershipBusy,
    /// No majority of voters agreed to a voter-set change in time.
    #[error("no majority of sentinels agreed to the voter-set change in time")]
    NoMembershipMajority,
    /// The voter-set change was not confirmed in time, but acceptors may hold it: a later
    /// proposer may still commit it.
    #[error(
        "the voter-set change was not confirmed in time and may still take effect; check the voters with `vigil admin sentinels`"
    )]
    MembershipUncertain,
    /// This sentinel is not a voter (it has not joined a cluster, or was removed).
    #[error("this sentinel is not a voter; ask one that is")]
    NotVoter,
    /// A newer config of the group arrived before the change was installed.
    #[error("group {0} changed under the request (a newer config arrived); retry")]
    Superseded(GroupName),
}
