//! `vigil`: the one binary. Parses the command line, loads configuration (TOML file, then
//! environment, then flags), installs tracing and signal handling, and runs a subcommand.
//! No business logic lives here.

mod admin;

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
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
#[command(
    name = "vigil",
    version,
    about = "Highly available Redis-compatible data layer"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a data node: a Redis-compatible server speaking RESP2/RESP3.
    Datanode(Box<DatanodeArgs>),
    /// Run a sentinel: watch data-node groups, agree they are down, fail them over.
    Sentinel(Box<SentinelArgs>),
    /// Make a cluster CA and sentinel certificates.
    Certs(CertsArgs),
    /// Start a local cluster on loopback and stop it on Ctrl-C.
    Up(UpArgs),
    /// Query and control sentinels over their gRPC API.
    Admin(admin::AdminArgs),
}

#[derive(Args, Debug, Default)]
struct SentinelArgs {
    /// TOML configuration file (see README); flags override its values.
    #[arg(
        long,
        env = "VIGIL_SENTINEL_CONFIG",
        value_name = "FILE",
        conflicts_with = "redis_config"
    )]
    config: Option<PathBuf>,
    /// A Redis Sentinel sentinel.conf to run from instead (it is never rewritten).
    #[arg(long, value_name = "FILE")]
    redis_config: Option<PathBuf>,
    /// Directory of the state file and the dev identity [default: .].
    #[arg(long, env = "VIGIL_SENTINEL_DIR")]
    dir: Option<PathBuf>,
    /// UDP address of the QUIC gossip endpoint; port 0 picks a free one [default: 127.0.0.1:26379].
    #[arg(long, value_name = "IP:PORT")]
    gossip: Option<String>,
    /// TCP address of the RESP sentinel port; port 0 picks a free one [default: 127.0.0.1:26379].
    #[arg(long, value_name = "IP:PORT")]
    resp: Option<String>,
    /// TCP address of the gRPC control API; port 0 picks a free one [default: the RESP port
    /// + 10000 on the same IP, 127.0.0.1:36379].
    #[arg(long, value_name = "IP:PORT")]
    grpc: Option<String>,
    /// Gossip address peers should dial, when it differs from --gossip (NAT).
    #[arg(long, value_name = "IP:PORT")]
    announce: Option<String>,
    /// Gossip address of a sentinel to join; repeatable. A new sentinel with seeds waits to be
    /// admitted into their cluster; one without founds a cluster.
    #[arg(long, value_name = "IP:PORT")]
    join: Vec<String>,
    /// Found a new cluster even with --join seeds (exactly one sentinel of a new cluster whose
    /// sentinels all list each other).
    #[arg(long)]
    bootstrap: bool,
    /// This sentinel's data-centre label.
    #[arg(long)]
    dc: Option<String>,
}

#[derive(Args, Debug)]
struct CertsArgs {
    #[command(subcommand)]
    command: CertsCommand,
}

