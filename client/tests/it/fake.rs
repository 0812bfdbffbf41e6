//! A fake `SentinelControl` server that the tests drive by hand: they decide which master it
//! announces, with which epoch, and when its streams go silent, end or fail.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot, watch};
use tokio_stream::wrappers::{ReceiverStream, TcpListenerStream};
use tonic::{Request, Response, Status};
use vigil_proto::control::{
    AdminResponse, CheckQuorumRequest, CheckQuorumResponse, Event, FailoverRequest,
    ForgetSentinelRequest, GetGroupRequest, GetMasterRequest, GroupStatus, KeepAlive,
    ListGroupsRequest, ListGroupsResponse, ListSentinelsRequest, ListSentinelsResponse,
    MasterChanged, MasterEvent, MasterInfo, MonitorRequest, PauseRequest, RemoveRequest,
    ReplicaStatus, ResetRequest, ResumeRequest, SentinelControl, SentinelControlServer,
    SetOptionRequest, SwitchoverRequest, WatchEventsRequest, WatchMasterRequest, master_event,
};

type EventTx = mpsc::Sender<Result<MasterEvent, Status>>;

/// A fake sentinel serving gRPC on a loopback port; stopped when dropped.
pub struct FakeSentinel {
    /// `http://127.0.0.1:PORT`.
    pub uri: String,
    state: Arc<State>,
    shutdown: Option<oneshot::Sender<()>>,
}

#[derive(Default)]
struct State {
    name: String,
    /// group -> (addr, epoch): what a new subscriber gets first, and what GetMaster answers.
    masters: Mutex<HashMap<String, (String, u64)>>,
    /// group -> replica addresses, for GetGroup.
    replicas: Mutex<HashMap<String, Vec<(String, String)>>>,
    /// Every WatchMaster request received, in order (a `watch` so tests can wait on it).
    requests: watch::Sender<Vec<WatchMasterRequest>>,
    /// The senders of the open streams.
    streams: Mutex<Vec<EventTx>>,
    /// Whether streams get a keep-alive every `KEEPALIVE_EVERY`.
    keepalives: watch::Sender<bool>,
    /// Refuse new WatchMaster calls.
    refusing: Mutex<bool>,
}

impl FakeSentinel {
    /// Starts a fake sentinel named `name`, sending keep-alives.
    pub async fn start(name: &str) -> FakeSentinel {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("local addr");
        let state = Arc::new(State {
            name: name.to_owned(),
            keepalives: watch::channel(true).0,
            ..State::default()
        });
        let (tx, rx) = oneshot::channel::<()>();
        let svc = SentinelControlServer::new(Service(Arc::clone(&state)));
        tokio::spawn(async move {
            let _ = tonic::transport::Server::builder()
                .add_service(svc)
                .serve_with_incoming_shutdown(TcpListenerStream::new(listener), async {
                    let _ = rx.await;
                })
                .await;
        });
        FakeSentinel {
            uri: format!("http://{addr}"),
            state,
            shutdown: Some(tx),
        }
    }

    /// Sets the master a new subscriber gets first (without telling open streams).
    pub fn set_master(&self, group: &str, addr: &str, epoch: u64) {
        let mut masters = self.state.masters.lock().expect("lock");
        masters.insert(group.to_owned(), (addr.to_owned(), epoch));
    }

    /// Sets the master and announces it on every open stream.
    pub async fn announce(&self, group: &str, addr: &str, epoch: u64) {
        self.set_master(group, addr, epoch);
        self.send_raw(group, addr, epoch).await;
    }

    /// Sends a `MasterChanged` on every open stream, whatever its epoch.
    pub async fn send_raw(&self, group: &str, addr: &str, epoch: u64) {
        let event = changed(&self.state.name, group, addr, epoch, false);
        let streams: Vec<EventTx> = self.state.streams.lock().expect("lock").clone();
        for tx in streams {
            let _ = tx.send(Ok(event.clone())).await;
        }
    }

    /// Sets the replicas GetGroup lists for `group`.
    pub fn set_replicas(&self, group: &str, replicas: &[&str]) {
        let list = replicas
            .iter()
            .map(|r| ((*r).to_owned(), String::new()))
            .collect();
        let mut all = self.state.replicas.lock().expect("lock");
        all.insert(group.to_owned(), list);
    }

