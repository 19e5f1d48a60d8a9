//! The time a LIST line shows (`Dec  4 20:20`, `Dec  4  2025`, DOS `12-04-26  08:20PM`) and when
//! it proves a file unchanged since an earlier copy, so that the file's MDTM can be skipped (pure).
//!
//! The rule is git's "racy clean" one. LIST shows a time only to the minute or the day, in a zone
//! of the server's choosing. An earlier copy of the file, read after its shown interval had ended,
//! recorded the exact time `M`. If now the size is the same, the shown interval is the same, and
//! `M` lies in it, then the file cannot have changed since that copy: a change after the copy
//! would carry a time after the interval, and LIST would show another minute (or day).

use jiff::civil::{Date, DateTime, Time};
use jiff::{SignedDuration, Timestamp};

/// How far a server's LIST zone may be from UTC (real zones span -12 h to +14 h).
const MAX_ZONE_SECS: i64 = 14 * 3600;

const MONTHS: [&str; 12] = [
    "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
];

/// A LIST line's time, as the server's local wall clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shown {
    /// To the minute. `ls -l` style leaves the year out for recent files.
    Minute { year: Option<i16>, at: DateTime },
    /// To the day (`ls -l` style for files older than about six months).
    Day(Date),
}

/// What an earlier copy recorded about a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Known {
    pub size: u64,
    pub mtime: Timestamp,
}

/// The time shown in one LIST line, or `None` when it cannot be told (then the file is dated
/// with MDTM, as always).
pub fn parse(line: &str) -> Option<Shown> {
    let tokens: Vec<&str> = line.split_whitespace().collect();
    parse_posix(&tokens).or_else(|| parse_dos(&tokens))
}

/// `<size> <Mon> <day> <HH:MM | YYYY> <name>`: the first such run of tokens after the mode.
fn parse_posix(tokens: &[&str]) -> Option<Shown> {
    (2..tokens.len().saturating_sub(3)).find_map(|i| {
        if !tokens[i - 1].bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let month = MONTHS
            .iter()
            .position(|m| m.eq_ignore_ascii_case(tokens[i]))?;
        let month = i8::try_from(month + 1).ok()?;
        let day: i8 = tokens[i + 1].parse().ok()?;
        let last = tokens[i + 2];
        if let Some((h, m)) = last.split_once(':') {
            let at = DateTime::from_parts(
                // The year is placed later, against a reference time.
                Date::new(2000, month, day).ok()?,
                Time::new(h.parse().ok()?, m.parse().ok()?, 0, 0).ok()?,
            );
            Some(Shown::Minute { year: None, at })
        } else {
            let year: i16 = last.parse().ok()?;
            Some(Shown::Day(Date::new(year, month, day).ok()?))
        }
    })
}

/// `MM-DD-YY[YY]  HH:MM(AM|PM)  <DIR>|size  name` (IIS and other DOS-style servers).
fn parse_dos(tokens: &[&str]) -> Option<Shown> {
    let (date, time) = (tokens.first()?, tokens.get(1)?);
    let mut parts = date.split('-');
    let month: i8 = parts.next()?.parse().ok()?;
    let day: i8 = parts.next()?.parse().ok()?;
    let year: i16 = parts.next()?.parse().ok()?;
    let year = match year {
        0..=69 => 2000 + year,
        70..=99 => 1900 + year,
        _ => year,
    };
    let upper = time.to_ascii_uppercase();
    let (clock, pm) = match (upper.strip_suffix("PM"), upper.strip_suffix("AM")) {
        (Some(c), _) => (c.to_string(), true),
        (_, Some(c)) => (c.to_string(), false),
        _ => (upper.clone(), false),
    };
    let (h, m) = clock.split_once(':')?;
    let mut hour: i8 = h.parse().ok()?;
    if hour > 12 && (upper.ends_with("AM") || upper.ends_with("PM")) {
        return None;
    }
    if upper.ends_with("AM") || upper.ends_with("PM") {
        hour = hour % 12 + if pm { 12 } else { 0 };
    }
    let at = DateTime::from_parts(
        Date::new(year, month, day).ok()?,
        Time::new(hour, m.parse().ok()?, 0, 0).ok()?,
    );
    Some(Shown::Minute {
        year: Some(year),
        at,
    })
}

