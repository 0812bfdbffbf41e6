//! Sorted-set commands: ZADD and friends, ranges by rank, score and lex, pops (blocking too),
//! random members, set algebra (ZUNION, ZINTER, ZDIFF and their STORE forms) and ZSCAN.
//!
//! Replies and error texts follow Redis 7.0's `t_zset.c`. Scores are parsed as Redis parses
//! them with C's `strtod` (hex floats, `inf`, leading spaces only in range bounds), and reply as
//! `Frame::Double`, which RESP2 clients receive as a `%.17g` bulk string. Where Redis' reply shape
//! differs between protocols (WITHSCORES pairs, pops with a count) `Ctx::resp3` picks it.
//!
//! Invariants: an emptied sorted set is removed from the keyspace; every change counts in
//! `Ctx::dirty`, which wakes clients blocked in BZPOPMIN, BZPOPMAX and BZMPOP.

use std::collections::HashMap;
use std::ops::{Bound, Range};

use foldhash::fast::RandomState;
use vigil_proto::float::fmt_g17;
use vigil_proto::resp::{Frame, parse_i64};

use super::hashes::{
    RandomCount, ScanArgs, cmd_name, positional_scan, random_picks, scan_cursor, scan_reply,
};
use super::*;
use crate::engine::ZSet;
use crate::engine::zset::LexBound;
use crate::sds::Sds;

/// The sorted-set commands.
pub static COMMANDS: &[CommandSpec] = &[
    data(
        "zadd",
        -4,
        WRITE | DENYOOM | FAST,
        keys(1, 1, 1),
        "sortedset",
        zadd,
    ),
    data(
        "zincrby",
        4,
        WRITE | DENYOOM | FAST,
        keys(1, 1, 1),
        "sortedset",
        zadd,
    ),
    data("zrem", -3, WRITE | FAST, keys(1, 1, 1), "sortedset", zrem),
    data(
        "zcard",
        2,
        READONLY | FAST,
        keys(1, 1, 1),
        "sortedset",
        zcard,
    ),
    data(
        "zscore",
        3,
        READONLY | FAST,
        keys(1, 1, 1),
        "sortedset",
        zscore,
    ),
    data(
        "zmscore",
        -3,
        READONLY | FAST,
        keys(1, 1, 1),
        "sortedset",
        zmscore,
    ),
    data(
        "zrank",
        3,
        READONLY | FAST,
        keys(1, 1, 1),
        "sortedset",
        zrank,
    ),
    data(
        "zrevrank",
        3,
        READONLY | FAST,
        keys(1, 1, 1),
        "sortedset",
        zrank,
    ),
    data(
        "zcount",
        4,
        READONLY | FAST,
        keys(1, 1, 1),
        "sortedset",
        zcount,
    ),
    data(
        "zlexcount",
        4,
        READONLY | FAST,
        keys(1, 1, 1),
        "sortedset",
        zlexcount,
    ),
    data("zrange", -4, READONLY, keys(1, 1, 1), "sortedset", zrange),
    data(
        "zrangestore",
        -5,
        WRITE | DENYOOM,
        keys(1, 2, 1),
        "sortedset",
        zrange,
    ),
    data(
        "zrevrange",
        -4,
        READONLY,
        keys(1, 1, 1),
        "sortedset",
        zrange,
    ),
    data(
        "zrangebyscore",
        -4,
        READONLY,
        keys(1, 1, 1),
        "sortedset",
        zrange,
    ),
    data(
        "zrevrangebyscore",
        -4,
        READONLY,
        keys(1, 1, 1),
        "sortedset",
        zrange,
    ),
    data(
        "zrangebylex",
        -4,
        READONLY,
        keys(1, 1, 1),
        "sortedset",
        zrange,
    ),
    data(
        "zrevrangebylex",
        -4,
        READONLY,
        keys(1, 1, 1),
        "sortedset",
        zrange,
    ),
    data(
        "zremrangebyrank",
        4,
        WRITE,
        keys(1, 1, 1),
        "sortedset",
        zremrange,
    ),
    data(
        "zremrangebyscore",
        4,
        WRITE,
        keys(1, 1, 1),
        "sortedset",
        zremrange,
    ),
    data(
        "zremrangebylex",
        4,
        WRITE,
        keys(1, 1, 1),
        "sortedset",
        zremrange,
    ),
    data(
        "zpopmin",
        -2,
        WRITE | FAST,
        keys(1, 1, 1),
        "sortedset",
        zpop,
    ),
    data(
        "zpopmax",
        -2,
        WRITE | FAST,
        keys(1, 1, 1),
        "sortedset",
        zpop,
    ),
    data(
        "bzpopmin",
        -3,
        WRITE | BLOCKING | FAST,
        keys(1, -2, 1),
        "sortedset",
        bzpop,
    ),
    data(
        "bzpopmax",
        -3,
        WRITE | BLOCKING | FAST,
        keys(1, -2, 1),
        "sortedset",
        bzpop,
    ),
    data(
        "zmpop",
        -4,
        WRITE,
        KeySpec::Custom(numkeys_at_1),
        "sortedset",
        zmpop,
    ),
    data(
        "bzmpop",
        -5,
        WRITE | BLOCKING,
        KeySpec::Custom(numkeys_at_2),
        "sortedset",
        zmpop,
    ),
    data(
        "zrandmember",
        -2,
        READONLY,
        keys(1, 1, 1),
        "sortedset",
        zrandmember,
    ),
    data(
        "zunion",
        -3,
        READONLY,
        KeySpec::Custom(numkeys_at_1),
        "sortedset",
        zsetop,
    ),
    data(
        "zinter",
        -3,
        READONLY,
        KeySpec::Custom(numkeys_at_1),
        "sortedset",
        zsetop,
    ),
    data(
        "zdiff",
        -3,
        READONLY,
        KeySpec::Custom(numkeys_at_1),
        "sortedset",
        zsetop,
    ),
    data(
        "zintercard",
        -3,
        READONLY,
        KeySpec::Custom(numkeys_at_1),
        "sortedset",
        zsetop,
    ),
    data(
        "zunionstore",
        -4,
        WRITE | DENYOOM,
        KeySpec::Custom(dest_and_numkeys),
        "sortedset",
        zsetop,
    ),
    data(
        "zinterstore",
        -4,
        WRITE | DENYOOM,
        KeySpec::Custom(dest_and_numkeys),
        "sortedset",
        zsetop,
    ),
    data(
        "zdiffstore",
        -4,
        WRITE | DENYOOM,
        KeySpec::Custom(dest_and_numkeys),
        "sortedset",
        zsetop,
    ),
    data("zscan", -3, READONLY, keys(1, 1, 1), "sortedset", zscan),
];

// ---------------------------------------------------------------------------------------------
// Key finders for the numkeys commands.

/// The key positions of a `numkeys key [key ...]` run whose count is at `idx`, or `None` when
/// the count is not a positive integer or the run does not fit in `args`. Handlers reject those
/// cases before they touch a key, so an empty answer never hides a key a handler reads.
pub(crate) fn numkeys_span(args: &[Bytes], idx: usize) -> Option<Range<usize>> {
    let n = parse_i64(args.get(idx)?)?;
    let n = usize::try_from(n).ok().filter(|&n| n >= 1)?;
    let end = (idx + 1).checked_add(n)?;
    (end <= args.len()).then_some(idx + 1..end)
}

/// Keys of `CMD numkeys key ...` (ZUNION, ZMPOP, SINTERCARD, …).
pub(crate) fn numkeys_at_1(args: &[Bytes]) -> Vec<usize> {
    numkeys_span(args, 1).map_or_else(Vec::new, Iterator::collect)
}

/// Keys of `BZMPOP timeout numkeys key ...`.
fn numkeys_at_2(args: &[Bytes]) -> Vec<usize> {
    numkeys_span(args, 2).map_or_else(Vec::new, Iterator::collect)
}

/// Keys of `CMD destination numkeys key ...` (the STORE forms), destination included.
fn dest_and_numkeys(args: &[Bytes]) -> Vec<usize> {
    let mut out = vec![1];
    out.extend(numkeys_span(args, 2).into_iter().flatten());
    out
}

// ---------------------------------------------------------------------------------------------
// Number parsing, as Redis does it with C's strtod.

/// What C's `strtod` makes of a byte string.
struct Strtod {
    /// The value read (0 when nothing was read).
    value: f64,
    /// Bytes used, leading white space included; 0 when no number was found.
    len: usize,
    /// `errno == ERANGE` with an infinite or zero result: the text overflowed or underflowed.
    range_error: bool,
}

/// C's `isspace` in the C locale.
fn is_c_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

