//! Peers: gossip dispatch, heartbeats, membership and config convergence between sentinels.
//!
//! Owns the handlers of every `Gossip` message, the heartbeat timer and the adoption of newer
//! configs. Invariants: the config with the highest epoch wins and an epoch never decreases;
//! messages from a sentinel outside the voter set are ignored, except `Hello`, `Membership` and
//! a heartbeat's membership epoch; a voter leaves the set only when an operator forgets it
//! (agreed, `members`), never because it went quiet.

use std::time::Instant;

use tracing::{debug, info};

use super::Sentinel;
use super::action::{AbortReason, ElectionReason, Event};
use super::election::Election;
use super::input::Gossip;
use super::timers::Timer;
use super::types::{ConfigEpoch, GroupName, NodeId, ReplId, ReplOffset, SentinelId, Term};

impl Sentinel {
    pub(super) fn handle_gossip(&mut self, now: Instant, from: SentinelId, msg: Gossip) {
        if from == self.id {
            return;
        }
        // Membership travels between sentinels that are not (or no longer) voters of each
        // other too: joins, commits, and the epoch in heartbeats.
        let msg = match msg {
            Gossip::Membership {
                cluster,
                epoch,
                msg,
            } => return self.handle_member(now, from, cluster, epoch, msg),
            other => other,
        };
        match &msg {
            Gossip::Hello => self.member_hello(from),
            Gossip::Heartbeat {
                cluster, members, ..
            } => self.member_heartbeat(from, *cluster, *members),
            _ => {}
        }
        if !self.voters.contains(&from) {
            debug!(peer = %from, "gossip from a non-member ignored");
            return;
        }
        self.last_heard.insert(from, now);
        match msg {
            Gossip::Hello => {}
            Gossip::Opinion {
                group,
                master,
                down,
            } => self.handle_opinion(now, from, &group, master, down),
            Gossip::RequestVote {
                group,
                term,
                epoch,
                reason,
                master,
                agreed,
                members,
            } => self.handle_request_vote(
                now, from, &group, term, epoch, reason, master, agreed, members,
            ),
            vote @ Gossip::Vote { .. } => self.handle_vote(now, from, vote),
            Gossip::Abandoned { group, term } => self.handle_abandoned(from, &group, term),
            Gossip::Maintenance { group, paused } => self.apply_maintenance(now, &group, paused),
            Gossip::Config {
                group,
                epoch,
                master,
                lineage,
                agreed,
                options,
                removed,
                reset,
            } => {
                if !self.groups.contains_key(&group) {
                    // Only a group an operator added (or removed) travels to sentinels that
                    // do not know it; one from another sentinel's config file does not.
                    if agreed == Term(0) || self.groups.len() >= super::MAX_GROUPS {
                        return;
                    }
                    self.insert_removed(now, &group, master);
                }
                let before = self.groups.get(&group).map(|g| g.durable.agreed);
                // The master first: a group monitored again starts from its new master.
                self.adopt_config(now, &group, epoch, master, lineage);
                self.adopt_agreed(now, &group, agreed, options, removed, reset);
                let after = self.groups.get(&group).map(|g| g.durable.agreed);
                if after > before {
                    // Tell the sender at once that we hold it (an operator waits for that).
                    if let Some(entry) = self.heartbeat_entry(&group) {
                        self.emit(crate::core::Action::SendGossip {
                            to: from,
                            msg: Gossip::Heartbeat {
                                voters: self.voters.iter().copied().collect(),
                                configs: vec![entry],
                                cluster: self.members.cluster,
                                members: self.members.epoch,
                            },
                        });
                    }
                }
            }
            Gossip::ConfigPull { group } => {
                if let Some(msg) = self.config_msg(&group) {
                    self.emit(crate::core::Action::SendGossip { to: from, msg });
                }
            }
            Gossip::ConfigQuery {
                group,
                epoch,
                master,
                id,
            } => self.handle_config_query(now, from, &group, epoch, master, id),
            answer @ Gossip::ConfigAnswer { .. } => self.handle_config_answer(now, from, answer),
            Gossip::Membership { .. } => {}
            Gossip::Heartbeat { configs, .. } => {
                for (group, epoch, master, agreed) in configs {
                    let Some(g) = self.groups.get_mut(&group) else {
                        if agreed > Term(0) && self.groups.len() < super::MAX_GROUPS {
                            // An operator added (or removed) a group we do not know.
                            self.emit(crate::core::Action::SendGossip {
                                to: from,
                                msg: Gossip::ConfigPull { group },
                            });
                        }
                        continue;
                    };
                    g.peer_agreed.insert(from, agreed);
                    let mine = (g.durable.epoch, g.durable.agreed);
                    if epoch > mine.0 {
                        self.adopt_config(now, &group, epoch, master, Vec::new());
                    }
                    if agreed > mine.1 {
                        // Options come whole, with a `Config`.
                        self.emit(crate::core::Action::SendGossip {
                            to: from,
                            msg: Gossip::ConfigPull {
                                group: group.clone(),
                            },
                        });
                    }
                    if epoch < mine.0 || agreed < mine.1 {
                        // The peer is behind: tell it at once rather than at our next heartbeat.
                        if let Some(msg) = self.config_msg(&group) {
                            self.emit(crate::core::Action::SendGossip { to: from, msg });
                        }
                    }
                    self.check_admin_confirmed(&group);
                }
            }
        }
    }

