//! Lazy, streamed downloads: rustic's archiver calls `open()` only for files that differ from the
//! parent snapshot; each open starts one RETR on a pooled connection and hands the bytes to the
//! archiver's (synchronous) thread through a small bounded channel.

use std::io::{self, Read};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use bytes::{Buf, Bytes, BytesMut};
use rustic_core::{ErrorKind, ReadSourceOpen, RusticError, RusticResult};
use tokio::io::AsyncReadExt;
use tokio::runtime::Handle;
use tokio::sync::mpsc;

use super::listing::{vanished, ListingMode};
use super::pool::Pool;
use super::retry::with_retries;
use super::stats::SourceStats;
use super::FtpsError;
use crate::changes::sample::Sampler;

const CHUNK: usize = 256 * 1024;
/// Chunks buffered between a download and the archiver: bounds memory per open file.
const QUEUE: usize = 8;

pub struct DownloadCtx {
    pub rt: Handle,
    pub pool: Arc<Pool>,
    pub mode: ListingMode,
    pub retries: u32,
    pub stats: Arc<SourceStats>,
}

/// What `open()` needs to fetch one file.
pub struct FtpsOpen {
    pub ctx: Arc<DownloadCtx>,
    pub abs: String,
    /// Relative to the backed-up directory, as in the snapshot.
    pub rel: String,
    pub size: u64,
}

enum Msg {
    Data(Bytes),
    Done,
}

pub struct FtpsReader {
    rx: mpsc::Receiver<Result<Msg, String>>,
    buf: Bytes,
    done: bool,
    path: String,
    rel: String,
    sampler: Sampler,
    stats: Arc<SourceStats>,
}

pub(crate) fn source_error(message: String) -> Box<RusticError> {
    RusticError::new(ErrorKind::InputOutput, "FTPS source: {error}")
        .attach_context("error", message)
}

impl ReadSourceOpen for FtpsOpen {
    type Reader = FtpsReader;

    fn open(self) -> RusticResult<FtpsReader> {
        if self.ctx.stats.failures.is_fatal() {
            // The run is lost already; don't download more.
            SourceStats::add(&self.ctx.stats.files_dropped, 1);
            return Err(source_error(format!(
                "not downloading `{}`: the run failed",
                self.abs
            )));
        }
        let (tx, rx) = mpsc::channel(QUEUE);
        let path = self.abs.clone();
        let ctx = self.ctx.clone();
        self.ctx.rt.spawn(async move {
            let result = download(&ctx, &self.abs, self.size, &tx).await;
            let msg = match result {
                Ok(()) => Ok(Msg::Done),
                Err(err) => {
                    // The archiver leaves a file whose reader fails out of the snapshot.
                    SourceStats::add(&ctx.stats.files_dropped, 1);
                    if !err.affects_one_path() {
                        ctx.stats.failures.fatal(err.to_string());
                    } else if err.may_mean_missing()
                        && vanished(&ctx.pool, ctx.mode, &self.abs).await
                    {
                        ctx.stats.failures.vanished(&self.abs);
                    } else {
                        ctx.stats.failures.path(&self.abs, err.to_string());
                    }
                    Err(err.to_string())
                }
            };
            let _ = tx.send(msg).await;
        });
        Ok(FtpsReader {
            rx,
            buf: Bytes::new(),
            done: false,
            path,
            rel: self.rel,
            sampler: Sampler::new(self.size),
            stats: self.ctx.stats.clone(),
        })
    }
}

impl Read for FtpsReader {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        while self.buf.is_empty() {
            if self.done {
                if self.sampler.finish() == Some(true) {
                    self.stats.incompressible.add(&self.rel);
                }
                return Ok(0);
            }
            match self.rx.blocking_recv() {
                Some(Ok(Msg::Data(bytes))) => self.buf = bytes,
                Some(Ok(Msg::Done)) => self.done = true,
                Some(Err(message)) => return Err(io::Error::other(message)),
                None => {
                    return Err(io::Error::other(format!(
                        "download of `{}` ended without completing",
                        self.path
                    )))
                }
            }
        }
        let n = out.len().min(self.buf.len());
        out[..n].copy_from_slice(&self.buf[..n]);
        // `advance` moves the view; `slice` would clone and drop the shared buffer's handle,
        // two atomic operations on a cache line the download task also writes, per read of the
        // chunker's 4 KiB: a third of the job's CPU on large files.
        self.buf.advance(n);
        if self.sampler.wants_more() && self.sampler.feed(&out[..n]) == Some(true) {
            self.stats.incompressible.add(&self.rel);
        }
        Ok(n)
    }
}

