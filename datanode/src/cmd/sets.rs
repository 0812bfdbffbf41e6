//! Set commands: SADD and friends, random members and pops, SMOVE, set algebra (SINTER, SUNION,
//! SDIFF, their STORE forms and SINTERCARD) and SSCAN.
//!
//! Replies and error texts follow Redis 7.0's `t_set.c`. Redis 7.0 keeps a set of at most 512
//! integers as an intset, which lists its members in numeric order; replies that list members
//! emulate that order for such sets, so they match Redis exactly. Any other set replies in hash
//! order, which Redis does not define either.
//!
//! Invariants: an emptied set is removed from the keyspace; STORE forms overwrite the
//! destination whatever its type, or delete it when the result is empty.

use std::collections::HashSet;
use std::hash::BuildHasher;

use foldhash::fast::RandomState;
use rand::Rng;
use vigil_proto::resp::{Frame, parse_i64};

use super::hashes::{RandomCount, ScanArgs, scan_cursor, scan_reply};
use super::zsets::{long_at_least, numkeys_at_1, positive_count};
use super::*;
use crate::engine::SetValue;
use crate::sds::Sds;

/// The set commands.
pub static COMMANDS: &[CommandSpec] = &[
    data(
        "sadd",
        -3,
        WRITE | DENYOOM | FAST,
        keys(1, 1, 1),
        "set",
        sadd,
    ),
    data("srem", -3, WRITE | FAST, keys(1, 1, 1), "set", srem),
    data("smembers", 2, READONLY, keys(1, 1, 1), "set", smembers),
    data(
        "sismember",
        3,
        READONLY | FAST,
        keys(1, 1, 1),
        "set",
        sismember,
    ),
    data(
        "smismember",
        -3,
        READONLY | FAST,
        keys(1, 1, 1),
        "set",
        smismember,
    ),
    data("scard", 2, READONLY | FAST, keys(1, 1, 1), "set", scard),
    data("spop", -2, WRITE | FAST, keys(1, 1, 1), "set", spop),
    data(
        "srandmember",
        -2,
        READONLY,
        keys(1, 1, 1),
        "set",
        srandmember,
    ),
    data("smove", 4, WRITE | FAST, keys(1, 2, 1), "set", smove),
    data("sinter", -2, READONLY, keys(1, -1, 1), "set", setop),
    data(
        "sintercard",
        -3,
        READONLY,
        KeySpec::Custom(numkeys_at_1),
        "set",
        sintercard,
    ),
    data(
        "sinterstore",
        -3,
        WRITE | DENYOOM,
        keys(1, -1, 1),
        "set",
        setop,
    ),
    data("sunion", -2, READONLY, keys(1, -1, 1), "set", setop),
    data(
        "sunionstore",
        -3,
        WRITE | DENYOOM,
        keys(1, -1, 1),
        "set",
        setop,
    ),
    data("sdiff", -2, READONLY, keys(1, -1, 1), "set", setop),
    data(
        "sdiffstore",
        -3,
        WRITE | DENYOOM,
        keys(1, -1, 1),
        "set",
        setop,
    ),
    data("sscan", -3, READONLY, keys(1, 1, 1), "set", sscan),
];

/// Largest set Redis 7.0 keeps as an intset (`set-max-intset-entries`).
const MAX_INTSET: usize = 512;

/// Seed of the fixed hash that orders SSCAN's walk; fixed so cursors survive restarts.
const SCAN_SEED: u64 = 0x5eed_5ca7_0f5e_7500;

/// Orders `members` as Redis 7.0 lists them: numerically when they would form an intset (at
/// most 512 members, all integers in canonical form), otherwise as given.
fn intset_order(members: &mut [&Sds]) {
    if members.len() > MAX_INTSET {
        return;
    }
    let Some(mut keyed) = members
        .iter()
        .map(|m| parse_i64(m).map(|n| (n, *m)))
        .collect::<Option<Vec<(i64, &Sds)>>>()
    else {
        return;
    };
    keyed.sort_unstable_by_key(|&(n, _)| n);
    for (slot, (_, m)) in members.iter_mut().zip(keyed) {
        *slot = m;
    }
}

