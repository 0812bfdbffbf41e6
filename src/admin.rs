//! `vigil admin`: query and control sentinels over their gRPC API (`vigil.v1.SentinelControl`).
//!
//! This module owns the command line of `vigil admin`, the connection to a sentinel (tried in
//! the order given until one answers; TLS and mutual TLS when asked), one call per command, and
//! the exit status. What is printed is built by the pure functions of `render`, so output is
//! tested without a server.
//!
//! Failures are one line on stderr, `error: …`, and exit status 1: `error: cannot reach sentinel
//! URL: reason` when no sentinel answers, `error: <gRPC code>: <message>` when one refuses.
//! Nothing here panics on input; a closed stdout (`vigil admin watch | head`) ends quietly.

mod render;

use std::collections::HashMap;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use serde_json::Value;
use tokio::sync::mpsc;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};
use tonic::{Code, Status};
use vigil_proto::control::{
    CheckQuorumRequest, FailoverRequest, ForgetSentinelRequest, GetGroupRequest, GetMasterRequest,
    ListGroupsRequest, ListSentinelsRequest, MonitorRequest, PauseRequest, RemoveRequest,
    ResetRequest, ResumeRequest, SentinelControlClient, SetOptionRequest, SwitchoverRequest,
    WatchEventsRequest, WatchMasterRequest, master_event,
};

use render::*;

/// Options of `vigil admin` and its command.
#[derive(Args, Clone, Debug)]
pub struct AdminArgs {
    /// gRPC URL of a sentinel; repeatable (or comma-separated): each is tried in turn until one
    /// answers [default: http://127.0.0.1:36379, https:// with --tls-ca].
    #[arg(
        long = "sentinel",
        env = "VIGIL_SENTINEL",
        value_name = "URL",
        value_delimiter = ',',
        global = true
    )]
    sentinels: Vec<String>,
    /// CA certificate (PEM) that signed the sentinels' certificates; enables TLS.
    #[arg(long, value_name = "FILE", global = true)]
    tls_ca: Option<PathBuf>,
    /// Client certificate (PEM) for mutual TLS; needs --tls-key.
    #[arg(long, value_name = "FILE", requires = "tls_key", global = true)]
    tls_cert: Option<PathBuf>,
    /// Private key (PEM) of --tls-cert.
    #[arg(long, value_name = "FILE", requires = "tls_cert", global = true)]
    tls_key: Option<PathBuf>,
    /// Print JSON instead of tables (one object per line for `watch`).
    #[arg(long, global = true)]
    json: bool,
    /// Deadline of connecting and of each call, in milliseconds (not of `watch` once it runs).
    #[arg(long, value_name = "N", default_value_t = 5000, global = true)]
    timeout_ms: u64,
    #[command(subcommand)]
    command: AdminCommand,
}

