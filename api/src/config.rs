//! One typed configuration, read from environment variables and flags of the
//! same name (OPERATIONS.md). Secrets are redacted in `Debug`.

use std::{fmt, net::SocketAddr, path::PathBuf, time::Duration};

use clap::{Args, ValueEnum};

/// A secret string that never shows in `Debug` output or logs.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Self(s.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl std::str::FromStr for Secret {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Self(s.to_owned()))
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Pretty,
    Json,
}

/// Every setting of OPERATIONS.md. Each is a flag and an environment variable.
#[derive(Clone, Debug, Args)]
pub struct Config {
    /// `postgres://…` for PostgreSQL; `sqlite://…` for the embedded database.
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = "sqlite://babysync.db?mode=rwc",
        global = true
    )]
    pub database_url: String,

    /// A streaming read replica of the PostgreSQL database (optional): pull
    /// and the read-only routes read there when it has caught up with what
    /// was committed before the request came, the primary otherwise.
    #[arg(long, env = "DATABASE_READ_URL", global = true)]
    pub database_read_url: Option<String>,

    /// A direct connection to the PostgreSQL primary, for when
    /// `DATABASE_URL` goes through a transaction-mode pooler (PgBouncer):
    /// live updates listen there and migrations take their lock there, and
    /// statements through the pooler keep no state between transactions.
    #[arg(long, env = "DATABASE_DIRECT_URL", global = true)]
    pub database_direct_url: Option<String>,

    /// Where to listen.
    #[arg(
        long,
        env = "BIND_ADDR",
        default_value = "127.0.0.1:8080",
        global = true
    )]
    pub bind_addr: SocketAddr,

    /// HS256 shared secret (at least 32 bytes), used as the bytes given.
    /// Set it as JWT_SECRET (the environment or .env): given as
    /// --jwt-secret it shows in the process list to every user of the
    /// machine.
    #[arg(long, env = "JWT_SECRET", hide_env_values = true, global = true)]
    pub jwt_secret: Option<Secret>,

    /// PEM public key; RS256, ES256 or EdDSA by the key's type.
    #[arg(long, env = "JWT_PUBLIC_KEY_FILE", global = true)]
    pub jwt_public_key_file: Option<PathBuf>,

    /// JWKS endpoint of an identity provider.
    #[arg(long, env = "JWT_JWKS_URL", global = true)]
    pub jwt_jwks_url: Option<String>,

    /// Minimum seconds between two JWKS refetches triggered by an unknown `kid`.
    #[arg(
        long,
        env = "JWT_JWKS_REFETCH_SECS",
        default_value_t = 30,
        global = true
    )]
    pub jwt_jwks_refetch_secs: u64,

    /// When set, tokens must carry this `iss`.
    #[arg(long, env = "JWT_ISSUER", global = true)]
    pub jwt_issuer: Option<String>,

    /// When set, tokens must carry this `aud`.
    #[arg(long, env = "JWT_AUDIENCE", global = true)]
    pub jwt_audience: Option<String>,

    /// Database pool size.
    #[arg(long, env = "DB_MAX_CONNECTIONS", default_value_t = 16, global = true)]
    pub db_max_connections: u32,

    /// How long start-up keeps retrying an unreachable database.
    #[arg(
        long,
        env = "DB_CONNECT_TIMEOUT_SECS",
        default_value_t = 30,
        global = true
    )]
    pub db_connect_timeout_secs: u64,

    /// Mutations per push.
    #[arg(
        long,
        env = "PUSH_MAX_MUTATIONS",
        default_value_t = 1000,
        global = true
    )]
    pub push_max_mutations: usize,

    /// Request body limit in bytes.
    #[arg(
        long,
        env = "BODY_LIMIT_BYTES",
        default_value_t = 2_097_152,
        global = true
    )]
    pub body_limit_bytes: usize,

    /// Body limit of `POST /api/babies/import` (decompressed), in bytes.
    #[arg(
        long,
        env = "IMPORT_BODY_LIMIT_BYTES",
        default_value_t = 67_108_864,
        global = true
    )]
    pub import_body_limit_bytes: usize,

    /// `false` leaves migrations to `babysync migrate up`.
    #[arg(long, env = "MIGRATE_ON_START", default_value_t = true, action = clap::ArgAction::Set, global = true)]
    pub migrate_on_start: bool,

    /// How long in-flight requests may finish after SIGTERM.
    #[arg(long, env = "SHUTDOWN_GRACE_SECS", default_value_t = 30, global = true)]
    pub shutdown_grace_secs: u64,

    /// How long one request may take before it is answered 503.
    #[arg(
        long,
        env = "REQUEST_TIMEOUT_SECS",
        default_value_t = 30,
        global = true
    )]
    pub request_timeout_secs: u64,

    /// Requests per second each user may make to `/api/*` (0: no limit).
    #[arg(
        long,
        env = "RATE_LIMIT_PER_SEC",
        default_value_t = 50.0,
        global = true
    )]
    pub rate_limit_per_sec: f64,

    /// How many requests a user may make at once before the rate applies.
    #[arg(long, env = "RATE_LIMIT_BURST", default_value_t = 100, global = true)]
    pub rate_limit_burst: u32,

    /// `/api/*` requests served at once; more are shed with 503 at once.
    #[arg(
        long,
        env = "MAX_CONCURRENT_REQUESTS",
        default_value_t = 512,
        global = true
    )]
    pub max_concurrent_requests: usize,

    /// A built web app to serve on the same origin: its files at `/`, and
    /// `index.html` for any other path outside `/api/`, `/health/`.
    #[arg(long, env = "WEB_APP_DIR", alias = "web", global = true)]
    pub web_app_dir: Option<PathBuf>,

    /// Seconds between two keep-alive comments on an open event stream.
    #[arg(
        long,
        env = "EVENTS_KEEPALIVE_SECS",
        default_value_t = 15,
        global = true
    )]
    pub events_keepalive_secs: u64,

    /// Comma-separated origins (or `*`) that browsers may call `/api/*` from;
    /// unset: no CORS headers.
    #[arg(long, env = "CORS_ALLOWED_ORIGINS", global = true)]
    pub cors_allowed_origins: Option<String>,

    /// Babies a user can access, archived ones included.
    #[arg(
        long,
        env = "MAX_BABIES_PER_USER",
        default_value_t = 100,
        global = true
    )]
    pub max_babies_per_user: u64,

    /// Open invites (neither revoked, used up nor expired) per baby.
    #[arg(
        long,
        env = "MAX_OPEN_INVITES_PER_BABY",
        default_value_t = 20,
        global = true
    )]
    pub max_open_invites_per_baby: u64,

    /// A connection that has not sent a whole request head by then is closed.
    #[arg(
        long,
        env = "HTTP_HEADER_TIMEOUT_SECS",
        default_value_t = 10,
        global = true
    )]
    pub http_header_timeout_secs: u64,

    /// An idle keep-alive connection is closed after this.
    #[arg(
        long,
        env = "HTTP_IDLE_TIMEOUT_SECS",
        default_value_t = 75,
        global = true
    )]
    pub http_idle_timeout_secs: u64,

    /// A request body not fully received by then is answered 408.
    #[arg(long, env = "BODY_TIMEOUT_SECS", default_value_t = 15, global = true)]
    pub body_timeout_secs: u64,

    /// Open client connections; more wait at accept.
    #[arg(long, env = "MAX_CONNECTIONS", default_value_t = 4096, global = true)]
    pub max_connections: usize,

    /// `json` for one JSON object per line.
    #[arg(long, env = "LOG_FORMAT", value_enum, default_value_t = LogFormat::Pretty, global = true)]
    pub log_format: LogFormat,

    /// tracing filter.
    #[arg(long, env = "RUST_LOG", default_value = "info", global = true)]
    pub rust_log: String,
}

