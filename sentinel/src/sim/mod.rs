//! The deterministic simulator: sentinels and modelled data nodes on a virtual network and clock.
//!
//! Owns `Sim`: one seed drives message delay, loss, duplication and reordering, partitions of
//! any subset of sentinels and data nodes, sentinel crashes (keeping only what was persisted),
//! data-node crashes, pauses and empty restarts, and bounded clock-rate skew. The virtual clock
//! jumps to the earliest sentinel `poll_timeout` or queued event. After every event the
//! `Checker` looks at what happened. Invariant: nothing here reads the real clock except once,
//! for the base instant, and nothing is random except through the seeded generator, so a seed
//! replays exactly.

pub mod check;
pub mod node;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::num::NonZeroU8;
use std::time::{Duration, Instant};

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use crate::core::{
    AbortReason, Action, ConfigEpoch, CoreConfig, DurableState, Event, Gossip, GroupConfig,
    GroupName, InfoSeq, Input, Lease, MemberMsg, MembersEpoch, NodeId, NodeInfo, ProbeReply,
    ProbeStatus, Quorum, Sentinel, SentinelId, Term,
};
use check::Checker;
use node::{DataNode, Role};

/// Something that sends or receives messages.
#[derive(Clone, Copy, Debug, Eq, Ord, PartialEq, PartialOrd)]
pub enum Endpoint {
    S(usize),
    N(usize),
}

/// A message in flight.
#[derive(Clone, Debug)]
pub enum Msg {
    Gossip {
        from: SentinelId,
        msg: Gossip,
    },
    /// Requests carry the incarnation of the sentinel process that sent them, and so do the
    /// replies: a reply travels on the requester's connection, which dies with the process, so
    /// a restarted sentinel never receives answers to its previous incarnation's requests.
    Probe {
        from: usize,
        inc: u64,
    },
    Info {
        from: usize,
        inc: u64,
        seq: InfoSeq,
    },
    Lease(Lease),
    /// `REPLICAOF NO ONE`; the node answers `ReplicaofOk`.
    Promote {
        from: usize,
        inc: u64,
    },
    /// `REPLICAOF master`; the node answers `ReplicaofOk` unless told to follow itself.
    Reconfigure {
        master: NodeId,
        from: usize,
        inc: u64,
    },
    ReplicaofOk {
        inc: u64,
        node: NodeId,
    },
    Pause(Duration),
    Unpause,
    /// `VIGIL REVOKE`; the node answers `Revoked` echoing `term`.
    Revoke {
        from: usize,
        inc: u64,
        term: Term,
    },
    Revoked {
        inc: u64,
        node: NodeId,
        term: Term,
    },
    ProbeReply {
        inc: u64,
        node: NodeId,
        reply: ProbeReply,
    },
    InfoReply {
        inc: u64,
        node: NodeId,
        seq: InfoSeq,
        info: NodeInfo,
    },
}

/// A fault (or its repair) applied at a point in virtual time.
#[derive(Clone, Debug)]
pub enum Fault {
    CrashSentinel(usize),
    RestartSentinel(usize),
    CrashNode(usize),
    RestartNode {
        node: usize,
        empty: bool,
    },
    PauseNode(usize),
    ResumeNode(usize),
    /// These endpoints on one side, everything else on the other.
    Partition(Vec<Endpoint>),
    Heal,
    /// An operator changes group 0's options at this sentinel (`parallel_syncs` toggled), an
    /// election of its own among the failovers.
    AdminSet(usize),
    /// A sentinel dies for good: no restart brings it back.
    KillSentinel(usize),
    /// An operator asks sentinel `at` to forget sentinel `victim`.
    Forget {
        at: usize,
        victim: usize,
    },
    /// A spare sentinel (index `sentinels..`) starts with no state and connects to every
    /// running sentinel, which makes it ask to join.
    Join(usize),
}

#[derive(Debug)]
enum Ev {
    Deliver {
        from: Endpoint,
        to: Endpoint,
        msg: Msg,
    },
    PersistDone {
        s: usize,
        incarnation: u64,
        state: DurableState,
    },
    ReplTick,
    ClientTick,
    Fault(Fault),
}

/// Knobs of one simulation.
#[derive(Clone, Debug)]
pub struct Options {
    pub seed: u64,
    pub sentinels: usize,
    /// Sentinels that start only when a `Fault::Join` starts them, outside the cluster.
    pub spares: usize,
    pub groups: usize,
    pub replicas: usize,
    /// Defaults to a majority of the sentinels.
    pub quorum: Option<u8>,
    /// Uniform one-way message delay.
    pub delay: (Duration, Duration),
    pub loss: f64,
    pub dup: f64,
    /// Probability that a message is held back up to `slow_max` more (reordering).
    pub slow: f64,
    pub slow_max: Duration,
    /// Clock rates are drawn within ±`skew_ppm` of real time.
    pub skew_ppm: i64,
    pub sync_replicas: u8,
    pub down_after: Duration,
    /// Clients write to every node that believes it is a master.
    pub writes: bool,
    /// Collect every published event with its time (figures).
    pub record: bool,
    /// A deliberate data-node bug: `VIGIL REVOKE` drops the leases but still accepts a late
    /// grant that started before it.
    pub revoke_keeps_older_grants: bool,
    pub core: CoreConfig,
}