/// True when Redis 7.0 would store `s` as an intset.
fn is_intset(s: &SetValue) -> bool {
    s.len() <= MAX_INTSET && s.iter().all(|m| parse_i64(m).is_some())
}

/// A RESP3 set reply (an array for RESP2) of `members` in Redis' order.
fn set_reply<'a>(members: impl IntoIterator<Item = &'a Sds>) -> Frame {
    let mut v: Vec<&Sds> = members.into_iter().collect();
    intset_order(&mut v);
    Frame::Set(v.into_iter().map(|m| bulk(m)).collect())
}

fn sadd(c: &mut Ctx<'_>) -> CmdResult {
    let args = c.args;
    let s = c.set_or_create(&args[1])?;
    let added = args[2..].iter().filter(|m| s.insert(Sds::new(m))).count();
    c.dirty += added as u64;
    Ok(Frame::Integer(added as i64))
}

fn srem(c: &mut Ctx<'_>) -> CmdResult {
    let args = c.args;
    let Some(s) = c.set(&args[1])? else {
        return Ok(Frame::Integer(0));
    };
    let removed = args[2..].iter().filter(|m| s.remove(&m[..])).count();
    c.dirty += removed as u64;
    c.drop_if_empty(&args[1]);
    Ok(Frame::Integer(removed as i64))
}

fn smembers(c: &mut Ctx<'_>) -> CmdResult {
    let args = c.args;
    Ok(set_reply(c.set(&args[1])?.iter().flat_map(|s| s.iter())))
}

fn sismember(c: &mut Ctx<'_>) -> CmdResult {
    let args = c.args;
    let found = c.set(&args[1])?.is_some_and(|s| s.contains(&args[2][..]));
    Ok(Frame::Integer(i64::from(found)))
}

fn smismember(c: &mut Ctx<'_>) -> CmdResult {
    let args = c.args;
    let s = c.set(&args[1])?;
    let out = args[2..]
        .iter()
        .map(|m| Frame::Integer(i64::from(s.as_ref().is_some_and(|s| s.contains(&m[..])))))
        .collect();
    Ok(Frame::Array(out))
}

fn scard(c: &mut Ctx<'_>) -> CmdResult {
    let args = c.args;
    Ok(Frame::Integer(
        c.set(&args[1])?.map_or(0, |s| s.len()) as i64
    ))
}

/// `count` distinct random members of `s` (`count < s.len()`), in random order. The set has no
/// positional access, so this walks it once.
fn sample_distinct(s: &SetValue, count: usize) -> Vec<Sds> {
    let all: Vec<&Sds> = s.iter().collect();
    rand::seq::index::sample(&mut rand::rng(), all.len(), count)
        .into_iter()
        .map(|i| all[i].clone())
        .collect()
}

fn spop(c: &mut Ctx<'_>) -> CmdResult {
    let args = c.args;
    let key = &args[1];
    if args.len() > 3 {
        return Err(CmdError::Syntax);
    }
    let Some(count_arg) = args.get(2) else {
        let Some(s) = c.set(key)?.filter(|s| !s.is_empty()) else {
            return Ok(Frame::Null);
        };
        let popped = sample_distinct(s, 1).pop().expect("the set is not empty");
        s.remove(&popped);
        c.dirty += 1;
        c.drop_if_empty(key);
        return Ok(bulk(&popped));
    };
    let count = positive_count(count_arg)?;
    let Some(s) = c.set(key)? else {
        return Ok(Frame::Set(Vec::new()));
    };
    if count == 0 {
        return Ok(Frame::Set(Vec::new()));
    }
    // Asking for at least every member pops the whole set, listed in Redis' order.
    if count >= s.len() as u64 {
        let n = s.len() as u64;
        let reply = set_reply(s.iter());
        c.dirty += n;
        c.ks.remove(c.db, key);
        return Ok(reply);
    }
    let popped = sample_distinct(s, count as usize);
    for m in &popped {
        s.remove(m);
    }
    c.dirty += count;
    Ok(Frame::Set(popped.iter().map(|m| bulk(m)).collect()))
}

