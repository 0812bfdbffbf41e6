//! Elections, one per group and term: candidacy, votes, split votes and the lease fence.
//!
//! Owns `Election` (the candidate side of a group) and the vote handlers.
//! Invariants: at most one vote per (group, term), and it is durable before the reply leaves
//! (the reply is queued behind the `Persist`); a vote is granted only to a candidate whose config
//! epoch is not older, and (for a master-down election) only while this sentinel also sees the
//! master down; granting a vote stops every lease grant in the group until a config or an
//! abandonment settles the term; a leader has votes from a majority of voters and at least quorum;
//! voter and candidate are of one membership epoch, the term is above its floor, and a voter
//! that promised in a voter-set change votes in that epoch no more (`members`).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use tracing::{debug, info};

use super::Sentinel;
use super::action::{AbortReason, Action, ElectionReason, Event};
use super::input::Gossip;
use super::timers::Timer;
use super::types::{
    ConfigEpoch, GroupName, MembersEpoch, NodeId, ReplId, ReplOffset, SentinelId, Term,
};

/// The candidate side of one group's election.
#[derive(Debug)]
pub(super) enum Election {
    /// Not running.
    Idle,
    /// Waiting a random jitter before becoming candidate.
    Jitter { reason: ElectionReason },
    /// Asking for votes in `term`; `votes` maps each granting voter to its lease wait.
    Candidate {
        term: Term,
        reason: ElectionReason,
        votes: BTreeMap<SentinelId, Duration>,
    },
    /// Split vote: waiting a random backoff before the next term.
    Backoff { reason: ElectionReason },
    /// Won its term; the failover runs in `Group::failover`.
    Leader,
}

impl Sentinel {
    /// Schedules a candidacy after the random jitter, unless one is under way.
    pub(super) fn maybe_start_election(
        &mut self,
        now: Instant,
        group: &GroupName,
        reason: ElectionReason,
    ) {
        let jitter = self.random_duration(self.cfg.election_jitter);
        let id = self.id;
        let Some(g) = self.groups.get_mut(group) else {
            return;
        };
        if g.paused || g.failover.is_some() || !matches!(g.election, Election::Idle) {
            return;
        }
        // Having voted for another candidate whose term is still open, give its leader
        // `failover_timeout` before competing: preempting a working leader only restarts the
        // failover (Redis waits twice as long for the same reason).
        let leader_busy_until = match (g.durable.vote, g.fenced_since) {
            (Some((_, c)), Some(since)) if c != id && g.is_fenced() => {
                Some(since + g.cfg.failover_timeout)
            }
            _ => None,
        };
        let at = match leader_busy_until {
            Some(until) if until > now => until + jitter,
            _ => now + jitter,
        };
        g.election = Election::Jitter { reason };
        self.timers.set(Timer::Election(group.clone()), at);
    }

    /// An operator's failover or switchover; `target` (switchover only) is the replica to
    /// promote, ignored unless it is a known replica of the group.
    pub(super) fn handle_admin_failover(
        &mut self,
        now: Instant,
        group: &GroupName,
        reason: ElectionReason,
        target: Option<NodeId>,
    ) {
        let Some(g) = self.groups.get_mut(group) else {
            debug!(%group, "failover of an unknown group ignored");
            return;
        };
        if g.failover.is_some() || matches!(g.election, Election::Candidate { .. }) {
            debug!(%group, "failover already under way");
            return;
        }
        if let Some(t) = target {
            if t == g.durable.master || !g.durable.replicas.contains(&t) {
                debug!(%group, node = %t, "switchover target is not a replica; ignored");
                return;
            }
        }
        // Kept on the group, not in the election: a split vote retries the same switchover.
        g.switchover_target = target;
        self.become_candidate(now, group, reason);
    }

