//! The deployment files: `docker-compose.yml` parses as a valid Compose file
//! with what operators rely on, the Dockerfile says what the image promises,
//! and the binary boots to ready with exactly the environment they give it,
//! answering the health check command they name.
//!
//! There is no Docker engine here, so the container is simulated: the same
//! binary, the same variables. Two things are mapped into the sandbox:
//! `BIND_ADDR` becomes a free port on 127.0.0.1 (tests never listen on
//! 0.0.0.0), and the image's `/data` becomes a temporary folder.

use std::{collections::HashMap, path::Path, process::Stdio, time::Duration};

use serde_yaml::Value as Yaml;

use crate::{both, helpers::*};

fn repo_file(name: &str) -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(name)).unwrap()
}

/// Compose variable interpolation: `$$`, `$VAR`, `${VAR}`, `${VAR:-default}`,
/// `${VAR-default}`, `${VAR:?error}`, `${VAR?error}`.
fn interpolate(s: &str, vars: &HashMap<&str, String>) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        rest = &rest[i + 1..];
        if let Some(r) = rest.strip_prefix('$') {
            out.push('$');
            rest = r;
        } else if let Some(r) = rest.strip_prefix('{') {
            let end = r.find('}').ok_or("unclosed ${")?;
            let expr = &r[..end];
            rest = &r[end + 1..];
            let name_end = expr
                .find(|c: char| !(c.is_alphanumeric() || c == '_'))
                .unwrap_or(expr.len());
            let (name, op) = expr.split_at(name_end);
            let value = vars.get(name).filter(|v| !v.is_empty());
            let set = vars.get(name);
            out.push_str(&match op {
                "" => set.cloned().unwrap_or_default(),
                _ if op.starts_with(":-") => value.cloned().unwrap_or_else(|| op[2..].to_owned()),
                _ if op.starts_with('-') => set.cloned().unwrap_or_else(|| op[1..].to_owned()),
                _ if op.starts_with(":?") => value.cloned().ok_or_else(|| op[2..].to_owned())?,
                _ if op.starts_with('?') => set.cloned().ok_or_else(|| op[1..].to_owned())?,
                _ => return Err(format!("unsupported interpolation ${{{expr}}}")),
            });
        } else {
            let end = rest
                .find(|c: char| !(c.is_alphanumeric() || c == '_'))
                .unwrap_or(rest.len());
            out.push_str(vars.get(&rest[..end]).map(String::as_str).unwrap_or(""));
            rest = &rest[end..];
        }
    }
    out.push_str(rest);
    Ok(out)
}

fn compose() -> Yaml {
    let text = repo_file("docker-compose.yml");
    // Compose interpolates before it reads the file: so does this check,
    // with what an operator must set.
    let vars = HashMap::from([
        ("JWT_SECRET", "x".repeat(32)),
        ("POSTGRES_PASSWORD", "secret".to_owned()),
    ]);
    let interpolated = interpolate(&text, &vars).expect("the file interpolates");
    let parsed: compose_spec::Compose =
        serde_yaml::from_str(&interpolated).expect("a valid Compose file");
    parsed
        .validate_all()
        .expect("every volume, network and service it names is defined");
    serde_yaml::from_str(&text).unwrap()
}

fn strings(v: &Yaml) -> Vec<String> {
    v.as_sequence()
        .unwrap()
        .iter()
        .map(|x| x.as_str().unwrap().to_owned())
        .collect()
}

/// `ENV` and `HEALTHCHECK … CMD [...]` of the Dockerfile's final stage.
fn dockerfile() -> (String, HashMap<String, String>, Vec<String>) {
    let text = repo_file("Dockerfile");
    let joined = text.replace("\\\n", " ");
    let last_stage = joined.rsplit("\nFROM ").next().unwrap().to_owned();
    let mut env = HashMap::new();
    let mut health = vec![];
    for line in last_stage.lines().map(str::trim) {
        if let Some(rest) = line.strip_prefix("ENV ") {
            for pair in rest.split_whitespace() {
                let (k, v) = pair.split_once('=').unwrap();
                env.insert(k.to_owned(), v.to_owned());
            }
        }
        if line.starts_with("HEALTHCHECK ") {
            let json = &line[line.find("CMD [").unwrap() + 4..];
            health = serde_json::from_str(json).unwrap();
        }
    }
    (text, env, health)
}

