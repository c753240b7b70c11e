//! The `tuskd` binary: parse flags, validate, set up logging, bind, serve.

use std::process::ExitCode;

use clap::Parser;
use tuskd::cli::{Cli, Command, LogFormat};
use tuskd::{App, Config};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let (args, worker) = match cli.command {
        Command::Serve(args) => (args, false),
        Command::Worker(args) => (args, true),
        Command::Hooks(args) => {
            return admin_command("hooks", tuskd::commands::hooks::run(&args));
        }
        Command::Media(args) => return admin_command("media", tuskd::commands::media::run(&args)),
        Command::Health(args) => {
            return admin_command("health", tuskd::commands::health::run(&args));
        }
        Command::Token(args) => return admin_command("token", tuskd::commands::token::run(&args)),
        Command::Upload(args) => {
            return admin_command("upload", tuskd::upload_cli::run_until_interrupted(&args));
        }
    };
    // As Go programs do: the soft open-files limit up to the hard one, so that the default
    // --max-connections (derived from it) is what the machine allows.
    let _ = rlimit::increase_nofile_limit(u64::MAX);
    let config = match Config::from_args(&args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("tuskd: {e}");
            return ExitCode::from(2);
        }
    };
    if worker && let Err(e) = tuskd::worker::check(&config) {
        eprintln!("tuskd: {e}");
        return ExitCode::from(2);
    }
    let filter = match tracing_subscriber::EnvFilter::try_new(&args.log) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("tuskd: invalid --log: {e}");
            return ExitCode::from(2);
        }
    };
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match args.log_format {
        LogFormat::Json => logs.json().with_current_span(false).init(),
        // Colours only for a terminal: log files and collectors get plain text.
        LogFormat::Text => logs
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .init(),
    }

    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("tuskd: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(serve(config, worker)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Settings(e)) => {
            eprintln!("tuskd: {e}");
            ExitCode::from(2)
        }
        Err(Failure::Other(e)) => {
            eprintln!("tuskd: {e}");
            ExitCode::FAILURE
        }
    }
}

enum Failure {
    /// The settings cannot work (exit 2), e.g. a store that refuses the credentials.
    Settings(Box<dyn std::error::Error>),
    Other(Box<dyn std::error::Error>),
}

async fn serve(config: Config, worker: bool) -> Result<(), Failure> {
    #[cfg(feature = "media")]
    if config.media.is_some() {
        let missing =
            tuskd::media::gst::missing_elements().map_err(|e| Failure::Other(e.message.into()))?;
        if !missing.is_empty() {
            return Err(Failure::Settings(
                format!(
                    "the media pipeline needs GStreamer elements that are not installed: {}; \
                     install them or run with --media off",
                    missing.join(", ")
                )
                .into(),
            ));
        }
    }
    if worker {
        let app = open(config).await?;
        tracing::info!(
            store = %app.config.store,
            meta = %app.config.meta.describe(),
            "tuskd {} running media jobs",
            env!("CARGO_PKG_VERSION")
        );
        tuskd::worker::run(app, shutdown_signal()).await;
        return Ok(());
    }
    let listener = tokio::net::TcpListener::bind(&config.listen)
        .await
        .map_err(|e| Failure::Other(format!("cannot listen on {}: {e}", config.listen).into()))?;
    let addr = listener
        .local_addr()
        .map_err(|e| Failure::Other(e.into()))?;
    let app = open(config).await?;
    tracing::info!(store = %app.config.store, meta = %app.config.meta.describe(), "storing uploads");
    let scheme = if app.config.tls.is_some() {
        "https"
    } else {
        "http"
    };
    tracing::info!(
        "tuskd {} listening on {scheme}://{addr}{} (data in {})",
        env!("CARGO_PKG_VERSION"),
        app.config.base_path,
        app.config.data_dir.display()
    );
    tuskd::run(listener, app, shutdown_signal())
        .await
        .map_err(|e| Failure::Other(e.into()))
}

async fn open(config: Config) -> Result<App, Failure> {
    match App::open(config).await {
        Ok(app) => Ok(app),
        Err(e @ tuskd::app::OpenError::Store(_)) => Err(Failure::Settings(e.into())),
        Err(e) => Err(Failure::Other(e.into())),
    }
}

/// Runs an administrative subcommand (`tuskd hooks`, `tuskd media`) to its exit status.
fn admin_command(
    name: &str,
    command: impl std::future::Future<Output = Result<u8, String>>,
) -> ExitCode {
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("tuskd: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(command) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("tuskd {name}: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {},
            _ = term.recv() => {},
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