    /// This sentinel's heartbeat entry for `group`.
    pub(super) fn heartbeat_entry(
        &self,
        group: &GroupName,
    ) -> Option<(GroupName, ConfigEpoch, NodeId, Term)> {
        let g = self.groups.get(group)?;
        Some((
            group.clone(),
            g.durable.epoch,
            g.durable.master,
            g.durable.agreed,
        ))
    }

    pub(super) fn on_heartbeat_timer(&mut self, now: Instant) {
        self.timers
            .set(Timer::Heartbeat, now + self.cfg.heartbeat_interval);
        let names: Vec<GroupName> = self.groups.keys().cloned().collect();
        let configs: Vec<(GroupName, ConfigEpoch, NodeId, Term)> = names
            .iter()
            .filter_map(|name| self.heartbeat_entry(name))
            .collect();
        self.expire_admin(now);
        let voters: Vec<SentinelId> = self.voters.iter().copied().collect();
        self.broadcast(Gossip::Heartbeat {
            voters,
            configs,
            cluster: self.members.cluster,
            members: self.members.epoch,
        });
        self.member_tick();
        // A fence that no config and no abandonment settled (its leader died) is settled by a
        // new election, so that the master gets its leases back.
        // Likewise a config older than the last voter-set change requires, when no newer
        // config arrived in that time (the leader it waits for died).
        let since = self.members_since;
        let stale: Vec<GroupName> = self
            .groups
            .iter()
            .filter(|(name, g)| {
                let behind = g.durable.epoch < self.lease_fence(name)
                    && since.is_some_and(|t| {
                        now.saturating_duration_since(t) >= g.cfg.failover_timeout
                    });
                let fenced = g.is_fenced()
                    && g.fenced_since.is_some_and(|t| {
                        now.saturating_duration_since(t) >= g.cfg.failover_timeout
                    });
                (fenced || behind)
                    && !g.durable.removed
                    && g.failover.is_none()
                    && matches!(g.election, Election::Idle)
            })
            .map(|(name, _)| name.clone())
            .collect();
        for group in stale {
            self.maybe_start_election(now, &group, ElectionReason::Fenced);
        }
        // A group still objectively down with nothing under way: the transition that starts
        // an election came while this sentinel was busy (leading another failover, running for
        // an operator's change), so it would wait for the next one for ever.
        let down: Vec<GroupName> = self
            .groups
            .iter()
            .filter(|(_, g)| {
                g.odown
                    && !g.paused
                    && !g.durable.removed
                    && g.failover.is_none()
                    && matches!(g.election, Election::Idle)
            })
            .map(|(name, _)| name.clone())
            .collect();
        for group in down {
            self.maybe_start_election(now, &group, ElectionReason::MasterDown);
        }
    }

    /// Installs `(epoch, master)` for `group` if it is newer than ours, with what the sender
    /// knows of that master's history (`lineage`, of the same epoch: merged into ours when we
    /// already have the config).
    pub(super) fn adopt_config(
        &mut self,
        now: Instant,
        group: &GroupName,
        epoch: ConfigEpoch,
        master: NodeId,
        lineage: Vec<(ReplId, ReplOffset)>,
    ) {
        let Some(g) = self.groups.get_mut(group) else {
            return;
        };
        if epoch == g.durable.epoch && master == g.durable.master {
            if super::monitor::merge_lineage(&mut g.durable.lineage, lineage) {
                // Durable before the next lease grant, which waits for this `Persist`.
                self.persist();
            }
            return;
        }
        if epoch < g.durable.epoch {
            return;
        }
        if epoch == g.durable.epoch {
            debug!(%group, %epoch, %master, "conflicting config of the same epoch ignored");
            return;
        }
        // Our own promotion, if any, lost to a newer one: the newer config wins.
        self.stand_down(now, group, true);
        self.admin_candidacy_lost(group);
        let g = self.groups.get_mut(group).expect("group looked up above");
        let old = g.durable.master;
        g.durable.epoch = epoch;
        g.durable.master = master;
        g.durable.replicas.remove(&master);
        if old != master {
            g.durable.replicas.insert(old);
        }
        g.forget_opinions();
        g.disagree_since.clear();
        g.convergence_check = None;
        g.durable.lineage.clear();
        super::monitor::merge_lineage(&mut g.durable.lineage, lineage);
        if !g.is_fenced() {
            g.fenced_since = None;
        }
        if g.durable.removed {
            // Nobody here watches it: the config is only kept.
            self.persist();
            return;
        }
        info!(%group, %old, new = %master, %epoch, "+switch-master");
        self.persist();
        self.publish(Event::SwitchMaster {
            group: group.clone(),
            old,
            new: master,
            epoch,
        });
        if !self.nodes.contains_key(&master) {
            self.watch_node(now, group, master);
        }
        self.after_master_change(now, group, old);
    }

