//! `Session`: one client's protocol state and the command dispatcher.
//!
//! The connection task hands each decoded request to `Session::execute`, which checks arity,
//! authentication, transaction and subscriber-mode rules, memory limits and pauses, then runs the
//! command: keyspace commands inside a locked engine view, connection and server commands here.
//! It returns an `Outcome` rather than writing, so the connection decides when bytes move.
//!
//! Invariants: every command except those run by `EXEC` holds the server's gate shared while it
//! runs, and `EXEC` holds it exclusively, so a transaction is atomic; a blocked client is
//! registered on its keys before the shard locks are released, so no push can be missed; and
//! `Drop` removes every registration this session made (blocked keys, watches, subscriptions).

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::Notify;
use tokio::sync::mpsc::UnboundedSender;
use vigil_proto::resp::Frame;

use crate::cmd::{
    self, ADMIN, BLOCKING, CmdError, CommandSpec, Ctx, DENYOOM, FAST, Handler, KeySpec, LOADING_OK,
    NOAUTH, NOMULTI, PUBSUB, READONLY, WRITE, is,
};
use crate::config::ConfigError;
use crate::engine::{Scope, Value};
use crate::fencing::{Grant, LeaseError};
use crate::glob;
use crate::pubsub::{Push, Subscriber};
use crate::replication::rewrite::{self, PostState, Rewrite};
use crate::replication::{self, SyncRequest};
use crate::sds::Sds;
use crate::server::{ClientHandle, Shared, refresh_memory, unix_ms};

/// The version this server reports as `redis_version`: the Redis release whose behaviour it
/// matches, so that clients which gate features on it work.
pub const REDIS_VERSION: &str = "7.0.15";

/// What the connection must do after a command.
#[derive(Debug)]
pub enum Outcome {
    /// Send this reply.
    Reply(Frame),
    /// Send these replies in order (SUBSCRIBE to several channels).
    Many(Vec<Frame>),
    /// The client blocks until `notify` fires or `deadline` passes; then call `resume`.
    Block {
        /// Fired when a key it waits on may be ready.
        notify: Arc<Notify>,
        /// When to give up; `None` waits forever.
        deadline: Option<Instant>,
    },
    /// Writes are paused until `until`; call `execute` again with the same arguments then.
    Paused {
        /// End of the pause.
        until: Instant,
        /// The request to run after the pause.
        args: Vec<Bytes>,
    },
    /// Sleep, then reply `+OK` (`DEBUG SLEEP`).
    Sleep(Duration),
    /// Send this reply, then close the connection (`QUIT`).
    Close(Frame),
    /// Close without a reply (`SHUTDOWN`).
    Shutdown,
    /// The client is a replica (`PSYNC`/`SYNC`): hand the socket to replication.
    Replicate(SyncRequest),
}

struct Blocked {
    args: Vec<Bytes>,
    db: usize,
    keys: Vec<Sds>,
    notify: Arc<Notify>,
    deadline: Option<Instant>,
}

/// One client's protocol state.
pub struct Session {
    shared: Arc<Shared>,
    handle: Arc<ClientHandle>,
    db: usize,
    resp3: bool,
    authed: bool,
    multi: Option<Vec<Vec<Bytes>>>,
    multi_error: bool,
    watch_dirty: Arc<AtomicBool>,
    watching: Vec<(usize, Sds)>,
    channels: HashSet<Bytes>,
    patterns: HashSet<Bytes>,
    push_tx: UnboundedSender<Push>,
    blocked: Option<Blocked>,
    no_evict: bool,
    /// Unix time in ms for the batch of requests being run (set by `tick`), as Redis caches
    /// its clock per event-loop turn; `None` reads the clock per command.
    clock: Option<u64>,
    /// Commands run and not yet added to the shared counter (see `end_batch`).
    commands: u64,
    /// This session applies our master's stream: no read-only, lease or min-replicas refusal,
    /// no OOM, no pause, and it never feeds the stream itself.
    from_master: bool,
    /// Stream offset after this client's last write, for `WAIT`.
    woff: u64,
    /// What the client said in `REPLCONF` before `PSYNC`.
    repl_req: SyncRequest,
    /// Writes of the transaction being executed, fed as one MULTI … EXEC block at its end.
    multi_prop: Option<Vec<(usize, Vec<Bytes>)>>,
}

impl Session {
    /// A new session for `handle`; pushes for it go into `push_tx`.
    pub fn new(
        shared: Arc<Shared>,
        handle: Arc<ClientHandle>,
        push_tx: UnboundedSender<Push>,
    ) -> Self {
        let authed = shared.config().requirepass.is_empty();
        Session {
            shared,
            handle,
            db: 0,
            resp3: false,
            authed,
            multi: None,
            multi_error: false,
            watch_dirty: Arc::new(AtomicBool::new(false)),
            watching: Vec::new(),
            channels: HashSet::new(),
            patterns: HashSet::new(),
            push_tx,
            blocked: None,
            no_evict: false,
            clock: None,
            commands: 0,
            from_master: false,
            woff: 0,
            repl_req: SyncRequest::default(),
            multi_prop: None,
        }
    }

    /// Makes this the session that applies our master's stream, starting in database `db`.
    pub fn set_master_client(&mut self, db: usize) {
        self.from_master = true;
        self.authed = true;
        self.db = db;
    }

    /// The selected database.
    pub fn db(&self) -> usize {
        self.db
    }

    /// Starts a batch of requests at wall-clock time `now_ms`; also marks the client active.
    pub fn tick(&mut self, now_ms: u64) {
        self.clock = Some(now_ms);
        if let Ok(mut info) = self.handle.info.try_lock() {
            info.last_active = Some(Instant::now());
        }
    }

    /// Ends a batch: publishes the command count (one shared write per batch, not per command).
    pub fn end_batch(&mut self) {
        if self.commands > 0 {
            self.shared
                .stats
                .commands
                .fetch_add(self.commands, Ordering::Relaxed);
            self.commands = 0;
        }
    }

    fn clock_ms(&self) -> u64 {
        self.clock.unwrap_or_else(unix_ms)
    }

    /// True when replies use RESP3.
    pub fn resp3(&self) -> bool {
        self.resp3
    }

    /// True in RESP2 subscriber mode, where pushes use the normal reply channel.
    pub fn subscribed(&self) -> bool {
        !self.channels.is_empty() || !self.patterns.is_empty()
    }

    /// Runs one request.
    pub fn execute(&mut self, args: Vec<Bytes>) -> Outcome {
        self.commands += 1;
        // Error texts may quote arguments; the RESP encoder turns CR and LF in them into spaces.
        let outcome = self.dispatch(args, false);
        if let Outcome::Reply(Frame::Error(_)) = &outcome {
            self.shared.stats.errors.fetch_add(1, Ordering::Relaxed);
        }
        outcome
    }

    fn dispatch(&mut self, args: Vec<Bytes>, in_exec: bool) -> Outcome {
        let Some(spec) = cmd::lookup(&args[0]) else {
            if self.multi.is_some() {
                self.multi_error = true;
            }
            return Outcome::Reply(unknown_command(&args));
        };
        if !arity_ok(spec, args.len()) {
            if spec.name == "exec" {
                // Redis rejects EXEC itself by aborting (and discarding) any transaction.
                self.multi = None;
                self.unwatch();
                return Outcome::Reply(Frame::error_static(
                    "EXECABORT Transaction discarded because of: wrong number of arguments for 'exec' command",
                ));
            }
            if self.multi.is_some() {
                self.multi_error = true;
            }
            return Outcome::Reply(CmdError::Arity(spec.name.into()).to_frame());
        }
        if let Some(e) = subcommand_error(spec.name, &args) {
            // Redis knows subcommands at lookup time: these are rejected even inside MULTI.
            if self.multi.is_some() {
                self.multi_error = true;
            }
            return Outcome::Reply(e.to_frame());
        }
        if !self.authed && !spec.has(NOAUTH) {
            return Outcome::Reply(Frame::error_static("NOAUTH Authentication required."));
        }
        // Persistence: after a failed background save or AOF write, writes (and PING, as in
        // Redis 7.0) get -MISCONF until persisting works again.
        if (spec.has(WRITE) || spec.name == "ping") && !in_exec && !self.from_master {
            if let Some(f) = crate::persist::refuse_write(&self.shared) {
                if self.multi.is_some() {
                    self.multi_error = true;
                }
                return Outcome::Reply(f);
            }
        }
        if spec.has(WRITE) && !in_exec && !self.from_master {
            // While writes are paused, the lease is checked when the write runs after the
            // pause: a master whose leases a switchover revoked keeps its writers waiting,
            // as the pause promises, instead of refusing them with `-NOLEASE` at once.
            let lease = self.shared.paused(true).is_none();
            if let Some(f) = self.refuse_write(lease) {
                if self.multi.is_some() {
                    self.multi_error = true;
                }
                return Outcome::Reply(f);
            }
        }
        if self.multi.is_some()
            && !in_exec
            && !matches!(
                spec.name,
                "exec" | "discard" | "multi" | "watch" | "quit" | "reset"
            )
        {
            if let Some(q) = &mut self.multi {
                q.push(args);
            }
            return Outcome::Reply(Frame::simple("QUEUED"));
        }
        if self.subscribed() && !self.resp3 && !spec.has(PUBSUB) {
            return Outcome::Reply(Frame::error(format!(
                "ERR Can't execute '{}': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context",
                spec.name
            )));
        }
        if !in_exec && !self.from_master {
            if let Some(until) = self.shared.paused(spec.has(WRITE)) {
                if spec.has(WRITE) || !spec.has(LOADING_OK) {
                    return Outcome::Paused { until, args };
                }
            }
        }
        // A woken client finishes what it started; refusing it here would strand its queue.
        let resuming = self.blocked.is_some();
        let exempt = resuming || self.from_master;
        if let Some(f) = (!exempt)
            .then(|| self.check_memory(spec, &args, in_exec))
            .flatten()
        {
            return Outcome::Reply(f);
        }
        // Best effort: CLIENT LIST readers never make a command wait.
        if let Ok(mut info) = self.handle.info.try_lock() {
            if info.last_cmd != spec.name {
                info.last_cmd.clear();
                info.last_cmd.push_str(spec.name);
            }
        }
        match spec.handler {
            Handler::Data(f) => self.run_data(spec, f, args, in_exec),
            Handler::Conn => self.run_conn(spec, args, in_exec),
        }
    }

