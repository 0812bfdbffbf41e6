//! Core events as the world sees them: Redis Sentinel's channel names and payloads.
//!
//! Owns `EventRecord` (what the daemon broadcasts to subscribers and logs) and the rendering
//! of `core::Event` into Redis' `<channel> <payload>` form, e.g.
//! `+switch-master mymaster 127.0.0.1 6379 127.0.0.1 6380`.
//! Invariant: rendering is pure; node ids are resolved through the caller's lookup.

use std::time::SystemTime;

use crate::core::{AbortReason, AdminKind, ConfigEpoch, ElectionReason, Event, NodeId};
use crate::nodes::NodeAddr;

/// One published event, ready for subscribers.
#[derive(Clone, Debug, PartialEq)]
pub struct EventRecord {
    /// When the sentinel published it.
    pub at: SystemTime,
    /// Redis' channel name (`+switch-master`, `+sdown`, …).
    pub channel: String,
    /// Redis' payload for that channel.
    pub payload: String,
    /// The group it concerns, if any.
    pub group: Option<String>,
    /// For a master change: the new master and its config epoch.
    pub master_changed: Option<(NodeAddr, ConfigEpoch)>,
    /// The core event itself.
    pub event: Event,
}

/// How the renderer learns about nodes: `describe(node)` gives Redis' instance details
/// (`master mymaster 127.0.0.1 6379` or `slave 127.0.0.1:6380 127.0.0.1 6380 @ mymaster
/// 127.0.0.1 6379`), `addr(node)` its address.
pub trait NodeLookup {
    /// Redis' `<type> <name> <ip> <port> [@ <master-name> <master-ip> <master-port>]`.
    fn describe(&self, node: NodeId) -> String;
    /// The node's address.
    fn addr(&self, node: NodeId) -> Option<NodeAddr>;
}

