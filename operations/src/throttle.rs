//! Sign-in throttling: failed attempts counted per user name and per client address within a
//! window; once either count reaches its limit, further attempts are refused with 429 until the
//! window that began with the first failure has passed.
//!
//! Kept in memory: a restart forgets the counts, which costs an attacker a restart of the
//! appliance (audited) per window. Not for: throttling other requests.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Failures within one window.
#[derive(Clone, Copy, Debug)]
struct Failures {
    count: u32,
    since: Instant,
}

/// The sign-in throttle.
#[derive(Debug)]
pub struct LoginThrottle {
    window: Duration,
    max_per_user: u32,
    max_per_address: u32,
    counts: Mutex<Counts>,
}

#[derive(Debug, Default)]
struct Counts {
    by_user: HashMap<String, Failures>,
    by_address: HashMap<IpAddr, Failures>,
}

/// Why an attempt is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Refusal {
    /// "this user name" or "this address".
    pub what: &'static str,
    /// Seconds until attempts are accepted again.
    pub retry_after_s: u64,
}

impl LoginThrottle {
    /// A throttle with these limits.
    pub fn new(window: Duration, max_per_user: u32, max_per_address: u32) -> Self {
        Self {
            window,
            max_per_user: max_per_user.max(1),
            max_per_address: max_per_address.max(1),
            counts: Mutex::new(Counts::default()),
        }
    }

    fn counts(&self) -> std::sync::MutexGuard<'_, Counts> {
        // A panic while holding this lock cannot leave the maps inconsistent (each update is
        // one insert), so a poisoned lock is still usable.
        self.counts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Whether an attempt for `username` from `address` may proceed at `now`.
    pub fn check(&self, username: &str, address: IpAddr, now: Instant) -> Result<(), Refusal> {
        let counts = self.counts();
        let over = |failures: Option<&Failures>, max: u32| {
            failures.and_then(|f| {
                let elapsed = now.saturating_duration_since(f.since);
                (f.count >= max && elapsed < self.window)
                    .then(|| (self.window - elapsed).as_secs().max(1))
            })
        };
        if let Some(retry_after_s) = over(counts.by_address.get(&address), self.max_per_address) {
            return Err(Refusal {
                what: "this address",
                retry_after_s,
            });
        }
        let key = username.trim().to_ascii_lowercase();
        if let Some(retry_after_s) = over(counts.by_user.get(&key), self.max_per_user) {
            return Err(Refusal {
                what: "this user name",
                retry_after_s,
            });
        }
        Ok(())
    }

    /// Counts a failed attempt.
    pub fn record_failure(&self, username: &str, address: IpAddr, now: Instant) {
        let window = self.window;
        let bump = |failures: &mut Failures| {
            if now.saturating_duration_since(failures.since) >= window {
                *failures = Failures {
                    count: 0,
                    since: now,
                };
            }
            failures.count += 1;
        };
        let mut counts = self.counts();
        let fresh = Failures {
            count: 0,
            since: now,
        };
        bump(
            counts
                .by_user
                .entry(username.trim().to_ascii_lowercase())
                .or_insert(fresh),
        );
        bump(counts.by_address.entry(address).or_insert(fresh));
    }

    /// Forgets a user name's failures after a successful sign-in (the address keeps its count).
    pub fn record_success(&self, username: &str) {
        self.counts()
            .by_user
            .remove(&username.trim().to_ascii_lowercase());
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;

    const A: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));
    const B: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2));

    #[test]
    fn a_user_name_is_refused_after_its_limit_until_the_window_passes() {
        let throttle = LoginThrottle::new(Duration::from_secs(60), 3, 100);
        let t0 = Instant::now();
        for _ in 0..3 {
            assert!(throttle.check("Alice", A, t0).is_ok());
            throttle.record_failure("alice", A, t0);
        }
        let refusal = throttle.check("alice", B, t0).unwrap_err();
        assert_eq!(refusal.what, "this user name");
        assert_eq!(refusal.retry_after_s, 60);
        assert!(throttle.check("bob", B, t0).is_ok());
        assert!(
            throttle
                .check("alice", B, t0 + Duration::from_secs(61))
                .is_ok()
        );
    }

    #[test]
    fn an_address_is_refused_across_user_names() {
        let throttle = LoginThrottle::new(Duration::from_secs(60), 100, 2);
        let t0 = Instant::now();
        throttle.record_failure("a", A, t0);
        throttle.record_failure("b", A, t0);
        assert_eq!(throttle.check("c", A, t0).unwrap_err().what, "this address");
        assert!(throttle.check("c", B, t0).is_ok());
    }

    #[test]
    fn success_clears_the_user_names_count() {
        let throttle = LoginThrottle::new(Duration::from_secs(60), 2, 100);
        let t0 = Instant::now();
        throttle.record_failure("alice", A, t0);
        throttle.record_success("alice");
        throttle.record_failure("alice", A, t0);
        assert!(throttle.check("alice", A, t0).is_ok());
    }
}
