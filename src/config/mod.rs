//! Validated configuration, built from the raw CLI. Every check on user-supplied settings lives
//! here, and every read of the environment beside clap's `TUSKD_*` variables (and the cloud
//! credentials object_store's builders read when the store is opened); the rest of the server
//! takes `Config` as true. The lower layers define their settings as plain types
//! (`hooks::HookConfig`, `media::config::MediaConfig`, `storage::object::open::S3Options`);
//! the submodules build them: `access` (authentication, quotas, the listing; its settings type
//! is config's own), `cors` (likewise), `hooks`, `media` and `store`.

mod access;
mod cors;
mod hooks;
mod media;
mod store;
mod tls;

use std::path::PathBuf;
use std::time::Duration;

use crate::cli::{OnOff, ServeArgs};
use crate::hooks::HookConfig;
use crate::media::config::MediaConfig;
use crate::meta::MetaLocation;
use crate::storage::object::DEFAULT_PART_SIZE;
use crate::storage::object::open::{CredentialsSet, S3Options, StoreLocation};

pub use access::{AccessConfig, MediaAccess};
pub use cors::Cors;

#[derive(Clone, Debug)]
pub struct Config {
    pub listen: String,
    /// Starts and ends with `/`.
    pub base_path: String,
    pub data_dir: PathBuf,
    pub max_size: Option<u64>,
    pub expire_after: Option<Duration>,
    pub cors: Cors,
    pub behind_proxy: bool,
    pub read_timeout: Duration,
    /// HTTPS with this certificate and key (`--tls-cert`, `--tls-key`); None: cleartext.
    pub tls: Option<crate::tls::TlsFiles>,
    pub shutdown_timeout: Duration,
    /// Most client connections served at once.
    pub max_connections: usize,
    /// Longest one storage operation may take in a request.
    pub store_timeout: Duration,
    /// The wall clock for expiry (tests move it forward).
    pub clock: crate::clock::Clock,
    /// How often background repair retries work a failed request left (finishing a stored
    /// upload, deleting a terminated one's storage, releasing its held hook events).
    pub repair_interval: Duration,
    pub fsync: bool,
    /// Free space kept on the filesystems tuskd writes to (`--min-free-space`).
    pub min_free_space: crate::space::Reserve,
    /// Where the metadata lives (SQLite in the data directory by default).
    pub meta: MetaLocation,
    /// Postgres: connections in the pool.
    pub meta_pool: usize,
    pub store: StoreLocation,
    pub s3: S3Options,
    /// Which object store providers have credentials in the environment (for the start-up
    /// check's message).
    pub credentials: CredentialsSet,
    pub part_size: u64,
    /// Budget for the part buffers of all running uploads together (object stores).
    pub max_buffered: u64,
    pub hooks: Option<HookConfig>,
    /// The media pipeline; None when it is off.
    pub media: Option<MediaConfig>,
    /// Where `/metrics` is served.
    pub metrics: MetricsAt,
    /// Authentication, owners' quotas, the listing.
    pub access: AccessConfig,
}

/// Where the Prometheus metrics are served.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MetricsAt {
    /// At `/metrics` on the main listener.
    Main,
    /// Only on a listener of their own (`--metrics-listen`).
    Own(String),
    Off,
}

#[derive(Debug, thiserror::Error)]
#[error("invalid {flag}: {reason}")]
pub struct ConfigError {
    pub flag: &'static str,
    pub reason: String,
}

/// Several nodes share a Postgres metadata store; their bytes must be where every node sees
/// them, or a PATCH on one node would miss what another stored.
fn shared_store(
    meta: &MetaLocation,
    store: &StoreLocation,
    declared_shared: bool,
) -> Result<(), ConfigError> {
    if !meta.is_shared() {
        return Ok(());
    }
    match store {
        StoreLocation::Local(dir) if !declared_shared => Err(bad(
            "--store",
            format!(
                "{} is local disk, which other nodes on the shared --meta cannot read; use an \
                 object store (--store s3://bucket/prefix, gs://, az://), or pass --store-shared \
                 if the directory is a file system every node mounts",
                dir.display()
            ),
        )),
        StoreLocation::Object(url) if url.scheme() == "memory" => Err(bad(
            "--store",
            "memory:// lives in one process; nodes on the shared --meta need a shared store",
        )),
        _ => Ok(()),
    }
}

