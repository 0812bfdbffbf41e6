//! The QUIC gossip transport: moves `vigil.v1.Envelope`s between authenticated sentinels.
//!
//! Owns the quinn endpoint (server and client at once), one connection per peer pair, the
//! member list and its gossip, redialing, framing, and `TransportStats`. It knows nothing of the
//! core: the shell converts envelopes with `convert` and feeds them to the core.
//!
//! Protocol:
//! - Identity: a peer's `SentinelId` is derived from the CN of the certificate it presented
//!   (see `tls`), never from a message. A connection to ourselves (same id) is closed at once
//!   and its address remembered, so we never dial it again.
//! - One connection per pair: when both sides dial each other, both ends keep the connection
//!   initiated by the lower id and close the other with `CLOSE_DUPLICATE`. A new connection
//!   from the same initiator replaces the old one (the initiator restarted or redialed).
//! - Framing: every message is a protobuf `Envelope` behind a u32 big-endian length, at most
//!   `max_message` bytes.
//! - Ordinary messages travel on one long-lived uni stream per direction, opened by the sender
//!   right after the handshake. It keeps them in order (an SDOWN opinion and its retraction must
//!   not swap) at the cost of head-of-line blocking, which is harmless at gossip rates. The
//!   first frame on it is `Hello`, then `Members`.
//! - Requests (`RequestVote`, `ConfigQuery`) each open a bi stream: the requester writes the
//!   request and finishes; the receiver keeps the send half, keyed by (kind, group, term) or
//!   (query id), for `request_timeout`; a matching `Vote`/`ConfigAnswer` sent to that peer is
//!   written on it. An unmatched reply goes on the uni stream like any other message. Replies are
//!   delivered to the requester as ordinary `Message` events.
//! - Membership: `Members` (every known sentinel's name and announce address) is sent on
//!   connect, every `MEMBERS_INTERVAL`, and to every peer when a new peer says hello; unknown
//!   members are dialed. Seeds are redialed with backoff until they answer once; a known peer is
//!   redialed with backoff for as long as it is disconnected (it stays known).
//! - Liveness: keep-alives every second and a 5 s idle timeout, so a dead peer is `PeerDown`
//!   within about 5 s.
//!
//! Hostile input: a frame over `max_message`, a frame cut short, an undecodable or empty
//! envelope, an invalid `Hello` or `Members` (or a `Hello` whose name is not the certificate's),
//! a reply of the wrong kind, or a request stream that does not deliver its request within
//! `request_timeout` is logged with the peer id and its stream is stopped; after `MAX_STRIKES` such offences the connection is closed. QUIC
//! flow control caps what a peer may have in flight: at most `MAX_BI_STREAMS` request streams
//! and `MAX_UNI_STREAMS` uni streams at once (quinn refuses more), each read by its own task,
//! so a peer that stalls a stream stalls only itself. A peer's stalled long-lived stream is not
//! an offence: it simply delivers nothing, and keep-alives still decide liveness. Core messages
//! are delivered only protobuf-decoded: the shell validates them with `convert::decode`.

use std::collections::{HashMap, HashSet, VecDeque};
use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::{BufMut, BytesMut};
use futures_util::StreamExt;
use prost::Message as _;
use quinn::crypto::rustls::{QuicClientConfig, QuicServerConfig};
use quinn::{Connection, ConnectionError, Endpoint, RecvStream, SendStream, VarInt};
use rustls_pki_types::CertificateDer;
use tokio::sync::{Notify, Semaphore, mpsc};
use tokio::time::{Instant, sleep, timeout};
use tokio_util::codec::{FramedRead, LengthDelimitedCodec, LengthDelimitedCodecError};
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, debug, info, info_span, warn};
use vigil_proto::gossip as pb;
use vigil_proto::gossip::envelope::Msg;

use super::convert::{self, PeerHello};
use crate::core::SentinelId;
use crate::tls::{self, Identity, TlsError};

/// Settings of one transport.
#[derive(Clone, Debug)]
pub struct TransportConfig {
    /// The UDP address to bind.
    pub listen: SocketAddr,
    /// The address peers should dial (sent in `Hello`); the bound address when `None`.
    pub announce: Option<SocketAddr>,
    /// This sentinel's certificate, key and trust roots.
    pub identity: Identity,
    /// The largest frame accepted or sent, in bytes (default 1 MiB).
    pub max_message: usize,
    /// The most peers known at once, connected or not (default 64); more are refused.
    pub max_peers: usize,
    /// Addresses to dial at start, retried with backoff until each answers once.
    pub seeds: Vec<SocketAddr>,
    /// How long a request stream may take to deliver its request, and how long its reply is
    /// awaited (default 5 s).
    pub request_timeout: Duration,
}

/// Handle to a running transport; cheap to clone. Every method returns at once.
#[derive(Clone)]
pub struct TransportHandle {
    shared: Arc<Shared>,
}

/// What the transport reports to its owner.
#[derive(Clone, Debug, PartialEq)]
pub enum TransportEvent {
    /// A peer connected and said hello.
    PeerUp {
        /// Its id, from its certificate.
        id: SentinelId,
        /// Its name, from its certificate.
        name: String,
        /// The address it announced.
        addr: SocketAddr,
    },
    /// A peer's connection closed; the transport redials it.
    PeerDown {
        /// Its id.
        id: SentinelId,
    },
    /// A message arrived (never `Hello` or `Members`, which the transport consumes).
    Message {
        /// The authenticated sender.
        from: SentinelId,
        /// The message, not yet validated beyond protobuf decoding.
        env: pb::Envelope,
    },
}

/// Counters for operators and tests; every field only grows.
#[derive(Clone, Copy, Debug, Default, Eq, PartialEq)]
pub struct TransportStats {
    /// Envelopes written to a stream.
    pub sent: u64,
    /// Envelopes delivered as `Message` events.
    pub received: u64,
    /// Envelopes dropped: peer not connected, per-peer queue full, event queue full, too many
    /// requests in flight, or larger than `max_message`.
    pub dropped: u64,
    /// Replies written on the stream of the request they answer.
    pub replies_on_request_stream: u64,
    /// Replies read on the stream of the request they answer.
    pub replies_received_on_request_stream: u64,
    /// Offending frames or streams from peers (oversize, undecodable, invalid, stalled).
    pub bad_frames: u64,
    /// Connections refused or failed during the handshake (certificate, timeout, protocol).
    pub handshakes_failed: u64,
    /// Connections closed because the pair already had one.
    pub duplicates_closed: u64,
    /// Dials that reached ourselves.
    pub self_dials: u64,
}

