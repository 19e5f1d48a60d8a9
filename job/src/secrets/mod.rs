//! Credentials at run time: when `infisical.*` is configured, every credential the configuration
//! does not already hold (from the file or the environment) is read from Infisical.

use std::collections::HashMap;

use serde_json::Value;
use unstoppable_contract::InfisicalConfig;

use crate::config::{deserialize_at, get_path, set_path, ConfigError};
pub use unstoppable_infisical::{Folder, Infisical, SecretsError};

/// Which configuration key each Infisical secret fills, and when that key is needed.
fn wanted(cfg: &InfisicalConfig, value: &Value) -> Vec<(&'static str, String, bool)> {
    let has = |section: &str| get_path(value, section).is_some();
    vec![
        ("ftps.username", cfg.ftps_username_key.clone(), has("ftps")),
        ("ftps.password", cfg.ftps_password_key.clone(), has("ftps")),
        (
            "repository.password",
            cfg.repository_password_key.clone(),
            true,
        ),
        (
            "s3.access_key_id",
            cfg.s3_access_key_id_key.clone(),
            has("s3"),
        ),
        (
            "s3.secret_access_key",
            cfg.s3_secret_access_key_key.clone(),
            has("s3"),
        ),
    ]
}

/// The Infisical settings, when configured.
pub fn infisical_settings(value: &Value) -> Result<Option<InfisicalConfig>, ConfigError> {
    match get_path(value, "infisical") {
        None => Ok(None),
        Some(v) => deserialize_at(v.clone(), "infisical").map(Some),
    }
}

/// Fills the unset credentials of `value` from `secrets` (secret name -> value). A credential that
/// is needed but neither set nor in Infisical is an error naming the secret.
pub fn fill(
    value: &mut Value,
    cfg: &InfisicalConfig,
    secrets: &HashMap<String, String>,
) -> Result<(), SecretsError> {
    for (path, name, needed) in wanted(cfg, value) {
        // Set already, or for a section this run does not use (no `s3` with a local cold_dir).
        if !needed || get_path(value, path).is_some() {
            continue;
        }
        match secrets.get(&name) {
            Some(secret) => set_path(value, path, Value::String(secret.clone())),
            None => {
                return Err(SecretsError::Missing {
                    name,
                    key: path,
                    location: format!(
                        "project {} environment {} path {}",
                        cfg.project_id, cfg.environment, cfg.secret_path
                    ),
                })
            }
        }
    }
    Ok(())
}

/// The error as the job's user reads it: what happened, then which configuration key to check.
pub fn explain(e: &SecretsError) -> String {
    let hint = match e {
        SecretsError::Unreachable { .. } => "check infisical.site_url and the network".to_string(),
        SecretsError::Login(_) => "check infisical.client_id/client_secret".to_string(),
        SecretsError::Denied { .. } => "give the machine identity read access".to_string(),
        SecretsError::NotFound { .. } => {
            "check infisical.project_id/environment/secret_path".to_string()
        }
        SecretsError::Missing { key, .. } => {
            format!("add it, or set infisical.{}_key", key.replace('.', "_"))
        }
        SecretsError::RateLimited { .. } => "the next run tries again".to_string(),
        SecretsError::Protocol(_) => "check infisical.site_url".to_string(),
    };
    format!("{e}; {hint}")
}

/// Reads the credentials from Infisical into `value` (only those not set already).
pub async fn fill_from_infisical(
    value: &mut Value,
    cfg: &InfisicalConfig,
) -> Result<(), SecretsError> {
    let names: Vec<String> = wanted(cfg, value)
        .into_iter()
        .filter(|(path, _, needed)| *needed && get_path(value, path).is_none())
        .map(|(_, name, _)| name)
        .collect();
    if names.is_empty() {
        return Ok(());
    }
    let client = Infisical::new(
        &cfg.site_url,
        cfg.client_id.clone(),
        cfg.client_secret.clone(),
    )?;
    let folder = Folder {
        project: &cfg.project_id,
        environment: &cfg.environment,
        path: &cfg.secret_path,
    };
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let secrets = client.secrets(folder, &names).await?;
    fill(value, cfg, &secrets)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn cfg() -> InfisicalConfig {
        let v = json!({"site_url": "http://i", "client_id": "c", "client_secret": "s", "project_id": "p", "environment": "prod"});
        deserialize_at(v, "infisical").expect("valid")
    }

    #[test]
    fn unset_credentials_are_filled_and_set_ones_win() {
        let mut value = json!({"ftps": {"host": "h", "password": "from-env"}, "repository": {}, "s3": {"bucket": "b"}});
        let secrets: HashMap<String, String> = [
            ("FTP_USERNAME", "user"),
            ("FTP_PASSWORD", "from-infisical"),
            ("REPOSITORY_PASSWORD", "repo"),
            ("S3_ACCESS_KEY_ID", "ak"),
            ("S3_SECRET_ACCESS_KEY", "sk"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        fill(&mut value, &cfg(), &secrets).expect("filled");
        assert_eq!(value["ftps"]["username"], "user");
        assert_eq!(value["ftps"]["password"], "from-env");
        assert_eq!(value["repository"]["password"], "repo");
        assert_eq!(value["s3"]["secret_access_key"], "sk");
    }

    #[test]
    fn a_needed_secret_that_is_missing_is_named() {
        let mut value = json!({"ftps": {"host": "h"}});
        let secrets = HashMap::from([("FTP_USERNAME".to_string(), "u".to_string())]);
        let err = fill(&mut value, &cfg(), &secrets).expect_err("missing");
        let text = err.to_string();
        assert!(
            text.contains("FTP_PASSWORD") && text.contains("project p"),
            "{text}"
        );
        // S3 keys are neither needed nor added without an s3 section.
        let mut local = json!({"repository": {"cold_dir": "/c"}});
        let secrets = HashMap::from([
            ("REPOSITORY_PASSWORD".to_string(), "r".to_string()),
            ("S3_ACCESS_KEY_ID".to_string(), "k".to_string()),
        ]);
        fill(&mut local, &cfg(), &secrets).expect("no s3 needed");
        assert!(local.get("s3").is_none(), "{local}");
    }

    #[test]
    fn bad_infisical_settings_name_the_key() {
        let err = infisical_settings(&json!({"infisical": {"site_url": "http://i"}}))
            .expect_err("incomplete");
        assert_eq!(err.key, "infisical.client_id");
    }
}
