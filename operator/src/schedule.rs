//! Cron schedules: validation, next run, and the expected interval the missed-backup alert uses.

use std::collections::HashMap;
use std::sync::{LazyLock, Mutex};

use chrono::{DateTime, TimeZone, Utc};
use chrono_tz::Tz;
use croner::parser::{CronParser, Seconds};
use croner::Cron;

use crate::cron_dialect::{self, Dialect};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    #[error("schedule `{schedule}` is not a valid cron expression: {detail}")]
    Cron { schedule: String, detail: String },
    #[error("timeZone `{0}` is not an IANA time zone such as Europe/Berlin")]
    TimeZone(String),
    #[error("schedule `{0}` never fires")]
    Never(String),
}

/// A validated schedule in its time zone.
#[derive(Debug, Clone)]
pub struct Schedule {
    kind: Kind,
    tz: Tz,
    text: String,
}

#[derive(Debug, Clone)]
enum Kind {
    Cron(Box<Cron>),
    /// `@every`: the CronJob controller runs it this long after the previous run.
    Every(chrono::Duration),
}

/// How far ahead the expected interval looks: four years and a day covers every gap a valid
/// schedule can have (monthly, yearly, February 29th).
const HORIZON_DAYS: i64 = 4 * 365 + 2;
/// Runs examined at most: enough for a minute schedule to cover a week, and for sparse
/// schedules the whole horizon.
const MAX_STEPS: usize = 20_000;

impl Schedule {
    /// Parses a Kubernetes CronJob schedule in Kubernetes' own dialect (see `cron_dialect`).
    pub fn parse(schedule: &str, time_zone: Option<&str>) -> Result<Self, ScheduleError> {
        let tz = match time_zone {
            None => Tz::UTC,
            Some(name) => name
                .parse::<Tz>()
                .map_err(|_| ScheduleError::TimeZone(name.to_string()))?,
        };
        let cron_err = |detail: String| ScheduleError::Cron {
            schedule: schedule.into(),
            detail,
        };
        let kind = match cron_dialect::parse(schedule).map_err(cron_err)? {
            Dialect::Every(d) => {
                Kind::Every(chrono::Duration::from_std(d).map_err(|e| cron_err(e.to_string()))?)
            }
            Dialect::Fields(fields) => Kind::Cron(Box::new(
                CronParser::builder()
                    .seconds(Seconds::Disallowed)
                    .build()
                    .parse(&fields)
                    .map_err(|e| cron_err(e.to_string()))?,
            )),
        };
        let parsed = Self {
            kind,
            tz,
            text: schedule.into(),
        };
        parsed.next_after(Utc::now())?;
        Ok(parsed)
    }

    /// The first run strictly after `after` (for `@every`: one delay after `after`).
    pub fn next_after(&self, after: DateTime<Utc>) -> Result<DateTime<Utc>, ScheduleError> {
        match &self.kind {
            Kind::Every(d) => Ok(after + *d),
            Kind::Cron(cron) => {
                let local = self.tz.from_utc_datetime(&after.naive_utc());
                cron.find_next_occurrence(&local, false)
                    .map(|t| t.with_timezone(&Utc))
                    .map_err(|_| ScheduleError::Never(self.text.clone()))
            }
        }
    }

    /// [`Self::expected_interval_seconds`] from `now`, remembered for a day per schedule and time
    /// zone: it walks up to four years of runs, thousands of resources share a few schedules,
    /// and the answer only drifts as the horizon moves.
    pub fn expected_interval_seconds_cached(
        &self,
        now: DateTime<Utc>,
    ) -> Result<i64, ScheduleError> {
        type Memo = HashMap<(String, Tz), (DateTime<Utc>, i64)>;
        static MEMO: LazyLock<Mutex<Memo>> = LazyLock::new(Mutex::default);
        let key = (self.text.clone(), self.tz);
        if let Ok(memo) = MEMO.lock() {
            if let Some((at, seconds)) = memo.get(&key) {
                if (now - *at).num_hours().abs() < 24 {
                    return Ok(*seconds);
                }
            }
        }
        let seconds = self.expected_interval_seconds(now)?;
        if let Ok(mut memo) = MEMO.lock() {
            if memo.len() >= 10_000 {
                memo.clear();
            }
            memo.insert(key, (now, seconds));
        }
        Ok(seconds)
    }

