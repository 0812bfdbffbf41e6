//! `MasterWatcher`: follows the master of some groups through the sentinels' `WatchMaster`
//! streams.
//!
//! One task per watcher owns the gRPC stream. It subscribes to one sentinel at a time, trying them
//! in the order given and rotating, and moves on when the stream errors, ends, or stays silent past
//! `keepalive_timeout` (sentinels send a keep-alive every second). Handles read the result from a
//! `watch` channel (the latest master of every group) or a `broadcast` channel (every change).
//!
//! Invariants:
//! - The config epoch of a group never goes back: a message whose epoch is not greater than the
//!   one already held for its group is ignored, so a lagging sentinel cannot move the client to
//!   an older master. On reconnection the task asks for `min_epoch` = the lowest of the per-group
//!   maxima, so the new sentinel does not even send older masters.
//! - Everything is bounded: the number of groups held (`MAX_GROUPS`), the size of a gRPC message,
//!   the change channel (a slow subscriber loses the oldest changes and sees `Lagged`), and every
//!   wait on the network (`keepalive_timeout`).
//! - The task ends when the last clone of the watcher is dropped.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use rand::Rng;
use tokio::sync::{broadcast, watch};
use tokio::time::{Instant, timeout};
use tonic::transport::{Certificate, ClientTlsConfig, Endpoint, Identity};
use tracing::{debug, info, warn};
use vigil_proto::control::{
    GetGroupRequest, MasterChanged, SentinelControlClient, WatchMasterRequest, master_event,
};

use crate::ClientError;

/// The latest known master of every group, by group name.
pub type Masters = HashMap<String, Master>;

/// How a `MasterWatcher` reaches the sentinels.
#[derive(Clone, Debug)]
pub struct WatcherOptions {
    /// TLS for `https://` sentinels: the CA that signed their certificates, and optionally a
    /// client certificate for mutual TLS. Required when any sentinel URI is `https://`.
    pub tls: Option<ClientTls>,
    /// The first and the longest pause after every sentinel failed in a row; the pause doubles
    /// (with jitter) after each such round and returns to the first once a stream stays up.
    pub reconnect_backoff: (Duration, Duration),
    /// A stream with no message (change or keep-alive) for this long is considered dead, and the
    /// watcher moves to the next sentinel. Also bounds connecting and one-shot calls. Sentinels
    /// send a keep-alive every second.
    pub keepalive_timeout: Duration,
}

impl Default for WatcherOptions {
    fn default() -> Self {
        WatcherOptions {
            tls: None,
            reconnect_backoff: (Duration::from_millis(100), Duration::from_secs(5)),
            keepalive_timeout: Duration::from_secs(3),
        }
    }
}

/// TLS settings for the sentinels' gRPC API (PEM files).
#[derive(Clone, Debug)]
pub struct ClientTls {
    /// The CA certificate that signed the sentinels' certificates.
    pub ca: PathBuf,
    /// The client certificate and its private key, for sentinels that require mutual TLS.
    pub cert_key: Option<(PathBuf, PathBuf)>,
}

/// The master of a group, as announced by the sentinels.
#[derive(Clone, Debug, Eq, PartialEq)]
pub struct Master {
    /// Its RESP address, `host:port`.
    pub addr: String,
    /// The config epoch at which it became master; higher is newer.
    pub epoch: u64,
}

/// One accepted change of master, as sent to `MasterWatcher::subscribe` receivers.
#[derive(Clone, Debug, Eq, PartialEq)]
pub struct MasterChange {
    /// The group whose master changed.
    pub group: String,
    /// The new master's RESP address, `host:port`.
    pub addr: String,
    /// The new master's config epoch.
    pub epoch: u64,
}

/// A handle on the task that follows the masters of some groups through the sentinels.
///
/// Cheap to clone; the task stops when the last clone is dropped. See the module docs for how it
/// picks sentinels and why epochs never go back.
#[derive(Clone)]
pub struct MasterWatcher {
    shared: Arc<Shared>,
    _task: Arc<AbortOnDrop>,
}

