//! `vigil-proto`: every wire format Vigil speaks, and no I/O.
//!
//! Codemap:
//! - `resp`: the RESP2/RESP3 frame type, the incremental request decoder used by data nodes
//!   (multibulk and inline commands), the general frame decoder used by clients and replicas, and
//!   the encoder that writes a frame in the protocol version a connection negotiated.
//! - `float`: Redis' textual formats for doubles (`%.17g` for replies, the human form of
//!   `INCRBYFLOAT`) and the parser that accepts what Redis accepts.
//!
//! Invariants: nothing here touches a socket, a file or a clock; every length a peer declares is
//! checked against a limit before anything is allocated for it.
#![warn(missing_docs)]

pub mod float;
pub mod resp;
