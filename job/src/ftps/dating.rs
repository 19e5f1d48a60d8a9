//! Dating files on servers without MLSD: one MDTM per file, except for files whose LIST line
//! proves them unchanged since the previous snapshot's copy (the rule is in `list_time`). On an
//! unchanged run of a large tree that skips nearly every round trip.

use std::collections::HashMap;
use std::sync::Arc;

use jiff::{SignedDuration, Timestamp};
use tokio::sync::OnceCell;

use super::list_time::{self, Known, Shown};
use super::listing::{mdtm_once, Kind, RemoteEntry};
use super::pool::Pool;

/// The files of the previous snapshot, by directory.
pub trait KnownFiles: Send + Sync {
    /// The files of directory `rel` (relative to the backed-up directory, `""` for itself) in
    /// the previous snapshot, or `None` when it had no such directory. May block.
    fn dir(&self, rel: &str) -> Result<Option<HashMap<String, Known>>, String>;
}

/// The previous snapshot, as far as dating needs it.
pub struct Previous {
    pub files: Arc<dyn KnownFiles>,
    /// When the previous backup started: all its copies were read after this.
    pub read_after: Timestamp,
}

pub struct Dating {
    root: String,
    previous: Previous,
    skew: SignedDuration,
    now: Timestamp,
    /// The LIST zone's offset from UTC, learned once per run.
    offset: OnceCell<Option<i64>>,
}

impl Dating {
    /// `skew`: how far the server's clock may be behind the job's.
    pub fn new(root: &str, previous: Previous, skew: SignedDuration) -> Self {
        Self {
            root: root.trim_end_matches('/').to_string(),
            previous,
            skew,
            now: Timestamp::now(),
            offset: OnceCell::new(),
        }
    }

    /// The previous snapshot's files in server directory `dir`. Any trouble reading them only
    /// means MDTM dates every file, as without a previous snapshot.
    pub async fn known_in(&self, dir: &str) -> Option<HashMap<String, Known>> {
        let rel = relative(&self.root, dir)?;
        let files = self.previous.files.clone();
        match tokio::task::spawn_blocking(move || files.dir(&rel)).await {
            Ok(Ok(found)) => found,
            Ok(Err(e)) => {
                tracing::warn!(
                    dir,
                    "the previous snapshot's files could not be read, dating them with MDTM: {e}"
                );
                None
            }
            Err(_) => None,
        }
    }

    /// Learns the LIST zone from the first file a run lists to the minute (one MDTM per run).
    /// Until then, or if that fails, every file is dated by MDTM.
    pub async fn calibrate(&self, pool: &Arc<Pool>, dir: &str, entries: &[RemoteEntry]) {
        if self.offset.initialized() {
            return;
        }
        let Some((name, shown)) = entries.iter().find_map(|e| match e.shown {
            Some(s @ Shown::Minute { .. }) if e.kind == Kind::File => Some((&e.name, s)),
            _ => None,
        }) else {
            return;
        };
        let path = super::join(dir, name);
        self.offset
            .get_or_init(|| async {
                let offset = match mdtm_once(pool, &path).await {
                    Ok(time) => list_time::calibrate(shown, time),
                    Err(_) => None,
                };
                tracing::debug!(?offset, %path, "LIST time zone");
                offset
            })
            .await;
    }

    /// The previous copy's exact time for `entry`, when its LIST line proves it unchanged.
    pub fn reuse(&self, entry: &RemoteEntry, known: Option<&Known>) -> Option<Timestamp> {
        let (shown, known) = (entry.shown?, known?);
        let offset = self.offset.get().copied().flatten();
        list_time::unchanged(
            shown,
            entry.size,
            *known,
            self.previous.read_after,
            self.skew,
            offset,
            self.now,
        )
        .then_some(known.mtime)
    }
}

/// `dir` relative to `root` (both absolute server paths), or `None` when outside it.
fn relative(root: &str, dir: &str) -> Option<String> {
    if root.is_empty() {
        return Some(dir.trim_start_matches('/').to_string());
    }
    let rest = dir.strip_prefix(root)?;
    if rest.is_empty() {
        Some(String::new())
    } else {
        rest.strip_prefix('/').map(str::to_string)
    }
}

#[cfg(test)]
mod tests {
    use super::relative;

    #[test]
    fn directories_are_named_relative_to_the_backed_up_one() {
        assert_eq!(relative("/site", "/site").as_deref(), Some(""));
        assert_eq!(relative("/site", "/site/a/b").as_deref(), Some("a/b"));
        assert_eq!(relative("/site", "/site2/a"), None);
        assert_eq!(relative("", "/a/b").as_deref(), Some("a/b"));
        assert_eq!(relative("", "/").as_deref(), Some(""));
    }
}
