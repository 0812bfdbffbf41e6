//! The filter of a `WatchEvents` stream: which groups, and which channels by name or glob.
//!
//! Globs are Redis' PSUBSCRIBE patterns without character classes (`*`, `?`, `\` to escape),
//! matched in time linear in the product of the lengths, so a hostile pattern cannot make the
//! pump spin.

use crate::events::EventRecord;

/// Patterns accepted per stream.
pub(crate) const MAX_PATTERNS: usize = 64;
/// Characters accepted per pattern.
pub(crate) const MAX_PATTERN_LEN: usize = 128;

/// Which events a subscriber wants. Empty lists mean everything.
#[derive(Clone, Debug)]
pub(crate) struct EventFilter {
    groups: Vec<String>,
    channels: Vec<Pattern>,
}

impl EventFilter {
    /// A filter of `groups` (events without a group always pass) and channel `patterns`.
    pub(crate) fn new(groups: Vec<String>, patterns: &[String]) -> EventFilter {
        EventFilter {
            groups,
            channels: patterns.iter().map(|p| Pattern::new(p)).collect(),
        }
    }

    /// Whether `r` passes.
    pub(crate) fn matches(&self, r: &EventRecord) -> bool {
        let group_ok = match &r.group {
            None => true,
            Some(g) => self.groups.is_empty() || self.groups.iter().any(|w| w == g),
        };
        group_ok
            && (self.channels.is_empty() || self.channels.iter().any(|p| p.matches(&r.channel)))
    }
}

/// One channel pattern, tokenised.
#[derive(Clone, Debug)]
pub(crate) struct Pattern(Vec<Token>);

#[derive(Clone, Copy, Debug, Eq, PartialEq)]
enum Token {
    /// `*`: any run of characters.
    Any,
    /// `?`: one character.
    One,
    /// A literal character (escaped with `\` or plain).
    Char(char),
}

impl Pattern {
    pub(crate) fn new(pattern: &str) -> Pattern {
        let mut tokens = Vec::new();
        let mut chars = pattern.chars();
        while let Some(c) = chars.next() {
            tokens.push(match c {
                '*' => Token::Any,
                '?' => Token::One,
                '\\' => Token::Char(chars.next().unwrap_or('\\')),
                c => Token::Char(c),
            });
        }
        Pattern(tokens)
    }

    /// Greedy matching with one backtracking point (the last `*`), which is exact for
    /// patterns of `*`, `?` and literals.
    pub(crate) fn matches(&self, s: &str) -> bool {
        let s: Vec<char> = s.chars().collect();
        let p = &self.0;
        let (mut pi, mut si) = (0, 0);
        let mut star: Option<(usize, usize)> = None;
        while si < s.len() {
            match p.get(pi) {
                Some(Token::Any) => {
                    star = Some((pi, si));
                    pi += 1;
                }
                Some(Token::One) => {
                    pi += 1;
                    si += 1;
                }
                Some(Token::Char(c)) if *c == s[si] => {
                    pi += 1;
                    si += 1;
                }
                _ => match star {
                    Some((sp, ss)) => {
                        // Let the last `*` swallow one more character and retry after it.
                        pi = sp + 1;
                        si = ss + 1;
                        star = Some((sp, ss + 1));
                    }
                    None => return false,
                },
            }
        }
        p[pi..].iter().all(|t| *t == Token::Any)
    }
}

#[cfg(test)]
mod tests {
    use super::Pattern;

    fn glob(p: &str, s: &str) -> bool {
        Pattern::new(p).matches(s)
    }

    #[test]
    fn patterns_match_like_redis() {
        assert!(glob("*", "+switch-master"));
        assert!(glob("*", ""));
        assert!(glob("+switch-master", "+switch-master"));
        assert!(!glob("+switch-master", "+switch-maste"));
        assert!(glob("+s*", "+sdown"));
        assert!(!glob("+s*", "-sdown"));
        assert!(glob("?sdown", "-sdown"));
        assert!(glob("\\*x", "*x"));
        assert!(!glob("\\*x", "ax"));
        assert!(glob("*-abort-*", "-failover-abort-no-good-slave"));
        assert!(glob("+*-*r", "+switch-master"));
        assert!(!glob("+*-*x", "+switch-master"));
        assert!(glob("a*b*c", "aXbYbZc"));
        let hostile = "*a".repeat(60);
        assert!(!glob(&hostile, &"a".repeat(59)));
    }
}
