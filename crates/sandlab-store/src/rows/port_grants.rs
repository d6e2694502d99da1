//! Rows of `port_grants`.

use crate::error::{Error, Result};
use crate::model::{NewPortGrant, PortGrant, PortGrantKind, MAX_PORT_GRANT_TTL};

/// Longest path a grant keeps.
const MAX_PATH_BYTES: usize = 2048;

#[derive(sqlx::FromRow)]
pub(crate) struct Row {
    id: String,
    kind: String,
    sandbox: String,
    port: i64,
    user_id: Option<String>,
    path: String,
    created_at: i64,
    pub(crate) expires_at: i64,
}

pub(crate) const COLUMNS: &str =
    "g.id, g.kind, g.sandbox, g.port, g.user_id, g.path, g.created_at, g.expires_at";

impl TryFrom<Row> for PortGrant {
    type Error = Error;

    fn try_from(r: Row) -> Result<PortGrant> {
        Ok(PortGrant {
            kind: PortGrantKind::parse(&r.kind)
                .ok_or_else(|| Error::Corrupt(format!("port grant kind {:?}", r.kind)))?,
            port: u16::try_from(r.port)
                .map_err(|_| Error::Corrupt(format!("port grant port {}", r.port)))?,
            id: r.id,
            sandbox: r.sandbox,
            user_id: r.user_id,
            path: r.path,
            created_at_ms: r.created_at,
            expires_at_ms: r.expires_at,
        })
    }
}

/// Checks a new grant's port, path and lifetime.
pub(crate) fn validate_new(new: &NewPortGrant) -> Result<()> {
    if new.port == 0 {
        return Err(Error::Invalid(
            "The port must be between 1 and 65535".into(),
        ));
    }
    if !new.path.starts_with('/') || new.path.len() > MAX_PATH_BYTES {
        return Err(Error::Invalid(format!(
            "The path must start with / and be at most {MAX_PATH_BYTES} bytes"
        )));
    }
    if new.ttl.is_zero() || new.ttl > MAX_PORT_GRANT_TTL {
        return Err(Error::Invalid(
            "A port grant lasts more than zero and at most 30 days".into(),
        ));
    }
    Ok(())
}
