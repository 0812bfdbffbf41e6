//! `vigil sentinel`'s settings: the TOML file, a Redis Sentinel `sentinel.conf`, validation.
//!
//! Owns `Settings` (what the daemon runs with), its TOML form, the reader of Redis Sentinel
//! configs, and `SettingsError`, whose messages name the key and the rule it breaks.
//! Invariant: `Settings` that came out of `validate` build a `CoreConfig` that passes
//! `CoreConfig::validate` except for the quorum check, which waits for peers to join.

use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU8;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use crate::nodes::NodeAddr;

/// A rule a setting breaks, or a file that cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    /// A key has a value that breaks a rule.
    #[error("{key}: {rule}")]
    Invalid {
        /// The key, as written in the file (`group.mymaster.quorum`).
        key: String,
        /// The rule, with the value.
        rule: String,
    },
    /// The TOML does not parse or has an unknown key.
    #[error("{0}")]
    Toml(String),
    /// A line of a Redis Sentinel config cannot be used.
    #[error("line {line}: {reason}")]
    RedisConfig {
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        reason: String,
    },
}

fn invalid(key: impl Into<String>, rule: impl Into<String>) -> SettingsError {
    SettingsError::Invalid {
        key: key.into(),
        rule: rule.into(),
    }
}

/// Everything `vigil sentinel` runs with.
#[derive(Clone, Debug, PartialEq)]
pub struct Settings {
    /// Where the state file and the dev identity live.
    pub dir: PathBuf,
    /// The UDP address the QUIC gossip endpoint binds.
    pub gossip: SocketAddr,
    /// The TCP address of the RESP sentinel port, if served.
    pub resp: Option<SocketAddr>,
    /// The TCP address of the gRPC control API, if served. Unless set explicitly (`grpc_set`),
    /// `derive_grpc` puts it at the RESP port + 10000 (port 0 stays 0).
    pub grpc: Option<SocketAddr>,
    /// `grpc` was given explicitly (file or flag), so `derive_grpc` leaves it alone.
    pub grpc_set: bool,
    /// The gossip address peers should dial, when different from `gossip` (NAT).
    pub announce: Option<SocketAddr>,
    /// Seeds to join.
    pub join: Vec<SocketAddr>,
    /// Found a new cluster even with `join` seeds (when every sentinel lists the others as
    /// seeds, exactly one must found it). Without seeds a new sentinel founds one anyway.
    pub bootstrap: bool,
    /// This sentinel's data-centre label.
    pub dc: Option<String>,
    /// Cluster CA, certificate and key; `None` runs in dev mode.
    pub tls: Option<TlsFiles>,
    /// With `tls`: the gRPC API also requires client certificates from the cluster CA.
    pub api_client_auth: bool,
    /// Timings shared by every group.
    pub timing: Timing,
    /// The monitored groups.
    pub groups: Vec<GroupSettings>,
}

/// The TLS files of a sentinel.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct TlsFiles {
    /// The cluster CA certificate (PEM).
    pub ca: PathBuf,
    /// This sentinel's certificate (PEM), issued by the CA.
    pub cert: PathBuf,
    /// Its private key (PEM).
    pub key: PathBuf,
}

/// Timings shared by every group.
#[derive(Clone, Debug, PartialEq)]
pub struct Timing {
    /// PING period.
    pub probe_interval: Duration,
    /// INFO period outside failovers.
    pub info_interval: Duration,
    /// Heartbeat period between sentinels.
    pub heartbeat_interval: Duration,
    /// Upper bound of the random wait before becoming candidate.
    pub election_jitter: Duration,
    /// Write lease time to live.
    pub lease_ttl: Duration,
    /// How long a node may disagree with the config before it is reconfigured.
    pub convergence_grace: Duration,
    /// Deadline of one call to a data node.
    pub backend_timeout: Duration,
}