/// Downloads `path`, which the listing said has `size` bytes. A broken transfer resumes (REST)
/// where it stopped on a fresh connection; a size that differs from the listing fails the file,
/// because the archiver has already consumed the bytes sent so far.
async fn download(
    ctx: &DownloadCtx,
    path: &str,
    size: u64,
    tx: &mpsc::Sender<Result<Msg, String>>,
) -> Result<(), FtpsError> {
    // Bytes already handed to the archiver survive a retry: the next attempt resumes after them.
    let offset = AtomicU64::new(0);
    with_retries(ctx.retries, || transfer(ctx, path, size, &offset, tx)).await?;
    SourceStats::add(&ctx.stats.files_downloaded, 1);
    Ok(())
}

async fn transfer(
    ctx: &DownloadCtx,
    path: &str,
    size: u64,
    offset: &AtomicU64,
    tx: &mpsc::Sender<Result<Msg, String>>,
) -> Result<(), FtpsError> {
    let err = |detail: String| FtpsError::Transfer {
        path: path.to_string(),
        detail,
    };
    let timeout = ctx.pool.connector().timeout();
    let mut lease = ctx.pool.get().await?;
    let mut done = offset.load(Ordering::Relaxed);
    if done > 0 {
        let rest = usize::try_from(done).map_err(|e| err(e.to_string()))?;
        lease
            .ftp()
            .resume_transfer(rest)
            .await
            .map_err(|e| err(format!("REST {rest}: {e}")))?;
    }
    let stream = tokio::time::timeout(timeout, lease.ftp().retr_as_stream(path))
        .await
        .map_err(|_| err(format!("RETR: no answer within {timeout:?}")))
        .and_then(|r| {
            r.map_err(|e| FtpsError::from_ftp(e, "RETR", path, |d| err(format!("RETR: {d}"))))
        });
    // A refused RETR leaves the connection in step: keep it for the next file.
    if let Err(e @ FtpsError::Refused { .. }) = stream {
        lease.release();
        return Err(e);
    }
    let mut stream = stream?;
    let mut buf = BytesMut::with_capacity(CHUNK);
    loop {
        if buf.capacity() - buf.len() < CHUNK / 4 {
            buf.reserve(CHUNK);
        }
        let n = tokio::time::timeout(timeout, stream.read_buf(&mut buf))
            .await
            .map_err(|_| err(format!("stalled for {timeout:?}")))?
            .map_err(|e| err(format!("read: {e}")))?;
        if n == 0 {
            break;
        }
        done += n as u64;
        if done > size {
            return Err(FtpsError::Changed {
                path: path.to_string(),
                detail: format!("it grew beyond the {size} bytes listed"),
            });
        }
        SourceStats::add(&ctx.stats.bytes_downloaded, n as u64);
        // Hand over full chunks only: fewer wake-ups of the archiver thread.
        if buf.len() >= CHUNK / 2 {
            send(tx, buf.split().freeze(), &err).await?;
            offset.store(done, Ordering::Relaxed);
        }
    }
    if !buf.is_empty() {
        send(tx, buf.split().freeze(), &err).await?;
    }
    offset.store(done, Ordering::Relaxed);
    tokio::time::timeout(timeout, stream.finish())
        .await
        .map_err(|_| err(format!("no transfer-complete reply within {timeout:?}")))?
        .map_err(|e| {
            FtpsError::from_ftp(e, "RETR", path, |d| {
                err(format!("transfer not confirmed: {d}"))
            })
        })?;
    if done != size {
        // The server confirmed the transfer: the file is shorter now than when it was listed.
        return Err(FtpsError::Changed {
            path: path.to_string(),
            detail: format!("it has {done} of the {size} bytes listed"),
        });
    }
    lease.release();
    Ok(())
}

async fn send(
    tx: &mpsc::Sender<Result<Msg, String>>,
    bytes: Bytes,
    err: &impl Fn(String) -> FtpsError,
) -> Result<(), FtpsError> {
    tx.send(Ok(Msg::Data(bytes)))
        .await
        // The archiver stopped reading (the run is failing): drop the connection.
        .map_err(|_| err("archiver stopped reading".into()))
}
