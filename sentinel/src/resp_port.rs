//! The RESP sentinel port: Redis Sentinel's commands and event channels over RESP2/RESP3, so
//! that redis-cli, redis-py's `Sentinel` and redis-rs' sentinel support work unchanged.
//!
//! Owns the TCP accept loop, one task per connection, and the reply shapes of `SENTINEL …`,
//! `INFO`, `ROLE` and pub/sub on event channels (`+switch-master`, `+sdown`, …).
//! Invariants: every request is size-limited by the RESP decoder; a bad request gets an error
//! reply and never disturbs other clients; a subscriber that does not read is dropped after a
//! bounded backlog (the broadcast buffer) or a write timeout, never stalling the sentinel.

use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::broadcast::error::RecvError;
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};
use vigil_proto::resp::{Frame, Limits, Protocol, RequestDecoder};

use crate::api::filter::Pattern;
use crate::core::AdminError;
use crate::core::{GroupName, Input};
use crate::daemon::{GroupSnapshot, Ports, ShellInput, Snapshot};
use crate::events::EventRecord;
use crate::group_admin::{AdminFailure, AdminRequest, submit};
use crate::nodes::NodeAddr;

/// Connections served at once; more are refused.
const MAX_CONNECTIONS: usize = 1024;
/// A subscriber whose socket accepts nothing for this long is dropped.
const WRITE_TIMEOUT: Duration = Duration::from_secs(5);

