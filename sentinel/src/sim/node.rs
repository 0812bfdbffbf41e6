//! A faithfully modelled data node: role, replication log and links, write leases, client pause.
//!
//! Owns `DataNode`. Its log is a list of globally unique write ids, so that "replica log is a
//! prefix of the master's log" is checked by comparing the last entry (a write id is created once,
//! on top of one history). Invariant: a master accepts a write only while it holds valid leases
//! from a majority of sentinels on its own clock, and is not paused by `CLIENT PAUSE WRITE`; after
//! `VIGIL REVOKE` it holds none, and counts no grant whose start is not later than the revocation,
//! as `datanode::fencing` does.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::core::{
    Lease, MembersEpoch, NodeClock, NodeId, NodeInfo, NodeRole, Priority, ReplId, ReplOffset,
    RunId, SentinelId,
};

/// The role a node believes it has.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub enum Role {
    Master,
    Replica(NodeId),
}

/// A replica's link to its master.
#[derive(Clone, Copy, Debug)]
pub struct Link {
    /// The replication id of the master when the link was made; a change breaks the link.
    pub replid: u64,
    pub up: bool,
    /// When a broken link may be retried (real time).
    pub retry_at: Duration,
}

#[derive(Debug)]
pub struct DataNode {
    pub id: NodeId,
    pub group: usize,
    pub up: bool,
    /// SIGSTOP: messages wait in `inbox` until SIGCONT.
    pub paused: bool,
    pub inbox: Vec<super::Msg>,
    pub run_id: u64,
    /// Changes with every role change or restart (Redis' `master_replid`).
    pub replid: u64,
    /// The history this node's data continued from (psync2's `master_replid2`): the one it
    /// followed before it was promoted, its own before a restart with data, or its previous
    /// master's before a partial resync that changed the id (Redis' `+CONTINUE <new id>`).
    pub replid2: u64,
    /// How much of the log belongs to history `replid2` (Redis' `second_repl_offset` − 1).
    pub replid2_len: usize,
    pub role: Role,
    pub log: Vec<u64>,
    pub link: Link,
    /// Rate of this node's clock, in parts per million off real time.
    pub skew_ppm: i64,
    /// Real time of the last boot; the monotonic clock restarts from zero there.
    pub boot: Duration,
    /// Lease expiry per sentinel, on this node's clock.
    /// Per sentinel: when its lease ends (node clock), the membership epoch and the majority
    /// of its latest grant.
    pub leases: BTreeMap<SentinelId, (Duration, MembersEpoch, usize)>,
    /// The newest membership epoch any grant named (this incarnation).
    pub newest_members: MembersEpoch,
    /// Node clock of the latest `VIGIL REVOKE` of this run; grants starting at or before it
    /// are ignored.
    pub revoked_at: Option<Duration>,
    /// `CLIENT PAUSE WRITE` end, on this node's clock.
    pub pause_until: Option<Duration>,
    /// Real time since which the node has been master without interruption.
    pub master_since: Duration,
    /// Master side: how much of the log each replica has acknowledged.
    pub acks: BTreeMap<NodeId, usize>,
    /// Writes accepted and waiting for `sync_replicas` acknowledgements: (log index, write id).
    pub pending: Vec<(usize, u64)>,
    pub priority: u32,
}

impl DataNode {
    pub fn new(id: NodeId, group: usize, role: Role, skew_ppm: i64, run_id: u64) -> DataNode {
        DataNode {
            id,
            group,
            up: true,
            paused: false,
            inbox: Vec::new(),
            run_id,
            replid: run_id,
            replid2: 0,
            replid2_len: 0,
            role,
            log: Vec::new(),
            link: Link {
                replid: 0,
                up: false,
                retry_at: Duration::ZERO,
            },
            skew_ppm,
            boot: Duration::ZERO,
            leases: BTreeMap::new(),
            newest_members: MembersEpoch(0),
            revoked_at: None,
            pause_until: None,
            master_since: Duration::ZERO,
            acks: BTreeMap::new(),
            pending: Vec::new(),
            priority: 100,
        }
    }

    /// The node's monotonic clock at real time `now`.
    pub fn clock(&self, now: Duration) -> Duration {
        let since = (now - self.boot).as_nanos() as i128;
        let local = since + since * i128::from(self.skew_ppm) / 1_000_000;
        Duration::from_nanos(local.max(0) as u64)
    }

    pub fn serving(&self) -> bool {
        self.up && !self.paused
    }

    /// Whether the valid leases of the newest membership epoch any grant named reach that
    /// epoch's majority.
    pub fn has_lease_majority(&self, now: Duration) -> bool {
        let clock = self.clock(now);
        let counted: Vec<usize> = self
            .leases
            .values()
            .filter(|(end, e, _)| *end > clock && *e == self.newest_members)
            .map(|(_, _, m)| *m)
            .collect();
        counted.iter().max().is_some_and(|m| counted.len() >= *m)
    }

