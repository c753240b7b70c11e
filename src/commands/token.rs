//! `tuskd token`: mints an HS256 bearer token with the secret `--auth-jwt-secret-file` reads,
//! for trying `--auth jwt` out, the demo and scripts. Production tokens come from the
//! platform's identity provider.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jsonwebtoken::{EncodingKey, Header};
use serde_json::json;

use crate::cli::TokenArgs;
use crate::domain::access::{MEDIA_KINDS, Owner};

/// Prints the token; returns the exit status.
pub async fn run(args: &TokenArgs) -> Result<u8, String> {
    println!("{}", mint(args)?);
    Ok(0)
}

/// The token `args` describe.
pub fn mint(args: &TokenArgs) -> Result<String, String> {
    let mut secret = std::fs::read(&args.secret_file)
        .map_err(|e| format!("cannot read {}: {e}", args.secret_file.display()))?;
    while secret.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
        secret.pop();
    }
    if secret.len() < 32 {
        return Err("the secret must be at least 32 bytes".into());
    }
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
    let key = EncodingKey::from_secret(&secret).map_err(|e| e.to_string())?;
    jsonwebtoken::encode(&Header::default(), &claims, &key).map_err(|e| e.to_string())
}
