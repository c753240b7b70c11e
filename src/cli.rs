//! Command-line interface: clap structs only. Every flag can also be set through a `TUSKD_*`
//! environment variable; validation happens in `config`.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "tuskd",
    version,
    about = "A resumable-upload (tus 1.0) server for media platforms"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the tus server.
    Serve(Box<ServeArgs>),
    /// Run media jobs only, with no HTTP listener: a transcoding host beside ingest nodes on
    /// one Postgres metadata store and one object store. Takes the flags of `serve`.
    Worker(Box<ServeArgs>),
    /// Inspect and re-drive hook events waiting in the outbox.
    Hooks(HooksArgs),
    /// Inspect media jobs and run them again.
    Media(MediaCliArgs),
    /// Ask a running tuskd whether it is ready (`/readyz`) or alive (`--live`: `/healthz`);
    /// exits 0 if so, 1 if not. For container health checks: no curl needed.
    Health(HealthArgs),
    /// Upload files to a tus server, resumably: a rerun continues where the last one stopped.
    Upload(crate::upload_cli::args::UploadArgs),
    /// Print an HS256 bearer token signed with the secret of --auth-jwt-secret-file, for
    /// trying --auth jwt out and for scripts (production tokens come from an identity provider).
    Token(TokenArgs),
}

#[derive(Debug, Clone, Args)]
pub struct TokenArgs {
    /// The secret file the server reads (--auth-jwt-secret-file): an HS256 token.
    #[arg(
        long,
        env = "TUSKD_AUTH_JWT_SECRET_FILE",
        required_unless_present = "private_key_file"
    )]
    pub secret_file: Option<PathBuf>,
    /// A PEM private key (PKCS#8: EC P-256, RSA or Ed25519) whose public half the server
    /// holds (--auth-jwt-public-key-file): an ES256, RS256 or EdDSA token.
    #[arg(long, conflicts_with = "secret_file")]
    pub private_key_file: Option<PathBuf>,
    /// The key id (`kid`) to put in the header (for a JWKS).
    #[arg(long)]
    pub kid: Option<String>,
    /// The owner (`sub`).
    #[arg(long)]
    pub sub: String,
    /// How long the token is valid.
    #[arg(long, default_value = "1h")]
    pub ttl: String,
    #[arg(long)]
    pub iss: Option<String>,
    #[arg(long)]
    pub aud: Option<String>,
    /// Space-separated scopes, e.g. tuskd:admin.
    #[arg(long)]
    pub scope: Option<String>,
    /// The largest upload the token may create.
    #[arg(long)]
    pub max_size: Option<String>,
    /// A media kind the token may upload (repeatable; none: any).
    #[arg(long = "media-kind")]
    pub media_kinds: Vec<String>,
}

#[derive(Debug, Clone, Args)]
pub struct HealthArgs {
    /// The server's listen address; 0.0.0.0 and [::] are asked on the loopback address.
    #[arg(long, env = "TUSKD_LISTEN", default_value = "127.0.0.1:1080")]
    pub listen: String,
    /// The URL to ask instead (e.g. behind a proxy).
    #[arg(long)]
    pub url: Option<String>,
    /// Ask `/healthz` (the process serves) instead of `/readyz`.
    #[arg(long)]
    pub live: bool,
    /// The server's `--tls-cert` (read from `TUSKD_TLS_CERT` as the server reads it): when set,
    /// the listen address is asked over https, without checking the certificate (a probe of
    /// the local process reads nothing secret; the name on the certificate is rarely the
    /// loopback address).
    #[arg(long, env = "TUSKD_TLS_CERT")]
    pub tls_cert: Option<std::path::PathBuf>,
}

#[derive(Debug, Clone, Args)]
pub struct MediaCliArgs {
    /// The server's data directory (where tuskd.db is).
    #[arg(long, env = "TUSKD_DATA_DIR", default_value = "./data", global = true)]
    pub data_dir: PathBuf,

    /// The server's metadata store (--meta of `serve`), if not tuskd.db in the data directory.
    #[arg(long, env = "TUSKD_META", global = true)]
    pub meta: Option<String>,

    #[command(subcommand)]
    pub action: MediaAction,
}

