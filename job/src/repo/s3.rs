//! The cold part in the customer's bucket, as a rustic back-end on aws-sdk-s3: objects under
//! `<resource>/` in rustic's layout (`config`, `keys/`, `snapshots/`, `index/`, `data/xx/`).
//! Every request has a connect and a read timeout and is retried with backoff, so a stuck or
//! flaky endpoint fails the run with a message instead of hanging it; every upload carries a
//! CRC32C checksum, which AWS requires for Object Lock buckets.

use aws_sdk_s3::error::{DisplayErrorContext, SdkError};
use aws_sdk_s3::Client;
use bytes::Bytes;
use rustic_core::{
    BytesList, ErrorKind, FileType, Id, ReadBackend, RusticError, RusticResult, WriteBackend,
};
use tokio::runtime::Handle;
use unstoppable_contract::S3Config;

use super::layout::path;
use super::parts_body::Parts;
use super::window::Windows;
use crate::s3client::{blocking_handle, client, get_bytes};

pub struct S3Backend {
    client: Client,
    bucket: String,
    /// `<resource>/`.
    root: String,
    handle: Handle,
    /// Small reads inside packs (a restore's blobs) share one GET per window.
    windows: Windows,
}

impl S3Backend {
    pub fn new(s3: &S3Config, resource: &str) -> Result<Self, String> {
        Ok(Self {
            client: client(s3),
            bucket: s3.bucket.clone(),
            root: format!("{resource}/"),
            handle: blocking_handle().map_err(|e| format!("starting the S3 runtime: {e}"))?,
            windows: Windows::default(),
        })
    }

    fn key(&self, tpe: FileType, id: &Id) -> String {
        format!("{}{}", self.root, path(tpe, id))
    }

    fn error(&self, what: &str, key: &str, detail: impl std::fmt::Display) -> Box<RusticError> {
        RusticError::new(
            ErrorKind::Backend,
            "{what} `{key}` in bucket `{bucket}`: {detail}",
        )
        .attach_context("what", what.to_string())
        .attach_context("key", key.to_string())
        .attach_context("bucket", self.bucket.clone())
        .attach_context("detail", detail.to_string())
    }

    fn get(&self, key: &str, range: Option<(u32, u32)>) -> RusticResult<Bytes> {
        self.handle
            .block_on(get_bytes(&self.client, &self.bucket, key, None, range))
            .map_err(|e| self.error("reading", key, e))
    }
}

impl ReadBackend for S3Backend {
    fn location(&self) -> String {
        format!("s3:{}/{}", self.bucket, self.root)
    }

    fn list_with_size(&self, tpe: FileType) -> RusticResult<Vec<(Id, u32)>> {
        if tpe == FileType::Config {
            let key = format!("{}config", self.root);
            let head = self.handle.block_on(
                self.client
                    .head_object()
                    .bucket(&self.bucket)
                    .key(&key)
                    .send(),
            );
            return match head {
                Ok(h) => Ok(vec![(
                    Id::default(),
                    h.content_length()
                        .and_then(|n| u32::try_from(n).ok())
                        .unwrap_or_default(),
                )]),
                Err(SdkError::ServiceError(e)) if e.err().is_not_found() => Ok(Vec::new()),
                Err(e) => Err(self.error("reading", &key, DisplayErrorContext(e))),
            };
        }
        let prefix = format!("{}{}/", self.root, tpe.dirname());
        let mut pages = self
            .client
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix(&prefix)
            .into_paginator()
            .send();
        let mut out = Vec::new();
        self.handle.block_on(async {
            while let Some(page) = pages.next().await {
                let page =
                    page.map_err(|e| self.error("listing", &prefix, DisplayErrorContext(e)))?;
                for object in page.contents() {
                    let Some(name) = object.key().and_then(|k| k.rsplit('/').next()) else {
                        continue;
                    };
                    // Directory markers and foreign objects are not repository files.
                    let Ok(id) = name.parse::<Id>() else { continue };
                    let size = object
                        .size()
                        .and_then(|n| u32::try_from(n).ok())
                        .unwrap_or_default();
                    out.push((id, size));
                }
            }
            Ok::<(), Box<RusticError>>(())
        })?;
        Ok(out)
    }

    fn read_full(&self, tpe: FileType, id: &Id) -> RusticResult<Bytes> {
        self.get(&self.key(tpe, id), None)
    }

    fn read_partial(
        &self,
        tpe: FileType,
        id: &Id,
        _cacheable: bool,
        offset: u32,
        length: u32,
    ) -> RusticResult<Bytes> {
        let key = self.key(tpe, id);
        if tpe == FileType::Pack {
            let fetch = |start, len| self.get(&key, Some((start, len))).ok();
            if let Some(bytes) = self.windows.read(&key, offset, length, fetch) {
                return Ok(bytes);
            }
        }
        // Large reads, and any whose window failed (this read then reports the error).
        self.get(&key, Some((offset, length)))
    }

    fn warmup_path(&self, tpe: FileType, id: &Id) -> String {
        self.key(tpe, id)
    }
}

impl WriteBackend for S3Backend {
    fn create(&self) -> RusticResult<()> {
        // The bucket is the operator's (or the person's) to create; a repository is just keys.
        Ok(())
    }

    fn write_bytes(
        &self,
        tpe: FileType,
        id: &Id,
        _cacheable: bool,
        buf: BytesList,
    ) -> RusticResult<()> {
        let key = self.key(tpe, id);
        let body = Parts::new(buf.into_vec());
        let request = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(&key)
            // Given, the checksum goes into a header as S3 and Object Lock want it; left to the
            // SDK, a body of several parts would be sent aws-chunked with a trailer instead.
            .checksum_crc32_c(body.crc32c())
            .content_length(i64::try_from(body.len()).unwrap_or(i64::MAX))
            .body(body.into_stream())
            // SigV4 would hash every pack once more (a twentieth of a large backup's CPU); the
            // signed CRC32C header catches corruption in transit, and each pack is named by its
            // SHA-256 and authenticated blob by blob, so tampering shows at the next check.
            .customize()
            .disable_payload_signing();
        self.handle
            .block_on(request.send())
            .map(|_| ())
            .map_err(|e| self.error("writing", &key, DisplayErrorContext(e)))
    }

    fn remove(&self, tpe: FileType, id: &Id, _cacheable: bool) -> RusticResult<()> {
        let key = self.key(tpe, id);
        self.handle
            .block_on(
                self.client
                    .delete_object()
                    .bucket(&self.bucket)
                    .key(&key)
                    .send(),
            )
            .map(|_| ())
            .map_err(|e| self.error("removing", &key, DisplayErrorContext(e)))
    }
}