    /// Sets the replicas GetGroup lists for `group`, with their data-centre labels.
    pub fn set_replicas_in(&self, group: &str, replicas: &[(&str, &str)]) {
        let list = replicas
            .iter()
            .map(|(r, dc)| ((*r).to_owned(), (*dc).to_owned()))
            .collect();
        let mut all = self.state.replicas.lock().expect("lock");
        all.insert(group.to_owned(), list);
    }

    /// Turns keep-alives on or off (off: open streams go silent).
    pub fn keepalives(&self, on: bool) {
        self.state.keepalives.send_replace(on);
    }

    /// Ends every open stream with an error status.
    pub async fn fail_streams(&self) {
        let streams: Vec<EventTx> = std::mem::take(&mut *self.state.streams.lock().expect("lock"));
        for tx in streams {
            let _ = tx
                .send(Err(Status::unavailable("fake sentinel going away")))
                .await;
        }
    }

    /// Refuses every later WatchMaster call, and fails the open streams.
    pub async fn stop(&self) {
        *self.state.refusing.lock().expect("lock") = true;
        self.fail_streams().await;
    }

    /// True when every stream opened so far was closed by its client.
    pub fn open_streams_closed(&self) -> bool {
        let streams = self.state.streams.lock().expect("lock");
        streams.iter().all(|tx| tx.is_closed())
    }

    /// Waits (up to 10 s) until `n` WatchMaster requests arrived, and returns the `n`-th.
    pub async fn wait_subscribed(&self, n: usize) -> WatchMasterRequest {
        let mut rx = self.state.requests.subscribe();
        let got = tokio::time::timeout(Duration::from_secs(10), rx.wait_for(|r| r.len() >= n))
            .await
            .unwrap_or_else(|_| panic!("{}: no subscription #{n} within 10 s", self.uri))
            .expect("state alive");
        got[n - 1].clone()
    }
}

