//! Master side: serves one replica connection after it sent `PSYNC` or `SYNC`.
//!
//! The connection task hands its socket over here. We decide between a partial and a full
//! resynchronization under the stream lock (`decide_psync`), so the replica's output buffer is
//! attached at exactly the offset we announce:
//! - partial: `+CONTINUE <replid>`, then the backlog tail and the live stream;
//! - full: a snapshot (`snapshot::take`) attaches the buffer at the snapshot's offset, then
//!   `+FULLRESYNC <replid> <offset>` and the RDB, streamed diskless as `$EOF:<mark>…<mark>` when
//!   the replica sent `capa eof` and `repl-diskless-sync` is on, else through a temporary file
//!   in `dir` as a `$<len>` bulk; after a diskless transfer the stream waits for the replica's
//!   first ACK (as Redis does), so no stream byte can be mistaken for the end of the snapshot.
//!
//! Then the buffered and live stream flows while we read `REPLCONF ACK`s. Limits: the output
//! buffer is bounded by `client-output-buffer-limit replica` (past it the link is cut and the
//! replica resyncs later); a write that makes no progress or a replica silent for `repl-timeout`
//! is dropped; the input buffer is bounded at `MAX_INPUT`.

use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::mpsc;
use tracing::{Instrument, debug, info, info_span, warn};
use vigil_proto::resp::{Limits, RequestDecoder};

use super::snapshot::{self, ChannelWriter};
use super::{
    PsyncDecision, ReplicaLink, ReplicaState, ReplicationError, SyncRequest, decide_psync,
};
use crate::server::{ClientHandle, Shared};

/// Most bytes a replica may send us without our consuming them (ACKs are tiny).
const MAX_INPUT: usize = 1024 * 1024;

/// Serves the replica on `stream` until it disconnects, falls behind its limit, or is killed.
pub async fn serve(
    shared: Arc<Shared>,
    stream: TcpStream,
    handle: Arc<ClientHandle>,
    inbuf: BytesMut,
    req: SyncRequest,
) {
    let ip = req
        .ip
        .clone()
        .unwrap_or_else(|| handle.addr.ip().to_string());
    let link = Arc::new(ReplicaLink::new(handle.id, ip, req.port));
    shared.repl.replicas().push(link.clone());
    if let Ok(mut i) = handle.info.lock() {
        i.replica = true;
    }
    let span = info_span!("replica", peer = %handle.addr, id = handle.id, port = req.port);
    let r = sync_and_stream(&shared, stream, &handle, &link, inbuf, &req)
        .instrument(span.clone())
        .await;
    shared.repl.detach(&link);
    let _enter = span.enter();
    match r {
        Ok(()) => info!("replica disconnected"),
        Err(ReplicationError::OutputLimit) => warn!(
            "replica cut: output buffer over client-output-buffer-limit replica; it will resync"
        ),
        Err(e) => warn!(error = %e, "replica link closed"),
    }
}

