//! Core transition tests: one `Sentinel`, chosen inputs and instants, exact action lists.
//!
//! Periodic probes and INFO requests are filtered out by `decisions`, so that each test states
//! exactly the decisions (persists, messages, events) a transition produces.

use std::collections::BTreeSet;
use std::num::NonZeroU8;
use std::time::{Duration, Instant};

use super::*;

const S1: SentinelId = SentinelId(1);
const S2: SentinelId = SentinelId(2);
const S3: SentinelId = SentinelId(3);
const M: NodeId = NodeId(0);
const R: NodeId = NodeId(1);

fn group() -> GroupName {
    GroupName::new("g")
}

fn cfg() -> CoreConfig {
    let quorum = Quorum(NonZeroU8::new(2).expect("two is not zero"));
    let mut g = GroupConfig::new("g", M, vec![R], quorum);
    g.down_after = Duration::from_secs(1);
    let mut c = CoreConfig::new(BTreeSet::from([S1, S2, S3]), vec![g]);
    // Heartbeats would only add noise to these short transitions.
    c.heartbeat_interval = Duration::from_secs(60);
    c
}

/// A sentinel whose initial state is durable, with its start-up actions drained.
fn sentinel() -> (Sentinel, Instant) {
    let t0 = crate::testutil::t0();
    let mut s = Sentinel::new(S1, cfg(), 7, t0);
    let first = s.poll_action();
    assert!(matches!(first, Some(Action::Persist(ref d)) if d.version == PersistVersion(1)));
    assert_eq!(
        s.poll_action(),
        None,
        "nothing leaves before the first persist"
    );
    s.handle(
        t0,
        Input::Persisted {
            version: PersistVersion(1),
        },
    );
    decisions(&mut s);
    (s, t0)
}

/// Every pending action except the periodic probes and INFO requests.
fn decisions(s: &mut Sentinel) -> Vec<Action> {
    std::iter::from_fn(|| s.poll_action())
        .filter(|a| !matches!(a, Action::Probe { .. } | Action::Info { .. }))
        .collect()
}

fn opinion(down: bool) -> Gossip {
    Gossip::Opinion {
        group: group(),
        master: M,
        down,
    }
}

fn request_vote(term: u64) -> Gossip {
    Gossip::RequestVote {
        group: group(),
        term: Term(term),
        epoch: ConfigEpoch(0),
        reason: ElectionReason::MasterDown,
        master: M,
        agreed: Term(0),
        members: crate::core::MembersEpoch(1),
    }
}

/// Drives the sentinel until it sees the master SDOWN (no reply for `down_after`).
fn master_sdown(s: &mut Sentinel, t0: Instant) -> Instant {
    let t = t0 + cfg().groups[0].down_after;
    s.handle_timeout(t);
    t
}

#[test]
fn silence_for_down_after_marks_the_master_down_and_tells_peers_at_once() {
    let (mut s, t0) = sentinel();
    s.handle(t0, Input::ProbeFailed { node: M });
    assert_eq!(decisions(&mut s), vec![]);
    master_sdown(&mut s, t0);
    assert_eq!(
        decisions(&mut s),
        vec![
            Action::Publish(Event::SubjectivelyDown { node: M }),
            Action::SendGossip {
                to: S2,
                msg: opinion(true)
            },
            Action::SendGossip {
                to: S3,
                msg: opinion(true)
            },
            // The replica was silent as long; a replica's SDOWN is not pushed to peers.
            Action::Publish(Event::SubjectivelyDown { node: R }),
        ]
    );
}

#[test]
fn a_quorum_of_fresh_opinions_makes_the_master_objectively_down() {
    let (mut s, t0) = sentinel();
    let t = master_sdown(&mut s, t0);
    decisions(&mut s);
    s.handle(
        t,
        Input::GossipReceived {
            from: S2,
            msg: opinion(true),
        },
    );
    assert_eq!(
        decisions(&mut s),
        vec![Action::Publish(Event::ObjectivelyDown { group: group() })]
    );
}

#[test]
fn a_vote_is_released_only_after_it_is_durable() {
    let (mut s, t0) = sentinel();
    let t = master_sdown(&mut s, t0);
    decisions(&mut s);
    s.handle(
        t,
        Input::GossipReceived {
            from: S2,
            msg: request_vote(1),
        },
    );
    let actions = decisions(&mut s);
    assert_eq!(actions.len(), 1, "only the persist leaves: {actions:?}");
    let Action::Persist(state) = &actions[0] else {
        panic!("expected a persist, got {actions:?}");
    };
    assert_eq!(state.groups[&group()].vote, Some((Term(1), S2)));
    s.handle(
        t,
        Input::Persisted {
            version: state.version,
        },
    );
    assert_eq!(
        decisions(&mut s),
        vec![
            Action::Publish(Event::VoteGranted {
                group: group(),
                term: Term(1),
                candidate: S2,
            }),
            Action::Publish(Event::LeaseRevoked {
                group: group(),
                term: Term(1),
            }),
            Action::SendGossip {
                to: S2,
                msg: Gossip::Vote {
                    group: group(),
                    term: Term(1),
                    granted: true,
                    lease_wait: Duration::ZERO,
                    lineage: Vec::new(),
                    edges: Vec::new(),
                },
            },
        ]
    );
}

#[test]
fn a_second_candidate_of_the_same_term_is_refused() {
    let (mut s, t0) = sentinel();
    let t = master_sdown(&mut s, t0);
    s.handle(
        t,
        Input::GossipReceived {
            from: S2,
            msg: request_vote(1),
        },
    );
    s.handle(
        t,
        Input::Persisted {
            version: PersistVersion(2),
        },
    );
    decisions(&mut s);
    s.handle(
        t,
        Input::GossipReceived {
            from: S3,
            msg: request_vote(1),
        },
    );
    assert_eq!(
        decisions(&mut s),
        vec![Action::SendGossip {
            to: S3,
            msg: Gossip::Vote {
                group: group(),
                term: Term(1),
                granted: false,
                lease_wait: Duration::ZERO,
                lineage: Vec::new(),
                edges: Vec::new(),
            },
        }]
    );
}

#[test]
fn no_vote_while_the_master_looks_healthy() {
    let (mut s, t0) = sentinel();
    s.handle(
        t0,
        Input::GossipReceived {
            from: S2,
            msg: request_vote(1),
        },
    );
    assert_eq!(
        decisions(&mut s),
        vec![Action::SendGossip {
            to: S2,
            msg: Gossip::Vote {
                group: group(),
                term: Term(1),
                granted: false,
                lease_wait: Duration::ZERO,
                lineage: Vec::new(),
                edges: Vec::new(),
            },
        }]
    );
}