impl MasterWatcher {
    /// Checks the sentinel URIs (`http://host:port` or `https://host:port`) and the TLS files,
    /// then spawns the task that subscribes to them. It does not wait for a sentinel: use
    /// `wait_for` to wait for a group's master. An empty `groups` watches every group (up to
    /// `MAX_GROUPS`).
    pub async fn connect(
        sentinels: Vec<String>,
        groups: Vec<String>,
        opts: WatcherOptions,
    ) -> Result<MasterWatcher, ClientError> {
        if sentinels.is_empty() {
            return Err(ClientError::Transport("no sentinel given".into()));
        }
        let tls = match &opts.tls {
            Some(tls) => Some(tls_config(tls).await?),
            None => None,
        };
        let mut endpoints = Vec::with_capacity(sentinels.len());
        for uri in sentinels {
            endpoints.push(endpoint(uri, tls.as_ref(), opts.keepalive_timeout)?);
        }
        let mut groups = groups;
        groups.sort();
        groups.dedup();
        let (state, _) = watch::channel(Masters::new());
        let (changes, _) = broadcast::channel(CHANGES_CAPACITY);
        let shared = Arc::new(Shared {
            endpoints,
            groups,
            keepalive_timeout: opts.keepalive_timeout.max(MIN_TIMEOUT),
            backoff: normalize_backoff(opts.reconnect_backoff),
            state,
            changes,
            sentinel: AtomicUsize::new(0),
        });
        let task = tokio::spawn(run(Arc::clone(&shared)));
        Ok(MasterWatcher {
            shared,
            _task: Arc::new(AbortOnDrop(task.abort_handle())),
        })
    }

    /// The latest master announced for `group`, if any.
    pub fn current(&self, group: &str) -> Option<Master> {
        self.shared.state.borrow().get(group).cloned()
    }

    /// Every accepted change from now on, in order. A receiver that falls more than
    /// `CHANGES_CAPACITY` changes behind loses the oldest and gets `RecvError::Lagged`; `masters`
    /// then has the latest state.
    pub fn subscribe(&self) -> broadcast::Receiver<MasterChange> {
        self.shared.changes.subscribe()
    }

    /// The latest master of every group, as a `watch` channel (it holds only the latest state, so
    /// a slow reader skips intermediate masters but never falls behind).
    pub fn masters(&self) -> watch::Receiver<Masters> {
        self.shared.state.subscribe()
    }

    /// The master of `group`, waiting up to `timeout` for one to be announced.
    pub async fn wait_for(&self, group: &str, timeout: Duration) -> Result<Master, ClientError> {
        self.wait_until(group, 0, timeout)
            .await
            .ok_or_else(|| ClientError::NoMaster {
                group: group.to_owned(),
            })
    }

    /// The master of `group` once its config epoch is above `epoch`, waiting up to `timeout`
    /// (`ClientError::Timeout` after that). Used to wait for the end of a failover.
    pub async fn wait_for_newer(
        &self,
        group: &str,
        epoch: u64,
        timeout: Duration,
    ) -> Result<Master, ClientError> {
        self.wait_until(group, epoch.saturating_add(1), timeout)
            .await
            .ok_or(ClientError::Timeout)
    }

    /// The replicas of `group` that the sentinels see up and linked to their master, from a
    /// one-shot `GetGroup` call (to the sentinel the stream is on first, then the others).
    pub async fn replicas(&self, group: &str) -> Result<Vec<String>, ClientError> {
        Ok(self
            .replicas_by_dc(group)
            .await?
            .into_iter()
            .map(|(addr, _)| addr)
            .collect())
    }

