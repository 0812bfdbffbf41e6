//! The command table and the context keyspace commands run in.
//!
//! Every command is one `CommandSpec`: its name, Redis arity, flags, where its keys are (so the
//! dispatcher can lock their shards), and its handler. Keyspace commands (`Handler::Data`) parse
//! their arguments and apply themselves to a locked `Keyspace`, returning the reply instead of
//! writing to a socket, so they are tested without I/O and can run inside `MULTI`. Commands that
//! need the connection or the server (`Handler::Conn`) are run by `session.rs`.
//!
//! Invariant: a data handler touches only keys its `KeySpec` names; those are the shards locked.

pub mod args;
pub mod hashes;
pub mod keys;
pub mod lists;
pub mod sets;
pub mod strings;
pub mod zsets;

use std::collections::HashMap;
use std::sync::OnceLock;

use foldhash::fast::RandomState;
use smallvec::SmallVec;

use bytes::Bytes;
use vigil_proto::resp::Frame;

use crate::engine::{Entry, Keyspace, Value};
pub use args::*;

/// The command writes to the keyspace.
pub const WRITE: u32 = 1;
/// The command only reads.
pub const READONLY: u32 = 1 << 1;
/// The command may grow memory and is refused when `maxmemory` is reached.
pub const DENYOOM: u32 = 1 << 2;
/// Allowed before `AUTH`.
pub const NOAUTH: u32 = 1 << 3;
/// Allowed in RESP2 subscriber mode.
pub const PUBSUB: u32 = 1 << 4;
/// May block the client.
pub const BLOCKING: u32 = 1 << 5;
/// Administrative.
pub const ADMIN: u32 = 1 << 6;
/// Constant or logarithmic time.
pub const FAST: u32 = 1 << 7;
/// Not allowed inside `MULTI` (`WATCH`, `SUBSCRIBE`, …).
pub const NOMULTI: u32 = 1 << 8;
/// Not delayed by `CLIENT PAUSE WRITE` even though it may write (`PUBLISH` is not a key write).
pub const LOADING_OK: u32 = 1 << 9;

/// Where a command's keys are, Redis' legacy (first, last, step) form or a custom finder.
#[derive(Clone, Copy)]
pub enum KeySpec {
    /// No keys.
    None,
    /// Keys at `first`, `first + step`, … up to `last` (negative counts from the end).
    Range {
        /// Index of the first key.
        first: i32,
        /// Index of the last key; -1 is the last argument.
        last: i32,
        /// Distance between keys.
        step: i32,
    },
    /// A function that finds the key indexes (commands with a `numkeys` argument).
    Custom(fn(&[Bytes]) -> Vec<usize>),
    /// The command works on the whole keyspace and locks every shard.
    All,
}

impl KeySpec {
    /// Key indexes for `args` (`args[0]` is the command name). Never out of bounds.
    pub fn indexes(&self, args: &[Bytes]) -> SmallVec<[usize; 4]> {
        match *self {
            KeySpec::None | KeySpec::All => SmallVec::new(),
            KeySpec::Range { first, last, step } => {
                let n = args.len() as i32;
                let last = if last < 0 { n + last } else { last.min(n - 1) };
                let mut out = SmallVec::new();
                let mut i = first;
                while i <= last && i < n && step > 0 {
                    out.push(i as usize);
                    i += step;
                }
                out
            }
            KeySpec::Custom(f) => f(args).into_iter().filter(|&i| i < args.len()).collect(),
        }
    }

    /// The (first, last, step) triple `COMMAND INFO` reports.
    pub fn legacy(&self) -> (i64, i64, i64) {
        match *self {
            KeySpec::Range { first, last, step } => (first.into(), last.into(), step.into()),
            _ => (0, 0, 0),
        }
    }
}

