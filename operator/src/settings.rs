//! Operator-wide settings that shape every rendered object. The operator's command line fills
//! them (see `main.rs`); the defaults both share are written here once.

/// Pull policy of the job image when none is given.
pub const DEFAULT_PULL_POLICY: &str = "IfNotPresent";
/// Size of a hot PVC when neither the customer nor the resource sets one.
pub const DEFAULT_HOT_SIZE: &str = "1Gi";

/// Operator-wide settings that shape every rendered object.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// The job image, e.g. `ghcr.io/unstoppable-dev/unstoppable-job:0.1.0`.
    pub job_image: String,
    pub image_pull_policy: String,
    pub default_storage_class: Option<String>,
    pub default_hot_size: String,
    /// How late a missed schedule may still start.
    pub starting_deadline_seconds: i64,
    pub default_deadline_seconds: i64,
    /// Extra attempts of a failed run (a bad configuration, exit code 2, is never retried).
    pub backoff_limit: i32,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            job_image: "ghcr.io/unstoppable-dev/unstoppable-job:latest".into(),
            image_pull_policy: DEFAULT_PULL_POLICY.into(),
            default_storage_class: None,
            default_hot_size: DEFAULT_HOT_SIZE.into(),
            starting_deadline_seconds: 3600,
            default_deadline_seconds: 6 * 3600,
            backoff_limit: 1,
        }
    }
}
