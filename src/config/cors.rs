//! The CORS settings: which browser origins may call and whether they may send credentials,
//! built from `--cors-allow-origin` and `--cors-allow-credentials`. `http::cors` applies them
//! to requests and responses.

use regex::Regex;

use super::{ConfigError, bad};

/// The CORS policy.
#[derive(Clone, Debug, Default)]
pub struct Cors {
    /// `None` allows every origin (echoing it back); otherwise an anchored pattern.
    pub allow_origin: Option<Regex>,
    pub allow_credentials: bool,
}

impl Cors {
    /// Whether a request from `origin` may proceed.
    pub fn allows(&self, origin: &str) -> bool {
        self.allow_origin
            .as_ref()
            .is_none_or(|re| re.is_match(origin))
    }
}

/// The policy of `--cors-allow-origin PATTERN` (matched against the whole origin; empty, `*`
/// or `.*` allow every origin) and `--cors-allow-credentials`.
pub(super) fn from_args(
    pattern: Option<&str>,
    allow_credentials: bool,
) -> Result<Cors, ConfigError> {
    let allow_origin = match pattern {
        None | Some("") | Some(".*") | Some("*") => None,
        Some(p) => Some(
            Regex::new(&format!("^(?:{p})$"))
                .map_err(|e| bad("--cors-allow-origin", e.to_string()))?,
        ),
    };
    if allow_credentials && allow_origin.is_none() {
        // Credentials with every origin echoed back would let any website act as the user.
        return Err(bad(
            "--cors-allow-credentials",
            "needs --cors-allow-origin naming the origins that may send credentials",
        ));
    }
    Ok(Cors {
        allow_origin,
        allow_credentials,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn any_origin_by_default() {
        let c = Cors {
            allow_origin: None,
            allow_credentials: false,
        };
        assert!(c.allows("https://anything.example"));
    }

    #[test]
    fn pattern_is_anchored_by_config() {
        let c = Cors {
            allow_origin: Some(Regex::new("^(?:https://app\\.example)$").unwrap()),
            allow_credentials: true,
        };
        assert!(c.allows("https://app.example"));
        assert!(!c.allows("https://app.example.evil.test"));
    }
}
