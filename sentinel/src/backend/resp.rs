//! `RespBackend`: the `Backend` for anything that speaks RESP, Vigil data nodes and real Redis or
//! Valkey alike.
//!
//! Connections. Three lazily opened, persistent connections, each behind its own tokio `Mutex`:
//! - `probe`: `PING` (+ `VIGIL CLOCK`) only, so that a slow `INFO`, a big reply or a command
//!   queued behind another never delays a liveness probe, whose lateness would read as SDOWN;
//! - `control`: `INFO`, `REPLICAOF`, `CLIENT PAUSE`/`UNPAUSE`, `VIGIL LEASE`/`REVOKE`;
//! - `publish`: `PUBLISH` only, because a server blocks `PUBLISH` during `CLIENT PAUSE WRITE`,
//!   and a hello queued on `control` would then hold up the `CLIENT UNPAUSE` behind it.
//!
//! Deadlines. A call takes its connection out of the slot under the lock, uses it, and puts it
//! back only after every reply was read and accepted. Waiting for the lock, connecting and the
//! exchange all run under one `tokio::time::timeout(cfg.timeout)`, so a call holds the lock at
//! most that long; when it fails or times out, the connection (whose stream may still owe the
//! late reply) is dropped with the call's future, and the next call reconnects. Any failed call
//! drops its connection, even after an error reply that left the stream in sync: reconnecting
//! is cheap, and it re-runs AUTH against a server that may have changed. The valid error
//! replies to a probe (`-LOADING`, `-MASTERDOWN`) are not failures and keep the connection.
//!
//! Lease capability. `VIGIL CLOCK` answers an integer on a Vigil node and `-ERR unknown command`
//! on Redis. Probes send it while the capability is unknown or known to be there; after an
//! "unknown command" they stop, until the probe connection reconnects (the process behind the
//! address may have been replaced), which makes the capability unknown again; probes run often,
//! so they are the ones to re-detect it. `INFO` showing
//! `vigil_write_fencing:` marks the node capable; its absence proves nothing, so only the
//! "unknown command" answer marks a node incapable.

use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Duration;

use tokio::sync::Mutex;
use tracing::debug;
use vigil_proto::resp::Frame;

use super::conn::{Cmd, Conn, unexpected};
use super::{
    Backend, BackendConfig, BackendError, BoxFut, LeaseGrant, MAX_REPLY, NodeReport, Probe,
};
use crate::core::ProbeStatus;
use crate::nodes::NodeAddr;

/// The RESP `Backend` of one data node. Cheap to share behind an `Arc`; calls may run
/// concurrently (each connection serves one call at a time).
#[derive(Debug)]
pub struct RespBackend {
    addr: NodeAddr,
    cfg: BackendConfig,
    probe: Mutex<Option<Conn>>,
    control: Mutex<Option<Conn>>,
    publish: Mutex<Option<Conn>>,
    /// `LEASE_UNKNOWN`, `LEASE_YES` or `LEASE_NO`.
    lease: AtomicU8,
}

impl RespBackend {
    /// A backend for the node at `addr`; connects on the first call.
    pub fn new(addr: NodeAddr, cfg: BackendConfig) -> RespBackend {
        RespBackend {
            addr,
            cfg,
            probe: Mutex::new(None),
            control: Mutex::new(None),
            publish: Mutex::new(None),
            lease: AtomicU8::new(LEASE_UNKNOWN),
        }
    }

    /// The node's address.
    pub fn addr(&self) -> &NodeAddr {
        &self.addr
    }

    /// Sends the commands `build` returns on the connection in `slot`, in one pipelined batch,
    /// reads their replies and hands them to `interpret`, all within the deadline. The
    /// connection goes back into the slot only when `interpret` accepts the replies. `build`
    /// runs once the connection is ready, so it sees a lease capability already reset by the
    /// reconnect of a probe connection (`redetect`).
    async fn call<T>(
        &self,
        slot: &Mutex<Option<Conn>>,
        redetect: bool,
        build: impl FnOnce() -> Vec<Cmd>,
        interpret: impl FnOnce(Vec<Frame>) -> Result<T, BackendError>,
    ) -> Result<T, BackendError> {
        let exchange = async {
            let mut guard = slot.lock().await;
            // Taken out of the slot: if this future is dropped (timeout) or fails, the
            // connection goes with it and is never reused out of sync.
            let mut conn = match guard.take() {
                Some(conn) => conn,
                None => {
                    let conn = Conn::connect(&self.addr, &self.cfg, MAX_REPLY).await?;
                    debug!(node = %self.addr, "connected");
                    if redetect {
                        self.lease.store(LEASE_UNKNOWN, Ordering::Relaxed);
                    }
                    conn
                }
            };
            let cmds = build();
            conn.send(&cmds).await?;
            let mut replies = Vec::with_capacity(cmds.len());
            for _ in &cmds {
                replies.push(conn.read().await?);
            }
            let value = interpret(replies)?;
            *guard = Some(conn);
            Ok(value)
        };
        let result = match tokio::time::timeout(self.cfg.timeout, exchange).await {
            Ok(result) => result,
            Err(_) => Err(BackendError::Timeout(self.cfg.timeout)),
        };
        if let Err(e) = &result {
            debug!(node = %self.addr, error = %e, "call failed; connection dropped");
        }
        result
    }

