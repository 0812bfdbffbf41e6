//! `ZSet`: the sorted-set value, a member → score map plus an ordered index.
//!
//! Order is (score, member) ascending, as in Redis; equal scores order by member bytes.
//! Invariants: `dict` and `sorted` always hold the same members; scores are never NaN and `-0` is
//! stored as `0`. Members only move to lower positions of `dict` (removal swaps the last member
//! into the hole) and new members are appended, which is what makes `entry_at` usable as a
//! complete ZSCAN cursor.
//!
//! Rank-based operations walk the ordered index from its nearer end, so they cost O(rank) rather
//! than Redis' O(log n).

use std::cmp::Ordering;
use std::collections::BTreeSet;
use std::ops::Bound;

use foldhash::fast::RandomState;
use indexmap::IndexMap;

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
    dict: IndexMap<Sds, f64, RandomState>,
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
        // `swap_remove` only moves the last member down, as `entry_at` requires.
        let (m, s) = self.dict.swap_remove_entry(member)?;
        self.sorted.remove(&(Score(s), m));
        Some(s)
    }

    /// Zero-based rank of `member` in ascending order (O(min(rank, len - rank))).
    pub fn rank(&self, member: &[u8]) -> Option<usize> {
        let s = self.score(member)?;
        let key = (Score(s), Sds::new(member));
        // Count from both ends at once and stop at the nearer one.
        let mut below = self.sorted.range(..&key);
        let mut above = self.sorted.range(&key..);
        let mut n = 0;
        loop {
            if below.next().is_none() {
                return Some(n);
            }
            if above.next().is_none() {
                return Some(self.len() - n);
            }
            n += 1;
        }
    }

    /// The member at position `i` of the unordered member table, for random picks and ZSCAN.
    pub fn entry_at(&self, i: usize) -> Option<(&Sds, f64)> {
        self.dict.get_index(i).map(|(m, s)| (m, *s))
    }

    /// Members with ranks `start..end` (ascending, `end` exclusive and at most `len`), walking
    /// from the nearer end of the index.
    pub fn by_rank(&self, start: usize, end: usize) -> Vec<(&Sds, f64)> {
        let end = end.min(self.len());
        if start >= end {
            return Vec::new();
        }
        let pairs = self.sorted.iter().map(|(s, m)| (m, s.0));
        if start <= self.len() - end {
            return pairs.skip(start).take(end - start).collect();
        }
        let mut out: Vec<_> = pairs
            .rev()
            .skip(self.len() - end)
            .take(end - start)
            .collect();
        out.reverse();
        out
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

    /// Members in a lex range, as Redis' listpack walk finds them: forward, the run that starts
    /// at the first member (in score order) not below `min` and ends before the first member
    /// above `max`; with `rev`, the mirror run from the end. When all scores are equal (the
    /// documented use of lex ranges) this is exactly the members between the bounds, found
    /// through the ordered index.
    pub fn lex_range(
        &self,
        min: &LexBound,
        max: &LexBound,
        rev: bool,
    ) -> Box<dyn Iterator<Item = (&Sds, f64)> + '_> {
        let (Some(first), Some(last)) = (self.sorted.first(), self.sorted.last()) else {
            return Box::new(std::iter::empty());
        };
        // Ranges that are always empty, and the early exits of `zzlIsInLexRange`.
        if LexBound::is_empty_range(min, max) || !min.below(&last.1) || !max.above(&first.1) {
            return Box::new(std::iter::empty());
        }
        if first.0 == last.0 {
            let lo = match min {
                LexBound::NegInf => Bound::Unbounded,
                LexBound::Inclusive(v) => Bound::Included((first.0, Sds::new(v))),
                LexBound::Exclusive(v) => Bound::Excluded((first.0, Sds::new(v))),
                LexBound::PosInf => unreachable!("a +inf minimum was rejected above"),
            };
            let hi = match max {
                LexBound::PosInf => Bound::Unbounded,
                LexBound::Inclusive(v) => Bound::Included((first.0, Sds::new(v))),
                LexBound::Exclusive(v) => Bound::Excluded((first.0, Sds::new(v))),
                LexBound::NegInf => unreachable!("a -inf maximum was rejected above"),
            };
            let range = self.sorted.range((lo, hi)).map(|(s, m)| (m, s.0));
            return if rev {
                Box::new(range.rev())
            } else {
                Box::new(range)
            };
        }
        let (min, max) = (min.clone(), max.clone());
        let all = self.sorted.iter().map(|(s, m)| (m, s.0));
        if rev {
            Box::new(
                all.rev()
                    .skip_while(move |(m, _)| !max.above(m))
                    .take_while(move |(m, _)| min.below(m)),
            )
        } else {
            Box::new(
                all.skip_while(move |(m, _)| !min.below(m))
                    .take_while(move |(m, _)| max.above(m)),
            )
        }
    }

    /// Removes and returns the lowest (or highest, when `max`) member.
    pub fn pop(&mut self, max: bool) -> Option<(Sds, f64)> {
        let first = if max {
            self.sorted.pop_last()
        } else {
            self.sorted.pop_first()
        }?;
        self.dict.swap_remove(&first.1);
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

/// One end of a lex range: `-`, `+`, `[member` or `(member`.
#[derive(Clone, Debug, PartialEq)]
pub enum LexBound {
    /// `-`: below every member.
    NegInf,
    /// `+`: above every member.
    PosInf,
    /// `[member`.
    Inclusive(Vec<u8>),
    /// `(member`.
    Exclusive(Vec<u8>),
}

impl LexBound {
    /// Parses a lex range item as Redis' `zslParseLexRangeItem`; `None` when it is not one.
    pub fn parse(arg: &[u8]) -> Option<LexBound> {
        // Redis reads these as C strings, so a NUL right after `-` or `+` ends the item.
        let alone = arg.get(1).is_none_or(|&b| b == 0);
        match arg.first()? {
            b'+' if alone => Some(LexBound::PosInf),
            b'-' if alone => Some(LexBound::NegInf),
            b'(' => Some(LexBound::Exclusive(arg[1..].to_vec())),
            b'[' => Some(LexBound::Inclusive(arg[1..].to_vec())),
            _ => None,
        }
    }

    /// True when `member` is not below this bound used as a minimum.
    pub fn below(&self, member: &[u8]) -> bool {
        match self {
            LexBound::NegInf => true,
            LexBound::PosInf => false,
            LexBound::Inclusive(v) => member >= v.as_slice(),
            LexBound::Exclusive(v) => member > v.as_slice(),
        }
    }

    /// True when `member` is not above this bound used as a maximum.
    pub fn above(&self, member: &[u8]) -> bool {
        match self {
            LexBound::NegInf => false,
            LexBound::PosInf => true,
            LexBound::Inclusive(v) => member <= v.as_slice(),
            LexBound::Exclusive(v) => member < v.as_slice(),
        }
    }

    /// True for a range no member can be in (Redis' `sdscmplex` check).
    pub fn is_empty_range(min: &LexBound, max: &LexBound) -> bool {
        let cmp = match (min, max) {
            (LexBound::NegInf, LexBound::NegInf) | (LexBound::PosInf, LexBound::PosInf) => {
                Ordering::Equal
            }
            (LexBound::NegInf, _) | (_, LexBound::PosInf) => Ordering::Less,
            (LexBound::PosInf, _) | (_, LexBound::NegInf) => Ordering::Greater,
            (a, b) => a.value().cmp(b.value()),
        };
        let exclusive = |b: &LexBound| !matches!(b, LexBound::Inclusive(_));
        cmp == Ordering::Greater || (cmp == Ordering::Equal && (exclusive(min) || exclusive(max)))
    }

    fn value(&self) -> &[u8] {
        match self {
            LexBound::Inclusive(v) | LexBound::Exclusive(v) => v,
            LexBound::NegInf | LexBound::PosInf => &[],
        }
    }
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

    fn members<'a>(it: impl Iterator<Item = (&'a Sds, f64)>) -> Vec<String> {
        it.map(|(m, _)| String::from_utf8_lossy(m).into_owned())
            .collect()
    }

    #[test]
    fn ranks_count_from_the_nearer_end() {
        let mut z = ZSet::new();
        for (i, m) in ["a", "b", "c", "d", "e"].iter().enumerate() {
            z.insert(m.as_bytes(), i as f64);
        }
        let ranks: Vec<Option<usize>> = [&b"a"[..], b"b", b"c", b"d", b"e", b"x"]
            .iter()
            .map(|m| z.rank(m))
            .collect();
        assert_eq!(
            ranks,
            vec![Some(0), Some(1), Some(2), Some(3), Some(4), None]
        );
        assert_eq!(members(z.by_rank(1, 3).into_iter()), vec!["b", "c"]);
        assert_eq!(members(z.by_rank(3, 99).into_iter()), vec!["d", "e"]);
        assert!(z.by_rank(4, 4).is_empty());
        assert!(z.by_rank(7, 9).is_empty());
    }

    #[test]
    fn lex_ranges_follow_redis_bounds() {
        let mut z = ZSet::new();
        for m in ["a", "b", "c", "d"] {
            z.insert(m.as_bytes(), 0.0);
        }
        let p = |s: &str| LexBound::parse(s.as_bytes()).expect("a valid bound");
        let lex = |min: &str, max: &str, rev: bool| members(z.lex_range(&p(min), &p(max), rev));
        assert_eq!(lex("-", "+", false), vec!["a", "b", "c", "d"]);
        assert_eq!(lex("(a", "[c", false), vec!["b", "c"]);
        assert_eq!(lex("(a", "[c", true), vec!["c", "b"]);
        assert_eq!(lex("[c", "[b", false), Vec::<String>::new());
        assert_eq!(lex("(b", "(b", false), Vec::<String>::new());
        assert_eq!(lex("+", "+", false), Vec::<String>::new());
        assert_eq!(lex("-", "-", false), Vec::<String>::new());
        assert_eq!(LexBound::parse(b"x"), None);
        assert_eq!(LexBound::parse(b"+x"), None);
        assert_eq!(LexBound::parse(b"+\0x"), Some(LexBound::PosInf));
        assert_eq!(LexBound::parse(b"("), Some(LexBound::Exclusive(Vec::new())));
        // Mixed scores take the run that starts at the first member not below the minimum.
        z.insert(b"a", 5.0);
        let lex = |min: &str, max: &str, rev: bool| members(z.lex_range(&p(min), &p(max), rev));
        assert_eq!(lex("[a", "[c", false), vec!["b", "c"]);
        assert_eq!(lex("[a", "+", false), vec!["b", "c", "d", "a"]);
        // The last member ("a") is below the minimum, so Redis reports nothing at all.
        assert_eq!(lex("[c", "[d", false), Vec::<String>::new());
    }

    #[test]
    fn removal_only_moves_members_down_the_table() {
        let mut z = ZSet::new();
        for (i, m) in ["a", "b", "c", "d"].iter().enumerate() {
            z.insert(m.as_bytes(), i as f64);
        }
        z.remove(b"b");
        let table: Vec<String> = (0..z.len())
            .filter_map(|i| z.entry_at(i))
            .map(|(m, _)| String::from_utf8_lossy(m).into_owned())
            .collect();
        assert_eq!(table, vec!["a", "d", "c"]);
        assert_eq!(z.entry_at(3), None);
    }
}
