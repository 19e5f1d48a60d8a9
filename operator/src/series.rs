//! The per-resource series of the metrics, as one table: a row per BackupResource with a slot
//! per series, encoded column by column as the metric families Prometheus reads.
//!
//! A prometheus-client `Family` per metric keeps a hash map of its own, with a copy of the
//! labels and an allocated metric per series. With a dozen per-resource families plus the
//! labelled ones (runs by result, files by kind, changes, repository parts) that was about
//! 35 map entries and allocations per resource, several kilobytes each. Here a resource costs
//! one map entry holding the series every resource has, and one allocation for the rest once
//! its first job has finished.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Unit;

use crate::metrics::ResourceLabels;

/// How a slot's 64 bits are read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A gauge of an `i64`.
    Int,
    /// A gauge of an `f64` (its bits).
    Float,
    /// A counter (`_total`).
    Counter,
}

/// A metric family of per-resource series.
#[derive(Debug)]
pub struct Column {
    pub name: &'static str,
    pub help: &'static str,
    pub unit: Option<Unit>,
    pub kind: Kind,
    /// Its first slot.
    pub slot: usize,
    /// One more label and its values, one slot each from `slot` on; `None`: one series.
    pub label: Option<(&'static str, &'static [&'static str])>,
}

impl Column {
    pub fn slots(&self) -> usize {
        self.label.map_or(1, |(_, values)| values.len())
    }
}

/// Slots every scheduled resource fills, kept in the row itself.
pub const INLINE: usize = 4;
/// All slots; those from `INLINE` on are allocated when a resource first has one.
pub const SLOTS: usize = 35;
// A row says which slots are set in one `u64`.
const _: () = assert!(SLOTS <= 64);

#[derive(Debug, Default)]
struct Row {
    /// Bit `i`: slot `i` has a series.
    set: u64,
    inline: [u64; INLINE],
    rest: Option<Box<[u64; SLOTS - INLINE]>>,
}

impl Row {
    fn get(&self, slot: usize) -> Option<u64> {
        if self.set & (1 << slot) == 0 {
            return None;
        }
        if slot < INLINE {
            return self.inline.get(slot).copied();
        }
        self.rest
            .as_ref()
            .and_then(|r| r.get(slot - INLINE).copied())
    }

    fn set(&mut self, slot: usize, bits: u64) {
        let cell = if slot < INLINE {
            self.inline.get_mut(slot)
        } else {
            self.rest
                .get_or_insert_with(Default::default)
                .get_mut(slot - INLINE)
        };
        if let Some(cell) = cell {
            *cell = bits;
            self.set |= 1 << slot;
        }
    }
}

/// The rows, by resource. Each resource's labels are kept once, as the row's key.
#[derive(Debug, Default)]
pub struct Table {
    rows: RwLock<HashMap<ResourceLabels, Row>>,
}

/// Changes to one resource's row, under the table's lock (read-modify-write in one step).
pub struct RowMut<'a>(&'a mut Row);

impl RowMut<'_> {
    pub fn int(&self, slot: usize) -> Option<i64> {
        self.0.get(slot).map(|b| b as i64)
    }

    pub fn float(&self, slot: usize) -> Option<f64> {
        self.0.get(slot).map(f64::from_bits)
    }

    pub fn set_int(&mut self, slot: usize, v: i64) {
        self.0.set(slot, v as u64);
    }

    pub fn set_float(&mut self, slot: usize, v: f64) {
        self.0.set(slot, v.to_bits());
    }

    pub fn inc(&mut self, slot: usize) {
        let n = self.0.get(slot).unwrap_or(0);
        self.0.set(slot, n.saturating_add(1));
    }

    /// Moves the time in `slot` forward to `at`; false (and unchanged) when `at` is older than
    /// what it holds, as when finished runs are re-read out of order after a restart.
    pub fn advance(&mut self, slot: usize, at: f64) -> bool {
        if at < self.float(slot).unwrap_or(0.0) {
            return false;
        }
        self.set_float(slot, at);
        true
    }
}

impl Table {
    /// Runs `f` on the row of `labels`, created when missing.
    pub fn update<T>(&self, labels: &ResourceLabels, f: impl FnOnce(&mut RowMut) -> T) -> T {
        let mut rows = self.rows.write().unwrap_or_else(|e| e.into_inner());
        let row = match rows.get_mut(labels) {
            Some(row) => row,
            None => rows.entry(labels.clone()).or_default(),
        };
        f(&mut RowMut(row))
    }

    /// Drops the rows for which `keep` is false.
    pub fn retain(&self, keep: impl Fn(&ResourceLabels) -> bool) {
        let mut rows = self.rows.write().unwrap_or_else(|e| e.into_inner());
        rows.retain(|l, _| keep(l));
    }

    pub fn remove(&self, labels: &ResourceLabels) {
        let mut rows = self.rows.write().unwrap_or_else(|e| e.into_inner());
        rows.remove(labels);
    }

    /// The bits of a slot of a row, if it has a series.
    #[cfg(test)]
    pub fn get(&self, labels: &ResourceLabels, slot: usize) -> Option<u64> {
        let rows = self.rows.read().unwrap_or_else(|e| e.into_inner());
        rows.get(labels).and_then(|row| row.get(slot))
    }

    pub fn len(&self) -> usize {
        self.rows.read().map(|r| r.len()).unwrap_or_default()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// One column of a table as a metric family of the exposition.
#[derive(Debug)]
pub struct ColumnCollector {
    pub table: Arc<Table>,
    pub column: &'static Column,
}

impl Collector for ColumnCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let c = self.column;
        let metric_type = match c.kind {
            Kind::Counter => MetricType::Counter,
            Kind::Int | Kind::Float => MetricType::Gauge,
        };
        // A registry's own families get the same full stop after their help.
        let help = format!("{}.", c.help);
        let mut family = encoder.encode_descriptor(c.name, &help, c.unit.as_ref(), metric_type)?;
        let rows = self.table.rows.read().unwrap_or_else(|e| e.into_inner());
        for (labels, row) in rows.iter() {
            for i in 0..c.slots() {
                let Some(bits) = row.get(c.slot + i) else {
                    continue;
                };
                match c.label {
                    None => encode_value(c.kind, bits, family.encode_family(labels)?)?,
                    Some((name, values)) => {
                        let value = values.get(i).copied().unwrap_or_default();
                        let labels = (labels.clone(), [(name, value)]);
                        encode_value(c.kind, bits, family.encode_family(&labels)?)?;
                    }
                }
            }
        }
        Ok(())
    }
}

fn encode_value(
    kind: Kind,
    bits: u64,
    encoder: prometheus_client::encoding::MetricEncoder,
) -> Result<(), std::fmt::Error> {
    match kind {
        Kind::Int => ConstGauge::new(bits as i64).encode(encoder),
        Kind::Float => ConstGauge::new(f64::from_bits(bits)).encode(encoder),
        Kind::Counter => ConstCounter::new(bits).encode(encoder),
    }
}
