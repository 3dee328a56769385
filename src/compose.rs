//! The composition root: the only place that turns configuration into concrete providers.
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context, Result};

use fdnix::config::Config;
use fdnix::providers;
use fdnix::traits::{ArtifactSink, Embedder, Source, StoreFactory};

pub fn source(cfg: &Config) -> Result<Box<dyn Source>> {
    if cfg.source == "nix-env" {
        let mut s = providers::source_nixenv::NixEnvSource::new(cfg.nix_file.clone());
        s.extra_args = cfg.nix_args.clone();
        s.timeout = Duration::from_secs(cfg.nix_timeout_secs);
        s.attempts = cfg.nix_attempts;
        return Ok(Box::new(s));
    }
    if let Some(p) = cfg.source.strip_prefix("file:") {
        let path = PathBuf::from(p);
        if !path.exists() {
            bail!("FDNIX_SOURCE / --source: dump file {} does not exist", path.display());
        }
        return Ok(Box::new(providers::source_file::FileSource::new(path)));
    }
    if let Some(loc) = cfg.source.strip_prefix("channel:") {
        return channel_source(loc);
    }
    bail!("FDNIX_SOURCE / --source: unknown source `{}`", cfg.source)
}

fn channel_source(loc: &str) -> Result<Box<dyn Source>> {
    Ok(Box::new(providers::source_channel::ChannelSource::new(loc)))
}

pub fn store(cfg: &Config) -> Result<Box<dyn StoreFactory>> {
    #[cfg(feature = "duckdb-store")]
    {
        return Ok(Box::new(providers::duckdb_store::DuckDbStoreFactory { ext_dir: cfg.extension_dir() }));
    }
    #[allow(unreachable_code)]
    {
        bail!("this build has no store; rebuild with --features duckdb-store")
    }
}

/// The embedder for an index run. Unset EMBEDDER: the local model when it is installed,
/// else Bedrock when AWS_REGION is set.
pub async fn embedder(cfg: &Config) -> Result<Box<dyn Embedder>> {
    let choice = match cfg.embedder.as_deref() {
        Some(c) => c.to_string(),
        None => {
            if cfg.model_dir().join("model.safetensors").exists() && cfg!(feature = "local-embedder") {
                "local".into()
            } else if cfg.aws_region.is_some() {
                "bedrock".into()
            } else {
                bail!(
                    "no embedder: EMBEDDER is unset, the local model is not installed at {} (run scripts/setup.sh model) and AWS_REGION is unset for Bedrock; set EMBEDDER=local|bedrock|fake|fake-lexical",
                    cfg.model_dir().display()
                )
            }
        }
    };
    named_embedder(cfg, &choice).await
}

pub async fn named_embedder(cfg: &Config, choice: &str) -> Result<Box<dyn Embedder>> {
    match choice {
        "fake" => Ok(Box::new(providers::embed_fake::HashEmbedder::new(cfg.fake_dimensions))),
        "fake-lexical" => Ok(Box::new(providers::embed_fake::LexicalEmbedder::new(cfg.fake_dimensions))),
        "bedrock" => bedrock(cfg).await,
        "local" => local(cfg),
        other => bail!("EMBEDDER: unknown embedder `{other}` (expected bedrock, local, fake or fake-lexical)"),
    }
}

/// The embedder that produced an artifact's vectors, from the model id it records.
pub async fn embedder_for_model(cfg: &Config, model: &str) -> Result<Box<dyn Embedder>> {
    if let Some(d) = model.strip_prefix("fake-hash-") {
        return Ok(Box::new(providers::embed_fake::HashEmbedder::new(d.parse().context("fake-hash dimensions")?)));
    }
    if let Some(d) = model.strip_prefix("fake-lexical-") {
        return Ok(Box::new(providers::embed_fake::LexicalEmbedder::new(d.parse().context("fake-lexical dimensions")?)));
    }
    if model.starts_with("cohere.") {
        let mut c = cfg.clone();
        let (id, dim) = match model.split_once("@") {
            Some((id, d)) => (id.to_string(), d.parse().ok()),
            None => (model.to_string(), None),
        };
        c.bedrock_model_id = id;
        c.bedrock_output_dimension = dim;
        return bedrock(&c).await;
    }
    if model.contains("MiniLM") {
        return local(cfg);
    }
    bail!("the artifact's vectors come from model `{model}`, which this build cannot embed queries for")
}

