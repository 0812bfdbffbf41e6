//! Data-node behaviour over real sockets: one `vigil datanode` process per test, driven by
//! redis-rs, redis-cli and raw RESP.
//!
//! Each test starts its own process on a free loopback port, so tests run in parallel and share
//! nothing. Every wait has a deadline; every loop is bounded.
//!
//! - `clients`: real client libraries and tools (redis-rs, redis-cli) against a data node.
//! - `bad_input`: malformed or abusive clients; the server answers as Redis does and every other
//!   client keeps working.
//! - `server`: server behaviour (auth, databases, expiry, eviction, blocking, transactions,
//!   shutdown, configuration, `vigil up`).

mod bad_input;
mod clients;
mod fencing;
mod server;

use std::io::{ErrorKind, Read};
use std::time::Duration;

use bytes::Bytes;
use vigil_proto::resp::Frame;

use crate::harness::Conn;

/// An error reply with exactly `text` (code included).
fn err(text: &str) -> Frame {
    Frame::Error(Bytes::copy_from_slice(text.as_bytes()))
}

/// A bulk string reply.
fn bulk(text: &str) -> Frame {
    Frame::Bulk(Bytes::copy_from_slice(text.as_bytes()))
}

/// A simple string reply.
fn simple(text: &str) -> Frame {
    Frame::Simple(Bytes::copy_from_slice(text.as_bytes()))
}

/// The text of a bulk or verbatim reply (INFO, CLIENT INFO), or a panic naming what came instead.
fn text(f: &Frame) -> String {
    let bytes = f
        .as_bytes()
        .unwrap_or_else(|| panic!("expected a string reply, got {f:?}"));
    String::from_utf8_lossy(bytes).into_owned()
}

/// One numeric field of `INFO <section>`, such as `evicted_keys` in `stats`.
fn info_u64(c: &mut Conn, section: &str, field: &str) -> u64 {
    let reply = c.cmd(&["INFO", section]);
    let info = text(&reply);
    info.lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no numeric {field} in INFO {section}:\n{info}"))
}

/// True once the server has closed `c` (end of stream or reset), reading and discarding whatever
/// it sent before; false if it is still open after the connection's read timeout.
fn disconnected(c: &mut Conn) -> bool {
    let stream = c.stream();
    let mut chunk = vec![0u8; 256 * 1024];
    // Bounded: each read takes at least one byte or ends the loop, and the server's output is
    // capped by its output buffer limit plus the socket buffers.
    for _ in 0..100_000 {
        match stream.read(&mut chunk) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return false;
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(_) => return true,
        }
    }
    false
}

/// Asserts that `c` (a client that connected before the trouble) is still served.
fn assert_still_served(c: &mut Conn) {
    assert_eq!(c.cmd(&["PING"]), simple("PONG"), "bystander not served");
    assert_eq!(
        c.cmd(&["GET", "bystander"]),
        bulk("still here"),
        "bystander lost its data"
    );
}

/// A connection that has stored the key `assert_still_served` checks.
fn bystander(addr: std::net::SocketAddr) -> Conn {
    let mut c = Conn::new(addr);
    assert_eq!(c.cmd(&["SET", "bystander", "still here"]), Frame::ok());
    c
}

/// How long a test waits for a condition the server should reach quickly.
const DEADLINE: Duration = Duration::from_secs(10);
