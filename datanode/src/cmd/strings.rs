//! String commands: GET, SET and its variants, counters, ranges.
//!
//! Replies and error texts follow Redis 7.0's `t_string.c`. An expiry that is already in the past
//! deletes the key, as Redis does, instead of storing a dead key.

use vigil_proto::float::fmt_human;
use vigil_proto::resp::Frame;

use super::*;
use crate::sds::Sds;

/// Largest string a command may build (`proto-max-bulk-len`).
const MAX_STRING: usize = 512 * 1024 * 1024;

/// The string commands.
pub static COMMANDS: &[CommandSpec] = &[
    data("get", 2, READONLY | FAST, keys(1, 1, 1), "string", get),
    data("set", -3, WRITE | DENYOOM, keys(1, 1, 1), "string", set),
    data(
        "setnx",
        3,
        WRITE | DENYOOM | FAST,
        keys(1, 1, 1),
        "string",
        setnx,
    ),
    data("setex", 4, WRITE | DENYOOM, keys(1, 1, 1), "string", setex),
    data("psetex", 4, WRITE | DENYOOM, keys(1, 1, 1), "string", setex),
    data(
        "getset",
        3,
        WRITE | DENYOOM | FAST,
        keys(1, 1, 1),
        "string",
        getset,
    ),
    data("getdel", 2, WRITE | FAST, keys(1, 1, 1), "string", getdel),
    data("getex", -2, WRITE | FAST, keys(1, 1, 1), "string", getex),
    data("mget", -2, READONLY | FAST, keys(1, -1, 1), "string", mget),
    data("mset", -3, WRITE | DENYOOM, keys(1, -1, 2), "string", mset),
    data(
        "msetnx",
        -3,
        WRITE | DENYOOM,
        keys(1, -1, 2),
        "string",
        msetnx,
    ),
    data(
        "append",
        3,
        WRITE | DENYOOM | FAST,
        keys(1, 1, 1),
        "string",
        append,
    ),
    data(
        "strlen",
        2,
        READONLY | FAST,
        keys(1, 1, 1),
        "string",
        strlen,
    ),
    data(
        "incr",
        2,
        WRITE | DENYOOM | FAST,
        keys(1, 1, 1),
        "string",
        incr,
    ),
    data(
        "decr",
        2,
        WRITE | DENYOOM | FAST,
        keys(1, 1, 1),
        "string",
        incr,
    ),
    data(
        "incrby",
        3,
        WRITE | DENYOOM | FAST,
        keys(1, 1, 1),
        "string",
        incr,
    ),
    data(
        "decrby",
        3,
        WRITE | DENYOOM | FAST,
        keys(1, 1, 1),
        "string",
        incr,
    ),
    data(
        "incrbyfloat",
        3,
        WRITE | DENYOOM | FAST,
        keys(1, 1, 1),
        "string",
        incrbyfloat,
    ),
    data("getrange", 4, READONLY, keys(1, 1, 1), "string", getrange),
    data("substr", 4, READONLY, keys(1, 1, 1), "string", getrange),
    data(
        "setrange",
        4,
        WRITE | DENYOOM,
        keys(1, 1, 1),
        "string",
        setrange,
    ),
];

fn get(c: &mut Ctx<'_>) -> CmdResult {
    Ok(match c.string(&c.args[1].clone())? {
        Some(s) => bulk(&s),
        None => Frame::Null,
    })
}

/// Expiry options shared by SET and GETEX.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Expiry {
    Keep,
    Persist,
    At(u64),
}

/// Parses `EX|PX|EXAT|PXAT <n>` at `args[i]`; returns the absolute time in ms.
fn parse_expiry(c: &Ctx<'_>, i: usize, name: &str) -> Result<u64, CmdError> {
    let unit = &c.args[i];
    let n = int(&c.args[i + 1])?;
    let invalid = || CmdError::InvalidExpire(name.to_string());
    if n <= 0 {
        return Err(invalid());
    }
    let now = c.now_ms() as i64;
    let at = if is(unit, "EX") {
        n.checked_mul(1000).and_then(|ms| ms.checked_add(now))
    } else if is(unit, "PX") {
        n.checked_add(now)
    } else if is(unit, "EXAT") {
        n.checked_mul(1000)
    } else {
        Some(n)
    };
    at.map(|v| v as u64).ok_or_else(invalid)
}

/// The expiry units of SET and GETEX.
const UNITS: [&str; 4] = ["EX", "PX", "EXAT", "PXAT"];

