//! Replica side: the link task that follows our master (`REPLICAOF host port`).
//!
//! One task per configured master runs a loop of link attempts; each attempt goes through the
//! states ROLE reports: `connecting` (TCP connect), `handshake` (`PING`, `AUTH` with
//! `masterauth`/`masteruser`, `REPLCONF listening-port`/`ip-address`, `REPLCONF capa eof capa
//! psync2`, `PSYNC <replid> <offset+1>`), `sync` (receiving and loading a snapshot, only after
//! `+FULLRESYNC`), then `connected` (applying the stream). Between attempts it is `connect` and
//! waits with exponential backoff (100 ms doubling to 5 s, reset after a successful sync).
//!
//! The stream is applied through the normal command path by a master-client `Session` that
//! sends no replies; bytes of whole commands are counted into our offset and fed verbatim to our
//! own backlog and sub-replicas once applied. `REPLCONF GETACK` is answered with
//! `REPLCONF ACK <offset>`, and an ACK goes out every second anyway.
//!
//! A snapshot is parsed on a blocking thread from a bounded channel fed by the socket and
//! swapped in whole only after its checksum verified (`Engine::replace_all`): clients keep
//! reading the old data until the swap. Garbage, a stall longer than `repl-timeout`, or a
//! corrupt snapshot drops the link (logged) and the loop retries; nothing here panics on input.
//! The pure parts (reply parsing) are at the bottom with their tests.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;
use std::time::{Duration, Instant};

use bytes::{Buf, Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, info, info_span, warn};
use vigil_proto::resp::{self, Frame, Limits};

use super::snapshot::{self, ChannelReader};
use super::{MasterLink, ReplicationError};
use crate::server::{ClientHandle, ClientInfo, Shared};
use crate::session::{Outcome, Session};

/// Longest handshake reply or bulk header line we accept.
const MAX_LINE: usize = 64 * 1024;
/// Bytes read from the master per call at least.
const READ_CHUNK: usize = 64 * 1024;
/// Most unapplied stream bytes buffered (one command may be this large).
const MAX_PENDING: usize = 1024 * 1024 * 1024;

/// Starts following `host:port`, replacing any previous link. The node becomes a replica now.
pub fn start(shared: &Arc<Shared>, host: String, port: u16) {
    let cancel = CancellationToken::new();
    {
        let mut link = shared.repl.link();
        if let Some(old) = link.take() {
            old.cancel.cancel();
        }
        *link = Some(MasterLink {
            host: host.clone(),
            port,
            state: "connect",
            down_since: Some(Instant::now()),
            last_io: None,
            cancel: cancel.clone(),
        });
    }
    shared.repl.set_replica(true);
    shared.engine.set_expire_on_access(false);
    let span = info_span!("master_link", master = %format!("{host}:{port}"));
    tokio::spawn(run(shared.clone(), host, port, cancel).instrument(span));
}

/// Stops following the master and makes this node a master (`REPLICAOF NO ONE`).
pub fn stop(shared: &Shared) {
    if let Some(old) = shared.repl.link().take() {
        old.cancel.cancel();
    }
    if shared.repl.is_replica() {
        shared.repl.shift_ids();
        shared.repl.set_replica(false);
        shared.engine.set_expire_on_access(true);
        info!("MASTER MODE enabled");
    }
}

fn set_state(shared: &Shared, cancel: &CancellationToken, state: &'static str) {
    let mut link = shared.repl.link();
    // Checked under the lock `start` and `stop` replace links under: a replaced or stopped link
    // must not overwrite its successor's state.
    if cancel.is_cancelled() {
        return;
    }
    if let Some(l) = link.as_mut() {
        if state == "connected" {
            l.down_since = None;
        } else if l.state == "connected" {
            l.down_since = Some(Instant::now());
        }
        l.state = state;
    }
}