fn bad(flag: &'static str, reason: impl Into<String>) -> ConfigError {
    ConfigError {
        flag,
        reason: reason.into(),
    }
}

impl Config {
    /// Defaults for everything, storing under `data_dir`: what `tuskd serve` does with no flags.
    pub fn new(data_dir: impl Into<PathBuf>) -> Config {
        let data_dir = data_dir.into();
        Config {
            listen: "127.0.0.1:1080".into(),
            base_path: "/files/".into(),
            store: StoreLocation::Local(data_dir.clone()),
            meta: MetaLocation::in_data_dir(&data_dir),
            meta_pool: 16,
            data_dir,
            // As `tuskd serve` with no flags: the environment still names the S3 endpoint.
            s3: store::s3_options(None),
            credentials: store::credentials_set(),
            part_size: DEFAULT_PART_SIZE,
            max_buffered: default_max_buffered(DEFAULT_PART_SIZE),
            hooks: None,
            media: cfg!(feature = "media").then(MediaConfig::new),
            metrics: MetricsAt::Main,
            access: AccessConfig::default(),
            max_size: None,
            expire_after: Some(Duration::from_secs(24 * 3600)),
            cors: Cors::default(),
            behind_proxy: false,
            read_timeout: Duration::from_secs(60),
            tls: None,
            shutdown_timeout: Duration::from_secs(30),
            max_connections: connections_allowed().0,
            store_timeout: Duration::from_secs(30),
            repair_interval: Duration::from_secs(30),
            clock: Default::default(),
            fsync: true,
            min_free_space: crate::space::Reserve::Default,
        }
    }

    pub fn from_args(a: &ServeArgs) -> Result<Config, ConfigError> {
        let cors = cors::from_args(a.cors_allow_origin.as_deref(), a.cors_allow_credentials)?;
        let (store, meta) = locations(a)?;
        let object = store::from_args(a)?;
        let hooks = hooks::from_args(a)?;
        let base_path = base_path(&a.base_path)?;
        let media = media::from_args(&a.media, &base_path)?;
        let metrics = metrics_at(a)?;
        let access = access::from_args(&a.access)?;
        if access.auth != crate::auth::AuthSettings::None
            && access
                .list_path
                .starts_with(base_path.trim_end_matches('/'))
            && base_path != "/"
        {
            // The listing must not shadow an upload's URL.
            return Err(bad("--list-path", "must lie outside --base-path"));
        }
        Ok(Config {
            access,
            meta,
            meta_pool: a.meta_pool,
            media,
            metrics,
            hooks,
            store,
            s3: object.s3,
            credentials: store::credentials_set(),
            part_size: object.part_size,
            max_buffered: object.max_buffered,
            listen: a.listen.clone(),
            base_path,
            data_dir: a.data_dir.clone(),
            max_size: Some(size("--max-size", &a.max_size)?).filter(|&n| n > 0),
            expire_after: Some(duration("--expire-after", &a.expire_after)?)
                .filter(|d| !d.is_zero()),
            cors,
            behind_proxy: a.behind_proxy,
            read_timeout: positive("--read-timeout", &a.read_timeout)?,
            tls: tls::files(a)?,
            shutdown_timeout: duration("--shutdown-timeout", &a.shutdown_timeout)?,
            max_connections: max_connections(a.max_connections)?,
            store_timeout: positive("--store-timeout", &a.store_timeout)?,
            repair_interval: positive("--repair-interval", &a.repair_interval)?,
            clock: Default::default(),
            fsync: a.fsync == OnOff::On,
            min_free_space: match a.min_free_space.as_deref() {
                None => crate::space::Reserve::Default,
                Some(s) => {
                    crate::space::Reserve::parse(s).map_err(|e| bad("--min-free-space", e))?
                }
            },
        })
    }
}