/// Parses the options of SET (`set` true) or GETEX from `args[from..]` as Redis'
/// `parseExtendedStringArgumentsOrReply` does: one expiry unit, which may repeat (the last value
/// wins), never with KEEPTTL or PERSIST. Returns (nx, xx, get, expiry); an `Expiry::At` holds the
/// index of the unit keyword, whose value is checked after the whole syntax is valid.
fn parse_options(
    c: &Ctx<'_>,
    from: usize,
    set: bool,
) -> Result<(bool, bool, bool, Option<Expiry>), CmdError> {
    let (mut nx, mut xx, mut get) = (false, false, false);
    let mut expiry: Option<Expiry> = None;
    let mut unit: Option<&str> = None;
    let mut i = from;
    while i < c.argc() {
        let a = &c.args[i];
        let has_next = i + 1 < c.argc();
        let a_unit = UNITS.into_iter().find(|u| is(a, u));
        if set && is(a, "NX") && !xx {
            nx = true;
        } else if set && is(a, "XX") && !nx {
            xx = true;
        } else if set && is(a, "GET") {
            get = true;
        } else if set && is(a, "KEEPTTL") && unit.is_none() {
            expiry = Some(Expiry::Keep);
        } else if !set && is(a, "PERSIST") && unit.is_none() {
            expiry = Some(Expiry::Persist);
        } else if let Some(u) = a_unit.filter(|&u| {
            has_next
                && !matches!(expiry, Some(Expiry::Keep | Expiry::Persist))
                && unit.is_none_or(|prev| prev == u)
        }) {
            unit = Some(u);
            expiry = Some(Expiry::At(i as u64));
            i += 1;
        } else {
            return Err(CmdError::Syntax);
        }
        i += 1;
    }
    Ok((nx, xx, get, expiry))
}

fn set(c: &mut Ctx<'_>) -> CmdResult {
    let key = c.args[1].clone();
    let (nx, xx, get_old, mut expiry) = parse_options(c, 3, true)?;
    // The expiry value is checked after the syntax is known to be valid (Redis order).
    if let Some(Expiry::At(pos)) = expiry {
        expiry = Some(Expiry::At(parse_expiry(c, pos as usize, "set")?));
    }
    let old = if get_old {
        c.string(&key)?
    } else {
        c.ks.get(c.db, &key).map(|_| Sds::empty())
    };
    let exists = c.ks.peek(c.db, &key).is_some();
    let reply_old = |old: Option<Sds>| match old {
        Some(s) => bulk(&s),
        None => Frame::Null,
    };
    if (nx && exists) || (xx && !exists) {
        return Ok(if get_old { reply_old(old) } else { Frame::Null });
    }
    match expiry {
        Some(Expiry::At(at)) if at <= c.now_ms() => {
            c.delete(&key);
        }
        Some(Expiry::At(at)) => {
            let mut e = Entry::new(&key, Value::Str(Sds::new(&c.args[2])));
            e.expire_at = at;
            c.ks.insert(c.db, e);
            c.dirty += 1;
        }
        Some(Expiry::Keep) => c.put_string(&key, Sds::new(&c.args[2]), true),
        Some(Expiry::Persist) | None => c.put_string(&key, Sds::new(&c.args[2]), false),
    }
    Ok(if get_old { reply_old(old) } else { Frame::ok() })
}

fn setnx(c: &mut Ctx<'_>) -> CmdResult {
    let key = c.args[1].clone();
    if c.ks.get(c.db, &key).is_some() {
        return Ok(Frame::Integer(0));
    }
    c.put_string(&key, Sds::new(&c.args[2]), false);
    Ok(Frame::Integer(1))
}

fn setex(c: &mut Ctx<'_>) -> CmdResult {
    let key = c.args[1].clone();
    let name = if is(&c.args[0], "SETEX") {
        "setex"
    } else {
        "psetex"
    };
    let n = int(&c.args[2])?;
    let invalid = || CmdError::InvalidExpire(name.to_string());
    if n <= 0 {
        return Err(invalid());
    }
    let ms = if name == "setex" {
        n.checked_mul(1000).ok_or_else(invalid)?
    } else {
        n
    };
    let at = ms.checked_add(c.now_ms() as i64).ok_or_else(invalid)?;
    let mut e = Entry::new(&key, Value::Str(Sds::new(&c.args[3])));
    e.expire_at = at as u64;
    c.ks.insert(c.db, e);
    c.dirty += 1;
    Ok(Frame::ok())
}

fn getset(c: &mut Ctx<'_>) -> CmdResult {
    let key = c.args[1].clone();
    let old = c.string(&key)?;
    c.put_string(&key, Sds::new(&c.args[2]), false);
    Ok(old.map_or(Frame::Null, |s| bulk(&s)))
}

