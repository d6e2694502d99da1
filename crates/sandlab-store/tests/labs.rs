//! Lab sessions and progress: owner scoping, updates, idempotent progress and hints.

use sandlab_store::{Error, LabSession, SessionNode, SqliteStore, Store};

fn session(id: &str, owner: &str) -> LabSession {
    LabSession {
        id: id.into(),
        owner: owner.into(),
        lab: "git-basics".into(),
        state: "starting".into(),
        reason: None,
        nodes: vec![SessionNode {
            name: "node01".into(),
            sandbox: "sb-aaaaaaaaaaaa".into(),
        }],
        created_at_ms: 1,
        deadline_ms: 2,
    }
}

#[tokio::test]
async fn sessions_are_stored_updated_scoped_and_deleted() {
    let store = SqliteStore::open_in_memory().await.unwrap();
    let mut s = session("ls-one", "usr-a");
    store.put_lab_session(&s).await.unwrap();
    store
        .put_lab_session(&session("ls-two", "usr-b"))
        .await
        .unwrap();
    s.state = "ready".into();
    s.deadline_ms = 99;
    store.put_lab_session(&s).await.unwrap();
    assert_eq!(
        store
            .get_lab_session("ls-one", Some("usr-a"))
            .await
            .unwrap(),
        s
    );
    assert!(matches!(
        store.get_lab_session("ls-one", Some("usr-b")).await,
        Err(Error::NotFound(_))
    ));
    assert_eq!(
        store.list_lab_sessions(Some("usr-a")).await.unwrap(),
        vec![s.clone()]
    );
    assert_eq!(store.list_lab_sessions(None).await.unwrap().len(), 2);
    store.delete_lab_session("ls-one").await.unwrap();
    assert!(store.get_lab_session("ls-one", None).await.is_err());
}

#[tokio::test]
async fn progress_and_hints_are_idempotent_per_user_and_lab() {
    let store = SqliteStore::open_in_memory().await.unwrap();
    for t in ["a", "b", "a"] {
        store.mark_task_done("usr-a", "lab1", t).await.unwrap();
    }
    store.mark_task_done("usr-b", "lab1", "c").await.unwrap();
    store.mark_task_done("usr-a", "lab2", "z").await.unwrap();
    let mut done = store.done_tasks("usr-a", "lab1").await.unwrap();
    done.sort();
    assert_eq!(done, ["a", "b"]);
    store.reveal_hint("usr-a", "lab1", "a").await.unwrap();
    store.reveal_hint("usr-a", "lab1", "a").await.unwrap();
    assert_eq!(store.revealed_hints("usr-a", "lab1").await.unwrap(), ["a"]);
    assert!(store
        .revealed_hints("usr-b", "lab1")
        .await
        .unwrap()
        .is_empty());
}
