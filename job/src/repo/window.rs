//! Read-ahead for small reads inside packs. A restore asks for each blob on its own; the blobs of
//! small files lie side by side in their pack, so one GET per blob made a restore of many small
//! files several times slower than restic's, which reads a pack's blobs in one range. Here a small
//! read fetches the aligned window around it once, and its neighbours are served from it.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, OnceLock};

use bytes::Bytes;

/// Bytes fetched for a small read: large enough to hold many small blobs, small enough that a
/// few of them cost little memory.
const WINDOW: u32 = 1 << 20;
/// Windows kept (restore reads with 8 threads, which may work in two windows each).
const KEEP: usize = 16;

type Cell = Arc<OnceLock<Option<Bytes>>>;

#[derive(Default)]
pub struct Windows {
    cells: Mutex<VecDeque<(String, u32, Cell)>>,
}

impl Windows {
    /// `length` bytes at `offset` of object `key`, from the window that holds them; `fetch(start,
    /// length)` reads a window (`None` on failure). `None` when the read should go directly: it is
    /// large, crosses a window's edge, or its window could not be read whole.
    pub fn read(
        &self,
        key: &str,
        offset: u32,
        length: u32,
        fetch: impl FnOnce(u32, u32) -> Option<Bytes>,
    ) -> Option<Bytes> {
        if length == 0 || length > WINDOW / 4 {
            return None;
        }
        let start = offset - offset % WINDOW;
        let (from, to) = (
            (offset - start) as usize,
            (offset - start) as usize + length as usize,
        );
        if to > WINDOW as usize {
            return None;
        }
        let cell = self.cell(key, start)?;
        // Threads asking for the same window wait for the one that fetches it.
        let window = cell.get_or_init(|| fetch(start, WINDOW)).as_ref()?;
        (to <= window.len()).then(|| window.slice(from..to))
    }

    fn cell(&self, key: &str, start: u32) -> Option<Cell> {
        let mut cells = self.cells.lock().ok()?;
        if let Some((_, _, cell)) = cells.iter().find(|(k, s, _)| *s == start && k == key) {
            return Some(cell.clone());
        }
        if cells.len() == KEEP {
            cells.pop_front();
        }
        let cell = Cell::default();
        cells.push_back((key.to_string(), start, cell.clone()));
        Some(cell)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell as Counter;

    fn object(len: usize) -> Bytes {
        (0..len).map(|i| (i % 251) as u8).collect::<Vec<_>>().into()
    }

    #[test]
    fn neighbouring_small_reads_share_one_fetch() {
        let data = object(3 * WINDOW as usize / 2);
        let windows = Windows::default();
        let fetches = Counter::new(0);
        let fetch = |start: u32, len: u32| {
            fetches.set(fetches.get() + 1);
            let end = (start as usize + len as usize).min(data.len());
            Some(data.slice(start as usize..end))
        };
        for (offset, length) in [(10u32, 100u32), (110, 5000), (900_000, 1000)] {
            let got = windows
                .read("p", offset, length, fetch)
                .expect("from the window");
            assert_eq!(got, data.slice(offset as usize..(offset + length) as usize));
        }
        assert_eq!(fetches.get(), 1);
        // The second window is shorter (the end of the object) and still serves what it holds.
        let offset = WINDOW + 1000;
        let got = windows
            .read("p", offset, 2000, fetch)
            .expect("second window");
        assert_eq!(got, data.slice(offset as usize..offset as usize + 2000));
        assert_eq!(fetches.get(), 2);
        // Past the object's end, across a window's edge, or large: read directly.
        assert_eq!(windows.read("p", WINDOW + 600_000, 1000, fetch), None);
        assert_eq!(windows.read("p", WINDOW - 10, 100, fetch), None);
        assert_eq!(windows.read("p", 0, WINDOW / 2, fetch), None);
        // Another object has windows of its own.
        assert!(windows.read("q", 10, 10, fetch).is_some());
        assert_eq!(fetches.get(), 3);
    }

    #[test]
    fn a_failed_window_sends_its_reads_directly() {
        let windows = Windows::default();
        assert_eq!(windows.read("p", 0, 10, |_, _| None), None);
        assert_eq!(
            windows.read("p", 20, 10, |_, _| Some(object(100))),
            None,
            "the failure is remembered for the window, not retried per read"
        );
    }
}
