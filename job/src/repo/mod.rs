//! The rustic repository: hot part in a local directory (the PV), cold part in the customer's
//! bucket under `<resource>/` (or a local directory for development).

mod gate;

use std::collections::BTreeMap;
use std::sync::Arc;

use rustic_backend::BackendOptions;
use rustic_core::{
    ConfigOptions, Credentials, KeyOptions, OpenStatus, Repository, RepositoryBackends,
    RepositoryOptions,
};
use unstoppable_contract::JobConfig;

pub use gate::{SnapshotGate, SnapshotHold};

use crate::error::Error;

/// zstd level of new repositories: rustic's and restic's default trade-off.
const COMPRESSION_LEVEL: i32 = 3;

/// Cold-storage options for rustic's opendal S3 back-end.
pub fn s3_options(cfg: &JobConfig) -> Option<BTreeMap<String, String>> {
    let s3 = cfg.s3.as_ref()?;
    let mut o = BTreeMap::new();
    o.insert("bucket".into(), s3.bucket.clone());
    o.insert("endpoint".into(), s3.endpoint.clone());
    o.insert("region".into(), s3.region.clone());
    o.insert("root".into(), format!("/{}/", cfg.resource));
    o.insert(
        "access_key_id".into(),
        s3.access_key_id.expose().to_string(),
    );
    o.insert(
        "secret_access_key".into(),
        s3.secret_access_key.expose().to_string(),
    );
    o.insert(
        "enable_virtual_host_style".into(),
        (!s3.path_style).to_string(),
    );
    // AWS refuses PUTs into Object-Lock buckets without a checksum header.
    o.insert("checksum_algorithm".into(), "crc32c".into());
    // Credentials come from our configuration only, never from ambient files or instance metadata.
    o.insert("disable_config_load".into(), "true".into());
    o.insert("disable_ec2_metadata".into(), "true".into());
    Some(o)
}

/// The back-ends of this resource's repository.
pub fn backends(cfg: &JobConfig) -> Result<RepositoryBackends, Error> {
    let repo = &cfg.repository;
    let mut opts = BackendOptions::default().repo_hot(format!("local:{}", repo.hot_dir));
    if let Some(cold_dir) = &repo.cold_dir {
        opts = opts.repository(format!(
            "local:{}/{}",
            cold_dir.trim_end_matches('/'),
            cfg.resource
        ));
    } else if let Some(options) = s3_options(cfg) {
        opts = opts.repository("opendal:s3").options_cold(options);
    }
    opts.to_backends()
        .map_err(|e| Error::Repository(format!("setting up storage: {}", e.display_log())))
}

/// The same back-ends, holding snapshot files back until `hold` releases them.
pub fn gated(backends: &RepositoryBackends, hold: Arc<SnapshotHold>) -> RepositoryBackends {
    RepositoryBackends::new(
        SnapshotGate::wrap(backends.repository(), hold.clone()),
        backends.repo_hot().map(|hot| SnapshotGate::wrap(hot, hold)),
    )
}

fn options() -> RepositoryOptions {
    // The hot part is local already; a cache would only duplicate it (and the root filesystem of
    // the job pod is read-only).
    RepositoryOptions::default().no_cache(true)
}

/// Opens the repository, or initialises it on the first run (`init == true`).
pub fn open(
    cfg: &JobConfig,
    backends: &RepositoryBackends,
    init: bool,
) -> Result<Repository<OpenStatus>, Error> {
    std::fs::create_dir_all(&cfg.repository.hot_dir).map_err(|e| {
        Error::Repository(format!(
            "cannot create repository.hot_dir {}: {e}",
            cfg.repository.hot_dir
        ))
    })?;
    let credentials = Credentials::password(cfg.repository.password.expose());
    let repo = Repository::new(&options(), backends).map_err(repo_err("opening the repository"))?;
    let exists = repo
        .config_id()
        .map_err(storage_err(cfg, "reading the repository config"))?
        .is_some();
    if exists {
        return repo.open(&credentials).map_err(|e| {
            let text = e.display_log();
            if e.is_incorrect_password() {
                Error::Repository(format!(
                    "cannot open the repository: {text}; check repository.password"
                ))
            } else {
                Error::Repository(format!("cannot open the repository: {text}"))
            }
        });
    }
    if !init {
        return Err(Error::Repository(
            "no repository found; run a backup first (it initialises the repository)".into(),
        ));
    }
    tracing::info!("initialising a new repository");
    let config = ConfigOptions::default().set_compression(Some(COMPRESSION_LEVEL));
    repo.init(&credentials, &KeyOptions::default(), &config)
        .map_err(storage_err(cfg, "initialising the repository"))
}

/// Where the cold part lives, for messages: a failing upload names the bucket to look at.
pub fn cold_storage(cfg: &JobConfig) -> String {
    match (&cfg.repository.cold_dir, &cfg.s3) {
        (Some(dir), _) => format!("the cold directory {dir}"),
        (None, Some(s3)) => format!("S3 bucket `{}` at {}", s3.bucket, s3.endpoint),
        (None, None) => "the cold storage".into(),
    }
}

/// Like [`repo_err`], naming the cold storage involved.
pub fn storage_err(
    cfg: &JobConfig,
    what: &'static str,
) -> impl Fn(Box<rustic_core::RusticError>) -> Error {
    let storage = cold_storage(cfg);
    move |e| Error::Repository(format!("{what} ({storage}): {}", e.display_log()))
}

pub fn repo_err(what: &'static str) -> impl Fn(Box<rustic_core::RusticError>) -> Error {
    move |e| Error::Repository(format!("{what}: {}", e.display_log()))
}
