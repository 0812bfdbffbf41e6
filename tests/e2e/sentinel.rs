//! Sentinels end to end: real `vigil sentinel` processes gossiping over QUIC with mTLS (certs
//! made by `vigil certs`), watching real `vigil datanode` (or `redis-server`) processes on
//! loopback, failing a master over after `kill -9`.
//!
//! Every observation goes through the RESP sentinel port (`SENTINEL get-master-addr-by-name`,
//! `SENTINEL master`, `PSUBSCRIBE *` for events), the same way operators and clients see it.
//! Every wait has a deadline; processes stopped with SIGSTOP are resumed or killed by guards.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use vigil_proto::resp::{self, Frame, Limits};

use crate::harness::{free_port, have_redis, wait_stopped, wait_until};

pub const GROUP: &str = "g";
/// Long enough for a loaded 2-core CI machine; failovers here take about two seconds.
const DEADLINE: Duration = Duration::from_secs(30);

fn vigil() -> Command {
    Command::new(env!("CARGO_BIN_EXE_vigil"))
}

/// Sends one command with short timeouts; `None` when the server does not answer.
pub fn try_cmd(addr: SocketAddr, args: &[&str]) -> Option<Frame> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_millis(500)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    let mut out = BytesMut::new();
    resp::encode_command(args, &mut out);
    s.write_all(&out).ok()?;
    let mut buf = BytesMut::new();
    loop {
        if let Ok(Some((f, _))) = resp::decode(&buf, &Limits::default()) {
            return Some(f);
        }
        let mut chunk = [0u8; 16384];
        match s.read(&mut chunk) {
            Ok(0) | Err(_) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

pub fn text(f: &Frame) -> String {
    match f {
        Frame::Simple(b) | Frame::Error(b) => String::from_utf8_lossy(b).into_owned(),
        other => String::from_utf8_lossy(other.as_bytes().unwrap_or_default()).into_owned(),
    }
}

/// SIGKILL and reap a child, if running.
fn kill9(child: &mut Option<Child>) {
    if let Some(mut c) = child.take() {
        let _ = c.kill();
        let _ = c.wait();
    }
}

/// A child's pid, 0 when not running.
fn pid(child: &Option<Child>) -> u32 {
    child.as_ref().map(Child::id).unwrap_or(0)
}

fn signal(pid: u32, sig: &str) {
    let _ = Command::new("kill").args([sig, &pid.to_string()]).status();
}

/// What kind of data node a cluster runs.
#[derive(Clone, Copy, PartialEq)]
pub enum Kind {
    Vigil,
    Redis,
}

/// A data node on a fixed port, restartable in place.
pub struct Node {
    child: Option<Child>,
    pub addr: SocketAddr,
    dir: tempfile::TempDir,
    kind: Kind,
    extra: Vec<String>,
}

impl Node {
    pub fn start(kind: Kind, extra: &[String]) -> Node {
        let mut n = Node {
            child: None,
            addr: format!("127.0.0.1:{}", free_port()).parse().expect("addr"),
            dir: tempfile::tempdir().expect("temp dir"),
            kind,
            extra: extra.to_vec(),
        };
        n.restart();
        n
    }

    /// Starts the process again on the same port (empty: no persistence is configured).
    pub fn restart(&mut self) {
        let port = self.addr.port().to_string();
        let mut cmd = match self.kind {
            Kind::Vigil => {
                let mut c = vigil();
                c.args([
                    "datanode",
                    "--bind",
                    "127.0.0.1",
                    "--port",
                    &port,
                    "--save",
                    "",
                ]);
                c.arg("--dir").arg(self.dir.path());
                c
            }
            Kind::Redis => {
                let mut c = Command::new("redis-server");
                c.args([
                    "--bind",
                    "127.0.0.1",
                    "--port",
                    &port,
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                ]);
                c.arg("--dir").arg(self.dir.path());
                c
            }
        };
        let child = cmd
            .args(&self.extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn data node");
        self.child = Some(child);
        let addr = self.addr;
        wait_until(DEADLINE, || {
            try_cmd(addr, &["PING"]).is_some_and(|f| text(&f) == "PONG")
        });
    }

    pub fn kill9(&mut self) {
        kill9(&mut self.child);
    }

    pub fn pid(&self) -> u32 {
        pid(&self.child)
    }

    pub fn cmd(&self, args: &[&str]) -> Option<Frame> {
        try_cmd(self.addr, args)
    }

    /// `ROLE`'s first element and, for a replica, its master's port.
    pub fn role(&self) -> Option<(String, Option<u16>)> {
        match self.cmd(&["ROLE"])? {
            Frame::Array(items) => {
                let role = text(items.first()?);
                let port = if role == "slave" {
                    items.get(2).and_then(|f| match f {
                        Frame::Integer(p) => u16::try_from(*p).ok(),
                        _ => None,
                    })
                } else {
                    None
                };
                Some((role, port))
            }
            _ => None,
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        if let Some(c) = &self.child {
            signal(c.id(), "-CONT");
        }
        self.kill9();
    }
}

/// A sentinel with fixed ports and directory, restartable in place.
pub struct Sent {
    child: Option<Child>,
    pub resp: SocketAddr,
    pub gossip: SocketAddr,
    pub grpc: SocketAddr,
    pub name: String,
    pub dir: tempfile::TempDir,
    config: PathBuf,
}

impl Sent {
    pub fn restart(&mut self) {
        let mut child = vigil()
            .arg("sentinel")
            .arg("--config")
            .arg(&self.config)
            .env("RUST_LOG", "info,vigil_sentinel=debug")
            .stdout(Stdio::piped())
            .stderr(Stdio::from(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(self.dir.path().join("log"))
                    .expect("log file"),
            ))
            .spawn()
            .expect("spawn vigil sentinel");
        let stdout = child.stdout.take().expect("piped stdout");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("READY line");
        assert!(
            line.starts_with("READY "),
            "sentinel did not start: {line:?}\n{}",
            self.log()
        );
        self.child = Some(child);
    }

    pub fn kill9(&mut self) {
        kill9(&mut self.child);
    }

    pub fn pid(&self) -> u32 {
        pid(&self.child)
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("log")).unwrap_or_default()
    }

    /// The master this sentinel reports for the group.
    pub fn master(&self) -> Option<SocketAddr> {
        match try_cmd(self.resp, &["SENTINEL", "get-master-addr-by-name", GROUP])? {
            Frame::Array(a) if a.len() == 2 => {
                format!("{}:{}", text(&a[0]), text(&a[1])).parse().ok()
            }
            _ => None,
        }
    }

    /// `SENTINEL master <group>` as a map of strings.
    pub fn master_info(&self) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        let f = try_cmd(self.resp, &["SENTINEL", "master", GROUP]);
        if let Some(Frame::Array(items)) = f {
            for kv in items.chunks(2) {
                if let [k, v] = kv {
                    out.insert(text(k), text(v));
                }
            }
        }
        out
    }

    pub fn epoch(&self) -> Option<u64> {
        self.master_info().get("config-epoch")?.parse().ok()
    }
}

impl Drop for Sent {
    fn drop(&mut self) {
        if let Some(c) = &self.child {
            signal(c.id(), "-CONT");
        }
        self.kill9();
        if std::thread::panicking() {
            eprintln!("---- log of sentinel {} ----\n{}", self.name, self.log());
        }
    }
}

/// Every event every sentinel published, collected by `PSUBSCRIBE *` connections.
#[derive(Clone, Default)]
pub struct Events(Arc<Mutex<Vec<(usize, String, String)>>>);

impl Events {
    /// Subscribes to sentinel `idx`'s events in a background thread (ends with the process).
    pub fn watch(&self, idx: usize, addr: SocketAddr) {
        let sink = self.0.clone();
        let mut s = TcpStream::connect(addr).expect("connect to the sentinel");
        let mut out = BytesMut::new();
        resp::encode_command(&["PSUBSCRIBE", "*"], &mut out);
        s.write_all(&out).expect("subscribe");
        std::thread::spawn(move || {
            let mut buf = BytesMut::new();
            let mut chunk = [0u8; 16384];
            loop {
                while let Ok(Some((f, n))) = resp::decode(&buf, &Limits::default()) {
                    let _ = buf.split_to(n);
                    if let Frame::Array(items) = f {
                        if items.len() == 4 && text(&items[0]) == "pmessage" {
                            let mut v = sink.lock().expect("events lock");
                            v.push((idx, text(&items[2]), text(&items[3])));
                        }
                    }
                }
                match s.read(&mut chunk) {
                    Ok(0) | Err(_) => return,
                    Ok(n) => buf.extend_from_slice(&chunk[..n]),
                }
            }
        });
    }

    pub fn of(&self, channel: &str) -> Vec<(usize, String)> {
        let v = self.0.lock().expect("events lock");
        v.iter()
            .filter(|(_, c, _)| c == channel)
            .map(|(i, _, p)| (*i, p.clone()))
            .collect()
    }

    pub fn all(&self) -> Vec<(usize, String, String)> {
        self.0.lock().expect("events lock").clone()
    }
}

/// A master, its replicas and three sentinels.
pub struct Cluster {
    pub nodes: Vec<Node>,
    pub sentinels: Vec<Sent>,
    pub events: Events,
    pub certs: tempfile::TempDir,
    pub down_after: Duration,
}

impl Cluster {
    pub fn start(kind: Kind, sentinels: usize, down_after: Duration) -> Cluster {
        let fencing: Vec<String> = Vec::new();
        let master = Node::start(kind, &fencing);
        let mut nodes = vec![master];
        for _ in 0..2 {
            let port = nodes[0].addr.port().to_string();
            let mut extra = fencing.clone();
            match kind {
                Kind::Vigil => extra.extend(["--replicaof".into(), format!("127.0.0.1:{port}")]),
                Kind::Redis => extra.extend(["--replicaof".into(), "127.0.0.1".into(), port]),
            }
            nodes.push(Node::start(kind, &extra));
        }
        // Replicas must be attached before sentinels look, or the first INFO lists none.
        // Attached is not enough: Redis 7 delays a diskless full sync by 5 s by default.
        for r in &nodes[1..] {
            let a = r.addr;
            wait_until(DEADLINE, || {
                try_cmd(a, &["INFO", "replication"])
                    .is_some_and(|f| text(&f).contains("master_link_status:up"))
            });
        }
        let certs = tempfile::tempdir().expect("temp dir");
        let ok = vigil()
            .args(["certs", "init", "--dir"])
            .arg(certs.path())
            .stdout(Stdio::null())
            .status()
            .expect("vigil certs init");
        assert!(ok.success());
        let events = Events::default();
        let mut c = Cluster {
            nodes,
            sentinels: Vec::new(),
            events,
            certs,
            down_after,
        };
        for _ in 0..sentinels {
            c.add_sentinel();
        }
        // Every sentinel knows every other one before a test breaks anything.
        let n = c.sentinels.len();
        wait_until(DEADLINE, || {
            c.sentinels.iter().all(|s| {
                s.master_info()
                    .get("num-other-sentinels")
                    .is_some_and(|v| v == &(n - 1).to_string())
            })
        });
        c
    }

    /// Starts one more sentinel (`s<n>`, watching the group as configured at start). The first
    /// founds the cluster; each later one joins it through the first, which must be alive.
    pub fn add_sentinel(&mut self) -> usize {
        let i = self.sentinels.len();
        let name = format!("s{i}");
        let ok = vigil()
            .args([
                "certs",
                "issue",
                "--name",
                &name,
                "--host",
                "127.0.0.1",
                "--dir",
            ])
            .arg(self.certs.path())
            .stdout(Stdio::null())
            .status()
            .expect("vigil certs issue");
        assert!(ok.success());
        let dir = tempfile::tempdir().expect("temp dir");
        let resp: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().expect("addr");
        let gossip: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().expect("addr");
        let grpc: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().expect("addr");
        let join = self
            .sentinels
            .first()
            .map(|s| format!("join = [\"{}\"]\n", s.gossip))
            .unwrap_or_default();
        let m = self.nodes[0].addr;
        let replicas: Vec<String> = self.nodes[1..]
            .iter()
            .map(|n| format!("\"{}\"", n.addr))
            .collect();
        let c = self.certs.path();
        let toml = format!(
            "dir = {dir:?}\ngossip = \"{gossip}\"\nresp = \"{resp}\"\ngrpc = \"{grpc}\"\n{join}\n\
             [tls]\nca = {ca:?}\ncert = {crt:?}\nkey = {key:?}\n\n\
             [[group]]\nname = \"{GROUP}\"\nmaster = \"{m}\"\nreplicas = [{r}]\nquorum = 2\n\
             down-after-ms = {da}\nfailover-timeout-ms = 5000\n",
            dir = dir.path(),
            ca = c.join("ca.crt"),
            crt = c.join(format!("{name}.crt")),
            key = c.join(format!("{name}.key")),
            r = replicas.join(", "),
            da = self.down_after.as_millis(),
        );
        let config = dir.path().join("sentinel.toml");
        std::fs::write(&config, toml).expect("write sentinel.toml");
        let mut s = Sent {
            child: None,
            resp,
            gossip,
            grpc,
            name,
            dir,
            config,
        };
        s.restart();
        self.events.watch(i, s.resp);
        self.sentinels.push(s);
        i
    }

    /// The master every live sentinel agrees on, with the epoch, once they agree.
    pub fn agreed(&self, live: &[usize]) -> Option<(SocketAddr, u64)> {
        let mut seen = None;
        for &i in live {
            let s = &self.sentinels[i];
            let m = (s.master()?, s.epoch()?);
            match seen {
                None => seen = Some(m),
                Some(prev) if prev != m => return None,
                Some(_) => {}
            }
        }
        seen
    }

    pub fn node_at(&self, addr: SocketAddr) -> Option<usize> {
        self.nodes.iter().position(|n| n.addr == addr)
    }

    pub fn dump(&self) -> String {
        let mut s = String::new();
        for (i, e) in self.events.all().iter().enumerate() {
            s.push_str(&format!("{i}: s{} {} {}\n", e.0, e.1, e.2));
        }
        s
    }
}

fn wait_for(what: &str, c: &Cluster, timeout: Duration, mut cond: impl FnMut() -> bool) {
    let end = Instant::now() + timeout;
    while Instant::now() < end {
        if cond() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("{what}: not within {timeout:?}; events:\n{}", c.dump());
}

/// The whole failover story, for Vigil or Redis data nodes.
fn kill_master_and_check(kind: Kind) {
    let mut c = Cluster::start(kind, 3, Duration::from_millis(1000));
    let old = c.nodes[0].addr;
    assert_eq!(c.agreed(&[0, 1, 2]).map(|a| a.0), Some(old));
    wait_for("a write is acknowledged", &c, DEADLINE, || {
        c.nodes[0]
            .cmd(&["SET", "k", "v"])
            .is_some_and(|f| text(&f) == "OK")
    });
    // Replication is asynchronous: only a write both replicas acknowledged must survive.
    let mut conn = crate::harness::Conn::new(c.nodes[0].addr);
    assert_eq!(
        conn.cmd(&["WAIT", "2", "5000"]),
        Frame::Integer(2),
        "{:?}",
        c.nodes[0].cmd(&["INFO", "replication"]).map(|f| text(&f))
    );
    c.nodes[0].kill9();
    let mut new = None;
    wait_for(
        "all sentinels switch to one new master",
        &c,
        DEADLINE,
        || match c.agreed(&[0, 1, 2]) {
            Some((m, epoch)) if m != old && epoch > 0 => {
                new = Some((m, epoch));
                true
            }
            _ => false,
        },
    );
    let (new, _epoch) = new.expect("new master");
    let ni = c
        .node_at(new)
        .expect("the new master is one of the replicas");
    assert_eq!(c.nodes[ni].role().map(|r| r.0), Some("master".into()));
    // The other replica follows the new master.
    let other = 3 - ni;
    wait_for(
        "the other replica follows the new master",
        &c,
        DEADLINE,
        || c.nodes[other].role() == Some(("slave".into(), Some(new.port()))),
    );
    // Exactly one promotion, by exactly one leader.
    let promoted = c.events.of("+promoted-slave");
    assert_eq!(promoted.len(), 1, "promotions: {promoted:?}\n{}", c.dump());
    // Redis' payload: the promoted replica, then the master it was a replica of.
    assert_eq!(
        promoted[0].1,
        format!(
            "slave {new} {} {} @ {GROUP} 127.0.0.1 {}",
            new.ip(),
            new.port(),
            old.port()
        )
    );
    // At most one leader per term (a split vote or an abandoned term may elect again later).
    let mut terms: Vec<String> = c
        .events
        .of("+elected-leader")
        .into_iter()
        .map(|e| e.1)
        .collect();
    let n = terms.len();
    terms.sort();
    terms.dedup();
    assert_eq!(terms.len(), n, "two leaders in one term\n{}", c.dump());
    // The old master, restarted (empty), becomes a replica of the new one.
    c.nodes[0].restart();
    wait_for(
        "the old master is converted to a replica",
        &c,
        DEADLINE,
        || c.nodes[0].role() == Some(("slave".into(), Some(new.port()))),
    );
    assert_eq!(c.agreed(&[0, 1, 2]).map(|a| a.0), Some(new));
    if kind == Kind::Redis {
        // Without leases, the sentinels fence Redis masters with min-replicas-to-write.
        wait_for(
            "the new Redis master gets min-replicas-to-write",
            &c,
            DEADLINE,
            || {
                c.nodes[ni]
                    .cmd(&["CONFIG", "GET", "min-replicas-to-write"])
                    .is_some_and(
                        |f| matches!(f, Frame::Array(a) if a.len() == 2 && text(&a[1]) == "1"),
                    )
            },
        );
    }
    // The write made before the kill survived on the new master.
    assert_eq!(
        c.nodes[ni].cmd(&["GET", "k"]).map(|f| text(&f)),
        Some("v".into())
    );
}

#[test]
fn kill_9_of_a_vigil_master_fails_over_once_and_the_old_master_rejoins() {
    kill_master_and_check(Kind::Vigil);
}

#[test]
#[ignore = "needs redis-server; run by .ci/run with --ignored"]
fn kill_9_of_a_redis_master_fails_over_once_and_the_old_master_rejoins() {
    assert!(have_redis(), "redis-server is not installed");
    kill_master_and_check(Kind::Redis);
}

#[test]
fn a_minority_of_sentinels_cannot_fail_over_but_a_majority_can() {
    let mut c = Cluster::start(Kind::Vigil, 3, Duration::from_millis(500));
    let old = c.nodes[0].addr;
    // Cut two sentinels off (SIGSTOP): the one left sees the master die but cannot win.
    signal(c.sentinels[1].pid(), "-STOP");
    signal(c.sentinels[2].pid(), "-STOP");
    c.nodes[0].kill9();
    std::thread::sleep(c.down_after * 6);
    assert_eq!(c.sentinels[0].master(), Some(old), "{}", c.dump());
    assert!(c.events.of("+promoted-slave").is_empty(), "{}", c.dump());
    // Bring one back: two of three is a majority and the failover goes through.
    signal(c.sentinels[1].pid(), "-CONT");
    wait_for("the majority fails over", &c, DEADLINE, || {
        c.agreed(&[0, 1]).is_some_and(|(m, _)| m != old)
    });
    assert_eq!(c.events.of("+promoted-slave").len(), 1, "{}", c.dump());
    signal(c.sentinels[2].pid(), "-CONT");
    wait_for(
        "the third sentinel learns the new config",
        &c,
        DEADLINE,
        || c.agreed(&[0, 1, 2]).is_some_and(|(m, _)| m != old),
    );
}

#[test]
fn a_sentinel_killed_after_voting_keeps_its_vote_across_a_restart() {
    let mut c = Cluster::start(Kind::Vigil, 3, Duration::from_millis(1000));
    let old = c.nodes[0].addr;
    c.nodes[0].kill9();
    // The first sentinel that votes for another is killed at once and restarted.
    let mut voter = None;
    wait_for("a vote", &c, DEADLINE, || {
        voter = c.events.of("+vote-for-leader").first().map(|v| v.0);
        voter.is_some()
    });
    let v = voter.expect("voter");
    c.sentinels[v].kill9();
    let state = std::fs::read_to_string(c.sentinels[v].dir.path().join("sentinel-state.json"))
        .expect("state file");
    assert!(state.contains("\"vote\":["), "vote not durable:\n{state}");
    c.sentinels[v].restart();
    c.events.watch(v, c.sentinels[v].resp);
    wait_for("the failover completes", &c, DEADLINE, || {
        c.agreed(&[0, 1, 2]).is_some_and(|(m, _)| m != old)
    });
    // No sentinel voted twice in one term (for different candidates), across the restart.
    let mut votes: BTreeMap<(usize, String), String> = BTreeMap::new();
    for (i, payload) in c.events.of("+vote-for-leader") {
        // "<candidate> <term> <group>"
        let mut w = payload.split(' ');
        let cand = w.next().unwrap_or_default().to_string();
        let term = w.next().unwrap_or_default().to_string();
        if let Some(prev) = votes.insert((i, term.clone()), cand.clone()) {
            assert_eq!(prev, cand, "s{i} voted twice in term {term}\n{}", c.dump());
        }
    }
    assert_eq!(c.events.of("+promoted-slave").len(), 1, "{}", c.dump());
}

#[test]
fn a_paused_master_refuses_writes_after_its_lease_expired_and_rejoins_as_a_replica() {
    let c = Cluster::start(Kind::Vigil, 3, Duration::from_millis(1000));
    let old = c.nodes[0].addr;
    // The sentinels grant leases from their first probes: fencing is on, writes go through.
    wait_for("the master holds a lease majority", &c, DEADLINE, || {
        c.nodes[0]
            .cmd(&["INFO", "replication"])
            .is_some_and(|f| text(&f).contains("vigil_fencing_active:1"))
            && c.nodes[0]
                .cmd(&["SET", "before", "1"])
                .is_some_and(|f| text(&f) == "OK")
    });
    // A client connected before the pause sends a write while the master is stopped.
    let mut client = crate::harness::Conn::new(old);
    signal(c.nodes[0].pid(), "-STOP");
    // The write must reach a stopped process, not one still running its last instructions.
    wait_stopped(c.nodes[0].pid());
    client.send(&[b"SET", b"during", b"1"]);
    let stopped = Instant::now();
    wait_for("the sentinels fail over", &c, DEADLINE, || {
        c.agreed(&[0, 1, 2]).is_some_and(|(m, _)| m != old)
    });
    let wait = (c.down_after * 3).saturating_sub(stopped.elapsed());
    std::thread::sleep(wait);
    signal(c.nodes[0].pid(), "-CONT");
    let resumed = Instant::now();
    // The write queued during the pause is refused: its lease expired while it was stopped.
    let reply = client.read().map(|f| text(&f)).unwrap_or_default();
    assert!(
        reply.starts_with("NOLEASE"),
        "the stale master acknowledged a write: {reply:?}"
    );
    let late = c.nodes[0]
        .cmd(&["SET", "after", "1"])
        .map(|f| text(&f))
        .unwrap_or_default();
    assert!(
        late.starts_with("NOLEASE") || late.starts_with("READONLY"),
        "the stale master acknowledged a write: {late:?}"
    );
    let new = c.agreed(&[0, 1, 2]).map(|a| a.0).expect("agreed master");
    wait_for(
        "the old master is converted to a replica",
        &c,
        DEADLINE,
        || c.nodes[0].role() == Some(("slave".into(), Some(new.port()))),
    );
    eprintln!(
        "old master converted {:?} after resuming",
        resumed.elapsed()
    );
    let ni = c.node_at(new).expect("a replica was promoted");
    assert_eq!(c.nodes[ni].cmd(&["GET", "during"]), Some(Frame::Null));
    assert_eq!(
        c.nodes[ni].cmd(&["GET", "before"]).map(|f| text(&f)),
        Some("1".into())
    );
}

#[test]
fn sentinels_refuse_garbage_on_the_gossip_port_and_keep_working() {
    let c = Cluster::start(Kind::Vigil, 3, Duration::from_millis(1000));
    // Raw UDP garbage at the QUIC port, then a RESP client with garbage at the RESP port.
    let udp = std::net::UdpSocket::bind("127.0.0.1:0").expect("udp");
    for i in 0..200u32 {
        let junk: Vec<u8> = (0..1200).map(|j| (i.wrapping_mul(31) ^ j) as u8).collect();
        let _ = udp.send_to(&junk, c.sentinels[0].gossip);
    }
    let mut s = TcpStream::connect(c.sentinels[0].resp).expect("connect");
    s.write_all(b"*1\r\n$999999999999\r\n").expect("write");
    let mut buf = [0u8; 256];
    let n = s.read(&mut buf).unwrap_or(0);
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("-ERR Protocol error"));
    assert_eq!(
        try_cmd(c.sentinels[0].resp, &["SENTINEL", "nonsense"]).map(|f| text(&f)),
        Some("ERR Unknown sentinel subcommand 'nonsense'".into())
    );
    assert_eq!(
        try_cmd(
            c.sentinels[0].resp,
            &["SENTINEL", "get-master-addr-by-name", "nope"]
        ),
        Some(Frame::NullArray)
    );
    // `SENTINEL sentinels` lists the peers' RESP ports (what Redis clients dial), which the
    // peers announced over gossip.
    let mut want: Vec<u16> = c.sentinels[1..].iter().map(|s| s.resp.port()).collect();
    want.sort_unstable();
    wait_for("peers' RESP ports are known", &c, DEADLINE, || {
        let Some(Frame::Array(list)) =
            try_cmd(c.sentinels[0].resp, &["SENTINEL", "sentinels", GROUP])
        else {
            return false;
        };
        let mut ports: Vec<u16> = list
            .iter()
            .filter_map(|m| match m {
                Frame::Array(kv) => kv
                    .chunks(2)
                    .find(|p| p.len() == 2 && text(&p[0]) == "port")
                    .and_then(|p| text(&p[1]).parse().ok()),
                _ => None,
            })
            .collect();
        ports.sort_unstable();
        ports == want
    });
    // The cluster still agrees and the sentinel still sees its peers.
    assert_eq!(c.agreed(&[0, 1, 2]).map(|a| a.0), Some(c.nodes[0].addr));
    assert_eq!(
        c.sentinels[0]
            .master_info()
            .get("num-other-sentinels")
            .map(String::as_str),
        Some("2")
    );
}

#[test]
fn a_corrupt_state_file_stops_the_sentinel_with_a_clear_message() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(
        dir.path().join("sentinel-state.json"),
        "vigil-sentinel-state 1 fnv64=00\n{}",
    )
    .expect("write");
    let out = vigil()
        .args([
            "sentinel",
            "--gossip",
            "127.0.0.1:0",
            "--resp",
            "127.0.0.1:0",
            "--dir",
        ])
        .arg(dir.path())
        .output()
        .expect("run vigil sentinel");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("is corrupt") && err.contains("refusing to start"),
        "{err}"
    );
}

