//! Server behaviour seen by clients: authentication, databases, expiry, eviction, blocking pops,
//! optimistic transactions, shutdown by command and by signal, configuration, and `vigil up`.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use vigil_proto::resp::Frame;

use super::{DEADLINE, bulk, disconnected, err, info_u64, simple, text};
use crate::harness::{Conn, datanode, wait_until};

#[test]
fn requirepass_demands_auth_before_any_command() {
    let node = datanode(&["--requirepass", "s3cret"]);
    let mut c = Conn::new(node.addr);
    assert_eq!(c.cmd(&["PING"]), err("NOAUTH Authentication required."));
    assert_eq!(
        c.cmd(&["SET", "k", "v"]),
        err("NOAUTH Authentication required.")
    );
    assert_eq!(
        c.cmd(&["AUTH", "guess"]),
        err("WRONGPASS invalid username-password pair or user is disabled.")
    );
    assert_eq!(
        c.cmd(&["AUTH", "admin", "s3cret"]),
        err("WRONGPASS invalid username-password pair or user is disabled.")
    );
    assert_eq!(c.cmd(&["GET", "k"]), err("NOAUTH Authentication required."));
    assert_eq!(c.cmd(&["AUTH", "s3cret"]), Frame::ok());
    assert_eq!(c.cmd(&["SET", "k", "v"]), Frame::ok());
    assert_eq!(c.cmd(&["GET", "k"]), bulk("v"));

    // Authentication belongs to the connection; the user form works too.
    let mut other = Conn::new(node.addr);
    assert_eq!(
        other.cmd(&["GET", "k"]),
        err("NOAUTH Authentication required.")
    );
    assert_eq!(other.cmd(&["AUTH", "default", "s3cret"]), Frame::ok());
    assert_eq!(other.cmd(&["GET", "k"]), bulk("v"));
}

#[test]
fn select_isolates_databases() {
    let node = datanode(&[]);
    let mut c = Conn::new(node.addr);
    assert_eq!(c.cmd(&["SET", "k", "zero"]), Frame::ok());
    assert_eq!(c.cmd(&["SELECT", "1"]), Frame::ok());
    assert_eq!(c.cmd(&["GET", "k"]), Frame::Null);
    assert_eq!(c.cmd(&["SET", "k", "one"]), Frame::ok());
    assert_eq!(c.cmd(&["SET", "only1", "x"]), Frame::ok());
    assert_eq!(c.cmd(&["DBSIZE"]), Frame::Integer(2));
    assert_eq!(c.cmd(&["FLUSHDB"]), Frame::ok());
    assert_eq!(c.cmd(&["DBSIZE"]), Frame::Integer(0));
    assert_eq!(c.cmd(&["SELECT", "0"]), Frame::ok());
    assert_eq!(c.cmd(&["GET", "k"]), bulk("zero"));
    assert_eq!(c.cmd(&["DBSIZE"]), Frame::Integer(1));
    assert_eq!(
        c.cmd(&["SELECT", "16"]),
        err("ERR DB index is out of range")
    );
    assert_eq!(
        c.cmd(&["SELECT", "-1"]),
        err("ERR DB index is out of range")
    );

    // The selected database belongs to the connection: a new one starts in database 0.
    assert_eq!(c.cmd(&["SELECT", "15"]), Frame::ok());
    assert_eq!(c.cmd(&["SET", "k", "fifteen"]), Frame::ok());
    let mut other = Conn::new(node.addr);
    assert_eq!(other.cmd(&["GET", "k"]), bulk("zero"));
}

#[test]
fn expired_keys_are_removed_without_being_accessed() {
    let node = datanode(&[]);
    let mut c = Conn::new(node.addr);
    for i in 0..50 {
        assert_eq!(
            c.cmd(&["SET", &format!("short:{i}"), "v", "PX", "100"]),
            Frame::ok()
        );
    }
    assert_eq!(c.cmd(&["SET", "long", "v", "EX", "1000"]), Frame::ok());
    assert_eq!(c.cmd(&["SET", "forever", "v"]), Frame::ok());
    // No command touches the short-lived keys again; only active expiry can remove them.
    wait_until(DEADLINE, || {
        info_u64(&mut c, "stats", "expired_keys") >= 50 && c.cmd(&["DBSIZE"]) == Frame::Integer(2)
    });
    assert_eq!(c.cmd(&["GET", "long"]), bulk("v"));
    assert_eq!(c.cmd(&["GET", "forever"]), bulk("v"));
}

