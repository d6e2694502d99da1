//! Code-execution submissions: batches created whole or not at all, reads in the order
//! asked, queued → running → done taken once each, what a restart runs again, owner-scoped
//! deletion and expiry of done ones on the caller's cut.

use super::{Ctx, T0};
use crate::{
    Error, NewSubmission, Submission, SubmissionState, MAX_SUBMISSION_OWNER_BYTES,
    MAX_SUBMISSION_REQUEST_BYTES,
};

/// The `n`th token: a UUID v4 in hyphenated lower case.
fn token(n: u32) -> String {
    format!("0b5e2d4c-1f2a-4e5b-9c3d-{n:012x}")
}

fn new(n: u32, owner: &str) -> NewSubmission {
    NewSubmission {
        token: token(n),
        owner: owner.into(),
        request: format!(r#"{{"source_code":"print({n})","language_id":71}}"#),
        runner: None,
    }
}

fn tokens(subs: &[Submission]) -> Vec<&str> {
    subs.iter().map(|s| s.token.as_str()).collect()
}

pub(super) async fn created_submissions_read_back_in_the_order_asked(c: Ctx) {
    let store = c.store.as_ref();
    assert!(store.create_submissions(&[]).await.unwrap().is_empty());
    assert!(store.get_submissions(&[]).await.unwrap().is_empty());
    let batch = [new(1, "usr-a"), new(2, "anonymous"), new(3, "usr-a")];
    let created = store.create_submissions(&batch).await.unwrap();
    assert_eq!(created.len(), 3);
    for (s, n) in created.iter().zip(&batch) {
        assert_eq!(
            s,
            &Submission {
                token: n.token.clone(),
                owner: n.owner.clone(),
                runner: None,
                state: SubmissionState::Queued,
                request: n.request.clone(),
                result: None,
                created_at_ms: T0,
                finished_at_ms: None,
            }
        );
    }
    // The order of the tokens asked, not of creation; missing tokens are left out.
    let asked = [token(3), token(9), token(1), "not-a-token".into(), token(2)];
    let got = store.get_submissions(&asked).await.unwrap();
    assert_eq!(
        got,
        vec![created[2].clone(), created[0].clone(), created[1].clone()]
    );
    assert!(store.get_submissions(&[token(9)]).await.unwrap().is_empty());
    // The request comes back byte for byte, JSON or not: the store does not read it.
    let odd = NewSubmission {
        request: "{\"a\": \"é\\u0000\", \"b\": [1,2,\n3]} trailing".into(),
        ..new(4, "usr-b")
    };
    c.clock.advance_ms(5);
    store
        .create_submissions(std::slice::from_ref(&odd))
        .await
        .unwrap();
    let got = store.get_submissions(&[token(4)]).await.unwrap();
    assert_eq!(got[0].request, odd.request);
    assert_eq!(got[0].created_at_ms, T0 + 5);
}

pub(super) async fn a_batch_is_created_whole_or_not_at_all(c: Ctx) {
    let store = c.store.as_ref();
    store.create_submissions(&[new(1, "usr-a")]).await.unwrap();
    // A token that exists fails the whole batch, wherever it is in it.
    let clash = [new(2, "usr-a"), new(1, "usr-b"), new(3, "usr-a")];
    assert!(matches!(
        store.create_submissions(&clash).await,
        Err(Error::Conflict(_))
    ));
    // So does a token given twice in one batch.
    let twice = [new(4, "usr-a"), new(5, "usr-a"), new(4, "usr-a")];
    assert!(matches!(
        store.create_submissions(&twice).await,
        Err(Error::Conflict(_))
    ));
    // And a bad one.
    let bad = [
        new(6, "usr-a"),
        NewSubmission {
            token: "x".into(),
            ..new(7, "usr-a")
        },
    ];
    assert!(matches!(
        store.create_submissions(&bad).await,
        Err(Error::Invalid(_))
    ));
    let all: Vec<String> = (1..=7).map(token).collect();
    let got = store.get_submissions(&all).await.unwrap();
    assert_eq!(tokens(&got), [token(1)]);
    assert_eq!(got[0].owner, "usr-a");
    assert_eq!(
        tokens(&store.unfinished_submissions().await.unwrap()),
        [token(1)]
    );
    // The store is not left stuck: the same tokens without the clash go in.
    let retry = [new(2, "usr-a"), new(3, "usr-a"), new(4, "usr-a")];
    assert_eq!(store.create_submissions(&retry).await.unwrap().len(), 3);
}

pub(super) async fn start_takes_only_a_queued_submission(c: Ctx) {
    let store = c.store.as_ref();
    store
        .create_submissions(&[new(1, "usr-a"), new(2, "usr-a")])
        .await
        .unwrap();
    assert!(store.start_submission(&token(1)).await.unwrap());
    let got = store.get_submissions(&[token(1)]).await.unwrap();
    assert_eq!(got[0].state, SubmissionState::Running);
    assert_eq!(
        (got[0].result.as_deref(), got[0].finished_at_ms),
        (None, None)
    );
    // Already taken.
    assert!(!store.start_submission(&token(1)).await.unwrap());
    // Done.
    store.finish_submission(&token(2), "{}").await.unwrap();
    assert!(!store.start_submission(&token(2)).await.unwrap());
    assert_eq!(
        store.get_submissions(&[token(2)]).await.unwrap()[0].state,
        SubmissionState::Done
    );
    // Gone, or never there.
    store.delete_submission(&token(1), None).await.unwrap();
    assert!(!store.start_submission(&token(1)).await.unwrap());
    assert!(!store.start_submission(&token(3)).await.unwrap());
    assert!(!store.start_submission("not-a-token").await.unwrap());
}

pub(super) async fn one_of_eight_concurrent_starters_wins(c: Ctx) {
    c.store
        .create_submissions(&[new(1, "usr-a")])
        .await
        .unwrap();
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let store = c.store.clone();
        tasks.push(tokio::spawn(async move {
            store.start_submission(&token(1)).await
        }));
    }
    let mut won = 0;
    for t in tasks {
        if t.await.unwrap().unwrap() {
            won += 1;
        }
    }
    assert_eq!(won, 1);
}