/// One monitored group.
#[derive(Clone, Debug, PartialEq)]
pub struct GroupSettings {
    /// The group's name.
    pub name: String,
    /// The master at config epoch zero.
    pub master: NodeAddr,
    /// Replicas known in advance.
    pub replicas: Vec<NodeAddr>,
    /// Sentinels that must agree the master is down.
    pub quorum: NonZeroU8,
    /// Time without a valid reply before a node is subjectively down.
    pub down_after: Duration,
    /// Time limit of each failover step.
    pub failover_timeout: Duration,
    /// Replicas reconfigured at a time.
    pub parallel_syncs: NonZeroU8,
    /// `AUTH` user for the data nodes.
    pub auth_user: Option<String>,
    /// `AUTH` password for the data nodes.
    pub auth_pass: Option<String>,
    /// Data centre preferred at promotion.
    pub preferred_dc: Option<String>,
    /// `sync-replicas N` of the data nodes.
    pub sync_replicas: u8,
    /// For masters without write leases (Redis, Valkey): the `min-replicas-to-write` the
    /// sentinel sets on them, so an isolated master stops accepting writes (0: leave it).
    pub redis_min_replicas: u8,
}

impl Default for Timing {
    fn default() -> Timing {
        Timing {
            probe_interval: Duration::from_millis(100),
            info_interval: Duration::from_secs(1),
            heartbeat_interval: Duration::from_secs(1),
            election_jitter: Duration::from_millis(100),
            lease_ttl: Duration::from_millis(800),
            convergence_grace: Duration::from_millis(500),
            backend_timeout: Duration::from_millis(500),
        }
    }
}

