//! When and how long to wait before trying a request again.

use std::time::{Duration, Instant, SystemTime};

/// Retries with exponential backoff and full jitter, within a total time budget.
///
/// Retried: connection errors, timeouts, 5xx and 429; never other 4xx, which retrying
/// cannot fix. A `Retry-After` from the registry replaces the computed wait.
#[derive(Clone, Debug)]
pub struct RetryPolicy {
    /// Attempts in all, the first included.
    pub max_attempts: u32,
    /// Time from the first attempt after which no new attempt starts.
    pub budget: Duration,
    /// Wait before the second attempt; doubles each time, up to `max_delay`.
    pub base_delay: Duration,
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 10,
            budget: Duration::from_secs(120),
            base_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(10),
        }
    }
}

/// The retry state of one operation.
#[derive(Debug)]
pub struct Attempts {
    policy: RetryPolicy,
    started: Instant,
    made: u32,
}

impl Attempts {
    pub fn new(policy: &RetryPolicy) -> Attempts {
        Attempts {
            policy: policy.clone(),
            started: Instant::now(),
            made: 0,
        }
    }

    /// Counts an attempt about to be made.
    pub fn start(&mut self) {
        self.made += 1;
    }

    pub fn made(&self) -> u32 {
        self.made
    }

    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// How long to wait before the next attempt, or `None` when attempts or budget ran out.
    /// `retry_after` is the registry's own wish, which wins over backoff.
    pub fn next_delay(&self, retry_after: Option<Duration>) -> Option<Duration> {
        if self.made >= self.policy.max_attempts {
            return None;
        }
        let delay = retry_after.unwrap_or_else(|| {
            let exp = self
                .policy
                .base_delay
                .saturating_mul(1 << (self.made.saturating_sub(1)).min(16));
            let cap = exp.min(self.policy.max_delay);
            // Full jitter: clients that failed together do not retry together.
            cap.mul_f64(0.5 + fastrand::f64() / 2.0)
        });
        (self.started.elapsed() + delay <= self.policy.budget).then_some(delay)
    }
}

/// Parses a `Retry-After` value: seconds, or an HTTP date.
pub fn parse_retry_after(value: &str) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let date = httpdate(value)?;
    Some(date.duration_since(SystemTime::now()).unwrap_or_default())
}

/// IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`), the only form servers must send.
fn httpdate(value: &str) -> Option<SystemTime> {
    let parts: Vec<&str> = value.split_whitespace().collect();
    let [_, day, month, year, time, "GMT"] = parts.as_slice() else {
        return None;
    };
    let month = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ]
    .iter()
    .position(|m| m == month)? as i64
        + 1;
    let (day, year): (i64, i64) = (day.parse().ok()?, year.parse().ok()?);
    let hms: Vec<i64> = time
        .split(':')
        .map(|p| p.parse().ok())
        .collect::<Option<_>>()?;
    let [h, m, s] = hms.as_slice() else {
        return None;
    };
    // Days from civil (Howard Hinnant's algorithm).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + h * 3600 + m * 60 + s;
    Some(SystemTime::UNIX_EPOCH + Duration::from_secs(u64::try_from(secs).ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_forms() {
        assert_eq!(parse_retry_after("3"), Some(Duration::from_secs(3)));
        assert_eq!(
            httpdate("Sun, 06 Nov 1994 08:49:37 GMT"),
            Some(SystemTime::UNIX_EPOCH + Duration::from_secs(784_111_777))
        );
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT"),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon"), None);
    }

    #[test]
    fn attempts_and_budget_run_out() {
        let policy = RetryPolicy {
            max_attempts: 3,
            budget: Duration::from_secs(60),
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(1),
        };
        let mut attempts = Attempts::new(&policy);
        attempts.start();
        let first = attempts.next_delay(None).unwrap();
        assert!(first >= Duration::from_millis(50) && first <= Duration::from_millis(100));
        attempts.start();
        assert!(attempts.next_delay(None).unwrap() <= Duration::from_millis(200));
        attempts.start();
        assert_eq!(attempts.next_delay(None), None, "three attempts made");
        let tight = RetryPolicy {
            budget: Duration::from_secs(1),
            ..policy
        };
        let mut attempts = Attempts::new(&tight);
        attempts.start();
        assert_eq!(
            attempts.next_delay(Some(Duration::from_secs(5))),
            None,
            "over budget"
        );
    }
}