#[derive(Debug, Clone, Subcommand)]
pub enum MediaAction {
    /// Media records: upload id, status, type, attempts, updated, reason.
    List {
        /// Only jobs that failed.
        #[arg(long)]
        failed: bool,
    },
    /// Queues a job again with its attempts reset: a running server regenerates the outputs
    /// (the original upload is never changed).
    Retry {
        /// The upload id, as `tuskd media list` shows it.
        id: String,
    },
    /// Regenerates the outputs of one upload, or of every finished one of a kind (say after
    /// changing the ladder or the widths): a running server writes each into a new version,
    /// switches the record to it at once and then deletes the old one.
    Reprocess {
        /// The upload id.
        #[arg(required_unless_present_any = ["kind", "all"], conflicts_with_all = ["kind", "all"])]
        id: Option<String>,
        /// Every READY or FAILED upload of this kind.
        #[arg(long, value_enum, conflicts_with = "all")]
        kind: Option<KindArg>,
        /// Every READY or FAILED upload.
        #[arg(long)]
        all: bool,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum KindArg {
    Video,
    Audio,
    Image,
    Document,
}

const MEDIA_DEFAULT: &str = if cfg!(feature = "media") { "on" } else { "off" };

/// The media pipeline's settings (`tuskd serve`).
#[derive(Debug, Clone, Args)]
pub struct MediaArgs {
    /// Process every finished upload (detect, probe, transcode to HLS, poster, thumbnails).
    /// On unless tuskd was built without the media pipeline.
    #[arg(long = "media", env = "TUSKD_MEDIA", value_enum, default_value = MEDIA_DEFAULT)]
    pub media: OnOff,

    /// Media jobs run at once. Default: one per two cores, at least one. 0: none here (an
    /// ingest-only node; jobs are queued for other nodes and `tuskd worker`).
    #[arg(long, env = "TUSKD_MEDIA_WORKERS")]
    pub media_workers: Option<usize>,

    /// Slots beside --media-workers that take only fast work (images, audio, documents, small
    /// files' checks), so it never waits behind transcodes; a video they find goes to the
    /// general slots. None on an ingest-only node (--media-workers 0).
    #[arg(long, env = "TUSKD_MEDIA_FAST_WORKERS", default_value_t = 1)]
    pub media_fast_workers: usize,

    /// Uploads larger than this are slow work from the start: only general slots take them.
    #[arg(long, env = "TUSKD_MEDIA_FAST_MAX_SIZE", default_value = "128MiB")]
    pub media_fast_max_size: String,

    /// How long a running job stays with a worker that stopped renewing its lease (it died)
    /// before another worker takes it over; renewed every third of it while the job runs.
    #[arg(long, env = "TUSKD_MEDIA_LEASE", default_value = "30s")]
    pub media_lease: String,

    /// Runs of a job that fail for a passing reason (storage, a crash) before it is FAILED.
    #[arg(long, env = "TUSKD_MEDIA_MAX_ATTEMPTS", default_value_t = 5)]
    pub media_max_attempts: u32,

    /// Types processed, as detected from the bytes, comma-separated (type/* or type/subtype);
    /// anything else is REJECTED.
    #[arg(
        long,
        env = "TUSKD_MEDIA_ALLOW",
        default_value = "video/*,image/*,audio/*,application/pdf"
    )]
    pub media_allow: String,

    /// Keep the original of a REJECTED upload (default: it is deleted).
    #[arg(long, env = "TUSKD_MEDIA_KEEP_REJECTED")]
    pub media_keep_rejected: bool,

