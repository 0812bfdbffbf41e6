//! `vigil sentinel`'s shell: the tokio loop that feeds the core and executes its actions.
//!
//! Owns `run` (start-up: identity, state, transport, RESP port; then the loop of STYLE.md §2),
//! the execution of every `core::Action` (backend calls, gossip sends, the durable state
//! write), the `__sentinel__:hello` discovery, and the `Snapshot` that query ports read.
//! Invariants: only `Action::Persist` is awaited by the loop, and the next action is executed
//! only after the state is on disk, so no vote leaves before it is durable; every call to a
//! data node runs in its own task with a deadline, so a hung node never stalls the loop; at
//! most one probe and one INFO per node are in flight.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::{broadcast, mpsc, oneshot, watch};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::backend::{Backend, BackendConfig, BackendError, LeaseGrant, NodeReport, RespBackend};
use crate::core::{
    Action, ConfigError, CoreConfig, DurableState, Gossip, GroupConfig, GroupName, Input,
    NodeClock, NodeId, ProbeReply, Quorum, Sentinel, SentinelId, Term,
};
use crate::events::{self, EventRecord, NodeLookup};
use crate::gossip::{self, TransportConfig, TransportEvent, TransportHandle};
use crate::group_admin::{AdminFailure, AdminRequest};
use crate::nodes::{NodeAddr, NodeTable};
use crate::settings::{GroupSettings, Settings};
use crate::state::{self, StateError};
use crate::tls::Identity;

/// The pub/sub channel Redis sentinels announce themselves on.
pub const HELLO_CHANNEL: &str = "__sentinel__:hello";
/// How often this sentinel announces itself on every master's hello channel.
const HELLO_INTERVAL: Duration = Duration::from_secs(2);
/// A term or epoch further than this above ours in a peer's message is refused as nonsense.
const MAX_TERM_JUMP: u64 = 1 << 20;
/// Inputs waiting for the loop (probe and INFO results); beyond this, results are dropped,
/// which the core treats as a missed reply.
const INPUT_QUEUE: usize = 4096;
/// Events buffered per subscriber before a slow one is told it lagged.
const EVENT_BUFFER: usize = 1024;

