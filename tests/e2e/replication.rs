//! Replication end to end: real `vigil datanode` processes (and real `redis-server` 7 where
//! interoperability is claimed) replicating over loopback with Redis' protocol.
//!
//! Replicas are compared with their master key by key: type, value and absolute expiry time
//! (`PEXPIRETIME`), which the stream carries exactly. Every wait has a deadline; processes that a
//! test stops with SIGSTOP are killed by their guards.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use vigil_proto::resp::Frame;

use crate::harness::{Conn, Proc, datanode, redis_server, wait_until};

/// How long a test waits for replication to converge.
const DEADLINE: Duration = Duration::from_secs(20);

/// The text of a bulk, simple or verbatim reply.
fn text(f: &Frame) -> String {
    match f {
        Frame::Simple(b) | Frame::Error(b) => String::from_utf8_lossy(b).into_owned(),
        other => String::from_utf8_lossy(other.as_bytes().unwrap_or_default()).into_owned(),
    }
}

/// One field of `INFO <section>`.
fn info(c: &mut Conn, section: &str, field: &str) -> String {
    let all = text(&c.cmd(&["INFO", section]));
    all.lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .map(|v| v.trim().to_string())
        .unwrap_or_else(|| panic!("no {field} in INFO {section}:\n{all}"))
}

fn info_u64(c: &mut Conn, section: &str, field: &str) -> u64 {
    info(c, section, field).parse().expect("numeric INFO field")
}

fn port(addr: SocketAddr) -> String {
    addr.port().to_string()
}

fn replicate(replica: &mut Conn, master: SocketAddr) {
    assert_eq!(
        replica.cmd(&["REPLICAOF", "127.0.0.1", &port(master)]),
        Frame::ok()
    );
}

/// Waits until `replica` has a live link and applied everything `master` produced.
fn wait_synced(master: &mut Conn, replica: &mut Conn) {
    wait_until(DEADLINE, || {
        info(replica, "replication", "master_link_status") == "up"
            && info_u64(replica, "replication", "master_repl_offset")
                == info_u64(master, "replication", "master_repl_offset")
    });
}

/// True when the server knows `cmd` (the hash, set and sorted-set families may be missing).
fn knows(c: &mut Conn, cmd: &str) -> bool {
    matches!(c.cmd(&["COMMAND", "INFO", cmd]), Frame::Array(v) if v.first().is_some_and(|f| *f != Frame::Null))
}

/// Every key of every database with its type, value and absolute expiry.
fn dump(c: &mut Conn) -> Dump {
    let mut out = BTreeMap::new();
    for db in 0..4 {
        assert_eq!(c.cmd(&["SELECT", &db.to_string()]), Frame::ok());
        let Frame::Array(keys) = c.cmd(&["KEYS", "*"]) else {
            panic!("KEYS")
        };
        for k in keys {
            let k = text(&k);
            let ty = text(&c.cmd(&["TYPE", &k]));
            let value = match ty.as_str() {
                "string" => format!("{:?}", c.cmd(&["GET", &k])),
                "list" => format!("{:?}", c.cmd(&["LRANGE", &k, "0", "-1"])),
                "hash" => sorted(c.cmd(&["HGETALL", &k]), 2),
                "set" => sorted(c.cmd(&["SMEMBERS", &k]), 1),
                "zset" => format!("{:?}", c.cmd(&["ZRANGE", &k, "0", "-1", "WITHSCORES"])),
                "none" => continue,
                other => panic!("unexpected type {other}"),
            };
            let exp = format!("{:?}", c.cmd(&["PEXPIRETIME", &k]));
            out.insert((db, k), (ty, value, exp));
        }
    }
    assert_eq!(c.cmd(&["SELECT", "0"]), Frame::ok());
    out
}

