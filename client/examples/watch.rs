//! Prints every master change of one group.
//!
//! `cargo run -p vigil-client --example watch -- http://127.0.0.1:PORT [http://…] mymaster`

use std::time::Duration;

use anyhow::{Context, bail};
use tokio::sync::broadcast::error::RecvError;
use vigil_client::{MasterWatcher, WatcherOptions};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let Some(group) = args.pop() else {
        bail!("usage: watch SENTINEL_URI... GROUP");
    };
    if args.is_empty() {
        bail!("usage: watch SENTINEL_URI... GROUP");
    }
    let watcher = MasterWatcher::connect(args, vec![group.clone()], WatcherOptions::default())
        .await
        .context("starting the watcher")?;
    let mut changes = watcher.subscribe();
    match watcher.wait_for(&group, Duration::from_secs(10)).await {
        Ok(m) => println!("{group}: master {} (epoch {})", m.addr, m.epoch),
        Err(e) => println!("{group}: {e}; still waiting"),
    }
    loop {
        match changes.recv().await {
            Ok(c) => println!("{}: master {} (epoch {})", c.group, c.addr, c.epoch),
            Err(RecvError::Lagged(n)) => println!("missed {n} changes"),
            Err(RecvError::Closed) => return Ok(()),
        }
    }
}
