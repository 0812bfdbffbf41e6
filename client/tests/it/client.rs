//! `Client` against fake data nodes (scripted replies) and real `vigil datanode` processes.

use std::time::Duration;

use vigil_client::{Client, ClientError, ClientOptions, Master, MasterWatcher, ReadPolicy};

use crate::fake::FakeSentinel;
use crate::nodes::{FakeNode, Mode, VigilNode, wait_until};
use crate::watcher::opts;

const G: &str = "mymaster";
const READONLY: &str = "READONLY You can't write against a read only replica.";
const NOLEASE: &str =
    "NOLEASE this master holds no valid write lease from a majority of its sentinels";

/// A client of `G` through `sentinel`, with short timeouts.
async fn client(sentinel: &FakeSentinel, policy: ReadPolicy) -> Client {
    let watcher = MasterWatcher::connect(vec![sentinel.uri.clone()], vec![G.to_owned()], opts())
        .await
        .expect("watcher");
    let opts = ClientOptions {
        read_policy: policy,
        dc: Some("east".into()),
        write_timeout: Duration::from_secs(5),
        password: None,
        connect_timeout: Duration::from_millis(500),
        response_timeout: Duration::from_secs(2),
        replicated: None,
    };
    Client::new(watcher, G.to_owned(), opts)
}

fn set(key: &str, value: &str) -> redis::Cmd {
    let mut cmd = redis::cmd("SET");
    cmd.arg(key).arg(value);
    cmd
}

fn get(key: &str) -> redis::Cmd {
    let mut cmd = redis::cmd("GET");
    cmd.arg(key);
    cmd
}

#[tokio::test]
async fn writes_go_to_the_announced_master() {
    let (n1, n2) = (
        FakeNode::start(Mode::Ok).await,
        FakeNode::start(Mode::Ok).await,
    );
    let s = FakeSentinel::start("s1").await;
    s.set_master(G, &n1.addr, 1);
    let c = client(&s, ReadPolicy::Master).await;
    let (_, used) = c.write_with_master(set("k", "1")).await.expect("write");
    assert_eq!(used.addr, n1.addr);
    assert_eq!(n1.received(), vec!["SET k 1"]);
    assert!(n2.received().is_empty());
}

#[tokio::test]
async fn readonly_makes_the_write_wait_and_retry_once_on_the_new_master() {
    let n1 = FakeNode::start(Mode::Refuse(READONLY)).await;
    let n2 = FakeNode::start(Mode::Ok).await;
    let s = FakeSentinel::start("s1").await;
    s.set_master(G, &n1.addr, 1);
    let c = client(&s, ReadPolicy::Master).await;
    let write = tokio::spawn({
        let c = c.clone();
        async move { c.write_with_master(set("k", "1")).await }
    });
    n1.wait_received(1).await;
    s.announce(G, &n2.addr, 2).await;
    let (_, used) = write.await.expect("join").expect("write");
    assert_eq!(
        used,
        Master {
            addr: n2.addr.clone(),
            epoch: 2
        }
    );
    assert_eq!(
        n1.received(),
        vec!["SET k 1"],
        "tried once on the old master"
    );
    assert_eq!(
        n2.received(),
        vec!["SET k 1"],
        "retried once on the new master"
    );
}

#[tokio::test]
async fn nolease_makes_the_write_wait_for_the_new_master() {
    let n1 = FakeNode::start(Mode::Refuse(NOLEASE)).await;
    let n2 = FakeNode::start(Mode::Ok).await;
    let s = FakeSentinel::start("s1").await;
    s.set_master(G, &n1.addr, 1);
    let c = client(&s, ReadPolicy::Master).await;
    let write = tokio::spawn({
        let c = c.clone();
        async move { c.write_with_master(set("k", "1")).await }
    });
    n1.wait_received(1).await;
    s.announce(G, &n2.addr, 2).await;
    let (_, used) = write.await.expect("join").expect("write");
    assert_eq!(used.addr, n2.addr);
    assert_eq!(n2.received(), vec!["SET k 1"]);
}

