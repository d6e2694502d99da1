//! The store bus: short notices between the processes that share one store (control-plane
//! replicas), by topic.
//!
//! [`Store::publish`](crate::Store::publish) sends a payload on a topic to every process
//! subscribed to it at that moment; [`Store::subscribe`](crate::Store::subscribe) returns a
//! [`Subscription`] that yields each later notice of its topic as a [`Notice::Message`],
//! in the order published. Delivery is at most once and only to subscriptions that exist
//! when the notice is published: a subscriber that could have missed notices (it fell
//! behind, or the store's connection was lost for a while) gets a [`Notice::Gap`] instead
//! and re-reads whatever state the notices were about. Notices are not durable state; they
//! say "look again" faster than polling would.
//!
//! Inside one process a single feed from the database (PostgreSQL: `LISTEN` on one
//! channel, `postgres/bus.rs`; SQLite: a poll of the `notices` table, `sqlite/bus.rs`) fans
//! out to every subscription through [`Hub`]; each subscription keeps only its topic's.

use std::sync::Arc;

use tokio::sync::broadcast;

use crate::error::{Error, Result};

/// The longest topic, in bytes.
pub const MAX_TOPIC_BYTES: usize = 200;
/// The longest payload, in bytes (PostgreSQL's `NOTIFY` carries under 8000 with the topic).
pub const MAX_PAYLOAD_BYTES: usize = 7000;
/// Notices a subscription may fall behind by before it is told [`Notice::Gap`].
const BACKLOG: usize = 1024;

/// What a [`Subscription`] yields.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Notice {
    /// A payload published on the subscription's topic.
    Message(String),
    /// Notices may have been missed here: re-read the state they would have announced.
    Gap,
}

/// What the feed hands every subscription: a notice of any topic, or a gap.
#[derive(Clone, Debug)]
pub(crate) enum Event {
    /// `(topic, payload)`.
    Message(Arc<(String, String)>),
    Gap,
}

/// Notices of one topic, from the moment [`Store::subscribe`](crate::Store::subscribe)
/// returned it (a notice published just before may come too: notices mean "look again",
/// so one more is harmless). Dropping it unsubscribes.
pub struct Subscription {
    topic: String,
    rx: broadcast::Receiver<Event>,
}

impl Subscription {
    pub(crate) fn new(topic: &str, rx: broadcast::Receiver<Event>) -> Subscription {
        Subscription {
            topic: topic.to_owned(),
            rx,
        }
    }

    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// The next notice of this topic; `None` once the store is closed.
    pub async fn recv(&mut self) -> Option<Notice> {
        loop {
            match self.rx.recv().await {
                Ok(Event::Message(m)) if m.0 == self.topic => {
                    return Some(Notice::Message(m.1.clone()))
                }
                Ok(Event::Message(_)) => continue,
                Ok(Event::Gap) | Err(broadcast::error::RecvError::Lagged(_)) => {
                    return Some(Notice::Gap)
                }
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    }
}

/// The fan-out of one process: the sender its feed writes to, while the feed runs.
#[derive(Default)]
pub(crate) struct Hub {
    feed: tokio::sync::Mutex<Option<broadcast::Sender<Event>>>,
}

impl Hub {
    /// The feed's sender, locked: `Some` while a feed runs. A caller that finds none starts
    /// a feed (under the lock, so only one does) and stores its sender here.
    pub(crate) async fn lock(
        &self,
    ) -> tokio::sync::MutexGuard<'_, Option<broadcast::Sender<Event>>> {
        self.feed.lock().await
    }

    /// A sender for a new feed and the first subscription's receiver.
    pub(crate) fn channel() -> (broadcast::Sender<Event>, broadcast::Receiver<Event>) {
        broadcast::channel(BACKLOG)
    }

    /// Whether the feed writing to `tx` may stop: nobody listens. Clears the hub then,
    /// under its lock, so a subscriber arriving at the same moment starts a new feed.
    pub(crate) async fn idle(&self, tx: &broadcast::Sender<Event>) -> bool {
        let mut feed = self.feed.lock().await;
        if tx.receiver_count() > 0 {
            return false;
        }
        if feed.as_ref().is_some_and(|f| f.same_channel(tx)) {
            *feed = None;
        }
        true
    }

    /// Forgets the feed writing to `tx` (it failed); the next subscriber starts another.
    pub(crate) async fn clear(&self, tx: &broadcast::Sender<Event>) {
        let mut feed = self.feed.lock().await;
        if feed.as_ref().is_some_and(|f| f.same_channel(tx)) {
            *feed = None;
        }
    }
}

/// `Invalid` for an empty or long topic or a long payload.
pub(crate) fn validate(topic: &str, payload: &str) -> Result<()> {
    if topic.is_empty() || topic.len() > MAX_TOPIC_BYTES {
        return Err(Error::Invalid(format!(
            "A bus topic has 1 to {MAX_TOPIC_BYTES} bytes"
        )));
    }
    if payload.len() > MAX_PAYLOAD_BYTES {
        return Err(Error::Invalid(format!(
            "A bus notice has at most {MAX_PAYLOAD_BYTES} bytes"
        )));
    }
    Ok(())
}
