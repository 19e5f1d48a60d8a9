//! The resource's recent change rates and the extensions its files have had, kept in the hot
//! directory next to the run lock: the baseline needs no database. A lost hot volume only means
//! a baseline that starts again (the thresholds alone decide until it has grown back).

use std::collections::BTreeSet;
use std::path::Path;

use serde::{Deserialize, Serialize};

const FILE: &str = ".unstoppable-change-history.json";
/// Normal runs remembered: a month of daily backups.
pub const RUNS: usize = 30;
/// Extensions remembered; a site with more is unusual and then learns no more.
const MAX_EXTENSIONS: usize = 1000;

/// One normal run's rates, in percent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Rates {
    pub deleted: f64,
    pub changed: f64,
    pub incompressible: f64,
    pub renamed: f64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct History {
    /// The last normal (not anomalous, complete) runs, oldest first.
    #[serde(default)]
    pub runs: Vec<Rates>,
    /// Every extension the resource's files had; `None` until learned.
    #[serde(default)]
    pub extensions: Option<BTreeSet<String>>,
}

impl History {
    /// The remembered history; a missing or unreadable file means none (logged).
    pub fn load(hot: &Path) -> History {
        crate::hot_state::load(hot, FILE)
    }

    /// Writes it; a failure is logged only (the baseline then starts again).
    pub fn save(&self, hot: &Path) {
        crate::hot_state::save(hot, FILE, self)
    }

    /// The highest rates of the remembered runs: "the usual" for this resource.
    pub fn usual(&self) -> Rates {
        self.runs.iter().fold(Rates::default(), |m, r| Rates {
            deleted: m.deleted.max(r.deleted),
            changed: m.changed.max(r.changed),
            incompressible: m.incompressible.max(r.incompressible),
            renamed: m.renamed.max(r.renamed),
        })
    }

    /// Remembers a normal run's rates.
    pub fn record(&mut self, rates: Rates) {
        self.runs.push(rates);
        if self.runs.len() > RUNS {
            let excess = self.runs.len() - RUNS;
            self.runs.drain(..excess);
        }
    }

    /// Adds extensions to the known ones (and makes them known, if they were not yet).
    pub fn learn(&mut self, extensions: &BTreeSet<String>) {
        let known = self.extensions.get_or_insert_with(BTreeSet::new);
        for ext in extensions {
            if known.len() >= MAX_EXTENSIONS {
                break;
            }
            known.insert(ext.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_last_runs_and_survives_a_round_trip() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut h = History::default();
        for i in 0..(RUNS + 5) {
            h.record(Rates {
                deleted: i as f64,
                ..Default::default()
            });
        }
        h.learn(&["html".to_string()].into());
        assert_eq!(h.runs.len(), RUNS);
        assert_eq!(h.runs[0].deleted, 5.0, "the oldest went");
        assert_eq!(h.usual().deleted, (RUNS + 4) as f64);
        h.save(dir.path());
        assert_eq!(History::load(dir.path()), h);
        std::fs::write(dir.path().join(FILE), b"[").expect("write");
        assert_eq!(History::load(dir.path()), History::default());
    }
}
