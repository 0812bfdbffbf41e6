//! Write fencing seen by clients and sentinels: `VIGIL CLOCK`, `VIGIL LEASE`, `VIGIL REVOKE`,
//! `-NOLEASE` on a master without a lease majority, and the `write-fencing` modes.
//!
//! Leases last 300 ms; a test that needs one expired sleeps well past that, and one that needs
//! one valid sends the grants and the write in one pipelined batch, so no assertion races the
//! lease.

use std::time::Duration;

use vigil_proto::resp::Frame;

use super::{DEADLINE, bulk, err, info_u64, simple, text};
use crate::harness::{Conn, datanode, wait_until};

/// The exact refusal of a write on a fenced master.
const NOLEASE: &str =
    "NOLEASE this master holds no valid write lease from a majority of its sentinels";

/// How long to sleep for a 300 ms lease to be certainly over.
const PAST_EXPIRY: Duration = Duration::from_millis(500);

/// One text field of `INFO <section>`.
fn info(c: &mut Conn, section: &str, field: &str) -> String {
    let all = text(&c.cmd(&["INFO", section]));
    all.lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .map(|v| v.trim().to_string())
        .unwrap_or_else(|| panic!("no {field} in INFO {section}:\n{all}"))
}

/// The text of a simple or bulk string reply.
fn text_of(f: &Frame) -> String {
    match f {
        Frame::Simple(b) | Frame::Bulk(b) => String::from_utf8_lossy(b).into_owned(),
        other => panic!("expected a string, got {other:?}"),
    }
}

/// The node's clock, from `VIGIL CLOCK`.
fn clock(c: &mut Conn) -> String {
    match c.cmd(&["VIGIL", "CLOCK"]) {
        Frame::Integer(us) => us.to_string(),
        other => panic!("VIGIL CLOCK replied {other:?}"),
    }
}

/// The first 16 characters of the node's run id.
fn run_id_prefix(c: &mut Conn) -> String {
    info(c, "server", "run_id")[..16].to_string()
}

/// Sends every command, then reads every reply (one round trip for the whole batch).
fn pipeline(c: &mut Conn, cmds: &[&[&str]]) -> Vec<Frame> {
    for args in cmds {
        let raw: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
        c.send(&raw);
    }
    cmds.iter().map(|_| c.read().expect("reply")).collect()
}

#[test]
fn fenced_master_refuses_writes_until_a_lease_majority_and_again_after_expiry() {
    let node = datanode(&[]);
    let mut c = Conn::new(node.addr);
    assert_eq!(
        c.cmd(&["CONFIG", "SET", "write-fencing", "on"]),
        Frame::ok()
    );
    assert_eq!(c.cmd(&["SET", "k", "v"]), err(NOLEASE));
    assert_eq!(c.cmd(&["GET", "k"]), Frame::Null, "reads continue");
    assert_eq!(info(&mut c, "replication", "vigil_write_fencing"), "on");
    assert_eq!(info_u64(&mut c, "replication", "vigil_fencing_active"), 1);
    assert_eq!(info_u64(&mut c, "replication", "vigil_leases_valid"), 0);
    assert_eq!(info_u64(&mut c, "replication", "vigil_lease_majority"), 0);

    let prefix = run_id_prefix(&mut c);
    let start = clock(&mut c);
    // One lease of the two required is not enough.
    let replies = pipeline(
        &mut c,
        &[
            &["VIGIL", "LEASE", "1", &start, "300", "2", &prefix],
            &["SET", "k", "v"],
        ],
    );
    assert_eq!(replies, vec![Frame::ok(), err(NOLEASE)]);
    let replies = pipeline(
        &mut c,
        &[
            &["VIGIL", "LEASE", "2", &start, "300", "2", &prefix],
            &["SET", "k", "v"],
            &["VIGIL", "LEASES"],
        ],
    );
    assert_eq!(replies[..2], [Frame::ok(), Frame::ok()]);
    let Frame::Array(leases) = &replies[2] else {
        panic!("VIGIL LEASES replied {:?}", replies[2]);
    };
    let ids: Vec<&Frame> = leases
        .iter()
        .map(|l| match l {
            Frame::Array(pair) if pair.len() == 2 => &pair[0],
            other => panic!("lease entry {other:?}"),
        })
        .collect();
    assert_eq!(ids, [&Frame::Integer(1), &Frame::Integer(2)]);
    assert_eq!(c.cmd(&["GET", "k"]), bulk("v"));
    assert_eq!(info_u64(&mut c, "replication", "vigil_lease_majority"), 2);

    std::thread::sleep(PAST_EXPIRY);
    assert_eq!(c.cmd(&["SET", "k", "w"]), err(NOLEASE));
    assert_eq!(c.cmd(&["GET", "k"]), bulk("v"));
    assert_eq!(info_u64(&mut c, "replication", "vigil_leases_valid"), 0);
    assert_eq!(c.cmd(&["VIGIL", "LEASES"]), Frame::Array(vec![]));
}