    /// Ends this sentinel's failover and candidacy of `group`, which a newer config or the
    /// group's removal made pointless: a failover not promoted yet aborts (one that sent
    /// `REPLICAOF NO ONE` only if `abort_promoting`), one past that is dropped; a candidacy's
    /// term is abandoned, or its voters' fence (and ours) would stand until some election
    /// settled it.
    pub(super) fn stand_down(&mut self, now: Instant, group: &GroupName, abort_promoting: bool) {
        let Some(g) = self.groups.get_mut(group) else {
            return;
        };
        if let Some(f) = g.failover.as_ref() {
            if f.promoted() || (f.promoting() && !abort_promoting) {
                g.failover = None;
                g.election = Election::Idle;
                self.timers.cancel(&Timer::Failover(group.clone()));
            } else {
                self.abort_failover(now, group, AbortReason::NewerConfig);
            }
        }
        let g = self.groups.get_mut(group).expect("group looked up above");
        let candidacy = match g.election {
            Election::Candidate { term, .. } => Some(term),
            _ => None,
        };
        if !matches!(g.election, Election::Idle) {
            g.election = Election::Idle;
            self.timers.cancel(&Timer::Election(group.clone()));
        }
        if let Some(term) = candidacy {
            self.abandon_term(group, term);
        }
    }

    /// Re-evaluates the group after its master changed from `old`.
    pub(super) fn after_master_change(&mut self, now: Instant, group: &GroupName, old: NodeId) {
        if let Some(v) = self.nodes.get_mut(&old) {
            v.restarted_empty = false;
            v.role_mismatch_since = None;
        }
        let Some(master) = self.groups.get(group).map(|g| g.durable.master) else {
            return;
        };
        if let Some(v) = self.nodes.get_mut(&master) {
            v.restarted_empty = false;
        }
        self.refresh_down(now, old);
        self.refresh_down(now, master);
        let g = self.groups.get_mut(group).expect("group looked up above");
        if g.odown {
            g.odown = false;
            self.publish(Event::ObjectivelyUp {
                group: group.clone(),
            });
        }
        // Lease grants need the new master's role; read it now rather than in a second.
        self.send_info(master);
        self.evaluate_odown(now, group);
    }

    /// Whether this sentinel heard from a majority of voters (itself included) recently; never
    /// for a sentinel that is not a voter.
    pub(super) fn in_contact_with_majority(&self, now: Instant) -> bool {
        if !self.is_voter() {
            return false;
        }
        let window = self.cfg.heartbeat_interval * 3;
        let heard = self
            .last_heard
            .iter()
            .filter(|(id, at)| {
                self.voters.contains(id) && now.saturating_duration_since(**at) <= window
            })
            .count();
        heard + 1 >= self.majority()
    }

    /// An operator's pause or resume: applied here and sent to every voter.
    pub(super) fn handle_maintenance(&mut self, now: Instant, group: &GroupName, paused: bool) {
        if !self.groups.contains_key(group) {
            return;
        }
        self.broadcast(Gossip::Maintenance {
            group: group.clone(),
            paused,
        });
        self.apply_maintenance(now, group, paused);
    }

    fn apply_maintenance(&mut self, now: Instant, group: &GroupName, paused: bool) {
        let Some(g) = self.groups.get_mut(group) else {
            return;
        };
        if g.paused == paused {
            return;
        }
        g.paused = paused;
        let abort = paused && g.failover.as_ref().is_some_and(|f| !f.promoting());
        info!(%group, paused, "maintenance");
        self.publish(Event::Maintenance {
            group: group.clone(),
            paused,
        });
        if abort {
            self.abort_failover(now, group, AbortReason::Maintenance);
        }
        if !paused {
            self.evaluate_odown(now, group);
        }
    }
}
