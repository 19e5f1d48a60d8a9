//! One backup run: connect, open the repository, archive the FTPS tree, report.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use rustic_core::{BackupOptions, ParentOptions, SnapshotOptions};
use tokio::runtime::Runtime;
use unstoppable_contract::{FtpsConfig, JobConfig, RunSummary};

use crate::config::ConfigError;
use crate::error::Error;
use crate::ftps::tls::{client_config, Trust};
use crate::ftps::{with_retries, Connector, FtpsSource, Pool, SourceOptions, SourceStats};
use crate::progress;
use crate::repo::{self, repo_err, SnapshotPermit};

impl SnapshotPermit for SourceStats {
    fn refusal(&self) -> Option<String> {
        self.failure()
    }
}

/// The connection pool for a configured server.
pub fn pool_for(ftps: &FtpsConfig) -> Result<Arc<Pool>, Error> {
    let trust = match (&ftps.ca_file, ftps.insecure_skip_verify) {
        (_, true) => Trust::InsecureSkipVerify,
        (Some(ca), false) => Trust::CaFile(ca.clone()),
        (None, false) => Trust::System,
    };
    let connector = Connector::new(
        &ftps.host,
        ftps.port,
        ftps.server_name.as_deref(),
        client_config(&trust)?,
        &ftps.username,
        ftps.password.clone(),
        Duration::from_secs(ftps.timeout_secs),
    );
    Ok(Pool::new(connector, ftps.max_connections))
}

/// Backs up the configured FTPS directory. On success the summary names the new snapshot; on any
/// source failure no snapshot is written and the first failure is returned.
pub fn run(cfg: &JobConfig, rt: &Runtime) -> Result<RunSummary, Error> {
    let ftps = cfg.ftps.as_ref().ok_or_else(|| {
        ConfigError::new("ftps.host", "is missing; a backup needs the ftps.* keys")
    })?;
    let stats = Arc::new(SourceStats::default());
    let pool = pool_for(ftps)?;
    // Connect, log in and learn the listing mode before touching the repository: a wrong
    // password or an untrusted certificate fails fast and leaves nothing behind.
    let mode = rt.block_on(with_retries(ftps.retries, || {
        crate::ftps::detect_mode(&pool)
    }))?;
    tracing::info!(?mode, host = %ftps.host, path = %ftps.path, "connected");

    let backends = repo::gated(&repo::backends(cfg)?, stats.clone());
    let repo = repo::open(cfg, &backends, true)?
        .to_indexed_ids()
        .map_err(repo_err("reading the repository index"))?;

    let snap = SnapshotOptions::default()
        .host(cfg.resource.clone())
        .add_tags(&format!(
            "customer:{},resource:{}",
            cfg.customer, cfg.resource
        ))
        .map_err(repo_err("tagging the snapshot"))?
        .to_snapshot()
        .map_err(repo_err("preparing the snapshot"))?;
    let opts = BackupOptions::default().parent_opts(ParentOptions::default());
    let source = FtpsSource::new(
        rt.handle().clone(),
        pool.clone(),
        mode,
        SourceOptions {
            root: ftps.path.clone(),
            include: ftps.include.clone(),
            exclude: ftps.exclude.clone(),
            retries: ftps.retries,
        },
        stats.clone(),
    )?;

    let reporter = progress::spawn(rt, stats.clone(), cfg.progress_interval_secs);
    let result = repo.archive(&opts, &source, snap, &[PathBuf::from(&ftps.path)]);
    reporter.abort();
    rt.block_on(pool.close());

    let snap = match (result, stats.failure()) {
        (_, Some(failure)) => return Err(Error::Run(failure)),
        (Err(e), None) => return Err(repo_err("writing the backup")(e)),
        (Ok(snap), None) => snap,
    };
    let s = snap.summary.clone().unwrap_or_default();
    tracing::info!(snapshot = %snap.id, "backup finished");
    Ok(RunSummary {
        success: true,
        snapshot_id: Some(snap.id.to_string()),
        files_new: s.files_new,
        files_changed: s.files_changed,
        files_unmodified: s.files_unmodified,
        dirs: s.total_dirs_processed,
        bytes_listed: SourceStats::get(&stats.bytes_listed),
        bytes_downloaded: SourceStats::get(&stats.bytes_downloaded),
        files_downloaded: SourceStats::get(&stats.files_downloaded),
        bytes_added: s.data_added_packed,
        ..Default::default()
    })
}
