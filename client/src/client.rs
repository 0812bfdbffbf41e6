//! `Client`: runs commands against a group, on the master the `MasterWatcher` announces.
//!
//! Connections are `redis` multiplexed connections, one to the master and at most one per
//! replica, cached and shared by concurrent calls. When the watcher announces a newer master, a
//! background task drops the cached connections to the old master and the old replica set (each
//! socket closes once the calls still using it finish), and the next call connects to the new one.
//!
//! Failover handling:
//! - `-READONLY` (a demoted master), `-NOLEASE` (a master cut off from its sentinels) and a
//!   failure to connect (refused, reset, timed out during connect or handshake) prove that the
//!   command was not applied. A write then waits, up to `write_timeout` in all, for the watcher
//!   to announce a master with a higher config epoch, and is retried once on each new master.
//! - A connection that fails after the command was sent (reset, EOF, response timeout) leaves
//!   the outcome unknown: a write reports `ClientError::Unknown` and is not retried, so writes are
//!   at most once. A cached connection that the server closed while it was idle is only found
//!   dead by the next command, which then also reports `Unknown`.
//! - Reads (`read`, `get`) are idempotent: after any of those failures they are retried on the
//!   next master, or on the same master after a short pause, until `write_timeout`.
//! - A successful write was acknowledged by the master it was sent to; `write_with_master` says
//!   which master that was.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use rand::Rng;
use redis::aio::MultiplexedConnection;
use redis::{
    AsyncConnectionConfig, Cmd, ConnectionAddr, ConnectionInfo, ErrorKind, FromRedisValue,
    RedisConnectionInfo, RedisError, ToRedisArgs, Value,
};
use tokio::time::Instant;
use tracing::{debug, info, warn};

use crate::watcher::AbortOnDrop;
use crate::{ClientError, Master, MasterWatcher};

/// Where reads go.
#[derive(Clone, Copy, Debug, Default, Eq, PartialEq)]
pub enum ReadPolicy {
    /// Every read goes to the master.
    #[default]
    Master,
    /// Reads go to a random replica the sentinels see up (possibly stale data), and to the master
    /// when there is none or it fails.
    ReplicaPreferred,
    /// Reads go to a random replica in the client's data centre (`ClientOptions::dc`, matched
    /// against the replicas' `--dc` labels), and to the master when there is none or it fails:
    /// a replica across a WAN is no nearer than the master.
    SameDc,
}

/// How long a write that was refused as not applied waits for a newer master before it tries
/// the same master again.
pub const SAME_MASTER_RETRY: Duration = Duration::from_millis(100);

/// How a `Client` runs commands.
#[derive(Clone, Debug)]
pub struct ClientOptions {
    /// Where reads go.
    pub read_policy: ReadPolicy,
    /// The data centre this client runs in, for `ReadPolicy::SameDc`.
    pub dc: Option<String>,
    /// How long a call waits in all for a master: for the first one to be announced, and for a
    /// new one after a failover signal. Reads retry within the same bound.
    pub write_timeout: Duration,
    /// The password sent with `AUTH` on every new connection.
    pub password: Option<String>,
    /// How long connecting (TCP and handshake) to a data node may take.
    pub connect_timeout: Duration,
    /// How long a reply may take once a command was sent; after that its outcome is unknown.
    pub response_timeout: Duration,
    /// `Some((n, timeout))`: after each write, `WAIT n timeout`; the write is reported as
    /// successful only if `n` replicas acknowledged it, else `ClientError::Unknown`. With the
    /// sentinels promoting the replica with the highest offset, an acknowledged write then
    /// survives the loss of the master.
    pub replicated: Option<(u32, Duration)>,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            read_policy: ReadPolicy::Master,
            dc: None,
            write_timeout: Duration::from_secs(5),
            password: None,
            connect_timeout: Duration::from_secs(1),
            response_timeout: Duration::from_secs(2),
            replicated: None,
        }
    }
}

/// A failover-aware client of one group. Cheap to clone; clones share connections.
///
/// See the module docs for which failures are retried. Writes are at most once: a write whose
/// connection fails after it was sent is reported as `ClientError::Unknown`, never retried.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
    _closer: Arc<AbortOnDrop>,
}

impl Client {
    /// A client of `group`, following the masters `watcher` announces. Must be called within a
    /// tokio runtime: it spawns the task that closes connections to replaced masters.
    pub fn new(watcher: MasterWatcher, group: String, opts: ClientOptions) -> Client {
        let inner = Arc::new(Inner {
            watcher,
            group,
            opts,
            conns: Mutex::new(Conns::default()),
        });
        let closer = tokio::spawn(close_replaced(Arc::downgrade(&inner)));
        Client {
            inner,
            _closer: Arc::new(AbortOnDrop(closer.abort_handle())),
        }
    }

