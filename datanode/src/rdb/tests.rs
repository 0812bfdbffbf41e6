//! Codec tests: writer/reader round trips, every encoding the reader accepts (built by hand where
//! Redis 7.0 no longer writes it), and truncation and corruption at every byte.
//! Snapshots written by a real redis-server are tested in `datanode/tests/rdb_redis.rs`.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, UNIX_EPOCH};

use super::*;
use crate::engine::{Entry, HashValue, ListValue, SetValue, Value, ZSet};
use crate::sds::Sds;

/// A value in a form that compares by content (sets and hashes unordered, scores by bits).
#[derive(Clone, Debug, Eq, PartialEq)]
enum Canon {
    Str(Vec<u8>),
    List(Vec<Vec<u8>>),
    Set(BTreeSet<Vec<u8>>),
    Hash(BTreeMap<Vec<u8>, Vec<u8>>),
    ZSet(Vec<(Vec<u8>, u64)>),
}

fn canon(v: &Value) -> Canon {
    match v {
        Value::Str(s) => Canon::Str(s.to_vec()),
        Value::List(l) => Canon::List(l.iter().map(|e| e.to_vec()).collect()),
        Value::Set(s) => Canon::Set(s.iter().map(|e| e.to_vec()).collect()),
        Value::Hash(h) => Canon::Hash(h.iter().map(|(k, v)| (k.to_vec(), v.to_vec())).collect()),
        Value::ZSet(z) => Canon::ZSet(z.iter().map(|(m, s)| (m.to_vec(), s.to_bits())).collect()),
    }
}

type Keyspace = BTreeMap<(usize, Vec<u8>), (Canon, u64)>;

#[derive(Debug, Default)]
struct Loaded {
    aux: BTreeMap<Vec<u8>, Vec<u8>>,
    keys: Keyspace,
    resize: Vec<(usize, u64, u64)>,
    functions: Vec<Vec<u8>>,
    freq: usize,
    idle: usize,
}

fn load(bytes: &[u8]) -> Result<Loaded, RdbError> {
    let mut r = RdbReader::new(bytes)?;
    let mut out = Loaded::default();
    while let Some(item) = r.next_item()? {
        match item {
            Item::Aux { key, value } => {
                out.aux.insert(key.to_vec(), value.to_vec());
            }
            Item::ResizeDb { db, keys, expires } => out.resize.push((db, keys, expires)),
            Item::Function { code } => out.functions.push(code),
            Item::Entry {
                db,
                entry,
                idle_secs,
                freq,
            } => {
                out.idle += usize::from(idle_secs.is_some());
                out.freq += usize::from(freq.is_some());
                let at = r.offset();
                let old = out.keys.insert(
                    (db, entry.key.to_vec()),
                    (canon(&entry.value), entry.expire_at),
                );
                // The reader cannot see repeated keys; a loader must refuse them, as Redis does.
                if old.is_some() {
                    return Err(RdbError::Corrupt {
                        offset: at,
                        what: "duplicate key".into(),
                    });
                }
            }
        }
    }
    Ok(out)
}

fn model(entries: &[(usize, Entry)]) -> Keyspace {
    entries
        .iter()
        .map(|(db, e)| ((*db, e.key.to_vec()), (canon(&e.value), e.expire_at)))
        .collect()
}

fn write(entries: &[(usize, Entry)], info: &SnapshotInfo) -> Vec<u8> {
    let mut w = RdbWriter::new(Vec::new(), info).expect("writing to a Vec");
    let mut by_db: BTreeMap<usize, Vec<&Entry>> = BTreeMap::new();
    for (db, e) in entries {
        by_db.entry(*db).or_default().push(e);
    }
    for (db, es) in by_db {
        let expires = es.iter().filter(|e| e.expire_at != 0).count() as u64;
        w.select_db(db, es.len() as u64, expires).expect("vec");
        for e in es {
            w.entry(e).expect("vec");
        }
    }
    w.finish().expect("vec")
}

fn info() -> SnapshotInfo {
    SnapshotInfo {
        ctime: UNIX_EPOCH + Duration::from_secs(1_700_000_000),
        used_mem: 123_456_789_012,
        repl: Some(ReplInfo {
            stream_db: 3,
            replid: "0123456789abcdef0123456789abcdef01234567".into(),
            offset: 987_654_321_987,
        }),
        aof_base: false,
        compress: true,
    }
}

