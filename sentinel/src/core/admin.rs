//! Operator changes of a group (`Monitor`, `SetOption`, `Remove`, `Reset`), agreed through a
//! term like a failover.
//!
//! Owns `Pending`, the request, installation, adoption and confirmation of a change.
//! Invariants: a change is installed only by the leader of a term of the group (one durable vote
//! per (group, term), as for a failover), under that term as its own epoch
//! (`DurableGroup::agreed`), apart from the master's config epoch: a change of options never
//! competes with a failover, and its leader, having promoted nothing, abandons the term at once
//! so that its voters grant leases again. Only `Monitor` also installs its master, as the config
//! of the term. The highest `agreed` wins everywhere; a change is reported confirmed only once a
//! majority of voters hold it or a newer one, after which every later change carries it (its
//! voters include one of that majority, who refuse a candidate with older options); a group
//! nobody monitors any more stays as a removed entry, so a stale config or a second vote in one
//! of its terms can never bring it back.

use std::num::NonZeroU8;
use std::time::Instant;

use tracing::info;

use super::action::{AdminError, AdminKind, Event};
use super::config::{GroupConfig, GroupOptions};
use super::election::Election;
use super::input::{AdminChange, Gossip};
use super::types::{ConfigEpoch, GroupName, NodeId, Quorum, Term};
use super::{DurableGroup, MAX_GROUPS, Sentinel};

/// The operator's change a sentinel is running for.
#[derive(Debug)]
pub(super) struct Pending {
    id: u64,
    change: AdminChange,
    /// When the request arrived; it fails `failover_timeout` later if not confirmed.
    started: Instant,
    /// The term under which this sentinel installed it, once it won that term.
    installed: Option<Term>,
}

impl Pending {
    fn kind(&self) -> AdminKind {
        kind_of(&self.change)
    }
}

fn kind_of(change: &AdminChange) -> AdminKind {
    match change {
        AdminChange::Monitor { .. } => AdminKind::Monitor,
        AdminChange::Set { .. } => AdminKind::Set,
        AdminChange::Remove => AdminKind::Remove,
        AdminChange::Reset => AdminKind::Reset,
    }
}

impl Sentinel {
    /// An operator's request: checked, then run for as a candidacy of the group.
    pub(super) fn handle_admin(
        &mut self,
        now: Instant,
        id: u64,
        group: GroupName,
        change: AdminChange,
    ) {
        let fail = |s: &mut Sentinel, reason: AdminError| {
            info!(%group, id, %reason, "operator change refused");
            s.emit_now(super::Action::Publish(Event::AdminFailed {
                group: group.clone(),
                id,
                reason,
            }));
        };
        let monitor = matches!(change, AdminChange::Monitor { .. });
        let new_master = match (self.groups.get(&group), &change) {
            (None, AdminChange::Monitor { master, .. }) => {
                if self.groups.len() >= MAX_GROUPS {
                    return fail(self, AdminError::TooMany(MAX_GROUPS));
                }
                Some(*master)
            }
            (None, _) => return fail(self, AdminError::Unknown(group.clone())),
            (Some(g), _) if g.durable.removed && !monitor => {
                return fail(self, AdminError::Unknown(group.clone()));
            }
            (Some(g), _) if !g.durable.removed && monitor => {
                return fail(self, AdminError::Exists(group.clone()));
            }
            (Some(_), _) => None,
        };
        if let AdminChange::Monitor { options, .. } | AdminChange::Set { options } = &change {
            if let Err(e) = self.cfg.check_options(&group, options, self.voters.len()) {
                return fail(self, AdminError::Invalid(e.to_string()));
            }
        }
        if let Some(master) = new_master {
            self.insert_removed(now, &group, master);
        }
        let g = self
            .groups
            .get_mut(&group)
            .expect("group checked or added above");
        if g.failover.is_some() || !matches!(g.election, Election::Idle) || g.admin.is_some() {
            return fail(self, AdminError::Busy(group.clone()));
        }
        info!(%group, id, change = kind_of(&change).as_str(), "operator change requested");
        g.admin = Some(Pending {
            id,
            change,
            started: now,
            installed: None,
        });
        self.become_candidate(now, &group, super::ElectionReason::Admin);
    }

    /// A removed entry for `group`: it holds the group's term and vote, nothing is watched.
    pub(super) fn insert_removed(&mut self, now: Instant, group: &GroupName, master: NodeId) {
        let cfg = GroupConfig::new(group.as_str(), master, Vec::new(), Quorum(NonZeroU8::MIN));
        let durable = DurableGroup {
            removed: true,
            ..DurableGroup::fresh(&cfg)
        };
        self.insert_group(now, cfg, durable);
    }

