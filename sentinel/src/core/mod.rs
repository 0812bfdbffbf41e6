//! The sans-IO sentinel core: one `Sentinel` value per process, driven by the shell.
//!
//! Owns the whole decision logic: failure detection (`monitor`), elections (`election`),
//! failovers and switchovers (`failover`), peers, heartbeats and config convergence (`peers`),
//! operators' changes of groups (`admin`), the voter set and its agreed changes (`members`).
//! Invariants: no socket, file, clock or unseeded randomness in here; an action that depends on
//! durable state (a vote, a vote request, a promotion, a new config) is released only after the
//! `Persist` carrying that state was confirmed by `Input::Persisted`.

mod action;
mod admin;
mod config;
mod election;
mod failover;
mod input;
mod members;
mod monitor;
mod peers;
mod timers;
mod types;

#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::{Duration, Instant};

use rand::SeedableRng;
use rand::rngs::SmallRng;
use tracing::debug;

pub use action::{
    AbortReason, Action, AdminError, AdminKind, DurableGroup, DurableMembers, DurableState,
    ElectionReason, Event, Lease,
};
#[cfg(test)]
pub use config::Bugs;
pub use config::{ConfigError, CoreConfig, GroupConfig, GroupOptions};
pub use input::{
    AdminChange, Gossip, Input, MemberMsg, NodeInfo, NodeRole, ProbeReply, ProbeStatus,
};
pub use members::{MAX_VOTERS, MEMBER_REQUEST_TIMEOUT};
pub use timers::Timer;
pub use types::{
    Ballot, ConfigEpoch, Dc, GroupName, InfoSeq, MembersEpoch, NodeClock, NodeId, PersistVersion,
    Priority, Quorum, ReplId, ReplOffset, RunId, SentinelId, Term,
};

use election::Election;
use failover::Failover;
use monitor::NodeView;
use timers::Timers;

/// One sentinel's state machine.
///
/// Calling protocol: after every `handle` or `handle_timeout`, drain `poll_action` until it
/// returns `None`, execute the actions in order (awaiting only `Action::Persist`, whose
/// completion is reported back with `Input::Persisted`), then re-read `poll_timeout` and call
/// `handle_timeout` when it passes. `now` never goes backwards between calls.
#[derive(Debug)]
pub struct Sentinel {
    id: SentinelId,
    cfg: CoreConfig,
    rng: SmallRng,
    voters: BTreeSet<SentinelId>,
    groups: BTreeMap<GroupName, Group>,
    nodes: BTreeMap<NodeId, NodeView>,
    timers: Timers,
    /// Actions ready for the shell.
    out: VecDeque<Action>,
    /// Actions waiting for the `Persist` of version `awaiting` to be confirmed.
    held: VecDeque<Action>,
    version: PersistVersion,
    awaiting: Option<PersistVersion>,
    info_seq: InfoSeq,
    /// When each peer was last heard from, for the contact rule of convergence.
    last_heard: BTreeMap<SentinelId, Instant>,
    /// The voter set's epoch and this sentinel's acceptor state (durable).
    members: DurableMembers,
    /// The voter-set change this sentinel proposes, if any.
    proposal: Option<members::Proposal>,
    /// The highest ballot round seen, so that a new round outbids it.
    max_round: u64,
    /// When this sentinel first promised in its epoch's instance (take-over of a quiet
    /// proposer).
    promised_at: Option<Instant>,
    /// Unjoined: the peers asked to admit this sentinel (bounded).
    joiners: BTreeSet<SentinelId>,
    /// When this sentinel adopted its current voter set (since process start).
    members_since: Option<Instant>,
}

/// A read-only summary of one group, as `Sentinel::group_view` reports it.
#[derive(Clone, Debug, Eq, PartialEq)]
pub struct GroupView {
    /// The group.
    pub name: GroupName,
    /// The config epoch of `master`.
    pub epoch: ConfigEpoch,
    /// The master of the winning config.
    pub master: NodeId,
    /// The known replicas.
    pub replicas: Vec<NodeId>,
    /// The highest term known.
    pub term: Term,
    /// The group's quorum.
    pub quorum: Quorum,
    /// This sentinel sees the master subjectively down.
    pub master_down: bool,
    /// The master is objectively down.
    pub odown: bool,
    /// This sentinel leads a failover of the group now.
    pub failing_over: bool,
    /// Automatic failover is paused (maintenance).
    pub paused: bool,
}

