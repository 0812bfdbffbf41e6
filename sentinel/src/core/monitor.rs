//! Failure detection: probes, INFO, subjective and objective down, leases and convergence.
//!
//! Owns `NodeView` (what this sentinel knows of one data node) and the handlers of probe and
//! INFO replies. Invariants: a node is SDOWN only after `down_after` without a valid reply, or
//! when it is a master that restarted empty or reports `role:slave` for `down_after`; a lease is
//! granted only to the master of the winning config, while it is healthy and while this
//! sentinel is not fenced by a vote; a node disagreeing with the config is reconfigured only
//! after a majority of voters, asked after its INFO was read, confirmed that none of them knows
//! a newer config or is fenced by a vote above ours (`ConvergenceCheck`).

use std::collections::BTreeSet;
use std::time::Instant;

use tracing::{debug, info};

use super::action::{Action, ElectionReason, Event, Lease};
use super::election::Election;
use super::input::{Gossip, NodeInfo, NodeRole, ProbeReply};
use super::timers::Timer;
use super::types::{ConfigEpoch, GroupName, InfoSeq, NodeId, ReplId, ReplOffset};
use super::{Group, Sentinel};

/// What this sentinel knows of one data node.
#[derive(Debug)]
pub(super) struct NodeView {
    pub(super) group: GroupName,
    /// The last valid probe reply (or when watching started).
    pub(super) last_valid: Instant,
    /// No valid reply for `down_after`.
    pub(super) unreachable: bool,
    /// The node restarted with an empty dataset while it was the master.
    pub(super) restarted_empty: bool,
    /// Since when the configured master reports `role:slave`.
    pub(super) role_mismatch_since: Option<Instant>,
    /// The aggregate SDOWN state last announced.
    pub(super) down: bool,
    /// The last INFO, the sequence number of its request, and when it arrived.
    pub(super) info: Option<(NodeInfo, InfoSeq, Instant)>,
}

impl Sentinel {
    /// Starts probing `node` as a member of `group`.
    pub(super) fn watch_node(&mut self, now: Instant, group: &GroupName, node: NodeId) {
        if self.nodes.contains_key(&node) {
            return;
        }
        self.nodes.insert(
            node,
            NodeView {
                group: group.clone(),
                last_valid: now,
                unreachable: false,
                restarted_empty: false,
                role_mismatch_since: None,
                down: false,
                info: None,
            },
        );
        // Spread probes over the interval so that 100 groups do not probe in lockstep.
        let offset = self.random_duration(self.cfg.probe_interval);
        self.timers.set(Timer::Probe(node), now + offset);
        self.timers.set(Timer::Info(node), now + offset);
        self.timers
            .set(Timer::Down(node), now + self.down_after(group));
    }

    pub(super) fn on_probe_timer(&mut self, now: Instant, node: NodeId) {
        self.emit_now(Action::Probe { node });
        self.timers
            .set(Timer::Probe(node), now + self.cfg.probe_interval);
        self.refresh_down(now, node);
        let Some(group) = self.nodes.get(&node).map(|v| v.group.clone()) else {
            return;
        };
        if self
            .groups
            .get(&group)
            .is_some_and(|g| g.durable.master == node)
        {
            self.refresh_opinion(now, &group);
            self.evaluate_odown(now, &group);
        }
    }

    pub(super) fn on_info_timer(&mut self, now: Instant, node: NodeId) {
        let Some(group) = self.nodes.get(&node).map(|v| v.group.clone()) else {
            return;
        };
        self.send_info(node);
        // Fast during a failover, and while the node disagrees with the config, so that an old
        // master back from a pause is demoted once the grace has passed, not an INFO later.
        let fast = self.groups.get(&group).is_some_and(|g| {
            g.failover.is_some() || g.odown || g.disagree_since.contains_key(&node)
        });
        let every = if fast {
            self.cfg.info_interval_failover
        } else {
            self.cfg.info_interval
        };
        self.timers.set(Timer::Info(node), now + every);
    }

