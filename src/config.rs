//! Configuration: defaults, then a TOML file, then the environment, then flags (figment).
//! Every environment variable of the original container keeps its name.
use std::path::{Path, PathBuf};

use figment::providers::{Format, Serialized, Toml};
use figment::Figment;
use serde::{Deserialize, Serialize};

use crate::error::ConfigError;
use crate::traits::{EmbedFilter, FtsParams, HnswParams};

/// Which phases run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    Metadata,
    Embedding,
    Both,
}

impl Mode {
    pub fn metadata(self) -> bool {
        matches!(self, Mode::Metadata | Mode::Both)
    }
    pub fn embedding(self) -> bool {
        matches!(self, Mode::Embedding | Mode::Both)
    }
}

/// The seed's variables, read under their own names.
pub const SEED_ENV: &[&str] = &[
    "PROCESSING_MODE",
    "OUTPUT_PATH",
    "DUCKDB_PATH",
    "AWS_REGION",
    "ARTIFACTS_BUCKET",
    "DUCKDB_KEY",
    "BEDROCK_MODEL_ID",
    "FTS_STOPWORDS",
    "FTS_STEMMER",
    "FTS_INDEX_NAME",
    "VSS_HNSW_M",
    "VSS_EF_CONSTRUCTION",
    "VSS_EF_SEARCH",
    "EMBEDDER",
];

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// metadata | embedding | both (`PROCESSING_MODE`).
    pub processing_mode: Mode,
    /// Where the artifact is written (`OUTPUT_PATH`).
    pub output_path: PathBuf,
    /// An existing artifact to start from, for vector reuse (`DUCKDB_PATH`; default: OUTPUT_PATH).
    pub duckdb_path: Option<PathBuf>,
    /// `nix-env`, `file:PATH` or `channel:PATH_OR_URL`.
    pub source: String,
    /// nix-env `-f` expression file.
    pub nix_file: Option<String>,
    /// Extra nix-env arguments.
    pub nix_args: Vec<String>,
    pub nix_timeout_secs: u64,
    pub nix_attempts: u32,
    /// bedrock | local | fake | fake-lexical; unset: local when the model is installed, else bedrock when AWS_REGION is set.
    pub embedder: Option<String>,
    /// Dimensions of the fake embedders.
    pub fake_dimensions: usize,
    pub bedrock_model_id: String,
    /// Cohere v4 only: 256, 512, 1024 or 1536.
    pub bedrock_output_dimension: Option<u32>,
    /// InvokeModel calls in flight.
    pub bedrock_concurrency: usize,
    /// Attempts per call (ours, beyond the SDK's).
    pub bedrock_max_attempts: u32,
    /// Per-call timeout in seconds.
    pub bedrock_timeout_secs: u64,
    pub aws_region: Option<String>,
    pub artifacts_bucket: Option<String>,
    pub duckdb_key: Option<String>,
    /// Explicit sink: `s3`, `dir:PATH` or an object_store URL (`s3://`, `file://`, `memory://`).
    pub sink: Option<String>,
    /// Path-style S3 addressing, for S3-compatible servers.
    pub s3_force_path_style: bool,
    pub fts_stopwords: String,
    pub fts_stemmer: String,
    pub fts_index_name: String,
    pub vss_hnsw_m: u32,
    pub vss_ef_construction: u32,
    pub vss_ef_search: u32,
    /// Root of installed extensions and models (`scripts/setup.sh` fills it).
    pub fdnix_home: PathBuf,
    pub extension_dir: Option<PathBuf>,
    pub model_dir: Option<PathBuf>,
    /// Threads for the local embedder (0: one per core).
    pub local_threads: usize,
    pub embed_include_broken: bool,
    pub embed_include_insecure: bool,
    pub embed_include_unsupported: bool,
    pub embed_include_unavailable: bool,
    /// auto | json | text. auto: JSON when stderr is not a terminal.
    pub log_format: String,
}

/// True inside the fdnix container image (its Dockerfile sets FDNIX_IN_CONTAINER=1). Generic
/// markers such as /.dockerenv are not used: CI and dev machines may be containers too.
pub fn in_container() -> bool {
    std::env::var_os("FDNIX_IN_CONTAINER").is_some_and(|v| v == "1")
}

fn default_home() -> PathBuf {
    if in_container() {
        PathBuf::from("/opt/fdnix")
    } else {
        PathBuf::from(".fdnix")
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            processing_mode: Mode::Both,
            output_path: if in_container() { PathBuf::from("/out/fdnix.duckdb") } else { PathBuf::from("out/fdnix.duckdb") },
            duckdb_path: None,
            source: "nix-env".into(),
            nix_file: None,
            nix_args: Vec::new(),
            nix_timeout_secs: 1800,
            nix_attempts: 3,
            embedder: None,
            fake_dimensions: 256,
            bedrock_model_id: "cohere.embed-english-v3".into(),
            bedrock_output_dimension: None,
            bedrock_concurrency: 8,
            bedrock_max_attempts: 8,
            bedrock_timeout_secs: 60,
            aws_region: None,
            artifacts_bucket: None,
            duckdb_key: None,
            sink: None,
            s3_force_path_style: false,
            fts_stopwords: "english".into(),
            fts_stemmer: "english".into(),
            fts_index_name: "packages_fts_idx".into(),
            vss_hnsw_m: 16,
            vss_ef_construction: 128,
            vss_ef_search: 64,
            fdnix_home: default_home(),
            extension_dir: None,
            model_dir: None,
            local_threads: 0,
            embed_include_broken: false,
            embed_include_insecure: false,
            embed_include_unsupported: false,
            embed_include_unavailable: false,
            log_format: "auto".into(),
        }
    }
}

