//! `tuskd token`: mints a bearer token, HS256 with the secret `--auth-jwt-secret-file` reads or
//! ES256/RS256/EdDSA with a private key whose public half the server holds, for trying `--auth
//! jwt` out, the demo, scripts and the benchmark. Production tokens come from the
//! platform's identity provider.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::json;

use crate::cli::TokenArgs;
use crate::domain::access::{MEDIA_KINDS, Owner};

/// Prints the token; returns the exit status.
pub async fn run(args: &TokenArgs) -> Result<u8, String> {
    println!("{}", mint(args)?);
    Ok(0)
}

/// The key and algorithm `args` name.
fn key(args: &TokenArgs) -> Result<(EncodingKey, Algorithm), String> {
    let read = |p: &std::path::Path| {
        std::fs::read(p).map_err(|e| format!("cannot read {}: {e}", p.display()))
    };
    if let Some(p) = &args.private_key_file {
        let pem = read(p)?;
        return EncodingKey::from_ec_pem(&pem)
            .map(|k| (k, Algorithm::ES256))
            .or_else(|_| EncodingKey::from_ed_pem(&pem).map(|k| (k, Algorithm::EdDSA)))
            .or_else(|_| EncodingKey::from_rsa_pem(&pem).map(|k| (k, Algorithm::RS256)))
            .map_err(|_| {
                format!(
                    "{}: not a PKCS#8 EC, Ed25519 or RSA private key",
                    p.display()
                )
            });
    }
    let p = args
        .secret_file
        .as_ref()
        .ok_or("--secret-file or --private-key-file")?;
    let secret = crate::auth::read_secret(p)?;
    if secret.len() < 32 {
        return Err("the secret must be at least 32 bytes".into());
    }
    let key = EncodingKey::from_secret(&secret).map_err(|e| e.to_string())?;
    Ok((key, Algorithm::HS256))
}

/// The token `args` describe.
pub fn mint(args: &TokenArgs) -> Result<String, String> {
    Owner::parse(&args.sub).ok_or("--sub must be 1 to 256 printable characters")?;
    let ttl: Duration = humantime::parse_duration(&args.ttl).map_err(|e| format!("--ttl: {e}"))?;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_err(|e| e.to_string())?;
    let mut claims = json!({
        "sub": args.sub,
        "iat": now.as_secs(),
        "exp": (now + ttl).as_secs(),
    });
    let c = claims.as_object_mut().expect("an object");
    if let Some(iss) = &args.iss {
        c.insert("iss".into(), json!(iss));
    }
    if let Some(aud) = &args.aud {
        c.insert("aud".into(), json!(aud));
    }
    if let Some(scope) = &args.scope {
        c.insert("scope".into(), json!(scope));
    }
    if let Some(max) = &args.max_size {
        let n = crate::domain::upload::parse_size(max).map_err(|e| format!("--max-size: {e}"))?;
        c.insert("max_size".into(), json!(n));
    }
    if !args.media_kinds.is_empty() {
        if let Some(bad) = args
            .media_kinds
            .iter()
            .find(|k| !MEDIA_KINDS.contains(&k.as_str()))
        {
            return Err(format!(
                "--media-kind {bad:?}: one of {}",
                MEDIA_KINDS.join(", ")
            ));
        }
        c.insert("media_kinds".into(), json!(args.media_kinds));
    }
    let (key, alg) = key(args)?;
    let mut header = Header::new(alg);
    header.kid = args.kid.clone();
    jsonwebtoken::encode(&header, &claims, &key).map_err(|e| e.to_string())
}
