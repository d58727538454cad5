//! The `babysync` binary as operators run it: subcommands, configuration
//! errors, concurrent start-up and graceful shutdown.

use std::{process::Stdio, time::Duration};

use migration::MigratorTrait;
use reqwest::Method;
use sea_orm::{ConnectionTrait, Statement};
use serde_json::json;

use crate::{both, helpers::*};

fn migration_names() -> Vec<String> {
    migration::Migrator::migrations()
        .iter()
        .map(|m| m.name().to_owned())
        .collect()
}

fn run(dir: &std::path::Path, env: &[(&str, &str)], args: &[&str]) -> (bool, String, String) {
    let out = command(dir, env)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run babysync");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The environment for `backend` in `db`: SQLite runs on the defaults
/// (embedded file in the working directory, generated secret).
fn default_env(db: &TestDb) -> Vec<(&'static str, String)> {
    match db.backend {
        Backend::Sqlite => vec![],
        Backend::Postgres => db_env(db),
    }
}

async fn token_command_is_accepted(backend: Backend) {
    let db = TestDb::new(backend).await;
    let env = default_env(&db);
    let server = ServerProcess::start(db.dir.path(), &as_refs(&env));
    assert!(wait_ready(&server.client, Duration::from_secs(10)).await);
    if backend == Backend::Sqlite {
        use std::os::unix::fs::PermissionsExt;
        let secret = db.dir.path().join("babysync.secret");
        let mode = std::fs::metadata(&secret)
            .expect("secret file beside the database")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        assert!(
            server.logs().iter().any(|l| l.contains("local use")),
            "warns about the local secret"
        );
    }
    let (ok, stdout, stderr) = run(
        db.dir.path(),
        &as_refs(&env),
        &["token", "--sub", "alice", "--name", "Alice"],
    );
    assert!(ok, "{stderr}");
    let token = stdout.trim();
    let r = server.client.get("/api/me", token).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body, json!({"userId": "alice", "displayName": "Alice"}));
    // A short ttl expires (beyond the leeway, so only check the claim).
    let (ok, stdout, _) = run(
        db.dir.path(),
        &as_refs(&env),
        &["token", "--sub", "bob", "--ttl", "90s"],
    );
    assert!(ok);
    let payload = stdout.trim().split('.').nth(1).unwrap().to_owned();
    use base64::Engine;
    let claims: serde_json::Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap(),
    )
    .unwrap();
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        90
    );
}

async fn migrate_status_lists_every_migration(backend: Backend) {
    let db = TestDb::new(backend).await;
    let env = db_env(&db);
    let env = as_refs(&env);
    let names = migration_names();
    assert!(names.len() >= 5);

    let (ok, stdout, stderr) = run(db.dir.path(), &env, &["migrate", "status"]);
    assert!(ok, "{stderr}");
    for name in &names {
        assert!(
            stdout.contains(&format!("pending\t{name}")),
            "{name} pending in:\n{stdout}"
        );
    }
    let (ok, _, stderr) = run(db.dir.path(), &env, &["migrate", "up"]);
    assert!(ok, "{stderr}");
    let (ok, stdout, _) = run(db.dir.path(), &env, &["migrate", "status"]);
    assert!(ok);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), names.len(), "{stdout}");
    for (line, name) in lines.iter().zip(&names) {
        assert_eq!(*line, format!("applied\t{name}"));
    }
    // `up` again is a no-op.
    let (ok, _, _) = run(db.dir.path(), &env, &["migrate", "up"]);
    assert!(ok);
}

async fn serve_without_migrate_on_start_waits_for_migrate_up(backend: Backend) {
    let db = TestDb::new(backend).await;
    let mut env = db_env(&db);
    env.push(("MIGRATE_ON_START", "false".into()));
    let server = ServerProcess::start(db.dir.path(), &as_refs(&env));
    let r = server
        .client
        .send(Method::GET, "/health/ready", None, None)
        .await;
    assert_eq!(r.status, 503, "{}", r.text);
    let (ok, _, stderr) = run(db.dir.path(), &as_refs(&env), &["migrate", "up"]);
    assert!(ok, "{stderr}");
    assert!(wait_ready(&server.client, Duration::from_secs(5)).await);
}

#[track_caller]
fn assert_fails_with(result: (bool, String, String), needle: &str) {
    let (ok, _, stderr) = result;
    assert!(!ok, "should fail");
    let error_lines: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("error: "))
        .collect();
    assert_eq!(error_lines.len(), 1, "one clear line:\n{stderr}");
    assert!(error_lines[0].contains(needle), "{needle:?} in {stderr}");
    let mentions = stderr.lines().filter(|l| l.contains(needle)).count();
    assert_eq!(mentions, 1, "the problem is said once:\n{stderr}");
}

