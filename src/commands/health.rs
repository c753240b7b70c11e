//! `tuskd health`: asks a running tuskd's `/readyz` (or `/healthz`) and turns the answer into
//! an exit status, for container health checks that have no curl.

use std::time::Duration;

use crate::cli::HealthArgs;

/// The URL asked: `--url`, else the listen address (a wildcard one on the loopback address).
pub fn url(args: &HealthArgs) -> String {
    if let Some(u) = &args.url {
        return u.clone();
    }
    let addr = args.listen.trim();
    let addr = if let Some(port) = addr.strip_prefix("0.0.0.0:") {
        format!("127.0.0.1:{port}")
    } else if let Some(port) = addr.strip_prefix("[::]:") {
        format!("[::1]:{port}")
    } else {
        addr.to_owned()
    };
    let path = if args.live { "/healthz" } else { "/readyz" };
    let scheme = if args.tls_cert.is_some() {
        "https"
    } else {
        "http"
    };
    format!("{scheme}://{addr}{path}")
}

/// Runs the check; returns the exit status (0 healthy, 1 not).
pub async fn run(args: &HealthArgs) -> Result<u8, String> {
    let url = url(args);
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        // Only for the listen address over https (see `HealthArgs::tls_cert`); a --url is
        // checked as any other.
        .danger_accept_invalid_certs(args.url.is_none() && args.tls_cert.is_some())
        .build()
        .map_err(|e| e.to_string())?;
    match client.get(&url).send().await {
        Ok(resp) => {
            let ok = resp.status().is_success();
            let status = resp.status();
            let body = resp.text().await.unwrap_or_default();
            println!("{status} {}", body.trim());
            Ok(if ok { 0 } else { 1 })
        }
        Err(e) => {
            println!("cannot reach {url}: {e}");
            Ok(1)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(listen: &str, live: bool) -> HealthArgs {
        HealthArgs {
            listen: listen.into(),
            url: None,
            live,
            tls_cert: None,
        }
    }

    #[test]
    fn wildcard_addresses_are_asked_on_loopback() {
        assert_eq!(
            url(&args("0.0.0.0:1080", false)),
            "http://127.0.0.1:1080/readyz"
        );
        assert_eq!(url(&args("[::]:8080", true)), "http://[::1]:8080/healthz");
        assert_eq!(
            url(&args("10.0.0.5:1080", false)),
            "http://10.0.0.5:1080/readyz"
        );
        let tls = HealthArgs {
            tls_cert: Some("/etc/tuskd/cert.pem".into()),
            ..args("0.0.0.0:443", false)
        };
        assert_eq!(url(&tls), "https://127.0.0.1:443/readyz");
    }
}