    /// Applies `maxmemory`: evicts by policy, then refuses commands that grow memory.
    fn check_memory(&self, spec: &CommandSpec, args: &[Bytes], in_exec: bool) -> Option<Frame> {
        if self.shared.maxmemory.load(Ordering::Relaxed) == 0 {
            return None;
        }
        let (max, policy, samples) = {
            let c = self.shared.config();
            (c.maxmemory, c.maxmemory_policy, c.maxmemory_samples)
        };
        if max == 0 || self.shared.runtime.used_memory.is_none() || self.no_evict {
            return None;
        }
        // The cached count is up to 100 ms old; a write may grow memory by about its arguments
        // plus a per-key overhead, so re-read the allocator once that could cross the limit.
        let mut unsampled = 0;
        if spec.has(DENYOOM) {
            let grow: usize = args.iter().map(|a| a.len() + 64).sum();
            unsampled = self
                .shared
                .unsampled_writes
                .fetch_add(grow, Ordering::Relaxed)
                + grow;
        }
        let mut used = self.shared.used_memory.load(Ordering::Relaxed);
        if used.saturating_add(unsampled) <= max {
            return None;
        }
        used = refresh_memory(&self.shared);
        if used > max && policy != crate::engine::EvictionPolicy::NoEviction {
            // Inside EXEC this thread already holds the whole gate.
            let _gate = (!in_exec).then(|| self.shared.gate.read(self.handle.id as usize));
            for _ in 0..16 {
                let (_, evicted) = self
                    .shared
                    .engine
                    .evict(unix_ms(), policy, samples, used - max);
                used = refresh_memory(&self.shared);
                if evicted.is_empty() || used <= max {
                    break;
                }
            }
        }
        (used > max && spec.has(DENYOOM))
            .then(|| Frame::error_static("OOM command not allowed when used memory > 'maxmemory'."))
    }

    fn run_data(
        &mut self,
        spec: &CommandSpec,
        f: cmd::DataFn,
        args: Vec<Bytes>,
        in_exec: bool,
    ) -> Outcome {
        let key_idx = spec.keys.indexes(&args);
        let keys: smallvec::SmallVec<[&[u8]; 4]> = key_idx.iter().map(|&i| &args[i][..]).collect();
        let scope = match spec.keys {
            KeySpec::All => Scope::All,
            _ => Scope::Keys(&keys),
        };
        // Borrow the shared state through the field (no `Arc` clone: its count is one cache line
        // that every core would write on every command).
        let shared: &Shared = &self.shared;
        let _gate = (!in_exec).then(|| shared.gate.read(self.handle.id as usize));
        let dbs = shared.engine.databases();
        let mut result = None;
        let mut block_notify = None;
        let db = self.db;
        let resp3 = self.resp3;
        let client_id = self.handle.id;
        let resuming = self.blocked.as_ref().map(|b| b.notify.clone());
        let now = self.clock_ms();
        // One relaxed load when nobody replicates from us.
        let feeding = shared.repl.feeding() && !self.from_master && spec.has(WRITE);
        let mut woff = None;
        let mut queued: Vec<(usize, Vec<Bytes>)> = Vec::new();
        shared.engine.with_view(now, scope, &mut |ks| {
            let mut ctx = Ctx {
                args: &args,
                db,
                dbs,
                ks,
                resp3,
                dirty: 0,
            };
            let r = f(&mut ctx);
            let dirty = ctx.dirty;
            if matches!(r, Err(CmdError::Block)) && !in_exec {
                if resuming.is_none() {
                    // Register before the view (and its locks) is released: no push is missed.
                    let notify = Arc::new(Notify::new());
                    let mut reg = shared.registry();
                    for k in block_keys(spec, &keys) {
                        reg.blocked
                            .entry((db, Sds::new(k)))
                            .or_default()
                            .push_back((client_id, notify.clone()));
                    }
                    shared.recount(&reg);
                    block_notify = Some(notify);
                }
            } else if let Some(n) = &resuming {
                // Served after waiting: leave the queues before waking the next waiter.
                unregister_blocked(shared, client_id, n, db, block_keys(spec, &keys));
            }
            if dirty > 0 && feeding && !matches!(r, Err(CmdError::Block)) {
                // Fed before the shards unlock: per key, stream order is apply order.
                let reply = r.as_ref().unwrap_or(&Frame::Null);
                let mut post = ViewState {
                    ks: &mut *ctx.ks,
                    db,
                };
                let cmds = match rewrite::rewrite(spec.name, &args, reply, &mut post) {
                    Rewrite::AsIs => vec![args.clone()],
                    Rewrite::Replace(cmds) => cmds,
                };
                if in_exec {
                    queued.extend(cmds.into_iter().map(|c| (db, c)));
                } else if !cmds.is_empty() {
                    woff = Some(shared.repl.feed(cmds.iter().map(|c| (Some(db), &c[..]))));
                }
            }
            if dirty > 0 {
                shared.stats.dirty.fetch_add(dirty, Ordering::Relaxed);
                match spec.keys {
                    KeySpec::All => {
                        let all = spec.name == "flushall" || spec.name == "swapdb";
                        shared.touch_all(if all { None } else { Some(db) });
                    }
                    _ => {
                        touch_view(shared, db, written_keys(spec.name, &keys), &mut *ctx.ks);
                        // MOVE and COPY .. DB write their key in another database.
                        if let Some((other, key)) = other_db_write(spec.name, &args) {
                            touch_view(shared, other, &[key], &mut *ctx.ks);
                        }
                    }
                }
            }
            result = Some(r);
        });
        drop(keys);
        if let Some(off) = woff {
            self.woff = off.0;
        }
        if !queued.is_empty() {
            self.multi_prop.get_or_insert_with(Vec::new).extend(queued);
        }
        let r = result.unwrap_or_else(|| Err(CmdError::other("ERR internal error")));
        match r {
            Ok(frame) => {
                self.blocked = None;
                Outcome::Reply(frame)
            }
            Err(CmdError::Block) if in_exec => Outcome::Reply(block_timeout_reply(spec)),
            Err(CmdError::Block) => {
                let deadline = match block_deadline(spec, &args) {
                    Ok(d) => d,
                    Err(e) => return Outcome::Reply(e.to_frame()),
                };
                if let Some(notify) = block_notify {
                    let keys = block_keys(spec, &key_idx)
                        .iter()
                        .map(|&i| Sds::new(&args[i]))
                        .collect();
                    self.blocked = Some(Blocked {
                        args,
                        db,
                        keys,
                        notify,
                        deadline,
                    });
                }
                let Some(b) = &self.blocked else {
                    return Outcome::Reply(block_timeout_reply(spec));
                };
                self.set_blocked_flag(true);
                Outcome::Block {
                    notify: b.notify.clone(),
                    deadline: b.deadline,
                }
            }
            Err(e) => {
                self.blocked = None;
                Outcome::Reply(e.to_frame())
            }
        }
    }

    fn set_blocked_flag(&self, on: bool) {
        if let Ok(mut info) = self.handle.info.lock() {
            info.blocked = on;
        }
    }

    /// Re-runs the blocked command after a wake-up.
    pub fn resume(&mut self) -> Outcome {
        let Some(b) = &self.blocked else {
            return Outcome::Reply(Frame::Null);
        };
        let args = b.args.clone();
        let out = self.dispatch(args, false);
        if !matches!(out, Outcome::Block { .. } | Outcome::Paused { .. }) {
            self.set_blocked_flag(false);
            // Whatever ended the wait (a reply or an error), leave every queue.
            if let Some(b) = self.blocked.take() {
                let keys: Vec<&[u8]> = b.keys.iter().map(|k| &k[..]).collect();
                unregister_blocked(&self.shared, self.handle.id, &b.notify, b.db, &keys);
            }
        }
        out
    }

    /// The blocked command's deadline passed: leave the queues and return the timeout reply.
    pub fn timeout_blocked(&mut self) -> Frame {
        let Some(b) = self.blocked.take() else {
            return Frame::Null;
        };
        self.set_blocked_flag(false);
        if is(&b.args[0], "WAIT") {
            self.shared.repl.unwait(&b.notify);
            return Frame::Integer(self.shared.repl.acked(self.woff) as i64);
        }
        let keys: Vec<&[u8]> = b.keys.iter().map(|k| &k[..]).collect();
        let shared = self.shared.clone();
        let id = self.handle.id;
        shared
            .engine
            .with_view(unix_ms(), Scope::Keys(&keys), &mut |ks| {
                unregister_blocked(&shared, id, &b.notify, b.db, &keys);
                // A wake-up meant for us may have arrived with the timeout; pass it on.
                touch_view(&shared, b.db, &keys, ks);
            });
        // Redis 7.0 answers every blocking timeout with a null array, BLMOVE and BRPOPLPUSH
        // included (they answer a null bulk only inside MULTI).
        Frame::NullArray
    }

