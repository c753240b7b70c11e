//! Typed tus headers: reading them from a request and writing them to a response.
//!
//! Every reader rejects a header that appears twice or is not visible ASCII, and numbers that
//! are not plain non-negative decimal integers within SQLite's range (2^63 - 1).

use std::time::SystemTime;

use http::{HeaderMap, HeaderName, HeaderValue};

use crate::domain::upload::{Concat, MAX_LENGTH, MAX_PARTIALS, Metadata, UploadId};
use crate::http::error::Error;

/// The protocol version tuskd speaks.
pub const VERSION: &str = "1.0.0";

pub const TUS_RESUMABLE: HeaderName = HeaderName::from_static("tus-resumable");
pub const TUS_VERSION: HeaderName = HeaderName::from_static("tus-version");
pub const TUS_EXTENSION: HeaderName = HeaderName::from_static("tus-extension");
pub const TUS_MAX_SIZE: HeaderName = HeaderName::from_static("tus-max-size");
pub const TUS_CHECKSUM_ALGORITHM: HeaderName = HeaderName::from_static("tus-checksum-algorithm");
pub const UPLOAD_OFFSET: HeaderName = HeaderName::from_static("upload-offset");
pub const UPLOAD_LENGTH: HeaderName = HeaderName::from_static("upload-length");
pub const UPLOAD_DEFER_LENGTH: HeaderName = HeaderName::from_static("upload-defer-length");
pub const UPLOAD_METADATA: HeaderName = HeaderName::from_static("upload-metadata");
pub const UPLOAD_CONCAT: HeaderName = HeaderName::from_static("upload-concat");
pub const UPLOAD_CHECKSUM: HeaderName = HeaderName::from_static("upload-checksum");
pub const UPLOAD_EXPIRES: HeaderName = HeaderName::from_static("upload-expires");
pub const METHOD_OVERRIDE: HeaderName = HeaderName::from_static("x-http-method-override");

pub const OFFSET_OCTET_STREAM: &str = "application/offset+octet-stream";

/// Reads a header that may appear at most once.
pub fn single<'a>(h: &'a HeaderMap, name: &HeaderName) -> Result<Option<&'a str>, Error> {
    let mut values = h.get_all(name).iter();
    let Some(first) = values.next() else {
        return Ok(None);
    };
    let label = static_name(name);
    if values.next().is_some() {
        return Err(Error::DuplicateHeader(label));
    }
    first
        .to_str()
        .map(|s| Some(s.trim()))
        .map_err(|_| Error::UnreadableHeader(label))
}

/// The conventional spelling of a header tuskd reads, for error messages.
fn static_name(name: &HeaderName) -> &'static str {
    match name.as_str() {
        "tus-resumable" => "Tus-Resumable",
        "upload-offset" => "Upload-Offset",
        "upload-length" => "Upload-Length",
        "upload-defer-length" => "Upload-Defer-Length",
        "upload-metadata" => "Upload-Metadata",
        "upload-concat" => "Upload-Concat",
        "upload-checksum" => "Upload-Checksum",
        "x-http-method-override" => "X-HTTP-Method-Override",
        "content-type" => "Content-Type",
        "range" => "Range",
        _ => "header",
    }
}

/// Parses a non-negative decimal integer no larger than `MAX_LENGTH`.
pub fn parse_u64(s: &str) -> Option<u64> {
    if s.is_empty() || s.len() > 19 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse::<u64>().ok().filter(|&n| n <= MAX_LENGTH)
}

/// G4/G5: the request must speak tus 1.0.0.
pub fn check_tus_resumable(h: &HeaderMap) -> Result<(), Error> {
    match single(h, &TUS_RESUMABLE) {
        Ok(Some(VERSION)) => Ok(()),
        _ => Err(Error::UnsupportedVersion),
    }
}

pub fn upload_offset(h: &HeaderMap) -> Result<u64, Error> {
    let v = single(h, &UPLOAD_OFFSET)?.ok_or(Error::InvalidOffset("the header is missing"))?;
    parse_u64(v).ok_or(Error::InvalidOffset("not a non-negative integer"))
}

pub fn upload_length(h: &HeaderMap) -> Result<Option<u64>, Error> {
    match single(h, &UPLOAD_LENGTH)? {
        None => Ok(None),
        Some(v) => parse_u64(v)
            .map(Some)
            .ok_or(Error::InvalidUploadLength("not a non-negative integer")),
    }
}

