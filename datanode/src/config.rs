//! Data-node configuration: the plain struct `main` fills from flags, env and a TOML file, its
//! validation, and the `CONFIG GET/SET` view of it by Redis parameter name.
//!
//! Invariant: a `Config` that passed `validate` never makes the server allocate without bound;
//! `CONFIG SET` goes through the same parsing and rules as start-up.

use std::path::PathBuf;
use std::time::Duration;

use crate::engine::EvictionPolicy;
use crate::fencing::WriteFencing;

/// Output buffer limit of one client class, as `client-output-buffer-limit` sets it.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub struct OutputLimit {
    /// Bytes at which the client is disconnected at once; 0 disables.
    pub hard: usize,
    /// Bytes that may be exceeded for at most `soft_seconds`; 0 disables.
    pub soft: usize,
    /// How long the soft limit may be exceeded.
    pub soft_seconds: Duration,
}

/// Data-node configuration.
#[derive(Clone, Debug)]
pub struct Config {
    /// Address to listen on.
    pub bind: String,
    /// TCP port; 0 picks a free one (tests).
    pub port: u16,
    /// Working directory for snapshots and logs.
    pub dir: PathBuf,
    /// Number of logical databases.
    pub databases: usize,
    /// Most simultaneous clients; more are refused with `-ERR max number of clients reached`.
    pub maxclients: usize,
    /// Memory limit in bytes; 0 means none.
    pub maxmemory: usize,
    /// What to do at the memory limit.
    pub maxmemory_policy: EvictionPolicy,
    /// Keys sampled per eviction.
    pub maxmemory_samples: usize,
    /// Password clients must give with `AUTH`; empty means none.
    pub requirepass: String,
    /// Largest bulk string a client may send, in bytes.
    pub proto_max_bulk_len: usize,
    /// Largest unprocessed input of one client, in bytes.
    pub client_query_buffer_limit: usize,
    /// Output limit of normal clients.
    pub output_normal: OutputLimit,
    /// Output limit of pub/sub subscribers.
    pub output_pubsub: OutputLimit,
    /// Output limit of replicas.
    pub output_replica: OutputLimit,
    /// Close idle clients after this long; zero never closes them.
    pub timeout: Duration,
    /// Background task frequency (active expiry), per second.
    pub hz: u32,
    /// Replicate from this master (`host port`) at start; `None` starts as a master.
    pub replicaof: Option<(String, u16)>,
    /// Size of the replication backlog in bytes (`repl-backlog-size`).
    pub repl_backlog_size: usize,
    /// Stream full-sync snapshots straight to the socket (`repl-diskless-sync`); otherwise they
    /// go through a temporary file in `dir`.
    pub repl_diskless_sync: bool,
    /// Wait before starting a diskless full sync (`repl-diskless-sync-delay`).
    pub repl_diskless_sync_delay: Duration,
    /// A link silent for this long is dropped, on both sides (`repl-timeout`).
    pub repl_timeout: Duration,
    /// How often a master pings its replicas through the stream (`repl-ping-replica-period`).
    pub repl_ping_replica_period: Duration,
    /// Refuse writes with fewer good replicas than this (`min-replicas-to-write`); 0 disables.
    pub min_replicas_to_write: usize,
    /// A replica is good if it acknowledged within this (`min-replicas-max-lag`).
    pub min_replicas_max_lag: Duration,
    /// Password to authenticate to the master with (`masterauth`); empty means none.
    pub masterauth: String,
    /// User to authenticate to the master as (`masteruser`); empty means the default user.
    pub masteruser: String,
    /// Refuse client writes while a replica (`replica-read-only`).
    pub replica_read_only: bool,
    /// Promotion priority reported to sentinels (`replica-priority`); 0 never promotes.
    pub replica_priority: u32,
    /// Address to announce to the master instead of ours (`replica-announce-ip`).
    pub replica_announce_ip: String,
    /// Port to announce to the master instead of ours (`replica-announce-port`); 0 = ours.
    pub replica_announce_port: u16,
    /// Persistence: RDB snapshots and the append-only file (`save`, `appendonly`, …).
    pub persist: crate::persist::PersistConfig,
    /// When client writes on a master need a majority of sentinels' write leases
    /// (`write-fencing`: `off`, `auto` = from the first `VIGIL LEASE`, `on` = from start).
    pub write_fencing: WriteFencing,
    /// Data-center label sentinels read from `INFO server` (`vigil_dc`) for DC-aware promotion
    /// (`dc`); empty means none. At most 64 characters of `A-Z a-z 0-9 . _ -`.
    pub dc: String,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            bind: "127.0.0.1".into(),
            port: 6379,
            dir: PathBuf::from("."),
            databases: 16,
            maxclients: 10_000,
            maxmemory: 0,
            maxmemory_policy: EvictionPolicy::NoEviction,
            maxmemory_samples: 5,
            requirepass: String::new(),
            proto_max_bulk_len: 512 * 1024 * 1024,
            client_query_buffer_limit: 1024 * 1024 * 1024,
            // Redis leaves normal clients unlimited; we bound them too, generously.
            output_normal: OutputLimit {
                hard: 1024 * 1024 * 1024,
                soft: 0,
                soft_seconds: Duration::ZERO,
            },
            output_pubsub: OutputLimit {
                hard: 32 * 1024 * 1024,
                soft: 8 * 1024 * 1024,
                soft_seconds: Duration::from_secs(60),
            },
            output_replica: OutputLimit {
                hard: 256 * 1024 * 1024,
                soft: 64 * 1024 * 1024,
                soft_seconds: Duration::from_secs(60),
            },
            timeout: Duration::ZERO,
            hz: 10,
            replicaof: None,
            repl_backlog_size: 1024 * 1024,
            repl_diskless_sync: true,
            // Redis waits 5 s so that several replicas share one snapshot; each of ours gets its
            // own, so waiting only delays the sync.
            repl_diskless_sync_delay: Duration::ZERO,
            repl_timeout: Duration::from_secs(60),
            repl_ping_replica_period: Duration::from_secs(10),
            min_replicas_to_write: 0,
            min_replicas_max_lag: Duration::from_secs(10),
            masterauth: String::new(),
            masteruser: String::new(),
            replica_read_only: true,
            replica_priority: 100,
            replica_announce_ip: String::new(),
            replica_announce_port: 0,
            persist: crate::persist::PersistConfig::default(),
            write_fencing: WriteFencing::Auto,
            dc: String::new(),
        }
    }
}

