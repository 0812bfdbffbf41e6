//! RDB interoperability with a real redis-server 7.0.
//!
//! One dataset, written as Redis commands (`dataset`), is the single source of truth: the same
//! commands populate a redis-server and, interpreted here (`model`), give the content a load must
//! produce. The committed fixtures under `tests/fixtures/rdb/` were saved by redis-server 7.0.15
//! from that dataset (`make.sh` regenerates them), with settings chosen so that every encoding
//! Redis 7.0 writes occurs: strings (int, raw, LZF), quicklist with packed, LZF-compressed and
//! plain nodes, listpack/skiplist sorted sets, listpack/hashtable hashes, intset/hashtable sets,
//! expiry times, FREQ or IDLE, a function library, three databases, checksum on and off.
//!
//! The `#[ignore]`d tests need `redis-server` and `redis-cli` on the PATH: one saves a fresh
//! snapshot from the installed server and checks it loads exactly (and, with
//! `VIGIL_WRITE_RDB_FIXTURES=1`, replaces the fixtures); the other makes redis-server load a
//! snapshot our writer produced and checks its content through `redis-cli` and by re-reading the
//! snapshot Redis saves from it.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, UNIX_EPOCH};

use vigil_datanode::engine::{Entry, HashValue, ListValue, SetValue, Value, ZSet};
use vigil_datanode::rdb::{Item, RdbError, RdbReader, RdbWriter, ReplInfo, SnapshotInfo};
use vigil_datanode::sds::Sds;

const FIXTURE_LFU: &str = "redis-7.0.15-lfu.rdb";
const FIXTURE_LRU: &str = "redis-7.0.15-lru-nocompress-nochecksum.rdb";

/// Settings of the fixture with LZF, checksum and LFU counters.
const LFU_ARGS: &[&str] = &[
    "--rdbcompression",
    "yes",
    "--list-compress-depth",
    "1",
    "--list-max-listpack-size",
    "128",
    "--maxmemory-policy",
    "allkeys-lfu",
];

/// Settings of the fixture without compression or checksum, with LRU idle times.
const LRU_ARGS: &[&str] = &[
    "--rdbcompression",
    "no",
    "--rdbchecksum",
    "no",
    "--maxmemory-policy",
    "allkeys-lru",
];

#[test]
fn redis_snapshot_with_lfu_and_compression_loads_exactly() {
    let bytes = fixture(FIXTURE_LFU);
    let loaded = load(&bytes).expect("the fixture loads");
    assert_eq!(loaded.keys, model(&dataset()));
    assert_eq!(loaded.aux_str("redis-ver"), "7.0.15");
    assert_eq!(loaded.aux_str("redis-bits"), "64");
    assert_eq!(loaded.functions, 1);
    assert_eq!(
        loaded.freq,
        loaded.keys.len(),
        "LFU policy saves a counter per key"
    );
    assert_eq!(loaded.idle, 0);
}

#[test]
fn redis_snapshot_without_checksum_with_lru_loads_exactly() {
    let bytes = fixture(FIXTURE_LRU);
    assert_eq!(
        bytes[bytes.len() - 8..],
        [0; 8],
        "saved with rdbchecksum no"
    );
    let loaded = load(&bytes).expect("the fixture loads");
    assert_eq!(loaded.keys, model(&dataset()));
    assert_eq!(
        loaded.idle,
        loaded.keys.len(),
        "LRU policy saves an idle time per key"
    );
}