/// Renders `event` the way Redis Sentinel publishes it.
pub fn render(event: &Event, at: SystemTime, nodes: &dyn NodeLookup) -> EventRecord {
    let hp = |n: NodeId| {
        nodes
            .addr(n)
            .map(|a| format!("{} {}", a.host, a.port))
            .unwrap_or_else(|| "? 0".into())
    };
    let (channel, payload, group, changed): (&str, String, Option<String>, _) = match event {
        Event::SubjectivelyDown { node } => ("+sdown", nodes.describe(*node), None, None),
        Event::SubjectivelyUp { node } => ("-sdown", nodes.describe(*node), None, None),
        Event::ObjectivelyDown { group } => (
            "+odown",
            format!("master {group} #quorum"),
            Some(group.to_string()),
            None,
        ),
        Event::ObjectivelyUp { group } => (
            "-odown",
            format!("master {group}"),
            Some(group.to_string()),
            None,
        ),
        Event::RestartedEmpty { node } => ("+reboot", nodes.describe(*node), None, None),
        Event::TryFailover {
            group,
            term,
            reason,
        } => {
            let why = match reason {
                ElectionReason::MasterDown => "",
                ElectionReason::Manual => " #manual",
                ElectionReason::Switchover => " #switchover",
                ElectionReason::Fenced => " #fenced",
                ElectionReason::Admin => " #admin",
            };
            (
                "+try-failover",
                format!("master {group} term {term}{why}"),
                Some(group.to_string()),
                None,
            )
        }
        Event::VoteGranted {
            group,
            term,
            candidate,
        } => (
            "+vote-for-leader",
            format!("{candidate} {term} {group}"),
            Some(group.to_string()),
            None,
        ),
        Event::LeaseRevoked { group, term } => (
            "+lease-revoked",
            format!("master {group} term {term}"),
            Some(group.to_string()),
            None,
        ),
        Event::Elected { group, term } => (
            "+elected-leader",
            format!("master {group} term {term}"),
            Some(group.to_string()),
            None,
        ),
        Event::SplitVote { group, term } => (
            "-split-vote",
            format!("master {group} term {term}"),
            Some(group.to_string()),
            None,
        ),
        Event::SelectedReplica { group, node } => (
            "+selected-slave",
            nodes.describe(*node),
            Some(group.to_string()),
            None,
        ),
        Event::Promoted { group, node, epoch } => (
            "+promoted-slave",
            format!("{} epoch {epoch}", nodes.describe(*node)),
            Some(group.to_string()),
            None,
        ),
        Event::Reaffirmed { group, node, epoch } => (
            "+reaffirmed-master",
            format!("master {group} {} epoch {epoch}", hp(*node)),
            Some(group.to_string()),
            None,
        ),
        Event::AdminApplied {
            group,
            agreed,
            master,
            change,
        } => (
            match change {
                AdminKind::Monitor => "+monitor",
                AdminKind::Set => "+set",
                AdminKind::Remove => "-monitor",
                AdminKind::Reset => "+reset-master",
            },
            format!("master {group} {} term {agreed}", hp(*master)),
            Some(group.to_string()),
            None,
        ),
        Event::AdminConfirmed { group, id, agreed } => (
            "+admin-confirmed",
            format!("{group} request {id} term {agreed}"),
            Some(group.to_string()),
            None,
        ),
        Event::AdminFailed { group, id, reason } => (
            "-admin-failed",
            format!("{group} request {id} {reason}"),
            Some(group.to_string()),
            None,
        ),
        Event::SwitchMaster {
            group,
            old,
            new,
            epoch,
        } => (
            "+switch-master",
            format!("{group} {} {}", hp(*old), hp(*new)),
            Some(group.to_string()),
            nodes.addr(*new).map(|a| (a, *epoch)),
        ),
        Event::ReplicaReconfigured { group, node } => (
            "+slave-reconf-done",
            nodes.describe(*node),
            Some(group.to_string()),
            None,
        ),
        Event::ConvertedToReplica {
            group,
            node,
            master: _,
        } => (
            "+convert-to-slave",
            nodes.describe(*node),
            Some(group.to_string()),
            None,
        ),
        Event::FailoverEnded { group, epoch } => (
            "+failover-end",
            format!("master {group} epoch {epoch}"),
            Some(group.to_string()),
            None,
        ),
        Event::FailoverAborted {
            group,
            term,
            reason,
        } => {
            let channel = match reason {
                AbortReason::MasterBack => "-failover-abort-master-back",
                AbortReason::NoGoodReplica => "-failover-abort-no-good-slave",
                AbortReason::NoFreshOffsets => "-failover-abort-no-fresh-offsets",
                AbortReason::PromotionTimeout => "-failover-abort-slave-timeout",
                AbortReason::NewerConfig => "-failover-abort-newer-config",
                AbortReason::NewerTerm => "-failover-abort-newer-term",
                AbortReason::SwitchoverTimeout => "-failover-abort-switchover-timeout",
                AbortReason::Maintenance => "-failover-abort-maintenance",
                AbortReason::TargetNotEligible => "-failover-abort-target-not-eligible",
            };
            (
                channel,
                format!("master {group} term {term}"),
                Some(group.to_string()),
                None,
            )
        }
        Event::Maintenance { group, paused } => (
            if *paused {
                "+maintenance"
            } else {
                "-maintenance"
            },
            format!("master {group}"),
            Some(group.to_string()),
            None,
        ),
        Event::SentinelAdded { id } => ("+sentinel", format!("sentinel {id}"), None, None),
        Event::SentinelRemoved { id } => ("-sentinel", format!("sentinel {id}"), None, None),
        Event::MembersChanged { epoch, voters } => (
            "+voters",
            format!(
                "epoch {} voters {}",
                epoch.0,
                voters
                    .iter()
                    .map(|v| v.0.to_string())
                    .collect::<Vec<_>>()
                    .join(",")
            ),
            None,
            None,
        ),
        Event::MembershipConfirmed { id, epoch } => (
            "+voters-change-confirmed",
            format!("request {id} epoch {}", epoch.0),
            None,
            None,
        ),
        Event::MembershipFailed { id, reason } => (
            "-voters-change-failed",
            format!("request {id} {reason}"),
            None,
            None,
        ),
    };
    EventRecord {
        at,
        channel: channel.to_owned(),
        payload,
        group,
        master_changed: changed,
        event: event.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::GroupName;

    struct Table;
    impl NodeLookup for Table {
        fn describe(&self, node: NodeId) -> String {
            format!("master g 127.0.0.1 {}", 6379 + node.0)
        }
        fn addr(&self, node: NodeId) -> Option<NodeAddr> {
            Some(NodeAddr::new("127.0.0.1", 6379 + node.0 as u16))
        }
    }

    #[test]
    fn switch_master_has_redis_payload_and_the_new_master() {
        let r = render(
            &Event::SwitchMaster {
                group: GroupName::new("mymaster"),
                old: NodeId(0),
                new: NodeId(1),
                epoch: ConfigEpoch(4),
            },
            SystemTime::UNIX_EPOCH,
            &Table,
        );
        assert_eq!(r.channel, "+switch-master");
        assert_eq!(r.payload, "mymaster 127.0.0.1 6379 127.0.0.1 6380");
        assert_eq!(
            r.master_changed,
            Some((NodeAddr::new("127.0.0.1", 6380), ConfigEpoch(4)))
        );
        let sd = render(
            &Event::SubjectivelyDown { node: NodeId(0) },
            SystemTime::UNIX_EPOCH,
            &Table,
        );
        assert_eq!(
            (sd.channel.as_str(), sd.payload.as_str()),
            ("+sdown", "master g 127.0.0.1 6379")
        );
    }
}