#[test]
fn allkeys_lru_evicts_to_stay_under_maxmemory() {
    let maxmemory = 10 * 1024 * 1024;
    let node = datanode(&["--maxmemory", "10mb", "--maxmemory-policy", "allkeys-lru"]);
    let mut c = Conn::new(node.addr);
    let value = "x".repeat(100 * 1024);
    // 40 MiB of values into a 10 MiB node: every write succeeds, old keys make room.
    for i in 0..400 {
        assert_eq!(
            c.cmd(&["SET", &format!("k{i}"), &value]),
            Frame::ok(),
            "k{i}"
        );
    }
    assert!(info_u64(&mut c, "stats", "evicted_keys") > 0);
    let Frame::Integer(keys) = c.cmd(&["DBSIZE"]) else {
        panic!("DBSIZE not an integer");
    };
    assert!(keys < 400, "{keys} keys kept in 10 MiB");
    assert!(keys > 10, "only {keys} keys kept in 10 MiB");
    // The newest key is the least likely to be evicted.
    assert_eq!(c.cmd(&["STRLEN", "k399"]), Frame::Integer(100 * 1024));
    // Bounded: never far above the limit, not even at the peak.
    let slack = 4 * 1024 * 1024;
    let used = info_u64(&mut c, "memory", "used_memory");
    let peak = info_u64(&mut c, "memory", "used_memory_peak");
    assert!(used <= maxmemory + slack, "used_memory {used}");
    assert!(peak <= maxmemory + slack, "used_memory_peak {peak}");
}

#[test]
fn noeviction_refuses_writes_over_maxmemory_but_serves_reads_and_deletes() {
    let node = datanode(&["--maxmemory", "10mb", "--maxmemory-policy", "noeviction"]);
    let mut c = Conn::new(node.addr);
    let value = "x".repeat(100 * 1024);
    let oom = err("OOM command not allowed when used memory > 'maxmemory'.");
    let mut stored = 0;
    while stored < 400 {
        let reply = c.cmd(&["SET", &format!("k{stored}"), &value]);
        if reply == oom {
            break;
        }
        assert_eq!(reply, Frame::ok(), "k{stored}");
        stored += 1;
    }
    // Refused near the limit, not far before or after it.
    assert!(
        (50..=102).contains(&stored),
        "stored {stored} keys of 100 KiB under 10 MiB"
    );
    // Refused for every command that may grow memory; reads and deletes still work. (The
    // arguments count too, as in Redis, so the refused writes are larger than the last one.)
    let more = "y".repeat(1024 * 1024);
    assert_eq!(c.cmd(&["SET", "more", &more]), oom);
    assert_eq!(c.cmd(&["APPEND", "k0", &more]), oom);
    assert_eq!(c.cmd(&["EXISTS", "more"]), Frame::Integer(0));
    assert_eq!(c.cmd(&["STRLEN", "k0"]), Frame::Integer(100 * 1024));
    assert_eq!(c.cmd(&["DBSIZE"]), Frame::Integer(stored));
    assert_eq!(info_u64(&mut c, "stats", "evicted_keys"), 0);
    assert_eq!(c.cmd(&["FLUSHDB"]), Frame::ok());
    wait_until(DEADLINE, || c.cmd(&["SET", "more", "v"]) == Frame::ok());
}

#[test]
fn blpop_is_served_by_a_push_from_another_client() {
    let node = datanode(&[]);
    let mut waiter = Conn::new(node.addr);
    let mut pusher = Conn::new(node.addr);
    waiter.send(&[b"BLPOP", b"jobs", b"10"]);
    wait_until(DEADLINE, || {
        info_u64(&mut pusher, "clients", "blocked_clients") == 1
    });
    assert_eq!(pusher.cmd(&["RPUSH", "jobs", "a", "b"]), Frame::Integer(2));
    assert_eq!(
        waiter.read(),
        Some(Frame::Array(vec![bulk("jobs"), bulk("a")]))
    );
    assert_eq!(
        pusher.cmd(&["LRANGE", "jobs", "0", "-1"]),
        Frame::Array(vec![bulk("b")])
    );
    assert_eq!(info_u64(&mut pusher, "clients", "blocked_clients"), 0);
    // The waiter is an ordinary client again.
    assert_eq!(waiter.cmd(&["PING"]), simple("PONG"));
}

