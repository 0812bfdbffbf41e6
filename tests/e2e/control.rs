//! The control plane end to end: `WatchMaster` subscribers on every sentinel over gRPC with TLS,
//! and `vigil-client` writing through a `kill -9` failover, against real sentinels and data
//! nodes.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use tonic::transport::{Certificate, Channel, ClientTlsConfig};
use vigil_client::{Client, ClientOptions, ClientTls, MasterWatcher, WatcherOptions};
use vigil_proto::control::{
    MasterChanged, SentinelControlClient, WatchMasterRequest, master_event::Kind as EventKind,
};

use crate::sentinel::{Cluster, GROUP, Kind, text, try_cmd};

const DEADLINE: Duration = Duration::from_secs(30);

pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

pub async fn control(c: &Cluster, i: usize) -> SentinelControlClient<Channel> {
    let ca = std::fs::read(c.certs.path().join("ca.crt")).expect("ca.crt");
    let tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(ca))
        .domain_name("127.0.0.1");
    let url = format!("https://{}", c.sentinels[i].grpc);
    let end = Instant::now() + DEADLINE;
    loop {
        let channel = Channel::from_shared(url.clone())
            .expect("uri")
            .tls_config(tls.clone())
            .expect("tls config")
            .connect()
            .await;
        match channel {
            Ok(ch) => return SentinelControlClient::new(ch),
            Err(e) if Instant::now() > end => panic!("cannot reach {url}: {e}"),
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
}

/// Collects every `MasterChanged` of one stream into a shared list.
fn collect(
    mut client: SentinelControlClient<Channel>,
    min_epoch: u64,
) -> std::sync::Arc<std::sync::Mutex<Vec<MasterChanged>>> {
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let sink = seen.clone();
    tokio::spawn(async move {
        let req = WatchMasterRequest {
            groups: vec![GROUP.into()],
            min_epoch,
        };
        let Ok(resp) = client.watch_master(req).await else {
            return;
        };
        let mut stream = resp.into_inner();
        while let Ok(Some(ev)) = stream.message().await {
            if let Some(EventKind::Changed(c)) = ev.kind {
                sink.lock().expect("lock").push(c);
            }
        }
    });
    seen
}

#[test]
fn every_watch_master_subscriber_sees_exactly_one_change_per_failover() {
    let rt = runtime();
    let mut c = Cluster::start(Kind::Vigil, 3, Duration::from_millis(1000));
    let old = c.nodes[0].addr.to_string();
    let streams: Vec<_> = rt.block_on(async {
        let mut v = Vec::new();
        for i in 0..3 {
            v.push(collect(control(&c, i).await, 0));
        }
        v
    });
    // Each stream starts with the current master.
    crate::harness::wait_until(DEADLINE, || {
        streams.iter().all(|s| s.lock().expect("lock").len() == 1)
    });
    for s in &streams {
        let first = s.lock().expect("lock")[0].clone();
        assert!(first.initial);
        assert_eq!((first.addr.as_str(), first.config_epoch), (old.as_str(), 0));
    }
    c.nodes[0].kill9();
    crate::harness::wait_until(DEADLINE, || {
        streams.iter().all(|s| s.lock().expect("lock").len() >= 2)
    });
    // Let any duplicate arrive before counting.
    std::thread::sleep(Duration::from_millis(1500));
    let mut news = BTreeSet::new();
    for s in &streams {
        let v = s.lock().expect("lock").clone();
        assert_eq!(v.len(), 2, "one initial message and one change: {v:?}");
        let change = &v[1];
        assert!(!change.initial);
        assert!(change.config_epoch > 0);
        assert_ne!(change.addr, old);
        news.insert((change.addr.clone(), change.config_epoch));
    }
    assert_eq!(news.len(), 1, "subscribers disagree: {news:?}");
    // A late subscriber passing the epoch it knows gets the current master at once.
    let (addr, epoch) = news.into_iter().next().expect("one change");
    let late = rt.block_on(async {
        let s = collect(control(&c, 2).await, epoch);
        let end = Instant::now() + DEADLINE;
        while s.lock().expect("lock").is_empty() && Instant::now() < end {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        s.lock().expect("lock").clone()
    });
    assert_eq!(late.len(), 1);
    assert_eq!((late[0].addr.clone(), late[0].config_epoch), (addr, epoch));
    // A subscriber asking for a newer epoch than exists gets nothing older.
    let future = rt.block_on(async {
        let s = collect(control(&c, 1).await, epoch + 1);
        tokio::time::sleep(Duration::from_millis(500)).await;
        s.lock().expect("lock").clone()
    });
    assert!(future.is_empty(), "an older master was sent: {future:?}");
}

#[test]
fn vigil_client_writes_through_a_kill_9_failover_without_losing_acknowledged_writes() {
    let rt = runtime();
    let mut c = Cluster::start(Kind::Vigil, 3, Duration::from_millis(1000));
    let urls: Vec<String> = c
        .sentinels
        .iter()
        .map(|s| format!("https://{}", s.grpc))
        .collect();
    let opts = WatcherOptions {
        tls: Some(ClientTls {
            ca: c.certs.path().join("ca.crt"),
            cert_key: None,
        }),
        ..WatcherOptions::default()
    };
    let (client, watcher) = rt.block_on(async {
        let watcher = MasterWatcher::connect(urls, vec![GROUP.into()], opts)
            .await
            .expect("watcher");
        watcher
            .wait_for(GROUP, DEADLINE)
            .await
            .expect("initial master");
        // Each write waits for one replica (WAIT 1), so no acknowledged write can be lost.
        let opts = ClientOptions {
            replicated: Some((1, Duration::from_millis(500))),
            ..ClientOptions::default()
        };
        let client = Client::new(watcher.clone(), GROUP.into(), opts);
        (client, watcher)
    });
    let old = c.nodes[0].addr.to_string();
    // Write every 10 ms from a task; kill the master in the middle.
    let writer = {
        let client = client.clone();
        rt.spawn(async move {
            let mut acked: Vec<(String, String)> = Vec::new();
            let mut errors = 0u32;
            let start = Instant::now();
            let mut i = 0u64;
            while start.elapsed() < Duration::from_secs(5) {
                let key = format!("c{i}");
                i += 1;
                let mut cmd = redis::cmd("SET");
                cmd.arg(&key).arg("1");
                match client.write_with_master(cmd).await {
                    Ok((_, master)) => acked.push((key, master.addr)),
                    Err(_) => errors += 1,
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            (acked, errors)
        })
    };
    std::thread::sleep(Duration::from_millis(1000));
    c.nodes[0].kill9();
    let (acked, errors) = rt.block_on(writer).expect("writer task");
    let new = watcher.current(GROUP).expect("a master").addr;
    assert_ne!(new, old, "no failover happened");
    // Writes resumed on the new master and kept going (a write every 10 ms for the ~3 s
    // left after the failover: far more than a handful).
    let on_new = acked.iter().filter(|(_, m)| *m == new).count();
    assert!(
        on_new >= 50,
        "only {on_new} writes on the new master (errors: {errors})"
    );
    // Every acknowledged write is on the new master: each was held by a replica (WAIT 1)
    // before it was reported, and the sentinels promote the replica with the highest offset.
    let ni = c
        .nodes
        .iter()
        .position(|n| n.addr.to_string() == new)
        .expect("new master");
    let missing: Vec<&String> = acked
        .iter()
        .filter(|(k, _)| {
            c.nodes[ni].cmd(&["EXISTS", k]) != Some(vigil_proto::resp::Frame::Integer(1))
        })
        .map(|(k, _)| k)
        .collect();
    eprintln!(
        "{} writes acknowledged ({on_new} by the new master), {errors} failed, {} missing",
        acked.len(),
        missing.len()
    );
    assert!(missing.is_empty(), "acknowledged writes lost: {missing:?}");
}

#[test]
fn admin_watch_moves_to_another_sentinel_and_prints_the_failover() {
    use std::io::BufRead;
    let mut c = Cluster::start(Kind::Vigil, 3, Duration::from_millis(1000));
    let ca = c.certs.path().join("ca.crt");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_vigil"))
        .arg("admin")
        .args(["--sentinel", &format!("https://{}", c.sentinels[0].grpc)])
        .args(["--sentinel", &format!("https://{}", c.sentinels[1].grpc)])
        .arg("--tls-ca")
        .arg(&ca)
        .args(["watch", "--masters"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("vigil admin watch");
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    let stdout = child.stdout.take().expect("piped stdout");
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    let first = rx.recv_timeout(DEADLINE).expect("the current master");
    let old = c.nodes[0].addr.to_string();
    assert!(first.contains(&old) && first.contains("epoch=0"), "{first}");
    // The sentinel it watches dies, then the master: the failover arrives through another.
    c.sentinels[0].kill9();
    c.nodes[0].kill9();
    let end = Instant::now() + DEADLINE;
    let changed = loop {
        let left = end.saturating_duration_since(Instant::now());
        let line = rx.recv_timeout(left).expect("a master change");
        if line.contains("master-changed") {
            break line;
        }
    };
    let _ = child.kill();
    let _ = child.wait();
    eprintln!("watch printed: {first} / {changed}");
    assert!(!changed.contains(&old), "{changed}");
    assert!(!changed.contains("epoch=0"), "{changed}");
}

#[test]
fn a_switchover_to_a_chosen_replica_promotes_exactly_that_one() {
    let rt = runtime();
    let c = Cluster::start(Kind::Vigil, 3, Duration::from_millis(1000));
    let old = c.nodes[0].addr;
    // The first replica ranks first (a lower priority wins); the operator picks the second.
    assert_eq!(
        c.nodes[1].cmd(&["CONFIG", "SET", "replica-priority", "10"]),
        Some(vigil_proto::resp::Frame::ok())
    );
    let target = c.nodes[2].addr;
    rt.block_on(async {
        let mut client = control(&c, 1).await;
        client
            .switchover(vigil_proto::control::SwitchoverRequest {
                group: GROUP.into(),
                target: target.to_string(),
            })
            .await
    })
    .expect("switchover to a replica accepted");
    crate::harness::wait_until(DEADLINE, || {
        c.agreed(&[0, 1, 2]).is_some_and(|(m, _)| m != old)
    });
    assert_eq!(c.agreed(&[0, 1, 2]).map(|(m, _)| m), Some(target));
    // Both other nodes follow the chosen one.
    let follows = Some(("slave".to_string(), Some(target.port())));
    crate::harness::wait_until(DEADLINE, || {
        c.nodes[0].role() == follows && c.nodes[1].role() == follows
    });
    assert_eq!(
        c.nodes[2].role().map(|(r, _)| r),
        Some("master".to_string())
    );

    // The RESP port takes a target too: back to the old master, which ranks below the first
    // replica. Something that is not a replica is refused.
    let port = c.sentinels[0].resp;
    let not_replica = try_cmd(port, &["SENTINEL", "SWITCHOVER", GROUP, "127.0.0.1:1"]);
    assert!(
        not_replica
            .as_ref()
            .is_some_and(|f| text(f).contains("is not a replica of")),
        "{not_replica:?}"
    );
    let host = old.ip().to_string();
    let old_port = old.port().to_string();
    // Accepted once the previous switchover ended everywhere (`-INPROG` until then).
    crate::harness::wait_until(DEADLINE, || {
        try_cmd(port, &["SENTINEL", "SWITCHOVER", GROUP, &host, &old_port])
            .is_some_and(|f| text(&f) == "OK")
    });
    crate::harness::wait_until(DEADLINE, || {
        c.agreed(&[0, 1, 2]).is_some_and(|(m, _)| m == old)
    });
    let follows = Some(("slave".to_string(), Some(old.port())));
    crate::harness::wait_until(DEADLINE, || {
        c.nodes[1].role() == follows && c.nodes[2].role() == follows
    });
}
