//! Configuration: a YAML file, overridden by `.env`, overridden by the environment.

use std::path::Path;

use globset::Glob;
use serde_json::{Map, Value};
use unstoppable_contract::{ConfigKey, FtpsConfig, JobConfig, KeyKind, S3Config, CONFIG_KEYS};

/// Ten years: more than any clock is off, and small enough for time arithmetic.
const MAX_CLOCK_SKEW_SECS: u64 = 10 * 365 * 86_400;

/// A configuration problem: which key, what is wrong, and how to fix it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("configuration key `{key}`{env}: {problem}")]
pub struct ConfigError {
    pub key: String,
    env: String,
    pub problem: String,
}

impl ConfigError {
    pub fn new(key: &str, problem: impl Into<String>) -> Self {
        let env = CONFIG_KEYS
            .iter()
            .find(|k| k.path == key)
            .map(|k| format!(" (env {})", k.env_name()))
            .unwrap_or_default();
        Self {
            key: key.to_string(),
            env,
            problem: problem.into(),
        }
    }
}

/// Why the configuration could not be loaded: a problem of the configuration itself (exit code
/// 2, the same next time), or the credentials could not be read from Infisical (the run failed).
#[derive(Debug)]
pub enum LoadError {
    Config(ConfigError),
    Secrets {
        /// The error with the configuration key to check.
        message: String,
        /// Where the run's summary goes, from the configuration that was read.
        summary_path: String,
    },
}

/// Loads the configuration: the YAML file, overridden by the environment (`env` looks variables
/// up, after `.env` was applied), parsed once into the typed configuration and checked; then the
/// credentials it lacks are read from Infisical when `infisical.*` is set, and every credential
/// must be present.
pub async fn load(
    file: Option<&Path>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<JobConfig, LoadError> {
    let mut config = parse(file, env).map_err(LoadError::Config)?;
    validate(&config).map_err(LoadError::Config)?;
    if let Some(infisical) = config.infisical.clone() {
        crate::secrets::fill_from_infisical(&mut config, &infisical)
            .await
            .map_err(|e| LoadError::Secrets {
                message: crate::secrets::explain(&e),
                summary_path: config.summary_path.clone(),
            })?;
    }
    require_credentials(&config).map_err(LoadError::Config)?;
    Ok(config)
}

/// [`load`] for a configuration that holds its credentials itself (no Infisical is asked).
pub fn load_local(
    file: Option<&Path>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<JobConfig, ConfigError> {
    let config = parse(file, env)?;
    validate(&config)?;
    require_credentials(&config)?;
    Ok(config)
}

/// The YAML file with the environment applied, as the typed configuration (credentials may still
/// be missing).
fn parse(
    file: Option<&Path>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<JobConfig, ConfigError> {
    let mut value = match file {
        Some(path) => read_yaml(path)?,
        None => Value::Object(Map::new()),
    };
    for key in CONFIG_KEYS {
        if let Some(raw) = env(&key.env_name()) {
            set_path(&mut value, key.path, env_value(key, &raw)?);
        }
    }
    deserialize_at(value, "")
}

/// Deserialises `value`; errors name the key (`prefix` is where `value` sits in the config).
pub fn deserialize_at<T: serde::de::DeserializeOwned>(
    value: Value,
    prefix: &str,
) -> Result<T, ConfigError> {
    serde_path_to_error::deserialize(value).map_err(|err| {
        let at = err.path().to_string();
        let at = match (prefix.is_empty(), at.as_str()) {
            (true, _) => at,
            (false, "" | ".") => prefix.to_string(),
            (false, _) => format!("{prefix}.{at}"),
        };
        let inner = err.into_inner().to_string();
        let key = missing_field_key(&at, &inner).unwrap_or(at);
        let problem = if inner.starts_with("missing field") {
            "is missing; set it in the config file or the environment".to_string()
        } else {
            inner
        };
        ConfigError::new(&key, problem)
    })
}

fn read_yaml(path: &Path) -> Result<Value, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        ConfigError::new(
            "--config",
            format!(
                "cannot read {}: {e}; pass an existing YAML file",
                path.display()
            ),
        )
    })?;
    if text.trim().is_empty() {
        return Ok(Value::Object(Map::new()));
    }
    let value: Value = serde_saphyr::from_str(&text).map_err(|e| {
        ConfigError::new(
            "--config",
            format!("{} is not valid YAML: {e}", path.display()),
        )
    })?;
    match value {
        Value::Object(_) => Ok(value),
        Value::Null => Ok(Value::Object(Map::new())),
        _ => Err(ConfigError::new(
            "--config",
            format!("{} must hold a mapping of keys", path.display()),
        )),
    }
}

