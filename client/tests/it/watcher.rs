//! `MasterWatcher` against fake sentinels.

use std::time::Duration;

use vigil_client::{ClientError, Master, MasterChange, MasterWatcher, WatcherOptions};

use crate::fake::FakeSentinel;

const G: &str = "mymaster";

/// Options for tests: short timeouts, so reconnections happen quickly.
pub fn opts() -> WatcherOptions {
    WatcherOptions {
        tls: None,
        reconnect_backoff: (Duration::from_millis(20), Duration::from_millis(200)),
        keepalive_timeout: Duration::from_millis(600),
    }
}

async fn watcher(sentinels: &[&FakeSentinel]) -> MasterWatcher {
    let uris = sentinels.iter().map(|s| s.uri.clone()).collect();
    MasterWatcher::connect(uris, vec![G.to_owned()], opts())
        .await
        .expect("connect")
}

fn master(addr: &str, epoch: u64) -> Master {
    Master {
        addr: addr.to_owned(),
        epoch,
    }
}

/// Waits up to 10 s for `current(G)` to become `want`.
async fn wait_current(w: &MasterWatcher, want: &Master) {
    let mut masters = w.masters();
    let waited = tokio::time::timeout(
        Duration::from_secs(10),
        masters.wait_for(|m| m.get(G) == Some(want)),
    )
    .await;
    assert!(
        waited.is_ok(),
        "current is {:?}, want {want:?}",
        w.current(G)
    );
}

#[tokio::test]
async fn watcher_gets_the_initial_master() {
    let s1 = FakeSentinel::start("s1").await;
    s1.set_master(G, "127.0.0.1:7001", 3);
    let w = watcher(&[&s1]).await;
    let got = w
        .wait_for(G, Duration::from_secs(10))
        .await
        .expect("master");
    assert_eq!(got, master("127.0.0.1:7001", 3));
    assert_eq!(w.current(G), Some(got));
    let req = s1.wait_subscribed(1).await;
    assert_eq!(req.groups, vec![G.to_owned()]);
    assert_eq!(req.min_epoch, 0);
}

#[tokio::test]
async fn wait_for_a_group_without_master_gives_no_master() {
    let s1 = FakeSentinel::start("s1").await;
    let w = watcher(&[&s1]).await;
    let got = w.wait_for(G, Duration::from_millis(300)).await;
    assert!(
        matches!(&got, Err(ClientError::NoMaster { group }) if group == G),
        "{got:?}"
    );
}

#[tokio::test]
async fn a_higher_epoch_updates_current_and_is_broadcast() {
    let s1 = FakeSentinel::start("s1").await;
    s1.set_master(G, "127.0.0.1:7001", 3);
    let w = watcher(&[&s1]).await;
    let mut changes = w.subscribe();
    w.wait_for(G, Duration::from_secs(10))
        .await
        .expect("master");
    s1.announce(G, "127.0.0.1:7002", 4).await;
    wait_current(&w, &master("127.0.0.1:7002", 4)).await;
    let change = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let c = changes.recv().await.expect("change");
            if c.epoch == 4 {
                return c;
            }
        }
    })
    .await
    .expect("change broadcast");
    let want = MasterChange {
        group: G.to_owned(),
        addr: "127.0.0.1:7002".to_owned(),
        epoch: 4,
    };
    assert_eq!(change, want);
    let newer = w.wait_for_newer(G, 3, Duration::from_secs(1)).await;
    assert_eq!(newer.expect("newer"), master("127.0.0.1:7002", 4));
}

#[tokio::test]
async fn a_lower_or_equal_epoch_is_ignored() {
    let s1 = FakeSentinel::start("s1").await;
    s1.set_master(G, "127.0.0.1:7001", 5);
    let w = watcher(&[&s1]).await;
    w.wait_for(G, Duration::from_secs(10))
        .await
        .expect("master");
    let mut changes = w.subscribe();
    s1.send_raw(G, "127.0.0.1:7009", 4).await;
    s1.send_raw(G, "127.0.0.1:7008", 5).await;
    // A marker that is accepted, so the two above were processed before it (one stream, in order).
    s1.send_raw(G, "127.0.0.1:7003", 6).await;
    wait_current(&w, &master("127.0.0.1:7003", 6)).await;
    let first = changes.recv().await.expect("change");
    assert_eq!(
        first.epoch, 6,
        "only the newer master is a change: {first:?}"
    );
    // Waiting for something newer than what we have times out.
    let newer = w.wait_for_newer(G, 6, Duration::from_millis(200)).await;
    assert!(matches!(newer, Err(ClientError::Timeout)), "{newer:?}");
}

#[tokio::test]
async fn groups_not_watched_are_ignored() {
    let s1 = FakeSentinel::start("s1").await;
    s1.set_master(G, "127.0.0.1:7001", 1);
    let w = watcher(&[&s1]).await;
    w.wait_for(G, Duration::from_secs(10))
        .await
        .expect("master");
    s1.send_raw("other", "127.0.0.1:7100", 9).await;
    s1.send_raw(G, "127.0.0.1:7002", 2).await;
    wait_current(&w, &master("127.0.0.1:7002", 2)).await;
    assert_eq!(w.current("other"), None);
}

