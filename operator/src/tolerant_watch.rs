//! Watches that survive an object they cannot decode. A typed watch fails the whole list when
//! one object does not fit the Rust type (e.g. an integer stored before the schema had a
//! maximum), which would stop reconciliation for every tenant. Here objects are watched as
//! dynamic objects and decoded one by one: an undecodable one is skipped, logged, and counted in
//! `unstoppable_undecodable_objects` (with an alert), and everything else goes on.

use std::collections::HashSet;
use std::fmt::Debug;
use std::sync::{Arc, Mutex};

use futures::{Stream, StreamExt};
use kube::api::{ApiResource, DynamicObject};
use kube::runtime::reflector::{self, Store};
use kube::runtime::watcher::{self, Event};
use kube::runtime::WatchStreamExt;
use kube::{Api, Client, Resource, ResourceExt};
use serde::de::DeserializeOwned;

use crate::metrics::Metrics;

/// The annotation in which `kubectl apply` keeps a full copy of the object.
const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// Names (`namespace/name`) of the objects of one kind that currently cannot be decoded.
#[derive(Debug, Default)]
struct Undecodable(Mutex<HashSet<String>>);

impl Undecodable {
    fn set(&self, key: &str, bad: bool) -> usize {
        let Ok(mut names) = self.0.lock() else {
            return 0;
        };
        if bad {
            names.insert(key.to_string());
        } else {
            names.remove(key);
        }
        names.len()
    }
}

/// A store of `K` and the stream of applied objects that feeds it, for `Controller::for_stream`
/// (or `watches_stream`).
pub fn watch<K>(
    client: Client,
    config: watcher::Config,
    metrics: Arc<Metrics>,
) -> (
    Store<K>,
    impl Stream<Item = Result<K, watcher::Error>> + Send + 'static,
)
where
    K: Resource<DynamicType = ()> + DeserializeOwned + Clone + Debug + Send + Sync + 'static,
{
    let resource = ApiResource::erase::<K>(&());
    let api: Api<DynamicObject> = Api::all_with(client, &resource);
    let kind = K::kind(&()).to_string();
    let undecodable = Arc::new(Undecodable::default());
    let (reader, writer) = reflector::store::<K>();
    let events = watcher::watcher(api, config).filter_map(move |event| {
        let decoded = match event {
            Err(e) => Some(Err(e)),
            Ok(event) => decode_event::<K>(event, &kind, &undecodable, &metrics).map(Ok),
        };
        std::future::ready(decoded)
    });
    let objects = reflector::reflector(writer, events).applied_objects();
    (reader, objects)
}

fn decode_event<K>(
    event: Event<DynamicObject>,
    kind: &str,
    undecodable: &Undecodable,
    metrics: &Metrics,
) -> Option<Event<K>>
where
    K: Resource<DynamicType = ()> + DeserializeOwned,
{
    let decode = |mut obj: DynamicObject, deleted: bool| -> Option<K> {
        // Field ownership and `kubectl apply`'s copy of the whole object are the API server's
        // and kubectl's business; kept in the store they would be most of the operator's memory
        // at thousands of objects.
        obj.metadata.managed_fields = None;
        if let Some(annotations) = obj.metadata.annotations.as_mut() {
            annotations.remove(LAST_APPLIED);
        }
        let key = format!("{}/{}", obj.namespace().unwrap_or_default(), obj.name_any());
        match obj.try_parse::<K>() {
            Ok(k) => {
                let n = undecodable.set(&key, false);
                metrics.set_undecodable(kind, n);
                Some(k)
            }
            Err(e) => {
                let n = undecodable.set(&key, !deleted);
                metrics.set_undecodable(kind, n);
                if !deleted {
                    tracing::error!(
                        kind,
                        object = %key,
                        "cannot decode {kind} {key}, skipping it (other objects are not affected): {e}; fix or delete it"
                    );
                }
                None
            }
        }
    };
    match event {
        Event::Apply(o) => decode(o, false).map(Event::Apply),
        Event::InitApply(o) => decode(o, false).map(Event::InitApply),
        Event::Delete(o) => decode(o, true).map(Event::Delete),
        Event::Init => Some(Event::Init),
        Event::InitDone => Some(Event::InitDone),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::BackupCustomer;
    use serde_json::json;

    fn customer(keep_last: serde_json::Value) -> DynamicObject {
        serde_json::from_value(json!({
            "apiVersion": "unstoppable.dev/v1alpha1", "kind": "BackupCustomer",
            "metadata": {"name": "acme", "namespace": "t1"},
            "spec": {"coldStorage": {"endpoint": "https://s3.example.org"},
                     "secrets": {"secretRef": {"name": "x"}},
                     "retention": {"keepLast": keep_last}},
        }))
        .expect("dynamic object")
    }

    #[test]
    fn stored_objects_carry_neither_field_ownership_nor_kubectls_copy() {
        let mut obj = customer(json!(7));
        obj.metadata.annotations = Some(
            [
                (
                    LAST_APPLIED.to_string(),
                    "{\"a\": \"whole copy\"}".to_string(),
                ),
                ("keep".to_string(), "me".to_string()),
            ]
            .into(),
        );
        obj.metadata.managed_fields = Some(vec![Default::default()]);
        let decoded = decode_event::<BackupCustomer>(
            Event::Apply(obj),
            "BackupCustomer",
            &Undecodable::default(),
            &Metrics::default(),
        );
        let Some(Event::Apply(c)) = decoded else {
            panic!("decoded");
        };
        assert!(c.metadata.managed_fields.is_none());
        let annotations = c.metadata.annotations.unwrap_or_default();
        assert!(!annotations.contains_key(LAST_APPLIED));
        assert_eq!(annotations.get("keep").map(String::as_str), Some("me"));
    }

    #[test]
    fn an_undecodable_object_is_skipped_counted_and_forgotten_when_fixed() {
        let metrics = Metrics::default();
        let bad = Undecodable::default();
        let skipped = decode_event::<BackupCustomer>(
            Event::Apply(customer(json!(4_294_967_296u64))),
            "BackupCustomer",
            &bad,
            &metrics,
        );
        assert!(skipped.is_none());
        assert!(metrics
            .encode()
            .contains(r#"unstoppable_undecodable_objects{kind="BackupCustomer"} 1"#));
        let fixed = decode_event::<BackupCustomer>(
            Event::Apply(customer(json!(7))),
            "BackupCustomer",
            &bad,
            &metrics,
        );
        assert!(
            matches!(fixed, Some(Event::Apply(c)) if c.spec.retention.as_ref().and_then(|r| r.keep_last) == Some(7))
        );
        assert!(metrics
            .encode()
            .contains(r#"unstoppable_undecodable_objects{kind="BackupCustomer"} 0"#));
    }
}
