//! The shell's table of data nodes: addresses on the outside, `NodeId`s inside the core.
//!
//! Owns `NodeAddr`, `NodeTable`, and the mapping of Redis' 40-hex-digit run ids and
//! replication ids to the core's `RunId`/`ReplId`.
//! Invariant: the same address always maps to the same `NodeId` in one process, and the id
//! mappings are the same function in every sentinel, so ids agree across the cluster without
//! being sent (gossip carries addresses, never `NodeId`s).

use std::collections::HashMap;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;

use crate::core::{NodeId, ReplId, RunId};

/// The most data nodes one sentinel tracks; interning more is refused.
pub const MAX_NODES: usize = 65_536;

/// A data node's address as sentinels announce it: a host (IP or name) and a port.
#[derive(Clone, Debug, Eq, Hash, Ord, PartialEq, PartialOrd)]
pub struct NodeAddr {
    /// IP address or DNS name, as configured or as the master's INFO reported it.
    pub host: String,
    /// TCP port.
    pub port: u16,
}

/// Why a string is not a node address.
#[derive(Clone, Debug, Eq, PartialEq, thiserror::Error)]
pub enum AddrError {
    /// No `:port` suffix, or the port is not a number in 1..=65535.
    #[error("invalid address {0:?}: expected HOST:PORT with a port in 1..=65535")]
    Invalid(String),
}

impl NodeAddr {
    /// An address from a host and a port.
    pub fn new(host: impl Into<String>, port: u16) -> NodeAddr {
        NodeAddr {
            host: host.into(),
            port,
        }
    }

    /// The socket address, when the host is an IP literal.
    pub fn socket_addr(&self) -> Option<SocketAddr> {
        self.host
            .parse::<IpAddr>()
            .ok()
            .map(|ip| SocketAddr::new(ip, self.port))
    }
}

impl FromStr for NodeAddr {
    type Err = AddrError;

    fn from_str(s: &str) -> Result<NodeAddr, AddrError> {
        let bad = || AddrError::Invalid(s.to_owned());
        let (host, port) = s.rsplit_once(':').ok_or_else(bad)?;
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if host.is_empty() || host.len() > 255 || host.contains(char::is_whitespace) {
            return Err(bad());
        }
        let port: u16 = port.parse().map_err(|_| bad())?;
        if port == 0 {
            return Err(bad());
        }
        Ok(NodeAddr::new(host, port))
    }
}

impl fmt::Display for NodeAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

/// Interns node addresses as `NodeId`s.
#[derive(Debug, Default)]
pub struct NodeTable {
    by_addr: HashMap<NodeAddr, NodeId>,
    addrs: Vec<NodeAddr>,
}

impl NodeTable {
    /// The id of `addr`, allocating one if it is new; `None` when the table is full.
    pub fn intern(&mut self, addr: &NodeAddr) -> Option<NodeId> {
        if let Some(id) = self.by_addr.get(addr) {
            return Some(*id);
        }
        if self.addrs.len() >= MAX_NODES {
            return None;
        }
        let id = NodeId(u32::try_from(self.addrs.len()).ok()?);
        self.addrs.push(addr.clone());
        self.by_addr.insert(addr.clone(), id);
        Some(id)
    }

    /// The id of `addr`, if it was interned.
    pub fn get(&self, addr: &NodeAddr) -> Option<NodeId> {
        self.by_addr.get(addr).copied()
    }

    /// The address of `id`.
    pub fn addr(&self, id: NodeId) -> Option<&NodeAddr> {
        self.addrs.get(id.0 as usize)
    }
}

/// The core's `RunId` for a Redis run id: its first 16 hex digits, or a hash of the string
/// when it is not hex (a foreign server). The same function in every sentinel.
pub fn run_id(text: &str) -> RunId {
    RunId(id64(text))
}

/// The core's `ReplId` for a Redis replication id (40 hex digits); all zeros stays zero.
pub fn repl_id(text: &str) -> ReplId {
    ReplId(id64(text))
}

/// The 16-hex-digit prefix of a run id that `VIGIL LEASE` carries, from the core's `RunId`.
pub fn run_id_prefix(id: RunId) -> String {
    format!("{:016x}", id.0)
}

fn id64(text: &str) -> u64 {
    let prefix = text.get(..16).unwrap_or(text);
    if prefix.len() == 16 {
        if let Ok(v) = u64::from_str_radix(prefix, 16) {
            return v;
        }
    }
    // FNV-1a: stable across processes and versions, unlike std's hasher.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in text.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_parse_and_print() {
        let a: NodeAddr = "127.0.0.1:6379".parse().unwrap();
        assert_eq!(a, NodeAddr::new("127.0.0.1", 6379));
        assert_eq!(a.to_string(), "127.0.0.1:6379");
        let v6: NodeAddr = "[::1]:7000".parse().unwrap();
        assert_eq!(v6.host, "::1");
        assert_eq!(v6.to_string(), "[::1]:7000");
        assert!(v6.socket_addr().is_some());
        for bad in ["", "host", "host:", ":1", "h:0", "h:70000", "h:x", "a b:1"] {
            assert!(bad.parse::<NodeAddr>().is_err(), "{bad}");
        }
    }

    #[test]
    fn interning_is_stable() {
        let mut t = NodeTable::default();
        let a = NodeAddr::new("127.0.0.1", 1);
        let b = NodeAddr::new("127.0.0.1", 2);
        let ia = t.intern(&a).unwrap();
        let ib = t.intern(&b).unwrap();
        assert_ne!(ia, ib);
        assert_eq!(t.intern(&a), Some(ia));
        assert_eq!(t.addr(ib), Some(&b));
        assert_eq!(t.get(&NodeAddr::new("x", 3)), None);
    }

    #[test]
    fn ids_are_hex_prefixes_and_round_trip_for_leases() {
        let id = run_id("0123456789abcdef0123456789abcdef01234567");
        assert_eq!(id, RunId(0x0123_4567_89ab_cdef));
        assert_eq!(run_id_prefix(id), "0123456789abcdef");
        assert_eq!(
            repl_id("0000000000000000000000000000000000000000"),
            ReplId(0)
        );
        // Non-hex ids still map deterministically.
        assert_eq!(run_id("not-hex"), run_id("not-hex"));
        assert_ne!(run_id("not-hex"), run_id("not-hex2"));
    }
}
