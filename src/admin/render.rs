//! What `vigil admin` prints: tables and lines for people, JSON for scripts.
//!
//! Every function here is pure (messages in, text or JSON out), so the exact output is
//! snapshot-tested without a sentinel. Text always ends with a newline; table cells are padded
//! to the widest cell of their column and lines carry no trailing spaces.

use serde_json::{Value, json};
use vigil_proto::control::{
    AdminResponse, CheckQuorumResponse, Event, GroupStatus, MasterChanged, MasterInfo,
    ReplicaStatus, SentinelStatus,
};

/// `status`: every group with its replicas, then a line counting the sentinels.
pub fn render_status(groups: &[GroupStatus], sentinels: &[SentinelStatus]) -> String {
    let mut out = String::new();
    if groups.is_empty() {
        out.push_str("no groups\n");
    } else {
        let mut rows = Vec::new();
        for g in groups {
            let flags = flags(&g.flags);
            let epoch = g.config_epoch.to_string();
            let head = [g.name.clone(), g.master.clone(), epoch, flags];
            if g.replicas.is_empty() {
                let mut row = head.to_vec();
                row.extend(["-", "-", "-"].map(String::from));
                rows.push(row);
                continue;
            }
            for (i, r) in g.replicas.iter().enumerate() {
                // The group's own cells are printed once, on its first replica's row.
                let mut row = if i == 0 {
                    head.to_vec()
                } else {
                    vec![String::new(); head.len()]
                };
                row.extend([r.addr.clone(), r.lag_bytes.to_string(), replica_link(r)]);
                rows.push(row);
            }
        }
        let headers = [
            "GROUP", "MASTER", "EPOCH", "FLAGS", "REPLICA", "LAG", "LINK",
        ];
        out.push_str(&table(Some(&headers), &rows));
    }
    let connected = sentinels.iter().filter(|s| s.connected).count();
    out.push_str(&format!(
        "\nsentinels: {} ({connected} connected)\n",
        sentinels.len()
    ));
    out
}

/// `groups`: one line per group.
pub fn render_groups(groups: &[GroupStatus]) -> String {
    if groups.is_empty() {
        return "no groups\n".to_string();
    }
    let rows: Vec<Vec<String>> = groups
        .iter()
        .map(|g| {
            vec![
                g.name.clone(),
                g.master.clone(),
                format!("epoch={}", g.config_epoch),
                format!("quorum={}", g.quorum),
                format!("replicas={}", g.replicas.len()),
                format!("flags={}", flags(&g.flags)),
            ]
        })
        .collect();
    table(None, &rows)
}

/// `group NAME`: every field, then a table of the replicas.
pub fn render_group(g: &GroupStatus) -> String {
    let fields = [
        ("group", g.name.clone()),
        ("master", g.master.clone()),
        ("master-offset", g.master_offset.to_string()),
        ("config-epoch", g.config_epoch.to_string()),
        ("term", g.term.to_string()),
        ("flags", flags(&g.flags)),
        ("quorum", g.quorum.to_string()),
        ("sentinels", g.sentinels.to_string()),
        ("down-after-ms", g.down_after_ms.to_string()),
        ("failover-timeout-ms", g.failover_timeout_ms.to_string()),
        ("parallel-syncs", g.parallel_syncs.to_string()),
    ];
    let rows: Vec<Vec<String>> = fields
        .into_iter()
        .map(|(k, v)| vec![k.to_string(), v])
        .collect();
    let mut out = table(None, &rows);
    out.push('\n');
    if g.replicas.is_empty() {
        out.push_str("no replicas\n");
        return out;
    }
    let rows: Vec<Vec<String>> = g
        .replicas
        .iter()
        .map(|r| {
            vec![
                r.addr.clone(),
                r.offset.to_string(),
                r.lag_bytes.to_string(),
                replica_link(r),
                dash_if_empty(&r.dc),
                r.priority.to_string(),
            ]
        })
        .collect();
    let headers = ["REPLICA", "OFFSET", "LAG", "LINK", "DC", "PRIORITY"];
    out.push_str(&table(Some(&headers), &rows));
    out
}