fn list(items: &[&[u8]]) -> Value {
    Value::List(Box::new(
        items.iter().map(|i| Sds::new(i)).collect::<ListValue>(),
    ))
}

fn set(items: &[&[u8]]) -> Value {
    Value::Set(Box::new(
        items.iter().map(|i| Sds::new(i)).collect::<SetValue>(),
    ))
}

fn hash(pairs: &[(&[u8], &[u8])]) -> Value {
    Value::Hash(Box::new(
        pairs
            .iter()
            .map(|(k, v)| (Sds::new(k), Sds::new(v)))
            .collect::<HashValue>(),
    ))
}

fn zset(pairs: &[(&[u8], f64)]) -> Value {
    let mut z = ZSet::new();
    for (m, s) in pairs {
        z.insert(m, *s);
    }
    Value::ZSet(Box::new(z))
}

fn entry(key: &[u8], value: Value, expire_at: u64) -> Entry {
    Entry {
        key: Sds::new(key),
        value,
        expire_at,
        lru: 0,
    }
}

/// Pseudo-random bytes (xorshift), incompressible.
fn noise(len: usize, mut seed: u64) -> Vec<u8> {
    (0..len)
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed as u8
        })
        .collect()
}

/// Every value type, small and big, integers that are and are not int-encodable, binary keys,
/// TTLs, three databases.
fn keyspace() -> Vec<(usize, Entry)> {
    let big_list: Vec<Vec<u8>> = (0..5000)
        .map(|i| format!("item-{i}").into_bytes())
        .collect();
    let big_list: Vec<&[u8]> = big_list.iter().map(Vec::as_slice).collect();
    let members: Vec<Vec<u8>> = (0..3000)
        .map(|i| format!("m{}", i * 7919 % 10007).into_bytes())
        .collect();
    let members: Vec<&[u8]> = members.iter().map(Vec::as_slice).collect();
    let pairs: Vec<(&[u8], &[u8])> = members.iter().map(|m| (*m, &m[1..])).collect();
    let scored: Vec<(&[u8], f64)> = members
        .iter()
        .enumerate()
        .map(|(i, m)| (*m, i as f64 / 3.0 - 500.0))
        .collect();
    let huge = noise(300_000, 7);
    let compressible = b"abcdefgh".repeat(10_000);
    vec![
        (0, entry(b"s:int", Value::Str(Sds::new(b"12345")), 0)),
        (0, entry(b"s:neg", Value::Str(Sds::new(b"-128")), 0)),
        (0, entry(b"s:i16", Value::Str(Sds::new(b"-32768")), 0)),
        (0, entry(b"s:i32", Value::Str(Sds::new(b"2147483647")), 0)),
        (
            0,
            entry(b"s:i64", Value::Str(Sds::new(b"9223372036854775807")), 0),
        ),
        (0, entry(b"s:lead0", Value::Str(Sds::new(b"007")), 0)),
        (0, entry(b"s:empty", Value::Str(Sds::empty()), 0)),
        (
            0,
            entry(
                b"s:short",
                Value::Str(Sds::new(b"hello")),
                1_900_000_000_000,
            ),
        ),
        (
            0,
            entry(b"s:compressible", Value::Str(Sds::from(compressible)), 0),
        ),
        (0, entry(b"s:huge", Value::Str(Sds::from(huge.clone())), 0)),
        (
            0,
            entry(
                b"\x00bin\xff\r\n",
                Value::Str(Sds::new(b"\x00\x01\xfe\xff")),
                0,
            ),
        ),
        (0, entry(b"12", Value::Str(Sds::new(b"int key")), 0)),
        (0, entry(b"l:small", list(&[b"a", b"1", b"", b"-3"]), 0)),
        (0, entry(b"l:big", list(&big_list), 4_102_444_800_000)),
        (0, entry(b"l:huge-elem", list(&[&huge, b"x"]), 0)),
        (
            0,
            entry(b"set:ints", set(&[b"1", b"2", b"-3", b"5000000000"]), 0),
        ),
        (0, entry(b"set:big", set(&members), 0)),
        (
            0,
            entry(
                b"h:small",
                hash(&[(b"f", b"v"), (b"1", b"2"), (b"", b"")]),
                0,
            ),
        ),
        (0, entry(b"h:big", hash(&pairs), 1)),
        (
            1,
            entry(
                b"z:small",
                zset(&[
                    (b"a", 1.5),
                    (b"b", f64::INFINITY),
                    (b"c", f64::NEG_INFINITY),
                    (b"7", -0.0),
                ]),
                0,
            ),
        ),
        (1, entry(b"z:big", zset(&scored), 1_900_000_000_000)),
        (1, entry(b"s:int", Value::Str(Sds::new(b"other db")), 0)),
        (15, entry(b"last", Value::Str(Sds::new(b"db 15")), 5)),
    ]
}

