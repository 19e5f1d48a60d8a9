//! Whether a directory listing is complete (pure). A listing counts as complete only when the
//! server gave no sign of the contrary: servers that cut listings say so only in the text of the
//! transfer-complete reply (pure-ftpd: `226 Output truncated to 10000 matches`; glob failures:
//! `226-Out of memory during globbing of …`), with a success code.

use std::collections::HashSet;

use super::listing::RemoteEntry;

/// Words in a transfer-complete reply that say the listing is not whole. Deliberately broad: a
/// false alarm marks one directory as unreadable (the run says so), a miss loses files silently.
const CAVEATS: [&str; 10] = [
    "truncat",
    "too many",
    "limit",
    "globbing",
    "out of memory",
    "permission denied",
    "read error",
    "incomplete",
    "partial",
    "aborted",
];

/// Why the listing of `dir` cannot be trusted as complete, or `None` when it can. `reply` is the
/// full text of the transfer-complete reply, `lines` the number of lines the server sent.
pub fn caveat(dir: &str, reply: &str, lines: usize) -> Option<String> {
    let lower = reply.to_ascii_lowercase();
    let quoted = reply.split_whitespace().collect::<Vec<_>>().join(" ");
    if CAVEATS.iter().any(|c| lower.contains(c)) {
        let hint = if lower.contains("truncat") || lower.contains("limit") {
            "; the server caps listings: raise its limit (pure-ftpd: `-L`/`LimitRecursion`, \
             ProFTPD: `ListOptions maxFiles`) above the number of entries in this directory"
        } else {
            ""
        };
        return Some(format!(
            "the listing of `{dir}` is incomplete: the server replied {quoted:?}{hint}"
        ));
    }
    // pure-ftpd (and others) end with the number of entries sent: cross-check it.
    if let Some(total) = announced_total(&lower) {
        if total != lines {
            return Some(format!(
                "the listing of `{dir}` is inconsistent: the server announced {total} entries \
                 but sent {lines} ({quoted:?})"
            ));
        }
    }
    None
}

/// `N` from "... N matches total".
fn announced_total(lower: &str) -> Option<usize> {
    let before = lower.split(" matches total").next()?;
    if before.len() == lower.len() {
        return None;
    }
    before.split_whitespace().last()?.parse().ok()
}

/// A name listed twice: the listing is not a consistent picture of one directory.
pub fn duplicate(entries: &[RemoteEntry]) -> Option<&str> {
    let mut seen = HashSet::with_capacity(entries.len());
    entries
        .iter()
        .find(|e| !seen.insert(e.name.as_str()))
        .map(|e| e.name.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ftps::listing::Kind;

    #[test]
    fn ordinary_replies_of_the_servers_we_test_are_complete() {
        for reply in [
            "226 Directory send OK.",                    // vsftpd
            "226 Transfer complete.",                    // pyftpdlib
            "226 4 matches total",                       // pure-ftpd, MLSD
            "226-Options: -a -l\n226 4 matches total",   // pure-ftpd, LIST -a
            "226 Closing data connection, sent 4 bytes", // libunftp style
            "250 Transfer complete",
        ] {
            assert_eq!(caveat("/d", reply, 4), None, "{reply}");
        }
    }

    #[test]
    fn truncation_and_glob_errors_are_caught_and_name_the_setting() {
        let t = caveat("/big", "226 Output truncated to 10000 matches", 10000).expect("caught");
        assert!(t.contains("`/big`") && t.contains("-L"), "{t}");
        let g = caveat(
            "/big",
            "226-Out of memory during globbing of f*\n226-(This probably means \"Permission denied\")\n226-Options: -a -l\n226 0 matches total",
            0,
        )
        .expect("caught");
        assert!(g.contains("globbing"), "{g}");
        assert!(caveat("/d", "226 Too many files, listing cut", 3).is_some());
    }

    #[test]
    fn an_announced_count_that_differs_from_the_lines_received_is_inconsistent() {
        let c = caveat("/d", "226 255 matches total", 254).expect("caught");
        assert!(c.contains("announced 255") && c.contains("sent 254"), "{c}");
        assert_eq!(caveat("/d", "226 255 matches total", 255), None);
    }

    #[test]
    fn duplicate_names_are_found() {
        let e = |name: &str| RemoteEntry {
            name: name.into(),
            kind: Kind::File,
            size: 0,
            mtime: None,
            shown: None,
        };
        assert_eq!(duplicate(&[e("a"), e("b")]), None);
        assert_eq!(duplicate(&[e("a"), e("b"), e("a")]), Some("a"));
    }
}
