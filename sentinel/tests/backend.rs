//! `RespBackend` and `subscribe` against real servers and in-process fakes.
//!
//! The fakes (a tokio listener that answers garbage, never answers, or plays a small RESP
//! server) need nothing outside this process and always run. The tests against a real Vigil data
//! node or a real `redis-server` are ignored by default; `.ci/run` runs them with `--ignored`.
//! The Vigil binary is `$VIGIL_BIN`, else `$CARGO_TARGET_DIR/debug/vigil`, else
//! `../target/debug/vigil`.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use vigil_proto::resp::{self, Frame, Limits, Protocol, RequestDecoder};
use vigil_sentinel::backend::{
    Backend, BackendConfig, BackendError, LeaseGrant, ReportRole, RespBackend, subscribe,
};
use vigil_sentinel::core::ProbeStatus;
use vigil_sentinel::nodes::NodeAddr;

fn cfg(timeout: Duration) -> BackendConfig {
    BackendConfig {
        timeout,
        client_name: "vigil-test".to_owned(),
        ..BackendConfig::default()
    }
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// Polls `f` until it returns `Some`, or panics after `limit`.
async fn wait_until<T, F, Fut>(limit: Duration, what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

// ---------------------------------------------------------------------------------------------
// Real servers.

/// A child process, killed and reaped on drop.
struct Proc {
    child: Child,
    addr: NodeAddr,
    _dir: tempfile::TempDir,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn vigil_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("VIGIL_BIN") {
        return PathBuf::from(p);
    }
    if let Some(dir) = std::env::var_os("CARGO_TARGET_DIR") {
        let p = PathBuf::from(dir).join("debug/vigil");
        if p.exists() {
            return p;
        }
    }
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/debug/vigil")
}

/// Starts `vigil datanode` on a free loopback port and waits for its `READY` line.
fn start_vigil() -> Proc {
    let dir = tempfile::tempdir().expect("temp dir");
    let bin = vigil_bin();
    let mut child = Command::new(&bin)
        .args([
            "datanode",
            "--port",
            "0",
            "--bind",
            "127.0.0.1",
            "--save",
            "",
        ])
        .arg("--dir")
        .arg(dir.path())
        .current_dir(dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("starting {}: {e}", bin.display()));
    let stdout = child.stdout.take().expect("piped stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { return };
            if let Some(addr) = line.strip_prefix("READY resp=") {
                let _ = tx.send(addr.trim().to_owned());
            }
        }
    });
    let addr = match rx.recv_timeout(secs(20)) {
        Ok(addr) => addr,
        Err(e) => {
            let _ = child.kill();
            panic!("vigil datanode did not print READY: {e}");
        }
    };
    Proc {
        child,
        addr: addr.parse().expect("READY carries HOST:PORT"),
        _dir: dir,
    }
}

/// Starts `redis-server` on a free loopback port and waits until it answers.
async fn start_redis() -> Proc {
    let dir = tempfile::tempdir().expect("temp dir");
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("local addr").port()
    };
    let child = Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args(["--save", "", "--appendonly", "no"])
        .arg("--dir")
        .arg(dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("redis-server is installed");
    let proc = Proc {
        child,
        addr: NodeAddr::new("127.0.0.1", port),
        _dir: dir,
    };
    let b = &RespBackend::new(proc.addr.clone(), cfg(secs(1)));
    wait_until(secs(20), "redis-server to answer", || async move {
        b.probe().await.ok()
    })
    .await;
    proc
}