/// Per-group state, durable and volatile.
#[derive(Debug)]
struct Group {
    cfg: GroupConfig,
    durable: DurableGroup,
    /// Peers' SDOWN opinions of the current master, with the time they arrived.
    opinions: BTreeMap<SentinelId, (bool, Instant)>,
    odown: bool,
    /// Maintenance mode: no automatic failover is started or voted for.
    paused: bool,
    election: Election,
    failover: Option<Failover>,
    /// When this sentinel last granted a lease to any node of the group (sentinel clock).
    last_lease: Option<Instant>,
    /// When the current lease fence started (this sentinel voted in a term above the epoch).
    fenced_since: Option<Instant>,
    /// Nodes disagreeing with the winning config, and since when.
    disagree_since: BTreeMap<NodeId, Instant>,
    /// The config confirmation under way before reconfiguring disagreeing nodes, if any.
    convergence_check: Option<monitor::ConvergenceCheck>,
    /// When this sentinel last pushed its opinion of the master to its peers.
    last_opinion_push: Option<Instant>,
    /// Every "history `child` continued from history `parent` at `offset`" this sentinel read
    /// in any node's INFO (`master_replid`, `master_replid2`, `second_repl_offset` − 1). These
    /// are facts about replication ids, true in every epoch, so they are kept across configs:
    /// Redis remembers only one secondary id, so a node that restarted twice no longer shows
    /// where its data came from, but an edge read before the second restart still does.
    /// Bounded by `MAX_EDGES`.
    edges: BTreeSet<(ReplId, ReplId, ReplOffset)>,
    /// The replica an operator chose for the latest switchover request; the switchover's
    /// failover promotes only it.
    switchover_target: Option<NodeId>,
    /// The operator's change this sentinel is running for, if any.
    admin: Option<admin::Pending>,
    /// The operator's change (`DurableGroup::agreed`) each peer last reported for the group
    /// (heartbeats), to tell when a change is held by a majority.
    peer_agreed: BTreeMap<SentinelId, Term>,
}

/// The most history edges kept per group; a group sees a few per failover or restart.
const MAX_EDGES: usize = 1024;

/// The most groups a sentinel keeps, removed ones included.
pub const MAX_GROUPS: usize = 4096;

impl Sentinel {
    /// A sentinel with no persisted state: voters and groups come from `config`, which must have
    /// passed `CoreConfig::validate`. It founds a cluster with `config.voters` at membership
    /// epoch 1, or (`config.joining`) starts with no voter set and asks its peers to admit it.
    pub fn new(id: SentinelId, config: CoreConfig, seed: u64, now: Instant) -> Sentinel {
        let groups = config
            .groups
            .iter()
            .map(|g| (g.name.clone(), DurableGroup::fresh(g)))
            .collect();
        let (voters, mut members) = if config.joining {
            (BTreeSet::new(), DurableMembers::default())
        } else {
            (
                config.voters.clone(),
                members::founded(&config.voters, config.founding_nonce),
            )
        };
        members.incarnation = {
            use rand::Rng;
            SmallRng::seed_from_u64(seed ^ 0x1_C4A8_7A71).random::<u64>()
        };
        let state = DurableState {
            version: PersistVersion(0),
            id,
            voters,
            members,
            groups,
        };
        let mut s = Sentinel::build(config, state, seed, now);
        // The initial state is written before anything else happens.
        s.persist();
        s
    }

