//! The invariant checker: DESIGN.md §7 invariants 1 to 6, and 7 (one voter set per membership
//! epoch, promises durable before they leave), fed by the simulator after every event.
//!
//! Owns `Checker`. It only observes: what sentinels send, persist and publish, and what data
//! nodes accept and acknowledge. Invariant: the first violation is kept, with the virtual time.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use crate::core::{
    Ballot, ConfigEpoch, DurableState, GroupName, MembersEpoch, NodeId, SentinelId, Term,
};

#[derive(Debug, Default)]
pub struct Checker {
    pub violation: Option<String>,
    /// Invariant 1: every vote ever granted, per (voter, group, term).
    votes: BTreeMap<(SentinelId, GroupName, Term), SentinelId>,
    /// Invariant 2: the leader of each (group, term) and the node promoted at each (group, epoch).
    leaders: BTreeMap<(GroupName, Term), SentinelId>,
    promotions: BTreeMap<(GroupName, ConfigEpoch), NodeId>,
    /// Invariant 5: every promotion or reaffirmation: (real time, epoch, node), per group.
    pub reigns: BTreeMap<GroupName, Vec<(Duration, ConfigEpoch, NodeId)>>,
    /// Invariant 3: the last epoch each sentinel published per group.
    published: BTreeMap<(SentinelId, GroupName), ConfigEpoch>,
    /// Invariant 6: acknowledged writes per group.
    pub acked: BTreeMap<GroupName, BTreeSet<u64>>,
    /// Invariant 7: the voter set of each membership epoch, as first persisted.
    members: BTreeMap<MembersEpoch, BTreeSet<SentinelId>>,
    /// Skip invariant 7 (a breaking test that shows what its violation leads to).
    pub skip_members: bool,
}

impl Checker {
    pub fn fail(&mut self, now: Duration, what: String) {
        if self.violation.is_none() {
            self.violation = Some(format!("at {:?}: {what}", now));
        }
    }

    /// A granted vote is leaving `voter`: it must already be on its disk, and be its only vote.
    pub fn vote_sent(
        &mut self,
        now: Duration,
        voter: SentinelId,
        disk: Option<&DurableState>,
        group: &GroupName,
        term: Term,
        candidate: SentinelId,
    ) {
        let durable = disk
            .and_then(|d| d.groups.get(group))
            .and_then(|g| g.vote)
            .is_some_and(|(t, c)| t > term || (t == term && c == candidate));
        if !durable {
            self.fail(
                now,
                format!("invariant 1: {voter} sent a vote for {candidate} in {group} term {term} before it was durable"),
            );
        }
        let prev = *self
            .votes
            .entry((voter, group.clone(), term))
            .or_insert(candidate);
        if prev != candidate {
            self.fail(
                now,
                format!(
                    "invariant 1: {voter} voted for {prev} and {candidate} in {group} term {term}"
                ),
            );
        }
    }

    pub fn elected(&mut self, now: Duration, group: &GroupName, term: Term, leader: SentinelId) {
        let prev = *self.leaders.entry((group.clone(), term)).or_insert(leader);
        if prev != leader {
            self.fail(
                now,
                format!("invariant 2: {prev} and {leader} both lead {group} term {term}"),
            );
        }
    }

    pub fn promoted(&mut self, now: Duration, group: &GroupName, epoch: ConfigEpoch, node: NodeId) {
        let prev = *self
            .promotions
            .entry((group.clone(), epoch))
            .or_insert(node);
        if prev != node {
            self.fail(
                now,
                format!("invariant 2: {prev} and {node} both promoted in {group} epoch {epoch}"),
            );
        }
        self.reigns
            .entry(group.clone())
            .or_default()
            .push((now, epoch, node));
    }

    /// A sentinel published a config: epochs on one sentinel's stream strictly increase.
    pub fn published(
        &mut self,
        now: Duration,
        sentinel: SentinelId,
        group: &GroupName,
        epoch: ConfigEpoch,
    ) {
        let prev = self
            .published
            .insert((sentinel, group.clone()), epoch)
            .unwrap_or_default();
        if epoch <= prev && epoch != ConfigEpoch(0) {
            self.fail(
                now,
                format!("invariant 3: {sentinel} published epoch {epoch} of {group} after {prev}"),
            );
        }
    }

    /// A promise or an accept of a voter-set change is leaving `from`: it must be on its disk
    /// (its disk promised at least `ballot` in instance `epoch`, or moved past the instance).
    pub fn member_reply_sent(
        &mut self,
        now: Duration,
        from: SentinelId,
        disk: Option<&DurableState>,
        epoch: MembersEpoch,
        ballot: Ballot,
    ) {
        let durable = disk.is_some_and(|d| {
            d.members.epoch > epoch || (d.members.epoch == epoch && d.members.promised >= ballot)
        });
        if !durable {
            self.fail(
                now,
                format!("invariant 7: {from} answered ballot {ballot:?} of membership instance {epoch} before its promise was durable"),
            );
        }
    }

    /// A sentinel's disk is overwritten: terms, votes and epochs never decrease; each
    /// membership epoch has one voter set.
    pub fn persisted(&mut self, now: Duration, old: Option<&DurableState>, new: &DurableState) {
        if new.members.epoch > MembersEpoch(0) && !self.skip_members {
            let first = self
                .members
                .entry(new.members.epoch)
                .or_insert_with(|| new.voters.clone())
                .clone();
            if first != new.voters {
                self.fail(
                    now,
                    format!(
                        "invariant 7: membership epoch {} has two voter sets: {first:?} and {:?} ({})",
                        new.members.epoch, new.voters, new.id
                    ),
                );
            }
        }
        let Some(old) = old else {
            return;
        };
        if new.members.epoch < old.members.epoch {
            self.fail(
                now,
                format!(
                    "invariant 3: {} went back to membership epoch {} from {}",
                    new.id, new.members.epoch, old.members.epoch
                ),
            );
        }
        for (name, g) in &new.groups {
            let Some(o) = old.groups.get(name) else {
                continue;
            };
            let vote_term = |v: Option<(Term, SentinelId)>| v.map(|(t, _)| t).unwrap_or_default();
            if g.term < o.term || g.epoch < o.epoch || vote_term(g.vote) < vote_term(o.vote) {
                self.fail(
                    now,
                    format!(
                        "invariant 3: {} went back on disk in {name}: {o:?} -> {g:?}",
                        new.id
                    ),
                );
            }
        }
    }

    /// `node`, master since `master_since`, accepted a write at `now`: no other node may have
    /// been promoted since then (its lease should have expired first).
    pub fn write_accepted(
        &mut self,
        now: Duration,
        group: &GroupName,
        node: NodeId,
        master_since: Duration,
    ) {
        let Some(reigns) = self.reigns.get(group) else {
            return;
        };
        let latest = reigns
            .iter()
            .filter(|(t, _, _)| *t <= now)
            .max_by_key(|(_, e, _)| *e);
        if let Some((t, epoch, other)) = latest {
            if *other != node && master_since < *t {
                let what = format!(
                    "invariant 5: old master {node} of {group} accepted a write after {other} was promoted at {t:?} (epoch {epoch})"
                );
                self.fail(now, what);
            }
        }
    }
}
