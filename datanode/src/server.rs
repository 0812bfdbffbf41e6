//! The server: shared state, the accept loop, the connection limit and background tasks.
//!
//! `Shared` is what every connection task holds an `Arc` of: the engine, the live config, the
//! client registry, pub/sub, blocked and watching clients, and counters. Long-lived background
//! work (active expiry, memory sampling, ops/sec sampling) runs in tasks that end with the
//! server's cancellation token.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{info, warn};

use crate::config::Config;
use crate::engine::Engine;
use crate::engine::memory::MemoryEngine;
use crate::pubsub::PubSub;
use crate::replication::Replication;
use crate::sds::Sds;

/// Hooks the binary provides.
#[derive(Clone, Copy, Debug)]
pub struct Runtime {
    /// Bytes allocated by the process (the allocator's own count); `None` disables `maxmemory`.
    pub used_memory: Option<fn() -> usize>,
    /// Resident set size, for INFO.
    pub rss: Option<fn() -> usize>,
}

/// Errors that stop the server.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The configuration breaks a rule.
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: String,
        /// Why.
        source: std::io::Error,
    },
    /// The dataset could not be loaded from disk at start (persistence).
    #[error(transparent)]
    Persist(#[from] crate::persist::PersistError),
}

/// Public information about a connected client, for `CLIENT LIST` and `CLIENT KILL`.
#[derive(Debug)]
pub struct ClientHandle {
    /// Client id.
    pub id: u64,
    /// Peer address.
    pub addr: SocketAddr,
    /// Local address.
    pub laddr: SocketAddr,
    /// When it connected.
    pub since: Instant,
    /// Mutable details.
    pub info: Mutex<ClientInfo>,
    /// Set to make the connection close.
    pub kill: CancellationToken,
    /// Bytes queued for this client by publishers and not yet written.
    pub pending_push: AtomicUsize,
}

/// The mutable part of a client's public information.
#[derive(Clone, Debug, Default)]
pub struct ClientInfo {
    /// `CLIENT SETNAME`.
    pub name: String,
    /// Selected database.
    pub db: usize,
    /// Last command name.
    pub last_cmd: String,
    /// When it last sent a command.
    pub last_active: Option<Instant>,
    /// `CLIENT SETINFO lib-name`.
    pub lib_name: String,
    /// `CLIENT SETINFO lib-ver`.
    pub lib_ver: String,
    /// Channels plus patterns subscribed.
    pub subscriptions: usize,
    /// True in MULTI.
    pub multi: bool,
    /// RESP version.
    pub resp: u8,
    /// Pending output bytes.
    pub omem: usize,
    /// Blocked in a blocking command.
    pub blocked: bool,
    /// The link to our master (replica side): `CLIENT KILL TYPE master`.
    pub master: bool,
    /// A replica of ours: `CLIENT KILL TYPE replica`.
    pub replica: bool,
}

/// Clients blocked on keys and clients watching keys.
#[derive(Default)]
pub struct Registry {
    /// (db, key) → blocked clients in arrival order.
    pub blocked: HashMap<DbKey, std::collections::VecDeque<(u64, Arc<Notify>)>>,
    /// (db, key) → watching clients' dirty flags.
    pub watched: HashMap<DbKey, Vec<(u64, Arc<AtomicBool>)>>,
}

/// A key in a database.
pub type DbKey = (usize, Sds);

/// Counters for INFO stats.
#[derive(Debug, Default)]
pub struct Stats {
    /// Connections accepted.
    pub connections: AtomicU64,
    /// Connections refused at `maxclients`.
    pub rejected: AtomicU64,
    /// Commands run.
    pub commands: AtomicU64,
    /// Bytes read from clients.
    pub net_in: AtomicU64,
    /// Bytes written to clients.
    pub net_out: AtomicU64,
    /// Keys changed since start (`rdb_changes_since_last_save`).
    pub dirty: AtomicU64,
    /// Pub/sub messages delivered.
    pub pubsub_messages: AtomicU64,
    /// Errors replied.
    pub errors: AtomicU64,
    /// Ops per second, sampled each 100 ms over the last second.
    pub ops_per_sec: AtomicU64,
    /// Clients disconnected at an output limit.
    pub output_limit_kills: AtomicU64,
}

