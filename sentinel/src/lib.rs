//! `vigil-sentinel`: watches data-node groups, agrees that a master is down, elects one leader
//! per group and term, and promotes the best replica.
//!
//! Bird's eye view: the shell (`daemon`) owns sockets, files and clocks; it feeds facts to
//! `core::Sentinel` as `Input`s with the current time, and executes the `Action`s it polls out.
//! Everything that decides anything lives in the core, so the whole distributed protocol can be
//! run and checked in a deterministic simulator with thousands of seeds.
//!
//! Modules:
//! - `core`: the sans-IO state machine: monitoring, elections, failovers, leases, convergence,
//!   operators' group changes (`core::admin`) agreed through a term, and the voter set
//!   (`core::members`), changed only by a Paxos instance per membership epoch.
//! - `daemon`: the tokio shell of `vigil sentinel`: start-up, the event loop, action execution,
//!   hello discovery, and the `Snapshot` query ports read.
//! - `backend`: `trait Backend` and the RESP driver for Vigil data nodes and Redis/Valkey.
//! - `gossip`: the QUIC transport between sentinels and the protobuf conversions of `Gossip`.
//! - `tls`: identities, the cluster CA, certificates (rcgen) and rustls configs.
//! - `state`: the durable state file (atomic write, checksum).
//! - `settings`: `sentinel.toml` and Redis `sentinel.conf` reading and validation.
//! - `nodes`: data-node addresses and their `NodeId`s; Redis id strings to the core's ids.
//! - `events`: core events rendered as Redis Sentinel's channels and payloads.
//! - `resp_port`: the Redis-Sentinel-compatible RESP port.
//! - `group_admin`: operators' group changes (`Monitor`, `SetOption`, `Remove`, `Reset`) from
//!   the ports to the core and back; option names and their parsing.
//! - `api`: the gRPC control API (`vigil.v1.SentinelControl`, health, reflection) over the
//!   same `daemon::Ports` as the RESP port.
//! - `sim` (tests only): sentinels and modelled data nodes on a virtual network and clock, with
//!   faults, and the checker of DESIGN.md §7 invariants 1 to 6.
//!
//! Invariants, stated as absences:
//! - `core` never touches a socket, a file, a clock or an unseeded random number generator.
//! - No vote leaves a sentinel before it is durable, and no sentinel votes twice in a term.
//! - No replica is promoted while a write lease granted by the leader's voters may be valid.
//! - No config epoch or term ever goes down, in memory or on disk.
#![warn(missing_docs)]

pub mod api;
pub mod backend;
pub mod core;
pub mod daemon;
pub mod events;
pub mod gossip;
pub mod group_admin;
pub mod nodes;
pub mod resp_port;
pub mod settings;
pub mod state;
pub mod tls;

#[cfg(test)]
mod sim;
#[cfg(test)]
mod testutil;
