//! The gossip transport over real UDP sockets on 127.0.0.1 and real TLS: discovery, request and
//! reply on one stream, connection dedup, certificate checks, hostile input, dev mode, and
//! reconnection. Every wait has a deadline; nothing sleeps and hopes.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use quinn::crypto::rustls::QuicClientConfig;
use tempfile::TempDir;
use tokio::sync::mpsc;
use tokio::time::{Instant, sleep, timeout};
use tokio_util::sync::CancellationToken;
use vigil_proto::gossip::envelope::Msg;
use vigil_proto::gossip::{self as pb, Envelope};
use vigil_sentinel::core::SentinelId;
use vigil_sentinel::gossip::{
    GossipError, TransportConfig, TransportEvent, TransportHandle, start,
};
use vigil_sentinel::tls::{self, Identity};

const DEADLINE: Duration = Duration::from_secs(4);

struct Node {
    h: TransportHandle,
    rx: mpsc::Receiver<TransportEvent>,
    cancel: CancellationToken,
}

impl Node {
    async fn start(cfg: TransportConfig) -> Result<Node, GossipError> {
        let cancel = CancellationToken::new();
        let (h, rx) = start(cfg, cancel.clone()).await?;
        Ok(Node { h, rx, cancel })
    }

    async fn new(identity: &Identity, seeds: Vec<SocketAddr>) -> Node {
        let mut cfg = TransportConfig::new(localhost(), identity.clone());
        cfg.seeds = seeds;
        Node::start(cfg).await.expect("transport starts")
    }

    fn addr(&self) -> SocketAddr {
        self.h.local_addr()
    }

    fn id(&self) -> SentinelId {
        self.h.my_id()
    }

    fn connected_to(&self, id: SentinelId) -> bool {
        self.h.peers().iter().any(|p| p.0 == id && p.3)
    }

    /// The next event matching `pred`, skipping the others.
    async fn expect(
        &mut self,
        what: &str,
        mut pred: impl FnMut(&TransportEvent) -> bool,
    ) -> TransportEvent {
        let deadline = Instant::now() + DEADLINE;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match timeout(left, self.rx.recv()).await {
                Ok(Some(ev)) if pred(&ev) => return ev,
                Ok(Some(_)) => {}
                Ok(None) => panic!("event stream closed while waiting for {what}"),
                Err(_) => panic!("timed out waiting for {what}"),
            }
        }
    }

    async fn expect_message(&mut self, from: SentinelId, group: &str) -> Envelope {
        let ev = self
            .expect(&format!("a message {group:?} from {from}"), |ev| {
                matches!(ev, TransportEvent::Message { from: f, env } if *f == from && group_of(env) == Some(group))
            })
            .await;
        match ev {
            TransportEvent::Message { env, .. } => env,
            _ => unreachable!(),
        }
    }
}

fn localhost() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

async fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + DEADLINE;
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        sleep(Duration::from_millis(10)).await;
    }
}

/// A CA in a temp dir and one identity per name, issued by it for 127.0.0.1.
fn cluster(names: &[&str]) -> (TempDir, Vec<Identity>) {
    let dir = tempfile::tempdir().expect("temp dir");
    tls::init_ca(dir.path()).expect("CA created");
    let ids = names
        .iter()
        .map(|name| issued(dir.path(), name, true))
        .collect();
    (dir, ids)
}

fn issued(dir: &Path, name: &str, with_ca: bool) -> Identity {
    let (crt, key) = tls::issue(dir, name, &["127.0.0.1".to_owned()]).expect("certificate issued");
    let ca = dir.join("ca.crt");
    Identity::from_files(&crt, &key, with_ca.then_some(ca.as_path())).expect("identity loads")
}

fn opinion(group: &str) -> Envelope {
    Envelope {
        msg: Some(Msg::Opinion(pb::Opinion {
            group: group.into(),
            master: "10.0.0.1:6379".into(),
            down: true,
        })),
    }
}

fn group_of(env: &Envelope) -> Option<&str> {
    match env.msg.as_ref()? {
        Msg::Opinion(o) => Some(&o.group),
        Msg::RequestVote(r) => Some(&r.group),
        Msg::Vote(v) => Some(&v.group),
        Msg::ConfigQuery(q) => Some(&q.group),
        Msg::ConfigAnswer(a) => Some(&a.group),
        _ => None,
    }
}

/// Two transports from one CA, connected (`b` seeded with `a`).
async fn pair(names: [&str; 2]) -> (TempDir, Node, Node) {
    let (dir, ids) = cluster(&names);
    let a = Node::new(&ids[0], vec![]).await;
    let b = Node::new(&ids[1], vec![a.addr()]).await;
    let (ai, bi) = (a.id(), b.id());
    wait_until("a and b connected", || {
        a.connected_to(bi) && b.connected_to(ai)
    })
    .await;
    (dir, a, b)
}

