//! The checksum and checksum-trailer extensions: supported algorithms, `Upload-Checksum`
//! parsing, and verifying a chunk against a checksum sent as a header or as a trailer.
//!
//! A trailer names its algorithm only after the body, so a request that announces one
//! (`Trailer: Upload-Checksum`) is hashed with every supported algorithm.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use md5::Md5;
use sha1::Sha1;
use sha2::{Digest, Sha256, Sha512};

use http::HeaderMap;

use crate::http::error::Error;
use crate::http::headers::{UPLOAD_CHECKSUM, single};

/// Advertised in `Tus-Checksum-Algorithm`, most preferred first.
pub const ALGORITHMS: &str = "sha1,sha256,sha512,md5";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Algorithm {
    Sha1,
    Sha256,
    Sha512,
    Md5,
}

const ALL: [Algorithm; 4] = [
    Algorithm::Sha1,
    Algorithm::Sha256,
    Algorithm::Sha512,
    Algorithm::Md5,
];

impl Algorithm {
    pub fn from_name(name: &str) -> Option<Algorithm> {
        match name {
            "sha1" => Some(Algorithm::Sha1),
            "sha256" => Some(Algorithm::Sha256),
            "sha512" => Some(Algorithm::Sha512),
            "md5" => Some(Algorithm::Md5),
            _ => None,
        }
    }

    /// The name Upload-Checksum and Tus-Checksum-Algorithm use.
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Sha1 => "sha1",
            Algorithm::Sha256 => "sha256",
            Algorithm::Sha512 => "sha512",
            Algorithm::Md5 => "md5",
        }
    }
}

/// What the client says its chunk hashes to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Expected {
    pub algorithm: Algorithm,
    pub digest: Vec<u8>,
}

impl Expected {
    /// K7: `<algorithm> <base64 digest>`.
    pub fn parse(value: &str) -> Result<Expected, Error> {
        let (name, b64) = value.split_once(' ').ok_or(Error::InvalidChecksum(
            "expected `<algorithm> <base64 digest>`",
        ))?;
        let algorithm = Algorithm::from_name(name)
            .ok_or_else(|| Error::UnsupportedChecksum(name.chars().take(32).collect()))?;
        let digest = STANDARD
            .decode(b64.trim())
            .map_err(|_| Error::InvalidChecksum("the digest is not valid base64"))?;
        // A digest of the wrong length for its algorithm is well-formed: it simply cannot
        // match, and the chunk is discarded like any mismatching one (460).
        Ok(Expected { algorithm, digest })
    }

    pub fn hasher(&self) -> Hasher {
        self.algorithm.hasher()
    }
}

impl Algorithm {
    pub fn hasher(self) -> Hasher {
        match self {
            Algorithm::Sha1 => Hasher::Sha1(Sha1::new()),
            Algorithm::Sha256 => Hasher::Sha256(Sha256::new()),
            Algorithm::Sha512 => Hasher::Sha512(Box::new(Sha512::new())),
            Algorithm::Md5 => Hasher::Md5(Md5::new()),
        }
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
        .transpose()?;
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
                hashers: ALL.iter().map(|a| (*a, a.hasher())).collect(),
            },
        }
    }

    pub fn update(&mut self, data: &[u8]) {
        for (_, h) in &mut self.hashers {
            h.update(data);
        }
    }

    /// K3/K4: Ok if the chunk matches; the caller discards it otherwise.
    pub fn finish(self, trailers: Option<&HeaderMap>) -> Result<(), Error> {
        let expected = match self.expected {
            Some(e) => e,
            None => {
                let value = trailers
                    .map(|t| single(t, &UPLOAD_CHECKSUM))
                    .transpose()?
                    .flatten()
                    .ok_or(Error::InvalidChecksum(
                        "the announced Upload-Checksum trailer did not arrive",
                    ))?;
                Expected::parse(value)?
            }
        };
        let hasher = self
            .hashers
            .into_iter()
            .find_map(|(a, h)| (a == expected.algorithm).then_some(h))
            .ok_or_else(|| Error::Internal(format!("no hasher for {:?}", expected.algorithm)))?;
        if hasher.finish() == expected.digest {
            Ok(())
        } else {
            Err(Error::ChecksumMismatch)
        }
    }
}

pub enum Hasher {
    Sha1(Sha1),
    Sha256(Sha256),
    Sha512(Box<Sha512>),
    Md5(Md5),
}

impl Hasher {
    pub fn update(&mut self, data: &[u8]) {
        match self {
            Hasher::Sha1(h) => h.update(data),
            Hasher::Sha256(h) => h.update(data),
            Hasher::Sha512(h) => h.update(data),
            Hasher::Md5(h) => h.update(data),
        }
    }

    pub fn finish(self) -> Vec<u8> {
        match self {
            Hasher::Sha1(h) => h.finalize().to_vec(),
            Hasher::Sha256(h) => h.finalize().to_vec(),
            Hasher::Sha512(h) => h.finalize().to_vec(),
            Hasher::Md5(h) => h.finalize().to_vec(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
            let mut v = Verifier::new(Source::Trailer);
            v.update(b"chu");
            v.update(b"nk");
            assert!(v.finish(Some(&trailers)).is_ok(), "{name}");
            let mut v = Verifier::new(Source::Trailer);
            v.update(b"other");
            assert!(
                matches!(v.finish(Some(&trailers)), Err(Error::ChecksumMismatch)),
                "{name}"
            );
        }
        let v = Verifier::new(Source::Trailer);
        assert!(matches!(v.finish(None), Err(Error::InvalidChecksum(_))));
    }

    #[test]
    fn malformed_headers() {
        assert!(matches!(
            Expected::parse("crc32 AAAA"),
            Err(Error::UnsupportedChecksum(_))
        ));
        assert!(matches!(
            Expected::parse("SHA1 Kq5sNclPz7QV2+lfQIuc6R7oRu0="),
            Err(Error::UnsupportedChecksum(_))
        ));
        assert!(matches!(
            Expected::parse("sha1"),
            Err(Error::InvalidChecksum(_))
        ));
        assert!(matches!(
            Expected::parse("sha1 !!!"),
            Err(Error::InvalidChecksum(_))
        ));
        // A sha1-sized digest for sha256 parses, and then does not match.
        let short = Expected::parse("sha256 Kq5sNclPz7QV2+lfQIuc6R7oRu0=").unwrap();
        let mut v = Verifier::new(Source::Header(short));
        v.update(b"hello world");
        assert!(matches!(v.finish(None), Err(Error::ChecksumMismatch)));
    }
}