    /// `replicas`, each with its data-centre label (empty when it has none).
    pub async fn replicas_by_dc(&self, group: &str) -> Result<Vec<(String, String)>, ClientError> {
        let shared = &self.shared;
        let n = shared.endpoints.len();
        let start = shared.sentinel.load(Ordering::Relaxed);
        let mut last = ClientError::Transport("no sentinel reachable".into());
        for i in 0..n {
            let endpoint = &shared.endpoints[(start + i) % n];
            let call = async {
                let channel = endpoint
                    .connect()
                    .await
                    .map_err(|e| ClientError::Transport(error_chain(&e)))?;
                let mut client = SentinelControlClient::new(channel)
                    .max_decoding_message_size(MAX_MESSAGE_BYTES);
                let req = GetGroupRequest {
                    group: group.to_owned(),
                };
                Ok::<_, ClientError>(client.get_group(req).await?.into_inner())
            };
            match tokio::time::timeout(shared.keepalive_timeout, call).await {
                Ok(Ok(status)) => {
                    let replicas = status
                        .replicas
                        .into_iter()
                        .filter(|r| !r.down && r.link != "down" && r.link != "connecting")
                        .map(|r| (r.addr, r.dc))
                        .filter(|(a, _)| valid_addr(a))
                        .take(MAX_REPLICAS)
                        .collect();
                    return Ok(replicas);
                }
                Ok(Err(e)) => {
                    debug!(sentinel = %endpoint.uri(), %group, error = %e, "GetGroup failed");
                    last = e;
                }
                Err(_) => {
                    debug!(sentinel = %endpoint.uri(), %group, "GetGroup timed out");
                    last = ClientError::Timeout;
                }
            }
        }
        Err(last)
    }

    /// Waits until `group` has a master with an epoch of at least `min`, up to `timeout`.
    async fn wait_until(&self, group: &str, min: u64, timeout: Duration) -> Option<Master> {
        let mut rx = self.shared.state.subscribe();
        let found = |m: &Masters| m.get(group).is_some_and(|m| m.epoch >= min);
        // The sender lives in `shared`, which we hold, so `wait_for` only ends by matching.
        let waited = tokio::time::timeout(timeout, rx.wait_for(found)).await;
        match waited {
            Ok(Ok(masters)) => masters.get(group).cloned(),
            _ => None,
        }
    }
}

/// The capacity of the change channel; a subscriber this far behind loses the oldest changes.
pub const CHANGES_CAPACITY: usize = 256;

/// The most groups a watcher holds; masters of further groups (possible only when watching every
/// group) are ignored with a warning.
pub const MAX_GROUPS: usize = 4096;

/// What the watcher task and the handles share.
struct Shared {
    endpoints: Vec<Endpoint>,
    /// The groups asked for, sorted and deduplicated; empty means all.
    groups: Vec<String>,
    keepalive_timeout: Duration,
    backoff: (Duration, Duration),
    state: watch::Sender<Masters>,
    changes: broadcast::Sender<MasterChange>,
    /// The index of the sentinel the task subscribes to now, where one-shot calls start.
    sentinel: AtomicUsize,
}

impl Shared {
    /// The `min_epoch` to ask a sentinel for: the lowest of the per-group maxima, so that no
    /// group misses a master newer than the one it has (0 for a group with none yet).
    fn min_epoch(&self) -> u64 {
        let masters = self.state.borrow();
        if self.groups.is_empty() {
            return masters.values().map(|m| m.epoch).min().unwrap_or(0);
        }
        self.groups
            .iter()
            .map(|g| masters.get(g).map_or(0, |m| m.epoch))
            .min()
            .unwrap_or(0)
    }

