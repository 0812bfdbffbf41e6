//! `ZSet`: the sorted-set value, a member → score map plus an ordered index.
//!
//! Order is (score, member) ascending, as in Redis; equal scores order by member bytes.
//! Invariant: `dict` and `sorted` always hold the same members; scores are never NaN and `-0` is
//! stored as `0`.

use std::collections::{BTreeSet, HashMap};
use std::ops::Bound;

use foldhash::fast::RandomState;

use crate::sds::Sds;

/// An `f64` with a total order, for the index.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Score(pub f64);

impl Eq for Score {}

impl PartialOrd for Score {
    fn partial_cmp(&self, other: &Score) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Score {
    fn cmp(&self, other: &Score) -> std::cmp::Ordering {
        self.0.total_cmp(&other.0)
    }
}

/// A sorted set.
#[derive(Clone, Debug, Default)]
pub struct ZSet {
    dict: HashMap<Sds, f64, RandomState>,
    sorted: BTreeSet<(Score, Sds)>,
}

impl ZSet {
    /// An empty sorted set.
    pub fn new() -> ZSet {
        ZSet::default()
    }

    /// Number of members.
    pub fn len(&self) -> usize {
        self.dict.len()
    }

    /// True when there are no members.
    pub fn is_empty(&self) -> bool {
        self.dict.is_empty()
    }

    /// The score of `member`.
    pub fn score(&self, member: &[u8]) -> Option<f64> {
        self.dict.get(member).copied()
    }

    /// Sets `member`'s score; returns the previous score if it was present.
    pub fn insert(&mut self, member: &[u8], score: f64) -> Option<f64> {
        let score = if score == 0.0 { 0.0 } else { score };
        let m = Sds::new(member);
        let old = self.dict.insert(m.clone(), score);
        if let Some(o) = old {
            self.sorted.remove(&(Score(o), m.clone()));
        }
        self.sorted.insert((Score(score), m));
        old
    }

    /// Removes `member`; returns its score.
    pub fn remove(&mut self, member: &[u8]) -> Option<f64> {
        let (m, s) = self.dict.remove_entry(member)?;
        self.sorted.remove(&(Score(s), m));
        Some(s)
    }

    /// Zero-based rank of `member` in ascending order (O(n)).
    pub fn rank(&self, member: &[u8]) -> Option<usize> {
        let s = self.score(member)?;
        let key = (Score(s), Sds::new(member));
        Some(self.sorted.range(..key).count())
    }

    /// Members in ascending order.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = (&Sds, f64)> {
        self.sorted.iter().map(|(s, m)| (m, s.0))
    }

    /// Members with scores within the bounds, ascending (reverse it for descending).
    pub fn range_by_score(
        &self,
        min: Bound<f64>,
        max: Bound<f64>,
    ) -> impl DoubleEndedIterator<Item = (&Sds, f64)> {
        // -0 and 0 are one score; stored scores are never -0.
        let norm = |v: f64| if v == 0.0 { 0.0 } else { v };
        let lo = match min {
            Bound::Included(v) => Some(Bound::Included((Score(norm(v)), Sds::empty()))),
            Bound::Excluded(v) if v == f64::INFINITY => None,
            Bound::Excluded(v) => Some(Bound::Included((Score(next_up(norm(v))), Sds::empty()))),
            Bound::Unbounded => Some(Bound::Unbounded),
        };
        let hi = match max {
            Bound::Included(v) if v == f64::INFINITY => Bound::Unbounded,
            Bound::Included(v) => Bound::Excluded((Score(next_up(norm(v))), Sds::empty())),
            Bound::Excluded(v) => Bound::Excluded((Score(norm(v)), Sds::empty())),
            Bound::Unbounded => Bound::Unbounded,
        };
        let range = lo.and_then(|lo| {
            if let (Bound::Included(l), Bound::Excluded(h)) = (&lo, &hi) {
                if l >= h {
                    return None;
                }
            }
            Some(self.sorted.range((lo, hi)))
        });
        range.into_iter().flatten().map(|(s, m)| (m, s.0))
    }

    /// Members between two member bounds (all scores should be equal, as for ZRANGEBYLEX),
    /// ascending.
    pub fn range_by_lex(
        &self,
        min: Bound<&[u8]>,
        max: Bound<&[u8]>,
    ) -> impl DoubleEndedIterator<Item = (&Sds, f64)> {
        let min = min.map(<[u8]>::to_vec);
        let max = max.map(<[u8]>::to_vec);
        self.sorted
            .iter()
            .map(|(s, m)| (m, s.0))
            .filter(move |(m, _)| {
                let m: &[u8] = m;
                let above = match &min {
                    Bound::Included(v) => m >= v.as_slice(),
                    Bound::Excluded(v) => m > v.as_slice(),
                    Bound::Unbounded => true,
                };
                let below = match &max {
                    Bound::Included(v) => m <= v.as_slice(),
                    Bound::Excluded(v) => m < v.as_slice(),
                    Bound::Unbounded => true,
                };
                above && below
            })
    }

    /// Removes and returns the lowest (or highest, when `max`) member.
    pub fn pop(&mut self, max: bool) -> Option<(Sds, f64)> {
        let first = if max {
            self.sorted.pop_last()
        } else {
            self.sorted.pop_first()
        }?;
        self.dict.remove(&first.1);
        Some((first.1, first.0.0))
    }
}

/// The least double greater than `v` (`f64::next_up`, which needs Rust 1.86).
fn next_up(v: f64) -> f64 {
    if v.is_nan() || v == f64::INFINITY {
        return v;
    }
    if v == 0.0 {
        return f64::from_bits(1);
    }
    let bits = v.to_bits();
    f64::from_bits(if v > 0.0 { bits + 1 } else { bits - 1 })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_is_score_then_member_and_ranges_respect_bounds() {
        let mut z = ZSet::new();
        z.insert(b"b", 1.0);
        z.insert(b"a", 1.0);
        z.insert(b"c", 0.5);
        assert_eq!(z.insert(b"c", 2.0), Some(0.5));
        let order: Vec<&[u8]> = z.iter().map(|(m, _)| &m[..]).collect();
        assert_eq!(order, vec![&b"a"[..], b"b", b"c"]);
        assert_eq!(z.rank(b"c"), Some(2));
        let mid: Vec<f64> = z
            .range_by_score(Bound::Excluded(1.0), Bound::Included(2.0))
            .map(|(_, s)| s)
            .collect();
        assert_eq!(mid, vec![2.0]);
        assert_eq!(z.pop(false).map(|(m, _)| m), Some(Sds::new(b"a")));
        assert_eq!(z.len(), 2);
    }
}
