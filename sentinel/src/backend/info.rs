//! `NodeReport`: a data node's `INFO` text, parsed; and its conversion to the core's `NodeInfo`.
//!
//! The field names are Redis' (Vigil data nodes print the same ones), plus two of Vigil's own:
//! `vigil_dc:` (the node's data-centre label) and `vigil_write_fencing:` (present when the node
//! supports write leases). Parsing is pure and total: a field that is missing gets Redis'
//! default, a malformed `slaveN:` line is skipped, and only a report without the fields the
//! core cannot do without (`run_id`, `role`, `master_replid`, `master_repl_offset`, and a
//! replica's master) is an error.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tracing::debug;

use super::BackendError;
use crate::core::{Dc, NodeInfo, NodeRole, Priority, ReplId, ReplOffset};
use crate::nodes::{NodeAddr, NodeTable, repl_id, run_id};

/// What one `INFO` reply says about a node.
#[derive(Clone, Debug, Eq, PartialEq)]
pub struct NodeReport {
    /// `run_id` (40 hex digits on Redis and Vigil).
    pub run_id: String,
    /// `role` and its role-specific fields.
    pub role: ReportRole,
    /// `master_replid`.
    pub replid: String,
    /// `master_replid2` (all zeros when none).
    pub replid2: String,
    /// `second_repl_offset`; -1 when `replid2` is unused.
    pub second_repl_offset: i64,
    /// `master_repl_offset` for a master; for a replica `slave_repl_offset`, falling back to
    /// `master_repl_offset`.
    pub offset: u64,
    /// `slave_priority` (or `replica_priority`); 100 when absent. 0 means never promote.
    pub priority: u32,
    /// `vigil_dc`, when present and not empty.
    pub dc: Option<String>,
    /// The sum of `keys=` over the `dbN:` lines.
    pub keys: u64,
    /// `loading:1`.
    pub loading: bool,
    /// `replica_announced` (true when absent).
    pub replica_announced: bool,
    /// The `vigil_write_fencing:` field is present: the node supports write leases.
    pub lease_capable: bool,
    /// Every `key:value` field, for the fields not lifted above.
    pub fields: HashMap<String, String>,
}

/// `role:` and what goes with it.
#[derive(Clone, Debug, Eq, PartialEq)]
pub enum ReportRole {
    /// `role:master`.
    Master {
        /// The `slaveN:` lines, in order.
        replicas: Vec<ReplicaLine>,
    },
    /// `role:slave`.
    Replica {
        /// `master_host` and `master_port`.
        master: NodeAddr,
        /// `master_link_status:up`.
        link_up: bool,
        /// `master_link_down_since_seconds`, when the link is down and the node says since when.
        link_down_since: Option<Duration>,
        /// `master_last_io_seconds_ago`, unless -1 (no I/O yet).
        last_io: Option<Duration>,
        /// `master_sync_in_progress:1`.
        sync_in_progress: bool,
    },
}

/// One `slaveN:ip=…,port=…,state=…,offset=…,lag=…` line of a master's INFO.
#[derive(Clone, Debug, Eq, PartialEq)]
pub struct ReplicaLine {
    /// `ip` and `port`: the address the replica announced.
    pub addr: NodeAddr,
    /// `state`: `wait_bgsave`, `send_bulk`, `online`, ...
    pub state: String,
    /// `offset`: the last offset the replica acknowledged.
    pub offset: u64,
    /// `lag`: seconds since its last acknowledgement.
    pub lag: u64,
}