    /// Sends INFO with a fresh sequence number and returns it.
    pub(super) fn send_info(&mut self, node: NodeId) -> InfoSeq {
        self.info_seq = InfoSeq(self.info_seq.0 + 1);
        let seq = self.info_seq;
        self.emit_now(Action::Info { node, seq });
        seq
    }

    pub(super) fn on_down_timer(&mut self, now: Instant, node: NodeId) {
        let Some(view) = self.nodes.get_mut(&node) else {
            return;
        };
        view.unreachable = true;
        self.refresh_down(now, node);
    }

    pub(super) fn handle_node_replied(&mut self, now: Instant, node: NodeId, reply: ProbeReply) {
        let Some(view) = self.nodes.get_mut(&node) else {
            debug!(%node, "reply from an unknown node ignored");
            return;
        };
        let was_unreachable = view.unreachable;
        view.last_valid = now;
        view.unreachable = false;
        let group = view.group.clone();
        let down_after = self.down_after(&group);
        self.timers.set(Timer::Down(node), now + down_after);
        if was_unreachable {
            // A node coming back may have restarted empty: look at it at once.
            self.send_info(node);
        }
        self.refresh_down(now, node);
        self.maybe_grant_lease(now, &group, node, reply);
    }

    pub(super) fn handle_info(&mut self, now: Instant, node: NodeId, seq: InfoSeq, info: NodeInfo) {
        let Some(view) = self.nodes.get_mut(&node) else {
            debug!(%node, "INFO from an unknown node ignored");
            return;
        };
        if view.info.as_ref().is_some_and(|(_, s, _)| *s > seq) {
            debug!(%node, "stale INFO reply ignored");
            return;
        }
        let group_name = view.group.clone();
        // A restart counts only if the node was a master before it: a replica that restarted
        // empty and was then promoted knowingly (nothing better was left) is the new history,
        // not a master that lost its data.
        let restarted = view.info.as_ref().is_some_and(|(old, _, _)| {
            old.run_id != info.run_id && matches!(old.role, NodeRole::Master { .. })
        });
        view.info = Some((info.clone(), seq, now));
        let Some(group) = self.groups.get(&group_name) else {
            return;
        };
        let is_master = group.durable.master == node;
        // Only replicas that answer count: the last INFO of a dead one (often the old master
        // itself) says nothing about whether an empty master is worse than what is left, and
        // counting it would fail over from one knowingly promoted empty node to the next.
        // Once this epoch's master history is known, only data on it counts: a stale branch
        // (an old master of an earlier epoch holding writes nobody acknowledged) is no sign
        // that the master lost anything, and no failover could promote it over the master
        // anyway, so counting it failed the group over for ever (1108598).
        let mut lineage = group.durable.lineage.clone();
        super::failover::extend_lineage(&mut lineage, &group.edges);
        let holds_data = |i: &NodeInfo| {
            if lineage.is_empty() {
                i.offset.0 > 0
            } else {
                super::failover::credit(&lineage, &group.edges, i)
                    .0
                    .is_some_and(|c| c.0 > 0)
            }
        };
        let replicas_have_data = group.durable.replicas.iter().any(|r| {
            self.nodes
                .get(r)
                .filter(|v| !v.down)
                .and_then(|v| v.info.as_ref())
                .is_some_and(|(i, _, _)| holds_data(i))
        });
        if is_master && info.empty && (restarted || replicas_have_data) {
            let view = self.nodes.get_mut(&node).expect("view looked up above");
            if !view.restarted_empty {
                view.restarted_empty = true;
                info!(%node, group = %group_name, "master restarted empty; treated as down");
                self.publish(Event::RestartedEmpty { node });
            }
        }
        if info.replid2 != ReplId::default() {
            if let Some(g) = self.groups.get_mut(&group_name) {
                let edge = (
                    info.replid,
                    info.replid2,
                    info.replid2_until.min(info.offset),
                );
                if g.edges.len() < super::MAX_EDGES || g.edges.contains(&edge) {
                    g.edges.insert(edge);
                } else {
                    debug!(group = %group_name, "history edge table full; edge not kept");
                }
            }
        }
        match (&info.role, is_master) {
            (NodeRole::Replica { .. }, true) => {
                let view = self.nodes.get_mut(&node).expect("view looked up above");
                view.role_mismatch_since.get_or_insert(now);
            }
            (NodeRole::Master { replicas }, true) => {
                let view = self.nodes.get_mut(&node).expect("view looked up above");
                view.role_mismatch_since = None;
                // A master that restarted empty starts a history without the acknowledged
                // writes: it is never part of the lineage replicas are compared along.
                // (An empty master not known to have lost data, such as a new group or a replica
                // promoted empty because nothing better was left, is the history itself.)
                let empty = view.restarted_empty;
                let mut grew = false;
                if let Some(g) = self.groups.get_mut(&group_name).filter(|_| !empty) {
                    grew = merge_lineage(
                        &mut g.durable.lineage,
                        std::iter::once((info.replid, ReplOffset(u64::MAX))).chain(
                            (info.replid2 != ReplId::default())
                                .then_some((info.replid2, info.replid2_until)),
                        ),
                    );
                }
                if grew {
                    // Durable before the next lease grant, which waits for this `Persist`.
                    self.persist();
                }
                let unknown: Vec<NodeId> = replicas
                    .iter()
                    .copied()
                    .filter(|r| !self.nodes.contains_key(r))
                    .collect();
                for r in unknown {
                    self.discover_replica(now, &group_name, r);
                }
            }
            _ => {}
        }
        self.refresh_down(now, node);
        self.check_convergence(now, &group_name, node, &info);
        self.failover_on_info(now, &group_name, node, seq);
    }