/// A bare quinn client presenting `identity`, for hostile and foreign peers.
fn raw_client(identity: &Identity) -> quinn::Endpoint {
    let crypto = QuicClientConfig::try_from(identity.client_config().expect("client config"))
        .expect("usable for QUIC");
    let mut endpoint = quinn::Endpoint::client(localhost()).expect("client endpoint");
    endpoint.set_default_client_config(quinn::ClientConfig::new(Arc::new(crypto)));
    endpoint
}

#[tokio::test]
async fn three_transports_find_each_other_from_one_seed_and_exchange_messages() {
    let (_dir, ids) = cluster(&["alpha", "bravo", "charlie"]);
    let mut a = Node::new(&ids[0], vec![]).await;
    let mut b = Node::new(&ids[1], vec![a.addr()]).await;
    let mut c = Node::new(&ids[2], vec![a.addr()]).await;
    let (ai, bi, ci) = (a.id(), b.id(), c.id());
    assert_eq!(bi, tls::sentinel_id("bravo"));
    wait_until("full mesh", || {
        a.connected_to(bi)
            && a.connected_to(ci)
            && b.connected_to(ai)
            && b.connected_to(ci)
            && c.connected_to(ai)
            && c.connected_to(bi)
    })
    .await;
    // b learned c only from a's member list, yet knows its name and announced address.
    let up = b
        .expect(
            "c up at b",
            |ev| matches!(ev, TransportEvent::PeerUp { id, .. } if *id == ci),
        )
        .await;
    assert_eq!(
        up,
        TransportEvent::PeerUp {
            id: ci,
            name: "charlie".into(),
            addr: c.addr(),
        }
    );
    b.h.send(ci, opinion("g1"));
    c.expect_message(bi, "g1").await;
    a.h.send(ci, opinion("g1"));
    c.expect_message(ai, "g1").await;
    c.h.send(bi, opinion("g2"));
    b.expect_message(ci, "g2").await;
    c.h.send(ai, opinion("g3"));
    a.expect_message(ci, "g3").await;
    b.h.send(ai, opinion("g4"));
    a.expect_message(bi, "g4").await;
    // Messages from one sender arrive in order (one long-lived stream per direction).
    for i in 0..20 {
        a.h.send(bi, opinion(&format!("seq{i}")));
    }
    for i in 0..20 {
        let env = b
            .expect("sequenced opinion", |ev| {
                matches!(ev, TransportEvent::Message { .. })
            })
            .await;
        let TransportEvent::Message { env, .. } = env else {
            unreachable!()
        };
        assert_eq!(group_of(&env), Some(format!("seq{i}").as_str()));
    }
}

#[tokio::test]
async fn a_reply_travels_on_the_stream_of_its_request() {
    let (_dir, mut a, mut b) = pair(["req-a", "req-b"]).await;
    let (ai, bi) = (a.id(), b.id());

    a.h.send(
        bi,
        Envelope {
            msg: Some(Msg::RequestVote(pb::RequestVote {
                group: "g".into(),
                term: 7,
                epoch: 3,
                reason: pb::ElectionReason::MasterDown as i32,
                master: "127.0.0.1:6379".into(),
                agreed: 0,
                members: 1,
            })),
        },
    );
    b.expect_message(ai, "g").await;
    let vote = |term| Envelope {
        msg: Some(Msg::Vote(pb::Vote {
            group: "g".into(),
            term,
            granted: true,
            ..Default::default()
        })),
    };
    b.h.send(ai, vote(7));
    let got = a.expect_message(bi, "g").await;
    assert!(matches!(got.msg, Some(Msg::Vote(ref v)) if v.term == 7));
    assert_eq!(b.h.stats().replies_on_request_stream, 1);
    assert_eq!(a.h.stats().replies_received_on_request_stream, 1);

    a.h.send(
        bi,
        Envelope {
            msg: Some(Msg::ConfigQuery(pb::ConfigQuery {
                group: "q".into(),
                epoch: 3,
                master: "10.0.0.1:6379".into(),
                id: 42,
            })),
        },
    );
    b.expect_message(ai, "q").await;
    b.h.send(
        ai,
        Envelope {
            msg: Some(Msg::ConfigAnswer(pb::ConfigAnswer {
                group: "q".into(),
                id: 42,
                epoch: 3,
                master: "10.0.0.1:6379".into(),
                fenced: false,
            })),
        },
    );
    a.expect_message(bi, "q").await;
    assert_eq!(b.h.stats().replies_on_request_stream, 2);
    assert_eq!(a.h.stats().replies_received_on_request_stream, 2);

    // A vote that answers no pending request still arrives, on the ordinary stream.
    b.h.send(ai, vote(99));
    let got = a.expect_message(bi, "g").await;
    assert!(matches!(got.msg, Some(Msg::Vote(ref v)) if v.term == 99));
    assert_eq!(b.h.stats().replies_on_request_stream, 2);
    assert_eq!(a.h.stats().replies_received_on_request_stream, 2);
}

