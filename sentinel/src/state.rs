//! The sentinel's durable state file: one file under `--dir`, written atomically.
//!
//! Owns the on-disk format of `core::DurableState` and its atomic write (temp file, fsync,
//! rename, fsync of the directory). The format is a header line with a checksum, then JSON:
//!
//! ```text
//! vigil-sentinel-state 1 fnv64=0123456789abcdef
//! {"version":12,"id":1234,"voters":[...],"groups":{...}}
//! ```
//!
//! Node ids are process-local, so the file stores node addresses and `load` interns them.
//! Invariants: a reader sees either the old file or the new one, never a mix; a file that is
//! truncated, altered or of an unknown format is an error naming the file, never "no state"
//! (forgetting a vote would let this sentinel vote twice in one term).

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use std::num::NonZeroU8;
use std::time::Duration;

use crate::core::{
    Ballot, ConfigEpoch, Dc, DurableGroup, DurableMembers, DurableState, GroupName, GroupOptions,
    MembersEpoch, PersistVersion, Quorum, ReplId, ReplOffset, SentinelId, Term,
};
use crate::nodes::{NodeAddr, NodeTable};

/// The state file's name inside `--dir`.
pub const FILE_NAME: &str = "sentinel-state.json";
const MAGIC: &str = "vigil-sentinel-state";
const FORMAT: u32 = 1;
/// A state file larger than this is refused rather than read.
const MAX_FILE: u64 = 64 << 20;

