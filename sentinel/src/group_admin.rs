//! Operators' changes of groups at run time (`Monitor`, `SetOption`, `Remove`, `Reset`), from
//! the control ports to the core and back.
//!
//! Owns `AdminRequest`, `AdminFailure`, the option names operators use (Redis Sentinel's
//! `SENTINEL SET` names and Vigil's), and the mapping between a group's `GroupSettings` and the
//! core's `GroupOptions`. Invariant: a request is answered only with the core's verdict (the
//! change confirmed by a majority of sentinels, or refused) or a timeout that says the change
//! may still take effect; nothing here changes a group by itself.

use std::num::NonZeroU8;
use std::time::Duration;

use tokio::sync::oneshot;

use crate::core::{AdminError, Dc, GroupOptions, Quorum, SentinelId};
use crate::daemon::{Ports, ShellInput};
use crate::nodes::NodeAddr;
use crate::settings::GroupSettings;

/// What an operator asks of a group.
#[derive(Debug)]
pub enum AdminRequest {
    /// Start monitoring a new group with Vigil's default options.
    Monitor {
        /// Its master.
        master: NodeAddr,
        /// Its quorum.
        quorum: u8,
    },
    /// Change options, `(name, value)` pairs (`SENTINEL SET` names).
    Set {
        /// The changes, applied in order.
        options: Vec<(String, String)>,
    },
    /// Stop monitoring the group.
    Remove,
    /// Forget the group's discovered replicas.
    Reset,
}

impl AdminRequest {
    /// The request's name, for logs.
    pub fn name(&self) -> &'static str {
        match self {
            AdminRequest::Monitor { .. } => "monitor",
            AdminRequest::Set { .. } => "set",
            AdminRequest::Remove => "remove",
            AdminRequest::Reset => "reset",
        }
    }
}

/// Why an operator's request did not (yet) take effect.
#[derive(Clone, Debug, thiserror::Error)]
pub enum AdminFailure {
    /// The request itself is wrong (bad option, name or value).
    #[error("{0}")]
    Invalid(String),
    /// The sentinels refused it or could not agree.
    #[error(transparent)]
    Core(#[from] AdminError),
    /// The sentinel is stopping, or has too many requests in flight.
    #[error("the sentinel cannot take the request now (stopping, or too many in flight)")]
    Unavailable,
    /// No verdict in time.
    #[error(
        "no verdict within {0:?}; the change may still take effect, check with `vigil admin group`"
    )]
    Timeout(Duration),
}

/// How long a port waits for the verdict: an election, then a heartbeat round for the
/// confirmation, with room to spare.
pub const ADMIN_TIMEOUT: Duration = Duration::from_secs(15);

/// Submits `request` for `group` and waits for the verdict; `Ok` carries the term of the
/// change (`DurableGroup::agreed`), confirmed by a majority.
pub async fn submit(
    ports: &Ports,
    group: &str,
    request: AdminRequest,
) -> Result<u64, AdminFailure> {
    let (reply, verdict) = oneshot::channel();
    ports
        .inputs
        .try_send(ShellInput::Admin {
            group: group.to_owned(),
            request,
            reply,
        })
        .map_err(|_| AdminFailure::Unavailable)?;
    match tokio::time::timeout(ADMIN_TIMEOUT, verdict).await {
        Ok(Ok(v)) => v,
        Ok(Err(_)) => Err(AdminFailure::Unavailable),
        Err(_) => Err(AdminFailure::Timeout(ADMIN_TIMEOUT)),
    }
}

/// Asks the sentinels to remove `sentinel` from the voter set and waits for the verdict; `Ok`
/// carries the membership epoch of a set without it, decided by a majority.
pub async fn forget(ports: &Ports, sentinel: SentinelId) -> Result<u64, AdminFailure> {
    let (reply, verdict) = oneshot::channel();
    ports
        .inputs
        .try_send(ShellInput::Forget { sentinel, reply })
        .map_err(|_| AdminFailure::Unavailable)?;
    match tokio::time::timeout(ADMIN_TIMEOUT, verdict).await {
        Ok(Ok(v)) => v,
        Ok(Err(_)) => Err(AdminFailure::Unavailable),
        Err(_) => Err(AdminFailure::Timeout(ADMIN_TIMEOUT)),
    }
}

/// The options of a group from its settings (`extra` holds only what an operator set).
pub fn options_of(s: &GroupSettings) -> GroupOptions {
    GroupOptions {
        quorum: Quorum(s.quorum),
        down_after: s.down_after,
        failover_timeout: s.failover_timeout,
        parallel_syncs: s.parallel_syncs,
        preferred_dc: s.preferred_dc.as_deref().map(|d| Dc(d.into())),
        sync_replicas: s.sync_replicas,
        extra: Default::default(),
    }
}

/// A group's settings as they apply now: `base` (its config file entry, or defaults) with the
/// options the sentinels agreed on top.
pub fn effective(mut base: GroupSettings, o: &GroupOptions) -> GroupSettings {
    base.quorum = o.quorum.0;
    base.down_after = o.down_after;
    base.failover_timeout = o.failover_timeout;
    base.parallel_syncs = o.parallel_syncs;
    base.preferred_dc = o.preferred_dc.as_ref().map(|d| d.0.to_string());
    base.sync_replicas = o.sync_replicas;
    if let Some(v) = o.extra.get("auth-pass") {
        base.auth_pass = (!v.is_empty()).then(|| v.clone());
    }
    if let Some(v) = o.extra.get("auth-user") {
        base.auth_user = (!v.is_empty()).then(|| v.clone());
    }
    if let Some(n) = o
        .extra
        .get("redis-min-replicas")
        .and_then(|v| v.parse().ok())
    {
        base.redis_min_replicas = n;
    }
    base
}

