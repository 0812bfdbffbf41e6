//! `Control`: the implementation of `vigil.v1.SentinelControl` over the daemon's `Ports`.
//!
//! Queries answer from the latest `Snapshot`; admin calls check what the snapshot can tell
//! (the group exists, no failover is running, the target is a replica) and queue one `Input`
//! for the loop, which decides (through the term/vote path for cluster-wide changes); streams
//! are fed by `feed`. Argument errors are `INVALID_ARGUMENT` naming the field; an unknown group
//! is `NOT_FOUND`; a full input queue is `UNAVAILABLE`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status};
use tracing::info;
use vigil_proto::control as pb;

use super::convert;
use super::feed::{self, Feed, KeepAlive, STREAM_BUFFER};
use super::filter::{EventFilter, MAX_PATTERN_LEN, MAX_PATTERNS};
use crate::core::{GroupName, Input, SentinelId};
use crate::daemon::{GroupSnapshot, Ports, ShellInput, Snapshot};
use crate::group_admin::{AdminFailure, AdminRequest};
use crate::nodes::NodeAddr;

/// How often `WatchMaster` sends a keep-alive, so that a client notices a dead stream.
const KEEP_ALIVE: Duration = Duration::from_secs(1);
/// The longest group or sentinel name accepted in a request.
const MAX_NAME: usize = 256;
/// Groups accepted in one watch request.
const MAX_GROUPS: usize = 1024;

/// The `SentinelControl` service of one sentinel. Cheap to clone.
#[derive(Clone, Debug)]
pub(crate) struct Control {
    ports: Ports,
    cancel: CancellationToken,
}

impl Control {
    /// A service answering from `ports`; its watch streams end when `cancel` fires.
    pub(crate) fn new(ports: Ports, cancel: CancellationToken) -> Control {
        Control { ports, cancel }
    }

    fn snapshot(&self) -> Arc<Snapshot> {
        self.ports.snapshot.borrow().clone()
    }

    /// Submits an operator's change and waits for the sentinels' verdict.
    async fn change(&self, group: &str, request: AdminRequest) -> Result<u64, Status> {
        let what = request.name();
        let epoch = crate::group_admin::submit(&self.ports, group, request)
            .await
            .map_err(admin_status)?;
        info!(
            group,
            change = what,
            epoch,
            "operator change confirmed through the control API"
        );
        Ok(epoch)
    }

    /// Queues `input` for the loop, without waiting.
    fn submit(&self, input: Input) -> Result<(), Status> {
        use tokio::sync::mpsc::error::TrySendError;
        match self.ports.inputs.try_send(ShellInput::Core(input)) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(_)) => Err(Status::unavailable("sentinel busy, retry")),
            Err(TrySendError::Closed(_)) => Err(Status::unavailable("sentinel shutting down")),
        }
    }
}

#[tonic::async_trait]
impl pb::SentinelControl for Control {
    async fn get_master(
        &self,
        request: Request<pb::GetMasterRequest>,
    ) -> Result<Response<pb::MasterInfo>, Status> {
        let snap = self.snapshot();
        let g = group(&snap, &request.get_ref().group)?;
        Ok(Response::new(convert::master_info(g)))
    }

    async fn list_groups(
        &self,
        _request: Request<pb::ListGroupsRequest>,
    ) -> Result<Response<pb::ListGroupsResponse>, Status> {
        let snap = self.snapshot();
        let groups = snap
            .groups
            .iter()
            .map(|g| convert::group_status(g, &snap))
            .collect();
        Ok(Response::new(pb::ListGroupsResponse { groups }))
    }

    async fn get_group(
        &self,
        request: Request<pb::GetGroupRequest>,
    ) -> Result<Response<pb::GroupStatus>, Status> {
        let snap = self.snapshot();
        let g = group(&snap, &request.get_ref().group)?;
        Ok(Response::new(convert::group_status(g, &snap)))
    }

    async fn list_sentinels(
        &self,
        _request: Request<pb::ListSentinelsRequest>,
    ) -> Result<Response<pb::ListSentinelsResponse>, Status> {
        let snap = self.snapshot();
        Ok(Response::new(pb::ListSentinelsResponse {
            sentinels: convert::sentinels(&snap),
        }))
    }

    async fn check_quorum(
        &self,
        request: Request<pb::CheckQuorumRequest>,
    ) -> Result<Response<pb::CheckQuorumResponse>, Status> {
        let snap = self.snapshot();
        let g = group(&snap, &request.get_ref().group)?;
        Ok(Response::new(convert::check_quorum(g, &snap)))
    }