/// Why the daemon stopped.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    /// The state directory cannot be created.
    #[error("state directory {path}: {source}")]
    Dir {
        /// The directory.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The state file cannot be read or written.
    #[error(transparent)]
    State(#[from] StateError),
    /// The identity or certificates cannot be loaded.
    #[error(transparent)]
    Tls(#[from] crate::tls::TlsError),
    /// The gossip endpoint cannot start.
    #[error(transparent)]
    Gossip(#[from] gossip::GossipError),
    /// A TCP port cannot be bound.
    #[error("cannot bind {what} on {addr}: {source}")]
    Bind {
        /// Which port.
        what: &'static str,
        /// The address.
        addr: SocketAddr,
        /// The cause.
        source: std::io::Error,
    },
    /// The settings break a rule of the core.
    #[error("invalid configuration: {0}")]
    Config(#[from] ConfigError),
    /// The state file belongs to another identity.
    #[error(
        "state file in {dir} belongs to sentinel {found}, but this identity is sentinel {mine}; \
         use the certificate this sentinel was started with, or another --dir"
    )]
    IdMismatch {
        /// The directory.
        dir: PathBuf,
        /// The id in the state file.
        found: SentinelId,
        /// The id of the loaded identity.
        mine: SentinelId,
    },
    /// More data nodes than the table holds.
    #[error("too many data nodes")]
    TooManyNodes,
}

/// The addresses a started sentinel serves, for the `READY` line.
#[derive(Clone, Debug)]
pub struct Endpoints {
    /// This sentinel's id.
    pub id: SentinelId,
    /// Its name (from its certificate).
    pub name: String,
    /// The QUIC gossip address (UDP).
    pub gossip: SocketAddr,
    /// The RESP sentinel port (TCP), if served.
    pub resp: Option<SocketAddr>,
    /// The gRPC control API (TCP), if served.
    pub grpc: Option<SocketAddr>,
}

/// What query ports read: the sentinel's view, refreshed by the loop after every change.
#[derive(Clone, Debug, Default)]
pub struct Snapshot {
    /// This sentinel's id.
    pub id: u32,
    /// Its name.
    pub name: String,
    /// Its gossip address as peers dial it.
    pub gossip: Option<SocketAddr>,
    /// Every group.
    pub groups: Vec<GroupSnapshot>,
    /// The voter set.
    pub voters: Vec<u32>,
    /// Peers the transport knows: `(id, name, addr, connected)`.
    pub peers: Vec<(u32, String, SocketAddr, bool)>,
    /// Where this sentinel serves clients: (RESP, gRPC).
    pub client_addrs: (Option<SocketAddr>, Option<SocketAddr>),
    /// Where each peer serves clients, as it announced: `id → (resp, grpc)`.
    pub endpoints: BTreeMap<u32, (Option<SocketAddr>, Option<SocketAddr>)>,
}

/// One group in a `Snapshot`.
#[derive(Clone, Debug)]
pub struct GroupSnapshot {
    /// The group.
    pub name: String,
    /// The master of the winning config.
    pub master: NodeAddr,
    /// Its config epoch.
    pub epoch: u64,
    /// The highest term known.
    pub term: u64,
    /// The quorum.
    pub quorum: u8,
    /// Replicas, with what this sentinel last read of them.
    pub replicas: Vec<NodeSnapshot>,
    /// What this sentinel last read of the master.
    pub master_node: NodeSnapshot,
    /// This sentinel sees the master subjectively down.
    pub master_down: bool,
    /// The master is objectively down.
    pub odown: bool,
    /// This sentinel leads a failover now.
    pub failing_over: bool,
    /// Maintenance mode.
    pub paused: bool,
    /// The group's settings.
    pub settings: GroupSettings,
}

/// One data node as this sentinel last saw it.
#[derive(Clone, Debug)]
pub struct NodeSnapshot {
    /// The core's name for it.
    pub id: NodeId,
    /// Its address.
    pub addr: NodeAddr,
    /// This sentinel sees it subjectively down.
    pub down: bool,
    /// Its last INFO, if any was read.
    pub report: Option<NodeReport>,
    /// When that INFO arrived.
    pub read_at: Option<SystemTime>,
}

impl NodeSnapshot {
    /// Its replication offset, 0 when unknown.
    pub fn offset(&self) -> u64 {
        self.report.as_ref().map_or(0, |r| r.offset)
    }

    /// Its run id, empty when unknown.
    pub fn run_id(&self) -> &str {
        self.report.as_ref().map_or("", |r| r.run_id.as_str())
    }

    /// `replica-priority`, 100 when unknown.
    pub fn priority(&self) -> u32 {
        self.report.as_ref().map_or(100, |r| r.priority)
    }

    /// Its data-centre label, empty when none.
    pub fn dc(&self) -> &str {
        self.report
            .as_ref()
            .and_then(|r| r.dc.as_deref())
            .unwrap_or("")
    }

    /// The state of its link to its master: "up", "down" or "" for a master or unknown.
    pub fn link(&self) -> &'static str {
        match self.report.as_ref().map(|r| &r.role) {
            Some(crate::backend::ReportRole::Replica { link_up: true, .. }) => "up",
            Some(crate::backend::ReportRole::Replica { .. }) => "down",
            _ => "",
        }
    }
}

/// What the loop receives from its own tasks and from query ports.
#[derive(Debug)]
pub enum ShellInput {
    /// A fact for the core as it is.
    Core(Input),
    /// An INFO reply, converted in the loop (it interns replica addresses).
    Report {
        /// The node.
        node: NodeId,
        /// The request's sequence number.
        seq: crate::core::InfoSeq,
        /// The parsed reply.
        report: NodeReport,
    },
    /// An operator's change of a group; the verdict goes to `reply`.
    Admin {
        /// The group (for a reset, a glob pattern of groups is resolved by the port).
        group: String,
        /// The change.
        request: crate::group_admin::AdminRequest,
        /// Receives the term of the change once a majority holds it, or why not.
        reply: oneshot::Sender<Result<u64, AdminFailure>>,
    },
    /// An operator's removal of a sentinel from the voter set; the verdict goes to `reply`.
    Forget {
        /// The sentinel.
        sentinel: crate::core::SentinelId,
        /// Receives the membership epoch of the set without it, or why not.
        reply: oneshot::Sender<Result<u64, AdminFailure>>,
    },
}

/// Handles the query ports hold.
#[derive(Clone, Debug)]
pub struct Ports {
    /// The latest view.
    pub snapshot: watch::Receiver<Arc<Snapshot>>,
    /// Every published event.
    pub events: broadcast::Sender<EventRecord>,
    /// Admin requests (`Input::FailoverRequested`, …) into the loop.
    pub inputs: mpsc::Sender<ShellInput>,
}

struct NodeHandle {
    backend: Arc<RespBackend>,
    probing: AtomicBool,
    reading: AtomicBool,
    /// The seq of an INFO asked for while another was being read (0: none): the reading task
    /// reads once more for it when it is done, so that a request made after a role change
    /// (promotion, reconfiguration) is answered by a read made after it, not dropped.
    reread: AtomicU64,
    /// The `min-replicas-to-write` fallback was applied to this incarnation (no lease support).
    fallback_set: AtomicBool,
    /// The run id of the last INFO, to notice a restart (which resets the server's config).
    run_id: std::sync::Mutex<String>,
}

struct Shell {
    core: Sentinel,
    id: SentinelId,
    nodes: NodeTable,
    node_group: HashMap<NodeId, GroupName>,
    settings: Settings,
    handles: HashMap<NodeId, Arc<NodeHandle>>,
    transport: TransportHandle,
    inputs: mpsc::Sender<ShellInput>,
    events: broadcast::Sender<EventRecord>,
    snapshot: watch::Sender<Arc<Snapshot>>,
    name: String,
    announce: SocketAddr,
    hello_subs: HashMap<GroupName, (NodeId, CancellationToken)>,
    hello_tx: mpsc::Sender<String>,
    cancel: CancellationToken,
    /// The last INFO of every node, for queries.
    reports: HashMap<NodeId, (NodeReport, SystemTime)>,
    /// Where this sentinel serves clients: (RESP, gRPC), as peers should reach them.
    client_addrs: (Option<SocketAddr>, Option<SocketAddr>),
    /// Where each peer serves clients, as it announced.
    peer_endpoints: BTreeMap<u32, (Option<SocketAddr>, Option<SocketAddr>)>,
    /// Per node, the end of the latest `CLIENT PAUSE` call not yet followed by a revocation:
    /// `VIGIL REVOKE` waits for it, so that writers block on the pause rather than see
    /// `-NOLEASE`. At most one entry per node (a newer pause replaces it).
    pausing: HashMap<NodeId, oneshot::Receiver<()>>,
    /// Operators' requests waiting for the core's verdict, by request id.
    admin_waiters: HashMap<u64, oneshot::Sender<Result<u64, AdminFailure>>>,
    next_admin_id: u64,
}

/// The most operator requests in flight at once.
const MAX_ADMIN_WAITERS: usize = 64;

fn now() -> Instant {
    tokio::time::Instant::now().into_std()
}

/// Runs a sentinel until `cancel` fires or a fatal error (storage) occurs. `on_ready` is called
/// once every port is bound, with the addresses served.
pub async fn run(
    settings: Settings,
    cancel: CancellationToken,
    on_ready: impl FnOnce(&Endpoints),
) -> Result<(), DaemonError> {
    let dir = settings.dir.clone();
    std::fs::create_dir_all(&dir).map_err(|source| DaemonError::Dir {
        path: dir.clone(),
        source,
    })?;
    let identity = match &settings.tls {
        Some(t) => Identity::from_files(&t.cert, &t.key, Some(&t.ca))?,
        None => {
            warn!(
                dir = %dir.display(),
                "DEV MODE: no cluster CA configured; this sentinel uses a self-signed \
                 certificate and accepts ANY peer. Configure [tls] (vigil certs) in production"
            );
            Identity::dev(&dir)?
        }
    };
    let id = identity.sentinel_id();
    let name = identity.name().to_owned();
    let mut nodes = NodeTable::default();
    let recovered = state::load(&dir, &mut nodes)?;
    if let Some(st) = &recovered {
        if st.id != id {
            return Err(DaemonError::IdMismatch {
                dir,
                found: st.id,
                mine: id,
            });
        }
    }
    let mut node_group = HashMap::new();
    let mut groups = Vec::new();
    for g in &settings.groups {
        let name = GroupName::new(&g.name);
        let master = nodes.intern(&g.master).ok_or(DaemonError::TooManyNodes)?;
        node_group.insert(master, name.clone());
        let mut replicas = Vec::new();
        for r in &g.replicas {
            let r = nodes.intern(r).ok_or(DaemonError::TooManyNodes)?;
            node_group.insert(r, name.clone());
            replicas.push(r);
        }
        let mut gc = GroupConfig::new(&g.name, master, replicas, Quorum(g.quorum));
        gc.down_after = g.down_after;
        gc.failover_timeout = g.failover_timeout;
        gc.parallel_syncs = g.parallel_syncs;
        gc.preferred_dc = g.preferred_dc.as_deref().map(|d| crate::core::Dc(d.into()));
        gc.sync_replicas = g.sync_replicas;
        groups.push(gc);
    }
    let mut cfg = CoreConfig::new([id].into_iter().collect(), groups);
    let t = &settings.timing;
    cfg.probe_interval = t.probe_interval;
    cfg.info_interval = t.info_interval;
    cfg.heartbeat_interval = t.heartbeat_interval;
    cfg.election_jitter = t.election_jitter;
    cfg.lease_ttl = t.lease_ttl;
    cfg.convergence_grace = t.convergence_grace;
    cfg.dc = settings.dc.as_deref().map(|d| crate::core::Dc(d.into()));
    // A new sentinel with seeds asks them to admit it; one without founds a cluster.
    cfg.joining = !settings.join.is_empty() && !settings.bootstrap;
    cfg.founding_nonce = rand::random::<u64>();
    if recovered.is_none() {
        if cfg.joining {
            info!("new sentinel: asking the seeds to admit it into their cluster");
        } else {
            warn!(
                "new sentinel with no state file: founding a new cluster of one (others join it); \
                 if this sentinel belonged to a cluster, its state file is lost: stop it and \
                 start it with `join` seeds instead"
            );
        }
    }
    if let Some(st) = &recovered {
        cfg.voters = st.voters.clone();
    }
    match cfg.validate() {
        // Peers join after start; until enough have, the quorum cannot be reached, which is
        // safe (no ODOWN, no election) and logged.
        Err(ConfigError::QuorumTooLarge {
            group,
            quorum,
            voters,
        }) => {
            info!(%group, quorum, voters, "waiting for sentinels to join before the quorum can be reached")
        }
        other => other?,
    }
    let seed = rand::random::<u64>();
    let core = match recovered {
        Some(st) => {
            info!(id = %id, version = st.version.0, "resuming from the state file");
            Sentinel::recover(cfg, st, seed, now())
        }
        None => Sentinel::new(id, cfg, seed, now()),
    };

    let (transport, mut transport_rx) = gossip::start(
        TransportConfig {
            listen: settings.gossip,
            announce: settings.announce,
            identity,
            max_message: 1 << 20,
            max_peers: 64,
            seeds: settings.join.clone(),
            request_timeout: Duration::from_secs(5),
        },
        cancel.child_token(),
    )
    .await?;
    let gossip_addr = transport.local_addr();
    let announce = settings.announce.unwrap_or(gossip_addr);

    let (inputs, mut inputs_rx) = mpsc::channel(INPUT_QUEUE);
    let (events, _) = broadcast::channel(EVENT_BUFFER);
    let (snapshot, snapshot_rx) = watch::channel(Arc::new(Snapshot::default()));
    let (hello_tx, mut hello_rx) = mpsc::channel(256);
    let ports = Ports {
        snapshot: snapshot_rx,
        events: events.clone(),
        inputs: inputs.clone(),
    };
    let resp = match settings.resp {
        Some(addr) => {
            let listener = tokio::net::TcpListener::bind(addr)
                .await
                .map_err(|source| DaemonError::Bind {
                    what: "the RESP sentinel port",
                    addr,
                    source,
                })?;
            let local = listener.local_addr().map_err(|source| DaemonError::Bind {
                what: "the RESP sentinel port",
                addr,
                source,
            })?;
            tokio::spawn(crate::resp_port::serve(
                listener,
                ports.clone(),
                cancel.child_token(),
            ));
            Some(local)
        }
        None => None,
    };

    let grpc = match settings.grpc {
        Some(addr) => {
            let bind = |source| DaemonError::Bind {
                what: "the gRPC control API",
                addr,
                source,
            };
            let listener = tokio::net::TcpListener::bind(addr).await.map_err(bind)?;
            let local = listener.local_addr().map_err(bind)?;
            // The API serves with the sentinel's own certificate; with `api-client-auth`,
            // clients need one from the cluster CA too (mTLS).
            let tls = settings.tls.as_ref().map(|t| crate::api::ApiTls {
                cert: t.cert.clone(),
                key: t.key.clone(),
                client_ca: settings.api_client_auth.then(|| t.ca.clone()),
            });
            let ports = ports.clone();
            let token = cancel.child_token();
            tokio::spawn(async move {
                if let Err(e) = crate::api::serve(listener, ports, tls, token).await {
                    warn!(error = %e, "gRPC control API stopped");
                }
            });
            Some(local)
        }
        None => None,
    };

    let settings_announce = settings.announce;
    let mut shell = Shell {
        core,
        id,
        nodes,
        node_group,
        settings,
        handles: HashMap::new(),
        transport,
        inputs,
        events,
        snapshot,
        name: name.clone(),
        announce,
        hello_subs: HashMap::new(),
        hello_tx,
        cancel: cancel.clone(),
        reports: HashMap::new(),
        client_addrs: {
            // Behind NAT, peers reach us at the announced IP; the ports are ours.
            let ip = |a: SocketAddr| match settings_announce {
                Some(ann) => SocketAddr::new(ann.ip(), a.port()),
                None => a,
            };
            (resp.map(ip), grpc.map(ip))
        },
        peer_endpoints: BTreeMap::new(),
        pausing: HashMap::new(),
        admin_waiters: HashMap::new(),
        next_admin_id: 1,
    };
    shell.refresh();
    on_ready(&Endpoints {
        id,
        name,
        gossip: gossip_addr,
        resp,
        grpc,
    });
    info!(%id, gossip = %gossip_addr, "sentinel started");

    let mut hello_tick = tokio::time::interval(HELLO_INTERVAL);
    hello_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let mut changed = false;
        while let Some(action) = shell.core.poll_action() {
            changed |= shell.execute(action).await?;
        }
        if changed {
            shell.refresh();
        }
        let deadline = shell.core.poll_timeout();
        tokio::select! {
            biased;
            () = cancel.cancelled() => break,
            Some(input) = inputs_rx.recv() => shell.on_input(input),
            Some(event) = transport_rx.recv() => shell.on_transport(event),
            Some(hello) = hello_rx.recv() => shell.on_hello(&hello),
            _ = hello_tick.tick() => {
                shell.publish_hellos();
                shell.refresh();
            }
            () = sleep_until_opt(deadline) => shell.core.handle_timeout(now()),
        }
    }
    info!(%id, "sentinel stopped");
    Ok(())
}