impl NodeReport {
    /// Parses the text of an `INFO` reply.
    pub fn parse(text: &str) -> Result<NodeReport, BackendError> {
        let mut fields = HashMap::new();
        let mut replica_lines = Vec::new();
        let mut keys: u64 = 0;
        for line in text.lines() {
            let line = line.trim_end_matches('\r');
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let Some((key, value)) = line.split_once(':') else {
                continue;
            };
            if is_numbered(key, "slave") {
                match parse_replica_line(value) {
                    Some(r) => replica_lines.push(r),
                    None => debug!(line, "skipping malformed replica line in INFO"),
                }
            } else if is_numbered(key, "db") {
                let db_keys = kv(value, "keys").and_then(|v| v.parse::<u64>().ok());
                keys = keys.saturating_add(db_keys.unwrap_or(0));
            }
            fields.insert(key.to_owned(), value.to_owned());
        }
        let get = |k: &str| fields.get(k).map(String::as_str);
        let need = |k: &str| get(k).ok_or_else(|| missing(k));
        let num = |k: &str| -> Result<Option<i64>, BackendError> {
            get(k)
                .map(|v| v.trim().parse::<i64>().map_err(|_| malformed(k, v)))
                .transpose()
        };
        let secs = |k: &str| -> Result<Option<Duration>, BackendError> {
            Ok(num(k)?
                .and_then(|s| u64::try_from(s).ok())
                .map(Duration::from_secs))
        };
        let flag = |k: &str| get(k).map(|v| v.trim() == "1");

        let master_offset = non_negative("master_repl_offset", num("master_repl_offset")?)?
            .ok_or_else(|| missing("master_repl_offset"))?;
        let (role, offset) = match need("role")? {
            "master" => (
                ReportRole::Master {
                    replicas: replica_lines,
                },
                master_offset,
            ),
            "slave" | "replica" => {
                let host = need("master_host")?;
                let port = need("master_port")?;
                let port = port
                    .trim()
                    .parse::<u16>()
                    .map_err(|_| malformed("master_port", port))?;
                let role = ReportRole::Replica {
                    master: NodeAddr::new(host, port),
                    link_up: get("master_link_status") == Some("up"),
                    link_down_since: secs("master_link_down_since_seconds")?,
                    last_io: secs("master_last_io_seconds_ago")?,
                    sync_in_progress: flag("master_sync_in_progress").unwrap_or(false),
                };
                let offset = non_negative("slave_repl_offset", num("slave_repl_offset")?)?
                    .unwrap_or(master_offset);
                (role, offset)
            }
            other => return Err(malformed("role", other)),
        };
        let priority = match get("slave_priority").or_else(|| get("replica_priority")) {
            None => DEFAULT_PRIORITY,
            Some(v) => v
                .trim()
                .parse::<u32>()
                .map_err(|_| malformed("slave_priority", v))?,
        };
        Ok(NodeReport {
            run_id: need("run_id")?.to_owned(),
            role,
            replid: need("master_replid")?.to_owned(),
            replid2: get("master_replid2").unwrap_or(ZERO_REPLID).to_owned(),
            second_repl_offset: num("second_repl_offset")?.unwrap_or(-1),
            offset,
            priority,
            dc: get("vigil_dc")
                .map(str::trim)
                .filter(|d| !d.is_empty())
                .map(str::to_owned),
            keys,
            loading: flag("loading").unwrap_or(false),
            replica_announced: flag("replica_announced").unwrap_or(true),
            lease_capable: fields.contains_key("vigil_write_fencing"),
            fields,
        })
    }

    /// The core's view of this report, with addresses interned in `nodes`; `None` only when
    /// the table is full.
    pub fn to_core(&self, nodes: &mut NodeTable) -> Option<NodeInfo> {
        let role = match &self.role {
            ReportRole::Master { replicas } => NodeRole::Master {
                replicas: replicas
                    .iter()
                    .map(|r| nodes.intern(&r.addr))
                    .collect::<Option<Vec<_>>>()?,
            },
            ReportRole::Replica {
                master, link_up, ..
            } => NodeRole::Replica {
                master: nodes.intern(master)?,
                link_up: *link_up,
            },
        };
        // Redis prints second_repl_offset:-1 when replid2 is unused; the core's "none" is a zero
        // id up to offset zero.
        let (replid2, replid2_until) = if self.second_repl_offset < 0 {
            (ReplId(0), ReplOffset(0))
        } else {
            let until = self.second_repl_offset.saturating_sub(1).max(0);
            (repl_id(&self.replid2), ReplOffset(until.unsigned_abs()))
        };
        let is_master = matches!(self.role, ReportRole::Master { .. });
        Some(NodeInfo {
            run_id: run_id(&self.run_id),
            role,
            replid: repl_id(&self.replid),
            replid2,
            replid2_until,
            offset: ReplOffset(self.offset),
            priority: Priority(self.priority),
            dc: self.dc.as_deref().map(|d| Dc(Arc::from(d))),
            empty: is_master && self.offset == 0 && self.keys == 0 && replid2 == ReplId(0),
        })
    }
}

