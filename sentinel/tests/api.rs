//! The gRPC control API (`vigil_sentinel::api`) in isolation: a real tonic server on a
//! loopback port over hand-made `Ports` (a snapshot of one group with a master and two
//! replicas, an event broadcast the test publishes on, an input queue the test reads), and real
//! tonic clients. End-to-end tests with real sentinels live elsewhere.

use std::net::SocketAddr;
use std::num::NonZeroU8;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::sync::{broadcast, mpsc, watch};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};
use tonic::{Code, Streaming};
use vigil_proto::control::{self as pb, SentinelControlClient};
use vigil_sentinel::api::{self, ApiError, ApiTls};
use vigil_sentinel::backend::NodeReport;
use vigil_sentinel::core::{AdminError, ConfigEpoch, Event, GroupName, Input, NodeId, SentinelId};
use vigil_sentinel::daemon::{GroupSnapshot, NodeSnapshot, Ports, ShellInput, Snapshot};
use vigil_sentinel::events::EventRecord;
use vigil_sentinel::group_admin::AdminFailure;
use vigil_sentinel::nodes::NodeAddr;
use vigil_sentinel::settings::GroupSettings;

const RUN_ID: &str = "0123456789abcdef0123456789abcdef01234567";

struct Harness {
    addr: SocketAddr,
    snapshot: watch::Sender<Arc<Snapshot>>,
    events: broadcast::Sender<EventRecord>,
    inputs: mpsc::Receiver<ShellInput>,
    cancel: CancellationToken,
    server: JoinHandle<Result<(), ApiError>>,
}

impl Harness {
    async fn start(tls: Option<ApiTls>) -> Harness {
        Harness::start_with(tls, 4096, 64).await
    }

