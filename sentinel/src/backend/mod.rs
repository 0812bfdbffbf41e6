//! `Backend`: how the shell talks to one data node, and `RespBackend`, the RESP driver that
//! speaks to Vigil data nodes and to real Redis or Valkey servers alike.
//!
//! The shell holds one backend per watched data node and calls it from tokio tasks. Every call
//! is bounded by `BackendConfig::timeout` (connecting included), so a hung node (SIGSTOPped,
//! partitioned, half-open TCP) can delay a caller by at most that long, never forever.
//!
//! Files:
//! - `conn.rs`: one RESP connection (connect, AUTH, SETNAME, bounded reply reading); the only
//!   file here that reads or writes a socket.
//! - `resp.rs`: `RespBackend`, the `Backend` over two persistent connections.
//! - `info.rs`: `NodeReport`, the parsed INFO text, and its conversion to the core's `NodeInfo`.
//! - `subscribe.rs`: `subscribe`, the long-lived `SUBSCRIBE` loop for hello discovery.
//!
//! Invariants, stated as absences:
//! - Nothing a node sends can panic the sentinel or make it buffer more than `MAX_REPLY` bytes
//!   per connection; garbage is `BackendError::Protocol` and the connection is dropped.
//! - No call outlives its deadline, and no connection that saw an error or a timeout is reused
//!   (its stream could hold the late reply of the failed call).

mod conn;
mod info;
mod resp;
mod subscribe;

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use crate::core::{Lease, ProbeReply, ProbeStatus};
use crate::nodes::{NodeAddr, run_id_prefix};

pub use info::{NodeReport, ReplicaLine, ReportRole};
pub use resp::RespBackend;
pub use subscribe::subscribe;

/// The most bytes one reply may take; a larger one is a protocol error (INFO of a node is far
/// below 1 MiB).
pub const MAX_REPLY: usize = 4 * 1024 * 1024;

/// A boxed, sendable future: what `Backend` methods return, so the trait stays object-safe.
pub type BoxFut<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The operations the sentinel performs on one data node.
///
/// Each call carries its own deadline (`BackendConfig::timeout` for `RespBackend`), connecting
/// included; an error or a timeout leaves the backend ready for the next call, which reconnects.
/// Calls may be issued concurrently from several tasks.
pub trait Backend: Send + Sync + 'static {
    /// `PING` (and the node clock when the node is, or may be, lease-capable).
    /// `Ok` only for `+PONG`, `-LOADING` and `-MASTERDOWN`.
    fn probe(&self) -> BoxFut<'_, Result<Probe, BackendError>>;
    /// `INFO` parsed into a `NodeReport`.
    fn info(&self) -> BoxFut<'_, Result<NodeReport, BackendError>>;
    /// `REPLICAOF NO ONE`.
    fn promote(&self) -> BoxFut<'_, Result<(), BackendError>>;
    /// `REPLICAOF host port`.
    fn replicate_from(&self, master: &NodeAddr) -> BoxFut<'_, Result<(), BackendError>>;
    /// `CLIENT PAUSE <ms> WRITE`: the node refuses writes for `timeout` or until unpaused.
    fn pause_writes(&self, timeout: Duration) -> BoxFut<'_, Result<(), BackendError>>;
    /// `CLIENT UNPAUSE`.
    fn unpause_writes(&self) -> BoxFut<'_, Result<(), BackendError>>;
    /// `CONFIG SET k v [k v …]` (the write-fencing fallback for servers without leases:
    /// `min-replicas-to-write`, `min-replicas-max-lag`).
    fn config_set(&self, params: &[(&str, String)]) -> BoxFut<'_, Result<(), BackendError>>;
    /// `VIGIL LEASE ...`; `Err(BackendError::Unsupported)` when the node has no lease capability.
    fn grant_lease(&self, lease: &LeaseGrant) -> BoxFut<'_, Result<(), BackendError>>;
    /// `VIGIL REVOKE`: `Ok` once the node dropped every lease and refuses older grants;
    /// `Err(BackendError::Unsupported)` when the node has no lease capability (Redis, Valkey).
    fn revoke_leases(&self) -> BoxFut<'_, Result<(), BackendError>>;
    /// `PUBLISH channel payload` (for the `__sentinel__:hello` discovery channel).
    fn publish(&self, channel: &str, payload: &str) -> BoxFut<'_, Result<(), BackendError>>;
    /// Whether the node supports leases, as learned from the last probe or INFO; `None` until
    /// known (and again after a reconnect, since the server may have been replaced).
    fn lease_capable(&self) -> Option<bool>;
}

