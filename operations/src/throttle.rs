//! Sign-in throttling: failed password entries counted per user name *and* client address
//! together within a window; once a pair's count reaches its limit, further attempts for that
//! user name from that address are refused with 429 until the window that began with the pair's
//! first failure has passed, or until a lab admin unlocks the user name.
//!
//! Keyed on the pair so that nobody can lock another person out from elsewhere: failures from an
//! attacker's address lock only that address out of the account, and a per-address count no
//! longer locks out everyone behind one proxy. Guessing stays slow: each attempt costs an argon2
//! verification, every refused and throttled attempt is audited with its address, and an
//! attacker gets `max_failures` guesses per window per address.
//!
//! Kept in memory: a restart forgets the counts, which costs an attacker a restart of the
//! appliance (audited) per window. Pairs whose window has passed are dropped once the table holds
//! [`PRUNE_ABOVE`] pairs, so addresses that come and go do not grow it without bound.
//! Not for: throttling other requests.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Above this many counted pairs, a new failure first drops the pairs whose window has passed.
pub const PRUNE_ABOVE: usize = 10_000;

/// Failures within one window.
#[derive(Clone, Copy, Debug)]
struct Failures {
    count: u32,
    since: Instant,
}

/// A user name (trimmed, lower case: sign-in ignores case) and the address the attempts came from.
type Pair = (String, IpAddr);

/// The sign-in throttle.
#[derive(Debug)]
pub struct LoginThrottle {
    window: Duration,
    max_failures: u32,
    counts: Mutex<HashMap<Pair, Failures>>,
}

/// Why an attempt is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Refusal {
    /// What is throttled: "this user name from this address".
    pub what: &'static str,
    /// Seconds until attempts are accepted again.
    pub retry_after_s: u64,
}

/// What the throttle holds against a user name from one address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lockout {
    /// The client address.
    pub address: IpAddr,
    /// Failures counted in the current window.
    pub failures: u32,
    /// Whether attempts from this address are refused now.
    pub locked: bool,
}

fn key(username: &str, address: IpAddr) -> Pair {
    (username.trim().to_ascii_lowercase(), address)
}

impl LoginThrottle {
    /// A throttle allowing `max_failures` failed attempts per user name and address within
    /// `window`.
    pub fn new(window: Duration, max_failures: u32) -> Self {
        Self {
            window,
            max_failures: max_failures.max(1),
            counts: Mutex::new(HashMap::new()),
        }
    }

    /// The one sign-in throttle policy, as the configuration's `[http]` section sets it
    /// (`login_throttle_minutes`, `max_failed_logins_per_user`): the web face and the command
    /// line's signatures count failures per user name and address under the same limits.
    /// `max_failed_logins_per_address` is still read by the configuration (files of earlier
    /// versions load) but no longer counted: it locked out everyone behind one proxy.
    pub fn configured(http: &appliance::config::HttpConfig) -> Self {
        Self::new(
            Duration::from_secs(u64::from(http.login_throttle_minutes) * 60),
            http.max_failed_logins_per_user,
        )
    }

    fn counts(&self) -> std::sync::MutexGuard<'_, HashMap<Pair, Failures>> {
        // A panic while holding this lock cannot leave the map inconsistent (each update is one
        // insert or removal), so a poisoned lock is still usable.
        self.counts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn current(&self, failures: &Failures, now: Instant) -> bool {
        now.saturating_duration_since(failures.since) < self.window
    }

    /// Whether an attempt for `username` from `address` may proceed at `now`.
    pub fn check(&self, username: &str, address: IpAddr, now: Instant) -> Result<(), Refusal> {
        let counts = self.counts();
        match counts.get(&key(username, address)) {
            Some(failures)
                if failures.count >= self.max_failures && self.current(failures, now) =>
            {
                let elapsed = now.saturating_duration_since(failures.since);
                Err(Refusal {
                    what: "this user name from this address",
                    retry_after_s: (self.window - elapsed).as_secs().max(1),
                })
            }
            _ => Ok(()),
        }
    }

    /// Counts a failed attempt.
    pub fn record_failure(&self, username: &str, address: IpAddr, now: Instant) {
        let mut counts = self.counts();
        if counts.len() >= PRUNE_ABOVE {
            counts
                .retain(|_, failures| now.saturating_duration_since(failures.since) < self.window);
        }
        let failures = counts.entry(key(username, address)).or_insert(Failures {
            count: 0,
            since: now,
        });
        if !self.current(failures, now) {
            *failures = Failures {
                count: 0,
                since: now,
            };
        }
        failures.count += 1;
    }

    /// Forgets a user name's failures from `address` after a successful attempt from it.
    pub fn record_success(&self, username: &str, address: IpAddr) {
        self.counts().remove(&key(username, address));
    }

