//! A thin client of Infisical's documented REST API: universal-auth login and listing the secrets
//! of one folder (v4). The token is kept for the client's life; a 401 triggers one fresh login.
//! Shared by the job (reads the run's credentials) and the operator (checks an identity, reads a
//! customer's S3 keys for its bucket).

use std::collections::HashMap;
use std::time::Duration;

use reqwest::{StatusCode, Url};
use serde::Deserialize;
use tokio::sync::Mutex;
use unstoppable_contract::Secret;

#[derive(Debug, thiserror::Error)]
pub enum SecretsError {
    #[error(
        "Infisical at {url} is unreachable: {detail}; check infisical.site_url and the network"
    )]
    Unreachable { url: String, detail: String },
    #[error("Infisical refused the machine identity's login: {0}; check infisical.client_id/client_secret")]
    Login(String),
    #[error(
        "Infisical denied reading {location}: {message}; give the machine identity read access"
    )]
    Denied { location: String, message: String },
    #[error("Infisical has no {location}: {message}; check infisical.project_id/environment/secret_path")]
    NotFound { location: String, message: String },
    #[error("secret `{name}` (for {key}) is not in Infisical {location}; add it, or set infisical.{key_hint}", key_hint = key_hint(key))]
    Missing {
        name: String,
        key: &'static str,
        location: String,
    },
    #[error("unexpected answer from Infisical: {0}")]
    Protocol(String),
}

fn key_hint(key: &str) -> String {
    format!("{}_key", key.replace('.', "_"))
}

pub struct Infisical {
    http: reqwest::Client,
    base: Url,
    client_id: Secret,
    client_secret: Secret,
    token: Mutex<Option<Secret>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Login {
    access_token: String,
}

#[derive(Deserialize)]
struct SecretList {
    secrets: Vec<SecretEntry>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SecretEntry {
    secret_key: String,
    secret_value: String,
}

#[derive(Deserialize, Default)]
struct ApiError {
    #[serde(default)]
    message: String,
}

impl Infisical {
    pub fn new(
        site_url: &str,
        client_id: Secret,
        client_secret: Secret,
    ) -> Result<Self, SecretsError> {
        let base = Url::parse(site_url.trim_end_matches('/'))
            .map_err(|e| SecretsError::Protocol(format!("infisical.site_url `{site_url}`: {e}")))?;
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .map_err(|e| SecretsError::Protocol(e.to_string()))?;
        Ok(Self {
            http,
            base,
            client_id,
            client_secret,
            token: Mutex::new(None),
        })
    }

    fn url(&self, path: &str, query: &[(&str, &str)]) -> Result<Url, SecretsError> {
        let mut url = self
            .base
            .join(path)
            .map_err(|e| SecretsError::Protocol(e.to_string()))?;
        url.query_pairs_mut().extend_pairs(query);
        Ok(url)
    }

    fn unreachable(&self, e: reqwest::Error) -> SecretsError {
        SecretsError::Unreachable {
            url: self.base.to_string(),
            detail: e.to_string(),
        }
    }

    /// Logs in now (also to check that the identity works).
    pub async fn login(&self) -> Result<Secret, SecretsError> {
        let body = serde_json::json!({
            "clientId": self.client_id.expose(),
            "clientSecret": self.client_secret.expose(),
        });
        let response = self
            .http
            .post(self.url("/api/v1/auth/universal-auth/login", &[])?)
            .header("Content-Type", "application/json")
            .body(body.to_string())
            .send()
            .await
            .map_err(|e| self.unreachable(e))?;
        let status = response.status();
        let bytes = response.bytes().await.map_err(|e| self.unreachable(e))?;
        if !status.is_success() {
            return Err(SecretsError::Login(format!("{status} {}", message(&bytes))));
        }
        let login: Login = serde_json::from_slice(&bytes)
            .map_err(|e| SecretsError::Protocol(format!("login answer: {e}")))?;
        Ok(Secret::new(login.access_token))
    }

    /// The token of this run, logging in when there is none (or `fresh` asks for a new one).
    async fn token(&self, fresh: bool) -> Result<Secret, SecretsError> {
        let mut token = self.token.lock().await;
        if fresh || token.is_none() {
            *token = Some(self.login().await?);
        }
        token
            .clone()
            .ok_or_else(|| SecretsError::Protocol("no token".into()))
    }

    /// All secrets of one folder, by name.
    pub async fn list(
        &self,
        project: &str,
        environment: &str,
        path: &str,
    ) -> Result<HashMap<String, String>, SecretsError> {
        let url = self.url(
            "/api/v4/secrets",
            &[
                ("projectId", project),
                ("environment", environment),
                ("secretPath", path),
                ("expandSecretReferences", "true"),
                ("include_imports", "true"),
            ],
        )?;
        let location = format!("project {project} environment {environment} path {path}");
        let mut fresh = false;
        loop {
            let token = self.token(fresh).await?;
            let response = self
                .http
                .get(url.clone())
                .bearer_auth(token.expose())
                .send()
                .await
                .map_err(|e| self.unreachable(e))?;
            let status = response.status();
            let bytes = response.bytes().await.map_err(|e| self.unreachable(e))?;
            match status {
                s if s.is_success() => {
                    let list: SecretList = serde_json::from_slice(&bytes)
                        .map_err(|e| SecretsError::Protocol(format!("secret list: {e}")))?;
                    return Ok(list
                        .secrets
                        .into_iter()
                        .map(|s| (s.secret_key, s.secret_value))
                        .collect());
                }
                // The token expired during the run: log in again, once.
                StatusCode::UNAUTHORIZED if !fresh => fresh = true,
                StatusCode::UNAUTHORIZED => {
                    return Err(SecretsError::Login(format!("{status} {}", message(&bytes))))
                }
                StatusCode::FORBIDDEN => {
                    return Err(SecretsError::Denied {
                        location,
                        message: message(&bytes),
                    })
                }
                StatusCode::NOT_FOUND => {
                    return Err(SecretsError::NotFound {
                        location,
                        message: message(&bytes),
                    })
                }
                _ => {
                    return Err(SecretsError::Protocol(format!(
                        "{status} {}",
                        message(&bytes)
                    )))
                }
            }
        }
    }
}

/// The `message` of Infisical's JSON error shape `{statusCode, message, error}`.
fn message(body: &[u8]) -> String {
    serde_json::from_slice::<ApiError>(body)
        .map(|e| e.message)
        .unwrap_or_default()
}

impl SecretsError {
    /// A condition reason for the operator.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Unreachable { .. } => "InfisicalUnreachable",
            Self::Login(_) => "InfisicalLoginFailed",
            Self::Denied { .. } => "InfisicalAccessDenied",
            Self::NotFound { .. } => "InfisicalNotFound",
            Self::Missing { .. } => "InfisicalSecretMissing",
            Self::Protocol(_) => "InfisicalError",
        }
    }
}
