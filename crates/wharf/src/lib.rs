//! wharf: CI/CD building blocks in Rust.
//!
//! This facade re-exports the wharf crates under short names, so another repository adds
//! one dependency and writes `wharf::oci::Layout`, `wharf::build::build`,
//! `wharf::pipeline::image::plan`. Each module is a crate of its own with one job; see
//! `docs/ARCHITECTURE.md`.
//!
//! It adds no code of its own.

pub use wharf_advisory_db as advisory_db;
pub use wharf_audit as audit;
pub use wharf_build as build;
#[cfg(feature = "cli")]
pub use wharf_cli as cli;
pub use wharf_deploy as deploy;
pub use wharf_engine as engine;
pub use wharf_flow as flow;
pub use wharf_imagecheck as imagecheck;
pub use wharf_ledger as ledger;
pub use wharf_matrix as matrix;
pub use wharf_matrix_run as matrix_run;
pub use wharf_oci as oci;
pub use wharf_pipeline as pipeline;
pub use wharf_policy as policy;
pub use wharf_promote as promote;
pub use wharf_registry as registry;
pub use wharf_sbom as sbom;
pub use wharf_sign as sign;
pub use wharf_source as source;
pub use wharf_tag as tag;
pub use wharf_workflow as workflow;

/// The guide's Rust examples (`docs/guide/*.md`), compiled as doctests so that they keep
/// building as the API moves. Every code block there is tagged (`toml`, `console`, `yaml`,
/// `rust`), since rustdoc would compile an untagged one as Rust.
#[cfg(doctest)]
mod guide {
    #[doc = include_str!("../../../docs/guide/pipelines.md")]
    pub struct Pipelines;
    #[doc = include_str!("../../../docs/guide/using-wharf.md")]
    pub struct UsingWharf;
}
