//! One run per repository at a time, whatever starts it (a CronJob, `kubectl create job --from`,
//! a person): an exclusive `flock` on a file in the hot directory. The kernel releases it when
//! the process ends, however it ends, so a killed run leaves nothing to unlock.

use std::fs::{File, OpenOptions, TryLockError};
use std::path::Path;

use crate::error::Error;

/// The lock file's name in the hot directory.
pub const LOCK_FILE: &str = ".unstoppable-run.lock";

/// Held for as long as the run needs the repository.
#[derive(Debug)]
pub struct RunLock {
    _file: File,
}

/// Takes the lock of the repository whose hot part is `hot_dir`, or fails at once when another
/// run holds it.
pub fn acquire(hot_dir: &str) -> Result<RunLock, Error> {
    std::fs::create_dir_all(hot_dir).map_err(|e| {
        Error::Repository(format!("cannot create repository.hot_dir {hot_dir}: {e}"))
    })?;
    let path = Path::new(hot_dir).join(LOCK_FILE);
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| Error::Repository(format!("cannot open {}: {e}", path.display())))?;
    match file.try_lock() {
        Ok(()) => Ok(RunLock { _file: file }),
        Err(TryLockError::WouldBlock) => Err(Error::Locked(format!(
            "another run of this repository is in progress (it holds the lock {}); this run \
             stops without touching the repository; start it again when the other one has ended",
            path.display()
        ))),
        Err(TryLockError::Error(e)) => Err(Error::Repository(format!(
            "cannot lock {}: {e}",
            path.display()
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_is_refused_until_the_first_is_dropped() {
        let dir = tempfile::tempdir().expect("tempdir");
        let hot = dir.path().join("hot").display().to_string();
        let first = acquire(&hot).expect("first lock");
        let second = acquire(&hot).expect_err("second lock refused");
        assert!(matches!(second, Error::Locked(_)), "{second:?}");
        assert!(second.to_string().contains(LOCK_FILE));
        drop(first);
        acquire(&hot).expect("free again");
    }
}