#[test]
fn blpop_times_out_with_a_null_reply() {
    let node = datanode(&[]);
    let mut c = Conn::new(node.addr);
    let start = Instant::now();
    assert_eq!(c.cmd(&["BLPOP", "nothing", "0.2"]), Frame::NullArray);
    // A lower bound only: it did wait rather than answer at once.
    assert!(start.elapsed() >= Duration::from_millis(150));
    assert_eq!(info_u64(&mut c, "clients", "blocked_clients"), 0);
    assert_eq!(c.cmd(&["PING"]), simple("PONG"));
}

#[test]
fn watch_aborts_exec_when_another_client_writes_the_key() {
    let node = datanode(&[]);
    let mut c = Conn::new(node.addr);
    let mut other = Conn::new(node.addr);
    assert_eq!(c.cmd(&["SET", "balance", "10"]), Frame::ok());

    // Untouched: the transaction runs.
    assert_eq!(c.cmd(&["WATCH", "balance"]), Frame::ok());
    assert_eq!(c.cmd(&["MULTI"]), Frame::ok());
    assert_eq!(c.cmd(&["INCRBY", "balance", "5"]), simple("QUEUED"));
    assert_eq!(c.cmd(&["EXEC"]), Frame::Array(vec![Frame::Integer(15)]));

    // Written by another client between WATCH and EXEC: nothing runs, EXEC replies null.
    assert_eq!(c.cmd(&["WATCH", "balance"]), Frame::ok());
    assert_eq!(other.cmd(&["SET", "balance", "100"]), Frame::ok());
    assert_eq!(c.cmd(&["MULTI"]), Frame::ok());
    assert_eq!(c.cmd(&["INCRBY", "balance", "5"]), simple("QUEUED"));
    assert_eq!(c.cmd(&["SET", "audit", "done"]), simple("QUEUED"));
    assert_eq!(c.cmd(&["EXEC"]), Frame::NullArray);
    assert_eq!(c.cmd(&["GET", "balance"]), bulk("100"));
    assert_eq!(c.cmd(&["EXISTS", "audit"]), Frame::Integer(0));

    // EXEC ended the watch: the next transaction runs even after another write.
    assert_eq!(other.cmd(&["SET", "balance", "1"]), Frame::ok());
    assert_eq!(c.cmd(&["MULTI"]), Frame::ok());
    assert_eq!(c.cmd(&["INCRBY", "balance", "5"]), simple("QUEUED"));
    assert_eq!(c.cmd(&["EXEC"]), Frame::Array(vec![Frame::Integer(6)]));
}

#[test]
fn shutdown_command_stops_the_process() {
    let mut node = datanode(&[]);
    let mut c = Conn::new(node.addr);
    let mut other = Conn::new(node.addr);
    assert_eq!(other.cmd(&["PING"]), simple("PONG"));
    c.send(&[b"SHUTDOWN"]);
    assert!(node.wait_exit(DEADLINE), "still running after SHUTDOWN");
    assert!(disconnected(&mut c));
    assert!(disconnected(&mut other));
}

#[test]
fn sigterm_stops_the_process_gracefully() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut node = Vigil::datanode(dir.path(), &[]);
    let addr = node.ready_addr().expect("READY line");
    let mut c = Conn::new(addr);
    assert_eq!(c.cmd(&["SET", "k", "v"]), Frame::ok());
    signal(node.pid(), "TERM");
    let status = node.wait(DEADLINE).expect("exits after SIGTERM");
    // Exit code 0, not death by the signal: the handler ran and the server drained.
    assert!(status.success(), "{status:?}");
    assert!(disconnected(&mut c));
    let log = node.stderr();
    assert!(log.contains("SIGTERM received"), "{log}");
    assert!(log.contains("data node stopped"), "{log}");
}

