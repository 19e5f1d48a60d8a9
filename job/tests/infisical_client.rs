//! The Infisical client against the stand-in (`fixtures/infisical_standin.py`), which answers
//! the way Infisical's own server code does: imports, expired tokens, old servers, unreadable
//! secrets, lockout, rate limits, path prefixes and the server's error texts.

mod common;

use std::collections::HashMap;

use common::infisical::InfisicalStandIn;
use serde_json::{json, Value};
use unstoppable_contract::Secret;
use unstoppable_infisical::{Clients, Folder, Infisical, SecretsError};

const FOLDER: Folder<'static> = Folder {
    project: "proj-1",
    environment: "prod",
    path: "/acme",
};

fn standin(extra: Value) -> InfisicalStandIn {
    let mut state = json!({
        "clients": {"identity-id": "identity-secret"},
        "projects": {"proj-1": {"prod": {
            "/acme": {"FTP_USERNAME": "alice", "FTP_PASSWORD": "from-acme", "HOST": "ftp.example.org",
                      "URL": "ftps://${HOST}/", "OTHER": "x"},
            "/shared": {"FTP_PASSWORD": "from-shared", "S3_ACCESS_KEY_ID": "first-import"},
            "/more": {"S3_ACCESS_KEY_ID": "second-import", "S3_SECRET_ACCESS_KEY": "from-more"},
        }}},
        "imports": {"proj-1": {"prod": {"/acme": [
            {"environment": "prod", "secretPath": "/shared"},
            {"environment": "prod", "secretPath": "/more"},
        ]}}},
    });
    if let (Some(state), Some(extra)) = (state.as_object_mut(), extra.as_object()) {
        for (k, v) in extra {
            state.insert(k.clone(), v.clone());
        }
    }
    InfisicalStandIn::start(state)
}

/// The shared client of the stand-in's identity with `secret`.
fn shared(clients: &Clients, site: &str, secret: &str) -> std::sync::Arc<Infisical> {
    clients
        .get(site, Secret::new("identity-id"), Secret::new(secret))
        .expect("client")
}

fn client(site: &str, secret: &str) -> Infisical {
    Infisical::new(site, Secret::new("identity-id"), Secret::new(secret)).expect("client")
}

async fn read(infisical: &Infisical, wanted: &[&str]) -> HashMap<String, String> {
    infisical.secrets(FOLDER, wanted).await.expect("secrets")
}

#[tokio::test]
async fn imported_secrets_are_read_the_folders_own_first_then_the_first_import() {
    let server = standin(json!({}));
    let found = read(&client(&server.url, "identity-secret"), &[]).await;
    assert_eq!(found["FTP_PASSWORD"], "from-acme", "own secrets win");
    assert_eq!(
        found["S3_ACCESS_KEY_ID"], "first-import",
        "first import wins"
    );
    assert_eq!(found["S3_SECRET_ACCESS_KEY"], "from-more");
    assert_eq!(
        found["URL"], "ftps://ftp.example.org/",
        "references expanded"
    );
}

#[tokio::test]
async fn an_expired_token_logs_in_again_and_a_short_lived_one_is_renewed_ahead() {
    // The server says 403 TokenError for an expired token, not 401.
    let server = standin(json!({"expired_logins": 1}));
    let found = read(&client(&server.url, "identity-secret"), &["FTP_PASSWORD"]).await;
    assert_eq!(found["FTP_PASSWORD"], "from-acme");
    assert_eq!(server.logins(), 2, "{:?}", server.requests());

    let server = standin(json!({"expires_in": 1}));
    let infisical = client(&server.url, "identity-secret");
    read(&infisical, &[]).await;
    tokio::time::sleep(std::time::Duration::from_millis(1000)).await;
    read(&infisical, &[]).await;
    assert_eq!(server.logins(), 2, "renewed: {:?}", server.requests());
    let refused = server.count("GET /api/v4/secrets 401") + server.count("GET /api/v4/secrets 403");
    assert_eq!(refused, 0, "{:?}", server.requests());
}