#[derive(Subcommand, Debug)]
enum CertsCommand {
    /// Create a cluster CA (ca.crt, ca.key) in --dir.
    Init {
        /// Directory to write the CA into.
        #[arg(long)]
        dir: PathBuf,
    },
    /// Issue a certificate NAME.crt/NAME.key signed by the CA in --dir.
    Issue {
        /// Directory holding the CA; the certificate is written there too.
        #[arg(long)]
        dir: PathBuf,
        /// The sentinel's name (its identity; letters, digits, '.', '_', '-').
        #[arg(long)]
        name: String,
        /// Host names and IP addresses to put in the certificate; repeatable.
        #[arg(long = "host")]
        hosts: Vec<String>,
    },
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
    /// Start as a replica of this master, as HOST:PORT [default: start as a master].
    #[arg(long, env = "VIGIL_REPLICAOF", value_name = "HOST:PORT")]
    replicaof: Option<String>,
    /// Password for the master, when it requires AUTH [default: none].
    #[arg(long, env = "VIGIL_MASTERAUTH", hide_env_values = true)]
    masterauth: Option<String>,
    /// Snapshot rules as "seconds changes" pairs, such as "900 1 300 10": save the RDB file when
    /// that many writes happened within that many seconds; "" disables automatic snapshots and
    /// the save on SIGTERM [default: "3600 1 300 100 60 10000", as Redis].
    #[arg(long, env = "VIGIL_SAVE", value_name = "RULES")]
    save: Option<String>,
    /// RDB snapshot file name inside --dir, loaded at start [default: dump.rdb].
    #[arg(long, env = "VIGIL_DBFILENAME", value_name = "FILE")]
    dbfilename: Option<String>,
    /// Load the valid prefix of a truncated or corrupt RDB file at start instead of refusing to
    /// start (the damage is logged with its offset).
    #[arg(long, env = "VIGIL_RDB_LOAD_TRUNCATED")]
    rdb_load_truncated: bool,
    /// Log every write to the append-only file, yes or no; when yes, the file is loaded at start
    /// instead of the RDB file [default: no].
    #[arg(long, env = "VIGIL_APPENDONLY", value_name = "yes|no")]
    appendonly: Option<String>,
    /// Append-only file name inside --dir: an RDB base followed by the write commands in RESP
    /// [default: appendonly.aof].
    #[arg(long, env = "VIGIL_APPENDFILENAME", value_name = "FILE")]
    appendfilename: Option<String>,
    /// When the append-only file is fsynced: always (before replying; one fsync per batch of
    /// writers), everysec or no [default: everysec].
    #[arg(long, env = "VIGIL_APPENDFSYNC", value_name = "POLICY")]
    appendfsync: Option<String>,
    /// Load the valid prefix of a truncated or corrupt append-only file at start, and rewrite the
    /// file from it, instead of refusing to start (the damage is logged with its offset).
    #[arg(long, env = "VIGIL_AOF_LOAD_TRUNCATED")]
    aof_load_truncated: bool,
    /// Refuse client writes on a master without valid write leases from a majority of its
    /// sentinels (-NOLEASE): off, auto (from the first lease a sentinel grants) or on (from
    /// start) [default: auto].
    #[arg(long, env = "VIGIL_WRITE_FENCING", value_name = "off|auto|on")]
    write_fencing: Option<String>,
    /// Data-centre label, reported in INFO for DC-aware promotion [default: none].
    #[arg(long, env = "VIGIL_DC")]
    dc: Option<String>,
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
    replicaof: Option<String>,
    masterauth: Option<String>,
    save: Option<String>,
    dbfilename: Option<String>,
    rdb_load_truncated: Option<bool>,
    appendonly: Option<bool>,
    appendfilename: Option<String>,
    appendfsync: Option<String>,
    aof_load_truncated: Option<bool>,
    write_fencing: Option<String>,
    dc: Option<String>,
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
            let config = datanode_config(*args)?;
            tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .context("starting the async runtime")?
                .block_on(run_datanode(config))
        }
        Command::Sentinel(args) => {
            let settings = sentinel_settings(*args)?;
            tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .context("starting the async runtime")?
                .block_on(run_sentinel(settings))
        }
        Command::Certs(args) => certs(args),
        Command::Up(args) => up(args),
        Command::Admin(args) => admin::run(args),
    }
}