#[derive(Clone, Debug, Subcommand)]
enum AdminCommand {
    /// Every group with its master, epoch, flags and replicas, and the sentinels.
    Status,
    /// One line per group.
    Groups,
    /// One group in detail.
    Group {
        /// The group's name.
        name: String,
    },
    /// The current master of a group and its config epoch.
    Master {
        /// The group's name.
        name: String,
    },
    /// The sentinels the answering one knows, or `sentinels forget ID|NAME`.
    Sentinels {
        #[command(subcommand)]
        command: Option<SentinelsCommand>,
    },
    /// Whether enough sentinels are reachable to fail a group over (exit status 1 if not).
    Ckquorum {
        /// The group's name.
        name: String,
    },
    /// Fail a group over now, even if its master is healthy.
    Failover {
        /// The group's name.
        name: String,
    },
    /// Planned, zero-loss switchover to a replica.
    Switchover {
        /// The group's name.
        name: String,
        /// The replica to promote, as HOST:PORT [default: the sentinels choose].
        #[arg(long, value_name = "ADDR")]
        to: Option<String>,
    },
    /// Maintenance mode: no automatic failover of a group until `resume`.
    Pause {
        /// The group's name.
        name: String,
    },
    /// Leave maintenance mode.
    Resume {
        /// The group's name.
        name: String,
    },
    /// Forget a group's discovered replicas and rediscover them from its master.
    Reset {
        /// The group's name.
        name: String,
    },
    /// Start watching a new group.
    Monitor {
        /// The group's name.
        name: String,
        /// Its master, as HOST:PORT.
        addr: String,
        /// Sentinels that must agree the master is down.
        #[arg(value_parser = clap::value_parser!(u32).range(1..))]
        quorum: u32,
    },
    /// Stop watching a group.
    Remove {
        /// The group's name.
        name: String,
    },
    /// Change one option of a group, on every sentinel (quorum, down-after-milliseconds,
    /// failover-timeout, parallel-syncs, sync-replicas, preferred-dc, auth-pass, auth-user,
    /// redis-min-replicas).
    Set {
        /// The group's name.
        name: String,
        /// The option.
        option: String,
        /// Its new value.
        value: String,
    },
    /// Print events as they happen, one line each: `HH:MM:SS.mmm <channel> <payload>` (UTC).
    Watch {
        /// Only events of these groups [default: every group].
        groups: Vec<String>,
        /// Only these channels or glob patterns ("+switch-master", "+*"); repeatable.
        #[arg(long = "channel", value_name = "PATTERN")]
        channels: Vec<String>,
        /// Print master changes (WatchMaster) instead of every event; with --events, both.
        #[arg(long)]
        masters: bool,
        /// With --masters, print every event as well.
        #[arg(long, requires = "masters")]
        events: bool,
    },
}

#[derive(Clone, Debug, Subcommand)]
enum SentinelsCommand {
    /// Remove a dead sentinel from the voter set.
    Forget {
        /// The sentinel's id or name.
        sentinel: String,
    },
}

/// Runs `vigil admin`. Failures are printed here and end the process with status 1, so they
/// never reach `main`'s error report.
pub fn run(args: AdminArgs) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let outcome = runtime.block_on(execute(args));
    let code = match outcome {
        Ok(Verdict::Success) => 0,
        Ok(Verdict::Negative) => 1,
        Err(Failure::Closed) => 0,
        Err(e) => {
            // Not `eprintln!`, which panics when stderr is closed.
            let _ = writeln!(std::io::stderr(), "error: {e}");
            1
        }
    };
    if code != 0 {
        std::process::exit(code);
    }
    Ok(())
}

/// How a command that ran to the end went.
enum Verdict {
    Success,
    /// The answer was "no" (`ckquorum` without a quorum): exit status 1.
    Negative,
}

/// Why `vigil admin` stops early; `Display` is the text after `error: `.
#[derive(Debug)]
enum Failure {
    /// No sentinel answered: each URL tried and why it failed.
    Unreachable(Vec<(String, String)>),
    /// A sentinel answered with a gRPC error.
    Rpc(Status),
    /// A call got no answer within the deadline.
    Timeout(Duration),
    /// A watch stream ended.
    StreamEnded,
    /// The command line or a file it names is wrong.
    Usage(String),
    /// Stdout was closed by its reader: not an error.
    Closed,
    /// Writing to stdout failed.
    Output(std::io::Error),
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Unreachable(tries) => {
                let tries: Vec<String> = tries
                    .iter()
                    .map(|(url, why)| format!("cannot reach sentinel {url}: {why}"))
                    .collect();
                f.write_str(&tries.join("; "))
            }
            Failure::Rpc(status) => f.write_str(&rpc_error(status)),
            Failure::Timeout(t) => write!(
                f,
                "deadline exceeded: no answer within {} ms",
                t.as_millis()
            ),
            Failure::StreamEnded => f.write_str("the sentinel closed the stream"),
            Failure::Usage(msg) => f.write_str(msg),
            Failure::Closed => f.write_str("stdout closed"),
            Failure::Output(e) => write!(f, "writing output: {e}"),
        }
    }
}

impl From<Status> for Failure {
    fn from(status: Status) -> Failure {
        Failure::Rpc(status)
    }
}

type Client = SentinelControlClient<Channel>;