    pub(super) fn on_election_timer(&mut self, now: Instant, group: &GroupName) {
        // An operator's change that found no majority in time gives up here (or at the next
        // heartbeat): the retries of a split vote would otherwise go on for ever.
        self.expire_admin(now);
        let fence = self.lease_fence(group);
        let Some(g) = self.groups.get(group) else {
            return;
        };
        match g.election {
            Election::Jitter { reason } | Election::Backoff { reason } => {
                let still_wanted = match reason {
                    ElectionReason::MasterDown => g.odown && !g.paused,
                    ElectionReason::Fenced => g.is_fenced() || g.durable.epoch < fence,
                    ElectionReason::Manual | ElectionReason::Switchover => true,
                    ElectionReason::Admin => g.admin.is_some(),
                };
                if still_wanted {
                    self.become_candidate(now, group, reason);
                } else {
                    self.groups
                        .get_mut(group)
                        .expect("group looked up above")
                        .election = Election::Idle;
                }
            }
            Election::Candidate { term, reason, .. } => {
                info!(%group, %term, "split vote");
                self.publish(Event::SplitVote {
                    group: group.clone(),
                    term,
                });
                self.abandon_term(group, term);
                let (min, max) = self.cfg.retry_backoff;
                let backoff = min + self.random_duration(max - min);
                let g = self.groups.get_mut(group).expect("group looked up above");
                g.election = Election::Backoff { reason };
                self.timers
                    .set(Timer::Election(group.clone()), now + backoff);
            }
            Election::Idle | Election::Leader => {}
        }
    }

