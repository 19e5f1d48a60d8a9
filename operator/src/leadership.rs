//! Leader election on a Lease, so the chart can run more than one replica: only the leader
//! reconciles and records results; a standby serves health and empty metrics and takes over when
//! the leader's lease expires (or it releases it on shutdown). Losing the lease while leading ends
//! the process, as client-go's leader election does: two replicas never write status at once.

use kube::Client;
use kube_lease_manager::{LeaseManagerBuilder, LeaseManagerError};
use tokio::sync::watch::Receiver;

/// How long a lease lasts without renewal, and the margin before it is taken over.
const LEASE_SECONDS: u64 = 15;
const GRACE_SECONDS: u64 = 5;

/// Where and as whom to take the lease.
pub struct LeaseSettings {
    pub name: String,
    pub namespace: String,
    pub identity: String,
}

/// Waits until this replica leads; the receiver then reports `false` if the lease is lost.
pub async fn lead(client: Client, s: &LeaseSettings) -> Result<Receiver<bool>, LeaseManagerError> {
    let manager = LeaseManagerBuilder::new(client, &s.name)
        .with_namespace(&s.namespace)
        .with_identity(&s.identity)
        .with_duration(LEASE_SECONDS)
        .with_grace(GRACE_SECONDS)
        .build()
        .await?;
    let (mut leading, _task) = manager.watch().await;
    tracing::info!(lease = %s.name, identity = %s.identity, "waiting to lead");
    while !*leading.borrow_and_update() {
        if leading.changed().await.is_err() {
            return Err(LeaseManagerError::ControlChannelError(
                tokio::sync::watch::error::SendError(false),
            ));
        }
    }
    tracing::info!(lease = %s.name, identity = %s.identity, "leading");
    Ok(leading)
}

/// Resolves when `leading` says the lease is lost (or the lease manager stopped).
pub async fn lost(mut leading: Receiver<bool>) {
    loop {
        if leading.changed().await.is_err() {
            return;
        }
        if !*leading.borrow_and_update() {
            return;
        }
    }
}
