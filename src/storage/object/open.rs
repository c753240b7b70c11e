//! `--store` URLs: which backend, built from object_store's URL parsing and the provider's usual
//! environment variables (read by object_store's `from_env` builders; what tuskd itself acts on
//! is read by `config` and passed in `S3Options` and `CredentialsSet`), then checked with a
//! real write so that a wrong bucket or missing credentials stop tuskd at start-up instead of
//! failing the first upload.

use std::sync::Arc;
use std::time::Duration;

use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use object_store::azure::{AzureConfigKey, MicrosoftAzureBuilder};
use object_store::gcp::{GoogleCloudStorageBuilder, GoogleConfigKey};
use object_store::memory::InMemory;
use object_store::path::Path;
use object_store::{ClientConfigKey, RetryConfig};
use object_store::{ObjectStoreExt, ObjectStoreScheme, PutPayload};
use url::Url;

use super::Backend;
use crate::domain::upload::UploadId;

/// How long the start-up check may take (credential lookups and retries included).
const PROBE_TIMEOUT: Duration = Duration::from_secs(20);

/// Where upload bytes go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreLocation {
    /// Local disk under this directory.
    Local(std::path::PathBuf),
    /// An object store: `memory://`, `s3://`, `gs://` or `az://` URL.
    Object(Url),
}

impl StoreLocation {
    /// Parses a `--store` value: a path, `file://`, or an object store URL.
    pub fn parse(s: &str) -> Result<StoreLocation, String> {
        if !s.contains("://") {
            if s.is_empty() {
                return Err("is empty".into());
            }
            return Ok(StoreLocation::Local(s.into()));
        }
        let url = Url::parse(s).map_err(|e| format!("{s:?} is not a URL: {e}"))?;
        let unsupported = || {
            format!(
                "{s:?}: use a path, file://, memory://, s3://bucket/prefix, gs://bucket/prefix \
                 or az://container/prefix"
            )
        };
        let (scheme, _) = ObjectStoreScheme::parse(&url).map_err(|_| unsupported())?;
        match scheme {
            ObjectStoreScheme::Local => url
                .to_file_path()
                .map(StoreLocation::Local)
                .map_err(|()| format!("{s:?} is not a local path")),
            ObjectStoreScheme::Memory
            | ObjectStoreScheme::AmazonS3
            | ObjectStoreScheme::GoogleCloudStorage
            | ObjectStoreScheme::MicrosoftAzure => {
                if url.query().is_some() || url.fragment().is_some() {
                    return Err(format!(
                        "{s:?}: settings go in flags or environment variables, not the URL"
                    ));
                }
                Ok(StoreLocation::Object(url))
            }
            _ => Err(unsupported()),
        }
    }
}

impl std::fmt::Display for StoreLocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StoreLocation::Local(dir) => write!(f, "{}", dir.join("uploads").display()),
            StoreLocation::Object(url) => write!(f, "{url}"),
        }
    }
}

/// S3-compatible stores that are not AWS, and how requests are signed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct S3Options {
    /// Endpoint such as `http://127.0.0.1:9000`; plain HTTP is allowed when it says http://.
    pub endpoint: Option<String>,
    /// The endpoint named by the environment (`AWS_ENDPOINT_URL`, else `AWS_ENDPOINT`), which
    /// object_store uses when `endpoint` is not given.
    pub env_endpoint: Option<String>,
    /// `AWS_UNSIGNED_PAYLOAD` is set: object_store applies it, and tuskd leaves the choice of
    /// signing the body to it.
    pub unsigned_payload_set: bool,
}

/// Which providers have credentials in the environment. object_store reads the credentials
/// themselves; without any it falls back to the cloud's instance credentials, which off that
/// cloud fails obscurely, so a refused start-up check says so.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CredentialsSet {
    pub aws: bool,
    pub google: bool,
    pub azure: bool,
}

#[derive(Debug, thiserror::Error)]
#[error("cannot use store {url}: {reason}")]
pub struct ConnectError {
    pub url: String,
    pub reason: String,
}

