//! The object store settings (`--s3-endpoint`, `--part-size`, `--max-buffered`) and what tuskd
//! itself takes from the providers' environment variables: the S3 endpoint and payload
//! signing, and whether any credentials are set. The credentials themselves are read by
//! object_store's `from_env` builders when the store is opened.

use super::{ConfigError, bad, default_max_buffered, size};
use crate::cli::ServeArgs;
use crate::storage::object::open::{CredentialsSet, S3Options};
use crate::storage::object::{MAX_PART_SIZE, MIN_PART_SIZE};

/// The object store settings of `serve`.
pub(super) struct ObjectSettings {
    pub s3: S3Options,
    pub part_size: u64,
    pub max_buffered: u64,
}

pub(super) fn from_args(a: &ServeArgs) -> Result<ObjectSettings, ConfigError> {
    let endpoint = a.s3_endpoint.as_deref().filter(|e| !e.is_empty());
    if let Some(e) = endpoint {
        let ok = url::Url::parse(e)
            .is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.has_host());
        if !ok {
            return Err(bad("--s3-endpoint", format!("{e:?} is not an http(s) URL")));
        }
    }
    let part_size = size("--part-size", &a.part_size)?;
    if !(MIN_PART_SIZE..=MAX_PART_SIZE).contains(&part_size) {
        return Err(bad(
            "--part-size",
            format!("{} must be between 5MiB and 5GiB", a.part_size),
        ));
    }
    let max_buffered = match a.max_buffered.as_deref() {
        None => default_max_buffered(part_size),
        Some(s) => {
            let n = size("--max-buffered", s)?;
            if n < part_size {
                return Err(bad(
                    "--max-buffered",
                    format!("{s} is less than one part (--part-size {})", a.part_size),
                ));
            }
            n
        }
    };
    Ok(ObjectSettings {
        s3: s3_options(endpoint),
        part_size,
        max_buffered,
    })
}

/// `endpoint` (`--s3-endpoint`) with what the environment says about S3.
pub(super) fn s3_options(endpoint: Option<&str>) -> S3Options {
    S3Options {
        endpoint: endpoint.map(str::to_owned),
        env_endpoint: ["AWS_ENDPOINT_URL", "AWS_ENDPOINT"]
            .iter()
            .find_map(|k| std::env::var(k).ok()),
        unsigned_payload_set: std::env::var_os("AWS_UNSIGNED_PAYLOAD").is_some(),
    }
}

/// Which providers have any of their credential variables set.
pub(super) fn credentials_set() -> CredentialsSet {
    let any_set = |keys: &[&str]| keys.iter().any(|k| std::env::var_os(k).is_some());
    CredentialsSet {
        aws: any_set(&[
            "AWS_ACCESS_KEY_ID",
            "AWS_WEB_IDENTITY_TOKEN_FILE",
            "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
            "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        ]),
        google: any_set(&[
            "GOOGLE_SERVICE_ACCOUNT",
            "GOOGLE_SERVICE_ACCOUNT_PATH",
            "GOOGLE_SERVICE_ACCOUNT_KEY",
            "GOOGLE_APPLICATION_CREDENTIALS",
        ]),
        azure: any_set(&[
            "AZURE_STORAGE_ACCOUNT_KEY",
            "AZURE_STORAGE_ACCESS_KEY",
            "AZURE_STORAGE_SAS_KEY",
            "AZURE_STORAGE_TOKEN",
            "AZURE_CLIENT_SECRET",
            "AZURE_FEDERATED_TOKEN_FILE",
            "AZURE_STORAGE_USE_EMULATOR",
        ]),
    }
}