/// One live connection, for introspection.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub struct LinkInfo {
    /// The peer.
    pub peer: SentinelId,
    /// Who dialed: this sentinel or the peer.
    pub initiator: SentinelId,
    /// The peer's UDP address on this connection.
    pub remote: SocketAddr,
}

/// Why the transport could not start.
#[derive(Debug, thiserror::Error)]
pub enum GossipError {
    /// The UDP socket could not be bound.
    #[error("cannot bind gossip endpoint to {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The I/O error.
        source: io::Error,
    },
    /// The identity could not produce a TLS configuration.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// The TLS configuration is unusable for QUIC.
    #[error("tls configuration unusable for quic: {0}")]
    Quic(String),
    /// `max_message` is out of range.
    #[error("max_message {got} out of range {min}..={max}")]
    MaxMessage {
        /// The configured value.
        got: usize,
        /// The smallest allowed.
        min: usize,
        /// The largest allowed.
        max: usize,
    },
    /// `max_peers` is zero.
    #[error("max_peers must be at least 1")]
    MaxPeers,
    /// `request_timeout` is zero or longer than a minute.
    #[error("request_timeout {0:?} out of range (0, 60 s]")]
    RequestTimeout(Duration),
}

/// Starts the transport: binds the endpoint, dials the seeds, and returns the handle and the
/// event stream. Everything stops when `cancel` fires; drop the handle to release the socket.
pub async fn start(
    cfg: TransportConfig,
    cancel: CancellationToken,
) -> Result<(TransportHandle, mpsc::Receiver<TransportEvent>), GossipError> {
    cfg.validate()?;
    let identity = &cfg.identity;
    if identity.is_dev() {
        warn!(
            name = identity.name(),
            "DEV MODE: gossip accepts any peer certificate; anyone can join and claim any name"
        );
    }
    let transport = Arc::new(quic_transport());
    let server_crypto = QuicServerConfig::try_from(identity.server_config()?)
        .map_err(|e| GossipError::Quic(e.to_string()))?;
    let mut server = quinn::ServerConfig::with_crypto(Arc::new(server_crypto));
    server.transport_config(transport.clone());
    server.max_incoming(MAX_INCOMING);
    let client_crypto = QuicClientConfig::try_from(identity.client_config()?)
        .map_err(|e| GossipError::Quic(e.to_string()))?;
    let mut client = quinn::ClientConfig::new(Arc::new(client_crypto));
    client.transport_config(transport);
    let bind_err = |source| GossipError::Bind {
        addr: cfg.listen,
        source,
    };
    let mut endpoint = Endpoint::server(server, cfg.listen).map_err(bind_err)?;
    endpoint.set_default_client_config(client);
    let local = endpoint.local_addr().map_err(bind_err)?;
    let announce = cfg.announce.unwrap_or(local);
    if announce.ip().is_unspecified() {
        warn!(%announce, "gossip announce address is unspecified; peers will dial back the source address they see, set an announce address if that is not reachable");
    }
    let (events, rx) = mpsc::channel(EVENT_QUEUE);
    let shared = Arc::new(Shared {
        me: identity.sentinel_id(),
        name: identity.name().to_owned(),
        announce,
        local,
        endpoint,
        max_message: cfg.max_message,
        max_peers: cfg.max_peers,
        request_timeout: cfg.request_timeout,
        events,
        cancel,
        runtime: tokio::runtime::Handle::current(),
        state: Mutex::new(State::default()),
        counters: Counters::default(),
    });
    info!(name = %shared.name, id = %shared.me, %local, %announce, "gossip transport started");
    shared.runtime.spawn(accept_loop(shared.clone()));
    shared.runtime.spawn(shutdown(shared.clone()));
    let handle = TransportHandle { shared };
    for seed in cfg.seeds {
        handle.connect(seed);
    }
    Ok((handle, rx))
}

impl TransportConfig {
    /// A config with the defaults: no announce override, 1 MiB messages, 64 peers, no seeds,
    /// 5 s request timeout.
    pub fn new(listen: SocketAddr, identity: Identity) -> TransportConfig {
        TransportConfig {
            listen,
            announce: None,
            identity,
            max_message: 1 << 20,
            max_peers: 64,
            seeds: Vec::new(),
            request_timeout: Duration::from_secs(5),
        }
    }

    /// Checks every bound.
    pub fn validate(&self) -> Result<(), GossipError> {
        const MIN: usize = 1024;
        const MAX: usize = 64 << 20;
        if !(MIN..=MAX).contains(&self.max_message) {
            return Err(GossipError::MaxMessage {
                got: self.max_message,
                min: MIN,
                max: MAX,
            });
        }
        if self.max_peers == 0 {
            return Err(GossipError::MaxPeers);
        }
        if self.request_timeout.is_zero() || self.request_timeout > Duration::from_secs(60) {
            return Err(GossipError::RequestTimeout(self.request_timeout));
        }
        Ok(())
    }
}

impl TransportHandle {
    /// The bound UDP address.
    pub fn local_addr(&self) -> SocketAddr {
        self.shared.local
    }

    /// This sentinel's id.
    pub fn my_id(&self) -> SentinelId {
        self.shared.me
    }

    /// Dials `addr` (a seed, or an address from a hello) in the background, retrying with
    /// backoff until it answers once. Idempotent: an address already being dialed, ours, or a
    /// connected peer's is ignored.
    pub fn connect(&self, addr: SocketAddr) {
        let connected = {
            let st = self.shared.lock();
            st.peers
                .values()
                .any(|p| p.addr == addr && p.link.is_some())
        };
        if !connected {
            spawn_dial(&self.shared, addr, None, false);
        }
    }

