//! The rustic repository: hot part in a local directory (the PV), cold part in the customer's
//! bucket under `<resource>/` (or a local directory for development).

mod as_of;
mod gate;
mod layout;
mod parts_body;
mod s3;
pub mod versions;
mod window;

use std::path::Path;
use std::sync::Arc;

use bytesize::ByteSize;
use jiff::Timestamp;
use rustic_backend::LocalBackend;
use rustic_core::repofile::MasterKey;
use rustic_core::{
    ConfigOptions, Credentials, FileType, KeyOptions, OpenStatus, Repository, RepositoryBackends,
    RepositoryOptions, WriteBackend,
};
use unstoppable_contract::JobConfig;

use crate::config::ConfigError;

pub use as_of::list_versions;
pub use gate::{SnapshotGate, SnapshotHold};

use crate::error::Error;

/// zstd level of new repositories: rustic's and restic's default trade-off.
const COMPRESSION_LEVEL: i32 = 3;
/// Data packs of a fixed 16 MiB, as restic writes them. rustic's default, 32 MiB growing with
/// the square root of the repository's size, holds several packs at once in the upload
/// pipeline: a backup's memory would grow with the repository.
const DATA_PACK_MIB: u64 = 16;

/// The back-ends of this resource's repository: the hot part in a local directory, the cold
/// part in the bucket (or, for development, a local directory).
pub fn backends(cfg: &JobConfig) -> Result<RepositoryBackends, Error> {
    let repo = &cfg.repository;
    let local = |path: String| -> Result<Arc<dyn WriteBackend>, Error> {
        let backend = LocalBackend::new(&path, Vec::new()).map_err(|e| {
            Error::Repository(format!("setting up storage {path}: {}", e.display_log()))
        })?;
        Ok(Arc::new(backend))
    };
    let hot = local(repo.hot_dir.clone())?;
    let cold: Arc<dyn WriteBackend> = match (&repo.cold_dir, &cfg.s3) {
        (Some(cold_dir), _) => local(format!(
            "{}/{}",
            cold_dir.trim_end_matches('/'),
            cfg.resource
        ))?,
        (None, Some(s3)) => {
            Arc::new(s3::S3Backend::new(s3, &cfg.resource).map_err(Error::Repository)?)
        }
        (None, None) => {
            return Err(ConfigError::new(
                "s3.bucket",
                "is missing; set the s3.* keys (or repository.cold_dir for a local repository)",
            )
            .into())
        }
    };
    Ok(RepositoryBackends::new(cold, Some(hot)))
}

/// The cold repository as it was at `at`, read from the bucket's object versions (read-only,
/// without the hot part: that is a cache of the present).
pub fn backends_as_of(cfg: &JobConfig, at: Timestamp) -> Result<RepositoryBackends, Error> {
    let s3 = cfg.s3.as_ref().ok_or_else(|| {
        ConfigError::new(
            "--as-of",
            "reads the object versions of the S3 bucket; set the s3.* keys (a cold_dir keeps no versions)",
        )
    })?;
    let backend = as_of::AsOfBackend::open(s3, &cfg.resource, at).map_err(Error::Repository)?;
    Ok(RepositoryBackends::new(Arc::new(backend), None))
}

/// The back-ends of a command: the present repository, or with `as_of` its past state.
pub fn backends_at(cfg: &JobConfig, as_of: Option<Timestamp>) -> Result<RepositoryBackends, Error> {
    match as_of {
        Some(at) => backends_as_of(cfg, at),
        None => backends(cfg),
    }
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
    open_with(cfg, backends, &password(cfg), init, false)
}

/// Opens the repository again with the key a first [`open`] derived from the password: the
/// derivation (scrypt, about 128 MiB and a third of a second of CPU) runs once per run.
pub fn reopen(
    cfg: &JobConfig,
    backends: &RepositoryBackends,
    key: MasterKey,
) -> Result<Repository<OpenStatus>, Error> {
    open_with(cfg, backends, &Credentials::Masterkey(key), false, false)
}

fn password(cfg: &JobConfig) -> Credentials {
    Credentials::password(cfg.repository.password.expose())
}

