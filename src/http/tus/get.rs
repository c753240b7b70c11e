//! GET: download a finished upload, with single-range support. The type and file name come
//! from the client's metadata, so both are filtered: only types that browsers render safely are
//! served as themselves and inline; everything else is an octet-stream attachment.

use std::ops::Range;

use futures_util::TryStreamExt;
use http::{HeaderMap, HeaderValue, Response, StatusCode, header};
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

use crate::app::App;
use crate::domain::access::Caller;
use crate::domain::upload::{Upload, UploadId};
use crate::http::body::Body;
use crate::http::error::Error;

/// Types a browser may render inline without running script.
const INLINE_TYPES: &[&str] = &[
    "text/plain",
    "image/png",
    "image/jpeg",
    "image/gif",
    "image/bmp",
    "image/webp",
    "image/avif",
    "audio/wave",
    "audio/wav",
    "audio/x-wav",
    "audio/x-pn-wav",
    "audio/webm",
    "audio/ogg",
    "audio/mpeg",
    "audio/mp4",
    "audio/aac",
    "audio/flac",
    "video/webm",
    "video/ogg",
    "video/mp4",
    "application/ogg",
];

/// RFC 8187 attr-char: everything else is percent-encoded in `filename*`.
const ATTR: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'!')
    .remove(b'#')
    .remove(b'$')
    .remove(b'&')
    .remove(b'+')
    .remove(b'-')
    .remove(b'.')
    .remove(b'^')
    .remove(b'_')
    .remove(b'`')
    .remove(b'|')
    .remove(b'~');

pub(crate) async fn handle(
    app: &App,
    caller: &Caller,
    req: &HeaderMap,
    id: &UploadId,
) -> Result<Response<Body>, Error> {
    let (upload, length) = app.uploads.finished(caller, id).await?;
    let range = requested_range(req, length)?;
    let span = range.clone().unwrap_or(0..length);
    let stream = app.uploads.read(id, length, span.clone()).await?;
    let body: Body = StreamBody::new(stream.map_ok(Frame::data)).boxed_unsync();

    let mut resp = Response::new(body);
    let hs = resp.headers_mut();
    let (content_type, disposition) = presentation(&upload);
    hs.insert(header::CONTENT_TYPE, content_type);
    hs.insert(header::CONTENT_DISPOSITION, disposition);
    hs.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    ranged(&mut resp, &span, length, range.is_some());
    Ok(resp)
}

/// The headers of a response carrying `span` of a `length`-byte resource: its length, that
/// ranges are accepted and, for a range asked for, 206 and `Content-Range`.
pub(crate) fn ranged(resp: &mut Response<Body>, span: &Range<u64>, length: u64, partial: bool) {
    let hs = resp.headers_mut();
    hs.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    hs.insert(
        header::CONTENT_LENGTH,
        HeaderValue::from(span.end - span.start),
    );
    if partial {
        let cr = format!(
            "bytes {}-{}/{}",
            span.start,
            span.end.saturating_sub(1),
            length
        );
        hs.insert(
            header::CONTENT_RANGE,
            HeaderValue::from_str(&cr).expect("digits are a valid header"),
        );
        *resp.status_mut() = StatusCode::PARTIAL_CONTENT;
    }
}

/// A single `bytes=` range. Malformed, multi-range or other-unit headers are ignored (the whole
/// file is sent), as RFC 9110 allows; a well-formed range outside the file is 416.
pub(crate) fn requested_range(req: &HeaderMap, length: u64) -> Result<Option<Range<u64>>, Error> {
    let Some(spec) = req
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().strip_prefix("bytes="))
    else {
        return Ok(None);
    };
    if spec.contains(',') {
        return Ok(None);
    }
    let Some((first, last)) = spec.trim().split_once('-') else {
        return Ok(None);
    };
    let num = |s: &str| crate::http::headers::parse_u64(s.trim());
    let unsatisfiable = Error::RangeNotSatisfiable { length };
    let range = match (first.trim().is_empty(), last.trim().is_empty()) {
        (true, true) => return Ok(None),
        // bytes=-N: the last N bytes.
        (true, false) => match num(last) {
            None => return Ok(None),
            Some(0) => return Err(unsatisfiable),
            Some(n) => length.saturating_sub(n)..length,
        },
        (false, _) => {
            let Some(start) = num(first) else {
                return Ok(None);
            };
            let end = if last.trim().is_empty() {
                length
            } else {
                match num(last) {
                    Some(l) if l >= start => (l + 1).min(length),
                    _ => return Ok(None),
                }
            };
            start..end
        }
    };
    if range.start >= length || range.is_empty() {
        return Err(unsatisfiable);
    }
    Ok(Some(range))
}