    /// Queues `env` for peer `to`, best effort: never blocks. A message to a peer that is not
    /// connected is dropped; when the peer's queue is full (`PEER_QUEUE`), the oldest queued
    /// message is dropped, since newer gossip supersedes older. Both count in `dropped`.
    pub fn send(&self, to: SentinelId, env: pb::Envelope) {
        let link = {
            let st = self.shared.lock();
            st.peers.get(&to).and_then(|p| p.link.clone())
        };
        let Some(link) = link else {
            debug!(peer = %to, "gossip to a disconnected peer dropped");
            self.shared.counters.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        };
        link.push(&self.shared, env);
    }

    /// Every known peer: id, name, announced address, and whether it is connected (said hello
    /// on a live connection).
    pub fn peers(&self) -> Vec<(SentinelId, String, SocketAddr, bool)> {
        let st = self.shared.lock();
        let mut out: Vec<_> = st
            .peers
            .iter()
            .filter(|(_, p)| p.known)
            .map(|(id, p)| (*id, p.name.clone(), p.addr, p.up && p.link.is_some()))
            .collect();
        out.sort_by_key(|p| p.0);
        out
    }

    /// Every live connection (at most one per peer).
    pub fn connections(&self) -> Vec<LinkInfo> {
        let st = self.shared.lock();
        let mut out: Vec<_> = st
            .peers
            .values()
            .filter_map(|p| p.link.as_ref())
            .map(|l| LinkInfo {
                peer: l.peer,
                initiator: l.initiator,
                remote: l.conn.remote_address(),
            })
            .collect();
        out.sort_by_key(|l| l.peer);
        out
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> TransportStats {
        self.shared.counters.snapshot()
    }
}

impl fmt::Debug for TransportHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TransportHandle")
            .field("me", &self.shared.me)
            .field("local", &self.shared.local)
            .finish_non_exhaustive()
    }
}

/// State shared by the handle and every task of one transport.
struct Shared {
    me: SentinelId,
    name: String,
    announce: SocketAddr,
    local: SocketAddr,
    endpoint: Endpoint,
    max_message: usize,
    max_peers: usize,
    request_timeout: Duration,
    events: mpsc::Sender<TransportEvent>,
    cancel: CancellationToken,
    /// Tasks are spawned from `send`/`connect`, which may run outside a runtime context.
    runtime: tokio::runtime::Handle,
    /// A std `Mutex`: every critical section is short and none holds it across an `.await`.
    state: Mutex<State>,
    counters: Counters,
}

#[derive(Default)]
struct State {
    /// Peers by id: connected ones, and known ones we redial.
    peers: HashMap<SentinelId, Peer>,
    /// Addresses with a dial loop running.
    dialing: HashSet<SocketAddr>,
    /// Addresses that turned out to be ourselves.
    self_addrs: HashSet<SocketAddr>,
}

struct Peer {
    name: String,
    /// The announced address (from its hello or a member list), or where we reached it.
    addr: SocketAddr,
    link: Option<Arc<Link>>,
    /// `PeerUp` was reported and `PeerDown` not yet.
    up: bool,
    /// Said hello once, or vouched for by a member list: redialed when down, and gossiped.
    /// A connection that never said hello leaves no trace when it closes.
    known: bool,
}

/// One connection to a peer, with its outgoing queue and pending replies.
struct Link {
    conn: Connection,
    peer: SentinelId,
    /// The CN of the certificate the peer presented.
    name: String,
    initiator: SentinelId,
    queue: Mutex<VecDeque<pb::Envelope>>,
    notify: Notify,
    pending: Mutex<HashMap<ReplyKey, (Instant, SendStream)>>,
    /// Bounds the request streams we have in flight to this peer.
    requests: Arc<Semaphore>,
    strikes: AtomicU32,
    hello: AtomicBool,
}

/// What identifies the request a reply answers (per link, so per peer).
#[derive(Clone, Debug, Eq, Hash, PartialEq)]
enum ReplyKey {
    Vote { group: String, term: u64 },
    Config { id: u64 },
}

#[derive(Default)]
struct Counters {
    sent: AtomicU64,
    received: AtomicU64,
    dropped: AtomicU64,
    replies_on_request_stream: AtomicU64,
    replies_received_on_request_stream: AtomicU64,
    bad_frames: AtomicU64,
    handshakes_failed: AtomicU64,
    duplicates_closed: AtomicU64,
    self_dials: AtomicU64,
}

/// The outcome of registering an established connection.
enum Registered {
    Up,
    Duplicate,
    SelfDial,
    Refused,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock would be our bug; the state stays usable.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn hello(&self) -> pb::Envelope {
        pb::Envelope {
            msg: Some(Msg::Hello(pb::Hello {
                name: self.name.clone(),
                announce_addr: self.announce.to_string(),
                version: pb::PROTOCOL_VERSION,
            })),
        }
    }

    /// Every known peer but `to`, as a `Members` message.
    fn members(&self, to: SentinelId) -> pb::Envelope {
        let st = self.lock();
        let members = st
            .peers
            .iter()
            .filter(|(id, p)| **id != to && p.known)
            .take(convert::MAX_MEMBERS)
            .map(|(_, p)| pb::Member {
                name: p.name.clone(),
                addr: p.addr.to_string(),
            })
            .collect();
        pb::Envelope {
            msg: Some(Msg::Members(pb::Members { members })),
        }
    }

    fn deliver(&self, from: SentinelId, env: pb::Envelope) {
        match self.events.try_send(TransportEvent::Message { from, env }) {
            Ok(()) => {
                self.counters.received.fetch_add(1, Ordering::Relaxed);
            }
            // The owner is not keeping up: drop rather than stall the peer's streams; gossip is
            // best effort and the core retries what matters.
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.counters.dropped.fetch_add(1, Ordering::Relaxed);
                debug!(peer = %from, "event queue full, gossip dropped");
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {}
        }
    }

    /// Reports a peer state change; these are never dropped, so this waits for room in the
    /// event queue, unless the transport is shutting down.
    async fn report(&self, event: TransportEvent) {
        tokio::select! {
            biased;
            () = self.cancel.cancelled() => {}
            // An error means the owner is gone: nobody to tell.
            _ = self.events.send(event) => {}
        }
    }
}