#[test]
fn revoked_leases_fence_at_once_and_older_grants_never_count_again() {
    let node = datanode(&[]);
    let mut c = Conn::new(node.addr);
    assert_eq!(
        c.cmd(&["CONFIG", "SET", "write-fencing", "on"]),
        Frame::ok()
    );
    let prefix = run_id_prefix(&mut c);
    let before = clock(&mut c);
    // Long leases, so that only the revocation can end them within the test.
    let replies = pipeline(
        &mut c,
        &[
            &["VIGIL", "LEASE", "1", &before, "60000", "1", &prefix],
            &["SET", "k", "v"],
            &["VIGIL", "REVOKE"],
            &["SET", "k", "w"],
            &["VIGIL", "LEASES"],
        ],
    );
    assert_eq!(
        replies,
        vec![
            Frame::ok(),
            Frame::ok(),
            Frame::ok(),
            err(NOLEASE),
            Frame::Array(vec![])
        ]
    );
    // A grant built on a reading taken before the revocation, arriving after it, is refused.
    match c.cmd(&["VIGIL", "LEASE", "1", &before, "60000", "1", &prefix]) {
        Frame::Error(e) => assert!(
            String::from_utf8_lossy(&e).contains("revoked"),
            "{}",
            String::from_utf8_lossy(&e)
        ),
        other => panic!("a pre-revocation grant got {other:?}"),
    }
    assert_eq!(c.cmd(&["SET", "k", "w"]), err(NOLEASE));
    assert_eq!(c.cmd(&["GET", "k"]), bulk("v"));
    // A fresh reading makes a lease that counts again.
    let after = clock(&mut c);
    let replies = pipeline(
        &mut c,
        &[
            &["VIGIL", "LEASE", "1", &after, "60000", "1", &prefix],
            &["SET", "k", "w"],
        ],
    );
    assert_eq!(replies, vec![Frame::ok(), Frame::ok()]);
    assert_eq!(
        c.cmd(&["VIGIL", "REVOKE", "extra"]),
        err("ERR wrong number of arguments for 'vigil|revoke' command")
    );
}

#[test]
fn a_paused_master_whose_leases_were_revoked_holds_writes_until_the_pause_ends() {
    let node = datanode(&[]);
    let mut c = Conn::new(node.addr);
    assert_eq!(
        c.cmd(&["CONFIG", "SET", "write-fencing", "on"]),
        Frame::ok()
    );
    let prefix = run_id_prefix(&mut c);
    let start = clock(&mut c);
    let replies = pipeline(
        &mut c,
        &[
            &["VIGIL", "LEASE", "1", &start, "60000", "1", &prefix],
            &["CLIENT", "PAUSE", "60000", "WRITE"],
            &["VIGIL", "REVOKE"],
        ],
    );
    assert_eq!(replies, vec![Frame::ok(), Frame::ok(), Frame::ok()]);
    // The write waits for the pause, as a switchover promises its writers...
    let mut w = Conn::new(node.addr);
    w.send(&[b"SET", b"k", b"v"]);
    w.stream()
        .set_read_timeout(Some(Duration::from_millis(300)))
        .expect("timeout");
    assert_eq!(w.read(), None, "a paused write was answered");
    w.stream()
        .set_read_timeout(Some(DEADLINE))
        .expect("timeout");
    // ...and is refused by the fence once it runs.
    assert_eq!(c.cmd(&["CLIENT", "UNPAUSE"]), Frame::ok());
    assert_eq!(w.read(), Some(err(NOLEASE)));
    assert_eq!(c.cmd(&["GET", "k"]), Frame::Null);
}

