//! The leader's failover: lease wait, replica selection, promotion, reconfiguration.
//!
//! Owns `Failover` and its steps. Invariants: nothing is promoted before every write lease the
//! leader's voters granted has expired, or the master confirmed it revoked every lease it held
//! after this leader won (`handle_leases_revoked`); the new config epoch equals the leader's
//! term, so there is at most one promotion per (group, epoch); a failover aborts only before
//! promotion; each step has a deadline of `failover_timeout`; with `sync_replicas = N` the
//! promoted replica has the highest offset among fresh reads from at least `R - N + 1` of the
//! `R` replicas, or the configured master, demoted by a stale command but with its data intact,
//! holds all of it (`intact_master`) and the promoted node (it, or a replica) holds as much; a
//! switchover with a target promotes that replica or nothing.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::{Duration, Instant};

use tracing::{debug, info, warn};

use super::Sentinel;
use super::action::{AbortReason, Action, ElectionReason, Event};
use super::election::Election;
use super::input::{NodeInfo, NodeRole};
use super::timers::Timer;
use super::types::{ConfigEpoch, GroupName, InfoSeq, NodeId, ReplId, ReplOffset, RunId, Term};

/// A failover led by this sentinel.
#[derive(Debug)]
pub(super) struct Failover {
    term: Term,
    reason: ElectionReason,
    step: Step,
    /// Deadline of the current step.
    deadline: Instant,
    /// The latest instant at which the failover may still select a replica: a little before
    /// `failover_timeout` after the candidacy, measured so that it passes on this clock before
    /// it passes on any voter's (`clock_rate_bound`), with a message delay to spare. A voter
    /// competes for the group only `failover_timeout` after its vote (`maybe_start_election`),
    /// so a leader that cannot promote gives up, and lifts its voters' fence with `Abandoned`,
    /// before they preempt it; otherwise leaders that cannot prove a replica holds every
    /// acknowledged write would replace each other for ever, none reaching its own deadline.
    give_up_at: Instant,
    /// The replica an operator chose for this switchover: the only one that may be promoted.
    target: Option<NodeId>,
}

#[derive(Debug)]
enum Step {
    /// Waiting for the leases granted by the voters to expire.
    WaitLeases { until: Instant },
    /// Reading fresh offsets; only INFO replies with `seq >= fresh` count.
    Select { fresh: InfoSeq },
    /// `REPLICAOF NO ONE` sent; waiting for `role:master` in a reply to a later INFO.
    /// `run_id` is the selected process: the one whose data was checked.
    Promoting {
        node: NodeId,
        fresh: InfoSeq,
        run_id: RunId,
    },
    /// Pointing the other nodes at the new master, `parallel_syncs` at a time.
    Reconfiguring {
        master: NodeId,
        pending: VecDeque<NodeId>,
        in_flight: BTreeMap<NodeId, (Instant, InfoSeq)>,
        /// The old master of a switchover, to unpause once it follows the new master.
        unpause: Option<NodeId>,
    },
}

impl Failover {
    /// Whether the promotion was confirmed, after which the failover can no longer abort.
    pub(super) fn promoted(&self) -> bool {
        matches!(self.step, Step::Reconfiguring { .. })
    }

    /// Whether `REPLICAOF NO ONE` was sent: from then on this leader does not step down for a
    /// newer term, since the promotion may already have happened.
    pub(super) fn promoting(&self) -> bool {
        matches!(
            self.step,
            Step::Promoting { .. } | Step::Reconfiguring { .. }
        )
    }
}

impl Sentinel {
    pub(super) fn start_failover(
        &mut self,
        now: Instant,
        group: &GroupName,
        term: Term,
        reason: ElectionReason,
        wait: Duration,
    ) {
        let timeout = self.failover_timeout(group);
        let Some(g) = self.groups.get_mut(group) else {
            return;
        };
        let master = g.durable.master;
        let target = g
            .switchover_target
            .filter(|_| reason == ElectionReason::Switchover);
        let candidacy = g.fenced_since.unwrap_or(now).min(now);
        let patience = timeout
            .mul_f64((1.0 - 2.0 * self.cfg.clock_rate_bound).max(0.0))
            .saturating_sub(self.cfg.vote_timeout);
        g.failover = Some(Failover {
            term,
            reason,
            step: Step::WaitLeases { until: now + wait },
            deadline: now + wait + timeout,
            give_up_at: candidacy + patience,
            target,
        });
        if reason == ElectionReason::Switchover {
            // Writes stop now; the pause ends by itself if this sentinel dies.
            self.emit(Action::PauseWrites {
                node: master,
                timeout,
            });
        }
        if matches!(reason, ElectionReason::Switchover | ElectionReason::Manual) {
            // The master is alive: ask it to drop its leases rather than wait for them to
            // expire. Emitted after the pause, so that clients block rather than see
            // `-NOLEASE`.
            self.emit(Action::RevokeLeases { node: master, term });
        }
        self.timers.set(Timer::Failover(group.clone()), now + wait);
    }

