//! Lab sessions and progress: owner scoping, updates, idempotent progress and hints.

use super::Ctx;
use crate::{Error, HandOver, LabSession, LabSessionState, SessionNode, SessionTask};

fn session(id: &str, owner: &str, created_at_ms: i64) -> LabSession {
    LabSession {
        id: id.into(),
        owner: owner.into(),
        lab: "git-basics".into(),
        state: LabSessionState::Starting,
        reason: None,
        nodes: vec![SessionNode {
            name: "node01".into(),
            sandbox: "sb-aaaaaaaaaaaa".into(),
        }],
        created_at_ms,
        deadline_ms: created_at_ms + 1,
        runner: None,
        tasks: Vec::new(),
    }
}

pub(super) async fn lab_sessions_are_stored_updated_scoped_and_deleted(c: Ctx) {
    let store = c.store.as_ref();
    assert!(store.list_lab_sessions(None).await.unwrap().is_empty());
    let mut s = session("ls-one", "usr-a", 1);
    store.put_lab_session(&s).await.unwrap();
    let two = session("ls-two", "usr-b", 3);
    store.put_lab_session(&two).await.unwrap();
    let three = session("ls-three", "usr-a", 2);
    store.put_lab_session(&three).await.unwrap();

    // An update changes the state, reason, nodes, deadline, runner and tasks, and nothing
    // else.
    s.state = LabSessionState::Failed;
    s.runner = Some("boot/1/1".into());
    s.tasks = vec![
        SessionTask {
            id: "b".into(),
            state: "done".into(),
        },
        SessionTask {
            id: "a".into(),
            state: "pending".into(),
        },
    ];
    s.reason = Some("node01 did not start".into());
    s.deadline_ms = 99;
    s.nodes.push(SessionNode {
        name: "node02".into(),
        sandbox: "sb-bbbbbbbbbbbb".into(),
    });
    let mut moved = s.clone();
    moved.owner = "usr-b".into();
    moved.lab = "other".into();
    moved.created_at_ms = 50;
    store.put_lab_session(&moved).await.unwrap();
    assert_eq!(
        store
            .get_lab_session("ls-one", Some("usr-a"))
            .await
            .unwrap(),
        s
    );
    assert_eq!(store.get_lab_session("ls-one", None).await.unwrap(), s);
    assert!(matches!(
        store.get_lab_session("ls-one", Some("usr-b")).await,
        Err(Error::NotFound("lab session"))
    ));
    assert!(matches!(
        store.get_lab_session("ls-nope", None).await,
        Err(Error::NotFound(_))
    ));

    // Oldest first, only the owner's when asked.
    assert_eq!(
        store.list_lab_sessions(Some("usr-a")).await.unwrap(),
        vec![s.clone(), three.clone()]
    );
    assert_eq!(
        store.list_lab_sessions(None).await.unwrap(),
        vec![s.clone(), three.clone(), two.clone()]
    );
    assert!(store
        .list_lab_sessions(Some("usr-z"))
        .await
        .unwrap()
        .is_empty());

    // Only those not over; s failed.
    assert_eq!(
        store.open_lab_sessions(None).await.unwrap(),
        vec![three.clone(), two.clone()]
    );
    assert_eq!(
        store.open_lab_sessions(Some("usr-b")).await.unwrap(),
        vec![two.clone()]
    );

    store.delete_lab_session("ls-one").await.unwrap();
    store.delete_lab_session("ls-one").await.unwrap();
    assert!(matches!(
        store.get_lab_session("ls-one", None).await,
        Err(Error::NotFound(_))
    ));
    assert_eq!(store.list_lab_sessions(None).await.unwrap(), [three, two]);
}

pub(super) async fn progress_is_idempotent_and_in_the_order_done(c: Ctx) {
    let store = c.store.as_ref();
    assert!(store.done_tasks("usr-a", "lab1").await.unwrap().is_empty());
    for t in ["b", "a", "b", "c"] {
        c.clock.advance_ms(1);
        store.mark_task_done("usr-a", "lab1", t).await.unwrap();
    }
    store.mark_task_done("usr-b", "lab1", "z").await.unwrap();
    store.mark_task_done("usr-a", "lab0", "y").await.unwrap();
    // The second "b" kept the first time it was done.
    assert_eq!(
        store.done_tasks("usr-a", "lab1").await.unwrap(),
        ["b", "a", "c"]
    );
    assert_eq!(store.done_tasks("usr-b", "lab1").await.unwrap(), ["z"]);
    assert!(store.done_tasks("usr-b", "lab0").await.unwrap().is_empty());
    let pair = |l: &str, t: &str| (l.to_owned(), t.to_owned());
    assert_eq!(
        store.all_done_tasks("usr-a").await.unwrap(),
        [
            pair("lab0", "y"),
            pair("lab1", "b"),
            pair("lab1", "a"),
            pair("lab1", "c")
        ]
    );
    assert!(store.all_done_tasks("usr-c").await.unwrap().is_empty());
}

