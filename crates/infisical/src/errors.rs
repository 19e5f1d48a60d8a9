//! Errors, and the error answers of Infisical's server read as it writes them
//! (backend/src/server/plugins/error-handler.ts): `{reqId, statusCode, message, error, details?}`,
//! where `message` is an array of issues on a 422 and the useful text of some 403s is in `error`.

use serde_json::Value;

/// What went wrong, in the server's words. What the user should change is for the caller to say:
/// the job names its configuration keys, the operator the fields of a BackupCustomer.
#[derive(Debug, thiserror::Error)]
pub enum SecretsError {
    #[error("Infisical at {url} is unreachable: {detail}")]
    Unreachable { url: String, detail: String },
    #[error("Infisical refused the machine identity's login: {0}")]
    Login(String),
    #[error("Infisical denied reading {location}: {message}")]
    Denied {
        location: String,
        message: String,
        /// A permission the identity lacks (not a project it is no member of).
        permission: bool,
    },
    #[error("Infisical has no {location}: {message}")]
    NotFound { location: String, message: String },
    #[error("secret `{name}` (for {key}) is not in Infisical {location}")]
    Missing {
        name: String,
        key: &'static str,
        location: String,
    },
    #[error("Infisical is rate limiting this client: {message}; retry after {retry_after_secs} s")]
    RateLimited {
        retry_after_secs: u64,
        message: String,
    },
    #[error("unexpected answer from Infisical: {0}")]
    Protocol(String),
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
            Self::RateLimited { .. } => "InfisicalRateLimited",
            Self::Protocol(_) => "InfisicalError",
        }
    }
}

/// An error answer of the server.
pub(crate) struct ServerError {
    message: Value,
    error: Option<String>,
    /// Infisical's own handler adds a request id; Fastify's answer for an unknown route has none.
    has_req_id: bool,
    raw: String,
}

/// `error` names that only repeat the kind of failure (the exception class), not its cause.
const GENERIC: [&str; 11] = [
    "UnauthorizedError",
    "PermissionDenied",
    "NotFound",
    "Not Found",
    "BadRequest",
    "ValidationFailure",
    "TokenError",
    "RateLimitExceeded",
    "ForbiddenError",
    "SecretPathNotFound",
    "InternalServerError",
];

impl ServerError {
    pub(crate) fn parse(body: &[u8]) -> Self {
        let value: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
        Self {
            message: value.get("message").cloned().unwrap_or(Value::Null),
            error: value
                .get("error")
                .and_then(Value::as_str)
                .map(str::to_string),
            has_req_id: value.get("reqId").is_some(),
            raw: String::from_utf8_lossy(body).chars().take(300).collect(),
        }
    }

    /// What the server said, for a person.
    pub(crate) fn text(&self) -> String {
        let message = match &self.message {
            Value::String(s) => s.clone(),
            // A validation failure: one issue per invalid field.
            Value::Array(issues) => issues
                .iter()
                .map(|issue| {
                    let path = issue
                        .get("path")
                        .and_then(Value::as_array)
                        .map(|p| {
                            p.iter()
                                .map(|s| s.as_str().map_or_else(|| s.to_string(), str::to_string))
                                .collect::<Vec<_>>()
                                .join(".")
                        })
                        .unwrap_or_default();
                    let text = issue
                        .get("message")
                        .and_then(Value::as_str)
                        .unwrap_or("invalid");
                    if path.is_empty() {
                        text.to_string()
                    } else {
                        format!("{path}: {text}")
                    }
                })
                .collect::<Vec<_>>()
                .join("; "),
            Value::Null => String::new(),
            other => other.to_string(),
        };
        match (&self.error, message.is_empty()) {
            (Some(e), true) => e.clone(),
            (Some(e), false) if !GENERIC.contains(&e.as_str()) => format!("{message} ({e})"),
            (_, false) => message,
            (None, true) => self.raw.clone(),
        }
    }

    /// A 403 that only says the token expired or is malformed.
    pub(crate) fn is_token_error(&self) -> bool {
        self.error.as_deref() == Some("TokenError")
    }

    /// A 403 for a permission the identity lacks on some secret.
    pub(crate) fn is_permission_denied(&self) -> bool {
        self.error.as_deref() == Some("PermissionDenied")
    }

    /// A 404 for a route the server does not have (not for a missing folder or secret).
    pub(crate) fn is_unknown_route(&self) -> bool {
        !self.has_req_id
            && self
                .message
                .as_str()
                .is_some_and(|m| m.starts_with("Route ") && m.ends_with("not found"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_servers_words_are_kept() {
        let member = ServerError::parse(br#"{"reqId":"req-1","statusCode":403,"message":"You are not allowed to access this resource","error":"You are not member of this project"}"#);
        assert_eq!(
            member.text(),
            "You are not allowed to access this resource (You are not member of this project)"
        );
        let invalid = ServerError::parse(br#"{"reqId":"req-2","statusCode":422,"error":"ValidationFailure","message":[{"path":["include_imports"],"message":"Invalid enum value. Expected 'true' | 'false', received 'yes'"}]}"#);
        assert_eq!(
            invalid.text(),
            "include_imports: Invalid enum value. Expected 'true' | 'false', received 'yes'"
        );
        let expired = ServerError::parse(br#"{"reqId":"req-3","statusCode":403,"error":"TokenError","message":"Your token has expired. Please re-authenticate."}"#);
        assert!(expired.is_token_error());
        assert_eq!(
            expired.text(),
            "Your token has expired. Please re-authenticate."
        );
        let route = ServerError::parse(br#"{"message":"Route GET:/api/v4/secrets?projectId=p not found","error":"Not Found","statusCode":404}"#);
        assert!(route.is_unknown_route());
        let folder = ServerError::parse(br#"{"reqId":"req-4","statusCode":404,"message":"Folder with path '/x' in environment 'dev' was not found.","error":"SecretPathNotFound"}"#);
        assert!(!folder.is_unknown_route());
        assert_eq!(
            ServerError::parse(b"<html>bad gateway</html>").text(),
            "<html>bad gateway</html>"
        );
    }
}
