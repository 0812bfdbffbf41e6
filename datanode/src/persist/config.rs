//! `PersistConfig`: the persistence parameters (`save`, `dbfilename`, `appendonly`, …), their
//! parsing in Redis' syntax and their `CONFIG GET` view.
//!
//! Invariant: pure; `set_param` either applies a valid value or leaves the config unchanged.

use std::time::Duration;

use crate::config::ConfigError;

/// One `save <seconds> <changes>` rule: snapshot when at least `changes` writes happened and
/// `after` passed since the last successful save.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub struct SaveRule {
    /// Time since the last successful save.
    pub after: Duration,
    /// Writes since the last successful save.
    pub changes: u64,
}

/// When the append-only file is flushed to disk (`appendfsync`).
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub enum AppendFsync {
    /// Before the reply to a write leaves (one fsync per batch of writers: group commit).
    Always,
    /// Once a second, in the background.
    EverySec,
    /// Never explicitly; the kernel decides.
    No,
}

impl AppendFsync {
    /// Redis' spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            AppendFsync::Always => "always",
            AppendFsync::EverySec => "everysec",
            AppendFsync::No => "no",
        }
    }

    /// Parses Redis' spelling.
    pub fn parse(s: &str) -> Option<AppendFsync> {
        match s.to_ascii_lowercase().as_str() {
            "always" => Some(AppendFsync::Always),
            "everysec" => Some(AppendFsync::EverySec),
            "no" => Some(AppendFsync::No),
            _ => None,
        }
    }
}

/// Persistence configuration.
#[derive(Clone, Debug, Eq, PartialEq)]
pub struct PersistConfig {
    /// RDB file name inside `dir` (`dbfilename`); a plain file name, never a path.
    pub dbfilename: String,
    /// Snapshot rules (`save`); empty disables automatic snapshots and the save on SIGTERM.
    pub save: Vec<SaveRule>,
    /// Refuse writes with `-MISCONF` after a failed background save (`stop-writes-on-bgsave-error`);
    /// only while `save` rules exist, as in Redis.
    pub stop_writes_on_bgsave_error: bool,
    /// LZF-compress long strings in snapshots (`rdbcompression`).
    pub rdbcompression: bool,
    /// At start, load the valid prefix of a truncated or corrupt RDB file instead of refusing to
    /// start (`rdb-load-truncated`, Vigil's own).
    pub rdb_load_truncated: bool,
    /// Log every write to the append-only file (`appendonly`).
    pub appendonly: bool,
    /// Append-only file name inside `dir` (`appendfilename`).
    pub appendfilename: String,
    /// fsync policy of the append-only file (`appendfsync`).
    pub appendfsync: AppendFsync,
    /// At start, load the valid prefix of a truncated or corrupt append-only file, cutting the
    /// file back to it, instead of refusing to start (`aof-load-truncated`; Redis defaults to yes,
    /// Vigil to no: a half-loaded dataset is never silent).
    pub aof_load_truncated: bool,
}

impl Default for PersistConfig {
    /// Redis 7.0's defaults, `save 3600 1 300 100 60 10000` included, so a node that replaces a
    /// Redis server keeps its `dump.rdb` behaviour; `aof-load-truncated` is the exception.
    fn default() -> Self {
        PersistConfig {
            dbfilename: "dump.rdb".into(),
            save: parse_save("3600 1 300 100 60 10000").unwrap_or_default(),
            stop_writes_on_bgsave_error: true,
            rdbcompression: true,
            rdb_load_truncated: false,
            appendonly: false,
            appendfilename: "appendonly.aof".into(),
            appendfsync: AppendFsync::EverySec,
            aof_load_truncated: false,
        }
    }
}

impl PersistConfig {
    /// Checks the rules the fields must follow.
    pub fn validate(&self) -> Result<(), ConfigError> {
        for (name, file) in [
            ("dbfilename", &self.dbfilename),
            ("appendfilename", &self.appendfilename),
        ] {
            if file.is_empty() || file.contains('/') || file == "." || file == ".." {
                return Err(ConfigError::Invalid {
                    name: name.into(),
                    reason: format!("{name} can't be a path, just a filename"),
                });
            }
        }
        Ok(())
    }

    /// The parameters as `CONFIG GET` shows them.
    pub fn params(&self) -> Vec<(&'static str, String)> {
        vec![
            ("save", format_save(&self.save)),
            ("dbfilename", self.dbfilename.clone()),
            (
                "stop-writes-on-bgsave-error",
                yes_no(self.stop_writes_on_bgsave_error),
            ),
            ("rdbcompression", yes_no(self.rdbcompression)),
            ("rdbchecksum", "yes".into()),
            ("rdb-load-truncated", yes_no(self.rdb_load_truncated)),
            ("appendonly", yes_no(self.appendonly)),
            ("appendfilename", self.appendfilename.clone()),
            ("appendfsync", self.appendfsync.as_str().into()),
            ("aof-load-truncated", yes_no(self.aof_load_truncated)),
            ("aof-use-rdb-preamble", "yes".into()),
        ]
    }

