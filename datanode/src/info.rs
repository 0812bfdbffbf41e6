//! `INFO`: Redis' sections and field names, so tools written for Redis read them unchanged.

use std::fmt::Write as _;
use std::sync::atomic::Ordering;

use bytes::Bytes;

use crate::server::{Shared, unix_ms};
use crate::session::REDIS_VERSION;

const DEFAULT: &[&str] = &[
    "server",
    "clients",
    "memory",
    "persistence",
    "stats",
    "replication",
    "cpu",
    "keyspace",
];

/// Renders the sections `args` asks for (`default`, `all`, `everything` or section names).
pub fn render(shared: &Shared, args: &[Bytes]) -> String {
    let wanted: Vec<String> = if args.is_empty() {
        DEFAULT.iter().map(|s| s.to_string()).collect()
    } else {
        args.iter()
            .map(|a| String::from_utf8_lossy(a).to_ascii_lowercase())
            .flat_map(|a| match a.as_str() {
                "default" | "all" | "everything" => {
                    DEFAULT.iter().map(|s| s.to_string()).collect::<Vec<_>>()
                }
                _ => vec![a],
            })
            .collect()
    };
    let mut out = String::new();
    for section in DEFAULT {
        if !wanted.iter().any(|w| w == section) {
            continue;
        }
        if !out.is_empty() {
            out.push_str("\r\n");
        }
        let _ = match *section {
            "server" => server(shared, &mut out),
            "clients" => clients(shared, &mut out),
            "memory" => memory(shared, &mut out),
            "persistence" => persistence(shared, &mut out),
            "stats" => stats(shared, &mut out),
            "replication" => replication(shared, &mut out),
            "cpu" => cpu(&mut out),
            _ => keyspace(shared, &mut out),
        };
    }
    out
}

type R = std::fmt::Result;

fn server(s: &Shared, o: &mut String) -> R {
    let up = s.started.elapsed().as_secs();
    let cfg = s.config();
    writeln!(o, "# Server\r")?;
    writeln!(o, "redis_version:{REDIS_VERSION}\r")?;
    writeln!(o, "vigil_version:{}\r", env!("CARGO_PKG_VERSION"))?;
    writeln!(o, "redis_mode:standalone\r")?;
    writeln!(
        o,
        "os:{} {}\r",
        std::env::consts::OS,
        std::env::consts::ARCH
    )?;
    writeln!(o, "arch_bits:64\r")?;
    writeln!(o, "multiplexing_api:epoll\r")?;
    writeln!(o, "process_id:{}\r", std::process::id())?;
    writeln!(o, "run_id:{}\r", s.run_id)?;
    if !cfg.dc.is_empty() {
        writeln!(o, "vigil_dc:{}\r", cfg.dc)?;
    }
    writeln!(o, "tcp_port:{}\r", s.addr.port())?;
    writeln!(o, "server_time_usec:{}\r", unix_ms() * 1000)?;
    writeln!(o, "uptime_in_seconds:{up}\r")?;
    writeln!(o, "uptime_in_days:{}\r", up / 86400)?;
    writeln!(o, "hz:{}\r", cfg.hz)?;
    writeln!(o, "configured_hz:{}\r", cfg.hz)?;
    writeln!(
        o,
        "executable:{}\r",
        std::env::current_exe()
            .map(|p| p.display().to_string())
            .unwrap_or_default()
    )?;
    writeln!(o, "config_file:\r")
}

fn clients(s: &Shared, o: &mut String) -> R {
    let clients = s.clients();
    let blocked = clients
        .values()
        .filter(|c| c.info.lock().map(|i| i.blocked).unwrap_or(false))
        .count();
    let pubsub = clients
        .values()
        .filter(|c| c.info.lock().map(|i| i.subscriptions > 0).unwrap_or(false))
        .count();
    writeln!(o, "# Clients\r")?;
    writeln!(o, "connected_clients:{}\r", clients.len())?;
    writeln!(o, "cluster_connections:0\r")?;
    writeln!(o, "maxclients:{}\r", s.config().maxclients)?;
    writeln!(o, "client_recent_max_input_buffer:0\r")?;
    writeln!(o, "client_recent_max_output_buffer:0\r")?;
    writeln!(o, "blocked_clients:{blocked}\r")?;
    writeln!(o, "tracking_clients:0\r")?;
    writeln!(o, "pubsub_clients:{pubsub}\r")?;
    writeln!(o, "clients_in_timeout_table:{blocked}\r")
}

fn human(n: usize) -> String {
    let f = n as f64;
    if f >= 1024.0 * 1024.0 * 1024.0 {
        format!("{:.2}G", f / (1024.0 * 1024.0 * 1024.0))
    } else if f >= 1024.0 * 1024.0 {
        format!("{:.2}M", f / (1024.0 * 1024.0))
    } else if f >= 1024.0 {
        format!("{:.2}K", f / 1024.0)
    } else {
        format!("{n}B")
    }
}