#[test]
fn a_newer_config_wins_and_is_persisted_before_it_is_published() {
    let (mut s, t0) = sentinel();
    let msg = Gossip::Config {
        group: group(),
        epoch: ConfigEpoch(3),
        master: R,
        lineage: Vec::new(),
        options: None,
        removed: false,
        agreed: Term(0),
        reset: Term(0),
    };
    s.handle(
        t0,
        Input::GossipReceived {
            from: S2,
            msg: msg.clone(),
        },
    );
    let actions = decisions(&mut s);
    assert!(
        matches!(&actions[..], [Action::Persist(d)] if d.groups[&group()].epoch == ConfigEpoch(3))
    );
    s.handle(
        t0,
        Input::Persisted {
            version: PersistVersion(2),
        },
    );
    assert_eq!(
        decisions(&mut s),
        vec![Action::Publish(Event::SwitchMaster {
            group: group(),
            old: M,
            new: R,
            epoch: ConfigEpoch(3),
        })]
    );
    // An older config changes nothing.
    let old = Gossip::Config {
        group: group(),
        epoch: ConfigEpoch(2),
        master: M,
        lineage: Vec::new(),
        options: None,
        removed: false,
        agreed: Term(0),
        reset: Term(0),
    };
    s.handle(t0, Input::GossipReceived { from: S3, msg: old });
    assert_eq!(decisions(&mut s), vec![]);
    assert_eq!(s.config_of(&group()), Some((ConfigEpoch(3), R)));
}

fn member(epoch: u64, msg: MemberMsg) -> Gossip {
    Gossip::Membership {
        cluster: members::cluster_id(&BTreeSet::from([S1, S2, S3]), 0),
        epoch: MembersEpoch(epoch),
        msg,
    }
}

fn persisted(s: &mut Sentinel, t: Instant) {
    let version = s.durable().version;
    s.handle(t, Input::Persisted { version });
}

/// The membership messages among `actions`, with their destinations.
fn member_msgs(actions: &[Action]) -> Vec<(SentinelId, MemberMsg)> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::SendGossip {
                to,
                msg: Gossip::Membership { msg, .. },
            } => Some((*to, msg.clone())),
            _ => None,
        })
        .collect()
}

fn promise(round: u64, by: SentinelId) -> MemberMsg {
    MemberMsg::Promise {
        ballot: Ballot { round, by: by.0 },
        accepted: None,
        accepted_incarnations: Vec::new(),
        term: Term(0),
        fences: Vec::new(),
        lease_wait: Duration::ZERO,
    }
}

#[test]
fn a_stranger_joins_only_through_an_agreed_change_of_the_voter_set() {
    let (mut s, t0) = sentinel();
    let stranger = SentinelId(9);
    // Its gossip is ignored, and a hello alone admits nobody.
    for msg in [request_vote(1), Gossip::Hello] {
        s.handle(
            t0,
            Input::GossipReceived {
                from: stranger,
                msg,
            },
        );
        assert_eq!(decisions(&mut s), vec![]);
    }
    // Its join starts a change: our promise is durable before the prepares leave.
    s.handle(
        t0,
        Input::GossipReceived {
            from: stranger,
            msg: member(0, MemberMsg::Join { incarnation: 5 }),
        },
    );
    let actions = decisions(&mut s);
    assert!(matches!(&actions[0], Action::Persist(d) if d.members.promised.by == S1.0));
    assert!(member_msgs(&actions).is_empty(), "{actions:?}");
    persisted(&mut s, t0);
    let ballot = Ballot { round: 1, by: S1.0 };
    assert_eq!(
        member_msgs(&decisions(&mut s)),
        vec![
            (S2, MemberMsg::Prepare { ballot }),
            (S3, MemberMsg::Prepare { ballot })
        ]
    );
    assert!(!s.voters().contains(&stranger));
    // A majority of the current set (us and S2) promises: accept the set with the stranger.
    s.handle(
        t0,
        Input::GossipReceived {
            from: S2,
            msg: member(1, promise(1, S1)),
        },
    );
    persisted(&mut s, t0);
    let with = vec![S1, S2, S3, stranger];
    assert_eq!(
        member_msgs(&decisions(&mut s)),
        vec![
            (
                S2,
                MemberMsg::Accept {
                    ballot,
                    voters: with.clone(),
                    incarnations: vec![(stranger, 5)],
                }
            ),
            (
                S3,
                MemberMsg::Accept {
                    ballot,
                    voters: with.clone(),
                    incarnations: vec![(stranger, 5)],
                }
            )
        ]
    );
    // S2 accepts: decided; the commit goes to the old voters and the new one.
    s.handle(
        t0,
        Input::GossipReceived {
            from: S2,
            msg: member(1, MemberMsg::Accepted { ballot }),
        },
    );
    persisted(&mut s, t0);
    let actions = decisions(&mut s);
    assert!(actions.contains(&Action::Publish(Event::SentinelAdded { id: stranger })));
    let commits: Vec<SentinelId> = member_msgs(&actions)
        .into_iter()
        .filter(|(_, m)| matches!(m, MemberMsg::Commit { voters, .. } if *voters == with))
        .map(|(to, _)| to)
        .collect();
    assert_eq!(commits, vec![S2, S3, stranger]);
    assert_eq!(s.members().epoch, MembersEpoch(2));
    assert_eq!(s.voters().iter().copied().collect::<Vec<_>>(), with);
    // The commit to it was lost: the same state file asking again gets the set at once.
    s.handle(
        t0,
        Input::GossipReceived {
            from: stranger,
            msg: member(0, MemberMsg::Join { incarnation: 5 }),
        },
    );
    assert!(matches!(
        &member_msgs(&decisions(&mut s))[..],
        [(to, MemberMsg::Commit { .. })] if *to == stranger
    ));
    // Another state file under its name lost its state: no commit of this epoch, a new one.
    s.handle(
        t0,
        Input::GossipReceived {
            from: stranger,
            msg: member(0, MemberMsg::Join { incarnation: 6 }),
        },
    );
    persisted(&mut s, t0);
    let msgs = member_msgs(&decisions(&mut s));
    assert!(!msgs.is_empty());
    assert!(
        msgs.iter()
            .all(|(_, m)| matches!(m, MemberMsg::Prepare { .. })),
        "{msgs:?}"
    );
}

