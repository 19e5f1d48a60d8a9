//! What a restore onto a live tree (an FTPS server) has to do: compare the snapshot's entries
//! with what the target holds and decide, per path, to create, upload, leave or delete. Pure:
//! the listing and the transfers are elsewhere.

use std::collections::{BTreeMap, BTreeSet};

use jiff::Timestamp;

/// When a file that exists on the target is replaced by the snapshot's copy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Overwrite {
    /// When size or modification time differ (rsync's quick check).
    #[default]
    Changed,
    /// Always.
    Always,
    /// Never: only missing files are restored.
    Never,
}

impl std::str::FromStr for Overwrite {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "changed" => Ok(Self::Changed),
            "always" => Ok(Self::Always),
            "never" => Ok(Self::Never),
            other => Err(format!(
                "`{other}` is not an overwrite policy: use changed, always or never"
            )),
        }
    }
}

/// One entry, on either side, by its path relative to the restore's root (`/`-separated).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    Dir,
    File {
        size: u64,
        mtime: Option<Timestamp>,
    },
    /// Symbolic links (and anything else that is not a plain file or directory).
    Other,
}

/// Why a file is uploaded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Why {
    Missing,
    Changed,
    Always,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upload {
    pub rel: String,
    pub size: u64,
    pub mtime: Option<Timestamp>,
    pub why: Why,
}

/// The steps, in the order they run: deletions first (so that a path whose type changed can be
/// restored), then directories parent-first, then uploads.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// Files (and links) on the target that the snapshot does not have (only with `delete`).
    pub delete_files: Vec<String>,
    /// Directories on the target that the snapshot does not have, deepest first.
    pub remove_dirs: Vec<String>,
    /// Directories to create, parents first.
    pub make_dirs: Vec<String>,
    pub uploads: Vec<Upload>,
    /// Files on the target equal to the snapshot's (same size and time).
    pub unchanged: u64,
    /// Files that differ but were left alone (`overwrite: never`).
    pub kept: u64,
    /// Snapshot entries the target cannot hold (symbolic links over FTP).
    pub skipped: Vec<String>,
    /// Paths whose type differs on the target and that `delete` would have to remove first.
    pub conflicts: Vec<(String, String)>,
}

impl Plan {
    pub fn upload_bytes(&self) -> u64 {
        self.uploads.iter().map(|u| u.size).sum()
    }

    /// True when the target already equals the snapshot.
    pub fn is_empty(&self) -> bool {
        self.delete_files.is_empty()
            && self.remove_dirs.is_empty()
            && self.make_dirs.is_empty()
            && self.uploads.is_empty()
    }
}

/// Compares `wanted` (the snapshot) with `present` (the target). The root itself (`""`) is never
/// in either map.
pub fn plan(
    wanted: &BTreeMap<String, Entry>,
    present: &BTreeMap<String, Entry>,
    overwrite: Overwrite,
    delete: bool,
) -> Plan {
    let mut plan = Plan::default();
    // Paths removed from the target (with `delete`), so that their replacement is created.
    let mut removed: BTreeSet<&str> = BTreeSet::new();
    if delete {
        for (rel, entry) in present {
            let keep = match (wanted.get(rel), entry) {
                (None, _) => false,
                (Some(Entry::Dir), Entry::Dir) => true,
                (Some(Entry::File { .. }), Entry::File { .. }) => true,
                // A link in the snapshot cannot be restored over FTP: leave what is there.
                (Some(Entry::Other), _) => true,
                (Some(_), _) => false,
            };
            if !keep && !under_removed(rel, &removed) {
                removed.insert(rel);
            }
        }
        for (rel, entry) in present {
            if !removed.iter().any(|r| *r == rel || is_under(rel, r)) {
                continue;
            }
            match entry {
                Entry::Dir => plan.remove_dirs.push(rel.clone()),
                _ => plan.delete_files.push(rel.clone()),
            }
        }
        // Children before their parents.
        plan.remove_dirs
            .sort_by(|a, b| depth(b).cmp(&depth(a)).then_with(|| b.cmp(a)));
    }
    let gone = |rel: &str| removed.iter().any(|r| *r == rel || is_under(rel, r));
    for (rel, entry) in wanted {
        let there = if gone(rel) { None } else { present.get(rel) };
        match (entry, there) {
            (Entry::Other, _) => plan.skipped.push(rel.clone()),
            (Entry::Dir, None) => plan.make_dirs.push(rel.clone()),
            (Entry::Dir, Some(Entry::Dir)) => {}
            (Entry::File { size, mtime }, None) => plan.uploads.push(Upload {
                rel: rel.clone(),
                size: *size,
                mtime: *mtime,
                why: Why::Missing,
            }),
            (Entry::File { size, mtime }, Some(Entry::File { size: s, mtime: m })) => {
                let same = size == s && same_second(*mtime, *m);
                let why = match (overwrite, same) {
                    (Overwrite::Always, _) => Some(Why::Always),
                    (Overwrite::Changed, false) => Some(Why::Changed),
                    (Overwrite::Never, false) => {
                        plan.kept += 1;
                        None
                    }
                    (_, true) => {
                        plan.unchanged += 1;
                        None
                    }
                };
                if let Some(why) = why {
                    plan.uploads.push(Upload {
                        rel: rel.clone(),
                        size: *size,
                        mtime: *mtime,
                        why,
                    });
                }
            }
            (_, Some(other)) => {
                let (want, have) = (kind_name(entry), kind_name(other));
                plan.conflicts.push((
                    rel.clone(),
                    format!(
                        "is a {have} on the target and a {want} in the snapshot; \
                         restore with delete to replace it"
                    ),
                ));
            }
        }
    }
    // A conflict leaves its subtree out: nothing can be created under a file.
    if !plan.conflicts.is_empty() {
        let blocked: Vec<String> = plan.conflicts.iter().map(|(r, _)| r.clone()).collect();
        let inside = |rel: &str| blocked.iter().any(|b| is_under(rel, b));
        plan.make_dirs.retain(|d| !inside(d));
        plan.uploads.retain(|u| !inside(&u.rel));
    }
    plan
}

