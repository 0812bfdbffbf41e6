//! `MemoryEngine`: the in-memory, sharded implementation of `Engine`.
//!
//! Keys are spread over `SHARDS` shards by hash; each shard is one `std::sync::Mutex` (held for a
//! single command, never across an `.await`) holding a table per database. A table is a dense
//! paged vector of entries plus a hash index of positions into it: the dense vector makes a random
//! key, an eviction sample or an expiry sample O(1), and `SCAN` walks it from the top down so that
//! the swap-remove used for deletion can only make an element appear twice, never be missed.
//!
//! Invariant: `index` holds exactly one position per element of `entries`, and `volatile` counts
//! the entries with an expiry time.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard, OnceLock};

use foldhash::fast::{FixedState, RandomState};
use hashbrown::HashTable;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use smallvec::SmallVec;
use std::hash::BuildHasher;

use super::paged::Paged;
use super::{
    DbSize, DeletionHook, Engine, EngineStats, Entry, EvictionPolicy, Keyspace, Scope, Value,
};
use crate::sds::Sds;

/// Number of shards. Far above the core count so that two multi-key commands (an MSET of ten
/// keys locks up to ten shards) rarely want the same shard: with 16 shards, contended locks cost
/// MSET a third of its throughput (bench/cpu.sh); empty shards cost a few hundred bytes each.
const SHARDS: usize = 256;

/// The in-memory engine.
pub struct MemoryEngine {
    shards: Box<[Mutex<Shard>]>,
    dbs: usize,
    /// Chooses the shard of a key; fixed so that shard choice is stable for a process.
    shard_hasher: FixedState,
    expire_on_access: AtomicBool,
    /// Told about every key the engine deletes by itself (replication's `DEL`s).
    deletion_hook: OnceLock<DeletionHook>,
}

struct Shard {
    tables: Vec<Table>,
    hasher: RandomState,
    rng: SmallRng,
    stats: EngineStats,
    /// Per-database position of the active expiry walk.
    expire_cursor: Vec<usize>,
    /// Database the next eviction sample starts from.
    evict_db: usize,
}

#[derive(Default)]
struct Table {
    entries: Paged<Entry>,
    index: HashTable<u32>,
    volatile: usize,
}

impl MemoryEngine {
    /// An empty engine with `dbs` databases.
    pub fn new(dbs: usize) -> MemoryEngine {
        let shards = (0..SHARDS)
            .map(|i| {
                Mutex::new(Shard {
                    tables: (0..dbs).map(|_| Table::default()).collect(),
                    hasher: RandomState::default(),
                    rng: SmallRng::seed_from_u64(0x5eed ^ i as u64),
                    stats: EngineStats::default(),
                    expire_cursor: vec![0; dbs],
                    evict_db: 0,
                })
            })
            .collect();
        MemoryEngine {
            shards,
            dbs,
            shard_hasher: FixedState::with_seed(0x7669_6769_6c00),
            expire_on_access: AtomicBool::new(true),
            deletion_hook: OnceLock::new(),
        }
    }

    fn shard_of(&self, key: &[u8]) -> usize {
        (self.shard_hasher.hash_one(key) as usize) & (SHARDS - 1)
    }

    /// Reports a key the engine deleted by itself; the caller still holds its shard.
    fn deleted(&self, db: usize, key: &[u8]) {
        if let Some(h) = self.deletion_hook.get() {
            h(db, key);
        }
    }