#[test]
fn damaged_redis_snapshots_fail_cleanly() {
    for name in [FIXTURE_LFU, FIXTURE_LRU] {
        let bytes = fixture(name);
        // Truncation anywhere is reported as such, at the cut (a sample of offsets keeps this fast;
        // the unit tests cut at every offset).
        for cut in (0..bytes.len())
            .step_by(61)
            .chain(bytes.len() - 20..bytes.len())
        {
            match load(&bytes[..cut]) {
                Err(RdbError::Truncated { offset, .. }) => assert_eq!(offset, cut as u64),
                other => panic!("{name} cut at {cut}: {other:?}"),
            }
        }
        // Random damage with the checksum disabled exercises every structural check (listpack,
        // quicklist, LZF, lengths) on real data: errors are fine, panics are not.
        let mut unchecked = bytes.clone();
        let n = unchecked.len();
        unchecked[n - 8..].fill(0);
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        for _ in 0..200 {
            let mut bad = unchecked.clone();
            for _ in 0..3 {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                let at = 9 + (seed % (n as u64 - 17)) as usize;
                bad[at] = (seed >> 40) as u8;
            }
            let _ = load(&bad);
        }
    }
    // With the checksum on, any single flipped byte is caught.
    let bytes = fixture(FIXTURE_LFU);
    for at in (0..bytes.len()).step_by(97) {
        let mut bad = bytes.clone();
        bad[at] ^= 0x20;
        assert!(load(&bad).is_err(), "flip at {at} went unnoticed");
    }
}

#[test]
#[ignore = "needs redis-server (apt-get install redis-server); run by .ci/run with --ignored"]
fn fresh_redis_snapshot_uses_every_encoding_and_loads_exactly() {
    let write_fixtures = std::env::var_os("VIGIL_WRITE_RDB_FIXTURES").is_some();
    for (name, args) in [(FIXTURE_LFU, LFU_ARGS), (FIXTURE_LRU, LRU_ARGS)] {
        let redis = Redis::start(name, args, None);
        // Elements of 256 bytes or more get a quicklist node of their own (a plain node).
        assert_eq!(
            redis.cli(&["DEBUG", "QUICKLIST-PACKED-THRESHOLD", "256"]),
            "OK"
        );
        redis.pipe(&dataset());
        let encodings = [
            ("list:small", "quicklist|listpack"),
            ("list:big", "quicklist"),
            ("list:plain", "quicklist"),
            ("set:intset", "intset"),
            ("set:intset64", "intset"),
            ("set:hashtable", "hashtable"),
            ("set:bigints", "hashtable"),
            ("zset:small", "listpack"),
            ("zset:big", "skiplist"),
            ("zset:longmember", "skiplist"),
            ("hash:small", "listpack"),
            ("hash:big", "hashtable"),
            ("hash:longval", "hashtable"),
            ("str:int", "int"),
            ("str:short", "embstr"),
            ("str:compressible", "raw"),
        ];
        for (key, want) in encodings {
            let got = redis.cli(&["OBJECT", "ENCODING", key]);
            assert!(
                want.split('|').any(|w| w == got),
                "{key}: {got}, expected {want}"
            );
        }
        assert_eq!(redis.cli(&["SAVE"]), "OK");
        let bytes = std::fs::read(redis.dir.join("dump.rdb")).expect("redis saved dump.rdb");
        let loaded = load(&bytes).expect("a fresh redis snapshot loads");
        assert_eq!(loaded.keys, model(&dataset()), "{name}");
        assert_eq!(loaded.functions, 1);
        if write_fixtures {
            std::fs::write(Path::new(FIXTURES).join(name), &bytes).expect("write fixture");
        }
    }
}