/// State shared by every connection.
pub struct Shared {
    /// The keyspace.
    pub engine: Arc<dyn Engine>,
    /// Live configuration.
    pub config: RwLock<Config>,
    /// Connected clients.
    pub clients: Mutex<HashMap<u64, Arc<ClientHandle>>>,
    /// Next client id.
    pub next_id: AtomicU64,
    /// Channel subscriptions.
    pub pubsub: PubSub,
    /// Blocked and watching clients.
    pub registry: Mutex<Registry>,
    /// Number of entries in `registry`, so commands skip its lock when nobody waits or watches.
    pub registry_len: AtomicUsize,
    /// Held shared by every command and exclusively by `EXEC`, which makes a transaction atomic.
    pub gate: Gate,
    /// Counters.
    pub stats: Stats,
    /// 40 hex characters identifying this run.
    pub run_id: String,
    /// Process start.
    pub started: Instant,
    /// Hooks from the binary.
    pub runtime: Runtime,
    /// Allocated bytes, refreshed every few milliseconds from `runtime.used_memory`.
    pub used_memory: AtomicUsize,
    /// Peak of `used_memory`.
    pub peak_memory: AtomicUsize,
    /// Address the listener is bound to.
    pub addr: SocketAddr,
    /// Cancelled to stop the whole server (`SHUTDOWN`).
    pub shutdown: CancellationToken,
    /// Replication: stream, backlog, attached replicas, link to our master.
    pub repl: Arc<Replication>,
    /// Writes paused until this instant (`CLIENT PAUSE`); `None` when not paused.
    pub pause: Mutex<Option<(Instant, bool)>>,
    /// Woken on `CLIENT UNPAUSE`.
    pub unpause: Notify,
    /// True while a `CLIENT PAUSE` may be in force; lets commands skip the `pause` lock.
    pub pause_active: AtomicBool,
    /// `maxmemory`, mirrored here so every command can check it without the config lock.
    pub maxmemory: AtomicUsize,
    /// Argument bytes of writes since `used_memory` was last refreshed: a guess at the growth the
    /// cached count does not show yet, so a burst of writes cannot overshoot `maxmemory` by more
    /// than one command before the count is re-read.
    pub unsampled_writes: AtomicUsize,
    /// Persistence: RDB saves, the append-only file, their statuses.
    pub persist: crate::persist::Persist,
    /// Write fencing: the node clock, sentinels' write leases, `-NOLEASE`.
    pub fencing: crate::fencing::Fencing,
}

