//! The core's timers: a closed enum of kinds in a small table of deadlines.
//!
//! Owns `Timer` and `Timers`. Invariant: a timer kind is armed at most once; arming it again
//! moves its deadline. There are no callbacks: the core matches on the kind when it fires.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use super::types::{GroupName, NodeId};

/// What a deadline is for.
#[derive(Clone, Debug, Eq, Ord, PartialEq, PartialOrd)]
pub enum Timer {
    /// Send the next PING to a node.
    Probe(NodeId),
    /// Send the next INFO to a node.
    Info(NodeId),
    /// `down_after` elapsed since the node's last valid reply.
    Down(NodeId),
    /// Send heartbeats, and check stale fences.
    Heartbeat,
    /// Election jitter, vote timeout or split-vote backoff of a group.
    Election(GroupName),
    /// The next poll or the deadline of the current failover step of a group.
    Failover(GroupName),
    /// A voter-set change: the next round, the operator's deadline, or the take-over of an
    /// instance whose proposer went quiet.
    Membership,
}

/// Deadlines indexed both by kind (to re-arm) and by time (to find the next one).
#[derive(Debug, Default)]
pub struct Timers {
    by_kind: BTreeMap<Timer, Instant>,
    by_time: BTreeSet<(Instant, Timer)>,
}

impl Timers {
    /// Arms `timer` at `at`, replacing any earlier deadline of the same kind.
    pub fn set(&mut self, timer: Timer, at: Instant) {
        if let Some(old) = self.by_kind.insert(timer.clone(), at) {
            self.by_time.remove(&(old, timer.clone()));
        }
        self.by_time.insert((at, timer));
    }

    /// Disarms `timer` if it is armed.
    pub fn cancel(&mut self, timer: &Timer) {
        if let Some(old) = self.by_kind.remove(timer) {
            self.by_time.remove(&(old, timer.clone()));
        }
    }

    /// The earliest deadline.
    pub fn next(&self) -> Option<Instant> {
        self.by_time.first().map(|(at, _)| *at)
    }

    /// Removes and returns one timer whose deadline is at or before `now`.
    pub fn pop_expired(&mut self, now: Instant) -> Option<Timer> {
        let (at, _) = self.by_time.first()?;
        if *at > now {
            return None;
        }
        let (_, timer) = self.by_time.pop_first()?;
        self.by_kind.remove(&timer);
        Some(timer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn rearming_moves_the_deadline_and_expiry_pops_in_order() {
        let t0 = crate::testutil::t0();
        let mut t = Timers::default();
        t.set(Timer::Heartbeat, t0 + Duration::from_secs(5));
        t.set(Timer::Probe(NodeId(1)), t0 + Duration::from_secs(2));
        t.set(Timer::Heartbeat, t0 + Duration::from_secs(1));
        assert_eq!(t.next(), Some(t0 + Duration::from_secs(1)));
        assert_eq!(t.pop_expired(t0), None);
        assert_eq!(
            t.pop_expired(t0 + Duration::from_secs(3)),
            Some(Timer::Heartbeat)
        );
        assert_eq!(
            t.pop_expired(t0 + Duration::from_secs(3)),
            Some(Timer::Probe(NodeId(1)))
        );
        assert_eq!(t.next(), None);
    }
}
