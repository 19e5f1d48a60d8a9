//! The cron dialect Kubernetes accepts for CronJobs (pure): kube-apiserver validates schedules
//! with robfig/cron v3's standard parser — five fields (minute hour day-of-month month
//! day-of-week) of `*`, `?`, numbers, names (`jan`, `mon`), ranges, steps and lists, or one of
//! the descriptors `@yearly @annually @monthly @weekly @daily @midnight @hourly @every <duration>`.
//! No seconds, no `L`, `W` or `#`, day-of-week 0–6. Anything else would be rejected when the
//! CronJob is applied, so it is refused before.

use std::time::Duration;

/// What a valid schedule is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Dialect {
    /// Five fields (descriptors other than `@every` are rewritten to them).
    Fields(String),
    /// `@every <duration>`: a fixed delay between runs.
    Every(Duration),
}

struct Field {
    name: &'static str,
    min: u32,
    max: u32,
    names: &'static [&'static str],
}

const MONTHS: [&str; 12] = [
    "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
];
const DAYS: [&str; 7] = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"];

const FIELDS: [Field; 5] = [
    Field {
        name: "minute",
        min: 0,
        max: 59,
        names: &[],
    },
    Field {
        name: "hour",
        min: 0,
        max: 23,
        names: &[],
    },
    Field {
        name: "day of month",
        min: 1,
        max: 31,
        names: &[],
    },
    Field {
        name: "month",
        min: 1,
        max: 12,
        names: &MONTHS,
    },
    Field {
        name: "day of week",
        min: 0,
        max: 6,
        names: &DAYS,
    },
];

/// Checks `schedule` as Kubernetes would; the error says what is wrong.
pub fn parse(schedule: &str) -> Result<Dialect, String> {
    let s = schedule.trim();
    if s.starts_with("TZ=") || s.starts_with("CRON_TZ=") {
        return Err("a time zone in the schedule is not allowed; use spec.timeZone".into());
    }
    if let Some(descriptor) = s.strip_prefix('@') {
        return match descriptor {
            "yearly" | "annually" => Ok(Dialect::Fields("0 0 1 1 *".into())),
            "monthly" => Ok(Dialect::Fields("0 0 1 * *".into())),
            "weekly" => Ok(Dialect::Fields("0 0 * * 0".into())),
            "daily" | "midnight" => Ok(Dialect::Fields("0 0 * * *".into())),
            "hourly" => Ok(Dialect::Fields("0 * * * *".into())),
            _ => match descriptor.strip_prefix("every ") {
                Some(d) => go_duration(d.trim()).map(Dialect::Every),
                None => Err(format!("unknown descriptor `@{descriptor}`")),
            },
        };
    }
    let fields: Vec<&str> = s.split_whitespace().collect();
    if fields.len() != 5 {
        return Err(format!(
            "{} fields; Kubernetes expects 5 (minute hour day-of-month month day-of-week)",
            fields.len()
        ));
    }
    for (text, field) in fields.iter().zip(FIELDS.iter()) {
        check_field(text, field)?;
    }
    Ok(Dialect::Fields(fields.join(" ")))
}

fn check_field(text: &str, f: &Field) -> Result<(), String> {
    for part in text.split(',') {
        let (range, step) = match part.split_once('/') {
            Some((r, s)) => (r, Some(s)),
            None => (part, None),
        };
        if let Some(step) = step {
            let n: u32 = step
                .parse()
                .map_err(|_| format!("{}: step `{step}` is not a number", f.name))?;
            if n == 0 {
                return Err(format!("{}: a step must be positive", f.name));
            }
        }
        if range == "*" || range == "?" {
            continue;
        }
        let (start, end) = match range.split_once('-') {
            Some((a, b)) => (value(a, f)?, value(b, f)?),
            None => {
                let v = value(range, f)?;
                (v, v)
            }
        };
        if start > end {
            return Err(format!("{}: range `{range}` starts after it ends", f.name));
        }
    }
    Ok(())
}

fn value(text: &str, f: &Field) -> Result<u32, String> {
    let lower = text.to_ascii_lowercase();
    if let Some(i) = f.names.iter().position(|n| *n == lower) {
        return Ok(f.min + i as u32);
    }
    let v: u32 = text.parse().map_err(|_| {
        format!(
            "{}: `{text}` is not a number{} (Kubernetes supports no L, W or #)",
            f.name,
            if f.names.is_empty() { "" } else { " or a name" }
        )
    })?;
    if v < f.min || v > f.max {
        return Err(format!("{}: {v} is outside {}-{}", f.name, f.min, f.max));
    }
    Ok(v)
}

/// Go's `time.ParseDuration` for what `@every` takes: `1h30m`, `90s`, `1.5h` (ns to h units).
fn go_duration(text: &str) -> Result<Duration, String> {
    let bad = || format!("`@every {text}`: not a duration such as 1h30m or 90s");
    if text.is_empty() {
        return Err(bad());
    }
    let mut rest = text;
    let mut total = 0f64;
    while !rest.is_empty() {
        let num_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(bad)?;
        let number: f64 = rest[..num_end].parse().map_err(|_| bad())?;
        rest = &rest[num_end..];
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let seconds = match &rest[..unit_end] {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return Err(bad()),
        };
        total += number * seconds;
        rest = &rest[unit_end..];
    }
    if total < 1.0 {
        return Err(format!("`@every {text}`: shorter than a second"));
    }
    Ok(Duration::from_secs_f64(total))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_kubernetes_accepts_is_accepted() {
        for ok in [
            "0 3 * * *",
            "*/15 * * * *",
            "0 3 * * 1-5",
            "0 3 * * MON-FRI",
            "0 0 1 jan,jul ?",
            "5-55/10 8-18 1,15 * *",
            "0 3 * * 0",
        ] {
            assert!(matches!(parse(ok), Ok(Dialect::Fields(_))), "{ok}");
        }
        assert_eq!(parse("@midnight"), Ok(Dialect::Fields("0 0 * * *".into())));
        assert_eq!(parse("@annually"), Ok(Dialect::Fields("0 0 1 1 *".into())));
        assert_eq!(
            parse("@every 1h30m"),
            Ok(Dialect::Every(Duration::from_secs(5400)))
        );
        assert_eq!(
            parse("@every 1.5h"),
            Ok(Dialect::Every(Duration::from_secs(5400)))
        );
    }

    #[test]
    fn what_kubernetes_rejects_is_refused_with_the_reason() {
        for (bad, says) in [
            ("0 3 * * 7", "day of week: 7 is outside 0-6"),
            ("0 3 L * *", "no L, W or #"),
            ("0 3 * * 5#2", "no L, W or #"),
            ("0 3 15W * *", "no L, W or #"),
            ("0 0 3 * * *", "6 fields"),
            ("0 3 * *", "4 fields"),
            ("61 3 * * *", "minute: 61"),
            ("0 3 * * */0", "step must be positive"),
            ("0 5-3 * * *", "starts after it ends"),
            ("@every 10x", "not a duration"),
            ("@fortnightly", "unknown descriptor"),
            ("TZ=UTC 0 3 * * *", "spec.timeZone"),
        ] {
            let err = parse(bad).expect_err(bad);
            assert!(err.contains(says), "{bad}: {err}");
        }
    }
}