    /// The master of a planned failover answered `+OK` to `VIGIL REVOKE` sent by the leader of
    /// `term`: the lease wait of that failover ends at once.
    ///
    /// Safety. This leader won `term` with votes from a majority of the voters, and a voter
    /// grants no lease in the group from its vote until a config or an abandonment settles
    /// the term. Every grant a voter sent before its vote starts at a reading of the node's
    /// clock that the node produced before the voter sent it, so before the vote, before this
    /// leader sent the revocation and before the node processed it; the node refuses every
    /// grant that starts at or before its revocation, however late it arrives. The voters
    /// that did not vote for us are a minority and cannot make a lease majority on their own.
    /// So from the `+OK` on, the master accepts no write under fencing until a new config
    /// lifts the fence, exactly as if every lease had expired. The term is echoed so that the
    /// answer to an earlier failover's revocation, after which voters may have granted new
    /// leases again, never ends this wait. A node that restarted since (another run id)
    /// counts no lease of its previous run. A Redis master fails the command: the wait runs
    /// out as before.
    pub(super) fn handle_leases_revoked(&mut self, now: Instant, node: NodeId, term: Term) {
        let group = self.groups.iter().find_map(|(name, g)| {
            let f = g.failover.as_ref()?;
            let planned = matches!(
                f.reason,
                ElectionReason::Switchover | ElectionReason::Manual
            );
            let waiting = matches!(f.step, Step::WaitLeases { .. });
            (g.durable.master == node && f.term == term && planned && waiting).then(|| name.clone())
        });
        let Some(group) = group else {
            debug!(%node, %term, "lease revocation answers no waiting failover");
            return;
        };
        info!(%group, %node, %term, "master revoked its leases; lease wait over");
        if let Some(f) = self
            .groups
            .get_mut(&group)
            .and_then(|g| g.failover.as_mut())
        {
            f.step = Step::WaitLeases { until: now };
        }
        self.on_failover_timer(now, &group);
    }

    pub(super) fn on_failover_timer(&mut self, now: Instant, group: &GroupName) {
        let poll = self.cfg.info_interval_failover;
        let role_poll = self.cfg.role_poll_interval;
        let timeout = self.failover_timeout(group);
        let Some(f) = self.groups.get_mut(group).and_then(|g| g.failover.as_mut()) else {
            return;
        };
        match &mut f.step {
            Step::WaitLeases { until } => {
                if now < *until {
                    let at = *until;
                    self.timers.set(Timer::Failover(group.clone()), at);
                    return;
                }
                f.deadline = (now + timeout).min(f.give_up_at);
                let deadline = f.deadline;
                let fresh = InfoSeq(self.info_seq.0 + 1);
                f.step = Step::Select { fresh };
                self.poll_group(group);
                self.timers
                    .set(Timer::Failover(group.clone()), (now + poll).min(deadline));
            }
            Step::Select { .. } => {
                if now >= f.deadline {
                    let targeted = f.target.is_some();
                    let reason = if self.groups[group].cfg.sync_replicas > 0 {
                        AbortReason::NoFreshOffsets
                    } else if targeted {
                        AbortReason::TargetNotEligible
                    } else {
                        AbortReason::NoGoodReplica
                    };
                    self.abort_failover(now, group, reason);
                    return;
                }
                let deadline = f.deadline;
                if self.try_select(now, group, true) {
                    return;
                }
                self.poll_group(group);
                // The deadline is checked on time, not at the next poll after it.
                self.timers
                    .set(Timer::Failover(group.clone()), (now + poll).min(deadline));
            }
            Step::Promoting { node, .. } => {
                if now >= f.deadline {
                    self.abort_failover(now, group, AbortReason::PromotionTimeout);
                    return;
                }
                let node = *node;
                self.send_info(node);
                self.timers
                    .set(Timer::Failover(group.clone()), now + role_poll);
            }
            Step::Reconfiguring { in_flight, .. } => {
                let expired: Vec<NodeId> = in_flight
                    .iter()
                    .filter(|(_, (since, _))| now.saturating_duration_since(*since) >= timeout)
                    .map(|(n, _)| *n)
                    .collect();
                for node in expired {
                    // Convergence will retry it later; the failover does not wait for ever.
                    warn!(%node, %group, "replica reconfiguration timed out");
                    in_flight.remove(&node);
                }
                let polled: Vec<NodeId> = in_flight.keys().copied().collect();
                for node in polled {
                    self.send_info(node);
                }
                self.advance_reconfiguration(now, group);
                if self.groups[group].failover.is_some() {
                    self.timers
                        .set(Timer::Failover(group.clone()), now + role_poll);
                }
            }
        }
    }