/// An unordered reply (HGETALL, SMEMBERS) in a canonical order, `chunk` items per element.
fn sorted(f: Frame, chunk: usize) -> String {
    let items = match f {
        Frame::Array(v) | Frame::Set(v) => v,
        other => return format!("{other:?}"),
    };
    let mut parts: Vec<String> = items.chunks(chunk).map(|c| format!("{c:?}")).collect();
    parts.sort();
    parts.join(",")
}

type Dump = BTreeMap<(usize, String), (String, String, String)>;

/// Asserts two dumps are equal, naming at most ten differing keys rather than printing both.
fn assert_same(got: &Dump, want: &Dump, what: &str) {
    let mut diffs = Vec::new();
    for k in got.keys().chain(want.keys()) {
        if got.get(k) != want.get(k) && diffs.len() < 10 && !diffs.iter().any(|(d, _, _)| d == k) {
            diffs.push((k.clone(), got.get(k).cloned(), want.get(k).cloned()));
        }
    }
    assert!(
        diffs.is_empty(),
        "{what}: {} vs {} keys; first differences: {diffs:#?}",
        got.len(),
        want.len()
    );
}

/// Waits until the short-lived keys (TTL of a few ms) are gone on `m`, so that no key expires
/// between two dumps being compared.
fn settle(m: &mut Conn) {
    wait_until(DEADLINE, || {
        (0..3).all(|db| {
            m.cmd(&["SELECT", &db.to_string()]);
            let brief = m.cmd(&["KEYS", "brief:*"]);
            let short = m.cmd(&["KEYS", "*:short:*"]);
            brief == Frame::Array(vec![]) && short == Frame::Array(vec![])
        })
    });
    m.cmd(&["SELECT", "0"]);
}

/// A dataset of every type the node supports, with and without TTLs, over several databases.
fn load_dataset(c: &mut Conn, prefix: &str) {
    let full = [("hset", "hash"), ("sadd", "set"), ("zadd", "zset")].map(|(cmd, _)| knows(c, cmd));
    for db in 0..3 {
        assert_eq!(c.cmd(&["SELECT", &db.to_string()]), Frame::ok());
        for i in 0..50 {
            let k = |t: &str| format!("{prefix}{t}:{i}");
            c.cmd(&["SET", &k("s"), &format!("value-{i}")]);
            c.cmd(&["SET", &k("n"), &i.to_string(), "EX", "1000"]);
            c.cmd(&["RPUSH", &k("l"), "a", "b", &i.to_string()]);
            c.cmd(&["SETEX", &k("e"), "500", "x"]);
            c.cmd(&["SET", &k("short"), "gone soon", "PX", "30"]);
            if full[0] {
                c.cmd(&["HSET", &k("h"), "f1", "v1", "f2", &i.to_string()]);
                c.cmd(&["PEXPIRE", &k("h"), "900000"]);
            }
            if full[1] {
                c.cmd(&["SADD", &k("set"), "1", "2", &format!("m{i}")]);
            }
            if full[2] {
                c.cmd(&["ZADD", &k("z"), "1.5", "a", &i.to_string(), "b"]);
            }
        }
    }
    assert_eq!(c.cmd(&["SELECT", "0"]), Frame::ok());
}