impl Shared {
    /// The live configuration (a short read lock; never held across `.await`).
    pub fn config(&self) -> std::sync::RwLockReadGuard<'_, Config> {
        self.config
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Locks the registry.
    pub fn registry(&self) -> std::sync::MutexGuard<'_, Registry> {
        self.registry
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Locks the client table.
    pub fn clients(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Arc<ClientHandle>>> {
        self.clients
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Marks clients watching (db, key) as dirty and wakes one blocked client per key that now
    /// holds a value. Called with the key's shard still locked, so no wake-up is lost.
    pub fn touch(&self, db: usize, keys: &[&[u8]], exists: &dyn Fn(&[u8]) -> bool) {
        if self.registry_len.load(Ordering::Acquire) == 0 {
            return;
        }
        let mut reg = self.registry();
        for key in keys {
            let k = (db, Sds::new(key));
            if let Some(w) = reg.watched.get(&k) {
                for (_, flag) in w {
                    flag.store(true, Ordering::Release);
                }
            }
            if exists(key) {
                if let Some(q) = reg.blocked.get_mut(&k) {
                    // Wake the longest waiter; it re-runs its command and, if it takes the value,
                    // its own write wakes the next one.
                    if let Some((_, n)) = q.front() {
                        n.notify_one();
                    }
                }
            }
        }
    }

    /// Marks every watcher of `db` (all databases when `None`) dirty: FLUSHDB, FLUSHALL, SWAPDB.
    pub fn touch_all(&self, db: Option<usize>) {
        if self.registry_len.load(Ordering::Acquire) == 0 {
            return;
        }
        let reg = self.registry();
        for ((d, _), w) in &reg.watched {
            if db.is_none_or(|x| x == *d) {
                for (_, flag) in w {
                    flag.store(true, Ordering::Release);
                }
            }
        }
    }

    /// Recounts the registry after a change.
    pub fn recount(&self, reg: &Registry) {
        self.registry_len
            .store(reg.blocked.len() + reg.watched.len(), Ordering::Release);
    }

    /// True while writes are paused by `CLIENT PAUSE` (`all` for `CLIENT PAUSE ALL`).
    pub fn paused(&self, write: bool) -> Option<Instant> {
        if !self.pause_active.load(Ordering::Relaxed) {
            return None;
        }
        let p = self
            .pause
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match *p {
            Some((until, all)) if until > Instant::now() && (all || write) => Some(until),
            _ => None,
        }
    }
}

/// A reader-writer lock split into slots on separate cache lines: a reader locks one slot (so
/// readers on different cores never write the same cache line), a writer locks every slot in
/// order. Commands read; `EXEC` writes.
pub struct Gate {
    slots: Box<[Padded]>,
}

#[repr(align(128))]
struct Padded(RwLock<()>);

/// Number of gate slots.
const GATE_SLOTS: usize = 8;

impl Gate {
    fn new() -> Gate {
        Gate {
            slots: (0..GATE_SLOTS).map(|_| Padded(RwLock::new(()))).collect(),
        }
    }

    /// Shared access through slot `slot % GATE_SLOTS`.
    pub fn read(&self, slot: usize) -> std::sync::RwLockReadGuard<'_, ()> {
        self.slots[slot % GATE_SLOTS]
            .0
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Exclusive access: every slot, in a fixed order.
    pub fn write(&self) -> Vec<std::sync::RwLockWriteGuard<'_, ()>> {
        self.slots
            .iter()
            .map(|p| {
                p.0.write()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
            })
            .collect()
    }
}

/// The current Unix time in milliseconds.
pub fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// A bound, not yet running server.
pub struct Server {
    listener: TcpListener,
    shared: Arc<Shared>,
}

impl Server {
    /// Validates `config` and binds its address.
    pub async fn bind(config: Config, runtime: Runtime) -> Result<Server, ServerError> {
        config.validate()?;
        let addr = format!("{}:{}", config.bind, config.port);
        let listener = TcpListener::bind(&addr)
            .await
            .map_err(|source| ServerError::Bind {
                addr: addr.clone(),
                source,
            })?;
        let local = listener.local_addr().map_err(|source| ServerError::Bind {
            addr: addr.clone(),
            source,
        })?;
        let engine: Arc<dyn Engine> = Arc::new(MemoryEngine::new(config.databases));
        let maxmemory = AtomicUsize::new(config.maxmemory);
        let repl = Arc::new(Replication::new(&config));
        // Every key the engine deletes by itself reaches replicas as a DEL, fed while its shard
        // is still locked so it cannot pass a later write of the same key.
        let hook_repl = repl.clone();
        engine.set_deletion_hook(Arc::new(move |db, key| {
            if hook_repl.feeding() {
                let args = [Bytes::from_static(b"DEL"), Bytes::copy_from_slice(key)];
                hook_repl.feed([(Some(db), &args[..])]);
            }
        }));
        let persist = crate::persist::Persist::new(&config.persist);
        let run_id = run_id();
        let started = Instant::now();
        // The node clock starts with the process, so `VIGIL CLOCK` reads as time since start.
        let fencing = crate::fencing::Fencing::new(config.write_fencing, &run_id, started);
        let shared = Arc::new(Shared {
            engine,
            config: RwLock::new(config),
            clients: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(1),
            pubsub: PubSub::default(),
            registry: Mutex::new(Registry::default()),
            registry_len: AtomicUsize::new(0),
            gate: Gate::new(),
            stats: Stats::default(),
            run_id,
            started,
            runtime,
            used_memory: AtomicUsize::new(0),
            peak_memory: AtomicUsize::new(0),
            addr: local,
            shutdown: CancellationToken::new(),
            repl,
            pause: Mutex::new(None),
            unpause: Notify::new(),
            pause_active: AtomicBool::new(false),
            maxmemory,
            unsampled_writes: AtomicUsize::new(0),
            persist,
            fencing,
        });
        // Persistence: the dataset is loaded before the accept loop starts (clients connecting
        // meanwhile wait in the listen queue, so none ever sees a half-loaded keyspace).
        let loader = shared.clone();
        tokio::task::spawn_blocking(move || crate::persist::load_at_start(&loader))
            .await
            .map_err(|e| crate::persist::PersistError::Task(e.to_string()))??;
        Ok(Server { listener, shared })
    }

    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.shared.addr
    }

    /// The shared state (for embedding and tests).
    pub fn shared(&self) -> Arc<Shared> {
        self.shared.clone()
    }