    /// Whether a client write is accepted now.
    pub fn accepts_writes(&self, now: Duration) -> bool {
        let clock = self.clock(now);
        self.serving()
            && self.role == Role::Master
            && self.pause_until.is_none_or(|until| clock >= until)
            && self.has_lease_majority(now)
    }

    pub fn info(&self, linked_replicas: Vec<NodeId>) -> NodeInfo {
        NodeInfo {
            run_id: RunId(self.run_id),
            role: match self.role {
                Role::Master => NodeRole::Master {
                    replicas: linked_replicas,
                },
                Role::Replica(master) => NodeRole::Replica {
                    master,
                    link_up: self.link.up,
                },
            },
            replid: ReplId(self.history()),
            replid2: ReplId(self.replid2),
            replid2_until: ReplOffset(self.replid2_len as u64),
            offset: ReplOffset(self.log.len() as u64),
            priority: Priority(self.priority),
            dc: None,
            empty: self.log.is_empty(),
        }
    }

    /// The id of the history this node's data belongs to (`master_replid` in its INFO).
    pub fn history(&self) -> u64 {
        match self.role {
            Role::Master => self.replid,
            Role::Replica(_) => self.link.replid,
        }
    }

    pub fn grant(&mut self, lease: Lease) {
        if lease.run_id != RunId(self.run_id) {
            return;
        }
        if self.revoked_at.is_some_and(|at| lease.start.0 <= at) {
            return;
        }
        let expiry = lease.start.0 + lease.ttl;
        let majority = usize::from(lease.majority);
        self.newest_members = self.newest_members.max(lease.members);
        let e = self
            .leases
            .entry(lease.from)
            .or_insert((expiry, lease.members, majority));
        e.0 = e.0.max(expiry);
        if lease.members >= e.1 {
            e.1 = lease.members;
            e.2 = majority;
        }
    }

    /// `VIGIL REVOKE` at real time `now`: every lease ends, and older grants never count
    /// again (unless `keep_older`, the deliberate bug of
    /// `Options::revoke_keeps_older_grants`).
    pub fn revoke(&mut self, now: Duration, keep_older: bool) {
        self.leases.clear();
        if !keep_older {
            let clock = self.clock(now);
            self.revoked_at = Some(self.revoked_at.map_or(clock, |at| at.max(clock)));
        }
    }

    pub fn node_clock(&self, now: Duration) -> NodeClock {
        NodeClock(self.clock(now))
    }

    pub fn become_master(&mut self, now: Duration, new_replid: u64) {
        if self.role == Role::Master {
            return;
        }
        self.role = Role::Master;
        self.replid2 = self.link.replid;
        self.replid2_len = self.log.len();
        self.replid = new_replid;
        self.master_since = now;
        self.acks.clear();
        self.pending.clear();
    }

    /// `REPLICAOF master`. The node keeps its data and the id of the history it holds (Redis
    /// caches itself as the master to resume from), so its INFO still reports that history
    /// until a resync with the new master replaces it.
    pub fn become_replica(&mut self, master: NodeId, new_replid: u64) {
        if self.role == Role::Replica(master) {
            return;
        }
        let history = self.history();
        self.role = Role::Replica(master);
        self.replid = new_replid;
        self.link = Link {
            replid: history,
            up: false,
            retry_at: Duration::ZERO,
        };
        self.leases.clear();
        self.acks.clear();
        self.pending.clear();
    }

    pub fn crash(&mut self) {
        self.up = false;
        self.paused = false;
        self.inbox.clear();
        self.leases.clear();
        self.pause_until = None;
        self.acks.clear();
        self.pending.clear();
        self.link.up = false;
    }

    pub fn restart(&mut self, now: Duration, empty: bool, new_run_id: u64) {
        self.up = true;
        self.boot = now;
        // A new process: its clock restarts from zero, and grants name the new run id.
        self.revoked_at = None;
        self.newest_members = MembersEpoch(0);
        self.run_id = new_run_id;
        // A restart with data keeps the replication id it synchronised with (Redis stores it
        // in the RDB), so a partial resync stays possible. A master reloads its own id as the
        // secondary one under a new id (Redis 7, PSYNC2 "partial sync after master reboot").
        let synced = if empty { 0 } else { self.link.replid };
        if empty {
            self.log.clear();
            self.replid2 = 0;
            self.replid2_len = 0;
        } else if self.role == Role::Master {
            self.replid2 = self.replid;
            self.replid2_len = self.log.len();
        }
        self.replid = new_run_id;
        if self.role == Role::Master {
            self.master_since = now;
        }
        self.link = Link {
            replid: synced,
            up: false,
            retry_at: now,
        };
    }
}
