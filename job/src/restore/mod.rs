//! `restore`: one snapshot (or a path inside it) of the resource, to a local directory or back
//! onto an FTPS server. The run holds the repository's lock, so it never runs beside a backup of
//! the same resource.

mod local;
pub mod plan;
pub mod select;
mod to_ftps;
mod to_s3;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use globset::{Glob, GlobSet, GlobSetBuilder};
use rustic_core::repofile::{Node, NodeType};
use rustic_core::{IndexedFullStatus, LsOptions, Repository};
use tokio::runtime::Runtime;
use unstoppable_contract::{reason, JobConfig, RunResult, RunSummary};

pub use plan::{Entry, Overwrite};
pub use select::Which;

use crate::backup::INCOMPLETE_TAG;
use crate::config::ConfigError;
use crate::error::Error;
use crate::ftps::{join, Filter};
use crate::lock;
use crate::repo::{self, repo_err};
use crate::retention;

/// The snapshot's entries to restore, by path relative to the target directory, with their
/// nodes (directories need none).
pub type Wanted = BTreeMap<String, (Entry, Option<Node>)>;

/// The repository as a restore reads it.
pub type Repo = Repository<IndexedFullStatus>;

/// Where the files go.
#[derive(Debug, Clone)]
pub enum Target {
    /// A local directory (created when missing).
    Local(PathBuf),
    /// Back onto the resource's FTPS server.
    Ftps {
        /// Absolute directory on the server; default: where the restored path was backed up from.
        path: Option<String>,
        overwrite: Overwrite,
        /// Remove files and directories the snapshot does not have (needs an explicit `path`).
        delete: bool,
        dry_run: bool,
    },
    /// Plain files under a prefix of a bucket: the customer's own (`s3.*`), or another one on
    /// the same endpoint.
    S3 {
        prefix: String,
        bucket: Option<String>,
    },
}

#[derive(Debug, Clone)]
pub struct Request {
    pub which: Which,
    /// Read the cold repository as it was at this time (object versions), not as it is.
    pub repository_as_of: Option<jiff::Timestamp>,
    /// A path inside the snapshot (relative to the backed-up directory); empty for all of it.
    pub path: String,
    pub include: Vec<String>,
    pub exclude: Vec<String>,
    pub target: Target,
}

impl Request {
    /// Everything of the latest snapshot into a local directory.
    pub fn latest_to(dir: PathBuf) -> Self {
        Self {
            which: Which::Latest,
            repository_as_of: None,
            path: String::new(),
            include: Vec::new(),
            exclude: Vec::new(),
            target: Target::Local(dir),
        }
    }
}

pub fn run(cfg: &JobConfig, rt: &Runtime, req: &Request) -> Result<RunSummary, Error> {
    let filter = filter(&req.include, &req.exclude)?;
    if let Target::Ftps {
        path: None,
        delete: true,
        ..
    } = &req.target
    {
        return Err(ConfigError::new(
            "restore --delete",
            "needs an explicit --target-path: deleting is never done on a default location",
        )
        .into());
    }
    let _lock = lock::acquire(&cfg.repository.hot_dir)?;
    if req.repository_as_of.is_none() {
        repo::prepare_hot(cfg)?;
    }
    let backends = repo::backends_at(cfg, req.repository_as_of)?;
    let repo = repo::open(cfg, &backends, false)?
        .to_indexed()
        .map_err(repo_err("reading the repository index"))?;
    let snapshots = repo
        .get_matching_snapshots(|sn| retention::is_of(sn, &cfg.customer, &cfg.resource))
        .map_err(repo_err("reading the snapshots"))?;
    let snap = select::choose(&snapshots, &req.which)
        .map_err(Error::Restore)?
        .clone();
    let incomplete = snap.tags.contains(INCOMPLETE_TAG);
    if incomplete && matches!(req.target, Target::Ftps { delete: true, .. }) {
        return Err(Error::Restore(format!(
            "snapshot {} is tagged `{INCOMPLETE_TAG}`: it lacks paths that could not be read, and delete would remove them from the server; restore it without delete",
            snap.id
        )));
    }
    let path = req.path.trim_matches('/');
    let node = repo.node_from_snapshot_and_path(&snap, path).map_err(|e| {
        Error::Restore(format!(
            "path `{path}` in snapshot {}: {}",
            snap.id,
            e.display_log()
        ))
    })?;
    tracing::info!(snapshot = %snap.id, time = %snap.time, path, "restoring");
    let (mut outcome, failures, failed) = match &req.target {
        Target::Local(dir) => {
            let outcome = local::run(&repo, &node, &filter, dir)?;
            (outcome, Vec::new(), 0)
        }
        Target::Ftps {
            path: target_path,
            overwrite,
            delete,
            dry_run,
        } => {
            // Another server when `restore.ftps.*` names one, else the resource's own.
            let other = cfg
                .restore
                .as_ref()
                .and_then(|r| r.ftps.as_ref())
                .map(|o| o.to_ftps(cfg.ftps.as_ref()));
            let ftps = other.as_ref().or(cfg.ftps.as_ref()).ok_or_else(|| {
                ConfigError::new(
                    "ftps.host",
                    "is missing; a restore to FTPS needs the ftps.* (or restore.ftps.*) keys",
                )
            })?;
            let (wanted, default_root) = wanted_below(&repo, &node, path, &filter)?;
            let root = target_path.clone().unwrap_or_else(|| match default_root {
                rel if rel.is_empty() => ftps.path.clone(),
                rel => join(&ftps.path, &rel),
            });
            let location = format!("ftps://{}:{}{}", ftps.host, ftps.port, root);
            let target = to_ftps::FtpsTarget {
                ftps,
                root,
                overwrite: *overwrite,
                delete: *delete,
                dry_run: *dry_run,
                filter,
                includes: !req.include.is_empty(),
            };
            let (mut outcome, failures, failed) =
                rt.block_on(to_ftps::run(Arc::new(repo), wanted, target))?;
            outcome.location = location;
            (outcome, failures, failed)
        }
        Target::S3 { prefix, bucket } => {
            // Another bucket when `restore.s3.*` names one, else the customer's.
            let other = cfg
                .restore
                .as_ref()
                .and_then(|r| r.s3.as_ref())
                .map(|o| o.to_s3());
            let s3 = other.as_ref().or(cfg.s3.as_ref()).ok_or_else(|| {
                ConfigError::new(
                    "s3.bucket",
                    "is missing; a restore to S3 needs the s3.* (or restore.s3.*) keys",
                )
            })?;
            let prefix = prefix.trim_start_matches('/');
            let prefix = if prefix.is_empty() || prefix.ends_with('/') {
                prefix.to_string()
            } else {
                format!("{prefix}/")
            };
            let bucket = bucket.clone().unwrap_or_else(|| s3.bucket.clone());
            let own_bucket = other.is_none() && bucket == s3.bucket;
            if own_bucket && (prefix.is_empty() || prefix == format!("{}/", cfg.resource)) {
                return Err(ConfigError::new(
                    "restore --to-s3",
                    format!("`{prefix}` would mix restored files with the repository in bucket `{bucket}`; choose another prefix, e.g. restores/{}/", cfg.resource),
                )
                .into());
            }
            let (wanted, _) = wanted_below(&repo, &node, path, &filter)?;
            let target = to_s3::S3Target {
                client: crate::s3client::client(s3),
                bucket,
                prefix,
            };
            rt.block_on(to_s3::run(Arc::new(repo), wanted, target))
        }
    };
    outcome.snapshot_time = Some(snap.time.timestamp().to_string());
    let result = if failed > 0 {
        RunResult::Incomplete
    } else {
        RunResult::Success
    };
    Ok(RunSummary {
        success: result == RunResult::Success,
        result: Some(result),
        reason: (failed > 0).then(|| reason::PATHS_UNWRITABLE.to_string()),
        snapshot_id: Some(snap.id.to_hex().to_string()),
        failed_paths: failed,
        error: failures.first().map(|f| {
            format!(
                "{failed} paths could not be restored (first: `{}`: {})",
                f.path, f.reason
            )
        }),
        failures,
        restore: Some(outcome),
        ..Default::default()
    })
}

