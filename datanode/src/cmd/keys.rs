//! Generic key commands: deletion, existence, expiry, renaming, iteration, databases.
//!
//! Replies follow Redis 7.0's `db.c` and `expire.c`. Expiry is stored as an absolute Unix time
//! in milliseconds; setting an expiry in the past deletes the key at once.

use vigil_proto::resp::Frame;

use super::*;
use crate::glob;

/// The generic key commands.
pub static COMMANDS: &[CommandSpec] = &[
    data("del", -2, WRITE, keys(1, -1, 1), "generic", del),
    data("unlink", -2, WRITE | FAST, keys(1, -1, 1), "generic", del),
    data(
        "exists",
        -2,
        READONLY | FAST,
        keys(1, -1, 1),
        "generic",
        exists,
    ),
    data(
        "touch",
        -2,
        READONLY | FAST,
        keys(1, -1, 1),
        "generic",
        exists,
    ),
    data("type", 2, READONLY | FAST, keys(1, 1, 1), "generic", type_),
    data("expire", -3, WRITE | FAST, keys(1, 1, 1), "generic", expire),
    data(
        "pexpire",
        -3,
        WRITE | FAST,
        keys(1, 1, 1),
        "generic",
        expire,
    ),
    data(
        "expireat",
        -3,
        WRITE | FAST,
        keys(1, 1, 1),
        "generic",
        expire,
    ),
    data(
        "pexpireat",
        -3,
        WRITE | FAST,
        keys(1, 1, 1),
        "generic",
        expire,
    ),
    data("ttl", 2, READONLY | FAST, keys(1, 1, 1), "generic", ttl),
    data("pttl", 2, READONLY | FAST, keys(1, 1, 1), "generic", ttl),
    data(
        "expiretime",
        2,
        READONLY | FAST,
        keys(1, 1, 1),
        "generic",
        ttl,
    ),
    data(
        "pexpiretime",
        2,
        READONLY | FAST,
        keys(1, 1, 1),
        "generic",
        ttl,
    ),
    data(
        "persist",
        2,
        WRITE | FAST,
        keys(1, 1, 1),
        "generic",
        persist,
    ),
    data("keys", 2, READONLY, KeySpec::All, "generic", keys_),
    data("scan", -2, READONLY, KeySpec::All, "generic", scan),
    data("rename", 3, WRITE, keys(1, 2, 1), "generic", rename),
    data(
        "renamenx",
        3,
        WRITE | FAST,
        keys(1, 2, 1),
        "generic",
        rename,
    ),
    data("randomkey", 1, READONLY, KeySpec::All, "generic", randomkey),
    data("dbsize", 1, READONLY | FAST, KeySpec::All, "server", dbsize),
    data("flushdb", -1, WRITE, KeySpec::All, "server", flushdb),
    data("flushall", -1, WRITE, KeySpec::All, "server", flushdb),
    data("swapdb", 3, WRITE | FAST, KeySpec::All, "server", swapdb),
    data("move", 3, WRITE | FAST, keys(1, 1, 1), "generic", move_),
    data("copy", -3, WRITE | DENYOOM, keys(1, 2, 1), "generic", copy),
    data("object", -2, READONLY, keys(2, 2, 1), "generic", object),
];

fn del(c: &mut Ctx<'_>) -> CmdResult {
    let mut n = 0;
    for k in &c.args[1..] {
        if c.ks.remove(c.db, k).is_some() {
            n += 1;
        }
    }
    c.dirty += n;
    Ok(Frame::Integer(n as i64))
}

fn exists(c: &mut Ctx<'_>) -> CmdResult {
    let n = c.args[1..]
        .iter()
        .filter(|k| c.ks.get(c.db, k).is_some())
        .count();
    Ok(Frame::Integer(n as i64))
}

fn type_(c: &mut Ctx<'_>) -> CmdResult {
    let name =
        c.ks.peek(c.db, &c.args[1])
            .map_or("none", |e| e.value.type_name());
    Ok(Frame::simple(name))
}