impl Link {
    fn push(&self, shared: &Shared, env: pb::Envelope) {
        {
            let mut q = self.queue.lock().unwrap_or_else(|p| p.into_inner());
            if q.len() >= PEER_QUEUE {
                q.pop_front();
                shared.counters.dropped.fetch_add(1, Ordering::Relaxed);
            }
            q.push_back(env);
        }
        self.notify.notify_one();
    }

    fn pop(&self) -> Option<pb::Envelope> {
        self.queue
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .pop_front()
    }

    /// Keeps the send half of a request stream for the reply. Bounded by `MAX_PENDING`: past
    /// it the stream is dropped (finished), and the reply goes on the uni stream instead.
    fn keep_pending(&self, key: ReplyKey, send: SendStream, ttl: Duration) {
        let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        pending.retain(|_, (at, _)| now.duration_since(*at) < ttl);
        if pending.len() < MAX_PENDING {
            pending.insert(key, (now, send));
        }
    }

    fn take_pending(&self, key: &ReplyKey, ttl: Duration) -> Option<SendStream> {
        let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        let (at, send) = pending.remove(key)?;
        (at.elapsed() < ttl).then_some(send)
    }

    /// Records an offence; closes the connection after `MAX_STRIKES`.
    fn strike(&self, shared: &Shared, what: &str) {
        shared.counters.bad_frames.fetch_add(1, Ordering::Relaxed);
        let strikes = self.strikes.fetch_add(1, Ordering::Relaxed) + 1;
        warn!(peer = %self.peer, name = %self.name, strikes, "bad gossip input ({what}); stream closed");
        if strikes >= MAX_STRIKES {
            warn!(peer = %self.peer, name = %self.name, "repeated bad gossip input; connection closed");
            self.conn
                .close(VarInt::from_u32(CLOSE_PROTOCOL), b"protocol violation");
        }
    }
}

impl Counters {
    fn snapshot(&self) -> TransportStats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        TransportStats {
            sent: get(&self.sent),
            received: get(&self.received),
            dropped: get(&self.dropped),
            replies_on_request_stream: get(&self.replies_on_request_stream),
            replies_received_on_request_stream: get(&self.replies_received_on_request_stream),
            bad_frames: get(&self.bad_frames),
            handshakes_failed: get(&self.handshakes_failed),
            duplicates_closed: get(&self.duplicates_closed),
            self_dials: get(&self.self_dials),
        }
    }
}

async fn shutdown(shared: Arc<Shared>) {
    shared.cancel.cancelled().await;
    shared
        .endpoint
        .close(VarInt::from_u32(CLOSE_SHUTDOWN), b"shutdown");
    if timeout(SHUTDOWN_GRACE, shared.endpoint.wait_idle())
        .await
        .is_err()
    {
        debug!("gossip endpoint not idle after the grace period");
    }
    info!("gossip transport stopped");
}

async fn accept_loop(shared: Arc<Shared>) {
    loop {
        let incoming = tokio::select! {
            biased;
            () = shared.cancel.cancelled() => return,
            incoming = shared.endpoint.accept() => match incoming {
                Some(incoming) => incoming,
                None => return,
            },
        };
        let shared = shared.clone();
        let remote = incoming.remote_address();
        shared.runtime.clone().spawn(async move {
            match timeout(HANDSHAKE_TIMEOUT, incoming).await {
                Ok(Ok(conn)) => {
                    register(&shared, conn, false);
                }
                Ok(Err(e)) => {
                    shared
                        .counters
                        .handshakes_failed
                        .fetch_add(1, Ordering::Relaxed);
                    warn!(%remote, error = %e, "gossip connection refused in the handshake");
                }
                Err(_) => {
                    shared
                        .counters
                        .handshakes_failed
                        .fetch_add(1, Ordering::Relaxed);
                    warn!(%remote, "gossip handshake timed out");
                }
            }
        });
    }
}

/// The id and name in the certificate a peer presented.
fn peer_of(conn: &Connection) -> Result<(SentinelId, String), String> {
    let identity = conn
        .peer_identity()
        .ok_or_else(|| "no peer certificate".to_owned())?;
    let certs = identity
        .downcast::<Vec<CertificateDer<'static>>>()
        .map_err(|_| "unexpected peer identity type".to_owned())?;
    let leaf = certs
        .first()
        .ok_or_else(|| "empty certificate chain".to_owned())?;
    let name = tls::peer_name(leaf)?;
    Ok((tls::sentinel_id(&name), name))
}

/// Whether a new connection replaces the current one. Both ends of a pair compute the same
/// answer, since it depends only on who initiated each: the one initiated by the lower id wins,
/// and between two from the same initiator the newer one (the initiator restarted or redialed).
fn replaces(current_initiator: SentinelId, new_initiator: SentinelId) -> bool {
    new_initiator <= current_initiator
}

