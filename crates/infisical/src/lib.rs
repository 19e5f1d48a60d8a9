//! A thin client of Infisical's REST API: universal-auth login and reading the secrets of one
//! folder. Shared by the job (reads the run's credentials) and the operator (checks an identity,
//! reads a customer's S3 keys for its bucket).
//!
//! It reads the answers the way Infisical's server writes them (backend/src/server/... in the
//! Infisical/infisical repository) and the official SDKs read them:
//! - imported secrets come in `imports[].secrets[]`: merged after the folder's own, first import
//!   wins (as Infisical/go-sdk, rust-sdk and node-sdk-v2 do); hidden values are skipped;
//! - an expired token is a 403 `TokenError` (a revoked or missing one a 401): both log in again,
//!   once, and a token is renewed ahead of its `expiresIn`;
//! - servers older than the v4 secrets routes answer 404 for them: the v3 routes the SDKs use are
//!   taken instead;
//! - a failed login is not retried for a while (the identity locks itself after a few failures),
//!   and a 429 waits for its `retry-after`;
//! - when one secret of the folder is unreadable the list is refused as a whole: the secrets
//!   needed are then read one by one.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use reqwest::{StatusCode, Url};
use serde::Deserialize;
use tokio::sync::Mutex;
use unstoppable_contract::Secret;

mod clients;
mod errors;

pub use clients::Clients;
pub use errors::SecretsError;
use errors::ServerError;

/// How long a failed login is not retried: Infisical locks an identity's universal auth after
/// 3 failures within 30 s, for 300 s by default, and then refuses even the right secret.
pub const LOGIN_RETRY_AFTER: Duration = Duration::from_secs(300);
/// The longest `retry-after` waited for inside one call; longer ones are reported.
const MAX_RATE_LIMIT_WAIT: Duration = Duration::from_secs(10);

pub struct Infisical {
    http: reqwest::Client,
    /// The site URL, ending in `/`, with any path prefix it has (`https://host/infisical/`).
    base: Url,
    client_id: Secret,
    client_secret: Secret,
    token: Mutex<Option<Token>>,
    /// The last failed login, repeated instead of asking again until it is old enough.
    failed_login: std::sync::Mutex<Option<(Instant, String)>>,
    /// The server has no v4 secrets routes (a self-hosted server from before September 2025).
    v3_only: AtomicBool,
}

struct Token {
    value: Secret,
    /// When to log in again instead of using it (`None`: it does not expire).
    renew_at: Option<Instant>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Login {
    access_token: String,
    #[serde(default)]
    expires_in: u64,
}

#[derive(Deserialize)]
struct SecretList {
    #[serde(default)]
    secrets: Vec<SecretEntry>,
    #[serde(default)]
    imports: Vec<Import>,
}

#[derive(Deserialize)]
struct Import {
    #[serde(default)]
    secrets: Vec<SecretEntry>,
}

#[derive(Deserialize)]
struct OneSecret {
    secret: SecretEntry,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SecretEntry {
    secret_key: String,
    secret_value: Option<String>,
    #[serde(default)]
    secret_value_hidden: bool,
}

impl SecretEntry {
    fn value(self) -> Option<(String, String)> {
        match (self.secret_value_hidden, self.secret_value) {
            (false, Some(v)) => Some((self.secret_key, v)),
            _ => None,
        }
    }
}

/// Where the secrets are: project, environment and folder.
#[derive(Clone, Copy)]
pub struct Folder<'a> {
    pub project: &'a str,
    pub environment: &'a str,
    pub path: &'a str,
}

impl Folder<'_> {
    fn describe(&self) -> String {
        format!(
            "project {} environment {} path {}",
            self.project, self.environment, self.path
        )
    }

    /// The folder path as the server stores it: leading `/`, no trailing `/`.
    fn normalised_path(&self) -> String {
        let trimmed = self.path.trim().trim_matches('/');
        format!("/{trimmed}")
    }
}

/// One answer: status, headers that matter, body.
struct Answer {
    status: StatusCode,
    retry_after: Option<Duration>,
    body: Vec<u8>,
}

