//! Token-bucket rate limits keyed by a string (a client address, a username, a user id).
//! Buckets refill continuously at `per_minute / 60` tokens a second up to `per_minute`;
//! time is monotonic. The map is bounded: past [`MAX_KEYS`] keys, full buckets are
//! dropped (a full bucket is the same as no bucket), then, if still too many, the oldest.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Most keys kept per limiter.
pub const MAX_KEYS: usize = 100_000;

pub struct RateLimiter {
    per_minute: f64,
    buckets: Mutex<HashMap<String, Bucket>>,
}

#[derive(Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

impl RateLimiter {
    pub fn new(per_minute: u32) -> RateLimiter {
        RateLimiter {
            per_minute: f64::from(per_minute.max(1)),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one token for `key`; `Err(wait)` says how long until one is free.
    pub fn check(&self, key: &str) -> Result<(), Duration> {
        self.check_at(key, Instant::now())
    }

    /// Whether `check` would succeed now, taking nothing.
    pub fn peek(&self, key: &str) -> Result<(), Duration> {
        self.take_at(key, Instant::now(), false)
    }

    /// Drops `key`'s bucket: it is full again.
    pub fn forget(&self, key: &str) {
        let mut map = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        map.remove(key);
    }

    fn check_at(&self, key: &str, now: Instant) -> Result<(), Duration> {
        self.take_at(key, now, true)
    }

    fn take_at(&self, key: &str, now: Instant, take: bool) -> Result<(), Duration> {
        let rate = self.per_minute / 60.0;
        // A poisoned lock only means another thread panicked mid-update of a counter.
        let mut map = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() >= MAX_KEYS && !map.contains_key(key) {
            prune(&mut map, now, rate, self.per_minute);
        }
        let b = map.entry(key.to_owned()).or_insert(Bucket {
            tokens: self.per_minute,
            at: now,
        });
        let elapsed = now.saturating_duration_since(b.at).as_secs_f64();
        b.tokens = (b.tokens + elapsed * rate).min(self.per_minute);
        b.at = now;
        if b.tokens >= 1.0 {
            if take {
                b.tokens -= 1.0;
            }
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - b.tokens) / rate))
        }
    }
}

fn prune(map: &mut HashMap<String, Bucket>, now: Instant, rate: f64, cap: f64) {
    map.retain(|_, b| b.tokens + now.saturating_duration_since(b.at).as_secs_f64() * rate < cap);
    if map.len() >= MAX_KEYS {
        let mut ages: Vec<(Instant, String)> = map.iter().map(|(k, b)| (b.at, k.clone())).collect();
        ages.sort();
        for (_, k) in ages.into_iter().take(MAX_KEYS / 10) {
            map.remove(&k);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_then_refill() {
        let rl = RateLimiter::new(6);
        let t0 = Instant::now();
        for _ in 0..6 {
            assert!(rl.check_at("a", t0).is_ok());
        }
        let wait = rl.check_at("a", t0).unwrap_err();
        assert!(
            wait > Duration::from_secs(9) && wait <= Duration::from_secs(10),
            "{wait:?}"
        );
        assert!(rl.check_at("b", t0).is_ok(), "keys are independent");
        assert!(rl.check_at("a", t0 + Duration::from_secs(10)).is_ok());
        assert!(rl.check_at("a", t0 + Duration::from_secs(10)).is_err());
    }

    #[test]
    fn peek_takes_nothing_and_forget_refills() {
        let rl = RateLimiter::new(2);
        for _ in 0..5 {
            assert!(rl.peek("a").is_ok());
        }
        assert!(rl.check("a").is_ok() && rl.check("a").is_ok());
        assert!(rl.peek("a").is_err() && rl.check("a").is_err());
        rl.forget("a");
        assert!(rl.peek("a").is_ok());
    }

    #[test]
    fn the_map_stays_bounded() {
        let rl = RateLimiter::new(1);
        let t0 = Instant::now();
        for i in 0..(MAX_KEYS + 10) {
            let _ = rl.check_at(&i.to_string(), t0);
        }
        assert!(rl.buckets.lock().unwrap().len() <= MAX_KEYS);
    }
}