/// What a bad setting looks like: one line naming the problem.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

impl Config {
    /// Defaults for everything, as if no variable or flag were given.
    pub fn defaults() -> Self {
        use clap::{FromArgMatches, Parser};
        #[derive(Parser)]
        struct Only {
            #[command(flatten)]
            config: Config,
        }
        let matches = <Only as clap::CommandFactory>::command()
            .mut_args(|a| a.env(None::<&str>))
            .get_matches_from(["babysync"]);
        Only::from_arg_matches(&matches)
            .expect("defaults parse")
            .config
    }

    pub fn is_sqlite(&self) -> bool {
        self.database_url.starts_with("sqlite:")
    }

    pub fn is_postgres(&self) -> bool {
        is_postgres_url(&self.database_url)
    }

    /// Whether `DATABASE_URL` goes through a transaction-mode pooler.
    pub fn behind_pooler(&self) -> bool {
        self.database_direct_url.is_some()
    }

    /// Where sessions go: the migration lock, the live-updates listener.
    pub fn direct_url(&self) -> &str {
        self.database_direct_url
            .as_deref()
            .unwrap_or(&self.database_url)
    }

    pub fn shutdown_grace(&self) -> Duration {
        Duration::from_secs(self.shutdown_grace_secs)
    }

    pub fn body_timeout(&self) -> Duration {
        Duration::from_secs(self.body_timeout_secs)
    }