async fn sync_and_stream(
    shared: &Arc<Shared>,
    stream: TcpStream,
    handle: &Arc<ClientHandle>,
    link: &Arc<ReplicaLink>,
    inbuf: BytesMut,
    req: &SyncRequest,
) -> Result<(), ReplicationError> {
    let (mut rd, mut wr) = stream.into_split();
    let (timeout, diskless, delay, dir) = {
        let c = shared.config();
        (
            c.repl_timeout,
            c.repl_diskless_sync,
            c.repl_diskless_sync_delay,
            c.dir.clone(),
        )
    };
    if shared.repl.is_replica()
        && shared
            .repl
            .link()
            .as_ref()
            .is_none_or(|l| l.state != "connected")
    {
        wr.write_all(b"-NOMASTERLINK Can't SYNC while not connected with my master\r\n")
            .await?;
        return Ok(());
    }
    // Decide and, for a partial resync, attach at the backlog position, under one lock.
    let continued = {
        let mut st = shared.repl.stream();
        let decision = match &req.psync {
            Some((id, off)) => decide_psync(&st.ids, st.backlog.as_ref(), id, *off),
            None => PsyncDecision::Full("SYNC"),
        };
        match decision {
            PsyncDecision::Continue { from } => {
                let mut tail = BytesMut::new();
                if let Some(b) = &st.backlog {
                    b.copy_from(from, &mut tail);
                }
                link.out.set(tail);
                st.attach(link);
                link.ack_offset.store(
                    from.0.saturating_sub(1),
                    std::sync::atomic::Ordering::Release,
                );
                link.set_state(ReplicaState::Online);
                info!(offset = from.0, "partial resynchronization accepted");
                Some(st.ids.replid.clone())
            }
            PsyncDecision::Full(reason) => {
                info!(reason, "full resynchronization");
                None
            }
        }
    };
    let stats = &shared.repl.stats;
    if let Some(replid) = continued {
        stats
            .sync_partial_ok
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let reply = if req.capa_psync2 {
            format!("+CONTINUE {replid}\r\n")
        } else {
            "+CONTINUE\r\n".into()
        };
        wr.write_all(reply.as_bytes()).await?;
        return stream_loop(
            shared, &mut rd, &mut wr, handle, link, inbuf, timeout, false,
        )
        .await;
    }
    stats
        .sync_full
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    if req.psync.as_ref().is_some_and(|(id, _)| id != "?") {
        stats
            .sync_partial_err
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
    let eof = diskless && req.capa_eof;
    if eof && !delay.is_zero() {
        tokio::select! {
            () = handle.kill.cancelled() => return Ok(()),
            () = tokio::time::sleep(delay) => {}
        }
    }
    let snap = {
        let shared = shared.clone();
        let link = link.clone();
        tokio::task::spawn_blocking(move || snapshot::take(&shared, |st| st.attach(&link)))
            .await
            .map_err(|e| ReplicationError::Snapshot(e.to_string()))?
    };
    info!(
        offset = snap.offset.0,
        keys = snap.dbs.iter().map(Vec::len).sum::<usize>(),
        eof,
        "snapshot taken"
    );
    if req.psync.is_some() {
        wr.write_all(format!("+FULLRESYNC {} {}\r\n", snap.replid, snap.offset.0).as_bytes())
            .await?;
    }
    link.set_state(ReplicaState::SendBulk);
    if eof {
        send_diskless(snap, &mut wr, timeout).await?;
    } else {
        send_from_file(snap, &dir, handle.id, &mut wr, timeout).await?;
    }
    info!("snapshot sent");
    link.set_state(ReplicaState::Online);
    stream_loop(shared, &mut rd, &mut wr, handle, link, inbuf, timeout, eof).await
}

/// Streams the RDB as `$EOF:<mark>` + bytes + `<mark>`, produced on a blocking thread.
async fn send_diskless(
    snap: snapshot::Snapshot,
    wr: &mut OwnedWriteHalf,
    timeout: Duration,
) -> Result<(), ReplicationError> {
    let mark = super::new_replid();
    wr.write_all(format!("$EOF:{mark}\r\n").as_bytes()).await?;
    let (tx, mut rx) = mpsc::channel::<Bytes>(8);
    let producer = tokio::task::spawn_blocking(move || {
        let w = snapshot::write_rdb(&snap, ChannelWriter::new(tx))?;
        let mut w = w;
        std::io::Write::flush(&mut w)
    });
    while let Some(chunk) = rx.recv().await {
        write_timed(wr, &chunk, timeout).await?;
    }
    producer
        .await
        .map_err(|e| ReplicationError::Snapshot(e.to_string()))??;
    write_timed(wr, mark.as_bytes(), timeout).await
}

/// Writes the RDB to a temporary file in `dir`, then sends it as one `$<len>` bulk.
async fn send_from_file(
    snap: snapshot::Snapshot,
    dir: &std::path::Path,
    id: u64,
    wr: &mut OwnedWriteHalf,
    timeout: Duration,
) -> Result<(), ReplicationError> {
    let path = dir.join(format!("temp-repl-{}-{id}.rdb", std::process::id()));
    let _cleanup = RemoveOnDrop(path.clone());
    let p = path.clone();
    let len = tokio::task::spawn_blocking(move || -> std::io::Result<u64> {
        let f = std::io::BufWriter::new(std::fs::File::create(&p)?);
        let f = snapshot::write_rdb(&snap, f)?;
        let f = f.into_inner().map_err(|e| e.into_error())?;
        Ok(f.metadata()?.len())
    })
    .await
    .map_err(|e| ReplicationError::Snapshot(e.to_string()))??;
    wr.write_all(format!("${len}\r\n").as_bytes()).await?;
    let mut file = tokio::fs::File::open(&path).await?;
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = file.read(&mut buf).await?;
        if n == 0 {
            return Ok(());
        }
        write_timed(wr, &buf[..n], timeout).await?;
    }
}

