//! `vigil-client`: the library Rust services use to reach a Vigil group.
//!
//! Codemap (planned, see DESIGN.md §5):
//! - `watcher`: `MasterWatcher` subscribes to any reachable sentinel over gRPC, moves to another on
//!   stream loss, tracks config epochs and yields the current master.
//! - `client`: `Client` routes writes to the master and reads by policy, and treats `-READONLY`,
//!   `-NOLEASE` and connection loss as failover signals.
//!
//! Invariants: the client never runs server code and depends only on `vigil-proto`.
#![warn(missing_docs)]