fn sentinel_settings(args: SentinelArgs) -> Result<vigil_sentinel::settings::Settings> {
    use vigil_sentinel::settings::Settings;
    let mut s = if let Some(path) = &args.config {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading config file {}", path.display()))?;
        Settings::from_toml(&text).with_context(|| format!("in config file {}", path.display()))?
    } else if let Some(path) = &args.redis_config {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading Redis Sentinel config {}", path.display()))?;
        Settings::from_redis_config(&text)
            .with_context(|| format!("in Redis Sentinel config {}", path.display()))?
    } else {
        Settings::empty(PathBuf::from("."))
    };
    let sock = |key: &str, v: &str| -> Result<std::net::SocketAddr> {
        v.parse()
            .map_err(|_| anyhow!("{key}: '{v}' is not an IP:PORT socket address"))
    };
    if let Some(v) = args.dir {
        s.dir = v;
    }
    if let Some(v) = &args.gossip {
        s.gossip = sock("gossip", v)?;
    }
    if let Some(v) = &args.resp {
        s.resp = Some(sock("resp", v)?);
    }
    if let Some(v) = &args.grpc {
        s.grpc = Some(sock("grpc", v)?);
        s.grpc_set = true;
    }
    if let Some(v) = &args.announce {
        s.announce = Some(sock("announce", v)?);
    }
    for j in &args.join {
        s.join.push(sock("join", j)?);
    }
    if args.bootstrap {
        s.bootstrap = true;
    }
    if let Some(v) = args.dc {
        s.dc = Some(v);
    }
    s.derive_grpc();
    s.validate().context("invalid configuration")?;
    Ok(s)
}

async fn run_sentinel(settings: vigil_sentinel::settings::Settings) -> Result<()> {
    let cancel = CancellationToken::new();
    tokio::spawn(shutdown_on_signal(cancel.clone()));
    vigil_sentinel::daemon::run(settings, cancel, |ep| {
        // The one line tests and `vigil up` read to learn the addresses.
        let mut line = format!("READY gossip={}", ep.gossip);
        if let Some(r) = ep.resp {
            line.push_str(&format!(" resp={r}"));
        }
        if let Some(g) = ep.grpc {
            line.push_str(&format!(" grpc={g}"));
        }
        line.push_str(&format!(" id={} name={}", ep.id.0, ep.name));
        println!("{line}");
        std::io::stdout().flush().ok();
    })
    .await
    .context("sentinel stopped")
}

