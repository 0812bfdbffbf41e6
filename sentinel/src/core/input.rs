//! `Input`: the closed set of facts the shell reports to the core, named in the past tense.
//!
//! Owns `Input`, `Gossip` (what sentinels tell each other), `NodeInfo` and `ProbeReply`.
//! Invariant: nothing here carries a socket, a file or a protobuf type; the shell converts at its edge.

use std::time::Duration;

use super::action::ElectionReason;
use super::config::GroupOptions;
use super::types::{
    Ballot, ConfigEpoch, Dc, GroupName, InfoSeq, MembersEpoch, NodeClock, NodeId, PersistVersion,
    Priority, ReplId, ReplOffset, RunId, SentinelId, Term,
};

/// A fact the shell observed; fed to `Sentinel::handle` with the time it was observed.
#[derive(Clone, Debug, PartialEq)]
pub enum Input {
    /// A data node answered a probe with a valid reply (`PONG`, `-LOADING` or `-MASTERDOWN`).
    NodeReplied {
        /// The node.
        node: NodeId,
        /// What it said.
        reply: ProbeReply,
    },
    /// A probe got no valid reply in time (timeout, refused, or an invalid error).
    ProbeFailed {
        /// The node.
        node: NodeId,
    },
    /// A data node answered INFO.
    InfoReceived {
        /// The node.
        node: NodeId,
        /// The `seq` of the `Action::Info` this answers.
        seq: InfoSeq,
        /// The parsed fields the core uses.
        info: NodeInfo,
    },
    /// A peer sentinel's message arrived.
    GossipReceived {
        /// The sender, authenticated by the transport.
        from: SentinelId,
        /// The message.
        msg: Gossip,
    },
    /// Every `Action::Persist` up to `version` is durable.
    Persisted {
        /// The highest durable version.
        version: PersistVersion,
    },
    /// An operator asked for a failover of `group` (master presumed healthy).
    FailoverRequested {
        /// The group.
        group: GroupName,
    },
    /// An operator asked for a planned, zero-loss switchover of `group`.
    SwitchoverRequested {
        /// The group.
        group: GroupName,
        /// The replica to promote; `None` lets the leader pick the best one.
        target: Option<NodeId>,
    },
    /// A data node answered `+OK` to the `REPLICAOF` of an `Action::Promote` or
    /// `Action::Reconfigure`: its new role is in effect.
    ReplicaofAcknowledged {
        /// The node.
        node: NodeId,
    },
    /// A master answered `+OK` to the `Action::RevokeLeases` of `term`.
    LeasesRevoked {
        /// The master.
        node: NodeId,
        /// The term of the action answered.
        term: Term,
    },
    /// An operator paused automatic failover of `group` (maintenance mode).
    MaintenanceRequested {
        /// The group.
        group: GroupName,
        /// `true` to pause, `false` to resume.
        paused: bool,
    },
    /// An operator asked to change a group (`Monitor`, `SetOption`, `Remove`, `Reset`); the
    /// outcome is an `Event::AdminConfirmed` or `Event::AdminFailed` with the same `id`.
    AdminRequested {
        /// Chosen by the shell to match the outcome with the request.
        id: u64,
        /// The group.
        group: GroupName,
        /// The change.
        change: AdminChange,
    },
    /// An operator asked to remove a (dead) sentinel from the voter set; the outcome is an
    /// `Event::MembershipConfirmed` or `Event::MembershipFailed` with the same `id`.
    ForgetRequested {
        /// Chosen by the shell to match the outcome with the request.
        id: u64,
        /// The sentinel to remove.
        sentinel: SentinelId,
    },
}

/// An operator's change of a group.
#[derive(Clone, Debug, PartialEq)]
pub enum AdminChange {
    /// Start monitoring a new group.
    Monitor {
        /// Its master.
        master: NodeId,
        /// Its options.
        options: GroupOptions,
    },
    /// Replace the group's options (the shell merges the operator's changes into the
    /// current ones).
    Set {
        /// The new options.
        options: GroupOptions,
    },
    /// Stop monitoring the group.
    Remove,
    /// Forget the discovered replicas (they are found again in the master's INFO).
    Reset,
}