async fn execute(args: AdminArgs) -> Result<Verdict, Failure> {
    let timeout = Duration::from_millis(args.timeout_ms);
    let json = args.json;
    let mut client = connect(&args, timeout).await?;
    let reconnect = args.clone();
    let text = match args.command {
        AdminCommand::Status => {
            let mut c2 = client.clone();
            let (groups, sentinels) = tokio::try_join!(
                call(timeout, client.list_groups(ListGroupsRequest {})),
                call(timeout, c2.list_sentinels(ListSentinelsRequest {})),
            )?;
            let (groups, sentinels) = (groups.groups, sentinels.sentinels);
            pick(
                json,
                || status_json(&groups, &sentinels),
                || render_status(&groups, &sentinels),
            )
        }
        AdminCommand::Groups => {
            let groups = call(timeout, client.list_groups(ListGroupsRequest {}))
                .await?
                .groups;
            pick(json, || groups_json(&groups), || render_groups(&groups))
        }
        AdminCommand::Group { name } => {
            let g = call(timeout, client.get_group(GetGroupRequest { group: name })).await?;
            pick(json, || group_json(&g), || render_group(&g))
        }
        AdminCommand::Master { name } => {
            let m = call(timeout, client.get_master(GetMasterRequest { group: name })).await?;
            pick(json, || master_json(&m), || render_master(&m))
        }
        AdminCommand::Sentinels { command: None } => {
            let s = call(timeout, client.list_sentinels(ListSentinelsRequest {}))
                .await?
                .sentinels;
            pick(json, || sentinels_json(&s), || render_sentinels(&s))
        }
        AdminCommand::Sentinels {
            command: Some(SentinelsCommand::Forget { sentinel }),
        } => {
            let req = ForgetSentinelRequest { sentinel };
            let r = call(timeout, client.forget_sentinel(req)).await?;
            pick(json, || admin_json(&r), || render_admin(&r))
        }
        AdminCommand::Ckquorum { name } => {
            let req = CheckQuorumRequest { group: name };
            let r = call(timeout, client.check_quorum(req)).await?;
            print(&pick(json, || ckquorum_json(&r), || render_ckquorum(&r)))?;
            return Ok(if r.ok {
                Verdict::Success
            } else {
                Verdict::Negative
            });
        }
        AdminCommand::Watch {
            groups,
            channels,
            masters,
            events,
        } => {
            let watch = Watch {
                groups,
                channels,
                masters,
                events: events || !masters,
                json,
                color: !json
                    && std::io::stdout().is_terminal()
                    && std::env::var_os("NO_COLOR").is_none(),
                epochs: Arc::new(std::sync::Mutex::new(HashMap::new())),
            };
            // A lost stream (the sentinel died or restarted) moves to the next sentinel that
            // answers; master changes resume from the epochs already printed, never older.
            loop {
                match watch.run(client, timeout).await {
                    Err(Failure::StreamEnded) => {}
                    Err(Failure::Rpc(s)) if retriable(&s) => {}
                    other => return other,
                }
                eprintln!("watch: stream lost; reconnecting");
                client = loop {
                    match connect(&reconnect, timeout).await {
                        Ok(c) => break c,
                        Err(Failure::Unreachable(_)) => {
                            tokio::time::sleep(Duration::from_millis(500)).await
                        }
                        Err(e) => return Err(e),
                    }
                };
            }
        }
        action => {
            let r = call(timeout, admin_action(&mut client, action)).await?;
            pick(json, || admin_json(&r), || render_admin(&r))
        }
    };
    print(&text)?;
    Ok(Verdict::Success)
}