    /// Applies one announcement from `sentinel`; returns whether it was accepted.
    fn apply(&self, sentinel: &str, msg: MasterChanged) -> bool {
        let MasterChanged {
            group,
            addr,
            config_epoch: epoch,
            reported_by,
            ..
        } = msg;
        if !self.groups.is_empty() && self.groups.binary_search(&group).is_err() {
            debug!(%sentinel, %group, "ignoring a master of a group not watched");
            return false;
        }
        if !valid_addr(&addr) {
            debug!(%sentinel, %group, "ignoring a master with an invalid address");
            return false;
        }
        let mut full = false;
        let accepted = self.state.send_if_modified(|masters| {
            match masters.get(&group) {
                // Equal or older: a lagging sentinel, or the same master again after reconnecting.
                Some(cur) if cur.epoch >= epoch => return false,
                None if masters.len() >= MAX_GROUPS => {
                    full = true;
                    return false;
                }
                _ => {}
            }
            let master = Master {
                addr: addr.clone(),
                epoch,
            };
            masters.insert(group.clone(), master);
            true
        });
        if full {
            warn!(%group, max = MAX_GROUPS, "too many groups, ignoring a new one");
        }
        if !accepted {
            debug!(%sentinel, %group, epoch, "ignoring a master that is not newer");
            return false;
        }
        info!(%group, master = %addr, epoch, %sentinel, %reported_by, "master changed");
        // No receiver is fine: nobody subscribed.
        let _ = self.changes.send(MasterChange { group, addr, epoch });
        true
    }
}

/// Aborts the watcher task when the last handle goes.
pub(crate) struct AbortOnDrop(pub(crate) tokio::task::AbortHandle);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The watcher task: one subscription at a time, rotating through the sentinels.
async fn run(shared: Arc<Shared>) {
    let n = shared.endpoints.len();
    let (min_backoff, max_backoff) = shared.backoff;
    let mut backoff = min_backoff;
    let mut idx = 0;
    // Sentinels that failed (or gave a short-lived stream) since the last healthy stream.
    let mut failed = 0;
    loop {
        shared.sentinel.store(idx, Ordering::Relaxed);
        let uri = shared.endpoints[idx].uri().to_string();
        let started = Instant::now();
        let mut delivered = false;
        let why = subscribe(&shared, idx, &mut delivered).await;
        // A stream that delivered and stayed up resets the backoff; a flapping one does not, so
        // a sentinel that accepts and drops streams cannot make this loop spin.
        let healthy = delivered && started.elapsed() >= shared.keepalive_timeout;
        if healthy {
            info!(sentinel = %uri, reason = %why, "lost the sentinel stream, trying the next");
            failed = 0;
            backoff = min_backoff;
        } else {
            debug!(sentinel = %uri, reason = %why, "sentinel stream failed");
            failed += 1;
        }
        idx = (idx + 1) % n;
        if failed >= n {
            warn!(sentinels = n, reason = %why, "no sentinel reachable, retrying");
            failed = 0;
            tokio::time::sleep(jitter(backoff)).await;
            backoff = (backoff * 2).min(max_backoff);
        }
    }
}

/// Subscribes to sentinel `idx` and applies its messages until the stream fails; returns why.
async fn subscribe(shared: &Shared, idx: usize, delivered: &mut bool) -> String {
    let endpoint = &shared.endpoints[idx];
    let wait = shared.keepalive_timeout;
    let channel = match timeout(wait, endpoint.connect()).await {
        Ok(Ok(c)) => c,
        Ok(Err(e)) => return format!("connect: {}", error_chain(&e)),
        Err(_) => return "connect timed out".into(),
    };
    let mut client =
        SentinelControlClient::new(channel).max_decoding_message_size(MAX_MESSAGE_BYTES);
    let req = WatchMasterRequest {
        groups: shared.groups.clone(),
        min_epoch: shared.min_epoch(),
    };
    let min_epoch = req.min_epoch;
    let mut stream = match timeout(wait, client.watch_master(req)).await {
        Ok(Ok(r)) => r.into_inner(),
        Ok(Err(status)) => return format!("WatchMaster: {status}"),
        Err(_) => return "WatchMaster timed out".into(),
    };
    let sentinel = endpoint.uri().to_string();
    debug!(%sentinel, min_epoch, "subscribed");
    loop {
        let event = match timeout(wait, stream.message()).await {
            Ok(Ok(Some(event))) => event,
            Ok(Ok(None)) => return "stream ended".into(),
            Ok(Err(status)) => return format!("stream: {status}"),
            Err(_) => return format!("no message for {wait:?}"),
        };
        *delivered = true;
        // Keep-alives only prove the stream alive; unknown kinds come from newer sentinels.
        if let Some(master_event::Kind::Changed(msg)) = event.kind {
            shared.apply(&sentinel, msg);
        }
    }
}

