//! Promotion by digest: stages, gates, approvals, plans, status and DORA figures.
//!
//! Pure: no I/O, no clock, no environment. Callers gather the ledger and the evidence and
//! pass `now` in.

pub mod config;

pub use config::{
    ApprovalGate, BenchmarkGate, Gates, LedgerConfig, SmokeGate, Stage, Webhook, WebhookFormat,
};