async fn secret_warnings_come_once(backend: Backend) {
    let db = TestDb::new(backend).await;
    let dir = db.dir.path();
    if backend == Backend::Sqlite {
        // No JWT_* setting: the first `token` makes the local secret and
        // says so; later ones use it quietly.
        let (ok, stdout, stderr) = run(dir, &[], &["token", "--sub", "alice"]);
        assert!(ok && !stdout.trim().is_empty(), "{stderr}");
        let warnings = stderr.lines().filter(|l| l.contains("local use")).count();
        assert_eq!(warnings, 1, "{stderr}");
        for _ in 0..2 {
            let (ok, _, stderr) = run(dir, &[], &["token", "--sub", "alice"]);
            assert!(ok, "{stderr}");
            assert!(!stderr.contains("local use"), "warned again: {stderr}");
        }
    }
    let url = db.url.as_str();
    // A secret on the command line: a warning; from the environment: none.
    let (ok, _, stderr) = run(
        dir,
        &[("DATABASE_URL", url)],
        &["--jwt-secret", TEST_SECRET, "token", "--sub", "alice"],
    );
    assert!(ok, "{stderr}");
    assert!(stderr.contains("process list"), "{stderr}");
    assert!(
        !stderr.contains(TEST_SECRET),
        "the warning does not repeat it"
    );
    let (ok, _, stderr) = run(
        dir,
        &[("DATABASE_URL", url), ("JWT_SECRET", TEST_SECRET)],
        &["token", "--sub", "alice"],
    );
    assert!(ok && !stderr.contains("process list"), "{stderr}");
    let (ok, stdout, _) = run(dir, &[], &["--help"]);
    assert!(ok && stdout.contains("process list"), "{stdout}");
}

async fn a_taken_port_is_found_before_migrating(backend: Backend) {
    let db = TestDb::new(backend).await;
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let mut env = db_env(&db);
    env.push(("BIND_ADDR", taken.local_addr().unwrap().to_string()));
    assert_fails_with(
        run(db.dir.path(), &as_refs(&env), &["serve"]),
        "cannot listen on",
    );
    // Nothing was migrated before the port was found taken.
    let (ok, stdout, stderr) = run(db.dir.path(), &as_refs(&env), &["migrate", "status"]);
    assert!(ok, "{stderr}");
    assert!(
        !stdout.is_empty() && stdout.lines().all(|l| l.starts_with("pending\t")),
        "{stdout}"
    );
}

async fn bad_database_url_exits_nonzero(backend: Backend) {
    let db = TestDb::new(backend).await;
    let url = match backend {
        Backend::Sqlite => "sqlite:///nonexistent-dir/deeper/babysync.db?mode=rwc".to_owned(),
        Backend::Postgres => "postgres://postgres@127.0.0.1:1/nothing".to_owned(),
    };
    let env = [
        ("DATABASE_URL", url.as_str()),
        ("JWT_SECRET", TEST_SECRET),
        ("DB_CONNECT_TIMEOUT_SECS", "1"),
        // The port is bound first: any free one.
        ("BIND_ADDR", "127.0.0.1:0"),
    ];
    let started = std::time::Instant::now();
    assert_fails_with(
        run(db.dir.path(), &env, &["serve"]),
        "cannot connect to the database",
    );
    assert!(started.elapsed() < Duration::from_secs(30));
    assert_fails_with(
        run(db.dir.path(), &env, &["migrate", "status"]),
        "cannot connect to the database",
    );
}

async fn bad_settings_exit_nonzero(backend: Backend) {
    let db = TestDb::new(backend).await;
    let dir = db.dir.path();
    let url = db.url.as_str();
    assert_fails_with(
        run(dir, &[("DATABASE_URL", "mysql://x/y")], &["serve"]),
        "DATABASE_URL",
    );
    assert_fails_with(
        run(
            dir,
            &[("DATABASE_URL", url), ("JWT_SECRET", "too-short")],
            &["serve"],
        ),
        "at least 32 bytes",
    );
    assert_fails_with(
        run(
            dir,
            &[
                ("DATABASE_URL", url),
                ("JWT_SECRET", TEST_SECRET),
                ("JWT_JWKS_URL", "http://127.0.0.1:1/k"),
            ],
            &["serve"],
        ),
        "only one of",
    );
    assert_fails_with(
        run(
            dir,
            &[
                ("DATABASE_URL", url),
                ("JWT_PUBLIC_KEY_FILE", "/nonexistent/key.pem"),
            ],
            &["serve"],
        ),
        "JWT_PUBLIC_KEY_FILE",
    );
    if backend == Backend::Postgres {
        assert_fails_with(
            run(dir, &[("DATABASE_URL", url)], &["serve"]),
            "PostgreSQL needs",
        );
    }
    let (ok, _, stderr) = run(
        dir,
        &[("DATABASE_URL", url), ("BIND_ADDR", "not-an-address")],
        &["serve"],
    );
    assert!(!ok);
    assert!(
        stderr.contains("BIND_ADDR") || stderr.contains("bind-addr"),
        "{stderr}"
    );
    // Flags work like the variables.
    let (ok, _, stderr) = run(dir, &[], &["--database-url", "mysql://x", "serve"]);
    assert!(!ok && stderr.contains("DATABASE_URL"), "{stderr}");
    let (ok, stdout, _) = run(dir, &[], &["--version"]);
    assert!(ok && stdout.starts_with("babysync "), "{stdout}");
}

