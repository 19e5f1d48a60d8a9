//! Servers without MLSD (LIST + MDTM): files whose LIST line proves them unchanged since the
//! previous snapshot are dated from it instead of by one MDTM each, and no change is missed for
//! it. Against vsftpd (LIST in UTC) and pyftpdlib without MLSD (LIST shown two hours east of
//! UTC, MDTM in UTC, as servers that list in local time do).

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::servers::{Pyftpd, Vsftpd, VsftpdOptions};
use common::tree::write_file;
use common::{assert_same_tree, JobEnv, TestDir};

enum Server {
    Vsftpd(Vsftpd),
    Pyftpd(Pyftpd, PathBuf, TestDir),
}

impl Server {
    fn vsftpd() -> Self {
        Server::Vsftpd(Vsftpd::start(VsftpdOptions::default()))
    }

    fn pyftpd_two_hours_east() -> Self {
        let dir = TestDir::new();
        std::fs::create_dir_all(dir.join("root")).expect("root");
        let log = dir.join("commands.log");
        let server = Pyftpd::start_list_only(&dir.join("root"), 2, &log);
        Server::Pyftpd(server, log, dir)
    }

    fn data(&self) -> PathBuf {
        match self {
            Server::Vsftpd(s) => s.data(),
            Server::Pyftpd(_, _, dir) => dir.join("root"),
        }
    }

    fn configure(&self, env: &mut JobEnv) {
        match self {
            Server::Vsftpd(s) => env.ftps(s.port, "/data"),
            Server::Pyftpd(s, _, _) => env.ftps(s.port, "/"),
        };
    }

    fn mdtm_count(&self) -> usize {
        match self {
            Server::Vsftpd(s) => s.command_args("MDTM").len(),
            Server::Pyftpd(_, log, _) => Pyftpd::command_args(log, "MDTM").len(),
        }
    }
}

fn ago(secs: u64) -> SystemTime {
    SystemTime::now() - Duration::from_secs(secs)
}

/// A site whose files last changed days ago (shown to the minute) or over a year ago (shown to
/// the day), with a deep chain of directories. Returns the number of files, and of those shown
/// to the day.
fn old_site(root: &Path) -> (u64, u64) {
    let (mut files, mut by_day) = (0, 0);
    for d in 0..4u64 {
        for i in 0..30u64 {
            let age = if i % 3 == 0 {
                by_day += 1;
                400 * 86_400 + i * 3600
            } else {
                2 * 86_400 + (d * 30 + i) * 97
            };
            let body = format!("file {d}/{i}\n").repeat(1 + (i as usize % 5));
            write_file(
                &root.join(format!("d{d}/sub{}/f{i}.txt", i % 2)),
                body.as_bytes(),
                ago(age),
            )
            .expect("write");
            files += 1;
        }
    }
    let deep: String = (1..=12).map(|i| format!("level{i}/")).collect();
    write_file(
        &root.join(format!("{deep}leaf.txt")),
        b"deep\n",
        ago(3 * 86_400),
    )
    .expect("write");
    (files + 1, by_day)
}

fn env_for(server: &Server, work: &TestDir, resource: &str) -> JobEnv {
    let mut env = JobEnv::new("acme", resource, &work.join("hot"));
    env.cold_dir(&work.join("cold"));
    server.configure(&mut env);
    env
}

