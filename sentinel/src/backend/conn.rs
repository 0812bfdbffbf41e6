//! `Conn`: one RESP2 connection to a data node, the only place in `backend` that touches a socket.
//!
//! Owns the connect handshake (TCP_NODELAY, `AUTH`, `CLIENT SETNAME`) and bounded reply reading.
//! Invariant: the read buffer never holds more than `max` bytes plus one read's worth; a reply
//! that does not fit, or that is not RESP, is `BackendError::Protocol`, after which the caller
//! drops the connection. Nothing here has a deadline: callers wrap whole calls in one.

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tracing::debug;
use vigil_proto::resp::{self, Frame, Limits};

use super::{BackendConfig, BackendError};
use crate::nodes::NodeAddr;

/// A command: its arguments, name first.
pub(super) type Cmd = Vec<String>;

/// One open connection, in sync with the server: every reply to what was sent was read.
#[derive(Debug)]
pub(super) struct Conn {
    stream: TcpStream,
    buf: BytesMut,
    limits: Limits,
    max: usize,
}

impl Conn {
    /// Connects to `addr`, authenticates, and names the connection; replies are capped at `max`
    /// bytes.
    pub(super) async fn connect(
        addr: &NodeAddr,
        cfg: &BackendConfig,
        max: usize,
    ) -> Result<Conn, BackendError> {
        let stream = TcpStream::connect((addr.host.as_str(), addr.port))
            .await
            .map_err(|source| BackendError::Connect {
                addr: addr.clone(),
                source,
            })?;
        // Probes are tiny request/reply pairs: Nagle would only add latency.
        stream.set_nodelay(true)?;
        let mut conn = Conn {
            stream,
            buf: BytesMut::with_capacity(READ_CHUNK),
            limits: Limits {
                max_bulk: max,
                // Replies we expect are scalars or short arrays (pub/sub messages have three
                // elements); a long array is garbage.
                max_multibulk: 1024,
                max_inline: 64 * 1024,
                max_depth: 8,
            },
            max,
        };
        let mut cmds: Vec<Cmd> = Vec::with_capacity(2);
        if let Some(pass) = &cfg.auth_pass {
            let mut auth = vec!["AUTH".to_owned()];
            auth.extend(cfg.auth_user.iter().cloned());
            auth.push(pass.clone());
            cmds.push(auth);
        }
        if !cfg.client_name.is_empty() {
            cmds.push(vec![
                "CLIENT".to_owned(),
                "SETNAME".to_owned(),
                cfg.client_name.clone(),
            ]);
        }
        if cmds.is_empty() {
            return Ok(conn);
        }
        // One round trip for both: SETNAME is harmless even if AUTH fails, since the connection
        // is then dropped.
        conn.send(&cmds).await?;
        if cfg.auth_pass.is_some() {
            match conn.read().await? {
                Frame::Simple(_) => {}
                Frame::Error(e) => {
                    return Err(BackendError::Refused(format!(
                        "AUTH: {}",
                        String::from_utf8_lossy(&e)
                    )));
                }
                other => return Err(unexpected("AUTH", &other)),
            }
        }
        if !cfg.client_name.is_empty() {
            // Some servers (or ACLs) refuse CLIENT SETNAME; the name is only a courtesy.
            if let Frame::Error(e) = conn.read().await? {
                debug!(node = %addr, error = %String::from_utf8_lossy(&e), "CLIENT SETNAME refused");
            }
        }
        Ok(conn)
    }

    /// Writes `cmds` in one pipelined batch.
    pub(super) async fn send(&mut self, cmds: &[Cmd]) -> Result<(), BackendError> {
        let mut out = BytesMut::new();
        for cmd in cmds {
            resp::encode_command(cmd, &mut out);
        }
        self.stream.write_all(&out).await?;
        Ok(())
    }

    /// Reads the next reply frame.
    pub(super) async fn read(&mut self) -> Result<Frame, BackendError> {
        loop {
            if !self.buf.is_empty() {
                match resp::decode(&self.buf, &self.limits) {
                    Ok(Some((frame, used))) => {
                        self.buf.advance(used);
                        return Ok(frame);
                    }
                    Ok(None) if self.buf.len() > self.max => {
                        return Err(BackendError::Protocol(format!(
                            "reply larger than {} bytes",
                            self.max
                        )));
                    }
                    Ok(None) => {}
                    Err(e) => return Err(BackendError::Protocol(e.to_string())),
                }
            }
            self.buf.reserve(READ_CHUNK);
            let n = self.stream.read_buf(&mut self.buf).await?;
            if n == 0 {
                return Err(BackendError::Io(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    "connection closed by the node",
                )));
            }
        }
    }
}

/// The error for a reply of the wrong type.
pub(super) fn unexpected(what: &str, frame: &Frame) -> BackendError {
    let mut text = format!("unexpected reply to {what}: {frame:?}");
    // A garbage frame can be megabytes long; keep the message loggable.
    if text.len() > 200 {
        let mut end = 200;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
        text.push('…');
    }
    BackendError::Protocol(text)
}

/// How much buffer space each socket read offers.
const READ_CHUNK: usize = 16 * 1024;