/// The call of an admin action (a command answered by `AdminResponse`).
async fn admin_action(
    client: &mut Client,
    command: AdminCommand,
) -> Result<tonic::Response<vigil_proto::control::AdminResponse>, Status> {
    match command {
        AdminCommand::Failover { name } => client.failover(FailoverRequest { group: name }).await,
        AdminCommand::Switchover { name, to } => {
            let req = SwitchoverRequest {
                group: name,
                target: to.unwrap_or_default(),
            };
            client.switchover(req).await
        }
        AdminCommand::Pause { name } => client.pause(PauseRequest { group: name }).await,
        AdminCommand::Resume { name } => client.resume(ResumeRequest { group: name }).await,
        AdminCommand::Reset { name } => client.reset(ResetRequest { group: name }).await,
        AdminCommand::Monitor { name, addr, quorum } => {
            let req = MonitorRequest {
                group: name,
                master: addr,
                quorum,
            };
            client.monitor(req).await
        }
        AdminCommand::Remove { name } => client.remove(RemoveRequest { group: name }).await,
        AdminCommand::Set {
            name,
            option,
            value,
        } => {
            let req = SetOptionRequest {
                group: name,
                option,
                value,
            };
            client.set_option(req).await
        }
        // Every other command is handled by `execute` before it gets here.
        _ => Err(Status::internal("not an admin action")),
    }
}

/// Whether a failed watch stream is worth reopening on another sentinel.
fn retriable(s: &Status) -> bool {
    matches!(
        s.code(),
        tonic::Code::Unavailable
            | tonic::Code::Unknown
            | tonic::Code::Cancelled
            | tonic::Code::Aborted
            | tonic::Code::ResourceExhausted
            | tonic::Code::Internal
    )
}

/// `watch`: one or two server streams, printed line by line as they arrive.
struct Watch {
    groups: Vec<String>,
    channels: Vec<String>,
    masters: bool,
    events: bool,
    json: bool,
    color: bool,
    /// The highest config epoch printed per group, so a reconnect never goes back.
    epochs: Arc<std::sync::Mutex<HashMap<String, u64>>>,
}

impl Watch {
    /// The `min_epoch` to reconnect with: the lowest of the per-group maxima printed, so no
    /// group misses its current master and none goes back.
    fn min_epoch(&self) -> u64 {
        let seen = self.epochs.lock().map(|e| e.clone()).unwrap_or_default();
        if self.groups.is_empty() {
            seen.values().copied().min().unwrap_or(0)
        } else {
            self.groups
                .iter()
                .map(|g| seen.get(g).copied().unwrap_or(0))
                .min()
                .unwrap_or(0)
        }
    }

    async fn run(&self, mut client: Client, timeout: Duration) -> Result<Verdict, Failure> {
        // Each stream is read by its own task, which formats lines and sends them here: a
        // bounded queue, so a slow terminal slows the readers instead of growing memory.
        let (tx, mut rx) = mpsc::channel::<Result<String, Failure>>(256);
        if self.events {
            let req = WatchEventsRequest {
                groups: self.groups.clone(),
                channels: self.channels.clone(),
            };
            let mut stream = call(timeout, client.watch_events(req)).await?;
            let (tx, json, color) = (tx.clone(), self.json, self.color);
            tokio::spawn(async move {
                loop {
                    let item = match stream.message().await {
                        Ok(Some(e)) => {
                            let at = at_or_now(e.at_unix_ms);
                            Ok(pick(
                                json,
                                || event_json(&e, at),
                                || render_event(&e, at, color),
                            ))
                        }
                        Ok(None) => Err(Failure::StreamEnded),
                        Err(status) => Err(Failure::Rpc(status)),
                    };
                    let last = item.is_err();
                    if tx.send(item).await.is_err() || last {
                        return;
                    }
                }
            });
        }
        if self.masters {
            let req = WatchMasterRequest {
                groups: self.groups.clone(),
                min_epoch: self.min_epoch(),
            };
            let mut stream = call(timeout, client.watch_master(req)).await?;
            let (tx, json, color) = (tx.clone(), self.json, self.color);
            let epochs = self.epochs.clone();
            tokio::spawn(async move {
                loop {
                    let item = match stream.message().await {
                        Ok(Some(ev)) => match ev.kind {
                            Some(master_event::Kind::Changed(m)) => {
                                // Not older than what was printed for the group.
                                if let Ok(mut seen) = epochs.lock() {
                                    let last = seen.entry(m.group.clone()).or_insert(0);
                                    if m.config_epoch < *last {
                                        continue;
                                    }
                                    *last = m.config_epoch;
                                }
                                let at = at_or_now(m.at_unix_ms);
                                Ok(pick(
                                    json,
                                    || master_change_json(&m, at),
                                    || render_master_change(&m, at, color),
                                ))
                            }
                            // Keep-alives only prove the stream is alive; nothing to print.
                            Some(master_event::Kind::KeepAlive(_)) | None => continue,
                        },
                        Ok(None) => Err(Failure::StreamEnded),
                        Err(status) => Err(Failure::Rpc(status)),
                    };
                    let last = item.is_err();
                    if tx.send(item).await.is_err() || last {
                        return;
                    }
                }
            });
        }
        drop(tx);
        while let Some(item) = rx.recv().await {
            print(&item?)?;
        }
        Err(Failure::StreamEnded)
    }
}