    /// A node answered `+OK` to a `REPLICAOF` this sentinel sent. A promoted node is read again
    /// at once: the INFO sent with the command may have been read before it ran, and waiting
    /// for the next role poll would add to a switchover's write pause. The old master of a
    /// switchover is a replica now, so its paused writes can only be refused (`-READONLY`,
    /// and their clients move to the new master): it is unpaused at once rather than once its
    /// link is up.
    pub(super) fn handle_replicaof_acknowledged(&mut self, node: NodeId) {
        let mut read = false;
        let mut unpause = false;
        for g in self.groups.values_mut() {
            let Some(f) = g.failover.as_mut() else {
                continue;
            };
            match &mut f.step {
                Step::Promoting { node: p, .. } if *p == node => read = true,
                Step::Reconfiguring {
                    in_flight,
                    unpause: u,
                    ..
                } if in_flight.contains_key(&node) && *u == Some(node) => {
                    *u = None;
                    unpause = true;
                }
                _ => {}
            }
        }
        if read {
            self.send_info(node);
        }
        if unpause {
            self.emit(Action::UnpauseWrites { node });
        }
    }

    /// Feeds an INFO reply to the failover of `group`, if one is under way.
    pub(super) fn failover_on_info(
        &mut self,
        now: Instant,
        group: &GroupName,
        node: NodeId,
        seq: InfoSeq,
    ) {
        let Some(f) = self.groups.get(group).and_then(|g| g.failover.as_ref()) else {
            return;
        };
        let role = self
            .nodes
            .get(&node)
            .and_then(|v| v.info.as_ref())
            .map(|(i, _, _)| i.role.clone());
        match &f.step {
            Step::WaitLeases { .. } => {}
            Step::Select { .. } => {
                self.try_select(now, group, false);
            }
            Step::Promoting {
                node: p,
                fresh,
                run_id,
            } => {
                if *p == node && seq >= *fresh && matches!(role, Some(NodeRole::Master { .. })) {
                    let selected = *run_id;
                    self.promoted(now, group, node, selected);
                }
            }
            Step::Reconfiguring {
                master, in_flight, ..
            } => {
                let Some((_, sent)) = in_flight.get(&node) else {
                    return;
                };
                let follows = matches!(role, Some(NodeRole::Replica { master: m, link_up: true }) if m == *master);
                if seq < *sent || !follows {
                    return;
                }
                self.reconfigured(now, group, node);
            }
        }
    }

    /// Asks INFO of every member of the group.
    fn poll_group(&mut self, group: &GroupName) {
        let Some(g) = self.groups.get(group) else {
            return;
        };
        let members: Vec<NodeId> = std::iter::once(g.durable.master)
            .chain(g.durable.replicas.iter().copied())
            .collect();
        for node in members {
            self.send_info(node);
        }
    }

