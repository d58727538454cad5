//! The `babysync` command line: `serve` (default), `migrate up|status`, `token`.

use std::{io::Write, path::Path, process::ExitCode, time::Duration};

use clap::{Parser, Subcommand};
use tracing_subscriber::EnvFilter;

use crate::{
    AppState,
    auth::{Authenticator, sign_hs256},
    config::{Config, LogFormat},
    db,
};

#[derive(Parser, Debug)]
#[command(
    name = "babysync",
    version,
    about = "Sync backend for offline-first baby-tracking apps"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    config: Config,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Apply pending migrations, then serve HTTP until SIGTERM or SIGINT (the default).
    Serve,
    /// Apply pending migrations, or list applied and pending ones.
    Migrate {
        #[command(subcommand)]
        action: MigrateAction,
    },
    /// Exit 0 if the server at BIND_ADDR answers `GET /health/ready` with 200
    /// (the container's health check; the image has no shell or curl).
    Healthcheck,
    /// Print a signed HS256 token for local use and tests.
    Token {
        /// The user id (`sub` claim).
        #[arg(long)]
        sub: String,
        /// The display name (`name` claim).
        #[arg(long)]
        name: Option<String>,
        /// Lifetime, e.g. `90s`, `30m`, `1h`, `7d`.
        #[arg(long, default_value = "1h", value_parser = parse_ttl)]
        ttl: Duration,
    },
}

#[derive(Subcommand, Debug)]
enum MigrateAction {
    /// Apply pending migrations.
    Up,
    /// List applied and pending migrations.
    Status,
}

fn parse_ttl(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (n, unit) = s.split_at(split);
    let n: u64 = n
        .parse()
        .map_err(|_| format!("not a duration: {s:?} (try 30m, 1h, 7d)"))?;
    let secs = match unit {
        "" | "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        "d" => n * 86_400,
        _ => return Err(format!("unknown unit in {s:?}: use s, m, h or d")),
    };
    if secs == 0 {
        return Err("ttl must be positive".into());
    }
    Ok(Duration::from_secs(secs))
}

/// Runs the binary: parse, set up logging, dispatch. Errors are one line on stderr.
pub fn run() -> ExitCode {
    let _ = dotenvy::dotenv();
    let matches = <Cli as clap::CommandFactory>::command().get_matches();
    let secret_on_command_line =
        matches.value_source("jwt_secret") == Some(clap::parser::ValueSource::CommandLine);
    let mut cli = match <Cli as clap::FromArgMatches>::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    cli.config.drop_empty_settings();
    if let Err(e) = cli.config.validate() {
        eprintln!("error: {e}");
        return ExitCode::FAILURE;
    }
    init_tracing(&cli.config);
    if secret_on_command_line {
        tracing::warn!(
            "--jwt-secret shows the secret to every user of this machine (the process list); set JWT_SECRET in the environment or .env instead"
        );
    }
    limit_malloc_arenas();
    let _ = rustls::crypto::ring::default_provider().install_default();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        match cli.command.unwrap_or(Command::Serve) {
            Command::Serve => serve(cli.config).await,
            Command::Migrate { action } => migrate(cli.config, action).await,
            Command::Token { sub, name, ttl } => token(&cli.config, &sub, name.as_deref(), ttl),
            Command::Healthcheck => healthcheck(cli.config.bind_addr),
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // One line per problem, the same whatever the log format (no log
            // event besides it).
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// glibc gives each thread that allocates its own arena (up to 8 per core),
/// and sqlx-sqlite runs a thread per connection: freed memory then sits in
/// many arenas, each keeping its own. One arena: what one request freed the
/// next reuses, whichever thread it runs on. Measured (docs/PERFORMANCE.md):
/// a pull of a page of long notes takes 1.2x the page in extra RSS with one
/// arena and 1.8-2.3x with two; push throughput is 8-15 % lower. Set
/// `MALLOC_ARENA_MAX` in the environment to choose otherwise.
fn limit_malloc_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
        // SAFETY: called before the runtime starts any other thread.
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, 1);
        }
    }
}

fn init_tracing(config: &Config) {
    let filter = EnvFilter::try_new(&config.rust_log).unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match config.log_format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .try_init(),
        LogFormat::Pretty => builder
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .try_init(),
    };
}

/// The HS256 secret of the embedded database, created once beside its file.
/// Creating it always warns (it is for local use only); using an existing
/// one warns only when `serving` (`token` says nothing more about a file it
/// or a server already warned about).
fn local_secret(config: &Config, serving: bool) -> Result<Option<Vec<u8>>, String> {
    let any_jwt = config.jwt_secret.is_some()
        || config.jwt_public_key_file.is_some()
        || config.jwt_jwks_url.is_some();
    if any_jwt || !config.is_sqlite() {
        return Ok(None);
    }
    match config.local_secret_path() {
        Some(path) => load_or_create_secret(&path, serving).map(Some),
        None => {
            tracing::warn!(
                "in-memory database and no JWT_* setting: using a throw-away secret for this process"
            );
            Ok(Some(random_secret().into_bytes()))
        }
    }
}

