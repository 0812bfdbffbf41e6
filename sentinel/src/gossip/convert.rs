//! Conversions between the core's `Gossip` and the wire's `vigil.v1.Envelope`.
//!
//! Owns `encode`, `decode`, `Decoded`, `PeerHello` and `ConvertError`.
//! Invariants: data nodes cross the wire as "host:port" addresses, never as `NodeId`s (each
//! sentinel interns them into its own `NodeTable`); `decode` checks every bound below before it
//! interns anything, so a hostile peer can neither grow the node table with a rejected message
//! nor hand the core a value it could not produce itself.

use std::net::SocketAddr;
use std::time::Duration;

use vigil_proto::gossip as pb;
use vigil_proto::gossip::envelope::Msg;

use crate::core::{
    Ballot, ConfigEpoch, Dc, ElectionReason, Gossip, GroupName, GroupOptions, MemberMsg,
    MembersEpoch, NodeId, Quorum, ReplId, ReplOffset, SentinelId, Term,
};
use crate::nodes::{NodeAddr, NodeTable};

/// The longest group name, in bytes.
pub const MAX_GROUP_NAME: usize = 128;
/// The most voters a heartbeat or a voter set may list.
pub use crate::core::MAX_VOTERS;
/// The most group configs a heartbeat may list.
pub const MAX_CONFIGS: usize = 10_000;
/// The most entries a lineage or an edge list may have.
pub const MAX_LINEAGE: usize = 4096;
/// The most members a `Members` message may list.
pub const MAX_MEMBERS: usize = 1024;
/// The longest duration a message may carry.
pub const MAX_DURATION: Duration = Duration::from_secs(3600);

/// A decoded envelope: a core message, or one of the transport's own.
#[derive(Clone, Debug, PartialEq)]
pub enum Decoded {
    /// A message for the core.
    Core(Gossip),
    /// A peer introduced itself.
    Hello(PeerHello),
    /// A peer's member list: `(name, announced address)` pairs.
    Members(Vec<(String, SocketAddr)>),
    /// Where a peer serves clients: its RESP sentinel port and gRPC API, if served.
    Endpoints {
        /// The RESP sentinel port.
        resp: Option<SocketAddr>,
        /// The gRPC control API.
        grpc: Option<SocketAddr>,
    },
}

/// The envelope announcing where this sentinel serves clients.
pub fn endpoints(resp: Option<SocketAddr>, grpc: Option<SocketAddr>) -> pb::Envelope {
    let text = |a: Option<SocketAddr>| a.map(|a| a.to_string()).unwrap_or_default();
    pb::Envelope {
        msg: Some(Msg::Endpoints(pb::Endpoints {
            resp_addr: text(resp),
            grpc_addr: text(grpc),
        })),
    }
}

/// A validated `Hello`.
#[derive(Clone, Debug, Eq, PartialEq)]
pub struct PeerHello {
    /// The sender's name (the transport checks it against its certificate).
    pub name: String,
    /// Where the sender wants to be dialed.
    pub announce: SocketAddr,
    /// The gossip protocol version the sender speaks.
    pub version: u32,
}

/// Why an envelope was rejected.
#[derive(Clone, Debug, Eq, PartialEq, thiserror::Error)]
pub enum ConvertError {
    /// The envelope carries no message (or one of a kind this version does not know).
    #[error("empty envelope")]
    Empty,
    /// A group name is empty, too long, or not printable ASCII.
    #[error("invalid group name {0:?}: expected 1..=128 printable ASCII bytes")]
    GroupName(String),
    /// A node address does not parse as "host:port".
    #[error("invalid node address {0:?}")]
    NodeAddr(String),
    /// A sentinel address does not parse as "ip:port".
    #[error("invalid sentinel address {0:?}")]
    SocketAddr(String),
    /// A sentinel name is not 1..=64 bytes of `[A-Za-z0-9._-]`.
    #[error("invalid sentinel name {0:?}")]
    SentinelName(String),
    /// A list is longer than its bound.
    #[error("{what} has {len} entries, more than {max}")]
    TooMany {
        /// Which list.
        what: &'static str,
        /// Its length.
        len: usize,
        /// Its bound.
        max: usize,
    },
    /// A duration is longer than `MAX_DURATION`.
    #[error("{what} of {micros} µs is longer than one hour")]
    Duration {
        /// Which field.
        what: &'static str,
        /// Its value in microseconds.
        micros: u64,
    },
    /// An enum value this version does not know.
    #[error("unknown {what} value {value}")]
    UnknownEnum {
        /// Which enum.
        what: &'static str,
        /// The value.
        value: i32,
    },
    /// A group option out of its range.
    #[error("invalid group option {what}: {value}")]
    Option {
        /// Which option.
        what: &'static str,
        /// Its value, shortened.
        value: String,
    },
    /// A sentinel id of zero (ids are never zero).
    #[error("sentinel id 0 in the voter list")]
    ZeroSentinelId,
    /// The node table is full, so a new address cannot be interned.
    #[error("node table full, cannot intern {0}")]
    TableFull(NodeAddr),
}

