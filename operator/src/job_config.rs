//! Pure mapping from the CRDs to the backup job's configuration: the environment of the job's
//! container. Every variable name comes from the job's own list of keys (`CONFIG_KEYS`); secrets
//! are passed only by reference, never as values. No API calls here.

use k8s_openapi::api::core::v1::{EnvVar, EnvVarSource, SecretKeySelector};
use kube::ResourceExt;
use serde_json::Value;
use unstoppable_contract::{
    defaults, AnomalyConfig, FtpsConfig, InfisicalConfig, JobConfig, MaintenanceConfig,
    RepositoryConfig, RetentionConfig, S3Config, Secret, CONFIG_KEYS,
};

use crate::crd::{AnomalyDetection, BackupCustomer, BackupResource, Maintenance, Retention};
use crate::keys::*;
use crate::names::bucket_of;
use crate::render::RenderError;
use crate::schedule::Schedule;

/// Where the job pod mounts the hot volume.
pub const HOT_MOUNT: &str = "/var/lib/unstoppable/hot";
/// Where the job pod mounts the FTPS server's CA, when the resource names one.
pub const CA_MOUNT: &str = "/etc/unstoppable/ftps-ca";

/// The job's whole environment: its configuration as values, its secrets as references to the
/// customer's Secret (or to the Infisical identity's Secret, when Infisical holds the secrets).
pub fn job_env(
    customer: &BackupCustomer,
    resource: &BackupResource,
) -> Result<Vec<EnvVar>, RenderError> {
    let mut env = config_env(customer, resource)?;
    let ftps = &resource.spec.source.ftps;
    match (
        &customer.spec.secrets.secret_ref,
        &customer.spec.secrets.infisical,
    ) {
        (Some(secret), _) => {
            let s = &secret.name;
            for (path, key) in [
                ("ftps.username", ftps.credentials.username_key.as_str()),
                ("ftps.password", ftps.credentials.password_key.as_str()),
                ("repository.password", SECRET_KEY_REPOSITORY_PASSWORD),
                ("s3.access_key_id", SECRET_KEY_S3_ACCESS_KEY_ID),
                ("s3.secret_access_key", SECRET_KEY_S3_SECRET_ACCESS_KEY),
            ] {
                env.push(secret_env(path, s, key)?);
            }
        }
        (None, Some(infisical)) => {
            let s = &infisical.identity_secret_ref.name;
            env.push(secret_env("infisical.client_id", s, SECRET_KEY_CLIENT_ID)?);
            env.push(secret_env(
                "infisical.client_secret",
                s,
                SECRET_KEY_CLIENT_SECRET,
            )?);
        }
        (None, None) => return Err(RenderError::NoSecretSource),
    }
    Ok(env)
}

/// The job's non-secret configuration, from the shared contract type, as environment variables.
fn config_env(
    customer: &BackupCustomer,
    resource: &BackupResource,
) -> Result<Vec<EnvVar>, RenderError> {
    let config = job_config(customer, resource)?;
    let value = serde_json::to_value(&config).map_err(|e| RenderError::Invalid {
        what: "job configuration",
        detail: e.to_string(),
    })?;
    let mut env = Vec::new();
    // Secrets, and the FTP user name, come from the customer's secret source instead.
    let from_secret_source = |path: &str| path == "ftps.username";
    for key in CONFIG_KEYS
        .iter()
        .filter(|k| !k.secret && !from_secret_source(k.path))
    {
        let Some(v) = key.path.split('.').try_fold(&value, |v, part| v.get(part)) else {
            continue;
        };
        let text = match v {
            Value::Null => continue,
            Value::String(s) => s.clone(),
            Value::Array(items) if items.is_empty() => continue,
            // Lists as JSON arrays: glob patterns may contain commas.
            other => other.to_string(),
        };
        env.push(EnvVar {
            name: key.env_name(),
            value: Some(text),
            value_from: None,
        });
    }
    Ok(env)
}

/// The job's configuration for one resource, with every secret left empty.
fn job_config(
    customer: &BackupCustomer,
    resource: &BackupResource,
) -> Result<JobConfig, RenderError> {
    let ftps = &resource.spec.source.ftps;
    let cold = &customer.spec.cold_storage;
    Ok(JobConfig {
        customer: customer.name_any(),
        resource: resource.name_any(),
        ftps: Some(FtpsConfig {
            host: ftps.host.clone(),
            port: u16::try_from(ftps.port).map_err(|_| RenderError::Invalid {
                what: "source.ftps.port",
                detail: format!("{} is not a port", ftps.port),
            })?,
            username: String::new(),
            password: Secret::default(),
            path: ftps.path.clone(),
            include: ftps.include.clone(),
            exclude: ftps.exclude.clone(),
            ca_file: ftps
                .tls
                .ca_secret_ref
                .as_ref()
                .map(|_| format!("{CA_MOUNT}/ca.pem")),
            server_name: ftps.tls.server_name.clone(),
            insecure_skip_verify: ftps.tls.insecure_skip_verify,
            max_connections: usize::try_from(ftps.max_connections)
                .unwrap_or(usize::from(defaults::MAX_CONNECTIONS)),
            timeout_secs: defaults::TIMEOUT_SECS,
            retries: defaults::RETRIES,
            clock_skew_secs: defaults::CLOCK_SKEW_SECS,
        }),
        repository: RepositoryConfig {
            hot_dir: HOT_MOUNT.into(),
            cold_dir: None,
            password: Secret::default(),
        },
        s3: Some(S3Config {
            endpoint: cold.endpoint.clone(),
            region: cold.region.clone(),
            bucket: bucket_of(customer)
                .ok_or_else(|| RenderError::NoNamespace(customer.name_any()))?,
            access_key_id: Secret::default(),
            secret_access_key: Secret::default(),
            path_style: cold.path_style,
            object_lock_days: cold.object_lock.as_ref().map(|l| l.days),
        }),
        infisical: customer
            .spec
            .secrets
            .infisical
            .as_ref()
            .map(|i| InfisicalConfig {
                site_url: i.site_url.clone(),
                client_id: Secret::default(),
                client_secret: Secret::default(),
                project_id: i.project_id.clone(),
                environment: i.environment.clone(),
                secret_path: i.path.clone(),
                ftps_username_key: ftps.credentials.username_key.clone(),
                ftps_password_key: ftps.credentials.password_key.clone(),
                repository_password_key: SECRET_KEY_REPOSITORY_PASSWORD.into(),
                s3_access_key_id_key: SECRET_KEY_S3_ACCESS_KEY_ID.into(),
                s3_secret_access_key_key: SECRET_KEY_S3_SECRET_ACCESS_KEY.into(),
            }),
        summary_path: defaults::SUMMARY_PATH.into(),
        progress_interval_secs: defaults::PROGRESS_INTERVAL_SECS,
        retention: retention(
            customer.spec.retention.as_ref(),
            resource.spec.retention.as_deref(),
        ),
        maintenance: maintenance(
            customer.spec.maintenance.as_ref(),
            resource.spec.maintenance.as_ref(),
            Schedule::parse(&resource.spec.schedule, resource.spec.time_zone.as_deref())
                .and_then(|s| s.expected_interval_seconds_cached(chrono::Utc::now()))
                .ok(),
        ),
        restore: None,
        anomaly: anomaly(resource.spec.anomaly.as_deref()),
    })
}