/// Reports a `+OK` to `REPLICAOF`; a full queue loses it (the core then polls on its timer).
fn acknowledged(tx: &mpsc::Sender<ShellInput>, node: NodeId) {
    let _ = tx.try_send(ShellInput::Core(Input::ReplicaofAcknowledged { node }));
}

async fn sleep_until_opt(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(tokio::time::Instant::from_std(d)).await,
        None => std::future::pending().await,
    }
}

impl Shell {
    /// Executes one action; `Ok(true)` when the view changed (state or event).
    async fn execute(&mut self, action: Action) -> Result<bool, DaemonError> {
        match action {
            Action::Persist(st) => {
                self.persist(&st).await?;
                self.core.handle(
                    now(),
                    Input::Persisted {
                        version: st.version,
                    },
                );
                return Ok(true);
            }
            Action::Probe { node } => self.probe(node),
            Action::Info { node, seq } => self.info(node, seq),
            Action::SendGossip { to, msg } => match gossip::convert::encode(&msg, &self.nodes) {
                Some(env) => self.transport.send(to, env),
                None => debug!(peer = %to, "gossip names an unknown node; not sent"),
            },
            Action::GrantLease { node, lease } => {
                let grant = LeaseGrant::from(&lease);
                self.call(node, "lease", move |b| {
                    Box::pin(async move { b.grant_lease(&grant).await })
                });
            }
            Action::Promote { node } => {
                info!(node = %self.describe(node), "promoting (REPLICAOF NO ONE)");
                let tx = self.inputs.clone();
                self.call(node, "promote", move |b| {
                    Box::pin(async move {
                        b.promote().await?;
                        acknowledged(&tx, node);
                        Ok(())
                    })
                });
            }
            Action::Reconfigure { node, master } => {
                let Some(addr) = self.nodes.addr(master).cloned() else {
                    return Ok(false);
                };
                info!(node = %self.describe(node), master = %addr, "reconfiguring (REPLICAOF)");
                let tx = self.inputs.clone();
                self.call(node, "replicaof", move |b| {
                    Box::pin(async move {
                        b.replicate_from(&addr).await?;
                        acknowledged(&tx, node);
                        Ok(())
                    })
                });
            }
            Action::PauseWrites { node, timeout } => {
                let (done, paused) = oneshot::channel();
                self.pausing.insert(node, paused);
                self.call(node, "pause", move |b| {
                    Box::pin(async move {
                        let r = b.pause_writes(timeout).await;
                        // Sent whatever the outcome: the revocation must not wait for ever.
                        let _ = done.send(());
                        r
                    })
                });
            }
            Action::RevokeLeases { node, term } => self.revoke_leases(node, term),
            Action::UnpauseWrites { node } => {
                self.call(node, "unpause", |b| {
                    Box::pin(async move { b.unpause_writes().await })
                });
            }
            Action::Publish(event) => {
                match &event {
                    crate::core::Event::AdminConfirmed { id, agreed, .. } => {
                        if let Some(tx) = self.admin_waiters.remove(id) {
                            let _ = tx.send(Ok(agreed.0));
                        }
                    }
                    crate::core::Event::AdminFailed { id, reason, .. }
                    | crate::core::Event::MembershipFailed { id, reason } => {
                        if let Some(tx) = self.admin_waiters.remove(id) {
                            let _ = tx.send(Err(AdminFailure::Core(reason.clone())));
                        }
                    }
                    crate::core::Event::MembershipConfirmed { id, epoch } => {
                        if let Some(tx) = self.admin_waiters.remove(id) {
                            let _ = tx.send(Ok(epoch.0));
                        }
                    }
                    crate::core::Event::AdminApplied { group, .. } => {
                        // Connections are rebuilt with the group's new options (auth).
                        let members: Vec<NodeId> = self
                            .handles
                            .keys()
                            .copied()
                            .filter(|n| self.group_of(*n).as_ref() == Some(group))
                            .collect();
                        for n in members {
                            self.handles.remove(&n);
                        }
                        if let Some((_, token)) = self.hello_subs.remove(group) {
                            token.cancel();
                        }
                    }
                    _ => {}
                }
                let mut record = events::render(&event, SystemTime::now(), &Lookup(self));
                if let crate::core::Event::Promoted { group, node, .. } = &event {
                    // Redis names the promoted node as the replica it was, of the old master;
                    // the snapshot still holds the old master until this batch ends.
                    let old = self
                        .snapshot
                        .borrow()
                        .groups
                        .iter()
                        .find(|g| g.name == group.as_str())
                        .map(|g| g.master.clone());
                    if let (Some(a), Some(m)) = (self.nodes.addr(*node), old) {
                        record.payload = format!(
                            "slave {a} {} {} @ {group} {} {}",
                            a.host, a.port, m.host, m.port
                        );
                    }
                }
                info!(channel = %record.channel, payload = %record.payload, "event");
                // No subscriber is not an error.
                let _ = self.events.send(record);
                return Ok(true);
            }
        }
        Ok(false)
    }

