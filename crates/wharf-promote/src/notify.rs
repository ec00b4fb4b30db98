//! Webhook messages for promotions, rollbacks and failed gates.
//!
//! # wharf's JSON message (`format = "json"`)
//!
//! ```json
//! {
//!   "kind": "wharf-notification",
//!   "version": 1,
//!   "event": "promotion",
//!   "stage": "staging",
//!   "digest": "sha256:…",
//!   "who": "alice",
//!   "when": "2026-11-29T12:00:00Z",
//!   "message": "promoted sha256:… into staging (by alice)",
//!   "failed_gates": [{"gate": "soak", "message": "soak: …"}]
//! }
//! ```
//!
//! `event` is `promotion`, `rollback` or `gate_failed`; `failed_gates` is empty except for
//! `gate_failed`. Slack's format (`format = "slack"`) is an incoming-webhook message with
//! the same text: `{"text": "…"}`.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::json;
use wharf_oci::Digest;

use crate::plan::PromotionPlan;
use crate::rollback::RollbackPlan;

/// What happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Event {
    Promotion,
    Rollback,
    GateFailed,
}

/// A failed gate, as announced.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailedGate {
    pub gate: String,
    pub message: String,
}

/// One announcement.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notification {
    pub event: Event,
    pub stage: String,
    pub digest: Digest,
    pub who: String,
    pub when: Timestamp,
    pub message: String,
    pub failed_gates: Vec<FailedGate>,
}

impl Notification {
    /// A promotion that went ahead.
    pub fn promoted(plan: &PromotionPlan, who: &str, when: Timestamp) -> Notification {
        let from = plan
            .source
            .stage
            .as_deref()
            .map_or(String::new(), |s| format!(" from {s}"));
        Notification {
            event: Event::Promotion,
            stage: plan.stage.clone(),
            digest: plan.digest.clone(),
            who: who.to_owned(),
            when,
            message: format!(
                "promoted {} into {}{from} (by {who})",
                plan.digest.short(),
                plan.stage
            ),
            failed_gates: Vec::new(),
        }
    }

    /// A promotion its gates blocked.
    pub fn gate_failed(plan: &PromotionPlan, who: &str, when: Timestamp) -> Notification {
        let failed: Vec<FailedGate> = plan
            .failed()
            .map(|g| FailedGate {
                gate: g.gate.clone(),
                message: g.message.clone(),
            })
            .collect();
        let names: Vec<&str> = failed.iter().map(|g| g.gate.as_str()).collect();
        Notification {
            event: Event::GateFailed,
            stage: plan.stage.clone(),
            digest: plan.digest.clone(),
            who: who.to_owned(),
            when,
            message: format!(
                "promotion of {} into {} blocked by {} (asked by {who})",
                plan.digest.short(),
                plan.stage,
                names.join(", ")
            ),
            failed_gates: failed,
        }
    }

    /// A rollback.
    pub fn rolled_back(plan: &RollbackPlan, who: &str, when: Timestamp) -> Notification {
        Notification {
            event: Event::Rollback,
            stage: plan.stage.clone(),
            digest: plan.digest.clone(),
            who: who.to_owned(),
            when,
            message: format!(
                "rolled {} back from {} to {} (by {who})",
                plan.stage,
                plan.from_digest.short(),
                plan.digest.short()
            ),
            failed_gates: Vec::new(),
        }
    }

    /// wharf's JSON message (see the module docs).
    pub fn to_json(&self) -> serde_json::Value {
        json!({
            "kind": "wharf-notification",
            "version": 1,
            "event": self.event,
            "stage": self.stage,
            "digest": self.digest,
            "who": self.who,
            "when": self.when,
            "message": self.message,
            "failed_gates": self.failed_gates,
        })
    }

    /// A Slack incoming-webhook message: `{"text": "wharf: …"}`, one line per failed gate.
    pub fn to_slack(&self) -> serde_json::Value {
        let mut text = format!("wharf: {}", self.message);
        for gate in &self.failed_gates {
            text.push_str(&format!("\n• {}", gate.message));
        }
        json!({ "text": text })
    }
}
