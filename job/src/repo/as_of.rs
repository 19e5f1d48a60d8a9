//! A read-only back-end for the cold repository as it was at a time: listed once from the
//! bucket's object versions (see `versions.rs`), each file read by its version id. Writing is
//! refused: a view of the past is for reading, `recover` is what changes the bucket.

use std::collections::BTreeMap;

use aws_sdk_s3::Client;
use bytes::Bytes;
use jiff::Timestamp;
use rustic_core::{
    BytesList, ErrorKind, FileType, Id, ReadBackend, RusticError, RusticResult, WriteBackend,
};
use tokio::runtime::Handle;
use unstoppable_contract::S3Config;

use super::layout::path;
use super::versions::{view_at, Version};
use crate::s3client::{blocking_handle, client, get_bytes};

pub struct AsOfBackend {
    client: Client,
    bucket: String,
    /// `<resource>/`: the repository's root in the bucket.
    prefix: String,
    /// Keys relative to `prefix`.
    view: BTreeMap<String, Version>,
    handle: Handle,
    at: Timestamp,
}

/// Every version and delete marker under `prefix`.
pub async fn list_versions(
    client: &Client,
    bucket: &str,
    prefix: &str,
) -> Result<Vec<Version>, String> {
    let mut out = Vec::new();
    let (mut key_marker, mut version_marker): (Option<String>, Option<String>) = (None, None);
    loop {
        let page = client
            .list_object_versions()
            .bucket(bucket)
            .prefix(prefix)
            .set_key_marker(key_marker.take())
            .set_version_id_marker(version_marker.take())
            .send()
            .await
            .map_err(|e| {
                format!(
                    "listing the object versions of {prefix} in bucket `{bucket}`: {}",
                    aws_sdk_s3::error::DisplayErrorContext(&e)
                )
            })?;
        let time = |d: Option<&aws_sdk_s3::primitives::DateTime>| {
            d.and_then(|d| Timestamp::new(d.secs(), d.subsec_nanos() as i32).ok())
        };
        for v in page.versions() {
            let (Some(key), Some(modified)) = (v.key(), time(v.last_modified())) else {
                continue;
            };
            out.push(Version {
                key: key.to_string(),
                version_id: v.version_id().unwrap_or("null").to_string(),
                modified,
                size: v.size().and_then(|s| u64::try_from(s).ok()).unwrap_or(0),
                delete_marker: false,
                latest: v.is_latest().unwrap_or(false),
            });
        }
        for m in page.delete_markers() {
            let (Some(key), Some(modified)) = (m.key(), time(m.last_modified())) else {
                continue;
            };
            out.push(Version {
                key: key.to_string(),
                version_id: m.version_id().unwrap_or("null").to_string(),
                modified,
                size: 0,
                delete_marker: true,
                latest: m.is_latest().unwrap_or(false),
            });
        }
        if !page.is_truncated().unwrap_or(false) {
            return Ok(out);
        }
        key_marker = page.next_key_marker().map(str::to_string);
        version_marker = page.next_version_id_marker().map(str::to_string);
        if key_marker.is_none() {
            return Err(format!(
                "bucket `{bucket}` said the version listing of {prefix} goes on but gave no marker"
            ));
        }
    }
}

impl AsOfBackend {
    /// Lists the versions under the resource's prefix and keeps the view at `at`.
    pub fn open(s3: &S3Config, resource: &str, at: Timestamp) -> Result<Self, String> {
        let handle = blocking_handle().map_err(|e| format!("starting the S3 runtime: {e}"))?;
        let client = client(s3);
        let prefix = format!("{resource}/");
        let versions = handle.block_on(list_versions(&client, &s3.bucket, &prefix))?;
        if !versions.is_empty() && versions.iter().all(|v| v.version_id == "null") {
            return Err(format!(
                "bucket `{}` keeps no object versions: the repository cannot be read as it was at {at}",
                s3.bucket
            ));
        }
        let view = view_at(&versions, Some(at))
            .into_iter()
            .filter_map(|(k, v)| Some((k.strip_prefix(&prefix)?.to_string(), v)))
            .filter(|(k, _)| !k.is_empty() && !k.ends_with('/'))
            .collect();
        Ok(Self {
            client,
            bucket: s3.bucket.clone(),
            prefix,
            view,
            handle,
            at,
        })
    }

    fn get(&self, tpe: FileType, id: &Id, range: Option<(u32, u32)>) -> RusticResult<Bytes> {
        let path = path(tpe, id);
        let version = self.view.get(&path).ok_or_else(|| {
            RusticError::new(
                ErrorKind::Backend,
                "`{path}` did not exist at {at} in the repository's bucket",
            )
            .attach_context("path", path.clone())
            .attach_context("at", self.at.to_string())
        })?;
        let key = format!("{}{path}", self.prefix);
        self.handle
            .block_on(get_bytes(
                &self.client,
                &self.bucket,
                &key,
                Some(&version.version_id),
                range,
            ))
            .map_err(|e| {
                RusticError::new(ErrorKind::Backend, "reading `{key}` as of {at}: {error}")
                    .attach_context("key", key)
                    .attach_context("at", self.at.to_string())
                    .attach_context("error", e)
            })
    }
}

impl ReadBackend for AsOfBackend {
    fn location(&self) -> String {
        format!("s3:{}/{} as of {}", self.bucket, self.prefix, self.at)
    }

    fn list_with_size(&self, tpe: FileType) -> RusticResult<Vec<(Id, u32)>> {
        let size = |v: &Version| u32::try_from(v.size).unwrap_or(u32::MAX);
        if tpe == FileType::Config {
            return Ok(self
                .view
                .get("config")
                .map(|v| vec![(Id::default(), size(v))])
                .unwrap_or_default());
        }
        let dir = format!("{}/", tpe.dirname());
        Ok(self
            .view
            .range(dir.clone()..)
            .take_while(|(k, _)| k.starts_with(&dir))
            .filter_map(|(k, v)| {
                let name = k.rsplit('/').next()?;
                Some((name.parse::<Id>().ok()?, size(v)))
            })
            .collect())
    }

    fn read_full(&self, tpe: FileType, id: &Id) -> RusticResult<Bytes> {
        self.get(tpe, id, None)
    }

    fn read_partial(
        &self,
        tpe: FileType,
        id: &Id,
        _cacheable: bool,
        offset: u32,
        length: u32,
    ) -> RusticResult<Bytes> {
        self.get(tpe, id, Some((offset, length)))
    }

    fn warmup_path(&self, tpe: FileType, id: &Id) -> String {
        format!("{}{}", self.prefix, path(tpe, id))
    }
}

impl WriteBackend for AsOfBackend {
    fn create(&self) -> RusticResult<()> {
        Err(read_only())
    }

    fn write_bytes(
        &self,
        _tpe: FileType,
        _id: &Id,
        _cacheable: bool,
        _content: BytesList,
    ) -> RusticResult<()> {
        Err(read_only())
    }

    fn remove(&self, _tpe: FileType, _id: &Id, _cacheable: bool) -> RusticResult<()> {
        Err(read_only())
    }
}

fn read_only() -> Box<RusticError> {
    RusticError::new(
        ErrorKind::Unsupported,
        "the repository as it was at a past time is read-only; `recover --as-of` makes that state current again",
    )
}