#[test]
fn an_unjoined_sentinel_asks_its_peers_and_adopts_only_a_set_that_admits_it() {
    let t0 = crate::testutil::t0();
    let mut c = cfg();
    c.joining = true;
    let mut s = Sentinel::new(S1, c, 7, t0);
    persisted(&mut s, t0);
    decisions(&mut s);
    assert!(!s.voting());
    s.handle(
        t0,
        Input::GossipReceived {
            from: S2,
            msg: Gossip::Hello,
        },
    );
    assert!(matches!(
        &member_msgs(&decisions(&mut s))[..],
        [(to, MemberMsg::Join { .. })] if *to == S2
    ));
    let commit = |voters: Vec<SentinelId>| MemberMsg::Commit {
        voters,
        floor: Term(4),
        fences: Vec::new(),
        incarnations: Vec::new(),
    };
    s.handle(
        t0,
        Input::GossipReceived {
            from: S2,
            msg: member(2, commit(vec![S2, S3])),
        },
    );
    assert_eq!(decisions(&mut s), vec![], "a set without us is not ours");
    s.handle(
        t0,
        Input::GossipReceived {
            from: S2,
            msg: member(2, commit(vec![S1, S2])),
        },
    );
    assert!(s.voting());
    assert_eq!(s.members().epoch, MembersEpoch(2));
    assert_eq!(s.members().floor, Term(4));
}

#[test]
fn a_voter_that_promised_in_a_change_or_is_of_another_epoch_refuses_group_votes() {
    let (mut s, t0) = sentinel();
    let t = master_sdown(&mut s, t0);
    decisions(&mut s);
    let vote_of = |actions: &[Action]| {
        actions.iter().find_map(|a| match a {
            Action::SendGossip {
                msg: Gossip::Vote { granted, .. },
                ..
            } => Some(*granted),
            _ => None,
        })
    };
    // Another epoch: refused.
    let mut other = request_vote(1);
    if let Gossip::RequestVote { members, .. } = &mut other {
        *members = MembersEpoch(2);
    }
    s.handle(
        t,
        Input::GossipReceived {
            from: S2,
            msg: other,
        },
    );
    assert_eq!(vote_of(&decisions(&mut s)), Some(false));
    // A promise in this epoch's change: refused too, until the next set is adopted.
    s.handle(
        t,
        Input::GossipReceived {
            from: S3,
            msg: member(
                1,
                MemberMsg::Prepare {
                    ballot: Ballot { round: 1, by: S3.0 },
                },
            ),
        },
    );
    persisted(&mut s, t);
    let actions = decisions(&mut s);
    assert!(matches!(
        &member_msgs(&actions)[..],
        [(to, MemberMsg::Promise { .. })] if *to == S3
    ));
    s.handle(
        t,
        Input::GossipReceived {
            from: S2,
            msg: request_vote(1),
        },
    );
    assert_eq!(vote_of(&decisions(&mut s)), Some(false));
    // The set of epoch 2 with a floor of 5: a term at or below it is refused, one above is
    // granted.
    s.handle(
        t,
        Input::GossipReceived {
            from: S3,
            msg: member(
                2,
                MemberMsg::Commit {
                    voters: vec![S1, S2, S3],
                    floor: Term(5),
                    fences: Vec::new(),
                    incarnations: Vec::new(),
                },
            ),
        },
    );
    persisted(&mut s, t);
    decisions(&mut s);
    let at_epoch_2 = |term: u64| {
        let mut v = request_vote(term);
        if let Gossip::RequestVote { members, .. } = &mut v {
            *members = MembersEpoch(2);
        }
        v
    };
    s.handle(
        t,
        Input::GossipReceived {
            from: S2,
            msg: at_epoch_2(5),
        },
    );
    assert_eq!(vote_of(&decisions(&mut s)), Some(false));
    s.handle(
        t,
        Input::GossipReceived {
            from: S2,
            msg: at_epoch_2(6),
        },
    );
    persisted(&mut s, t);
    assert_eq!(vote_of(&decisions(&mut s)), Some(true));
}

#[test]
fn a_decided_change_is_committed_only_after_the_acceptors_leases_expired() {
    let (mut s, t0) = sentinel();
    s.handle(
        t0,
        Input::ForgetRequested {
            id: 7,
            sentinel: S3,
        },
    );
    persisted(&mut s, t0);
    decisions(&mut s);
    let lease = Duration::from_millis(800);
    s.handle(
        t0,
        Input::GossipReceived {
            from: S2,
            msg: member(
                1,
                MemberMsg::Promise {
                    ballot: Ballot { round: 1, by: S1.0 },
                    accepted: None,
                    accepted_incarnations: Vec::new(),
                    term: Term(3),
                    fences: vec![(group(), ConfigEpoch(2))],
                    lease_wait: lease,
                },
            ),
        },
    );
    persisted(&mut s, t0);
    decisions(&mut s);
    let ballot = Ballot { round: 1, by: S1.0 };
    s.handle(
        t0,
        Input::GossipReceived {
            from: S2,
            msg: member(1, MemberMsg::Accepted { ballot }),
        },
    );
    assert_eq!(
        decisions(&mut s),
        vec![],
        "decided, but S2's lease may still stand"
    );
    assert_eq!(s.members().epoch, MembersEpoch(1));
    let end = t0 + lease.mul_f64(1.0 + s.config().clock_rate_bound);
    assert!(s.poll_timeout().is_some_and(|t| t <= end));
    s.handle_timeout(end);
    persisted(&mut s, end);
    let actions = decisions(&mut s);
    assert!(
        actions.contains(&Action::Publish(Event::MembershipConfirmed {
            id: 7,
            epoch: MembersEpoch(2),
        })),
        "{actions:?}"
    );
    assert_eq!(s.members().epoch, MembersEpoch(2));
    assert_eq!(s.members().floor, Term(3));
    assert_eq!(s.members().fences.get(&group()), Some(&ConfigEpoch(2)));
    assert!(!s.voters().contains(&S3));
}

#[test]
fn a_voter_that_asks_to_join_again_is_admitted_only_under_a_new_epoch() {
    // S3 lost its state file, votes included: the set it gets must be a new epoch, never the
    // current one under which its forgotten votes count.
    let (mut s, t0) = sentinel();
    s.handle(
        t0,
        Input::GossipReceived {
            from: S3,
            msg: member(0, MemberMsg::Join { incarnation: 9 }),
        },
    );
    persisted(&mut s, t0);
    let msgs = member_msgs(&decisions(&mut s));
    assert!(
        msgs.iter()
            .all(|(_, m)| matches!(m, MemberMsg::Prepare { .. })),
        "{msgs:?}"
    );
    assert_eq!(msgs.len(), 2, "{msgs:?}");
}