pub(super) async fn finish_from_queued_or_running_and_only_once(c: Ctx) {
    let store = c.store.as_ref();
    store
        .create_submissions(&[new(1, "usr-a"), new(2, "usr-a")])
        .await
        .unwrap();
    assert!(store.start_submission(&token(1)).await.unwrap());
    c.clock.advance_ms(1_500);
    let result = r#"{"stdout":"1\n","status":{"id":3}}"#;
    // From running, and straight from queued (e.g. refused before it ran).
    assert!(store.finish_submission(&token(1), result).await.unwrap());
    assert!(store.finish_submission(&token(2), "{}").await.unwrap());
    let got = store.get_submissions(&[token(1), token(2)]).await.unwrap();
    assert_eq!(got[0].state, SubmissionState::Done);
    assert_eq!(got[0].result.as_deref(), Some(result));
    assert_eq!(got[0].finished_at_ms, Some(T0 + 1_500));
    assert_eq!(got[0].created_at_ms, T0);
    assert_eq!(got[1].result.as_deref(), Some("{}"));
    // Not twice: the first result stays.
    c.clock.advance_ms(1_000);
    assert!(!store.finish_submission(&token(1), "{}").await.unwrap());
    let again = store.get_submissions(&[token(1)]).await.unwrap();
    assert_eq!(again[0], got[0]);
    // Gone, or never there.
    assert!(!store.finish_submission(&token(3), "{}").await.unwrap());
}

pub(super) async fn unfinished_are_the_queued_and_running_oldest_first(c: Ctx) {
    let store = c.store.as_ref();
    assert!(store.unfinished_submissions().await.unwrap().is_empty());
    // Created out of token order, and two in one millisecond: their batch order holds.
    store.create_submissions(&[new(5, "usr-a")]).await.unwrap();
    c.clock.advance_ms(10);
    store
        .create_submissions(&[new(3, "usr-b"), new(1, "anonymous")])
        .await
        .unwrap();
    c.clock.advance_ms(10);
    store
        .create_submissions(&[new(2, "usr-a"), new(4, "usr-a")])
        .await
        .unwrap();
    assert!(store.start_submission(&token(3)).await.unwrap());
    assert!(store.start_submission(&token(2)).await.unwrap());
    assert!(store.finish_submission(&token(2), "{}").await.unwrap());
    assert!(store.finish_submission(&token(1), "{}").await.unwrap());
    let unfinished = store.unfinished_submissions().await.unwrap();
    assert_eq!(tokens(&unfinished), [token(5), token(3), token(4)]);
    let states: Vec<SubmissionState> = unfinished.iter().map(|s| s.state).collect();
    assert_eq!(
        states,
        [
            SubmissionState::Queued,
            SubmissionState::Running,
            SubmissionState::Queued
        ]
    );
    assert_eq!(
        unfinished
            .iter()
            .map(|s| s.created_at_ms)
            .collect::<Vec<_>>(),
        [T0, T0 + 10, T0 + 20]
    );
}