/// `slave3` for `prefix` `slave`: the prefix followed by at least one digit and nothing else.
fn is_numbered(key: &str, prefix: &str) -> bool {
    key.strip_prefix(prefix)
        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

/// The value of `key` in a `k=v,k=v` list.
fn kv<'a>(list: &'a str, key: &str) -> Option<&'a str> {
    list.split(',')
        .filter_map(|pair| pair.split_once('='))
        .find(|(k, _)| *k == key)
        .map(|(_, v)| v)
}

fn parse_replica_line(value: &str) -> Option<ReplicaLine> {
    let host = kv(value, "ip")?;
    let port = kv(value, "port")?.parse::<u16>().ok()?;
    if host.is_empty() || port == 0 {
        return None;
    }
    Some(ReplicaLine {
        addr: NodeAddr::new(host, port),
        state: kv(value, "state").unwrap_or("").to_owned(),
        offset: kv(value, "offset")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0),
        lag: kv(value, "lag").and_then(|v| v.parse().ok()).unwrap_or(0),
    })
}

fn non_negative(key: &str, v: Option<i64>) -> Result<Option<u64>, BackendError> {
    v.map(|n| u64::try_from(n).map_err(|_| malformed(key, &n.to_string())))
        .transpose()
}

fn missing(key: &str) -> BackendError {
    BackendError::Protocol(format!("INFO has no {key} field"))
}

fn malformed(key: &str, value: &str) -> BackendError {
    let value: String = value.chars().take(64).collect();
    BackendError::Protocol(format!("INFO field {key} is malformed: {value:?}"))
}

/// Redis' default `replica-priority`.
const DEFAULT_PRIORITY: u32 = 100;