    async fn persist(&mut self, st: &DurableState) -> Result<(), DaemonError> {
        let bytes = state::encode(st, &self.nodes);
        let dir = self.settings.dir.clone();
        let res = tokio::task::spawn_blocking(move || state::store(&dir, &bytes)).await;
        match res {
            Ok(r) => r.map_err(DaemonError::State),
            Err(join) => Err(DaemonError::State(StateError::Io {
                path: state::path_in(&self.settings.dir),
                source: std::io::Error::other(join.to_string()),
            })),
        }
    }

    fn handle(&mut self, node: NodeId) -> Option<Arc<NodeHandle>> {
        if let Some(h) = self.handles.get(&node) {
            return Some(h.clone());
        }
        let addr = self.nodes.addr(node)?.clone();
        let group = self.group_of(node);
        let gs = group
            .as_ref()
            .and_then(|g| self.group_settings(g))
            .or_else(|| self.settings.groups.first().cloned());
        let cfg = BackendConfig {
            auth_user: gs.as_ref().and_then(|g| g.auth_user.clone()),
            auth_pass: gs.as_ref().and_then(|g| g.auth_pass.clone()),
            timeout: self.settings.timing.backend_timeout,
            client_name: "vigil-sentinel".into(),
        };
        let h = Arc::new(NodeHandle {
            backend: Arc::new(RespBackend::new(addr, cfg)),
            probing: AtomicBool::new(false),
            reading: AtomicBool::new(false),
            reread: AtomicU64::new(0),
            fallback_set: AtomicBool::new(false),
            run_id: std::sync::Mutex::new(String::new()),
        });
        self.handles.insert(node, h.clone());
        Some(h)
    }

