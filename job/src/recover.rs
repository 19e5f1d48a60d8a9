//! `recover --as-of <time>`: makes the cold repository's current state what it was at that time
//! again, after an attacker with the job's keys deleted or overwrote snapshots, indexes and
//! packs. On a versioned bucket those deletes only added markers: every old version is copied
//! back as the current object, keys written since are hidden behind a delete marker, and no
//! version is ever deleted. The hot part is then rebuilt from the recovered cold part.

use std::path::Path;

use aws_sdk_s3::error::DisplayErrorContext;
use jiff::Timestamp;
use unstoppable_contract::{JobConfig, RecoverOutcome, RunSummary};

use crate::config::ConfigError;
use crate::error::Error;
use crate::lock;
use crate::repo::{self, repo_err, versions};
use crate::s3client::client;

pub fn run(
    cfg: &JobConfig,
    rt: &tokio::runtime::Runtime,
    at: Timestamp,
    dry_run: bool,
) -> Result<RunSummary, Error> {
    let s3 = cfg.s3.as_ref().ok_or_else(|| {
        ConfigError::new(
            "s3.bucket",
            "is missing; recover works on the object versions of the S3 bucket",
        )
    })?;
    let _lock = lock::acquire(&cfg.repository.hot_dir)?;
    // The view at that time must be a readable repository with snapshots, or recovering to it
    // would only replace one broken state with another.
    let past = repo::open(cfg, &repo::backends_as_of(cfg, at)?, false)?;
    let snapshots = past
        .get_all_snapshots()
        .map_err(repo_err("reading the snapshots as of the time"))?;
    if snapshots.is_empty() {
        return Err(Error::Restore(format!(
            "the repository had no snapshot at {at}: choose a later time"
        )));
    }
    drop(past);
    let prefix = format!("{}/", cfg.resource);
    let s3c = client(s3);
    let all = rt
        .block_on(repo::list_versions(&s3c, &s3.bucket, &prefix))
        .map_err(Error::Repository)?;
    let plan = versions::recover_plan(&all, at);
    let mut outcome = RecoverOutcome {
        as_of: at.to_string(),
        dry_run,
        snapshots: snapshots.len() as u64,
        copied_back: plan.copy_back.len() as u64,
        hidden: plan.hide.len() as u64,
        unchanged: plan.unchanged,
    };
    tracing::info!(
        copy_back = outcome.copied_back,
        hide = outcome.hidden,
        unchanged = outcome.unchanged,
        snapshots = outcome.snapshots,
        "recovering the repository as of {at}"
    );
    if dry_run {
        return Ok(summary(outcome));
    }
    rt.block_on(async {
        for v in &plan.copy_back {
            // The copy source names the version; keys are hex ids and fixed words (no escaping).
            let source = format!("{}/{}?versionId={}", s3.bucket, v.key, v.version_id);
            s3c.copy_object()
                .bucket(&s3.bucket)
                .key(&v.key)
                .copy_source(&source)
                .send()
                .await
                .map_err(|e| {
                    Error::Repository(format!(
                        "copying back version {} of {}: {}",
                        v.version_id,
                        v.key,
                        DisplayErrorContext(&e)
                    ))
                })?;
        }
        for key in &plan.hide {
            s3c.delete_object()
                .bucket(&s3.bucket)
                .key(key)
                .send()
                .await
                .map_err(|e| {
                    Error::Repository(format!("hiding {key}: {}", DisplayErrorContext(&e)))
                })?;
        }
        Ok::<(), Error>(())
    })?;
    // The hot part describes the present that was just undone: set it aside and rebuild it.
    set_hot_aside(&cfg.repository.hot_dir)?;
    repo::prepare_hot(cfg)?;
    outcome.unchanged = plan.unchanged;
    Ok(summary(outcome))
}

fn summary(outcome: RecoverOutcome) -> RunSummary {
    RunSummary {
        success: true,
        recover: Some(outcome),
        ..Default::default()
    }
}

/// Moves the hot part's repository files into a dated directory beside them (kept for a
/// person to look at, never read again).
fn set_hot_aside(hot_dir: &str) -> Result<(), Error> {
    let hot = Path::new(hot_dir);
    let aside = hot.join(format!(
        ".before-recover-{}",
        Timestamp::now().strftime("%Y%m%dT%H%M%SZ")
    ));
    for name in ["config", "keys", "snapshots", "index", "data"] {
        let from = hot.join(name);
        if !from.exists() {
            continue;
        }
        std::fs::create_dir_all(&aside)
            .and_then(|()| std::fs::rename(&from, aside.join(name)))
            .map_err(|e| {
                Error::Repository(format!(
                    "setting the hot part {} aside: {e}",
                    from.display()
                ))
            })?;
    }
    Ok(())
}
