//! The store bus on PostgreSQL (see [`crate::bus`]): `NOTIFY` on one channel,
//! [`CHANNEL`], with the topic and the payload in a JSON payload; each process `LISTEN`s
//! on one connection of its pool (from its first subscription on, for as long as the
//! store is open) and fans notices out to its subscriptions by topic.
//!
//! A notice is delivered to the listeners that are listening when its transaction commits
//! (`pg_notify` outside a transaction commits at once). When the listening connection is
//! lost, sqlx connects again and listens again; notices in between are lost, so every
//! subscription is told [`Notice::Gap`](crate::Notice::Gap).

use serde::{Deserialize, Serialize};
use sqlx::postgres::PgListener;
use tokio::sync::broadcast;

use super::PostgresStore;
use crate::bus::{self, Event, Subscription};
use crate::error::Result;

/// The one channel every notice goes on.
const CHANNEL: &str = "sandlab_bus";

#[derive(Serialize, Deserialize)]
struct Wire {
    #[serde(rename = "t")]
    topic: String,
    #[serde(rename = "p")]
    payload: String,
}

pub(super) async fn publish(s: &PostgresStore, topic: &str, payload: &str) -> Result<()> {
    bus::validate(topic, payload)?;
    let wire = serde_json::to_string(&Wire {
        topic: topic.to_owned(),
        payload: payload.to_owned(),
    })
    .map_err(|e| crate::Error::Invalid(format!("A bus notice does not serialise: {e}")))?;
    sqlx::query("SELECT pg_notify($1, $2)")
        .bind(CHANNEL)
        .bind(wire)
        .execute(&s.pool)
        .await?;
    Ok(())
}

pub(super) async fn subscribe(s: &PostgresStore, topic: &str) -> Result<Subscription> {
    let mut feed = s.bus.lock().await;
    if let Some(tx) = feed.as_ref() {
        return Ok(Subscription::new(topic, tx.subscribe()));
    }
    let mut listener = PgListener::connect_with(&s.pool).await?;
    // `LISTEN` has returned: every notice committed from here on reaches the listener.
    listener.listen(CHANNEL).await?;
    let (tx, rx) = crate::bus::Hub::channel();
    *feed = Some(tx.clone());
    tokio::spawn(listen(s.clone(), listener, tx));
    Ok(Subscription::new(topic, rx))
}

/// Hands every notice the listener receives to `tx`, until the pool closes.
async fn listen(s: PostgresStore, mut listener: PgListener, tx: broadcast::Sender<Event>) {
    loop {
        match listener.try_recv().await {
            Ok(Some(n)) => match serde_json::from_str::<Wire>(n.payload()) {
                Ok(w) => {
                    let _ = tx.send(Event::Message(std::sync::Arc::new((w.topic, w.payload))));
                }
                Err(e) => {
                    tracing::warn!(error = %e, "ignoring a store bus notice that is not ours")
                }
            },
            // The connection was lost and made again: what came in between is gone.
            Ok(None) => {
                let _ = tx.send(Event::Gap);
            }
            Err(sqlx::Error::PoolClosed) => break,
            Err(e) => {
                tracing::warn!(error = %e, "the store bus's connection failed; trying again");
                let _ = tx.send(Event::Gap);
                // Pacing reconnection attempts against a database that is down.
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            }
        }
    }
    s.bus.clear(&tx).await;
}
