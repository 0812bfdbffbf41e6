//! Pub/sub: who listens to which channel or pattern, and delivery of published messages.
//!
//! Delivery never blocks the publisher: each subscriber has an unbounded queue into its
//! connection task, but the bytes queued are counted on the subscriber's `ClientHandle`, and a
//! subscriber past the pub/sub output limit is disconnected instead of being queued to
//! (Redis' `client-output-buffer-limit pubsub`). So a slow subscriber costs at most its limit.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, RwLock};

use bytes::Bytes;
use tokio::sync::mpsc::UnboundedSender;
use vigil_proto::resp::Frame;

use crate::cmd::{CommandSpec, FAST, Handler, KeySpec, LOADING_OK, NOMULTI, PUBSUB};
use crate::glob;
use crate::server::ClientHandle;

/// A message queued for a subscriber, with the bytes it counts against the output limit.
pub type Push = (Frame, usize);

/// One subscriber's delivery end.
#[derive(Clone, Debug)]
pub struct Subscriber {
    /// Queue into the subscriber's connection task.
    pub tx: UnboundedSender<Push>,
    /// The subscriber, for its output accounting and kill switch.
    pub handle: Arc<ClientHandle>,
}

#[derive(Default)]
struct Inner {
    channels: HashMap<Bytes, HashMap<u64, Subscriber>>,
    patterns: HashMap<Bytes, HashMap<u64, Subscriber>>,
}

/// The subscription registry.
#[derive(Default)]
pub struct PubSub {
    inner: RwLock<Inner>,
    /// Subscribers disconnected here for passing the pub/sub output limit.
    pub limit_kills: std::sync::atomic::AtomicU64,
}

impl PubSub {
    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Inner> {
        self.inner
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Inner> {
        self.inner
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Adds a channel (or pattern) subscription.
    pub fn subscribe(&self, name: &Bytes, pattern: bool, sub: Subscriber) {
        let mut inner = self.write();
        let map = if pattern {
            &mut inner.patterns
        } else {
            &mut inner.channels
        };
        map.entry(name.clone())
            .or_default()
            .insert(sub.handle.id, sub);
    }

    /// Removes a subscription.
    pub fn unsubscribe(&self, name: &[u8], pattern: bool, id: u64) {
        let mut inner = self.write();
        let map = if pattern {
            &mut inner.patterns
        } else {
            &mut inner.channels
        };
        if let Some(subs) = map.get_mut(name) {
            subs.remove(&id);
            if subs.is_empty() {
                map.remove(name);
            }
        }
    }

    /// Delivers `message` on `channel`; returns how many subscribers received it.
    pub fn publish(&self, channel: &Bytes, message: &Bytes, hard_limit: usize) -> usize {
        let inner = self.read();
        let mut n = 0;
        if let Some(subs) = inner.channels.get(channel) {
            for s in subs.values() {
                let f = Frame::Push(vec![
                    Frame::bulk_static("message"),
                    Frame::Bulk(channel.clone()),
                    Frame::Bulk(message.clone()),
                ]);
                n += usize::from(self.deliver(s, f, channel.len() + message.len(), hard_limit));
            }
        }
        for (pat, subs) in &inner.patterns {
            if !glob::matches(pat, channel, false) {
                continue;
            }
            for s in subs.values() {
                let f = Frame::Push(vec![
                    Frame::bulk_static("pmessage"),
                    Frame::Bulk(pat.clone()),
                    Frame::Bulk(channel.clone()),
                    Frame::Bulk(message.clone()),
                ]);
                let size = pat.len() + channel.len() + message.len();
                n += usize::from(self.deliver(s, f, size, hard_limit));
            }
        }
        n
    }

    /// Active channels matching `pattern` (all when `None`).
    pub fn channels(&self, pattern: Option<&[u8]>) -> Vec<Bytes> {
        self.read()
            .channels
            .keys()
            .filter(|c| pattern.is_none_or(|p| glob::matches(p, c, false)))
            .cloned()
            .collect()
    }

    /// Subscriber count of `channel`.
    pub fn numsub(&self, channel: &[u8]) -> usize {
        self.read().channels.get(channel).map_or(0, HashMap::len)
    }

    /// Number of pattern subscriptions.
    pub fn numpat(&self) -> usize {
        self.read().patterns.values().map(HashMap::len).sum()
    }

    /// Queues a message unless the subscriber is over its limit, in which case it is disconnected.
    fn deliver(&self, s: &Subscriber, frame: Frame, payload: usize, hard_limit: usize) -> bool {
        let size = payload + 48;
        let pending = s.handle.pending_push.fetch_add(size, Ordering::Relaxed) + size;
        if hard_limit != 0 && pending > hard_limit {
            s.handle.pending_push.fetch_sub(size, Ordering::Relaxed);
            if !s.handle.kill.is_cancelled() {
                s.handle.kill.cancel();
                self.limit_kills.fetch_add(1, Ordering::Relaxed);
            }
            return false;
        }
        if s.tx.send((frame, size)).is_err() {
            s.handle.pending_push.fetch_sub(size, Ordering::Relaxed);
            return false;
        }
        true
    }

    /// Number of channels with subscribers and number of patterns, for INFO.
    pub fn counts(&self) -> (usize, usize) {
        let inner = self.read();
        (inner.channels.len(), inner.patterns.len())
    }
}

const fn conn(name: &'static str, arity: i32, flags: u32) -> CommandSpec {
    CommandSpec {
        name,
        arity,
        flags,
        keys: KeySpec::None,
        handler: Handler::Conn,
        group: "pubsub",
    }
}

/// The pub/sub commands; `session.rs` runs them.
pub static COMMANDS: &[CommandSpec] = &[
    conn("subscribe", -2, PUBSUB | NOMULTI),
    conn("unsubscribe", -1, PUBSUB | NOMULTI),
    conn("psubscribe", -2, PUBSUB | NOMULTI),
    conn("punsubscribe", -1, PUBSUB | NOMULTI),
    conn("publish", 3, FAST | LOADING_OK),
    conn("pubsub", -2, LOADING_OK),
];