/// Where the bytes (`--store`) and the metadata (`--meta`, `--meta-pool`) live.
fn locations(a: &ServeArgs) -> Result<(StoreLocation, MetaLocation), ConfigError> {
    let store = match a.store.as_deref() {
        None => StoreLocation::Local(a.data_dir.clone()),
        Some(s) => StoreLocation::parse(s).map_err(|e| bad("--store", e))?,
    };
    let meta = match a.meta.as_deref().filter(|m| !m.is_empty()) {
        None => MetaLocation::in_data_dir(&a.data_dir),
        Some(m) => MetaLocation::parse(m).map_err(|e| bad("--meta", e))?,
    };
    shared_store(&meta, &store, a.store_shared)?;
    if a.meta_pool < 2 {
        return Err(bad("--meta-pool", "must be at least 2"));
    }
    Ok((store, meta))
}

/// `--metrics` and `--metrics-listen`.
fn metrics_at(a: &ServeArgs) -> Result<MetricsAt, ConfigError> {
    match (a.metrics, &a.metrics_listen) {
        (OnOff::Off, _) => Ok(MetricsAt::Off),
        (OnOff::On, None) => Ok(MetricsAt::Main),
        (OnOff::On, Some(l)) if l.parse::<std::net::SocketAddr>().is_ok() => {
            Ok(MetricsAt::Own(l.clone()))
        }
        (OnOff::On, Some(l)) => Err(bad(
            "--metrics-listen",
            format!("{l:?} is not an address such as 127.0.0.1:9100"),
        )),
    }
}

/// File descriptors kept for everything but client connections (the database, hook scripts,
/// object store connections, logs).
const RESERVED_FDS: u64 = 256;
/// A connection uploading to local disk holds its socket and the upload's file.
const FDS_PER_CONNECTION: u64 = 2;

/// How many connections the open-files limit leaves room for, and that limit.
fn connections_allowed() -> (usize, u64) {
    let (soft, _) = rlimit::getrlimit(rlimit::Resource::NOFILE).unwrap_or((1024, 1024));
    let allowed = (soft.saturating_sub(RESERVED_FDS) / FDS_PER_CONNECTION).clamp(16, 1 << 20);
    (allowed as usize, soft)
}

fn max_connections(asked: Option<usize>) -> Result<usize, ConfigError> {
    let (allowed, limit) = connections_allowed();
    match asked {
        None => Ok(allowed),
        Some(0) => Err(bad("--max-connections", "must be at least 1")),
        Some(n) if n > allowed => Err(bad(
            "--max-connections",
            format!(
                "{n} connections need about {} open files, but the limit is {} \
                 (raise it with ulimit -n or systemd's LimitNOFILE)",
                n as u64 * FDS_PER_CONNECTION + RESERVED_FDS,
                limit
            ),
        )),
        Some(n) => Ok(n),
    }
}

/// An eighth of the machine's memory, and at least four parts.
fn default_max_buffered(part_size: u64) -> u64 {
    let total = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            let line = m.lines().find(|l| l.starts_with("MemTotal:"))?;
            let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
            Some(kib * 1024)
        })
        .unwrap_or(4 << 30);
    (total / 8).max(part_size * 4)
}

fn base_path(p: &str) -> Result<String, ConfigError> {
    let ok = p.starts_with('/')
        && p.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/-._~".contains(&b))
        && !p.split('/').any(|seg| seg == "." || seg == "..");
    if !ok {
        return Err(bad(
            "--base-path",
            format!("{p:?} must be an absolute path of letters, digits and -._~"),
        ));
    }
    Ok(if p.ends_with('/') {
        p.to_owned()
    } else {
        format!("{p}/")
    })
}

/// Sizes like `10GiB`, `512 MB`, `1048576`.
pub fn size(flag: &'static str, s: &str) -> Result<u64, ConfigError> {
    crate::domain::upload::parse_size(s).map_err(|e| bad(flag, e))
}

/// Durations like `30s`, `24h`, `1h 30m`; a bare `0` means zero.
pub fn duration(flag: &'static str, s: &str) -> Result<Duration, ConfigError> {
    if s.trim() == "0" {
        return Ok(Duration::ZERO);
    }
    humantime::parse_duration(s.trim()).map_err(|e| bad(flag, format!("{s:?}: {e}")))
}