/// Writes of many kinds from a thread until `stop`, as a concurrent client load.
fn writer(addr: SocketAddr, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<u64> {
    std::thread::spawn(move || {
        let mut c = Conn::new(addr);
        let mut n = 0u64;
        while !stop.load(Ordering::Relaxed) && n < 100_000 {
            let i = (n % 97).to_string();
            let db = (n % 3).to_string();
            c.cmd(&["SELECT", &db]);
            c.cmd(&["INCR", &format!("ctr:{i}")]);
            c.cmd(&["INCRBYFLOAT", &format!("flt:{i}"), "0.25"]);
            c.cmd(&["RPUSH", &format!("q:{i}"), &n.to_string()]);
            if n % 3 == 0 {
                c.cmd(&["LPOP", &format!("q:{i}")]);
            }
            c.cmd(&["SET", &format!("ttl:{i}"), &n.to_string(), "PX", "200000"]);
            c.cmd(&["EXPIRE", &format!("ctr:{i}"), "300"]);
            c.cmd(&["SET", &format!("brief:{n}"), "x", "PX", "20"]);
            c.cmd(&["MULTI"]);
            c.cmd(&["INCRBY", &format!("tx:{i}"), "2"]);
            c.cmd(&["DEL", &format!("s:{i}")]);
            c.cmd(&["EXEC"]);
            n += 1;
        }
        n
    })
}

#[test]
fn replicas_end_identical_to_their_master_and_resume_with_continue() {
    let master = datanode(&[]);
    let r1 = datanode(&[]);
    let r2 = datanode(&[]);
    let mut m = Conn::new(master.addr);
    load_dataset(&mut m, "pre:");
    let mut c1 = Conn::new(r1.addr);
    replicate(&mut c1, master.addr);
    wait_synced(&mut m, &mut c1);
    // The second replica does its full sync under a concurrent write load.
    let stop = Arc::new(AtomicBool::new(false));
    let w = writer(master.addr, stop.clone());
    let mut c2 = Conn::new(r2.addr);
    replicate(&mut c2, master.addr);
    wait_until(DEADLINE, || {
        info(&mut c2, "replication", "master_link_status") == "up"
    });
    load_dataset(&mut m, "during:");
    stop.store(true, Ordering::Relaxed);
    assert!(w.join().expect("writer") > 0);
    settle(&mut m);
    wait_synced(&mut m, &mut c1);
    wait_synced(&mut m, &mut c2);
    let want = dump(&mut m);
    assert!(want.len() > 300, "dataset too small: {}", want.len());
    assert_same(&dump(&mut c1), &want, "replica 1");
    assert_same(&dump(&mut c2), &want, "replica 2");
    assert_eq!(
        c1.cmd(&["SET", "x", "1"]),
        Frame::Error("READONLY You can't write against a read only replica.".into())
    );

    // Cutting the link resumes it with +CONTINUE, not a second full sync.
    let full = info_u64(&mut m, "stats", "sync_full");
    let partial = info_u64(&mut m, "stats", "sync_partial_ok");
    assert_eq!(full, 2);
    assert_eq!(
        c1.cmd(&["CLIENT", "KILL", "TYPE", "master"]),
        Frame::Integer(1)
    );
    m.cmd(&["SET", "after-cut", "yes"]);
    wait_synced(&mut m, &mut c1);
    assert_eq!(c1.cmd(&["GET", "after-cut"]), Frame::Bulk("yes".into()));
    assert_eq!(info_u64(&mut m, "stats", "sync_partial_ok"), partial + 1);
    assert_eq!(
        info_u64(&mut m, "stats", "sync_full"),
        full,
        "no new full sync"
    );
    assert_same(&dump(&mut c1), &dump(&mut m), "c1 vs m");

    // ROLE in Redis' shapes.
    let Frame::Array(role) = m.cmd(&["ROLE"]) else {
        panic!("ROLE")
    };
    assert_eq!(role[0], Frame::Bulk("master".into()));
    assert!(matches!(&role[2], Frame::Array(r) if r.len() == 2));
    let Frame::Array(role) = c2.cmd(&["ROLE"]) else {
        panic!("ROLE")
    };
    assert_eq!(role[0], Frame::Bulk("slave".into()));
    assert_eq!(role[2], Frame::Integer(i64::from(master.addr.port())));
    assert_eq!(role[3], Frame::Bulk("connected".into()));
}

#[test]
fn a_promoted_replica_resyncs_its_sibling_partially() {
    let master = datanode(&[]);
    let r1 = datanode(&[]);
    let r2 = datanode(&[]);
    let mut m = Conn::new(master.addr);
    let (mut c1, mut c2) = (Conn::new(r1.addr), Conn::new(r2.addr));
    replicate(&mut c1, master.addr);
    replicate(&mut c2, master.addr);
    load_dataset(&mut m, "k:");
    settle(&mut m);
    wait_synced(&mut m, &mut c1);
    wait_synced(&mut m, &mut c2);
    let old_id = info(&mut m, "replication", "master_replid");
    drop(master);

    assert_eq!(c1.cmd(&["REPLICAOF", "NO", "ONE"]), Frame::ok());
    assert_eq!(info(&mut c1, "replication", "role"), "master");
    assert_eq!(info(&mut c1, "replication", "master_replid2"), old_id);
    assert_ne!(info(&mut c1, "replication", "master_replid"), old_id);
    replicate(&mut c2, r1.addr);
    assert_eq!(c1.cmd(&["SET", "new-master", "r1"]), Frame::ok());
    wait_synced(&mut c1, &mut c2);
    assert_eq!(c2.cmd(&["GET", "new-master"]), Frame::Bulk("r1".into()));
    assert_eq!(
        info_u64(&mut c1, "stats", "sync_partial_ok"),
        1,
        "psync2 partial resync"
    );
    assert_eq!(info_u64(&mut c1, "stats", "sync_full"), 0);
    assert_same(&dump(&mut c2), &dump(&mut c1), "c2 vs c1");
}

fn signal(p: &Proc, sig: &str) {
    let ok = Command::new("kill")
        .args([sig, &p.pid().to_string()])
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "kill {sig}");
    if sig == "-STOP" {
        crate::harness::wait_stopped(p.pid());
    }
}