pub(super) async fn delete_is_the_owners_or_an_admins(c: Ctx) {
    let store = c.store.as_ref();
    store
        .create_submissions(&[new(1, "usr-a"), new(2, "anonymous"), new(3, "usr-a")])
        .await
        .unwrap();
    assert!(!store
        .delete_submission(&token(1), Some("usr-b"))
        .await
        .unwrap());
    assert!(!store
        .delete_submission(&token(1), Some("anonymous"))
        .await
        .unwrap());
    assert_eq!(store.get_submissions(&[token(1)]).await.unwrap().len(), 1);
    assert!(store
        .delete_submission(&token(1), Some("usr-a"))
        .await
        .unwrap());
    assert!(store.get_submissions(&[token(1)]).await.unwrap().is_empty());
    assert!(!store
        .delete_submission(&token(1), Some("usr-a"))
        .await
        .unwrap());
    // Without an owner, anyone's, in any state.
    assert!(store.start_submission(&token(3)).await.unwrap());
    assert!(store.delete_submission(&token(3), None).await.unwrap());
    assert!(store
        .delete_submission(&token(2), Some("anonymous"))
        .await
        .unwrap());
    assert!(!store.delete_submission(&token(2), None).await.unwrap());
    assert!(store.unfinished_submissions().await.unwrap().is_empty());
}

pub(super) async fn expiry_removes_only_done_ones_finished_before_the_cut(c: Ctx) {
    let store = c.store.as_ref();
    store
        .create_submissions(&[new(1, "usr-a"), new(2, "usr-a"), new(3, "usr-a")])
        .await
        .unwrap();
    store
        .create_submissions(&[new(4, "usr-a"), new(5, "usr-a")])
        .await
        .unwrap();
    assert!(store.start_submission(&token(4)).await.unwrap());
    c.clock.advance_ms(1_000);
    assert!(store.finish_submission(&token(1), "{}").await.unwrap());
    c.clock.advance_ms(1_000);
    assert!(store.finish_submission(&token(2), "{}").await.unwrap());
    c.clock.advance_ms(1_000);
    assert!(store.finish_submission(&token(3), "{}").await.unwrap());
    // Nothing finished before T0 + 1000; the cut is exclusive.
    assert_eq!(store.expire_submissions(T0 + 1_000).await.unwrap(), 0);
    assert_eq!(store.expire_submissions(T0 + 2_000).await.unwrap(), 1);
    let all: Vec<String> = (1..=5).map(token).collect();
    assert_eq!(
        tokens(&store.get_submissions(&all).await.unwrap()),
        [token(2), token(3), token(4), token(5)]
    );
    // Queued and running ones are never expired, however old.
    assert_eq!(store.expire_submissions(i64::MAX).await.unwrap(), 2);
    assert_eq!(
        tokens(&store.get_submissions(&all).await.unwrap()),
        [token(4), token(5)]
    );
    assert_eq!(store.expire_submissions(i64::MAX).await.unwrap(), 0);
}

