//! What every reconciler shares: the client, settings, event recorder and metrics.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kube::runtime::controller::Action;
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Client, Resource};

use crate::applied::Applied;
use crate::crd::{BackupCustomer, BackupResource};
use crate::error::{Error, Result};

use crate::metrics::Metrics;
use crate::secrets::SecretKeyNames;
use crate::settings::Settings;

pub struct Context {
    pub client: Client,
    pub settings: Settings,
    pub recorder: Recorder,
    pub metrics: Arc<Metrics>,
    /// What was last applied to each child object, to skip applies that would change nothing.
    pub applied: Applied,
    /// Key names of the Secrets resources need, read at most every few seconds.
    pub secret_keys: SecretKeyNames,
    /// One Infisical client per machine identity, so tokens are reused between reconciles.
    pub infisical: unstoppable_infisical::Clients,
    /// The watched BackupCustomers, when the operator runs its watches (tests without them
    /// read customers from the API).
    pub customers: Option<Store<BackupCustomer>>,
    /// The watched BackupResources, likewise.
    pub resources: Option<Store<BackupResource>>,
    /// Consecutive failures per object, for exponential backoff.
    failures: Mutex<HashMap<String, u32>>,
}

impl Context {
    pub fn new(client: Client, settings: Settings, metrics: Arc<Metrics>) -> Self {
        let reporter = Reporter {
            controller: "unstoppable-operator".into(),
            instance: std::env::var("POD_NAME").ok(),
        };
        Self {
            recorder: Recorder::new(client.clone(), reporter),
            client,
            settings,
            metrics,
            applied: Applied::default(),
            secret_keys: SecretKeyNames::default(),
            infisical: unstoppable_infisical::Clients::default(),
            customers: None,
            resources: None,
            failures: Mutex::default(),
        }
    }

    /// Reads customers from `store` (kept current by a watch) instead of the API.
    pub fn with_customer_store(mut self, store: Store<BackupCustomer>) -> Self {
        self.customers = Some(store);
        self
    }

    /// Reads the resources of a customer from `store` (kept current by a watch) instead of
    /// listing them: at thousands of resources, a list per customer reconcile is most of what
    /// the API server does for the customer controller.
    pub fn with_resource_store(mut self, store: Store<BackupResource>) -> Self {
        self.resources = Some(store);
        self
    }

    /// How many BackupResources in `ns` name the customer `name`, from the watch's store once
    /// it has listed everything, else from the API.
    pub async fn resource_count(&self, ns: &str, name: &str) -> Result<u32> {
        let of_customer = |r: &BackupResource| {
            r.metadata.namespace.as_deref() == Some(ns) && r.spec.customer_ref.name == name
        };
        if let Some(store) = &self.resources {
            if store.wait_until_ready().await.is_ok() {
                let n = store.state().iter().filter(|r| of_customer(r)).count();
                return Ok(u32::try_from(n).unwrap_or(u32::MAX));
            }
        }
        let api: kube::Api<BackupResource> = kube::Api::namespaced(self.client.clone(), ns);
        let list = api.list(&kube::api::ListParams::default()).await?;
        let n = list.items.iter().filter(|r| of_customer(r)).count();
        Ok(u32::try_from(n).unwrap_or(u32::MAX))
    }

    /// BackupCustomer `ns/name`, from the watch's store once it has listed everything (a
    /// half-filled store would make an existing customer look missing), else from the API.
    pub async fn customer(&self, ns: &str, name: &str) -> Result<Option<BackupCustomer>> {
        if let Some(store) = &self.customers {
            if store.wait_until_ready().await.is_ok() {
                let key = ObjectRef::new(name).within(ns);
                return Ok(store.get(&key).map(|c| c.as_ref().clone()));
            }
        }
        let api: kube::Api<BackupCustomer> = kube::Api::namespaced(self.client.clone(), ns);
        Ok(api.get_opt(name).await?)
    }

    /// Runs one reconciliation of `obj` by `controller` in a span naming the object: counts and
    /// times it, and resets the object's backoff when it succeeds.
    pub async fn reconciling<K: Resource<DynamicType = ()>>(
        &self,
        controller: &str,
        obj: &K,
        run: impl std::future::Future<Output = Result<Action>>,
    ) -> Result<Action> {
        let key = object_key(obj);
        let span = tracing::info_span!("reconcile", controller, object = %key);
        let started = std::time::Instant::now();
        let result = tracing::Instrument::instrument(run, span).await;
        self.metrics.reconciled(controller, started.elapsed());
        if result.is_ok() {
            self.succeeded(&key);
        }
        result
    }

    /// The error policy of every controller: log, count, retry with exponential backoff.
    pub fn retry_after_error<K: Resource<DynamicType = ()>>(
        &self,
        controller: &str,
        obj: &K,
        err: &Error,
    ) -> Action {
        let key = object_key(obj);
        if matches!(err, Error::Conflict(_)) {
            // Not a failure: another writer was first; read again and redo.
            tracing::debug!(controller, object = %key, "{err}; reconciling again");
            return Action::requeue(Duration::from_millis(500));
        }
        tracing::warn!(controller, object = %key, "reconcile failed: {err}");
        self.metrics.reconcile_failed(controller);
        Action::requeue(self.backoff(&key))
    }

    /// The delay before retrying `key` after one more failure: 5 s, doubling, at most 5 min.
    fn backoff(&self, key: &str) -> Duration {
        let n = self
            .failures
            .lock()
            .map(|mut f| {
                let n = f.entry(key.to_string()).or_insert(0);
                *n = n.saturating_add(1);
                *n
            })
            .unwrap_or(1);
        backoff_delay(n)
    }

    /// `key` reconciled fine: its next failure starts the backoff again.
    fn succeeded(&self, key: &str) {
        if let Ok(mut f) = self.failures.lock() {
            f.remove(key);
        }
    }

    /// Publishes an Event about `obj`. Events are best effort: a failure is logged, not fatal.
    pub async fn event<K: Resource<DynamicType = ()>>(
        &self,
        obj: &K,
        warning: bool,
        reason: &str,
        note: String,
    ) {
        let event = Event {
            type_: if warning {
                EventType::Warning
            } else {
                EventType::Normal
            },
            reason: reason.into(),
            note: Some(note),
            action: "Reconcile".into(),
            secondary: None,
        };
        if let Err(e) = self.recorder.publish(&event, &obj.object_ref(&())).await {
            tracing::warn!("cannot publish event {reason}: {e}");
        }
    }
}

/// The backoff key of an object: kind, namespace and name.
pub fn object_key<K: Resource<DynamicType = ()>>(obj: &K) -> String {
    format!(
        "{}/{}/{}",
        K::kind(&()),
        obj.meta().namespace.clone().unwrap_or_default(),
        obj.meta().name.clone().unwrap_or_default()
    )
}

pub fn backoff_delay(failures: u32) -> Duration {
    let secs = 5u64.saturating_mul(1u64 << failures.saturating_sub(1).min(10));
    Duration::from_secs(secs.min(300))
}

#[cfg(test)]
mod tests {
    use super::backoff_delay;
    use std::time::Duration;

    #[test]
    fn backoff_doubles_up_to_five_minutes() {
        let secs: Vec<u64> = (1..=8).map(|n| backoff_delay(n).as_secs()).collect();
        assert_eq!(secs, vec![5, 10, 20, 40, 80, 160, 300, 300]);
        assert_eq!(backoff_delay(u32::MAX), Duration::from_secs(300));
    }
}
