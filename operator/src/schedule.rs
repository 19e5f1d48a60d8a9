//! Cron schedules: validation, next run, and the expected interval the missed-backup alert uses.

use chrono::{DateTime, TimeZone, Utc};
use chrono_tz::Tz;
use croner::parser::{CronParser, Seconds};
use croner::Cron;

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
    cron: Cron,
    tz: Tz,
    text: String,
}

impl Schedule {
    /// Parses a Kubernetes CronJob schedule (5 fields or a macro such as `@daily`).
    pub fn parse(schedule: &str, time_zone: Option<&str>) -> Result<Self, ScheduleError> {
        let tz = match time_zone {
            None => Tz::UTC,
            Some(name) => name
                .parse::<Tz>()
                .map_err(|_| ScheduleError::TimeZone(name.to_string()))?,
        };
        let fields = schedule.split_whitespace().count();
        if !schedule.trim_start().starts_with('@') && fields != 5 {
            return Err(ScheduleError::Cron {
                schedule: schedule.into(),
                detail: format!(
                    "{fields} fields; Kubernetes expects 5 (minute hour day month weekday)"
                ),
            });
        }
        let cron = CronParser::builder()
            .seconds(Seconds::Disallowed)
            .build()
            .parse(schedule)
            .map_err(|e| ScheduleError::Cron {
                schedule: schedule.into(),
                detail: e.to_string(),
            })?;
        let parsed = Self {
            cron,
            tz,
            text: schedule.into(),
        };
        parsed.next_after(Utc::now())?;
        Ok(parsed)
    }

    /// The first run strictly after `after`.
    pub fn next_after(&self, after: DateTime<Utc>) -> Result<DateTime<Utc>, ScheduleError> {
        let local = self.tz.from_utc_datetime(&after.naive_utc());
        self.cron
            .find_next_occurrence(&local, false)
            .map(|t| t.with_timezone(&Utc))
            .map_err(|_| ScheduleError::Never(self.text.clone()))
    }

    /// The longest gap between two runs over the next ~2 weeks (a backup is "missed" when none
    /// succeeded for longer than this, times a factor): for `0 3 * * 1-5` it is 3 days.
    pub fn expected_interval_seconds(&self, from: DateTime<Utc>) -> Result<i64, ScheduleError> {
        let mut longest = 0;
        let mut t = self.next_after(from)?;
        let horizon = from + chrono::Duration::days(15);
        let mut steps = 0;
        while t < horizon && steps < 2000 {
            let next = self.next_after(t)?;
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
    }
}
