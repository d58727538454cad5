//! Connecting (with retry and back-off), migrating (under a PostgreSQL
//! advisory lock on one dedicated connection), write transactions, and the
//! read snapshots of pull and the read-only routes (on a read replica when
//! one is configured and has caught up).

use std::{
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use migration::{Migrator, MigratorTrait};
use sea_orm::{
    AccessMode, ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DatabaseTransaction,
    DbBackend, DbErr, ExecResult, IsolationLevel, QueryResult, SqliteTransactionMode, Statement,
    TransactionError, TransactionOptions, TransactionTrait,
};

use crate::config::{Config, redact_url};

/// Arbitrary but fixed: the key of the advisory lock migrations run under.
const MIGRATION_LOCK_KEY: i64 = 0x6261_6279_7379_6e63; // "babysync"

fn options(url: &str, max_connections: u32, pooled: bool) -> ConnectOptions {
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
        .map_sqlx_postgres_opts(move |o| {
            if pooled {
                // Through a transaction-mode pooler (PgBouncer 1.18 has no
                // prepared statements of its own): no start-up parameters
                // it would refuse, and no statement kept prepared past its
                // transaction (the pooler runs `DEALLOCATE ALL` between
                // transactions; see docs/SCALING.md). A statement prepared
                // afresh is planned for its parameters anyway.
                o.statement_cache_capacity(0).extra_float_digits(None)
            } else {
                o.options([("plan_cache_mode", "force_custom_plan")])
            }
        })
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

/// The database as the server uses it: the primary, reached directly or
/// through a transaction-mode pooler, and optionally a read replica.
///
/// Statements run on it directly go to the primary. Through a pooler, each
/// one runs in a transaction of its own: sqlx prepares a
/// statement in one exchange with the server and runs it in the next, and
/// between the two a transaction-mode pooler may hand the connection to
/// another client unless a transaction holds it.
#[derive(Clone, Debug)]
pub struct Db {
    primary: DatabaseConnection,
    /// Through a transaction-mode pooler: every statement but the simple
    /// protocol's (`execute_unprepared`) is prepared first, parameters or
    /// not, so each runs in a transaction.
    pooled: bool,
    replica: Option<Arc<Replica>>,
}

/// A streaming replica for reads, and until when it is left alone after it
/// lagged or failed.
#[derive(Debug)]
struct Replica {
    conn: DatabaseConnection,
    resting_until: Mutex<Option<Instant>>,
}

/// How long a read waits for the replica to replay what the primary had
/// committed when the read began, before reading on the primary instead.
const REPLICA_WAIT: Duration = Duration::from_millis(100);
/// How long the replica is left alone after it lagged past [`REPLICA_WAIT`]
/// or failed (reads go to the primary meanwhile).
const REPLICA_REST: Duration = Duration::from_secs(1);
/// At most this long for a probe of the replica (it may be unreachable).
const REPLICA_PROBE_TIMEOUT: Duration = Duration::from_millis(500);

impl Db {
    /// The primary as it is (pool metrics, closing, migrations on SQLite).
    pub fn primary(&self) -> &DatabaseConnection {
        &self.primary
    }

    /// The primary, to set up (a metrics callback in tests).
    pub fn primary_mut(&mut self) -> &mut DatabaseConnection {
        &mut self.primary
    }

    /// A database of one connection pool, no pooler and no replica (tests).
    pub fn from_connection(primary: DatabaseConnection) -> Self {
        Db {
            primary,
            pooled: false,
            replica: None,
        }
    }

    pub async fn ping(&self) -> Result<(), DbErr> {
        self.primary.ping().await
    }

    pub async fn close(self) -> Result<(), DbErr> {
        if let Some(r) = &self.replica {
            let _ = r.conn.close_by_ref().await;
        }
        self.primary.close().await
    }

    /// Runs `f` on the primary in a transaction of its own.
    async fn on_primary<T, F>(&self, stmt: Statement, f: F) -> Result<T, DbErr>
    where
        F: for<'c> FnOnce(
                &'c DatabaseTransaction,
                Statement,
            )
                -> std::pin::Pin<Box<dyn Future<Output = Result<T, DbErr>> + Send + 'c>>
            + Send,
        T: Send,
    {
        let txn = self.primary.begin().await?;
        let out = f(&txn, stmt).await?;
        txn.commit().await?;
        Ok(out)
    }
}

#[sea_orm::prelude::async_trait::async_trait]
impl ConnectionTrait for Db {
    fn get_database_backend(&self) -> DbBackend {
        self.primary.get_database_backend()
    }

    async fn execute_raw(&self, stmt: Statement) -> Result<ExecResult, DbErr> {
        if self.pooled {
            self.on_primary(stmt, |t, s| Box::pin(t.execute_raw(s)))
                .await
        } else {
            self.primary.execute_raw(stmt).await
        }
    }

    async fn execute_unprepared(&self, sql: &str) -> Result<ExecResult, DbErr> {
        // Sent whole in one exchange (the simple protocol): no transaction needed.
        self.primary.execute_unprepared(sql).await
    }

    async fn query_one_raw(&self, stmt: Statement) -> Result<Option<QueryResult>, DbErr> {
        if self.pooled {
            self.on_primary(stmt, |t, s| Box::pin(t.query_one_raw(s)))
                .await
        } else {
            self.primary.query_one_raw(stmt).await
        }
    }

    async fn query_all_raw(&self, stmt: Statement) -> Result<Vec<QueryResult>, DbErr> {
        if self.pooled {
            self.on_primary(stmt, |t, s| Box::pin(t.query_all_raw(s)))
                .await
        } else {
            self.primary.query_all_raw(stmt).await
        }
    }
}

#[sea_orm::prelude::async_trait::async_trait]
impl TransactionTrait for Db {
    type Transaction = DatabaseTransaction;

    async fn begin(&self) -> Result<DatabaseTransaction, DbErr> {
        self.primary.begin().await
    }

    async fn begin_with_config(
        &self,
        isolation_level: Option<IsolationLevel>,
        access_mode: Option<AccessMode>,
    ) -> Result<DatabaseTransaction, DbErr> {
        self.primary
            .begin_with_config(isolation_level, access_mode)
            .await
    }

    async fn begin_with_options(
        &self,
        options: TransactionOptions,
    ) -> Result<DatabaseTransaction, DbErr> {
        self.primary.begin_with_options(options).await
    }

    async fn transaction<F, T, E>(&self, callback: F) -> Result<T, TransactionError<E>>
    where
        F: for<'c> FnOnce(
                &'c DatabaseTransaction,
            )
                -> std::pin::Pin<Box<dyn Future<Output = Result<T, E>> + Send + 'c>>
            + Send,
        T: Send,
        E: std::fmt::Display + std::fmt::Debug + Send,
    {
        self.primary.transaction(callback).await
    }

    async fn transaction_with_config<F, T, E>(
        &self,
        callback: F,
        isolation_level: Option<IsolationLevel>,
        access_mode: Option<AccessMode>,
    ) -> Result<T, TransactionError<E>>
    where
        F: for<'c> FnOnce(
                &'c DatabaseTransaction,
            )
                -> std::pin::Pin<Box<dyn Future<Output = Result<T, E>> + Send + 'c>>
            + Send,
        T: Send,
        E: std::fmt::Display + std::fmt::Debug + Send,
    {
        self.primary
            .transaction_with_config(callback, isolation_level, access_mode)
            .await
    }
}