/// The envelope for `msg`, or `None` when it names a node that `nodes` does not know (a bug in
/// the caller, which interned every node the core knows).
///
/// `Gossip::Hello` becomes a `Hello` without a name or an address: the transport sends its own,
/// complete `Hello` on every connection, so the core's is only a nudge.
pub fn encode(msg: &Gossip, nodes: &NodeTable) -> Option<pb::Envelope> {
    let addr = |id: NodeId| nodes.addr(id).map(ToString::to_string);
    let msg = match msg {
        Gossip::Opinion {
            group,
            master,
            down,
        } => Msg::Opinion(pb::Opinion {
            group: group.to_string(),
            master: addr(*master)?,
            down: *down,
        }),
        Gossip::RequestVote {
            group,
            term,
            epoch,
            reason,
            master,
            agreed,
            members,
        } => Msg::RequestVote(pb::RequestVote {
            group: group.to_string(),
            term: term.0,
            epoch: epoch.0,
            reason: reason_to_pb(*reason) as i32,
            master: addr(*master)?,
            agreed: agreed.0,
            members: members.0,
        }),
        Gossip::Vote {
            group,
            term,
            granted,
            lease_wait,
            lineage,
            edges,
        } => Msg::Vote(pb::Vote {
            group: group.to_string(),
            term: term.0,
            granted: *granted,
            // Saturate rather than wrap: `decode` rejects it either way.
            lease_wait_micros: u64::try_from(lease_wait.as_micros()).unwrap_or(u64::MAX),
            lineage: lineage_to_pb(lineage),
            edges: edges
                .iter()
                .map(|(child, parent, offset)| pb::HistoryEdge {
                    child: child.0,
                    parent: parent.0,
                    offset: offset.0,
                })
                .collect(),
        }),
        Gossip::Abandoned { group, term } => Msg::Abandoned(pb::Abandoned {
            group: group.to_string(),
            term: term.0,
        }),
        Gossip::Maintenance { group, paused } => Msg::Maintenance(pb::Maintenance {
            group: group.to_string(),
            paused: *paused,
        }),
        Gossip::Config {
            group,
            epoch,
            master,
            lineage,
            agreed,
            options,
            removed,
            reset,
        } => Msg::GroupConfig(pb::GroupConfig {
            group: group.to_string(),
            epoch: epoch.0,
            master: addr(*master)?,
            lineage: lineage_to_pb(lineage),
            options: options.as_ref().map(options_to_pb),
            removed: *removed,
            agreed: agreed.0,
            reset: reset.0,
        }),
        Gossip::ConfigPull { group } => Msg::ConfigPull(pb::ConfigPull {
            group: group.to_string(),
        }),
        Gossip::ConfigQuery {
            group,
            epoch,
            master,
            id,
        } => Msg::ConfigQuery(pb::ConfigQuery {
            group: group.to_string(),
            epoch: epoch.0,
            master: addr(*master)?,
            id: *id,
        }),
        Gossip::ConfigAnswer {
            group,
            id,
            epoch,
            master,
            fenced,
        } => Msg::ConfigAnswer(pb::ConfigAnswer {
            group: group.to_string(),
            id: *id,
            epoch: epoch.0,
            master: addr(*master)?,
            fenced: *fenced,
        }),
        Gossip::Heartbeat {
            voters,
            configs,
            cluster,
            members,
        } => {
            let mut out = Vec::with_capacity(configs.len());
            for (group, epoch, master, agreed) in configs {
                out.push(pb::GroupEpoch {
                    group: group.to_string(),
                    epoch: epoch.0,
                    master: addr(*master)?,
                    agreed: agreed.0,
                });
            }
            Msg::Heartbeat(pb::Heartbeat {
                voters: voters.iter().map(|v| v.0).collect(),
                configs: out,
                cluster: *cluster,
                members: members.0,
            })
        }
        Gossip::Membership {
            cluster,
            epoch,
            msg,
        } => Msg::Membership(pb::Membership {
            cluster: *cluster,
            epoch: epoch.0,
            kind: Some(member_to_pb(msg)),
        }),
        Gossip::Hello => Msg::Hello(pb::Hello {
            name: String::new(),
            announce_addr: String::new(),
            version: pb::PROTOCOL_VERSION,
        }),
    };
    Some(pb::Envelope { msg: Some(msg) })
}