pub(super) async fn hints_are_idempotent_per_user_and_lab(c: Ctx) {
    let store = c.store.as_ref();
    for t in ["b", "a", "b"] {
        c.clock.advance_ms(1);
        store.reveal_hint("usr-a", "lab1", t).await.unwrap();
    }
    store.reveal_hint("usr-a", "lab2", "z").await.unwrap();
    let mut hints = store.revealed_hints("usr-a", "lab1").await.unwrap();
    hints.sort();
    assert_eq!(hints, ["a", "b"]);
    assert_eq!(store.revealed_hints("usr-a", "lab2").await.unwrap(), ["z"]);
    assert!(store
        .revealed_hints("usr-b", "lab1")
        .await
        .unwrap()
        .is_empty());
    // Hints are not progress.
    assert!(store.done_tasks("usr-a", "lab1").await.unwrap().is_empty());
}

pub(super) async fn a_sessions_runner_is_taken_by_one(c: Ctx) {
    let store = c.store.as_ref();
    store
        .put_lab_session(&session("ls-one", "usr-a", 1))
        .await
        .unwrap();
    assert!(!store
        .take_lab_session("ls-one", Some("boot/1/1"), "boot/2/2")
        .await
        .unwrap());
    assert!(store
        .take_lab_session("ls-one", None, "boot/1/1")
        .await
        .unwrap());
    assert!(!store
        .take_lab_session("ls-one", None, "boot/2/2")
        .await
        .unwrap());
    assert!(!store
        .take_lab_session("ls-nope", None, "boot/2/2")
        .await
        .unwrap());
    let wins = super::submissions::futures_join(8, |i| {
        let store = c.store.clone();
        async move {
            store
                .take_lab_session("ls-one", Some("boot/1/1"), &format!("boot/{i}/0"))
                .await
                .unwrap()
        }
    })
    .await;
    assert_eq!(wins.iter().filter(|w| **w).count(), 1, "{wins:?}");
    let runner = store
        .get_lab_session("ls-one", None)
        .await
        .unwrap()
        .runner
        .unwrap();
    assert!(
        runner.starts_with("boot/") && runner.ends_with("/0"),
        "{runner}"
    );
    // Everything else stays.
    let mut want = session("ls-one", "usr-a", 1);
    want.runner = Some(runner);
    assert_eq!(store.get_lab_session("ls-one", None).await.unwrap(), want);
}

pub(super) async fn a_warm_session_is_handed_to_one_owner(c: Ctx) {
    let store = c.store.as_ref();
    let mut warm = session("ls-warm", "pool:lab:git-basics", 1);
    warm.runner = Some("boot/1/1".into());
    store.put_lab_session(&warm).await.unwrap();
    // Not while it is still being set up.
    let starting = HandOver {
        from: "pool:lab:git-basics",
        to: "usr-a",
        runner: "boot/1/1",
        created_at_ms: 50,
        deadline_ms: 90,
    };
    assert!(!store
        .hand_over_lab_session("ls-warm", &starting)
        .await
        .unwrap());
    warm.state = LabSessionState::Ready;
    store.put_lab_session(&warm).await.unwrap();
    let hand = |to: &'static str, runner: &'static str| HandOver {
        from: "pool:lab:git-basics",
        to,
        runner,
        created_at_ms: 50,
        deadline_ms: 90,
    };
    // Not while another replica runs it, nor for an unknown session.
    assert!(!store
        .hand_over_lab_session("ls-warm", &hand("usr-a", "boot/2/2"))
        .await
        .unwrap());
    assert!(!store
        .hand_over_lab_session("ls-nope", &hand("usr-a", "boot/1/1"))
        .await
        .unwrap());
    let wins = super::submissions::futures_join(8, |i| {
        let store = c.store.clone();
        async move {
            let to = format!("usr-{i}");
            let hand = HandOver {
                from: "pool:lab:git-basics",
                to: &to,
                runner: "boot/1/1",
                created_at_ms: 50,
                deadline_ms: 90,
            };
            store.hand_over_lab_session("ls-warm", &hand).await.unwrap()
        }
    })
    .await;
    assert_eq!(wins.iter().filter(|w| **w).count(), 1, "{wins:?}");
    let got = store.get_lab_session("ls-warm", None).await.unwrap();
    assert!(got.owner.starts_with("usr-"), "{got:?}");
    // The new owner sees it; owner, creation time and deadline moved, nothing else.
    assert_eq!(
        store
            .get_lab_session("ls-warm", Some(&got.owner))
            .await
            .unwrap(),
        LabSession {
            owner: got.owner.clone(),
            created_at_ms: 50,
            deadline_ms: 90,
            ..warm
        }
    );
    assert!(!store
        .hand_over_lab_session("ls-warm", &hand("usr-a", "boot/1/1"))
        .await
        .unwrap());
}