    /// Picks the replica to promote once the fresh offsets allow it; `final_call` means the
    /// poll period ended, so replicas that did not answer are left out. Returns whether the
    /// failover moved on.
    fn try_select(&mut self, now: Instant, group: &GroupName, final_call: bool) -> bool {
        let master_down = self.master_down(group);
        let g = &self.groups[group];
        let Some(Failover {
            reason,
            step: Step::Select { fresh },
            target,
            ..
        }) = &g.failover
        else {
            return false;
        };
        let (reason, fresh, target) = (*reason, *fresh, *target);
        let master = g.durable.master;
        let master_info = self
            .nodes
            .get(&master)
            .and_then(|v| v.info.as_ref())
            .filter(|(_, seq, _)| *seq >= fresh)
            .map(|(i, _, _)| i.clone());
        match reason {
            ElectionReason::MasterDown if !master_down => {
                self.abort_failover(now, group, AbortReason::MasterBack);
                return true;
            }
            ElectionReason::Fenced if !master_down => {
                let is_master = self
                    .nodes
                    .get(&master)
                    .and_then(|v| v.info.as_ref())
                    .is_some_and(|(i, _, _)| matches!(i.role, NodeRole::Master { .. }));
                if is_master {
                    self.reaffirm(now, group);
                    return true;
                }
            }
            _ => {}
        }
        // Every replica's fresh INFO, if it answered.
        let replicas: Vec<NodeId> = g
            .durable
            .replicas
            .iter()
            .copied()
            .filter(|r| *r != master)
            .collect();
        let fresh_infos: Vec<(NodeId, NodeInfo)> = replicas
            .iter()
            .filter_map(|r| {
                let v = self.nodes.get(r)?;
                let (i, seq, _) = v.info.as_ref()?;
                (*seq >= fresh).then(|| (*r, i.clone()))
            })
            .collect();
        let waiting_for_some = replicas.iter().any(|r| {
            self.nodes.get(r).is_some_and(|v| !v.down) && !fresh_infos.iter().any(|(n, _)| n == r)
        });
        if waiting_for_some && !final_call {
            return false;
        }
        // Offsets compare only along one history. A replica's data is credited with the part
        // of it that is known to be the configured master's data: its offset in a history the
        // master wrote under, or, for data that continued from one of those histories
        // (`replid2`), the offset up to which it did. A stale old master, or a replica that
        // resynchronised from one, holds another history and is credited with nothing, so a
        // longer log of writes that were never acknowledged cannot win over a shorter log that
        // holds every acknowledged one.
        // The master's history is unknown (it died before this sentinel read it in this
        // epoch): the histories of the replicas that follow it with their link up stand in
        // for it. A replica whose link is down reports the history it cached itself (Redis
        // keeps its own id until a resync replaces it), which may be anything, so it does not.
        let followed: BTreeMap<ReplId, ReplOffset> = fresh_infos
            .iter()
            .filter(|(_, i)| {
                matches!(i.role, NodeRole::Replica { master: m, link_up: true } if m == master)
            })
            .map(|(_, i)| (i.replid, ReplOffset(u64::MAX)))
            .collect();
        let mut lineage = if g.durable.lineage.is_empty() {
            followed
        } else {
            g.durable.lineage.clone()
        };
        // Every history edge known: the ones read before, and the latest INFO of every member.
        let mut edges = g.edges.clone();
        for n in std::iter::once(master).chain(replicas.iter().copied()) {
            let Some((i, _, _)) = self.nodes.get(&n).and_then(|v| v.info.as_ref()) else {
                continue;
            };
            if i.replid2 != ReplId::default() {
                edges.insert((i.replid, i.replid2, i.replid2_until.min(i.offset)));
            }
        }
        extend_lineage(&mut lineage, &edges);
        let lineage = &lineage;
        let credit_in = |i: &NodeInfo| credit(lineage, &edges, i).0;
        let mut credited: Vec<(NodeId, NodeInfo, ReplOffset)> = fresh_infos
            .iter()
            .filter_map(|(n, i)| Some((*n, i.clone(), credit_in(i)?)))
            .collect();
        let sync = usize::from(g.cfg.sync_replicas);
        if credited.is_empty() && sync == 0 {
            // Asynchronous replication promises nothing: any replica beats no master.
            credited = fresh_infos
                .iter()
                .map(|(n, i)| (*n, i.clone(), i.offset))
                .collect();
        }
        let mut eligible: Vec<(NodeId, NodeInfo, ReplOffset)> = credited
            .iter()
            .filter(|(n, i, _)| self.nodes.get(n).is_some_and(|v| !v.down) && i.priority.0 != 0)
            .cloned()
            .collect();
        // The configured master itself, demoted by a stale command (a `REPLICAOF` confirmed
        // under an older config but delivered after its promotion, or a leader of an earlier
        // term pointing it at its own), yet alive with its data intact: it holds every
        // acknowledged write, and is a candidate like a replica (see `intact_master`).
        let intact = master_info.as_ref().and_then(|mi| {
            let view = self.nodes.get(&master)?;
            if view.unreachable || view.restarted_empty {
                return None;
            }
            let c = intact_master(lineage, &edges, mi)?;
            // Nothing credited beyond it, or it is not what it seems.
            credited
                .iter()
                .all(|(_, _, rc)| *rc <= c)
                .then(|| (mi.clone(), c))
        });
        if let (true, Some((mi, c))) = (sync > 0, intact) {
            // Every acknowledged write is on the demoted master: it and the replicas credited
            // with as much of its history as it holds are proven, whatever the other
            // replicas hold (one of them may have died for good), so no `R - N + 1` count of
            // decisive reads is needed.
            eligible.retain(|(_, _, rc)| *rc == c);
            eligible.push((master, mi, c));
        } else if sync > 0 {
            // Only a replica proven to hold every acknowledged write may be promoted: any
            // `R - N + 1` replicas include one of the `N` that acknowledged it, and the write
            // lies on the master's lineage, so the replica credited with the most of it holds
            // every acknowledged write any of them holds. That holds only for replicas whose
            // data is fully accounted for (`decisive`): each of their writes is either credited
            // or proven to lie off the master's lineage. A replica with data past its credit
            // under a history this sentinel cannot place may be the one that acknowledged the
            // write, so it does not count towards the `R - N + 1`; with too few decisive reads
            // the failover waits, and aborts at its deadline, rather than guess.
            let needed = replicas.len().saturating_sub(sync) + 1;
            let decisive = fresh_infos
                .iter()
                .filter(|(_, i)| credit(lineage, &edges, i).1)
                .count();
            if decisive < needed {
                return false;
            }
            let best = credited
                .iter()
                .map(|(_, _, c)| *c)
                .max()
                .unwrap_or_default();
            // Data past a replica's credit compares only between replicas of one history:
            // among equals, the longest log of each history stays in the running.
            let longer = |n: &NodeId, i: &NodeInfo| {
                credited.iter().any(|(m, j, c)| {
                    m != n && *c == best && j.replid == i.replid && j.offset > i.offset
                })
            };
            eligible.retain(|(n, i, c)| *c == best && !longer(n, i));
        }
        if let Some(t) = target {
            // The operator's choice, or nothing: a target that is not eligible (yet) keeps
            // the switchover waiting until it is, or until the step's deadline.
            eligible.retain(|(n, _, _)| *n == t);
        }
        let preferred = g.cfg.preferred_dc.clone();
        eligible.sort_by_key(|(_, i, c)| {
            (
                // An empty replica is promoted only when nothing better is left: a cache
                // that lost its data beats no master at all.
                i.empty,
                preferred.is_some() && i.dc != preferred,
                i.priority,
                Reverse(*c),
                Reverse(i.offset),
                i.run_id,
            )
        });
        let Some((chosen, chosen_info, _)) = eligible.into_iter().next() else {
            return false;
        };
        if reason == ElectionReason::Switchover {
            // Zero loss: writes are paused; promote only once the target caught up.
            let Some(mi) = master_info else {
                return false;
            };
            if chosen_info.offset < mi.offset {
                return false;
            }
        }
        info!(%group, node = %chosen, "+selected-slave");
        self.publish(Event::SelectedReplica {
            group: group.clone(),
            node: chosen,
        });
        self.emit(Action::Promote { node: chosen });
        let fresh = self.send_info(chosen);
        let timeout = self.failover_timeout(group);
        let f = self
            .groups
            .get_mut(group)
            .and_then(|g| g.failover.as_mut())
            .expect("failover checked above");
        f.step = Step::Promoting {
            node: chosen,
            fresh,
            run_id: chosen_info.run_id,
        };
        f.deadline = now + timeout;
        self.timers.set(
            Timer::Failover(group.clone()),
            now + self.cfg.role_poll_interval,
        );
        true
    }