    fn run_conn(&mut self, spec: &CommandSpec, args: Vec<Bytes>, in_exec: bool) -> Outcome {
        let r = match spec.name {
            "ping" => Ok(self.ping(&args)),
            "echo" => Ok(Frame::Bulk(args[1].clone())),
            "quit" => return Outcome::Close(Frame::ok()),
            "hello" => self.hello(&args),
            "auth" => self.auth(&args),
            "select" => self.select(&args),
            "client" => return self.client(&args),
            "config" => self.config(&args),
            "info" => Ok(self.info(&args)),
            "role" => Ok(self.shared.repl.role()),
            "replconf" => match self.replconf(&args) {
                Ok(Some(f)) => Ok(f),
                // `REPLCONF ACK` is never answered.
                Ok(None) => return Outcome::Many(Vec::new()),
                Err(e) => Err(e),
            },
            "psync" | "sync" => return self.sync(&args),
            "replicaof" | "slaveof" => self.replicaof(&args),
            "wait" => return self.wait(&args),
            "vigil" => self.vigil(&args),
            "time" => {
                let us = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_micros());
                Ok(Frame::Array(vec![
                    Frame::bulk((us / 1_000_000).to_string().as_bytes()),
                    Frame::bulk((us % 1_000_000).to_string().as_bytes()),
                ]))
            }
            // Persistence commands live in `persist`.
            "lastsave" => Ok(crate::persist::lastsave(&self.shared)),
            "save" => Ok(crate::persist::save(&self.shared, in_exec)),
            "bgsave" => Ok(crate::persist::bgsave(&self.shared, &args, in_exec)),
            "bgrewriteaof" => Ok(crate::persist::bgrewriteaof(&self.shared, in_exec)),
            "command" => command(&args),
            "debug" => return self.debug(&args),
            "shutdown" => {
                // Persistence: the final save; a failure keeps the server running.
                if let Err(f) = crate::persist::shutdown(&self.shared, &args, in_exec) {
                    return Outcome::Reply(f);
                }
                self.shared.shutdown.cancel();
                return Outcome::Shutdown;
            }
            "multi" => self.multi(),
            "exec" => return self.exec(),
            "discard" => self.discard(),
            "watch" => self.watch(&args),
            "unwatch" => {
                self.unwatch();
                Ok(Frame::ok())
            }
            "reset" => {
                self.reset();
                Ok(Frame::simple("RESET"))
            }
            "subscribe" | "psubscribe" => return Outcome::Many(self.subscribe(&args)),
            "unsubscribe" | "punsubscribe" => return Outcome::Many(self.unsubscribe(&args)),
            "publish" => {
                let limit = self.shared.config().output_pubsub.hard;
                let n = self.shared.pubsub.publish(&args[1], &args[2], limit);
                // Replicas deliver it to their own subscribers, as Redis does.
                if self.shared.repl.feeding() && !self.from_master {
                    self.shared.repl.feed([(None, &args[..])]);
                }
                self.shared
                    .stats
                    .pubsub_messages
                    .fetch_add(n as u64, Ordering::Relaxed);
                Ok(Frame::Integer(n as i64))
            }
            "pubsub" => self.pubsub(&args),
            _ => Err(CmdError::other(format!(
                "ERR unknown command '{}'",
                spec.name
            ))),
        };
        Outcome::Reply(r.unwrap_or_else(|e| e.to_frame()))
    }

    /// `-READONLY` on a read-only replica; on a master, `-NOLEASE` without a write-lease
    /// majority while fencing is active (if `lease`), then `-NOREPLICAS` when short of good
    /// replicas.
    fn refuse_write(&self, lease: bool) -> Option<Frame> {
        let repl = &self.shared.repl;
        if repl.is_replica() {
            if self.shared.config().replica_read_only {
                return Some(Frame::error_static(
                    "READONLY You can't write against a read only replica.",
                ));
            }
        } else if let Some(f) = lease.then(|| self.shared.fencing.refuse_write()).flatten() {
            // One relaxed load when fencing is not active; the lease table only when it is.
            return Some(f);
        }
        repl.refuse_write()
    }

    /// `VIGIL CLOCK | LEASE .. | REVOKE | LEASES | HELP`: the write-fencing interface sentinels
    /// use.
    fn vigil(&self, args: &[Bytes]) -> Result<Frame, CmdError> {
        let fencing = &self.shared.fencing;
        let sub = &args[1];
        if is(sub, "CLOCK") {
            return Ok(Frame::Integer(
                i64::try_from(fencing.now().0).unwrap_or(i64::MAX),
            ));
        }
        if is(sub, "LEASE") {
            let lease_err = |e: LeaseError| CmdError::other(format!("ERR {e}"));
            let grant = Grant::parse(&args[2..]).map_err(lease_err)?;
            fencing.grant(&grant).map_err(lease_err)?;
            return Ok(Frame::ok());
        }
        if is(sub, "REVOKE") {
            // The reply leaves only after the revocation is in the table: a sentinel reading
            // `+OK` knows no earlier grant can count any more.
            fencing.revoke();
            return Ok(Frame::ok());
        }
        if is(sub, "LEASES") {
            let leases = fencing.leases();
            return Ok(Frame::Array(
                leases
                    .into_iter()
                    .map(|(id, left)| {
                        Frame::Array(vec![
                            Frame::Integer(id.0.into()),
                            Frame::Integer(i64::try_from(left.as_millis()).unwrap_or(i64::MAX)),
                        ])
                    })
                    .collect(),
            ));
        }
        if is(sub, "HELP") {
            return Ok(help_reply(VIGIL_HELP));
        }
        Err(unknown_subcommand("VIGIL", sub))
    }

    /// `REPLCONF`: what a replica tells us before `PSYNC`; `None` means no reply (`ACK`).
    fn replconf(&mut self, args: &[Bytes]) -> Result<Option<Frame>, CmdError> {
        if args.len() % 2 == 0 {
            return Err(CmdError::Syntax);
        }
        for pair in args[1..].chunks(2) {
            let (opt, val) = (&pair[0], &pair[1]);
            if is(opt, "listening-port") {
                let port = cmd::uint(val).ok().and_then(|p| u16::try_from(p).ok());
                self.repl_req.port = port.ok_or(CmdError::NotInteger)?;
            } else if is(opt, "ip-address") {
                self.repl_req.ip = Some(String::from_utf8_lossy(val).into_owned());
            } else if is(opt, "capa") {
                if is(val, "eof") {
                    self.repl_req.capa_eof = true;
                } else if is(val, "psync2") {
                    self.repl_req.capa_psync2 = true;
                }
            } else if is(opt, "ack") || is(opt, "fack") {
                return Ok(None);
            } else if is(opt, "getack") || is(opt, "rdb-only") || is(opt, "rdb-filter-only") {
                // Only meaningful on a replication link; accepted elsewhere.
            } else {
                return Err(CmdError::other(format!(
                    "ERR Unrecognized REPLCONF option: {}",
                    String::from_utf8_lossy(opt)
                )));
            }
        }
        Ok(Some(Frame::ok()))
    }

    /// `PSYNC replid offset` / `SYNC`: the connection becomes a replication link.
    fn sync(&mut self, args: &[Bytes]) -> Outcome {
        if self.from_master {
            return Outcome::Reply(Frame::error_static(
                "ERR Replica can't SYNC from its master",
            ));
        }
        let mut req = self.repl_req.clone();
        if args.len() == 3 {
            let id = String::from_utf8_lossy(&args[1]).into_owned();
            let off = cmd::int(&args[2]).unwrap_or(-1);
            req.psync = Some((id, off));
        }
        Outcome::Replicate(req)
    }

    /// `REPLICAOF host port` / `REPLICAOF NO ONE`.
    fn replicaof(&mut self, args: &[Bytes]) -> Result<Frame, CmdError> {
        if is(&args[1], "NO") && is(&args[2], "ONE") {
            replication::replica::stop(&self.shared);
            return Ok(Frame::ok());
        }
        let host = String::from_utf8_lossy(&args[1]).into_owned();
        let port = cmd::int(&args[2])
            .ok()
            .and_then(|p| u16::try_from(p).ok())
            .ok_or_else(|| CmdError::other("ERR Invalid master port"))?;
        if self.from_master {
            return Err(CmdError::other(
                "ERR Command is not valid when client is a replica.",
            ));
        }
        let ours = self.shared.addr;
        let me = host
            .parse::<std::net::IpAddr>()
            .ok()
            .or_else(|| (host == "localhost").then_some(std::net::IpAddr::from([127, 0, 0, 1])))
            .is_some_and(|ip| {
                replication::replica::is_self(std::net::SocketAddr::new(ip, port), ours)
            });
        if me {
            return Err(CmdError::other("ERR Can't replicate from myself"));
        }
        let same = self
            .shared
            .repl
            .link()
            .as_ref()
            .is_some_and(|l| l.host.eq_ignore_ascii_case(&host) && l.port == port);
        if same && self.shared.repl.is_replica() {
            return Ok(Frame::simple("OK Already connected to specified master"));
        }
        tracing::info!(master = %format!("{host}:{port}"), "REPLICAOF: following a new master");
        replication::replica::start(&self.shared, host, port);
        Ok(Frame::ok())
    }

    /// `WAIT numreplicas timeout`: blocks (without blocking the server) until that many
    /// replicas acknowledged this client's last write, or the timeout.
    fn wait(&mut self, args: &[Bytes]) -> Outcome {
        let repl = self.shared.repl.clone();
        if repl.is_replica() {
            return Outcome::Reply(Frame::error_static(
                "ERR WAIT cannot be used with replica instances. Please also note that since Redis 4.0 if a replica is configured to be writable (which is not the default) writes to replicas are just local and are not propagated.",
            ));
        }
        // Redis parses the timeout first.
        let ms = match cmd::int(&args[2]) {
            Ok(ms) if ms >= 0 => ms as u64,
            Ok(_) => return Outcome::Reply(Frame::error_static("ERR timeout is negative")),
            Err(_) => {
                return Outcome::Reply(Frame::error_static(
                    "ERR timeout is not an integer or out of range",
                ));
            }
        };
        let Ok(n) = cmd::int(&args[1]) else {
            return Outcome::Reply(CmdError::NotInteger.to_frame());
        };
        let acked = repl.acked(self.woff);
        let resuming = self
            .blocked
            .as_ref()
            .map(|b| (b.notify.clone(), b.deadline));
        if acked as i64 >= n || self.multi.is_some() {
            if let Some((notify, _)) = resuming {
                repl.unwait(&notify);
            }
            return Outcome::Reply(Frame::Integer(acked as i64));
        }
        if let Some((notify, deadline)) = resuming {
            return Outcome::Block { notify, deadline };
        }
        let notify = Arc::new(Notify::new());
        repl.wait_acks(&notify);
        repl.request_acks();
        let deadline = (ms > 0).then(|| Instant::now() + Duration::from_millis(ms));
        self.blocked = Some(Blocked {
            args: args.to_vec(),
            db: self.db,
            keys: Vec::new(),
            notify: notify.clone(),
            deadline,
        });
        self.set_blocked_flag(true);
        Outcome::Block { notify, deadline }
    }

    fn ping(&self, args: &[Bytes]) -> Frame {
        if self.subscribed() && !self.resp3 {
            return Frame::Array(vec![
                Frame::bulk_static("pong"),
                Frame::Bulk(args.get(1).cloned().unwrap_or_default()),
            ]);
        }
        match args.get(1) {
            Some(m) if args.len() == 2 => Frame::Bulk(m.clone()),
            Some(_) => CmdError::Arity("ping".into()).to_frame(),
            None => Frame::simple("PONG"),
        }
    }

    fn hello(&mut self, args: &[Bytes]) -> Result<Frame, CmdError> {
        let mut proto = if self.resp3 { 3 } else { 2 };
        let mut i = 1;
        if let Some(v) = args.get(1) {
            let n = cmd::int(v).map_err(|_| {
                CmdError::other("ERR Protocol version is not an integer or out of range")
            })?;
            if n != 2 && n != 3 {
                return Err(CmdError::other("NOPROTO unsupported protocol version"));
            }
            proto = n;
            i = 2;
        }
        let mut name = None;
        while i < args.len() {
            if is(&args[i], "AUTH") && i + 2 < args.len() {
                self.check_password(&args[i + 1], &args[i + 2])?;
                i += 3;
            } else if is(&args[i], "SETNAME") && i + 1 < args.len() {
                name = Some(args[i + 1].clone());
                i += 2;
            } else {
                return Err(CmdError::other(format!(
                    "ERR Syntax error in HELLO option '{}'",
                    String::from_utf8_lossy(&args[i])
                )));
            }
        }
        if !self.authed {
            return Err(CmdError::other(
                "NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time",
            ));
        }
        if let Some(n) = name {
            self.set_name(&n)?;
        }
        self.resp3 = proto == 3;
        if let Ok(mut info) = self.handle.info.lock() {
            info.resp = proto as u8;
        }
        Ok(Frame::Map(vec![
            (Frame::bulk_static("server"), Frame::bulk_static("redis")),
            (
                Frame::bulk_static("version"),
                Frame::bulk_static(REDIS_VERSION),
            ),
            (Frame::bulk_static("proto"), Frame::Integer(proto)),
            (
                Frame::bulk_static("id"),
                Frame::Integer(self.handle.id as i64),
            ),
            (Frame::bulk_static("mode"), Frame::bulk_static("standalone")),
            (Frame::bulk_static("role"), Frame::bulk_static("master")),
            (Frame::bulk_static("modules"), Frame::Array(vec![])),
        ]))
    }

    fn check_password(&mut self, user: &[u8], pass: &[u8]) -> Result<(), CmdError> {
        let required = self.shared.config().requirepass.clone();
        if user != b"default" || (!required.is_empty() && pass != required.as_bytes()) {
            return Err(CmdError::other(
                "WRONGPASS invalid username-password pair or user is disabled.",
            ));
        }
        self.authed = true;
        Ok(())
    }

    fn auth(&mut self, args: &[Bytes]) -> Result<Frame, CmdError> {
        if args.len() > 3 {
            return Err(CmdError::Syntax);
        }
        if args.len() == 2 && self.shared.config().requirepass.is_empty() {
            return Err(CmdError::other(
                "ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?",
            ));
        }
        let (user, pass) = if args.len() == 3 {
            (&args[1][..], &args[2][..])
        } else {
            (&b"default"[..], &args[1][..])
        };
        self.check_password(user, pass)?;
        Ok(Frame::ok())
    }

    fn select(&mut self, args: &[Bytes]) -> Result<Frame, CmdError> {
        let n = cmd::int(&args[1])?;
        if n < 0 || n as usize >= self.shared.engine.databases() {
            return Err(CmdError::DbIndex);
        }
        self.db = n as usize;
        if let Ok(mut info) = self.handle.info.lock() {
            info.db = self.db;
        }
        Ok(Frame::ok())
    }

    fn set_name(&self, name: &[u8]) -> Result<(), CmdError> {
        if name.iter().any(|&c| c <= b' ' || c > b'~') {
            return Err(CmdError::other(
                "ERR Client names cannot contain spaces, newlines or special characters.",
            ));
        }
        if let Ok(mut info) = self.handle.info.lock() {
            info.name = String::from_utf8_lossy(name).into_owned();
        }
        Ok(())
    }

    fn client(&mut self, args: &[Bytes]) -> Outcome {
        let sub = String::from_utf8_lossy(&args[1]).to_ascii_lowercase();
        let wrong = || {
            // Below the subcommand's Redis arity it is an arity error; above, a syntax error.
            let arity: i32 = match sub.as_str() {
                "id" | "info" | "getname" | "unpause" | "help" => 2,
                "setname" | "no-evict" => 3,
                "kill" | "pause" => -3,
                _ => 0,
            };
            let n = args.len() as i32;
            if (arity > 0 && n != arity) || (arity < 0 && n < -arity) {
                return Outcome::Reply(sub_arity("client", &sub).to_frame());
            }
            Outcome::Reply(Frame::error(format!(
                "ERR unknown subcommand or wrong number of arguments for '{sub}'. Try CLIENT HELP."
            )))
        };
        let reply = |r: Result<Frame, CmdError>| Outcome::Reply(r.unwrap_or_else(|e| e.to_frame()));
        match (sub.as_str(), args.len()) {
            ("id", 2) => reply(Ok(Frame::Integer(self.handle.id as i64))),
            ("setname", 3) => reply(self.set_name(&args[2]).map(|()| Frame::ok())),
            ("getname", 2) => {
                let name = self
                    .handle
                    .info
                    .lock()
                    .map(|i| i.name.clone())
                    .unwrap_or_default();
                reply(Ok(if name.is_empty() {
                    Frame::Null
                } else {
                    Frame::bulk(name.as_bytes())
                }))
            }
            ("setinfo", 4) => {
                let v = String::from_utf8_lossy(&args[3]).into_owned();
                if let Ok(mut info) = self.handle.info.lock() {
                    if is(&args[2], "LIB-NAME") {
                        info.lib_name = v;
                    } else if is(&args[2], "LIB-VER") {
                        info.lib_ver = v;
                    } else {
                        return reply(Err(CmdError::other(format!(
                            "ERR Unrecognized option '{}'",
                            String::from_utf8_lossy(&args[2])
                        ))));
                    }
                }
                reply(Ok(Frame::ok()))
            }
            ("info", 2) => reply(Ok(Frame::Verbatim {
                format: *b"txt",
                text: Bytes::from(client_line(&self.handle)),
            })),
            ("list", _) => {
                let mut ids: Option<HashSet<u64>> = None;
                let mut i = 2;
                while i < args.len() {
                    if is(&args[i], "ID") {
                        let mut set = HashSet::new();
                        for a in &args[i + 1..] {
                            match cmd::uint(a) {
                                Ok(n) => set.insert(n),
                                Err(_) => {
                                    return reply(Err(CmdError::other("ERR Invalid client ID")));
                                }
                            };
                        }
                        ids = Some(set);
                        break;
                    } else if is(&args[i], "TYPE") && i + 1 < args.len() {
                        let t = &args[i + 1];
                        if !["normal", "slave", "replica", "pubsub", "master"]
                            .iter()
                            .any(|n| is(t, n))
                        {
                            return reply(Err(CmdError::other(format!(
                                "ERR Unknown client type '{}'",
                                String::from_utf8_lossy(t)
                            ))));
                        }
                        i += 2;
                    } else {
                        return reply(Err(CmdError::Syntax));
                    }
                }
                let mut clients: Vec<Arc<ClientHandle>> =
                    self.shared.clients().values().cloned().collect();
                clients.sort_by_key(|c| c.id);
                let mut text = String::new();
                for c in clients {
                    if ids.as_ref().is_none_or(|s| s.contains(&c.id)) {
                        text.push_str(&client_line(&c));
                    }
                }
                reply(Ok(Frame::Verbatim {
                    format: *b"txt",
                    text: Bytes::from(text),
                }))
            }
            ("kill", n) if n >= 3 => reply(self.client_kill(args)),
            ("no-evict", 3) => {
                if is(&args[2], "ON") {
                    self.no_evict = true;
                } else if is(&args[2], "OFF") {
                    self.no_evict = false;
                } else {
                    return reply(Err(CmdError::Syntax));
                }
                reply(Ok(Frame::ok()))
            }
            ("no-touch", 3) => reply(Ok(Frame::ok())),
            ("pause", 3 | 4) => {
                let Ok(ms) = cmd::int(&args[2]) else {
                    return reply(Err(CmdError::other(
                        "ERR timeout is not an integer or out of range",
                    )));
                };
                let Ok(ms) = u64::try_from(ms) else {
                    return reply(Err(CmdError::other("ERR timeout is negative")));
                };
                let all = match args.get(3) {
                    None => true,
                    Some(m) if is(m, "ALL") => true,
                    Some(m) if is(m, "WRITE") => false,
                    Some(_) => {
                        return reply(Err(CmdError::other(
                            "ERR CLIENT PAUSE mode must be WRITE or ALL",
                        )));
                    }
                };
                let until = Instant::now() + Duration::from_millis(ms);
                if let Ok(mut p) = self.shared.pause.lock() {
                    *p = Some((until, all));
                }
                self.shared.pause_active.store(true, Ordering::Relaxed);
                reply(Ok(Frame::ok()))
            }
            ("unpause", 2) => {
                if let Ok(mut p) = self.shared.pause.lock() {
                    *p = None;
                }
                self.shared.pause_active.store(false, Ordering::Relaxed);
                self.shared.unpause.notify_waiters();
                reply(Ok(Frame::ok()))
            }
            ("help", 2) => reply(Ok(Frame::Array(
                [
                    "CLIENT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
                    "ID",
                    "INFO",
                    "KILL",
                    "LIST",
                    "GETNAME",
                    "SETNAME",
                    "SETINFO",
                    "NO-EVICT",
                    "PAUSE",
                    "UNPAUSE",
                ]
                .iter()
                .map(|s| Frame::Simple(Bytes::from_static(s.as_bytes())))
                .collect(),
            ))),
            (
                "id" | "setname" | "getname" | "setinfo" | "info" | "kill" | "no-evict"
                | "no-touch" | "pause" | "unpause" | "help",
                _,
            ) => wrong(),
            _ => Outcome::Reply(Frame::error(format!(
                "ERR unknown subcommand '{}'. Try CLIENT HELP.",
                String::from_utf8_lossy(&args[1])
            ))),
        }
    }

    fn client_kill(&self, args: &[Bytes]) -> Result<Frame, CmdError> {
        let clients: Vec<Arc<ClientHandle>> = self.shared.clients().values().cloned().collect();
        if args.len() == 3 {
            // Old form: CLIENT KILL ip:port.
            let target = String::from_utf8_lossy(&args[2]).into_owned();
            let Some(c) = clients.iter().find(|c| c.addr.to_string() == target) else {
                return Err(CmdError::other("ERR No such client"));
            };
            c.kill.cancel();
            return Ok(Frame::ok());
        }
        if args.len() % 2 != 0 {
            return Err(CmdError::Syntax);
        }
        let mut skipme = true;
        let mut filters: Vec<(String, String)> = Vec::new();
        for pair in args[2..].chunks(2) {
            let k = String::from_utf8_lossy(&pair[0]).to_ascii_lowercase();
            let v = String::from_utf8_lossy(&pair[1]).into_owned();
            match k.as_str() {
                "skipme" if v.eq_ignore_ascii_case("yes") => skipme = true,
                "skipme" if v.eq_ignore_ascii_case("no") => skipme = false,
                "id" if !v.parse::<i64>().is_ok_and(|id| id > 0) => {
                    return Err(CmdError::other("ERR client-id should be greater than 0"));
                }
                "type"
                    if !["normal", "slave", "replica", "pubsub", "master"]
                        .iter()
                        .any(|t| v.eq_ignore_ascii_case(t)) =>
                {
                    return Err(CmdError::other(format!("ERR Unknown client type '{v}'")));
                }
                "user" if v != "default" => {
                    return Err(CmdError::other(format!("ERR No such user '{v}'")));
                }
                "id" | "addr" | "laddr" | "type" | "user" => filters.push((k, v)),
                _ => return Err(CmdError::Syntax),
            }
        }
        let mut killed = 0;
        for c in &clients {
            if skipme && c.id == self.handle.id {
                continue;
            }
            let subscribed = c.info.lock().map(|i| i.subscriptions > 0).unwrap_or(false);
            let hit = filters.iter().all(|(k, v)| match k.as_str() {
                "id" => v.parse::<u64>().is_ok_and(|id| id == c.id),
                "addr" => c.addr.to_string() == *v,
                "laddr" => c.laddr.to_string() == *v,
                "type" => {
                    let (master, replica) = c
                        .info
                        .lock()
                        .map(|i| (i.master, i.replica))
                        .unwrap_or_default();
                    match v.to_ascii_lowercase().as_str() {
                        "pubsub" => subscribed,
                        "master" => master,
                        "replica" | "slave" => replica,
                        "normal" => !subscribed && !master && !replica,
                        _ => false,
                    }
                }
                "user" => v == "default",
                _ => false,
            });
            if hit {
                c.kill.cancel();
                killed += 1;
            }
        }
        Ok(Frame::Integer(killed))
    }

    fn config(&mut self, args: &[Bytes]) -> Result<Frame, CmdError> {
        let sub = String::from_utf8_lossy(&args[1]).to_ascii_lowercase();
        match sub.as_str() {
            "get" | "set" if args.len() < if sub == "get" { 3 } else { 4 } => {
                Err(sub_arity("config", &sub))
            }
            "resetstat" | "rewrite" | "help" if args.len() != 2 => Err(sub_arity("config", &sub)),
            "set" if args.len() % 2 != 0 => Err(CmdError::Syntax),
            "get" => {
                let params = self.shared.config().params();
                let mut out = Vec::new();
                let mut seen = HashSet::new();
                for pat in &args[2..] {
                    // A name without glob characters is looked up directly and echoed as given.
                    if !pat.iter().any(|c| matches!(c, b'[' | b'*' | b'?')) {
                        let hit = params
                            .iter()
                            .find(|(n, _)| n.as_bytes().eq_ignore_ascii_case(pat));
                        if let Some((name, value)) = hit {
                            if seen.insert(*name) {
                                out.push((Frame::Bulk(pat.clone()), Frame::bulk(value.as_bytes())));
                            }
                        }
                        continue;
                    }
                    for (name, value) in &params {
                        if glob::matches(pat, name.as_bytes(), true) && seen.insert(*name) {
                            out.push((Frame::bulk(name.as_bytes()), Frame::bulk(value.as_bytes())));
                        }
                    }
                }
                Ok(Frame::Map(out))
            }
            "set" if args.len() >= 4 && args.len() % 2 == 0 => {
                let mut cfg = self.shared.config().clone();
                let mut names = HashSet::new();
                for pair in args[2..].chunks(2) {
                    let name = String::from_utf8_lossy(&pair[0]).into_owned();
                    if !names.insert(name.to_ascii_lowercase()) {
                        return Err(CmdError::other(format!(
                            "ERR CONFIG SET failed (possibly related to argument '{name}') - duplicate parameter"
                        )));
                    }
                    let value = String::from_utf8_lossy(&pair[1]).into_owned();
                    cfg.set_param(&name, &value).map_err(|e| match e {
                        ConfigError::Unknown(_) | ConfigError::Immutable(_) => CmdError::other(format!(
                            "ERR Unknown option or number of arguments for CONFIG SET - '{name}'"
                        )),
                        ConfigError::Invalid { reason, .. } => CmdError::other(format!(
                            "ERR CONFIG SET failed (possibly related to argument '{name}') - {reason}"
                        )),
                        other => CmdError::other(format!(
                            "ERR CONFIG SET failed (possibly related to argument '{name}') - {other}"
                        )),
                    })?;
                }
                *self
                    .shared
                    .config
                    .write()
                    .unwrap_or_else(std::sync::PoisonError::into_inner) = cfg.clone();
                self.shared
                    .maxmemory
                    .store(cfg.maxmemory, Ordering::Relaxed);
                self.shared.repl.configure(&cfg);
                // Persistence: fsync policy, `appendonly` turned on or off.
                crate::persist::apply_config(&self.shared, &cfg.persist);
                self.shared.fencing.configure(cfg.write_fencing);
                Ok(Frame::ok())
            }
            "resetstat" if args.len() == 2 => {
                let s = &self.shared.stats;
                for c in [
                    &s.commands,
                    &s.connections,
                    &s.rejected,
                    &s.net_in,
                    &s.net_out,
                    &s.errors,
                    &s.pubsub_messages,
                ] {
                    c.store(0, Ordering::Relaxed);
                }
                self.shared.engine.reset_stats();
                Ok(Frame::ok())
            }
            "rewrite" if args.len() == 2 => Err(CmdError::other(
                "ERR The server is running without a config file",
            )),
            "help" => Ok(Frame::Array(
                [
                    "CONFIG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
                    "GET <pattern>",
                    "SET <directive> <value>",
                    "RESETSTAT",
                    "REWRITE",
                ]
                .iter()
                .map(|s| Frame::Simple(Bytes::from_static(s.as_bytes())))
                .collect(),
            )),
            "set" | "resetstat" | "rewrite" => Err(CmdError::other(format!(
                "ERR unknown subcommand or wrong number of arguments for '{sub}'. Try CONFIG HELP."
            ))),
            _ => Err(unknown_subcommand("CONFIG", &args[1])),
        }
    }

    fn debug(&mut self, args: &[Bytes]) -> Outcome {
        let sub = String::from_utf8_lossy(&args[1]).to_ascii_lowercase();
        match (sub.as_str(), args.len()) {
            ("sleep", 3) => match cmd::float(&args[2]) {
                Ok(s) if (0.0..1e9).contains(&s) => Outcome::Sleep(Duration::from_secs_f64(s)),
                _ => Outcome::Reply(CmdError::NotFloat.to_frame()),
            },
            ("set-active-expire", 3) => {
                // Active expiry always runs; accepted so test suites written for Redis work.
                Outcome::Reply(Frame::ok())
            }
            _ => Outcome::Reply(Frame::error(format!(
                "ERR unknown subcommand '{}'. Try DEBUG HELP.",
                String::from_utf8_lossy(&args[1])
            ))),
        }
    }

    fn multi(&mut self) -> Result<Frame, CmdError> {
        if self.multi.is_some() {
            return Err(CmdError::other("ERR MULTI calls can not be nested"));
        }
        self.multi = Some(Vec::new());
        self.multi_error = false;
        Ok(Frame::ok())
    }

    fn discard(&mut self) -> Result<Frame, CmdError> {
        if self.multi.take().is_none() {
            return Err(CmdError::other("ERR DISCARD without MULTI"));
        }
        self.unwatch();
        Ok(Frame::ok())
    }

    fn exec(&mut self) -> Outcome {
        let Some(queue) = self.multi.take() else {
            return Outcome::Reply(Frame::error_static("ERR EXEC without MULTI"));
        };
        if self.multi_error {
            self.unwatch();
            return Outcome::Reply(Frame::error_static(
                "EXECABORT Transaction discarded because of previous errors.",
            ));
        }
        // The write refusals are checked again when the transaction runs, as Redis does: the
        // lease majority, the master role or the good replicas a queued write saw may be gone.
        let writes = queue
            .iter()
            .any(|a| cmd::lookup(&a[0]).is_some_and(|s| s.has(WRITE)));
        if writes && !self.from_master {
            if let Some(Frame::Error(why)) = self.refuse_write(true) {
                self.unwatch();
                let mut msg = b"EXECABORT Transaction discarded because of: ".to_vec();
                msg.extend_from_slice(&why);
                return Outcome::Reply(Frame::Error(Bytes::from(msg)));
            }
        }
        let shared = self.shared.clone();
        let _gate = shared.gate.write();
        if self.watch_dirty.load(Ordering::Acquire) {
            self.unwatch();
            return Outcome::Reply(Frame::NullArray);
        }
        self.unwatch();
        let mut replies = Vec::with_capacity(queue.len());
        self.multi_prop = None;
        for args in queue {
            match self.dispatch(args, true) {
                Outcome::Reply(f) => replies.push(f),
                Outcome::Many(fs) => replies.extend(fs),
                _ => replies.push(Frame::error_static(
                    "ERR command not allowed in a transaction",
                )),
            }
        }
        // The transaction's writes reach replicas as one block, fed while the gate is still
        // held exclusively, so nothing interleaves with it.
        if let Some(cmds) = self.multi_prop.take().filter(|c| !c.is_empty()) {
            let multi = [Bytes::from_static(b"MULTI")];
            let exec = [Bytes::from_static(b"EXEC")];
            let first = cmds[0].0;
            let block = std::iter::once((Some(first), &multi[..]))
                .chain(cmds.iter().map(|(db, c)| (Some(*db), &c[..])))
                .chain(std::iter::once((None, &exec[..])));
            self.woff = shared.repl.feed(block).0;
        }
        Outcome::Reply(Frame::Array(replies))
    }

    fn watch(&mut self, args: &[Bytes]) -> Result<Frame, CmdError> {
        if self.multi.is_some() {
            return Err(CmdError::other("ERR WATCH inside MULTI is not allowed"));
        }
        let mut reg = self.shared.registry();
        for k in &args[1..] {
            let key = (self.db, Sds::new(k));
            if self.watching.contains(&key) {
                continue;
            }
            reg.watched
                .entry(key.clone())
                .or_default()
                .push((self.handle.id, self.watch_dirty.clone()));
            self.watching.push(key);
        }
        self.shared.recount(&reg);
        Ok(Frame::ok())
    }

    fn unwatch(&mut self) {
        if !self.watching.is_empty() {
            let mut reg = self.shared.registry();
            for key in self.watching.drain(..) {
                if let Some(v) = reg.watched.get_mut(&key) {
                    v.retain(|(id, _)| *id != self.handle.id);
                    if v.is_empty() {
                        reg.watched.remove(&key);
                    }
                }
            }
            self.shared.recount(&reg);
        }
        self.watch_dirty.store(false, Ordering::Release);
    }

    fn reset(&mut self) {
        self.multi = None;
        self.unwatch();
        let all: Vec<Bytes> = self.channels.drain().collect();
        for c in all {
            self.shared.pubsub.unsubscribe(&c, false, self.handle.id);
        }
        let all: Vec<Bytes> = self.patterns.drain().collect();
        for p in all {
            self.shared.pubsub.unsubscribe(&p, true, self.handle.id);
        }
        self.db = 0;
        self.resp3 = false;
        self.no_evict = false;
        self.authed = self.shared.config().requirepass.is_empty();
        if let Ok(mut info) = self.handle.info.lock() {
            info.name.clear();
            info.db = 0;
            info.resp = 2;
        }
        self.sync_sub_count();
    }

    fn sync_sub_count(&self) {
        if let Ok(mut info) = self.handle.info.lock() {
            info.subscriptions = self.channels.len() + self.patterns.len();
        }
    }

    fn subscribe(&mut self, args: &[Bytes]) -> Vec<Frame> {
        let pattern = is(&args[0], "PSUBSCRIBE");
        let kind = if pattern { "psubscribe" } else { "subscribe" };
        let mut out = Vec::new();
        for ch in &args[1..] {
            let set = if pattern {
                &mut self.patterns
            } else {
                &mut self.channels
            };
            if set.insert(ch.clone()) {
                self.shared.pubsub.subscribe(
                    ch,
                    pattern,
                    Subscriber {
                        tx: self.push_tx.clone(),
                        handle: self.handle.clone(),
                    },
                );
            }
            out.push(Frame::Push(vec![
                Frame::bulk(kind.as_bytes()),
                Frame::Bulk(ch.clone()),
                Frame::Integer((self.channels.len() + self.patterns.len()) as i64),
            ]));
        }
        self.sync_sub_count();
        out
    }

    fn unsubscribe(&mut self, args: &[Bytes]) -> Vec<Frame> {
        let pattern = is(&args[0], "PUNSUBSCRIBE");
        let kind = if pattern {
            "punsubscribe"
        } else {
            "unsubscribe"
        };
        let names: Vec<Bytes> = if args.len() > 1 {
            args[1..].to_vec()
        } else if pattern {
            self.patterns.iter().cloned().collect()
        } else {
            self.channels.iter().cloned().collect()
        };
        let mut out = Vec::new();
        for ch in &names {
            let set = if pattern {
                &mut self.patterns
            } else {
                &mut self.channels
            };
            if set.remove(ch) {
                self.shared.pubsub.unsubscribe(ch, pattern, self.handle.id);
            }
            out.push(Frame::Push(vec![
                Frame::bulk(kind.as_bytes()),
                Frame::Bulk(ch.clone()),
                Frame::Integer((self.channels.len() + self.patterns.len()) as i64),
            ]));
        }
        if names.is_empty() {
            out.push(Frame::Push(vec![
                Frame::bulk(kind.as_bytes()),
                Frame::Null,
                Frame::Integer((self.channels.len() + self.patterns.len()) as i64),
            ]));
        }
        self.sync_sub_count();
        out
    }

    fn pubsub(&self, args: &[Bytes]) -> Result<Frame, CmdError> {
        let sub = String::from_utf8_lossy(&args[1]).to_ascii_lowercase();
        match (sub.as_str(), args.len()) {
            ("channels", 2 | 3) => Ok(Frame::Array(
                self.shared
                    .pubsub
                    .channels(args.get(2).map(|p| &p[..]))
                    .into_iter()
                    .map(Frame::Bulk)
                    .collect(),
            )),
            ("numsub", _) => Ok(Frame::Array(
                args[2..]
                    .iter()
                    .flat_map(|c| {
                        [
                            Frame::Bulk(c.clone()),
                            Frame::Integer(self.shared.pubsub.numsub(c) as i64),
                        ]
                    })
                    .collect(),
            )),
            ("numpat", 2) => Ok(Frame::Integer(self.shared.pubsub.numpat() as i64)),
            ("help", 2) => Ok(help_reply(PUBSUB_HELP)),
            ("numpat" | "help", _) => Err(sub_arity("pubsub", &sub)),
            ("channels", _) => Err(CmdError::other(format!(
                "ERR unknown subcommand or wrong number of arguments for '{}'. Try PUBSUB HELP.",
                String::from_utf8_lossy(&args[1])
            ))),
            _ => Err(unknown_subcommand("PUBSUB", &args[1])),
        }
    }

    fn info(&self, args: &[Bytes]) -> Frame {
        let text = crate::info::render(&self.shared, &args[1..]);
        if self.resp3 {
            Frame::Verbatim {
                format: *b"txt",
                text: Bytes::from(text),
            }
        } else {
            Frame::Bulk(Bytes::from(text))
        }
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        self.end_batch();
        if let Some(b) = self.blocked.take() {
            self.shared.repl.unwait(&b.notify);
            let keys: Vec<&[u8]> = b.keys.iter().map(|k| &k[..]).collect();
            unregister_blocked(&self.shared, self.handle.id, &b.notify, b.db, &keys);
        }
        self.reset();
    }
}

