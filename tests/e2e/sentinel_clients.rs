//! Existing Redis clients' Sentinel support against Vigil's RESP sentinel port: redis-rs'
//! `sentinel` module, redis-py's `redis.sentinel.Sentinel` and redis-cli, unchanged, discover
//! the master and follow a `kill -9` failover.

use std::process::Command;
use std::time::{Duration, Instant};

use redis::sentinel::{SentinelClient, SentinelServerType};

use crate::sentinel::{Cluster, GROUP, Kind};

const DEADLINE: Duration = Duration::from_secs(30);

/// Writes through `client` until a write succeeds; returns the port of the master it used.
fn write_until_ok(client: &mut SentinelClient, key: &str) -> u16 {
    let end = Instant::now() + DEADLINE;
    loop {
        let attempt = client.get_client().and_then(|c| {
            let port = match &c.get_connection_info().addr {
                redis::ConnectionAddr::Tcp(_, p) => *p,
                _ => 0,
            };
            let mut conn = c.get_connection_with_timeout(Duration::from_millis(500))?;
            redis::cmd("SET").arg(key).arg("1").query::<()>(&mut conn)?;
            Ok(port)
        });
        match attempt {
            Ok(port) => return port,
            Err(e) if Instant::now() < end => {
                let _ = e;
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(e) => panic!("no write succeeded within {DEADLINE:?}: {e}"),
        }
    }
}

#[test]
fn redis_rs_sentinel_client_discovers_the_master_and_follows_a_failover() {
    let mut c = Cluster::start(Kind::Vigil, 3, Duration::from_millis(1000));
    let urls: Vec<String> = c
        .sentinels
        .iter()
        .map(|s| format!("redis://{}", s.resp))
        .collect();
    let mut client =
        SentinelClient::build(urls, GROUP.to_string(), None, SentinelServerType::Master)
            .expect("sentinel client");
    let old = c.nodes[0].addr.port();
    assert_eq!(write_until_ok(&mut client, "before"), old);
    c.nodes[0].kill9();
    let new = write_until_ok(&mut client, "after");
    assert_ne!(new, old, "the write went to the dead master's port");
    let ni = c
        .nodes
        .iter()
        .position(|n| n.addr.port() == new)
        .expect("a replica became the master");
    assert_eq!(c.nodes[ni].role().map(|r| r.0), Some("master".into()));
}

#[test]
#[ignore = "needs redis-cli; run by .ci/run with --ignored"]
fn redis_cli_reads_the_master_address_like_from_redis_sentinel() {
    let c = Cluster::start(Kind::Vigil, 3, Duration::from_millis(1000));
    let out = Command::new("redis-cli")
        .args(["-p", &c.sentinels[1].resp.port().to_string()])
        .args(["SENTINEL", "get-master-addr-by-name", GROUP])
        .output();
    let out = out.expect("redis-cli is not installed");
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        text,
        format!("127.0.0.1\n{}\n", c.nodes[0].addr.port()),
        "redis-cli printed {text:?}"
    );
}

#[test]
#[ignore = "needs python3 with the redis package (pip install redis); run by .ci/run with --ignored"]
fn redis_py_sentinel_discovers_the_master_and_follows_a_failover() {
    let mut c = Cluster::start(Kind::Vigil, 3, Duration::from_millis(1000));
    let sentinels: Vec<String> = c
        .sentinels
        .iter()
        .map(|s| format!("('127.0.0.1', {})", s.resp.port()))
        .collect();
    let script = |phase: &str| {
        format!(
            r#"
import sys, time
from redis.sentinel import Sentinel
s = Sentinel([{}], socket_timeout=0.5)
end = time.time() + 30
while True:
    try:
        host, port = s.discover_master('{GROUP}')
        m = s.master_for('{GROUP}', socket_timeout=0.5)
        m.set('{phase}', '1')
        assert len(s.discover_slaves('{GROUP}')) >= 1
        print(port)
        break
    except Exception as e:
        if time.time() > end:
            raise
        time.sleep(0.05)
"#,
            sentinels.join(", ")
        )
    };
    let run = |phase: &str| -> u16 {
        let out = Command::new("python3")
            .args(["-c", &script(phase)])
            .output()
            .expect("python3");
        assert!(
            out.status.success(),
            "redis-py failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .expect("a port")
    };
    let old = c.nodes[0].addr.port();
    assert_eq!(run("before"), old);
    c.nodes[0].kill9();
    let new = run("after");
    assert_ne!(new, old);
}