    /// A sentinel restarted from its last durable state. Groups in `config` that the state does
    /// not know start fresh; groups the state knows keep their term, vote, epoch and master.
    pub fn recover(config: CoreConfig, state: DurableState, seed: u64, now: Instant) -> Sentinel {
        let mut s = Sentinel::build(config, state, seed, now);
        for g in s.groups.values_mut() {
            // The leases this sentinel granted just before it stopped are unknown; assume one
            // was granted right now, so that a vote waits for it.
            g.last_lease = Some(now);
            if g.is_fenced() {
                g.fenced_since = Some(now);
            }
        }
        if s.in_member_change() {
            // A promise of an instance nobody may finish: take it over in time.
            s.promised_at = Some(now);
            s.max_round = s.members.promised.round;
            s.arm_member_timer(now);
        }
        s
    }

    /// Feeds one observed fact.
    pub fn handle(&mut self, now: Instant, input: Input) {
        match input {
            Input::NodeReplied { node, reply } => self.handle_node_replied(now, node, reply),
            Input::ProbeFailed { node } => debug!(%node, "probe failed"),
            Input::InfoReceived { node, seq, info } => self.handle_info(now, node, seq, info),
            Input::GossipReceived { from, msg } => self.handle_gossip(now, from, msg),
            Input::Persisted { version } => self.handle_persisted(version),
            Input::FailoverRequested { group } => {
                self.handle_admin_failover(now, &group, ElectionReason::Manual, None)
            }
            Input::SwitchoverRequested { group, target } => {
                self.handle_admin_failover(now, &group, ElectionReason::Switchover, target)
            }
            Input::LeasesRevoked { node, term } => self.handle_leases_revoked(now, node, term),
            Input::ReplicaofAcknowledged { node } => self.handle_replicaof_acknowledged(node),
            Input::MaintenanceRequested { group, paused } => {
                self.handle_maintenance(now, &group, paused)
            }
            Input::AdminRequested { id, group, change } => {
                self.handle_admin(now, id, group, change)
            }
            Input::ForgetRequested { id, sentinel } => self.handle_forget(now, id, sentinel),
        }
    }

