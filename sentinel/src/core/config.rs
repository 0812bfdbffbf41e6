//! The core's configuration: timings, groups, initial voters, and (in tests) deliberate bugs.
//!
//! Owns `CoreConfig`, `GroupConfig`, `ConfigError` and the test-only `Bugs` switch.
//! Invariant: a config that passed `validate` never makes the core divide by zero or wait forever.

use std::collections::{BTreeMap, BTreeSet};
use std::num::NonZeroU8;
use std::time::Duration;

use super::types::{Dc, GroupName, NodeId, Quorum, SentinelId};

/// Everything the core needs to know that does not change at run time.
#[derive(Clone, Debug)]
pub struct CoreConfig {
    /// How often every data node is pinged.
    pub probe_interval: Duration,
    /// How often INFO is read from every data node outside a failover.
    pub info_interval: Duration,
    /// How often INFO is read from a group's nodes while its failover is under way.
    pub info_interval_failover: Duration,
    /// How often the role of a just-promoted replica is polled.
    pub role_poll_interval: Duration,
    /// How often each sentinel sends its peers a heartbeat with every group's config.
    pub heartbeat_interval: Duration,
    /// Upper bound of the random delay before a sentinel that sees ODOWN becomes candidate.
    pub election_jitter: Duration,
    /// How long a candidate waits for votes before it counts the term as a split vote.
    pub vote_timeout: Duration,
    /// Bounds of the random backoff before retrying after a split vote (a few round trips).
    pub retry_backoff: (Duration, Duration),
    /// Time to live of a write lease granted to a master.
    pub lease_ttl: Duration,
    /// Bound on the relative rate difference between any two clocks (dimensionless, 0.01 = 1%).
    pub clock_rate_bound: f64,
    /// How long a data node may disagree with the winning config before it is reconfigured.
    pub convergence_grace: Duration,
    /// The data-centre this sentinel runs in, if labelled.
    pub dc: Option<Dc>,
    /// The voter set a sentinel founds its cluster with when it has no persisted state (every
    /// sentinel founding one cluster must be given the same set); ignored when `joining`.
    pub voters: BTreeSet<SentinelId>,
    /// Start outside any cluster, and join the cluster of the first peer that admits this
    /// sentinel (`MemberMsg::Join`), rather than found one.
    pub joining: bool,
    /// Mixed into the id of a cluster this sentinel founds, so that a founder that lost its
    /// state and founds again is another cluster, not a second copy of the first (random in
    /// production; every sentinel founding one cluster together must share it).
    pub founding_nonce: u64,
    /// The monitored groups.
    pub groups: Vec<GroupConfig>,
    /// Deliberate bugs, so that tests can show the simulator catches them.
    #[cfg(test)]
    pub bugs: Bugs,
}

/// The configuration of one monitored group.
#[derive(Clone, Debug)]
pub struct GroupConfig {
    /// The group's name.
    pub name: GroupName,
    /// The master at config epoch zero.
    pub master: NodeId,
    /// Replicas known in advance; more are discovered from the master's INFO.
    pub replicas: Vec<NodeId>,
    /// Sentinels that must agree the master is down, and minimum votes to win an election.
    pub quorum: Quorum,
    /// Time without a valid reply after which a node is subjectively down.
    pub down_after: Duration,
    /// Time limit of each failover step, and the period after which a stuck fence is resolved.
    pub failover_timeout: Duration,
    /// How many replicas are reconfigured to the new master at a time.
    pub parallel_syncs: NonZeroU8,
    /// Data-centre whose replicas are preferred at promotion.
    pub preferred_dc: Option<Dc>,
    /// `sync-replicas N` on the data nodes (0 = asynchronous replication).
    pub sync_replicas: u8,
    /// Options the core carries for the shell without reading them (`auth-pass`, …).
    pub extra: BTreeMap<String, String>,
}

/// The options of a group an operator can change at run time (`Monitor`, `SetOption`): every
/// field of `GroupConfig` but its name and members. Agreed through a term like a failover and
/// carried by every config from then on, so that every sentinel applies the same options.
#[derive(Clone, Debug, Eq, PartialEq)]
pub struct GroupOptions {
    /// See `GroupConfig::quorum`.
    pub quorum: Quorum,
    /// See `GroupConfig::down_after`.
    pub down_after: Duration,
    /// See `GroupConfig::failover_timeout`.
    pub failover_timeout: Duration,
    /// See `GroupConfig::parallel_syncs`.
    pub parallel_syncs: NonZeroU8,
    /// See `GroupConfig::preferred_dc`.
    pub preferred_dc: Option<Dc>,
    /// See `GroupConfig::sync_replicas`.
    pub sync_replicas: u8,
    /// See `GroupConfig::extra`.
    pub extra: BTreeMap<String, String>,
}

/// Deliberate bugs, each of which must make the simulator report a violated invariant.
#[cfg(test)]
#[derive(Clone, Copy, Debug, Default)]
pub struct Bugs {
    /// Reply to a vote request before the vote is durable.
    pub skip_vote_persist: bool,
    /// Grant a vote to every candidate of a term, not just the first.
    pub double_vote: bool,
    /// Promote without waiting for the voters' write leases to expire.
    pub skip_lease_wait: bool,
    /// Apply an operator's forget at once on the sentinel that got it, with no agreement
    /// (how voter-set changes worked before membership epochs).
    pub local_membership: bool,
}