    /// Serves until `cancel` fires or a client runs `SHUTDOWN`, then drains connections.
    pub async fn run(self, cancel: CancellationToken) {
        let shared = self.shared;
        let tasks = TaskTracker::new();
        let stop = shared.shutdown.clone();
        tasks.spawn(background(shared.clone(), stop.clone()));
        tasks.spawn(crate::persist::cron(shared.clone(), stop.clone()));
        let replicaof = shared.config().replicaof.clone();
        if let Some((host, port)) = replicaof {
            crate::replication::replica::start(&shared, host, port);
        }
        info!(addr = %shared.addr, "data node accepting connections");
        loop {
            let accepted = tokio::select! {
                biased;
                () = cancel.cancelled() => break,
                () = stop.cancelled() => break,
                r = self.listener.accept() => r,
            };
            match accepted {
                Ok((stream, peer)) => {
                    let shared = shared.clone();
                    let stop = stop.clone();
                    tasks.spawn(accept(shared, stream, peer, stop));
                }
                Err(e) => {
                    // Out of file descriptors or similar: keep serving the clients we have.
                    warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            }
        }
        stop.cancel();
        tasks.close();
        if tokio::time::timeout(Duration::from_secs(5), tasks.wait())
            .await
            .is_err()
        {
            warn!("connections still open after 5 s; exiting anyway");
        }
        // Persistence: the final save (SIGTERM with save rules) and the AOF flushed and closed.
        let last = shared.clone();
        let _ = tokio::task::spawn_blocking(move || crate::persist::on_exit(&last)).await;
        info!("data node stopped");
    }
}

async fn accept(shared: Arc<Shared>, stream: TcpStream, peer: SocketAddr, stop: CancellationToken) {
    let _ = stream.set_nodelay(true);
    let maxclients = shared.config().maxclients;
    let id = shared.next_id.fetch_add(1, Ordering::Relaxed);
    let laddr = stream.local_addr().unwrap_or(shared.addr);
    let handle = Arc::new(ClientHandle {
        id,
        addr: peer,
        laddr,
        since: Instant::now(),
        info: Mutex::new(ClientInfo {
            resp: 2,
            ..ClientInfo::default()
        }),
        kill: stop.child_token(),
        pending_push: AtomicUsize::new(0),
    });
    let admitted = {
        let mut clients = shared.clients();
        let ok = clients.len() < maxclients;
        if ok {
            clients.insert(id, handle.clone());
        }
        ok
    };
    if !admitted {
        shared.stats.rejected.fetch_add(1, Ordering::Relaxed);
        let mut s = stream;
        let _ = tokio::time::timeout(
            Duration::from_secs(1),
            tokio::io::AsyncWriteExt::write_all(&mut s, b"-ERR max number of clients reached\r\n"),
        )
        .await;
        return;
    }
    shared.stats.connections.fetch_add(1, Ordering::Relaxed);
    crate::connection::run(shared.clone(), stream, handle).await;
    shared.clients().remove(&id);
}

async fn background(shared: Arc<Shared>, stop: CancellationToken) {
    let mut last_cmds = 0u64;
    let mut samples = [0u64; 10];
    let mut tick = 0usize;
    let mut interval = tokio::time::interval(Duration::from_millis(100));
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            _ = interval.tick() => {}
        }
        refresh_memory(&shared);
        // A replica never expires keys on its own clock: its master sends the DELs.
        if !shared.repl.is_replica() {
            let _gate = shared.gate.read(0);
            shared.engine.expire_cycle(unix_ms(), 2000);
        }
        if tick % 10 == 0 {
            let period = shared.config().repl_ping_replica_period;
            shared.repl.cron(tick as u64 / 10, period);
        }
        let cmds = shared.stats.commands.load(Ordering::Relaxed);
        samples[tick % samples.len()] = cmds - last_cmds;
        last_cmds = cmds;
        tick += 1;
        let per_sec: u64 = samples.iter().sum();
        shared.stats.ops_per_sec.store(per_sec, Ordering::Relaxed);
        enforce_output_limits(&shared);
    }
}

/// Re-reads the allocator's byte count.
pub fn refresh_memory(shared: &Shared) -> usize {
    // Reset before reading: a write that lands in between is counted again, never lost.
    shared.unsampled_writes.store(0, Ordering::Relaxed);
    let used = shared.runtime.used_memory.map_or(0, |f| f());
    shared.used_memory.store(used, Ordering::Relaxed);
    shared.peak_memory.fetch_max(used, Ordering::Relaxed);
    used
}

/// Disconnects subscribers whose queued pushes passed the pub/sub hard limit.
fn enforce_output_limits(shared: &Shared) {
    let hard = shared.config().output_pubsub.hard;
    if hard == 0 {
        return;
    }
    for c in shared.clients().values() {
        if c.pending_push.load(Ordering::Relaxed) > hard && !c.kill.is_cancelled() {
            c.kill.cancel();
            shared
                .stats
                .output_limit_kills
                .fetch_add(1, Ordering::Relaxed);
        }
    }
}

fn run_id() -> String {
    use rand::Rng;
    let mut rng = rand::rng();
    (0..40)
        .map(|_| char::from_digit(rng.random_range(0..16), 16).unwrap_or('0'))
        .collect()
}

/// Lower-case copy of a command name, for logs and `CLIENT LIST`.
pub fn cmd_name(arg: &Bytes) -> String {
    String::from_utf8_lossy(arg).to_ascii_lowercase()
}
