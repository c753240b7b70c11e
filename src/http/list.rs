//! `GET /uploads` ("my uploads"): the caller's uploads, newest first, a page at a time with a
//! keyset cursor (`?cursor=&limit=`), filtered by `status` (`uploading`, `finished`) and media
//! `kind` (`video`, `audio`, `image`, `document`); an admin lists every owner's, or one owner's
//! with `owner=`. Each entry has what a "resume on another device" or library page needs: the
//! upload's URL, name, type, length and offset, when it was made and expires, its media status
//! and poster. Served only when requests are authenticated: with `--auth none` there is no
//! "mine" to list.

use http::{HeaderMap, Response};
use serde_json::{Value, json};

use crate::app::App;
use crate::domain::access::{Caller, MEDIA_KINDS, Owner};
use crate::domain::listing::{Cursor, DEFAULT_PAGE, ListQuery, ListStatus, Listed, MAX_PAGE};
use crate::http::body::{Body, json_response};
use crate::http::error::Error;

pub(crate) async fn handle(
    app: &App,
    caller: &Caller,
    req: &HeaderMap,
    uri: &http::Uri,
) -> Result<Response<Body>, Error> {
    if !app.auth.is_on() {
        return Err(Error::ListingOff);
    }
    let query = query(caller, uri.query().unwrap_or_default())?;
    let page = app.uploads.meta.list_uploads(&query).await?;
    let next = (page.len() == query.limit)
        .then(|| page.last().map(|l| Cursor::after(&l.upload).encode()))
        .flatten();
    let base = crate::http::tus::absolute_url(app, req, uri, &app.config.base_path);
    let media = app
        .config
        .media
        .as_ref()
        .map(|m| crate::http::tus::absolute_url(app, req, uri, &m.path));
    let now = app.uploads.clock.now();
    let sign = |id: &str| app.signer.as_ref().map(|s| format!("{}/", s.sign(id, now)));
    let uploads: Vec<Value> = page
        .iter()
        .map(|l| {
            let sig = sign(l.upload.id.as_str()).unwrap_or_default();
            entry(l, &base, media.as_deref(), &sig, now)
        })
        .collect();
    let doc = json!({ "uploads": uploads, "next_cursor": next });
    Ok(json_response(http::StatusCode::OK, doc))
}

/// The page a query string asks for, within what the caller may see.
fn query(caller: &Caller, qs: &str) -> Result<ListQuery, Error> {
    let mut q = ListQuery {
        owner: caller.owner.clone(),
        after: None,
        limit: DEFAULT_PAGE,
        status: None,
        media_kind: None,
    };
    if caller.sees_all {
        q.owner = None;
    }
    for (k, v) in url::form_urlencoded::parse(qs.as_bytes()) {
        match &*k {
            "cursor" if !v.is_empty() => {
                q.after = Some(Cursor::decode(&v).ok_or(Error::InvalidQuery("unknown cursor"))?);
            }
            "limit" => {
                q.limit = v
                    .parse::<usize>()
                    .ok()
                    .filter(|n| (1..=MAX_PAGE).contains(n))
                    .ok_or(Error::InvalidQuery("limit must be 1 to 1000"))?;
            }
            "status" if !v.is_empty() => {
                q.status = Some(
                    ListStatus::parse(&v)
                        .ok_or(Error::InvalidQuery("status must be uploading or finished"))?,
                );
            }
            "kind" if !v.is_empty() => {
                if !MEDIA_KINDS.contains(&&*v) {
                    return Err(Error::InvalidQuery(
                        "kind must be video, audio, image or document",
                    ));
                }
                q.media_kind = Some(v.into_owned());
            }
            // An admin may look at one owner; anyone else sees only their own anyway.
            "owner" if caller.sees_all && !v.is_empty() => {
                q.owner = Some(Owner::parse(&v).ok_or(Error::InvalidQuery("invalid owner"))?);
            }
            _ => {}
        }
    }
    if q.owner.is_none() && !caller.sees_all {
        // An authenticated caller always has an owner; fail closed if not.
        return Err(Error::NotFound);
    }
    Ok(q)
}

/// One upload's entry; `sig` (empty, or a signature and `/`) follows the id in file URLs.
fn entry(
    l: &Listed,
    base: &str,
    media: Option<&str>,
    sig: &str,
    now: std::time::SystemTime,
) -> Value {
    let u = &l.upload;
    let id = u.id.as_str();
    let meta = |keys: &[&str]| {
        u.metadata
            .as_ref()
            .and_then(|m| keys.iter().find_map(|k| m.get_str(k)))
            .map(str::to_owned)
    };
    let time = |t: std::time::SystemTime| httpdate::fmt_http_date(t);
    let poster = l.media.as_ref().and_then(|r| {
        let p = r.published.as_ref()?;
        let v = p.variants.iter().find(|v| v.kind == "poster")?;
        Some(format!("{}{id}/{sig}{}/{}", media?, p.version, v.path))
    });
    json!({
        "id": id,
        "url": format!("{base}{id}"),
        "filename": meta(&["filename", "name"]),
        "type": meta(&["filetype", "type", "contentType"]),
        "length": u.length,
        "offset": u.offset,
        "status": match (u.is_complete(), u.is_expired_at(now)) {
            (true, _) => "finished",
            // Past its expiry, not yet swept: it cannot be resumed.
            (false, true) => "expired",
            (false, false) => "uploading",
        },
        "created": time(u.created_at),
        "expires": u.expires_at.map(time),
        "media": l.media.as_ref().map(|r| json!({
            "status": r.status.as_str(),
            "type": r.detected,
            "url": media.map(|m| format!("{m}{id}")),
            "poster": poster,
        })),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owner(s: &str) -> Caller {
        Caller::owner(Owner::parse(s).unwrap())
    }

    #[test]
    fn a_caller_lists_only_its_own_whatever_it_asks() {
        let q = query(
            &owner("alice"),
            "owner=bob&limit=10&status=finished&kind=video",
        )
        .unwrap();
        assert_eq!(q.owner.unwrap().as_str(), "alice");
        assert_eq!(q.limit, 10);
        assert_eq!(q.status, Some(ListStatus::Finished));
        assert_eq!(q.media_kind.as_deref(), Some("video"));
        let admin = Caller {
            sees_all: true,
            ..owner("root")
        };
        assert_eq!(query(&admin, "").unwrap().owner, None);
        assert_eq!(
            query(&admin, "owner=bob").unwrap().owner.unwrap().as_str(),
            "bob"
        );
    }

    #[test]
    fn bad_queries_are_refused() {
        for qs in [
            "limit=0",
            "limit=1001",
            "limit=x",
            "status=done",
            "kind=exe",
            "cursor=zz",
        ] {
            assert!(
                matches!(query(&owner("a"), qs), Err(Error::InvalidQuery(_))),
                "{qs}"
            );
        }
    }
}
