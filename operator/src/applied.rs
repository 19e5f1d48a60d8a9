//! What the operator last applied to each child object (CronJob, PVC), so that a reconcile whose
//! desired child is already in place sends nothing. Without it, every reconcile re-applies both
//! children, and the creation of each child triggers a reconcile of its owner: at thousands of
//! resources most API requests would be no-op server-side applies.
//!
//! A child counts as in place only when the version the API server returned for our last apply
//! is still the version the watch sees (the generation where the kind has one: a CronJob's status
//! updates do not count as a change; otherwise the resourceVersion) and the desired object has
//! not changed since. Anything else (an edit by someone else, a deletion, an operator restart, a
//! watch that relisted) makes the next reconcile apply again.
//!
//! One entry per child at 10,000 resources is 20,000 entries: they hold 64-bit fingerprints of
//! the child's identity and versions instead of their strings (a false match needs two different
//! values with the same SipHash, about 2^-64 per pair).

use std::collections::hash_map::DefaultHasher;
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::num::NonZeroU64;
use std::sync::Mutex;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::Serialize;

/// The identity of a child: kind, namespace, name.
pub type ChildKey = (&'static str, String, String);

/// One child, in 32 bytes: the map holds one per child at all times, so each field is as small
/// as it can be (a version fingerprint is never 0, which makes its `Option` free).
#[derive(Debug, Default)]
struct Entry {
    /// Hash of the desired object we applied, and the fingerprint of the version the API server
    /// returned for it.
    applied: Option<(u64, NonZeroU64)>,
    /// The fingerprint of the version the watch last saw.
    seen: Option<NonZeroU64>,
    /// The relist round of the child's kind it was seen in.
    round: u32,
    /// The child's kind, as its index in `Applied::kinds`, for relists, which are per kind.
    kind: u8,
}

#[derive(Debug, Default)]
pub struct Applied {
    /// By the fingerprint of the child's key.
    children: Mutex<HashMap<u64, Entry>>,
    /// Per kind (in the order first met): the relist round in progress (entries not seen during
    /// it are gone).
    kinds: Mutex<Vec<(&'static str, u32)>>,
}

/// The version of an object that changes when its spec changes.
pub fn version(meta: &ObjectMeta) -> Option<String> {
    meta.generation
        .map(|g| format!("g{g}"))
        .or_else(|| meta.resource_version.clone())
}

/// The fingerprint of the version of `meta` (see [`version`]); never 0.
fn version_print(meta: &ObjectMeta) -> Option<NonZeroU64> {
    version(meta).map(|v| NonZeroU64::new(fingerprint(&v)).unwrap_or(NonZeroU64::MIN))
}

/// The fingerprint of the child that `meta` describes.
fn key_of(kind: &'static str, meta: &ObjectMeta) -> u64 {
    fingerprint(&(
        kind,
        meta.namespace.as_deref().unwrap_or_default(),
        meta.name.as_deref().unwrap_or_default(),
    ))
}

/// The fingerprint of a child's key.
fn key_print(key: &ChildKey) -> u64 {
    fingerprint(&(key.0, key.1.as_str(), key.2.as_str()))
}

fn fingerprint<T: Hash + ?Sized>(value: &T) -> u64 {
    let mut h = DefaultHasher::new();
    value.hash(&mut h);
    h.finish()
}

/// A stable hash of the object we would apply.
pub fn desired_hash<T: Serialize>(desired: &T) -> u64 {
    let mut h = DefaultHasher::new();
    serde_json::to_vec(desired).unwrap_or_default().hash(&mut h);
    h.finish()
}

impl Applied {
    /// True when applying `desired_hash` to `key` would change nothing.
    pub fn is_current(&self, key: &ChildKey, desired_hash: u64) -> bool {
        let Ok(children) = self.children.lock() else {
            return false;
        };
        children
            .get(&key_print(key))
            .is_some_and(|e| match (e.applied, e.seen) {
                (Some((hash, applied)), Some(seen)) => hash == desired_hash && applied == seen,
                _ => false,
            })
    }

    /// True when the watch event `meta` of a child of `kind` shows our own last apply, which
    /// needs no reconcile of its owner.
    pub fn is_own_write(&self, kind: &'static str, meta: &ObjectMeta) -> bool {
        let key = key_of(kind, meta);
        let Ok(children) = self.children.lock() else {
            return false;
        };
        children
            .get(&key)
            .and_then(|e| e.applied)
            .is_some_and(|(_, applied)| Some(applied) == version_print(meta))
    }

    /// We applied `desired_hash` and the API server answered with `meta`.
    pub fn record(&self, key: ChildKey, desired_hash: u64, meta: &ObjectMeta) {
        let (kind, _) = self.kind(key.0);
        if let (Ok(mut children), Some(v)) = (self.children.lock(), version_print(meta)) {
            let e = children.entry(key_print(&key)).or_default();
            e.kind = kind;
            e.applied = Some((desired_hash, v));
        }
    }

    /// Our last apply of `key` failed or is unknown: apply again next time.
    pub fn invalidate(&self, key: &ChildKey) {
        if let Ok(mut children) = self.children.lock() {
            if let Some(e) = children.get_mut(&key_print(key)) {
                e.applied = None;
            }
        }
    }

    /// The watch sees `meta` of a child of `kind`.
    pub fn seen(&self, kind: &'static str, meta: &ObjectMeta) {
        let key = key_of(kind, meta);
        let (kind, round) = self.kind(kind);
        if let Ok(mut children) = self.children.lock() {
            let e = children.entry(key).or_default();
            e.kind = kind;
            e.seen = version_print(meta);
            e.round = round;
        }
    }

    /// The watch saw a child of `kind` deleted.
    pub fn deleted(&self, kind: &'static str, meta: &ObjectMeta) {
        let key = key_of(kind, meta);
        if let Ok(mut children) = self.children.lock() {
            children.remove(&key);
        }
    }

    /// The watch of `kind` starts listing everything again (after a restart or a desync).
    pub fn relist_started(&self, kind: &'static str) {
        if let Ok(mut kinds) = self.kinds.lock() {
            let i = position(&mut kinds, kind);
            if let Some((_, round)) = kinds.get_mut(i) {
                // Rounds are only compared for equality: wrapping after 2^32 relists is harmless.
                *round = round.wrapping_add(1);
            }
        }
    }

    /// The relist of `kind` is complete: children it did not see were deleted meanwhile.
    pub fn relist_done(&self, kind: &'static str) {
        let (kind, round) = self.kind(kind);
        if let Ok(mut children) = self.children.lock() {
            children.retain(|_, e| e.kind != kind || e.round == round);
        }
    }

    /// The index of `kind` (registered when first met) and its relist round.
    fn kind(&self, kind: &'static str) -> (u8, u32) {
        let Ok(mut kinds) = self.kinds.lock() else {
            return (u8::MAX, 0);
        };
        let i = position(&mut kinds, kind);
        let round = kinds.get(i).map_or(0, |(_, round)| *round);
        // The operator tracks two kinds of children; a u8 is plenty.
        (u8::try_from(i).unwrap_or(u8::MAX), round)
    }
}

/// Where `kind` is in `kinds`, added at the end when first met.
fn position(kinds: &mut Vec<(&'static str, u32)>, kind: &'static str) -> usize {
    if let Some(i) = kinds.iter().position(|(k, _)| *k == kind) {
        return i;
    }
    kinds.push((kind, 0));
    kinds.len() - 1
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(name: &str, generation: Option<i64>, rv: &str) -> ObjectMeta {
        ObjectMeta {
            name: Some(name.into()),
            namespace: Some("t".into()),
            generation,
            resource_version: Some(rv.into()),
            ..ObjectMeta::default()
        }
    }

    fn key(name: &str) -> ChildKey {
        ("CronJob", "t".into(), name.into())
    }

    #[test]
    fn an_entry_is_32_bytes() {
        // 20,000 of them at 10,000 resources; the map's buckets are this size plus the key.
        assert_eq!(std::mem::size_of::<Entry>(), 32);
    }

    #[test]
    fn a_child_is_current_only_while_the_watch_sees_what_we_applied() {
        let a = Applied::default();
        assert!(!a.is_current(&key("c"), 1), "never applied");
        a.record(key("c"), 1, &meta("c", Some(1), "10"));
        assert!(!a.is_current(&key("c"), 1), "not seen by the watch yet");
        assert!(a.is_own_write("CronJob", &meta("c", Some(1), "10")));
        a.seen("CronJob", &meta("c", Some(1), "11"));
        assert!(
            a.is_current(&key("c"), 1),
            "a status update keeps the generation"
        );
        assert!(!a.is_current(&key("c"), 2), "the desired object changed");
        a.seen("CronJob", &meta("c", Some(2), "12"));
        assert!(!a.is_current(&key("c"), 1), "someone else changed the spec");
        assert!(!a.is_own_write("CronJob", &meta("c", Some(2), "12")));
        a.record(key("c"), 1, &meta("c", Some(3), "13"));
        a.seen("CronJob", &meta("c", Some(3), "13"));
        assert!(a.is_current(&key("c"), 1));
        a.deleted("CronJob", &meta("c", Some(3), "13"));
        assert!(!a.is_current(&key("c"), 1), "deleted");
    }

    #[test]
    fn without_a_generation_the_resource_version_counts() {
        let a = Applied::default();
        let k = ("PersistentVolumeClaim", "t".to_string(), "p".to_string());
        a.record(k.clone(), 7, &meta("p", None, "5"));
        a.seen("PersistentVolumeClaim", &meta("p", None, "5"));
        assert!(a.is_current(&k, 7));
        a.seen("PersistentVolumeClaim", &meta("p", None, "6"));
        assert!(!a.is_current(&k, 7));
        a.record(k.clone(), 7, &meta("p", None, "6"));
        a.invalidate(&k);
        assert!(!a.is_current(&k, 7));
    }

    #[test]
    fn a_relist_forgets_children_deleted_while_the_watch_was_away() {
        let a = Applied::default();
        for name in ["kept", "gone"] {
            a.record(key(name), 1, &meta(name, Some(1), "1"));
            a.seen("CronJob", &meta(name, Some(1), "1"));
        }
        a.relist_started("CronJob");
        a.seen("CronJob", &meta("kept", Some(1), "1"));
        a.relist_done("CronJob");
        assert!(a.is_current(&key("kept"), 1));
        assert!(!a.is_current(&key("gone"), 1));
    }

    #[test]
    fn a_relist_of_one_kind_keeps_the_children_of_another() {
        let a = Applied::default();
        let pvc = ("PersistentVolumeClaim", "t".to_string(), "p".to_string());
        a.record(pvc.clone(), 7, &meta("p", None, "5"));
        a.seen("PersistentVolumeClaim", &meta("p", None, "5"));
        a.relist_started("CronJob");
        a.relist_done("CronJob");
        assert!(a.is_current(&pvc, 7));
        // Same namespace and name, another kind: another child.
        assert!(!a.is_current(&key("p"), 7));
    }
}
