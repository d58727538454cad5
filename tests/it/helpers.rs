//! Test scaffolding: fresh databases, an in-process server on port 0, a
//! `babysync` child process, and what every test reads back from the
//! database. The HTTP client, tokens and protocol helpers are the load
//! generator's, [`bench::client`], re-exported here.
#![allow(dead_code)]

use std::{
    collections::HashMap,
    io::{BufRead, BufReader},
    net::SocketAddr,
    path::PathBuf,
    process::{Child, Command, Stdio},
    sync::{Arc, Mutex, Once},
    time::{Duration, Instant},
};

use api::{AppState, auth::Authenticator, config::Config};
pub use bench::client::*;
use reqwest::{Method, StatusCode};
use sea_orm::{ConnectionTrait, Database, DatabaseConnection, Statement};
use serde_json::{Value, json};
use tokio::sync::oneshot;
use uuid::Uuid;

pub const TEST_SECRET: &str = "test-secret-that-is-at-least-32-bytes-long!";

/// Which database a test runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Generates one `#[tokio::test]` per backend for each named `async fn(Backend)`.
#[macro_export]
macro_rules! both {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$name($crate::helpers::Backend::Sqlite).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                super::$name($crate::helpers::Backend::Postgres).await
            }
        }
    )*};
}

pub fn init_logging() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
        if std::env::var_os("TEST_LOG").is_some() {
            let _ = tracing_subscriber::fmt()
                .with_env_filter(tracing_subscriber::EnvFilter::new("info"))
                .with_test_writer()
                .try_init();
        }
    });
}

pub fn admin_url() -> String {
    std::env::var("TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// (user, host, port) of the admin URL.
pub fn admin_parts() -> (String, String, String) {
    let url = admin_url();
    let rest = url.split_once("://").map(|x| x.1).unwrap_or(&url);
    let (userinfo, hostpart) = rest.split_once('@').unwrap_or(("postgres", rest));
    let user = userinfo.split(':').next().unwrap_or("postgres").to_owned();
    let hostport = hostpart
        .split(['/', '?'])
        .next()
        .unwrap_or("127.0.0.1:5432");
    let (host, port) = hostport.split_once(':').unwrap_or((hostport, "5432"));
    (user, host.to_owned(), port.to_owned())
}

/// A port free on 127.0.0.1 right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `admin_url` with its database name replaced.
fn pg_url_for(db: &str) -> String {
    let admin = admin_url();
    let (base, query) = match admin.split_once('?') {
        Some((b, q)) => (b.to_owned(), format!("?{q}")),
        None => (admin.clone(), String::new()),
    };
    let scheme_end = base.find("://").map(|i| i + 3).unwrap_or(0);
    let root = match base[scheme_end..].find('/') {
        Some(i) => &base[..scheme_end + i],
        None => &base,
    };
    format!("{root}/{db}{query}")
}

/// A fresh database: a SQLite file in a temporary folder, or a uniquely named
/// PostgreSQL database that is dropped when this value is.
pub struct TestDb {
    pub backend: Backend,
    pub url: String,
    pub dir: tempfile::TempDir,
    pg_name: Option<String>,
}

impl TestDb {
    pub async fn new(backend: Backend) -> Self {
        init_logging();
        let dir = tempfile::tempdir().expect("tempdir");
        match backend {
            Backend::Sqlite => {
                let url = format!(
                    "sqlite://{}?mode=rwc",
                    dir.path().join("babysync.db").display()
                );
                Self {
                    backend,
                    url,
                    dir,
                    pg_name: None,
                }
            }
            Backend::Postgres => {
                let name = format!("bs_test_{}", uuid::Uuid::new_v4().simple());
                let admin = Database::connect(admin_url())
                    .await
                    .expect("PostgreSQL reachable at TEST_DATABASE_URL");
                admin
                    .execute_unprepared(&format!("CREATE DATABASE \"{name}\""))
                    .await
                    .expect("create test database");
                let _ = admin.close().await;
                Self {
                    backend,
                    url: pg_url_for(&name),
                    dir,
                    pg_name: Some(name),
                }
            }
        }
    }

    /// The PostgreSQL database's name (None on SQLite).
    pub fn pg_name(&self) -> Option<&str> {
        self.pg_name.as_deref()
    }

    pub async fn connect(&self) -> DatabaseConnection {
        Database::connect(&self.url)
            .await
            .expect("connect to the test database")
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let Some(name) = self.pg_name.take() else {
            return;
        };
        // Drop on a thread of its own: this may run inside a runtime.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                if let Ok(admin) = Database::connect(admin_url()).await {
                    let _ = admin
                        .execute_unprepared(&format!(
                            "DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"
                        ))
                        .await;
                    let _ = admin.close().await;
                }
            });
        })
        .join();
    }
}

