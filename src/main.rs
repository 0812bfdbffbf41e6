//! `vigil`: the one binary. Parses the command line, loads configuration (TOML file, then
//! environment, then flags), installs tracing and signal handling, and runs a subcommand.
//! No business logic lives here.

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, Command as Process, Stdio};
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use clap::{Args, Parser, Subcommand};
use serde::Deserialize;
use tokio_util::sync::CancellationToken;
use vigil_datanode::engine::EvictionPolicy;
use vigil_datanode::{Config, Runtime, Server};

// jemalloc, as Redis uses: compact size classes for millions of small keys, and an exact count
// of allocated bytes for `maxmemory` and INFO.
#[global_allocator]
static ALLOC: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[derive(Parser)]
#[command(name = "vigil", version, about = "Highly available Redis-compatible data layer")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a data node: a Redis-compatible server speaking RESP2/RESP3.
    Datanode(DatanodeArgs),
    /// Start a local cluster on loopback and stop it on Ctrl-C.
    Up(UpArgs),
}

#[derive(Args, Debug, Default)]
struct DatanodeArgs {
    /// TOML configuration file; flags and environment variables override its values.
    #[arg(long, env = "VIGIL_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,
    /// Address to listen on [default: 127.0.0.1].
    #[arg(long, env = "VIGIL_BIND")]
    bind: Option<String>,
    /// TCP port to listen on; 0 picks a free port [default: 6379].
    #[arg(long, env = "VIGIL_PORT")]
    port: Option<u16>,
    /// Working directory for snapshots and logs [default: .].
    #[arg(long, env = "VIGIL_DIR")]
    dir: Option<PathBuf>,
    /// Number of logical databases, 1 to 1024 [default: 16].
    #[arg(long, env = "VIGIL_DATABASES")]
    databases: Option<usize>,
    /// Most simultaneous clients; more are refused [default: 10000].
    #[arg(long, env = "VIGIL_MAXCLIENTS")]
    maxclients: Option<usize>,
    /// Memory limit, such as 100mb or 2gb; 0 means none [default: 0].
    #[arg(long, env = "VIGIL_MAXMEMORY")]
    maxmemory: Option<String>,
    /// What to do at the memory limit: noeviction, allkeys-lru, volatile-lru, allkeys-random,
    /// volatile-random or volatile-ttl [default: noeviction].
    #[arg(long, env = "VIGIL_MAXMEMORY_POLICY")]
    maxmemory_policy: Option<String>,
    /// Password clients must send with AUTH [default: none].
    #[arg(long, env = "VIGIL_REQUIREPASS", hide_env_values = true)]
    requirepass: Option<String>,
}

/// The TOML file: the same keys as the flags.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
struct DatanodeFile {
    bind: Option<String>,
    port: Option<u16>,
    dir: Option<PathBuf>,
    databases: Option<usize>,
    maxclients: Option<usize>,
    maxmemory: Option<toml::Value>,
    maxmemory_policy: Option<String>,
    requirepass: Option<String>,
}

#[derive(Args, Debug)]
struct UpArgs {
    /// First port to use for the data node; 0 picks a free one.
    #[arg(long, default_value_t = 0)]
    port: u16,
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    match cli.command {
        Command::Datanode(args) => {
            let config = datanode_config(args)?;
            tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .context("starting the async runtime")?
                .block_on(run_datanode(config))
        }
        Command::Up(args) => up(args),
    }
}

fn datanode_config(args: DatanodeArgs) -> Result<Config> {
    let file: DatanodeFile = match &args.config {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading config file {}", path.display()))?;
            toml::from_str(&text).with_context(|| format!("in config file {}", path.display()))?
        }
        None => DatanodeFile::default(),
    };
    let mut c = Config::default();
    if let Some(v) = args.bind.or(file.bind) {
        c.bind = v;
    }
    if let Some(v) = args.port.or(file.port) {
        c.port = v;
    }
    if let Some(v) = args.dir.or(file.dir) {
        c.dir = v;
    }
    if let Some(v) = args.databases.or(file.databases) {
        c.databases = v;
    }
    if let Some(v) = args.maxclients.or(file.maxclients) {
        c.maxclients = v;
    }
    let maxmemory = args.maxmemory.or(file.maxmemory.map(|v| match v {
        toml::Value::String(s) => s,
        other => other.to_string(),
    }));
    if let Some(v) = maxmemory {
        c.maxmemory = vigil_datanode::config::parse_memory(&v)
            .ok_or_else(|| anyhow!("maxmemory: '{v}' is not a size (examples: 0, 100mb, 2gb)"))?;
    }
    if let Some(v) = args.maxmemory_policy.or(file.maxmemory_policy) {
        c.maxmemory_policy = EvictionPolicy::parse(&v).ok_or_else(|| {
            anyhow!("maxmemory-policy: '{v}' is not one of noeviction, allkeys-lru, volatile-lru, allkeys-random, volatile-random, volatile-ttl")
        })?;
    }
    if let Some(v) = args.requirepass.or(file.requirepass) {
        c.requirepass = v;
    }
    c.validate().context("invalid configuration")?;
    if !c.dir.is_dir() {
        bail!("dir: {} is not a directory", c.dir.display());
    }
    Ok(c)
}