fn expire(c: &mut Ctx<'_>) -> CmdResult {
    let name = c.args[0].to_ascii_lowercase();
    let name = String::from_utf8_lossy(&name).into_owned();
    let key = c.args[1].clone();
    let n = int(&c.args[2])?;
    let (mut nx, mut xx, mut gt, mut lt) = (false, false, false, false);
    for a in &c.args[3..] {
        if is(a, "NX") {
            nx = true;
        } else if is(a, "XX") {
            xx = true;
        } else if is(a, "GT") {
            gt = true;
        } else if is(a, "LT") {
            lt = true;
        } else {
            return Err(CmdError::other(format!(
                "ERR Unsupported option {}",
                String::from_utf8_lossy(a)
            )));
        }
    }
    if nx && (xx || gt || lt) {
        return Err(CmdError::other(
            "ERR NX and XX, GT or LT options at the same time are not compatible",
        ));
    }
    if gt && lt {
        return Err(CmdError::other(
            "ERR GT and LT options at the same time are not compatible",
        ));
    }
    let invalid = || CmdError::InvalidExpire(name.clone());
    let now = c.now_ms() as i64;
    let at = match name.as_str() {
        "expire" => n.checked_mul(1000).and_then(|v| v.checked_add(now)),
        "pexpire" => n.checked_add(now),
        "expireat" => n.checked_mul(1000),
        _ => Some(n),
    }
    .ok_or_else(invalid)?;
    let Some(cur) = c.ks.get(c.db, &key).map(|e| e.expire_at) else {
        return Ok(Frame::Integer(0));
    };
    // A persistent key counts as an infinite TTL for GT and LT.
    let refused = (nx && cur != 0)
        || (xx && cur == 0)
        || (gt && (cur == 0 || at <= cur as i64))
        || (lt && cur != 0 && at >= cur as i64);
    if refused {
        return Ok(Frame::Integer(0));
    }
    if at <= now {
        c.delete(&key);
    } else {
        c.ks.set_expire(c.db, &key, at as u64);
        c.dirty += 1;
    }
    Ok(Frame::Integer(1))
}

fn ttl(c: &mut Ctx<'_>) -> CmdResult {
    let name = c.args[0].to_ascii_lowercase();
    let Some(at) = c.ks.peek(c.db, &c.args[1]).map(|e| e.expire_at) else {
        return Ok(Frame::Integer(-2));
    };
    if at == 0 {
        return Ok(Frame::Integer(-1));
    }
    let left = at.saturating_sub(c.now_ms()) as i64;
    Ok(Frame::Integer(match name.as_slice() {
        b"ttl" => (left + 500) / 1000,
        b"pttl" => left,
        b"expiretime" => (at as i64 + 500) / 1000,
        _ => at as i64,
    }))
}

fn persist(c: &mut Ctx<'_>) -> CmdResult {
    let key = c.args[1].clone();
    match c.ks.get(c.db, &key) {
        Some(e) if e.expire_at != 0 => {
            c.ks.set_expire(c.db, &key, 0);
            c.dirty += 1;
            Ok(Frame::Integer(1))
        }
        _ => Ok(Frame::Integer(0)),
    }
}

fn keys_(c: &mut Ctx<'_>) -> CmdResult {
    let pattern = c.args[1].clone();
    let all = &pattern[..] == b"*";
    let mut out = Vec::new();
    c.ks.for_each(c.db, &mut |e| {
        if all || glob::matches(&pattern, &e.key, false) {
            out.push(Frame::bulk(&e.key));
        }
    });
    Ok(Frame::Array(out))
}