    /// The group this client serves.
    pub fn group(&self) -> &str {
        &self.inner.group
    }

    /// The watcher this client follows.
    pub fn watcher(&self) -> &MasterWatcher {
        &self.inner.watcher
    }

    /// `SET key value` on the master.
    pub async fn set<K: ToRedisArgs, V: ToRedisArgs>(
        &self,
        key: K,
        value: V,
    ) -> Result<(), ClientError> {
        let mut cmd = redis::cmd("SET");
        cmd.arg(key).arg(value);
        self.write(cmd).await.map(drop)
    }

    /// `GET key`, by the read policy, converted to `V` (`Option<String>`, `Option<Vec<u8>>`, …).
    pub async fn get<K: ToRedisArgs, V: FromRedisValue>(&self, key: K) -> Result<V, ClientError> {
        let mut cmd = redis::cmd("GET");
        cmd.arg(key);
        let value = self.read(cmd).await?;
        Ok(redis::from_owned_redis_value(value)?)
    }

    /// Runs a write on the master; see `write_with_master`.
    pub async fn write(&self, cmd: Cmd) -> Result<Value, ClientError> {
        self.write_with_master(cmd).await.map(|(value, _)| value)
    }

    /// Runs a write on the master and returns the reply with the master that gave it.
    ///
    /// On a failover signal that proves the write was not applied, it waits for a newer master
    /// and retries on it, or retries the same master every `SAME_MASTER_RETRY` while no newer
    /// one is announced, all within `write_timeout` (`ClientError::Timeout` after that;
    /// `ClientError::NoMaster` when no master was ever announced). If the connection fails after
    /// the command was sent, it returns `ClientError::Unknown` without retrying. An error reply
    /// other than a failover signal is returned as `ClientError::Redis`.
    pub async fn write_with_master(&self, cmd: Cmd) -> Result<(Value, Master), ClientError> {
        let inner = &self.inner;
        let started = Instant::now();
        let budget = inner.opts.write_timeout;
        let group = inner.group.as_str();
        let mut master = inner.watcher.wait_for(group, budget).await?;
        loop {
            let why = match inner.run_on_master(&master, &cmd).await {
                Ok(value) => return Ok((value, master)),
                Err(Failure::Final(e)) => return Err(e),
                Err(Failure::Unknown(why)) => {
                    warn!(%group, master = %master.addr, reason = %why, "write outcome unknown");
                    return Err(ClientError::Unknown(why));
                }
                Err(Failure::NotApplied(why)) => why,
            };
            info!(%group, master = %master.addr, epoch = master.epoch, reason = %why,
                "write not applied, waiting for a new master");
            // A newer master usually follows within a second; a master that only lacks its
            // lease for a moment (a promoted node collecting its first leases) keeps the
            // epoch, so the same master is tried again after a short wait. Both are safe:
            // the write was not applied.
            let left = budget.saturating_sub(started.elapsed());
            if left.is_zero() {
                return Err(ClientError::Timeout);
            }
            match inner
                .watcher
                .wait_for_newer(group, master.epoch, left.min(SAME_MASTER_RETRY))
                .await
            {
                Ok(newer) => master = newer,
                Err(ClientError::Timeout) if started.elapsed() < budget => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// Runs an idempotent read by the read policy, retrying it on failover signals and
    /// connection failures until `write_timeout` (`ClientError::Timeout` after that).
    pub async fn read(&self, cmd: Cmd) -> Result<Value, ClientError> {
        let inner = &self.inner;
        let started = Instant::now();
        let budget = inner.opts.write_timeout;
        let group = inner.group.as_str();
        if inner.opts.read_policy != ReadPolicy::Master {
            if let Some(result) = inner.read_on_replica(&cmd).await {
                return result;
            }
        }
        let mut master = inner.watcher.wait_for(group, budget).await?;
        loop {
            let why = match inner.run_on_master(&master, &cmd).await {
                Ok(value) => return Ok(value),
                Err(Failure::Final(e)) => return Err(e),
                Err(Failure::NotApplied(why) | Failure::Unknown(why)) => why,
            };
            let left = budget.saturating_sub(started.elapsed());
            if left.is_zero() {
                return Err(ClientError::Timeout);
            }
            debug!(%group, master = %master.addr, reason = %why, "read failed, retrying");
            // A newer master if one comes soon; otherwise the same one again after the pause.
            let pause = left.min(READ_RETRY_PAUSE);
            master = match inner
                .watcher
                .wait_for_newer(group, master.epoch, pause)
                .await
            {
                Ok(newer) => newer,
                Err(_) => inner.watcher.current(group).unwrap_or(master),
            };
        }
    }
}

/// Why one attempt failed, which decides whether it may be retried.
enum Failure {
    /// The command was certainly not applied (not sent, or refused as a failover signal).
    NotApplied(String),
    /// The command was sent and its outcome is unknown.
    Unknown(String),
    /// A final answer, not a failover: an error reply, an authentication failure, a bad address.
    Final(ClientError),
}

/// What the clones of one `Client` share.
struct Inner {
    watcher: MasterWatcher,
    group: String,
    opts: ClientOptions,
    /// Cached connections. A std `Mutex`: it is never held across an `.await`.
    conns: Mutex<Conns>,
}

/// The cached connections of a client.
#[derive(Default)]
struct Conns {
    /// The master they were made for, and the connection.
    master: Option<(Master, MultiplexedConnection)>,
    replicas: Option<Replicas>,
}

/// The replicas of one master, as a sentinel listed them.
struct Replicas {
    /// The config epoch of the master they replicate.
    epoch: u64,
    /// The replicas the read policy allows.
    addrs: Vec<String>,
    fetched: Instant,
    /// Connections to some of `addrs` (so at most `addrs.len()`).
    conns: HashMap<String, MultiplexedConnection>,
}

impl Inner {
    fn conns(&self) -> MutexGuard<'_, Conns> {
        // A panic while the lock was held cannot leave the cache inconsistent in a harmful way:
        // every entry is a whole connection or nothing.
        self.conns.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs `cmd` on `master`, connecting first if needed.
    async fn run_on_master(&self, master: &Master, cmd: &Cmd) -> Result<Value, Failure> {
        let mut conn = self.master_conn(master).await?;
        let mut result = send(&mut conn, cmd).await;
        if let (Ok(_), Some((replicas, timeout))) = (&result, self.opts.replicated) {
            // Synchronous replication from the client's side: the write counts only once
            // `replicas` replicas hold it, so the sentinels (which promote the replica with
            // the highest offset) never promote one that misses it.
            let mut wait = redis::cmd("WAIT");
            wait.arg(replicas)
                .arg(u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX));
            match send(&mut conn, &wait).await {
                Ok(Value::Int(n)) if n >= i64::from(replicas) => {}
                Ok(other) => {
                    result = Err(Failure::Unknown(format!(
                        "applied on the master but acknowledged by fewer than {replicas} replicas ({other:?})"
                    )))
                }
                Err(Failure::Final(e)) => result = Err(Failure::Unknown(e.to_string())),
                Err(f) => result = Err(f),
            }
            if let Err(Failure::NotApplied(why)) = &result {
                // The write itself was applied; only WAIT failed.
                result = Err(Failure::Unknown(why.clone()));
            }
        }
        if let Err(Failure::NotApplied(_) | Failure::Unknown(_)) = &result {
            let mut conns = self.conns();
            if conns.master.as_ref().is_some_and(|(m, _)| m == master) {
                conns.master = None;
            }
        }
        result
    }

    /// The cached connection to `master`, or a new one.
    async fn master_conn(&self, master: &Master) -> Result<MultiplexedConnection, Failure> {
        if let Some((m, conn)) = &self.conns().master {
            if m == master {
                return Ok(conn.clone());
            }
        }
        let conn = self.connect(&master.addr).await?;
        let mut conns = self.conns();
        match &conns.master {
            // Another call connected meanwhile: share its connection, close ours.
            Some((m, theirs)) if m == master => return Ok(theirs.clone()),
            // Never replace a connection to a newer master with one to an older.
            Some((m, _)) if m.epoch > master.epoch => {}
            _ => conns.master = Some((master.clone(), conn.clone())),
        }
        Ok(conn)
    }

    /// Tries `cmd` on a random replica; `None` means "use the master" (no replica, or it failed
    /// in a way that says nothing about the command).
    async fn read_on_replica(&self, cmd: &Cmd) -> Option<Result<Value, ClientError>> {
        let master = self.watcher.current(&self.group)?;
        let addr = self.pick_replica(&master).await?;
        let cached = self
            .conns()
            .replicas
            .as_ref()
            .and_then(|r| r.conns.get(&addr).cloned());
        let mut conn = match cached {
            Some(conn) => conn,
            None => match self.connect(&addr).await {
                Ok(conn) => {
                    if let Some(r) = self.conns().replicas.as_mut() {
                        if r.epoch == master.epoch && r.addrs.contains(&addr) {
                            r.conns.insert(addr.clone(), conn.clone());
                        }
                    }
                    conn
                }
                Err(_) => {
                    self.forget_replica(&addr);
                    return None;
                }
            },
        };
        match send(&mut conn, cmd).await {
            Ok(value) => Some(Ok(value)),
            // A replica that is loading or cut from its master: ask the master instead.
            Err(Failure::Final(ClientError::Redis(e)))
                if matches!(e.code(), Some("LOADING" | "MASTERDOWN")) =>
            {
                None
            }
            Err(Failure::Final(e)) => Some(Err(e)),
            Err(Failure::NotApplied(why) | Failure::Unknown(why)) => {
                debug!(group = %self.group, replica = %addr, reason = %why, "replica read failed");
                self.forget_replica(&addr);
                None
            }
        }
    }

    /// A random replica of `master`, listing them through the watcher when the list is missing,
    /// old, or for an older master.
    async fn pick_replica(&self, master: &Master) -> Option<String> {
        let fresh = |r: &Replicas| {
            let age = r.fetched.elapsed();
            r.epoch == master.epoch
                && (age < REPLICAS_MAX_AGE && !r.addrs.is_empty() || age < REPLICAS_RETRY)
        };
        let mut addrs = match &self.conns().replicas {
            Some(r) if fresh(r) => Some(r.addrs.clone()),
            _ => None,
        };
        if addrs.is_none() {
            let listed = match self.watcher.replicas_by_dc(&self.group).await {
                Ok(listed) => listed,
                Err(e) => {
                    debug!(group = %self.group, error = %e, "listing replicas failed");
                    Vec::new()
                }
            };
            let here = self.opts.dc.as_deref().unwrap_or_default();
            let same_dc = self.opts.read_policy == ReadPolicy::SameDc;
            // The master may still be listed by a sentinel that lags behind the failover.
            let listed: Vec<String> = listed
                .into_iter()
                .filter(|(a, dc)| {
                    *a != master.addr && (!same_dc || (!here.is_empty() && dc == here))
                })
                .map(|(a, _)| a)
                .collect();
            let mut conns = self.conns();
            let mut kept = HashMap::new();
            if let Some(old) = conns.replicas.take() {
                if old.epoch == master.epoch {
                    kept = old.conns;
                    kept.retain(|a, _| listed.contains(a));
                }
            }
            conns.replicas = Some(Replicas {
                epoch: master.epoch,
                addrs: listed.clone(),
                fetched: Instant::now(),
                conns: kept,
            });
            addrs = Some(listed);
        }
        let addrs = addrs.unwrap_or_default();
        if addrs.is_empty() {
            return None;
        }
        let i = rand::rng().random_range(0..addrs.len());
        Some(addrs[i].clone())
    }

    /// Drops a failed replica from the list and closes its connection.
    fn forget_replica(&self, addr: &str) {
        if let Some(r) = self.conns().replicas.as_mut() {
            r.addrs.retain(|a| a != addr);
            r.conns.remove(addr);
        }
    }

    /// A new connection to the data node at `addr`. Every failure here happens before any
    /// command is sent, so it is `NotApplied`, except for ones no retry can fix.
    async fn connect(&self, addr: &str) -> Result<MultiplexedConnection, Failure> {
        let Some((host, port)) = split_addr(addr) else {
            return Err(Failure::Final(ClientError::Transport(format!(
                "invalid data node address {addr:?}"
            ))));
        };
        let info = ConnectionInfo {
            addr: ConnectionAddr::Tcp(host, port),
            redis: RedisConnectionInfo {
                password: self.opts.password.clone(),
                ..RedisConnectionInfo::default()
            },
        };
        let client = redis::Client::open(info).map_err(|e| Failure::Final(e.into()))?;
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(self.opts.connect_timeout)
            .set_response_timeout(self.opts.response_timeout);
        match client
            .get_multiplexed_async_connection_with_config(&config)
            .await
        {
            Ok(conn) => {
                debug!(group = %self.group, node = %addr, "connected");
                Ok(conn)
            }
            Err(e) if is_config_error(&e) => Err(Failure::Final(e.into())),
            Err(e) => Err(Failure::NotApplied(format!("connecting to {addr}: {e}"))),
        }
    }
}

/// Sends one command and sorts the failure.
async fn send(conn: &mut MultiplexedConnection, cmd: &Cmd) -> Result<Value, Failure> {
    let reply = match conn.send_packed_command(cmd).await {
        Ok(Value::ServerError(e)) => Err(RedisError::from(e)),
        other => other,
    };
    reply.map_err(classify)
}

/// Sorts an error from a command that was handed to a connection.
fn classify(e: RedisError) -> Failure {
    if e.kind() == ErrorKind::ReadOnly || e.code() == Some("NOLEASE") {
        return Failure::NotApplied(e.to_string());
    }
    // The socket failed or timed out with the command sent (or maybe sent): unknown outcome.
    if e.is_io_error() || e.kind() == ErrorKind::ParseError {
        return Failure::Unknown(e.to_string());
    }
    Failure::Final(e.into())
}

/// True for connection errors that retrying elsewhere cannot fix.
fn is_config_error(e: &RedisError) -> bool {
    matches!(
        e.kind(),
        ErrorKind::AuthenticationFailed | ErrorKind::InvalidClientConfig
    )
}

/// Splits `host:port` or `[v6]:port`.
pub(crate) fn split_addr(addr: &str) -> Option<(String, u16)> {
    let (host, port) = addr.rsplit_once(':')?;
    let port = port.parse().ok()?;
    let host = match host.strip_prefix('[') {
        Some(v6) => v6.strip_suffix(']')?,
        None => host,
    };
    if host.is_empty() {
        return None;
    }
    Some((host.to_owned(), port))
}

/// The background task of a client: on every newer master of its group, drops the cached
/// connections to the old master and its replicas. Ends with the client (or its watcher).
async fn close_replaced(inner: std::sync::Weak<Inner>) {
    let mut masters = match inner.upgrade() {
        Some(inner) => inner.watcher.masters(),
        None => return,
    };
    while masters.changed().await.is_ok() {
        let Some(inner) = inner.upgrade() else {
            return;
        };
        let epoch = masters
            .borrow_and_update()
            .get(&inner.group)
            .map(|m| m.epoch);
        let Some(epoch) = epoch else {
            continue;
        };
        let mut conns = inner.conns();
        if let Some((old, _)) = &conns.master {
            if old.epoch < epoch {
                info!(group = %inner.group, master = %old.addr, "closing connections to the old master");
                conns.master = None;
            }
        }
        if conns.replicas.as_ref().is_some_and(|r| r.epoch < epoch) {
            conns.replicas = None;
        }
    }
}

/// How long a failed read waits for a new master before trying the same one again.
const READ_RETRY_PAUSE: Duration = Duration::from_millis(200);

/// How long a replica list is used before asking a sentinel again.
const REPLICAS_MAX_AGE: Duration = Duration::from_secs(10);

/// How long an empty replica list (none listed, or all failed) is kept before asking again.
const REPLICAS_RETRY: Duration = Duration::from_secs(1);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_split_into_host_and_port() {
        let cases: &[(&str, Option<(&str, u16)>)] = &[
            ("127.0.0.1:6379", Some(("127.0.0.1", 6379))),
            ("redis.example:1", Some(("redis.example", 1))),
            ("[::1]:7000", Some(("::1", 7000))),
            ("[::1:7000", None),
            (":6379", None),
            ("host", None),
            ("host:99999", None),
            ("host:", None),
            ("", None),
        ];
        for (addr, want) in cases {
            let got = split_addr(addr);
            let want = want.map(|(h, p)| (h.to_owned(), p));
            assert_eq!(got, want, "{addr}");
        }
    }

    #[test]
    fn failover_signals_are_not_applied_and_io_errors_unknown() {
        let ext = |code: &str| redis::make_extension_error(code.into(), Some("detail".into()));
        let io = |kind| RedisError::from(std::io::Error::from(kind));
        let cases = [
            (
                RedisError::from((ErrorKind::ReadOnly, "read only")),
                "not applied",
            ),
            (ext("NOLEASE"), "not applied"),
            (io(std::io::ErrorKind::ConnectionReset), "unknown"),
            (io(std::io::ErrorKind::UnexpectedEof), "unknown"),
            (io(std::io::ErrorKind::TimedOut), "unknown"),
            (ext("WRONGTYPE"), "final"),
            (RedisError::from((ErrorKind::ResponseError, "err")), "final"),
        ];
        for (e, want) in cases {
            let shown = e.to_string();
            let got = match classify(e) {
                Failure::NotApplied(_) => "not applied",
                Failure::Unknown(_) => "unknown",
                Failure::Final(_) => "final",
            };
            assert_eq!(got, want, "{shown}");
        }
    }
}