/// Settings given as flags; only the ones present override.
#[derive(Debug, Clone, Default, Serialize)]
pub struct FlagOverrides {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub processing_mode: Option<Mode>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output_path: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duckdb_path: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub embedder: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sink: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nix_file: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_format: Option<String>,
}

impl Config {
    /// Layers defaults < file < environment < flags. `env` is the environment to read
    /// (tests pass their own).
    pub fn load(file: Option<&Path>, env: &[(String, String)], flags: &FlagOverrides) -> Result<Config, ConfigError> {
        let mut fig = Figment::from(Serialized::defaults(Config::default()));
        if let Some(f) = file {
            if !f.exists() {
                return Err(ConfigError::Invalid { var: "FDNIX_CONFIG", reason: format!("config file {} does not exist", f.display()) });
            }
            fig = fig.merge(Toml::file(f));
        }
        // Environment: the seed's names as they are, and FDNIX_<FIELD> for everything.
        let seed: Vec<(String, String)> = env
            .iter()
            .filter(|(k, _)| SEED_ENV.contains(&k.as_str()))
            .map(|(k, v)| (k.to_ascii_lowercase(), v.clone()))
            .collect();
        // Only FDNIX_ variables that name a setting; others (FDNIX_LOG, FDNIX_BIN, …) belong
        // to other parts of the tool.
        let known: Vec<String> = match serde_json::to_value(Config::default()) {
            Ok(serde_json::Value::Object(m)) => m.keys().cloned().collect(),
            _ => Vec::new(),
        };
        let prefixed: Vec<(String, String)> = env
            .iter()
            .filter_map(|(k, v)| k.strip_prefix("FDNIX_").map(|rest| (rest.to_ascii_lowercase(), v.clone())))
            .filter(|(k, _)| known.contains(k))
            .collect();
        fig = fig.merge(env_provider(seed)).merge(env_provider(prefixed));
        fig = fig.merge(Serialized::defaults(flags));
        let mut cfg: Config = fig.extract().map_err(|e| ConfigError::Figment(figment_message(e)))?;
        // Empty strings from the environment mean "unset" for optional settings.
        for o in [&mut cfg.aws_region, &mut cfg.artifacts_bucket, &mut cfg.duckdb_key, &mut cfg.embedder, &mut cfg.sink, &mut cfg.nix_file] {
            if o.as_deref().is_some_and(|s| s.trim().is_empty()) {
                *o = None;
            }
        }
        if cfg.duckdb_path.as_ref().is_some_and(|p| p.as_os_str().is_empty()) {
            cfg.duckdb_path = None;
        }
        cfg.validate()?;
        Ok(cfg)
    }

    /// Loads from the process environment.
    pub fn from_process(file: Option<&Path>, flags: &FlagOverrides) -> Result<Config, ConfigError> {
        let env: Vec<(String, String)> = std::env::vars().collect();
        Config::load(file, &env, flags)
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        if !(2..=256).contains(&self.vss_hnsw_m) {
            return Err(ConfigError::Invalid { var: "VSS_HNSW_M", reason: format!("{} is outside 2..=256", self.vss_hnsw_m) });
        }
        if !(1..=10_000).contains(&self.vss_ef_construction) {
            return Err(ConfigError::Invalid { var: "VSS_EF_CONSTRUCTION", reason: format!("{} is outside 1..=10000", self.vss_ef_construction) });
        }
        if !(1..=10_000).contains(&self.vss_ef_search) {
            return Err(ConfigError::Invalid { var: "VSS_EF_SEARCH", reason: format!("{} is outside 1..=10000", self.vss_ef_search) });
        }
        if self.output_path.as_os_str().is_empty() {
            return Err(ConfigError::Invalid { var: "OUTPUT_PATH", reason: "is empty".into() });
        }
        if !(self.source == "nix-env" || self.source.starts_with("file:") || self.source.starts_with("channel:")) {
            return Err(ConfigError::Invalid {
                var: "FDNIX_SOURCE",
                reason: format!("`{}`: expected nix-env, file:PATH or channel:PATH_OR_URL", self.source),
            });
        }
        if let Some(e) = &self.embedder {
            if !["bedrock", "local", "fake", "fake-lexical"].contains(&e.as_str()) {
                return Err(ConfigError::Invalid { var: "EMBEDDER", reason: format!("`{e}`: expected bedrock, local, fake or fake-lexical") });
            }
        }
        if !["auto", "json", "text"].contains(&self.log_format.as_str()) {
            return Err(ConfigError::Invalid { var: "FDNIX_LOG_FORMAT", reason: format!("`{}`: expected auto, json or text", self.log_format) });
        }
        if self.fake_dimensions == 0 || self.fake_dimensions > 4096 {
            return Err(ConfigError::Invalid { var: "FDNIX_FAKE_DIMENSIONS", reason: format!("{} is outside 1..=4096", self.fake_dimensions) });
        }
        if let Some(d) = self.bedrock_output_dimension {
            if ![256, 512, 1024, 1536].contains(&d) {
                return Err(ConfigError::Invalid { var: "FDNIX_BEDROCK_OUTPUT_DIMENSION", reason: format!("{d}: expected 256, 512, 1024 or 1536") });
            }
        }
        if self.bedrock_concurrency == 0 {
            return Err(ConfigError::Invalid { var: "FDNIX_BEDROCK_CONCURRENCY", reason: "must be at least 1".into() });
        }
        self.s3_settings()?;
        Ok(())
    }