fn scan(c: &mut Ctx<'_>) -> CmdResult {
    let cursor = parse_cursor(&c.args[1]).ok_or_else(|| CmdError::other("ERR invalid cursor"))?;
    let mut pattern: Option<Bytes> = None;
    let mut count = 10usize;
    let mut type_filter: Option<Bytes> = None;
    let mut i = 2;
    while i < c.argc() {
        let a = &c.args[i];
        let Some(v) = c.args.get(i + 1) else {
            return Err(CmdError::Syntax);
        };
        if is(a, "MATCH") {
            pattern = Some(v.clone());
        } else if is(a, "COUNT") {
            let n = int(v)?;
            if n < 1 {
                return Err(CmdError::Syntax);
            }
            count = n as usize;
        } else if is(a, "TYPE") {
            type_filter = Some(v.clone());
        } else {
            return Err(CmdError::Syntax);
        }
        i += 2;
    }
    let mut out = Vec::new();
    let next = c.ks.scan(c.db, cursor, count, &mut |e| {
        if let Some(p) = &pattern {
            if !glob::matches(p, &e.key, false) {
                return;
            }
        }
        if let Some(t) = &type_filter {
            if !is(t, e.value.type_name()) {
                return;
            }
        }
        out.push(Frame::bulk(&e.key));
    });
    Ok(Frame::Array(vec![
        Frame::bulk(next.to_string().as_bytes()),
        Frame::Array(out),
    ]))
}

/// Parses a SCAN cursor as Redis does with `strtoul`: an optional sign, then decimal digits;
/// a negative cursor wraps around.
pub fn parse_cursor(arg: &[u8]) -> Option<u64> {
    let (neg, digits) = match arg.first() {
        Some(b'-') => (true, &arg[1..]),
        Some(b'+') => (false, &arg[1..]),
        _ => (false, arg),
    };
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let n: u64 = std::str::from_utf8(digits).ok()?.parse().ok()?;
    Some(if neg { n.wrapping_neg() } else { n })
}

fn rename(c: &mut Ctx<'_>) -> CmdResult {
    let nx = is(&c.args[0], "RENAMENX");
    let (src, dst) = (c.args[1].clone(), c.args[2].clone());
    if c.ks.get(c.db, &src).is_none() {
        return Err(CmdError::NoSuchKey);
    }
    if src == dst {
        return Ok(if nx { Frame::Integer(0) } else { Frame::ok() });
    }
    if nx && c.ks.get(c.db, &dst).is_some() {
        return Ok(Frame::Integer(0));
    }
    let mut e =
        c.ks.remove(c.db, &src)
            .expect("the source was found under the same lock");
    e.key = crate::sds::Sds::new(&dst);
    c.ks.insert(c.db, e);
    c.dirty += 1;
    Ok(if nx { Frame::Integer(1) } else { Frame::ok() })
}

fn randomkey(c: &mut Ctx<'_>) -> CmdResult {
    Ok(match c.ks.random_key(c.db) {
        Some(k) => Frame::bulk(&k),
        None => Frame::Null,
    })
}

fn dbsize(c: &mut Ctx<'_>) -> CmdResult {
    Ok(Frame::Integer(c.ks.len(c.db) as i64))
}

fn flushdb(c: &mut Ctx<'_>) -> CmdResult {
    if let Some(a) = c.args.get(1) {
        if c.argc() > 2 || !(is(a, "ASYNC") || is(a, "SYNC")) {
            return Err(CmdError::Syntax);
        }
    }
    if is(&c.args[0], "FLUSHALL") {
        for db in 0..MAX_DBS {
            if db >= c.dbs() {
                break;
            }
            c.dirty += c.ks.len(db) as u64;
            c.ks.clear(db);
        }
    } else {
        c.dirty += c.ks.len(c.db) as u64;
        c.ks.clear(c.db);
    }
    Ok(Frame::ok())
}

/// Upper bound on `databases`, so a loop over them is bounded even with a bad config.
pub const MAX_DBS: usize = 1024;

