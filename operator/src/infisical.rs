//! Checks that a customer's Infisical machine identity can log in (universal auth). The operator
//! reads no customer secret from Infisical: the job does that at run time.

use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LoginError {
    #[error("Infisical at {site} is unreachable: {detail}")]
    Unreachable { site: String, detail: String },
    #[error("Infisical at {site} refused the machine identity's login ({status}): {message}; check the identity Secret")]
    Refused {
        site: String,
        status: u16,
        message: String,
    },
}

impl LoginError {
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Unreachable { .. } => "InfisicalUnreachable",
            Self::Refused { .. } => "InfisicalLoginFailed",
        }
    }
}

pub async fn login(site: &str, client_id: &str, client_secret: &str) -> Result<(), LoginError> {
    let unreachable = |detail: String| LoginError::Unreachable {
        site: site.into(),
        detail,
    };
    let url = format!(
        "{}/api/v1/auth/universal-auth/login",
        site.trim_end_matches('/')
    );
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(15))
        .build()
        .map_err(|e| unreachable(e.to_string()))?;
    let body = serde_json::json!({"clientId": client_id, "clientSecret": client_secret});
    let response = http
        .post(url)
        .header("Content-Type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .map_err(|e| unreachable(e.to_string()))?;
    let status = response.status();
    if status.is_success() {
        return Ok(());
    }
    let bytes = response.bytes().await.unwrap_or_default();
    let message = serde_json::from_slice::<serde_json::Value>(&bytes)
        .ok()
        .and_then(|v| v["message"].as_str().map(str::to_string))
        .unwrap_or_default();
    Err(LoginError::Refused {
        site: site.into(),
        status: status.as_u16(),
        message,
    })
}