/// The length a creation request declares: `Some(n)`, or `None` when deferred.
pub fn creation_length(h: &HeaderMap) -> Result<Option<u64>, Error> {
    let length = upload_length(h)?;
    let deferred = match single(h, &UPLOAD_DEFER_LENGTH)? {
        None => false,
        Some("1") => true,
        Some(_) => return Err(Error::InvalidDeferLength),
    };
    match (length, deferred) {
        (Some(_), true) => Err(Error::AmbiguousLength),
        (Some(n), false) => Ok(Some(n)),
        (None, true) => Ok(None),
        (None, false) => Err(Error::InvalidUploadLength(
            "send Upload-Length or Upload-Defer-Length: 1",
        )),
    }
}

pub fn metadata(h: &HeaderMap) -> Result<Option<Metadata>, Error> {
    match single(h, &UPLOAD_METADATA)? {
        None => Ok(None),
        Some(raw) => Ok(Some(Metadata::parse(raw)?)),
    }
}

/// `Upload-Concat`: `partial`, or `final;` followed by space-separated upload URLs (absolute or
/// relative) under `base_path`. Returns the parsed role and the header as received.
pub fn concat(h: &HeaderMap, base_path: &str) -> Result<Option<(Concat, String)>, Error> {
    let Some(raw) = single(h, &UPLOAD_CONCAT)? else {
        return Ok(None);
    };
    if raw == "partial" {
        return Ok(Some((Concat::Partial, raw.to_owned())));
    }
    let Some(list) = raw.strip_prefix("final;") else {
        return Err(Error::InvalidConcat(
            "expected `partial` or `final;<urls>`".into(),
        ));
    };
    let mut ids = Vec::new();
    for url in list.split(' ').filter(|s| !s.is_empty()) {
        let id = id_from_url(url, base_path).ok_or_else(|| {
            Error::InvalidConcat(format!("{url:?} is not an upload URL of this server"))
        })?;
        ids.push(id);
    }
    if ids.is_empty() {
        return Err(Error::InvalidConcat(
            "a final upload needs at least one partial upload".into(),
        ));
    }
    if ids.len() > MAX_PARTIALS {
        return Err(Error::InvalidConcat(format!(
            "more than {MAX_PARTIALS} partial uploads"
        )));
    }
    Ok(Some((Concat::Final(ids), raw.to_owned())))
}

/// The upload id in an absolute or relative upload URL under `base_path`.
fn id_from_url(url: &str, base_path: &str) -> Option<UploadId> {
    let path = if url.starts_with('/') {
        url
    } else {
        let uri: http::Uri = url.parse().ok()?;
        uri.scheme()?;
        let p = uri.path();
        &url[url.find(p).filter(|_| !p.is_empty())?..]
    };
    let path = path.split(['?', '#']).next()?;
    UploadId::parse(path.strip_prefix(base_path)?)
}

/// P2: whether the body is declared as tus upload data.
pub fn is_offset_octet_stream(h: &HeaderMap) -> Result<bool, Error> {
    Ok(single(h, &http::header::CONTENT_TYPE)?.is_some_and(|ct| {
        let media = ct.split(';').next().unwrap_or("").trim();
        media.eq_ignore_ascii_case(OFFSET_OCTET_STREAM)
    }))
}

/// G8: the method a client asks for through `X-HTTP-Method-Override`.
pub fn method_override(h: &HeaderMap) -> Result<Option<http::Method>, Error> {
    match single(h, &METHOD_OVERRIDE)? {
        None => Ok(None),
        Some(m) => http::Method::from_bytes(m.to_ascii_uppercase().as_bytes())
            .map(Some)
            .map_err(|_| Error::UnreadableHeader("X-HTTP-Method-Override")),
    }
}

pub fn number(n: u64) -> HeaderValue {
    HeaderValue::from(n)
}

/// E2: an RFC 9110 IMF-fixdate.
pub fn http_date(t: SystemTime) -> HeaderValue {
    HeaderValue::from_str(&httpdate::fmt_http_date(t)).expect("an HTTP date is a valid header")
}

