//! How large the repository is: the hot directory as it lies on its volume, and the packs in the
//! bucket as the index counts them (no listing of the bucket).

use std::path::Path;

use rustic_core::{Open, Repository};
use unstoppable_contract::RepositorySize;

/// The repository's size, or `None` (logged) when the index cannot be read.
pub fn measure<S: Open>(hot_dir: &Path, repo: &Repository<S>) -> Option<RepositorySize> {
    let infos = match repo.infos_index() {
        Ok(infos) => infos,
        Err(e) => {
            tracing::warn!("cannot measure the repository: {e}");
            return None;
        }
    };
    let cold_bytes = infos
        .blobs
        .iter()
        .chain(infos.blobs_delete.iter())
        .map(|b| b.size)
        .sum();
    Some(RepositorySize {
        hot_bytes: dir_bytes(hot_dir),
        cold_bytes,
    })
}

/// Bytes of the regular files under `dir` (unreadable entries count as nothing).
fn dir_bytes(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => dir_bytes(&e.path()),
            Ok(t) if t.is_file() => e.metadata().map(|m| m.len()).unwrap_or(0),
            _ => 0,
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hot_directory_is_summed_through_subdirectories() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(dir.path().join("a/b")).expect("dirs");
        std::fs::write(dir.path().join("x"), [0u8; 100]).expect("x");
        std::fs::write(dir.path().join("a/b/y"), [0u8; 23]).expect("y");
        assert_eq!(dir_bytes(dir.path()), 123);
        assert_eq!(dir_bytes(&dir.path().join("missing")), 0);
    }
}
