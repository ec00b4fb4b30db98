//! The smoke gate: HTTP GETs against a stage's endpoint until one answers as expected, at
//! most `1 + retries` attempts, all within `within_secs`.

use std::time::{Duration, Instant};

use wharf_promote::{SmokeAttempt, SmokeGate};

/// Pause between attempts (shortened to what is left of the time limit).
const PAUSE: Duration = Duration::from_secs(1);

pub fn check(gate: &SmokeGate) -> Vec<SmokeAttempt> {
    wharf_registry::install_crypto_provider();
    let within = Duration::from_secs(gate.within_secs.max(1));
    let deadline = Instant::now() + within;
    let attempts = gate.retries.saturating_add(1);
    // Each attempt gets an equal share of the limit, so the last one still has time.
    let per_attempt = (within / attempts).max(Duration::from_millis(500));
    let mut out = Vec::new();
    // One client; each request gets the time that is left as its own timeout.
    let client = match reqwest::blocking::Client::builder()
        .connect_timeout(per_attempt)
        .build()
    {
        Ok(client) => client,
        Err(e) => {
            return vec![SmokeAttempt {
                status: None,
                error: Some(format!("no HTTP client: {e}")),
                elapsed_ms: 0,
            }];
        }
    };
    for attempt in 0..attempts {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        if attempt > 0 {
            std::thread::sleep(PAUSE.min(left / 2));
        }
        let timeout = per_attempt.min(deadline.saturating_duration_since(Instant::now()));
        let started = Instant::now();
        let result = client.get(&gate.url).timeout(timeout).send();
        let elapsed_ms = started.elapsed().as_millis() as u64;
        let (status, error) = match result {
            Ok(response) => (Some(response.status().as_u16()), None),
            Err(e) if e.is_timeout() => (None, Some(format!("no answer within {timeout:?}"))),
            Err(e) if e.is_connect() => (None, Some("connection refused or unreachable".into())),
            Err(e) => (None, Some(e.without_url().to_string())),
        };
        let passed = status == Some(gate.expect_status);
        out.push(SmokeAttempt {
            status,
            error,
            elapsed_ms,
        });
        if passed {
            break;
        }
    }
    out
}
