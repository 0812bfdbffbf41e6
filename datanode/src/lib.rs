//! `vigil-datanode`: a Redis-compatible data node.
//!
//! Bird's eye view: `server` accepts TCP connections and owns the shared state; each connection
//! runs in its own task (`connection`), which decodes requests with `vigil_proto::resp` and hands
//! them to its `session`; the session dispatches through the command table (`cmd`), running
//! keyspace commands inside a locked view of the `engine`. Both cores serve clients: the keyspace
//! is sharded and a command locks only the shards of its keys.
//!
//! Codemap:
//! - `server`: `Server` (bind, accept loop, `maxclients`, shutdown), `Shared`, background tasks.
//! - `connection`: client sockets (the only code besides `replication`'s link tasks that reads or
//!   writes sockets); input and output limits; hands a replica's socket to `replication`.
//! - `session`: per-client state, the dispatcher, connection/server/transaction commands.
//! - `cmd`: the command table and the keyspace command families (strings, keys, hashes, lists,
//!   sets, sorted sets), each a `parse + apply` over a `Keyspace` view, returning its reply.
//! - `engine`: `trait Engine` (the storage seam), the value model, the in-memory engine.
//! - `pubsub`: channel and pattern subscriptions with bounded delivery.
//! - `replication`: Redis' replication protocol, both sides: the stream and its backlog, command
//!   rewriting, serving replicas (full and partial resync), the link to our master, snapshots.
//! - `persist`: RDB files (SAVE, BGSAVE, `save` rules, load at start) and the append-only file
//!   (recorded from the replication stream through its `StreamSink` hook, fsync policies, rewrite).
//! - `fencing`: write fencing: the node clock, sentinels' write leases (`VIGIL CLOCK/LEASE`) and
//!   the `-NOLEASE` refusal of client writes on a master without a lease majority.
//! - `rdb`: the RDB snapshot codec (streaming reader of every Redis 7.0 encoding, plain writer).
//! - `info`: `INFO` sections; `config`: `Config` and `CONFIG GET/SET`; `glob`: pattern matching;
//!   `sds`: the compact string used for keys and values.
//!
//! Invariants: nothing here knows about sentinels beyond the numbers and grants `VIGIL LEASE`
//! carries (they reach a data node only through RESP);
//! no input from a client can panic the process or grow a buffer past a configured limit;
//! commands never write to sockets.
#![warn(missing_docs)]

pub mod cmd;
pub mod config;
pub mod connection;
pub mod engine;
pub mod fencing;
pub mod glob;
pub mod info;
pub mod persist;
pub mod pubsub;
pub mod rdb;
pub mod replication;
pub mod sds;
pub mod server;
pub mod session;

pub use config::Config;
pub use server::{Runtime, Server, ServerError};
