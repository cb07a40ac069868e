//! `dev-portal`: a stand-in for a self-hosted API developer portal, used by
//! upkeep's end-to-end tests. See README.md for the behaviour it promises.

mod config;
mod db;
#[cfg(test)]
mod dbtest;
mod dsn;
mod http;
mod migrations;
mod signals;

use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::exit;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::json;

use config::{Config, ConfigError, Release};
use db::Db;
use http::{Request, Response};

/// Everything goes to stderr, which systemd's journal captures.
macro_rules! log {
    ($($arg:tt)*) => { eprintln!("dev-portal: {}", format_args!($($arg)*)) };
}

const EXIT_FAILURE: i32 = 1;
const EXIT_CONFIG: i32 = 2;
const EXIT_SCHEMA_TOO_NEW: i32 = 3;

const USAGE: &str = "usage: dev-portal [--conf PATH] [--release PATH]";

struct Args {
    conf: PathBuf,
    release: PathBuf,
}

fn parse_args(args: impl IntoIterator<Item = String>) -> Result<Args, String> {
    let mut out = Args {
        conf: PathBuf::from("/opt/portal/portal.conf"),
        release: PathBuf::from("/opt/portal/release.json"),
    };
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_string(), Some(v.to_string())),
            _ => (arg.clone(), None),
        };
        let slot = match flag.as_str() {
            "--conf" => &mut out.conf,
            "--release" => &mut out.release,
            "-h" | "--help" => {
                println!("{USAGE}");
                exit(0);
            }
            _ => return Err(format!("unexpected argument {arg:?}")),
        };
        let value = inline
            .or_else(|| args.next())
            .ok_or_else(|| format!("{flag} needs a value"))?;
        *slot = PathBuf::from(value);
    }
    Ok(out)
}

/// Shared between the HTTP threads and the migration thread. `None` while migrating.
struct State {
    version: String,
    /// `Session.IdleTimeout` of the configuration read at start-up.
    session_idle_timeout: serde_json::Value,
    ready: Mutex<Option<Ready>>,
}

struct Ready {
    schema: i64,
    db: Db,
}

