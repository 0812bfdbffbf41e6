//! The storage seam: `trait Engine`, the value model, and the locked view commands work on.
//!
//! A command never touches storage directly: the dispatcher asks the engine to lock the shards
//! that hold the command's keys (in a fixed order, so two multi-key commands cannot deadlock) and
//! runs the command against the resulting `Keyspace` view. Everything a command does inside one
//! view is atomic with respect to every other command.
//!
//! Invariants: a view only answers for keys in the shards it locked (asking for another key is
//! our bug and panics); logically expired keys are never returned by `get`.

pub mod memory;
pub mod paged;
pub mod zset;

use std::collections::{HashSet, VecDeque};

use foldhash::fast::RandomState;
use indexmap::IndexMap;

use crate::sds::Sds;
pub use zset::ZSet;

/// Hash map type for stored hashes: insertion-ordered, like Redis' small-hash listpack.
pub type HashValue = IndexMap<Sds, Sds, RandomState>;
/// Hash set type for stored sets.
pub type SetValue = HashSet<Sds, RandomState>;
/// List type for stored lists.
pub type ListValue = VecDeque<Sds>;

/// A stored value.
#[derive(Clone, Debug)]
pub enum Value {
    /// A string (also integers and floats, in their decimal form).
    Str(Sds),
    /// A list.
    List(Box<ListValue>),
    /// A hash.
    Hash(Box<HashValue>),
    /// A set.
    Set(Box<SetValue>),
    /// A sorted set.
    ZSet(Box<ZSet>),
}

impl Value {
    /// The name `TYPE` prints.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Str(_) => "string",
            Value::List(_) => "list",
            Value::Hash(_) => "hash",
            Value::Set(_) => "set",
            Value::ZSet(_) => "zset",
        }
    }

    /// A rough count of heap bytes, for eviction accounting and `MEMORY USAGE`.
    pub fn approx_size(&self) -> usize {
        match self {
            Value::Str(s) => s.heap_size(),
            Value::List(l) => l.iter().map(|e| 24 + e.heap_size()).sum(),
            Value::Hash(h) => h
                .iter()
                .map(|(k, v)| 56 + k.heap_size() + v.heap_size())
                .sum(),
            Value::Set(s) => s.iter().map(|e| 32 + e.heap_size()).sum(),
            Value::ZSet(z) => z.len() * 96,
        }
    }

    /// True for an empty collection, which must not stay in the keyspace.
    pub fn is_empty_collection(&self) -> bool {
        match self {
            Value::Str(_) => false,
            Value::List(l) => l.is_empty(),
            Value::Hash(h) => h.is_empty(),
            Value::Set(s) => s.is_empty(),
            Value::ZSet(z) => z.is_empty(),
        }
    }
}

/// One key with its value and metadata.
#[derive(Clone, Debug)]
pub struct Entry {
    /// The key.
    pub key: Sds,
    /// The value.
    pub value: Value,
    /// Absolute expiry time in Unix milliseconds; 0 means persistent.
    pub expire_at: u64,
    /// Last access, in seconds of the engine's LRU clock.
    pub lru: u32,
}

impl Entry {
    /// A persistent entry.
    pub fn new(key: &[u8], value: Value) -> Entry {
        Entry {
            key: Sds::new(key),
            value,
            expire_at: 0,
            lru: 0,
        }
    }

    /// The expiry time, if any.
    pub fn expiry(&self) -> Option<u64> {
        (self.expire_at != 0).then_some(self.expire_at)
    }

    /// True once `now_ms` reached the expiry time.
    pub fn is_expired(&self, now_ms: u64) -> bool {
        self.expire_at != 0 && self.expire_at <= now_ms
    }
}

/// Which shards a view must lock.
#[derive(Clone, Copy, Debug)]
pub enum Scope<'a> {
    /// The shards that hold these keys.
    Keys(&'a [&'a [u8]]),
    /// Every shard (whole-keyspace commands and transactions).
    All,
}

/// Counters the engine keeps for INFO.
#[derive(Clone, Copy, Debug, Default)]
pub struct EngineStats {
    /// Keys removed because their time ran out.
    pub expired_keys: u64,
    /// Keys removed to stay under `maxmemory`.
    pub evicted_keys: u64,
    /// Lookups that found a key.
    pub keyspace_hits: u64,
    /// Lookups that found nothing.
    pub keyspace_misses: u64,
}

/// Key counts of one database, for INFO's keyspace section.
#[derive(Clone, Copy, Debug, Default, Eq, PartialEq)]
pub struct DbSize {
    /// Keys.
    pub keys: usize,
    /// Keys with an expiry time.
    pub expires: usize,
}

/// Eviction policy when `maxmemory` is reached.
#[derive(Clone, Copy, Debug, Default, Eq, PartialEq)]
pub enum EvictionPolicy {
    /// Refuse writes with `-OOM`.
    #[default]
    NoEviction,
    /// Evict the least recently used key.
    AllKeysLru,
    /// Evict the least recently used key with an expiry.
    VolatileLru,
    /// Evict a random key.
    AllKeysRandom,
    /// Evict a random key with an expiry.
    VolatileRandom,
    /// Evict the key with an expiry that is nearest to expiring.
    VolatileTtl,
}

