//! Rewriting of writes into the deterministic, absolute commands the replication stream carries.
//!
//! A replica must end with exactly the master's data whatever its clock or random state, so the
//! master rewrites, as Redis does: relative expiry (`SET … EX`, `EXPIRE`, `SETEX`, `GETEX`, …)
//! becomes an absolute `PEXPIREAT`/`SET … PXAT`, float increments become a `SET`/`HSET` of the
//! result, `SPOP` becomes the `SREM` of what it popped, and blocking pops their non-blocking form
//! on the key that served them. The rewrite runs after the command, with its shards still locked,
//! and reads what it needs from the command's reply and from the post-command state (`PostState`),
//! so command handlers know nothing about replication.
//!
//! Invariant: `rewrite` is pure given its inputs; every command it does not name is propagated
//! unchanged, so a new deterministic command needs no entry here.

use bytes::Bytes;
use vigil_proto::resp::Frame;

/// What the rewrite may read of the keyspace after the command ran.
pub trait PostState {
    /// The key's absolute expiry in Unix ms (0 = persistent); `None` if the key does not exist.
    fn expire_at(&mut self, key: &[u8]) -> Option<u64>;
    /// The key's string value, if it holds one.
    fn string(&mut self, key: &[u8]) -> Option<Bytes>;
    /// A hash field's value, if present.
    fn hash_field(&mut self, key: &[u8], field: &[u8]) -> Option<Bytes>;
}

/// How a successful write goes into the stream.
#[derive(Debug, PartialEq)]
pub enum Rewrite {
    /// Propagate the arguments unchanged.
    AsIs,
    /// Propagate these commands instead (possibly none).
    Replace(Vec<Vec<Bytes>>),
}

/// The propagated form of the write `args` (`name` is the lower-case command name) that replied
/// `reply`.
pub fn rewrite(name: &str, args: &[Bytes], reply: &Frame, post: &mut dyn PostState) -> Rewrite {
    let key = || args.get(1).cloned().unwrap_or_default();
    let one = |v: Vec<Bytes>| Rewrite::Replace(vec![v]);
    match name {
        "set" if has_word(args.get(3..).unwrap_or(&[]), &["EX", "PX", "EXAT"]) => {
            match post.expire_at(&args[1]) {
                Some(at) if at > 0 => {
                    one(vec![s("SET"), key(), args[2].clone(), s("PXAT"), num(at)])
                }
                Some(_) => one(vec![s("SET"), key(), args[2].clone()]),
                None => one(vec![s("DEL"), key()]),
            }
        }
        "setex" | "psetex" => match post.expire_at(&args[1]) {
            Some(at) if at > 0 => one(vec![s("SET"), key(), args[3].clone(), s("PXAT"), num(at)]),
            _ => one(vec![s("DEL"), key()]),
        },
        "expire" | "pexpire" | "expireat" | "pexpireat" => expiry(post, key()),
        "getex" => {
            let opts = args.get(2..).unwrap_or(&[]);
            if has_word(opts, &["PERSIST"]) {
                one(vec![s("PERSIST"), key()])
            } else {
                expiry(post, key())
            }
        }
        "incrbyfloat" => match post.string(&args[1]) {
            Some(v) => one(vec![s("SET"), key(), v, s("KEEPTTL")]),
            None => Rewrite::AsIs,
        },
        "hincrbyfloat" => match post.hash_field(&args[1], &args[2]) {
            Some(v) => one(vec![s("HSET"), key(), args[2].clone(), v]),
            None => Rewrite::AsIs,
        },
        "spop" => {
            let members: Vec<Bytes> = match reply {
                Frame::Bulk(m) => vec![m.clone()],
                Frame::Array(items) | Frame::Set(items) => items
                    .iter()
                    .filter_map(|f| f.as_bytes().map(Bytes::copy_from_slice))
                    .collect(),
                _ => Vec::new(),
            };
            if members.is_empty() {
                return Rewrite::Replace(Vec::new());
            }
            let mut cmd = vec![s("SREM"), key()];
            cmd.extend(members);
            one(cmd)
        }
        "blpop" | "brpop" | "bzpopmin" | "bzpopmax" => {
            let Some(served) = first_bulk(reply) else {
                return Rewrite::Replace(Vec::new());
            };
            let pop = match name {
                "blpop" => "LPOP",
                "brpop" => "RPOP",
                "bzpopmin" => "ZPOPMIN",
                _ => "ZPOPMAX",
            };
            one(vec![s(pop), served])
        }
        "brpoplpush" => one(vec![s("RPOPLPUSH"), key(), args[2].clone()]),
        "blmove" => one(vec![
            s("LMOVE"),
            key(),
            args[2].clone(),
            args[3].clone(),
            args[4].clone(),
        ]),
        "blmpop" | "bzmpop" => {
            // BLMPOP timeout numkeys key… LEFT|RIGHT [COUNT n]: the direction follows the keys.
            let (Some(served), Frame::Array(parts)) = (first_bulk(reply), reply) else {
                return Rewrite::Replace(Vec::new());
            };
            let count = match parts.get(1) {
                Some(Frame::Array(items)) | Some(Frame::Set(items)) => items.len(),
                Some(Frame::Map(pairs)) => pairs.len(),
                _ => 1,
            };
            let numkeys = args
                .get(2)
                .and_then(|n| std::str::from_utf8(n).ok()?.parse::<usize>().ok())
                .unwrap_or(0);
            let dir = args.get(3 + numkeys).map(|d| d.to_ascii_uppercase());
            let pop = match (name, dir.as_deref()) {
                ("blmpop", Some(b"RIGHT")) => "RPOP",
                ("blmpop", _) => "LPOP",
                (_, Some(b"MAX")) => "ZPOPMAX",
                _ => "ZPOPMIN",
            };
            one(vec![s(pop), served, num(count as u64)])
        }
        _ => Rewrite::AsIs,
    }
}

