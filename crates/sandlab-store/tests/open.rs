//! Opening the store: migrations, pragmas, and data surviving a restart of the process.

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use sandlab_core::{
    ByteSize, Lease, LeaseStore, Limits, NetworkMode, RecordStore, SandboxRecord, SandboxState,
};
use sandlab_store::conformance::holder;
use sandlab_store::{
    actions, NewSubmission, PageRequest, Role, SqliteOptions, SqliteStore, Store, Submission,
    Synchronous,
};
use sqlx::Row;

#[tokio::test]
async fn migrations_apply_on_a_fresh_file_and_are_idempotent() {
    let db = TempDb::new();
    assert!(!db.path.exists());
    let store = db.open().await;
    assert!(db.path.exists(), "the file and its directory are created");
    let latest = SqliteStore::latest_schema_version();
    assert_eq!(latest, 15);
    assert_eq!(store.schema_version().await.unwrap(), latest);
    store.close().await;

    // Opening again runs nothing twice and keeps the schema.
    for _ in 0..2 {
        let store = db.open().await;
        assert_eq!(store.schema_version().await.unwrap(), latest);
        store.close().await;
    }
    let mut raw = db.raw().await;
    let applied: i64 = sqlx::query("SELECT COUNT(*) FROM _sqlx_migrations")
        .fetch_one(&mut raw)
        .await
        .unwrap()
        .get(0);
    assert_eq!(applied, latest);
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE '\\_%' ESCAPE '\\' \
         AND name NOT LIKE 'sqlite%' ORDER BY name",
    )
    .fetch_all(&mut raw)
    .await
    .unwrap();
    assert_eq!(
        tables,
        [
            "api_tokens",
            "audit_log",
            "identities",
            "invites",
            "lab_hints",
            "lab_progress",
            "lab_sessions",
            "leases",
            "login_sessions",
            "notices",
            "org_members",
            "org_places",
            "orgs",
            "password_resets",
            "port_grants",
            "sandboxes",
            "sso_logins",
            "submissions",
            "users"
        ]
    );
}

#[tokio::test]
async fn a_database_from_a_newer_build_is_refused() {
    let db = TempDb::new();
    db.open().await.close().await;
    let mut raw = db.raw().await;
    sqlx::query(
        "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
         VALUES (9999, 'from the future', 1, x'00', 0)",
    )
    .execute(&mut raw)
    .await
    .unwrap();
    drop(raw);
    let err = SqliteStore::open(&db.path).await.err().expect("refused");
    assert!(matches!(err, sandlab_store::Error::Migrate(_)), "{err:?}");
}

#[tokio::test]
async fn wal_foreign_keys_and_synchronous_are_on() {
    let db = TempDb::new();
    let store = db.open().await;
    assert_eq!(store.pragma("journal_mode").await.unwrap(), "wal");
    assert_eq!(store.pragma("foreign_keys").await.unwrap(), "1");
    // NORMAL
    assert_eq!(store.pragma("synchronous").await.unwrap(), "1");
    assert_eq!(store.pragma("busy_timeout").await.unwrap(), "5000");
    assert_eq!(
        store.pragma("journal_size_limit").await.unwrap(),
        "67108864"
    );
    assert!(store.pragma("x; DROP TABLE users").await.is_err());
    store.close().await;

    let full = SqliteOptions {
        synchronous: Synchronous::Full,
        ..SqliteOptions::default()
    };
    let store = SqliteStore::open_with(&db.path, full).await.unwrap();
    assert_eq!(store.pragma("synchronous").await.unwrap(), "2");
    store.close().await;

    // Foreign keys are enforced, not just declared: a token for no user is refused.
    let mut raw = db.raw().await;
    let journal: String = sqlx::query_scalar("PRAGMA journal_mode")
        .fetch_one(&mut raw)
        .await
        .unwrap();
    assert_eq!(journal, "wal", "WAL is a property of the file");
    let orphan = sqlx::query(
        "INSERT INTO api_tokens (id, user_id, name, token_hash, created_at) \
         VALUES ('tok-x', 'usr-nobody', 'n', 'h', 0)",
    )
    .execute(&mut raw)
    .await;
    assert!(orphan.is_err());
}

