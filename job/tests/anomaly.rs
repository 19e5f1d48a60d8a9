//! Attacks on the source seen in the backup itself: a week of ordinary edits is no anomaly;
//! mass deletion, encryption in place, renames to a new extension and a site replaced by one
//! page each are, with their own reason; the last good snapshot is then held through the
//! retention rules until released. Against vsftpd (LIST+MDTM) and pyftpdlib (MLSD), with the
//! cold part in SeaweedFS.

mod common;

use std::path::{Path, PathBuf};

use common::s3::s3;
use common::servers::{Pyftpd, Vsftpd, VsftpdOptions};
use common::tree::{time, write_file, Rng};
use common::{assert_same_tree, JobEnv, TestDir};
use unstoppable_contract::RunSummary;

const WORDS: &[&str] = &[
    "opening", "hours", "monday", "friday", "contact", "about", "our", "team", "services",
    "prices", "news", "the", "and", "for", "with", "<p>", "</p>", "<h2>", "</h2>", "welcome",
];

/// A web site of text pages (each a few KiB, so their compressibility is judged).
struct Site {
    root: PathBuf,
    files: Vec<String>,
    rng: Rng,
    clock: u64,
}

impl Site {
    fn new(root: &Path, seed: u64, pages: usize) -> Self {
        let mut site = Site {
            root: root.to_path_buf(),
            files: Vec::new(),
            rng: Rng::new(seed),
            clock: 0,
        };
        for i in 0..pages {
            let ext = ["html", "css", "php"][i % 3];
            site.add(&format!("d{}/page{i}.{ext}", i % 12));
        }
        site
    }

    fn text(&mut self) -> Vec<u8> {
        let words = 1500 + self.rng.below(1000) as usize;
        let mut out = String::new();
        for _ in 0..words {
            out.push_str(WORDS[self.rng.below(WORDS.len() as u64) as usize]);
            out.push(' ');
        }
        out.into_bytes()
    }

    fn tick(&mut self) -> std::time::SystemTime {
        self.clock += 3600;
        time(self.clock)
    }

    fn add(&mut self, rel: &str) {
        let data = self.text();
        let at = self.tick();
        write_file(&self.root.join(rel), &data, at).expect("write");
        self.files.push(rel.to_string());
    }

    fn edit(&mut self, i: usize) {
        let rel = self.files[i].clone();
        let mut data = std::fs::read(self.root.join(&rel)).expect("read");
        data.extend_from_slice(&self.text()[..200]);
        let at = self.tick();
        write_file(&self.root.join(&rel), &data, at).expect("write");
    }

    fn delete(&mut self, i: usize) -> String {
        let rel = self.files.remove(i);
        std::fs::remove_file(self.root.join(&rel)).expect("remove");
        rel
    }

    fn pick(&mut self) -> usize {
        self.rng.below(self.files.len() as u64) as usize
    }
}

/// A job environment for `data` on `port`, cold part in a fresh SeaweedFS bucket.
fn env_for(work: &TestDir, port: u16, name: &str) -> JobEnv {
    let s3 = s3();
    let bucket = format!("anomaly-{name}-{}", std::process::id());
    s3.create_bucket(&bucket, false);
    let mut env = JobEnv::new("acme", name, &work.join("hot"));
    env.ftps(port, "/data");
    s3.configure(&mut env, &s3.endpoint, &bucket);
    env
}

fn codes(s: &RunSummary) -> Vec<String> {
    s.anomaly
        .as_ref()
        .map(|a| a.reasons.iter().map(|r| r.code.clone()).collect())
        .unwrap_or_default()
}

fn backup(env: &JobEnv, day: u32) -> RunSummary {
    let run = env.run(&["backup", "--time", &format!("2026-05-{day:02}T03:00:00Z")]);
    let s = run.assert_ok();
    assert!(s.changes.is_some(), "no change profile:\n{}", run.stderr);
    s
}

/// A site with two ordinary days behind it: the baseline an attack is compared with.
fn site_with_history(data: &Path, env: &JobEnv, pages: usize) -> Site {
    let mut site = Site::new(data, 42, pages);
    backup(env, 1);
    for day in 2..4 {
        for _ in 0..3 {
            let i = site.pick();
            site.edit(i);
        }
        let s = backup(env, day);
        assert!(s.anomaly.is_none(), "{:?}", s.anomaly);
    }
    site
}

