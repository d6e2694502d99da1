//! The conformance suite (`sandlab_store::conformance`) against [`PostgresStore`] on a real
//! PostgreSQL server, and what only PostgreSQL shows (the audit log's triggers, migrations
//! under the advisory lock, the database's clock).
//!
//! The server comes from `SANDLAB_TEST_POSTGRES_URL` (`scripts/postgres.sh start` starts a
//! private one and prints it); its role needs `CREATEDB`. Each case gets a database of its
//! own, dropped when the run succeeds. Without the variable every test here prints a skip
//! line and passes, except under `CI`, where a missing server is a failure.

use std::str::FromStr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use sandlab_core::LeaseStore;
use sandlab_store::conformance::{self, Harness};
use sandlab_store::{
    actions, Clock, DatabaseUrl, ManualClock, PageRequest, PostgresOptions, PostgresStore, Store,
};
use serde_json::json;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::Connection;

const URL_VAR: &str = "SANDLAB_TEST_POSTGRES_URL";

/// The server's URL, or `None` (with the skip line printed) when the tests are to skip.
fn server_url(test: &str) -> Option<String> {
    match std::env::var(URL_VAR) {
        Ok(url) if !url.is_empty() => Some(url),
        _ if std::env::var_os("CI").is_some() => {
            panic!("{URL_VAR} is not set under CI: scripts/test.sh starts a PostgreSQL server")
        }
        _ => {
            eprintln!(
                "skipping {test}: {URL_VAR} is not set (scripts/postgres.sh start prints one)"
            );
            None
        }
    }
}

/// Makes databases named `<prefix>_<n>` on the server and drops them when asked.
struct Databases {
    base: PgConnectOptions,
    prefix: String,
    next: AtomicUsize,
    made: Mutex<Vec<String>>,
}

impl Databases {
    fn new(url: &str, what: &str) -> Databases {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        Databases {
            base: PgConnectOptions::from_str(url).expect("a valid postgres:// URL"),
            prefix: format!("sandlab_{what}_{}_{nanos}", std::process::id()),
            next: AtomicUsize::new(0),
            made: Mutex::new(Vec::new()),
        }
    }

    /// A fresh, empty database; its connection options.
    async fn create(&self) -> PgConnectOptions {
        let name = format!(
            "{}_{}",
            self.prefix,
            self.next.fetch_add(1, Ordering::SeqCst)
        );
        let mut admin = sqlx::PgConnection::connect_with(&self.base)
            .await
            .expect("connect to the test server");
        sqlx::query(&format!("CREATE DATABASE \"{name}\""))
            .execute(&mut admin)
            .await
            .expect("CREATE DATABASE (the role needs CREATEDB)");
        admin.close().await.ok();
        self.made.lock().expect("not poisoned").push(name.clone());
        self.base.clone().database(&name)
    }

    /// Drops every database made, closing what is still connected to them.
    async fn drop_all(&self) {
        let names = std::mem::take(&mut *self.made.lock().expect("not poisoned"));
        let mut admin = sqlx::PgConnection::connect_with(&self.base)
            .await
            .expect("connect to the test server");
        for name in names {
            // FORCE ends the connections still open, and needs pg_signal_backend for an
            // autovacuum worker that happens to be in the database (scripts/postgres.sh
            // grants it and turns autovacuum off); a drop that still fails is a database
            // left on a throwaway server, not a failure of the suite.
            let sql = format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)");
            let mut left = None;
            for _ in 0..5 {
                match sqlx::query(&sql).execute(&mut admin).await {
                    Ok(_) => {
                        left = None;
                        break;
                    }
                    Err(e) => left = Some(e),
                }
                tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            }
            if let Some(e) = left {
                eprintln!("warning: cannot drop the test database {name}: {e}");
            }
        }
    }
}

/// Each store on a database of its own, on the suite's clock.
struct PgHarness(Databases);