    fn discover_replica(&mut self, now: Instant, group: &GroupName, node: NodeId) {
        let Some(g) = self.groups.get_mut(group) else {
            return;
        };
        if g.durable.replicas.insert(node) {
            info!(%node, %group, "replica discovered");
            self.watch_node(now, group, node);
            self.persist();
        }
    }

    /// Recomputes the aggregate SDOWN state of `node` and announces a change.
    pub(super) fn refresh_down(&mut self, now: Instant, node: NodeId) {
        let Some(view) = self.nodes.get(&node) else {
            return;
        };
        let group = view.group.clone();
        let down_after = self.down_after(&group);
        let is_master = self
            .groups
            .get(&group)
            .is_some_and(|g| g.durable.master == node);
        let role_wrong = is_master
            && view
                .role_mismatch_since
                .is_some_and(|since| now.saturating_duration_since(since) >= down_after);
        let down = view.unreachable || (is_master && view.restarted_empty) || role_wrong;
        if down == view.down {
            return;
        }
        let view = self.nodes.get_mut(&node).expect("view looked up above");
        view.down = down;
        if down {
            info!(%node, %group, "+sdown");
            self.publish(Event::SubjectivelyDown { node });
        } else {
            info!(%node, %group, "-sdown");
            self.publish(Event::SubjectivelyUp { node });
        }
        if is_master {
            self.push_opinion(now, &group);
            self.evaluate_odown(now, &group);
        }
    }

    /// Whether this sentinel sees `group`'s current master down.
    pub(super) fn master_down(&self, group: &GroupName) -> bool {
        self.groups
            .get(group)
            .and_then(|g| self.nodes.get(&g.durable.master))
            .is_some_and(|v| v.down)
    }

    fn push_opinion(&mut self, now: Instant, group: &GroupName) {
        let Some(g) = self.groups.get_mut(group) else {
            return;
        };
        g.last_opinion_push = Some(now);
        let master = g.durable.master;
        let down = self.master_down(group);
        self.broadcast(Gossip::Opinion {
            group: group.clone(),
            master,
            down,
        });
    }

    /// Re-sends a down opinion now and then, so that a lost message cannot block ODOWN.
    fn refresh_opinion(&mut self, now: Instant, group: &GroupName) {
        if !self.master_down(group) {
            return;
        }
        let every = self.cfg.probe_interval * 3;
        let due = self.groups.get(group).is_some_and(|g| {
            g.last_opinion_push
                .is_none_or(|t| now.saturating_duration_since(t) >= every)
        });
        if due {
            self.push_opinion(now, group);
        }
    }