    /// The leader of `term` installs its change under `term`.
    pub(super) fn install_admin(&mut self, now: Instant, group: &GroupName, term: Term) {
        let g = self.groups.get_mut(group).expect("caller found the group");
        g.election = Election::Idle;
        let Some(p) = g.admin.as_mut() else {
            // Nothing to install (cannot happen: a candidacy for a change keeps it).
            self.abandon_term(group, term);
            return;
        };
        let kind = p.kind();
        p.installed = Some(term);
        let old_master = g.durable.master;
        let was_removed = g.durable.removed;
        match p.change.clone() {
            AdminChange::Monitor { master, options } => {
                // The new group's master is the config of this term.
                g.durable.removed = false;
                g.durable.epoch = ConfigEpoch::of_term(term);
                g.durable.master = master;
                g.durable.replicas.clear();
                g.durable.lineage.clear();
                g.cfg.apply(&options);
                g.durable.options = Some(options);
                g.forget_opinions();
                g.odown = false;
                g.disagree_since.clear();
                g.convergence_check = None;
            }
            AdminChange::Set { options } => {
                g.cfg.apply(&options);
                g.durable.options = Some(options);
            }
            AdminChange::Remove => g.durable.removed = true,
            AdminChange::Reset => g.durable.reset = term,
        }
        g.durable.agreed = term;
        if !g.is_fenced() {
            g.fenced_since = None;
        }
        let master = g.durable.master;
        info!(%group, %term, change = kind.as_str(), "operator change installed");
        self.persist();
        if let Some(msg) = self.config_msg(group) {
            self.broadcast(msg);
        }
        if kind != AdminKind::Monitor {
            // Nothing was promoted in this term: its voters may grant leases again.
            self.abandon_term(group, term);
        }
        self.publish(Event::AdminApplied {
            group: group.clone(),
            agreed: term,
            master,
            change: kind,
        });
        self.after_admin_change(now, group, kind, old_master, was_removed);
        self.check_admin_confirmed(group);
    }

    /// Adopts an operator's change a peer installed, if it is newer than ours.
    pub(super) fn adopt_agreed(
        &mut self,
        now: Instant,
        group: &GroupName,
        agreed: Term,
        options: Option<GroupOptions>,
        removed: bool,
        reset: Term,
    ) {
        let Some(g) = self.groups.get_mut(group) else {
            return;
        };
        if agreed <= g.durable.agreed {
            return;
        }
        let was_removed = g.durable.removed;
        let options_changed = options.is_some() && options != g.durable.options;
        if let Some(o) = &options {
            g.cfg.apply(o);
            g.durable.options = Some(o.clone());
        }
        let reset_now = reset > g.durable.reset;
        g.durable.reset = g.durable.reset.max(reset);
        g.durable.removed = removed;
        g.durable.agreed = agreed;
        if was_removed && !removed {
            // Monitored again (or for the first time here): its replicas are found anew.
            g.durable.replicas.clear();
            g.forget_opinions();
            g.odown = false;
        }
        let kind = if removed && !was_removed {
            AdminKind::Remove
        } else if was_removed && !removed {
            AdminKind::Monitor
        } else if reset_now {
            AdminKind::Reset
        } else {
            AdminKind::Set
        };
        if removed && !was_removed {
            // A promotion already sent is not abandoned: no newer config supersedes it.
            self.stand_down(now, group, false);
            if let Some(g) = self.groups.get_mut(group) {
                g.odown = false;
            }
        }
        let master = self.groups[group].durable.master;
        info!(%group, %agreed, change = kind.as_str(), "operator change adopted");
        self.persist();
        if options_changed || kind != AdminKind::Set {
            self.publish(Event::AdminApplied {
                group: group.clone(),
                agreed,
                master,
                change: kind,
            });
        }
        self.admin_on_newer_change(group);
        self.after_admin_change(now, group, kind, master, was_removed);
    }

    /// Starts or stops watching what the change added or removed.
    pub(super) fn after_admin_change(
        &mut self,
        now: Instant,
        group: &GroupName,
        kind: AdminKind,
        old_master: NodeId,
        was_removed: bool,
    ) {
        let Some(g) = self.groups.get(group) else {
            return;
        };
        let members: Vec<NodeId> = std::iter::once(g.durable.master)
            .chain(g.durable.replicas.iter().copied())
            .collect();
        if g.durable.removed {
            let mut gone = members;
            gone.push(old_master);
            for node in gone {
                self.unwatch_node(group, node);
            }
            return;
        }
        if was_removed {
            if old_master != g.durable.master {
                self.unwatch_node(group, old_master);
            }
            for node in members {
                self.watch_node(now, group, node);
            }
            return;
        }
        if kind == AdminKind::Reset {
            // Replicas are found again in the master's INFO; dead ones stay forgotten.
            let master = g.durable.master;
            let replicas: Vec<NodeId> = g.durable.replicas.iter().copied().collect();
            let g = self.groups.get_mut(group).expect("group looked up above");
            g.durable.replicas.clear();
            for node in replicas {
                self.unwatch_node(group, node);
            }
            self.persist();
            self.send_info(master);
        }
    }

