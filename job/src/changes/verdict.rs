//! Whether a run's changes are an anomaly: each rate against its threshold, the resource's
//! usual and a minimum number of files. Pure: the numbers in, the reasons out.

use unstoppable_contract::{anomaly_reason, AnomalyConfig, AnomalyReason};

use super::history::Rates;

/// Counts of one run that the rates are made of.
#[derive(Debug, Clone, Copy, Default)]
pub struct Counts {
    pub before: u64,
    pub deleted: u64,
    pub changed: u64,
    pub incompressible: u64,
    pub renamed_to_new_extension: u64,
}

fn pct(n: u64, of: u64) -> f64 {
    if of == 0 {
        0.0
    } else {
        n as f64 * 100.0 / of as f64
    }
}

/// The run's rates in percent of the files before: what "the usual" is made of.
pub fn rates(c: &Counts) -> Rates {
    Rates {
        deleted: pct(c.deleted, c.before),
        changed: pct(c.changed, c.before),
        incompressible: pct(c.incompressible, c.before),
        renamed: pct(c.renamed_to_new_extension, c.before),
    }
}

/// The reasons this run is an anomaly (none: it is not). A first backup (nothing before) never is.
pub fn judge(
    c: &Counts,
    usual: &Rates,
    runs: usize,
    cfg: &AnomalyConfig,
    new_extensions: &[String],
) -> Vec<AnomalyReason> {
    if c.before == 0 {
        return Vec::new();
    }
    let r = rates(c);
    let factor = cfg.factor as f64;
    let usual_text = |u: f64| {
        if runs == 0 {
            "no earlier runs to compare with".to_string()
        } else {
            format!("at most {u:.1} % in the last {runs} normal runs")
        }
    };
    let above = |count: u64, rate: f64, threshold: u64, usual: f64| {
        count >= cfg.min_files && rate >= threshold as f64 && rate > factor * usual
    };
    let mut reasons = Vec::new();
    if above(c.deleted, r.deleted, cfg.deleted_percent, usual.deleted) {
        reasons.push(AnomalyReason {
            code: anomaly_reason::MASS_DELETION.into(),
            message: format!(
                "{} of {} files deleted ({:.0} %; {})",
                c.deleted,
                c.before,
                r.deleted,
                usual_text(usual.deleted)
            ),
        });
    }
    if above(c.changed, r.changed, cfg.changed_percent, usual.changed) {
        reasons.push(AnomalyReason {
            code: anomaly_reason::MASS_CHANGE.into(),
            message: format!(
                "{} of {} files changed ({:.0} %; {})",
                c.changed,
                c.before,
                r.changed,
                usual_text(usual.changed)
            ),
        });
    }
    // The threshold is a share of the changed files (most of what changed became noise); the
    // usual is a share of all files, which stays meaningful on days with few changes.
    let of_changed = pct(c.incompressible, c.changed);
    if above(
        c.incompressible,
        of_changed,
        cfg.incompressible_percent,
        0.0,
    ) && r.incompressible > factor * usual.incompressible
    {
        reasons.push(AnomalyReason {
            code: anomaly_reason::ENCRYPTED_CONTENT.into(),
            message: format!(
                "{} of {} changed files no longer compress though their previous content did ({:.0} %; {:.0} % of all files, {})",
                c.incompressible,
                c.changed,
                of_changed,
                r.incompressible,
                usual_text(usual.incompressible)
            ),
        });
    }
    if above(
        c.renamed_to_new_extension,
        r.renamed,
        cfg.renamed_percent,
        usual.renamed,
    ) {
        let exts: Vec<String> = new_extensions
            .iter()
            .take(5)
            .map(|e| format!(".{e}"))
            .collect();
        reasons.push(AnomalyReason {
            code: anomaly_reason::NEW_EXTENSIONS.into(),
            message: format!(
                "{} of {} files renamed to extensions never seen in this resource ({}; {:.0} %)",
                c.renamed_to_new_extension,
                c.before,
                exts.join(", "),
                r.renamed
            ),
        });
    }
    reasons
}

#[cfg(test)]
mod tests {
    use super::*;

    fn codes(reasons: &[AnomalyReason]) -> Vec<&str> {
        reasons.iter().map(|r| r.code.as_str()).collect()
    }

    #[test]
    fn each_rate_raises_its_own_reason() {
        let cfg = AnomalyConfig::default();
        let usual = Rates::default();
        let base = Counts {
            before: 1000,
            ..Default::default()
        };
        let j = |c: Counts| judge(&c, &usual, 5, &cfg, &["locked".into()]);
        assert!(j(base).is_empty());
        assert_eq!(
            codes(&j(Counts {
                deleted: 600,
                ..base
            })),
            ["MassDeletion"]
        );
        assert_eq!(
            codes(&j(Counts {
                changed: 400,
                ..base
            })),
            ["MassChange"]
        );
        assert_eq!(
            codes(&j(Counts {
                changed: 100,
                incompressible: 90,
                ..base
            })),
            ["EncryptedContent"]
        );
        let renamed = j(Counts {
            renamed_to_new_extension: 500,
            ..base
        });
        assert_eq!(codes(&renamed), ["NewExtensions"]);
        assert!(
            renamed[0].message.contains(".locked"),
            "{}",
            renamed[0].message
        );
    }

    #[test]
    fn small_counts_a_churning_resource_and_a_first_backup_are_not_anomalies() {
        let cfg = AnomalyConfig::default();
        let tiny = Counts {
            before: 10,
            deleted: 9,
            ..Default::default()
        };
        assert!(
            judge(&tiny, &Rates::default(), 5, &cfg, &[]).is_empty(),
            "under min_files"
        );
        let churn = Counts {
            before: 1000,
            changed: 500,
            ..Default::default()
        };
        let usual = Rates {
            changed: 45.0,
            ..Default::default()
        };
        assert!(
            judge(&churn, &usual, 30, &cfg, &[]).is_empty(),
            "usual for this resource"
        );
        let first = Counts {
            before: 0,
            ..Default::default()
        };
        assert!(judge(&first, &Rates::default(), 0, &cfg, &[]).is_empty());
    }

    #[test]
    fn the_thresholds_are_configurable() {
        let cfg = AnomalyConfig {
            deleted_percent: 70,
            ..AnomalyConfig::default()
        };
        let c = Counts {
            before: 1000,
            deleted: 600,
            ..Default::default()
        };
        assert!(judge(&c, &Rates::default(), 3, &cfg, &[]).is_empty());
    }
}