async fn run(shared: Arc<Shared>, host: String, port: u16, cancel: CancellationToken) {
    let mut backoff = Duration::from_millis(100);
    // The stream's selected database, kept across partial resyncs as Redis' cached master does.
    let mut db = 0usize;
    loop {
        if cancel.is_cancelled() || shared.shutdown.is_cancelled() {
            return;
        }
        set_state(&shared, &cancel, "connecting");
        let mut synced = false;
        let r = attempt(&shared, &host, port, &cancel, &mut db, &mut synced).await;
        set_state(&shared, &cancel, "connect");
        match r {
            Err(ReplicationError::Cancelled) => return,
            Err(e) => warn!(error = %e, "replication link down; retrying"),
            Ok(()) => {}
        }
        if synced {
            backoff = Duration::from_millis(100);
        }
        tokio::select! {
            () = cancel.cancelled() => return,
            () = shared.shutdown.cancelled() => return,
            () = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}

/// A connection to the master with its read buffer.
struct Link {
    stream: TcpStream,
    buf: BytesMut,
    timeout: Duration,
}

impl Link {
    async fn fill(&mut self) -> Result<(), ReplicationError> {
        self.buf.reserve(READ_CHUNK);
        match tokio::time::timeout(self.timeout, self.stream.read_buf(&mut self.buf)).await {
            Err(_) => Err(ReplicationError::Timeout(self.timeout)),
            Ok(Ok(0)) => Err(ReplicationError::Closed),
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(e.into()),
        }
    }

    /// One reply line without its CRLF, skipping the bare newlines a master sends as keepalive.
    async fn line(&mut self) -> Result<String, ReplicationError> {
        loop {
            while self.buf.first() == Some(&b'\n') {
                self.buf.advance(1);
            }
            if let Some(nl) = self.buf.iter().position(|&b| b == b'\n') {
                let line = self.buf.split_to(nl + 1);
                let text = String::from_utf8_lossy(&line[..nl]);
                return Ok(text.trim_end_matches('\r').to_string());
            }
            if self.buf.len() > MAX_LINE {
                return Err(ReplicationError::Protocol("reply line too long".into()));
            }
            self.fill().await?;
        }
    }

    async fn send(&mut self, args: &[&[u8]]) -> Result<(), ReplicationError> {
        let mut out = BytesMut::new();
        resp::encode_command(args, &mut out);
        match tokio::time::timeout(self.timeout, self.stream.write_all(&out)).await {
            Ok(r) => Ok(r?),
            Err(_) => Err(ReplicationError::Timeout(self.timeout)),
        }
    }

    async fn command(&mut self, args: &[&[u8]]) -> Result<String, ReplicationError> {
        self.send(args).await?;
        self.line().await
    }
}

async fn attempt(
    shared: &Arc<Shared>,
    host: &str,
    port: u16,
    cancel: &CancellationToken,
    db: &mut usize,
    synced: &mut bool,
) -> Result<(), ReplicationError> {
    let (timeout, auth, user, announce_ip, announce_port) = {
        let c = shared.config();
        (
            c.repl_timeout,
            c.masterauth.clone(),
            c.masteruser.clone(),
            c.replica_announce_ip.clone(),
            c.replica_announce_port,
        )
    };
    let connect = TcpStream::connect((host, port));
    let stream = tokio::select! {
        () = cancel.cancelled() => return Err(ReplicationError::Cancelled),
        r = tokio::time::timeout(timeout.min(Duration::from_secs(10)), connect) => match r {
            Err(_) => return Err(ReplicationError::Timeout(timeout)),
            Ok(r) => r?,
        },
    };
    let _ = stream.set_nodelay(true);
    let peer = stream.peer_addr()?;
    if is_self(peer, shared.addr) {
        return Err(ReplicationError::Handshake {
            step: "connect",
            reply: "the master address is this node".into(),
        });
    }
    let mut link = Link {
        stream,
        buf: BytesMut::with_capacity(READ_CHUNK),
        timeout,
    };
    set_state(shared, cancel, "handshake");
    let pong = link.command(&[b"PING"]).await?;
    if pong.starts_with('-')
        && !["-NOAUTH", "-NOPERM", "-ERR operation not permitted"]
            .iter()
            .any(|p| pong.starts_with(p))
    {
        return Err(ReplicationError::Handshake {
            step: "PING",
            reply: pong,
        });
    }
    if !auth.is_empty() {
        let r = if user.is_empty() {
            link.command(&[b"AUTH", auth.as_bytes()]).await?
        } else {
            link.command(&[b"AUTH", user.as_bytes(), auth.as_bytes()])
                .await?
        };
        if r.starts_with('-') {
            return Err(ReplicationError::Handshake {
                step: "AUTH",
                reply: r,
            });
        }
    }
    let my_port = if announce_port != 0 {
        announce_port
    } else {
        shared.addr.port()
    };
    let r = link
        .command(&[
            b"REPLCONF",
            b"listening-port",
            my_port.to_string().as_bytes(),
        ])
        .await?;
    if r.starts_with('-') {
        warn!(reply = %r, "master refused REPLCONF listening-port; going on");
    }
    if !announce_ip.is_empty() {
        let _ = link
            .command(&[b"REPLCONF", b"ip-address", announce_ip.as_bytes()])
            .await?;
    }
    let r = link
        .command(&[b"REPLCONF", b"capa", b"eof", b"capa", b"psync2"])
        .await?;
    if r.starts_with('-') {
        warn!(reply = %r, "master refused REPLCONF capa; going on");
    }
    let (replid, offset) = {
        let st = shared.repl.stream();
        (st.ids.replid.clone(), st.offset)
    };
    let psync_off = (offset + 1).to_string();
    let reply = link
        .command(&[b"PSYNC", replid.as_bytes(), psync_off.as_bytes()])
        .await?;
    match parse_psync_reply(&reply) {
        PsyncReply::Full { replid, offset } => {
            set_state(shared, cancel, "sync");
            full_sync(shared, &mut link, cancel, &replid, offset).await?;
            *db = 0;
        }
        PsyncReply::Continue { replid: new_id } => {
            info!(offset, "partial resynchronization accepted by the master");
            let mut st = shared.repl.stream();
            if let Some(id) = new_id.filter(|id| *id != st.ids.replid) {
                // The master changed history id (it was promoted): ours becomes the previous one,
                // and our own replicas must learn the new one (they resync partially via id2).
                st.ids.replid2 = std::mem::replace(&mut st.ids.replid, id);
                st.ids.second_offset = st.offset as i64 + 1;
                drop(st);
                shared.repl.cut_replicas();
                st = shared.repl.stream();
            }
            shared.repl.start_backlog(&mut st);
        }
        PsyncReply::Error(e) => {
            return Err(ReplicationError::Handshake {
                step: "PSYNC",
                reply: e,
            });
        }
    }
    *synced = true;
    apply_stream(shared, link, cancel, db).await
}

/// Receives the snapshot after `+FULLRESYNC`, loads it and swaps it in.
async fn full_sync(
    shared: &Arc<Shared>,
    link: &mut Link,
    cancel: &CancellationToken,
    replid: &str,
    offset: u64,
) -> Result<(), ReplicationError> {
    let header = link.line().await?;
    let payload = parse_bulk_header(&header)
        .ok_or_else(|| ReplicationError::Protocol(format!("bad snapshot header {header:?}")))?;
    info!(?payload, offset, "receiving snapshot from the master");
    let databases = shared.engine.databases();
    let (tx, rx) = mpsc::channel::<Bytes>(16);
    let loader =
        tokio::task::spawn_blocking(move || snapshot::load_rdb(ChannelReader::new(rx), databases));
    let started = Instant::now();
    let received = tokio::select! {
        () = cancel.cancelled() => Err(ReplicationError::Cancelled),
        r = receive_payload(link, payload, &tx) => r,
    };
    drop(tx);
    let loaded = loader
        .await
        .map_err(|e| ReplicationError::Snapshot(e.to_string()))?;
    received?;
    let loaded = loaded.map_err(|e| ReplicationError::Snapshot(e.to_string()))?;
    let keys = loaded.keys;
    // Swap in the dataset and take the master's history as ours, atomically for snapshots of
    // our own replicas (they hold the apply lock too).
    {
        let shared = shared.clone();
        let replid = replid.to_string();
        tokio::task::spawn_blocking(move || {
            let _apply = shared.repl.apply_lock();
            shared.engine.replace_all(loaded.dbs);
            let mut st = shared.repl.stream();
            st.ids.replid = replid;
            st.ids.replid2 = super::NO_ID.into();
            st.ids.second_offset = -1;
            st.offset = offset;
            st.backlog = None;
            shared.repl.start_backlog(&mut st);
        })
        .await
        .map_err(|e| ReplicationError::Snapshot(e.to_string()))?;
    }
    // Our replicas hold a history that no longer exists.
    shared.repl.cut_replicas();
    // Nor does our append-only file: rebase it on the new dataset (Redis does the same).
    if shared.config().persist.appendonly {
        let _ = crate::persist::bgrewriteaof(shared, false);
    }
    info!(
        keys,
        offset,
        elapsed_ms = started.elapsed().as_millis() as u64,
        "snapshot loaded"
    );
    Ok(())
}

/// Forwards the snapshot bytes to the loader: exactly `len` bytes, or up to the EOF mark.
async fn receive_payload(
    link: &mut Link,
    payload: Payload,
    tx: &mpsc::Sender<Bytes>,
) -> Result<(), ReplicationError> {
    let send = |b: Bytes| async move {
        tx.send(b)
            .await
            .map_err(|_| ReplicationError::Snapshot("loader stopped early".into()))
    };
    match payload {
        Payload::Len(mut left) => {
            while left > 0 {
                if link.buf.is_empty() {
                    link.fill().await?;
                }
                let n = (left as usize).min(link.buf.len());
                send(link.buf.split_to(n).freeze()).await?;
                left -= n as u64;
            }
            Ok(())
        }
        Payload::Eof(mark) => {
            // Hold back the last 40 bytes until we know whether they are the mark: the master
            // sends nothing after it until we acknowledge.
            loop {
                if link.buf.len() >= MARK_LEN && link.buf[link.buf.len() - MARK_LEN..] == mark[..] {
                    let n = link.buf.len() - MARK_LEN;
                    if n > 0 {
                        send(link.buf.split_to(n).freeze()).await?;
                    }
                    link.buf.clear();
                    return Ok(());
                }
                if link.buf.len() > MARK_LEN + READ_CHUNK {
                    let n = link.buf.len() - MARK_LEN;
                    send(link.buf.split_to(n).freeze()).await?;
                }
                link.fill().await?;
            }
        }
    }
}

/// Applies the stream until the link fails or is cancelled.
async fn apply_stream(
    shared: &Arc<Shared>,
    mut link: Link,
    cancel: &CancellationToken,
    db: &mut usize,
) -> Result<(), ReplicationError> {
    let local = link.stream.local_addr()?;
    let peer = link.stream.peer_addr()?;
    let id = shared
        .next_id
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let handle = Arc::new(ClientHandle {
        id,
        addr: peer,
        laddr: local,
        since: Instant::now(),
        info: std::sync::Mutex::new(ClientInfo {
            resp: 2,
            master: true,
            ..ClientInfo::default()
        }),
        kill: shared.shutdown.child_token(),
        pending_push: AtomicUsize::new(0),
    });
    shared.clients().insert(id, handle.clone());
    let _unregister = Unregister(shared.clone(), id);
    let (push_tx, _push_rx) = mpsc::unbounded_channel();
    let mut session = Session::new(shared.clone(), handle.clone(), push_tx);
    session.set_master_client(*db);
    set_state(shared, cancel, "connected");
    info!("MASTER <-> REPLICA sync: master link up, applying the stream");
    // Acknowledge at once: a master that sent a diskless snapshot waits for it.
    send_ack(shared, &mut link).await?;
    let limits = Limits::default();
    let mut ack_tick = tokio::time::interval(Duration::from_secs(1));
    ack_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_io = Instant::now();
    loop {
        let mut ack_now = false;
        if !link.buf.is_empty() {
            let _apply = shared.repl.apply_lock();
            let mut pos = 0;
            while let Some((frame, used)) = resp::decode(&link.buf[pos..], &limits)
                .map_err(|e| ReplicationError::Protocol(e.to_string()))?
            {
                let args = frame_args(frame)?;
                pos += used;
                if args.is_empty() {
                    continue;
                }
                if args.len() >= 2
                    && args[0].eq_ignore_ascii_case(b"REPLCONF")
                    && args[1].eq_ignore_ascii_case(b"GETACK")
                {
                    ack_now = true;
                    continue;
                }
                session.tick(0);
                // The append-only file records what the master sent, as it records our own
                // clients' writes on a master (SELECT is implied by the db it is given).
                if shared.repl.sink_on() && !args[0].eq_ignore_ascii_case(b"SELECT") {
                    shared.repl.sink_command(session.db(), &args);
                }
                if let Outcome::Block { .. } = session.execute(args) {
                    // A master never sends a blocking command that waits; drop the registration.
                    let _ = session.timeout_blocked();
                }
                session.end_batch();
            }
            if pos > 0 {
                shared.repl.feed_raw(&link.buf[..pos]);
                link.buf.advance(pos);
            }
            *db = session.db();
        }
        if ack_now {
            send_ack(shared, &mut link).await?;
        }
        if link.buf.len() > MAX_PENDING {
            return Err(ReplicationError::Protocol(
                "command from the master over 1 GiB".into(),
            ));
        }
        link.buf.reserve(READ_CHUNK);
        tokio::select! {
            biased;
            () = cancel.cancelled() => return Err(ReplicationError::Cancelled),
            () = handle.kill.cancelled() => {
                return Err(if shared.shutdown.is_cancelled() { ReplicationError::Cancelled } else { ReplicationError::Closed });
            }
            r = link.stream.read_buf(&mut link.buf) => {
                if r? == 0 {
                    return Err(ReplicationError::Closed);
                }
                last_io = Instant::now();
                if let Some(l) = shared.repl.link().as_mut() {
                    l.last_io = Some(last_io);
                }
            }
            _ = ack_tick.tick() => {
                if last_io.elapsed() > link.timeout {
                    return Err(ReplicationError::Timeout(link.timeout));
                }
                send_ack(shared, &mut link).await?;
            }
        }
    }
}

struct Unregister(Arc<Shared>, u64);

impl Drop for Unregister {
    fn drop(&mut self) {
        self.0.clients().remove(&self.1);
    }
}

async fn send_ack(shared: &Shared, link: &mut Link) -> Result<(), ReplicationError> {
    let off = shared.repl.offset().0.to_string();
    link.send(&[b"REPLCONF", b"ACK", off.as_bytes()]).await
}

/// The arguments of a stream command (an array of bulk strings).
fn frame_args(frame: Frame) -> Result<Vec<Bytes>, ReplicationError> {
    let Frame::Array(items) = frame else {
        return Err(ReplicationError::Protocol(format!(
            "expected a command, got {frame:?}"
        )));
    };
    items
        .into_iter()
        .map(|f| match f {
            Frame::Bulk(b) => Ok(b),
            other => Err(ReplicationError::Protocol(format!(
                "expected a bulk argument, got {other:?}"
            ))),
        })
        .collect()
}

/// True when `peer` is our own listener (REPLICAOF pointing at ourselves).
pub fn is_self(peer: SocketAddr, ours: SocketAddr) -> bool {
    peer.port() == ours.port() && (peer.ip() == ours.ip() || ours.ip().is_unspecified())
}

/// Length of the EOF mark of a diskless snapshot.
const MARK_LEN: usize = 40;

/// How the snapshot payload is framed.
#[derive(Clone, Debug, Eq, PartialEq)]
pub enum Payload {
    /// `$<len>`: exactly this many bytes.
    Len(u64),
    /// `$EOF:<mark>`: bytes until the 40-byte mark.
    Eof([u8; MARK_LEN]),
}

/// Parses `$<len>` or `$EOF:<40 bytes>`.
pub fn parse_bulk_header(line: &str) -> Option<Payload> {
    let rest = line.strip_prefix('$')?;
    if let Some(mark) = rest.strip_prefix("EOF:") {
        let mark: [u8; MARK_LEN] = mark.as_bytes().try_into().ok()?;
        return Some(Payload::Eof(mark));
    }
    rest.parse().ok().map(Payload::Len)
}

/// The master's answer to `PSYNC`.
#[derive(Clone, Debug, Eq, PartialEq)]
pub enum PsyncReply {
    /// `+FULLRESYNC <replid> <offset>`.
    Full {
        /// The master's replication id.
        replid: String,
        /// The offset the snapshot corresponds to.
        offset: u64,
    },
    /// `+CONTINUE [<replid>]`.
    Continue {
        /// The master's current id, when it sent one (psync2).
        replid: Option<String>,
    },
    /// Anything else (`-NOMASTERLINK`, `-LOADING`, garbage).
    Error(String),
}

/// Parses the reply line to `PSYNC`.
pub fn parse_psync_reply(line: &str) -> PsyncReply {
    let mut words = line.split_ascii_whitespace();
    match words.next() {
        Some("+FULLRESYNC") => {
            let id = words.next().filter(|id| id.len() == 40);
            let off = words.next().and_then(|o| o.parse().ok());
            match (id, off) {
                (Some(id), Some(offset)) => PsyncReply::Full {
                    replid: id.to_string(),
                    offset,
                },
                _ => PsyncReply::Error(line.to_string()),
            }
        }
        Some("+CONTINUE") => match words.next() {
            None => PsyncReply::Continue { replid: None },
            Some(id) if id.len() == 40 => PsyncReply::Continue {
                replid: Some(id.to_string()),
            },
            Some(_) => PsyncReply::Error(line.to_string()),
        },
        _ => PsyncReply::Error(line.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn psync_replies_and_snapshot_headers_parse() {
        let id = "f".repeat(40);
        assert_eq!(
            parse_psync_reply(&format!("+FULLRESYNC {id} 123")),
            PsyncReply::Full {
                replid: id.clone(),
                offset: 123
            }
        );
        assert_eq!(
            parse_psync_reply("+CONTINUE"),
            PsyncReply::Continue { replid: None }
        );
        assert_eq!(
            parse_psync_reply(&format!("+CONTINUE {id}")),
            PsyncReply::Continue {
                replid: Some(id.clone())
            }
        );
        for bad in [
            "+FULLRESYNC short 1",
            "+FULLRESYNC",
            "-NOMASTERLINK Can't SYNC",
            "+CONTINUE x",
            "",
        ] {
            assert!(
                matches!(parse_psync_reply(bad), PsyncReply::Error(_)),
                "{bad:?}"
            );
        }
        assert_eq!(parse_bulk_header("$1234"), Some(Payload::Len(1234)));
        let mark = [b'a'; 40];
        assert_eq!(
            parse_bulk_header(&format!("$EOF:{}", "a".repeat(40))),
            Some(Payload::Eof(mark))
        );
        for bad in ["$EOF:short", "$-1x", "1234", "$"] {
            assert_eq!(parse_bulk_header(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn a_master_address_equal_to_ours_is_ourselves() {
        let ours: SocketAddr = "127.0.0.1:7000".parse().unwrap();
        assert!(is_self("127.0.0.1:7000".parse().unwrap(), ours));
        assert!(!is_self("127.0.0.1:7001".parse().unwrap(), ours));
        assert!(is_self(
            "127.0.0.1:7000".parse().unwrap(),
            "0.0.0.0:7000".parse().unwrap()
        ));
    }
}