impl Infisical {
    pub fn new(
        site_url: &str,
        client_id: Secret,
        client_secret: Secret,
    ) -> Result<Self, SecretsError> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .map_err(|e| SecretsError::Protocol(e.to_string()))?;
        Ok(Self {
            http,
            base: base_url(site_url)?,
            client_id,
            client_secret,
            token: Mutex::new(None),
            failed_login: std::sync::Mutex::new(None),
            v3_only: AtomicBool::new(false),
        })
    }

    /// `path` (`api/...`) under the site URL, keeping its path prefix (as the Go SDK does).
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

    async fn send(&self, request: reqwest::RequestBuilder) -> Result<Answer, SecretsError> {
        let response = request.send().await.map_err(|e| self.unreachable(e))?;
        let status = response.status();
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let body = response
            .bytes()
            .await
            .map_err(|e| self.unreachable(e))?
            .to_vec();
        Ok(Answer {
            status,
            retry_after,
            body,
        })
    }

    /// Sends the request built by `build`, waiting once for a short `retry-after` on a 429.
    async fn send_patiently(
        &self,
        build: impl Fn() -> Result<reqwest::RequestBuilder, SecretsError>,
    ) -> Result<Answer, SecretsError> {
        let answer = self.send(build()?).await?;
        if answer.status != StatusCode::TOO_MANY_REQUESTS {
            return Ok(answer);
        }
        let wait = answer.retry_after.unwrap_or(MAX_RATE_LIMIT_WAIT);
        if wait > MAX_RATE_LIMIT_WAIT {
            return Err(SecretsError::RateLimited {
                retry_after_secs: wait.as_secs(),
                message: ServerError::parse(&answer.body).text(),
            });
        }
        tokio::time::sleep(wait).await;
        let again = self.send(build()?).await?;
        if again.status == StatusCode::TOO_MANY_REQUESTS {
            return Err(SecretsError::RateLimited {
                retry_after_secs: again.retry_after.unwrap_or(wait).as_secs(),
                message: ServerError::parse(&again.body).text(),
            });
        }
        Ok(again)
    }

    /// Makes sure the client holds a token, logging in when it has none or it is due (also to
    /// check that the identity works). A login refused less than [`LOGIN_RETRY_AFTER`] ago is
    /// not tried again: repeating it would lock the identity out, for the backup jobs too.
    pub async fn login(&self) -> Result<(), SecretsError> {
        self.token(false).await.map(|_| ())
    }

    async fn fresh_token(&self) -> Result<Token, SecretsError> {
        if let Ok(failed) = self.failed_login.lock() {
            if let Some((when, message)) = failed.as_ref() {
                if when.elapsed() < LOGIN_RETRY_AFTER {
                    return Err(SecretsError::Login(format!(
                        "{message} (not retried for {} s, so that the identity is not locked out)",
                        LOGIN_RETRY_AFTER.saturating_sub(when.elapsed()).as_secs()
                    )));
                }
            }
        }
        let body = serde_json::json!({
            "clientId": self.client_id.expose(),
            "clientSecret": self.client_secret.expose(),
        })
        .to_string();
        // No Authorization header: the server checks any token it is given, even on login.
        let answer = self
            .send_patiently(|| {
                Ok(self
                    .http
                    .post(self.url("api/v1/auth/universal-auth/login", &[])?)
                    .header("Content-Type", "application/json")
                    .body(body.clone()))
            })
            .await?;
        if !answer.status.is_success() {
            let message = format!(
                "{} {}",
                answer.status,
                ServerError::parse(&answer.body).text()
            );
            if matches!(
                answer.status,
                StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN
            ) {
                if let Ok(mut failed) = self.failed_login.lock() {
                    *failed = Some((Instant::now(), message.clone()));
                }
            }
            return Err(SecretsError::Login(message));
        }
        if let Ok(mut failed) = self.failed_login.lock() {
            *failed = None;
        }
        let login: Login = serde_json::from_slice(&answer.body)
            .map_err(|e| SecretsError::Protocol(format!("login answer: {e}")))?;
        // Renewed once 90% of its life has passed, so a long run never uses an expired token.
        let renew_at = (login.expires_in > 0)
            .then(|| Instant::now() + Duration::from_secs(login.expires_in) * 9 / 10);
        Ok(Token {
            value: Secret::new(login.access_token),
            renew_at,
        })
    }

    /// The current token, logging in when there is none, it is due for renewal, or `fresh`.
    async fn token(&self, fresh: bool) -> Result<Secret, SecretsError> {
        let mut token = self.token.lock().await;
        let due = token
            .as_ref()
            .is_none_or(|t| t.renew_at.is_some_and(|at| Instant::now() >= at));
        if fresh || due {
            *token = Some(self.fresh_token().await?);
        }
        token
            .as_ref()
            .map(|t| t.value.clone())
            .ok_or_else(|| SecretsError::Protocol("no token".into()))
    }

    /// GET `url` with the token; a refused token (401, or 403 `TokenError`) logs in again, once.
    async fn get(&self, url: &Url) -> Result<Answer, SecretsError> {
        let mut fresh = false;
        loop {
            let token = self.token(fresh).await?;
            let answer = self
                .send_patiently(|| Ok(self.http.get(url.clone()).bearer_auth(token.expose())))
                .await?;
            let refused = answer.status == StatusCode::UNAUTHORIZED
                || (answer.status == StatusCode::FORBIDDEN
                    && ServerError::parse(&answer.body).is_token_error());
            if refused && !fresh {
                fresh = true;
                continue;
            }
            if refused {
                return Err(SecretsError::Login(format!(
                    "{} {} (after a fresh login)",
                    answer.status,
                    ServerError::parse(&answer.body).text()
                )));
            }
            return Ok(answer);
        }
    }

    /// The secrets named in `wanted` (and any others of the folder), by name. Missing names are
    /// simply absent: the caller says which one it needed.
    pub async fn secrets(
        &self,
        folder: Folder<'_>,
        wanted: &[&str],
    ) -> Result<HashMap<String, String>, SecretsError> {
        match self.list(folder).await {
            Err(SecretsError::Denied { permission, .. }) if permission => {
                // One secret of the folder is unreadable: the list is refused as a whole.
                self.by_name(folder, wanted).await
            }
            other => other,
        }
    }

    /// All readable secrets of one folder, imports included.
    async fn list(&self, folder: Folder<'_>) -> Result<HashMap<String, String>, SecretsError> {
        let answer = self.folder_get(folder, None).await?;
        let list: SecretList = serde_json::from_slice(&answer.body)
            .map_err(|e| SecretsError::Protocol(format!("secret list: {e}")))?;
        let mut found = HashMap::new();
        let imported = list.imports.into_iter().flat_map(|i| i.secrets);
        for (key, value) in list
            .secrets
            .into_iter()
            .chain(imported)
            .filter_map(SecretEntry::value)
        {
            found.entry(key).or_insert(value);
        }
        Ok(found)
    }

    async fn by_name(
        &self,
        folder: Folder<'_>,
        wanted: &[&str],
    ) -> Result<HashMap<String, String>, SecretsError> {
        let mut found = HashMap::new();
        for name in wanted {
            match self.folder_get(folder, Some(name)).await {
                Ok(answer) => {
                    let one: OneSecret = serde_json::from_slice(&answer.body)
                        .map_err(|e| SecretsError::Protocol(format!("secret {name}: {e}")))?;
                    if let Some((key, value)) = one.secret.value() {
                        found.insert(key, value);
                    }
                }
                Err(SecretsError::NotFound { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(found)
    }

    /// GET the folder's list (or one secret of it) on v4, or on v3 where the server has no v4.
    async fn folder_get(
        &self,
        folder: Folder<'_>,
        name: Option<&str>,
    ) -> Result<Answer, SecretsError> {
        let path = folder.normalised_path();
        loop {
            let v3 = self.v3_only.load(Ordering::Relaxed);
            let (route, project_key) = if v3 {
                ("api/v3/secrets/raw", "workspaceId")
            } else {
                ("api/v4/secrets", "projectId")
            };
            let mut url = self.url(
                route,
                &[
                    (project_key, folder.project),
                    ("environment", folder.environment),
                    ("secretPath", &path),
                    ("expandSecretReferences", "true"),
                    // v3 and v4 before February 2026 read `include_imports`, later v4 servers
                    // `includeImports`; each ignores the other.
                    ("include_imports", "true"),
                    ("includeImports", "true"),
                ],
            )?;
            if let Some(name) = name {
                url.path_segments_mut()
                    .map_err(|()| SecretsError::Protocol("site URL cannot have a path".into()))?
                    .push(name);
            }
            let answer = self.get(&url).await?;
            if answer.status.is_success() {
                return Ok(answer);
            }
            let error = ServerError::parse(&answer.body);
            if answer.status == StatusCode::NOT_FOUND && error.is_unknown_route() && !v3 {
                self.v3_only.store(true, Ordering::Relaxed);
                continue;
            }
            let location = match name {
                Some(name) => format!("secret {name} in {}", folder.describe()),
                None => folder.describe(),
            };
            return Err(match answer.status {
                StatusCode::FORBIDDEN => SecretsError::Denied {
                    location,
                    message: error.text(),
                    permission: error.is_permission_denied(),
                },
                StatusCode::NOT_FOUND if error.is_unknown_route() => {
                    SecretsError::Protocol(format!(
                        "{} has no secrets API route {}: {}; check infisical.site_url",
                        self.base,
                        url.path(),
                        error.text()
                    ))
                }
                StatusCode::NOT_FOUND => SecretsError::NotFound {
                    location,
                    message: error.text(),
                },
                s => SecretsError::Protocol(format!("{s} {}", error.text())),
            });
        }
    }
}

/// The site URL with a trailing `/` and without a trailing `api` (the Go SDK accepts both).
fn base_url(site_url: &str) -> Result<Url, SecretsError> {
    let trimmed = site_url.trim().trim_end_matches('/');
    let trimmed = trimmed.strip_suffix("/api").unwrap_or(trimmed);
    let url = Url::parse(&format!("{trimmed}/"))
        .map_err(|e| SecretsError::Protocol(format!("infisical.site_url `{site_url}`: {e}")))?;
    if url.cannot_be_a_base() || !matches!(url.scheme(), "http" | "https") {
        return Err(SecretsError::Protocol(format!(
            "infisical.site_url `{site_url}` is not an http(s) URL"
        )));
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_site_url_keeps_its_path_prefix() {
        for (site, expected) in [
            ("https://h", "https://h/api/v4/secrets"),
            ("https://h/", "https://h/api/v4/secrets"),
            ("https://h/infisical", "https://h/infisical/api/v4/secrets"),
            ("https://h/infisical/", "https://h/infisical/api/v4/secrets"),
            (
                "https://h/infisical/api",
                "https://h/infisical/api/v4/secrets",
            ),
        ] {
            let url = base_url(site)
                .and_then(|b| {
                    b.join("api/v4/secrets")
                        .map_err(|e| SecretsError::Protocol(e.to_string()))
                })
                .map(|u| u.to_string());
            assert_eq!(url.ok().as_deref(), Some(expected), "{site}");
        }
        assert!(base_url("ftp://h").is_err());
    }

    #[test]
    fn folder_paths_are_sent_as_the_server_stores_them() {
        for (path, expected) in [
            ("/", "/"),
            ("", "/"),
            ("/acme/", "/acme"),
            ("acme", "/acme"),
            ("/a/b//", "/a/b"),
        ] {
            let f = Folder {
                project: "p",
                environment: "e",
                path,
            };
            assert_eq!(f.normalised_path(), expected, "{path}");
        }
    }

    #[test]
    fn hidden_or_absent_values_are_not_secrets() {
        let list: SecretList = serde_json::from_value(serde_json::json!({
            "secrets": [
                {"secretKey": "A", "secretValue": "own"},
                {"secretKey": "H", "secretValue": "<hidden-by-infisical>", "secretValueHidden": true},
                {"secretKey": "N"}
            ],
            "imports": [{"secrets": [{"secretKey": "A", "secretValue": "imported"}]}]
        }))
        .expect("list");
        let values: Vec<_> = list
            .secrets
            .into_iter()
            .filter_map(SecretEntry::value)
            .collect();
        assert_eq!(values, vec![("A".to_string(), "own".to_string())]);
    }
}
