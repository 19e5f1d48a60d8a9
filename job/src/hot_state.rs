//! Small JSON files a run keeps in the hot directory, next to the run lock, for the next run
//! (upkeep's schedule, the change history). They are hints, not data: a missing or unreadable
//! one means "nothing remembered", and one that cannot be written is logged, never a failure.

use std::path::Path;

use serde::de::DeserializeOwned;
use serde::Serialize;

/// The value kept in `hot/name`, or the default when there is none or it cannot be read.
pub fn load<T: DeserializeOwned + Default>(hot: &Path, name: &str) -> T {
    let path = hot.join(name);
    match std::fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes).unwrap_or_else(|e| {
            tracing::warn!("ignoring {}: {e}", path.display());
            T::default()
        }),
        Err(_) => T::default(),
    }
}

/// Writes `value` to `hot/name` atomically (a crash leaves the old file or the new one).
pub fn save<T: Serialize>(hot: &Path, name: &str, value: &T) {
    let path = hot.join(name);
    let tmp = hot.join(format!("{name}.tmp"));
    let written = serde_json::to_vec(value)
        .map_err(std::io::Error::other)
        .and_then(|bytes| std::fs::write(&tmp, bytes))
        .and_then(|()| std::fs::rename(&tmp, &path));
    if let Err(e) = written {
        tracing::warn!("cannot record {}: {e}", path.display());
    }
}