#[test]
fn config_file_is_read_and_flags_override_it() {
    let conf = tempfile::tempdir().expect("temp dir");
    let path = conf.path().join("vigil.toml");
    std::fs::write(
        &path,
        "databases = 4\nmaxclients = 7\nmaxmemory = \"5mb\"\nmaxmemory-policy = \"allkeys-lru\"\nrequirepass = \"fromfile\"\n",
    )
    .expect("write config");
    let path = path.to_str().expect("utf-8 path");
    let node = datanode(&["--config", path, "--maxclients", "9"]);
    let mut c = Conn::new(node.addr);
    assert_eq!(c.cmd(&["GET", "k"]), err("NOAUTH Authentication required."));
    assert_eq!(c.cmd(&["AUTH", "fromfile"]), Frame::ok());
    let get = |c: &mut Conn, name: &str| match c.cmd(&["CONFIG", "GET", name]) {
        Frame::Array(kv) if kv.len() == 2 => text(&kv[1]),
        other => panic!("CONFIG GET {name} replied {other:?}"),
    };
    assert_eq!(
        get(&mut c, "maxclients"),
        "9",
        "the flag wins over the file"
    );
    assert_eq!(get(&mut c, "databases"), "4");
    assert_eq!(get(&mut c, "maxmemory"), (5 * 1024 * 1024).to_string());
    assert_eq!(get(&mut c, "maxmemory-policy"), "allkeys-lru");
    assert_eq!(c.cmd(&["SELECT", "3"]), Frame::ok());
    assert_eq!(c.cmd(&["SELECT", "4"]), err("ERR DB index is out of range"));
}

#[test]
fn invalid_configuration_stops_startup_with_a_message_naming_the_key() {
    let conf = tempfile::tempdir().expect("temp dir");
    let unknown = conf.path().join("unknown.toml");
    std::fs::write(&unknown, "maxclients = 5\nmax-clients = 5\n").expect("write config");
    let mistyped = conf.path().join("mistyped.toml");
    std::fs::write(&mistyped, "databases = \"many\"\n").expect("write config");
    let unknown = unknown.to_str().expect("utf-8 path");
    let mistyped = mistyped.to_str().expect("utf-8 path");
    let cases: &[(&[&str], &str)] = &[
        (
            &["--databases", "0"],
            "databases must be between 1 and 1024, got 0",
        ),
        (
            &["--databases", "1025"],
            "databases must be between 1 and 1024, got 1025",
        ),
        (&["--maxclients", "0"], "maxclients must be at least 1"),
        (&["--maxmemory", "lots"], "maxmemory: 'lots' is not a size"),
        (
            &["--maxmemory-policy", "sometimes"],
            "maxmemory-policy: 'sometimes' is not one of",
        ),
        (&["--config", unknown], "unknown field `max-clients`"),
        // The TOML error quotes the offending line, which names the key.
        (&["--config", mistyped], "databases = \"many\""),
    ];
    for (args, message) in cases {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut node = Vigil::datanode(dir.path(), args);
        assert_eq!(node.ready_addr(), None, "{args:?}: started anyway");
        let status = node.wait(DEADLINE).expect("exits");
        assert!(!status.success(), "{args:?}: exit status {status:?}");
        let log = node.stderr();
        assert!(log.contains(message), "{args:?}: no {message:?} in: {log}");
    }
}

#[test]
fn vigil_up_serves_a_data_node_and_stops_on_sigint() {
    let mut up = Vigil::spawn(&["up"], None);
    let (addr, lines) = up.announced_address();
    let connect = format!("redis-cli -p {}", addr.port());
    assert!(
        lines.iter().any(|l| l.contains(&connect)),
        "no `{connect}` line in {lines:?}"
    );
    let mut c = Conn::new(addr);
    assert_eq!(c.cmd(&["PING"]), simple("PONG"));
    assert_eq!(c.cmd(&["SET", "k", "v"]), Frame::ok());
    let node_pid = info_u64(&mut c, "server", "process_id");
    assert!(
        up.extra.iter().any(|&p| u64::from(p) == node_pid),
        "the data node (pid {node_pid}) is not a child of `vigil up`"
    );

    signal(up.pid(), "INT");
    let status = up.wait(DEADLINE).expect("`vigil up` exits after SIGINT");
    assert!(status.success(), "{status:?}");
    assert!(disconnected(&mut c));
    wait_until(DEADLINE, || std::net::TcpStream::connect(addr).is_err());
}

#[test]
fn vigil_up_stops_cleanly_on_sigint_right_after_announcing() {
    // A user who presses Ctrl-C as soon as the address appears: `up` must already be handling
    // the signal, so it exits normally and takes the data node with it.
    let mut up = Vigil::spawn(&["up"], None);
    let (addr, _) = up.announced_address();
    signal(up.pid(), "INT");
    let status = up.wait(DEADLINE).expect("`vigil up` exits after SIGINT");
    assert!(status.success(), "{status:?}");
    wait_until(DEADLINE, || std::net::TcpStream::connect(addr).is_err());
}

