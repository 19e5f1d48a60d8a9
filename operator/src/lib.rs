//! The unstoppable operator: CRD types, pure rendering of desired objects, reconcilers, run
//! result ingestion and metrics.

#![recursion_limit = "256"]
pub mod allocator;
pub mod anomaly;
pub mod applied;
pub mod conditions;
pub mod context;
pub mod crd;
pub mod cron_dialect;
pub mod customer_controller;
pub mod error;
#[cfg(any(test, feature = "fixtures"))]
pub mod fixtures;
pub mod job_config;
pub mod job_controller;
pub mod keys;
pub mod leadership;
pub mod metrics;
pub mod names;
pub mod render;
pub mod resource_controller;
pub mod restore_controller;
pub mod restore_crd;
pub mod restore_render;
pub mod results;
pub mod schedule;
pub mod secrets;
pub mod series;
pub mod server;
pub mod settings;
pub mod status;
pub mod storage;
pub mod tolerant_watch;
pub mod watch_health;

/// Selects rustls' crypto provider for the whole process. Both `ring` (kube) and `aws-lc-rs`
/// (the AWS SDK) are compiled in, and rustls refuses to guess: without this, the first TLS
/// connection to the Kubernetes API panics.
pub fn install_crypto_provider() {
    // An error only means a provider is installed already.
    let _ = rustls::crypto::ring::default_provider().install_default();
}