    pub(super) fn handle_opinion(
        &mut self,
        now: Instant,
        from: crate::core::SentinelId,
        group: &GroupName,
        master: NodeId,
        down: bool,
    ) {
        let Some(g) = self.groups.get_mut(group) else {
            return;
        };
        if g.durable.master != master {
            debug!(%group, %master, "opinion about another master ignored");
            return;
        }
        g.opinions.insert(from, (down, now));
        self.evaluate_odown(now, group);
    }

    /// ODOWN: `quorum` sentinels, this one included, saw the master down recently.
    pub(super) fn evaluate_odown(&mut self, now: Instant, group: &GroupName) {
        let self_down = self.master_down(group);
        let window = self.cfg.probe_interval * 2 + self.down_after(group);
        let Some(g) = self.groups.get_mut(group) else {
            return;
        };
        let peers_down = g
            .opinions
            .values()
            .filter(|(down, at)| *down && now.saturating_duration_since(*at) <= window)
            .count();
        let odown = self_down && peers_down + 1 >= g.cfg.quorum.get();
        if odown == g.odown {
            return;
        }
        g.odown = odown;
        if odown {
            info!(%group, "+odown");
            self.publish(Event::ObjectivelyDown {
                group: group.clone(),
            });
            self.maybe_start_election(now, group, ElectionReason::MasterDown);
        } else {
            info!(%group, "-odown");
            self.publish(Event::ObjectivelyUp {
                group: group.clone(),
            });
            let g = self.groups.get_mut(group).expect("group looked up above");
            if matches!(
                g.election,
                Election::Jitter { .. } | Election::Backoff { .. }
            ) {
                g.election = Election::Idle;
                self.timers.cancel(&Timer::Election(group.clone()));
            }
        }
    }

    fn maybe_grant_lease(
        &mut self,
        now: Instant,
        group: &GroupName,
        node: NodeId,
        reply: ProbeReply,
    ) {
        let Some(start) = reply.clock else {
            return;
        };
        let majority = self.majority();
        // A sentinel that is no voter, or promised in a voter-set change, grants nothing; nor
        // does one whose config is older than what the last voter-set change required.
        if !self.is_voter() || self.in_member_change() {
            return;
        }
        let fence = self.lease_fence(group);
        let Some(g) = self.groups.get(group) else {
            return;
        };
        if g.durable.master != node
            || g.is_fenced()
            || g.failover.is_some()
            || g.durable.epoch < fence
        {
            return;
        }
        let Some(view) = self.nodes.get(&node) else {
            return;
        };
        let Some((info, _, _)) = view.info.as_ref() else {
            return;
        };
        if view.down || !matches!(info.role, NodeRole::Master { .. }) {
            return;
        }
        // Writes under a history this sentinel has not durably recorded could be lost by a
        // leader that never read it: no lease for them.
        if g.durable.lineage.get(&info.replid) != Some(&ReplOffset(u64::MAX)) {
            return;
        }
        let run_id = info.run_id;
        let lease = Lease {
            from: self.id,
            start,
            ttl: self.cfg.lease_ttl,
            majority: u8::try_from(majority).unwrap_or(u8::MAX),
            members: self.members_epoch(),
            run_id,
        };
        self.groups
            .get_mut(group)
            .expect("group looked up above")
            .last_lease = Some(now);
        self.emit(Action::GrantLease { node, lease });
    }

