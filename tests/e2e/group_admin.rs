//! Operators' changes of groups at run time, end to end: `SENTINEL MONITOR|SET|REMOVE|RESET` on
//! the RESP port and `Monitor`/`SetOption`/`Remove`/`Reset` over gRPC, agreed by three real
//! sentinels (TLS gossip) and applied on every one of them, surviving a restart.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use bytes::BytesMut;
use tonic::Code;
use vigil_proto::control::{MonitorRequest, RemoveRequest, ResetRequest, SetOptionRequest};
use vigil_proto::resp::{self, Frame, Limits};

use crate::control::{control, runtime};
use crate::harness::wait_until;
use crate::sentinel::{Cluster, GROUP, Kind, Node, text};

const DEADLINE: Duration = Duration::from_secs(30);

/// One command, waiting up to 20 s for the answer (changes wait for the sentinels' verdict).
fn cmd(addr: SocketAddr, args: &[&str]) -> Frame {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    let mut out = BytesMut::new();
    resp::encode_command(args, &mut out);
    s.write_all(&out).expect("write");
    let mut buf = BytesMut::new();
    loop {
        if let Ok(Some((f, _))) = resp::decode(&buf, &Limits::default()) {
            return f;
        }
        let mut chunk = [0u8; 16384];
        match s.read(&mut chunk) {
            Ok(0) | Err(_) => panic!("no answer to {args:?}"),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

fn field(addr: SocketAddr, group: &str, key: &str) -> Option<String> {
    let Frame::Array(items) = cmd(addr, &["SENTINEL", "master", group]) else {
        return None;
    };
    items
        .chunks(2)
        .find(|kv| text(&kv[0]) == key)
        .map(|kv| text(&kv[1]))
}

fn master_of(addr: SocketAddr, group: &str) -> Option<String> {
    match cmd(addr, &["SENTINEL", "get-master-addr-by-name", group]) {
        Frame::Array(a) if a.len() == 2 => Some(format!("{}:{}", text(&a[0]), text(&a[1]))),
        _ => None,
    }
}

fn is_error(f: &Frame, needle: &str) -> bool {
    matches!(f, Frame::Error(e) if String::from_utf8_lossy(e).contains(needle))
}

#[test]
fn sentinel_set_monitor_remove_and_reset_reach_every_sentinel_and_survive_a_restart() {
    let mut c = Cluster::start(Kind::Vigil, 3, Duration::from_millis(1000));
    let resp: Vec<SocketAddr> = c.sentinels.iter().map(|s| s.resp).collect();

    // SET on one sentinel, applied on all.
    let f = cmd(
        resp[0],
        &[
            "SENTINEL",
            "SET",
            GROUP,
            "down-after-milliseconds",
            "2000",
            "parallel-syncs",
            "2",
        ],
    );
    assert!(
        matches!(f, Frame::Simple(ref s) if s.as_ref() == b"OK"),
        "{f:?}"
    );
    for &r in &resp {
        wait_until(DEADLINE, || {
            field(r, GROUP, "down-after-milliseconds").as_deref() == Some("2000")
                && field(r, GROUP, "parallel-syncs").as_deref() == Some("2")
        });
    }
    // Bad input: a clear error, nothing changed.
    let f = cmd(resp[1], &["SENTINEL", "SET", GROUP, "quorum", "9"]);
    assert!(is_error(&f, "quorum 9"), "{f:?}");
    let f = cmd(resp[1], &["SENTINEL", "SET", GROUP, "no-such-option", "1"]);
    assert!(is_error(&f, "unknown option"), "{f:?}");
    let f = cmd(resp[1], &["SENTINEL", "SET", "nope", "quorum", "1"]);
    assert!(is_error(&f, "No such master"), "{f:?}");
    let f = cmd(resp[1], &["SENTINEL", "SET", GROUP, "quorum"]);
    assert!(is_error(&f, "wrong number of arguments"), "{f:?}");
    assert_eq!(field(resp[2], GROUP, "quorum").as_deref(), Some("2"));

    // INFO-CACHE: the last INFO of each node, with its age.
    wait_until(DEADLINE, || {
        let Frame::Array(a) = cmd(resp[0], &["SENTINEL", "INFO-CACHE", GROUP]) else {
            return false;
        };
        let [name, Frame::Array(nodes)] = &a[..] else {
            return false;
        };
        text(name) == GROUP
            && nodes.len() == 3
            && nodes.iter().all(|n| {
                matches!(n, Frame::Array(p) if matches!(&p[..],
                    [Frame::Integer(age), info] if *age >= 0 && text(info).contains("role:")))
            })
    });

    // MONITOR a second master on another sentinel.
    let other = Node::start(Kind::Vigil, &[]);
    let (ip, port) = (other.addr.ip().to_string(), other.addr.port().to_string());
    let f = cmd(resp[1], &["SENTINEL", "MONITOR", "other", &ip, &port, "2"]);
    assert!(
        matches!(f, Frame::Simple(ref s) if s.as_ref() == b"OK"),
        "{f:?}"
    );
    for &r in &resp {
        wait_until(DEADLINE, || {
            master_of(r, "other").as_deref() == Some(&other.addr.to_string())
        });
    }
    let f = cmd(resp[2], &["SENTINEL", "MONITOR", "other", &ip, &port, "2"]);
    assert!(is_error(&f, "Duplicated master name"), "{f:?}");
    let f = cmd(resp[2], &["SENTINEL", "MONITOR", "x", &ip, "notaport", "2"]);
    assert!(is_error(&f, "Invalid port"), "{f:?}");
    let f = cmd(resp[2], &["SENTINEL", "MONITOR", "x", &ip, &port, "0"]);
    assert!(is_error(&f, "Quorum must be 1 or greater"), "{f:?}");

    // RESET answers the number of groups matched.
    let f = cmd(resp[0], &["SENTINEL", "RESET", "*"]);
    assert_eq!(f, Frame::Integer(2));
    // Replicas come back from the master's INFO.
    wait_until(DEADLINE, || {
        field(resp[0], GROUP, "num-slaves").as_deref() == Some("2")
    });

    // REMOVE on the third sentinel, gone from all.
    let f = cmd(resp[2], &["SENTINEL", "REMOVE", "other"]);
    assert!(
        matches!(f, Frame::Simple(ref s) if s.as_ref() == b"OK"),
        "{f:?}"
    );
    for &r in &resp {
        wait_until(DEADLINE, || master_of(r, "other").is_none());
    }
    let f = cmd(resp[2], &["SENTINEL", "REMOVE", "other"]);
    assert!(is_error(&f, "No such master"), "{f:?}");

    // A restarted sentinel keeps what was agreed over its config file.
    c.sentinels[0].kill9();
    c.sentinels[0].restart();
    assert_eq!(
        field(resp[0], GROUP, "down-after-milliseconds").as_deref(),
        Some("2000")
    );
    assert_eq!(master_of(resp[0], "other"), None);
    // And the cluster still agrees on one master.
    wait_until(DEADLINE, || c.agreed(&[0, 1, 2]).is_some());
    drop(other);
}

#[test]
fn grpc_admin_changes_answer_with_clear_statuses() {
    let c = Cluster::start(Kind::Vigil, 3, Duration::from_millis(1000));
    let rt = runtime();
    rt.block_on(async {
        let mut a = control(&c, 0).await;
        let mut b = control(&c, 2).await;
        // Bad input.
        let bad = [
            (
                MonitorRequest {
                    group: "x".into(),
                    master: "not an address".into(),
                    quorum: 2,
                },
                Code::InvalidArgument,
            ),
            (
                MonitorRequest {
                    group: "x".into(),
                    master: "127.0.0.1:1".into(),
                    quorum: 0,
                },
                Code::InvalidArgument,
            ),
            (
                MonitorRequest {
                    group: "x".into(),
                    master: "127.0.0.1:1".into(),
                    quorum: 4,
                },
                Code::InvalidArgument,
            ),
            (
                MonitorRequest {
                    group: GROUP.into(),
                    master: "127.0.0.1:1".into(),
                    quorum: 2,
                },
                Code::AlreadyExists,
            ),
        ];
        for (req, code) in bad {
            let e = a.monitor(req.clone()).await.expect_err("refused");
            assert_eq!(e.code(), code, "{req:?}: {e}");
        }
        let e = a
            .set_option(SetOptionRequest {
                group: "nope".into(),
                option: "quorum".into(),
                value: "1".into(),
            })
            .await
            .expect_err("unknown group");
        assert_eq!(e.code(), Code::NotFound, "{e}");
        let e = a
            .set_option(SetOptionRequest {
                group: GROUP.into(),
                option: "failover-timeout".into(),
                value: "soon".into(),
            })
            .await
            .expect_err("bad value");
        assert_eq!(e.code(), Code::InvalidArgument, "{e}");
        let e = a
            .reset(ResetRequest {
                group: "nothing-*".into(),
            })
            .await
            .expect_err("no match");
        assert_eq!(e.code(), Code::NotFound, "{e}");

        // Good ones, confirmed by the sentinels.
        let r = a
            .set_option(SetOptionRequest {
                group: GROUP.into(),
                option: "failover-timeout".into(),
                value: "7000".into(),
            })
            .await
            .expect("set");
        assert!(r.get_ref().message.contains("term"), "{:?}", r.get_ref());
        let r = b
            .monitor(MonitorRequest {
                group: "dead".into(),
                master: "127.0.0.1:1".into(),
                quorum: 2,
            })
            .await
            .expect("monitor");
        assert!(r.get_ref().message.contains("dead"), "{:?}", r.get_ref());
        b.remove(RemoveRequest {
            group: "dead".into(),
        })
        .await
        .expect("remove");
    });
    for s in &c.sentinels {
        wait_until(DEADLINE, || {
            field(s.resp, GROUP, "failover-timeout").as_deref() == Some("7000")
                && master_of(s.resp, "dead").is_none()
        });
    }
    // The operator's CLI: one line on success, one clear line and a failure status otherwise.
    let admin = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_vigil"))
            .arg("admin")
            .arg("--sentinel")
            .arg(format!("https://{}", c.sentinels[1].grpc))
            .arg("--tls-ca")
            .arg(c.certs.path().join("ca.crt"))
            .args(["--timeout-ms", "20000"])
            .args(args)
            .env_remove("VIGIL_SENTINEL")
            .stdin(std::process::Stdio::null())
            .output()
            .expect("run vigil admin")
    };
    let ok = admin(&["set", GROUP, "quorum", "3"]);
    let out = String::from_utf8_lossy(&ok.stdout);
    assert!(
        ok.status.success(),
        "{out} {}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert!(out.contains("quorum of g set on every sentinel"), "{out}");
    for s in &c.sentinels {
        wait_until(DEADLINE, || {
            field(s.resp, GROUP, "quorum").as_deref() == Some("3")
        });
    }
    let bad = admin(&["set", GROUP, "quorum", "0"]);
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(!bad.status.success());
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("quorum"), "{err}");
}
