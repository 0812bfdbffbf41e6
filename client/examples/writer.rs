//! Writes a counter every 10 ms through failovers, printing errors and the master in use.
//!
//! `cargo run -p vigil-client --example writer -- http://127.0.0.1:PORT [http://…] mymaster`
//!
//! Each line says what happened to one write when it differs from the one before: the master
//! that acknowledged it, or the error. `Unknown` errors are writes that may or may not have been
//! applied (the connection dropped after sending); they are not retried.

use std::time::Duration;

use anyhow::{Context, bail};
use vigil_client::{Client, ClientOptions, MasterWatcher, WatcherOptions};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let Some(group) = args.pop() else {
        bail!("usage: writer SENTINEL_URI... GROUP");
    };
    if args.is_empty() {
        bail!("usage: writer SENTINEL_URI... GROUP");
    }
    let watcher = MasterWatcher::connect(args, vec![group.clone()], WatcherOptions::default())
        .await
        .context("starting the watcher")?;
    let client = Client::new(watcher, group, ClientOptions::default());
    let mut tick = tokio::time::interval(Duration::from_millis(10));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let (mut ok, mut failed) = (0u64, 0u64);
    let mut last = String::new();
    for n in 1u64.. {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => break,
            _ = tick.tick() => {}
        }
        let mut cmd = redis::cmd("SET");
        cmd.arg("counter").arg(n);
        let now = match client.write_with_master(cmd).await {
            Ok((_, master)) => {
                ok += 1;
                format!("writing to {} (epoch {})", master.addr, master.epoch)
            }
            Err(e) => {
                failed += 1;
                format!("error: {e}")
            }
        };
        if now != last {
            println!("counter={n}: {now}");
            last = now;
        }
    }
    println!("{ok} writes acknowledged, {failed} failed");
    Ok(())
}
