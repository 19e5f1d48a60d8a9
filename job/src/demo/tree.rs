//! Sample trees and byte-exact tree comparison, for the demo and the tests.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// A small deterministic pseudo-random generator (xorshift), so trees are reproducible from a seed.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }
    /// Half random (incompressible), half repetitive (compressible) bytes.
    pub fn bytes(&mut self, len: usize) -> Vec<u8> {
        let mut out = Vec::with_capacity(len);
        if self.below(2) == 0 {
            while out.len() < len {
                out.extend_from_slice(&self.next_u64().to_le_bytes());
            }
        } else {
            let word = format!("line {} of unstoppable sample data\n", self.below(1000));
            while out.len() < len {
                out.extend_from_slice(word.as_bytes());
            }
        }
        out.truncate(len);
        out
    }
}

/// Writes `data` to `path` with modification time `mtime` (whole seconds, as FTP reports them).
pub fn write_file(path: &Path, data: &[u8], mtime: SystemTime) -> io::Result<()> {
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent)?;
    }
    fs::write(path, data)?;
    let file = fs::File::options().write(true).open(path)?;
    file.set_modified(mtime)
}

/// A fixed point in time plus `secs`, so trees are identical run to run.
pub fn time(secs: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_767_225_600 + secs)
}

/// The demo's sample tree: nested and empty directories, an empty file, names with spaces and
/// non-ASCII characters, many small files and a few larger ones.
pub fn sample_tree(root: &Path, seed: u64, small_files: usize) -> io::Result<()> {
    let mut rng = Rng::new(seed);
    fs::create_dir_all(root.join("empty dir"))?;
    write_file(&root.join("empty.txt"), b"", time(1))?;
    write_file(&root.join("Ünïcödé ☃.txt"), "snow ☃\n".as_bytes(), time(2))?;
    write_file(
        &root.join("with space/and more/file one.txt"),
        b"one\n",
        time(3),
    )?;
    for i in 0..small_files {
        let dir = format!("projects/p{:02}/src", i % 7);
        let len = 1 + rng.below(48 * 1024) as usize;
        let data = rng.bytes(len);
        write_file(
            &root.join(dir).join(format!("file-{i:04}.dat")),
            &data,
            time(100 + i as u64),
        )?;
    }
    for i in 0..2 {
        let len = 3 * 1024 * 1024 + rng.below(1024 * 1024) as usize;
        let data = rng.bytes(len);
        write_file(
            &root.join(format!("large/blob-{i}.bin")),
            &data,
            time(10_000 + i),
        )?;
    }
    Ok(())
}

/// What a tree holds: relative path -> (kind, content, mtime in seconds).
pub type TreeManifest = BTreeMap<PathBuf, (char, Vec<u8>, Option<u64>)>;

pub fn manifest(root: &Path) -> io::Result<TreeManifest> {
    let mut out = BTreeMap::new();
    walk(root, root, &mut out)?;
    Ok(out)
}

fn walk(root: &Path, dir: &Path, out: &mut TreeManifest) -> io::Result<()> {
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let path = entry.path();
        let rel = path
            .strip_prefix(root)
            .map_err(io::Error::other)?
            .to_path_buf();
        let meta = fs::symlink_metadata(&path)?;
        if meta.is_dir() {
            out.insert(rel, ('d', Vec::new(), None));
            walk(root, &path, out)?;
        } else if meta.is_file() {
            let mtime = meta
                .modified()?
                .duration_since(SystemTime::UNIX_EPOCH)
                .map_err(io::Error::other)?
                .as_secs();
            out.insert(rel, ('f', fs::read(&path)?, Some(mtime)));
        } else {
            out.insert(rel, ('l', Vec::new(), None));
        }
    }
    Ok(())
}

/// Compares two trees file by file: every path, byte and file mtime. Returns the differences.
pub fn compare(expected: &Path, actual: &Path) -> io::Result<Vec<String>> {
    let a = manifest(expected)?;
    let b = manifest(actual)?;
    let mut diffs = Vec::new();
    for (path, (kind, data, mtime)) in &a {
        match b.get(path) {
            None => diffs.push(format!("missing: {}", path.display())),
            Some((k2, d2, m2)) => {
                if kind != k2 {
                    diffs.push(format!("type differs: {}", path.display()));
                } else if data != d2 {
                    diffs.push(format!("content differs: {}", path.display()));
                } else if mtime != m2 {
                    diffs.push(format!(
                        "mtime differs: {} ({mtime:?} vs {m2:?})",
                        path.display()
                    ));
                }
            }
        }
    }
    for path in b.keys().filter(|p| !a.contains_key(*p)) {
        diffs.push(format!("unexpected: {}", path.display()));
    }
    Ok(diffs)
}
