//! A back-end wrapper that refuses to write a snapshot once the run has failed.
//!
//! rustic_core's archiver logs source errors and goes on, then saves the snapshot. Our promise is
//! the opposite: a run with any failed file writes no snapshot. Packs and index files written
//! before the refusal are harmless (unreferenced data that the next run reuses or prune removes).

use std::sync::Arc;

use bytes::Bytes;
use rustic_core::{
    BytesList, ErrorKind, FileType, Id, ReadBackend, RusticError, RusticResult, WriteBackend,
};

/// Answers whether the run may still produce a snapshot.
pub trait SnapshotPermit: Send + Sync + 'static {
    /// `Some(reason)` when it may not.
    fn refusal(&self) -> Option<String>;
}

#[derive(Debug)]
pub struct SnapshotGate<P> {
    inner: Arc<dyn WriteBackend>,
    permit: Arc<P>,
}

impl<P: SnapshotPermit> SnapshotGate<P> {
    pub fn wrap(inner: Arc<dyn WriteBackend>, permit: Arc<P>) -> Arc<dyn WriteBackend> {
        Arc::new(Self { inner, permit })
    }
}

impl<P: SnapshotPermit> ReadBackend for SnapshotGate<P> {
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

impl<P: SnapshotPermit> WriteBackend for SnapshotGate<P> {
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
            if let Some(reason) = self.permit.refusal() {
                return Err(RusticError::new(
                    ErrorKind::InputOutput,
                    "snapshot not written because the run failed: {reason}",
                )
                .attach_context("reason", reason));
            }
        }
        self.inner.write_bytes(tpe, id, cacheable, content)
    }
    fn remove(&self, tpe: FileType, id: &Id, cacheable: bool) -> RusticResult<()> {
        self.inner.remove(tpe, id, cacheable)
    }
}