#[test]
fn a_normal_week_of_small_edits_is_no_anomaly_and_the_profile_counts_exactly() {
    let server = Vsftpd::start(VsftpdOptions::default());
    let work = TestDir::new();
    let env = env_for(&work, server.port, "week");
    let mut site = Site::new(&server.data(), 7, 300);
    let first = backup(&env, 1);
    let p = first.changes.expect("a profile on the first backup");
    assert_eq!((p.files_before, p.files_new), (0, 300));
    assert!(first.anomaly.is_none());

    for day in 2..9u32 {
        let (mut edited, mut added, mut deleted) = (std::collections::BTreeSet::new(), 0u64, 0u64);
        for _ in 0..(2 + site.rng.below(10)) {
            let i = site.pick();
            site.edit(i);
            edited.insert(site.files[i].clone());
        }
        for k in 0..site.rng.below(6) {
            site.add(&format!("d{}/new-{day}-{k}.html", k % 3));
            added += 1;
        }
        for _ in 0..site.rng.below(5) {
            let i = site.pick();
            if !edited.contains(&site.files[i]) {
                site.delete(i);
                deleted += 1;
            }
        }
        let report = work.join(&format!("report-{day}.json"));
        let s = env
            .run(&[
                "backup",
                "--time",
                &format!("2026-05-{day:02}T03:00:00Z"),
                "--report",
                &report.display().to_string(),
            ])
            .assert_ok();
        assert!(s.anomaly.is_none(), "day {day}: {:?}", s.anomaly);
        let p = s.changes.expect("profile");
        assert_eq!(
            (
                p.files_changed,
                p.files_new,
                p.files_deleted,
                p.files_renamed
            ),
            (edited.len() as u64, added, deleted, 0),
            "day {day}: {p:?}"
        );
        assert_eq!(p.files_incompressible, 0, "edits keep text text");
        assert_eq!(
            p.files_new_extension, 0,
            "day {day}: .html is this site's own"
        );
        let json: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&report).expect("report")).expect("JSON");
        assert_eq!(json["changes"]["filesChanged"], edited.len() as u64);
        assert!(json["usualPercent"]["changed"].is_number(), "{json}");
    }

    // Unchanged: nothing downloaded, nothing changed.
    let before = server.retr_count();
    let s = backup(&env, 10);
    assert_eq!(server.retr_count(), before, "no RETR for an unchanged run");
    let p = s.changes.expect("profile");
    assert_eq!((p.files_new, p.files_changed, p.files_deleted), (0, 0, 0));
    assert_eq!(p.files_unchanged, site.files.len() as u64);
    assert_eq!(s.held_snapshots, Some(vec![]));
}

/// 60 % of the files deleted: `MassDeletion`. The snapshot before it is held through
/// keep-last 1 and restores as the site was; released (as the operator passes it), it goes.
#[test]
fn a_mass_deletion_is_an_anomaly_and_the_last_good_snapshot_is_held_until_released() {
    let server = Vsftpd::start(VsftpdOptions::default());
    let work = TestDir::new();
    let mut env = env_for(&work, server.port, "wiped");
    env.set("UNSTOPPABLE_RETENTION_KEEP_LAST", "1");
    let mut site = site_with_history(&server.data(), &env, 300);
    let good = work.join("good");
    assert!(std::process::Command::new("cp")
        .arg("-a")
        .arg(server.data())
        .arg(&good)
        .status()
        .is_ok_and(|s| s.success()));

    for _ in 0..180 {
        let i = site.pick();
        site.delete(i);
    }
    let s = backup(&env, 4);
    assert_eq!(codes(&s), ["MassDeletion"], "{:?}", s.anomaly);
    let anomaly = s.anomaly.expect("anomaly");
    assert!(
        anomaly.reasons[0].message.contains("180 of 300"),
        "{:?}",
        anomaly.reasons
    );
    let held = anomaly.held_snapshot.expect("a held snapshot");
    assert_eq!(s.held_snapshots, Some(vec![held.clone()]));
    let listed = env.run(&["snapshots"]);
    assert_eq!(
        listed
            .stderr
            .lines()
            .filter(|l| l.contains("anomaly"))
            .count(),
        1,
        "{}",
        listed.stderr
    );

    // Backups go on; keep-last 1 keeps the newest and the held one.
    let s = backup(&env, 5);
    assert!(
        s.anomaly.is_none(),
        "the same state again is no new anomaly"
    );
    assert_eq!(s.held_snapshots, Some(vec![held.clone()]));
    assert_eq!(env.snapshot_count(), 2);
    let restored = work.join("restored");
    env.run(&[
        "restore",
        "--snapshot",
        &held,
        "--target",
        &restored.display().to_string(),
    ])
    .assert_ok();
    assert_same_tree(&good, &restored);

    let mut released = env.clone();
    released.set("UNSTOPPABLE_ANOMALY_RELEASE_HOLD", &held[..12]);
    let s = backup(&released, 6);
    assert_eq!(s.held_snapshots, Some(vec![]), "released");
    assert_eq!(env.snapshot_count(), 1, "released, the rules let it go");
}