/// Why a memory size does not parse, in Redis' words.
const NOT_MEMORY: &str = "argument must be a memory value";
/// Why an integer does not parse, in Redis' words.
const NOT_INTEGER: &str = "argument couldn't be parsed into an integer";
/// Why a `maxmemory-policy` does not parse, in Redis' words.
const NOT_POLICY: &str = "argument(s) must be one of the following: volatile-lru, volatile-lfu, volatile-random, volatile-ttl, allkeys-lru, allkeys-lfu, allkeys-random, noeviction";

/// A configuration value breaks a rule.
#[derive(Clone, Debug, Eq, PartialEq, thiserror::Error)]
pub enum ConfigError {
    /// `databases` outside 1..=1024.
    #[error("databases must be between 1 and 1024, got {0}")]
    Databases(usize),
    /// `maxclients` of zero.
    #[error("maxclients must be at least 1")]
    MaxClients,
    /// `hz` outside 1..=500.
    #[error("hz must be between 1 and 500, got {0}")]
    Hz(u32),
    /// `proto-max-bulk-len` below 1 MiB.
    #[error("proto-max-bulk-len must be at least 1mb, got {0}")]
    BulkLen(usize),
    /// `maxmemory-samples` outside 1..=64.
    #[error("maxmemory-samples must be between 1 and 64, got {0}")]
    Samples(usize),
    /// A value that does not parse for its parameter.
    #[error("invalid value for '{name}': {reason}")]
    Invalid {
        /// The parameter.
        name: String,
        /// Why.
        reason: String,
    },
    /// An unknown parameter.
    #[error("unknown parameter '{0}'")]
    Unknown(String),
    /// `dc` longer than 64 characters or with characters outside `A-Z a-z 0-9 . _ -`.
    #[error("dc must be at most 64 characters of A-Z a-z 0-9 . _ -, got '{0}'")]
    Dc(String),
    /// A parameter that cannot change while running.
    #[error("parameter '{0}' can't be changed at runtime")]
    Immutable(String),
}