/// A message of the voter-set agreement (docs/MEMBERSHIP.md): single-decree Paxos per epoch.
#[derive(Clone, Debug, Eq, PartialEq)]
pub enum MemberMsg {
    /// A sentinel that has not joined a cluster asks to be added to the voter set.
    Join {
        /// Its state file's random id (`DurableMembers::incarnation`): a voter that asks again
        /// with the id it was admitted with only missed the commit; with another, it lost its
        /// state.
        incarnation: u64,
    },
    /// Phase 1a: promise to ignore ballots below `ballot` in this instance.
    Prepare {
        /// The proposer's ballot.
        ballot: Ballot,
    },
    /// Phase 1b.
    Promise {
        /// The ballot promised.
        ballot: Ballot,
        /// The set this acceptor accepted in the instance, with its ballot.
        accepted: Option<(Ballot, Vec<SentinelId>)>,
        /// The incarnations of the joiners of that set (`Accept::incarnations`).
        accepted_incarnations: Vec<(SentinelId, u64)>,
        /// The highest group term this acceptor knows: group elections of the next epoch
        /// use terms above it.
        term: Term,
        /// Per group, the newest config epoch this acceptor holds or may soon see (a term it
        /// voted in that is not settled yet); only entries above 0.
        fences: Vec<(GroupName, ConfigEpoch)>,
        /// How long until every lease this acceptor granted has expired (it grants no more
        /// until it adopts the next set).
        lease_wait: Duration,
    },
    /// Phase 2a: accept `voters` as the next voter set.
    Accept {
        /// The proposer's ballot.
        ballot: Ballot,
        /// The proposed set.
        voters: Vec<SentinelId>,
        /// The incarnation each sentinel it admits asked to join with: part of the value, so
        /// that whoever commits it can recognise a joiner that only missed the commit.
        incarnations: Vec<(SentinelId, u64)>,
    },
    /// Phase 2b.
    Accepted {
        /// The ballot accepted.
        ballot: Ballot,
    },
    /// The acceptor promised a higher ballot.
    Nack {
        /// The ballot it promised.
        promised: Ballot,
    },
    /// The voter set of `epoch` was decided.
    Commit {
        /// The set.
        voters: Vec<SentinelId>,
        /// Group elections of this epoch use terms above it.
        floor: Term,
        /// Per group, the config epoch a sentinel must hold to grant leases.
        fences: Vec<(GroupName, ConfigEpoch)>,
        /// The state-file id each admitted voter asked to join with, where known.
        incarnations: Vec<(SentinelId, u64)>,
    },
}

/// A valid answer to a probe.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub struct ProbeReply {
    /// Which valid reply it was.
    pub status: ProbeStatus,
    /// The node's monotonic clock when it answered, if it supports leases (Vigil backend only).
    pub clock: Option<NodeClock>,
}

/// The replies to PING that prove a node alive.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub enum ProbeStatus {
    /// `+PONG`.
    Pong,
    /// `-LOADING`: alive, loading its dataset.
    Loading,
    /// `-MASTERDOWN`: alive, a replica whose link is down.
    MasterDown,
}

/// The INFO/ROLE fields the core acts on.
#[derive(Clone, Debug, Eq, PartialEq)]
pub struct NodeInfo {
    /// `run_id`; a change means the node restarted.
    pub run_id: RunId,
    /// `role` and, for a replica, its master and link.
    pub role: NodeRole,
    /// `master_replid`: offsets compare only between nodes of one history.
    pub replid: ReplId,
    /// `master_replid2`: the history this node's data continued from (psync2), or zero: the
    /// one a promoted node followed, a restarted master's previous own id, or the id a replica
    /// had before a partial resync with a master that changed it.
    pub replid2: ReplId,
    /// `second_repl_offset` − 1: the data up to this offset also belongs to history `replid2`.
    pub replid2_until: ReplOffset,
    /// `master_repl_offset` (master) or `slave_repl_offset` (replica).
    pub offset: ReplOffset,
    /// `slave_priority`.
    pub priority: Priority,
    /// The node's data-centre label, if any.
    pub dc: Option<Dc>,
    /// `true` when the node has no data and no history (it just restarted empty).
    pub empty: bool,
}

/// The role a data node reports.
#[derive(Clone, Debug, Eq, PartialEq)]
pub enum NodeRole {
    /// `role:master`, with the replicas it lists.
    Master {
        /// `slaveN:` lines, resolved to node ids by the shell.
        replicas: Vec<NodeId>,
    },
    /// `role:slave`.
    Replica {
        /// `master_host`/`master_port`, resolved.
        master: NodeId,
        /// `master_link_status:up`.
        link_up: bool,
    },
}