pub struct SimSentinel {
    pub id: SentinelId,
    /// Killed for good (`Fault::KillSentinel`).
    pub gone: bool,
    pub core: Option<Sentinel>,
    pub disk: Option<DurableState>,
    skew_ppm: i64,
    incarnation: u64,
    disk_busy_until: Duration,
    wake: Option<Duration>,
}

pub struct Sim {
    pub opts: Options,
    rng: SmallRng,
    pub now: Duration,
    base: Instant,
    seq: u64,
    queue: BTreeMap<(Duration, u64), Ev>,
    pub sentinels: Vec<SimSentinel>,
    pub nodes: Vec<DataNode>,
    /// Partition side of each sentinel and node; messages cross only within one side.
    side_s: Vec<u8>,
    side_n: Vec<u8>,
    pub check: Checker,
    pub groups: Vec<GroupName>,
    next_write: u64,
    next_id: u64,
    pub events: Vec<(Duration, SentinelId, Event)>,
    /// With `record`: faults and data-node transitions, for replaying a seed.
    pub trace: Vec<(Duration, String)>,
    /// Per group, when a leader last gave up a failover because it could not prove which
    /// replica holds every acknowledged write (`AbortReason::NoFreshOffsets`).
    pub unprovable: BTreeMap<GroupName, Duration>,
    /// When `heal_all` last ran.
    pub healed_at: Duration,
}

/// Records a trace line when the simulation records (formats nothing otherwise).
macro_rules! note {
    ($sim:expr, $($arg:tt)*) => {
        if $sim.opts.record {
            let line = format!($($arg)*);
            $sim.trace.push(($sim.now, line));
        }
    };
}

/// How long a replica waits before reconnecting to a master that closed the link.
const RECONNECT: Duration = Duration::from_secs(1);
const REPL_TICK: Duration = Duration::from_millis(20);
const CLIENT_TICK: Duration = Duration::from_millis(25);

impl Options {
    /// Fast timings that keep thousands of seeds cheap in a debug build.
    pub fn fast(seed: u64) -> Options {
        let mut core = CoreConfig::new(Default::default(), Vec::new());
        core.probe_interval = Duration::from_millis(200);
        core.info_interval = Duration::from_millis(600);
        core.heartbeat_interval = Duration::from_millis(500);
        core.lease_ttl = Duration::from_millis(400);
        core.convergence_grace = Duration::from_millis(1000);
        Options {
            seed,
            sentinels: 3,
            spares: 0,
            groups: 1,
            replicas: 2,
            quorum: None,
            delay: (Duration::from_micros(100), Duration::from_millis(2)),
            loss: 0.0,
            dup: 0.0,
            slow: 0.0,
            slow_max: Duration::from_millis(30),
            skew_ppm: 3000,
            sync_replicas: 0,
            down_after: Duration::from_millis(600),
            writes: true,
            record: false,
            revoke_keeps_older_grants: false,
            core,
        }
    }

    /// LAN timings of the figures: 0.1-1 ms delays, the core's defaults, `down_after` 1 s.
    pub fn lan(seed: u64) -> Options {
        let mut o = Options::fast(seed);
        o.core = CoreConfig::new(Default::default(), Vec::new());
        o.delay = (Duration::from_micros(100), Duration::from_millis(1));
        o.down_after = Duration::from_secs(1);
        o.skew_ppm = 1000;
        o
    }

    /// The per-group settings.
    fn group(&self, g: usize, quorum: Quorum) -> GroupConfig {
        let first = g * (1 + self.replicas);
        let master = NodeId(first as u32);
        let replicas = (1..=self.replicas)
            .map(|r| NodeId((first + r) as u32))
            .collect();
        let mut cfg = GroupConfig::new(&format!("g{g}"), master, replicas, quorum);
        cfg.down_after = self.down_after;
        cfg.failover_timeout = Duration::from_secs(2);
        cfg.sync_replicas = self.sync_replicas;
        cfg
    }
}