    /// Fires every timer whose deadline is at or before `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some(timer) = self.timers.pop_expired(now) {
            match timer {
                Timer::Probe(node) => self.on_probe_timer(now, node),
                Timer::Info(node) => self.on_info_timer(now, node),
                Timer::Down(node) => self.on_down_timer(now, node),
                Timer::Heartbeat => self.on_heartbeat_timer(now),
                Timer::Election(group) => self.on_election_timer(now, &group),
                Timer::Failover(group) => self.on_failover_timer(now, &group),
                Timer::Membership => self.on_member_timer(now),
            }
        }
    }

    /// The next instant at which `handle_timeout` must be called. Changes after any `handle*`.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.next()
    }

    /// The next action for the shell, in order.
    pub fn poll_action(&mut self) -> Option<Action> {
        self.out.pop_front()
    }

    /// This sentinel's id.
    pub fn id(&self) -> SentinelId {
        self.id
    }

    /// The winning config this sentinel knows for `group`: `(epoch, master)`.
    pub fn config_of(&self, group: &GroupName) -> Option<(ConfigEpoch, NodeId)> {
        self.groups
            .get(group)
            .map(|g| (g.durable.epoch, g.durable.master))
    }

    /// Whether this sentinel is leading a failover of `group` right now.
    pub fn is_failing_over(&self, group: &GroupName) -> bool {
        self.groups.get(group).is_some_and(|g| g.failover.is_some())
    }

    /// What this sentinel believes of `group` now, for queries (control API, RESP port).
    pub fn group_view(&self, group: &GroupName) -> Option<GroupView> {
        let g = self.groups.get(group).filter(|g| !g.durable.removed)?;
        let master = g.durable.master;
        Some(GroupView {
            name: group.clone(),
            epoch: g.durable.epoch,
            master,
            replicas: g
                .durable
                .replicas
                .iter()
                .copied()
                .filter(|r| *r != master)
                .collect(),
            term: g.durable.term,
            quorum: g.cfg.quorum,
            master_down: self.nodes.get(&master).is_some_and(|v| v.down),
            odown: g.odown,
            failing_over: g.failover.is_some(),
            paused: g.paused,
        })
    }

    /// The names of every monitored group (removed ones left out).
    pub fn group_names(&self) -> Vec<GroupName> {
        self.groups
            .iter()
            .filter(|(_, g)| !g.durable.removed)
            .map(|(n, _)| n.clone())
            .collect()
    }

    /// Whether this sentinel keeps any state for `group` (removed groups included).
    pub fn knows_group(&self, group: &GroupName) -> bool {
        self.groups.contains_key(group)
    }

    /// The highest term or epoch this sentinel knows for `group`, removed groups included.
    pub fn group_term(&self, group: &GroupName) -> Option<u64> {
        self.groups
            .get(group)
            .map(|g| g.durable.term.0.max(g.durable.epoch.0))
    }

    /// The options of a monitored group as they apply now.
    pub fn group_options(&self, group: &GroupName) -> Option<GroupOptions> {
        self.groups
            .get(group)
            .filter(|g| !g.durable.removed)
            .map(|g| g.cfg.options())
    }

    /// The core's configuration (timings, and the groups of the config file).
    pub fn config(&self) -> &CoreConfig {
        &self.cfg
    }

    /// Whether this sentinel sees `node` subjectively down.
    pub fn node_down(&self, node: NodeId) -> bool {
        self.nodes.get(&node).is_some_and(|v| v.down)
    }

    /// The voter set.
    pub fn voters(&self) -> &BTreeSet<SentinelId> {
        &self.voters
    }

    /// The epoch of the voter set (0: not joined yet).
    pub fn members(&self) -> &DurableMembers {
        &self.members
    }

    /// Whether this sentinel is a voter of its cluster (joined, and not removed).
    pub fn voting(&self) -> bool {
        self.is_voter()
    }

    /// The durable state as it is in memory now (persisted or about to be).
    pub fn durable(&self) -> DurableState {
        DurableState {
            version: self.version,
            id: self.id,
            voters: self.voters.clone(),
            members: self.members.clone(),
            groups: self
                .groups
                .iter()
                .map(|(name, g)| (name.clone(), g.durable.clone()))
                .collect(),
        }
    }

    fn build(cfg: CoreConfig, state: DurableState, seed: u64, now: Instant) -> Sentinel {
        let mut s = Sentinel {
            id: state.id,
            rng: SmallRng::seed_from_u64(seed),
            voters: state.voters,
            groups: BTreeMap::new(),
            nodes: BTreeMap::new(),
            timers: Timers::default(),
            out: VecDeque::new(),
            held: VecDeque::new(),
            version: state.version,
            awaiting: None,
            info_seq: InfoSeq(0),
            last_heard: BTreeMap::new(),
            members: state.members,
            proposal: None,
            max_round: 0,
            promised_at: None,
            joiners: BTreeSet::new(),
            members_since: Some(now),
            cfg,
        };
        let mut durable_groups = state.groups;
        for gcfg in s.cfg.groups.clone() {
            let durable = durable_groups
                .remove(&gcfg.name)
                .unwrap_or_else(|| DurableGroup::fresh(&gcfg));
            if durable.removed || durable.options.is_some() {
                tracing::warn!(group = %gcfg.name, removed = durable.removed, "an operator's change of this group overrides the config file");
            }
            s.insert_group(now, gcfg, durable);
        }
        // Groups an operator added (or removed) at run time live only in the state.
        for (name, durable) in durable_groups {
            let quorum = Quorum(std::num::NonZeroU8::MIN);
            let gcfg = GroupConfig::new(name.as_str(), durable.master, Vec::new(), quorum);
            s.insert_group(now, gcfg, durable);
        }
        s.timers
            .set(Timer::Heartbeat, now + s.cfg.heartbeat_interval);
        s
    }

    /// Adds a group (options from `durable` override `cfg`'s) and watches its members unless
    /// it is removed.
    fn insert_group(&mut self, now: Instant, mut cfg: GroupConfig, durable: DurableGroup) {
        if let Some(o) = &durable.options {
            cfg.apply(o);
        }
        let name = cfg.name.clone();
        let members: Vec<NodeId> = std::iter::once(durable.master)
            .chain(durable.replicas.iter().copied())
            .collect();
        let removed = durable.removed;
        self.groups.insert(
            name.clone(),
            Group {
                cfg,
                durable,
                opinions: BTreeMap::new(),
                odown: false,
                paused: false,
                election: Election::Idle,
                failover: None,
                last_lease: None,
                fenced_since: None,
                disagree_since: BTreeMap::new(),
                convergence_check: None,
                last_opinion_push: None,
                edges: BTreeSet::new(),
                switchover_target: None,
                admin: None,
                peer_agreed: BTreeMap::new(),
            },
        );
        if !removed {
            for node in members {
                self.watch_node(now, &name, node);
            }
        }
    }

    /// Queues an action behind any unconfirmed `Persist`.
    fn emit(&mut self, action: Action) {
        if self.awaiting.is_some() {
            self.held.push_back(action);
        } else {
            self.out.push_back(action);
        }
    }

    /// Queues an action that does not depend on durable state, ahead of held ones.
    fn emit_now(&mut self, action: Action) {
        self.out.push_back(action);
    }

    fn publish(&mut self, event: Event) {
        self.emit(Action::Publish(event));
    }

    /// Writes the current durable state; every action emitted after this waits for it.
    fn persist(&mut self) {
        self.version = PersistVersion(self.version.0 + 1);
        let state = self.durable();
        self.out.push_back(Action::Persist(state));
        self.awaiting = Some(self.version);
    }

    fn handle_persisted(&mut self, version: PersistVersion) {
        let Some(awaiting) = self.awaiting else {
            return;
        };
        // Versions are confirmed in order; a confirmation of an older version releases
        // nothing, since held actions may depend on the newer one.
        if version < awaiting {
            return;
        }
        self.awaiting = None;
        self.out.extend(self.held.drain(..));
    }

    /// Sends `msg` to every other voter.
    fn broadcast(&mut self, msg: Gossip) {
        let peers: Vec<SentinelId> = self.peers().collect();
        for to in peers {
            self.emit(Action::SendGossip {
                to,
                msg: msg.clone(),
            });
        }
    }

    fn peers(&self) -> impl Iterator<Item = SentinelId> + '_ {
        self.voters.iter().copied().filter(move |v| *v != self.id)
    }

    /// Votes needed to win: a majority of the voter set.
    fn majority(&self) -> usize {
        self.voters.len() / 2 + 1
    }

    /// `d × (1 + clock_rate_bound)`: a duration measured on another clock, made safe on ours.
    fn skewed(&self, d: Duration) -> Duration {
        d.mul_f64(1.0 + self.cfg.clock_rate_bound)
    }

    fn random_duration(&mut self, max: Duration) -> Duration {
        use rand::Rng;
        if max.is_zero() {
            return Duration::ZERO;
        }
        Duration::from_nanos(self.rng.random_range(0..=max.as_nanos() as u64))
    }

    #[cfg(test)]
    fn bugs(&self) -> config::Bugs {
        self.cfg.bugs
    }
}

impl Group {
    /// Whether this sentinel stopped granting leases: it voted in a term that no config and no
    /// abandonment has settled yet.
    fn is_fenced(&self) -> bool {
        match self.durable.vote {
            Some((term, _)) => {
                // Votes in terms up to the config epoch are settled by the config: of the
                // votes since `fence_from`, only those above the epoch can still promote.
                // (Without this, a vote abandoned after a lower epoch was installed never
                // settled, and the sentinel stayed fenced for good.)
                let from = self
                    .durable
                    .fence_from
                    .max(Term(self.durable.epoch.0.saturating_add(1)));
                let settled = term <= self.durable.abandoned && from >= term;
                ConfigEpoch::of_term(term) > self.durable.epoch && !settled
            }
            None => false,
        }
    }

    /// Records a vote (or a self-vote) in `term` for `candidate`.
    fn record_vote(&mut self, term: Term, candidate: SentinelId) {
        if !self.is_fenced() {
            self.durable.fence_from = term;
        }
        self.durable.vote = Some((term, candidate));
    }

    fn voted_term(&self) -> Term {
        self.durable.vote.map(|(t, _)| t).unwrap_or_default()
    }
}