/// The keys a successful write changed, out of the keys it locked: commands that read sources
/// and store into a destination change only the destination, so a WATCH on a source (and a
/// client blocked on one) is not disturbed, as in Redis.
fn written_keys<'k>(name: &str, keys: &'k [&'k [u8]]) -> &'k [&'k [u8]] {
    match name {
        "copy" => keys.get(1..2).unwrap_or(keys),
        "sinterstore" | "sunionstore" | "sdiffstore" | "zunionstore" | "zinterstore"
        | "zdiffstore" | "zrangestore" => keys.get(..1).unwrap_or(keys),
        _ => keys,
    }
}

/// The (database, key) that MOVE and COPY .. DB wrote outside the selected database.
fn other_db_write<'a>(name: &str, args: &'a [Bytes]) -> Option<(usize, &'a [u8])> {
    let db = |a: &Bytes| cmd::int(a).ok().and_then(|n| usize::try_from(n).ok());
    match name {
        "move" => Some((db(args.get(2)?)?, &args[1][..])),
        "copy" => {
            let at = args.iter().rposition(|a| is(a, "DB"))?;
            (at >= 3).then_some(())?;
            Some((db(args.get(at + 1)?)?, &args[2][..]))
        }
        _ => None,
    }
}

/// The keyspace after a write, as the stream rewrite reads it.
struct ViewState<'a> {
    ks: &'a mut dyn crate::engine::Keyspace,
    db: usize,
}

