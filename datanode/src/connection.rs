//! One client connection: the only code in the data node that reads or writes a socket.
//!
//! The task keeps reading while it has output pending, as Redis does, so a client that sends but
//! never reads is noticed: its output buffer grows until the class's hard limit (or the soft limit
//! for too long) and the connection is closed, instead of the server blocking on it. Input is
//! bounded by `client-query-buffer-limit`; the decoder bounds each request.
//!
//! Invariant: every buffer here is bounded by a configured limit; a malformed request gets Redis'
//! protocol error and closes this connection only.

use std::io::ErrorKind;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncWriteExt, Interest};
use tokio::net::TcpStream;
use tokio::sync::{Notify, mpsc};
use tracing::{Instrument, debug, debug_span, info};
use vigil_proto::resp::{Frame, Limits, Protocol, RequestDecoder};

use crate::config::OutputLimit;
use crate::server::{ClientHandle, Shared};
use crate::session::{Outcome, Session};

/// Commands run back to back before the task writes and yields, so one pipelining client cannot
/// starve the others on its worker thread.
const BATCH: usize = 512;

/// Bytes read per `read` call at least.
const READ_CHUNK: usize = 16 * 1024;

/// What the connection waits for besides the socket.
enum Wait {
    None,
    Block {
        notify: Arc<Notify>,
        deadline: Option<Instant>,
    },
    Paused {
        until: Instant,
        args: Vec<bytes::Bytes>,
    },
    Sleep(Instant),
}

/// Serves one client until it disconnects, is killed, or the server stops.
pub async fn run(shared: Arc<Shared>, stream: TcpStream, handle: Arc<ClientHandle>) {
    let span = debug_span!("conn", peer = %handle.addr, id = handle.id);
    serve(shared, stream, handle).instrument(span).await;
}

async fn serve(shared: Arc<Shared>, mut stream: TcpStream, handle: Arc<ClientHandle>) {
    let (push_tx, mut push_rx) = mpsc::unbounded_channel();
    let mut session = Session::new(shared.clone(), handle.clone(), push_tx);
    let (limits, qlimit) = {
        let c = shared.config();
        let limits = Limits {
            max_bulk: c.proto_max_bulk_len,
            ..Limits::default()
        };
        (limits, c.client_query_buffer_limit)
    };
    let mut decoder = RequestDecoder::new(limits);
    let mut inbuf = BytesMut::with_capacity(READ_CHUNK);
    let mut out = BytesMut::with_capacity(READ_CHUNK);
    let mut wait = Wait::None;
    let mut soft_since: Option<Instant> = None;
    loop {
        // Run whatever complete requests are buffered.
        let mut more = false;
        // Persistence: where the append-only file stood before this batch (see below).
        let aof_mark = shared.persist.aof.mark();
        if matches!(wait, Wait::None) && !inbuf.is_empty() {
            session.tick(crate::server::unix_ms());
            let mut n = 0;
            loop {
                if n == BATCH {
                    more = true;
                    break;
                }
                let args = match decoder.decode(&mut inbuf) {
                    Ok(Some(args)) => args,
                    Ok(None) => break,
                    Err(e) => {
                        debug!(error = %e, "protocol error; closing");
                        Frame::error(format!("ERR {e}")).encode(proto(&session), &mut out);
                        flush_and_close(&mut stream, &mut out).await;
                        return;
                    }
                };
                if args.is_empty() {
                    continue;
                }
                n += 1;
                let outcome = session.execute(args);
                match apply(outcome, &session, &mut out) {
                    Step::Continue => {
                        // Check the limit as replies pile up, not only after the batch: a
                        // pipeline of large replies would otherwise pass it 512 times over.
                        if out.len() > READ_CHUNK
                            && over_output_limit(&shared, &session, out.len(), &mut soft_since)
                        {
                            break;
                        }
                    }
                    Step::Wait(w) => {
                        wait = w;
                        break;
                    }
                    Step::Close => {
                        flush_and_close(&mut stream, &mut out).await;
                        return;
                    }
                    Step::Stop => return,
                    Step::Replicate(req) => {
                        session.end_batch();
                        // Replies still pending (REPLCONF's +OK) go first; then the socket is
                        // the replication link's.
                        if !out.is_empty() && stream.write_all(&out).await.is_err() {
                            return;
                        }
                        crate::replication::master::serve(
                            shared.clone(),
                            stream,
                            handle.clone(),
                            inbuf,
                            req,
                        )
                        .await;
                        return;
                    }
                }
            }
        }
        session.end_batch();
        // Persistence: when writes were recorded during this batch, its replies leave only once
        // the append-only file holds them (fsynced under `appendfsync always`, else written);
        // one write and fsync cover every connection waiting (group commit). Reads wait only if
        // a write landed meanwhile.
        if let Some(durable) = shared.persist.aof.durable_after(aof_mark) {
            durable.await;
        }
        if over_output_limit(&shared, &session, out.len(), &mut soft_since) {
            shared
                .stats
                .output_limit_kills
                .fetch_add(1, Ordering::Relaxed);
            info!(
                omem = out.len(),
                "client closed for overcoming of output buffer limits"
            );
            return;
        }
        if !out.is_empty() && !write_some(&stream, &mut out, &shared) {
            return;
        }
        if more {
            tokio::task::yield_now().await;
            continue;
        }
        if inbuf.len() >= qlimit {
            info!(
                qbuf = inbuf.len(),
                "closing client that reached max query buffer length"
            );
            return;
        }
        let mut interest = Interest::READABLE;
        if !out.is_empty() {
            interest = interest.add(Interest::WRITABLE);
        }
        tokio::select! {
            biased;
            () = handle.kill.cancelled() => {
                flush_and_close(&mut stream, &mut out).await;
                return;
            }
            ready = stream.ready(interest) => {
                let Ok(ready) = ready else { return };
                if ready.is_readable() {
                    let want = decoder.bytes_wanted().saturating_sub(inbuf.len());
                    inbuf.reserve(want.clamp(READ_CHUNK, 1024 * 1024));
                    match stream.try_read_buf(&mut inbuf) {
                        Ok(0) => return,
                        Ok(n) => {
                            shared.stats.net_in.fetch_add(n as u64, Ordering::Relaxed);
                        }
                        Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                        Err(_) => return,
                    }
                }
                if ready.is_writable() && !out.is_empty() && !write_some(&stream, &mut out, &shared) {
                    return;
                }
            }
            Some((frame, size)) = push_rx.recv() => {
                handle.pending_push.fetch_sub(size, Ordering::Relaxed);
                frame.encode(proto(&session), &mut out);
            }
            () = wait_done(&wait, &shared.unpause) => {
                session.tick(crate::server::unix_ms());
                let outcome = match std::mem::replace(&mut wait, Wait::None) {
                    Wait::Block { deadline, .. } if deadline.is_some_and(|d| d <= Instant::now()) => {
                        Outcome::Reply(session.timeout_blocked())
                    }
                    Wait::Block { .. } => session.resume(),
                    Wait::Paused { args, .. } => session.execute(args),
                    Wait::Sleep(_) => Outcome::Reply(Frame::ok()),
                    Wait::None => continue,
                };
                match apply(outcome, &session, &mut out) {
                    Step::Continue => {}
                    Step::Wait(w) => wait = w,
                    Step::Close => {
                        flush_and_close(&mut stream, &mut out).await;
                        return;
                    }
                    Step::Stop | Step::Replicate(_) => return,
                }
            }
        }
    }
}