/// Replication set up and torn down through the backend, checked through INFO.
async fn replication_round_trip(a: &NodeAddr, b: &NodeAddr) {
    let ba = &RespBackend::new(a.clone(), cfg(secs(2)));
    let bb = &RespBackend::new(b.clone(), cfg(secs(2)));
    let p = ba.probe().await.expect("probe");
    assert_eq!(p.status, ProbeStatus::Pong);
    assert_eq!(ba.lease_capable(), Some(p.clock.is_some()));

    let info = ba.info().await.expect("info");
    assert!(matches!(info.role, ReportRole::Master { .. }), "{info:?}");
    assert_eq!(info.run_id.len(), 40);

    bb.replicate_from(a).await.expect("REPLICAOF host port");
    wait_until(secs(20), "the replica's link to come up", || async move {
        let info = bb.info().await.ok()?;
        match info.role {
            ReportRole::Replica {
                master, link_up, ..
            } if master == *a && link_up => Some(()),
            _ => None,
        }
    })
    .await;
    wait_until(secs(20), "the master to list its replica", || async move {
        let info = ba.info().await.ok()?;
        match info.role {
            ReportRole::Master { replicas } if replicas.iter().any(|r| r.addr.port == b.port) => {
                Some(())
            }
            _ => None,
        }
    })
    .await;
    let master_report = ba.info().await.expect("master info");
    let replica_report = bb.info().await.expect("replica info");
    assert_eq!(replica_report.replid, master_report.replid);

    bb.promote().await.expect("REPLICAOF NO ONE");
    let info = bb.info().await.expect("info after promotion");
    assert!(matches!(info.role, ReportRole::Master { .. }), "{info:?}");
    // Psync2: the promoted node keeps its old master's history as replid2.
    assert_eq!(info.replid2, master_report.replid);
    assert!(info.second_repl_offset >= 0);
}

/// A write from another client stays blocked while writes are paused.
async fn pause_blocks_writes(addr: &NodeAddr) {
    let b = RespBackend::new(addr.clone(), cfg(secs(2)));
    b.pause_writes(secs(30)).await.expect("CLIENT PAUSE");
    let mut client = TcpStream::connect((addr.host.as_str(), addr.port))
        .await
        .expect("connect");
    let mut out = BytesMut::new();
    resp::encode_command(&["SET", "k", "v"], &mut out);
    client.write_all(&out).await.expect("write");
    let mut buf = [0u8; 64];
    let early = tokio::time::timeout(Duration::from_millis(300), client.read(&mut buf)).await;
    assert!(early.is_err(), "SET answered during the pause: {early:?}");
    // Probes and INFO still work while writes are paused.
    assert_eq!(b.probe().await.expect("probe").status, ProbeStatus::Pong);
    b.info().await.expect("info during pause");
    b.unpause_writes().await.expect("CLIENT UNPAUSE");
    let n = tokio::time::timeout(secs(5), client.read(&mut buf))
        .await
        .expect("SET answered after the unpause")
        .expect("read");
    assert_eq!(&buf[..n], b"+OK\r\n");
}

/// PUBLISH through the backend reaches `subscribe`; oversized payloads are dropped.
async fn publish_reaches_subscriber(addr: &NodeAddr) {
    let b = RespBackend::new(addr.clone(), cfg(secs(2)));
    let (tx, mut rx) = mpsc::channel(16);
    let cancel = CancellationToken::new();
    let task = tokio::spawn(subscribe(
        addr.clone(),
        cfg(secs(2)),
        "__sentinel__:hello".to_owned(),
        tx,
        cancel.clone(),
    ));
    // The subscription starts asynchronously: publish until one message comes through.
    let deadline = Instant::now() + secs(20);
    loop {
        assert!(Instant::now() < deadline, "no hello came through");
        b.publish("__sentinel__:hello", "hello-1")
            .await
            .expect("publish");
        let got = tokio::time::timeout(Duration::from_millis(100), rx.recv()).await;
        if let Ok(Some(first)) = got {
            assert_eq!(first, "hello-1");
            break;
        }
    }
    while rx.try_recv().is_ok() {}
    b.publish("__sentinel__:hello", &"x".repeat(5000))
        .await
        .expect("publish");
    b.publish("__sentinel__:hello", "hello-2")
        .await
        .expect("publish");
    let next = tokio::time::timeout(secs(5), rx.recv())
        .await
        .expect("hello-2");
    assert_eq!(next.as_deref(), Some("hello-2"));
    cancel.cancel();
    tokio::time::timeout(secs(5), task)
        .await
        .expect("subscribe ends on cancel")
        .expect("no panic");
}

#[tokio::test]
#[ignore = "needs the vigil binary; run by .ci/run with --ignored"]
async fn vigil_replication_round_trip_through_backend() {
    let (a, b) = (start_vigil(), start_vigil());
    replication_round_trip(&a.addr, &b.addr).await;
}

#[tokio::test]
#[ignore = "needs the vigil binary; run by .ci/run with --ignored"]
async fn vigil_pause_blocks_writes_until_unpause() {
    let a = start_vigil();
    pause_blocks_writes(&a.addr).await;
}

