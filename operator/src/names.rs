//! Kubernetes names and label values derived from CR names, within the API's length limits.

use kube::ResourceExt;
use sha2::{Digest, Sha256};

use crate::crd::BackupCustomer;

/// A CronJob's Jobs are named `<cronjob>-<unix minutes>` (11 more characters) and must stay
/// within 63: so CronJob names stay within 52.
pub const CRONJOB_NAME_MAX: usize = 52;
pub const LABEL_VALUE_MAX: usize = 63;
pub const BUCKET_NAME_MAX: usize = 63;

/// `prefix` + `name`, shortened to `max` characters with a stable hash suffix when too long, so
/// two long names never collide.
pub fn bounded(prefix: &str, name: &str, max: usize) -> String {
    let full = format!("{prefix}{name}");
    if full.len() <= max {
        return full;
    }
    let hash = short_hash(name);
    let keep = max.saturating_sub(hash.len() + 1);
    let mut head: String = full.chars().take(keep).collect();
    while head.ends_with(['-', '.']) {
        head.pop();
    }
    format!("{head}-{hash}")
}

fn short_hash(s: &str) -> String {
    let digest = Sha256::digest(s.as_bytes());
    digest.iter().take(4).map(|b| format!("{b:02x}")).collect()
}

pub fn cronjob_name(resource: &str) -> String {
    bounded("backup-", resource, CRONJOB_NAME_MAX)
}

pub fn hot_pvc_name(resource: &str) -> String {
    bounded("hot-", resource, LABEL_VALUE_MAX)
}

/// The Job of a BackupRestore (its pods add a suffix of 6 characters to 63).
pub fn restore_job_name(restore: &str) -> String {
    bounded("restore-", restore, CRONJOB_NAME_MAX)
}

/// The claim a BackupRestore creates from its `pvc.template`.
pub fn restore_pvc_name(restore: &str) -> String {
    bounded("restored-", restore, LABEL_VALUE_MAX)
}

pub fn label_value(value: &str) -> String {
    bounded("", value, LABEL_VALUE_MAX)
}

/// The default bucket of a customer: `unstoppable-<namespace>-<customer>`, a valid S3 name.
pub fn default_bucket(namespace: &str, customer: &str) -> String {
    let raw = format!("{namespace}-{customer}")
        .to_ascii_lowercase()
        .replace('_', "-");
    bounded("unstoppable-", &raw, BUCKET_NAME_MAX)
}

/// Why `name` is not a valid S3 bucket name (AWS rules), if it is not.
pub fn bucket_name_problem(name: &str) -> Option<&'static str> {
    if !(3..=63).contains(&name.len()) {
        return Some("must be 3 to 63 characters long");
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.')
    {
        return Some("may contain only lowercase letters, digits, '.' and '-'");
    }
    let first_last_ok = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric());
    if !first_last_ok(name.chars().next()) || !first_last_ok(name.chars().last()) {
        return Some("must begin and end with a letter or digit");
    }
    if name.contains("..") {
        return Some("must not contain two adjacent periods");
    }
    if name.split('.').count() == 4 && name.split('.').all(|p| p.parse::<u8>().is_ok()) {
        return Some("must not be formatted as an IP address");
    }
    if name.starts_with("xn--") || name.starts_with("sthree-") || name.ends_with("-s3alias") {
        return Some("must not use a prefix or suffix reserved by S3");
    }
    None
}

/// The bucket a customer uses: its spec, or the name derived from its namespace and name
/// (`None` for a customer without a namespace, which the API server never stores).
pub fn bucket_of(customer: &BackupCustomer) -> Option<String> {
    let ns = customer.namespace()?;
    Some(
        customer
            .spec
            .cold_storage
            .bucket
            .clone()
            .unwrap_or_else(|| default_bucket(&ns, &customer.name_any())),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_names_are_kept() {
        assert_eq!(cronjob_name("www"), "backup-www");
        assert_eq!(hot_pvc_name("www"), "hot-www");
    }

    #[test]
    fn long_names_are_cut_with_a_stable_distinct_hash() {
        let a = "a".repeat(253);
        let b = format!("{}b", "a".repeat(252));
        for f in [cronjob_name, hot_pvc_name, label_value] {
            let (x, y) = (f(&a), f(&b));
            assert_ne!(x, y);
            assert_eq!(x, f(&a));
        }
        assert!(cronjob_name(&a).len() <= CRONJOB_NAME_MAX);
        assert!(hot_pvc_name(&a).len() <= LABEL_VALUE_MAX);
        assert!(label_value(&a).len() <= LABEL_VALUE_MAX);
        assert!(!cronjob_name(&format!("{}-x", "a".repeat(44))).contains("--"));
    }

    #[test]
    fn default_buckets_are_valid_names() {
        assert_eq!(default_bucket("team-a", "acme"), "unstoppable-team-a-acme");
        let long = default_bucket(&"n".repeat(63), &"c".repeat(253));
        assert_eq!(bucket_name_problem(&long), None, "{long}");
        assert_eq!(
            bucket_name_problem("Acme"),
            Some("may contain only lowercase letters, digits, '.' and '-'")
        );
        assert!(bucket_name_problem("ab").is_some());
        assert!(bucket_name_problem("192.168.1.1").is_some());
        assert!(bucket_name_problem("a..b").is_some());
        assert!(bucket_name_problem("-ab").is_some());
    }
}