fn positive(flag: &'static str, s: &str) -> Result<Duration, ConfigError> {
    let d = duration(flag, s)?;
    if d.is_zero() {
        return Err(bad(flag, "must be greater than zero"));
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn parse(args: &[&str]) -> Result<Config, ConfigError> {
        let mut argv = vec!["tuskd", "serve"];
        argv.extend_from_slice(args);
        let cli = crate::cli::Cli::try_parse_from(argv).expect("clap accepts");
        let crate::cli::Command::Serve(a) = cli.command else {
            panic!("a serve command");
        };
        Config::from_args(&a)
    }

    #[test]
    fn several_nodes_need_a_store_they_all_see() {
        let pg = ["--meta", "postgres://tuskd@db:5432/tuskd"];
        let err = parse(&pg).unwrap_err();
        assert_eq!(err.flag, "--store");
        assert!(err.reason.contains("--store-shared"), "{}", err.reason);
        let err = parse(&[&pg[..], &["--store", "memory://"]].concat()).unwrap_err();
        assert_eq!(err.flag, "--store");
        let c = parse(&[&pg[..], &["--store", "s3://bucket/uploads"]].concat()).unwrap();
        assert!(c.meta.is_shared());
        parse(&[&pg[..], &["--store", "/mnt/nfs/tuskd", "--store-shared"]].concat()).unwrap();
        // One node: SQLite in the data directory, local disk is fine.
        let c = parse(&["--data-dir", "/srv/tuskd"]).unwrap();
        assert_eq!(c.meta, MetaLocation::Sqlite("/srv/tuskd/tuskd.db".into()));
        assert_eq!(parse(&["--meta", "mysql://x"]).unwrap_err().flag, "--meta");
        let tls = parse(&["--meta", "postgres://db/t?sslmode=verify-full"]).unwrap_err();
        assert!(tls.reason.contains("TLS"), "{}", tls.reason);
        assert_eq!(
            parse(&["--meta", "sqlite:/var/lib/t.db"]).unwrap().meta,
            MetaLocation::Sqlite("/var/lib/t.db".into())
        );
    }

    #[test]
    fn defaults() {
        let c = parse(&[]).unwrap();
        assert_eq!(c.base_path, "/files/");
        assert_eq!(c.max_size, None);
        assert_eq!(c.expire_after, Some(Duration::from_secs(86400)));
        assert!(c.fsync);
        assert!(c.cors.allow_origin.is_none());
        assert_eq!(c.store, StoreLocation::Local("./data".into()));
        assert_eq!(c.part_size, 8 << 20);
        assert!(c.max_buffered >= 32 << 20);
    }

    #[test]
    fn object_store_settings() {
        let c = parse(&[
            "--store",
            "s3://media/incoming",
            "--s3-endpoint",
            "http://127.0.0.1:9000",
            "--part-size",
            "16MiB",
            "--max-buffered",
            "1GiB",
        ])
        .unwrap();
        assert!(matches!(c.store, StoreLocation::Object(_)));
        assert_eq!(c.s3.endpoint.as_deref(), Some("http://127.0.0.1:9000"));
        assert_eq!((c.part_size, c.max_buffered), (16 << 20, 1 << 30));
    }

    #[test]
    fn sizes_and_durations() {
        let c = parse(&[
            "--max-size",
            "10GiB",
            "--expire-after",
            "0",
            "--read-timeout",
            "1m 30s",
            "--fsync",
            "off",
            "--base-path",
            "/up",
        ])
        .unwrap();
        assert_eq!(c.max_size, Some(10 << 30));
        assert_eq!(c.expire_after, None);
        assert_eq!(c.read_timeout, Duration::from_secs(90));
        assert!(!c.fsync);
        assert_eq!(c.base_path, "/up/");
    }

    #[test]
    fn credentials_need_an_origin_pattern() {
        let c = parse(&[
            "--cors-allow-credentials",
            "--cors-allow-origin",
            "https://app\\.example",
        ])
        .unwrap();
        assert!(c.cors.allow_credentials);
        assert!(c.cors.allows("https://app.example"));
        assert!(
            !c.cors.allows("https://app.example.evil.test"),
            "the pattern is anchored"
        );
    }

    #[test]
    fn invalid_values_are_named() {
        for (args, flag) in [
            (&["--max-size", "lots"][..], "--max-size"),
            (&["--max-size=-1"][..], "--max-size"),
            (&["--expire-after", "soon"][..], "--expire-after"),
            (&["--read-timeout", "0"][..], "--read-timeout"),
            (&["--base-path", "files"][..], "--base-path"),
            (&["--base-path", "/a/../b"][..], "--base-path"),
            (&["--cors-allow-origin", "("][..], "--cors-allow-origin"),
            (&["--store", "ftp://x/y"][..], "--store"),
            (&["--s3-endpoint", "minio:9000"][..], "--s3-endpoint"),
            (&["--part-size", "1MiB"][..], "--part-size"),
            (&["--part-size", "6GiB"][..], "--part-size"),
            (&["--max-buffered", "4MiB"][..], "--max-buffered"),
            (&["--hooks-dir", "/nonexistent/hooks"][..], "--hooks-dir"),
            (&["--hooks-http", "ftp://x"][..], "--hooks-http"),
            (
                &[
                    "--hooks-http",
                    "http://h/",
                    "--hooks-http-header",
                    "nocolon",
                ][..],
                "--hooks-http-header",
            ),
            (&["--hooks-http-header", "A: b"][..], "--hooks-http-header"),
            (
                &[
                    "--hooks-http",
                    "http://h/",
                    "--hooks-enabled-events",
                    "pre-upload",
                ][..],
                "--hooks-enabled-events",
            ),
            (
                &["--hooks-http", "http://h/", "--hook-timeout", "0"][..],
                "--hook-timeout",
            ),
            (
                &["--cors-allow-credentials"][..],
                "--cors-allow-credentials",
            ),
        ] {
            let e = parse(args).unwrap_err();
            assert_eq!(e.flag, flag, "{args:?}");
        }
    }

    #[test]
    #[cfg(feature = "media")]
    fn media_settings_are_checked() {
        let c = parse(&[
            "--hls-ladder",
            "1080, 360,720,720",
            "--thumb-widths",
            "640,320",
        ])
        .unwrap();
        let m = c.media.expect("on by default");
        assert_eq!(
            (m.ladder, m.thumb_widths),
            (vec![360, 720, 1080], vec![320, 640])
        );
        assert_eq!((m.hls_segment, m.path.as_str()), (4, "/media/"));
        use crate::media::limits::Kind;
        assert_eq!(
            m.limits.duration.get(Kind::Video),
            Some(Duration::from_secs(6 * 3600))
        );
        assert_eq!(m.limits.size.get(Kind::Image), Some(100 << 20));
        assert!(m.scan.is_none(), "no scan without --clamd");
        let scan = parse(&["--clamd", "unix:/run/clamd.sock", "--scan-policy", "open"])
            .unwrap()
            .media
            .unwrap()
            .scan
            .unwrap();
        assert_eq!(
            (scan.max_size, scan.policy),
            (100 << 20, crate::media::scan::Policy::Open)
        );
        assert!(parse(&["--media", "off"]).unwrap().media.is_none());
        for (args, flag) in [
            (&["--hls-segment", "1500ms"][..], "--hls-segment"),
            (&["--hls-segment", "0"][..], "--hls-segment"),
            (&["--hls-ladder", "720,abc"][..], "--hls-ladder"),
            (&["--hls-ladder", ""][..], "--hls-ladder"),
            (&["--media-allow", "video"][..], "--media-allow"),
            (&["--media-path", "/files/"][..], "--media-path"),
            (
                &["--media-max-duration", "video=forever"][..],
                "--media-max-duration",
            ),
            (
                &["--media-max-pixels", "image=-1"][..],
                "--media-max-pixels",
            ),
            (&["--media-max-size", "pdf=1MiB"][..], "--media-max-size"),
            (&["--image-widths", "0"][..], "--image-widths"),
            (&["--audio-loudness", "3"][..], "--audio-loudness"),
            (&["--clamd", "localhost:3310"][..], "--clamd"),
            (
                &["--clamd", "unix:x", "--scan-max-size", "1GiB"][..],
                "--clamd",
            ),
            (
                &["--clamd", "tcp://h:1", "--scan-max-size", "0"][..],
                "--scan-max-size",
            ),
            (
                &["--clamd", "tcp://h:1", "--scan-max-size", "5GiB"][..],
                "--scan-max-size",
            ),
        ] {
            let e = parse(args).unwrap_err();
            assert_eq!(e.flag, flag, "{args:?}: {e}");
        }
    }
}