#[tokio::test]
#[ignore = "needs the vigil binary; run by .ci/run with --ignored"]
async fn vigil_publish_reaches_subscriber() {
    let a = start_vigil();
    publish_reaches_subscriber(&a.addr).await;
}

#[tokio::test]
#[ignore = "needs redis-server"]
async fn redis_replication_round_trip_through_backend() {
    let (a, b) = (start_redis().await, start_redis().await);
    replication_round_trip(&a.addr, &b.addr).await;
}

#[tokio::test]
#[ignore = "needs redis-server"]
async fn redis_has_no_leases() {
    let a = start_redis().await;
    let b = RespBackend::new(a.addr.clone(), cfg(secs(2)));
    let p = b.probe().await.expect("probe");
    assert_eq!(p.clock, None);
    assert_eq!(b.lease_capable(), Some(false));
    assert!(!b.info().await.expect("info").lease_capable);
    let lease = LeaseGrant {
        sentinel: 1,
        start: secs(1),
        ttl: secs(2),
        majority: 2,
        run_id_prefix: "0123456789abcdef".to_owned(),
        members: 1,
    };
    assert!(matches!(
        b.grant_lease(&lease).await,
        Err(BackendError::Unsupported)
    ));
    assert!(matches!(
        b.revoke_leases().await,
        Err(BackendError::Unsupported)
    ));
    // Before any probe too: Redis' "unknown command" answer means the same.
    let fresh = RespBackend::new(a.addr.clone(), cfg(secs(2)));
    assert!(matches!(
        fresh.revoke_leases().await,
        Err(BackendError::Unsupported)
    ));
}

#[tokio::test]
#[ignore = "needs redis-server"]
async fn redis_pause_blocks_writes_until_unpause() {
    let a = start_redis().await;
    pause_blocks_writes(&a.addr).await;
}

#[tokio::test]
#[ignore = "needs redis-server"]
async fn redis_publish_reaches_subscriber() {
    let a = start_redis().await;
    publish_reaches_subscriber(&a.addr).await;
}

// ---------------------------------------------------------------------------------------------
// In-process fakes.

