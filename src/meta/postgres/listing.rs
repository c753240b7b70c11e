//! Listing pages on Postgres (`MetaStore::list_uploads`): the statement `meta::listing`
//! writes, run on a pooled connection.

use tokio_postgres::types::ToSql;

use super::Db;
use crate::domain::listing::{ListQuery, Listed};
use crate::meta::MetaError;
use crate::meta::listing::{self, Arg, Dialect};
use crate::meta::rows::{MediaRow, UPLOAD_COLUMN_COUNT, UploadRow};

pub(super) async fn page(c: &impl Db, q: &ListQuery) -> Result<Vec<Listed>, MetaError> {
    let page = listing::page(q, Dialect::Postgres);
    let args: Vec<&(dyn ToSql + Sync)> = page
        .args
        .iter()
        .map(|a| match a {
            Arg::Text(s) => s as &(dyn ToSql + Sync),
            Arg::Int(i) => i as &(dyn ToSql + Sync),
        })
        .collect();
    let stmt = c.prepare_cached(&page.sql).await?;
    let rows = c.query(&stmt, &args).await?;
    rows.iter()
        .map(|r| {
            Ok(Listed {
                upload: UploadRow::read(r, 0)?.into_upload()?,
                media: MediaRow::read_joined(r, UPLOAD_COLUMN_COUNT)?,
            })
        })
        .collect()
}