    /// The promoted replica confirmed `role:master`: install the new config.
    fn promoted(&mut self, now: Instant, group: &GroupName, node: NodeId, selected: RunId) {
        let timeout = self.failover_timeout(group);
        // The reply that confirmed `role:master` is this epoch's first read of the new master:
        // its history starts the new lineage (as it would at the next INFO, which may never
        // come as a master's if a stale leader demotes it at once). Only if it comes from the
        // process that was selected: one that restarted since (perhaps empty) holds data
        // nobody checked, and is left to the usual reads.
        let seed: Vec<(ReplId, ReplOffset)> = self
            .nodes
            .get(&node)
            .and_then(|v| v.info.as_ref())
            .filter(|(i, _, _)| i.run_id == selected)
            .map(|(i, _, _)| master_history(i))
            .unwrap_or_default();
        let g = self.groups.get_mut(group).expect("caller found the group");
        let f = g.failover.as_ref().expect("caller found the failover");
        let epoch = ConfigEpoch::of_term(f.term);
        let old = g.durable.master;
        let reason = f.reason;
        g.durable.epoch = epoch;
        g.durable.master = node;
        g.durable.replicas.remove(&node);
        // A demoted master promoted again (`intact_master`) stays the master, not a replica.
        if old != node {
            g.durable.replicas.insert(old);
        }
        g.forget_opinions();
        g.disagree_since.clear();
        g.convergence_check = None;
        g.durable.lineage.clear();
        super::monitor::merge_lineage(&mut g.durable.lineage, seed.iter().copied());
        let mut pending: Vec<NodeId> = g.durable.replicas.iter().copied().collect();
        // The old master of a switchover is healthy and paused: demote it first.
        pending.sort_by_key(|n| *n != old);
        let unpause = (reason == ElectionReason::Switchover).then_some(old);
        let f = g.failover.as_mut().expect("caller found the failover");
        f.step = Step::Reconfiguring {
            master: node,
            pending: pending.into(),
            in_flight: BTreeMap::new(),
            unpause,
        };
        f.deadline = now + timeout;
        info!(%group, %node, %epoch, "+promoted-slave");
        self.persist();
        self.publish(Event::Promoted {
            group: group.clone(),
            node,
            epoch,
        });
        self.publish(Event::SwitchMaster {
            group: group.clone(),
            old,
            new: node,
            epoch,
        });
        if let Some(msg) = self.config_msg(group) {
            self.broadcast(msg);
        }
        self.after_master_change(now, group, old);
        self.advance_reconfiguration(now, group);
    }