#[test]
#[ignore = "needs redis-server (apt-get install redis-server); run by .ci/run with --ignored"]
fn redis_loads_a_vigil_snapshot_with_the_same_content() {
    let want = model(&dataset());
    let dir = scratch_dir("vigil-writer");
    let info = SnapshotInfo {
        ctime: UNIX_EPOCH + Duration::from_secs(1_700_000_000),
        used_mem: 1 << 20,
        repl: Some(ReplInfo {
            stream_db: 0,
            replid: "8f2c3b1e4d5a69788796a5b4c3d2e1f001234567".into(),
            offset: 12345,
        }),
        aof_base: false,
        compress: true,
    };
    let file = std::fs::File::create(dir.join("vigil.rdb")).expect("create vigil.rdb");
    let mut w = RdbWriter::new(std::io::BufWriter::new(file), &info).expect("header");
    let mut dbs: BTreeMap<usize, Vec<Entry>> = BTreeMap::new();
    for ((db, key), (canon, expire_at)) in &want {
        dbs.entry(*db).or_default().push(Entry {
            key: Sds::new(key),
            value: value(canon),
            expire_at: *expire_at,
            lru: 0,
        });
    }
    for (db, entries) in &dbs {
        let expires = entries.iter().filter(|e| e.expire_at != 0).count() as u64;
        w.select_db(*db, entries.len() as u64, expires)
            .expect("write");
        for e in entries {
            w.entry(e).expect("write");
        }
    }
    w.finish().expect("finish").flush().expect("flush");

    let check = Command::new("redis-check-rdb")
        .arg(dir.join("vigil.rdb"))
        .output()
        .expect("run redis-check-rdb");
    let report = String::from_utf8_lossy(&check.stdout);
    assert!(
        check.status.success() && report.contains("RDB looks OK"),
        "{report}"
    );

    let redis = Redis::start("vigil-writer", &[], Some(dir));
    let keys_in = |db: usize| want.keys().filter(|(d, _)| *d == db).count().to_string();
    assert_eq!(redis.cli(&["DBSIZE"]), keys_in(0));
    assert_eq!(redis.cli(&["-n", "1", "DBSIZE"]), keys_in(1));
    assert_eq!(redis.cli(&["-n", "5", "DBSIZE"]), keys_in(5));
    assert_eq!(redis.cli(&["GET", "str:short"]), "hello");
    assert_eq!(redis.cli(&["GET", "str:i64"]), "9999999999");
    assert_eq!(redis.cli(&["STRLEN", "str:compressible"]), "1200");
    assert_eq!(
        redis.cli(&["LRANGE", "list:small", "0", "-1"]),
        "a\nb\n1\n-2\n300000\n"
    );
    assert_eq!(redis.cli(&["LINDEX", "list:big", "1999"]), "item-1999");
    assert_eq!(
        redis.cli(&["SISMEMBER", "set:intset64", "-5000000000"]),
        "1"
    );
    assert_eq!(redis.cli(&["ZSCORE", "zset:small", "d"]), "inf");
    assert_eq!(redis.cli(&["ZRANGE", "zset:small", "0", "0"]), "e");
    assert_eq!(redis.cli(&["HGET", "hash:small", "f2"]), "123");
    assert_eq!(redis.cli(&["PEXPIRETIME", "str:short"]), "4102444800000");
    assert_eq!(redis.cli(&["-n", "1", "PEXPIRETIME", "s"]), "4102444800999");
    assert_eq!(redis.cli(&["TTL", "list:small"]), "-1");
    // Redis re-encodes plain values by its own size rules.
    for (key, enc) in [
        ("list:small", "quicklist|listpack"),
        ("list:big", "quicklist"),
        ("set:intset", "intset"),
        ("set:hashtable", "hashtable"),
        ("zset:small", "listpack"),
        ("zset:big", "skiplist"),
        ("hash:small", "listpack"),
        ("hash:big", "hashtable"),
    ] {
        let got = redis.cli(&["OBJECT", "ENCODING", key]);
        assert!(
            enc.split('|').any(|e| e == got),
            "{key}: {got}, expected {enc}"
        );
    }
    // Everything, binary keys and exact scores included: what Redis saves back is what we wrote.
    assert_eq!(redis.cli(&["SAVE"]), "OK");
    let bytes = std::fs::read(redis.dir.join("vigil.rdb")).expect("redis saved vigil.rdb");
    assert_eq!(load(&bytes).expect("redis' snapshot loads").keys, want);
}