#[test]
fn a_lagging_voter_pulls_the_set_from_a_peer_of_a_newer_epoch() {
    let (mut s, t0) = sentinel();
    let cluster = members::cluster_id(&BTreeSet::from([S1, S2, S3]), 0);
    let heartbeat = |members: u64| Gossip::Heartbeat {
        voters: Vec::new(),
        configs: Vec::new(),
        cluster,
        members: MembersEpoch(members),
    };
    s.handle(
        t0,
        Input::GossipReceived {
            from: S2,
            msg: heartbeat(5),
        },
    );
    assert!(matches!(
        &member_msgs(&decisions(&mut s))[..],
        [(to, MemberMsg::Nack { .. })] if *to == S2
    ));
    // A heartbeat of epoch 0 (a sentinel not admitted yet) gets nothing: it joins by asking.
    s.handle(
        t0,
        Input::GossipReceived {
            from: S2,
            msg: heartbeat(0),
        },
    );
    assert_eq!(member_msgs(&decisions(&mut s)), vec![]);
    // Another cluster's heartbeat: nothing.
    s.handle(
        t0,
        Input::GossipReceived {
            from: S2,
            msg: Gossip::Heartbeat {
                voters: Vec::new(),
                configs: Vec::new(),
                cluster: cluster ^ 1,
                members: MembersEpoch(5),
            },
        },
    );
    assert_eq!(member_msgs(&decisions(&mut s)), vec![]);
}

#[test]
fn ballots_in_another_name_or_far_ahead_are_refused() {
    let (mut s, t0) = sentinel();
    for ballot in [
        Ballot { round: 1, by: S3.0 },
        Ballot {
            round: u64::MAX,
            by: S2.0,
        },
    ] {
        s.handle(
            t0,
            Input::GossipReceived {
                from: S2,
                msg: member(1, MemberMsg::Prepare { ballot }),
            },
        );
        assert_eq!(decisions(&mut s), vec![], "{ballot:?}");
        assert_eq!(s.members().promised, Ballot::default());
    }
    // A commit far ahead is refused too.
    s.handle(
        t0,
        Input::GossipReceived {
            from: S2,
            msg: member(
                u64::MAX,
                MemberMsg::Commit {
                    voters: vec![S1, S2],
                    floor: Term(0),
                    fences: Vec::new(),
                    incarnations: Vec::new(),
                },
            ),
        },
    );
    assert_eq!(s.members().epoch, MembersEpoch(1));
}

#[test]
fn bad_forget_requests_are_refused_with_a_reason() {
    let (mut s, t0) = sentinel();
    let failed = |s: &mut Sentinel| {
        decisions(s).into_iter().find_map(|a| match a {
            Action::Publish(Event::MembershipFailed { reason, .. }) => Some(reason),
            _ => None,
        })
    };
    s.handle(
        t0,
        Input::ForgetRequested {
            id: 1,
            sentinel: S1,
        },
    );
    assert!(matches!(failed(&mut s), Some(AdminError::Invalid(_))));
    // Not a voter: nothing to do, confirmed at once.
    s.handle(
        t0,
        Input::ForgetRequested {
            id: 2,
            sentinel: SentinelId(40),
        },
    );
    assert!(
        decisions(&mut s).contains(&Action::Publish(Event::MembershipConfirmed {
            id: 2,
            epoch: MembersEpoch(1),
        }))
    );
    s.handle(
        t0,
        Input::ForgetRequested {
            id: 3,
            sentinel: S3,
        },
    );
    persisted(&mut s, t0);
    decisions(&mut s);
    s.handle(
        t0,
        Input::ForgetRequested {
            id: 4,
            sentinel: S2,
        },
    );
    assert_eq!(failed(&mut s), Some(AdminError::MembershipBusy));
    // Nobody answers: the first fails at its deadline.
    let deadline = t0 + MEMBER_REQUEST_TIMEOUT;
    let mut t = t0;
    while let Some(next) = s.poll_timeout().filter(|n| *n <= deadline) {
        t = next;
        s.handle_timeout(t);
        persisted(&mut s, t);
        if let Some(reason) = failed(&mut s) {
            assert_eq!(reason, AdminError::NoMembershipMajority);
            assert!(t >= deadline);
            return;
        }
    }
    panic!("no failure by the deadline (last timer at {:?})", t - t0);
}

#[test]
fn config_validation_rejects_an_unreachable_quorum() {
    let mut c = cfg();
    c.voters = BTreeSet::from([S1]);
    assert_eq!(
        c.validate(),
        Err(ConfigError::QuorumTooLarge {
            group: group(),
            quorum: 2,
            voters: 1,
        })
    );
    assert_eq!(cfg().validate(), Ok(()));
}

/// Drives `s` to the point where replica `R`, reporting `role:master` for the whole grace
/// period, is due to be reconfigured; returns the `ConfigQuery` ids sent and the time.
fn disagreeing_replica(s: &mut Sentinel, t0: Instant) -> (Vec<u64>, Instant) {
    let info = |role: NodeRole| NodeInfo {
        run_id: RunId(5),
        role,
        replid: ReplId(5),
        replid2: ReplId::default(),
        replid2_until: ReplOffset(0),
        offset: ReplOffset(10),
        priority: Priority(100),
        dc: None,
        empty: false,
    };
    let reply = ProbeReply {
        status: ProbeStatus::Pong,
        clock: None,
    };
    let rogue = NodeRole::Master {
        replicas: Vec::new(),
    };
    let t1 = t0 + cfg().convergence_grace;
    for (at, seq) in [(t0, 1), (t1, 2)] {
        for node in [M, R] {
            s.handle(at, Input::NodeReplied { node, reply });
        }
        for from in [S2, S3] {
            let msg = Gossip::Hello;
            s.handle(at, Input::GossipReceived { from, msg });
        }
        s.handle(
            at,
            Input::InfoReceived {
                node: R,
                seq: InfoSeq(1000 + seq),
                info: info(rogue.clone()),
            },
        );
    }
    let ids = decisions(s)
        .into_iter()
        .filter_map(|a| match a {
            Action::SendGossip {
                msg: Gossip::ConfigQuery { id, epoch, .. },
                ..
            } => {
                assert_eq!(epoch, ConfigEpoch(0));
                Some(id)
            }
            Action::Reconfigure { .. } => panic!("reconfigured before confirming the config"),
            _ => None,
        })
        .collect();
    (ids, t1)
}