pub(super) async fn bad_submissions_are_invalid(c: Ctx) {
    let store = c.store.as_ref();
    let too_big = "x".repeat(MAX_SUBMISSION_REQUEST_BYTES + 1);
    for bad in [
        NewSubmission {
            token: String::new(),
            ..new(1, "usr-a")
        },
        NewSubmission {
            token: token(1).to_uppercase(),
            ..new(1, "usr-a")
        },
        NewSubmission {
            token: token(1).replace('-', ""),
            ..new(1, "usr-a")
        },
        NewSubmission {
            token: format!("{}0", token(1)),
            ..new(1, "usr-a")
        },
        new(1, ""),
        new(1, &"u".repeat(MAX_SUBMISSION_OWNER_BYTES + 1)),
        NewSubmission {
            request: too_big,
            ..new(1, "usr-a")
        },
    ] {
        let shown = NewSubmission {
            request: format!("{} bytes", bad.request.len()),
            ..bad.clone()
        };
        assert!(
            matches!(
                store.create_submissions(&[bad]).await,
                Err(Error::Invalid(_))
            ),
            "{shown:?} was accepted"
        );
    }
    assert!(store.unfinished_submissions().await.unwrap().is_empty());
    // At the bounds.
    let at_bounds = [
        NewSubmission {
            request: "x".repeat(MAX_SUBMISSION_REQUEST_BYTES),
            ..new(1, "usr-a")
        },
        new(2, &"u".repeat(MAX_SUBMISSION_OWNER_BYTES)),
        NewSubmission {
            request: String::new(),
            ..new(3, "usr-a")
        },
    ];
    store.create_submissions(&at_bounds).await.unwrap();
    let got = store
        .get_submissions(&[token(1), token(2), token(3)])
        .await
        .unwrap();
    assert_eq!(got[0].request.len(), MAX_SUBMISSION_REQUEST_BYTES);
    assert_eq!(got.len(), 3);
}

pub(super) async fn usage_counts_an_owners_submissions_and_bytes(c: Ctx) {
    let store = c.store.as_ref();
    assert_eq!(store.submission_usage("usr-u").await.unwrap(), (0, 0));
    store
        .create_submissions(&[new(40, "usr-u"), new(41, "usr-u"), new(42, "usr-v")])
        .await
        .unwrap();
    let requests = (new(40, "usr-u").request.len() + new(41, "usr-u").request.len()) as u64;
    let (n, before) = store.submission_usage("usr-u").await.unwrap();
    assert_eq!(n, 2);
    assert!(
        (requests..requests + 8).contains(&before),
        "{before} for {requests}"
    );
    assert!(store
        .finish_submission(&token(40), "{\"status_id\":3}")
        .await
        .unwrap());
    assert_eq!(
        store.submission_usage("usr-u").await.unwrap(),
        (2, before + 15)
    );
    assert_eq!(store.submission_usage("usr-v").await.unwrap().0, 1);
}

pub(super) async fn runners_are_stored_and_taken_by_one(c: Ctx) {
    let store = c.store.as_ref();
    let mine = NewSubmission {
        runner: Some("boot/1/1".into()),
        ..new(1, "usr-a")
    };
    store
        .create_submissions(&[mine, new(2, "usr-a")])
        .await
        .unwrap();
    let got = store.get_submissions(&[token(1), token(2)]).await.unwrap();
    assert_eq!(got[0].runner.as_deref(), Some("boot/1/1"));
    assert_eq!(got[1].runner, None);
    // Only from the runner it has now.
    assert!(!store
        .take_submission(&token(1), Some("boot/9/9"), "boot/2/2")
        .await
        .unwrap());
    assert!(!store
        .take_submission(&token(1), None, "boot/2/2")
        .await
        .unwrap());
    assert!(store
        .take_submission(&token(1), Some("boot/1/1"), "boot/2/2")
        .await
        .unwrap());
    assert!(store
        .take_submission(&token(2), None, "boot/2/2")
        .await
        .unwrap());
    let got = store.get_submissions(&[token(1), token(2)]).await.unwrap();
    assert!(got.iter().all(|s| s.runner.as_deref() == Some("boot/2/2")));
    // A done submission or an unknown token is not taken.
    store.finish_submission(&token(2), "{}").await.unwrap();
    assert!(!store
        .take_submission(&token(2), Some("boot/2/2"), "boot/3/3")
        .await
        .unwrap());
    assert!(!store
        .take_submission(&token(7), None, "boot/3/3")
        .await
        .unwrap());
    // Of eight replicas adopting one submission at once, one gets it.
    let wins = futures_join(8, |i| {
        let store = c.store.clone();
        async move {
            store
                .take_submission(&token(1), Some("boot/2/2"), &format!("boot/{i}/0"))
                .await
                .unwrap()
        }
    })
    .await;
    assert_eq!(wins.iter().filter(|w| **w).count(), 1, "{wins:?}");
}

/// Runs `n` futures made by `f` at once; their outputs in order.
pub(super) async fn futures_join<F, Fut, T>(n: usize, f: F) -> Vec<T>
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    let tasks: Vec<_> = (0..n).map(|i| tokio::spawn(f(i))).collect();
    let mut out = Vec::with_capacity(n);
    for t in tasks {
        out.push(t.await.expect("task"));
    }
    out
}