/// Emulates glibc `strtod` on `s` (which ends where a C string would, at the first NUL).
fn strtod(s: &[u8]) -> Strtod {
    let none = Strtod {
        value: 0.0,
        len: 0,
        range_error: false,
    };
    let s = s.split(|&b| b == 0).next().unwrap_or(s);
    let mut i = s.iter().take_while(|&&b| is_c_space(b)).count();
    let start = i;
    let sign = match s.get(i) {
        Some(b'-') => {
            i += 1;
            -1.0
        }
        Some(b'+') => {
            i += 1;
            1.0
        }
        _ => 1.0,
    };
    let rest = &s[i..];
    let starts =
        |word: &[u8]| rest.len() >= word.len() && rest[..word.len()].eq_ignore_ascii_case(word);
    if starts(b"infinity") || starts(b"inf") {
        let n = if starts(b"infinity") { 8 } else { 3 };
        return Strtod {
            value: sign * f64::INFINITY,
            len: i + n,
            range_error: false,
        };
    }
    if starts(b"nan") {
        return Strtod {
            value: f64::NAN,
            len: i + 3,
            range_error: false,
        };
    }
    if rest.len() > 2 && rest[0] == b'0' && (rest[1] | 0x20) == b'x' {
        if let Some((value, len, range_error)) = hex_float(&rest[2..]) {
            return Strtod {
                value: sign * value,
                len: i + 2 + len,
                range_error,
            };
        }
    }
    let digits = |from: usize| {
        rest[from..]
            .iter()
            .take_while(|b| b.is_ascii_digit())
            .count()
    };
    let int_digits = digits(0);
    let mut j = int_digits;
    let mut frac_digits = 0;
    if rest.get(j) == Some(&b'.') {
        frac_digits = digits(j + 1);
        j += 1 + frac_digits;
    }
    if int_digits + frac_digits == 0 {
        return none;
    }
    let nonzero = rest[..j].iter().any(|b| (b'1'..=b'9').contains(b));
    if matches!(rest.get(j), Some(b'e' | b'E')) {
        let mut k = j + 1;
        if matches!(rest.get(k), Some(b'+' | b'-')) {
            k += 1;
        }
        let exp_digits = digits(k);
        if exp_digits > 0 {
            j = k + exp_digits;
        }
    }
    let Some(value) = std::str::from_utf8(&s[start..i + j])
        .ok()
        .and_then(|t| t.parse::<f64>().ok())
    else {
        return none;
    };
    Strtod {
        value,
        len: i + j,
        range_error: value.is_infinite() || (value == 0.0 && nonzero),
    }
}

/// The magnitude, length and range error of a hex float body (after `0x`), or `None` without
/// hex digits.
fn hex_float(s: &[u8]) -> Option<(f64, usize, bool)> {
    let hex = |b: u8| (b as char).to_digit(16);
    let (mut mant, mut exp, mut n, mut j, mut nonzero) = (0u64, 0i64, 0usize, 0usize, false);
    let mut add = |d: u32, frac: bool, exp: &mut i64| {
        nonzero |= d != 0;
        if mant < 1 << 56 {
            mant = mant * 16 + u64::from(d);
            if frac {
                *exp -= 4;
            }
        } else if !frac {
            // Digits beyond the precision of a double only scale the value.
            *exp += 4;
        }
    };
    while let Some(d) = s.get(j).and_then(|&b| hex(b)) {
        add(d, false, &mut exp);
        j += 1;
        n += 1;
    }
    if s.get(j) == Some(&b'.') {
        let mut k = j + 1;
        while let Some(d) = s.get(k).and_then(|&b| hex(b)) {
            add(d, true, &mut exp);
            k += 1;
            n += 1;
        }
        if n > 0 {
            j = k;
        }
    }
    if n == 0 {
        return None;
    }
    if matches!(s.get(j), Some(b'p' | b'P')) {
        let mut k = j + 1;
        let neg = match s.get(k) {
            Some(b'-') => {
                k += 1;
                true
            }
            Some(b'+') => {
                k += 1;
                false
            }
            _ => false,
        };
        let from = k;
        let mut e: i64 = 0;
        while let Some(d) = s.get(k).filter(|b| b.is_ascii_digit()) {
            e = e.saturating_mul(10).saturating_add(i64::from(d - b'0'));
            k += 1;
        }
        if k > from {
            exp = exp.saturating_add(if neg { -e } else { e });
            j = k;
        }
    }
    let exp = exp.clamp(-4000, 4000) as i32;
    // Two steps, so that 2^exp itself does not overflow or underflow before the product.
    let value = mant as f64 * 2f64.powi(exp / 2) * 2f64.powi(exp - exp / 2);
    let range_error = value.is_infinite() || (value == 0.0 && nonzero);
    Some((value, j, range_error))
}

/// A float argument as Redis' `getDoubleFromObject` reads it (ZADD scores, increments,
/// weights): the whole argument, no leading space, no overflow, no NaN.
fn strict_float(arg: &[u8]) -> Option<f64> {
    if arg.first().is_none_or(|&b| is_c_space(b)) {
        return None;
    }
    let p = strtod(arg);
    (p.len == arg.len() && !p.range_error && !p.value.is_nan()).then_some(p.value)
}

/// A score argument (ZADD, ZINCRBY).
fn score_arg(arg: &[u8]) -> Result<f64, CmdError> {
    strict_float(arg).ok_or(CmdError::NotFloat)
}

/// Checks a blocking command's timeout as Redis' `getTimeoutFromObjectOrReply` (seconds as a
/// long double, then cast to milliseconds in a `long long`).
fn check_timeout(arg: &[u8]) -> Result<(), CmdError> {
    if arg.first().is_none_or(|&b| is_c_space(b)) || arg.len() >= MAX_LONG_DOUBLE_CHARS {
        return Err(CmdError::Timeout);
    }
    let p = strtod(arg);
    if p.len != arg.len() || p.value.is_nan() {
        return Err(CmdError::Timeout);
    }
    // C's cast truncates towards zero and yields LLONG_MIN for anything out of range, so every
    // value that does not fit reads as negative (an overflowing double is such a value too).
    let ms = p.value * 1000.0;
    if !(ms > -1.0 && ms < 9_223_372_036_854_775_807.0) {
        return Err(CmdError::other("ERR timeout is negative"));
    }
    Ok(())
}

/// Longest text Redis' `string2ld` accepts, plus one.
const MAX_LONG_DOUBLE_CHARS: usize = 5 * 1024;

/// A `long` in `min..` or the error `msg` (Redis' `getRangeLongFromObjectOrReply` with a message).
pub(crate) fn long_at_least(arg: &[u8], min: i64, msg: &str) -> Result<i64, CmdError> {
    parse_i64(arg)
        .filter(|&n| n >= min)
        .ok_or_else(|| CmdError::other(msg))
}

/// A non-negative count with Redis' default message for it.
pub(crate) fn positive_count(arg: &[u8]) -> Result<u64, CmdError> {
    long_at_least(arg, 0, "ERR value is out of range, must be positive").map(|n| n as u64)
}

/// A score interval such as `(1 +inf`.
#[derive(Clone, Copy, Debug, PartialEq)]
struct ScoreRange {
    min: f64,
    minex: bool,
    max: f64,
    maxex: bool,
}

impl ScoreRange {
    /// Parses the two ends as Redis' `zslParseRange`.
    fn parse(min: &[u8], max: &[u8]) -> Result<ScoreRange, CmdError> {
        let item = |arg: &[u8]| {
            let (ex, body) = match arg.split_first() {
                Some((b'(', rest)) => (true, rest),
                _ => (false, arg),
            };
            let cstr = body.split(|&b| b == 0).next().unwrap_or(body);
            let p = strtod(cstr);
            (p.len == cstr.len() && !p.value.is_nan()).then_some((p.value, ex))
        };
        let bad = || CmdError::other("ERR min or max is not a float");
        let (min, minex) = item(min).ok_or_else(bad)?;
        let (max, maxex) = item(max).ok_or_else(bad)?;
        Ok(ScoreRange {
            min,
            minex,
            max,
            maxex,
        })
    }

    /// The interval as bounds for `ZSet::range_by_score`.
    fn bounds(&self) -> (Bound<f64>, Bound<f64>) {
        let b = |v: f64, ex: bool| {
            if ex {
                Bound::Excluded(v)
            } else {
                Bound::Included(v)
            }
        };
        (b(self.min, self.minex), b(self.max, self.maxex))
    }
}

/// Parses the two ends of a lex range.
fn lex_range_args(min: &[u8], max: &[u8]) -> Result<(LexBound, LexBound), CmdError> {
    match (LexBound::parse(min), LexBound::parse(max)) {
        (Some(a), Some(b)) => Ok((a, b)),
        _ => Err(CmdError::other(
            "ERR min or max not valid string range item",
        )),
    }
}

// ---------------------------------------------------------------------------------------------
// Reply helpers.

/// Members, with scores when `withscores`: flat in RESP2, `[member, score]` pairs in RESP3.
fn pairs_reply<'a>(
    items: impl IntoIterator<Item = (&'a Sds, f64)>,
    withscores: bool,
    resp3: bool,
) -> Frame {
    let mut out = Vec::new();
    for (m, s) in items {
        match (withscores, resp3) {
            (false, _) => out.push(bulk(m)),
            (true, false) => {
                out.push(bulk(m));
                out.push(Frame::Double(s));
            }
            (true, true) => out.push(Frame::Array(vec![bulk(m), Frame::Double(s)])),
        }
    }
    Frame::Array(out)
}

/// Stores `z` at `dst`, or deletes `dst` when `z` is empty, and replies the stored length.
fn store_zset(c: &mut Ctx<'_>, dst: &[u8], z: ZSet) -> Frame {
    if z.is_empty() {
        c.delete(dst);
        return Frame::Integer(0);
    }
    let n = z.len();
    c.set_value(dst, Value::ZSet(Box::new(z)));
    Frame::Integer(n as i64)
}