/// A babysync server running in this process on 127.0.0.1:0.
pub struct TestApp {
    pub addr: SocketAddr,
    pub client: Client,
    pub db: api::db::Db,
    pub config: Config,
    pub auth: Arc<Authenticator>,
    stop: Option<oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
    pub test_db: TestDb,
}

impl std::ops::Deref for TestApp {
    type Target = Client;
    fn deref(&self) -> &Client {
        &self.client
    }
}

pub fn test_config(url: &str) -> Config {
    let mut config = Config::defaults();
    config.database_url = url.to_owned();
    config.bind_addr = "127.0.0.1:0".parse().unwrap();
    config.jwt_secret = Some(api::config::Secret::new(TEST_SECRET));
    config.db_connect_timeout_secs = 5;
    config.shutdown_grace_secs = 5;
    config
}

/// A migrated app with the default test configuration.
pub async fn spawn_app(backend: Backend) -> TestApp {
    spawn_app_with(backend, |_| {}).await
}

/// A migrated app, alice's token, and her baby "Ada" (its id made by the server).
pub async fn spawn_with_baby(backend: Backend) -> (TestApp, String, String) {
    let app = spawn_app(backend).await;
    let alice = app.token("alice");
    let baby = baby_id(&app, &alice, "Ada").await;
    (app, alice, baby)
}

/// A migrated app whose configuration `tweak` may change first.
pub async fn spawn_app_with(backend: Backend, tweak: impl FnOnce(&mut Config)) -> TestApp {
    let test_db = TestDb::new(backend).await;
    let mut config = test_config(&test_db.url);
    tweak(&mut config);
    let db = api::db::connect(&config).await.expect("connect");
    api::db::migrate(&config, &db).await.expect("migrate");
    start(test_db, config, db).await
}

/// A migrated app whose database connection records every statement it runs.
pub async fn spawn_recording_app(backend: Backend) -> (TestApp, Arc<Mutex<Vec<Statement>>>) {
    spawn_recording_app_with(backend, |_| {}).await
}

/// [`spawn_recording_app`] whose configuration `tweak` may change first.
pub async fn spawn_recording_app_with(
    backend: Backend,
    tweak: impl FnOnce(&mut Config),
) -> (TestApp, Arc<Mutex<Vec<Statement>>>) {
    let test_db = TestDb::new(backend).await;
    let mut config = test_config(&test_db.url);
    tweak(&mut config);
    let mut db = api::db::connect(&config).await.expect("connect");
    api::db::migrate(&config, &db).await.expect("migrate");
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = seen.clone();
    db.primary_mut()
        .set_metric_callback(move |info| sink.lock().unwrap().push(info.statement.clone()));
    (start(test_db, config, db).await, seen)
}

/// An app on a database that was never migrated.
pub async fn spawn_unmigrated_app(backend: Backend) -> TestApp {
    let test_db = TestDb::new(backend).await;
    let config = test_config(&test_db.url);
    let db = api::db::connect(&config).await.expect("connect");
    start(test_db, config, db).await
}