#[test]
fn exec_checks_the_lease_when_the_transaction_runs() {
    let node = datanode(&[]);
    let mut c = Conn::new(node.addr);
    assert_eq!(
        c.cmd(&["CONFIG", "SET", "write-fencing", "on"]),
        Frame::ok()
    );
    // Refused while queued: the transaction is aborted.
    assert_eq!(c.cmd(&["MULTI"]), Frame::ok());
    assert_eq!(c.cmd(&["SET", "k", "v"]), err(NOLEASE));
    assert_eq!(
        c.cmd(&["EXEC"]),
        err("EXECABORT Transaction discarded because of previous errors.")
    );

    // Queued under a lease that is over by EXEC: refused when it runs.
    let prefix = run_id_prefix(&mut c);
    let start = clock(&mut c);
    let replies = pipeline(
        &mut c,
        &[
            &["VIGIL", "LEASE", "1", &start, "300", "1", &prefix],
            &["MULTI"],
            &["SET", "k", "v"],
        ],
    );
    assert_eq!(replies, vec![Frame::ok(), Frame::ok(), simple("QUEUED")]);
    std::thread::sleep(PAST_EXPIRY);
    assert_eq!(
        c.cmd(&["EXEC"]),
        err(&format!(
            "EXECABORT Transaction discarded because of: {NOLEASE}"
        ))
    );
    assert_eq!(c.cmd(&["GET", "k"]), Frame::Null);

    // A read-only transaction runs without a lease.
    assert_eq!(c.cmd(&["MULTI"]), Frame::ok());
    assert_eq!(c.cmd(&["GET", "k"]), simple("QUEUED"));
    assert_eq!(c.cmd(&["EXEC"]), Frame::Array(vec![Frame::Null]));
}

#[test]
fn fenced_replica_applies_its_masters_stream_and_fences_once_promoted() {
    let master = datanode(&[]);
    let replica = datanode(&[]);
    let mut m = Conn::new(master.addr);
    let mut r = Conn::new(replica.addr);
    assert_eq!(
        r.cmd(&["CONFIG", "SET", "write-fencing", "on"]),
        Frame::ok()
    );
    assert_eq!(
        r.cmd(&["REPLICAOF", "127.0.0.1", &master.addr.port().to_string()]),
        Frame::ok()
    );
    wait_until(DEADLINE, || {
        info(&mut r, "replication", "master_link_status") == "up"
    });
    assert_eq!(m.cmd(&["SET", "k", "from-master"]), Frame::ok());
    wait_until(DEADLINE, || r.cmd(&["GET", "k"]) == bulk("from-master"));

    // A replica answers VIGIL like a master; a lease it holds counts once it is promoted.
    let prefix = run_id_prefix(&mut r);
    let start = clock(&mut r);
    assert_eq!(
        r.cmd(&["VIGIL", "LEASE", "1", &start, "60000", "2", &prefix]),
        Frame::ok()
    );
    assert_eq!(r.cmd(&["REPLICAOF", "NO", "ONE"]), Frame::ok());
    assert_eq!(r.cmd(&["SET", "k", "promoted"]), err(NOLEASE));
    let start = clock(&mut r);
    assert_eq!(
        r.cmd(&["VIGIL", "LEASE", "2", &start, "60000", "2", &prefix]),
        Frame::ok()
    );
    assert_eq!(r.cmd(&["SET", "k", "promoted"]), Frame::ok());
    assert_eq!(r.cmd(&["GET", "k"]), bulk("promoted"));
}