impl Sim {
    pub fn new(opts: Options) -> Sim {
        let mut rng = SmallRng::seed_from_u64(opts.seed);
        let quorum_n = opts.quorum.unwrap_or((opts.sentinels / 2 + 1) as u8).max(1);
        let quorum = Quorum(NonZeroU8::new(quorum_n).expect("quorum is at least one"));
        let mut core = opts.core.clone();
        core.voters = (0..opts.sentinels).map(|i| SentinelId(i as u32)).collect();
        core.groups = (0..opts.groups).map(|g| opts.group(g, quorum)).collect();
        let groups: Vec<GroupName> = core.groups.iter().map(|g| g.name.clone()).collect();
        core.validate().expect("simulation config is valid");
        let mut opts = opts;
        opts.core = core;
        let skew = opts.skew_ppm;
        let mut nodes = Vec::new();
        let mut next_id = 1;
        for g in 0..opts.groups {
            let first = g * (1 + opts.replicas);
            for r in 0..=opts.replicas {
                let role = if r == 0 {
                    Role::Master
                } else {
                    Role::Replica(NodeId(first as u32))
                };
                let ppm = rng.random_range(-skew..=skew);
                nodes.push(DataNode::new(
                    NodeId((first + r) as u32),
                    g,
                    role,
                    ppm,
                    next_id,
                ));
                next_id += 1;
            }
        }
        // Spares draw from their own generator, so that adding them leaves every other
        // schedule of a seed as it was.
        let mut spare_rng = SmallRng::seed_from_u64(opts.seed ^ 0x005B_A2E5);
        let sentinels = (0..opts.sentinels + opts.spares)
            .map(|i| SimSentinel {
                id: SentinelId(i as u32),
                gone: false,
                core: None,
                disk: None,
                skew_ppm: if i < opts.sentinels {
                    rng.random_range(-skew..=skew)
                } else {
                    spare_rng.random_range(-skew..=skew)
                },
                incarnation: 0,
                disk_busy_until: Duration::ZERO,
                wake: None,
            })
            .collect();
        let mut sim = Sim {
            side_s: vec![0; opts.sentinels + opts.spares],
            side_n: vec![0; nodes.len()],
            opts,
            rng,
            now: Duration::ZERO,
            base: crate::testutil::t0(),
            seq: 0,
            queue: BTreeMap::new(),
            sentinels,
            nodes,
            check: Checker::default(),
            groups,
            next_write: 1,
            next_id,
            events: Vec::new(),
            trace: Vec::new(),
            unprovable: BTreeMap::new(),
            healed_at: Duration::MAX,
        };
        for i in 0..sim.opts.sentinels {
            sim.start_sentinel(i);
        }
        sim.schedule(REPL_TICK, Ev::ReplTick);
        sim.schedule(CLIENT_TICK, Ev::ClientTick);
        sim
    }

    /// Applies `fault` at absolute virtual time `at`.
    pub fn fault_at(&mut self, at: Duration, fault: Fault) {
        let delay = at.saturating_sub(self.now);
        self.schedule(delay, Ev::Fault(fault));
    }

    /// Applies `fault` now.
    pub fn fault(&mut self, fault: Fault) {
        self.apply_fault(fault);
    }

    /// Runs until virtual time `end`, or until the first violation.
    pub fn run_until(&mut self, end: Duration) {
        while self.check.violation.is_none() {
            let next_q = self.queue.first_key_value().map(|(k, _)| k.0);
            let next_w = self
                .sentinels
                .iter()
                .enumerate()
                .filter_map(|(i, s)| s.wake.map(|w| (w, i)))
                .min();
            let wake_first = match (next_q, next_w) {
                (None, None) => break,
                (Some(q), Some((w, _))) => w < q,
                (None, Some(_)) => true,
                (Some(_), None) => false,
            };
            let t = if wake_first {
                next_w.expect("checked above").0
            } else {
                next_q.expect("checked above")
            };
            if t > end {
                break;
            }
            self.now = self.now.max(t);
            if wake_first {
                let i = next_w.expect("checked above").1;
                self.wake_sentinel(i);
            } else {
                let (_, ev) = self.queue.pop_first().expect("checked above");
                self.process(ev);
            }
        }
        if self.check.violation.is_none() {
            self.now = self.now.max(end);
        }
    }

    /// Runs for `d` more virtual time.
    pub fn run_for(&mut self, d: Duration) {
        let end = self.now + d;
        self.run_until(end);
    }

    /// The first violated invariant, with the seed to replay it.
    pub fn result(&self) -> Result<(), String> {
        match &self.check.violation {
            Some(v) => Err(format!("seed {}: {v}", self.opts.seed)),
            None => Ok(()),
        }
    }

    /// The config every running sentinel agrees on for group `g`, or why there is none.
    pub fn agreed_config(&self, g: usize) -> Result<(ConfigEpoch, NodeId), String> {
        let name = &self.groups[g];
        let mut seen = None;
        let mut options = None;
        for s in &self.sentinels {
            let Some(core) = &s.core else { continue };
            if !core.voting() {
                // Removed (it knows): nobody tells it configs any more.
                continue;
            }
            let c = core
                .config_of(name)
                .expect("every sentinel watches every group");
            // Operators' changes travel with the configs: one config, one set of options.
            let o = core.group_options(name);
            match &options {
                None => options = Some(o),
                Some(prev) if *prev != o => {
                    return Err(format!(
                        "{name}: sentinels disagree on options: {prev:?} vs {o:?} ({})",
                        s.id
                    ));
                }
                Some(_) => {}
            }
            match seen {
                None => seen = Some(c),
                Some(prev) if prev != c => {
                    return Err(format!(
                        "{name}: sentinels disagree: {prev:?} vs {c:?} ({})",
                        s.id
                    ));
                }
                Some(_) => {}
            }
        }
        seen.ok_or_else(|| "no sentinel is running".to_string())
    }