    /// Reconfigures a node that disagrees with the winning config for `convergence_grace`.
    fn check_convergence(
        &mut self,
        now: Instant,
        group: &GroupName,
        node: NodeId,
        info: &NodeInfo,
    ) {
        let in_contact = self.in_contact_with_majority(now);
        let Some(g) = self.groups.get(group) else {
            return;
        };
        let master = g.durable.master;
        let agrees = match &info.role {
            NodeRole::Master { .. } => node == master,
            NodeRole::Replica { master: m, .. } => node != master && *m == master,
        };
        // The configured master reporting `role:slave` is handled as SDOWN, not reconfigured;
        // a group in failover is the leader's business.
        if agrees || node == master || g.failover.is_some() || g.paused {
            self.groups
                .get_mut(group)
                .expect("group looked up above")
                .disagree_since
                .remove(&node);
            return;
        }
        let master_ok = self.nodes.get(&master).is_some_and(|v| !v.down);
        let node_ok = self.nodes.get(&node).is_some_and(|v| !v.down);
        let grace = self.cfg.convergence_grace;
        let g = self.groups.get_mut(group).expect("group looked up above");
        let since = *g.disagree_since.entry(node).or_insert(now);
        if now.saturating_duration_since(since) < grace || !master_ok || !node_ok || !in_contact {
            return;
        }
        g.disagree_since.insert(node, now);
        self.confirm_config_then_reconfigure(group, node);
    }

    /// Asks every voter, in messages sent after the INFO that showed `node` disagreeing,
    /// whether it knows a config of `group` newer than ours or is fenced by a vote above it;
    /// `node` is reconfigured only once a majority (this sentinel included) said neither
    /// (`handle_config_answer`). A check under way is replaced by one that also covers `node`,
    /// so every node it covers was read before its query left.
    ///
    /// Why: a sentinel whose config is behind would turn a node holding the newer master's
    /// acknowledged writes into a replica of the old master, and the full resync discards
    /// them. A newer master accepts writes only under leases from a majority that installed
    /// its config, and its leader needs votes from a majority, which fences each voter until
    /// the config settles; any two majorities overlap, so a newer config (or one on its way)
    /// that existed when the answers were sent shows up in at least one of them.
    fn confirm_config_then_reconfigure(&mut self, group: &GroupName, node: NodeId) {
        use rand::Rng;
        let id: u64 = self.rng.random();
        let Some(g) = self.groups.get_mut(group) else {
            return;
        };
        if g.is_fenced() {
            debug!(%group, %node, "fenced by a vote; convergence waits");
            return;
        }
        let (epoch, master) = (g.durable.epoch, g.durable.master);
        let mut nodes = BTreeSet::from([node]);
        if let Some(old) = g.convergence_check.take() {
            if old.epoch == epoch && old.master == master {
                nodes.extend(old.nodes);
            }
        }
        g.convergence_check = Some(ConvergenceCheck {
            id,
            epoch,
            master,
            nodes,
            confirmed: BTreeSet::new(),
        });
        debug!(%group, %node, %epoch, "confirming config before reconfiguring");
        self.broadcast(Gossip::ConfigQuery {
            group: group.clone(),
            epoch,
            master,
            id,
        });
        self.finish_convergence_check(group);
    }

    /// Answers a peer's `ConfigQuery`, after adopting its config if it is newer.
    pub(super) fn handle_config_query(
        &mut self,
        now: Instant,
        from: crate::core::SentinelId,
        group: &GroupName,
        epoch: ConfigEpoch,
        master: NodeId,
        id: u64,
    ) {
        self.adopt_config(now, group, epoch, master, Vec::new());
        let Some(g) = self.groups.get(group) else {
            return;
        };
        let answer = Gossip::ConfigAnswer {
            group: group.clone(),
            id,
            epoch: g.durable.epoch,
            master: g.durable.master,
            fenced: g.is_fenced(),
        };
        // Behind any `Persist` of an adopted config or a vote, so the answer never claims
        // less than this sentinel's durable state.
        self.emit(Action::SendGossip {
            to: from,
            msg: answer,
        });
    }

