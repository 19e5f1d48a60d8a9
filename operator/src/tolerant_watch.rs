//! Watches that survive an object they cannot decode. A typed watch fails the whole list when
//! one object does not fit the Rust type (e.g. an integer stored before the schema had a
//! maximum), which would stop reconciliation for every tenant. Here each object of a list or a
//! watch event is kept as its raw JSON and decoded on its own: an undecodable one is skipped,
//! logged, and counted in `unstoppable_undecodable_objects` (with an alert), and everything else
//! goes on. (Decoding through `DynamicObject` did the same, but built a JSON tree of about 13 KB
//! per object, field ownership included, for every object listed and every watch event.)

use std::borrow::Cow;
use std::collections::HashSet;
use std::fmt::Debug;
use std::sync::{Arc, Mutex};

use futures::{Stream, StreamExt};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::runtime::reflector::{self, Store};
use kube::runtime::watcher::{self, Event};
use kube::runtime::WatchStreamExt;
use kube::{Api, Client, Resource, ResourceExt};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};
use serde_json::value::RawValue;

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

/// One object of kind `K` as a list or watch event carried it: decoded, or why it could not be.
// Short-lived: unwrapped as soon as it is read, so the size of the variants does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug)]
pub enum Lenient<K> {
    Decoded(K),
    /// Its metadata (as far as it decodes: the watch needs the resource version) and the error.
    Undecodable {
        metadata: ObjectMeta,
        error: String,
    },
}

impl<'de, K: DeserializeOwned> Deserialize<'de> for Lenient<K> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        // Only the JSON text is kept (no tree): decoding it into `K` is then a second pass.
        let raw = Box::<RawValue>::deserialize(deserializer)?;
        match serde_json::from_str::<K>(raw.get()) {
            Ok(k) => Ok(Lenient::Decoded(k)),
            Err(e) => {
                #[derive(Deserialize)]
                struct Meta {
                    #[serde(default)]
                    metadata: ObjectMeta,
                }
                let metadata = serde_json::from_str::<Meta>(raw.get())
                    .map(|m| m.metadata)
                    .unwrap_or_default();
                Ok(Lenient::Undecodable {
                    metadata,
                    error: e.to_string(),
                })
            }
        }
    }
}

impl<K: Resource<DynamicType = ()>> Resource for Lenient<K> {
    type DynamicType = ();
    type Scope = K::Scope;

    fn kind(dt: &()) -> Cow<'_, str> {
        K::kind(dt)
    }
    fn group(dt: &()) -> Cow<'_, str> {
        K::group(dt)
    }
    fn version(dt: &()) -> Cow<'_, str> {
        K::version(dt)
    }
    fn plural(dt: &()) -> Cow<'_, str> {
        K::plural(dt)
    }
    fn meta(&self) -> &ObjectMeta {
        match self {
            Lenient::Decoded(k) => k.meta(),
            Lenient::Undecodable { metadata, .. } => metadata,
        }
    }
    fn meta_mut(&mut self) -> &mut ObjectMeta {
        match self {
            Lenient::Decoded(k) => k.meta_mut(),
            Lenient::Undecodable { metadata, .. } => metadata,
        }
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
    let api: Api<Lenient<K>> = Api::all(client);
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
    event: Event<Lenient<K>>,
    kind: &str,
    undecodable: &Undecodable,
    metrics: &Metrics,
) -> Option<Event<K>>
where
    K: Resource<DynamicType = ()> + DeserializeOwned,
{
    let decode = |obj: Lenient<K>, deleted: bool| -> Option<K> {
        let key = format!("{}/{}", obj.namespace().unwrap_or_default(), obj.name_any());
        match obj {
            Lenient::Decoded(mut k) => {
                // Field ownership and `kubectl apply`'s copy of the whole object are the API
                // server's and kubectl's business; kept in the store they would be most of the
                // operator's memory at thousands of objects.
                let meta = k.meta_mut();
                meta.managed_fields = None;
                if let Some(annotations) = meta.annotations.as_mut() {
                    annotations.remove(LAST_APPLIED);
                }
                let n = undecodable.set(&key, false);
                metrics.set_undecodable(kind, n);
                Some(k)
            }
            Lenient::Undecodable { error: e, .. } => {
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

    fn customer_json(keep_last: serde_json::Value) -> serde_json::Value {
        json!({
            "apiVersion": "unstoppable.dev/v1alpha1", "kind": "BackupCustomer",
            "metadata": {"name": "acme", "namespace": "t1", "resourceVersion": "42"},
            "spec": {"coldStorage": {"endpoint": "https://s3.example.org"},
                     "secrets": {"secretRef": {"name": "x"}},
                     "retention": {"keepLast": keep_last}},
        })
    }

    /// As the client reads it: from the response's text.
    fn lenient(v: serde_json::Value) -> Lenient<BackupCustomer> {
        serde_json::from_str(&v.to_string()).expect("any object is read")
    }

    fn customer(keep_last: serde_json::Value) -> Lenient<BackupCustomer> {
        lenient(customer_json(keep_last))
    }

    #[test]
    fn an_undecodable_object_keeps_its_metadata_for_the_watch() {
        let obj = customer(json!(4_294_967_296u64));
        let Lenient::Undecodable { ref error, .. } = obj else {
            panic!("keepLast beyond u32 must not decode");
        };
        assert!(error.contains("4294967296"), "{error}");
        assert_eq!(obj.resource_version().as_deref(), Some("42"));
        assert_eq!(obj.name_any(), "acme");
        let list: kube::core::ObjectList<Lenient<BackupCustomer>> = serde_json::from_str(
            &json!({"metadata": {"resourceVersion": "43"},
                    "items": [customer_json(json!(4_294_967_296u64)), customer_json(json!(7))]})
            .to_string(),
        )
        .expect("one bad item does not fail the list");
        assert!(matches!(list.items[0], Lenient::Undecodable { .. }));
        assert!(matches!(list.items[1], Lenient::Decoded(_)));
    }

    #[test]
    fn stored_objects_carry_neither_field_ownership_nor_kubectls_copy() {
        let mut v = customer_json(json!(7));
        v["metadata"]["annotations"] =
            json!({LAST_APPLIED: "{\"a\": \"whole copy\"}", "keep": "me"});
        v["metadata"]["managedFields"] = json!([{"manager": "kubectl", "operation": "Apply",
            "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": {}}}]);
        let obj = lenient(v);
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