/// Why a backend call failed.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    /// The TCP connection could not be established.
    #[error("cannot connect to {addr}: {source}")]
    Connect {
        /// The node.
        addr: NodeAddr,
        /// The socket error.
        source: std::io::Error,
    },
    /// The call did not complete within its deadline.
    #[error("no reply within {0:?}")]
    Timeout(Duration),
    /// The connection failed or was closed during the call.
    #[error("connection error: {0}")]
    Io(#[from] std::io::Error),
    /// The node sent something that is not a valid (or expected) reply.
    #[error("protocol error: {0}")]
    Protocol(String),
    /// The node answered with an error reply, whose text this is.
    #[error("node refused: {0}")]
    Refused(String),
    /// The node does not support the operation (leases on a plain Redis).
    #[error("operation not supported by the node")]
    Unsupported,
}

/// How a `RespBackend` connects and how long it waits.
#[derive(Clone, Debug)]
pub struct BackendConfig {
    /// ACL user for `AUTH user pass`; `None` sends `AUTH pass` (the `default` user).
    pub auth_user: Option<String>,
    /// Password; `None` sends no `AUTH` at all.
    pub auth_pass: Option<String>,
    /// Deadline of each call, connecting, authenticating and waiting for the lock included.
    pub timeout: Duration,
    /// Sent with `CLIENT SETNAME` after connecting, so operators see sentinels in `CLIENT LIST`;
    /// errors are ignored (some servers refuse the command). Must not contain spaces.
    pub client_name: String,
}

impl Default for BackendConfig {
    fn default() -> Self {
        BackendConfig {
            auth_user: None,
            auth_pass: None,
            timeout: Duration::from_millis(500),
            client_name: "vigil-sentinel".to_owned(),
        }
    }
}

/// A valid answer to a probe.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub struct Probe {
    /// Which valid reply `PING` got.
    pub status: ProbeStatus,
    /// The node's monotonic clock (`VIGIL CLOCK`), when it is lease-capable and answered it.
    pub clock: Option<Duration>,
}

/// The arguments of `VIGIL LEASE <sentinel> <start-us> <ttl-ms> <majority> <run-id-prefix>
/// <members-epoch>`.
#[derive(Clone, Debug, Eq, PartialEq)]
pub struct LeaseGrant {
    /// The granting sentinel's id.
    pub sentinel: u32,
    /// A reading of the node's clock taken before the grant; the lease ends at `start + ttl`.
    pub start: Duration,
    /// How long the lease lasts, on the node's clock (sent in whole milliseconds, rounded down).
    pub ttl: Duration,
    /// How many distinct sentinels' valid leases the node needs to accept writes.
    pub majority: u8,
    /// The 16-hex-digit run id prefix of the incarnation the lease is for.
    pub run_id_prefix: String,
    /// The epoch of the granter's voter set.
    pub members: u64,
}

impl From<Probe> for ProbeReply {
    fn from(p: Probe) -> ProbeReply {
        ProbeReply {
            status: p.status,
            clock: p.clock.map(crate::core::NodeClock),
        }
    }
}

impl From<&Lease> for LeaseGrant {
    fn from(l: &Lease) -> LeaseGrant {
        LeaseGrant {
            sentinel: l.from.0,
            start: l.start.0,
            ttl: l.ttl,
            majority: l.majority,
            run_id_prefix: run_id_prefix(l.run_id),
            members: l.members.0,
        }
    }
}
