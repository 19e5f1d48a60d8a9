//! The cold repository as it was at a time, from the bucket's object versions (Kopia's
//! `--point-in-time` is the model): for every key, the newest version written at or before the
//! time; a delete marker there means the key was absent. On a versioned bucket an attacker's
//! DELETEs only add markers, so this view still holds everything that was there. Pure.

use std::collections::BTreeMap;

use jiff::Timestamp;

/// One version of one object (or a delete marker), as ListObjectVersions reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Version {
    pub key: String,
    pub version_id: String,
    pub modified: Timestamp,
    pub size: u64,
    pub delete_marker: bool,
    /// The bucket's current version of the key.
    pub latest: bool,
}

/// Each key's version current at `at` (`None`: the current state); deleted keys are left out.
pub fn view_at(versions: &[Version], at: Option<Timestamp>) -> BTreeMap<String, Version> {
    let mut by_key: BTreeMap<&str, Vec<&Version>> = BTreeMap::new();
    for v in versions {
        by_key.entry(v.key.as_str()).or_default().push(v);
    }
    let mut view = BTreeMap::new();
    for (key, mut list) in by_key {
        // Newest first; within one second (S3 times are whole seconds) the bucket's current
        // version is the newer one.
        list.sort_by(|a, b| b.modified.cmp(&a.modified).then(b.latest.cmp(&a.latest)));
        let chosen = match at {
            None => list.iter().find(|v| v.latest).or(list.first()),
            Some(at) => list.iter().find(|v| v.modified <= at),
        };
        if let Some(v) = chosen.filter(|v| !v.delete_marker) {
            view.insert(key.to_string(), (*v).clone());
        }
    }
    view
}

/// What `recover` does to make the bucket's current state equal to the view at a time.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct RecoverPlan {
    /// Old versions to copy back as the current object (deleted or overwritten since).
    pub copy_back: Vec<Version>,
    /// Keys that exist now but not at the time: hidden behind a delete marker (their versions
    /// stay in the bucket).
    pub hide: Vec<String>,
    /// Keys already as they were.
    pub unchanged: u64,
}

pub fn recover_plan(versions: &[Version], at: Timestamp) -> RecoverPlan {
    let then = view_at(versions, Some(at));
    let now = view_at(versions, None);
    let mut plan = RecoverPlan::default();
    for (key, v) in &then {
        match now.get(key) {
            Some(cur) if cur.version_id == v.version_id => plan.unchanged += 1,
            _ => plan.copy_back.push(v.clone()),
        }
    }
    plan.hide = now
        .keys()
        .filter(|k| !then.contains_key(*k))
        .cloned()
        .collect();
    plan
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(key: &str, id: &str, secs: i64, latest: bool) -> Version {
        Version {
            key: key.into(),
            version_id: id.into(),
            modified: Timestamp::from_second(secs).expect("time"),
            size: 10,
            delete_marker: false,
            latest,
        }
    }
    fn marker(key: &str, id: &str, secs: i64, latest: bool) -> Version {
        Version {
            delete_marker: true,
            size: 0,
            ..v(key, id, secs, latest)
        }
    }
    fn t(secs: i64) -> Option<Timestamp> {
        Timestamp::from_second(secs).ok()
    }
    fn ids(view: &BTreeMap<String, Version>) -> Vec<(&str, &str)> {
        view.iter()
            .map(|(k, v)| (k.as_str(), v.version_id.as_str()))
            .collect()
    }

    /// Two backups, then an attacker deletes the snapshot and the pack and overwrites the index.
    fn attacked() -> Vec<Version> {
        vec![
            v("config", "c1", 100, true),
            v("snapshots/s1", "s1", 100, false),
            marker("snapshots/s1", "m1", 900, true),
            v("snapshots/s2", "s2", 200, false),
            marker("snapshots/s2", "m2", 900, true),
            v("index/i1", "i1", 100, false),
            v("index/i1", "i1-junk", 901, true),
            v("data/aa/p1", "p1", 100, false),
            marker("data/aa/p1", "m3", 902, true),
            v("junk", "j1", 903, true),
        ]
    }

    #[test]
    fn the_view_at_a_time_takes_each_keys_newest_version_up_to_it() {
        let versions = attacked();
        assert_eq!(
            ids(&view_at(&versions, t(150))),
            vec![
                ("config", "c1"),
                ("data/aa/p1", "p1"),
                ("index/i1", "i1"),
                ("snapshots/s1", "s1")
            ]
        );
        assert_eq!(
            ids(&view_at(&versions, t(500))),
            vec![
                ("config", "c1"),
                ("data/aa/p1", "p1"),
                ("index/i1", "i1"),
                ("snapshots/s1", "s1"),
                ("snapshots/s2", "s2")
            ]
        );
        assert_eq!(
            ids(&view_at(&versions, None)),
            vec![("config", "c1"), ("index/i1", "i1-junk"), ("junk", "j1")],
            "now: deleted keys are gone"
        );
        assert!(
            view_at(&versions, t(50)).is_empty(),
            "before the first write"
        );
    }

    #[test]
    fn within_one_second_the_current_version_is_the_newer() {
        let versions = vec![v("k", "old", 100, false), marker("k", "del", 100, true)];
        assert!(view_at(&versions, t(100)).is_empty());
        let versions = vec![marker("k", "del", 100, false), v("k", "new", 100, true)];
        assert_eq!(ids(&view_at(&versions, t(100))), vec![("k", "new")]);
    }

    #[test]
    fn recovery_copies_back_what_changed_and_hides_what_is_new() {
        let plan = recover_plan(&attacked(), Timestamp::from_second(500).expect("t"));
        let back: Vec<&str> = plan
            .copy_back
            .iter()
            .map(|v| v.version_id.as_str())
            .collect();
        assert_eq!(back, vec!["p1", "i1", "s1", "s2"]);
        assert_eq!(plan.hide, vec!["junk".to_string()]);
        assert_eq!(plan.unchanged, 1);
        // Recovering to the current state does nothing.
        let plan = recover_plan(&attacked(), Timestamp::from_second(10_000).expect("t"));
        assert!(plan.copy_back.is_empty() && plan.hide.is_empty());
    }
}
