//! The bounded feed behind each `WatchMaster` and `WatchEvents` stream.
//!
//! A pump task reads the daemon's event broadcast, keeps what the subscriber asked for and
//! queues it on a bounded channel that the response stream (`Feed`) drains. The pump never
//! waits for the subscriber: when the broadcast says it lagged or the queue is full, it ends
//! the stream with `RESOURCE_EXHAUSTED` (delivered ahead of what is still queued, so the client
//! hears it at once) and stops; it also stops when the client goes away or on cancellation.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime};

use tokio::sync::broadcast::error::RecvError;
use tokio::sync::{broadcast, mpsc, oneshot};
use tokio_stream::Stream;
use tokio_util::sync::CancellationToken;
use tonic::Status;
use tracing::{debug, info};

use crate::events::EventRecord;

/// Messages queued per stream before its subscriber counts as too slow; at the limit the
/// stream is ended with `RESOURCE_EXHAUSTED` and its queue dropped.
pub(crate) const STREAM_BUFFER: usize = 256;

/// The response stream of one subscription: an early end (`fail`) first, then the queue.
#[derive(Debug)]
pub(crate) struct Feed<T> {
    rx: mpsc::Receiver<Result<T, Status>>,
    abort: Option<oneshot::Receiver<Status>>,
    done: bool,
}

/// The pump's end of a `Feed`.
#[derive(Debug)]
pub(crate) struct Sink<T> {
    tx: mpsc::Sender<Result<T, Status>>,
    abort: Option<oneshot::Sender<Status>>,
}

/// A feed that queues at most `capacity` messages.
pub(crate) fn channel<T>(capacity: usize) -> (Sink<T>, Feed<T>) {
    let (tx, rx) = mpsc::channel(capacity.max(1));
    let (abort_tx, abort_rx) = oneshot::channel();
    (
        Sink {
            tx,
            abort: Some(abort_tx),
        },
        Feed {
            rx,
            abort: Some(abort_rx),
            done: false,
        },
    )
}

/// What a pump sends besides the events it maps: a keep-alive message every `every`.
pub(crate) struct KeepAlive<T> {
    /// The period.
    pub(crate) every: Duration,
    /// Builds the message from the current time.
    pub(crate) make: fn(SystemTime) -> T,
}

/// Spawns the pump of one stream: every record of `events` that `map` keeps goes to `sink`,
/// plus keep-alives, until the client goes away, falls behind, or `cancel` fires.
pub(crate) fn spawn_pump<T, F>(
    mut events: broadcast::Receiver<EventRecord>,
    mut sink: Sink<T>,
    keep_alive: Option<KeepAlive<T>>,
    cancel: CancellationToken,
    mut map: F,
) where
    T: Send + 'static,
    F: FnMut(&EventRecord) -> Option<T> + Send + 'static,
{
    tokio::spawn(async move {
        let mut tick = keep_alive.map(|k| {
            let start = tokio::time::Instant::now() + k.every;
            let mut interval = tokio::time::interval_at(start, k.every);
            interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            (interval, k.make)
        });
        loop {
            let next_tick = async {
                match tick.as_mut() {
                    Some((interval, make)) => {
                        interval.tick().await;
                        Some(*make)
                    }
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                biased;
                () = cancel.cancelled() => {
                    sink.fail(Status::unavailable("sentinel shutting down"));
                    return;
                }
                () = sink.closed() => {
                    debug!("watch stream closed by the client");
                    return;
                }
                received = events.recv() => match received {
                    Ok(record) => {
                        let Some(msg) = map(&record) else { continue };
                        if !sink.push(msg) {
                            return;
                        }
                    }
                    Err(RecvError::Lagged(missed)) => {
                        info!(missed, "watch stream subscriber lagged behind the sentinel's events; dropped");
                        sink.fail(too_slow());
                        return;
                    }
                    Err(RecvError::Closed) => {
                        sink.fail(Status::unavailable("sentinel shutting down"));
                        return;
                    }
                },
                Some(make) = next_tick => {
                    if !sink.push(make(SystemTime::now())) {
                        return;
                    }
                }
            }
        }
    });
}

impl<T> Sink<T> {
    /// Queues `msg`. Returns `false` when the stream is over: the client went away, or its
    /// queue is full, in which case the stream is ended with `RESOURCE_EXHAUSTED`.
    pub(crate) fn push(&mut self, msg: T) -> bool {
        match self.tx.try_send(Ok(msg)) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(_)) => {
                info!(
                    buffer = STREAM_BUFFER,
                    "watch stream subscriber too slow; dropped"
                );
                self.fail(too_slow());
                false
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        }
    }

    /// Ends the stream with `status`, ahead of any message still queued.
    pub(crate) fn fail(&mut self, status: Status) {
        if let Some(abort) = self.abort.take() {
            // The client may be gone already; then nobody needs the status.
            let _ = abort.send(status);
        }
    }

    /// Resolves when the response stream is dropped (the client went away or the call ended).
    async fn closed(&self) {
        self.tx.closed().await;
    }
}

impl<T> Stream for Feed<T> {
    type Item = Result<T, Status>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        // Every field is `Unpin`, so the feed is too.
        let this = self.get_mut();
        if this.done {
            return Poll::Ready(None);
        }
        if let Some(abort) = this.abort.as_mut() {
            match Pin::new(abort).poll(cx) {
                Poll::Ready(Ok(status)) => {
                    this.abort = None;
                    this.done = true;
                    this.rx.close();
                    return Poll::Ready(Some(Err(status)));
                }
                // The pump ended without failing the stream: drain the queue.
                Poll::Ready(Err(_)) => this.abort = None,
                Poll::Pending => {}
            }
        }
        this.rx.poll_recv(cx)
    }
}

/// The status a subscriber gets when it falls behind.
fn too_slow() -> Status {
    Status::resource_exhausted("subscriber too slow; events were dropped, reconnect with min_epoch")
}
