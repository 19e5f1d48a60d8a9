//! Depth-first traversal that emits entries in the order rustic's archiver needs (sorted path
//! component by component), while the listings of the directories ahead run in parallel.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use globset::GlobSet;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::listing::{join, list_dir, Kind, ListingMode, RemoteEntry};
use super::pool::Pool;
use super::stats::SourceStats;
use super::FtpsError;

/// Include/exclude globs, matched against paths relative to the backed-up directory.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub include: Option<GlobSet>,
    pub exclude: GlobSet,
}

impl Filter {
    fn skip_dir(&self, rel: &str) -> bool {
        self.exclude.is_match(rel)
    }
    fn skip_file(&self, rel: &str) -> bool {
        self.exclude.is_match(rel) || self.include.as_ref().is_some_and(|inc| !inc.is_match(rel))
    }
}

/// An entry ready for the archiver.
#[derive(Debug, Clone)]
pub struct WalkItem {
    /// Path relative to the backed-up directory, `/`-separated.
    pub rel: String,
    /// Absolute path on the server.
    pub abs: String,
    pub entry: RemoteEntry,
}

pub struct Walk {
    pub pool: Arc<Pool>,
    pub mode: ListingMode,
    pub filter: Filter,
    pub retries: u32,
    pub stats: Arc<SourceStats>,
}

type Sender = mpsc::Sender<Result<WalkItem, FtpsError>>;

/// Aborts a prefetch when the traversal no longer needs it (after a failure).
struct Prefetch(JoinHandle<Result<Vec<RemoteEntry>, FtpsError>>);

impl Drop for Prefetch {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl Walk {
    /// Sends every entry below `root`, then closes the channel. A failure is recorded in the stats
    /// and sent as the last item.
    pub async fn run(self: Arc<Self>, root: String, tx: Sender) {
        let result = match list_dir(&self.pool, self.mode, &root, self.retries).await {
            Ok(entries) => {
                self.clone()
                    .visit(String::new(), root, entries, tx.clone())
                    .await
            }
            Err(err) => Err(err),
        };
        if let Err(err) = result {
            self.stats.fail(err.to_string());
            let _ = tx.send(Err(err)).await;
        }
    }

    fn visit(
        self: Arc<Self>,
        rel_dir: String,
        abs_dir: String,
        entries: Vec<RemoteEntry>,
        tx: Sender,
    ) -> Pin<Box<dyn Future<Output = Result<(), FtpsError>> + Send>> {
        Box::pin(async move {
            let rel_of = |name: &str| {
                if rel_dir.is_empty() {
                    name.to_string()
                } else {
                    format!("{rel_dir}/{name}")
                }
            };
            let mut prefetch: HashMap<String, Prefetch> = HashMap::new();
            for entry in &entries {
                if entry.kind == Kind::Dir && !self.filter.skip_dir(&rel_of(&entry.name)) {
                    let walk = self.clone();
                    let abs = join(&abs_dir, &entry.name);
                    let handle = tokio::spawn(async move {
                        list_dir(&walk.pool, walk.mode, &abs, walk.retries).await
                    });
                    prefetch.insert(entry.name.clone(), Prefetch(handle));
                }
            }
            for entry in entries {
                if self.stats.has_failed() {
                    return Ok(());
                }
                let rel = rel_of(&entry.name);
                let abs = join(&abs_dir, &entry.name);
                match entry.kind {
                    Kind::Dir => {
                        let Some(mut pending) = prefetch.remove(&entry.name) else {
                            continue;
                        };
                        SourceStats::add(&self.stats.dirs_listed, 1);
                        let item = WalkItem {
                            rel: rel.clone(),
                            abs: abs.clone(),
                            entry,
                        };
                        if tx.send(Ok(item)).await.is_err() {
                            return Ok(());
                        }
                        let children =
                            (&mut pending.0).await.map_err(|e| FtpsError::Listing {
                                path: abs.clone(),
                                detail: format!("listing task failed: {e}"),
                            })??;
                        self.clone().visit(rel, abs, children, tx.clone()).await?;
                    }
                    Kind::File | Kind::Symlink(_) => {
                        if self.filter.skip_file(&rel) {
                            continue;
                        }
                        SourceStats::add(&self.stats.files_listed, 1);
                        SourceStats::add(&self.stats.bytes_listed, entry.size);
                        if tx.send(Ok(WalkItem { rel, abs, entry })).await.is_err() {
                            return Ok(());
                        }
                    }
                }
            }
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use globset::{Glob, GlobSetBuilder};

    fn set(patterns: &[&str]) -> GlobSet {
        let mut b = GlobSetBuilder::new();
        for p in patterns {
            b.add(Glob::new(p).expect("glob"));
        }
        b.build().expect("set")
    }

    #[test]
    fn excludes_apply_to_files_and_directories_includes_only_to_files() {
        let filter = Filter {
            include: Some(set(&["**/*.sql", "*.sql"])),
            exclude: set(&["cache", "**/tmp/**"]),
        };
        assert!(filter.skip_dir("cache"));
        assert!(!filter.skip_dir("db"), "includes never hide a directory");
        assert!(!filter.skip_file("dump.sql"));
        assert!(!filter.skip_file("db/dump.sql"));
        assert!(filter.skip_file("db/readme.txt"));
        assert!(filter.skip_file("db/tmp/x.sql"));
        let everything = Filter::default();
        assert!(!everything.skip_file("any/file"));
        assert!(!everything.skip_dir("any"));
    }
}