/// The default port of the RESP sentinel port (Redis Sentinel's); gossip uses the same number
/// over UDP.
pub const DEFAULT_PORT: u16 = 26379;
/// The gRPC control API listens this far above the RESP port by default (36379), as Redis
/// Cluster's bus does, so sentinels on consecutive ports never collide.
pub const GRPC_PORT_OFFSET: u16 = 10000;

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct TomlFile {
    dir: Option<PathBuf>,
    gossip: Option<String>,
    resp: Option<String>,
    grpc: Option<String>,
    announce: Option<String>,
    #[serde(default)]
    join: Vec<String>,
    #[serde(default)]
    bootstrap: bool,
    dc: Option<String>,
    tls: Option<TlsFiles>,
    #[serde(default)]
    api_client_auth: bool,
    #[serde(default)]
    timing: TomlTiming,
    #[serde(default)]
    group: Vec<TomlGroup>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct TomlTiming {
    probe_interval_ms: Option<u64>,
    info_interval_ms: Option<u64>,
    heartbeat_interval_ms: Option<u64>,
    election_jitter_ms: Option<u64>,
    lease_ttl_ms: Option<u64>,
    convergence_grace_ms: Option<u64>,
    backend_timeout_ms: Option<u64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct TomlGroup {
    name: String,
    master: String,
    #[serde(default)]
    replicas: Vec<String>,
    quorum: i64,
    down_after_ms: Option<i64>,
    failover_timeout_ms: Option<i64>,
    parallel_syncs: Option<i64>,
    auth_user: Option<String>,
    auth_pass: Option<String>,
    preferred_dc: Option<String>,
    sync_replicas: Option<i64>,
    redis_min_replicas: Option<i64>,
}

impl Settings {
    /// Settings with no groups, listening on the default port of `127.0.0.1`.
    pub fn empty(dir: PathBuf) -> Settings {
        let local = IpAddr::from([127, 0, 0, 1]);
        Settings {
            dir,
            gossip: SocketAddr::new(local, DEFAULT_PORT),
            resp: Some(SocketAddr::new(local, DEFAULT_PORT)),
            grpc: Some(SocketAddr::new(local, DEFAULT_PORT + GRPC_PORT_OFFSET)),
            grpc_set: false,
            announce: None,
            join: Vec::new(),
            bootstrap: false,
            dc: None,
            tls: None,
            api_client_auth: false,
            timing: Timing::default(),
            groups: Vec::new(),
        }
    }

    /// Parses and validates a `sentinel.toml`.
    pub fn from_toml(text: &str) -> Result<Settings, SettingsError> {
        let file: TomlFile =
            toml::from_str(text).map_err(|e| SettingsError::Toml(e.to_string()))?;
        let mut s = Settings::empty(file.dir.unwrap_or_else(|| PathBuf::from(".")));
        if let Some(a) = file.gossip {
            s.gossip = socket("gossip", &a)?;
        }
        if let Some(a) = file.resp {
            s.resp = if a.is_empty() {
                None
            } else {
                Some(socket("resp", &a)?)
            };
        }
        if let Some(a) = file.grpc {
            s.grpc_set = true;
            s.grpc = if a.is_empty() {
                None
            } else {
                Some(socket("grpc", &a)?)
            };
        }
        if let Some(a) = file.announce {
            s.announce = Some(socket("announce", &a)?);
        }
        s.join = file
            .join
            .iter()
            .map(|a| socket("join", a))
            .collect::<Result<_, _>>()?;
        s.bootstrap = file.bootstrap;
        s.dc = file.dc.filter(|d| !d.is_empty());
        s.tls = file.tls;
        s.api_client_auth = file.api_client_auth;
        if s.api_client_auth && s.tls.is_none() {
            return Err(invalid(
                "api-client-auth",
                "needs [tls] (the cluster CA checks the clients)",
            ));
        }
        let t = file.timing;
        let ms =
            |key: &str, v: Option<u64>, default: Duration| -> Result<Duration, SettingsError> {
                match v {
                    None => Ok(default),
                    Some(0) => Err(invalid(format!("timing.{key}"), "must be positive")),
                    Some(v) if v > 3_600_000 => Err(invalid(
                        format!("timing.{key}"),
                        format!("{v} exceeds one hour"),
                    )),
                    Some(v) => Ok(Duration::from_millis(v)),
                }
            };
        let d = Timing::default();
        s.timing = Timing {
            probe_interval: ms("probe-interval-ms", t.probe_interval_ms, d.probe_interval)?,
            info_interval: ms("info-interval-ms", t.info_interval_ms, d.info_interval)?,
            heartbeat_interval: ms(
                "heartbeat-interval-ms",
                t.heartbeat_interval_ms,
                d.heartbeat_interval,
            )?,
            election_jitter: ms(
                "election-jitter-ms",
                t.election_jitter_ms,
                d.election_jitter,
            )?,
            lease_ttl: ms("lease-ttl-ms", t.lease_ttl_ms, d.lease_ttl)?,
            convergence_grace: ms(
                "convergence-grace-ms",
                t.convergence_grace_ms,
                d.convergence_grace,
            )?,
            backend_timeout: ms(
                "backend-timeout-ms",
                t.backend_timeout_ms,
                d.backend_timeout,
            )?,
        };
        for g in file.group {
            let key = |k: &str| format!("group.{}.{k}", g.name);
            let mut gs = GroupSettings::new(&g.name, node_addr(&key("master"), &g.master)?, 1)?;
            gs.quorum = small(&key("quorum"), g.quorum, 1)?;
            gs.replicas = g
                .replicas
                .iter()
                .map(|r| node_addr(&key("replicas"), r))
                .collect::<Result<_, _>>()?;
            if let Some(v) = g.down_after_ms {
                gs.down_after = millis(&key("down-after-ms"), v)?;
            }
            if let Some(v) = g.failover_timeout_ms {
                gs.failover_timeout = millis(&key("failover-timeout-ms"), v)?;
            }
            if let Some(v) = g.parallel_syncs {
                gs.parallel_syncs = small(&key("parallel-syncs"), v, 1)?;
            }
            gs.auth_user = g.auth_user;
            gs.auth_pass = g.auth_pass;
            gs.preferred_dc = g.preferred_dc.filter(|d| !d.is_empty());
            if let Some(v) = g.redis_min_replicas {
                gs.redis_min_replicas = u8::try_from(v).map_err(|_| {
                    invalid(key("redis-min-replicas"), format!("{v} is not in 0..=255"))
                })?;
            }
            if let Some(v) = g.sync_replicas {
                gs.sync_replicas = u8::try_from(v)
                    .map_err(|_| invalid(key("sync-replicas"), format!("{v} is not in 0..=255")))?;
            }
            s.groups.push(gs);
        }
        s.derive_grpc();
        s.validate()?;
        Ok(s)
    }

    /// Reads a Redis Sentinel `sentinel.conf`: `port`, `bind`, `dir`, `sentinel monitor`,
    /// `down-after-milliseconds`, `failover-timeout`, `parallel-syncs`, `auth-pass`,
    /// `auth-user`, `announce-ip`, `announce-port`, and the state lines Redis writes back
    /// (`known-replica`; `myid`, `config-epoch`, `leader-epoch`, `current-epoch`,
    /// `known-sentinel` are ignored: Vigil keeps its own state). Operational directives
    /// without meaning here (`daemonize`, `logfile`, …) are ignored with a warning; anything
    /// else is an error naming the line.
    pub fn from_redis_config(text: &str) -> Result<Settings, SettingsError> {
        let mut s = Settings::empty(PathBuf::from("."));
        let mut port = DEFAULT_PORT;
        let mut bind: Option<IpAddr> = None;
        let mut announce_ip: Option<IpAddr> = None;
        let mut announce_port: Option<u16> = None;
        for (n, raw) in text.lines().enumerate() {
            let line = n + 1;
            let err = |reason: String| SettingsError::RedisConfig { line, reason };
            let words = split_args(raw).map_err(|e| err(e.to_owned()))?;
            let Some(first) = words.first() else {
                continue;
            };
            let args = &words[1..];
            let want = |k: usize| -> Result<(), SettingsError> {
                if args.len() < k {
                    Err(err(format!("{first} needs {k} argument(s)")))
                } else {
                    Ok(())
                }
            };
            match first.to_ascii_lowercase().as_str() {
                "port" => {
                    want(1)?;
                    port =
                        args[0].parse().ok().filter(|p| *p != 0).ok_or_else(|| {
                            err(format!("port {:?} is not in 1..=65535", args[0]))
                        })?;
                }
                "bind" => {
                    want(1)?;
                    // Vigil binds one address; the first IP literal wins ("-::1" style
                    // optional addresses are accepted without the dash).
                    let a = args[0].trim_start_matches('-');
                    bind = Some(
                        a.parse()
                            .map_err(|_| err(format!("bind {a:?} is not an IP")))?,
                    );
                }
                "dir" => {
                    want(1)?;
                    s.dir = PathBuf::from(&args[0]);
                }
                "sentinel" => {
                    want(1)?;
                    let sub = args[0].to_ascii_lowercase();
                    let rest = &args[1..];
                    let group_arg = |i: usize| -> Result<&String, SettingsError> {
                        rest.get(i)
                            .ok_or_else(|| err(format!("sentinel {sub} needs more arguments")))
                    };
                    match sub.as_str() {
                        "monitor" => {
                            let name = group_arg(0)?;
                            let host = group_arg(1)?;
                            let p = group_arg(2)?;
                            let q = group_arg(3)?;
                            let addr = node_addr("sentinel monitor", &format!("{host}:{p}"))
                                .map_err(|e| err(e.to_string()))?;
                            let quorum: i64 = q
                                .parse()
                                .map_err(|_| err(format!("quorum {q:?} is not a number")))?;
                            let g = GroupSettings::new(name, addr, 1)
                                .map_err(|e| err(e.to_string()))?;
                            if s.groups.iter().any(|x| x.name == *name) {
                                return Err(err(format!("group {name} is monitored twice")));
                            }
                            let mut g = g;
                            g.quorum =
                                small("quorum", quorum, 1).map_err(|e| err(e.to_string()))?;
                            s.groups.push(g);
                        }
                        "down-after-milliseconds"
                        | "failover-timeout"
                        | "parallel-syncs"
                        | "auth-pass"
                        | "auth-user"
                        | "known-replica"
                        | "known-slave" => {
                            let name = group_arg(0)?;
                            let value = group_arg(1)?;
                            let g =
                                s.groups
                                    .iter_mut()
                                    .find(|g| g.name == *name)
                                    .ok_or_else(|| {
                                        err(format!("no such master {name:?} (monitor it first)"))
                                    })?;
                            let num = || -> Result<i64, SettingsError> {
                                value
                                    .parse()
                                    .map_err(|_| err(format!("{value:?} is not a number")))
                            };
                            match sub.as_str() {
                                "down-after-milliseconds" => {
                                    g.down_after =
                                        millis(&sub, num()?).map_err(|e| err(e.to_string()))?
                                }
                                "failover-timeout" => {
                                    g.failover_timeout =
                                        millis(&sub, num()?).map_err(|e| err(e.to_string()))?
                                }
                                "parallel-syncs" => {
                                    g.parallel_syncs =
                                        small(&sub, num()?, 1).map_err(|e| err(e.to_string()))?
                                }
                                "auth-pass" => g.auth_pass = Some(value.clone()),
                                "auth-user" => g.auth_user = Some(value.clone()),
                                _ => {
                                    let p = group_arg(2)?;
                                    let addr = node_addr(&sub, &format!("{value}:{p}"))
                                        .map_err(|e| err(e.to_string()))?;
                                    if !g.replicas.contains(&addr) {
                                        g.replicas.push(addr);
                                    }
                                }
                            }
                        }
                        "announce-ip" => {
                            let a = group_arg(0)?;
                            announce_ip = Some(
                                a.parse()
                                    .map_err(|_| err(format!("announce-ip {a:?} is not an IP")))?,
                            );
                        }
                        "announce-port" => {
                            let p = group_arg(0)?;
                            announce_port =
                                Some(p.parse().ok().filter(|p| *p != 0).ok_or_else(|| {
                                    err(format!("announce-port {p:?} is not in 1..=65535"))
                                })?);
                        }
                        "myid"
                        | "config-epoch"
                        | "leader-epoch"
                        | "current-epoch"
                        | "known-sentinel"
                        | "deny-scripts-reconfig"
                        | "resolve-hostnames"
                        | "announce-hostnames"
                        | "sentinel-user"
                        | "sentinel-pass"
                        | "notification-script"
                        | "client-reconfig-script"
                        | "rename-command"
                        | "master-reboot-down-after-period"
                        | "config-rewrite" => {
                            tracing::warn!(line, directive = %sub, "sentinel directive ignored");
                        }
                        other => return Err(err(format!("unknown sentinel directive {other:?}"))),
                    }
                }
                "daemonize"
                | "pidfile"
                | "logfile"
                | "loglevel"
                | "protected-mode"
                | "supervised"
                | "syslog-enabled"
                | "syslog-ident"
                | "syslog-facility"
                | "always-show-logo"
                | "set-proc-title"
                | "proc-title-template"
                | "tcp-keepalive"
                | "tcp-backlog"
                | "timeout"
                | "unixsocket"
                | "unixsocketperm"
                | "user"
                | "acllog-max-len"
                | "aclfile"
                | "requirepass"
                | "latency-tracking-info-percentiles" => {
                    tracing::warn!(line, directive = %first, "directive ignored by vigil sentinel");
                }
                other => return Err(err(format!("unknown directive {other:?}"))),
            }
        }
        let ip = bind.unwrap_or(IpAddr::from([127, 0, 0, 1]));
        s.gossip = SocketAddr::new(ip, port);
        s.resp = Some(SocketAddr::new(ip, port));
        if announce_ip.is_some() || announce_port.is_some() {
            s.announce = Some(SocketAddr::new(
                announce_ip.unwrap_or(ip),
                announce_port.unwrap_or(port),
            ));
        }
        s.derive_grpc();
        s.validate()?;
        Ok(s)
    }

    /// Puts the gRPC API at the RESP port + 10000 on the same IP (port 0 stays 0: any free
    /// port), unless it was set explicitly. Call after every override.
    pub fn derive_grpc(&mut self) {
        if self.grpc_set {
            return;
        }
        self.grpc = self.resp.and_then(|r| {
            let port = if r.port() == 0 {
                Some(0)
            } else {
                r.port().checked_add(GRPC_PORT_OFFSET)
            };
            port.map(|p| SocketAddr::new(r.ip(), p))
        });
    }

    /// Checks the rules that span keys.
    pub fn validate(&self) -> Result<(), SettingsError> {
        let t = &self.timing;
        for g in &self.groups {
            let key = |k: &str| format!("group.{}.{k}", g.name);
            if g.down_after < t.probe_interval * 2 {
                return Err(invalid(
                    key("down-after-ms"),
                    format!(
                        "{} ms is below twice the probe interval ({} ms)",
                        g.down_after.as_millis(),
                        (t.probe_interval * 2).as_millis()
                    ),
                ));
            }
            if g.replicas.contains(&g.master) {
                return Err(invalid(key("replicas"), "must not list the master"));
            }
        }
        let mut names: Vec<&str> = self.groups.iter().map(|g| g.name.as_str()).collect();
        names.sort_unstable();
        if let Some(w) = names.windows(2).find(|w| w[0] == w[1]) {
            return Err(invalid(format!("group.{}", w[0]), "is configured twice"));
        }
        Ok(())
    }
}

impl GroupSettings {
    /// A group with Redis Sentinel's defaults (down after 30 s in Redis; 5 s here, as DESIGN.md
    /// says; failover timeout 3 min in Redis, 10 s here, one sync at a time).
    pub fn new(name: &str, master: NodeAddr, quorum: u8) -> Result<GroupSettings, SettingsError> {
        check_name(name)?;
        Ok(GroupSettings {
            name: name.to_owned(),
            master,
            replicas: Vec::new(),
            quorum: NonZeroU8::new(quorum)
                .ok_or_else(|| invalid("quorum", "must be at least 1"))?,
            down_after: Duration::from_secs(5),
            failover_timeout: Duration::from_secs(10),
            parallel_syncs: NonZeroU8::MIN,
            auth_user: None,
            auth_pass: None,
            preferred_dc: None,
            sync_replicas: 0,
            redis_min_replicas: 1,
        })
    }
}

/// Group names: 1..=128 printable ASCII characters without spaces (they travel in gossip and
/// appear in RESP replies).
pub fn check_name(name: &str) -> Result<(), SettingsError> {
    if name.is_empty() || name.len() > 128 || !name.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(invalid(
            "group name",
            format!("{name:?} must be 1 to 128 printable ASCII characters without spaces"),
        ));
    }
    Ok(())
}

fn socket(key: &str, text: &str) -> Result<SocketAddr, SettingsError> {
    text.parse()
        .map_err(|_| invalid(key, format!("{text:?} is not an IP:PORT socket address")))
}

fn node_addr(key: &str, text: &str) -> Result<NodeAddr, SettingsError> {
    text.parse()
        .map_err(|e: crate::nodes::AddrError| invalid(key, e.to_string()))
}

fn millis(key: &str, v: i64) -> Result<Duration, SettingsError> {
    if v <= 0 || v > 86_400_000 {
        return Err(invalid(key, format!("{v} ms is not in 1..=86400000")));
    }
    Ok(Duration::from_millis(v.unsigned_abs()))
}

fn small(key: &str, v: i64, min: u8) -> Result<NonZeroU8, SettingsError> {
    u8::try_from(v)
        .ok()
        .filter(|v| *v >= min)
        .and_then(NonZeroU8::new)
        .ok_or_else(|| invalid(key, format!("{v} is not in {min}..=255")))
}

/// Splits a config line like Redis' `sdssplitargs`: whitespace-separated words, `"..."` with
/// backslash escapes and `'...'`; `#` starts a comment at the beginning of a line.
fn split_args(line: &str) -> Result<Vec<String>, &'static str> {
    let line = line.trim();
    if line.starts_with('#') {
        return Ok(Vec::new());
    }
    let mut out = Vec::new();
    let mut chars = line.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        let Some(&c) = chars.peek() else {
            return Ok(out);
        };
        let mut word = String::new();
        if c == '"' || c == '\'' {
            chars.next();
            let mut closed = false;
            while let Some(ch) = chars.next() {
                if ch == c {
                    closed = true;
                    break;
                }
                if ch == '\\' && c == '"' {
                    match chars.next() {
                        Some('n') => word.push('\n'),
                        Some('t') => word.push('\t'),
                        Some(o) => word.push(o),
                        None => return Err("unbalanced quotes"),
                    }
                } else {
                    word.push(ch);
                }
            }
            if !closed {
                return Err("unbalanced quotes");
            }
            if chars.peek().is_some_and(|c| !c.is_whitespace()) {
                return Err("closing quote must be followed by a space");
            }
        } else {
            while let Some(&ch) = chars.peek() {
                if ch.is_whitespace() {
                    break;
                }
                word.push(ch);
                chars.next();
            }
        }
        out.push(word);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn toml_with_defaults_and_overrides() {
        let s = Settings::from_toml(
            r#"
            dir = "/tmp/s1"
            gossip = "127.0.0.1:7001"
            resp = "127.0.0.1:7002"
            join = ["127.0.0.1:7011"]
            dc = "east"
            [timing]
            lease-ttl-ms = 600
            [[group]]
            name = "main"
            master = "127.0.0.1:6379"
            quorum = 2
            down-after-ms = 1000
            auth-pass = "pw"
            "#,
        )
        .unwrap();
        assert_eq!(s.dir, PathBuf::from("/tmp/s1"));
        assert_eq!(s.join.len(), 1);
        assert_eq!(s.timing.lease_ttl, Duration::from_millis(600));
        let g = &s.groups[0];
        assert_eq!(g.quorum.get(), 2);
        assert_eq!(g.down_after, Duration::from_secs(1));
        assert_eq!(g.failover_timeout, Duration::from_secs(10));
        assert_eq!(g.auth_pass.as_deref(), Some("pw"));
    }

    #[test]
    fn toml_errors_name_the_key_and_the_rule() {
        let cases = [
            (
                "[[group]]\nname=\"g\"\nmaster=\"h:1\"\nquorum=0",
                "group.g.quorum",
                "0 is not in 1..=255",
            ),
            (
                "[[group]]\nname=\"g\"\nmaster=\"h\"\nquorum=1",
                "group.g.master",
                "HOST:PORT",
            ),
            (
                "[[group]]\nname=\"g\"\nmaster=\"h:1\"\nquorum=1\ndown-after-ms=-5",
                "group.g.down-after-ms",
                "not in 1..=",
            ),
            (
                "[[group]]\nname=\"g\"\nmaster=\"h:1\"\nquorum=1\ndown-after-ms=150",
                "group.g.down-after-ms",
                "below twice the probe interval",
            ),
            ("gossip = \"nope\"", "gossip", "not an IP:PORT"),
            (
                "[timing]\nprobe-interval-ms = 0",
                "timing.probe-interval-ms",
                "positive",
            ),
            ("bogus = 1", "bogus", "unknown field"),
            (
                "[[group]]\nname=\"g\"\nmaster=\"h:1\"\nquorum=1\n[[group]]\nname=\"g\"\nmaster=\"h:2\"\nquorum=1",
                "group.g",
                "twice",
            ),
        ];
        for (text, key, rule) in cases {
            let e = Settings::from_toml(text).unwrap_err().to_string();
            assert!(e.contains(key) && e.contains(rule), "{text:?} gave {e:?}");
        }
    }

    #[test]
    fn reads_a_redis_sentinel_conf() {
        let s = Settings::from_redis_config(
            "# a comment\nport 26380\nbind 127.0.0.1\ndir \"/tmp/sent dir\"\ndaemonize no\n\
             sentinel monitor mymaster 127.0.0.1 6379 2\n\
             sentinel down-after-milliseconds mymaster 1000\n\
             sentinel failover-timeout mymaster 60000\n\
             sentinel parallel-syncs mymaster 2\n\
             sentinel auth-pass mymaster \"s3cr et\"\n\
             sentinel known-replica mymaster 127.0.0.1 6380\n\
             sentinel myid 0123456789abcdef0123456789abcdef01234567\n\
             sentinel announce-ip 10.0.0.5\n",
        )
        .unwrap();
        assert_eq!(s.gossip, "127.0.0.1:26380".parse().unwrap());
        assert_eq!(s.resp, Some("127.0.0.1:26380".parse().unwrap()));
        assert_eq!(s.announce, Some("10.0.0.5:26380".parse().unwrap()));
        assert_eq!(s.grpc, Some("127.0.0.1:36380".parse().unwrap()));
        assert_eq!(s.dir, PathBuf::from("/tmp/sent dir"));
        let g = &s.groups[0];
        assert_eq!(g.name, "mymaster");
        assert_eq!(g.quorum.get(), 2);
        assert_eq!(g.down_after, Duration::from_secs(1));
        assert_eq!(g.failover_timeout, Duration::from_secs(60));
        assert_eq!(g.parallel_syncs.get(), 2);
        assert_eq!(g.auth_pass.as_deref(), Some("s3cr et"));
        assert_eq!(g.replicas, vec![NodeAddr::new("127.0.0.1", 6380)]);
    }

    #[test]
    fn redis_conf_errors_name_the_line() {
        let cases = [
            ("port 0", "line 1", "1..=65535"),
            ("\nsentinel monitor m 127.0.0.1 6379 0", "line 2", "quorum"),
            (
                "sentinel down-after-milliseconds nope 5",
                "line 1",
                "no such master",
            ),
            (
                "sentinel monitor m h 1 1\nsentinel parallel-syncs m x",
                "line 2",
                "not a number",
            ),
            ("frobnicate yes", "line 1", "unknown directive"),
            (
                "sentinel monitor \"m 127.0.0.1 1 1",
                "line 1",
                "unbalanced quotes",
            ),
            (
                "sentinel monitor m h 1 1\nsentinel monitor m h 2 1",
                "line 2",
                "twice",
            ),
        ];
        for (text, line, rule) in cases {
            let e = Settings::from_redis_config(text).unwrap_err().to_string();
            assert!(e.contains(line) && e.contains(rule), "{text:?} gave {e:?}");
        }
    }
}