/// Connects, retrying with exponential back-off until `DB_CONNECT_TIMEOUT_SECS`;
/// the read replica, when configured, is connected on first use (it may be
/// down: reads then go to the primary).
pub async fn connect(config: &Config) -> Result<Db, String> {
    let pooled = config.behind_pooler();
    let primary = connect_with(
        config,
        &config.database_url,
        config.db_max_connections,
        pooled,
    )
    .await?;
    let replica = match &config.database_read_url {
        Some(url) => {
            // Straight to the replica (not through a transaction-mode
            // pooler): statements stay prepared per connection as on a
            // direct primary. (Without a pooler's `DEALLOCATE ALL` between
            // transactions, a connection that kept none would leave every
            // statement it ran prepared on the server: sqlx names them all.)
            let mut opts = options(url, config.db_max_connections, false);
            opts.connect_lazy(true);
            let conn = Database::connect(opts)
                .await
                .map_err(|e| format!("cannot use DATABASE_READ_URL {}: {e}", redact_url(url)))?;
            Some(Arc::new(Replica {
                conn,
                resting_until: Mutex::new(None),
            }))
        }
        None => None,
    };
    Ok(Db {
        primary,
        pooled,
        replica,
    })
}

async fn connect_with(
    config: &Config,
    url: &str,
    max: u32,
    pooled: bool,
) -> Result<DatabaseConnection, String> {
    let deadline = Instant::now() + Duration::from_secs(config.db_connect_timeout_secs);
    let mut delay = Duration::from_millis(100);
    loop {
        let attempt = async {
            let db = Database::connect(options(url, max, pooled)).await?;
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
pub async fn migrate(config: &Config, db: &Db) -> Result<(), String> {
    let fail = |e: DbErr| format!("migration failed: {e}");
    if db.get_database_backend() != DbBackend::Postgres {
        // SQLite: processes sharing one file take turns through a lock file.
        let _lock = match config.sqlite_path() {
            Some(path) => Some(lock_file(&path.with_extension("migrate.lock")).await?),
            None => None,
        };
        return Migrator::up(db.primary(), None).await.map_err(fail);
    }
    // A session of its own, past any pooler: the lock is held across
    // statements and transactions.
    let conn = connect_with(config, config.direct_url(), 1, false).await?;
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
pub async fn migration_status(db: &Db) -> Result<Vec<(String, bool)>, DbErr> {
    let txn = db.begin().await?;
    let list = Migrator::get_migration_with_status_read_only(&txn).await?;
    txn.commit().await?;
    Ok(list
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
pub async fn migrations_applied(db: &Db) -> Result<bool, DbErr> {
    // In a transaction: it may go through a pooler.
    let txn = db.begin().await?;
    let pending = Migrator::get_pending_migrations_read_only(&txn).await?;
    txn.commit().await?;
    Ok(pending.is_empty())
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
pub async fn begin_write(db: &Db) -> Result<(WriteTurn, DatabaseTransaction), DbErr> {
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

/// Where a read ran, for metrics.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReadOn {
    Primary,
    Replica,
}

impl ReadOn {
    pub fn label(self) -> &'static str {
        match self {
            ReadOn::Primary => "primary",
            ReadOn::Replica => "replica",
        }
    }
}

/// Begins a read-only snapshot for pull and the read-only routes: on the
/// read replica when it has replayed everything the primary had committed
/// when this was called (waiting up to [`REPLICA_WAIT`] for it), else on the
/// primary. So a read holds every commit made on the primary before it
/// began: a pull never goes back on a cursor, a revocation or a
/// `lastMutationId`, and a client sees its own pushes and the changes a
/// poke told it of. (With synchronous replication a commit can show on the
/// replica a moment before the primary shows it; a read on the primary
/// right after one on the replica could then miss it: see docs/SCALING.md.)
///
/// How it knows: the primary's WAL insert position is read first (every
/// commit visible there was written before it); then the replica's replay
/// position, polled until it is at least that; then the snapshot is taken
/// on the replica. Replay only moves forward, so a snapshot taken after the
/// replay position passed a commit sees it. The snapshot's first statement
/// checks that it is on the same server as the poll (the URL may lead to
/// several).
///
/// Where it was begun is counted for `route` (`babysync_reads_total`).
pub async fn begin_read(db: &Db, route: &'static str) -> Result<DatabaseTransaction, DbErr> {
    if let Some(replica) = &db.replica
        && !replica.resting()
    {
        let target = primary_written(db).await?;
        match read_on_replica(replica, target).await {
            Ok(Some(txn)) => {
                crate::metrics::read_on(route, ReadOn::Replica);
                return Ok(txn);
            }
            Ok(None) => replica.rest(),
            Err(e) => {
                tracing::warn!(error = %e, "read replica failed; reading on the primary for now");
                replica.rest();
            }
        }
    }
    let txn = begin_snapshot(&db.primary).await?;
    crate::metrics::read_on(route, ReadOn::Primary);
    Ok(txn)
}

/// A position in the WAL, from its text form `X/Y`.
fn parse_lsn(text: &str) -> Option<u64> {
    let (hi, lo) = text.split_once('/')?;
    Some((u64::from_str_radix(hi, 16).ok()? << 32) | u64::from_str_radix(lo, 16).ok()?)
}

/// [`parse_lsn`], for a value the server sent.
fn lsn(text: &str) -> Result<u64, DbErr> {
    parse_lsn(text).ok_or_else(|| DbErr::Custom(format!("bad LSN {text:?}")))
}

/// The row a one-row probe returns.
fn the_row(row: Option<QueryResult>) -> Result<QueryResult, DbErr> {
    row.ok_or_else(|| DbErr::Custom("no row".into()))
}

/// `f`, within [`REPLICA_PROBE_TIMEOUT`] (the replica may be unreachable).
async fn in_time<T>(f: impl Future<Output = Result<T, DbErr>>) -> Result<T, DbErr> {
    tokio::time::timeout(REPLICA_PROBE_TIMEOUT, f)
        .await
        .map_err(|_| DbErr::Custom("the read replica did not answer in time".into()))?
}

/// Which server a statement ran on (a replica's address and start time).
const SERVER_SQL: &str = "pg_postmaster_start_time()::text || ' ' || \
     coalesce(host(inet_server_addr()), 'local') || ':' || coalesce(inet_server_port()::text, '')";

impl Replica {
    fn resting(&self) -> bool {
        let mut until = self.resting_until.lock().unwrap_or_else(|e| e.into_inner());
        match *until {
            Some(t) if Instant::now() < t => true,
            Some(_) => {
                *until = None;
                false
            }
            None => false,
        }
    }

    fn rest(&self) {
        *self.resting_until.lock().unwrap_or_else(|e| e.into_inner()) =
            Some(Instant::now() + REPLICA_REST);
    }

    /// The replica's replay position (`None`: it is not in recovery, so it
    /// has everything) and which server it is.
    async fn position(&self) -> Result<(Option<u64>, String), DbErr> {
        let sql = format!(
            "SELECT CASE WHEN pg_is_in_recovery() THEN coalesce(pg_last_wal_replay_lsn()::text, '0/0') END AS lsn, {SERVER_SQL} AS server"
        );
        let row = the_row(
            self.conn
                .query_one_raw(Statement::from_string(DbBackend::Postgres, sql))
                .await?,
        )?;
        let replayed: Option<String> = row.try_get("", "lsn")?;
        Ok((
            replayed.as_deref().map(lsn).transpose()?,
            row.try_get("", "server")?,
        ))
    }
}

/// The primary's WAL insert position: every commit visible there was
/// written before it (whatever `synchronous_commit` says: an asynchronous
/// commit is visible before it is flushed).
async fn primary_written(db: &Db) -> Result<u64, DbErr> {
    let row = the_row(
        db.query_one_raw(Statement::from_string(
            DbBackend::Postgres,
            "SELECT pg_current_wal_insert_lsn()::text AS lsn",
        ))
        .await?,
    )?;
    lsn(&row.try_get::<String>("", "lsn")?)
}

/// A snapshot on the replica that holds everything up to `target`, or
/// `None` if the replica does not get there in time.
async fn read_on_replica(
    replica: &Replica,
    target: u64,
) -> Result<Option<DatabaseTransaction>, DbErr> {
    let deadline = Instant::now() + REPLICA_WAIT;
    let server = loop {
        let (replayed, server) = in_time(replica.position()).await?;
        if replayed.is_none_or(|l| l >= target) {
            break server;
        }
        if Instant::now() >= deadline {
            return Ok(None);
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    };
    let txn = in_time(begin_snapshot(&replica.conn)).await?;
    // The snapshot is taken by this first statement.
    let row = the_row(
        in_time(txn.query_one_raw(Statement::from_string(
            DbBackend::Postgres,
            format!("SELECT {SERVER_SQL} AS server"),
        )))
        .await?,
    )?;
    let here: String = row.try_get("", "server")?;
    if here != server {
        txn.rollback().await?;
        return Ok(None);
    }
    Ok(Some(txn))
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
    fn lsn_texts_parse_in_order() {
        use super::parse_lsn;
        assert_eq!(parse_lsn("0/0"), Some(0));
        assert_eq!(parse_lsn("16/B374D848"), Some((0x16 << 32) | 0xB374_D848));
        assert!(parse_lsn("1/0") > parse_lsn("0/FFFFFFFF"));
        for bad in ["", "0", "x/1", "1/", "/1"] {
            assert_eq!(parse_lsn(bad), None, "{bad}");
        }
    }

    #[test]
    fn every_tcp_socket_gets_nodelay() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let stream = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        assert!(!stream.nodelay().unwrap(), "a new socket has Nagle on");
        super::tcp_nodelay_everywhere();
        assert!(stream.nodelay().unwrap());
    }
}