fn kind_name(entry: &Entry) -> &'static str {
    match entry {
        Entry::Dir => "directory",
        Entry::File { .. } => "file",
        Entry::Other => "link",
    }
}

/// Listings carry whole seconds at best.
fn same_second(a: Option<Timestamp>, b: Option<Timestamp>) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => a.as_second() == b.as_second(),
        // A side without a time cannot be compared: the size decides.
        _ => true,
    }
}

fn depth(rel: &str) -> usize {
    rel.matches('/').count()
}

fn is_under(rel: &str, dir: &str) -> bool {
    rel.len() > dir.len() && rel.starts_with(dir) && rel.as_bytes()[dir.len()] == b'/'
}

fn under_removed(rel: &str, removed: &BTreeSet<&str>) -> bool {
    removed.iter().any(|r| is_under(rel, r))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: i64) -> Option<Timestamp> {
        Timestamp::from_second(s).ok()
    }
    fn file(size: u64, secs: i64) -> Entry {
        Entry::File {
            size,
            mtime: t(secs),
        }
    }
    fn tree(entries: &[(&str, Entry)]) -> BTreeMap<String, Entry> {
        entries
            .iter()
            .map(|(p, e)| (p.to_string(), e.clone()))
            .collect()
    }
    fn uploads(plan: &Plan) -> Vec<(&str, Why)> {
        plan.uploads
            .iter()
            .map(|u| (u.rel.as_str(), u.why))
            .collect()
    }

    fn snapshot() -> BTreeMap<String, Entry> {
        tree(&[
            ("a.txt", file(10, 100)),
            ("site", Entry::Dir),
            ("site/index.html", file(20, 200)),
            ("site/img", Entry::Dir),
            ("site/img/logo.png", file(30, 300)),
            ("link", Entry::Other),
        ])
    }

    #[test]
    fn a_deleted_and_a_modified_file_are_uploaded_the_rest_is_left() {
        let present = tree(&[
            ("site", Entry::Dir),
            ("site/index.html", file(25, 999)),
            ("site/img", Entry::Dir),
            ("site/img/logo.png", file(30, 300)),
            ("added.php", file(5, 1000)),
        ]);
        let p = plan(&snapshot(), &present, Overwrite::Changed, false);
        assert_eq!(
            uploads(&p),
            vec![("a.txt", Why::Missing), ("site/index.html", Why::Changed)]
        );
        assert_eq!(p.unchanged, 1);
        assert!(p.delete_files.is_empty(), "nothing is deleted unless asked");
        assert_eq!(p.skipped, vec!["link".to_string()]);
        assert_eq!(p.upload_bytes(), 30);
    }

    #[test]
    fn same_size_other_time_is_changed_and_subsecond_differences_are_not() {
        let wanted = tree(&[("f", file(10, 100))]);
        let p = plan(
            &wanted,
            &tree(&[("f", file(10, 101))]),
            Overwrite::Changed,
            false,
        );
        assert_eq!(uploads(&p), vec![("f", Why::Changed)]);
        let precise = Entry::File {
            size: 10,
            mtime: Timestamp::from_millisecond(100_400).ok(),
        };
        let p = plan(
            &tree(&[("f", precise)]),
            &tree(&[("f", file(10, 100))]),
            Overwrite::Changed,
            false,
        );
        assert!(p.uploads.is_empty());
        assert_eq!(p.unchanged, 1);
    }

    #[test]
    fn overwrite_never_only_restores_missing_files_and_always_rewrites_all() {
        let present = tree(&[("a.txt", file(11, 100))]);
        let wanted = tree(&[("a.txt", file(10, 100)), ("b.txt", file(1, 1))]);
        let p = plan(&wanted, &present, Overwrite::Never, false);
        assert_eq!(uploads(&p), vec![("b.txt", Why::Missing)]);
        assert_eq!(p.kept, 1);
        let same = tree(&[("a.txt", file(10, 100))]);
        let p = plan(&wanted, &same, Overwrite::Always, false);
        assert_eq!(
            uploads(&p),
            vec![("a.txt", Why::Always), ("b.txt", Why::Missing)]
        );
    }

    #[test]
    fn missing_directories_are_created_parents_first() {
        let p = plan(&snapshot(), &BTreeMap::new(), Overwrite::Changed, false);
        assert_eq!(
            p.make_dirs,
            vec!["site".to_string(), "site/img".to_string()]
        );
        assert_eq!(p.uploads.len(), 3);
    }

    #[test]
    fn delete_removes_only_what_the_snapshot_lacks_children_before_parents() {
        let present = tree(&[
            ("a.txt", file(10, 100)),
            ("evil", Entry::Dir),
            ("evil/sub", Entry::Dir),
            ("evil/sub/x.php", file(1, 1)),
            ("evil/y.php", file(1, 1)),
            ("site", Entry::Dir),
            ("site/index.html", file(20, 200)),
            ("site/shell.php", file(3, 3)),
        ]);
        let p = plan(&snapshot(), &present, Overwrite::Changed, true);
        assert_eq!(
            p.delete_files,
            vec!["evil/sub/x.php", "evil/y.php", "site/shell.php"]
        );
        assert_eq!(p.remove_dirs, vec!["evil/sub", "evil"]);
        assert_eq!(p.make_dirs, vec!["site/img"]);
        assert_eq!(uploads(&p), vec![("site/img/logo.png", Why::Missing)]);
    }

    #[test]
    fn a_type_change_is_a_conflict_without_delete_and_replaced_with_it() {
        let present = tree(&[
            ("a.txt", Entry::Dir),
            ("a.txt/inner", file(1, 1)),
            ("site", file(4, 4)),
        ]);
        let p = plan(&snapshot(), &present, Overwrite::Changed, false);
        let conflicts: Vec<&str> = p.conflicts.iter().map(|(r, _)| r.as_str()).collect();
        assert_eq!(conflicts, vec!["a.txt", "site"]);
        assert!(p.conflicts[0].1.contains("directory on the target"));
        assert!(p.uploads.is_empty(), "nothing is written under a conflict");
        assert!(p.make_dirs.is_empty());

        let p = plan(&snapshot(), &present, Overwrite::Changed, true);
        assert!(p.conflicts.is_empty());
        assert_eq!(p.delete_files, vec!["a.txt/inner", "site"]);
        assert_eq!(p.remove_dirs, vec!["a.txt"]);
        assert_eq!(p.make_dirs, vec!["site", "site/img"]);
        assert_eq!(p.uploads.len(), 3);
    }

    #[test]
    fn a_target_equal_to_the_snapshot_needs_nothing() {
        let mut present = snapshot();
        present.remove("link");
        let p = plan(&snapshot(), &present, Overwrite::Changed, true);
        assert!(p.is_empty(), "{p:?}");
        assert_eq!(p.unchanged, 3);
    }

    #[test]
    fn overwrite_policies_parse_and_refuse_other_words() {
        assert_eq!("never".parse::<Overwrite>(), Ok(Overwrite::Never));
        let err = "sometimes".parse::<Overwrite>().unwrap_err();
        assert!(err.contains("changed, always or never"), "{err}");
    }
}