#[async_trait]
impl Harness for PgHarness {
    async fn open(&self, clock: Arc<ManualClock>) -> Arc<dyn Store> {
        let connect = self.0.create().await;
        let opts = PostgresOptions {
            // The lease case runs eight acquirers at once; a few connections make them wait
            // for each other as replicas would.
            max_connections: 4,
            clock: Some(clock),
            ..PostgresOptions::default()
        };
        Arc::new(
            PostgresStore::connect_with(connect, opts)
                .await
                .expect("open"),
        )
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_conforms() {
    let Some(url) = server_url("postgres_conforms") else {
        return;
    };
    let harness = Arc::new(PgHarness(Databases::new(&url, "conf")));
    conformance::run_all(harness.clone()).await;
    harness.0.drop_all().await;
}

/// A store on a fresh database with the server's clock, and a raw pool on that database.
async fn fresh(dbs: &Databases) -> (PostgresStore, PgPool) {
    let connect = dbs.create().await;
    let store = PostgresStore::connect_with(connect.clone(), PostgresOptions::default())
        .await
        .expect("open");
    let raw = PgPoolOptions::new()
        .max_connections(1)
        .connect_with(connect)
        .await
        .expect("connect");
    (store, raw)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_audit_log_cannot_be_rewritten() {
    let Some(url) = server_url("the_audit_log_cannot_be_rewritten") else {
        return;
    };
    let dbs = Databases::new(&url, "audit");
    let (store, raw) = fresh(&dbs).await;
    store
        .audit(None, actions::AUTH_LOGIN, None, json!({}))
        .await
        .unwrap();
    for sql in [
        "UPDATE audit_log SET action = 'x'",
        "DELETE FROM audit_log",
        "TRUNCATE audit_log",
    ] {
        let err = sqlx::query(sql).execute(&raw).await.unwrap_err();
        assert!(err.to_string().contains("append-only"), "{sql}: {err}");
    }
    let items = store
        .list_audit(PageRequest::default())
        .await
        .unwrap()
        .items;
    assert_eq!(items.len(), 1);
    assert_eq!(items[0].action, actions::AUTH_LOGIN);

    // PostgreSQL stores no NUL character in text (SQLite does): a request that carries
    // one gets the caller's error, not a server error. In JSON it is the escape \u0000.
    let err = store
        .audit(None, actions::AUTH_LOGIN, Some("a\u{0}b"), json!({}))
        .await
        .unwrap_err();
    assert!(
        matches!(err, sandlab_store::Error::Invalid(_)),
        "NUL in text: {err:?}"
    );
    store
        .audit(
            None,
            actions::AUTH_LOGIN,
            None,
            json!({ "name": "a\u{0}b" }),
        )
        .await
        .unwrap();
    raw.close().await;
    store.close().await;
    dbs.drop_all().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_opening_at_once_migrate_once() {
    let Some(url) = server_url("replicas_opening_at_once_migrate_once") else {
        return;
    };
    let dbs = Databases::new(&url, "migrate");
    let connect = dbs.create().await;
    let opens = (0..6).map(|_| {
        let connect = connect.clone();
        tokio::spawn(async move {
            PostgresStore::connect_with(connect, PostgresOptions::default()).await
        })
    });
    let mut stores = Vec::new();
    for open in opens {
        stores.push(open.await.unwrap().expect("every replica opens"));
    }
    let latest = PostgresStore::latest_schema_version();
    assert_eq!(latest, 15);
    for store in &stores {
        assert_eq!(store.schema_version().await.unwrap(), latest);
    }
    let raw = PgPoolOptions::new()
        .max_connections(1)
        .connect_with(connect)
        .await
        .unwrap();
    let (applied,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM _sqlx_migrations")
        .fetch_one(&raw)
        .await
        .unwrap();
    assert_eq!(applied, latest, "each migration applied exactly once");
    // A database migrated by a newer build is refused.
    sqlx::query(
        "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
         VALUES (9999, 'from the future', TRUE, '\\x00', 0)",
    )
    .execute(&raw)
    .await
    .unwrap();
    raw.close().await;
    let err = PostgresStore::connect_with(connect_of(&dbs), PostgresOptions::default())
        .await
        .err()
        .expect("a newer schema is refused");
    assert!(matches!(err, sandlab_store::Error::Migrate(_)), "{err:?}");
    for store in stores {
        store.close().await;
    }
    dbs.drop_all().await;
}

/// The options of the one database `dbs` made.
fn connect_of(dbs: &Databases) -> PgConnectOptions {
    let name = dbs.made.lock().expect("not poisoned")[0].clone();
    dbs.base.clone().database(&name)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn time_is_the_database_servers() {
    let Some(url) = server_url("time_is_the_database_servers") else {
        return;
    };
    let dbs = Databases::new(&url, "clock");
    let (store, raw) = fresh(&dbs).await;
    // A lease taken for an hour expires an hour after the server's now, which is this
    // host's clock here (the server runs on it) to within a few seconds.
    let lease = store
        .acquire_lease("clock", "me", std::time::Duration::from_secs(3600))
        .await
        .unwrap();
    let host_now = sandlab_store::SystemClock.now_ms();
    let expires = i64::try_from(lease.expires_at_ms).unwrap();
    assert!(
        (expires - 3_600_000 - host_now).abs() < 5_000,
        "{expires} vs {host_now}"
    );
    raw.close().await;
    store.close().await;
    dbs.drop_all().await;
}

#[tokio::test]
async fn open_picks_the_store_from_the_url() {
    assert_eq!(
        "sqlite:///var/lib/sandlab/sandlab.db"
            .parse::<DatabaseUrl>()
            .unwrap(),
        DatabaseUrl::Sqlite("/var/lib/sandlab/sandlab.db".into())
    );
    for url in [
        "postgres://u@h/db",
        "postgresql://u:p@h:5432/db?sslmode=require",
    ] {
        assert_eq!(
            url.parse::<DatabaseUrl>().unwrap(),
            DatabaseUrl::Postgres(url.into())
        );
    }
    for bad in [
        "",
        "mysql://u:secret@h/db",
        "sqlite://",
        "/var/lib/x.db",
        "sqlite://x?mode=ro",
    ] {
        let err = bad.parse::<DatabaseUrl>().unwrap_err().to_string();
        assert!(err.starts_with("The database URL must be"), "{bad}: {err}");
        assert!(!err.contains("secret"), "{err}");
    }
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("s.db").display());
    let store = sandlab_store::open(&url).await.unwrap();
    store.check_writable().await.unwrap();
    assert!(dir.path().join("s.db").exists());
    // A postgres:// URL that libpq-style parsing refuses is one sentence, not a panic.
    let err = sandlab_store::open("postgres://u@h:notaport/db")
        .await
        .err()
        .expect("refused")
        .to_string();
    assert!(err.starts_with("The database URL is not a valid"), "{err}");
}