fn random_secret() -> String {
    use rand::RngCore;
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

fn load_or_create_secret(path: &Path, serving: bool) -> Result<Vec<u8>, String> {
    use std::os::unix::fs::OpenOptionsExt;
    let show = |e: std::io::Error| format!("local secret {}: {e}", path.display());
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(mut file) => {
            let secret = random_secret();
            file.write_all(secret.as_bytes()).map_err(show)?;
            file.sync_all().map_err(show)?;
            tracing::warn!(
                path = %path.display(),
                "no JWT_* setting: created a random HS256 secret for local use only; set JWT_SECRET, JWT_PUBLIC_KEY_FILE or JWT_JWKS_URL in production"
            );
            Ok(secret.into_bytes())
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            let secret = std::fs::read_to_string(path).map_err(show)?;
            let secret = secret.trim();
            if secret.len() < 32 {
                return Err(format!(
                    "local secret {} is shorter than 32 bytes",
                    path.display()
                ));
            }
            if serving {
                tracing::warn!(path = %path.display(), "no JWT_* setting: using the local secret file; for local use only");
            }
            Ok(secret.as_bytes().to_vec())
        }
        Err(e) => Err(show(e)),
    }
}

async fn serve(config: Config) -> Result<(), String> {
    let started = std::time::Instant::now();
    let secret = local_secret(&config, true)?;
    let auth = Authenticator::from_config(&config, secret.as_deref())?;
    // Bind first: a port already taken is found before any database work.
    let listener = tokio::net::TcpListener::bind(config.bind_addr)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", config.bind_addr))?;
    let db = db::connect(&config).await?;
    if config.migrate_on_start {
        db::migrate(&config, &db).await?;
    }
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    tracing::info!(
        %addr,
        database = %crate::config::redact_url(&config.database_url),
        startup_ms = started.elapsed().as_millis() as u64,
        "babysync listening"
    );
    let state = AppState::new(db, config, auth);
    crate::serve(listener, state, shutdown_signal())
        .await
        .map_err(|e| format!("server error: {e}"))?;
    tracing::info!("stopped");
    Ok(())
}

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => return std::future::pending().await,
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}

async fn migrate(config: Config, action: MigrateAction) -> Result<(), String> {
    let db = db::connect(&config).await?;
    match action {
        MigrateAction::Up => {
            db::migrate(&config, &db).await?;
            println!("all migrations applied");
        }
        MigrateAction::Status => {
            let list = db::migration_status(&db)
                .await
                .map_err(|e| format!("cannot read migration status: {e}"))?;
            for (name, applied) in list {
                println!("{}\t{name}", if applied { "applied" } else { "pending" });
            }
        }
    }
    let _ = db.close().await;
    Ok(())
}

/// `GET /health/ready` on the local server, with a 3 s budget.
fn healthcheck(bind: std::net::SocketAddr) -> Result<(), String> {
    use std::io::{Read, Write};
    let mut addr = bind;
    if addr.ip().is_unspecified() {
        addr.set_ip(if addr.is_ipv4() {
            std::net::Ipv4Addr::LOCALHOST.into()
        } else {
            std::net::Ipv6Addr::LOCALHOST.into()
        });
    }
    let timeout = Duration::from_secs(3);
    let mut stream = std::net::TcpStream::connect_timeout(&addr, timeout)
        .map_err(|e| format!("health check: cannot connect to {addr}: {e}"))?;
    stream.set_read_timeout(Some(timeout)).ok();
    stream.set_write_timeout(Some(timeout)).ok();
    stream
        .write_all(
            format!("GET /health/ready HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n")
                .as_bytes(),
        )
        .map_err(|e| format!("health check: {e}"))?;
    let mut head = [0u8; 12];
    stream
        .read_exact(&mut head)
        .map_err(|e| format!("health check: {e}"))?;
    let status = String::from_utf8_lossy(&head[9..12]).into_owned();
    if status == "200" {
        println!("ready");
        Ok(())
    } else {
        Err(format!("health check: /health/ready answered {status}"))
    }
}

fn token(config: &Config, sub: &str, name: Option<&str>, ttl: Duration) -> Result<(), String> {
    let secret = match (&config.jwt_secret, local_secret(config, false)?) {
        (Some(s), _) => s.expose().as_bytes().to_vec(),
        (None, Some(local)) => local,
        (None, None) => {
            return Err("`token` signs with HS256: set JWT_SECRET (or use the embedded database's local secret)".into());
        }
    };
    let token = sign_hs256(
        &secret,
        sub,
        name,
        ttl,
        config.jwt_issuer.as_deref(),
        config.jwt_audience.as_deref(),
    )?;
    println!("{token}");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::parse_ttl;
    use std::time::Duration;

    #[test]
    fn ttl_units() {
        assert_eq!(parse_ttl("90s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_ttl("30m").unwrap(), Duration::from_secs(1800));
        assert_eq!(parse_ttl("1h").unwrap(), Duration::from_secs(3600));
        assert_eq!(parse_ttl("7d").unwrap(), Duration::from_secs(604_800));
        assert_eq!(parse_ttl("45").unwrap(), Duration::from_secs(45));
        assert!(parse_ttl("0h").is_err());
        assert!(parse_ttl("1w").is_err());
        assert!(parse_ttl("h").is_err());
    }
}