fn certs(args: CertsArgs) -> Result<()> {
    match args.command {
        CertsCommand::Init { dir } => {
            std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
            vigil_sentinel::tls::init_ca(&dir)?;
            println!("cluster CA written to {}", dir.join("ca.crt").display());
        }
        CertsCommand::Issue { dir, name, hosts } => {
            let (crt, key) = vigil_sentinel::tls::issue(&dir, &name, &hosts)?;
            println!("certificate {} and key {}", crt.display(), key.display());
        }
    }
    Ok(())
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
    if let Some(v) = args.replicaof.or(file.replicaof) {
        let (host, port) = v
            .rsplit_once(':')
            .and_then(|(h, p)| Some((h.to_string(), p.parse::<u16>().ok().filter(|p| *p != 0)?)))
            .ok_or_else(|| {
                anyhow!("replicaof: '{v}' is not HOST:PORT (example: 127.0.0.1:6379)")
            })?;
        c.replicaof = Some((host, port));
    }
    if let Some(v) = args.masterauth.or(file.masterauth) {
        c.masterauth = v;
    }
    let p = &mut c.persist;
    if let Some(v) = args.save.or(file.save) {
        p.save = vigil_datanode::persist::config::parse_save(&v).ok_or_else(|| {
            anyhow!("save: '{v}' is not pairs of seconds and changes (example: \"900 1 300 10\")")
        })?;
    }
    if let Some(v) = args.dbfilename.or(file.dbfilename) {
        p.dbfilename = v;
    }
    p.rdb_load_truncated = args.rdb_load_truncated || file.rdb_load_truncated.unwrap_or(false);
    let appendonly = match args.appendonly {
        Some(v) => Some(
            vigil_datanode::config::parse_bool(&v)
                .ok_or_else(|| anyhow!("appendonly: '{v}' is not yes or no"))?,
        ),
        None => file.appendonly,
    };
    if let Some(v) = appendonly {
        p.appendonly = v;
    }
    if let Some(v) = args.appendfilename.or(file.appendfilename) {
        p.appendfilename = v;
    }
    if let Some(v) = args.appendfsync.or(file.appendfsync) {
        p.appendfsync = vigil_datanode::persist::AppendFsync::parse(&v)
            .ok_or_else(|| anyhow!("appendfsync: '{v}' is not one of always, everysec, no"))?;
    }
    p.aof_load_truncated = args.aof_load_truncated || file.aof_load_truncated.unwrap_or(false);
    if let Some(v) = args.write_fencing.or(file.write_fencing) {
        c.write_fencing = vigil_datanode::fencing::WriteFencing::parse(&v)
            .ok_or_else(|| anyhow!("write-fencing: '{v}' is not one of off, auto, on"))?;
    }
    if let Some(v) = args.dc.or(file.dc) {
        c.dc = v;
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
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
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
            Ok::<_, std::io::Error>((
                signal(SignalKind::interrupt())?,
                signal(SignalKind::terminate())?,
            ))
        })
        .context("installing signal handlers")?;
    let exe = std::env::current_exe().context("locating the vigil binary")?;
    let dir = tempfile_dir()?;
    // Guards drop in reverse order: replicas stop before their master.
    let mut nodes: Vec<ChildGuard> = Vec::new();
    let master = start_node(&exe, &dir.join("master"), args.port, &mut nodes)?;
    let mut replicas = Vec::new();
    for i in 1..=2 {
        let addr = start_node(&exe, &dir.join(format!("replica-{i}")), 0, &mut nodes)?;
        let (host, port) = master.rsplit_once(':').unwrap_or((&master, "6379"));
        let reply = resp_command(&addr, &["REPLICAOF", host, port])
            .with_context(|| format!("making {addr} a replica of {master}"))?;
        if reply != "+OK" {
            bail!("{addr} refused REPLICAOF: {reply}");
        }
        replicas.push(addr);
    }
    let sentinels = start_sentinels(&exe, &dir, &master, &replicas, &mut nodes)?;
    let port = master.rsplit(':').next().unwrap_or("6379");
    println!("vigil local cluster is up (data in {})", dir.display());
    println!();
    println!("  data node (master)  {master}");
    for r in &replicas {
        println!("  data node (replica) {r}");
    }
    for (i, (gossip, resp, grpc)) in sentinels.iter().enumerate() {
        println!(
            "  sentinel s{}         resp {resp}  grpc (TLS) {grpc}  gossip (QUIC, mTLS) {gossip}",
            i + 1
        );
    }
    println!();
    println!("connect:  redis-cli -p {port}");
    if let Some((_, resp, grpc)) = sentinels.first() {
        let sport = resp.rsplit(':').next().unwrap_or("26379");
        println!("master:   redis-cli -p {sport} SENTINEL get-master-addr-by-name {UP_GROUP}");
        println!(
            "status:   vigil admin --sentinel https://{grpc} --tls-ca {} status",
            dir.join("certs").join("ca.crt").display()
        );
    }
    println!("stop:     Ctrl-C");
    std::io::stdout().flush().ok();
    rt.block_on(async {
        tokio::select! {
            _ = interrupt.recv() => {}
            _ = terminate.recv() => {}
        }
    });
    println!("stopping");
    while let Some(node) = nodes.pop() {
        drop(node);
    }
    let _ = std::fs::remove_dir_all(&dir);
    std::thread::sleep(Duration::from_millis(10));
    Ok(())
}

/// The group `vigil up` monitors.
const UP_GROUP: &str = "mymaster";

