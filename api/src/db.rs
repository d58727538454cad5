//! Connecting (with retry and back-off), migrating (under a PostgreSQL
//! advisory lock on one dedicated connection) and write transactions.

use std::time::{Duration, Instant};

use migration::{Migrator, MigratorTrait};
use sea_orm::{
    AccessMode, ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DatabaseTransaction,
    DbBackend, DbErr, IsolationLevel, SqliteTransactionMode, Statement, TransactionOptions,
    TransactionTrait,
};

use crate::config::{Config, redact_url};

/// Arbitrary but fixed: the key of the advisory lock migrations run under.
const MIGRATION_LOCK_KEY: i64 = 0x6261_6279_7379_6e63; // "babysync"

fn options(url: &str, max_connections: u32) -> ConnectOptions {
    let mut opts = ConnectOptions::new(url.to_owned());
    opts.max_connections(max_connections)
        .min_connections(0)
        .connect_timeout(Duration::from_secs(5))
        .acquire_timeout(Duration::from_secs(5))
        .idle_timeout(Duration::from_secs(300))
        .sqlx_logging(false)
        // Plan every statement for its parameters and the table as it is now.
        // sqlx keeps prepared statements per connection, and a generic plan
        // made while a table was small (a sequential scan) would otherwise be
        // reused after it has grown, until the next ANALYZE.
        .map_sqlx_postgres_opts(|o| o.options([("plan_cache_mode", "force_custom_plan")]))
        .map_sqlx_postgres_pool_opts(|o| {
            // Each new pooled connection (the hook sea-orm offers runs once).
            o.after_connect(|_, _| {
                Box::pin(async {
                    tcp_nodelay_everywhere();
                    Ok(())
                })
            })
        })
        .map_sqlx_sqlite_opts(|o| {
            o.journal_mode(sea_orm::sqlx::sqlite::SqliteJournalMode::Wal)
                .busy_timeout(Duration::from_secs(10))
                .foreign_keys(true)
                // 512 KiB of page cache per connection instead of 2 MiB: with
                // a pool of 16 that is the difference between 8 and 32 MiB;
                // the OS page cache still holds the file.
                .pragma("cache_size", "-512")
                // Prepared statements kept per connection (sqlx's default is
                // 100). On SQLite they live in the server's memory, and a
                // statement with many rows or ids takes a few hundred KiB:
                // the server's peak after a push benchmark and the seeding of
                // 100,000 entries in pushes of 1,000 was 75 MiB with 100, 50
                // with 32, 37 with 16 (push as fast; 8 made it slower), see
                // docs/PERFORMANCE.md.
                .statement_cache_capacity(16)
        });
    opts
}

/// Sets `TCP_NODELAY` on every TCP socket of this process (run after each
/// new database connection).
///
/// sqlx does not set it on its PostgreSQL sockets. Over TLS a message larger
/// than one TLS record (16 KiB, such as a push's write statement with its
/// rows) left the socket in two writes; Nagle's algorithm held the second
/// until PostgreSQL acknowledged the first, and PostgreSQL, waiting for the
/// rest of the message, delayed its acknowledgement: 40 ms per such
/// statement (a push of 50 took 48 ms instead of 6). Setting it on a socket
/// that has it, or on a listening socket, changes nothing. Linux only (it
/// reads `/proc/self/fd`); elsewhere it does nothing.
pub fn tcp_nodelay_everywhere() {
    let Ok(dir) = std::fs::read_dir("/proc/self/fd") else {
        return;
    };
    for entry in dir.flatten() {
        let Some(fd) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<i32>().ok())
        else {
            continue;
        };
        // SAFETY: getsockopt/getsockname/setsockopt only read or write the
        // local buffers given, with their true sizes; a descriptor that is
        // not a socket (or was closed meanwhile) makes them fail, harmlessly.
        unsafe {
            let mut kind: libc::c_int = 0;
            let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
            if libc::getsockopt(
                fd,
                libc::SOL_SOCKET,
                libc::SO_TYPE,
                (&mut kind as *mut libc::c_int).cast(),
                &mut len,
            ) != 0
                || kind != libc::SOCK_STREAM
            {
                continue;
            }
            let mut addr: libc::sockaddr_storage = std::mem::zeroed();
            let mut alen = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
            if libc::getsockname(
                fd,
                (&mut addr as *mut libc::sockaddr_storage).cast(),
                &mut alen,
            ) != 0
                || !matches!(i32::from(addr.ss_family), libc::AF_INET | libc::AF_INET6)
            {
                continue;
            }
            let one: libc::c_int = 1;
            libc::setsockopt(
                fd,
                libc::IPPROTO_TCP,
                libc::TCP_NODELAY,
                (&one as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            );
        }
    }
}

/// Connects, retrying with exponential back-off until `DB_CONNECT_TIMEOUT_SECS`.
pub async fn connect(config: &Config) -> Result<DatabaseConnection, String> {
    connect_with(config, &config.database_url, config.db_max_connections).await
}

async fn connect_with(config: &Config, url: &str, max: u32) -> Result<DatabaseConnection, String> {
    let deadline = Instant::now() + Duration::from_secs(config.db_connect_timeout_secs);
    let mut delay = Duration::from_millis(100);
    loop {
        let attempt = async {
            let db = Database::connect(options(url, max)).await?;
            db.ping().await?;
            Ok::<_, DbErr>(db)
        };
        match attempt.await {
            Ok(db) => return Ok(db),
            Err(e) if Instant::now() + delay < deadline && crate::error::is_unavailable(&e) => {
                tracing::warn!(error = %e, retry_in_ms = delay.as_millis() as u64, "database not reachable yet");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(2));
            }
            Err(e) => {
                return Err(format!(
                    "cannot connect to the database at {}: {e}",
                    redact_url(url)
                ));
            }
        }
    }
}