#[test]
fn round_trip_preserves_every_type_ttl_and_database() {
    let entries = keyspace();
    let bytes = write(&entries, &info());
    assert_eq!(&bytes[..9], b"REDIS0010");
    let loaded = load(&bytes).expect("own snapshot loads");
    assert_eq!(loaded.keys, model(&entries));
    let aux = |k: &str| String::from_utf8(loaded.aux[k.as_bytes()].clone()).expect("utf8");
    assert_eq!(aux("redis-ver"), "7.0.15");
    assert_eq!(aux("redis-bits"), "64");
    assert_eq!(aux("ctime"), "1700000000");
    assert_eq!(aux("used-mem"), "123456789012");
    assert_eq!(aux("repl-stream-db"), "3");
    assert_eq!(aux("repl-id"), "0123456789abcdef0123456789abcdef01234567");
    assert_eq!(aux("repl-offset"), "987654321987");
    assert_eq!(aux("aof-base"), "0");
    assert_eq!(loaded.resize, vec![(0, 19, 3), (1, 3, 1), (15, 1, 1)]);
    // Compression works: the 80 KB compressible string and the 5000-item list shrink.
    let plain = write(
        &entries,
        &SnapshotInfo {
            compress: false,
            ..info()
        },
    );
    assert!(
        bytes.len() + 70_000 < plain.len(),
        "{} vs {}",
        bytes.len(),
        plain.len()
    );
    assert_eq!(
        load(&plain).expect("uncompressed loads").keys,
        model(&entries)
    );
}

#[test]
fn writer_uses_the_plain_encodings_redis_writes() {
    let entries = vec![
        (0, entry(b"k", Value::Str(Sds::new(b"-2")), 0)),
        (0, entry(b"n", Value::Str(Sds::new(b"300")), 0)),
        (0, entry(b"l", list(&[b"x"]), 0x0102_0304_0506_0708)),
    ];
    let info = SnapshotInfo::new(UNIX_EPOCH);
    let bytes = write(&entries, &info);
    let body = [
        &[op::SELECTDB, 0, op::RESIZEDB, 3, 1][..],
        &[ty::STRING, 1, b'k', 0xc0, 0xfe],
        &[ty::STRING, 1, b'n', 0xc1, 0x2c, 0x01],
        &[op::EXPIRETIME_MS, 8, 7, 6, 5, 4, 3, 2, 1],
        &[ty::LIST, 1, b'l', 1, 1, b'x'],
        &[op::EOF],
    ]
    .concat();
    let end = bytes.len() - 8;
    assert_eq!(&bytes[end - body.len()..end], &body[..]);
    assert_eq!(
        u64::from_le_bytes(bytes[end..].try_into().expect("8 bytes")),
        crc64::crc64(&bytes[..end])
    );
    let loaded = load(&bytes).expect("loads");
    assert!(!loaded.aux.contains_key(&b"repl-id"[..]));
    assert_eq!(loaded.aux[&b"ctime"[..]], b"0");
}

/// Builds snapshots byte by byte, for encodings the writer never produces.
struct Raw(Vec<u8>);

