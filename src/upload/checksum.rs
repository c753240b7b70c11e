//! Checksums of appended data: the supported algorithms and their hashers, and `Verifier`, the
//! check a door plugs into an append (tus: `Upload-Checksum`, as a header or a trailer). The
//! core feeds the verifier every byte it stores and commits the chunk only if it agrees.

use http::HeaderMap;
use md5::Md5;
use sha1::Sha1;
use sha2::{Digest, Sha256, Sha512};

use super::ChecksumError;

/// Checks one chunk of appended data as it streams.
pub trait Verifier: Send + std::fmt::Debug {
    fn update(&mut self, data: &[u8]);

    /// Whether the chunk is the one the client meant; `trailers` are those that followed the
    /// data, where the check may have been sent.
    fn finish(self: Box<Self>, trailers: Option<&HeaderMap>) -> Result<(), ChecksumError>;
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Algorithm {
    Sha1,
    Sha256,
    Sha512,
    Md5,
}

impl Algorithm {
    /// Every supported algorithm, most preferred first.
    pub const ALL: [Algorithm; 4] = [
        Algorithm::Sha1,
        Algorithm::Sha256,
        Algorithm::Sha512,
        Algorithm::Md5,
    ];

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

    pub fn hasher(self) -> Hasher {
        match self {
            Algorithm::Sha1 => Hasher::Sha1(Sha1::new()),
            Algorithm::Sha256 => Hasher::Sha256(Sha256::new()),
            Algorithm::Sha512 => Hasher::Sha512(Box::new(Sha512::new())),
            Algorithm::Md5 => Hasher::Md5(Md5::new()),
        }
    }
}

#[derive(Debug)]
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