    /// Longest media accepted, for every kind (`4h`) or per kind (`video=6h,audio=12h`);
    /// longer is REJECTED before any decoding. `none` lifts a limit.
    #[arg(
        long,
        env = "TUSKD_MEDIA_MAX_DURATION",
        default_value = "video=6h,audio=12h"
    )]
    pub media_max_duration: String,

    /// Most pixels per picture (width × height), for every kind or per kind
    /// (`video=35389440,image=50000000`); more is REJECTED, images from their header alone.
    #[arg(
        long,
        env = "TUSKD_MEDIA_MAX_PIXELS",
        default_value = "video=35389440,image=50000000"
    )]
    pub media_max_pixels: String,

    /// Largest file processed, for every kind or per kind (`image=100MiB,document=200MiB`);
    /// larger is REJECTED. Video and audio have no size limit by default.
    #[arg(
        long,
        env = "TUSKD_MEDIA_MAX_SIZE",
        default_value = "image=100MiB,document=200MiB"
    )]
    pub media_max_size: String,

    /// Widths of the image variants (each in WebP and JPEG), comma-separated; none wider than
    /// the image.
    #[arg(long, env = "TUSKD_IMAGE_WIDTHS", default_value = "128,320,640,1280")]
    pub image_widths: String,

    /// The longest a picture's decode and variants may take (`60s`, `2m`): past it the job
    /// fails as `time_budget` (a decoder that cannot be stopped, libheif's, finishes in the
    /// background; the pixel limit bounds it).
    #[arg(long, env = "TUSKD_IMAGE_TIME_BUDGET", default_value = "60s")]
    pub image_time_budget: String,

    /// URL path under which media status and derived files are served.
    #[arg(long, env = "TUSKD_MEDIA_PATH", default_value = "/media/")]
    pub media_path: String,

    /// Target length of an HLS segment, in whole seconds (e.g. 4s).
    #[arg(long, env = "TUSKD_HLS_SEGMENT", default_value = "4s")]
    pub hls_segment: String,

    /// Videos at least this long (with more than one rung) are made playable first: the lowest
    /// rung, the sound and the poster in a first task (status PLAYABLE), the other rungs in
    /// chunks after. `off`: one pass, playable when READY.
    #[arg(long, env = "TUSKD_MEDIA_PLAYABLE_FROM", default_value = "30s")]
    pub media_playable_from: String,

    /// The length of a chunk of a long video's upper rungs (rounded to whole segments): each
    /// chunk is a task any worker slot may take, so a long video fans out across workers.
    /// `off`: the upper rungs in one task.
    #[arg(long, env = "TUSKD_MEDIA_CHUNK", default_value = "30s")]
    pub media_chunk: String,

    /// Rendition heights (the shorter side, for portrait video), comma-separated; none taller
    /// than the source is made.
    #[arg(long, env = "TUSKD_HLS_LADDER", default_value = "360,720,1080")]
    pub hls_ladder: String,

    /// Widths of the thumbnails made from the poster frame, comma-separated.
    #[arg(long, env = "TUSKD_THUMB_WIDTHS", default_value = "320,640")]
    pub thumb_widths: String,

    /// Also write each video as one progressive MP4 (the largest rendition up to 720p), for
    /// players without HLS and for downloads.
    #[arg(long, env = "TUSKD_MP4_FALLBACK")]
    pub mp4_fallback: bool,

    /// Loudness that audio renditions are normalised to, in LUFS (EBU R128); the gain never
    /// pushes the true peak above -1 dBTP.
    #[arg(
        long,
        env = "TUSKD_AUDIO_LOUDNESS",
        default_value_t = -16.0,
        allow_hyphen_values = true
    )]
    pub audio_loudness: f64,

    /// clamd to scan every finished upload with (tcp://host:port or unix:/path); no scan
    /// without it.
    #[arg(long, env = "TUSKD_CLAMD")]
    pub clamd: Option<String>,

    /// Larger files are not scanned (outcome `skipped`). Keep it at or below clamd's
    /// StreamMaxLength, MaxScanSize and MaxFileSize (100M by default).
    #[arg(long, env = "TUSKD_SCAN_MAX_SIZE", default_value = "100MiB")]
    pub scan_max_size: String,

    /// When clamd stays unreachable through a job's attempts: `closed` fails the job, `open`
    /// processes it and records that it was not scanned.
    #[arg(long, env = "TUSKD_SCAN_POLICY", value_enum, default_value = "closed")]
    pub scan_policy: ScanPolicyArg,

    /// Move infected originals under the store's `quarantine/` prefix instead of deleting them.
    #[arg(long, env = "TUSKD_QUARANTINE")]
    pub quarantine: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ScanPolicyArg {
    Closed,
    Open,
}

#[derive(Debug, Clone, Args)]
pub struct HooksArgs {
    /// The server's data directory (where tuskd.db is).
    #[arg(long, env = "TUSKD_DATA_DIR", default_value = "./data", global = true)]
    pub data_dir: PathBuf,

    /// The server's metadata store (--meta of `serve`), if not tuskd.db in the data directory.
    #[arg(long, env = "TUSKD_META", global = true)]
    pub meta: Option<String>,

    #[command(subcommand)]
    pub action: HooksAction,
}