impl PostState for ViewState<'_> {
    fn expire_at(&mut self, key: &[u8]) -> Option<u64> {
        self.ks.peek(self.db, key).map(|e| e.expire_at)
    }

    fn string(&mut self, key: &[u8]) -> Option<Bytes> {
        match &self.ks.peek(self.db, key)?.value {
            Value::Str(s) => Some(Bytes::copy_from_slice(s)),
            _ => None,
        }
    }

    fn hash_field(&mut self, key: &[u8], field: &[u8]) -> Option<Bytes> {
        match &self.ks.peek(self.db, key)?.value {
            Value::Hash(h) => h.get(field).map(|v| Bytes::copy_from_slice(v)),
            _ => None,
        }
    }
}

/// `Shared::touch` with existence judged by a locked view.
/// `Shared::touch` with readiness judged by a locked view: blocked clients wait for a list or a
/// sorted set, so a key that holds another type wakes nobody (as in Redis).
fn touch_view(shared: &Shared, db: usize, keys: &[&[u8]], ks: &mut dyn crate::engine::Keyspace) {
    let cell = std::cell::RefCell::new(ks);
    shared.touch(db, keys, &|k| {
        cell.borrow_mut()
            .peek(db, k)
            .is_some_and(|e| matches!(e.value, Value::List(_) | Value::ZSet(_)))
    });
}

