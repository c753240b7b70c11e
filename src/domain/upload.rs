//! The upload domain: ids, `Upload-Metadata`, `Upload-Concat` and the upload record.
//! Pure types and parsers, no I/O; everything that comes from a client is validated here.

use std::fmt;
use std::time::SystemTime;

use base64::Engine as _;

use super::access::Owner;
use base64::engine::general_purpose::STANDARD;

/// The longest `Upload-Metadata` header accepted, in bytes.
pub const MAX_METADATA_BYTES: usize = 16 * 1024;
/// The largest length or offset tuskd records (SQLite stores them as signed 64-bit integers).
pub const MAX_LENGTH: u64 = i64::MAX as u64;
/// The most partial uploads one final upload may name.
pub const MAX_PARTIALS: usize = 1024;

/// A size as people write it (`10GiB`, `512 MB`, `1048576`), at most `MAX_LENGTH`.
pub fn parse_size(s: &str) -> Result<u64, String> {
    let n = parse_size::Config::new()
        .with_binary()
        .parse_size(s.trim())
        .map_err(|e| format!("{s:?}: {e}"))?;
    if n > MAX_LENGTH {
        return Err(format!("{s:?} is too large"));
    }
    Ok(n)
}

/// An upload's id: what follows the base path in its URL.
///
/// tuskd makes 128-bit random ids written as 32 lowercase hex digits. Ids read from URLs are
/// accepted only if they are 1 to 128 characters of `[A-Za-z0-9_-]`, so an id can never carry a
/// path separator, a dot segment or anything that needs escaping in a file name or a URL.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct UploadId(String);

impl UploadId {
    pub fn random() -> Self {
        UploadId(format!("{:032x}", rand::random::<u128>()))
    }

    pub fn parse(s: &str) -> Option<Self> {
        let ok = !s.is_empty()
            && s.len() <= 128
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        ok.then(|| UploadId(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for UploadId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Why an `Upload-Metadata` header was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MetadataError {
    #[error("Upload-Metadata is longer than {MAX_METADATA_BYTES} bytes")]
    TooLarge,
    #[error("Upload-Metadata has an empty key")]
    EmptyKey,
    #[error("Upload-Metadata key {0:?} has characters other than visible ASCII")]
    BadKey(String),
    #[error("Upload-Metadata key {0:?} appears more than once")]
    DuplicateKey(String),
    #[error("Upload-Metadata value of {0:?} is not valid base64")]
    BadValue(String),
    #[error("Upload-Metadata pair {0:?} has more than one space")]
    BadPair(String),
}

/// A parsed `Upload-Metadata` header. The header is kept byte for byte as the client sent it,
/// because HEAD must echo it as received; the decoded pairs keep their order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Metadata {
    raw: String,
    pairs: Vec<(String, Vec<u8>)>,
}

impl Metadata {
    /// Parses a header value: comma-separated `key base64value` pairs, a value being optional.
    pub fn parse(raw: &str) -> Result<Metadata, MetadataError> {
        if raw.len() > MAX_METADATA_BYTES {
            return Err(MetadataError::TooLarge);
        }
        let mut pairs: Vec<(String, Vec<u8>)> = Vec::new();
        if !raw.trim().is_empty() {
            for element in raw.split(',') {
                let element = element.trim_matches([' ', '\t']);
                let (key, value) = match element.split_once(' ') {
                    Some((k, v)) => (k, v),
                    None => (element, ""),
                };
                if value.contains(' ') {
                    return Err(MetadataError::BadPair(element.to_owned()));
                }
                if key.is_empty() {
                    return Err(MetadataError::EmptyKey);
                }
                if !key.bytes().all(|b| b.is_ascii_graphic() && b != b',') {
                    return Err(MetadataError::BadKey(key.to_owned()));
                }
                if pairs.iter().any(|(k, _)| k == key) {
                    return Err(MetadataError::DuplicateKey(key.to_owned()));
                }
                let decoded = STANDARD
                    .decode(value)
                    .map_err(|_| MetadataError::BadValue(key.to_owned()))?;
                pairs.push((key.to_owned(), decoded));
            }
        }
        Ok(Metadata {
            raw: raw.to_owned(),
            pairs,
        })
    }

    /// Metadata from text values (a hook's `MetaData`), checked by the same rules as a
    /// client's header. `None` for no pairs.
    pub fn from_map(
        map: &std::collections::BTreeMap<String, String>,
    ) -> Result<Option<Metadata>, MetadataError> {
        let raw = map
            .iter()
            .map(|(k, v)| match v.is_empty() {
                true => k.clone(),
                false => format!("{k} {}", STANDARD.encode(v)),
            })
            .collect::<Vec<_>>()
            .join(",");
        let m = Metadata::parse(&raw)?;
        Ok((!m.is_empty()).then_some(m))
    }

    /// The header exactly as the client sent it.
    pub fn raw(&self) -> &str {
        &self.raw
    }

    pub fn is_empty(&self) -> bool {
        self.pairs.is_empty()
    }

    pub fn get(&self, key: &str) -> Option<&[u8]> {
        self.pairs
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_slice())
    }

    /// The media type the client declares (`filetype`, `type`, `contentType` or `mimeType`, in
    /// any case), lowercased and without parameters, if it is one (`application/octet-stream`,
    /// which says nothing, is none).
    pub fn declared_type(&self) -> Option<String> {
        let raw = ["filetype", "type", "contenttype", "mimetype"]
            .iter()
            .find_map(|key| {
                self.pairs
                    .iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case(key))
                    .and_then(|(_, v)| std::str::from_utf8(v).ok())
                    .map(|v| v.trim().to_ascii_lowercase())
                    .filter(|v| !v.is_empty())
            })?;
        let bare = raw.split(';').next()?.trim().to_owned();
        (bare.contains('/') && bare != "application/octet-stream").then_some(bare)
    }

    /// A value that is valid UTF-8, as tus clients encode strings.
    pub fn get_str(&self, key: &str) -> Option<&str> {
        self.get(key).and_then(|v| std::str::from_utf8(v).ok())
    }

    pub fn pairs(&self) -> impl Iterator<Item = (&str, &[u8])> {
        self.pairs.iter().map(|(k, v)| (k.as_str(), v.as_slice()))
    }
}

/// The concatenation role of an upload (`Upload-Concat`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Concat {
    None,
    Partial,
    /// A final upload made of these partial uploads, in order.
    Final(Vec<UploadId>),
}