/// Registers an established connection: refuses ourselves and duplicates, then starts the
/// link's tasks.
fn register(shared: &Arc<Shared>, conn: Connection, outbound: bool) -> Registered {
    let (id, name) = match peer_of(&conn) {
        Ok(p) => p,
        Err(e) => {
            // The verifiers already checked the name; this is a belt-and-braces refusal.
            warn!(remote = %conn.remote_address(), error = %e, "gossip peer without a usable certificate");
            conn.close(VarInt::from_u32(CLOSE_PROTOCOL), b"bad certificate");
            shared
                .counters
                .handshakes_failed
                .fetch_add(1, Ordering::Relaxed);
            return Registered::Refused;
        }
    };
    if id == shared.me {
        conn.close(VarInt::from_u32(CLOSE_SELF), b"self");
        shared.counters.self_dials.fetch_add(1, Ordering::Relaxed);
        if outbound {
            shared.lock().self_addrs.insert(conn.remote_address());
            debug!(addr = %conn.remote_address(), "dialed ourselves; address ignored from now on");
        }
        return Registered::SelfDial;
    }
    let initiator = if outbound { shared.me } else { id };
    let link = Arc::new(Link {
        conn: conn.clone(),
        peer: id,
        name: name.clone(),
        initiator,
        queue: Mutex::new(VecDeque::new()),
        notify: Notify::new(),
        pending: Mutex::new(HashMap::new()),
        requests: Arc::new(Semaphore::new(MAX_BI_STREAMS as usize)),
        strikes: AtomicU32::new(0),
        hello: AtomicBool::new(false),
    });
    {
        let mut st = shared.lock();
        let count = st.peers.len();
        match st.peers.get_mut(&id) {
            Some(peer) => {
                if let Some(old) = &peer.link {
                    let old_alive = old.conn.close_reason().is_none();
                    if old_alive && !replaces(old.initiator, initiator) {
                        drop(st);
                        debug!(peer = %id, "duplicate gossip connection closed");
                        conn.close(VarInt::from_u32(CLOSE_DUPLICATE), b"duplicate");
                        shared
                            .counters
                            .duplicates_closed
                            .fetch_add(1, Ordering::Relaxed);
                        return Registered::Duplicate;
                    }
                    if old_alive {
                        debug!(peer = %id, "gossip connection replaced by a preferred one");
                        old.conn
                            .close(VarInt::from_u32(CLOSE_DUPLICATE), b"duplicate");
                        shared
                            .counters
                            .duplicates_closed
                            .fetch_add(1, Ordering::Relaxed);
                    }
                }
                peer.link = Some(link.clone());
                peer.name = name;
            }
            None => {
                if count >= shared.max_peers {
                    drop(st);
                    warn!(peer = %id, max = shared.max_peers, "too many gossip peers; connection refused");
                    conn.close(VarInt::from_u32(CLOSE_FULL), b"too many peers");
                    return Registered::Refused;
                }
                st.peers.insert(
                    id,
                    Peer {
                        name,
                        addr: conn.remote_address(),
                        link: Some(link.clone()),
                        up: false,
                        known: false,
                    },
                );
            }
        }
    }
    let span = info_span!("peer", peer = %id, name = %link.name);
    let rt = &shared.runtime;
    rt.spawn(sender(shared.clone(), link.clone()).instrument(span.clone()));
    rt.spawn(accept_uni(shared.clone(), link.clone()).instrument(span.clone()));
    rt.spawn(accept_bi(shared.clone(), link.clone()).instrument(span.clone()));
    rt.spawn(watch(shared.clone(), link).instrument(span));
    Registered::Up
}

/// Starts a dial loop for `addr` unless one runs already or the address is ours.
/// The most addresses dialled at once.
const MAX_DIALING: usize = 256;

fn spawn_dial(shared: &Arc<Shared>, addr: SocketAddr, expect: Option<SentinelId>, delay: bool) {
    if addr == shared.local || addr == shared.announce || shared.cancel.is_cancelled() {
        return;
    }
    {
        let mut st = shared.lock();
        if st.self_addrs.contains(&addr) || st.dialing.contains(&addr) {
            return;
        }
        // Addresses come from seeds, members and hello messages on data nodes: bound the
        // dial loops, so a flood of made-up hellos cannot make the sentinel dial without end.
        if st.dialing.len() >= MAX_DIALING {
            warn!(%addr, "too many addresses being dialled; not dialling this one");
            return;
        }
        st.dialing.insert(addr);
    }
    shared
        .runtime
        .spawn(dial_loop(shared.clone(), addr, expect, delay));
}

/// Removes a dial loop's address from `State::dialing` however the loop ends.
struct DialGuard {
    shared: Arc<Shared>,
    addr: SocketAddr,
}

impl Drop for DialGuard {
    fn drop(&mut self) {
        self.shared.lock().dialing.remove(&self.addr);
    }
}

/// Dials `addr` with backoff until it answers (`expect: None`, a seed) or until the peer
/// `expect` is connected again, is forgotten, or moved to another address.
async fn dial_loop(shared: Arc<Shared>, addr: SocketAddr, expect: Option<SentinelId>, delay: bool) {
    let _guard = DialGuard {
        shared: shared.clone(),
        addr,
    };
    let mut backoff = DIAL_BACKOFF_MIN;
    // After a drop, give a connection the peer may be opening to us a moment to arrive.
    if delay && !pause(&shared, backoff).await {
        return;
    }
    loop {
        if let Some(id) = expect {
            let st = shared.lock();
            match st.peers.get(&id) {
                Some(p) if p.link.is_none() && p.addr == addr => {}
                _ => return,
            }
        }
        let attempt = async {
            let connecting = shared
                .endpoint
                .connect(addr, tls::SERVER_NAME)
                .map_err(|e| e.to_string())?;
            match timeout(DIAL_TIMEOUT, connecting).await {
                Ok(Ok(conn)) => Ok(conn),
                Ok(Err(e)) => {
                    if !matches!(e, ConnectionError::TimedOut) {
                        shared
                            .counters
                            .handshakes_failed
                            .fetch_add(1, Ordering::Relaxed);
                        warn!(%addr, error = %e, "gossip dial failed");
                    }
                    Err(e.to_string())
                }
                Err(_) => Err("timed out".to_owned()),
            }
        };
        let result = tokio::select! {
            biased;
            () = shared.cancel.cancelled() => return,
            result = attempt => result,
        };
        match result {
            Ok(conn) => match register(&shared, conn, true) {
                Registered::Up | Registered::Duplicate | Registered::SelfDial => return,
                Registered::Refused => {}
            },
            Err(e) => debug!(%addr, error = %e, ?backoff, "gossip dial failed; retrying"),
        }
        if !pause(&shared, backoff).await {
            return;
        }
        backoff = (backoff * 2).min(DIAL_BACKOFF_MAX);
    }
}

/// Sleeps unless cancelled; `false` when cancelled.
async fn pause(shared: &Shared, d: Duration) -> bool {
    tokio::select! {
        biased;
        () = shared.cancel.cancelled() => false,
        () = sleep(d) => true,
    }
}

