//! End-to-end tests: real `vigil` processes (and a real `redis-server` where compatibility is
//! claimed) on loopback, driven over real sockets. One module per area, one test binary.

mod harness;

mod admin;
mod control;
mod datanode;
mod diff;
mod group_admin;
mod membership;
mod persistence;
mod replication;
mod sentinel;
mod sentinel_clients;
