//! The gRPC control API, `vigil.v1.SentinelControl`: the gRPC twin of the RESP sentinel port.
//!
//! Owns the tonic server (`serve`): the `SentinelControl` service (`service`), the conversions
//! of `Snapshot` and `EventRecord` into protobuf messages (`convert`), the bounded per-stream
//! feeds of `WatchMaster` and `WatchEvents` (`feed`) and the event filter with channel globs
//! (`filter`); it also serves `grpc.health.v1` and server reflection v1 (so that
//! `grpcurl -plaintext ADDR list` works), with optional TLS or mutual TLS.
//!
//! Invariants: queries only read the latest `Snapshot`; admin calls only queue an `Input` for
//! the loop with `try_send`, so a busy sentinel answers `UNAVAILABLE` instead of blocking; a
//! stream never holds more than a bounded number of undelivered messages, and a subscriber
//! that falls behind is told `RESOURCE_EXHAUSTED` and dropped, never stalling the sentinel;
//! every stream ends when its client goes away or when `cancel` fires.

mod convert;
mod feed;
pub(crate) mod filter;
mod service;

use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;
use tokio_util::sync::CancellationToken;
use tonic::transport::{Certificate, Identity, Server, ServerTlsConfig};
use tonic_health::ServingStatus;
use tracing::info;
use vigil_proto::control::SentinelControlServer;

use crate::daemon::Ports;

use service::Control;

/// The largest request accepted, in bytes; every request of the API is far smaller.
const MAX_REQUEST: usize = 64 * 1024;
/// The largest response sent, in bytes (`ListGroups` of many groups with many replicas).
const MAX_RESPONSE: usize = 4 * 1024 * 1024;
/// Requests served at once on one connection; more wait for a slot.
const CONCURRENCY_PER_CONNECTION: usize = 64;
/// HTTP/2 streams open at once on one connection (each watch stream holds one); more are
/// refused by the HTTP/2 layer.
const MAX_STREAMS: u32 = 128;
/// HTTP/2 pings to notice dead clients, so their streams end.
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(10);
/// A ping unanswered for this long closes the connection.
const KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(20);
/// A TLS handshake that takes longer than this is abandoned.
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The TLS files of the control API, all PEM.
#[derive(Clone, Debug)]
pub struct ApiTls {
    /// The server's certificate chain.
    pub cert: PathBuf,
    /// Its private key.
    pub key: PathBuf,
    /// When set, clients must present a certificate that chains to this CA (mutual TLS).
    pub client_ca: Option<PathBuf>,
}

/// Why the control API cannot start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// A TLS file cannot be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// tonic refuses the TLS configuration (a bad certificate or key).
    #[error("invalid TLS configuration for the control API: {0}")]
    Tls(#[source] tonic::transport::Error),
    /// The reflection service cannot read the descriptor set.
    #[error("reflection service: {0}")]
    Reflection(#[from] tonic_reflection::server::Error),
    /// The server failed while serving.
    #[error("control API server: {0}")]
    Serve(#[source] tonic::transport::Error),
}

/// Serves `vigil.v1.SentinelControl`, `grpc.health.v1.Health` and server reflection v1 on
/// `listener` until `cancel` fires; then waits for in-flight calls, which end promptly since
/// every watch stream ends on `cancel` too.
pub async fn serve(
    listener: TcpListener,
    ports: Ports,
    tls: Option<ApiTls>,
    cancel: CancellationToken,
) -> Result<(), ApiError> {
    let mut builder = Server::builder()
        .concurrency_limit_per_connection(CONCURRENCY_PER_CONNECTION)
        .max_concurrent_streams(MAX_STREAMS)
        .http2_keepalive_interval(Some(KEEPALIVE_INTERVAL))
        .http2_keepalive_timeout(Some(KEEPALIVE_TIMEOUT))
        .tcp_nodelay(true);
    let secure = tls.is_some();
    if let Some(tls) = tls {
        builder = builder
            .tls_config(tls_config(&tls)?)
            .map_err(ApiError::Tls)?;
    }

    let (health, health_service) = tonic_health::server::health_reporter();
    health.set_service_status("", ServingStatus::Serving).await;
    health.set_serving::<SentinelControlServer<Control>>().await;
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(vigil_proto::v1::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()?;
    let control = SentinelControlServer::new(Control::new(ports, cancel.child_token()))
        .max_decoding_message_size(MAX_REQUEST)
        .max_encoding_message_size(MAX_RESPONSE);

    let local = listener.local_addr().ok();
    info!(addr = ?local, tls = secure, "control API listening");
    builder
        .add_service(health_service)
        .add_service(reflection)
        .add_service(control)
        .serve_with_incoming_shutdown(TcpListenerStream::new(listener), cancel.cancelled())
        .await
        .map_err(ApiError::Serve)?;
    info!(addr = ?local, "control API stopped");
    Ok(())
}

/// tonic's TLS configuration from the PEM files of `tls`.
fn tls_config(tls: &ApiTls) -> Result<ServerTlsConfig, ApiError> {
    let identity = Identity::from_pem(read(&tls.cert)?, read(&tls.key)?);
    let mut config = ServerTlsConfig::new()
        .identity(identity)
        .timeout(TLS_HANDSHAKE_TIMEOUT);
    if let Some(ca) = &tls.client_ca {
        // With a client CA, tonic requires a client certificate (client auth is not optional).
        config = config.client_ca_root(Certificate::from_pem(read(ca)?));
    }
    Ok(config)
}

fn read(path: &Path) -> Result<Vec<u8>, ApiError> {
    std::fs::read(path).map_err(|source| ApiError::Read {
        path: path.to_path_buf(),
        source,
    })
}