impl EvictionPolicy {
    /// Parses the Redis name of a policy.
    pub fn parse(s: &str) -> Option<EvictionPolicy> {
        Some(match s.to_ascii_lowercase().as_str() {
            "noeviction" => EvictionPolicy::NoEviction,
            "allkeys-lru" => EvictionPolicy::AllKeysLru,
            "volatile-lru" => EvictionPolicy::VolatileLru,
            "allkeys-random" => EvictionPolicy::AllKeysRandom,
            "volatile-random" => EvictionPolicy::VolatileRandom,
            "volatile-ttl" => EvictionPolicy::VolatileTtl,
            _ => return None,
        })
    }

    /// The Redis name of the policy.
    pub fn as_str(self) -> &'static str {
        match self {
            EvictionPolicy::NoEviction => "noeviction",
            EvictionPolicy::AllKeysLru => "allkeys-lru",
            EvictionPolicy::VolatileLru => "volatile-lru",
            EvictionPolicy::AllKeysRandom => "allkeys-random",
            EvictionPolicy::VolatileRandom => "volatile-random",
            EvictionPolicy::VolatileTtl => "volatile-ttl",
        }
    }
}

/// Pluggable storage. Methods are synchronous; an engine that touches disk is called through
/// `spawn_blocking`.
pub trait Engine: Send + Sync {
    /// Number of logical databases (`SELECT` range).
    fn databases(&self) -> usize;

    /// Locks the shards `scope` names, in a fixed order, and runs `f` on the view.
    /// `now_ms` is the Unix time used for expiry decisions during the view.
    fn with_view(&self, now_ms: u64, scope: Scope<'_>, f: &mut dyn FnMut(&mut dyn Keyspace));

    /// Key counts of database `db`.
    fn db_size(&self, db: usize) -> DbSize;

    /// Deletes expired keys, sampling as Redis' active expire cycle does; returns keys removed.
    fn expire_cycle(&self, now_ms: u64, budget: usize) -> usize;

    /// Evicts keys by `policy` until about `bytes` were freed or nothing is left to evict;
    /// returns the bytes freed (estimated) and the keys evicted as `(db, key)`.
    fn evict(
        &self,
        now_ms: u64,
        policy: EvictionPolicy,
        samples: usize,
        bytes: usize,
    ) -> (usize, Vec<(usize, Sds)>);

    /// Counters for INFO.
    fn stats(&self) -> EngineStats;

    /// Clears the hit/miss and expiry counters (`CONFIG RESETSTAT`).
    fn reset_stats(&self);

    /// Whether keys past their expiry are deleted on access (master) or only hidden (replica).
    fn set_expire_on_access(&self, delete: bool);

    /// Installs the hook called for every key the engine deletes by itself (lazy or active
    /// expiry, eviction), with that key's shard still locked; replication turns each call into
    /// a `DEL` in the stream. Installed once, at start.
    fn set_deletion_hook(&self, hook: DeletionHook);

    /// A copy of every entry, per database (index = db), logically expired ones included. It is
    /// a point in time only if the caller keeps writers out meanwhile (the server's gate).
    fn snapshot(&self) -> Vec<Vec<Entry>>;

    /// Replaces the whole dataset with `dbs` (index = db; databases past ours are dropped). The
    /// new tables are built before any shard is locked, so readers of the old data wait only for
    /// the swap itself.
    fn replace_all(&self, dbs: Vec<Vec<Entry>>);
}

/// See `Engine::set_deletion_hook`: called with (db, key).
pub type DeletionHook = std::sync::Arc<dyn Fn(usize, &[u8]) + Send + Sync>;

/// A locked view of some shards.
pub trait Keyspace {
    /// The Unix time in milliseconds this view judges expiry by.
    fn now_ms(&self) -> u64;

    /// The live entry for `key`, updating its LRU clock and the hit/miss counters.
    fn get(&mut self, db: usize, key: &[u8]) -> Option<&mut Entry>;

    /// The live entry for `key`, created from `make()` when missing: one lookup when it exists.
    fn get_or_insert(
        &mut self,
        db: usize,
        key: &[u8],
        make: &mut dyn FnMut() -> Value,
    ) -> &mut Entry;

    /// Like `get` but without touching the LRU clock or counters (`TYPE`, `EXISTS`-like uses).
    fn peek(&mut self, db: usize, key: &[u8]) -> Option<&mut Entry>;

    /// Inserts or replaces an entry; returns the replaced one.
    fn insert(&mut self, db: usize, entry: Entry) -> Option<Entry>;

    /// Removes `key`; returns its entry if it was live.
    fn remove(&mut self, db: usize, key: &[u8]) -> Option<Entry>;

    /// Sets the expiry of a live key (0 removes it); false if the key does not exist.
    /// Always change expiry through here, never through `get`, so the counts stay right.
    fn set_expire(&mut self, db: usize, key: &[u8], expire_at: u64) -> bool;

    /// Number of keys (including not yet reclaimed expired ones) in the locked shards of `db`.
    fn len(&self, db: usize) -> usize;

    /// Calls `f` on every live entry of `db` in the locked shards.
    fn for_each(&mut self, db: usize, f: &mut dyn FnMut(&Entry));

    /// One step of `SCAN` over `db`: visits about `count` slots from `cursor`, calling `f` on each
    /// live entry, and returns the next cursor (0 when done).
    fn scan(&mut self, db: usize, cursor: u64, count: usize, f: &mut dyn FnMut(&Entry)) -> u64;

    /// A random live key of `db`.
    fn random_key(&mut self, db: usize) -> Option<Sds>;

    /// Removes every key of `db`.
    fn clear(&mut self, db: usize);

    /// Exchanges the contents of two databases (`SWAPDB`).
    fn swap_dbs(&mut self, a: usize, b: usize);
}