/// A message between sentinels (a `vigil.v1.Envelope` on the wire).
#[derive(Clone, Debug, PartialEq)]
pub enum Gossip {
    /// My subjective opinion of `group`'s master, pushed on every change.
    Opinion {
        /// The group.
        group: GroupName,
        /// The master the opinion is about (ignored if it is not the receiver's master).
        master: NodeId,
        /// `true` for SDOWN.
        down: bool,
    },
    /// A candidate asks for a vote.
    RequestVote {
        /// The group.
        group: GroupName,
        /// The candidate's term.
        term: Term,
        /// The candidate's config epoch; a voter with a newer one refuses.
        epoch: ConfigEpoch,
        /// Why the candidate runs.
        reason: ElectionReason,
        /// The candidate's master of the group (for a `Monitor`, the new group's), so that a
        /// voter that does not know the group can record its vote.
        master: NodeId,
        /// The candidate's `DurableGroup::agreed`; for an operator's change, a voter that
        /// holds a newer one refuses (the change would be made on stale options).
        agreed: Term,
        /// The epoch of the candidate's voter set; a voter of another epoch refuses.
        members: MembersEpoch,
    },
    /// A voter's answer.
    Vote {
        /// The group.
        group: GroupName,
        /// The term voted in.
        term: Term,
        /// Whether the vote is granted.
        granted: bool,
        /// How long, on the voter's clock, until every lease it granted in the group expires.
        lease_wait: Duration,
        /// With a granted vote from a voter of the candidate's config epoch: the voter's
        /// lineage of that epoch's master (see `DurableGroup::lineage`), so that the leader
        /// knows every history the master accepted writes under; empty otherwise.
        lineage: Vec<(ReplId, ReplOffset)>,
        /// With a granted vote: the history edges the voter read (`(child, parent, offset)`,
        /// see `Group::edges`), facts of any epoch, so that the leader can place histories
        /// it never saw itself; empty otherwise.
        edges: Vec<(ReplId, ReplId, ReplOffset)>,
    },
    /// An operator paused (or resumed) automatic failover of `group` at the sender; every
    /// sentinel applies it, so that no majority is left to elect a leader for the group.
    Maintenance {
        /// The group.
        group: GroupName,
        /// `true` to pause.
        paused: bool,
    },
    /// A candidate gives up `term` without promoting anything, so its voters may lift their fence.
    Abandoned {
        /// The group.
        group: GroupName,
        /// The abandoned term.
        term: Term,
    },
    /// A new configuration (sent on change and in every heartbeat).
    Config {
        /// The group.
        group: GroupName,
        /// Its epoch.
        epoch: ConfigEpoch,
        /// Its master.
        master: NodeId,
        /// What the sender knows of that master's history (`DurableGroup::lineage` of this
        /// epoch): the promoting leader read it in the reply that confirmed the promotion, and
        /// the other sentinels may never read it as a master (a stale leader can demote it at
        /// once), yet a later leader must compare replicas along it.
        lineage: Vec<(ReplId, ReplOffset)>,
        /// The term of the operator's last change (`DurableGroup::agreed`), which `options`,
        /// `removed` and `reset` belong to: adopted apart from `epoch` and `master`.
        agreed: Term,
        /// The options an operator agreed for the group, if any (`DurableGroup::options`).
        options: Option<GroupOptions>,
        /// The group was removed (`DurableGroup::removed`).
        removed: bool,
        /// The term of the last reset (`DurableGroup::reset`).
        reset: Term,
    },
    /// Asks the receiver for its `Config` of `group` (the sender's heartbeat showed a newer
    /// one, or a group the receiver does not know).
    ConfigPull {
        /// The group.
        group: GroupName,
    },
    /// Before reconfiguring a data node that disagrees with its config, a sentinel asks every
    /// voter, after the INFO it acts on, whether it knows a newer config for the group, or is
    /// fenced by a vote in a term above its config (a failover may be under way).
    ConfigQuery {
        /// The group.
        group: GroupName,
        /// The asker's config epoch.
        epoch: ConfigEpoch,
        /// The asker's master (a receiver with an older epoch adopts it).
        master: NodeId,
        /// Echoed in the answer; random, so that an answer to an earlier query never counts.
        id: u64,
    },
    /// The answer to a `ConfigQuery`, sent after the receiver saw it.
    ConfigAnswer {
        /// The group.
        group: GroupName,
        /// The `id` of the query.
        id: u64,
        /// The answerer's config epoch (after adopting the asker's if it was newer).
        epoch: ConfigEpoch,
        /// The answerer's master.
        master: NodeId,
        /// The answerer voted in a term above its config epoch that no config and no
        /// abandonment settled yet.
        fenced: bool,
    },
    /// Periodic liveness: the sender's voter set and every group's config.
    Heartbeat {
        /// The sender's voter set, for membership gossip.
        voters: Vec<SentinelId>,
        /// `(group, epoch, master, agreed)` for every group the sender knows, `agreed` being
        /// the term of the operator's last change of it (`DurableGroup::agreed`).
        configs: Vec<(GroupName, ConfigEpoch, NodeId, Term)>,
        /// The sender's cluster (`DurableMembers::cluster`).
        cluster: u64,
        /// The epoch of the sender's voter set; a peer that knows a newer one sends it.
        members: MembersEpoch,
    },
    /// The agreement on the voter set (`members`): one message of a cluster's Paxos instance
    /// `epoch`, or a commit of the voter set of `epoch`.
    Membership {
        /// The sender's cluster; 0 from a sentinel that has not joined one.
        cluster: u64,
        /// The instance (`Commit`: the epoch of the committed set).
        epoch: MembersEpoch,
        /// The message.
        msg: MemberMsg,
    },
    /// A sentinel introduces itself (via seeds or the `__sentinel__:hello` channel).
    Hello,
}