impl Raw {
    fn new(version: u32) -> Raw {
        Raw(format!("REDIS{version:04}").into_bytes())
    }
    fn op(mut self, b: u8) -> Raw {
        self.0.push(b);
        self
    }
    fn bytes(mut self, b: &[u8]) -> Raw {
        self.0.extend_from_slice(b);
        self
    }
    fn len(self, n: u64) -> Raw {
        if n < 64 {
            self.op(n as u8)
        } else if n < 16384 {
            self.bytes(&[0x40 | (n >> 8) as u8, n as u8])
        } else if let Ok(n) = u32::try_from(n) {
            self.op(0x80).bytes(&n.to_be_bytes())
        } else {
            self.op(0x81).bytes(&n.to_be_bytes())
        }
    }
    fn str(self, s: &[u8]) -> Raw {
        self.len(s.len() as u64).bytes(s)
    }
    fn lzf(self, s: &[u8]) -> Raw {
        let c = lzf::compress(s).expect("compressible test data");
        self.op(0xc3)
            .len(c.len() as u64)
            .len(s.len() as u64)
            .bytes(&c)
    }
    fn key(self, t: u8, key: &[u8]) -> Raw {
        self.op(t).str(key)
    }
    /// EOF plus the checksum (`Some(0)` writes a disabled checksum, `None` none at all).
    fn end(self, checksum: Option<u64>) -> Vec<u8> {
        let mut v = self.op(op::EOF).0;
        match checksum {
            Some(0) => v.extend_from_slice(&[0; 8]),
            Some(_) => {
                let crc = crc64::crc64(&v);
                v.extend_from_slice(&crc.to_le_bytes());
            }
            None => {}
        }
        v
    }
}