    fn lock(&self, i: usize) -> MutexGuard<'_, Shard> {
        // A panic while a shard was locked is our bug; the data is still consistent enough to
        // keep serving, so take the guard back rather than poisoning every later command.
        self.shards[i]
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl Engine for MemoryEngine {
    fn databases(&self) -> usize {
        self.dbs
    }

    fn with_view(&self, now_ms: u64, scope: Scope<'_>, f: &mut dyn FnMut(&mut dyn Keyspace)) {
        let mut ids: SmallVec<[usize; 4]> = match scope {
            Scope::All => (0..SHARDS).collect(),
            Scope::Keys(keys) => keys.iter().map(|k| self.shard_of(k)).collect(),
        };
        // A fixed lock order (ascending shard id) rules out deadlock between multi-key commands.
        ids.sort_unstable();
        ids.dedup();
        let guards = ids.into_iter().map(|i| (i, self.lock(i))).collect();
        let mut view = View {
            engine: self,
            now_ms,
            lru: lru_clock(now_ms),
            delete_expired: self.expire_on_access.load(Ordering::Relaxed),
            guards,
        };
        f(&mut view);
    }

    fn db_size(&self, db: usize) -> DbSize {
        let mut size = DbSize::default();
        for i in 0..SHARDS {
            let shard = self.lock(i);
            if let Some(t) = shard.tables.get(db) {
                size.keys += t.entries.len();
                size.expires += t.volatile;
            }
        }
        size
    }

    fn expire_cycle(&self, now_ms: u64, budget: usize) -> usize {
        let mut removed = 0;
        let per_shard = (budget / SHARDS).max(1);
        for i in 0..SHARDS {
            let mut shard = self.lock(i);
            let shard = &mut *shard;
            for db in 0..self.dbs {
                let table = &mut shard.tables[db];
                if table.volatile == 0 || table.entries.is_empty() {
                    continue;
                }
                let mut cursor = shard.expire_cursor[db];
                let mut examined = 0;
                while examined < per_shard && !table.entries.is_empty() {
                    if cursor >= table.entries.len() {
                        cursor = 0;
                    }
                    examined += 1;
                    if table.entries[cursor].is_expired(now_ms) {
                        let e = table.remove_at(cursor, &shard.hasher);
                        self.deleted(db, &e.key);
                        shard.stats.expired_keys += 1;
                        removed += 1;
                        // The swapped-in entry now sits at `cursor`; look at it next.
                    } else {
                        cursor += 1;
                    }
                }
                shard.expire_cursor[db] = cursor;
            }
        }
        removed
    }

    fn evict(
        &self,
        now_ms: u64,
        policy: EvictionPolicy,
        samples: usize,
        bytes: usize,
    ) -> (usize, Vec<(usize, Sds)>) {
        let mut freed = 0;
        let mut evicted = Vec::new();
        let volatile_only = matches!(
            policy,
            EvictionPolicy::VolatileLru
                | EvictionPolicy::VolatileRandom
                | EvictionPolicy::VolatileTtl
        );
        let mut fruitless = 0;
        let mut start = (now_ms as usize) % SHARDS;
        while freed < bytes && fruitless < SHARDS && policy != EvictionPolicy::NoEviction {
            start = (start + 1) % SHARDS;
            let mut shard = self.lock(start);
            let shard = &mut *shard;
            let Some(db) = (0..self.dbs)
                .map(|d| (shard.evict_db + d) % self.dbs)
                .find(|&d| {
                    let t = &shard.tables[d];
                    if volatile_only {
                        t.volatile > 0
                    } else {
                        !t.entries.is_empty()
                    }
                })
            else {
                fruitless += 1;
                continue;
            };
            shard.evict_db = (db + 1) % self.dbs;
            let table = &mut shard.tables[db];
            let mut best: Option<(usize, u64)> = None;
            let draws = if volatile_only { samples * 4 } else { samples };
            let mut taken = 0;
            for _ in 0..draws {
                if taken >= samples {
                    break;
                }
                let i = shard.rng.random_range(0..table.entries.len());
                let e = &table.entries[i];
                if volatile_only && e.expire_at == 0 {
                    continue;
                }
                taken += 1;
                // Lower rank is evicted first.
                let rank = match policy {
                    EvictionPolicy::AllKeysLru | EvictionPolicy::VolatileLru => u64::from(e.lru),
                    EvictionPolicy::VolatileTtl => e.expire_at,
                    _ => 0,
                };
                if best.is_none_or(|(_, r)| rank < r) {
                    best = Some((i, rank));
                }
            }
            let Some((i, _)) = best else {
                fruitless += 1;
                continue;
            };
            fruitless = 0;
            let e = table.remove_at(i, &shard.hasher);
            self.deleted(db, &e.key);
            freed += 64 + e.key.heap_size() + e.value.approx_size();
            shard.stats.evicted_keys += 1;
            evicted.push((db, e.key));
        }
        (freed, evicted)
    }

    fn stats(&self) -> EngineStats {
        let mut s = EngineStats::default();
        for i in 0..SHARDS {
            let shard = self.lock(i);
            s.expired_keys += shard.stats.expired_keys;
            s.evicted_keys += shard.stats.evicted_keys;
            s.keyspace_hits += shard.stats.keyspace_hits;
            s.keyspace_misses += shard.stats.keyspace_misses;
        }
        s
    }

    fn reset_stats(&self) {
        for i in 0..SHARDS {
            self.lock(i).stats = EngineStats::default();
        }
    }

    fn set_expire_on_access(&self, delete: bool) {
        self.expire_on_access.store(delete, Ordering::Relaxed);
    }

    fn set_deletion_hook(&self, hook: DeletionHook) {
        let _ = self.deletion_hook.set(hook);
    }

    fn snapshot(&self) -> Vec<Vec<Entry>> {
        let mut dbs: Vec<Vec<Entry>> = (0..self.dbs).map(|_| Vec::new()).collect();
        for i in 0..SHARDS {
            let shard = self.lock(i);
            for (db, table) in shard.tables.iter().enumerate() {
                dbs[db].extend(table.entries.iter().cloned());
            }
        }
        dbs
    }

    fn replace_all(&self, dbs: Vec<Vec<Entry>>) {
        let hashers: Vec<RandomState> = (0..SHARDS).map(|i| self.lock(i).hasher.clone()).collect();
        let mut fresh: Vec<Vec<Table>> = (0..SHARDS)
            .map(|_| (0..self.dbs).map(|_| Table::default()).collect())
            .collect();
        for (db, entries) in dbs.into_iter().enumerate().take(self.dbs) {
            for e in entries {
                let s = self.shard_of(&e.key);
                let hash = hashers[s].hash_one(&*e.key);
                fresh[s][db].insert(hash, e, &hashers[s]);
            }
        }
        let mut old = Vec::with_capacity(SHARDS);
        for (i, tables) in fresh.into_iter().enumerate() {
            let mut shard = self.lock(i);
            old.push(std::mem::replace(&mut shard.tables, tables));
            shard.expire_cursor.iter_mut().for_each(|c| *c = 0);
        }
        // The old tables are freed here, after every shard lock was released.
        drop(old);
    }
}

impl Table {
    fn find(&self, hash: u64, key: &[u8]) -> Option<usize> {
        let entries = &self.entries;
        self.index
            .find(hash, |&i| &*entries[i as usize].key == key)
            .map(|&i| i as usize)
    }

