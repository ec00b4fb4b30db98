//! The OCI image model for wharf.
//!
//! - [`Digest`] and [`Reference`] parse and validate what users type, with errors that say
//!   what is wrong and how to fix it.
//! - [`manifest`] holds the manifest, index, descriptor and config types, written only as
//!   canonical JSON so equal values have equal digests.
//! - [`Image`] is the one abstraction every source and sink of images works with; the
//!   functions in [`image`] derive everything else from its three methods.
//! - [`Layout`] is the OCI image layout on disk, both a source and a sink; [`atomic`] writes
//!   its files (and other reports) whole or not at all, with the umask's permissions.
//!
//! This crate never opens a network connection and never starts a process: registries and
//! engines live in their own crates and implement [`Image`].

pub mod atomic;
pub mod digest;
mod error;
pub mod image;
pub mod layout;
pub mod location;
pub mod manifest;
pub mod media_type;
pub mod parallel;
pub mod reference;

pub use digest::{Digest, DigestError, Hasher, VerifyingReader};
pub use error::{Error, Result};
pub use image::{Image, MemoryImage, random_image};
pub use layout::{BlobWriter, Layout, LayoutImage, WriteStats};
pub use location::{Location, LocationError};
pub use manifest::{
    ContainerConfig, Descriptor, History, ImageConfig, Index, Manifest, Platform, canonical_json,
};
pub use reference::{Reference, ReferenceError, validate_tag};