/// Builds the endpoint of one sentinel.
fn endpoint(
    uri: String,
    tls: Option<&ClientTlsConfig>,
    connect_timeout: Duration,
) -> Result<Endpoint, ClientError> {
    let https = uri.starts_with("https://");
    if !https && !uri.starts_with("http://") {
        return Err(ClientError::Transport(format!(
            "sentinel URI {uri:?} must start with http:// or https://"
        )));
    }
    let mut endpoint = Endpoint::from_shared(uri.clone())
        .map_err(|e| ClientError::Transport(format!("sentinel URI {uri:?}: {e}")))?
        .connect_timeout(connect_timeout.max(MIN_TIMEOUT))
        .tcp_nodelay(true);
    if https {
        let Some(tls) = tls else {
            return Err(ClientError::Transport(format!(
                "sentinel URI {uri:?} is https but no TLS options were given"
            )));
        };
        endpoint = endpoint
            .tls_config(tls.clone())
            .map_err(|e| ClientError::Transport(format!("sentinel URI {uri:?}: {e}")))?;
    }
    Ok(endpoint)
}

/// Reads the PEM files of `tls`.
async fn tls_config(tls: &ClientTls) -> Result<ClientTlsConfig, ClientError> {
    let read = |path: PathBuf| async move {
        tokio::fs::read(&path)
            .await
            .map_err(|e| ClientError::Transport(format!("reading {}: {e}", path.display())))
    };
    let ca = read(tls.ca.clone()).await?;
    let mut config = ClientTlsConfig::new().ca_certificate(Certificate::from_pem(ca));
    if let Some((cert, key)) = &tls.cert_key {
        let cert = read(cert.clone()).await?;
        let key = read(key.clone()).await?;
        config = config.identity(Identity::from_pem(cert, key));
    }
    Ok(config)
}

/// True for a plausible `host:port` (the client parses it again before connecting).
pub(crate) fn valid_addr(addr: &str) -> bool {
    addr.len() <= 300 && crate::client::split_addr(addr).is_some()
}

/// The backoff bounds made usable: at least `MIN_TIMEOUT`, and the longest not below the first.
fn normalize_backoff((first, longest): (Duration, Duration)) -> (Duration, Duration) {
    let first = first.max(MIN_TIMEOUT);
    (first, longest.max(first))
}

/// `d` scaled by a random factor in [0.5, 1.5), so clients that lost the same sentinel spread out.
fn jitter(d: Duration) -> Duration {
    d.mul_f64(rand::rng().random_range(0.5..1.5))
}

/// An error and its sources, `: `-separated (tonic's transport errors say little at the top).
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

/// The largest gRPC message accepted from a sentinel.
const MAX_MESSAGE_BYTES: usize = 1 << 20;

/// The most replica addresses kept from one `GetGroup` answer.
const MAX_REPLICAS: usize = 64;

/// The shortest timeout or backoff used, so that a zero option cannot make a loop spin.
const MIN_TIMEOUT: Duration = Duration::from_millis(10);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_is_normalized() {
        let ms = Duration::from_millis;
        assert_eq!(normalize_backoff((ms(0), ms(0))), (ms(10), ms(10)));
        assert_eq!(normalize_backoff((ms(200), ms(100))), (ms(200), ms(200)));
        assert_eq!(normalize_backoff((ms(100), ms(5000))), (ms(100), ms(5000)));
    }

    #[test]
    fn jitter_stays_within_half_and_one_and_a_half() {
        let d = Duration::from_millis(100);
        for _ in 0..100 {
            let j = jitter(d);
            assert!(j >= d / 2 && j < d * 3 / 2, "{j:?}");
        }
    }
}