#[tokio::test]
async fn in_memory_store_works_and_has_foreign_keys() {
    let store = SqliteStore::open_in_memory().await.unwrap();
    assert_eq!(store.pragma("foreign_keys").await.unwrap(), "1");
    assert_eq!(
        store.schema_version().await.unwrap(),
        SqliteStore::latest_schema_version()
    );
    let u = user(&store, "mem", Role::Learner).await;
    assert_eq!(store.get_user(&u.id).await.unwrap(), u);
}

/// What [`write_everything`] wrote.
struct Written {
    user_id: String,
    token: String,
    cookie: String,
    rec: SandboxRecord,
    lease: Lease,
    submissions: Vec<Submission>,
}

/// Writes through every table, then checks it all after a restart.
async fn write_everything(store: &SqliteStore) -> Written {
    let u = user(store, "keeper", Role::Author).await;
    let (_, token) = store.create_token(&u.id, "ci").await.unwrap();
    let (_, cookie) = store
        .create_session(&u.id, Duration::from_secs(3600))
        .await
        .unwrap();
    let mut rec = record(Some(&u.id), 1_000);
    store.put(&rec).await.unwrap();
    rec.state = SandboxState::Running;
    rec.creator = None;
    rec.owner_process = Some(holder(7));
    store.put(&rec).await.unwrap();
    let lease = store
        .acquire_lease(
            "reconcile",
            &holder(7).to_string(),
            Duration::from_secs(3600),
        )
        .await
        .unwrap();
    store
        .audit(
            Some(&u.id),
            actions::SANDBOX_CREATE,
            Some(rec.id.as_str()),
            serde_json::json!({}),
        )
        .await
        .unwrap();
    // One left queued, one running and one done: a restart runs the first two again.
    let new = |n: u32| NewSubmission {
        token: format!("0b5e2d4c-1f2a-4e5b-9c3d-{n:012x}"),
        owner: u.id.clone(),
        request: format!(r#"{{"source_code":"print({n})"}}"#),
        runner: None,
    };
    store
        .create_submissions(&[new(1), new(2), new(3)])
        .await
        .unwrap();
    assert!(store.start_submission(&new(2).token).await.unwrap());
    assert!(store.start_submission(&new(3).token).await.unwrap());
    assert!(store
        .finish_submission(&new(3).token, r#"{"stdout":"3\n"}"#)
        .await
        .unwrap());
    let tokens: Vec<String> = (1..=3).map(|n| new(n).token).collect();
    let submissions = store.get_submissions(&tokens).await.unwrap();
    assert_eq!(submissions.len(), 3);
    Written {
        user_id: u.id,
        token,
        cookie,
        rec,
        lease,
        submissions,
    }
}

async fn check_everything(store: &SqliteStore, w: &Written) {
    let Written {
        user_id,
        token,
        cookie,
        rec,
        lease,
        submissions,
    } = w;
    assert_eq!(store.get_user(user_id).await.unwrap().username, "keeper");
    assert!(store
        .verify_login("keeper", PASSWORD)
        .await
        .unwrap()
        .is_some());
    assert_eq!(
        store.authenticate_token(token).await.unwrap().unwrap().0.id,
        user_id.as_str()
    );
    assert!(store.authenticate_session(cookie).await.unwrap().is_some());
    assert_eq!(store.get(&rec.id).await.unwrap().as_ref(), Some(rec));
    assert_eq!(
        store.get_lease("reconcile").await.unwrap().as_ref(),
        Some(lease)
    );
    let audit = store.list_audit(PageRequest::default()).await.unwrap();
    assert_eq!(audit.items.len(), 1);
    assert_eq!(audit.items[0].action, "sandbox.create");
    let tokens: Vec<String> = submissions.iter().map(|s| s.token.clone()).collect();
    assert_eq!(&store.get_submissions(&tokens).await.unwrap(), submissions);
    assert_eq!(
        store.unfinished_submissions().await.unwrap(),
        submissions[..2]
    );
}

#[tokio::test]
async fn data_survives_a_clean_close_and_a_plain_drop() {
    let db = TempDb::new();
    let store = db.open().await;
    let written = write_everything(&store).await;
    let wal = db.path.with_extension("db-wal");
    assert!(
        std::fs::metadata(&wal).unwrap().len() > 0,
        "writes go to the WAL"
    );
    store.close().await;
    // A clean close folds the WAL into the database file.
    assert_eq!(std::fs::metadata(&wal).map_or(0, |m| m.len()), 0);
    let store = db.open().await;
    check_everything(&store, &written).await;

    // Dropped without closing (the pools go away, nothing is checkpointed on purpose).
    drop(store);
    let store = db.open().await;
    check_everything(&store, &written).await;
}

const CHILD_ENV: &str = "SANDLAB_STORE_TEST_CHILD_DB";

/// Not a test on its own: the child process of `acknowledged_writes_survive_kill_9`. It
/// writes until killed and prints one line per write that returned `Ok`.
#[tokio::test]
#[ignore = "the child process of acknowledged_writes_survive_kill_9"]
async fn child_writer() {
    let Ok(path) = std::env::var(CHILD_ENV) else {
        return;
    };
    let store = SqliteStore::open(Path::new(&path)).await.unwrap();
    let u = user(&store, "writer", Role::Learner).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut n: u64 = 0;
    while Instant::now() < deadline {
        n += 1;
        let rec = record(Some(&u.id), n);
        store.put(&rec).await.unwrap();
        // Tokens only while under the per-user cap; the parent reads 40 lines.
        let secret = if n <= 90 {
            store.create_token(&u.id, "t").await.unwrap().1
        } else {
            "-".into()
        };
        let detail = serde_json::json!({ "n": n });
        let id = store
            .audit(
                Some(&u.id),
                actions::SANDBOX_CREATE,
                Some(rec.id.as_str()),
                detail,
            )
            .await
            .unwrap();
        println!("ack {} {secret} {id}", rec.id);
    }
}

#[test]
fn acknowledged_writes_survive_kill_9() {
    let db = TempDb::new();
    std::fs::create_dir_all(db.path.parent().unwrap()).unwrap();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "child_writer", "--ignored", "--nocapture"])
        .env(CHILD_ENV, &db.path)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut acked = Vec::new();
    for line in BufReader::new(stdout).lines() {
        let line = line.unwrap();
        if let Some(rest) = line.strip_prefix("ack ") {
            let parts: Vec<String> = rest.split(' ').map(str::to_owned).collect();
            acked.push(parts);
            if acked.len() == 40 {
                break;
            }
        }
    }
    // SIGKILL while it is in the middle of further writes.
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(acked.len(), 40, "the child stopped early");

    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let store = db.open().await;
        let records = store.list().await.unwrap();
        let audit = store
            .list_audit(PageRequest::first(500))
            .await
            .unwrap()
            .items;
        for parts in &acked {
            let (sb, audit_id) = (&parts[0], parts[2].parse::<i64>().unwrap());
            assert!(
                records.iter().any(|r| r.id.as_str() == sb),
                "record {sb} lost"
            );
            assert!(
                audit.iter().any(|e| e.id == audit_id),
                "audit entry {audit_id} lost"
            );
        }
        for parts in &acked {
            let token = store.authenticate_token(&parts[1]).await.unwrap();
            assert!(token.is_some(), "token of {} lost", parts[0]);
        }
    });
}