    async fn failover(
        &self,
        request: Request<pb::FailoverRequest>,
    ) -> Result<Response<pb::AdminResponse>, Status> {
        let snap = self.snapshot();
        let g = group(&snap, &request.get_ref().group)?;
        not_failing_over(g)?;
        self.submit(Input::FailoverRequested {
            group: GroupName::new(&g.name),
        })?;
        info!(group = %g.name, "failover requested through the control API");
        Ok(admin(format!(
            "failover of {} requested; watch the master (WatchMaster) for the outcome",
            g.name
        )))
    }

    async fn switchover(
        &self,
        request: Request<pb::SwitchoverRequest>,
    ) -> Result<Response<pb::AdminResponse>, Status> {
        let snap = self.snapshot();
        let req = request.get_ref();
        let g = group(&snap, &req.group)?;
        not_failing_over(g)?;
        let mut target = None;
        if !req.target.is_empty() {
            let named = req.target.trim();
            let parsed = named.parse::<NodeAddr>().ok();
            let replica = g
                .replicas
                .iter()
                .find(|r| parsed.as_ref() == Some(&r.addr) || r.addr.to_string() == named);
            let Some(replica) = replica else {
                return Err(Status::invalid_argument(format!(
                    "target: {} is not a replica of {}",
                    shorten(named),
                    g.name
                )));
            };
            // The leader promotes only this replica; if it is not eligible (down, priority
            // 0, behind), the switchover aborts at its deadline.
            target = Some(replica.id);
        }
        self.submit(Input::SwitchoverRequested {
            group: GroupName::new(&g.name),
            target,
        })?;
        info!(group = %g.name, "switchover requested through the control API");
        Ok(admin(format!(
            "switchover of {} requested; watch the master (WatchMaster) for the outcome",
            g.name
        )))
    }

    async fn monitor(
        &self,
        request: Request<pb::MonitorRequest>,
    ) -> Result<Response<pb::AdminResponse>, Status> {
        let req = request.get_ref();
        let name = required("group", &req.group)?.to_owned();
        let master_text = required("master", &req.master)?;
        let master = master_text.parse::<NodeAddr>().map_err(|e| {
            Status::invalid_argument(format!("master: {} ({e})", shorten(master_text)))
        })?;
        let quorum = u8::try_from(req.quorum)
            .ok()
            .filter(|q| *q >= 1)
            .ok_or_else(|| {
                Status::invalid_argument(format!("quorum: {} is not in 1..=255", req.quorum))
            })?;
        let epoch = self
            .change(&name, AdminRequest::Monitor { master, quorum })
            .await?;
        Ok(admin(format!(
            "monitoring {name} (master {}, quorum {quorum}) on every sentinel (term {epoch})",
            req.master.trim()
        )))
    }

    async fn remove(
        &self,
        request: Request<pb::RemoveRequest>,
    ) -> Result<Response<pb::AdminResponse>, Status> {
        let name = required("group", &request.get_ref().group)?.to_owned();
        let epoch = self.change(&name, AdminRequest::Remove).await?;
        Ok(admin(format!(
            "{name} removed on every sentinel (term {epoch})"
        )))
    }

    async fn set_option(
        &self,
        request: Request<pb::SetOptionRequest>,
    ) -> Result<Response<pb::AdminResponse>, Status> {
        let req = request.get_ref();
        let name = required("group", &req.group)?.to_owned();
        let option = required("option", &req.option)?.to_owned();
        let epoch = self
            .change(
                &name,
                AdminRequest::Set {
                    options: vec![(option.clone(), req.value.clone())],
                },
            )
            .await?;
        Ok(admin(format!(
            "{option} of {name} set on every sentinel (term {epoch})"
        )))
    }

    async fn reset(
        &self,
        request: Request<pb::ResetRequest>,
    ) -> Result<Response<pb::AdminResponse>, Status> {
        // Redis' `SENTINEL RESET` takes a glob pattern of group names.
        let pattern = required("group", &request.get_ref().group)?;
        let matcher = crate::api::filter::Pattern::new(pattern);
        let names: Vec<String> = self
            .snapshot()
            .groups
            .iter()
            .filter(|g| matcher.matches(&g.name))
            .map(|g| g.name.clone())
            .collect();
        if names.is_empty() {
            return Err(Status::not_found(format!(
                "no group matches '{}'",
                shorten(pattern)
            )));
        }
        for name in &names {
            self.change(name, AdminRequest::Reset).await?;
        }
        Ok(admin(format!(
            "reset {} group(s) on every sentinel: {}",
            names.len(),
            names.join(", ")
        )))
    }