async fn start(test_db: TestDb, config: Config, db: api::db::Db) -> TestApp {
    let auth = Authenticator::from_config(&config, None).expect("auth config");
    let state = AppState::new(db.clone(), config.clone(), auth);
    let auth = state.auth.clone();
    let listener = tokio::net::TcpListener::bind(config.bind_addr)
        .await
        .unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(api::serve(listener, state, async move {
        let _ = stopped.await;
    }));
    TestApp {
        addr,
        client: Client::new(addr),
        db,
        config,
        auth,
        stop: Some(stop),
        server: Some(server),
        test_db,
    }
}

impl TestApp {
    /// A valid token for `sub` (with `name` = "User <sub>").
    pub fn token(&self, sub: &str) -> String {
        sign(TEST_SECRET, sub, json!({"name": format!("User {sub}")}))
    }

    pub fn backend(&self) -> Backend {
        self.test_db.backend
    }

    /// Runs one SQL query on the app's database and returns its rows as JSON.
    pub async fn query(&self, sql: &str) -> Vec<sea_orm::QueryResult> {
        self.db
            .query_all_raw(Statement::from_string(
                self.db.get_database_backend(),
                sql.to_owned(),
            ))
            .await
            .expect("query")
    }

    /// Every stored record of every kind as (kind, id) -> (baby, version, archived).
    pub async fn stored(&self) -> HashMap<(&'static str, Uuid), (Uuid, i64, bool)> {
        stored_rows(self.db.primary())
            .await
            .into_iter()
            .map(|(k, id, b, v, a)| ((k, id), (b, v, a)))
            .collect()
    }

    /// Stops the server and waits for it.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(server) = self.server.take() {
            let _ = server.await;
        }
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(server) = self.server.take() {
            server.abort();
        }
    }
}

// ----- the `babysync` binary as a child process -----

pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_babysync"))
}

/// A `babysync` command with a clean environment, run in `dir`.
pub fn command(dir: &std::path::Path, env: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(bin());
    cmd.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("RUST_LOG", "info")
        .env("LOG_FORMAT", "json")
        .current_dir(dir);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd
}

/// A running `babysync serve` child. Killed (SIGKILL) when dropped, and by the
/// kernel if this test process dies first.
pub struct ServerProcess {
    pub child: Child,
    pub addr: SocketAddr,
    pub logs: Arc<Mutex<Vec<String>>>,
    pub client: Client,
}

impl ServerProcess {
    /// Starts `babysync serve` with `env` (plus `BIND_ADDR=127.0.0.1:0`) and
    /// waits until it logs the address it listens on.
    pub fn start(dir: &std::path::Path, env: &[(&str, &str)]) -> Self {
        Self::spawn(dir, env).wait_listening()
    }

    /// Starts several at once (all spawned before any is waited for).
    pub fn start_many(n: usize, dir: &std::path::Path, env: &[(&str, &str)]) -> Vec<Self> {
        let spawned: Vec<Spawned> = (0..n).map(|_| Self::spawn(dir, env)).collect();
        spawned.into_iter().map(Spawned::wait_listening).collect()
    }

    /// Spawns from the calling thread (the child dies with it).
    pub fn spawn(dir: &std::path::Path, env: &[(&str, &str)]) -> Spawned {
        let mut cmd = command(dir, env);
        if !env.iter().any(|(k, _)| *k == "BIND_ADDR") {
            cmd.env("BIND_ADDR", "127.0.0.1:0");
        }
        cmd.arg("serve")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        die_with_parent(&mut cmd);
        let mut child = cmd.spawn().expect("spawn babysync");
        let stderr = child.stderr.take().unwrap();
        let logs = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = std::sync::mpsc::channel::<SocketAddr>();
        let sink = logs.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if std::env::var_os("TEST_LOG").is_some() {
                    eprintln!("[server] {line}");
                }
                if let Ok(v) = serde_json::from_str::<Value>(&line)
                    && v["message"] == "babysync listening"
                    && let Some(addr) = v["addr"].as_str().and_then(|a| a.parse().ok())
                {
                    let _ = tx.send(addr);
                }
                sink.lock().unwrap().push(line);
            }
        });
        Spawned {
            child: Some(child),
            logs,
            rx,
        }
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    pub fn signal(&self, sig: i32) {
        unsafe {
            libc::kill(self.pid(), sig);
        }
    }

    /// Waits up to `timeout` for the process to exit.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    pub fn logs(&self) -> Vec<String> {
        self.logs.lock().unwrap().clone()
    }

    /// The process's peak resident memory so far (VmHWM), in MiB.
    pub fn peak_rss_mib(&self) -> f64 {
        proc_status_kib(self.pid(), "VmHWM:") as f64 / 1024.0
    }

    /// The process's resident memory now (VmRSS), in MiB.
    pub fn rss_mib(&self) -> f64 {
        proc_status_kib(self.pid(), "VmRSS:") as f64 / 1024.0
    }
}