/// Waits for the connection to end (closing it if no hello comes), then unregisters it,
/// reports `PeerDown` and redials a known peer.
async fn watch(shared: Arc<Shared>, link: Arc<Link>) {
    tokio::select! {
        _ = link.conn.closed() => {}
        () = sleep(HELLO_TIMEOUT) => {
            if !link.hello.load(Ordering::Relaxed) {
                warn!("no hello from gossip peer; connection closed");
                link.conn.close(VarInt::from_u32(CLOSE_PROTOCOL), b"no hello");
            }
        }
    }
    let reason = link.conn.closed().await;
    let (down, redial) = {
        let mut st = shared.lock();
        match st.peers.get_mut(&link.peer) {
            Some(p) if p.link.as_ref().is_some_and(|l| Arc::ptr_eq(l, &link)) => {
                p.link = None;
                let down = std::mem::replace(&mut p.up, false);
                let redial = p.known.then_some(p.addr);
                if !p.known {
                    st.peers.remove(&link.peer);
                }
                (down, redial)
            }
            _ => (false, None),
        }
    };
    if down {
        info!(%reason, "gossip peer down");
        shared
            .report(TransportEvent::PeerDown { id: link.peer })
            .await;
    }
    if let Some(addr) = redial {
        spawn_dial(&shared, addr, Some(link.peer), true);
    }
}

/// Writes our side: `Hello`, `Members`, then queued messages, with `Members` again every
/// `MEMBERS_INTERVAL`.
async fn sender(shared: Arc<Shared>, link: Arc<Link>) {
    let mut uni = match link.conn.open_uni().await {
        Ok(s) => s,
        Err(e) => {
            debug!(error = %e, "cannot open the gossip stream");
            return;
        }
    };
    if let Err(e) = write(&shared, &mut uni, &shared.hello()).await {
        debug!(error = %e, "cannot send hello");
        return;
    }
    // The first tick fires at once: members go right after hello.
    let mut members = tokio::time::interval(MEMBERS_INTERVAL);
    members.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            biased;
            _ = link.conn.closed() => return,
            _ = members.tick() => {
                if let Err(e) = write(&shared, &mut uni, &shared.members(link.peer)).await {
                    stream_failed(&link, &e);
                    return;
                }
            }
            () = link.notify.notified() => {
                while let Some(env) = link.pop() {
                    if let Err(e) = dispatch(&shared, &link, &mut uni, env).await {
                        stream_failed(&link, &e);
                        return;
                    }
                }
            }
        }
    }
}

/// Our long-lived stream failed (the peer stopped it or stopped reading): the link is useless,
/// so close it and let the redial make a fresh one.
fn stream_failed(link: &Link, error: &str) {
    warn!(error, "gossip stream to peer failed; connection closed");
    link.conn
        .close(VarInt::from_u32(CLOSE_PROTOCOL), b"stream failed");
}

/// Sends one queued message: a request on its own bi stream, a reply on its request's stream
/// when it is pending, anything else on the uni stream.
async fn dispatch(
    shared: &Arc<Shared>,
    link: &Arc<Link>,
    uni: &mut SendStream,
    env: pb::Envelope,
) -> Result<(), String> {
    let key = match &env.msg {
        Some(Msg::RequestVote(_) | Msg::ConfigQuery(_)) => {
            let Ok(permit) = link.requests.clone().try_acquire_owned() else {
                shared.counters.dropped.fetch_add(1, Ordering::Relaxed);
                debug!("too many gossip requests in flight; request dropped");
                return Ok(());
            };
            let task = request(shared.clone(), link.clone(), env, permit);
            shared.runtime.spawn(task.in_current_span());
            return Ok(());
        }
        Some(Msg::Vote(v)) => Some(ReplyKey::Vote {
            group: v.group.clone(),
            term: v.term,
        }),
        Some(Msg::ConfigAnswer(a)) => Some(ReplyKey::Config { id: a.id }),
        _ => None,
    };
    let pending = key.and_then(|k| link.take_pending(&k, shared.request_timeout));
    let Some(mut stream) = pending else {
        return write(shared, uni, &env).await;
    };
    let runtime = shared.runtime.clone();
    let shared = shared.clone();
    let reply = async move {
        let written = timeout(shared.request_timeout, async {
            write(&shared, &mut stream, &env).await?;
            stream.finish().map_err(|e| e.to_string())
        })
        .await;
        match written {
            Ok(Ok(())) => {
                shared
                    .counters
                    .replies_on_request_stream
                    .fetch_add(1, Ordering::Relaxed);
            }
            Ok(Err(e)) => debug!(error = %e, "reply not delivered"),
            Err(_) => debug!("reply stream stalled"),
        }
    };
    // Spawned, so that a requester that stops reading stalls only its own stream.
    runtime.spawn(reply.in_current_span());
    Ok(())
}

/// Sends a request on a new bi stream and delivers the reply read on it.
async fn request(
    shared: Arc<Shared>,
    link: Arc<Link>,
    env: pb::Envelope,
    _permit: tokio::sync::OwnedSemaphorePermit,
) {
    let is_vote = matches!(env.msg, Some(Msg::RequestVote(_)));
    let exchange = async {
        let (mut send, recv) = link.conn.open_bi().await.map_err(|e| e.to_string())?;
        write(&shared, &mut send, &env).await?;
        send.finish().map_err(|e| e.to_string())?;
        let mut frames = FramedRead::new(recv, codec(shared.max_message));
        match frames.next().await {
            None => Ok(None),
            Some(Ok(buf)) => pb::Envelope::decode(buf.freeze())
                .map(Some)
                .map_err(|e| format!("undecodable reply: {e}")),
            Some(Err(e)) => Err(format!("bad reply frame: {e}")),
        }
    };
    // The reply comes after the peer's core handled the request (a vote is fsync'd first).
    let reply = match timeout(shared.request_timeout * 2, exchange).await {
        Ok(Ok(Some(reply))) => reply,
        Ok(Ok(None)) => return,
        Ok(Err(e)) => {
            debug!(error = %e, "gossip request failed");
            return;
        }
        Err(_) => {
            debug!("no reply to gossip request");
            return;
        }
    };
    let matches = match &reply.msg {
        Some(Msg::Vote(_)) => is_vote,
        Some(Msg::ConfigAnswer(_)) => !is_vote,
        _ => false,
    };
    if !matches {
        link.strike(&shared, "reply of the wrong kind");
        return;
    }
    shared
        .counters
        .replies_received_on_request_stream
        .fetch_add(1, Ordering::Relaxed);
    shared.deliver(link.peer, reply);
}