#[test]
fn wait_counts_replicas_that_acknowledged_and_min_replicas_refuses_writes_when_they_lag() {
    let master = datanode(&[]);
    let r1 = datanode(&[]);
    let r2 = datanode(&[]);
    let mut m = Conn::new(master.addr);
    let (mut c1, mut c2) = (Conn::new(r1.addr), Conn::new(r2.addr));
    replicate(&mut c1, master.addr);
    replicate(&mut c2, master.addr);
    wait_synced(&mut m, &mut c1);
    wait_synced(&mut m, &mut c2);
    assert_eq!(m.cmd(&["SET", "k", "v"]), Frame::ok());
    assert_eq!(m.cmd(&["WAIT", "2", "5000"]), Frame::Integer(2));
    assert_eq!(
        m.cmd(&["WAIT", "3", "100"]),
        Frame::Integer(2),
        "times out with the count"
    );
    assert_eq!(
        c1.cmd(&["WAIT", "1", "0"]),
        Frame::Error("ERR WAIT cannot be used with replica instances. Please also note that since Redis 4.0 if a replica is configured to be writable (which is not the default) writes to replicas are just local and are not propagated.".into())
    );

    assert_eq!(
        m.cmd(&[
            "CONFIG",
            "SET",
            "min-replicas-to-write",
            "2",
            "min-replicas-max-lag",
            "1"
        ]),
        Frame::ok()
    );
    assert_eq!(m.cmd(&["SET", "k", "w"]), Frame::ok());
    signal(&r2, "-STOP");
    assert_eq!(m.cmd(&["SET", "k", "x"]), Frame::ok());
    assert_eq!(
        m.cmd(&["WAIT", "2", "300"]),
        Frame::Integer(1),
        "the stopped replica does not ack"
    );
    let refused = Frame::Error("NOREPLICAS Not enough good replicas to write.".into());
    wait_until(DEADLINE, || m.cmd(&["SET", "k", "y"]) == refused);
    assert_eq!(info_u64(&mut m, "replication", "min_slaves_good_slaves"), 1);
    assert!(
        matches!(m.cmd(&["GET", "k"]), Frame::Bulk(_)),
        "reads still served"
    );
    signal(&r2, "-CONT");
    wait_until(DEADLINE, || m.cmd(&["SET", "k", "z"]) == Frame::ok());
    wait_synced(&mut m, &mut c2);
    assert_eq!(c2.cmd(&["GET", "k"]), Frame::Bulk("z".into()));
}

