//! Provider implementations of the core traits. Each depends on the core; the core never
//! names them. Heavy providers sit behind cargo features.
pub mod embed_fake;
pub mod sink_local;
pub mod source_channel;
pub mod source_file;
pub mod source_nixenv;

#[cfg(feature = "duckdb-store")]
pub mod bm25;
#[cfg(feature = "duckdb-store")]
pub mod duckdb_store;
#[cfg(feature = "duckdb-store")]
pub mod search;
#[cfg(feature = "bedrock")]
pub mod embed_bedrock;
#[cfg(feature = "local-embedder")]
pub mod embed_local;
#[cfg(feature = "objstore")]
pub mod sink_objstore;
#[cfg(feature = "s3")]
pub mod sink_s3;