/// How a fake server treats one connection.
#[derive(Clone, Copy, Debug)]
enum Mode {
    /// Reads and never answers.
    Silent,
    /// Answers the first request with these bytes, then stays open and silent.
    Garbage(&'static [u8]),
    /// Answers the first request with a `+` line of this many bytes and no end.
    Endless(usize),
    /// A small RESP server; `VIGIL CLOCK` works when `lease` is true.
    Good { lease: bool },
    /// Closes the connection after the first request.
    Close,
    /// Confirms a SUBSCRIBE, then never answers again (not even PING): a hung node.
    SubscribeThenHang,
}

struct Fake {
    addr: NodeAddr,
    /// Every command received, per connection.
    log: Arc<Mutex<Vec<Vec<String>>>>,
}

/// A fake server treating its n-th connection as `modes[n]` (the last mode repeats).
async fn fake(modes: Vec<Mode>) -> Fake {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("local addr").port();
    let log = Arc::new(Mutex::new(Vec::new()));
    let log2 = log.clone();
    tokio::spawn(async move {
        let mut n = 0;
        while let Ok((stream, _)) = listener.accept().await {
            let mode = modes
                .get(n)
                .or(modes.last())
                .copied()
                .unwrap_or(Mode::Silent);
            n += 1;
            let conn_log = {
                let mut log = log2.lock().expect("log lock");
                log.push(Vec::new());
                log.len() - 1
            };
            tokio::spawn(serve(stream, mode, log2.clone(), conn_log));
        }
    });
    Fake {
        addr: NodeAddr::new("127.0.0.1", port),
        log,
    }
}

async fn serve(mut stream: TcpStream, mode: Mode, log: Arc<Mutex<Vec<Vec<String>>>>, conn: usize) {
    let mut decoder = RequestDecoder::new(Limits::default());
    let mut buf = BytesMut::new();
    let mut answered = false;
    loop {
        let args = match decoder.decode(&mut buf) {
            Ok(Some(args)) => args,
            Ok(None) => match stream.read_buf(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => continue,
            },
            Err(_) => return,
        };
        let words: Vec<String> = args
            .iter()
            .map(|a| String::from_utf8_lossy(a).to_uppercase())
            .collect();
        let is_handshake = words.first().is_some_and(|w| w == "CLIENT")
            && words.get(1).is_some_and(|w| w == "SETNAME");
        log.lock().expect("log lock")[conn].push(words.join(" "));
        let mut out = BytesMut::new();
        match mode {
            Mode::Good { lease } => reply(&words, &args, lease, &mut out),
            _ if is_handshake => Frame::ok().encode(Protocol::Resp2, &mut out),
            _ if answered => {}
            Mode::Silent => {}
            Mode::Garbage(bytes) => out.extend_from_slice(bytes),
            Mode::Endless(n) => {
                out.extend_from_slice(b"+");
                out.extend_from_slice(&vec![b'a'; n]);
            }
            Mode::Close => return,
            Mode::SubscribeThenHang => Frame::Array(vec![
                Frame::bulk(b"subscribe"),
                Frame::Bulk(args.get(1).cloned().unwrap_or_default()),
                Frame::Integer(1),
            ])
            .encode(Protocol::Resp2, &mut out),
        }
        if !is_handshake {
            answered = true;
        }
        if stream.write_all(&out).await.is_err() {
            return;
        }
    }
}

fn reply(words: &[String], args: &[bytes::Bytes], lease: bool, out: &mut BytesMut) {
    let word = |i: usize| words.get(i).map(String::as_str).unwrap_or("");
    let frame = match (word(0), word(1)) {
        ("PING", _) => Frame::simple("PONG"),
        ("VIGIL", "CLOCK") if lease => Frame::Integer(123_456),
        ("VIGIL", "LEASE" | "REVOKE") if lease => Frame::ok(),
        ("VIGIL", _) => Frame::error("ERR unknown command 'VIGIL', with args beginning with: "),
        ("INFO", _) => Frame::bulk(
            b"# Server\r\nrun_id:0123456789abcdef0123456789abcdef01234567\r\n\
              # Replication\r\nrole:master\r\nconnected_slaves:0\r\n\
              master_replid:1111111111111111111111111111111111111111\r\n\
              master_replid2:0000000000000000000000000000000000000000\r\n\
              master_repl_offset:10\r\nsecond_repl_offset:-1\r\n",
        ),
        ("SUBSCRIBE", _) => {
            let channel = args.get(1).cloned().unwrap_or_default();
            for f in [
                Frame::Array(vec![
                    Frame::bulk(b"subscribe"),
                    Frame::Bulk(channel.clone()),
                    Frame::Integer(1),
                ]),
                Frame::Array(vec![
                    Frame::bulk(b"message"),
                    Frame::Bulk(channel.clone()),
                    Frame::bulk(&[b'x'; 5000]),
                ]),
                Frame::Array(vec![
                    Frame::bulk(b"message"),
                    Frame::Bulk(channel),
                    Frame::bulk(b"hello-from-fake"),
                ]),
            ] {
                f.encode(Protocol::Resp2, out);
            }
            return;
        }
        ("PUBLISH", _) => Frame::Integer(0),
        _ => Frame::ok(),
    };
    frame.encode(Protocol::Resp2, out);
}

fn commands(fake: &Fake, conn: usize) -> Vec<String> {
    fake.log
        .lock()
        .expect("log lock")
        .get(conn)
        .cloned()
        .unwrap_or_default()
}

#[tokio::test]
async fn a_silent_node_times_out_and_the_next_call_reconnects() {
    let timeout = Duration::from_millis(300);
    let f = fake(vec![Mode::Silent, Mode::Good { lease: true }]).await;
    let b = RespBackend::new(f.addr.clone(), cfg(timeout));
    let started = Instant::now();
    let err = b.probe().await.expect_err("a silent node fails the probe");
    assert!(
        matches!(err, BackendError::Timeout(t) if t == timeout),
        "{err:?}"
    );
    assert!(started.elapsed() < secs(5), "the deadline bounds the call");
    let p = b.probe().await.expect("second connection answers");
    assert_eq!(p.status, ProbeStatus::Pong);
    assert_eq!(p.clock, Some(Duration::from_micros(123_456)));
    assert_eq!(b.lease_capable(), Some(true));
}

#[tokio::test]
async fn calls_queued_behind_a_hung_call_keep_their_deadline() {
    let timeout = Duration::from_millis(300);
    let f = fake(vec![Mode::Silent]).await;
    let b = RespBackend::new(f.addr.clone(), cfg(timeout));
    let started = Instant::now();
    let (r1, r2, r3) = tokio::join!(b.info(), b.promote(), b.probe());
    assert!(matches!(r1, Err(BackendError::Timeout(_))), "{r1:?}");
    assert!(matches!(r2, Err(BackendError::Timeout(_))), "{r2:?}");
    assert!(matches!(r3, Err(BackendError::Timeout(_))), "{r3:?}");
    assert!(started.elapsed() < secs(5), "no call waits for the others");
}

#[tokio::test]
async fn garbage_replies_are_protocol_errors_and_the_connection_is_replaced() {
    let cases: [&'static [u8]; 4] = [
        b"?what\r\n",
        b"$99999999999\r\n",
        b"*5000000\r\n",
        b":notanumber\r\n",
    ];
    for garbage in cases {
        let f = fake(vec![Mode::Garbage(garbage), Mode::Good { lease: false }]).await;
        let b = RespBackend::new(f.addr.clone(), cfg(secs(2)));
        let err = b.info().await.expect_err("garbage is an error");
        assert!(
            matches!(err, BackendError::Protocol(_)),
            "{garbage:?}: {err:?}"
        );
        let info = b.info().await.expect("the next call reconnects");
        assert_eq!(info.offset, 10);
    }
}

#[tokio::test]
async fn an_endless_reply_is_cut_off_at_the_limit() {
    let f = fake(vec![
        Mode::Endless(5 * 1024 * 1024),
        Mode::Good { lease: false },
    ])
    .await;
    let b = RespBackend::new(f.addr.clone(), cfg(secs(10)));
    let err = b.probe().await.expect_err("an oversized reply is an error");
    assert!(matches!(err, BackendError::Protocol(_)), "{err:?}");
    b.probe().await.expect("the next call reconnects");
}

#[tokio::test]
async fn a_wrong_reply_type_or_error_fails_the_probe() {
    // Each `Garbage` connection answers the pipelined PING and VIGIL CLOCK in one write.
    let f = fake(vec![
        Mode::Garbage(b"+PANG\r\n:1\r\n"),
        Mode::Garbage(b"-NOAUTH Authentication required.\r\n-NOAUTH\r\n"),
        Mode::Garbage(b"$4\r\nPONG\r\n:1\r\n"),
    ])
    .await;
    let b = RespBackend::new(f.addr.clone(), cfg(Duration::from_millis(500)));
    let err = b.probe().await.expect_err("+PANG");
    assert!(matches!(err, BackendError::Protocol(_)), "{err:?}");
    // A connection whose probe failed is never reused, even when its stream is in sync.
    let err = b.probe().await.expect_err("-NOAUTH");
    assert!(
        matches!(err, BackendError::Refused(ref e) if e.starts_with("NOAUTH")),
        "{err:?}"
    );
    let err = b.probe().await.expect_err("a bulk PONG");
    assert!(matches!(err, BackendError::Protocol(_)), "{err:?}");
}

#[tokio::test]
async fn loading_and_masterdown_are_valid_probe_replies() {
    for (text, status) in [
        (
            &b"-LOADING Redis is loading\r\n-LOADING Redis is loading\r\n"[..],
            ProbeStatus::Loading,
        ),
        (
            &b"-MASTERDOWN Link with MASTER is down\r\n:5\r\n"[..],
            ProbeStatus::MasterDown,
        ),
    ] {
        let f = fake(vec![Mode::Garbage(text)]).await;
        let b = RespBackend::new(f.addr.clone(), cfg(secs(2)));
        let p = b.probe().await.expect("a valid reply");
        assert_eq!(p.status, status);
    }
}

#[tokio::test]
async fn lease_capability_is_redetected_after_a_reconnect() {
    let f = fake(vec![
        Mode::Good { lease: false },
        Mode::Good { lease: true },
    ])
    .await;
    let b = RespBackend::new(f.addr.clone(), cfg(secs(2)));
    assert_eq!(b.lease_capable(), None);
    let p = b.probe().await.expect("probe");
    assert_eq!((p.status, p.clock), (ProbeStatus::Pong, None));
    assert_eq!(b.lease_capable(), Some(false));
    b.probe().await.expect("probe");
    assert_eq!(
        commands(&f, 0),
        ["CLIENT SETNAME VIGIL-TEST", "PING", "VIGIL CLOCK", "PING"],
        "VIGIL CLOCK is not sent again once unknown"
    );
    let lease = LeaseGrant {
        sentinel: 3,
        start: Duration::from_micros(123_456),
        ttl: Duration::from_millis(2500),
        majority: 2,
        run_id_prefix: "0123456789abcdef".to_owned(),
        members: 1,
    };
    assert!(matches!(
        b.grant_lease(&lease).await,
        Err(BackendError::Unsupported)
    ));
    assert!(matches!(
        b.revoke_leases().await,
        Err(BackendError::Unsupported)
    ));
    // The control connection (the second one) must not have seen the lease nor the revocation:
    // they were known to fail.
    assert_eq!(commands(&f, 1), Vec::<String>::new());

    // The server is replaced: a failed call drops the connection, the reconnect re-detects.
    let f2 = fake(vec![Mode::Close, Mode::Good { lease: true }]).await;
    let b = RespBackend::new(f2.addr.clone(), cfg(secs(2)));
    assert!(b.probe().await.is_err());
    let p = b.probe().await.expect("probe after reconnect");
    assert_eq!(p.clock, Some(Duration::from_micros(123_456)));
    assert_eq!(b.lease_capable(), Some(true));
    b.grant_lease(&lease).await.expect("lease granted");
    b.revoke_leases().await.expect("leases revoked");
    assert_eq!(
        commands(&f2, 2),
        [
            "CLIENT SETNAME VIGIL-TEST",
            "VIGIL LEASE 3 123456 2500 2 0123456789ABCDEF 1",
            "VIGIL REVOKE"
        ]
    );
}

#[tokio::test]
async fn a_closed_port_fails_fast() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("local addr").port()
    };
    let b = RespBackend::new(NodeAddr::new("127.0.0.1", port), cfg(secs(10)));
    let started = Instant::now();
    let err = b.probe().await.expect_err("nothing listens");
    assert!(matches!(err, BackendError::Connect { .. }), "{err:?}");
    assert!(started.elapsed() < secs(5), "refused, not timed out");
}