/// Whether an upload is live or has expired (its storage reclaimed, its id answering 410).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    Active,
    Expired,
}

/// The record of one upload, as the metadata store keeps it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Upload {
    pub id: UploadId,
    /// The total length; `None` while the client defers it.
    pub length: Option<u64>,
    /// How many bytes are stored and acknowledged.
    pub offset: u64,
    pub metadata: Option<Metadata>,
    pub concat: Concat,
    /// `Upload-Concat` as the client sent it, echoed on HEAD.
    pub concat_raw: Option<String>,
    pub created_at: SystemTime,
    /// When the unfinished upload expires; `None` if it never does (or is finished).
    pub expires_at: Option<SystemTime>,
    pub state: State,
    /// Who created it (`None`: made while authentication was off).
    pub owner: Option<Owner>,
}

impl Upload {
    pub fn is_complete(&self) -> bool {
        self.length == Some(self.offset)
    }

    pub fn is_final(&self) -> bool {
        matches!(self.concat, Concat::Final(_))
    }

    /// True when the unfinished upload's expiry time has passed.
    pub fn is_expired_at(&self, now: SystemTime) -> bool {
        self.state == State::Expired
            || (!self.is_complete() && self.expires_at.is_some_and(|t| t <= now))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_ids_are_32_hex_digits_and_distinct() {
        let a = UploadId::random();
        let b = UploadId::random();
        assert_eq!(a.as_str().len(), 32);
        assert!(a.as_str().bytes().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
        assert_eq!(UploadId::parse(a.as_str()), Some(a));
    }

    #[test]
    fn ids_with_path_characters_are_refused() {
        for bad in [
            "",
            "..",
            "a/b",
            "a%2fb",
            "a.b",
            "a b",
            &"x".repeat(129),
            "é",
        ] {
            assert_eq!(UploadId::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn metadata_keeps_order_raw_and_decodes() {
        let m = Metadata::parse("filename d29ybGRfZG9taW5hdGlvbl9wbGFuLnBkZg==,is_confidential")
            .unwrap();
        assert_eq!(m.get_str("filename"), Some("world_domination_plan.pdf"));
        assert_eq!(m.get("is_confidential"), Some(&b""[..]));
        assert_eq!(
            m.raw(),
            "filename d29ybGRfZG9taW5hdGlvbl9wbGFuLnBkZg==,is_confidential"
        );
        let keys: Vec<_> = m.pairs().map(|(k, _)| k).collect();
        assert_eq!(keys, ["filename", "is_confidential"]);
    }

    #[test]
    fn the_declared_type_is_read_as_the_pipeline_reads_it() {
        let m = |raw: &str| Metadata::parse(raw).unwrap().declared_type();
        // mimeType "Image/JPEG; q=1"
        assert_eq!(
            m("mimeType SW1hZ2UvSlBFRzsgcT0x").as_deref(),
            Some("image/jpeg")
        );
        // filetype "application/octet-stream" says nothing; type "video/mp4" comes next.
        assert_eq!(
            m("filetype YXBwbGljYXRpb24vb2N0ZXQtc3RyZWFt").as_deref(),
            None
        );
        assert_eq!(m("type dmlkZW8vbXA0").as_deref(), Some("video/mp4"));
        assert_eq!(m("filetype anBlZw==").as_deref(), None); // "jpeg": no slash
    }

    #[test]
    fn metadata_accepts_client_quirks() {
        // tus-js-client: empty value with a trailing space; tuspy: an empty header.
        assert_eq!(
            Metadata::parse("empty ").unwrap().get("empty"),
            Some(&b""[..])
        );
        assert!(Metadata::parse("").unwrap().is_empty());
        assert_eq!(
            Metadata::parse("a YQ==, b Yg==").unwrap().get_str("b"),
            Some("b")
        );
    }

    #[test]
    fn metadata_rejects_malformed_input() {
        assert_eq!(
            Metadata::parse("a !!!"),
            Err(MetadataError::BadValue("a".into()))
        );
        assert_eq!(
            Metadata::parse("a YQ==,a Yg=="),
            Err(MetadataError::DuplicateKey("a".into()))
        );
        assert_eq!(Metadata::parse("a YQ==,"), Err(MetadataError::EmptyKey));
        assert_eq!(Metadata::parse("a,,b"), Err(MetadataError::EmptyKey));
        assert!(matches!(
            Metadata::parse("a YQ== x"),
            Err(MetadataError::BadPair(_))
        ));
        assert!(matches!(
            Metadata::parse("k\u{e9}y YQ=="),
            Err(MetadataError::BadKey(_))
        ));
        assert_eq!(
            Metadata::parse(&format!("a {}", "A".repeat(MAX_METADATA_BYTES))),
            Err(MetadataError::TooLarge)
        );
        // Unpadded base64 is not the standard alphabet with padding.
        assert!(Metadata::parse("a YQ").is_err());
    }
}