    async fn start_with(tls: Option<ApiTls>, event_buffer: usize, input_queue: usize) -> Harness {
        let (snapshot, snapshot_rx) = watch::channel(Arc::new(snapshot()));
        let (events, _) = broadcast::channel(event_buffer);
        let (inputs_tx, inputs) = mpsc::channel(input_queue);
        let ports = Ports {
            snapshot: snapshot_rx,
            events: events.clone(),
            inputs: inputs_tx,
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a loopback port");
        let addr = listener
            .local_addr()
            .expect("a bound listener has an address");
        let cancel = CancellationToken::new();
        let server = tokio::spawn(api::serve(listener, ports, tls, cancel.clone()));
        Harness {
            addr,
            snapshot,
            events,
            inputs,
            cancel,
            server,
        }
    }

    async fn client(&self) -> SentinelControlClient<Channel> {
        SentinelControlClient::new(self.channel().await)
    }

    async fn channel(&self) -> Channel {
        Endpoint::from_shared(format!("http://{}", self.addr))
            .expect("a valid URL")
            .connect()
            .await
            .expect("connect to the server")
    }

    fn update(&self, f: impl FnOnce(&mut GroupSnapshot)) {
        let mut snap = (**self.snapshot.borrow()).clone();
        f(&mut snap.groups[0]);
        self.snapshot.send_replace(Arc::new(snap));
    }

    fn publish(&self, record: EventRecord) {
        self.events.send(record).expect("a subscriber listens");
    }

    async fn stop(self) {
        self.cancel.cancel();
        let stopped = tokio::time::timeout(Duration::from_secs(10), self.server)
            .await
            .expect("the server stops on cancel");
        stopped
            .expect("the server task does not panic")
            .expect("the server stops cleanly");
    }
}

fn report(text: &str) -> NodeReport {
    NodeReport::parse(&text.replace(' ', "\r\n")).expect("valid INFO text")
}

fn master_node() -> NodeSnapshot {
    NodeSnapshot {
        id: NodeId(0),
        addr: NodeAddr::new("127.0.0.1", 7000),
        down: false,
        report: Some(report(&format!(
            "role:master run_id:{RUN_ID} master_replid:{RUN_ID} master_repl_offset:1000"
        ))),
        read_at: Some(SystemTime::now()),
    }
}

fn replica_node(port: u16, offset: u64, link: &str, extra: &str) -> NodeSnapshot {
    NodeSnapshot {
        id: NodeId(u32::from(port)),
        addr: NodeAddr::new("127.0.0.1", port),
        down: link == "down",
        report: Some(report(&format!(
            "role:slave run_id:{RUN_ID} master_host:127.0.0.1 master_port:7000 \
             master_link_status:{link} slave_repl_offset:{offset} master_replid:{RUN_ID} \
             master_repl_offset:{offset} {extra}"
        ))),
        read_at: Some(SystemTime::now()),
    }
}

fn snapshot() -> Snapshot {
    let master = NodeAddr::new("127.0.0.1", 7000);
    let replicas = vec![
        replica_node(7001, 900, "up", "slave_priority:50 vigil_dc:east"),
        replica_node(7002, 1200, "down", "vigil_dc:west"),
    ];
    let settings = GroupSettings {
        name: "g".into(),
        master: master.clone(),
        replicas: replicas.iter().map(|r| r.addr.clone()).collect(),
        quorum: NonZeroU8::new(2).expect("not zero"),
        down_after: Duration::from_millis(5000),
        failover_timeout: Duration::from_secs(60),
        parallel_syncs: NonZeroU8::new(1).expect("not zero"),
        auth_user: None,
        auth_pass: None,
        preferred_dc: None,
        sync_replicas: 0,
        redis_min_replicas: 0,
    };
    Snapshot {
        id: 1,
        name: "s1".into(),
        gossip: Some("127.0.0.1:9001".parse().expect("valid address")),
        groups: vec![GroupSnapshot {
            name: "g".into(),
            master,
            epoch: 3,
            term: 4,
            quorum: 2,
            replicas,
            master_node: master_node(),
            master_down: false,
            odown: false,
            failing_over: false,
            paused: false,
            settings,
        }],
        voters: vec![1, 2, 3],
        peers: vec![
            (
                2,
                "s2".into(),
                "127.0.0.1:9002".parse().expect("valid address"),
                true,
            ),
            (
                3,
                "s3".into(),
                "127.0.0.1:9003".parse().expect("valid address"),
                false,
            ),
        ],
        endpoints: [(
            2,
            (Some("127.0.0.1:8002".parse().expect("valid address")), None),
        )]
        .into_iter()
        .collect(),
        client_addrs: (Some("127.0.0.1:8001".parse().expect("valid address")), None),
    }
}

fn switch_master(group: &str, port: u16, epoch: u64) -> EventRecord {
    EventRecord {
        at: SystemTime::UNIX_EPOCH + Duration::from_millis(1_700_000_000_000),
        channel: "+switch-master".into(),
        payload: format!("{group} 127.0.0.1 7000 127.0.0.1 {port}"),
        group: Some(group.into()),
        master_changed: Some((NodeAddr::new("127.0.0.1", port), ConfigEpoch(epoch))),
        event: Event::SwitchMaster {
            group: GroupName::new(group),
            old: NodeId(0),
            new: NodeId(1),
            epoch: ConfigEpoch(epoch),
        },
    }
}

fn sdown(payload: String) -> EventRecord {
    EventRecord {
        at: SystemTime::now(),
        channel: "+sdown".into(),
        payload,
        group: None,
        master_changed: None,
        event: Event::SubjectivelyDown { node: NodeId(1) },
    }
}

fn odown(group: &str) -> EventRecord {
    EventRecord {
        at: SystemTime::now(),
        channel: "+odown".into(),
        payload: format!("master {group} #quorum"),
        group: Some(group.into()),
        master_changed: None,
        event: Event::ObjectivelyDown {
            group: GroupName::new(group),
        },
    }
}

/// The next `MasterChanged` of a watch stream, skipping keep-alives.
async fn next_change(stream: &mut Streaming<pb::MasterEvent>) -> pb::MasterChanged {
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(5), stream.message())
            .await
            .expect("a message within 5 s")
            .expect("no error")
            .expect("the stream goes on");
        match msg.kind {
            Some(pb::master_event::Kind::Changed(c)) => return c,
            Some(pb::master_event::Kind::KeepAlive(_)) => continue,
            None => panic!("a MasterEvent without a kind"),
        }
    }
}