    fn insert(&mut self, hash: u64, entry: Entry, hasher: &RandomState) -> Option<Entry> {
        if let Some(i) = self.find(hash, &entry.key) {
            let old = std::mem::replace(&mut self.entries[i], entry);
            self.volatile = self.volatile + usize::from(self.entries[i].expire_at != 0)
                - usize::from(old.expire_at != 0);
            return Some(old);
        }
        let pos = self.entries.len() as u32;
        self.volatile += usize::from(entry.expire_at != 0);
        self.entries.push(entry);
        let entries = &self.entries;
        self.index
            .insert_unique(hash, pos, |&i| hasher.hash_one(&*entries[i as usize].key));
        None
    }

    /// Removes the entry at `pos`, moving the last entry into its place.
    fn remove_at(&mut self, pos: usize, hasher: &RandomState) -> Entry {
        let hash = hasher.hash_one(&*self.entries[pos].key);
        if let Ok(slot) = self.index.find_entry(hash, |&i| i as usize == pos) {
            slot.remove();
        }
        let last = self.entries.len() - 1;
        if pos != last {
            let moved_hash = hasher.hash_one(&*self.entries[last].key);
            if let Some(slot) = self.index.find_mut(moved_hash, |&i| i as usize == last) {
                *slot = pos as u32;
            }
        }
        let entry = self.entries.swap_remove(pos);
        self.volatile -= usize::from(entry.expire_at != 0);
        if self.index.capacity() > 64 && self.entries.len() < self.index.capacity() / 4 {
            let entries = &self.entries;
            self.index.shrink_to(entries.len(), |&i| {
                hasher.hash_one(&*entries[i as usize].key)
            });
        }
        entry
    }
}

struct View<'a> {
    engine: &'a MemoryEngine,
    now_ms: u64,
    lru: u32,
    delete_expired: bool,
    guards: SmallVec<[(usize, MutexGuard<'a, Shard>); 2]>,
}

impl View<'_> {
    /// Position in `guards` of the shard that holds `key`.
    fn guard_pos(&self, key: &[u8]) -> usize {
        let id = self.engine.shard_of(key);
        if self.guards.len() == SHARDS {
            return id;
        }
        self.guards
            .iter()
            .position(|(i, _)| *i == id)
            .expect("a command only touches keys it declared, so their shards are locked")
    }

    fn shard(&mut self, key: &[u8]) -> &mut Shard {
        let pos = self.guard_pos(key);
        &mut self.guards[pos].1
    }

    /// Finds a live entry, applying lazy expiry; `touch` updates LRU and hit counters.
    fn lookup(&mut self, db: usize, key: &[u8], touch: bool) -> Option<&mut Entry> {
        let (g, i) = self.lookup_pos(db, key, touch)?;
        Some(&mut self.guards[g].1.tables[db].entries[i])
    }

    /// `lookup`, returning the live entry's guard position and index instead of a borrow.
    fn lookup_pos(&mut self, db: usize, key: &[u8], touch: bool) -> Option<(usize, usize)> {
        let engine = self.engine;
        let now = self.now_ms;
        let lru = self.lru;
        let delete = self.delete_expired;
        let g = self.guard_pos(key);
        let shard: &mut Shard = &mut self.guards[g].1;
        let hash = shard.hasher.hash_one(key);
        let table = &mut shard.tables[db];
        let Some(i) = table.find(hash, key) else {
            if touch {
                shard.stats.keyspace_misses += 1;
            }
            return None;
        };
        if table.entries[i].is_expired(now) {
            if delete {
                table.remove_at(i, &shard.hasher);
                shard.stats.expired_keys += 1;
                engine.deleted(db, key);
            }
            if touch {
                shard.stats.keyspace_misses += 1;
            }
            return None;
        }
        if touch {
            shard.stats.keyspace_hits += 1;
            table.entries[i].lru = lru;
        }
        Some((g, i))
    }
}

impl Keyspace for View<'_> {
    fn now_ms(&self) -> u64 {
        self.now_ms
    }