/// A header value from text a client gave us earlier (and that we validated as a header then).
pub fn echo(s: &str) -> Option<HeaderValue> {
    HeaderValue::from_str(s).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        h
    }

    #[test]
    fn numbers_are_plain_non_negative_decimals() {
        assert_eq!(parse_u64("0"), Some(0));
        assert_eq!(parse_u64("007"), Some(7));
        assert_eq!(parse_u64("9223372036854775807"), Some(i64::MAX as u64));
        for bad in [
            "",
            "-1",
            "+1",
            "1.0",
            " 1",
            "0x10",
            "9223372036854775808",
            "99999999999999999999",
            "1e3",
        ] {
            assert_eq!(parse_u64(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn duplicate_headers_are_refused() {
        let h = map(&[("upload-offset", "1"), ("upload-offset", "1")]);
        assert!(matches!(
            upload_offset(&h),
            Err(Error::DuplicateHeader("Upload-Offset"))
        ));
    }

    #[test]
    fn creation_length_rules() {
        assert_eq!(
            creation_length(&map(&[("upload-length", "5")])).unwrap(),
            Some(5)
        );
        assert_eq!(
            creation_length(&map(&[("upload-defer-length", "1")])).unwrap(),
            None
        );
        assert!(matches!(
            creation_length(&map(&[("upload-defer-length", "2")])),
            Err(Error::InvalidDeferLength)
        ));
        assert!(matches!(
            creation_length(&map(&[
                ("upload-length", "5"),
                ("upload-defer-length", "1")
            ])),
            Err(Error::AmbiguousLength)
        ));
        assert!(matches!(
            creation_length(&map(&[])),
            Err(Error::InvalidUploadLength(_))
        ));
    }

    #[test]
    fn concat_final_accepts_absolute_and_relative_urls() {
        let a = "0123456789abcdef0123456789abcdef";
        let b = "fedcba9876543210fedcba9876543210";
        let h = map(&[(
            "upload-concat",
            &format!("final;http://x.test:1/files/{a} /files/{b}"),
        )]);
        let (c, raw) = concat(&h, "/files/").unwrap().unwrap();
        assert_eq!(
            c,
            Concat::Final(vec![
                UploadId::parse(a).unwrap(),
                UploadId::parse(b).unwrap()
            ])
        );
        assert!(raw.starts_with("final;"));
        for bad in [
            "final;",
            "final;/other/abc",
            "final;/files/../x",
            "partial;x",
            "bogus",
        ] {
            assert!(
                concat(&map(&[("upload-concat", bad)]), "/files/").is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn content_type_ignores_case_and_parameters() {
        assert!(
            is_offset_octet_stream(&map(&[(
                "content-type",
                "Application/Offset+Octet-Stream; x=1"
            )]))
            .unwrap()
        );
        assert!(
            !is_offset_octet_stream(&map(&[("content-type", "application/octet-stream")])).unwrap()
        );
        assert!(!is_offset_octet_stream(&map(&[])).unwrap());
    }
}

/// Random and hostile header text through every parser: none may panic, and what is accepted
/// must satisfy the parser's promise.
#[cfg(test)]
mod fuzz {
    use super::*;
    use crate::http::route::route;
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    const ALPHABET: &[u8] = b"abcAZ09+/=,; -_.~:%\t\"\\\x7f\x80\xffhttp://final;partial/files/";

    fn random_text(rng: &mut StdRng) -> String {
        let len = rng.random_range(0..64);
        let bytes: Vec<u8> = (0..len)
            .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())])
            .collect();
        String::from_utf8_lossy(&bytes).into_owned()
    }

    #[test]
    fn parsers_never_panic_and_keep_their_promises() {
        let mut rng = StdRng::seed_from_u64(0x7a5c);
        for _ in 0..50_000 {
            let s = random_text(&mut rng);
            if let Some(n) = parse_u64(&s) {
                assert!(
                    n <= i64::MAX as u64 && s.bytes().all(|b| b.is_ascii_digit()),
                    "{s:?}"
                );
            }
            if let Ok(m) = Metadata::parse(&s) {
                assert_eq!(m.raw(), s);
                for (k, _) in m.pairs() {
                    assert!(!k.is_empty() && !k.contains([' ', ',']), "{s:?}");
                }
            }
            for m in [http::Method::HEAD, http::Method::PATCH, http::Method::POST] {
                if let Ok(
                    crate::http::route::Route::Head(id) | crate::http::route::Route::Patch(id),
                ) = route(
                    &m,
                    &format!("/files/{s}"),
                    crate::http::route::Paths {
                        base: "/files/",
                        media: None,
                        list: "/uploads",
                    },
                ) {
                    assert!(
                        id.as_str()
                            .bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
                    );
                }
            }
            if let Ok(v) = HeaderValue::from_str(&s) {
                let mut h = HeaderMap::new();
                h.insert(UPLOAD_CONCAT, v.clone());
                h.insert(UPLOAD_METADATA, v.clone());
                h.insert(UPLOAD_LENGTH, v.clone());
                h.insert(UPLOAD_DEFER_LENGTH, v);
                let _ = concat(&h, "/files/");
                let _ = creation_length(&h);
                let _ = metadata(&h);
            }
        }
    }
}
