//! The checksum extension: supported algorithms, `Upload-Checksum` parsing and hashing.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use md5::Md5;
use sha1::Sha1;
use sha2::{Digest, Sha256, Sha512};

use crate::error::Error;

/// Advertised in `Tus-Checksum-Algorithm`, most preferred first.
pub const ALGORITHMS: &str = "sha1,sha256,sha512,md5";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Algorithm {
    Sha1,
    Sha256,
    Sha512,
    Md5,
}

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

    fn output_len(self) -> usize {
        match self {
            Algorithm::Sha1 => 20,
            Algorithm::Sha256 => 32,
            Algorithm::Sha512 => 64,
            Algorithm::Md5 => 16,
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
        if digest.len() != algorithm.output_len() {
            return Err(Error::InvalidChecksum(
                "the digest has the wrong length for its algorithm",
            ));
        }
        Ok(Expected { algorithm, digest })
    }

    pub fn hasher(&self) -> Hasher {
        match self.algorithm {
            Algorithm::Sha1 => Hasher::Sha1(Sha1::new()),
            Algorithm::Sha256 => Hasher::Sha256(Sha256::new()),
            Algorithm::Sha512 => Hasher::Sha512(Box::new(Sha512::new())),
            Algorithm::Md5 => Hasher::Md5(Md5::new()),
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
        assert!(matches!(
            Expected::parse("sha256 Kq5sNclPz7QV2+lfQIuc6R7oRu0="),
            Err(Error::InvalidChecksum(_))
        ));
    }
}