#[derive(Debug, Clone, Subcommand)]
pub enum HooksAction {
    /// Events not yet delivered: id, event, upload, state, attempts, created, last error.
    List {
        /// Only dead letters (events given up after the most attempts).
        #[arg(long)]
        failed: bool,
    },
    /// Makes an event due now, with its attempts reset; a running server delivers it.
    Retry {
        /// The event id, as `tuskd hooks list` shows it.
        id: String,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OnOff {
    On,
    Off,
}

#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Address to listen on (host:port; port 0 picks a free port).
    #[arg(long, env = "TUSKD_LISTEN", default_value = "127.0.0.1:1080")]
    pub listen: String,

    /// URL path under which uploads live.
    #[arg(long, env = "TUSKD_BASE_PATH", default_value = "/files/")]
    pub base_path: String,

    /// Directory for upload data and the metadata database (tuskd.db).
    #[arg(long, env = "TUSKD_DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,

    /// Where the metadata lives: a SQLite file (default: tuskd.db in the data directory), or
    /// postgres://user:password@host:port/database, which several tuskd nodes share.
    #[arg(long, env = "TUSKD_META")]
    pub meta: Option<String>,

    /// Postgres: the most connections this node opens to it.
    #[arg(long, env = "TUSKD_META_POOL", default_value_t = 16)]
    pub meta_pool: usize,

    /// The local-disk store (--store DIR) is a file system every node mounts (NFS, CephFS),
    /// so nodes sharing a Postgres metadata store may use it.
    #[arg(long, env = "TUSKD_STORE_SHARED")]
    pub store_shared: bool,

    /// Largest upload accepted, e.g. 10GiB; 0 means unlimited.
    #[arg(long, env = "TUSKD_MAX_SIZE", default_value = "0")]
    pub max_size: String,

    /// How long an unfinished upload may stay idle before it expires, e.g. 24h; 0 disables.
    #[arg(long, env = "TUSKD_EXPIRE_AFTER", default_value = "24h")]
    pub expire_after: String,

    /// Regular expression for allowed browser origins (matched against the whole Origin);
    /// unset allows every origin.
    #[arg(long, env = "TUSKD_CORS_ALLOW_ORIGIN")]
    pub cors_allow_origin: Option<String>,

    /// Send Access-Control-Allow-Credentials: true (for browser clients that send cookies).
    #[arg(long, env = "TUSKD_CORS_ALLOW_CREDENTIALS")]
    pub cors_allow_credentials: bool,

    /// Trust Forwarded / X-Forwarded-Host / X-Forwarded-Proto when building upload URLs.
    #[arg(long, env = "TUSKD_BEHIND_PROXY")]
    pub behind_proxy: bool,

    /// A PEM certificate chain (leaf first) to serve HTTPS with; with `--tls-key`. Read again
    /// when the file changes (renewals need no restart). HTTP/2 and HTTP/1.1 by ALPN.
    #[arg(long, env = "TUSKD_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<std::path::PathBuf>,

    /// The certificate's PEM private key (PKCS#8, PKCS#1 or SEC1).
    #[arg(long, env = "TUSKD_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<std::path::PathBuf>,

    /// Longest wait for the next bytes of a request (headers or body) before giving up.
    #[arg(long, env = "TUSKD_READ_TIMEOUT", default_value = "60s")]
    pub read_timeout: String,

    /// Most client connections open at once; more are answered 503 at once and closed.
    /// Default: what the open-files limit allows (two descriptors per upload).
    #[arg(long, env = "TUSKD_MAX_CONNECTIONS")]
    pub max_connections: Option<usize>,

    /// Longest a single storage operation (a part, a commit, finishing) may take before the
    /// request is answered 503 with Retry-After.
    #[arg(long, env = "TUSKD_STORE_TIMEOUT", default_value = "30s")]
    pub store_timeout: String,

    /// How often background repair retries what a failed request left half done: finishing a
    /// complete upload's storage, deleting a terminated one's, releasing their hook events.
    #[arg(long, env = "TUSKD_REPAIR_INTERVAL", default_value = "30s")]
    pub repair_interval: String,

    /// Longest wait, on SIGINT/SIGTERM, for running requests to save what they have.
    #[arg(long, env = "TUSKD_SHUTDOWN_TIMEOUT", default_value = "30s")]
    pub shutdown_timeout: String,

    /// Where upload bytes go: a directory or file:// URL (default: the data directory),
    /// memory://, s3://bucket/prefix, gs://bucket/prefix or az://container/prefix. Credentials
    /// and regions come from the provider's usual environment variables (AWS_*, GOOGLE_*,
    /// AZURE_*).
    #[arg(long, env = "TUSKD_STORE")]
    pub store: Option<String>,

    /// Endpoint of an S3-compatible store (MinIO, R2, Ceph, Garage), e.g. http://minio:9000.
    /// Requests use path-style addressing; an http:// endpoint allows plain HTTP.
    #[arg(long, env = "TUSKD_S3_ENDPOINT")]
    pub s3_endpoint: Option<String>,

    /// Object stores: size of every part but the last (at least 5MiB).
    #[arg(long, env = "TUSKD_PART_SIZE", default_value = "8MiB")]
    pub part_size: String,

    /// Object stores: the most memory all running uploads may hold in part buffers together;
    /// further uploads wait for room. Default: an eighth of the machine's memory.
    #[arg(long, env = "TUSKD_MAX_BUFFERED")]
    pub max_buffered: Option<String>,

    /// Directory of hook scripts, each named after its event (pre-create, post-finish, ...).
    #[arg(long, env = "TUSKD_HOOKS_DIR")]
    pub hooks_dir: Option<PathBuf>,

    /// URL that receives every hook event as a JSON POST (tusd's format).
    #[arg(long, env = "TUSKD_HOOKS_HTTP")]
    pub hooks_http: Option<String>,

    /// Extra header for webhook requests, "Name: value" (repeatable), e.g. for authorization.
    #[arg(long, env = "TUSKD_HOOKS_HTTP_HEADER")]
    pub hooks_http_header: Vec<String>,

    /// Request header removed from post-* events before they are stored in the outbox, in
    /// addition to Authorization, Cookie and Proxy-Authorization (repeatable).
    #[arg(long, env = "TUSKD_HOOKS_REDACT_HEADER", value_delimiter = ',')]
    pub hooks_redact_header: Vec<String>,

    /// Events sent to hooks, comma-separated: pre-create, post-create, post-receive,
    /// pre-finish, post-finish, pre-terminate, post-terminate, media-ready, media-rejected,
    /// media-failed.
    #[arg(
        long,
        env = "TUSKD_HOOKS_ENABLED_EVENTS",
        default_value = "pre-create,post-create,post-receive,pre-finish,post-finish,pre-terminate,post-terminate,media-ready,media-rejected,media-failed"
    )]
    pub hooks_enabled_events: String,

    /// Longest a hook may take; a script is killed then.
    #[arg(long, env = "TUSKD_HOOK_TIMEOUT", default_value = "30s")]
    pub hook_timeout: String,

    /// Least time between two post-receive (progress) events of one PATCH.
    #[arg(long, env = "TUSKD_PROGRESS_INTERVAL", default_value = "1s")]
    pub progress_interval: String,

    /// Delivery attempts of a post-* event before it is kept as a dead letter.
    #[arg(long, env = "TUSKD_HOOK_MAX_ATTEMPTS", default_value_t = 12)]
    pub hook_max_attempts: u32,

    /// Free space kept on every filesystem tuskd writes to (uploads, the SQLite database,
    /// media work files): a size (512MiB; 0 for none) or a share (2%). Below it new uploads
    /// are refused and upload data stops (507); media work waits below twice as much.
    /// Default: 5% of the filesystem, at most 1GiB.
    #[arg(long, env = "TUSKD_MIN_FREE_SPACE")]
    pub min_free_space: Option<String>,

    /// Flush bytes to disk before a PATCH is acknowledged.
    #[arg(long, env = "TUSKD_FSYNC", value_enum, default_value = "on")]
    pub fsync: OnOff,

    #[command(flatten)]
    pub media: MediaArgs,

    #[command(flatten)]
    pub access: AccessArgs,

    /// Log filter, e.g. info, tuskd=debug, or info,tuskd::access=off (no access lines).
    #[arg(long, env = "TUSKD_LOG", default_value = "info")]
    pub log: String,

    /// Prometheus metrics at /metrics.
    #[arg(long, env = "TUSKD_METRICS", value_enum, default_value = "on")]
    pub metrics: OnOff,

    /// Serve /metrics on this address only (e.g. 127.0.0.1:9100), not on the main listener.
    #[arg(long, env = "TUSKD_METRICS_LISTEN")]
    pub metrics_listen: Option<String>,

    /// Log lines as text, or as one JSON object each (for log pipelines).
    #[arg(long, env = "TUSKD_LOG_FORMAT", value_enum, default_value = "text")]
    pub log_format: LogFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// Who may do what: authentication, owners' quotas, the listing and media URLs.