async fn next_input(h: &mut Harness) -> Input {
    match tokio::time::timeout(Duration::from_secs(5), h.inputs.recv()).await {
        Ok(Some(ShellInput::Core(input))) => input,
        other => panic!("expected a core input, got {other:?}"),
    }
}

#[tokio::test]
async fn queries_answer_from_the_snapshot() {
    let h = Harness::start(None).await;
    let mut c = h.client().await;

    let m = c
        .get_master(pb::GetMasterRequest { group: "g".into() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (m.group.as_str(), m.addr.as_str(), m.config_epoch),
        ("g", "127.0.0.1:7000", 3)
    );

    let g = c
        .get_group(pb::GetGroupRequest { group: "g".into() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(g.master, "127.0.0.1:7000");
    assert_eq!(
        (g.config_epoch, g.term, g.quorum, g.sentinels),
        (3, 4, 2, 3)
    );
    assert_eq!(g.master_offset, 1000);
    assert_eq!((g.down_after_ms, g.failover_timeout_ms), (5000, 60_000));
    assert_eq!(g.parallel_syncs, 1);
    assert!(g.flags.is_empty(), "{:?}", g.flags);
    assert_eq!(g.replicas.len(), 2);
    let r1 = &g.replicas[0];
    assert_eq!(r1.addr, "127.0.0.1:7001");
    assert_eq!((r1.offset, r1.lag_bytes), (900, 100));
    assert_eq!(
        (r1.dc.as_str(), r1.link.as_str(), r1.priority, r1.down),
        ("east", "up", 50, false)
    );
    let r2 = &g.replicas[1];
    assert_eq!((r2.offset, r2.lag_bytes), (1200, 0), "lag saturates at 0");
    assert_eq!(
        (r2.dc.as_str(), r2.link.as_str(), r2.priority, r2.down),
        ("west", "down", 100, true)
    );

    h.update(|g| {
        g.master_down = true;
        g.odown = true;
        g.paused = true;
    });
    let groups = c
        .list_groups(pb::ListGroupsRequest {})
        .await
        .unwrap()
        .into_inner()
        .groups;
    assert_eq!(groups.len(), 1);
    assert_eq!(groups[0].name, "g");
    assert_eq!(groups[0].flags, ["s_down", "o_down", "paused"]);

    let sentinels = c
        .list_sentinels(pb::ListSentinelsRequest {})
        .await
        .unwrap()
        .into_inner()
        .sentinels;
    let summary: Vec<_> = sentinels
        .iter()
        .map(|s| (s.id, s.name.as_str(), s.connected, s.voter, s.myself))
        .collect();
    assert_eq!(
        summary,
        [
            (1, "s1", true, true, true),
            (2, "s2", true, true, false),
            (3, "s3", false, true, false)
        ]
    );
    assert_eq!(sentinels[0].addr, "127.0.0.1:9001");
    assert_eq!(sentinels[2].addr, "127.0.0.1:9003");
    // Client ports: our own, and the ones a peer announced (none from s3).
    assert_eq!(sentinels[0].resp_addr, "127.0.0.1:8001");
    assert_eq!(sentinels[1].resp_addr, "127.0.0.1:8002");
    assert_eq!(sentinels[2].resp_addr, "");

    let q = c
        .check_quorum(pb::CheckQuorumRequest { group: "g".into() })
        .await
        .unwrap()
        .into_inner();
    assert!(q.ok, "{}", q.message);
    assert_eq!((q.usable, q.quorum, q.majority), (2, 2, 2));
    assert!(
        q.message.starts_with("OK 2 usable Sentinels"),
        "{}",
        q.message
    );

    // s2 goes away: one usable sentinel cannot reach a quorum of 2.
    let mut snap = (**h.snapshot.borrow()).clone();
    snap.peers[0].3 = false;
    h.snapshot.send_replace(Arc::new(snap));
    let q = c
        .check_quorum(pb::CheckQuorumRequest { group: "g".into() })
        .await
        .unwrap()
        .into_inner();
    assert!(!q.ok);
    assert_eq!(q.usable, 1);
    assert!(q.message.starts_with("NOQUORUM 1 usable"), "{}", q.message);
    h.stop().await;
}

#[tokio::test]
async fn bad_arguments_and_unknown_groups_are_refused() {
    let h = Harness::start(None).await;
    let mut c = h.client().await;
    let e = c
        .get_master(pb::GetMasterRequest {
            group: "nope".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound);
    assert_eq!(e.message(), "no such group 'nope'");
    let e = c
        .get_group(pb::GetGroupRequest { group: "x".into() })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound);
    let e = c
        .check_quorum(pb::CheckQuorumRequest { group: "".into() })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(e.message().contains("group"), "{}", e.message());
    let e = c
        .failover(pb::FailoverRequest { group: "x".into() })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound);
    let e = c
        .watch_master(pb::WatchMasterRequest {
            groups: vec!["g".into(), "other".into()],
            min_epoch: 0,
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound);
    assert_eq!(e.message(), "no such group 'other'");
    let e = c
        .watch_events(pb::WatchEventsRequest {
            groups: vec![],
            channels: vec!["".into()],
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    // Requests larger than the decoding limit are refused before they reach the service.
    let e = c
        .get_master(pb::GetMasterRequest {
            group: "g".repeat(100_000),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::OutOfRange, "{e:?}");
    let e = c
        .monitor(pb::MonitorRequest {
            group: "h".into(),
            master: "127.0.0.1:8000".into(),
            quorum: 0,
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(e.message().contains("quorum"), "{}", e.message());
    let e = c
        .monitor(pb::MonitorRequest {
            group: "h".into(),
            master: "no port".into(),
            quorum: 1,
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(e.message().starts_with("master: "), "{}", e.message());
    h.stop().await;
}

#[tokio::test]
async fn admin_calls_queue_inputs_for_the_loop() {
    let mut h = Harness::start(None).await;
    let mut c = h.client().await;

    c.failover(pb::FailoverRequest { group: "g".into() })
        .await
        .unwrap();
    assert!(matches!(
        next_input(&mut h).await,
        Input::FailoverRequested { group } if group.as_str() == "g"
    ));

    c.switchover(pb::SwitchoverRequest {
        group: "g".into(),
        target: String::new(),
    })
    .await
    .unwrap();
    assert!(matches!(
        next_input(&mut h).await,
        Input::SwitchoverRequested { group, target: None } if group.as_str() == "g"
    ));
    let e = c
        .switchover(pb::SwitchoverRequest {
            group: "g".into(),
            target: "127.0.0.1:7999".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(
        e.message().contains("is not a replica of g"),
        "{}",
        e.message()
    );
    // A real replica, one of two: the core is told to promote it.
    c.switchover(pb::SwitchoverRequest {
        group: "g".into(),
        target: "127.0.0.1:7002".into(),
    })
    .await
    .unwrap();
    assert!(matches!(
        next_input(&mut h).await,
        Input::SwitchoverRequested {
            target: Some(NodeId(7002)),
            ..
        }
    ));

    c.pause(pb::PauseRequest { group: "g".into() })
        .await
        .unwrap();
    assert!(matches!(
        next_input(&mut h).await,
        Input::MaintenanceRequested { paused: true, .. }
    ));
    c.resume(pb::ResumeRequest { group: "g".into() })
        .await
        .unwrap();
    assert!(matches!(
        next_input(&mut h).await,
        Input::MaintenanceRequested { paused: false, .. }
    ));

    // A forget answers with the core's verdict: the membership epoch of the set without the
    // sentinel, or why not.
    let forget = |name: &str| {
        let mut c = c.clone();
        let sentinel = name.to_owned();
        tokio::spawn(async move {
            c.forget_sentinel(pb::ForgetSentinelRequest { sentinel })
                .await
        })
    };
    let verdicts: [(&str, u32, Result<u64, AdminFailure>); 2] = [
        ("s3", 3, Ok(4)),
        ("2", 2, Err(AdminFailure::Core(AdminError::MembershipBusy))),
    ];
    for (name, id, verdict) in verdicts {
        let call = forget(name);
        match tokio::time::timeout(Duration::from_secs(5), h.inputs.recv()).await {
            Ok(Some(ShellInput::Forget { sentinel, reply })) => {
                assert_eq!(sentinel, SentinelId(id));
                let _ = reply.send(verdict);
            }
            other => panic!("expected a forget, got {other:?}"),
        }
        match call.await.unwrap() {
            Ok(r) => assert!(
                r.get_ref().message.contains("membership epoch 4"),
                "{}",
                r.get_ref().message
            ),
            Err(e) => {
                assert_eq!(e.code(), Code::FailedPrecondition);
                assert!(e.message().contains("voter set"), "{}", e.message());
            }
        }
    }
    let e = c
        .forget_sentinel(pb::ForgetSentinelRequest {
            sentinel: "s1".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    let e = c
        .forget_sentinel(pb::ForgetSentinelRequest {
            sentinel: "s9".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound);

    // With only one replica, naming it works the same.
    h.update(|g| {
        g.replicas.truncate(1);
    });
    c.switchover(pb::SwitchoverRequest {
        group: "g".into(),
        target: "127.0.0.1:7001".into(),
    })
    .await
    .unwrap();
    assert!(matches!(
        next_input(&mut h).await,
        Input::SwitchoverRequested {
            target: Some(NodeId(7001)),
            ..
        }
    ));

    h.update(|g| g.failing_over = true);
    let e = c
        .failover(pb::FailoverRequest { group: "g".into() })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition);
    assert_eq!(e.message(), "a failover of g is already in progress");
    assert!(h.inputs.try_recv().is_err(), "nothing queued");
    h.stop().await;
}

#[tokio::test]
async fn a_full_input_queue_answers_unavailable() {
    let mut h = Harness::start_with(None, 64, 1).await;
    let mut c = h.client().await;
    c.pause(pb::PauseRequest { group: "g".into() })
        .await
        .unwrap();
    let e = c
        .pause(pb::PauseRequest { group: "g".into() })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::Unavailable);
    assert_eq!(e.message(), "sentinel busy, retry");
    assert!(matches!(
        next_input(&mut h).await,
        Input::MaintenanceRequested { .. }
    ));
    h.stop().await;
}

#[tokio::test]
async fn watch_master_sends_the_current_master_then_newer_ones_only() {
    let h = Harness::start(None).await;
    let mut c = h.client().await;
    let mut stream = c
        .watch_master(pb::WatchMasterRequest {
            groups: vec!["g".into()],
            min_epoch: 0,
        })
        .await
        .unwrap()
        .into_inner();
    let first = next_change(&mut stream).await;
    assert!(first.initial);
    assert_eq!(
        (
            first.group.as_str(),
            first.addr.as_str(),
            first.config_epoch
        ),
        ("g", "127.0.0.1:7000", 3)
    );
    assert_eq!(first.reported_by, "s1");

    // Older and equal epochs are not forwarded, nor other groups; a newer one is.
    h.publish(switch_master("g", 7002, 2));
    h.publish(switch_master("g", 7002, 3));
    h.publish(odown("g"));
    h.publish(switch_master("other", 7005, 9));
    h.publish(switch_master("g", 7001, 5));
    let change = next_change(&mut stream).await;
    assert!(!change.initial);
    assert_eq!(
        (change.addr.as_str(), change.config_epoch, change.at_unix_ms),
        ("127.0.0.1:7001", 5, 1_700_000_000_000)
    );
    h.publish(switch_master("g", 7002, 4));
    h.publish(switch_master("g", 7002, 6));
    assert_eq!(next_change(&mut stream).await.config_epoch, 6);

    // A client going away ends its pump, which drops its broadcast subscription.
    assert_eq!(h.events.receiver_count(), 1);
    drop(stream);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while h.events.receiver_count() > 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the pump noticed the client left"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    h.stop().await;
}

#[tokio::test]
async fn watch_master_min_epoch_filters_and_keep_alives_flow() {
    let h = Harness::start(None).await;
    let mut c = h.client().await;
    let mut stream = c
        .watch_master(pb::WatchMasterRequest {
            groups: vec![],
            min_epoch: 10,
        })
        .await
        .unwrap()
        .into_inner();
    // No initial message (epoch 3 < 10): the first message is a keep-alive, within ~1 s.
    let msg = tokio::time::timeout(Duration::from_secs(3), stream.message())
        .await
        .expect("a keep-alive within 3 s")
        .unwrap()
        .unwrap();
    assert!(
        matches!(msg.kind, Some(pb::master_event::Kind::KeepAlive(ref k)) if k.at_unix_ms > 0),
        "{msg:?}"
    );
    h.publish(switch_master("g", 7001, 7));
    h.publish(switch_master("g", 7002, 11));
    let change = next_change(&mut stream).await;
    assert_eq!((change.config_epoch, change.initial), (11, false));

    // Cancellation ends the stream and the server.
    h.cancel.cancel();
    let end = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match stream.message().await {
                Ok(Some(_)) => continue,
                other => return other,
            }
        }
    })
    .await
    .expect("the stream ends on cancel");
    match end {
        Err(status) => assert_eq!(status.code(), Code::Unavailable, "{status:?}"),
        Ok(None) => {}
        Ok(Some(_)) => unreachable!(),
    }
    h.stop().await;
}

#[tokio::test]
async fn watch_events_filters_by_channel_and_group() {
    let h = Harness::start(None).await;
    let mut c = h.client().await;
    let mut stream = c
        .watch_events(pb::WatchEventsRequest {
            groups: vec!["g".into()],
            channels: vec!["+switch-master".into(), "+s*".into()],
        })
        .await
        .unwrap()
        .into_inner();
    h.publish(odown("g"));
    h.publish(switch_master("other", 7005, 9)); // not this group
    h.publish(sdown("master g 127.0.0.1 7000".into())); // no group: passes
    h.publish(switch_master("g", 7001, 5));
    let mut got = Vec::new();
    for _ in 0..2 {
        let ev = tokio::time::timeout(Duration::from_secs(5), stream.message())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        got.push((ev.channel, ev.payload, ev.group, ev.reported_by));
    }
    assert_eq!(
        got,
        [
            (
                "+sdown".to_owned(),
                "master g 127.0.0.1 7000".to_owned(),
                String::new(),
                "s1".to_owned()
            ),
            (
                "+switch-master".to_owned(),
                "g 127.0.0.1 7000 127.0.0.1 7001".to_owned(),
                "g".to_owned(),
                "s1".to_owned()
            ),
        ]
    );
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_subscriber_is_dropped_while_others_keep_receiving() {
    const EVENTS: usize = 3000;
    let h = Harness::start_with(None, 2 * EVENTS, 64).await;
    // Separate connections, so the slow one's flow control does not hold back the other.
    let mut slow_client = h.client().await;
    let mut fast_client = h.client().await;
    let request = || pb::WatchEventsRequest {
        groups: vec![],
        channels: vec![],
    };
    let mut slow = slow_client
        .watch_events(request())
        .await
        .unwrap()
        .into_inner();
    let mut fast = fast_client
        .watch_events(request())
        .await
        .unwrap()
        .into_inner();
    let reader = tokio::spawn(async move {
        let mut n = 0;
        while n < EVENTS {
            match tokio::time::timeout(Duration::from_secs(10), fast.message()).await {
                Ok(Ok(Some(_))) => n += 1,
                other => panic!("fast subscriber after {n} events: {other:?}"),
            }
        }
        (n, fast)
    });
    // Large payloads fill the HTTP/2 windows and buffers of the slow stream quickly, so the
    // stream's own queue fills up well before the last event.
    let filler = "x".repeat(4096);
    for i in 0..EVENTS {
        h.publish(sdown(format!("{i} {filler}")));
        if i % 16 == 15 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
    let (received, _fast) = reader.await.unwrap();
    assert_eq!(received, EVENTS);

    let mut delivered = 0;
    let status = loop {
        match tokio::time::timeout(Duration::from_secs(10), slow.message()).await {
            Ok(Ok(Some(_))) => delivered += 1,
            Ok(Err(status)) => break status,
            other => panic!("slow subscriber after {delivered} events: {other:?}"),
        }
    };
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    assert!(
        status.message().contains("reconnect with min_epoch"),
        "{}",
        status.message()
    );
    assert!(delivered < EVENTS, "{delivered}");
    // The slow subscription is gone; the fast one's pump still listens.
    assert_eq!(h.events.receiver_count(), 1);
    h.stop().await;
}

#[tokio::test]
async fn health_and_reflection_are_served() {
    use tonic_health::pb::health_check_response::ServingStatus;
    use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};
    use tonic_reflection::pb::v1::ServerReflectionRequest;
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;

    let h = Harness::start(None).await;
    let channel = h.channel().await;
    let mut health = HealthClient::new(channel.clone());
    for service in ["", "vigil.v1.SentinelControl"] {
        let r = health
            .check(HealthCheckRequest {
                service: service.into(),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(r.status, ServingStatus::Serving as i32, "{service:?}");
    }

    let mut reflection = ServerReflectionClient::new(channel);
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut responses = reflection
        .server_reflection_info(tokio_stream::iter([request]))
        .await
        .unwrap()
        .into_inner();
    let response = responses.message().await.unwrap().unwrap();
    let Some(MessageResponse::ListServicesResponse(list)) = response.message_response else {
        panic!("not a service list: {response:?}");
    };
    let names: Vec<_> = list.service.iter().map(|s| s.name.as_str()).collect();
    assert!(names.contains(&"vigil.v1.SentinelControl"), "{names:?}");
    assert!(names.contains(&"grpc.health.v1.Health"), "{names:?}");
    h.stop().await;
}

#[tokio::test]
async fn tls_with_client_certificates() {
    let dir = tempfile::tempdir().unwrap();
    vigil_sentinel::tls::init_ca(dir.path()).unwrap();
    let (cert, key) =
        vigil_sentinel::tls::issue(dir.path(), "s1", &["127.0.0.1".into(), "localhost".into()])
            .unwrap();
    let (admin_cert, admin_key) = vigil_sentinel::tls::issue(dir.path(), "admin", &[]).unwrap();
    let ca = dir.path().join("ca.crt");
    let h = Harness::start(Some(ApiTls {
        cert,
        key,
        client_ca: Some(ca.clone()),
    }))
    .await;

    let ca_pem = std::fs::read(&ca).unwrap();
    let tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(&ca_pem))
        .domain_name("localhost");
    let connect = |tls: ClientTlsConfig| {
        let url = format!("https://{}", h.addr);
        async move {
            let channel = Endpoint::from_shared(url)?
                .tls_config(tls)?
                .connect_timeout(Duration::from_secs(5))
                .connect()
                .await?;
            let mut c = SentinelControlClient::new(channel);
            let m = c
                .get_master(pb::GetMasterRequest { group: "g".into() })
                .await?;
            Ok::<_, Box<dyn std::error::Error>>(m.into_inner())
        }
    };

    let identity = Identity::from_pem(
        std::fs::read(&admin_cert).unwrap(),
        std::fs::read(&admin_key).unwrap(),
    );
    let m = connect(tls.clone().identity(identity)).await.unwrap();
    assert_eq!(m.addr, "127.0.0.1:7000");

    assert!(
        connect(tls).await.is_err(),
        "a client without a certificate is refused"
    );

    let plain = async {
        let channel = Endpoint::from_shared(format!("http://{}", h.addr))?
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(5))
            .connect()
            .await?;
        let mut c = SentinelControlClient::new(channel);
        c.get_master(pb::GetMasterRequest { group: "g".into() })
            .await?;
        Ok::<_, Box<dyn std::error::Error>>(())
    };
    assert!(plain.await.is_err(), "a plaintext client is refused");
    h.stop().await;
}

#[tokio::test]
async fn bad_tls_files_are_reported() {
    let dir = tempfile::tempdir().unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let (_snapshot, snapshot_rx) = watch::channel(Arc::new(snapshot()));
    let (events, _) = broadcast::channel(16);
    let (inputs, _inputs_rx) = mpsc::channel(16);
    let ports = Ports {
        snapshot: snapshot_rx,
        events,
        inputs,
    };
    let missing = dir.path().join("missing.crt");
    let e = api::serve(
        listener,
        ports,
        Some(ApiTls {
            cert: missing.clone(),
            key: missing,
            client_ca: None,
        }),
        CancellationToken::new(),
    )
    .await
    .unwrap_err();
    assert!(matches!(e, ApiError::Read { .. }), "{e}");
}
