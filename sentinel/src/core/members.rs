//! Membership: the voter set changes only by agreement (docs/MEMBERSHIP.md).
//!
//! Owns the handlers of `MemberMsg`, `Proposal` (a change this sentinel proposes), joins,
//! operators' forgets and the adoption of a decided voter set. Each change is one
//! single-decree Paxos instance keyed by the epoch it starts from and decided by a majority of
//! that epoch's voters; the commit carries the whole set, its epoch and a term floor.
//! Invariants: a promise or an accept is durable before its reply leaves (it is queued behind
//! the `Persist`); an acceptor refuses every instance but its own epoch's, so each epoch has one
//! decided set; a sentinel that promised in its epoch's instance grants no group vote of that
//! epoch until it adopts the next set; group votes need voter and candidate at one epoch and a
//! term above the floor, so no (group, term) can have leaders counted against two voter sets.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use tracing::{debug, info, warn};

use super::Sentinel;
use super::action::{Action, AdminError, DurableMembers, Event};
use super::election::Election;
use super::input::{Gossip, MemberMsg};
use super::timers::Timer;
use super::types::{Ballot, ConfigEpoch, GroupName, MembersEpoch, SentinelId, Term};

/// The most voters a cluster may have (the transport's peer limit).
pub const MAX_VOTERS: usize = 64;

/// How long an operator's voter-set change may take before it is reported as failed.
pub const MEMBER_REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// The most peers an unjoined sentinel keeps asking to admit it.
const MAX_JOINERS: usize = 64;

/// How far ahead of ours a ballot round or a membership epoch may be.
const MAX_JUMP: u64 = 1 << 20;

/// A decided voter set, as a commit carries it.
pub(super) struct Decided {
    cluster: u64,
    epoch: MembersEpoch,
    voters: BTreeSet<SentinelId>,
    floor: Term,
    fences: BTreeMap<GroupName, ConfigEpoch>,
    incarnations: BTreeMap<SentinelId, u64>,
}

/// A proposed set with the incarnation of each sentinel it admits, and its ballot.
type Value = (Ballot, BTreeSet<SentinelId>, BTreeMap<SentinelId, u64>);

/// What an acceptor promised with.
pub(super) struct Promised {
    accepted: Option<Value>,
    term: Term,
    fences: Vec<(GroupName, ConfigEpoch)>,
    lease_wait: Duration,
}

/// A voter-set change.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub(super) enum Change {
    /// Admit a sentinel that asked to join, with the incarnation it asked with.
    Add(SentinelId, u64),
    /// An operator's forget.
    Remove(SentinelId),
    /// Decide the open instance whose proposer went quiet (its accepted set, if any, or the
    /// current set unchanged), so that its acceptors vote in group elections again.
    Finish,
}

impl Change {
    fn apply(self, voters: &BTreeSet<SentinelId>) -> BTreeSet<SentinelId> {
        let mut next = voters.clone();
        match self {
            Change::Add(id, _) => {
                next.insert(id);
            }
            Change::Remove(id) => {
                next.remove(&id);
            }
            Change::Finish => {}
        }
        next
    }

    /// The incarnation of the sentinel the change admits, if any.
    fn incarnations(self) -> BTreeMap<SentinelId, u64> {
        match self {
            Change::Add(id, inc) => BTreeMap::from([(id, inc)]),
            Change::Remove(_) | Change::Finish => BTreeMap::new(),
        }
    }

    fn holds(self, voters: &BTreeSet<SentinelId>) -> bool {
        match self {
            Change::Add(id, _) => voters.contains(&id),
            Change::Remove(id) => !voters.contains(&id),
            Change::Finish => true,
        }
    }
}

/// A change this sentinel proposes.
#[derive(Debug)]
pub(super) struct Proposal {
    change: Change,
    /// The operator's request id and its deadline, if an operator asked.
    request: Option<(u64, Instant)>,
    /// The instance (the epoch the change starts from) and the ballot of the current round.
    epoch: MembersEpoch,
    ballot: Ballot,
    phase: Phase,
    /// When the current round is given up and a higher ballot tried.
    retry_at: Instant,
    /// An accept of this proposal went out: acceptors may hold it even if it is given up.
    accept_sent: bool,
}