fn swapdb(c: &mut Ctx<'_>) -> CmdResult {
    let a = int(&c.args[1]).map_err(|_| CmdError::other("ERR invalid first DB index"))?;
    let b = int(&c.args[2]).map_err(|_| CmdError::other("ERR invalid second DB index"))?;
    let n = c.dbs() as i64;
    if a < 0 || a >= n || b < 0 || b >= n {
        return Err(CmdError::DbIndex);
    }
    c.ks.swap_dbs(a as usize, b as usize);
    c.dirty += 1;
    Ok(Frame::ok())
}

fn move_(c: &mut Ctx<'_>) -> CmdResult {
    let key = c.args[1].clone();
    let dst = int(&c.args[2]).map_err(|_| CmdError::NotInteger)?;
    if dst < 0 || dst >= c.dbs() as i64 {
        return Err(CmdError::DbIndex);
    }
    let dst = dst as usize;
    if dst == c.db {
        return Err(CmdError::other(
            "ERR source and destination objects are the same",
        ));
    }
    if c.ks.get(c.db, &key).is_none() || c.ks.get(dst, &key).is_some() {
        return Ok(Frame::Integer(0));
    }
    let e =
        c.ks.remove(c.db, &key)
            .expect("the key was found under the same lock");
    c.ks.insert(dst, e);
    c.dirty += 1;
    Ok(Frame::Integer(1))
}

fn copy(c: &mut Ctx<'_>) -> CmdResult {
    let (src, dst) = (c.args[1].clone(), c.args[2].clone());
    let mut dst_db = c.db;
    let mut replace = false;
    let mut i = 3;
    while i < c.argc() {
        let a = &c.args[i];
        if is(a, "REPLACE") {
            replace = true;
        } else if is(a, "DB") && i + 1 < c.argc() {
            let n = int(&c.args[i + 1])?;
            if n < 0 || n >= c.dbs() as i64 {
                return Err(CmdError::DbIndex);
            }
            dst_db = n as usize;
            i += 1;
        } else {
            return Err(CmdError::Syntax);
        }
        i += 1;
    }
    if src == dst && dst_db == c.db {
        return Err(CmdError::other(
            "ERR source and destination objects are the same",
        ));
    }
    let Some(mut e) = c.ks.get(c.db, &src).cloned() else {
        return Ok(Frame::Integer(0));
    };
    if c.ks.get(dst_db, &dst).is_some() && !replace {
        return Ok(Frame::Integer(0));
    }
    e.key = crate::sds::Sds::new(&dst);
    c.ks.insert(dst_db, e);
    c.dirty += 1;
    Ok(Frame::Integer(1))
}

fn object(c: &mut Ctx<'_>) -> CmdResult {
    let sub = c.args[1].clone();
    let known = ["ENCODING", "FREQ", "IDLETIME", "REFCOUNT", "HELP"]
        .into_iter()
        .find(|k| is(&sub, k));
    let Some(known) = known else {
        return Err(CmdError::other(format!(
            "ERR unknown subcommand '{}'. Try OBJECT HELP.",
            String::from_utf8_lossy(&sub[..sub.len().min(128)])
        )));
    };
    let arity = if known == "HELP" { 2 } else { 3 };
    if c.argc() != arity {
        return Err(CmdError::other(format!(
            "ERR wrong number of arguments for 'object|{}' command",
            known.to_ascii_lowercase()
        )));
    }
    if known == "HELP" {
        return Ok(Frame::Array(
            OBJECT_HELP.iter().map(|l| Frame::simple(l)).collect(),
        ));
    }
    let now_s = c.now_ms() / 1000;
    let Some(e) = c.ks.peek(c.db, &c.args[2]) else {
        return Ok(Frame::Null);
    };
    if is(&sub, "ENCODING") {
        return Ok(Frame::bulk(encoding(&e.value).as_bytes()));
    }
    if is(&sub, "REFCOUNT") {
        return Ok(Frame::Integer(1));
    }
    if is(&sub, "IDLETIME") {
        return Ok(Frame::Integer(now_s.saturating_sub(u64::from(e.lru)) as i64));
    }
    if is(&sub, "FREQ") {
        return Err(CmdError::other(
            "ERR An LFU maxmemory policy is not selected, access frequency not tracked. Please note that when switching between policies at runtime LRU and LFU data will take some time to adjust.",
        ));
    }
    Err(CmdError::other(format!(
        "ERR unknown subcommand '{}'. Try OBJECT HELP.",
        String::from_utf8_lossy(&sub)
    )))
}

