//! Webhooks: promotions, rollbacks and failed gates POSTed as JSON. Each POST is retried
//! and bounded in time, and a failure is a warning: a receiver that is down never blocks
//! or fails a promotion.

use std::time::Duration;

use wharf_promote::{Webhook, WebhookFormat};

/// Attempts per webhook, and the bound of each.
const ATTEMPTS: u32 = 3;
const TIMEOUT: Duration = Duration::from_secs(5);

/// Sends `json` (wharf's format) or `slack` (an incoming-webhook message) to every hook;
/// returns one warning per hook that did not take it.
pub fn send(hooks: &[Webhook], json: &serde_json::Value, slack: &serde_json::Value) -> Vec<String> {
    if hooks.is_empty() {
        return Vec::new();
    }
    wharf_registry::install_crypto_provider();
    let client = match reqwest::blocking::Client::builder()
        .timeout(TIMEOUT)
        .connect_timeout(TIMEOUT)
        .user_agent(concat!("wharf/", env!("CARGO_PKG_VERSION")))
        .build()
    {
        Ok(client) => client,
        Err(e) => return vec![format!("webhooks not sent: {e}")],
    };
    let mut warnings = Vec::new();
    for hook in hooks {
        let body = match hook.format {
            WebhookFormat::Json => json,
            WebhookFormat::Slack => slack,
        };
        if let Err(why) = post(&client, &hook.url, body) {
            warnings.push(format!(
                "webhook {} did not take the message after {ATTEMPTS} attempts: {why}",
                redact(&hook.url)
            ));
        }
    }
    warnings
}

fn post(
    client: &reqwest::blocking::Client,
    url: &str,
    body: &serde_json::Value,
) -> Result<(), String> {
    let mut last = String::new();
    for attempt in 0..ATTEMPTS {
        if attempt > 0 {
            std::thread::sleep(Duration::from_millis(200 << attempt));
        }
        match client.post(url).json(body).send() {
            Ok(response) if response.status().is_success() => return Ok(()),
            Ok(response) if response.status().is_client_error() && response.status() != 429 => {
                return Err(format!("it answered {}", response.status()));
            }
            Ok(response) => last = format!("it answered {}", response.status()),
            // reqwest's messages carry the URL: keep only the kind of failure.
            Err(e) if e.is_timeout() => last = format!("no answer within {TIMEOUT:?}"),
            Err(e) if e.is_connect() => last = "connection refused or unreachable".into(),
            Err(_) => last = "the request failed".into(),
        }
    }
    Err(last)
}

/// A webhook URL without what makes it a secret: Slack's carry the token in the path, so
/// only the scheme and host are shown.
pub fn redact(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(u) => format!(
            "{}://{}{}/…",
            u.scheme(),
            u.host_str().unwrap_or(""),
            u.port().map(|p| format!(":{p}")).unwrap_or_default()
        ),
        Err(_) => "(not a URL)".into(),
    }
}