enum Step {
    Continue,
    Wait(Wait),
    Close,
    Stop,
    /// `PSYNC`/`SYNC`: the connection becomes a replication link.
    Replicate(crate::replication::SyncRequest),
}

fn proto(session: &Session) -> Protocol {
    if session.resp3() {
        Protocol::Resp3
    } else {
        Protocol::Resp2
    }
}

fn apply(outcome: Outcome, session: &Session, out: &mut BytesMut) -> Step {
    let p = proto(session);
    match outcome {
        Outcome::Reply(f) => {
            f.encode(p, out);
            Step::Continue
        }
        Outcome::Many(fs) => {
            fs.iter().for_each(|f| f.encode(p, out));
            Step::Continue
        }
        Outcome::Block { notify, deadline } => Step::Wait(Wait::Block { notify, deadline }),
        Outcome::Paused { until, args } => Step::Wait(Wait::Paused { until, args }),
        Outcome::Sleep(d) => Step::Wait(Wait::Sleep(Instant::now() + d)),
        Outcome::Close(f) => {
            f.encode(p, out);
            Step::Close
        }
        Outcome::Shutdown => Step::Stop,
        Outcome::Replicate(req) => Step::Replicate(req),
    }
}

/// Resolves when the current wait is over: a wake-up, a deadline, the end of a pause or sleep.
async fn wait_done(wait: &Wait, unpause: &Notify) {
    match wait {
        Wait::None => std::future::pending().await,
        Wait::Block { notify, deadline } => match deadline {
            Some(d) => {
                tokio::select! {
                    () = notify.notified() => {}
                    () = tokio::time::sleep_until((*d).into()) => {}
                }
            }
            None => notify.notified().await,
        },
        Wait::Paused { until, .. } => {
            tokio::select! {
                () = tokio::time::sleep_until((*until).into()) => {}
                () = unpause.notified() => {}
            }
        }
        Wait::Sleep(until) => tokio::time::sleep_until((*until).into()).await,
    }
}

fn over_output_limit(
    shared: &Shared,
    session: &Session,
    len: usize,
    soft_since: &mut Option<Instant>,
) -> bool {
    let limit: OutputLimit = {
        let c = shared.config();
        if session.subscribed() {
            c.output_pubsub
        } else {
            c.output_normal
        }
    };
    if limit.hard != 0 && len > limit.hard {
        return true;
    }
    if limit.soft != 0 && len > limit.soft {
        let since = *soft_since.get_or_insert_with(Instant::now);
        return since.elapsed() > limit.soft_seconds;
    }
    *soft_since = None;
    false
}

/// Writes as much of `out` as the socket takes without blocking; false when the peer is gone.
fn write_some(stream: &TcpStream, out: &mut BytesMut, shared: &Shared) -> bool {
    match stream.try_write(out) {
        Ok(n) => {
            out.advance(n);
            shared.stats.net_out.fetch_add(n as u64, Ordering::Relaxed);
            true
        }
        Err(e) => e.kind() == ErrorKind::WouldBlock,
    }
}

/// Writes what is pending (for at most a second: the peer may not be reading) and closes.
async fn flush_and_close(stream: &mut TcpStream, out: &mut BytesMut) {
    if !out.is_empty() {
        let _ = tokio::time::timeout(Duration::from_secs(1), stream.write_all(out)).await;
    }
    let _ = stream.shutdown().await;
}