    /// Starts a new term: votes for itself, persists, then asks every voter.
    pub(super) fn become_candidate(
        &mut self,
        now: Instant,
        group: &GroupName,
        reason: ElectionReason,
    ) {
        let own_wait = self.lease_wait(now, group);
        let voter = self.is_voter();
        let changing = self.in_member_change();
        let floor = self.members_floor();
        let members = self.members_epoch();
        let (min, max) = self.cfg.retry_backoff;
        let backoff = min + self.random_duration(max - min);
        let Some(g) = self.groups.get_mut(group) else {
            return;
        };
        if !voter {
            debug!(%group, "not a voter: no candidacy");
            g.election = Election::Idle;
            self.timers.cancel(&Timer::Election(group.clone()));
            return;
        }
        if changing {
            // Our promise in the voter-set change forbids votes of this epoch, ours included.
            debug!(%group, "a voter-set change is under way: candidacy put off");
            g.election = Election::Backoff { reason };
            self.timers
                .set(Timer::Election(group.clone()), now + backoff);
            return;
        }
        // Terms at or below the floor may have had a leader under an older voter set.
        let term = g.durable.term.max(g.voted_term()).max(floor).next();
        g.durable.term = term;
        g.record_vote(term, self.id);
        g.fenced_since = Some(now);
        let epoch = g.durable.epoch;
        let master = g.durable.master;
        let agreed = g.durable.agreed;
        g.election = Election::Candidate {
            term,
            reason,
            votes: BTreeMap::from([(self.id, own_wait)]),
        };
        info!(%group, %term, ?reason, "+try-failover");
        self.persist();
        self.publish(Event::TryFailover {
            group: group.clone(),
            term,
            reason,
        });
        self.publish(Event::LeaseRevoked {
            group: group.clone(),
            term,
        });
        self.broadcast(Gossip::RequestVote {
            group: group.clone(),
            term,
            epoch,
            reason,
            master,
            agreed,
            members,
        });
        self.timers
            .set(Timer::Election(group.clone()), now + self.cfg.vote_timeout);
        self.check_won(now, group);
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn handle_request_vote(
        &mut self,
        now: Instant,
        from: SentinelId,
        group: &GroupName,
        term: Term,
        epoch: ConfigEpoch,
        reason: ElectionReason,
        master: NodeId,
        agreed: Term,
        members: MembersEpoch,
    ) {
        // Membership first: a vote counts against one voter set, the candidate's and ours.
        let refusal = if !self.is_voter() {
            Some("not a voter")
        } else if members != self.members_epoch() {
            Some("candidate's voter set is of another epoch")
        } else if self.in_member_change() {
            Some("a voter-set change is under way")
        } else if term <= self.members_floor() {
            Some("term at or below the voter set's floor")
        } else {
            None
        };
        if let Some(why) = refusal {
            debug!(%group, %term, candidate = %from, why, "vote refused");
            if members < self.members_epoch() {
                self.send_commit(from);
            }
            self.send_refusal(from, group, term);
            return;
        }
        if reason == ElectionReason::Admin && !self.groups.contains_key(group) {
            // A `Monitor` of a group this sentinel does not know: the vote needs a durable
            // place, an entry that watches nothing until the change is installed.
            if self.groups.len() >= super::MAX_GROUPS {
                debug!(%group, "vote for a new group refused: too many groups");
                return;
            }
            self.insert_removed(now, group, master);
        }
        let master_down = self.master_down(group);
        let lease_wait = self.lease_wait(now, group);
        #[cfg(test)]
        let double_vote = self.bugs().double_vote;
        #[cfg(not(test))]
        let double_vote = false;
        let Some(g) = self.groups.get_mut(group) else {
            return;
        };
        let lineage: Vec<(ReplId, ReplOffset)> = if epoch == g.durable.epoch {
            g.durable
                .lineage
                .iter()
                .map(|(id, at)| (*id, *at))
                .collect()
        } else {
            Vec::new()
        };
        let edges: Vec<(ReplId, ReplId, ReplOffset)> = g.edges.iter().copied().collect();
        let refuse = |why: &str| {
            debug!(%group, %term, candidate = %from, why, "vote refused");
        };
        let mut granted = true;
        let mut repeat = false;
        if term < g.durable.term {
            refuse("old term");
            granted = false;
        } else if let Some((t, c)) = g.durable.vote.filter(|(t, _)| *t >= term) {
            if t > term || (c != from && !double_vote) {
                refuse("already voted");
                granted = false;
            } else if c == from {
                repeat = true;
            }
        }
        if repeat {
            // A duplicated request: repeat the vote, which is already durable or queued behind
            // its `Persist`.
            self.emit(Action::SendGossip {
                to: from,
                msg: Gossip::Vote {
                    group: group.clone(),
                    term,
                    granted: true,
                    lease_wait,
                    lineage,
                    edges,
                },
            });
            return;
        }
        if granted && epoch < g.durable.epoch {
            refuse("candidate's config epoch is older");
            granted = false;
        }
        if granted && reason == ElectionReason::Admin && agreed < g.durable.agreed {
            refuse("candidate's agreed options are older");
            granted = false;
        }
        let reason_ok = match reason {
            ElectionReason::MasterDown => master_down && !g.paused,
            // A fence left by a term nobody settles (its candidate died, or its `Abandoned`
            // was lost) is settled by a new election, whose leader reaffirms a healthy master
            // under a new epoch. Voters that are not fenced themselves and see the master up
            // vote too: otherwise a fenced minority larger than `voters - majority` could
            // never win, and would block convergence, which needs a majority of unfenced
            // confirmations, for ever.
            ElectionReason::Fenced => true,
            ElectionReason::Manual | ElectionReason::Switchover | ElectionReason::Admin => true,
        };
        if granted && !reason_ok {
            refuse("master not seen down");
            granted = false;
        }
        let promoting = g.failover.as_ref().is_some_and(|f| f.promoting());
        if granted && promoting {
            refuse("leading a failover past promotion");
            granted = false;
        }
        g.durable.term = g.durable.term.max(term);
        if !granted {
            self.send_refusal(from, group, term);
            return;
        }
        g.record_vote(term, from);
        g.fenced_since = Some(now);
        let (min, max) = self.cfg.retry_backoff;
        let backoff = min + self.random_duration(max - min);
        let g = self.groups.get_mut(group).expect("group looked up above");
        let stepping_down = match g.election {
            // An operator's change fails over nothing: a failover this sentinel meant to run
            // is only put off (its candidacy of an older term ends), never dropped, or a group
            // left objectively down would wait for an ODOWN transition that never comes.
            Election::Candidate {
                reason: own @ (ElectionReason::MasterDown | ElectionReason::Fenced),
                ..
            } if reason == ElectionReason::Admin => {
                g.election = Election::Backoff { reason: own };
                self.timers
                    .set(Timer::Election(group.clone()), now + backoff);
                false
            }
            Election::Jitter { .. } | Election::Backoff { .. }
                if reason == ElectionReason::Admin =>
            {
                false
            }
            Election::Candidate { .. } | Election::Jitter { .. } | Election::Backoff { .. } => {
                g.election = Election::Idle;
                self.timers.cancel(&Timer::Election(group.clone()));
                false
            }
            Election::Leader => true,
            Election::Idle => false,
        };
        if stepping_down {
            self.abort_failover(now, group, AbortReason::NewerTerm);
        }
        self.admin_candidacy_lost(group);
        info!(%group, %term, candidate = %from, "+vote-for-leader");
        self.persist();
        self.publish(Event::VoteGranted {
            group: group.clone(),
            term,
            candidate: from,
        });
        self.publish(Event::LeaseRevoked {
            group: group.clone(),
            term,
        });
        let reply = Action::SendGossip {
            to: from,
            msg: Gossip::Vote {
                group: group.clone(),
                term,
                granted: true,
                lease_wait,
                lineage,
                edges,
            },
        };
        #[cfg(test)]
        if self.bugs().skip_vote_persist {
            self.emit_now(reply);
            return;
        }
        self.emit(reply);
    }

    /// Tells `candidate` it does not get our vote in `term`.
    fn send_refusal(&mut self, candidate: SentinelId, group: &GroupName, term: Term) {
        self.emit(Action::SendGossip {
            to: candidate,
            msg: Gossip::Vote {
                group: group.clone(),
                term,
                granted: false,
                lease_wait: Duration::ZERO,
                lineage: Vec::new(),
                edges: Vec::new(),
            },
        });
    }

    /// A voter's answer (`vote` is a `Gossip::Vote`).
    pub(super) fn handle_vote(&mut self, now: Instant, from: SentinelId, vote: Gossip) {
        let Gossip::Vote {
            group,
            term,
            granted,
            lease_wait,
            lineage,
            edges,
        } = vote
        else {
            return;
        };
        let group = &group;
        let Some(g) = self.groups.get_mut(group) else {
            return;
        };
        g.durable.term = g.durable.term.max(term);
        let Election::Candidate {
            term: my_term,
            votes,
            ..
        } = &mut g.election
        else {
            return;
        };
        if *my_term != term || !granted {
            return;
        }
        votes.insert(from, lease_wait);
        // The voter sent a lineage only if it is of our epoch (the one we asked with; a newer
        // config would have ended this candidacy).
        super::monitor::merge_lineage(&mut g.durable.lineage, lineage);
        for edge in edges {
            if g.edges.len() >= super::MAX_EDGES {
                break;
            }
            g.edges.insert(edge);
        }
        self.check_won(now, group);
    }

    /// The candidate's voter lifts its fence: that term will never promote anything.
    pub(super) fn handle_abandoned(&mut self, from: SentinelId, group: &GroupName, term: Term) {
        let Some(g) = self.groups.get_mut(group) else {
            return;
        };
        if g.durable.vote == Some((term, from)) {
            g.durable.abandoned = g.durable.abandoned.max(term);
            if !g.is_fenced() {
                g.fenced_since = None;
            }
        }
    }

    /// Gives up `term`: tells the voters, and lifts this sentinel's own fence for it.
    pub(super) fn abandon_term(&mut self, group: &GroupName, term: Term) {
        self.broadcast(Gossip::Abandoned {
            group: group.clone(),
            term,
        });
        let id = self.id;
        self.handle_abandoned(id, group, term);
    }

    fn check_won(&mut self, now: Instant, group: &GroupName) {
        let majority = self.majority();
        let Some(g) = self.groups.get(group) else {
            return;
        };
        let Election::Candidate {
            term,
            reason,
            votes,
        } = &g.election
        else {
            return;
        };
        if votes.len() < majority || votes.len() < g.cfg.quorum.get() {
            return;
        }
        let (term, reason) = (*term, *reason);
        let wait = votes.values().max().copied().unwrap_or_default();
        self.become_leader(now, group, term, reason, wait);
    }

    fn become_leader(
        &mut self,
        now: Instant,
        group: &GroupName,
        term: Term,
        reason: ElectionReason,
        wait: Duration,
    ) {
        let g = self
            .groups
            .get_mut(group)
            .expect("caller checked the group exists");
        assert!(
            matches!(g.election, Election::Candidate { term: t, .. } if t == term),
            "only the candidate of a term becomes its leader"
        );
        g.election = Election::Leader;
        self.timers.cancel(&Timer::Election(group.clone()));
        info!(%group, %term, "+elected-leader");
        self.publish(Event::Elected {
            group: group.clone(),
            term,
        });
        if reason == ElectionReason::Admin {
            // Nothing is promoted: the change becomes the config of this term at once.
            self.install_admin(now, group, term);
            return;
        }
        // The voters' clocks may run slower than ours: stretch their reported waits.
        let wait = self.skewed(wait);
        #[cfg(test)]
        let wait = if self.bugs().skip_lease_wait {
            Duration::ZERO
        } else {
            wait
        };
        self.start_failover(now, group, term, reason, wait);
    }

    /// How long, on this sentinel's clock, until every lease it granted in `group` expires.
    pub(super) fn lease_wait(&self, now: Instant, group: &GroupName) -> Duration {
        let Some(last) = self.groups.get(group).and_then(|g| g.last_lease) else {
            return Duration::ZERO;
        };
        // The node's clock started the lease before we sent it, and may run slower than ours.
        let expiry = last + self.skewed(self.cfg.lease_ttl);
        expiry.saturating_duration_since(now)
    }
}