#[derive(Debug, Clone, clap::Args)]
pub struct AccessArgs {
    /// How requests are authenticated: `none` (anyone, the default), `jwt` (bearer tokens
    /// verified with --auth-jwt-secret-file, --auth-jwt-public-key-file or --auth-jwks), `hook`
    /// (a pre-access hook, through --hooks-dir or --hooks-http, decides and names the owner).
    #[arg(long, env = "TUSKD_AUTH", value_enum, default_value = "none")]
    pub auth: AuthArg,

    /// HMAC secret (at least 32 bytes) for HS256/384/512 tokens, read from this file.
    #[arg(long, env = "TUSKD_AUTH_JWT_SECRET_FILE")]
    pub auth_jwt_secret_file: Option<PathBuf>,

    /// PEM public key (RSA, EC P-256/P-384 or Ed25519) for RS*/PS*/ES*/EdDSA tokens.
    #[arg(long, env = "TUSKD_AUTH_JWT_PUBLIC_KEY_FILE")]
    pub auth_jwt_public_key_file: Option<PathBuf>,

    /// A JSON Web Key Set: a file, or an https:// (or http://) URL fetched and kept fresh,
    /// e.g. an identity provider's jwks_uri.
    #[arg(long, env = "TUSKD_AUTH_JWKS")]
    pub auth_jwks: Option<String>,