async fn accept_uni(shared: Arc<Shared>, link: Arc<Link>) {
    loop {
        let recv = tokio::select! {
            biased;
            () = shared.cancel.cancelled() => return,
            recv = link.conn.accept_uni() => match recv {
                Ok(recv) => recv,
                Err(_) => return,
            },
        };
        let task = read_uni(shared.clone(), link.clone(), recv);
        shared.runtime.spawn(task.in_current_span());
    }
}

async fn accept_bi(shared: Arc<Shared>, link: Arc<Link>) {
    loop {
        let (send, recv) = tokio::select! {
            biased;
            () = shared.cancel.cancelled() => return,
            stream = link.conn.accept_bi() => match stream {
                Ok(stream) => stream,
                Err(_) => return,
            },
        };
        let task = read_request(shared.clone(), link.clone(), send, recv);
        shared.runtime.spawn(task.in_current_span());
    }
}

/// Reads a peer's uni stream to its end.
async fn read_uni(shared: Arc<Shared>, link: Arc<Link>, recv: RecvStream) {
    let mut frames = FramedRead::new(recv, codec(shared.max_message));
    while let Some(frame) = frames.next().await {
        let offence = match frame {
            Ok(buf) => match pb::Envelope::decode(buf.freeze()) {
                Ok(env) => match incoming(&shared, &link, env, None).await {
                    Ok(()) => continue,
                    Err(e) => e,
                },
                Err(e) => format!("undecodable envelope: {e}"),
            },
            Err(e) => match frame_offence(&e) {
                Some(offence) => offence,
                // The stream or the connection ended: not the peer's fault.
                None => return,
            },
        };
        link.strike(&shared, &offence);
        let _ = frames.into_inner().stop(VarInt::from_u32(CLOSE_PROTOCOL));
        return;
    }
}

/// Reads the one request of a bi stream and keeps its send half for the reply.
async fn read_request(shared: Arc<Shared>, link: Arc<Link>, send: SendStream, recv: RecvStream) {
    let mut frames = FramedRead::new(recv, codec(shared.max_message));
    let offence = match timeout(shared.request_timeout, frames.next()).await {
        Err(_) => "request stream stalled".to_owned(),
        Ok(None) => return,
        Ok(Some(Err(e))) => match frame_offence(&e) {
            Some(offence) => offence,
            None => return,
        },
        Ok(Some(Ok(buf))) => match pb::Envelope::decode(buf.freeze()) {
            Ok(env) => match incoming(&shared, &link, env, Some(send)).await {
                Ok(()) => return,
                Err(e) => e,
            },
            Err(e) => format!("undecodable envelope: {e}"),
        },
    };
    link.strike(&shared, &offence);
    let _ = frames.into_inner().stop(VarInt::from_u32(CLOSE_PROTOCOL));
}

/// What a framing error says about the peer: `Some` for its offence, `None` when the stream or
/// connection simply ended.
fn frame_offence(e: &io::Error) -> Option<String> {
    let oversize = e
        .get_ref()
        .is_some_and(|inner| inner.is::<LengthDelimitedCodecError>());
    if oversize {
        return Some(format!("frame over the size limit: {e}"));
    }
    // quinn reports a reset stream or a lost connection as `ConnectionReset`, `NotConnected` or
    // `InvalidInput`; the codec reports a stream that ended inside a frame as `Other`.
    match e.kind() {
        io::ErrorKind::Other => Some(format!("stream ended inside a frame: {e}")),
        _ => None,
    }
}

/// Handles one envelope from `link`'s peer; `reply` is the send half of its bi stream, if any.
async fn incoming(
    shared: &Arc<Shared>,
    link: &Arc<Link>,
    env: pb::Envelope,
    reply: Option<SendStream>,
) -> Result<(), String> {
    match env.msg {
        None => Err("empty envelope".to_owned()),
        Some(Msg::Hello(h)) => {
            let hello = convert::peer_hello(h).map_err(|e| format!("invalid hello: {e}"))?;
            if hello.name != link.name {
                return Err(format!(
                    "hello name {:?} differs from the certificate's",
                    hello.name
                ));
            }
            on_hello(shared, link, hello).await;
            Ok(())
        }
        Some(Msg::Members(m)) => {
            let members = convert::members(m).map_err(|e| format!("invalid members: {e}"))?;
            on_members(shared, members);
            Ok(())
        }
        Some(msg) => {
            if let Some(send) = reply {
                let key = match &msg {
                    Msg::RequestVote(r) => Some(ReplyKey::Vote {
                        group: r.group.clone(),
                        term: r.term,
                    }),
                    Msg::ConfigQuery(q) => Some(ReplyKey::Config { id: q.id }),
                    _ => None,
                };
                if let Some(key) = key {
                    link.keep_pending(key, send, shared.request_timeout);
                }
            }
            shared.deliver(link.peer, pb::Envelope { msg: Some(msg) });
            Ok(())
        }
    }
}

async fn on_hello(shared: &Arc<Shared>, link: &Arc<Link>, hello: PeerHello) {
    if hello.version != pb::PROTOCOL_VERSION {
        warn!(
            version = hello.version,
            ours = pb::PROTOCOL_VERSION,
            "gossip peer speaks another protocol version"
        );
    }
    link.hello.store(true, Ordering::Relaxed);
    // A peer bound to every interface that announces 0.0.0.0 is reachable where it came from.
    let announce = if hello.announce.ip().is_unspecified() {
        SocketAddr::new(link.conn.remote_address().ip(), hello.announce.port())
    } else {
        hello.announce
    };
    let (up, others) = {
        let mut st = shared.lock();
        let Some(peer) = st.peers.get_mut(&link.peer) else {
            return;
        };
        if !peer.link.as_ref().is_some_and(|l| Arc::ptr_eq(l, link)) {
            return;
        }
        let newly_known = !peer.known || peer.addr != announce;
        peer.addr = announce;
        peer.known = true;
        let up = !std::mem::replace(&mut peer.up, true);
        // A new member: tell everyone at once rather than at the next round.
        let others: Vec<Arc<Link>> = if newly_known {
            st.peers
                .iter()
                .filter(|(id, _)| **id != link.peer)
                .filter_map(|(_, p)| p.link.clone())
                .collect()
        } else {
            Vec::new()
        };
        (up, others)
    };
    for other in others {
        other.push(shared, shared.members(other.peer));
    }
    if up {
        info!(addr = %announce, "gossip peer up");
        shared
            .report(TransportEvent::PeerUp {
                id: link.peer,
                name: hello.name,
                addr: announce,
            })
            .await;
    }
}

