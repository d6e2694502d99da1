//! Code-execution submissions on SQLite: two stores on one file (two control planes) take a
//! submission once, the table refuses rows whose state, result and finish time disagree,
//! and the restart and expiry queries run on their indexes. The semantics every store
//! shares are in the conformance suite; surviving a restart is in `open.rs`.

mod common;

use std::sync::Arc;

use common::*;
use sandlab_store::{NewSubmission, Store};
use sqlx::Row;

fn new(n: u32) -> NewSubmission {
    NewSubmission {
        token: format!("0b5e2d4c-1f2a-4e5b-9c3d-{n:012x}"),
        owner: "anonymous".into(),
        request: "{}".into(),
        runner: None,
    }
}

/// Four stores on one file, two tasks each, race to start each submission: exactly one
/// task starts it, and exactly one finishes it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn stores_on_one_file_start_and_finish_a_submission_once() {
    let db = TempDb::new();
    let mut stores = Vec::new();
    for _ in 0..4 {
        stores.push(Arc::new(db.open().await));
    }
    let batch: Vec<NewSubmission> = (1..=5).map(new).collect();
    stores[0].create_submissions(&batch).await.unwrap();
    for n in &batch {
        for op in ["start", "finish"] {
            let mut tasks = Vec::new();
            for i in 0..8 {
                let store = stores[i % stores.len()].clone();
                let token = n.token.clone();
                tasks.push(tokio::spawn(async move {
                    match op {
                        "start" => store.start_submission(&token).await.unwrap(),
                        _ => store.finish_submission(&token, "{}").await.unwrap(),
                    }
                }));
            }
            let mut won = 0;
            for t in tasks {
                won += usize::from(t.await.unwrap());
            }
            assert_eq!(won, 1, "{op} of {}", n.token);
        }
    }
    assert!(stores[3].unfinished_submissions().await.unwrap().is_empty());
}

#[tokio::test]
async fn rows_whose_state_result_and_finish_disagree_are_refused() {
    let db = TempDb::new();
    db.open().await.close().await;
    let mut raw = db.raw().await;
    let insert = |state: &'static str, result: Option<&'static str>, finished: Option<i64>| {
        sqlx::query(
            "INSERT INTO submissions (token, owner, state, request, result, bytes, created_at, \
             finished_at) VALUES (lower(hex(randomblob(16))), 'anonymous', ?, '{}', ?, 2, 1, ?)",
        )
        .bind(state)
        .bind(result)
        .bind(finished)
    };
    for (state, result, finished) in [
        ("done", None, Some(2)),
        ("done", Some("{}"), None),
        ("queued", Some("{}"), None),
        ("running", None, Some(2)),
        ("lost", None, None),
    ] {
        assert!(
            insert(state, result, finished)
                .execute(&mut raw)
                .await
                .is_err(),
            "{state} {result:?} {finished:?} was stored"
        );
    }
    for (state, result, finished) in [
        ("queued", None, None),
        ("running", None, None),
        ("done", Some("{}"), Some(2)),
    ] {
        insert(state, result, finished)
            .execute(&mut raw)
            .await
            .unwrap();
    }
    // STRICT: a time is an integer.
    assert!(sqlx::query(
        "INSERT INTO submissions (token, owner, state, request, bytes, created_at) \
         VALUES ('t', 'anonymous', 'queued', '{}', 2, 'soon')"
    )
    .execute(&mut raw)
    .await
    .is_err());
}

/// The plan of the store's restart and expiry queries (as in `src/sqlite/submissions.rs`)
/// uses the partial indexes rather than scanning every submission kept.
#[tokio::test]
async fn restart_and_expiry_queries_use_their_indexes() {
    let db = TempDb::new();
    db.open().await.close().await;
    let mut raw = db.raw().await;
    for (query, index) in [
        (
            "SELECT s.token FROM submissions AS s WHERE s.state <> 'done' \
             ORDER BY s.created_at, s.rowid",
            "submissions_unfinished",
        ),
        (
            "DELETE FROM submissions WHERE state = 'done' AND finished_at < 5",
            "submissions_by_finished",
        ),
    ] {
        let rows = sqlx::query(&format!("EXPLAIN QUERY PLAN {query}"))
            .fetch_all(&mut raw)
            .await
            .unwrap_or_else(|e| panic!("{query}: {e}"));
        let plan: Vec<String> = rows.iter().map(|r| r.get("detail")).collect();
        let plan = plan.join("\n");
        assert!(plan.contains(index), "{query}:\n{plan}");
        assert!(!plan.contains("TEMP B-TREE"), "{query} sorts:\n{plan}");
    }
}
