//! Which Secret keys a resource's backup pod needs, and whether they exist. A missing key would
//! otherwise leave the pod in `CreateContainerConfigError` until its deadline. Only key names
//! are looked at, never values.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Secret;
use kube::Api;

use crate::context::Context;
use crate::crd::{BackupCustomer, BackupResource};
use crate::error::Result;
use crate::keys::{
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
    let mut fetched: Vec<(String, Option<KeyNames>)> = Vec::new();
    for (name, key) in required_keys(customer, res) {
        if !fetched.iter().any(|(n, _)| *n == name) {
            let keys = ctx.secret_keys.get(ctx, ns, &name).await?;
            fetched.push((name.clone(), keys));
        }
        let keys = fetched
            .iter()
            .find(|(n, _)| *n == name)
            .and_then(|(_, s)| s.as_ref());
        let Some(keys) = keys else {
            return Ok(Some((
                "SecretMissing",
                format!("Secret {name} does not exist in namespace {ns}"),
            )));
        };
        if !keys.contains(&key) {
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

/// The key names of Secrets, kept for a few seconds: the resources of one customer share its
/// Secret, and reading it once per resource would be most of the operator's requests when
/// thousands of resources are reconciled at once. Only names are kept, never values.
#[derive(Debug, Default)]
pub struct SecretKeyNames {
    cache: Mutex<HashMap<(String, String), Read>>,
}

/// When a Secret was read, and its key names (`None`: it did not exist).
type Read = (Instant, Option<KeyNames>);

/// The key names of one Secret.
pub type KeyNames = Arc<BTreeSet<String>>;

/// How long a Secret's key names are trusted without reading it again.
const KEY_NAMES_TTL: Duration = Duration::from_secs(10);

impl SecretKeyNames {
    /// The key names of Secret `ns/name`, or `None` when it does not exist.
    pub async fn get(&self, ctx: &Context, ns: &str, name: &str) -> Result<Option<KeyNames>> {
        let id = (ns.to_string(), name.to_string());
        if let Ok(mut cache) = self.cache.lock() {
            cache.retain(|_, (read, _)| read.elapsed() < KEY_NAMES_TTL);
            if let Some((_, keys)) = cache.get(&id) {
                return Ok(keys.clone());
            }
        }
        let api: Api<Secret> = Api::namespaced(ctx.client.clone(), ns);
        let keys = api.get_opt(name).await?.map(|secret| {
            let data = secret.data.into_iter().flat_map(|d| d.into_keys());
            let string_data = secret.string_data.into_iter().flat_map(|d| d.into_keys());
            Arc::new(data.chain(string_data).collect::<BTreeSet<String>>())
        });
        if let Ok(mut cache) = self.cache.lock() {
            cache.insert(id, (Instant::now(), keys.clone()));
        }
        Ok(keys)
    }
}