/// The dataset, as Redis commands.
fn dataset() -> Vec<Vec<Vec<u8>>> {
    let mut out: Vec<Vec<Vec<u8>>> = Vec::new();
    let mut cmd = |parts: &[&[u8]]| out.push(parts.iter().map(|p| p.to_vec()).collect());
    let many = |prefix: &str, n: usize| -> Vec<Vec<u8>> {
        (0..n)
            .map(|i| format!("{prefix}{i}").into_bytes())
            .collect()
    };

    cmd(&[b"SELECT", b"0"]);
    cmd(&[b"SET", b"str:int", b"12345"]);
    cmd(&[b"SET", b"str:neg", b"-7"]);
    cmd(&[b"SET", b"str:i16", b"-30000"]);
    cmd(&[b"SET", b"str:i32", b"2000000000"]);
    cmd(&[b"SET", b"str:i64", b"9999999999"]);
    cmd(&[b"SET", b"str:lead0", b"007"]);
    cmd(&[b"SET", b"str:empty", b""]);
    cmd(&[b"SET", b"str:short", b"hello"]);
    cmd(&[b"SET", b"str:compressible", &b"vigil-".repeat(200)]);
    cmd(&[b"SET", b"str:random", &noise(300, 42)]);
    cmd(&[b"SET", b"bin\x00\xff\r\nkey", b"\x00\x01\x02\xff"]);
    cmd(&[b"SET", b"42", b"int key"]);
    cmd(&[b"RPUSH", b"list:small", b"a", b"b", b"1", b"-2", b"300000"]);
    for chunk in many("item-", 2000).chunks(100) {
        let mut c: Vec<&[u8]> = vec![b"RPUSH", b"list:big"];
        c.extend(refs(chunk));
        cmd(&c);
    }
    let big_a = b"P".repeat(300);
    let big_b = [b"Q".repeat(1000), noise(500, 7)].concat();
    cmd(&[
        b"RPUSH",
        b"list:plain",
        b"head",
        &big_a,
        b"mid",
        &big_b,
        b"tail",
    ]);
    cmd(&[b"SADD", b"set:intset", b"1", b"2", b"3", b"-100", b"70000"]);
    cmd(&[
        b"SADD",
        b"set:intset64",
        b"5000000000",
        b"-5000000000",
        b"7",
    ]);
    let members = many("m-", 200);
    let mut c: Vec<&[u8]> = vec![b"SADD", b"set:hashtable"];
    c.extend(refs(&members));
    cmd(&c);
    let ints = many("", 600);
    let mut c: Vec<&[u8]> = vec![b"SADD", b"set:bigints"];
    c.extend(refs(&ints));
    cmd(&c);
    cmd(&[
        b"ZADD",
        b"zset:small",
        b"1",
        b"a",
        b"2.5",
        b"b",
        b"-3",
        b"c",
        b"inf",
        b"d",
        b"-inf",
        b"e",
        b"0",
        b"42",
        b"1e100",
        b"f",
        b"0.1",
        b"g",
    ]);
    let scored: Vec<(Vec<u8>, Vec<u8>)> = (0..300)
        .map(|i| {
            let score = format!("{}", f64::from(i) * 1.5 - 100.0 + 1.0 / 3.0);
            (score.into_bytes(), format!("member-{i}").into_bytes())
        })
        .collect();
    let mut c: Vec<&[u8]> = vec![b"ZADD", b"zset:big"];
    for (s, m) in &scored {
        c.push(s);
        c.push(m);
    }
    cmd(&c);
    cmd(&[b"ZADD", b"zset:longmember", b"1", &b"m".repeat(100)]);
    cmd(&[
        b"HSET",
        b"hash:small",
        b"f1",
        b"v1",
        b"f2",
        b"123",
        b"f3",
        b"-4",
    ]);
    let fields = many("field-", 600);
    let values = many("value-", 600);
    let mut c: Vec<&[u8]> = vec![b"HSET", b"hash:big"];
    for (f, v) in fields.iter().zip(&values) {
        c.push(f);
        c.push(v);
    }
    cmd(&c);
    cmd(&[b"HSET", b"hash:longval", b"f", &b"v".repeat(100)]);
    cmd(&[b"PEXPIREAT", b"str:short", b"4102444800000"]);
    cmd(&[b"PEXPIREAT", b"list:big", b"4102444800123"]);
    cmd(&[b"PEXPIREAT", b"hash:big", b"4102444800456"]);
    cmd(&[b"PEXPIREAT", b"zset:small", b"4102444800789"]);
    cmd(&[b"SELECT", b"1"]);
    cmd(&[b"SET", b"str:int", b"db1"]);
    cmd(&[b"RPUSH", b"list:small", b"x"]);
    cmd(&[b"SADD", b"s", b"1"]);
    cmd(&[b"PEXPIREAT", b"s", b"4102444800999"]);
    cmd(&[b"SELECT", b"5"]);
    cmd(&[b"HSET", b"h", b"a", b"b"]);
    cmd(&[
        b"FUNCTION",
        b"LOAD",
        b"#!lua name=vigiltest\nredis.register_function('noop', function() return 1 end)",
    ]);
    out
}

