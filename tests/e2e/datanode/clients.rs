//! Real clients against a data node: redis-rs (sync and tokio, RESP2 and RESP3), redis-cli, and
//! inline commands typed over a raw socket.

use std::io::Write;
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;

use redis::{Commands, PushKind, Value};
use vigil_proto::resp::Frame;

use super::{DEADLINE, bulk, simple};
use crate::harness::{Conn, datanode};

fn client(addr: std::net::SocketAddr, query: &str) -> redis::Client {
    redis::Client::open(format!("redis://{addr}/{query}")).expect("redis url")
}

fn sync_conn(client: &redis::Client) -> redis::Connection {
    let con = client
        .get_connection_with_timeout(DEADLINE)
        .expect("connect with redis-rs");
    con.set_read_timeout(Some(DEADLINE)).expect("read timeout");
    con
}

#[test]
fn redis_rs_reads_and_writes_strings_counters_and_ttls() -> redis::RedisResult<()> {
    let node = datanode(&[]);
    let mut con = sync_conn(&client(node.addr, ""));

    con.set::<_, _, ()>("greeting", "hello")?;
    assert_eq!(con.get::<_, String>("greeting")?, "hello");
    assert_eq!(con.get::<_, Option<String>>("missing")?, None);
    assert_eq!(con.incr::<_, _, i64>("counter", 1)?, 1);
    assert_eq!(con.incr::<_, _, i64>("counter", 41)?, 42);
    assert_eq!(
        con.mget::<_, Vec<Option<String>>>(&["greeting", "missing", "counter"])?,
        vec![Some("hello".to_string()), None, Some("42".to_string())]
    );

    assert_eq!(con.ttl::<_, i64>("greeting")?, -1);
    assert_eq!(con.ttl::<_, i64>("missing")?, -2);
    assert!(con.expire::<_, bool>("greeting", 100)?);
    let ttl: i64 = con.ttl("greeting")?;
    assert!((1..=100).contains(&ttl), "ttl {ttl}");
    assert!(!con.expire::<_, bool>("missing", 100)?);
    Ok(())
}

#[test]
fn redis_rs_pipelines_and_transactions_return_every_reply_in_order() -> redis::RedisResult<()> {
    let node = datanode(&[]);
    let mut con = sync_conn(&client(node.addr, ""));

    let (n, v): (i64, String) = redis::pipe()
        .set("p", 1)
        .ignore()
        .incr("p", 2)
        .get("p")
        .query(&mut con)?;
    assert_eq!((n, v.as_str()), (3, "3"));

    // A large pipeline: every reply arrives, in order.
    let mut pipe = redis::pipe();
    for i in 0..2000 {
        pipe.incr("seq", 1).set(format!("k{i}"), i).ignore();
    }
    let replies: Vec<i64> = pipe.query(&mut con)?;
    assert_eq!(replies, (1..=2000).collect::<Vec<i64>>());
    assert_eq!(con.get::<_, i64>("k1999")?, 1999);

    let (a, b): (i64, i64) = redis::pipe()
        .atomic()
        .set("t", 1)
        .ignore()
        .incr("t", 1)
        .incr("t", 10)
        .query(&mut con)?;
    assert_eq!((a, b), (2, 12));

    // redis-rs' optimistic transaction helper: WATCH, read, MULTI, write, EXEC.
    let doubled: (i64,) = redis::transaction(&mut con, &["t"], |con, pipe| {
        let t: i64 = con.get("t")?;
        pipe.set("t", t * 2).ignore().get("t").query(con)
    })?;
    assert_eq!(doubled, (24,));
    Ok(())
}

