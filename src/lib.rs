//! fdnix-indexer: turns nixpkgs into one DuckDB search artifact.
//!
//! The core (this crate's `src/`) works only against four traits in [`traits`]:
//! [`traits::Source`], [`traits::Embedder`], [`traits::Store`] and [`traits::ArtifactSink`].
//! Implementations live in [`providers`] (compiled into this package from `providers/`);
//! only the composition root in the binary picks them.
pub mod artifact;
pub mod config;
pub mod doctext;
pub mod driver;
pub mod error;
pub mod eval;
pub mod manifest;
pub mod model;
pub mod normalize;
pub mod publish;
pub mod rank;
pub mod raw;
pub mod traits;
pub mod telemetry;

#[path = "../providers/mod.rs"]
pub mod providers;

pub use config::{Config, Mode};
pub use driver::{run, Components, RunOptions, RunSummary};