impl Drop for FakeSentinel {
    fn drop(&mut self) {
        self.state.streams.lock().expect("lock").clear();
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// How often a stream gets a keep-alive (a real sentinel: every second).
const KEEPALIVE_EVERY: Duration = Duration::from_millis(100);

fn changed(name: &str, group: &str, addr: &str, epoch: u64, initial: bool) -> MasterEvent {
    MasterEvent {
        kind: Some(master_event::Kind::Changed(MasterChanged {
            group: group.to_owned(),
            addr: addr.to_owned(),
            config_epoch: epoch,
            reported_by: name.to_owned(),
            at_unix_ms: 0,
            initial,
        })),
    }
}

struct Service(Arc<State>);

#[tonic::async_trait]
impl SentinelControl for Service {
    async fn get_master(
        &self,
        request: Request<GetMasterRequest>,
    ) -> Result<Response<MasterInfo>, Status> {
        let group = request.into_inner().group;
        let masters = self.0.masters.lock().expect("lock");
        let (addr, epoch) = masters
            .get(&group)
            .cloned()
            .ok_or_else(|| Status::not_found(format!("no group {group}")))?;
        Ok(Response::new(MasterInfo {
            group,
            addr,
            config_epoch: epoch,
        }))
    }

    async fn list_groups(
        &self,
        _: Request<ListGroupsRequest>,
    ) -> Result<Response<ListGroupsResponse>, Status> {
        Err(Status::unimplemented("fake"))
    }

    async fn get_group(
        &self,
        request: Request<GetGroupRequest>,
    ) -> Result<Response<GroupStatus>, Status> {
        let group = request.into_inner().group;
        let (master, epoch) = self
            .0
            .masters
            .lock()
            .expect("lock")
            .get(&group)
            .cloned()
            .ok_or_else(|| Status::not_found(format!("no group {group}")))?;
        let replicas = self
            .0
            .replicas
            .lock()
            .expect("lock")
            .get(&group)
            .cloned()
            .unwrap_or_default();
        Ok(Response::new(GroupStatus {
            name: group,
            master,
            config_epoch: epoch,
            replicas: replicas
                .into_iter()
                .map(|(addr, dc)| ReplicaStatus {
                    addr,
                    dc,
                    link: "up".into(),
                    ..ReplicaStatus::default()
                })
                .collect(),
            ..GroupStatus::default()
        }))
    }

    async fn list_sentinels(
        &self,
        _: Request<ListSentinelsRequest>,
    ) -> Result<Response<ListSentinelsResponse>, Status> {
        Err(Status::unimplemented("fake"))
    }

    async fn check_quorum(
        &self,
        _: Request<CheckQuorumRequest>,
    ) -> Result<Response<CheckQuorumResponse>, Status> {
        Err(Status::unimplemented("fake"))
    }

    async fn failover(
        &self,
        _: Request<FailoverRequest>,
    ) -> Result<Response<AdminResponse>, Status> {
        Err(Status::unimplemented("fake"))
    }

    async fn switchover(
        &self,
        _: Request<SwitchoverRequest>,
    ) -> Result<Response<AdminResponse>, Status> {
        Err(Status::unimplemented("fake"))
    }

    async fn monitor(&self, _: Request<MonitorRequest>) -> Result<Response<AdminResponse>, Status> {
        Err(Status::unimplemented("fake"))
    }

    async fn remove(&self, _: Request<RemoveRequest>) -> Result<Response<AdminResponse>, Status> {
        Err(Status::unimplemented("fake"))
    }

    async fn set_option(
        &self,
        _: Request<SetOptionRequest>,
    ) -> Result<Response<AdminResponse>, Status> {
        Err(Status::unimplemented("fake"))
    }

    async fn reset(&self, _: Request<ResetRequest>) -> Result<Response<AdminResponse>, Status> {
        Err(Status::unimplemented("fake"))
    }

    async fn pause(&self, _: Request<PauseRequest>) -> Result<Response<AdminResponse>, Status> {
        Err(Status::unimplemented("fake"))
    }

    async fn resume(&self, _: Request<ResumeRequest>) -> Result<Response<AdminResponse>, Status> {
        Err(Status::unimplemented("fake"))
    }

    async fn forget_sentinel(
        &self,
        _: Request<ForgetSentinelRequest>,
    ) -> Result<Response<AdminResponse>, Status> {
        Err(Status::unimplemented("fake"))
    }

    type WatchMasterStream = ReceiverStream<Result<MasterEvent, Status>>;

    async fn watch_master(
        &self,
        request: Request<WatchMasterRequest>,
    ) -> Result<Response<Self::WatchMasterStream>, Status> {
        let req = request.into_inner();
        self.0.requests.send_modify(|r| r.push(req.clone()));
        if *self.0.refusing.lock().expect("lock") {
            return Err(Status::unavailable("fake sentinel stopped"));
        }
        let (tx, rx) = mpsc::channel(64);
        // The initial state: the current master of each group asked for, if not below min_epoch.
        let initial: Vec<MasterEvent> = {
            let masters = self.0.masters.lock().expect("lock");
            let mut groups: Vec<&String> = masters.keys().collect();
            groups.sort();
            groups
                .into_iter()
                .filter(|g| req.groups.is_empty() || req.groups.contains(g))
                .filter_map(|g| {
                    let (addr, epoch) = &masters[g];
                    (*epoch >= req.min_epoch).then(|| changed(&self.0.name, g, addr, *epoch, true))
                })
                .collect()
        };
        for event in initial {
            let _ = tx.send(Ok(event)).await;
        }
        // Keep-alives while on and the stream open; the task ends when the client leaves.
        let keepalive_tx = tx.clone();
        let mut on = self.0.keepalives.subscribe();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(KEEPALIVE_EVERY).await;
                if !*on.borrow_and_update() {
                    if on.changed().await.is_err() {
                        return;
                    }
                    continue;
                }
                let ka = MasterEvent {
                    kind: Some(master_event::Kind::KeepAlive(KeepAlive { at_unix_ms: 0 })),
                };
                if keepalive_tx.send(Ok(ka)).await.is_err() {
                    return;
                }
            }
        });
        self.0.streams.lock().expect("lock").push(tx);
        Ok(Response::new(ReceiverStream::new(rx)))
    }

    type WatchEventsStream = ReceiverStream<Result<Event, Status>>;

    async fn watch_events(
        &self,
        _: Request<WatchEventsRequest>,
    ) -> Result<Response<Self::WatchEventsStream>, Status> {
        Err(Status::unimplemented("fake"))
    }
}