fn config_answer(id: u64, epoch: u64, master: NodeId, fenced: bool) -> Gossip {
    Gossip::ConfigAnswer {
        group: group(),
        id,
        epoch: ConfigEpoch(epoch),
        master,
        fenced,
    }
}

#[test]
fn a_disagreeing_node_is_reconfigured_only_after_a_majority_confirms_the_config() {
    let (mut s, t0) = sentinel();
    let (ids, t1) = disagreeing_replica(&mut s, t0);
    assert_eq!(ids.len(), 2, "one query per peer");
    let id = ids[0];
    // A fenced peer confirms nothing; an answer to another query neither.
    let fenced = config_answer(id, 0, M, true);
    s.handle(
        t1,
        Input::GossipReceived {
            from: S3,
            msg: fenced,
        },
    );
    let other = config_answer(id ^ 1, 0, M, false);
    s.handle(
        t1,
        Input::GossipReceived {
            from: S2,
            msg: other,
        },
    );
    assert_eq!(decisions(&mut s), vec![]);
    let ok = config_answer(id, 0, M, false);
    s.handle(t1, Input::GossipReceived { from: S2, msg: ok });
    assert_eq!(
        decisions(&mut s),
        vec![
            Action::Reconfigure { node: R, master: M },
            Action::Publish(Event::ConvertedToReplica {
                group: group(),
                node: R,
                master: M,
            }),
        ]
    );
}

#[test]
fn a_newer_config_in_an_answer_is_adopted_instead_of_reconfiguring() {
    let (mut s, t0) = sentinel();
    let (ids, t1) = disagreeing_replica(&mut s, t0);
    let newer = config_answer(ids[0], 2, R, false);
    s.handle(
        t1,
        Input::GossipReceived {
            from: S2,
            msg: newer,
        },
    );
    let actions = decisions(&mut s);
    assert!(
        matches!(&actions[..], [Action::Persist(d)] if d.groups[&group()].epoch == ConfigEpoch(2)),
        "{actions:?}"
    );
    assert_eq!(s.config_of(&group()), Some((ConfigEpoch(2), R)));
    let late = config_answer(ids[0], 0, M, false);
    s.handle(
        t1,
        Input::GossipReceived {
            from: S3,
            msg: late,
        },
    );
    assert!(
        !decisions(&mut s)
            .iter()
            .any(|a| matches!(a, Action::Reconfigure { .. })),
        "the void check reconfigured a node"
    );
}

/// The master of a new config answers empty while the old master answers with data: the
/// master lost its data only if that data lies on the master's history (the lineage the
/// config came with), not if it is a stale branch of an earlier epoch (1108598).
#[test]
fn an_empty_master_is_taken_for_restarted_only_if_a_replica_holds_its_history() {
    let info = |role: NodeRole, replid: u64, offset: u64| NodeInfo {
        run_id: RunId(replid),
        role,
        replid: ReplId(replid),
        replid2: ReplId::default(),
        replid2_until: ReplOffset(0),
        offset: ReplOffset(offset),
        priority: Priority(100),
        dc: None,
        empty: offset == 0,
    };
    let master = || NodeRole::Master {
        replicas: Vec::new(),
    };
    let reply = ProbeReply {
        status: ProbeStatus::Pong,
        clock: None,
    };
    // R became the master of epoch 3 (id 20) holding history 10 up to offset 5, and now
    // answers empty; M, the old master, holds one write under history `stale`: one of R's
    // writes (10), or a branch nobody acknowledged (30).
    for (stale, restarted) in [(30, false), (10, true)] {
        let (mut s, t0) = sentinel();
        let msg = Gossip::Config {
            group: group(),
            epoch: ConfigEpoch(3),
            master: R,
            lineage: vec![
                (ReplId(20), ReplOffset(u64::MAX)),
                (ReplId(10), ReplOffset(5)),
            ],
            options: None,
            removed: false,
            agreed: Term(0),
            reset: Term(0),
        };
        s.handle(t0, Input::GossipReceived { from: S2, msg });
        for node in [M, R] {
            s.handle(t0, Input::NodeReplied { node, reply });
        }
        let seq = InfoSeq(1000);
        s.handle(
            t0,
            Input::InfoReceived {
                node: M,
                seq,
                info: info(master(), stale, 1),
            },
        );
        s.handle(
            t0,
            Input::InfoReceived {
                node: R,
                seq,
                info: info(master(), 20, 0),
            },
        );
        // Confirm every persist, so that the events held behind them come out.
        let mut flagged = false;
        loop {
            let actions = decisions(&mut s);
            if actions.is_empty() {
                break;
            }
            for a in actions {
                match a {
                    Action::Persist(d) => s.handle(t0, Input::Persisted { version: d.version }),
                    Action::Publish(Event::RestartedEmpty { node }) => flagged |= node == R,
                    _ => {}
                }
            }
        }
        assert_eq!(flagged, restarted, "old master under history {stale}");
    }
}

#[test]
fn maintenance_is_sent_to_every_voter_and_a_paused_voter_refuses_votes() {
    let (mut s, t0) = sentinel();
    s.handle(
        t0,
        Input::MaintenanceRequested {
            group: group(),
            paused: true,
        },
    );
    let pause = Gossip::Maintenance {
        group: group(),
        paused: true,
    };
    let acts = decisions(&mut s);
    for peer in [S2, S3] {
        assert!(
            acts.contains(&Action::SendGossip {
                to: peer,
                msg: pause.clone()
            }),
            "{acts:?}"
        );
    }
    assert!(s.group_view(&group()).is_some_and(|v| v.paused));

    // A peer's resume message lifts it here too.
    s.handle(
        t0,
        Input::GossipReceived {
            from: S2,
            msg: Gossip::Maintenance {
                group: group(),
                paused: false,
            },
        },
    );
    assert!(s.group_view(&group()).is_some_and(|v| !v.paused));
    // ... and a peer's pause pauses it, after which it refuses to vote even with the master down.
    s.handle(
        t0,
        Input::GossipReceived {
            from: S3,
            msg: pause,
        },
    );
    assert!(s.group_view(&group()).is_some_and(|v| v.paused));
    let t = master_sdown(&mut s, t0);
    decisions(&mut s);
    s.handle(
        t,
        Input::GossipReceived {
            from: S2,
            msg: request_vote(1),
        },
    );
    let votes: Vec<Action> = decisions(&mut s)
        .into_iter()
        .filter(|a| {
            matches!(
                a,
                Action::SendGossip {
                    msg: Gossip::Vote { .. },
                    ..
                }
            )
        })
        .collect();
    assert!(!votes.is_empty(), "the vote request got no answer");
    assert!(
        votes.iter().all(|a| matches!(
            a,
            Action::SendGossip {
                msg: Gossip::Vote { granted: false, .. },
                ..
            }
        )),
        "a paused sentinel granted a vote: {votes:?}"
    );
}

