//! Restoring onto an FTPS server: list what the target holds, plan (see `plan.rs`), then delete,
//! create directories and upload — each file streamed from the repository into a temporary name
//! next to its place and renamed over it, so a reader of the site never sees half a file.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use futures_util::stream::{self, StreamExt};
use rustic_core::repofile::Node;
use suppaftp::Status;
use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc;
use unstoppable_contract::{FailedPath, FtpsConfig, RestoreOutcome};

use super::plan::{self, Entry, Overwrite, Plan, Upload};
use super::{Repo, Wanted};
use crate::backup::pool_for;
use crate::error::Error;
use crate::ftps::{
    join, list_dir, with_retries, Filter, FtpsError, Kind, ListingMode, Pool, SourceStats, Walk,
    WalkItem,
};

/// Why restored files lack the snapshot's times.
const NO_TIMES: &str = "the server sets no modification times (no MFMT, and MDTM with a time is refused): restored files carry the time of the upload";

/// Bytes read from the repository per step; rustic's blobs are about 1 MiB.
const CHUNK: usize = 1 << 20;
/// Chunks in flight between the repository reader and one upload.
const QUEUE: usize = 4;
/// Failed paths named in the summary.
const KEEP_FAILURES: usize = 20;

pub struct FtpsTarget<'a> {
    pub ftps: &'a FtpsConfig,
    /// Absolute directory on the server that corresponds to the restored node.
    pub root: String,
    pub overwrite: Overwrite,
    pub delete: bool,
    pub dry_run: bool,
    /// Only these paths (relative to `root`); a directory filter like the backup's.
    pub filter: Filter,
    pub includes: bool,
}

/// What the server said it can do (FEAT).
#[derive(Debug, Clone, Copy)]
struct Features {
    mode: ListingMode,
    /// RFC 3659 `MFMT`: set a file's modification time.
    mfmt: bool,
    /// `REST STREAM`: an interrupted upload can resume where it stopped.
    rest: bool,
}

struct Ctx {
    pool: Arc<Pool>,
    repo: Arc<Repo>,
    features: Features,
    root: String,
    retries: u32,
    failures: Mutex<Vec<FailedPath>>,
    failed: std::sync::atomic::AtomicU64,
    /// `MDTM_*`: whether the server sets times with MDTM (when it has no MFMT).
    mdtm_set: std::sync::atomic::AtomicU8,
}

impl Ctx {
    fn fail(&self, rel: &str, err: impl std::fmt::Display) {
        let reason = err.to_string();
        tracing::warn!("cannot restore `{rel}`: {reason}");
        self.failed
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if let Ok(mut f) = self.failures.lock() {
            if f.len() < KEEP_FAILURES {
                f.push(FailedPath {
                    path: rel.to_string(),
                    reason,
                });
            }
        }
    }

    fn abs(&self, rel: &str) -> String {
        if rel.is_empty() {
            self.root.clone()
        } else {
            join(&self.root, rel)
        }
    }
}

/// Restores `wanted` (the snapshot's entries below the restored node, with their nodes) onto the
/// server. Paths that cannot be written are reported one by one; the server itself failing
/// (connection, TLS, login, an unreadable target listing) fails the whole restore.
pub async fn run(
    repo: Arc<Repo>,
    wanted: Wanted,
    target: FtpsTarget<'_>,
) -> Result<(RestoreOutcome, Vec<FailedPath>, u64), Error> {
    let ftps = target.ftps;
    let pool = pool_for(ftps)?;
    let features = with_retries(ftps.retries, || features(&pool)).await?;
    tracing::info!(?features.mode, host = %ftps.host, root = %target.root, "connected to the restore target");
    let ctx = Arc::new(Ctx {
        pool: pool.clone(),
        repo,
        features,
        root: target.root.clone(),
        retries: ftps.retries,
        failures: Mutex::new(Vec::new()),
        failed: Default::default(),
        mdtm_set: std::sync::atomic::AtomicU8::new(MDTM_UNKNOWN),
    });
    let (mut present, root_exists) = list_target(&ctx, &target.filter).await?;
    if target.includes {
        // Directories are not matched by include globs: only their included files are touched.
        present.retain(|rel, e| *e != Entry::Dir || wanted.contains_key(rel));
    }
    let shapes: BTreeMap<String, Entry> = wanted
        .iter()
        .map(|(rel, (entry, _))| (rel.clone(), entry.clone()))
        .collect();
    let plan = plan::plan(&shapes, &present, target.overwrite, target.delete);
    for (rel, why) in &plan.conflicts {
        ctx.fail(rel, why);
    }
    let mut outcome = outcome_of(&plan, target.dry_run, features.mfmt);
    if target.dry_run {
        log_plan(&plan);
    } else {
        if !root_exists {
            make_root(&ctx).await?;
        }
        execute(&ctx, &plan, &wanted, &mut outcome).await;
        let by_mdtm = ctx.mdtm_set.load(Ordering::Relaxed) == MDTM_SETS;
        outcome.mtimes_set = features.mfmt || by_mdtm || plan.uploads.is_empty();
        outcome.note = (!outcome.mtimes_set).then(|| NO_TIMES.to_string());
    }
    pool.close().await;
    let failures = ctx.failures.lock().map(|f| f.clone()).unwrap_or_default();
    let failed = ctx.failed.load(std::sync::atomic::Ordering::Relaxed);
    Ok((outcome, failures, failed))
}