#[test]
fn redis_rs_subscriber_receives_published_messages() -> redis::RedisResult<()> {
    let node = datanode(&[]);
    let c = client(node.addr, "");
    let mut publisher = sync_conn(&c);
    let mut sub_con = sync_conn(&c);
    let mut sub = sub_con.as_pubsub();
    sub.subscribe("news")?;
    sub.psubscribe("sport.*")?;

    // `subscribe` waited for the confirmation, so the subscriber is registered.
    assert_eq!(publisher.publish::<_, _, i64>("news", "hello")?, 1);
    let msg = sub.get_message()?;
    assert_eq!(msg.get_channel_name(), "news");
    assert_eq!(msg.get_payload::<String>()?, "hello");

    assert_eq!(publisher.publish::<_, _, i64>("sport.tennis", "ace")?, 1);
    let msg = sub.get_message()?;
    assert_eq!(msg.get_channel_name(), "sport.tennis");
    assert_eq!(msg.get_pattern::<String>()?, "sport.*");
    assert_eq!(msg.get_payload::<String>()?, "ace");

    assert_eq!(publisher.publish::<_, _, i64>("weather", "rain")?, 0);
    sub.unsubscribe("news")?;
    assert_eq!(publisher.publish::<_, _, i64>("news", "late")?, 0);
    Ok(())
}

#[test]
fn redis_rs_speaks_resp3_after_hello_3() -> redis::RedisResult<()> {
    let node = datanode(&[]);
    let mut con = sync_conn(&client(node.addr, "?protocol=resp3"));

    // redis-rs sent HELLO 3 while connecting.
    let info: String = redis::cmd("CLIENT").arg("INFO").query(&mut con)?;
    assert!(info.contains(" resp=3"), "{info}");
    let hello: Value = redis::cmd("HELLO").arg(3).query(&mut con)?;
    let Value::Map(fields) = hello else {
        panic!("HELLO 3 replied {hello:?}, not a map");
    };
    assert!(
        fields.contains(&(Value::BulkString(b"proto".to_vec()), Value::Int(3))),
        "{fields:?}"
    );

    con.set::<_, _, ()>("k", "v")?;
    assert_eq!(con.get::<_, String>("k")?, "v");
    // A missing key is RESP3's null.
    assert_eq!(
        redis::cmd("GET").arg("missing").query::<Value>(&mut con)?,
        Value::Nil
    );
    Ok(())
}

#[tokio::test]
async fn redis_rs_async_resp3_connection_gets_pushes_and_serves_concurrent_tasks()
-> redis::RedisResult<()> {
    let node = datanode(&[]);
    let c = client(node.addr, "?protocol=resp3");
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let config = redis::AsyncConnectionConfig::new().set_push_sender(tx);
    let mut sub = c
        .get_multiplexed_async_connection_with_config(&config)
        .await?;
    let mut con = c.get_multiplexed_async_connection().await?;

    sub.subscribe("news").await?;
    let n: i64 = redis::cmd("PUBLISH")
        .arg("news")
        .arg("hello")
        .query_async(&mut con)
        .await?;
    assert_eq!(n, 1);
    let mut message = None;
    for _ in 0..10 {
        let push = tokio::time::timeout(DEADLINE, rx.recv())
            .await
            .expect("push within the deadline")
            .expect("push channel open");
        if push.kind == PushKind::Message {
            message = Some(push.data);
            break;
        }
    }
    assert_eq!(
        message,
        Some(vec![
            Value::BulkString(b"news".to_vec()),
            Value::BulkString(b"hello".to_vec())
        ])
    );

    // One multiplexed connection shared by many tasks: every increment lands once.
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let mut con = con.clone();
            tokio::spawn(async move {
                for _ in 0..100 {
                    redis::cmd("INCR")
                        .arg("hits")
                        .query_async::<i64>(&mut con)
                        .await?;
                }
                redis::RedisResult::Ok(())
            })
        })
        .collect();
    for t in tasks {
        t.await.expect("task ran")?;
    }
    let hits: i64 = redis::cmd("GET").arg("hits").query_async(&mut con).await?;
    assert_eq!(hits, 800);
    Ok(())
}