/// The option names `set` accepts.
pub const OPTION_NAMES: &str = "quorum, down-after-milliseconds, failover-timeout, \
     parallel-syncs, sync-replicas, preferred-dc, auth-pass, auth-user, redis-min-replicas";

/// Applies one `SENTINEL SET`-style option to `o`.
pub fn apply_option(o: &mut GroupOptions, name: &str, value: &str) -> Result<(), AdminFailure> {
    let bad = |why: &str| {
        AdminFailure::Invalid(format!(
            "option {name}: {:?} {why}",
            value.chars().take(64).collect::<String>()
        ))
    };
    let small = |min: u8| -> Result<u8, AdminFailure> {
        value
            .trim()
            .parse::<u8>()
            .ok()
            .filter(|n| *n >= min)
            .ok_or_else(|| bad(&format!("is not a number in {min}..=255")))
    };
    let ms = || -> Result<Duration, AdminFailure> {
        value
            .trim()
            .parse::<u64>()
            .ok()
            .filter(|n| (1..=3_600_000).contains(n))
            .map(Duration::from_millis)
            .ok_or_else(|| bad("is not a number of milliseconds in 1..=3600000"))
    };
    let nonzero = |n: u8| NonZeroU8::new(n).ok_or_else(|| bad("must be at least 1"));
    match name.to_ascii_lowercase().as_str() {
        "quorum" => o.quorum = Quorum(nonzero(small(1)?)?),
        "down-after-milliseconds" | "down-after-ms" => o.down_after = ms()?,
        "failover-timeout" | "failover-timeout-ms" => o.failover_timeout = ms()?,
        "parallel-syncs" => o.parallel_syncs = nonzero(small(1)?)?,
        "sync-replicas" => o.sync_replicas = small(0)?,
        "preferred-dc" => {
            let v = value.trim();
            if v.len() > 128 || !v.bytes().all(|b| b.is_ascii_graphic()) {
                return Err(bad("must be up to 128 printable ASCII characters"));
            }
            o.preferred_dc = (!v.is_empty()).then(|| Dc(v.into()));
        }
        "auth-pass" | "auth-user" => {
            if value.len() > 1024 {
                return Err(AdminFailure::Invalid(format!(
                    "option {name}: longer than 1024 bytes"
                )));
            }
            o.extra.insert(name.to_ascii_lowercase(), value.to_owned());
        }
        "redis-min-replicas" => {
            let n = small(0)?;
            o.extra.insert("redis-min-replicas".into(), n.to_string());
        }
        _ => {
            return Err(AdminFailure::Invalid(format!(
                "unknown option {:?}; known: {OPTION_NAMES}",
                name.chars().take(64).collect::<String>()
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> GroupOptions {
        options_of(&GroupSettings::new("g", "127.0.0.1:6379".parse().unwrap(), 2).unwrap())
    }

    #[test]
    fn options_parse_by_redis_names_and_bad_values_are_refused() {
        let mut o = base();
        apply_option(&mut o, "down-after-milliseconds", "1500").unwrap();
        apply_option(&mut o, "QUORUM", "3").unwrap();
        apply_option(&mut o, "parallel-syncs", "2").unwrap();
        apply_option(&mut o, "auth-pass", "secret").unwrap();
        apply_option(&mut o, "preferred-dc", "east").unwrap();
        assert_eq!(o.down_after, Duration::from_millis(1500));
        assert_eq!(o.quorum.get(), 3);
        assert_eq!(o.parallel_syncs.get(), 2);
        assert_eq!(o.preferred_dc, Some(Dc("east".into())));
        for (k, v) in [
            ("quorum", "0"),
            ("quorum", "256"),
            ("down-after-milliseconds", "-1"),
            ("down-after-milliseconds", "0"),
            ("failover-timeout", "abc"),
            ("parallel-syncs", "0"),
            ("no-such-option", "1"),
            ("preferred-dc", "has space"),
        ] {
            let e = apply_option(&mut o, k, v).unwrap_err();
            assert!(matches!(e, AdminFailure::Invalid(_)), "{k} {v}: {e}");
        }
        // Nothing changed by the refused ones.
        assert_eq!(o.quorum.get(), 3);
    }

    #[test]
    fn effective_settings_take_the_agreed_options() {
        let s = GroupSettings::new("g", "127.0.0.1:6379".parse().unwrap(), 2).unwrap();
        let mut o = options_of(&s);
        apply_option(&mut o, "auth-pass", "pw").unwrap();
        apply_option(&mut o, "redis-min-replicas", "0").unwrap();
        apply_option(&mut o, "failover-timeout", "20000").unwrap();
        let e = effective(s, &o);
        assert_eq!(e.auth_pass.as_deref(), Some("pw"));
        assert_eq!(e.redis_min_replicas, 0);
        assert_eq!(e.failover_timeout, Duration::from_secs(20));
    }
}