fn open_with(
    cfg: &JobConfig,
    backends: &RepositoryBackends,
    credentials: &Credentials,
    init: bool,
    cold_only: bool,
) -> Result<Repository<OpenStatus>, Error> {
    std::fs::create_dir_all(&cfg.repository.hot_dir).map_err(|e| {
        Error::Repository(format!(
            "cannot create repository.hot_dir {}: {e}",
            cfg.repository.hot_dir
        ))
    })?;
    let repo = Repository::new(&options(), backends).map_err(repo_err("opening the repository"))?;
    let exists = repo
        .config_id()
        .map_err(storage_err(cfg, "reading the repository config"))?
        .is_some();
    if exists {
        // Without a config of its own the hot part was rebuilt from the cold one (see
        // `prepare_hot`): the config and keys are then read from the cold part.
        let hot_config = Path::new(&cfg.repository.hot_dir).join("config");
        let repo = if cold_only || (backends.repo_hot().is_some() && !hot_config.exists()) {
            repo.open_only_cold(credentials)
        } else {
            repo.open(credentials)
        };
        return repo.map_err(|e| open_error(&e));
    }
    if !init {
        return Err(Error::Repository(
            "no repository found; run a backup first (it initialises the repository)".into(),
        ));
    }
    tracing::info!("initialising a new repository");
    let config = ConfigOptions::default()
        .set_compression(Some(COMPRESSION_LEVEL))
        .set_datapack_size(Some(ByteSize::mib(DATA_PACK_MIB)))
        .set_datapack_growfactor(Some(0));
    repo.init(credentials, &KeyOptions::default(), &config)
        .map_err(storage_err(cfg, "initialising the repository"))
}

fn open_error(e: &rustic_core::RusticError) -> Error {
    let text = e.display_log();
    if e.is_incorrect_password() {
        Error::Repository(format!(
            "cannot open the repository: {text}; check repository.password"
        ))
    } else {
        Error::Repository(format!("cannot open the repository: {text}"))
    }
}

/// The hot part is a cache of the cold one: when it lacks a key, snapshot or index file of the
/// cold part (a lost or new volume, an old copy of it, an interrupted run), what it lacks is
/// copied from the cold part, with the packs of trees (data packs stay cold only). Runs before a
/// command opens the repository for its work.
pub fn prepare_hot(cfg: &JobConfig) -> Result<(), Error> {
    let backends = backends(cfg)?;
    let Some(hot_backend) = backends.repo_hot() else {
        return Ok(());
    };
    let cold = backends.repository();
    let hot = Path::new(&cfg.repository.hot_dir);
    let cold_config = cold
        .list(FileType::Config)
        .map_err(storage_err(cfg, "reading the repository config"))?;
    if cold_config.is_empty() {
        return Ok(()); // a new repository: the backup initialises both parts
    }
    // A hot part rebuilt earlier has no config of its own, but has the keys: only what it
    // lacks counts, or every run would copy (and list every pack) again.
    let has_keys = std::fs::read_dir(hot.join(FileType::Key.dirname()))
        .map(|mut d| d.next().is_some())
        .unwrap_or(false);
    let mut behind = !hot.join("config").exists() && !has_keys;
    for tpe in [FileType::Key, FileType::Snapshot, FileType::Index] {
        if behind {
            break;
        }
        let ids = cold
            .list(tpe)
            .map_err(storage_err(cfg, "listing the repository"))?;
        let dir = hot.join(tpe.dirname());
        behind = ids
            .iter()
            .any(|id| !dir.join(id.to_hex().as_str()).exists());
    }
    if !behind {
        return Ok(());
    }
    tracing::warn!(
        "the hot part of the repository ({}) lacks files of the cold part; copying them from it",
        cfg.repository.hot_dir
    );
    // The copy lists the hot part first; on an empty volume its directories do not exist yet
    // and rustic would log each listing as an ERROR, though a rebuild is routine.
    hot_backend
        .create()
        .map_err(repo_err("creating the directories of repository.hot_dir"))?;
    let repo = open_with(cfg, &backends, &password(cfg), false, true)?;
    repo.repair_hotcold_except_packs(false)
        .map_err(storage_err(cfg, "rebuilding the hot part"))?;
    repo.repair_hotcold_packs(false)
        .map_err(storage_err(cfg, "rebuilding the hot part's tree packs"))?;
    Ok(())
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