/// The keys a blocking command waits on: only the source of a move (Redis blocks on it alone).
fn block_keys<'a, T>(spec: &CommandSpec, keys: &'a [T]) -> &'a [T] {
    if matches!(spec.name, "blmove" | "brpoplpush") {
        &keys[..keys.len().min(1)]
    } else {
        keys
    }
}

fn unregister_blocked(shared: &Shared, id: u64, notify: &Arc<Notify>, db: usize, keys: &[&[u8]]) {
    let mut reg = shared.registry();
    for k in keys {
        let key = (db, Sds::new(k));
        if let Some(q) = reg.blocked.get_mut(&key) {
            q.retain(|(cid, n)| *cid != id || !Arc::ptr_eq(n, notify));
            if q.is_empty() {
                reg.blocked.remove(&key);
            }
        }
    }
    shared.recount(&reg);
}

/// When a blocking command gives up: its timeout argument, in seconds (0 = never).
fn block_deadline(spec: &CommandSpec, args: &[Bytes]) -> Result<Option<Instant>, CmdError> {
    let pos = if matches!(spec.name, "blmpop" | "bzmpop") {
        1
    } else {
        args.len() - 1
    };
    Ok(cmd::lists::block_timeout(&args[pos])?.and_then(|d| Instant::now().checked_add(d)))
}

