//! Restoring into a local directory: directories and empty files first, then the contents blob
//! by blob on a few threads, each blob written in place (`pwrite`) at the offset the index gives
//! it. Memory is the threads' blobs plus rustic's 32 MB blob cache, whatever the snapshot's
//! size: rustic's own restorer queues every blob it has read ahead of the disk, so its memory
//! grows with the data. Times are set last, directories children first.

use std::fs::{self, File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use rustic_core::repofile::{BlobType, Node, NodeType};
use rustic_core::{BlobId, DataId, LsOptions};
use unstoppable_contract::RestoreOutcome;

use super::Repo;
use crate::error::Error;
use crate::ftps::Filter;
use crate::repo::repo_err;

/// Blobs read and written at once: enough to keep an S3 endpoint busy, few enough that their
/// memory (rustic's blobs are 0.5-8 MiB) stays small.
const WORKERS: usize = 8;

/// One blob of one file.
struct Piece {
    file: usize,
    offset: u64,
    blob: DataId,
}

struct FileJob {
    path: PathBuf,
    mtime: Option<std::time::SystemTime>,
    left: AtomicUsize,
}

pub fn run(
    repo: &Repo,
    node: &Node,
    filter: &Filter,
    target: &Path,
) -> Result<RestoreOutcome, Error> {
    let target_str = target
        .to_str()
        .ok_or_else(|| Error::Restore(format!("target {} is not valid UTF-8", target.display())))?;
    let io = |what: &str, path: &Path, e: std::io::Error| {
        Error::Restore(format!("{what} {}: {e}", path.display()))
    };
    let entries = wanted_entries(repo, node, filter)?;
    // A single file is restored as the target itself.
    let dest_of = |rel: &str| {
        if node.is_dir() {
            target.join(rel)
        } else {
            target.to_path_buf()
        }
    };
    if node.is_dir() {
        fs::create_dir_all(target).map_err(|e| io("creating", target, e))?;
    } else if let Some(parent) = target.parent() {
        fs::create_dir_all(parent).map_err(|e| io("creating", parent, e))?;
    }
    let mut dirs: Vec<(PathBuf, Option<std::time::SystemTime>)> = Vec::new();
    let mut files: Vec<FileJob> = Vec::new();
    let mut pieces: Vec<Piece> = Vec::new();
    let mut bytes = 0u64;
    for (rel, n) in &entries {
        let dest = dest_of(rel);
        let mtime = n.meta.mtime.map(std::time::SystemTime::from);
        match &n.node_type {
            NodeType::Dir => {
                fs::create_dir_all(&dest).map_err(|e| io("creating", &dest, e))?;
                dirs.push((dest, mtime));
            }
            NodeType::Symlink { .. } => {
                if let Some(parent) = dest.parent() {
                    fs::create_dir_all(parent).map_err(|e| io("creating", parent, e))?;
                }
                let _ = fs::remove_file(&dest);
                std::os::unix::fs::symlink(n.node_type.to_link(), &dest)
                    .map_err(|e| io("linking", &dest, e))?;
            }
            NodeType::File => {
                if let Some(parent) = dest.parent() {
                    fs::create_dir_all(parent).map_err(|e| io("creating", parent, e))?;
                }
                let file = File::create(&dest).map_err(|e| io("creating", &dest, e))?;
                file.set_len(n.meta.size)
                    .map_err(|e| io("sizing", &dest, e))?;
                let content = n.content.as_deref().unwrap_or_default();
                let mut offset = 0u64;
                for id in content {
                    let entry = repo
                        .get_index_entry(id)
                        .map_err(repo_err("looking up the file's content"))?;
                    pieces.push(Piece {
                        file: files.len(),
                        offset,
                        blob: *id,
                    });
                    offset += u64::from(entry.data_length());
                }
                if offset != n.meta.size {
                    return Err(Error::Restore(format!(
                        "{rel}: its content adds up to {offset} bytes, its node says {}",
                        n.meta.size
                    )));
                }
                bytes += offset;
                if content.is_empty() {
                    set_mtime(&file, mtime, &dest)?;
                }
                files.push(FileJob {
                    path: dest,
                    mtime,
                    left: AtomicUsize::new(content.len()),
                });
            }
            // Devices, sockets and FIFOs do not come from an FTPS server.
            _ => {}
        }
    }
    write_contents(repo, &files, &pieces)?;
    // Children before parents: writing into a directory changes its time.
    dirs.sort_by_key(|(p, _)| std::cmp::Reverse(p.components().count()));
    for (dir, mtime) in &dirs {
        let handle = File::open(dir).map_err(|e| io("opening", dir, e))?;
        set_mtime(&handle, *mtime, dir)?;
    }
    Ok(RestoreOutcome {
        target: "local".into(),
        location: target_str.to_string(),
        files_restored: files.len() as u64,
        bytes_restored: bytes,
        mtimes_set: true,
        ..Default::default()
    })
}

/// The snapshot's entries under `node` that the filter keeps, by path relative to it.
fn wanted_entries(repo: &Repo, node: &Node, filter: &Filter) -> Result<Vec<(String, Node)>, Error> {
    let ls = repo
        .ls(node, &LsOptions::default().recursive(true))
        .map_err(repo_err("reading the snapshot's trees"))?;
    let mut excluded: Vec<String> = Vec::new();
    let mut entries = Vec::new();
    for item in ls {
        let (path, node) = item.map_err(repo_err("reading the snapshot's trees"))?;
        let rel = super::rel_path(&path);
        if excluded.iter().any(|d| rel.starts_with(&format!("{d}/"))) {
            continue;
        }
        let keep = if node.is_dir() {
            let out = !rel.is_empty() && filter.exclude.is_match(&rel);
            if out {
                excluded.push(rel.clone());
            }
            !out
        } else {
            rel.is_empty() || filter.wants_file(&rel)
        };
        if keep {
            entries.push((rel, node));
        }
    }
    Ok(entries)
}

/// Reads and writes the pieces on [`WORKERS`] threads; the first error stops them all.
fn write_contents(repo: &Repo, files: &[FileJob], pieces: &[Piece]) -> Result<(), Error> {
    let next = AtomicUsize::new(0);
    let failed: Mutex<Option<Error>> = Mutex::new(None);
    let stop = || failed.lock().map(|f| f.is_some()).unwrap_or(true);
    std::thread::scope(|s| {
        for _ in 0..WORKERS.min(pieces.len()) {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(piece) = pieces.get(i) else {
                    return;
                };
                if stop() {
                    return;
                }
                if let Err(e) = write_piece(repo, &files[piece.file], piece) {
                    if let Ok(mut f) = failed.lock() {
                        f.get_or_insert(e);
                    }
                    return;
                }
            });
        }
    });
    match failed.into_inner() {
        Ok(Some(e)) => Err(e),
        Ok(None) => Ok(()),
        Err(_) => Err(Error::Restore("a restore thread panicked".into())),
    }
}

fn write_piece(repo: &Repo, job: &FileJob, piece: &Piece) -> Result<(), Error> {
    // Decrypting authenticates the blob: damaged data fails here, never lands in a file.
    let data = repo
        .get_blob_cached(&BlobId::from(*piece.blob), BlobType::Data)
        .map_err(repo_err("reading the file's content"))?;
    let file = OpenOptions::new()
        .write(true)
        .open(&job.path)
        .map_err(|e| Error::Restore(format!("opening {}: {e}", job.path.display())))?;
    file.write_all_at(&data, piece.offset)
        .map_err(|e| Error::Restore(format!("writing {}: {e}", job.path.display())))?;
    if job.left.fetch_sub(1, Ordering::AcqRel) == 1 {
        set_mtime(&file, job.mtime, &job.path)?;
    }
    Ok(())
}

fn set_mtime(file: &File, mtime: Option<std::time::SystemTime>, path: &Path) -> Result<(), Error> {
    match mtime {
        Some(t) => file
            .set_modified(t)
            .map_err(|e| Error::Restore(format!("setting the time of {}: {e}", path.display()))),
        None => Ok(()),
    }
}