/// Builds the backend for `url` and returns it with the key prefix inside it. Its requests and
/// retries stop within half of `timeout` (object_store's default keeps retrying for 3
/// minutes), so that a store that keeps failing is told apart from one that does not answer,
/// which storage's own `timeout` cuts off.
pub fn connect(
    url: &Url,
    s3: &S3Options,
    timeout: Duration,
) -> Result<(Arc<dyn Backend>, Path), ConnectError> {
    let budget = timeout / 2;
    let retry = RetryConfig {
        retry_timeout: budget,
        ..RetryConfig::default()
    };
    let request_timeout = (
        ClientConfigKey::Timeout,
        humantime::format_duration(budget).to_string(),
    );
    let fail = |reason: String| ConnectError {
        url: url.to_string(),
        reason,
    };
    let (scheme, prefix) = ObjectStoreScheme::parse(url).map_err(|e| fail(e.to_string()))?;
    let backend: Arc<dyn Backend> = match scheme {
        ObjectStoreScheme::Memory => Arc::new(InMemory::new()),
        ObjectStoreScheme::AmazonS3 => {
            let mut b = AmazonS3Builder::from_env()
                .with_url(url.as_str())
                .with_retry(retry)
                .with_config(
                    AmazonS3ConfigKey::Client(request_timeout.0),
                    &request_timeout.1,
                );
            if let Some(endpoint) = &s3.endpoint {
                b = b
                    .with_endpoint(endpoint)
                    .with_allow_http(endpoint.starts_with("http://"))
                    .with_virtual_hosted_style_request(false);
            }
            // Over HTTPS, TLS already protects the body, so it is not hashed into the request
            // signature (as botocore does): SHA-256 of every byte was 40% of tuskd's CPU on S3
            // uploads. Over plain HTTP the signature covers the body. AWS_UNSIGNED_PAYLOAD
            // decides when set.
            if !s3.unsigned_payload_set {
                let endpoint = s3.endpoint.as_ref().or(s3.env_endpoint.as_ref());
                let https = endpoint.is_none_or(|e| e.starts_with("https://"));
                b = b.with_unsigned_payload(https);
            }
            Arc::new(b.build().map_err(|e| fail(e.to_string()))?)
        }
        ObjectStoreScheme::GoogleCloudStorage => Arc::new(
            GoogleCloudStorageBuilder::from_env()
                .with_url(url.as_str())
                .with_retry(retry)
                .with_config(
                    GoogleConfigKey::Client(request_timeout.0),
                    &request_timeout.1,
                )
                .build()
                .map_err(|e| fail(e.to_string()))?,
        ),
        ObjectStoreScheme::MicrosoftAzure => Arc::new(
            MicrosoftAzureBuilder::from_env()
                .with_url(url.as_str())
                .with_retry(retry)
                .with_config(
                    AzureConfigKey::Client(request_timeout.0),
                    &request_timeout.1,
                )
                .build()
                .map_err(|e| fail(e.to_string()))?,
        ),
        _ => return Err(fail("not an object store URL".into())),
    };
    Ok((backend, prefix))
}

/// Writes and deletes a small object under `prefix`: proves the bucket exists and the
/// credentials may write and delete, which is what uploads need. A failure mentions it when
/// `credentials` says that none are set for the store's provider.
pub async fn probe(
    backend: &dyn Backend,
    prefix: &Path,
    url: &Url,
    credentials: &CredentialsSet,
) -> Result<(), ConnectError> {
    let fail = |reason: String| ConnectError {
        url: url.to_string(),
        reason,
    };
    let key = prefix
        .clone()
        .join(format!(".tuskd-probe-{}", UploadId::random()));
    let check = async {
        backend
            .put(&key, PutPayload::from_static(b"tuskd start-up check"))
            .await?;
        backend.delete(&key).await
    };
    let hint = ObjectStoreScheme::parse(url)
        .ok()
        .and_then(|(scheme, _)| missing_credentials(&scheme, credentials))
        .map(|h| format!(" ({h})"))
        .unwrap_or_default();
    match tokio::time::timeout(PROBE_TIMEOUT, check).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e @ object_store::Error::Unauthenticated { .. }))
        | Ok(Err(e @ object_store::Error::PermissionDenied { .. })) => {
            Err(fail(format!("the credentials were refused{hint}: {e}")))
        }
        Ok(Err(e)) => Err(fail(format!("a test write failed{hint}: {e}"))),
        Err(_) => Err(fail(format!(
            "no answer within {}s{hint}",
            PROBE_TIMEOUT.as_secs()
        ))),
    }
}

/// Says so when none of a provider's credential variables is set, in which case object_store
/// falls back to the cloud's instance credentials, which off that cloud fails obscurely.
fn missing_credentials(
    scheme: &ObjectStoreScheme,
    credentials: &CredentialsSet,
) -> Option<&'static str> {
    match scheme {
        ObjectStoreScheme::AmazonS3 if !credentials.aws => Some(
            "no credentials are set: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or run \
             where instance credentials are available",
        ),
        ObjectStoreScheme::GoogleCloudStorage if !credentials.google => Some(
            "no credentials are set: GOOGLE_SERVICE_ACCOUNT or \
             GOOGLE_APPLICATION_CREDENTIALS, or run where instance credentials are available",
        ),
        ObjectStoreScheme::MicrosoftAzure if !credentials.azure => Some(
            "no credentials are set: AZURE_STORAGE_ACCOUNT_KEY, AZURE_STORAGE_SAS_KEY or \
             a service principal, or run where managed identity is available",
        ),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_urls() {
        assert_eq!(
            StoreLocation::parse("/srv/uploads").unwrap(),
            StoreLocation::Local("/srv/uploads".into())
        );
        assert_eq!(
            StoreLocation::parse("file:///srv/uploads").unwrap(),
            StoreLocation::Local("/srv/uploads".into())
        );
        for ok in [
            "memory://",
            "s3://bucket/some/prefix",
            "gs://bucket",
            "az://container/p",
        ] {
            assert!(
                matches!(StoreLocation::parse(ok), Ok(StoreLocation::Object(_))),
                "{ok}"
            );
        }
        for bad in [
            "",
            "ftp://host/x",
            "http://example.com/x",
            "s3://",
            "s3://bucket/p?region=x",
        ] {
            assert!(StoreLocation::parse(bad).is_err(), "{bad}");
        }
    }
}