#[derive(Debug)]
enum Phase {
    /// Preempted or refused: waiting for `retry_at`.
    Waiting,
    /// Collecting promises (each with what the acceptor accepted), the highest term known,
    /// the acceptors' config fences and the longest wait for their leases.
    Preparing {
        promises: BTreeMap<SentinelId, Option<Value>>,
        term: Term,
        fences: BTreeMap<GroupName, ConfigEpoch>,
        lease_wait: Duration,
    },
    /// Collecting accepts of `voters`; the commit waits for `leases_end` too.
    Accepting {
        voters: BTreeSet<SentinelId>,
        incarnations: BTreeMap<SentinelId, u64>,
        floor: Term,
        fences: BTreeMap<GroupName, ConfigEpoch>,
        accepted: BTreeSet<SentinelId>,
        leases_end: Instant,
    },
}

/// The id of a cluster founded with `voters` and `nonce`: every sentinel founding it from the
/// same set and nonce computes the same id (FNV-1a over the nonce and the sorted ids); never 0,
/// which means "none".
pub(super) fn cluster_id(voters: &BTreeSet<SentinelId>, nonce: u64) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let bytes = nonce
        .to_le_bytes()
        .into_iter()
        .chain(voters.iter().flat_map(|v| v.0.to_le_bytes()));
    for b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h.max(1)
}

/// The durable membership of a sentinel that founds its cluster with `voters`.
pub(super) fn founded(voters: &BTreeSet<SentinelId>, nonce: u64) -> DurableMembers {
    DurableMembers {
        cluster: cluster_id(voters, nonce),
        epoch: MembersEpoch(1),
        ..DurableMembers::default()
    }
}

impl Sentinel {
    /// Whether this sentinel is a voter of a cluster it joined.
    pub(super) fn is_voter(&self) -> bool {
        self.members.epoch > MembersEpoch(0) && self.voters.contains(&self.id)
    }

    /// Whether this sentinel promised in its epoch's instance: until it adopts the next set it
    /// grants no group vote and runs for no term.
    pub(super) fn in_member_change(&self) -> bool {
        self.members.promised != Ballot::default()
    }

    /// The membership epoch of the voter set.
    pub(super) fn members_epoch(&self) -> MembersEpoch {
        self.members.epoch
    }

    /// The term floor of the current epoch.
    pub(super) fn members_floor(&self) -> Term {
        self.members.floor
    }

    fn same_cluster(&self, cluster: u64) -> bool {
        self.members.cluster == 0 || cluster == 0 || cluster == self.members.cluster
    }

    /// The highest term this sentinel knows or voted in, over every group.
    fn max_term(&self) -> Term {
        self.groups
            .values()
            .map(|g| g.durable.term.max(g.voted_term()))
            .max()
            .unwrap_or_default()
            .max(self.members.floor)
    }

    /// Per group, the newest config epoch this sentinel holds or may soon see: its config's,
    /// or a term it voted in that nothing settled yet.
    fn own_fences(&self) -> BTreeMap<GroupName, ConfigEpoch> {
        self.groups
            .iter()
            .map(|(name, g)| {
                let voted = if g.is_fenced() {
                    ConfigEpoch::of_term(g.voted_term())
                } else {
                    ConfigEpoch(0)
                };
                (name.clone(), g.durable.epoch.max(voted))
            })
            .filter(|(_, e)| *e > ConfigEpoch(0))
            .collect()
    }

    /// How long until every lease this sentinel granted (in any group) has expired.
    fn own_lease_wait(&self, now: Instant) -> Duration {
        self.groups
            .keys()
            .map(|name| self.lease_wait(now, name))
            .max()
            .unwrap_or_default()
    }

    /// The config epoch this sentinel must hold for `group` before it grants a lease.
    pub(super) fn lease_fence(&self, group: &GroupName) -> ConfigEpoch {
        self.members.fences.get(group).copied().unwrap_or_default()
    }

    fn member_msg(&self, msg: MemberMsg) -> Gossip {
        Gossip::Membership {
            cluster: self.members.cluster,
            epoch: self.members.epoch,
            msg,
        }
    }