    /// A peer's answer to our `ConfigQuery`.
    pub(super) fn handle_config_answer(
        &mut self,
        now: Instant,
        from: crate::core::SentinelId,
        answer: Gossip,
    ) {
        let Gossip::ConfigAnswer {
            group,
            id,
            epoch,
            master,
            fenced,
        } = answer
        else {
            return;
        };
        let group = &group;
        let Some(g) = self.groups.get_mut(group) else {
            return;
        };
        let Some(check) = g.convergence_check.as_mut().filter(|c| c.id == id) else {
            debug!(%group, peer = %from, "answer to another config query ignored");
            return;
        };
        if epoch > check.epoch {
            // Our config is behind: the newer one wins, and the check is void.
            g.convergence_check = None;
            self.adopt_config(now, group, epoch, master, Vec::new());
            return;
        }
        if fenced {
            // A failover may be under way there: this answer confirms nothing. (It does not
            // void the check either: a sentinel whose leader died stays fenced until an
            // election settles it, and the others may still make a majority.)
            debug!(%group, peer = %from, "peer fenced by a vote; not a confirmation");
            return;
        }
        check.confirmed.insert(from);
        self.finish_convergence_check(group);
    }

    /// Reconfigures the nodes of the check once a majority confirmed our config.
    fn finish_convergence_check(&mut self, group: &GroupName) {
        let majority = self.majority();
        let Some(g) = self.groups.get_mut(group) else {
            return;
        };
        let Some(check) = g.convergence_check.as_ref() else {
            return;
        };
        if check.confirmed.len() + 1 < majority {
            return;
        }
        let check = g.convergence_check.take().expect("checked above");
        let master = g.durable.master;
        let current = check.epoch == g.durable.epoch && check.master == master;
        if !current || g.failover.is_some() || g.paused || g.is_fenced() {
            return;
        }
        let master_ok = self.nodes.get(&master).is_some_and(|v| !v.down);
        if !master_ok {
            return;
        }
        for node in check.nodes {
            // Only nodes that still disagree (by their latest INFO) and answer.
            let still = self.nodes.get(&node).is_some_and(|v| {
                !v.down
                    && v.info.as_ref().is_some_and(|(i, _, _)| match &i.role {
                        NodeRole::Master { .. } => node != master,
                        NodeRole::Replica { master: m, .. } => node != master && *m != master,
                    })
            });
            if !still {
                continue;
            }
            info!(%node, %group, %master, "+convert-to-slave");
            self.emit(Action::Reconfigure { node, master });
            self.publish(Event::ConvertedToReplica {
                group: group.clone(),
                node,
                master,
            });
        }
    }

    pub(super) fn down_after(&self, group: &GroupName) -> std::time::Duration {
        self.groups
            .get(group)
            .map(|g| g.cfg.down_after)
            .unwrap_or(self.cfg.probe_interval * 50)
    }
}

/// A confirmation that no voter of a majority knows a config newer than ours (or is fenced by
/// a vote above it), asked before reconfiguring `nodes`.
#[derive(Debug)]
pub(super) struct ConvergenceCheck {
    /// The random id of the query; only answers echoing it count.
    id: u64,
    /// The config the query was about.
    epoch: ConfigEpoch,
    master: NodeId,
    /// The disagreeing nodes to reconfigure, each read before the query left.
    nodes: BTreeSet<NodeId>,
    /// The peers that answered with no newer config and no fence.
    confirmed: BTreeSet<crate::core::SentinelId>,
}

/// The most ids a group's lineage holds; a master gets a new one per promotion or restart.
pub(super) const MAX_LINEAGE: usize = 64;

/// Adds `entries` to `lineage` (keeping the larger offset of an id); returns whether it grew.
/// A full lineage takes nothing new, and a master whose id is not in it gets no lease.
pub(super) fn merge_lineage(
    lineage: &mut std::collections::BTreeMap<ReplId, ReplOffset>,
    entries: impl IntoIterator<Item = (ReplId, ReplOffset)>,
) -> bool {
    let mut grew = false;
    for (id, until) in entries {
        let full = lineage.len() >= MAX_LINEAGE;
        match lineage.get_mut(&id) {
            Some(have) if *have >= until => {}
            Some(have) => {
                *have = until;
                grew = true;
            }
            None if !full => {
                lineage.insert(id, until);
                grew = true;
            }
            None => debug!(?id, "lineage full; id not kept"),
        }
    }
    grew
}

impl Group {
    /// Drops opinions about a master that is no longer the master.
    pub(super) fn forget_opinions(&mut self) {
        self.opinions.clear();
        self.last_opinion_push = None;
    }
}