async fn features(pool: &Arc<Pool>) -> Result<Features, FtpsError> {
    let mut lease = pool.get().await?;
    let feat = lease
        .ftp()
        .feat()
        .await
        .map_err(|e| FtpsError::Protocol(format!("FEAT failed: {e}")))?;
    lease.release();
    let has = |name: &str| feat.keys().any(|k| k.eq_ignore_ascii_case(name));
    Ok(Features {
        mode: if has("MLST") || has("MLSD") {
            ListingMode::Mlsd
        } else {
            ListingMode::ListAndMdtm
        },
        mfmt: has("MFMT"),
        rest: feat.iter().any(|(k, v)| {
            k.eq_ignore_ascii_case("REST")
                && v.as_deref()
                    .is_some_and(|v| v.eq_ignore_ascii_case("STREAM"))
        }),
    })
}

/// What the target holds below the root, or nothing when the root does not exist yet. A listing
/// that is not whole fails the restore: deciding what to overwrite or delete needs all of it.
async fn list_target(
    ctx: &Arc<Ctx>,
    filter: &Filter,
) -> Result<(BTreeMap<String, Entry>, bool), Error> {
    let stats = Arc::new(SourceStats::default());
    match list_dir(
        &ctx.pool,
        ctx.features.mode,
        &ctx.root,
        ctx.retries,
        &stats,
        None,
    )
    .await
    {
        Ok(_) => {}
        // Servers refuse a missing directory with 550, 450 or (pyftpdlib) 501: a refused root is
        // created and listed again before anything is written (`make_root`).
        Err(FtpsError::Refused { .. }) => return Ok((BTreeMap::new(), false)),
        Err(err) => return Err(err.into()),
    }
    let walk = Arc::new(Walk {
        pool: ctx.pool.clone(),
        mode: ctx.features.mode,
        filter: filter.clone(),
        retries: ctx.retries,
        stats: stats.clone(),
        dating: None,
    });
    let (tx, mut rx) = mpsc::channel::<Result<WalkItem, FtpsError>>(1024);
    let walker = tokio::spawn(walk.run(ctx.root.clone(), tx));
    let mut present = BTreeMap::new();
    while let Some(item) = rx.recv().await {
        let item = item?;
        let entry = match item.entry.kind {
            Kind::Dir => Entry::Dir,
            Kind::File => Entry::File {
                size: item.entry.size,
                mtime: item.entry.mtime,
            },
            Kind::Symlink(_) => Entry::Other,
        };
        present.insert(item.rel, entry);
    }
    let _ = walker.await;
    if let Some(fatal) = stats.failures.fatal_message() {
        return Err(Error::Restore(format!(
            "listing the restore target: {fatal}"
        )));
    }
    if let Some(first) = stats.failures.first_paths().first() {
        return Err(Error::Restore(format!(
            "the restore target could not be listed completely (`{}`: {}); nothing was changed",
            first.path, first.reason
        )));
    }
    Ok((present, true))
}