    /// What is counted against `username` now, per address (for the admin's unlock).
    pub fn lockouts(&self, username: &str, now: Instant) -> Vec<Lockout> {
        let name = key(username, IpAddr::from([0, 0, 0, 0])).0;
        let mut found: Vec<Lockout> = self
            .counts()
            .iter()
            .filter(|((user, _), failures)| *user == name && self.current(failures, now))
            .map(|((_, address), failures)| Lockout {
                address: *address,
                failures: failures.count,
                locked: failures.count >= self.max_failures,
            })
            .collect();
        found.sort_by_key(|lockout| lockout.address);
        found
    }

    /// Forgets every failure counted against `username`, from every address (a lab admin's
    /// unlock); returns what was forgotten that still counted at `now`.
    pub fn unlock(&self, username: &str, now: Instant) -> Vec<Lockout> {
        let forgotten = self.lockouts(username, now);
        let name = key(username, IpAddr::from([0, 0, 0, 0])).0;
        self.counts().retain(|(user, _), _| *user != name);
        forgotten
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;

    const A: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));
    const B: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2));

    #[test]
    fn a_user_name_is_refused_from_an_address_after_its_limit_until_the_window_passes() {
        let throttle = LoginThrottle::new(Duration::from_secs(60), 3);
        let t0 = Instant::now();
        for _ in 0..3 {
            assert!(throttle.check("Alice", A, t0).is_ok());
            throttle.record_failure("alice", A, t0);
        }
        let refusal = throttle.check(" ALICE", A, t0).unwrap_err();
        assert_eq!(refusal.what, "this user name from this address");
        assert_eq!(refusal.retry_after_s, 60);
        assert!(throttle.check("bob", A, t0).is_ok());
        assert!(
            throttle
                .check("alice", A, t0 + Duration::from_secs(61))
                .is_ok()
        );
    }

    #[test]
    fn failures_from_elsewhere_do_not_lock_the_user_out_of_their_own_address() {
        // Before issue 16, five failures from anywhere locked the account everywhere.
        let throttle = LoginThrottle::new(Duration::from_secs(60), 5);
        let t0 = Instant::now();
        for _ in 0..50 {
            throttle.record_failure("admin", B, t0);
        }
        assert!(throttle.check("admin", B, t0).is_err());
        assert!(throttle.check("admin", A, t0).is_ok());
    }

    #[test]
    fn many_user_names_failing_from_one_address_lock_out_none_of_the_others() {
        // Before issue 16, 20 failures from one address (a ward behind one proxy) locked out
        // everyone signing in from it.
        let throttle = LoginThrottle::new(Duration::from_secs(60), 5);
        let t0 = Instant::now();
        for n in 0..100 {
            throttle.record_failure(&format!("user{n}"), A, t0);
        }
        assert!(throttle.check("claire", A, t0).is_ok());
        assert!(throttle.check("user7", A, t0).is_ok());
    }

    #[test]
    fn success_clears_only_its_own_address() {
        let throttle = LoginThrottle::new(Duration::from_secs(60), 2);
        let t0 = Instant::now();
        throttle.record_failure("alice", A, t0);
        throttle.record_failure("alice", B, t0);
        throttle.record_success("alice", A);
        throttle.record_failure("alice", A, t0);
        assert!(throttle.check("alice", A, t0).is_ok());
        throttle.record_failure("alice", B, t0);
        assert!(throttle.check("alice", B, t0).is_err());
    }

    #[test]
    fn an_unlock_forgets_the_user_name_from_every_address_and_says_what_it_forgot() {
        let throttle = LoginThrottle::new(Duration::from_secs(60), 2);
        let t0 = Instant::now();
        for address in [A, B, A, B] {
            throttle.record_failure("alice", address, t0);
        }
        throttle.record_failure("bob", A, t0);
        let forgotten = throttle.unlock("Alice", t0);
        assert_eq!(
            forgotten,
            vec![
                Lockout {
                    address: A,
                    failures: 2,
                    locked: true
                },
                Lockout {
                    address: B,
                    failures: 2,
                    locked: true
                },
            ]
        );
        assert!(throttle.check("alice", A, t0).is_ok());
        assert!(throttle.check("alice", B, t0).is_ok());
        assert_eq!(throttle.lockouts("bob", t0).len(), 1);
        assert!(throttle.unlock("alice", t0).is_empty());
    }

    #[test]
    fn pairs_whose_window_passed_are_dropped_when_the_table_is_full() {
        let throttle = LoginThrottle::new(Duration::from_secs(60), 5);
        let t0 = Instant::now();
        for n in 0..PRUNE_ABOVE {
            throttle.record_failure(&format!("u{n}"), A, t0);
        }
        throttle.record_failure("late", A, t0 + Duration::from_secs(61));
        assert_eq!(throttle.counts().len(), 1);
    }
}