impl Config {
    /// Checks every rule.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if !(1..=1024).contains(&self.databases) {
            return Err(ConfigError::Databases(self.databases));
        }
        if self.maxclients == 0 {
            return Err(ConfigError::MaxClients);
        }
        if !(1..=500).contains(&self.hz) {
            return Err(ConfigError::Hz(self.hz));
        }
        if self.proto_max_bulk_len < 1024 * 1024 {
            return Err(ConfigError::BulkLen(self.proto_max_bulk_len));
        }
        if !(1..=64).contains(&self.maxmemory_samples) {
            return Err(ConfigError::Samples(self.maxmemory_samples));
        }
        let dc_ok = self.dc.len() <= 64
            && self
                .dc
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'-'));
        if !dc_ok {
            return Err(ConfigError::Dc(self.dc.clone()));
        }
        self.persist.validate()
    }

    /// Every parameter `CONFIG GET` knows, with its current value, in Redis' names.
    pub fn params(&self) -> Vec<(&'static str, String)> {
        let limit = |l: &OutputLimit| format!("{} {} {}", l.hard, l.soft, l.soft_seconds.as_secs());
        vec![
            ("bind", self.bind.clone()),
            ("port", self.port.to_string()),
            ("dir", self.dir.display().to_string()),
            ("databases", self.databases.to_string()),
            ("maxclients", self.maxclients.to_string()),
            ("maxmemory", self.maxmemory.to_string()),
            ("maxmemory-policy", self.maxmemory_policy.as_str().into()),
            ("maxmemory-samples", self.maxmemory_samples.to_string()),
            ("requirepass", self.requirepass.clone()),
            ("proto-max-bulk-len", self.proto_max_bulk_len.to_string()),
            (
                "client-query-buffer-limit",
                self.client_query_buffer_limit.to_string(),
            ),
            (
                "client-output-buffer-limit",
                format!(
                    "normal {} slave {} pubsub {}",
                    limit(&self.output_normal),
                    limit(&self.output_replica),
                    limit(&self.output_pubsub)
                ),
            ),
            ("timeout", self.timeout.as_secs().to_string()),
            ("hz", self.hz.to_string()),
            ("tcp-keepalive", "300".into()),
            ("notify-keyspace-events", String::new()),
            ("slowlog-log-slower-than", "10000".into()),
            ("slowlog-max-len", "128".into()),
            ("lazyfree-lazy-eviction", "no".into()),
            ("protected-mode", "no".into()),
            ("io-threads", "1".into()),
            ("replica-read-only", yes_no(self.replica_read_only)),
            ("slave-read-only", yes_no(self.replica_read_only)),
            (
                "replicaof",
                self.replicaof
                    .as_ref()
                    .map_or(String::new(), |(h, p)| format!("{h} {p}")),
            ),
            ("repl-backlog-size", self.repl_backlog_size.to_string()),
            ("repl-backlog-ttl", "3600".into()),
            ("repl-diskless-sync", yes_no(self.repl_diskless_sync)),
            (
                "repl-diskless-sync-delay",
                self.repl_diskless_sync_delay.as_secs().to_string(),
            ),
            ("repl-diskless-load", "disabled".into()),
            ("repl-timeout", self.repl_timeout.as_secs().to_string()),
            (
                "repl-ping-replica-period",
                self.repl_ping_replica_period.as_secs().to_string(),
            ),
            (
                "min-replicas-to-write",
                self.min_replicas_to_write.to_string(),
            ),
            (
                "min-slaves-to-write",
                self.min_replicas_to_write.to_string(),
            ),
            (
                "min-replicas-max-lag",
                self.min_replicas_max_lag.as_secs().to_string(),
            ),
            (
                "min-slaves-max-lag",
                self.min_replicas_max_lag.as_secs().to_string(),
            ),
            ("masterauth", self.masterauth.clone()),
            ("masteruser", self.masteruser.clone()),
            ("replica-priority", self.replica_priority.to_string()),
            ("slave-priority", self.replica_priority.to_string()),
            ("replica-announce-ip", self.replica_announce_ip.clone()),
            ("slave-announce-ip", self.replica_announce_ip.clone()),
            (
                "replica-announce-port",
                self.replica_announce_port.to_string(),
            ),
            (
                "slave-announce-port",
                self.replica_announce_port.to_string(),
            ),
            ("list-max-listpack-size", "-2".into()),
            ("hash-max-listpack-entries", "512".into()),
            ("set-max-intset-entries", "512".into()),
            ("zset-max-listpack-entries", "128".into()),
            ("write-fencing", self.write_fencing.as_str().into()),
            ("dc", self.dc.clone()),
        ]
        .into_iter()
        // Persistence parameters (`save`, `appendonly`, …) come from their own module.
        .chain(self.persist.params())
        .collect()
    }

    /// Sets one parameter by its Redis name, as `CONFIG SET` does.
    pub fn set_param(&mut self, name: &str, value: &str) -> Result<(), ConfigError> {
        let name = name.to_ascii_lowercase();
        let invalid = |reason: &str| ConfigError::Invalid {
            name: name.clone(),
            reason: reason.into(),
        };
        let mut next = self.clone();
        // Persistence parameters are parsed by their own module.
        if let Some(r) = next.persist.set_param(&name, value) {
            r?;
            next.validate()?;
            *self = next;
            return Ok(());
        }
        match name.as_str() {
            "maxclients" => next.maxclients = value.parse().map_err(|_| invalid(NOT_INTEGER))?,
            "maxmemory" => {
                next.maxmemory = parse_memory(value).ok_or_else(|| invalid(NOT_MEMORY))?
            }
            "maxmemory-policy" => {
                next.maxmemory_policy =
                    EvictionPolicy::parse(value).ok_or_else(|| invalid(NOT_POLICY))?
            }
            "maxmemory-samples" => {
                next.maxmemory_samples = value.parse().map_err(|_| invalid(NOT_INTEGER))?
            }
            "requirepass" => next.requirepass = value.to_string(),
            "proto-max-bulk-len" => {
                next.proto_max_bulk_len = parse_memory(value).ok_or_else(|| invalid(NOT_MEMORY))?
            }
            "client-query-buffer-limit" => {
                next.client_query_buffer_limit =
                    parse_memory(value).ok_or_else(|| invalid(NOT_MEMORY))?
            }
            "client-output-buffer-limit" => {
                let words: Vec<&str> = value.split_whitespace().collect();
                if words.is_empty() || words.len() % 4 != 0 {
                    return Err(invalid("expected groups of: class hard soft seconds"));
                }
                for g in words.chunks(4) {
                    let limit = OutputLimit {
                        hard: parse_memory(g[1]).ok_or_else(|| invalid("bad hard limit"))?,
                        soft: parse_memory(g[2]).ok_or_else(|| invalid("bad soft limit"))?,
                        soft_seconds: Duration::from_secs(
                            g[3].parse().map_err(|_| invalid("bad seconds"))?,
                        ),
                    };
                    match g[0].to_ascii_lowercase().as_str() {
                        "normal" => next.output_normal = limit,
                        "pubsub" => next.output_pubsub = limit,
                        "slave" | "replica" => next.output_replica = limit,
                        _ => return Err(invalid("unknown client class")),
                    }
                }
            }
            "timeout" => {
                next.timeout = Duration::from_secs(value.parse().map_err(|_| invalid(NOT_INTEGER))?)
            }
            "hz" => next.hz = value.parse().map_err(|_| invalid(NOT_INTEGER))?,
            "repl-backlog-size" => {
                next.repl_backlog_size = parse_memory(value)
                    .filter(|&n| n >= 16 * 1024)
                    .ok_or_else(|| invalid(NOT_MEMORY))?
            }
            "repl-diskless-sync" => {
                next.repl_diskless_sync = parse_bool(value).ok_or_else(|| invalid(NOT_BOOL))?
            }
            "repl-diskless-sync-delay" => {
                next.repl_diskless_sync_delay = secs(value).ok_or_else(|| invalid(NOT_INTEGER))?
            }
            "repl-timeout" => {
                next.repl_timeout = secs(value)
                    .filter(|d| !d.is_zero())
                    .ok_or_else(|| invalid(NOT_INTEGER))?
            }
            "repl-ping-replica-period" | "repl-ping-slave-period" => {
                next.repl_ping_replica_period = secs(value)
                    .filter(|d| !d.is_zero())
                    .ok_or_else(|| invalid(NOT_INTEGER))?
            }
            "min-replicas-to-write" | "min-slaves-to-write" => {
                next.min_replicas_to_write = value.parse().map_err(|_| invalid(NOT_INTEGER))?
            }
            "min-replicas-max-lag" | "min-slaves-max-lag" => {
                next.min_replicas_max_lag = secs(value).ok_or_else(|| invalid(NOT_INTEGER))?
            }
            "masterauth" => next.masterauth = value.to_string(),
            "masteruser" => next.masteruser = value.to_string(),
            "replica-read-only" | "slave-read-only" => {
                next.replica_read_only = parse_bool(value).ok_or_else(|| invalid(NOT_BOOL))?
            }
            "replica-priority" | "slave-priority" => {
                next.replica_priority = value.parse().map_err(|_| invalid(NOT_INTEGER))?
            }
            "replica-announce-ip" | "slave-announce-ip" => {
                next.replica_announce_ip = value.to_string()
            }
            "replica-announce-port" | "slave-announce-port" => {
                next.replica_announce_port = value.parse().map_err(|_| invalid(NOT_INTEGER))?
            }
            "repl-backlog-ttl" | "repl-diskless-load" => {
                // Accepted for compatibility: the backlog is kept while the node runs, and a
                // replica always loads through memory (never a half-loaded keyspace).
            }
            "write-fencing" => {
                next.write_fencing =
                    WriteFencing::parse(value).ok_or_else(|| invalid(NOT_FENCING))?
            }
            "dc" => next.dc = value.to_string(),
            "replicaof" | "slaveof" => return Err(ConfigError::Immutable(name)),
            "notify-keyspace-events"
            | "tcp-keepalive"
            | "slowlog-log-slower-than"
            | "slowlog-max-len"
            | "lazyfree-lazy-eviction"
            | "protected-mode" => {
                // Accepted for compatibility with tools that set them; persistence and
                // notifications arrive with their own issue.
            }
            "bind" | "port" | "dir" | "databases" | "io-threads" => {
                return Err(ConfigError::Immutable(name));
            }
            _ => return Err(ConfigError::Unknown(name)),
        }
        next.validate()?;
        *self = next;
        Ok(())
    }
}