/// Sends SIGTERM to `server` and waits (off the runtime) up to `limit` for
/// it to exit.
pub async fn terminate(server: ServerProcess, limit: Duration) -> Option<std::process::ExitStatus> {
    let mut server = server;
    server.signal(libc::SIGTERM);
    tokio::task::spawn_blocking(move || server.wait_exit(limit))
        .await
        .unwrap()
}

/// A `kB` line of `/proc/<pid>/status`.
pub fn proc_status_kib(pid: i32, key: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// A server process that may not be listening yet.
pub struct Spawned {
    child: Option<Child>,
    logs: Arc<Mutex<Vec<String>>>,
    rx: std::sync::mpsc::Receiver<SocketAddr>,
}

impl Spawned {
    pub fn wait_listening(mut self) -> ServerProcess {
        let Ok(addr) = self.rx.recv_timeout(Duration::from_secs(60)) else {
            panic!(
                "server did not start; logs:\n{}",
                self.logs.lock().unwrap().join("\n")
            );
        };
        let child = self.child.take().expect("child");
        ServerProcess {
            child,
            addr,
            logs: self.logs.clone(),
            client: Client::new(addr),
        }
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Makes the child get SIGKILL when the thread that spawned it exits, so no
/// server outlives a test process that crashed.
pub fn die_with_parent(cmd: &mut Command) {
    use std::os::unix::process::CommandExt;
    unsafe {
        cmd.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
}

/// Polls `GET /health/ready` until 200 or `timeout`.
pub async fn wait_ready(client: &Client, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        let r = client.send(Method::GET, "/health/ready", None, None).await;
        if r.status == StatusCode::OK {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

/// The environment that points a child process at `db` with the test secret.
pub fn db_env(db: &TestDb) -> Vec<(&'static str, String)> {
    vec![
        ("DATABASE_URL", db.url.clone()),
        ("JWT_SECRET", TEST_SECRET.to_owned()),
    ]
}

/// `db_env` for a server under load: the per-user rate limit off.
pub fn load_env(db: &TestDb) -> Vec<(&'static str, String)> {
    let mut env = db_env(db);
    env.push(("RATE_LIMIT_PER_SEC", "0".into()));
    env
}

pub fn as_refs<'a>(env: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    env.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

// ----- what is stored -----

/// One stored log entry: (kind, id, baby, version, archived).
pub type Row = (&'static str, Uuid, Uuid, i64, bool);

/// Every stored record of every kind (the registry's), as rows.
pub async fn stored_rows(db: &DatabaseConnection) -> Vec<Row> {
    use sea_orm::{
        TransactionTrait,
        sea_query::{Alias, Asterisk, Query},
    };
    let txn = db.begin().await.unwrap();
    let mut out: Vec<Row> = vec![];
    for kind in api::kinds::KINDS {
        let query = Query::select()
            .column(Asterisk)
            .from(Alias::new(kind.name()))
            .to_owned();
        for r in kind.fetch(&txn, &query).await.unwrap() {
            out.push((kind.name(), r.id, r.baby_id, r.version, r.archived));
        }
    }
    txn.commit().await.unwrap();
    out
}

/// A 200 push answer whose every result is `applied`.
pub fn assert_all_applied(r: &Resp) {
    assert_eq!(r.status, 200, "{}", r.text);
    let results = r.body["results"].as_array().expect("results");
    assert!(
        results.iter().all(|x| x["status"] == "applied"),
        "{}",
        r.text
    );
}
