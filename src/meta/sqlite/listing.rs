//! Listing pages on SQLite (`MetaStore::list_uploads`): the statement `meta::listing` writes,
//! run on a reader.

use rusqlite::Connection;
use rusqlite::types::Value;

use crate::domain::listing::{ListQuery, Listed};
use crate::meta::MetaError;
use crate::meta::listing::{self, Arg, Dialect};
use crate::meta::rows::{MediaRow, UPLOAD_COLUMN_COUNT, UploadRow};

pub(super) fn page(c: &Connection, q: &ListQuery) -> Result<Vec<Listed>, MetaError> {
    let page = listing::page(q, Dialect::Sqlite);
    let args = page.args.into_iter().map(|a| match a {
        Arg::Text(s) => Value::Text(s),
        Arg::Int(i) => Value::Integer(i),
    });
    let mut stmt = c.prepare_cached(&page.sql)?;
    let mut rows = stmt.query(rusqlite::params_from_iter(args))?;
    let mut out = Vec::new();
    while let Some(r) = rows.next()? {
        out.push(Listed {
            upload: UploadRow::read(r, 0)?.into_upload()?,
            media: MediaRow::read_joined(r, UPLOAD_COLUMN_COUNT)?,
        });
    }
    Ok(out)
}