#[test]
fn replicaof_bad_targets_get_a_clear_error_or_a_logged_retry() {
    let node = datanode(&[]);
    let mut c = Conn::new(node.addr);
    let e = |s: &str| Frame::Error(s.to_string().into());
    assert_eq!(
        c.cmd(&["REPLICAOF", "127.0.0.1", "70000"]),
        e("ERR Invalid master port")
    );
    assert_eq!(
        c.cmd(&["REPLICAOF", "127.0.0.1", "x"]),
        e("ERR Invalid master port")
    );
    assert_eq!(
        c.cmd(&["REPLICAOF", "127.0.0.1", &port(node.addr)]),
        e("ERR Can't replicate from myself")
    );
    assert_eq!(info(&mut c, "replication", "role"), "master");
    // Nobody listens there: the node keeps serving and retries.
    let dead = crate::harness::free_port().to_string();
    assert_eq!(c.cmd(&["REPLICAOF", "127.0.0.1", &dead]), Frame::ok());
    assert_eq!(info(&mut c, "replication", "master_link_status"), "down");
    assert_eq!(c.cmd(&["PING"]), Frame::Simple("PONG".into()));
    assert_eq!(c.cmd(&["REPLICAOF", "NO", "ONE"]), Frame::ok());
    assert_eq!(c.cmd(&["SET", "k", "v"]), Frame::ok());
}

/// A `redis-server` that replicates with no diskless delay, so syncs start at once.
fn redis(extra: &[&str]) -> Proc {
    let mut args = vec!["--repl-diskless-sync-delay", "0"];
    args.extend_from_slice(extra);
    redis_server(&args)
}

#[test]
#[ignore = "needs redis-server (apt-get install redis-server); run by .ci/run with --ignored"]
fn redis_server_replicates_from_a_vigil_master_and_resumes_partially() {
    let master = datanode(&[]);
    let replica = redis(&[]);
    let mut m = Conn::new(master.addr);
    load_dataset(&mut m, "pre:");
    let mut r = Conn::new(replica.addr);
    replicate(&mut r, master.addr);
    let stop = Arc::new(AtomicBool::new(false));
    let w = writer(master.addr, stop.clone());
    wait_until(DEADLINE, || {
        info(&mut r, "replication", "master_link_status") == "up"
    });
    stop.store(true, Ordering::Relaxed);
    w.join().expect("writer");
    settle(&mut m);
    wait_synced(&mut m, &mut r);
    assert_same(&dump(&mut r), &dump(&mut m), "r vs m");
    let partial = info_u64(&mut m, "stats", "sync_partial_ok");
    assert_eq!(
        r.cmd(&["CLIENT", "KILL", "TYPE", "master"]),
        Frame::Integer(1)
    );
    m.cmd(&["SET", "after-cut", "1"]);
    wait_synced(&mut m, &mut r);
    assert_eq!(info_u64(&mut m, "stats", "sync_partial_ok"), partial + 1);
    assert_eq!(info_u64(&mut m, "stats", "sync_full"), 1);
    assert_same(&dump(&mut r), &dump(&mut m), "r vs m");
}