fn outcome_of(plan: &Plan, dry_run: bool, mfmt: bool) -> RestoreOutcome {
    RestoreOutcome {
        target: "ftps".into(),
        dry_run,
        files_restored: plan.uploads.len() as u64,
        bytes_restored: plan.upload_bytes(),
        files_missing: plan
            .uploads
            .iter()
            .filter(|u| u.why == plan::Why::Missing)
            .count() as u64,
        files_changed: plan
            .uploads
            .iter()
            .filter(|u| u.why != plan::Why::Missing)
            .count() as u64,
        files_unchanged: plan.unchanged,
        files_kept: plan.kept,
        files_deleted: plan.delete_files.len() as u64,
        dirs_created: plan.make_dirs.len() as u64,
        dirs_removed: plan.remove_dirs.len() as u64,
        links_skipped: plan.skipped.len() as u64,
        mtimes_set: false,
        note: (dry_run && !mfmt).then(|| {
            "the server does not offer MFMT: times are set with MDTM where it accepts one".into()
        }),
        paths: plan
            .uploads
            .iter()
            .map(|u| u.rel.clone())
            .chain(plan.delete_files.iter().map(|d| format!("-{d}")))
            .take(RestoreOutcome::MAX_PATHS)
            .collect(),
        ..Default::default()
    }
}

fn log_plan(plan: &Plan) {
    for d in &plan.delete_files {
        tracing::info!("would delete `{d}`");
    }
    for d in &plan.remove_dirs {
        tracing::info!("would remove directory `{d}`");
    }
    for d in &plan.make_dirs {
        tracing::info!("would create directory `{d}`");
    }
    for u in &plan.uploads {
        tracing::info!(why = ?u.why, bytes = u.size, "would upload `{}`", u.rel);
    }
}

async fn make_root(ctx: &Arc<Ctx>) -> Result<(), Error> {
    // Each missing ancestor in turn; those that exist refuse MKD, which is fine.
    let mut path = String::new();
    for part in ctx.root.split('/').filter(|p| !p.is_empty()) {
        path.push('/');
        path.push_str(part);
        let _ = command(ctx, "MKD", &path, |ftp, p| {
            Box::pin(async move { ftp.mkdir(p).await })
        })
        .await;
    }
    let stats = SourceStats::default();
    list_dir(
        &ctx.pool,
        ctx.features.mode,
        &ctx.root,
        ctx.retries,
        &stats,
        None,
    )
    .await
    .map(|_| ())
    .map_err(|e| {
        Error::Restore(format!(
            "cannot create the target directory `{}`: {e}",
            ctx.root
        ))
    })
}

async fn execute(ctx: &Arc<Ctx>, plan: &Plan, wanted: &Wanted, outcome: &mut RestoreOutcome) {
    let width = ctx.pool.max_connections();
    let deleted = stream::iter(plan.delete_files.iter().map(|rel| async move {
        let abs = ctx.abs(rel);
        match command(ctx, "DELE", &abs, |ftp, p| {
            Box::pin(async move { ftp.rm(p).await })
        })
        .await
        {
            Ok(()) => 1u64,
            Err(e) => {
                ctx.fail(rel, e);
                0
            }
        }
    }))
    .buffer_unordered(width)
    .fold(0u64, |n, ok| async move { n + ok })
    .await;
    outcome.files_deleted = deleted;
    let mut removed = 0;
    for rel in &plan.remove_dirs {
        let abs = ctx.abs(rel);
        match command(ctx, "RMD", &abs, |ftp, p| {
            Box::pin(async move { ftp.rmdir(p).await })
        })
        .await
        {
            Ok(()) => removed += 1,
            Err(e) => ctx.fail(rel, e),
        }
    }
    outcome.dirs_removed = removed;
    let mut created = 0;
    let mut not_created: Vec<&str> = Vec::new();
    for rel in &plan.make_dirs {
        if not_created
            .iter()
            .any(|d| rel.starts_with(&format!("{d}/")))
        {
            continue;
        }
        let abs = ctx.abs(rel);
        match command(ctx, "MKD", &abs, |ftp, p| {
            Box::pin(async move { ftp.mkdir(p).await })
        })
        .await
        {
            Ok(()) => created += 1,
            Err(e) => {
                ctx.fail(rel, e);
                not_created.push(rel);
            }
        }
    }
    outcome.dirs_created = created;
    let uploads: Vec<(&Upload, Node)> = plan
        .uploads
        .iter()
        .filter(|u| {
            !not_created
                .iter()
                .any(|d| u.rel.starts_with(&format!("{d}/")))
        })
        .filter_map(|u| {
            let node = wanted.get(&u.rel).and_then(|(_, n)| n.clone());
            if node.is_none() {
                ctx.fail(&u.rel, "not found in the snapshot's trees");
            }
            node.map(|n| (u, n))
        })
        .collect();
    let results: Vec<(u64, u64)> = stream::iter(uploads.into_iter().map(|(u, node)| async move {
        match upload(ctx, u, node).await {
            Ok(()) => (1, u.size),
            Err(e) => {
                ctx.fail(&u.rel, e);
                (0, 0)
            }
        }
    }))
    .buffer_unordered(width)
    .collect()
    .await;
    outcome.files_restored = results.iter().map(|r| r.0).sum();
    outcome.bytes_restored = results.iter().map(|r| r.1).sum();
}

