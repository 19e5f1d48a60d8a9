//! A back-end wrapper that holds back snapshot files until the run decides what to write.
//!
//! rustic_core's archiver writes the snapshot as its last step, whatever the source reported.
//! Our promise: a run that failed writes no snapshot, and a run that could not read everything
//! writes one tagged `incomplete`, never an untagged one. So snapshot files are held while the
//! archiver runs; afterwards the run releases them (complete) or discards them (failed, or
//! rewritten with the tag). Packs, trees and index files pass straight through: unreferenced,
//! they are harmless, and the next run reuses them.

use std::sync::{Arc, Mutex};

use bytes::Bytes;
use rustic_core::{BytesList, FileType, Id, ReadBackend, RusticResult, WriteBackend};

struct Held {
    be: Arc<dyn WriteBackend>,
    id: Id,
    cacheable: bool,
    content: BytesList,
}

#[derive(Default)]
struct HoldState {
    released: bool,
    held: Vec<Held>,
    written: Option<Id>,
}

/// Shared by the gates of the hot and the cold part.
#[derive(Default)]
pub struct SnapshotHold {
    state: Mutex<HoldState>,
}

impl std::fmt::Debug for SnapshotHold {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SnapshotHold")
    }
}

impl SnapshotHold {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// Writes the held snapshot files; later ones pass straight through.
    pub fn release(&self) -> RusticResult<()> {
        let held = match self.state.lock() {
            Ok(mut state) => {
                state.released = true;
                std::mem::take(&mut state.held)
            }
            Err(_) => Vec::new(),
        };
        for h in held {
            h.be.write_bytes(FileType::Snapshot, &h.id, h.cacheable, h.content)?;
            self.note_written(h.id);
        }
        Ok(())
    }

    /// Drops the held snapshot files; later ones pass straight through.
    pub fn discard(&self) {
        if let Ok(mut state) = self.state.lock() {
            state.released = true;
            state.held.clear();
        }
    }

    /// The id of the last snapshot file written.
    pub fn written(&self) -> Option<Id> {
        self.state.lock().ok().and_then(|s| s.written)
    }

    fn note_written(&self, id: Id) {
        if let Ok(mut state) = self.state.lock() {
            state.written = Some(id);
        }
    }
}

#[derive(Debug)]
pub struct SnapshotGate {
    inner: Arc<dyn WriteBackend>,
    hold: Arc<SnapshotHold>,
}

impl SnapshotGate {
    pub fn wrap(inner: Arc<dyn WriteBackend>, hold: Arc<SnapshotHold>) -> Arc<dyn WriteBackend> {
        Arc::new(Self { inner, hold })
    }
}

impl ReadBackend for SnapshotGate {
    fn location(&self) -> String {
        self.inner.location()
    }
    fn list_with_size(&self, tpe: FileType) -> RusticResult<Vec<(Id, u32)>> {
        self.inner.list_with_size(tpe)
    }
    fn list(&self, tpe: FileType) -> RusticResult<Vec<Id>> {
        self.inner.list(tpe)
    }
    fn read_full(&self, tpe: FileType, id: &Id) -> RusticResult<Bytes> {
        self.inner.read_full(tpe, id)
    }
    fn read_partial(
        &self,
        tpe: FileType,
        id: &Id,
        cacheable: bool,
        offset: u32,
        length: u32,
    ) -> RusticResult<Bytes> {
        self.inner.read_partial(tpe, id, cacheable, offset, length)
    }
    fn warmup_path(&self, tpe: FileType, id: &Id) -> String {
        self.inner.warmup_path(tpe, id)
    }
    fn needs_warm_up(&self) -> bool {
        self.inner.needs_warm_up()
    }
    fn warm_up(&self, tpe: FileType, id: &Id) -> RusticResult<()> {
        self.inner.warm_up(tpe, id)
    }
}

impl WriteBackend for SnapshotGate {
    fn create(&self) -> RusticResult<()> {
        self.inner.create()
    }
    fn write_bytes(
        &self,
        tpe: FileType,
        id: &Id,
        cacheable: bool,
        content: BytesList,
    ) -> RusticResult<()> {
        if tpe == FileType::Snapshot {
            if let Ok(mut state) = self.hold.state.lock() {
                if !state.released {
                    state.held.push(Held {
                        be: self.inner.clone(),
                        id: *id,
                        cacheable,
                        content,
                    });
                    return Ok(());
                }
            }
            self.inner.write_bytes(tpe, id, cacheable, content)?;
            self.hold.note_written(*id);
            return Ok(());
        }
        self.inner.write_bytes(tpe, id, cacheable, content)
    }
    fn remove(&self, tpe: FileType, id: &Id, cacheable: bool) -> RusticResult<()> {
        self.inner.remove(tpe, id, cacheable)
    }
}
