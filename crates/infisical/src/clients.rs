//! One client per machine identity, kept between calls: its token is reused until it is due for
//! renewal, and a refused login is not repeated until [`crate::LOGIN_RETRY_AFTER`] has passed.
//! A process that checks many identities again and again (the operator, every reconcile) would
//! otherwise log in each time: each login mints a token, may use up a client secret with a use
//! limit, and a wrong secret retried would lock the identity out for its backup jobs too.

use std::collections::hash_map::DefaultHasher;
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex};

use unstoppable_contract::Secret;

use crate::{Infisical, SecretsError};

/// Site URL, client id, and a hash of the client secret (a changed secret is a new identity).
type Key = (String, String, u64);

#[derive(Default)]
pub struct Clients {
    clients: Mutex<HashMap<Key, Arc<Infisical>>>,
}

impl Clients {
    /// The client of this identity, the same one as last time when nothing changed.
    pub fn get(
        &self,
        site_url: &str,
        client_id: Secret,
        client_secret: Secret,
    ) -> Result<Arc<Infisical>, SecretsError> {
        let mut h = DefaultHasher::new();
        client_secret.expose().hash(&mut h);
        let key = (
            site_url.to_string(),
            client_id.expose().to_string(),
            h.finish(),
        );
        let mut clients = self
            .clients
            .lock()
            .map_err(|_| SecretsError::Protocol("client cache poisoned".into()))?;
        if let Some(client) = clients.get(&key) {
            return Ok(client.clone());
        }
        // The identity's previous secret is no longer used.
        clients.retain(|(site, id, _), _| !(site == &key.0 && id == &key.1));
        let client = Arc::new(Infisical::new(site_url, client_id, client_secret)?);
        clients.insert(key, client.clone());
        Ok(client)
    }
}