type Ftp = crate::ftps::Ftp;
type FtpFuture<'a> = std::pin::Pin<
    Box<dyn std::future::Future<Output = Result<(), suppaftp::FtpError>> + Send + 'a>,
>;

/// One command about one path on a pooled connection, retried like the backup's commands.
async fn command<F>(ctx: &Arc<Ctx>, op: &'static str, abs: &str, f: F) -> Result<(), FtpsError>
where
    F: for<'a> Fn(&'a mut Ftp, &'a str) -> FtpFuture<'a>,
{
    with_retries(ctx.retries, || async {
        let mut lease = ctx.pool.get().await?;
        let result = f(lease.ftp(), abs).await.map_err(|e| {
            FtpsError::from_ftp(e, op, abs, |d| {
                FtpsError::Protocol(format!("{op} `{abs}`: {d}"))
            })
        });
        lease.settle(&result);
        result
    })
    .await
}

/// The temporary name an upload is written to, beside the file it replaces.
fn temp_name(abs: &str) -> String {
    match abs.rsplit_once('/') {
        Some((dir, name)) => format!("{dir}/.{name}.unstoppable-restore"),
        None => format!(".{abs}.unstoppable-restore"),
    }
}

async fn upload(ctx: &Arc<Ctx>, up: &Upload, node: Node) -> Result<(), FtpsError> {
    let abs = ctx.abs(&up.rel);
    let tmp = temp_name(&abs);
    let attempt = std::sync::atomic::AtomicU32::new(0);
    with_retries(ctx.retries, || async {
        let n = attempt.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut lease = ctx.pool.get().await?;
        let result = store(ctx, lease.ftp(), &tmp, node.clone(), up.size, n > 0).await;
        lease.settle(&result);
        result
    })
    .await?;
    command(ctx, "RNFR/RNTO", &tmp, |ftp, p| {
        let to = abs.clone();
        Box::pin(async move { ftp.rename(p, to.as_str()).await })
    })
    .await?;
    match (ctx.features.mfmt, up.mtime) {
        (true, Some(mtime)) => {
            let stamp = mtime.strftime("%Y%m%d%H%M%S").to_string();
            command(ctx, "MFMT", &abs, |ftp, p| {
                let cmd = format!("MFMT {stamp} {p}");
                Box::pin(async move { ftp.custom_command(cmd, &[Status::File]).await.map(|_| ()) })
            })
            .await?;
        }
        (false, Some(mtime)) if ctx.mdtm_set.load(Ordering::Relaxed) != MDTM_REFUSED => {
            set_time_by_mdtm(ctx, &abs, mtime).await;
        }
        _ => {}
    }
    Ok(())
}

/// What `MDTM <time> <path>` does on this server: not tried yet, sets the time, or not.
const MDTM_UNKNOWN: u8 = 0;
const MDTM_SETS: u8 = 1;
const MDTM_REFUSED: u8 = 2;

/// Servers without MFMT, vsftpd first among them (`mdtm_write`, on by default), set a file's
/// time with `MDTM <time> <path>`. It is not in FEAT, so the first use is checked by reading
/// the time back; a server that does not do it is not asked again.
async fn set_time_by_mdtm(ctx: &Arc<Ctx>, abs: &str, mtime: jiff::Timestamp) {
    let Ok(mut lease) = ctx.pool.get().await else {
        return;
    };
    let stamp = mtime.strftime("%Y%m%d%H%M%S").to_string();
    let set = lease
        .ftp()
        .custom_command(format!("MDTM {stamp} {abs}"), &[Status::File])
        .await;
    let works = match set {
        Err(_) => false,
        Ok(_) if ctx.mdtm_set.load(Ordering::Relaxed) == MDTM_SETS => true,
        Ok(_) => lease
            .ftp()
            .mdtm(abs)
            .await
            .is_ok_and(|t| t.and_utc().timestamp() == mtime.as_second()),
    };
    let state = if works { MDTM_SETS } else { MDTM_REFUSED };
    ctx.mdtm_set.store(state, Ordering::Relaxed);
    // A refusal is a complete exchange: the connection is in step either way.
    lease.release();
}

/// STOR of one file, read from the repository as it is sent. A retry resumes (REST) from what
/// the server already holds when it offers `REST STREAM`.
async fn store(
    ctx: &Arc<Ctx>,
    ftp: &mut Ftp,
    tmp: &str,
    node: Node,
    size: u64,
    retry: bool,
) -> Result<(), FtpsError> {
    let transfer = |d: String| FtpsError::Transfer {
        path: tmp.to_string(),
        detail: d,
    };
    let mut offset = 0u64;
    if retry && ctx.features.rest {
        if let Ok(have) = ftp.size(tmp).await {
            let have = have as u64;
            if have <= size {
                offset = have;
            }
        }
    }
    if offset > 0 {
        ftp.resume_transfer(usize::try_from(offset).unwrap_or(0))
            .await
            .map_err(|e| transfer(e.to_string()))?;
    }
    let mut rx = read_from(ctx.repo.clone(), node, offset);
    let mut stream = ftp
        .put_with_stream(tmp)
        .await
        .map_err(|e| FtpsError::from_ftp(e, "STOR", tmp, transfer))?;
    let mut sent = offset;
    while let Some(chunk) = rx.recv().await {
        let chunk =
            chunk.map_err(|e| FtpsError::Protocol(format!("reading the repository: {e}")))?;
        stream
            .write_all(&chunk)
            .await
            .map_err(|e| transfer(e.to_string()))?;
        sent += chunk.len() as u64;
    }
    stream
        .finish()
        .await
        .map_err(|e| FtpsError::from_ftp(e, "STOR", tmp, transfer))?;
    if sent != size {
        return Err(FtpsError::Protocol(format!(
            "the snapshot's `{tmp}` gave {sent} bytes, its node says {size}"
        )));
    }
    Ok(())
}

/// Reads one file's content from the repository on a blocking thread (rustic is synchronous),
/// chunk by chunk through a small channel: memory stays bounded whatever the file's size.
fn read_from(repo: Arc<Repo>, node: Node, offset: u64) -> mpsc::Receiver<Result<Bytes, String>> {
    let (tx, rx) = mpsc::channel(QUEUE);
    tokio::task::spawn_blocking(move || {
        let open = match repo.open_file(&node) {
            Ok(open) => open,
            Err(e) => {
                let _ = tx.blocking_send(Err(e.display_log()));
                return;
            }
        };
        let mut at = usize::try_from(offset).unwrap_or(usize::MAX);
        loop {
            match repo.read_file_at(&open, at, CHUNK) {
                Ok(bytes) if bytes.is_empty() => return,
                Ok(bytes) => {
                    at += bytes.len();
                    if tx.blocking_send(Ok(bytes)).is_err() {
                        return;
                    }
                }
                Err(e) => {
                    let _ = tx.blocking_send(Err(e.display_log()));
                    return;
                }
            }
        }
    });
    rx
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temporary_names_are_hidden_siblings() {
        assert_eq!(
            temp_name("/site/index.html"),
            "/site/.index.html.unstoppable-restore"
        );
        assert_eq!(temp_name("/a"), "/.a.unstoppable-restore");
    }
}
