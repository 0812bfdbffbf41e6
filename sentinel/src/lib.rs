//! `vigil-sentinel`: watches data-node groups, agrees that a master is down, elects one leader
//! per group and term, and promotes the best replica.
//!
//! Bird's eye view: the shell (not written yet) owns sockets, files and clocks; it feeds facts to
//! `core::Sentinel` as `Input`s with the current time, and executes the `Action`s it polls out.
//! Everything that decides anything lives in the core, so the whole distributed protocol can be
//! run and checked in a deterministic simulator with thousands of seeds.
//!
//! Modules:
//! - `core`: the sans-IO state machine: monitoring, elections, failovers, leases, convergence.
//! - `sim` (tests only): sentinels and modelled data nodes on a virtual network and clock, with
//!   faults, and the checker of DESIGN.md §7 invariants 1 to 6.
//!
//! Invariants, stated as absences:
//! - `core` never touches a socket, a file, a clock or an unseeded random number generator.
//! - No vote leaves a sentinel before it is durable, and no sentinel votes twice in a term.
//! - No replica is promoted while a write lease granted by the leader's voters may be valid.
//! - No config epoch or term ever goes down, in memory or on disk.
#![warn(missing_docs)]

pub mod backend;
pub mod core;
pub mod gossip;
pub mod nodes;
pub mod settings;
pub mod state;
pub mod tls;

#[cfg(test)]
mod sim;
#[cfg(test)]
mod testutil;
