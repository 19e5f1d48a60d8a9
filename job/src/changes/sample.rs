//! Which downloaded files no longer compress: judged from the first bytes of each file as they
//! stream to the archiver (no extra read), so an unchanged run does no work here at all.

use std::collections::HashSet;
use std::sync::Mutex;

/// Bytes of a file judged: enough for zstd to see structure, cheap next to the transfer.
pub const SAMPLE_BYTES: usize = 64 * 1024;
/// Smaller files say little about compressibility (headers dominate): they are not judged.
pub const MIN_BYTES: usize = 4 * 1024;
/// Paths remembered; beyond it the profile undercounts rather than grows without bound.
const MAX_PATHS: usize = 200_000;

/// Whether `sample` is incompressible: zstd at its fastest level saves under 5 %. Text, HTML,
/// scripts and office XML save 60-80 %; encrypted and random bytes save nothing.
pub fn incompressible(sample: &[u8]) -> bool {
    if sample.len() < MIN_BYTES {
        return false;
    }
    match zstd::bulk::compress(sample, 1) {
        Ok(packed) => packed.len() * 100 >= sample.len() * 95,
        Err(_) => false,
    }
}

/// The paths (relative to the backed-up directory) of downloaded files judged incompressible.
#[derive(Debug, Default)]
pub struct Incompressible {
    paths: Mutex<HashSet<String>>,
}

impl Incompressible {
    pub fn add(&self, rel: &str) {
        if let Ok(mut paths) = self.paths.lock() {
            if paths.len() < MAX_PATHS {
                paths.insert(rel.to_string());
            }
        }
    }

    pub fn contains(&self, rel: &str) -> bool {
        self.paths.lock().map(|p| p.contains(rel)).unwrap_or(false)
    }
}

/// Collects the first [`SAMPLE_BYTES`] of one file as the archiver reads it.
pub struct Sampler {
    buf: Vec<u8>,
    judged: bool,
}

impl Sampler {
    pub fn new(size: u64) -> Self {
        let cap = usize::try_from(size)
            .unwrap_or(SAMPLE_BYTES)
            .min(SAMPLE_BYTES);
        Self {
            buf: Vec::with_capacity(if cap >= MIN_BYTES { cap } else { 0 }),
            judged: cap < MIN_BYTES,
        }
    }

    /// Whether the sample still takes bytes (checked before feeding: most reads of a large
    /// file come after it is judged).
    #[inline]
    pub fn wants_more(&self) -> bool {
        !self.judged
    }

    /// Feeds bytes read; returns the verdict once the sample is full.
    pub fn feed(&mut self, bytes: &[u8]) -> Option<bool> {
        if self.judged {
            return None;
        }
        let take = (SAMPLE_BYTES - self.buf.len()).min(bytes.len());
        self.buf.extend_from_slice(&bytes[..take]);
        (self.buf.len() >= SAMPLE_BYTES).then(|| self.judge())
    }

    /// The verdict at the end of a file shorter than a full sample.
    pub fn finish(&mut self) -> Option<bool> {
        (!self.judged).then(|| self.judge())
    }

    fn judge(&mut self) -> bool {
        self.judged = true;
        let verdict = incompressible(&self.buf);
        self.buf = Vec::new();
        verdict
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn random(n: usize, seed: u64) -> Vec<u8> {
        // xorshift: reproducible bytes without a dependency.
        let mut x = seed | 1;
        (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect()
    }

    #[test]
    fn text_compresses_and_random_bytes_do_not() {
        let html = "<p>Opening hours: Monday to Friday, 9 to 17.</p>\n".repeat(400);
        assert!(!incompressible(html.as_bytes()));
        assert!(incompressible(&random(20_000, 7)));
        assert!(!incompressible(&random(100, 7)), "too small to judge");
    }

    #[test]
    fn the_sampler_judges_once_from_the_first_bytes() {
        let data = random(200_000, 3);
        let mut s = Sampler::new(data.len() as u64);
        assert_eq!(s.feed(&data[..1000]), None);
        assert_eq!(s.feed(&data[1000..]), Some(true));
        assert_eq!(s.feed(&data), None);
        assert_eq!(s.finish(), None);
        let mut short = Sampler::new(5000);
        assert_eq!(short.feed(&random(5000, 9)), None);
        assert_eq!(short.finish(), Some(true));
        let mut tiny = Sampler::new(10);
        assert_eq!(tiny.feed(b"0123456789"), None);
        assert_eq!(tiny.finish(), None);
    }
}
