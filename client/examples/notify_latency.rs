//! Benchmark helper for `bench/failover.sh notify`: how long after a promotion is confirmed do
//! `WatchMaster` subscribers hear of it?
//!
//! `notify_latency CA_PEM SUBSCRIBERS GRPC_ADDR...` opens SUBSCRIBERS `WatchMaster` streams,
//! spread over the sentinels, plus one `WatchEvents("+promoted-slave")` per sentinel; prints
//! `READY` once every stream delivered its initial message, then waits for one master change
//! and prints one JSON line: the latency of every subscriber from the leader's
//! `+promoted-slave` timestamp (its `at_unix_ms`) to the local arrival of `MasterChanged`,
//! as p50/p99/max in milliseconds. Everything runs on one machine, so one clock.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::sync::Mutex;
use tonic::transport::{Certificate, Channel, ClientTlsConfig};
use vigil_proto::control::{
    SentinelControlClient, WatchEventsRequest, WatchMasterRequest, master_event::Kind,
};

fn now_ms() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64() * 1000.0)
        .unwrap_or(0.0)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [ca, n, addrs @ ..] = args.as_slice() else {
        anyhow::bail!("usage: notify_latency CA_PEM SUBSCRIBERS GRPC_ADDR...");
    };
    let n: usize = n.parse()?;
    let tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(std::fs::read(ca)?))
        .domain_name("127.0.0.1");
    let mut channels = Vec::new();
    for a in addrs {
        let ch = Channel::from_shared(format!("https://{a}"))?
            .tls_config(tls.clone())?
            .connect()
            .await?;
        channels.push(ch);
    }
    let arrivals = Arc::new(Mutex::new(Vec::<f64>::new()));
    let promoted = Arc::new(Mutex::new(None::<f64>));
    let (ready_tx, mut ready_rx) = tokio::sync::mpsc::channel::<()>(n + channels.len());
    for ch in &channels {
        let mut c = SentinelControlClient::new(ch.clone());
        let promoted = promoted.clone();
        let ready = ready_tx.clone();
        tokio::spawn(async move {
            let req = WatchEventsRequest {
                groups: vec![],
                channels: vec!["+promoted-slave".into()],
            };
            let Ok(resp) = c.watch_events(req).await else {
                return;
            };
            let _ = ready.send(()).await;
            let mut s = resp.into_inner();
            while let Ok(Some(ev)) = s.message().await {
                let mut p = promoted.lock().await;
                p.get_or_insert(ev.at_unix_ms as f64);
            }
        });
    }
    for i in 0..n {
        let mut c = SentinelControlClient::new(channels[i % channels.len()].clone());
        let arrivals = arrivals.clone();
        let ready = ready_tx.clone();
        tokio::spawn(async move {
            let req = WatchMasterRequest {
                groups: vec![],
                min_epoch: 0,
            };
            let Ok(resp) = c.watch_master(req).await else {
                return;
            };
            let mut s = resp.into_inner();
            while let Ok(Some(ev)) = s.message().await {
                if let Some(Kind::Changed(m)) = ev.kind {
                    if m.initial {
                        let _ = ready.send(()).await;
                    } else {
                        arrivals.lock().await.push(now_ms());
                        return;
                    }
                }
            }
        });
    }
    for _ in 0..n + channels.len() {
        ready_rx.recv().await;
    }
    println!("READY");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while arrivals.lock().await.len() < n && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let Some(p) = *promoted.lock().await else {
        anyhow::bail!("no +promoted-slave event seen");
    };
    let mut lat: Vec<f64> = arrivals.lock().await.iter().map(|a| a - p).collect();
    lat.sort_by(|a, b| a.total_cmp(b));
    let pct = |q: f64| lat[((lat.len() as f64 - 1.0) * q).round() as usize];
    if lat.is_empty() {
        anyhow::bail!("no subscriber heard of the change");
    }
    println!(
        "{{\"subscribers\": {}, \"heard\": {}, \"p50_ms\": {:.1}, \"p99_ms\": {:.1}, \"max_ms\": {:.1}}}",
        n,
        lat.len(),
        pct(0.5),
        pct(0.99),
        lat[lat.len() - 1]
    );
    Ok(())
}