/// Why a `write-fencing` value does not parse.
const NOT_FENCING: &str = "argument must be one of the following: off, auto, on";

/// Why a yes/no parameter does not parse, in Redis' words.
const NOT_BOOL: &str = "argument must be 'yes' or 'no'";

/// Redis' spelling of a boolean parameter.
fn yes_no(b: bool) -> String {
    if b { "yes" } else { "no" }.into()
}

/// Parses `yes`/`no`.
pub fn parse_bool(s: &str) -> Option<bool> {
    match s.to_ascii_lowercase().as_str() {
        "yes" => Some(true),
        "no" => Some(false),
        _ => None,
    }
}

/// Parses a whole number of seconds.
fn secs(s: &str) -> Option<Duration> {
    s.trim().parse::<u64>().ok().map(Duration::from_secs)
}

/// Parses a Redis memory size: `1024`, `1k`, `1kb`, `5mb`, `1gb` (k = 1000, kb = 1024).
pub fn parse_memory(s: &str) -> Option<usize> {
    let s = s.trim().to_ascii_lowercase();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: usize = num.parse().ok()?;
    let mul = match unit {
        "" | "b" => 1,
        "k" => 1000,
        "kb" => 1024,
        "m" => 1000 * 1000,
        "mb" => 1024 * 1024,
        "g" => 1000 * 1000 * 1000,
        "gb" => 1024 * 1024 * 1024,
        _ => return None,
    };
    n.checked_mul(mul)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_sizes_parse_like_redis() {
        assert_eq!(parse_memory("100"), Some(100));
        assert_eq!(parse_memory("1kb"), Some(1024));
        assert_eq!(parse_memory("1k"), Some(1000));
        assert_eq!(parse_memory("2GB"), Some(2 * 1024 * 1024 * 1024));
        assert_eq!(parse_memory("12xb"), None);
        assert_eq!(parse_memory(""), None);
    }

    #[test]
    fn config_set_checks_rules_and_keeps_old_value_on_error() {
        let mut c = Config::default();
        c.set_param("maxmemory", "10mb").unwrap();
        assert_eq!(c.maxmemory, 10 * 1024 * 1024);
        assert!(c.set_param("hz", "0").is_err());
        assert_eq!(c.hz, 10);
        assert_eq!(
            c.set_param("port", "1"),
            Err(ConfigError::Immutable("port".into()))
        );
        c.set_param(
            "client-output-buffer-limit",
            "normal 1mb 0 0 pubsub 2mb 1mb 10",
        )
        .unwrap();
        assert_eq!(c.output_normal.hard, 1024 * 1024);
        assert_eq!(c.output_pubsub.soft_seconds, Duration::from_secs(10));
    }

    #[test]
    fn write_fencing_and_dc_are_settable_and_checked() {
        let mut c = Config::default();
        assert_eq!(c.write_fencing, WriteFencing::Auto);
        c.set_param("write-fencing", "ON").unwrap();
        assert_eq!(c.write_fencing, WriteFencing::On);
        assert!(matches!(
            c.set_param("write-fencing", "maybe"),
            Err(ConfigError::Invalid { .. })
        ));
        assert_eq!(c.write_fencing, WriteFencing::On);
        c.set_param("dc", "eu-west-1a").unwrap();
        assert_eq!(c.dc, "eu-west-1a");
        assert_eq!(c.set_param("dc", "a b"), Err(ConfigError::Dc("a b".into())));
        assert!(c.set_param("dc", &"x".repeat(65)).is_err());
        assert_eq!(c.dc, "eu-west-1a");
        let params = c.params();
        assert!(params.contains(&("write-fencing", "on".into())));
        assert!(params.contains(&("dc", "eu-west-1a".into())));
    }
}