    fn get(&mut self, db: usize, key: &[u8]) -> Option<&mut Entry> {
        self.lookup(db, key, true)
    }

    fn get_or_insert(
        &mut self,
        db: usize,
        key: &[u8],
        make: &mut dyn FnMut() -> Value,
    ) -> &mut Entry {
        if let Some((g, i)) = self.lookup_pos(db, key, true) {
            return &mut self.guards[g].1.tables[db].entries[i];
        }
        let mut entry = Entry::new(key, make());
        entry.lru = self.lru;
        let g = self.guard_pos(key);
        let shard: &mut Shard = &mut self.guards[g].1;
        let hash = shard.hasher.hash_one(key);
        let table = &mut shard.tables[db];
        // Replaces a logically expired entry a replica keeps; appends otherwise.
        table.insert(hash, entry, &shard.hasher);
        let i = table
            .find(hash, key)
            .expect("the entry was inserted under the same lock");
        &mut table.entries[i]
    }

    fn peek(&mut self, db: usize, key: &[u8]) -> Option<&mut Entry> {
        self.lookup(db, key, false)
    }

    fn insert(&mut self, db: usize, mut entry: Entry) -> Option<Entry> {
        let now = self.now_ms;
        entry.lru = self.lru;
        let shard = self.shard(&entry.key);
        let hash = shard.hasher.hash_one(&*entry.key);
        let old = shard.tables[db].insert(hash, entry, &shard.hasher);
        old.filter(|e| !e.is_expired(now))
    }

    fn remove(&mut self, db: usize, key: &[u8]) -> Option<Entry> {
        let now = self.now_ms;
        let shard = self.shard(key);
        let hash = shard.hasher.hash_one(key);
        let i = shard.tables[db].find(hash, key)?;
        let e = shard.tables[db].remove_at(i, &shard.hasher);
        if e.is_expired(now) {
            // Removing a key that had already expired is its expiry, for replication too.
            self.engine.deleted(db, key);
            return None;
        }
        Some(e)
    }

    fn set_expire(&mut self, db: usize, key: &[u8], expire_at: u64) -> bool {
        let now = self.now_ms;
        let shard = self.shard(key);
        let hash = shard.hasher.hash_one(key);
        let table = &mut shard.tables[db];
        let Some(i) = table.find(hash, key) else {
            return false;
        };
        let e = &mut table.entries[i];
        if e.is_expired(now) {
            return false;
        }
        table.volatile =
            table.volatile + usize::from(expire_at != 0) - usize::from(e.expire_at != 0);
        e.expire_at = expire_at;
        true
    }

    fn len(&self, db: usize) -> usize {
        self.guards
            .iter()
            .map(|(_, s)| s.tables[db].entries.len())
            .sum()
    }

    fn for_each(&mut self, db: usize, f: &mut dyn FnMut(&Entry)) {
        let now = self.now_ms;
        for (_, shard) in &self.guards {
            for e in shard.tables[db].entries.iter() {
                if !e.is_expired(now) {
                    f(e);
                }
            }
        }
    }