    /// The voter set every running voter agrees on, or why there is none: a running sentinel
    /// is a voter, or knows it was removed; a started spare was admitted.
    pub fn agreed_members(&self) -> Result<(MembersEpoch, Vec<SentinelId>), String> {
        let mut seen: Option<(MembersEpoch, Vec<SentinelId>)> = None;
        for s in &self.sentinels {
            let Some(core) = &s.core else { continue };
            let epoch = core.members().epoch;
            let voters: Vec<SentinelId> = core.voters().iter().copied().collect();
            if epoch == MembersEpoch(0) {
                return Err(format!("{} was never admitted", s.id));
            }
            if !core.voting() {
                if voters.contains(&s.id) {
                    return Err(format!("{} is a voter of {epoch} but does not vote", s.id));
                }
                continue;
            }
            match &seen {
                None => seen = Some((epoch, voters)),
                Some(prev) if *prev != (epoch, voters.clone()) => {
                    return Err(format!(
                        "voter sets disagree: {prev:?} vs {:?} ({})",
                        (epoch, voters),
                        s.id
                    ));
                }
                Some(_) => {}
            }
        }
        seen.ok_or_else(|| "no voter is running".to_string())
    }

    /// Invariant 4 and 6 after faults healed: one agreed master per group, every data node
    /// following it, and (with sync replicas) every acknowledged write on it; one voter set.
    pub fn check_converged(&self) -> Result<(), String> {
        let seed = self.opts.seed;
        self.result()?;
        self.agreed_members()
            .map_err(|e| format!("seed {seed}: invariant 4: {e}"))?;
        for g in 0..self.groups.len() {
            let (_, master) = self
                .agreed_config(g)
                .map_err(|e| format!("seed {seed}: invariant 4: {e}"))?;
            let name = &self.groups[g];
            let m = &self.nodes[master.0 as usize];
            // The one exception to convergence: with synchronous replication, the agreed
            // master died for good and the leaders that tried to replace it, after the faults
            // healed, found no `R - N + 1` replicas whose data they could place on its lineage
            // (a replica holds data under a history whose link to the lineage nobody read,
            // e.g. Redis keeps one secondary id, so a node restarted twice hides its origin).
            // Promoting then could lose an acknowledged write, so the group stays without a
            // master (safety over liveness).
            // FIXME: narrow further; the core could read more (a replica's full sync offset)
            // before it gives up.
            let unprovable = self.opts.sync_replicas > 0
                && !m.up
                && self
                    .unprovable
                    .get(name)
                    .is_some_and(|t| *t >= self.healed_at);
            if unprovable {
                continue;
            }
            if !m.up || m.role != Role::Master {
                return Err(format!(
                    "seed {seed}: invariant 4: agreed master {master} of {name} is up={} role={:?}",
                    m.up, m.role
                ));
            }
            for n in self
                .nodes
                .iter()
                .filter(|n| n.group == g && n.id != master && n.up)
            {
                if n.role != Role::Replica(master) || !n.link.up {
                    return Err(format!(
                        "seed {seed}: invariant 4: {} of {name} is {:?} (link up {}), master is {master}",
                        n.id, n.role, n.link.up
                    ));
                }
            }
            if let Some(acked) = self.check.acked.get(name) {
                let have: std::collections::BTreeSet<u64> = m.log.iter().copied().collect();
                if let Some(lost) = acked.iter().find(|w| !have.contains(w)) {
                    return Err(format!(
                        "seed {seed}: invariant 6: acknowledged write {lost} of {name} is not on master {master}"
                    ));
                }
            }
        }
        Ok(())
    }

    /// The node the running sentinels' majority considers master of group `g` (any one's view).
    pub fn master_of(&self, g: usize) -> NodeId {
        let name = &self.groups[g];
        self.sentinels
            .iter()
            .filter_map(|s| s.core.as_ref())
            .filter_map(|c| c.config_of(name))
            .max_by_key(|(e, _)| *e)
            .map(|(_, m)| m)
            .unwrap_or(NodeId((g * (1 + self.opts.replicas)) as u32))
    }

    /// Feeds an operator's request to sentinel `i`.
    pub fn admin(&mut self, i: usize, input: Input) {
        self.feed(i, input);
    }

    fn local(&self, i: usize, real: Duration) -> Instant {
        let r = real.as_nanos() as i128;
        let l = r + r * i128::from(self.sentinels[i].skew_ppm) / 1_000_000;
        self.base + Duration::from_nanos(l as u64)
    }

    fn real_of_local(&self, i: usize, local: Instant) -> Duration {
        let l = local.saturating_duration_since(self.base).as_nanos() as i128;
        let rate = 1_000_000 + i128::from(self.sentinels[i].skew_ppm);
        let mut r = Duration::from_nanos(((l * 1_000_000 + rate - 1) / rate) as u64);
        while self.local(i, r) < local {
            r += Duration::from_nanos(1);
        }
        r
    }

    fn schedule(&mut self, delay: Duration, ev: Ev) {
        self.seq += 1;
        self.queue.insert((self.now + delay, self.seq), ev);
    }

    fn start_sentinel(&mut self, i: usize) {
        let now = self.local(i, self.now);
        let seed = self.opts.seed
            ^ (i as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15)
            ^ (self.sentinels[i].incarnation << 32);
        let mut cfg = self.opts.core.clone();
        cfg.joining = i >= self.opts.sentinels;
        let s = &mut self.sentinels[i];
        s.core = Some(match s.disk.clone() {
            Some(disk) => Sentinel::recover(cfg, disk, seed, now),
            None => Sentinel::new(s.id, cfg, seed, now),
        });
        self.drain(i);
        self.connect_spares(i);
    }