/// 40 % of the files overwritten with random bytes: their content no longer compresses. Files
/// that did not compress before either are not counted.
#[test]
fn files_encrypted_in_place_are_an_anomaly() {
    let root = TestDir::new();
    let data = root.join("data");
    let work = TestDir::new();
    let mut site = Site::new(&data, 42, 300);
    let server = Pyftpd::start(root.path());
    let env = env_for(&work, server.port, "encrypted");
    backup(&env, 1);
    for _ in 0..3 {
        let i = site.pick();
        site.edit(i);
    }
    // Fifteen files become noise on an ordinary day (too few to be an anomaly): changed again
    // later, they are not counted, because their previous content did not compress either.
    let noise = |site: &mut Site, rel: &str| {
        let len = std::fs::metadata(data.join(rel)).expect("meta").len() as usize;
        // What encryption leaves: bytes without structure.
        let bytes: Vec<u8> = (0..len / 8 + 2)
            .flat_map(|_| site.rng.next_u64().to_le_bytes())
            .collect();
        let at = site.tick();
        write_file(&data.join(rel), &bytes, at).expect("write");
    };
    for i in 200..215 {
        let rel = site.files[i].clone();
        noise(&mut site, &rel);
    }
    let s = backup(&env, 2);
    assert!(s.anomaly.is_none(), "{:?}", s.anomaly);
    assert_eq!(s.changes.expect("profile").files_incompressible, 15);
    for i in (0..120).chain(200..215) {
        let rel = site.files[i].clone();
        noise(&mut site, &rel);
    }
    let s = backup(&env, 3);
    let codes = codes(&s);
    assert!(codes.contains(&"EncryptedContent".to_string()), "{codes:?}");
    assert!(!codes.contains(&"MassDeletion".to_string()), "{codes:?}");
    let p = s.changes.expect("profile");
    assert_eq!((p.files_changed, p.files_incompressible), (135, 120));
    assert!(s.anomaly.and_then(|a| a.held_snapshot).is_some());
}

/// 500 files renamed to `.locked`: renames, not deletions, to an extension never seen here.
#[test]
fn files_renamed_to_a_new_extension_are_an_anomaly() {
    let server = Vsftpd::start(VsftpdOptions::default());
    let work = TestDir::new();
    let env = env_for(&work, server.port, "renamed");
    let site = site_with_history(&server.data(), &env, 600);
    for rel in site.files.iter().take(500) {
        let from = server.data().join(rel);
        std::fs::rename(&from, format!("{}.locked", from.display())).expect("rename");
    }
    let s = backup(&env, 4);
    assert_eq!(codes(&s), ["NewExtensions"], "{:?}", s.anomaly);
    let p = s.changes.expect("profile");
    assert_eq!((p.files_renamed, p.files_deleted, p.files_new), (500, 0, 0));
    assert_eq!(p.new_extensions, ["locked"]);
    assert!(s.anomaly.expect("anomaly").reasons[0]
        .message
        .contains(".locked"));
}

/// The whole site replaced by one page.
#[test]
fn a_site_replaced_by_a_single_page_is_an_anomaly() {
    let root = TestDir::new();
    let data = root.join("data");
    let work = TestDir::new();
    let server = Pyftpd::start(root.path());
    let env = env_for(&work, server.port, "defaced");
    let site = site_with_history(&data, &env, 300);
    drop(site);
    std::fs::remove_dir_all(&data).expect("wipe");
    write_file(&data.join("index.html"), b"<h1>owned</h1>", time(999_999)).expect("write");
    let s = backup(&env, 4);
    assert_eq!(codes(&s), ["MassDeletion"], "{:?}", s.anomaly);
    let p = s.changes.expect("profile");
    assert_eq!((p.files_deleted, p.files_new), (300, 1));
}
