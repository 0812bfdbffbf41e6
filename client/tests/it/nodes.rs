//! Data nodes for the client tests: a scripted fake RESP node, and real `vigil datanode`
//! processes (for the tests marked `#[ignore]`).

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use vigil_proto::resp::{Limits, RequestDecoder};

/// How a `FakeNode` answers commands other than the connection handshake.
#[derive(Clone, Debug)]
pub enum Mode {
    /// `+OK` to everything (`$-1` to GET).
    Ok,
    /// This error line (without the `-`) to everything.
    Refuse(&'static str),
    /// Close the connection without answering (the command was received: outcome unknown).
    Drop,
}

/// A fake data node on a loopback port that answers by its `Mode` and records commands.
pub struct FakeNode {
    /// `127.0.0.1:PORT`.
    pub addr: String,
    mode: Arc<Mutex<Mode>>,
    received: Arc<Mutex<Vec<String>>>,
    open: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl FakeNode {
    /// Starts a fake node answering by `mode`.
    pub async fn start(mode: Mode) -> FakeNode {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr").to_string();
        let mode = Arc::new(Mutex::new(mode));
        let received = Arc::new(Mutex::new(Vec::new()));
        let open = Arc::new(AtomicUsize::new(0));
        let (m, r, o) = (Arc::clone(&mode), Arc::clone(&received), Arc::clone(&open));
        let task = tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                let (m, r, o) = (Arc::clone(&m), Arc::clone(&r), Arc::clone(&o));
                tokio::spawn(async move {
                    o.fetch_add(1, Ordering::SeqCst);
                    serve(socket, m, r).await;
                    o.fetch_sub(1, Ordering::SeqCst);
                });
            }
        });
        FakeNode {
            addr,
            mode,
            received,
            open,
            task,
        }
    }

    /// Changes how later commands are answered.
    pub fn set_mode(&self, mode: Mode) {
        *self.mode.lock().expect("lock") = mode;
    }

    /// The commands received (outside the handshake), as their arguments joined by spaces.
    pub fn received(&self) -> Vec<String> {
        self.received.lock().expect("lock").clone()
    }

    /// The number of connections open now.
    pub fn open_connections(&self) -> usize {
        self.open.load(Ordering::SeqCst)
    }

    /// Waits up to 10 s until `n` commands were received.
    pub async fn wait_received(&self, n: usize) {
        wait_until(|| self.received().len() >= n).await;
    }
}