fn getdel(c: &mut Ctx<'_>) -> CmdResult {
    let key = c.args[1].clone();
    let old = c.string(&key)?;
    if old.is_some() {
        c.delete(&key);
    }
    Ok(old.map_or(Frame::Null, |s| bulk(&s)))
}

fn getex(c: &mut Ctx<'_>) -> CmdResult {
    let key = c.args[1].clone();
    let (_, _, _, mut expiry) = parse_options(c, 2, false)?;
    // Redis looks the key up (nil, WRONGTYPE) before it validates the expiry value.
    let Some(val) = c.string(&key)? else {
        return Ok(Frame::Null);
    };
    if let Some(Expiry::At(pos)) = expiry {
        expiry = Some(Expiry::At(parse_expiry(c, pos as usize, "getex")?));
    }
    let now = c.now_ms();
    match expiry {
        Some(Expiry::At(at)) if at <= now => {
            c.delete(&key);
        }
        Some(Expiry::At(at)) => {
            c.ks.set_expire(c.db, &key, at);
            c.dirty += 1;
        }
        Some(Expiry::Persist) if c.ks.peek(c.db, &key).is_some_and(|e| e.expire_at != 0) => {
            c.ks.set_expire(c.db, &key, 0);
            c.dirty += 1;
        }
        _ => {}
    }
    Ok(bulk(&val))
}

fn mget(c: &mut Ctx<'_>) -> CmdResult {
    let mut out = Vec::with_capacity(c.argc() - 1);
    for k in &c.args[1..] {
        out.push(match c.ks.get(c.db, k) {
            Some(Entry {
                value: Value::Str(s),
                ..
            }) => bulk(s),
            _ => Frame::Null,
        });
    }
    Ok(Frame::Array(out))
}

fn mset(c: &mut Ctx<'_>) -> CmdResult {
    if c.argc() % 2 == 0 {
        return Err(CmdError::Arity(
            c.args[0].to_ascii_lowercase().escape_ascii().to_string(),
        ));
    }
    for pair in c.args[1..].chunks(2) {
        c.put_string(&pair[0], Sds::new(&pair[1]), false);
    }
    Ok(Frame::ok())
}

fn msetnx(c: &mut Ctx<'_>) -> CmdResult {
    if c.argc() % 2 == 0 {
        return Err(CmdError::Arity("msetnx".into()));
    }
    let args = c.args;
    if args[1..].chunks(2).any(|p| c.ks.get(c.db, &p[0]).is_some()) {
        return Ok(Frame::Integer(0));
    }
    for pair in args[1..].chunks(2) {
        c.put_string(&pair[0], Sds::new(&pair[1]), false);
    }
    Ok(Frame::Integer(1))
}

fn append(c: &mut Ctx<'_>) -> CmdResult {
    let key = c.args[1].clone();
    let add = &c.args[2];
    let Some(old) = c.string(&key)? else {
        c.put_string(&key, Sds::new(add), false);
        return Ok(Frame::Integer(add.len() as i64));
    };
    if old.len() + add.len() > MAX_STRING {
        return Err(too_big());
    }
    let mut v = old.to_vec();
    v.extend_from_slice(add);
    let len = v.len();
    c.put_string(&key, Sds::from(v), true);
    Ok(Frame::Integer(len as i64))
}

fn strlen(c: &mut Ctx<'_>) -> CmdResult {
    Ok(Frame::Integer(
        c.string(&c.args[1].clone())?.map_or(0, |s| s.len()) as i64,
    ))
}

fn incr(c: &mut Ctx<'_>) -> CmdResult {
    let key = c.args[1].clone();
    let name = c.args[0].to_ascii_lowercase();
    let delta = match name.as_slice() {
        b"incr" => 1,
        b"decr" => -1,
        b"incrby" => int(&c.args[2])?,
        _ => {
            let d = int(&c.args[2])?;
            if d == i64::MIN {
                return Err(CmdError::other("ERR decrement would overflow"));
            }
            -d
        }
    };
    // One lookup, updated in place (the expiry stays): a missing key counts from "0".
    let make = &mut || Value::Str(Sds::new(b"0"));
    let Entry {
        value: Value::Str(cur),
        ..
    } = c.ks.get_or_insert(c.db, &key, make)
    else {
        return Err(CmdError::WrongType);
    };
    let new = int(cur)?.checked_add(delta).ok_or(CmdError::Overflow)?;
    *cur = Sds::from_i64(new);
    c.dirty += 1;
    Ok(Frame::Integer(new))
}

