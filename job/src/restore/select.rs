//! Which snapshot a restore reads: `latest`, an id, or the newest one at or before a time. Pure
//! over the resource's snapshot list.

use jiff::Timestamp;
use rustic_core::repofile::SnapshotFile;

/// The snapshot asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Which {
    Latest,
    /// An id or a unique prefix of one.
    Id(String),
    /// The newest snapshot taken at or before this time.
    AsOf(Timestamp),
}

impl Which {
    /// `latest` or an id, as the command line and the configuration write them.
    pub fn parse(text: &str) -> Self {
        match text.trim() {
            "" | "latest" => Self::Latest,
            id => Self::Id(id.to_string()),
        }
    }
}

const NO_SNAPSHOTS: &str = "the repository has no snapshot of this resource; if snapshots were deleted from a versioned bucket, `snapshots --as-of <time>` shows what it had then and `recover --as-of <time>` brings that back";

/// Picks from `snapshots` (this resource's). An `incomplete` snapshot counts like any other: it
/// holds the newest copy of everything that could be read (a restore that deletes refuses it).
pub fn choose<'a>(
    snapshots: &'a [SnapshotFile],
    which: &Which,
) -> Result<&'a SnapshotFile, String> {
    match which {
        Which::Latest => snapshots
            .iter()
            .max_by_key(|sn| sn.time.timestamp())
            .ok_or_else(|| NO_SNAPSHOTS.to_string()),
        Which::AsOf(at) => snapshots
            .iter()
            .filter(|sn| sn.time.timestamp() <= *at)
            .max_by_key(|sn| sn.time.timestamp())
            .ok_or_else(
                || match snapshots.iter().map(|sn| sn.time.timestamp()).min() {
                    Some(first) => {
                        format!("no snapshot at or before {at}; the first one is from {first}")
                    }
                    None => NO_SNAPSHOTS.to_string(),
                },
            ),
        Which::Id(prefix) => {
            let prefix = prefix.to_ascii_lowercase();
            let mut found = snapshots
                .iter()
                .filter(|sn| sn.id.to_hex().starts_with(prefix.as_str()));
            match (found.next(), found.next()) {
                (Some(sn), None) => Ok(sn),
                (Some(_), Some(_)) => Err(format!(
                    "snapshot id `{prefix}` is ambiguous: give more of its characters"
                )),
                (None, _) => Err(format!(
                    "no snapshot of this resource has the id `{prefix}`; `unstoppable-job snapshots` lists them"
                )),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustic_core::repofile::SnapshotFile;
    use rustic_core::StringList;

    fn snap(secs: i64, incomplete: bool) -> SnapshotFile {
        let mut sn = SnapshotFile {
            time: Timestamp::from_second(secs)
                .expect("time")
                .to_zoned(jiff::tz::TimeZone::UTC),
            id: rustic_core::Id::random().into(),
            ..Default::default()
        };
        if incomplete {
            sn.tags
                .add_all(vec!["incomplete".parse::<StringList>().expect("tag")]);
        }
        sn
    }

    #[test]
    fn latest_and_as_of_take_the_newest_at_or_before() {
        let snaps = vec![snap(100, false), snap(200, false), snap(300, true)];
        let latest = choose(&snaps, &Which::Latest).expect("latest");
        assert_eq!(
            latest.time.timestamp().as_second(),
            300,
            "incomplete ones count"
        );
        let at = |s| Which::AsOf(Timestamp::from_second(s).expect("t"));
        let sn = choose(&snaps, &at(150)).expect("as of");
        assert_eq!(sn.time.timestamp().as_second(), 100);
        let sn = choose(&snaps, &at(200)).expect("at the time itself");
        assert_eq!(sn.time.timestamp().as_second(), 200);
        let err = choose(&snaps, &at(50)).unwrap_err();
        assert!(err.contains("the first one is from"), "{err}");
        let err = choose(&[], &Which::Latest).unwrap_err();
        assert!(err.contains("recover --as-of"), "{err}");
    }

    #[test]
    fn an_id_prefix_names_one_snapshot() {
        let snaps = vec![snap(100, false), snap(300, true)];
        let id = snaps[1].id.to_hex().to_string();
        let sn = choose(&snaps, &Which::parse(&id[..8])).expect("by prefix");
        assert_eq!(sn.id, snaps[1].id);
        let err = choose(&snaps, &Which::Id("zz".into())).unwrap_err();
        assert!(err.contains("snapshots` lists them"), "{err}");
        let err = choose(&snaps, &Which::Id(String::new())).unwrap_err();
        assert!(err.contains("ambiguous"), "{err}");
    }
}
