/// What a reconciliation can fail with; each is retried with backoff.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    #[error("{0} has no namespace")]
    NoNamespace(String),
    /// The object changed since it was read (a status written from a stale copy is refused);
    /// the reconcile runs again at once on the fresh object.
    #[error("{0} changed since it was read")]
    Conflict(String),
    #[error("cannot serialise the status: {0}")]
    Serialize(serde_json::Error),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