    /// What the transport reports when sentinel `i` (re)starts: a connection, hence a `Hello`
    /// on both sides, with every running sentinel. Only pairs with a spare are modelled (the
    /// others' hellos change nothing, and leaving them out keeps older seeds' schedules).
    fn connect_spares(&mut self, i: usize) {
        let me = self.sentinels[i].id;
        for j in 0..self.sentinels.len() {
            let spare = i >= self.opts.sentinels || j >= self.opts.sentinels;
            if j == i || !spare || self.sentinels[j].core.is_none() {
                continue;
            }
            let peer = self.sentinels[j].id;
            self.feed(
                i,
                Input::GossipReceived {
                    from: peer,
                    msg: Gossip::Hello,
                },
            );
            self.feed(
                j,
                Input::GossipReceived {
                    from: me,
                    msg: Gossip::Hello,
                },
            );
        }
    }

    fn wake_sentinel(&mut self, i: usize) {
        let now = self.local(i, self.now);
        let Some(core) = self.sentinels[i].core.as_mut() else {
            self.sentinels[i].wake = None;
            return;
        };
        core.handle_timeout(now);
        self.drain(i);
    }

    fn feed(&mut self, i: usize, input: Input) {
        let now = self.local(i, self.now);
        let Some(core) = self.sentinels[i].core.as_mut() else {
            return;
        };
        core.handle(now, input);
        self.drain(i);
    }

    /// Executes every action the sentinel produced, then re-reads its timeout.
    fn drain(&mut self, i: usize) {
        let mut actions = Vec::new();
        if let Some(core) = self.sentinels[i].core.as_mut() {
            while let Some(a) = core.poll_action() {
                actions.push(a);
            }
        }
        for a in actions {
            self.execute(i, a);
        }
        let next = self.sentinels[i]
            .core
            .as_ref()
            .and_then(|c| c.poll_timeout());
        self.sentinels[i].wake = next.map(|t| self.real_of_local(i, t).max(self.now));
    }

    fn execute(&mut self, i: usize, action: Action) {
        let from = Endpoint::S(i);
        let id = self.sentinels[i].id;
        match action {
            Action::Persist(state) => {
                let fsync = Duration::from_micros(self.rng.random_range(50..500));
                let s = &mut self.sentinels[i];
                let done = s.disk_busy_until.max(self.now) + fsync;
                s.disk_busy_until = done;
                let incarnation = s.incarnation;
                let delay = done - self.now;
                self.schedule(
                    delay,
                    Ev::PersistDone {
                        s: i,
                        incarnation,
                        state,
                    },
                );
            }
            Action::Probe { node } => {
                let inc = self.sentinels[i].incarnation;
                self.send(
                    from,
                    Endpoint::N(node.0 as usize),
                    Msg::Probe { from: i, inc },
                )
            }
            Action::Info { node, seq } => {
                let inc = self.sentinels[i].incarnation;
                self.send(
                    from,
                    Endpoint::N(node.0 as usize),
                    Msg::Info { from: i, inc, seq },
                )
            }
            Action::SendGossip { to, msg } => {
                if let Gossip::Vote {
                    group,
                    term,
                    granted: true,
                    ..
                } = &msg
                {
                    let disk = self.sentinels[i].disk.as_ref();
                    self.check.vote_sent(self.now, id, disk, group, *term, to);
                }
                if let Gossip::Membership {
                    epoch,
                    msg: MemberMsg::Promise { ballot, .. } | MemberMsg::Accepted { ballot, .. },
                    ..
                } = &msg
                {
                    let disk = self.sentinels[i].disk.as_ref();
                    self.check
                        .member_reply_sent(self.now, id, disk, *epoch, *ballot);
                }
                self.send(
                    from,
                    Endpoint::S(to.0 as usize),
                    Msg::Gossip { from: id, msg },
                );
            }
            Action::GrantLease { node, lease } => {
                self.send(from, Endpoint::N(node.0 as usize), Msg::Lease(lease))
            }
            Action::Promote { node } => {
                let inc = self.sentinels[i].incarnation;
                self.send(
                    from,
                    Endpoint::N(node.0 as usize),
                    Msg::Promote { from: i, inc },
                )
            }
            Action::Reconfigure { node, master } => {
                let inc = self.sentinels[i].incarnation;
                self.send(
                    from,
                    Endpoint::N(node.0 as usize),
                    Msg::Reconfigure {
                        master,
                        from: i,
                        inc,
                    },
                )
            }
            Action::PauseWrites { node, timeout } => {
                self.send(from, Endpoint::N(node.0 as usize), Msg::Pause(timeout))
            }
            Action::RevokeLeases { node, term } => {
                let inc = self.sentinels[i].incarnation;
                self.send(
                    from,
                    Endpoint::N(node.0 as usize),
                    Msg::Revoke { from: i, inc, term },
                )
            }
            Action::UnpauseWrites { node } => {
                self.send(from, Endpoint::N(node.0 as usize), Msg::Unpause)
            }
            Action::Publish(event) => {
                match &event {
                    Event::Elected { group, term } => {
                        self.check.elected(self.now, group, *term, id)
                    }
                    Event::Promoted { group, node, epoch }
                    | Event::Reaffirmed { group, node, epoch } => {
                        self.check.promoted(self.now, group, *epoch, *node)
                    }
                    Event::SwitchMaster { group, epoch, .. } => {
                        self.check.published(self.now, id, group, *epoch)
                    }
                    Event::FailoverAborted {
                        group,
                        reason: AbortReason::NoFreshOffsets,
                        ..
                    } => {
                        self.unprovable.insert(group.clone(), self.now);
                    }
                    _ => {}
                }
                if self.opts.record {
                    self.events.push((self.now, id, event));
                }
            }
        }
    }