    fn group_of(&self, node: NodeId) -> Option<GroupName> {
        if let Some(g) = self.node_group.get(&node) {
            return Some(g.clone());
        }
        self.core.group_names().into_iter().find(|g| {
            self.core
                .group_view(g)
                .is_some_and(|v| v.master == node || v.replicas.contains(&node))
        })
    }

    fn probe(&mut self, node: NodeId) {
        let Some(h) = self.handle(node) else {
            return;
        };
        if h.probing.swap(true, Ordering::AcqRel) {
            return; // the previous probe is still waiting for its deadline
        }
        let tx = self.inputs.clone();
        tokio::spawn(async move {
            let input = match h.backend.probe().await {
                Ok(p) => Input::NodeReplied {
                    node,
                    reply: ProbeReply {
                        status: p.status,
                        clock: p.clock.map(NodeClock),
                    },
                },
                Err(e) => {
                    debug!(%node, error = %e, "probe failed");
                    Input::ProbeFailed { node }
                }
            };
            h.probing.store(false, Ordering::Release);
            let _ = tx.try_send(ShellInput::Core(input));
        });
    }

    fn info(&mut self, node: NodeId, seq: crate::core::InfoSeq) {
        let Some(h) = self.handle(node) else {
            return;
        };
        if h.reading.swap(true, Ordering::AcqRel) {
            // One read at a time per node; the latest request waits for the current one.
            h.reread.fetch_max(seq.0, Ordering::AcqRel);
            return;
        }
        let tx = self.inputs.clone();
        tokio::spawn(async move {
            let mut seq = seq;
            loop {
                match h.backend.info().await {
                    Ok(report) => {
                        let _ = tx.try_send(ShellInput::Report { node, seq, report });
                    }
                    Err(e) => debug!(%node, error = %e, "INFO failed"),
                }
                let next = h.reread.swap(0, Ordering::AcqRel);
                if next != 0 {
                    seq = crate::core::InfoSeq(next);
                    continue;
                }
                h.reading.store(false, Ordering::Release);
                // A request that came between the check and the release: serve it unless
                // another task already took over (it then serves it when it is done).
                if h.reread.load(Ordering::Acquire) == 0 || h.reading.swap(true, Ordering::AcqRel) {
                    break;
                }
                let next = h.reread.swap(0, Ordering::AcqRel);
                if next == 0 {
                    h.reading.store(false, Ordering::Release);
                    break;
                }
                seq = crate::core::InfoSeq(next);
            }
        });
    }

    /// `VIGIL REVOKE` on `node` in its own task, after the pause sent before it if any (that
    /// call is bounded by the backend timeout); `+OK` is reported as `LeasesRevoked`.
    fn revoke_leases(&mut self, node: NodeId, term: crate::core::Term) {
        let paused = self.pausing.remove(&node);
        let Some(h) = self.handle(node) else {
            return;
        };
        let tx = self.inputs.clone();
        tokio::spawn(async move {
            if let Some(paused) = paused {
                // An error means the pause task ended without a word: go on.
                let _ = paused.await;
            }
            match h.backend.revoke_leases().await {
                Ok(()) => {
                    debug!(%node, %term, "leases revoked");
                    // A full queue loses the fact: the lease wait then runs out by itself.
                    let _ = tx.try_send(ShellInput::Core(Input::LeasesRevoked { node, term }));
                }
                Err(BackendError::Unsupported) => {
                    debug!(%node, "no lease revocation on this node; waiting for expiry")
                }
                Err(e) => warn!(%node, error = %e, "lease revocation failed; waiting for expiry"),
            }
        });
    }

