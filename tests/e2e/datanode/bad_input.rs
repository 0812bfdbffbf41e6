//! Malformed and abusive clients: each gets Redis' exact reply, only the offending connection is
//! closed, and a client that connected before keeps being served.

use std::io::Write;

use vigil_proto::resp::Frame;

use super::{DEADLINE, assert_still_served, bulk, bystander, disconnected, err, info_u64, simple};
use crate::harness::{Conn, datanode, wait_until};

#[test]
fn malformed_requests_get_protocol_errors_and_close_only_that_connection() {
    let node = datanode(&[]);
    let mut other = bystander(node.addr);
    // Each request is sent whole, and each ends exactly where the server detects the error, so
    // the server has read every byte before it closes (unread input would turn its FIN into an
    // RST that can discard the error reply before the test reads it).
    let too_long_inline = vec![b'a'; 64 * 1024 + 1];
    let cases: &[(&str, &[u8], &str)] = &[
        (
            "simple string inside a multibulk",
            b"*1\r\n+PING\r\n",
            "ERR Protocol error: expected '$', got '+'",
        ),
        (
            "multibulk length not a number",
            b"*abc\r\n",
            "ERR Protocol error: invalid multibulk length",
        ),
        (
            "multibulk length over 1M",
            b"*1048577\r\n",
            "ERR Protocol error: invalid multibulk length",
        ),
        (
            "bulk length over 512 MiB",
            b"*1\r\n$536870913\r\n",
            "ERR Protocol error: invalid bulk length",
        ),
        (
            "negative bulk length",
            b"*1\r\n$-1\r\n",
            "ERR Protocol error: invalid bulk length",
        ),
        (
            "inline request with unbalanced quotes",
            b"SET k \"a b\r\n",
            "ERR Protocol error: unbalanced quotes in request",
        ),
        (
            "inline request over 64 KiB without a newline",
            &too_long_inline,
            "ERR Protocol error: too big inline request",
        ),
    ];
    for (what, request, reply) in cases {
        let mut bad = Conn::new(node.addr);
        bad.send_raw(request);
        assert_eq!(bad.read(), Some(err(reply)), "{what}");
        assert!(disconnected(&mut bad), "{what}: connection left open");
        assert_still_served(&mut other);
    }

    // A good request pipelined before a malformed one is still answered, in order.
    let mut bad = Conn::new(node.addr);
    bad.send_raw(b"PING\r\n*1\r\n+PING\r\n");
    assert_eq!(bad.read(), Some(simple("PONG")));
    assert_eq!(
        bad.read(),
        Some(err("ERR Protocol error: expected '$', got '+'"))
    );
    assert!(disconnected(&mut bad));
    assert_still_served(&mut other);
}

#[test]
fn bad_commands_get_exact_errors_and_the_connection_goes_on() {
    let node = datanode(&[]);
    let mut other = bystander(node.addr);
    let mut c = Conn::new(node.addr);
    assert_eq!(c.cmd(&["RPUSH", "list", "a"]), Frame::Integer(1));
    assert_eq!(c.cmd(&["SET", "n", "abc"]), Frame::ok());
    let cases: &[(&[&str], &str)] = &[
        (&["GET"], "ERR wrong number of arguments for 'get' command"),
        (
            &["SET", "k"],
            "ERR wrong number of arguments for 'set' command",
        ),
        (
            &["GET", "list"],
            "WRONGTYPE Operation against a key holding the wrong kind of value",
        ),
        (
            &["FOO", "bar", "baz"],
            "ERR unknown command 'FOO', with args beginning with: 'bar' 'baz' ",
        ),
        (
            &["INCR", "n"],
            "ERR value is not an integer or out of range",
        ),
        (
            &["EXPIRE", "n", "soon"],
            "ERR value is not an integer or out of range",
        ),
        (
            &["INCRBY", "counter", "1.5"],
            "ERR value is not an integer or out of range",
        ),
    ];
    for (args, reply) in cases {
        assert_eq!(c.cmd(args), err(reply), "{args:?}");
        assert_eq!(c.cmd(&["PING"]), simple("PONG"), "after {args:?}");
    }
    // The failed commands changed nothing.
    assert_eq!(c.cmd(&["GET", "n"]), bulk("abc"));
    assert_eq!(c.cmd(&["EXISTS", "k", "counter"]), Frame::Integer(0));
    assert_still_served(&mut other);
}

