use std::sync::{Arc, Mutex};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::conn::{Connector, Ftp};
use super::FtpsError;

/// A bounded pool of logged-in control connections, shared by listing and downloads.
pub struct Pool {
    connector: Connector,
    idle: Mutex<Vec<Ftp>>,
    permits: Arc<Semaphore>,
    max_connections: usize,
}

/// One connection on loan. Hand it back with [`Lease::release`] after a clean exchange; a lease
/// dropped without release (an error, a timeout) closes its connection, so no half-read reply is
/// ever reused.
pub struct Lease {
    conn: Option<Ftp>,
    pool: Arc<Pool>,
    _permit: OwnedSemaphorePermit,
}

impl Pool {
    pub fn new(connector: Connector, max_connections: usize) -> Arc<Self> {
        Arc::new(Self {
            connector,
            idle: Mutex::new(Vec::new()),
            permits: Arc::new(Semaphore::new(max_connections.max(1))),
            max_connections: max_connections.max(1),
        })
    }

    pub fn max_connections(&self) -> usize {
        self.max_connections
    }

    pub fn connector(&self) -> &Connector {
        &self.connector
    }

    pub async fn get(self: &Arc<Self>) -> Result<Lease, FtpsError> {
        let permit = self
            .permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| FtpsError::Protocol("connection pool closed".into()))?;
        let idle = self.idle.lock().ok().and_then(|mut idle| idle.pop());
        let conn = match idle {
            Some(conn) => conn,
            None => self.connector.connect().await?,
        };
        Ok(Lease {
            conn: Some(conn),
            pool: self.clone(),
            _permit: permit,
        })
    }

    /// Logs out of idle connections.
    pub async fn close(&self) {
        let conns: Vec<Ftp> = self
            .idle
            .lock()
            .map(|mut idle| idle.drain(..).collect())
            .unwrap_or_default();
        for mut conn in conns {
            let _ = tokio::time::timeout(self.connector.timeout(), conn.quit()).await;
        }
    }
}

impl Lease {
    pub fn ftp(&mut self) -> &mut Ftp {
        // Invariant: `conn` is only taken by `release`, which consumes the lease.
        self.conn
            .as_mut()
            .expect("lease holds a connection until released")
    }

    /// Hands the connection back when the server answered (a success or a refusal: the
    /// connection is in step), closes it after anything else.
    pub fn settle<T>(self, result: &Result<T, FtpsError>) {
        if matches!(result, Ok(_) | Err(FtpsError::Refused { .. })) {
            self.release();
        }
    }

    pub fn release(mut self) {
        if let (Some(conn), Ok(mut idle)) = (self.conn.take(), self.pool.idle.lock()) {
            idle.push(conn);
        }
    }
}