#[tokio::test]
async fn a_write_with_no_new_master_times_out() {
    let n1 = FakeNode::start(Mode::Refuse(READONLY)).await;
    let s = FakeSentinel::start("s1").await;
    s.set_master(G, &n1.addr, 1);
    let watcher = MasterWatcher::connect(vec![s.uri.clone()], vec![G.to_owned()], opts())
        .await
        .expect("watcher");
    let opts = ClientOptions {
        write_timeout: Duration::from_millis(400),
        ..ClientOptions::default()
    };
    let c = Client::new(watcher, G.to_owned(), opts);
    let got = c.write(set("k", "1")).await;
    assert!(matches!(got, Err(ClientError::Timeout)), "{got:?}");
    // A refused (not applied) write is retried on the same master every
    // `SAME_MASTER_RETRY` while no newer master is announced, and never after the deadline.
    let tries = n1.received();
    assert!(
        (2..=6).contains(&tries.len()) && tries.iter().all(|c| c == "SET k 1"),
        "{tries:?}"
    );
}

#[tokio::test]
async fn a_write_without_any_master_reports_no_master() {
    let s = FakeSentinel::start("s1").await;
    let watcher = MasterWatcher::connect(vec![s.uri.clone()], vec![G.to_owned()], opts())
        .await
        .expect("watcher");
    let opts = ClientOptions {
        write_timeout: Duration::from_millis(300),
        ..ClientOptions::default()
    };
    let c = Client::new(watcher, G.to_owned(), opts);
    let got = c.write(set("k", "1")).await;
    assert!(matches!(got, Err(ClientError::NoMaster { .. })), "{got:?}");
}

#[tokio::test]
async fn a_connection_lost_after_sending_is_unknown_and_not_retried() {
    let n1 = FakeNode::start(Mode::Drop).await;
    let n2 = FakeNode::start(Mode::Ok).await;
    let s = FakeSentinel::start("s1").await;
    s.set_master(G, &n1.addr, 1);
    let c = client(&s, ReadPolicy::Master).await;
    let got = c.write(set("k", "1")).await;
    assert!(matches!(got, Err(ClientError::Unknown(_))), "{got:?}");
    s.announce(G, &n2.addr, 2).await;
    c.watcher()
        .wait_for_newer(G, 1, Duration::from_secs(10))
        .await
        .expect("new master");
    assert_eq!(n1.received(), vec!["SET k 1"]);
    assert!(n2.received().is_empty(), "an unknown write was retried");
}