/// Globs on paths relative to the restored node.
fn filter(include: &[String], exclude: &[String]) -> Result<Filter, Error> {
    let set =
        |key: &'static str, patterns: &[String]| -> Result<GlobSet, Error> {
            let mut b = GlobSetBuilder::new();
            for p in patterns {
                b.add(Glob::new(p).map_err(|e| {
                    ConfigError::new(key, format!("`{p}` is not a glob pattern: {e}"))
                })?);
            }
            b.build()
                .map_err(|e| ConfigError::new(key, e.to_string()).into())
        };
    Ok(Filter {
        include: if include.is_empty() {
            None
        } else {
            Some(set("restore --include", include)?)
        },
        exclude: set("restore --exclude", exclude)?,
    })
}

/// The entries to restore, relative to the target directory, and that directory relative to the
/// backed-up one. A file is restored into the directory it was in.
fn wanted_below(
    repo: &Repo,
    node: &Node,
    path: &str,
    filter: &Filter,
) -> Result<(Wanted, String), Error> {
    let mut wanted = BTreeMap::new();
    if !node.is_dir() {
        let name = node.name().to_string_lossy().to_string();
        let parent = path.rsplit_once('/').map(|(p, _)| p.to_string());
        wanted.insert(name, (entry_of(node), Some(node.clone())));
        return Ok((wanted, parent.unwrap_or_default()));
    }
    let ls = repo
        .ls(node, &LsOptions::default().recursive(true))
        .map_err(repo_err("reading the snapshot's trees"))?;
    let mut excluded_dirs: Vec<String> = Vec::new();
    for item in ls {
        let (p, node) = item.map_err(repo_err("reading the snapshot's trees"))?;
        let rel = rel_path(&p);
        if rel.is_empty()
            || excluded_dirs
                .iter()
                .any(|d| rel.starts_with(&format!("{d}/")))
        {
            continue;
        }
        if node.is_dir() {
            if filter.exclude.is_match(&rel) {
                excluded_dirs.push(rel);
                continue;
            }
            if filter.include.is_none() {
                wanted.insert(rel, (Entry::Dir, None));
            }
        } else if filter.wants_file(&rel) {
            if filter.include.is_some() {
                // Only the directories that lead to an included file.
                let mut dir = rel.as_str();
                while let Some((parent, _)) = dir.rsplit_once('/') {
                    wanted.insert(parent.to_string(), (Entry::Dir, None));
                    dir = parent;
                }
            }
            wanted.insert(rel, (entry_of(&node), Some(node)));
        }
    }
    Ok((wanted, path.to_string()))
}

fn entry_of(node: &Node) -> Entry {
    match node.node_type {
        NodeType::Dir => Entry::Dir,
        NodeType::File => Entry::File {
            size: node.meta.size,
            mtime: node.meta.mtime,
        },
        _ => Entry::Other,
    }
}

fn rel_path(p: &std::path::Path) -> String {
    p.components()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/")
}