/// A sorted set built from `(member, score)` pairs.
fn collect_zset<'a>(items: impl IntoIterator<Item = (&'a Sds, f64)>) -> ZSet {
    let mut z = ZSet::new();
    for (m, s) in items {
        z.insert(m, s);
    }
    z
}

// ---------------------------------------------------------------------------------------------
// ZADD, ZINCRBY, ZREM and point reads.

/// ZADD and ZINCRBY (which is ZADD with INCR, and parses its options the same way).
fn zadd(c: &mut Ctx<'_>) -> CmdResult {
    let args = c.args;
    let key = &args[1];
    let (mut nx, mut xx, mut gt, mut lt, mut ch) = (false, false, false, false, false);
    let mut incr = is(&args[0], "ZINCRBY");
    let mut idx = 2;
    while let Some(a) = args.get(idx) {
        if is(a, "NX") {
            nx = true;
        } else if is(a, "XX") {
            xx = true;
        } else if is(a, "CH") {
            ch = true;
        } else if is(a, "INCR") {
            incr = true;
        } else if is(a, "GT") {
            gt = true;
        } else if is(a, "LT") {
            lt = true;
        } else {
            break;
        }
        idx += 1;
    }
    let elements = args.len() - idx;
    if elements == 0 || elements % 2 != 0 {
        return Err(CmdError::Syntax);
    }
    if nx && xx {
        return Err(CmdError::other(
            "ERR XX and NX options at the same time are not compatible",
        ));
    }
    if (nx && (gt || lt)) || (gt && lt) {
        return Err(CmdError::other(
            "ERR GT, LT, and/or NX options at the same time are not compatible",
        ));
    }
    if incr && elements > 2 {
        return Err(CmdError::other(
            "ERR INCR option supports a single increment-element pair",
        ));
    }
    // Every score is checked before anything changes: the command applies fully or not at all.
    let pairs = &args[idx..];
    let scores = pairs
        .chunks_exact(2)
        .map(|p| score_arg(&p[0]))
        .collect::<Result<Vec<f64>, CmdError>>()?;
    let nothing = || {
        if incr { Frame::Null } else { Frame::Integer(0) }
    };
    if xx && c.zset(key)?.is_none() {
        return Ok(nothing());
    }
    let z = c.zset_or_create(key)?;
    let (mut added, mut updated, mut processed) = (0i64, 0i64, 0);
    let mut last = 0.0;
    for (pair, &score) in pairs.chunks_exact(2).zip(&scores) {
        let member = &pair[1];
        let Some(cur) = z.score(member) else {
            if !xx {
                z.insert(member, score);
                added += 1;
                processed += 1;
                last = score;
            }
            continue;
        };
        if nx {
            continue;
        }
        let new = if incr { cur + score } else { score };
        if new.is_nan() {
            // Only INCR gets here (inf + -inf), with its single pair: nothing changed yet.
            return Err(CmdError::other("ERR resulting score is not a number (NaN)"));
        }
        if (lt && new >= cur) || (gt && new <= cur) {
            continue;
        }
        processed += 1;
        last = new;
        if new != cur {
            z.insert(member, new);
            updated += 1;
        }
    }
    c.dirty += (added + updated) as u64;
    c.drop_if_empty(key);
    Ok(match (incr, processed) {
        (true, 0) => Frame::Null,
        (true, _) => Frame::Double(last),
        (false, _) if ch => Frame::Integer(added + updated),
        (false, _) => Frame::Integer(added),
    })
}

fn zrem(c: &mut Ctx<'_>) -> CmdResult {
    let args = c.args;
    let Some(z) = c.zset(&args[1])? else {
        return Ok(Frame::Integer(0));
    };
    let removed = args[2..].iter().filter(|m| z.remove(m).is_some()).count();
    c.dirty += removed as u64;
    c.drop_if_empty(&args[1]);
    Ok(Frame::Integer(removed as i64))
}

fn zcard(c: &mut Ctx<'_>) -> CmdResult {
    let args = c.args;
    Ok(Frame::Integer(
        c.zset(&args[1])?.map_or(0, |z| z.len()) as i64
    ))
}

fn zscore(c: &mut Ctx<'_>) -> CmdResult {
    let args = c.args;
    Ok(match c.zset(&args[1])?.and_then(|z| z.score(&args[2])) {
        Some(s) => Frame::Double(s),
        None => Frame::Null,
    })
}

fn zmscore(c: &mut Ctx<'_>) -> CmdResult {
    let args = c.args;
    let z = c.zset(&args[1])?;
    let out = args[2..]
        .iter()
        .map(|m| match z.as_ref().and_then(|z| z.score(m)) {
            Some(s) => Frame::Double(s),
            None => Frame::Null,
        })
        .collect();
    Ok(Frame::Array(out))
}

fn zrank(c: &mut Ctx<'_>) -> CmdResult {
    let args = c.args;
    let rev = is(&args[0], "ZREVRANK");
    let Some(z) = c.zset(&args[1])? else {
        return Ok(Frame::Null);
    };
    Ok(match z.rank(&args[2]) {
        Some(r) if rev => Frame::Integer((z.len() - 1 - r) as i64),
        Some(r) => Frame::Integer(r as i64),
        None => Frame::Null,
    })
}

fn zcount(c: &mut Ctx<'_>) -> CmdResult {
    let args = c.args;
    let range = ScoreRange::parse(&args[2], &args[3])?;
    let (lo, hi) = range.bounds();
    let n = c
        .zset(&args[1])?
        .map_or(0, |z| z.range_by_score(lo, hi).count());
    Ok(Frame::Integer(n as i64))
}

fn zlexcount(c: &mut Ctx<'_>) -> CmdResult {
    let args = c.args;
    let (min, max) = lex_range_args(&args[2], &args[3])?;
    let n = c
        .zset(&args[1])?
        .map_or(0, |z| z.lex_range(&min, &max, false).count());
    Ok(Frame::Integer(n as i64))
}

// ---------------------------------------------------------------------------------------------
// ZRANGE and its older forms.

/// What a range selects by.
#[derive(Clone, Copy, Debug, PartialEq)]
enum RangeKind {
    Rank,
    Score,
    Lex,
}

/// A parsed range.
enum ZRange {
    Rank(i64, i64),
    Score(ScoreRange),
    Lex(LexBound, LexBound),
}

/// ZRANGE, ZRANGESTORE, ZREVRANGE, Z[REV]RANGEBYSCORE and Z[REV]RANGEBYLEX, as Redis'
/// `zrangeGenericCommand`: options first, then the range, then the key.
fn zrange(c: &mut Ctx<'_>) -> CmdResult {
    let args = c.args;
    let name = args[0].to_ascii_lowercase();
    let (start, store, mut kind, mut rev) = match name.as_slice() {
        b"zrangestore" => (2, true, None, None),
        b"zrevrange" => (1, false, Some(RangeKind::Rank), Some(true)),
        b"zrangebyscore" => (1, false, Some(RangeKind::Score), Some(false)),
        b"zrevrangebyscore" => (1, false, Some(RangeKind::Score), Some(true)),
        b"zrangebylex" => (1, false, Some(RangeKind::Lex), Some(false)),
        b"zrevrangebylex" => (1, false, Some(RangeKind::Lex), Some(true)),
        _ => (1, false, None, None),
    };
    let (mut withscores, mut offset, mut limit) = (false, 0i64, -1i64);
    let mut j = start + 3;
    while j < args.len() {
        let a = &args[j];
        let left = args.len() - j - 1;
        if !store && is(a, "WITHSCORES") {
            withscores = true;
        } else if is(a, "LIMIT") && left >= 2 {
            offset = int(&args[j + 1])?;
            limit = int(&args[j + 2])?;
            j += 2;
        } else if rev.is_none() && is(a, "REV") {
            rev = Some(true);
        } else if kind.is_none() && is(a, "BYLEX") {
            kind = Some(RangeKind::Lex);
        } else if kind.is_none() && is(a, "BYSCORE") {
            kind = Some(RangeKind::Score);
        } else {
            return Err(CmdError::Syntax);
        }
        j += 1;
    }
    let rev = rev.unwrap_or(false);
    let kind = kind.unwrap_or(RangeKind::Rank);
    if limit != -1 && kind == RangeKind::Rank {
        return Err(CmdError::other(
            "ERR syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX",
        ));
    }
    if withscores && kind == RangeKind::Lex {
        return Err(CmdError::other(
            "ERR syntax error, WITHSCORES not supported in combination with BYLEX",
        ));
    }
    // Score and lex ranges are given as max, min when reversed.
    let (mut lo, mut hi) = (&args[start + 1], &args[start + 2]);
    if rev && kind != RangeKind::Rank {
        std::mem::swap(&mut lo, &mut hi);
    }
    let range = match kind {
        RangeKind::Rank => ZRange::Rank(int(lo)?, int(hi)?),
        RangeKind::Score => ZRange::Score(ScoreRange::parse(lo, hi)?),
        RangeKind::Lex => {
            let (min, max) = lex_range_args(lo, hi)?;
            ZRange::Lex(min, max)
        }
    };
    let resp3 = c.resp3;
    let src = &args[start];
    if !store {
        let Some(z) = c.zset(src)? else {
            return Ok(Frame::Array(Vec::new()));
        };
        let items = select(z, &range, rev, offset, limit);
        return Ok(pairs_reply(items, withscores, resp3));
    }
    let result = match c.zset(src)? {
        Some(z) => collect_zset(select(z, &range, rev, offset, limit)),
        None => ZSet::new(),
    };
    Ok(store_zset(c, &args[1], result))
}