    /// One command on the control connection; `+…` is success, `-…` is `Refused`.
    async fn simple(&self, what: &'static str, cmd: Cmd) -> Result<(), BackendError> {
        self.call(
            &self.control,
            false,
            || vec![cmd],
            |replies| match one(replies)? {
                Frame::Simple(_) => Ok(()),
                Frame::Error(e) => Err(BackendError::Refused(text(&e))),
                other => Err(unexpected(what, &other)),
            },
        )
        .await
    }

    async fn probe_impl(&self) -> Result<Probe, BackendError> {
        let mut with_clock = false;
        let replies = self
            .call(
                &self.probe,
                true,
                || {
                    with_clock = self.lease.load(Ordering::Relaxed) != LEASE_NO;
                    let mut cmds = vec![vec!["PING".to_owned()]];
                    if with_clock {
                        cmds.push(vec!["VIGIL".to_owned(), "CLOCK".to_owned()]);
                    }
                    cmds
                },
                |replies| {
                    // Fail here, before the connection is put back, on an invalid PING reply.
                    ping_status(replies.first())?;
                    Ok(replies)
                },
            )
            .await?;
        let mut replies = replies.into_iter();
        let status = ping_status(replies.next().as_ref())?;
        let clock = match replies.next() {
            _ if !with_clock => None,
            Some(Frame::Integer(us)) if us >= 0 => {
                self.lease.store(LEASE_YES, Ordering::Relaxed);
                Some(Duration::from_micros(us.unsigned_abs()))
            }
            Some(Frame::Error(e)) if is_unknown_command(&e) => {
                debug!(node = %self.addr, "no VIGIL CLOCK: not lease-capable");
                self.lease.store(LEASE_NO, Ordering::Relaxed);
                None
            }
            // `-LOADING`, `-NOAUTH`, or something odd: the capability stays as it was, and the
            // probe itself still counts.
            other => {
                debug!(node = %self.addr, reply = ?other, "unexpected reply to VIGIL CLOCK");
                None
            }
        };
        Ok(Probe { status, clock })
    }

    async fn info_impl(&self) -> Result<NodeReport, BackendError> {
        let report = self
            .call(
                &self.control,
                false,
                || vec![vec!["INFO".to_owned()]],
                |replies| {
                    let body = match one(replies)? {
                        Frame::Bulk(b) => b,
                        Frame::Verbatim { text, .. } => text,
                        Frame::Error(e) => return Err(BackendError::Refused(text(&e))),
                        other => return Err(unexpected("INFO", &other)),
                    };
                    NodeReport::parse(&String::from_utf8_lossy(&body))
                },
            )
            .await?;
        if report.lease_capable {
            self.lease.store(LEASE_YES, Ordering::Relaxed);
        }
        Ok(report)
    }

    async fn grant_lease_impl(&self, lease: &LeaseGrant) -> Result<(), BackendError> {
        if self.lease.load(Ordering::Relaxed) == LEASE_NO {
            return Err(BackendError::Unsupported);
        }
        let cmd = vec![
            "VIGIL".to_owned(),
            "LEASE".to_owned(),
            lease.sentinel.to_string(),
            lease.start.as_micros().to_string(),
            lease.ttl.as_millis().to_string(),
            lease.majority.to_string(),
            lease.run_id_prefix.clone(),
            lease.members.to_string(),
        ];
        match self.simple("VIGIL LEASE", cmd).await {
            Err(BackendError::Refused(e)) if is_unknown_command(e.as_bytes()) => {
                self.lease.store(LEASE_NO, Ordering::Relaxed);
                Err(BackendError::Unsupported)
            }
            other => other,
        }
    }

    async fn revoke_leases_impl(&self) -> Result<(), BackendError> {
        if self.lease.load(Ordering::Relaxed) == LEASE_NO {
            return Err(BackendError::Unsupported);
        }
        let cmd = vec!["VIGIL".to_owned(), "REVOKE".to_owned()];
        match self.simple("VIGIL REVOKE", cmd).await {
            Err(BackendError::Refused(e)) if is_unknown_command(e.as_bytes()) => {
                Err(BackendError::Unsupported)
            }
            other => other,
        }
    }

    async fn publish_impl(&self, channel: &str, payload: &str) -> Result<(), BackendError> {
        let cmd = vec!["PUBLISH".to_owned(), channel.to_owned(), payload.to_owned()];
        self.call(
            &self.publish,
            false,
            || vec![cmd],
            |replies| match one(replies)? {
                Frame::Integer(_) => Ok(()),
                Frame::Error(e) => Err(BackendError::Refused(text(&e))),
                other => Err(unexpected("PUBLISH", &other)),
            },
        )
        .await
    }
}

