//! The SQL of a listing page (`MetaStore::list_uploads`), one text for both backends: the
//! active uploads of one owner or of every owner, newest first, strictly after the cursor,
//! each with its media record (a LEFT JOIN), filtered by where the upload stands and by the
//! kind of media detected in it.
//!
//! The owner's listing walks the index `uploads_owner_listed` (owner, created_at DESC,
//! id DESC), the admin's `uploads_listed` (created_at DESC, id DESC), both of active uploads
//! only: a page reads its rows in the order it returns them, starting at the cursor, and stops
//! after `limit` of them (more when a filter skips some), however long the list is.

use super::rows::{MEDIA_COLUMNS, UPLOAD_COLUMNS, qualified};
use crate::domain::listing::{ListQuery, ListStatus, MAX_PAGE};

/// Whose SQL: the placeholders and the case-insensitive LIKE differ.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Dialect {
    Sqlite,
    Postgres,
}

/// A value bound to a placeholder.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Arg {
    Text(String),
    Int(i64),
}

/// A page's statement and its arguments, in placeholder order. Its rows are the
/// `UPLOAD_COLUMNS` of the upload, then the `MEDIA_COLUMNS` of its media record (all NULL
/// when it has none).
#[derive(Debug)]
pub(super) struct PageSql {
    pub sql: String,
    pub args: Vec<Arg>,
}

/// The statement of the page `q` asks for.
pub(super) fn page(q: &ListQuery, dialect: Dialect) -> PageSql {
    let mut args = Vec::new();
    let mut bind = |a: Arg| {
        args.push(a);
        match dialect {
            Dialect::Sqlite => format!("?{}", args.len()),
            Dialect::Postgres => format!("${}", args.len()),
        }
    };
    let mut filters = vec!["u.state = 'active'".to_owned()];
    if let Some(owner) = &q.owner {
        filters.push(format!("u.owner = {}", bind(Arg::Text(owner.to_string()))));
    }
    if let Some(c) = &q.after {
        let (ms, id) = (
            bind(Arg::Int(c.created_ms)),
            bind(Arg::Text(c.id.to_string())),
        );
        filters.push(format!("(u.created_at, u.id) < ({ms}, {id})"));
    }
    match q.status {
        Some(ListStatus::Uploading) => {
            filters.push("(u.length IS NULL OR u.\"offset\" < u.length)".into())
        }
        Some(ListStatus::Finished) => filters.push("u.length = u.\"offset\"".into()),
        None => {}
    }
    if let Some(kind) = &q.media_kind {
        filters.push(kind_filter(kind, dialect));
    }
    let limit = bind(Arg::Int(q.limit.min(MAX_PAGE) as i64));
    let media = match dialect {
        // SQLite keeps the left table of a LEFT JOIN as the outer loop.
        Dialect::Sqlite => "LEFT JOIN media m ON m.id = u.id",
        // A kind filter would let Postgres make the join an inner one and start from media
        // (a scan of every record, then a sort); the lateral subquery, which OFFSET 0 keeps
        // from being flattened, looks each record up by its upload's id, in the index's order.
        Dialect::Postgres => {
            "LEFT JOIN LATERAL (SELECT * FROM media WHERE media.id = u.id OFFSET 0) m ON true"
        }
    };
    let sql = format!(
        "SELECT {}, {} FROM uploads u {media}
         WHERE {} ORDER BY u.created_at DESC, u.id DESC LIMIT {limit}",
        qualified("u", UPLOAD_COLUMNS),
        qualified("m", MEDIA_COLUMNS),
        filters.join(" AND ")
    );
    PageSql { sql, args }
}

/// The top-level types of the kinds named after them; every other detected type is a
/// `document`.
const TOP_LEVEL: [&str; 3] = ["video", "audio", "image"];

/// Uploads whose media record's detected type is of `kind`: `video/…`, `audio/…`, `image/…`,
/// or (`document`) any other detected type. An upload without a record, or whose type was
/// not detected, is of no kind; so is every upload for a kind this store does not know.
fn kind_filter(kind: &str, dialect: Dialect) -> String {
    // SQLite's LIKE ignores ASCII case; Postgres' ILIKE does the same.
    let like = match dialect {
        Dialect::Sqlite => "LIKE",
        Dialect::Postgres => "ILIKE",
    };
    if TOP_LEVEL.contains(&kind) {
        return format!("m.detected {like} '{kind}/%'");
    }
    if kind == "document" {
        let others = TOP_LEVEL.map(|t| format!("m.detected NOT {like} '{t}/%'"));
        return format!("m.detected IS NOT NULL AND {}", others.join(" AND "));
    }
    "1 = 0".into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::access::Owner;
    use crate::domain::listing::Cursor;
    use crate::domain::upload::UploadId;

    #[test]
    fn a_page_binds_what_it_filters_on() {
        let q = ListQuery {
            owner: Some(Owner::parse("alice").unwrap()),
            after: Some(Cursor {
                created_ms: 7,
                id: UploadId::parse("x").unwrap(),
            }),
            limit: 5000,
            status: Some(ListStatus::Finished),
            media_kind: Some("document".into()),
        };
        let p = page(&q, Dialect::Postgres);
        assert_eq!(
            p.args,
            [
                Arg::Text("alice".into()),
                Arg::Int(7),
                Arg::Text("x".into()),
                Arg::Int(MAX_PAGE as i64)
            ]
        );
        assert!(
            p.sql
                .contains("u.owner = $1 AND (u.created_at, u.id) < ($2, $3)")
        );
        assert!(p.sql.contains("m.detected NOT ILIKE 'image/%'"));
        assert!(p.sql.ends_with("LIMIT $4"));
        let everyone = ListQuery {
            owner: None,
            after: None,
            limit: 10,
            status: None,
            media_kind: Some("spreadsheet".into()),
        };
        let p = page(&everyone, Dialect::Sqlite);
        assert_eq!(p.args, [Arg::Int(10)]);
        assert!(
            p.sql
                .contains("WHERE u.state = 'active' AND 1 = 0 ORDER BY")
        );
    }
}