fn env_value(key: &ConfigKey, raw: &str) -> Result<Value, ConfigError> {
    let bad = |what: &str| ConfigError::new(key.path, format!("`{raw}` is not {what}"));
    Ok(match key.kind {
        KeyKind::Text => Value::String(raw.to_string()),
        KeyKind::Number => Value::Number(
            raw.trim()
                .parse::<u64>()
                .map_err(|_| bad("a whole non-negative number"))?
                .into(),
        ),
        KeyKind::Bool => match raw.trim().to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" => Value::Bool(true),
            "false" | "0" | "no" | "" => Value::Bool(false),
            _ => return Err(bad("true or false")),
        },
        // A JSON array when it starts with `[` (globs may contain commas), else comma-separated.
        KeyKind::List if raw.trim_start().starts_with('[') => {
            let items: Vec<String> =
                serde_json::from_str(raw).map_err(|_| bad("a JSON array of strings"))?;
            Value::Array(items.into_iter().map(Value::String).collect())
        }
        KeyKind::List => Value::Array(
            raw.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|s| Value::String(s.to_string()))
                .collect(),
        ),
    })
}

/// Sets the value at a dotted `path`, creating the mappings on the way.
fn set_path(root: &mut Value, path: &str, value: Value) {
    let mut node = root;
    let mut parts = path.split('.').peekable();
    while let Some(part) = parts.next() {
        if !node.is_object() {
            *node = Value::Object(Map::new());
        }
        let Value::Object(map) = node else { return };
        if parts.peek().is_none() {
            map.insert(part.to_string(), value);
            return;
        }
        node = map
            .entry(part.to_string())
            .or_insert_with(|| Value::Object(Map::new()));
    }
}

/// serde reports a missing field at its parent; name the field itself.
fn missing_field_key(at: &str, message: &str) -> Option<String> {
    let field = message.strip_prefix("missing field `")?.split('`').next()?;
    Some(if at.is_empty() || at == "." {
        field.to_string()
    } else {
        format!("{at}.{field}")
    })
}

fn validate(config: &JobConfig) -> Result<(), ConfigError> {
    require_name("customer", &config.customer)?;
    crate::retention::keep_options(&config.retention)?;
    if let Some(days) = config.s3.as_ref().and_then(|s| s.object_lock_days) {
        let prune = config.maintenance.prune_interval_days;
        if u64::from(days) <= 2 * u64::from(prune) {
            return Err(ConfigError::new(
                "s3.object_lock_days",
                format!(
                    "{days} is not more than twice maintenance.prune_interval_days ({prune}): a lock could run out before the next prune extends it; prune more often or lock longer"
                ),
            ));
        }
    }
    require_name("resource", &config.resource)?;
    if let Some(ftps) = &config.ftps {
        validate_ftps(ftps, "ftps")?;
    }
    if let Some(ftps) = config.restore.as_ref().and_then(|r| r.ftps.as_ref()) {
        validate_ftps(&ftps.to_ftps(config.ftps.as_ref()), "restore.ftps")?;
    }
    if let Some(s3) = config.restore.as_ref().and_then(|r| r.s3.as_ref()) {
        validate_s3(&s3.to_s3(), "restore.s3")?;
    }
    let repo = &config.repository;
    if repo.hot_dir.trim().is_empty() {
        return Err(ConfigError::new(
            "repository.hot_dir",
            "is empty; set the local directory for repository metadata",
        ));
    }
    match (&repo.cold_dir, &config.s3) {
        (Some(_), Some(_)) => {
            return Err(ConfigError::new(
                "repository.cold_dir",
                "is set together with s3.*; keep one cold storage",
            ))
        }
        (None, None) => {
            return Err(ConfigError::new(
                "s3.endpoint",
                "is missing; configure s3.* (or repository.cold_dir for local development)",
            ))
        }
        (None, Some(s3)) => validate_s3(s3, "s3")?,
        (Some(_), None) => {}
    }
    Ok(())
}