fn on_members(shared: &Arc<Shared>, members: Vec<(String, SocketAddr)>) {
    let mut dial = Vec::new();
    {
        let mut st = shared.lock();
        for (name, addr) in members {
            let id = tls::sentinel_id(&name);
            if id == shared.me
                || addr == shared.announce
                || addr.ip().is_unspecified()
                || st.peers.contains_key(&id)
            {
                continue;
            }
            if st.peers.len() >= shared.max_peers {
                break;
            }
            debug!(peer = %id, %name, %addr, "new gossip member");
            st.peers.insert(
                id,
                Peer {
                    name,
                    addr,
                    link: None,
                    up: false,
                    known: true,
                },
            );
            dial.push((addr, id));
        }
    }
    for (addr, id) in dial {
        spawn_dial(shared, addr, Some(id), false);
    }
}

/// Writes one length-delimited envelope. An envelope over `max_message` is dropped (the peer
/// would refuse it and count it against us).
async fn write(shared: &Shared, send: &mut SendStream, env: &pb::Envelope) -> Result<(), String> {
    let len = env.encoded_len();
    if len > shared.max_message {
        shared.counters.dropped.fetch_add(1, Ordering::Relaxed);
        warn!(
            len,
            max = shared.max_message,
            "outgoing gossip message too large; dropped"
        );
        return Ok(());
    }
    let mut buf = BytesMut::with_capacity(4 + len);
    // `len <= max_message <= 64 MiB` (validated), so it fits a u32.
    buf.put_u32(u32::try_from(len).map_err(|e| e.to_string())?);
    env.encode(&mut buf).map_err(|e| e.to_string())?;
    // A peer that stops reading must not hold our writer forever.
    match timeout(shared.request_timeout, send.write_all(&buf)).await {
        Ok(Ok(())) => {
            shared.counters.sent.fetch_add(1, Ordering::Relaxed);
            Ok(())
        }
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err("peer stopped reading".to_owned()),
    }
}

fn codec(max_message: usize) -> LengthDelimitedCodec {
    LengthDelimitedCodec::builder()
        .length_field_type::<u32>()
        .max_frame_length(max_message)
        .new_codec()
}

fn quic_transport() -> quinn::TransportConfig {
    let mut t = quinn::TransportConfig::default();
    t.keep_alive_interval(Some(KEEP_ALIVE));
    t.max_idle_timeout(Some(
        IDLE_TIMEOUT
            .try_into()
            .expect("a 5 s idle timeout is within QUIC's range"),
    ));
    // Sentinels run on a LAN: a small initial RTT makes lost handshake packets (a peer that
    // is restarting) retransmit quickly.
    t.initial_rtt(INITIAL_RTT);
    t.max_concurrent_bidi_streams(VarInt::from_u32(MAX_BI_STREAMS));
    t.max_concurrent_uni_streams(VarInt::from_u32(MAX_UNI_STREAMS));
    t
}

/// Application close codes.
const CLOSE_SHUTDOWN: u32 = 0;
const CLOSE_DUPLICATE: u32 = 1;
const CLOSE_SELF: u32 = 2;
const CLOSE_PROTOCOL: u32 = 3;
const CLOSE_FULL: u32 = 4;

/// Outgoing messages queued per peer; past it the oldest is dropped.
const PEER_QUEUE: usize = 1024;
/// Events queued for the owner; past it messages are dropped (peer changes wait).
const EVENT_QUEUE: usize = 4096;
/// Request streams kept open for their replies, per peer.
const MAX_PENDING: usize = 256;
/// Offences before a connection is closed.
const MAX_STRIKES: u32 = 3;
/// Concurrent request streams a peer may open to us (and we to it).
const MAX_BI_STREAMS: u32 = 32;
/// Concurrent uni streams a peer may open to us: one is used, a few spare for restarts.
const MAX_UNI_STREAMS: u32 = 4;
/// Handshakes in progress at once.
const MAX_INCOMING: usize = 256;
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);
const DIAL_TIMEOUT: Duration = Duration::from_secs(3);
const HELLO_TIMEOUT: Duration = Duration::from_secs(5);
const DIAL_BACKOFF_MIN: Duration = Duration::from_millis(100);
const DIAL_BACKOFF_MAX: Duration = Duration::from_secs(5);
const MEMBERS_INTERVAL: Duration = Duration::from_secs(5);
const KEEP_ALIVE: Duration = Duration::from_secs(1);
const IDLE_TIMEOUT: Duration = Duration::from_secs(5);
const INITIAL_RTT: Duration = Duration::from_millis(100);
const SHUTDOWN_GRACE: Duration = Duration::from_secs(1);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_ends_keep_the_connection_initiated_by_the_lower_id() {
        let (lo, hi) = (SentinelId(1), SentinelId(2));
        // Current from hi, new from lo: replace. Current from lo, new from hi: keep.
        assert!(replaces(hi, lo));
        assert!(!replaces(lo, hi));
        // Same initiator: the newer one wins (a restart or a redial).
        assert!(replaces(lo, lo));
        assert!(replaces(hi, hi));
    }

    #[test]
    fn oversize_frames_are_offences_and_ends_are_not() {
        use tokio_util::codec::Decoder;
        let mut header = BytesMut::from(&[0u8, 0, 4, 1][..]);
        let oversize = codec(1024).decode(&mut header).unwrap_err();
        assert!(frame_offence(&oversize).is_some());
        // A frame cut short by the end of the stream is an offence too.
        let mut partial = BytesMut::from(&[0u8, 0, 0, 9, 1][..]);
        let truncated = codec(1024).decode_eof(&mut partial).unwrap_err();
        assert!(frame_offence(&truncated).is_some());
        // A stream the peer reset, or a lost connection, is not.
        let reset = io::Error::from(quinn::ReadError::ClosedStream);
        assert!(frame_offence(&reset).is_none());
    }
}
