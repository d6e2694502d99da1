//! What the SQLite and PostgreSQL stores share: the rows they read (one module a table),
//! their conversions into the model's types, the column lists and constants their queries
//! use, and the pure helpers around them. The queries themselves stay with each store, as
//! the two dialects spell them differently.

pub(crate) mod audit;
pub(crate) mod identities;
pub(crate) mod invites;
pub(crate) mod labs;
pub(crate) mod leases;
pub(crate) mod orgs;
pub(crate) mod port_grants;
pub(crate) mod resets;
pub(crate) mod sandboxes;
pub(crate) mod sessions;
pub(crate) mod submissions;
pub(crate) mod tokens;
pub(crate) mod users;

use crate::error::{Error, Result};
use crate::page::{decode_keyset, Page, PageRequest};

/// A count from the database (never negative) as `u64`.
pub(crate) fn count(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

/// A page of the models of `rows`, read for `limit` (one row more than `limit` means a next
/// page), the next page's cursor made by `key` from the page's last model.
fn page_of<R, T>(rows: Vec<R>, limit: u32, key: impl Fn(&T) -> String) -> Result<Page<T>>
where
    T: TryFrom<R, Error = Error>,
{
    let models = rows
        .into_iter()
        .map(T::try_from)
        .collect::<Result<Vec<_>>>()?;
    Ok(Page::from_rows(models, limit, key))
}

/// The `(created_at, id)` a keyset page of `kind` starts after: its cursor's, or before the
/// first row.
fn keyset_after(kind: &str, page: &PageRequest) -> Result<(i64, String)> {
    match &page.cursor {
        Some(c) => decode_keyset(kind, c),
        None => Ok((i64::MIN, String::new())),
    }
}
