//! Gossip between sentinels: the QUIC transport and the wire conversions.
//!
//! Modules:
//! - `convert`: the core's `Gossip` to and from `vigil.v1.Envelope`, with every bound checked
//!   on the way in (node ids cross the wire as addresses).
//! - `transport`: one quinn endpoint, one mutually authenticated connection per peer pair,
//!   length-delimited protobuf frames on streams, membership gossip and redialing. It knows
//!   nothing of the core: it moves `Envelope`s between authenticated `SentinelId`s.
//!
//! Invariants: a peer's `SentinelId` always comes from the certificate it presented, never from
//! a message; nothing a peer sends can panic the transport or stall another peer's traffic.

pub mod convert;
pub mod transport;

pub use convert::{ConvertError, Decoded, PeerHello, decode, encode};
pub use transport::{
    GossipError, LinkInfo, TransportConfig, TransportEvent, TransportHandle, TransportStats, start,
};