/// Keys in every encoding Redis 7.0 writes: small ones (listpack, intset, embstr/int) and
/// large ones (quicklist, hashtable, skiplist, LZF-compressed strings).
fn load_every_encoding(c: &mut Conn) {
    let many = |prefix: &str, n: usize| -> Vec<String> {
        (0..n).map(|i| format!("{prefix}{i}")).collect()
    };
    let run = |c: &mut Conn, head: &[&str], tail: &[String]| {
        let mut args: Vec<&str> = head.to_vec();
        args.extend(tail.iter().map(String::as_str));
        let f = c.cmd(&args);
        assert!(!f.is_error(), "{head:?}: {f:?}");
    };
    run(c, &["SET", "int", "12345"], &[]);
    run(c, &["SET", "raw", "hello world"], &[]);
    run(c, &["SET", "long", &"abc".repeat(400)], &[]);
    run(c, &["SET", "ttl", "v", "PX", "900000"], &[]);
    run(c, &["RPUSH", "list:small", "a", "1", "b"], &[]);
    run(
        c,
        &["RPUSH", "list:big"],
        &many("element-with-some-length-", 3000),
    );
    run(c, &["SADD", "set:int", "1", "2", "3", "-7"], &[]);
    run(c, &["SADD", "set:big"], &many("member-", 1000));
    run(c, &["SADD", "set:small", "a", "b"], &[]);
    run(c, &["HSET", "hash:small", "f", "v", "n", "1"], &[]);
    let fields: Vec<String> = (0..600)
        .flat_map(|i| [format!("f{i}"), format!("v{i}")])
        .collect();
    run(c, &["HSET", "hash:big"], &fields);
    run(c, &["ZADD", "zset:small", "1", "a", "2.5", "b"], &[]);
    let members: Vec<String> = (0..300)
        .flat_map(|i| [format!("{}", i as f64 / 3.0), format!("m{i}")])
        .collect();
    run(c, &["ZADD", "zset:big"], &members);
    run(c, &["SELECT", "2"], &[]);
    run(c, &["SET", "in-db-2", "x"], &[]);
    run(c, &["SELECT", "0"], &[]);
}

#[test]
#[ignore = "needs redis-server (apt-get install redis-server); run by .ci/run with --ignored"]
fn vigil_replicates_from_a_redis_master_with_every_encoding_and_resumes_partially() {
    let master = redis(&[]);
    let mut m = Conn::new(master.addr);
    load_every_encoding(&mut m);
    assert_eq!(
        text(&m.cmd(&["OBJECT", "ENCODING", "list:big"])),
        "quicklist"
    );
    assert_eq!(text(&m.cmd(&["OBJECT", "ENCODING", "set:int"])), "intset");
    assert_eq!(
        text(&m.cmd(&["OBJECT", "ENCODING", "zset:big"])),
        "skiplist"
    );
    assert_eq!(
        text(&m.cmd(&["OBJECT", "ENCODING", "hash:small"])),
        "listpack"
    );
    let vigil = datanode(&[]);
    let mut v = Conn::new(vigil.addr);
    replicate(&mut v, master.addr);
    wait_synced(&mut m, &mut v);
    // A redis-server replica of the Vigil replica sees exactly the master's data: Vigil read every
    // encoding, wrote it back and proxies the stream verbatim (commands it may lack don't matter).
    let chained = redis(&[]);
    let mut r = Conn::new(chained.addr);
    replicate(&mut r, vigil.addr);
    wait_synced(&mut m, &mut r);
    assert_same(&dump(&mut r), &dump(&mut m), "r vs m");
    assert_eq!(
        v.cmd(&["LRANGE", "list:big", "2999", "-1"]),
        Frame::Array(vec![Frame::Bulk("element-with-some-length-2999".into())])
    );
    assert_eq!(
        v.cmd(&["GET", "long"]),
        Frame::Bulk("abc".repeat(400).into())
    );
    assert_eq!(
        v.cmd(&["PEXPIRETIME", "ttl"]),
        m.cmd(&["PEXPIRETIME", "ttl"])
    );

    // A cut link resumes partially, and the stream keeps flowing to both.
    let partial = info_u64(&mut m, "stats", "sync_partial_ok");
    assert_eq!(
        v.cmd(&["CLIENT", "KILL", "TYPE", "master"]),
        Frame::Integer(1)
    );
    m.cmd(&["RPUSH", "list:small", "after-cut"]);
    m.cmd(&["SADD", "set:int", "99"]);
    wait_synced(&mut m, &mut v);
    wait_synced(&mut m, &mut r);
    assert_eq!(info_u64(&mut m, "stats", "sync_partial_ok"), partial + 1);
    assert_eq!(info_u64(&mut m, "stats", "sync_full"), 1);
    assert_same(&dump(&mut r), &dump(&mut m), "r vs m");
}