#[tokio::test]
async fn simultaneous_dials_keep_one_connection_initiated_by_the_lower_id() {
    let (_dir, ids) = cluster(&["dial-a", "dial-b"]);
    let mut a = Node::new(&ids[0], vec![]).await;
    let mut b = Node::new(&ids[1], vec![]).await;
    let (ai, bi) = (a.id(), b.id());
    a.h.connect(b.addr());
    b.h.connect(a.addr());
    let lower = ai.min(bi);
    wait_until(
        "one connection each side, initiated by the lower id",
        || {
            let (ca, cb) = (a.h.connections(), b.h.connections());
            ca.len() == 1
                && cb.len() == 1
                && ca[0].initiator == lower
                && cb[0].initiator == lower
                && a.connected_to(bi)
                && b.connected_to(ai)
        },
    )
    .await;
    a.h.send(bi, opinion("after-dedup"));
    b.expect_message(ai, "after-dedup").await;
    b.h.send(ai, opinion("after-dedup"));
    a.expect_message(bi, "after-dedup").await;
    assert_eq!(a.h.connections().len(), 1);
    assert_eq!(b.h.connections().len(), 1);
}

#[tokio::test]
async fn a_certificate_from_another_ca_is_refused() {
    let (_dir, ids) = cluster(&["home"]);
    let (other_dir, strangers) = cluster(&["stranger"]);
    let mut a = Node::new(&ids[0], vec![]).await;
    // A transport of another cluster dials a: its own verifier refuses a's certificate.
    let s = Node::new(&strangers[0], vec![a.addr()]).await;
    wait_until("the stranger's dial fails", || {
        s.h.stats().handshakes_failed >= 1
    })
    .await;
    // A client that trusts any server but presents a foreign certificate: a refuses it.
    let lax = issued(other_dir.path(), "lax-stranger", false);
    let endpoint = raw_client(&lax);
    let before = a.h.stats().handshakes_failed;
    match endpoint.connect(a.addr(), tls::SERVER_NAME).unwrap().await {
        // TLS 1.3: the client may finish before the server has checked its certificate; the
        // server then closes the connection at once.
        Ok(conn) => {
            let reason = timeout(DEADLINE, conn.closed()).await.unwrap();
            assert!(
                !matches!(reason, quinn::ConnectionError::TimedOut),
                "{reason}"
            );
        }
        Err(e) => assert!(!matches!(e, quinn::ConnectionError::TimedOut), "{e}"),
    }
    wait_until("a refuses the foreign client", || {
        a.h.stats().handshakes_failed > before
    })
    .await;
    assert!(a.h.peers().is_empty());
    assert!(a.h.connections().is_empty());
    while let Ok(ev) = a.rx.try_recv() {
        assert!(!matches!(ev, TransportEvent::PeerUp { .. }), "{ev:?}");
    }
    assert!(s.h.peers().is_empty());
}

#[tokio::test]
async fn garbage_is_refused_and_good_peers_keep_working() {
    let (dir, ids) = cluster(&["good-a", "good-b"]);
    let mut cfg = TransportConfig::new(localhost(), ids[0].clone());
    cfg.request_timeout = Duration::from_millis(300);
    let mut a = Node::start(cfg).await.expect("transport starts");
    let mut b = Node::new(&ids[1], vec![a.addr()]).await;
    let (ai, bi) = (a.id(), b.id());
    wait_until("a and b connected", || {
        a.connected_to(bi) && b.connected_to(ai)
    })
    .await;

    // Mallory holds a valid certificate of the cluster, and sends garbage.
    let mallory = issued(dir.path(), "mallory", true);
    let endpoint = raw_client(&mallory);
    let conn = endpoint
        .connect(a.addr(), tls::SERVER_NAME)
        .unwrap()
        .await
        .unwrap();
    // 1. A frame header announcing more than max_message.
    let mut oversize = conn.open_uni().await.unwrap();
    oversize
        .write_all(&(2u32 << 20).to_be_bytes())
        .await
        .unwrap();
    wait_until("oversize frame refused", || a.h.stats().bad_frames >= 1).await;
    // 2. A well-framed byte that is not a protobuf envelope (field 1, wire type 7).
    let mut junk = conn.open_uni().await.unwrap();
    junk.write_all(&[0, 0, 0, 1, 0x0f]).await.unwrap();
    junk.finish().unwrap();
    wait_until("invalid protobuf refused", || a.h.stats().bad_frames >= 2).await;
    // 3. A request stream that stalls inside its length prefix.
    let (mut stalled, _recv) = conn.open_bi().await.unwrap();
    stalled.write_all(&[0, 0]).await.unwrap();
    // Three offences: a closes the connection.
    let reason = timeout(DEADLINE, conn.closed()).await.unwrap();
    assert!(
        matches!(reason, quinn::ConnectionError::ApplicationClosed(ref c) if c.error_code == quinn::VarInt::from_u32(3)),
        "{reason}"
    );
    assert!(a.h.stats().bad_frames >= 3);
    assert!(!a.connected_to(tls::sentinel_id("mallory")));

    // The good peer never noticed.
    a.h.send(bi, opinion("still-here"));
    b.expect_message(ai, "still-here").await;
    b.h.send(ai, opinion("still-here"));
    a.expect_message(bi, "still-here").await;
    assert!(a.connected_to(bi));
}