#[cfg(feature = "bedrock")]
async fn bedrock(cfg: &Config) -> Result<Box<dyn Embedder>> {
    let region = cfg.aws_region.clone().context("AWS_REGION is required for EMBEDDER=bedrock")?;
    let opts = providers::embed_bedrock::BedrockOptions {
        model_id: cfg.bedrock_model_id.clone(),
        output_dimension: cfg.bedrock_output_dimension,
        concurrency: cfg.bedrock_concurrency,
        max_attempts: cfg.bedrock_max_attempts,
        call_timeout: Duration::from_secs(cfg.bedrock_timeout_secs),
        ..Default::default()
    };
    Ok(Box::new(providers::embed_bedrock::BedrockEmbedder::from_env(&region, opts).await?))
}

#[cfg(not(feature = "bedrock"))]
async fn bedrock(_cfg: &Config) -> Result<Box<dyn Embedder>> {
    bail!("this build has no Bedrock embedder; rebuild with --features bedrock")
}

#[cfg(feature = "local-embedder")]
fn local(cfg: &Config) -> Result<Box<dyn Embedder>> {
    Ok(Box::new(providers::embed_local::LocalEmbedder::load(&cfg.model_dir(), cfg.local_threads)?))
}

#[cfg(not(feature = "local-embedder"))]
fn local(_cfg: &Config) -> Result<Box<dyn Embedder>> {
    bail!("this build has no local embedder; rebuild with --features local-embedder")
}

/// The sink: explicit FDNIX_SINK, else S3 when ARTIFACTS_BUCKET/DUCKDB_KEY/AWS_REGION are set,
/// else none.
pub async fn sink(cfg: &Config) -> Result<Option<Box<dyn ArtifactSink>>> {
    let s3 = cfg.s3_settings()?;
    let name = cfg.output_path.file_name().and_then(|n| n.to_str()).unwrap_or("fdnix.duckdb").to_string();
    match cfg.sink.as_deref() {
        None if s3.is_some() => s3_sink(cfg).await.map(Some),
        None => Ok(None),
        Some("s3") => s3_sink(cfg).await.map(Some),
        Some(dir) if dir.starts_with("dir:") => {
            let key = cfg.duckdb_key.clone().unwrap_or(name);
            Ok(Some(Box::new(providers::sink_local::dir_sink(PathBuf::from(&dir[4..]), &key))))
        }
        Some(url) if url.contains("://") => objstore_sink(cfg, url),
        Some(other) => bail!("FDNIX_SINK: unknown sink `{other}` (expected s3, dir:PATH or an object_store URL)"),
    }
}

#[cfg(feature = "s3")]
async fn s3_sink(cfg: &Config) -> Result<Box<dyn ArtifactSink>> {
    let (bucket, key, region) = cfg
        .s3_settings()?
        .context("the S3 sink needs ARTIFACTS_BUCKET, DUCKDB_KEY and AWS_REGION")?;
    let blobs = providers::sink_s3::S3Blobs::from_env(&bucket, &region, cfg.s3_force_path_style).await?;
    Ok(Box::new(fdnix::publish::ManifestSink::new(blobs, key)))
}

#[cfg(not(feature = "s3"))]
async fn s3_sink(_cfg: &Config) -> Result<Box<dyn ArtifactSink>> {
    bail!("this build has no S3 sink; rebuild with --features s3")
}

#[cfg(feature = "objstore")]
fn objstore_sink(cfg: &Config, url: &str) -> Result<Option<Box<dyn ArtifactSink>>> {
    let name = cfg.output_path.file_name().and_then(|n| n.to_str()).unwrap_or("fdnix.duckdb").to_string();
    let (blobs, key) = providers::sink_objstore::ObjectStoreBlobs::from_url(url, &name)?;
    Ok(Some(Box::new(fdnix::publish::ManifestSink::new(blobs, key))))
}

#[cfg(not(feature = "objstore"))]
fn objstore_sink(_cfg: &Config, _url: &str) -> Result<Option<Box<dyn ArtifactSink>>> {
    bail!("this build has no object_store sink; rebuild with --features objstore")
}