#[test]
fn deployment_files_say_what_operators_rely_on() {
    let c = compose();
    let db = &c["services"]["db"];
    assert!(db["image"].as_str().unwrap().starts_with("postgres:16"));
    let db_health = strings(&db["healthcheck"]["test"]).join(" ");
    assert!(db_health.contains("pg_isready"), "{db_health}");
    let volume = db["volumes"][0].as_str().unwrap();
    let named = volume.split(':').next().unwrap();
    assert!(
        c["volumes"].as_mapping().unwrap().contains_key(named),
        "a named volume"
    );
    let api = &c["services"]["api"];
    assert!(
        api["build"].is_string() || api["build"].is_mapping(),
        "built from the Dockerfile"
    );
    assert_eq!(api["depends_on"]["db"]["condition"], "service_healthy");
    assert_eq!(api["restart"], "unless-stopped");
    // Published on this machine only unless BABYSYNC_PUBLISH says otherwise.
    let ports = strings(&api["ports"]);
    assert_eq!(ports.len(), 1, "{ports:?}");
    let none = HashMap::new();
    assert_eq!(
        interpolate(&ports[0], &none).unwrap(),
        "127.0.0.1:8080:8080"
    );
    let everywhere = HashMap::from([("BABYSYNC_PUBLISH", "0.0.0.0:8080".to_owned())]);
    assert_eq!(
        interpolate(&ports[0], &everywhere).unwrap(),
        "0.0.0.0:8080:8080"
    );
    assert!(
        api["environment"]["JWT_SECRET"]
            .as_str()
            .unwrap()
            .contains(":?"),
        "JWT_SECRET required"
    );
    assert!(
        api["environment"]["DATABASE_URL"]
            .as_str()
            .unwrap()
            .contains("@${DB_HOST:-db}:"),
        "points at db"
    );
    let api_health = strings(&api["healthcheck"]["test"]);
    assert_eq!(api_health[0], "CMD");
    assert_eq!(api_health[2], "healthcheck");

    let (text, env, docker_health) = dockerfile();
    assert!(
        text.matches("\nFROM ").count() >= 3,
        "multi-stage: planner, builder, runtime"
    );
    assert!(
        text.contains("cargo chef cook"),
        "dependencies cached apart from the source"
    );
    assert_eq!(env["BIND_ADDR"], "0.0.0.0:8080");
    assert!(text.contains("\nEXPOSE 8080\n"));
    assert!(text.contains("\nSTOPSIGNAL SIGTERM\n"));
    let user = text.lines().rfind(|l| l.starts_with("USER ")).unwrap();
    assert!(!user.contains("root") || user.contains("nonroot"), "{user}");
    assert!(!user.starts_with("USER 0"), "{user}");
    assert_eq!(
        docker_health,
        api_health[1..].to_vec(),
        "the image and compose probe alike"
    );
    assert!(std::path::Path::new(&format!("{}/.env.example", env!("CARGO_MANIFEST_DIR"))).exists());

    // JWT_SECRET is required: compose refuses to interpolate without it.
    let no_secret = HashMap::new();
    assert!(
        interpolate(
            api["environment"]["JWT_SECRET"].as_str().unwrap(),
            &no_secret
        )
        .is_err()
    );
    assert_eq!(
        interpolate(
            "a$$b ${X:-d} ${Y-e} $Z",
            &HashMap::from([("Z", "z".into())])
        )
        .unwrap(),
        "a$b d e z"
    );
}

/// Runs the health check command the deployment files name, with `env`.
fn health_check(cmd: &[String], env: &[(&str, &str)], dir: &Path) -> bool {
    assert_eq!(cmd[0], "/usr/local/bin/babysync", "the image's binary");
    command(dir, env)
        .args(&cmd[1..])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap()
        .success()
}

async fn container_environment_boots_to_ready(backend: Backend) {
    let test_db = TestDb::new(backend).await;
    let dir = test_db.dir.path().to_owned();
    let bind = format!("127.0.0.1:{}", free_port());
    let (env, probe): (Vec<(String, String)>, Vec<String>) = match backend {
        // docker compose up: the api service's environment, interpolated.
        Backend::Postgres => {
            let c = compose();
            let (user, host, port) = admin_parts();
            assert_eq!(port, "5432", "the compose file's port");
            let vars = HashMap::from([
                ("POSTGRES_USER", user),
                ("POSTGRES_PASSWORD", "unused-with-trust-auth".to_owned()),
                ("POSTGRES_DB", test_db.pg_name().unwrap().to_owned()),
                ("DB_HOST", host),
                ("JWT_SECRET", TEST_SECRET.to_owned()),
            ]);
            let api = &c["services"]["api"];
            let env = api["environment"]
                .as_mapping()
                .unwrap()
                .iter()
                .map(|(k, v)| {
                    let k = k.as_str().unwrap().to_owned();
                    let v = interpolate(v.as_str().unwrap(), &vars).unwrap();
                    if k == "BIND_ADDR" {
                        (k, bind.clone())
                    } else {
                        (k, v)
                    }
                })
                .collect();
            (env, strings(&api["healthcheck"]["test"])[1..].to_vec())
        }
        // docker run of the image alone: its ENV, the embedded database in /data.
        Backend::Sqlite => {
            let (_, env, probe) = dockerfile();
            let env = env
                .into_iter()
                .map(|(k, v)| match k.as_str() {
                    "BIND_ADDR" => (k, bind.clone()),
                    _ => (k, v.replace("/data", &dir.display().to_string())),
                })
                .collect();
            (env, probe)
        }
    };
    let env_refs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    assert!(
        !health_check(&probe, &env_refs, &dir),
        "nothing listens yet"
    );
    let mut server = ServerProcess::start(&dir, &env_refs);
    let mut ready = false;
    for _ in 0..100 {
        if health_check(&probe, &env_refs, &dir) {
            ready = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        ready,
        "the health check passes once ready:\n{}",
        server.logs().join("\n")
    );
    let r = server
        .client
        .send(reqwest::Method::GET, "/health/ready", None, None)
        .await;
    assert_eq!(r.status, 200);
    let logs = server.logs();
    assert!(
        logs.iter()
            .all(|l| serde_json::from_str::<serde_json::Value>(l).is_ok()),
        "LOG_FORMAT=json"
    );
    server.signal(libc::SIGTERM);
    let status = server
        .wait_exit(Duration::from_secs(10))
        .expect("stops on SIGTERM");
    assert!(status.success());
    assert!(!health_check(&probe, &env_refs, &dir), "fails once stopped");
}

both!(container_environment_boots_to_ready);
