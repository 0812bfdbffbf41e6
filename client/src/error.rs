//! `ClientError`: everything the watcher and the client report to their callers.

/// An error from `MasterWatcher` or `Client`.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// No master is known for `group` (no sentinel has announced one yet, or none in time).
    #[error("no master known for group {group}")]
    NoMaster {
        /// The group asked for.
        group: String,
    },
    /// A bounded wait ended first: no new master was announced within the write timeout.
    #[error("timed out waiting for a new master")]
    Timeout,
    /// The command may or may not have been applied: the connection failed after it was sent.
    /// It is not retried (writes are at most once).
    #[error("outcome unknown: {0}")]
    Unknown(String),
    /// The data node answered with an error, or a connection could not be set up.
    #[error(transparent)]
    Redis(#[from] redis::RedisError),
    /// A sentinel answered a gRPC call with an error.
    #[error("sentinel: {0}")]
    Grpc(#[from] tonic::Status),
    /// No sentinel could be reached, or the sentinel options are unusable (URI, TLS files).
    #[error("transport: {0}")]
    Transport(String),
}
