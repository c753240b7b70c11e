//! "My uploads": what a listing asks the metadata store for, and the keyset cursor that pages
//! through it newest first. A page starts strictly after the cursor's (created_at, id), so an
//! upload inserted while a client pages (newer than every cursor) never shifts a page, and
//! every upload that existed when paging began is returned exactly once.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use super::access::Owner;
use super::media::MediaRecord;
use super::upload::{Upload, UploadId};

/// The most uploads one page holds.
pub const MAX_PAGE: usize = 1000;
/// A page's size when the client names none.
pub const DEFAULT_PAGE: usize = 50;

/// Where the previous page ended: its last upload's creation time (unix milliseconds) and id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cursor {
    pub created_ms: i64,
    pub id: UploadId,
}

impl Cursor {
    pub fn after(upload: &Upload) -> Cursor {
        let created_ms = upload
            .created_at
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0);
        Cursor {
            created_ms,
            id: upload.id.clone(),
        }
    }

    /// The opaque text a client passes back (`?cursor=`).
    pub fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(format!("{}.{}", self.created_ms, self.id))
    }

    /// A cursor this server made; `None` for anything else.
    pub fn decode(s: &str) -> Option<Cursor> {
        if s.len() > 256 {
            return None;
        }
        let text = String::from_utf8(URL_SAFE_NO_PAD.decode(s).ok()?).ok()?;
        let (ms, id) = text.split_once('.')?;
        let created_ms = ms.parse::<i64>().ok().filter(|m| *m >= 0)?;
        Some(Cursor {
            created_ms,
            id: UploadId::parse(id)?,
        })
    }

    pub fn created_at(&self) -> SystemTime {
        UNIX_EPOCH + Duration::from_millis(self.created_ms as u64)
    }
}

/// Which uploads a listing wants, by where they stand.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ListStatus {
    /// Active and not yet complete.
    Uploading,
    /// Complete (whatever its media status).
    Finished,
}

impl ListStatus {
    pub fn parse(s: &str) -> Option<ListStatus> {
        match s {
            "uploading" => Some(ListStatus::Uploading),
            "finished" => Some(ListStatus::Finished),
            _ => None,
        }
    }
}

/// One page's question.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListQuery {
    /// Only this owner's uploads; `None`: every owner's (an admin).
    pub owner: Option<Owner>,
    /// Start after this upload (newest first).
    pub after: Option<Cursor>,
    /// At most this many (1..=`MAX_PAGE`).
    pub limit: usize,
    pub status: Option<ListStatus>,
    /// Only uploads whose media record's detected type is of this kind (`video`, `audio`,
    /// `image`, `document`).
    pub media_kind: Option<String>,
}

/// One listed upload with its media record, if it has one.
#[derive(Clone, Debug)]
pub struct Listed {
    pub upload: Upload,
    pub media: Option<MediaRecord>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_refuse_forgeries() {
        let c = Cursor {
            created_ms: 1_700_000_000_123,
            id: UploadId::parse("abc_DEF-1").unwrap(),
        };
        assert_eq!(Cursor::decode(&c.encode()), Some(c));
        for bad in [
            "",
            "!!",
            "bm9wZQ",
            &URL_SAFE_NO_PAD.encode("-1.abc"),
            &URL_SAFE_NO_PAD.encode("1.a/b"),
        ] {
            assert_eq!(Cursor::decode(bad), None, "{bad}");
        }
        assert_eq!(Cursor::decode(&"A".repeat(300)), None);
    }
}