#[test]
fn lease_for_another_run_id_is_refused_and_stores_nothing() {
    let node = datanode(&[]);
    let mut c = Conn::new(node.addr);
    let prefix = run_id_prefix(&mut c);
    // Same shape, another incarnation: flip the first hex digit.
    let first = if prefix.starts_with('0') { "1" } else { "0" };
    let other = format!("{first}{}", &prefix[1..]);
    let start = clock(&mut c);
    assert_eq!(
        c.cmd(&["VIGIL", "LEASE", "1", &start, "60000", "1", &other]),
        err("ERR lease for another run id")
    );
    assert_eq!(info_u64(&mut c, "replication", "vigil_leases_valid"), 0);
    assert_eq!(info_u64(&mut c, "replication", "vigil_lease_majority"), 0);
    // A refused lease does not switch `auto` fencing on.
    assert_eq!(info_u64(&mut c, "replication", "vigil_fencing_active"), 0);
    assert_eq!(c.cmd(&["SET", "k", "v"]), Frame::ok());
}

#[test]
fn malformed_vigil_commands_get_errors_and_the_connection_keeps_working() {
    let node = datanode(&[]);
    let mut c = Conn::new(node.addr);
    let prefix = run_id_prefix(&mut c);
    let future = (clock(&mut c).parse::<u64>().expect("clock") + 3_600_000_000).to_string();
    assert_eq!(
        c.cmd(&["VIGIL"]),
        err("ERR wrong number of arguments for 'vigil' command")
    );
    assert_eq!(
        c.cmd(&["VIGIL", "nope"]),
        err("ERR unknown subcommand 'nope'. Try VIGIL HELP.")
    );
    assert_eq!(
        c.cmd(&["VIGIL", "LEASE", "1", "2"]),
        err("ERR wrong number of arguments for 'vigil|lease' command")
    );
    assert_eq!(
        c.cmd(&["VIGIL", "CLOCK", "extra"]),
        err("ERR wrong number of arguments for 'vigil|clock' command")
    );
    let cases: &[(&[&str], &str)] = &[
        (
            &["x", "0", "300", "1", &prefix],
            "ERR invalid sentinel-id 'x'",
        ),
        (
            &["-1", "0", "300", "1", &prefix],
            "ERR invalid sentinel-id '-1'",
        ),
        (
            &["1", "soon", "300", "1", &prefix],
            "ERR invalid start-us 'soon'",
        ),
        (&["1", "0", "0", "1", &prefix], "ERR invalid ttl-ms '0'"),
        (
            &["1", "0", "60001", "1", &prefix],
            "ERR invalid ttl-ms '60001'",
        ),
        (&["1", "0", "300", "0", &prefix], "ERR invalid majority '0'"),
        (
            &["1", "0", "300", "256", &prefix],
            "ERR invalid majority '256'",
        ),
        (
            &["1", "0", "300", "1", "abc"],
            "ERR invalid run-id-prefix 'abc'",
        ),
        (&["1", &future, "300", "1", &prefix], "ERR invalid start-us"),
    ];
    for (args, want) in cases {
        let mut full = vec!["VIGIL", "LEASE"];
        full.extend_from_slice(args);
        let reply = c.cmd(&full);
        let Frame::Error(e) = &reply else {
            panic!("{full:?} replied {reply:?}");
        };
        let e = String::from_utf8_lossy(e);
        assert!(e.starts_with(want), "{full:?}: got {e:?}, want {want:?}…");
    }
    // Nothing was stored and nothing switched fencing on.
    assert_eq!(info_u64(&mut c, "replication", "vigil_leases_valid"), 0);
    assert_eq!(info_u64(&mut c, "replication", "vigil_fencing_active"), 0);
    assert_eq!(c.cmd(&["PING"]), simple("PONG"));
    assert_eq!(c.cmd(&["SET", "k", "v"]), Frame::ok());
    assert!(matches!(c.cmd(&["VIGIL", "HELP"]), Frame::Array(l) if l.len() > 3));
}