/// Validates `env` and converts it, interning the node addresses it names into `nodes`.
///
/// Every check runs before the first address is interned, so a rejected message leaves
/// `nodes` as it was. A `Hello` without a name or an address (the core's nudge, see `encode`)
/// decodes as `Gossip::Hello`.
pub fn decode(env: pb::Envelope, nodes: &mut NodeTable) -> Result<Decoded, ConvertError> {
    let msg = env.msg.ok_or(ConvertError::Empty)?;
    let gossip = match msg {
        Msg::Hello(h) => {
            if h.name.is_empty() && h.announce_addr.is_empty() {
                return Ok(Decoded::Core(Gossip::Hello));
            }
            return peer_hello(h).map(Decoded::Hello);
        }
        Msg::Members(m) => return members(m).map(Decoded::Members),
        Msg::Endpoints(e) => {
            let addr = |s: &str| -> Result<Option<SocketAddr>, ConvertError> {
                if s.is_empty() {
                    Ok(None)
                } else {
                    socket_addr(s).map(Some)
                }
            };
            return Ok(Decoded::Endpoints {
                resp: addr(&e.resp_addr)?,
                grpc: addr(&e.grpc_addr)?,
            });
        }
        Msg::Opinion(o) => {
            let group = group_name(&o.group)?;
            let master = node_addr(&o.master)?;
            Gossip::Opinion {
                group,
                master: intern(nodes, master)?,
                down: o.down,
            }
        }
        Msg::RequestVote(r) => {
            let group = group_name(&r.group)?;
            let reason = reason_from_pb(r.reason)?;
            let master = node_addr(&r.master)?;
            Gossip::RequestVote {
                group,
                term: Term(r.term),
                epoch: ConfigEpoch(r.epoch),
                reason,
                master: intern(nodes, master)?,
                agreed: Term(r.agreed),
                members: MembersEpoch(r.members),
            }
        }
        Msg::Vote(v) => {
            let group = group_name(&v.group)?;
            bound("lineage", v.lineage.len(), MAX_LINEAGE)?;
            bound("edges", v.edges.len(), MAX_LINEAGE)?;
            let lease_wait = Duration::from_micros(v.lease_wait_micros);
            if lease_wait > MAX_DURATION {
                return Err(ConvertError::Duration {
                    what: "lease_wait",
                    micros: v.lease_wait_micros,
                });
            }
            Gossip::Vote {
                group,
                term: Term(v.term),
                granted: v.granted,
                lease_wait,
                lineage: lineage_from_pb(&v.lineage),
                edges: v
                    .edges
                    .iter()
                    .map(|e| (ReplId(e.child), ReplId(e.parent), ReplOffset(e.offset)))
                    .collect(),
            }
        }
        Msg::Abandoned(a) => Gossip::Abandoned {
            group: group_name(&a.group)?,
            term: Term(a.term),
        },
        Msg::Maintenance(m) => Gossip::Maintenance {
            group: group_name(&m.group)?,
            paused: m.paused,
        },
        Msg::GroupConfig(c) => {
            let group = group_name(&c.group)?;
            bound("lineage", c.lineage.len(), MAX_LINEAGE)?;
            let master = node_addr(&c.master)?;
            let options = c.options.as_ref().map(options_from_pb).transpose()?;
            Gossip::Config {
                group,
                epoch: ConfigEpoch(c.epoch),
                master: intern(nodes, master)?,
                lineage: lineage_from_pb(&c.lineage),
                agreed: Term(c.agreed),
                options,
                removed: c.removed,
                reset: Term(c.reset),
            }
        }
        Msg::ConfigPull(p) => Gossip::ConfigPull {
            group: group_name(&p.group)?,
        },
        Msg::ConfigQuery(q) => {
            let group = group_name(&q.group)?;
            let master = node_addr(&q.master)?;
            Gossip::ConfigQuery {
                group,
                epoch: ConfigEpoch(q.epoch),
                master: intern(nodes, master)?,
                id: q.id,
            }
        }
        Msg::ConfigAnswer(a) => {
            let group = group_name(&a.group)?;
            let master = node_addr(&a.master)?;
            Gossip::ConfigAnswer {
                group,
                id: a.id,
                epoch: ConfigEpoch(a.epoch),
                master: intern(nodes, master)?,
                fenced: a.fenced,
            }
        }
        Msg::Heartbeat(h) => {
            bound("voters", h.voters.len(), MAX_VOTERS)?;
            bound("configs", h.configs.len(), MAX_CONFIGS)?;
            if h.voters.contains(&0) {
                return Err(ConvertError::ZeroSentinelId);
            }
            // Validate everything first, then intern, so a bad entry interns nothing.
            let mut parsed = Vec::with_capacity(h.configs.len());
            for c in &h.configs {
                parsed.push((
                    group_name(&c.group)?,
                    ConfigEpoch(c.epoch),
                    node_addr(&c.master)?,
                    Term(c.agreed),
                ));
            }
            let mut configs = Vec::with_capacity(parsed.len());
            for (group, epoch, master, agreed) in parsed {
                configs.push((group, epoch, intern(nodes, master)?, agreed));
            }
            Gossip::Heartbeat {
                voters: h.voters.into_iter().map(SentinelId).collect(),
                configs,
                cluster: h.cluster,
                members: MembersEpoch(h.members),
            }
        }
        Msg::Membership(m) => Gossip::Membership {
            cluster: m.cluster,
            epoch: MembersEpoch(m.epoch),
            msg: member_from_pb(m.kind.ok_or(ConvertError::Empty)?)?,
        },
    };
    Ok(Decoded::Core(gossip))
}

fn ballot_to_pb(b: Ballot) -> pb::Ballot {
    pb::Ballot {
        round: b.round,
        sentinel: b.by,
    }
}

fn ballot_from_pb(b: Option<pb::Ballot>) -> Result<Ballot, ConvertError> {
    let b = b.ok_or(ConvertError::Empty)?;
    Ok(Ballot {
        round: b.round,
        by: b.sentinel,
    })
}

fn fences_to_pb(fences: &[(GroupName, ConfigEpoch)]) -> Vec<pb::GroupFence> {
    fences
        .iter()
        .map(|(g, e)| pb::GroupFence {
            group: g.to_string(),
            epoch: e.0,
        })
        .collect()
}

fn fences_from_pb(
    fences: Vec<pb::GroupFence>,
) -> Result<Vec<(GroupName, ConfigEpoch)>, ConvertError> {
    bound("fences", fences.len(), MAX_CONFIGS)?;
    fences
        .into_iter()
        .map(|f| Ok((group_name(&f.group)?, ConfigEpoch(f.epoch))))
        .collect()
}

/// A voter set off the wire: 1 to `MAX_VOTERS` ids, none zero (`empty_ok` for a promise
/// that accepted nothing).
fn voters_from_pb(ids: Vec<u32>, empty_ok: bool) -> Result<Vec<SentinelId>, ConvertError> {
    bound("voters", ids.len(), MAX_VOTERS)?;
    if ids.is_empty() && !empty_ok {
        return Err(ConvertError::Empty);
    }
    if ids.contains(&0) {
        return Err(ConvertError::ZeroSentinelId);
    }
    Ok(ids.into_iter().map(SentinelId).collect())
}

fn incarnations_to_pb(incs: &[(SentinelId, u64)]) -> Vec<pb::VoterIncarnation> {
    incs.iter()
        .map(|(id, inc)| pb::VoterIncarnation {
            sentinel: id.0,
            incarnation: *inc,
        })
        .collect()
}

fn incarnations_from_pb(
    incs: Vec<pb::VoterIncarnation>,
) -> Result<Vec<(SentinelId, u64)>, ConvertError> {
    bound("incarnations", incs.len(), MAX_VOTERS)?;
    if incs.iter().any(|i| i.sentinel == 0) {
        return Err(ConvertError::ZeroSentinelId);
    }
    Ok(incs
        .into_iter()
        .map(|i| (SentinelId(i.sentinel), i.incarnation))
        .collect())
}

