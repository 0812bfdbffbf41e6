//! Voter-set changes on real sentinels: sentinels join the first one through an agreed change,
//! an operator forgets a dead sentinel with `vigil admin sentinels forget`, a new sentinel takes
//! its place, and the failover after that counts the new set.

use std::process::{Command, Output, Stdio};
use std::time::Duration;

use crate::harness::wait_until;
use crate::sentinel::{Cluster, Kind};

const DEADLINE: Duration = Duration::from_secs(30);

fn admin(c: &Cluster, at: usize, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_vigil"))
        .arg("admin")
        .arg("--sentinel")
        .arg(format!("https://{}", c.sentinels[at].grpc))
        .arg("--tls-ca")
        .arg(c.certs.path().join("ca.crt"))
        .args(["--timeout-ms", "20000"])
        .args(args)
        .env_remove("VIGIL_SENTINEL")
        .stdin(Stdio::null())
        .output()
        .expect("run vigil admin")
}

/// Whether every sentinel in `who` published the voter set of `epoch` with `voters` members.
fn published(c: &Cluster, who: &[usize], epoch: u64, voters: usize) -> bool {
    let events = c.events.of("+voters");
    who.iter().all(|i| {
        events.iter().any(|(j, payload)| {
            // "epoch <n> voters <id>,<id>,..."
            let mut w = payload.split(' ');
            j == i
                && w.nth(1) == Some(epoch.to_string().as_str())
                && w.nth(1).is_some_and(|ids| ids.split(',').count() == voters)
        })
    })
}

#[test]
fn a_dead_sentinel_is_forgotten_and_a_new_one_takes_its_place() {
    let mut c = Cluster::start(Kind::Vigil, 3, Duration::from_millis(1000));
    // s0 founded the cluster (epoch 1); s1 and s2 were admitted one change at a time.
    wait_until(DEADLINE, || published(&c, &[0, 1, 2], 3, 3));

    // Forgetting the sentinel that answers, or one nobody knows, is refused in one line.
    let own = admin(&c, 0, &["sentinels", "forget", "s0"]);
    assert!(!own.status.success());
    let err = String::from_utf8_lossy(&own.stderr);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("ask another one"), "{err}");
    let unknown = admin(&c, 0, &["sentinels", "forget", "s9"]);
    assert!(!unknown.status.success());
    assert!(
        String::from_utf8_lossy(&unknown.stderr).contains("no such sentinel"),
        "{}",
        String::from_utf8_lossy(&unknown.stderr)
    );

    // s2 dies for good; the operator forgets it at s0 and the call answers once it is agreed.
    c.sentinels[2].kill9();
    let ok = admin(&c, 0, &["sentinels", "forget", "s2"]);
    let out = String::from_utf8_lossy(&ok.stdout);
    assert!(
        ok.status.success(),
        "{out} {}\n{}",
        String::from_utf8_lossy(&ok.stderr),
        c.dump()
    );
    assert!(out.contains("membership epoch 4"), "{out}");
    wait_until(DEADLINE, || published(&c, &[0, 1], 4, 2));
    assert!(
        c.events.of("-sentinel").iter().any(|(i, _)| *i == 1),
        "{}",
        c.dump()
    );

    // A new sentinel joins through s0: three voters again, under epoch 5.
    let s3 = c.add_sentinel();
    wait_until(DEADLINE, || published(&c, &[0, 1, s3], 5, 3));

    // s1 dies too. s0 and s3 are two of the three voters: the master's death is failed over.
    c.sentinels[1].kill9();
    let old = c.nodes[0].addr;
    c.nodes[0].kill9();
    wait_until(DEADLINE, || {
        c.agreed(&[0, s3]).is_some_and(|(m, _)| m != old)
    });
    assert_eq!(c.events.of("+promoted-slave").len(), 1, "{}", c.dump());
}