#[test]
fn clients_over_maxclients_are_refused_with_redis_error() {
    let node = datanode(&["--maxclients", "2"]);
    let mut first = bystander(node.addr);
    let mut second = Conn::new(node.addr);
    assert_eq!(second.cmd(&["PING"]), simple("PONG"));

    let mut third = Conn::new(node.addr);
    assert_eq!(third.read(), Some(err("ERR max number of clients reached")));
    assert!(disconnected(&mut third), "refused client left open");
    assert_still_served(&mut first);
    assert!(info_u64(&mut first, "stats", "rejected_connections") >= 1);

    // Once a client leaves, its slot is free again.
    drop(second);
    wait_until(DEADLINE, || {
        let mut c = Conn::new(node.addr);
        c.send(&[b"PING"]);
        c.read() == Some(simple("PONG"))
    });
    assert_still_served(&mut first);
}

#[test]
fn client_that_never_reads_is_disconnected_at_its_output_limit() {
    let node = datanode(&[]);
    let mut other = bystander(node.addr);
    assert_eq!(
        other.cmd(&[
            "CONFIG",
            "SET",
            "client-output-buffer-limit",
            "normal 1mb 0 0"
        ]),
        Frame::ok()
    );
    let value = "v".repeat(256 * 1024);
    assert_eq!(other.cmd(&["SET", "big", &value]), Frame::ok());
    let rss_before = info_u64(&mut other, "memory", "used_memory_rss");

    // 4000 GETs of 256 KiB ask for 1 GiB of replies; the client reads none of them.
    let mut greedy = Conn::new(node.addr);
    let request = b"*2\r\n$3\r\nGET\r\n$3\r\nbig\r\n".repeat(4000);
    // The server may close the connection while we are still writing; that is the point.
    let _ = greedy.stream().write_all(&request);
    assert!(
        disconnected(&mut greedy),
        "client over its output limit not disconnected"
    );

    wait_until(DEADLINE, || {
        info_u64(
            &mut other,
            "stats",
            "client_output_buffer_limit_disconnections",
        ) >= 1
    });
    assert_still_served(&mut other);
    assert_eq!(other.cmd(&["STRLEN", "big"]), Frame::Integer(256 * 1024));
    // The replies that were never sent are freed with the client.
    let slack = 20 * 1024 * 1024;
    wait_until(DEADLINE, || {
        info_u64(&mut other, "memory", "used_memory_rss") <= rss_before + slack
    });
    // And they never grew much past the limit: the server's peak RSS (which INFO does not show)
    // stayed near the start, far below the 1 GiB the client asked for.
    let status = std::fs::read_to_string(format!("/proc/{}/status", node.pid()))
        .expect("server /proc status");
    let peak_kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no VmHWM in {status}"));
    assert!(
        peak_kib * 1024 <= rss_before + 2 * slack,
        "peak RSS {peak_kib} KiB, {rss_before} bytes before"
    );
}

#[test]
fn slow_subscriber_is_disconnected_at_the_pubsub_limit() {
    let node = datanode(&[]);
    let mut publisher = bystander(node.addr);
    assert_eq!(
        publisher.cmd(&[
            "CONFIG",
            "SET",
            "client-output-buffer-limit",
            "pubsub 1mb 0 0"
        ]),
        Frame::ok()
    );
    let mut sub = Conn::new(node.addr);
    assert_eq!(
        sub.cmd(&["SUBSCRIBE", "news"]),
        Frame::Array(vec![bulk("subscribe"), bulk("news"), Frame::Integer(1)])
    );

    // The subscriber reads nothing from here on. The socket buffers absorb a few MiB, then its
    // queue grows to the 1 MiB limit and it is dropped, after which PUBLISH reaches nobody.
    let message = "m".repeat(10 * 1024);
    let mut published = 0;
    while published < 5000 {
        match publisher.cmd(&["PUBLISH", "news", &message]) {
            Frame::Integer(1) => published += 1,
            Frame::Integer(0) => break,
            other => panic!("PUBLISH replied {other:?}"),
        }
    }
    assert!(
        published < 5000,
        "subscriber still receiving after 50 MiB unread"
    );
    assert!(disconnected(&mut sub), "slow subscriber not disconnected");
    wait_until(DEADLINE, || {
        publisher.cmd(&["PUBSUB", "NUMSUB", "news"])
            == Frame::Array(vec![bulk("news"), Frame::Integer(0)])
    });
    // Counted whichever path noticed first: the publisher's queue check or the connection task.
    let counted = info_u64(
        &mut publisher,
        "stats",
        "client_output_buffer_limit_disconnections",
    );
    assert!(counted >= 1, "the disconnection is counted, got {counted}");
    assert_still_served(&mut publisher);
}