fn srandmember(c: &mut Ctx<'_>) -> CmdResult {
    let args = c.args;
    if args.len() > 3 {
        return Err(CmdError::Syntax);
    }
    let Some(count_arg) = args.get(2) else {
        let Some(s) = c.set(&args[1])?.filter(|s| !s.is_empty()) else {
            return Ok(Frame::Null);
        };
        let pick = sample_distinct(s, 1).pop().expect("the set is not empty");
        return Ok(bulk(&pick));
    };
    let rc = RandomCount::parse(count_arg, false)?;
    let Some(s) = c.set(&args[1])?.filter(|s| !s.is_empty()) else {
        return Ok(Frame::Array(Vec::new()));
    };
    if rc.count == 0 {
        return Ok(Frame::Array(Vec::new()));
    }
    rc.check_reply_size(false)?;
    if !rc.unique || rc.count == 1 {
        let all: Vec<&Sds> = s.iter().collect();
        let mut rng = rand::rng();
        // `check_reply_size` bounded a repeating count by MAX_RANDOM_REPLY.
        let picks = (0..rc.count)
            .map(|_| bulk(all[rng.random_range(0..all.len())]))
            .collect();
        return Ok(Frame::Array(picks));
    }
    // Asking for at least every member returns the whole set, listed in Redis' order.
    if rc.count >= s.len() as u64 {
        let Frame::Set(items) = set_reply(s.iter()) else {
            unreachable!("set_reply builds a set frame");
        };
        return Ok(Frame::Array(items));
    }
    let picks = sample_distinct(s, rc.count as usize);
    Ok(Frame::Array(picks.iter().map(|m| bulk(m)).collect()))
}

fn smove(c: &mut Ctx<'_>) -> CmdResult {
    let args = c.args;
    let (src, dst, member) = (&args[1], &args[2], &args[3]);
    if c.set(src)?.is_none() {
        return Ok(Frame::Integer(0));
    }
    c.set(dst)?;
    if src == dst {
        let found = c.set(src)?.is_some_and(|s| s.contains(&member[..]));
        return Ok(Frame::Integer(i64::from(found)));
    }
    let removed = c.set(src)?.is_some_and(|s| s.remove(&member[..]));
    if !removed {
        return Ok(Frame::Integer(0));
    }
    c.dirty += 1;
    c.drop_if_empty(src);
    if c.set_or_create(dst)?.insert(Sds::new(member)) {
        c.dirty += 1;
    }
    Ok(Frame::Integer(1))
}

/// Which set operation.
#[derive(Clone, Copy, Debug, PartialEq)]
enum SetOp {
    Inter,
    Union,
    Diff,
}

/// Sizes of the sets at `keys` (0 when missing), or `WRONGTYPE`; Redis checks every key first.
fn set_sizes(c: &mut Ctx<'_>, keys: &[Bytes]) -> Result<Vec<Option<usize>>, CmdError> {
    keys.iter()
        .map(|k| match c.ks.get(c.db, k).map(|e| &e.value) {
            None => Ok(None),
            Some(Value::Set(s)) => Ok(Some(s.len())),
            Some(_) => Err(CmdError::WrongType),
        })
        .collect()
}

/// The set at `key`, already type-checked, without touching its access time again.
fn peek_set<'c>(c: &'c mut Ctx<'_>, key: &[u8]) -> Option<&'c SetValue> {
    match c.ks.peek(c.db, key).map(|e| &e.value) {
        Some(Value::Set(s)) => Some(&**s),
        _ => None,
    }
}