fn incrbyfloat(c: &mut Ctx<'_>) -> CmdResult {
    let key = c.args[1].clone();
    // Redis checks the type, then the current value, then the increment.
    let cur_text = c.string(&key)?;
    let cur = match &cur_text {
        Some(s) => float(s)?,
        None => 0.0,
    };
    let delta = float(&c.args[2])?;
    let new = cur + delta;
    if !new.is_finite() {
        return Err(CmdError::other(
            "ERR increment would produce NaN or Infinity",
        ));
    }
    let cur_text: &[u8] = cur_text.as_deref().unwrap_or(b"0");
    let text =
        vigil_proto::float::add_decimal(cur_text, &c.args[2]).unwrap_or_else(|| fmt_human(new));
    c.put_string(&key, Sds::new(text.as_bytes()), true);
    Ok(bulk(text.as_bytes()))
}

fn getrange(c: &mut Ctx<'_>) -> CmdResult {
    let key = c.args[1].clone();
    let mut start = int(&c.args[2])?;
    let mut end = int(&c.args[3])?;
    let Some(s) = c.string(&key)? else {
        return Ok(bulk(b""));
    };
    let len = s.len() as i64;
    if start < 0 && end < 0 && start > end {
        return Ok(bulk(b""));
    }
    if start < 0 {
        start += len;
    }
    if end < 0 {
        end += len;
    }
    start = start.max(0);
    end = end.max(0);
    if end >= len {
        end = len - 1;
    }
    if start > end || len == 0 {
        return Ok(bulk(b""));
    }
    Ok(bulk(&s[start as usize..=end as usize]))
}

fn setrange(c: &mut Ctx<'_>) -> CmdResult {
    let key = c.args[1].clone();
    let offset = int(&c.args[2])?;
    if offset < 0 {
        return Err(CmdError::other("ERR offset is out of range"));
    }
    let offset = offset as usize;
    let add = c.args[3].clone();
    let old = c.string(&key)?;
    if add.is_empty() {
        return Ok(Frame::Integer(old.map_or(0, |s| s.len()) as i64));
    }
    if offset + add.len() > MAX_STRING {
        return Err(too_big());
    }
    let mut v = old.map(|s| s.to_vec()).unwrap_or_default();
    if v.len() < offset + add.len() {
        v.resize(offset + add.len(), 0);
    }
    v[offset..offset + add.len()].copy_from_slice(&add);
    let len = v.len();
    c.put_string(&key, Sds::from(v), true);
    Ok(Frame::Integer(len as i64))
}

fn too_big() -> CmdError {
    CmdError::other("ERR string exceeds maximum allowed size (proto-max-bulk-len)")
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use crate::engine::memory::MemoryEngine;
    use vigil_proto::resp::Frame;

    #[test]
    fn string_commands_reply_like_redis() {
        let e = MemoryEngine::new(16);
        let table: &[(&[&str], Frame)] = &[
            (&["set", "k", "v"], Frame::ok()),
            (&["get", "k"], b("v")),
            (&["set", "k", "w", "NX"], Frame::Null),
            (&["set", "k", "w", "XX", "GET"], b("v")),
            (
                &["set", "k", "x", "EX", "0"],
                Frame::error("ERR invalid expire time in 'set' command"),
            ),
            (
                &["set", "k", "x", "NX", "XX"],
                Frame::error("ERR syntax error"),
            ),
            (&["append", "k", "yz"], i(3)),
            (&["getrange", "k", "-2", "-1"], b("yz")),
            (&["setrange", "k", "5", "!"], i(6)),
            (&["get", "k"], b("wyz\0\0!")),
            (&["incr", "n"], i(1)),
            (&["incrby", "n", "41"], i(42)),
            (
                &["decrby", "n", "-9223372036854775808"],
                Frame::error("ERR decrement would overflow"),
            ),
            (
                &["incr", "k"],
                Frame::error("ERR value is not an integer or out of range"),
            ),
            (&["incrbyfloat", "f", "10.5"], b("10.5")),
            (&["incrbyfloat", "f", "0.1"], b("10.6")),
            (
                &["mset", "a", "1", "b"],
                Frame::error("ERR wrong number of arguments for 'mset' command"),
            ),
            (&["msetnx", "a", "1", "k", "2"], i(0)),
            (
                &["mget", "k", "nope", "n"],
                Frame::Array(vec![b("wyz\0\0!"), Frame::Null, b("42")]),
            ),
            (&["getdel", "n"], b("42")),
            (&["strlen", "n"], i(0)),
        ];
        for (cmd, want) in table {
            assert_eq!(&run_one(&e, cmd), want, "{cmd:?}");
        }
    }
}