/// `PEXPIREAT key at` for a key that still exists with an expiry, `DEL key` for one that the
/// command deleted (an expiry in the past), `PERSIST key` for one without.
fn expiry(post: &mut dyn PostState, key: Bytes) -> Rewrite {
    let cmd = match post.expire_at(&key) {
        Some(0) => vec![s("PERSIST"), key],
        Some(at) => vec![s("PEXPIREAT"), key, num(at)],
        None => vec![s("DEL"), key],
    };
    Rewrite::Replace(vec![cmd])
}

/// The first bulk string of an array reply: the key that served a blocking pop.
fn first_bulk(reply: &Frame) -> Option<Bytes> {
    match reply {
        Frame::Array(items) => items.first()?.as_bytes().map(Bytes::copy_from_slice),
        _ => None,
    }
}

fn has_word(args: &[Bytes], words: &[&str]) -> bool {
    args.iter()
        .any(|a| words.iter().any(|w| a.eq_ignore_ascii_case(w.as_bytes())))
}

fn s(text: &'static str) -> Bytes {
    Bytes::from_static(text.as_bytes())
}

fn num(n: u64) -> Bytes {
    Bytes::copy_from_slice(itoa::Buffer::new().format(n).as_bytes())
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    #[derive(Default)]
    struct Fake {
        expires: HashMap<Vec<u8>, u64>,
        strings: HashMap<Vec<u8>, Bytes>,
    }

    impl PostState for Fake {
        fn expire_at(&mut self, key: &[u8]) -> Option<u64> {
            self.expires.get(key).copied()
        }
        fn string(&mut self, key: &[u8]) -> Option<Bytes> {
            self.strings.get(key).cloned()
        }
        fn hash_field(&mut self, _key: &[u8], field: &[u8]) -> Option<Bytes> {
            (field == b"f").then(|| Bytes::from_static(b"2.5"))
        }
    }

    fn v(words: &[&str]) -> Vec<Bytes> {
        words
            .iter()
            .map(|w| Bytes::copy_from_slice(w.as_bytes()))
            .collect()
    }

    fn b(w: &str) -> Frame {
        Frame::bulk(w.as_bytes())
    }

    #[test]
    fn writes_become_absolute_and_deterministic() {
        let mut post = Fake::default();
        post.expires.insert(b"k".to_vec(), 1_700_000_000_123);
        post.expires.insert(b"p".to_vec(), 0);
        post.strings
            .insert(b"k".to_vec(), Bytes::from_static(b"10.5"));
        let ok = Frame::ok();
        type Case<'a> = (&'a [&'a str], Frame, Option<Vec<Vec<Bytes>>>);
        let table: Vec<Case<'_>> = vec![
            (&["set", "k", "v"], ok.clone(), None),
            (&["set", "k", "v", "KEEPTTL"], ok.clone(), None),
            (
                &["set", "k", "v", "PXAT", "1700000000123"],
                ok.clone(),
                None,
            ),
            (
                &["set", "k", "v", "ex", "10", "GET"],
                Frame::Null,
                Some(vec![v(&["SET", "k", "v", "PXAT", "1700000000123"])]),
            ),
            (
                &["set", "gone", "v", "PX", "1"],
                ok.clone(),
                Some(vec![v(&["DEL", "gone"])]),
            ),
            (
                &["setex", "k", "10", "v"],
                ok.clone(),
                Some(vec![v(&["SET", "k", "v", "PXAT", "1700000000123"])]),
            ),
            (
                &["psetex", "gone", "10", "v"],
                ok.clone(),
                Some(vec![v(&["DEL", "gone"])]),
            ),
            (
                &["expire", "k", "10"],
                Frame::Integer(1),
                Some(vec![v(&["PEXPIREAT", "k", "1700000000123"])]),
            ),
            (
                &["expireat", "gone", "1"],
                Frame::Integer(1),
                Some(vec![v(&["DEL", "gone"])]),
            ),
            (
                &["getex", "k", "EX", "5"],
                b("x"),
                Some(vec![v(&["PEXPIREAT", "k", "1700000000123"])]),
            ),
            (
                &["getex", "p", "PERSIST"],
                b("x"),
                Some(vec![v(&["PERSIST", "p"])]),
            ),
            (
                &["incrbyfloat", "k", "0.5"],
                b("10.5"),
                Some(vec![v(&["SET", "k", "10.5", "KEEPTTL"])]),
            ),
            (
                &["hincrbyfloat", "h", "f", "1"],
                b("2.5"),
                Some(vec![v(&["HSET", "h", "f", "2.5"])]),
            ),
            (&["spop", "s"], b("m"), Some(vec![v(&["SREM", "s", "m"])])),
            (
                &["spop", "s", "2"],
                Frame::Array(vec![b("a"), b("b")]),
                Some(vec![v(&["SREM", "s", "a", "b"])]),
            ),
            (
                &["blpop", "a", "b", "0"],
                Frame::Array(vec![b("b"), b("x")]),
                Some(vec![v(&["LPOP", "b"])]),
            ),
            (
                &["brpop", "a", "0"],
                Frame::Array(vec![b("a"), b("x")]),
                Some(vec![v(&["RPOP", "a"])]),
            ),
            (
                &["blmove", "a", "b", "LEFT", "RIGHT", "0"],
                b("x"),
                Some(vec![v(&["LMOVE", "a", "b", "LEFT", "RIGHT"])]),
            ),
            (
                &["brpoplpush", "a", "b", "0"],
                b("x"),
                Some(vec![v(&["RPOPLPUSH", "a", "b"])]),
            ),
            (
                &["blmpop", "0", "2", "a", "b", "RIGHT", "COUNT", "5"],
                Frame::Array(vec![b("b"), Frame::Array(vec![b("1"), b("2")])]),
                Some(vec![v(&["RPOP", "b", "2"])]),
            ),
            (
                &["bzpopmax", "z", "0"],
                Frame::Array(vec![b("z"), b("m"), b("1")]),
                Some(vec![v(&["ZPOPMAX", "z"])]),
            ),
            (
                &["bzmpop", "0", "1", "z", "MIN"],
                Frame::Array(vec![
                    b("z"),
                    Frame::Array(vec![Frame::Array(vec![b("m"), b("1")])]),
                ]),
                Some(vec![v(&["ZPOPMIN", "z", "1"])]),
            ),
            (&["lpush", "l", "x"], Frame::Integer(1), None),
        ];
        for (args, reply, want) in table {
            let args = v(args);
            let name = String::from_utf8_lossy(&args[0]).to_ascii_lowercase();
            let got = rewrite(&name, &args, &reply, &mut post);
            let want = want.map_or(Rewrite::AsIs, Rewrite::Replace);
            assert_eq!(got, want, "{args:?}");
        }
    }
}