    pub fn request_timeout(&self) -> Duration {
        Duration::from_secs(self.request_timeout_secs)
    }

    /// Optional settings given as empty strings (`JWT_SECRET=` in a `.env`
    /// copied from `.env.example`) count as unset.
    pub fn drop_empty_settings(&mut self) {
        if self
            .jwt_secret
            .as_ref()
            .is_some_and(|s| s.expose().is_empty())
        {
            self.jwt_secret = None;
        }
        for value in [
            &mut self.jwt_jwks_url,
            &mut self.jwt_issuer,
            &mut self.jwt_audience,
            &mut self.cors_allowed_origins,
            &mut self.database_read_url,
            &mut self.database_direct_url,
        ] {
            if value.as_deref().is_some_and(|v| v.trim().is_empty()) {
                *value = None;
            }
        }
        if self
            .jwt_public_key_file
            .as_ref()
            .is_some_and(|p| p.as_os_str().is_empty())
        {
            self.jwt_public_key_file = None;
        }
    }

    /// Checks what clap cannot: value ranges and combinations.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if !self.is_sqlite() && !self.is_postgres() {
            return Err(ConfigError(format!(
                "DATABASE_URL must start with sqlite:// or postgres://, got {:?}",
                redact_url(&self.database_url)
            )));
        }
        for (name, url) in [
            ("DATABASE_READ_URL", &self.database_read_url),
            ("DATABASE_DIRECT_URL", &self.database_direct_url),
        ] {
            if let Some(url) = url
                && !(self.is_postgres() && is_postgres_url(url))
            {
                return Err(ConfigError(format!(
                    "{name} needs PostgreSQL: a postgres:// URL, with DATABASE_URL on PostgreSQL too; got {:?}",
                    redact_url(url)
                )));
            }
        }
        let key_settings = [
            self.jwt_secret.is_some(),
            self.jwt_public_key_file.is_some(),
            self.jwt_jwks_url.is_some(),
        ];
        if key_settings.iter().filter(|s| **s).count() > 1 {
            return Err(ConfigError(
                "set only one of JWT_SECRET, JWT_PUBLIC_KEY_FILE and JWT_JWKS_URL".into(),
            ));
        }
        if let Some(secret) = &self.jwt_secret
            && secret.expose().len() < 32
        {
            return Err(ConfigError("JWT_SECRET must be at least 32 bytes".into()));
        }
        if self.is_postgres() && !key_settings.iter().any(|s| *s) {
            return Err(ConfigError(
                "PostgreSQL needs JWT_SECRET, JWT_PUBLIC_KEY_FILE or JWT_JWKS_URL; the generated local secret is only for the embedded database".into(),
            ));
        }
        if self.db_max_connections == 0 {
            return Err(ConfigError("DB_MAX_CONNECTIONS must be at least 1".into()));
        }
        if self.push_max_mutations == 0 {
            return Err(ConfigError("PUSH_MAX_MUTATIONS must be at least 1".into()));
        }
        if self.body_limit_bytes < 1024 {
            return Err(ConfigError("BODY_LIMIT_BYTES must be at least 1024".into()));
        }
        if self.import_body_limit_bytes < 1024 {
            return Err(ConfigError(
                "IMPORT_BODY_LIMIT_BYTES must be at least 1024".into(),
            ));
        }
        if !(self.rate_limit_per_sec >= 0.0 && self.rate_limit_per_sec.is_finite()) {
            return Err(ConfigError(
                "RATE_LIMIT_PER_SEC must be 0 (off) or more".into(),
            ));
        }
        if self.rate_limit_burst == 0 {
            return Err(ConfigError("RATE_LIMIT_BURST must be at least 1".into()));
        }
        if self.max_concurrent_requests == 0 {
            return Err(ConfigError(
                "MAX_CONCURRENT_REQUESTS must be at least 1".into(),
            ));
        }
        if self.request_timeout_secs == 0 {
            return Err(ConfigError(
                "REQUEST_TIMEOUT_SECS must be at least 1".into(),
            ));
        }
        for (name, value) in [
            ("MAX_BABIES_PER_USER", self.max_babies_per_user),
            ("MAX_OPEN_INVITES_PER_BABY", self.max_open_invites_per_baby),
            ("HTTP_HEADER_TIMEOUT_SECS", self.http_header_timeout_secs),
            ("HTTP_IDLE_TIMEOUT_SECS", self.http_idle_timeout_secs),
            ("BODY_TIMEOUT_SECS", self.body_timeout_secs),
            ("MAX_CONNECTIONS", self.max_connections as u64),
            ("EVENTS_KEEPALIVE_SECS", self.events_keepalive_secs),
        ] {
            if value == 0 {
                return Err(ConfigError(format!("{name} must be at least 1")));
            }
        }
        if let Some(origins) = &self.cors_allowed_origins {
            crate::cors::parse_origins(origins).map_err(ConfigError)?;
        }
        if tracing_subscriber::EnvFilter::try_new(&self.rust_log).is_err() {
            return Err(ConfigError(format!(
                "RUST_LOG is not a valid filter: {:?}",
                self.rust_log
            )));
        }
        Ok(())
    }

    /// The SQLite database file, or `None` for PostgreSQL or an in-memory database.
    pub fn sqlite_path(&self) -> Option<PathBuf> {
        let rest = self.database_url.strip_prefix("sqlite:")?;
        let rest = rest.trim_start_matches("//");
        let path = rest.split('?').next().unwrap_or_default();
        if path.is_empty() || path.starts_with(":memory") || rest.contains("mode=memory") {
            return None;
        }
        Some(PathBuf::from(path))
    }

    /// The file that keeps the generated local HS256 secret: beside the SQLite
    /// file, or `None` for an in-memory database.
    pub fn local_secret_path(&self) -> Option<PathBuf> {
        Some(self.sqlite_path()?.with_extension("secret"))
    }
}