struct RemoveOnDrop(std::path::PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

async fn write_timed(
    wr: &mut OwnedWriteHalf,
    data: &[u8],
    timeout: Duration,
) -> Result<(), ReplicationError> {
    match tokio::time::timeout(timeout, wr.write_all(data)).await {
        Ok(r) => Ok(r?),
        Err(_) => Err(ReplicationError::Timeout(timeout)),
    }
}

/// Sends the stream and reads ACKs. With `wait_ack`, nothing is sent before the first ACK.
#[allow(clippy::too_many_arguments)]
async fn stream_loop(
    shared: &Shared,
    rd: &mut OwnedReadHalf,
    wr: &mut OwnedWriteHalf,
    handle: &ClientHandle,
    link: &ReplicaLink,
    mut inbuf: BytesMut,
    timeout: Duration,
    mut wait_ack: bool,
) -> Result<(), ReplicationError> {
    let mut decoder = RequestDecoder::new(Limits::default());
    link.touch();
    loop {
        if link.out.cut.is_cancelled() {
            return Err(ReplicationError::OutputLimit);
        }
        if link.since_ack() > timeout {
            return Err(ReplicationError::Timeout(timeout));
        }
        let chunk = if wait_ack {
            BytesMut::new()
        } else {
            link.out.take()
        };
        if !chunk.is_empty() {
            tokio::select! {
                biased;
                () = handle.kill.cancelled() => return Ok(()),
                () = link.out.cut.cancelled() => return Err(ReplicationError::OutputLimit),
                r = write_timed(wr, &chunk, timeout) => r?,
            }
            shared
                .stats
                .net_out
                .fetch_add(chunk.len() as u64, std::sync::atomic::Ordering::Relaxed);
            continue;
        }
        tokio::select! {
            biased;
            () = handle.kill.cancelled() => return Ok(()),
            () = shared.shutdown.cancelled() => return Ok(()),
            () = link.out.notify.notified() => {}
            r = rd.read_buf(&mut inbuf) => {
                if r? == 0 {
                    return Err(ReplicationError::Closed);
                }
                while let Some(args) = decoder
                    .decode(&mut inbuf)
                    .map_err(|e| ReplicationError::Protocol(e.to_string()))?
                {
                    if args.len() >= 3
                        && args[0].eq_ignore_ascii_case(b"REPLCONF")
                        && args[1].eq_ignore_ascii_case(b"ACK")
                    {
                        let off = std::str::from_utf8(&args[2]).ok().and_then(|s| s.parse::<u64>().ok());
                        if let Some(off) = off {
                            shared.repl.ack(link, off);
                            wait_ack = false;
                        }
                    } else if !args.is_empty() {
                        debug!(cmd = %String::from_utf8_lossy(&args[0]), "ignored command from replica");
                    }
                }
                if inbuf.len() > MAX_INPUT {
                    return Err(ReplicationError::Protocol("replica sent too much unprocessed input".into()));
                }
            }
            () = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
    }
}