/// Sends `SIGname` to `pid`.
fn signal(pid: u32, name: &str) {
    let status = Command::new("kill")
        .args([&format!("-{name}"), &pid.to_string()])
        .status()
        .expect("run kill");
    assert!(status.success(), "kill -{name} {pid}");
}

/// A `vigil` process whose exit status, stdout and stderr the test inspects (the harness guard
/// only kills); killed and reaped on drop, together with any process named by `also_kill`.
struct Vigil {
    child: Child,
    lines: mpsc::Receiver<String>,
    stderr: tempfile::NamedTempFile,
    extra: Vec<u32>,
}

impl Vigil {
    fn spawn(args: &[&str], dir: Option<&Path>) -> Vigil {
        let stderr = tempfile::NamedTempFile::new().expect("stderr file");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_vigil"));
        // The assertions read info-level events, whatever the caller's environment says.
        cmd.args(args).env("RUST_LOG", "info");
        if let Some(dir) = dir {
            cmd.args(["--bind", "127.0.0.1", "--port", "0", "--dir"])
                .arg(dir);
        }
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr.reopen().expect("stderr handle"))
            .spawn()
            .expect("spawn vigil");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, lines) = mpsc::channel();
        // Reads until the process closes stdout, so a read never blocks the test itself.
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { return };
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        Vigil {
            child,
            lines,
            stderr,
            extra: Vec::new(),
        }
    }

    /// `vigil datanode` on a free loopback port with working directory `dir`.
    fn datanode(dir: &Path, args: &[&str]) -> Vigil {
        let mut all = vec!["datanode"];
        all.extend_from_slice(args);
        Vigil::spawn(&all, Some(dir))
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The address of the `READY` line, or `None` if stdout closed (the process gave up) first.
    fn ready_addr(&mut self) -> Option<SocketAddr> {
        let line = self.lines.recv_timeout(DEADLINE).ok()?;
        let addr = line
            .strip_prefix("READY resp=")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"));
        Some(addr.parse().expect("READY address"))
    }

    /// Stdout lines up to and including the first that starts with `prefix`.
    fn stdout_lines_until(&mut self, prefix: &str) -> Vec<String> {
        let mut lines = Vec::new();
        let end = Instant::now() + DEADLINE;
        while lines.len() < 100 {
            let left = end.saturating_duration_since(Instant::now());
            let line = self
                .lines
                .recv_timeout(left)
                .unwrap_or_else(|e| panic!("no line starting {prefix:?} ({e}); got {lines:?}"));
            let done = line.starts_with(prefix);
            lines.push(line);
            if done {
                return lines;
            }
        }
        panic!("no line starting {prefix:?} in {lines:?}");
    }

    /// For `vigil up`: reads its announcement and returns the data node's address and the lines
    /// read. The processes `up` started are killed on drop, should `up` die without them.
    fn announced_address(&mut self) -> (SocketAddr, Vec<String>) {
        let lines = self.stdout_lines_until("stop:");
        let children = self.children();
        self.extra.extend(children);
        let addr: SocketAddr = lines
            .iter()
            .find_map(|l| l.trim().strip_prefix("data node (master)"))
            .map(|a| a.trim().parse().expect("address"))
            .unwrap_or_else(|| panic!("no data node address in {lines:?}"));
        assert!(addr.ip().is_loopback(), "{addr}");
        (addr, lines)
    }

    /// Process ids of this process's children.
    fn children(&self) -> Vec<u32> {
        let tasks = std::fs::read_dir(format!("/proc/{}/task", self.pid())).expect("task list");
        tasks
            .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("children")).ok())
            .flat_map(|list| {
                list.split_whitespace()
                    .filter_map(|p| p.parse().ok())
                    .collect::<Vec<u32>>()
            })
            .collect()
    }

    /// Waits up to `timeout` for the process to exit.
    fn wait(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let end = Instant::now() + timeout;
        while Instant::now() < end {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(self.stderr.path()).expect("read stderr")
    }
}

impl Drop for Vigil {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        for pid in &self.extra {
            // Only if that id still names a data node (it may have exited and been reused).
            let cmdline =
                std::fs::read_to_string(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            if cmdline.contains("datanode") {
                let _ = Command::new("kill")
                    .args(["-KILL", &pid.to_string()])
                    .status();
            }
        }
    }
}