/// A configured master that reports `role:slave` still holds every write it accepted only
/// while its data is its own history of the epoch (unbounded in the lineage), its link is
/// down and it still reports the secondary id a full resync would have cleared (1222038).
#[test]
fn a_demoted_master_is_intact_only_on_its_own_history_with_its_link_down() {
    let info = |link_up: bool, replid: u64, offset: u64, priority: u32| NodeInfo {
        run_id: RunId(1),
        role: NodeRole::Replica { master: R, link_up },
        replid: ReplId(replid),
        replid2: ReplId(1),
        replid2_until: ReplOffset(53),
        offset: ReplOffset(offset),
        priority: Priority(priority),
        dc: None,
        empty: offset == 0,
    };
    // The master's own id 7, continued from 1 at offset 53.
    let lineage = std::collections::BTreeMap::from([
        (ReplId(7), ReplOffset(u64::MAX)),
        (ReplId(1), ReplOffset(53)),
    ]);
    let edges = std::collections::BTreeSet::from([(ReplId(7), ReplId(1), ReplOffset(53))]);
    let intact = |i: &NodeInfo| failover::intact_master(&lineage, &edges, i);
    assert_eq!(intact(&info(false, 7, 60, 100)), Some(ReplOffset(60)));
    // Synchronised with someone since: the id is the source's, even if it is the master's.
    assert_eq!(intact(&info(true, 7, 60, 100)), None);
    // An older id of the lineage: another node's data, or a copy of part of it.
    assert_eq!(intact(&info(false, 1, 53, 100)), None);
    // A history the lineage does not know.
    assert_eq!(intact(&info(false, 9, 60, 100)), None);
    // Fully resynchronised since (from a lagging replica of its own history, which passes
    // the id on): the secondary id is cleared, and the data may be shorter.
    let resynced = NodeInfo {
        replid2: ReplId::default(),
        replid2_until: ReplOffset(0),
        ..info(false, 7, 40, 100)
    };
    assert_eq!(intact(&resynced), None);
    // Never promoted.
    assert_eq!(intact(&info(false, 7, 60, 0)), None);
    // Reporting itself master: not demoted (the failover aborts or reaffirms instead).
    let master = NodeInfo {
        role: NodeRole::Master {
            replicas: Vec::new(),
        },
        ..info(false, 7, 60, 100)
    };
    assert_eq!(intact(&master), None);
}

const R2: NodeId = NodeId(2);

/// A leader of term 1 of a switchover of M (replicas R and R2) towards `target`, whose voter
/// S2 granted leases that last `lease_wait`; the actions up to the election are drained.
fn switchover_leader(target: Option<NodeId>, lease_wait: Duration) -> (Sentinel, Instant) {
    let mut c = cfg();
    c.groups[0].replicas = vec![R, R2];
    let t0 = crate::testutil::t0();
    let mut s = Sentinel::new(S1, c, 7, t0);
    let all: Vec<Action> = std::iter::from_fn(|| s.poll_action()).collect();
    assert!(matches!(all.as_slice(), [Action::Persist(_)]), "{all:?}");
    s.handle(
        t0,
        Input::Persisted {
            version: PersistVersion(1),
        },
    );
    decisions(&mut s);
    s.handle(
        t0,
        Input::SwitchoverRequested {
            group: group(),
            target,
        },
    );
    let persisted = decisions(&mut s)
        .into_iter()
        .find_map(|a| match a {
            Action::Persist(d) => Some(d.version),
            _ => None,
        })
        .expect("the candidacy is persisted");
    s.handle(t0, Input::Persisted { version: persisted });
    decisions(&mut s);
    s.handle(
        t0,
        Input::GossipReceived {
            from: S2,
            msg: Gossip::Vote {
                group: group(),
                term: Term(1),
                granted: true,
                lease_wait,
                lineage: Vec::new(),
                edges: Vec::new(),
            },
        },
    );
    (s, t0)
}

/// INFO of a member of the switchover group: one history (7), offset 100.
fn member_info(role: NodeRole, priority: u32) -> NodeInfo {
    NodeInfo {
        run_id: RunId(40 + u64::from(priority)),
        role,
        replid: ReplId(7),
        replid2: ReplId::default(),
        replid2_until: ReplOffset(0),
        offset: ReplOffset(100),
        priority: Priority(priority),
        dc: None,
        empty: false,
    }
}

/// INFO of the switchover group before any change: M master, R (priority 10, so it ranks
/// first) and R2 (`r2_priority`) its replicas.
fn before(node: NodeId, r2_priority: u32) -> NodeInfo {
    let replica = NodeRole::Replica {
        master: M,
        link_up: true,
    };
    match node {
        M => member_info(
            NodeRole::Master {
                replicas: vec![R, R2],
            },
            100,
        ),
        R => member_info(replica, 10),
        _ => member_info(replica, r2_priority),
    }
}

/// Answers every INFO request with `info(node)` and confirms every persist, until the
/// sentinel asks nothing more; returns the other actions.
fn answer_with(s: &mut Sentinel, t: Instant, info: impl Fn(NodeId) -> NodeInfo) -> Vec<Action> {
    let mut other = Vec::new();
    // Bounded: each round answers what the previous one asked.
    for _ in 0..10 {
        let pending: Vec<Action> = std::iter::from_fn(|| s.poll_action()).collect();
        if pending.is_empty() {
            break;
        }
        for a in pending {
            match a {
                Action::Info { node, seq } => {
                    let info = info(node);
                    s.handle(t, Input::InfoReceived { node, seq, info });
                }
                Action::Persist(d) => {
                    s.handle(t, Input::Persisted { version: d.version });
                }
                Action::Probe { .. } => {}
                a => other.push(a),
            }
        }
    }
    other
}

/// `answer_with` the group as it is `before` the switchover.
fn answer_infos(s: &mut Sentinel, t: Instant, r2_priority: u32) -> Vec<Action> {
    answer_with(s, t, |n| before(n, r2_priority))
}