    /// How often a JWKS URL is fetched again (a token with an unknown kid fetches it sooner,
    /// at most every 30 s).
    #[arg(long, env = "TUSKD_AUTH_JWKS_REFRESH", default_value = "10m")]
    pub auth_jwks_refresh: String,

    /// Tokens must carry this `iss`.
    #[arg(long, env = "TUSKD_AUTH_JWT_ISSUER")]
    pub auth_jwt_issuer: Option<String>,

    /// Tokens must carry this `aud`.
    #[arg(long, env = "TUSKD_AUTH_JWT_AUDIENCE")]
    pub auth_jwt_audience: Option<String>,

    /// Clock skew allowed on `exp` and `nbf`.
    #[arg(long, env = "TUSKD_AUTH_JWT_LEEWAY", default_value = "30s")]
    pub auth_jwt_leeway: String,

    /// The scope (in `scope` or `scp`) that lets a token list and read every owner's uploads.
    #[arg(long, env = "TUSKD_AUTH_ADMIN_SCOPE", default_value = "tuskd:admin")]
    pub auth_admin_scope: String,

    /// How long a pre-access hook's decision is reused for the same credentials, method,
    /// route and upload; 0 asks the hook every time.
    #[arg(long, env = "TUSKD_AUTH_HOOK_CACHE", default_value = "10s")]
    pub auth_hook_cache: String,

    /// /metrics needs an admin caller too (health and readiness stay open for probes).
    #[arg(long, env = "TUSKD_AUTH_METRICS")]
    pub auth_metrics: bool,

    /// Most bytes one owner's uploads may hold at once, e.g. 50GiB; 0: no limit.
    #[arg(long, env = "TUSKD_QUOTA_BYTES", default_value = "0")]
    pub quota_bytes: String,

    /// Most unfinished uploads one owner may have at once; 0: no limit.
    #[arg(long, env = "TUSKD_QUOTA_UNFINISHED", default_value_t = 0)]
    pub quota_unfinished: u64,

    /// Most uploads one owner may create per minute; 0: no limit.
    #[arg(long, env = "TUSKD_QUOTA_PER_MINUTE", default_value_t = 0)]
    pub quota_per_minute: u64,

    /// Who may read derived media files: `public` (anyone with the URL; the default with
    /// --auth none), `private` (the owner's credentials; the default otherwise), `signed` (the
    /// status document's URLs carry an expiring signature that is the only credential needed).
    #[arg(long, env = "TUSKD_MEDIA_ACCESS", value_enum)]
    pub media_access: Option<MediaAccessArg>,

    /// Keys for signed media URLs, one per line (at least 32 bytes each): the first signs,
    /// every one verifies, so a new key is put first and the old one removed later.
    #[arg(long, env = "TUSKD_MEDIA_SIGNING_KEY_FILE")]
    pub media_signing_key_file: Option<PathBuf>,

    /// How long a signed media URL stays valid.
    #[arg(long, env = "TUSKD_MEDIA_URL_TTL", default_value = "1h")]
    pub media_url_ttl: String,

    /// Where an authenticated caller lists its uploads (GET).
    #[arg(long, env = "TUSKD_LIST_PATH", default_value = "/uploads")]
    pub list_path: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum MediaAccessArg {
    Public,
    Private,
    Signed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AuthArg {
    None,
    Jwt,
    Hook,
}
