//! `vigil-client`: the library Rust services use to reach a Vigil group.
//!
//! Bird's eye view: a `MasterWatcher` keeps one gRPC `WatchMaster` stream open to some sentinel
//! and knows the current master (address and config epoch) of each group; a `Client` of one group
//! uses it to send writes to that master over `redis` connections, and treats the data nodes'
//! failover signals by waiting for the next master.
//!
//! Codemap:
//! - `watcher`: `MasterWatcher`, `WatcherOptions`, `ClientTls`, `Master`, `MasterChange`. One task
//!   subscribes to one sentinel at a time, rotates to the next when the stream errors, ends or
//!   goes silent past the keep-alive timeout, and reconnects with `min_epoch`. Also the one-shot
//!   `GetGroup` call that lists replicas.
//! - `client`: `Client`, `ClientOptions`, `ReadPolicy`. Writes go to the master; `-READONLY`,
//!   `-NOLEASE` and failed connects make a write wait (bounded) for a newer master and retry once
//!   there; a connection lost after sending gives `ClientError::Unknown` (at-most-once writes).
//!   Reads go by policy (master, replica-preferred, same-DC) and are retried.
//! - `error`: `ClientError`.
//!
//! Invariants: the config epoch a watcher reports for a group never decreases; a client never
//! reports success for a write that the master it names did not acknowledge; every channel,
//! cache and wait is bounded. The client never runs server code and depends only on
//! `vigil-proto` among Vigil's crates.
#![warn(missing_docs)]

mod client;
mod error;
mod watcher;

pub use client::{Client, ClientOptions, ReadPolicy};
pub use error::ClientError;
pub use watcher::{
    CHANGES_CAPACITY, ClientTls, MAX_GROUPS, Master, MasterChange, MasterWatcher, Masters,
    WatcherOptions,
};