async fn concurrent_starts_apply_each_migration_once(backend: Backend) {
    let db = TestDb::new(backend).await;
    let env = db_env(&db);
    let env = as_refs(&env);
    let servers = ServerProcess::start_many(3, db.dir.path(), &env);
    for s in &servers {
        assert!(
            wait_ready(&s.client, Duration::from_secs(20)).await,
            "every replica becomes ready"
        );
    }
    let conn = db.connect().await;
    let rows = conn
        .query_all_raw(Statement::from_string(
            conn.get_database_backend(),
            "SELECT version FROM seaql_migrations ORDER BY version",
        ))
        .await
        .unwrap();
    let applied: Vec<String> = rows
        .iter()
        .map(|r| r.try_get("", "version").unwrap())
        .collect();
    assert_eq!(
        applied,
        migration_names(),
        "each migration recorded exactly once"
    );
    // All three serve the same data.
    let token = sign(TEST_SECRET, "alice", json!({"name": "Alice"}));
    for s in &servers {
        assert_eq!(s.client.get("/api/me", &token).await.status, 200);
    }
}

async fn sigterm_lets_in_flight_requests_finish(backend: Backend) {
    let db = TestDb::new(backend).await;
    let env = db_env(&db);
    let mut server = ServerProcess::start(db.dir.path(), &as_refs(&env));
    assert!(wait_ready(&server.client, Duration::from_secs(10)).await);

    // Hold the users table so that first-sight user inserts wait in flight.
    let blocker = db.connect().await;
    let (_turn, txn) = api::db::begin_write(&api::db::Db::from_connection(blocker.clone()))
        .await
        .unwrap();
    if backend == Backend::Postgres {
        txn.execute_unprepared("LOCK TABLE users IN EXCLUSIVE MODE")
            .await
            .unwrap();
    } else {
        txn.execute_unprepared("INSERT INTO users (id, created_at, updated_at) VALUES ('blocker', '2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z')")
            .await
            .unwrap();
    }
    let in_flight: Vec<_> = (0..5)
        .map(|i| {
            let client = server.client.clone();
            let token = sign(TEST_SECRET, &format!("user-{i}"), json!({}));
            tokio::spawn(async move { client.get("/api/me", &token).await })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        in_flight.iter().all(|h| !h.is_finished()),
        "requests are blocked in flight"
    );

    server.signal(libc::SIGTERM);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(server.child.try_wait().unwrap().is_none(), "still draining");
    assert!(
        std::net::TcpStream::connect_timeout(&server.addr, Duration::from_secs(1)).is_err(),
        "no new connections once stopping"
    );

    txn.commit().await.unwrap();
    for h in in_flight {
        let r = h.await.unwrap();
        assert_eq!(r.status, 200, "in-flight request answered: {}", r.text);
    }
    let status = server
        .wait_exit(Duration::from_secs(10))
        .expect("exits after draining");
    assert!(status.success(), "exit 0, got {status:?}");
    // What was answered is committed.
    let rows = blocker
        .query_all_raw(Statement::from_string(
            blocker.get_database_backend(),
            "SELECT id FROM users WHERE id LIKE 'user-%'",
        ))
        .await
        .unwrap();
    assert_eq!(rows.len(), 5);
    assert!(server.logs().iter().any(|l| l.contains("draining")));
}

both!(
    token_command_is_accepted,
    migrate_status_lists_every_migration,
    serve_without_migrate_on_start_waits_for_migrate_up,
    bad_database_url_exits_nonzero,
    bad_settings_exit_nonzero,
    a_taken_port_is_found_before_migrating,
    secret_warnings_come_once,
    concurrent_starts_apply_each_migration_once,
    sigterm_lets_in_flight_requests_finish,
);