fn member_to_pb(msg: &MemberMsg) -> pb::membership::Kind {
    use pb::membership::Kind;
    let ids = |v: &[SentinelId]| v.iter().map(|s| s.0).collect::<Vec<u32>>();
    match msg {
        MemberMsg::Join { incarnation } => Kind::Join(pb::MemberJoin {
            incarnation: *incarnation,
        }),
        MemberMsg::Prepare { ballot } => Kind::Prepare(ballot_to_pb(*ballot)),
        MemberMsg::Promise {
            ballot,
            accepted,
            accepted_incarnations,
            term,
            fences,
            lease_wait,
        } => Kind::Promise(pb::MemberPromise {
            accepted_incarnations: incarnations_to_pb(accepted_incarnations),
            ballot: Some(ballot_to_pb(*ballot)),
            accepted_ballot: accepted.as_ref().map(|(b, _)| ballot_to_pb(*b)),
            accepted_voters: accepted.as_ref().map(|(_, v)| ids(v)).unwrap_or_default(),
            term: term.0,
            fences: fences_to_pb(fences),
            lease_wait_micros: u64::try_from(lease_wait.as_micros()).unwrap_or(u64::MAX),
        }),
        MemberMsg::Accept {
            ballot,
            voters,
            incarnations,
        } => Kind::Accept(pb::MemberAccept {
            ballot: Some(ballot_to_pb(*ballot)),
            voters: ids(voters),
            incarnations: incarnations_to_pb(incarnations),
        }),
        MemberMsg::Accepted { ballot } => Kind::Accepted(ballot_to_pb(*ballot)),
        MemberMsg::Nack { promised } => Kind::Nack(ballot_to_pb(*promised)),
        MemberMsg::Commit {
            voters,
            floor,
            fences,
            incarnations,
        } => Kind::Commit(pb::MemberCommit {
            voters: ids(voters),
            floor: floor.0,
            fences: fences_to_pb(fences),
            incarnations: incarnations_to_pb(incarnations),
        }),
    }
}

fn member_from_pb(kind: pb::membership::Kind) -> Result<MemberMsg, ConvertError> {
    use pb::membership::Kind;
    Ok(match kind {
        Kind::Join(j) => MemberMsg::Join {
            incarnation: j.incarnation,
        },
        Kind::Prepare(b) => MemberMsg::Prepare {
            ballot: ballot_from_pb(Some(b))?,
        },
        Kind::Promise(p) => {
            let lease_wait = Duration::from_micros(p.lease_wait_micros);
            if lease_wait > MAX_DURATION {
                return Err(ConvertError::Duration {
                    what: "lease_wait",
                    micros: p.lease_wait_micros,
                });
            }
            let accepted = match p.accepted_ballot {
                Some(b) => Some((
                    ballot_from_pb(Some(b))?,
                    voters_from_pb(p.accepted_voters, false)?,
                )),
                None => None,
            };
            MemberMsg::Promise {
                ballot: ballot_from_pb(p.ballot)?,
                accepted,
                accepted_incarnations: incarnations_from_pb(p.accepted_incarnations)?,
                term: Term(p.term),
                fences: fences_from_pb(p.fences)?,
                lease_wait,
            }
        }
        Kind::Accept(a) => MemberMsg::Accept {
            ballot: ballot_from_pb(a.ballot)?,
            voters: voters_from_pb(a.voters, false)?,
            incarnations: incarnations_from_pb(a.incarnations)?,
        },
        Kind::Accepted(b) => MemberMsg::Accepted {
            ballot: ballot_from_pb(Some(b))?,
        },
        Kind::Nack(b) => MemberMsg::Nack {
            promised: ballot_from_pb(Some(b))?,
        },
        Kind::Commit(c) => MemberMsg::Commit {
            voters: voters_from_pb(c.voters, false)?,
            floor: Term(c.floor),
            fences: fences_from_pb(c.fences)?,
            incarnations: incarnations_from_pb(c.incarnations)?,
        },
    })
}

/// Validates a transport `Hello`: a valid sentinel name and an "ip:port" announce address.
pub fn peer_hello(h: pb::Hello) -> Result<PeerHello, ConvertError> {
    check_sentinel_name(&h.name)?;
    let announce = socket_addr(&h.announce_addr)?;
    Ok(PeerHello {
        name: h.name,
        announce,
        version: h.version,
    })
}

/// Validates a member list: at most `MAX_MEMBERS` entries, each a valid sentinel name and an
/// "ip:port" address.
pub fn members(m: pb::Members) -> Result<Vec<(String, SocketAddr)>, ConvertError> {
    bound("members", m.members.len(), MAX_MEMBERS)?;
    let mut out = Vec::with_capacity(m.members.len());
    for member in m.members {
        check_sentinel_name(&member.name)?;
        let addr = socket_addr(&member.addr)?;
        out.push((member.name, addr));
    }
    Ok(out)
}

impl Decoded {
    /// The core message this stands for: a peer's `Hello` is the core's `Gossip::Hello`, and a
    /// member list is the transport's alone.
    pub fn into_core(self) -> Option<Gossip> {
        match self {
            Decoded::Core(g) => Some(g),
            Decoded::Hello(_) => Some(Gossip::Hello),
            Decoded::Members(_) | Decoded::Endpoints { .. } => None,
        }
    }
}

/// Checks a sentinel name: 1..=64 bytes of `[A-Za-z0-9._-]` (the same rule as certificates).
pub fn valid_sentinel_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

fn check_sentinel_name(name: &str) -> Result<(), ConvertError> {
    if valid_sentinel_name(name) {
        Ok(())
    } else {
        Err(ConvertError::SentinelName(truncated(name)))
    }
}

fn group_name(name: &str) -> Result<GroupName, ConvertError> {
    let printable = name.bytes().all(|b| b.is_ascii_graphic() || b == b' ');
    if name.is_empty() || name.len() > MAX_GROUP_NAME || !printable {
        return Err(ConvertError::GroupName(truncated(name)));
    }
    Ok(GroupName::new(name))
}