#[tokio::test]
async fn dev_mode_works_with_self_signed_identities() {
    let (d1, d2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let i1 = Identity::dev(d1.path()).unwrap();
    let i2 = Identity::dev(d2.path()).unwrap();
    assert!(i1.is_dev() && i2.name().starts_with("dev-"));
    let mut a = Node::new(&i1, vec![]).await;
    let mut b = Node::new(&i2, vec![a.addr()]).await;
    let up = a
        .expect("b up", |ev| matches!(ev, TransportEvent::PeerUp { .. }))
        .await;
    assert_eq!(
        up,
        TransportEvent::PeerUp {
            id: tls::sentinel_id(i2.name()),
            name: i2.name().to_owned(),
            addr: b.addr(),
        }
    );
    b.expect("a up", |ev| matches!(ev, TransportEvent::PeerUp { .. }))
        .await;
    a.h.send(b.id(), opinion("dev"));
    b.expect_message(a.id(), "dev").await;
    b.h.send(a.id(), opinion("dev"));
    a.expect_message(b.id(), "dev").await;
}

#[tokio::test]
async fn a_peer_that_goes_away_is_reported_down_and_reconnected_when_it_returns() {
    let (_dir, ids) = cluster(&["stay", "leave"]);
    let mut a = Node::new(&ids[0], vec![]).await;
    let b = Node::new(&ids[1], vec![a.addr()]).await;
    let (ai, bi, b_addr) = (a.id(), b.id(), b.addr());
    a.expect("b up", |ev| {
        *ev == TransportEvent::PeerUp {
            id: bi,
            name: "leave".into(),
            addr: b_addr,
        }
    })
    .await;

    b.cancel.cancel();
    drop(b);
    a.expect("b down", |ev| *ev == TransportEvent::PeerDown { id: bi })
        .await;
    assert!(
        a.h.peers().iter().any(|p| p.0 == bi && !p.3),
        "b stays known"
    );

    // b comes back on the same port, with no seeds: a redials it.
    let deadline = Instant::now() + DEADLINE;
    let mut b = loop {
        let mut cfg = TransportConfig::new(b_addr, ids[1].clone());
        cfg.seeds = vec![];
        match Node::start(cfg).await {
            Ok(node) => break node,
            Err(GossipError::Bind { .. }) if Instant::now() < deadline => {
                sleep(Duration::from_millis(20)).await;
            }
            Err(e) => panic!("restart: {e}"),
        }
    };
    a.expect(
        "b up again",
        |ev| matches!(ev, TransportEvent::PeerUp { id, .. } if *id == bi),
    )
    .await;
    b.expect(
        "a up at b",
        |ev| matches!(ev, TransportEvent::PeerUp { id, .. } if *id == ai),
    )
    .await;
    a.h.send(bi, opinion("welcome-back"));
    b.expect_message(ai, "welcome-back").await;
}

#[tokio::test]
async fn a_transport_never_connects_to_itself() {
    let (_dir, ids) = cluster(&["narcissus"]);
    // Bound to every interface, so 127.0.0.1:port is not recognisable as ours by address.
    let cfg = TransportConfig::new("0.0.0.0:0".parse().unwrap(), ids[0].clone());
    let a = Node::start(cfg).await.expect("transport starts");
    let loopback = SocketAddr::from(([127, 0, 0, 1], a.addr().port()));
    a.h.connect(loopback);
    wait_until("the self dial is detected", || a.h.stats().self_dials >= 1).await;
    assert!(a.h.peers().is_empty());
    wait_until("no connection left", || a.h.connections().is_empty()).await;
}