#[tokio::test]
async fn a_dead_stream_moves_to_the_next_sentinel_with_min_epoch() {
    let s1 = FakeSentinel::start("s1").await;
    let s2 = FakeSentinel::start("s2").await;
    s1.set_master(G, "127.0.0.1:7001", 7);
    // The second sentinel lags behind: it still has an older master.
    s2.set_master(G, "127.0.0.1:7000", 6);
    let w = watcher(&[&s1, &s2]).await;
    wait_current(&w, &master("127.0.0.1:7001", 7)).await;
    s1.stop().await;
    let req = s2.wait_subscribed(1).await;
    assert!(req.min_epoch >= 7, "min_epoch {} below 7", req.min_epoch);
    // Even if the lagging sentinel sends its old master, the watcher keeps the newer one.
    s2.send_raw(G, "127.0.0.1:7000", 6).await;
    s2.announce(G, "127.0.0.1:7002", 8).await;
    wait_current(&w, &master("127.0.0.1:7002", 8)).await;
}

#[tokio::test]
async fn an_unreachable_first_sentinel_is_skipped() {
    // A port that was free a moment ago: connecting there is refused.
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port");
    let s2 = FakeSentinel::start("s2").await;
    s2.set_master(G, "127.0.0.1:7002", 2);
    let uris = vec![format!("http://{dead}"), s2.uri.clone()];
    let w = MasterWatcher::connect(uris, vec![G.to_owned()], opts())
        .await
        .expect("connect");
    let got = w
        .wait_for(G, Duration::from_secs(10))
        .await
        .expect("master");
    assert_eq!(got, master("127.0.0.1:7002", 2));
}

#[tokio::test]
async fn keepalive_silence_moves_to_the_next_sentinel() {
    let s1 = FakeSentinel::start("s1").await;
    let s2 = FakeSentinel::start("s2").await;
    s1.set_master(G, "127.0.0.1:7001", 2);
    s2.set_master(G, "127.0.0.1:7001", 2);
    let w = watcher(&[&s1, &s2]).await;
    wait_current(&w, &master("127.0.0.1:7001", 2)).await;
    // The stream stays open but nothing comes: the watcher must notice and leave.
    s1.keepalives(false);
    let req = s2.wait_subscribed(1).await;
    assert_eq!(req.min_epoch, 2);
    s2.announce(G, "127.0.0.1:7002", 3).await;
    wait_current(&w, &master("127.0.0.1:7002", 3)).await;
}

#[tokio::test]
async fn sentinels_are_rotated_back_to_the_first() {
    let s1 = FakeSentinel::start("s1").await;
    let s2 = FakeSentinel::start("s2").await;
    s1.set_master(G, "127.0.0.1:7001", 1);
    s2.set_master(G, "127.0.0.1:7001", 1);
    let w = watcher(&[&s1, &s2]).await;
    wait_current(&w, &master("127.0.0.1:7001", 1)).await;
    s1.fail_streams().await;
    s2.wait_subscribed(1).await;
    s2.stop().await;
    let req = s1.wait_subscribed(2).await;
    assert_eq!(req.min_epoch, 1);
}

#[tokio::test]
async fn replicas_come_from_get_group() {
    let s1 = FakeSentinel::start("s1").await;
    s1.set_master(G, "127.0.0.1:7001", 1);
    s1.set_replicas(G, &["127.0.0.1:7002", "127.0.0.1:7003", "bogus"]);
    let w = watcher(&[&s1]).await;
    let replicas = w.replicas(G).await.expect("replicas");
    assert_eq!(replicas, vec!["127.0.0.1:7002", "127.0.0.1:7003"]);
    let missing = w.replicas("nope").await;
    assert!(matches!(missing, Err(ClientError::Grpc(_))), "{missing:?}");
}

#[tokio::test]
async fn bad_sentinel_uris_are_refused() {
    for uri in ["127.0.0.1:1", "ftp://x", "https://127.0.0.1:1"] {
        let got = MasterWatcher::connect(vec![uri.to_owned()], vec![], opts()).await;
        assert!(
            matches!(got, Err(ClientError::Transport(_))),
            "{uri}: accepted"
        );
    }
    let none = MasterWatcher::connect(vec![], vec![], opts()).await;
    assert!(matches!(none, Err(ClientError::Transport(_))));
}

#[tokio::test]
async fn dropping_the_watcher_closes_its_stream() {
    let s1 = FakeSentinel::start("s1").await;
    s1.set_master(G, "127.0.0.1:7001", 1);
    let w = watcher(&[&s1]).await;
    w.wait_for(G, Duration::from_secs(10))
        .await
        .expect("master");
    drop(w);
    // With the task gone, the stream's receiver is dropped and sends start failing.
    let closed = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            if s1.open_streams_closed() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert!(
        closed.is_ok(),
        "the stream stayed open after the watcher was dropped"
    );
}