/// Applies pending migrations. On PostgreSQL this holds an advisory lock on a
/// dedicated connection, so replicas starting together apply each migration once.
pub async fn migrate(config: &Config, db: &DatabaseConnection) -> Result<(), String> {
    let fail = |e: DbErr| format!("migration failed: {e}");
    if db.get_database_backend() != DbBackend::Postgres {
        // SQLite: processes sharing one file take turns through a lock file.
        let _lock = match config.sqlite_path() {
            Some(path) => Some(lock_file(&path.with_extension("migrate.lock")).await?),
            None => None,
        };
        return Migrator::up(db, None).await.map_err(fail);
    }
    let conn = connect_with(config, &config.database_url, 1).await?;
    let lock = |sql: &str| {
        Statement::from_sql_and_values(DbBackend::Postgres, sql, [MIGRATION_LOCK_KEY.into()])
    };
    conn.execute_raw(lock("SELECT pg_advisory_lock($1)"))
        .await
        .map_err(fail)?;
    let result = Migrator::up(&conn, None).await.map_err(fail);
    let unlock = conn
        .execute_raw(lock("SELECT pg_advisory_unlock($1)"))
        .await;
    let _ = conn.close().await;
    result?;
    unlock.map_err(fail)?;
    Ok(())
}

/// Opens and exclusively locks `path`; the lock goes with the returned file.
async fn lock_file(path: &std::path::Path) -> Result<std::fs::File, String> {
    let path = path.to_owned();
    tokio::task::spawn_blocking(move || {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| format!("migration lock {}: {e}", path.display()))?;
        file.lock()
            .map_err(|e| format!("migration lock {}: {e}", path.display()))?;
        Ok(file)
    })
    .await
    .map_err(|e| format!("migration lock: {e}"))?
}

/// Names and states of every migration, for `migrate status`.
pub async fn migration_status(db: &DatabaseConnection) -> Result<Vec<(String, bool)>, DbErr> {
    Ok(Migrator::get_migration_with_status_read_only(db)
        .await?
        .into_iter()
        .map(|m| {
            (
                m.name().to_owned(),
                m.status() == sea_orm_migration::MigrationStatus::Applied,
            )
        })
        .collect())
}

/// Are all migrations applied? (for `/health/ready`)
pub async fn migrations_applied(db: &DatabaseConnection) -> Result<bool, DbErr> {
    Ok(Migrator::get_pending_migrations_read_only(db)
        .await?
        .is_empty())
}

/// This process's turn to write to SQLite (see [`begin_write`]): keep it
/// until the transaction has ended (declare it first: `let (_turn, txn)`, so
/// that it is dropped after the transaction).
pub type WriteTurn = Option<tokio::sync::OwnedMutexGuard<()>>;

/// How long a writer waits for its turn on SQLite, as long as SQLite's own
/// busy timeout.
const WRITE_TURN_WAIT: Duration = Duration::from_secs(10);

/// Begins a transaction that will write. On SQLite it takes the write lock at
/// once (`BEGIN IMMEDIATE`), so two writers queue instead of failing on
/// upgrade; and the writers of this process first queue here, in order,
/// for their turn. SQLite takes one writer at a time and makes the others
/// poll with growing sleeps (its busy handler: 1, 2, 5, … 100 ms), so the
/// lock sat idle while writers slept: at full push rate, p99 536 ms and a
/// third of PostgreSQL's throughput. Another process on the same file still
/// waits in SQLite's busy handler.
pub async fn begin_write(
    db: &DatabaseConnection,
) -> Result<(WriteTurn, DatabaseTransaction), DbErr> {
    static TURN: std::sync::LazyLock<std::sync::Arc<tokio::sync::Mutex<()>>> =
        std::sync::LazyLock::new(Default::default);
    let turn = if db.get_database_backend() == DbBackend::Sqlite {
        let wait = tokio::time::timeout(WRITE_TURN_WAIT, TURN.clone().lock_owned());
        Some(
            wait.await
                .map_err(|_| DbErr::ConnectionAcquire(sea_orm::error::ConnAcquireErr::Timeout))?,
        )
    } else {
        None
    };
    let txn = db
        .begin_with_options(TransactionOptions {
            sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
            ..Default::default()
        })
        .await?;
    Ok((turn, txn))
}

/// Begins a read-only transaction that sees one snapshot throughout
/// (PostgreSQL `REPEATABLE READ`; a SQLite read transaction already does).
pub async fn begin_snapshot(db: &DatabaseConnection) -> Result<DatabaseTransaction, DbErr> {
    if db.get_database_backend() != DbBackend::Postgres {
        return db.begin().await;
    }
    db.begin_with_options(TransactionOptions {
        isolation_level: Some(IsolationLevel::RepeatableRead),
        access_mode: Some(AccessMode::ReadOnly),
        ..Default::default()
    })
    .await
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_tcp_socket_gets_nodelay() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let stream = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        assert!(!stream.nodelay().unwrap(), "a new socket has Nagle on");
        super::tcp_nodelay_everywhere();
        assert!(stream.nodelay().unwrap());
    }
}