/// Connects to the first sentinel that answers.
async fn connect(args: &AdminArgs, timeout: Duration) -> Result<Client, Failure> {
    let tls = tls_config(args)?;
    let urls = if args.sentinels.is_empty() {
        vec![DEFAULT_SENTINEL.to_string()]
    } else {
        args.sentinels.clone()
    };
    let mut tries = Vec::new();
    for url in urls {
        let url = normalize_url(url.trim(), tls.is_some())?;
        let endpoint = Endpoint::from_shared(url.clone())
            .map_err(|e| Failure::Usage(format!("invalid sentinel URL '{url}': {}", reason(&e))))?
            .connect_timeout(timeout)
            // HTTP/2 pings, so a `watch` on a dead connection fails instead of hanging.
            .http2_keep_alive_interval(Duration::from_secs(15))
            .keep_alive_timeout(Duration::from_secs(10))
            .keep_alive_while_idle(true);
        let endpoint = match &tls {
            Some(tls) => endpoint
                .tls_config(tls.clone())
                .map_err(|e| Failure::Usage(format!("TLS for {url}: {}", reason(&e))))?,
            None => endpoint,
        };
        match tokio::time::timeout(timeout, endpoint.connect()).await {
            Ok(Ok(channel)) => return Ok(SentinelControlClient::new(channel)),
            Ok(Err(e)) => tries.push((url, reason(&e))),
            Err(_) => tries.push((url, format!("no answer within {} ms", timeout.as_millis()))),
        }
    }
    Err(Failure::Unreachable(tries))
}

/// The TLS settings from `--tls-ca`, `--tls-cert` and `--tls-key`, or `None` without a CA.
fn tls_config(args: &AdminArgs) -> Result<Option<ClientTlsConfig>, Failure> {
    let read = |path: &PathBuf| {
        std::fs::read(path)
            .map_err(|e| Failure::Usage(format!("cannot read {}: {e}", path.display())))
    };
    let Some(ca) = &args.tls_ca else {
        if args.tls_cert.is_some() {
            return Err(Failure::Usage("--tls-cert needs --tls-ca".to_string()));
        }
        return Ok(None);
    };
    let mut tls = ClientTlsConfig::new().ca_certificate(Certificate::from_pem(read(ca)?));
    if let (Some(cert), Some(key)) = (&args.tls_cert, &args.tls_key) {
        tls = tls.identity(Identity::from_pem(read(cert)?, read(key)?));
    }
    Ok(Some(tls))
}

/// Adds the scheme a bare `HOST:PORT` lacks, and refuses a scheme that contradicts the TLS
/// options (tonic would silently speak plain HTTP/2 to an `http://` URL even with a CA).
fn normalize_url(url: &str, tls: bool) -> Result<String, Failure> {
    let scheme = if tls { "https" } else { "http" };
    if url.starts_with("https://") && !tls {
        return Err(Failure::Usage(format!(
            "sentinel URL {url} needs --tls-ca (the CA of the sentinels' certificates)"
        )));
    }
    if url.starts_with("http://") && tls {
        return Err(Failure::Usage(format!(
            "sentinel URL {url} is plain HTTP but TLS options were given; use https://"
        )));
    }
    if url.contains("://") {
        return Ok(url.to_string());
    }
    Ok(format!("{scheme}://{url}"))
}