/// One key of every encoding Redis 7.0 loads, plus 7.2's set listpack.
fn every_encoding() -> (Vec<u8>, Keyspace) {
    let zl = |e: &[Elem<'_>]| ziplist::build(e);
    let lp = |e: &[Elem<'_>]| listpack::build(e);
    let b = Elem::Bytes;
    let i = Elem::Int;
    let long = b"0123456789".repeat(30);
    let bytes = Raw::new(10)
        .op(op::AUX)
        .str(b"redis-ver")
        .str(b"7.0.15")
        .op(op::AUX)
        .str(b"ctime")
        .bytes(&[0xc2, 0x00, 0xf1, 0x53, 0x65])
        .op(op::FUNCTION2)
        .str(b"#!lua name=lib\nredis.register_function('f', function() return 1 end)")
        .op(op::SELECTDB)
        .len(0)
        .op(op::RESIZEDB)
        .len(20)
        .len(2)
        .key(ty::STRING, b"int8")
        .bytes(&[0xc0, 0x85])
        .key(ty::STRING, b"int16")
        .bytes(&[0xc1, 0x00, 0x80])
        .key(ty::STRING, b"int32")
        .bytes(&[0xc2, 0xff, 0xff, 0xff, 0x7f])
        .key(ty::STRING, b"lzf")
        .lzf(&long)
        .op(op::EXPIRETIME)
        .bytes(&2_000_000_000i32.to_le_bytes())
        .key(ty::LIST, b"list")
        .len(2)
        .str(b"a")
        .bytes(&[0xc0, 0x07])
        .op(op::IDLE)
        .len(1000)
        .key(ty::LIST_ZIPLIST, b"list-zl")
        .str(&zl(&[b(b"x"), i(5), i(-70_000), i(1 << 40), b(&long)]))
        .op(op::FREQ)
        .op(9)
        .key(ty::LIST_QUICKLIST, b"list-ql")
        .len(2)
        .str(&zl(&[b(b"n1"), i(1)]))
        .lzf(&zl(&[b(&long), b(&long)]))
        .key(ty::LIST_QUICKLIST_2, b"list-ql2")
        .len(3)
        .len(QUICKLIST_PACKED)
        .str(&lp(&[b(b"p1"), i(-2)]))
        .len(QUICKLIST_PLAIN)
        .str(&long)
        .len(QUICKLIST_PACKED)
        .lzf(&lp(&[b(&long), b(&long), b(b"end")]))
        .key(ty::SET, b"set")
        .len(2)
        .str(b"m1")
        .bytes(&[0xc0, 0x01])
        .key(ty::SET_INTSET, b"set-is")
        .str(&intset::build(&[-5, 3, 100_000]))
        .key(ty::SET_LISTPACK, b"set-lp")
        .str(&lp(&[b(b"a"), i(12)]))
        .key(ty::ZSET, b"zset")
        .len(4)
        .str(b"a")
        .str(b"1.5")
        .str(b"b")
        .op(254)
        .str(b"c")
        .op(255)
        .str(b"d")
        .str(b"-1e+20")
        .key(ty::ZSET_2, b"zset2")
        .len(1)
        .str(b"m")
        .bytes(&0.25f64.to_le_bytes())
        .key(ty::ZSET_ZIPLIST, b"zset-zl")
        .str(&zl(&[b(b"a"), i(1), b(b"b"), b(b"2.5"), i(3), b(b"inf")]))
        .key(ty::ZSET_LISTPACK, b"zset-lp")
        .str(&lp(&[b(b"a"), b(b"-inf"), i(42), i(-7)]))
        .key(ty::HASH, b"hash")
        .len(1)
        .str(b"f")
        .bytes(&[0xc0, 0x00])
        .key(ty::HASH_ZIPMAP, b"hash-zm")
        .str(&zipmap::build(&[(b"f1", b"v1"), (b"f2", &long)]))
        .key(ty::HASH_ZIPLIST, b"hash-zl")
        .str(&zl(&[b(b"f"), i(1), i(2), b(b"v")]))
        .key(ty::HASH_LISTPACK, b"hash-lp")
        .str(&lp(&[b(b"f"), b(&long)]))
        .key(ty::LIST, b"empty-list-is-skipped")
        .len(0)
        .op(op::SELECTDB)
        .len(2)
        .op(op::EXPIRETIME_MS)
        .bytes(&(-5i64).to_le_bytes())
        .key(ty::STRING, b"long-expired")
        .str(b"v")
        .end(Some(1));
    let s = |x: &[u8]| x.to_vec();
    let mut want = Keyspace::new();
    let mut put = |db: usize, k: &[u8], c: Canon, exp: u64| {
        want.insert((db, k.to_vec()), (c, exp));
    };
    put(0, b"int8", Canon::Str(s(b"-123")), 0);
    put(0, b"int16", Canon::Str(s(b"-32768")), 0);
    put(0, b"int32", Canon::Str(s(b"2147483647")), 0);
    put(0, b"lzf", Canon::Str(long.clone()), 0);
    put(
        0,
        b"list",
        Canon::List(vec![s(b"a"), s(b"7")]),
        2_000_000_000_000,
    );
    let l = Canon::List(vec![
        s(b"x"),
        s(b"5"),
        s(b"-70000"),
        s(b"1099511627776"),
        long.clone(),
    ]);
    put(0, b"list-zl", l, 0);
    let l = Canon::List(vec![s(b"n1"), s(b"1"), long.clone(), long.clone()]);
    put(0, b"list-ql", l, 0);
    let l = vec![
        s(b"p1"),
        s(b"-2"),
        long.clone(),
        long.clone(),
        long.clone(),
        s(b"end"),
    ];
    put(0, b"list-ql2", Canon::List(l), 0);
    put(0, b"set", Canon::Set([s(b"m1"), s(b"1")].into()), 0);
    put(
        0,
        b"set-is",
        Canon::Set([s(b"-5"), s(b"3"), s(b"100000")].into()),
        0,
    );
    put(0, b"set-lp", Canon::Set([s(b"a"), s(b"12")].into()), 0);
    let z = |v: &[(&[u8], f64)]| {
        let mut v: Vec<(Vec<u8>, f64)> = v.iter().map(|(m, s)| (m.to_vec(), *s)).collect();
        v.sort_by(|a, b| a.1.total_cmp(&b.1).then(a.0.cmp(&b.0)));
        Canon::ZSet(v.into_iter().map(|(m, s)| (m, s.to_bits())).collect())
    };
    let inf = f64::INFINITY;
    put(
        0,
        b"zset",
        z(&[(b"a", 1.5), (b"b", inf), (b"c", -inf), (b"d", -1e20)]),
        0,
    );
    put(0, b"zset2", z(&[(b"m", 0.25)]), 0);
    put(
        0,
        b"zset-zl",
        z(&[(b"a", 1.0), (b"b", 2.5), (b"3", inf)]),
        0,
    );
    put(0, b"zset-lp", z(&[(b"a", -inf), (b"42", -7.0)]), 0);
    put(0, b"hash", Canon::Hash([(s(b"f"), s(b"0"))].into()), 0);
    let h = Canon::Hash([(s(b"f1"), s(b"v1")), (s(b"f2"), long.clone())].into());
    put(0, b"hash-zm", h, 0);
    put(
        0,
        b"hash-zl",
        Canon::Hash([(s(b"f"), s(b"1")), (s(b"2"), s(b"v"))].into()),
        0,
    );
    put(
        0,
        b"hash-lp",
        Canon::Hash([(s(b"f"), long.clone())].into()),
        0,
    );
    put(2, b"long-expired", Canon::Str(s(b"v")), 1);
    (bytes, want)
}

#[test]
fn reads_every_encoding_redis_7_loads() {
    let (bytes, want) = every_encoding();
    let loaded = load(&bytes).expect("valid snapshot");
    assert_eq!(loaded.keys, want);
    assert_eq!(loaded.aux[&b"ctime"[..]], b"1700000000");
    assert_eq!(loaded.functions.len(), 1);
    assert_eq!((loaded.idle, loaded.freq), (1, 1));
    assert_eq!(loaded.resize, vec![(0, 20, 2)]);
}

#[test]
fn checksum_is_verified_unless_zero_and_absent_before_version_5() {
    let body = |v: u32| Raw::new(v).key(ty::STRING, b"k").str(b"v");
    assert!(load(&body(10).end(Some(1))).is_ok());
    assert!(
        load(&body(10).end(Some(0))).is_ok(),
        "0 means checksums were disabled"
    );
    assert!(
        load(&body(4).end(None)).is_ok(),
        "no checksum before version 5"
    );
    let mut bad = body(10).end(Some(1));
    let n = bad.len();
    bad[n - 1] ^= 1;
    assert!(matches!(load(&bad), Err(RdbError::BadChecksum { .. })));
    let mut flipped = body(10).end(Some(1));
    flipped[11] = b'K';
    let err = load(&flipped).expect_err("content changed");
    assert!(err.to_string().starts_with("bad checksum"), "{err}");
}

#[test]
fn header_errors_are_named() {
    let err = |b: &[u8]| load(b).expect_err("bad header").to_string();
    assert!(err(b"REDIT0010").contains("not an RDB file"));
    assert!(err(b"REDIS00x0").contains("not an RDB file"));
    assert!(err(b"REDIS0013\xff").contains("unsupported RDB version 13"));
    assert!(err(b"REDIS0000\xff").contains("unsupported RDB version 0"));
    assert_eq!(
        err(b"REDIS00"),
        "truncated RDB at offset 7 while reading the RDB header"
    );
}

#[test]
fn unsupported_and_unknown_types_are_refused_with_their_offset() {
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (
            Raw::new(10).op(op::MODULE_AUX).len(1).end(Some(1)),
            "unsupported module AUX data",
        ),
        (
            Raw::new(10).key(ty::MODULE_2, b"k").end(Some(1)),
            "unsupported module value",
        ),
        (
            Raw::new(10).key(ty::STREAM_LISTPACKS_2, b"k").end(Some(1)),
            "unsupported stream",
        ),
        (
            Raw::new(10).key(24, b"k").end(Some(1)),
            "unsupported hash with field expiry",
        ),
        (
            Raw::new(10).op(op::FUNCTION_PRE_GA).end(Some(1)),
            "unsupported pre-release",
        ),
        (
            Raw::new(10).key(8, b"k").end(Some(1)),
            "unknown value type 8 at offset 9",
        ),
        (
            Raw::new(10).key(200, b"k").end(Some(1)),
            "unknown value type 200 at offset 9",
        ),
        (
            Raw::new(10).op(op::SELECTDB).len(16).end(Some(1)),
            "database 16 is out of range",
        ),
    ];
    for (bytes, want) in cases {
        let err = load(&bytes).expect_err(want).to_string();
        assert!(err.contains(want), "{err:?} should contain {want:?}");
    }
}

#[test]
fn huge_declared_lengths_fail_without_allocating() {
    let huge = 1u64 << 60;
    // Above the limit: refused before reading.
    let bytes = Raw::new(10).key(ty::STRING, b"k").len(huge).end(Some(1));
    let err = load(&bytes).expect_err("too large");
    assert!(
        matches!(err, RdbError::TooLarge { len, .. } if len == huge),
        "{err}"
    );
    // With no limit, the reader runs into the end of the input instead of allocating 2^60 bytes.
    let limits = ReadLimits {
        max_string_len: u64::MAX,
        databases: 16,
    };
    let mut r = RdbReader::with_limits(&bytes[..], limits).expect("header");
    assert!(matches!(r.next_item(), Err(RdbError::Truncated { .. })));
    assert!(matches!(r.next_item(), Err(RdbError::AfterError)));
    // Element counts are not capacities.
    for t in [
        ty::LIST,
        ty::SET,
        ty::ZSET_2,
        ty::HASH,
        ty::LIST_QUICKLIST_2,
    ] {
        let bytes = Raw::new(10).key(t, b"k").len(huge).str(b"x").end(Some(1));
        assert!(load(&bytes).is_err(), "type {t}");
    }
    // An LZF string claiming more than its compressed bytes can produce.
    let bytes = Raw::new(10)
        .key(ty::STRING, b"k")
        .op(0xc3)
        .len(2)
        .len(1000)
        .bytes(&[0, b'a']);
    let err = load(&bytes.end(Some(1)))
        .expect_err("impossible expansion")
        .to_string();
    assert!(
        err.contains("2 LZF bytes cannot expand to 1000 bytes"),
        "{err}"
    );
}

#[test]
fn duplicates_and_nan_scores_are_corrupt() {
    let cases = vec![
        Raw::new(10).key(ty::SET, b"k").len(2).str(b"a").str(b"a"),
        Raw::new(10)
            .key(ty::HASH, b"k")
            .len(2)
            .str(b"a")
            .str(b"1")
            .str(b"a")
            .str(b"2"),
        Raw::new(10)
            .key(ty::ZSET_2, b"k")
            .len(2)
            .str(b"a")
            .bytes(&[0; 8])
            .str(b"a")
            .bytes(&[0; 8]),
        Raw::new(10).key(ty::ZSET, b"k").len(1).str(b"a").op(253),
        Raw::new(10)
            .key(ty::ZSET_2, b"k")
            .len(1)
            .str(b"a")
            .bytes(&f64::NAN.to_le_bytes()),
        Raw::new(10)
            .key(ty::HASH_LISTPACK, b"k")
            .str(&listpack::build(&[Elem::Bytes(b"f")])),
        Raw::new(10)
            .key(ty::LIST_QUICKLIST_2, b"k")
            .len(1)
            .len(3)
            .str(b"x"),
        Raw::new(10).key(ty::STRING, b"k").op(0xc4),
        Raw::new(10).key(ty::STRING, b"k").op(0x82),
    ];
    for (i, raw) in cases.into_iter().enumerate() {
        let err = load(&raw.end(Some(1))).expect_err("corrupt");
        assert!(matches!(err, RdbError::Corrupt { .. }), "case {i}: {err}");
    }
}

#[test]
fn truncation_at_every_offset_is_an_error_naming_the_offset() {
    let (bytes, _) = every_encoding();
    for cut in 0..bytes.len() {
        match load(&bytes[..cut]) {
            Err(RdbError::Truncated { offset, .. }) => assert_eq!(offset, cut as u64),
            other => panic!("cut at {cut}: {other:?}"),
        }
    }
    let small: Vec<(usize, Entry)> = keyspace()
        .into_iter()
        .filter(|(_, e)| e.value.approx_size() < 1000)
        .collect();
    assert!(small.len() > 12);
    let small = write(&small, &info());
    for cut in 0..small.len() {
        assert!(matches!(
            load(&small[..cut]),
            Err(RdbError::Truncated { .. })
        ));
    }
}

#[test]
fn corrupting_any_byte_is_an_error_never_a_panic() {
    let (bytes, _) = every_encoding();
    for i in 0..bytes.len() {
        for flip in [0x01, 0x80, 0xff] {
            let mut bad = bytes.clone();
            bad[i] ^= flip;
            assert!(load(&bad).is_err(), "byte {i} ^ {flip:#x} went unnoticed");
        }
    }
    // With the checksum disabled, structure checks alone must hold: errors or (when the change
    // was to content) a different keyspace, but no panic and no runaway allocation.
    let mut unchecked = bytes.clone();
    let n = unchecked.len();
    unchecked[n - 8..].fill(0);
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    for round in 0..3000 {
        let mut bad = unchecked.clone();
        for _ in 0..1 + round % 4 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let at = (seed % (n as u64 - 8)) as usize;
            bad[at] = (seed >> 32) as u8;
        }
        let _ = load(&bad);
    }
}

#[test]
fn unread_bytes_after_the_snapshot_are_handed_back() {
    let mut bytes = write(&keyspace()[..3], &info());
    bytes.extend_from_slice(b"*1\r\n$4\r\nPING\r\n");
    let mut r = RdbReader::new(&bytes[..]).expect("header");
    while r.next_item().expect("valid").is_some() {}
    let (rest_of_input, buffered) = r.into_parts();
    assert!(rest_of_input.is_empty());
    assert_eq!(buffered, b"*1\r\n$4\r\nPING\r\n");
}