    /// The seed's S3 rule: all of ARTIFACTS_BUCKET, DUCKDB_KEY and AWS_REGION, or none of the
    /// first two (AWS_REGION alone is fine: Bedrock needs it too).
    pub fn s3_settings(&self) -> Result<Option<(String, String, String)>, ConfigError> {
        let items = [("ARTIFACTS_BUCKET", &self.artifacts_bucket), ("DUCKDB_KEY", &self.duckdb_key), ("AWS_REGION", &self.aws_region)];
        let bucket_or_key = self.artifacts_bucket.is_some() || self.duckdb_key.is_some();
        if !bucket_or_key {
            return Ok(None);
        }
        let missing: Vec<&str> = items.iter().filter(|(_, v)| v.is_none()).map(|(n, _)| *n).collect();
        let present: Vec<&str> = items.iter().filter(|(_, v)| v.is_some()).map(|(n, _)| *n).collect();
        if !missing.is_empty() {
            return Err(ConfigError::PartialS3 { missing: missing.join(", "), present: present.join(", ") });
        }
        match (&self.artifacts_bucket, &self.duckdb_key, &self.aws_region) {
            (Some(b), Some(k), Some(r)) => Ok(Some((b.clone(), k.clone(), r.clone()))),
            _ => Ok(None),
        }
    }

    pub fn extension_dir(&self) -> PathBuf {
        self.extension_dir.clone().unwrap_or_else(|| self.fdnix_home.join("extensions"))
    }

    pub fn model_dir(&self) -> PathBuf {
        self.model_dir.clone().unwrap_or_else(|| self.fdnix_home.join("models").join("all-MiniLM-L6-v2"))
    }

    pub fn fts_params(&self) -> FtsParams {
        FtsParams { stemmer: self.fts_stemmer.clone(), stopwords: self.fts_stopwords.clone(), index_name: self.fts_index_name.clone() }
    }

    pub fn hnsw_params(&self) -> HnswParams {
        HnswParams { m: self.vss_hnsw_m, ef_construction: self.vss_ef_construction, ef_search: self.vss_ef_search }
    }

    pub fn embed_filter(&self) -> EmbedFilter {
        EmbedFilter {
            include_broken: self.embed_include_broken,
            include_insecure: self.embed_include_insecure,
            include_unsupported: self.embed_include_unsupported,
            include_unavailable: self.embed_include_unavailable,
        }
    }
}

/// Turns (key, value) pairs into a figment provider. Values parse as figment parses the
/// environment (numbers, booleans, `[a, b]` arrays); an empty value stays an empty string.
/// Fields whose environment values are parsed (numbers, booleans, lists); all others are
/// taken as plain strings, so `DUCKDB_KEY=2024` stays the string "2024".
const PARSED_FIELDS: &[&str] = &[
    "vss_hnsw_m", "vss_ef_construction", "vss_ef_search", "nix_timeout_secs", "nix_attempts",
    "fake_dimensions", "bedrock_output_dimension", "bedrock_concurrency", "bedrock_max_attempts",
    "bedrock_timeout_secs", "s3_force_path_style", "local_threads", "embed_include_broken",
    "embed_include_insecure", "embed_include_unsupported", "embed_include_unavailable", "nix_args",
];

fn env_provider(pairs: Vec<(String, String)>) -> Serialized<figment::value::Dict> {
    let mut dict = figment::value::Dict::new();
    for (k, v) in pairs {
        let typed = PARSED_FIELDS.contains(&k.as_str());
        let value = if typed && !v.is_empty() {
            v.parse::<figment::value::Value>().unwrap_or_else(|_| figment::value::Value::from(v.clone()))
        } else {
            figment::value::Value::from(v.clone())
        };
        dict.insert(k, value);
    }
    Serialized::defaults(dict)
}

fn figment_message(e: figment::Error) -> String {
    e.into_iter()
        .map(|e| {
            let field = e.path.last().map(|k| k.to_ascii_uppercase()).unwrap_or_default();
            let var = if SEED_ENV.contains(&field.as_str()) { field } else { format!("FDNIX_{field}") };
            format!("{var}: {}", e.kind)
        })
        .collect::<Vec<_>>()
        .join("; ")
}