/// Starts three sentinels watching the local group, with a generated cluster CA (mTLS between
/// them), and returns each one's `(gossip, resp, grpc)` addresses.
fn start_sentinels(
    exe: &Path,
    dir: &Path,
    master: &str,
    replicas: &[String],
    nodes: &mut Vec<ChildGuard>,
) -> Result<Vec<(String, String, String)>> {
    let certs = dir.join("certs");
    std::fs::create_dir_all(&certs).with_context(|| format!("creating {}", certs.display()))?;
    vigil_sentinel::tls::init_ca(&certs).context("creating the dev cluster CA")?;
    let mut out: Vec<(String, String, String)> = Vec::new();
    for i in 1..=3 {
        let name = format!("s{i}");
        let (crt, key) = vigil_sentinel::tls::issue(&certs, &name, &["127.0.0.1".to_string()])
            .with_context(|| format!("issuing the certificate of {name}"))?;
        let sdir = dir.join(format!("sentinel-{i}"));
        std::fs::create_dir_all(&sdir).with_context(|| format!("creating {}", sdir.display()))?;
        let join = match out.first() {
            Some((gossip, _, _)) => format!("join = [\"{gossip}\"]\n"),
            None => String::new(),
        };
        let replicas: Vec<String> = replicas.iter().map(|r| format!("\"{r}\"")).collect();
        let toml = format!(
            "dir = {sdir:?}\ngossip = \"127.0.0.1:0\"\nresp = \"127.0.0.1:0\"\ngrpc = \"127.0.0.1:0\"\n{join}\n\
             [tls]\nca = {ca:?}\ncert = {crt:?}\nkey = {key:?}\n\n\
             [[group]]\nname = \"{UP_GROUP}\"\nmaster = \"{master}\"\nreplicas = [{}]\n\
             quorum = 2\ndown-after-ms = 1000\nfailover-timeout-ms = 10000\n",
            replicas.join(", "),
            ca = certs.join("ca.crt"),
        );
        let file = sdir.join("sentinel.toml");
        std::fs::write(&file, toml).with_context(|| format!("writing {}", file.display()))?;
        let mut child = Process::new(exe)
            .arg("sentinel")
            .arg("--config")
            .arg(&file)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .context("starting a sentinel")?;
        let stdout = child
            .stdout
            .take()
            .context("reading the sentinel's output")?;
        nodes.push(ChildGuard { child, addr: None });
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .context("waiting for the sentinel to start")?;
        let field = |k: &str| {
            line.split_whitespace()
                .find_map(|w| w.strip_prefix(k))
                .map(str::to_string)
        };
        match (field("gossip="), field("resp="), field("grpc=")) {
            (Some(g), Some(r), Some(c)) if line.starts_with("READY ") => out.push((g, r, c)),
            _ => bail!("the sentinel did not start: {line:?}"),
        }
    }
    Ok(out)
}

/// Starts `vigil datanode` in `dir` on `port` (0: any free port), adds its guard to `nodes`,
/// and returns the address from its READY line.
fn start_node(exe: &Path, dir: &Path, port: u16, nodes: &mut Vec<ChildGuard>) -> Result<String> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut child = Process::new(exe)
        .args([
            "datanode",
            "--bind",
            "127.0.0.1",
            "--port",
            &port.to_string(),
            "--dir",
        ])
        .arg(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .context("starting a data node")?;
    let stdout = child
        .stdout
        .take()
        .context("reading the data node's output")?;
    nodes.push(ChildGuard { child, addr: None });
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .context("waiting for the data node to start")?;
    let addr = line
        .trim()
        .strip_prefix("READY resp=")
        .ok_or_else(|| anyhow!("the data node did not start: {line:?}"))?
        .to_string();
    if let Some(guard) = nodes.last_mut() {
        guard.addr = Some(addr.clone());
    }
    Ok(addr)
}

/// Sends one command and returns the first line of the reply.
fn resp_command(addr: &str, args: &[&str]) -> Result<String> {
    let mut stream =
        std::net::TcpStream::connect(addr).with_context(|| format!("connecting to {addr}"))?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut req = format!("*{}\r\n", args.len());
    for a in args {
        req.push_str(&format!("${}\r\n{a}\r\n", a.len()));
    }
    stream.write_all(req.as_bytes())?;
    let mut line = String::new();
    BufReader::new(stream).read_line(&mut line)?;
    Ok(line.trim_end().to_string())
}

fn tempfile_dir() -> Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("vigil-up-{}", std::process::id()));
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    Ok(dir)
}
