//! `vigil admin` end to end: the real binary against a real `vigil sentinel` serving the gRPC
//! control API, which watches one real `vigil datanode`.
//!
//! Each test starts its own data node and sentinel (dev mode, no TLS) on free loopback ports and
//! reads their addresses from their `READY` lines. Output is checked as an operator or a script
//! sees it: the text table, the `--json` document parsed back, the exit status and stderr.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Output, Stdio};

use serde_json::Value;

use crate::harness::{Proc, datanode};

const GROUP: &str = "g";

/// A sentinel in dev mode with its gRPC API on a free port, killed when dropped.
struct Sentinel {
    child: Child,
    /// `http://IP:PORT` of its gRPC API.
    url: String,
    dir: tempfile::TempDir,
}

impl Sentinel {
    /// Starts a sentinel watching `master` as group `g` with quorum 1.
    fn start(master: &Proc) -> Sentinel {
        let dir = tempfile::tempdir().expect("temp dir");
        let config = dir.path().join("sentinel.toml");
        let toml = format!(
            "dir = {dir:?}\ngossip = \"127.0.0.1:0\"\nresp = \"127.0.0.1:0\"\n\
             grpc = \"127.0.0.1:0\"\n\n\
             [[group]]\nname = \"{GROUP}\"\nmaster = \"{master}\"\nquorum = 1\n\
             down-after-ms = 1000\n",
            dir = dir.path(),
            master = master.addr,
        );
        std::fs::write(&config, toml).expect("write sentinel.toml");
        let log = std::fs::File::create(dir.path().join("log")).expect("log file");
        let mut child = Command::new(env!("CARGO_BIN_EXE_vigil"))
            .arg("sentinel")
            .arg("--config")
            .arg(&config)
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log))
            .spawn()
            .expect("spawn vigil sentinel");
        let stdout = child.stdout.take().expect("piped stdout");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("READY line");
        let grpc = line
            .split_whitespace()
            .find_map(|w| w.strip_prefix("grpc="))
            .map(str::to_string);
        let mut s = Sentinel {
            child,
            url: String::new(),
            dir,
        };
        match grpc {
            Some(addr) if line.starts_with("READY ") => s.url = format!("http://{addr}"),
            _ => panic!(
                "sentinel did not start with a gRPC API: {line:?}\n{}",
                s.log()
            ),
        }
        s
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("log")).unwrap_or_default()
    }
}

impl Drop for Sentinel {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("---- sentinel log ----\n{}", self.log());
        }
    }
}

/// Runs `vigil admin --sentinel URL ARGS…` to completion.
fn admin(url: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_vigil"))
        .arg("admin")
        .arg("--sentinel")
        .arg(url)
        .args(["--timeout-ms", "10000"])
        .args(args)
        .env_remove("VIGIL_SENTINEL")
        .stdin(Stdio::null())
        .output()
        .expect("run vigil admin")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn admin_status_shows_the_group_and_the_sentinel() {
    let master = datanode(&[]);
    let sentinel = Sentinel::start(&master);

    let out = admin(&sentinel.url, &["status"]);
    let text = stdout(&out);
    assert!(out.status.success(), "status failed: {}", stderr(&out));
    let header = text.lines().next().unwrap_or_default();
    assert!(
        header.starts_with("GROUP") && header.contains("MASTER") && header.contains("LAG"),
        "no table header in:\n{text}"
    );
    let row = text
        .lines()
        .find(|l| l.starts_with(&format!("{GROUP} ")))
        .unwrap_or_else(|| panic!("no row for group {GROUP} in:\n{text}"));
    assert!(row.contains(&master.addr.to_string()), "row: {row}");
    assert!(
        text.contains("sentinels: 1 (1 connected)"),
        "no sentinel count in:\n{text}"
    );
    assert!(out.stderr.is_empty(), "stderr: {}", stderr(&out));
}

#[test]
fn admin_json_status_parses_back() {
    let master = datanode(&[]);
    let sentinel = Sentinel::start(&master);

    let out = admin(&sentinel.url, &["--json", "status"]);
    assert!(out.status.success(), "status failed: {}", stderr(&out));
    let v: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", stdout(&out)));
    let groups = v["groups"].as_array().expect("groups array");
    assert_eq!(groups.len(), 1, "{v}");
    assert_eq!(groups[0]["name"], GROUP);
    assert_eq!(groups[0]["master"], master.addr.to_string());
    assert_eq!(groups[0]["quorum"], 1);
    assert_eq!(groups[0]["down_after_ms"], 1000);
    let sentinels = v["sentinels"].as_array().expect("sentinels array");
    assert_eq!(sentinels.len(), 1, "{v}");
    assert_eq!(sentinels[0]["self"], true);
    assert_eq!(sentinels[0]["connected"], true);
    assert_eq!(v["sentinels_connected"], 1);
}

#[test]
fn admin_unknown_group_is_not_found_with_status_1() {
    let master = datanode(&[]);
    let sentinel = Sentinel::start(&master);

    let out = admin(&sentinel.url, &["group", "nosuch"]);
    assert_eq!(out.status.code(), Some(1), "stdout: {}", stdout(&out));
    let err = stderr(&out);
    assert!(err.starts_with("error: not found: "), "stderr: {err}");
    assert!(err.contains("nosuch"), "stderr: {err}");
    assert_eq!(err.lines().count(), 1, "stderr: {err}");
    assert!(out.stdout.is_empty(), "stdout: {}", stdout(&out));
}

/// Needs no sentinel: nothing listens on port 1.
#[test]
fn admin_unreachable_sentinel_is_one_error_line_with_status_1() {
    let out = admin("http://127.0.0.1:1", &["status"]);
    assert_eq!(out.status.code(), Some(1), "stdout: {}", stdout(&out));
    let err = stderr(&out);
    assert!(
        err.starts_with("error: cannot reach sentinel http://127.0.0.1:1: "),
        "stderr: {err}"
    );
    assert_eq!(err.lines().count(), 1, "stderr: {err}");
    assert!(!err.contains("panicked"), "stderr: {err}");
    assert!(out.stdout.is_empty(), "stdout: {}", stdout(&out));
}