/// Why the state could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// The file exists but could not be read or written.
    #[error("state file {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The file is damaged or not ours.
    #[error(
        "state file {path} is corrupt ({reason}); refusing to start rather than forget votes: \
         restore it from a backup, or delete it only if this sentinel never voted"
    )]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A node address in the state could not be interned (the node table is full).
    #[error("state holds more data nodes than this sentinel can track")]
    TooManyNodes,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileState {
    version: u64,
    id: u32,
    voters: Vec<u32>,
    /// Absent in state files written before membership epochs: read as a founded cluster at
    /// epoch 1 with the voters listed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    members: Option<FileMembers>,
    groups: BTreeMap<String, FileGroup>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileMembers {
    cluster: u64,
    epoch: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    floor: u64,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    fences: BTreeMap<String, u64>,
    /// `(round, sentinel)` promised in the open instance.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    promised: Option<(u64, u32)>,
    /// `(round, sentinel, voters)` accepted in the open instance.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    accepted: Option<(u64, u32, Vec<u32>)>,
    /// The joiners' incarnations that came with `accepted`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    accepted_incarnations: BTreeMap<u32, u64>,
    #[serde(default)]
    incarnation: u64,
    /// Sentinel id → the incarnation it was admitted with, by this sentinel.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    admitted: BTreeMap<u32, u64>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileGroup {
    term: u64,
    vote: Option<(u64, u32)>,
    abandoned: u64,
    fence_from: u64,
    epoch: u64,
    master: String,
    replicas: Vec<String>,
    lineage: Vec<(u64, u64)>,
    /// An operator's options (absent in files written before run-time changes existed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    options: Option<FileOptions>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    removed: bool,
    /// The term of the operator's last change, and of the last reset.
    #[serde(default, skip_serializing_if = "is_zero")]
    agreed: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    reset: u64,
}

/// The path of the state file in `dir`.
pub fn path_in(dir: &Path) -> PathBuf {
    dir.join(FILE_NAME)
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileOptions {
    quorum: u8,
    down_after_ms: u64,
    failover_timeout_ms: u64,
    parallel_syncs: u8,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    preferred_dc: Option<String>,
    sync_replicas: u8,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    extra: BTreeMap<String, String>,
}

impl FileOptions {
    fn of(o: &GroupOptions) -> FileOptions {
        FileOptions {
            quorum: o.quorum.0.get(),
            down_after_ms: u64::try_from(o.down_after.as_millis()).unwrap_or(u64::MAX),
            failover_timeout_ms: u64::try_from(o.failover_timeout.as_millis()).unwrap_or(u64::MAX),
            parallel_syncs: o.parallel_syncs.get(),
            preferred_dc: o.preferred_dc.as_ref().map(|d| d.0.to_string()),
            sync_replicas: o.sync_replicas,
            extra: o.extra.clone(),
        }
    }

    fn to_core(&self) -> Option<GroupOptions> {
        Some(GroupOptions {
            quorum: Quorum(NonZeroU8::new(self.quorum)?),
            down_after: Duration::from_millis(self.down_after_ms),
            failover_timeout: Duration::from_millis(self.failover_timeout_ms),
            parallel_syncs: NonZeroU8::new(self.parallel_syncs)?,
            preferred_dc: self.preferred_dc.as_deref().map(|d| Dc(d.into())),
            sync_replicas: self.sync_replicas,
            extra: self.extra.clone(),
        })
    }
}

/// Serialises `state` (node ids resolved through `nodes`) into the file format.
pub fn encode(state: &DurableState, nodes: &NodeTable) -> Vec<u8> {
    let addr = |id| {
        nodes
            .addr(id)
            .map(ToString::to_string)
            .unwrap_or_else(|| format!("unknown-node-{}:1", id.0))
    };
    let file = FileState {
        version: state.version.0,
        id: state.id.0,
        voters: state.voters.iter().map(|v| v.0).collect(),
        members: Some({
            let m = &state.members;
            FileMembers {
                cluster: m.cluster,
                epoch: m.epoch.0,
                floor: m.floor.0,
                fences: m
                    .fences
                    .iter()
                    .map(|(g, e)| (g.as_str().to_owned(), e.0))
                    .collect(),
                promised: (m.promised != Ballot::default())
                    .then_some((m.promised.round, m.promised.by)),
                accepted: m
                    .accepted
                    .as_ref()
                    .map(|(b, v)| (b.round, b.by, v.iter().map(|s| s.0).collect())),
                accepted_incarnations: m
                    .accepted_incarnations
                    .iter()
                    .map(|(id, inc)| (id.0, *inc))
                    .collect(),
                incarnation: m.incarnation,
                admitted: m.admitted.iter().map(|(id, inc)| (id.0, *inc)).collect(),
            }
        }),
        groups: state
            .groups
            .iter()
            .map(|(name, g)| {
                (
                    name.as_str().to_owned(),
                    FileGroup {
                        term: g.term.0,
                        vote: g.vote.map(|(t, c)| (t.0, c.0)),
                        abandoned: g.abandoned.0,
                        fence_from: g.fence_from.0,
                        epoch: g.epoch.0,
                        master: addr(g.master),
                        replicas: g.replicas.iter().map(|r| addr(*r)).collect(),
                        lineage: g.lineage.iter().map(|(id, at)| (id.0, at.0)).collect(),
                        options: g.options.as_ref().map(FileOptions::of),
                        removed: g.removed,
                        agreed: g.agreed.0,
                        reset: g.reset.0,
                    },
                )
            })
            .collect(),
    };
    // Serialising plain maps, vectors and numbers cannot fail.
    let body = serde_json::to_string(&file).unwrap_or_default();
    let mut out = format!("{MAGIC} {FORMAT} fnv64={:016x}\n", fnv64(body.as_bytes())).into_bytes();
    out.extend_from_slice(body.as_bytes());
    out.push(b'\n');
    out
}

/// Parses a state file's bytes; `path` is only for messages.
pub fn decode(
    bytes: &[u8],
    path: &Path,
    nodes: &mut NodeTable,
) -> Result<DurableState, StateError> {
    let corrupt = |reason: String| StateError::Corrupt {
        path: path.to_owned(),
        reason,
    };
    let text = std::str::from_utf8(bytes).map_err(|e| corrupt(format!("not UTF-8: {e}")))?;
    let (header, body) = text
        .split_once('\n')
        .ok_or_else(|| corrupt("no header line".into()))?;
    let mut words = header.split(' ');
    if words.next() != Some(MAGIC) {
        return Err(corrupt("not a vigil sentinel state file".into()));
    }
    match words.next().map(str::parse::<u32>) {
        Some(Ok(FORMAT)) => {}
        other => return Err(corrupt(format!("unsupported format {other:?}"))),
    }
    let sum = words
        .next()
        .and_then(|w| w.strip_prefix("fnv64="))
        .and_then(|h| u64::from_str_radix(h, 16).ok())
        .ok_or_else(|| corrupt("bad checksum field".into()))?;
    let body = body.strip_suffix('\n').unwrap_or(body);
    if fnv64(body.as_bytes()) != sum {
        return Err(corrupt("checksum mismatch (truncated or altered)".into()));
    }
    let file: FileState =
        serde_json::from_str(body).map_err(|e| corrupt(format!("invalid JSON: {e}")))?;
    let mut intern = |s: &str| -> Result<crate::core::NodeId, StateError> {
        let addr: NodeAddr = s
            .parse()
            .map_err(|e| corrupt(format!("node address: {e}")))?;
        nodes.intern(&addr).ok_or(StateError::TooManyNodes)
    };
    let mut groups = BTreeMap::new();
    for (name, g) in file.groups {
        let options =
            match &g.options {
                Some(o) => Some(o.to_core().ok_or_else(|| {
                    corrupt(format!("group {name}: quorum or parallel_syncs is 0"))
                })?),
                None => None,
            };
        let master = intern(&g.master)?;
        let replicas = g
            .replicas
            .iter()
            .map(|r| intern(r))
            .collect::<Result<BTreeSet<_>, _>>()?;
        groups.insert(
            GroupName::new(&name),
            DurableGroup {
                term: Term(g.term),
                vote: g.vote.map(|(t, c)| (Term(t), SentinelId(c))),
                abandoned: Term(g.abandoned),
                fence_from: Term(g.fence_from),
                epoch: ConfigEpoch(g.epoch),
                master,
                replicas,
                lineage: g
                    .lineage
                    .into_iter()
                    .map(|(id, at)| (ReplId(id), ReplOffset(at)))
                    .collect(),
                agreed: Term(g.agreed),
                options,
                removed: g.removed,
                reset: Term(g.reset),
            },
        );
    }
    let members = match file.members {
        Some(m) => DurableMembers {
            cluster: m.cluster,
            epoch: MembersEpoch(m.epoch),
            floor: Term(m.floor),
            fences: m
                .fences
                .into_iter()
                .map(|(g, e)| (GroupName::new(&g), ConfigEpoch(e)))
                .collect(),
            promised: m
                .promised
                .map(|(round, by)| Ballot { round, by })
                .unwrap_or_default(),
            accepted: m.accepted.map(|(round, by, v)| {
                (
                    Ballot { round, by },
                    v.into_iter().map(SentinelId).collect(),
                )
            }),
            accepted_incarnations: m
                .accepted_incarnations
                .into_iter()
                .map(|(id, inc)| (SentinelId(id), inc))
                .collect(),
            incarnation: m.incarnation,
            admitted: m
                .admitted
                .into_iter()
                .map(|(id, inc)| (SentinelId(id), inc))
                .collect(),
        },
        None => DurableMembers {
            epoch: MembersEpoch(1),
            ..DurableMembers::default()
        },
    };
    Ok(DurableState {
        version: PersistVersion(file.version),
        id: SentinelId(file.id),
        voters: file.voters.into_iter().map(SentinelId).collect(),
        members,
        groups,
    })
}

/// Reads the state in `dir`: `Ok(None)` when there is none yet.
pub fn load(dir: &Path, nodes: &mut NodeTable) -> Result<Option<DurableState>, StateError> {
    let path = path_in(dir);
    let io = |source| StateError::Io {
        path: path.clone(),
        source,
    };
    let meta = match fs::metadata(&path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io(e)),
    };
    if meta.len() > MAX_FILE {
        return Err(StateError::Corrupt {
            path,
            reason: format!(
                "{} bytes, more than the {MAX_FILE} a state can hold",
                meta.len()
            ),
        });
    }
    let bytes = fs::read(&path).map_err(io)?;
    decode(&bytes, &path, nodes).map(Some)
}

/// Writes `bytes` as the state file in `dir` atomically and durably.
pub fn store(dir: &Path, bytes: &[u8]) -> Result<(), StateError> {
    let path = path_in(dir);
    let tmp = dir.join(format!("{FILE_NAME}.tmp"));
    let io = |p: &Path| {
        let p = p.to_owned();
        move |source| StateError::Io { path: p, source }
    };
    let mut f = fs::File::create(&tmp).map_err(io(&tmp))?;
    f.write_all(bytes).map_err(io(&tmp))?;
    f.sync_all().map_err(io(&tmp))?;
    drop(f);
    fs::rename(&tmp, &path).map_err(io(&path))?;
    fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io(dir))?;
    Ok(())
}