/// The minute shown, with its year: given, or the one that puts it nearest to `near` (servers
/// leave the year out only for times within about six months of their clock).
fn minute_near(year: Option<i16>, at: DateTime, near: Timestamp) -> Option<DateTime> {
    if let Some(y) = year {
        return at.with().year(y).build().ok();
    }
    let near_civil = near.to_zoned(jiff::tz::TimeZone::UTC).datetime();
    let y = near_civil.year();
    [y - 1, y, y + 1]
        .into_iter()
        .filter_map(|y| at.with().year(y).build().ok())
        .min_by_key(|c| c.duration_since(near_civil).as_secs().unsigned_abs())
}

fn utc(at: DateTime) -> Option<Timestamp> {
    at.to_zoned(jiff::tz::TimeZone::UTC)
        .ok()
        .map(|z| z.timestamp())
}

/// The UTC times `[start, end)` that LIST would show as `shown`, when that can prove a file
/// unchanged. `offset` is the LIST zone's distance from UTC in seconds; unknown, a minute cannot
/// be placed. A day never proves anything: LIST shows files older than about six months to the
/// day, and a same-size rewrite whose time is set within that day (`touch -d`, `rsync -t`, an
/// archive of an older version unpacked) is ordinary, so such files are dated by MDTM.
pub fn interval(
    shown: Shown,
    offset: Option<i64>,
    now: Timestamp,
) -> Option<(Timestamp, Timestamp)> {
    match shown {
        Shown::Minute { year, at } => {
            let start = utc(minute_near(year, at, now)?)? - SignedDuration::from_secs(offset?);
            Some((start, start + SignedDuration::from_secs(60)))
        }
        Shown::Day(_) => None,
    }
}

/// The LIST zone's offset from UTC, from one file's LIST minute and its MDTM time: a whole
/// number of quarter hours within the range of real zones, or `None` when they do not agree.
pub fn calibrate(shown: Shown, mdtm: Timestamp) -> Option<i64> {
    let Shown::Minute { year, at } = shown else {
        return None;
    };
    let listed = utc(minute_near(year, at, mdtm)?)?;
    let exact = Timestamp::from_second(mdtm.as_second().div_euclid(60) * 60).ok()?;
    let diff = listed.as_second() - exact.as_second();
    (diff % 900 == 0 && diff.abs() <= MAX_ZONE_SECS).then_some(diff)
}