/// The members of the intersection of the sets at `keys` (checked by `set_sizes`), stopping
/// once `limit` members are found (0: no limit).
fn intersection(
    c: &mut Ctx<'_>,
    keys: &[Bytes],
    sizes: &[Option<usize>],
    limit: usize,
) -> Vec<Sds> {
    if sizes.iter().any(Option::is_none) {
        return Vec::new();
    }
    // Walk the smallest set and probe the others, as Redis does.
    let mut order: Vec<usize> = (0..keys.len()).collect();
    order.sort_by_key(|&i| sizes[i]);
    let (first, rest) = order.split_first().expect("at least one key");
    let mut acc: Vec<Sds> = peek_set(c, &keys[*first])
        .map(|s| s.iter().cloned().collect())
        .unwrap_or_default();
    for &i in rest {
        let Some(s) = peek_set(c, &keys[i]) else {
            return Vec::new();
        };
        acc.retain(|m| s.contains(m));
    }
    if limit > 0 {
        acc.truncate(limit);
    }
    acc
}

/// SINTER, SUNION, SDIFF and their STORE forms.
fn setop(c: &mut Ctx<'_>) -> CmdResult {
    let args = c.args;
    let name = args[0].to_ascii_lowercase();
    let store = name.ends_with(b"store");
    let op = match &name[..5] {
        b"sinte" => SetOp::Inter,
        b"sunio" => SetOp::Union,
        _ => SetOp::Diff,
    };
    let keys = if store { &args[2..] } else { &args[1..] };
    let sizes = set_sizes(c, keys)?;
    let result: Vec<Sds> = match op {
        SetOp::Inter => intersection(c, keys, &sizes, 0),
        SetOp::Union => {
            let mut acc: HashSet<Sds, RandomState> = HashSet::default();
            for k in keys {
                if let Some(s) = peek_set(c, k) {
                    acc.extend(s.iter().cloned());
                }
            }
            acc.into_iter().collect()
        }
        SetOp::Diff => {
            let mut acc: Vec<Sds> = peek_set(c, &keys[0])
                .map(|s| s.iter().cloned().collect())
                .unwrap_or_default();
            for k in &keys[1..] {
                if acc.is_empty() {
                    break;
                }
                if let Some(s) = peek_set(c, k) {
                    acc.retain(|m| !s.contains(m));
                }
            }
            acc
        }
    };
    if !store {
        return Ok(set_reply(result.iter()));
    }
    let dst = &args[1];
    if result.is_empty() {
        c.delete(dst);
        return Ok(Frame::Integer(0));
    }
    let n = result.len();
    let set: SetValue = result.into_iter().collect();
    c.set_value(dst, Value::Set(Box::new(set)));
    Ok(Frame::Integer(n as i64))
}

fn sintercard(c: &mut Ctx<'_>) -> CmdResult {
    let args = c.args;
    let numkeys = long_at_least(&args[1], 1, "ERR numkeys should be greater than 0")?;
    let numkeys = usize::try_from(numkeys)
        .ok()
        .filter(|&n| n <= args.len() - 2)
        .ok_or_else(|| {
            CmdError::other("ERR Number of keys can't be greater than number of args")
        })?;
    let mut limit = 0;
    let mut j = 2 + numkeys;
    while j < args.len() {
        if is(&args[j], "LIMIT") && j + 1 < args.len() {
            limit = long_at_least(&args[j + 1], 0, "ERR LIMIT can't be negative")?;
            j += 2;
        } else {
            return Err(CmdError::Syntax);
        }
    }
    let keys = &args[2..2 + numkeys];
    let sizes = set_sizes(c, keys)?;
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    Ok(Frame::Integer(
        intersection(c, keys, &sizes, limit).len() as i64
    ))
}

fn sscan(c: &mut Ctx<'_>) -> CmdResult {
    let args = c.args;
    let cursor = scan_cursor(&args[2])?;
    let Some(s) = c.set(&args[1])? else {
        return Ok(scan_reply(0, Vec::new()));
    };
    let opts = ScanArgs::parse(args, 3)?;
    // Redis returns an intset whole, in order, whatever the cursor.
    if is_intset(s) {
        let Frame::Set(items) = set_reply(s.iter().filter(|m| opts.matches(m))) else {
            unreachable!("set_reply builds a set frame");
        };
        return Ok(scan_reply(0, items));
    }
    let (page, next) = hash_scan(s, cursor, opts.count);
    let items = page
        .into_iter()
        .filter(|m| opts.matches(m))
        .map(|m| bulk(m))
        .collect();
    Ok(scan_reply(next, items))
}

