//! Integration tests of `vigil-client`, in one binary (one link): the watcher against fake
//! sentinels, and the client against real `vigil datanode` processes (ignored unless the binary
//! is built, see `nodes`).

mod client;
mod fake;
mod nodes;
mod watcher;