#[test]
fn auto_mode_accepts_writes_until_the_first_lease() {
    let node = datanode(&[]);
    let mut c = Conn::new(node.addr);
    assert_eq!(info(&mut c, "replication", "vigil_write_fencing"), "auto");
    assert_eq!(info_u64(&mut c, "replication", "vigil_fencing_active"), 0);
    assert_eq!(c.cmd(&["SET", "k", "1"]), Frame::ok());

    let prefix = run_id_prefix(&mut c);
    let start = clock(&mut c);
    let replies = pipeline(
        &mut c,
        &[
            &["VIGIL", "LEASE", "5", &start, "300", "1", &prefix],
            &["SET", "k", "2"],
        ],
    );
    assert_eq!(replies, vec![Frame::ok(), Frame::ok()]);
    assert_eq!(info_u64(&mut c, "replication", "vigil_fencing_active"), 1);
    std::thread::sleep(PAST_EXPIRY);
    assert_eq!(c.cmd(&["SET", "k", "3"]), err(NOLEASE));
    assert_eq!(c.cmd(&["GET", "k"]), bulk("2"));

    // `off` stops fencing; back to `auto`, fencing stays on for the process lifetime.
    assert_eq!(
        c.cmd(&["CONFIG", "SET", "write-fencing", "off"]),
        Frame::ok()
    );
    assert_eq!(
        c.cmd(&["CONFIG", "GET", "write-fencing"]),
        Frame::Array(vec![bulk("write-fencing"), bulk("off")])
    );
    assert_eq!(c.cmd(&["SET", "k", "4"]), Frame::ok());
    assert_eq!(
        c.cmd(&["CONFIG", "SET", "write-fencing", "auto"]),
        Frame::ok()
    );
    assert_eq!(c.cmd(&["SET", "k", "5"]), err(NOLEASE));
    assert!(matches!(
        c.cmd(&["CONFIG", "SET", "write-fencing", "sometimes"]),
        Frame::Error(_)
    ));
}

#[test]
fn vigil_needs_auth_is_not_a_write_and_dc_shows_in_info() {
    let node = datanode(&["--requirepass", "s3cret"]);
    let mut c = Conn::new(node.addr);
    assert_eq!(
        c.cmd(&["VIGIL", "CLOCK"]),
        err("NOAUTH Authentication required.")
    );
    assert_eq!(c.cmd(&["AUTH", "s3cret"]), Frame::ok());
    let reply = c.cmd(&["COMMAND", "INFO", "vigil"]);
    let flags: Vec<String> = match &reply {
        Frame::Array(all) => match all.first() {
            Some(Frame::Array(info)) => match info.get(2) {
                Some(Frame::Array(f) | Frame::Set(f)) => f.iter().map(text_of).collect(),
                _ => panic!("COMMAND INFO vigil flags: {reply:?}"),
            },
            _ => panic!("COMMAND INFO vigil: {reply:?}"),
        },
        _ => panic!("COMMAND INFO vigil: {reply:?}"),
    };
    assert!(flags.iter().any(|f| f == "loading"), "{flags:?}");
    assert!(!flags.iter().any(|f| f == "write"), "{flags:?}");

    let server = text(&c.cmd(&["INFO", "server"]));
    assert!(!server.contains("vigil_dc:"), "no dc line without a dc");
    assert_eq!(c.cmd(&["CONFIG", "SET", "dc", "eu-west-1a"]), Frame::ok());
    assert_eq!(info(&mut c, "server", "vigil_dc"), "eu-west-1a");
    assert!(matches!(
        c.cmd(&["CONFIG", "SET", "dc", "bad label"]),
        Frame::Error(_)
    ));
}
