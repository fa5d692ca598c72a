//! A circuit breaker per connection: after `threshold` consecutive failed calls it stays open
//! for `open` and refuses calls without making them; then it lets calls through again, and the
//! first failure opens it at once (half-open).

use std::sync::Mutex;
use std::time::{Duration, Instant};

pub struct Breaker {
    threshold: u32,
    open: Duration,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    failures: u32,
    open_until: Option<Instant>,
    /// Open before: one more failure re-opens it.
    tripped: bool,
}

impl Breaker {
    pub fn new(threshold: u32, open: Duration) -> Self {
        Self {
            threshold: threshold.max(1),
            open,
            state: Mutex::default(),
        }
    }

    /// How much longer calls are refused, if the breaker is open.
    pub fn open_for(&self) -> Option<Duration> {
        let s = self.state.lock().ok()?;
        let until = s.open_until?;
        until.checked_duration_since(Instant::now()).filter(|d| !d.is_zero())
    }

    pub fn success(&self) {
        if let Ok(mut s) = self.state.lock() {
            *s = State::default();
        }
    }

    /// Refuses calls for `wait` at least (the API's `Retry-After`), without counting a failure.
    pub fn hold(&self, wait: Duration) {
        if let Ok(mut s) = self.state.lock() {
            let until = Instant::now() + wait;
            if s.open_until.is_none_or(|u| u < until) {
                s.open_until = Some(until);
            }
        }
    }

    pub fn failure(&self) {
        if let Ok(mut s) = self.state.lock() {
            s.failures += 1;
            if s.tripped || s.failures >= self.threshold {
                s.open_until = Some(Instant::now() + self.open);
                s.tripped = true;
                s.failures = 0;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_after_the_threshold_and_again_at_the_first_failure_after_it() {
        let b = Breaker::new(3, Duration::from_millis(40));
        b.failure();
        b.failure();
        assert!(b.open_for().is_none());
        b.failure();
        assert!(b.open_for().is_some(), "three in a row open it");
        std::thread::sleep(Duration::from_millis(50));
        assert!(b.open_for().is_none(), "a call goes through after the open period");
        b.failure();
        assert!(b.open_for().is_some(), "half-open: one failure re-opens");
        std::thread::sleep(Duration::from_millis(50));
        b.success();
        b.failure();
        assert!(b.open_for().is_none(), "a success closes it");
    }
}