/// The resource's anomaly settings over the job's defaults.
fn anomaly(spec: Option<&AnomalyDetection>) -> AnomalyConfig {
    let d = AnomalyConfig::default();
    let Some(a) = spec else {
        return d;
    };
    AnomalyConfig {
        enabled: a.enabled.unwrap_or(d.enabled),
        min_files: a.min_files.unwrap_or(d.min_files),
        factor: a.factor.unwrap_or(d.factor),
        deleted_percent: a.deleted_percent.unwrap_or(d.deleted_percent),
        changed_percent: a.changed_percent.unwrap_or(d.changed_percent),
        incompressible_percent: a.incompressible_percent.unwrap_or(d.incompressible_percent),
        renamed_percent: a.renamed_percent.unwrap_or(d.renamed_percent),
        release_hold: a.release_hold.clone(),
    }
}

/// The keep rules: each rule the resource sets, else the customer's. With neither, the job applies
/// its documented default rules.
fn retention(customer: Option<&Retention>, resource: Option<&Retention>) -> RetentionConfig {
    let none = Retention::default();
    let (c, r) = (customer.unwrap_or(&none), resource.unwrap_or(&none));
    RetentionConfig {
        keep_last: r.keep_last.or(c.keep_last),
        keep_hourly: r.keep_hourly.or(c.keep_hourly),
        keep_daily: r.keep_daily.or(c.keep_daily),
        keep_weekly: r.keep_weekly.or(c.keep_weekly),
        keep_monthly: r.keep_monthly.or(c.keep_monthly),
        keep_yearly: r.keep_yearly.or(c.keep_yearly),
        keep_within: r.keep_within.clone().or_else(|| c.keep_within.clone()),
    }
}

/// The maintenance settings: each the resource sets, else the customer's, else the default. The
/// check period becomes a number of slices, one read per backup: the period divided by the
/// schedule's longest interval, so that every pack is read within the period.
fn maintenance(
    customer: Option<&Maintenance>,
    resource: Option<&Maintenance>,
    interval_seconds: Option<i64>,
) -> MaintenanceConfig {
    let none = Maintenance::default();
    let (c, r) = (customer.unwrap_or(&none), resource.unwrap_or(&none));
    let period_days = r
        .check_period_days
        .or(c.check_period_days)
        .unwrap_or(defaults::CHECK_PERIOD_DAYS);
    let check_slices = match (period_days, interval_seconds) {
        (0, _) => 0,
        (days, Some(interval)) if interval > 0 => {
            let slices = (i64::from(days) * 86_400) / interval;
            u32::try_from(slices.clamp(1, 100_000)).unwrap_or(1)
        }
        (days, _) => days,
    };
    MaintenanceConfig {
        prune_interval_days: r
            .prune_interval_days
            .or(c.prune_interval_days)
            .unwrap_or(defaults::PRUNE_INTERVAL_DAYS),
        check_slices,
    }
}

/// The variable of configuration key `path` (e.g. `ftps.password`), read from key `key` of
/// Secret `secret`. The variable's name comes from the job's own list of keys.
pub fn secret_env(path: &'static str, secret: &str, key: &str) -> Result<EnvVar, RenderError> {
    let name = env_name(path)?;
    Ok(EnvVar {
        name,
        value: None,
        value_from: Some(EnvVarSource {
            secret_key_ref: Some(SecretKeySelector {
                name: secret.into(),
                key: key.into(),
                optional: None,
            }),
            ..Default::default()
        }),
    })
}

/// The variable of configuration key `path` with a plain value.
pub fn value_env(path: &'static str, value: impl Into<String>) -> Result<EnvVar, RenderError> {
    Ok(EnvVar {
        name: env_name(path)?,
        value: Some(value.into()),
        value_from: None,
    })
}

/// The environment variable of configuration key `path`, from the job's own list of keys.
fn env_name(path: &'static str) -> Result<String, RenderError> {
    CONFIG_KEYS
        .iter()
        .find(|k| k.path == path)
        .map(|k| k.env_name())
        .ok_or(RenderError::Invalid {
            what: "job configuration",
            detail: format!("the job has no configuration key {path}"),
        })
}