fn restore_matches(env: &JobEnv, work: &TestDir, server: &Server) {
    let restored = work.join(&format!("restored-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&restored);
    env.run(&["restore", "--target", &restored.display().to_string()])
        .assert_ok();
    assert_same_tree(&server.data(), &restored);
}

fn unchanged_files_skip_mdtm(server: Server) {
    let (files, by_day) = old_site(&server.data());
    let work = TestDir::new();
    let env = env_for(&server, &work, "site");

    let first = env.run(&["backup"]).assert_ok();
    assert_eq!(first.files_new, files);
    let before = server.mdtm_count();
    assert_eq!(
        before as u64, files,
        "a first backup dates every file by MDTM"
    );

    let second = env.run(&["backup"]).assert_ok();
    assert_eq!(
        (second.files_unmodified, second.files_downloaded),
        (files, 0)
    );
    let asked = server.mdtm_count() - before;
    assert_eq!(
        asked as u64,
        by_day + 1,
        "an unchanged run asks MDTM once to learn the LIST time zone, and for each file LIST \
         shows to the day only"
    );

    // Changes as they happen: a same-size rewrite now, and a new file. Both are dated by MDTM.
    let data = server.data();
    let changed = data.join("d1/sub1/f7.txt");
    let len = std::fs::metadata(&changed).expect("stat").len() as usize;
    write_file(&changed, &vec![b'x'; len], SystemTime::now()).expect("rewrite");
    write_file(&data.join("d2/new.txt"), b"new\n", SystemTime::now()).expect("new");
    let before = server.mdtm_count();
    let third = env.run(&["backup"]).assert_ok();
    assert_eq!((third.files_changed, third.files_new), (1, 1), "{third:?}");
    let asked = server.mdtm_count() - before;
    assert!(
        (by_day as usize + 2..=by_day as usize + 3).contains(&asked),
        "{asked} MDTM commands"
    );
    restore_matches(&env, &work, &server);
}

/// A file written, backed up, and rewritten with the same size within one minute: LIST shows
/// the same size and minute both times, so only MDTM can tell, and MDTM must be asked.
fn same_size_change_in_the_same_minute_is_backed_up(server: Server) {
    let (_, by_day) = old_site(&server.data());
    let work = TestDir::new();
    let mut env = env_for(&server, &work, "racy");
    // No allowance for a slow server clock: the rule alone must keep this file dated by MDTM.
    env.set("UNSTOPPABLE_FTPS_CLOCK_SKEW_SECS", "0");
    let minute = loop {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("clock")
            .as_secs();
        if now % 60 <= 40 {
            break now - now % 60;
        }
        std::thread::sleep(Duration::from_secs(1));
    };
    let at = |s: u64| UNIX_EPOCH + Duration::from_secs(minute + s);
    let racy = server.data().join("d0/racy.txt");
    write_file(&racy, &[b'A'; 100], at(1)).expect("write");
    env.run(&["backup"]).assert_ok();

    write_file(&racy, &[b'B'; 100], at(30)).expect("rewrite");
    let before = server.mdtm_count();
    let second = env.run(&["backup"]).assert_ok();
    assert_eq!(second.files_changed, 1, "{second:?}");
    // The files shown to the minute were still dated from the previous snapshot.
    assert!(server.mdtm_count() - before <= by_day as usize + 2);
    restore_matches(&env, &work, &server);
}

/// A file over a year old, which LIST shows to the day only, rewritten with the same size and
/// its time set to another hour of that day (as `touch -d`, `rsync -t` or unpacking an archive
/// of an older version do): the LIST line looks the same, so MDTM must be asked.
fn same_size_change_within_a_listed_day_is_backed_up(server: Server) {
    old_site(&server.data());
    let days_ago = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs()
        / 86_400
        - 400;
    let at = |hour: u64| UNIX_EPOCH + Duration::from_secs(days_ago * 86_400 + hour * 3600);
    let old = server.data().join("d3/old.txt");
    write_file(&old, &[b'A'; 100], at(9)).expect("write");
    let work = TestDir::new();
    let env = env_for(&server, &work, "day");
    env.run(&["backup"]).assert_ok();

    write_file(&old, &[b'B'; 100], at(13)).expect("rewrite");
    let second = env.run(&["backup"]).assert_ok();
    assert_eq!(
        (second.files_changed, second.files_downloaded),
        (1, 1),
        "{second:?}"
    );
    restore_matches(&env, &work, &server);
}

#[test]
fn vsftpd_same_size_change_within_a_listed_day_is_backed_up() {
    same_size_change_within_a_listed_day_is_backed_up(Server::vsftpd());
}

#[test]
fn pyftpdlib_same_size_change_within_a_listed_day_is_backed_up() {
    same_size_change_within_a_listed_day_is_backed_up(Server::pyftpd_two_hours_east());
}

#[test]
fn vsftpd_unchanged_files_skip_mdtm() {
    unchanged_files_skip_mdtm(Server::vsftpd());
}

#[test]
fn pyftpdlib_listing_in_local_time_unchanged_files_skip_mdtm() {
    unchanged_files_skip_mdtm(Server::pyftpd_two_hours_east());
}

#[test]
fn vsftpd_same_size_change_in_the_same_minute_is_backed_up() {
    same_size_change_in_the_same_minute_is_backed_up(Server::vsftpd());
}

#[test]
fn pyftpdlib_same_size_change_in_the_same_minute_is_backed_up() {
    same_size_change_in_the_same_minute_is_backed_up(Server::pyftpd_two_hours_east());
}