/// A keyspace command's handler.
pub type DataFn = fn(&mut Ctx<'_>) -> CmdResult;

/// How a command runs.
#[derive(Clone, Copy)]
pub enum Handler {
    /// Runs against a locked keyspace view; allowed in `MULTI`.
    Data(DataFn),
    /// Runs in the connection's session (needs client or server state).
    Conn,
}

/// One command.
#[derive(Clone, Copy)]
pub struct CommandSpec {
    /// Lower-case name.
    pub name: &'static str,
    /// Redis arity: exact count when positive, minimum when negative (name included).
    pub arity: i32,
    /// Bit set of the flag constants above.
    pub flags: u32,
    /// Where the keys are.
    pub keys: KeySpec,
    /// How it runs.
    pub handler: Handler,
    /// The group `COMMAND DOCS` reports (`string`, `list`, …).
    pub group: &'static str,
}

impl CommandSpec {
    /// True when `flag` is set.
    pub fn has(&self, flag: u32) -> bool {
        self.flags & flag != 0
    }
}

/// Builds a data command spec.
pub const fn data(
    name: &'static str,
    arity: i32,
    flags: u32,
    keys: KeySpec,
    group: &'static str,
    f: DataFn,
) -> CommandSpec {
    CommandSpec {
        name,
        arity,
        flags,
        keys,
        handler: Handler::Data(f),
        group,
    }
}

/// Shorthand for a `KeySpec::Range`.
pub const fn keys(first: i32, last: i32, step: i32) -> KeySpec {
    KeySpec::Range { first, last, step }
}

/// The state a data handler works with.
pub struct Ctx<'a> {
    /// The arguments; `args[0]` is the command name.
    pub args: &'a [Bytes],
    /// The selected database.
    pub db: usize,
    /// Number of databases.
    pub dbs: usize,
    /// The locked keyspace view.
    pub ks: &'a mut dyn Keyspace,
    /// True when the client speaks RESP3 (some replies change shape).
    pub resp3: bool,
    /// Number of keys changed, for `rdb_changes_since_last_save`.
    pub dirty: u64,
}

impl Ctx<'_> {
    /// The argument at `i`; the arity check guarantees it for fixed positions.
    pub fn arg(&self, i: usize) -> &Bytes {
        &self.args[i]
    }

    /// Number of arguments, including the command name.
    pub fn argc(&self) -> usize {
        self.args.len()
    }

    /// Number of databases (`SELECT` range).
    pub fn dbs(&self) -> usize {
        self.dbs
    }

    /// The current Unix time in milliseconds of this command.
    pub fn now_ms(&self) -> u64 {
        self.ks.now_ms()
    }

    /// The live entry of `key`, or `WRONGTYPE` if it holds another type than `want` allows.
    pub fn get(&mut self, key: &[u8]) -> Option<&mut Entry> {
        self.ks.get(self.db, key)
    }

    /// Inserts or replaces `key` with `value`, keeping no expiry.
    pub fn set_value(&mut self, key: &[u8], value: Value) {
        self.ks.insert(self.db, Entry::new(key, value));
        self.dirty += 1;
    }

    /// Removes `key`; true if it existed.
    pub fn delete(&mut self, key: &[u8]) -> bool {
        let gone = self.ks.remove(self.db, key).is_some();
        if gone {
            self.dirty += 1;
        }
        gone
    }

    /// Removes `key` if it holds an empty collection (after a pop or remove).
    pub fn drop_if_empty(&mut self, key: &[u8]) {
        if self
            .ks
            .peek(self.db, key)
            .is_some_and(|e| e.value.is_empty_collection())
        {
            self.ks.remove(self.db, key);
        }
    }
}

/// Result of a data handler.
pub type CmdResult = Result<Frame, CmdError>;