impl Drop for FakeNode {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve(
    mut socket: tokio::net::TcpStream,
    mode: Arc<Mutex<Mode>>,
    received: Arc<Mutex<Vec<String>>>,
) {
    let mut decoder = RequestDecoder::new(Limits::default());
    let mut buf = BytesMut::new();
    loop {
        let args = match decoder.decode(&mut buf) {
            Ok(Some(args)) => args,
            Ok(None) => match socket.read_buf(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => continue,
            },
            Err(_) => return,
        };
        let words: Vec<String> = args
            .iter()
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        let name = words
            .first()
            .map(|w| w.to_ascii_uppercase())
            .unwrap_or_default();
        let reply: &[u8] = if matches!(
            name.as_str(),
            "CLIENT" | "HELLO" | "AUTH" | "SELECT" | "PING"
        ) {
            b"+OK\r\n"
        } else {
            received.lock().expect("lock").push(words.join(" "));
            let mode = mode.lock().expect("lock").clone();
            match mode {
                Mode::Ok if name == "GET" => b"$-1\r\n",
                Mode::Ok => b"+OK\r\n",
                Mode::Refuse(line) => {
                    let out = format!("-{line}\r\n");
                    if socket.write_all(out.as_bytes()).await.is_err() {
                        return;
                    }
                    continue;
                }
                Mode::Drop => return,
            }
        };
        if socket.write_all(reply).await.is_err() {
            return;
        }
    }
}

/// Polls `cond` every 10 ms for up to 10 s, then panics.
pub async fn wait_until(mut cond: impl FnMut() -> bool) {
    for _ in 0..1000 {
        if cond() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("condition not met within 10 s");
}

/// A `vigil datanode` process, killed when dropped.
pub struct VigilNode {
    child: Child,
    /// `127.0.0.1:PORT`, from its READY line.
    pub addr: String,
    _dir: tempfile::TempDir,
}

impl VigilNode {
    /// Starts `vigil datanode` on a free loopback port, without snapshots, with extra `args`.
    pub fn start(args: &[&str]) -> VigilNode {
        let bin = vigil_bin();
        let dir = tempfile::tempdir().expect("temp dir");
        let mut child = Command::new(&bin)
            .args([
                "datanode",
                "--bind",
                "127.0.0.1",
                "--port",
                "0",
                "--save",
                "",
                "--dir",
            ])
            .arg(dir.path())
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {}: {e}", bin.display()));
        let stdout = child.stdout.take().expect("piped stdout");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("read READY line");
        let addr = line
            .trim()
            .strip_prefix("READY resp=")
            .unwrap_or_else(|| panic!("no READY line, got {line:?}"))
            .to_owned();
        VigilNode {
            child,
            addr,
            _dir: dir,
        }
    }

    /// A plain `redis` connection to this node, for checking and reconfiguring it.
    pub async fn conn(&self) -> redis::aio::MultiplexedConnection {
        redis::Client::open(format!("redis://{}", self.addr))
            .expect("client")
            .get_multiplexed_async_connection()
            .await
            .expect("connect")
    }

    /// Runs one command on this node.
    pub async fn cmd(&self, args: &[&str]) -> redis::Value {
        let mut cmd = redis::cmd(args[0]);
        for a in &args[1..] {
            cmd.arg(*a);
        }
        cmd.query_async(&mut self.conn().await)
            .await
            .expect("command")
    }

    /// `GET key` on this node.
    pub async fn get(&self, key: &str) -> Option<String> {
        redis::cmd("GET")
            .arg(key)
            .query_async(&mut self.conn().await)
            .await
            .expect("GET")
    }

    /// `REPLICAOF` the node at `master` (`host:port`).
    pub async fn replicaof(&self, master: &str) {
        let (host, port) = master.rsplit_once(':').expect("host:port");
        self.cmd(&["REPLICAOF", host, port]).await;
    }

    /// Waits until this replica's link to its master is up (its INFO says so).
    pub async fn wait_linked(&self) {
        for _ in 0..1000 {
            let info: String = redis::cmd("INFO")
                .arg("replication")
                .query_async(&mut self.conn().await)
                .await
                .expect("INFO");
            if info.contains("master_link_status:up") {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("{}: replication link not up within 10 s", self.addr);
    }
}

impl Drop for VigilNode {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The `vigil` binary: `VIGIL_BIN`, else `$CARGO_TARGET_DIR/debug/vigil`, else the workspace's
/// `target/debug/vigil`, else next to this test binary's `deps/` directory.
fn vigil_bin() -> PathBuf {
    let mut candidates = Vec::new();
    if let Some(bin) = std::env::var_os("VIGIL_BIN") {
        candidates.push(PathBuf::from(bin));
    }
    if let Some(dir) = std::env::var_os("CARGO_TARGET_DIR") {
        candidates.push(PathBuf::from(dir).join("debug/vigil"));
    }
    let workspace = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    candidates.push(workspace.join("target/debug/vigil"));
    if let Ok(exe) = std::env::current_exe() {
        if let Some(debug) = exe.parent().and_then(|deps| deps.parent()) {
            candidates.push(debug.join("vigil"));
        }
    }
    candidates
        .iter()
        .find(|p| p.is_file())
        .cloned()
        .unwrap_or_else(|| {
            panic!("no vigil binary (set VIGIL_BIN or run `cargo build --bin vigil`); tried {candidates:?}")
        })
}