fn node_addr(text: &str) -> Result<NodeAddr, ConvertError> {
    text.parse()
        .map_err(|_| ConvertError::NodeAddr(truncated(text)))
}

fn socket_addr(text: &str) -> Result<SocketAddr, ConvertError> {
    text.parse()
        .map_err(|_| ConvertError::SocketAddr(truncated(text)))
}

fn intern(nodes: &mut NodeTable, addr: NodeAddr) -> Result<NodeId, ConvertError> {
    nodes.intern(&addr).ok_or(ConvertError::TableFull(addr))
}

fn bound(what: &'static str, len: usize, max: usize) -> Result<(), ConvertError> {
    if len > max {
        return Err(ConvertError::TooMany { what, len, max });
    }
    Ok(())
}

/// A peer's string, cut to a length that is safe to log and to keep in an error.
fn truncated(s: &str) -> String {
    s.chars().take(80).collect()
}

fn lineage_to_pb(lineage: &[(ReplId, ReplOffset)]) -> Vec<pb::LineageEntry> {
    lineage
        .iter()
        .map(|(id, offset)| pb::LineageEntry {
            repl_id: id.0,
            offset: offset.0,
        })
        .collect()
}

fn lineage_from_pb(lineage: &[pb::LineageEntry]) -> Vec<(ReplId, ReplOffset)> {
    lineage
        .iter()
        .map(|e| (ReplId(e.repl_id), ReplOffset(e.offset)))
        .collect()
}

fn reason_to_pb(reason: ElectionReason) -> pb::ElectionReason {
    match reason {
        ElectionReason::MasterDown => pb::ElectionReason::MasterDown,
        ElectionReason::Manual => pb::ElectionReason::Manual,
        ElectionReason::Switchover => pb::ElectionReason::Switchover,
        ElectionReason::Fenced => pb::ElectionReason::Fenced,
        ElectionReason::Admin => pb::ElectionReason::Admin,
    }
}

/// The most `extra` options a group carries, and the longest key or value.
const MAX_EXTRA: usize = 64;
const MAX_EXTRA_LEN: usize = 1024;

fn options_to_pb(o: &GroupOptions) -> pb::GroupOptions {
    pb::GroupOptions {
        quorum: u32::from(o.quorum.0.get()),
        down_after_ms: u64::try_from(o.down_after.as_millis()).unwrap_or(u64::MAX),
        failover_timeout_ms: u64::try_from(o.failover_timeout.as_millis()).unwrap_or(u64::MAX),
        parallel_syncs: u32::from(o.parallel_syncs.get()),
        preferred_dc: o
            .preferred_dc
            .as_ref()
            .map(|d| d.0.to_string())
            .unwrap_or_default(),
        sync_replicas: u32::from(o.sync_replicas),
        extra: o
            .extra
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
    }
}

fn options_from_pb(o: &pb::GroupOptions) -> Result<GroupOptions, ConvertError> {
    let small = |what: &'static str, v: u32, min: u32| -> Result<u8, ConvertError> {
        u8::try_from(v)
            .ok()
            .filter(|n| u32::from(*n) >= min)
            .ok_or(ConvertError::Option {
                what,
                value: v.to_string(),
            })
    };
    let ms = |what: &'static str, v: u64| -> Result<Duration, ConvertError> {
        let d = Duration::from_millis(v);
        if d > MAX_DURATION || d.is_zero() {
            return Err(ConvertError::Option {
                what,
                value: v.to_string(),
            });
        }
        Ok(d)
    };
    bound("extra", o.extra.len(), MAX_EXTRA)?;
    if let Some((k, v)) = o
        .extra
        .iter()
        .find(|(k, v)| k.len() > MAX_EXTRA_LEN || v.len() > MAX_EXTRA_LEN)
    {
        return Err(ConvertError::Option {
            what: "extra",
            value: format!(
                "{} ({} + {} bytes)",
                k.chars().take(32).collect::<String>(),
                k.len(),
                v.len()
            ),
        });
    }
    let nonzero = |what, v| {
        std::num::NonZeroU8::new(small(what, v, 1)?).ok_or(ConvertError::Option {
            what,
            value: v.to_string(),
        })
    };
    let dc = o.preferred_dc.trim();
    if dc.len() > 128 {
        return Err(ConvertError::Option {
            what: "preferred_dc",
            value: dc.chars().take(32).collect(),
        });
    }
    Ok(GroupOptions {
        quorum: Quorum(nonzero("quorum", o.quorum)?),
        down_after: ms("down_after_ms", o.down_after_ms)?,
        failover_timeout: ms("failover_timeout_ms", o.failover_timeout_ms)?,
        parallel_syncs: nonzero("parallel_syncs", o.parallel_syncs)?,
        preferred_dc: (!dc.is_empty()).then(|| Dc(dc.into())),
        sync_replicas: small("sync_replicas", o.sync_replicas, 0)?,
        extra: o
            .extra
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
    })
}