/// `OBJECT HELP`, as Redis 7.0 prints it.
const OBJECT_HELP: &[&str] = &[
    "OBJECT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "ENCODING <key>",
    "    Return the kind of internal representation used in order to store the value",
    "    associated with a <key>.",
    "FREQ <key>",
    "    Return the access frequency index of the <key>. The returned integer is",
    "    proportional to the logarithm of the recent access frequency of the key.",
    "IDLETIME <key>",
    "    Return the idle time of the <key>, that is the approximated number of",
    "    seconds elapsed since the last access to the key.",
    "REFCOUNT <key>",
    "    Return the number of references of the value associated with the specified",
    "    <key>.",
    "HELP",
    "    Prints this help.",
];

/// The encoding Redis 7.0 would use for `v` with its default thresholds.
pub fn encoding(v: &Value) -> &'static str {
    let small = |s: &[u8]| s.len() <= 64;
    match v {
        Value::Str(s) if s.len() <= 20 && vigil_proto::resp::parse_i64(s).is_some() => "int",
        Value::Str(s) if s.len() <= 44 => "embstr",
        Value::Str(_) => "raw",
        // Redis 7.0 keeps every list in a quicklist (listpack-encoded lists came in 7.2).
        Value::List(_) => "quicklist",
        Value::Hash(h) if h.len() <= 512 && h.iter().all(|(k, v)| small(k) && small(v)) => {
            "listpack"
        }
        Value::Hash(_) => "hashtable",
        Value::Set(s)
            if s.len() <= 512 && s.iter().all(|m| vigil_proto::resp::parse_i64(m).is_some()) =>
        {
            "intset"
        }
        Value::Set(_) => "hashtable",
        Value::ZSet(z) if z.len() <= 128 && z.iter().all(|(m, _)| small(m)) => "listpack",
        Value::ZSet(_) => "skiplist",
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use crate::engine::memory::MemoryEngine;
    use vigil_proto::resp::Frame;

    #[test]
    fn key_commands_reply_like_redis() {
        let e = MemoryEngine::new(16);
        let table: &[(&[&str], Frame)] = &[
            (&["set", "a", "1"], Frame::ok()),
            (&["exists", "a", "a", "b"], i(2)),
            (&["type", "a"], Frame::simple("string")),
            (&["ttl", "a"], i(-1)),
            (&["ttl", "b"], i(-2)),
            (&["expire", "a", "100"], i(1)),
            (&["ttl", "a"], i(100)),
            (&["expire", "a", "50", "GT"], i(0)),
            (&["expire", "a", "50", "LT"], i(1)),
            (
                &["expire", "a", "5", "NX", "XX"],
                Frame::error("ERR NX and XX, GT or LT options at the same time are not compatible"),
            ),
            (&["persist", "a"], i(1)),
            (&["rename", "a", "b"], Frame::ok()),
            (&["rename", "a", "b"], Frame::error("ERR no such key")),
            (&["move", "b", "1"], i(1)),
            (&["dbsize"], i(0)),
            (&["copy", "x", "y"], i(0)),
            (&["set", "c", "12345"], Frame::ok()),
            (&["object", "encoding", "c"], b("int")),
            (&["expire", "c", "-1"], i(1)),
            (&["exists", "c"], i(0)),
            (&["del", "c", "zz"], i(0)),
            (
                &["swapdb", "0", "x"],
                Frame::error("ERR invalid second DB index"),
            ),
        ];
        for (cmd, want) in table {
            assert_eq!(&run_one(&e, cmd), want, "{cmd:?}");
        }
    }
}