    fn member_send(&mut self, to: SentinelId, msg: MemberMsg) {
        let msg = self.member_msg(msg);
        self.emit(Action::SendGossip { to, msg });
    }

    /// Tells `to` the current voter set (it lags, or was removed, or lost a commit).
    pub(super) fn send_commit(&mut self, to: SentinelId) {
        if self.members.epoch == MembersEpoch(0) {
            return;
        }
        let msg = MemberMsg::Commit {
            voters: self.voters.iter().copied().collect(),
            floor: self.members.floor,
            fences: self
                .members
                .fences
                .iter()
                .map(|(g, e)| (g.clone(), *e))
                .collect(),
            incarnations: self
                .members
                .admitted
                .iter()
                .map(|(id, inc)| (*id, *inc))
                .collect(),
        };
        self.member_send(to, msg);
    }

    /// A peer connected. An unjoined sentinel asks it to be admitted (and again at every
    /// heartbeat until some peer admits it).
    pub(super) fn member_hello(&mut self, from: SentinelId) {
        if self.members.epoch > MembersEpoch(0) {
            return;
        }
        if self.joiners.len() < MAX_JOINERS {
            self.joiners.insert(from);
        }
        let incarnation = self.members.incarnation;
        self.member_send(from, MemberMsg::Join { incarnation });
    }

    /// The membership part of a heartbeat, from any sentinel of the cluster (a removed one
    /// too, so that it learns it was removed).
    pub(super) fn member_heartbeat(&mut self, from: SentinelId, cluster: u64, epoch: MembersEpoch) {
        let ours = self.members.epoch;
        if !self.same_cluster(cluster) || epoch == MembersEpoch(0) || ours == MembersEpoch(0) {
            return;
        }
        if ours > epoch {
            self.send_commit(from);
        } else if epoch > ours {
            // We lag (every voter we know may have been replaced meanwhile): our epoch in a
            // refusal makes the sender send us its set.
            let promised = self.members.promised;
            self.member_send(from, MemberMsg::Nack { promised });
        }
    }

    /// At every heartbeat: an unjoined sentinel asks again.
    pub(super) fn member_tick(&mut self) {
        if self.members.epoch > MembersEpoch(0) {
            return;
        }
        let joiners: Vec<SentinelId> = self.joiners.iter().copied().collect();
        for j in joiners {
            let incarnation = self.members.incarnation;
            self.member_send(j, MemberMsg::Join { incarnation });
        }
    }

    pub(super) fn handle_member(
        &mut self,
        now: Instant,
        from: SentinelId,
        cluster: u64,
        epoch: MembersEpoch,
        msg: MemberMsg,
    ) {
        if !self.same_cluster(cluster) {
            warn!(peer = %from, cluster, ours = self.members.cluster, "a sentinel of another cluster; ignored (was it founded separately?)");
            return;
        }
        if let Err(why) = self.check_member_msg(from, epoch, &msg) {
            debug!(peer = %from, why, "membership message refused");
            return;
        }
        match msg {
            MemberMsg::Join { incarnation } => self.handle_join(now, from, incarnation),
            MemberMsg::Commit {
                voters,
                floor,
                fences,
                incarnations,
            } => self.adopt_members(
                now,
                Decided {
                    cluster,
                    epoch,
                    voters: voters.into_iter().collect(),
                    floor,
                    fences: fences.into_iter().collect(),
                    incarnations: incarnations.into_iter().collect(),
                },
            ),
            msg => {
                if !self.is_voter() || !self.voters.contains(&from) {
                    debug!(peer = %from, "membership message from a non-voter ignored");
                    return;
                }
                if epoch < self.members.epoch {
                    // A lagging proposer or acceptor: it needs the set, not an answer.
                    self.send_commit(from);
                    return;
                }
                if epoch > self.members.epoch {
                    // We lag: our epoch in a refusal makes the sender send us its set.
                    let promised = self.members.promised;
                    self.member_send(from, MemberMsg::Nack { promised });
                    return;
                }
                match msg {
                    MemberMsg::Prepare { ballot } => self.on_prepare(now, from, ballot),
                    MemberMsg::Promise {
                        ballot,
                        accepted,
                        accepted_incarnations,
                        term,
                        fences,
                        lease_wait,
                    } => {
                        let accepted = accepted.map(|(b, v)| {
                            let incs = accepted_incarnations.into_iter().collect();
                            (b, v.into_iter().collect(), incs)
                        });
                        let promise = Promised {
                            accepted,
                            term,
                            fences,
                            lease_wait,
                        };
                        self.on_promise(now, from, ballot, promise)
                    }
                    MemberMsg::Accept {
                        ballot,
                        voters,
                        incarnations,
                    } => self.on_accept(
                        now,
                        from,
                        ballot,
                        voters.into_iter().collect(),
                        incarnations.into_iter().collect(),
                    ),
                    MemberMsg::Accepted { ballot } => self.on_accepted(now, from, ballot),
                    MemberMsg::Nack { promised } => self.on_nack(now, promised),
                    MemberMsg::Join { .. } | MemberMsg::Commit { .. } => {}
                }
            }
        }
    }