    /// Runs a command against `node` in its own task; failures are logged (the core notices
    /// their effect, or its absence, through probes and INFO).
    fn call<F>(&mut self, node: NodeId, what: &'static str, f: F)
    where
        F: FnOnce(Arc<RespBackend>) -> crate::backend::BoxFut<'static, Result<(), BackendError>>
            + Send
            + 'static,
    {
        let Some(h) = self.handle(node) else {
            return;
        };
        let addr = self.nodes.addr(node).cloned();
        tokio::spawn(async move {
            match f(h.backend.clone()).await {
                Ok(()) => debug!(?addr, what, "done"),
                Err(BackendError::Unsupported) => debug!(?addr, what, "not supported by the node"),
                Err(e) => warn!(?addr, what, error = %e, "data node command failed"),
            }
        });
    }

    /// For a master without lease support (Redis, Valkey): applies the fallback of DESIGN.md
    /// §2 once per incarnation, `min-replicas-to-write N` with `min-replicas-max-lag` of the
    /// group's down-after (at least 2 s), so that a master cut off from its replicas stops
    /// accepting writes within that lag. Called for the configured master after its INFO.
    fn fence_without_leases(&mut self, node: NodeId) {
        let Some(h) = self.handle(node) else {
            return;
        };
        if h.backend.lease_capable() != Some(false) {
            return;
        }
        let Some(group) = self.group_of(node) else {
            return;
        };
        let Some(gs) = self.group_settings(&group) else {
            return;
        };
        let has_replicas = self
            .core
            .group_view(&group)
            .is_some_and(|v| !v.replicas.is_empty());
        if gs.redis_min_replicas == 0
            || !has_replicas
            || h.fallback_set.swap(true, Ordering::AcqRel)
        {
            return;
        }
        let lag = gs.down_after.as_secs().max(2);
        let params = [
            ("min-replicas-to-write", gs.redis_min_replicas.to_string()),
            ("min-replicas-max-lag", lag.to_string()),
        ];
        info!(node = %self.describe(node), min_replicas = gs.redis_min_replicas, lag, "no write leases on this server: fencing with min-replicas-to-write");
        let handle = h.clone();
        tokio::spawn(async move {
            let refs: Vec<(&str, String)> = params.iter().map(|(k, v)| (*k, v.clone())).collect();
            if let Err(e) = handle.backend.config_set(&refs).await {
                handle.fallback_set.store(false, Ordering::Release);
                warn!(error = %e, "CONFIG SET min-replicas-to-write failed");
            }
        });
    }

    /// A group's settings as they apply now: its config file entry (or the defaults, for a
    /// group added at run time) with the options the sentinels agreed on top.
    fn group_settings(&self, group: &GroupName) -> Option<GroupSettings> {
        let options = self.core.group_options(group)?;
        let master = self
            .core
            .group_view(group)
            .and_then(|v| self.nodes.addr(v.master).cloned())?;
        let base = match self
            .settings
            .groups
            .iter()
            .find(|s| s.name == group.as_str())
        {
            Some(s) => s.clone(),
            None => GroupSettings::new(group.as_str(), master, options.quorum.0.get()).ok()?,
        };
        Some(crate::group_admin::effective(base, &options))
    }

    /// An operator's change: checked, turned into the core's terms, and submitted; the verdict
    /// comes back as an event (`AdminConfirmed`/`AdminFailed`).
    fn on_admin(
        &mut self,
        group: String,
        request: AdminRequest,
        reply: oneshot::Sender<Result<u64, AdminFailure>>,
    ) {
        self.admin_waiters.retain(|_, tx| !tx.is_closed());
        if self.admin_waiters.len() >= MAX_ADMIN_WAITERS {
            let _ = reply.send(Err(AdminFailure::Unavailable));
            return;
        }
        if let Err(e) = crate::settings::check_name(&group) {
            let _ = reply.send(Err(AdminFailure::Invalid(e.to_string())));
            return;
        }
        let name = GroupName::new(&group);
        info!(%group, request = request.name(), "operator request");
        let change = match request {
            AdminRequest::Monitor { master, quorum } => {
                let settings = match GroupSettings::new(&group, master.clone(), quorum) {
                    Ok(s) => s,
                    Err(e) => {
                        let _ = reply.send(Err(AdminFailure::Invalid(e.to_string())));
                        return;
                    }
                };
                let Some(node) = self.nodes.intern(&master) else {
                    let _ = reply.send(Err(AdminFailure::Invalid("the node table is full".into())));
                    return;
                };
                self.node_group.insert(node, name.clone());
                crate::core::AdminChange::Monitor {
                    master: node,
                    options: crate::group_admin::options_of(&settings),
                }
            }
            AdminRequest::Set { options } => {
                let Some(mut o) = self.core.group_options(&name) else {
                    let _ = reply.send(Err(AdminFailure::Core(crate::core::AdminError::Unknown(
                        name,
                    ))));
                    return;
                };
                for (k, v) in &options {
                    if let Err(e) = crate::group_admin::apply_option(&mut o, k, v) {
                        let _ = reply.send(Err(e));
                        return;
                    }
                }
                crate::core::AdminChange::Set { options: o }
            }
            AdminRequest::Remove => crate::core::AdminChange::Remove,
            AdminRequest::Reset => crate::core::AdminChange::Reset,
        };
        let id = self.next_admin_id;
        self.next_admin_id += 1;
        self.admin_waiters.insert(id, reply);
        self.core.handle(
            now(),
            Input::AdminRequested {
                id,
                group: name,
                change,
            },
        );
    }

    fn on_input(&mut self, input: ShellInput) {
        match input {
            ShellInput::Core(input) => self.core.handle(now(), input),
            ShellInput::Admin {
                group,
                request,
                reply,
            } => self.on_admin(group, request, reply),
            ShellInput::Forget { sentinel, reply } => {
                self.admin_waiters.retain(|_, tx| !tx.is_closed());
                if self.admin_waiters.len() >= MAX_ADMIN_WAITERS {
                    let _ = reply.send(Err(AdminFailure::Unavailable));
                    return;
                }
                let id = self.next_admin_id;
                self.next_admin_id += 1;
                self.admin_waiters.insert(id, reply);
                info!(%sentinel, "operator request: forget a sentinel");
                self.core
                    .handle(now(), Input::ForgetRequested { id, sentinel });
            }
            ShellInput::Report { node, seq, report } => {
                if let Some(h) = self.handles.get(&node) {
                    if let Ok(mut last) = h.run_id.lock() {
                        if *last != report.run_id {
                            *last = report.run_id.clone();
                            h.fallback_set.store(false, Ordering::Release);
                        }
                    }
                }
                let group = self.group_of(node);
                if self.reports.len() < crate::nodes::MAX_NODES {
                    self.reports
                        .insert(node, (report.clone(), SystemTime::now()));
                }
                let Some(info) = report.to_core(&mut self.nodes) else {
                    warn!(%node, "node table full; INFO ignored");
                    return;
                };
                if let (Some(g), crate::core::NodeRole::Master { replicas }) = (&group, &info.role)
                {
                    for r in replicas {
                        self.node_group.entry(*r).or_insert_with(|| g.clone());
                    }
                }
                let is_master = matches!(info.role, crate::core::NodeRole::Master { .. });
                self.core
                    .handle(now(), Input::InfoReceived { node, seq, info });
                let configured = group
                    .as_ref()
                    .and_then(|g| self.core.group_view(g))
                    .is_some_and(|v| v.master == node);
                if is_master && configured {
                    self.fence_without_leases(node);
                }
            }
        }
    }

    fn on_transport(&mut self, event: TransportEvent) {
        match event {
            TransportEvent::PeerUp { id, name, addr } => {
                info!(peer = %id, %name, %addr, "peer connected");
                let (resp, grpc) = self.client_addrs;
                self.transport
                    .send(id, gossip::convert::endpoints(resp, grpc));
                self.core.handle(
                    now(),
                    Input::GossipReceived {
                        from: id,
                        msg: Gossip::Hello,
                    },
                );
            }
            TransportEvent::PeerDown { id } => debug!(peer = %id, "peer disconnected"),
            TransportEvent::Message { from, env } => {
                let msg = match gossip::convert::decode(env, &mut self.nodes) {
                    Ok(gossip::convert::Decoded::Core(msg)) => msg,
                    Ok(gossip::convert::Decoded::Endpoints { resp, grpc }) => {
                        // Bounded: one entry per sentinel that ever connected (the transport
                        // caps peers), and never more than a voter set could hold.
                        if self.peer_endpoints.len() < 1024
                            || self.peer_endpoints.contains_key(&from.0)
                        {
                            self.peer_endpoints.insert(from.0, (resp, grpc));
                        }
                        return;
                    }
                    Ok(_) => return, // transport-level messages are the transport's
                    Err(e) => {
                        warn!(peer = %from, error = %e, "invalid gossip refused");
                        return;
                    }
                };
                if let Err(why) = check_gossip(&self.core, &msg) {
                    warn!(peer = %from, reason = %why, "gossip refused");
                    return;
                }
                self.core.handle(now(), Input::GossipReceived { from, msg });
            }
        }
    }

    /// Announces this sentinel on every master's hello channel, in Redis Sentinel's format
    /// (`ip,port,runid,current_epoch,master_name,master_ip,master_port,master_config_epoch`);
    /// the run id starts with `vigil-` so that only Vigil sentinels dial the QUIC address.
    fn publish_hellos(&mut self) {
        for g in self.core.group_names() {
            let Some(v) = self.core.group_view(&g) else {
                continue;
            };
            let Some(m) = self.nodes.addr(v.master).cloned() else {
                continue;
            };
            let payload = format!(
                "{},{},vigil-{:034x},{},{},{},{},{}",
                self.announce.ip(),
                self.announce.port(),
                self.id.0,
                v.term.0,
                g,
                m.host,
                m.port,
                v.epoch.0
            );
            self.call(v.master, "hello", move |b| {
                Box::pin(async move { b.publish(HELLO_CHANNEL, &payload).await })
            });
            // Listen on the current master's channel (Redis propagates PUBLISH to replicas, so
            // one subscription per group hears every sentinel that announces to the master).
            let current = self.hello_subs.get(&g).map(|(n, _)| *n);
            if current != Some(v.master) {
                if let Some((_, old)) = self.hello_subs.remove(&g) {
                    old.cancel();
                }
                let token = self.cancel.child_token();
                let cfg = BackendConfig {
                    auth_user: None,
                    auth_pass: None,
                    timeout: self.settings.timing.backend_timeout,
                    client_name: "vigil-sentinel-hello".into(),
                };
                let cfg = match self.group_settings(&g) {
                    Some(s) => BackendConfig {
                        auth_user: s.auth_user.clone(),
                        auth_pass: s.auth_pass.clone(),
                        ..cfg
                    },
                    None => cfg,
                };
                tokio::spawn(crate::backend::subscribe(
                    m,
                    cfg,
                    HELLO_CHANNEL.to_owned(),
                    self.hello_tx.clone(),
                    token.clone(),
                ));
                self.hello_subs.insert(g, (v.master, token));
            }
        }
    }

    fn on_hello(&mut self, payload: &str) {
        let parts: Vec<&str> = payload.split(',').collect();
        if parts.len() != 8 || !parts[2].starts_with("vigil-") {
            return; // a Redis sentinel, or garbage: nothing to dial
        }
        let Ok(addr) = format!("{}:{}", parts[0], parts[1]).parse::<SocketAddr>() else {
            debug!(payload, "hello with an invalid address");
            return;
        };
        if addr != self.announce {
            self.transport.connect(addr);
        }
    }

    fn describe(&self, node: NodeId) -> String {
        let addr = self.nodes.addr(node);
        let (host, port) = addr
            .map(|a| (a.host.clone(), a.port))
            .unwrap_or_else(|| ("?".into(), 0));
        let Some(group) = self.group_of(node) else {
            return format!("slave {host}:{port} {host} {port}");
        };
        let Some(v) = self.core.group_view(&group) else {
            return format!("slave {host}:{port} {host} {port}");
        };
        if v.master == node {
            return format!("master {group} {host} {port}");
        }
        let m = self.nodes.addr(v.master);
        format!(
            "slave {host}:{port} {host} {port} @ {group} {} {}",
            m.map(|a| a.host.as_str()).unwrap_or("?"),
            m.map(|a| a.port).unwrap_or(0)
        )
    }

    fn node_snapshot(&self, node: NodeId) -> Option<NodeSnapshot> {
        let (report, read_at) = match self.reports.get(&node) {
            Some((r, at)) => (Some(r.clone()), Some(*at)),
            None => (None, None),
        };
        Some(NodeSnapshot {
            id: node,
            addr: self.nodes.addr(node)?.clone(),
            down: self.core.node_down(node),
            report,
            read_at,
        })
    }

    fn refresh(&mut self) {
        let groups = self
            .core
            .group_names()
            .into_iter()
            .filter_map(|g| {
                let v = self.core.group_view(&g)?;
                let settings = self.group_settings(&g)?;
                Some(GroupSnapshot {
                    name: g.to_string(),
                    master: self.nodes.addr(v.master)?.clone(),
                    epoch: v.epoch.0,
                    term: v.term.0,
                    quorum: v.quorum.0.get(),
                    replicas: v
                        .replicas
                        .iter()
                        .filter_map(|r| self.node_snapshot(*r))
                        .collect(),
                    master_node: self.node_snapshot(v.master)?,
                    master_down: v.master_down,
                    odown: v.odown,
                    failing_over: v.failing_over,
                    paused: v.paused,
                    settings,
                })
            })
            .collect();
        let snap = Snapshot {
            id: self.id.0,
            name: self.name.clone(),
            gossip: Some(self.announce),
            groups,
            voters: self.core.voters().iter().map(|v| v.0).collect(),
            peers: self
                .transport
                .peers()
                .into_iter()
                .map(|(id, name, addr, up)| (id.0, name, addr, up))
                .collect(),
            endpoints: self.peer_endpoints.clone(),
            client_addrs: self.client_addrs,
        };
        self.snapshot.send_replace(Arc::new(snap));
    }
}

/// Refuses messages about groups we do not watch, or with terms and epochs absurdly far above
/// ours (a buggy or hostile peer must not push a group's term to `u64::MAX`).
pub fn check_gossip(core: &Sentinel, msg: &Gossip) -> Result<(), String> {
    // Messages that may name a group this sentinel does not know yet: a vote for an
    // operator's `Monitor`, the config that installs (or removes) such a group, a pull.
    let may_be_new = matches!(
        msg,
        Gossip::RequestVote {
            reason: crate::core::ElectionReason::Admin,
            ..
        } | Gossip::ConfigPull { .. }
    ) || matches!(msg, Gossip::Config { agreed, .. } if *agreed > Term(0));
    let (group, number) = match msg {
        Gossip::Opinion { group, .. }
        | Gossip::Maintenance { group, .. }
        | Gossip::ConfigPull { group } => (group, None),
        Gossip::RequestVote { group, term, .. }
        | Gossip::Vote { group, term, .. }
        | Gossip::Abandoned { group, term } => (group, Some(term.0)),
        Gossip::Config { group, epoch, .. }
        | Gossip::ConfigQuery { group, epoch, .. }
        | Gossip::ConfigAnswer { group, epoch, .. } => (group, Some(epoch.0)),
        Gossip::Heartbeat { configs, .. } => {
            for (g, epoch, _, _) in configs {
                if let Some(v) = core.group_view(g) {
                    if epoch.0 > v.term.0.max(v.epoch.0).saturating_add(MAX_TERM_JUMP) {
                        return Err(format!(
                            "epoch {} of group {g} from the far future",
                            epoch.0
                        ));
                    }
                }
            }
            return Ok(());
        }
        Gossip::Hello => return Ok(()),
        Gossip::Membership { msg, .. } => {
            // A floor or a term far above every group's would push the next elections' terms
            // towards overflow.
            let ours = core
                .group_names()
                .iter()
                .filter_map(|g| core.group_term(g))
                .max()
                .unwrap_or(0)
                .max(core.members().floor.0);
            let theirs = match msg {
                crate::core::MemberMsg::Promise { term, .. } => term.0,
                crate::core::MemberMsg::Commit { floor, .. } => floor.0,
                _ => 0,
            };
            if theirs > ours.saturating_add(MAX_TERM_JUMP) {
                return Err(format!(
                    "membership term {theirs} is far above ours ({ours})"
                ));
            }
            return Ok(());
        }
    };
    let ours = match core.group_view(group) {
        Some(view) => view.term.max(Term(view.epoch.0)).0,
        // A removed group is known to the core (which keeps its term), not to the view.
        None if may_be_new || core.knows_group(group) => core.group_term(group).unwrap_or(0),
        None => return Err(format!("unknown group {group}")),
    };
    match number {
        Some(n) if n > ours.saturating_add(MAX_TERM_JUMP) => Err(format!(
            "term/epoch {n} of group {group} is far above ours ({ours})"
        )),
        _ => Ok(()),
    }
}

struct Lookup<'a>(&'a Shell);

