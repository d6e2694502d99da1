//! The store bus on SQLite (see [`crate::bus`]): a notice is a row of `notices`; every
//! process on the file with a subscriber polls the rows after the last it read, every
//! 50 ms, and stops polling once its last subscription is dropped.
//!
//! Rows are numbered by `AUTOINCREMENT`, in commit order (SQLite commits one writer at a
//! time and a rolled-back insert gives its number back), so a poll that finds a number
//! skipped knows rows were pruned before it read them and reports a gap. A publish prunes
//! rows older than [`KEEP_MS`].

use std::time::Duration;

use super::SqliteStore;
use crate::bus::{self, Event, Hub, Subscription};
use crate::error::Result;

/// How often a subscribed process looks for new notices.
const POLL: Duration = Duration::from_millis(50);
/// How long a notice stays for pollers to read.
const KEEP_MS: i64 = 60_000;
/// Most notices read in one poll.
const BATCH: i64 = 500;

pub(super) async fn publish(s: &SqliteStore, topic: &str, payload: &str) -> Result<()> {
    bus::validate(topic, payload)?;
    let now = s.now();
    let mut tx = s.begin_write().await?;
    sqlx::query("INSERT INTO notices (topic, payload, at) VALUES (?, ?, ?)")
        .bind(topic)
        .bind(payload)
        .bind(now)
        .execute(&mut *tx)
        .await?;
    sqlx::query("DELETE FROM notices WHERE at < ?")
        .bind(now.saturating_sub(KEEP_MS))
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(())
}

pub(super) async fn subscribe(s: &SqliteStore, topic: &str) -> Result<Subscription> {
    let mut feed = s.bus.lock().await;
    if let Some(tx) = feed.as_ref() {
        return Ok(Subscription::new(topic, tx.subscribe()));
    }
    // The newest number ever given out (kept by AUTOINCREMENT even when the rows are gone):
    // everything published after this returns is numbered above it.
    let (last,): (i64,) = sqlx::query_as(
        "SELECT COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'notices'), 0)",
    )
    .fetch_one(&s.writer)
    .await?;
    let (tx, rx) = Hub::channel();
    *feed = Some(tx.clone());
    tokio::spawn(poll(s.clone(), tx, last));
    Ok(Subscription::new(topic, rx))
}

/// Reads new notices every [`POLL`] into `tx` until nobody subscribes.
async fn poll(s: SqliteStore, tx: tokio::sync::broadcast::Sender<Event>, mut last: i64) {
    let hub: &Hub = &s.bus;
    loop {
        tokio::time::sleep(POLL).await;
        if hub.idle(&tx).await {
            return;
        }
        let rows: std::result::Result<Vec<(i64, String, String)>, _> = sqlx::query_as(
            "SELECT seq, topic, payload FROM notices WHERE seq > ? ORDER BY seq LIMIT ?",
        )
        .bind(last)
        .bind(BATCH)
        .fetch_all(&s.reader)
        .await;
        let rows = match rows {
            Ok(rows) => rows,
            Err(e) => {
                // The rows stay a while: the next poll reads them, or sees the gap.
                tracing::warn!(error = %e, "could not read the store bus");
                continue;
            }
        };
        for (seq, topic, payload) in rows {
            // A row pruned before it was read (anywhere in the batch: a row's time is
            // taken before its insert waits for the write lock, so the pruning by time
            // can leave a later row and take an earlier one).
            if seq > last + 1 {
                let _ = tx.send(Event::Gap);
            }
            last = seq;
            let _ = tx.send(Event::Message(std::sync::Arc::new((topic, payload))));
        }
    }
}