const ZERO_REPLID: &str = "0000000000000000000000000000000000000000";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::{NodeId, RunId};

    const REDIS_MASTER: &str = include_str!("fixtures/redis_master.txt");
    const REDIS_REPLICA: &str = include_str!("fixtures/redis_replica.txt");
    const VIGIL_MASTER: &str = include_str!("fixtures/vigil_master.txt");
    const VIGIL_REPLICA: &str = include_str!("fixtures/vigil_replica.txt");
    const REDIS_SYNCING: &str = include_str!("fixtures/redis_replica_syncing.txt");
    const REDIS_PROMOTED: &str = include_str!("fixtures/redis_promoted.txt");
    const VIGIL_PROMOTED: &str = include_str!("fixtures/vigil_promoted.txt");

    fn parse(text: &str) -> NodeReport {
        NodeReport::parse(text).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn masters_list_their_replicas_and_keys() {
        for (text, replica_port, keys) in [(REDIS_MASTER, 27102, 6), (VIGIL_MASTER, 27104, 5)] {
            let r = parse(text);
            let ReportRole::Master { replicas } = &r.role else {
                panic!("not a master: {:?}", r.role);
            };
            assert_eq!(
                replicas,
                &vec![ReplicaLine {
                    addr: NodeAddr::new("127.0.0.1", replica_port),
                    state: "online".to_owned(),
                    offset: 121,
                    lag: 0,
                }]
            );
            assert_eq!(r.run_id.len(), 40);
            assert_eq!(r.replid.len(), 40);
            assert_eq!(r.replid2, ZERO_REPLID);
            assert_eq!(r.second_repl_offset, -1);
            assert_eq!(r.offset, 121);
            assert_eq!(r.keys, keys);
            assert_eq!(r.priority, 100);
            assert_eq!(r.dc, None);
            assert!(!r.loading);
            assert!(r.replica_announced);
            assert!(!r.lease_capable);
            assert_eq!(
                r.fields.get("connected_slaves").map(String::as_str),
                Some("1")
            );
        }
    }

    #[test]
    fn replicas_report_master_link_and_offset() {
        for (text, master_port) in [(REDIS_REPLICA, 27101), (VIGIL_REPLICA, 27103)] {
            let r = parse(text);
            assert_eq!(
                r.role,
                ReportRole::Replica {
                    master: NodeAddr::new("127.0.0.1", master_port),
                    link_up: true,
                    link_down_since: None,
                    last_io: Some(Duration::from_secs(1)),
                    sync_in_progress: false,
                }
            );
            assert_eq!(r.offset, 121);
            assert_eq!(r.priority, 100);
        }
    }

    #[test]
    fn a_syncing_replica_has_its_link_down_and_no_io_yet() {
        let r = parse(REDIS_SYNCING);
        assert_eq!(
            r.role,
            ReportRole::Replica {
                master: NodeAddr::new("127.0.0.1", 27101),
                link_up: false,
                link_down_since: None,
                last_io: None,
                sync_in_progress: false,
            }
        );
        assert_eq!(r.offset, 0);
        assert_eq!(r.keys, 0);
    }

    #[test]
    fn a_promoted_replica_keeps_its_old_history_as_replid2() {
        for text in [REDIS_PROMOTED, VIGIL_PROMOTED] {
            let r = parse(text);
            assert!(matches!(r.role, ReportRole::Master { .. }));
            assert_ne!(r.replid2, ZERO_REPLID);
            assert_eq!(r.second_repl_offset, 136);
            let info = r.to_core(&mut NodeTable::default()).unwrap();
            assert_eq!(info.replid2, repl_id(&r.replid2));
            assert_ne!(info.replid2, ReplId(0));
            assert_eq!(info.replid2_until, ReplOffset(135));
            assert!(!info.empty);
        }
    }

    #[test]
    fn vigil_fields_set_dc_and_lease_capability() {
        let text = format!("{VIGIL_MASTER}vigil_dc:eu-west\r\nvigil_write_fencing:lease\r\n");
        let r = parse(&text);
        assert_eq!(r.dc.as_deref(), Some("eu-west"));
        assert!(r.lease_capable);
        let info = r.to_core(&mut NodeTable::default()).unwrap();
        assert_eq!(info.dc, Some(Dc(Arc::from("eu-west"))));
    }

    #[test]
    fn conversion_to_core_interns_addresses_and_maps_ids() {
        let mut nodes = NodeTable::default();
        let m = parse(REDIS_MASTER);
        let info = m.to_core(&mut nodes).unwrap();
        let replica = nodes.get(&NodeAddr::new("127.0.0.1", 27102)).unwrap();
        assert_eq!(
            info.role,
            NodeRole::Master {
                replicas: vec![replica]
            }
        );
        assert_eq!(info.run_id, RunId(0xfeaa_4516_b772_ad39));
        assert_eq!(
            info.replid,
            repl_id("157eb6fe26c0a5da81cc38abdc79f1f87568508c")
        );
        assert_eq!(
            (info.replid2, info.replid2_until),
            (ReplId(0), ReplOffset(0))
        );
        assert_eq!(info.offset, ReplOffset(121));
        assert_eq!(info.priority, Priority(100));
        assert!(!info.empty);

        let r = parse(REDIS_REPLICA);
        let info = r.to_core(&mut nodes).unwrap();
        let master = nodes.get(&NodeAddr::new("127.0.0.1", 27101)).unwrap();
        assert_eq!(
            info.role,
            NodeRole::Replica {
                master,
                link_up: true
            }
        );
        assert_ne!(master, NodeId(u32::MAX));
        // A replica is never "empty", even with no data: only a master can restart empty.
        assert!(!parse(REDIS_SYNCING).to_core(&mut nodes).unwrap().empty);
    }

    #[test]
    fn a_master_with_no_data_and_no_history_is_empty() {
        let text = "run_id:abc\r\nrole:master\r\nmaster_replid:1234\r\n\
                    master_replid2:0000000000000000000000000000000000000000\r\n\
                    master_repl_offset:0\r\nsecond_repl_offset:-1\r\n";
        let r = parse(text);
        assert!(r.to_core(&mut NodeTable::default()).unwrap().empty);
        let with_key = format!("{text}db0:keys=1,expires=0,avg_ttl=0\r\n");
        assert!(
            !parse(&with_key)
                .to_core(&mut NodeTable::default())
                .unwrap()
                .empty
        );
    }

    #[test]
    fn priority_and_flags_are_read_with_redis_defaults() {
        let base = "run_id:a\nrole:slave\nmaster_host:h\nmaster_port:1\n\
                    master_replid:b\nmaster_repl_offset:7\n";
        let r = parse(base);
        assert_eq!(r.priority, 100);
        assert_eq!(r.offset, 7, "falls back to master_repl_offset");
        assert!(r.replica_announced && !r.loading);
        let r = parse(&format!(
            "{base}replica_priority:0\nreplica_announced:0\nloading:1\n\
             master_sync_in_progress:1\nmaster_link_down_since_seconds:12\n"
        ));
        assert_eq!(r.priority, 0);
        assert!(!r.replica_announced && r.loading);
        let ReportRole::Replica {
            sync_in_progress,
            link_down_since,
            ..
        } = r.role
        else {
            panic!("not a replica");
        };
        assert!(sync_in_progress);
        assert_eq!(link_down_since, Some(Duration::from_secs(12)));
    }

    #[test]
    fn malformed_replica_lines_are_skipped() {
        let text = "run_id:a\nrole:master\nmaster_replid:b\nmaster_repl_offset:0\n\
                    slave0:ip=10.0.0.1,port=0,state=online\nslave1:garbage\n\
                    slave2:ip=10.0.0.2,port=6380\nslaves_x:ip=1,port=2\n";
        let ReportRole::Master { replicas } = parse(text).role else {
            panic!("not a master");
        };
        assert_eq!(replicas.len(), 1);
        assert_eq!(replicas[0].addr, NodeAddr::new("10.0.0.2", 6380));
        assert_eq!(replicas[0].state, "");
    }

    #[test]
    fn reports_missing_essential_fields_are_errors() {
        let cases = [
            "",
            "garbage without colons",
            "role:master\nmaster_replid:b\nmaster_repl_offset:0\n",
            "run_id:a\nmaster_replid:b\nmaster_repl_offset:0\n",
            "run_id:a\nrole:sentinel\nmaster_replid:b\nmaster_repl_offset:0\n",
            "run_id:a\nrole:master\nmaster_replid:b\nmaster_repl_offset:-5\n",
            "run_id:a\nrole:master\nmaster_replid:b\nmaster_repl_offset:x\n",
            "run_id:a\nrole:slave\nmaster_replid:b\nmaster_repl_offset:0\nmaster_host:h\n",
            "run_id:a\nrole:slave\nmaster_replid:b\nmaster_repl_offset:0\n\
             master_host:h\nmaster_port:99999\n",
        ];
        for text in cases {
            assert!(
                matches!(NodeReport::parse(text), Err(BackendError::Protocol(_))),
                "{text:?}"
            );
        }
    }

    #[test]
    fn a_full_node_table_gives_none() {
        let mut nodes = NodeTable::default();
        for i in 0..crate::nodes::MAX_NODES {
            assert!(nodes.intern(&NodeAddr::new(format!("h{i}"), 1)).is_some());
        }
        let r = parse(REDIS_REPLICA);
        assert_eq!(r.to_core(&mut nodes), None);
    }
}