/// The members a range selects, in reply order, after `offset` and within `limit` (negative:
/// no limit) for score and lex ranges.
fn select<'z>(
    z: &'z ZSet,
    range: &ZRange,
    rev: bool,
    offset: i64,
    limit: i64,
) -> Vec<(&'z Sds, f64)> {
    match range {
        ZRange::Rank(start, stop) => {
            let Some((a, b)) = super::range(*start, *stop, z.len()) else {
                return Vec::new();
            };
            if !rev {
                return z.by_rank(a, b);
            }
            let n = z.len();
            let mut out = z.by_rank(n - b, n - a);
            out.reverse();
            out
        }
        ZRange::Score(r) => {
            let (lo, hi) = r.bounds();
            let it = z.range_by_score(lo, hi);
            if rev {
                page(it.rev(), offset, limit)
            } else {
                page(it, offset, limit)
            }
        }
        ZRange::Lex(min, max) => page(z.lex_range(min, max, rev), offset, limit),
    }
}

/// Applies LIMIT: a negative offset selects nothing and a negative count means all, as Redis'
/// `while (offset--)` and `while (limit--)` loops behave.
fn page<'z>(
    it: impl Iterator<Item = (&'z Sds, f64)>,
    offset: i64,
    limit: i64,
) -> Vec<(&'z Sds, f64)> {
    let Ok(offset) = usize::try_from(offset) else {
        return Vec::new();
    };
    let take = usize::try_from(limit).unwrap_or(usize::MAX);
    it.skip(offset).take(take).collect()
}

fn zremrange(c: &mut Ctx<'_>) -> CmdResult {
    let args = c.args;
    let name = args[0].to_ascii_lowercase();
    let range = match name.as_slice() {
        b"zremrangebyrank" => ZRange::Rank(int(&args[2])?, int(&args[3])?),
        b"zremrangebyscore" => ZRange::Score(ScoreRange::parse(&args[2], &args[3])?),
        _ => {
            let (min, max) = lex_range_args(&args[2], &args[3])?;
            ZRange::Lex(min, max)
        }
    };
    let Some(z) = c.zset(&args[1])? else {
        return Ok(Frame::Integer(0));
    };
    let doomed: Vec<Sds> = select(z, &range, false, 0, -1)
        .into_iter()
        .map(|(m, _)| m.clone())
        .collect();
    for m in &doomed {
        z.remove(m);
    }
    c.dirty += doomed.len() as u64;
    c.drop_if_empty(&args[1]);
    Ok(Frame::Integer(doomed.len() as i64))
}

// ---------------------------------------------------------------------------------------------
// Pops.

/// Pops up to `count` members from the low end, or the high end when `max`.
fn pop_n(z: &mut ZSet, max: bool, count: u64) -> Vec<(Sds, f64)> {
    let mut out = Vec::new();
    while (out.len() as u64) < count {
        let Some(p) = z.pop(max) else { break };
        out.push(p);
    }
    out
}

fn zpop(c: &mut Ctx<'_>) -> CmdResult {
    let args = c.args;
    if args.len() > 3 {
        return Err(CmdError::Syntax);
    }
    let max = is(&args[0], "ZPOPMAX");
    let count = args.get(2).map(|a| positive_count(a)).transpose()?;
    let resp3 = c.resp3;
    let Some(z) = c.zset(&args[1])? else {
        return Ok(Frame::Array(Vec::new()));
    };
    let popped = pop_n(z, max, count.unwrap_or(1));
    c.dirty += popped.len() as u64;
    c.drop_if_empty(&args[1]);
    let items = popped.iter().map(|(m, s)| (m, *s));
    // Without a count the reply is one flat pair in both protocols.
    Ok(pairs_reply(items, true, resp3 && count.is_some()))
}

fn bzpop(c: &mut Ctx<'_>) -> CmdResult {
    let args = c.args;
    let last = args.len() - 1;
    check_timeout(&args[last])?;
    let max = is(&args[0], "BZPOPMAX");
    for key in &args[1..last] {
        let Some(z) = c.zset(key)? else { continue };
        let Some((m, s)) = z.pop(max) else { continue };
        c.dirty += 1;
        c.drop_if_empty(key);
        return Ok(Frame::Array(vec![bulk(key), bulk(&m), Frame::Double(s)]));
    }
    Err(CmdError::Block)
}

/// ZMPOP and BZMPOP, as Redis' `zmpopGenericCommand`: numkeys, MIN|MAX and COUNT are checked
/// before the timeout and the keys.
fn zmpop(c: &mut Ctx<'_>) -> CmdResult {
    let args = c.args;
    let blocking = is(&args[0], "BZMPOP");
    let numkeys_idx = if blocking { 2 } else { 1 };
    let numkeys = long_at_least(
        &args[numkeys_idx],
        1,
        "ERR numkeys should be greater than 0",
    )? as usize;
    let where_idx = numkeys_idx
        .checked_add(numkeys)
        .and_then(|i| i.checked_add(1))
        .filter(|&i| i < args.len())
        .ok_or(CmdError::Syntax)?;
    let max = if is(&args[where_idx], "MIN") {
        false
    } else if is(&args[where_idx], "MAX") {
        true
    } else {
        return Err(CmdError::Syntax);
    };
    let mut count = None;
    let mut j = where_idx + 1;
    while j < args.len() {
        if count.is_none() && is(&args[j], "COUNT") && j + 1 < args.len() {
            count =
                Some(long_at_least(&args[j + 1], 1, "ERR count should be greater than 0")? as u64);
            j += 2;
        } else {
            return Err(CmdError::Syntax);
        }
    }
    if blocking {
        check_timeout(&args[1])?;
    }
    for key in &args[numkeys_idx + 1..where_idx] {
        let Some(z) = c.zset(key)? else { continue };
        let popped = pop_n(z, max, count.unwrap_or(1));
        if popped.is_empty() {
            continue;
        }
        c.dirty += popped.len() as u64;
        c.drop_if_empty(key);
        let items = pairs_reply(popped.iter().map(|(m, s)| (m, *s)), true, true);
        return Ok(Frame::Array(vec![bulk(key), items]));
    }
    if blocking {
        Err(CmdError::Block)
    } else {
        Ok(Frame::NullArray)
    }
}

fn zrandmember(c: &mut Ctx<'_>) -> CmdResult {
    let args = c.args;
    let resp3 = c.resp3;
    let Some(count_arg) = args.get(2) else {
        let Some(z) = c.zset(&args[1])?.filter(|z| !z.is_empty()) else {
            return Ok(Frame::Null);
        };
        let i = rand::Rng::random_range(&mut rand::rng(), 0..z.len());
        let (m, _) = z.entry_at(i).expect("the index is below the length");
        return Ok(bulk(m));
    };
    let withscores = match args.get(3) {
        None => false,
        Some(a) if args.len() == 4 && is(a, "WITHSCORES") => true,
        Some(_) => {
            RandomCount::parse(count_arg, false)?;
            return Err(CmdError::Syntax);
        }
    };
    let rc = RandomCount::parse(count_arg, withscores)?;
    let Some(z) = c.zset(&args[1])?.filter(|z| !z.is_empty()) else {
        return Ok(Frame::Array(Vec::new()));
    };
    if rc.count == 0 {
        return Ok(Frame::Array(Vec::new()));
    }
    rc.check_reply_size(withscores)?;
    // Asking for at least every member returns the whole set, from the highest score down, as
    // Redis walks its listpack.
    if rc.unique && rc.count >= z.len() as u64 {
        return Ok(pairs_reply(z.iter().rev(), withscores, resp3));
    }
    let picks = random_picks(z.len(), rc);
    let items = picks
        .into_iter()
        .map(|i| z.entry_at(i).expect("picks are below the length"));
    Ok(pairs_reply(items, withscores, resp3))
}

// ---------------------------------------------------------------------------------------------
// ZUNION, ZINTER, ZDIFF, ZINTERCARD and the STORE forms.

/// Which set operation.
#[derive(Clone, Copy, Debug, PartialEq)]
enum SetOp {
    Union,
    Inter,
    Diff,
}

/// How scores of one member in several inputs combine.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Aggregate {
    Sum,
    Min,
    Max,
}

impl Aggregate {
    /// Folds `val` into `target`, as Redis' `zunionInterAggregate` (inf + -inf is 0).
    fn fold(self, target: &mut f64, val: f64) {
        match self {
            Aggregate::Sum => {
                *target += val;
                if target.is_nan() {
                    *target = 0.0;
                }
            }
            Aggregate::Min => *target = if val < *target { val } else { *target },
            Aggregate::Max => *target = if val > *target { val } else { *target },
        }
    }
}

/// The members and scores of an input key (sets count with score 1); empty when missing.
fn source_items(c: &mut Ctx<'_>, key: &[u8]) -> Vec<(Sds, f64)> {
    match c.ks.peek(c.db, key).map(|e| &e.value) {
        Some(Value::ZSet(z)) => z.iter().map(|(m, s)| (m.clone(), s)).collect(),
        Some(Value::Set(s)) => s.iter().map(|m| (m.clone(), 1.0)).collect(),
        _ => Vec::new(),
    }
}