#[tokio::test]
async fn a_server_without_the_v4_routes_is_read_through_v3() {
    let server = standin(json!({"old_server": true}));
    let infisical = client(&server.url, "identity-secret");
    let found = read(&infisical, &["FTP_PASSWORD"]).await;
    assert_eq!(found["FTP_PASSWORD"], "from-acme");
    assert_eq!(found["S3_ACCESS_KEY_ID"], "first-import", "v3 imports too");
    read(&infisical, &[]).await;
    assert_eq!(
        server.count("GET /api/v4/secrets 404"),
        1,
        "{:?}",
        server.requests()
    );
    assert_eq!(
        server.count("GET /api/v3/secrets/raw 200"),
        2,
        "{:?}",
        server.requests()
    );
}

#[tokio::test]
async fn one_identity_logs_in_once_and_a_refused_login_is_not_repeated_into_a_lockout() {
    let server = standin(json!({"lockout_threshold": 2}));
    let clients = Clients::default();
    for _ in 0..3 {
        let c = shared(&clients, &server.url, "identity-secret");
        c.login().await.expect("login");
        c.secrets(FOLDER, &[]).await.expect("secrets");
    }
    assert_eq!(server.logins(), 1, "{:?}", server.requests());

    for _ in 0..3 {
        let c = shared(&clients, &server.url, "wrong");
        let err = c.login().await.expect_err("wrong secret");
        assert!(err.to_string().contains("Invalid credentials"), "{err}");
    }
    assert_eq!(
        server.count("POST /api/v1/auth/universal-auth/login 401"),
        1,
        "{:?}",
        server.requests()
    );
    // Not locked out: the right secret still logs in.
    let c = shared(&clients, &server.url, "identity-secret");
    c.secrets(FOLDER, &[])
        .await
        .expect("the identity still works");
}

#[tokio::test]
async fn a_rate_limited_request_waits_for_retry_after() {
    let server = standin(json!({"rate_limited": 1}));
    let found = read(&client(&server.url, "identity-secret"), &[]).await;
    assert_eq!(found["FTP_USERNAME"], "alice");
    assert_eq!(
        server.count("GET /api/v4/secrets 429"),
        1,
        "{:?}",
        server.requests()
    );
}

#[tokio::test]
async fn a_site_url_with_a_path_prefix_keeps_it() {
    let server = standin(json!({"prefix": "/infisical"}));
    assert!(server.url.ends_with("/infisical"));
    let found = read(&client(&server.url, "identity-secret"), &[]).await;
    assert_eq!(found["FTP_USERNAME"], "alice");
    let found = read(&client(&format!("{}/", server.url), "identity-secret"), &[]).await;
    assert_eq!(found["FTP_USERNAME"], "alice");
}

#[tokio::test]
async fn the_servers_own_words_reach_the_user() {
    let server = standin(json!({"forbidden": ["proj-1"]}));
    let err = client(&server.url, "identity-secret")
        .secrets(FOLDER, &[])
        .await
        .expect_err("not a member");
    assert!(
        err.to_string()
            .contains("You are not member of this project"),
        "{err}"
    );
    let server = standin(json!({}));
    let err = client(&server.url, "identity-secret")
        .secrets(
            Folder {
                path: "/nowhere",
                ..FOLDER
            },
            &[],
        )
        .await
        .expect_err("no folder");
    assert!(
        matches!(err, SecretsError::NotFound { .. }) && err.to_string().contains("/nowhere"),
        "{err}"
    );
}

#[tokio::test]
async fn one_unreadable_secret_does_not_hide_the_readable_ones() {
    let server = standin(json!({"unreadable": ["OTHER"]}));
    let found = read(
        &client(&server.url, "identity-secret"),
        &["FTP_USERNAME", "FTP_PASSWORD", "NOT_THERE"],
    )
    .await;
    assert_eq!(found.get("FTP_USERNAME").map(String::as_str), Some("alice"));
    assert_eq!(
        found.get("FTP_PASSWORD").map(String::as_str),
        Some("from-acme")
    );
    assert!(!found.contains_key("NOT_THERE"));
    assert_eq!(
        server.count("GET /api/v4/secrets 403"),
        1,
        "{:?}",
        server.requests()
    );
}

#[tokio::test]
async fn folder_paths_with_a_trailing_slash_find_the_folder() {
    let server = standin(json!({}));
    let found = client(&server.url, "identity-secret")
        .secrets(
            Folder {
                path: "/acme/",
                ..FOLDER
            },
            &[],
        )
        .await
        .expect("secrets");
    assert_eq!(found["FTP_USERNAME"], "alice");
}