fn block_timeout_reply(spec: &CommandSpec) -> Frame {
    match spec.name {
        "blmove" | "brpoplpush" => Frame::Null,
        _ => Frame::NullArray,
    }
}

fn arity_ok(spec: &CommandSpec, n: usize) -> bool {
    let n = n as i32;
    if spec.arity >= 0 {
        n == spec.arity
    } else {
        n >= -spec.arity
    }
}

fn unknown_command(args: &[Bytes]) -> Frame {
    // Built from bytes: Redis echoes the client's bytes as they are, not as UTF-8.
    let mut msg = b"ERR unknown command '".to_vec();
    msg.extend_from_slice(&args[0][..args[0].len().min(128)]);
    msg.extend_from_slice(b"', with args beginning with: ");
    let mut budget = 128usize;
    for a in &args[1..] {
        if budget == 0 {
            break;
        }
        let take = a.len().min(budget);
        msg.push(b'\'');
        msg.extend_from_slice(&a[..take]);
        msg.extend_from_slice(b"' ");
        budget -= take;
    }
    Frame::Error(Bytes::from(msg))
}

fn client_line(c: &ClientHandle) -> String {
    let info = c.info.lock().map(|i| i.clone()).unwrap_or_default();
    let idle = info
        .last_active
        .map_or(c.since.elapsed(), |t| t.elapsed())
        .as_secs();
    let flags = if info.master {
        "M"
    } else if info.replica {
        "S"
    } else if info.blocked {
        "b"
    } else if info.subscriptions > 0 {
        "P"
    } else if info.multi {
        "x"
    } else {
        "N"
    };
    format!(
        "id={} addr={} laddr={} fd=0 name={} age={} idle={} flags={} db={} sub={} psub=0 ssub=0 multi=-1 qbuf=0 qbuf-free=0 argv-mem=0 multi-mem=0 rbs=16384 rbp=0 obl=0 oll=0 omem={} tot-mem=0 events=r cmd={} user=default redir=-1 resp={} lib-name={} lib-ver={}\n",
        c.id,
        c.addr,
        c.laddr,
        info.name,
        c.since.elapsed().as_secs(),
        idle,
        flags,
        info.db,
        info.subscriptions,
        info.omem,
        if info.last_cmd.is_empty() {
            "NULL"
        } else {
            &info.last_cmd
        },
        info.resp,
        info.lib_name,
        info.lib_ver,
    )
}

fn flag_names(spec: &CommandSpec) -> Vec<Frame> {
    let mut f = Vec::new();
    for (bit, name) in [
        (WRITE, "write"),
        (READONLY, "readonly"),
        (DENYOOM, "denyoom"),
        (ADMIN, "admin"),
        (PUBSUB, "pubsub"),
        (NOAUTH, "no_auth"),
        (BLOCKING, "blocking"),
        (FAST, "fast"),
        (NOMULTI, "no_multi"),
        (LOADING_OK, "loading"),
    ] {
        if spec.has(bit) {
            f.push(Frame::Simple(Bytes::from_static(name.as_bytes())));
        }
    }
    f
}

fn command_info(spec: &CommandSpec) -> Frame {
    let (first, last, step) = spec.keys.legacy();
    Frame::Array(vec![
        Frame::bulk(spec.name.as_bytes()),
        Frame::Integer(spec.arity.into()),
        Frame::Set(flag_names(spec)),
        Frame::Integer(first),
        Frame::Integer(last),
        Frame::Integer(step),
        Frame::Set(vec![Frame::Simple(Bytes::from(format!("@{}", spec.group)))]),
        Frame::Array(vec![]),
        Frame::Array(vec![]),
        Frame::Array(vec![]),
    ])
}

fn command_docs(spec: &CommandSpec) -> Frame {
    Frame::Map(vec![
        (
            Frame::bulk_static("summary"),
            Frame::bulk(spec.name.as_bytes()),
        ),
        (Frame::bulk_static("since"), Frame::bulk_static("1.0.0")),
        (
            Frame::bulk_static("group"),
            Frame::bulk(spec.group.as_bytes()),
        ),
    ])
}

