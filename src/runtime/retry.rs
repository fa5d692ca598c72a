//! Exponential backoff with jitter for transient failures.
//!
//! Owns: the delay before attempt N. Must not: sleep (callers do, so shutdown can interrupt).

use std::time::Duration;

#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    pub initial: Duration,
    pub max: Duration,
    /// 0 = never give up.
    pub max_attempts: u32,
}

impl Backoff {
    /// Delay before retry number `attempt` (1-based): initial x 2^(n-1), capped, with ±20% jitter
    /// so a fleet of workers does not hammer a recovering broker in step.
    pub fn delay(&self, attempt: u32) -> Duration {
        let exp = self.initial.saturating_mul(1u32 << attempt.saturating_sub(1).min(20));
        let base = exp.min(self.max);
        let jitter = 0.8 + 0.4 * jitter_unit();
        base.mul_f64(jitter).min(self.max)
    }

    pub fn exhausted(&self, attempt: u32) -> bool {
        self.max_attempts > 0 && attempt >= self.max_attempts
    }
}

/// A cheap pseudo-random number in [0, 1) (no crypto needed for jitter).
fn jitter_unit() -> f64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    f64::from(nanos.wrapping_mul(2_654_435_761) % 1_000_000) / 1_000_000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_exponentially_within_jitter_and_caps() {
        let b = Backoff {
            initial: Duration::from_millis(100),
            max: Duration::from_secs(2),
            max_attempts: 3,
        };
        for (attempt, base) in [(1, 100), (2, 200), (3, 400), (4, 800)] {
            let d = b.delay(attempt).as_millis();
            assert!(d >= base * 8 / 10 && d <= base * 12 / 10, "attempt {attempt}: {d}ms");
        }
        assert!(b.delay(30) <= Duration::from_secs(2));
        assert!(!b.exhausted(2) && b.exhausted(3));
        assert!(!Backoff { max_attempts: 0, ..b }.exhausted(1000));
    }
}
