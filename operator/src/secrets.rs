//! Which Secret keys a resource's backup pod needs, and whether they exist. A missing key would
//! otherwise leave the pod in `CreateContainerConfigError` until its deadline. Only key names
//! are looked at, never values.

use k8s_openapi::api::core::v1::Secret;
use kube::Api;

use crate::context::Context;
use crate::crd::{BackupCustomer, BackupResource};
use crate::error::Result;
use crate::render::{
    SECRET_KEY_CLIENT_ID, SECRET_KEY_CLIENT_SECRET, SECRET_KEY_REPOSITORY_PASSWORD,
    SECRET_KEY_S3_ACCESS_KEY_ID, SECRET_KEY_S3_SECRET_ACCESS_KEY,
};

/// Keys of the customer's Secret that only the operator and the job itself may use: a resource
/// must not name them as FTP credentials, or their value would be sent to the resource's host.
const RESERVED: [&str; 5] = [
    SECRET_KEY_REPOSITORY_PASSWORD,
    SECRET_KEY_S3_ACCESS_KEY_ID,
    SECRET_KEY_S3_SECRET_ACCESS_KEY,
    SECRET_KEY_CLIENT_ID,
    SECRET_KEY_CLIENT_SECRET,
];

/// Why the resource cannot run: a condition reason and a message naming the Secret and key.
pub type Problem = (&'static str, String);

/// The `(secret, key)` pairs the backup pod of `res` reads.
pub fn required_keys(customer: &BackupCustomer, res: &BackupResource) -> Vec<(String, String)> {
    let ftps = &res.spec.source.ftps;
    let mut keys = Vec::new();
    if let Some(secret) = &customer.spec.secrets.secret_ref {
        for key in [
            ftps.credentials.username_key.as_str(),
            ftps.credentials.password_key.as_str(),
            SECRET_KEY_REPOSITORY_PASSWORD,
            SECRET_KEY_S3_ACCESS_KEY_ID,
            SECRET_KEY_S3_SECRET_ACCESS_KEY,
        ] {
            keys.push((secret.name.clone(), key.to_string()));
        }
    } else if let Some(infisical) = &customer.spec.secrets.infisical {
        for key in [SECRET_KEY_CLIENT_ID, SECRET_KEY_CLIENT_SECRET] {
            keys.push((infisical.identity_secret_ref.name.clone(), key.to_string()));
        }
    }
    if let Some(ca) = &ftps.tls.ca_secret_ref {
        keys.push((ca.name.clone(), ca.key.clone()));
    }
    keys
}

/// A credential key that would hand a reserved secret to the FTPS host (pure).
pub fn forbidden_key(res: &BackupResource) -> Option<Problem> {
    let c = &res.spec.source.ftps.credentials;
    [
        ("usernameKey", &c.username_key),
        ("passwordKey", &c.password_key),
    ]
    .into_iter()
    .find(|(_, key)| RESERVED.contains(&key.as_str()))
    .map(|(field, key)| {
        (
            "CredentialKeyNotAllowed",
            format!(
                "source.ftps.credentials.{field} names `{key}`, which holds the customer's \
                     own storage or repository secret and is never sent to an FTPS server; name \
                     the key holding the FTP credential (default FTP_USERNAME / FTP_PASSWORD)"
            ),
        )
    })
}

/// The first Secret or key the backup pod needs that does not exist.
pub async fn missing_credential(
    ctx: &Context,
    customer: &BackupCustomer,
    res: &BackupResource,
    ns: &str,
) -> Result<Option<Problem>> {
    if let Some(problem) = forbidden_key(res) {
        return Ok(Some(problem));
    }
    let api: Api<Secret> = Api::namespaced(ctx.client.clone(), ns);
    let mut fetched: Vec<(String, Option<Secret>)> = Vec::new();
    for (name, key) in required_keys(customer, res) {
        if !fetched.iter().any(|(n, _)| *n == name) {
            let secret = api.get_opt(&name).await?;
            fetched.push((name.clone(), secret));
        }
        let secret = fetched
            .iter()
            .find(|(n, _)| *n == name)
            .and_then(|(_, s)| s.as_ref());
        let Some(secret) = secret else {
            return Ok(Some((
                "SecretMissing",
                format!("Secret {name} does not exist in namespace {ns}"),
            )));
        };
        let has = secret.data.as_ref().is_some_and(|d| d.contains_key(&key))
            || secret
                .string_data
                .as_ref()
                .is_some_and(|d| d.contains_key(&key));
        if !has {
            return Ok(Some((
                "SecretKeyMissing",
                format!("Secret {name} has no key `{key}`; add it or name another key"),
            )));
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserved_keys_are_refused_as_ftp_credentials() {
        let mut res = BackupResource::test();
        assert_eq!(forbidden_key(&res), None);
        res.spec.source.ftps.credentials.password_key = "S3_SECRET_ACCESS_KEY".into();
        let (reason, message) = forbidden_key(&res).expect("refused");
        assert_eq!(reason, "CredentialKeyNotAllowed");
        assert!(message.contains("passwordKey") && message.contains("S3_SECRET_ACCESS_KEY"));
    }

    #[test]
    fn the_keys_of_a_secret_ref_customer_are_listed() {
        let keys = required_keys(&BackupCustomer::test(), &BackupResource::test());
        let names: Vec<&str> = keys.iter().map(|(_, k)| k.as_str()).collect();
        for k in [
            "FTP_USERNAME",
            "FTP_PASSWORD",
            "REPOSITORY_PASSWORD",
            "S3_ACCESS_KEY_ID",
        ] {
            assert!(names.contains(&k), "{names:?}");
        }
    }
}
