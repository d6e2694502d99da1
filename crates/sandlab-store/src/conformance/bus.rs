//! The store bus: notices reach the subscriptions of their topic that exist when they are
//! published, in order; one that falls behind is told of a gap; bounds are checked.

use std::time::Duration;

use super::Ctx;
use crate::{Error, Notice, Subscription};

/// The next notice, or a panic after a while.
async fn next(sub: &mut Subscription) -> Notice {
    tokio::time::timeout(Duration::from_secs(10), sub.recv())
        .await
        .unwrap_or_else(|_| panic!("no notice on {} within 10 s", sub.topic()))
        .expect("the bus is open")
}

fn msg(text: &str) -> Notice {
    Notice::Message(text.to_owned())
}

pub(super) async fn notices_reach_the_subscribers_of_their_topic_in_order(c: Ctx) {
    let store = c.store.as_ref();
    let mut a = store.subscribe("lab-session:ls-1").await.unwrap();
    let mut b = store.subscribe("lab-session:ls-1").await.unwrap();
    let mut other = store.subscribe("lab-session:ls-2").await.unwrap();
    store.publish("lab-session:ls-1", "one").await.unwrap();
    store.publish("lab-session:ls-2", "x").await.unwrap();
    store.publish("lab-session:ls-1", "two").await.unwrap();
    store.publish("nobody-listens", "y").await.unwrap();
    let payload = "é\n\"{}\" ".repeat(100);
    store.publish("lab-session:ls-1", &payload).await.unwrap();
    for sub in [&mut a, &mut b] {
        assert_eq!(next(sub).await, msg("one"));
        assert_eq!(next(sub).await, msg("two"));
        assert_eq!(next(sub).await, msg(&payload));
    }
    assert_eq!(next(&mut other).await, msg("x"));
    // A dropped subscription does not keep the others from getting theirs.
    drop(a);
    store.publish("lab-session:ls-1", "three").await.unwrap();
    assert_eq!(next(&mut b).await, msg("three"));
}

pub(super) async fn only_notices_published_after_subscribing_arrive(c: Ctx) {
    let store = c.store.as_ref();
    store.publish("t", "before").await.unwrap();
    let mut sub = store.subscribe("t").await.unwrap();
    store.publish("t", "after").await.unwrap();
    assert_eq!(next(&mut sub).await, msg("after"));
    // After every subscription went, a new one gets what is published after it (and
    // perhaps a notice from just before, which a subscriber must take as harmless).
    drop(sub);
    store.publish("t", "between").await.unwrap();
    let mut again = store.subscribe("t").await.unwrap();
    store.publish("t", "again").await.unwrap();
    let mut got = next(&mut again).await;
    if got == msg("between") {
        got = next(&mut again).await;
    }
    assert_eq!(got, msg("again"));
}

pub(super) async fn a_subscriber_that_falls_behind_is_told_of_a_gap(c: Ctx) {
    let store = c.store.as_ref();
    let mut slow = store.subscribe("t").await.unwrap();
    // A second subscription tells when the feed has handed every notice on: a store
    // that delivers late (SQLite polls every 50 ms) must not be read while it catches
    // up, or `slow` never falls behind.
    let mut probe = store.subscribe("probe").await.unwrap();
    let n = 1500;
    for i in 0..n {
        store.publish("t", &i.to_string()).await.unwrap();
    }
    store.publish("probe", "done").await.unwrap();
    while next(&mut probe).await != msg("done") {}
    let mut gap = false;
    loop {
        match next(&mut slow).await {
            Notice::Gap => gap = true,
            Notice::Message(m) if m == (n - 1).to_string() => break,
            Notice::Message(_) => {}
        }
    }
    assert!(gap, "{n} unread notices and no gap");
}

pub(super) async fn bad_topics_and_payloads_are_invalid(c: Ctx) {
    let store = c.store.as_ref();
    let long_topic = "t".repeat(crate::bus::MAX_TOPIC_BYTES + 1);
    let long_payload = "p".repeat(crate::bus::MAX_PAYLOAD_BYTES + 1);
    for (topic, payload) in [("", "x"), (long_topic.as_str(), "x"), ("t", &long_payload)] {
        assert!(
            matches!(store.publish(topic, payload).await, Err(Error::Invalid(_))),
            "topic of {} bytes, payload of {} accepted",
            topic.len(),
            payload.len()
        );
    }
    let at_bounds_topic = "t".repeat(crate::bus::MAX_TOPIC_BYTES);
    let at_bounds = "p".repeat(crate::bus::MAX_PAYLOAD_BYTES);
    let mut sub = store.subscribe(&at_bounds_topic).await.unwrap();
    store.publish(&at_bounds_topic, &at_bounds).await.unwrap();
    assert_eq!(next(&mut sub).await, msg(&at_bounds));
}