/// The score of `member` in an input key (sets count with score 1).
fn source_score(c: &mut Ctx<'_>, key: &[u8], member: &[u8]) -> Option<f64> {
    match c.ks.peek(c.db, key).map(|e| &e.value) {
        Some(Value::ZSet(z)) => z.score(member),
        Some(Value::Set(s)) => s.contains(member).then_some(1.0),
        _ => None,
    }
}

/// ZUNION, ZINTER, ZDIFF, ZINTERCARD and ZUNIONSTORE, ZINTERSTORE, ZDIFFSTORE, as Redis'
/// `zunionInterDiffGenericCommand`: numkeys, then the keys' types, then the options.
fn zsetop(c: &mut Ctx<'_>) -> CmdResult {
    let args = c.args;
    let name = cmd_name(c);
    let (op, card_only) = match name.trim_end_matches("store") {
        "zunion" => (SetOp::Union, false),
        "zinter" => (SetOp::Inter, false),
        "zintercard" => (SetOp::Inter, true),
        _ => (SetOp::Diff, false),
    };
    let dst = name.ends_with("store").then(|| &args[1]);
    let numkeys_idx = if dst.is_some() { 2 } else { 1 };
    let n = int(&args[numkeys_idx])?;
    if n < 1 {
        return Err(CmdError::other(format!(
            "ERR at least 1 input key is needed for '{name}' command"
        )));
    }
    let first = numkeys_idx + 1;
    let n = usize::try_from(n)
        .ok()
        .filter(|&n| n <= args.len() - first)
        .ok_or(CmdError::Syntax)?;
    let keys = &args[first..first + n];
    // Every input must be a sorted set, a set, or missing; this comes before the options.
    let mut lens = Vec::with_capacity(n);
    for k in keys {
        lens.push(match c.ks.get(c.db, k).map(|e| &e.value) {
            None => 0,
            Some(Value::ZSet(z)) => z.len(),
            Some(Value::Set(s)) => s.len(),
            Some(_) => return Err(CmdError::WrongType),
        });
    }
    let mut weights = vec![1.0; n];
    let mut agg = Aggregate::Sum;
    let mut withscores = false;
    let mut limit = 0u64;
    let mut j = first + n;
    while j < args.len() {
        let remaining = args.len() - j;
        let a = &args[j];
        if op != SetOp::Diff && !card_only && remaining > n && is(a, "WEIGHTS") {
            for (w, arg) in weights.iter_mut().zip(&args[j + 1..]) {
                *w = strict_float(arg)
                    .ok_or_else(|| CmdError::other("ERR weight value is not a float"))?;
            }
            j += 1 + n;
        } else if op != SetOp::Diff && !card_only && remaining >= 2 && is(a, "AGGREGATE") {
            let v = &args[j + 1];
            agg = if is(v, "SUM") {
                Aggregate::Sum
            } else if is(v, "MIN") {
                Aggregate::Min
            } else if is(v, "MAX") {
                Aggregate::Max
            } else {
                return Err(CmdError::Syntax);
            };
            j += 2;
        } else if dst.is_none() && !card_only && is(a, "WITHSCORES") {
            withscores = true;
            j += 1;
        } else if card_only && remaining >= 2 && is(a, "LIMIT") {
            limit = long_at_least(&args[j + 1], 0, "ERR LIMIT can't be negative")? as u64;
            j += 2;
        } else {
            return Err(CmdError::Syntax);
        }
    }
    // Inputs from the smallest to the largest, as Redis orders them (not for ZDIFF).
    let mut order: Vec<usize> = (0..n).collect();
    if op != SetOp::Diff {
        order.sort_by_key(|&i| lens[i]);
    }
    let weighted = |w: f64, s: f64| {
        let v = w * s;
        if v.is_nan() { 0.0 } else { v }
    };
    let result: Vec<(Sds, f64)> = match op {
        SetOp::Union => {
            let mut acc: HashMap<Sds, f64, RandomState> = HashMap::default();
            for &i in &order {
                for (m, s) in source_items(c, &keys[i]) {
                    let v = weighted(weights[i], s);
                    match acc.get_mut(&m) {
                        Some(t) => agg.fold(t, v),
                        None => {
                            acc.insert(m, v);
                        }
                    }
                }
            }
            acc.into_iter().collect()
        }
        SetOp::Inter => {
            let (head, rest) = order.split_first().expect("numkeys is at least 1");
            let mut acc: Vec<(Sds, f64)> = source_items(c, &keys[*head])
                .into_iter()
                .map(|(m, s)| (m, weighted(weights[*head], s)))
                .collect();
            for &i in rest {
                acc.retain_mut(|(m, t)| match source_score(c, &keys[i], m) {
                    Some(s) => {
                        agg.fold(t, s * weights[i]);
                        true
                    }
                    None => false,
                });
            }
            acc
        }
        SetOp::Diff => {
            let mut acc = source_items(c, &keys[0]);
            for k in &keys[1..] {
                acc.retain(|(m, _)| source_score(c, k, m).is_none());
            }
            acc
        }
    };
    if card_only {
        let n = result.len() as u64;
        return Ok(Frame::Integer(
            if limit > 0 { n.min(limit) } else { n } as i64
        ));
    }
    let z = collect_zset(result.iter().map(|(m, s)| (m, *s)));
    if let Some(dst) = dst {
        return Ok(store_zset(c, dst, z));
    }
    Ok(pairs_reply(z.iter(), withscores, c.resp3))
}

// ---------------------------------------------------------------------------------------------
// ZSCAN.

fn zscan(c: &mut Ctx<'_>) -> CmdResult {
    let args = c.args;
    let cursor = scan_cursor(&args[2])?;
    let Some(z) = c.zset(&args[1])? else {
        return Ok(scan_reply(0, Vec::new()));
    };
    let opts = ScanArgs::parse(args, 3)?;
    let mut out = Vec::new();
    // Redis returns a listpack-encoded sorted set whole, in order, with the scores as the
    // listpack stores them; a skiplist is walked by cursor, scores formatted with %.17g.
    if z.len() <= 128 && z.iter().all(|(m, _)| m.len() <= 64) {
        for (m, s) in z.iter().filter(|(m, _)| opts.matches(m)) {
            out.push(bulk(m));
            out.push(bulk(listpack_score(s).as_bytes()));
        }
        return Ok(scan_reply(0, out));
    }
    let (positions, next) = positional_scan(z.len(), cursor, opts.count);
    for i in positions {
        let (m, s) = z.entry_at(i).expect("positions are below the length");
        if opts.matches(m) {
            out.push(bulk(m));
            out.push(bulk(fmt_g17(s).as_bytes()));
        }
    }
    Ok(scan_reply(next, out))
}