#[tokio::test]
async fn a_refused_connection_waits_for_the_new_master() {
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .to_string();
    let n2 = FakeNode::start(Mode::Ok).await;
    let s = FakeSentinel::start("s1").await;
    s.set_master(G, &dead, 1);
    let c = client(&s, ReadPolicy::Master).await;
    c.watcher()
        .wait_for(G, Duration::from_secs(10))
        .await
        .expect("master");
    let write = tokio::spawn({
        let c = c.clone();
        async move { c.write_with_master(set("k", "1")).await }
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    s.announce(G, &n2.addr, 2).await;
    let (_, used) = write.await.expect("join").expect("write");
    assert_eq!(used.addr, n2.addr);
    assert_eq!(n2.received(), vec!["SET k 1"]);
}

#[tokio::test]
async fn reads_are_retried_on_the_new_master() {
    let n1 = FakeNode::start(Mode::Drop).await;
    let n2 = FakeNode::start(Mode::Ok).await;
    let s = FakeSentinel::start("s1").await;
    s.set_master(G, &n1.addr, 1);
    let c = client(&s, ReadPolicy::Master).await;
    let read = tokio::spawn({
        let c = c.clone();
        async move { c.read(get("k")).await }
    });
    n1.wait_received(1).await;
    s.announce(G, &n2.addr, 2).await;
    let got = read.await.expect("join").expect("read");
    assert_eq!(got, redis::Value::Nil);
    assert_eq!(n2.received(), vec!["GET k"]);
}

#[tokio::test]
async fn replica_preferred_reads_go_to_a_replica_and_fall_back_to_the_master() {
    let m = FakeNode::start(Mode::Ok).await;
    let r = FakeNode::start(Mode::Ok).await;
    let s = FakeSentinel::start("s1").await;
    s.set_master(G, &m.addr, 1);
    s.set_replicas(G, &[&r.addr]);
    let c = client(&s, ReadPolicy::ReplicaPreferred).await;
    c.watcher()
        .wait_for(G, Duration::from_secs(10))
        .await
        .expect("master");
    let v: Option<String> = c.get("k").await.expect("read");
    assert_eq!(v, None);
    assert_eq!(r.received(), vec!["GET k"]);
    assert!(m.received().is_empty());
    // A replica that fails is left for the master.
    r.set_mode(Mode::Drop);
    let v: Option<String> = c.get("k").await.expect("read");
    assert_eq!(v, None);
    assert_eq!(m.received(), vec!["GET k"]);
    // Writes never go to replicas.
    c.set("k", "v").await.expect("write");
    assert_eq!(m.received(), vec!["GET k", "SET k v"]);
}

#[tokio::test]
async fn same_dc_reads_go_to_a_replica_of_the_clients_dc_or_else_to_the_master() {
    let m = FakeNode::start(Mode::Ok).await;
    let west = FakeNode::start(Mode::Ok).await;
    let east = FakeNode::start(Mode::Ok).await;
    let s = FakeSentinel::start("s1").await;
    s.set_master(G, &m.addr, 1);
    s.set_replicas_in(G, &[(&west.addr, "west"), (&east.addr, "east")]);
    let c = client(&s, ReadPolicy::SameDc).await;
    c.watcher()
        .wait_for(G, Duration::from_secs(10))
        .await
        .expect("master");
    for _ in 0..8 {
        let _: Option<String> = c.get("k").await.expect("read");
    }
    assert_eq!(east.received().len(), 8, "every read on the east replica");
    assert!(west.received().is_empty() && m.received().is_empty());
    // With no replica in its DC, the client reads from the master, never across.
    let s2 = FakeSentinel::start("s2").await;
    s2.set_master(G, &m.addr, 1);
    s2.set_replicas_in(G, &[(&west.addr, "west")]);
    let c2 = client(&s2, ReadPolicy::SameDc).await;
    c2.watcher()
        .wait_for(G, Duration::from_secs(10))
        .await
        .expect("master");
    let _: Option<String> = c2.get("k").await.expect("read");
    assert!(west.received().is_empty());
    assert_eq!(m.received(), vec!["GET k"]);
}

#[tokio::test]
async fn connections_to_the_old_master_are_closed_on_a_change() {
    let n1 = FakeNode::start(Mode::Ok).await;
    let n2 = FakeNode::start(Mode::Ok).await;
    let s = FakeSentinel::start("s1").await;
    s.set_master(G, &n1.addr, 1);
    let c = client(&s, ReadPolicy::Master).await;
    c.set("k", "1").await.expect("write");
    assert_eq!(n1.open_connections(), 1);
    s.announce(G, &n2.addr, 2).await;
    wait_until(|| n1.open_connections() == 0).await;
    c.set("k", "2").await.expect("write");
    assert_eq!(n2.received(), vec!["SET k 2"]);
}

#[tokio::test]
async fn error_replies_are_returned_as_they_are() {
    let n1 = FakeNode::start(Mode::Refuse(
        "WRONGTYPE Operation against a key holding the wrong kind of value",
    ))
    .await;
    let s = FakeSentinel::start("s1").await;
    s.set_master(G, &n1.addr, 1);
    let c = client(&s, ReadPolicy::Master).await;
    let got = c.write(set("k", "1")).await;
    match got {
        Err(ClientError::Redis(e)) => assert_eq!(e.code(), Some("WRONGTYPE")),
        other => panic!("{other:?}"),
    }
}

// Real data nodes.

/// A master and a linked replica.
async fn pair() -> (VigilNode, VigilNode) {
    let m = VigilNode::start(&[]);
    let r = VigilNode::start(&["--replicaof", &m.addr]);
    (m, r)
}

#[tokio::test]
#[ignore = "needs the vigil binary; run by .ci/run with --ignored"]
async fn vigil_writes_go_to_the_master() {
    let (m, r) = pair().await;
    r.wait_linked().await;
    let s = FakeSentinel::start("s1").await;
    s.set_master(G, &m.addr, 1);
    let c = client(&s, ReadPolicy::Master).await;
    let (_, used) = c.write_with_master(set("k", "v")).await.expect("write");
    assert_eq!(used.addr, m.addr);
    assert_eq!(m.get("k").await.as_deref(), Some("v"));
    let v: Option<String> = c.get("k").await.expect("read");
    assert_eq!(v.as_deref(), Some("v"));
}

#[tokio::test]
#[ignore = "needs the vigil binary; run by .ci/run with --ignored"]
async fn vigil_writes_follow_a_failover_and_succeed_only_where_applied() {
    let (m, r) = pair().await;
    r.wait_linked().await;
    let s = FakeSentinel::start("s1").await;
    s.set_master(G, &m.addr, 1);
    let c = client(&s, ReadPolicy::Master).await;
    c.watcher()
        .wait_for(G, Duration::from_secs(10))
        .await
        .expect("master");
    let writer = tokio::spawn({
        let c = c.clone();
        async move {
            let mut acked = Vec::new();
            for i in 0..150u32 {
                if let Ok((_, used)) = c
                    .write_with_master(set(&format!("k{i}"), &i.to_string()))
                    .await
                {
                    acked.push((i, used));
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            acked
        }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    // Fail over: promote the replica, then announce it.
    r.cmd(&["REPLICAOF", "NO", "ONE"]).await;
    s.announce(G, &r.addr, 2).await;
    let acked = writer.await.expect("join");
    assert!(
        acked.iter().any(|(_, u)| u.addr == m.addr),
        "no write on the first master"
    );
    let last = acked.last().expect("some writes acked");
    assert_eq!(last.1.addr, r.addr, "writes did not move to the new master");
    for (i, used) in &acked {
        let node = if used.addr == m.addr { &m } else { &r };
        let got = node.get(&format!("k{i}")).await;
        assert_eq!(
            got,
            Some(i.to_string()),
            "write {i} acked by {} is not there",
            used.addr
        );
    }
}

#[tokio::test]
#[ignore = "needs the vigil binary; run by .ci/run with --ignored"]
async fn vigil_readonly_from_a_demoted_master_waits_for_the_announced_master() {
    let (m, r) = pair().await;
    r.wait_linked().await;
    let s = FakeSentinel::start("s1").await;
    s.set_master(G, &m.addr, 1);
    let c = client(&s, ReadPolicy::Master).await;
    c.set("before", "1")
        .await
        .expect("write on the first master");
    // The failover happens on the nodes before any sentinel announces it.
    r.cmd(&["REPLICAOF", "NO", "ONE"]).await;
    m.replicaof(&r.addr).await;
    let write = tokio::spawn({
        let c = c.clone();
        async move { c.write_with_master(set("after", "2")).await }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !write.is_finished(),
        "the write did not wait for the new master"
    );
    s.announce(G, &r.addr, 2).await;
    let (_, used) = write.await.expect("join").expect("write");
    assert_eq!(used.addr, r.addr);
    assert_eq!(r.get("after").await.as_deref(), Some("2"));
}