#[test]
fn an_invalid_sentinel_config_names_the_key_and_the_rule() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("s.toml");
    std::fs::write(
        &file,
        "[[group]]\nname = \"g\"\nmaster = \"127.0.0.1:1\"\nquorum = 0\n",
    )
    .expect("write");
    let out = vigil()
        .args(["sentinel", "--config"])
        .arg(&file)
        .output()
        .expect("run vigil sentinel");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("group.g.quorum") && err.contains("not in 1..=255"),
        "{err}"
    );
}

/// Writes a new key every 10 ms to whichever master the sentinels name, recording every
/// acknowledged key with the time of its acknowledgement.
struct Writer {
    stop: Arc<std::sync::atomic::AtomicBool>,
    handle: Option<std::thread::JoinHandle<Vec<(Instant, String, SocketAddr)>>>,
}

impl Writer {
    fn start(sentinel: SocketAddr, mut master: SocketAddr) -> Writer {
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = stop.clone();
        let handle = std::thread::spawn(move || {
            let mut acked = Vec::new();
            let mut i = 0u64;
            while !flag.load(std::sync::atomic::Ordering::Relaxed) {
                let key = format!("w{i}");
                i += 1;
                match try_cmd(master, &["SET", &key, "1"]) {
                    Some(Frame::Simple(ok)) if ok.as_ref() == b"OK" => {
                        acked.push((Instant::now(), key, master))
                    }
                    _ => {
                        if let Some(Frame::Array(a)) =
                            try_cmd(sentinel, &["SENTINEL", "get-master-addr-by-name", GROUP])
                        {
                            if let (Some(h), Some(p)) = (a.first(), a.get(1)) {
                                if let Ok(m) = format!("{}:{}", text(h), text(p)).parse() {
                                    master = m;
                                }
                            }
                        }
                    }
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            acked
        });
        Writer {
            stop,
            handle: Some(handle),
        }
    }

    fn finish(mut self) -> Vec<(Instant, String, SocketAddr)> {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        self.handle
            .take()
            .and_then(|h| h.join().ok())
            .unwrap_or_default()
    }
}

#[test]
fn a_switchover_loses_no_acknowledged_write() {
    let c = Cluster::start(Kind::Vigil, 3, Duration::from_millis(1000));
    let old = c.nodes[0].addr;
    wait_for("the master accepts writes", &c, DEADLINE, || {
        c.nodes[0]
            .cmd(&["SET", "warm", "1"])
            .is_some_and(|f| text(&f) == "OK")
    });
    let writer = Writer::start(c.sentinels[0].resp, old);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        try_cmd(c.sentinels[1].resp, &["SENTINEL", "SWITCHOVER", GROUP]).map(|f| text(&f)),
        Some("OK".into())
    );
    let mut new = None;
    wait_for("the switchover completes", &c, DEADLINE, || {
        match c.agreed(&[0, 1, 2]) {
            Some((m, _)) if m != old => {
                new = Some(m);
                true
            }
            _ => false,
        }
    });
    let new = new.expect("new master");
    // Writes resume on the new master.
    let resumed = Instant::now();
    wait_for("a write on the new master", &c, DEADLINE, || {
        try_cmd(new, &["SET", "probe", "1"]).is_some_and(|f| text(&f) == "OK")
    });
    std::thread::sleep(Duration::from_millis(300));
    let acked = writer.finish();
    assert!(
        acked.iter().any(|(_, _, m)| *m == new),
        "no write on the new master"
    );
    // Zero loss: every acknowledged key is on the new master.
    let ni = c.node_at(new).expect("new master is a node");
    let missing: Vec<&String> = acked
        .iter()
        .filter(|(_, k, _)| c.nodes[ni].cmd(&["EXISTS", k]) != Some(Frame::Integer(1)))
        .map(|(_, k, _)| k)
        .collect();
    assert!(missing.is_empty(), "acknowledged writes lost: {missing:?}");
    // The old master follows the new one.
    wait_for("the old master becomes a replica", &c, DEADLINE, || {
        c.nodes[0].role() == Some(("slave".into(), Some(new.port())))
    });
    let pause = acked
        .windows(2)
        .map(|w| w[1].0.duration_since(w[0].0))
        .max()
        .unwrap_or_default();
    eprintln!(
        "switchover: {} writes acknowledged, none lost; longest gap between acknowledgements {pause:?}; resumed {:?}",
        acked.len(),
        resumed.elapsed()
    );
}