/// A score as Redis 7.0's listpack stores it: integers within ±LLONG_MAX/2 in decimal,
/// anything else as `%.17g`.
fn listpack_score(s: f64) -> String {
    const LIMIT: f64 = (i64::MAX / 2) as f64;
    if (-LIMIT..=LIMIT).contains(&s) && s.trunc() == s {
        return (s as i64).to_string();
    }
    fmt_g17(s)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::super::testutil::*;
    use super::{CmdError, check_timeout, listpack_score, strict_float, strtod};
    use crate::cmd::{Ctx, Handler, lookup};
    use crate::engine::memory::MemoryEngine;
    use crate::engine::{Engine, Scope};
    use bytes::Bytes;
    use vigil_proto::resp::Frame;

    /// Runs one command as a RESP3 client (shared with the other collection families).
    pub(crate) fn run3(engine: &MemoryEngine, cmd: &[&str]) -> Frame {
        let args: Vec<Bytes> = cmd
            .iter()
            .map(|s| Bytes::copy_from_slice(s.as_bytes()))
            .collect();
        let spec = lookup(&args[0]).expect("a known command");
        let Handler::Data(f) = spec.handler else {
            panic!("not a data command");
        };
        let mut out = Frame::Null;
        engine.with_view(1_000_000, Scope::All, &mut |ks| {
            let mut ctx = Ctx {
                args: &args,
                db: 0,
                dbs: 16,
                ks,
                resp3: true,
                dirty: 0,
            };
            out = f(&mut ctx).unwrap_or_else(|e| e.to_frame());
        });
        out
    }

    fn arr(items: &[&str]) -> Frame {
        Frame::Array(items.iter().map(|s| b(s)).collect())
    }

    fn d(v: f64) -> Frame {
        Frame::Double(v)
    }

    fn err(text: &str) -> Frame {
        Frame::error(text)
    }

    fn pairs(items: &[(&str, f64)]) -> Frame {
        Frame::Array(items.iter().flat_map(|(m, s)| [b(m), d(*s)]).collect())
    }

    const WRONGTYPE: &str = "WRONGTYPE Operation against a key holding the wrong kind of value";

    fn check(e: &MemoryEngine, table: &[(&[&str], Frame)]) {
        for (cmd, want) in table {
            assert_eq!(&run_one(e, cmd), want, "{cmd:?}");
        }
    }

    #[test]
    #[rustfmt::skip]
    fn zadd_options_and_errors_match_redis() {
        let e = MemoryEngine::new(16);
        check(&e, &[
            (&["zadd", "z", "1", "a", "2", "b", "3", "c"], i(3)),
            (&["zadd", "z", "nx", "xx", "1", "a"], err("ERR XX and NX options at the same time are not compatible")),
            (&["zadd", "z", "gt", "lt", "1", "a"], err("ERR GT, LT, and/or NX options at the same time are not compatible")),
            (&["zadd", "z", "nx", "gt", "1", "a"], err("ERR GT, LT, and/or NX options at the same time are not compatible")),
            (&["zadd", "z", "incr", "1", "a", "2", "b"], err("ERR INCR option supports a single increment-element pair")),
            (&["zadd", "z", "nx", "xx", "1"], err("ERR syntax error")),
            (&["zadd", "z", "1", "a", "2"], err("ERR syntax error")),
            (&["zadd", "z", "foo", "1", "a"], err("ERR syntax error")),
            (&["zadd", "z", "x", "a"], err("ERR value is not a valid float")),
            (&["zadd", "z", "nan", "a"], err("ERR value is not a valid float")),
            (&["zadd", "z", "1e400", "a"], err("ERR value is not a valid float")),
            (&["zadd", "z", " 1", "a"], err("ERR value is not a valid float")),
            (&["zadd", "z", "incr", "1", "a"], d(2.0)),
            (&["zadd", "z", "nx", "incr", "1", "a"], Frame::Null),
            (&["zadd", "z", "xx", "incr", "1", "zz"], Frame::Null),
            (&["zadd", "z", "gt", "incr", "-1", "a"], Frame::Null),
            (&["zadd", "z", "ch", "5", "a", "2", "b", "7", "d"], i(2)),
            (&["zadd", "z", "gt", "ch", "1", "a", "9", "b"], i(1)),
            (&["zadd", "z", "lt", "100", "newm"], i(1)),
            (&["zadd", "z", "xx", "ch", "100", "q"], i(0)),
            (&["zadd", "nokey", "xx", "1", "a"], i(0)),
            (&["exists", "nokey"], i(0)),
            (&["zadd", "z", "incr", "inf", "a"], d(f64::INFINITY)),
            (&["zadd", "z", "incr", "-inf", "a"], err("ERR resulting score is not a number (NaN)")),
            (&["zadd", "z", "0x10", "hex", "-INF", "ninf"], i(2)),
            (&["zscore", "z", "hex"], d(16.0)),
            (&["zincrby", "z", "x", "a"], err("ERR value is not a valid float")),
            (&["zincrby", "z", "nx", "a"], err("ERR syntax error")),
            (&["zincrby", "z", "1.5", "fresh"], d(1.5)),
            (&["zincrby", "z", "-inf", "a"], err("ERR resulting score is not a number (NaN)")),
            (&["zcard", "z"], i(8)),
            (&["zrem", "z", "fresh", "nope", "hex"], i(2)),
            (&["zcard", "z"], i(6)),
            (&["zmscore", "z", "b", "nope"], Frame::Array(vec![d(9.0), Frame::Null])),
            (&["zmscore", "nokey", "a"], Frame::Array(vec![Frame::Null])),
            (&["zscore", "nokey", "a"], Frame::Null),
            (&["set", "str", "x"], Frame::ok()),
            (&["zadd", "str", "1", "a"], err(WRONGTYPE)),
            (&["zscore", "str", "a"], err(WRONGTYPE)),
            (&["zadd", "str", "x", "a"], err("ERR value is not a valid float")),
        ]);
    }

    #[test]
    #[rustfmt::skip]
    fn ranks_counts_and_ranges_match_redis() {
        let e = MemoryEngine::new(16);
        check(&e, &[
            (&["zadd", "z", "0", "m", "1", "a", "2", "b", "3", "c", "1.5", "bb"], i(5)),
            (&["zrank", "z", "b"], i(3)),
            (&["zrevrank", "z", "b"], i(1)),
            (&["zrank", "z", "nope"], Frame::Null),
            (&["zrank", "nokey", "a"], Frame::Null),
            (&["zcount", "z", "-inf", "+inf"], i(5)),
            (&["zcount", "z", "(1", "3"], i(3)),
            (&["zcount", "z", "(1", "(1"], i(0)),
            (&["zcount", "z", "", "1"], i(2)),
            (&["zcount", "z", "(", "1"], i(1)),
            (&["zcount", "z", "x", "3"], err("ERR min or max is not a float")),
            (&["zcount", "z", "[1", "3"], err("ERR min or max is not a float")),
            (&["zcount", "z", "  ", "3"], err("ERR min or max is not a float")),
            (&["zcount", "nokey", "x", "1"], err("ERR min or max is not a float")),
            (&["zrange", "z", "0", "-1"], arr(&["m", "a", "bb", "b", "c"])),
            (&["zrange", "z", "-2", "100", "withscores"], pairs(&[("b", 2.0), ("c", 3.0)])),
            (&["zrange", "z", "0", "1", "rev"], arr(&["c", "b"])),
            (&["zrange", "z", "(1", "3", "byscore"], arr(&["bb", "b", "c"])),
            (&["zrange", "z", "3", "(1", "byscore", "rev"], arr(&["c", "b", "bb"])),
            (&["zrange", "z", "0", "10", "byscore", "limit", "1", "2"], arr(&["a", "bb"])),
            (&["zrange", "z", "0", "10", "byscore", "limit", "1", "-1"], arr(&["a", "bb", "b", "c"])),
            (&["zrange", "z", "0", "10", "byscore", "limit", "-1", "2"], arr(&[])),
            (&["zrange", "z", "0", "10", "byscore", "limit", "1", "9223372036854775807"], arr(&["a", "bb", "b", "c"])),
            (&["zrange", "z", "0", "-1", "limit", "0", "1"], err("ERR syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX")),
            (&["zrange", "z", "0", "-1", "limit", "0", "-1"], arr(&["m", "a", "bb", "b", "c"])),
            (&["zrange", "z", "0", "1", "bylex", "withscores"], err("ERR syntax error, WITHSCORES not supported in combination with BYLEX")),
            (&["zrange", "z", "0", "10", "byscore", "bylex"], err("ERR syntax error")),
            (&["zrange", "z", "0", "1", "rev", "rev"], err("ERR syntax error")),
            (&["zrange", "z", "0", "10", "byscore", "limit", "1"], err("ERR syntax error")),
            (&["zrange", "z", "0", "10", "byscore", "limit", "x", "1"], err("ERR value is not an integer or out of range")),
            (&["zrange", "z", "x", "1"], err("ERR value is not an integer or out of range")),
            (&["zrange", "z", "x", "1", "byscore"], err("ERR min or max is not a float")),
            (&["zrange", "z", "x", "1", "bylex"], err("ERR min or max not valid string range item")),
            (&["zrange", "z", "0", "1", "withscores", "withscores"], pairs(&[("m", 0.0), ("a", 1.0)])),
            (&["zrange", "z", "-9223372036854775808", "9223372036854775807"], arr(&["m", "a", "bb", "b", "c"])),
            (&["zrange", "nokey", "0", "1"], arr(&[])),
            (&["zrevrange", "z", "0", "1", "withscores"], pairs(&[("c", 3.0), ("b", 2.0)])),
            (&["zrevrange", "z", "0", "1", "byscore"], err("ERR syntax error")),
            (&["zrangebyscore", "z", "0", "10", "withscores", "limit", "1", "2"], pairs(&[("a", 1.0), ("bb", 1.5)])),
            (&["zrangebyscore", "z", "0", "10", "rev"], err("ERR syntax error")),
            (&["zrevrangebyscore", "z", "10", "(1"], arr(&["c", "b", "bb"])),
            (&["zrangebyscore", "z", "-inf", "(-inf"], arr(&[])),
            (&["zrangebyscore", "z", "(-inf", "(inf"], arr(&["m", "a", "bb", "b", "c"])),
            (&["zrangebyscore", "z", "0x1p1", "inf"], arr(&["b", "c"])),
            (&["set", "str", "x"], Frame::ok()),
            (&["zrange", "str", "0", "1"], err(WRONGTYPE)),
            (&["zrange", "str", "x", "1"], err("ERR value is not an integer or out of range")),
        ]);
    }

    #[test]
    #[rustfmt::skip]
    fn lex_ranges_match_redis() {
        let e = MemoryEngine::new(16);
        check(&e, &[
            (&["zadd", "z", "0", "a", "0", "b", "0", "c", "0", "d"], i(4)),
            (&["zrangebylex", "z", "-", "+"], arr(&["a", "b", "c", "d"])),
            (&["zrangebylex", "z", "(a", "[c"], arr(&["b", "c"])),
            (&["zrangebylex", "z", "-", "+", "limit", "1", "2"], arr(&["b", "c"])),
            (&["zrangebylex", "z", "-", "+", "withscores"], err("ERR syntax error, WITHSCORES not supported in combination with BYLEX")),
            (&["zrevrangebylex", "z", "+", "-", "limit", "0", "1"], arr(&["d"])),
            (&["zrevrangebylex", "z", "[c", "(a"], arr(&["c", "b"])),
            (&["zrange", "z", "[b", "[c", "bylex"], arr(&["b", "c"])),
            (&["zlexcount", "z", "-", "+"], i(4)),
            (&["zlexcount", "z", "+", "-"], i(0)),
            (&["zlexcount", "z", "-", "-"], i(0)),
            (&["zlexcount", "z", "[a", "[a"], i(1)),
            (&["zlexcount", "z", "(a", "[a"], i(0)),
            (&["zlexcount", "z", "a", "b"], err("ERR min or max not valid string range item")),
            (&["zlexcount", "z", "-x", "+"], err("ERR min or max not valid string range item")),
            (&["zremrangebylex", "z", "(a", "[c"], i(2)),
            (&["zrange", "z", "0", "-1"], arr(&["a", "d"])),
            // Mixed scores: the run that starts at the first member not below min, as Redis'
            // listpack walk finds it.
            (&["zadd", "m", "1", "b", "2", "a", "3", "c"], i(3)),
            (&["zrangebylex", "m", "[a", "[b"], arr(&["b", "a"])),
            (&["zrangebylex", "m", "[b", "+"], arr(&["b", "a", "c"])),
        ]);
    }

    #[test]
    #[rustfmt::skip]
    fn removals_by_range_match_redis() {
        let e = MemoryEngine::new(16);
        check(&e, &[
            (&["zadd", "z", "1", "a", "2", "b", "3", "c", "4", "d"], i(4)),
            (&["zremrangebyrank", "z", "x", "1"], err("ERR value is not an integer or out of range")),
            (&["zremrangebyrank", "nokey", "0", "1"], i(0)),
            (&["zremrangebyrank", "z", "-1", "-1"], i(1)),
            (&["zremrangebyscore", "z", "(1", "+inf"], i(2)),
            (&["zremrangebyscore", "z", "x", "1"], err("ERR min or max is not a float")),
            (&["zremrangebyrank", "z", "5", "10"], i(0)),
            (&["zremrangebyrank", "z", "0", "-1"], i(1)),
            (&["exists", "z"], i(0)),
        ]);
    }

    #[test]
    #[rustfmt::skip]
    fn zrangestore_overwrites_or_deletes_the_destination() {
        let e = MemoryEngine::new(16);
        check(&e, &[
            (&["zadd", "z", "1", "a", "2", "b", "3", "c"], i(3)),
            (&["set", "dst", "v"], Frame::ok()),
            (&["zrangestore", "dst", "nokey", "0", "-1"], i(0)),
            (&["exists", "dst"], i(0)),
            (&["set", "str", "v"], Frame::ok()),
            (&["zrangestore", "dst", "str", "0", "-1"], err(WRONGTYPE)),
            (&["zrangestore", "dst", "z", "0", "-1", "withscores"], err("ERR syntax error")),
            (&["zrangestore", "dst", "z", "0", "-1"], i(3)),
            (&["zrangestore", "str", "z", "(3", "1", "byscore", "rev", "limit", "0", "1"], i(1)),
            (&["zrange", "str", "0", "-1", "withscores"], pairs(&[("b", 2.0)])),
            (&["zrangestore", "dst", "z", "1", "(3", "byscore", "rev"], i(0)),
            (&["exists", "dst"], i(0)),
        ]);
    }

    #[test]
    #[rustfmt::skip]
    fn pops_reply_in_redis_shapes() {
        let e = MemoryEngine::new(16);
        let popped = |key: &str, items: &[(&str, f64)]| {
            let items = items.iter().map(|(m, s)| Frame::Array(vec![b(m), d(*s)])).collect();
            Frame::Array(vec![b(key), Frame::Array(items)])
        };
        check(&e, &[
            (&["zadd", "z", "1", "a", "2", "b", "3", "c"], i(3)),
            (&["zpopmin", "z"], pairs(&[("a", 1.0)])),
            (&["zpopmin", "z", "0"], arr(&[])),
            (&["zpopmin", "z", "-1"], err("ERR value is out of range, must be positive")),
            (&["zpopmin", "z", "x"], err("ERR value is out of range, must be positive")),
            (&["zpopmin", "z", "1", "2"], err("ERR syntax error")),
            (&["zpopmax", "z", "5"], pairs(&[("c", 3.0), ("b", 2.0)])),
            (&["exists", "z"], i(0)),
            (&["zpopmin", "nokey"], arr(&[])),
            (&["set", "str", "x"], Frame::ok()),
            (&["zpopmin", "str", "0"], err(WRONGTYPE)),
            (&["zadd", "z", "1", "a", "2", "b", "3", "c"], i(3)),
            (&["zmpop", "1", "z", "min"], popped("z", &[("a", 1.0)])),
            (&["zmpop", "2", "nokey", "z", "max", "count", "5"], popped("z", &[("c", 3.0), ("b", 2.0)])),
            (&["zmpop", "1", "z", "min"], Frame::NullArray),
            (&["zmpop", "0", "z", "min"], err("ERR numkeys should be greater than 0")),
            (&["zmpop", "x", "z", "min"], err("ERR numkeys should be greater than 0")),
            (&["zmpop", "2", "z", "min"], err("ERR syntax error")),
            (&["zmpop", "9223372036854775807", "z", "min"], err("ERR syntax error")),
            (&["zmpop", "1", "z", "foo"], err("ERR syntax error")),
            (&["zmpop", "1", "z", "min", "count", "0"], err("ERR count should be greater than 0")),
            (&["zmpop", "1", "z", "min", "count", "x"], err("ERR count should be greater than 0")),
            (&["zmpop", "1", "z", "min", "count", "1", "count", "2"], err("ERR syntax error")),
            (&["zmpop", "1", "z", "min", "foo"], err("ERR syntax error")),
            (&["zmpop", "2", "nokey", "str", "min"], err(WRONGTYPE)),
        ]);
    }

    #[test]
    #[rustfmt::skip]
    fn blocking_pops_serve_block_or_fail_like_redis() {
        let e = MemoryEngine::new(16);
        let one = |key: &str, m: &str, s: f64| {
            Frame::Array(vec![b(key), Frame::Array(vec![Frame::Array(vec![b(m), d(s)])])])
        };
        check(&e, &[
            (&["zadd", "z", "1", "a", "2", "b"], i(2)),
            (&["bzpopmin", "nokey", "z", "0"], Frame::Array(vec![b("z"), b("a"), d(1.0)])),
            (&["bzpopmax", "z", "0.5"], Frame::Array(vec![b("z"), b("b"), d(2.0)])),
            (&["exists", "z"], i(0)),
            (&["bzpopmin", "z", "0"], err("would block")),
            (&["bzpopmin", "z", "x"], err("ERR timeout is not a float or out of range")),
            (&["bzpopmin", "z", "-1"], err("ERR timeout is negative")),
            (&["bzpopmin", "z", "inf"], err("ERR timeout is negative")),
            (&["bzpopmin", "z", "1e300"], err("ERR timeout is negative")),
            (&["bzpopmin", "z", "nan"], err("ERR timeout is not a float or out of range")),
            (&["bzpopmin", "z", " 1"], err("ERR timeout is not a float or out of range")),
            (&["set", "str", "x"], Frame::ok()),
            (&["bzpopmin", "nokey", "str", "0"], err(WRONGTYPE)),
            (&["bzmpop", "0", "1", "z", "min"], err("would block")),
            (&["bzmpop", "x", "1", "z", "min"], err("ERR timeout is not a float or out of range")),
            (&["bzmpop", "x", "0", "z", "min"], err("ERR numkeys should be greater than 0")),
            (&["bzmpop", "x", "1", "z", "foo"], err("ERR syntax error")),
            (&["bzmpop", "-1", "1", "z", "min"], err("ERR timeout is negative")),
            (&["bzmpop", "0", "1", "str", "min"], err(WRONGTYPE)),
            (&["zadd", "z", "1", "a"], i(1)),
            (&["bzmpop", "0", "1", "z", "min", "count", "10"], one("z", "a", 1.0)),
        ]);
    }

    #[test]
    #[rustfmt::skip]
    fn resp3_shapes_nest_pairs_where_redis_does() {
        let e = MemoryEngine::new(16);
        run_one(&e, &["zadd", "z", "1", "a", "2", "b", "3", "c", "4", "d"]);
        let nested = |items: &[(&str, f64)]| {
            Frame::Array(items.iter().map(|(m, s)| Frame::Array(vec![b(m), d(*s)])).collect())
        };
        let all = nested(&[("a", 1.0), ("b", 2.0), ("c", 3.0), ("d", 4.0)]);
        let table: &[(&[&str], Frame)] = &[
            (&["zrange", "z", "0", "1", "withscores"], nested(&[("a", 1.0), ("b", 2.0)])),
            (&["zrangebyscore", "z", "4", "inf", "withscores"], nested(&[("d", 4.0)])),
            (&["zrandmember", "z", "9", "withscores"], nested(&[("d", 4.0), ("c", 3.0), ("b", 2.0), ("a", 1.0)])),
            (&["zunion", "1", "z", "withscores"], all),
            (&["zpopmin", "z"], pairs(&[("a", 1.0)])),
            (&["zpopmin", "z", "1"], nested(&[("b", 2.0)])),
            (&["zpopmax", "z", "5"], nested(&[("d", 4.0), ("c", 3.0)])),
        ];
        for (cmd, want) in table {
            assert_eq!(&run3(&e, cmd), want, "{cmd:?}");
        }
    }

    #[test]
    #[rustfmt::skip]
    fn zrandmember_counts_follow_redis_rules() {
        let e = MemoryEngine::new(16);
        run_one(&e, &["zadd", "z", "1", "a", "2", "b", "3", "c"]);
        check(&e, &[
            (&["zrandmember", "nokey"], Frame::Null),
            (&["zrandmember", "nokey", "1", "withscores"], arr(&[])),
            (&["zrandmember", "z", "0"], arr(&[])),
            (&["zrandmember", "z", "5", "withscores"], pairs(&[("c", 3.0), ("b", 2.0), ("a", 1.0)])),
            (&["zrandmember", "z", "-9223372036854775808"], err("ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807")),
            (&["zrandmember", "z", "9223372036854775807", "withscores"], err("ERR value is out of range")),
            (&["zrandmember", "z", "-9223372036854775807"], err("ERR value is out of range")),
            (&["zrandmember", "z", "1", "foo"], err("ERR syntax error")),
            (&["zrandmember", "z", "x", "foo"], err("ERR value is not an integer or out of range")),
        ]);
        let Frame::Array(picks) = run_one(&e, &["zrandmember", "z", "-7", "withscores"]) else {
            panic!("array expected");
        };
        assert_eq!(picks.len(), 14);
        let Frame::Array(picks) = run_one(&e, &["zrandmember", "z", "2"]) else {
            panic!("array expected");
        };
        assert_eq!(picks.len(), 2);
        assert_ne!(picks[0], picks[1]);
    }

    #[test]
    #[rustfmt::skip]
    fn set_algebra_matches_redis() {
        let e = MemoryEngine::new(16);
        check(&e, &[
            (&["zadd", "a", "1", "x", "2", "y", "3", "z"], i(3)),
            (&["zadd", "b", "10", "y", "20", "z", "30", "w"], i(3)),
            (&["sadd", "s", "x", "w", "q"], i(3)),
            (&["zunion", "2", "a", "b", "withscores"], pairs(&[("x", 1.0), ("y", 12.0), ("z", 23.0), ("w", 30.0)])),
            (&["zunion", "2", "a", "b", "weights", "1", "2"], arr(&["x", "y", "z", "w"])),
            (&["zunion", "2", "a", "b", "aggregate", "max", "withscores"], pairs(&[("x", 1.0), ("y", 10.0), ("z", 20.0), ("w", 30.0)])),
            (&["zinter", "2", "a", "b", "aggregate", "min", "withscores"], pairs(&[("y", 2.0), ("z", 3.0)])),
            (&["zinter", "3", "a", "b", "s"], arr(&[])),
            (&["zunion", "3", "a", "b", "s", "withscores"], pairs(&[("q", 1.0), ("x", 2.0), ("y", 12.0), ("z", 23.0), ("w", 31.0)])),
            (&["zdiff", "2", "a", "s", "withscores"], pairs(&[("y", 2.0), ("z", 3.0)])),
            (&["zdiff", "2", "a", "b", "weights", "1", "2"], err("ERR syntax error")),
            (&["zunion", "0", "a"], err("ERR at least 1 input key is needed for 'zunion' command")),
            (&["zunion", "-1", "a"], err("ERR at least 1 input key is needed for 'zunion' command")),
            (&["zunion", "x", "a"], err("ERR value is not an integer or out of range")),
            (&["zunion", "3", "a", "b"], err("ERR syntax error")),
            (&["zunion", "9223372036854775807", "a"], err("ERR syntax error")),
            (&["zunion", "2", "a", "b", "weights", "1"], err("ERR syntax error")),
            (&["zunion", "2", "a", "b", "weights", "1", "x"], err("ERR weight value is not a float")),
            (&["zunion", "2", "a", "b", "weights", "1", "1e400"], err("ERR weight value is not a float")),
            (&["zunion", "2", "a", "b", "aggregate", "foo"], err("ERR syntax error")),
            (&["zunion", "2", "a", "b", "aggregate"], err("ERR syntax error")),
            (&["zunionstore", "d", "2", "a", "b", "withscores"], err("ERR syntax error")),
            (&["zunionstore", "d", "2", "a", "b"], i(4)),
            (&["zrange", "d", "0", "-1"], arr(&["x", "y", "z", "w"])),
            (&["zinterstore", "d", "2", "a", "nokey"], i(0)),
            (&["exists", "d"], i(0)),
            (&["zdiffstore", "d", "2", "a", "b"], i(1)),
            (&["zdiffstore", "d", "0", "a"], err("ERR at least 1 input key is needed for 'zdiffstore' command")),
            (&["zintercard", "2", "a", "b"], i(2)),
            (&["zintercard", "2", "a", "b", "limit", "1"], i(1)),
            (&["zintercard", "2", "a", "s"], i(1)),
            (&["zintercard", "0", "a"], err("ERR at least 1 input key is needed for 'zintercard' command")),
            (&["zintercard", "1", "a", "limit", "-1"], err("ERR LIMIT can't be negative")),
            (&["zintercard", "1", "a", "limit", "x"], err("ERR LIMIT can't be negative")),
            (&["zintercard", "1", "a", "withscores"], err("ERR syntax error")),
            (&["set", "str", "v"], Frame::ok()),
            (&["zunion", "2", "a", "str"], err(WRONGTYPE)),
            (&["zunion", "2", "nokey", "str", "foo"], err(WRONGTYPE)),
            (&["zunionstore", "str", "1", "a"], i(3)),
            (&["type", "str"], Frame::simple("zset")),
            (&["zadd", "n", "1", "x"], i(1)),
            (&["zunion", "2", "a", "n", "weights", "inf", "-inf", "withscores"], pairs(&[("x", 0.0), ("y", f64::INFINITY), ("z", f64::INFINITY)])),
            (&["zinter", "2", "a", "n", "weights", "0", "1", "withscores"], pairs(&[("x", 1.0)])),
            (&["zunion", "2", "a", "a", "aggregate", "min", "weights", "2", "3", "withscores"], pairs(&[("x", 2.0), ("y", 4.0), ("z", 6.0)])),
        ]);
    }

    #[test]
    #[rustfmt::skip]
    fn zscan_formats_scores_by_encoding() {
        let e = MemoryEngine::new(16);
        check(&e, &[
            (&["zadd", "z", "1.1", "a", "123456789012345678", "g", "9.2e18", "b", "-0", "h"], i(4)),
            (&["zscan", "z", "0"], Frame::Array(vec![b("0"), arr(&["h", "0", "a", "1.1000000000000001", "g", "123456789012345680", "b", "9.2e+18"])])),
            (&["zscan", "z", "0", "match", "g*"], Frame::Array(vec![b("0"), arr(&["g", "123456789012345680"])])),
            (&["zscan", "nokey", "0"], Frame::Array(vec![b("0"), arr(&[])])),
            (&["zscan", "z", "x"], err("ERR invalid cursor")),
        ]);
        assert_eq!(listpack_score(-4503599627370496.0), "-4503599627370496");
        assert_eq!(listpack_score(f64::INFINITY), "inf");
        assert_eq!(listpack_score(9.3e18), "9.3e+18");
        // A skiplist-sized set is paged by cursor and every member is seen.
        let mut cmd = vec!["zadd".to_string(), "big".to_string()];
        for n in 0..200 {
            cmd.push(format!("{n}.5"));
            cmd.push(format!("m{n}"));
        }
        run_one(&e, &cmd.iter().map(String::as_str).collect::<Vec<_>>());
        let (mut cursor, mut seen) = ("0".to_string(), 0);
        loop {
            let Frame::Array(reply) = run_one(&e, &["zscan", "big", &cursor, "count", "30"]) else {
                panic!("array expected");
            };
            let (Some(Frame::Bulk(next)), Some(Frame::Array(items))) = (reply.first(), reply.get(1)) else {
                panic!("cursor and items expected");
            };
            assert!(items.len() <= 60);
            seen += items.len() / 2;
            cursor = String::from_utf8_lossy(next).into_owned();
            if cursor == "0" {
                break;
            }
        }
        assert_eq!(seen, 200);
    }

    #[test]
    fn floats_parse_like_strtod() {
        assert_eq!(strict_float(b"1.5"), Some(1.5));
        assert_eq!(strict_float(b"-.5e1"), Some(-5.0));
        assert_eq!(strict_float(b"1."), Some(1.0));
        assert_eq!(strict_float(b"0x1p-1"), Some(0.5));
        assert_eq!(strict_float(b"0X1.8"), Some(1.5));
        assert_eq!(strict_float(b"infinity"), Some(f64::INFINITY));
        assert_eq!(strict_float(b"-Inf"), Some(f64::NEG_INFINITY));
        assert_eq!(strict_float(b"4e-324"), Some(5e-324));
        assert_eq!(strict_float(b"1e-400"), None);
        assert_eq!(strict_float(b"1e400"), None);
        assert_eq!(strict_float(b"1e99999999999999999999"), None);
        assert_eq!(strict_float(b"nan"), None);
        assert_eq!(strict_float(b""), None);
        assert_eq!(strict_float(b"1e"), None);
        assert_eq!(strict_float(b"0x"), None);
        assert_eq!(strict_float(b"1\x002"), None);
        assert_eq!(strtod(b" 12abc").len, 3);
        assert_eq!(strtod(b"0xg").len, 1);
        assert!(check_timeout(b"9223372036854").is_ok());
        // C truncates -0.1 s to 0 ms, which blocks forever rather than failing.
        assert!(check_timeout(b"-0.0001").is_ok());
        let negative = Err(CmdError::other("ERR timeout is negative"));
        assert_eq!(check_timeout(b"9223372036854775807"), negative);
    }
}