    async fn pause(
        &self,
        request: Request<pb::PauseRequest>,
    ) -> Result<Response<pb::AdminResponse>, Status> {
        let snap = self.snapshot();
        let g = group(&snap, &request.get_ref().group)?;
        self.submit(Input::MaintenanceRequested {
            group: GroupName::new(&g.name),
            paused: true,
        })?;
        info!(group = %g.name, "maintenance mode requested through the control API");
        Ok(admin(format!(
            "pause of {} requested: no automatic failover until Resume",
            g.name
        )))
    }

    async fn resume(
        &self,
        request: Request<pb::ResumeRequest>,
    ) -> Result<Response<pb::AdminResponse>, Status> {
        let snap = self.snapshot();
        let g = group(&snap, &request.get_ref().group)?;
        self.submit(Input::MaintenanceRequested {
            group: GroupName::new(&g.name),
            paused: false,
        })?;
        info!(group = %g.name, "end of maintenance mode requested through the control API");
        Ok(admin(format!(
            "resume of {} requested: automatic failover enabled again",
            g.name
        )))
    }

    async fn forget_sentinel(
        &self,
        request: Request<pb::ForgetSentinelRequest>,
    ) -> Result<Response<pb::AdminResponse>, Status> {
        let snap = self.snapshot();
        let wanted = required("sentinel", &request.get_ref().sentinel)?;
        let by_id = wanted.parse::<u32>().ok();
        if by_id == Some(snap.id) || wanted == snap.name {
            return Err(Status::invalid_argument(
                "sentinel: cannot forget the sentinel answering this call; ask another one",
            ));
        }
        let peer = snap
            .peers
            .iter()
            .find(|p| by_id == Some(p.0) || p.1 == wanted)
            .map(|p| p.0);
        // A dead voter may be unknown to the transport; its id is enough.
        let voter = by_id.filter(|id| snap.voters.contains(id));
        let Some(id) = peer.or(voter) else {
            return Err(Status::not_found(format!(
                "no such sentinel '{}'",
                shorten(wanted)
            )));
        };
        info!(
            sentinel = id,
            "forgetting a sentinel requested through the control API"
        );
        let epoch = crate::group_admin::forget(&self.ports, SentinelId(id))
            .await
            .map_err(admin_status)?;
        Ok(admin(format!(
            "sentinel {id} removed from the voter set (membership epoch {epoch})"
        )))
    }

    type WatchMasterStream = Feed<pb::MasterEvent>;

    async fn watch_master(
        &self,
        request: Request<pb::WatchMasterRequest>,
    ) -> Result<Response<Self::WatchMasterStream>, Status> {
        let req = request.into_inner();
        check_groups(&req.groups)?;
        // Subscribe before reading the snapshot, so that no change falls between the two.
        let events = self.ports.events.subscribe();
        let snap = self.snapshot();
        let watched = watched_groups(&snap, &req.groups)?;
        let (mut sink, stream) = feed::channel(STREAM_BUFFER.max(watched.len() + 1));
        let now = std::time::SystemTime::now();
        // The last epoch sent per group; only strictly higher ones follow.
        let mut last: HashMap<String, u64> = HashMap::new();
        for g in &watched {
            if g.epoch < req.min_epoch {
                continue;
            }
            let msg = convert::master_changed(
                &g.name,
                &g.master,
                crate::core::ConfigEpoch(g.epoch),
                &snap.name,
                now,
                true,
            );
            // The channel has room for every group, so this cannot fail.
            sink.push(msg);
            last.insert(g.name.clone(), g.epoch);
        }
        let all = req.groups.is_empty();
        let groups = req.groups;
        let min_epoch = req.min_epoch;
        let reported_by = snap.name.clone();
        feed::spawn_pump(
            events,
            sink,
            Some(KeepAlive {
                every: KEEP_ALIVE,
                make: convert::keep_alive,
            }),
            self.cancel.child_token(),
            move |record| {
                let (addr, epoch) = record.master_changed.as_ref()?;
                let group = record.group.as_ref()?;
                if !all && !groups.contains(group) {
                    return None;
                }
                if epoch.0 < min_epoch || last.get(group).is_some_and(|sent| epoch.0 <= *sent) {
                    return None;
                }
                last.insert(group.clone(), epoch.0);
                Some(convert::master_changed(
                    group,
                    addr,
                    *epoch,
                    &reported_by,
                    record.at,
                    false,
                ))
            },
        );
        Ok(Response::new(stream))
    }

    type WatchEventsStream = Feed<pb::Event>;