    /// Stops watching `node` if it is watched as a member of `group`.
    fn unwatch_node(&mut self, group: &GroupName, node: NodeId) {
        if self.nodes.get(&node).is_some_and(|v| &v.group == group) {
            self.nodes.remove(&node);
            for t in [
                super::Timer::Probe(node),
                super::Timer::Info(node),
                super::Timer::Down(node),
            ] {
                self.timers.cancel(&t);
            }
        }
    }

    /// Reports the pending change confirmed once a majority of voters hold its epoch.
    pub(super) fn check_admin_confirmed(&mut self, group: &GroupName) {
        let majority = self.majority();
        let Some(g) = self.groups.get_mut(group) else {
            return;
        };
        let Some((id, epoch)) = g.admin.as_ref().and_then(|p| Some((p.id, p.installed?))) else {
            return;
        };
        let holders = 1 + g
            .peer_agreed
            .iter()
            .filter(|(peer, e)| self.voters.contains(peer) && **e >= epoch)
            .count();
        if holders < majority {
            return;
        }
        g.admin = None;
        info!(%group, id, %epoch, "operator change confirmed by a majority");
        self.publish(Event::AdminConfirmed {
            group: group.clone(),
            id,
            agreed: epoch,
        });
    }

    /// A newer change arrived: a pending change not installed yet is superseded; an installed
    /// one survives if the newer one carries it.
    pub(super) fn admin_on_newer_change(&mut self, group: &GroupName) {
        let Some(g) = self.groups.get_mut(group) else {
            return;
        };
        let Some(p) = g.admin.as_ref() else {
            return;
        };
        let carried = p.installed.is_some()
            && match &p.change {
                AdminChange::Monitor { options, .. } | AdminChange::Set { options } => {
                    !g.durable.removed && g.durable.options.as_ref() == Some(options)
                }
                AdminChange::Remove => g.durable.removed,
                AdminChange::Reset => true,
            };
        let (id, installed) = (p.id, p.installed);
        g.admin = None;
        let event = match (carried, installed) {
            (true, Some(agreed)) => Event::AdminConfirmed {
                group: group.clone(),
                id,
                agreed,
            },
            _ => Event::AdminFailed {
                group: group.clone(),
                id,
                reason: AdminError::Superseded(group.clone()),
            },
        };
        self.publish(event);
    }

    /// A pending change whose candidacy ended without winning (it voted for another candidate,
    /// or a newer config arrived) fails at once rather than at its deadline.
    pub(super) fn admin_candidacy_lost(&mut self, group: &GroupName) {
        let Some(g) = self.groups.get_mut(group) else {
            return;
        };
        let lost = g.admin.as_ref().is_some_and(|p| p.installed.is_none())
            && matches!(g.election, Election::Idle);
        if !lost {
            return;
        }
        let Some(p) = g.admin.take() else {
            return;
        };
        self.publish(Event::AdminFailed {
            group: group.clone(),
            id: p.id,
            reason: AdminError::Superseded(group.clone()),
        });
    }

    /// A change that could not be agreed or confirmed in `failover_timeout` fails.
    pub(super) fn expire_admin(&mut self, now: Instant) {
        let expired: Vec<GroupName> = self
            .groups
            .iter()
            .filter(|(_, g)| {
                g.admin.as_ref().is_some_and(|p| {
                    now.saturating_duration_since(p.started) >= g.cfg.failover_timeout
                })
            })
            .map(|(n, _)| n.clone())
            .collect();
        for group in expired {
            let g = self.groups.get_mut(&group).expect("group listed above");
            let Some(p) = g.admin.take() else {
                continue;
            };
            let candidacy = match g.election {
                Election::Candidate { term, .. } => Some(term),
                _ => None,
            };
            if !matches!(g.election, Election::Idle | Election::Leader) {
                g.election = Election::Idle;
                self.timers.cancel(&super::Timer::Election(group.clone()));
            }
            if let Some(term) = candidacy {
                self.abandon_term(&group, term);
            }
            self.publish(Event::AdminFailed {
                group: group.clone(),
                id: p.id,
                reason: AdminError::NoMajority(group.clone()),
            });
        }
    }

    /// The full config of `group` as this sentinel holds it, for a peer.
    pub(super) fn config_msg(&self, group: &GroupName) -> Option<Gossip> {
        let g = self.groups.get(group)?;
        Some(Gossip::Config {
            group: group.clone(),
            epoch: g.durable.epoch,
            master: g.durable.master,
            lineage: g
                .durable
                .lineage
                .iter()
                .map(|(id, at)| (*id, *at))
                .collect(),
            agreed: g.durable.agreed,
            options: g.durable.options.clone(),
            removed: g.durable.removed,
            reset: g.durable.reset,
        })
    }
}