fn reason_from_pb(value: i32) -> Result<ElectionReason, ConvertError> {
    match pb::ElectionReason::try_from(value) {
        Ok(pb::ElectionReason::MasterDown) => Ok(ElectionReason::MasterDown),
        Ok(pb::ElectionReason::Manual) => Ok(ElectionReason::Manual),
        Ok(pb::ElectionReason::Switchover) => Ok(ElectionReason::Switchover),
        Ok(pb::ElectionReason::Fenced) => Ok(ElectionReason::Fenced),
        Ok(pb::ElectionReason::Admin) => Ok(ElectionReason::Admin),
        Ok(pb::ElectionReason::Unspecified) | Err(_) => Err(ConvertError::UnknownEnum {
            what: "ElectionReason",
            value,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_round_trip_and_bad_addresses_are_refused() {
        let mut nodes = NodeTable::default();
        let r: SocketAddr = "127.0.0.1:26379".parse().unwrap();
        let got = decode(endpoints(Some(r), None), &mut nodes).unwrap();
        assert_eq!(
            got,
            Decoded::Endpoints {
                resp: Some(r),
                grpc: None
            }
        );
        let bad = pb::Envelope {
            msg: Some(Msg::Endpoints(pb::Endpoints {
                resp_addr: "nonsense".into(),
                grpc_addr: String::new(),
            })),
        };
        assert!(decode(bad, &mut nodes).is_err());
    }

    fn table() -> (NodeTable, NodeId, NodeId) {
        let mut t = NodeTable::default();
        let a = t.intern(&NodeAddr::new("10.0.0.1", 6379)).unwrap();
        let b = t.intern(&NodeAddr::new("redis.example", 6380)).unwrap();
        (t, a, b)
    }

    fn g(name: &str) -> GroupName {
        GroupName::new(name)
    }

    fn samples(a: NodeId, b: NodeId) -> Vec<Gossip> {
        vec![
            Gossip::Opinion {
                group: g("mymaster"),
                master: a,
                down: true,
            },
            Gossip::RequestVote {
                group: g("g"),
                term: Term(7),
                epoch: ConfigEpoch(6),
                reason: ElectionReason::MasterDown,
                master: a,
                agreed: Term(0),
                members: MembersEpoch(3),
            },
            Gossip::RequestVote {
                group: g("g"),
                term: Term(8),
                epoch: ConfigEpoch(6),
                reason: ElectionReason::Manual,
                master: a,
                agreed: Term(0),
                members: MembersEpoch(3),
            },
            Gossip::RequestVote {
                group: g("g"),
                term: Term(9),
                epoch: ConfigEpoch(6),
                reason: ElectionReason::Switchover,
                master: a,
                agreed: Term(0),
                members: MembersEpoch(3),
            },
            Gossip::RequestVote {
                group: g("g"),
                term: Term(10),
                epoch: ConfigEpoch(6),
                reason: ElectionReason::Fenced,
                master: a,
                agreed: Term(0),
                members: MembersEpoch(3),
            },
            Gossip::RequestVote {
                group: g("new"),
                term: Term(1),
                epoch: ConfigEpoch(0),
                reason: ElectionReason::Admin,
                master: b,
                agreed: Term(0),
                members: MembersEpoch(1),
            },
            Gossip::Vote {
                group: g("g"),
                term: Term(7),
                granted: true,
                lease_wait: Duration::from_micros(1_234_567),
                lineage: vec![
                    (ReplId(1), ReplOffset(100)),
                    (ReplId(u64::MAX), ReplOffset(0)),
                ],
                edges: vec![(ReplId(2), ReplId(1), ReplOffset(50))],
            },
            Gossip::Vote {
                group: g("g"),
                term: Term(7),
                granted: false,
                lease_wait: Duration::ZERO,
                lineage: vec![],
                edges: vec![],
            },
            Gossip::Abandoned {
                group: g("g"),
                term: Term(3),
            },
            Gossip::Maintenance {
                group: g("g"),
                paused: true,
            },
            Gossip::Config {
                group: g("g"),
                epoch: ConfigEpoch(4),
                master: b,
                lineage: vec![(ReplId(9), ReplOffset(99))],
                options: None,
                removed: false,
                agreed: Term(0),
                reset: Term(0),
            },
            Gossip::Config {
                group: g("h"),
                epoch: ConfigEpoch(7),
                master: a,
                lineage: vec![],
                options: Some(GroupOptions {
                    quorum: Quorum(std::num::NonZeroU8::new(2).unwrap()),
                    down_after: Duration::from_millis(1500),
                    failover_timeout: Duration::from_secs(20),
                    parallel_syncs: std::num::NonZeroU8::new(3).unwrap(),
                    preferred_dc: Some(Dc("east".into())),
                    sync_replicas: 1,
                    extra: [("auth-pass".to_string(), "pw".to_string())]
                        .into_iter()
                        .collect(),
                }),
                removed: true,
                agreed: Term(0),
                reset: Term(0),
            },
            Gossip::ConfigPull { group: g("h") },
            Gossip::ConfigQuery {
                group: g("g"),
                epoch: ConfigEpoch(4),
                master: a,
                id: 0xdead_beef,
            },
            Gossip::ConfigAnswer {
                group: g("g"),
                id: 0xdead_beef,
                epoch: ConfigEpoch(5),
                master: b,
                fenced: true,
            },
            Gossip::Heartbeat {
                voters: vec![SentinelId(1), SentinelId(u32::MAX)],
                configs: vec![
                    (g("a"), ConfigEpoch(1), a, Term(0)),
                    (g("b c"), ConfigEpoch(2), b, Term(5)),
                ],
                cluster: 0xfeed,
                members: MembersEpoch(4),
            },
            Gossip::Hello,
            Gossip::Membership {
                cluster: 0,
                epoch: MembersEpoch(0),
                msg: MemberMsg::Join { incarnation: 77 },
            },
            Gossip::Membership {
                cluster: 9,
                epoch: MembersEpoch(2),
                msg: MemberMsg::Prepare {
                    ballot: Ballot { round: 3, by: 7 },
                },
            },
            Gossip::Membership {
                cluster: 9,
                epoch: MembersEpoch(2),
                msg: MemberMsg::Promise {
                    ballot: Ballot { round: 3, by: 7 },
                    accepted: Some((
                        Ballot { round: 2, by: 5 },
                        vec![SentinelId(5), SentinelId(7)],
                    )),
                    accepted_incarnations: vec![(SentinelId(7), 3)],
                    term: Term(12),
                    fences: vec![(g("g"), ConfigEpoch(11))],
                    lease_wait: Duration::from_millis(800),
                },
            },
            Gossip::Membership {
                cluster: 9,
                epoch: MembersEpoch(2),
                msg: MemberMsg::Promise {
                    ballot: Ballot { round: 3, by: 7 },
                    accepted: None,
                    accepted_incarnations: vec![],
                    term: Term(0),
                    fences: vec![],
                    lease_wait: Duration::ZERO,
                },
            },
            Gossip::Membership {
                cluster: 9,
                epoch: MembersEpoch(2),
                msg: MemberMsg::Accept {
                    ballot: Ballot { round: 3, by: 7 },
                    voters: vec![SentinelId(5), SentinelId(7), SentinelId(8)],
                    incarnations: vec![(SentinelId(8), 0xbeef)],
                },
            },
            Gossip::Membership {
                cluster: 9,
                epoch: MembersEpoch(2),
                msg: MemberMsg::Accepted {
                    ballot: Ballot { round: 3, by: 7 },
                },
            },
            Gossip::Membership {
                cluster: 9,
                epoch: MembersEpoch(2),
                msg: MemberMsg::Nack {
                    promised: Ballot { round: 4, by: 5 },
                },
            },
            Gossip::Membership {
                cluster: 9,
                epoch: MembersEpoch(3),
                msg: MemberMsg::Commit {
                    voters: vec![SentinelId(5), SentinelId(7), SentinelId(8)],
                    floor: Term(12),
                    fences: vec![(g("g"), ConfigEpoch(11))],
                    incarnations: vec![(SentinelId(8), 0xdead)],
                },
            },
        ]
    }

    #[test]
    fn every_core_message_round_trips_through_the_wire() {
        let (t, a, b) = table();
        for msg in samples(a, b) {
            let env = encode(&msg, &t).unwrap();
            let bytes = prost::Message::encode_to_vec(&env);
            let env: pb::Envelope = prost::Message::decode(bytes.as_slice()).unwrap();
            // A receiver with an empty table interns the same addresses under its own ids,
            // so its re-encoding is byte-for-byte the sender's.
            let mut theirs = NodeTable::default();
            let back = decode(env.clone(), &mut theirs)
                .unwrap()
                .into_core()
                .unwrap();
            assert_eq!(encode(&back, &theirs), Some(env), "{msg:?}");
            // With the sender's own table, ids are preserved exactly.
            let mut same = table().0;
            let exact = decode(encode(&msg, &t).unwrap(), &mut same).unwrap();
            assert_eq!(exact, Decoded::Core(msg.clone()));
        }
    }

    #[test]
    fn unknown_node_id_is_not_encoded() {
        let (t, _, _) = table();
        let msg = Gossip::Opinion {
            group: g("g"),
            master: NodeId(99),
            down: false,
        };
        assert_eq!(encode(&msg, &t), None);
    }

    #[test]
    fn transport_messages_decode_as_their_own() {
        let mut t = NodeTable::default();
        let hello = pb::Envelope {
            msg: Some(Msg::Hello(pb::Hello {
                name: "s-1".into(),
                announce_addr: "127.0.0.1:7000".into(),
                version: 1,
            })),
        };
        let d = decode(hello, &mut t).unwrap();
        assert_eq!(
            d,
            Decoded::Hello(PeerHello {
                name: "s-1".into(),
                announce: "127.0.0.1:7000".parse().unwrap(),
                version: 1,
            })
        );
        assert_eq!(d.into_core(), Some(Gossip::Hello));
        let members = pb::Envelope {
            msg: Some(Msg::Members(pb::Members {
                members: vec![pb::Member {
                    name: "s-2".into(),
                    addr: "[::1]:7001".into(),
                }],
            })),
        };
        let d = decode(members, &mut t).unwrap();
        assert_eq!(
            d,
            Decoded::Members(vec![("s-2".into(), "[::1]:7001".parse().unwrap())])
        );
        assert_eq!(d.into_core(), None);
    }

    fn opinion(group: &str, master: &str) -> pb::Envelope {
        pb::Envelope {
            msg: Some(Msg::Opinion(pb::Opinion {
                group: group.into(),
                master: master.into(),
                down: true,
            })),
        }
    }

    fn reject(env: pb::Envelope) -> ConvertError {
        let mut t = NodeTable::default();
        let err = decode(env, &mut t).unwrap_err();
        // A rejected message interns nothing.
        assert_eq!(t.get(&NodeAddr::new("10.0.0.1", 1)), None);
        err
    }

    #[test]
    fn empty_envelope_is_rejected() {
        assert_eq!(reject(pb::Envelope { msg: None }), ConvertError::Empty);
    }

    #[test]
    fn bad_group_names_are_rejected() {
        let long = "x".repeat(MAX_GROUP_NAME + 1);
        for bad in ["", "tab\there", "nul\0", "é", "new\nline", long.as_str()] {
            let err = reject(opinion(bad, "10.0.0.1:1"));
            assert!(matches!(err, ConvertError::GroupName(_)), "{bad:?}: {err}");
        }
        let mut t = NodeTable::default();
        let max = "y".repeat(MAX_GROUP_NAME);
        assert!(decode(opinion(&max, "10.0.0.1:1"), &mut t).is_ok());
    }

    #[test]
    fn bad_node_addresses_are_rejected() {
        for bad in ["", "host", "h:0", "h:99999", ":1"] {
            let err = reject(opinion("g", bad));
            assert!(matches!(err, ConvertError::NodeAddr(_)), "{bad:?}: {err}");
        }
    }

    #[test]
    fn unknown_election_reasons_are_rejected() {
        for value in [0, 6, -1] {
            let env = pb::Envelope {
                msg: Some(Msg::RequestVote(pb::RequestVote {
                    group: "g".into(),
                    term: 1,
                    epoch: 0,
                    reason: value,
                    master: "10.0.0.1:1".into(),
                    agreed: 0,
                    members: 1,
                })),
            };
            assert_eq!(
                reject(env),
                ConvertError::UnknownEnum {
                    what: "ElectionReason",
                    value
                }
            );
        }
    }

    fn vote(lease_wait_micros: u64, lineage: usize, edges: usize) -> pb::Envelope {
        pb::Envelope {
            msg: Some(Msg::Vote(pb::Vote {
                group: "g".into(),
                term: 1,
                granted: true,
                lease_wait_micros,
                lineage: vec![pb::LineageEntry::default(); lineage],
                edges: vec![pb::HistoryEdge::default(); edges],
            })),
        }
    }

    #[test]
    fn long_durations_are_rejected() {
        let hour = 3_600_000_000;
        let mut t = NodeTable::default();
        assert!(decode(vote(hour, 0, 0), &mut t).is_ok());
        assert!(matches!(
            reject(vote(hour + 1, 0, 0)),
            ConvertError::Duration { .. }
        ));
        assert!(matches!(
            reject(vote(u64::MAX, 0, 0)),
            ConvertError::Duration { .. }
        ));
    }

    #[test]
    fn oversized_lists_are_rejected() {
        let mut t = NodeTable::default();
        assert!(decode(vote(0, MAX_LINEAGE, MAX_LINEAGE), &mut t).is_ok());
        let too_many = |what, len, max| ConvertError::TooMany { what, len, max };
        assert_eq!(
            reject(vote(0, MAX_LINEAGE + 1, 0)),
            too_many("lineage", MAX_LINEAGE + 1, MAX_LINEAGE)
        );
        assert_eq!(
            reject(vote(0, 0, MAX_LINEAGE + 1)),
            too_many("edges", MAX_LINEAGE + 1, MAX_LINEAGE)
        );
        let config = pb::Envelope {
            msg: Some(Msg::GroupConfig(pb::GroupConfig {
                group: "g".into(),
                epoch: 1,
                master: "10.0.0.1:1".into(),
                lineage: vec![pb::LineageEntry::default(); MAX_LINEAGE + 1],
                options: None,
                removed: false,
                agreed: 0,
                reset: 0,
            })),
        };
        assert!(matches!(reject(config), ConvertError::TooMany { .. }));
        let heartbeat = |voters: usize, configs: usize| pb::Envelope {
            msg: Some(Msg::Heartbeat(pb::Heartbeat {
                voters: vec![1; voters],
                configs: vec![
                    pb::GroupEpoch {
                        group: "g".into(),
                        epoch: 1,
                        master: "10.0.0.1:1".into(),
                        agreed: 0,
                    };
                    configs
                ],
                ..Default::default()
            })),
        };
        assert!(decode(heartbeat(MAX_VOTERS, 2), &mut t).is_ok());
        assert_eq!(
            reject(heartbeat(MAX_VOTERS + 1, 0)),
            too_many("voters", MAX_VOTERS + 1, MAX_VOTERS)
        );
        assert_eq!(
            reject(heartbeat(0, MAX_CONFIGS + 1)),
            too_many("configs", MAX_CONFIGS + 1, MAX_CONFIGS)
        );
        let members = pb::Envelope {
            msg: Some(Msg::Members(pb::Members {
                members: vec![pb::Member::default(); MAX_MEMBERS + 1],
            })),
        };
        assert!(matches!(reject(members), ConvertError::TooMany { .. }));
    }

    #[test]
    fn zero_voter_ids_are_rejected() {
        let env = pb::Envelope {
            msg: Some(Msg::Heartbeat(pb::Heartbeat {
                voters: vec![1, 0],
                configs: vec![],
                ..Default::default()
            })),
        };
        assert_eq!(reject(env), ConvertError::ZeroSentinelId);
    }

    #[test]
    fn heartbeat_with_one_bad_entry_interns_nothing() {
        let env = pb::Envelope {
            msg: Some(Msg::Heartbeat(pb::Heartbeat {
                voters: vec![],
                configs: vec![
                    pb::GroupEpoch {
                        group: "g".into(),
                        epoch: 1,
                        master: "10.0.0.1:1".into(),
                        agreed: 0,
                    },
                    pb::GroupEpoch {
                        group: "g".into(),
                        epoch: 1,
                        master: "bad".into(),
                        agreed: 0,
                    },
                ],
                ..Default::default()
            })),
        };
        assert!(matches!(reject(env), ConvertError::NodeAddr(_)));
    }

    #[test]
    fn bad_hellos_and_members_are_rejected() {
        let hello = |name: &str, addr: &str| pb::Envelope {
            msg: Some(Msg::Hello(pb::Hello {
                name: name.into(),
                announce_addr: addr.into(),
                version: 1,
            })),
        };
        assert!(matches!(
            reject(hello("bad name", "127.0.0.1:1")),
            ConvertError::SentinelName(_)
        ));
        assert!(matches!(
            reject(hello(&"n".repeat(65), "127.0.0.1:1")),
            ConvertError::SentinelName(_)
        ));
        // Sentinels are dialed by IP: a host name is not an announce address.
        assert!(matches!(
            reject(hello("s1", "host.example:1")),
            ConvertError::SocketAddr(_)
        ));
        assert!(matches!(
            reject(hello("s1", "")),
            ConvertError::SocketAddr(_)
        ));
        let members = |name: &str, addr: &str| pb::Envelope {
            msg: Some(Msg::Members(pb::Members {
                members: vec![pb::Member {
                    name: name.into(),
                    addr: addr.into(),
                }],
            })),
        };
        assert!(matches!(
            reject(members("", "127.0.0.1:1")),
            ConvertError::SentinelName(_)
        ));
        assert!(matches!(
            reject(members("s1", "nope")),
            ConvertError::SocketAddr(_)
        ));
    }
}
