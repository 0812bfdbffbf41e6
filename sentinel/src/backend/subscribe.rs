//! `subscribe`: a long-lived `SUBSCRIBE` connection that forwards one channel's messages, used for
//! the `__sentinel__:hello` discovery channel of the masters a sentinel watches.
//!
//! Bounds: a payload longer than `MAX_PAYLOAD` is dropped; a frame longer than `MAX_FRAME` is a
//! protocol error, after which the loop reconnects (anyone who can PUBLISH on the node could send
//! one, so this only costs that subscriber a reconnect). Messages are handed over with
//! `try_send`: when the receiver lags and the channel is full, the message is dropped, since
//! hellos repeat and a stalled consumer must not make this task buffer.
//!
//! Liveness: a subscribed connection is silent between messages, so a dead peer would go
//! unnoticed; after `keepalive` of silence the loop sends `PING` (allowed in subscribed mode),
//! and when another `keepalive` passes with nothing received it reconnects.

use std::time::Duration;

use tokio::sync::mpsc;
use tokio::sync::mpsc::error::TrySendError;
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};
use vigil_proto::resp::Frame;

use super::conn::{Conn, unexpected};
use super::{BackendConfig, BackendError};
use crate::nodes::NodeAddr;

/// Keeps a subscription to `channel` on the node at `addr` open until `cancel` fires or `tx` is
/// closed, forwarding each message's payload to `tx`. Connection failures are retried forever,
/// with a backoff from 100 ms doubling to 2 s, reset once a subscription succeeds.
pub async fn subscribe(
    addr: NodeAddr,
    cfg: BackendConfig,
    channel: String,
    tx: mpsc::Sender<String>,
    cancel: CancellationToken,
) {
    let mut backoff = BACKOFF_MIN;
    loop {
        let result = tokio::select! {
            biased;
            () = cancel.cancelled() => return,
            result = session(&addr, &cfg, &channel, &tx, &mut backoff) => result,
        };
        match result {
            Ok(()) => return,
            Err(e) => {
                debug!(node = %addr, %channel, error = %e, ?backoff, "subscription lost; retrying")
            }
        }
        tokio::select! {
            biased;
            () = cancel.cancelled() => return,
            () = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(BACKOFF_MAX);
    }
}

/// One connection's life: connect, subscribe, forward. `Ok` only when `tx` is closed.
async fn session(
    addr: &NodeAddr,
    cfg: &BackendConfig,
    channel: &str,
    tx: &mpsc::Sender<String>,
    backoff: &mut Duration,
) -> Result<(), BackendError> {
    let setup = async {
        let mut conn = Conn::connect(addr, cfg, MAX_FRAME).await?;
        conn.send(&[vec!["SUBSCRIBE".to_owned(), channel.to_owned()]])
            .await?;
        match conn.read().await? {
            Frame::Array(items) | Frame::Push(items)
                if items
                    .first()
                    .and_then(Frame::as_bytes)
                    .is_some_and(|k| k.eq_ignore_ascii_case(b"subscribe")) =>
            {
                Ok(conn)
            }
            Frame::Error(e) => Err(BackendError::Refused(
                String::from_utf8_lossy(&e).into_owned(),
            )),
            other => Err(unexpected("SUBSCRIBE", &other)),
        }
    };
    let mut conn = tokio::time::timeout(cfg.timeout, setup)
        .await
        .map_err(|_| BackendError::Timeout(cfg.timeout))??;
    debug!(node = %addr, %channel, "subscribed");
    *backoff = BACKOFF_MIN;
    let keepalive = cfg.timeout.max(KEEPALIVE_MIN);
    let mut ping_outstanding = false;
    loop {
        // `Conn::read` is cancel-safe: bytes already read stay in its buffer.
        let frame = match tokio::time::timeout(keepalive, conn.read()).await {
            Ok(frame) => frame?,
            Err(_) if ping_outstanding => return Err(BackendError::Timeout(keepalive)),
            Err(_) => {
                tokio::time::timeout(cfg.timeout, conn.send(&[vec!["PING".to_owned()]]))
                    .await
                    .map_err(|_| BackendError::Timeout(cfg.timeout))??;
                ping_outstanding = true;
                continue;
            }
        };
        ping_outstanding = false;
        let items = match frame {
            Frame::Array(items) | Frame::Push(items) => items,
            Frame::Error(e) => {
                return Err(BackendError::Refused(
                    String::from_utf8_lossy(&e).into_owned(),
                ));
            }
            other => return Err(unexpected("SUBSCRIBE", &other)),
        };
        // `message <channel> <payload>`; `pong` and (un)subscribe confirmations are skipped.
        let [kind, _, payload] = items.as_slice() else {
            continue;
        };
        if kind.as_bytes() != Some(b"message".as_slice()) {
            continue;
        }
        let Some(payload) = payload.as_bytes() else {
            continue;
        };
        if payload.len() > MAX_PAYLOAD {
            debug!(node = %addr, %channel, len = payload.len(), "dropping oversized message");
            continue;
        }
        let Ok(text) = std::str::from_utf8(payload) else {
            debug!(node = %addr, %channel, "dropping non-UTF-8 message");
            continue;
        };
        match tx.try_send(text.to_owned()) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                warn!(node = %addr, %channel, "receiver full; dropping message");
            }
            Err(TrySendError::Closed(_)) => return Ok(()),
        }
    }
}

/// The largest payload forwarded; hellos are a few hundred bytes.
const MAX_PAYLOAD: usize = 4 * 1024;
/// The largest frame read on a subscribed connection.
const MAX_FRAME: usize = 1024 * 1024;
const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(2);
/// The shortest silence after which the connection is pinged.
const KEEPALIVE_MIN: Duration = Duration::from_secs(1);