#[test]
fn a_switchover_revokes_the_masters_leases_after_pausing_it_and_skips_the_lease_wait() {
    let (mut s, t0) = switchover_leader(None, Duration::from_millis(800));
    let actions = decisions(&mut s);
    let timeout = cfg().groups[0].failover_timeout;
    let pause = actions
        .iter()
        .position(|a| *a == Action::PauseWrites { node: M, timeout });
    let revoke = actions.iter().position(|a| {
        *a == Action::RevokeLeases {
            node: M,
            term: Term(1),
        }
    });
    assert!(
        matches!((pause, revoke), (Some(p), Some(r)) if p < r),
        "{actions:?}"
    );
    // Still waiting for the leases: nothing selected yet.
    let t = t0 + Duration::from_millis(5);
    assert!(
        !answer_infos(&mut s, t, 50)
            .iter()
            .any(|a| matches!(a, Action::Promote { .. }))
    );
    // The answer to another term's revocation, or from another node, changes nothing.
    s.handle(
        t,
        Input::LeasesRevoked {
            node: M,
            term: Term(0),
        },
    );
    s.handle(
        t,
        Input::LeasesRevoked {
            node: R,
            term: Term(1),
        },
    );
    assert!(
        !std::iter::from_fn(|| s.poll_action()).any(|a| matches!(a, Action::Info { .. })),
        "no selection started"
    );
    // The master's `+OK`: selection starts at once, long before the leases would expire.
    s.handle(
        t,
        Input::LeasesRevoked {
            node: M,
            term: Term(1),
        },
    );
    let actions = answer_infos(&mut s, t, 50);
    assert!(
        actions.contains(&Action::Promote { node: R }),
        "{actions:?}"
    );
}

#[test]
fn a_switchover_target_is_promoted_over_the_best_ranked_replica() {
    let (mut s, t0) = switchover_leader(Some(R2), Duration::ZERO);
    decisions(&mut s);
    s.handle_timeout(t0);
    let actions = answer_infos(&mut s, t0, 50);
    assert!(
        actions.contains(&Action::Promote { node: R2 }),
        "{actions:?}"
    );
    assert!(
        !actions.contains(&Action::Promote { node: R }),
        "{actions:?}"
    );
}

#[test]
fn a_switchover_whose_target_is_not_eligible_aborts_at_its_deadline() {
    let (mut s, t0) = switchover_leader(Some(R2), Duration::ZERO);
    decisions(&mut s);
    s.handle_timeout(t0);
    // R2 has priority 0 this time: never promoted, not even in favour of R.
    let mut actions = answer_infos(&mut s, t0, 0);
    let end = t0 + cfg().groups[0].failover_timeout;
    let mut t = t0;
    while t < end {
        t = s
            .poll_timeout()
            .expect("the failover step has a deadline")
            .max(t);
        s.handle_timeout(t);
        actions.extend(answer_infos(&mut s, t, 0));
    }
    assert!(
        !actions.iter().any(|a| matches!(a, Action::Promote { .. })),
        "{actions:?}"
    );
    assert!(
        actions.contains(&Action::Publish(Event::FailoverAborted {
            group: group(),
            term: Term(1),
            reason: AbortReason::TargetNotEligible,
        })),
        "{actions:?}"
    );
    assert!(actions.contains(&Action::UnpauseWrites { node: M }));
}

#[test]
fn replicaof_acknowledgements_confirm_the_promotion_and_release_the_old_master_at_once() {
    let (mut s, t0) = switchover_leader(None, Duration::ZERO);
    decisions(&mut s);
    s.handle_timeout(t0);
    let actions = answer_infos(&mut s, t0, 50);
    assert!(
        actions.contains(&Action::Promote { node: R }),
        "{actions:?}"
    );
    // The INFO sent with the command was read before `REPLICAOF NO ONE` ran: still a replica.
    // Its `+OK` makes the leader read R again at once, not at the next role poll.
    s.handle(t0, Input::ReplicaofAcknowledged { node: R });
    let promoted = |n: NodeId| match n {
        R => member_info(NodeRole::Master { replicas: vec![] }, 10),
        n => before(n, 50),
    };
    let actions = answer_with(&mut s, t0, promoted);
    assert!(
        actions.contains(&Action::Reconfigure { node: M, master: R }),
        "{actions:?}"
    );
    assert!(!actions.contains(&Action::UnpauseWrites { node: M }));
    // The old master's `+OK`: it is a replica, so its paused writers can only be refused and
    // move on; it is unpaused before its link to the new master is up.
    s.handle(t0, Input::ReplicaofAcknowledged { node: M });
    assert_eq!(decisions(&mut s), vec![Action::UnpauseWrites { node: M }]);
    // Another node's acknowledgement, or a repeated one, releases nothing more.
    s.handle(t0, Input::ReplicaofAcknowledged { node: M });
    s.handle(t0, Input::ReplicaofAcknowledged { node: R2 });
    assert_eq!(decisions(&mut s), vec![]);
}

/// Three sentinels wired to each other: every `Persist` is confirmed at once and every message
/// delivered (to `up` sentinels only); returns the events each published.
struct Trio {
    s: Vec<Sentinel>,
    up: [bool; 3],
    events: Vec<(SentinelId, Event)>,
    now: Instant,
}

impl Trio {
    fn new() -> Trio {
        let t0 = crate::testutil::t0();
        let s = [S1, S2, S3]
            .into_iter()
            .enumerate()
            .map(|(i, id)| Sentinel::new(id, cfg(), i as u64, t0))
            .collect();
        let mut t = Trio {
            s,
            up: [true; 3],
            events: Vec::new(),
            now: t0,
        };
        t.pump();
        t
    }

    fn idx(id: SentinelId) -> usize {
        (id.0 - 1) as usize
    }

    /// Runs every action until nothing is left to deliver.
    fn pump(&mut self) {
        for _ in 0..10_000 {
            let mut moved = false;
            for i in 0..3 {
                while let Some(a) = self.s[i].poll_action() {
                    moved = true;
                    let from = self.s[i].id();
                    match a {
                        Action::Persist(d) => {
                            self.s[i].handle(self.now, Input::Persisted { version: d.version })
                        }
                        Action::SendGossip { to, msg } => {
                            let j = Trio::idx(to);
                            if self.up[i] && self.up[j] {
                                self.s[j].handle(self.now, Input::GossipReceived { from, msg });
                            }
                        }
                        Action::Publish(e) => self.events.push((from, e)),
                        _ => {}
                    }
                }
            }
            if !moved {
                return;
            }
        }
        panic!("the trio never settled");
    }

    fn advance(&mut self, d: Duration) {
        self.now += d;
        for i in 0..3 {
            self.s[i].handle_timeout(self.now);
        }
        self.pump();
    }