#[tokio::test]
async fn subscribe_reconnects_and_drops_oversized_messages() {
    let f = fake(vec![Mode::Close, Mode::Good { lease: false }]).await;
    let (tx, mut rx) = mpsc::channel(4);
    let cancel = CancellationToken::new();
    let task = tokio::spawn(subscribe(
        f.addr.clone(),
        cfg(secs(2)),
        "__sentinel__:hello".to_owned(),
        tx,
        cancel.clone(),
    ));
    let msg = tokio::time::timeout(secs(10), rx.recv())
        .await
        .expect("a message after the reconnect");
    assert_eq!(msg.as_deref(), Some("hello-from-fake"));
    assert_eq!(
        commands(&f, 1).last().map(String::as_str),
        Some("SUBSCRIBE __SENTINEL__:HELLO")
    );
    cancel.cancel();
    tokio::time::timeout(secs(5), task)
        .await
        .expect("subscribe ends on cancel")
        .expect("no panic");
}

#[tokio::test]
async fn subscribe_reconnects_when_a_subscribed_node_stops_answering_pings() {
    let f = fake(vec![Mode::SubscribeThenHang, Mode::Good { lease: false }]).await;
    let (tx, mut rx) = mpsc::channel(4);
    let cancel = CancellationToken::new();
    let task = tokio::spawn(subscribe(
        f.addr.clone(),
        cfg(Duration::from_millis(200)),
        "ch".to_owned(),
        tx,
        cancel.clone(),
    ));
    let msg = tokio::time::timeout(secs(10), rx.recv())
        .await
        .expect("a message from the second connection");
    assert_eq!(msg.as_deref(), Some("hello-from-fake"));
    assert_eq!(commands(&f, 0).last().map(String::as_str), Some("PING"));
    cancel.cancel();
    tokio::time::timeout(secs(5), task)
        .await
        .expect("subscribe ends on cancel")
        .expect("no panic");
}

#[tokio::test]
async fn subscribe_ends_when_the_receiver_is_gone() {
    let f = fake(vec![Mode::Good { lease: false }]).await;
    let (tx, rx) = mpsc::channel(4);
    drop(rx);
    let task = tokio::spawn(subscribe(
        f.addr.clone(),
        cfg(secs(2)),
        "ch".to_owned(),
        tx,
        CancellationToken::new(),
    ));
    tokio::time::timeout(secs(5), task)
        .await
        .expect("subscribe ends once its receiver is dropped")
        .expect("no panic");
}