/// Every credential the run needs is set (by the file, the environment or Infisical).
fn require_credentials(config: &JobConfig) -> Result<(), ConfigError> {
    let mut needed = vec![("repository.password", config.repository.password.is_empty())];
    if let Some(ftps) = &config.ftps {
        needed.push(("ftps.username", ftps.username.is_empty()));
        needed.push(("ftps.password", ftps.password.is_empty()));
    }
    if let Some(s3) = &config.s3 {
        needed.push(("s3.access_key_id", s3.access_key_id.is_empty()));
        needed.push(("s3.secret_access_key", s3.secret_access_key.is_empty()));
    }
    if let Some(ftps) = config.restore.as_ref().and_then(|r| r.ftps.as_ref()) {
        needed.push(("restore.ftps.username", ftps.username.is_empty()));
        needed.push(("restore.ftps.password", ftps.password.is_empty()));
    }
    if let Some(s3) = config.restore.as_ref().and_then(|r| r.s3.as_ref()) {
        needed.push(("restore.s3.access_key_id", s3.access_key_id.is_empty()));
        needed.push((
            "restore.s3.secret_access_key",
            s3.secret_access_key.is_empty(),
        ));
    }
    match needed.into_iter().find(|(_, missing)| *missing) {
        Some((key, _)) => Err(ConfigError::new(
            key,
            "is missing; set it in the config file or the environment (or configure infisical.*)",
        )),
        None => Ok(()),
    }
}

fn validate_s3(s3: &S3Config, prefix: &str) -> Result<(), ConfigError> {
    if !(s3.endpoint.starts_with("http://") || s3.endpoint.starts_with("https://")) {
        return Err(ConfigError::new(
            &format!("{prefix}.endpoint"),
            format!("`{}` must be an http:// or https:// URL", s3.endpoint),
        ));
    }
    let len_ok = (3..=63).contains(&s3.bucket.len());
    let chars_ok = s3
        .bucket
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.');
    if !len_ok || !chars_ok {
        return Err(ConfigError::new(
            &format!("{prefix}.bucket"),
            format!(
                "`{}` is not a valid bucket name; use 3-63 lowercase letters, digits, '-' or '.'",
                s3.bucket
            ),
        ));
    }
    Ok(())
}

/// `prefix` is where the section sits (`ftps`, `restore.ftps`), for the keys errors name.
fn validate_ftps(ftps: &FtpsConfig, prefix: &str) -> Result<(), ConfigError> {
    let key = |k: &str| format!("{prefix}.{k}");
    if ftps.host.trim().is_empty() {
        return Err(ConfigError::new(
            &key("host"),
            "is empty; set the FTPS server's host name",
        ));
    }
    if ftps.port == 0 {
        return Err(ConfigError::new(
            &key("port"),
            "must be between 1 and 65535",
        ));
    }
    if !ftps.path.starts_with('/') {
        return Err(ConfigError::new(
            &key("path"),
            format!("`{}` must be an absolute path such as /data", ftps.path),
        ));
    }
    if !(1..=64).contains(&ftps.max_connections) {
        return Err(ConfigError::new(
            &key("max_connections"),
            "must be between 1 and 64",
        ));
    }
    if ftps.timeout_secs == 0 {
        return Err(ConfigError::new(&key("timeout_secs"), "must be at least 1"));
    }
    if ftps.clock_skew_secs > MAX_CLOCK_SKEW_SECS {
        return Err(ConfigError::new(
            &key("clock_skew_secs"),
            format!("must be at most {MAX_CLOCK_SKEW_SECS} (ten years, which dates every file with MDTM)"),
        ));
    }
    if ftps.insecure_skip_verify && ftps.ca_file.is_some() {
        return Err(ConfigError::new(
            &key("insecure_skip_verify"),
            format!("cannot be combined with {prefix}.ca_file; remove one of them"),
        ));
    }
    for (name, globs) in [("include", &ftps.include), ("exclude", &ftps.exclude)] {
        for glob in globs {
            Glob::new(glob).map_err(|e| ConfigError::new(&key(name), format!("`{glob}`: {e}")))?;
        }
    }
    Ok(())
}