    /// The longest gap between two consecutive runs from `from` on (a backup is "missed" when
    /// none succeeded for longer than this, times a factor): for `0 3 * * 1-5` it is 3 days, for
    /// `0 3 1 * *` 31 days, for `0 0 29 2 *` four years.
    pub fn expected_interval_seconds(&self, from: DateTime<Utc>) -> Result<i64, ScheduleError> {
        if let Kind::Every(d) = &self.kind {
            return Ok(d.num_seconds().max(60));
        }
        let mut longest = 0;
        let mut t = self.next_after(from)?;
        let horizon = from + chrono::Duration::days(HORIZON_DAYS);
        let mut steps = 0;
        while t < horizon && steps < MAX_STEPS {
            let next = match self.next_after(t) {
                Ok(next) => next,
                // No run after this one within croner's search range: nothing to measure.
                Err(_) => break,
            };
            longest = longest.max((next - t).num_seconds());
            t = next;
            steps += 1;
        }
        Ok(longest.max(60))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s)
            .expect("time")
            .with_timezone(&Utc)
    }

    #[test]
    fn next_run_respects_the_time_zone() {
        let s = Schedule::parse("0 3 * * *", Some("Europe/Berlin")).expect("valid");
        // 03:00 in Berlin in winter is 02:00 UTC.
        assert_eq!(
            s.next_after(at("2026-01-10T12:00:00Z")).expect("next"),
            at("2026-01-11T02:00:00Z")
        );
        let utc = Schedule::parse("*/15 * * * *", None).expect("valid");
        assert_eq!(
            utc.next_after(at("2026-01-10T12:07:00Z")).expect("next"),
            at("2026-01-10T12:15:00Z")
        );
    }

    #[test]
    fn the_remembered_interval_is_the_computed_one() {
        let now = Utc::now();
        for (text, tz) in [
            ("0 3 * * 1-5", None),
            ("0 3 * * 1-5", Some("Asia/Tokyo")),
            ("0 0 1 * *", None),
        ] {
            let s = Schedule::parse(text, tz).expect("valid");
            let computed = s.expected_interval_seconds(now).expect("interval");
            assert_eq!(
                s.expected_interval_seconds_cached(now).expect("first"),
                computed
            );
            assert_eq!(
                s.expected_interval_seconds_cached(now).expect("again"),
                computed
            );
        }
    }

    #[test]
    fn expected_interval_is_the_longest_gap() {
        let from = at("2026-01-05T00:00:00Z");
        let hourly = Schedule::parse("0 * * * *", None).expect("valid");
        assert_eq!(
            hourly.expected_interval_seconds(from).expect("interval"),
            3600
        );
        let weekdays = Schedule::parse("0 3 * * 1-5", None).expect("valid");
        assert_eq!(
            weekdays.expected_interval_seconds(from).expect("interval"),
            3 * 86400
        );
        let daily = Schedule::parse("@daily", None).expect("valid");
        assert_eq!(
            daily.expected_interval_seconds(from).expect("interval"),
            86400
        );
    }

    #[test]
    fn expected_interval_covers_monthly_yearly_leap_day_and_dst() {
        let from = at("2026-01-05T00:00:00Z");
        let interval = |s: &str, tz: Option<&str>| {
            Schedule::parse(s, tz)
                .expect("valid")
                .expected_interval_seconds(from)
                .expect("interval")
        };
        const DAY: i64 = 86400;
        assert_eq!(interval("0 3 1 * *", None), 31 * DAY);
        assert_eq!(interval("@monthly", None), 31 * DAY);
        assert_eq!(
            interval("0 3 1 1 *", None),
            366 * DAY,
            "2028 is a leap year"
        );
        assert_eq!(interval("@yearly", None), 366 * DAY);
        assert_eq!(interval("0 0 29 2 *", None), (4 * 365 + 1) * DAY);
        assert_eq!(interval("@every 36h", None), 36 * 3600);
        // Daily at 03:00 in Berlin: the day the clocks go forward (or back) has 23 (25) hours.
        assert_eq!(interval("0 3 * * *", Some("Europe/Berlin")), DAY + 3600);
        // Only on weekdays, 9 to 17 every 5 minutes: the weekend is the longest gap.
        assert_eq!(
            interval("*/5 9-17 * * 1-5", None),
            2 * DAY + 15 * 3600 + 5 * 60
        );
    }

    #[test]
    fn bad_schedules_and_zones_are_named() {
        assert!(matches!(
            Schedule::parse("0 3 * *", None),
            Err(ScheduleError::Cron { .. })
        ));
        assert!(matches!(
            Schedule::parse("0 3 * * * *", None),
            Err(ScheduleError::Cron { .. })
        ));
        assert!(matches!(
            Schedule::parse("61 3 * * *", None),
            Err(ScheduleError::Cron { .. })
        ));
        assert!(matches!(
            Schedule::parse("0 3 * * *", Some("Mars/Olympus")),
            Err(ScheduleError::TimeZone(_))
        ));
        // croner accepts these; Kubernetes does not.
        for k8s_rejects in ["0 3 * * 7", "0 3 L * *", "0 3 * * 5#2", "0 3 15W * *"] {
            assert!(
                matches!(
                    Schedule::parse(k8s_rejects, None),
                    Err(ScheduleError::Cron { .. })
                ),
                "{k8s_rejects}"
            );
        }
        assert!(Schedule::parse("@midnight", None).is_ok());
    }
}