    /// Settles a fenced term by keeping the healthy master under a new epoch.
    fn reaffirm(&mut self, now: Instant, group: &GroupName) {
        let g = self.groups.get_mut(group).expect("caller found the group");
        let f = g.failover.take().expect("caller found the failover");
        let epoch = ConfigEpoch::of_term(f.term);
        let master = g.durable.master;
        g.durable.epoch = epoch;
        g.election = Election::Idle;
        g.fenced_since = None;
        self.timers.cancel(&Timer::Failover(group.clone()));
        info!(%group, node = %master, %epoch, "master reaffirmed");
        self.persist();
        self.publish(Event::Reaffirmed {
            group: group.clone(),
            node: master,
            epoch,
        });
        if let Some(msg) = self.config_msg(group) {
            self.broadcast(msg);
        }
        self.after_master_change(now, group, master);
    }

    fn reconfigured(&mut self, now: Instant, group: &GroupName, node: NodeId) {
        let g = self.groups.get_mut(group).expect("caller found the group");
        let Some(Failover {
            step: Step::Reconfiguring {
                in_flight, unpause, ..
            },
            ..
        }) = g.failover.as_mut()
        else {
            return;
        };
        in_flight.remove(&node);
        let unpause_now = *unpause == Some(node);
        if unpause_now {
            *unpause = None;
        }
        info!(%group, %node, "+slave-reconf-done");
        self.publish(Event::ReplicaReconfigured {
            group: group.clone(),
            node,
        });
        if unpause_now {
            self.emit(Action::UnpauseWrites { node });
        }
        self.advance_reconfiguration(now, group);
    }