/// One unary call with a deadline.
async fn call<T>(
    timeout: Duration,
    request: impl Future<Output = Result<tonic::Response<T>, Status>>,
) -> Result<T, Failure> {
    match tokio::time::timeout(timeout, request).await {
        Ok(Ok(response)) => Ok(response.into_inner()),
        Ok(Err(status)) => Err(Failure::Rpc(status)),
        Err(_) => Err(Failure::Timeout(timeout)),
    }
}

/// JSON (one line) or text, built only in the chosen form.
fn pick(json: bool, as_json: impl FnOnce() -> Value, as_text: impl FnOnce() -> String) -> String {
    if json {
        return format!("{}\n", as_json());
    }
    as_text()
}

/// Writes to stdout and flushes, so `watch` lines appear as they come.
fn print(text: &str) -> Result<(), Failure> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Err(Failure::Closed),
        Err(e) => Err(Failure::Output(e)),
    }
}

/// The event's time, or now when the sentinel sent none.
fn at_or_now(at_unix_ms: u64) -> u64 {
    if at_unix_ms != 0 {
        return at_unix_ms;
    }
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// An error and its causes, without the wrappers that only say "transport error".
fn reason(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut next = Some(e);
    while let Some(err) = next {
        let text = err.to_string();
        // hyper and tonic wrap the cause in errors that add nothing for an operator.
        let noise = ["transport error", "client error (Connect)", ""];
        if !noise.contains(&text.as_str()) && !parts.contains(&text) {
            parts.push(text);
        }
        next = err.source();
    }
    if parts.is_empty() {
        return e.to_string();
    }
    parts.join(": ")
}

/// `<code>: <message>`, then the local cause when the client made the status itself (a broken
/// connection or a refused TLS handshake becomes `cancelled` or `unknown` with the reason only in
/// its source).
fn rpc_error(status: &Status) -> String {
    let mut text = code_name(status.code()).to_string();
    let mut parts = vec![status.message().to_string()];
    if let Some(source) = std::error::Error::source(status) {
        parts.extend(reason(source).split(": ").map(str::to_string));
    }
    let mut seen: Vec<&str> = Vec::new();
    for part in &parts {
        if part.is_empty() || seen.contains(&part.as_str()) {
            continue;
        }
        seen.push(part);
        text.push_str(": ");
        text.push_str(part);
    }
    text
}

/// The gRPC status code as words, like the specification's names: `NotFound` is "not found".
fn code_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "ok",
        Code::Cancelled => "cancelled",
        Code::Unknown => "unknown",
        Code::InvalidArgument => "invalid argument",
        Code::DeadlineExceeded => "deadline exceeded",
        Code::NotFound => "not found",
        Code::AlreadyExists => "already exists",
        Code::PermissionDenied => "permission denied",
        Code::ResourceExhausted => "resource exhausted",
        Code::FailedPrecondition => "failed precondition",
        Code::Aborted => "aborted",
        Code::OutOfRange => "out of range",
        Code::Unimplemented => "unimplemented",
        Code::Internal => "internal",
        Code::Unavailable => "unavailable",
        Code::DataLoss => "data loss",
        Code::Unauthenticated => "unauthenticated",
    }
}