fn refs(v: &[Vec<u8>]) -> Vec<&[u8]> {
    v.iter().map(Vec::as_slice).collect()
}

/// A value in a form that compares by content (sets and hashes unordered, scores by bits).
#[derive(Clone, Debug, Eq, PartialEq)]
enum Canon {
    Str(Vec<u8>),
    List(Vec<Vec<u8>>),
    Set(BTreeSet<Vec<u8>>),
    Hash(BTreeMap<Vec<u8>, Vec<u8>>),
    ZSet(BTreeMap<Vec<u8>, u64>),
}

type Keyspace = BTreeMap<(usize, Vec<u8>), (Canon, u64)>;

/// The content `cmds` produce, for the commands `dataset` uses.
fn model(cmds: &[Vec<Vec<u8>>]) -> Keyspace {
    let mut ks = Keyspace::new();
    let mut db = 0;
    for c in cmds {
        let name = String::from_utf8_lossy(&c[0]).to_ascii_uppercase();
        let text = |b: &[u8]| String::from_utf8(b.to_vec()).expect("ascii argument");
        if name == "SELECT" {
            db = text(&c[1]).parse().expect("db number");
            continue;
        }
        if matches!(name.as_str(), "FUNCTION" | "DEBUG") {
            continue;
        }
        let key = (db, c[1].clone());
        if name == "PEXPIREAT" {
            ks.get_mut(&key).expect("key exists").1 = text(&c[2]).parse().expect("ms");
            continue;
        }
        let empty = match name.as_str() {
            "SET" => Canon::Str(Vec::new()),
            "RPUSH" => Canon::List(Vec::new()),
            "SADD" => Canon::Set(BTreeSet::new()),
            "HSET" => Canon::Hash(BTreeMap::new()),
            "ZADD" => Canon::ZSet(BTreeMap::new()),
            other => panic!("model does not know {other}"),
        };
        let (value, _) = ks.entry(key).or_insert((empty, 0));
        let args = &c[2..];
        match value {
            Canon::Str(s) => *s = args[0].clone(),
            Canon::List(l) => l.extend(args.iter().cloned()),
            Canon::Set(s) => s.extend(args.iter().cloned()),
            Canon::Hash(h) => h.extend(args.chunks(2).map(|p| (p[0].clone(), p[1].clone()))),
            Canon::ZSet(z) => {
                for p in args.chunks(2) {
                    let score: f64 = text(&p[0]).parse().expect("score");
                    z.insert(p[1].clone(), score.to_bits());
                }
            }
        }
    }
    ks
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

fn value(c: &Canon) -> Value {
    match c {
        Canon::Str(s) => Value::Str(Sds::new(s)),
        Canon::List(l) => Value::List(Box::new(
            l.iter().map(|e| Sds::new(e)).collect::<ListValue>(),
        )),
        Canon::Set(s) => Value::Set(Box::new(
            s.iter().map(|e| Sds::new(e)).collect::<SetValue>(),
        )),
        Canon::Hash(h) => Value::Hash(Box::new(
            h.iter()
                .map(|(k, v)| (Sds::new(k), Sds::new(v)))
                .collect::<HashValue>(),
        )),
        Canon::ZSet(z) => {
            let mut out = ZSet::new();
            for (m, bits) in z {
                out.insert(m, f64::from_bits(*bits));
            }
            Value::ZSet(Box::new(out))
        }
    }
}

#[derive(Debug, Default)]
struct Loaded {
    aux: BTreeMap<Vec<u8>, Vec<u8>>,
    keys: Keyspace,
    functions: usize,
    freq: usize,
    idle: usize,
}

impl Loaded {
    fn aux_str(&self, key: &str) -> String {
        String::from_utf8_lossy(&self.aux[key.as_bytes()]).into_owned()
    }
}

/// Reads a whole snapshot the way a loader would: duplicate keys are corruption.
fn load(bytes: &[u8]) -> Result<Loaded, RdbError> {
    let mut r = RdbReader::new(bytes)?;
    let mut out = Loaded::default();
    while let Some(item) = r.next_item()? {
        match item {
            Item::Aux { key, value } => {
                out.aux.insert(key.to_vec(), value.to_vec());
            }
            Item::Function { .. } => out.functions += 1,
            Item::ResizeDb { .. } => {}
            Item::Entry {
                db,
                entry,
                idle_secs,
                freq,
            } => {
                out.idle += usize::from(idle_secs.is_some());
                out.freq += usize::from(freq.is_some());
                let key = (db, entry.key.to_vec());
                if out
                    .keys
                    .insert(key, (canon(&entry.value), entry.expire_at))
                    .is_some()
                {
                    return Err(RdbError::Corrupt {
                        offset: r.offset(),
                        what: "duplicate key".into(),
                    });
                }
            }
        }
    }
    Ok(out)
}

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/rdb");

fn fixture(name: &str) -> Vec<u8> {
    let path = Path::new(FIXTURES).join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
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

fn scratch_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("vigil-rdb-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create scratch dir");
    dir
}

/// A redis-server on a Unix socket in its own directory; killed and cleaned up on drop.
struct Redis {
    child: Child,
    dir: PathBuf,
    sock: PathBuf,
}

impl Redis {
    /// Starts redis-server in `dir` (a fresh scratch dir when `None`), loading `vigil.rdb` if
    /// there is one, and waits until it answers PING.
    fn start(name: &str, args: &[&str], dir: Option<PathBuf>) -> Redis {
        let dir = dir.unwrap_or_else(|| scratch_dir(name));
        let sock = dir.join("redis.sock");
        let dbfilename = if dir.join("vigil.rdb").exists() {
            "vigil.rdb"
        } else {
            "dump.rdb"
        };
        let child = Command::new("redis-server")
            .args(["--port", "0", "--save", "", "--appendonly", "no"])
            .args(["--enable-debug-command", "yes", "--dbfilename", dbfilename])
            .arg("--dir")
            .arg(&dir)
            .arg("--unixsocket")
            .arg(&sock)
            .arg("--logfile")
            .arg(dir.join("redis.log"))
            .args(args)
            .stdout(Stdio::null())
            .spawn()
            .expect("start redis-server (is it installed?)");
        let mut redis = Redis { child, dir, sock };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if redis.sock.exists() && redis.cli(&["PING"]) == "PONG" {
                return redis;
            }
            let exited = redis.child.try_wait().ok().flatten();
            if exited.is_some() || Instant::now() > deadline {
                let log = std::fs::read_to_string(redis.dir.join("redis.log")).unwrap_or_default();
                panic!("redis-server did not come up ({exited:?}):\n{log}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Runs one redis-cli command; its raw output, trimmed of the final newline.
    fn cli(&self, args: &[&str]) -> String {
        let out = Command::new("redis-cli")
            .arg("-s")
            .arg(&self.sock)
            .args(args)
            .output()
            .expect("run redis-cli");
        let s = String::from_utf8_lossy(&out.stdout).into_owned();
        // Single replies lose their newline; multi-line replies keep one per element.
        if s.matches('\n').count() > 1 {
            s
        } else {
            s.trim_end().to_owned()
        }
    }

    /// Sends `cmds` through `redis-cli --pipe` (binary-safe RESP) and checks none failed.
    fn pipe(&self, cmds: &[Vec<Vec<u8>>]) {
        let mut resp = Vec::new();
        for c in cmds {
            resp.extend_from_slice(format!("*{}\r\n", c.len()).as_bytes());
            for a in c {
                resp.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
                resp.extend_from_slice(a);
                resp.extend_from_slice(b"\r\n");
            }
        }
        let mut child = Command::new("redis-cli")
            .arg("-s")
            .arg(&self.sock)
            .arg("--pipe")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("run redis-cli --pipe");
        child
            .stdin
            .take()
            .expect("piped stdin")
            .write_all(&resp)
            .expect("feed redis-cli");
        let out = child.wait_with_output().expect("redis-cli --pipe");
        let report = String::from_utf8_lossy(&out.stdout);
        assert!(report.contains("errors: 0"), "{report}");
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
