//! Conversions of the sentinel's view (`Snapshot`, `GroupSnapshot`, `NodeSnapshot`) and of its
//! events (`EventRecord`) into the protobuf messages of `vigil.v1`.
//!
//! Pure functions, no I/O: every value comes from the caller, the clock included.

use std::net::SocketAddr;
use std::time::{Duration, SystemTime};

use vigil_proto::control as pb;

use crate::backend::ReportRole;
use crate::core::ConfigEpoch;
use crate::daemon::{GroupSnapshot, NodeSnapshot, Snapshot};
use crate::events::EventRecord;
use crate::nodes::NodeAddr;

/// `GetMaster`'s answer for `g`.
pub(crate) fn master_info(g: &GroupSnapshot) -> pb::MasterInfo {
    pb::MasterInfo {
        group: g.name.clone(),
        addr: g.master.to_string(),
        config_epoch: g.epoch,
    }
}

/// The full status of `g`, as `GetGroup` and `ListGroups` return it.
pub(crate) fn group_status(g: &GroupSnapshot, snap: &Snapshot) -> pb::GroupStatus {
    let master_offset = g.master_node.offset();
    let mut flags = Vec::new();
    if g.master_down {
        flags.push("s_down".to_owned());
    }
    if g.odown {
        flags.push("o_down".to_owned());
    }
    if g.failing_over {
        flags.push("failover_in_progress".to_owned());
    }
    if g.paused {
        flags.push("paused".to_owned());
    }
    pb::GroupStatus {
        name: g.name.clone(),
        master: g.master.to_string(),
        config_epoch: g.epoch,
        term: g.term,
        quorum: u32::from(g.quorum),
        replicas: g
            .replicas
            .iter()
            .map(|r| replica_status(r, master_offset))
            .collect(),
        flags,
        down_after_ms: millis(g.settings.down_after),
        failover_timeout_ms: millis(g.settings.failover_timeout),
        parallel_syncs: u32::from(g.settings.parallel_syncs.get()),
        sentinels: u32::try_from(snap.voters.len()).unwrap_or(u32::MAX),
        master_offset,
    }
}

/// One replica; its lag is the master's offset minus its own, 0 when it is ahead or unknown.
pub(crate) fn replica_status(r: &NodeSnapshot, master_offset: u64) -> pb::ReplicaStatus {
    let offset = r.offset();
    let lag_bytes = if r.report.is_some() {
        master_offset.saturating_sub(offset)
    } else {
        0
    };
    pb::ReplicaStatus {
        addr: r.addr.to_string(),
        down: r.down,
        offset,
        lag_bytes,
        dc: r.dc().to_owned(),
        link: link(r).to_owned(),
        priority: r.priority(),
    }
}

/// The state of a replica's link to its master: "up", "connecting" (a sync in progress),
/// "down", or "" when no INFO was read or the node says it is a master.
fn link(r: &NodeSnapshot) -> &'static str {
    match r.report.as_ref().map(|rep| &rep.role) {
        Some(ReportRole::Replica { link_up: true, .. }) => "up",
        Some(ReportRole::Replica {
            sync_in_progress: true,
            ..
        }) => "connecting",
        Some(ReportRole::Replica { .. }) => "down",
        _ => "",
    }
}

/// Every sentinel the snapshot knows: this one first, then its peers, then voters that are
/// not (or no longer) peers, each once.
pub(crate) fn sentinels(snap: &Snapshot) -> Vec<pb::SentinelStatus> {
    let voter = |id: u32| snap.voters.contains(&id);
    let text = |a: Option<SocketAddr>| a.map(|a| a.to_string()).unwrap_or_default();
    let mut out = vec![pb::SentinelStatus {
        id: snap.id,
        name: snap.name.clone(),
        addr: text(snap.gossip),
        connected: true,
        voter: voter(snap.id),
        myself: true,
        resp_addr: text(snap.client_addrs.0),
        grpc_addr: text(snap.client_addrs.1),
    }];
    for (id, name, addr, connected) in &snap.peers {
        if out.iter().any(|s| s.id == *id) {
            continue;
        }
        let (resp, grpc) = snap.endpoints.get(id).copied().unwrap_or_default();
        out.push(pb::SentinelStatus {
            id: *id,
            name: name.clone(),
            addr: addr.to_string(),
            connected: *connected,
            voter: voter(*id),
            myself: false,
            resp_addr: text(resp),
            grpc_addr: text(grpc),
        });
    }
    for id in &snap.voters {
        if out.iter().any(|s| s.id == *id) {
            continue;
        }
        out.push(pb::SentinelStatus {
            id: *id,
            voter: true,
            ..pb::SentinelStatus::default()
        });
    }
    out
}

/// `CheckQuorum`'s answer for `g`, with Redis' `SENTINEL CKQUORUM` wording.
pub(crate) fn check_quorum(g: &GroupSnapshot, snap: &Snapshot) -> pb::CheckQuorumResponse {
    let connected = snap.peers.iter().filter(|p| p.3 && p.0 != snap.id).count();
    let usable = u32::try_from(connected.saturating_add(1)).unwrap_or(u32::MAX);
    let majority = u32::try_from(snap.voters.len() / 2 + 1).unwrap_or(u32::MAX);
    let quorum = u32::from(g.quorum);
    let ok = usable >= quorum && usable >= majority;
    let message = if ok {
        format!("OK {usable} usable Sentinels. Quorum and failover authorization can be reached")
    } else {
        format!(
            "NOQUORUM {usable} usable Sentinels. Not enough available Sentinels to reach the \
             specified quorum ({quorum}) or the majority ({majority}) needed for failover"
        )
    };
    pb::CheckQuorumResponse {
        ok,
        usable,
        quorum,
        majority,
        message,
    }
}

/// A `MasterChanged` for `group`: its master is `addr` at `epoch`, as this sentinel learnt at
/// `at`.
pub(crate) fn master_changed(
    group: &str,
    addr: &NodeAddr,
    epoch: ConfigEpoch,
    reported_by: &str,
    at: SystemTime,
    initial: bool,
) -> pb::MasterEvent {
    pb::MasterEvent {
        kind: Some(pb::master_event::Kind::Changed(pb::MasterChanged {
            group: group.to_owned(),
            addr: addr.to_string(),
            config_epoch: epoch.0,
            reported_by: reported_by.to_owned(),
            at_unix_ms: unix_ms(at),
            initial,
        })),
    }
}

/// A keep-alive of `WatchMaster`.
pub(crate) fn keep_alive(at: SystemTime) -> pb::MasterEvent {
    pb::MasterEvent {
        kind: Some(pb::master_event::Kind::KeepAlive(pb::KeepAlive {
            at_unix_ms: unix_ms(at),
        })),
    }
}

/// An event of `WatchEvents`.
pub(crate) fn event(r: &EventRecord, reported_by: &str) -> pb::Event {
    pb::Event {
        channel: r.channel.clone(),
        payload: r.payload.clone(),
        group: r.group.clone().unwrap_or_default(),
        at_unix_ms: unix_ms(r.at),
        reported_by: reported_by.to_owned(),
    }
}

/// Milliseconds since the Unix epoch; 0 for a time before it.
pub(crate) fn unix_ms(at: SystemTime) -> u64 {
    at.duration_since(SystemTime::UNIX_EPOCH).map_or(0, millis)
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}