fn command(args: &[Bytes]) -> Result<Frame, CmdError> {
    let table = cmd::table();
    let mut all: Vec<&&CommandSpec> = table.values().collect();
    all.sort_by_key(|c| c.name);
    let Some(sub) = args.get(1) else {
        return Ok(Frame::Array(all.iter().map(|c| command_info(c)).collect()));
    };
    let name = sub;
    let sub = String::from_utf8_lossy(sub).to_ascii_lowercase();
    match sub.as_str() {
        "count" | "help" if args.len() != 2 => Err(sub_arity("command", &sub)),
        "getkeys" if args.len() < 4 => Err(sub_arity("command", &sub)),
        "count" => Ok(Frame::Integer(all.len() as i64)),
        "list" => Ok(Frame::Array(
            all.iter().map(|c| Frame::bulk(c.name.as_bytes())).collect(),
        )),
        "info" => Ok(Frame::Array(if args.len() == 2 {
            all.iter().map(|c| command_info(c)).collect()
        } else {
            args[2..]
                .iter()
                .map(|n| cmd::lookup(n).map_or(Frame::Null, command_info))
                .collect()
        })),
        "docs" => Ok(Frame::Map(if args.len() == 2 {
            all.iter()
                .map(|c| (Frame::bulk(c.name.as_bytes()), command_docs(c)))
                .collect()
        } else {
            args[2..]
                .iter()
                .filter_map(|n| cmd::lookup(n))
                .map(|c| (Frame::bulk(c.name.as_bytes()), command_docs(c)))
                .collect()
        })),
        "getkeys" => {
            let Some(spec) = cmd::lookup(&args[2]) else {
                return Err(CmdError::other("ERR Invalid command specified"));
            };
            let inner = &args[2..];
            if matches!(spec.keys, KeySpec::None) {
                return Err(CmdError::other("ERR The command has no key arguments"));
            }
            if !arity_ok(spec, inner.len()) {
                return Err(CmdError::other(
                    "ERR Invalid number of arguments specified for command",
                ));
            }
            let idx = spec.keys.indexes(inner);
            if idx.is_empty() {
                return Err(CmdError::other("ERR The command has no key arguments"));
            }
            Ok(Frame::Array(
                idx.iter().map(|&i| Frame::Bulk(inner[i].clone())).collect(),
            ))
        }
        _ => Err(unknown_subcommand("COMMAND", name)),
    }
}

/// Subcommands of container commands with their Redis arity (the container's name counted),
/// checked before the command runs or is queued, as Redis' command lookup does.
const SUBCOMMANDS: &[(&str, &[(&str, i32)])] = &[
    (
        "client",
        &[
            ("id", 2),
            ("info", 2),
            ("list", -2),
            ("kill", -3),
            ("getname", 2),
            ("setname", 3),
            ("pause", -3),
            ("unpause", 2),
            ("no-evict", 3),
            ("help", 2),
            ("reply", 3),
            ("tracking", -3),
            ("caching", 3),
            ("getredir", 2),
            ("trackinginfo", 2),
            ("unblock", -3),
            ("setinfo", 4),
            ("no-touch", 3),
        ],
    ),
    (
        "config",
        &[
            ("get", -3),
            ("set", -4),
            ("resetstat", 2),
            ("rewrite", 2),
            ("help", 2),
        ],
    ),
    (
        "command",
        &[
            ("count", 2),
            ("list", -2),
            ("info", -2),
            ("docs", -2),
            ("getkeys", -4),
            ("getkeysandflags", -4),
            ("help", 2),
        ],
    ),
    (
        "pubsub",
        &[
            ("channels", -2),
            ("numsub", -2),
            ("numpat", 2),
            ("help", 2),
            ("shardchannels", -2),
            ("shardnumsub", -2),
        ],
    ),
    (
        "vigil",
        &[
            ("clock", 2),
            ("lease", -7),
            ("revoke", 2),
            ("leases", 2),
            ("help", 2),
        ],
    ),
    (
        "object",
        &[
            ("encoding", 3),
            ("freq", 3),
            ("idletime", 3),
            ("refcount", 3),
            ("help", 2),
        ],
    ),
];

/// `VIGIL HELP`.
const VIGIL_HELP: &[&str] = &[
    "VIGIL <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "CLOCK",
    "    Return this node's monotonic clock, in microseconds since it started.",
    "LEASE <sentinel-id> <start-us> <ttl-ms> <majority> <run-id-prefix> [<members-epoch>]",
    "    Grant a write lease valid from <start-us> (a VIGIL CLOCK reading) for <ttl-ms>.",
    "    Writes on a fenced master need unexpired leases from <majority> sentinels;",
    "    only the leases of the newest <members-epoch> among the unexpired ones count.",
    "    <run-id-prefix> is the first 16 characters of INFO server run_id.",
    "REVOKE",
    "    Drop every lease, and refuse from now on every grant whose <start-us> is not",
    "    later than this node's clock now (a grant sent before the revocation never counts).",
    "LEASES",
    "    Return [sentinel-id, remaining-ms] for each unexpired lease.",
    "HELP",
    "    Prints this help.",
];

/// The error Redis gives for an unknown subcommand or a subcommand's wrong arity, if any.
fn subcommand_error(name: &str, args: &[Bytes]) -> Option<CmdError> {
    let (_, subs) = SUBCOMMANDS.iter().find(|(c, _)| *c == name)?;
    let sub = args.get(1)?;
    let Some((sub, arity)) = subs
        .iter()
        .find(|(s, _)| sub.eq_ignore_ascii_case(s.as_bytes()))
    else {
        return Some(unknown_subcommand(&name.to_ascii_uppercase(), sub));
    };
    let n = args.len() as i32;
    let ok = if *arity >= 0 {
        n == *arity
    } else {
        n >= -*arity
    };
    (!ok).then(|| sub_arity(name, sub))
}

/// Redis' arity error for a subcommand, such as `'client|setname'`.
fn sub_arity(container: &str, sub: &str) -> CmdError {
    CmdError::other(format!(
        "ERR wrong number of arguments for '{container}|{sub}' command"
    ))
}

/// Redis' error for a subcommand it does not have; the name is shown as the client sent it.
fn unknown_subcommand(container: &str, sub: &[u8]) -> CmdError {
    CmdError::other(format!(
        "ERR unknown subcommand '{}'. Try {container} HELP.",
        String::from_utf8_lossy(&sub[..sub.len().min(128)])
    ))
}

fn help_reply(lines: &[&'static str]) -> Frame {
    Frame::Array(
        lines
            .iter()
            .map(|s| Frame::Simple(Bytes::from_static(s.as_bytes())))
            .collect(),
    )
}

/// `PUBSUB HELP`, as Redis 7.0 prints it.
const PUBSUB_HELP: &[&str] = &[
    "PUBSUB <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "CHANNELS [<pattern>]",
    "    Return the currently active channels matching a <pattern> (default: '*').",
    "NUMPAT",
    "    Return number of subscriptions to patterns.",
    "NUMSUB [<channel> ...]",
    "    Return the number of subscribers for the specified channels, excluding",
    "    pattern subscriptions(default: no channels).",
    "SHARDCHANNELS [<pattern>]",
    "    Return the currently active shard level channels matching a <pattern> (default: '*').",
    "SHARDNUMSUB [<shardchannel> ...]",
    "    Return the number of subscribers for the specified shard level channel(s)",
    "HELP",
    "    Prints this help.",
];

const fn conn(name: &'static str, arity: i32, flags: u32, group: &'static str) -> CommandSpec {
    CommandSpec {
        name,
        arity,
        flags,
        keys: KeySpec::None,
        handler: Handler::Conn,
        group,
    }
}

/// Connection and server commands, run by the session itself.
pub static COMMANDS: &[CommandSpec] = &[
    conn("ping", -1, FAST | PUBSUB | LOADING_OK, "connection"),
    conn("echo", 2, FAST | LOADING_OK, "connection"),
    conn("quit", -1, NOAUTH | PUBSUB | LOADING_OK, "connection"),
    conn("hello", -1, NOAUTH | FAST | LOADING_OK, "connection"),
    conn("auth", -2, NOAUTH | FAST | LOADING_OK, "connection"),
    conn("select", 2, FAST | LOADING_OK, "connection"),
    conn("client", -2, ADMIN | LOADING_OK, "connection"),
    conn(
        "reset",
        1,
        NOAUTH | PUBSUB | FAST | LOADING_OK,
        "connection",
    ),
    conn("config", -2, ADMIN | LOADING_OK, "server"),
    conn("info", -1, LOADING_OK, "server"),
    conn("role", 1, FAST | LOADING_OK, "server"),
    conn("time", 1, FAST | LOADING_OK, "server"),
    conn("lastsave", 1, FAST | LOADING_OK, "server"),
    // Persistence (see `persist`).
    conn("save", 1, ADMIN | NOMULTI, "server"),
    conn("bgsave", -1, ADMIN, "server"),
    conn("bgrewriteaof", 1, ADMIN, "server"),
    conn("command", -1, LOADING_OK, "server"),
    conn("debug", -2, ADMIN | LOADING_OK, "server"),
    conn("shutdown", -1, ADMIN | LOADING_OK, "server"),
    conn("multi", 1, FAST | NOMULTI | LOADING_OK, "transactions"),
    conn("exec", 1, NOMULTI | LOADING_OK, "transactions"),
    conn("discard", 1, FAST | NOMULTI | LOADING_OK, "transactions"),
    conn("watch", -2, FAST | NOMULTI | LOADING_OK, "transactions"),
    conn("unwatch", 1, FAST | LOADING_OK, "transactions"),
    conn("replconf", -1, ADMIN | NOAUTH | LOADING_OK, "server"),
    conn("psync", -3, ADMIN | NOMULTI, "server"),
    conn("sync", 1, ADMIN | NOMULTI, "server"),
    conn("replicaof", 3, ADMIN | NOMULTI | LOADING_OK, "server"),
    conn("slaveof", 3, ADMIN | NOMULTI | LOADING_OK, "server"),
    conn("wait", 3, 0, "generic"),
    // Write fencing (see `fencing`): never a write, so replicas, loading and paused nodes
    // answer it, and it is never propagated.
    conn("vigil", -2, ADMIN | FAST | LOADING_OK, "server"),
];
