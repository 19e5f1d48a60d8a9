//! The FTPS server as a rustic_core `ReadSource`.

use std::path::PathBuf;
use std::sync::Arc;

use globset::{Glob, GlobSet, GlobSetBuilder};
use rustic_core::repofile::{Metadata, Node, NodeType};
use rustic_core::{ReadSource, ReadSourceEntry, RusticResult};
use tokio::runtime::Handle;
use tokio::sync::mpsc;

use super::dating::Dating;
use super::listing::{Kind, ListingMode};
use super::pool::Pool;
use super::reader::{source_error, DownloadCtx, FtpsOpen};
use super::stats::SourceStats;
use super::walk::{Filter, Walk, WalkItem};
use super::FtpsError;

pub struct SourceOptions {
    pub root: String,
    pub include: Vec<String>,
    pub exclude: Vec<String>,
    pub retries: u32,
    pub dating: Option<Dating>,
}

pub struct FtpsSource {
    walk: Arc<Walk>,
    root: String,
    downloads: Arc<DownloadCtx>,
}

impl FtpsSource {
    pub fn new(
        rt: Handle,
        pool: Arc<Pool>,
        mode: ListingMode,
        opts: SourceOptions,
        stats: Arc<SourceStats>,
    ) -> Result<Self, FtpsError> {
        let filter = Filter {
            include: if opts.include.is_empty() {
                None
            } else {
                Some(glob_set(&opts.include)?)
            },
            exclude: glob_set(&opts.exclude)?,
        };
        Ok(Self {
            walk: Arc::new(Walk {
                pool: pool.clone(),
                mode,
                filter,
                retries: opts.retries,
                stats: stats.clone(),
                dating: opts.dating,
            }),
            root: opts.root,
            downloads: Arc::new(DownloadCtx {
                rt,
                pool,
                mode,
                retries: opts.retries,
                stats,
            }),
        })
    }
}

/// Turns a listed item into what the archiver consumes; files carry how to open them.
fn to_entry(downloads: &Arc<DownloadCtx>, item: WalkItem) -> ReadSourceEntry<FtpsOpen> {
    let name = item.entry.name.clone();
    let meta = Metadata {
        mtime: item.entry.mtime,
        size: item.entry.size,
        ..Default::default()
    };
    let (node_type, open) = match item.entry.kind {
        Kind::Dir => (NodeType::Dir, None),
        Kind::Symlink(target) => (NodeType::from_link(std::path::Path::new(&target)), None),
        Kind::File => (
            NodeType::File,
            Some(FtpsOpen {
                ctx: downloads.clone(),
                abs: item.abs,
                rel: item.rel.clone(),
                size: item.entry.size,
            }),
        ),
    };
    ReadSourceEntry {
        path: PathBuf::from(item.rel),
        node: Node::new_node(std::ffi::OsStr::new(&name), node_type, meta),
        open,
    }
}

fn glob_set(patterns: &[String]) -> Result<GlobSet, FtpsError> {
    let mut builder = GlobSetBuilder::new();
    for pattern in patterns {
        builder.add(
            Glob::new(pattern)
                .map_err(|e| FtpsError::Protocol(format!("glob `{pattern}`: {e}")))?,
        );
    }
    builder
        .build()
        .map_err(|e| FtpsError::Protocol(format!("globs: {e}")))
}

pub struct Entries {
    rx: mpsc::Receiver<Result<WalkItem, FtpsError>>,
    downloads: Arc<DownloadCtx>,
}

impl Iterator for Entries {
    type Item = RusticResult<ReadSourceEntry<FtpsOpen>>;

    fn next(&mut self) -> Option<Self::Item> {
        let item = self.rx.blocking_recv()?;
        Some(match item {
            Ok(item) => Ok(to_entry(&self.downloads, item)),
            Err(err) => Err(source_error(err.to_string())),
        })
    }
}

impl ReadSource for FtpsSource {
    type Open = FtpsOpen;
    type Iter = Entries;

    fn size(&self) -> RusticResult<Option<u64>> {
        // The total is only known once the listing is done; progress counts as it goes.
        Ok(None)
    }

    fn entries(&self) -> Entries {
        let (tx, rx) = mpsc::channel(4096);
        self.downloads
            .rt
            .spawn(self.walk.clone().run(self.root.clone(), tx));
        Entries {
            rx,
            downloads: self.downloads.clone(),
        }
    }
}
