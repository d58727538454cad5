//! Per-user rate limiting: a token bucket per user id, refilled at
//! `RATE_LIMIT_PER_SEC` up to `RATE_LIMIT_BURST`.

use std::{
    collections::HashMap,
    sync::Mutex,
    time::{Duration, Instant},
};

pub struct RateLimiter {
    per_sec: f64,
    burst: f64,
    buckets: Mutex<HashMap<String, Bucket>>,
}

struct Bucket {
    tokens: f64,
    at: Instant,
}

impl RateLimiter {
    /// `per_sec` of 0 turns limiting off.
    pub fn new(per_sec: f64, burst: u32) -> Self {
        Self {
            per_sec,
            burst: f64::from(burst.max(1)),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one token for `user`, or says how long until one is there.
    pub fn check(&self, user: &str) -> Result<(), Duration> {
        if self.per_sec <= 0.0 {
            return Ok(());
        }
        let now = Instant::now();
        let mut buckets = self.buckets.lock().expect("rate limiter");
        if buckets.len() > 100_000 {
            // Forget users whose buckets are full again anyway.
            let full_after = Duration::from_secs_f64(self.burst / self.per_sec);
            buckets.retain(|_, b| now.duration_since(b.at) < full_after);
        }
        let bucket = buckets.entry(user.to_owned()).or_insert(Bucket {
            tokens: self.burst,
            at: now,
        });
        let refill = now.duration_since(bucket.at).as_secs_f64() * self.per_sec;
        bucket.tokens = (bucket.tokens + refill).min(self.burst);
        bucket.at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64(
                (1.0 - bucket.tokens) / self.per_sec,
            ))
        }
    }
}

/// How many request bodies each user may be sending at once: a caller's
/// stalled or slow bodies hold at most this many buffers (of up to
/// `BODY_LIMIT_BYTES` each), and never another user's.
pub const BODIES_PER_USER: usize = 8;

/// How many pulls each user may have running at once (each holds a database
/// connection and up to a page in memory).
pub const PULLS_PER_USER: usize = 4;

/// Things in flight per user, up to a limit each.
pub struct InFlight {
    limit: usize,
    open: Mutex<HashMap<String, usize>>,
}

/// One thing in flight; the count goes down when it is dropped.
pub struct Started<'a> {
    of: &'a InFlight,
    user: String,
}

impl InFlight {
    pub fn new(limit: usize) -> Self {
        Self {
            limit,
            open: Mutex::new(HashMap::new()),
        }
    }

    /// Counts one more for `user`, or `None` when they are at the limit.
    pub fn start(&self, user: &str) -> Option<Started<'_>> {
        let mut open = self.open.lock().expect("in flight");
        let n = open.entry(user.to_owned()).or_insert(0);
        if *n >= self.limit {
            return None;
        }
        *n += 1;
        Some(Started {
            of: self,
            user: user.to_owned(),
        })
    }
}

impl Drop for Started<'_> {
    fn drop(&mut self) {
        let mut open = self.of.open.lock().expect("in flight");
        if let Some(n) = open.get_mut(&self.user) {
            *n -= 1;
            if *n == 0 {
                open.remove(&self.user);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_empties_and_refills() {
        let l = RateLimiter::new(10.0, 3);
        for _ in 0..3 {
            assert!(l.check("a").is_ok());
        }
        let wait = l.check("a").unwrap_err();
        assert!(wait <= Duration::from_millis(100) && wait > Duration::ZERO);
        assert!(l.check("b").is_ok(), "per user");
        std::thread::sleep(Duration::from_millis(120));
        assert!(l.check("a").is_ok());
        assert!(RateLimiter::new(0.0, 1).check("a").is_ok());
    }

    #[test]
    fn bodies_per_user_are_counted_and_released() {
        let u = InFlight::new(BODIES_PER_USER);
        let held: Vec<_> = (0..BODIES_PER_USER)
            .map(|_| u.start("a").unwrap())
            .collect();
        assert!(u.start("a").is_none());
        assert!(u.start("b").is_some(), "per user");
        drop(held);
        assert!(u.start("a").is_some());
        assert!(u.open.lock().unwrap().len() <= 1, "no entry left behind");
    }
}