fn memory(s: &Shared, o: &mut String) -> R {
    let used = crate::server::refresh_memory(s);
    let rss = s.runtime.rss.map_or(0, |f| f());
    let peak = s.peak_memory.load(Ordering::Relaxed);
    let cfg = s.config();
    writeln!(o, "# Memory\r")?;
    writeln!(o, "used_memory:{used}\r")?;
    writeln!(o, "used_memory_human:{}\r", human(used))?;
    writeln!(o, "used_memory_rss:{rss}\r")?;
    writeln!(o, "used_memory_rss_human:{}\r", human(rss))?;
    writeln!(o, "used_memory_peak:{peak}\r")?;
    writeln!(o, "used_memory_peak_human:{}\r", human(peak))?;
    writeln!(o, "maxmemory:{}\r", cfg.maxmemory)?;
    writeln!(o, "maxmemory_human:{}\r", human(cfg.maxmemory))?;
    writeln!(o, "maxmemory_policy:{}\r", cfg.maxmemory_policy.as_str())?;
    let frag = if used > 0 {
        rss as f64 / used as f64
    } else {
        0.0
    };
    writeln!(o, "mem_fragmentation_ratio:{frag:.2}\r")?;
    writeln!(o, "mem_allocator:jemalloc\r")
}

fn persistence(s: &Shared, o: &mut String) -> R {
    // Rendered by the persistence module, which owns these statuses.
    crate::persist::render_info(s, o)
}

fn stats(s: &Shared, o: &mut String) -> R {
    let st = &s.stats;
    let e = s.engine.stats();
    let (channels, patterns) = s.pubsub.counts();
    let g = |c: &std::sync::atomic::AtomicU64| c.load(Ordering::Relaxed);
    writeln!(o, "# Stats\r")?;
    writeln!(o, "total_connections_received:{}\r", g(&st.connections))?;
    writeln!(o, "total_commands_processed:{}\r", g(&st.commands))?;
    writeln!(o, "instantaneous_ops_per_sec:{}\r", g(&st.ops_per_sec))?;
    writeln!(o, "total_net_input_bytes:{}\r", g(&st.net_in))?;
    writeln!(o, "total_net_output_bytes:{}\r", g(&st.net_out))?;
    writeln!(o, "rejected_connections:{}\r", g(&st.rejected))?;
    writeln!(o, "expired_keys:{}\r", e.expired_keys)?;
    writeln!(o, "evicted_keys:{}\r", e.evicted_keys)?;
    writeln!(o, "keyspace_hits:{}\r", e.keyspace_hits)?;
    writeln!(o, "keyspace_misses:{}\r", e.keyspace_misses)?;
    writeln!(o, "pubsub_channels:{channels}\r")?;
    writeln!(o, "pubsub_patterns:{patterns}\r")?;
    let limit_kills = g(&st.output_limit_kills) + g(&s.pubsub.limit_kills);
    writeln!(
        o,
        "client_output_buffer_limit_disconnections:{limit_kills}\r"
    )?;
    let rs = &s.repl.stats;
    writeln!(o, "sync_full:{}\r", g(&rs.sync_full))?;
    writeln!(o, "sync_partial_ok:{}\r", g(&rs.sync_partial_ok))?;
    writeln!(o, "sync_partial_err:{}\r", g(&rs.sync_partial_err))?;
    writeln!(o, "total_error_replies:{}\r", g(&st.errors))
}

fn replication(s: &Shared, o: &mut String) -> R {
    let cfg = s.config().clone();
    s.repl.render_info(&cfg, o)?;
    // Write fencing, after Redis' own fields.
    let f = s.fencing.status();
    writeln!(o, "vigil_write_fencing:{}\r", f.mode.as_str())?;
    writeln!(o, "vigil_fencing_active:{}\r", u8::from(f.active))?;
    writeln!(o, "vigil_leases_valid:{}\r", f.valid)?;
    writeln!(o, "vigil_lease_majority:{}\r", f.majority)
}

fn cpu(o: &mut String) -> R {
    // utime and stime are fields 14 and 15 of /proc/self/stat, in clock ticks (100 per second).
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let tick = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
            / 100.0
    };
    writeln!(o, "# CPU\r")?;
    writeln!(o, "used_cpu_sys:{:.6}\r", tick(12))?;
    writeln!(o, "used_cpu_user:{:.6}\r", tick(11))
}

fn keyspace(s: &Shared, o: &mut String) -> R {
    writeln!(o, "# Keyspace\r")?;
    for db in 0..s.engine.databases() {
        let size = s.engine.db_size(db);
        if size.keys > 0 {
            writeln!(
                o,
                "db{db}:keys={},expires={},avg_ttl=0\r",
                size.keys, size.expires
            )?;
        }
    }
    Ok(())
}