fn is_postgres_url(url: &str) -> bool {
    url.starts_with("postgres://") || url.starts_with("postgresql://")
}

/// A database URL with any password replaced, fit for a log line.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let userinfo = &url[scheme_end + 3..at];
            match userinfo.find(':') {
                Some(colon) => format!(
                    "{}{}:***{}",
                    &url[..scheme_end + 3],
                    &userinfo[..colon],
                    &url[at..]
                ),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_is_redacted_in_debug() {
        let mut c = Config::defaults();
        c.jwt_secret = Some(Secret::new("super-secret-value-that-is-long-enough"));
        let s = format!("{c:?}");
        assert!(!s.contains("super-secret"), "{s}");
        assert!(s.contains("[redacted]"));
    }

    #[test]
    fn local_secret_sits_beside_the_sqlite_file() {
        let mut c = Config::defaults();
        assert_eq!(
            c.local_secret_path(),
            Some(PathBuf::from("babysync.secret"))
        );
        c.database_url = "sqlite:///var/lib/bs/data.db?mode=rwc".into();
        assert_eq!(
            c.local_secret_path(),
            Some(PathBuf::from("/var/lib/bs/data.secret"))
        );
        c.database_url = "sqlite::memory:".into();
        assert_eq!(c.local_secret_path(), None);
    }

    #[test]
    fn redacts_passwords_in_urls() {
        assert_eq!(
            redact_url("postgres://u:pw@h:5432/db"),
            "postgres://u:***@h:5432/db"
        );
        assert_eq!(redact_url("postgres://u@h/db"), "postgres://u@h/db");
    }

    #[test]
    fn rate_limit_defaults_are_generous() {
        let c = Config::defaults();
        assert_eq!((c.rate_limit_per_sec, c.rate_limit_burst), (50.0, 100));
        assert_eq!(c.max_concurrent_requests, 512);
        assert_eq!(c.request_timeout_secs, 30);
    }

    #[test]
    fn empty_settings_count_as_unset() {
        let mut c = Config::defaults();
        c.jwt_secret = Some(Secret::new(""));
        c.cors_allowed_origins = Some(" ".into());
        c.drop_empty_settings();
        assert!(c.jwt_secret.is_none() && c.cors_allowed_origins.is_none());
        assert!(c.validate().is_ok());
    }

    #[test]
    fn combinations_are_checked() {
        let mut c = Config::defaults();
        assert!(c.validate().is_ok());
        c.jwt_secret = Some(Secret::new("short"));
        assert!(c.validate().unwrap_err().0.contains("32 bytes"));
        c.jwt_secret = Some(Secret::new("x".repeat(32)));
        c.jwt_jwks_url = Some("http://127.0.0.1:1/jwks".into());
        assert!(c.validate().unwrap_err().0.contains("only one"));
        let mut c = Config::defaults();
        c.database_url = "postgres://postgres@127.0.0.1/x".into();
        assert!(c.validate().unwrap_err().0.contains("PostgreSQL needs"));
        c.database_url = "mysql://x".into();
        assert!(c.validate().unwrap_err().0.contains("DATABASE_URL"));
    }

    #[test]
    fn replica_and_direct_urls_need_postgres() {
        let mut c = Config::defaults();
        c.database_read_url = Some("postgres://postgres@127.0.0.1:5433/x".into());
        let e = c.validate().unwrap_err().0;
        assert!(e.contains("DATABASE_READ_URL needs PostgreSQL"), "{e}");
        c.database_url = "postgres://postgres@127.0.0.1/x".into();
        c.jwt_secret = Some(Secret::new("x".repeat(32)));
        assert!(c.validate().is_ok());
        assert!(!c.behind_pooler());
        assert_eq!(c.direct_url(), "postgres://postgres@127.0.0.1/x");
        c.database_direct_url = Some("sqlite://x.db".into());
        let e = c.validate().unwrap_err().0;
        assert!(e.contains("DATABASE_DIRECT_URL needs PostgreSQL"), "{e}");
        c.database_direct_url = Some("postgres://postgres@127.0.0.1:5432/x".into());
        assert!(c.validate().is_ok());
        assert!(c.behind_pooler());
        assert_eq!(c.direct_url(), "postgres://postgres@127.0.0.1:5432/x");
        c.database_read_url = Some(" ".into());
        c.drop_empty_settings();
        assert!(c.database_read_url.is_none());
    }
}