fn require_name(key: &str, value: &str) -> Result<(), ConfigError> {
    let ok = !value.is_empty()
        && value.len() <= 253
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
        && !value.starts_with('.');
    if ok {
        Ok(())
    } else {
        Err(ConfigError::new(
            key,
            format!("`{value}` must be 1-253 characters of letters, digits, '-', '_' or '.'"),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| map.get(k).cloned()
    }

    const BASE: &[(&str, &str)] = &[
        ("UNSTOPPABLE_CUSTOMER", "acme"),
        ("UNSTOPPABLE_RESOURCE", "www"),
        ("UNSTOPPABLE_REPOSITORY_HOT_DIR", "/hot"),
        ("UNSTOPPABLE_REPOSITORY_COLD_DIR", "/cold"),
        ("UNSTOPPABLE_REPOSITORY_PASSWORD", "pw"),
        ("UNSTOPPABLE_FTPS_HOST", "ftp.example.org"),
        ("UNSTOPPABLE_FTPS_USERNAME", "u"),
        ("UNSTOPPABLE_FTPS_PASSWORD", "p"),
    ];

    fn with(extra: &[(&'static str, &'static str)]) -> Vec<(&'static str, &'static str)> {
        let mut v: Vec<_> = BASE
            .iter()
            .copied()
            .filter(|(k, _)| !extra.iter().any(|(e, _)| e == k))
            .collect();
        v.extend_from_slice(extra);
        v
    }

    #[test]
    fn environment_alone_is_enough_and_defaults_apply() {
        let cfg = load_local(None, &env_of(BASE)).expect("valid");
        let ftps = cfg.ftps.expect("ftps set");
        assert_eq!(ftps.port, 21);
        assert_eq!(ftps.max_connections, 4);
        assert_eq!(ftps.path, "/");
        assert_eq!(cfg.summary_path, "/dev/termination-log");
    }

    #[test]
    fn environment_wins_over_the_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("job.yaml");
        std::fs::write(
            &file,
            "ftps:\n  host: from-file\n  port: 2121\n  include: [\"*.sql\"]\n",
        )
        .expect("write");
        let cfg = load_local(Some(&file), &env_of(BASE)).expect("valid");
        let ftps = cfg.ftps.expect("ftps");
        assert_eq!(ftps.host, "ftp.example.org");
        assert_eq!(ftps.port, 2121);
        assert_eq!(ftps.include, vec!["*.sql".to_string()]);
    }

    #[test]
    fn missing_key_is_named_with_its_variable() {
        let env: Vec<_> = BASE
            .iter()
            .copied()
            .filter(|(k, _)| *k != "UNSTOPPABLE_FTPS_USERNAME")
            .collect();
        let err = load_local(None, &env_of(&env)).expect_err("invalid");
        assert_eq!(err.key, "ftps.username");
        assert!(
            err.to_string().contains("UNSTOPPABLE_FTPS_USERNAME"),
            "{err}"
        );
    }

    #[test]
    fn bad_values_name_the_key() {
        let cases: &[(&[(&str, &str)], &str)] = &[
            (&[("UNSTOPPABLE_FTPS_PORT", "twenty")], "ftps.port"),
            (&[("UNSTOPPABLE_FTPS_PORT", "70000")], "ftps.port"),
            (&[("UNSTOPPABLE_FTPS_PATH", "data")], "ftps.path"),
            (
                &[("UNSTOPPABLE_FTPS_MAX_CONNECTIONS", "0")],
                "ftps.max_connections",
            ),
            (&[("UNSTOPPABLE_FTPS_EXCLUDE", "a[")], "ftps.exclude"),
            (
                &[("UNSTOPPABLE_FTPS_INSECURE_SKIP_VERIFY", "maybe")],
                "ftps.insecure_skip_verify",
            ),
            (&[("UNSTOPPABLE_RESOURCE", "a/b")], "resource"),
            (
                &[
                    ("UNSTOPPABLE_S3_ENDPOINT", "http://s3"),
                    ("UNSTOPPABLE_S3_BUCKET", "bb"),
                    ("UNSTOPPABLE_S3_ACCESS_KEY_ID", "k"),
                    ("UNSTOPPABLE_S3_SECRET_ACCESS_KEY", "s"),
                ],
                "repository.cold_dir",
            ),
        ];
        for (extra, key) in cases {
            let err = load_local(None, &env_of(&with(extra))).expect_err(key);
            assert_eq!(&err.key, key, "{err}");
        }
    }

    #[test]
    fn a_bad_configuration_is_reported_before_infisical_is_asked() {
        // Nothing listens on port 9: asking Infisical would fail the run, not the configuration.
        let env: Vec<_> = with(&[
            ("UNSTOPPABLE_FTPS_PORT", "0"),
            ("UNSTOPPABLE_INFISICAL_SITE_URL", "http://127.0.0.1:9"),
            ("UNSTOPPABLE_INFISICAL_CLIENT_ID", "id"),
            ("UNSTOPPABLE_INFISICAL_CLIENT_SECRET", "secret"),
            ("UNSTOPPABLE_INFISICAL_PROJECT_ID", "p"),
            ("UNSTOPPABLE_INFISICAL_ENVIRONMENT", "prod"),
        ])
        .into_iter()
        .filter(|(k, _)| *k != "UNSTOPPABLE_FTPS_PASSWORD")
        .collect();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        match runtime.block_on(load(None, &env_of(&env))) {
            Err(LoadError::Config(e)) => assert_eq!(e.key, "ftps.port", "{e}"),
            other => panic!("expected a configuration error, got {other:?}"),
        }
        // Once the configuration is right, the missing password is Infisical's to give.
        let env: Vec<_> = env
            .into_iter()
            .filter(|(k, _)| *k != "UNSTOPPABLE_FTPS_PORT")
            .collect();
        match runtime.block_on(load(None, &env_of(&env))) {
            Err(LoadError::Secrets { summary_path, .. }) => {
                assert_eq!(summary_path, "/dev/termination-log")
            }
            other => panic!("expected Infisical to be asked, got {other:?}"),
        }
    }

    #[test]
    fn lists_come_comma_separated_or_as_json_arrays() {
        let env = with(&[
            ("UNSTOPPABLE_FTPS_INCLUDE", "*.sql, *.gz"),
            ("UNSTOPPABLE_FTPS_EXCLUDE", r#"["{a,b}/**", "c"]"#),
        ]);
        let ftps = load_local(None, &env_of(&env))
            .expect("valid")
            .ftps
            .expect("ftps");
        assert_eq!(ftps.include, vec!["*.sql", "*.gz"]);
        assert_eq!(ftps.exclude, vec!["{a,b}/**", "c"]);
    }

    #[test]
    fn unknown_file_keys_are_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("job.yaml");
        std::fs::write(&file, "ftps:\n  hots: typo\n").expect("write");
        let err = load_local(Some(&file), &env_of(BASE)).expect_err("invalid");
        assert!(err.to_string().contains("hots"), "{err}");
    }

    #[test]
    fn the_readme_documents_every_key() {
        let readme = include_str!("../../README.md");
        for key in CONFIG_KEYS {
            let row = format!("| `{}` | `{}` |", key.path, key.env_name());
            assert!(
                readme.contains(&row),
                "README lacks the row for {}",
                key.path
            );
        }
    }

    #[test]
    fn s3_bucket_rules_are_checked() {
        let env: Vec<_> = BASE
            .iter()
            .copied()
            .filter(|(k, _)| *k != "UNSTOPPABLE_REPOSITORY_COLD_DIR")
            .chain([
                ("UNSTOPPABLE_S3_ENDPOINT", "http://127.0.0.1:8333"),
                ("UNSTOPPABLE_S3_BUCKET", "Bad_Bucket"),
                ("UNSTOPPABLE_S3_ACCESS_KEY_ID", "k"),
                ("UNSTOPPABLE_S3_SECRET_ACCESS_KEY", "s"),
            ])
            .collect();
        let err = load_local(None, &env_of(&env)).expect_err("invalid");
        assert_eq!(err.key, "s3.bucket");
    }
}