    /// Starts more reconfigurations up to `parallel_syncs`, and ends the failover when none is left.
    fn advance_reconfiguration(&mut self, now: Instant, group: &GroupName) {
        let parallel = usize::from(self.groups[group].cfg.parallel_syncs.get());
        let mut started = Vec::new();
        {
            let g = self.groups.get_mut(group).expect("caller found the group");
            let Some(Failover {
                step:
                    Step::Reconfiguring {
                        master,
                        pending,
                        in_flight,
                        ..
                    },
                ..
            }) = g.failover.as_mut()
            else {
                return;
            };
            // A term above our config epoch was asked for since our promotion was decided: its
            // leader may have promoted another node, which our config would turn into a
            // replica of ours, discarding its writes. The rest is left to convergence, which
            // confirms the config with a majority first.
            if g.durable.term > Term(g.durable.epoch.0) && !pending.is_empty() {
                warn!(%group, term = %g.durable.term, "newer term seen; reconfiguration left to convergence");
                pending.clear();
            }
            while in_flight.len() < parallel {
                let Some(node) = pending.pop_front() else {
                    break;
                };
                // A node that is down now is left to convergence when it returns.
                if self.nodes.get(&node).is_some_and(|v| v.down) {
                    continue;
                }
                started.push((node, *master));
                in_flight.insert(node, (now, InfoSeq(0)));
            }
        }
        for (node, master) in started {
            self.emit(Action::Reconfigure { node, master });
            let seq = self.send_info(node);
            let g = self.groups.get_mut(group).expect("caller found the group");
            if let Some(Failover {
                step: Step::Reconfiguring { in_flight, .. },
                ..
            }) = g.failover.as_mut()
            {
                in_flight.insert(node, (now, seq));
            }
        }
        let g = self.groups.get_mut(group).expect("caller found the group");
        let Some(f) = g.failover.as_ref() else {
            return;
        };
        let Step::Reconfiguring {
            pending,
            in_flight,
            unpause,
            ..
        } = &f.step
        else {
            return;
        };
        if !pending.is_empty() || !in_flight.is_empty() {
            return;
        }
        let unpause = *unpause;
        let epoch = g.durable.epoch;
        g.failover = None;
        g.election = Election::Idle;
        g.fenced_since = None;
        self.timers.cancel(&Timer::Failover(group.clone()));
        if let Some(node) = unpause {
            self.emit(Action::UnpauseWrites { node });
        }
        info!(%group, %epoch, "+failover-end");
        self.publish(Event::FailoverEnded {
            group: group.clone(),
            epoch,
        });
    }

    /// Stops a failover that has not promoted anything yet.
    pub(super) fn abort_failover(&mut self, now: Instant, group: &GroupName, reason: AbortReason) {
        let Some(g) = self.groups.get_mut(group) else {
            return;
        };
        let Some(f) = g.failover.as_ref() else {
            return;
        };
        assert!(!f.promoted(), "a failover aborts only before promotion");
        let term = f.term;
        let switchover = f.reason == ElectionReason::Switchover;
        let master = g.durable.master;
        g.failover = None;
        g.election = Election::Idle;
        let retry = g.odown && !g.paused;
        self.timers.cancel(&Timer::Failover(group.clone()));
        warn!(%group, %term, ?reason, "-failover-abort");
        self.publish(Event::FailoverAborted {
            group: group.clone(),
            term,
            reason,
        });
        if switchover {
            self.emit(Action::UnpauseWrites { node: master });
        }
        self.abandon_term(group, term);
        if retry {
            // Like Redis, wait before trying the same failover again, but not for minutes.
            let g = self.groups.get_mut(group).expect("group looked up above");
            g.election = Election::Backoff {
                reason: ElectionReason::MasterDown,
            };
            let timeout = g.cfg.failover_timeout;
            self.timers
                .set(Timer::Election(group.clone()), now + timeout);
        }
    }

    pub(super) fn failover_timeout(&self, group: &GroupName) -> Duration {
        self.groups
            .get(group)
            .map(|g| g.cfg.failover_timeout)
            .unwrap_or(Duration::from_secs(10))
    }
}

/// The history a node that reports itself master holds: its id, and the one it continued from
/// up to where it did.
pub(super) fn master_history(i: &NodeInfo) -> Vec<(ReplId, ReplOffset)> {
    let mut h = vec![(i.replid, ReplOffset(u64::MAX))];
    if i.replid2 != ReplId::default() {
        h.push((i.replid2, i.replid2_until));
    }
    h
}

/// What the configured master holds, if it was demoted (it reports `role:slave`) but provably
/// still holds every write it ever accepted: `Some(offset)` when its data is still its own
/// history of this epoch and nothing replaced it since.
///
/// Its `master_replid` is in `lineage` without bound, which only the master's own ids are
/// (a replica reports its upstream's history, and a partial resync that changes the id makes
/// it the source's); a master's data under its own id only grows. The one way a demoted
/// master loses data and still reports its own id is a full resync from a lagging replica of
/// its own history (Redis keeps its replicas connected when it turns into a replica, so such
/// a cycle forms; the simulator shows it dropping a write), and a full resync clears
/// `master_replid2` (`second_repl_offset` -1). So the master must still report the nonzero
/// secondary id it had as a master (the history it was promoted from, or its id before a
/// restart with data) and its link must be down. A master that never had one (the group's
/// first master, never restarted) proves nothing this way.
///
/// Such a master holds every acknowledged write: those acknowledged before its promotion
/// (the failover that promoted it proved it held them), and those it acknowledged itself;
/// no other node accepted a write since (leases). So it may be promoted again under a new
/// epoch, with every replica credited with as much, however many replicas the leader cannot
/// read or place.
pub(super) fn intact_master(
    lineage: &BTreeMap<ReplId, ReplOffset>,
    edges: &BTreeSet<(ReplId, ReplId, ReplOffset)>,
    i: &NodeInfo,
) -> Option<ReplOffset> {
    if !matches!(i.role, NodeRole::Replica { link_up: false, .. })
        || i.replid == ReplId::default()
        || i.replid2 == ReplId::default()
        || i.priority.0 == 0
        || lineage.get(&i.replid) != Some(&ReplOffset(u64::MAX))
    {
        return None;
    }
    let (c, decisive) = credit(lineage, edges, i);
    c.filter(|c| decisive && *c >= i.offset)
}