/// `sentinels`: one row per known sentinel.
pub fn render_sentinels(sentinels: &[SentinelStatus]) -> String {
    if sentinels.is_empty() {
        return "no sentinels\n".to_string();
    }
    let rows: Vec<Vec<String>> = sentinels
        .iter()
        .map(|s| {
            vec![
                s.id.to_string(),
                s.name.clone(),
                s.addr.clone(),
                yes_no(s.connected),
                yes_no(s.voter),
                yes_no(s.myself),
            ]
        })
        .collect();
    let headers = ["ID", "NAME", "ADDR", "CONNECTED", "VOTER", "SELF"];
    table(Some(&headers), &rows)
}

/// `master NAME`: the address and the config epoch.
pub fn render_master(m: &MasterInfo) -> String {
    format!("{} epoch={}\n", m.addr, m.config_epoch)
}

/// `ckquorum NAME`: `OK` or `NOQUORUM`, then the sentinel's explanation.
pub fn render_ckquorum(r: &CheckQuorumResponse) -> String {
    let verdict = if r.ok { "OK" } else { "NOQUORUM" };
    let message = if r.message.is_empty() {
        format!(
            "{} usable sentinels, quorum {}, majority {}",
            r.usable, r.quorum, r.majority
        )
    } else {
        r.message.clone()
    };
    format!("{verdict}: {message}\n")
}

/// An admin action's answer: the sentinel's message, or `OK` when it sent none.
pub fn render_admin(r: &AdminResponse) -> String {
    if r.message.is_empty() {
        return "OK\n".to_string();
    }
    format!("{}\n", r.message)
}

/// One `watch` line for an event: `HH:MM:SS.mmm <channel> <payload>`, with the time in UTC.
///
/// `at_unix_ms` is the event's time (the caller substitutes the local clock when the sentinel
/// sent none). With `color`, the time is dimmed and the channel coloured by what it means.
pub fn render_event(e: &Event, at_unix_ms: u64, color: bool) -> String {
    watch_line(at_unix_ms, &e.channel, &e.payload, color)
}

/// One `watch --masters` line: channel `master` for the current master a stream starts with,
/// `master-changed` for a change, and `<group> <addr> epoch=<n> by=<sentinel>` as the payload.
pub fn render_master_change(m: &MasterChanged, at_unix_ms: u64, color: bool) -> String {
    let channel = if m.initial {
        "master"
    } else {
        "master-changed"
    };
    let mut payload = format!("{} {} epoch={}", m.group, m.addr, m.config_epoch);
    if !m.reported_by.is_empty() {
        payload.push_str(&format!(" by={}", m.reported_by));
    }
    watch_line(at_unix_ms, channel, &payload, color)
}

/// `status --json`.
pub fn status_json(groups: &[GroupStatus], sentinels: &[SentinelStatus]) -> Value {
    json!({
        "groups": groups.iter().map(group_json).collect::<Vec<_>>(),
        "sentinels": sentinels.iter().map(sentinel_json).collect::<Vec<_>>(),
        "sentinels_connected": sentinels.iter().filter(|s| s.connected).count(),
    })
}

/// `groups --json`.
pub fn groups_json(groups: &[GroupStatus]) -> Value {
    json!({ "groups": groups.iter().map(group_json).collect::<Vec<_>>() })
}

/// One group, every field (`group NAME --json`).
pub fn group_json(g: &GroupStatus) -> Value {
    json!({
        "name": g.name,
        "master": g.master,
        "master_offset": g.master_offset,
        "config_epoch": g.config_epoch,
        "term": g.term,
        "flags": g.flags,
        "quorum": g.quorum,
        "sentinels": g.sentinels,
        "down_after_ms": g.down_after_ms,
        "failover_timeout_ms": g.failover_timeout_ms,
        "parallel_syncs": g.parallel_syncs,
        "replicas": g.replicas.iter().map(replica_json).collect::<Vec<_>>(),
    })
}

/// `sentinels --json`.
pub fn sentinels_json(sentinels: &[SentinelStatus]) -> Value {
    json!({ "sentinels": sentinels.iter().map(sentinel_json).collect::<Vec<_>>() })
}

/// `master NAME --json`.
pub fn master_json(m: &MasterInfo) -> Value {
    json!({ "group": m.group, "addr": m.addr, "config_epoch": m.config_epoch })
}