/// Whether a file LIST shows as `shown` with `size` is still the copy recorded in `known`, which
/// was read after `read_after`. `skew` is how far the server's clock may be behind ours: the
/// interval must have ended that long before the copy was read.
pub fn unchanged(
    shown: Shown,
    size: u64,
    known: Known,
    read_after: Timestamp,
    skew: SignedDuration,
    offset: Option<i64>,
    now: Timestamp,
) -> bool {
    let Some((start, end)) = interval(shown, offset, now) else {
        return false;
    };
    size == known.size
        && start <= known.mtime
        && known.mtime < end
        && end.checked_add(skew).is_ok_and(|e| e <= read_after)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().expect("timestamp")
    }

    const HOUR: SignedDuration = SignedDuration::from_secs(3600);

    #[test]
    fn vsftpd_and_pyftpdlib_lines_parse_to_minute_or_day() {
        let recent = parse("-rw-r--r--    1 1000     1000         4096 Dec 04 20:20 a b.txt")
            .expect("recent");
        let Shown::Minute { year: None, at } = recent else {
            panic!("{recent:?}")
        };
        assert_eq!(
            (at.month(), at.day(), at.hour(), at.minute()),
            (12, 4, 20, 20)
        );
        assert_eq!(
            parse("-rw-r--r--   1 owner group    12 Jan  3  2025 old.txt"),
            Some(Shown::Day(Date::new(2025, 1, 3).expect("date")))
        );
        // Without owner and group, and a name that itself looks like a date.
        assert!(matches!(
            parse("-rw-r--r-- 1 12 Mar 9 07:05 Apr 1 2020"),
            Some(Shown::Minute { year: None, .. })
        ));
        assert_eq!(parse("total 12"), None);
    }

    #[test]
    fn dos_lines_parse_with_their_year_and_twelve_hour_clock() {
        let Some(Shown::Minute { year, at }) = parse("12-04-26  08:20PM       1234 a.txt") else {
            panic!("dos")
        };
        assert_eq!(year, Some(2026));
        assert_eq!((at.hour(), at.minute()), (20, 20));
        let Some(Shown::Minute { at, .. }) = parse("01-02-2026  12:05AM  <DIR>  d") else {
            panic!("dos midnight")
        };
        assert_eq!(at.hour(), 0);
    }

    #[test]
    fn a_yearless_minute_takes_the_year_nearest_now() {
        let shown = parse("-rw-r--r-- 1 u g 1 Dec 31 23:59 f").expect("shown");
        let (start, _) = interval(shown, Some(0), ts("2027-01-01T00:00:30Z")).expect("interval");
        assert_eq!(start, ts("2026-12-31T23:59:00Z"));
        // A year-old time never matches a yearless minute placed near now.
        let minute = parse("-rw-r--r-- 1 u g 10 Jan 03 23:30 f").expect("minute");
        let known = Known {
            size: 10,
            mtime: ts("2025-01-03T23:30:00Z"),
        };
        assert!(!unchanged(
            minute,
            10,
            known,
            ts("2026-02-01T00:00:00Z"),
            HOUR,
            Some(0),
            ts("2026-01-10T00:00:00Z")
        ));
    }

    #[test]
    fn the_zone_offset_is_learned_from_one_mdtm() {
        let shown = parse("-rw-r--r-- 1 u g 1 Dec 04 22:20 f").expect("shown");
        assert_eq!(calibrate(shown, ts("2026-12-04T20:20:41Z")), Some(7200));
        assert_eq!(calibrate(shown, ts("2026-12-04T22:20:41Z")), Some(0));
        // Not a whole quarter hour apart: the file changed between LIST and MDTM.
        assert_eq!(calibrate(shown, ts("2026-12-04T22:27:41Z")), None);
        let day = parse("-rw-r--r-- 1 u g 1 Dec 04  2024 f").expect("day");
        assert_eq!(calibrate(day, ts("2024-12-04T20:20:41Z")), None);
    }

    #[test]
    fn a_copy_read_after_the_minute_ended_proves_the_file_unchanged() {
        let shown = parse("-rw-r--r-- 1 u g 10 Dec 04 20:20 f").expect("shown");
        let known = Known {
            size: 10,
            mtime: ts("2026-12-04T20:20:05Z"),
        };
        let now = ts("2026-12-05T03:00:00Z");
        let check = |size, known, read_after: &str, offset| {
            unchanged(shown, size, known, ts(read_after), HOUR, offset, now)
        };
        assert!(check(10, known, "2026-12-04T21:21:00Z", Some(0)));
        // Same minute, but the copy was read before the minute (plus skew) was over: a later
        // change within it would look the same, so MDTM must decide.
        assert!(!check(10, known, "2026-12-04T20:20:30Z", Some(0)));
        assert!(!check(10, known, "2026-12-04T21:20:30Z", Some(0)));
        // Another size, another recorded minute, or no known zone: MDTM decides.
        assert!(!check(11, known, "2026-12-04T23:00:00Z", Some(0)));
        let moved = Known {
            mtime: ts("2026-12-04T20:21:00Z"),
            ..known
        };
        assert!(!check(10, moved, "2026-12-04T23:00:00Z", Some(0)));
        assert!(!check(10, known, "2026-12-04T23:00:00Z", None));
        // A LIST zone two hours ahead shows 22:20 for the same file.
        let ahead = parse("-rw-r--r-- 1 u g 10 Dec 04 22:20 f").expect("ahead");
        assert!(unchanged(
            ahead,
            10,
            known,
            ts("2026-12-04T22:00:00Z"),
            HOUR,
            Some(7200),
            now
        ));
        assert!(!unchanged(
            ahead,
            10,
            known,
            ts("2026-12-04T22:00:00Z"),
            HOUR,
            Some(0),
            now
        ));
    }

    #[test]
    fn a_day_never_proves_a_file_unchanged() {
        let shown = parse("-rw-r--r-- 1 u g 10 Jan 03  2025 f").expect("shown");
        let known = Known {
            size: 10,
            mtime: ts("2025-01-03T09:00:00Z"),
        };
        let now = ts("2026-12-05T03:00:00Z");
        for offset in [None, Some(0), Some(7200)] {
            assert_eq!(interval(shown, offset, now), None);
            assert!(!unchanged(
                shown,
                10,
                known,
                ts("2026-01-01T00:00:00Z"),
                HOUR,
                offset,
                now
            ));
        }
    }
}
