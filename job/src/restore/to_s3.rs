//! Restoring as plain files into a bucket: one object per file under a prefix, streamed from
//! the repository (multipart above one part's size), the file's modification time kept as the
//! `mtime` metadata rclone and others read.

use std::sync::Arc;

use aws_sdk_s3::error::DisplayErrorContext;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use aws_sdk_s3::Client;
use bytes::{Bytes, BytesMut};
use futures_util::stream::{self, StreamExt};
use rustic_core::repofile::Node;
use unstoppable_contract::{FailedPath, RestoreOutcome};

use super::plan::Entry;
use super::{Repo, Wanted};

/// Files up to this size are one PutObject; larger ones are uploaded in parts of this size.
const PART: usize = 16 << 20;
const PARALLEL: usize = 4;
const KEEP_FAILURES: usize = 20;

pub struct S3Target {
    pub client: Client,
    pub bucket: String,
    /// Ends with `/` unless empty.
    pub prefix: String,
}

pub async fn run(
    repo: Arc<Repo>,
    wanted: Wanted,
    target: S3Target,
) -> (RestoreOutcome, Vec<FailedPath>, u64) {
    let target = Arc::new(target);
    let mut outcome = RestoreOutcome {
        target: "s3".into(),
        location: format!("s3://{}/{}", target.bucket, target.prefix),
        mtimes_set: true,
        ..Default::default()
    };
    let files: Vec<(String, u64, Option<jiff::Timestamp>, Node)> = wanted
        .into_iter()
        .filter_map(|(rel, (entry, node))| match (entry, node) {
            (Entry::File { size, mtime }, Some(node)) => Some((rel, size, mtime, node)),
            (Entry::Other, _) => {
                outcome.links_skipped += 1;
                None
            }
            _ => None,
        })
        .collect();
    let results: Vec<(String, u64, Result<(), String>)> =
        stream::iter(files.into_iter().map(|(rel, size, mtime, node)| {
            let (repo, target) = (repo.clone(), target.clone());
            async move {
                let key = format!("{}{rel}", target.prefix);
                let result = put(&repo, &target, &key, size, mtime, node).await;
                (rel, size, result)
            }
        }))
        .buffer_unordered(PARALLEL)
        .collect()
        .await;
    let mut failures = Vec::new();
    let mut failed = 0;
    for (rel, size, result) in results {
        match result {
            Ok(()) => {
                outcome.files_restored += 1;
                outcome.bytes_restored += size;
                outcome.files_missing += 1;
                if outcome.paths.len() < RestoreOutcome::MAX_PATHS {
                    outcome.paths.push(rel);
                }
            }
            Err(reason) => {
                tracing::warn!("cannot restore `{rel}`: {reason}");
                failed += 1;
                if failures.len() < KEEP_FAILURES {
                    failures.push(FailedPath { path: rel, reason });
                }
            }
        }
    }
    (outcome, failures, failed)
}

/// Reads `[offset, offset + len)` of a file from the repository (rustic is synchronous).
async fn read(repo: &Arc<Repo>, node: &Node, offset: usize, len: usize) -> Result<Bytes, String> {
    let (repo, node) = (repo.clone(), node.clone());
    tokio::task::spawn_blocking(move || {
        let open = repo.open_file(&node).map_err(|e| e.display_log())?;
        let mut out = BytesMut::with_capacity(len);
        while out.len() < len {
            let chunk = repo
                .read_file_at(&open, offset + out.len(), len - out.len())
                .map_err(|e| e.display_log())?;
            if chunk.is_empty() {
                break;
            }
            out.extend_from_slice(&chunk);
        }
        Ok(out.freeze())
    })
    .await
    .map_err(|e| format!("reading the repository: {e}"))?
}

async fn put(
    repo: &Arc<Repo>,
    target: &S3Target,
    key: &str,
    size: u64,
    mtime: Option<jiff::Timestamp>,
    node: Node,
) -> Result<(), String> {
    let size = usize::try_from(size).map_err(|_| "file too large for this machine".to_string())?;
    let mtime = mtime.map(|t| format!("{}.{:09}", t.as_second(), t.subsec_nanosecond()));
    let s3err =
        |what: &str, e: &dyn std::fmt::Display| format!("{what} s3://{}/{key}: {e}", target.bucket);
    if size <= PART {
        let body = read(repo, &node, 0, size).await?;
        check_len(&body, size)?;
        target
            .client
            .put_object()
            .bucket(&target.bucket)
            .key(key)
            .set_metadata(mtime.map(|m| [("mtime".to_string(), m)].into()))
            .body(ByteStream::from(body))
            .send()
            .await
            .map_err(|e| s3err("writing", &DisplayErrorContext(&e)))?;
        return Ok(());
    }
    let upload = target
        .client
        .create_multipart_upload()
        .bucket(&target.bucket)
        .key(key)
        .set_metadata(mtime.map(|m| [("mtime".to_string(), m)].into()))
        .send()
        .await
        .map_err(|e| s3err("starting the upload of", &DisplayErrorContext(&e)))?;
    let id = upload.upload_id().unwrap_or_default().to_string();
    let parts = async {
        let mut parts = Vec::new();
        let mut offset = 0;
        while offset < size {
            let len = PART.min(size - offset);
            let body = read(repo, &node, offset, len).await?;
            check_len(&body, len)?;
            let number =
                i32::try_from(parts.len() + 1).map_err(|_| "too many parts".to_string())?;
            let part = target
                .client
                .upload_part()
                .bucket(&target.bucket)
                .key(key)
                .upload_id(&id)
                .part_number(number)
                .body(ByteStream::from(body))
                .send()
                .await
                .map_err(|e| s3err("writing a part of", &DisplayErrorContext(&e)))?;
            parts.push(
                CompletedPart::builder()
                    .part_number(number)
                    .set_e_tag(part.e_tag().map(str::to_string))
                    .set_checksum_crc32(part.checksum_crc32().map(str::to_string))
                    .build(),
            );
            offset += len;
        }
        Ok::<_, String>(parts)
    }
    .await;
    let parts = match parts {
        Ok(parts) => parts,
        Err(e) => {
            // Leave no parts behind that would be billed forever.
            let _ = target
                .client
                .abort_multipart_upload()
                .bucket(&target.bucket)
                .key(key)
                .upload_id(&id)
                .send()
                .await;
            return Err(e);
        }
    };
    target
        .client
        .complete_multipart_upload()
        .bucket(&target.bucket)
        .key(key)
        .upload_id(&id)
        .multipart_upload(
            CompletedMultipartUpload::builder()
                .set_parts(Some(parts))
                .build(),
        )
        .send()
        .await
        .map_err(|e| s3err("completing the upload of", &DisplayErrorContext(&e)))?;
    Ok(())
}

fn check_len(body: &Bytes, want: usize) -> Result<(), String> {
    if body.len() == want {
        Ok(())
    } else {
        Err(format!(
            "the repository gave {} bytes where the snapshot says {want}",
            body.len()
        ))
    }
}