/// One SSCAN step. Members are walked in the order of a fixed 63-bit hash of their bytes
/// (plus one, so no member sits at cursor 0); the cursor is the smallest hash not yet
/// returned, so a member present for the whole walk is returned exactly once whatever is added
/// or removed meanwhile. Each step costs one pass over the set, since `SetValue` offers no
/// ordered access.
fn hash_scan(s: &SetValue, cursor: u64, count: usize) -> (Vec<&Sds>, u64) {
    let state = foldhash::quality::FixedState::with_seed(SCAN_SEED);
    let mut cands: Vec<(u64, &Sds)> = s
        .iter()
        .map(|m| ((state.hash_one(m.as_slice()) >> 1) + 1, m))
        .filter(|&(p, _)| p >= cursor)
        .collect();
    if cands.len() <= count {
        return (cands.into_iter().map(|(_, m)| m).collect(), 0);
    }
    cands.select_nth_unstable_by_key(count - 1, |&(p, _)| p);
    let pivot = cands[count - 1].0;
    let mut out: Vec<&Sds> = cands[..count].iter().map(|&(_, m)| m).collect();
    // Members hashing to the pivot go out together, so the next cursor can skip past it.
    let mut more = false;
    for &(p, m) in &cands[count..] {
        if p == pivot {
            out.push(m);
        } else {
            more = true;
        }
    }
    (out, if more { pivot + 1 } else { 0 })
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use crate::engine::memory::MemoryEngine;
    use vigil_proto::resp::Frame;

    fn set(items: &[&str]) -> Frame {
        Frame::Set(items.iter().map(|s| b(s)).collect())
    }

    fn arr(items: &[&str]) -> Frame {
        Frame::Array(items.iter().map(|s| b(s)).collect())
    }

    fn err(text: &str) -> Frame {
        Frame::error(text)
    }

    const WRONGTYPE: &str = "WRONGTYPE Operation against a key holding the wrong kind of value";

    fn check(e: &MemoryEngine, table: &[(&[&str], Frame)]) {
        for (cmd, want) in table {
            assert_eq!(&run_one(e, cmd), want, "{cmd:?}");
        }
    }

    /// The members of a set or array reply, sorted, for replies in hash order.
    fn sorted(f: Frame) -> Vec<Vec<u8>> {
        let (Frame::Set(items) | Frame::Array(items)) = f else {
            panic!("a set or array expected, got {f:?}");
        };
        let mut v: Vec<Vec<u8>> = items
            .iter()
            .filter_map(|i| i.as_bytes().map(<[u8]>::to_vec))
            .collect();
        v.sort();
        v
    }

    #[test]
    #[rustfmt::skip]
    fn set_commands_reply_like_redis() {
        let e = MemoryEngine::new(16);
        check(&e, &[
            (&["sadd", "s", "3", "1", "2", "-5", "10", "1"], i(5)),
            (&["smembers", "s"], set(&["-5", "1", "2", "3", "10"])),
            (&["smembers", "nokey"], set(&[])),
            (&["sismember", "s", "1"], i(1)),
            (&["sismember", "s", "9"], i(0)),
            (&["sismember", "nokey", "9"], i(0)),
            (&["smismember", "s", "1", "9"], Frame::Array(vec![i(1), i(0)])),
            (&["smismember", "nokey", "1"], Frame::Array(vec![i(0)])),
            (&["scard", "s"], i(5)),
            (&["scard", "nokey"], i(0)),
            (&["srem", "s", "10", "11"], i(1)),
            (&["srem", "nokey", "1"], i(0)),
            (&["sadd", "t", "a", "b", "1"], i(3)),
            (&["smove", "s", "t", "1"], i(1)),
            (&["smove", "s", "t", "99"], i(0)),
            (&["smove", "nokey", "t", "1"], i(0)),
            (&["smove", "s", "s", "3"], i(1)),
            (&["smove", "s", "s", "99"], i(0)),
            (&["smove", "s", "fresh", "2"], i(1)),
            (&["smembers", "fresh"], set(&["2"])),
            (&["smembers", "s"], set(&["-5", "3"])),
            (&["set", "str", "x"], Frame::ok()),
            (&["smove", "s", "str", "3"], err(WRONGTYPE)),
            (&["smove", "str", "s", "3"], err(WRONGTYPE)),
            (&["smove", "nokey", "str", "3"], i(0)),
            (&["sadd", "str", "a"], err(WRONGTYPE)),
            (&["smembers", "str"], err(WRONGTYPE)),
            (&["srem", "s", "-5", "3"], i(2)),
            (&["exists", "s"], i(0)),
        ]);
    }

    #[test]
    #[rustfmt::skip]
    fn pops_and_random_members_follow_redis_rules() {
        let e = MemoryEngine::new(16);
        check(&e, &[
            (&["sadd", "s", "3", "1", "2"], i(3)),
            (&["spop", "nokey"], Frame::Null),
            (&["spop", "nokey", "2"], set(&[])),
            (&["spop", "s", "0"], set(&[])),
            (&["spop", "s", "-1"], err("ERR value is out of range, must be positive")),
            (&["spop", "s", "x"], err("ERR value is out of range, must be positive")),
            (&["spop", "s", "1", "2"], err("ERR syntax error")),
            (&["srandmember", "nokey"], Frame::Null),
            (&["srandmember", "nokey", "3"], arr(&[])),
            (&["srandmember", "s", "0"], arr(&[])),
            (&["srandmember", "s", "100"], arr(&["1", "2", "3"])),
            (&["srandmember", "s", "9223372036854775807"], arr(&["1", "2", "3"])),
            (&["srandmember", "s", "-9223372036854775808"], err("ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807")),
            (&["srandmember", "s", "-9223372036854775807"], err("ERR value is out of range")),
            (&["srandmember", "s", "x"], err("ERR value is not an integer or out of range")),
            (&["srandmember", "s", "1", "2"], err("ERR syntax error")),
            (&["set", "str", "x"], Frame::ok()),
            (&["srandmember", "str", "1"], err(WRONGTYPE)),
            (&["spop", "str"], err(WRONGTYPE)),
        ]);
        let Frame::Array(picks) = run_one(&e, &["srandmember", "s", "-5"]) else {
            panic!("array expected");
        };
        assert_eq!(picks.len(), 5);
        assert_eq!(sorted(run_one(&e, &["srandmember", "s", "2"])).len(), 2);
        let Frame::Set(popped) = run_one(&e, &["spop", "s", "2"]) else {
            panic!("set expected");
        };
        assert_eq!(popped.len(), 2);
        assert_eq!(run_one(&e, &["scard", "s"]), i(1));
        assert!(matches!(run_one(&e, &["spop", "s"]), Frame::Bulk(_)));
        assert_eq!(run_one(&e, &["exists", "s"]), i(0));
        check(&e, &[
            (&["sadd", "s", "10", "-1", "5"], i(3)),
            (&["spop", "s", "100"], set(&["-1", "5", "10"])),
            (&["exists", "s"], i(0)),
        ]);
    }

    #[test]
    #[rustfmt::skip]
    fn set_algebra_matches_redis() {
        let e = MemoryEngine::new(16);
        check(&e, &[
            (&["sadd", "s", "3", "1", "2", "-5", "10"], i(5)),
            (&["sadd", "t", "a", "b", "1", "10"], i(4)),
            (&["sinter", "s", "t"], set(&["1", "10"])),
            (&["sinter", "s", "nokey"], set(&[])),
            (&["sdiff", "s", "t"], set(&["-5", "2", "3"])),
            (&["sdiff", "nokey", "s"], set(&[])),
            (&["sunion", "s", "nokey"], set(&["-5", "1", "2", "3", "10"])),
            (&["set", "str", "x"], Frame::ok()),
            (&["sinter", "s", "str"], err(WRONGTYPE)),
            (&["sinter", "nokey", "str"], err(WRONGTYPE)),
            (&["sunion", "str"], err(WRONGTYPE)),
            (&["sintercard", "2", "s", "t"], i(2)),
            (&["sintercard", "2", "s", "t", "limit", "1"], i(1)),
            (&["sintercard", "2", "s", "t", "limit", "0"], i(2)),
            (&["sintercard", "2", "s", "nokey"], i(0)),
            (&["sintercard", "0", "s"], err("ERR numkeys should be greater than 0")),
            (&["sintercard", "x", "s"], err("ERR numkeys should be greater than 0")),
            (&["sintercard", "-1", "s"], err("ERR numkeys should be greater than 0")),
            (&["sintercard", "3", "s", "t"], err("ERR Number of keys can't be greater than number of args")),
            (&["sintercard", "9223372036854775807", "s"], err("ERR Number of keys can't be greater than number of args")),
            (&["sintercard", "1", "s", "limit", "-1"], err("ERR LIMIT can't be negative")),
            (&["sintercard", "1", "s", "limit", "x"], err("ERR LIMIT can't be negative")),
            (&["sintercard", "1", "s", "foo", "1"], err("ERR syntax error")),
            (&["sintercard", "1", "s", "limit"], err("ERR syntax error")),
            (&["sintercard", "2", "s", "str"], err(WRONGTYPE)),
            (&["sunionstore", "d", "s", "t"], i(7)),
            (&["scard", "d"], i(7)),
            (&["sinterstore", "d", "s", "nokey"], i(0)),
            (&["exists", "d"], i(0)),
            (&["sdiffstore", "str", "s", "t"], i(3)),
            (&["smembers", "str"], set(&["-5", "2", "3"])),
            (&["sinterstore", "d", "s", "t"], i(2)),
            (&["smembers", "d"], set(&["1", "10"])),
        ]);
        assert_eq!(sorted(run_one(&e, &["sunion", "s", "t"])), sorted(set(&["-5", "1", "10", "2", "3", "a", "b"])));
    }

    #[test]
    #[rustfmt::skip]
    fn sscan_returns_intsets_whole_and_walks_other_sets_completely() {
        let e = MemoryEngine::new(16);
        check(&e, &[
            (&["sadd", "s", "3", "1", "2"], i(3)),
            (&["sscan", "s", "0"], Frame::Array(vec![b("0"), arr(&["1", "2", "3"])])),
            (&["sscan", "s", "0", "match", "[12]"], Frame::Array(vec![b("0"), arr(&["1", "2"])])),
            (&["sscan", "nokey", "0"], Frame::Array(vec![b("0"), arr(&[])])),
            (&["sscan", "s", "x"], err("ERR invalid cursor")),
            (&["sscan", "s", "0", "count", "0"], err("ERR syntax error")),
        ]);
        let mut cmd = vec!["sadd".to_string(), "big".to_string()];
        cmd.extend((0..500).map(|n| format!("m{n}")));
        run_one(&e, &cmd.iter().map(String::as_str).collect::<Vec<_>>());
        let mut seen = std::collections::HashSet::new();
        let mut cursor = "0".to_string();
        let mut rounds = 0;
        loop {
            let Frame::Array(reply) = run_one(&e, &["sscan", "big", &cursor, "count", "25"]) else {
                panic!("array expected");
            };
            let (Some(Frame::Bulk(next)), Some(Frame::Array(items))) = (reply.first(), reply.get(1)) else {
                panic!("cursor and items expected");
            };
            assert!(items.len() <= 30, "{} items", items.len());
            for item in items {
                assert!(seen.insert(item.clone().as_bytes().map(<[u8]>::to_vec)), "returned twice");
            }
            // Churn while walking: add new members and remove a returned one.
            let add = format!("new{rounds}");
            run_one(&e, &["sadd", "big", &add]);
            cursor = String::from_utf8_lossy(next).into_owned();
            rounds += 1;
            if cursor == "0" {
                break;
            }
            assert!(rounds < 100);
        }
        for n in 0..500 {
            assert!(seen.contains(&Some(format!("m{n}").into_bytes())), "m{n} missed");
        }
    }
}