    /// Refuses what a correct sentinel never sends: a ballot in another proposer's name, a
    /// round or an epoch absurdly far ahead (it would push ours towards overflow), a commit
    /// from a sentinel of neither the old set nor the new one.
    fn check_member_msg(
        &self,
        from: SentinelId,
        epoch: MembersEpoch,
        msg: &MemberMsg,
    ) -> Result<(), &'static str> {
        let rounds = self.max_round.max(self.members.promised.round);
        let far = |round: u64| round > rounds.saturating_add(MAX_JUMP);
        match msg {
            MemberMsg::Prepare { ballot } | MemberMsg::Accept { ballot, .. } => {
                if ballot.by != from.0 {
                    return Err("a ballot in another sentinel's name");
                }
                if far(ballot.round) {
                    return Err("a ballot round far ahead of ours");
                }
            }
            MemberMsg::Nack { promised } if far(promised.round) => {
                return Err("a ballot round far ahead of ours");
            }
            MemberMsg::Commit { voters, .. } => {
                if epoch.0 > self.members.epoch.0.saturating_add(MAX_JUMP) {
                    return Err("a membership epoch far ahead of ours");
                }
                let joined = self.members.epoch > MembersEpoch(0);
                if joined && !self.voters.contains(&from) && !voters.contains(&from) {
                    return Err("a commit from a sentinel of neither set");
                }
            }
            _ => {}
        }
        Ok(())
    }

    fn handle_join(&mut self, now: Instant, from: SentinelId, incarnation: u64) {
        if !self.is_voter() {
            return;
        }
        if self.voters.contains(&from) && self.members.admitted.get(&from) == Some(&incarnation) {
            // This very state file was admitted: it only missed the commit.
            self.send_commit(from);
            return;
        }
        if self.proposal.is_some() || self.in_member_change() {
            // Another change is under way: it asks again at its next heartbeat.
            return;
        }
        if self.voters.contains(&from) {
            // A voter that asks to join with a state file we did not admit lost its state, and
            // every vote it cast with it. It must not get the current set, under which those
            // votes count: a new epoch admits it, whose floor lies above every term a leader
            // of this one can hold.
            warn!(peer = %from, "a voter asks to join again (state lost?); admitting it under a new membership epoch");
            self.start_proposal(now, Change::Finish, None);
            return;
        }
        if self.voters.len() >= MAX_VOTERS {
            warn!(peer = %from, max = MAX_VOTERS, "a sentinel asks to join a full voter set; refused");
            return;
        }
        info!(peer = %from, "a sentinel asks to join; proposing it as a voter");
        self.start_proposal(now, Change::Add(from, incarnation), None);
    }

    /// An operator asks to remove `sentinel` from the voter set.
    pub(super) fn handle_forget(&mut self, now: Instant, id: u64, sentinel: SentinelId) {
        #[cfg(test)]
        if self.bugs().local_membership {
            let mut voters = self.voters.clone();
            voters.remove(&sentinel);
            self.voters = voters;
            self.persist();
            let epoch = self.members.epoch;
            self.publish(Event::MembershipConfirmed { id, epoch });
            return;
        }
        let fail = |s: &mut Sentinel, reason: AdminError| {
            s.publish(Event::MembershipFailed { id, reason });
        };
        if !self.is_voter() {
            return fail(self, AdminError::NotVoter);
        }
        if sentinel == self.id {
            return fail(
                self,
                AdminError::Invalid("a sentinel cannot forget itself; ask another one".to_owned()),
            );
        }
        if !self.voters.contains(&sentinel) {
            let epoch = self.members.epoch;
            self.publish(Event::MembershipConfirmed { id, epoch });
            return;
        }
        if self.proposal.is_some() {
            return fail(self, AdminError::MembershipBusy);
        }
        info!(peer = %sentinel, "proposing to forget a sentinel");
        self.start_proposal(
            now,
            Change::Remove(sentinel),
            Some((id, now + MEMBER_REQUEST_TIMEOUT)),
        );
    }

    fn start_proposal(&mut self, now: Instant, change: Change, request: Option<(u64, Instant)>) {
        self.proposal = Some(Proposal {
            change,
            request,
            epoch: self.members.epoch,
            ballot: Ballot::default(),
            phase: Phase::Waiting,
            retry_at: now,
            accept_sent: false,
        });
        self.start_round(now);
    }

    /// Phase 1 of a new round of the proposal, with a ballot above every one seen.
    fn start_round(&mut self, now: Instant) {
        if self.proposal.is_none() {
            return;
        }
        let round = self
            .max_round
            .max(self.members.promised.round)
            .saturating_add(1);
        self.max_round = round;
        let ballot = Ballot {
            round,
            by: self.id.0,
        };
        let wait = self.cfg.heartbeat_interval + self.random_duration(self.cfg.election_jitter);
        let own = self
            .members
            .accepted
            .clone()
            .map(|(b, v)| (b, v, self.members.accepted_incarnations.clone()));
        let term = self.max_term();
        let fences = self.own_fences();
        let lease_wait = self.own_lease_wait(now);
        let epoch = self.members.epoch;
        self.members.promised = ballot;
        self.promised_at.get_or_insert(now);
        let id = self.id;
        if let Some(p) = self.proposal.as_mut() {
            p.epoch = epoch;
            p.ballot = ballot;
            p.retry_at = now + wait;
            p.phase = Phase::Preparing {
                promises: BTreeMap::from([(id, own)]),
                term,
                fences,
                lease_wait,
            };
        }
        debug!(%epoch, round, "membership: prepare");
        self.persist();
        let msg = self.member_msg(MemberMsg::Prepare { ballot });
        self.broadcast(msg);
        self.arm_member_timer(now);
        self.check_promises(now);
    }

    fn on_prepare(&mut self, now: Instant, from: SentinelId, ballot: Ballot) {
        self.max_round = self.max_round.max(ballot.round);
        if ballot < self.members.promised {
            let promised = self.members.promised;
            self.member_send(from, MemberMsg::Nack { promised });
            return;
        }
        if ballot > self.members.promised {
            self.members.promised = ballot;
            self.promised_at.get_or_insert(now);
            self.preempt(ballot);
            self.persist();
            self.arm_member_timer(now);
        }
        // (An equal ballot is a duplicate: the promise is durable or queued behind its write.)
        let accepted = self
            .members
            .accepted
            .as_ref()
            .map(|(b, v)| (*b, v.iter().copied().collect()));
        let accepted_incarnations = self
            .members
            .accepted_incarnations
            .iter()
            .map(|(id, inc)| (*id, *inc))
            .collect();
        let term = self.max_term();
        let fences = self.own_fences().into_iter().collect();
        // Measured after the promise: from now on this sentinel grants no lease until it
        // adopts the next set.
        let lease_wait = self.own_lease_wait(now);
        self.member_send(
            from,
            MemberMsg::Promise {
                ballot,
                accepted,
                accepted_incarnations,
                term,
                fences,
                lease_wait,
            },
        );
    }

    /// Our own proposal's round below `ballot` lost: it retries at `retry_at`. A value a
    /// majority already accepted is chosen, whatever ballot comes later: it is still committed
    /// once the leases have expired.
    fn preempt(&mut self, ballot: Ballot) {
        let majority = self.majority();
        if let Some(p) = self.proposal.as_mut() {
            let chosen =
                matches!(&p.phase, Phase::Accepting { accepted, .. } if accepted.len() >= majority);
            if p.ballot < ballot && !chosen {
                p.phase = Phase::Waiting;
            }
        }
    }

    fn on_promise(&mut self, now: Instant, from: SentinelId, ballot: Ballot, promise: Promised) {
        let Some(p) = self.proposal.as_mut() else {
            return;
        };
        if p.ballot != ballot || p.epoch != self.members.epoch {
            return;
        }
        let Phase::Preparing {
            promises,
            term,
            fences,
            lease_wait,
        } = &mut p.phase
        else {
            return;
        };
        if promises.contains_key(&from) {
            return;
        }
        promises.insert(from, promise.accepted);
        *term = (*term).max(promise.term);
        *lease_wait = (*lease_wait).max(promise.lease_wait);
        for (group, epoch) in promise.fences {
            if fences.len() >= super::MAX_GROUPS && !fences.contains_key(&group) {
                continue;
            }
            let e = fences.entry(group).or_default();
            *e = (*e).max(epoch);
        }
        self.check_promises(now);
    }

    /// With promises from a majority, phase 2: the highest set accepted in the instance, or
    /// else our change.
    fn check_promises(&mut self, now: Instant) {
        let majority = self.majority();
        let rate = 1.0 + self.cfg.clock_rate_bound;
        let heartbeat = self.cfg.heartbeat_interval;
        let voters = self.voters.clone();
        let floor = self.members.floor;
        let promised = self.members.promised;
        let Some(p) = self.proposal.as_mut() else {
            return;
        };
        let Phase::Preparing {
            promises,
            term,
            fences,
            lease_wait,
        } = &p.phase
        else {
            return;
        };
        if promises.len() < majority {
            return;
        }
        if promised > p.ballot {
            p.phase = Phase::Waiting;
            return;
        }
        let (value, incarnations) = promises
            .values()
            .flatten()
            .max_by_key(|(b, _, _)| *b)
            .map(|(_, v, incs)| (v.clone(), incs.clone()))
            .unwrap_or_else(|| (p.change.apply(&voters), p.change.incarnations()));
        // Every group term a leader of this epoch may have won is known to one of these
        // acceptors, which vote in this epoch no more.
        let floor = floor.max(*term);
        let mut merged = self.members.fences.clone();
        for (group, epoch) in fences {
            let e = merged.entry(group.clone()).or_default();
            *e = (*e).max(*epoch);
        }
        // The promising acceptors grant no lease of this epoch any more; the commit waits until
        // the ones they granted before have expired, so that no lease majority of this epoch
        // can stand once the next set is in force. (Their clocks may run slower than ours.)
        let leases_end = now + lease_wait.mul_f64(rate);
        // The round is not retried before its commit may be sent.
        p.retry_at = p.retry_at.max(leases_end + heartbeat);
        p.accept_sent = true;
        let ballot = p.ballot;
        p.phase = Phase::Accepting {
            voters: value.clone(),
            incarnations: incarnations.clone(),
            floor,
            fences: merged,
            accepted: BTreeSet::from([self.id]),
            leases_end,
        };
        debug!(epoch = %self.members.epoch, round = ballot.round, "membership: accept");
        self.members.accepted = Some((ballot, value.clone()));
        self.members.accepted_incarnations = incarnations.clone();
        self.persist();
        let msg = self.member_msg(MemberMsg::Accept {
            ballot,
            voters: value.into_iter().collect(),
            incarnations: incarnations.into_iter().collect(),
        });
        self.broadcast(msg);
        self.arm_member_timer(now);
        self.check_accepted(now);
    }

    fn on_accept(
        &mut self,
        now: Instant,
        from: SentinelId,
        ballot: Ballot,
        voters: BTreeSet<SentinelId>,
        incarnations: BTreeMap<SentinelId, u64>,
    ) {
        self.max_round = self.max_round.max(ballot.round);
        if ballot < self.members.promised {
            let promised = self.members.promised;
            self.member_send(from, MemberMsg::Nack { promised });
            return;
        }
        if voters.is_empty() || voters.len() > MAX_VOTERS {
            debug!(peer = %from, size = voters.len(), "a proposed voter set of an invalid size refused");
            return;
        }
        self.members.promised = ballot;
        self.members.accepted = Some((ballot, voters));
        self.members.accepted_incarnations = incarnations;
        self.promised_at.get_or_insert(now);
        self.preempt(ballot);
        self.persist();
        self.arm_member_timer(now);
        self.member_send(from, MemberMsg::Accepted { ballot });
    }

    fn on_accepted(&mut self, now: Instant, from: SentinelId, ballot: Ballot) {
        let Some(p) = self.proposal.as_mut() else {
            return;
        };
        if p.ballot != ballot || p.epoch != self.members.epoch {
            return;
        }
        let Phase::Accepting { accepted, .. } = &mut p.phase else {
            return;
        };
        accepted.insert(from);
        self.check_accepted(now);
        self.arm_member_timer(now);
    }

    /// With accepts from a majority the set is decided: commit it to old and new voters.
    fn check_accepted(&mut self, now: Instant) {
        let majority = self.majority();
        let Some(p) = self.proposal.as_ref() else {
            return;
        };
        let Phase::Accepting {
            voters,
            incarnations: joiners,
            floor,
            fences,
            accepted,
            leases_end,
        } = &p.phase
        else {
            return;
        };
        if accepted.len() < majority {
            return;
        }
        if now < *leases_end {
            // Decided, but committed only once the acceptors' leases have expired (the timer
            // is armed for it).
            return;
        }
        let (voters, floor, fences) = (voters.clone(), *floor, fences.clone());
        let mut incarnations = self.members.admitted.clone();
        incarnations.extend(joiners.iter().map(|(id, inc)| (*id, *inc)));
        let next = self.members.epoch.next();
        let cluster = self.members.cluster;
        let to: BTreeSet<SentinelId> = self.voters.union(&voters).copied().collect();
        info!(epoch = %next, voters = ?voters, "membership decided");
        let decided = Decided {
            cluster,
            epoch: next,
            voters,
            floor,
            fences,
            incarnations,
        };
        self.adopt_members(now, decided);
        for peer in to {
            if peer != self.id {
                self.send_commit(peer);
            }
        }
    }

    fn on_nack(&mut self, _now: Instant, promised: Ballot) {
        self.max_round = self.max_round.max(promised.round);
        self.preempt(promised);
    }

    /// Installs the decided voter set of `epoch` if it is newer than ours.
    pub(super) fn adopt_members(&mut self, now: Instant, d: Decided) {
        let Decided {
            cluster,
            epoch,
            voters,
            floor,
            fences,
            incarnations,
        } = d;
        if epoch <= self.members.epoch || voters.is_empty() || voters.len() > MAX_VOTERS {
            return;
        }
        if self.members.epoch == MembersEpoch(0) && !voters.contains(&self.id) {
            // An unjoined sentinel joins only a set that admits it.
            return;
        }
        let old = std::mem::replace(&mut self.voters, voters);
        let mut merged = std::mem::take(&mut self.members.fences);
        for (group, e) in fences {
            if merged.len() >= super::MAX_GROUPS && !merged.contains_key(&group) {
                continue;
            }
            let m = merged.entry(group).or_default();
            *m = (*m).max(e);
        }
        let mut admitted = std::mem::take(&mut self.members.admitted);
        admitted.extend(incarnations);
        admitted.retain(|id, _| self.voters.contains(id));
        self.members = DurableMembers {
            cluster: if cluster != 0 {
                cluster
            } else {
                self.members.cluster
            },
            epoch,
            floor: floor.max(self.members.floor),
            fences: merged,
            promised: Ballot::default(),
            accepted: None,
            accepted_incarnations: BTreeMap::new(),
            incarnation: self.members.incarnation,
            admitted,
        };
        self.members_since = Some(now);
        self.promised_at = None;
        self.joiners.clear();
        let voters = self.voters.clone();
        self.last_heard.retain(|id, _| voters.contains(id));
        info!(%epoch, voters = ?voters, floor = self.members.floor.0, "voter set adopted");
        // A candidacy counted votes of the old set: give its term up and run again under the
        // new set after a backoff.
        let candidacies: Vec<_> = self
            .groups
            .iter()
            .filter_map(|(name, g)| match g.election {
                Election::Candidate { term, reason, .. } => Some((name.clone(), term, reason)),
                _ => None,
            })
            .collect();
        for (group, term, reason) in candidacies {
            self.abandon_term(&group, term);
            let (min, max) = self.cfg.retry_backoff;
            let backoff = min + self.random_duration(max - min);
            if let Some(g) = self.groups.get_mut(&group) {
                g.election = Election::Backoff { reason };
                self.timers
                    .set(Timer::Election(group.clone()), now + backoff);
            }
        }
        self.persist();
        for id in voters.difference(&old) {
            self.publish(Event::SentinelAdded { id: *id });
        }
        for id in old.difference(&voters) {
            self.publish(Event::SentinelRemoved { id: *id });
        }
        self.publish(Event::MembersChanged {
            epoch,
            voters: voters.iter().copied().collect(),
        });
        if !voters.contains(&self.id) {
            warn!(%epoch, "this sentinel was removed from the voter set: it votes and leads no more; remove its state file and restart it to join again");
        }
        if let Some(p) = self.proposal.take() {
            if p.change.holds(&self.voters) {
                if let Some((id, _)) = p.request {
                    self.publish(Event::MembershipConfirmed { id, epoch });
                }
            } else if self.is_voter() {
                // Another change won this instance: ours goes on from the new set.
                self.proposal = Some(p);
                self.start_round(now);
            } else if let Some((id, _)) = p.request {
                self.publish(Event::MembershipFailed {
                    id,
                    reason: AdminError::NotVoter,
                });
            }
        }
        self.arm_member_timer(now);
    }

    /// Retries a round that got no majority in time, fails an operator's change past its
    /// deadline, and finishes an instance whose proposer went quiet.
    pub(super) fn on_member_timer(&mut self, now: Instant) {
        let committing = self
            .proposal
            .as_ref()
            .is_some_and(|p| matches!(p.phase, Phase::Accepting { .. }));
        if committing {
            self.check_accepted(now);
            if self.proposal.is_none() {
                return;
            }
        }
        if let Some(p) = self.proposal.as_ref() {
            if let Some((id, deadline)) = p.request {
                if now >= deadline {
                    // Once an accept went out, the acceptors may hold the change and a later
                    // proposer would commit it: the operator is told so, not that it failed.
                    let reason = if p.accept_sent {
                        AdminError::MembershipUncertain
                    } else {
                        AdminError::NoMembershipMajority
                    };
                    warn!(%reason, "voter-set change not confirmed in time");
                    self.proposal = None;
                    self.publish(Event::MembershipFailed { id, reason });
                }
            }
        }
        match self.proposal.as_ref() {
            Some(p) if now >= p.retry_at => self.start_round(now),
            Some(_) => {}
            None => {
                let stalled = self
                    .promised_at
                    .is_some_and(|at| now >= at + self.takeover());
                if stalled && self.is_voter() && self.in_member_change() {
                    info!(epoch = %self.members.epoch, "finishing a voter-set change whose proposer went quiet");
                    self.start_proposal(now, Change::Finish, None);
                }
            }
        }
        self.arm_member_timer(now);
    }

    fn takeover(&self) -> Duration {
        self.cfg.heartbeat_interval * 3
    }

    /// Arms the membership timer for the earliest of its duties, never at or before `now` (a
    /// duty already due waits a millisecond rather than spin).
    pub(super) fn arm_member_timer(&mut self, now: Instant) {
        let majority = self.majority();
        let at = match (&self.proposal, self.promised_at) {
            (Some(p), _) => {
                let mut at = p.retry_at;
                if let Some((_, deadline)) = p.request {
                    at = at.min(deadline);
                }
                if let Phase::Accepting {
                    leases_end,
                    accepted,
                    ..
                } = &p.phase
                {
                    // Decided: commit when the leases have expired.
                    if accepted.len() >= majority {
                        at = at.min(*leases_end);
                    }
                }
                Some(at)
            }
            (None, Some(at)) if self.in_member_change() && self.is_voter() => {
                Some(at + self.takeover())
            }
            _ => None,
        };
        match at {
            Some(at) => {
                let at = at.max(now + Duration::from_millis(1));
                self.timers.set(Timer::Membership, at)
            }
            None => self.timers.cancel(&Timer::Membership),
        }
    }
}