/// The server and `sandlab user add` may open a fresh file at the same moment; SQLite
/// migrations take no lock of their own, and both must still open.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_first_opens_both_succeed() {
    for _ in 0..10 {
        let db = TempDb::new();
        let (a, b, c) = tokio::join!(
            SqliteStore::open(&db.path),
            SqliteStore::open(&db.path),
            SqliteStore::open(&db.path)
        );
        for s in [a, b, c] {
            let s = s.unwrap();
            assert_eq!(
                s.schema_version().await.unwrap(),
                SqliteStore::latest_schema_version()
            );
        }
    }
}

/// A database an older build left at schema 4 is upgraded in place: process pids and egress
/// slots go, the OCI runtimes' driver names become `container`, the ttl leaves the limits
/// (whose fields are checked on read), the rest stays.
#[tokio::test]
async fn a_schema_4_database_is_upgraded() {
    use sqlx::Connection;

    // Migrations 1 to 4, exactly as the older build applied them.
    let old = tempfile::tempdir().unwrap();
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations");
    for entry in std::fs::read_dir(&src).unwrap() {
        let entry = entry.unwrap();
        if entry.file_name().to_string_lossy().as_ref() < "0005" {
            std::fs::copy(entry.path(), old.path().join(entry.file_name())).unwrap();
        }
    }
    let db = TempDb::new();
    std::fs::create_dir_all(db.path.parent().unwrap()).unwrap();
    let opts = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(&db.path)
        .create_if_missing(true);
    let mut conn = sqlx::SqliteConnection::connect_with(&opts).await.unwrap();
    let migrator = sqlx::migrate::Migrator::new(old.path()).await.unwrap();
    migrator.run(&mut conn).await.unwrap();

    // `limits` as older builds wrote them, with the ttl in milliseconds.
    let default_limits =
        r#"{"memory":"512M","cpus":1.0,"pids":256,"disk":"2G","network":"none","ttl":3600000}"#;
    let egress_limits =
        r#"{"memory":"1G","cpus":0.5,"pids":64,"disk":"4G","network":"egress","ttl":600000}"#;
    let rows = [
        ("runc", Some(3), Some(100), Some(200), default_limits),
        ("crun", None, None, None, egress_limits),
        ("runsc", Some(4), Some(101), None, default_limits),
        ("vm", None, None, Some(201), egress_limits),
    ];
    let mut ids = Vec::new();
    for (i, (driver, slot, creator, owner, limits)) in rows.into_iter().enumerate() {
        let id = sandlab_core::SandboxId::generate();
        sqlx::query(
            "INSERT INTO sandboxes (id, state, reason, owner, image, limits, hostname, driver, \
             network_slot, ipv4, ipv6, created_at, deadline, creator_pid, owner_pid) \
             VALUES (?, 'running', NULL, 'usr-old', 'debian:12', ?, 'box', ?, ?, '10.0.0.2', \
             NULL, ?, 9999999, ?, ?)",
        )
        .bind(id.as_str())
        .bind(limits)
        .bind(driver)
        .bind(slot)
        .bind(i as i64)
        .bind(creator)
        .bind(owner)
        .execute(&mut conn)
        .await
        .unwrap();
        ids.push(id);
    }
    conn.close().await.unwrap();

    let store = db.open().await;
    assert_eq!(
        store.schema_version().await.unwrap(),
        SqliteStore::latest_schema_version()
    );
    let recs = store.list().await.unwrap();
    let drivers: Vec<&str> = recs.iter().map(|r| r.driver.as_str()).collect();
    assert_eq!(drivers, ["container", "container", "container", "vm"]);
    let egress = Limits {
        memory: ByteSize::gib(1),
        cpus: 0.5,
        pids: 64,
        disk: ByteSize::gib(4),
        network: NetworkMode::Egress,
        profile: Default::default(),
    };
    let limits: Vec<&Limits> = recs.iter().map(|r| &r.limits).collect();
    assert_eq!(
        limits,
        [&Limits::default(), &egress, &Limits::default(), &egress]
    );
    for (rec, id) in recs.iter().zip(&ids) {
        assert_eq!(&rec.id, id);
        assert_eq!(
            (rec.creator.as_ref(), rec.owner_process.as_ref()),
            (None, None)
        );
        assert_eq!(rec.owner.as_deref(), Some("usr-old"));
        assert_eq!(rec.state, SandboxState::Running);
        assert_eq!(rec.network.ipv4.as_deref(), Some("10.0.0.2"));
        assert_eq!(rec.deadline_ms, 9_999_999);
    }

    let mut raw = db.raw().await;
    let columns: Vec<String> =
        sqlx::query_scalar("SELECT name FROM pragma_table_info('sandboxes')")
            .fetch_all(&mut raw)
            .await
            .unwrap();
    for gone in ["creator_pid", "owner_pid", "network_slot"] {
        assert!(!columns.iter().any(|c| c == gone), "{gone} in {columns:?}");
    }
    let with_ttl: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM sandboxes WHERE json_extract(limits, '$.ttl') IS NOT NULL",
    )
    .fetch_one(&mut raw)
    .await
    .unwrap();
    assert_eq!(with_ttl, 0);
    let slot_index: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM sqlite_schema WHERE name = 'sandboxes_by_slot'")
            .fetch_one(&mut raw)
            .await
            .unwrap();
    assert_eq!(slot_index, 0);
}
