//! Process guards and helpers shared by the end-to-end tests.
//!
//! Every child process sits in a guard that kills it and waits on `Drop`, with its own temporary
//! directory; addresses come from the `READY` line each process prints after binding port 0.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use vigil_proto::resp::{self, Frame, Limits};

/// A running process, killed when dropped.
pub struct Proc {
    child: Child,
    /// The address it serves RESP on.
    pub addr: SocketAddr,
    /// Its working directory (removed on drop).
    pub dir: tempfile::TempDir,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Proc {
    /// The child's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits up to `timeout` for the process to exit by itself; true if it did.
    pub fn wait_exit(&mut self, timeout: Duration) -> bool {
        let end = Instant::now() + timeout;
        while Instant::now() < end {
            if let Ok(Some(_)) = self.child.try_wait() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }
}

/// Starts `vigil datanode` on a free loopback port with extra `args`. Like `redis_server`, it
/// runs without save rules (`--save ""`), so no test writes snapshots unless it asks to.
pub fn datanode(args: &[&str]) -> Proc {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut child = Command::new(env!("CARGO_BIN_EXE_vigil"))
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
        .expect("spawn vigil datanode");
    let stdout = child.stdout.take().expect("piped stdout");
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .expect("read READY line");
    let addr = line
        .trim()
        .strip_prefix("READY resp=")
        .unwrap_or_else(|| panic!("no READY line, got {line:?}"))
        .parse()
        .expect("READY address");
    Proc { child, addr, dir }
}

/// True when `redis-server` is installed (the compatibility tests need it).
pub fn have_redis() -> bool {
    Command::new("redis-server")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Starts a real `redis-server` on a free loopback port.
pub fn redis_server(extra: &[&str]) -> Proc {
    let dir = tempfile::tempdir().expect("temp dir");
    let port = free_port();
    let child = Command::new("redis-server")
        .args([
            "--bind",
            "127.0.0.1",
            "--port",
            &port.to_string(),
            "--save",
            "",
            "--appendonly",
            "no",
        ])
        .arg("--dir")
        .arg(dir.path())
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn redis-server");
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().expect("addr");
    wait_until(Duration::from_secs(10), || TcpStream::connect(addr).is_ok());
    Proc { child, addr, dir }
}

/// A port that was free a moment ago.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// Waits until the kernel reports `pid` stopped (state `T` in /proc/PID/stat): `kill -STOP`
/// returns before the process has necessarily stopped running.
pub fn wait_stopped(pid: u32) {
    wait_until(Duration::from_secs(10), || {
        std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
            s.rsplit_once(')')
                .is_some_and(|(_, rest)| rest.trim_start().starts_with('T'))
        })
    });
}

/// Polls `cond` every 10 ms until it holds or `timeout` passes (then panics).
pub fn wait_until(timeout: Duration, mut cond: impl FnMut() -> bool) {
    let end = Instant::now() + timeout;
    while Instant::now() < end {
        if cond() {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!("condition not met within {timeout:?}");
}

/// A raw RESP connection: sends commands, reads exact reply frames.
pub struct Conn {
    stream: TcpStream,
    buf: BytesMut,
}

impl Conn {
    /// Connects to `addr`.
    pub fn new(addr: SocketAddr) -> Conn {
        let stream = TcpStream::connect(addr).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        Conn {
            stream,
            buf: BytesMut::new(),
        }
    }

    /// Sends raw bytes.
    pub fn send_raw(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("write");
    }

    /// Sends one command.
    pub fn send(&mut self, args: &[&[u8]]) {
        let mut out = BytesMut::new();
        resp::encode_command(args, &mut out);
        self.send_raw(&out);
    }

    /// Reads one reply frame; `None` if the server closed the connection.
    pub fn read(&mut self) -> Option<Frame> {
        loop {
            if let Some((f, n)) = resp::decode(&self.buf, &Limits::default()).expect("valid reply")
            {
                let _ = self.buf.split_to(n);
                return Some(f);
            }
            let mut chunk = [0u8; 65536];
            match self.stream.read(&mut chunk) {
                Ok(0) | Err(_) => return None,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
            }
        }
    }

    /// Sends a command given as strings and reads its reply.
    pub fn cmd(&mut self, args: &[&str]) -> Frame {
        let raw: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
        self.send(&raw);
        self.read().expect("reply")
    }

    /// True once the server closed the connection (reads until EOF, up to the read timeout).
    pub fn closed(&mut self) -> bool {
        let mut chunk = [0u8; 4096];
        loop {
            match self.stream.read(&mut chunk) {
                Ok(0) => return true,
                Ok(_) => continue,
                Err(_) => return false,
            }
        }
    }

    /// The underlying stream.
    pub fn stream(&mut self) -> &mut TcpStream {
        &mut self.stream
    }
}