/// `ckquorum NAME --json`.
pub fn ckquorum_json(r: &CheckQuorumResponse) -> Value {
    json!({
        "ok": r.ok,
        "usable": r.usable,
        "quorum": r.quorum,
        "majority": r.majority,
        "message": r.message,
    })
}

/// An admin action's answer, `--json`.
pub fn admin_json(r: &AdminResponse) -> Value {
    json!({ "ok": true, "message": r.message })
}

/// One `watch --json` line for an event.
pub fn event_json(e: &Event, at_unix_ms: u64) -> Value {
    json!({
        "type": "event",
        "time": clock(at_unix_ms),
        "at_unix_ms": at_unix_ms,
        "channel": e.channel,
        "payload": e.payload,
        "group": e.group,
        "reported_by": e.reported_by,
    })
}

/// One `watch --masters --json` line.
pub fn master_change_json(m: &MasterChanged, at_unix_ms: u64) -> Value {
    json!({
        "type": "master",
        "time": clock(at_unix_ms),
        "at_unix_ms": at_unix_ms,
        "group": m.group,
        "addr": m.addr,
        "config_epoch": m.config_epoch,
        "reported_by": m.reported_by,
        "initial": m.initial,
    })
}

/// `HH:MM:SS.mmm` of a Unix time in milliseconds, in UTC.
pub fn clock(at_unix_ms: u64) -> String {
    let ms = at_unix_ms % 1000;
    let secs = (at_unix_ms / 1000) % 86_400;
    format!(
        "{:02}:{:02}:{:02}.{ms:03}",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

fn watch_line(at_unix_ms: u64, channel: &str, payload: &str, color: bool) -> String {
    let time = clock(at_unix_ms);
    let mut line = if color {
        let code = channel_color(channel);
        format!("{DIM}{time}{RESET} {code}{channel}{RESET}")
    } else {
        format!("{time} {channel}")
    };
    if !payload.is_empty() {
        line.push(' ');
        line.push_str(payload);
    }
    line.push('\n');
    line
}

/// Red for trouble starting, green for trouble ending, yellow for a new master, cyan otherwise.
fn channel_color(channel: &str) -> &'static str {
    const RED: &str = "\x1b[31m";
    const GREEN: &str = "\x1b[32m";
    const YELLOW: &str = "\x1b[1;33m";
    const CYAN: &str = "\x1b[36m";
    match channel {
        "+sdown"
        | "+odown"
        | "+failover-state-select-slave"
        | "-failover-abort-not-elected"
        | "-failover-abort-no-good-slave"
        | "+failover-end-for-timeout"
        | "+tilt" => RED,
        "-sdown" | "-odown" | "-tilt" | "+failover-end" => GREEN,
        "+switch-master" | "master" | "master-changed" | "+promoted-slave" | "+elected-leader" => {
            YELLOW
        }
        c if c.contains("abort") || c.contains("fenced") => RED,
        _ => CYAN,
    }
}

const DIM: &str = "\x1b[2m";
const RESET: &str = "\x1b[0m";

fn replica_json(r: &ReplicaStatus) -> Value {
    json!({
        "addr": r.addr,
        "down": r.down,
        "offset": r.offset,
        "lag_bytes": r.lag_bytes,
        "dc": r.dc,
        "link": r.link,
        "priority": r.priority,
    })
}

fn sentinel_json(s: &SentinelStatus) -> Value {
    json!({
        "id": s.id,
        "name": s.name,
        "addr": s.addr,
        "connected": s.connected,
        "voter": s.voter,
        "self": s.myself,
    })
}

/// The replica's link to its master, with `s_down` appended when this sentinel sees it down.
fn replica_link(r: &ReplicaStatus) -> String {
    let link = dash_if_empty(&r.link);
    if r.down {
        return format!("{link},s_down");
    }
    link
}

fn flags(flags: &[String]) -> String {
    if flags.is_empty() {
        return "-".to_string();
    }
    flags.join(",")
}

fn dash_if_empty(s: &str) -> String {
    if s.is_empty() {
        return "-".to_string();
    }
    s.to_string()
}

fn yes_no(b: bool) -> String {
    if b { "yes" } else { "no" }.to_string()
}

/// Left-aligned columns two spaces apart; `headers`, when given, is the first line.
fn table(headers: Option<&[&str]>, rows: &[Vec<String>]) -> String {
    let columns = rows
        .iter()
        .map(Vec::len)
        .chain(headers.map(<[&str]>::len))
        .max()
        .unwrap_or(0);
    let mut widths = vec![0; columns];
    let header_cells = headers.unwrap_or(&[]).iter().copied();
    let cells = rows
        .iter()
        .flat_map(|r| r.iter().map(String::as_str).enumerate());
    for (i, cell) in header_cells.enumerate().chain(cells) {
        widths[i] = widths[i].max(cell.chars().count());
    }
    let mut out = String::new();
    if let Some(h) = headers {
        table_line(&widths, h.iter().copied(), &mut out);
    }
    for row in rows {
        table_line(&widths, row.iter().map(String::as_str), &mut out);
    }
    out
}

fn table_line<'a>(widths: &[usize], cells: impl Iterator<Item = &'a str>, out: &mut String) {
    let mut line = String::new();
    for (i, cell) in cells.enumerate() {
        if i > 0 {
            line.push_str("  ");
        }
        line.push_str(cell);
        let pad = widths[i].saturating_sub(cell.chars().count());
        line.extend(std::iter::repeat_n(' ', pad));
    }
    out.push_str(line.trim_end());
    out.push('\n');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn replica(addr: &str, lag: u64, link: &str, down: bool) -> ReplicaStatus {
        ReplicaStatus {
            addr: addr.to_string(),
            down,
            offset: 5000 - lag,
            lag_bytes: lag,
            dc: String::new(),
            link: link.to_string(),
            priority: 100,
        }
    }

    fn groups() -> Vec<GroupStatus> {
        vec![
            GroupStatus {
                name: "mymaster".to_string(),
                master: "127.0.0.1:6379".to_string(),
                config_epoch: 3,
                term: 4,
                quorum: 2,
                replicas: vec![
                    replica("127.0.0.1:6380", 0, "up", false),
                    replica("127.0.0.1:6381", 1200, "connecting", true),
                ],
                flags: vec![],
                down_after_ms: 1000,
                failover_timeout_ms: 10000,
                parallel_syncs: 1,
                sentinels: 3,
                master_offset: 5000,
            },
            GroupStatus {
                name: "cache".to_string(),
                master: "10.0.0.7:7000".to_string(),
                config_epoch: 12,
                term: 12,
                quorum: 1,
                replicas: vec![],
                flags: vec!["s_down".to_string(), "paused".to_string()],
                down_after_ms: 5000,
                failover_timeout_ms: 60000,
                parallel_syncs: 2,
                sentinels: 3,
                master_offset: 0,
            },
        ]
    }

    fn sentinels() -> Vec<SentinelStatus> {
        let s = |id: u32, name: &str, port: u16, connected: bool, voter: bool, myself: bool| {
            SentinelStatus {
                id,
                name: name.to_string(),
                addr: format!("127.0.0.1:{port}"),
                connected,
                voter,
                myself,
                ..SentinelStatus::default()
            }
        };
        vec![
            s(1, "s1", 26379, true, true, true),
            s(2, "s2", 26380, true, true, false),
            s(3, "s3", 26381, false, true, false),
        ]
    }

    #[test]
    fn status_is_a_table_of_groups_and_replicas() {
        let expected = "\
GROUP     MASTER          EPOCH  FLAGS          REPLICA         LAG   LINK
mymaster  127.0.0.1:6379  3      -              127.0.0.1:6380  0     up
                                                127.0.0.1:6381  1200  connecting,s_down
cache     10.0.0.7:7000   12     s_down,paused  -               -     -

sentinels: 3 (2 connected)
";
        assert_eq!(render_status(&groups(), &sentinels()), expected);
    }

    #[test]
    fn status_without_groups_says_so() {
        assert_eq!(
            render_status(&[], &sentinels()[..1]),
            "no groups\n\nsentinels: 1 (1 connected)\n"
        );
    }

    #[test]
    fn groups_print_one_line_each() {
        let expected = "\
mymaster  127.0.0.1:6379  epoch=3   quorum=2  replicas=2  flags=-
cache     10.0.0.7:7000   epoch=12  quorum=1  replicas=0  flags=s_down,paused
";
        assert_eq!(render_groups(&groups()), expected);
    }

    #[test]
    fn group_details_list_every_field_and_replica() {
        let expected = "\
group                mymaster
master               127.0.0.1:6379
master-offset        5000
config-epoch         3
term                 4
flags                -
quorum               2
sentinels            3
down-after-ms        1000
failover-timeout-ms  10000
parallel-syncs       1

REPLICA         OFFSET  LAG   LINK               DC  PRIORITY
127.0.0.1:6380  5000    0     up                 -   100
127.0.0.1:6381  3800    1200  connecting,s_down  -   100
";
        assert_eq!(render_group(&groups()[0]), expected);
        assert!(render_group(&groups()[1]).ends_with("\nno replicas\n"));
    }

    #[test]
    fn sentinels_are_a_table() {
        let expected = "\
ID  NAME  ADDR             CONNECTED  VOTER  SELF
1   s1    127.0.0.1:26379  yes        yes    yes
2   s2    127.0.0.1:26380  yes        yes    no
3   s3    127.0.0.1:26381  no         yes    no
";
        assert_eq!(render_sentinels(&sentinels()), expected);
        assert_eq!(render_sentinels(&[]), "no sentinels\n");
    }

    #[test]
    fn watch_lines_without_a_terminal_are_plain() {
        // 2026-11-24 12:03:04.005 UTC.
        let at = 1_795_521_784_005;
        let e = Event {
            channel: "+switch-master".to_string(),
            payload: "mymaster 127.0.0.1 6379 127.0.0.1 6380".to_string(),
            group: "mymaster".to_string(),
            at_unix_ms: at,
            reported_by: "s1".to_string(),
        };
        assert_eq!(
            render_event(&e, at, false),
            "12:03:04.005 +switch-master mymaster 127.0.0.1 6379 127.0.0.1 6380\n"
        );
        let m = MasterChanged {
            group: "mymaster".to_string(),
            addr: "127.0.0.1:6380".to_string(),
            config_epoch: 4,
            reported_by: "s2".to_string(),
            at_unix_ms: at,
            initial: false,
        };
        assert_eq!(
            render_master_change(&m, at, false),
            "12:03:04.005 master-changed mymaster 127.0.0.1:6380 epoch=4 by=s2\n"
        );
        let first = MasterChanged {
            initial: true,
            reported_by: String::new(),
            ..m
        };
        assert_eq!(
            render_master_change(&first, at, false),
            "12:03:04.005 master mymaster 127.0.0.1:6380 epoch=4\n"
        );
    }

    #[test]
    fn watch_lines_on_a_terminal_are_coloured() {
        let e = Event {
            channel: "+sdown".to_string(),
            payload: "master mymaster 127.0.0.1 6379".to_string(),
            ..Event::default()
        };
        assert_eq!(
            render_event(&e, 0, true),
            "\x1b[2m00:00:00.000\x1b[0m \x1b[31m+sdown\x1b[0m master mymaster 127.0.0.1 6379\n"
        );
    }

    #[test]
    fn clock_is_utc_time_of_day_with_milliseconds() {
        assert_eq!(clock(0), "00:00:00.000");
        assert_eq!(clock(86_399_999), "23:59:59.999");
        assert_eq!(clock(86_400_000 + 3_723_045), "01:02:03.045");
    }

    #[test]
    fn ckquorum_and_admin_answers_are_one_line() {
        let mut r = CheckQuorumResponse {
            ok: true,
            usable: 3,
            quorum: 2,
            majority: 2,
            message: String::new(),
        };
        assert_eq!(
            render_ckquorum(&r),
            "OK: 3 usable sentinels, quorum 2, majority 2\n"
        );
        r.ok = false;
        r.message = "1 usable sentinel, 2 needed".to_string();
        assert_eq!(
            render_ckquorum(&r),
            "NOQUORUM: 1 usable sentinel, 2 needed\n"
        );
        let a = AdminResponse {
            message: "failover of 'mymaster' started".to_string(),
        };
        assert_eq!(render_admin(&a), "failover of 'mymaster' started\n");
        assert_eq!(render_admin(&AdminResponse::default()), "OK\n");
    }

    /// JSON goes through text and back, as a script would read it.
    fn reparse(v: &Value) -> Value {
        serde_json::from_str(&v.to_string()).expect("valid JSON")
    }

    #[test]
    fn status_json_has_every_group_replica_and_sentinel() {
        let v = reparse(&status_json(&groups(), &sentinels()));
        assert_eq!(v["groups"].as_array().map(Vec::len), Some(2));
        let g = &v["groups"][0];
        assert_eq!(g["name"], "mymaster");
        assert_eq!(g["master"], "127.0.0.1:6379");
        assert_eq!(g["config_epoch"], 3);
        assert_eq!(g["flags"], json!([]));
        assert_eq!(g["replicas"][1]["addr"], "127.0.0.1:6381");
        assert_eq!(g["replicas"][1]["lag_bytes"], 1200);
        assert_eq!(g["replicas"][1]["link"], "connecting");
        assert_eq!(g["replicas"][1]["down"], true);
        assert_eq!(v["groups"][1]["flags"], json!(["s_down", "paused"]));
        assert_eq!(v["sentinels"].as_array().map(Vec::len), Some(3));
        assert_eq!(v["sentinels"][0]["self"], true);
        assert_eq!(v["sentinels"][2]["connected"], false);
        assert_eq!(v["sentinels_connected"], 2);
    }

    #[test]
    fn other_json_outputs_carry_every_field() {
        let v = reparse(&groups_json(&groups()));
        assert_eq!(v["groups"][1]["name"], "cache");
        let v = reparse(&group_json(&groups()[0]));
        assert_eq!(v["down_after_ms"], 1000);
        assert_eq!(v["parallel_syncs"], 1);
        let v = reparse(&sentinels_json(&sentinels()));
        assert_eq!(v["sentinels"][1]["name"], "s2");
        assert_eq!(v["sentinels"][1]["voter"], true);
        let m = MasterInfo {
            group: "g".to_string(),
            addr: "h:1".to_string(),
            config_epoch: 9,
        };
        assert_eq!(
            reparse(&master_json(&m)),
            json!({"group": "g", "addr": "h:1", "config_epoch": 9})
        );
        let r = CheckQuorumResponse {
            ok: false,
            usable: 1,
            quorum: 2,
            majority: 2,
            message: "no".to_string(),
        };
        assert_eq!(
            reparse(&ckquorum_json(&r)),
            json!({"ok": false, "usable": 1, "quorum": 2, "majority": 2, "message": "no"})
        );
        let a = AdminResponse {
            message: "paused".to_string(),
        };
        assert_eq!(
            reparse(&admin_json(&a)),
            json!({"ok": true, "message": "paused"})
        );
    }

    #[test]
    fn watch_json_is_one_object_per_event() {
        let e = Event {
            channel: "+odown".to_string(),
            payload: "master g 127.0.0.1 6379 #quorum 2/2".to_string(),
            group: "g".to_string(),
            at_unix_ms: 1_000,
            reported_by: "s3".to_string(),
        };
        let line = event_json(&e, 1_000).to_string();
        assert!(!line.contains('\n'));
        let v: Value = serde_json::from_str(&line).expect("valid JSON");
        assert_eq!(
            v,
            json!({
                "type": "event",
                "time": "00:00:01.000",
                "at_unix_ms": 1000,
                "channel": "+odown",
                "payload": "master g 127.0.0.1 6379 #quorum 2/2",
                "group": "g",
                "reported_by": "s3",
            })
        );
        let m = MasterChanged {
            group: "g".to_string(),
            addr: "127.0.0.1:6380".to_string(),
            config_epoch: 2,
            reported_by: "s1".to_string(),
            at_unix_ms: 2_000,
            initial: true,
        };
        let v = reparse(&master_change_json(&m, 2_000));
        assert_eq!(v["type"], "master");
        assert_eq!(v["addr"], "127.0.0.1:6380");
        assert_eq!(v["config_epoch"], 2);
        assert_eq!(v["initial"], true);
        assert_eq!(v["time"], "00:00:02.000");
    }
}