fn fnv64(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::NodeId;

    fn sample(nodes: &mut NodeTable) -> DurableState {
        let m = nodes.intern(&NodeAddr::new("127.0.0.1", 7000)).unwrap();
        let r = nodes.intern(&NodeAddr::new("::1", 7001)).unwrap();
        let mut groups = BTreeMap::new();
        groups.insert(
            GroupName::new("g1"),
            DurableGroup {
                term: Term(7),
                vote: Some((Term(7), SentinelId(42))),
                abandoned: Term(3),
                fence_from: Term(6),
                epoch: ConfigEpoch(5),
                master: m,
                replicas: [r].into_iter().collect(),
                lineage: [(ReplId(u64::MAX), ReplOffset(9))].into_iter().collect(),
                agreed: Term(9),
                options: Some(GroupOptions {
                    quorum: Quorum(NonZeroU8::new(2).unwrap()),
                    down_after: Duration::from_millis(1500),
                    failover_timeout: Duration::from_secs(20),
                    parallel_syncs: NonZeroU8::new(3).unwrap(),
                    preferred_dc: Some(Dc("east".into())),
                    sync_replicas: 1,
                    extra: [("auth-pass".to_string(), "pw".to_string())]
                        .into_iter()
                        .collect(),
                }),
                removed: true,
                reset: Term(8),
            },
        );
        DurableState {
            version: PersistVersion(12),
            id: SentinelId(1),
            voters: [SentinelId(1), SentinelId(42)].into_iter().collect(),
            members: DurableMembers {
                cluster: 0xabcd,
                epoch: MembersEpoch(3),
                floor: Term(9),
                fences: [(GroupName::new("g1"), ConfigEpoch(7))]
                    .into_iter()
                    .collect(),
                promised: Ballot { round: 4, by: 42 },
                accepted: Some((
                    Ballot { round: 4, by: 42 },
                    [SentinelId(1), SentinelId(42), SentinelId(43)]
                        .into_iter()
                        .collect(),
                )),
                accepted_incarnations: [(SentinelId(43), 12)].into_iter().collect(),
                incarnation: 0xfeed_beef,
                admitted: [(SentinelId(42), 11)].into_iter().collect(),
            },
            groups,
        }
    }

    #[test]
    fn round_trips_through_a_directory() {
        let dir = tempfile::tempdir().unwrap();
        let mut nodes = NodeTable::default();
        let state = sample(&mut nodes);
        assert!(load(dir.path(), &mut nodes).unwrap().is_none());
        store(dir.path(), &encode(&state, &nodes)).unwrap();
        // A fresh table: ids are re-interned from the addresses.
        let mut fresh = NodeTable::default();
        fresh.intern(&NodeAddr::new("10.0.0.1", 1)).unwrap();
        let back = load(dir.path(), &mut fresh).unwrap().unwrap();
        let g = &back.groups[&GroupName::new("g1")];
        assert_eq!(
            fresh.addr(g.master),
            Some(&NodeAddr::new("127.0.0.1", 7000))
        );
        assert_eq!(g.vote, Some((Term(7), SentinelId(42))));
        assert_eq!(back.version, PersistVersion(12));
        assert_eq!(back.voters, state.voters);
        assert_eq!(back.members, state.members);
        assert_ne!(g.master, NodeId(0));
    }

    #[test]
    fn damage_is_an_error_never_an_empty_state() {
        let mut nodes = NodeTable::default();
        let bytes = encode(&sample(&mut nodes), &nodes);
        let p = Path::new("x");
        let cases: Vec<Vec<u8>> = vec![
            bytes[..bytes.len() / 2].to_vec(),
            bytes
                .iter()
                .map(|b| if *b == b'7' { b'8' } else { *b })
                .collect(),
            b"garbage".to_vec(),
            Vec::new(),
            vec![0xff; 40],
        ];
        for case in cases {
            let err = decode(&case, p, &mut nodes).unwrap_err();
            assert!(matches!(err, StateError::Corrupt { .. }), "{err}");
            assert!(err.to_string().contains("refusing to start"));
        }
    }
}