    /// Sets a persistence parameter; `None` when `name` (lower case) is not one.
    pub fn set_param(&mut self, name: &str, value: &str) -> Option<Result<(), ConfigError>> {
        let invalid = |reason: &str| ConfigError::Invalid {
            name: name.into(),
            reason: reason.into(),
        };
        let bool_of = |v: &str| crate::config::parse_bool(v).ok_or_else(|| invalid(NOT_BOOL));
        let mut next = self.clone();
        let r = match name {
            "save" => parse_save(value)
                .map(|s| next.save = s)
                .ok_or_else(|| invalid("Invalid save parameters")),
            "dbfilename" => {
                next.dbfilename = value.to_string();
                Ok(())
            }
            "stop-writes-on-bgsave-error" => {
                bool_of(value).map(|b| next.stop_writes_on_bgsave_error = b)
            }
            "rdbcompression" => bool_of(value).map(|b| next.rdbcompression = b),
            "rdbchecksum" | "aof-use-rdb-preamble" => bool_of(value).and_then(|b| {
                if b {
                    Ok(())
                } else {
                    Err(invalid("only 'yes' is supported"))
                }
            }),
            "rdb-load-truncated" => bool_of(value).map(|b| next.rdb_load_truncated = b),
            "appendonly" => bool_of(value).map(|b| next.appendonly = b),
            "appendfilename" => return Some(Err(ConfigError::Immutable(name.into()))),
            "appendfsync" => AppendFsync::parse(value)
                .map(|f| next.appendfsync = f)
                .ok_or_else(|| {
                    invalid("argument(s) must be one of the following: always, everysec, no")
                }),
            "aof-load-truncated" => bool_of(value).map(|b| next.aof_load_truncated = b),
            _ => return None,
        };
        Some(r.and_then(|()| next.validate()).map(|()| *self = next))
    }
}

/// Parses `save`: pairs of seconds and changes separated by spaces; the empty string disables.
pub fn parse_save(s: &str) -> Option<Vec<SaveRule>> {
    let words: Vec<&str> = s.split_whitespace().collect();
    if words.len() % 2 != 0 {
        return None;
    }
    words
        .chunks(2)
        .map(|p| {
            Some(SaveRule {
                after: Duration::from_secs(p[0].parse().ok()?),
                changes: p[1].parse().ok()?,
            })
        })
        .collect()
}

/// Formats `save` as Redis' `CONFIG GET save` does.
pub fn format_save(rules: &[SaveRule]) -> String {
    let words: Vec<String> = rules
        .iter()
        .map(|r| format!("{} {}", r.after.as_secs(), r.changes))
        .collect();
    words.join(" ")
}

/// Why a yes/no parameter does not parse, in Redis' words.
const NOT_BOOL: &str = "argument must be 'yes' or 'no'";

fn yes_no(b: bool) -> String {
    if b { "yes" } else { "no" }.into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn save_rules_parse_and_format_like_redis() {
        let table: &[(&str, Option<&str>)] = &[
            ("900 1 300 10", Some("900 1 300 10")),
            ("", Some("")),
            ("  60   10000 ", Some("60 10000")),
            ("900", None),
            ("900 x", None),
            ("-1 1", None),
        ];
        for (input, want) in table {
            let got = parse_save(input).map(|r| format_save(&r));
            assert_eq!(got.as_deref(), *want, "{input:?}");
        }
    }

    #[test]
    fn set_param_validates_and_keeps_old_value_on_error() {
        let mut c = PersistConfig::default();
        assert!(c.set_param("maxmemory", "1").is_none(), "not ours");
        assert!(matches!(c.set_param("appendfsync", "always"), Some(Ok(()))));
        assert_eq!(c.appendfsync, AppendFsync::Always);
        assert!(matches!(
            c.set_param("appendfsync", "sometimes"),
            Some(Err(_))
        ));
        assert_eq!(c.appendfsync, AppendFsync::Always);
        assert!(matches!(
            c.set_param("dbfilename", "../x.rdb"),
            Some(Err(_))
        ));
        assert_eq!(c.dbfilename, "dump.rdb");
        assert!(matches!(c.set_param("save", ""), Some(Ok(()))));
        assert!(c.save.is_empty());
        assert!(matches!(
            c.set_param("appendfilename", "x.aof"),
            Some(Err(ConfigError::Immutable(_)))
        ));
    }
}