    fn request(&mut self, at: SentinelId, id: u64, group: &str, change: AdminChange) {
        let group = GroupName::new(group);
        self.s[Trio::idx(at)].handle(self.now, Input::AdminRequested { id, group, change });
        self.pump();
    }

    fn verdict(&self, id: u64) -> Option<Result<Term, AdminError>> {
        self.events.iter().find_map(|(_, e)| match e {
            Event::AdminConfirmed { id: i, agreed, .. } if *i == id => Some(Ok(*agreed)),
            Event::AdminFailed { id: i, reason, .. } if *i == id => Some(Err(reason.clone())),
            _ => None,
        })
    }
}

#[test]
fn an_operators_option_change_is_agreed_and_applied_on_every_sentinel() {
    let mut t = Trio::new();
    let mut o = cfg().groups[0].options();
    o.down_after = Duration::from_secs(2);
    o.quorum = Quorum(NonZeroU8::new(3).expect("three is not zero"));
    o.extra.insert("auth-pass".into(), "pw".into());
    t.request(S2, 1, "g", AdminChange::Set { options: o.clone() });
    let agreed = t.verdict(1).expect("a verdict").expect("confirmed");
    assert!(agreed > Term(0));
    for s in &t.s {
        assert_eq!(
            s.group_options(&group()).as_ref(),
            Some(&o),
            "on {}",
            s.id()
        );
        // The master's config is not touched: options have their own epoch.
        assert_eq!(s.config_of(&group()), Some((ConfigEpoch(0), M)));
        let d = &s.durable().groups[&group()];
        assert_eq!((d.agreed, d.options.as_ref()), (agreed, Some(&o)));
        // The change's term was abandoned: no voter is left fenced (leases flow again).
        assert!(!s.groups[&group()].is_fenced(), "{} still fenced", s.id());
    }
    // No master changed, so no +switch-master.
    assert!(
        !t.events
            .iter()
            .any(|(_, e)| matches!(e, Event::SwitchMaster { .. }))
    );
    // A sentinel restarted from its state keeps the agreed options over its config file.
    let st = t.s[2].durable();
    let back = Sentinel::recover(cfg(), st, 9, t.now);
    assert_eq!(back.group_options(&group()), Some(o));
}

#[test]
fn a_monitored_group_reaches_every_sentinel_and_a_removed_one_never_comes_back() {
    let mut t = Trio::new();
    let h = GroupName::new("h");
    let master = NodeId(7);
    let options = cfg().groups[0].options();
    t.request(
        S1,
        1,
        "h",
        AdminChange::Monitor {
            master,
            options: options.clone(),
        },
    );
    let added = t.verdict(1).expect("a verdict").expect("confirmed");
    for s in &t.s {
        assert!(s.group_names().contains(&h), "{} monitors h", s.id());
        assert_eq!(s.config_of(&h), Some((ConfigEpoch::of_term(added), master)));
    }
    // Watched: the new master is probed.
    t.s[1].handle_timeout(t.now + Duration::from_secs(1));
    let probes: Vec<Action> = std::iter::from_fn(|| t.s[1].poll_action()).collect();
    assert!(
        probes
            .iter()
            .any(|a| matches!(a, Action::Probe { node } if *node == master))
    );
    t.pump();
    // Monitoring it again is refused.
    t.request(
        S3,
        2,
        "h",
        AdminChange::Monitor {
            master,
            options: options.clone(),
        },
    );
    assert_eq!(t.verdict(2), Some(Err(AdminError::Exists(h.clone()))));
    t.request(S3, 3, "h", AdminChange::Remove);
    let removed = t.verdict(3).expect("a verdict").expect("confirmed");
    assert!(removed > added);
    for s in &t.s {
        assert!(!s.group_names().contains(&h), "{} forgot h", s.id());
        assert!(
            s.durable().groups[&h].removed,
            "kept as removed on {}",
            s.id()
        );
    }
    // The config that added it, delivered late, does not bring it back.
    let stale = Gossip::Config {
        group: h.clone(),
        epoch: ConfigEpoch::of_term(added),
        master,
        lineage: Vec::new(),
        options: Some(options),
        removed: false,
        agreed: added,
        reset: Term(0),
    };
    t.s[0].handle(
        t.now,
        Input::GossipReceived {
            from: S2,
            msg: stale,
        },
    );
    t.pump();
    assert!(!t.s[0].group_names().contains(&h));
    // Changing a removed group is refused like an unknown one.
    t.request(S1, 4, "h", AdminChange::Reset);
    assert_eq!(t.verdict(4), Some(Err(AdminError::Unknown(h))));
}

#[test]
fn bad_operator_changes_are_refused_with_a_reason() {
    let mut t = Trio::new();
    let mut too_big = cfg().groups[0].options();
    too_big.quorum = Quorum(NonZeroU8::new(4).expect("four is not zero"));
    t.request(S1, 1, "g", AdminChange::Set { options: too_big });
    assert!(matches!(t.verdict(1), Some(Err(AdminError::Invalid(_)))));
    let mut too_short = cfg().groups[0].options();
    too_short.down_after = Duration::from_millis(10);
    t.request(S1, 2, "g", AdminChange::Set { options: too_short });
    assert!(matches!(t.verdict(2), Some(Err(AdminError::Invalid(_)))));
    t.request(S1, 3, "nope", AdminChange::Remove);
    assert_eq!(
        t.verdict(3),
        Some(Err(AdminError::Unknown(GroupName::new("nope"))))
    );
    t.request(
        S1,
        4,
        "g",
        AdminChange::Monitor {
            master: R,
            options: cfg().groups[0].options(),
        },
    );
    assert_eq!(t.verdict(4), Some(Err(AdminError::Exists(group()))));
    // Nothing changed anywhere.
    for s in &t.s {
        assert_eq!(s.config_of(&group()), Some((ConfigEpoch(0), M)));
    }
}

#[test]
fn a_change_without_a_majority_fails_after_the_failover_timeout() {
    let mut t = Trio::new();
    t.up = [true, false, false];
    t.request(S1, 1, "g", AdminChange::Reset);
    assert_eq!(t.verdict(1), None, "no verdict while votes may still come");
    // Meanwhile another request for the group is refused as busy.
    t.request(S1, 2, "g", AdminChange::Remove);
    assert_eq!(t.verdict(2), Some(Err(AdminError::Busy(group()))));
    for _ in 0..12 {
        t.advance(Duration::from_secs(1));
    }
    assert_eq!(t.verdict(1), Some(Err(AdminError::NoMajority(group()))));
    assert_eq!(t.s[0].config_of(&group()), Some((ConfigEpoch(0), M)));
}