    fn send(&mut self, from: Endpoint, to: Endpoint, msg: Msg) {
        if self.opts.loss > 0.0 && self.rng.random_bool(self.opts.loss) {
            return;
        }
        let copies = if self.opts.dup > 0.0 && self.rng.random_bool(self.opts.dup) {
            2
        } else {
            1
        };
        for _ in 0..copies {
            let (lo, hi) = self.opts.delay;
            let mut delay = Duration::from_nanos(
                self.rng
                    .random_range(lo.as_nanos() as u64..=hi.as_nanos() as u64),
            );
            if self.opts.slow > 0.0 && self.rng.random_bool(self.opts.slow) {
                delay += Duration::from_nanos(
                    self.rng
                        .random_range(0..=self.opts.slow_max.as_nanos() as u64),
                );
            }
            self.schedule(
                delay,
                Ev::Deliver {
                    from,
                    to,
                    msg: msg.clone(),
                },
            );
        }
    }

    fn reachable(&self, a: Endpoint, b: Endpoint) -> bool {
        let side = |e: Endpoint| match e {
            Endpoint::S(i) => self.side_s[i],
            Endpoint::N(i) => self.side_n[i],
        };
        side(a) == side(b)
    }

    fn process(&mut self, ev: Ev) {
        match ev {
            Ev::Deliver { from, to, msg } => {
                if !self.reachable(from, to) {
                    return;
                }
                match to {
                    Endpoint::S(i) => self.deliver_to_sentinel(i, msg),
                    Endpoint::N(n) => {
                        let node = &mut self.nodes[n];
                        if !node.up {
                            return;
                        }
                        if node.paused {
                            node.inbox.push(msg);
                            return;
                        }
                        self.deliver_to_node(n, msg);
                    }
                }
            }
            Ev::PersistDone {
                s,
                incarnation,
                state,
            } => {
                let sen = &self.sentinels[s];
                if sen.incarnation != incarnation {
                    // The process died before fsync returned: the write never happened.
                    return;
                }
                self.check.persisted(self.now, sen.disk.as_ref(), &state);
                let version = state.version;
                self.sentinels[s].disk = Some(state);
                self.feed(s, Input::Persisted { version });
            }
            Ev::ReplTick => {
                self.replicate();
                self.schedule(REPL_TICK, Ev::ReplTick);
            }
            Ev::ClientTick => {
                if self.opts.writes {
                    self.client_writes();
                }
                self.schedule(CLIENT_TICK, Ev::ClientTick);
            }
            Ev::Fault(f) => self.apply_fault(f),
        }
    }

    fn deliver_to_sentinel(&mut self, i: usize, msg: Msg) {
        let input = match msg {
            Msg::Gossip { from, msg } => Input::GossipReceived { from, msg },
            Msg::ProbeReply { inc, node, reply } if inc == self.sentinels[i].incarnation => {
                Input::NodeReplied { node, reply }
            }
            Msg::InfoReply {
                inc,
                node,
                seq,
                info,
            } if inc == self.sentinels[i].incarnation => Input::InfoReceived { node, seq, info },
            Msg::Revoked { inc, node, term } if inc == self.sentinels[i].incarnation => {
                Input::LeasesRevoked { node, term }
            }
            Msg::ReplicaofOk { inc, node } if inc == self.sentinels[i].incarnation => {
                Input::ReplicaofAcknowledged { node }
            }
            _ => return,
        };
        self.feed(i, input);
    }