fn main() {
    signals::install();
    let args = parse_args(std::env::args().skip(1)).unwrap_or_else(|e| {
        log!("{e}");
        eprintln!("{USAGE}");
        exit(EXIT_CONFIG);
    });

    let release = Release::load(&args.release).unwrap_or_else(|e| {
        log!("{e}");
        exit(EXIT_CONFIG);
    });
    log!(
        "starting portal version {} (pid {}, config {}, release {})",
        release.version,
        std::process::id(),
        args.conf.display(),
        args.release.display()
    );

    let config = match Config::load(&args.conf, &release.required_keys) {
        Ok(c) => c,
        Err(ConfigError::Invalid(e)) => {
            log!("{e}");
            exit(EXIT_CONFIG);
        }
        Err(ConfigError::Missing(keys)) => {
            for key in keys {
                log!("missing required configuration key: {key}");
            }
            exit(EXIT_CONFIG);
        }
    };
    for key in &config.ignored_keys {
        log!("ignoring unknown configuration key: {key}");
    }
    log!(
        "database dialect: {} ({})",
        config.database.dialect.name(),
        db::mask_connection_string(config.database.dialect, &config.database.connection_string)
    );

    let migrations_dir = migrations::dir_for_release(&args.release);
    let migrations =
        migrations::load(&migrations_dir, config.database.dialect).unwrap_or_else(|e| {
            log!("{e}");
            exit(EXIT_FAILURE);
        });
    log!(
        "release knows {} migrations in {}",
        migrations.len(),
        migrations_dir.display()
    );

    let address = format!("127.0.0.1:{}", config.host_port);
    let listener = TcpListener::bind(&address).unwrap_or_else(|e| {
        log!("failed to listen on {address}: {e}");
        exit(EXIT_FAILURE);
    });
    log!("listening on http://{address}");

    let state = Arc::new(State {
        version: release.version.clone(),
        session_idle_timeout: config.session_idle_timeout.clone(),
        ready: Mutex::new(None),
    });
    {
        let state = Arc::clone(&state);
        std::thread::spawn(move || migrate(&state, &config, &migrations));
    }

    for stream in listener.incoming() {
        match stream {
            Ok(stream) => {
                let state = Arc::clone(&state);
                std::thread::spawn(move || serve(&state, &stream));
            }
            Err(e) => {
                log!("failed to accept a connection: {e}");
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }
}

/// Connect, check the schema version, apply pending migrations, then mark ready.
/// Exits the whole process on any failure.
fn migrate(state: &State, config: &Config, migrations: &[migrations::Migration]) {
    use migrations::MigrateError;
    let fail = |e: MigrateError| -> ! {
        match e {
            MigrateError::Version(e) => {
                log!("failed to read database schema version: {e}");
                exit(EXIT_FAILURE);
            }
            MigrateError::TooNew { current, known } => {
                log!(
                    "database schema version {current} is newer than this portal supports ({known}); refusing to start"
                );
                exit(EXIT_SCHEMA_TOO_NEW);
            }
            MigrateError::Failed { name, error } => {
                log!("failed to migrate database: {name}: {error}");
                exit(EXIT_FAILURE);
            }
        }
    };
    let mut db = Db::connect(&config.database).unwrap_or_else(|e| {
        log!("failed to connect to database: {e}");
        exit(EXIT_FAILURE);
    });
    let known = migrations.len();
    let current = migrations::check(&mut db, known).unwrap_or_else(|e| fail(e));
    log!("database schema version {current}, this release knows {known}");
    if config.migration_delay_ms > 0 {
        log!(
            "MigrationDelayMs: waiting {} ms before migrating",
            config.migration_delay_ms
        );
        std::thread::sleep(Duration::from_millis(config.migration_delay_ms));
    }
    let applied = migrations::apply_pending(&mut db, migrations, current, |m, version| {
        log!("applying migration {} (schema {version})", m.name);
    })
    .unwrap_or_else(|e| fail(e));
    log!("migrations applied: {applied}; schema version {known}");
    log!("portal {} is ready", state.version);
    *lock(state) = Some(Ready {
        schema: known as i64,
        db,
    });
}

fn lock(state: &State) -> std::sync::MutexGuard<'_, Option<Ready>> {
    // A panicking request thread must not take the whole portal down.
    state.ready.lock().unwrap_or_else(|p| p.into_inner())
}

fn serve(state: &State, stream: &TcpStream) {
    let response = match http::read_request(stream) {
        Ok(request) => route(state, &request),
        Err(e) => Response::json(400, json!({ "error": e })),
    };
    http::write_response(stream, &response);
}

fn route(state: &State, request: &Request) -> Response {
    let known = matches!(
        (request.method.as_str(), request.path.as_str()),
        ("GET", "/ready" | "/version" | "/admin") | ("GET" | "POST", "/api/pages")
    );
    if !known {
        return Response::json(404, json!({ "error": "not found" }));
    }
    // Which release answers, even while it migrates.
    if request.path == "/version" {
        return Response::json(200, json!({ "version": state.version }));
    }
    let mut guard = lock(state);
    let Some(ready) = guard.as_mut() else {
        return Response::json(
            503,
            json!({ "status": "migrating", "version": state.version }),
        );
    };
    match (request.method.as_str(), request.path.as_str()) {
        ("GET", "/ready") => Response::json(
            200,
            json!({
                "status": "ready",
                "version": state.version,
                "schema": ready.schema,
                "session_idle_timeout": state.session_idle_timeout,
            }),
        ),
        // The admin portal: a real page, rendered from the database.
        ("GET", "/admin") => match ready.db.page_titles() {
            Ok(titles) => Response::html(
                200,
                format!(
                    "<!doctype html>\n<html><head><title>Portal Admin</title></head>\n<body><h1>Portal Admin</h1>\n<p>version {} &middot; schema {} &middot; {} pages</p>\n</body></html>\n",
                    state.version,
                    ready.schema,
                    titles.len()
                ),
            ),
            Err(e) => internal_error(&e),
        },
        ("GET", _) => match ready.db.page_titles() {
            Ok(titles) => Response::json(200, json!({ "count": titles.len(), "titles": titles })),
            Err(e) => internal_error(&e),
        },
        _ => {
            let title = serde_json::from_slice::<serde_json::Value>(&request.body)
                .ok()
                .and_then(|v| v.get("title").and_then(|t| t.as_str()).map(String::from));
            let Some(title) = title else {
                return Response::json(
                    400,
                    json!({ "error": "expected a JSON body {\"title\": \"...\"}" }),
                );
            };
            match ready.db.insert_page(&title) {
                Ok(id) => Response::json(201, json!({ "id": id })),
                Err(e) => internal_error(&e),
            }
        }
    }
}

fn internal_error(e: &str) -> Response {
    log!("request failed: {e}");
    Response::json(500, json!({ "error": e }))
}

#[cfg(test)]
mod tests {
    use super::parse_args;

    fn args(a: &[&str]) -> Result<super::Args, String> {
        parse_args(a.iter().map(|s| s.to_string()))
    }

    #[test]
    fn cli() {
        let a = args(&[]).unwrap();
        assert_eq!(a.conf.to_str(), Some("/opt/portal/portal.conf"));
        assert_eq!(a.release.to_str(), Some("/opt/portal/release.json"));
        let a = args(&["--conf", "/tmp/c", "--release=/tmp/r.json"]).unwrap();
        assert_eq!(a.conf.to_str(), Some("/tmp/c"));
        assert_eq!(a.release.to_str(), Some("/tmp/r.json"));
        assert!(args(&["--conf"]).is_err());
        assert!(args(&["--port", "1"]).is_err());
        assert!(args(&["extra"]).is_err());
    }
}
