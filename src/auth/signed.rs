//! Media URLs that can be shared and expire (`--media-access signed`). A signature grants
//! read access to one upload's derived files until a time: it is a path segment,
//! `~{expiry}.{mac}`, placed right after the upload's id in every file URL the status document
//! gives, so the relative URLs inside an HLS master playlist (its variant playlists, their
//! segments) carry it too and play in any player with no other credential. The MAC is
//! HMAC-SHA256 over the upload id and the expiry, truncated to 128 bits; the first key signs,
//! every key verifies (rotation: add the new key first, drop the old one once the URLs it signed
//! have expired).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Bytes of the MAC kept in the URL.
const MAC_BYTES: usize = 16;

/// Why a signed URL is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("the signed URL has expired")]
    Expired,
    #[error("the URL's signature is not valid for this upload")]
    Invalid,
}

/// Signs and checks media URLs.
#[derive(Clone)]
pub struct Signer {
    keys: Vec<Vec<u8>>,
    ttl: Duration,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer")
            .field("keys", &self.keys.len())
            .field("ttl", &self.ttl)
            .finish()
    }
}

impl Signer {
    /// `keys`: the signing key first, then any others still accepted; each at least 32 bytes.
    pub fn new(keys: Vec<Vec<u8>>, ttl: Duration) -> Result<Signer, String> {
        if keys.is_empty() {
            return Err("no key".into());
        }
        if keys.iter().any(|k| k.len() < 32) {
            return Err("every key must be at least 32 bytes".into());
        }
        Ok(Signer { keys, ttl })
    }

    /// Keys from a file: one per line, the signing key first.
    pub fn from_file_text(text: &[u8], ttl: Duration) -> Result<Signer, String> {
        let keys = text
            .split(|b| *b == b'\n')
            .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
            .filter(|l| !l.is_empty())
            .map(<[u8]>::to_vec)
            .collect();
        Signer::new(keys, ttl)
    }

    /// The path segment that grants `id`'s files until `now` + the URL lifetime.
    pub fn sign(&self, id: &str, now: SystemTime) -> String {
        let exp = (now + self.ttl)
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        format!(
            "~{exp}.{}",
            URL_SAFE_NO_PAD.encode(mac(&self.keys[0], id, exp))
        )
    }

    /// Checks a segment `sign` made for `id`; returns when it expires.
    pub fn verify(
        &self,
        id: &str,
        segment: &str,
        now: SystemTime,
    ) -> Result<SystemTime, SignatureError> {
        let (exp, sig) = segment
            .strip_prefix('~')
            .and_then(|s| s.split_once('.'))
            .ok_or(SignatureError::Invalid)?;
        // One spelling per expiry (digits, no leading zero), so one signature is one URL.
        if exp.is_empty() || !exp.bytes().all(|b| b.is_ascii_digit()) || exp.starts_with('0') {
            return Err(SignatureError::Invalid);
        }
        let exp: u64 = exp.parse().map_err(|_| SignatureError::Invalid)?;
        let sig = URL_SAFE_NO_PAD
            .decode(sig)
            .map_err(|_| SignatureError::Invalid)?;
        if sig.len() != MAC_BYTES {
            return Err(SignatureError::Invalid);
        }
        let valid = self.keys.iter().any(|k| {
            let mut m = keyed(k);
            m.update(&message(id, exp));
            m.verify_truncated_left(&sig).is_ok()
        });
        if !valid {
            return Err(SignatureError::Invalid);
        }
        let expires = UNIX_EPOCH + Duration::from_secs(exp);
        if expires <= now {
            return Err(SignatureError::Expired);
        }
        Ok(expires)
    }
}

fn keyed(key: &[u8]) -> Hmac<Sha256> {
    Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes keys of any length")
}

fn message(id: &str, exp: u64) -> Vec<u8> {
    format!("tuskd-media\n{id}\n{exp}").into_bytes()
}

fn mac(key: &[u8], id: &str, exp: u64) -> Vec<u8> {
    let mut m = keyed(key);
    m.update(&message(id, exp));
    m.finalize().into_bytes()[..MAC_BYTES].to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &[u8] = b"0123456789abcdef0123456789abcdef";
    const B: &[u8] = b"fedcba9876543210fedcba9876543210";

    #[test]
    fn a_signature_opens_one_upload_until_it_expires() {
        let s = Signer::new(vec![A.to_vec()], Duration::from_secs(60)).unwrap();
        let now = SystemTime::now();
        let seg = s.sign("up1", now);
        assert!(s.verify("up1", &seg, now).is_ok());
        assert_eq!(s.verify("up2", &seg, now), Err(SignatureError::Invalid));
        assert_eq!(
            s.verify("up1", &seg, now + Duration::from_secs(61)),
            Err(SignatureError::Expired)
        );
        // One character of the MAC changed.
        let mut bad = seg.clone();
        let last = bad.pop().unwrap();
        bad.push(if last == 'A' { 'B' } else { 'A' });
        assert_eq!(s.verify("up1", &bad, now), Err(SignatureError::Invalid));
        // A later expiry with the same MAC.
        let (exp, mac) = seg[1..].split_once('.').unwrap();
        let later = format!("~{}.{mac}", exp.parse::<u64>().unwrap() + 3600);
        assert_eq!(s.verify("up1", &later, now), Err(SignatureError::Invalid));
        let (exp, mac) = seg[1..].split_once('.').unwrap();
        for other in [format!("~0{exp}.{mac}"), format!("~+{exp}.{mac}")] {
            assert_eq!(
                s.verify("up1", &other, now),
                Err(SignatureError::Invalid),
                "{other}"
            );
        }
        for junk in ["", "~", "~1.", "~x.AAAA", "1.AAAA", "~1.!!"] {
            assert_eq!(
                s.verify("up1", junk, now),
                Err(SignatureError::Invalid),
                "{junk}"
            );
        }
    }

    #[test]
    fn keys_rotate_with_two_accepted_at_once() {
        let now = SystemTime::now();
        let old = Signer::new(vec![A.to_vec()], Duration::from_secs(60)).unwrap();
        let seg = old.sign("u", now);
        let both = Signer::from_file_text(
            b"fedcba9876543210fedcba9876543210\n0123456789abcdef0123456789abcdef\n",
            Duration::from_secs(60),
        )
        .unwrap();
        assert!(
            both.verify("u", &seg, now).is_ok(),
            "the old key still verifies"
        );
        let new_only = Signer::new(vec![B.to_vec()], Duration::from_secs(60)).unwrap();
        assert!(
            new_only.verify("u", &both.sign("u", now), now).is_ok(),
            "the new key signs"
        );
        assert_eq!(
            new_only.verify("u", &seg, now),
            Err(SignatureError::Invalid)
        );
        assert!(Signer::new(vec![b"short".to_vec()], Duration::from_secs(1)).is_err());
    }
}