    fn deliver_to_node(&mut self, n: usize, msg: Msg) {
        let now = self.now;
        let id = self.nodes[n].id;
        match msg {
            Msg::Probe { from, inc } => {
                let reply = ProbeReply {
                    status: ProbeStatus::Pong,
                    clock: Some(self.nodes[n].node_clock(now)),
                };
                self.send(
                    Endpoint::N(n),
                    Endpoint::S(from),
                    Msg::ProbeReply {
                        inc,
                        node: id,
                        reply,
                    },
                );
            }
            Msg::Info { from, inc, seq } => {
                let linked: Vec<NodeId> = self
                    .nodes
                    .iter()
                    .filter(|r| r.up && r.role == Role::Replica(id) && r.link.up)
                    .map(|r| r.id)
                    .collect();
                let info = self.nodes[n].info(linked);
                self.send(
                    Endpoint::N(n),
                    Endpoint::S(from),
                    Msg::InfoReply {
                        inc,
                        node: id,
                        seq,
                        info,
                    },
                );
            }
            Msg::Lease(lease) => self.nodes[n].grant(lease),
            Msg::Promote { from, inc } => {
                note!(self, "{id} promoted (log {})", self.nodes[n].log.len());
                let replid = self.fresh_id();
                self.nodes[n].become_master(now, replid);
                let ok = Msg::ReplicaofOk { inc, node: id };
                self.send(Endpoint::N(n), Endpoint::S(from), ok);
            }
            Msg::Reconfigure { master, from, inc } => {
                if master != id {
                    note!(self, "{id} told to follow {master}");
                    let replid = self.fresh_id();
                    self.nodes[n].become_replica(master, replid);
                    let ok = Msg::ReplicaofOk { inc, node: id };
                    self.send(Endpoint::N(n), Endpoint::S(from), ok);
                }
            }
            Msg::Pause(d) => {
                let until = self.nodes[n].clock(now) + d;
                self.nodes[n].pause_until = Some(until);
            }
            Msg::Unpause => self.nodes[n].pause_until = None,
            Msg::Revoke { from, inc, term } => {
                note!(self, "{id} revoked its leases (term {term})");
                let keep_older = self.opts.revoke_keeps_older_grants;
                self.nodes[n].revoke(now, keep_older);
                self.send(
                    Endpoint::N(n),
                    Endpoint::S(from),
                    Msg::Revoked {
                        inc,
                        node: id,
                        term,
                    },
                );
            }
            Msg::Gossip { .. }
            | Msg::ProbeReply { .. }
            | Msg::InfoReply { .. }
            | Msg::Revoked { .. }
            | Msg::ReplicaofOk { .. } => {}
        }
    }

    fn fresh_id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    /// One step of every replication link, and acknowledgement of synchronous writes.
    fn replicate(&mut self) {
        let now = self.now;
        for r in 0..self.nodes.len() {
            let Role::Replica(m) = self.nodes[r].role else {
                continue;
            };
            let m = m.0 as usize;
            if !self.nodes[r].serving() || m == r {
                continue;
            }
            // A replica of a replica serves its own replicas only while its link is up (Redis
            // answers `-NOMASTERLINK` otherwise), and passes on its master's history id.
            let upstream_ok = match self.nodes[m].role {
                Role::Master => true,
                Role::Replica(_) => self.nodes[m].link.up,
            };
            let ok = self.nodes[m].serving()
                && upstream_ok
                && self.reachable(Endpoint::N(r), Endpoint::N(m));
            let m_hist = self.nodes[m].history();
            let link = self.nodes[r].link;
            if !ok {
                if link.up {
                    self.nodes[r].link.up = false;
                    self.nodes[r].link.retry_at = now + RECONNECT;
                }
                continue;
            }
            if link.up && link.replid != m_hist {
                // The master restarted or changed role: it closed every replica link.
                self.nodes[r].link.up = false;
                self.nodes[r].link.retry_at = now + RECONNECT;
                continue;
            }
            if !link.up && now < link.retry_at {
                continue;
            }
            let (rl, ml) = (self.nodes[r].log.len(), self.nodes[m].log.len());
            let prefix =
                rl <= ml && (rl == 0 || self.nodes[m].log[rl - 1] == self.nodes[r].log[rl - 1]);
            // PSYNC: a partial resync needs the replica's history to be the master's, or the
            // one the master continued from (up to where it did); anything else is a full one.
            let (m_id2, m_len2) = (self.nodes[m].replid2, self.nodes[m].replid2_len);
            let continues = link.replid != 0
                && (link.replid == m_hist || (link.replid == m_id2 && rl <= m_len2));
            if prefix && continues {
                let tail: Vec<u64> = self.nodes[m].log[rl..].to_vec();
                self.nodes[r].log.extend(tail);
                if link.replid != m_hist {
                    // `+CONTINUE <new id>`: the old id becomes the secondary one.
                    self.nodes[r].replid2 = link.replid;
                    self.nodes[r].replid2_len = rl;
                }
            } else {
                // Full resync: the replica's history is replaced by the master's.
                note!(self, "n{r} full resync from n{m} (log {rl} -> {ml})");
                self.nodes[r].log = self.nodes[m].log.clone();
                self.nodes[r].replid2 = 0;
                self.nodes[r].replid2_len = 0;
            }
            if !link.up {
                note!(
                    self,
                    "n{r} link up to n{m} (log {})",
                    self.nodes[r].log.len()
                );
            }
            self.nodes[r].link.up = true;
            self.nodes[r].link.replid = m_hist;
        }
        if self.opts.sync_replicas == 0 {
            return;
        }
        let need = usize::from(self.opts.sync_replicas);
        for m in 0..self.nodes.len() {
            if self.nodes[m].role != Role::Master
                || !self.nodes[m].serving()
                || self.nodes[m].pending.is_empty()
            {
                continue;
            }
            // A master without a valid lease majority acknowledges nothing more.
            if !self.nodes[m].has_lease_majority(now) {
                continue;
            }
            let id = self.nodes[m].id;
            let lens: Vec<usize> = self
                .nodes
                .iter()
                .filter(|r| r.serving() && r.role == Role::Replica(id) && r.link.up)
                .map(|r| r.log.len())
                .collect();
            let group = self.groups[self.nodes[m].group].clone();
            let pending = std::mem::take(&mut self.nodes[m].pending);
            let mut keep = Vec::new();
            for (idx, w) in pending {
                if lens.iter().filter(|l| **l > idx).count() >= need {
                    note!(self, "{id} acked write {w} (index {idx})");
                    self.check.acked.entry(group.clone()).or_default().insert(w);
                } else {
                    keep.push((idx, w));
                }
            }
            self.nodes[m].pending = keep;
        }
    }