fn used_memory() -> usize {
    // Statistics are cached by jemalloc until the epoch advances.
    let _ = tikv_jemalloc_ctl::epoch::advance();
    tikv_jemalloc_ctl::stats::allocated::read().unwrap_or(0)
}

fn rss() -> usize {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: usize = statm
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

async fn run_datanode(config: Config) -> Result<()> {
    let runtime = Runtime {
        used_memory: Some(used_memory),
        rss: Some(rss),
    };
    let server = Server::bind(config, runtime).await?;
    let addr = server.local_addr();
    let cancel = CancellationToken::new();
    tokio::spawn(shutdown_on_signal(cancel.clone()));
    // The one line tests and `vigil up` read to learn the address.
    println!("READY resp={addr}");
    std::io::stdout().flush().ok();
    server.run(cancel).await;
    Ok(())
}

async fn shutdown_on_signal(cancel: CancellationToken) {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) else {
        tracing::warn!("cannot install signal handlers; stop with SHUTDOWN");
        return;
    };
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM received, shutting down"),
        _ = int.recv() => tracing::info!("SIGINT received, shutting down"),
    }
    cancel.cancel();
}

/// A child process that is killed when dropped.
/// A data node started by `vigil up`: asked to shut down over RESP when dropped, and killed if it
/// has not exited within five seconds.
struct ChildGuard {
    child: Child,
    addr: Option<String>,
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if let Some(addr) = &self.addr {
            if let Ok(mut s) = std::net::TcpStream::connect(addr) {
                let _ = s.write_all(b"*1\r\n$8\r\nSHUTDOWN\r\n");
            }
            let deadline = std::time::Instant::now() + Duration::from_secs(5);
            while std::time::Instant::now() < deadline {
                if let Ok(Some(_)) = self.child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn up(args: UpArgs) -> Result<()> {
    // Handlers go in before anything starts: a Ctrl-C that arrives while the data node starts or
    // right after the address is printed must stop both, not kill us and orphan the data node.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let (mut interrupt, mut terminate) = rt
        .block_on(async {
            use tokio::signal::unix::{SignalKind, signal};
            Ok::<_, std::io::Error>((signal(SignalKind::interrupt())?, signal(SignalKind::terminate())?))
        })
        .context("installing signal handlers")?;
    let exe = std::env::current_exe().context("locating the vigil binary")?;
    let dir = tempfile_dir()?;
    let mut child = Process::new(&exe)
        .args(["datanode", "--bind", "127.0.0.1", "--port", &args.port.to_string(), "--dir"])
        .arg(&dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .context("starting the data node")?;
    let stdout = child.stdout.take().context("reading the data node's output")?;
    let mut guard = ChildGuard { child, addr: None };
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .context("waiting for the data node to start")?;
    let addr = line
        .trim()
        .strip_prefix("READY resp=")
        .ok_or_else(|| anyhow!("the data node did not start: {line:?}"))?
        .to_string();
    guard.addr = Some(addr.clone());
    let port = addr.rsplit(':').next().unwrap_or("6379");
    println!("vigil local cluster is up (data in {})", dir.display());
    println!();
    println!("  data node (master)  {addr}");
    println!();
    println!("connect:  redis-cli -p {port}");
    println!("stop:     Ctrl-C");
    std::io::stdout().flush().ok();
    rt.block_on(async {
        tokio::select! {
            _ = interrupt.recv() => {}
            _ = terminate.recv() => {}
        }
    });
    println!("stopping");
    drop(guard);
    let _ = std::fs::remove_dir_all(&dir);
    std::thread::sleep(Duration::from_millis(10));
    Ok(())
}

fn tempfile_dir() -> Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("vigil-up-{}", std::process::id()));
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    Ok(dir)
}
