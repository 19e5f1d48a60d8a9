//! Credentials at run time: when `infisical.*` is configured, every credential the configuration
//! does not already hold (from the file or the environment) is read from Infisical.

use std::collections::HashMap;

use unstoppable_contract::{InfisicalConfig, JobConfig, Secret};

pub use unstoppable_infisical::{Folder, Infisical, SecretsError};

/// A credential slot of the configuration that Infisical can fill.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Slot {
    FtpsUsername,
    FtpsPassword,
    RepositoryPassword,
    S3AccessKeyId,
    S3SecretAccessKey,
}

impl Slot {
    /// The configuration key, for messages.
    fn key(self) -> &'static str {
        match self {
            Slot::FtpsUsername => "ftps.username",
            Slot::FtpsPassword => "ftps.password",
            Slot::RepositoryPassword => "repository.password",
            Slot::S3AccessKeyId => "s3.access_key_id",
            Slot::S3SecretAccessKey => "s3.secret_access_key",
        }
    }

    /// The name of the Infisical secret that holds it.
    fn secret_name(self, names: &InfisicalConfig) -> &str {
        match self {
            Slot::FtpsUsername => &names.ftps_username_key,
            Slot::FtpsPassword => &names.ftps_password_key,
            Slot::RepositoryPassword => &names.repository_password_key,
            Slot::S3AccessKeyId => &names.s3_access_key_id_key,
            Slot::S3SecretAccessKey => &names.s3_secret_access_key_key,
        }
    }
}

/// The credentials this run needs and the configuration does not hold already. S3 keys are not
/// needed without an `s3` section (a local cold_dir), FTPS credentials not without `ftps`.
fn unset(cfg: &JobConfig) -> Vec<Slot> {
    let mut slots = Vec::new();
    if let Some(ftps) = &cfg.ftps {
        if ftps.username.is_empty() {
            slots.push(Slot::FtpsUsername);
        }
        if ftps.password.is_empty() {
            slots.push(Slot::FtpsPassword);
        }
    }
    if cfg.repository.password.is_empty() {
        slots.push(Slot::RepositoryPassword);
    }
    if let Some(s3) = &cfg.s3 {
        if s3.access_key_id.is_empty() {
            slots.push(Slot::S3AccessKeyId);
        }
        if s3.secret_access_key.is_empty() {
            slots.push(Slot::S3SecretAccessKey);
        }
    }
    slots
}

fn set(cfg: &mut JobConfig, slot: Slot, value: &str) {
    match slot {
        Slot::FtpsUsername => {
            if let Some(f) = cfg.ftps.as_mut() {
                f.username = value.to_string();
            }
        }
        Slot::FtpsPassword => {
            if let Some(f) = cfg.ftps.as_mut() {
                f.password = Secret::new(value);
            }
        }
        Slot::RepositoryPassword => cfg.repository.password = Secret::new(value),
        Slot::S3AccessKeyId => {
            if let Some(s) = cfg.s3.as_mut() {
                s.access_key_id = Secret::new(value);
            }
        }
        Slot::S3SecretAccessKey => {
            if let Some(s) = cfg.s3.as_mut() {
                s.secret_access_key = Secret::new(value);
            }
        }
    }
}

/// Fills the unset credentials of `cfg` from `secrets` (secret name -> value). A credential that
/// is needed but neither set nor in Infisical is an error naming the secret.
pub fn fill(
    cfg: &mut JobConfig,
    names: &InfisicalConfig,
    secrets: &HashMap<String, String>,
) -> Result<(), SecretsError> {
    for slot in unset(cfg) {
        let name = slot.secret_name(names);
        match secrets.get(name) {
            Some(secret) => set(cfg, slot, secret),
            None => {
                return Err(SecretsError::Missing {
                    name: name.to_string(),
                    key: slot.key(),
                    location: format!(
                        "project {} environment {} path {}",
                        names.project_id, names.environment, names.secret_path
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

/// Reads the credentials `cfg` lacks from Infisical (only those).
pub async fn fill_from_infisical(
    cfg: &mut JobConfig,
    infisical: &InfisicalConfig,
) -> Result<(), SecretsError> {
    let names: Vec<&str> = unset(cfg)
        .into_iter()
        .map(|slot| slot.secret_name(infisical))
        .collect();
    if names.is_empty() {
        return Ok(());
    }
    let client = Infisical::new(
        &infisical.site_url,
        infisical.client_id.clone(),
        infisical.client_secret.clone(),
    )?;
    let folder = Folder {
        project: &infisical.project_id,
        environment: &infisical.environment,
        path: &infisical.secret_path,
    };
    let secrets = client.secrets(folder, &names).await?;
    fill(cfg, infisical, &secrets)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::deserialize_at;
    use serde_json::json;

    fn names() -> InfisicalConfig {
        let v = json!({"site_url": "http://i", "client_id": "c", "client_secret": "s", "project_id": "p", "environment": "prod"});
        deserialize_at(v, "infisical").expect("valid")
    }

    fn config(value: serde_json::Value) -> JobConfig {
        let mut base =
            json!({"customer": "acme", "resource": "www", "repository": {"hot_dir": "/hot"}});
        for (k, v) in value.as_object().cloned().unwrap_or_default() {
            match (base.get_mut(&k), v) {
                (Some(serde_json::Value::Object(b)), serde_json::Value::Object(v)) => b.extend(v),
                (_, v) => {
                    base[&k] = v;
                }
            }
        }
        deserialize_at(base, "").expect("valid config")
    }

    #[test]
    fn unset_credentials_are_filled_and_set_ones_win() {
        let mut cfg = config(
            json!({"ftps": {"host": "h", "password": "from-env"}, "s3": {"endpoint": "http://s", "bucket": "bb"}}),
        );
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
        fill(&mut cfg, &names(), &secrets).expect("filled");
        let ftps = cfg.ftps.as_ref().expect("ftps");
        assert_eq!(ftps.username, "user");
        assert_eq!(ftps.password.expose(), "from-env");
        assert_eq!(cfg.repository.password.expose(), "repo");
        assert_eq!(
            cfg.s3.as_ref().expect("s3").secret_access_key.expose(),
            "sk"
        );
    }

    #[test]
    fn a_needed_secret_that_is_missing_is_named() {
        let mut cfg = config(json!({"ftps": {"host": "h"}}));
        let secrets = HashMap::from([("FTP_USERNAME".to_string(), "u".to_string())]);
        let err = fill(&mut cfg, &names(), &secrets).expect_err("missing");
        let text = err.to_string();
        assert!(
            text.contains("FTP_PASSWORD") && text.contains("project p"),
            "{text}"
        );
        // S3 keys are neither needed nor added without an s3 section.
        let mut local = config(json!({"repository": {"cold_dir": "/c"}}));
        let secrets = HashMap::from([
            ("REPOSITORY_PASSWORD".to_string(), "r".to_string()),
            ("S3_ACCESS_KEY_ID".to_string(), "k".to_string()),
        ]);
        fill(&mut local, &names(), &secrets).expect("no s3 needed");
        assert!(local.s3.is_none());
        assert_eq!(local.repository.password.expose(), "r");
    }

    #[test]
    fn bad_infisical_settings_name_the_key() {
        let err = deserialize_at::<JobConfig>(
            json!({"customer": "a", "resource": "b", "repository": {"hot_dir": "/h"}, "infisical": {"site_url": "http://i"}}),
            "",
        )
        .expect_err("incomplete");
        assert_eq!(err.key, "infisical.client_id");
    }
}