    fn client_writes(&mut self) {
        let now = self.now;
        for n in 0..self.nodes.len() {
            if !self.nodes[n].accepts_writes(now) {
                continue;
            }
            let w = self.next_write;
            self.next_write += 1;
            let node = &mut self.nodes[n];
            node.log.push(w);
            let idx = node.log.len() - 1;
            let (id, since, group) = (node.id, node.master_since, node.group);
            if self.opts.sync_replicas > 0 {
                self.nodes[n].pending.push((idx, w));
            }
            let name = self.groups[group].clone();
            self.check.write_accepted(now, &name, id, since);
        }
    }

    fn apply_fault(&mut self, fault: Fault) {
        note!(self, "fault {fault:?}");
        match fault {
            Fault::CrashSentinel(i) => {
                let s = &mut self.sentinels[i];
                s.core = None;
                s.wake = None;
                s.incarnation += 1;
            }
            Fault::RestartSentinel(i) => {
                let s = &self.sentinels[i];
                // A spare starts only through `Join`; a killed sentinel never again.
                let started = i < self.opts.sentinels || s.disk.is_some();
                if s.core.is_none() && !s.gone && started {
                    self.start_sentinel(i);
                }
            }
            Fault::KillSentinel(i) => {
                self.apply_fault(Fault::CrashSentinel(i));
                self.sentinels[i].gone = true;
            }
            Fault::Forget { at, victim } => {
                let id = self.fresh_id();
                let sentinel = self.sentinels[victim].id;
                self.feed(at, Input::ForgetRequested { id, sentinel });
            }
            Fault::Join(i) => {
                if self.sentinels[i].core.is_some() || self.sentinels[i].gone {
                    return;
                }
                self.start_sentinel(i);
                note!(self, "{} starts and connects", self.sentinels[i].id);
                // `start_sentinel` connects it (`connect_spares`); its requests to join
                // then cross the (lossy) network.
            }
            Fault::CrashNode(n) => self.nodes[n].crash(),
            Fault::RestartNode { node, empty } => {
                if !self.nodes[node].up {
                    let run = self.fresh_id();
                    let now = self.now;
                    self.nodes[node].restart(now, empty, run);
                }
            }
            Fault::PauseNode(n) => {
                if self.nodes[n].up {
                    self.nodes[n].paused = true;
                }
            }
            Fault::ResumeNode(n) => {
                if !self.nodes[n].paused {
                    return;
                }
                self.nodes[n].paused = false;
                let inbox = std::mem::take(&mut self.nodes[n].inbox);
                for msg in inbox {
                    self.deliver_to_node(n, msg);
                }
            }
            Fault::Partition(set) => {
                self.side_s.iter_mut().for_each(|s| *s = 0);
                self.side_n.iter_mut().for_each(|s| *s = 0);
                for e in set {
                    match e {
                        Endpoint::S(i) => self.side_s[i] = 1,
                        Endpoint::N(i) => self.side_n[i] = 1,
                    }
                }
            }
            Fault::Heal => {
                self.side_s.iter_mut().for_each(|s| *s = 0);
                self.side_n.iter_mut().for_each(|s| *s = 0);
            }
            Fault::AdminSet(i) => {
                let group = self.groups[0].clone();
                let Some(mut options) = self.sentinels[i]
                    .core
                    .as_ref()
                    .and_then(|c| c.group_options(&group))
                else {
                    return;
                };
                let n = if options.parallel_syncs.get() == 1 {
                    2
                } else {
                    1
                };
                options.parallel_syncs =
                    std::num::NonZeroU8::new(n).unwrap_or(std::num::NonZeroU8::MIN);
                let id = self.fresh_id();
                self.feed(
                    i,
                    Input::AdminRequested {
                        id,
                        group,
                        change: crate::core::AdminChange::Set { options },
                    },
                );
            }
        }
    }

    /// Repairs everything: heals partitions, stops message loss, resumes and restarts (with
    /// their data) every node and sentinel.
    pub fn heal_all(&mut self) {
        self.healed_at = self.now;
        self.opts.loss = 0.0;
        self.apply_fault(Fault::Heal);
        for n in 0..self.nodes.len() {
            self.apply_fault(Fault::ResumeNode(n));
            self.apply_fault(Fault::RestartNode {
                node: n,
                empty: false,
            });
        }
        for i in 0..self.sentinels.len() {
            self.apply_fault(Fault::RestartSentinel(i));
        }
    }
}