/// A rule a `CoreConfig` breaks.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum ConfigError {
    /// A periodic interval is zero, which would make the core spin.
    #[error("{name} must be positive")]
    ZeroInterval {
        /// The field's name.
        name: &'static str,
    },
    /// `down_after` must leave room for a few probes.
    #[error("down_after of group {group} is {got:?}, below twice the probe interval {min:?}")]
    DownAfterTooShort {
        /// The group.
        group: GroupName,
        /// The smallest accepted value.
        min: Duration,
        /// The configured value.
        got: Duration,
    },
    /// A quorum larger than the voter set can never be reached.
    #[error("quorum {quorum} of group {group} exceeds the {voters} voters")]
    QuorumTooLarge {
        /// The group.
        group: GroupName,
        /// The configured quorum.
        quorum: usize,
        /// The number of voters.
        voters: usize,
    },
    /// The clock-rate bound must be a small non-negative number.
    #[error("clock_rate_bound must be within [0, 0.5), got {got}")]
    BadClockRateBound {
        /// The configured value.
        got: f64,
    },
    /// Two groups share a name.
    #[error("group {group} is configured twice")]
    DuplicateGroup {
        /// The group.
        group: GroupName,
    },
    /// The retry backoff range is empty.
    #[error("retry backoff minimum {min:?} exceeds its maximum {max:?}")]
    BackoffRange {
        /// The configured minimum.
        min: Duration,
        /// The configured maximum.
        max: Duration,
    },
}

impl CoreConfig {
    /// A LAN-tuned config with the given voters and groups.
    pub fn new(voters: BTreeSet<SentinelId>, groups: Vec<GroupConfig>) -> CoreConfig {
        CoreConfig {
            probe_interval: Duration::from_millis(100),
            info_interval: Duration::from_secs(1),
            info_interval_failover: Duration::from_millis(100),
            role_poll_interval: Duration::from_millis(50),
            heartbeat_interval: Duration::from_secs(1),
            election_jitter: Duration::from_millis(100),
            vote_timeout: Duration::from_millis(50),
            retry_backoff: (Duration::from_millis(10), Duration::from_millis(150)),
            lease_ttl: Duration::from_millis(800),
            clock_rate_bound: 0.01,
            convergence_grace: Duration::from_millis(500),
            dc: None,
            voters,
            joining: false,
            founding_nonce: 0,
            groups,
            #[cfg(test)]
            bugs: Bugs::default(),
        }
    }

    /// Checks every rule; the core assumes a validated config.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let intervals = [
            ("probe_interval", self.probe_interval),
            ("info_interval", self.info_interval),
            ("info_interval_failover", self.info_interval_failover),
            ("role_poll_interval", self.role_poll_interval),
            ("heartbeat_interval", self.heartbeat_interval),
            ("vote_timeout", self.vote_timeout),
            ("lease_ttl", self.lease_ttl),
        ];
        if let Some((name, _)) = intervals.iter().find(|(_, d)| d.is_zero()) {
            return Err(ConfigError::ZeroInterval { name });
        }
        if !(0.0..0.5).contains(&self.clock_rate_bound) {
            return Err(ConfigError::BadClockRateBound {
                got: self.clock_rate_bound,
            });
        }
        let (min, max) = self.retry_backoff;
        if min > max {
            return Err(ConfigError::BackoffRange { min, max });
        }
        let mut seen = BTreeSet::new();
        for g in &self.groups {
            if !seen.insert(&g.name) {
                return Err(ConfigError::DuplicateGroup {
                    group: g.name.clone(),
                });
            }
            self.check_options(&g.name, &g.options(), self.voters.len())?;
        }
        Ok(())
    }

    /// Checks the options of one group (at start, and for an operator's change) against a
    /// voter set of `voters`.
    pub fn check_options(
        &self,
        group: &GroupName,
        o: &GroupOptions,
        voters: usize,
    ) -> Result<(), ConfigError> {
        let min = self.probe_interval * 2;
        if o.down_after < min {
            return Err(ConfigError::DownAfterTooShort {
                group: group.clone(),
                min,
                got: o.down_after,
            });
        }
        if o.failover_timeout.is_zero() {
            return Err(ConfigError::ZeroInterval {
                name: "failover_timeout",
            });
        }
        if o.quorum.get() > voters {
            return Err(ConfigError::QuorumTooLarge {
                group: group.clone(),
                quorum: o.quorum.get(),
                voters,
            });
        }
        Ok(())
    }
}

impl GroupConfig {
    /// A group with LAN defaults (`down_after` 5 s, failover timeout 10 s, one sync at a time).
    pub fn new(name: &str, master: NodeId, replicas: Vec<NodeId>, quorum: Quorum) -> GroupConfig {
        GroupConfig {
            name: GroupName::new(name),
            master,
            replicas,
            quorum,
            down_after: Duration::from_secs(5),
            failover_timeout: Duration::from_secs(10),
            parallel_syncs: NonZeroU8::MIN,
            preferred_dc: None,
            sync_replicas: 0,
            extra: BTreeMap::new(),
        }
    }

    /// The group's changeable options.
    pub fn options(&self) -> GroupOptions {
        GroupOptions {
            quorum: self.quorum,
            down_after: self.down_after,
            failover_timeout: self.failover_timeout,
            parallel_syncs: self.parallel_syncs,
            preferred_dc: self.preferred_dc.clone(),
            sync_replicas: self.sync_replicas,
            extra: self.extra.clone(),
        }
    }

    /// Replaces the group's changeable options.
    pub fn apply(&mut self, o: &GroupOptions) {
        self.quorum = o.quorum;
        self.down_after = o.down_after;
        self.failover_timeout = o.failover_timeout;
        self.parallel_syncs = o.parallel_syncs;
        self.preferred_dc = o.preferred_dc.clone();
        self.sync_replicas = o.sync_replicas;
        self.extra = o.extra.clone();
    }
}