    fn scan(&mut self, db: usize, cursor: u64, count: usize, f: &mut dyn FnMut(&Entry)) -> u64 {
        let now = self.now_ms;
        let n = self.guards.len() as u64;
        let mut slot = (cursor % n) as usize;
        let mut hi_code = cursor / n;
        let mut budget = count.max(1);
        while slot < self.guards.len() {
            let entries = &self.guards[slot].1.tables[db].entries;
            let len = entries.len();
            // `hi_code` 0 starts the shard from its top; otherwise it is one past the next index.
            let hi = if hi_code == 0 {
                len
            } else {
                (hi_code as usize - 1).min(len)
            };
            let lo = hi.saturating_sub(budget);
            for e in (lo..hi).rev().map(|i| &entries[i]) {
                if !e.is_expired(now) {
                    f(e);
                }
            }
            budget -= hi - lo;
            if lo > 0 {
                return (lo as u64 + 1) * n + slot as u64;
            }
            slot += 1;
            hi_code = 0;
            if budget == 0 {
                break;
            }
        }
        if slot >= self.guards.len() {
            0
        } else {
            slot as u64
        }
    }

    fn random_key(&mut self, db: usize) -> Option<Sds> {
        let now = self.now_ms;
        for _ in 0..100 {
            let total = self.len(db);
            if total == 0 {
                return None;
            }
            let mut r = self.guards[0].1.rng.random_range(0..total);
            for (_, shard) in &self.guards {
                let entries = &shard.tables[db].entries;
                if r < entries.len() {
                    let e = &entries[r];
                    if !e.is_expired(now) {
                        return Some(e.key.clone());
                    }
                    break;
                }
                r -= entries.len();
            }
        }
        None
    }

    fn clear(&mut self, db: usize) {
        for (_, shard) in &mut self.guards {
            shard.tables[db] = Table::default();
        }
    }

    fn swap_dbs(&mut self, a: usize, b: usize) {
        for (_, shard) in &mut self.guards {
            shard.tables.swap(a, b);
        }
    }
}

/// The LRU clock: seconds, wrapping in 136 years.
fn lru_clock(now_ms: u64) -> u32 {
    (now_ms / 1000) as u32
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::Value;

    fn put(e: &MemoryEngine, key: &str, expire_at: u64) {
        e.with_view(1000, Scope::Keys(&[key.as_bytes()]), &mut |ks| {
            let mut entry = Entry::new(key.as_bytes(), Value::Str(Sds::new(b"v")));
            entry.expire_at = expire_at;
            ks.insert(0, entry);
        });
    }

    #[test]
    fn scan_visits_every_key_present_throughout_despite_deletes() {
        let e = MemoryEngine::new(1);
        for i in 0..1000 {
            put(&e, &format!("k{i}"), 0);
        }
        let mut seen = std::collections::HashSet::new();
        let mut cursor = 0;
        let mut round = 0;
        loop {
            e.with_view(1000, Scope::All, &mut |ks| {
                cursor = ks.scan(0, cursor, 10, &mut |en| {
                    seen.insert(en.key.clone());
                });
                // Delete a key that is never part of "present throughout".
                ks.remove(0, format!("k{}", round % 50).as_bytes());
            });
            round += 1;
            if cursor == 0 {
                break;
            }
            assert!(round < 10_000, "scan does not terminate");
        }
        for i in 50..1000 {
            assert!(seen.contains(format!("k{i}").as_bytes()), "missed k{i}");
        }
    }

    #[test]
    fn expired_keys_are_invisible_and_reclaimed_by_the_cycle() {
        let e = MemoryEngine::new(1);
        for i in 0..100 {
            put(&e, &format!("t{i}"), 1500);
            put(&e, &format!("p{i}"), 0);
        }
        assert_eq!(
            e.db_size(0),
            DbSize {
                keys: 200,
                expires: 100
            }
        );
        e.with_view(2000, Scope::Keys(&[b"t1"]), &mut |ks| {
            assert!(ks.get(0, b"t1").is_none());
        });
        let mut removed = 0;
        for _ in 0..100 {
            removed += e.expire_cycle(2000, 1000);
        }
        assert_eq!(removed, 99);
        assert_eq!(
            e.db_size(0),
            DbSize {
                keys: 100,
                expires: 0
            }
        );
    }

    #[test]
    fn eviction_prefers_least_recently_used() {
        let e = MemoryEngine::new(1);
        for i in 0..10 {
            put(&e, &format!("k{i}"), 0);
        }
        let (_, evicted) = e.evict(1000, EvictionPolicy::AllKeysRandom, 5, 1);
        assert_eq!(evicted.len(), 1);
        assert_eq!(e.db_size(0).keys, 9);
        let (_, none) = e.evict(1000, EvictionPolicy::VolatileTtl, 5, 1);
        assert!(none.is_empty(), "no key has a ttl");
    }
}