/// A command failed; each variant is one of Redis' error replies.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum CmdError {
    /// Syntax error.
    #[error("ERR syntax error")]
    Syntax,
    /// Wrong number of arguments.
    #[error("ERR wrong number of arguments for '{0}' command")]
    Arity(String),
    /// Key holds another type.
    #[error("WRONGTYPE Operation against a key holding the wrong kind of value")]
    WrongType,
    /// An argument is not an integer.
    #[error("ERR value is not an integer or out of range")]
    NotInteger,
    /// An argument is not a float.
    #[error("ERR value is not a valid float")]
    NotFloat,
    /// Increment or decrement would overflow.
    #[error("ERR increment or decrement would overflow")]
    Overflow,
    /// No such key (`RENAME`, `LSET`).
    #[error("ERR no such key")]
    NoSuchKey,
    /// Index out of range (`LSET`).
    #[error("ERR index out of range")]
    IndexOutOfRange,
    /// `SELECT`/`MOVE` database index.
    #[error("ERR DB index is out of range")]
    DbIndex,
    /// Invalid expire time.
    #[error("ERR invalid expire time in '{0}' command")]
    InvalidExpire(String),
    /// A timeout argument that is not a number or negative.
    #[error("ERR timeout is not a float or out of range")]
    Timeout,
    /// Any other error, with its full text (code included).
    #[error("{0}")]
    Other(String),
    /// Nothing to serve yet: a blocking command waits on its keys (never reaches a client).
    #[error("would block")]
    Block,
}

impl CmdError {
    /// An error with free text; `text` includes the code (`ERR …`).
    pub fn other(text: impl Into<String>) -> CmdError {
        CmdError::Other(text.into())
    }

    /// The reply frame.
    pub fn to_frame(&self) -> Frame {
        Frame::error(self.to_string())
    }
}

/// Looks up a command by name, case-insensitively.
pub fn lookup(name: &[u8]) -> Option<&'static CommandSpec> {
    let mut lower = [0u8; 32];
    if name.len() > lower.len() {
        return None;
    }
    for (d, s) in lower.iter_mut().zip(name) {
        *d = s.to_ascii_lowercase();
    }
    let name = std::str::from_utf8(&lower[..name.len()]).ok()?;
    table().get(name).copied()
}

/// Every command, by name.
pub fn table() -> &'static HashMap<&'static str, &'static CommandSpec, RandomState> {
    static TABLE: OnceLock<HashMap<&'static str, &'static CommandSpec, RandomState>> =
        OnceLock::new();
    TABLE.get_or_init(|| {
        let families: [&'static [CommandSpec]; 8] = [
            strings::COMMANDS,
            keys::COMMANDS,
            hashes::COMMANDS,
            lists::COMMANDS,
            sets::COMMANDS,
            zsets::COMMANDS,
            crate::session::COMMANDS,
            crate::pubsub::COMMANDS,
        ];
        families
            .into_iter()
            .flatten()
            .map(|c| (c.name, c))
            .collect()
    })
}

#[cfg(test)]
pub(crate) mod testutil {
    //! Runs data commands against a fresh engine, for the command modules' unit tests.
    use super::*;
    use crate::engine::memory::MemoryEngine;
    use crate::engine::{Engine, Scope};

    /// Runs one command.
    pub fn run_one(engine: &MemoryEngine, cmd: &[&str]) -> Frame {
        let args: Vec<Bytes> = cmd
            .iter()
            .map(|s| Bytes::copy_from_slice(s.as_bytes()))
            .collect();
        let Some(spec) = lookup(&args[0]) else {
            return Frame::error("ERR unknown command");
        };
        let Handler::Data(f) = spec.handler else {
            return Frame::error("ERR not a data command");
        };
        let mut out = Frame::Null;
        // Lock only the declared keys, as the dispatcher does: a handler that touches another key
        // panics here, so every unit test also checks its command's key spec.
        let idx = spec.keys.indexes(&args);
        let keys: Vec<&[u8]> = idx.iter().map(|&i| &args[i][..]).collect();
        let scope = match spec.keys {
            KeySpec::All => Scope::All,
            _ => Scope::Keys(&keys),
        };
        engine.with_view(1_000_000, scope, &mut |ks| {
            let mut ctx = Ctx {
                args: &args,
                db: 0,
                dbs: 16,
                ks,
                resp3: false,
                dirty: 0,
            };
            out = f(&mut ctx).unwrap_or_else(|e| e.to_frame());
        });
        out
    }

    /// A bulk frame from text.
    pub fn b(s: &str) -> Frame {
        Frame::bulk(s.as_bytes())
    }

    /// An integer frame.
    pub fn i(n: i64) -> Frame {
        Frame::Integer(n)
    }
}