impl Backend for RespBackend {
    fn probe(&self) -> BoxFut<'_, Result<Probe, BackendError>> {
        Box::pin(self.probe_impl())
    }

    fn info(&self) -> BoxFut<'_, Result<NodeReport, BackendError>> {
        Box::pin(self.info_impl())
    }

    fn promote(&self) -> BoxFut<'_, Result<(), BackendError>> {
        let cmd = vec!["REPLICAOF".to_owned(), "NO".to_owned(), "ONE".to_owned()];
        Box::pin(self.simple("REPLICAOF", cmd))
    }

    fn replicate_from(&self, master: &NodeAddr) -> BoxFut<'_, Result<(), BackendError>> {
        let cmd = vec![
            "REPLICAOF".to_owned(),
            master.host.clone(),
            master.port.to_string(),
        ];
        Box::pin(self.simple("REPLICAOF", cmd))
    }

    fn pause_writes(&self, timeout: Duration) -> BoxFut<'_, Result<(), BackendError>> {
        // A zero pause would be refused by nothing and pause nothing; one millisecond is the
        // shortest real one.
        let ms = timeout.as_millis().max(1);
        let cmd = vec![
            "CLIENT".to_owned(),
            "PAUSE".to_owned(),
            ms.to_string(),
            "WRITE".to_owned(),
        ];
        Box::pin(self.simple("CLIENT PAUSE", cmd))
    }

    fn unpause_writes(&self) -> BoxFut<'_, Result<(), BackendError>> {
        let cmd = vec!["CLIENT".to_owned(), "UNPAUSE".to_owned()];
        Box::pin(self.simple("CLIENT UNPAUSE", cmd))
    }

    fn config_set(&self, params: &[(&str, String)]) -> BoxFut<'_, Result<(), BackendError>> {
        let mut cmd = vec!["CONFIG".to_owned(), "SET".to_owned()];
        for (k, v) in params {
            cmd.push((*k).to_owned());
            cmd.push(v.clone());
        }
        Box::pin(self.simple("CONFIG SET", cmd))
    }

    fn grant_lease(&self, lease: &LeaseGrant) -> BoxFut<'_, Result<(), BackendError>> {
        let lease = lease.clone();
        Box::pin(async move { self.grant_lease_impl(&lease).await })
    }

    fn revoke_leases(&self) -> BoxFut<'_, Result<(), BackendError>> {
        Box::pin(self.revoke_leases_impl())
    }

    fn publish(&self, channel: &str, payload: &str) -> BoxFut<'_, Result<(), BackendError>> {
        let (channel, payload) = (channel.to_owned(), payload.to_owned());
        Box::pin(async move { self.publish_impl(&channel, &payload).await })
    }

    fn lease_capable(&self) -> Option<bool> {
        match self.lease.load(Ordering::Relaxed) {
            LEASE_YES => Some(true),
            LEASE_NO => Some(false),
            _ => None,
        }
    }
}

/// The status a PING reply proves, or why it proves nothing.
fn ping_status(reply: Option<&Frame>) -> Result<ProbeStatus, BackendError> {
    match reply {
        Some(Frame::Simple(s)) if s.eq_ignore_ascii_case(b"PONG") => Ok(ProbeStatus::Pong),
        Some(Frame::Error(e)) if e.starts_with(b"LOADING") => Ok(ProbeStatus::Loading),
        Some(Frame::Error(e)) if e.starts_with(b"MASTERDOWN") => Ok(ProbeStatus::MasterDown),
        Some(Frame::Error(e)) => Err(BackendError::Refused(text(e))),
        Some(other) => Err(unexpected("PING", other)),
        None => Err(BackendError::Protocol("no reply to PING".to_owned())),
    }
}

/// The single reply of a one-command pipeline.
fn one(replies: Vec<Frame>) -> Result<Frame, BackendError> {
    replies
        .into_iter()
        .next()
        .ok_or_else(|| BackendError::Protocol("no reply".to_owned()))
}

/// An error reply's text.
fn text(e: &[u8]) -> String {
    String::from_utf8_lossy(e).into_owned()
}

/// Redis: `ERR unknown command 'VIGIL', with args beginning with: ...`; servers that know a
/// `VIGIL` command without the subcommand say `ERR unknown subcommand ...`.
fn is_unknown_command(e: &[u8]) -> bool {
    let e = String::from_utf8_lossy(e).to_ascii_lowercase();
    e.starts_with("err unknown command") || e.starts_with("err unknown subcommand")
}

const LEASE_UNKNOWN: u8 = 0;
const LEASE_YES: u8 = 1;
const LEASE_NO: u8 = 2;