/// Where `vigil admin` looks without `--sentinel`; the scheme follows the TLS options.
const DEFAULT_SENTINEL: &str = "127.0.0.1:36379";

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        admin: AdminArgs,
    }

    fn parse(args: &[&str]) -> Result<AdminArgs, clap::Error> {
        let argv = std::iter::once("admin").chain(args.iter().copied());
        Cli::try_parse_from(argv).map(|c| c.admin)
    }

    #[test]
    fn options_go_before_or_after_the_command() {
        let a = parse(&["--json", "--sentinel", "http://a:1", "status"]).unwrap();
        assert!(a.json);
        assert_eq!(a.sentinels, ["http://a:1"]);
        let a = parse(&[
            "status",
            "--json",
            "--sentinel",
            "a:1,b:2",
            "--sentinel",
            "c:3",
        ])
        .unwrap();
        assert!(a.json);
        assert_eq!(a.sentinels, ["a:1", "b:2", "c:3"]);
        assert_eq!(a.timeout_ms, 5000);
    }

    #[test]
    fn commands_parse_with_their_arguments() {
        let a = parse(&["switchover", "g", "--to", "h:1"]).unwrap();
        assert!(
            matches!(a.command, AdminCommand::Switchover { name, to } if name == "g" && to.as_deref() == Some("h:1"))
        );
        let a = parse(&["monitor", "g", "h:1", "2"]).unwrap();
        assert!(matches!(a.command, AdminCommand::Monitor { quorum: 2, .. }));
        assert!(parse(&["monitor", "g", "h:1", "0"]).is_err());
        assert!(parse(&["monitor", "g", "h:1", "x"]).is_err());
        let a = parse(&["sentinels", "forget", "s3"]).unwrap();
        assert!(matches!(
            a.command,
            AdminCommand::Sentinels { command: Some(SentinelsCommand::Forget { sentinel }) } if sentinel == "s3"
        ));
        let a = parse(&[
            "watch",
            "g",
            "h",
            "--channel",
            "+*",
            "--masters",
            "--events",
        ])
        .unwrap();
        assert!(matches!(
            a.command,
            AdminCommand::Watch { groups, masters: true, events: true, .. } if groups == ["g", "h"]
        ));
        assert!(parse(&["watch", "--events"]).is_err());
        assert!(parse(&["--tls-cert", "c.pem", "status"]).is_err());
    }

    #[test]
    fn urls_get_the_scheme_of_the_tls_options() {
        assert_eq!(normalize_url("h:1", false).unwrap(), "http://h:1");
        assert_eq!(normalize_url("h:1", true).unwrap(), "https://h:1");
        assert_eq!(normalize_url("http://h:1", false).unwrap(), "http://h:1");
        assert_eq!(normalize_url("https://h:1", true).unwrap(), "https://h:1");
        assert!(normalize_url("https://h:1", false).is_err());
        assert!(normalize_url("http://h:1", true).is_err());
    }

    #[test]
    fn failures_are_one_readable_line() {
        let status = Status::not_found("no such group 'x'");
        assert_eq!(
            Failure::Rpc(status).to_string(),
            "not found: no such group 'x'"
        );
        assert_eq!(
            Failure::Rpc(Status::new(Code::Unavailable, "")).to_string(),
            "unavailable"
        );
        let one = Failure::Unreachable(vec![(
            "http://127.0.0.1:1".to_string(),
            "tcp connect error: Connection refused (os error 111)".to_string(),
        )]);
        assert_eq!(
            one.to_string(),
            "cannot reach sentinel http://127.0.0.1:1: tcp connect error: Connection refused (os error 111)"
        );
        let two = Failure::Unreachable(vec![
            ("http://a:1".to_string(), "x".to_string()),
            ("http://b:2".to_string(), "y".to_string()),
        ]);
        assert_eq!(
            two.to_string(),
            "cannot reach sentinel http://a:1: x; cannot reach sentinel http://b:2: y"
        );
        assert_eq!(
            Failure::Timeout(Duration::from_millis(250)).to_string(),
            "deadline exceeded: no answer within 250 ms"
        );
    }

    #[derive(Debug)]
    struct Wrapped(&'static str, Option<Box<Wrapped>>);

    impl std::fmt::Display for Wrapped {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(self.0)
        }
    }

    impl std::error::Error for Wrapped {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            self.1.as_deref().map(|e| e as _)
        }
    }

    #[test]
    fn reasons_drop_empty_wrappers() {
        let io = Wrapped("Connection refused (os error 111)", None);
        let tcp = Wrapped("tcp connect error", Some(Box::new(io)));
        let hyper = Wrapped("client error (Connect)", Some(Box::new(tcp)));
        let tonic = Wrapped("transport error", Some(Box::new(hyper)));
        assert_eq!(
            reason(&tonic),
            "tcp connect error: Connection refused (os error 111)"
        );
        assert_eq!(reason(&Wrapped("transport error", None)), "transport error");
    }
}