impl NodeLookup for Lookup<'_> {
    fn describe(&self, node: NodeId) -> String {
        self.0.describe(node)
    }
    fn addr(&self, node: NodeId) -> Option<NodeAddr> {
        self.0.nodes.addr(node).cloned()
    }
}

/// The dir's state path, for messages.
pub fn state_path(dir: &Path) -> PathBuf {
    state::path_in(dir)
}

#[cfg(test)]
mod tests {
    use std::num::NonZeroU8;

    use super::*;
    use crate::core::{ConfigEpoch, ElectionReason};

    #[test]
    fn nonsense_gossip_is_refused() {
        let group = GroupConfig::new("g", NodeId(0), vec![NodeId(1)], Quorum(NonZeroU8::MIN));
        let cfg = CoreConfig::new([SentinelId(1)].into_iter().collect(), vec![group]);
        let core = Sentinel::new(SentinelId(1), cfg, 1, Instant::now());
        let vote = |group: &str, term: u64| Gossip::RequestVote {
            group: GroupName::new(group),
            term: Term(term),
            epoch: ConfigEpoch(0),
            reason: ElectionReason::MasterDown,
            master: NodeId(1),
            agreed: Term(0),
            members: crate::core::MembersEpoch(1),
        };
        assert!(check_gossip(&core, &vote("g", 1)).is_ok());
        assert!(check_gossip(&core, &vote("g", MAX_TERM_JUMP)).is_ok());
        let far = check_gossip(&core, &vote("g", u64::MAX)).unwrap_err();
        assert!(far.contains("far above"), "{far}");
        let unknown = check_gossip(&core, &vote("nope", 1)).unwrap_err();
        assert!(unknown.contains("unknown group"), "{unknown}");
        let hb = Gossip::Heartbeat {
            voters: vec![SentinelId(2)],
            configs: vec![(
                GroupName::new("g"),
                ConfigEpoch(u64::MAX - 1),
                NodeId(1),
                Term(0),
            )],
            cluster: 1,
            members: crate::core::MembersEpoch(1),
        };
        assert!(check_gossip(&core, &hb).is_err());
        let commit = |floor: u64| Gossip::Membership {
            cluster: 1,
            epoch: crate::core::MembersEpoch(2),
            msg: crate::core::MemberMsg::Commit {
                voters: vec![SentinelId(1)],
                floor: Term(floor),
                fences: vec![],
                incarnations: Vec::new(),
            },
        };
        assert!(check_gossip(&core, &commit(5)).is_ok());
        let far = check_gossip(&core, &commit(u64::MAX)).unwrap_err();
        assert!(far.contains("far above"), "{far}");
        assert!(check_gossip(&core, &Gossip::Hello).is_ok());
    }
}