#[test]
fn inline_commands_over_a_raw_socket_are_parsed_like_redis() {
    let node = datanode(&[]);
    let mut c = Conn::new(node.addr);
    // All in one write: the server splits the lines itself. The empty line is skipped; `\n`
    // alone ends a line too.
    c.send_raw(
        concat!(
            "PING\r\n",
            "SET k \"a b\"\r\n",
            "\r\n",
            "GET k\r\n",
            "SET esc \"x\\ty\\x41\"\n",
            "GET esc\r\n",
            "ECHO 'single quoted'\r\n",
            "SET q 'it''s'\r\n",
        )
        .as_bytes(),
    );
    assert_eq!(c.read(), Some(simple("PONG")));
    assert_eq!(c.read(), Some(Frame::ok()));
    assert_eq!(c.read(), Some(bulk("a b")));
    assert_eq!(c.read(), Some(Frame::ok()));
    assert_eq!(c.read(), Some(bulk("x\tyA")));
    assert_eq!(c.read(), Some(bulk("single quoted")));
    // `'it''s'` is not one argument: a closing quote must be followed by a space.
    assert_eq!(
        c.read(),
        Some(Frame::Error(
            "ERR Protocol error: unbalanced quotes in request".into()
        ))
    );
    assert!(super::disconnected(&mut c));
}

/// Runs redis-cli with `args` against `addr`, feeding it `stdin`; panics if it runs too long.
fn redis_cli(addr: std::net::SocketAddr, args: &[&str], stdin: Vec<u8>) -> Output {
    let mut child = Command::new("redis-cli")
        .args(["-h", "127.0.0.1", "-p", &addr.port().to_string()])
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn redis-cli (apt-get install redis-tools)");
    let pid = child.id();
    let mut input = child.stdin.take().expect("piped stdin");
    // Written from a thread so that a large input cannot block us while redis-cli blocks on its
    // full stdout pipe.
    let writer = std::thread::spawn(move || {
        let _ = input.write_all(&stdin);
    });
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    let Ok(out) = rx.recv_timeout(DEADLINE * 2) else {
        let _ = Command::new("kill")
            .args(["-KILL", &pid.to_string()])
            .status();
        panic!("redis-cli {args:?} did not finish");
    };
    writer.join().expect("stdin writer");
    out.expect("redis-cli output")
}

#[test]
#[ignore = "needs redis-cli (apt-get install redis-tools); run by .ci/run with --ignored"]
fn redis_cli_runs_commands_piped_to_it() {
    let node = datanode(&[]);
    let out = redis_cli(
        node.addr,
        &[],
        b"SET a 1\r\nINCR a\r\nGET a\r\nGET nope\r\n".to_vec(),
    );
    assert!(out.status.success(), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "OK\n2\n2\n\n");
    let mut c = Conn::new(node.addr);
    assert_eq!(c.cmd(&["GET", "a"]), bulk("2"));
}

#[test]
#[ignore = "needs redis-cli (apt-get install redis-tools); run by .ci/run with --ignored"]
fn redis_cli_pipe_mode_loads_raw_resp() {
    let node = datanode(&[]);
    let mut input = bytes::BytesMut::new();
    for i in 0..5000 {
        let key = format!("key:{i}");
        let value = format!("value:{i}");
        vigil_proto::resp::encode_command(
            &[&b"SET"[..], key.as_bytes(), value.as_bytes()],
            &mut input,
        );
    }
    vigil_proto::resp::encode_command(&[&b"INCRBY"[..], b"total", b"5000"], &mut input);
    let out = redis_cli(node.addr, &["--pipe"], input.to_vec());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    assert!(stdout.contains("errors: 0, replies: 5001"), "{stdout}");

    let mut c = Conn::new(node.addr);
    assert_eq!(c.cmd(&["DBSIZE"]), Frame::Integer(5001));
    assert_eq!(c.cmd(&["GET", "key:4999"]), bulk("value:4999"));
    assert_eq!(c.cmd(&["GET", "total"]), bulk("5000"));
}