/// Extends `lineage` (each replication id with the offset up to which its data is the
/// configured master's data) with what the history `edges` (`(child, parent, offset)`: the
/// child's data up to `offset` is the parent's) prove, to a fixed point: an edge shares its
/// prefix both ways, so if either end is in the lineage up to `u`, the other is too, up to
/// `min(offset, u)`.
///
/// Nothing is guessed past a prefix: a history that continued from the lineage (a restart
/// with data, a promotion) is the master's only if the master reported it. That is enough,
/// because a master accepts writes only under a lease majority, and a sentinel grants a lease
/// only once the master's current id is in its durable lineage (`maybe_grant_lease`), which
/// its vote hands to the leader: every id holding acknowledged writes reaches the leader.
pub(super) fn extend_lineage(
    lineage: &mut BTreeMap<ReplId, ReplOffset>,
    edges: &BTreeSet<(ReplId, ReplId, ReplOffset)>,
) {
    loop {
        let mut grew = false;
        for &(child, parent, at) in edges {
            for (from, to) in [(child, parent), (parent, child)] {
                let Some(until) = lineage.get(&from).copied() else {
                    continue;
                };
                let shared = at.min(until);
                match lineage.get(&to) {
                    Some(have) if *have >= shared => {}
                    _ => {
                        lineage.insert(to, shared);
                        grew = true;
                    }
                }
            }
        }
        if !grew {
            break;
        }
    }
}

/// What the node that reported `i` provably holds of the master's data, and whether that
/// accounts for all of its data (`decisive`).
///
/// The node's data is history `replid` up to its offset and `replid2` up to `replid2_until`;
/// an edge `(child, parent, at)` makes it `parent`'s data as far as it was `child`'s, up to
/// `at`. Its credit is the most it shares with the lineage along those. A finite lineage
/// offset `u` of a history `h` is where the master's data left `h` (every source of one, a
/// master's `replid2` or a shared prefix, proves that), so a node holding `h` past `u` holds
/// a foreign write at `u + 1`, and, a log being one history, only foreign writes after it:
/// it is decisive. A node whose data goes past its credit under histories the lineage does
/// not place may hold acknowledged writes this sentinel cannot see: it is not.
pub(super) fn credit(
    lineage: &BTreeMap<ReplId, ReplOffset>,
    edges: &BTreeSet<(ReplId, ReplId, ReplOffset)>,
    i: &NodeInfo,
) -> (Option<ReplOffset>, bool) {
    let mut cover: BTreeMap<ReplId, ReplOffset> = BTreeMap::new();
    cover.insert(i.replid, i.offset);
    if i.replid2 != ReplId::default() {
        let at = i.replid2_until.min(i.offset);
        let e = cover.entry(i.replid2).or_default();
        *e = (*e).max(at);
    }
    loop {
        let mut grew = false;
        for &(child, parent, at) in edges {
            let Some(have) = cover.get(&child).copied() else {
                continue;
            };
            let shared = have.min(at);
            if cover.get(&parent).is_none_or(|c| *c < shared) {
                cover.insert(parent, shared);
                grew = true;
            }
        }
        if !grew {
            break;
        }
    }
    let mut best: Option<ReplOffset> = None;
    let mut diverges = false;
    for (id, held) in &cover {
        let Some(until) = lineage.get(id) else {
            continue;
        };
        best = best.max(Some((*held).min(*until)));
        diverges |= *held > *until;
    }
    let decisive = match best {
        Some(c) => c >= i.offset || diverges,
        None => i.offset == ReplOffset(0),
    };
    (best, decisive)
}