    async fn watch_events(
        &self,
        request: Request<pb::WatchEventsRequest>,
    ) -> Result<Response<Self::WatchEventsStream>, Status> {
        let req = request.into_inner();
        check_groups(&req.groups)?;
        if req.channels.len() > MAX_PATTERNS {
            return Err(Status::invalid_argument(format!(
                "channels: at most {MAX_PATTERNS} patterns"
            )));
        }
        if let Some(p) = req
            .channels
            .iter()
            .find(|p| p.is_empty() || p.len() > MAX_PATTERN_LEN)
        {
            return Err(Status::invalid_argument(format!(
                "channels: pattern '{}' is empty or longer than {MAX_PATTERN_LEN} bytes",
                shorten(p)
            )));
        }
        let events = self.ports.events.subscribe();
        let snap = self.snapshot();
        watched_groups(&snap, &req.groups)?;
        let filter = EventFilter::new(req.groups, &req.channels);
        let reported_by = snap.name.clone();
        let (sink, stream) = feed::channel(STREAM_BUFFER);
        feed::spawn_pump(
            events,
            sink,
            None,
            self.cancel.child_token(),
            move |record| {
                filter
                    .matches(record)
                    .then(|| convert::event(record, &reported_by))
            },
        );
        Ok(Response::new(stream))
    }
}

/// The group named `name`, or the status for an empty or unknown name.
fn group<'a>(snap: &'a Snapshot, name: &str) -> Result<&'a GroupSnapshot, Status> {
    let name = required("group", name)?;
    snap.groups
        .iter()
        .find(|g| g.name == name)
        .ok_or_else(|| Status::not_found(format!("no such group '{name}'")))
}

/// The groups of a watch request (every group for an empty list), or `NOT_FOUND` for the
/// first unknown one.
fn watched_groups<'a>(
    snap: &'a Snapshot,
    names: &[String],
) -> Result<Vec<&'a GroupSnapshot>, Status> {
    if names.is_empty() {
        return Ok(snap.groups.iter().collect());
    }
    names.iter().map(|n| group(snap, n)).collect()
}

fn check_groups(names: &[String]) -> Result<(), Status> {
    if names.len() > MAX_GROUPS {
        return Err(Status::invalid_argument(format!(
            "groups: at most {MAX_GROUPS} groups"
        )));
    }
    names
        .iter()
        .try_for_each(|n| required("groups", n).map(drop))
}

/// `value` if it is a plausible name, or `INVALID_ARGUMENT` naming `field`.
fn required<'a>(field: &str, value: &'a str) -> Result<&'a str, Status> {
    if value.is_empty() {
        return Err(Status::invalid_argument(format!(
            "{field} must not be empty"
        )));
    }
    if value.len() > MAX_NAME || value.chars().any(char::is_control) {
        return Err(Status::invalid_argument(format!(
            "{field}: not a valid name (at most {MAX_NAME} bytes, no control characters)"
        )));
    }
    Ok(value)
}

fn not_failing_over(g: &GroupSnapshot) -> Result<(), Status> {
    if g.failing_over {
        return Err(Status::failed_precondition(format!(
            "a failover of {} is already in progress",
            g.name
        )));
    }
    Ok(())
}

/// The status of a failed operator change.
fn admin_status(e: AdminFailure) -> Status {
    use crate::core::AdminError as E;
    let msg = e.to_string();
    match e {
        AdminFailure::Invalid(_) | AdminFailure::Core(E::Invalid(_)) => {
            Status::invalid_argument(msg)
        }
        AdminFailure::Core(E::Unknown(_)) => Status::not_found(msg),
        AdminFailure::Core(E::Exists(_)) => Status::already_exists(msg),
        AdminFailure::Core(E::Busy(_) | E::MembershipBusy | E::NotVoter) => {
            Status::failed_precondition(msg)
        }
        AdminFailure::Core(E::Superseded(_)) => Status::aborted(msg),
        AdminFailure::Core(E::TooMany(_)) => Status::resource_exhausted(msg),
        AdminFailure::Core(E::NoMajority(_) | E::NoMembershipMajority)
        | AdminFailure::Unavailable => Status::unavailable(msg),
        AdminFailure::Timeout(_) | AdminFailure::Core(E::MembershipUncertain) => {
            Status::deadline_exceeded(msg)
        }
    }
}

fn admin(message: String) -> Response<pb::AdminResponse> {
    Response::new(pb::AdminResponse { message })
}

/// `s` cut to a length fit for an error message.
fn shorten(s: &str) -> String {
    s.chars().take(64).collect()
}
