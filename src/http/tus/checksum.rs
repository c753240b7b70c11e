//! The checksum and checksum-trailer extensions: supported algorithms, `Upload-Checksum`
//! parsing, and verifying a chunk against a checksum sent as a header or as a trailer.
//!
//! A trailer names its algorithm only after the body, so a request that announces one
//! (`Trailer: Upload-Checksum`) is hashed with every supported algorithm.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use http::HeaderMap;

use crate::http::error::Error;
use crate::http::headers::{UPLOAD_CHECKSUM, single};
use crate::upload::ChecksumError;
use crate::upload::checksum::{Algorithm, Hasher};

/// Advertised in `Tus-Checksum-Algorithm`, most preferred first.
pub const ALGORITHMS: &str = "sha1,sha256,sha512,md5";

/// What the client says its chunk hashes to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Expected {
    pub algorithm: Algorithm,
    pub digest: Vec<u8>,
}

impl Expected {
    /// K7: `<algorithm> <base64 digest>`.
    pub fn parse(value: &str) -> Result<Expected, ChecksumError> {
        let (name, b64) = value.split_once(' ').ok_or(ChecksumError::Invalid(
            "expected `<algorithm> <base64 digest>`",
        ))?;
        let algorithm = Algorithm::from_name(name)
            .ok_or_else(|| ChecksumError::Unsupported(name.chars().take(32).collect()))?;
        let digest = STANDARD
            .decode(b64.trim())
            .map_err(|_| ChecksumError::Invalid("the digest is not valid base64"))?;
        // A digest of the wrong length for its algorithm is well-formed: it simply cannot
        // match, and the chunk is discarded like any mismatching one (460).
        Ok(Expected { algorithm, digest })
    }

    pub fn hasher(&self) -> Hasher {
        self.algorithm.hasher()
    }
}

/// Where a request's checksum comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    Header(Expected),
    /// Announced with `Trailer: Upload-Checksum`; arrives after the body.
    Trailer,
}

/// How the request's chunk is to be verified, if at all: an `Upload-Checksum` header, or a
/// trailer announced in the `Trailer` header. Both at once is refused.
pub fn source(h: &HeaderMap) -> Result<Option<Source>, Error> {
    let header = single(h, &UPLOAD_CHECKSUM)?
        .map(Expected::parse)
        .transpose()
        .map_err(Error::from)?;
    let announced = h.get_all(http::header::TRAILER).iter().any(|v| {
        v.to_str().is_ok_and(|v| {
            v.split(',')
                .any(|name| name.trim().eq_ignore_ascii_case("upload-checksum"))
        })
    });
    match (header, announced) {
        (Some(_), true) => Err(Error::InvalidChecksum(
            "send Upload-Checksum as a header or as a trailer, not both",
        )),
        (Some(e), false) => Ok(Some(Source::Header(e))),
        (None, true) => Ok(Some(Source::Trailer)),
        (None, false) => Ok(None),
    }
}

/// Hashes a chunk as it streams and checks it at the end.
#[derive(Debug)]
pub struct Verifier {
    expected: Option<Expected>,
    hashers: Vec<(Algorithm, Hasher)>,
}

impl Verifier {
    pub fn new(source: Source) -> Verifier {
        match source {
            Source::Header(e) => Verifier {
                hashers: vec![(e.algorithm, e.hasher())],
                expected: Some(e),
            },
            Source::Trailer => Verifier {
                expected: None,
                hashers: Algorithm::ALL.iter().map(|a| (*a, a.hasher())).collect(),
            },
        }
    }

    /// The check a chunk's trailers complete.
    fn expected(&self, trailers: Option<&HeaderMap>) -> Result<Expected, ChecksumError> {
        if let Some(e) = &self.expected {
            return Ok(e.clone());
        }
        let value = trailers
            .map(|t| single(t, &UPLOAD_CHECKSUM))
            .transpose()
            .map_err(|_| {
                ChecksumError::Invalid("the Upload-Checksum trailer is not one text value")
            })?
            .flatten()
            .ok_or(ChecksumError::Invalid(
                "the announced Upload-Checksum trailer did not arrive",
            ))?;
        Expected::parse(value)
    }
}

impl crate::upload::checksum::Verifier for Verifier {
    fn update(&mut self, data: &[u8]) {
        for (_, h) in &mut self.hashers {
            h.update(data);
        }
    }

    /// K3/K4: Ok if the chunk matches; the core discards it otherwise.
    fn finish(self: Box<Self>, trailers: Option<&HeaderMap>) -> Result<(), ChecksumError> {
        let expected = self.expected(trailers)?;
        let hasher = self
            .hashers
            .into_iter()
            .find_map(|(a, h)| (a == expected.algorithm).then_some(h));
        // Every supported algorithm is hashed when the check comes in a trailer.
        match hasher.map(Hasher::finish) {
            Some(digest) if digest == expected.digest => Ok(()),
            _ => Err(ChecksumError::Mismatch),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::upload::checksum::Verifier as _;
    use sha2::{Digest, Sha512};

    #[test]
    fn spec_example_parses_and_matches() {
        // The protocol's example: sha1 of "hello" is not it, so compute our own.
        let e = Expected::parse("sha1 Kq5sNclPz7QV2+lfQIuc6R7oRu0=").unwrap();
        assert_eq!(e.algorithm, Algorithm::Sha1);
        let mut h = e.hasher();
        h.update(b"hello world");
        assert_eq!(h.finish(), e.digest);
    }

    #[test]
    fn trailer_mode_verifies_any_supported_algorithm() {
        use base64::Engine as _;
        for (name, digest) in [
            ("md5", md5::Md5::digest(b"chunk").to_vec()),
            ("sha512", Sha512::digest(b"chunk").to_vec()),
        ] {
            let mut trailers = HeaderMap::new();
            let value = format!("{name} {}", STANDARD.encode(&digest));
            trailers.insert(UPLOAD_CHECKSUM, value.parse().unwrap());
            let mut v = Box::new(Verifier::new(Source::Trailer));
            v.update(b"chu");
            v.update(b"nk");
            assert!(v.finish(Some(&trailers)).is_ok(), "{name}");
            let mut v = Box::new(Verifier::new(Source::Trailer));
            v.update(b"other");
            assert!(
                matches!(v.finish(Some(&trailers)), Err(ChecksumError::Mismatch)),
                "{name}"
            );
        }
        let v = Box::new(Verifier::new(Source::Trailer));
        assert!(matches!(v.finish(None), Err(ChecksumError::Invalid(_))));
    }

    #[test]
    fn malformed_headers() {
        assert!(matches!(
            Expected::parse("crc32 AAAA"),
            Err(ChecksumError::Unsupported(_))
        ));
        assert!(matches!(
            Expected::parse("SHA1 Kq5sNclPz7QV2+lfQIuc6R7oRu0="),
            Err(ChecksumError::Unsupported(_))
        ));
        assert!(matches!(
            Expected::parse("sha1"),
            Err(ChecksumError::Invalid(_))
        ));
        assert!(matches!(
            Expected::parse("sha1 !!!"),
            Err(ChecksumError::Invalid(_))
        ));
        // A sha1-sized digest for sha256 parses, and then does not match.
        let short = Expected::parse("sha256 Kq5sNclPz7QV2+lfQIuc6R7oRu0=").unwrap();
        let mut v = Box::new(Verifier::new(Source::Header(short)));
        v.update(b"hello world");
        assert!(matches!(v.finish(None), Err(ChecksumError::Mismatch)));
    }
}