/// A fake master on loopback: answers every connection with `reply` (or nothing, when `None`)
/// and counts the connections it accepted.
fn fake_master(reply: Option<&'static [u8]>) -> (SocketAddr, Arc<std::sync::atomic::AtomicUsize>) {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let count = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let seen = count.clone();
    std::thread::spawn(move || {
        // Bounded: the test process ends it; each connection is held until the peer leaves.
        for stream in listener.incoming().take(64) {
            let Ok(mut s) = stream else { continue };
            seen.fetch_add(1, Ordering::SeqCst);
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                let _ = s.set_read_timeout(Some(Duration::from_secs(30)));
                if let Ok(n) = s.read(&mut buf) {
                    if n > 0 {
                        if let Some(r) = reply {
                            let _ = s.write_all(r);
                        }
                    }
                }
                // Hold the connection until the replica drops it.
                while let Ok(n) = s.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                }
            });
        }
    });
    (addr, count)
}

#[test]
fn a_master_that_sends_garbage_or_stalls_is_dropped_and_retried() {
    let node = datanode(&[]);
    let mut c = Conn::new(node.addr);
    assert_eq!(c.cmd(&["CONFIG", "SET", "repl-timeout", "1"]), Frame::ok());
    for (what, reply) in [
        (
            "garbage",
            Some(&b"\x00\x01garbage that is not RESP\r\n"[..]),
        ),
        ("stall", None),
    ] {
        let (addr, accepted) = fake_master(reply);
        assert_eq!(c.cmd(&["REPLICAOF", "127.0.0.1", &port(addr)]), Frame::ok());
        // The replica drops the link and retries: the fake master sees it come back.
        wait_until(DEADLINE, || accepted.load(Ordering::SeqCst) >= 3);
        assert_eq!(
            info(&mut c, "replication", "master_link_status"),
            "down",
            "{what}"
        );
        // Meanwhile it keeps serving its own clients.
        assert_eq!(c.cmd(&["PING"]), Frame::Simple("PONG".into()), "{what}");
        assert_eq!(c.cmd(&["REPLICAOF", "NO", "ONE"]), Frame::ok());
    }
}

#[test]
fn a_replica_that_stops_reading_is_cut_at_its_output_limit_and_resyncs_later() {
    let master = datanode(&[]);
    let replica = datanode(&[]);
    let mut m = Conn::new(master.addr);
    let mut r = Conn::new(replica.addr);
    assert_eq!(
        m.cmd(&[
            "CONFIG",
            "SET",
            "client-output-buffer-limit",
            "replica 256kb 0 0"
        ]),
        Frame::ok()
    );
    replicate(&mut r, master.addr);
    wait_synced(&mut m, &mut r);
    assert_eq!(info_u64(&mut m, "replication", "connected_slaves"), 1);
    signal(&replica, "-STOP");
    // Far more than the socket buffers hold: the master must cut the replica, not grow.
    let value = "x".repeat(10_000);
    for i in 0..3000 {
        m.send(&[b"SET", format!("k{i}").as_bytes(), value.as_bytes()]);
    }
    for _ in 0..3000 {
        assert_eq!(m.read(), Some(Frame::ok()));
    }
    wait_until(DEADLINE, || {
        info_u64(&mut m, "replication", "connected_slaves") == 0
    });
    signal(&replica, "-CONT");
    wait_synced(&mut m, &mut r);
    assert_eq!(r.cmd(&["DBSIZE"]), Frame::Integer(3000));
    assert_eq!(r.cmd(&["STRLEN", "k2999"]), Frame::Integer(10_000));
}