/// Serves the RESP sentinel port until `cancel`.
pub async fn serve(listener: TcpListener, ports: Ports, cancel: CancellationToken) {
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    loop {
        let accepted = tokio::select! {
            () = cancel.cancelled() => return,
            a = listener.accept() => a,
        };
        let (stream, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                warn!(error = %e, "RESP sentinel port accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            let mut s = stream;
            let _ = s.write_all(b"-ERR max number of clients reached\r\n").await;
            continue;
        };
        let _ = stream.set_nodelay(true);
        let ports = ports.clone();
        let cancel = cancel.clone();
        tokio::spawn(async move {
            if let Err(e) = Conn::new(stream, ports).run(cancel).await {
                debug!(%peer, error = %e, "RESP sentinel client closed");
            }
            drop(permit);
        });
    }
}

struct Conn {
    stream: TcpStream,
    ports: Ports,
    decoder: RequestDecoder,
    proto: Protocol,
    inbuf: BytesMut,
    out: BytesMut,
    channels: Vec<Bytes>,
    /// PSUBSCRIBE patterns, with their compiled (linear-time) matcher.
    patterns: Vec<(Bytes, Pattern)>,
}

impl Conn {
    fn new(stream: TcpStream, ports: Ports) -> Conn {
        let limits = Limits {
            max_bulk: 64 * 1024,
            max_multibulk: 1024,
            max_inline: 64 * 1024,
            ..Limits::default()
        };
        Conn {
            stream,
            ports,
            decoder: RequestDecoder::new(limits),
            proto: Protocol::Resp2,
            inbuf: BytesMut::with_capacity(4096),
            out: BytesMut::with_capacity(4096),
            channels: Vec::new(),
            patterns: Vec::new(),
        }
    }

    async fn run(mut self, cancel: CancellationToken) -> std::io::Result<()> {
        let mut events = self.ports.events.subscribe();
        loop {
            // Answer every complete request in the buffer.
            loop {
                match self.decoder.decode(&mut self.inbuf) {
                    Ok(Some(args)) => {
                        let subscribed = !self.channels.is_empty() || !self.patterns.is_empty();
                        if is_admin(&args) && !(subscribed && self.proto == Protocol::Resp2) {
                            // Waits for the sentinels' verdict; this connection alone waits.
                            self.admin(&args).await;
                            continue;
                        }
                        if !self.command(&args) {
                            self.flush().await?;
                            return Ok(());
                        }
                    }
                    Ok(None) => break,
                    Err(e) => {
                        let reply = Frame::error(format!("ERR Protocol error: {e}"));
                        reply.encode(self.proto, &mut self.out);
                        self.flush().await?;
                        return Ok(());
                    }
                }
            }
            self.flush().await?;
            let subscribed = !self.channels.is_empty() || !self.patterns.is_empty();
            tokio::select! {
                () = cancel.cancelled() => return Ok(()),
                n = self.stream.read_buf(&mut self.inbuf) => {
                    if n? == 0 {
                        return Ok(());
                    }
                }
                ev = events.recv(), if subscribed => match ev {
                    Ok(record) => self.deliver(&record),
                    Err(RecvError::Lagged(n)) => {
                        warn!(missed = n, "sentinel event subscriber too slow; dropped");
                        Frame::error("ERR subscriber too slow: events were dropped; reconnect")
                            .encode(self.proto, &mut self.out);
                        self.flush().await?;
                        return Ok(());
                    }
                    Err(RecvError::Closed) => return Ok(()),
                },
            }
        }
    }

    async fn flush(&mut self) -> std::io::Result<()> {
        if self.out.is_empty() {
            return Ok(());
        }
        match tokio::time::timeout(WRITE_TIMEOUT, self.stream.write_all(&self.out)).await {
            Ok(r) => r?,
            Err(_) => return Err(std::io::Error::other("write timed out")),
        }
        self.out.clear();
        Ok(())
    }

    fn reply(&mut self, f: Frame) {
        f.encode(self.proto, &mut self.out);
    }

    fn deliver(&mut self, r: &EventRecord) {
        let ch = r.channel.as_bytes();
        let payload = Frame::bulk(r.payload.as_bytes());
        if self.channels.iter().any(|c| c.as_ref() == ch) {
            self.reply(Frame::Push(vec![
                Frame::bulk(b"message"),
                Frame::bulk(ch),
                payload.clone(),
            ]));
        }
        let matching: Vec<Bytes> = self
            .patterns
            .iter()
            .filter(|(_, p)| p.matches(&r.channel))
            .map(|(raw, _)| raw.clone())
            .collect();
        for p in matching {
            self.reply(Frame::Push(vec![
                Frame::bulk(b"pmessage"),
                Frame::Bulk(p),
                Frame::bulk(ch),
                payload.clone(),
            ]));
        }
    }

    /// Answers one request; `false` closes the connection (QUIT).
    fn command(&mut self, args: &[Bytes]) -> bool {
        let Some(name) = args.first() else {
            return true;
        };
        let name = String::from_utf8_lossy(name).to_ascii_lowercase();
        let subscribed = !self.channels.is_empty() || !self.patterns.is_empty();
        if subscribed
            && self.proto == Protocol::Resp2
            && !matches!(
                name.as_str(),
                "subscribe" | "psubscribe" | "unsubscribe" | "punsubscribe" | "ping" | "quit"
            )
        {
            self.reply(Frame::error(format!(
                "ERR Can't execute '{name}': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context"
            )));
            return true;
        }
        let snap = self.ports.snapshot.borrow().clone();
        match name.as_str() {
            "ping" => {
                if subscribed && self.proto == Protocol::Resp2 {
                    self.reply(Frame::Array(vec![
                        Frame::bulk(b"pong"),
                        Frame::bulk(args.get(1).map(|a| a.as_ref()).unwrap_or(b"")),
                    ]));
                } else if let Some(msg) = args.get(1) {
                    self.reply(Frame::Bulk(msg.clone()));
                } else {
                    self.reply(Frame::Simple(Bytes::from_static(b"PONG")));
                }
            }
            "quit" => {
                self.reply(ok());
                return false;
            }
            "hello" => self.hello(args, &snap),
            "auth" => self.reply(Frame::error(
                "ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?",
            )),
            "client" => match args.get(1).map(|a| a.to_ascii_lowercase()) {
                Some(s) if s == b"setname" || s == b"setinfo" => self.reply(ok()),
                Some(s) if s == b"getname" => self.reply(Frame::Null),
                Some(s) if s == b"id" => self.reply(Frame::Integer(1)),
                _ => self.reply(Frame::error("ERR unknown subcommand or wrong number of arguments for 'client' command")),
            },
            "command" => self.reply(Frame::Array(Vec::new())),
            "role" => self.reply(Frame::Array(vec![
                Frame::bulk(b"sentinel"),
                Frame::Array(
                    snap.groups
                        .iter()
                        .map(|g| Frame::bulk(g.name.as_bytes()))
                        .collect(),
                ),
            ])),
            "info" => self.info(&snap),
            "subscribe" | "psubscribe" => {
                if args.len() < 2 {
                    self.reply(wrong_args(&name));
                    return true;
                }
                let pattern = name == "psubscribe";
                for ch in &args[1..] {
                    if pattern {
                        if !self.patterns.iter().any(|(p, _)| p == ch) && self.patterns.len() < 1024
                        {
                            let text = String::from_utf8_lossy(ch);
                            self.patterns.push((ch.clone(), Pattern::new(&text)));
                        }
                    } else if !self.channels.contains(ch) && self.channels.len() < 1024 {
                        self.channels.push(ch.clone());
                    }
                    let count = (self.channels.len() + self.patterns.len()) as i64;
                    self.reply(Frame::Push(vec![
                        Frame::bulk(name.as_bytes()),
                        Frame::Bulk(ch.clone()),
                        Frame::Integer(count),
                    ]));
                }
            }
            "unsubscribe" | "punsubscribe" => {
                let pattern = name == "punsubscribe";
                let gone: Vec<Bytes> = match (args.len() > 1, pattern) {
                    (true, _) => args[1..].to_vec(),
                    (false, true) => self.patterns.iter().map(|(p, _)| p.clone()).collect(),
                    (false, false) => self.channels.clone(),
                };
                if pattern {
                    self.patterns.retain(|(p, _)| !gone.contains(p));
                } else {
                    self.channels.retain(|c| !gone.contains(c));
                }
                for ch in gone {
                    let count = (self.channels.len() + self.patterns.len()) as i64;
                    self.reply(Frame::Push(vec![
                        Frame::bulk(name.as_bytes()),
                        Frame::Bulk(ch),
                        Frame::Integer(count),
                    ]));
                }
            }
            "sentinel" => self.sentinel(args, &snap),
            _ => {
                let shown: String = String::from_utf8_lossy(&args[0]).chars().take(128).collect();
                self.reply(Frame::error(format!("ERR unknown command '{shown}', with args beginning with: ")));
            }
        }
        true
    }

    fn hello(&mut self, args: &[Bytes], snap: &Snapshot) {
        if let Some(v) = args.get(1) {
            match v.as_ref() {
                b"2" => self.proto = Protocol::Resp2,
                b"3" => self.proto = Protocol::Resp3,
                _ => {
                    self.reply(Frame::error("NOPROTO unsupported protocol version"));
                    return;
                }
            }
        }
        let proto = if self.proto == Protocol::Resp3 { 3 } else { 2 };
        self.reply(Frame::Map(vec![
            (Frame::bulk(b"server"), Frame::bulk(b"redis")),
            (Frame::bulk(b"version"), Frame::bulk(b"7.0.15")),
            (Frame::bulk(b"proto"), Frame::Integer(proto)),
            (Frame::bulk(b"id"), Frame::Integer(i64::from(snap.id))),
            (Frame::bulk(b"mode"), Frame::bulk(b"sentinel")),
            (Frame::bulk(b"role"), Frame::bulk(b"master")),
            (Frame::bulk(b"modules"), Frame::Array(Vec::new())),
        ]));
    }

    fn info(&mut self, snap: &Snapshot) {
        let mut s = String::from(
            "# Server\r\nredis_mode:sentinel\r\nvigil_sentinel:1\r\n\r\n# Sentinel\r\n",
        );
        s.push_str(&format!(
            "sentinel_masters:{}\r\nsentinel_tilt:0\r\nsentinel_running_scripts:0\r\nsentinel_scripts_queue_length:0\r\n",
            snap.groups.len()
        ));
        for (i, g) in snap.groups.iter().enumerate() {
            let status = if g.odown {
                "odown"
            } else if g.master_down {
                "sdown"
            } else {
                "ok"
            };
            s.push_str(&format!(
                "master{i}:name={},status={status},address={},slaves={},sentinels={}\r\n",
                g.name,
                g.master,
                g.replicas.len(),
                snap.voters.len()
            ));
        }
        self.reply(Frame::Verbatim {
            format: *b"txt",
            text: Bytes::from(s),
        });
    }

    /// `SENTINEL MONITOR|REMOVE|SET|RESET`: agreed by the sentinels through a term, answered
    /// once a majority holds the change.
    async fn admin(&mut self, args: &[Bytes]) {
        let arg = |i: usize| {
            args.get(i)
                .map(|a| String::from_utf8_lossy(a).into_owned())
                .unwrap_or_default()
        };
        let sub = arg(1).to_ascii_lowercase();
        let name = arg(2);
        let reply = match sub.as_str() {
            "monitor" => {
                if args.len() != 6 {
                    self.reply(wrong_args("sentinel monitor"));
                    return;
                }
                let Ok(port) = arg(4).parse::<u16>() else {
                    self.reply(Frame::error("ERR Invalid port number"));
                    return;
                };
                let quorum = match arg(5).parse::<i64>() {
                    Ok(q) if q >= 1 => u8::try_from(q).unwrap_or(u8::MAX),
                    _ => {
                        self.reply(Frame::error("ERR Quorum must be 1 or greater."));
                        return;
                    }
                };
                let master = match format!("{}:{port}", arg(3)).parse::<NodeAddr>() {
                    Ok(m) if port != 0 => m,
                    _ => {
                        self.reply(Frame::error("ERR Invalid IP address or hostname specified"));
                        return;
                    }
                };
                submit(&self.ports, &name, AdminRequest::Monitor { master, quorum })
                    .await
                    .map(|_| ok())
            }
            "remove" => {
                if args.len() != 3 {
                    self.reply(wrong_args("sentinel remove"));
                    return;
                }
                submit(&self.ports, &name, AdminRequest::Remove)
                    .await
                    .map(|_| ok())
            }
            "set" => {
                if args.len() < 5 || args.len() % 2 == 0 {
                    self.reply(wrong_args("sentinel set"));
                    return;
                }
                let options = (3..args.len())
                    .step_by(2)
                    .map(|i| (arg(i), arg(i + 1)))
                    .collect();
                submit(&self.ports, &name, AdminRequest::Set { options })
                    .await
                    .map(|_| ok())
            }
            _ => {
                // RESET <pattern>: the number of groups reset.
                if args.len() != 3 {
                    self.reply(wrong_args("sentinel reset"));
                    return;
                }
                let pattern = Pattern::new(&name);
                let names: Vec<String> = self
                    .ports
                    .snapshot
                    .borrow()
                    .groups
                    .iter()
                    .filter(|g| pattern.matches(&g.name))
                    .map(|g| g.name.clone())
                    .collect();
                let mut done = 0;
                let mut failed = None;
                for g in &names {
                    match submit(&self.ports, g, AdminRequest::Reset).await {
                        Ok(_) => done += 1,
                        Err(e) => failed = Some(e),
                    }
                }
                match failed {
                    Some(e) if done == 0 => Err(e),
                    _ => Ok(Frame::Integer(done)),
                }
            }
        };
        let frame = match reply {
            Ok(f) => f,
            Err(AdminFailure::Core(AdminError::Exists(_))) => {
                Frame::error("ERR Duplicated master name")
            }
            Err(AdminFailure::Core(AdminError::Unknown(_))) => no_such_master(),
            Err(AdminFailure::Core(AdminError::Busy(_))) => {
                Frame::error("INPROG Failover or another change in progress")
            }
            Err(e) => Frame::error(format!("ERR {e}")),
        };
        self.reply(frame);
    }

    fn sentinel(&mut self, args: &[Bytes], snap: &Snapshot) {
        let Some(sub) = args.get(1) else {
            self.reply(wrong_args("sentinel"));
            return;
        };
        let sub = String::from_utf8_lossy(sub).to_ascii_lowercase();
        let arg = |i: usize| args.get(i).map(|a| String::from_utf8_lossy(a).into_owned());
        let group = |snap: &Snapshot, name: &Option<String>| -> Option<GroupSnapshot> {
            let name = name.as_ref()?;
            snap.groups.iter().find(|g| g.name == *name).cloned()
        };
        match sub.as_str() {
            "get-master-addr-by-name" => match group(snap, &arg(2)) {
                Some(g) => self.reply(Frame::Array(vec![
                    Frame::bulk(g.master.host.as_bytes()),
                    Frame::bulk(g.master.port.to_string().as_bytes()),
                ])),
                None => self.reply(Frame::NullArray),
            },
            "myid" => self.reply(Frame::bulk(format!("{:040x}", snap.id).as_bytes())),
            "masters" => {
                let all = snap.groups.iter().map(|g| master_map(g, snap)).collect();
                self.reply(Frame::Array(all));
            }
            "master" => match group(snap, &arg(2)) {
                Some(g) => self.reply(master_map(&g, snap)),
                None => self.reply(no_such_master()),
            },
            "replicas" | "slaves" => match group(snap, &arg(2)) {
                Some(g) => {
                    let list = g
                        .replicas
                        .iter()
                        .map(|r| {
                            let flags = if r.down { "slave,s_down" } else { "slave" };
                            let link = if r.link() == "up" { "ok" } else { "err" };
                            map(vec![
                                ("name", r.addr.to_string()),
                                ("ip", r.addr.host.clone()),
                                ("port", r.addr.port.to_string()),
                                ("runid", r.run_id().to_owned()),
                                ("flags", flags.into()),
                                ("master-host", g.master.host.clone()),
                                ("master-port", g.master.port.to_string()),
                                ("master-link-status", link.into()),
                                ("slave-priority", r.priority().to_string()),
                                ("slave-repl-offset", r.offset().to_string()),
                                ("vigil-dc", r.dc().to_owned()),
                            ])
                        })
                        .collect();
                    self.reply(Frame::Array(list));
                }
                None => self.reply(no_such_master()),
            },
            "sentinels" => match group(snap, &arg(2)) {
                Some(_) => {
                    let list = snap
                        .peers
                        .iter()
                        .filter(|p| p.0 != snap.id)
                        .map(|(id, name, gossip, up)| {
                            // Clients dial the RESP port; the gossip address only if the peer
                            // never said (same port number by default).
                            let addr = snap
                                .endpoints
                                .get(id)
                                .and_then(|e| e.0)
                                .unwrap_or(*gossip);
                            map(vec![
                                ("name", format!("{id:040x}")),
                                ("ip", addr.ip().to_string()),
                                ("port", addr.port().to_string()),
                                ("runid", format!("{id:040x}")),
                                (
                                    "flags",
                                    if *up { "sentinel" } else { "sentinel,s_down" }.into(),
                                ),
                                ("vigil-name", name.clone()),
                            ])
                        })
                        .collect();
                    self.reply(Frame::Array(list));
                }
                None => self.reply(no_such_master()),
            },
            "ckquorum" => match group(snap, &arg(2)) {
                Some(g) => {
                    let usable = 1 + snap.peers.iter().filter(|p| p.3 && p.0 != snap.id).count();
                    let majority = snap.voters.len() / 2 + 1;
                    if usable >= usize::from(g.quorum) && usable >= majority {
                        self.reply(Frame::Simple(Bytes::from(format!(
                            "OK {usable} usable Sentinels. Quorum and failover authorization can be reached"
                        ))));
                    } else {
                        self.reply(Frame::error(format!(
                            "NOQUORUM {usable} usable Sentinels. Not enough available Sentinels to reach the specified quorum ({}) or the majority ({majority}) needed for failover",
                            g.quorum
                        )));
                    }
                }
                None => self.reply(no_such_master()),
            },
            "failover" | "switchover" => match group(snap, &arg(2)) {
                Some(g) if g.failing_over => {
                    self.reply(Frame::error("INPROG Failover already in progress"))
                }
                Some(g) => {
                    // SWITCHOVER is Vigil's: a planned, zero-loss failover (writes paused
                    // while the chosen replica catches up). `SWITCHOVER <group> [host:port |
                    // host port]` names the replica to promote.
                    let named = match (arg(3), arg(4)) {
                        (Some(host), Some(port)) => Some(format!("{host}:{port}")),
                        (one, None) => one,
                        (None, Some(_)) => None,
                    };
                    let target = match named.filter(|_| sub == "switchover") {
                        None => None,
                        Some(named) => {
                            let parsed = named.trim().parse::<NodeAddr>().ok();
                            let found = g.replicas.iter().find(|r| {
                                parsed.as_ref() == Some(&r.addr) || r.addr.to_string() == named
                            });
                            let Some(r) = found else {
                                let shown: String = named.chars().take(64).collect();
                                self.reply(Frame::error(format!(
                                    "ERR {shown} is not a replica of {}",
                                    g.name
                                )));
                                return;
                            };
                            Some(r.id)
                        }
                    };
                    let group = GroupName::new(&g.name);
                    let input = if sub == "switchover" {
                        Input::SwitchoverRequested { group, target }
                    } else {
                        Input::FailoverRequested { group }
                    };
                    match self.ports.inputs.try_send(ShellInput::Core(input)) {
                        Ok(()) => self.reply(ok()),
                        Err(_) => self.reply(Frame::error("ERR sentinel busy, retry")),
                    }
                }
                None => self.reply(no_such_master()),
            },
            "config" | "flushconfig" => self.reply(Frame::error(format!(
                "ERR SENTINEL {} is not supported by Vigil: sentinel-wide settings come from sentinel.toml (or sentinel.conf)",
                sub.to_ascii_uppercase()
            ))),
            "info-cache" => {
                // The last INFO of every node of the named groups (every group without names),
                // with its age in milliseconds: `name, [[age, info] …], name, …` as Redis.
                let names: Vec<String> = (2..args.len()).filter_map(arg).collect();
                let now = std::time::SystemTime::now();
                let mut out = Vec::new();
                for g in snap
                    .groups
                    .iter()
                    .filter(|g| names.is_empty() || names.contains(&g.name))
                {
                    let nodes = std::iter::once(&g.master_node)
                        .chain(g.replicas.iter())
                        .map(|n| match (&n.report, n.read_at) {
                            (Some(r), Some(at)) => {
                                let age = now.duration_since(at).unwrap_or_default();
                                Frame::Array(vec![
                                    Frame::Integer(
                                        i64::try_from(age.as_millis()).unwrap_or(i64::MAX),
                                    ),
                                    Frame::bulk(info_text(r).as_bytes()),
                                ])
                            }
                            _ => Frame::Null,
                        })
                        .collect();
                    out.push(Frame::bulk(g.name.as_bytes()));
                    out.push(Frame::Array(nodes));
                }
                self.reply(Frame::Array(out));
            }
            "is-master-down-by-addr" => {
                // Redis sentinels ask this of each other; Vigil sentinels agree over QUIC, so
                // answer "not down, no vote" to keep a mixed deployment from counting us.
                self.reply(Frame::Array(vec![
                    Frame::Integer(0),
                    Frame::bulk(b"*"),
                    Frame::Integer(0),
                ]));
            }
            _ => self.reply(Frame::error(format!(
                "ERR Unknown sentinel subcommand '{}'",
                sub.chars().take(64).collect::<String>()
            ))),
        }
    }
}

fn master_map(g: &GroupSnapshot, snap: &Snapshot) -> Frame {
    let mut flags = String::from("master");
    if g.master_down {
        flags.push_str(",s_down");
    }
    if g.odown {
        flags.push_str(",o_down");
    }
    if g.failing_over {
        flags.push_str(",failover_in_progress");
    }
    map(vec![
        ("name", g.name.clone()),
        ("ip", g.master.host.clone()),
        ("port", g.master.port.to_string()),
        ("runid", g.master_node.run_id().to_owned()),
        ("flags", flags),
        (
            "down-after-milliseconds",
            g.settings.down_after.as_millis().to_string(),
        ),
        ("config-epoch", g.epoch.to_string()),
        ("num-slaves", g.replicas.len().to_string()),
        (
            "num-other-sentinels",
            snap.voters.len().saturating_sub(1).to_string(),
        ),
        ("quorum", g.quorum.to_string()),
        (
            "failover-timeout",
            g.settings.failover_timeout.as_millis().to_string(),
        ),
        ("parallel-syncs", g.settings.parallel_syncs.to_string()),
        ("vigil-term", g.term.to_string()),
        ("vigil-paused", u8::from(g.paused).to_string()),
    ])
}

fn map(fields: Vec<(&str, String)>) -> Frame {
    Frame::Map(
        fields
            .into_iter()
            .map(|(k, v)| (Frame::bulk(k.as_bytes()), Frame::bulk(v.as_bytes())))
            .collect(),
    )
}

/// A node's last INFO as text (its fields in order; the sentinel keeps the parsed reply).
fn info_text(r: &crate::backend::NodeReport) -> String {
    let mut fields: Vec<(&String, &String)> = r.fields.iter().collect();
    fields.sort();
    let mut s = String::from("# Cached by vigil-sentinel\r\n");
    for (k, v) in fields {
        s.push_str(k);
        s.push(':');
        s.push_str(v);
        s.push_str("\r\n");
    }
    s
}

/// `SENTINEL MONITOR|REMOVE|SET|RESET`, answered asynchronously by `Conn::admin`.
fn is_admin(args: &[Bytes]) -> bool {
    let word = |i: usize| args.get(i).map(|a| a.to_ascii_lowercase());
    word(0).as_deref() == Some(b"sentinel".as_slice())
        && matches!(
            word(1).as_deref(),
            Some(b"monitor" | b"remove" | b"set" | b"reset")
        )
}

fn ok() -> Frame {
    Frame::Simple(Bytes::from_static(b"OK"))
}

fn no_such_master() -> Frame {
    Frame::error("ERR No such master with that name")
}

fn wrong_args(cmd: &str) -> Frame {
    Frame::error(format!("ERR wrong number of arguments for '{cmd}' command"))
}
