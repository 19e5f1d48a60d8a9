//! Depth-first traversal that emits entries in the order rustic's archiver needs (sorted path
//! component by component), while the listings of the directories ahead run in parallel.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use globset::GlobSet;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::dating::Dating;
use super::listing::{join, list_dir, vanished, Kind, Listing, ListingMode, RemoteEntry};
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
    pub fn wants_file(&self, rel: &str) -> bool {
        !self.skip_file(rel)
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
    /// Dates unchanged files from the previous snapshot (LIST servers).
    pub dating: Option<Dating>,
}

type Sender = mpsc::Sender<Result<WalkItem, FtpsError>>;

/// Aborts a prefetch when the traversal no longer needs it (after a failure).
struct Prefetch(JoinHandle<Result<Listing, FtpsError>>);

impl Drop for Prefetch {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl Walk {
    /// Sends every readable entry below `root`, then closes the channel. Paths that cannot be
    /// read are recorded in the stats and left out; a failure of the whole run is recorded as
    /// fatal and sent as the last item.
    pub async fn run(self: Arc<Self>, root: String, tx: Sender) {
        // Without the root there is nothing meaningful to snapshot: any failure is fatal.
        let result = match self.list(&root).await {
            Ok(listing) => {
                self.note_caveat(&root, &listing);
                self.clone()
                    .visit(String::new(), root, listing.entries, tx.clone())
                    .await
            }
            Err(err) => Err(err),
        };
        if let Err(err) = result {
            self.stats.failures.fatal(err.to_string());
            let _ = tx.send(Err(err)).await;
        }
    }

    async fn list(&self, dir: &str) -> Result<Listing, FtpsError> {
        list_dir(
            &self.pool,
            self.mode,
            dir,
            self.retries,
            &self.stats,
            self.dating.as_ref(),
        )
        .await
    }

    /// A listing that may not be whole: its entries are backed up, the directory counts as not
    /// fully read.
    fn note_caveat(&self, dir: &str, listing: &Listing) {
        if let Some(caveat) = &listing.caveat {
            self.stats.failures.path(dir, caveat.clone());
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
                    let handle = tokio::spawn(async move { walk.list(&abs).await });
                    prefetch.insert(entry.name.clone(), Prefetch(handle));
                }
            }
            for entry in entries {
                if self.stats.failures.is_fatal() {
                    return Ok(());
                }
                let rel = rel_of(&entry.name);
                let abs = join(&abs_dir, &entry.name);
                match entry.kind {
                    Kind::Dir => {
                        let Some(mut pending) = prefetch.remove(&entry.name) else {
                            continue;
                        };
                        let listed = (&mut pending.0).await.map_err(|e| FtpsError::Listing {
                            path: abs.clone(),
                            detail: format!("listing task failed: {e}"),
                        })?;
                        let children = match listed {
                            Ok(listing) => {
                                self.note_caveat(&abs, &listing);
                                listing.entries
                            }
                            Err(err) if err.affects_one_path() => {
                                // The directory is left out of the snapshot entirely: an empty
                                // directory would claim its content was empty.
                                if err.may_mean_missing()
                                    && vanished(&self.pool, self.mode, &abs).await
                                {
                                    self.stats.failures.vanished(&abs);
                                } else {
                                    self.stats.failures.path(&abs, err.to_string());
                                }
                                continue;
                            }
                            Err(err) => return Err(err),
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