/// Content-Type and Content-Disposition for a download.
fn presentation(upload: &Upload) -> (HeaderValue, HeaderValue) {
    let meta = upload.metadata.as_ref();
    let filetype = meta
        .and_then(|m| m.get_str("filetype"))
        .map(|t| t.trim().to_ascii_lowercase());
    let (ctype, inline) = match filetype.as_deref() {
        Some(t) if INLINE_TYPES.contains(&t) => (t.to_owned(), true),
        _ => ("application/octet-stream".to_owned(), false),
    };
    let mut disposition = String::from(if inline { "inline" } else { "attachment" });
    if let Some(name) = meta
        .and_then(|m| m.get_str("filename"))
        .filter(|n| !n.is_empty())
    {
        let fallback: String = name
            .chars()
            .map(|c| {
                if c.is_ascii_graphic() && c != '"' && c != '\\' || c == ' ' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        disposition.push_str(&format!(
            "; filename=\"{fallback}\"; filename*=UTF-8''{}",
            utf8_percent_encode(name, ATTR)
        ));
    }
    (
        HeaderValue::from_str(&ctype)
            .unwrap_or(HeaderValue::from_static("application/octet-stream")),
        HeaderValue::from_str(&disposition).unwrap_or(HeaderValue::from_static("attachment")),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::upload::{Concat, Metadata, State};
    use base64::Engine as _;

    fn ranged(v: &str, len: u64) -> Result<Option<Range<u64>>, Error> {
        let mut h = HeaderMap::new();
        h.insert(header::RANGE, HeaderValue::from_str(v).unwrap());
        requested_range(&h, len)
    }

    #[test]
    fn ranges() {
        assert_eq!(ranged("bytes=0-9", 100).unwrap(), Some(0..10));
        assert_eq!(ranged("bytes=90-", 100).unwrap(), Some(90..100));
        assert_eq!(ranged("bytes=-5", 100).unwrap(), Some(95..100));
        assert_eq!(ranged("bytes=-500", 100).unwrap(), Some(0..100));
        assert_eq!(ranged("bytes=50-500", 100).unwrap(), Some(50..100));
        assert!(matches!(
            ranged("bytes=100-", 100),
            Err(Error::RangeNotSatisfiable { length: 100 })
        ));
        assert!(matches!(
            ranged("bytes=-0", 100),
            Err(Error::RangeNotSatisfiable { .. })
        ));
        assert!(matches!(
            ranged("bytes=0-0", 0),
            Err(Error::RangeNotSatisfiable { .. })
        ));
        for ignored in [
            "items=0-1",
            "bytes=0-1,5-6",
            "bytes=x-y",
            "bytes=5-1",
            "bytes=-",
        ] {
            assert_eq!(ranged(ignored, 100).unwrap(), None, "{ignored}");
        }
    }

    fn with_meta(pairs: &[(&str, &str)]) -> Upload {
        let raw = pairs
            .iter()
            .map(|(k, v)| {
                format!(
                    "{k} {}",
                    base64::engine::general_purpose::STANDARD.encode(v)
                )
            })
            .collect::<Vec<_>>()
            .join(",");
        Upload {
            id: UploadId::random(),
            length: Some(0),
            offset: 0,
            metadata: Some(Metadata::parse(&raw).unwrap()),
            concat: Concat::None,
            concat_raw: None,
            created_at: std::time::SystemTime::now(),
            expires_at: None,
            state: State::Active,
            owner: None,
        }
    }

    #[test]
    fn unsafe_types_become_attachments() {
        let (t, d) = presentation(&with_meta(&[
            ("filetype", "text/html"),
            ("filename", "x.html"),
        ]));
        assert_eq!(t, "application/octet-stream");
        assert!(d.to_str().unwrap().starts_with("attachment;"));
        let (t, d) = presentation(&with_meta(&[("filetype", "video/mp4")]));
        assert_eq!(t, "video/mp4");
        assert_eq!(d, "inline");
    }

    #[test]
    fn file_names_are_escaped() {
        let (_, d) = presentation(&with_meta(&[(
            "filename",
            "a\"b\\c\r\nSet-Cookie: x=1; é.mp4",
        )]));
        let d = d.to_str().unwrap();
        assert!(!d.contains('\r') && !d.contains('\n'));
        assert!(
            d.contains("filename=\"a_b_c__Set-Cookie: x=1; _.mp4\""),
            "{d}"
        );
        assert!(
            d.contains("filename*=UTF-8''a%22b%5Cc%0D%0ASet-Cookie%3A%20x%3D1%3B%20%C3%A9.mp4"),
            "{d}"
        );
    }
}
